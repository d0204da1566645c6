//! The sandbox's HTML: a page listing open orders with "pay" buttons, and the H5 (MWEB) payment
//! page a mobile browser is sent to.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use wechat_pay::Fen;

use super::{SandboxState, lock};

use html_escape::encode_quoted_attribute as esc;

fn pay_button(out_trade_no: &str, channel: &str, result: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/sandbox/pay-form\" style=\"display:inline\">\
         <input type=\"hidden\" name=\"out_trade_no\" value=\"{}\">\
         <input type=\"hidden\" name=\"channel\" value=\"{channel}\">\
         <button name=\"result\" value=\"{result}\">{label}</button></form>",
        esc(out_trade_no)
    )
}

/// `GET /sandbox`.
pub(super) async fn index(State(state): State<Arc<SandboxState>>) -> Html<String> {
    let mut rows = String::new();
    for o in lock(&state.wechat)
        .orders
        .values()
        .filter(|o| matches!(o.state.as_str(), "NOTPAY" | "USERPAYING"))
    {
        rows.push_str(&format!(
            "<tr><td>WeChat Pay</td><td>{}</td><td>{}</td><td>¥{}</td><td>{}</td><td>{} {}</td></tr>",
            esc(&o.out_trade_no),
            esc(&o.body),
            Fen::new(o.total_fee).to_yuan_string(),
            esc(&o.trade_type),
            pay_button(&o.out_trade_no, "wechat", "SUCCESS", "pay"),
            pay_button(&o.out_trade_no, "wechat", "PAYERROR", "fail"),
        ));
    }
    for t in lock(&state.alipay)
        .trades
        .values()
        .filter(|t| t.status == "WAIT_BUYER_PAY")
    {
        rows.push_str(&format!(
            "<tr><td>Alipay</td><td>{}</td><td>{}</td><td>¥{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.out_trade_no),
            esc(&t.subject),
            Fen::new(t.total_fen).to_yuan_string(),
            esc(&t.method),
            pay_button(&t.out_trade_no, "alipay", "SUCCESS", "pay"),
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"6\">No open orders.</td></tr>");
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Payment sandbox</title>\
         <meta http-equiv=\"refresh\" content=\"5\"></head><body>\
         <h1>Payment sandbox</h1><p>Open orders (refreshes every 5 s). JSON: \
         <a href=\"/sandbox/orders\">orders</a>, <a href=\"/sandbox/notifications\">notifications</a>, \
         <a href=\"/sandbox/messages\">messages</a>.</p>\
         <table border=\"1\" cellpadding=\"4\"><tr><th>channel</th><th>out_trade_no</th><th>subject</th>\
         <th>amount</th><th>type</th><th></th></tr>{rows}</table>\
         <h2>A buyer's payment code</h2><form method=\"post\" action=\"/sandbox/payment-code-form\">\
         <select name=\"channel\"><option value=\"wechat\">WeChat Pay</option><option value=\"alipay\">Alipay</option></select> \
         <select name=\"behaviour\"><option value=\"approve\">pays at once</option><option value=\"hold\">confirms on the phone</option>\
         <option value=\"decline\">cannot pay</option></select> <button>show a payment code</button></form></body></html>"
    ))
}

/// A buyer's payment code, as the phone shows it (the page's "show a payment code" form).
pub(super) fn payment_code(req: &crate::control::PaymentCodeRequest, code: &str) -> Html<String> {
    let provider = match req.channel {
        crate::control::Channel::Wechat => "WeChat Pay",
        crate::control::Channel::Alipay => "Alipay",
    };
    let behaviour = match req.behaviour {
        crate::payment_codes::Behaviour::Approve => "pays at once",
        crate::payment_codes::Behaviour::Hold => "confirms on the phone (decide on /sandbox)",
        crate::payment_codes::Behaviour::Decline => "cannot pay",
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{provider} payment code</title></head>\
         <body><h1>{provider} payment code</h1><p style=\"font:bold 2em monospace\" id=\"code\">{code}</p>\
         <p>Its buyer {behaviour}. Scan it (or type it) at the machine; it pays one order.</p>\
         <p><a href=\"/sandbox\">back</a></p></body></html>"
    ))
}

/// `GET /sandbox/h5pay?prepay_id=…`: the page an MWEB `mweb_url` leads to.
pub(super) async fn h5pay(
    State(state): State<Arc<SandboxState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Html<String> {
    let prepay_id = q.get("prepay_id").cloned().unwrap_or_default();
    let order = lock(&state.wechat)
        .orders
        .values()
        .find(|o| o.prepay_id == prepay_id)
        .cloned();
    Html(match order {
        None => {
            "<!doctype html><html><body><p>Unknown or expired payment.</p></body></html>".to_owned()
        }
        Some(o) => format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>WeChat Pay sandbox</title></head>\
             <body><h1>WeChat Pay sandbox</h1><p>{} — ¥{}</p>{}</body></html>",
            esc(&o.body),
            Fen::new(o.total_fee).to_yuan_string(),
            pay_button(&o.out_trade_no, "wechat", "SUCCESS", "Pay")
        ),
    })
}
