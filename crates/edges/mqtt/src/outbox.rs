//! A connection's outbound queue, between the broker task (which fills it) and the
//! connection task (which encodes and writes it).
//!
//! It is a plain deque behind a mutex rather than a channel: an idle connection then holds
//! no buffer at all (a channel keeps a block of slots per connection), which is what keeps
//! 10,000 idle connections cheap. Its size is bounded in bytes: past the soft limit QoS 0
//! deliveries are dropped and counted; past the hard limit the connection is closed as too
//! slow, so one stuck subscriber never grows the server's memory nor slows anyone else.

use std::collections::VecDeque;

use parking_lot::Mutex;
use rampart_mqtt_broker::Packet;
use rampart_mqtt_broker::codec::{types::QoS, v3, v5};
use tokio::sync::Notify;

/// Outcome of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
    /// A QoS 0 delivery dropped: the queue is past the soft limit.
    Dropped,
    /// The queue is past the hard limit: close the connection.
    Overflow,
    /// The connection is closing; nothing more is queued.
    Closed,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Packet>,
    bytes: usize,
    close: bool,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    notify: Notify,
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
        if s.bytes + size > soft && is_qos0_publish(&p) {
            return Pushed::Dropped;
        }
        if s.bytes + size > hard {
            return Pushed::Overflow;
        }
        s.bytes += size;
        s.queue.push_back(p);
        Pushed::Queued
    }

    /// Asks the writer to flush what is queued, then close.
    pub(crate) fn close(&self) {
        self.state.lock().close = true;
        self.notify.notify_one();
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

    /// Takes everything queued; `true` if the connection must close after writing it.
    pub(crate) fn take(&self) -> (VecDeque<Packet>, bool) {
        let mut s = self.state.lock();
        s.bytes = 0;
        (std::mem::take(&mut s.queue), s.close)
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
    fn soft_limit_drops_qos0_hard_limit_overflows() {
        let o = Outbox::default();
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 100), 200, 400),
            Pushed::Queued
        );
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 100), 200, 400),
            Pushed::Dropped
        );
        assert_eq!(
            o.push(publish(QoS::AtLeastOnce, 100), 200, 400),
            Pushed::Queued
        );
        assert_eq!(
            o.push(publish(QoS::AtLeastOnce, 300), 200, 400),
            Pushed::Overflow
        );
        let (q, close) = o.take();
        assert_eq!((q.len(), close), (2, false));
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 100), 200, 400),
            Pushed::Queued
        );
        o.close();
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 1), 200, 400),
            Pushed::Closed
        );
        assert!(o.take().1);
    }
}
