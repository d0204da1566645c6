//! Outbox over RabbitMQ against the real broker (`TEST_AMQP_URL`).

#[cfg(feature = "rabbitmq")]
mod amqp {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use aggregate_pay::rabbitmq::{RabbitConsumer, RabbitPublisher, Topology, connect};
    use aggregate_pay::store::PaymentStore;
    use aggregate_pay::{
        Dispatcher, EventHandler, HandlerError, MemoryStore, NotifyProcessor, OutboxEvent,
    };
    use async_trait::async_trait;
    use futures_util::StreamExt;
    use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use tokio_util::sync::CancellationToken;

    use crate::support::{paid_payment, sandbox, unique};

    fn url() -> Option<String> {
        crate::support::engine_url("TEST_AMQP_URL")
    }

    /// Three paid payments: three `payment.succeeded` events in the outbox.
    async fn outbox_with_three_events() -> (Arc<dyn PaymentStore>, Vec<String>) {
        let store: Arc<dyn PaymentStore> = Arc::new(MemoryStore::new());
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        for _ in 0..3 {
            paid_payment(&payments, &channel, &processor, "Q", 1).await;
        }
        let ids = store
            .events(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        (store, ids)
    }

    struct Recorder {
        seen: Mutex<Vec<String>>,
        fail: bool,
    }

    #[async_trait]
    impl EventHandler for Recorder {
        async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
            self.seen.lock().unwrap().push(event.id.clone());
            if self.fail {
                Err(HandlerError::retry("handler down"))
            } else {
                Ok(())
            }
        }
    }

    async fn wait_until(mut done: impl FnMut() -> bool) {
        for _ in 0..300 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out");
    }

    #[tokio::test]
    async fn a_consumer_that_dies_before_acking_loses_nothing() {
        let Some(url) = url() else { return };
        let topology = Topology::new(&unique("aggpay-test-"), Duration::from_millis(50));
        let (store, ids) = outbox_with_three_events().await;

        // Relay the outbox to RabbitMQ (publisher confirms).
        let conn = connect(&url).await.unwrap();
        let publisher = Arc::new(RabbitPublisher::new(&conn, topology.clone()).await.unwrap());
        assert_eq!(
            Dispatcher::new(store.clone(), publisher)
                .run_once()
                .await
                .unwrap(),
            3
        );
        assert!(
            store
                .claim_events(time::OffsetDateTime::now_utc(), Duration::ZERO, 10)
                .await
                .unwrap()
                .is_empty(),
            "relayed events are delivered in the outbox"
        );

        // A consumer takes a message and dies without acking.
        let doomed = connect(&url).await.unwrap();
        let ch = doomed.create_channel().await.unwrap();
        let mut c = ch
            .basic_consume(
                topology.queue.as_str().into(),
                "doomed".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let taken = c.next().await.unwrap().unwrap();
        assert!(!taken.redelivered);
        drop(c);
        doomed.close(200, "crash".into()).await.unwrap();

        // A healthy consumer gets all three, the abandoned one included.
        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            fail: false,
        });
        let consumer = RabbitConsumer::new(&conn, topology.clone(), 3, 10)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let task = {
            let (consumer, recorder, stop) = (consumer.clone(), recorder.clone(), stop.clone());
            tokio::spawn(async move { consumer.run(recorder, stop).await })
        };
        wait_until(|| recorder.seen.lock().unwrap().len() >= 3).await;
        stop.cancel();
        task.await.unwrap().unwrap();
        let seen: HashSet<String> = recorder.seen.lock().unwrap().iter().cloned().collect();
        assert_eq!(seen, ids.into_iter().collect::<HashSet<_>>());
        topology
            .delete(&conn.create_channel().await.unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn failing_events_are_retried_then_dead_lettered() {
        let Some(url) = url() else { return };
        // A schedule: the first retry waits in one queue, the second in another.
        let topology = Topology::with_schedule(
            &unique("aggpay-test-"),
            &[Duration::from_millis(30), Duration::from_millis(60)],
        );
        let (store, ids) = outbox_with_three_events().await;
        let conn = connect(&url).await.unwrap();
        let publisher = Arc::new(RabbitPublisher::new(&conn, topology.clone()).await.unwrap());
        Dispatcher::new(store.clone(), publisher)
            .run_once()
            .await
            .unwrap();

        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            fail: true,
        });
        let consumer = RabbitConsumer::new(&conn, topology.clone(), 3, 10)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let task = {
            let (consumer, recorder, stop) = (consumer.clone(), recorder.clone(), stop.clone());
            tokio::spawn(async move { consumer.run(recorder, stop).await })
        };
        // Three attempts each, then the dead queue.
        wait_until(|| recorder.seen.lock().unwrap().len() >= 9).await;
        let ch = conn.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..QueueDeclareOptions::default()
        };
        for _ in 0..100 {
            let q = ch
                .queue_declare(
                    topology.dead_queue.as_str().into(),
                    passive,
                    FieldTable::default(),
                )
                .await
                .unwrap();
            if q.message_count() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let dead = ch
            .queue_declare(
                topology.dead_queue.as_str().into(),
                passive,
                FieldTable::default(),
            )
            .await
            .unwrap();
        assert_eq!(dead.message_count(), 3);
        // The dead letters say how often and why they failed.
        let listed = topology.dead_letters(&ch, 10).await.unwrap();
        assert_eq!(listed.len(), 3);
        for event in &listed {
            assert_eq!(event.attempts, 3, "{event:?}");
            assert!(
                event.last_error.as_deref().is_some_and(|e| !e.is_empty()),
                "{event:?}"
            );
        }
        stop.cancel();
        task.await.unwrap().unwrap();
        let seen = recorder.seen.lock().unwrap().clone();
        for id in &ids {
            assert_eq!(
                seen.iter().filter(|s| *s == id).count(),
                3,
                "three attempts for {id}"
            );
        }
        topology.delete(&ch).await.unwrap();
    }
}
