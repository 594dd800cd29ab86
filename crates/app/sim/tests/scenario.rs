//! Behavioural tests of the demo scenario through its public API: coverage, determinism,
//! validity, plausible motion and staleness.

use std::collections::{HashMap, HashSet};

use rampart_model::{Limits, Provenance, Report, Timestamp};
use rampart_sim::{Scenario, ScenarioConfig};

/// 2026-01-01T00:00:00Z.
const START: Timestamp = Timestamp(1_767_225_600_000);

fn config(entities: usize, seed: u64) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        entities,
        ..ScenarioConfig::default()
    }
}

/// Ticks every `step_ms` from `START` to `START + duration_ms` inclusive, collecting reports.
fn run(sim: &mut Scenario, step_ms: i64, duration_ms: i64) -> Vec<Report> {
    let mut out = Vec::new();
    let mut t = 0;
    while t <= duration_ms {
        out.extend(sim.tick(START.plus_millis(t)));
        t += step_ms;
    }
    out
}

/// Great-circle distance in metres (haversine, mean Earth radius).
fn haversine(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().min(1.0).asin()
}

/// The class of an entity from its uid, with its (min, max) speed in m/s.
fn class(uid: &str) -> (&'static str, f64, f64) {
    match uid.split('-').nth(1) {
        Some("veh") => ("vehicle", 4.0, 25.0),
        Some("dis") => ("dismount", 1.0, 2.0),
        Some("air") => ("aircraft", 60.0, 250.0),
        Some("sea") => ("vessel", 3.0, 12.0),
        Some("sen") | Some("site") => ("fixed", 0.0, 0.0),
        other => panic!("unexpected uid class {other:?} in {uid}"),
    }
}

#[test]
fn first_tick_reports_every_entity_once() {
    let mut sim = Scenario::new(ScenarioConfig::default(), START);
    assert_eq!(sim.len(), 2_500);
    assert!(!sim.is_empty());
    let first = sim.tick(START);
    assert_eq!(first.len(), 2_500);
    let uids: HashSet<_> = first.iter().map(|r| r.uid.clone()).collect();
    assert_eq!(uids.len(), 2_500);
    assert!(first.iter().all(|r| r.time == START));
    // Every class is present.
    let classes: HashSet<_> = first.iter().map(|r| class(&r.uid).0).collect();
    assert_eq!(classes.len(), 5);
    // Nothing is due again at the same instant.
    assert!(sim.tick(START).is_empty());
}

#[test]
fn same_seed_same_reports_other_seed_other_reports() {
    let a = run(&mut Scenario::new(config(2_000, 7), START), 1_000, 60_000);
    let b = run(&mut Scenario::new(config(2_000, 7), START), 1_000, 60_000);
    assert_eq!(a, b);
    let c = run(&mut Scenario::new(config(2_000, 8), START), 1_000, 60_000);
    assert_ne!(a, c);
}

#[test]
fn reports_do_not_depend_on_tick_cadence() {
    let key = |r: &Report| (r.time, r.uid.clone());
    let mut fine = run(&mut Scenario::new(config(2_000, 3), START), 1_000, 120_000);
    // 7 s ticks end at 119 s; compare the same window.
    let mut coarse = run(&mut Scenario::new(config(2_000, 3), START), 7_000, 119_000);
    fine.retain(|r| r.time <= START.plus_millis(119_000));
    fine.sort_by_key(key);
    coarse.sort_by_key(key);
    assert_eq!(fine.len(), coarse.len());
    assert!(fine == coarse, "reports differ between 1 s and 7 s ticks");
}

#[test]
fn every_report_validates_and_is_well_formed() {
    let limits = Limits::default();
    let reports = run(
        &mut Scenario::new(config(2_500, 11), START),
        1_000,
        10 * 60_000,
    );
    let mut classifications = HashMap::new();
    for r in &reports {
        limits
            .validate(r)
            .unwrap_or_else(|e| panic!("{}: {e}", r.uid));
        assert!((-90.0..=90.0).contains(&r.lat) && (-180.0..180.0).contains(&r.lon));
        if let Some(c) = r.course {
            assert!((0.0..360.0).contains(&c), "{}: course {c}", r.uid);
        }
        assert!(r.uid.starts_with("sim-"));
        assert!(r.callsign.as_deref().is_some_and(|c| !c.is_empty()));
        assert!(matches!(r.how.as_deref(), Some("m-g" | "m-f")));
        let ce = r.ce.unwrap_or_default();
        assert!((1.0..=60.0).contains(&ce), "{}: ce {ce}", r.uid);
        assert_eq!(r.provenance, Provenance::new("sim", "demo"));
        let label = r
            .label
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no label", r.uid));
        *classifications
            .entry(label.classification.to_string())
            .or_insert(0usize) += 1;
        if label.classification == "SECRET" {
            assert_eq!(label.releasability, ["NATO"]);
        }
        assert!(r.stale.is_some_and(|s| s > r.time));
        let (kind, _, _) = class(&r.uid);
        match kind {
            "aircraft" => assert!(r.hae.is_some_and(|h| (300.0..=9_000.0).contains(&h))),
            "fixed" => {
                assert!(r.course.is_none() && r.speed.is_none());
                for k in ["battery", "temperature_c", "signal_dbm", "status"] {
                    assert!(r.attributes.contains_key(k), "{} lacks {k}", r.uid);
                }
            }
            "dismount" => assert!(r.attributes.contains_key("battery")),
            _ => {}
        }
    }
    let total = reports.len() as f64;
    let share = |c: &str| *classifications.get(c).unwrap_or(&0) as f64 / total;
    assert!(share("UNCLASSIFIED") > 0.7, "{classifications:?}");
    assert!(
        share("SECRET") > 0.02 && share("CONFIDENTIAL") > 0.02,
        "{classifications:?}"
    );
}

#[test]
fn entities_move_at_plausible_speeds() {
    let reports = run(
        &mut Scenario::new(config(2_500, 5), START),
        1_000,
        5 * 60_000,
    );
    let mut last: HashMap<_, &Report> = HashMap::new();
    let mut measured: HashMap<&str, Vec<f64>> = HashMap::new();
    for r in &reports {
        let (kind, min, max) = class(&r.uid);
        if let Some(v) = r.speed {
            assert!(
                v >= min - 1e-9 && v <= max + 1e-9,
                "{}: reported {v} m/s",
                r.uid
            );
        }
        if let Some(prev) = last.insert(r.uid.clone(), r) {
            let dt = (r.time.millis() - prev.time.millis()) as f64 / 1000.0;
            assert!(dt > 0.0);
            let v = haversine(prev.lat, prev.lon, r.lat, r.lon) / dt;
            // Rounding the reported speed to 1 cm/s allows a hair over the maximum.
            assert!(
                v <= max * 1.001 + 0.01,
                "{} ({kind}) moved at {v:.2} m/s > {max}",
                r.uid
            );
            measured.entry(kind).or_default().push(v);
            if kind != "fixed" {
                // Headings move smoothly: the course never flips between close reports.
                let turn = (r.course.unwrap_or(0.0) - prev.course.unwrap_or(0.0)).rem_euclid(360.0);
                let turn = turn.min(360.0 - turn);
                let max_rate = if kind == "aircraft" { 10.0 } else { 40.0 };
                assert!(
                    turn <= max_rate * dt + 1.0,
                    "{} turned {turn:.1}° in {dt} s",
                    r.uid
                );
            }
        }
    }
    for (kind, mut vs) in measured {
        vs.sort_by(f64::total_cmp);
        let median = vs[vs.len() / 2];
        let (lo, hi) = match kind {
            "vehicle" => (8.0, 25.0),
            "dismount" => (0.7, 2.0),
            "aircraft" => (60.0, 250.0),
            "vessel" => (3.0, 12.0),
            _ => (0.0, 0.0),
        };
        assert!(
            (lo..=hi).contains(&median),
            "{kind}: median {median:.2} m/s not in {lo}..{hi}"
        );
    }
}

#[test]
fn about_five_percent_go_stale() {
    let mut sim = Scenario::new(config(4_000, 9), START);
    let end = 30 * 60_000;
    let mut latest: HashMap<_, Report> = HashMap::new();
    for r in run(&mut sim, 5_000, end) {
        latest.insert(r.uid.clone(), r);
    }
    assert_eq!(latest.len(), 4_000);
    let now = START.plus_millis(end);
    let stale = latest
        .values()
        .filter(|r| r.stale.is_some_and(|s| s < now))
        .count();
    let share = stale as f64 / 4_000.0;
    assert!(
        (0.03..=0.07).contains(&share),
        "{stale} of 4000 stale ({share:.3})"
    );
}

#[test]
fn supports_a_hundred_thousand_entities() {
    let mut sim = Scenario::new(config(100_000, 1), START);
    assert_eq!(sim.len(), 100_000);
    assert_eq!(sim.tick(START).len(), 100_000);
    let next = sim.tick(START.plus_millis(1_000));
    // Only the ~1/5 s share of entities with short intervals reports again after one second.
    assert!(!next.is_empty() && next.len() < 40_000, "{}", next.len());
    let limits = Limits::default();
    assert!(next.iter().all(|r| limits.validate(r).is_ok()));
}

#[test]
fn odd_configurations_still_give_valid_reports() {
    let limits = Limits::default();
    for (lat, lon, radius) in [
        (90.0, 0.0, 60.0),
        (-89.99, 179.99, 300.0),
        (0.0, -180.0, 1.0),
        (f64::NAN, 540.0, f64::INFINITY),
    ] {
        let cfg = ScenarioConfig {
            seed: 1,
            entities: 300,
            center_lat: lat,
            center_lon: lon,
            radius_km: radius,
        };
        let mut sim = Scenario::new(cfg, START);
        for r in run(&mut sim, 3_000, 120_000) {
            limits
                .validate(&r)
                .unwrap_or_else(|e| panic!("{lat},{lon}: {}: {e}", r.uid));
            assert!((-180.0..180.0).contains(&r.lon));
            assert!(r.course.is_none_or(|c| (0.0..360.0).contains(&c)));
        }
    }
    let mut empty = Scenario::new(config(0, 1), START);
    assert!(empty.is_empty() && empty.tick(START).is_empty());
}

#[test]
fn a_long_pause_skips_ahead_instead_of_replaying() {
    let mut sim = Scenario::new(config(2_000, 2), START);
    sim.tick(START);
    let later = START.plus_millis(6 * 3_600_000);
    let batch = sim.tick(later);
    // Everyone still reporting catches up with one report (two for the ones due again at once
    // is impossible: the next interval is at least a second).
    let uids: HashSet<_> = batch.iter().map(|r| r.uid.clone()).collect();
    assert_eq!(uids.len(), batch.len());
    assert!(batch.iter().all(|r| r.time == later));
    assert!(
        batch.len() > 1_800 && batch.len() < 2_000,
        "{}",
        batch.len()
    );
}
