//! Machines with scanners: a buyer's payment code scanned for a slot is charged and the item
//! vended — once however often the scan is delivered, never charged when the buyer does not
//! confirm in time, and never on a scan a machine with a secret did not sign.

use std::time::Duration;

use examples::vending::db::Order;
use examples::vending::machines::{Scan, ScanAnswer, Topics, publish_scan, signing};
use examples::vending::orders::scan_order_no;
use serde_json::json;

use super::{Options, Vending};
use crate::support::{engine_urls, unique};

const SECRET: &str = "scanner-machine-secret-0123456789abcdef";

async fn scanner(wait_secs: u64) -> Option<(Vending, String)> {
    let [mqtt] = engine_urls(["TEST_MQTT_URL"])?;
    let v = Vending::start(Options {
        mqtt_url: Some(mqtt.clone()),
        machine_secret: Some(SECRET.into()),
        payment_code_wait_secs: Some(wait_secs),
        ..Options::default()
    })
    .await;
    Some((v, mqtt))
}

/// A buyer's payment code from the emulator: `wechat` or `alipay`, `approve`, `hold`, `decline`.
async fn code(v: &Vending, channel: &str, behaviour: &str) -> String {
    v.emulator(
        "/sandbox/payment-code",
        json!({"channel": channel, "behaviour": behaviour}),
    )
    .await["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn scan(scan_id: &str, code: &str) -> Scan {
    Scan {
        scan_id: scan_id.into(),
        slot_no: "A1".into(),
        code: code.into(),
        ts: None,
        sig: None,
    }
}

async fn send(v: &Vending, mqtt: &str, scan: Scan, secret: Option<&str>) -> Option<ScanAnswer> {
    publish_scan(
        mqtt,
        &Topics::new(&v.topic_root),
        "VM0001",
        scan,
        secret,
        Duration::from_secs(20),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_scanned_code_is_charged_once_and_its_item_vended() {
    let Some((v, mqtt)) = scanner(30).await else {
        return;
    };
    for channel in ["wechat", "alipay"] {
        let code = code(&v, channel, "approve").await;
        let scan_id = unique("scan-");
        let commands = v.vend_commands();
        let answer = send(&v, &mqtt, scan(&scan_id, &code), Some(SECRET))
            .await
            .expect("the machine hears back");
        assert_eq!(answer.status, "paid", "{channel}: {answer:?}");
        let no = answer.order_no.clone().unwrap();
        assert_eq!(no, scan_order_no("VM0001", &scan_id));
        let order = wait_for(&v, &no, "COMPLETED").await;
        assert_eq!(order.method.as_str(), format!("{channel}_payment_code"));
        assert_eq!(order.open_id, None, "nobody logged in: the code paid");
        assert_eq!(v.vend_commands(), commands + 1, "{channel}");
        // The same scan delivered again: no second charge, no second vend, no answer.
        let again = publish_scan(
            &mqtt,
            &Topics::new(&v.topic_root),
            "VM0001",
            scan(&scan_id, &code),
            Some(SECRET),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
        assert_eq!(again, None, "{channel}");
        assert_eq!(v.vend_commands(), commands + 1, "{channel}");
        assert_eq!(status(&v, &no).await, "COMPLETED");
    }
    assert_eq!(v.state.metrics.scans("paid"), 2);
    v.stop().await;
}

#[tokio::test]
async fn a_code_never_confirmed_is_reversed_and_a_declined_one_ends_the_order() {
    let Some((v, mqtt)) = scanner(2).await else {
        return;
    };
    let commands = v.vend_commands();
    let held = code(&v, "wechat", "hold").await;
    let answer = send(&v, &mqtt, scan(&unique("scan-"), &held), Some(SECRET))
        .await
        .expect("the machine hears back");
    assert_eq!(answer.status, "reversed", "{answer:?}");
    let no = answer.order_no.unwrap();
    assert_eq!(status(&v, &no).await, "INVALID");
    // Too late to pay: the provider reversed it.
    assert!(
        !v.try_emulator("/sandbox/payment-code/decide", &json!({"code": held}))
            .await
    );

    let declined = code(&v, "alipay", "decline").await;
    let answer = send(&v, &mqtt, scan(&unique("scan-"), &declined), Some(SECRET))
        .await
        .expect("the machine hears back");
    assert_eq!(answer.status, "declined", "{answer:?}");
    assert!(
        answer
            .reason
            .unwrap_or_default()
            .contains("BALANCE_NOT_ENOUGH")
    );
    assert_eq!(status(&v, &answer.order_no.unwrap()).await, "INVALID");
    assert_eq!(v.vend_commands(), commands, "nothing vended");

    // The machine is free again: the next buyer's code pays.
    let code = code(&v, "wechat", "approve").await;
    let answer = send(&v, &mqtt, scan(&unique("scan-"), &code), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(answer.status, "paid", "{answer:?}");
    wait_for(&v, &answer.order_no.unwrap(), "COMPLETED").await;
    v.stop().await;
}

#[tokio::test]
async fn unsigned_forged_and_unknown_scans_charge_nothing() {
    let Some((v, mqtt)) = scanner(30).await else {
        return;
    };
    let code = code(&v, "wechat", "approve").await;
    // Unsigned on a machine that signs, and signed by another machine: dropped, no answer.
    let unsigned = send_quick(&v, &mqtt, scan(&unique("scan-"), &code)).await;
    assert_eq!(unsigned, None);
    let mut elsewhere = scan(&unique("scan-"), &code);
    signing::sign_scan(
        SECRET,
        &mut elsewhere,
        "VM0002",
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    assert_eq!(send_quick(&v, &mqtt, elsewhere.clone()).await, None);
    crate::support::eventually(10, "both forgeries counted", async || {
        v.state.metrics.scans("rejected") == 2
    })
    .await;
    for id in [&elsewhere.scan_id] {
        let no = scan_order_no("VM0001", id);
        assert!(v.state.orders.db().order(&no).await.unwrap().is_none());
    }
    // Not a payment code of a known provider: refused before any channel is asked.
    let answer = send(
        &v,
        &mqtt,
        scan(&unique("scan-"), "999999999999999999"),
        Some(SECRET),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, "refused", "{answer:?}");
    assert_eq!(answer.order_no, None);
    // The code was never charged: it still pays.
    let answer = send(&v, &mqtt, scan(&unique("scan-"), &code), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(answer.status, "paid", "{answer:?}");
    v.stop().await;
}

/// Live mode: codes go to the configured provider only — a WeChat code is charged through
/// WeChat Pay (here the staging gateway), an Alipay code is refused (no Alipay configured, and
/// no emulator stands in for it).
#[tokio::test]
async fn live_mode_charges_codes_of_configured_providers_only() {
    let Some([mqtt]) = engine_urls(["TEST_MQTT_URL"]) else {
        return;
    };
    let gateway = crate::support::start_gateway().await;
    let v = Vending::start(Options {
        providers: Some(crate::support::wechat_v3_credentials_with_login(
            &gateway, false,
        )),
        gateway_url: Some(gateway.base_url().to_owned()),
        mqtt_url: Some(mqtt.clone()),
        machine_secret: Some(SECRET.into()),
        ..Options::default()
    })
    .await;
    assert_eq!(v.mode(), examples::providers::Mode::Live);
    let db = v.state.orders.db();
    examples::vending::accounts::add_seller(db, "operator", "operator-password-1")
        .await
        .unwrap();
    assert!(db.assign_machine("VM0001", "operator").await.unwrap());

    let alipay = code(&v, "alipay", "approve").await;
    let answer = send(&v, &mqtt, scan(&unique("scan-"), &alipay), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(answer.status, "refused", "{answer:?}");
    assert_eq!(answer.order_no, None);

    let wechat = code(&v, "wechat", "approve").await;
    let answer = send(&v, &mqtt, scan(&unique("scan-"), &wechat), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(answer.status, "paid", "{answer:?}");
    let order = wait_for(&v, &answer.order_no.unwrap(), "COMPLETED").await;
    assert_eq!(order.channel, "wechat");
    v.stop().await;
    gateway.shutdown().await;
}

/// A scan's order is nobody's to see through the buyer API: read it from the database.
async fn order(v: &Vending, no: &str) -> Order {
    v.state.orders.db().order(no).await.unwrap().unwrap()
}

async fn status(v: &Vending, no: &str) -> &'static str {
    order(v, no).await.status.as_str()
}

async fn wait_for(v: &Vending, no: &str, want: &str) -> Order {
    crate::support::eventually(20, want, async || status(v, no).await == want).await;
    order(v, no).await
}

async fn send_quick(v: &Vending, mqtt: &str, scan: Scan) -> Option<ScanAnswer> {
    publish_scan(
        mqtt,
        &Topics::new(&v.topic_root),
        "VM0001",
        scan,
        None,
        Duration::from_secs(2),
    )
    .await
    .unwrap()
}
