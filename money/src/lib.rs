#![doc = include_str!("../README.md")]
//! # Module map
//!
//! One file: [`Fen`] with its parsing and formatting, [`ParseFenError`], and [`yuan`] — the
//! `serde` form for wires that write yuan strings.

use std::fmt;
use std::str::FromStr;

/// An amount of money in fen, the smallest unit of the renminbi.
///
/// ```
/// use pay_money::Fen;
/// let price: Fen = "101".parse().unwrap();
/// assert_eq!(price, Fen::new(101));
/// assert_eq!(price.to_yuan_string(), "1.01");
/// assert_eq!(Fen::from_yuan_str("1.01").unwrap(), price);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(u64);

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// An amount of `fen` fen.
    pub const fn new(fen: u64) -> Self {
        Fen(fen)
    }

    /// The amount as an integer count of fen.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Fen) -> Option<Fen> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Fen(v)),
            None => None,
        }
    }

    /// `self - other`, or `None` when `other` is larger.
    pub const fn checked_sub(self, other: Fen) -> Option<Fen> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Fen(v)),
            None => None,
        }
    }

    /// The amount as yuan with exactly two decimals (`"0.01"`), as Alipay and the bills write it.
    pub fn to_yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// Parses yuan written with at most two decimals (`"12"`, `"12.3"`, `"0.01"`) exactly.
    ///
    /// Signs, exponents, spaces, more than two decimals and empty parts are rejected, so a value
    /// that is not a whole number of fen can never be rounded into one.
    pub fn from_yuan_str(s: &str) -> Result<Fen, ParseFenError> {
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        if whole.is_empty() || frac.len() > 2 || (s.contains('.') && frac.is_empty()) {
            return Err(ParseFenError::new(s));
        }
        let whole = parse_digits(whole).ok_or_else(|| ParseFenError::new(s))?;
        let frac_value = match frac.len() {
            0 => 0,
            1 => parse_digits(frac).ok_or_else(|| ParseFenError::new(s))? * 10,
            _ => parse_digits(frac).ok_or_else(|| ParseFenError::new(s))?,
        };
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac_value))
            .map(Fen)
            .ok_or_else(|| ParseFenError::new(s))
    }
}

/// Parses a non-empty run of ASCII digits (no sign, no spaces) without overflow.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for Fen {
    /// Writes the integer count of fen, the form WeChat Pay's `total_fee` uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Fen {
    type Err = ParseFenError;

    /// Parses an integer count of fen: ASCII digits only (`"+1"`, `" 1"`, `"1.0"` are rejected).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digits(s)
            .map(Fen)
            .ok_or_else(|| ParseFenError::new(s))
    }
}

impl From<u32> for Fen {
    fn from(v: u32) -> Self {
        Fen(u64::from(v))
    }
}

/// On the wire of JSON APIs (this crate's callers' own), an amount is a JSON integer of fen.
impl serde::Serialize for Fen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Fen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Fen)
    }
}

/// A text that is not a valid amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid amount {input:?}")]
pub struct ParseFenError {
    input: String,
}

impl ParseFenError {
    fn new(input: &str) -> Self {
        // Keep the message short even for hostile input.
        let input = input.chars().take(32).collect();
        ParseFenError { input }
    }
}

/// The `serde` form of an amount on a wire that writes yuan strings (`"12.50"`, Alipay's):
/// `#[serde(with = "pay_money::yuan")]`, or [`yuan::option`] for an `Option<Fen>`. A number, or
/// a string that is not a whole number of fen, is refused.
pub mod yuan {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Fen;

    /// Writes `fen` as yuan with two decimals.
    pub fn serialize<S: Serializer>(fen: &Fen, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fen.to_yuan_string())
    }

    /// Reads yuan with at most two decimals.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fen, D::Error> {
        let text = String::deserialize(d)?;
        Fen::from_yuan_str(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an `Option<Fen>` (`null` or absent is `None`; add `#[serde(default)]`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::Fen;

        /// Writes the amount as yuan, or `null`.
        pub fn serialize<S: Serializer>(fen: &Option<Fen>, s: S) -> Result<S::Ok, S::Error> {
            match fen {
                Some(f) => s.serialize_some(&f.to_yuan_string()),
                None => s.serialize_none(),
            }
        }

        /// Reads yuan, or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Fen>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| Fen::from_yuan_str(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_amounts_are_integers_of_fen() {
        assert_eq!(
            serde_json::to_string(&Fen::new(350)).ok().as_deref(),
            Some("350")
        );
        assert_eq!(serde_json::from_str::<Fen>("350").ok(), Some(Fen::new(350)));
        for bad in ["-1", "3.5", "\"350\"", "null"] {
            assert!(serde_json::from_str::<Fen>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_integer_fen_strictly() {
        assert_eq!("0".parse::<Fen>(), Ok(Fen::new(0)));
        assert_eq!("12345".parse::<Fen>(), Ok(Fen::new(12345)));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "0x10",
            "18446744073709551616",
        ] {
            assert!(bad.parse::<Fen>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn parses_yuan_exactly() {
        assert_eq!(Fen::from_yuan_str("0.01"), Ok(Fen::new(1)));
        assert_eq!(Fen::from_yuan_str("0.1"), Ok(Fen::new(10)));
        assert_eq!(Fen::from_yuan_str("12"), Ok(Fen::new(1200)));
        assert_eq!(Fen::from_yuan_str("1234.56"), Ok(Fen::new(123456)));
        for bad in [
            "", ".5", "1.", "1.001", "-0.01", "1,00", "0.0a", " 1.00", "1e2",
        ] {
            assert!(Fen::from_yuan_str(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn yuan_string_round_trips() {
        for v in [0u64, 1, 9, 10, 99, 100, 101, 123456, u64::MAX / 100] {
            let f = Fen::new(v);
            assert_eq!(Fen::from_yuan_str(&f.to_yuan_string()), Ok(f));
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Fen::new(1).checked_sub(Fen::new(2)), None);
        assert_eq!(Fen::new(u64::MAX).checked_add(Fen::new(1)), None);
        assert_eq!(Fen::new(3).checked_sub(Fen::new(2)), Some(Fen::new(1)));
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct OnAlipaysWire {
        #[serde(with = "yuan")]
        total_amount: Fen,
        #[serde(with = "yuan::option", default)]
        refund_fee: Option<Fen>,
    }

    #[test]
    fn yuan_fields_read_and_write_yuan_strings_only() {
        let v = OnAlipaysWire {
            total_amount: Fen::new(1001),
            refund_fee: None,
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"total_amount":"10.01","refund_fee":null}"#);
        assert_eq!(serde_json::from_str::<OnAlipaysWire>(&json).unwrap(), v);
        let with_refund: OnAlipaysWire =
            serde_json::from_str(r#"{"total_amount":"1","refund_fee":"0.5"}"#).unwrap();
        assert_eq!(with_refund.refund_fee, Some(Fen::new(50)));
        for bad in [
            r#"{"total_amount":10.01}"#,
            r#"{"total_amount":"10.001"}"#,
            r#"{"total_amount":"1","refund_fee":"-1"}"#,
        ] {
            assert!(serde_json::from_str::<OnAlipaysWire>(bad).is_err(), "{bad}");
        }
    }
}
