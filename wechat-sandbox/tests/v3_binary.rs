//! The project's `wechat_pay::v3` client against the `wechat-sandbox` binary, every v3 endpoint:
//! orders (JSAPI, APP, H5, Native), queries, close, refunds (with an abnormal one), bills,
//! transfers, platform certificates and their rotation; answers and notifications verified as
//! the client verifies WeChat's, notifications retried until acknowledged, signature probes
//! refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use wechat_pay::Fen;
use wechat_pay::api::{AccountType, BillType};
use wechat_pay::v3::{
    AbnormalRefund, AbnormalRefundTo, ApiV3Key, AppOrder, CancelTransfer, Client, CloseTransaction,
    CreateRefund, CreateTransfer, FundFlowBill, H5Order, JsapiOrder, MerchantKey, NativeOrder,
    Notification, OrderRequest, QueryRefund, QueryTransaction, QueryTransfer, RefundStatus,
    TradeBill, TradeState, TransactionRef, TransferState, V3ErrorCode, WechatPayKey,
};

const MCH: &str = "1900009191";
const CERT_MCH: &str = "1900009192";
const APP: &str = "wxd678efh567hg6787";
const SERIAL: &str = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C";
const API_V3_KEY: &str = "0123456789abcdefghijABCDEFGHIJ01";
const MERCHANT_KEY: &str = include_str!("../../wechat-pay/testdata/v3/merchant_private_key.pem");
const MERCHANT_PUBLIC_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../wechat-pay/testdata/v3/merchant_public_key.pem"
);

struct Running {
    url: String,
    child: Child,
    http: reqwest::Client,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let body = r.bytes().await.unwrap();
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap()
    }

    /// The client of `mch`: with the public key the sandbox serves, or (certificate mode) with
    /// platform certificates it downloads.
    async fn client(&self, mch: &str, certificates: bool) -> Client {
        let builder = Client::builder(
            mch,
            SERIAL,
            MerchantKey::from_pem(MERCHANT_KEY).unwrap(),
            ApiV3Key::new(API_V3_KEY).unwrap(),
        )
        .base_url(self.url.clone());
        let builder = if certificates {
            // At most one download on demand a second (a minute by default).
            builder
                .platform_certificates()
                .certificate_download_interval(std::time::Duration::from_secs(1))
        } else {
            let key = self.get("/sandbox/wechatpay-public-key").await;
            builder.wechat_pay_key(
                WechatPayKey::from_pem(
                    key["public_key_id"].as_str().unwrap(),
                    key["public_key"].as_str().unwrap(),
                )
                .unwrap(),
            )
        };
        builder.build().unwrap()
    }
}

fn start() -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-sandbox"))
        .env_clear()
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--merchant-v3",
            &format!("{MCH},{APP},{SERIAL},{MERCHANT_PUBLIC_PATH},{API_V3_KEY}"),
            "--merchant-v3",
            &format!("{CERT_MCH},{APP},{SERIAL},{MERCHANT_PUBLIC_PATH},{API_V3_KEY},certificates"),
            "--time-scale",
            "1000",
            "--refund-delay-secs",
            "0",
            "--sign-probe-rate",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the sandbox did not say where it listens");
        if line.contains("listening on") {
            break;
        }
    }
    Running {
        url: format!("http://127.0.0.1:{port}"),
        child,
        http: reqwest::Client::new(),
    }
}

/// What a notify URL verified and decrypted, and how many deliveries it refused.
#[derive(Default)]
struct Inbox {
    events: Vec<(String, Notification)>,
    refused: usize,
    /// Authentic deliveries to answer 500 before acknowledging (WeChat must retry them).
    fail_next: usize,
}

type SharedInbox = Arc<Mutex<Inbox>>;

/// A notify URL that verifies every delivery with `client` (401 when it does not verify, as a
/// merchant must answer a forgery or a signature probe).
async fn notify_endpoint(client: Client) -> (String, SharedInbox) {
    let inbox: SharedInbox = Arc::default();
    let kept = inbox.clone();
    let app = axum::Router::new().route(
        "/notify",
        post(move |headers: HeaderMap, body: Bytes| {
            let (kept, client) = (kept.clone(), client.clone());
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                match client.notification(header, &body).await {
                    Ok((envelope, event)) => {
                        let mut inbox = kept.lock().unwrap();
                        if inbox.fail_next > 0 {
                            inbox.fail_next -= 1;
                            return StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        inbox.events.push((envelope.event_type, event));
                        StatusCode::NO_CONTENT
                    }
                    Err(_) => {
                        kept.lock().unwrap().refused += 1;
                        StatusCode::UNAUTHORIZED
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

/// Waits for the event of `event_type` and returns it.
async fn event(inbox: &SharedInbox, event_type: &str) -> Notification {
    for _ in 0..200 {
        if let Some((_, n)) = inbox
            .lock()
            .unwrap()
            .events
            .iter()
            .find(|(t, _)| t == event_type)
        {
            return n.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {event_type} notification");
}

fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{prefix}{}{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

fn order(no: &str, total: u64, notify_url: &str) -> OrderRequest {
    OrderRequest::new(APP, "Cola", no, Fen::new(total), notify_url)
}

fn v3_code(e: &wechat_pay::Error) -> (u16, V3ErrorCode) {
    match e {
        wechat_pay::Error::V3Api { status, code, .. } => (*status, code.clone()),
        other => panic!("not a v3 API error: {other:?}"),
    }
}

fn today_utc8() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .date()
}

#[tokio::test]
async fn every_v3_endpoint_answers_the_projects_client() {
    let sandbox = start();
    let c = sandbox.client(MCH, false).await;
    let (notify_url, inbox) = notify_endpoint(c.clone()).await;

    // Orders of every kind.
    let jsapi = unique("V3J");
    let prepay = c
        .execute(&JsapiOrder {
            order: order(&jsapi, 500, &notify_url),
            openid: "o-payer".into(),
        })
        .await
        .unwrap();
    assert!(prepay.prepay_id.starts_with("wx"));
    let app = c
        .execute(&AppOrder(order(&unique("V3A"), 100, &notify_url)))
        .await
        .unwrap();
    assert!(app.prepay_id.starts_with("wx"));
    let h5 = c
        .execute(&H5Order {
            order: order(&unique("V3H"), 100, &notify_url),
            payer_client_ip: "203.0.113.7".into(),
            h5_type: "Wap".into(),
        })
        .await
        .unwrap();
    assert!(h5.h5_url.starts_with(&sandbox.url), "{}", h5.h5_url);
    let native = unique("V3N");
    let code = c
        .execute(&NativeOrder(order(&native, 100, &notify_url)))
        .await
        .unwrap();
    assert!(code.code_url.starts_with("weixin://wxpay/bizpayurl"));
    // JSAPI without a payer is WeChat's PARAM_ERROR.
    let bare = JsapiOrder {
        order: order(&unique("V3J"), 1, &notify_url),
        openid: String::new(),
    };
    let e = c.execute(&bare).await.unwrap_err();
    assert_eq!(v3_code(&e), (400, V3ErrorCode::ParamError));

    // Unpaid: queried, closed.
    let q = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(
            native.clone(),
        )))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::NotPay);
    c.execute(&CloseTransaction {
        out_trade_no: native.clone(),
    })
    .await
    .unwrap();
    let q = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(native)))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Closed);
    let e = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(unique(
            "NONE",
        ))))
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (404, V3ErrorCode::OrderNotExist));

    // Paid: the notification is refused twice (500) and sent again until acknowledged.
    inbox.lock().unwrap().fail_next = 2;
    sandbox
        .control("/sandbox/pay", json!({"out_trade_no": jsapi}))
        .await;
    let Notification::Transaction(t) = event(&inbox, "TRANSACTION.SUCCESS").await else {
        panic!()
    };
    assert_eq!(t.out_trade_no, jsapi);
    assert_eq!(t.amount.as_ref().unwrap().total, Fen::new(500));
    let log = sandbox.get("/sandbox/notifications").await;
    let delivery = log
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "wechat.payment" && n["reference"] == jsapi.as_str())
        .unwrap();
    assert_eq!(delivery["delivered"], true, "{delivery}");
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    let tid = t.transaction_id.clone().unwrap();
    let by_id = c
        .execute(&QueryTransaction(TransactionRef::TransactionId(tid)))
        .await
        .unwrap();
    assert_eq!(by_id.trade_state, TradeState::Success);
    let e = c
        .execute(&CloseTransaction {
            out_trade_no: jsapi.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (400, V3ErrorCode::OrderPaid));

    // Refunds: created (idempotent), too much refused, queried, completed and notified.
    let refund_no = unique("RF");
    let refund = CreateRefund::new(
        TransactionRef::OutTradeNo(jsapi.clone()),
        &refund_no,
        Fen::new(200),
        Fen::new(500),
    )
    .notify_url(&notify_url);
    let created = c.execute(&refund).await.unwrap();
    assert_eq!(created.status, RefundStatus::Processing);
    assert_eq!(
        c.execute(&refund).await.unwrap().refund_id,
        created.refund_id
    );
    let e = c
        .execute(&CreateRefund::new(
            TransactionRef::OutTradeNo(jsapi.clone()),
            unique("RF"),
            Fen::new(301),
            Fen::new(500),
        ))
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (400, V3ErrorCode::InvalidRequest));
    sandbox
        .control(
            "/sandbox/refund-complete",
            json!({"out_refund_no": refund_no}),
        )
        .await;
    let Notification::Refund(r) = event(&inbox, "REFUND.SUCCESS").await else {
        panic!()
    };
    assert_eq!(r.out_refund_no, refund_no);
    assert_eq!(r.amount.refund, Fen::new(200));
    let q = c.execute(&QueryRefund::new(&refund_no)).await.unwrap();
    assert_eq!(q.status, RefundStatus::Success);
    let e = c
        .execute(&QueryRefund::new(unique("NONE")))
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (404, V3ErrorCode::ResourceNotExists));

    // An abnormal refund, sent again to a bank card the merchant names (encrypted fields).
    let abnormal_no = unique("RA");
    let abnormal = c
        .execute(
            &CreateRefund::new(
                TransactionRef::OutTradeNo(jsapi.clone()),
                &abnormal_no,
                Fen::new(100),
                Fen::new(500),
            )
            .notify_url(&notify_url),
        )
        .await
        .unwrap();
    sandbox
        .control(
            "/sandbox/refund-complete",
            json!({"out_refund_no": abnormal_no, "status": "ABNORMAL"}),
        )
        .await;
    event(&inbox, "REFUND.ABNORMAL").await;
    let applied = c
        .execute(&AbnormalRefund {
            refund_id: abnormal.refund_id.clone(),
            out_refund_no: abnormal_no.clone(),
            to: AbnormalRefundTo::UserBankCard {
                bank_type: "ICBC_DEBIT".into(),
                bank_account: "6222000011112222".into(),
                real_name: "张三".into(),
            },
            sub_mchid: None,
        })
        .await
        .unwrap();
    assert_eq!(applied.status, RefundStatus::Processing);
    sandbox
        .control(
            "/sandbox/refund-complete",
            json!({"out_refund_no": abnormal_no}),
        )
        .await;
    assert_eq!(
        c.execute(&QueryRefund::new(&abnormal_no))
            .await
            .unwrap()
            .status,
        RefundStatus::Success
    );

    // A fault: the merchant's balance is short (403 NOT_ENOUGH, retryable after a top-up).
    sandbox
        .control(
            "/sandbox/faults",
            json!({"api": "POST /v3/refund/domestic/refunds", "code": "NOT_ENOUGH"}),
        )
        .await;
    let e = c
        .execute(&CreateRefund::new(
            TransactionRef::OutTradeNo(jsapi.clone()),
            unique("RF"),
            Fen::new(1),
            Fen::new(500),
        ))
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (403, V3ErrorCode::NotEnough));

    // Bills of today: the payment and the refunds, downloaded, hash-checked, gunzipped.
    let bill = c
        .trade_bill(&TradeBill {
            bill_date: today_utc8(),
            bill_type: BillType::All,
            gzip: true,
            sub_mchid: None,
        })
        .await
        .unwrap();
    assert!(
        bill.rows
            .iter()
            .any(|r| r.out_trade_no == jsapi && r.trade_state.as_deref() == Some("SUCCESS")),
        "{bill:?}"
    );
    assert!(
        bill.rows
            .iter()
            .any(|r| r.out_refund_no.as_deref() == Some(refund_no.as_str())),
        "{bill:?}"
    );
    let flow = c
        .fund_flow_bill(&FundFlowBill {
            bill_date: today_utc8(),
            account_type: AccountType::Basic,
            gzip: false,
        })
        .await
        .unwrap();
    assert!(!flow.rows.is_empty());
    let e = c
        .execute(&TradeBill {
            bill_date: time::Date::from_calendar_date(2020, time::Month::January, 1).unwrap(),
            bill_type: BillType::All,
            gzip: false,
            sub_mchid: None,
        })
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e).0, 400);

    // Transfers: the payee's name encrypted to the sandbox's key; confirmed, notified;
    // another cancelled.
    let bill_no = unique("TB");
    let transfer = CreateTransfer::new(APP, &bill_no, "1000", "o-payee", Fen::new(300), "Prize")
        .user_name("李四")
        .report("活动名称", "新年抽奖")
        .notify_url(&notify_url);
    let created = c.execute(&transfer).await.unwrap();
    assert_eq!(created.state, TransferState::WaitUserConfirm);
    assert!(created.package_info.is_some());
    sandbox
        .control("/sandbox/transfer-confirm", json!({"out_bill_no": bill_no}))
        .await;
    let Notification::Transfer(done) = event(&inbox, "MCHTRANSFER.BILL.FINISHED").await else {
        panic!()
    };
    assert_eq!(done.out_bill_no, bill_no);
    assert_eq!(done.state, TransferState::Success);
    let q = c
        .execute(&QueryTransfer {
            out_bill_no: bill_no.clone(),
        })
        .await
        .unwrap();
    assert_eq!(q.state, TransferState::Success);
    assert_eq!(q.transfer_amount, Some(Fen::new(300)));
    let other = unique("TB");
    c.execute(&CreateTransfer::new(
        APP,
        &other,
        "1000",
        "o-payee",
        Fen::new(300),
        "Prize",
    ))
    .await
    .unwrap();
    let cancelled = c
        .execute(&CancelTransfer {
            out_bill_no: other.clone(),
        })
        .await
        .unwrap();
    assert_eq!(cancelled.state, TransferState::Cancelled);
    let e = c
        .execute(&CancelTransfer {
            out_bill_no: bill_no,
        })
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (400, V3ErrorCode::InvalidRequest));

    // Every notification was preceded by a signature probe, and every probe was refused.
    let log = sandbox.get("/sandbox/notifications").await;
    let probes: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "wechat.sign_probe")
        .collect();
    assert!(probes.len() >= 5, "{log}");
    assert!(probes.iter().all(|p| p["delivered"] == false), "{log}");
    assert!(inbox.lock().unwrap().refused >= probes.len());
}

#[tokio::test]
async fn requests_signed_with_another_key_are_refused_as_wechat_refuses_them() {
    let sandbox = start();
    let stranger = Client::builder(
        MCH,
        SERIAL,
        MerchantKey::generate().unwrap(),
        ApiV3Key::new(API_V3_KEY).unwrap(),
    )
    .wechat_pay_key({
        let key = sandbox.get("/sandbox/wechatpay-public-key").await;
        WechatPayKey::from_pem(
            key["public_key_id"].as_str().unwrap(),
            key["public_key"].as_str().unwrap(),
        )
        .unwrap()
    })
    .base_url(sandbox.url.clone())
    .build()
    .unwrap();
    let e = stranger
        .execute(&NativeOrder(order(
            &unique("V3X"),
            1,
            "http://127.0.0.1:9/n",
        )))
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (401, V3ErrorCode::SignError));
    let e = stranger.execute(&QueryRefund::new("R1")).await.unwrap_err();
    assert_eq!(v3_code(&e), (401, V3ErrorCode::SignError));
    // No Authorization at all.
    let bare = sandbox
        .http
        .get(format!("{}/v3/certificates", sandbox.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 401);
}

#[tokio::test]
async fn certificate_mode_follows_a_platform_certificate_rotation_without_a_restart() {
    let sandbox = start();
    let c = sandbox.client(CERT_MCH, true).await;
    let (notify_url, inbox) = notify_endpoint(c.clone()).await;
    // The first answer names a serial the client does not know: it downloads the certificates.
    let no = unique("V3C");
    c.execute(&NativeOrder(order(&no, 100, &notify_url)))
        .await
        .unwrap();
    let serials = |c: &Client, s: &str| c.wechat_pay_key(s).is_some();

    let rotated = sandbox
        .control("/sandbox/wechatpay-rotate", json!({}))
        .await;
    let new_serial = rotated["serial_no"].as_str().unwrap().to_owned();
    assert!(!serials(&c, &new_serial));
    // Answers are signed with the new certificate from now on; the same client follows, once
    // its download interval allows another download (here a second).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let q = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(no.clone())))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::NotPay);
    assert!(serials(&c, &new_serial));
    // So are notifications.
    sandbox
        .control("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    let Notification::Transaction(t) = event(&inbox, "TRANSACTION.SUCCESS").await else {
        panic!()
    };
    assert_eq!(t.out_trade_no, no);
    // An error answer too is signed and read as WeChat's typed error.
    let e = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(unique(
            "NONE",
        ))))
        .await
        .unwrap_err();
    assert_eq!(v3_code(&e), (404, V3ErrorCode::OrderNotExist));
}
