//! HTTPS with client certificates, as WeChat's gateway serves it: a certificate authority made
//! on the spot, the gateway's server certificate, and a merchant certificate (`apiclient_cert`
//! as `.p12` and as the PEM pair) that `/secapi/*` requires. With it, the certificate path of a
//! client or a server in live mode (refunds) can be exercised without WeChat.
//!
//! Everything here is generated fresh and is for tests and staging only: the keys are written in
//! clear to the directory asked for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// Why the certificates could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

fn err(e: impl std::fmt::Display) -> TlsError {
    TlsError(e.to_string())
}

/// A certificate and its private key, PEM and DER.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// A gateway's certificates: its own CA, its server certificate, and a merchant certificate.
#[derive(Debug, Clone)]
pub struct GatewayPki {
    /// The CA certificate, PEM: what clients trust (`SSL_CERT_FILE`, or
    /// `wechat_pay::ClientBuilder::root_certificate`).
    pub ca_pem: String,
    ca_der: Vec<u8>,
    /// The gateway's server certificate (for `localhost`, `127.0.0.1` and the hosts asked for).
    pub server: Issued,
    /// The merchant's client certificate (common name: the merchant id).
    pub merchant: Issued,
}

/// Where [`GatewayPki::write_to`] put the files.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The CA certificate (`ca.pem`).
    pub ca: PathBuf,
    /// The merchant certificate as WeChat hands it out (`apiclient_cert.p12`, password: the
    /// merchant id).
    pub merchant_p12: PathBuf,
    /// The merchant certificate, PEM (`apiclient_cert.pem`).
    pub merchant_cert: PathBuf,
    /// The merchant key, PEM (`apiclient_key.pem`).
    pub merchant_key: PathBuf,
}

fn issue(
    params: CertificateParams,
    issuer: &CertifiedIssuer<'_, KeyPair>,
) -> Result<Issued, TlsError> {
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, issuer).map_err(err)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    })
}

impl GatewayPki {
    /// A fresh CA, a server certificate for `localhost`, `127.0.0.1` and `hosts`, and a client
    /// certificate for merchant `mch_id`.
    pub fn generate(mch_id: &str, hosts: &[&str]) -> Result<Self, TlsError> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wechat-sandbox test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(err)?).map_err(err)?;

        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(hosts.iter().map(|h| (*h).to_owned()));
        names.sort();
        names.dedup();
        let mut server = CertificateParams::new(names).map_err(err)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "wechat-sandbox");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = issue(server, &ca)?;

        let mut merchant = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        merchant.distinguished_name.push(DnType::CommonName, mch_id);
        merchant
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "Tenpay.com CA Center");
        merchant.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let merchant = issue(merchant, &ca)?;
        Ok(GatewayPki {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            server,
            merchant,
        })
    }

    /// The merchant certificate as a PKCS#12 file under `password` (WeChat's: the merchant id).
    pub fn merchant_p12(&self, password: &str) -> Result<Vec<u8>, TlsError> {
        let chain = PrivateKeyChain::new(
            b"1".as_slice(),
            PrivateKey::from_der(&self.merchant.key_der).map_err(err)?,
            [Certificate::from_der(&self.merchant.cert_der).map_err(err)?],
        );
        let mut store = KeyStore::new();
        store.add_entry("Tenpay Certificate", KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password).write().map_err(err)
    }

    /// A TLS acceptor for the gateway: its server certificate, and client certificates checked
    /// against the CA when presented (required by `/secapi/*`, not by the other paths).
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der.clone()))
            .map_err(err)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(err)?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(self.server.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server.key_der.clone())),
            )
            .map_err(err)?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Writes the CA and the merchant certificate (`.p12` under `p12_password`, and PEM) into
    /// `dir`.
    pub fn write_to(&self, dir: &Path, p12_password: &str) -> Result<PkiFiles, TlsError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            merchant_p12: dir.join("apiclient_cert.p12"),
            merchant_cert: dir.join("apiclient_cert.pem"),
            merchant_key: dir.join("apiclient_key.pem"),
        };
        std::fs::write(&files.ca, &self.ca_pem).map_err(err)?;
        std::fs::write(&files.merchant_p12, self.merchant_p12(p12_password)?).map_err(err)?;
        std::fs::write(&files.merchant_cert, &self.merchant.cert_pem).map_err(err)?;
        std::fs::write(&files.merchant_key, &self.merchant.key_pem).map_err(err)?;
        Ok(files)
    }
}
