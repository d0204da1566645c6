//! The sandbox's state: orders and refunds (WeChat Pay, Alipay), tokens, codes, users, QR
//! tickets, menus and sent messages (WeChat MP). Held in memory behind one mutex per provider;
//! orders and refunds are also written to SQLite when `--db` is given.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// A WeChat Pay order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WxOrder {
    /// `appid`.
    pub app_id: String,
    /// `mch_id`.
    pub mch_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// WeChat's number, reported once paid.
    pub transaction_id: String,
    /// `body`.
    pub body: String,
    /// `total_fee`.
    pub total_fee: u64,
    /// `trade_type`.
    pub trade_type: String,
    /// `notify_url`.
    pub notify_url: Option<String>,
    /// `openid` (JSAPI; set when paid otherwise).
    pub openid: Option<String>,
    /// `product_id` (NATIVE).
    pub product_id: Option<String>,
    /// `attach`.
    pub attach: Option<String>,
    /// `device_info`.
    pub device_info: Option<String>,
    /// `fee_type`.
    pub fee_type: String,
    /// `prepay_id`.
    pub prepay_id: String,
    /// `code_url` (NATIVE).
    pub code_url: Option<String>,
    /// `mweb_url` (MWEB).
    pub mweb_url: Option<String>,
    /// `trade_state`.
    pub state: String,
    /// `time_expire` as sent.
    pub time_expire: Option<String>,
    /// When created (Unix seconds).
    pub created_at: i64,
    /// When paid (Unix seconds).
    pub paid_at: Option<i64>,
    /// The request's `sign_type`: notifications are signed the same way.
    pub sign_type: String,
    /// Created under a sandbox prefix: signed with the sandbox key.
    pub sandbox_key: bool,
    /// The parameters that made it, to tell a retry from a conflicting reuse of the number.
    pub fingerprint: String,
    /// Refunded so far, in fen.
    pub refunded: u64,
    /// Service-provider (partner) mode: the sub-merchant the order is for (`mch_id` is then the
    /// service provider's, `app_id` its `sp_appid`).
    #[serde(default)]
    pub partner: Option<PartnerOrder>,
    /// `settle_info.profit_sharing`: once paid, the money stays frozen for profit sharing.
    #[serde(default)]
    pub profit_sharing: bool,
}

/// A partner order's sub-merchant and payer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartnerOrder {
    /// `sub_mchid`.
    pub sub_mchid: String,
    /// `sub_appid`, when the sub-merchant's own app was used.
    pub sub_appid: Option<String>,
    /// `payer.sub_openid` (the payer under the sub-merchant's app).
    pub sub_openid: Option<String>,
}

/// A WeChat Pay refund.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WxRefund {
    /// `appid`.
    pub app_id: String,
    /// `mch_id`.
    pub mch_id: String,
    /// `out_refund_no`.
    pub out_refund_no: String,
    /// `refund_id`.
    pub refund_id: String,
    /// `out_trade_no` of the order.
    pub out_trade_no: String,
    /// `transaction_id` of the order.
    pub transaction_id: String,
    /// `total_fee` of the order.
    pub total_fee: u64,
    /// `refund_fee`.
    pub refund_fee: u64,
    /// `PROCESSING` or `SUCCESS`.
    pub status: String,
    /// Where the refund notification goes.
    pub notify_url: Option<String>,
    /// When requested.
    pub created_at: i64,
    /// When it succeeded.
    pub success_at: Option<i64>,
    /// Created under a sandbox prefix.
    pub sandbox_key: bool,
    /// Made through API v3 (its notification is v3's JSON).
    #[serde(default)]
    pub v3: bool,
    /// Partner mode: the sub-merchant of the order refunded.
    #[serde(default)]
    pub sub_mchid: Option<String>,
}

/// An Alipay trade.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AliTrade {
    /// `app_id`.
    pub app_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `trade_no`.
    pub trade_no: String,
    /// `total_amount` in fen.
    pub total_fen: u64,
    /// `subject`.
    pub subject: String,
    /// The API method that created it.
    pub method: String,
    /// `WAIT_BUYER_PAY`, `TRADE_SUCCESS`, `TRADE_CLOSED`, `TRADE_FINISHED`.
    pub status: String,
    /// `notify_url`.
    pub notify_url: Option<String>,
    /// `return_url` (page and wap payments).
    pub return_url: Option<String>,
    /// Refunded so far, in fen.
    pub refunded_fen: u64,
    /// When created.
    pub created_at: i64,
    /// When paid.
    pub paid_at: Option<i64>,
    /// The buyer, once paid.
    pub buyer_id: Option<String>,
    /// Third-party apps: the merchant (its Alipay user id) a service provider's app made the
    /// trade for, with the merchant's `app_auth_token`; the money is the merchant's.
    #[serde(default)]
    pub merchant: Option<String>,
}

/// An Alipay refund (synchronous, so always successful once recorded).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AliRefund {
    /// `app_id`.
    pub app_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `out_request_no` (defaults to the out_trade_no).
    pub out_request_no: String,
    /// `refund_amount` in fen.
    pub amount_fen: u64,
    /// When refunded.
    pub created_at: i64,
}

/// WeChat Pay's orders and refunds, keyed `mch_id/number`.
#[derive(Debug, Default)]
pub struct WechatPayState {
    /// Orders.
    pub orders: BTreeMap<String, WxOrder>,
    /// Refunds.
    pub refunds: BTreeMap<String, WxRefund>,
}

/// Alipay's trades and refunds, keyed `app_id/number`.
#[derive(Debug, Default)]
pub struct AlipayState {
    /// Trades.
    pub trades: BTreeMap<String, AliTrade>,
    /// Refunds, keyed `app_id/out_trade_no/out_request_no`.
    pub refunds: BTreeMap<String, AliRefund>,
    /// Bills behind download links, by token (not persisted).
    pub(crate) bill_links: BTreeMap<String, crate::alipay::bills::BillLink>,
    /// Fund transfers, keyed `app_id/out_biz_no`.
    pub transfers: BTreeMap<String, crate::alipay::transfers::AliTransfer>,
    /// Buyer login: one-time auth codes, access tokens and refresh tokens (not persisted).
    pub(crate) auth_codes: BTreeMap<String, crate::alipay::oauth::AliGrant>,
    pub(crate) access_tokens: BTreeMap<String, crate::alipay::oauth::AliGrant>,
    pub(crate) refresh_tokens: BTreeMap<String, crate::alipay::oauth::AliGrant>,
    /// Third-party apps: authorization codes, tokens and refresh tokens (not persisted).
    pub(crate) app_auth: crate::alipay::app_auth::AppAuthBook,
    /// Settlement sharing: bound receivers and settlements (not persisted).
    pub(crate) settle: crate::alipay::settle::SettleBook,
}

/// An access token WeChat MP issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// Its app.
    pub app_id: String,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
}

/// A follower of an Official Account.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MpUser {
    /// Whether they follow.
    pub subscribed: bool,
    /// When they last followed.
    pub subscribe_time: i64,
    /// The QR scene they followed through.
    pub qr_scene_str: String,
}

/// A QR ticket.
#[derive(Debug, Clone)]
pub struct QrTicket {
    /// Its app.
    pub app_id: String,
    /// The scene (integer scenes as text).
    pub scene: String,
    /// When it expires (`None`: permanent).
    pub expires_at: Option<i64>,
}

/// A message an app "sent" to a user.
#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    /// Sequence number (the `msgid` returned).
    pub msgid: i64,
    /// The app.
    pub app_id: String,
    /// `template`, `subscribe` or `custom`.
    pub kind: String,
    /// The recipient.
    pub touser: String,
    /// The request body as sent.
    pub body: serde_json::Value,
}

/// A one-time code minted for a user.
#[derive(Debug, Clone)]
pub struct MintedCode {
    /// Its app.
    pub app_id: String,
    /// The user.
    pub open_id: String,
    /// OAuth scope (OAuth codes).
    pub scope: String,
    /// When minted.
    pub issued_at: i64,
}

/// A web (OAuth) token.
#[derive(Debug, Clone)]
pub struct WebToken {
    /// Its app.
    pub app_id: String,
    /// The user.
    pub open_id: String,
    /// Its scope.
    pub scope: String,
    /// When it expires.
    pub expires_at: i64,
}

/// WeChat MP's state.
#[derive(Debug, Default)]
pub struct MpState {
    /// Every app access token ever issued and still remembered.
    pub tokens: HashMap<String, IssuedToken>,
    /// The latest `/cgi-bin/token` token per app.
    pub latest_token: HashMap<String, String>,
    /// The current stable token per app.
    pub stable_token: HashMap<String, String>,
    /// OAuth codes.
    pub oauth_codes: HashMap<String, MintedCode>,
    /// Mini Program login codes.
    pub js_codes: HashMap<String, MintedCode>,
    /// Codes already exchanged (a second exchange is `40163`).
    pub used_codes: HashSet<String>,
    /// Web access tokens.
    pub web_tokens: HashMap<String, WebToken>,
    /// Refresh tokens.
    pub refresh_tokens: HashMap<String, WebToken>,
    /// Followers, keyed `app_id/openid`.
    pub users: HashMap<String, MpUser>,
    /// QR tickets.
    pub tickets: HashMap<String, QrTicket>,
    /// Menus per app.
    pub menus: HashMap<String, serde_json::Value>,
    /// Sent messages.
    pub messages: Vec<SentMessage>,
    /// The last message id handed out.
    pub msg_seq: i64,
}

/// `a/b` keys.
pub fn key(a: &str, b: &str) -> String {
    format!("{a}/{b}")
}

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `yyyyMMddHHmmss` in UTC+8.
pub fn wechat_time(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `yyyy-MM-dd HH:mm:ss` in UTC+8.
pub fn dashed_time(unix: i64) -> String {
    let w = wechat_time(unix);
    format!(
        "{}-{}-{} {}:{}:{}",
        &w[0..4],
        &w[4..6],
        &w[6..8],
        &w[8..10],
        &w[10..12],
        &w[12..14]
    )
}

/// `n` random bytes from the operating system, or `None` if its random source failed.
pub fn random_bytes(n: usize) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).ok().map(|()| bytes)
}

/// `n` bytes for an identifier the sandbox hands out (a transaction id, a nonce): random, or —
/// should the random source fail — unique per process, and the failure logged (never zeros).
fn id_bytes(n: usize) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    random_bytes(n).unwrap_or_else(|| {
        tracing::error!("the random source failed; handing out counter-based identifiers");
        let seed = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
            ^ time::OffsetDateTime::now_utc()
                .unix_timestamp_nanos()
                .unsigned_abs();
        (0..n).map(|i| (seed >> ((i % 16) * 8)) as u8).collect()
    })
}

/// `n` random decimal digits.
pub fn digits(n: usize) -> String {
    id_bytes(n)
        .iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// 32 random hex characters.
pub fn hex32() -> String {
    id_bytes(16).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_china_standard_time() {
        // 2024-01-31 16:05:09 UTC
        assert_eq!(wechat_time(1_706_717_109), "20240201000509");
        assert_eq!(dashed_time(1_706_717_109), "2024-02-01 00:05:09");
    }
}
