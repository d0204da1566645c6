//! WeChat Pay's media uploads (complaint images, merchant materials): `multipart/form-data` with
//! a `meta` part — `{"filename", "sha256"}` of the file, the only thing the request signature
//! covers — and the `file` part. WeChat takes JPG, BMP and PNG of at most 2 MiB.

use sha2::{Digest, Sha256};

use crate::Error;

/// The largest image WeChat takes.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

/// An upload, checked: a plain file name of a kind WeChat takes, the size, the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    meta: String,
    filename: String,
    mime: &'static str,
    boundary: String,
    bytes: Vec<u8>,
}

impl Upload {
    /// `bytes` named `filename` (`.jpg`, `.jpeg`, `.bmp`, `.png`; no path, no quotes).
    pub fn new(filename: &str, bytes: Vec<u8>) -> Result<Self, Error> {
        let plain = !filename.is_empty()
            && filename.len() <= 128
            && !filename
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '/' | '\\'));
        if !plain {
            return Err(Error::Config(format!(
                "{filename:?} is not a plain file name"
            )));
        }
        let ext = filename
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let mime = match ext.as_str() {
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "bmp" => "image/bmp",
            _ => {
                return Err(Error::Config(format!(
                    "{filename}: WeChat Pay takes JPG, BMP and PNG images"
                )));
            }
        };
        if bytes.is_empty() || bytes.len() > MAX_IMAGE_BYTES {
            return Err(Error::Config(format!(
                "{filename}: {} bytes; an image is 1 byte to 2 MiB",
                bytes.len()
            )));
        }
        let meta = serde_json::json!({
            "filename": filename,
            "sha256": hex_lower(&Sha256::digest(&bytes)),
        })
        .to_string();
        let boundary = format!("WechatPayBoundary{}", crate::client::nonce()?);
        Ok(Upload {
            meta,
            filename: filename.to_owned(),
            mime,
            boundary,
            bytes,
        })
    }

    /// The `meta` part: what the signature covers.
    pub fn meta(&self) -> &str {
        &self.meta
    }

    /// `multipart/form-data; boundary=…`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The request body.
    pub fn into_body(self) -> Vec<u8> {
        let b = &self.boundary;
        let mut body = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{}\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            self.meta, self.filename, self.mime
        )
        .into_bytes();
        body.extend_from_slice(&self.bytes);
        body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        body
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_names_the_file_and_its_hash_and_the_body_carries_both_parts() {
        let up =
            Upload::new("receipt.png", b"\x89PNG...".to_vec()).unwrap_or_else(|e| panic!("{e}"));
        let meta: serde_json::Value = serde_json::from_str(up.meta()).unwrap_or_default();
        assert_eq!(meta["filename"], "receipt.png");
        assert_eq!(meta["sha256"].as_str().map(str::len), Some(64));
        let ct = up.content_type();
        let body = String::from_utf8_lossy(&up.into_body()).into_owned();
        let boundary = ct.rsplit('=').next().unwrap_or_default();
        assert!(body.starts_with(&format!("--{boundary}\r\n")));
        assert!(
            body.contains("name=\"file\"; filename=\"receipt.png\"\r\nContent-Type: image/png")
        );
        assert!(body.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[test]
    fn names_kinds_and_sizes_wechat_refuses_are_refused_here() {
        for (name, len) in [
            ("a\".png", 10),
            ("../a.png", 10),
            ("a\r\n.png", 10),
            ("a.gif", 10),
            ("a.png", 0),
            ("a.png", MAX_IMAGE_BYTES + 1),
        ] {
            assert!(
                matches!(Upload::new(name, vec![1; len]), Err(Error::Config(_))),
                "{name:?} {len}"
            );
        }
    }
}
