//! A connection's outbound queue, between the broker task (which fills it) and the
//! connection task (which encodes and writes it).
//!
//! It is a plain deque behind a mutex rather than a channel: an idle connection then holds
//! no buffer at all (a channel keeps a block of slots per connection), which is what keeps
//! 10,000 idle connections cheap.
//!
//! Its size is counted in bytes, from the push until the bytes are written to the socket.
//! Above `soft` the broker task stops taking input until the writer brings it back under
//! `soft / 2` (backpressure: publishers wait rather than messages being lost), but only for
//! `slow_consumer_ms`; a connection that cannot drain in that time is marked slow, and
//! from then on QoS 0 deliveries to it beyond `soft` are dropped and counted, so one slow
//! subscriber never holds everyone else back for long. Past `hard` the connection is closed.

use std::collections::VecDeque;

use parking_lot::Mutex;
use rampart_mqtt_broker::Packet;
use rampart_mqtt_broker::codec::{types::QoS, v3, v5};
use tokio::sync::Notify;

/// Outcome of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued, at or under the soft limit.
    Queued,
    /// Queued, over the soft limit: the broker task should wait for the writer.
    Full,
    /// A QoS 0 delivery to a slow connection dropped.
    Dropped,
    /// The queue is past the hard limit: close the connection.
    Overflow,
    /// The connection is closing; nothing more is queued.
    Closed,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Packet>,
    /// Bytes queued or being written.
    bytes: usize,
    close: bool,
    /// Marked slow: QoS 0 beyond the soft limit is dropped rather than waited for.
    slow: bool,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer.
    notify: Notify,
    /// Wakes the broker task waiting for this outbox to drain.
    drained: Notify,
}

/// Approximate encoded size of `p`, for the byte bound.
pub(crate) fn size_of(p: &Packet) -> usize {
    match p {
        Packet::V3(v3::Packet::Publish(p)) | Packet::V5(v5::Packet::Publish(p)) => {
            8 + p.topic.len() + p.payload.len()
        }
        _ => 8,
    }
}

fn is_qos0_publish(p: &Packet) -> bool {
    matches!(p, Packet::V3(v3::Packet::Publish(p)) | Packet::V5(v5::Packet::Publish(p)) if p.qos == QoS::AtMostOnce)
}

impl Outbox {
    /// Queues `p` (without waking the writer: call [`Outbox::wake`] once per batch).
    pub(crate) fn push(&self, p: Packet, soft: usize, hard: usize) -> Pushed {
        let size = size_of(&p);
        let mut s = self.state.lock();
        if s.close {
            return Pushed::Closed;
        }
        if s.slow && s.bytes + size > soft && is_qos0_publish(&p) {
            return Pushed::Dropped;
        }
        if s.bytes + size > hard {
            return Pushed::Overflow;
        }
        s.bytes += size;
        s.queue.push_back(p);
        if s.bytes > soft {
            Pushed::Full
        } else {
            Pushed::Queued
        }
    }

    /// Bytes queued or being written.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// Marks the connection slow (or not).
    pub(crate) fn set_slow(&self, slow: bool) {
        self.state.lock().slow = slow;
    }

    /// True if marked slow.
    pub(crate) fn is_slow(&self) -> bool {
        self.state.lock().slow
    }

    /// Waits until at most `low` bytes are queued (or the connection closes).
    pub(crate) async fn wait_drained(&self, low: usize) {
        loop {
            let notified = self.drained.notified();
            {
                let s = self.state.lock();
                if s.close || s.bytes <= low {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Asks the writer to flush what is queued, then close.
    pub(crate) fn close(&self) {
        self.state.lock().close = true;
        self.notify.notify_one();
        self.drained.notify_waiters();
    }

    /// Wakes the writer.
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Waits until there is something to write or the connection must close.
    pub(crate) async fn ready(&self) {
        loop {
            {
                let s = self.state.lock();
                if s.close || !s.queue.is_empty() {
                    return;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Takes everything queued; `true` if the connection must close after writing it. The
    /// bytes stay counted until [`Outbox::written`].
    pub(crate) fn take(&self) -> (VecDeque<Packet>, usize, bool) {
        let mut s = self.state.lock();
        let queue = std::mem::take(&mut s.queue);
        let n = queue.iter().map(size_of).sum();
        (queue, n, s.close)
    }

    /// The writer wrote `n` bytes taken with [`Outbox::take`].
    pub(crate) fn written(&self, n: usize) {
        let mut s = self.state.lock();
        s.bytes = s.bytes.saturating_sub(n);
        if s.queue.is_empty() {
            s.slow = false;
        }
        drop(s);
        self.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use rampart_mqtt_broker::codec::types::Publish;

    fn publish(qos: QoS, n: usize) -> Packet {
        Packet::V3(v3::Packet::Publish(Box::new(Publish {
            dup: false,
            retain: false,
            qos,
            topic: "t".into(),
            packet_id: None,
            payload: Bytes::from(vec![0u8; n]),
            properties: None,
        })))
    }

    #[test]
    fn soft_limit_reports_full_slow_drops_qos0_hard_limit_overflows() {
        let o = Outbox::default();
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 100), 200, 400),
            Pushed::Queued
        );
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 100), 200, 400),
            Pushed::Full
        );
        o.set_slow(true);
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 100), 200, 400),
            Pushed::Dropped
        );
        assert_eq!(
            o.push(publish(QoS::AtLeastOnce, 100), 200, 400),
            Pushed::Full
        );
        assert_eq!(
            o.push(publish(QoS::AtLeastOnce, 300), 200, 400),
            Pushed::Overflow
        );
        let (q, n, close) = o.take();
        assert_eq!((q.len(), close), (3, false));
        assert_eq!(o.bytes(), n, "taken bytes stay counted until written");
        o.written(n);
        assert_eq!(o.bytes(), 0);
        assert!(!o.is_slow(), "a drained connection is no longer slow");
        o.close();
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 1), 200, 400),
            Pushed::Closed
        );
        assert!(o.take().2);
    }
}
