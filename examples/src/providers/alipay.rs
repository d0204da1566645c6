//! Alipay: its settings, the plan (all four of app id, keys and seller, or none), and its
//! client — live, or the emulator's demo app.

use aggregate_pay::channels::alipay::AlipayClient;
use alipay::{PrivateKey as AlipayPrivateKey, PublicKey as AlipayPublicKey};
use clap::Args;
use wechat_sandbox::Sandbox;

use super::common::{
    ProviderConfigError, Setting, empty, emulator_error, group, http_url, invalid, key_text, secret,
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
    /// Alipay's public key (PEM or bare base64, or a path to it).
    #[arg(long, env = "ALIPAY_PUBLIC_KEY")]
    pub alipay_public_key: Option<String>,
    /// The merchant's Alipay user id (PID, `2088…`): notifications naming another seller are
    /// refused.
    #[arg(long, env = "ALIPAY_SELLER_ID")]
    pub alipay_seller_id: Option<String>,
    /// Alipay gateway (default Alipay's; a standalone `wechat-sandbox` for staging).
    #[arg(long, env = "ALIPAY_GATEWAY_URL")]
    pub alipay_gateway_url: Option<String>,
}

/// Live Alipay.
#[derive(Debug, Clone)]
pub struct AlipayPlan {
    /// App id.
    pub app_id: String,
    /// The app's private key (PEM, base64 or a path).
    pub private_key: SecretSetting,
    /// Alipay's public key (PEM, base64 or a path).
    pub public_key: String,
    /// The seller's Alipay user id (notifications for another are refused).
    pub seller_id: String,
    /// Gateway.
    pub gateway: String,
}

impl AlipayArgs {
    /// Every setting, by variable.
    pub(super) fn settings(&self) -> Vec<Setting<'_>> {
        vec![
            ("ALIPAY_APP_ID", self.alipay_app_id.as_deref()),
            ("ALIPAY_PRIVATE_KEY", secret(&self.alipay_private_key)),
            ("ALIPAY_PUBLIC_KEY", self.alipay_public_key.as_deref()),
            ("ALIPAY_SELLER_ID", self.alipay_seller_id.as_deref()),
            ("ALIPAY_GATEWAY_URL", self.alipay_gateway_url.as_deref()),
        ]
    }

    /// Live mode's Alipay: `None` when nothing of it is set; a partial, empty or malformed
    /// setting is an error naming the variable.
    pub fn plan(&self) -> Result<Option<AlipayPlan>, ProviderConfigError> {
        let settings = self.settings();
        if let Some(name) = empty(&settings) {
            return Err(ProviderConfigError::Empty(name));
        }
        let required = &settings[..4];
        if !group("Alipay", &settings, required)? {
            return Ok(None);
        }
        let gateway = self
            .alipay_gateway_url
            .clone()
            .unwrap_or_else(|| aggregate_pay::channels::alipay::DEFAULT_GATEWAY.to_owned());
        http_url("ALIPAY_GATEWAY_URL", &gateway)?;
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
            public_key: self.alipay_public_key.clone().unwrap_or_default(),
            seller_id,
            gateway,
        }))
    }
}

/// The live client: the keys read (inline or from their files) and checked.
pub(super) fn connect(p: &AlipayPlan) -> Result<AlipayClient, ProviderConfigError> {
    AlipayClient::builder(
        p.app_id.clone(),
        AlipayPrivateKey::from_pem(&key_text("ALIPAY_PRIVATE_KEY", p.private_key.expose())?)
            .map_err(|e| invalid("ALIPAY_PRIVATE_KEY")(e.to_string()))?,
        AlipayPublicKey::from_pem(&key_text("ALIPAY_PUBLIC_KEY", &p.public_key)?)
            .map_err(|e| invalid("ALIPAY_PUBLIC_KEY")(e.to_string()))?,
    )
    .seller_id(p.seller_id.clone())
    .base_url(p.gateway.clone())
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
                "ALIPAY_GATEWAY_URL" => a.alipay_gateway_url = v,
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
            e.contains("Alipay")
                && e.contains("ALIPAY_PUBLIC_KEY")
                && e.contains("ALIPAY_SELLER_ID"),
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
}
