//! The merchant's client certificate (`apiclient_cert.p12`, or the PEM pair), for the endpoints
//! that move money back (refund, reverse, downloadfundflow).
//!
//! reqwest over rustls takes an identity as PEM, so a PKCS#12 file is opened here with a pure-Rust
//! reader (p12-keystore, legacy RC2/3DES and modern AES files alike) and turned into PEM. No
//! OpenSSL is involved.

use std::fmt;

use p12_keystore::{KeyStore, Pkcs12ImportPolicy};

use crate::Error;

/// A client certificate and its private key. `Debug` never shows the key.
#[derive(Clone)]
pub struct ClientCertificate {
    /// Private key then certificate chain, PEM.
    pem: Vec<u8>,
}

impl ClientCertificate {
    /// Opens a PKCS#12 file (`apiclient_cert.p12`). WeChat's password is the merchant id unless
    /// it was changed.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, Error> {
        let store = KeyStore::from_pkcs12(der, password, Pkcs12ImportPolicy::Relaxed)
            .map_err(|e| Error::Config(format!("cannot open the PKCS#12 certificate: {e}")))?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| {
            Error::Config("the PKCS#12 file holds no private key with a certificate".into())
        })?;
        if chain.certs().is_empty() {
            return Err(Error::Config(
                "the PKCS#12 file holds a private key without a certificate".into(),
            ));
        }
        let mut blocks = vec![pem::Pem::new("PRIVATE KEY", chain.key().as_der())];
        blocks.extend(
            chain
                .certs()
                .iter()
                .map(|c| pem::Pem::new("CERTIFICATE", c.as_der())),
        );
        Self::checked(pem::encode_many(&blocks).into_bytes())
    }

    /// Uses a PEM certificate (`apiclient_cert.pem`, a chain is allowed) and its PEM private key
    /// (`apiclient_key.pem`, PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let certs = pem::parse_many(cert_pem)
            .map_err(|e| Error::Config(format!("cannot read the PEM certificate: {e}")))?;
        if !certs.iter().any(|p| p.tag() == "CERTIFICATE") {
            return Err(Error::Config(
                "the certificate file holds no CERTIFICATE block".into(),
            ));
        }
        let keys = pem::parse_many(key_pem)
            .map_err(|e| Error::Config(format!("cannot read the PEM private key: {e}")))?;
        let key_blocks: Vec<_> = keys
            .into_iter()
            .filter(|p| p.tag().ends_with("PRIVATE KEY"))
            .collect();
        if key_blocks.len() != 1 {
            return Err(Error::Config(
                "the key file must hold exactly one PRIVATE KEY block".into(),
            ));
        }
        let mut blocks = key_blocks;
        blocks.extend(certs.into_iter().filter(|p| p.tag() == "CERTIFICATE"));
        Self::checked(pem::encode_many(&blocks).into_bytes())
    }

    /// Makes sure the TLS stack accepts the identity now rather than at the first refund.
    fn checked(pem: Vec<u8>) -> Result<Self, Error> {
        let cert = ClientCertificate { pem };
        cert.identity()?;
        Ok(cert)
    }

    pub(crate) fn identity(&self) -> Result<reqwest::Identity, Error> {
        reqwest::Identity::from_pem(&self.pem).map_err(|e| {
            Error::Config(format!("the TLS stack rejects the client certificate: {e}"))
        })
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCertificate(***)")
    }
}
