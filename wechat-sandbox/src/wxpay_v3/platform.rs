//! The keys the sandbox signs v3 answers and notifications with: its WeChat Pay public key
//! (`PUB_KEY_ID_…`, the default mode) or, for merchants in platform-certificate mode, its newest
//! platform certificate. `GET /v3/certificates` lists the certificates in force, each encrypted
//! with the asking merchant's API v3 key; a rotation adds a certificate with a new key and serial
//! number, which signs from then on while the old ones stay listed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use rcgen::{CertificateParams, DnType, KeyPair, SerialNumber};
use serde_json::json;
use wechat_pay::v3::MerchantKey;
use wechat_pay::v3::signing::{PROBE_PREFIX, wechat_pay_headers};

use super::transfers::Transfer;
use super::{authenticate, path_and_query, reply, rfc3339};
use crate::config::MerchantV3;
use crate::state::{hex32, now};
use crate::{SandboxState, lock};

/// The v3 state beside the shared order book: platform certificates, bill files waiting to be
/// downloaded, transfers.
#[derive(Debug, Default)]
pub(crate) struct V3State {
    pub(crate) certificates: Vec<PlatformCertificate>,
    pub(crate) bill_files: HashMap<String, BillFile>,
    pub(crate) transfers: BTreeMap<String, Transfer>,
    pub(crate) sharing: super::profit_sharing::SharingBook,
    pub(crate) complaints: super::complaints::ComplaintBook,
    pub(crate) combines: super::combine::CombineBook,
    pub(crate) key_switches: BTreeMap<String, super::key_switch::KeySwitch>,
}

/// A bill file behind a `download_url` token.
#[derive(Debug, Clone)]
pub(crate) struct BillFile {
    pub(crate) mch_id: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) expires_at: i64,
}

/// A platform certificate of the sandbox.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    /// Its serial number (upper-case hex), what `Wechatpay-Serial` names.
    pub serial_no: String,
    /// The certificate (PEM).
    pub pem: String,
    /// From when (Unix seconds).
    pub effective: i64,
    /// Until when (Unix seconds).
    pub expires: i64,
    key: Arc<MerchantKey>,
}

/// A key and the name answers signed with it carry in `Wechatpay-Serial`.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    key: Arc<MerchantKey>,
    serial: String,
}

impl Signer {
    /// The signature headers of `body`, now.
    pub(crate) fn headers(&self, body: &str) -> Vec<(&'static str, String)> {
        wechat_pay_headers(&self.key, &self.serial, body, now(), &hex32())
    }

    /// The headers of a signature probe: WeChat's deliberately wrong signature.
    pub(crate) fn probe_headers(&self, body: &str) -> Vec<(&'static str, String)> {
        let mut h = self.headers(body);
        for (name, value) in &mut h {
            if *name == wechat_pay::v3::signing::headers::SIGNATURE {
                *value = format!("{PROBE_PREFIX}{}", hex32());
            }
        }
        h
    }
}

const YEAR: i64 = 365 * 24 * 3600;

/// Why a platform certificate could not be made (key generation, the random source, the
/// certificate itself), with the cause as its source.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a platform certificate: {0}")]
pub struct CertificateError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl CertificateError {
    fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CertificateError(cause.into())
    }
}

fn new_certificate() -> Result<PlatformCertificate, CertificateError> {
    let key = MerchantKey::generate().map_err(CertificateError::new)?;
    let pkcs8 = key.export_pkcs8_pem().map_err(CertificateError::new)?;
    let pair = KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(CertificateError::new)?;
    let mut serial = [0u8; 20];
    getrandom::fill(&mut serial).map_err(|e| CertificateError::new(e.to_string()))?;
    // A positive DER integer with no leading zero byte.
    serial[0] = 0x10 | (serial[0] & 0x6f);
    let serial_no: String = serial.iter().map(|b| format!("{b:02X}")).collect();
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(CertificateError::new)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Tenpay.com sandbox platform");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "wechat-sandbox");
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let effective = now() - 60;
    let expires = effective + 5 * YEAR;
    let at = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    params.not_before = at(effective);
    params.not_after = at(expires);
    let cert = params.self_signed(&pair).map_err(CertificateError::new)?;
    Ok(PlatformCertificate {
        serial_no,
        pem: cert.pem(),
        effective,
        expires,
        key: Arc::new(key),
    })
}

/// The newest platform certificate, made on first use.
fn current(state: &SandboxState) -> Result<PlatformCertificate, CertificateError> {
    if let Some(c) = lock(&state.v3).certificates.last() {
        return Ok(c.clone());
    }
    // Made outside the lock (key generation takes a while); the first one made wins.
    let made = new_certificate()?;
    let mut v3 = lock(&state.v3);
    if v3.certificates.is_empty() {
        v3.certificates.push(made);
    }
    Ok(v3.certificates[v3.certificates.len() - 1].clone())
}

/// A new platform certificate signs from now on; the older ones stay listed.
pub fn rotate_platform_certificate(
    state: &SandboxState,
) -> Result<PlatformCertificate, CertificateError> {
    current(state)?;
    let made = new_certificate()?;
    lock(&state.v3).certificates.push(made.clone());
    Ok(made)
}

/// The signer of answers and notifications to `merchant` (the public key when none).
/// The signer of an answer to a request that named `requested` in `Wechatpay-Serial`: during
/// a merchant's switch to the public key, the key the request names (WeChat's rule), the
/// platform certificate when it names none; otherwise the merchant's mode.
pub(crate) fn answer_signer(
    state: &SandboxState,
    merchant: Option<&MerchantV3>,
    requested: Option<&str>,
) -> Signer {
    signer_as(state, merchant, Some(requested))
}

/// The signer of a notification of `merchant`: during its switch, the public key for its
/// share of them.
pub(crate) fn notification_signer(state: &SandboxState, merchant: &MerchantV3) -> Signer {
    signer_as(state, Some(merchant), None)
}

fn signer_as(
    state: &SandboxState,
    merchant: Option<&MerchantV3>,
    answering: Option<Option<&str>>,
) -> Signer {
    use super::key_switch::{Mode, draw, mode};
    let public_key = || Signer {
        key: Arc::clone(&state.config.wechatpay.key),
        serial: state.config.wechatpay.key_id.clone(),
    };
    let with_certificate = match merchant.map(|m| (m, mode(state, m))) {
        None | Some((_, Mode::PublicKey)) => false,
        Some((_, Mode::Certificates)) => true,
        Some((_, Mode::Switching(_))) if answering.is_some() => {
            answering.flatten() != Some(state.config.wechatpay.key_id.as_str())
        }
        Some((m, Mode::Switching(ppm))) => !draw(state, &m.mch_id, ppm),
    };
    match merchant {
        Some(_) if with_certificate => match current(state) {
            Ok(c) => Signer {
                key: c.key,
                serial: c.serial_no,
            },
            Err(e) => {
                tracing::error!(error = %e, "no platform certificate; signing with the public key");
                public_key()
            }
        },
        _ => public_key(),
    }
}

/// The private key behind `serial` (the public key id or a platform certificate's serial), to
/// decrypt fields encrypted to it.
pub(crate) fn decryption_key(state: &SandboxState, serial: &str) -> Option<Arc<MerchantKey>> {
    if serial == state.config.wechatpay.key_id {
        return Some(Arc::clone(&state.config.wechatpay.key));
    }
    lock(&state.v3)
        .certificates
        .iter()
        .find(|c| c.serial_no == serial)
        .map(|c| Arc::clone(&c.key))
}

/// Whether the next notification gets a signature probe, at `rate`.
pub(crate) fn probe_now(rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return false;
    }
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX) < rate
}

/// `GET /v3/certificates`: the platform certificates in force, each encrypted with the merchant's
/// API v3 key.
pub(super) async fn certificates(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = authenticate(
        &state,
        method.as_str(),
        &path_and_query(&uri),
        &headers,
        b"",
    )
    .and_then(|merchant| {
        // A merchant signed with the public key only has no platform certificates (WeChat's
        // answer after the switch).
        if super::key_switch::mode(&state, &merchant) == super::key_switch::Mode::PublicKey {
            return Err(super::v3_error(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_EXISTS",
                "商户已切换为微信支付公钥，无可用的平台证书",
            ));
        }
        current(&state).map_err(|e| {
            super::v3_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SYSTEM_ERROR",
                e.to_string(),
            )
        })?;
        let list = lock(&state.v3).certificates.clone();
        let mut data = Vec::new();
        for c in &list {
            let nonce: String = hex32().chars().take(12).collect();
            let ciphertext =
                wechat_pay::v3::aead::encrypt(&merchant.api_v3_key, &c.pem, &nonce, "certificate")
                    .map_err(|e| {
                        super::v3_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "SYSTEM_ERROR",
                            e.to_string(),
                        )
                    })?;
            data.push(json!({
                "serial_no": c.serial_no,
                "effective_time": rfc3339(c.effective),
                "expire_time": rfc3339(c.expires),
                "encrypt_certificate": {
                    "algorithm": "AEAD_AES_256_GCM",
                    "nonce": nonce,
                    "associated_data": "certificate",
                    "ciphertext": ciphertext,
                },
            }));
        }
        Ok((StatusCode::OK, Some(json!({ "data": data }))))
    });
    reply(&state, &headers, answer)
}
