//! Certificate mode (公钥证书): the emulator is its own certificate authority. An app configured
//! for certificate mode gets an app certificate for its key; Alipay's certificate wraps the
//! gateway key until a rotation (`POST /sandbox/alipay/certs/rotate`,
//! [`crate::Sandbox::rotate_alipay_certificate`]) makes a new key and certificate that every
//! later answer to such an app is signed with and names (`alipay_cert_sn`). Requests must carry the app's `app_cert_sn` and the root's
//! `alipay_root_cert_sn`; `alipay.open.app.alipaycert.download` hands out any Alipay
//! certificate the emulator ever made, by SN. Apps in public-key mode are untouched.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ::alipay::test_util::TestPki;
use ::alipay::{PrivateKey, cert};
use base64::Engine;
use serde::Serialize;
use serde_json::json;

use super::{AliReply, AliRequest, business, invalid, missing};
use crate::config::SandboxConfig;
use crate::lock;

/// An Alipay certificate the emulator made.
#[derive(Clone)]
pub(crate) struct AlipayCert {
    pub sn: String,
    pub pem: String,
    pub key: PrivateKey,
}

/// The three certificates an app in certificate mode is configured with, and their SNs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppCertificates {
    /// The app certificate (`appCertPublicKey_<app_id>.crt`).
    pub app_cert: String,
    /// Alipay's current certificate and its intermediate (`alipayCertPublicKey_RSA2.crt`).
    pub alipay_cert: String,
    /// The root certificate file (`alipayRootCert.crt`).
    pub root_cert: String,
    /// `app_cert_sn`.
    pub app_cert_sn: String,
    /// The SN answers name now.
    pub alipay_cert_sn: String,
    /// `alipay_root_cert_sn`.
    pub alipay_root_cert_sn: String,
}

/// The emulator's certificate authority and what it issued.
pub(crate) struct AlipayPki {
    ca: TestPki,
    root_sn: String,
    /// App id → (app_cert_sn, app certificate).
    apps: BTreeMap<String, (String, String)>,
    /// Every Alipay certificate made, oldest first; the last one signs.
    alipay: Mutex<Vec<AlipayCert>>,
}

impl std::fmt::Debug for AlipayPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayPki")
            .field("root_sn", &self.root_sn)
            .field("apps", &self.apps.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AlipayPki {
    /// The authority, when an app is in certificate mode (none otherwise: no keys are made).
    pub(crate) fn for_config(config: &SandboxConfig) -> Result<Option<Self>, ::alipay::Error> {
        let cert_apps: Vec<_> = config
            .alipay_apps
            .iter()
            .filter(|a| a.certificates)
            .collect();
        if cert_apps.is_empty() {
            return Ok(None);
        }
        let ca = TestPki::new("Sandbox Alipay")?;
        let root_sn = cert::root_cert_sn(ca.root_pem())?;
        let mut apps = BTreeMap::new();
        for app in cert_apps {
            let pem = ca.issue(
                &format!("{}-{}", app.seller_id, app.app_id),
                &app.public_key,
            )?;
            apps.insert(app.app_id.clone(), (cert::cert_sn(&pem)?, pem));
        }
        let key = config.alipay_key.clone();
        let pem = ca.issue("Sandbox Alipay", &key.public_key())?;
        let first = AlipayCert {
            sn: cert::cert_sn(&pem)?,
            pem,
            key,
        };
        Ok(Some(AlipayPki {
            ca,
            root_sn,
            apps,
            alipay: Mutex::new(vec![first]),
        }))
    }

    /// Whether `app_id` is in certificate mode.
    pub(crate) fn has_app(&self, app_id: &str) -> bool {
        self.apps.contains_key(app_id)
    }

    /// The certificate answers are signed with now.
    pub(crate) fn current(&self) -> Option<AlipayCert> {
        lock(&self.alipay).last().cloned()
    }

    /// A new Alipay key and certificate; answers name it from now on.
    pub(crate) fn rotate(&self) -> Result<AlipayCert, ::alipay::Error> {
        let n = lock(&self.alipay).len() + 1;
        let key = PrivateKey::generate()?;
        let pem = self
            .ca
            .issue(&format!("Sandbox Alipay {n}"), &key.public_key())?;
        let made = AlipayCert {
            sn: cert::cert_sn(&pem)?,
            pem,
            key,
        };
        lock(&self.alipay).push(made.clone());
        Ok(made)
    }

    /// What an app in certificate mode is configured with.
    pub(crate) fn app_certificates(&self, app_id: &str) -> Option<AppCertificates> {
        let (app_cert_sn, app_cert) = self.apps.get(app_id)?.clone();
        let current = self.current()?;
        Some(AppCertificates {
            app_cert,
            alipay_cert: current.pem,
            root_cert: self.ca.root_pem().to_owned(),
            app_cert_sn,
            alipay_cert_sn: current.sn,
            alipay_root_cert_sn: self.root_sn.clone(),
        })
    }

    /// A request of an app in certificate mode names its certificate and the root.
    pub(crate) fn check_request(
        &self,
        app_id: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(), AliReply> {
        let Some((app_sn, _)) = self.apps.get(app_id) else {
            return Ok(());
        };
        let given = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
        if given("app_cert_sn").is_empty() {
            return Err(missing("app_cert_sn"));
        }
        if given("app_cert_sn") != app_sn {
            return Err(invalid("isv.app-cert-not-exist", "应用公钥证书不存在"));
        }
        if given("alipay_root_cert_sn") != self.root_sn {
            return Err(invalid(
                "isv.invalid-alipay-root-cert-sn",
                "无效支付宝根证书序列号",
            ));
        }
        Ok(())
    }

    /// `alipay.open.app.alipaycert.download`.
    pub(crate) fn download(&self, req: &AliRequest) -> Result<AliReply, AliReply> {
        let sn = req
            .biz
            .get("alipay_cert_sn")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("alipay_cert_sn"))?;
        let pem = lock(&self.alipay)
            .iter()
            .find(|c| c.sn == sn)
            .map(|c| c.pem.clone())
            .ok_or_else(|| business("CERT_NOT_EXIST", "证书不存在"))?;
        Ok(AliReply::Ok(json!({
            "alipay_cert_content": base64::engine::general_purpose::STANDARD.encode(pem),
        })))
    }
}
