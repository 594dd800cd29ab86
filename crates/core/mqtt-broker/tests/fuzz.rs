//! Deterministic fuzzing: random sequences of packets of both versions, losses, ticks and
//! durability answers. The broker must never panic, its invariants must hold after every
//! step, and no PUBACK/PUBREC for a durable publish may precede its persistence.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU16, NonZeroU32};

use common::*;
use rampart_mqtt_broker::codec::types::QoS;
use rampart_mqtt_broker::codec::{v3, v5};
use rampart_mqtt_broker::{Action, Config, ConnId, Packet, PersistToken};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const TOPICS: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "rampart/x",
    "rampart/y/z",
    "$SYS/t",
    "b//c",
];
const FILTERS: &[&str] = &[
    "#",
    "a/#",
    "a/+",
    "+/b/#",
    "rampart/#",
    "$share/g/a/#",
    "$share/h/rampart/+",
    "$SYS/#",
    "b/+/c",
    "bad/#/x",
    "",
];
const CLIENTS: &[&str] = &["c1", "c2", "c3", "c4", ""];

fn qos(r: &mut SmallRng) -> QoS {
    match r.random_range(0..3) {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn pick<'a>(r: &mut SmallRng, xs: &[&'a str]) -> &'a str {
    xs[r.random_range(0..xs.len())]
}

struct Fuzz {
    h: H,
    r: SmallRng,
    /// Open connections and their version (true = 5.0).
    conns: HashMap<u64, bool>,
    next_conn: u64,
    /// Durable publishes not yet persisted: token → (conn, packet id).
    pending: HashMap<PersistToken, (u64, u16)>,
    pending_ids: HashSet<(u64, u16)>,
}

impl Fuzz {
    fn apply(&mut self, actions: Vec<Action>, from: Option<(u64, u16)>) {
        for a in &actions {
            match a {
                Action::Send { conn, packet } => {
                    let id = match packet {
                        Packet::V3(v3::Packet::PublishAck { packet_id })
                        | Packet::V3(v3::Packet::PublishReceived { packet_id }) => {
                            Some(packet_id.get())
                        }
                        Packet::V5(v5::Packet::PublishAck(a))
                        | Packet::V5(v5::Packet::PublishReceived(a)) => Some(a.packet_id.get()),
                        _ => None,
                    };
                    if let Some(id) = id {
                        assert!(
                            !self.pending_ids.contains(&(conn.0, id)),
                            "ack for {id} on {conn:?} before persistence"
                        );
                    }
                }
                Action::Close { conn, .. } => {
                    self.conns.remove(&conn.0);
                }
                Action::Persist { token, .. } => {
                    if let Some(k) = from {
                        self.pending.insert(*token, k);
                        self.pending_ids.insert(k);
                    } else {
                        self.pending.insert(*token, (u64::MAX, 0));
                    }
                }
                Action::Observed { .. } => {}
            }
        }
        self.h.b.check_invariants().unwrap();
    }

    fn step(&mut self) {
        let r = &mut self.r;
        let roll = r.random_range(0..100);
        let open: Vec<u64> = self.conns.keys().copied().collect();
        if roll < 12 || open.is_empty() {
            let conn = self.next_conn;
            self.next_conn += 1;
            let v5 = r.random_bool(0.5);
            let id = pick(r, CLIENTS);
            let clean = r.random_bool(0.4);
            let keep_alive = r.random_range(0..4) * 5;
            let will = r.random_bool(0.3).then(|| pick(r, TOPICS));
            let packet: Packet = if v5 {
                let mut c = connect5(id, clean, r.random_range(0..3) * 10);
                c.keep_alive = keep_alive;
                c.receive_max = NonZeroU16::new(r.random_range(0..4));
                c.max_packet_size = NonZeroU32::new(r.random_range(0..2) * 100);
                c.last_will = will.map(|t| v5::LastWill {
                    qos: qos(r),
                    retain: r.random_bool(0.3),
                    topic: t.into(),
                    message: bytes::Bytes::from_static(b"w"),
                    will_delay_interval_sec: Some(r.random_range(0..3) * 5),
                    correlation_data: None,
                    message_expiry_interval: None,
                    content_type: None,
                    user_properties: vec![],
                    is_utf8_payload: None,
                    response_topic: None,
                });
                v5::Packet::Connect(Box::new(c)).into()
            } else {
                let will = will.map(|t| v3::LastWill {
                    qos: qos(r),
                    retain: r.random_bool(0.3),
                    topic: t.into(),
                    message: bytes::Bytes::from_static(b"w"),
                });
                connect3(id, clean, keep_alive, will).into()
            };
            self.conns.insert(conn, v5);
            let a = self.h.b.packet(ConnId(conn), packet, self.h.now);
            // Ids that a taken-over connection had pending are no longer its.
            self.apply(a, None);
            return;
        }
        let conn = open[r.random_range(0..open.len())];
        let is_v5 = self.conns[&conn];
        // Sometimes send a packet of the wrong version.
        let v5 = if r.random_range(0..50) == 0 {
            !is_v5
        } else {
            is_v5
        };
        let id = r.random_range(1..8u16);
        let pid = NonZeroU16::new(id).unwrap();
        let mut from = None;
        let packet: Packet = match roll {
            12..=40 => {
                let topic = pick(r, TOPICS);
                let q = qos(r);
                let mut p = publish(
                    topic,
                    q,
                    if q == QoS::AtMostOnce { 0 } else { id },
                    "p",
                    r.random_bool(0.2),
                );
                p.dup = r.random_bool(0.1);
                if topic.starts_with("rampart") && q != QoS::AtMostOnce {
                    from = Some((conn, id));
                }
                if v5 {
                    p.properties = Some(v5::PublishProperties {
                        topic_alias: NonZeroU16::new(r.random_range(0..40)),
                        message_expiry_interval: NonZeroU32::new(r.random_range(0..3) * 7),
                        ..Default::default()
                    });
                    if r.random_bool(0.1) {
                        p.topic = "".into();
                    }
                    v5::Packet::Publish(Box::new(p)).into()
                } else {
                    v3::Packet::Publish(Box::new(p)).into()
                }
            }
            41..=55 => {
                let f = pick(r, FILTERS);
                if v5 {
                    let mut o = opts(qos(r));
                    o.no_local = r.random_bool(0.1);
                    o.retain_as_published = r.random_bool(0.3);
                    o.retain_handling = match r.random_range(0..3) {
                        0 => v5::RetainHandling::AtSubscribe,
                        1 => v5::RetainHandling::AtSubscribeNew,
                        _ => v5::RetainHandling::NoAtSubscribe,
                    };
                    v5::Packet::Subscribe(v5::Subscribe {
                        packet_id: pid,
                        id: NonZeroU32::new(r.random_range(0..3)),
                        user_properties: vec![],
                        topic_filters: vec![(f.into(), o)],
                    })
                    .into()
                } else {
                    v3::Packet::Subscribe {
                        packet_id: pid,
                        topic_filters: vec![(f.into(), qos(r))],
                    }
                    .into()
                }
            }
            56..=60 => {
                let f = pick(r, FILTERS);
                if v5 {
                    v5::Packet::Unsubscribe(v5::Unsubscribe {
                        packet_id: pid,
                        user_properties: vec![],
                        topic_filters: vec![f.into()],
                    })
                    .into()
                } else {
                    v3::Packet::Unsubscribe {
                        packet_id: pid,
                        topic_filters: vec![f.into()],
                    }
                    .into()
                }
            }
            61..=75 => {
                let kind = r.random_range(0..4);
                if v5 {
                    let ack = v5::PublishAck {
                        packet_id: pid,
                        reason_code: v5::PublishAckReason::Success,
                        properties: vec![],
                        reason_string: None,
                    };
                    let ack2 = v5::PublishAck2 {
                        packet_id: pid,
                        reason_code: v5::PublishAck2Reason::Success,
                        properties: vec![],
                        reason_string: None,
                    };
                    match kind {
                        0 => v5::Packet::PublishAck(ack),
                        1 => v5::Packet::PublishReceived(ack),
                        2 => v5::Packet::PublishRelease(ack2),
                        _ => v5::Packet::PublishComplete(ack2),
                    }
                    .into()
                } else {
                    match kind {
                        0 => v3::Packet::PublishAck { packet_id: pid },
                        1 => v3::Packet::PublishReceived { packet_id: pid },
                        2 => v3::Packet::PublishRelease { packet_id: pid },
                        _ => v3::Packet::PublishComplete { packet_id: pid },
                    }
                    .into()
                }
            }
            76..=78 => {
                if v5 {
                    let code = if r.random_bool(0.5) {
                        v5::DisconnectReasonCode::NormalDisconnection
                    } else {
                        v5::DisconnectReasonCode::DisconnectWithWillMessage
                    };
                    let mut d = v5::Disconnect::new(code);
                    d.session_expiry_interval_secs = r.random_bool(0.3).then_some(5);
                    v5::Packet::Disconnect(d).into()
                } else {
                    v3::Packet::Disconnect.into()
                }
            }
            79..=82 => {
                let a = self.h.drop_conn(conn);
                self.conns.remove(&conn);
                self.apply(a, None);
                return;
            }
            83..=88 => {
                self.h.advance(self.r.random_range(0.0..10.0));
                let a = self.h.b.tick(self.h.now);
                self.apply(a, None);
                return;
            }
            89..=97 => {
                let tokens: Vec<PersistToken> = self.pending.keys().copied().collect();
                if let Some(&t) = tokens.get(r.random_range(0..tokens.len().max(1))) {
                    let fail = r.random_range(0..10) == 0;
                    if let Some(k) = self.pending.remove(&t) {
                        self.pending_ids.remove(&k);
                    }
                    let a = if fail {
                        self.h.b.persist_failed(t, self.h.now)
                    } else {
                        self.h.b.persisted(t, self.h.now)
                    };
                    self.apply(a, None);
                }
                return;
            }
            _ => {
                if v5 {
                    v5::Packet::PingRequest.into()
                } else {
                    v3::Packet::PingRequest.into()
                }
            }
        };
        let a = self.h.b.packet(ConnId(conn), packet, self.h.now);
        self.apply(a, from);
    }
}

#[test]
fn random_sequences_keep_invariants() {
    let mut total_out = 0;
    for seed in 0..40u64 {
        let mut config = Config::with_durable(["rampart/#"]).unwrap();
        config.limits.max_sessions = 4;
        config.limits.max_subscriptions_per_session = 4;
        config.limits.max_inflight_out = 3;
        config.limits.receive_maximum = 4;
        config.limits.max_queued_per_session = 5;
        config.limits.max_retained = 3;
        config.limits.topic_alias_maximum = 4;
        let mut f = Fuzz {
            h: H::new(config),
            r: SmallRng::seed_from_u64(seed),
            conns: HashMap::new(),
            next_conn: 1,
            pending: HashMap::new(),
            pending_ids: HashSet::new(),
        };
        for _ in 0..3000 {
            f.step();
        }
        // Drain everything: all persisted, all connections lost, long after every expiry.
        let tokens: Vec<PersistToken> = f.pending.keys().copied().collect();
        for t in tokens {
            let a = f.h.b.persisted(t, f.h.now);
            f.pending_ids.clear();
            f.apply(a, None);
        }
        assert_eq!(f.h.b.held_count(), 0);
        let conns: Vec<u64> = f.conns.keys().copied().collect();
        for c in conns {
            let a = f.h.drop_conn(c);
            f.apply(a, None);
        }
        f.h.advance(8.0 * 24.0 * 3600.0);
        let a = f.h.b.tick(f.h.now);
        f.apply(a, None);
        assert_eq!(f.h.b.connection_count(), 0);
        assert_eq!(
            f.h.b.session_count(),
            0,
            "seed {seed}: every session expires"
        );
        assert_eq!(f.h.b.subscription_count(), 0);
        total_out += f.h.b.metrics().publishes_out;
    }
    assert!(
        total_out > 1000,
        "the fuzzer reaches deliveries ({total_out})"
    );
}
