//! WeChat Pay, WeChat MP and Alipay for the servers: real credentials when configured, otherwise
//! the sandbox emulator started in process, speaking the same protocols. Both servers flatten
//! [`ProviderArgs`] into their configuration and call [`connect`].

use std::sync::Arc;

use aggregate_pay::channels::alipay::AlipayClient;
use aggregate_pay::channels::alipay::rsa2::{AlipayPrivateKey, AlipayPublicKey};
use clap::Args;

use crate::sandbox::{RunningSandbox, SandboxConfig};

/// Provider credentials and endpoints, each also an environment variable. `Debug` shows
/// whether each secret is set, never the secret.
#[derive(Clone, Default, Args)]
pub struct ProviderArgs {
    /// WeChat app id (Official Account / Mini Program) for Pay and MP; with the merchant id and
    /// key, WeChat Pay is real instead of the embedded emulator.
    #[arg(long, env = "WECHAT_APP_ID")]
    pub wechat_app_id: Option<String>,
    /// WeChat Pay merchant id.
    #[arg(long, env = "WECHAT_MCH_ID")]
    pub wechat_mch_id: Option<String>,
    /// WeChat Pay API key.
    #[arg(long, env = "WECHAT_API_KEY")]
    pub wechat_api_key: Option<String>,
    /// WeChat Pay signature: `MD5` or `HMAC-SHA256`.
    #[arg(long, env = "WECHAT_SIGN_TYPE", default_value = "MD5")]
    pub wechat_sign_type: String,
    /// WeChat Pay gateway.
    #[arg(long, env = "WECHAT_PAY_BASE_URL")]
    pub wechat_pay_base_url: Option<String>,
    /// The app secret (access tokens, OAuth, jscode2session); with the app id, WeChat MP is real.
    #[arg(long, env = "WECHAT_APP_SECRET")]
    pub wechat_app_secret: Option<String>,
    /// WeChat MP API base URL.
    #[arg(long, env = "WECHAT_MP_BASE_URL")]
    pub wechat_mp_base_url: Option<String>,
    /// The Official Account's callback token.
    #[arg(long, env = "WECHAT_MP_TOKEN")]
    pub wechat_mp_token: Option<String>,
    /// The Official Account's EncodingAESKey (safe mode).
    #[arg(long, env = "WECHAT_MP_AES_KEY")]
    pub wechat_mp_aes_key: Option<String>,
    /// Alipay app id; with the keys, Alipay is real instead of the embedded emulator.
    #[arg(long, env = "ALIPAY_APP_ID")]
    pub alipay_app_id: Option<String>,
    /// The app's Alipay private key (PEM or bare base64, or a path to it).
    #[arg(long, env = "ALIPAY_PRIVATE_KEY")]
    pub alipay_private_key: Option<String>,
    /// Alipay's public key (PEM or bare base64, or a path to it).
    #[arg(long, env = "ALIPAY_PUBLIC_KEY")]
    pub alipay_public_key: Option<String>,
    /// Alipay gateway.
    #[arg(long, env = "ALIPAY_GATEWAY_URL")]
    pub alipay_gateway_url: Option<String>,
}

/// `Some("***")` for a secret that is set.
fn hidden(secret: Option<&String>) -> Option<&'static str> {
    secret.map(|_| "***")
}

/// `url` with any password in it replaced by `***` (database, Redis, AMQP URLs in `Debug`).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for ProviderArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderArgs")
            .field("wechat_app_id", &self.wechat_app_id)
            .field("wechat_mch_id", &self.wechat_mch_id)
            .field("wechat_api_key", &hidden(self.wechat_api_key.as_ref()))
            .field("wechat_sign_type", &self.wechat_sign_type)
            .field("wechat_pay_base_url", &self.wechat_pay_base_url)
            .field(
                "wechat_app_secret",
                &hidden(self.wechat_app_secret.as_ref()),
            )
            .field("wechat_mp_base_url", &self.wechat_mp_base_url)
            .field("wechat_mp_token", &hidden(self.wechat_mp_token.as_ref()))
            .field(
                "wechat_mp_aes_key",
                &hidden(self.wechat_mp_aes_key.as_ref()),
            )
            .field("alipay_app_id", &self.alipay_app_id)
            .field(
                "alipay_private_key",
                &hidden(self.alipay_private_key.as_ref()),
            )
            .field("alipay_public_key", &self.alipay_public_key)
            .field("alipay_gateway_url", &self.alipay_gateway_url)
            .finish()
    }
}

/// The connected providers.
#[derive(Debug)]
pub struct Providers {
    /// WeChat Pay.
    pub wechat_pay: wechat_pay::Client,
    /// Alipay.
    pub alipay: AlipayClient,
    /// WeChat MP (Official Account / Mini Program).
    pub mp: wechat_mp::Client,
    /// The Official Account's callback token, when known.
    pub mp_token: Option<String>,
    /// The Official Account's EncodingAESKey, when set.
    pub mp_aes_key: Option<String>,
    /// The embedded emulator, when some credentials are absent.
    pub emulator: Option<RunningSandbox>,
}

/// Reads a key given inline (PEM / base64) or as a file path.
fn key_text(value: &str) -> String {
    if value.contains("-----BEGIN") || !std::path::Path::new(value).exists() {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).unwrap_or_default()
    }
}

fn fail(what: &'static str) -> impl Fn(String) -> String {
    move |e| format!("{what}: {e}")
}

/// Connects the providers. The emulator (when needed) delivers its Official Account events to
/// `mp_callback_url`; `token_store` shares the MP access token between instances.
pub async fn connect(
    args: &ProviderArgs,
    mp_callback_url: Option<&str>,
    token_store: Option<Arc<dyn wechat_mp::TokenStore>>,
) -> Result<Providers, String> {
    let real_wechat_pay = args.wechat_app_id.is_some()
        && args.wechat_mch_id.is_some()
        && args.wechat_api_key.is_some();
    let real_alipay = args.alipay_app_id.is_some()
        && args.alipay_private_key.is_some()
        && args.alipay_public_key.is_some();
    let real_mp = args.wechat_app_id.is_some() && args.wechat_app_secret.is_some();

    let mut emulator = None;
    let mut demo_alipay_key = None;
    if !(real_wechat_pay && real_alipay && real_mp) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| fail("emulator")(e.to_string()))?;
        let url = listener
            .local_addr()
            .map(|a| format!("http://{a}"))
            .map_err(|e| fail("emulator")(e.to_string()))?;
        let (mut config, demo) =
            SandboxConfig::demo(&url).map_err(|e| fail("emulator")(e.to_string()))?;
        if let Some(app) = config.mp_apps.first_mut() {
            app.callback_url = mp_callback_url.map(str::to_owned);
        }
        demo_alipay_key = demo.alipay_app_key;
        emulator = Some(
            crate::sandbox::spawn(config, None, listener)
                .await
                .map_err(|e| fail("emulator")(e.to_string()))?,
        );
    }
    let emulated = |what: &'static str| {
        emulator
            .as_ref()
            .map(|e| (e.url.clone(), &e.state.config))
            .ok_or_else(|| format!("{what}: no emulator"))
    };

    let sign_type = match args.wechat_sign_type.to_ascii_uppercase().as_str() {
        "MD5" => wechat_pay::SignType::Md5,
        "HMAC-SHA256" | "HMAC_SHA256" => wechat_pay::SignType::HmacSha256,
        other => {
            return Err(format!(
                "WECHAT_SIGN_TYPE must be MD5 or HMAC-SHA256, not {other}"
            ));
        }
    };
    let wechat_pay = match (
        &args.wechat_app_id,
        &args.wechat_mch_id,
        &args.wechat_api_key,
    ) {
        (Some(app), Some(mch), Some(key)) if real_wechat_pay => wechat_pay::Client::builder(
            app.clone(),
            mch.clone(),
            wechat_pay::ApiKey::new(key.clone()),
        )
        .base_url(
            args.wechat_pay_base_url
                .clone()
                .unwrap_or_else(|| wechat_pay::client::DEFAULT_BASE_URL.to_owned()),
        ),
        _ => {
            let (url, c) = emulated("wechat pay")?;
            let m = &c.merchants[0];
            wechat_pay::Client::builder(m.app_id.clone(), m.mch_id.clone(), m.api_key.clone())
                .base_url(url)
        }
    }
    .sign_type(sign_type)
    .build()
    .map_err(|e| fail("wechat pay")(e.to_string()))?;

    let alipay = match (
        &args.alipay_app_id,
        &args.alipay_private_key,
        &args.alipay_public_key,
    ) {
        (Some(app), Some(private), Some(public)) if real_alipay => AlipayClient::new(
            app.clone(),
            AlipayPrivateKey::from_pem(&key_text(private))
                .map_err(|e| fail("alipay private key")(e.to_string()))?,
            AlipayPublicKey::from_pem(&key_text(public))
                .map_err(|e| fail("alipay public key")(e.to_string()))?,
            args.alipay_gateway_url
                .clone()
                .unwrap_or_else(|| aggregate_pay::channels::alipay::DEFAULT_GATEWAY.to_owned()),
        ),
        _ => {
            let (url, c) = emulated("alipay")?;
            let key = demo_alipay_key
                .ok_or_else(|| "alipay: the emulator has no demo app key".to_owned())?;
            AlipayClient::new(
                c.alipay_apps[0].app_id.clone(),
                key,
                c.alipay_public_key(),
                format!("{url}/gateway.do"),
            )
        }
    }
    .map_err(|e| fail("alipay")(e.to_string()))?;

    let (mp, mp_token, mp_aes_key) = match (&args.wechat_app_id, &args.wechat_app_secret) {
        (Some(app), Some(secret)) if real_mp => (
            wechat_mp::Client::builder(app.clone(), wechat_mp::Secret::new(secret.clone()))
                .base_url(
                    args.wechat_mp_base_url
                        .clone()
                        .unwrap_or_else(|| wechat_mp::client::DEFAULT_BASE_URL.to_owned()),
                ),
            args.wechat_mp_token.clone(),
            args.wechat_mp_aes_key.clone(),
        ),
        _ => {
            let (url, c) = emulated("wechat mp")?;
            let a = &c.mp_apps[0];
            (
                wechat_mp::Client::builder(a.app_id.clone(), a.app_secret.clone()).base_url(url),
                Some(a.token.expose().to_owned()),
                None,
            )
        }
    };
    let mp = match token_store {
        Some(store) => mp.token_store(store),
        None => mp,
    }
    .build()
    .map_err(|e| fail("wechat mp")(e.to_string()))?;

    Ok(Providers {
        wechat_pay,
        alipay,
        mp,
        mp_token,
        mp_aes_key,
        emulator,
    })
}
