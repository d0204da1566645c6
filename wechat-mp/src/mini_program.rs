//! Mini Program login (`wx.login` code → openid + session key) and the decryption of user data
//! (`encryptedData` + `iv`, AES-128-CBC with the session key) with its watermark check.
//!
//! ```no_run
//! # async fn run(client: wechat_mp::Client) -> Result<(), wechat_mp::Error> {
//! // The Mini Program calls wx.login() and posts the code to your server:
//! let session = client.code_to_session("CODE_FROM_WX_LOGIN").await?;
//! println!("the buyer is {}", session.openid); // keep session.session_key server-side only
//! # Ok(()) }
//! ```

use aes::Aes128;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::client::Auth;
use crate::{Client, Error, Secret};

/// A Mini Program login.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The user's openid under this Mini Program.
    pub openid: String,
    /// The session key: decrypts user data. Never send it to the client.
    pub session_key: Secret,
    /// The unionid, when bound to an Open Platform account.
    pub unionid: Option<String>,
}

/// The watermark WeChat puts in decrypted user data.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Watermark {
    /// The Mini Program the data was issued to.
    pub appid: String,
    /// When it was issued (Unix seconds).
    pub timestamp: i64,
}

impl Client {
    /// Exchanges a `wx.login` code for the user's openid and session key.
    pub async fn code_to_session(&self, js_code: &str) -> Result<Session, Error> {
        let i = &self.inner;
        self.get(
            "/sns/jscode2session",
            &[
                ("appid", &i.app_id),
                ("secret", i.app_secret.expose()),
                ("js_code", js_code),
                ("grant_type", "authorization_code"),
            ],
            Auth::None,
        )
        .await
    }

    /// Decrypts user data (`encryptedData` and `iv` from the Mini Program) with the user's
    /// session key, checks that the watermark names this app, and decodes it as `T`.
    pub fn decrypt_user_data<T: DeserializeOwned>(
        &self,
        session_key: &Secret,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<T, Error> {
        decrypt_user_data(&self.inner.app_id, session_key, encrypted_data, iv)
    }
}

/// [`Client::decrypt_user_data`] without a client.
pub fn decrypt_user_data<T: DeserializeOwned>(
    app_id: &str,
    session_key: &Secret,
    encrypted_data: &str,
    iv: &str,
) -> Result<T, Error> {
    let key = decode_16(
        session_key.expose(),
        "session_key is not 16 bytes of base64",
    )?;
    let iv = decode_16(iv, "iv is not 16 bytes of base64")?;
    let data = STANDARD
        .decode(encrypted_data)
        .map_err(|_| Error::Crypto("encryptedData is not base64"))?;
    let plain = cbc::Decryptor::<Aes128>::new(&key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&data)
        .map_err(|_| Error::Crypto("bad padding: wrong session key or corrupted data"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&plain).map_err(|e| Error::decode("user data", e.to_string()))?;
    let watermark: Watermark = value
        .get("watermark")
        .cloned()
        .ok_or_else(|| Error::decode("user data", "no watermark"))
        .and_then(|w| {
            serde_json::from_value(w).map_err(|e| Error::decode("watermark", e.to_string()))
        })?;
    if watermark.appid != app_id {
        return Err(Error::Crypto("the watermark names another app"));
    }
    serde_json::from_value(value).map_err(|e| Error::decode("user data", e.to_string()))
}

fn decode_16(b64: &str, what: &'static str) -> Result<[u8; 16], Error> {
    STANDARD
        .decode(b64)
        .ok()
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .ok_or(Error::Crypto(what))
}

#[cfg(test)]
mod tests {
    use aes::cipher::BlockModeEncrypt;

    use super::*;

    fn encrypt(key: &[u8; 16], iv: &[u8; 16], plain: &str) -> String {
        let data = cbc::Encryptor::<Aes128>::new(&(*key).into(), &(*iv).into())
            .encrypt_padded_vec::<Pkcs7>(plain.as_bytes());
        STANDARD.encode(data)
    }

    #[test]
    fn decrypts_and_checks_the_watermark() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let session_key = Secret::new(STANDARD.encode(key));
        let plain =
            r#"{"phoneNumber":"13800000000","watermark":{"appid":"wx1","timestamp":1700000000}}"#;
        let enc = encrypt(&key, &iv, plain);
        let v: serde_json::Value =
            decrypt_user_data("wx1", &session_key, &enc, &STANDARD.encode(iv)).unwrap();
        assert_eq!(v["phoneNumber"], "13800000000");

        // Another app's data.
        assert!(matches!(
            decrypt_user_data::<serde_json::Value>("wx2", &session_key, &enc, &STANDARD.encode(iv)),
            Err(Error::Crypto(_))
        ));
        // A wrong key: bad padding or garbage, never a panic.
        let wrong = Secret::new(STANDARD.encode([1u8; 16]));
        assert!(
            decrypt_user_data::<serde_json::Value>("wx1", &wrong, &enc, &STANDARD.encode(iv))
                .is_err()
        );
        // Malformed inputs.
        assert!(
            decrypt_user_data::<serde_json::Value>("wx1", &Secret::new("short"), &enc, "x")
                .is_err()
        );
        assert!(
            decrypt_user_data::<serde_json::Value>(
                "wx1",
                &session_key,
                "%%%",
                &STANDARD.encode(iv)
            )
            .is_err()
        );
        // No watermark.
        let enc = encrypt(&key, &iv, r#"{"a":1}"#);
        assert!(
            decrypt_user_data::<serde_json::Value>("wx1", &session_key, &enc, &STANDARD.encode(iv))
                .is_err()
        );
    }
}
