//! [`Client`]: the one funnel every API call goes through.
//!
//! It adds the access token, sends, maps `errcode != 0` to [`Error::Api`], and when WeChat says
//! the token is invalid or expired (`40001`, `40014`, `42001`) it forgets that token, gets a new
//! one and retries the call exactly once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::token::{FetchToken, MemoryTokenStore, TokenManager, TokenSource, TokenStore};
use crate::{Error, Secret};

/// The API gateway.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";
/// Where the web OAuth authorize page lives.
pub const DEFAULT_OPEN_BASE_URL: &str = "https://open.weixin.qq.com";
/// Where QR code images are served.
pub const DEFAULT_MP_BASE_URL: &str = "https://mp.weixin.qq.com";

/// The largest API response accepted (1 MiB).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A client for one Official Account or Mini Program. Cheap to clone, `Send + Sync`; `Debug`
/// never shows the app secret or tokens.
///
/// ```no_run
/// # async fn run() -> Result<(), wechat_mp::Error> {
/// use wechat_mp::{Client, Secret};
/// let client = Client::builder("wx1234567890abcdef", Secret::new("app-secret")).build()?;
/// let user = client.user_info("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) app_id: String,
    pub(crate) app_secret: Secret,
    pub(crate) base_url: String,
    pub(crate) open_base_url: String,
    pub(crate) mp_base_url: String,
    http: reqwest::Client,
    token_source: TokenSource,
    tokens: TokenManager,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Client")
            .field("app_id", &i.app_id)
            .field("app_secret", &i.app_secret)
            .field("base_url", &i.base_url)
            .field("token_source", &i.token_source)
            .field("token_store", &i.tokens.store)
            .finish()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    app_id: String,
    app_secret: Secret,
    base_url: String,
    open_base_url: String,
    mp_base_url: String,
    timeout: Duration,
    token_store: Option<Arc<dyn TokenStore>>,
    token_source: TokenSource,
    refresh_margin: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret)
            .field("base_url", &self.base_url)
            .field("token_source", &self.token_source)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The API gateway (default [`DEFAULT_BASE_URL`]); point it at wiremock or the sandbox.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The OAuth authorize host (default [`DEFAULT_OPEN_BASE_URL`]).
    pub fn open_base_url(mut self, url: impl Into<String>) -> Self {
        self.open_base_url = url.into();
        self
    }

    /// The QR image host (default [`DEFAULT_MP_BASE_URL`]).
    pub fn mp_base_url(mut self, url: impl Into<String>) -> Self {
        self.mp_base_url = url.into();
        self
    }

    /// The whole-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where the access token is kept (default: in this process). Give every instance the same
    /// Redis store so they share one token.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.token_store = Some(store);
        self
    }

    /// Which endpoint issues tokens (default [`TokenSource::Token`]).
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.token_source = source;
        self
    }

    /// How long before expiry a token is refreshed (default 5 minutes).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        if self.app_id.trim().is_empty() {
            return Err(Error::Config("app_id is empty".into()));
        }
        if self.app_secret.expose().is_empty() {
            return Err(Error::Config("app_secret is empty".into()));
        }
        for url in [&self.base_url, &self.open_base_url, &self.mp_base_url] {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| Error::Config(format!("invalid url {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::Config(format!("unsupported url scheme in {url:?}")));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("wechat-mp-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the http client: {e}")))?;
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        Ok(Client {
            inner: Arc::new(Inner {
                tokens: TokenManager {
                    app_id: self.app_id.clone(),
                    store: self
                        .token_store
                        .unwrap_or_else(|| Arc::new(MemoryTokenStore::new())),
                    refresh_margin: self.refresh_margin,
                    refresh: tokio::sync::Mutex::new(()),
                },
                app_id: self.app_id,
                app_secret: self.app_secret,
                base_url: trim(self.base_url),
                open_base_url: trim(self.open_base_url),
                mp_base_url: trim(self.mp_base_url),
                http,
                token_source: self.token_source,
            }),
        })
    }
}

/// Whether a call carries the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `access_token=…` is added, and a rejected token is refreshed and the call retried once.
    AccessToken,
    /// The call authenticates otherwise (app secret, OAuth token) or not at all.
    None,
}

#[derive(serde::Deserialize)]
struct TokenReply {
    access_token: Secret,
    expires_in: u64,
}

impl Client {
    /// Starts configuring a client for `app_id` and its `app_secret`.
    pub fn builder(app_id: impl Into<String>, app_secret: Secret) -> ClientBuilder {
        ClientBuilder {
            app_id: app_id.into(),
            app_secret,
            base_url: DEFAULT_BASE_URL.to_owned(),
            open_base_url: DEFAULT_OPEN_BASE_URL.to_owned(),
            mp_base_url: DEFAULT_MP_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
            token_store: None,
            token_source: TokenSource::Token,
            refresh_margin: Duration::from_secs(300),
        }
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The current access token, refreshed if needed (single-flight across callers and, with a
    /// shared store, across instances).
    pub async fn access_token(&self) -> Result<Secret, Error> {
        self.inner.tokens.token(self, false).await
    }

    /// `GET {base}{path}?{query}` decoded as `T`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        auth: Auth,
    ) -> Result<T, Error> {
        self.call(reqwest::Method::GET, path, query, None::<&()>, auth)
            .await
    }

    /// `POST {base}{path}?{query}` with a JSON body, decoded as `T`.
    pub(crate) async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
        auth: Auth,
    ) -> Result<T, Error> {
        self.call(reqwest::Method::POST, path, query, Some(body), auth)
            .await
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        auth: Auth,
    ) -> Result<T, Error> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Config(format!("cannot serialize the request: {e}")))?;
        match auth {
            Auth::None => self.send(&method, path, query, body.as_deref(), None).await,
            Auth::AccessToken => {
                let token = self.inner.tokens.token(self, false).await?;
                let first = self
                    .send(&method, path, query, body.as_deref(), Some(&token))
                    .await;
                match first {
                    Err(e) if e.is_token_error() => {
                        tracing::info!(path, "access token rejected; refreshing and retrying once");
                        self.inner.tokens.invalidate(&token).await?;
                        let token = self.inner.tokens.token(self, true).await?;
                        self.send(&method, path, query, body.as_deref(), Some(&token))
                            .await
                    }
                    other => other,
                }
            }
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: &reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
        token: Option<&Secret>,
    ) -> Result<T, Error> {
        let mut url = reqwest::Url::parse(&format!("{}{}", self.inner.base_url, path))
            .map_err(|e| Error::Config(format!("invalid path {path:?}: {e}")))?;
        {
            let mut pairs = url.query_pairs_mut();
            pairs.extend_pairs(query);
            if let Some(t) = token {
                pairs.append_pair("access_token", t.expose());
            }
        }
        tracing::debug!(%method, path, "wechat api request");
        let mut request = self.inner.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(body.to_vec());
        }
        let mut response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::HttpStatus {
                status: status.as_u16(),
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::decode(path, "response larger than 1 MiB"));
            }
            bytes.extend_from_slice(&chunk);
        }
        parse_reply(path, &bytes)
    }
}

/// Decodes a JSON reply: `errcode != 0` is an [`Error::Api`], anything else must decode as `T`.
pub(crate) fn parse_reply<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, Error> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::decode(what, e.to_string()))?;
    if let Some(errcode) = value.get("errcode").and_then(serde_json::Value::as_i64) {
        if errcode != 0 {
            return Err(Error::Api {
                errcode,
                errmsg: value
                    .get("errmsg")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
    }
    serde_json::from_value(value).map_err(|e| Error::decode(what, e.to_string()))
}

#[async_trait]
impl FetchToken for Client {
    async fn fetch_token(&self, force: bool) -> Result<(Secret, Duration), Error> {
        let i = &self.inner;
        let reply: TokenReply = match i.token_source {
            TokenSource::Token => {
                self.get(
                    "/cgi-bin/token",
                    &[
                        ("grant_type", "client_credential"),
                        ("appid", &i.app_id),
                        ("secret", i.app_secret.expose()),
                    ],
                    Auth::None,
                )
                .await?
            }
            TokenSource::StableToken => {
                let body = serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": i.app_id,
                    "secret": i.app_secret.expose(),
                    "force_refresh": force,
                });
                self.post("/cgi-bin/stable_token", &[], &body, Auth::None)
                    .await?
            }
        };
        if reply.access_token.expose().is_empty() || reply.expires_in == 0 {
            return Err(Error::decode("access_token", "empty token or lifetime"));
        }
        Ok((reply.access_token, Duration::from_secs(reply.expires_in)))
    }
}
