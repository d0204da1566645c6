//! Money as an integer count of fen. Alipay writes amounts as yuan with up to two decimals
//! (`"0.01"`); they are converted here, exactly (no float, no rounding), and nowhere else.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in fen (1/100 yuan). On Alipay's wire it is a yuan string.
///
/// ```
/// use alipay::Fen;
/// assert_eq!(Fen::new(1250).to_yuan_string(), "12.50");
/// assert_eq!(Fen::from_yuan_str("12.5").unwrap(), Fen::new(1250));
/// assert!(Fen::from_yuan_str("0.001").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(u64);

impl Fen {
    /// `fen` fen.
    pub const fn new(fen: u64) -> Self {
        Fen(fen)
    }

    /// The amount in fen.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Yuan with exactly two decimals, as Alipay's requests take it.
    pub fn to_yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// Parses Alipay's yuan (`"12"`, `"12.3"`, `"0.01"`): digits, at most two decimals, nothing
    /// else (no sign, exponent, spaces or empty part).
    pub fn from_yuan_str(s: &str) -> Result<Self, ParseFenError> {
        let bad = || ParseFenError(s.to_owned());
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || frac.len() > 2 || (s.contains('.') && !digits(frac)) {
            return Err(bad());
        }
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        let cents: u64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<u64>().map_err(|_| bad())? * 10,
            _ => frac.parse().map_err(|_| bad())?,
        };
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .map(Fen)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Fen {
    /// Yuan, two decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yuan_string())
    }
}

/// A text that is not an amount of yuan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid yuan amount {0:?}")]
pub struct ParseFenError(String);

impl Serialize for Fen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_yuan_string())
    }
}

impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Fen::from_yuan_str(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_strings_convert_exactly() {
        for (text, fen) in [
            ("0.01", 1),
            ("1", 100),
            ("1.5", 150),
            ("12.34", 1234),
            ("0", 0),
        ] {
            assert_eq!(Fen::from_yuan_str(text), Ok(Fen::new(fen)), "{text}");
        }
        for bad in [
            "",
            ".5",
            "1.",
            "1.234",
            "-1",
            "+1",
            "1e2",
            " 1",
            "1,00",
            "０.01",
            "99999999999999999999",
        ] {
            assert!(Fen::from_yuan_str(bad).is_err(), "{bad}");
        }
        assert_eq!(Fen::new(5).to_yuan_string(), "0.05");
        assert_eq!(
            serde_json::to_string(&Fen::new(1001)).unwrap(),
            r#""10.01""#
        );
        assert_eq!(
            serde_json::from_str::<Fen>(r#""10.01""#).unwrap(),
            Fen::new(1001)
        );
        assert!(
            serde_json::from_str::<Fen>("10.01").is_err(),
            "a number is not Alipay's form"
        );
    }
}
