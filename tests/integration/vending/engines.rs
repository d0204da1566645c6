//! The same flows on the production engines: PostgreSQL or MariaDB, Redis locks, RabbitMQ
//! events and delayed timeouts (TTL + dead-letter), and vend-out over Mosquitto answered by the
//! `machine-sim` logic.

use axum::http::StatusCode;
use examples::vending::machines::{
    MachineLink, MqttMachines, SimBehaviour, Topics, VendCommand, VendResult, mqtt_options,
    serve_simulator, signing,
};
use serde_json::{Value, json};

use super::{Options, Vending, flows};
use crate::support::{engine_urls, fresh_database, unique};

async fn all_flows(database_var: &str) {
    let Some([db, redis, amqp, mqtt]) = engine_urls([
        database_var,
        "TEST_REDIS_URL",
        "TEST_AMQP_URL",
        "TEST_MQTT_URL",
    ]) else {
        return;
    };
    let engines = Options {
        database_url: Some(fresh_database(&db, "vending_").await),
        redis_url: Some(redis),
        amqp_url: Some(amqp),
        mqtt_url: Some(mqtt),
        ..Options::default()
    };

    let v = Vending::start(engines.clone()).await;
    flows::buy_completes(&v).await;
    flows::last_item_then_sold_out(&v).await;
    flows::racing_buyers(&v).await;
    flows::paid_order_not_cancellable(&v).await;
    flows::duplicate_notifications_vend_once(&v).await;
    flows::wechat_mini_program_buyer(&v).await;
    v.stop().await;

    // Timeouts through RabbitMQ's TTL + dead-letter queues.
    let v = Vending::start(Options {
        order_timeout_secs: 2,
        ..engines.clone()
    })
    .await;
    flows::unpaid_times_out(&v, 2).await;
    flows::late_payment_refunded(&v, 2).await;
    v.stop().await;

    let v = Vending::start(Options {
        fail_rate: 1.0,
        ..engines
    })
    .await;
    flows::vend_failure_refunded(&v).await;
    flows::wechat_vend_failure_refund_notification(&v).await;
    v.stop().await;
}

#[tokio::test]
async fn every_flow_on_postgres_redis_rabbitmq_and_mosquitto() {
    all_flows("TEST_POSTGRES_URL").await;
}

#[tokio::test]
async fn every_flow_on_mariadb_redis_rabbitmq_and_mosquitto() {
    all_flows("TEST_MYSQL_URL").await;
}

/// Two instances of one deployment (PostgreSQL, Redis, RabbitMQ): a buyer logged in on A orders
/// and pays on B, and the seller's dashboard connected to A sees it live; the seller's session
/// from A works on B. Nothing is configured to make them agree: the session secret is the one
/// the first instance wrote to the database.
#[tokio::test]
async fn two_instances_share_sessions_and_the_seller_feed() {
    let Some([db, redis, amqp]) =
        engine_urls(["TEST_POSTGRES_URL", "TEST_REDIS_URL", "TEST_AMQP_URL"])
    else {
        return;
    };
    let shared = Options {
        database_url: Some(fresh_database(&db, "vending_").await),
        redis_url: Some(redis),
        amqp_url: Some(amqp),
        shared_prefix: Some(unique("vending-pair-")),
        ..Options::default()
    };
    let a = Vending::start(shared.clone()).await;
    let b = Vending::start(shared).await;
    let (_, seller) = a.new_seller(&["VM0003"]).await;
    let (mut dashboard, _) = tokio_tungstenite::connect_async(a.dashboard_request(Some(&seller)))
        .await
        .unwrap();
    let snapshot = next_text(&mut dashboard).await;
    assert!(snapshot.contains("snapshot"), "{snapshot}");

    let buyer = a.demo_buyer().await;
    let (status, order) = b
        .post_as(
            Some(&buyer),
            "/api/orders",
            json!({"inner_code": "VM0003", "sku_id": 5, "channel": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let no = order["order_no"].as_str().unwrap().to_owned();
    let (status, paid) = b
        .post_as(
            Some(&buyer),
            &format!("/api/orders/{no}/sandbox-pay"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");

    // A's dashboard hears of B's order, up to its completion.
    loop {
        let change: Value = serde_json::from_str(&next_text(&mut dashboard).await).unwrap();
        assert_eq!(change["order"]["order_no"], no.as_str(), "{change}");
        if change["order"]["status"] == "COMPLETED" {
            break;
        }
    }
    // The seller's session from A is good on B; the buyer's too.
    let (status, listed) = b
        .seller_call(Some(&seller), "GET", "/api/seller/orders", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["order_no"], no.as_str());
    assert_eq!(
        b.get_as(Some(&buyer), &format!("/api/orders/{no}")).await.1["status"],
        "COMPLETED"
    );
    b.stop().await;
    a.stop().await;
}

async fn next_text<S>(socket: &mut S) -> String
where
    S: futures_util::StreamExt<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(15), socket.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                return t.to_string();
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no message from the feed: {other:?}"),
        }
    }
}

/// Over the real broker: a result published on another machine's topic, or unsigned on the
/// right one, changes nothing and is counted; the machine's signed answer completes the order.
#[tokio::test]
async fn forged_results_over_mqtt_change_nothing() {
    let Some([mqtt]) = engine_urls(["TEST_MQTT_URL"]) else {
        return;
    };
    let secret = "mqtt-machine-secret-0123456789abcdef";
    let v = Vending::start(Options {
        mqtt_url: Some(mqtt.clone()),
        machine_secret: Some(secret.into()),
        latency_ms: 3_000,
        ..Options::default()
    })
    .await;
    let order = v.order("VM0001", 1).await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.sandbox_pay(&no).await;
    v.wait_for(&no, "VENDING", 10).await;

    let topics = Topics::new(&v.topic_root);
    let (client, mut eventloop) =
        rumqttc::AsyncClient::new(mqtt_options(&mqtt, "forger").unwrap(), 16);
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut signed_elsewhere = VendResult {
        order_no: no.clone(),
        success: true,
        error: None,
        inner_code: None,
        ts: None,
        sig: None,
    };
    signing::sign_result(secret, &mut signed_elsewhere, "VM0002", now);
    let mut unsigned = signed_elsewhere.clone();
    unsigned.ts = None;
    unsigned.sig = None;
    unsigned.inner_code = Some("VM0001".into());
    for (topic, result) in [
        (topics.result("VM0002"), &signed_elsewhere),
        (topics.result("VM0001"), &unsigned),
    ] {
        client
            .publish(
                topic,
                rumqttc::QoS::AtLeastOnce,
                false,
                serde_json::to_vec(result).unwrap(),
            )
            .await
            .unwrap();
    }
    crate::support::eventually(10, "both forgeries counted", async || {
        v.state.metrics.results_rejected("wrong_machine") == 1
            && v.state.metrics.results_rejected("unsigned") == 1
    })
    .await;
    assert_eq!(v.order_view(&no).await["status"], "VENDING");
    v.wait_for(&no, "COMPLETED", 20).await;
    let _ = client.disconnect().await;
    pump.abort();
    v.stop().await;
}

/// A burst of vend-out commands over the real broker, as a busy deployment sends them: every
/// command reaches its machine and every answer comes back. (At QoS 2, rumqttc lost some of
/// them at this rate, and each lost one was an order failed and refunded after a vend.)
#[tokio::test]
async fn a_burst_of_vend_commands_over_mqtt_loses_none() {
    let Some([mqtt]) = engine_urls(["TEST_MQTT_URL"]) else {
        return;
    };
    const COMMANDS: usize = 3_000;
    let topics = Topics::new(&unique("burst-"));
    let stop = tokio_util::sync::CancellationToken::new();
    serve_simulator(
        &mqtt,
        topics.clone(),
        SimBehaviour {
            latency: std::time::Duration::from_millis(5),
            fail_rate: 0.0,
        },
        None,
        stop.clone(),
    )
    .await
    .unwrap();
    let (results, mut received) = tokio::sync::mpsc::channel(64);
    let (scans, _) = tokio::sync::mpsc::channel(1);
    let inbox = examples::vending::machines::Inbox { results, scans };
    let server = MqttMachines::connect(&mqtt, topics, inbox, stop.clone())
        .await
        .unwrap();
    // The server's subscription is in place before the first answer can come.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut answered = std::collections::HashSet::new();
    // A stalled client must fail the test, not hang it.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        // Sent while the answers are read, as the server reads them.
        let sending = tokio::spawn(async move {
            for i in 0..COMMANDS {
                let command = VendCommand {
                    order_no: format!("B{i:05}"),
                    inner_code: format!("VM{:04}", 1 + i % 3),
                    sku_id: 1,
                    slot_no: "A1".into(),
                    timeout_secs: 60,
                    requested_at_ms: 0,
                    ts: None,
                    sig: None,
                };
                server.vend_out(&command).await.unwrap();
            }
        });
        while answered.len() < COMMANDS {
            match tokio::time::timeout(std::time::Duration::from_secs(20), received.recv()).await {
                Ok(Some(r)) => {
                    assert!(r.result.success, "{:?}", r.result);
                    answered.insert(r.result.order_no);
                }
                _ => break,
            }
        }
        sending.await.unwrap();
    })
    .await;
    stop.cancel();
    assert_eq!(
        answered.len(),
        COMMANDS,
        "vend-out commands or their answers were lost on the way"
    );
}
