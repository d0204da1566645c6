//! Committed events handed straight to the dispatcher of the same process.
//!
//! Polling the outbox costs every event a read (the claim's candidates, their payloads decoded)
//! and a write (the lease) before it is delivered. A store whose dispatcher runs in the same
//! process can skip both: it stores the events of a commit **already leased** to that
//! dispatcher and, once the transaction has committed, passes them over a channel. Nothing is
//! lost on the way: an event the dispatcher never acknowledges (the process stopped) is still
//! in the outbox, and any dispatcher claims it when its lease runs out. An event the channel has
//! no room for is stored unleased, and polled as before.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::events::{NewEvent, OutboxEvent};

/// Where a store hands its committed events, once a dispatcher listens.
#[derive(Debug, Default)]
pub(crate) struct HandOff {
    listener: Mutex<Option<Listener>>,
}

/// The dispatcher listening, and the lease its events are stored under.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    sender: mpsc::Sender<OutboxEvent>,
    lease: Duration,
}

/// Room reserved in the channel for the events of one transaction.
pub(crate) struct Reserved {
    permits: Vec<mpsc::OwnedPermit<OutboxEvent>>,
    lease: Duration,
}

impl HandOff {
    /// Starts handing events to the returned receiver (at most `capacity` waiting), stored
    /// leased for `lease`; `None` while another receiver listens.
    pub(crate) fn subscribe(
        &self,
        lease: Duration,
        capacity: usize,
    ) -> Option<mpsc::Receiver<OutboxEvent>> {
        let mut listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner);
        if listener.as_ref().is_some_and(|l| !l.sender.is_closed()) {
            return None;
        }
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        *listener = Some(Listener { sender, lease });
        Some(receiver)
    }

    /// The listener, if one still listens.
    fn listener(&self) -> Option<Listener> {
        self.listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|l| !l.sender.is_closed())
            .cloned()
    }

    /// Room for all `n` events of a transaction, if someone listens and the channel has it now
    /// (otherwise they are stored unleased). Dropped unused, the room is given back.
    pub(crate) fn reserve(&self, n: usize) -> Option<Reserved> {
        if n == 0 {
            return None;
        }
        let listener = self.listener()?;
        let permits = (0..n)
            .map(|_| listener.sender.clone().try_reserve_owned().ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Reserved {
            permits,
            lease: listener.lease,
        })
    }
}

/// The end of the lease for events stored at `now` with `reserved` room (the epoch, i.e. not
/// leased, without).
pub(crate) fn leased_until(reserved: Option<&Reserved>, now: OffsetDateTime) -> OffsetDateTime {
    reserved.map_or(OffsetDateTime::UNIX_EPOCH, |r| now + r.lease)
}

impl Reserved {
    /// Passes `events`, committed at `at`, to the listener. Room reserved for events that did
    /// not commit is given back.
    pub(crate) fn hand_over(self, events: impl IntoIterator<Item = NewEvent>, at: OffsetDateTime) {
        for (permit, event) in self.permits.into_iter().zip(events) {
            permit.send(OutboxEvent::recorded(event, at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PaymentStatus;
    use crate::events::{EventData, EventKind};
    use crate::payment::test_payment;

    fn event() -> NewEvent {
        NewEvent::new(
            EventKind::PaymentSucceeded,
            EventData::payment(&test_payment(1, PaymentStatus::Paid)),
        )
    }

    #[tokio::test]
    async fn one_listener_at_a_time_and_no_room_means_not_leased() {
        let hand_off = HandOff::default();
        assert!(hand_off.listener().is_none());
        let mut rx = hand_off.subscribe(Duration::from_secs(5), 2).unwrap();
        assert!(hand_off.subscribe(Duration::from_secs(5), 2).is_none());

        assert!(hand_off.reserve(3).is_none(), "more than the channel holds");
        let now = OffsetDateTime::now_utc();
        let reserved = hand_off.reserve(2).unwrap();
        assert_eq!(
            leased_until(Some(&reserved), now),
            now + Duration::from_secs(5)
        );
        assert_eq!(leased_until(None, now), OffsetDateTime::UNIX_EPOCH);
        // One of the two committed: one is passed, the other permit comes back.
        let e = event();
        let id = e.id.clone();
        reserved.hand_over([e], now);
        assert_eq!(rx.recv().await.unwrap().id, id);
        assert!(hand_off.reserve(2).is_some());

        // The receiver gone, nobody listens, and the next may subscribe.
        drop(rx);
        assert!(hand_off.listener().is_none());
        assert!(hand_off.reserve(1).is_none());
        assert!(hand_off.subscribe(Duration::from_secs(5), 2).is_some());
    }
}
