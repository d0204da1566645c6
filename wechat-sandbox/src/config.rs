//! Who the sandbox knows: merchants (WeChat Pay), Official Account / Mini Program apps (WeChat
//! MP) and Alipay apps, parsed from the `A,B,C` specs of the command line.

use std::time::Duration;

use ::alipay::{PrivateKey as AlipayPrivateKey, PublicKey as AlipayPublicKey};
use wechat_mp::Secret;
use wechat_pay::ApiKey;

/// Why a `--merchant`, `--merchant-v3`, `--mp-app` or `--alipay-app` spec was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Too few or too many values, or a required one empty.
    #[error("{flag} expects {min} to {max} comma-separated values, got {spec:?}")]
    Shape {
        /// The flag.
        flag: &'static str,
        /// The fewest values.
        min: usize,
        /// The most values.
        max: usize,
        /// What was given.
        spec: String,
    },
    /// A file it names cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key it gives or names is not a valid key.
    #[error("{what}: {source}")]
    Key {
        /// Which key.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `--merchant-v3`'s mode is neither `public-key` nor `certificates`.
    #[error("--merchant-v3: the mode is public-key or certificates, not {0:?}")]
    Mode(String),
}

impl ConfigError {
    fn key(what: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        ConfigError::Key {
            what: what.to_owned(),
            source: Box::new(source),
        }
    }
}

fn read(path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A WeChat Pay merchant: `APP_ID,MCH_ID,API_KEY`.
#[derive(Debug, Clone)]
pub struct Merchant {
    /// The app id bound to the merchant.
    pub app_id: String,
    /// The merchant id.
    pub mch_id: String,
    /// The API key requests are signed with.
    pub api_key: ApiKey,
}

/// A WeChat Pay API v3 merchant:
/// `MCH_ID,APP_ID,MERCHANT_SERIAL,MERCHANT_PUBLIC_KEY_PEM_PATH,API_V3_KEY[,certificates]`.
/// Answers and notifications to it are signed with the sandbox's WeChat Pay public key
/// (`PUB_KEY_ID_…`), or — with `certificates` — with its current platform certificate, which
/// the merchant downloads from `GET /v3/certificates`.
#[derive(Debug, Clone)]
pub struct MerchantV3 {
    /// The merchant id.
    pub mch_id: String,
    /// The app id bound to it.
    pub app_id: String,
    /// The serial number of its API certificate (requests name it in `serial_no`).
    pub serial_no: String,
    /// Its API certificate's public key: requests are verified with it.
    pub public_key: wechat_pay::v3::WechatPayKey,
    /// Its API v3 key: notifications are encrypted with it.
    pub api_v3_key: wechat_pay::v3::ApiV3Key,
    /// Platform-certificate mode: signed with the current platform certificate rather than the
    /// WeChat Pay public key.
    pub certificates: bool,
    /// Service-provider mode: the sub-merchants (`sub_mchid`) this merchant may act for.
    pub sub_merchants: Vec<String>,
}

impl MerchantV3 {
    /// A merchant from its public key PEM and API v3 key.
    pub fn new(
        mch_id: impl Into<String>,
        app_id: impl Into<String>,
        serial_no: impl Into<String>,
        public_key_pem: &str,
        api_v3_key: &str,
    ) -> Result<Self, ConfigError> {
        let serial_no = serial_no.into();
        Ok(MerchantV3 {
            mch_id: mch_id.into(),
            app_id: app_id.into(),
            public_key: wechat_pay::v3::WechatPayKey::from_pem(serial_no.clone(), public_key_pem)
                .map_err(|e| ConfigError::key("the merchant's public key", e))?,
            serial_no,
            api_v3_key: wechat_pay::v3::ApiV3Key::new(api_v3_key)
                .map_err(|e| ConfigError::key("the API v3 key", e))?,
            certificates: false,
            sub_merchants: Vec::new(),
        })
    }

    /// A sub-merchant this (service-provider) merchant may act for (repeatable).
    pub fn with_sub_merchant(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_merchants.push(sub_mchid.into());
        self
    }

    /// Platform-certificate mode: answers and notifications are signed with the sandbox's
    /// current platform certificate (`GET /v3/certificates`), named by its serial number.
    pub fn with_certificates(mut self) -> Self {
        self.certificates = true;
        self
    }

    /// Parses `MCH_ID,APP_ID,MERCHANT_SERIAL,MERCHANT_PUBLIC_KEY_PEM_PATH,API_V3_KEY[,MODE]`
    /// (`MODE`: `public-key`, the default, or `certificates`).
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let p = parts(spec, 5, 6, "--merchant-v3")?;
        let pem = read(&p[3])?;
        let merchant = MerchantV3::new(p[0].clone(), p[1].clone(), p[2].clone(), &pem, &p[4])?;
        match p.get(5).map(String::as_str) {
            None | Some("public-key") => Ok(merchant),
            Some("certificates") => Ok(merchant.with_certificates()),
            Some(other) => Err(ConfigError::Mode(other.to_owned())),
        }
    }
}

/// The sandbox's own WeChat Pay key (v3 answers and notifications are signed with it), its id
/// (`PUB_KEY_ID_…`) and public key.
#[derive(Debug, Clone)]
pub struct WechatPayIdentity {
    /// The private key.
    pub key: std::sync::Arc<wechat_pay::v3::MerchantKey>,
    /// Its id, as a WeChat Pay public key id.
    pub key_id: String,
    /// The public key (PEM), for clients.
    pub public_key_pem: String,
}

/// A WeChat MP app: `APP_ID,APP_SECRET,TOKEN[,ENCODING_AES_KEY[,CALLBACK_URL]]`.
#[derive(Debug, Clone)]
pub struct MpApp {
    /// The app id.
    pub app_id: String,
    /// The app secret.
    pub app_secret: Secret,
    /// The callback token.
    pub token: Secret,
    /// The EncodingAESKey: events are delivered in safe mode when set.
    pub encoding_aes_key: Option<Secret>,
    /// Where user events are POSTed.
    pub callback_url: Option<String>,
}

/// An Alipay app: `APP_ID,PATH_TO_APP_PUBLIC_KEY_PEM` (the key its requests are verified with).
#[derive(Debug, Clone)]
pub struct AlipayApp {
    /// The app id.
    pub app_id: String,
    /// The app's public key.
    pub public_key: AlipayPublicKey,
    /// The seller's Alipay user id (PID, `2088…`): the `seller_id` of the app's trades and
    /// notifications.
    pub seller_id: String,
    /// The app's AES key: requests with `encrypt_type=AES` are decrypted with it, and answered
    /// encrypted (content encryption); without one such requests are refused.
    pub aes_key: Option<::alipay::AesKey>,
    /// Certificate mode (公钥证书): the app gets an app certificate from the emulator's own
    /// authority, its requests must carry `app_cert_sn` and `alipay_root_cert_sn`, and answers
    /// name the Alipay certificate that signed them (see [`crate::alipay::certs`]).
    pub certificates: bool,
}

/// Everything the sandbox is started with.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// WeChat Pay merchants.
    pub merchants: Vec<Merchant>,
    /// WeChat Pay API v3 merchants.
    pub merchants_v3: Vec<MerchantV3>,
    /// The sandbox's own WeChat Pay (v3) key.
    pub wechatpay: WechatPayIdentity,
    /// WeChat MP apps.
    pub mp_apps: Vec<MpApp>,
    /// Alipay apps.
    pub alipay_apps: Vec<AlipayApp>,
    /// The gateway's own Alipay key (responses and notifications are signed with it).
    pub alipay_key: AlipayPrivateKey,
    /// Divides every notification retry interval (1 = WeChat's real schedule).
    pub time_scale: f64,
    /// Refunds complete by themselves after this long (scaled); `None`: only through the
    /// control API.
    pub refund_delay: Option<Duration>,
    /// The sandbox's own base URL, for the links it hands out (H5 pay pages, QR contents).
    pub public_url: String,
    /// The share of v3 notifications preceded by a signature probe (0 to 1): a copy signed
    /// with a deliberately wrong signature (`WECHATPAY/SIGNTEST/…`), which the app must refuse.
    pub sign_probe_rate: f64,
}

fn parts(
    spec: &str,
    min: usize,
    max: usize,
    flag: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let p: Vec<String> = spec.split(',').map(|s| s.trim().to_owned()).collect();
    if p.len() < min || p.len() > max || p.iter().take(min).any(String::is_empty) {
        return Err(ConfigError::Shape {
            flag,
            min,
            max,
            spec: spec.to_owned(),
        });
    }
    Ok(p)
}

impl Merchant {
    /// Parses `APP_ID,MCH_ID,API_KEY`.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let p = parts(spec, 3, 3, "--merchant")?;
        Ok(Merchant {
            app_id: p[0].clone(),
            mch_id: p[1].clone(),
            api_key: ApiKey::new(p[2].clone()),
        })
    }
}

impl MpApp {
    /// An app with its secret and callback token, events delivered in plain mode to no callback
    /// until [`MpApp::callback_url`] says where.
    pub fn new(app_id: impl Into<String>, app_secret: Secret, token: Secret) -> Self {
        MpApp {
            app_id: app_id.into(),
            app_secret,
            token,
            encoding_aes_key: None,
            callback_url: None,
        }
    }

    /// Delivers user events in safe mode with this EncodingAESKey.
    pub fn encoding_aes_key(mut self, key: Secret) -> Self {
        self.encoding_aes_key = Some(key);
        self
    }

    /// Where user events are POSTed.
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// Parses `APP_ID,APP_SECRET,TOKEN[,ENCODING_AES_KEY[,CALLBACK_URL]]`.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let p = parts(spec, 3, 5, "--mp-app")?;
        let opt = |i: usize| p.get(i).filter(|s| !s.is_empty()).cloned();
        Ok(MpApp {
            app_id: p[0].clone(),
            app_secret: Secret::new(p[1].clone()),
            token: Secret::new(p[2].clone()),
            encoding_aes_key: opt(3).map(Secret::new),
            callback_url: opt(4),
        })
    }
}

impl AlipayApp {
    /// An app whose seller id is [`AlipayApp::default_seller_id`].
    pub fn new(app_id: impl Into<String>, public_key: AlipayPublicKey) -> Self {
        let app_id = app_id.into();
        AlipayApp {
            seller_id: Self::default_seller_id(&app_id),
            app_id,
            public_key,
            aes_key: None,
            certificates: false,
        }
    }

    /// In certificate mode.
    pub fn with_certificates(mut self) -> Self {
        self.certificates = true;
        self
    }

    /// With content encryption under `key`.
    pub fn with_aes_key(mut self, key: ::alipay::AesKey) -> Self {
        self.aes_key = Some(key);
        self
    }

    /// The seller id an app gets when none is given: `2088` and 12 digits derived from the app
    /// id (the same every run, so a client can be configured with it once).
    pub fn default_seller_id(app_id: &str) -> String {
        use md5::{Digest, Md5};
        let digest = Md5::digest(format!("seller:{app_id}").as_bytes());
        let n = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default()) % 1_000_000_000_000;
        format!("2088{n:012}")
    }

    /// Parses `APP_ID,PATH_TO_APP_PUBLIC_KEY_PEM[,SELLER_ID[,MODE[,AES_KEY]]]`, reading the key
    /// file: `MODE` `cert` puts the app in certificate mode (`key` or empty: public-key mode), an
    /// `AES_KEY` (base64) turns content encryption on; an empty seller id keeps the derived one.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let p = parts(spec, 2, 5, "--alipay-app")?;
        let pem = read(&p[1])?;
        let mut app = AlipayApp::new(
            p[0].clone(),
            AlipayPublicKey::from_pem(&pem).map_err(|e| ConfigError::key(&p[1], e))?,
        );
        if let Some(seller_id) = p.get(2).filter(|s| !s.is_empty()) {
            app.seller_id = seller_id.clone();
        }
        let shape = || ConfigError::Shape {
            flag: "--alipay-app",
            min: 2,
            max: 5,
            spec: spec.to_owned(),
        };
        match p.get(3).map(String::as_str) {
            None | Some("" | "key") => {}
            Some("cert") => app.certificates = true,
            Some(_) => return Err(shape()),
        }
        if let Some(key) = p.get(4).filter(|k| !k.is_empty()) {
            app.aes_key = Some(::alipay::AesKey::from_base64(key).map_err(|_| shape())?);
        }
        Ok(app)
    }
}

/// Random printable credentials for the demo merchant and apps; `None` if the random source
/// failed (the sandbox then does not start).
pub(crate) fn random_token(len: usize) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = crate::state::random_bytes(len)?;
    Some(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let m = Merchant::parse("wx1, 10000100 ,key").unwrap();
        assert_eq!(m.mch_id, "10000100");
        assert!(Merchant::parse("wx1,10000100").is_err());
        let a = MpApp::parse("wx1,secret,token").unwrap();
        assert!(a.encoding_aes_key.is_none());
        let a = MpApp::parse("wx1,secret,token,,http://cb").unwrap();
        assert!(a.encoding_aes_key.is_none());
        assert_eq!(a.callback_url.as_deref(), Some("http://cb"));
        assert!(MpApp::parse("wx1,,token").is_err());
        assert!(matches!(
            AlipayApp::parse("2021,/nonexistent.pem"),
            Err(ConfigError::Read { .. })
        ));
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../alipay/testdata/app_public_key.pem"
        );
        let plain = AlipayApp::parse(&format!("2021,{key}")).unwrap();
        assert!(!plain.certificates && plain.aes_key.is_none());
        let cert = AlipayApp::parse(&format!("2021,{key},2088000000000001,cert")).unwrap();
        assert!(cert.certificates);
        assert_eq!(cert.seller_id, "2088000000000001");
        let aes = AlipayApp::parse(&format!("2021,{key},,key,AAECAwQFBgcICQoLDA0ODw==")).unwrap();
        assert!(!aes.certificates && aes.aes_key.is_some());
        assert_eq!(aes.seller_id, AlipayApp::default_seller_id("2021"));
        for bad in [",,other", ",,cert,not-a-key", ",,cert,x,y"] {
            assert!(
                AlipayApp::parse(&format!("2021,{key}{bad}")).is_err(),
                "{bad}"
            );
        }
        assert!(matches!(
            Merchant::parse("wx1,10000100"),
            Err(ConfigError::Shape {
                flag: "--merchant",
                ..
            })
        ));
    }
}
