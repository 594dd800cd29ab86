//! The guard attached to a real engine and rules engine: refused reports are neither stored
//! nor folded, detections reach the alert stream, refusals are counted in the metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rampart_engine::{Engine, EngineConfig, Metrics};
use rampart_guard::{GuardConfig, GuardScreen, QuarantineQuery};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{Provenance, Report, Timestamp};
use rampart_rules::{AlertKind, AlertQuery, RulesConfig, RulesService};

struct Node {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    rules: Arc<RulesService>,
    guard: Arc<GuardScreen>,
    metrics: Arc<Metrics>,
}

fn node(cfg: GuardConfig) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig::new(dir.path())).unwrap();
    let store: Arc<dyn HistoryStore> = log;
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::open(EngineConfig::default(), store, metrics.clone()).unwrap();
    let rules = RulesService::open(RulesConfig::default(), None, &metrics).unwrap();
    rules.attach(&engine).unwrap();
    let guard = GuardScreen::new(cfg, engine.config().labels.clone(), &metrics).unwrap();
    guard.attach(&engine).unwrap();
    guard.set_alerts(rules.clone());
    Node {
        _dir: dir,
        engine,
        rules,
        guard,
        metrics,
    }
}

fn report(uid: &str, lat: f64, lon: f64, time: Timestamp, identity: &str) -> Report {
    let mut r = Report::new(uid, lat, lon, time);
    r.cot_type = Some("a-f-G-U-C".into());
    r.provenance = Provenance::new("http", identity);
    r
}

fn north(lat: f64, metres: f64) -> f64 {
    lat + metres / 111_195.0
}

fn alerts(n: &Node, kind: AlertKind) -> Vec<rampart_rules::Alert> {
    n.rules.alerts(&AlertQuery {
        kind: Some(kind),
        limit: 100,
        ..Default::default()
    })
}

#[test]
fn impossible_ground_speed_is_quarantined_not_folded_and_alerted() {
    let n = node(GuardConfig::default());
    let t0 = Timestamp::now().plus_millis(-60_000);
    let r = n
        .engine
        .ingest_now(vec![report("g1", 48.0, 2.0, t0, "a")], Timestamp::now())
        .unwrap();
    assert_eq!(r.accepted, 1);
    // 400 km/h for 30 s.
    let fast = report("g1", north(48.0, 3_333.0), 2.0, t0.plus_millis(30_000), "a");
    let r = n.engine.ingest_now(vec![fast], Timestamp::now()).unwrap();
    assert_eq!(r.accepted, 0);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].field, "kinematics");
    assert!(r.rejected[0].reason.contains("km/h"), "{:?}", r.rejected);
    assert_eq!(n.engine.picture().get("g1").unwrap().lat, 48.0);
    let q = n.guard.quarantined(
        &QuarantineQuery {
            uid: Some("g1".into()),
            limit: 10,
        },
        |_| true,
    );
    assert_eq!(q.len(), 1);
    let a = alerts(&n, AlertKind::Spoofing);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].entities, vec!["g1".to_string()]);
    assert_eq!(a[0].rule_id, "spoofing");
    assert_eq!(a[0].label.classification, "UNCLASSIFIED");
    // A plausible move still lands.
    let ok = report("g1", north(48.0, 500.0), 2.0, t0.plus_millis(30_000), "a");
    let r = n.engine.ingest_now(vec![ok], Timestamp::now()).unwrap();
    assert_eq!(r.accepted, 1);
    let text = n.metrics.render();
    assert!(
        text.contains("rampart_guard_refused_total{reason=\"kinematics\"} 1"),
        "{text}"
    );
    assert!(text.contains("rampart_guard_detections_total{reason=\"spoofing\"} 1"));
}

#[test]
fn a_jump_within_one_batch_is_judged_against_the_earlier_report() {
    let n = node(GuardConfig::default());
    let t0 = Timestamp::now().plus_millis(-10_000);
    let batch = vec![
        report("j1", 48.0, 2.0, t0, "a"),
        report("j1", north(48.0, 50_500.0), 2.0, t0.plus_millis(1_000), "a"),
        report("j1", north(48.0, 10.0), 2.0, t0.plus_millis(2_000), "a"),
    ];
    let r = n.engine.ingest_now(batch, Timestamp::now()).unwrap();
    assert_eq!(r.accepted, 2);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].index, 1);
    assert!(r.rejected[0].reason.contains("jump"), "{:?}", r.rejected);
    let e = n.engine.picture().get("j1").unwrap().clone();
    assert!((e.lat - north(48.0, 10.0)).abs() < 1e-9);
}

#[test]
fn a_flooding_identity_is_throttled_and_others_are_not() {
    let mut cfg = GuardConfig::default();
    cfg.flood.initial_rate_per_sec = 0.0;
    cfg.flood.min_rate_per_sec = 100.0;
    let n = node(cfg);
    let now = Timestamp::now();
    let flood: Vec<Report> = (0..1_000)
        .map(|i| report(&format!("f{i}"), 48.0, 2.0, now, "flooder"))
        .collect();
    let r = n.engine.ingest_now(flood, now).unwrap();
    assert_eq!(r.accepted, 100);
    assert_eq!(r.rejected.len(), 900);
    assert!(r.rejected.iter().all(|x| x.field == "rate"));
    let calm: Vec<Report> = (0..50)
        .map(|i| report(&format!("c{i}"), 48.0, 2.0, now, "calm"))
        .collect();
    let r = n.engine.ingest_now(calm, now).unwrap();
    assert_eq!(r.accepted, 50);
    assert!(r.rejected.is_empty());
    let a = alerts(&n, AlertKind::Flood);
    assert_eq!(a.len(), 1, "one alert per episode");
    assert!(a[0].message.contains("flooder"), "{}", a[0].message);
    assert_eq!(n.engine.picture().len(), 150);
}

#[test]
fn many_entities_going_silent_in_one_area_raise_one_jamming_alert() {
    let n = node(GuardConfig::default());
    let now = Timestamp::now();
    let batch: Vec<Report> = (0..6)
        .map(|i| {
            let mut r = report(&format!("s{i}"), 48.1 + i as f64 * 0.01, 2.1, now, "a");
            r.stale = Some(now.plus_millis(1_000));
            r
        })
        .collect();
    // One far away, going silent at the same time: another cell.
    let mut far = report("far", 10.0, 10.0, now, "a");
    far.stale = Some(now.plus_millis(1_000));
    let mut batch = batch;
    batch.push(far);
    n.engine.ingest_now(batch, now).unwrap();
    n.engine.sweep(now.plus_millis(500));
    assert!(alerts(&n, AlertKind::Jamming).is_empty());
    n.engine.sweep(now.plus_millis(2_000));
    let a = alerts(&n, AlertKind::Jamming);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].entities.len(), 5, "the five that completed the count");
    assert!(!a[0].entities.contains(&"far".to_string()));
}
