//! `wechat-mp` against wiremock (every API call, the token refresh and retry paths) and the
//! inbound endpoint against real-format messages. The Redis tests use `TEST_REDIS_URL`.

// Test helpers outside `#[test]` functions panic on purpose: that is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod inbound;
mod support;
mod token;
