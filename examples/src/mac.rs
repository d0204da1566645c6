//! HMAC-SHA256, the servers' one way to sign what they check themselves later (session tokens,
//! machine messages). Checking is constant-time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn keyed(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` only refuses for fixed-size MACs.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(message);
    mac
}

/// The MAC of `message` under `key`.
pub fn sign(key: &[u8], message: &[u8]) -> [u8; 32] {
    keyed(key, message).finalize().into_bytes().into()
}

/// Whether `tag` is the MAC of `message` under `key` (constant-time).
pub fn verify(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    keyed(key, message).verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    #[test]
    fn rfc_4231_vector() {
        let tag = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &tag));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &tag));
        assert!(!verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag[..31]
        ));
    }
}
