//! What every provider file uses: the configuration error, the rule that a provider is
//! configured completely or not at all, URLs, and reading keys.

use crate::settings::SecretSetting;

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
         WECHAT_API_KEY) or Alipay (ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY, ALIPAY_SELLER_ID and \
         ALIPAY_PUBLIC_KEY, or the certificates ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT and \
         ALIPAY_ROOT_CERT)"
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

/// A setting: its variable's name and its value, when set.
pub(super) type Setting<'a> = (&'static str, Option<&'a str>);

/// A secret setting's value, when set.
pub(super) fn secret(s: &Option<SecretSetting>) -> Option<&str> {
    s.as_ref().map(SecretSetting::expose)
}

/// The names of the settings that are set (`set`) or not.
pub(super) fn names(settings: &[Setting<'_>], set: bool) -> Vec<&'static str> {
    settings
        .iter()
        .filter(|(_, v)| v.is_some() == set)
        .map(|(n, _)| *n)
        .collect()
}

/// The first setting set to the empty string.
pub(super) fn empty(settings: &[Setting<'_>]) -> Option<&'static str> {
    settings
        .iter()
        .find(|(_, v)| v.is_some_and(|s| s.trim().is_empty()))
        .map(|(n, _)| *n)
}

/// Requires every `required` setting once any of `triggers` is set; whether the group is on.
pub(super) fn group(
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

/// Whether `url` (the value of `name`) is `https://` (`false`: `http://`); anything else is
/// refused.
pub(super) fn http_url(name: &'static str, url: &str) -> Result<bool, ProviderConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(true),
        Ok(u) if u.scheme() == "http" && u.host().is_some() => Ok(false),
        _ => Err(ProviderConfigError::Invalid {
            name,
            detail: format!("{url:?} is not an http(s) URL"),
        }),
    }
}

/// A value that cannot be used, by variable.
pub(super) fn invalid(name: &'static str) -> impl Fn(String) -> ProviderConfigError {
    move |detail| ProviderConfigError::Invalid { name, detail }
}

/// A file named by `name`.
pub(super) fn read(name: &'static str, path: &str) -> Result<Vec<u8>, ProviderConfigError> {
    std::fs::read(path).map_err(|e| invalid(name)(format!("cannot read {path}: {e}")))
}

/// A key given inline (PEM / base64) or as a file path.
pub(super) fn key_text(name: &'static str, value: &str) -> Result<String, ProviderConfigError> {
    if value.contains("-----BEGIN") || !std::path::Path::new(value).exists() {
        Ok(value.to_owned())
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| invalid(name)(format!("cannot read {value}: {e}")))
    }
}

/// The emulator (demo mode) failed.
pub(super) fn emulator_error(e: &dyn std::fmt::Display) -> ProviderConfigError {
    ProviderConfigError::Emulator(e.to_string())
}
