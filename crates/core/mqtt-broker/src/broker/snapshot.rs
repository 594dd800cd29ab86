//! Session persistence: what of the broker survives a restart.
//!
//! [`Broker::snapshot`] captures every session that outlives its connection (session expiry
//! above zero) with its subscriptions and undelivered QoS 1/2 messages, and every retained
//! message. [`Broker::restore`] loads such a snapshot into a fresh broker. The embedder
//! decides where the snapshot is kept and how often it is taken; this module only defines
//! the content, so it stays pure.
//!
//! What is deliberately not kept:
//! - connections (a restart is a disconnect; sessions come back offline, their expiry
//!   starting again at restore time);
//! - QoS 0 deliveries, which are never queued for offline sessions anyway;
//! - wills and MQTT 5 topic aliases (connection state);
//! - inbound QoS 2 state: a client resending PUBREL gets PUBCOMP *Packet Identifier not
//!   found*, which ends its flow; the message was routed before the snapshot.
//!
//! Inflight deliveries are saved ahead of the queue and sent again, with new packet
//! identifiers, when the client reconnects: at-least-once, as MQTT requires.
//!
//! Security markings of pending and retained messages, and sessions' clearances, are kept:
//! a restored message reaches only cleared sessions, and a reconnecting session's clearance
//! is asked again at CONNECT. Marking ranks mean something only against the embedder's
//! level list, which it records in [`Snapshot::marking_scale`]; when that differs at
//! restore, [`Snapshot::drop_marked`] removes every marked message (fail closed).

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmqtt_codec::types::{Publish, QoS};
use serde::{Deserialize, Serialize};

use super::{Broker, Delivery, Message, Session};
use crate::marking::{Clearance, Marking};
use crate::packet::Version;
use crate::subs::SubOptions;
use crate::topic;

/// Format version of [`Snapshot`]; bumped on incompatible changes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Everything of the broker that survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`] at the time it was taken.
    pub version: u32,
    /// Sessions with a non-zero expiry.
    pub sessions: Vec<SessionSnapshot>,
    /// Retained messages.
    pub retained: Vec<Publish>,
    /// Security markings of retained messages, by topic (unmarked ones are absent).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub retained_markings: std::collections::BTreeMap<String, Marking>,
    /// What the marking ranks refer to (the embedder's level names); set and compared by
    /// the embedder. See the module documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking_scale: Option<String>,
}

impl Snapshot {
    /// Removes every marked pending and retained message; returns how many. For a snapshot
    /// whose [`Snapshot::marking_scale`] no longer matches the configuration.
    pub fn drop_marked(&mut self) -> usize {
        let mut n = 0;
        for s in &mut self.sessions {
            let before = s.pending.len();
            s.pending.retain(|p| p.marking.is_none());
            n += before - s.pending.len();
        }
        let marked = std::mem::take(&mut self.retained_markings);
        let before = self.retained.len();
        self.retained.retain(|p| !marked.contains_key(&*p.topic));
        n + before - self.retained.len()
    }
}

/// One persistent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    /// Client identifier.
    pub client_id: String,
    /// True for an MQTT 5 session.
    pub v5: bool,
    /// Session expiry interval, seconds.
    pub expiry_secs: u64,
    /// For a session offline when the snapshot was taken: seconds it had left. `None` for a
    /// connected session, whose expiry starts at restore.
    pub expires_in_secs: Option<u64>,
    /// Raw filter (with any `$share/` prefix) and options.
    pub subscriptions: Vec<SubscriptionSnapshot>,
    /// Undelivered QoS 1/2 messages, oldest first (inflight ones ahead of queued ones).
    pub pending: Vec<PendingSnapshot>,
    /// The session's clearance when taken (`None`: unrestricted); asked again at CONNECT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearance: Option<Clearance>,
}

/// One subscription of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSnapshot {
    /// The filter as subscribed, `$share/` prefix included.
    pub filter: String,
    /// Granted QoS (0, 1 or 2).
    pub qos: u8,
    /// MQTT 5 No Local.
    pub no_local: bool,
    /// MQTT 5 Retain As Published.
    pub retain_as_published: bool,
    /// MQTT 5 subscription identifier.
    pub id: Option<u32>,
}

/// One undelivered message of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSnapshot {
    /// The message as routed.
    pub publish: Publish,
    /// Delivery QoS.
    pub qos: u8,
    /// RETAIN flag of the delivery.
    pub retain: bool,
    /// MQTT 5 subscription identifiers to echo.
    pub sub_ids: Vec<u32>,
    /// Seconds left of the message expiry interval, if it has one.
    pub expires_in_secs: Option<u64>,
    /// Its security marking, if it was injected with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking: Option<Marking>,
}

/// What [`Broker::restore`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Sessions restored.
    pub sessions: usize,
    /// Messages queued again.
    pub pending: usize,
    /// Retained messages restored.
    pub retained: usize,
    /// Entries skipped: sessions or retained messages over the limits, invalid filters,
    /// expired messages.
    pub skipped: usize,
}

fn qos_of(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn secs_left(at: Option<Instant>, now: Instant) -> Option<u64> {
    at.map(|t| t.saturating_duration_since(now).as_secs())
}

impl Broker {
    /// Captures the persistent state: sessions with a non-zero expiry and retained messages.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut sessions = Vec::new();
        for s in self.sessions.values() {
            if s.expiry.is_zero() {
                continue;
            }
            let subscriptions = s
                .subs
                .iter()
                .map(|(filter, o)| SubscriptionSnapshot {
                    filter: filter.to_string(),
                    qos: u8::from(o.qos),
                    no_local: o.no_local,
                    retain_as_published: o.retain_as_published,
                    id: o.id.map(NonZeroU32::get),
                })
                .collect();
            let pending = s
                .inflight
                .iter()
                .map(|f| &f.delivery)
                .chain(s.queue.iter())
                .filter(|d| d.qos != QoS::AtMostOnce)
                .map(|d| PendingSnapshot {
                    publish: d.msg.publish.clone(),
                    qos: u8::from(d.qos),
                    retain: d.retain,
                    sub_ids: d.sub_ids.iter().map(|i| i.get()).collect(),
                    expires_in_secs: secs_left(d.msg.expires_at, now),
                    marking: d.msg.marking.as_deref().cloned(),
                })
                .collect();
            sessions.push(SessionSnapshot {
                client_id: s.client_id.to_string(),
                v5: s.version == Version::V5,
                expiry_secs: s.expiry.as_secs(),
                expires_in_secs: if s.conn.is_some() {
                    None
                } else {
                    secs_left(s.expires_at, now)
                },
                subscriptions,
                pending,
                clearance: s.clearance.as_deref().cloned(),
            });
        }
        sessions.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        let mut retained: Vec<Publish> =
            self.retained.values().map(|m| m.publish.clone()).collect();
        retained.sort_by(|a, b| a.topic.cmp(&b.topic));
        let retained_markings = self
            .retained
            .iter()
            .filter_map(|(t, m)| Some((t.to_string(), m.marking.as_deref()?.clone())))
            .collect();
        Snapshot {
            version: SNAPSHOT_VERSION,
            sessions,
            retained,
            retained_markings,
            marking_scale: None,
        }
    }

    /// Loads `snap` into this broker, which must not have sessions yet (call it before the
    /// listeners accept). Entries beyond the limits are skipped and counted in the result.
    pub fn restore(&mut self, mut snap: Snapshot, now: Instant) -> RestoreStats {
        let mut stats = RestoreStats::default();
        let limits = self.config.limits.clone();
        for p in snap.retained {
            if self.retained.len() >= limits.max_retained
                || p.payload.is_empty()
                || topic::validate_name(&p.topic).is_err()
            {
                stats.skipped += 1;
                continue;
            }
            let topic = p.topic.clone();
            let marking = snap.retained_markings.remove(&*topic).map(Arc::new);
            let msg = Arc::new(Message {
                observe: true,
                expires_at: None,
                publish: p,
                origin: None,
                marking,
            });
            self.retained.insert(topic, msg);
            stats.retained += 1;
        }
        for ss in snap.sessions {
            if self.sessions.len() >= limits.max_sessions
                || self.by_client.contains_key(ss.client_id.as_str())
                || ss.expiry_secs == 0
            {
                stats.skipped += 1;
                continue;
            }
            let expiry = Duration::from_secs(ss.expiry_secs).min(limits.max_session_expiry);
            let left = ss
                .expires_in_secs
                .map_or(expiry, |s| Duration::from_secs(s).min(expiry));
            let sid = self.next_session;
            self.next_session += 1;
            let client_id: Arc<str> = Arc::from(ss.client_id.as_str());
            let mut subs = super::SubList::default();
            for sub in ss.subscriptions {
                if subs.len() >= limits.max_subscriptions_per_session {
                    stats.skipped += 1;
                    continue;
                }
                let Ok(f) = topic::parse_filter(&sub.filter) else {
                    stats.skipped += 1;
                    continue;
                };
                let opts = SubOptions {
                    qos: qos_of(sub.qos),
                    no_local: sub.no_local,
                    retain_as_published: sub.retain_as_published,
                    id: sub.id.and_then(NonZeroU32::new),
                };
                self.trie.insert(f.group, f.filter, sid, opts);
                subs.insert(Box::from(sub.filter.as_str()), opts);
            }
            let mut queue = VecDeque::new();
            for p in ss.pending {
                if queue.len() >= limits.max_queued_per_session
                    || p.expires_in_secs == Some(0)
                    || p.qos == 0
                {
                    stats.skipped += 1;
                    continue;
                }
                let expires_at = p
                    .expires_in_secs
                    .and_then(|s| now.checked_add(Duration::from_secs(s)));
                queue.push_back(Delivery {
                    msg: Arc::new(Message {
                        observe: true,
                        publish: p.publish,
                        origin: None,
                        expires_at,
                        marking: p.marking.map(Arc::new),
                    }),
                    qos: qos_of(p.qos),
                    retain: p.retain,
                    sub_ids: p.sub_ids.into_iter().filter_map(NonZeroU32::new).collect(),
                });
                stats.pending += 1;
            }
            self.by_client.insert(client_id.clone(), sid);
            self.sessions.insert(
                sid,
                Box::new(Session {
                    client_id,
                    conn: None,
                    version: if ss.v5 { Version::V5 } else { Version::V3 },
                    subs,
                    inflight: VecDeque::new(),
                    queue,
                    inbound: HashMap::new(),
                    next_packet_id: 0,
                    expiry,
                    expires_at: now.checked_add(left),
                    will: None,
                    client_receive_max: u16::MAX,
                    client_max_packet: None,
                    aliases: HashMap::new(),
                    clearance: ss.clearance.map(Arc::new),
                }),
            );
            stats.sessions += 1;
        }
        stats
    }
}
