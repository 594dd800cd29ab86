//! Security markings: a marked message reaches only sessions whose clearance permits it,
//! on every way a message reaches a session (live, shared groups, retained on SUBSCRIBE,
//! queued and inflight across a reconnect, restored from a snapshot, bridges).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use rampart_mqtt_broker::codec::types::QoS;
use rampart_mqtt_broker::codec::v3;
use rampart_mqtt_broker::{Action, Authorizer, Broker, Clearance, Config, Marking, Packet};

/// Clearances by client id, changeable between connections; absent ids are unrestricted.
#[derive(Clone, Default)]
struct Clearances(Arc<Mutex<HashMap<String, Clearance>>>);

impl Clearances {
    fn set(&self, client: &str, rank: u32, groups: &[&str]) {
        self.0.lock().unwrap().insert(
            client.into(),
            Clearance {
                rank,
                groups: groups.iter().map(|g| Box::from(*g)).collect(),
            },
        );
    }
}

impl Authorizer for Clearances {
    fn clearance(&mut self, client_id: &str) -> Option<Clearance> {
        self.0.lock().unwrap().get(client_id).cloned()
    }
}

const UNCLASSIFIED: u32 = 0;
const CONFIDENTIAL: u32 = 2;
const SECRET: u32 = 3;

fn marking(rank: u32, groups: &[&str]) -> Option<Marking> {
    Some(Marking {
        rank,
        groups: groups.iter().map(|g| Box::from(*g)).collect(),
    })
}

/// A harness whose broker asks `c` for clearances; `secret` holds SECRET+NATO, `conf`
/// CONFIDENTIAL, `open` is unrestricted.
fn harness(config: Config) -> (H, Clearances) {
    let c = Clearances::default();
    c.set("secret", SECRET, &["NATO"]);
    c.set("conf", CONFIDENTIAL, &[]);
    let mut h = H::new(Config::default());
    h.b = Broker::with_authorizer(config, Box::new(c.clone()));
    (h, c)
}

fn inject(
    h: &mut H,
    topic: &str,
    qos: QoS,
    payload: &str,
    retain: bool,
    m: Option<Marking>,
) -> Vec<Action> {
    let a =
        h.b.inject_marked(publish(topic, qos, 0, payload, retain), true, m, h.now);
    h.b.check_invariants().unwrap();
    a
}

#[test]
fn live_delivery_follows_clearance_and_unmarked_traffic_is_untouched() {
    let (mut h, _) = harness(Config::default());
    for (conn, id) in [(1, "secret"), (2, "conf"), (3, "open")] {
        h.connect3(conn, id, true);
        h.sub3(conn, "e/#", QoS::AtMostOnce);
    }
    let a = inject(
        &mut h,
        "e/1",
        QoS::AtMostOnce,
        "s-nato",
        false,
        marking(SECRET, &["NATO"]),
    );
    assert_eq!(payloads(&a, 1), ["s-nato"], "cleared: receives");
    assert!(payloads(&a, 2).is_empty(), "CONFIDENTIAL: withheld");
    assert_eq!(payloads(&a, 3), ["s-nato"], "unrestricted: receives");
    let a = inject(
        &mut h,
        "e/2",
        QoS::AtMostOnce,
        "s-fvey",
        false,
        marking(SECRET, &["FVEY"]),
    );
    assert!(payloads(&a, 1).is_empty(), "right level, no shared group");
    assert!(payloads(&a, 2).is_empty());
    let a = inject(
        &mut h,
        "e/3",
        QoS::AtLeastOnce,
        "u",
        false,
        marking(UNCLASSIFIED, &[]),
    );
    assert_eq!(
        (payloads(&a, 1), payloads(&a, 2), payloads(&a, 3)),
        (
            vec!["u".to_string()],
            vec!["u".to_string()],
            vec!["u".to_string()]
        )
    );
    let a = inject(
        &mut h,
        "e/4",
        QoS::AtMostOnce,
        "bogus",
        false,
        marking(u32::MAX, &[]),
    );
    assert!(
        payloads(&a, 1).is_empty() && payloads(&a, 2).is_empty(),
        "unknown level: nobody restricted"
    );
    assert_eq!(h.b.metrics().label_withheld, 5);
    // Client traffic carries no marking and reaches everyone.
    h.connect3(9, "pub", true);
    let a = h.pub3(9, "e/app", QoS::AtMostOnce, 0, "app");
    assert_eq!(payloads(&a, 2), ["app"]);
    assert_eq!(h.b.metrics().label_withheld, 5);
}

#[test]
fn retained_messages_on_subscribe_follow_clearance() {
    let (mut h, _) = harness(Config::default());
    inject(
        &mut h,
        "e/s",
        QoS::AtMostOnce,
        "s-nato",
        true,
        marking(SECRET, &["NATO"]),
    );
    inject(
        &mut h,
        "e/u",
        QoS::AtMostOnce,
        "u",
        true,
        marking(UNCLASSIFIED, &[]),
    );
    h.connect3(1, "secret", true);
    h.connect3(2, "conf", true);
    let mut got = payloads(&h.sub3(1, "e/#", QoS::AtMostOnce), 1);
    got.sort();
    assert_eq!(got, ["s-nato", "u"]);
    assert_eq!(payloads(&h.sub3(2, "e/#", QoS::AtMostOnce), 2), ["u"]);
    assert_eq!(h.b.metrics().label_withheld, 1);
    // Replacing the retained message replaces its marking too.
    inject(
        &mut h,
        "e/s",
        QoS::AtMostOnce,
        "now-u",
        true,
        marking(UNCLASSIFIED, &[]),
    );
    h.connect3(3, "conf", true);
    let mut got = payloads(&h.sub3(3, "e/#", QoS::AtMostOnce), 3);
    got.sort();
    assert_eq!(got, ["now-u", "u"]);
    // Cleared silently: no message to anyone, and late subscribers no longer get it.
    let a = h.b.clear_retained("e/s");
    assert!(a);
    assert!(!h.b.clear_retained("e/s"));
    h.connect3(4, "secret", true);
    assert_eq!(payloads(&h.sub3(4, "e/#", QoS::AtMostOnce), 4), ["u"]);
}

#[test]
fn persistent_queue_is_checked_again_under_the_clearance_of_the_reconnect() {
    let (mut h, c) = harness(Config::default());
    h.connect3(1, "secret", false);
    h.sub3(1, "alerts", QoS::AtLeastOnce);
    // One inflight (never acked), then offline: two more queued.
    let a = inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "a1",
        false,
        marking(SECRET, &["NATO"]),
    );
    assert_eq!(payloads(&a, 1), ["a1"]);
    h.drop_conn(1);
    inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "a2",
        false,
        marking(SECRET, &["NATO"]),
    );
    inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "a3",
        false,
        marking(UNCLASSIFIED, &[]),
    );
    assert_eq!(h.b.queued("secret"), Some(2));
    // Positive: the same clearance gets everything back.
    let a = h.send(2, connect3("secret", false, 0, None));
    assert_eq!(payloads(&a, 2), ["a1", "a2", "a3"]);
    h.drop_conn(2);
    // Negative: the session id comes back with a lower clearance (another identity, or a
    // downgraded one): neither the inflight nor the queued SECRET message is sent.
    inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "a4",
        false,
        marking(SECRET, &["NATO"]),
    );
    inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "a5",
        false,
        marking(UNCLASSIFIED, &[]),
    );
    c.set("secret", CONFIDENTIAL, &[]);
    let before = h.b.metrics().label_withheld;
    let a = h.send(3, connect3("secret", false, 0, None));
    assert_eq!(
        payloads(&a, 3),
        ["a3", "a5"],
        "a3 still inflight, a5 queued; SECRET ones withheld"
    );
    assert_eq!(
        h.b.metrics().label_withheld - before,
        3,
        "a1, a2 inflight and a4 queued"
    );
}

#[test]
fn offline_session_queue_takes_only_what_its_clearance_permits() {
    let (mut h, _) = harness(Config::default());
    h.connect3(1, "conf", false);
    h.sub3(1, "alerts", QoS::AtLeastOnce);
    h.drop_conn(1);
    inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "s",
        false,
        marking(SECRET, &[]),
    );
    inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "c",
        false,
        marking(CONFIDENTIAL, &[]),
    );
    assert_eq!(
        h.b.queued("conf"),
        Some(1),
        "withheld at routing, not queued"
    );
    let a = h.send(2, connect3("conf", false, 0, None));
    assert_eq!(payloads(&a, 2), ["c"]);
}

#[test]
fn shared_groups_pick_a_cleared_member_or_nobody() {
    let (mut h, _) = harness(Config::default());
    h.connect3(1, "conf", true);
    h.sub3(1, "$share/g/e/#", QoS::AtMostOnce);
    h.connect3(2, "secret", true);
    h.sub3(2, "$share/g/e/#", QoS::AtMostOnce);
    for i in 0..4 {
        let a = inject(
            &mut h,
            "e/x",
            QoS::AtMostOnce,
            &format!("s{i}"),
            false,
            marking(SECRET, &["NATO"]),
        );
        assert!(payloads(&a, 1).is_empty(), "never the uncleared member");
        assert_eq!(payloads(&a, 2), [format!("s{i}")], "always the cleared one");
    }
    // Unmarked messages still alternate.
    let mut who = Vec::new();
    for _ in 0..2 {
        let a = inject(&mut h, "e/x", QoS::AtMostOnce, "u", false, None);
        who.push(if payloads(&a, 1).is_empty() { 2 } else { 1 });
    }
    who.sort_unstable();
    assert_eq!(who, [1, 2]);
    // No member is cleared: the group gets nothing.
    let a = inject(&mut h, "e/x", QoS::AtMostOnce, "ts", false, marking(4, &[]));
    assert!(payloads(&a, 1).is_empty() && payloads(&a, 2).is_empty());
}

#[test]
fn snapshot_keeps_markings_and_clearances() {
    let (mut h, c) = harness(Config::default());
    h.connect3(1, "conf", false);
    h.sub3(1, "alerts", QoS::AtLeastOnce);
    h.drop_conn(1);
    inject(
        &mut h,
        "alerts",
        QoS::AtLeastOnce,
        "c",
        false,
        marking(CONFIDENTIAL, &[]),
    );
    inject(
        &mut h,
        "e/s",
        QoS::AtMostOnce,
        "s",
        true,
        marking(SECRET, &["NATO"]),
    );
    inject(&mut h, "e/plain", QoS::AtMostOnce, "p", true, None);
    let snap = h.b.snapshot(h.now);
    assert_eq!(
        snap.sessions[0].clearance.as_ref().unwrap().rank,
        CONFIDENTIAL
    );
    assert_eq!(
        snap.sessions[0].pending[0].marking,
        marking(CONFIDENTIAL, &[])
    );
    assert_eq!(snap.retained_markings.len(), 1);
    let text = serde_json::to_string(&snap).unwrap();
    let back: rampart_mqtt_broker::Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(back, snap);

    // Restored: the retained SECRET message still reaches only the cleared.
    let mut h2 = H::new(Config::default());
    h2.b = Broker::with_authorizer(Config::default(), Box::new(c.clone()));
    h2.b.restore(back.clone(), h2.now);
    h2.connect3(2, "conf", true);
    assert_eq!(payloads(&h2.sub3(2, "e/#", QoS::AtMostOnce), 2), ["p"]);
    h2.connect3(3, "secret", true);
    let mut got = payloads(&h2.sub3(3, "e/#", QoS::AtMostOnce), 3);
    got.sort();
    assert_eq!(got, ["p", "s"]);

    // A changed level list: every marked message is dropped, unmarked ones stay.
    let mut changed = back;
    assert_eq!(changed.drop_marked(), 2);
    assert_eq!(changed.retained.len(), 1);
    assert!(changed.sessions[0].pending.is_empty());
}

#[test]
fn observed_messages_carry_their_marking_for_bridges() {
    let mut cfg = Config::default();
    cfg.observe.push("e/#".into());
    let (mut h, _) = harness(cfg);
    let a = inject(
        &mut h,
        "e/1",
        QoS::AtMostOnce,
        "x",
        false,
        marking(SECRET, &["NATO"]),
    );
    let seen: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Observed { marking, .. } => Some(marking.as_deref().cloned()),
            _ => None,
        })
        .collect();
    assert_eq!(seen, [marking(SECRET, &["NATO"])]);
    let _ = v3::Packet::PingRequest;
    let _: Option<Packet> = None;
}
