//! WeChat Pay: one merchant, for the Official Account's app and the Mini Program's (the app ids
//! are WeChat MP's settings). Its settings, the plan (API v2 with the API key and, over
//! `https://`, the merchant certificate; or API v3 with the API v3 key, the merchant's private
//! key and serial, and WeChat Pay's public key or platform certificates — never a mix), and its
//! clients — live, or the emulator's demo merchant.

mod clients;
pub use clients::demo_sub_merchants;

use clap::Args;

pub(super) use clients::{DemoMerchant, connect};

use super::common::{ProviderConfigError, Setting, empty, group, http_url, invalid, names, secret};
use super::wechat_mp::WechatApps;
use crate::settings::SecretSetting;

/// WeChat Pay's settings.
#[derive(Clone, Default, Debug, Args)]
pub struct WechatPayArgs {
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
    /// API v3, with `WECHAT_PAY_PUBLIC_KEY`: accept WeChat Pay's platform certificates too —
    /// while WeChat moves the merchant from certificates to the public key, when it signs
    /// with either. Unset it once the switch is over.
    #[arg(
        long,
        env = "WECHAT_PAY_PLATFORM_CERTIFICATES",
        default_value_t = false
    )]
    pub wechat_pay_platform_certificates: bool,
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
            other => Err(invalid(name)(format!("must be v2 or v3, not {other:?}"))),
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
    /// Platform certificates are accepted (without a public key, or beside it during WeChat's
    /// switch to the public key).
    pub certificates: bool,
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
    /// API key (v2).
    pub api_key: wechat_pay::ApiKey,
    /// The v2 signature type.
    pub sign_type: wechat_pay::SignType,
    /// Gateway.
    pub base_url: String,
    /// The merchant certificate (API v2; required over `https://`).
    pub certificate: Option<CertificateSource>,
    /// API v3 (instead of v2's API key and certificate), when `WECHAT_PAY_API=v3`.
    pub v3: Option<V3Plan>,
}

impl WechatPayArgs {
    /// Every credential and endpoint, by variable (what makes a server live).
    pub(super) fn settings(&self) -> Vec<Setting<'_>> {
        let mut all = vec![
            ("WECHAT_MCH_ID", self.wechat_mch_id.as_deref()),
            ("WECHAT_PAY_BASE_URL", self.wechat_pay_base_url.as_deref()),
        ];
        all.extend(self.v2_only());
        all.extend(self.v3_only());
        all
    }

    fn v2_only(&self) -> [Setting<'_>; 5] {
        [
            ("WECHAT_API_KEY", secret(&self.wechat_api_key)),
            ("WECHAT_CERT_P12", self.wechat_cert_p12.as_deref()),
            ("WECHAT_CERT_PASSWORD", secret(&self.wechat_cert_password)),
            ("WECHAT_CERT_PEM", self.wechat_cert_pem.as_deref()),
            ("WECHAT_KEY_PEM", self.wechat_key_pem.as_deref()),
        ]
    }

    fn v3_only(&self) -> [Setting<'_>; 5] {
        [
            ("WECHAT_API_V3_KEY", secret(&self.wechat_api_v3_key)),
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
        ]
    }

    /// The v2 signature type (`WECHAT_SIGN_TYPE`), in either mode.
    pub fn sign_type(&self) -> Result<wechat_pay::SignType, ProviderConfigError> {
        match self.wechat_sign_type.to_ascii_uppercase().as_str() {
            "MD5" => Ok(wechat_pay::SignType::Md5),
            "HMAC-SHA256" | "HMAC_SHA256" => Ok(wechat_pay::SignType::HmacSha256),
            other => Err(invalid("WECHAT_SIGN_TYPE")(format!(
                "must be MD5 or HMAC-SHA256, not {other:?}"
            ))),
        }
    }

    /// The API the demo merchant speaks (`DEMO_WECHAT_API`).
    pub fn demo_api(&self) -> Result<WechatPayApi, ProviderConfigError> {
        WechatPayApi::parse("DEMO_WECHAT_API", &self.demo_wechat_api)
    }

    /// Live mode's WeChat Pay for `apps`: `None` when nothing of it is set. Settings of the
    /// other API, a partial, empty or malformed setting, and an `https://` gateway without the
    /// merchant certificate (v2) are errors naming the variables.
    pub fn plan(&self, apps: WechatApps<'_>) -> Result<Option<WechatPayPlan>, ProviderConfigError> {
        let sign_type = self.sign_type()?;
        let api = WechatPayApi::parse("WECHAT_PAY_API", &self.wechat_pay_api)?;
        if let Some(name) = empty(&self.settings()) {
            return Err(ProviderConfigError::Empty(name));
        }
        // One API or the other: settings of the other API are a mistake, not ignored.
        let (own, other, switch) = match api {
            WechatPayApi::V2 => (
                self.v2_only(),
                self.v3_only(),
                "set WECHAT_PAY_API=v3 to use them",
            ),
            WechatPayApi::V3 => (
                self.v3_only(),
                self.v2_only(),
                "unset them (WECHAT_PAY_API is v3)",
            ),
        };
        let stray = names(&other, true);
        if !stray.is_empty() {
            return Err(invalid("WECHAT_PAY_API")(format!(
                "{} {} settings of the other WeChat Pay API: {switch}",
                stray.join(", "),
                if stray.len() == 1 { "is a" } else { "are" },
            )));
        }
        let mch_id = ("WECHAT_MCH_ID", self.wechat_mch_id.as_deref());
        let mut triggers = vec![
            mch_id,
            ("WECHAT_PAY_BASE_URL", self.wechat_pay_base_url.as_deref()),
        ];
        triggers.extend_from_slice(&own);
        let required = match api {
            WechatPayApi::V2 => vec![mch_id, own[0]],
            WechatPayApi::V3 => vec![mch_id, own[0], own[1], own[2]],
        };
        let on = match group("WeChat Pay", &triggers, &required) {
            // Say everything that is missing at once, the app id included.
            Err(ProviderConfigError::Partial {
                provider,
                set,
                mut missing,
            }) => {
                if apps.none() {
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
        if !on {
            return Ok(None);
        }
        if apps.none() {
            return Err(ProviderConfigError::Partial {
                provider: "WeChat Pay",
                set: names(&triggers, true).join(", "),
                missing: "WECHAT_APP_ID (Official Account) or WECHAT_MINI_APP_ID (Mini Program)"
                    .into(),
            });
        }
        let certificate = self.certificate()?;
        let base_url = self
            .wechat_pay_base_url
            .clone()
            .unwrap_or_else(|| wechat_pay::client::DEFAULT_BASE_URL.to_owned());
        let https = http_url("WECHAT_PAY_BASE_URL", &base_url)?;
        let v3 = match api {
            WechatPayApi::V2 if https && certificate.is_none() => {
                return Err(ProviderConfigError::CertificateRequired { base_url });
            }
            WechatPayApi::V2 => None,
            WechatPayApi::V3 => Some(self.v3_plan()?),
        };
        Ok(Some(WechatPayPlan {
            app_id: apps.official.map(str::to_owned),
            mini_app_id: apps.mini.map(str::to_owned),
            mch_id: self.wechat_mch_id.clone().unwrap_or_default(),
            api_key: wechat_pay::ApiKey::new(secret(&self.wechat_api_key).unwrap_or_default()),
            sign_type,
            base_url,
            certificate,
            v3,
        }))
    }

    /// The merchant certificate: a `.p12` (with its password, when not the merchant id) or a
    /// PEM pair — one of them whole, or none.
    fn certificate(&self) -> Result<Option<CertificateSource>, ProviderConfigError> {
        let source = match (
            &self.wechat_cert_p12,
            &self.wechat_cert_pem,
            &self.wechat_key_pem,
        ) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ProviderConfigError::Conflict(
                    "set WECHAT_CERT_P12 or WECHAT_CERT_PEM + WECHAT_KEY_PEM, not both",
                ));
            }
            (Some(path), None, None) => Some(CertificateSource::Pkcs12 {
                path: path.clone(),
                password: self.wechat_cert_password.clone(),
            }),
            (None, Some(cert), Some(key)) => Some(CertificateSource::Pem {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, Some(_), None) | (None, None, Some(_)) => {
                let (set, missing) = if self.wechat_cert_pem.is_some() {
                    ("WECHAT_CERT_PEM", "WECHAT_KEY_PEM")
                } else {
                    ("WECHAT_KEY_PEM", "WECHAT_CERT_PEM")
                };
                return Err(ProviderConfigError::Partial {
                    provider: "the merchant certificate",
                    set: set.into(),
                    missing: missing.into(),
                });
            }
            (None, None, None) => None,
        };
        if source.is_none() && self.wechat_cert_password.is_some() {
            return Err(ProviderConfigError::Partial {
                provider: "the merchant certificate",
                set: "WECHAT_CERT_PASSWORD".into(),
                missing: "WECHAT_CERT_P12".into(),
            });
        }
        Ok(source)
    }

    /// The API v3 credentials, checked: a 32-byte API v3 key, the public key with its id or
    /// neither.
    fn v3_plan(&self) -> Result<V3Plan, ProviderConfigError> {
        let api_v3_key = self.wechat_api_v3_key.clone().unwrap_or_default();
        wechat_pay::v3::ApiV3Key::new(api_v3_key.expose())
            .map_err(|e| invalid("WECHAT_API_V3_KEY")(e.to_string()))?;
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
            certificates: public_key.is_none() || self.wechat_pay_platform_certificates,
            public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> WechatPayArgs {
        let mut a = WechatPayArgs {
            wechat_sign_type: "MD5".into(),
            ..WechatPayArgs::default()
        };
        for (k, v) in pairs {
            let raw = (*v).to_owned();
            let v = Some(raw.clone());
            match *k {
                "WECHAT_MCH_ID" => a.wechat_mch_id = v,
                "WECHAT_API_KEY" => a.wechat_api_key = v.map(Into::into),
                "WECHAT_PAY_API" => a.wechat_pay_api = raw,
                "WECHAT_API_V3_KEY" => a.wechat_api_v3_key = v.map(Into::into),
                "WECHAT_PRIVATE_KEY" => a.wechat_private_key = v,
                "WECHAT_CERT_SERIAL" => a.wechat_cert_serial = v,
                "WECHAT_PAY_PUBLIC_KEY" => a.wechat_pay_public_key = v,
                "WECHAT_PAY_PUBLIC_KEY_ID" => a.wechat_pay_public_key_id = v,
                "WECHAT_PAY_PLATFORM_CERTIFICATES" => {
                    a.wechat_pay_platform_certificates = v.as_deref() == Some("true")
                }
                "WECHAT_PAY_BASE_URL" => a.wechat_pay_base_url = v,
                "WECHAT_CERT_P12" => a.wechat_cert_p12 = v,
                "WECHAT_CERT_PASSWORD" => a.wechat_cert_password = v.map(Into::into),
                "WECHAT_CERT_PEM" => a.wechat_cert_pem = v,
                "WECHAT_KEY_PEM" => a.wechat_key_pem = v,
                "WECHAT_SIGN_TYPE" => a.wechat_sign_type = raw,
                other => panic!("unknown setting {other}"),
            }
        }
        a
    }

    const APP: WechatApps<'static> = WechatApps {
        official: Some("wx1"),
        mini: None,
    };

    const STAGING: [(&str, &str); 3] = [
        ("WECHAT_MCH_ID", "1000"),
        ("WECHAT_API_KEY", "k"),
        ("WECHAT_PAY_BASE_URL", "http://127.0.0.1:9100"),
    ];

    const V3: [(&str, &str); 5] = [
        ("WECHAT_PAY_API", "v3"),
        ("WECHAT_MCH_ID", "1000"),
        ("WECHAT_API_V3_KEY", "0123456789abcdefghijABCDEFGHIJ01"),
        ("WECHAT_PRIVATE_KEY", "/keys/apiclient_key.pem"),
        (
            "WECHAT_CERT_SERIAL",
            "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
        ),
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

    fn error(pairs: &[(&str, &str)], apps: WechatApps<'_>) -> String {
        match args(pairs).plan(apps) {
            Err(e) => e.to_string(),
            Ok(plan) => panic!("expected an error, got {plan:?}"),
        }
    }

    #[test]
    fn v2_alone_missing_partial_empty_and_conflicting() {
        assert!(args(&[]).plan(APP).unwrap().is_none(), "nothing set: off");
        let plan = args(&STAGING).plan(APP).unwrap().unwrap();
        assert_eq!(plan.base_url, "http://127.0.0.1:9100");
        assert!(plan.v3.is_none() && plan.certificate.is_none());
        // Partial: named, the app id too when there is none.
        let e = error(&STAGING[..1], APP);
        assert!(
            e.contains("WeChat Pay") && e.contains("WECHAT_API_KEY"),
            "{e}"
        );
        let e = error(&[("WECHAT_API_KEY", "k")], WechatApps::default());
        assert!(
            e.contains("WECHAT_APP_ID") && e.contains("WECHAT_MCH_ID"),
            "{e}"
        );
        let e = error(&STAGING, WechatApps::default());
        assert!(e.contains("WECHAT_MINI_APP_ID"), "{e}");
        // Empty.
        let e = error(&with(&STAGING, &[("WECHAT_API_KEY", "")]), APP);
        assert!(e.contains("WECHAT_API_KEY is set but empty"), "{e}");
        // The certificate: half a PEM pair, a password alone, both kinds at once.
        let e = error(&with(&STAGING, &[("WECHAT_CERT_PEM", "/c.pem")]), APP);
        assert!(e.contains("WECHAT_KEY_PEM"), "{e}");
        let e = error(&with(&STAGING, &[("WECHAT_CERT_PASSWORD", "p")]), APP);
        assert!(e.contains("WECHAT_CERT_P12"), "{e}");
        let both = with(
            &STAGING,
            &[
                ("WECHAT_CERT_P12", "/p12"),
                ("WECHAT_CERT_PEM", "/c"),
                ("WECHAT_KEY_PEM", "/k"),
            ],
        );
        assert!(error(&both, APP).contains("not both"));
        // A bad sign type.
        assert!(
            error(&with(&STAGING, &[("WECHAT_SIGN_TYPE", "SHA1")]), APP)
                .contains("WECHAT_SIGN_TYPE")
        );
    }

    #[test]
    fn https_wechat_pay_needs_the_certificate() {
        let live = &STAGING[..2];
        let e = error(live, APP);
        for name in ["WECHAT_CERT_P12", "WECHAT_CERT_PEM", "WECHAT_KEY_PEM"] {
            assert!(e.contains(name), "{e}");
        }
        assert!(e.contains("https://api.mch.weixin.qq.com"), "{e}");
        let plan = args(&with(live, &[("WECHAT_CERT_P12", "/apiclient_cert.p12")]))
            .plan(APP)
            .unwrap()
            .unwrap();
        assert_eq!(
            plan.certificate,
            Some(CertificateSource::Pkcs12 {
                path: "/apiclient_cert.p12".into(),
                password: None
            })
        );
    }

    #[test]
    fn api_v3_needs_no_merchant_certificate_and_is_never_mixed_with_v2() {
        let plan = args(&V3).plan(APP).unwrap().unwrap();
        assert!(
            plan.v3.unwrap().public_key.is_none(),
            "platform certificates"
        );
        let with_key = with(
            &V3,
            &[
                ("WECHAT_PAY_PUBLIC_KEY", "/keys/pub_key.pem"),
                (
                    "WECHAT_PAY_PUBLIC_KEY_ID",
                    "PUB_KEY_ID_0114232134912410000000000000",
                ),
            ],
        );
        let plan = args(&with_key).plan(APP).unwrap().unwrap();
        assert_eq!(
            plan.v3.unwrap().public_key.unwrap().1,
            "PUB_KEY_ID_0114232134912410000000000000"
        );
        let e = error(
            &with(&V3, &[("WECHAT_PAY_PUBLIC_KEY", "/keys/pub_key.pem")]),
            APP,
        );
        assert!(e.contains("WECHAT_PAY_PUBLIC_KEY_ID"), "{e}");
        let partial: Vec<_> = V3
            .iter()
            .filter(|(k, _)| *k != "WECHAT_CERT_SERIAL")
            .copied()
            .collect();
        assert!(error(&partial, APP).contains("WECHAT_CERT_SERIAL"));
        // The other API's settings, either way.
        let e = error(&with(&V3, &[("WECHAT_API_KEY", "k")]), APP);
        assert!(
            e.contains("WECHAT_API_KEY") && e.contains("other WeChat Pay API"),
            "{e}"
        );
        let e = error(
            &with(
                &STAGING,
                &[("WECHAT_API_V3_KEY", "0123456789abcdefghijABCDEFGHIJ01")],
            ),
            APP,
        );
        assert!(e.contains("WECHAT_PAY_API=v3"), "{e}");
        // A key of the wrong length, an unknown API.
        assert!(
            error(&with(&V3, &[("WECHAT_API_V3_KEY", "short")]), APP).contains("WECHAT_API_V3_KEY")
        );
        let e = error(&with(&V3, &[("WECHAT_PAY_API", "v4")]), APP);
        assert!(e.contains("WECHAT_PAY_API") && e.contains("v4"), "{e}");
    }

    #[test]
    fn a_mini_program_alone_is_enough_for_wechat_pay() {
        let plan = args(&STAGING)
            .plan(WechatApps {
                official: None,
                mini: Some("wxmini"),
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            (plan.app_id, plan.mini_app_id.as_deref()),
            (None, Some("wxmini"))
        );
    }
}
