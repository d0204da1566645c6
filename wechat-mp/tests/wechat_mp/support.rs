//! Shared fixtures.

use std::time::Duration;

use wechat_mp::{Client, Secret};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const APP_ID: &str = "wx1234567890abcdef";
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

pub fn client(server: &MockServer) -> Client {
    Client::builder(APP_ID, Secret::new(APP_SECRET))
        .base_url(server.uri())
        .open_base_url("https://open.example")
        .mp_base_url("https://mp.example")
        .build()
        .unwrap()
}

pub fn json(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// `/cgi-bin/token` answering `token` (valid two hours), expected `times` times.
pub async fn mount_token(server: &MockServer, token: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path("/cgi-bin/token"))
        .and(query_param("grant_type", "client_credential"))
        .and(query_param("appid", APP_ID))
        .and(query_param("secret", APP_SECRET))
        .respond_with(
            json(serde_json::json!({"access_token": token, "expires_in": 7200}))
                .set_delay(Duration::from_millis(50)),
        )
        .expect(times)
        .mount(server)
        .await;
}

/// The URL in the environment variable `var` (a real engine), or `None` when a developer runs
/// the tests without it. `.ci/run` sets them all and `REQUIRE_ENGINES`, under which a missing
/// one fails the test instead of skipping it.
pub fn engine_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("REQUIRE_ENGINES").is_none(),
                "REQUIRE_ENGINES is set but {var} is not"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}
