//! `alipay.open.app.alipaycert.download`: an Alipay public certificate by its SN (certificate
//! mode). The client calls it by itself when an answer names a certificate it does not hold
//! (see [`crate::cert`]); it is here for callers who want to fetch one ahead of time.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::Request;
use crate::Error;

/// Downloads the Alipay certificate `alipay_cert_sn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertDownload {
    alipay_cert_sn: String,
}

impl CertDownload {
    /// The certificate whose SN is `alipay_cert_sn`.
    pub fn new(alipay_cert_sn: impl Into<String>) -> Self {
        CertDownload {
            alipay_cert_sn: alipay_cert_sn.into(),
        }
    }
}

/// The certificate, as Alipay sends it: its PEM text in base64.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CertDownloadResponse {
    /// Base64 of the certificate's PEM text (the certificate, then its intermediates).
    pub alipay_cert_content: String,
}

impl CertDownloadResponse {
    /// The PEM text. It is not trusted by itself: [`crate::Certificates::accept_downloaded`]
    /// checks that it chains to the root.
    pub fn pem(&self) -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.alipay_cert_content.trim())
            .map_err(|e| Error::decode("alipay_cert_content", e))?;
        String::from_utf8(bytes).map_err(|e| Error::decode("alipay_cert_content", e))
    }
}

impl Request for CertDownload {
    const METHOD: &'static str = "alipay.open.app.alipaycert.download";
    type Response = CertDownloadResponse;
}
