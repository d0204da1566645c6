//! The provider settings both servers flatten into their configuration: WeChat Pay (with the
//! merchant certificate), WeChat MP and Alipay, each also an environment variable. Secrets are
//! [`SecretSetting`]s: `Debug` shows whether each is set, never the secret.

use clap::Args;

use crate::settings::SecretSetting;
pub use crate::settings::redact_url;

/// Provider credentials and endpoints. With none of them set a server runs in demo mode.
#[derive(Clone, Default, Debug, Args)]
pub struct ProviderArgs {
    /// The Official Account's app id: web OAuth, JSAPI payments in WeChat's browser, Native QR
    /// payments, template messages. WeChat Pay needs it (or `WECHAT_MINI_APP_ID`) with the
    /// merchant id and API key; WeChat MP with the app secret.
    #[arg(long, env = "WECHAT_APP_ID")]
    pub wechat_app_id: Option<String>,
    /// The Mini Program's app id, under the same merchant: `jscode2session` logins and Mini
    /// Program payments (the `wechat_mini` channel).
    #[arg(long, env = "WECHAT_MINI_APP_ID")]
    pub wechat_mini_app_id: Option<String>,
    /// The Mini Program's app secret (logins, subscribe messages).
    #[arg(long, env = "WECHAT_MINI_APP_SECRET")]
    pub wechat_mini_app_secret: Option<SecretSetting>,
    /// WeChat Pay merchant id.
    #[arg(long, env = "WECHAT_MCH_ID")]
    pub wechat_mch_id: Option<String>,
    /// WeChat Pay API key (v2).
    #[arg(long, env = "WECHAT_API_KEY")]
    pub wechat_api_key: Option<SecretSetting>,
    /// The WeChat Pay API: `v2` (XML, the API key, the merchant certificate for refunds) or `v3`
    /// (JSON, the merchant's private key and certificate serial, the API v3 key).
    #[arg(long, env = "WECHAT_PAY_API", default_value = "v2")]
    pub wechat_pay_api: String,
    /// API v3: the API v3 key (32 characters; notifications and certificates are encrypted with
    /// it).
    #[arg(long, env = "WECHAT_API_V3_KEY")]
    pub wechat_api_v3_key: Option<SecretSetting>,
    /// API v3: the merchant's API certificate private key (`apiclient_key.pem`, a path).
    #[arg(long, env = "WECHAT_PRIVATE_KEY")]
    pub wechat_private_key: Option<String>,
    /// API v3: the serial number of the merchant's API certificate.
    #[arg(long, env = "WECHAT_CERT_SERIAL")]
    pub wechat_cert_serial: Option<String>,
    /// API v3: the WeChat Pay public key (`pub_key.pem`, a path), with its id; without both,
    /// WeChat Pay's platform certificates are downloaded (and refreshed every 12 hours).
    #[arg(long, env = "WECHAT_PAY_PUBLIC_KEY")]
    pub wechat_pay_public_key: Option<String>,
    /// API v3: the id of `WECHAT_PAY_PUBLIC_KEY` (`PUB_KEY_ID_…`).
    #[arg(long, env = "WECHAT_PAY_PUBLIC_KEY_ID")]
    pub wechat_pay_public_key_id: Option<String>,
    /// Demo mode: the API the embedded WeChat Pay emulator and the demo merchant speak (`v2` or
    /// `v3`).
    #[arg(long, env = "DEMO_WECHAT_API", default_value = "v2")]
    pub demo_wechat_api: String,
    /// WeChat Pay signature: `MD5` or `HMAC-SHA256`.
    #[arg(long, env = "WECHAT_SIGN_TYPE", default_value = "MD5")]
    pub wechat_sign_type: String,
    /// WeChat Pay gateway (default WeChat's; a standalone `wechat-sandbox` for staging).
    #[arg(long, env = "WECHAT_PAY_BASE_URL")]
    pub wechat_pay_base_url: Option<String>,
    /// The merchant certificate `apiclient_cert.p12` (a path): refunds need it with an
    /// `https://` gateway.
    #[arg(long, env = "WECHAT_CERT_P12")]
    pub wechat_cert_p12: Option<String>,
    /// The password of `WECHAT_CERT_P12` (default: the merchant id, as WeChat issues it).
    #[arg(long, env = "WECHAT_CERT_PASSWORD")]
    pub wechat_cert_password: Option<SecretSetting>,
    /// The merchant certificate as PEM (`apiclient_cert.pem`, a path), with `WECHAT_KEY_PEM`.
    #[arg(long, env = "WECHAT_CERT_PEM")]
    pub wechat_cert_pem: Option<String>,
    /// The merchant certificate's private key as PEM (`apiclient_key.pem`, a path).
    #[arg(long, env = "WECHAT_KEY_PEM")]
    pub wechat_key_pem: Option<String>,
    /// The app secret (access tokens, OAuth, jscode2session); with the app id, WeChat MP is on.
    #[arg(long, env = "WECHAT_APP_SECRET")]
    pub wechat_app_secret: Option<SecretSetting>,
    /// WeChat MP API base URL (default WeChat's).
    #[arg(long, env = "WECHAT_MP_BASE_URL")]
    pub wechat_mp_base_url: Option<String>,
    /// The Official Account's callback token.
    #[arg(long, env = "WECHAT_MP_TOKEN")]
    pub wechat_mp_token: Option<SecretSetting>,
    /// The Official Account's EncodingAESKey (safe mode).
    #[arg(long, env = "WECHAT_MP_AES_KEY")]
    pub wechat_mp_aes_key: Option<SecretSetting>,
    /// Alipay app id; with both keys, Alipay is on.
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
