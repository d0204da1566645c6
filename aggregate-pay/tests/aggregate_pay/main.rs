//! `aggregate-pay` end to end with the sandbox channel, against every store: the in-memory one,
//! SQLite, and — when `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` are set, as `.ci/run` does — real
//! PostgreSQL and MariaDB, each test in a database of its own.

// Test helpers outside `#[test]` functions panic on purpose: that is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bills;
mod locks;
mod migrations;
mod notify;
mod outbox;
mod rabbit;
mod reconcile;
mod service;
mod sharing;
mod short_poll;
mod sqlite;
mod support;
