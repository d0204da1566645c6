//! [`Client`]: the one funnel every call goes through.
//!
//! `execute` writes the endpoint's parameters, adds `appid` / `mch_id` / `nonce_str` /
//! `sign_type` / `sign`, sends them as XML, checks `return_code`, verifies the reply's signature,
//! checks `result_code` and decodes the typed response. It never retries on its own: whether a
//! retry is safe depends on the endpoint, and [`Error::is_retryable`] tells the caller.

use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::api::{Download, Endpoint, Envelope, FromReply, Request, SandboxSignKey};
use crate::notify::{self, NotifySignType, PaymentNotification, RefundNotification};
use crate::pay_params::{self, AppParams, JsapiParams};
use crate::xml::{MAX_BODY_BYTES, XmlError};
use crate::{ApiKey, ClientCertificate, ErrCode, Error, Params, SignType};

/// The production gateway.
pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// The largest bill accepted, after decompression (256 MiB).
pub const MAX_BILL_BYTES: usize = 256 * 1024 * 1024;

/// Where WeChat's v2 sandbox lives. WeChat moved it; several SDKs still call the old path, which
/// no longer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxPrefix {
    /// `/xdc/apiv2sandbox`: the current sandbox.
    Current,
    /// `/sandboxnew`: the original sandbox path.
    Legacy,
}

impl SandboxPrefix {
    /// The path prefix.
    pub const fn as_str(self) -> &'static str {
        match self {
            SandboxPrefix::Current => "/xdc/apiv2sandbox",
            SandboxPrefix::Legacy => "/sandboxnew",
        }
    }
}

/// A WeChat Pay v2 client for one app id and merchant. Cheap to clone (an `Arc` inside), `Send`
/// and `Sync`; its `Debug` output never shows the API key.
///
/// ```no_run
/// # async fn run() -> Result<(), wechat_pay::Error> {
/// use wechat_pay::{ApiKey, Client, Fen, SignType, Trade, UnifiedOrder};
/// let client = Client::builder("wx2421b1c4370ec43b", "10000100", ApiKey::new("192006250b4c09247ec02edce69f6a2d"))
///     .sign_type(SignType::HmacSha256)
///     .build()?;
/// let order = UnifiedOrder::new(
///     Trade::native("sku-42"), "Cola", "20240101000001", Fen::new(350), "203.0.113.7",
///     "https://shop.example/notify/wechat",
/// );
/// let created = client.execute(&order).await?;
/// println!("show this as a QR code: {}", created.code_url.unwrap_or_default());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    app_id: String,
    mch_id: String,
    api_key: ApiKey,
    sign_type: SignType,
    notify_sign_type: NotifySignType,
    base_url: String,
    /// `http://` base URL: a local emulator, where mutual TLS cannot apply.
    plain_http: bool,
    http: reqwest::Client,
    /// The same client with the merchant certificate, when one is configured.
    cert_http: Option<reqwest::Client>,
    sandbox: Option<Sandbox>,
}

struct Sandbox {
    prefix: SandboxPrefix,
    /// Fetched once, on first use; concurrent first calls share one fetch.
    key: OnceCell<ApiKey>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Client")
            .field("app_id", &i.app_id)
            .field("mch_id", &i.mch_id)
            .field("api_key", &i.api_key)
            .field("sign_type", &i.sign_type)
            .field("base_url", &i.base_url)
            .field("certificate", &i.cert_http.is_some())
            .field("sandbox", &i.sandbox.as_ref().map(|s| s.prefix))
            .finish()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    app_id: String,
    mch_id: String,
    api_key: ApiKey,
    sign_type: SignType,
    notify_sign_type: Option<NotifySignType>,
    base_url: String,
    timeout: Duration,
    connect_timeout: Duration,
    certificate: Option<ClientCertificate>,
    roots: Vec<Vec<u8>>,
    sandbox: Option<SandboxPrefix>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("app_id", &self.app_id)
            .field("mch_id", &self.mch_id)
            .field("api_key", &self.api_key)
            .field("sign_type", &self.sign_type)
            .field("base_url", &self.base_url)
            .field("certificate", &self.certificate)
            .field("extra_roots", &self.roots.len())
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

impl ClientBuilder {
    /// The signature type for requests and replies (default `MD5`).
    pub fn sign_type(mut self, sign_type: SignType) -> Self {
        self.sign_type = sign_type;
        self
    }

    /// How payment notifications are verified. By default with the client's own sign type
    /// (WeChat signs a payment's notification as its order was signed), so a notification
    /// signed any other way is refused; [`NotifySignType::FromBody`] accepts either type the
    /// body names — an explicit choice, e.g. while switching from MD5 to HMAC-SHA256.
    pub fn notify_sign_type(mut self, policy: NotifySignType) -> Self {
        self.notify_sign_type = Some(policy);
        self
    }

    /// The gateway (default [`DEFAULT_BASE_URL`]); point it at wiremock or the sandbox emulator
    /// in tests.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The whole-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The merchant certificate, needed by refund, reverse and downloadfundflow.
    pub fn certificate(mut self, certificate: ClientCertificate) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// Also trusts this root certificate (PEM; a bundle of several is fine) for the gateway's
    /// TLS certificate, beside the platform's roots: a private gateway or a test's own CA.
    /// Servers can use the standard `SSL_CERT_FILE` instead.
    pub fn root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Talks to WeChat's v2 sandbox: every path is prefixed, and requests are signed with the
    /// key fetched from `{prefix}/pay/getsignkey` on first use.
    pub fn sandbox(mut self, prefix: SandboxPrefix) -> Self {
        self.sandbox = Some(prefix);
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        for (name, value) in [("app_id", &self.app_id), ("mch_id", &self.mch_id)] {
            if value.trim().is_empty() {
                return Err(Error::Config(format!("{name} is empty")));
            }
        }
        if self.api_key.expose().is_empty() {
            return Err(Error::Config("api_key is empty".into()));
        }
        let url = reqwest::Url::parse(&self.base_url)
            .map_err(|e| Error::Config(format!("invalid base_url {:?}: {e}", self.base_url)))?;
        let plain_http = match url.scheme() {
            "https" => false,
            "http" => true,
            other => {
                return Err(Error::Config(format!(
                    "unsupported base_url scheme {other:?}"
                )));
            }
        };
        let mut roots = Vec::new();
        for pem in &self.roots {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Config(format!("cannot read the root certificate: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Config(
                    "the root certificate holds no PEM CERTIFICATE".into(),
                ));
            }
            roots.extend(certs);
        }
        let base = || {
            reqwest::Client::builder()
                .timeout(self.timeout)
                .connect_timeout(self.connect_timeout)
                .user_agent(concat!("wechat-pay-rs/", env!("CARGO_PKG_VERSION")))
                .tls_certs_merge(roots.clone())
        };
        let http = base()
            .build()
            .map_err(|e| Error::Config(format!("cannot build the http client: {e}")))?;
        let cert_http = match &self.certificate {
            None => None,
            Some(cert) => Some(
                base()
                    .identity(cert.identity()?)
                    .build()
                    .map_err(|e| Error::Config(format!("cannot build the tls client: {e}")))?,
            ),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                app_id: self.app_id,
                mch_id: self.mch_id,
                api_key: self.api_key,
                sign_type: self.sign_type,
                notify_sign_type: self
                    .notify_sign_type
                    .unwrap_or(NotifySignType::Forced(self.sign_type)),
                base_url: self.base_url.trim_end_matches('/').to_owned(),
                plain_http,
                http,
                cert_http,
                sandbox: self.sandbox.map(|prefix| Sandbox {
                    prefix,
                    key: OnceCell::new(),
                }),
            }),
        })
    }
}

impl Client {
    /// Starts configuring a client for the app id (Official Account, Mini Program or mobile
    /// app), the merchant id and the merchant's API key.
    pub fn builder(
        app_id: impl Into<String>,
        mch_id: impl Into<String>,
        api_key: ApiKey,
    ) -> ClientBuilder {
        ClientBuilder {
            app_id: app_id.into(),
            mch_id: mch_id.into(),
            api_key,
            sign_type: SignType::Md5,
            notify_sign_type: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            certificate: None,
            roots: Vec::new(),
            sandbox: None,
        }
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The merchant id.
    pub fn mch_id(&self) -> &str {
        &self.inner.mch_id
    }

    /// The configured signature type.
    pub fn sign_type(&self) -> SignType {
        self.inner.sign_type
    }

    /// Sends a request and returns its verified, typed response.
    pub async fn execute<R: Request>(&self, request: &R) -> Result<R::Response, Error> {
        let sign_type = R::SIGN_TYPE.unwrap_or(self.inner.sign_type);
        let key = match R::ENVELOPE {
            Envelope::SignKey => &self.inner.api_key,
            Envelope::Merchant => self.signing_key().await?,
        };
        let body = self.send(request, key, sign_type, MAX_BODY_BYTES).await?;
        decode_reply(Params::from_xml(&body)?, key, sign_type)
    }

    /// Downloads and parses a bill. An XML body instead of the file is WeChat's error
    /// (`No Bill Exist`…) and is returned as one. A large bill is better written to a file with
    /// [`download_to`](Self::download_to) and read with [`BillRows`](crate::BillRows).
    pub async fn download<D: Download>(&self, request: &D) -> Result<D::Output, Error> {
        let sign_type = D::SIGN_TYPE.unwrap_or(self.inner.sign_type);
        let key = self.signing_key().await?;
        let body = self.send(request, key, sign_type, MAX_BILL_BYTES).await?;
        let file = if body.starts_with(&[0x1f, 0x8b]) {
            gunzip(&body, MAX_BILL_BYTES)?
        } else {
            body
        };
        if file.trim_ascii_start().starts_with(b"<xml") {
            return Err(xml_instead_of_file(&file));
        }
        let text = String::from_utf8(file).map_err(|_| Error::decode("bill", "not utf-8"))?;
        D::parse(&text)
    }

    /// Downloads a bill into `to` as it arrives, never holding the file in memory, and returns
    /// the bytes written: the file as WeChat sends it (gzip-compressed if asked), to read with
    /// [`BillRows::open`](crate::BillRows::open). WeChat's XML error in place of the file
    /// (`No Bill Exist`…) is returned as that error, and nothing is written.
    pub async fn download_to<D: Download, W: std::io::Write + ?Sized>(
        &self,
        request: &D,
        to: &mut W,
    ) -> Result<u64, Error> {
        let sign_type = D::SIGN_TYPE.unwrap_or(self.inner.sign_type);
        let key = self.signing_key().await?;
        let mut response = self.post(request, key, sign_type).await?;
        // Enough of the start to tell WeChat's XML error from a file.
        let mut head = Vec::new();
        while head.trim_ascii_start().len() < 5 {
            match response.chunk().await? {
                Some(chunk) => head.extend_from_slice(&chunk),
                None => break,
            }
        }
        if head.trim_ascii_start().starts_with(b"<xml") {
            while let Some(chunk) = response.chunk().await? {
                if head.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large(head.len() + chunk.len(), MAX_BODY_BYTES));
                }
                head.extend_from_slice(&chunk);
            }
            return Err(xml_instead_of_file(&head));
        }
        let write = |to: &mut W, bytes: &[u8]| {
            to.write_all(bytes)
                .map_err(|e| Error::decode("bill", format!("cannot write the file: {e}")))
        };
        write(to, &head)?;
        let mut written = head.len() as u64;
        while let Some(chunk) = response.chunk().await? {
            written += chunk.len() as u64;
            if written > MAX_BILL_BYTES as u64 {
                return Err(too_large(
                    usize::try_from(written).unwrap_or(usize::MAX),
                    MAX_BILL_BYTES,
                ));
            }
            write(to, &chunk)?;
        }
        Ok(written)
    }

    /// Verifies a payment notification (the raw POST body) and checks that it is for this
    /// client's app id and merchant. Reply with [`NotifyReply`](crate::NotifyReply).
    ///
    /// WeChat v2 notifications carry no signed timestamp, so there is no freshness window to
    /// check: a replayed notification is an exact duplicate, which the payment state machine
    /// must absorb (it is the same event).
    pub async fn verify_payment_notification(
        &self,
        body: &[u8],
    ) -> Result<PaymentNotification, Error> {
        let key = self.signing_key().await?;
        match notify::verify_payment_notification(body, key, self.inner.notify_sign_type) {
            Ok(n) => {
                self.check_account(&n.app_id, &n.mch_id)?;
                Ok(n)
            }
            Err(Error::PaymentFailed(f)) => {
                self.check_account(&f.app_id, &f.mch_id)?;
                Err(Error::PaymentFailed(f))
            }
            Err(e) => Err(e),
        }
    }

    /// Decrypts a refund notification (the raw POST body) and checks that it is for this
    /// client's app id and merchant.
    pub async fn decrypt_refund_notification(
        &self,
        body: &[u8],
    ) -> Result<RefundNotification, Error> {
        let key = self.signing_key().await?;
        let n = notify::decrypt_refund_notification(body, key)?;
        self.check_account(&n.app_id, &n.mch_id)?;
        Ok(n)
    }

    /// The `wx.requestPayment` / `WeixinJSBridge` parameters for a JSAPI or Mini Program
    /// payment, signed with the client's sign type.
    pub fn jsapi_params(&self, prepay_id: &str) -> Result<JsapiParams, Error> {
        Ok(pay_params::jsapi_params(
            &self.inner.app_id,
            prepay_id,
            &self.inner.api_key,
            self.inner.sign_type,
            unix_now(),
            &nonce()?,
        ))
    }

    /// The parameters the WeChat mobile SDK's `PayReq` needs for an APP payment.
    pub fn app_params(&self, prepay_id: &str) -> Result<AppParams, Error> {
        Ok(pay_params::app_params(
            &self.inner.app_id,
            &self.inner.mch_id,
            prepay_id,
            &self.inner.api_key,
            self.inner.sign_type,
            unix_now(),
            &nonce()?,
        ))
    }

    fn check_account(&self, app_id: &str, mch_id: &str) -> Result<(), Error> {
        if mch_id != self.inner.mch_id {
            return Err(Error::AccountMismatch {
                field: "mch_id",
                value: mch_id.to_owned(),
            });
        }
        if app_id != self.inner.app_id {
            return Err(Error::AccountMismatch {
                field: "appid",
                value: app_id.to_owned(),
            });
        }
        Ok(())
    }

    /// The key requests are signed with: the API key, or in sandbox mode the sandbox key.
    async fn signing_key(&self) -> Result<&ApiKey, Error> {
        match &self.inner.sandbox {
            None => Ok(&self.inner.api_key),
            Some(sandbox) => {
                sandbox
                    .key
                    .get_or_try_init(|| async {
                        let key = &self.inner.api_key;
                        let body = self
                            .send(&SandboxSignKey, key, SignType::Md5, MAX_BODY_BYTES)
                            .await?;
                        let reply: crate::api::SandboxSignKeyResponse =
                            decode_reply(Params::from_xml(&body)?, key, SignType::Md5)?;
                        Ok(reply.sandbox_signkey)
                    })
                    .await
            }
        }
    }

    fn http_for(&self, needs_certificate: bool) -> Result<&reqwest::Client, Error> {
        let i = &self.inner;
        match (&i.cert_http, needs_certificate) {
            (Some(cert_http), true) => Ok(cert_http),
            (None, true) if !i.plain_http => Err(Error::Config(
                "this endpoint needs the merchant certificate: configure \
                 ClientBuilder::certificate (apiclient_cert.p12 or the PEM pair)"
                    .into(),
            )),
            _ => Ok(&i.http),
        }
    }

    fn url(&self, path: &str) -> String {
        let prefix = self
            .inner
            .sandbox
            .as_ref()
            .map_or("", |s| s.prefix.as_str());
        format!("{}{}{}", self.inner.base_url, prefix, path)
    }

    /// Signs and posts an endpoint's parameters; returns the reply body.
    async fn send<E: Endpoint>(
        &self,
        endpoint: &E,
        key: &ApiKey,
        sign_type: SignType,
        limit: usize,
    ) -> Result<Vec<u8>, Error> {
        let mut response = self.post(endpoint, key, sign_type).await?;
        if let Some(len) = response.content_length() {
            if len > limit as u64 {
                return Err(too_large(usize::try_from(len).unwrap_or(usize::MAX), limit));
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > limit {
                return Err(too_large(body.len() + chunk.len(), limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Signs and posts `endpoint`'s request; the response, once its status says success.
    async fn post<E: Endpoint>(
        &self,
        endpoint: &E,
        key: &ApiKey,
        sign_type: SignType,
    ) -> Result<reqwest::Response, Error> {
        let http = self.http_for(E::NEEDS_CERTIFICATE)?;
        let mut params = Params::new();
        endpoint.write_params(&mut params);
        if E::ENVELOPE == Envelope::Merchant {
            params.insert("appid", self.inner.app_id.as_str());
            params.insert("sign_type", sign_type.as_str());
        }
        params.insert("mch_id", self.inner.mch_id.as_str());
        params.insert("nonce_str", nonce()?);
        params.sign(key, sign_type);

        tracing::debug!(path = E::PATH, "wechat pay request");
        let response = http
            .post(self.url(E::PATH))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(params.to_xml())
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(
                path = E::PATH,
                status = status.as_u16(),
                "wechat pay http error"
            );
            return Err(Error::HttpStatus {
                status: status.as_u16(),
            });
        }
        Ok(response)
    }
}

fn too_large(size: usize, limit: usize) -> Error {
    Error::Xml(XmlError::TooLarge { size, limit })
}

/// WeChat's XML answer where a file was expected: its error.
pub(crate) fn xml_instead_of_file(xml: &[u8]) -> Error {
    let params = match Params::from_xml(xml) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    match params.get("return_code") {
        Some("SUCCESS") => match params.get("err_code") {
            Some(code) => Error::Business {
                err_code: ErrCode::from_wire(code),
                err_code_des: params.get("err_code_des").unwrap_or_default().to_owned(),
            },
            None => Error::decode("bill", "an xml reply instead of the file"),
        },
        _ => protocol_error(&params),
    }
}

fn protocol_error(params: &Params) -> Error {
    Error::Protocol {
        return_msg: params
            .get("return_msg")
            .unwrap_or("return_code is not SUCCESS")
            .to_owned(),
    }
}

/// The fixed order of checks on every reply: `return_code`, then the signature (over every field
/// received), then `result_code`, then the typed decode.
pub(crate) fn decode_reply<T: FromReply>(
    params: Params,
    key: &ApiKey,
    sign_type: SignType,
) -> Result<T, Error> {
    if params.get("return_code") != Some("SUCCESS") {
        return Err(protocol_error(&params));
    }
    if T::SIGNED {
        params.verify(key, sign_type)?;
    }
    match params.get("result_code") {
        None | Some("SUCCESS") => T::from_params(params),
        Some(_) => {
            let err_code = ErrCode::from_wire(params.get("err_code").unwrap_or_default());
            let err_code_des = params.get("err_code_des").unwrap_or_default().to_owned();
            T::from_business_failure(err_code, err_code_des, params)
        }
    }
}

pub(crate) fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::decode("bill", format!("cannot decompress: {e}")))?;
    if out.len() > limit {
        return Err(Error::decode("bill", format!("larger than {limit} bytes")));
    }
    Ok(out)
}

/// 32 random hex characters: unique per request, as `nonce_str` must be.
pub(crate) fn nonce() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Config(format!("the system random source failed: {e}")))?;
    let mut out = [0u8; 64];
    Ok(crate::sign::upper_hex(&bytes, &mut out).to_owned())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
