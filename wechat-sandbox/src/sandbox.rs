//! [`Sandbox`]: a running emulator — its base URL, the identities it knows, and the control
//! operations (pay, complete a refund, mint login codes, act as a WeChat user, look at what was
//! sent) as typed methods — and [`SandboxBuilder`], which starts one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alipay::{PrivateKey, PublicKey};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wechat_mp::Secret;
use wechat_pay::ApiKey;

use crate::config::{
    AlipayApp, Merchant, MerchantV3, MpApp, SandboxConfig, WechatPayIdentity, random_token,
};
use crate::control::{
    self, Channel, CodeKind, CodeRequest, ComplaintRequest, ControlError, MessageFilter, Paid,
    PayRequest, PaymentCodeRequest, RefundCompleted,
};
use crate::faults::FaultRequest;
use crate::mp::events::{EventOutcome, EventRequest};
use crate::notifier::DeliveryLog;
use crate::payment_codes::Behaviour;
use crate::server::HttpLimits;
use crate::state::SentMessage;
use crate::{SandboxError, SandboxState, app_with_limits};

/// Configures a [`Sandbox`]; see [`Sandbox::builder`].
pub struct SandboxBuilder {
    merchants: Vec<Merchant>,
    merchants_v3: Vec<MerchantV3>,
    wechatpay_key: Option<(wechat_pay::v3::MerchantKey, String)>,
    mp_apps: Vec<MpApp>,
    alipay_apps: Vec<AlipayApp>,
    alipay_key: Option<PrivateKey>,
    time_scale: f64,
    refund_delay: Option<Duration>,
    sign_probe_rate: f64,
    public_url: Option<String>,
    db: Option<String>,
    limits: HttpLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    listen: String,
    listener: Option<TcpListener>,
}

impl std::fmt::Debug for SandboxBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxBuilder")
            .field("merchants", &self.merchants)
            .field("mp_apps", &self.mp_apps)
            .field("alipay_apps", &self.alipay_apps)
            .field("time_scale", &self.time_scale)
            .field("refund_delay", &self.refund_delay)
            .field("sign_probe_rate", &self.sign_probe_rate)
            .field("db", &self.db)
            .field("tls", &self.tls.is_some())
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl SandboxBuilder {
    /// A WeChat Pay merchant: its app id, merchant id and API key (repeatable).
    pub fn merchant(
        mut self,
        app_id: impl Into<String>,
        mch_id: impl Into<String>,
        api_key: ApiKey,
    ) -> Self {
        self.merchants.push(Merchant {
            app_id: app_id.into(),
            mch_id: mch_id.into(),
            api_key,
        });
        self
    }

    /// A WeChat Pay API v3 merchant (repeatable).
    pub fn merchant_v3(mut self, merchant: MerchantV3) -> Self {
        self.merchants_v3.push(merchant);
        self
    }

    /// The sandbox's own WeChat Pay key and its id (`PUB_KEY_ID_…`); generated when not set.
    pub fn wechatpay_key(
        mut self,
        key: wechat_pay::v3::MerchantKey,
        key_id: impl Into<String>,
    ) -> Self {
        self.wechatpay_key = Some((key, key_id.into()));
        self
    }

    /// A WeChat MP app (Official Account or Mini Program; repeatable).
    pub fn mp_app(mut self, app: MpApp) -> Self {
        self.mp_apps.push(app);
        self
    }

    /// An Alipay app and the public key its requests are verified with (repeatable).
    pub fn alipay_app(mut self, app_id: impl Into<String>, app_public_key: PublicKey) -> Self {
        self.alipay_apps
            .push(AlipayApp::new(app_id, app_public_key));
        self
    }

    /// An Alipay app as configured (certificate mode, content encryption, its seller id…).
    pub fn alipay_app_config(mut self, app: AlipayApp) -> Self {
        self.alipay_apps.push(app);
        self
    }

    /// An Alipay app in certificate mode: the emulator issues its app certificate and answers
    /// it with certificates ([`Sandbox::alipay_certificates`]).
    pub fn alipay_app_with_certificates(
        self,
        app_id: impl Into<String>,
        app_public_key: PublicKey,
    ) -> Self {
        self.alipay_app_config(AlipayApp::new(app_id, app_public_key).with_certificates())
    }

    /// An Alipay app whose requests may be encrypted with `aes_key` (content encryption).
    pub fn alipay_app_with_aes(
        mut self,
        app_id: impl Into<String>,
        app_public_key: PublicKey,
        aes_key: ::alipay::AesKey,
    ) -> Self {
        self.alipay_apps
            .push(AlipayApp::new(app_id, app_public_key).with_aes_key(aes_key));
        self
    }

    /// The gateway's own Alipay key (answers and notifications are signed with it); a fresh one
    /// is made when not set.
    pub fn alipay_key(mut self, key: PrivateKey) -> Self {
        self.alipay_key = Some(key);
        self
    }

    /// Divides every notification retry interval (default 1: the providers' real schedules).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// WeChat refunds complete by themselves after this long (scaled); by default only through
    /// [`Sandbox::complete_refund`].
    pub fn refund_delay(mut self, delay: Option<Duration>) -> Self {
        self.refund_delay = delay;
        self
    }

    /// Precedes this share (0 to 1) of v3 notifications with a signature probe: a copy signed
    /// with a deliberately wrong signature, which the app must refuse (default 0).
    pub fn sign_probe_rate(mut self, rate: f64) -> Self {
        self.sign_probe_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// The URL the sandbox hands out in links (H5 pages, QR contents); default its own.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Keeps orders and refunds in this SQLite file across restarts.
    pub fn db(mut self, path: impl Into<String>) -> Self {
        self.db = Some(path.into());
        self
    }

    /// HTTP limits (timeouts, body size, connections).
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves HTTPS with this acceptor; `/secapi/*` then requires a client certificate its
    /// verifier accepted (see [`crate::tls::GatewayPki`]).
    pub fn tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// The address to listen on (default `127.0.0.1:0`: any free port).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// Serves on this listener instead of binding one.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Starts serving in the background. Without any merchant, MP app or Alipay app, one demo
    /// identity of each is made.
    pub async fn start(self) -> Result<Sandbox, SandboxError> {
        let listener = match self.listener {
            Some(l) => l,
            None => TcpListener::bind(&self.listen).await?,
        };
        let addr = listener.local_addr()?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let key = |e: alipay::Error| SandboxError::Key(e.to_string());
        let token = |len| {
            random_token(len).ok_or_else(|| SandboxError::Key("the random source failed".into()))
        };
        let mut merchants = self.merchants;
        if merchants.is_empty() {
            merchants.push(Merchant {
                app_id: "wxsandbox00000001".into(),
                mch_id: "1900000109".into(),
                api_key: ApiKey::new(token(32)?),
            });
        }
        let mut mp_apps = self.mp_apps;
        if mp_apps.is_empty() {
            mp_apps.push(MpApp::new(
                "wxsandbox00000001",
                Secret::new(token(32)?),
                Secret::new(token(16)?),
            ));
        }
        let mut alipay_apps = self.alipay_apps;
        let mut demo_alipay_app_key = None;
        if alipay_apps.is_empty() {
            let app_key = PrivateKey::generate().map_err(key)?;
            alipay_apps.push(AlipayApp::new("2021000000000001", app_key.public_key()));
            demo_alipay_app_key = Some(app_key);
        }
        let alipay_key = match self.alipay_key {
            Some(k) => k,
            None => PrivateKey::generate().map_err(key)?,
        };
        let wechatpay = {
            let v3 = |e: wechat_pay::v3::KeyError| SandboxError::Key(e.to_string());
            let (key, key_id) = match self.wechatpay_key {
                Some(k) => k,
                None => (
                    wechat_pay::v3::MerchantKey::generate().map_err(v3)?,
                    format!("PUB_KEY_ID_{}", crate::state::digits(28)),
                ),
            };
            WechatPayIdentity {
                public_key_pem: key.public_key_pem().map_err(v3)?,
                key: Arc::new(key),
                key_id,
            }
        };
        let config = SandboxConfig {
            merchants,
            merchants_v3: self.merchants_v3,
            wechatpay,
            mp_apps,
            alipay_apps,
            alipay_key,
            time_scale: self.time_scale,
            refund_delay: self.refund_delay,
            sign_probe_rate: self.sign_probe_rate,
            public_url: self
                .public_url
                .unwrap_or_else(|| url.clone())
                .trim_end_matches('/')
                .to_owned(),
        };
        let shutdown = CancellationToken::new();
        let state = SandboxState::new(config, self.db.as_deref(), shutdown.clone()).await?;
        let service = app_with_limits(state.clone(), &self.limits);
        let (stop, limits, tls) = (shutdown.clone(), self.limits, self.tls);
        let server = tokio::spawn(async move {
            crate::server::serve(listener, service, &limits, tls, stop.cancelled_owned()).await;
        });
        Ok(Sandbox {
            url,
            addr,
            state,
            demo_alipay_app_key,
            shutdown,
            server,
        })
    }
}

/// A sandbox serving in the background. Dropping it leaves it running until the runtime ends;
/// [`Sandbox::shutdown`] stops it and its notifications.
#[derive(Debug)]
pub struct Sandbox {
    url: String,
    addr: SocketAddr,
    state: Arc<SandboxState>,
    demo_alipay_app_key: Option<PrivateKey>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Sandbox {
    /// Starts configuring a sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            merchants: Vec::new(),
            merchants_v3: Vec::new(),
            wechatpay_key: None,
            mp_apps: Vec::new(),
            alipay_apps: Vec::new(),
            alipay_key: None,
            time_scale: 1.0,
            refund_delay: None,
            sign_probe_rate: 0.0,
            public_url: None,
            db: None,
            limits: HttpLimits::default(),
            tls: None,
            listen: "127.0.0.1:0".into(),
            listener: None,
        }
    }

    /// The base URL to point clients at (`http://127.0.0.1:port`; `https://` with TLS). WeChat
    /// Pay and WeChat MP clients take it as it is; Alipay's gateway is `{base_url}/gateway.do`.
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The merchants and apps it knows (demo ones included).
    pub fn config(&self) -> &SandboxConfig {
        &self.state.config
    }

    /// The gateway's Alipay public key (what Alipay clients verify with).
    pub fn alipay_public_key(&self) -> PublicKey {
        self.state.config.alipay_key.public_key()
    }

    /// What an Alipay app in certificate mode is configured with: its app certificate,
    /// Alipay's current certificate and the root, with their SNs.
    pub fn alipay_certificates(
        &self,
        app_id: &str,
    ) -> Result<crate::alipay::certs::AppCertificates, ControlError> {
        control::alipay_certificates(&self.state, app_id)
    }

    /// A one-time Alipay buyer-login code for `user_id` (a new buyer when `None`) of `app_id`:
    /// what the Mini Program's `my.getAuthCode` or the web authorization page hands the app.
    /// The code and the buyer's user id.
    pub fn alipay_auth_code(
        &self,
        app_id: &str,
        user_id: Option<&str>,
    ) -> Result<(String, String), ControlError> {
        control::alipay_auth_code(
            &self.state,
            &control::AlipayCodeRequest {
                app_id: app_id.to_owned(),
                user_id: user_id.map(str::to_owned),
            },
        )
    }

    /// Where v3 merchant `mch_id`'s `PROFITSHARING.*` notifications go from now on (on WeChat,
    /// a setting of the merchant platform).
    pub fn set_profit_sharing_notify_url(&self, mch_id: &str, url: Option<&str>) {
        crate::wxpay_v3::profit_sharing::set_notify_url(
            &self.state,
            mch_id,
            url.map(str::to_owned),
        );
    }

    /// Each WeChat Pay merchant's and sub-merchant's money, in fen: paid, refunded, shared,
    /// returned, unfrozen, still frozen, and the balance.
    pub fn ledgers(
        &self,
    ) -> std::collections::BTreeMap<String, crate::wxpay_v3::profit_sharing::Ledger> {
        crate::wxpay_v3::profit_sharing::ledgers(&self.state)
    }

    /// A merchant (`merchant_id`, a new one when `None`) authorizes the service provider's
    /// Alipay app `app_id`: the `app_auth_code` Alipay's page hands back, and the merchant id.
    pub fn alipay_app_auth_code(
        &self,
        app_id: &str,
        merchant_id: Option<&str>,
    ) -> Result<(String, String), ControlError> {
        control::alipay_app_auth_code(
            &self.state,
            &control::AlipayAppAuthRequest {
                app_id: app_id.to_owned(),
                merchant_id: merchant_id.map(str::to_owned),
            },
        )
    }

    /// Alipay rotates its certificate: answers to apps in certificate mode are signed with a new
    /// key and name the new SN (which `alipay.open.app.alipaycert.download` hands out).
    pub fn rotate_alipay_certificate(&self) -> Result<String, ControlError> {
        control::alipay_rotate(&self.state)
    }

    /// The demo Alipay app's private key, when the builder made that app.
    pub fn demo_alipay_app_key(&self) -> Option<&PrivateKey> {
        self.demo_alipay_app_key.as_ref()
    }

    /// Its state, for in-process inspection.
    pub fn state(&self) -> &Arc<SandboxState> {
        &self.state
    }

    /// The buyer pays `out_trade_no` (a WeChat order or an Alipay trade); the notification goes
    /// to its notify URL.
    pub async fn pay(&self, out_trade_no: &str) -> Result<Paid, ControlError> {
        control::pay(&self.state, &PayRequest::new(out_trade_no)).await
    }

    /// Pays as `request` says (a failed payment, a given payer, a given provider).
    pub async fn pay_with(&self, request: &PayRequest) -> Result<Paid, ControlError> {
        control::pay(&self.state, request).await
    }

    /// A buyer's payment code of `channel` whose buyer will behave so when a merchant charges
    /// it (pay at once, hold the payment, decline).
    pub fn payment_code(&self, channel: Channel, behaviour: Behaviour) -> String {
        control::payment_code(
            &self.state,
            &PaymentCodeRequest {
                channel,
                behaviour,
                open_id: None,
            },
        )
    }

    /// The payer of paid v3 order `out_trade_no` complains (`detail`); the merchant's
    /// complaint URL gets `COMPLAINT.CREATE`. The complaint's id.
    pub fn file_complaint(
        &self,
        out_trade_no: &str,
        detail: &str,
        refund_amount: Option<u64>,
    ) -> Result<String, ControlError> {
        control::file_complaint(
            &self.state,
            &ComplaintRequest {
                out_trade_no: out_trade_no.to_owned(),
                detail: Some(detail.to_owned()),
                refund_amount,
            },
        )
    }

    /// Every complaint with its negotiation, as `GET /sandbox/complaints` shows them.
    pub fn complaints(&self) -> serde_json::Value {
        crate::wxpay_v3::complaints::all(&self.state)
    }

    /// WeChat Pay starts moving certificate-mode v3 merchant `mch_id` to the public key (over
    /// seven days of the sandbox's time); `false` if it is not one or switches already.
    pub fn start_key_switch(&self, mch_id: &str) -> bool {
        crate::wxpay_v3::key_switch::start(&self.state, mch_id)
    }

    /// Each switch to the public key: its day, share and the notifications each key signed.
    pub fn key_switches(&self) -> Vec<crate::wxpay_v3::key_switch::SwitchView> {
        crate::wxpay_v3::key_switch::all(&self.state)
    }

    /// The buyer of a held payment code approves (or declines) the payment waiting on it.
    pub async fn decide_payment_code(
        &self,
        code: &str,
        approve: bool,
    ) -> Result<Paid, ControlError> {
        control::decide_payment_code(&self.state, code, approve).await
    }

    /// A WeChat refund completes; the encrypted refund notification goes out.
    pub async fn complete_refund(
        &self,
        out_refund_no: &str,
    ) -> Result<RefundCompleted, ControlError> {
        control::complete_refund(&self.state, out_refund_no).await
    }

    /// A WeChat refund ends as `outcome` (v3: `ABNORMAL` and `CLOSED` too); its notification
    /// goes out.
    pub async fn finish_refund(
        &self,
        out_refund_no: &str,
        outcome: crate::settlement::RefundOutcome,
    ) -> Result<RefundCompleted, ControlError> {
        control::finish_refund(&self.state, out_refund_no, outcome).await
    }

    /// The merchant resolves an abnormal WeChat refund on the merchant platform: PROCESSING
    /// again, to be ended by [`Sandbox::complete_refund`].
    pub async fn resolve_refund_on_platform(
        &self,
        out_refund_no: &str,
    ) -> Result<RefundCompleted, ControlError> {
        control::resolve_refund_on_platform(&self.state, out_refund_no).await
    }

    /// The payee of a v3 transfer confirms it in WeChat: it succeeds (or fails, as `outcome`
    /// says) and the transfer notification goes out.
    pub async fn finish_transfer(
        &self,
        out_bill_no: &str,
        outcome: crate::wxpay_v3::TransferOutcome,
    ) -> Result<String, ControlError> {
        control::finish_transfer(&self.state, out_bill_no, outcome).await
    }

    /// A new platform certificate (a new key, a new serial number) signs from now on; the old
    /// ones stay listed at `GET /v3/certificates`. Returns the new serial number.
    pub fn rotate_platform_certificate(&self) -> Result<String, ControlError> {
        control::rotate(&self.state)
    }

    /// A web OAuth code for `open_id` of `app_id` (for `/sns/oauth2/access_token`).
    pub fn oauth_code(&self, app_id: &str, open_id: &str) -> Result<String, ControlError> {
        self.code(app_id, open_id, CodeKind::OAuth)
    }

    /// A Mini Program login code for `open_id` of `app_id` (for `/sns/jscode2session`).
    pub fn js_code(&self, app_id: &str, open_id: &str) -> Result<String, ControlError> {
        self.code(app_id, open_id, CodeKind::MiniProgram)
    }

    fn code(&self, app_id: &str, open_id: &str, kind: CodeKind) -> Result<String, ControlError> {
        let request = CodeRequest {
            app_id: app_id.to_owned(),
            open_id: open_id.to_owned(),
            scope: None,
        };
        control::mint_code(&self.state, &request, kind)
    }

    /// A WeChat user acts on an Official Account; returns the app's reply.
    pub async fn mp_event(&self, event: &EventRequest) -> Result<EventOutcome, ControlError> {
        control::mp_event(&self.state, event).await
    }

    /// The messages apps sent (template, subscribe, customer service) to `open_id`.
    pub fn messages_to(&self, open_id: &str) -> Vec<SentMessage> {
        let filter = MessageFilter {
            app_id: None,
            touser: Some(open_id.to_owned()),
        };
        control::messages(&self.state, &filter)
    }

    /// A fault to happen: the next calls of an API answer an error, the next notifications of
    /// a kind are lost, bills are not ready or list another amount, an order's queries say "not
    /// paid" until its bill (see [`crate::faults`]).
    pub fn fault(&self, fault: impl Into<FaultRequest>) {
        self.state.faults.add(fault.into());
    }

    /// Forgets the faults not used yet.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// The sandbox's WeChat Pay public key id (`PUB_KEY_ID_…`) and key (PEM), for v3 clients.
    pub fn wechatpay_public_key(&self) -> (String, String) {
        let w = &self.state.config.wechatpay;
        (w.key_id.clone(), w.public_key_pem.clone())
    }

    /// Every notification sent and its delivery attempts, oldest first.
    pub fn notifications(&self) -> Vec<DeliveryLog> {
        self.state.notifier.log()
    }

    /// Stops serving and sending notifications.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.state.notifier.close().await;
    }
}
