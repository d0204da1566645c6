//! [`Client`]: the one funnel of API v3 — sign, send, verify WeChat Pay's signature on the
//! answer, then decode it (or its `{code, message, detail}` error).

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::signing::{RequestSignature, WechatPaySignature};
use super::{ApiV3Key, MerchantKey, WechatPayKey};
use crate::Error;

/// WeChat Pay's API v3 gateway.
pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// An API v3 endpoint: its method, path (with query) and JSON body, and what it answers.
pub trait Request {
    /// What a 2xx answer decodes into ([`super::NoContent`] for 204 No Content).
    type Response: DeserializeOwned;
    /// `GET` or `POST`.
    const METHOD: &'static str;
    /// The path and query, encoded (e.g. `/v3/pay/transactions/out-trade-no/A1?mchid=1900000109`).
    fn path(&self, mch_id: &str) -> String;
    /// The method of this request, when it is not always [`Request::METHOD`] (`POST` to set,
    /// `PUT` to replace).
    fn method(&self) -> &'static str {
        Self::METHOD
    }
    /// The JSON body (POST), given the client's merchant id.
    fn body(&self, mch_id: &str) -> Option<serde_json::Value> {
        let _ = mch_id;
        None
    }
    /// Whether the body carries fields encrypted to WeChat Pay's key (then built with
    /// [`Request::encrypted_body`], and sent with `Wechatpay-Serial` naming that key).
    const ENCRYPTS: bool = false;
    /// The body of a request with encrypted fields: `encrypt` encrypts one (RSA-OAEP to WeChat
    /// Pay's current key).
    fn encrypted_body(
        &self,
        mch_id: &str,
        encrypt: &mut dyn FnMut(&str) -> Result<String, Error>,
    ) -> Result<Option<serde_json::Value>, Error> {
        let _ = encrypt;
        Ok(self.body(mch_id))
    }
}

/// An API v3 client: one merchant, shared by every clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    mch_id: String,
    serial_no: String,
    key: MerchantKey,
    api_v3_key: ApiV3Key,
    /// The WeChat Pay keys responses may be signed with, by id: the configured public key(s)
    /// and, in certificate mode, the downloaded platform certificates' keys.
    keys: RwLock<Vec<WechatPayKey>>,
    /// The id of the WeChat Pay public key configured (`PUB_KEY_ID_…`), sent in
    /// `Wechatpay-Serial` with every request: a merchant part-way through WeChat's switch from
    /// platform certificates to the public key gets answers signed with the key the request
    /// names, so it always names one the client holds.
    public_key_id: Option<String>,
    /// Certificate mode: platform certificates are downloaded (at first need, on an unknown
    /// serial, and when older than `CERTIFICATE_MAX_AGE`), one download at a time.
    certificates: bool,
    /// Held while downloading; the number of downloads made and when the last one was (Unix
    /// seconds), readable without it.
    refresh: tokio::sync::Mutex<()>,
    downloads: AtomicU64,
    downloaded_at: AtomicI64,
    /// Downloads tried (made or failed), and when the last one on demand started (Unix
    /// milliseconds): downloads on demand are at most one per `download_interval`.
    attempts: AtomicU64,
    attempted_at: AtomicI64,
    download_interval: Duration,
    base_url: String,
    http: reqwest::Client,
    /// Seconds added to this machine's clock ([`ClientBuilder::clock_offset`]).
    clock_offset: i64,
    /// Messages verified with the public key, and with a platform certificate.
    verified_public_key: AtomicU64,
    verified_certificate: AtomicU64,
}

/// At most one certificate download on demand per this long, by default.
pub const DEFAULT_DOWNLOAD_INTERVAL: Duration = Duration::from_secs(60);

/// Downloaded certificates older than this are downloaded again at the next need (WeChat
/// rotates them with overlap; 12 hours is what its SDKs do).
const CERTIFICATE_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The raw answer of a request.
struct Raw {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .inner
            .keys
            .read()
            .map(|k| k.iter().map(|k| k.id().to_owned()).collect())
            .unwrap_or_default();
        f.debug_struct("v3::Client")
            .field("mch_id", &self.inner.mch_id)
            .field("serial_no", &self.inner.serial_no)
            .field("key", &self.inner.key)
            .field("api_v3_key", &self.inner.api_v3_key)
            .field("wechat_pay_keys", &keys)
            .field("base_url", &self.inner.base_url)
            .finish()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
#[derive(Debug)]
pub struct ClientBuilder {
    mch_id: String,
    serial_no: String,
    key: MerchantKey,
    api_v3_key: ApiV3Key,
    keys: Vec<WechatPayKey>,
    certificates: bool,
    download_interval: Duration,
    base_url: String,
    timeout: Duration,
    clock_offset: i64,
}

impl Client {
    /// A client for merchant `mch_id` whose API certificate has `merchant_serial_no` and private
    /// key `merchant_private_key`, with its API v3 key.
    pub fn builder(
        mch_id: impl Into<String>,
        merchant_serial_no: impl Into<String>,
        merchant_private_key: MerchantKey,
        api_v3_key: ApiV3Key,
    ) -> ClientBuilder {
        ClientBuilder {
            mch_id: mch_id.into(),
            serial_no: merchant_serial_no.into(),
            key: merchant_private_key,
            api_v3_key,
            keys: Vec::new(),
            certificates: false,
            download_interval: DEFAULT_DOWNLOAD_INTERVAL,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
            clock_offset: 0,
        }
    }

    /// Now, by the client's clock: this machine's, plus [`ClientBuilder::clock_offset`] (Unix
    /// seconds). Requests are signed and answers checked for freshness with it.
    pub fn now(&self) -> i64 {
        unix_now().saturating_add(self.inner.clock_offset)
    }

    /// The merchant id.
    pub fn mch_id(&self) -> &str {
        &self.inner.mch_id
    }

    /// The API v3 key (for decrypting notifications).
    pub fn api_v3_key(&self) -> &ApiV3Key {
        &self.inner.api_v3_key
    }

    /// The merchant key (front-end parameters are signed with it).
    pub(crate) fn merchant_key(&self) -> &MerchantKey {
        &self.inner.key
    }

    /// The WeChat Pay key with this id, if known.
    pub fn wechat_pay_key(&self, id: &str) -> Option<WechatPayKey> {
        self.inner
            .keys
            .read()
            .ok()
            .and_then(|keys| keys.iter().find(|k| k.id() == id).cloned())
    }

    /// Checks WeChat Pay's signature (from `headers`) over `body` now. In certificate mode an
    /// unknown serial first downloads the certificates (once, whoever else is waiting) — but
    /// only for a message that passes every check needing no key (the headers, a fresh
    /// timestamp, not a probe, a signature of the right shape: see
    /// [`WechatPaySignature::check_form`]), and at most once per download interval
    /// ([`ClientBuilder::certificate_download_interval`]): a forged notification cannot make
    /// the merchant's credentials download certificates at will.
    pub async fn verify<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<(), Error> {
        let signature = WechatPaySignature::from_headers(header)?;
        self.not_own_serial(&signature)?;
        // A message signed with the configured public key needs no certificate: none is
        // downloaded for it (after WeChat's switch to the public key, none can be).
        let public = self.inner.public_key_id.as_deref() == Some(signature.serial.as_str());
        if self.inner.certificates && !public {
            signature.check_form(self.now())?;
            self.ensure_certificates(Some(&signature.serial)).await?;
        }
        let key = self.wechat_pay_key(&signature.serial);
        signature.verify(body, self.now(), |_| key.as_ref())?;
        self.count_verified(public);
        Ok(())
    }

    fn count_verified(&self, public: bool) {
        let counter = if public {
            &self.inner.verified_public_key
        } else {
            &self.inner.verified_certificate
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// How many answers and notifications this client (and its clones) verified, by the key
    /// that signed them: `(WeChat Pay public key, platform certificate)` — for a metric while
    /// WeChat moves the merchant from certificates to the public key.
    pub fn verified_by_key(&self) -> (u64, u64) {
        (
            self.inner.verified_public_key.load(Ordering::Relaxed),
            self.inner.verified_certificate.load(Ordering::Relaxed),
        )
    }

    /// A message whose `Wechatpay-Serial` is the merchant's own certificate's serial was not
    /// signed by WeChat Pay (which never signs with the merchant's key): said so, before any
    /// download.
    pub(crate) fn not_own_serial(&self, signature: &WechatPaySignature) -> Result<(), Error> {
        if signature.serial.eq_ignore_ascii_case(&self.inner.serial_no) {
            return Err(super::SignatureError::MerchantSerial(signature.serial.clone()).into());
        }
        Ok(())
    }

    /// Certificate mode: downloads the platform certificates if none were, if they are old, or
    /// if `serial` is not among them — one download at a time, callers that waited for it using
    /// its result, and none if one started less than the download interval ago (the caller then
    /// meets the keys as they are: an unknown serial stays unknown).
    pub async fn ensure_certificates(&self, serial: Option<&str>) -> Result<(), Error> {
        let i = &self.inner;
        let known = |s: Option<&str>| s.is_none_or(|s| self.wechat_pay_key(s).is_some());
        let fresh = || {
            i.downloads.load(Ordering::SeqCst) > 0
                && unix_now() - i.downloaded_at.load(Ordering::SeqCst)
                    < i64::try_from(CERTIFICATE_MAX_AGE.as_secs()).unwrap_or(i64::MAX)
        };
        if fresh() && known(serial) {
            return Ok(());
        }
        let seen = i.downloads.load(Ordering::SeqCst);
        let _turn = i.refresh.lock().await;
        // Someone downloaded while this caller waited: use that.
        if i.downloads.load(Ordering::SeqCst) != seen {
            return Ok(());
        }
        let now = unix_millis();
        let since = now.saturating_sub(i.attempted_at.load(Ordering::SeqCst));
        if i.attempts.load(Ordering::SeqCst) > 0
            && u128::try_from(since).unwrap_or(0) < i.download_interval.as_millis()
        {
            tracing::debug!("platform certificates downloaded recently; not again yet");
            return Ok(());
        }
        i.attempted_at.store(now, Ordering::SeqCst);
        self.download_now().await
    }

    /// Certificate mode: downloads the platform certificates now (waiting for a download in
    /// progress, if any, then making its own), whenever the last one was.
    pub async fn refresh_certificates(&self) -> Result<(), Error> {
        let _turn = self.inner.refresh.lock().await;
        self.download_now().await
    }

    /// How many certificate downloads this client (and its clones) tried, made or failed —
    /// for a metric: in normal operation a few a day.
    pub fn certificate_downloads(&self) -> u64 {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// Downloads (the caller holds `refresh`), counting the attempt.
    async fn download_now(&self) -> Result<(), Error> {
        let i = &self.inner;
        i.attempts.fetch_add(1, Ordering::SeqCst);
        self.download_certificates().await?;
        i.downloaded_at.store(unix_now(), Ordering::SeqCst);
        i.downloads.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Certificate mode: downloads the platform certificates every `every` in the background
    /// (WeChat's SDKs use 12 hours), so that a rotation is known before WeChat signs with the new
    /// certificate. The task ends when every clone of this client is dropped; a failed download
    /// is logged and tried again at the next tick (an unknown serial still downloads on demand).
    pub fn spawn_certificate_refresh(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let client = Client { inner };
                if let Err(e) = client.refresh_certificates().await {
                    tracing::warn!(error = %e, "platform certificates not refreshed");
                }
            }
        })
    }

    /// Downloads, decrypts and checks the platform certificates, and verifies the answer with
    /// them (the answer is signed by one of the certificates it carries).
    async fn download_certificates(&self) -> Result<(), Error> {
        let raw = self
            .send(&super::certificates::DownloadCertificates)
            .await?;
        if !raw.status.is_success() {
            return Err(error_of(&raw));
        }
        let list: super::certificates::CertificateList = serde_json::from_slice(&raw.body)
            .map_err(|e| Error::decode("certificates", e.to_string()))?;
        let mut downloaded = Vec::with_capacity(list.data.len());
        for entry in &list.data {
            downloaded.push(super::certificates::certificate_key(
                &self.inner.api_v3_key,
                entry,
            )?);
        }
        let header = |name: &str| raw.headers.get(name).and_then(|v| v.to_str().ok());
        let signature = WechatPaySignature::from_headers(header)?;
        let signer = downloaded
            .iter()
            .find(|k| k.id() == signature.serial)
            .cloned()
            .or_else(|| self.wechat_pay_key(&signature.serial));
        signature.verify(&raw.body, self.now(), |_| signer.as_ref())?;
        let mut keys = self
            .inner
            .keys
            .write()
            .map_err(|_| Error::Config("the key store is poisoned".into()))?;
        for key in downloaded {
            keys.retain(|k| k.id() != key.id());
            keys.push(key);
        }
        Ok(())
    }

    /// The key sensitive fields are encrypted to: the configured public key, else the platform
    /// certificate downloaded last.
    fn encryption_key(&self) -> Option<WechatPayKey> {
        let keys = self.inner.keys.read().ok()?;
        keys.iter()
            .find(|k| k.id().starts_with("PUB_KEY_ID_"))
            .or_else(|| keys.last())
            .cloned()
    }

    /// Signs and sends `request`; the answer as it came.
    async fn send<R: Request>(&self, request: &R) -> Result<Raw, Error> {
        let response = self.request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(Error::from)?;
        Ok(Raw {
            status,
            headers,
            body,
        })
    }

    /// A request to `path` signed over `signed_body` (the JSON body, or an upload's `meta`) by
    /// the client's clock, naming `serial` in `Wechatpay-Serial` when given; its body not set.
    fn signed(
        &self,
        method: &str,
        path: &str,
        signed_body: &str,
        serial: Option<&str>,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let i = &self.inner;
        let authorization = RequestSignature::request(&i.key, &i.mch_id, &i.serial_no)
            .method(method)
            .path(path)
            .body(signed_body)
            .sign_at(self.now(), &crate::client::nonce()?)
            .authorization();
        let http_method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::Config(format!("method {method}: {e}")))?;
        let mut builder = i
            .http
            .request(http_method, format!("{}{path}", i.base_url))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(serial) = serial {
            builder = builder.header(super::signing::headers::SERIAL, serial);
        }
        Ok(builder)
    }

    /// Signs and sends `request`; the response, its body not read yet.
    async fn request<R: Request>(&self, request: &R) -> Result<reqwest::Response, Error> {
        let i = &self.inner;
        let path = request.path(&i.mch_id);
        let mut serial = i.public_key_id.clone();
        let body = if R::ENCRYPTS {
            let key = self.encryption_key().ok_or_else(|| {
                Error::Config("no WeChat Pay key to encrypt sensitive fields with".into())
            })?;
            serial = Some(key.id().to_owned());
            let mut encrypt = |plain: &str| key.encrypt(plain).map_err(Error::from);
            request.encrypted_body(&i.mch_id, &mut encrypt)?
        } else {
            request.body(&i.mch_id)
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let method_name = request.method();
        let mut builder = self.signed(method_name, &path, &body, serial.as_deref())?;
        if method_name != "GET" {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let started = std::time::Instant::now();
        let response = builder.send().await.map_err(|e| {
            let e = e.without_url();
            tracing::debug!(method = R::METHOD, path = %path_only(&path), error = %e, "wechat pay v3 request failed");
            Error::from(e)
        })?;
        let status = response.status();
        tracing::debug!(
            method = R::METHOD,
            path = %path_only(&path),
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "wechat pay v3 request"
        );
        Ok(response)
    }

    /// Uploads an image for a complaint answer (`POST /v3/merchant-service/images/upload`, JPG,
    /// BMP or PNG of at most 2 MiB): its `media_id`, for
    /// [`RespondComplaint::image`](super::RespondComplaint::image).
    pub async fn upload_complaint_image(
        &self,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<String, Error> {
        self.upload("/v3/merchant-service/images/upload", filename, bytes)
            .await
    }

    /// Uploads an image for the merchant's materials (`POST /v3/merchant/media/upload`, JPG,
    /// BMP or PNG of at most 2 MiB): its `media_id`.
    pub async fn upload_media(&self, filename: &str, bytes: Vec<u8>) -> Result<String, Error> {
        self.upload("/v3/merchant/media/upload", filename, bytes)
            .await
    }

    /// The multipart upload WeChat Pay's media endpoints take: a `meta` part (`{filename,
    /// sha256}`, which is what the request signature covers) and the `file` part. The answer
    /// is verified like any other.
    async fn upload(&self, path: &str, filename: &str, bytes: Vec<u8>) -> Result<String, Error> {
        let upload = super::media::Upload::new(filename, bytes)?;
        let response = self
            .signed(
                "POST",
                path,
                upload.meta(),
                self.inner.public_key_id.as_deref(),
            )?
            .header(reqwest::header::CONTENT_TYPE, upload.content_type())
            .body(upload.into_body())
            .send()
            .await
            .map_err(|e| Error::from(e.without_url()))?;
        let raw = Raw {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.map_err(Error::from)?,
        };
        if !raw.status.is_success() {
            return Err(error_of(&raw));
        }
        let header = |name: &str| raw.headers.get(name).and_then(|v| v.to_str().ok());
        self.verify(header, &raw.body).await?;
        #[derive(serde::Deserialize)]
        struct Uploaded {
            media_id: String,
        }
        serde_json::from_slice::<Uploaded>(&raw.body)
            .map(|u| u.media_id)
            .map_err(|e| Error::decode("media_id", e.to_string()))
    }

    /// Downloads an image of a complaint (a `media_url` of its detail or negotiation) with a
    /// signed request to this client's gateway, whatever host the URL names; at most
    /// [`super::media::MAX_IMAGE_BYTES`] × 2.
    pub async fn download_complaint_image(&self, media_url: &str) -> Result<Vec<u8>, Error> {
        let url = reqwest::Url::parse(media_url)
            .map_err(|e| Error::decode("media_url", e.to_string()))?;
        if !url.path().starts_with("/v3/merchant-service/images/") {
            return Err(Error::decode(
                "media_url",
                "not a complaint image of WeChat Pay's",
            ));
        }
        let response = self.request(&FileDownload(url.path().to_owned())).await?;
        let status = response.status();
        let body = response.bytes().await.map_err(Error::from)?;
        if !status.is_success() {
            return Err(error_of(&Raw {
                status,
                headers: reqwest::header::HeaderMap::new(),
                body,
            }));
        }
        if body.len() > 2 * super::media::MAX_IMAGE_BYTES {
            return Err(Error::decode("image", "larger than any image WeChat keeps"));
        }
        Ok(body.to_vec())
    }

    /// Downloads the file of `link` with a signed request (from this client's gateway, whatever
    /// host the link names), checks its SHA-1 against the link's, and decompresses it.
    pub async fn download(&self, link: &super::BillLink, gzip: bool) -> Result<Vec<u8>, Error> {
        let mut file = Vec::new();
        self.download_to(link, &mut file).await?;
        if gzip {
            crate::client::gunzip(&file, crate::client::MAX_BILL_BYTES)
        } else {
            Ok(file)
        }
    }

    /// Downloads the file of `link` into `to` as it arrives, never holding it in memory, and
    /// returns the bytes written: the file as WeChat sends it (gzip-compressed if asked), to
    /// read with [`BillRows::open`](crate::BillRows::open). Its SHA-1 is checked against the
    /// link's once the last byte is in: on [`Err`], throw away what was written.
    pub async fn download_to<W: std::io::Write + ?Sized>(
        &self,
        link: &super::BillLink,
        to: &mut W,
    ) -> Result<u64, Error> {
        if !link.hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(Error::decode(
                "hash_type",
                format!("unsupported {:?}", link.hash_type),
            ));
        }
        let url = reqwest::Url::parse(&link.download_url)
            .map_err(|e| Error::decode("download_url", e.to_string()))?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut response = self.request(&FileDownload(path)).await?;
        if !response.status().is_success() {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(Error::from)?;
            return Err(error_of(&Raw {
                status,
                headers,
                body,
            }));
        }
        let mut sha1 =
            aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(Error::from)? {
            written += chunk.len() as u64;
            if written > crate::client::MAX_BILL_BYTES as u64 {
                return Err(Error::decode("bill", "too large"));
            }
            sha1.update(&chunk);
            to.write_all(&chunk)
                .map_err(|e| Error::decode("bill", format!("cannot write the file: {e}")))?;
        }
        let hex: String = sha1
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !hex.eq_ignore_ascii_case(link.hash_value.trim()) {
            return Err(Error::decode(
                "bill",
                format!("SHA-1 {hex} is not the announced {}", link.hash_value),
            ));
        }
        Ok(written)
    }

    /// The trade bill of a day, parsed.
    pub async fn trade_bill(&self, bill: &super::TradeBill) -> Result<crate::Bill, Error> {
        let link = self.execute(bill).await?;
        let file = self.download(&link, bill.gzip).await?;
        crate::Bill::parse(&String::from_utf8_lossy(&file))
    }

    /// The fund-flow bill of a day, parsed.
    pub async fn fund_flow_bill(
        &self,
        bill: &super::FundFlowBill,
    ) -> Result<crate::FundFlow, Error> {
        let link = self.execute(bill).await?;
        let file = self.download(&link, bill.gzip).await?;
        crate::FundFlow::parse(&String::from_utf8_lossy(&file))
    }

    /// Signs and sends `request`, verifies the answer's signature, and decodes it.
    pub async fn execute<R: Request>(&self, request: &R) -> Result<R::Response, Error> {
        if R::ENCRYPTS && self.inner.certificates {
            // Sensitive fields are encrypted to a certificate: have one.
            self.ensure_certificates(None).await?;
        }
        let raw = self.send(request).await?;
        if !raw.status.is_success() {
            return Err(error_of(&raw));
        }
        // Every answer with a body is verified before it is read.
        if !raw.body.is_empty() {
            let header = |name: &str| raw.headers.get(name).and_then(|v| v.to_str().ok());
            self.verify(header, &raw.body).await?;
        }
        let text = if raw.body.is_empty() {
            &b"null"[..]
        } else {
            &raw.body[..]
        };
        serde_json::from_slice(text).map_err(|e| Error::decode("body", format!("{e}")))
    }
}

/// A path without its query (a bill download's token stays out of the logs).
fn path_only(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

/// A signed GET of a file (the answer is the file, not JSON).
struct FileDownload(String);

impl Request for FileDownload {
    type Response = super::NoContent;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        self.0.clone()
    }
}

/// An error answer: `{code, message, detail}` with its status, or just the status.
fn error_of(raw: &Raw) -> Error {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<ErrorBody>(&raw.body) {
        Ok(e) => Error::V3Api {
            status: raw.status.as_u16(),
            code: super::V3ErrorCode::from_wire(&e.code),
            message: e.message,
            detail: e.detail,
        },
        Err(_) => Error::HttpStatus {
            status: raw.status.as_u16(),
        },
    }
}

impl ClientBuilder {
    /// WeChat Pay's public key and its id (`PUB_KEY_ID_…`), from the merchant platform: the
    /// key responses and notifications are verified with. Several may be given (during WeChat's
    /// migration from platform certificates, a certificate's key and the public key).
    pub fn wechat_pay_key(mut self, key: WechatPayKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Verify with platform certificates, downloaded from `/v3/certificates` (decrypted with the
    /// API v3 key) at first need, again on an unknown `Wechatpay-Serial` and when 12 hours old —
    /// shared by every clone, one download at a time. With a public key as well, both are
    /// accepted (WeChat's migration from certificates to the public key).
    pub fn platform_certificates(mut self) -> Self {
        self.certificates = true;
        self
    }

    /// Certificate mode: at most one download on demand (first need, an unknown serial, old
    /// certificates) per `interval` (default one minute), whatever asks for it. WeChat limits
    /// the merchant's downloads; a burst of messages with an unknown serial must not spend them.
    pub fn certificate_download_interval(mut self, interval: Duration) -> Self {
        self.download_interval = interval;
        self
    }

    /// The gateway (default [`DEFAULT_BASE_URL`]); point it at wiremock or the sandbox in tests.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Seconds to add to this machine's clock (negative: it runs ahead), for a machine whose
    /// clock cannot be fixed: requests are signed, and WeChat Pay's timestamps checked (within
    /// [`MAX_CLOCK_SKEW_SECS`](super::signing::MAX_CLOCK_SKEW_SECS)), by the corrected clock.
    /// A stale-signature error says how far off the clock looked.
    pub fn clock_offset(mut self, seconds: i64) -> Self {
        self.clock_offset = seconds;
        self
    }

    /// The whole-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client. Refuses to build without a WeChat Pay key to verify answers with.
    pub fn build(self) -> Result<Client, Error> {
        if self.mch_id.is_empty() || self.serial_no.is_empty() {
            return Err(Error::Config(
                "mch_id and the merchant serial number are required".into(),
            ));
        }
        if self.keys.is_empty() && !self.certificates {
            return Err(Error::Config(
                "a WeChat Pay public key (or platform certificates) is required to verify answers"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("wechat-pay-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the http client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                mch_id: self.mch_id,
                serial_no: self.serial_no,
                key: self.key,
                api_v3_key: self.api_v3_key,
                public_key_id: self
                    .keys
                    .iter()
                    .map(WechatPayKey::id)
                    .find(|id| id.starts_with(PUBLIC_KEY_ID_PREFIX))
                    .map(str::to_owned),
                keys: RwLock::new(self.keys),
                certificates: self.certificates,
                refresh: tokio::sync::Mutex::new(()),
                downloads: AtomicU64::new(0),
                downloaded_at: AtomicI64::new(0),
                attempts: AtomicU64::new(0),
                attempted_at: AtomicI64::new(0),
                download_interval: self.download_interval,
                base_url: self.base_url.trim_end_matches('/').to_owned(),
                http,
                clock_offset: self.clock_offset,
                verified_public_key: AtomicU64::new(0),
                verified_certificate: AtomicU64::new(0),
            }),
        })
    }
}

/// How WeChat Pay names its public keys' ids (a platform certificate's is a hex serial).
const PUBLIC_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";

/// Unix milliseconds now.
fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
