//! Platform certificates (`GET /v3/certificates`): WeChat Pay's keys for merchants that verify
//! with certificates rather than the WeChat Pay public key. Each certificate arrives encrypted
//! with the API v3 key; its public key becomes a [`WechatPayKey`] named by its serial number.

use serde::Deserialize;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use super::aead;
use super::{ApiV3Key, KeyError, WechatPayKey};
use crate::Error;

/// `GET /v3/certificates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadCertificates;

impl super::Request for DownloadCertificates {
    type Response = CertificateList;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        "/v3/certificates".into()
    }
}

/// The answer of `GET /v3/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CertificateList {
    /// The certificates in force.
    pub data: Vec<CertificateEntry>,
}

/// One platform certificate, encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CertificateEntry {
    /// Its serial number (what `Wechatpay-Serial` names).
    pub serial_no: String,
    /// From when.
    #[serde(default)]
    pub effective_time: String,
    /// Until when.
    #[serde(default)]
    pub expire_time: String,
    /// The certificate (PEM), encrypted.
    pub encrypt_certificate: EncryptedCertificate,
}

/// `encrypt_certificate`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EncryptedCertificate {
    /// `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// The nonce.
    pub nonce: String,
    /// Associated data (`certificate`).
    #[serde(default)]
    pub associated_data: String,
    /// Base64 ciphertext.
    pub ciphertext: String,
}

/// The key of a downloaded certificate: decrypted with `api_v3_key`, parsed, and checked to
/// carry the serial number it was listed under.
pub fn certificate_key(
    api_v3_key: &ApiV3Key,
    entry: &CertificateEntry,
) -> Result<WechatPayKey, Error> {
    let e = &entry.encrypt_certificate;
    let pem = aead::decrypt(
        api_v3_key,
        &e.algorithm,
        &e.ciphertext,
        &e.nonce,
        &e.associated_data,
    )?;
    let block = pem::parse(pem.trim()).map_err(|err| KeyError::Pem {
        expected: "certificate",
        detail: err.to_string(),
    })?;
    let cert = Certificate::from_der(block.contents())
        .map_err(|err| KeyError::Rsa(format!("not an X.509 certificate: {err}")))?;
    let serial: String = cert
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let listed = entry.serial_no.trim_start_matches('0').to_ascii_uppercase();
    if serial.trim_start_matches('0') != listed {
        return Err(KeyError::Rsa(format!(
            "certificate {serial} listed as {}",
            entry.serial_no
        ))
        .into());
    }
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|err| KeyError::Rsa(err.to_string()))?;
    Ok(WechatPayKey::from_der(entry.serial_no.clone(), &spki)?)
}
