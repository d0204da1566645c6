//! The access token: single flight (in process, across clients, across Redis-sharing
//! instances), early refresh, both token endpoints.

use std::sync::Arc;
use std::time::Duration;

use wechat_mp::{Client, MemoryTokenStore, Secret, TokenSource, TokenStore};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer};

use crate::support::{APP_ID, APP_SECRET, client, json, mount_token};

async fn hammer(clients: &[Client], callers: usize) -> Vec<String> {
    let mut tasks = Vec::with_capacity(callers);
    for i in 0..callers {
        let c = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(async move { c.access_token().await }));
    }
    let mut tokens = Vec::with_capacity(callers);
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap().expose().to_owned());
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_callers_on_a_cold_cache_make_one_call() {
    let server = MockServer::start().await;
    mount_token(&server, "TOKEN-1", 1).await;
    let tokens = hammer(&[client(&server)], 1000).await;
    assert!(tokens.iter().all(|t| t == "TOKEN-1"));
    // `expect(1)` is verified when the server drops; check now for a clear message.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_sharing_a_store_make_one_call() {
    let server = MockServer::start().await;
    mount_token(&server, "SHARED", 1).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let make = || {
        Client::builder(APP_ID, Secret::new(APP_SECRET))
            .base_url(server.uri())
            .token_store(store.clone())
            .build()
            .unwrap()
    };
    let tokens = hammer(&[make(), make()], 1000).await;
    assert!(tokens.iter().all(|t| t == "SHARED"));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn refreshes_before_expiry() {
    let server = MockServer::start().await;
    // Valid for 200 s, but the margin is 300 s: every call finds it due for refresh.
    Mock::given(path("/cgi-bin/token"))
        .respond_with(json(
            serde_json::json!({"access_token": "SHORT", "expires_in": 200}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server);
    c.access_token().await.unwrap();
    c.access_token().await.unwrap();

    // With a smaller margin the same token is reused.
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/token"))
        .respond_with(json(
            serde_json::json!({"access_token": "SHORT", "expires_in": 200}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = Client::builder(APP_ID, Secret::new(APP_SECRET))
        .base_url(server.uri())
        .refresh_margin(Duration::from_secs(60))
        .build()
        .unwrap();
    c.access_token().await.unwrap();
    c.access_token().await.unwrap();
}

#[tokio::test]
async fn stable_token_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/stable_token"))
        .and(body_json(serde_json::json!({
            "grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET,
            "force_refresh": false
        })))
        .respond_with(json(
            serde_json::json!({"access_token": "STABLE", "expires_in": 7200}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // After WeChat rejects the token, the refresh forces a new one.
    Mock::given(method("POST"))
        .and(path("/cgi-bin/stable_token"))
        .and(body_json(serde_json::json!({
            "grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET,
            "force_refresh": true
        })))
        .respond_with(json(
            serde_json::json!({"access_token": "FORCED", "expires_in": 7200}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/cgi-bin/menu/delete"))
        .and(query_param("access_token", "STABLE"))
        .respond_with(json(
            serde_json::json!({"errcode": 42001, "errmsg": "access_token expired"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/cgi-bin/menu/delete"))
        .and(query_param("access_token", "FORCED"))
        .respond_with(json(serde_json::json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = Client::builder(APP_ID, Secret::new(APP_SECRET))
        .base_url(server.uri())
        .token_source(TokenSource::StableToken)
        .build()
        .unwrap();
    c.delete_menu().await.unwrap();
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use wechat_mp::StoredToken;
    use wechat_mp::message::{Deduper, RedisDeduper};
    use wechat_mp::token::RedisTokenStore;

    fn redis_url() -> Option<String> {
        crate::support::engine_url("TEST_REDIS_URL")
    }

    fn unique_prefix() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("wechat-mp-test:{nanos}:")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_sharing_redis_make_one_call() {
        let Some(url) = redis_url() else { return };
        let server = MockServer::start().await;
        mount_token(&server, "REDIS-SHARED", 1).await;
        let prefix = unique_prefix();
        // Two "instances": separate clients, separate connections, one Redis.
        let mut clients = Vec::new();
        for _ in 0..2 {
            let store = RedisTokenStore::connect_with_prefix(&url, &prefix)
                .await
                .unwrap();
            clients.push(
                Client::builder(APP_ID, Secret::new(APP_SECRET))
                    .base_url(server.uri())
                    .token_store(Arc::new(store))
                    .build()
                    .unwrap(),
            );
        }
        let tokens = hammer(&clients, 1000).await;
        assert!(tokens.iter().all(|t| t == "REDIS-SHARED"));
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn redis_store_semantics() {
        let Some(url) = redis_url() else { return };
        let store = RedisTokenStore::connect_with_prefix(&url, &unique_prefix())
            .await
            .unwrap();
        assert!(store.get("app").await.unwrap().is_none());
        let expires_at = std::time::SystemTime::now() + Duration::from_secs(120);
        store
            .set(
                "app",
                &StoredToken {
                    token: Secret::new("T1"),
                    expires_at,
                },
            )
            .await
            .unwrap();
        let got = store.get("app").await.unwrap().unwrap();
        assert_eq!(got.token.expose(), "T1");
        let drift = got
            .expires_at
            .duration_since(expires_at)
            .unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_secs(2), "expiry kept: {drift:?}");
        // Invalidating an older token keeps the current one.
        store.invalidate("app", "T0").await.unwrap();
        assert!(store.get("app").await.unwrap().is_some());
        store.invalidate("app", "T1").await.unwrap();
        assert!(store.get("app").await.unwrap().is_none());
        // The lock belongs to its owner.
        assert!(
            store
                .try_lock("app", "a", Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(
            !store
                .try_lock("app", "b", Duration::from_secs(5))
                .await
                .unwrap()
        );
        store.unlock("app", "b").await.unwrap();
        assert!(
            !store
                .try_lock("app", "b", Duration::from_secs(5))
                .await
                .unwrap()
        );
        store.unlock("app", "a").await.unwrap();
        assert!(
            store
                .try_lock("app", "b", Duration::from_secs(5))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn redis_deduper() {
        let Some(url) = redis_url() else { return };
        let prefix = unique_prefix();
        let a = RedisDeduper::connect(&url, &prefix).await.unwrap();
        let b = RedisDeduper::connect(&url, &prefix).await.unwrap();
        assert!(
            a.first_seen("msg:1", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            !b.first_seen("msg:1", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            b.first_seen("msg:2", Duration::from_secs(60))
                .await
                .unwrap()
        );
    }
}
