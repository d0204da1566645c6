//! Cross-crate integration tests: one test binary (`tests/integration/`) with a module per
//! behaviour that spans crates, with wiremock or the sandbox emulator standing in for WeChat and
//! Alipay.
//!
//! Status: no cross-crate behaviour exists yet (the first arrives with `aggregate-pay`, issue
//! #5); each crate's own behaviour is tested in that crate. Tests that need a real engine read
//! `TEST_POSTGRES_URL`, `TEST_MYSQL_URL`, `TEST_REDIS_URL`, `TEST_AMQP_URL` and `TEST_MQTT_URL`,
//! which `.ci/run` sets.
