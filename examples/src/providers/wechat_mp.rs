//! WeChat MP: the two apps a merchant runs (the Official Account, the Mini Program) and their
//! settings, the plan (each app's secret with its id, the callback's token with its AES key), and
//! their clients — live, or the emulator's demo apps. The app ids are WeChat Pay's too (the
//! payments are made under them): [`WechatMpArgs::apps`].

use std::sync::Arc;

use clap::Args;
use wechat_sandbox::{MpApp, Sandbox};

use super::common::{
    ProviderConfigError, Setting, empty, emulator_error, group, http_url, invalid, secret,
};
use crate::settings::SecretSetting;

/// The WeChat apps' settings.
#[derive(Clone, Default, Debug, Args)]
pub struct WechatMpArgs {
    /// The Official Account's app id: web OAuth, JSAPI payments in WeChat's browser, Native QR
    /// payments, template messages. WeChat Pay needs it (or `WECHAT_MINI_APP_ID`) with the
    /// merchant id and API key; WeChat MP with the app secret.
    #[arg(long, env = "WECHAT_APP_ID")]
    pub wechat_app_id: Option<String>,
    /// The Official Account's app secret (access tokens, OAuth); with the app id, WeChat MP is
    /// on.
    #[arg(long, env = "WECHAT_APP_SECRET")]
    pub wechat_app_secret: Option<SecretSetting>,
    /// The Mini Program's app id, under the same merchant: `jscode2session` logins and Mini
    /// Program payments (the `wechat_mini` channel).
    #[arg(long, env = "WECHAT_MINI_APP_ID")]
    pub wechat_mini_app_id: Option<String>,
    /// The Mini Program's app secret (logins, subscribe messages).
    #[arg(long, env = "WECHAT_MINI_APP_SECRET")]
    pub wechat_mini_app_secret: Option<SecretSetting>,
    /// WeChat MP API base URL, for both apps (default WeChat's; a standalone `wechat-sandbox`
    /// for staging).
    #[arg(long, env = "WECHAT_MP_BASE_URL")]
    pub wechat_mp_base_url: Option<String>,
    /// The Official Account's callback token.
    #[arg(long, env = "WECHAT_MP_TOKEN")]
    pub wechat_mp_token: Option<SecretSetting>,
    /// The Official Account's EncodingAESKey (safe mode).
    #[arg(long, env = "WECHAT_MP_AES_KEY")]
    pub wechat_mp_aes_key: Option<SecretSetting>,
}

/// The app ids payments are made under, when set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WechatApps<'a> {
    /// The Official Account's.
    pub official: Option<&'a str>,
    /// The Mini Program's.
    pub mini: Option<&'a str>,
}

impl WechatApps<'_> {
    /// Whether neither is set.
    pub fn none(&self) -> bool {
        self.official.is_none() && self.mini.is_none()
    }
}

/// Live WeChat MP for one app.
#[derive(Debug, Clone)]
pub struct MpPlan {
    /// App id.
    pub app_id: String,
    /// App secret.
    pub secret: wechat_mp::Secret,
    /// API base URL.
    pub base_url: String,
    /// The callback token (the Official Account).
    pub token: Option<SecretSetting>,
    /// The EncodingAESKey (the Official Account).
    pub aes_key: Option<SecretSetting>,
}

/// Live WeChat MP: each app when configured.
#[derive(Debug, Clone, Default)]
pub struct MpPlans {
    /// The Official Account.
    pub official: Option<MpPlan>,
    /// The Mini Program.
    pub mini: Option<MpPlan>,
}

impl WechatMpArgs {
    /// Every setting, by variable.
    pub(super) fn settings(&self) -> Vec<Setting<'_>> {
        vec![
            ("WECHAT_APP_ID", self.wechat_app_id.as_deref()),
            ("WECHAT_APP_SECRET", secret(&self.wechat_app_secret)),
            ("WECHAT_MINI_APP_ID", self.wechat_mini_app_id.as_deref()),
            (
                "WECHAT_MINI_APP_SECRET",
                secret(&self.wechat_mini_app_secret),
            ),
            ("WECHAT_MP_BASE_URL", self.wechat_mp_base_url.as_deref()),
            ("WECHAT_MP_TOKEN", secret(&self.wechat_mp_token)),
            ("WECHAT_MP_AES_KEY", secret(&self.wechat_mp_aes_key)),
        ]
    }

    /// The app ids (WeChat Pay's too).
    pub fn apps(&self) -> WechatApps<'_> {
        WechatApps {
            official: self.wechat_app_id.as_deref(),
            mini: self.wechat_mini_app_id.as_deref(),
        }
    }

    /// Live mode's WeChat MP. `pay_on`: WeChat Pay uses the app ids, so an app id without its
    /// secret is not a mistake then. A partial, empty or malformed setting is an error naming
    /// the variable.
    pub fn plan(&self, pay_on: bool) -> Result<MpPlans, ProviderConfigError> {
        let settings = self.settings();
        if let Some(name) = empty(&settings) {
            return Err(ProviderConfigError::Empty(name));
        }
        let app_id = ("WECHAT_APP_ID", self.wechat_app_id.as_deref());
        let app_secret = ("WECHAT_APP_SECRET", secret(&self.wechat_app_secret));
        let mini_app_id = ("WECHAT_MINI_APP_ID", self.wechat_mini_app_id.as_deref());
        let mini_secret = (
            "WECHAT_MINI_APP_SECRET",
            secret(&self.wechat_mini_app_secret),
        );
        let token = ("WECHAT_MP_TOKEN", secret(&self.wechat_mp_token));
        let aes_key = ("WECHAT_MP_AES_KEY", secret(&self.wechat_mp_aes_key));
        let official_on = group(
            "the Official Account",
            &[app_secret, token, aes_key],
            &[app_id, app_secret],
        )?;
        let mini_on = group(
            "the Mini Program",
            &[mini_secret],
            &[mini_app_id, mini_secret],
        )?;
        if official_on && aes_key.1.is_some() && token.1.is_none() {
            return Err(ProviderConfigError::Partial {
                provider: "the Official Account callback",
                set: "WECHAT_MP_AES_KEY".into(),
                missing: "WECHAT_MP_TOKEN".into(),
            });
        }
        if app_id.1.is_some() && !pay_on && !official_on {
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
        // The base URL serves both apps: it needs one of them, either.
        if self.wechat_mp_base_url.is_some() && !official_on && !mini_on {
            return Err(ProviderConfigError::Partial {
                provider: "WeChat MP",
                set: "WECHAT_MP_BASE_URL".into(),
                missing: "WECHAT_APP_ID + WECHAT_APP_SECRET or WECHAT_MINI_APP_ID + \
                          WECHAT_MINI_APP_SECRET"
                    .into(),
            });
        }
        let base_url = self
            .wechat_mp_base_url
            .clone()
            .unwrap_or_else(|| wechat_mp::client::DEFAULT_BASE_URL.to_owned());
        http_url("WECHAT_MP_BASE_URL", &base_url)?;
        let app = |id: &Option<String>, secret: &Option<SecretSetting>| MpPlan {
            app_id: id.clone().unwrap_or_default(),
            secret: wechat_mp::Secret::new(
                secret
                    .as_ref()
                    .map(|k| k.expose().to_owned())
                    .unwrap_or_default(),
            ),
            base_url: base_url.clone(),
            token: None,
            aes_key: None,
        };
        Ok(MpPlans {
            official: official_on.then(|| MpPlan {
                token: self.wechat_mp_token.clone(),
                aes_key: self.wechat_mp_aes_key.clone(),
                ..app(&self.wechat_app_id, &self.wechat_app_secret)
            }),
            mini: mini_on.then(|| app(&self.wechat_mini_app_id, &self.wechat_mini_app_secret)),
        })
    }
}

/// Connected apps.
#[derive(Debug, Default)]
pub(super) struct MpClients {
    pub official: Option<wechat_mp::Client>,
    pub mini: Option<wechat_mp::Client>,
    pub token: Option<SecretSetting>,
    pub aes_key: Option<SecretSetting>,
}

/// A client of one app; `token_store` shares its access token between instances.
fn client(
    app_id: &str,
    secret: wechat_mp::Secret,
    base_url: &str,
    token_store: Option<&Arc<dyn wechat_mp::TokenStore>>,
) -> wechat_mp::ClientBuilder {
    let builder = wechat_mp::Client::builder(app_id.to_owned(), secret).base_url(base_url);
    match token_store {
        Some(store) => builder.token_store(store.clone()),
        None => builder,
    }
}

/// The live clients.
pub(super) fn connect(
    plans: &MpPlans,
    token_store: Option<&Arc<dyn wechat_mp::TokenStore>>,
) -> Result<MpClients, ProviderConfigError> {
    let connect = |p: &MpPlan| {
        client(&p.app_id, p.secret.clone(), &p.base_url, token_store)
            .build()
            .map_err(|e| invalid("WeChat MP")(e.to_string()))
    };
    Ok(MpClients {
        official: plans.official.as_ref().map(connect).transpose()?,
        mini: plans.mini.as_ref().map(connect).transpose()?,
        token: plans.official.as_ref().and_then(|p| p.token.clone()),
        aes_key: plans.official.as_ref().and_then(|p| p.aes_key.clone()),
    })
}

/// Demo mode: the emulator's two apps, the Official Account delivering its events to
/// `callback_url`.
pub(super) fn demo_apps(
    official_app_id: &str,
    mini_app_id: &str,
    callback_url: Option<&str>,
) -> Result<[MpApp; 2], ProviderConfigError> {
    let random = |n| {
        crate::random::token(n)
            .map(wechat_mp::Secret::new)
            .map_err(|e| emulator_error(&e))
    };
    let mut official = MpApp::new(official_app_id, random(16)?, random(8)?);
    if let Some(url) = callback_url {
        official = official.callback_url(url);
    }
    Ok([official, MpApp::new(mini_app_id, random(16)?, random(8)?)])
}

/// Demo mode: clients of the emulator's two apps.
pub(super) fn demo(
    emulator: &Sandbox,
    token_store: Option<&Arc<dyn wechat_mp::TokenStore>>,
) -> Result<MpClients, ProviderConfigError> {
    let apps = &emulator.config().mp_apps;
    let connect = |app: &MpApp| {
        client(
            &app.app_id,
            app.app_secret.clone(),
            emulator.base_url(),
            token_store,
        )
        // The web login's page too: the emulator plays WeChat's authorization.
        .open_base_url(emulator.base_url())
        .build()
        .map_err(|e| emulator_error(&e))
    };
    let (Some(official), Some(mini)) = (apps.first(), apps.get(1)) else {
        return Err(emulator_error(&"the demo MP apps are missing"));
    };
    Ok(MpClients {
        official: Some(connect(official)?),
        mini: Some(connect(mini)?),
        token: Some(official.token.expose().into()),
        aes_key: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> WechatMpArgs {
        let mut a = WechatMpArgs::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "WECHAT_APP_ID" => a.wechat_app_id = v,
                "WECHAT_APP_SECRET" => a.wechat_app_secret = v.map(Into::into),
                "WECHAT_MINI_APP_ID" => a.wechat_mini_app_id = v,
                "WECHAT_MINI_APP_SECRET" => a.wechat_mini_app_secret = v.map(Into::into),
                "WECHAT_MP_BASE_URL" => a.wechat_mp_base_url = v,
                "WECHAT_MP_TOKEN" => a.wechat_mp_token = v.map(Into::into),
                "WECHAT_MP_AES_KEY" => a.wechat_mp_aes_key = v.map(Into::into),
                other => panic!("unknown setting {other}"),
            }
        }
        a
    }

    fn error(pairs: &[(&str, &str)], pay_on: bool) -> String {
        match args(pairs).plan(pay_on) {
            Err(e) => e.to_string(),
            Ok(plan) => panic!("expected an error, got {plan:?}"),
        }
    }

    #[test]
    fn each_app_alone_missing_partial_empty_and_conflicting() {
        // Missing: both off.
        let none = args(&[]).plan(false).unwrap();
        assert!(none.official.is_none() && none.mini.is_none());
        // The Official Account alone, with its callback.
        let official = args(&[
            ("WECHAT_APP_ID", "wx1"),
            ("WECHAT_APP_SECRET", "s"),
            ("WECHAT_MP_TOKEN", "t"),
        ])
        .plan(false)
        .unwrap();
        assert_eq!(official.official.unwrap().app_id, "wx1");
        assert!(official.mini.is_none());
        // Partial: a secret without its id; an id alone (without WeChat Pay); the AES key
        // without the token.
        let e = error(&[("WECHAT_APP_SECRET", "s")], false);
        assert!(e.contains("WECHAT_APP_ID"), "{e}");
        let e = error(&[("WECHAT_APP_ID", "wx1")], false);
        assert!(
            e.contains("WECHAT_API_KEY") && e.contains("WECHAT_APP_SECRET"),
            "{e}"
        );
        assert!(
            args(&[("WECHAT_APP_ID", "wx1")]).plan(true).is_ok(),
            "WeChat Pay uses the app id"
        );
        let e = error(
            &[
                ("WECHAT_APP_ID", "wx1"),
                ("WECHAT_APP_SECRET", "s"),
                ("WECHAT_MP_AES_KEY", "aes"),
            ],
            false,
        );
        assert!(e.contains("WECHAT_MP_TOKEN"), "{e}");
        let e = error(&[("WECHAT_MINI_APP_SECRET", "s")], false);
        assert!(e.contains("WECHAT_MINI_APP_ID"), "{e}");
        let e = error(&[("WECHAT_MINI_APP_ID", "wxmini")], false);
        assert!(e.contains("WECHAT_MINI_APP_SECRET"), "{e}");
        // Empty.
        let e = error(
            &[("WECHAT_APP_ID", "wx1"), ("WECHAT_APP_SECRET", "")],
            false,
        );
        assert!(e.contains("WECHAT_APP_SECRET is set but empty"), "{e}");
        // A base URL alone serves nobody.
        let e = error(&[("WECHAT_MP_BASE_URL", "http://127.0.0.1:9100")], false);
        assert!(
            e.contains("WECHAT_MP_BASE_URL") && e.contains("WECHAT_MINI_APP_SECRET"),
            "{e}"
        );
        // Malformed.
        let e = error(
            &[
                ("WECHAT_APP_ID", "wx1"),
                ("WECHAT_APP_SECRET", "s"),
                ("WECHAT_MP_BASE_URL", "not a url"),
            ],
            false,
        );
        assert!(e.contains("WECHAT_MP_BASE_URL"), "{e}");
    }

    /// Issue 28: a Mini-Program-only operator could not point `WECHAT_MP_BASE_URL` at a
    /// staging emulator — the base URL counted as an Official Account setting.
    #[test]
    fn a_mini_program_alone_can_be_staged() {
        let plans = args(&[
            ("WECHAT_MINI_APP_ID", "wxmini"),
            ("WECHAT_MINI_APP_SECRET", "s"),
            ("WECHAT_MP_BASE_URL", "http://127.0.0.1:9100"),
        ])
        .plan(false)
        .unwrap();
        assert!(plans.official.is_none());
        assert_eq!(plans.mini.unwrap().base_url, "http://127.0.0.1:9100");
    }
}
