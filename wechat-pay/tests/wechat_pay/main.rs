//! `wechat-pay` against wiremock: every endpoint's request is checked (fields and signature) by
//! the mock, and every reply path (success, `return_code=FAIL`, `result_code=FAIL`, forged or
//! unsigned reply) is exercised. No test touches the network beyond 127.0.0.1.

// Test helpers outside `#[test]` functions panic on purpose: that is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certificate;
mod downloads;
mod endpoints;
mod notifications;
mod sandbox;
mod secrets;
mod support;
mod v3;
