//! Alipay: its settings, the plan (app id, private key and seller, with Alipay's public key or
//! the three certificates of certificate mode — all of one mode, or nothing), and its client —
//! live, or the emulator's demo app.

use aggregate_pay::channels::alipay::AlipayClient;
use alipay::{
    AesKey, AlipayKeys, Certificates, PrivateKey as AlipayPrivateKey, PublicKey as AlipayPublicKey,
};
use clap::Args;
use wechat_sandbox::Sandbox;

use super::common::{
    ProviderConfigError, Setting, empty, emulator_error, group, http_url, invalid, key_text, names,
    secret,
};
use crate::settings::SecretSetting;

/// Alipay's settings.
#[derive(Clone, Default, Debug, Args)]
pub struct AlipayArgs {
    /// Alipay app id; with both keys and the seller id, Alipay is on.
    #[arg(long, env = "ALIPAY_APP_ID")]
    pub alipay_app_id: Option<String>,
    /// The app's Alipay private key (PEM or bare base64, or a path to it).
    #[arg(long, env = "ALIPAY_PRIVATE_KEY")]
    pub alipay_private_key: Option<SecretSetting>,
    /// Alipay's public key (PEM or bare base64, or a path to it): public-key mode.
    #[arg(long, env = "ALIPAY_PUBLIC_KEY")]
    pub alipay_public_key: Option<String>,
    /// Certificate mode: the app certificate (`appCertPublicKey_<app_id>.crt`, PEM or a path).
    #[arg(long, env = "ALIPAY_APP_CERT")]
    pub alipay_app_cert: Option<String>,
    /// Certificate mode: Alipay's certificate (`alipayCertPublicKey_RSA2.crt`, PEM or a path).
    #[arg(long, env = "ALIPAY_PUBLIC_CERT")]
    pub alipay_public_cert: Option<String>,
    /// Certificate mode: Alipay's root certificate (`alipayRootCert.crt`, PEM or a path).
    #[arg(long, env = "ALIPAY_ROOT_CERT")]
    pub alipay_root_cert: Option<String>,
    /// The app's AES key (base64), when the app encrypts its content (接口内容加密).
    #[arg(long, env = "ALIPAY_AES_KEY")]
    pub alipay_aes_key: Option<SecretSetting>,
    /// The merchant's Alipay user id (PID, `2088…`): notifications naming another seller are
    /// refused.
    #[arg(long, env = "ALIPAY_SELLER_ID")]
    pub alipay_seller_id: Option<String>,
    /// Alipay gateway (default Alipay's; a standalone `wechat-sandbox` for staging).
    #[arg(long, env = "ALIPAY_GATEWAY_URL")]
    pub alipay_gateway_url: Option<String>,
    /// Alipay's web authorization page, where the Alipay browser's buyer login goes (default
    /// Alipay's).
    #[arg(long, env = "ALIPAY_AUTHORIZE_URL")]
    pub alipay_authorize_url: Option<String>,
}

/// What names the missing mode.
const MODE_MISSING: &str = "ALIPAY_PUBLIC_KEY (or ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT and ALIPAY_ROOT_CERT for certificate mode)";

/// The two ways an Alipay app verifies Alipay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlipayMode {
    /// Alipay's public key (PEM, base64 or a path).
    PublicKey(String),
    /// The app certificate, Alipay's certificate and the root (PEM or paths).
    Certificates {
        /// `ALIPAY_APP_CERT`.
        app_cert: String,
        /// `ALIPAY_PUBLIC_CERT`.
        public_cert: String,
        /// `ALIPAY_ROOT_CERT`.
        root_cert: String,
    },
}

/// Live Alipay.
#[derive(Debug, Clone)]
pub struct AlipayPlan {
    /// App id.
    pub app_id: String,
    /// The app's private key (PEM, base64 or a path).
    pub private_key: SecretSetting,
    /// How Alipay's answers are verified.
    pub mode: AlipayMode,
    /// The app's AES key (base64), when it encrypts its content.
    pub aes_key: Option<SecretSetting>,
    /// The seller's Alipay user id (notifications for another are refused).
    pub seller_id: String,
    /// Gateway.
    pub gateway: String,
    /// The web authorization page.
    pub authorize_url: String,
}

impl AlipayArgs {
    /// Every setting, by variable.
    pub(super) fn settings(&self) -> Vec<Setting<'_>> {
        vec![
            ("ALIPAY_APP_ID", self.alipay_app_id.as_deref()),
            ("ALIPAY_PRIVATE_KEY", secret(&self.alipay_private_key)),
            ("ALIPAY_SELLER_ID", self.alipay_seller_id.as_deref()),
            ("ALIPAY_PUBLIC_KEY", self.alipay_public_key.as_deref()),
            ("ALIPAY_APP_CERT", self.alipay_app_cert.as_deref()),
            ("ALIPAY_PUBLIC_CERT", self.alipay_public_cert.as_deref()),
            ("ALIPAY_ROOT_CERT", self.alipay_root_cert.as_deref()),
            ("ALIPAY_AES_KEY", secret(&self.alipay_aes_key)),
            ("ALIPAY_GATEWAY_URL", self.alipay_gateway_url.as_deref()),
            ("ALIPAY_AUTHORIZE_URL", self.alipay_authorize_url.as_deref()),
        ]
    }

    /// Live mode's Alipay: `None` when nothing of it is set; a partial, empty or malformed
    /// setting is an error naming the variable.
    pub fn plan(&self) -> Result<Option<AlipayPlan>, ProviderConfigError> {
        let settings = self.settings();
        if let Some(name) = empty(&settings) {
            return Err(ProviderConfigError::Empty(name));
        }
        if names(&settings, true).is_empty() {
            return Ok(None);
        }
        // The app, its key and the seller, and one of the two modes: every missing one named.
        let mut missing = names(&settings[..3], false);
        if self.alipay_public_key.is_none() && names(&settings[4..7], true).is_empty() {
            missing.push(MODE_MISSING);
        }
        if !missing.is_empty() {
            return Err(ProviderConfigError::Partial {
                provider: "Alipay",
                set: names(&settings, true).join(", "),
                missing: missing.join(", "),
            });
        }
        let mode = self.mode(&settings)?;
        let gateway = self
            .alipay_gateway_url
            .clone()
            .unwrap_or_else(|| aggregate_pay::channels::alipay::DEFAULT_GATEWAY.to_owned());
        http_url("ALIPAY_GATEWAY_URL", &gateway)?;
        let authorize_url = self
            .alipay_authorize_url
            .clone()
            .unwrap_or_else(|| alipay::DEFAULT_AUTHORIZE_URL.to_owned());
        http_url("ALIPAY_AUTHORIZE_URL", &authorize_url)?;
        let seller_id = self.alipay_seller_id.clone().unwrap_or_default();
        if seller_id.len() != 16
            || !seller_id.starts_with("2088")
            || !seller_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid("ALIPAY_SELLER_ID")(format!(
                "{seller_id:?} is not an Alipay user id (2088 and 12 digits)"
            )));
        }
        Ok(Some(AlipayPlan {
            app_id: self.alipay_app_id.clone().unwrap_or_default(),
            private_key: self.alipay_private_key.clone().unwrap_or_default(),
            mode,
            aes_key: self.alipay_aes_key.clone(),
            seller_id,
            gateway,
            authorize_url,
        }))
    }

    /// Exactly one mode, complete: Alipay's public key, or all three certificates.
    fn mode(&self, settings: &[Setting<'_>]) -> Result<AlipayMode, ProviderConfigError> {
        let certificates = &settings[4..7];
        let certs_set = names(certificates, true);
        match (&self.alipay_public_key, certs_set.is_empty()) {
            (Some(_), false) => Err(ProviderConfigError::Conflict(
                "Alipay: set ALIPAY_PUBLIC_KEY (public-key mode) or ALIPAY_APP_CERT, \
                 ALIPAY_PUBLIC_CERT and ALIPAY_ROOT_CERT (certificate mode), not both",
            )),
            (Some(key), true) => Ok(AlipayMode::PublicKey(key.clone())),
            (None, true) => Err(ProviderConfigError::Partial {
                provider: "Alipay",
                set: names(&settings[..3], true).join(", "),
                missing: MODE_MISSING.into(),
            }),
            (None, false) => {
                group("Alipay certificate mode", certificates, certificates)?;
                Ok(AlipayMode::Certificates {
                    app_cert: self.alipay_app_cert.clone().unwrap_or_default(),
                    public_cert: self.alipay_public_cert.clone().unwrap_or_default(),
                    root_cert: self.alipay_root_cert.clone().unwrap_or_default(),
                })
            }
        }
    }
}

/// The live client: the keys and certificates read (inline or from their files) and checked
/// (Alipay's certificate must chain to the root).
pub(super) fn connect(p: &AlipayPlan) -> Result<AlipayClient, ProviderConfigError> {
    let keys: AlipayKeys = match &p.mode {
        AlipayMode::PublicKey(key) => {
            AlipayPublicKey::from_pem(&key_text("ALIPAY_PUBLIC_KEY", key)?)
                .map_err(|e| invalid("ALIPAY_PUBLIC_KEY")(e.to_string()))?
                .into()
        }
        AlipayMode::Certificates {
            app_cert,
            public_cert,
            root_cert,
        } => {
            let app = key_text("ALIPAY_APP_CERT", app_cert)?;
            let public = key_text("ALIPAY_PUBLIC_CERT", public_cert)?;
            let root = key_text("ALIPAY_ROOT_CERT", root_cert)?;
            alipay::cert::cert_sn(&app).map_err(|e| invalid("ALIPAY_APP_CERT")(e.to_string()))?;
            alipay::cert::root_cert_sn(&root)
                .map_err(|e| invalid("ALIPAY_ROOT_CERT")(e.to_string()))?;
            Certificates::from_pem(&app, &public, &root)
                .map_err(|e| invalid("ALIPAY_PUBLIC_CERT")(e.to_string()))?
                .into()
        }
    };
    let builder = AlipayClient::builder(
        p.app_id.clone(),
        AlipayPrivateKey::from_pem(&key_text("ALIPAY_PRIVATE_KEY", p.private_key.expose())?)
            .map_err(|e| invalid("ALIPAY_PRIVATE_KEY")(e.to_string()))?,
        keys,
    )
    .seller_id(p.seller_id.clone())
    .base_url(p.gateway.clone())
    .authorize_url(p.authorize_url.clone());
    let builder = match &p.aes_key {
        Some(k) => builder.aes_key(
            AesKey::from_base64(k.expose())
                .map_err(|e| invalid("ALIPAY_AES_KEY")(e.to_string()))?,
        ),
        None => builder,
    };
    builder
        .build()
        .map_err(|e| invalid("Alipay")(e.to_string()))
}

/// Demo mode: the emulator's demo app.
pub(super) fn demo(emulator: &Sandbox) -> Result<AlipayClient, ProviderConfigError> {
    let app = emulator
        .config()
        .alipay_apps
        .first()
        .ok_or_else(|| emulator_error(&"no demo Alipay app"))?;
    let key = emulator
        .demo_alipay_app_key()
        .cloned()
        .ok_or_else(|| emulator_error(&"no demo Alipay app key"))?;
    AlipayClient::builder(app.app_id.clone(), key, emulator.alipay_public_key())
        .seller_id(app.seller_id.clone())
        .base_url(emulator.base_url())
        .build()
        .map_err(|e| emulator_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> AlipayArgs {
        let mut a = AlipayArgs::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "ALIPAY_APP_ID" => a.alipay_app_id = v,
                "ALIPAY_PRIVATE_KEY" => a.alipay_private_key = v.map(Into::into),
                "ALIPAY_PUBLIC_KEY" => a.alipay_public_key = v,
                "ALIPAY_SELLER_ID" => a.alipay_seller_id = v,
                "ALIPAY_APP_CERT" => a.alipay_app_cert = v,
                "ALIPAY_PUBLIC_CERT" => a.alipay_public_cert = v,
                "ALIPAY_ROOT_CERT" => a.alipay_root_cert = v,
                "ALIPAY_AES_KEY" => a.alipay_aes_key = v.map(Into::into),
                "ALIPAY_GATEWAY_URL" => a.alipay_gateway_url = v,
                "ALIPAY_AUTHORIZE_URL" => a.alipay_authorize_url = v,
                other => panic!("unknown setting {other}"),
            }
        }
        a
    }

    const FULL: [(&str, &str); 4] = [
        ("ALIPAY_APP_ID", "2021000000000001"),
        ("ALIPAY_PRIVATE_KEY", "k"),
        ("ALIPAY_PUBLIC_KEY", "p"),
        ("ALIPAY_SELLER_ID", "2088000000000001"),
    ];

    fn error(pairs: &[(&str, &str)]) -> String {
        match args(pairs).plan() {
            Err(e) => e.to_string(),
            Ok(plan) => panic!("expected an error, got {plan:?}"),
        }
    }

    #[test]
    fn alipay_alone_missing_partial_empty_and_malformed() {
        // Missing: off.
        assert!(args(&[]).plan().unwrap().is_none());
        // Complete: on, with the default gateway.
        let plan = args(&FULL).plan().unwrap().unwrap();
        assert_eq!(
            plan.gateway,
            aggregate_pay::channels::alipay::DEFAULT_GATEWAY
        );
        // Partial: every missing variable named.
        let e = error(&FULL[..2]);
        assert!(
            e.contains("Alipay") && e.contains("ALIPAY_SELLER_ID"),
            "{e}"
        );
        let e = error(&[FULL[0], FULL[1], FULL[3]]);
        assert!(
            e.contains("ALIPAY_PUBLIC_KEY") && e.contains("ALIPAY_APP_CERT"),
            "{e}"
        );
        let e = error(&[("ALIPAY_GATEWAY_URL", "http://127.0.0.1:1/gateway.do")]);
        assert!(e.contains("ALIPAY_APP_ID"), "{e}");
        // Empty.
        let mut empty = FULL.to_vec();
        empty[1] = ("ALIPAY_PRIVATE_KEY", "");
        assert!(error(&empty).contains("ALIPAY_PRIVATE_KEY is set but empty"));
        // Malformed: another kind of id, a gateway that is not http(s).
        let mut wrong = FULL.to_vec();
        wrong[3] = ("ALIPAY_SELLER_ID", "2021000000000001");
        let e = error(&wrong);
        assert!(e.contains("ALIPAY_SELLER_ID") && e.contains("2088"), "{e}");
        let mut ftp = FULL.to_vec();
        ftp.push(("ALIPAY_GATEWAY_URL", "ftp://example.com"));
        assert!(error(&ftp).contains("ALIPAY_GATEWAY_URL"));
    }

    #[test]
    fn alipay_in_certificate_mode_whole_or_refused() {
        let certs = [
            ("ALIPAY_APP_CERT", "app.crt"),
            ("ALIPAY_PUBLIC_CERT", "alipay.crt"),
            ("ALIPAY_ROOT_CERT", "root.crt"),
        ];
        let base = [FULL[0], FULL[1], FULL[3]];
        let mut whole = base.to_vec();
        whole.extend(certs);
        let plan = args(&whole).plan().unwrap().unwrap();
        assert_eq!(
            plan.mode,
            AlipayMode::Certificates {
                app_cert: "app.crt".into(),
                public_cert: "alipay.crt".into(),
                root_cert: "root.crt".into(),
            }
        );
        // Half a mode: the missing certificates named.
        let mut half = base.to_vec();
        half.push(certs[0]);
        let e = error(&half);
        assert!(
            e.contains("ALIPAY_PUBLIC_CERT") && e.contains("ALIPAY_ROOT_CERT"),
            "{e}"
        );
        // Both modes at once.
        let mut both = whole.clone();
        both.push(FULL[2]);
        assert!(error(&both).contains("not both"));
        // The AES key alone turns Alipay on, and asks for the rest.
        let e = error(&[("ALIPAY_AES_KEY", "AAECAwQFBgcICQoLDA0ODw==")]);
        assert!(e.contains("ALIPAY_APP_ID"), "{e}");
        let mut aes = FULL.to_vec();
        aes.push(("ALIPAY_AES_KEY", "AAECAwQFBgcICQoLDA0ODw=="));
        let plan = args(&aes).plan().unwrap().unwrap();
        assert!(plan.aes_key.is_some());
        assert!(!format!("{plan:?}").contains("AAECAwQFBgcICQoLDA0ODw=="));
    }
}
