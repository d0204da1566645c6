//! The client against a wiremock gateway: every method's request is checked (signed with the
//! app key, the right method and biz_content) and every answer path is run — signed, tampered,
//! unsigned, signed with another key, a refusal, an HTTP error; notifications verified, forged,
//! for another app or seller. No network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certificates;
mod encryption;
mod endpoints;
mod notifications;
mod support;
