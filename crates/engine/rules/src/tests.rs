//! Scenario tests of the evaluator and the alert store together: every trigger, hysteresis,
//! emergencies, SOS, duplicate suppression, and a restart in the middle of a dwell.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_model::{AttrValue, Attributes, Label, Text, Timestamp};

use crate::alert::{AlertEvent, AlertKind, AlertLimits, AlertState, AlertStore};
use crate::def::*;
use crate::eval::{EvalConfig, Evaluator, Observation};

struct H {
    eval: Evaluator,
    alerts: AlertStore,
    events: Vec<AlertEvent>,
}

fn square(lon0: f64, lat0: f64, size: f64) -> Vec<[f64; 2]> {
    vec![
        [lon0, lat0],
        [lon0 + size, lat0],
        [lon0 + size, lat0 + size],
        [lon0, lat0 + size],
        [lon0, lat0],
    ]
}

fn fence(id: &str, shape: Shape, triggers: Triggers) -> Geofence {
    Geofence {
        id: id.into(),
        name: format!("zone {id}"),
        shape,
        filter: Filter::default(),
        triggers,
        priority: Priority::High,
        enabled: true,
    }
}

fn rule(id: &str, kind: RuleKind) -> Rule {
    Rule {
        id: id.into(),
        name: String::new(),
        rule: kind,
        priority: Priority::Normal,
        enabled: true,
    }
}

struct Obs {
    uid: String,
    cot_type: String,
    lat: f64,
    lon: f64,
    attrs: Attributes,
    label: Label,
}

fn at(uid: &str, lat: f64, lon: f64) -> Obs {
    Obs {
        uid: uid.into(),
        cot_type: "a-f-G-U-C".into(),
        lat,
        lon,
        attrs: Attributes::new(),
        label: Label::unclassified(),
    }
}

impl Obs {
    fn labelled(mut self, classification: &str, rel: &[&str]) -> Obs {
        self.label = Label {
            classification: classification.into(),
            releasability: rel.iter().map(|g| Text::from(*g)).collect(),
        };
        self
    }
    fn typed(mut self, t: &str) -> Obs {
        self.cot_type = t.into();
        self
    }
    fn num(mut self, k: &str, v: f64) -> Obs {
        self.attrs.insert(Text::from(k), AttrValue::Num(v));
        self
    }
    fn text(mut self, k: &str, v: &str) -> Obs {
        self.attrs
            .insert(Text::from(k), AttrValue::Text(Text::from(v)));
        self
    }
}

impl H {
    fn new(fences: Vec<Geofence>, rules: Vec<Rule>) -> H {
        for f in &fences {
            f.validate(&DefLimits::default()).unwrap();
        }
        for r in &rules {
            r.validate(&DefLimits::default()).unwrap();
        }
        let mut eval = Evaluator::new(EvalConfig::default());
        let mut t = Vec::new();
        eval.set_definitions(&fences, &rules, &mut t);
        H {
            eval,
            alerts: AlertStore::new(AlertLimits::default()),
            events: Vec::new(),
        }
    }

    /// Observes at `now` seconds; returns the events it produced.
    fn see(&mut self, o: &Obs, now: i64) -> Vec<AlertEvent> {
        let mut t = Vec::new();
        let obs = Observation {
            uid: &o.uid,
            cot_type: &o.cot_type,
            callsign: None,
            lat: o.lat,
            lon: o.lon,
            speed: None,
            course: None,
            hae: None,
            attributes: Some(&o.attrs),
            label: &o.label,
        };
        self.eval.observe(&obs, Timestamp(now * 1000), &mut t);
        let mut out = Vec::new();
        self.alerts.apply(t, Timestamp(now * 1000), &mut out);
        self.events.extend(out.iter().cloned());
        out
    }

    fn tick(&mut self, now: i64) -> Vec<AlertEvent> {
        let mut t = Vec::new();
        self.eval.tick(Timestamp(now * 1000), &mut t);
        let mut out = Vec::new();
        self.alerts.apply(t, Timestamp(now * 1000), &mut out);
        out
    }
}

fn kinds(evs: &[AlertEvent]) -> Vec<(AlertState, AlertKind)> {
    evs.iter().map(|e| (e.event, e.alert.kind)).collect()
}

#[test]
fn enter_and_exit_polygon_with_hole() {
    let shape = Shape::Polygon {
        exterior: square(0.0, 0.0, 1.0),
        holes: vec![square(0.4, 0.4, 0.2)],
    };
    let mut h = H::new(
        vec![fence(
            "z",
            shape,
            Triggers {
                enter: true,
                exit: true,
                ..Default::default()
            },
        )],
        vec![],
    );
    assert!(h.see(&at("u1", 2.0, 2.0), 0).is_empty());
    let ev = h.see(&at("u1", 0.1, 0.1), 1);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Enter)]);
    assert_eq!(ev[0].alert.entities, vec!["u1".to_string()]);
    assert!(
        ev[0].alert.message.contains("entered zone z"),
        "{}",
        ev[0].alert.message
    );
    assert!(
        h.see(&at("u1", 0.2, 0.2), 2).is_empty(),
        "no change, no event"
    );
    // Into the hole: that is outside.
    let ev = h.see(&at("u1", 0.5, 0.5), 3);
    assert_eq!(
        kinds(&ev),
        vec![
            (AlertState::Cleared, AlertKind::Enter),
            (AlertState::Raised, AlertKind::Exit)
        ]
    );
    let ev = h.see(&at("u1", 0.9, 0.9), 4);
    assert_eq!(
        kinds(&ev),
        vec![
            (AlertState::Cleared, AlertKind::Exit),
            (AlertState::Raised, AlertKind::Enter)
        ]
    );
}

#[test]
fn circle_corridor_and_filters() {
    let mut circle = fence(
        "c",
        Shape::Circle {
            center: [10.0, 50.0],
            radius_m: 1000.0,
        },
        Triggers {
            enter: true,
            ..Default::default()
        },
    );
    circle.filter.types = vec!["a-h".into()];
    let corridor = fence(
        "r",
        Shape::Corridor {
            line: vec![[0.0, 0.0], [1.0, 0.0]],
            width_m: 2000.0,
        },
        Triggers {
            enter: true,
            ..Default::default()
        },
    );
    let mut h = H::new(vec![circle, corridor], vec![]);
    // 0.005° north of the centre is ~556 m: inside, but friendly is filtered out.
    assert!(h.see(&at("f1", 50.005, 10.0), 0).is_empty());
    let ev = h.see(&at("h1", 50.005, 10.0).typed("a-h-G"), 0);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Enter)]);
    // 0.0095° (~1056 m) away is outside a 1 km circle.
    assert!(h.see(&at("h2", 50.0095, 10.0).typed("a-h-G"), 0).is_empty());
    // Corridor: half-width 1 km. 0.008° (~890 m) off the route is in, 0.01° (~1.1 km) is out.
    assert_eq!(h.see(&at("v1", 0.008, 0.5), 0).len(), 1);
    assert!(h.see(&at("v2", 0.01, 0.5), 0).is_empty());
    // Past the end of the route counts by distance to the end point.
    assert!(h.see(&at("v3", 0.0, 1.02), 0).is_empty());
}

#[test]
fn dwell_fires_once_after_t_and_clears_on_exit() {
    let mut h = H::new(
        vec![fence(
            "d",
            Shape::Polygon {
                exterior: square(0.0, 0.0, 1.0),
                holes: vec![],
            },
            Triggers {
                dwell_secs: Some(60.0),
                ..Default::default()
            },
        )],
        vec![],
    );
    assert!(h.see(&at("u", 0.5, 0.5), 100).is_empty());
    assert!(h.tick(159).is_empty());
    let ev = h.tick(160);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Dwell)]);
    assert!(h.tick(200).is_empty(), "fires once");
    let ev = h.see(&at("u", 5.0, 5.0), 201);
    assert_eq!(kinds(&ev), vec![(AlertState::Cleared, AlertKind::Dwell)]);
    // Re-entering restarts the clock.
    h.see(&at("u", 0.5, 0.5), 300);
    assert!(h.tick(359).is_empty());
    assert_eq!(h.tick(360).len(), 1);
}

#[test]
fn restart_in_the_middle_of_a_dwell_keeps_the_entry_time() {
    let fences = vec![fence(
        "d",
        Shape::Polygon {
            exterior: square(0.0, 0.0, 1.0),
            holes: vec![],
        },
        Triggers {
            enter: true,
            dwell_secs: Some(60.0),
            ..Default::default()
        },
    )];
    let mut h = H::new(fences.clone(), vec![]);
    assert_eq!(h.see(&at("u", 0.5, 0.5), 100).len(), 1);
    h.tick(130);
    let snap = h.eval.snapshot();
    let alerts = h.alerts.all();
    // "Restart": new evaluator and store from the persisted pieces.
    let mut eval = Evaluator::new(EvalConfig::default());
    let mut t = Vec::new();
    eval.set_definitions(&fences, &[], &mut t);
    eval.restore(&snap);
    let mut h2 = H {
        eval,
        alerts: AlertStore::restore(AlertLimits::default(), alerts),
        events: Vec::new(),
    };
    // The entity reports again from inside: no second enter alert.
    assert!(h2.see(&at("u", 0.6, 0.6), 140).is_empty());
    assert!(h2.tick(159).is_empty());
    let ev = h2.tick(160);
    assert_eq!(
        kinds(&ev),
        vec![(AlertState::Raised, AlertKind::Dwell)],
        "dwell counted from the first entry"
    );
    // Even without a new report after the restart, the tick fires.
    let mut eval = Evaluator::new(EvalConfig::default());
    eval.set_definitions(&fences, &[], &mut t);
    eval.restore(&snap);
    let mut out = Vec::new();
    eval.tick(Timestamp(161_000), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn count_inside_above_n() {
    let mut h = H::new(
        vec![fence(
            "n",
            Shape::Polygon {
                exterior: square(0.0, 0.0, 1.0),
                holes: vec![],
            },
            Triggers {
                count_above: Some(2),
                ..Default::default()
            },
        )],
        vec![],
    );
    assert!(h.see(&at("a", 0.5, 0.5), 0).is_empty());
    assert!(h.see(&at("b", 0.5, 0.5), 0).is_empty());
    let ev = h.see(&at("c", 0.5, 0.5), 0);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Count)]);
    assert!(
        ev[0].alert.message.starts_with("3 entities"),
        "{}",
        ev[0].alert.message
    );
    assert!(
        h.see(&at("d", 0.5, 0.5), 0).is_empty(),
        "still above, suppressed"
    );
    assert!(
        h.see(&at("d", 5.0, 5.0), 0).is_empty(),
        "3 is still above 2"
    );
    let ev = h.see(&at("c", 5.0, 5.0), 0);
    assert_eq!(kinds(&ev), vec![(AlertState::Cleared, AlertKind::Count)]);
}

#[test]
fn proximity_raises_both_ways_and_clears_with_hysteresis() {
    let r = rule(
        "p",
        RuleKind::Proximity {
            a: Filter {
                types: vec!["a-h".into()],
                ..Default::default()
            },
            b: Filter {
                types: vec!["a-f".into()],
                ..Default::default()
            },
            distance_m: 2000.0,
        },
    );
    let mut h = H::new(vec![], vec![r]);
    assert!(h.see(&at("f1", 10.0, 10.0), 0).is_empty());
    // Hostile 3.3 km away: nothing.
    assert!(h.see(&at("h1", 10.03, 10.0).typed("a-h-G"), 1).is_empty());
    // Hostile moves to ~1.1 km.
    let ev = h.see(&at("h1", 10.01, 10.0).typed("a-h-G"), 2);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Proximity)]);
    assert_eq!(
        ev[0].alert.entities,
        vec!["h1".to_string(), "f1".to_string()]
    );
    // Friendly moves but stays close: nothing new.
    assert!(h.see(&at("f1", 10.001, 10.0), 3).is_empty());
    // 2.05 km apart is within the 5 % clear hysteresis: still raised.
    assert!(
        h.see(&at("f1", 10.01 - 2050.0 / 111_195.0, 10.0), 4)
            .is_empty()
    );
    // Friendly runs away: cleared (B moving clears the pair too).
    let ev = h.see(&at("f1", 9.9, 10.0), 5);
    assert_eq!(
        kinds(&ev),
        vec![(AlertState::Cleared, AlertKind::Proximity)]
    );
    // A friendly that comes to a stationary hostile raises (B side search).
    let ev = h.see(&at("f2", 10.011, 10.001), 6);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Proximity)]);
    // Two friendlies close together: no alert (neither is `a`).
    assert!(h.see(&at("f3", 10.0111, 10.001), 7).len() <= 1);
}

#[test]
fn lost_comms_raises_after_silence_and_clears_on_report() {
    let r = rule(
        "lc",
        RuleKind::LostComms {
            filter: Filter {
                types: vec!["a-f".into()],
                ..Default::default()
            },
            after_secs: 30.0,
        },
    );
    let mut h = H::new(vec![], vec![r]);
    h.see(&at("u", 1.0, 1.0), 0);
    h.see(&at("x", 1.0, 1.0).typed("a-h-G"), 0);
    assert!(h.tick(30).is_empty(), "not longer than 30 s yet");
    let ev = h.tick(31);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::LostComms)]);
    assert_eq!(
        ev[0].alert.entities,
        vec!["u".to_string()],
        "hostile not watched"
    );
    assert!(h.tick(60).is_empty(), "raised once");
    let ev = h.see(&at("u", 1.0, 1.0), 61);
    assert_eq!(
        kinds(&ev),
        vec![(AlertState::Cleared, AlertKind::LostComms)]
    );
    assert!(h.tick(80).is_empty());
    assert_eq!(h.tick(92).len(), 1, "silent again");
}

#[test]
fn threshold_hysteresis_and_minimum_duration() {
    let r = rule(
        "bat",
        RuleKind::Threshold {
            filter: Filter::default(),
            attribute: "battery".into(),
            raise: Cmp::Below(15.0),
            clear: Some(Cmp::Above(18.0)),
            min_duration_secs: 10.0,
        },
    );
    let mut h = H::new(vec![], vec![r]);
    assert!(h.see(&at("u", 0.0, 0.0).num("battery", 50.0), 0).is_empty());
    // Dips below for less than the minimum duration: nothing.
    assert!(h.see(&at("u", 0.0, 0.0).num("battery", 14.0), 1).is_empty());
    assert!(h.see(&at("u", 0.0, 0.0).num("battery", 16.0), 5).is_empty());
    assert!(h.tick(20).is_empty());
    // Below for 10 s: raised by the tick even without a new report.
    assert!(
        h.see(&at("u", 0.0, 0.0).num("battery", 14.0), 30)
            .is_empty()
    );
    assert!(h.tick(39).is_empty());
    let ev = h.tick(40);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Threshold)]);
    // Noisy values between 15 and 18 do not clear.
    for (t, v) in [(41, 16.0), (42, 17.9), (43, 14.5), (44, 18.0)] {
        assert!(
            h.see(&at("u", 0.0, 0.0).num("battery", v), t).is_empty(),
            "{v} flapped"
        );
    }
    let ev = h.see(&at("u", 0.0, 0.0).num("battery", 18.5), 45);
    assert_eq!(
        kinds(&ev),
        vec![(AlertState::Cleared, AlertKind::Threshold)]
    );
    // Above-type threshold with no minimum duration, on a text value.
    let r = rule(
        "hot",
        RuleKind::Threshold {
            filter: Filter::default(),
            attribute: "engine_temp".into(),
            raise: Cmp::Above(110.0),
            clear: Some(Cmp::Below(100.0)),
            min_duration_secs: 0.0,
        },
    );
    let mut h = H::new(vec![], vec![r]);
    let ev = h.see(&at("t", 0.0, 0.0).text("engine_temp", "115"), 0);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Threshold)]);
    assert!(
        ev[0].alert.message.contains("above 110"),
        "{}",
        ev[0].alert.message
    );
}

#[test]
fn cot_emergencies_raise_at_once_and_cancel_clears() {
    let mut h = H::new(vec![], vec![]);
    for (t, label) in [
        ("b-a-o-tbl", "911"),
        ("b-a-o-pan", "ring the bell"),
        ("b-a-o-opn", "troops in contact"),
    ] {
        let sender = format!("ANDROID-{label}");
        let ev = h.see(
            &at(&format!("{sender}-9-1-1"), 1.0, 2.0)
                .typed(t)
                .text("link.parent_uid", &sender)
                .text("link.parent_callsign", "VIPER"),
            0,
        );
        assert_eq!(
            kinds(&ev),
            vec![(AlertState::Raised, AlertKind::Emergency)],
            "{t}"
        );
        assert_eq!(ev[0].alert.priority, Priority::Emergency);
        assert_eq!(ev[0].alert.entities[0], sender);
        assert!(
            ev[0].alert.message.contains("VIPER"),
            "{}",
            ev[0].alert.message
        );
        // ATAK repeats the event: suppressed.
        assert!(
            h.see(
                &at(&format!("{sender}-9-1-1"), 1.0, 2.0)
                    .typed(t)
                    .text("link.parent_uid", &sender),
                1
            )
            .is_empty()
        );
        let ev = h.see(
            &at(&format!("{sender}-9-1-1"), 1.0, 2.0)
                .typed("b-a-o-can")
                .text("link.parent_uid", &sender)
                .text("emergency.cancel", "true"),
            2,
        );
        assert_eq!(
            kinds(&ev),
            vec![(AlertState::Cleared, AlertKind::Emergency)],
            "{t} cancel"
        );
    }
    // A cancel flag on an emergency type also clears.
    h.see(&at("E1", 0.0, 0.0).typed("b-a-o-tbl"), 3);
    let ev = h.see(
        &at("E1", 0.0, 0.0)
            .typed("b-a-o-tbl")
            .text("emergency.cancel", "true"),
        4,
    );
    assert_eq!(
        kinds(&ev),
        vec![(AlertState::Cleared, AlertKind::Emergency)]
    );
}

#[test]
fn sos_flag_number_or_text() {
    let mut h = H::new(vec![], vec![]);
    assert!(h.see(&at("u", 0.0, 0.0).num("sos", 0.0), 0).is_empty());
    let ev = h.see(&at("u", 0.0, 0.0).num("sos", 1.0), 1);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Sos)]);
    assert_eq!(ev[0].alert.priority, Priority::Emergency);
    assert!(
        h.see(&at("u", 0.0, 0.0).num("sos", 1.0), 2).is_empty(),
        "dedup"
    );
    let ev = h.see(&at("u", 0.0, 0.0).text("sos", "false"), 3);
    assert_eq!(kinds(&ev), vec![(AlertState::Cleared, AlertKind::Sos)]);
    let ev = h.see(&at("v", 0.0, 0.0).text("sos", "true"), 4);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Sos)]);
    assert!(h.see(&at("w", 0.0, 0.0).text("sos", "nope"), 5).is_empty());
}

#[test]
fn duplicate_raise_after_ack_is_suppressed_and_deleting_a_fence_clears() {
    let f = fence(
        "z",
        Shape::Polygon {
            exterior: square(0.0, 0.0, 1.0),
            holes: vec![],
        },
        Triggers {
            enter: true,
            ..Default::default()
        },
    );
    let mut h = H::new(vec![f], vec![]);
    let ev = h.see(&at("u", 0.5, 0.5), 0);
    let id = ev[0].alert.id;
    h.alerts.ack(id, "officer", Timestamp(1000)).unwrap();
    // State lost (e.g. state file missing after a crash): the evaluator raises again, the
    // store suppresses it because the alert is still active.
    let mut t = Vec::new();
    let mut fresh = Evaluator::new(EvalConfig::default());
    fresh.set_definitions(
        &[fence(
            "z",
            Shape::Polygon {
                exterior: square(0.0, 0.0, 1.0),
                holes: vec![],
            },
            Triggers {
                enter: true,
                ..Default::default()
            },
        )],
        &[],
        &mut t,
    );
    h.eval = fresh;
    assert!(h.see(&at("u", 0.5, 0.5), 2).is_empty());
    assert_eq!(h.alerts.suppressed, 1);
    // Deleting the geofence clears its alerts.
    let mut t = Vec::new();
    h.eval.set_definitions(&[], &[], &mut t);
    let mut out = Vec::new();
    h.alerts.apply(t, Timestamp(3000), &mut out);
    assert_eq!(kinds(&out), vec![(AlertState::Cleared, AlertKind::Enter)]);
    assert_eq!(out[0].alert.acked_by.as_deref(), Some("officer"));
}

#[test]
fn many_fences_use_the_grid_and_large_fences() {
    // 400 small fences on a grid plus one huge fence checked for every report.
    let mut fences = Vec::new();
    for i in 0..20 {
        for j in 0..20 {
            fences.push(fence(
                &format!("f{i}-{j}"),
                Shape::Polygon {
                    exterior: square(i as f64 * 0.5, j as f64 * 0.5, 0.2),
                    holes: vec![],
                },
                Triggers {
                    enter: true,
                    ..Default::default()
                },
            ));
        }
    }
    fences.push(fence(
        "world",
        Shape::Polygon {
            exterior: vec![
                [-170.0, -80.0],
                [170.0, -80.0],
                [170.0, 80.0],
                [-170.0, 80.0],
            ],
            holes: vec![],
        },
        Triggers {
            enter: true,
            ..Default::default()
        },
    ));
    let mut h = H::new(fences, vec![]);
    let ev = h.see(&at("u", 3.1, 2.6), 0); // lat 3.1, lon 2.6 → fence f5-6
    let mut ids: Vec<&str> = ev.iter().map(|e| e.alert.rule_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec!["f5-6", "world"]);
    let ev = h.see(&at("u", 3.3, 2.6), 1); // between fences
    assert_eq!(kinds(&ev), vec![(AlertState::Cleared, AlertKind::Enter)]);
    assert_eq!(ev[0].alert.rule_id, "f5-6");
}

#[test]
fn service_persists_definitions_alerts_and_dwell_state() {
    use crate::service::{RulesConfig, RulesService};
    let dir = tempfile::tempdir().unwrap();
    let metrics = rampart_engine::Metrics::new();
    let cfg = RulesConfig {
        state_save_interval_ms: 20,
        ..Default::default()
    };
    let svc = RulesService::open(cfg.clone(), Some(dir.path().to_path_buf()), &metrics).unwrap();
    let mut rx = svc.subscribe();
    let g: Geofence = serde_json::from_str(
        r#"{"name":"Depot","shape":{"type":"circle","center":[10,50],"radius_m":500},"triggers":{"enter":true,"dwell_secs":30}}"#,
    )
    .unwrap();
    let created = svc.put_geofences(vec![g], false).unwrap();
    assert_eq!(created[0].id, "gf-1");
    let bad: Geofence = serde_json::from_str(
        r#"{"shape":{"type":"circle","center":[10,50],"radius_m":-1},"triggers":{"enter":true}}"#,
    )
    .unwrap();
    assert!(matches!(
        svc.put_geofences(vec![bad], false),
        Err(crate::service::RulesError::Invalid(_))
    ));
    let mut e = rampart_model::Entity {
        uid: "u1".into(),
        cot_type: "a-f-G".into(),
        callsign: None,
        lat: 50.0,
        lon: 10.0,
        hae: None,
        ce: None,
        le: None,
        course: None,
        speed: None,
        how: "m-g".into(),
        time: Timestamp(0),
        start: Timestamp(0),
        stale: Timestamp(0),
        provenance: std::sync::Arc::new(rampart_model::Provenance::new("t", "t")),
        attributes: None,
        label: std::sync::Arc::new(rampart_model::Label::unclassified()),
        state: rampart_model::EntityState::Live,
        received: Timestamp(0),
    };
    svc.observe(&[&e], Timestamp(1_000));
    let ev = rx.try_recv().unwrap();
    assert_eq!(ev.alert.kind, AlertKind::Enter);
    let acked = svc.ack(ev.alert.id, "alice").unwrap();
    assert_eq!(acked.state, AlertState::Acknowledged);
    svc.save_state().unwrap();
    // Let the log thread write the events.
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(rx);
    drop(svc);
    let svc = RulesService::open(cfg, Some(dir.path().to_path_buf()), &metrics).unwrap();
    assert_eq!(svc.geofences().len(), 1);
    let alerts = svc.alerts(&crate::alert::AlertQuery {
        limit: 10,
        ..Default::default()
    });
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].acked_by.as_deref(), Some("alice"));
    let mut rx = svc.subscribe();
    e.lat = 50.001;
    svc.observe(&[&e], Timestamp(20_000));
    assert!(rx.try_recv().is_err(), "no second enter after restart");
    svc.tick(Timestamp(31_000));
    let ev = rx.try_recv().unwrap();
    assert_eq!(
        ev.alert.kind,
        AlertKind::Dwell,
        "dwell counted from before the restart"
    );
}

#[tokio::test]
async fn first_rules_cover_entities_already_in_the_picture() {
    use crate::service::{RulesConfig, RulesService};
    use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig::new(dir.path())).unwrap();
    let store: std::sync::Arc<dyn HistoryStore> = log.clone();
    let metrics = std::sync::Arc::new(rampart_engine::Metrics::new());
    let engine = rampart_engine::Engine::open(Default::default(), store, metrics.clone()).unwrap();
    let svc = RulesService::open(RulesConfig::default(), None, &metrics).unwrap();
    svc.attach(&engine).unwrap();
    let mut r = rampart_model::Report::new("silent", 1.0, 2.0, Timestamp::now());
    r.cot_type = Some("a-f-G".into());
    engine.ingest(vec![r]).await.unwrap();
    // No rules yet: nothing is tracked. A lost-comms rule created now still watches it.
    let mut rx = svc.subscribe();
    svc.put_rules(
        vec![rule(
            "lc",
            RuleKind::LostComms {
                filter: Filter::default(),
                after_secs: 1.0,
            },
        )],
        false,
    )
    .unwrap();
    svc.tick(Timestamp::now().plus_millis(2_000));
    let ev = rx.try_recv().unwrap();
    assert_eq!(ev.alert.kind, AlertKind::LostComms);
    assert_eq!(ev.alert.entities, vec!["silent".to_string()]);
}

#[test]
fn proximity_in_a_dense_grid_probes_cells() {
    // 400 friendlies 0.05° apart occupy more cells than a 2 km search covers, so the search
    // probes the cells around the point (the sparse case scans occupied cells instead).
    let r = rule(
        "p",
        RuleKind::Proximity {
            a: Filter {
                types: vec!["a-h".into()],
                ..Default::default()
            },
            b: Filter {
                types: vec!["a-f".into()],
                ..Default::default()
            },
            distance_m: 2000.0,
        },
    );
    let mut h = H::new(vec![], vec![r]);
    for i in 0..20 {
        for j in 0..20 {
            let uid = format!("f{i}-{j}");
            assert!(
                h.see(&at(&uid, 10.0 + i as f64 * 0.05, 10.0 + j as f64 * 0.05), 0)
                    .is_empty()
            );
        }
    }
    // 0.01° north of f5-5: 1.1 km from it, more than 4 km from every other friendly.
    let ev = h.see(&at("h", 10.26, 10.25).typed("a-h-G"), 1);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Proximity)]);
    assert_eq!(
        ev[0].alert.entities,
        vec!["h".to_string(), "f5-5".to_string()]
    );
    let ev = h.see(&at("h", 10.275, 10.275).typed("a-h-G"), 2);
    assert_eq!(
        kinds(&ev),
        vec![(AlertState::Cleared, AlertKind::Proximity)],
        "far from all"
    );
}

#[test]
fn proximity_pairs_survive_an_unrelated_definition_change() {
    let p = rule(
        "p",
        RuleKind::Proximity {
            a: Filter {
                types: vec!["a-h".into()],
                ..Default::default()
            },
            b: Filter {
                types: vec!["a-f".into()],
                ..Default::default()
            },
            distance_m: 2000.0,
        },
    );
    let mut h = H::new(vec![], vec![p.clone()]);
    h.see(&at("f", 10.0, 10.0), 0);
    assert_eq!(h.see(&at("h", 10.01, 10.0).typed("a-h-G"), 1).len(), 1);
    // Another rule is added (the proximity rule moves to another index).
    let mut t = Vec::new();
    let other = rule(
        "a-first",
        RuleKind::LostComms {
            filter: Filter::default(),
            after_secs: 600.0,
        },
    );
    h.eval.set_definitions(&[], &[other, p], &mut t);
    assert!(t.is_empty(), "{t:?}");
    // Separation still clears the alert.
    let ev = h.see(&at("h", 11.0, 10.0).typed("a-h-G"), 2);
    assert_eq!(
        kinds(&ev),
        vec![(AlertState::Cleared, AlertKind::Proximity)]
    );
}

// ---- security labels ----

fn label(c: &str, rel: &[&str]) -> Label {
    Label {
        classification: c.into(),
        releasability: rel.iter().map(|g| Text::from(*g)).collect(),
    }
}

#[test]
fn labels_geofence_alerts_carry_the_entity_label() {
    let mut h = H::new(
        vec![fence(
            "z",
            Shape::Polygon {
                exterior: square(0.0, 0.0, 1.0),
                holes: vec![],
            },
            Triggers {
                enter: true,
                exit: true,
                dwell_secs: Some(10.0),
                ..Default::default()
            },
        )],
        vec![],
    );
    let secret = label("SECRET", &["NATO"]);
    let ev = h.see(&at("s", 0.5, 0.5).labelled("SECRET", &["NATO"]), 0);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Enter)]);
    assert_eq!(ev[0].alert.label, secret);
    let ev = h.see(&at("u", 0.5, 0.5), 0);
    assert_eq!(ev[0].alert.label, Label::unclassified());
    let ev = h.tick(10);
    assert_eq!(ev.len(), 2);
    for e in &ev {
        assert_eq!(e.alert.kind, AlertKind::Dwell);
        let want = if e.alert.entities[0] == "s" {
            &secret
        } else {
            &Label::unclassified()
        };
        assert_eq!(&e.alert.label, want, "{:?}", e.alert.entities);
    }
    // The entity's label rose meanwhile (a SECRET report folded in): its exit alert says so.
    let ev = h.see(&at("u", 5.0, 5.0).labelled("RESTRICTED", &[]), 11);
    let exit = ev.iter().find(|e| e.alert.kind == AlertKind::Exit).unwrap();
    assert_eq!(exit.alert.label, label("RESTRICTED", &[]));
}

#[test]
fn labels_count_alert_is_the_join_of_the_entities_inside() {
    let mut h = H::new(
        vec![fence(
            "n",
            Shape::Polygon {
                exterior: square(0.0, 0.0, 1.0),
                holes: vec![],
            },
            Triggers {
                count_above: Some(1),
                ..Default::default()
            },
        )],
        vec![],
    );
    h.eval.set_levels(rampart_labels::Levels::default());
    assert!(h.see(&at("a", 0.5, 0.5), 0).is_empty());
    let ev = h.see(&at("b", 0.5, 0.5).labelled("CONFIDENTIAL", &["FVEY"]), 0);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Count)]);
    assert_eq!(ev[0].alert.label, label("CONFIDENTIAL", &["FVEY"]));
}

#[test]
fn labels_proximity_alert_is_the_join_of_both_entities() {
    let r = rule(
        "p",
        RuleKind::Proximity {
            a: Filter {
                types: vec!["a-h".into()],
                ..Default::default()
            },
            b: Filter {
                types: vec!["a-f".into()],
                ..Default::default()
            },
            distance_m: 2000.0,
        },
    );
    let mut h = H::new(vec![], vec![r]);
    h.see(
        &at("f1", 10.0, 10.0).labelled("RESTRICTED", &["NATO", "FVEY"]),
        0,
    );
    let ev = h.see(
        &at("h1", 10.01, 10.0)
            .typed("a-h-G")
            .labelled("SECRET", &["FVEY"]),
        1,
    );
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Proximity)]);
    // Higher level, common releasability.
    assert_eq!(ev[0].alert.label, label("SECRET", &["FVEY"]));
    // The other way round (the friendly approaches a SECRET//NATO hostile): still the join.
    h.see(
        &at("h2", 20.0, 20.0)
            .typed("a-h-G")
            .labelled("SECRET", &["NATO"]),
        2,
    );
    let ev = h.see(&at("f2", 20.001, 20.0), 3);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Proximity)]);
    assert_eq!(ev[0].alert.label, label("SECRET", &["NATO"]));
}

#[test]
fn labels_lost_comms_after_removal_keeps_the_last_label() {
    let r = rule(
        "lc",
        RuleKind::LostComms {
            filter: Filter::default(),
            after_secs: 30.0,
        },
    );
    let mut h = H::new(vec![], vec![r]);
    h.see(&at("u", 1.0, 1.0).labelled("SECRET", &["NATO"]), 0);
    h.see(&at("v", 1.0, 1.0), 0);
    let mut t = Vec::new();
    h.eval.remove("u", &mut t);
    let ev = h.tick(31);
    assert_eq!(ev.len(), 2);
    for e in &ev {
        assert_eq!(e.alert.kind, AlertKind::LostComms);
        let want = if e.alert.entities[0] == "u" {
            label("SECRET", &["NATO"])
        } else {
            Label::unclassified()
        };
        assert_eq!(e.alert.label, want);
    }
    // And after a restart (state snapshot) too.
    let snap = h.eval.snapshot();
    let mut eval = Evaluator::new(EvalConfig::default());
    let mut t = Vec::new();
    eval.set_definitions(
        &[],
        &[rule(
            "lc2",
            RuleKind::LostComms {
                filter: Filter::default(),
                after_secs: 30.0,
            },
        )],
        &mut t,
    );
    eval.restore(&snap);
    let mut out = Vec::new();
    eval.tick(Timestamp(100_000), &mut out);
    let secret_lost = out.iter().any(|t| {
        matches!(t, crate::alert::Transition::Raise { entities, label: l, .. }
            if entities[0] == "u" && *l == label("SECRET", &["NATO"]))
    });
    assert!(secret_lost, "{out:?}");
}

#[test]
fn labels_threshold_sos_and_emergency_alerts() {
    let r = rule(
        "hot",
        RuleKind::Threshold {
            filter: Filter::default(),
            attribute: "engine_temp".into(),
            raise: Cmp::Above(110.0),
            clear: None,
            min_duration_secs: 0.0,
        },
    );
    let r2 = rule(
        "slow",
        RuleKind::Threshold {
            filter: Filter::default(),
            attribute: "fuel".into(),
            raise: Cmp::Below(10.0),
            clear: None,
            min_duration_secs: 5.0,
        },
    );
    let mut h = H::new(vec![], vec![r, r2]);
    let ev = h.see(
        &at("t", 0.0, 0.0)
            .num("engine_temp", 200.0)
            .num("fuel", 1.0)
            .labelled("CONFIDENTIAL", &[]),
        0,
    );
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Threshold)]);
    assert_eq!(ev[0].alert.label, label("CONFIDENTIAL", &[]));
    let ev = h.tick(5);
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Threshold)]);
    assert_eq!(ev[0].alert.label, label("CONFIDENTIAL", &[]));
    let ev = h.see(
        &at("s", 0.0, 0.0).num("sos", 1.0).labelled("SECRET", &[]),
        6,
    );
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Sos)]);
    assert_eq!(ev[0].alert.label, label("SECRET", &[]));
    let ev = h.see(
        &at("s-9-1-1", 0.0, 0.0)
            .typed("b-a-o-tbl")
            .text("link.parent_uid", "s")
            .labelled("SECRET", &["NATO"]),
        7,
    );
    assert_eq!(kinds(&ev), vec![(AlertState::Raised, AlertKind::Emergency)]);
    assert_eq!(ev[0].alert.label, label("SECRET", &["NATO"]));
}

#[test]
fn labels_old_stored_alerts_read_as_unclassified() {
    let stored = event(1, label("SECRET", &[]));
    let mut json = serde_json::to_value(&stored.alert).unwrap();
    assert_eq!(json["label"]["classification"], "SECRET");
    json.as_object_mut().unwrap().remove("label");
    let a: crate::alert::Alert = serde_json::from_value(json).unwrap();
    assert_eq!(a.label, Label::unclassified());
}

/// A webhook receiver: collects the alert ids it is POSTed, on a free loopback port.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<AlertEvent>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                if let Ok(ev) = serde_json::from_slice::<AlertEvent>(&body) {
                    let _ = tx.send(ev);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

fn event(id: u64, l: Label) -> std::sync::Arc<AlertEvent> {
    std::sync::Arc::new(AlertEvent {
        event: AlertState::Raised,
        alert: crate::alert::Alert {
            id,
            rule_id: "r".into(),
            kind: AlertKind::Enter,
            priority: Priority::High,
            entities: vec![format!("e{id}")],
            message: "m".into(),
            position: None,
            raised_at: Timestamp(0),
            state: AlertState::Raised,
            acked_by: None,
            acked_at: None,
            cleared_at: None,
            key: format!("k{id}"),
            label: l,
        },
    })
}

#[tokio::test]
async fn labels_webhooks_receive_only_what_their_clearance_permits() {
    use crate::webhook::{self, DeadLetters, WebhookConfig, WebhookSettings};
    use prometheus_client::metrics::counter::Counter;
    use rampart_labels::{ClearanceSpec, LabelsConfig, Policy};
    let (low_url, mut low) = receiver().await;
    let (high_url, mut high) = receiver().await;
    let hooks = vec![
        WebhookConfig {
            url: low_url,
            min_priority: Priority::Low,
            events: vec![],
            clearance: ClearanceSpec::default(),
        },
        WebhookConfig {
            url: high_url,
            min_priority: Priority::Low,
            events: vec![],
            clearance: ClearanceSpec {
                level: Some("SECRET".into()),
                groups: vec!["NATO".into()],
            },
        },
    ];
    let policy = std::sync::Arc::new(
        Policy::new(&LabelsConfig::default(), true, Label::unclassified()).unwrap(),
    );
    for h in &hooks {
        h.validate_clearance(&policy).unwrap();
    }
    let (tx, rx) = tokio::sync::broadcast::channel(16);
    let withheld = Counter::default();
    let dead = std::sync::Arc::new(DeadLetters::new(10));
    let _task = webhook::spawn(
        hooks,
        WebhookSettings::default(),
        rx,
        dead.clone(),
        policy.clone(),
        withheld.clone(),
    );
    // The SECRET one first: when the low webhook gets the second, the first was decided.
    tx.send(event(1, label("SECRET", &["NATO"]))).unwrap();
    tx.send(event(2, Label::unclassified())).unwrap();
    let wait = std::time::Duration::from_secs(10);
    let got = tokio::time::timeout(wait, low.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.alert.id, 2,
        "the low webhook gets only the UNCLASSIFIED alert"
    );
    let mut high_ids = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(wait, high.recv())
            .await
            .unwrap()
            .unwrap();
        high_ids.push(ev.alert.id);
    }
    high_ids.sort_unstable();
    assert_eq!(high_ids, vec![1, 2], "the SECRET//NATO webhook gets both");
    assert!(low.try_recv().is_err());
    assert_eq!(withheld.get(), 1);
    assert!(dead.list().is_empty());

    // An unknown level in a webhook clearance is refused up front.
    let bad = WebhookConfig {
        url: "http://127.0.0.1:1/x".into(),
        min_priority: Priority::Low,
        events: vec![],
        clearance: ClearanceSpec {
            level: Some("SECERT".into()),
            groups: vec![],
        },
    };
    let err = bad.validate_clearance(&policy).unwrap_err();
    assert!(err.contains("SECERT"), "{err}");

    // On an open node every webhook gets everything.
    let (open_url, mut open_rx) = receiver().await;
    let (tx, rx) = tokio::sync::broadcast::channel(16);
    let withheld = Counter::default();
    let _task = webhook::spawn(
        vec![WebhookConfig {
            url: open_url,
            min_priority: Priority::Low,
            events: vec![],
            clearance: ClearanceSpec::default(),
        }],
        WebhookSettings::default(),
        rx,
        dead,
        std::sync::Arc::new(Policy::open()),
        withheld.clone(),
    );
    tx.send(event(3, label("SECRET", &["NATO"]))).unwrap();
    let got = tokio::time::timeout(wait, open_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.alert.id, 3);
    assert_eq!(withheld.get(), 0);
}
