//! The client: one funnel ([`Client::execute`]) that adds the common parameters, signs with the
//! app's key, posts the form, verifies the answer with Alipay's key (over the exact text Alipay
//! signed) and decodes it — or returns the refusal as a typed [`Error::Gateway`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use crate::api::cert_download::{CertDownload, CertDownloadResponse};
use crate::api::{PageRequest, Request};
use crate::cert::Certificates;
use crate::encrypt::AesKey;
use crate::sign::{self, PrivateKey, PublicKey};
use crate::{Error, SignatureError};

/// Alipay's production gateway.
pub const DEFAULT_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";

/// Alipay's page where a merchant authorizes a third-party (service provider's) app.
pub const DEFAULT_APP_AUTH_URL: &str = "https://openauth.alipay.com/oauth2/appToAppAuth.htm";

/// Alipay's web authorization page (buyer login in the Alipay app's browser).
pub const DEFAULT_AUTHORIZE_URL: &str = "https://openauth.alipay.com/oauth2/publicAppAuthorize.htm";

/// At most one download of the same unknown Alipay certificate per this long, by default.
pub const DEFAULT_CERT_DOWNLOAD_INTERVAL: Duration = Duration::from_secs(60);

/// How answers and notifications are verified: the app's two modes.
#[derive(Debug, Clone)]
pub enum AlipayKeys {
    /// Public-key mode (公钥): Alipay's public key as the app's console shows it.
    PublicKey(PublicKey),
    /// Certificate mode (公钥证书): the app, Alipay and root certificates; requests carry
    /// their SNs and answers are verified with the certificate they name.
    Certificates(Certificates),
}

impl From<PublicKey> for AlipayKeys {
    fn from(key: PublicKey) -> Self {
        AlipayKeys::PublicKey(key)
    }
}

impl From<Certificates> for AlipayKeys {
    fn from(certs: Certificates) -> Self {
        AlipayKeys::Certificates(certs)
    }
}

/// Certificate mode's state: the Alipay keys held by SN, the newest one, and the downloads.
struct CertState {
    certs: Certificates,
    keys: RwLock<HashMap<String, PublicKey>>,
    /// The SN the last verified answer named (what notifications are tried with first).
    current: RwLock<String>,
    /// Held while downloading; when each SN was last tried.
    downloads: tokio::sync::Mutex<HashMap<String, Instant>>,
    interval: Duration,
}

impl CertState {
    fn key(&self, sn: &str) -> Option<PublicKey> {
        self.keys.read().ok()?.get(sn).cloned()
    }

    fn current_key(&self) -> PublicKey {
        let current = self.current.read().map(|c| c.clone()).unwrap_or_default();
        self.key(&current)
            .unwrap_or_else(|| self.certs.alipay_public_key().clone())
    }

    fn hold(&self, sn: &str, key: PublicKey) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(sn.to_owned(), key);
        }
        if let Ok(mut current) = self.current.write() {
            sn.clone_into(&mut current);
        }
    }
}

/// An Alipay open-platform client for one app. Cheap to clone (an `Arc` inside); `Debug` never
/// shows the private key.
///
/// ```no_run
/// # async fn run() -> Result<(), alipay::Error> {
/// use alipay::{Client, Fen, PrivateKey, PublicKey, TradePrecreate};
///
/// let client = Client::builder(
///     "2021000000000001",
///     PrivateKey::from_pem(&std::fs::read_to_string("app_private_key.pem").unwrap())?,
///     PublicKey::from_pem(&std::fs::read_to_string("alipay_public_key.pem").unwrap())?,
/// )
/// .seller_id("2088000000000001")
/// .build()?;
/// let qr = client
///     .execute(
///         &TradePrecreate::new("ORDER-1", Fen::new(350), "Cola")
///             .notify_url("https://shop.example/notify/alipay"),
///     )
///     .await?;
/// println!("show this as a QR code: {}", qr.qr_code);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    app_id: String,
    seller_id: Option<String>,
    aes_key: Option<AesKey>,
    private_key: PrivateKey,
    alipay_public_key: PublicKey,
    certs: Option<CertState>,
    gateway: String,
    authorize_url: String,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("app_id", &self.inner.app_id)
            .field("seller_id", &self.inner.seller_id)
            .field("private_key", &self.inner.private_key)
            .field("aes_key", &self.inner.aes_key)
            .field("certificates", &self.inner.certs.as_ref().map(|c| &c.certs))
            .field("gateway", &self.inner.gateway)
            .finish()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    app_id: String,
    seller_id: Option<String>,
    aes_key: Option<AesKey>,
    private_key: PrivateKey,
    alipay: AlipayKeys,
    gateway: String,
    authorize_url: String,
    timeout: Duration,
    cert_download_interval: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("app_id", &self.app_id)
            .field("seller_id", &self.seller_id)
            .field("private_key", &self.private_key)
            .field("aes_key", &self.aes_key)
            .field("alipay", &self.alipay)
            .field("gateway", &self.gateway)
            .finish()
    }
}

impl ClientBuilder {
    /// The gateway (default [`DEFAULT_GATEWAY`]): its full URL, or a base URL to which
    /// `/gateway.do` is added (`http://127.0.0.1:9100` for the sandbox emulator).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.gateway = if url.trim_end_matches('/').ends_with(".do") {
            url
        } else {
            format!("{}/gateway.do", url.trim_end_matches('/'))
        };
        self
    }

    /// The web authorization page (default [`DEFAULT_AUTHORIZE_URL`]; a staging emulator's
    /// otherwise).
    pub fn authorize_url(mut self, url: impl Into<String>) -> Self {
        self.authorize_url = url.into();
        self
    }

    /// The merchant's partner id (`2088…`): notifications naming another seller are refused.
    pub fn seller_id(mut self, seller_id: impl Into<String>) -> Self {
        self.seller_id = Some(seller_id.into());
        self
    }

    /// Encrypts every request's content with the app's AES key (`encrypt_type=AES`), and reads
    /// the answers Alipay encrypts with it (see [`crate::encrypt`]).
    pub fn aes_key(mut self, key: AesKey) -> Self {
        self.aes_key = Some(key);
        self
    }

    /// Certificate mode: at most one download of the same unknown Alipay certificate per
    /// `interval` (default [`DEFAULT_CERT_DOWNLOAD_INTERVAL`]), whatever asks for it.
    pub fn cert_download_interval(mut self, interval: Duration) -> Self {
        self.cert_download_interval = interval;
        self
    }

    /// The whole-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        if self.app_id.trim().is_empty() {
            return Err(Error::Config("app_id is empty".into()));
        }
        for (what, url) in [
            ("gateway", &self.gateway),
            ("authorization", &self.authorize_url),
        ] {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(Error::Config(format!("invalid {what} URL {url:?}"))),
            }
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("alipay-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the http client: {e}")))?;
        let (alipay_public_key, certs) = match self.alipay {
            AlipayKeys::PublicKey(key) => (key, None),
            AlipayKeys::Certificates(certs) => {
                let sn = certs.alipay_cert_sn().to_owned();
                let key = certs.alipay_public_key().clone();
                let state = CertState {
                    keys: RwLock::new(HashMap::from([(sn.clone(), key.clone())])),
                    current: RwLock::new(sn),
                    downloads: tokio::sync::Mutex::new(HashMap::new()),
                    interval: self.cert_download_interval,
                    certs,
                };
                (key, Some(state))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                app_id: self.app_id,
                seller_id: self.seller_id,
                aes_key: self.aes_key,
                private_key: self.private_key,
                alipay_public_key,
                certs,
                gateway: self.gateway,
                authorize_url: self.authorize_url,
                http,
            }),
        })
    }
}

/// `yyyy-MM-dd HH:mm:ss` in China Standard Time, as Alipay writes times.
pub fn china_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl Client {
    /// Starts configuring a client for `app_id`, signing with the app's private key and
    /// verifying with Alipay's public key (the "支付宝公钥" of the app, not the app's own) or,
    /// in certificate mode, with [`Certificates`].
    pub fn builder(
        app_id: impl Into<String>,
        app_private_key: PrivateKey,
        alipay: impl Into<AlipayKeys>,
    ) -> ClientBuilder {
        ClientBuilder {
            app_id: app_id.into(),
            seller_id: None,
            aes_key: None,
            private_key: app_private_key,
            alipay: alipay.into(),
            gateway: DEFAULT_GATEWAY.to_owned(),
            authorize_url: DEFAULT_AUTHORIZE_URL.to_owned(),
            timeout: Duration::from_secs(10),
            cert_download_interval: DEFAULT_CERT_DOWNLOAD_INTERVAL,
        }
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The seller id notifications must name, when configured.
    pub fn seller_id(&self) -> Option<&str> {
        self.inner.seller_id.as_deref()
    }

    /// Alipay's public key: the configured one, or in certificate mode the key of the newest
    /// Alipay certificate an answer named.
    pub fn alipay_public_key(&self) -> PublicKey {
        match &self.inner.certs {
            Some(c) => c.current_key(),
            None => self.inner.alipay_public_key.clone(),
        }
    }

    /// The Alipay keys a notification may be signed with, the newest first (one in public-key
    /// mode; in certificate mode every certificate held, so a rotation loses nothing).
    pub(crate) fn notification_keys(&self) -> Vec<PublicKey> {
        match &self.inner.certs {
            None => vec![self.inner.alipay_public_key.clone()],
            Some(c) => {
                let mut keys = vec![c.current_key()];
                if let Ok(held) = c.keys.read() {
                    keys.extend(held.values().cloned());
                }
                keys
            }
        }
    }

    /// Certificate mode's SNs (`app_cert_sn`, `alipay_root_cert_sn`), when in that mode.
    pub fn certificates(&self) -> Option<&Certificates> {
        self.inner.certs.as_ref().map(|c| &c.certs)
    }

    /// The gateway URL.
    pub fn gateway(&self) -> &str {
        &self.inner.gateway
    }

    /// The signed parameters of a call: the common ones, `extra` (notify / return URLs) and
    /// `biz_content`.
    fn signed_params(
        &self,
        method: &str,
        biz_content: String,
        extra: &[(&'static str, String)],
    ) -> Result<Vec<(String, String)>, Error> {
        // Encrypted first, then signed: the signature covers the ciphertext.
        let biz_content = match &self.inner.aes_key {
            Some(key) if !biz_content.is_empty() => key.encrypt(&biz_content),
            _ => biz_content,
        };
        let mut p: Vec<(String, String)> = vec![
            ("app_id".into(), self.inner.app_id.clone()),
            ("method".into(), method.into()),
            ("format".into(), "JSON".into()),
            ("charset".into(), "utf-8".into()),
            ("sign_type".into(), "RSA2".into()),
            ("timestamp".into(), china_time(OffsetDateTime::now_utc())),
            ("version".into(), "1.0".into()),
        ];
        if !biz_content.is_empty() {
            p.push(("biz_content".into(), biz_content));
        }
        if self.inner.aes_key.is_some() && p.iter().any(|(k, _)| k == "biz_content") {
            p.push(("encrypt_type".into(), "AES".into()));
        }
        if let Some(c) = &self.inner.certs {
            p.push(("app_cert_sn".into(), c.certs.app_cert_sn().to_owned()));
            p.push((
                "alipay_root_cert_sn".into(),
                c.certs.root_cert_sn().to_owned(),
            ));
        }
        p.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let content = sign::canonical(
            p.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            sign::REQUEST_EXCLUDES,
        );
        let signature = self.inner.private_key.sign(&content)?;
        p.push(("sign".into(), signature));
        Ok(p)
    }

    /// Calls the gateway with a typed request and returns its verified, decoded answer.
    pub async fn execute<R: Request>(&self, request: &R) -> Result<R::Response, Error> {
        self.execute_with(request, request.top_level()).await
    }

    /// The same for a merchant who authorized this (service provider's) app: the call carries
    /// the merchant's `app_auth_token` ([`OpenAuthToken`](crate::OpenAuthToken)), so it is
    /// made, and its money settles, in the merchant's name.
    pub async fn execute_for<R: Request>(
        &self,
        app_auth_token: &str,
        request: &R,
    ) -> Result<R::Response, Error> {
        if app_auth_token.trim().is_empty() {
            return Err(Error::Config("app_auth_token is empty".into()));
        }
        let mut top = request.top_level();
        top.push(("app_auth_token", app_auth_token.to_owned()));
        self.execute_with(request, top).await
    }

    async fn execute_with<R: Request>(
        &self,
        request: &R,
        top: Vec<(&'static str, String)>,
    ) -> Result<R::Response, Error> {
        let biz = if R::BIZ_CONTENT {
            serde_json::to_string(request)
                .map_err(|e| Error::Config(format!("cannot encode biz_content: {e}")))?
        } else {
            String::new()
        };
        let (_, object) = self.call(R::METHOD, biz, &top, R::accepts).await?;
        serde_json::from_str(&object).map_err(|e| Error::decode(R::METHOD, e))
    }

    /// Where a merchant authorizes this (service provider's) app: Alipay sends them back to
    /// `redirect_uri` with `?app_auth_code=…&state=…`; exchange the code with
    /// [`OpenAuthToken::code`](crate::OpenAuthToken::code). `auth_url` is
    /// [`DEFAULT_APP_AUTH_URL`] in production.
    pub fn app_auth_url(
        &self,
        auth_url: &str,
        redirect_uri: &str,
        state: &str,
    ) -> Result<String, Error> {
        check_state(state)?;
        let mut url = reqwest::Url::parse(auth_url)
            .map_err(|e| Error::Config(format!("authorization URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("app_id", &self.inner.app_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        Ok(url.into())
    }

    /// Calls any method with a JSON `biz_content` (for methods without a typed request here);
    /// returns the verified answer object.
    pub async fn execute_json(&self, method: &str, biz_content: &Value) -> Result<Value, Error> {
        let (_, object) = self
            .call(method, biz_content.to_string(), &[], |c| c == "10000")
            .await?;
        serde_json::from_str(&object).map_err(|e| Error::decode(method, e))
    }

    /// Downloads a bill from `url` (a [`BillDownloadUrl`](crate::api::bill::BillDownloadUrl),
    /// valid for 30 seconds) into `out` as it arrives; returns the bytes written. Read it with
    /// [`BillArchive`](crate::bill::BillArchive).
    pub async fn download_bill(
        &self,
        url: &str,
        out: &mut (impl std::io::Write + Send + ?Sized),
    ) -> Result<u64, Error> {
        let mut response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Transport(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Transport(format!(
                "bill download: http status {status}"
            )));
        }
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::Transport(e.without_url().to_string()))?
        {
            out.write_all(&chunk)
                .map_err(|e| Error::Transport(format!("bill download: {e}")))?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// Posts, verifies, and returns `(code, the signed response object's text)`.
    async fn call(
        &self,
        method: &str,
        biz: String,
        extra: &[(&'static str, String)],
        accepts: fn(&str) -> bool,
    ) -> Result<(String, String), Error> {
        let text = self.post(method, biz, extra).await?;
        let answer = Answer::read(&text, method)?;
        let key = self.answer_key(answer.cert_sn.as_deref()).await?;
        key.verify(answer.content, &answer.signature)?;
        let content = self.plain(answer.content)?;
        let (code, _) = checked(&content, accepts)?;
        Ok((code, content))
    }

    /// Posts the signed form and returns the answer's text.
    async fn post(
        &self,
        method: &str,
        biz: String,
        extra: &[(&'static str, String)],
    ) -> Result<String, Error> {
        let params = self.signed_params(method, biz, extra)?;
        let body = serde_urlencoded::to_string(&params)
            .map_err(|e| Error::Config(format!("cannot encode the form: {e}")))?;
        let response = self
            .inner
            .http
            .post(&self.inner.gateway)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Transport(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Transport(format!("http status {status}")));
        }
        response
            .text()
            .await
            .map_err(|e| Error::Transport(e.without_url().to_string()))
    }

    /// A verified answer's content as JSON text: an encrypted answer (a JSON string of
    /// ciphertext, signed as it stands) decrypted with the app's AES key.
    fn plain(&self, content: &str) -> Result<String, Error> {
        match serde_json::from_str::<Value>(content) {
            Ok(Value::String(ciphertext)) => match &self.inner.aes_key {
                Some(key) => key.decrypt(&ciphertext),
                None => Err(Error::decode(
                    "response",
                    "an encrypted answer: configure the app's AES key",
                )),
            },
            _ => Ok(content.to_owned()),
        }
    }

    /// The key an answer naming `sn` is verified with: in certificate mode the certificate it
    /// names, downloaded when not held; in public-key mode Alipay's public key.
    async fn answer_key(&self, sn: Option<&str>) -> Result<PublicKey, Error> {
        let Some(c) = &self.inner.certs else {
            return Ok(self.inner.alipay_public_key.clone());
        };
        let Some(sn) = sn.filter(|s| !s.is_empty()) else {
            return Ok(c.current_key());
        };
        if let Some(key) = c.key(sn) {
            return Ok(key);
        }
        self.download_certificate(sn).await
    }

    /// Certificate mode: downloads the Alipay certificate `sn` names, checks it chains to the
    /// root, and holds it. One download at a time (callers that waited use its result), and the
    /// same SN tried at most once per download interval.
    async fn download_certificate(&self, sn: &str) -> Result<PublicKey, Error> {
        let unknown = Error::Signature(SignatureError::UnknownCertificate);
        let Some(c) = &self.inner.certs else {
            return Err(unknown);
        };
        let mut tried = c.downloads.lock().await;
        if let Some(key) = c.key(sn) {
            return Ok(key);
        }
        if tried.get(sn).is_some_and(|at| at.elapsed() < c.interval) {
            return Err(unknown);
        }
        tried.insert(sn.to_owned(), Instant::now());
        let biz = serde_json::to_string(&CertDownload::new(sn))
            .map_err(|e| Error::Config(format!("cannot encode biz_content: {e}")))?;
        let text = self.post(CertDownload::METHOD, biz, &[]).await?;
        let answer = Answer::read(&text, CertDownload::METHOD)?;
        // The certificate is read before the answer is verified: it is trusted only because it
        // chains to the root, and the answer must then verify with it or with a key held.
        let content = self.plain(answer.content)?;
        let (_, object) = checked(&content, |code| code == "10000")?;
        let downloaded: CertDownloadResponse =
            serde_json::from_value(object).map_err(|e| Error::decode(CertDownload::METHOD, e))?;
        let key = c.certs.accept_downloaded(sn, &downloaded.pem()?)?;
        let signer = match answer.cert_sn.as_deref() {
            Some(s) if s == sn => key.clone(),
            Some(s) if !s.is_empty() => c.key(s).ok_or(unknown)?,
            _ => c.current_key(),
        };
        signer.verify(answer.content, &answer.signature)?;
        c.hold(sn, key.clone());
        Ok(key)
    }

    /// Where a buyer's browser goes to log in (in the Alipay app): Alipay sends it back to
    /// `redirect_uri` with `?auth_code=…&state=…`; exchange the code with
    /// [`OauthToken::code`](crate::OauthToken::code). `state` (1 to 128 URL-safe characters)
    /// binds the answer to this browser.
    pub fn oauth_authorize_url(
        &self,
        redirect_uri: &str,
        scope: crate::api::oauth::AuthScope,
        state: &str,
    ) -> Result<String, Error> {
        check_state(state)?;
        let mut url = reqwest::Url::parse(&self.inner.authorize_url)
            .map_err(|e| Error::Config(format!("authorization URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("app_id", &self.inner.app_id)
            .append_pair("scope", scope.as_str())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        Ok(url.into())
    }

    /// The signed gateway URL a browser opens (page and mobile-web payments).
    pub fn page_url<R: PageRequest>(&self, request: &R) -> Result<String, Error> {
        let query = serde_urlencoded::to_string(self.page_params(request)?)
            .map_err(|e| Error::Config(format!("cannot encode the query: {e}")))?;
        Ok(format!("{}?{query}", self.inner.gateway))
    }

    /// The signed order string the Alipay app SDK takes (APP payments).
    pub fn order_string<R: PageRequest>(&self, request: &R) -> Result<String, Error> {
        serde_urlencoded::to_string(self.page_params(request)?)
            .map_err(|e| Error::Config(format!("cannot encode the order string: {e}")))
    }

    fn page_params<R: PageRequest>(&self, request: &R) -> Result<Vec<(String, String)>, Error> {
        let biz = serde_json::to_string(request)
            .map_err(|e| Error::Config(format!("cannot encode biz_content: {e}")))?;
        self.signed_params(request.method(), biz, &request.top_level())
    }
}

/// A login's `state`: 1 to 128 URL-safe characters.
fn check_state(state: &str) -> Result<(), Error> {
    if state.is_empty()
        || state.len() > 128
        || !state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    {
        return Err(Error::Config(
            "state must be 1 to 128 URL-safe characters".into(),
        ));
    }
    Ok(())
}

/// The parts of a gateway answer: the signed content as it stands, its signature, and (in
/// certificate mode) the SN of the certificate that signed it.
struct Answer<'a> {
    content: &'a str,
    signature: String,
    cert_sn: Option<String>,
}

impl<'a> Answer<'a> {
    fn read(text: &'a str, method: &str) -> Result<Self, Error> {
        let key = format!("{}_response", method.replace('.', "_"));
        let content = sign::response_content(text, &key)
            .or_else(|| sign::response_content(text, "error_response"))
            .ok_or_else(|| Error::decode("response", format!("no {key} in the answer")))?;
        let whole: Value = serde_json::from_str(text).map_err(|e| Error::decode("response", e))?;
        let signature = whole["sign"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or(Error::Signature(SignatureError::Missing))?
            .to_owned();
        let cert_sn = whole["alipay_cert_sn"].as_str().map(str::to_owned);
        Ok(Answer {
            content,
            signature,
            cert_sn,
        })
    }
}

/// The answer object and its `code`, or the refusal it says.
fn checked(content: &str, accepts: fn(&str) -> bool) -> Result<(String, Value), Error> {
    let object: Value = serde_json::from_str(content).map_err(|e| Error::decode("response", e))?;
    let code = object["code"].as_str().unwrap_or_default().to_owned();
    if accepts(&code) {
        return Ok((code, object));
    }
    let text_of = |k: &str| object[k].as_str().filter(|s| !s.is_empty());
    Err(Error::Gateway {
        code,
        sub_code: crate::SubCode::parse(text_of("sub_code").unwrap_or_default()),
        message: text_of("sub_msg")
            .or_else(|| text_of("msg"))
            .unwrap_or_default()
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_china_standard_time() {
        let t = time::macros::datetime!(2024-01-31 16:05:09 UTC);
        assert_eq!(china_time(t), "2024-02-01 00:05:09");
    }
}
