//! WeChat Pay, WeChat MP and Alipay for the servers, in one of two worlds ([`Mode`]): demo (no
//! provider credential: the sandbox emulator started in process, and the test-money `sandbox`
//! channel) or live (the configured providers only; the others are off, never emulated). Both
//! servers flatten [`ProviderArgs`] into their configuration, call [`connect`], and register
//! [`Providers::channels`].
//!
//! - `args` — the settings (flags and environment variables).
//! - `choice` — which registered channel and method a request pays with (by id and by the
//!   channels' declared methods, never by a channel's name).
//! - `plan` — demo or live, and the checks that refuse a half-configured provider.

mod args;
mod choice;
mod plan;

use std::sync::Arc;

use aggregate_pay::Channels;
use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::sandbox::SandboxChannel;
use aggregate_pay::channels::wechat::{WechatApi, WechatChannel};
use alipay::{PrivateKey as AlipayPrivateKey, PublicKey as AlipayPublicKey};

pub use args::{ProviderArgs, redact_url};
pub use choice::{ChoiceError, channel_for, resolve};
pub use plan::{
    AlipayPlan, CertificateSource, LivePlan, Mode, MpPlan, Plan, ProviderConfigError, V3Plan,
    WechatPayApi, WechatPayPlan,
};

use crate::settings::SecretSetting;
use wechat_sandbox::{MpApp, Sandbox};

/// The demo merchant's Official Account (the emulator knows it).
pub const DEMO_OFFICIAL_APP_ID: &str = "wxsandbox00000001";
/// The demo merchant's Mini Program.
pub const DEMO_MINI_APP_ID: &str = "wxsandboxmini0001";
/// The demo merchant.
pub const DEMO_MCH_ID: &str = "1900000109";

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
    pub mp: Option<wechat_mp::Client>,
    /// WeChat MP for the Mini Program (`jscode2session`, subscribe messages), when on.
    pub mini: Option<wechat_mp::Client>,
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
    pub fn v3_clients(&self) -> Vec<wechat_pay::v3::Client> {
        let mut clients: Vec<wechat_pay::v3::Client> = Vec::new();
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

/// Reads a key given inline (PEM / base64) or as a file path.
fn key_text(name: &'static str, value: &str) -> Result<String, ProviderConfigError> {
    if value.contains("-----BEGIN") || !std::path::Path::new(value).exists() {
        Ok(value.to_owned())
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| invalid(name)(format!("cannot read {value}: {e}")))
    }
}

fn invalid(name: &'static str) -> impl Fn(String) -> ProviderConfigError {
    move |detail| ProviderConfigError::Invalid { name, detail }
}

fn read(name: &'static str, path: &str) -> Result<Vec<u8>, ProviderConfigError> {
    std::fs::read(path).map_err(|e| invalid(name)(format!("cannot read {path}: {e}")))
}

fn certificate(
    source: &CertificateSource,
    mch_id: &str,
) -> Result<wechat_pay::ClientCertificate, ProviderConfigError> {
    match source {
        CertificateSource::Pkcs12 { path, password } => wechat_pay::ClientCertificate::from_pkcs12(
            &read("WECHAT_CERT_P12", path)?,
            password.as_ref().map_or(mch_id, SecretSetting::expose),
        )
        .map_err(|e| invalid("WECHAT_CERT_P12")(e.to_string())),
        CertificateSource::Pem { cert, key } => wechat_pay::ClientCertificate::from_pem(
            &read("WECHAT_CERT_PEM", cert)?,
            &read("WECHAT_KEY_PEM", key)?,
        )
        .map_err(|e| invalid("WECHAT_CERT_PEM")(e.to_string())),
    }
}

/// The API v3 client of a live merchant: its private key and the WeChat Pay public key read
/// from their files, or platform certificates downloaded on first use and every 12 hours.
fn v3_client(
    mch_id: &str,
    base_url: &str,
    p: &V3Plan,
) -> Result<wechat_pay::v3::Client, ProviderConfigError> {
    let text = |name: &'static str, path: &str| {
        String::from_utf8(read(name, path)?)
            .map_err(|_| invalid(name)(format!("{path} is not a PEM file")))
    };
    let key = wechat_pay::v3::MerchantKey::from_pem(&text("WECHAT_PRIVATE_KEY", &p.private_key)?)
        .map_err(|e| invalid("WECHAT_PRIVATE_KEY")(e.to_string()))?;
    let api_v3_key = wechat_pay::v3::ApiV3Key::new(p.api_v3_key.expose())
        .map_err(|e| invalid("WECHAT_API_V3_KEY")(e.to_string()))?;
    let builder = wechat_pay::v3::Client::builder(mch_id, p.serial.clone(), key, api_v3_key)
        .base_url(base_url);
    let builder = match &p.public_key {
        Some((path, id)) => builder.wechat_pay_key(
            wechat_pay::v3::WechatPayKey::from_pem(
                id.clone(),
                &text("WECHAT_PAY_PUBLIC_KEY", path)?,
            )
            .map_err(|e| invalid("WECHAT_PAY_PUBLIC_KEY")(e.to_string()))?,
        ),
        None => builder.platform_certificates(),
    };
    let client = builder
        .build()
        .map_err(|e| invalid("WeChat Pay")(e.to_string()))?;
    if p.public_key.is_none() {
        client.spawn_certificate_refresh(std::time::Duration::from_secs(12 * 3600));
    }
    Ok(client)
}

/// Connects the providers the plan turns on. In demo mode the emulator starts in process and
/// delivers its Official Account events to `mp_callback_url`; `token_store` shares the MP access
/// token between instances.
pub async fn connect(
    plan: &Plan,
    mp_callback_url: Option<&str>,
    token_store: Option<Arc<dyn wechat_mp::TokenStore>>,
) -> Result<Providers, ProviderConfigError> {
    let with_store = |mp: wechat_mp::ClientBuilder| match &token_store {
        Some(store) => mp.token_store(store.clone()),
        None => mp,
    };
    match plan {
        Plan::Demo { sign_type, api } => demo(*sign_type, *api, mp_callback_url, with_store).await,
        Plan::Live(live) => {
            let LivePlan {
                sign_type,
                wechat_pay,
                mp,
                mini,
                alipay,
            } = live.as_ref();
            // One merchant, one client per app id (the certificate serves both); over API v3 one
            // client serves both apps.
            let v3 = match wechat_pay {
                Some(WechatPayPlan {
                    v3: Some(v3),
                    mch_id,
                    base_url,
                    ..
                }) => Some(v3_client(mch_id, base_url, v3)?),
                _ => None,
            };
            let pay_client = |app_id: &Option<String>| -> Result<_, ProviderConfigError> {
                let (Some(p), Some(app_id)) = (wechat_pay, app_id) else {
                    return Ok(None);
                };
                if let Some(client) = &v3 {
                    return Ok(Some(WechatApi::v3(client.clone(), app_id.clone())));
                }
                let mut builder = wechat_pay::Client::builder(
                    app_id.clone(),
                    p.mch_id.clone(),
                    p.api_key.clone(),
                )
                .base_url(p.base_url.clone())
                .sign_type(*sign_type);
                if let Some(source) = &p.certificate {
                    builder = builder.certificate(certificate(source, &p.mch_id)?);
                }
                builder
                    .build()
                    .map(|c| Some(WechatApi::V2(c)))
                    .map_err(|e| invalid("WeChat Pay")(e.to_string()))
            };
            let wechat_pay_mini =
                pay_client(&wechat_pay.as_ref().and_then(|p| p.mini_app_id.clone()))?;
            let wechat_pay = pay_client(&wechat_pay.as_ref().and_then(|p| p.app_id.clone()))?;
            let mp_client = |p: &MpPlan| {
                with_store(
                    wechat_mp::Client::builder(p.app_id.clone(), p.secret.clone())
                        .base_url(p.base_url.clone()),
                )
                .build()
                .map_err(|e| invalid("WeChat MP")(e.to_string()))
            };
            let mini = mini.as_ref().map(mp_client).transpose()?;
            let alipay = match alipay {
                None => None,
                Some(p) => Some(
                    AlipayClient::builder(
                        p.app_id.clone(),
                        AlipayPrivateKey::from_pem(&key_text(
                            "ALIPAY_PRIVATE_KEY",
                            p.private_key.expose(),
                        )?)
                        .map_err(|e| invalid("ALIPAY_PRIVATE_KEY")(e.to_string()))?,
                        AlipayPublicKey::from_pem(&key_text("ALIPAY_PUBLIC_KEY", &p.public_key)?)
                            .map_err(|e| invalid("ALIPAY_PUBLIC_KEY")(e.to_string()))?,
                    )
                    .seller_id(p.seller_id.clone())
                    .base_url(p.gateway.clone())
                    .build()
                    .map_err(|e| invalid("Alipay")(e.to_string()))?,
                ),
            };
            let (mp, mp_token, mp_aes_key) = match mp {
                None => (None, None, None),
                Some(p) => (Some(mp_client(p)?), p.token.clone(), p.aes_key.clone()),
            };
            Ok(Providers {
                mode: Mode::Live,
                wechat_pay,
                wechat_pay_mini,
                alipay,
                mp,
                mini,
                mp_token,
                mp_aes_key,
                emulator: None,
                test_money_secret: None,
            })
        }
    }
}

/// Demo mode: every provider is the emulator, started here (refunds complete after 5 s, as a
/// real one might).
async fn demo(
    sign_type: wechat_pay::SignType,
    api: WechatPayApi,
    mp_callback_url: Option<&str>,
    with_store: impl Fn(wechat_mp::ClientBuilder) -> wechat_mp::ClientBuilder,
) -> Result<Providers, ProviderConfigError> {
    let emulator_error = |e: &dyn std::fmt::Display| ProviderConfigError::Emulator(e.to_string());
    let random = |n| -> Result<_, ProviderConfigError> {
        crate::random::token(n)
            .map(wechat_mp::Secret::new)
            .map_err(|e| emulator_error(&e))
    };
    let mut official = MpApp::new(DEMO_OFFICIAL_APP_ID, random(16)?, random(8)?);
    if let Some(url) = mp_callback_url {
        official = official.callback_url(url);
    }
    // One merchant with two apps, as every real vending operator has.
    let api_key =
        wechat_pay::ApiKey::new(crate::random::token(16).map_err(|e| emulator_error(&e))?);
    let v3 = match api {
        WechatPayApi::V2 => None,
        WechatPayApi::V3 => Some(DemoV3::new().map_err(|e| emulator_error(&e))?),
    };
    let mut builder = Sandbox::builder();
    if let Some(v3) = &v3 {
        for app in [DEMO_OFFICIAL_APP_ID, DEMO_MINI_APP_ID] {
            builder = builder.merchant_v3(v3.merchant(app).map_err(|e| emulator_error(&e))?);
        }
    }
    let emulator = builder
        .merchant(DEMO_OFFICIAL_APP_ID, DEMO_MCH_ID, api_key.clone())
        .merchant(DEMO_MINI_APP_ID, DEMO_MCH_ID, api_key.clone())
        .mp_app(official)
        .mp_app(MpApp::new(DEMO_MINI_APP_ID, random(16)?, random(8)?))
        .refund_delay(Some(std::time::Duration::from_secs(5)))
        .start()
        .await
        .map_err(|e| emulator_error(&e))?;
    let c = emulator.config();
    let v3_client = v3
        .as_ref()
        .map(|v3| v3.client(&emulator))
        .transpose()
        .map_err(|e| emulator_error(&e))?;
    let pay_client = |app_id: &str| match &v3_client {
        Some(client) => Ok(WechatApi::v3(client.clone(), app_id)),
        None => wechat_pay::Client::builder(app_id, DEMO_MCH_ID, api_key.clone())
            .base_url(emulator.base_url())
            .sign_type(sign_type)
            .build()
            .map(WechatApi::V2)
            .map_err(|e| emulator_error(&e)),
    };
    let mp_client = |app: &MpApp| {
        with_store(
            wechat_mp::Client::builder(app.app_id.clone(), app.app_secret.clone())
                .base_url(emulator.base_url()),
        )
        .build()
        .map_err(|e| emulator_error(&e))
    };
    let ali = &c.alipay_apps[0];
    let app_key = emulator
        .demo_alipay_app_key()
        .cloned()
        .ok_or_else(|| ProviderConfigError::Emulator("no demo Alipay app key".into()))?;
    let alipay = AlipayClient::builder(ali.app_id.clone(), app_key, emulator.alipay_public_key())
        .seller_id(ali.seller_id.clone())
        .base_url(emulator.base_url())
        .build()
        .map_err(|e| emulator_error(&e))?;
    Ok(Providers {
        mode: Mode::Demo,
        wechat_pay: Some(pay_client(DEMO_OFFICIAL_APP_ID)?),
        wechat_pay_mini: Some(pay_client(DEMO_MINI_APP_ID)?),
        alipay: Some(alipay),
        mp: Some(mp_client(&c.mp_apps[0])?),
        mini: Some(mp_client(&c.mp_apps[1])?),
        mp_token: Some(c.mp_apps[0].token.expose().into()),
        mp_aes_key: None,
        emulator: Some(emulator),
        test_money_secret: Some(crate::random::token(16).map_err(|e| emulator_error(&e))?),
    })
}

/// The demo merchant's API v3 credentials, made at start: its key pair, certificate serial and
/// API v3 key.
struct DemoV3 {
    key_pem: String,
    public_pem: String,
    serial: String,
    api_v3_key: String,
}

impl DemoV3 {
    fn new() -> Result<Self, String> {
        let key = wechat_pay::v3::MerchantKey::generate().map_err(|e| e.to_string())?;
        Ok(DemoV3 {
            key_pem: key.export_pkcs8_pem().map_err(|e| e.to_string())?,
            public_pem: key.public_key_pem().map_err(|e| e.to_string())?,
            serial: crate::random::token(20)
                .map_err(|e| e.to_string())?
                .to_ascii_uppercase(),
            api_v3_key: crate::random::token(16).map_err(|e| e.to_string())?,
        })
    }

    /// The emulator's merchant for `app_id`.
    fn merchant(&self, app_id: &str) -> Result<wechat_sandbox::MerchantV3, String> {
        wechat_sandbox::MerchantV3::new(
            DEMO_MCH_ID,
            app_id,
            self.serial.clone(),
            &self.public_pem,
            &self.api_v3_key,
        )
    }

    /// The merchant's client, verifying with the emulator's WeChat Pay public key.
    fn client(&self, emulator: &Sandbox) -> Result<wechat_pay::v3::Client, String> {
        let (id, pem) = emulator.wechatpay_public_key();
        wechat_pay::v3::Client::builder(
            DEMO_MCH_ID,
            self.serial.clone(),
            wechat_pay::v3::MerchantKey::from_pem(&self.key_pem).map_err(|e| e.to_string())?,
            wechat_pay::v3::ApiV3Key::new(&self.api_v3_key).map_err(|e| e.to_string())?,
        )
        .wechat_pay_key(
            wechat_pay::v3::WechatPayKey::from_pem(id, &pem).map_err(|e| e.to_string())?,
        )
        .base_url(emulator.base_url())
        .build()
        .map_err(|e| e.to_string())
    }
}
