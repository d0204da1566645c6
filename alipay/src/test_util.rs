//! A signer that plays Alipay (feature `test-util`), for other crates' tests: it signs gateway
//! answers and notifications with a gateway key, so a [`crate::Client`] built with the matching
//! public key accepts them.

use serde_json::Value;

use crate::Error;
use crate::sign::{self, PrivateKey};

/// Plays Alipay's gateway.
#[derive(Debug, Clone)]
pub struct TestGateway {
    key: PrivateKey,
}

impl TestGateway {
    /// Signs with `gateway_key` (its public key is what clients verify with).
    pub fn new(gateway_key: PrivateKey) -> Self {
        TestGateway { key: gateway_key }
    }

    /// The gateway's answer to `method`: `{"<method>_response": object, "sign": …}`.
    pub fn response(&self, method: &str, object: &Value) -> Result<String, Error> {
        let content = object.to_string();
        let signature = self.key.sign(&content)?;
        Ok(format!(
            r#"{{"{}_response":{content},"sign":"{signature}"}}"#,
            method.replace('.', "_")
        ))
    }

    /// The gateway's answer to `method` encrypted with the app's AES `key`:
    /// `{"<method>_response": "<ciphertext>", "sign": …}`, signed over the quoted ciphertext.
    pub fn encrypted_response(
        &self,
        method: &str,
        object: &Value,
        key: &crate::AesKey,
    ) -> Result<String, Error> {
        let content = Value::String(key.encrypt(&object.to_string())).to_string();
        let signature = self.key.sign(&content)?;
        Ok(format!(
            r#"{{"{}_response":{content},"sign":"{signature}"}}"#,
            method.replace('.', "_")
        ))
    }

    /// A notification body: `fields` plus `sign_type` and `sign`, form-encoded.
    pub fn notification(&self, fields: &[(&str, &str)]) -> Result<String, Error> {
        let mut all: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.push(("sign_type".into(), "RSA2".into()));
        let content = sign::canonical(
            all.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            sign::NOTIFY_EXCLUDES,
        );
        all.push(("sign".into(), self.key.sign(&content)?));
        serde_urlencoded::to_string(&all).map_err(|e| Error::Config(e.to_string()))
    }
}
