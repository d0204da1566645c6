//! The flat `<xml>` document of WeChat Pay v2, both ways.
//!
//! The decoder is a strict scanner for this one shape rather than a general XML parser: a
//! general parser (quick-xml 0.42 was measured) spends about 2 µs on a 20-field notification,
//! two thirds of the whole parse-and-verify budget, on machinery (DTDs, namespaces, attributes,
//! nesting) that a WeChat Pay message must not contain anyway. What is not in the grammar below
//! is an error:
//!
//! ```text
//! document := BOM? misc* root misc*          misc := whitespace | <!--…--> | <?…?>
//! root     := <xml> (whitespace | <!--…--> | field)* </xml>   |   <xml/>
//! field    := <name/> | <name> (text | <![CDATA[…]]> | &ref; | <!--…-->)* </name>
//! ref      := lt | gt | amp | apos | quot | #digits | #xhex
//! ```
//!
//! Decoding is deliberately narrow: one `<xml>` root, one level of fields, text and CDATA only.
//! It never resolves a DTD or a custom entity (no XXE, no billion laughs: a `<!DOCTYPE` or an
//! undeclared `&name;` is an error), never accepts a nested element, a repeated field, a body
//! over [`MAX_BODY_BYTES`] or bytes that are not UTF-8. Values are kept byte for byte (no trimming,
//! no line-ending rewriting) because the signature is computed over them.

use std::fmt::Write as _;

use crate::Params;

/// The largest body accepted from WeChat Pay or from a notification (64 KiB). Real messages are
/// under 4 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a body is not an acceptable WeChat Pay XML message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The body is larger than the limit.
    #[error("body of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not valid UTF-8.
    #[error("body is not valid utf-8")]
    InvalidUtf8,
    /// The body contains a document type declaration.
    #[error("document type declarations are not allowed")]
    Doctype,
    /// The body refers to an entity other than the five predefined ones.
    #[error("entity reference &{0}; is not allowed")]
    Entity(String),
    /// A field contains an element.
    #[error("field <{0}> contains a nested element")]
    Nested(String),
    /// A field appears twice.
    #[error("field <{0}> appears more than once")]
    DuplicateField(String),
    /// The root element is missing or not `<xml>`.
    #[error("the root element is missing or not <xml>")]
    Root,
    /// Something other than whitespace or a comment outside the fields.
    #[error("unexpected content outside the fields")]
    StrayContent,
    /// The document is not well-formed.
    #[error("malformed xml: {0}")]
    Syntax(String),
}

impl Params {
    /// Decodes a flat `<xml>` document, applying the limits described in [this module](crate::xml).
    pub fn from_xml(body: &[u8]) -> Result<Params, XmlError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(XmlError::TooLarge {
                size: body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let text = std::str::from_utf8(body).map_err(|_| XmlError::InvalidUtf8)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        decode(text, &["xml"])
    }

    /// [`Params::from_xml`] for a document whose root may also be `<root>` (the decrypted
    /// `req_info` of a refund notification).
    pub(crate) fn from_xml_any_root(body: &[u8]) -> Result<Params, XmlError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(XmlError::TooLarge {
                size: body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let text = std::str::from_utf8(body).map_err(|_| XmlError::InvalidUtf8)?;
        decode(text, &["xml", "root"])
    }

    /// Encodes as a flat `<xml>` document: values in CDATA, except integers, which WeChat writes
    /// bare.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(64 + self.len() * 48);
        out.push_str("<xml>");
        for (k, v) in self.iter() {
            // Keys come from this crate's request types or the caller's code, never the network.
            let _ = write!(out, "<{k}>");
            write_value(&mut out, v);
            let _ = write!(out, "</{k}>");
        }
        out.push_str("</xml>");
        out
    }
}

fn write_value(out: &mut String, v: &str) {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        out.push_str(v);
        return;
    }
    out.push_str("<![CDATA[");
    // `]]>` cannot appear inside CDATA: close the section after `]]` and reopen it.
    let mut rest = v;
    while let Some(i) = rest.find("]]>") {
        out.push_str(&rest[..i + 2]);
        out.push_str("]]><![CDATA[");
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out.push_str("]]>");
}

/// A cursor over the document. Every branch either consumes input or returns, so decoding is a
/// single linear pass; dispatch is on single bytes, and only ASCII is ever matched, so every
/// offset the scanner stops at is a character boundary.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            i: 0,
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.i + ahead).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.bytes.len()
    }

    fn eat<const N: usize>(&mut self, prefix: &[u8; N]) -> bool {
        let found = self.bytes.get(self.i..self.i + N) == Some(&prefix[..]);
        if found {
            self.i += N;
        }
        found
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek(0) {
            self.i += 1;
        }
    }

    /// Skips to just after `end` (ASCII), or fails with `what` if it never comes. Returns what
    /// was skipped, `end` excluded.
    fn skip_past(&mut self, end: &[u8], what: &str) -> Result<&'a str, XmlError> {
        let start = self.i;
        let hay = &self.bytes[start..];
        let mut from = 0;
        // A plain scan for the first byte: the terminators are 1 to 3 bytes long and the
        // sections short, where setting up a substring searcher costs more than the search.
        let at = loop {
            let Some(p) = hay[from..].iter().position(|&b| b == end[0]) else {
                return Err(XmlError::Syntax(format!("unterminated {what}")));
            };
            if hay[from + p..].starts_with(end) {
                break from + p;
            }
            from += p + 1;
        };
        self.i = start + at + end.len();
        Ok(&self.text[start..start + at])
    }

    /// At `<`: skips a comment or a processing instruction (the `<?xml …?>` declaration
    /// included) and returns `true`; refuses a document type declaration; otherwise leaves the
    /// cursor and returns `false`.
    fn skip_markup(&mut self) -> Result<bool, XmlError> {
        if self.peek(0) != Some(b'<') {
            return Ok(false);
        }
        match self.peek(1) {
            Some(b'?') => {
                self.i += 2;
                self.skip_past(b"?>", "processing instruction")?;
                Ok(true)
            }
            Some(b'!') if self.eat(b"<!--") => {
                self.skip_past(b"-->", "comment")?;
                Ok(true)
            }
            Some(b'!')
                if self.bytes[self.i + 2..].starts_with(b"DOCTYPE")
                    || self.bytes[self.i + 2..].starts_with(b"doctype") =>
            {
                Err(XmlError::Doctype)
            }
            _ => Ok(false),
        }
    }

    /// Whitespace, comments and processing instructions outside the root element.
    fn skip_prolog(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_whitespace();
            if !self.skip_markup()? {
                return Ok(());
            }
        }
    }

    /// An element name: ASCII letters, digits, `_`, `-`, `.` and `:`, not starting with a digit,
    /// `-` or `.`.
    fn name(&mut self) -> Result<&'a str, XmlError> {
        let bytes = &self.bytes[self.i..];
        let len = bytes
            .iter()
            .position(|&b| !is_name_byte(b))
            .unwrap_or(bytes.len());
        match bytes.first() {
            Some(&b) if len > 0 && (b.is_ascii_alphabetic() || b == b'_' || b == b':') => {
                let name = &self.text[self.i..self.i + len];
                self.i += len;
                Ok(name)
            }
            _ => Err(XmlError::Syntax(format!(
                "invalid element name at byte {}",
                self.i
            ))),
        }
    }

    /// The end of a start tag after its name: `>` (returns `false`) or `/>` (returns `true`).
    /// Attributes are refused: WeChat Pay messages never have any.
    fn tag_end(&mut self) -> Result<bool, XmlError> {
        if self.eat(b">") {
            return Ok(false);
        }
        self.skip_whitespace();
        if self.eat(b">") {
            Ok(false)
        } else if self.eat(b"/>") {
            Ok(true)
        } else {
            Err(XmlError::Syntax(format!(
                "unexpected content in a tag at byte {}",
                self.i
            )))
        }
    }

    /// An end tag's name and `>`, after `</`.
    fn end_tag(&mut self, open: &str) -> Result<(), XmlError> {
        // The expected name, then `>`: no scan needed in the usual case.
        let rest = &self.bytes[self.i..];
        if rest.starts_with(open.as_bytes()) && rest.get(open.len()) == Some(&b'>') {
            self.i += open.len() + 1;
            return Ok(());
        }
        let name = self.name()?;
        if name != open {
            return Err(XmlError::Syntax(format!("</{name}> closes <{open}>")));
        }
        self.skip_whitespace();
        if self.eat(b">") {
            Ok(())
        } else {
            Err(XmlError::Syntax(format!("malformed end tag </{name}>")))
        }
    }

    /// A field's content up to and including its end tag, appended to `params`.
    fn content(&mut self, field: &str, params: &mut Params) -> Result<(), XmlError> {
        loop {
            let rest = &self.bytes[self.i..];
            let stop = rest
                .iter()
                .position(|&b| b == b'<' || b == b'&')
                .ok_or_else(|| XmlError::Syntax("unexpected end of document".into()))?;
            params.push_raw(&self.text[self.i..self.i + stop]);
            self.i += stop;
            if self.eat(b"&") {
                let name = self.skip_past(b";", "entity reference")?;
                let mut utf8 = [0u8; 4];
                params.push_raw(resolve_reference(name)?.encode_utf8(&mut utf8));
            } else if self.eat(b"</") {
                return self.end_tag(field);
            } else if self.eat(b"<![CDATA[") {
                params.push_raw(self.skip_past(b"]]>", "CDATA section")?);
            } else if !self.skip_markup()? {
                return Err(XmlError::Nested(field.to_owned()));
            }
        }
    }
}

/// Which bytes may appear in an element name (ASCII letters, digits, `_ - . :`).
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':');
        b += 1;
    }
    table
};

#[inline]
fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

fn decode(text: &str, roots: &[&str]) -> Result<Params, XmlError> {
    let mut sc = Scanner::new(text);
    let mut params = Params::with_capacity(24, text.len());

    sc.skip_prolog()?;
    if !sc.eat(b"<") {
        return Err(if sc.at_end() {
            XmlError::Root
        } else {
            XmlError::StrayContent
        });
    }
    let root = sc.name().map_err(|_| XmlError::Root)?;
    if !roots.contains(&root) {
        return Err(XmlError::Root);
    }
    if !sc.tag_end()? {
        loop {
            sc.skip_whitespace();
            if sc.skip_markup()? {
                continue;
            }
            if sc.eat(b"</") {
                sc.end_tag(root)?;
                break;
            }
            if !sc.eat(b"<") {
                return Err(if sc.at_end() {
                    XmlError::Syntax("unexpected end of document".into())
                } else {
                    XmlError::StrayContent
                });
            }
            let key_start = params.mark();
            let name = sc.name()?;
            params.push_raw(name);
            let key = (key_start, params.mark());
            let value_start = params.mark();
            if !sc.tag_end()? {
                sc.content(name, &mut params)?;
            }
            params.push_entry(key, (value_start, params.mark()));
        }
    }
    sc.skip_prolog()?;
    if !sc.at_end() {
        return Err(XmlError::StrayContent);
    }
    params.finish()
}

/// Resolves the five predefined entities and character references; anything else is refused.
fn resolve_reference(name: &str) -> Result<char, XmlError> {
    let refused = || XmlError::Entity(name.chars().take(32).collect());
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse().ok()
            } else {
                None
            };
            code.filter(|&c| c != 0)
                .and_then(char::from_u32)
                .ok_or_else(refused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_str(s: &str) -> Result<Params, XmlError> {
        Params::from_xml(s.as_bytes())
    }

    #[test]
    fn decodes_cdata_text_and_empty_fields() {
        let p = decode_str(
            "<?xml version=\"1.0\"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  \
             <total_fee>1</total_fee><attach/><detail>a &amp; b &#x4e2d;</detail>\n</xml>\n",
        )
        .unwrap();
        assert_eq!(p.get("return_code"), Some("SUCCESS"));
        assert_eq!(p.get("total_fee"), Some("1"));
        assert_eq!(p.get("attach"), Some(""));
        assert_eq!(p.get("detail"), Some("a & b 中"));
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn values_are_kept_byte_for_byte() {
        let p = decode_str("<xml><a><![CDATA[  x\r\ny  ]]></a><b> 1 </b></xml>").unwrap();
        assert_eq!(p.get("a"), Some("  x\r\ny  "));
        assert_eq!(p.get("b"), Some(" 1 "));
    }

    #[test]
    fn round_trips_exactly() {
        let values = [
            "plain",
            "",
            "12345",
            "-1",
            "腾讯充值中心-QQ会员充值",
            "<tag> & \"quotes\" 'apos'",
            "a]]>b]]>",
            "]]]]>",
            "  leading and trailing  ",
            "line\r\nbreak\n",
            "{\"h5_info\":{\"type\":\"Wap\"}}",
        ];
        let mut p = Params::new();
        for (i, v) in values.iter().enumerate() {
            p.insert(format!("field_{i}"), *v);
        }
        let xml = p.to_xml();
        assert_eq!(Params::from_xml(xml.as_bytes()).unwrap(), p, "{xml}");
    }

    #[test]
    fn integers_are_bare_and_strings_cdata() {
        let p: Params = [("total_fee", "1"), ("body", "x")].into_iter().collect();
        assert_eq!(
            p.to_xml(),
            "<xml><body><![CDATA[x]]></body><total_fee>1</total_fee></xml>"
        );
    }

    #[test]
    fn rejects_doctype_and_entities() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
                   <xml><a>&xxe;</a></xml>";
        assert_eq!(decode_str(xxe), Err(XmlError::Doctype));
        let laughs = "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><xml><a>&lol2;</a></xml>";
        assert_eq!(decode_str(laughs), Err(XmlError::Doctype));
        assert_eq!(
            decode_str("<xml><a>&xxe;</a></xml>"),
            Err(XmlError::Entity("xxe".into()))
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(
            decode_str("<xml><a><b>1</b></a></xml>"),
            Err(XmlError::Nested("a".into()))
        );
        assert_eq!(
            decode_str("<xml><a>1</a><a>2</a></xml>"),
            Err(XmlError::DuplicateField("a".into()))
        );
        assert_eq!(decode_str("<root><a>1</a></root>"), Err(XmlError::Root));
        assert_eq!(decode_str(""), Err(XmlError::Root));
        assert_eq!(
            decode_str("<xml>text<a>1</a></xml>"),
            Err(XmlError::StrayContent)
        );
        assert_eq!(
            decode_str("<xml></xml><xml></xml>"),
            Err(XmlError::StrayContent)
        );
        assert!(matches!(
            decode_str("<xml><a>1</b></xml>"),
            Err(XmlError::Syntax(_))
        ));
        assert!(matches!(
            decode_str("<xml><a>1</a>"),
            Err(XmlError::Syntax(_))
        ));
        assert!(matches!(decode_str("not xml"), Err(XmlError::StrayContent)));
    }

    #[test]
    fn rejects_oversized_and_non_utf8_bodies() {
        let big = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            Params::from_xml(big.as_bytes()),
            Err(XmlError::TooLarge { .. })
        ));
        assert_eq!(
            Params::from_xml(b"<xml><a>\xff\xfe</a></xml>"),
            Err(XmlError::InvalidUtf8)
        );
    }
}
