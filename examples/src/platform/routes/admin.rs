//! The admin API (bearer token): onboarding merchants, rotating secrets, WeChat binding codes,
//! and the dead-letter list of merchant callbacks.

use std::sync::Arc;

use aggregate_pay::OutboxEvent;
use aggregate_pay::events::EventStatus;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_mp::qrcode::{MAX_TEMPORARY_SECONDS, QrLifetime, QrScene};

use crate::clock::unix_now;
use crate::error::{AppError, AppJson};
use crate::platform::PlatformState;
use crate::platform::auth::Admin;
use crate::platform::db::{Merchant, MerchantStatus};
use crate::random::token;
use crate::url_guard::OutboundError;
use crate::workers::Delivery;
use merchant_client::Secret;

/// The admin routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route("/admin/merchants", post(register))
        .route("/admin/merchants/{app_id}", get(show))
        .route(
            "/admin/merchants/{app_id}/rotate-secret",
            post(rotate_secret),
        )
        .route("/admin/merchants/{app_id}/disable", post(disable))
        .route("/admin/merchants/{app_id}/enable", post(enable))
        .route("/admin/merchants/{app_id}/binding", post(binding))
        .route(
            "/admin/merchants/{app_id}/refunds/{out_refund_no}/resolve",
            post(resolve_refund),
        )
        .route("/admin/merchants/{app_id}/partner", put(set_partner))
        .route("/admin/fees", get(fee_income))
        .route("/admin/dead-letters", get(dead_letters))
        .route("/admin/dead-letters/{id}/redeliver", post(redeliver))
}

/// The characters of a unified social credit code (GB 32100-2015): digits and capitals
/// without I, O, S, V, Z.
const CREDIT_CODE_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_CODE_WEIGHTS: [usize; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn credit_code_value(b: u8) -> Option<usize> {
    CREDIT_CODE_CHARS.iter().position(|c| *c == b)
}

/// The check character of a unified social credit code's first 17 characters (weighted sum
/// modulo 31); `None` if one is outside the alphabet or there are not 17.
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (b, w) in bytes.iter().zip(CREDIT_CODE_WEIGHTS) {
        sum += credit_code_value(*b)? * w;
    }
    Some(char::from(CREDIT_CODE_CHARS[(31 - sum % 31) % 31]))
}

/// Whether `code` is a well-formed unified social credit code: 18 characters, the last the
/// check character of the first 17.
pub fn valid_credit_code(code: &str) -> bool {
    code.len() == 18
        && code.is_ascii()
        && credit_code_check_char(&code[..17]).is_some_and(|c| code.ends_with(c))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    name: String,
    credit_code: String,
    notify_url: String,
}

fn merchant_view(m: &Merchant) -> Value {
    json!({
        "app_id": m.app_id,
        "name": m.name,
        "credit_code": m.credit_code,
        "notify_url": m.notify_url,
        "status": m.status,
        "wechat_bound": m.open_id.is_some(),
        "wechat_sub_mchid": m.wechat_sub_mchid,
        "fee_bps": m.fee_bps,
        "alipay_user_id": m.alipay_user_id,
        "previous_secret_valid_until": m.previous_valid_until.filter(|t| *t > unix_now()),
    })
}

/// `POST /admin/merchants` → the merchant with its secret and salt (shown this once).
async fn register(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    AppJson(req): AppJson<Register>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AppError::bad_request(
            "INVALID_REQUEST",
            "name must be 1 to 128 characters",
        ));
    }
    let credit_code = req.credit_code.trim().to_ascii_uppercase();
    if !valid_credit_code(&credit_code) {
        return Err(AppError::bad_request(
            "CREDIT_CODE_INVALID",
            "not a valid unified social credit code",
        ));
    }
    match state.settings.outbound.check(&req.notify_url).await {
        Ok(()) => {}
        Err(OutboundError::Scheme) => {
            return Err(AppError::bad_request(
                "NOTIFY_URL_INVALID",
                "notify_url must be an http(s) URL",
            ));
        }
        Err(e) => {
            return Err(AppError::unprocessable(
                "NOTIFY_URL_FORBIDDEN",
                format!("notify_url is refused: {e}"),
            ));
        }
    }
    let merchant = Merchant {
        app_id: format!("mch_{}", token(8)?),
        name: name.to_owned(),
        credit_code,
        notify_url: req.notify_url,
        status: MerchantStatus::Active,
        secret: Secret::new(token(32)?),
        salt: Secret::new(token(16)?),
        previous_secret: None,
        previous_valid_until: None,
        open_id: None,
        bind_scene: None,
        bind_qr_url: None,
        wechat_sub_mchid: None,
        fee_bps: None,
        alipay_user_id: None,
    };
    single_business(&state, None).await?;
    if !state
        .db
        .insert_merchant(&merchant, unix_now())
        .await
        .map_err(AppError::internal)?
    {
        return Err(AppError::conflict(
            "CREDIT_CODE_TAKEN",
            "a merchant with this credit code is already registered",
        ));
    }
    tracing::info!(app_id = %merchant.app_id, "merchant registered");
    let mut view = merchant_view(&merchant);
    // Shown this once.
    view["secret"] = merchant.secret.expose().into();
    view["salt"] = merchant.salt.expose().into();
    Ok((StatusCode::CREATED, Json(view)))
}

async fn find(state: &PlatformState, app_id: &str) -> Result<Merchant, AppError> {
    state
        .db
        .merchant(app_id)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("MERCHANT_NOT_FOUND", "no merchant with this app id"))
}

/// `GET /admin/merchants/{app_id}` (without secrets).
async fn show(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(app_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(merchant_view(&find(&state, &app_id).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerTerms {
    wechat_sub_mchid: String,
    fee_bps: Option<u32>,
}

/// `PUT /admin/merchants/{app_id}/partner` (partner mode): the merchant's WeChat Pay
/// sub-merchant id — issued by WeChat when the merchant was onboarded under the platform's
/// service-provider account — and its fee (the platform's default when absent). The platform
/// is made a receiver of the sub-merchant's profit sharing first, which WeChat refuses for a
/// sub-merchant that is not the platform's; a sub-merchant id is one merchant's only.
async fn set_partner(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(app_id): Path<String>,
    AppJson(req): AppJson<PartnerTerms>,
) -> Result<Json<Value>, AppError> {
    if state.partner.is_none() {
        return Err(AppError::conflict(
            "NOT_PARTNER_MODE",
            "the platform collects in direct mode: sub-merchants need PLATFORM_MODE=partner",
        ));
    }
    find(&state, &app_id).await?;
    let sub = req.wechat_sub_mchid.trim();
    if sub.is_empty() || sub.len() > 32 || !sub.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::bad_request(
            "SUB_MCHID_INVALID",
            "wechat_sub_mchid is the digits WeChat Pay issued",
        ));
    }
    if let Some(bps) = req.fee_bps {
        aggregate_pay::fees::FeeRate::bps(bps)
            .map_err(|e| AppError::bad_request("FEE_INVALID", e.to_string()))?;
    }
    let wechat = [
        aggregate_pay::PayMethod::WechatNative,
        aggregate_pay::PayMethod::WechatMiniProgram,
    ]
    .into_iter()
    .find_map(|m| state.payments.channels().for_method(m))
    .ok_or_else(|| AppError::conflict("CHANNEL_UNAVAILABLE", "WeChat Pay is not configured"))?;
    let refused = |e: aggregate_pay::ChannelError| {
        AppError::unprocessable(
            "SUB_MERCHANT_REFUSED",
            format!("WeChat Pay did not take the platform as the sub-merchant's receiver: {e}"),
        )
    };
    wechat
        .for_sub_merchant(sub)
        .map_err(refused)?
        .add_fee_receiver(&state.settings.platform_merchant_name)
        .await
        .map_err(refused)?;
    if !state
        .db
        .set_partner(&app_id, sub, req.fee_bps)
        .await
        .map_err(AppError::internal)?
    {
        return Err(AppError::conflict(
            "SUB_MERCHANT_TAKEN",
            "another merchant has this sub-merchant id",
        ));
    }
    Ok(Json(merchant_view(&find(&state, &app_id).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeeDays {
    from: String,
    to: String,
}

/// The most days one fee query covers.
const MAX_FEE_DAYS: i64 = 92;
/// The most fees one fee query adds up.
const MAX_FEE_SHARES: usize = 200_000;

/// `GET /admin/fees?from=YYYY-MM-DD&to=YYYY-MM-DD` (partner mode): the platform's fee income
/// per day (China time, both days included), by the day each fee was shared: how many shares,
/// what was shared, what refunds took back since, and what the platform keeps.
async fn fee_income(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Query(q): Query<FeeDays>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = (
        crate::bills_api::bill_day(&q.from)?,
        crate::bills_api::bill_day(&q.to)?,
    );
    let days = (to - from).whole_days() + 1;
    if !(1..=MAX_FEE_DAYS).contains(&days) {
        return Err(AppError::bad_request(
            "INVALID_DATE",
            format!("from must be on or before to, at most {MAX_FEE_DAYS} days"),
        ));
    }
    let china = aggregate_pay::bills::CHINA;
    let start = from.midnight().assume_offset(china);
    let end = (to + time::Duration::days(1))
        .midnight()
        .assume_offset(china);
    let shares = state
        .shares
        .shares_between(start, end, MAX_FEE_SHARES + 1)
        .await
        .map_err(AppError::internal)?;
    if shares.len() > MAX_FEE_SHARES {
        return Err(AppError::unprocessable(
            "RANGE_TOO_LARGE",
            format!("more than {MAX_FEE_SHARES} fees in the range: ask for fewer days"),
        ));
    }
    let mut totals: std::collections::BTreeMap<time::Date, [u64; 4]> = Default::default();
    for share in &shares {
        let Some(at) = share.shared_at else { continue };
        let day = totals.entry(at.to_offset(china).date()).or_default();
        day[0] += 1;
        day[1] += share.amount.as_u64();
        day[2] += share.returned().as_u64();
        day[3] += share.kept().as_u64();
    }
    let view =
        |d: &[u64; 4]| json!({"shares": d[0], "shared": d[1], "returned": d[2], "kept": d[3]});
    let mut all = [0u64; 4];
    let days: Vec<Value> = totals
        .iter()
        .map(|(day, d)| {
            for (sum, v) in all.iter_mut().zip(d) {
                *sum += v;
            }
            let mut v = view(d);
            v["day"] = json!(day.to_string());
            v
        })
        .collect();
    Ok(Json(json!({"days": days, "total": view(&all)})))
}

/// `POST /admin/merchants/{app_id}/rotate-secret` → the new secret; the old one keeps working
/// for the grace period (a second rotation within it ends the first one's grace).
async fn rotate_secret(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(app_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    find(&state, &app_id).await?;
    let secret = token(32)?;
    let grace = i64::try_from(state.settings.secret_grace.as_secs()).unwrap_or(i64::MAX);
    let until = unix_now().saturating_add(grace);
    state
        .db
        .rotate_secret(&app_id, &secret, until)
        .await
        .map_err(AppError::internal)?;
    tracing::info!(app_id = %app_id, "merchant secret rotated");
    Ok(Json(
        json!({"app_id": app_id, "secret": secret, "previous_secret_valid_until": until}),
    ))
}

/// Live direct mode serves one business: another active merchant is refused (see
/// `PLATFORM_DIRECT_MULTI_MERCHANT`).
async fn single_business(state: &PlatformState, except: Option<&str>) -> Result<(), AppError> {
    if state.settings.single_business
        && state
            .db
            .active_merchants(except)
            .await
            .map_err(AppError::internal)?
            >= 1
    {
        return Err(AppError::unprocessable(
            "SINGLE_BUSINESS",
            "live direct mode holds merchants' money in the platform's own accounts: one active \
             merchant only (secondary clearing needs a payment licence; see \
             PLATFORM_DIRECT_MULTI_MERCHANT)",
        ));
    }
    Ok(())
}

async fn set_status(
    state: &PlatformState,
    app_id: &str,
    status: MerchantStatus,
) -> Result<Json<Value>, AppError> {
    if status == MerchantStatus::Active {
        single_business(state, Some(app_id)).await?;
    }
    if !state
        .db
        .set_status(app_id, status)
        .await
        .map_err(AppError::internal)?
    {
        return Err(AppError::not_found(
            "MERCHANT_NOT_FOUND",
            "no merchant with this app id",
        ));
    }
    Ok(Json(merchant_view(&find(state, app_id).await?)))
}

/// `POST /admin/merchants/{app_id}/disable`: its open-API calls are refused from now on.
async fn disable(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(app_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    set_status(&state, &app_id, MerchantStatus::Disabled).await
}

/// `POST /admin/merchants/{app_id}/enable`.
async fn enable(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(app_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    set_status(&state, &app_id, MerchantStatus::Active).await
}

/// `POST /admin/merchants/{app_id}/binding`: a fresh temporary QR code whose scene binds the
/// scanner's WeChat to the merchant — once, within `BIND_CODE_TTL_SECS` (10 minutes by
/// default) — and the page that shows it. Issuing one is the explicit act of (re)binding: the
/// merchant's earlier code stops working, and the next scan of this one replaces the bound
/// WeChat.
async fn binding(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(app_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    find(&state, &app_id).await?;
    let mp = state.mp.as_ref().ok_or_else(|| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "MP_UNAVAILABLE",
            "no Official Account is configured",
        )
    })?;
    let scene = format!("bind_{}", token(12)?);
    let ttl = state
        .settings
        .bind_code_ttl_secs
        .clamp(60, MAX_TEMPORARY_SECONDS);
    let ticket = mp
        .create_qrcode(QrLifetime::Temporary(ttl), &QrScene::Str(scene.clone()))
        .await
        .map_err(|e| AppError::new(StatusCode::BAD_GATEWAY, "MP_FAILED", e.to_string()))?;
    let expires_at = crate::clock::unix_now() + i64::from(ttl);
    state
        .db
        .set_binding(&app_id, &scene, &ticket.url, expires_at)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(json!({
        "scene": scene,
        "ticket": ticket.ticket,
        "qr_url": ticket.url,
        "expires_in": ticket.expire_seconds,
        "bind_page": format!("{}/bind/{scene}", state.settings.public_url),
    })))
}

/// `POST /admin/merchants/{app_id}/refunds/{out_refund_no}/resolve`: an ABNORMAL refund (the
/// money could not reach the buyer: a closed card, say) sent again — to a debit card of the
/// buyer's, or to the merchant's settlement account — where the channel has the call (WeChat
/// Pay API v3); elsewhere the answer says where it is done (422 `CHANNEL_UNSUPPORTED`). The
/// refund stays ABNORMAL, its money counted as being refunded, until the channel says SUCCESS
/// or CLOSED (the merchant hears of it by callback).
async fn resolve_refund(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path((app_id, out_refund_no)): Path<(String, String)>,
    AppJson(req): AppJson<crate::abnormal_refund::ResolveAbnormalRefund>,
) -> Result<Json<Value>, AppError> {
    let kind = req.kind();
    let to = req.checked()?;
    let record = state
        .db
        .refund(&app_id, &out_refund_no)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("REFUND_NOT_FOUND", "no such refund"))?;
    let refund = state
        .payments
        .resolve_abnormal_refund(&record.platform_refund_no, &to)
        .await?;
    tracing::info!(merchant = %app_id, refund = %out_refund_no, to = kind, "abnormal refund resolved");
    Ok(Json(json!({
        "out_refund_no": record.out_refund_no,
        "status": refund.status,
        "reason": refund.last_error,
    })))
}

fn dead_view(e: &OutboxEvent) -> Value {
    json!({
        "id": e.id,
        "type": e.kind.as_str(),
        "payment_id": e.payment_id.0,
        "attempts": e.attempts,
        "last_error": e.last_error,
        "created_at": e.created_at.unix_timestamp(),
    })
}

/// `GET /admin/dead-letters`: callbacks that ran out of attempts (at most 500), with their
/// last error.
async fn dead_letters(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
) -> Result<Json<Value>, AppError> {
    let events = match &state.dead_letters {
        Delivery::InProcess => state
            .store
            .events(Some(EventStatus::Dead), 500)
            .await
            .map_err(AppError::internal)?,
        Delivery::Rabbit {
            connection,
            topology,
        } => {
            let channel = connection
                .create_channel()
                .await
                .map_err(AppError::internal)?;
            let events = topology
                .dead_letters(&channel, 500)
                .await
                .map_err(AppError::internal)?;
            let _ = channel.close(200, "done".into()).await;
            events
        }
    };
    Ok(Json(Value::Array(events.iter().map(dead_view).collect())))
}

/// `POST /admin/dead-letters/{id}/redeliver`: back to delivery with a fresh attempt count.
async fn redeliver(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let found = match &state.dead_letters {
        Delivery::InProcess => state
            .store
            .redeliver(&id)
            .await
            .map_err(AppError::internal)?,
        Delivery::Rabbit {
            connection,
            topology,
        } => {
            let channel = connection
                .create_channel()
                .await
                .map_err(AppError::internal)?;
            let found = topology
                .redeliver_dead(&channel, &id)
                .await
                .map_err(AppError::internal)?;
            let _ = channel.close(200, "done".into()).await;
            found
        }
    };
    if !found {
        return Err(AppError::not_found(
            "DEAD_LETTER_NOT_FOUND",
            "no dead callback with this id",
        ));
    }
    Ok(Json(json!({"id": id, "redelivered": true})))
}

#[cfg(test)]
mod tests {
    use super::valid_credit_code;

    #[test]
    fn credit_codes_are_checked_by_their_check_character() {
        // Published codes of registered companies.
        assert!(valid_credit_code("91350100M000100Y43"));
        assert!(valid_credit_code("91110000802100433B"));
        assert!(valid_credit_code("914403001922038216"));
        // One character changed, wrong length, letters outside the alphabet.
        assert!(!valid_credit_code("91350100M000100Y44"));
        assert!(!valid_credit_code("91350100M000100Y4"));
        assert!(!valid_credit_code("91350100M000100I43"));
    }
}
