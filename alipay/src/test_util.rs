//! Playing Alipay in other crates' tests (feature `test-util`): [`TestGateway`] signs gateway
//! answers and notifications with a gateway key, so a [`crate::Client`] built with the matching
//! public key accepts them; [`TestPki`] is a certificate authority for certificate mode (a root
//! file like Alipay's, and certificates for the app's and the gateway's keys).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize, SerialNumber, SignatureAlgorithm,
};
use serde_json::Value;
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::Error;
use crate::sign::{self, PrivateKey, PublicKey};

/// Plays Alipay's gateway.
#[derive(Debug, Clone)]
pub struct TestGateway {
    key: PrivateKey,
    cert_sn: Option<String>,
}

impl TestGateway {
    /// Signs with `gateway_key` (its public key is what clients verify with).
    pub fn new(gateway_key: PrivateKey) -> Self {
        TestGateway {
            key: gateway_key,
            cert_sn: None,
        }
    }

    /// Certificate mode: answers name `alipay_cert_sn`, the SN of the gateway key's certificate.
    pub fn with_cert_sn(mut self, alipay_cert_sn: impl Into<String>) -> Self {
        self.cert_sn = Some(alipay_cert_sn.into());
        self
    }

    fn wrap(&self, method: &str, content: &str) -> Result<String, Error> {
        let signature = self.key.sign(content)?;
        let sn = self
            .cert_sn
            .as_ref()
            .map(|sn| format!(r#","alipay_cert_sn":"{sn}""#))
            .unwrap_or_default();
        Ok(format!(
            r#"{{"{}_response":{content}{sn},"sign":"{signature}"}}"#,
            method.replace('.', "_")
        ))
    }

    /// The gateway's answer to `method`: `{"<method>_response": object, "sign": …}`.
    pub fn response(&self, method: &str, object: &Value) -> Result<String, Error> {
        self.wrap(method, &object.to_string())
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
        self.wrap(method, &content)
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

/// A certificate authority for certificate mode: an RSA root and an intermediate that issues
/// leaf certificates, as Alipay's is built. The root file also holds an ECDSA root, as Alipay's
/// holds non-RSA roots that `alipay_root_cert_sn` leaves out.
pub struct TestPki {
    root_pem: String,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

impl TestPki {
    /// A new authority named `name` (fresh keys: a few hundred milliseconds of RSA generation).
    pub fn new(name: &str) -> Result<Self, Error> {
        let rsa = || KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(config);
        let root = CertifiedIssuer::self_signed(ca_params(&format!("{name} Root R1"))?, rsa()?)
            .map_err(config)?;
        let ecdsa = CertifiedIssuer::self_signed(
            ca_params(&format!("{name} Root E1"))?,
            KeyPair::generate().map_err(config)?,
        )
        .map_err(config)?;
        let intermediate =
            CertifiedIssuer::signed_by(ca_params(&format!("{name} Class 2 R1"))?, rsa()?, &root)
                .map_err(config)?;
        Ok(TestPki {
            root_pem: format!("{}\n{}", root.pem(), ecdsa.pem()),
            intermediate,
        })
    }

    /// The root certificate file (`alipayRootCert.crt`).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// A certificate for `key` (subject `CN=common_name`), then the intermediate: what Alipay's
    /// console gives for the app's key and for Alipay's own.
    pub fn issue(&self, common_name: &str, key: &PublicKey) -> Result<String, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(config)?;
        params.distinguished_name = name(common_name);
        params.serial_number = Some(random_serial()?);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = RsaSpki::new(key)?;
        let cert = params.signed_by(&key, &self.intermediate).map_err(config)?;
        Ok(format!("{}{}", cert.pem(), self.intermediate.pem()))
    }
}

fn config(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("test certificate authority: {e}"))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "CN");
    dn.push(DnType::OrganizationName, "Sandbox");
    dn.push(DnType::OrganizationalUnitName, "Certification Authority");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(common_name: &str) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(config)?;
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.serial_number = Some(random_serial()?);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(config)?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x10;
    Ok(SerialNumber::from_slice(&bytes))
}

/// An RSA public key as rcgen takes a key it does not hold.
struct RsaSpki(Vec<u8>);

impl RsaSpki {
    fn new(key: &PublicKey) -> Result<Self, Error> {
        let spki = SubjectPublicKeyInfoRef::from_der(key.spki_der()).map_err(config)?;
        Ok(RsaSpki(spki.subject_public_key.raw_bytes().to_vec()))
    }
}

impl PublicKeyData for RsaSpki {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}
