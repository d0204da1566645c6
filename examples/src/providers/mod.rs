//! WeChat Pay, WeChat MP and Alipay for the servers, in one of two worlds ([`Mode`]): demo (no
//! provider credential: the sandbox emulator started in process, and the test-money `sandbox`
//! channel) or live (the configured providers only; the others are off, never emulated). Both
//! servers flatten [`ProviderArgs`] into their configuration, call [`connect`], and register
//! [`Providers::channels`].
//!
//! One file per provider, each with its clap settings group, a typed `plan()` that names any
//! missing, empty or conflicting variable, and its live and demo constructors:
//!
//! - [`wechat_pay`] — WeChat Pay (API v2 or v3, the merchant certificate);
//! - [`wechat_mp`] — the Official Account and the Mini Program (their app ids are WeChat Pay's
//!   too);
//! - [`alipay`] — Alipay.
//!
//! This file only decides the mode and puts the providers together; `common` holds what the
//! provider files share (the error, the all-or-nothing rule, URLs, keys); `choice` picks which
//! registered channel and method a request pays with (by id and declared methods, never by a
//! channel's name). A new provider is a file here, one field in [`ProviderArgs`], one line in
//! [`ProviderArgs::plan`], [`connect`] and [`Providers::channels`].

pub mod alipay;
mod choice;
mod common;
pub mod wechat_mp;
pub mod wechat_pay;

use std::sync::Arc;

use aggregate_pay::Channels;
use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::sandbox::SandboxChannel;
use aggregate_pay::channels::wechat::{WechatApi, WechatChannel};
use clap::Args;
use wechat_sandbox::Sandbox;

pub use self::alipay::{AlipayArgs, AlipayPlan};
pub use self::wechat_mp::{MpPlan, MpPlans, WechatApps, WechatMpArgs};
pub use self::wechat_pay::{
    CertificateSource, V3Plan, WechatPayApi, WechatPayArgs, WechatPayPlan, demo_sub_merchants,
};
pub use crate::settings::redact_url;
pub use choice::{ChoiceError, channel_for, resolve};
pub use common::ProviderConfigError;

use crate::settings::SecretSetting;
use common::{empty, emulator_error};

/// The demo merchant's Official Account (the emulator knows it).
pub const DEMO_OFFICIAL_APP_ID: &str = "wxsandbox00000001";
/// The demo merchant's Mini Program.
pub const DEMO_MINI_APP_ID: &str = "wxsandboxmini0001";
/// The demo merchant.
pub const DEMO_MCH_ID: &str = "1900000109";

/// Provider credentials and endpoints, one group per provider. With none of them set a server
/// runs in demo mode. Secrets are [`SecretSetting`]s: `Debug` shows whether each is set, never
/// the secret.
#[derive(Clone, Default, Debug, Args)]
pub struct ProviderArgs {
    /// WeChat Pay.
    #[command(flatten)]
    pub wechat_pay: WechatPayArgs,
    /// The WeChat apps (Official Account, Mini Program).
    #[command(flatten)]
    pub wechat_mp: WechatMpArgs,
    /// Alipay.
    #[command(flatten)]
    pub alipay: AlipayArgs,
}

/// How a server runs, decided once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No provider credential: the embedded emulator and test money only.
    Demo,
    /// Provider credentials: real money, no emulator, no test money.
    Live,
}

impl Mode {
    /// `demo` or `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Demo => "demo",
            Mode::Live => "live",
        }
    }

    /// Whether this is demo mode.
    pub fn is_demo(self) -> bool {
        self == Mode::Demo
    }

    /// The first line a server prints.
    pub fn banner(self) -> &'static str {
        match self {
            Mode::Demo => {
                "DEMO MODE: test money only (embedded WeChat Pay / WeChat MP / Alipay emulator; \
                 set provider credentials to go live)"
            }
            Mode::Live => "LIVE MODE: real money (configured providers only; no test money)",
        }
    }
}

/// The providers live mode turns on; the others are off.
#[derive(Debug, Clone)]
pub struct LivePlan {
    /// WeChat Pay, when configured.
    pub wechat_pay: Option<WechatPayPlan>,
    /// WeChat MP, each app when configured.
    pub mp: MpPlans,
    /// Alipay, when configured.
    pub alipay: Option<AlipayPlan>,
}

/// The providers a server runs with.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The embedded emulator, test money.
    Demo {
        /// The WeChat Pay signature type the emulated merchant uses (v2).
        sign_type: ::wechat_pay::SignType,
        /// The API the emulated merchant speaks (`DEMO_WECHAT_API`).
        api: WechatPayApi,
    },
    /// The configured providers only.
    Live(Box<LivePlan>),
}

impl Plan {
    /// Demo or live.
    pub fn mode(&self) -> Mode {
        match self {
            Plan::Demo { .. } => Mode::Demo,
            Plan::Live(_) => Mode::Live,
        }
    }
}

impl ProviderArgs {
    /// Decides the mode — demo when no provider setting is set at all — and, live, asks each
    /// provider for its part: complete or off, never half.
    pub fn plan(&self) -> Result<Plan, ProviderConfigError> {
        let sign_type = self.wechat_pay.sign_type()?;
        let demo_api = self.wechat_pay.demo_api()?;
        let mut settings = self.wechat_pay.settings();
        settings.extend(self.wechat_mp.settings());
        settings.extend(self.alipay.settings());
        if let Some(name) = empty(&settings) {
            return Err(ProviderConfigError::Empty(name));
        }
        if settings.iter().all(|(_, v)| v.is_none()) {
            return Ok(Plan::Demo {
                sign_type,
                api: demo_api,
            });
        }
        let wechat_pay = self.wechat_pay.plan(self.wechat_mp.apps())?;
        let mp = self.wechat_mp.plan(wechat_pay.is_some())?;
        let alipay = self.alipay.plan()?;
        if wechat_pay.is_none() && alipay.is_none() {
            return Err(ProviderConfigError::NoPaymentProvider);
        }
        Ok(Plan::Live(Box::new(LivePlan {
            wechat_pay,
            mp,
            alipay,
        })))
    }
}

/// The connected providers.
#[derive(Debug)]
pub struct Providers {
    /// Demo or live.
    pub mode: Mode,
    /// WeChat Pay (v2 or v3) for the Official Account's app id (the `wechat` channel), when on.
    pub wechat_pay: Option<WechatApi>,
    /// WeChat Pay (v2 or v3) for the Mini Program's app id (the `wechat_mini` channel), when on.
    pub wechat_pay_mini: Option<WechatApi>,
    /// Alipay, when on.
    pub alipay: Option<AlipayClient>,
    /// WeChat MP for the Official Account (web login, template messages), when on.
    pub mp: Option<::wechat_mp::Client>,
    /// WeChat MP for the Mini Program (`jscode2session`, subscribe messages), when on.
    pub mini: Option<::wechat_mp::Client>,
    /// The Official Account's callback token, when known.
    pub mp_token: Option<SecretSetting>,
    /// The Official Account's EncodingAESKey, when set.
    pub mp_aes_key: Option<SecretSetting>,
    /// The embedded emulator (demo mode only).
    pub emulator: Option<Sandbox>,
    /// What the test-money channel signs its notifications with (demo mode only).
    test_money_secret: Option<String>,
}

impl Providers {
    /// The WeChat Pay API v3 clients in use, one per merchant (for their metrics).
    pub fn v3_clients(&self) -> Vec<::wechat_pay::v3::Client> {
        let mut clients: Vec<::wechat_pay::v3::Client> = Vec::new();
        for api in [&self.wechat_pay, &self.wechat_pay_mini]
            .into_iter()
            .flatten()
        {
            if let WechatApi::V3 { client, .. } = api {
                if !clients.iter().any(|c| c.mch_id() == client.mch_id()) {
                    clients.push(client.clone());
                }
            }
        }
        clients
    }

    /// The payment channels to register: `wechat` (the Official Account), `wechat_mini` (the
    /// Mini Program) and `alipay` when on and, in demo mode only, the in-process test-money
    /// `sandbox` channel (returned too: its "pay" button pays through it).
    pub fn channels(&self, sandbox_account: &str) -> (Channels, Option<Arc<SandboxChannel>>) {
        let mut channels = Channels::new();
        if let Some(client) = &self.wechat_pay {
            channels = channels.with(WechatChannel::official_account(client.clone()));
        }
        if let Some(client) = &self.wechat_pay_mini {
            channels = channels.with(WechatChannel::mini_program(client.clone()));
        }
        if let Some(client) = &self.alipay {
            channels = channels.with(AlipayChannel::new(client.clone()));
        }
        let sandbox = self
            .test_money_secret
            .as_ref()
            .map(|secret| Arc::new(SandboxChannel::new(sandbox_account, secret.clone())));
        if let Some(s) = &sandbox {
            channels = channels.with_shared(s.clone());
        }
        (channels, sandbox)
    }
}

/// Connects the providers the plan turns on. In demo mode the emulator starts in process and
/// delivers its Official Account events to `mp_callback_url`; `token_store` shares the MP access
/// token between instances.
pub async fn connect(
    plan: &Plan,
    mp_callback_url: Option<&str>,
    token_store: Option<Arc<dyn ::wechat_mp::TokenStore>>,
) -> Result<Providers, ProviderConfigError> {
    let live = match plan {
        Plan::Demo { sign_type, api } => {
            return demo(*sign_type, *api, mp_callback_url, token_store.as_ref()).await;
        }
        Plan::Live(live) => live,
    };
    let (wechat_pay, wechat_pay_mini) = match &live.wechat_pay {
        Some(p) => wechat_pay::connect(p)?,
        None => (None, None),
    };
    let mp = wechat_mp::connect(&live.mp, token_store.as_ref())?;
    Ok(Providers {
        mode: Mode::Live,
        wechat_pay,
        wechat_pay_mini,
        alipay: live.alipay.as_ref().map(alipay::connect).transpose()?,
        mp: mp.official,
        mini: mp.mini,
        mp_token: mp.token,
        mp_aes_key: mp.aes_key,
        emulator: None,
        test_money_secret: None,
    })
}

/// Demo mode: every provider is the emulator, started here (refunds complete after 5 s, as a
/// real one might) with each provider's demo identities.
async fn demo(
    sign_type: ::wechat_pay::SignType,
    api: WechatPayApi,
    mp_callback_url: Option<&str>,
    token_store: Option<&Arc<dyn ::wechat_mp::TokenStore>>,
) -> Result<Providers, ProviderConfigError> {
    let apps = [DEMO_OFFICIAL_APP_ID, DEMO_MINI_APP_ID];
    let merchant = wechat_pay::DemoMerchant::new(DEMO_MCH_ID, api, sign_type)?;
    let mut builder = merchant.register(Sandbox::builder(), &apps)?;
    for app in wechat_mp::demo_apps(DEMO_OFFICIAL_APP_ID, DEMO_MINI_APP_ID, mp_callback_url)? {
        builder = builder.mp_app(app);
    }
    let emulator = builder
        .refund_delay(Some(std::time::Duration::from_secs(5)))
        .start()
        .await
        .map_err(|e| emulator_error(&e))?;
    let mp = wechat_mp::demo(&emulator, token_store)?;
    Ok(Providers {
        mode: Mode::Demo,
        wechat_pay: Some(merchant.client(&emulator, DEMO_OFFICIAL_APP_ID)?),
        wechat_pay_mini: Some(merchant.client(&emulator, DEMO_MINI_APP_ID)?),
        alipay: Some(alipay::demo(&emulator)?),
        mp: mp.official,
        mini: mp.mini,
        mp_token: mp.token,
        mp_aes_key: mp.aes_key,
        test_money_secret: Some(crate::random::token(16).map_err(|e| emulator_error(&e))?),
        emulator: Some(emulator),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> ProviderArgs {
        let mut a = ProviderArgs::default();
        a.wechat_pay.wechat_sign_type = "MD5".into();
        for (k, v) in pairs {
            let raw = (*v).to_owned();
            let v = Some(raw.clone());
            match *k {
                "WECHAT_APP_ID" => a.wechat_mp.wechat_app_id = v,
                "WECHAT_APP_SECRET" => a.wechat_mp.wechat_app_secret = v.map(Into::into),
                "WECHAT_MINI_APP_ID" => a.wechat_mp.wechat_mini_app_id = v,
                "WECHAT_MINI_APP_SECRET" => a.wechat_mp.wechat_mini_app_secret = v.map(Into::into),
                "WECHAT_MP_AES_KEY" => a.wechat_mp.wechat_mp_aes_key = v.map(Into::into),
                "WECHAT_MCH_ID" => a.wechat_pay.wechat_mch_id = v,
                "WECHAT_API_KEY" => a.wechat_pay.wechat_api_key = v.map(Into::into),
                "WECHAT_PAY_BASE_URL" => a.wechat_pay.wechat_pay_base_url = v,
                "WECHAT_SIGN_TYPE" => a.wechat_pay.wechat_sign_type = raw,
                "DEMO_WECHAT_API" => a.wechat_pay.demo_wechat_api = raw,
                "ALIPAY_GATEWAY_URL" => a.alipay.alipay_gateway_url = v,
                other => panic!("unknown setting {other}"),
            }
        }
        a
    }

    const STAGING: [(&str, &str); 4] = [
        ("WECHAT_APP_ID", "wx1"),
        ("WECHAT_MCH_ID", "1000"),
        ("WECHAT_API_KEY", "k"),
        ("WECHAT_PAY_BASE_URL", "http://127.0.0.1:9100"),
    ];

    fn error(pairs: &[(&str, &str)]) -> String {
        match args(pairs).plan() {
            Err(e) => e.to_string(),
            Ok(plan) => panic!("expected an error, got {plan:?}"),
        }
    }

    #[test]
    fn nothing_set_is_demo_speaking_the_api_it_is_told() {
        assert!(matches!(
            args(&[]).plan().unwrap(),
            Plan::Demo {
                api: WechatPayApi::V2,
                ..
            }
        ));
        assert!(matches!(
            args(&[("DEMO_WECHAT_API", "v3")]).plan().unwrap(),
            Plan::Demo {
                api: WechatPayApi::V3,
                ..
            }
        ));
        assert!(error(&[("DEMO_WECHAT_API", "v9")]).contains("DEMO_WECHAT_API"));
        // A bad sign type is refused in demo mode too.
        assert!(error(&[("WECHAT_SIGN_TYPE", "SHA1")]).contains("WECHAT_SIGN_TYPE"));
    }

    #[test]
    fn any_credential_is_live_with_only_the_configured_providers() {
        let Plan::Live(live) = args(&STAGING).plan().unwrap() else {
            panic!("live expected")
        };
        assert_eq!(live.wechat_pay.unwrap().base_url, "http://127.0.0.1:9100");
        assert!(
            live.mp.official.is_none(),
            "no app secret: MP is off, not emulated"
        );
        assert!(
            live.alipay.is_none(),
            "no Alipay keys: Alipay is off, not emulated"
        );
        // An empty value anywhere is refused, not ignored.
        assert!(error(&[("WECHAT_API_KEY", "")]).contains("WECHAT_API_KEY is set but empty"));
    }

    #[test]
    fn the_decisions_across_providers() {
        // An app id alone: neither WeChat Pay nor MP, both named.
        let e = error(&[("WECHAT_APP_ID", "wx1")]);
        assert!(
            e.contains("WECHAT_API_KEY") && e.contains("WECHAT_APP_SECRET"),
            "{e}"
        );
        // WeChat MP alone takes no money.
        let mp_only = [("WECHAT_APP_ID", "wx1"), ("WECHAT_APP_SECRET", "s")];
        assert!(error(&mp_only).contains("payment provider"));
        // Alipay's gateway alone is a partial Alipay.
        assert!(
            error(&[("ALIPAY_GATEWAY_URL", "http://127.0.0.1:1/gateway.do")])
                .contains("ALIPAY_APP_ID")
        );
        // Two apps under one merchant: WeChat Pay for the Mini Program alone, its logins too.
        let Plan::Live(live) = args(&[
            ("WECHAT_MINI_APP_ID", "wxmini"),
            ("WECHAT_MINI_APP_SECRET", "s"),
            ("WECHAT_MCH_ID", "1000"),
            ("WECHAT_API_KEY", "k"),
            ("WECHAT_PAY_BASE_URL", "http://127.0.0.1:9100"),
        ])
        .plan()
        .unwrap() else {
            panic!("live expected")
        };
        let pay = live.wechat_pay.unwrap();
        assert_eq!(
            (pay.app_id, pay.mini_app_id.as_deref()),
            (None, Some("wxmini"))
        );
        assert!(live.mp.official.is_none());
        assert_eq!(live.mp.mini.unwrap().app_id, "wxmini");
    }
}
