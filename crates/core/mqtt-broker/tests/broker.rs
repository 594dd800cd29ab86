//! Drives the broker with packets of both protocol versions and checks what it sends.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use rampart_mqtt_broker::codec::types::QoS;
use rampart_mqtt_broker::codec::{v3, v5};
use rampart_mqtt_broker::{Action, CloseReason, Config, ConnId, Limits, Packet};

// ---- connect ------------------------------------------------------------------------------

#[test]
fn connack_codes_and_session_present() {
    let mut h = H::default();
    assert!(!h.connect3(1, "a", false));
    h.drop_conn(1);
    assert!(h.connect3(2, "a", false), "persistent session resumed");
    h.drop_conn(2);
    assert!(!h.connect3(3, "a", true), "clean session discards it");

    // 3.1.1: empty client id needs clean session.
    let a = h.send(4, connect3("", false, 0, None));
    assert_eq!(
        sent(&a, 4),
        [Packet::V3(v3::Packet::ConnectAck(v3::ConnectAck {
            return_code: v3::ConnectAckReason::IdentifierRejected,
            session_present: false
        }))]
    );
    assert_eq!(closed(&a, 4), Some(CloseReason::ConnectRefused));

    // 5.0: empty client id is assigned, and the CONNACK states the limits.
    let (ack, _) = h.connect5(5, connect5("", true, 0));
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    assert!(ack.assigned_client_id.is_some());
    assert_eq!(ack.receive_max.get(), Limits::default().receive_maximum);
    assert_eq!(ack.max_packet_size, Some(Limits::default().max_packet_size));
    assert!(ack.shared_subscription_available);

    // 5.0 enhanced authentication is not supported.
    let mut c = connect5("x", true, 0);
    c.auth_method = Some("SCRAM".into());
    let (ack, a) = h.connect5(6, c);
    assert_eq!(
        ack.reason_code,
        v5::ConnectAckReason::BadAuthenticationMethod
    );
    assert_eq!(closed(&a, 6), Some(CloseReason::ConnectRefused));
}

#[test]
fn packet_before_connect_and_second_connect_close() {
    let mut h = H::default();
    let a = h.send(1, v3::Packet::PingRequest);
    assert_eq!(closed(&a, 1), Some(CloseReason::ProtocolError));
    h.connect3(2, "a", true);
    let a = h.send(2, connect3("a", true, 0, None));
    assert_eq!(closed(&a, 2), Some(CloseReason::ProtocolError));
    assert_eq!(h.b.connection_count(), 0);
    // A 5.0 packet on a 3.1.1 connection is a protocol error too.
    h.connect3(3, "b", true);
    let a = h.send(3, v5::Packet::PingRequest);
    assert_eq!(closed(&a, 3), Some(CloseReason::ProtocolError));
}

#[test]
fn ping() {
    let mut h = H::default();
    h.connect3(1, "a", true);
    let a = h.send(1, v3::Packet::PingRequest);
    assert_eq!(sent(&a, 1), [Packet::V3(v3::Packet::PingResponse)]);
}

// ---- subscribe and route ------------------------------------------------------------------

#[test]
fn subscribe_publish_unsubscribe_across_versions() {
    let mut h = H::default();
    h.connect3(1, "sub3", true);
    h.connect5(2, connect5("sub5", true, 0));
    h.connect3(3, "pub", true);
    let a = h.sub3(1, "a/+", QoS::AtLeastOnce);
    assert_eq!(
        sent(&a, 1),
        [Packet::V3(v3::Packet::SubscribeAck {
            packet_id: pid(1),
            status: vec![v3::SubscribeReturnCode::Success(QoS::AtLeastOnce)]
        })]
    );
    let a = h.sub5(2, "a/#", opts(QoS::AtMostOnce));
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::SubscribeAck(s))]
        if s.status == [v5::SubscribeAckReason::GrantedQos0])
    );

    let a = h.pub3(3, "a/b", QoS::AtMostOnce, 0, "hello");
    assert_eq!(payloads(&a, 1), ["hello"]);
    assert_eq!(payloads(&a, 2), ["hello"]);
    assert!(pubs(&a, 2)[0].properties.is_some(), "5.0 gets properties");
    assert!(pubs(&a, 1)[0].properties.is_none(), "3.1.1 does not");

    let a = h.send(
        1,
        v3::Packet::Unsubscribe {
            packet_id: pid(2),
            topic_filters: vec!["a/+".into()],
        },
    );
    assert_eq!(
        sent(&a, 1),
        [Packet::V3(v3::Packet::UnsubscribeAck { packet_id: pid(2) })]
    );
    let a = h.send(
        2,
        v5::Packet::Unsubscribe(v5::Unsubscribe {
            packet_id: pid(3),
            user_properties: vec![],
            topic_filters: vec!["nope".into()],
        }),
    );
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::UnsubscribeAck(u))]
        if u.status == [v5::UnsubscribeAckReason::NoSubscriptionExisted])
    );
    let a = h.pub3(3, "a/b", QoS::AtMostOnce, 0, "again");
    assert!(payloads(&a, 1).is_empty());
    assert_eq!(payloads(&a, 2), ["again"]);
    assert_eq!(h.b.subscription_count(), 1);
}

#[test]
fn wildcard_matching_table() {
    // (filter, topic, matches)
    let table = [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("#", "anything/at/all", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("#", "$SYS/uptime", false),
        ("+/uptime", "$SYS/uptime", false),
        ("$SYS/#", "$SYS/uptime", true),
        ("$SYS/+", "$SYS/uptime", true),
        ("a/b", "a/b", true),
        ("a/b", "a/B", false),
        ("a//c", "a//c", true),
        ("a/+/c", "a//c", true),
    ];
    for (i, (filter, topic, want)) in table.iter().enumerate() {
        assert_eq!(
            rampart_mqtt_broker::topic::matches(filter, topic),
            *want,
            "{filter} vs {topic}"
        );
        // And through the broker's trie.
        let mut h = H::default();
        h.connect3(1, "s", true);
        h.connect3(2, "p", true);
        h.sub3(1, filter, QoS::AtMostOnce);
        let a = h.pub3(2, topic, QoS::AtMostOnce, 0, "x");
        assert_eq!(
            pubs(&a, 1).len() == 1,
            *want,
            "row {i}: {filter} vs {topic}"
        );
    }
}

#[test]
fn invalid_filters_and_topics() {
    let mut h = H::default();
    h.connect5(1, connect5("a", true, 0));
    let a = h.send(
        1,
        v5::Packet::Subscribe(v5::Subscribe {
            packet_id: pid(1),
            id: None,
            user_properties: vec![],
            topic_filters: vec![
                ("a/#/b".into(), opts(QoS::AtMostOnce)),
                ("$share/g".into(), opts(QoS::AtMostOnce)),
                ("ok/+".into(), opts(QoS::ExactlyOnce)),
            ],
        }),
    );
    assert!(
        matches!(&sent(&a, 1)[..], [Packet::V5(v5::Packet::SubscribeAck(s))]
        if s.status == [
            v5::SubscribeAckReason::TopicFilterInvalid,
            v5::SubscribeAckReason::TopicFilterInvalid,
            v5::SubscribeAckReason::GrantedQos2,
        ])
    );
    // A wildcard in a PUBLISH topic closes the connection with Topic Name invalid.
    let a = h.send(1, publish5("a/+", QoS::AtMostOnce, 0, "x", false));
    assert_eq!(closed(&a, 1), Some(CloseReason::TopicNameInvalid));
    assert!(
        matches!(&sent(&a, 1)[..], [Packet::V5(v5::Packet::Disconnect(d))]
        if d.reason_code == v5::DisconnectReasonCode::TopicNameInvalid)
    );
}

#[test]
fn overlapping_subscriptions_deliver_once_with_max_qos_and_all_ids() {
    let mut h = H::default();
    h.connect5(1, connect5("s", true, 0));
    h.connect3(2, "p", true);
    h.send(
        1,
        v5::Packet::Subscribe(v5::Subscribe {
            packet_id: pid(1),
            id: sub_id(7),
            user_properties: vec![],
            topic_filters: vec![("a/+".into(), opts(QoS::AtMostOnce))],
        }),
    );
    h.send(
        1,
        v5::Packet::Subscribe(v5::Subscribe {
            packet_id: pid(2),
            id: sub_id(9),
            user_properties: vec![],
            topic_filters: vec![("a/#".into(), opts(QoS::AtLeastOnce))],
        }),
    );
    let a = h.pub3(2, "a/b", QoS::AtLeastOnce, 5, "x");
    let p = pubs(&a, 1);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].qos, QoS::AtLeastOnce);
    let mut ids = p[0].properties.as_ref().unwrap().subscription_ids.clone();
    ids.sort();
    assert_eq!(ids, [sub_id(7).unwrap(), sub_id(9).unwrap()]);
}

#[test]
fn shared_subscriptions_round_robin() {
    let mut h = H::default();
    for (c, id) in [(1, "w1"), (2, "w2"), (3, "w3")] {
        h.connect5(c, connect5(id, true, 0));
        h.sub5(c, "$share/workers/jobs/+", opts(QoS::AtMostOnce));
    }
    h.connect3(4, "plain", true);
    h.sub3(4, "jobs/#", QoS::AtMostOnce);
    h.connect3(9, "p", true);
    let mut counts = [0; 4];
    for i in 0..30 {
        let a = h.pub3(9, "jobs/x", QoS::AtMostOnce, 0, &i.to_string());
        for c in 1..=3 {
            counts[c - 1] += pubs(&a, c as u64).len();
        }
        counts[3] += pubs(&a, 4).len();
    }
    assert_eq!(
        counts,
        [10, 10, 10, 30],
        "each message to one worker, and to the plain one"
    );
    // Shared subscriptions get no retained messages.
    h.pub3(9, "jobs/r", QoS::AtMostOnce, 0, "ret");
    let a = h.send(
        9,
        v3::Packet::Publish(Box::new(publish("jobs/r", QoS::AtMostOnce, 0, "ret", true))),
    );
    assert!(!pubs(&a, 4).is_empty());
    h.connect5(5, connect5("w4", true, 0));
    let a = h.sub5(5, "$share/workers/jobs/+", opts(QoS::AtMostOnce));
    assert!(pubs(&a, 5).is_empty());
    // No Local on a shared subscription is a protocol error.
    let mut o = opts(QoS::AtMostOnce);
    o.no_local = true;
    let a = h.sub5(5, "$share/g/x", o);
    assert_eq!(closed(&a, 5), Some(CloseReason::ProtocolError));
}

#[test]
fn shared_group_prefers_members_with_room() {
    let mut h = H::default();
    h.connect3(1, "w1", false);
    h.sub3(1, "$share/g/t", QoS::AtLeastOnce);
    h.connect3(2, "w2", false);
    h.sub3(2, "$share/g/t", QoS::AtLeastOnce);
    h.drop_conn(1); // w1 offline: everything goes to w2
    h.connect3(9, "p", true);
    let mut to_w2 = 0;
    for i in 1..=4 {
        let a = h.pub3(9, "t", QoS::AtLeastOnce, i, "m");
        to_w2 += pubs(&a, 2).len();
    }
    assert_eq!(to_w2, 4);
    assert_eq!(h.b.queued("w1"), Some(0));
}

#[test]
fn no_local() {
    let mut h = H::default();
    h.connect5(1, connect5("a", true, 0));
    let mut o = opts(QoS::AtMostOnce);
    o.no_local = true;
    h.sub5(1, "t", o);
    let a = h.send(1, publish5("t", QoS::AtMostOnce, 0, "self", false));
    assert!(pubs(&a, 1).is_empty());
}

// ---- retained -----------------------------------------------------------------------------

#[test]
fn retained_on_subscribe_and_clear() {
    let mut h = H::default();
    h.connect3(1, "p", true);
    h.send(
        1,
        v3::Packet::Publish(Box::new(publish("r/a", QoS::AtLeastOnce, 1, "A", true))),
    );
    h.send(
        1,
        v3::Packet::Publish(Box::new(publish("r/b", QoS::AtMostOnce, 0, "B", true))),
    );
    assert_eq!(h.b.retained_count(), 2);
    h.connect3(2, "s", true);
    let a = h.sub3(2, "r/+", QoS::AtLeastOnce);
    // SUBACK first, then the retained messages with RETAIN set.
    assert!(matches!(
        sent(&a, 2)[0],
        Packet::V3(v3::Packet::SubscribeAck { .. })
    ));
    let mut got: Vec<(String, bool, QoS)> = pubs(&a, 2)
        .iter()
        .map(|p| {
            (
                String::from_utf8(p.payload.to_vec()).unwrap(),
                p.retain,
                p.qos,
            )
        })
        .collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        got,
        [
            ("A".into(), true, QoS::AtLeastOnce),
            ("B".into(), true, QoS::AtMostOnce)
        ]
    );
    // Live delivery to an established subscription clears RETAIN (3.1.1 §3.3.1.3).
    let a = h.send(
        1,
        v3::Packet::Publish(Box::new(publish("r/a", QoS::AtMostOnce, 0, "A2", true))),
    );
    assert!(!pubs(&a, 2)[0].retain);
    // Empty retained payload deletes.
    h.send(
        1,
        v3::Packet::Publish(Box::new(publish("r/a", QoS::AtMostOnce, 0, "", true))),
    );
    assert_eq!(h.b.retained_count(), 1);
}

#[test]
fn retain_handling_and_retain_as_published_v5() {
    let mut h = H::default();
    h.connect5(1, connect5("p", true, 0));
    h.send(1, publish5("r", QoS::AtMostOnce, 0, "R", true));
    h.connect5(2, connect5("s", true, 0));

    let mut o = opts(QoS::AtMostOnce);
    o.retain_handling = v5::RetainHandling::NoAtSubscribe;
    assert!(pubs(&h.sub5(2, "r", o), 2).is_empty(), "2: never");

    o.retain_handling = v5::RetainHandling::AtSubscribeNew;
    assert!(
        pubs(&h.sub5(2, "r", o), 2).is_empty(),
        "1: not when it existed"
    );
    assert_eq!(pubs(&h.sub5(2, "+", o), 2).len(), 1, "1: when new");

    o.retain_handling = v5::RetainHandling::AtSubscribe;
    assert_eq!(pubs(&h.sub5(2, "r", o), 2).len(), 1, "0: always");

    // Retain As Published keeps the flag on live deliveries.
    h.send(
        2,
        v5::Packet::Unsubscribe(v5::Unsubscribe {
            packet_id: pid(4),
            user_properties: vec![],
            topic_filters: vec!["+".into()],
        }),
    );
    o.retain_as_published = true;
    o.retain_handling = v5::RetainHandling::NoAtSubscribe;
    h.sub5(2, "r", o);
    let a = h.send(1, publish5("r", QoS::AtMostOnce, 0, "R2", true));
    assert!(pubs(&a, 2)[0].retain);
}

#[test]
fn retained_limit_is_counted() {
    let mut config = Config::with_durable(["rampart/#"]).unwrap();
    config.limits.max_retained = 2;
    let mut h = H::new(config);
    h.connect3(1, "p", true);
    for t in ["a", "b", "c"] {
        h.send(
            1,
            v3::Packet::Publish(Box::new(publish(t, QoS::AtMostOnce, 0, "x", true))),
        );
    }
    assert_eq!(h.b.retained_count(), 2);
    assert_eq!(h.b.metrics().retained_refused, 1);
    // Replacing an existing topic is still allowed.
    h.send(
        1,
        v3::Packet::Publish(Box::new(publish("a", QoS::AtMostOnce, 0, "y", true))),
    );
    assert_eq!(h.b.metrics().retained_refused, 1);
}

// ---- QoS flows ----------------------------------------------------------------------------

#[test]
fn qos1_end_to_end() {
    let mut h = H::default();
    h.connect3(1, "s", true);
    h.sub3(1, "t", QoS::AtLeastOnce);
    h.connect3(2, "p", true);
    let a = h.pub3(2, "t", QoS::AtLeastOnce, 42, "m");
    assert_eq!(
        sent(&a, 2),
        [Packet::V3(v3::Packet::PublishAck { packet_id: pid(42) })]
    );
    let p = pubs(&a, 1);
    assert_eq!(p[0].qos, QoS::AtLeastOnce);
    let out_id = p[0].packet_id.unwrap();
    let a = h.send(1, v3::Packet::PublishAck { packet_id: out_id });
    assert!(a.is_empty());
    // An unknown ack is ignored and counted.
    h.send(1, v3::Packet::PublishAck { packet_id: out_id });
    assert_eq!(h.b.metrics().unknown_acks, 1);
    // QoS is downgraded to the subscription's.
    h.connect3(3, "s0", true);
    h.sub3(3, "t", QoS::AtMostOnce);
    let a = h.pub3(2, "t", QoS::AtLeastOnce, 43, "m");
    assert_eq!(pubs(&a, 3)[0].qos, QoS::AtMostOnce);
}

#[test]
fn qos2_inbound_and_outbound_with_duplicates() {
    let mut h = H::default();
    h.connect5(1, connect5("s", true, 0));
    h.sub5(1, "t", opts(QoS::ExactlyOnce));
    h.connect5(2, connect5("p", true, 0));

    let a = h.send(2, publish5("t", QoS::ExactlyOnce, 7, "once", false));
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::PublishReceived(r))]
        if r.packet_id == pid(7) && r.reason_code == v5::PublishAckReason::Success)
    );
    let delivered = pubs(&a, 1);
    assert_eq!(delivered.len(), 1);
    // A duplicate before PUBREL is answered with PUBREC and not routed again.
    let mut dup = publish5("t", QoS::ExactlyOnce, 7, "once", false);
    if let v5::Packet::Publish(p) = &mut dup {
        p.dup = true;
    }
    let a = h.send(2, dup);
    assert!(pubs(&a, 1).is_empty());
    assert!(matches!(
        &sent(&a, 2)[..],
        [Packet::V5(v5::Packet::PublishReceived(_))]
    ));
    // PUBREL → PUBCOMP; a second PUBREL → PUBCOMP "not found".
    let rel = |id| {
        v5::Packet::PublishRelease(v5::PublishAck2 {
            packet_id: pid(id),
            reason_code: v5::PublishAck2Reason::Success,
            properties: vec![],
            reason_string: None,
        })
    };
    let a = h.send(2, rel(7));
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::PublishComplete(c))]
        if c.reason_code == v5::PublishAck2Reason::Success)
    );
    let a = h.send(2, rel(7));
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::PublishComplete(c))]
        if c.reason_code == v5::PublishAck2Reason::PacketIdNotFound)
    );

    // Outbound: PUBREC → PUBREL, PUBCOMP frees the slot.
    let out_id = delivered[0].packet_id.unwrap();
    let ack = |id| v5::PublishAck {
        packet_id: id,
        reason_code: v5::PublishAckReason::Success,
        properties: vec![],
        reason_string: None,
    };
    let a = h.send(1, v5::Packet::PublishReceived(ack(out_id)));
    assert!(
        matches!(&sent(&a, 1)[..], [Packet::V5(v5::Packet::PublishRelease(r))]
        if r.packet_id == out_id)
    );
    let a = h.send(
        1,
        v5::Packet::PublishComplete(v5::PublishAck2 {
            packet_id: out_id,
            reason_code: v5::PublishAck2Reason::Success,
            properties: vec![],
            reason_string: None,
        }),
    );
    assert!(a.is_empty());
    assert_eq!(h.b.metrics().unknown_acks, 1, "only the second PUBREL");
}

#[test]
fn persistent_session_redelivers_after_reconnect() {
    let mut h = H::default();
    h.connect3(1, "s", false);
    h.sub3(1, "t", QoS::AtLeastOnce);
    h.connect3(9, "p", true);
    let a = h.pub3(9, "t", QoS::AtLeastOnce, 1, "m1");
    let first = pubs(&a, 1);
    assert_eq!(first.len(), 1);
    h.drop_conn(1); // never acked
    // While offline: QoS 1 queued, QoS 0 dropped and counted.
    h.pub3(9, "t", QoS::AtLeastOnce, 2, "m2");
    h.pub3(9, "t", QoS::AtMostOnce, 0, "q0");
    assert_eq!(h.b.queued("s"), Some(1));
    assert_eq!(h.b.metrics().offline_qos0_drops, 1);

    let a = h.send(2, connect3("s", false, 0, None));
    assert!(matches!(&sent(&a, 2)[0], Packet::V3(v3::Packet::ConnectAck(c)) if c.session_present));
    let p = pubs(&a, 2);
    assert_eq!(payloads(&a, 2), ["m1", "m2"]);
    assert!(p[0].dup, "redelivery of the unacknowledged one has DUP");
    assert_eq!(p[0].packet_id, first[0].packet_id, "same packet id");
    assert!(!p[1].dup);
    assert_eq!(h.b.queued("s"), Some(0));
}

#[test]
fn qos2_outbound_pubrel_resent_after_reconnect() {
    let mut h = H::default();
    h.connect3(1, "s", false);
    h.sub3(1, "t", QoS::ExactlyOnce);
    h.connect3(9, "p", true);
    let a = h.pub3(9, "t", QoS::ExactlyOnce, 1, "m");
    let id = pubs(&a, 1)[0].packet_id.unwrap();
    h.send(1, v3::Packet::PublishReceived { packet_id: id });
    h.drop_conn(1);
    let a = h.send(2, connect3("s", false, 0, None));
    assert_eq!(
        sent(&a, 2)[1],
        Packet::V3(v3::Packet::PublishRelease { packet_id: id })
    );
    assert!(
        h.send(2, v3::Packet::PublishComplete { packet_id: id })
            .is_empty()
    );
}

#[test]
fn inflight_window_and_receive_maximum_of_client() {
    let mut h = H::default();
    let mut c = connect5("s", true, 0);
    c.receive_max = std::num::NonZeroU16::new(2);
    h.connect5(1, c);
    h.sub5(1, "t", opts(QoS::AtLeastOnce));
    h.connect3(9, "p", true);
    let mut got = Vec::new();
    for i in 1..=5 {
        got.extend(pubs(
            &h.pub3(9, "t", QoS::AtLeastOnce, i, &i.to_string()),
            1,
        ));
    }
    assert_eq!(got.len(), 2, "client's Receive Maximum");
    assert_eq!(h.b.queued("s"), Some(3));
    let a = h.send(
        1,
        v5::Packet::PublishAck(v5::PublishAck {
            packet_id: got[0].packet_id.unwrap(),
            reason_code: v5::PublishAckReason::Success,
            properties: vec![],
            reason_string: None,
        }),
    );
    assert_eq!(payloads(&a, 1), ["3"], "one acked, one more sent, in order");
}

// ---- durability ---------------------------------------------------------------------------

#[test]
fn durable_publish_is_acked_only_after_persisted() {
    let mut h = H::default();
    h.connect3(1, "s", true);
    h.sub3(1, "rampart/#", QoS::AtLeastOnce);
    h.connect3(2, "dev", true);
    let a = h.pub3(2, "rampart/v1/dev/report", QoS::AtLeastOnce, 9, "{}");
    assert!(sent(&a, 2).is_empty(), "no PUBACK before the group commit");
    assert!(pubs(&a, 1).is_empty(), "nor delivery");
    let p = persists(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(&*p[0].1.topic, "rampart/v1/dev/report");
    assert_eq!(h.b.held_count(), 1);
    // A duplicate while persisting is absorbed.
    let a = h.pub3(2, "rampart/v1/dev/report", QoS::AtLeastOnce, 9, "{}");
    assert!(a.is_empty());
    let a = h.persisted(p[0].0);
    assert_eq!(
        sent(&a, 2),
        [Packet::V3(v3::Packet::PublishAck { packet_id: pid(9) })]
    );
    assert_eq!(payloads(&a, 1), ["{}"]);
    assert_eq!(h.b.held_count(), 0);
    // Non-durable topics are acknowledged at once.
    let a = h.pub3(2, "other/x", QoS::AtLeastOnce, 10, "y");
    assert_eq!(
        sent(&a, 2),
        [Packet::V3(v3::Packet::PublishAck { packet_id: pid(10) })]
    );
}

#[test]
fn durable_qos2_and_reconnect_before_commit() {
    let mut h = H::default();
    h.connect3(1, "dev", false);
    let a = h.pub3(1, "rampart/x", QoS::ExactlyOnce, 3, "m");
    let token = persists(&a)[0].0;
    h.drop_conn(1);
    // Committed while the client is away: nothing to send, but the PUBREL state is kept.
    let a = h.persisted(token);
    assert!(a.is_empty());
    h.connect3(2, "dev", false);
    // The client resends; it is a duplicate: PUBREC, no second persist.
    let a = h.pub3(2, "rampart/x", QoS::ExactlyOnce, 3, "m");
    assert!(persists(&a).is_empty());
    assert_eq!(
        sent(&a, 2),
        [Packet::V3(v3::Packet::PublishReceived {
            packet_id: pid(3)
        })]
    );
    let a = h.send(2, v3::Packet::PublishRelease { packet_id: pid(3) });
    assert_eq!(
        sent(&a, 2),
        [Packet::V3(v3::Packet::PublishComplete {
            packet_id: pid(3)
        })]
    );
}

#[test]
fn persist_failure_is_reported() {
    let mut h = H::default();
    h.connect5(1, connect5("v5", true, 0));
    let a = h.send(1, publish5("rampart/x", QoS::AtLeastOnce, 1, "m", false));
    let a = h.b.persist_failed(persists(&a)[0].0, h.now);
    assert!(
        matches!(&sent(&a, 1)[..], [Packet::V5(v5::Packet::PublishAck(p))]
        if p.reason_code == v5::PublishAckReason::ImplementationSpecificError)
    );
    h.connect3(2, "v3", true);
    let a = h.pub3(2, "rampart/x", QoS::AtLeastOnce, 1, "m");
    let a = h.b.persist_failed(persists(&a)[0].0, h.now);
    assert_eq!(closed(&a, 2), Some(CloseReason::PersistFailed));
    assert_eq!(h.b.metrics().persist_failures, 2);
    h.b.check_invariants().unwrap();
}

#[test]
fn durable_qos0_is_persisted_without_ack() {
    let mut h = H::default();
    h.connect3(1, "s", true);
    h.sub3(1, "#", QoS::AtMostOnce);
    h.connect3(2, "dev", true);
    let a = h.pub3(2, "rampart/t", QoS::AtMostOnce, 0, "m");
    assert!(pubs(&a, 1).is_empty());
    let a = h.persisted(persists(&a)[0].0);
    assert_eq!(payloads(&a, 1), ["m"]);
    assert!(sent(&a, 2).is_empty());
}

// ---- wills, keepalive, takeover, expiry ------------------------------------------------------

fn will3(topic: &str) -> v3::LastWill {
    v3::LastWill {
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        message: bytes::Bytes::from_static(b"gone"),
    }
}

#[test]
fn will_on_abnormal_close_not_on_disconnect() {
    let mut h = H::default();
    h.connect3(1, "watch", true);
    h.sub3(1, "will/#", QoS::AtMostOnce);
    h.send(2, connect3("a", true, 0, Some(will3("will/a"))));
    let a = h.drop_conn(2);
    assert_eq!(payloads(&a, 1), ["gone"]);
    h.send(3, connect3("b", true, 0, Some(will3("will/b"))));
    let a = h.send(3, v3::Packet::Disconnect);
    assert_eq!(closed(&a, 3), Some(CloseReason::ClientDisconnect));
    assert!(pubs(&a, 1).is_empty());
    assert!(h.drop_conn(3).is_empty(), "already forgotten");
    assert_eq!(h.b.metrics().wills_published, 1);
}

#[test]
fn will_v5_delay_cancel_and_disconnect_with_will() {
    let mut h = H::default();
    h.connect3(1, "watch", true);
    h.sub3(1, "will/#", QoS::AtMostOnce);
    let mut c = connect5("d", false, 600);
    c.last_will = Some(v5::LastWill {
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "will/d".into(),
        message: bytes::Bytes::from_static(b"late"),
        will_delay_interval_sec: Some(30),
        correlation_data: None,
        message_expiry_interval: None,
        content_type: None,
        user_properties: vec![("k".into(), "v".into())],
        is_utf8_payload: None,
        response_topic: None,
    });
    h.connect5(2, c.clone());
    assert!(pubs(&h.drop_conn(2), 1).is_empty(), "delayed");
    h.advance(10.0);
    h.connect5(3, connect5("d", false, 600)); // back in time: cancelled
    h.advance(60.0);
    assert!(pubs(&h.tick(), 1).is_empty());

    h.connect5(4, c.clone());
    h.drop_conn(4);
    h.advance(31.0);
    let a = h.tick();
    assert_eq!(payloads(&a, 1), ["late"]);

    // DISCONNECT with "Disconnect with Will Message" publishes it (after its delay).
    c.last_will.as_mut().unwrap().will_delay_interval_sec = None;
    h.connect5(5, c);
    let a = h.send(
        5,
        v5::Packet::Disconnect(v5::Disconnect::new(
            v5::DisconnectReasonCode::DisconnectWithWillMessage,
        )),
    );
    assert_eq!(payloads(&a, 1), ["late"]);
}

#[test]
fn keepalive_timeout_closes_after_one_and_a_half_intervals() {
    let mut h = H::default();
    h.connect3(1, "watch", true);
    h.sub3(1, "will/#", QoS::AtMostOnce);
    h.send(2, connect3("k", true, 10, Some(will3("will/k"))));
    h.advance(14.0);
    assert!(closed(&h.tick(), 2).is_none());
    h.send(2, v3::Packet::PingRequest); // resets the deadline
    h.advance(14.9);
    assert!(closed(&h.tick(), 2).is_none());
    h.advance(0.2);
    let a = h.tick();
    assert_eq!(closed(&a, 2), Some(CloseReason::KeepaliveTimeout));
    assert_eq!(payloads(&a, 1), ["gone"], "will on keepalive timeout");

    // 5.0 gets a DISCONNECT with the reason first; the server caps keepalive 0.
    let mut c = connect5("k5", true, 0);
    c.keep_alive = 0;
    let (ack, _) = h.connect5(3, c);
    assert_eq!(ack.server_keepalive_sec, Limits::default().max_keepalive);
    h.advance(5401.0);
    let a = h.tick();
    assert!(
        matches!(&sent(&a, 3)[..], [Packet::V5(v5::Packet::Disconnect(d))]
        if d.reason_code == v5::DisconnectReasonCode::KeepAliveTimeout)
    );
}

#[test]
fn session_takeover() {
    let mut h = H::default();
    h.connect5(1, connect5("same", false, 300));
    h.sub5(1, "t", opts(QoS::AtLeastOnce));
    let (ack, a) = h.connect5(2, connect5("same", false, 300));
    assert!(ack.session_present);
    assert!(
        matches!(&sent(&a, 1)[..], [Packet::V5(v5::Packet::Disconnect(d))]
        if d.reason_code == v5::DisconnectReasonCode::SessionTakenOver)
    );
    assert_eq!(closed(&a, 1), Some(CloseReason::SessionTakenOver));
    assert_eq!(h.b.metrics().takeovers, 1);
    assert_eq!(h.b.connection_count(), 1);
    // The subscription moved with the session.
    h.connect3(9, "p", true);
    let a = h.pub3(9, "t", QoS::AtMostOnce, 0, "x");
    assert_eq!(payloads(&a, 2), ["x"]);
    assert!(payloads(&a, 1).is_empty());
    // The old connection's late loss notice is ignored.
    assert!(h.drop_conn(1).is_empty());
    assert_eq!(h.b.connection_count(), 2);
}

#[test]
fn session_expiry_v5_and_disconnect_update() {
    let mut h = H::default();
    h.connect5(1, connect5("e", false, 10));
    h.sub5(1, "t", opts(QoS::AtLeastOnce));
    h.drop_conn(1);
    h.advance(9.0);
    h.tick();
    assert_eq!(h.b.session_count(), 1);
    h.advance(2.0);
    h.tick();
    assert_eq!(h.b.session_count(), 0);
    assert_eq!(h.b.subscription_count(), 0);

    // Expiry 0 at connect: ends with the connection; raising it at DISCONNECT is an error.
    h.connect5(2, connect5("z", true, 0));
    let mut d = v5::Disconnect::new(v5::DisconnectReasonCode::NormalDisconnection);
    d.session_expiry_interval_secs = Some(100);
    let a = h.send(2, v5::Packet::Disconnect(d));
    assert_eq!(closed(&a, 2), Some(CloseReason::ProtocolError));
    assert_eq!(h.b.session_count(), 0);
}

// ---- MQTT 5 properties ----------------------------------------------------------------------

#[test]
fn topic_alias_inbound() {
    let mut h = H::default();
    h.connect3(1, "s", true);
    h.sub3(1, "long/topic/name", QoS::AtMostOnce);
    h.connect5(2, connect5("p", true, 0));
    let with_alias = |topic: &str, alias: u16| {
        let mut p = publish(topic, QoS::AtMostOnce, 0, "x", false);
        p.properties = Some(v5::PublishProperties {
            topic_alias: std::num::NonZeroU16::new(alias),
            ..Default::default()
        });
        v5::Packet::Publish(Box::new(p))
    };
    assert_eq!(
        pubs(&h.send(2, with_alias("long/topic/name", 1)), 1).len(),
        1
    );
    let a = h.send(2, with_alias("", 1));
    assert_eq!(&*pubs(&a, 1)[0].topic, "long/topic/name");
    let a = h.send(2, with_alias("", 2));
    assert_eq!(closed(&a, 2), Some(CloseReason::TopicAliasInvalid));
    h.connect5(3, connect5("p2", true, 0));
    let a = h.send(
        3,
        with_alias("x", Limits::default().topic_alias_maximum + 1),
    );
    assert_eq!(closed(&a, 3), Some(CloseReason::TopicAliasInvalid));
}

#[test]
fn message_expiry_and_user_properties_pass_through() {
    let mut h = H::default();
    h.connect5(1, connect5("s", false, 600));
    h.sub5(1, "t", opts(QoS::AtLeastOnce));
    h.drop_conn(1);
    h.connect5(2, connect5("p", true, 0));
    let mk = |payload: &str, expiry: u32| {
        let mut p = publish("t", QoS::AtLeastOnce, 1, payload, false);
        p.properties = Some(v5::PublishProperties {
            message_expiry_interval: std::num::NonZeroU32::new(expiry),
            user_properties: vec![("unit".into(), "celsius".into())],
            ..Default::default()
        });
        v5::Packet::Publish(Box::new(p))
    };
    h.send(2, mk("short", 5));
    let mut p = mk("long", 100);
    if let v5::Packet::Publish(p) = &mut p {
        p.packet_id = Some(pid(2));
    }
    h.send(2, p);
    h.advance(30.0);
    let (_, a) = h.connect5(3, connect5("s", false, 600));
    let p = pubs(&a, 3);
    assert_eq!(p.len(), 1, "the expired one is dropped");
    let props = p[0].properties.as_ref().unwrap();
    assert_eq!(props.message_expiry_interval.map(|v| v.get()), Some(70));
    assert_eq!(props.user_properties, [("unit".into(), "celsius".into())]);
    assert_eq!(h.b.metrics().expired_drops, 1);
}

#[test]
fn maximum_packet_size_of_client_drops_and_counts() {
    let mut h = H::default();
    let mut c = connect5("s", true, 0);
    c.max_packet_size = std::num::NonZeroU32::new(64);
    h.connect5(1, c);
    h.sub5(1, "t", opts(QoS::AtLeastOnce));
    h.connect3(2, "p", true);
    let a = h.pub3(2, "t", QoS::AtLeastOnce, 1, &"x".repeat(100));
    assert!(pubs(&a, 1).is_empty());
    let a = h.pub3(2, "t", QoS::AtLeastOnce, 2, "small");
    assert_eq!(payloads(&a, 1), ["small"]);
    assert_eq!(h.b.metrics().oversize_drops, 1);
}

#[test]
fn payload_format_invalid() {
    let mut h = H::default();
    h.connect5(1, connect5("p", true, 0));
    let mut p = publish("t", QoS::AtLeastOnce, 1, "", false);
    p.payload = bytes::Bytes::from_static(&[0xff, 0xfe]);
    p.properties = Some(v5::PublishProperties {
        is_utf8_payload: true,
        ..Default::default()
    });
    let a = h.send(1, v5::Packet::Publish(Box::new(p)));
    assert!(
        matches!(&sent(&a, 1)[..], [Packet::V5(v5::Packet::PublishAck(r))]
        if r.reason_code == v5::PublishAckReason::PayloadFormatInvalid)
    );
}

// ---- limits --------------------------------------------------------------------------------

#[test]
fn limits_sessions_subscriptions_queue_receive_maximum() {
    let mut config = Config::with_durable(["rampart/#"]).unwrap();
    config.limits.max_sessions = 2;
    config.limits.max_subscriptions_per_session = 1;
    config.limits.max_queued_per_session = 2;
    config.limits.receive_maximum = 2;
    let mut h = H::new(config);
    h.connect3(1, "a", false);
    h.connect5(2, connect5("b", true, 0));
    let a = h.send(3, connect3("c", true, 0, None));
    assert!(
        matches!(&sent(&a, 3)[..], [Packet::V3(v3::Packet::ConnectAck(c))]
        if c.return_code == v3::ConnectAckReason::ServiceUnavailable)
    );
    let (ack, _) = h.connect5(4, connect5("d", true, 0));
    assert_eq!(ack.reason_code, v5::ConnectAckReason::QuotaExceeded);
    assert_eq!(h.b.metrics().sessions_limit_refused, 2);

    h.sub3(1, "t", QoS::AtLeastOnce);
    let a = h.sub3(1, "u", QoS::AtLeastOnce);
    assert!(
        matches!(&sent(&a, 1)[..], [Packet::V3(v3::Packet::SubscribeAck { status, .. })]
        if status == &[v3::SubscribeReturnCode::Failure])
    );
    assert_eq!(h.b.metrics().subscriptions_limit_refused, 1);

    // Queue of an offline session: two kept, the third dropped and counted.
    h.drop_conn(1);
    for i in 1..=3 {
        h.send(2, publish5("t", QoS::AtLeastOnce, i, "m", false));
    }
    assert_eq!(h.b.queued("a"), Some(2));
    assert_eq!(h.b.metrics().queue_full_drops, 1);

    // Receive Maximum: the third unacknowledged inbound QoS 2 closes the connection.
    for i in 10..12 {
        h.send(2, publish5("x", QoS::ExactlyOnce, i, "m", false));
    }
    let a = h.send(2, publish5("x", QoS::ExactlyOnce, 12, "m", false));
    assert_eq!(closed(&a, 2), Some(CloseReason::ReceiveMaximumExceeded));
}

#[test]
fn authorizer_is_consulted() {
    use rampart_mqtt_broker::{Authorizer, Broker, Credentials, Refusal};
    struct Policy;
    impl Authorizer for Policy {
        fn authenticate(&mut self, c: &Credentials<'_>) -> Result<(), Refusal> {
            if c.password == Some(b"secret") {
                Ok(())
            } else {
                Err(Refusal::BadCredentials)
            }
        }
        fn may_publish(&mut self, client_id: &str, topic: &str) -> bool {
            topic.starts_with(&format!("dev/{client_id}/"))
        }
        fn may_subscribe(&mut self, _: &str, filter: &str) -> bool {
            filter != "#"
        }
    }
    let mut h = H::default();
    h.b = Broker::with_authorizer(Config::default(), Box::new(Policy));
    let mut c = connect5("d1", true, 0);
    let (ack, _) = h.connect5(1, c.clone());
    assert_eq!(ack.reason_code, v5::ConnectAckReason::BadUserNameOrPassword);
    c.password = Some(bytes::Bytes::from_static(b"secret"));
    let (ack, _) = h.connect5(2, c);
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    let a = h.send(2, publish5("dev/d2/x", QoS::AtLeastOnce, 1, "spoof", false));
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::PublishAck(r))]
        if r.reason_code == v5::PublishAckReason::NotAuthorized)
    );
    let a = h.sub5(2, "#", opts(QoS::AtMostOnce));
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::SubscribeAck(s))]
        if s.status == [v5::SubscribeAckReason::NotAuthorized])
    );
    assert_eq!(h.b.metrics().publish_denied, 1);
    assert_eq!(h.b.metrics().subscribe_denied, 1);
    let _ = ConnId(0);
    let _: Option<Action> = None;
}

// ---- persistence, refusals, server publishes ------------------------------------------------

#[test]
fn snapshot_restores_sessions_queues_and_retained() {
    let mut h = H::default();
    h.connect3(1, "s", false);
    h.sub3(1, "t/#", QoS::AtLeastOnce);
    h.connect3(9, "p", true);
    let a = h.pub3(9, "t/1", QoS::AtLeastOnce, 1, "m1");
    assert_eq!(pubs(&a, 1).len(), 1, "inflight, never acked");
    h.drop_conn(1);
    h.pub3(9, "t/2", QoS::AtLeastOnce, 2, "m2");
    let retained = publish("t/r", QoS::AtMostOnce, 0, "keep", true);
    h.send(9, v3::Packet::Publish(Box::new(retained)));
    // A clean session is not persistent and is not in the snapshot.
    let snap = h.b.snapshot(h.now);
    assert_eq!(snap.sessions.len(), 1);
    assert_eq!(snap.sessions[0].pending.len(), 2);
    assert_eq!(snap.retained.len(), 1);

    // Through serde, as the edge stores it.
    let text = serde_json::to_string(&snap).unwrap();
    let back: rampart_mqtt_broker::Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(back, snap);

    let mut h2 = H::default();
    let stats = h2.b.restore(back, h2.now);
    assert_eq!((stats.sessions, stats.pending, stats.retained), (1, 2, 1));
    h2.b.check_invariants().unwrap();
    let a = h2.send(2, connect3("s", false, 0, None));
    assert!(matches!(&sent(&a, 2)[0], Packet::V3(v3::Packet::ConnectAck(c)) if c.session_present));
    assert_eq!(payloads(&a, 2), ["m1", "m2"]);
    // The subscription survived: a new publish reaches it, and the retained message is there.
    h2.connect3(3, "p2", true);
    let a = h2.pub3(3, "t/3", QoS::AtLeastOnce, 5, "m3");
    assert_eq!(payloads(&a, 2), ["m3"]);
    h2.connect3(4, "late", true);
    let a = h2.sub3(4, "t/r", QoS::AtMostOnce);
    assert_eq!(payloads(&a, 4), ["keep"]);
}

#[test]
fn refused_durable_publish_is_not_routed() {
    let mut h = H::default();
    h.connect3(1, "s", true);
    h.sub3(1, "rampart/#", QoS::AtLeastOnce);
    h.connect5(2, connect5("v5", true, 0));
    let a = h.send(2, publish5("rampart/x", QoS::AtLeastOnce, 1, "bad", false));
    let a = h.b.refused(
        persists(&a)[0].0,
        v5::PublishAckReason::PayloadFormatInvalid,
        h.now,
    );
    assert!(
        matches!(&sent(&a, 2)[..], [Packet::V5(v5::Packet::PublishAck(p))]
        if p.reason_code == v5::PublishAckReason::PayloadFormatInvalid)
    );
    assert!(pubs(&a, 1).is_empty());
    // 3.1.1 has no negative ack: a plain PUBACK so the client does not resend forever.
    h.connect3(3, "v3", true);
    let a = h.pub3(3, "rampart/x", QoS::AtLeastOnce, 7, "bad");
    let a = h.b.refused(
        persists(&a)[0].0,
        v5::PublishAckReason::NotAuthorized,
        h.now,
    );
    assert_eq!(
        sent(&a, 3),
        [Packet::V3(v3::Packet::PublishAck { packet_id: pid(7) })]
    );
    assert!(pubs(&a, 1).is_empty());
    assert_eq!(h.b.metrics().persist_refused, 2);
    h.b.check_invariants().unwrap();
}

#[test]
fn injected_publishes_route_and_subscriber_test() {
    let mut h = H::default();
    h.connect3(1, "s", true);
    assert!(!h.b.has_subscribers("live/entities/u1"));
    h.sub3(1, "live/entities/#", QoS::AtMostOnce);
    assert!(h.b.has_subscribers("live/entities/u1"));
    assert!(!h.b.has_subscribers("other"));
    let a = h.b.inject(
        publish("live/entities/u1", QoS::AtMostOnce, 0, "e", false),
        true,
        h.now,
    );
    assert_eq!(payloads(&a, 1), ["e"]);
    // An injected publish on a durable topic is held for durability like any other.
    let a = h.b.inject(
        publish("rampart/v1/d/report", QoS::AtLeastOnce, 0, "r", false),
        true,
        h.now,
    );
    assert_eq!(persists(&a).len(), 1);
}

#[test]
fn observed_filters_report_routed_messages_except_bridged_ones() {
    let mut cfg = Config::with_durable(["rampart/#"]).unwrap();
    cfg.observe = vec!["out/#".into()];
    let mut h = H::new(cfg);
    h.connect3(1, "p", true);
    let observed = |a: &[Action]| {
        a.iter()
            .filter_map(|x| match x {
                Action::Observed { publish, .. } => Some(publish.topic.to_string()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let a = h.pub3(1, "out/a", QoS::AtLeastOnce, 1, "x");
    assert_eq!(observed(&a), ["out/a"]);
    let a = h.pub3(1, "in/a", QoS::AtMostOnce, 0, "x");
    assert!(observed(&a).is_empty());
    let a = h.b.inject(
        publish("out/b", QoS::AtMostOnce, 0, "s", false),
        true,
        h.now,
    );
    assert_eq!(observed(&a), ["out/b"]);
    let a = h.b.inject(
        publish("out/c", QoS::AtMostOnce, 0, "s", false),
        false,
        h.now,
    );
    assert!(
        observed(&a).is_empty(),
        "bridged-in messages never go back out"
    );
}

#[test]
fn congestion_of_connected_subscribers_is_reported() {
    let mut cfg = Config::with_durable(["rampart/#"]).unwrap();
    cfg.limits.max_queued_per_session = 8;
    cfg.limits.max_inflight_out = 1;
    let mut h = H::new(cfg);
    h.connect3(1, "slow", false);
    h.sub3(1, "t", QoS::AtLeastOnce);
    h.connect3(2, "p", true);
    // One inflight, then the queue fills: congested at 6 queued (3/4 of 8).
    for i in 1..=6 {
        h.pub3(2, "t", QoS::AtLeastOnce, i, "m");
    }
    assert!(!h.b.congested());
    h.pub3(2, "t", QoS::AtLeastOnce, 7, "m");
    assert!(h.b.congested(), "queue at the high watermark");
    // Acknowledgements drain it: clear at 2 queued (1/4).
    let mut next = 1;
    for _ in 0..3 {
        let a = h.send(
            1,
            v3::Packet::PublishAck {
                packet_id: pid(next),
            },
        );
        next = pubs(&a, 1)[0].packet_id.unwrap().get();
    }
    assert!(h.b.congested());
    let a = h.send(
        1,
        v3::Packet::PublishAck {
            packet_id: pid(next),
        },
    );
    assert_eq!(pubs(&a, 1).len(), 1);
    assert!(!h.b.congested(), "drained to the low watermark");
    // An offline session never counts.
    for i in 8..=14 {
        h.pub3(2, "t", QoS::AtLeastOnce, i, "m");
    }
    assert!(h.b.congested());
    h.drop_conn(1);
    assert!(!h.b.congested());
    h.b.check_invariants().unwrap();
}

#[test]
fn receive_maximum_is_never_enforced_on_mqtt_311_clients() {
    let mut config = Config::with_durable(["rampart/#"]).unwrap();
    config.limits.receive_maximum = 2;
    let mut h = H::new(config);
    h.connect3(1, "dev", true);
    // Durable publishes wait for their commit; a 3.1.1 client was never told a limit.
    for i in 1..=5 {
        let a = h.pub3(1, "rampart/x", QoS::AtLeastOnce, i, "m");
        assert_eq!(closed(&a, 1), None);
    }
    assert_eq!(h.b.held_count(), 5);
}
