//! Profit sharing (分账), `/v3/profitsharing/…`: a paid order that asked for it
//! (`settle_info.profit_sharing`) keeps its money frozen; its merchant (directly, or a service
//! provider for its sub-merchant with `sub_mchid`) adds receivers, shares to them, unfreezes the
//! rest, and takes shares back (returns) before refunding. Fails as WeChat does: a receiver not
//! added, more than is left to share, an order not frozen or not paid, a number reused with other
//! content. Each merchant's (or sub-merchant's) money is a ledger (`GET /sandbox/ledgers`): what
//! was paid, refunded, shared out and in, returned, unfrozen, and what is still frozen. A refund
//! larger than what the merchant still holds (paid, less shared and not returned) is refused
//! (`NOT_ENOUGH`), so a shared payment is returned before it is refunded.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    V3Error, authenticate, authenticated, decrypt_field, no_relation, param, path_and_query, reply,
    rfc3339, text, v3_error,
};
use crate::config::MerchantV3;
use crate::state::{WxOrder, digits, now, wechat_time};
use crate::{SandboxState, lock};

/// The receivers, sharings and returns of every merchant.
#[derive(Debug, Default)]
pub(crate) struct SharingBook {
    /// Where each merchant's `PROFITSHARING.*` notifications go (set on WeChat's merchant
    /// platform, here through the control API).
    pub(crate) notify_urls: BTreeMap<String, String>,
    /// `owner/type/account` → the receiver's relation.
    receivers: BTreeMap<String, String>,
    /// `mch_id/out_order_no` → the sharing (unfreezes included).
    sharings: BTreeMap<String, Sharing>,
    /// `mch_id/out_return_no` → the return.
    returns: BTreeMap<String, Return>,
}

#[derive(Debug, Clone)]
struct Sharing {
    owner: String,
    sub_mchid: Option<String>,
    transaction_id: String,
    out_order_no: String,
    order_id: String,
    /// `(type, account, amount, description, detail_id)`.
    receivers: Vec<(String, String, u64, String, String)>,
    /// What this request unfroze to the merchant.
    unfrozen: u64,
    created_at: i64,
}

#[derive(Debug, Clone)]
struct Return {
    owner: String,
    sub_mchid: Option<String>,
    order_id: String,
    out_order_no: String,
    out_return_no: String,
    return_id: String,
    return_mchid: String,
    amount: u64,
}

/// One merchant's (or sub-merchant's) money, in fen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Paid by buyers.
    pub paid: u64,
    /// Refunded to buyers.
    pub refunded: u64,
    /// Shared to receivers.
    pub shared_out: u64,
    /// Received as a receiver (merchant receivers).
    pub shared_in: u64,
    /// Given back by receivers (returns).
    pub returned_in: u64,
    /// Given back as a receiver.
    pub returned_out: u64,
    /// Unfrozen after sharing.
    pub unfrozen: u64,
    /// Still frozen for sharing.
    pub frozen: u64,
    /// What the merchant holds: paid − refunded − shared out + shared in + returned in −
    /// returned out.
    pub balance: i64,
}

/// The merchant a request acts for: itself, or (with `sub_mchid`) one of its sub-merchants.
fn owner_of(
    merchant: &MerchantV3,
    sub_mchid: Option<&str>,
) -> Result<(String, Option<String>), V3Error> {
    match sub_mchid.filter(|s| !s.is_empty()) {
        None => Ok((merchant.mch_id.clone(), None)),
        Some(sub) if merchant.sub_merchants.iter().any(|s| s == sub) => {
            Ok((sub.to_owned(), Some(sub.to_owned())))
        }
        Some(_) => Err(no_relation()),
    }
}

fn owner_of_order(o: &WxOrder) -> String {
    o.partner
        .as_ref()
        .map_or_else(|| o.mch_id.clone(), |p| p.sub_mchid.clone())
}

fn invalid(message: impl Into<String>) -> V3Error {
    v3_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

/// What is left to share of `o`: frozen, not shared, not unfrozen, not refunded (a refund takes
/// from the frozen money first).
fn unsplit(book: &SharingBook, o: &WxOrder) -> u64 {
    if !o.profit_sharing || o.paid_at.is_none() {
        return 0;
    }
    let used: u64 = book
        .sharings
        .values()
        .filter(|s| s.transaction_id == o.transaction_id)
        .map(|s| s.receivers.iter().map(|r| r.2).sum::<u64>() + s.unfrozen)
        .sum();
    o.total_fee.saturating_sub(used).saturating_sub(o.refunded)
}

/// Every ledger, by merchant or sub-merchant id.
pub fn ledgers(state: &SandboxState) -> BTreeMap<String, Ledger> {
    let wx = lock(&state.wechat);
    let v3 = lock(&state.v3);
    let book = &v3.sharing;
    let mut all: BTreeMap<String, Ledger> = BTreeMap::new();
    for o in wx.orders.values().filter(|o| o.paid_at.is_some()) {
        let l = all.entry(owner_of_order(o)).or_default();
        l.paid += o.total_fee;
        l.refunded += o.refunded;
        l.frozen += unsplit(book, o);
    }
    for s in book.sharings.values() {
        all.entry(s.owner.clone()).or_default().unfrozen += s.unfrozen;
        for (kind, account, amount, ..) in &s.receivers {
            all.entry(s.owner.clone()).or_default().shared_out += amount;
            if kind == "MERCHANT_ID" {
                all.entry(account.clone()).or_default().shared_in += amount;
            }
        }
    }
    for r in book.returns.values() {
        all.entry(r.owner.clone()).or_default().returned_in += r.amount;
        all.entry(r.return_mchid.clone()).or_default().returned_out += r.amount;
    }
    for l in all.values_mut() {
        let plus = l.paid + l.shared_in + l.returned_in;
        let minus = l.refunded + l.shared_out + l.returned_out;
        l.balance =
            i64::try_from(plus).unwrap_or(i64::MAX) - i64::try_from(minus).unwrap_or(i64::MAX);
    }
    all
}

/// Whether `owner` may refund `amount` more of `order`: the money it holds of that order (paid,
/// less what was shared and not given back) covers it.
pub(crate) fn refundable(state: &SandboxState, order: &WxOrder, amount: u64) -> bool {
    let v3 = lock(&state.v3);
    let book = &v3.sharing;
    let shared: u64 = book
        .sharings
        .values()
        .filter(|s| s.transaction_id == order.transaction_id)
        .map(|s| s.receivers.iter().map(|r| r.2).sum::<u64>())
        .sum();
    let returned: u64 = book
        .returns
        .values()
        .filter(|r| {
            book.sharings
                .values()
                .any(|s| s.transaction_id == order.transaction_id && s.order_id == r.order_id)
        })
        .map(|r| r.amount)
        .sum();
    order.refunded + amount + shared <= order.total_fee + returned
}

/// `POST /v3/profitsharing/receivers/add`.
pub(super) async fn add_receiver(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = (|| {
        let req = authenticated(&state, &method, &uri, &headers, &body)?;
        let b = &req.body;
        let (owner, sub) = owner_of(&req.merchant, b["sub_mchid"].as_str())?;
        let kind = receiver_type(b)?;
        let account = text(b, "account")?;
        let relation = text(b, "relation_type")?;
        match (&*kind, b["name"].as_str()) {
            ("MERCHANT_ID", None) => return Err(param("分账接收方类型为MERCHANT_ID时，name必填")),
            (_, Some(cipher)) => {
                decrypt_field(&state, &headers, cipher)?;
            }
            _ => {}
        }
        lock(&state.v3)
            .sharing
            .receivers
            .insert(format!("{owner}/{kind}/{account}"), relation.clone());
        let mut v = json!({"type": kind, "account": account, "relation_type": relation});
        if let Some(s) = sub {
            v["sub_mchid"] = json!(s);
        }
        Ok((StatusCode::OK, Some(v)))
    })();
    reply(&state, &headers, answer)
}

/// `POST /v3/profitsharing/receivers/delete`.
pub(super) async fn delete_receiver(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = (|| {
        let req = authenticated(&state, &method, &uri, &headers, &body)?;
        let b = &req.body;
        let (owner, sub) = owner_of(&req.merchant, b["sub_mchid"].as_str())?;
        let kind = receiver_type(b)?;
        let account = text(b, "account")?;
        lock(&state.v3)
            .sharing
            .receivers
            .remove(&format!("{owner}/{kind}/{account}"));
        let mut v = json!({"type": kind, "account": account});
        if let Some(s) = sub {
            v["sub_mchid"] = json!(s);
        }
        Ok((StatusCode::OK, Some(v)))
    })();
    reply(&state, &headers, answer)
}

fn receiver_type(b: &Value) -> Result<String, V3Error> {
    let kind = text(b, "type")?;
    if !matches!(
        kind.as_str(),
        "MERCHANT_ID" | "PERSONAL_OPENID" | "PERSONAL_SUB_OPENID"
    ) {
        return Err(param(
            "type: MERCHANT_ID, PERSONAL_OPENID or PERSONAL_SUB_OPENID",
        ));
    }
    Ok(kind)
}

/// The paid order `transaction_id` of `mch_id`'s `owner`.
fn paid_order(
    state: &SandboxState,
    mch_id: &str,
    owner: &str,
    transaction_id: &str,
) -> Result<WxOrder, V3Error> {
    lock(&state.wechat)
        .orders
        .values()
        .find(|o| {
            o.mch_id == mch_id
                && o.sign_type == "RSA"
                && owner_of_order(o) == owner
                && o.transaction_id == transaction_id
                && o.paid_at.is_some()
        })
        .cloned()
        .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))
}

fn sharing_json(s: &Sharing) -> Value {
    let receivers: Vec<Value> = s
        .receivers
        .iter()
        .map(|(kind, account, amount, description, detail_id)| {
            json!({"type": kind, "account": account, "amount": amount, "description": description,
                   "result": "SUCCESS", "detail_id": detail_id,
                   "create_time": rfc3339(s.created_at), "finish_time": rfc3339(s.created_at)})
        })
        .collect();
    let mut v = json!({"transaction_id": s.transaction_id, "out_order_no": s.out_order_no,
                       "order_id": s.order_id, "state": "FINISHED", "receivers": receivers});
    if let Some(sub) = &s.sub_mchid {
        v["sub_mchid"] = json!(sub);
    }
    v
}

/// `POST /v3/profitsharing/orders` (and, with `unfreeze`, `…/orders/unfreeze`).
fn create_sharing(
    state: &SandboxState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    unfreeze: bool,
) -> Result<Value, V3Error> {
    let req = authenticated(state, method, uri, headers, body)?;
    let b = &req.body;
    let (owner, sub) = owner_of(&req.merchant, b["sub_mchid"].as_str())?;
    let transaction_id = text(b, "transaction_id")?;
    let out_order_no = text(b, "out_order_no")?;
    let order = paid_order(state, &req.merchant.mch_id, &owner, &transaction_id)?;
    if !order.profit_sharing {
        return Err(invalid(
            "该笔订单不需要分账（下单时未设置 settle_info.profit_sharing）",
        ));
    }
    let mut receivers = Vec::new();
    if !unfreeze {
        for r in b["receivers"].as_array().into_iter().flatten() {
            let kind = receiver_type(r)?;
            let account = text(r, "account")?;
            let amount = r["amount"]
                .as_u64()
                .filter(|a| *a > 0)
                .ok_or_else(|| param("receivers.amount: a positive integer of fen"))?;
            let description = text(r, "description")?;
            if let Some(cipher) = r["name"].as_str() {
                decrypt_field(state, headers, cipher)?;
            }
            receivers.push((
                kind,
                account,
                amount,
                description,
                format!("3601{}", digits(24)),
            ));
        }
        if receivers.is_empty() {
            return Err(param("缺少参数 receivers"));
        }
    }
    let mut v3 = lock(&state.v3);
    let book = &mut v3.sharing;
    let key = format!("{}/{out_order_no}", req.merchant.mch_id);
    if let Some(existing) = book.sharings.get(&key) {
        let same = existing.transaction_id == transaction_id
            && existing.receivers.len() == receivers.len()
            && existing
                .receivers
                .iter()
                .zip(&receivers)
                .all(|(a, b)| (&a.0, &a.1, a.2) == (&b.0, &b.1, b.2));
        if !same {
            return Err(invalid("商户分账单号重复，且请求参数与原请求不一致"));
        }
        return Ok(sharing_json(existing));
    }
    for (kind, account, ..) in &receivers {
        if !book
            .receivers
            .contains_key(&format!("{owner}/{kind}/{account}"))
        {
            return Err(invalid(format!(
                "分账接收方 {account} 未添加，请先添加分账接收方"
            )));
        }
    }
    let left = unsplit(book, &order);
    let asked: u64 = receivers.iter().map(|r| r.2).sum();
    if asked > left {
        return Err(v3_error(
            StatusCode::FORBIDDEN,
            "NOT_ENOUGH",
            format!("分账金额超过可分账金额（剩余 {left} 分）"),
        ));
    }
    let unfrozen = if unfreeze || b["unfreeze_unsplit"].as_bool() == Some(true) {
        left - asked
    } else {
        0
    };
    let at = now();
    let sharing = Sharing {
        owner,
        sub_mchid: sub,
        transaction_id,
        out_order_no,
        order_id: format!("3008450740{}{}", &wechat_time(at)[..8], digits(10)),
        receivers,
        unfrozen,
        created_at: at,
    };
    let v = sharing_json(&sharing);
    let url = book.notify_urls.get(&req.merchant.mch_id).cloned();
    book.sharings.insert(key, sharing.clone());
    drop(v3);
    if let Some(url) = url {
        notify_shares(state, &req.merchant.mch_id, &url, &sharing);
    }
    Ok(v)
}

/// `PROFITSHARING.SUCCESS` for each receiver of `s`, to the merchant's configured URL.
fn notify_shares(state: &SandboxState, mch_id: &str, url: &str, s: &Sharing) {
    for (kind, account, amount, description, _) in &s.receivers {
        let mut plain = json!({
            "transaction_id": s.transaction_id, "order_id": s.order_id,
            "out_order_no": s.out_order_no, "success_time": rfc3339(s.created_at),
            "receiver": {"type": kind, "account": account, "amount": amount,
                         "description": description},
        });
        match &s.sub_mchid {
            Some(sub) => {
                plain["sp_mchid"] = json!(mch_id);
                plain["sub_mchid"] = json!(sub);
            }
            None => plain["mchid"] = json!(mch_id),
        }
        super::notify(
            state,
            mch_id,
            super::V3Notification {
                kind: "wechat.profitsharing",
                reference: &s.out_order_no,
                url,
                event_type: "PROFITSHARING.SUCCESS",
                summary: "分账成功",
                original_type: "profitsharing",
                plain,
            },
        );
    }
}

/// Where merchant `mch_id`'s profit-sharing notifications go from now on (`None`: nowhere).
pub fn set_notify_url(state: &SandboxState, mch_id: &str, url: Option<String>) {
    let urls = &mut lock(&state.v3).sharing.notify_urls;
    match url {
        Some(u) => urls.insert(mch_id.to_owned(), u),
        None => urls.remove(mch_id),
    };
}

/// `POST /v3/profitsharing/orders`.
pub(super) async fn create(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = create_sharing(&state, &method, &uri, &headers, &body, false)
        .map(|v| (StatusCode::OK, Some(v)));
    reply(&state, &headers, answer)
}

/// `POST /v3/profitsharing/orders/unfreeze`.
pub(super) async fn unfreeze(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = create_sharing(&state, &method, &uri, &headers, &body, true)
        .map(|v| (StatusCode::OK, Some(v)));
    reply(&state, &headers, answer)
}

/// A signed `GET` of `mch_id`'s record under `owner` (the merchant, or the `sub_mchid` of the
/// query): `find` looks it up by the merchant, the owner and the query's other fields.
fn owned_get(
    state: &SandboxState,
    raw: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
    find: impl FnOnce(&SharingBook, &str, &str, &BTreeMap<String, String>) -> Option<Value>,
) -> Response {
    let q = super::query_pairs(raw);
    let answer = authenticate(state, "GET", &path_and_query(uri), headers, b"").and_then(|m| {
        let (owner, _) = owner_of(&m, q.get("sub_mchid").map(String::as_str))?;
        let v3 = lock(&state.v3);
        find(&v3.sharing, &m.mch_id, &owner, &q)
            .map(|v| (StatusCode::OK, Some(v)))
            .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "记录不存在"))
    });
    reply(state, headers, answer)
}

/// `GET /v3/profitsharing/orders/{out_order_no}?transaction_id=…[&sub_mchid=…]`.
pub(super) async fn query(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    RawQuery(raw): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    owned_get(
        &state,
        raw.as_deref(),
        &uri,
        &headers,
        |book, mch, owner, q| {
            book.sharings
                .get(&format!("{mch}/{no}"))
                .filter(|s| s.owner == owner && Some(&s.transaction_id) == q.get("transaction_id"))
                .map(sharing_json)
        },
    )
}

fn return_json(r: &Return) -> Value {
    let mut v = json!({"order_id": r.order_id, "out_order_no": r.out_order_no,
                       "out_return_no": r.out_return_no, "return_id": r.return_id,
                       "return_mchid": r.return_mchid, "amount": r.amount, "result": "SUCCESS"});
    if let Some(sub) = &r.sub_mchid {
        v["sub_mchid"] = json!(sub);
    }
    v
}

/// `POST /v3/profitsharing/return-orders`: a merchant receiver gives (part of) its share back.
pub(super) async fn create_return(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = (|| {
        let req = authenticated(&state, &method, &uri, &headers, &body)?;
        let b = &req.body;
        let (owner, sub) = owner_of(&req.merchant, b["sub_mchid"].as_str())?;
        let out_return_no = text(b, "out_return_no")?;
        let return_mchid = text(b, "return_mchid")?;
        let amount = b["amount"]
            .as_u64()
            .filter(|a| *a > 0)
            .ok_or_else(|| param("amount: a positive integer of fen"))?;
        let mut v3 = lock(&state.v3);
        let book = &mut v3.sharing;
        let sharing = book
            .sharings
            .values()
            .find(|s| {
                s.owner == owner
                    && (b["out_order_no"].as_str() == Some(s.out_order_no.as_str())
                        || b["order_id"].as_str() == Some(s.order_id.as_str()))
            })
            .cloned()
            .ok_or_else(|| {
                v3_error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "分账单不存在")
            })?;
        let key = format!("{}/{out_return_no}", req.merchant.mch_id);
        if let Some(existing) = book.returns.get(&key) {
            if existing.amount != amount || existing.return_mchid != return_mchid {
                return Err(invalid("商户回退单号重复，且请求参数与原请求不一致"));
            }
            return Ok((StatusCode::OK, Some(return_json(existing))));
        }
        let shared: u64 = sharing
            .receivers
            .iter()
            .filter(|r| r.0 == "MERCHANT_ID" && r.1 == return_mchid)
            .map(|r| r.2)
            .sum();
        let returned: u64 = book
            .returns
            .values()
            .filter(|r| r.order_id == sharing.order_id && r.return_mchid == return_mchid)
            .map(|r| r.amount)
            .sum();
        if amount + returned > shared {
            return Err(invalid("回退金额超过该接收方分得的金额"));
        }
        let r = Return {
            owner,
            sub_mchid: sub,
            order_id: sharing.order_id.clone(),
            out_order_no: sharing.out_order_no.clone(),
            out_return_no,
            return_id: format!("3008450740{}", digits(18)),
            return_mchid,
            amount,
        };
        let v = return_json(&r);
        book.returns.insert(key, r);
        Ok((StatusCode::OK, Some(v)))
    })();
    reply(&state, &headers, answer)
}

/// `GET /v3/profitsharing/return-orders/{out_return_no}?out_order_no=…[&sub_mchid=…]`.
pub(super) async fn query_return(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    RawQuery(raw): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    owned_get(
        &state,
        raw.as_deref(),
        &uri,
        &headers,
        |book, mch, owner, q| {
            book.returns
                .get(&format!("{mch}/{no}"))
                .filter(|r| r.owner == owner && Some(&r.out_order_no) == q.get("out_order_no"))
                .map(return_json)
        },
    )
}

/// `GET /v3/profitsharing/transactions/{transaction_id}/amounts`.
pub(super) async fn amounts(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"").and_then(|m| {
        let order = lock(&state.wechat)
            .orders
            .values()
            .find(|o| o.mch_id == m.mch_id && o.transaction_id == id && o.paid_at.is_some())
            .cloned()
            .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))?;
        let left = unsplit(&lock(&state.v3).sharing, &order);
        Ok((
            StatusCode::OK,
            Some(json!({"transaction_id": id, "unsplit_amount": left})),
        ))
    });
    reply(&state, &headers, answer)
}
