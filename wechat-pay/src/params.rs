//! [`Params`]: the flat key/value message every WeChat Pay v2 request, response and notification
//! is made of.
//!
//! Keys are kept sorted (ASCII order, as the signature needs) and unique. Every field received is
//! kept — including ones this crate does not model — because the signature covers all of them.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::sign::{self, SignType, SignatureError};
use crate::{ApiKey, Error, Fen};

/// A flat, sorted, duplicate-free set of WeChat Pay parameters.
///
/// ```
/// use wechat_pay::Params;
/// let mut p = Params::new();
/// p.insert("out_trade_no", "1415659990");
/// p.insert("body", "腾讯充值中心-QQ会员充值");
/// assert_eq!(p.get("body"), Some("腾讯充值中心-QQ会员充值"));
/// let xml = p.to_xml();
/// assert_eq!(Params::from_xml(xml.as_bytes()).unwrap(), p);
/// ```
//
// All keys and values live in one string buffer and the entries are offsets into it, so a
// decoded notification costs two allocations rather than two per field. A replaced or removed
// value leaves its bytes behind in the buffer; messages are small and short-lived.
#[derive(Clone, Default)]
pub struct Params {
    buf: String,
    /// Sorted by key, keys unique.
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The key's first eight bytes, big-endian, zero-padded: comparing these orders most keys
    /// without touching the buffer.
    prefix: u64,
    key: (usize, usize),
    value: (usize, usize),
}

/// The first eight bytes of `key` as a big-endian number, so that numeric order is byte order.
fn key_prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

impl Params {
    /// An empty set.
    pub fn new() -> Self {
        Params::default()
    }

    /// A set with room for `fields` fields of `bytes` bytes of text in all.
    pub(crate) fn with_capacity(fields: usize, bytes: usize) -> Self {
        Params {
            buf: String::with_capacity(bytes),
            entries: Vec::with_capacity(fields),
        }
    }

    fn slice(&self, (start, end): (usize, usize)) -> &str {
        &self.buf[start..end]
    }

    fn push_text(&mut self, text: &str) -> (usize, usize) {
        let start = self.buf.len();
        self.buf.push_str(text);
        (start, self.buf.len())
    }

    // ---- building a decoded message: append unsorted, then `finish` --------------------------

    /// Appends `text` to the buffer, as part of the field being decoded.
    pub(crate) fn push_raw(&mut self, text: &str) {
        self.buf.push_str(text);
    }

    /// The current end of the buffer, to mark where a decoded key or value starts.
    pub(crate) fn mark(&self) -> usize {
        self.buf.len()
    }

    /// Records a decoded field whose key and value were pushed at these offsets.
    pub(crate) fn push_entry(&mut self, key: (usize, usize), value: (usize, usize)) {
        let prefix = key_prefix(&self.buf.as_bytes()[key.0..key.1]);
        self.entries.push(Entry { prefix, key, value });
    }

    /// Sorts decoded fields; an error naming the key if one appears twice.
    pub(crate) fn finish(mut self) -> Result<Self, crate::xml::XmlError> {
        let buf = self.buf.as_bytes();
        self.entries.sort_unstable_by(|a, b| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| cmp_bytes(&buf[a.key.0..a.key.1], &buf[b.key.0..b.key.1]))
        });
        if let Some(w) = self
            .entries
            .windows(2)
            .find(|w| self.slice(w[0].key) == self.slice(w[1].key))
        {
            return Err(crate::xml::XmlError::DuplicateField(
                self.slice(w[0].key).to_owned(),
            ));
        }
        Ok(self)
    }

    // ---- the public map API ------------------------------------------------------------------

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Option<String> {
        let key = key.as_ref();
        match self.position(key) {
            Ok(i) => {
                let old = self.slice(self.entries[i].value).to_owned();
                self.entries[i].value = self.push_text(value.as_ref());
                Some(old)
            }
            Err(i) => {
                let entry = Entry {
                    prefix: key_prefix(key.as_bytes()),
                    key: self.push_text(key),
                    value: self.push_text(value.as_ref()),
                };
                self.entries.insert(i, entry);
                None
            }
        }
    }

    /// Sets `key` when `value` is `Some`.
    pub fn insert_opt(&mut self, key: &str, value: Option<impl AsRef<str>>) {
        if let Some(v) = value {
            self.insert(key, v);
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.position(key).ok()?;
        let entry = self.entries.remove(i);
        Some(self.slice(entry.value).to_owned())
    }

    /// The value of `key`, if present (an empty value is returned as `Some("")`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|e| self.slice(e.value))
    }

    /// Finds `key`. Messages have a few dozen fields, where a linear scan of the prefixes (no
    /// dependent branches) beats a binary search (one mispredicted branch per step).
    fn find(&self, key: &str) -> Option<&Entry> {
        let buf = self.buf.as_bytes();
        let key = key.as_bytes();
        let prefix = key_prefix(key);
        if self.entries.len() > 64 {
            return self
                .position_bytes(key, prefix)
                .ok()
                .map(|i| &self.entries[i]);
        }
        self.entries
            .iter()
            .find(|e| e.prefix == prefix && &buf[e.key.0..e.key.1] == key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// All parameters, sorted by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        self.entries
            .iter()
            .map(|e| (self.slice(e.key), self.slice(e.value)))
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `key` is, or where it would be inserted.
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.position_bytes(key.as_bytes(), key_prefix(key.as_bytes()))
    }

    fn position_bytes(&self, key: &[u8], prefix: u64) -> Result<usize, usize> {
        // Bytes, not `str` slices: no char-boundary checks on the hot lookup path.
        let buf = self.buf.as_bytes();
        self.entries.binary_search_by(|e| {
            e.prefix
                .cmp(&prefix)
                .then_with(|| cmp_bytes(&buf[e.key.0..e.key.1], key))
        })
    }

    /// The signature of these parameters (the `sign` field itself excluded).
    pub fn signature(&self, key: &ApiKey, sign_type: SignType) -> String {
        sign::sign_sorted(self.iter(), key, sign_type)
    }

    /// Sets `sign` to the signature of the other parameters.
    pub fn sign(&mut self, key: &ApiKey, sign_type: SignType) {
        let signature = self.signature(key, sign_type);
        self.insert("sign", signature);
    }

    /// Checks the `sign` field against every other field. A missing `sign` is an error.
    pub fn verify(&self, key: &ApiKey, sign_type: SignType) -> Result<(), SignatureError> {
        let signature = self.get("sign").ok_or(SignatureError::Missing)?;
        sign::verify_sorted(self.iter(), key, sign_type, signature).map_err(|e| {
            // Said why when the message names another algorithm than the one used.
            match self.optional("sign_type") {
                Some(named)
                    if e == SignatureError::Mismatch
                        && named.parse::<SignType>().is_ok_and(|t| t != sign_type) =>
                {
                    SignatureError::SignTypeNotConfigured {
                        received: named.to_owned(),
                        configured: sign_type.as_str().to_owned(),
                    }
                }
                _ => e,
            }
        })
    }

    // ---- typed access for the response decoders -------------------------------------------

    /// A field that must be present and non-empty.
    pub(crate) fn required(&self, field: &str) -> Result<&str, Error> {
        match self.get(field) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::decode(field, "missing")),
        }
    }

    /// A field that may be absent; an empty value counts as absent.
    pub(crate) fn optional(&self, field: &str) -> Option<&str> {
        self.get(field).filter(|v| !v.is_empty())
    }

    /// A required field, owned.
    pub(crate) fn required_string(&self, field: &str) -> Result<String, Error> {
        self.required(field).map(str::to_owned)
    }

    /// An optional field, owned.
    pub(crate) fn optional_string(&self, field: &str) -> Option<String> {
        self.optional(field).map(str::to_owned)
    }

    /// A required field parsed with `FromStr`.
    pub(crate) fn required_parse<T: FromStr>(&self, field: &str) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        let v = self.required(field)?;
        v.parse()
            .map_err(|e: T::Err| Error::decode(field, e.to_string()))
    }

    /// An optional field parsed with `FromStr`; present but unparsable is an error.
    pub(crate) fn optional_parse<T: FromStr>(&self, field: &str) -> Result<Option<T>, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(field) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e: T::Err| Error::decode(field, e.to_string())),
        }
    }

    /// A required amount in fen.
    pub(crate) fn required_fen(&self, field: &str) -> Result<Fen, Error> {
        self.required_parse(field)
    }

    /// An optional amount in fen.
    pub(crate) fn optional_fen(&self, field: &str) -> Result<Option<Fen>, Error> {
        self.optional_parse(field)
    }

    /// A count field (`coupon_count`, `refund_count`), bounded so that a hostile value cannot
    /// make the decoder loop for long.
    pub(crate) fn optional_count(&self, field: &str) -> Result<usize, Error> {
        let n: Option<usize> = self.optional_parse(field)?;
        let n = n.unwrap_or(0);
        if n > MAX_INDEXED_ITEMS {
            return Err(Error::decode(
                field,
                format!("more than {MAX_INDEXED_ITEMS}"),
            ));
        }
        Ok(n)
    }
}

/// No WeChat Pay message lists more than a few dozen coupons or refunds.
const MAX_INDEXED_ITEMS: usize = 1000;

/// Byte-wise (ASCII) order, inlined: keys are short, and a `memcmp` call per comparison costs more
/// than the comparison.
#[inline]
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut p = Params::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_sorted_and_unique() {
        let mut p = Params::new();
        assert_eq!(p.insert("b", "1"), None);
        assert_eq!(p.insert("a", "2"), None);
        assert_eq!(p.insert("b", "3"), Some("1".to_owned()));
        let keys: Vec<_> = p.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(p.remove("a"), Some("2".to_owned()));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn decoded_fields_are_sorted_and_duplicates_rejected() {
        let mut p = Params::new();
        for (k, v) in [("b", "1"), ("a", "2"), ("B", "3")] {
            let ks = p.mark();
            p.push_raw(k);
            let vs = p.mark();
            p.push_raw(v);
            p.push_entry((ks, vs), (vs, p.mark()));
        }
        let p = p.finish().unwrap();
        let keys: Vec<_> = p.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["B", "a", "b"]);
        assert_eq!(p.get("a"), Some("2"));

        let mut d = Params::new();
        for k in ["x", "x"] {
            let ks = d.mark();
            d.push_raw(k);
            d.push_entry((ks, d.mark()), (d.mark(), d.mark()));
        }
        assert_eq!(
            d.finish().unwrap_err(),
            crate::xml::XmlError::DuplicateField("x".into())
        );
    }

    #[test]
    fn replaced_values_do_not_leak_into_equality() {
        let mut a = Params::new();
        a.insert("k", "old");
        a.insert("k", "new");
        let b: Params = [("k", "new")].into_iter().collect();
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}"), r#"{"k": "new"}"#);
    }

    #[test]
    fn typed_access_names_the_field() {
        let p: Params = [("total_fee", "1x"), ("empty", "")].into_iter().collect();
        let err = p.required_fen("total_fee").unwrap_err();
        assert!(err.to_string().contains("total_fee"), "{err}");
        let err = p.required("empty").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        assert_eq!(p.optional("empty"), None);
        assert!(p.optional_fen("absent").unwrap().is_none());
    }

    #[test]
    fn sign_and_verify_use_every_field() {
        let key = ApiKey::new("key");
        let mut p: Params = [("a", "1"), ("unknown_new_field", "x")]
            .into_iter()
            .collect();
        p.sign(&key, SignType::Md5);
        assert_eq!(p.verify(&key, SignType::Md5), Ok(()));
        p.insert("unknown_new_field", "y");
        assert_eq!(p.verify(&key, SignType::Md5), Err(SignatureError::Mismatch));
        p.remove("sign");
        assert_eq!(p.verify(&key, SignType::Md5), Err(SignatureError::Missing));
    }
}
