//! Service-provider (partner) mode, `/v3/pay/partner/transactions/…`: a service provider
//! (a v3 merchant with sub-merchants, `MerchantV3::with_sub_merchant`, `--sub-merchant`) creates,
//! queries and closes orders for its sub-merchants. Each order carries its sub-merchant; the money
//! is the sub-merchant's; answers and notifications name both (`sp_appid`, `sp_mchid`,
//! `sub_mchid`, `sub_appid`; the payer as `sp_openid` or `sub_openid`). A sub-merchant that is not
//! the provider's is refused (`INVALID_REQUEST`, 受理关系不存在); an order is found only through its
//! own sub-merchant. One difference from WeChat: order numbers are unique per service provider,
//! not per sub-merchant.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::transactions::{
    close_order, closed_reply, find, insert_or_same, requested_order, transaction,
};
use super::{V3Error, authenticate, no_relation, param, path_and_query, reply, v3_error};
use crate::SandboxState;
use crate::config::MerchantV3;
use crate::state::PartnerOrder;

/// The sub-merchant a request names, checked to be the provider's.
fn sub_merchant(
    merchant: &MerchantV3,
    sp_mchid: Option<&str>,
    sub_mchid: Option<&str>,
) -> Result<String, V3Error> {
    if sp_mchid != Some(merchant.mch_id.as_str()) {
        return Err(param("sp_mchid与请求签名的商户号不一致"));
    }
    let sub = sub_mchid
        .filter(|s| !s.is_empty())
        .ok_or_else(|| param("缺少参数 sub_mchid"))?;
    if !merchant.sub_merchants.iter().any(|s| s == sub) {
        return Err(no_relation());
    }
    Ok(sub.to_owned())
}

/// `POST /v3/pay/partner/transactions/{jsapi|app|h5|native}`.
pub(super) async fn create(
    State(state): State<Arc<SandboxState>>,
    Path(kind): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = create_order(&state, &kind, &uri, &headers, &body)
        .await
        .map(|v| (StatusCode::OK, Some(v)));
    reply(&state, &headers, answer)
}

async fn create_order(
    state: &SandboxState,
    kind: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, V3Error> {
    let merchant = authenticate(state, "POST", &path_and_query(uri), headers, body)?;
    let trade_type = match kind {
        "jsapi" => "JSAPI",
        "app" => "APP",
        "h5" => "MWEB",
        "native" => "NATIVE",
        _ => {
            return Err(v3_error(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_EXISTS",
                "no such API",
            ));
        }
    };
    let req: Value = serde_json::from_slice(body).map_err(|e| param(format!("body: {e}")))?;
    let text = |f: &str| req[f].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let sub_mchid = sub_merchant(
        &merchant,
        text("sp_mchid").as_deref(),
        text("sub_mchid").as_deref(),
    )?;
    let sub_appid = text("sub_appid");
    let sp_openid = req["payer"]["sp_openid"].as_str().filter(|s| !s.is_empty());
    let sub_openid = req["payer"]["sub_openid"]
        .as_str()
        .filter(|s| !s.is_empty());
    if sub_openid.is_some() && sub_appid.is_none() {
        return Err(param("payer.sub_openid 须与 sub_appid 同时传入"));
    }
    // The order in the direct form, checked as a direct one is (the provider's app and number).
    let mut direct = req.clone();
    if let Some(o) = direct.as_object_mut() {
        for f in ["sp_appid", "sp_mchid", "sub_mchid", "sub_appid", "payer"] {
            o.remove(f);
        }
        o.insert("appid".into(), json!(text("sp_appid")));
        o.insert("mchid".into(), json!(merchant.mch_id));
        if let Some(openid) = sub_openid.or(sp_openid) {
            o.insert("payer".into(), json!({"openid": openid}));
        }
    }
    let mut order = requested_order(state, &merchant.mch_id, trade_type, &direct)?;
    order.fingerprint = format!("partner:{sub_mchid}:{}", order.fingerprint);
    order.openid = sp_openid.map(str::to_owned);
    order.partner = Some(PartnerOrder {
        sub_mchid: sub_mchid.clone(),
        sub_appid,
        sub_openid: sub_openid.map(str::to_owned),
    });
    // A number another sub-merchant of this provider used is not this one's.
    let order = insert_or_same(state, order)?;
    if order.partner.as_ref().map(|p| p.sub_mchid.as_str()) != Some(sub_mchid.as_str()) {
        return Err(v3_error(
            StatusCode::BAD_REQUEST,
            "OUT_TRADE_NO_USED",
            "商户订单号重复",
        ));
    }
    state
        .persist_wechat(&crate::settlement::Changes {
            orders: vec![order.clone()],
            refunds: vec![],
        })
        .await;
    Ok(match trade_type {
        "NATIVE" => json!({"code_url": order.code_url}),
        "MWEB" => json!({"h5_url": order.mweb_url}),
        _ => json!({"prepay_id": order.prepay_id}),
    })
}

/// A signed query of the sub-merchant its query string names: the order `pick` chooses.
fn partner_query(
    state: &SandboxState,
    query: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
    pick: impl Fn(&crate::state::WxOrder) -> bool,
) -> Response {
    let q = super::query_pairs(query);
    let found = authenticate(state, "GET", &path_and_query(uri), headers, b"").and_then(|m| {
        let sub = sub_merchant(
            &m,
            q.get("sp_mchid").map(String::as_str),
            q.get("sub_mchid").map(String::as_str),
        )?;
        find(state, &m.mch_id, Some(&sub), pick)
    });
    reply(
        state,
        headers,
        found.map(|o| (StatusCode::OK, Some(transaction(&o)))),
    )
}

/// `GET /v3/pay/partner/transactions/out-trade-no/{no}?sp_mchid=…&sub_mchid=…`.
pub(super) async fn query_by_out_trade_no(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    partner_query(&state, query.as_deref(), &uri, &headers, |o| {
        o.out_trade_no == no
    })
}

/// `GET /v3/pay/partner/transactions/id/{transaction_id}?sp_mchid=…&sub_mchid=…`.
pub(super) async fn query_by_id(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    partner_query(&state, query.as_deref(), &uri, &headers, |o| {
        o.transaction_id == id && o.paid_at.is_some()
    })
}

/// `POST /v3/pay/partner/transactions/out-trade-no/{no}/close` `{sp_mchid, sub_mchid}`.
pub(super) async fn close(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let closed =
        authenticate(&state, "POST", &path_and_query(&uri), &headers, &body).and_then(|m| {
            let req: Value =
                serde_json::from_slice(&body).map_err(|e| param(format!("body: {e}")))?;
            let sub = sub_merchant(&m, req["sp_mchid"].as_str(), req["sub_mchid"].as_str())?;
            close_order(&state, &m.mch_id, Some(&sub), &no)
        });
    closed_reply(&state, &headers, closed).await
}
