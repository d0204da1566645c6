//! The callback signatures: SHA-1 of the sorted, concatenated strings, as lower-case hex,
//! compared in constant time.
//!
//! - URL check and plain-mode messages: `signature = sha1(sort(token, timestamp, nonce))`.
//! - Safe mode: `msg_signature = sha1(sort(token, timestamp, nonce, Encrypt))`.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::Error;

/// `sha1` of `parts` sorted and concatenated, lower-case hex.
pub fn sign(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for p in sorted {
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `signature` against `parts`, in constant time and case-insensitively.
pub fn verify(parts: &[&str], signature: &str) -> Result<(), Error> {
    let expected = sign(parts);
    let received = signature.to_ascii_lowercase();
    if received.len() == expected.len()
        && bool::from(received.as_bytes().ct_eq(expected.as_bytes()))
    {
        Ok(())
    } else {
        Err(Error::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_then_hashes() {
        // sha1("1409659813" + "263014780" + "token"), computed independently.
        assert_eq!(
            sign(&["token", "1409659813", "263014780"]),
            "95466e66818a4e5ab2ec9e571d000a9489c97169"
        );
        assert!(
            verify(
                &["263014780", "token", "1409659813"],
                "95466E66818A4E5AB2EC9E571D000A9489C97169"
            )
            .is_ok()
        );
        assert!(
            verify(
                &["token", "1409659813", "263014781"],
                "95466e66818a4e5ab2ec9e571d000a9489c97169"
            )
            .is_err()
        );
        assert!(verify(&["token"], "").is_err());
    }
}
