//! Demo or live, decided once from the provider settings, and which providers live mode turns on.
//!
//! - **Demo**: no provider setting at all. The servers run the embedded emulator and the
//!   test-money `sandbox` channel.
//! - **Live**: any provider setting. Every provider is either completely configured or off: a
//!   provider without settings is disabled (never emulated), a partial one stops start-up with
//!   the missing variables named, and WeChat Pay over `https://` needs the merchant certificate
//!   (refunds would fail without it). Staging against a standalone emulator is live mode too.
//!
//! This module never reads a file or the network: it only decides. [`super::connect`] builds
//! the clients from the [`Plan`].

use super::args::ProviderArgs;
use crate::settings::SecretSetting;

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

/// Why the provider settings cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderConfigError {
    /// A provider is partly configured.
    #[error("{provider} is partly configured ({set} set): set {missing} too, or unset it")]
    Partial {
        /// The provider.
        provider: &'static str,
        /// The variables that are set.
        set: String,
        /// The variables that are missing.
        missing: String,
    },
    /// A variable is set to the empty string.
    #[error("{0} is set but empty: give it a value or unset it")]
    Empty(&'static str),
    /// WeChat Pay over `https://` without the merchant certificate.
    #[error(
        "WeChat Pay over {base_url} needs the merchant certificate (refunds are impossible \
         without it): set WECHAT_CERT_P12 (apiclient_cert.p12; WECHAT_CERT_PASSWORD if it is \
         not the merchant id) or WECHAT_CERT_PEM + WECHAT_KEY_PEM"
    )]
    CertificateRequired {
        /// The gateway.
        base_url: String,
    },
    /// Settings that exclude each other.
    #[error("{0}")]
    Conflict(&'static str),
    /// Live mode without any way to take money.
    #[error(
        "live mode needs a payment provider: WeChat Pay (WECHAT_APP_ID, WECHAT_MCH_ID, \
         WECHAT_API_KEY) or Alipay (ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY, ALIPAY_PUBLIC_KEY)"
    )]
    NoPaymentProvider,
    /// The embedded emulator (demo mode) could not start.
    #[error("embedded emulator: {0}")]
    Emulator(String),
    /// A value that cannot be used.
    #[error("{name}: {detail}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Where the merchant certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// `apiclient_cert.p12` and its password (`None`: the merchant id).
    Pkcs12 {
        /// The file.
        path: String,
        /// The password, when not the merchant id.
        password: Option<SecretSetting>,
    },
    /// `apiclient_cert.pem` and `apiclient_key.pem`.
    Pem {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
}

/// The WeChat Pay API a merchant speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WechatPayApi {
    /// API v2: XML, the API key; refunds need the merchant certificate.
    V2,
    /// API v3: JSON, the merchant's private key, the API v3 key, WeChat Pay's public key or
    /// platform certificates.
    V3,
}

impl WechatPayApi {
    fn parse(name: &'static str, value: &str) -> Result<Self, ProviderConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "v2" => Ok(WechatPayApi::V2),
            "v3" => Ok(WechatPayApi::V3),
            other => Err(ProviderConfigError::Invalid {
                name,
                detail: format!("must be v2 or v3, not {other:?}"),
            }),
        }
    }
}

/// Live WeChat Pay API v3 credentials.
#[derive(Debug, Clone)]
pub struct V3Plan {
    /// The API v3 key.
    pub api_v3_key: SecretSetting,
    /// The merchant's private key (a path).
    pub private_key: String,
    /// The serial number of the merchant's API certificate.
    pub serial: String,
    /// The WeChat Pay public key (a path) and its id; `None`: platform certificates.
    pub public_key: Option<(String, String)>,
}

/// Live WeChat Pay: one merchant, for one or both apps.
#[derive(Debug, Clone)]
pub struct WechatPayPlan {
    /// The Official Account's app id (the `wechat` channel), when set.
    pub app_id: Option<String>,
    /// The Mini Program's app id (the `wechat_mini` channel), when set.
    pub mini_app_id: Option<String>,
    /// Merchant id.
    pub mch_id: String,
    /// API key.
    pub api_key: wechat_pay::ApiKey,
    /// Gateway.
    pub base_url: String,
    /// The merchant certificate (API v2; required over `https://`).
    pub certificate: Option<CertificateSource>,
    /// API v3 (instead of v2's API key and certificate), when `WECHAT_PAY_API=v3`.
    pub v3: Option<V3Plan>,
}

/// Live WeChat MP.
#[derive(Debug, Clone)]
pub struct MpPlan {
    /// App id.
    pub app_id: String,
    /// App secret.
    pub secret: wechat_mp::Secret,
    /// API base URL.
    pub base_url: String,
    /// The callback token.
    pub token: Option<SecretSetting>,
    /// The EncodingAESKey.
    pub aes_key: Option<SecretSetting>,
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

/// The providers live mode turns on; the others are off.
#[derive(Debug, Clone)]
pub struct LivePlan {
    /// The WeChat Pay signature type.
    pub sign_type: wechat_pay::SignType,
    /// WeChat Pay, when configured.
    pub wechat_pay: Option<WechatPayPlan>,
    /// WeChat MP for the Official Account, when configured.
    pub mp: Option<MpPlan>,
    /// WeChat MP for the Mini Program, when configured.
    pub mini: Option<MpPlan>,
    /// Alipay, when configured.
    pub alipay: Option<AlipayPlan>,
}

/// The providers a server runs with.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The embedded emulator, test money.
    Demo {
        /// The WeChat Pay signature type the emulated merchant uses (v2).
        sign_type: wechat_pay::SignType,
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

type Setting<'a> = (&'static str, Option<&'a str>);

fn names(settings: &[Setting<'_>], set: bool) -> Vec<&'static str> {
    settings
        .iter()
        .filter(|(_, v)| v.is_some() == set)
        .map(|(n, _)| *n)
        .collect()
}

/// Requires every `required` setting once any of `triggers` is set; whether the group is on.
fn group(
    provider: &'static str,
    triggers: &[Setting<'_>],
    required: &[Setting<'_>],
) -> Result<bool, ProviderConfigError> {
    if names(triggers, true).is_empty() {
        return Ok(false);
    }
    let missing = names(required, false);
    if missing.is_empty() {
        return Ok(true);
    }
    let mut set = names(triggers, true);
    set.extend(names(required, true));
    set.sort_unstable();
    set.dedup();
    Err(ProviderConfigError::Partial {
        provider,
        set: set.join(", "),
        missing: missing.join(", "),
    })
}

fn http_url(name: &'static str, url: &str) -> Result<bool, ProviderConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(true),
        Ok(u) if u.scheme() == "http" && u.host().is_some() => Ok(false),
        _ => Err(ProviderConfigError::Invalid {
            name,
            detail: format!("{url:?} is not an http(s) URL"),
        }),
    }
}

fn sign_type(value: &str) -> Result<wechat_pay::SignType, ProviderConfigError> {
    match value.to_ascii_uppercase().as_str() {
        "MD5" => Ok(wechat_pay::SignType::Md5),
        "HMAC-SHA256" | "HMAC_SHA256" => Ok(wechat_pay::SignType::HmacSha256),
        other => Err(ProviderConfigError::Invalid {
            name: "WECHAT_SIGN_TYPE",
            detail: format!("must be MD5 or HMAC-SHA256, not {other:?}"),
        }),
    }
}

impl ProviderArgs {
    fn settings(&self) -> [Setting<'_>; 24] {
        [
            ("WECHAT_APP_ID", self.wechat_app_id.as_deref()),
            ("WECHAT_MINI_APP_ID", self.wechat_mini_app_id.as_deref()),
            (
                "WECHAT_MINI_APP_SECRET",
                self.wechat_mini_app_secret
                    .as_ref()
                    .map(SecretSetting::expose),
            ),
            ("WECHAT_MCH_ID", self.wechat_mch_id.as_deref()),
            (
                "WECHAT_API_KEY",
                self.wechat_api_key.as_ref().map(SecretSetting::expose),
            ),
            ("WECHAT_PAY_BASE_URL", self.wechat_pay_base_url.as_deref()),
            (
                "WECHAT_API_V3_KEY",
                self.wechat_api_v3_key.as_ref().map(SecretSetting::expose),
            ),
            ("WECHAT_PRIVATE_KEY", self.wechat_private_key.as_deref()),
            ("WECHAT_CERT_SERIAL", self.wechat_cert_serial.as_deref()),
            (
                "WECHAT_PAY_PUBLIC_KEY",
                self.wechat_pay_public_key.as_deref(),
            ),
            (
                "WECHAT_PAY_PUBLIC_KEY_ID",
                self.wechat_pay_public_key_id.as_deref(),
            ),
            ("WECHAT_CERT_P12", self.wechat_cert_p12.as_deref()),
            (
                "WECHAT_CERT_PASSWORD",
                self.wechat_cert_password
                    .as_ref()
                    .map(SecretSetting::expose),
            ),
            ("WECHAT_CERT_PEM", self.wechat_cert_pem.as_deref()),
            ("WECHAT_KEY_PEM", self.wechat_key_pem.as_deref()),
            (
                "WECHAT_APP_SECRET",
                self.wechat_app_secret.as_ref().map(SecretSetting::expose),
            ),
            ("WECHAT_MP_BASE_URL", self.wechat_mp_base_url.as_deref()),
            (
                "WECHAT_MP_TOKEN",
                self.wechat_mp_token.as_ref().map(SecretSetting::expose),
            ),
            (
                "WECHAT_MP_AES_KEY",
                self.wechat_mp_aes_key.as_ref().map(SecretSetting::expose),
            ),
            ("ALIPAY_APP_ID", self.alipay_app_id.as_deref()),
            (
                "ALIPAY_PRIVATE_KEY",
                self.alipay_private_key.as_ref().map(SecretSetting::expose),
            ),
            ("ALIPAY_PUBLIC_KEY", self.alipay_public_key.as_deref()),
            ("ALIPAY_SELLER_ID", self.alipay_seller_id.as_deref()),
            ("ALIPAY_GATEWAY_URL", self.alipay_gateway_url.as_deref()),
        ]
    }

    /// The API v3 credentials, checked: a 32-byte API v3 key, the public key with its id or
    /// neither.
    fn v3_plan(&self) -> Result<V3Plan, ProviderConfigError> {
        let api_v3_key = self.wechat_api_v3_key.clone().unwrap_or_default();
        wechat_pay::v3::ApiV3Key::new(api_v3_key.expose()).map_err(|e| {
            ProviderConfigError::Invalid {
                name: "WECHAT_API_V3_KEY",
                detail: e.to_string(),
            }
        })?;
        let public_key = match (&self.wechat_pay_public_key, &self.wechat_pay_public_key_id) {
            (Some(path), Some(id)) => Some((path.clone(), id.clone())),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                let (set, missing) = if self.wechat_pay_public_key.is_some() {
                    ("WECHAT_PAY_PUBLIC_KEY", "WECHAT_PAY_PUBLIC_KEY_ID")
                } else {
                    ("WECHAT_PAY_PUBLIC_KEY_ID", "WECHAT_PAY_PUBLIC_KEY")
                };
                return Err(ProviderConfigError::Partial {
                    provider: "the WeChat Pay public key",
                    set: set.into(),
                    missing: format!(
                        "{missing} (or unset both to use WeChat Pay's platform certificates)"
                    ),
                });
            }
        };
        Ok(V3Plan {
            api_v3_key,
            private_key: self.wechat_private_key.clone().unwrap_or_default(),
            serial: self.wechat_cert_serial.clone().unwrap_or_default(),
            public_key,
        })
    }

    /// Decides the mode and checks that every provider is configured completely or not at all.
    pub fn plan(&self) -> Result<Plan, ProviderConfigError> {
        let sign_type = sign_type(&self.wechat_sign_type)?;
        let api = WechatPayApi::parse("WECHAT_PAY_API", &self.wechat_pay_api)?;
        let demo_api = WechatPayApi::parse("DEMO_WECHAT_API", &self.demo_wechat_api)?;
        let settings = self.settings();
        if let Some((name, _)) = settings
            .iter()
            .find(|(_, v)| v.is_some_and(|s| s.trim().is_empty()))
        {
            return Err(ProviderConfigError::Empty(name));
        }
        if settings.iter().all(|(_, v)| v.is_none()) {
            return Ok(Plan::Demo {
                sign_type,
                api: demo_api,
            });
        }
        let setting = |name: &'static str| -> Setting<'_> {
            let value = settings
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| *v);
            (name, value)
        };
        let s = |name: &'static str| setting(name).1.map(|v| (name, v.to_owned()));

        let app_id = setting("WECHAT_APP_ID");
        let mini_app_id = setting("WECHAT_MINI_APP_ID");
        let v2_only = [
            setting("WECHAT_API_KEY"),
            setting("WECHAT_CERT_P12"),
            setting("WECHAT_CERT_PASSWORD"),
            setting("WECHAT_CERT_PEM"),
            setting("WECHAT_KEY_PEM"),
        ];
        let v3_only = [
            setting("WECHAT_API_V3_KEY"),
            setting("WECHAT_PRIVATE_KEY"),
            setting("WECHAT_CERT_SERIAL"),
            setting("WECHAT_PAY_PUBLIC_KEY"),
            setting("WECHAT_PAY_PUBLIC_KEY_ID"),
        ];
        // One API or the other: settings of the other API are a mistake, not ignored.
        let (own, other, switch) = match api {
            WechatPayApi::V2 => (&v2_only, &v3_only, "set WECHAT_PAY_API=v3 to use them"),
            WechatPayApi::V3 => (&v3_only, &v2_only, "unset them (WECHAT_PAY_API is v3)"),
        };
        let stray = names(other, true);
        if !stray.is_empty() {
            return Err(ProviderConfigError::Invalid {
                name: "WECHAT_PAY_API",
                detail: format!(
                    "{} {} settings of the other WeChat Pay API: {switch}",
                    stray.join(", "),
                    if stray.len() == 1 { "is a" } else { "are" },
                ),
            });
        }
        let mut pay_triggers = vec![setting("WECHAT_MCH_ID"), setting("WECHAT_PAY_BASE_URL")];
        pay_triggers.extend_from_slice(own);
        let required: Vec<Setting<'_>> = match api {
            WechatPayApi::V2 => vec![setting("WECHAT_MCH_ID"), setting("WECHAT_API_KEY")],
            WechatPayApi::V3 => vec![
                setting("WECHAT_MCH_ID"),
                setting("WECHAT_API_V3_KEY"),
                setting("WECHAT_PRIVATE_KEY"),
                setting("WECHAT_CERT_SERIAL"),
            ],
        };
        let no_app = app_id.1.is_none() && mini_app_id.1.is_none();
        let pay_on = match group("WeChat Pay", &pay_triggers, &required) {
            // Say everything that is missing at once, the app id included.
            Err(ProviderConfigError::Partial {
                provider,
                set,
                mut missing,
            }) => {
                if no_app {
                    missing.push_str(", WECHAT_APP_ID or WECHAT_MINI_APP_ID");
                }
                return Err(ProviderConfigError::Partial {
                    provider,
                    set,
                    missing,
                });
            }
            other => other?,
        };
        if pay_on && no_app {
            return Err(ProviderConfigError::Partial {
                provider: "WeChat Pay",
                set: names(&pay_triggers, true).join(", "),
                missing: "WECHAT_APP_ID (Official Account) or WECHAT_MINI_APP_ID (Mini Program)"
                    .into(),
            });
        }
        let mp_on = group(
            "WeChat MP",
            &[
                setting("WECHAT_APP_SECRET"),
                setting("WECHAT_MP_BASE_URL"),
                setting("WECHAT_MP_TOKEN"),
                setting("WECHAT_MP_AES_KEY"),
            ],
            &[app_id, setting("WECHAT_APP_SECRET")],
        )?;
        let mini_on = group(
            "the Mini Program",
            &[setting("WECHAT_MINI_APP_SECRET")],
            &[mini_app_id, setting("WECHAT_MINI_APP_SECRET")],
        )?;
        if mp_on && s("WECHAT_MP_AES_KEY").is_some() && s("WECHAT_MP_TOKEN").is_none() {
            return Err(ProviderConfigError::Partial {
                provider: "the Official Account callback",
                set: "WECHAT_MP_AES_KEY".into(),
                missing: "WECHAT_MP_TOKEN".into(),
            });
        }
        if app_id.1.is_some() && !pay_on && !mp_on {
            return Err(ProviderConfigError::Partial {
                provider: "WeChat",
                set: "WECHAT_APP_ID".into(),
                missing: "WECHAT_MCH_ID and WECHAT_API_KEY (WeChat Pay) or WECHAT_APP_SECRET \
                          (WeChat MP)"
                    .into(),
            });
        }
        if mini_app_id.1.is_some() && !pay_on && !mini_on {
            return Err(ProviderConfigError::Partial {
                provider: "the Mini Program",
                set: "WECHAT_MINI_APP_ID".into(),
                missing: "WECHAT_MCH_ID and WECHAT_API_KEY (WeChat Pay) or \
                          WECHAT_MINI_APP_SECRET (logins)"
                    .into(),
            });
        }
        let alipay_on = group(
            "Alipay",
            &[
                setting("ALIPAY_APP_ID"),
                setting("ALIPAY_PRIVATE_KEY"),
                setting("ALIPAY_PUBLIC_KEY"),
                setting("ALIPAY_SELLER_ID"),
                setting("ALIPAY_GATEWAY_URL"),
            ],
            &[
                setting("ALIPAY_APP_ID"),
                setting("ALIPAY_PRIVATE_KEY"),
                setting("ALIPAY_PUBLIC_KEY"),
                setting("ALIPAY_SELLER_ID"),
            ],
        )?;
        if !pay_on && !alipay_on {
            return Err(ProviderConfigError::NoPaymentProvider);
        }

        let wechat_pay = if pay_on {
            let certificate = match (
                s("WECHAT_CERT_P12"),
                s("WECHAT_CERT_PEM"),
                s("WECHAT_KEY_PEM"),
            ) {
                (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                    return Err(ProviderConfigError::Conflict(
                        "set WECHAT_CERT_P12 or WECHAT_CERT_PEM + WECHAT_KEY_PEM, not both",
                    ));
                }
                (Some((_, path)), None, None) => Some(CertificateSource::Pkcs12 {
                    path,
                    password: s("WECHAT_CERT_PASSWORD").map(|(_, p)| p.into()),
                }),
                (None, Some((_, cert)), Some((_, key))) => {
                    Some(CertificateSource::Pem { cert, key })
                }
                (None, Some((n, _)), None) | (None, None, Some((n, _))) => {
                    return Err(ProviderConfigError::Partial {
                        provider: "the merchant certificate",
                        set: n.into(),
                        missing: if n == "WECHAT_CERT_PEM" {
                            "WECHAT_KEY_PEM"
                        } else {
                            "WECHAT_CERT_PEM"
                        }
                        .into(),
                    });
                }
                (None, None, None) => None,
            };
            if certificate.is_none() && s("WECHAT_CERT_PASSWORD").is_some() {
                return Err(ProviderConfigError::Partial {
                    provider: "the merchant certificate",
                    set: "WECHAT_CERT_PASSWORD".into(),
                    missing: "WECHAT_CERT_P12".into(),
                });
            }
            let base_url = s("WECHAT_PAY_BASE_URL").map_or_else(
                || wechat_pay::client::DEFAULT_BASE_URL.to_owned(),
                |(_, u)| u,
            );
            let https = http_url("WECHAT_PAY_BASE_URL", &base_url)?;
            let v3 = match api {
                WechatPayApi::V2 => {
                    if https && certificate.is_none() {
                        return Err(ProviderConfigError::CertificateRequired { base_url });
                    }
                    None
                }
                WechatPayApi::V3 => Some(self.v3_plan()?),
            };
            Some(WechatPayPlan {
                app_id: self.wechat_app_id.clone(),
                mini_app_id: self.wechat_mini_app_id.clone(),
                mch_id: self.wechat_mch_id.clone().unwrap_or_default(),
                api_key: wechat_pay::ApiKey::new(
                    self.wechat_api_key
                        .as_ref()
                        .map(|k| k.expose().to_owned())
                        .unwrap_or_default(),
                ),
                base_url,
                certificate,
                v3,
            })
        } else {
            None
        };

        let mp_base_url = s("WECHAT_MP_BASE_URL").map_or_else(
            || wechat_mp::client::DEFAULT_BASE_URL.to_owned(),
            |(_, u)| u,
        );
        http_url("WECHAT_MP_BASE_URL", &mp_base_url)?;
        let mini = mini_on.then(|| MpPlan {
            app_id: self.wechat_mini_app_id.clone().unwrap_or_default(),
            secret: wechat_mp::Secret::new(
                self.wechat_mini_app_secret
                    .as_ref()
                    .map(|k| k.expose().to_owned())
                    .unwrap_or_default(),
            ),
            base_url: mp_base_url.clone(),
            token: None,
            aes_key: None,
        });
        let mp = if mp_on {
            let base_url = mp_base_url;
            Some(MpPlan {
                app_id: self.wechat_app_id.clone().unwrap_or_default(),
                secret: wechat_mp::Secret::new(
                    self.wechat_app_secret
                        .as_ref()
                        .map(|k| k.expose().to_owned())
                        .unwrap_or_default(),
                ),
                base_url,
                token: self.wechat_mp_token.clone(),
                aes_key: self.wechat_mp_aes_key.clone(),
            })
        } else {
            None
        };

        let alipay = if alipay_on {
            let gateway = s("ALIPAY_GATEWAY_URL").map_or_else(
                || aggregate_pay::channels::alipay::DEFAULT_GATEWAY.to_owned(),
                |(_, u)| u,
            );
            http_url("ALIPAY_GATEWAY_URL", &gateway)?;
            let seller_id = self.alipay_seller_id.clone().unwrap_or_default();
            if seller_id.len() != 16
                || !seller_id.starts_with("2088")
                || !seller_id.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(ProviderConfigError::Invalid {
                    name: "ALIPAY_SELLER_ID",
                    detail: format!("{seller_id:?} is not an Alipay user id (2088 and 12 digits)"),
                });
            }
            Some(AlipayPlan {
                app_id: self.alipay_app_id.clone().unwrap_or_default(),
                private_key: self.alipay_private_key.clone().unwrap_or_default(),
                public_key: self.alipay_public_key.clone().unwrap_or_default(),
                seller_id,
                gateway,
            })
        } else {
            None
        };
        Ok(Plan::Live(Box::new(LivePlan {
            sign_type,
            wechat_pay,
            mp,
            mini,
            alipay,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> ProviderArgs {
        let mut a = ProviderArgs {
            wechat_sign_type: "MD5".into(),
            ..ProviderArgs::default()
        };
        for (k, v) in pairs {
            let secret = Some(SecretSetting::from(*v));
            let raw = (*v).to_owned();
            let v = Some(raw.clone());
            match *k {
                "WECHAT_APP_ID" => a.wechat_app_id = v,
                "WECHAT_MINI_APP_ID" => a.wechat_mini_app_id = v,
                "WECHAT_MINI_APP_SECRET" => a.wechat_mini_app_secret = secret,
                "WECHAT_MCH_ID" => a.wechat_mch_id = v,
                "WECHAT_API_KEY" => a.wechat_api_key = secret,
                "WECHAT_PAY_API" => a.wechat_pay_api = raw,
                "WECHAT_API_V3_KEY" => a.wechat_api_v3_key = secret,
                "WECHAT_PRIVATE_KEY" => a.wechat_private_key = v,
                "WECHAT_CERT_SERIAL" => a.wechat_cert_serial = v,
                "WECHAT_PAY_PUBLIC_KEY" => a.wechat_pay_public_key = v,
                "WECHAT_PAY_PUBLIC_KEY_ID" => a.wechat_pay_public_key_id = v,
                "DEMO_WECHAT_API" => a.demo_wechat_api = raw,
                "WECHAT_PAY_BASE_URL" => a.wechat_pay_base_url = v,
                "WECHAT_CERT_P12" => a.wechat_cert_p12 = v,
                "WECHAT_CERT_PASSWORD" => a.wechat_cert_password = secret,
                "WECHAT_CERT_PEM" => a.wechat_cert_pem = v,
                "WECHAT_KEY_PEM" => a.wechat_key_pem = v,
                "WECHAT_APP_SECRET" => a.wechat_app_secret = secret,
                "WECHAT_MP_TOKEN" => a.wechat_mp_token = secret,
                "WECHAT_MP_AES_KEY" => a.wechat_mp_aes_key = secret,
                "ALIPAY_APP_ID" => a.alipay_app_id = v,
                "ALIPAY_PRIVATE_KEY" => a.alipay_private_key = secret,
                "ALIPAY_PUBLIC_KEY" => a.alipay_public_key = v,
                "ALIPAY_SELLER_ID" => a.alipay_seller_id = v,
                "ALIPAY_GATEWAY_URL" => a.alipay_gateway_url = v,
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

    const V3: [(&str, &str); 7] = [
        ("WECHAT_PAY_API", "v3"),
        ("WECHAT_APP_ID", "wx1"),
        ("WECHAT_MCH_ID", "1000"),
        ("WECHAT_API_V3_KEY", "0123456789abcdefghijABCDEFGHIJ01"),
        ("WECHAT_PRIVATE_KEY", "/keys/apiclient_key.pem"),
        (
            "WECHAT_CERT_SERIAL",
            "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
        ),
        ("WECHAT_PAY_BASE_URL", "https://api.mch.weixin.qq.com"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        more: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut all: Vec<_> = base
            .iter()
            .filter(|(k, _)| more.iter().all(|(m, _)| m != k))
            .copied()
            .collect();
        all.extend_from_slice(more);
        all
    }

    #[test]
    fn api_v3_is_live_without_a_merchant_certificate_and_never_mixed_with_v2() {
        // Platform certificates (no public key): complete; https needs no mTLS certificate.
        let Plan::Live(live) = args(&V3).plan().unwrap() else {
            panic!("live expected")
        };
        let v3 = live.wechat_pay.unwrap().v3.unwrap();
        assert!(v3.public_key.is_none());
        let both = with(
            &V3,
            &[
                ("WECHAT_PAY_PUBLIC_KEY", "/keys/pub_key.pem"),
                (
                    "WECHAT_PAY_PUBLIC_KEY_ID",
                    "PUB_KEY_ID_0114232134912410000000000000",
                ),
            ],
        );
        let Plan::Live(live) = args(&both).plan().unwrap() else {
            panic!("live expected")
        };
        assert_eq!(
            live.wechat_pay.unwrap().v3.unwrap().public_key.unwrap().1,
            "PUB_KEY_ID_0114232134912410000000000000"
        );
        // Half of the public key.
        let e = error(&with(
            &V3,
            &[("WECHAT_PAY_PUBLIC_KEY", "/keys/pub_key.pem")],
        ));
        assert!(e.contains("WECHAT_PAY_PUBLIC_KEY_ID"), "{e}");
        // Missing credentials are named.
        let partial: Vec<_> = V3
            .iter()
            .filter(|(k, _)| *k != "WECHAT_CERT_SERIAL")
            .copied()
            .collect();
        let e = error(&partial);
        assert!(
            e.contains("missing") || e.contains("set WECHAT_CERT_SERIAL"),
            "{e}"
        );
        assert!(e.contains("WECHAT_CERT_SERIAL"), "{e}");
        // A v2 setting with v3, or a v3 setting without WECHAT_PAY_API=v3, is refused.
        let e = error(&with(&V3, &[("WECHAT_API_KEY", "k")]));
        assert!(
            e.contains("WECHAT_API_KEY") && e.contains("other WeChat Pay API"),
            "{e}"
        );
        let e = error(&with(
            &STAGING,
            &[("WECHAT_API_V3_KEY", "0123456789abcdefghijABCDEFGHIJ01")],
        ));
        assert!(e.contains("WECHAT_PAY_API=v3"), "{e}");
        // A key of the wrong length, an unknown API.
        let e = error(&with(&V3, &[("WECHAT_API_V3_KEY", "short")]));
        assert!(e.contains("WECHAT_API_V3_KEY"), "{e}");
        let e = error(&with(&V3, &[("WECHAT_PAY_API", "v4")]));
        assert!(e.contains("WECHAT_PAY_API") && e.contains("v4"), "{e}");
    }

    #[test]
    fn demo_mode_speaks_the_api_it_is_told() {
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
        let e = error(&[("DEMO_WECHAT_API", "v9")]);
        assert!(e.contains("DEMO_WECHAT_API"), "{e}");
    }

    #[test]
    fn nothing_set_is_demo() {
        let plan = args(&[]).plan().unwrap();
        assert_eq!(plan.mode(), Mode::Demo);
    }

    #[test]
    fn any_credential_is_live_with_only_the_configured_providers() {
        let plan = args(&STAGING).plan().unwrap();
        assert_eq!(plan.mode(), Mode::Live);
        let Plan::Live(live) = plan else {
            panic!("live expected")
        };
        let LivePlan {
            wechat_pay,
            mp,
            alipay,
            ..
        } = *live;
        assert_eq!(wechat_pay.unwrap().base_url, "http://127.0.0.1:9100");
        assert!(mp.is_none(), "no app secret: MP is off, not emulated");
        assert!(
            alipay.is_none(),
            "no Alipay keys: Alipay is off, not emulated"
        );
    }

    #[test]
    fn partial_credentials_name_what_is_missing() {
        let e = error(&[("WECHAT_APP_ID", "wx1"), ("WECHAT_MCH_ID", "1000")]);
        assert!(
            e.contains("WeChat Pay") && e.contains("WECHAT_API_KEY"),
            "{e}"
        );
        let e = error(&[("WECHAT_API_KEY", "k")]);
        assert!(
            e.contains("WECHAT_APP_ID") && e.contains("WECHAT_MCH_ID"),
            "{e}"
        );
        let e = error(&[("WECHAT_APP_ID", "wx1")]);
        assert!(
            e.contains("WECHAT_API_KEY") && e.contains("WECHAT_APP_SECRET"),
            "{e}"
        );
        let e = error(&[("ALIPAY_APP_ID", "2021"), ("ALIPAY_PRIVATE_KEY", "k")]);
        assert!(
            e.contains("Alipay") && e.contains("ALIPAY_PUBLIC_KEY"),
            "{e}"
        );
        let alipay = [
            ("ALIPAY_APP_ID", "2021"),
            ("ALIPAY_PRIVATE_KEY", "k"),
            ("ALIPAY_PUBLIC_KEY", "p"),
        ];
        let e = error(&alipay);
        assert!(e.contains("ALIPAY_SELLER_ID"), "the seller is checked: {e}");
        let mut wrong_seller = alipay.to_vec();
        wrong_seller.push(("ALIPAY_SELLER_ID", "2021000000000001"));
        let e = error(&wrong_seller);
        assert!(e.contains("ALIPAY_SELLER_ID") && e.contains("2088"), "{e}");
        let e = error(&[("ALIPAY_GATEWAY_URL", "http://127.0.0.1:1/gateway.do")]);
        assert!(e.contains("ALIPAY_APP_ID"), "{e}");
        let mut with_pem = STAGING.to_vec();
        with_pem.push(("WECHAT_CERT_PEM", "/c.pem"));
        let e = error(&with_pem);
        assert!(e.contains("WECHAT_KEY_PEM"), "{e}");
        let mut mp_only = vec![("WECHAT_APP_ID", "wx1"), ("WECHAT_APP_SECRET", "s")];
        assert!(error(&mp_only).contains("payment provider"));
        mp_only.push(("WECHAT_MP_AES_KEY", "aes"));
        assert!(error(&mp_only).contains("WECHAT_MP_TOKEN"));
    }

    #[test]
    fn two_wechat_apps_under_one_merchant() {
        let plan = args(&[
            ("WECHAT_MINI_APP_ID", "wxmini"),
            ("WECHAT_MINI_APP_SECRET", "s"),
            ("WECHAT_MCH_ID", "1000"),
            ("WECHAT_API_KEY", "k"),
            ("WECHAT_PAY_BASE_URL", "http://127.0.0.1:9100"),
        ])
        .plan()
        .unwrap();
        let Plan::Live(live) = plan else {
            panic!("live expected")
        };
        let pay = live.wechat_pay.clone().unwrap();
        assert_eq!(
            (pay.app_id, pay.mini_app_id.as_deref()),
            (None, Some("wxmini")),
            "a Mini Program alone is enough for WeChat Pay"
        );
        assert!(live.mp.is_none());
        assert_eq!(live.mini.unwrap().app_id, "wxmini");
        let e = error(&[("WECHAT_MINI_APP_SECRET", "s")]);
        assert!(e.contains("WECHAT_MINI_APP_ID"), "{e}");
        let e = error(&[("WECHAT_MINI_APP_ID", "wxmini")]);
        assert!(e.contains("WECHAT_MINI_APP_SECRET"), "{e}");
    }

    #[test]
    fn an_empty_value_is_refused_not_ignored() {
        assert!(error(&[("WECHAT_API_KEY", "")]).contains("WECHAT_API_KEY is set but empty"));
    }

    #[test]
    fn https_wechat_pay_needs_the_certificate() {
        let live = [
            ("WECHAT_APP_ID", "wx1"),
            ("WECHAT_MCH_ID", "1000"),
            ("WECHAT_API_KEY", "k"),
        ];
        let e = error(&live);
        for name in ["WECHAT_CERT_P12", "WECHAT_CERT_PEM", "WECHAT_KEY_PEM"] {
            assert!(e.contains(name), "{e}");
        }
        assert!(e.contains("https://api.mch.weixin.qq.com"), "{e}");
        let mut with_p12 = live.to_vec();
        with_p12.push(("WECHAT_CERT_P12", "/apiclient_cert.p12"));
        let Plan::Live(live) = args(&with_p12).plan().unwrap() else {
            panic!("live expected")
        };
        assert_eq!(
            live.wechat_pay.unwrap().certificate,
            Some(CertificateSource::Pkcs12 {
                path: "/apiclient_cert.p12".into(),
                password: None
            })
        );
        let mut both = with_p12.clone();
        both.extend([("WECHAT_CERT_PEM", "/c"), ("WECHAT_KEY_PEM", "/k")]);
        assert!(error(&both).contains("not both"));
    }

    #[test]
    fn a_bad_sign_type_is_refused_in_both_modes() {
        let mut a = args(&[]);
        a.wechat_sign_type = "SHA1".into();
        assert!(
            a.plan()
                .unwrap_err()
                .to_string()
                .contains("WECHAT_SIGN_TYPE")
        );
    }
}
