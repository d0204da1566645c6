//! Signed tokens: `base64url(JSON claims).base64url(HMAC-SHA256)` under the session secret.
//!
//! The claims say who (`sub`), for what (`aud`: a buyer session, a seller session, an OAuth
//! login in progress — a token for one is never accepted as another), until when (`exp`, Unix
//! seconds) and a little context (`ctx`: the buyer's app, the seller's password generation, the
//! OAuth return path). Nothing is stored: every instance with the same secret checks every
//! token. The secret is `SESSION_SECRET`, or one generated once and kept in the database.
//!
//! Tokens are bound to the mode that signed them: a demo-mode token (a demo buyer's login, the
//! demo seller's session) never verifies in live mode on the same database and secret, nor a
//! live one in demo mode.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// A buyer's session.
    Buyer,
    /// A seller's session.
    Seller,
    /// An Official Account login in progress (the OAuth `state`).
    OAuth,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// What it is for.
    pub aud: Audience,
    /// Who: an openid, a seller's login, an OAuth nonce.
    pub sub: String,
    /// Until when (Unix seconds).
    pub exp: i64,
    /// Context: the buyer's app, the seller's password generation, the OAuth return path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all.
    #[error("not a session token")]
    Malformed,
    /// The signature does not match (forged or altered, or another secret's).
    #[error("the session token's signature does not match")]
    BadSignature,
    /// A valid token for something else.
    #[error("the token is not for this")]
    WrongAudience,
    /// Past its time.
    #[error("the session expired")]
    Expired,
}

/// The key sessions are signed with, for one mode.
#[derive(Clone)]
pub struct SessionKeys {
    key: Vec<u8>,
    domain: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(***)")
    }
}

/// Separates these MACs from any other use of the same secret (the mode follows).
const DOMAIN: &str = "vending-session-v1.";

impl SessionKeys {
    /// Keys from the secret, for the tokens of `mode`.
    pub fn new(secret: &str, mode: crate::providers::Mode) -> Self {
        SessionKeys {
            key: secret.as_bytes().to_vec(),
            domain: format!("{DOMAIN}{}.", mode.as_str()).into_bytes(),
        }
    }

    fn mac(&self, payload: &str) -> [u8; 32] {
        crate::mac::sign(&self.key, &[&self.domain, payload.as_bytes()].concat())
    }

    /// The token of `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&payload));
        format!("{payload}.{tag}")
    }

    /// The claims of `token`, if it is ours, for `audience` and not expired at `now`.
    pub fn verify(&self, token: &str, audience: Audience, now: i64) -> Result<Claims, TokenError> {
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        // The signature first: nothing of a forged token is read.
        if !crate::mac::verify(
            &self.key,
            &[&self.domain, payload.as_bytes()].concat(),
            &tag,
        ) {
            return Err(TokenError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.aud != audience {
            return Err(TokenError::WrongAudience);
        }
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Mode;

    fn claims(aud: Audience, exp: i64) -> Claims {
        Claims {
            aud,
            sub: "oBuyer1".into(),
            exp,
            ctx: Some("mini".into()),
        }
    }

    #[test]
    fn a_token_verifies_once_signed_and_only_for_its_audience_and_time() {
        let keys = SessionKeys::new("a-secret-of-at-least-thirty-two-chars", Mode::Live);
        let token = keys.sign(&claims(Audience::Buyer, 1_000));
        assert_eq!(
            keys.verify(&token, Audience::Buyer, 999),
            Ok(claims(Audience::Buyer, 1_000))
        );
        assert_eq!(
            keys.verify(&token, Audience::Buyer, 1_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            keys.verify(&token, Audience::Seller, 999),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn forged_altered_and_foreign_tokens_are_refused() {
        let keys = SessionKeys::new("a-secret-of-at-least-thirty-two-chars", Mode::Live);
        let other = SessionKeys::new("another-secret-of-thirty-two-chars!!", Mode::Live);
        let token = keys.sign(&claims(Audience::Buyer, 1_000));
        assert_eq!(
            other.verify(&token, Audience::Buyer, 1),
            Err(TokenError::BadSignature)
        );
        // Someone else's openid in a payload that keeps the old signature.
        let (_, tag) = token.split_once('.').unwrap_or_default();
        let mut forged = claims(Audience::Buyer, 1_000);
        forged.sub = "oVictim".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap_or_default());
        assert_eq!(
            keys.verify(&format!("{payload}.{tag}"), Audience::Buyer, 1),
            Err(TokenError::BadSignature)
        );
        for junk in ["", ".", "abc", "abc.def", "!!.!!"] {
            assert!(keys.verify(junk, Audience::Buyer, 1).is_err(), "{junk:?}");
        }
    }

    /// Issue 27, finding 5: a demo-login token (7 days) was a valid live buyer session on the
    /// same database, the stored secret surviving the switch. Same secret, other mode: refused.
    #[test]
    fn a_token_of_one_mode_never_verifies_in_the_other() {
        let secret = "a-secret-of-at-least-thirty-two-chars";
        let demo = SessionKeys::new(secret, Mode::Demo);
        let live = SessionKeys::new(secret, Mode::Live);
        let from_demo = demo.sign(&claims(Audience::Buyer, 1_000));
        assert!(demo.verify(&from_demo, Audience::Buyer, 1).is_ok());
        assert_eq!(
            live.verify(&from_demo, Audience::Buyer, 1),
            Err(TokenError::BadSignature)
        );
        let from_live = live.sign(&claims(Audience::Seller, 1_000));
        assert_eq!(
            demo.verify(&from_live, Audience::Seller, 1),
            Err(TokenError::BadSignature)
        );
    }
}
