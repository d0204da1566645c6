//! The control API: act as the paying user and the WeChat user, and look inside.
//!
//! | route | what |
//! |---|---|
//! | `POST /sandbox/pay` `{out_trade_no, result?, open_id?, channel?}` | pay (or fail) a WeChat order or an Alipay trade; sends the notification |
//! | `POST /sandbox/payment-code` `{channel, behaviour?, open_id?}` → `{code}` | a buyer's payment code (`wechat`: 18 digits; `alipay`: 18 digits from `28`) whose buyer will `approve` (default), `hold` (the payment waits) or `decline` when a merchant charges it ([`crate::payment_codes`]) |
//! | `POST /sandbox/complaints` `{out_trade_no, detail?, refund_amount?}` → `{complaint_id}` | the payer of a paid v3 order complains (消费者投诉 2.0); `COMPLAINT.CREATE` goes to the merchant's complaint URL |
//! | `GET /sandbox/complaints` | every complaint with its negotiation (the merchant's answers, images, refund decision) |
//! | `POST /sandbox/wechatpay-key-switch` `{mch_id}` | WeChat Pay moves a certificate-mode v3 merchant to the public key over seven days of the sandbox's time ([`crate::wxpay_v3::key_switch`]) |
//! | `GET /sandbox/wechatpay-key-switch` | each switch: its day, the public key's share, the notifications each key signed |
//! | `POST /sandbox/payment-code/decide` `{code, result?}` | the buyer of a held code approves (`SUCCESS`, default) or declines (`FAIL`) the payment it is waiting on |
//! | `POST /sandbox/refund-complete` `{out_refund_no, status?}` | end a WeChat refund (`SUCCESS` by default; v3 also `ABNORMAL`, `CLOSED`); sends the encrypted refund notification |
//! | `POST /sandbox/transfer-confirm` `{out_bill_no, result?}` | the payee confirms a v3 transfer (`SUCCESS` by default, or `FAIL`); sends its notification |
//! | `POST /sandbox/wechatpay-rotate` → `{serial_no}` | a new platform certificate signs from now on (v3 certificate mode) |
//! | `POST /sandbox/oauth-code` `{app_id, open_id, scope?}` → `{code}` | mint a web OAuth code |
//! | `POST /sandbox/js-code` `{app_id, open_id}` → `{js_code}` | mint a Mini Program login code |
//! | `POST /sandbox/mp-event` `{app_id, open_id, event, …}` | follow / unfollow / scan / text / click, delivered to the app's callback; returns its reply |
//! | `POST /sandbox/faults` `{api, code, times?, after_processing?}`, `{drop_notifications, times?}`, `{bill_not_ready}`, `{bill_amount: {out_trade_no, amount}}` or `{withhold_query}` | the next calls of an API answer an error, the next notifications of a kind are lost, bills are not ready, list another amount, or an order's queries say "not paid" until its bill (see [`crate::faults`]); `DELETE` forgets them |
//! | `GET /sandbox/messages` | template, subscribe and customer-service messages "sent" |
//! | `GET /sandbox/orders` | orders, trades and refunds |
//! | `GET /sandbox/notifications` | every notification and its delivery attempts |
//! | `GET /sandbox/alipay-public-key` | the gateway's public key (PEM) |
//! | `GET /sandbox/alipay/certs/{app_id}` → `{app_cert, alipay_cert, root_cert, …_sn}` | what an Alipay app in certificate mode is configured with |
//! | `POST /sandbox/alipay/certs/rotate` → `{alipay_cert_sn}` | a new Alipay certificate signs answers to apps in certificate mode from now on |
//! | `POST /sandbox/alipay/auth-code` `{app_id, user_id?}` → `{auth_code, user_id}` | mint an Alipay buyer-login code (what `my.getAuthCode` or the web authorization hands the app) |
//! | `POST /sandbox/alipay/app-auth-code` `{app_id, merchant_id?}` → `{app_auth_code, merchant_id}` | a merchant authorizes a service provider's Alipay app (what Alipay's authorization page hands back) |
//! | `GET /sandbox/alipay/authorize?app_id=…&redirect_uri=…&state=…` | Alipay's authorization page, approved at once by a new merchant: redirects to `redirect_uri?app_auth_code=…&state=…` |
//! | `POST /sandbox/profitsharing-notify-url` `{mch_id, url?}` | where a v3 merchant's `PROFITSHARING.*` notifications go (WeChat: set on the merchant platform) |
//! | `GET /sandbox/ledgers` → `{mch_id: {paid, refunded, shared_out, shared_in, returned_in, returned_out, unfrozen, frozen, balance}}` | each WeChat Pay merchant's and sub-merchant's money (fen), profit sharing included |
//! | `GET /sandbox/wechatpay-public-key` → `{public_key_id, public_key}` | the WeChat Pay (v3) public key and its id |
//! | `GET /sandbox` | an HTML page listing open orders with pay buttons |

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::faults::FaultRequest;
use super::mp::events::{self, EventRequest};
use super::payment_codes::Behaviour;
use super::state::{MintedCode, SentMessage, WxOrder, WxRefund, hex32, key, now};
use super::{SandboxState, alipay, lock, page, settlement, wxpay, wxpay_v3};

/// The routes.
pub fn routes() -> Router<Arc<SandboxState>> {
    Router::new()
        .route("/sandbox", get(page::index))
        .route("/sandbox/h5pay", get(page::h5pay))
        .route("/sandbox/pay", post(pay_route))
        .route("/sandbox/pay-form", post(pay_form))
        .route(
            "/sandbox/complaints",
            post(file_complaint_route).get(complaints_route),
        )
        .route(
            "/sandbox/wechatpay-key-switch",
            post(key_switch_route).get(key_switches_route),
        )
        .route("/sandbox/payment-code", post(payment_code_route))
        .route("/sandbox/payment-code/decide", post(decide_route))
        .route("/sandbox/payment-code-form", post(payment_code_form))
        .route("/sandbox/refund-complete", post(refund_complete))
        .route("/sandbox/refund-resolve", post(refund_resolve))
        .route("/sandbox/transfer-confirm", post(transfer_confirm))
        .route("/sandbox/wechatpay-rotate", post(rotate_route))
        .route("/sandbox/oauth-code", post(oauth_code))
        .route("/sandbox/js-code", post(js_code))
        .route("/sandbox/mp-event", post(mp_event_route))
        .route("/sandbox/messages", get(messages_route))
        .route("/sandbox/orders", get(orders))
        .route("/sandbox/notifications", get(notifications))
        .route("/sandbox/faults", post(add_fault).delete(clear_faults))
        .route("/sandbox/alipay-public-key", get(alipay_public_key))
        .route("/sandbox/alipay/certs/rotate", post(alipay_rotate_route))
        .route("/sandbox/alipay/auth-code", post(alipay_auth_code_route))
        .route("/sandbox/ledgers", get(ledgers_route))
        .route(
            "/sandbox/profitsharing-notify-url",
            post(profit_sharing_url_route),
        )
        .route(
            "/sandbox/alipay/app-auth-code",
            post(alipay_app_auth_code_route),
        )
        .route("/sandbox/alipay/authorize", get(alipay_authorize_route))
        .route("/sandbox/alipay/certs/{app_id}", get(alipay_certs_route))
        .route("/sandbox/wechatpay-public-key", get(wechatpay_public_key))
}

/// A control error: a status, a stable code (`ORDER_NOT_FOUND`…) and a message. Over HTTP it is
/// `{code, message}` with the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ControlError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ControlError {
    /// The HTTP status the control API answers with.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let body = Json(json!({"code": self.code, "message": self.message}));
        (self.status, body).into_response()
    }
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ControlError {
    ControlError {
        status,
        code,
        message: message.into(),
    }
}

/// Which provider an order belongs to.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// WeChat Pay.
    Wechat,
    /// Alipay.
    Alipay,
}

/// `POST /sandbox/pay`: the buyer pays (or fails to pay) an order.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PayRequest {
    /// The merchant's order number.
    pub out_trade_no: String,
    /// `SUCCESS` (default) or `PAYERROR` (WeChat only).
    pub result: Option<String>,
    /// Who pays (WeChat; default: the order's openid or a generated one).
    pub open_id: Option<String>,
    /// Which provider (default: whichever has the order).
    pub channel: Option<Channel>,
}

impl PayRequest {
    /// Pays `out_trade_no` (whichever provider has it) successfully.
    pub fn new(out_trade_no: impl Into<String>) -> Self {
        PayRequest {
            out_trade_no: out_trade_no.into(),
            ..PayRequest::default()
        }
    }
}

/// What a payment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paid {
    /// The provider.
    pub channel: Channel,
    /// The order.
    pub out_trade_no: String,
    /// Its state now (`SUCCESS`, `PAYERROR`, `TRADE_SUCCESS`).
    pub state: String,
    /// The provider's transaction number (`transaction_id`, `trade_no`).
    pub transaction_id: String,
}

/// The buyer pays; the provider's notification goes out.
pub async fn pay(state: &SandboxState, req: &PayRequest) -> Result<Paid, ControlError> {
    let success = match req.result.as_deref() {
        None | Some("SUCCESS") => true,
        Some("PAYERROR") => false,
        Some(other) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "INVALID_RESULT",
                format!("result must be SUCCESS or PAYERROR, not {other:?}"),
            ));
        }
    };
    if let Some(orders) = wxpay_v3::combine::orders_of(state, &req.out_trade_no) {
        return pay_combined(state, req, &orders, success).await;
    }
    let in_wechat = lock(&state.wechat)
        .orders
        .values()
        .any(|o| o.out_trade_no == req.out_trade_no);
    let in_alipay = lock(&state.alipay)
        .trades
        .values()
        .any(|t| t.out_trade_no == req.out_trade_no);
    let channel = match (req.channel, in_wechat, in_alipay) {
        (Some(c), _, _) => c,
        (None, true, false) => Channel::Wechat,
        (None, false, true) => Channel::Alipay,
        (None, true, true) => {
            return Err(error(
                StatusCode::CONFLICT,
                "AMBIGUOUS",
                "both channels have this order; say which with \"channel\"",
            ));
        }
        (None, false, false) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "ORDER_NOT_FOUND",
                format!("no order {}", req.out_trade_no),
            ));
        }
    };
    match channel {
        Channel::Wechat => {
            settlement::pay_order(state, &req.out_trade_no, success, req.open_id.as_deref())
                .await
                .inspect(|o| notify_payment(state, o))
                .map(|o| Paid {
                    channel: Channel::Wechat,
                    out_trade_no: o.out_trade_no,
                    state: o.state,
                    transaction_id: o.transaction_id,
                })
                .map_err(|e| match e {
                    settlement::PayError::NotFound(_) => {
                        error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", e.to_string())
                    }
                    settlement::PayError::State(..) => {
                        error(StatusCode::CONFLICT, "ORDER_NOT_PAYABLE", e.to_string())
                    }
                })
        }
        Channel::Alipay => {
            if !success {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_RESULT",
                    "Alipay trades have no failed state; close the trade instead",
                ));
            }
            alipay::pay_trade(state, &req.out_trade_no)
                .await
                .map(|t| Paid {
                    channel: Channel::Alipay,
                    out_trade_no: t.out_trade_no,
                    state: t.status,
                    transaction_id: t.trade_no,
                })
                .map_err(|e| match e {
                    alipay::PayTradeError::NotFound(_) => {
                        error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", e.to_string())
                    }
                    alipay::PayTradeError::State(..) => {
                        error(StatusCode::CONFLICT, "ORDER_NOT_PAYABLE", e.to_string())
                    }
                })
        }
    }
}

/// `POST /sandbox/complaints`: a payer complains about a paid v3 order.
#[derive(Debug, Clone, Deserialize)]
pub struct ComplaintRequest {
    /// The order.
    pub out_trade_no: String,
    /// What the payer writes.
    #[serde(default)]
    pub detail: Option<String>,
    /// The refund the payer asks for (fen).
    #[serde(default)]
    pub refund_amount: Option<u64>,
}

/// Files the complaint: its id.
pub fn file_complaint(
    state: &SandboxState,
    req: &ComplaintRequest,
) -> Result<String, ControlError> {
    wxpay_v3::complaints::file_complaint(
        state,
        &req.out_trade_no,
        req.detail.as_deref().unwrap_or("付了钱，没有出货"),
        req.refund_amount,
    )
    .ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
            format!("no paid v3 order {}", req.out_trade_no),
        )
    })
}

async fn file_complaint_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<ComplaintRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    file_complaint(&state, &req).map(|id| Json(json!({"complaint_id": id})))
}

async fn complaints_route(State(state): State<Arc<SandboxState>>) -> Json<serde_json::Value> {
    Json(wxpay_v3::complaints::all(&state))
}

#[derive(Debug, Deserialize)]
struct KeySwitchRequest {
    mch_id: String,
}

async fn key_switch_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<KeySwitchRequest>,
) -> Result<StatusCode, ControlError> {
    if wxpay_v3::key_switch::start(&state, &req.mch_id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(error(
            StatusCode::CONFLICT,
            "NOT_SWITCHABLE",
            format!(
                "{} is not a certificate-mode v3 merchant, or switches already",
                req.mch_id
            ),
        ))
    }
}

async fn key_switches_route(State(state): State<Arc<SandboxState>>) -> Json<serde_json::Value> {
    Json(json!(wxpay_v3::key_switch::all(&state)))
}

/// `POST /sandbox/payment-code`: a buyer's payment code.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentCodeRequest {
    /// Whose code.
    pub channel: Channel,
    /// What its buyer will do (pay at once by default).
    #[serde(default)]
    pub behaviour: Behaviour,
    /// Who pays (WeChat openid, Alipay user id; default: a generated one).
    #[serde(default)]
    pub open_id: Option<String>,
}

/// A new payment code of `req.channel` whose buyer behaves as `req.behaviour`.
pub fn payment_code(state: &SandboxState, req: &PaymentCodeRequest) -> String {
    state
        .payment_codes
        .mint(req.channel, req.behaviour, req.open_id.clone())
}

async fn payment_code_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<PaymentCodeRequest>,
) -> Json<serde_json::Value> {
    Json(json!({"code": payment_code(&state, &req)}))
}

/// `POST /sandbox/payment-code/decide`.
#[derive(Debug, Clone, Deserialize)]
struct Decide {
    code: String,
    #[serde(default)]
    result: Option<String>,
}

/// The buyer of held code `code` approves (or declines) the payment waiting on it.
pub async fn decide_payment_code(
    state: &SandboxState,
    code: &str,
    approve: bool,
) -> Result<Paid, ControlError> {
    let (channel, out_trade_no) = state.payment_codes.order_of(code).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "CODE_NOT_CHARGED",
            "no payment is waiting on this code",
        )
    })?;
    if channel == Channel::Alipay && !approve {
        return alipay::close_waiting_trade(state, &out_trade_no)
            .await
            .map(|t| Paid {
                channel,
                out_trade_no: t.out_trade_no,
                state: t.status,
                transaction_id: t.trade_no,
            })
            .ok_or_else(|| {
                error(
                    StatusCode::CONFLICT,
                    "ORDER_NOT_PAYABLE",
                    "the trade is not waiting for the buyer",
                )
            });
    }
    let request = PayRequest {
        out_trade_no,
        result: Some(if approve { "SUCCESS" } else { "PAYERROR" }.to_owned()),
        open_id: None,
        channel: Some(channel),
    };
    pay(state, &request).await
}

async fn decide_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<Decide>,
) -> Result<Json<Paid>, ControlError> {
    let approve = match req.result.as_deref() {
        None | Some("SUCCESS") => true,
        Some("FAIL") => false,
        Some(other) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "INVALID_RESULT",
                format!("result must be SUCCESS or FAIL, not {other:?}"),
            ));
        }
    };
    decide_payment_code(&state, &req.code, approve)
        .await
        .map(Json)
}

/// The `/sandbox` page's "show a payment code" form: the code, large, to type or scan.
async fn payment_code_form(
    State(state): State<Arc<SandboxState>>,
    Form(req): Form<PaymentCodeRequest>,
) -> axum::response::Html<String> {
    page::payment_code(&req, &payment_code(&state, &req))
}

/// Pays (or fails) every order of combined payment `req.out_trade_no`, then sends its one
/// notification.
async fn pay_combined(
    state: &SandboxState,
    req: &PayRequest,
    orders: &[String],
    success: bool,
) -> Result<Paid, ControlError> {
    let mut last = None;
    for no in orders {
        let order = settlement::pay_order(state, no, success, req.open_id.as_deref())
            .await
            .map_err(|e| error(StatusCode::CONFLICT, "ORDER_NOT_PAYABLE", e.to_string()))?;
        last = Some(order);
    }
    if success {
        wxpay_v3::combine::notify_paid(state, &req.out_trade_no);
    }
    let last = last.ok_or_else(|| error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "no orders"))?;
    Ok(Paid {
        channel: Channel::Wechat,
        out_trade_no: req.out_trade_no.clone(),
        state: last.state,
        transaction_id: last.transaction_id,
    })
}

/// Sends the payment notification of `order` in its API version (v3's JSON for an order
/// created over API v3, v2's signed XML otherwise).
fn notify_payment(state: &SandboxState, order: &WxOrder) {
    if order.sign_type == "RSA" {
        wxpay_v3::notification(state, order);
    } else {
        wxpay::notify_payment(state, order);
    }
}

/// Sends the notification of an ended refund in its API version.
fn notify_refund(state: &SandboxState, refund: &WxRefund) {
    if refund.v3 {
        wxpay_v3::refund_notification(state, refund);
    } else {
        wxpay::notify_refund(state, refund);
    }
}

async fn pay_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<PayRequest>,
) -> Result<Json<Paid>, ControlError> {
    pay(&state, &req).await.map(Json)
}

/// The HTML pages' pay buttons: pay, then go back (to the Alipay `return_url` when there is one).
async fn pay_form(
    State(state): State<Arc<SandboxState>>,
    Form(req): Form<PayRequest>,
) -> Result<Redirect, ControlError> {
    pay(&state, &req).await?;
    let return_url = lock(&state.alipay)
        .trades
        .values()
        .find(|t| t.out_trade_no == req.out_trade_no)
        .and_then(|t| t.return_url.clone());
    Ok(Redirect::to(return_url.as_deref().unwrap_or("/sandbox")))
}

#[derive(Debug, Deserialize)]
struct RefundComplete {
    out_refund_no: String,
    #[serde(default)]
    status: Option<settlement::RefundOutcome>,
}

/// A completed refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundCompleted {
    /// The refund.
    pub out_refund_no: String,
    /// Its status now (`SUCCESS`, `ABNORMAL`, `CLOSED`).
    pub status: String,
}

/// A WeChat refund completes; the encrypted refund notification goes out.
pub async fn complete_refund(
    state: &SandboxState,
    out_refund_no: &str,
) -> Result<RefundCompleted, ControlError> {
    finish_refund(state, out_refund_no, settlement::RefundOutcome::Success).await
}

/// A WeChat refund ends as `outcome`; its notification goes out.
pub async fn finish_refund(
    state: &SandboxState,
    out_refund_no: &str,
    outcome: settlement::RefundOutcome,
) -> Result<RefundCompleted, ControlError> {
    let (r, ended_now) = settlement::finish_refund(state, out_refund_no, outcome)
        .await
        .map_err(|e| error(StatusCode::NOT_FOUND, "REFUND_NOT_FOUND", e.to_string()))?;
    if ended_now {
        notify_refund(state, &r);
    }
    Ok(RefundCompleted {
        out_refund_no: r.out_refund_no,
        status: r.status,
    })
}

async fn refund_complete(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<RefundComplete>,
) -> Result<Json<RefundCompleted>, ControlError> {
    finish_refund(
        &state,
        &req.out_refund_no,
        req.status.unwrap_or(settlement::RefundOutcome::Success),
    )
    .await
    .map(Json)
}

/// The merchant resolves an abnormal WeChat refund on the merchant platform: it is PROCESSING
/// again (then `complete_refund` ends it). Returns its status now.
pub async fn resolve_refund_on_platform(
    state: &SandboxState,
    out_refund_no: &str,
) -> Result<RefundCompleted, ControlError> {
    let r = settlement::resolve_on_platform(state, out_refund_no)
        .await
        .map_err(|e| error(StatusCode::NOT_FOUND, "REFUND_NOT_FOUND", e.to_string()))?;
    Ok(RefundCompleted {
        out_refund_no: r.out_refund_no,
        status: r.status,
    })
}

#[derive(Debug, Deserialize)]
struct RefundResolve {
    out_refund_no: String,
}

async fn refund_resolve(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<RefundResolve>,
) -> Result<Json<RefundCompleted>, ControlError> {
    resolve_refund_on_platform(&state, &req.out_refund_no)
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
struct TransferConfirm {
    out_bill_no: String,
    #[serde(default)]
    result: Option<crate::wxpay_v3::TransferOutcome>,
}

/// The payee of a v3 transfer confirms it; returns its state now.
pub async fn finish_transfer(
    state: &SandboxState,
    out_bill_no: &str,
    outcome: crate::wxpay_v3::TransferOutcome,
) -> Result<String, ControlError> {
    crate::wxpay_v3::finish_transfer(state, out_bill_no, outcome)
        .await
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "TRANSFER_NOT_FOUND",
                format!("no transfer {out_bill_no}"),
            )
        })
}

async fn transfer_confirm(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<TransferConfirm>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let outcome = req
        .result
        .unwrap_or(crate::wxpay_v3::TransferOutcome::Success);
    let state_now = finish_transfer(&state, &req.out_bill_no, outcome).await?;
    Ok(Json(
        json!({"out_bill_no": req.out_bill_no, "state": state_now}),
    ))
}

/// A new platform certificate signs from now on; its serial number.
pub fn rotate(state: &SandboxState) -> Result<String, ControlError> {
    crate::wxpay_v3::rotate_platform_certificate(state)
        .map(|c| c.serial_no)
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "KEY_ERROR",
                e.to_string(),
            )
        })
}

/// What an Alipay app in certificate mode is configured with.
pub fn alipay_certificates(
    state: &SandboxState,
    app_id: &str,
) -> Result<alipay::certs::AppCertificates, ControlError> {
    state
        .alipay_pki
        .as_ref()
        .and_then(|p| p.app_certificates(app_id))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "APP_NOT_IN_CERT_MODE",
                format!("no Alipay app {app_id} in certificate mode"),
            )
        })
}

/// A new Alipay certificate signs answers to apps in certificate mode; its SN.
pub fn alipay_rotate(state: &SandboxState) -> Result<String, ControlError> {
    let pki = state.alipay_pki.as_ref().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "APP_NOT_IN_CERT_MODE",
            "no Alipay app is in certificate mode",
        )
    })?;
    pki.rotate().map(|c| c.sn).map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "KEY_ERROR",
            e.to_string(),
        )
    })
}

/// A merchant's authorization of a service provider's Alipay app.
#[derive(Debug, Clone, Deserialize)]
pub struct AlipayAppAuthRequest {
    /// The service provider's app.
    pub app_id: String,
    /// The merchant's Alipay user id (`2088…`); a new merchant when absent.
    pub merchant_id: Option<String>,
}

/// Mints a merchant's authorization code for a provider's app; the code and the merchant id.
pub fn alipay_app_auth_code(
    state: &SandboxState,
    req: &AlipayAppAuthRequest,
) -> Result<(String, String), ControlError> {
    let merchant = alipay_user(state, &req.app_id, req.merchant_id.as_deref())?;
    Ok((
        alipay::app_auth::mint(state, &req.app_id, &merchant),
        merchant,
    ))
}

async fn alipay_app_auth_code_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<AlipayAppAuthRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let (code, merchant) = alipay_app_auth_code(&state, &req)?;
    Ok(Json(
        json!({"app_auth_code": code, "merchant_id": merchant}),
    ))
}

/// What Alipay's authorization page is opened with.
#[derive(Debug, Clone, Deserialize)]
pub struct AlipayAuthorize {
    /// The service provider's app.
    pub app_id: String,
    /// Where the merchant is sent back.
    pub redirect_uri: String,
    /// The provider's state, handed back as it is.
    #[serde(default)]
    pub state: String,
}

/// Alipay's authorization page (`appToAppAuth.htm`), approved at once by a new merchant: back
/// to `redirect_uri` with the code and the state, as Alipay sends the merchant back.
async fn alipay_authorize_route(
    State(state): State<Arc<SandboxState>>,
    Query(q): Query<AlipayAuthorize>,
) -> Result<Redirect, ControlError> {
    let mut back = reqwest::Url::parse(&q.redirect_uri).map_err(|e| ControlError {
        status: StatusCode::BAD_REQUEST,
        code: "INVALID_REDIRECT_URI",
        message: e.to_string(),
    })?;
    let request = AlipayAppAuthRequest {
        app_id: q.app_id,
        merchant_id: None,
    };
    let (code, _) = alipay_app_auth_code(&state, &request)?;
    back.query_pairs_mut()
        .append_pair("app_auth_code", &code)
        .append_pair("state", &q.state);
    Ok(Redirect::to(back.as_str()))
}

/// Where a merchant's profit-sharing notifications go.
#[derive(Debug, Clone, Deserialize)]
pub struct ProfitSharingUrl {
    /// The v3 merchant.
    pub mch_id: String,
    /// The URL; none: no notifications.
    pub url: Option<String>,
}

async fn profit_sharing_url_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<ProfitSharingUrl>,
) -> Result<axum::http::StatusCode, ControlError> {
    if !state
        .config
        .merchants_v3
        .iter()
        .any(|m| m.mch_id == req.mch_id)
    {
        return Err(error(
            StatusCode::NOT_FOUND,
            "MERCHANT_NOT_FOUND",
            format!("no v3 merchant {}", req.mch_id),
        ));
    }
    crate::wxpay_v3::profit_sharing::set_notify_url(&state, &req.mch_id, req.url);
    Ok(StatusCode::NO_CONTENT)
}

async fn ledgers_route(State(state): State<Arc<SandboxState>>) -> Json<serde_json::Value> {
    Json(json!(crate::wxpay_v3::profit_sharing::ledgers(&state)))
}

/// An Alipay buyer-login code.
#[derive(Debug, Clone, Deserialize)]
pub struct AlipayCodeRequest {
    /// The app.
    pub app_id: String,
    /// The buyer's Alipay user id (`2088…`); a new one when absent.
    pub user_id: Option<String>,
}

/// Mints a one-time Alipay auth code for a buyer of an app; the code and the buyer's user id.
pub fn alipay_auth_code(
    state: &SandboxState,
    req: &AlipayCodeRequest,
) -> Result<(String, String), ControlError> {
    let user_id = alipay_user(state, &req.app_id, req.user_id.as_deref())?;
    let code = alipay::oauth::mint(state, &req.app_id, &user_id);
    Ok((code, user_id))
}

/// `user_id` (2088 and 12 digits; a new one when `None`) of a user of the known app `app_id`.
fn alipay_user(
    state: &SandboxState,
    app_id: &str,
    user_id: Option<&str>,
) -> Result<String, ControlError> {
    if !state.config.alipay_apps.iter().any(|a| a.app_id == app_id) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "APP_NOT_FOUND",
            format!("no Alipay app {app_id}"),
        ));
    }
    match user_id.filter(|u| !u.is_empty()) {
        Some(u)
            if u.len() == 16 && u.starts_with("2088") && u.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(u.to_owned())
        }
        Some(u) => Err(error(
            StatusCode::BAD_REQUEST,
            "USER_ID_INVALID",
            format!("{u:?} is not an Alipay user id (2088 and 12 digits)"),
        )),
        None => Ok(format!("2088{}", crate::state::digits(12))),
    }
}

async fn alipay_auth_code_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<AlipayCodeRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let (code, user_id) = alipay_auth_code(&state, &req)?;
    Ok(Json(json!({"auth_code": code, "user_id": user_id})))
}

async fn alipay_certs_route(
    State(state): State<Arc<SandboxState>>,
    axum::extract::Path(app_id): axum::extract::Path<String>,
) -> Result<Json<alipay::certs::AppCertificates>, ControlError> {
    alipay_certificates(&state, &app_id).map(Json)
}

async fn alipay_rotate_route(
    State(state): State<Arc<SandboxState>>,
) -> Result<Json<serde_json::Value>, ControlError> {
    alipay_rotate(&state).map(|sn| Json(json!({"alipay_cert_sn": sn})))
}

async fn rotate_route(
    State(state): State<Arc<SandboxState>>,
) -> Result<Json<serde_json::Value>, ControlError> {
    rotate(&state).map(|serial_no| Json(json!({"serial_no": serial_no})))
}

/// A one-time login code for a user of an app.
#[derive(Debug, Clone, Deserialize)]
pub struct CodeRequest {
    /// The app.
    pub app_id: String,
    /// The user.
    pub open_id: String,
    /// The OAuth scope (`snsapi_base` by default).
    pub scope: Option<String>,
}

/// Which code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// A web OAuth code (`/sns/oauth2/access_token`).
    OAuth,
    /// A Mini Program login code (`/sns/jscode2session`).
    MiniProgram,
}

/// Mints a code the app exchanges for the user's openid.
pub fn mint_code(
    state: &SandboxState,
    req: &CodeRequest,
    kind: CodeKind,
) -> Result<String, ControlError> {
    let js = kind == CodeKind::MiniProgram;
    if state.mp_app(&req.app_id).is_none() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "APP_NOT_FOUND",
            format!("no WeChat app {}", req.app_id),
        ));
    }
    if req.open_id.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "OPEN_ID_MISSING",
            "open_id is required",
        ));
    }
    let code = hex32();
    let minted = MintedCode {
        app_id: req.app_id.clone(),
        open_id: req.open_id.clone(),
        scope: req
            .scope
            .clone()
            .unwrap_or_else(|| "snsapi_base".to_owned()),
        issued_at: now(),
    };
    let mut mp = lock(&state.mp);
    mp.users.entry(key(&req.app_id, &req.open_id)).or_default();
    if js {
        mp.js_codes.insert(code.clone(), minted);
    } else {
        mp.oauth_codes.insert(code.clone(), minted);
    }
    Ok(code)
}

async fn oauth_code(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<CodeRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    Ok(Json(
        json!({"code": mint_code(&state, &req, CodeKind::OAuth)?}),
    ))
}

async fn js_code(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<CodeRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    Ok(Json(
        json!({"js_code": mint_code(&state, &req, CodeKind::MiniProgram)?}),
    ))
}

/// The user acts on an Official Account; the event goes to the app's callback and its reply
/// comes back.
pub async fn mp_event(
    state: &SandboxState,
    req: &EventRequest,
) -> Result<events::EventOutcome, ControlError> {
    events::deliver(state, req).await.map_err(|e| match e {
        events::EventError::Invalid(_) => {
            error(StatusCode::BAD_REQUEST, "INVALID_EVENT", e.to_string())
        }
        events::EventError::Callback(_) => {
            error(StatusCode::BAD_GATEWAY, "CALLBACK_FAILED", e.to_string())
        }
    })
}

async fn mp_event_route(
    State(state): State<Arc<SandboxState>>,
    Json(req): Json<EventRequest>,
) -> Result<Json<events::EventOutcome>, ControlError> {
    mp_event(&state, &req).await.map(Json)
}

/// Which messages to list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageFilter {
    /// Sent by this app.
    pub app_id: Option<String>,
    /// Sent to this user.
    pub touser: Option<String>,
}

/// The messages apps "sent" (template, subscribe, customer service), oldest first.
pub fn messages(state: &SandboxState, f: &MessageFilter) -> Vec<SentMessage> {
    lock(&state.mp)
        .messages
        .iter()
        .filter(|m| f.app_id.as_ref().is_none_or(|a| &m.app_id == a))
        .filter(|m| f.touser.as_ref().is_none_or(|t| &m.touser == t))
        .cloned()
        .collect()
}

async fn messages_route(
    State(state): State<Arc<SandboxState>>,
    Query(f): Query<MessageFilter>,
) -> Response {
    Json(messages(&state, &f)).into_response()
}

async fn orders(State(state): State<Arc<SandboxState>>) -> Response {
    let wx = lock(&state.wechat);
    let ali = lock(&state.alipay);
    Json(json!({
        "wechat": wx.orders.values().collect::<Vec<_>>(),
        "wechat_refunds": wx.refunds.values().collect::<Vec<_>>(),
        "alipay": ali.trades.values().collect::<Vec<_>>(),
        "alipay_refunds": ali.refunds.values().collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn add_fault(
    State(state): State<Arc<SandboxState>>,
    Json(fault): Json<FaultRequest>,
) -> StatusCode {
    state.faults.add(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(state): State<Arc<SandboxState>>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn notifications(State(state): State<Arc<SandboxState>>) -> Response {
    Json(state.notifier.log()).into_response()
}

async fn wechatpay_public_key(State(state): State<Arc<SandboxState>>) -> Response {
    let w = &state.config.wechatpay;
    Json(json!({"public_key_id": w.key_id, "public_key": w.public_key_pem})).into_response()
}

async fn alipay_public_key(
    State(state): State<Arc<SandboxState>>,
) -> Result<Response, ControlError> {
    let pem = state
        .config
        .alipay_key
        .public_key()
        .to_pem()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "KEY", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], pem).into_response())
}
