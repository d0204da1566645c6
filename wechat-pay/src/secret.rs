//! The merchant API key, kept out of `Debug`, `Display` and logs.

use std::fmt;

/// The merchant's API key (the 32-character key set in the merchant platform, or the sandbox
/// key). It signs every request, so it never prints: `Debug` and `Display` write `***`.
///
/// ```
/// use wechat_pay::ApiKey;
/// let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
/// assert_eq!(format!("{key:?}"), "ApiKey(***)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps an API key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for signing. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
