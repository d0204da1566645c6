//! The zero-setup configuration: SQLite, the embedded emulator, in-process locks, timers and
//! simulated machines.

use sqlx::{AnyConnection, Connection, Executor};

use super::{Options, Vending, flows};
use crate::support::unique;

#[tokio::test]
async fn buying_completes_and_decrements_capacity() {
    let v = Vending::start(Options::default()).await;
    flows::buy_completes(&v).await;
    flows::last_item_then_sold_out(&v).await;
    flows::paid_order_not_cancellable(&v).await;
    v.stop().await;
}

#[tokio::test]
async fn racing_buyers_one_order_the_rest_machine_busy() {
    let v = Vending::start(Options::default()).await;
    flows::racing_buyers(&v).await;
    v.stop().await;
}

#[tokio::test]
async fn unpaid_order_times_out_and_frees_the_machine() {
    let v = Vending::start(Options {
        order_timeout_secs: 1,
        ..Options::default()
    })
    .await;
    flows::unpaid_times_out(&v, 1).await;
    v.stop().await;
}

#[tokio::test]
async fn late_payment_on_an_invalid_order_is_refunded() {
    let v = Vending::start(Options {
        order_timeout_secs: 1,
        ..Options::default()
    })
    .await;
    flows::late_payment_refunded(&v, 1).await;
    v.stop().await;
}

#[tokio::test]
async fn vend_failure_is_refunded() {
    let v = Vending::start(Options {
        fail_rate: 1.0,
        ..Options::default()
    })
    .await;
    flows::vend_failure_refunded(&v).await;
    flows::wechat_vend_failure_refund_notification(&v).await;
    v.stop().await;
}

#[tokio::test]
async fn a_lost_refund_notification_still_ends_refunded() {
    let v = Vending::start(Options {
        fail_rate: 1.0,
        reconcile: Some((1, 1)),
        ..Options::default()
    })
    .await;
    flows::wechat_refund_notification_lost(&v).await;
    v.stop().await;
}

#[tokio::test]
async fn duplicate_notifications_vend_once() {
    let v = Vending::start(Options::default()).await;
    flows::duplicate_notifications_vend_once(&v).await;
    v.stop().await;
}

#[tokio::test]
async fn mini_program_buyer_pays_with_wechat() {
    let v = Vending::start(Options::default()).await;
    flows::wechat_mini_program_buyer(&v).await;
    v.stop().await;
}

/// A machine that never answers: after `VEND_TIMEOUT_SECS` the order fails and is refunded; the
/// machine's answer arriving later changes nothing.
#[tokio::test]
async fn silent_machine_times_out_and_refunds() {
    let v = Vending::start(Options {
        vend_timeout_secs: 1,
        latency_ms: 4_000,
        ..Options::default()
    })
    .await;
    let order = v.order("VM0001", 5).await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    let before = v.slot_capacity("VM0001", "B3").await;
    v.sandbox_pay(&no).await;
    let refunded = v.wait_for(&no, "REFUNDED", 20).await;
    assert_eq!(refunded["reason"], "the machine did not answer in time");
    // The (successful) answer arrives after the failure: logged, not applied.
    tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
    assert_eq!(v.order_view(&no).await["status"], "REFUNDED");
    assert_eq!(v.slot_capacity("VM0001", "B3").await, before);
    v.stop().await;
}

fn sqlite_file() -> String {
    let path = std::env::temp_dir().join(format!("{}.db", unique("vending-sweep-")));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Rewrites an order behind the server's back (`sql` takes the order number as its one `?`), to
/// leave it as a crash would have.
async fn rewrite_order(database_url: &str, sql: &str, order_no: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(database_url).await.unwrap();
    conn.execute(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).bind(order_no))
        .await
        .unwrap();
}

/// A restart loses the in-process timers; the sweep closes what they would have closed.
#[tokio::test]
async fn sweep_closes_orders_whose_timer_was_lost() {
    let url = sqlite_file();
    let v = Vending::start(Options {
        database_url: Some(url.clone()),
        ..Options::default()
    })
    .await;
    let order = v.order("VM0003", 5).await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    // As if it was created 11 minutes ago, before a restart (its 10-minute timer is gone).
    rewrite_order(
        &url,
        "UPDATE vm_orders SET created_at = created_at - 660, updated_at = updated_at - 660 \
         WHERE order_no = ?",
        &no,
    )
    .await;
    v.state.orders.sweep().await.unwrap();
    let order = v.order_view(&no).await;
    assert_eq!(order["status"], "INVALID");
    assert_eq!(order["reason"], "not paid in time");
    // And the machine is free.
    let next = v.order("VM0003", 5).await;
    assert_eq!(next["status"], "CREATED");
    v.stop().await;
}

/// A stop between "vend failed" and asking for the refund: the sweep finds the VEND_FAILED
/// order without a refund and refunds it.
#[tokio::test]
async fn sweep_refunds_a_failed_vend_left_without_refund() {
    let url = sqlite_file();
    let v = Vending::start(Options {
        database_url: Some(url.clone()),
        latency_ms: 60_000, // the machine stays silent for the test's life
        ..Options::default()
    })
    .await;
    let order = v.order("VM0002", 2).await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.sandbox_pay(&no).await;
    v.wait_for(&no, "VENDING", 20).await;
    // As the server would have left it: failed a minute ago, the refund never asked for.
    rewrite_order(
        &url,
        "UPDATE vm_orders SET status = 'VEND_FAILED', reason = 'the machine did not answer in time', \
         updated_at = updated_at - 60, ended_at = updated_at - 60 WHERE order_no = ?",
        &no,
    )
    .await;
    v.state.orders.sweep().await.unwrap();
    let refunded = v.wait_for(&no, "REFUNDED", 10).await;
    assert_eq!(refunded["refund_no"], format!("R{no}"));
    v.stop().await;
}

/// The sweep's refund query (two indexed scans since issue 20) finds failed vends and refunds
/// asked for but unfinished, oldest first, and nothing else.
#[tokio::test]
async fn refunds_due_are_failed_vends_and_unfinished_refunds_only() {
    let url = sqlite_file();
    let v = Vending::start(Options {
        database_url: Some(url.clone()),
        ..Options::default()
    })
    .await;
    let mut nos = Vec::new();
    for (machine, sku, sql) in [
        (
            "VM0001",
            1,
            "UPDATE vm_orders SET status = 'VEND_FAILED', updated_at = updated_at - 300 WHERE order_no = ?",
        ),
        (
            "VM0002",
            2,
            "UPDATE vm_orders SET status = 'INVALID', refund_no = 'R' || order_no, updated_at = updated_at - 200 WHERE order_no = ?",
        ),
        (
            "VM0003",
            5,
            "UPDATE vm_orders SET status = 'REFUNDED', refund_no = 'R' || order_no, updated_at = updated_at - 100 WHERE order_no = ?",
        ),
    ] {
        let order = v.order(machine, sku).await;
        let no = order["order_no"].as_str().unwrap().to_owned();
        rewrite_order(&url, sql, &no).await;
        nos.push(no);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let due: Vec<String> = v
        .state
        .orders
        .db()
        .refunds_due(now - 30, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.order_no)
        .collect();
    assert_eq!(due, [nos[0].clone(), nos[1].clone()]);
    v.stop().await;
}

/// Demo mode on WeChat Pay API v3 (`DEMO_WECHAT_API=v3`): the embedded emulator and the demo
/// merchant speak v3.
pub(super) fn on_v3(options: Options) -> Options {
    let mut providers = examples::vending::config::VendingConfig::embedded().providers;
    providers.wechat_pay.demo_wechat_api = "v3".into();
    Options {
        providers: Some(providers),
        ..options
    }
}

/// Buying through a WeChat Pay v3 order: RSA-signed `wx.requestPayment` parameters, the v3
/// payment notification verified from its headers, COMPLETED.
#[tokio::test]
async fn on_api_v3_a_mini_program_buyer_pays_with_wechat() {
    let v = Vending::start(on_v3(Options::default())).await;
    flows::wechat_mini_program_buyer(&v).await;
    let log = crate::support::inspect_at(&v.emulator_url, "/sandbox/orders").await;
    assert!(
        !log["wechat"].as_array().unwrap().is_empty()
            && log["wechat"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["sign_type"] == "RSA"),
        "every order went through API v3: {log}"
    );
    v.stop().await;
}

/// A failed vend on v3: refunded through `/v3/refund/domestic/refunds`, the v3 refund
/// notification ends it REFUNDED; and with that notification lost, the reconciler's v3 refund
/// query does.
#[tokio::test]
async fn on_api_v3_a_vend_failure_is_refunded_even_when_the_refund_notification_is_lost() {
    let v = Vending::start(on_v3(Options {
        fail_rate: 1.0,
        reconcile: Some((1, 1)),
        ..Options::default()
    }))
    .await;
    flows::wechat_vend_failure_refund_notification(&v).await;
    flows::wechat_refund_notification_lost(&v).await;
    v.stop().await;
}

/// A payment made at WeChat just as the order expires, its notification lost: the close at
/// WeChat (v3 `ORDERPAID`) finds it, and the order vends.
#[tokio::test]
async fn on_api_v3_a_payment_made_as_the_order_expires_vends() {
    let v = Vending::start(on_v3(Options {
        order_timeout_secs: 2,
        ..Options::default()
    }))
    .await;
    flows::wechat_paid_as_the_order_expires_vends(&v, 2).await;
    v.stop().await;
}
