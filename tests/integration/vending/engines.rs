//! The same flows on the production engines: PostgreSQL or MariaDB, Redis locks, RabbitMQ
//! events and delayed timeouts (TTL + dead-letter), and vend-out over Mosquitto answered by the
//! `machine-sim` logic.

use super::{Options, Vending, flows};
use crate::support::{engine_urls, fresh_database};

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
