//! Setting types that keep secrets out of `Debug`: a configuration holding them can simply
//! derive `Debug` (and be logged) without showing a key, a token or a password.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A secret setting (an API key, an app secret, a token): `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretSetting(String);

impl SecretSetting {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl FromStr for SecretSetting {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(SecretSetting(s.to_owned()))
    }
}

impl From<&str> for SecretSetting {
    fn from(s: &str) -> Self {
        SecretSetting(s.to_owned())
    }
}

impl From<String> for SecretSetting {
    fn from(s: String) -> Self {
        SecretSetting(s)
    }
}

/// A connection URL (database, Redis, RabbitMQ, MQTT): `Debug` hides its password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// The URL, password included, for connecting.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ConnectionUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl FromStr for ConnectionUrl {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(ConnectionUrl(s.to_owned()))
    }
}

impl From<&str> for ConnectionUrl {
    fn from(s: &str) -> Self {
        ConnectionUrl(s.to_owned())
    }
}

impl From<String> for ConnectionUrl {
    fn from(s: String) -> Self {
        ConnectionUrl(s)
    }
}

/// `url` with any password in it replaced by `***`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_passwords_never_print() {
        let secret = SecretSetting::from("wx-key-0123");
        assert_eq!(format!("{secret:?}"), "\"***\"");
        assert_eq!(secret.expose(), "wx-key-0123");
        let url = ConnectionUrl::from("postgres://shop:db-pass@db:5432/vending");
        assert_eq!(
            format!("{url:?}"),
            "\"postgres://shop:***@db:5432/vending\""
        );
        assert_eq!(url.as_str(), "postgres://shop:db-pass@db:5432/vending");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
