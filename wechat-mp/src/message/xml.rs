//! The inbound message XML: a flat `<xml>` of fields, where a few menu events nest one level
//! (`ScanCodeInfo`, `SendLocationInfo`…), whose leaves are kept too.
//!
//! Like every parser facing the internet here: a size limit, UTF-8 only, no DTD (`<!DOCTYPE` is
//! refused, so no XXE and no entity expansion), only the predefined entities and character
//! references, a repeated top-level field is an error.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::Error;

/// The largest inbound body accepted (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn syntax(reason: impl Into<String>) -> Error {
    Error::decode("message xml", reason)
}

/// Decodes an inbound `<xml>` document into its fields.
pub(crate) fn decode(body: &[u8]) -> Result<BTreeMap<String, String>, Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(syntax(format!("body larger than {MAX_BODY_BYTES} bytes")));
    }
    let text = std::str::from_utf8(body).map_err(|_| syntax("body is not utf-8"))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);

    let mut fields = BTreeMap::new();
    // Open elements below the root: (name, has child elements).
    let mut open: Vec<(String, bool)> = Vec::new();
    let mut value = String::new();
    let mut in_root = false;
    let mut done = false;
    loop {
        let event = reader.read_event().map_err(|e| syntax(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(syntax("document type declarations are not allowed")),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
            _ if done => {
                if let Event::Text(t) = &event {
                    if t.bytes().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                }
                return Err(syntax("content after the root element"));
            }
            Event::Start(e) if !in_root => {
                if e.name().as_ref() != "xml" {
                    return Err(syntax("the root element must be <xml>"));
                }
                in_root = true;
            }
            Event::Empty(e) if !in_root => {
                if e.name().as_ref() != "xml" {
                    return Err(syntax("the root element must be <xml>"));
                }
                done = true;
            }
            Event::Start(e) => {
                if let Some(parent) = open.last_mut() {
                    parent.1 = true;
                }
                open.push((e.name().as_ref().to_owned(), false));
                value.clear();
            }
            Event::Empty(e) => {
                if let Some(parent) = open.last_mut() {
                    parent.1 = true;
                }
                record(
                    &mut fields,
                    open.len() + 1,
                    e.name().as_ref(),
                    String::new(),
                )?;
            }
            Event::Text(t) => {
                if open.is_empty() {
                    if !t.bytes().all(|b| b.is_ascii_whitespace()) {
                        return Err(syntax("text outside the fields"));
                    }
                } else {
                    value.push_str(&t);
                }
            }
            Event::CData(t) => {
                if open.is_empty() {
                    return Err(syntax("text outside the fields"));
                }
                value.push_str(&t);
            }
            Event::GeneralRef(r) => {
                let name: &str = &r;
                let c = match name {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "apos" => '\'',
                    "quot" => '"',
                    _ => match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        _ => return Err(syntax(format!("entity &{name}; is not allowed"))),
                    },
                };
                value.push(c);
            }
            Event::End(_) => match open.pop() {
                None => done = true,
                Some((name, has_children)) => {
                    if !has_children {
                        record(
                            &mut fields,
                            open.len() + 1,
                            &name,
                            std::mem::take(&mut value),
                        )?;
                    }
                    value.clear();
                }
            },
        }
    }
    if !done {
        return Err(syntax("missing or unclosed <xml> root"));
    }
    Ok(fields)
}

/// Keeps a leaf: a top-level field must be unique; a nested leaf is kept if its name is free.
fn record(
    fields: &mut BTreeMap<String, String>,
    depth: usize,
    name: &str,
    value: String,
) -> Result<(), Error> {
    if depth == 1 {
        if fields.insert(name.to_owned(), value).is_some() {
            return Err(syntax(format!("field <{name}> appears more than once")));
        }
    } else if depth == 2 {
        fields.entry(name.to_owned()).or_insert(value);
    }
    Ok(())
}

/// Appends `value` as CDATA (splitting any `]]>`).
pub(crate) fn push_cdata(out: &mut String, value: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

/// Appends `<name><![CDATA[value]]></name>`.
pub(crate) fn push_field(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_cdata(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields_and_nested_leaves() {
        let f = decode(
            b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1</CreateTime>\
              <ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>\
              <Content>a &amp; b</Content><Empty/></xml>",
        )
        .unwrap();
        assert_eq!(f["ToUserName"], "gh_1");
        assert_eq!(f["ScanType"], "qrcode");
        assert_eq!(f["Content"], "a & b");
        assert_eq!(f["Empty"], "");
        assert!(!f.contains_key("ScanCodeInfo"));
    }

    #[test]
    fn refuses_bad_documents() {
        for bad in [
            &b"<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><a>&x;</a></xml>"[..],
            b"<xml><a>&x;</a></xml>",
            b"<xml><a>1</a><a>2</a></xml>",
            b"<root><a>1</a></root>",
            b"<xml><a>1</a>",
            b"<xml>text</xml>",
            b"<xml></xml><xml></xml>",
            b"",
            b"<xml><a>\xff</a></xml>",
            b"{\"json\": true}",
        ] {
            assert!(
                decode(bad).is_err(),
                "{:?} must be refused",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_BODY_BYTES));
        assert!(decode(big.as_bytes()).is_err());
    }

    #[test]
    fn cdata_escapes_its_terminator() {
        let mut out = String::new();
        push_field(&mut out, "Content", "a]]>b");
        let xml = format!("<xml>{out}</xml>");
        assert_eq!(decode(xml.as_bytes()).unwrap()["Content"], "a]]>b");
    }
}
