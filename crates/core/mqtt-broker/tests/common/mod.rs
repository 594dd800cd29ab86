//! Shared test harness: packet builders and a broker with a manual clock.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rampart_mqtt_broker::codec::types::{Publish, QoS};
use rampart_mqtt_broker::codec::{v3, v5};
use rampart_mqtt_broker::{Action, Broker, CloseReason, Config, ConnId, Packet, PersistToken};

pub fn pid(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

pub struct H {
    pub b: Broker,
    pub now: Instant,
}

impl H {
    pub fn new(config: Config) -> H {
        H {
            b: Broker::new(config),
            now: Instant::now(),
        }
    }

    pub fn default() -> H {
        H::new(Config::with_durable(["rampart/#"]).unwrap())
    }

    pub fn advance(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
    }

    pub fn send(&mut self, conn: u64, p: impl Into<Packet>) -> Vec<Action> {
        let a = self.b.packet(ConnId(conn), p.into(), self.now);
        self.b.check_invariants().unwrap();
        a
    }

    pub fn drop_conn(&mut self, conn: u64) -> Vec<Action> {
        let a = self.b.disconnected(ConnId(conn), self.now);
        self.b.check_invariants().unwrap();
        a
    }

    pub fn tick(&mut self) -> Vec<Action> {
        let a = self.b.tick(self.now);
        self.b.check_invariants().unwrap();
        a
    }

    pub fn persisted(&mut self, t: PersistToken) -> Vec<Action> {
        let a = self.b.persisted(t, self.now);
        self.b.check_invariants().unwrap();
        a
    }

    /// Connects a 3.1.1 client and checks it was accepted.
    pub fn connect3(&mut self, conn: u64, id: &str, clean: bool) -> bool {
        let a = self.send(conn, connect3(id, clean, 0, None));
        match &sent(&a, conn)[..] {
            [Packet::V3(v3::Packet::ConnectAck(ack))] => {
                assert_eq!(ack.return_code, v3::ConnectAckReason::ConnectionAccepted);
                ack.session_present
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects a 5.0 client and returns its CONNACK.
    pub fn connect5(&mut self, conn: u64, c: v5::Connect) -> (v5::ConnectAck, Vec<Action>) {
        let a = self.send(conn, v5::Packet::Connect(Box::new(c)));
        let ack = a
            .iter()
            .find_map(|x| match x {
                Action::Send {
                    conn: c,
                    packet: Packet::V5(v5::Packet::ConnectAck(ack)),
                } if *c == ConnId(conn) => Some((**ack).clone()),
                _ => None,
            })
            .expect("CONNACK");
        (ack, a)
    }

    pub fn sub3(&mut self, conn: u64, filter: &str, qos: QoS) -> Vec<Action> {
        self.send(
            conn,
            v3::Packet::Subscribe {
                packet_id: pid(1),
                topic_filters: vec![(filter.into(), qos)],
            },
        )
    }

    pub fn sub5(&mut self, conn: u64, filter: &str, opts: v5::SubscriptionOptions) -> Vec<Action> {
        self.send(
            conn,
            v5::Packet::Subscribe(v5::Subscribe {
                packet_id: pid(1),
                id: None,
                user_properties: vec![],
                topic_filters: vec![(filter.into(), opts)],
            }),
        )
    }

    pub fn pub3(
        &mut self,
        conn: u64,
        topic: &str,
        qos: QoS,
        id: u16,
        payload: &str,
    ) -> Vec<Action> {
        self.send(
            conn,
            v3::Packet::Publish(Box::new(publish(topic, qos, id, payload, false))),
        )
    }
}

pub fn opts(qos: QoS) -> v5::SubscriptionOptions {
    v5::SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: v5::RetainHandling::AtSubscribe,
    }
}

pub fn connect3(id: &str, clean: bool, keep_alive: u16, will: Option<v3::LastWill>) -> v3::Packet {
    v3::Packet::Connect(Box::new(v3::Connect {
        clean_session: clean,
        keep_alive,
        last_will: will,
        client_id: id.into(),
        ..Default::default()
    }))
}

pub fn connect5(id: &str, clean: bool, expiry: u32) -> v5::Connect {
    v5::Connect {
        clean_start: clean,
        session_expiry_interval_secs: expiry,
        client_id: id.into(),
        ..Default::default()
    }
}

pub fn publish(topic: &str, qos: QoS, id: u16, payload: &str, retain: bool) -> Publish {
    Publish {
        dup: false,
        retain,
        qos,
        topic: topic.into(),
        packet_id: NonZeroU16::new(id),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        properties: None,
    }
}

pub fn publish5(topic: &str, qos: QoS, id: u16, payload: &str, retain: bool) -> v5::Packet {
    let mut p = publish(topic, qos, id, payload, retain);
    p.properties = Some(v5::PublishProperties::default());
    v5::Packet::Publish(Box::new(p))
}

/// Packets sent to `conn`, in order.
pub fn sent(actions: &[Action], conn: u64) -> Vec<Packet> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, packet } if *c == ConnId(conn) => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

/// PUBLISH packets sent to `conn`, either version.
pub fn pubs(actions: &[Action], conn: u64) -> Vec<Publish> {
    sent(actions, conn)
        .into_iter()
        .filter_map(|p| match p {
            Packet::V3(v3::Packet::Publish(p)) | Packet::V5(v5::Packet::Publish(p)) => Some(*p),
            _ => None,
        })
        .collect()
}

pub fn payloads(actions: &[Action], conn: u64) -> Vec<String> {
    pubs(actions, conn)
        .iter()
        .map(|p| String::from_utf8(p.payload.to_vec()).unwrap())
        .collect()
}

pub fn closed(actions: &[Action], conn: u64) -> Option<CloseReason> {
    actions.iter().find_map(|a| match a {
        Action::Close { conn: c, reason } if *c == ConnId(conn) => Some(*reason),
        _ => None,
    })
}

pub fn persists(actions: &[Action]) -> Vec<(PersistToken, Publish)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist { token, publish, .. } => Some((*token, publish.clone())),
            _ => None,
        })
        .collect()
}

pub fn sub_id(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}
