//! Behavioural tests of the picture: fold rules, sweep, queries and their agreement with
//! brute force over `iter()`.

use std::sync::Arc;

use rampart_model::{AttrValue, EntityState, Label, Provenance, Report, Text, Timestamp};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::*;

const T0: i64 = 1_700_000_000_000;

fn ts(ms: i64) -> Timestamp {
    Timestamp(T0 + ms)
}

fn rep(uid: &str, lat: f64, lon: f64, t: i64) -> Report {
    Report::new(uid, lat, lon, ts(t))
}

fn pic() -> Picture {
    Picture::new(PictureConfig::default())
}

fn uids<'a>(v: impl IntoIterator<Item = &'a rampart_model::Entity>) -> Vec<String> {
    let mut u: Vec<String> = v.into_iter().map(|e| e.uid.to_string()).collect();
    u.sort();
    u
}

#[test]
fn create_applies_defaults() {
    let mut p = pic();
    let mut r = rep("u1", 48.0, 11.0, 0);
    r.provenance = Provenance::new("http", "alice");
    assert_eq!(p.fold(&r, ts(5), ts(0)), FoldOutcome::Created);
    let e = p.get("u1").unwrap();
    assert_eq!(&*e.cot_type, "a-u-G");
    assert_eq!(&*e.how, "h-e");
    assert_eq!(e.start, ts(0));
    assert_eq!(e.stale, ts(5 * 60 * 1000));
    assert_eq!(*e.label, Label::unclassified());
    assert_eq!(e.callsign, None);
    assert_eq!(e.attributes, None);
    assert_eq!(e.provenance.identity, "alice");
    assert_eq!(e.state, EntityState::Live);
    assert_eq!(e.received, ts(5));
    assert_eq!(p.len(), 1);
    assert!(!p.is_empty());
}

#[test]
fn create_keeps_report_fields() {
    let mut p = pic();
    let mut r = rep("u1", 48.0, 11.0, 0);
    r.cot_type = Some("a-f-G-U-C".into());
    r.how = Some("m-g".into());
    r.callsign = Some("ALPHA".into());
    r.hae = Some(500.0);
    r.speed = Some(3.0);
    r.start = Some(ts(-10));
    r.stale = Some(ts(60_000));
    r.label = Some(Label {
        classification: "SECRET".into(),
        releasability: vec!["NATO".into()],
    });
    r.attributes.insert("fuel".into(), AttrValue::Num(80.0));
    p.fold(&r, ts(0), ts(0));
    let e = p.get("u1").unwrap();
    assert_eq!(&*e.cot_type, "a-f-G-U-C");
    assert_eq!(&*e.how, "m-g");
    assert_eq!(e.callsign.as_deref(), Some("ALPHA"));
    assert_eq!(e.hae, Some(500.0));
    assert_eq!(e.start, ts(-10));
    assert_eq!(e.stale, ts(60_000));
    assert_eq!(e.label.classification, "SECRET");
    assert_eq!(e.attributes.as_ref().unwrap().len(), 1);
}

#[test]
fn newer_wins_and_late_does_not_regress() {
    let mut p = pic();
    let mut r = rep("u1", 10.0, 10.0, 1_000);
    r.callsign = Some("A".into());
    r.hae = Some(100.0);
    p.fold(&r, ts(1_000), ts(1_000));

    let mut newer = rep("u1", 11.0, 12.0, 2_000);
    newer.speed = Some(5.0);
    assert_eq!(p.fold(&newer, ts(2_001), ts(2_001)), FoldOutcome::Updated);
    let e = p.get("u1").unwrap();
    assert_eq!((e.lat, e.lon), (11.0, 12.0));
    assert_eq!(e.hae, None, "absent optional numbers become None");
    assert_eq!(e.speed, Some(5.0));
    assert_eq!(
        e.callsign.as_deref(),
        Some("A"),
        "callsign kept when absent"
    );
    assert_eq!(e.time, ts(2_000));
    assert_eq!(e.received, ts(2_001));

    let mut late = rep("u1", 50.0, 50.0, 1_500);
    late.callsign = Some("LATE".into());
    assert_eq!(p.fold(&late, ts(3_000), ts(3_000)), FoldOutcome::Late);
    let e = p.get("u1").unwrap();
    assert_eq!((e.lat, e.lon), (11.0, 12.0));
    assert_eq!(e.callsign.as_deref(), Some("A"));
    assert_eq!(e.time, ts(2_000));
    // The grid still finds it at its current position only.
    let q = Query {
        bbox: Some(BBox::parse("11.5,10.5,12.5,11.5").unwrap()),
        ..Query::default()
    };
    assert_eq!(p.query(&q).len(), 1);
    let q = Query {
        bbox: Some(BBox::parse("49,49,51,51").unwrap()),
        ..Query::default()
    };
    assert!(p.query(&q).is_empty());
}

#[test]
fn equal_time_updates() {
    let mut p = pic();
    p.fold(&rep("u1", 10.0, 10.0, 1_000), ts(0), ts(0));
    let mut same = rep("u1", 10.5, 10.5, 1_000);
    same.cot_type = Some("a-h-G".into());
    assert_eq!(p.fold(&same, ts(1), ts(0)), FoldOutcome::Updated);
    let e = p.get("u1").unwrap();
    assert_eq!(e.lat, 10.5);
    assert_eq!(&*e.cot_type, "a-h-G");
}

#[test]
fn type_how_label_replaced_only_when_present() {
    let mut p = pic();
    let mut r = rep("u1", 0.0, 0.0, 0);
    r.cot_type = Some("a-f-G".into());
    r.how = Some("m-g".into());
    r.label = Some(Label {
        classification: "SECRET".into(),
        releasability: vec![],
    });
    r.provenance = Provenance::new("http", "a");
    p.fold(&r, ts(0), ts(0));
    let mut r2 = rep("u1", 0.0, 0.0, 1);
    r2.provenance = Provenance::new("cot", "b");
    p.fold(&r2, ts(1), ts(1));
    let e = p.get("u1").unwrap();
    assert_eq!(&*e.cot_type, "a-f-G");
    assert_eq!(&*e.how, "m-g");
    assert_eq!(e.label.classification, "SECRET");
    assert_eq!(e.provenance.source, "cot", "provenance always replaced");
}

#[test]
fn attribute_merge_matches_a_per_name_reference() {
    // The merge pass must give what inserting each name in turn gives: overwrite held names,
    // add new ones while fewer than the cap are held.
    let names = ["a", "b", "c", "d", "e", "f"];
    for seed in 0..50 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let cap = rng.random_range(1..6);
        let mut p = Picture::new(PictureConfig {
            max_attributes_per_entity: cap,
            ..PictureConfig::default()
        });
        let mut model: std::collections::BTreeMap<Text, AttrValue> = Default::default();
        for t in 0..30 {
            let mut r = rep("u", 0.0, 0.0, t);
            for n in names {
                if rng.random_bool(0.4) {
                    let v = if rng.random_bool(0.5) {
                        AttrValue::Num(rng.random_range(0..3) as f64)
                    } else {
                        AttrValue::Text(["x", "y"][rng.random_range(0..2)].into())
                    };
                    r.attributes.insert(n.into(), v);
                }
            }
            for (k, v) in &r.attributes {
                if model.contains_key(k) || model.len() < cap {
                    model.insert(k.clone(), v.clone());
                }
            }
            p.fold(&r, ts(t), ts(t));
            let got = p.get("u").unwrap().attributes.as_deref().cloned();
            let want = (!model.is_empty()).then(|| model.clone());
            assert_eq!(got, want, "seed {seed}, report {t}");
        }
    }
}

#[test]
fn attributes_merge_with_cap() {
    let mut p = Picture::new(PictureConfig {
        max_attributes_per_entity: 3,
        ..PictureConfig::default()
    });
    let mut r = rep("u1", 0.0, 0.0, 0);
    r.attributes.insert("a".into(), AttrValue::Num(1.0));
    r.attributes.insert("b".into(), AttrValue::Num(2.0));
    p.fold(&r, ts(0), ts(0));

    // No attributes: existing kept.
    p.fold(&rep("u1", 0.0, 0.0, 1), ts(1), ts(1));
    assert_eq!(p.get("u1").unwrap().attributes.as_ref().unwrap().len(), 2);

    let mut r = rep("u1", 0.0, 0.0, 2);
    r.attributes.insert("b".into(), AttrValue::Num(20.0));
    r.attributes.insert("c".into(), AttrValue::Text("x".into()));
    r.attributes.insert("d".into(), AttrValue::Num(4.0));
    p.fold(&r, ts(2), ts(2));
    let a = p.get("u1").unwrap().attributes.clone().unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a.get("a"), Some(&AttrValue::Num(1.0)));
    assert_eq!(a.get("b"), Some(&AttrValue::Num(20.0)));
    assert_eq!(a.get("c"), Some(&AttrValue::Text("x".into())));
    assert!(!a.contains_key("d"), "extra new key dropped at the cap");

    // An existing key can still be overwritten at the cap.
    let mut r = rep("u1", 0.0, 0.0, 3);
    r.attributes.insert("a".into(), AttrValue::Num(100.0));
    p.fold(&r, ts(3), ts(3));
    let a = p.get("u1").unwrap().attributes.clone().unwrap();
    assert_eq!(a.get("a"), Some(&AttrValue::Num(100.0)));

    // A late report's attributes are ignored.
    let mut r = rep("u1", 0.0, 0.0, 0);
    r.attributes.insert("a".into(), AttrValue::Num(-1.0));
    assert_eq!(p.fold(&r, ts(4), ts(4)), FoldOutcome::Late);
    let a = p.get("u1").unwrap().attributes.clone().unwrap();
    assert_eq!(a.get("a"), Some(&AttrValue::Num(100.0)));

    // A new entity with too many attributes keeps only the cap.
    let mut r = rep("u2", 0.0, 0.0, 0);
    for k in ["p", "q", "r", "s"] {
        r.attributes.insert(k.into(), AttrValue::Num(0.0));
    }
    p.fold(&r, ts(0), ts(0));
    assert_eq!(p.get("u2").unwrap().attributes.as_ref().unwrap().len(), 3);
}

#[test]
fn stale_marking_revival_and_removal() {
    let grace = 10 * 60 * 1000;
    let mut p = pic();
    let mut r = rep("u1", 0.0, 0.0, 0);
    r.stale = Some(ts(1_000));
    p.fold(&r, ts(0), ts(0));
    let mut out = Vec::new();
    p.sweep(ts(999), &mut out);
    assert!(out.is_empty());
    p.sweep(ts(1_000), &mut out);
    assert_eq!(out, vec![Change::Stale("u1".into())]);
    assert_eq!(p.stale_count(), 1);
    assert!(p.get("u1").unwrap().is_stale());
    out.clear();
    p.sweep(ts(2_000), &mut out);
    assert!(out.is_empty(), "already stale, not yet removable");

    // A fresh report revives it.
    let mut r = rep("u1", 1.0, 1.0, 3_000);
    r.stale = Some(ts(4_000));
    assert_eq!(p.fold(&r, ts(3_000), ts(3_000)), FoldOutcome::Updated);
    assert_eq!(p.get("u1").unwrap().state, EntityState::Live);
    assert_eq!(p.stale_count(), 0);

    p.sweep(ts(4_000), &mut out);
    assert_eq!(out, vec![Change::Stale("u1".into())]);
    out.clear();
    p.sweep(ts(4_000 + grace - 1), &mut out);
    assert!(out.is_empty());
    p.sweep(ts(4_000 + grace), &mut out);
    assert_eq!(out, vec![Change::Removed("u1".into())]);
    assert!(p.get("u1").is_none());
    assert_eq!(p.len(), 0);
    assert_eq!(p.stale_count(), 0);
    assert!(p.iter().next().is_none());
}

#[test]
fn fold_of_already_stale_report_and_long_overdue_sweep() {
    let mut p = pic();
    let mut r = rep("old", 0.0, 0.0, 0);
    r.stale = Some(ts(10));
    p.fold(&r, ts(100), ts(100));
    assert!(p.get("old").unwrap().is_stale());
    assert_eq!(p.stale_count(), 1);

    let mut r = rep("live", 0.0, 0.0, 0);
    r.stale = Some(ts(200));
    p.fold(&r, ts(100), ts(100));
    // A sweep long after everything: both removed, live one reported only as removed.
    let mut out = Vec::new();
    p.sweep(ts(1_000_000_000), &mut out);
    out.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        out,
        vec![
            Change::Removed("live".into()),
            Change::Removed("old".into())
        ]
    );
    assert!(p.is_empty());
    assert_eq!(p.stale_count(), 0);
}

#[test]
fn sweep_many_across_chunks() {
    let mut p = pic();
    for i in 0..5_000 {
        let mut r = rep(&format!("u{i}"), 0.0, 0.0, 0);
        r.stale = Some(ts(i));
        p.fold(&r, ts(0), ts(-1));
    }
    let mut out = Vec::new();
    p.sweep(ts(2_499), &mut out);
    assert_eq!(out.len(), 2_500);
    assert_eq!(p.stale_count(), 2_500);
    out.clear();
    p.sweep(ts(2_499), &mut out);
    assert!(out.is_empty());
    // Refresh a stale one: it leaves the stale set and must not be removed by the grace.
    let mut r = rep("u0", 0.0, 0.0, 10);
    r.stale = Some(ts(1_000_000_000));
    p.fold(&r, ts(10), ts(3_000));
    p.sweep(ts(20 * 60 * 1000), &mut out);
    assert_eq!(out.len(), 4_999, "all but the refreshed one removed");
    assert_eq!(p.len(), 1);
    assert!(p.get("u0").is_some());
}

#[test]
fn full_rejects_new_uids_only() {
    let mut p = Picture::new(PictureConfig {
        max_entities: 2,
        ..PictureConfig::default()
    });
    assert_eq!(
        p.fold(&rep("a", 0.0, 0.0, 0), ts(0), ts(0)),
        FoldOutcome::Created
    );
    assert_eq!(
        p.fold(&rep("b", 0.0, 0.0, 0), ts(0), ts(0)),
        FoldOutcome::Created
    );
    assert_eq!(
        p.fold(&rep("c", 0.0, 0.0, 0), ts(0), ts(0)),
        FoldOutcome::Full
    );
    assert_eq!(
        p.fold(&rep("a", 1.0, 0.0, 1), ts(0), ts(0)),
        FoldOutcome::Updated
    );
    assert!(p.get("c").is_none());
    assert!(p.remove("b"));
    assert!(!p.remove("b"));
    assert_eq!(
        p.fold(&rep("c", 0.0, 0.0, 0), ts(0), ts(0)),
        FoldOutcome::Created
    );
    assert_eq!(uids(p.iter()), vec!["a", "c"]);
}

#[test]
fn interning_shares_values() {
    let mut p = pic();
    for i in 0..10 {
        let mut r = rep(&format!("u{i}"), 0.0, 0.0, 0);
        r.cot_type = Some("a-f-G-U-C".into());
        r.provenance = Provenance::new("http", "alice");
        p.fold(&r, ts(0), ts(0));
    }
    let a = p.get("u0").unwrap();
    let b = p.get("u9").unwrap();
    assert!(Arc::ptr_eq(&a.cot_type, &b.cot_type));
    assert!(Arc::ptr_eq(&a.provenance, &b.provenance));
    assert!(Arc::ptr_eq(&a.label, &b.label));
    assert!(p.interned_count() <= 6);
}

#[test]
fn long_uids_work() {
    let mut p = pic();
    let long = "0f8fad5b-d9cb-469f-a165-70867728950e-with-a-long-suffix";
    p.fold(&rep(long, 1.0, 2.0, 0), ts(0), ts(0));
    assert_eq!(p.get(long).unwrap().uid, long);
    assert!(p.remove(long));
}

fn sample_picture() -> Picture {
    let mut p = pic();
    let pts = [
        ("berlin", 52.52, 13.405, "a-f-G-U-C", "Bear"),
        ("paris", 48.8566, 2.3522, "a-h-G", "Lutece"),
        ("fiji-w", -17.7, 179.9, "a-f-S", "Island West"),
        ("fiji-e", -17.7, -179.9, "a-fx-S", "island east"),
        ("north", 89.9, 45.0, "a-n-G", "Santa"),
        ("north2", 89.9, -135.0, "a-n-G", "Rudolph"),
        ("south", -89.95, 0.0, "a-u-G", "Amundsen"),
    ];
    for (uid, lat, lon, t, cs) in pts {
        let mut r = rep(uid, lat, lon, 0);
        r.cot_type = Some(t.into());
        r.callsign = Some(cs.into());
        p.fold(&r, ts(0), ts(0));
    }
    p
}

fn bbox(s: &str) -> Query {
    Query {
        bbox: Some(BBox::parse(s).unwrap()),
        ..Query::default()
    }
}

#[test]
fn bbox_queries_including_antimeridian_and_poles() {
    let p = sample_picture();
    assert_eq!(
        uids(p.query(&bbox("-10,40,20,60"))),
        vec!["berlin", "paris"]
    );
    assert_eq!(
        uids(p.query(&bbox("179,-20,-179,-10"))),
        vec!["fiji-e", "fiji-w"]
    );
    assert_eq!(
        uids(p.query(&bbox("179.95,-20,-179.95,-10"))),
        Vec::<String>::new()
    );
    assert_eq!(
        uids(p.query(&bbox("-180,89,180,90"))),
        vec!["north", "north2"]
    );
    assert_eq!(uids(p.query(&bbox("-180,-90,180,-89"))), vec!["south"]);
    assert_eq!(p.query(&bbox("-180,-90,180,90")).len(), 7);
    // Edges are inclusive.
    assert_eq!(
        uids(p.query(&bbox("13.405,52.52,13.405,52.52"))),
        vec!["berlin"]
    );
}

#[test]
fn near_queries() {
    let p = sample_picture();
    let near = |lat, lon, radius_m| Query {
        near: Some(Near { lat, lon, radius_m }),
        ..Query::default()
    };
    // Berlin-Paris is about 878 km.
    assert_eq!(
        uids(p.query(&near(52.52, 13.405, 800_000.0))),
        vec!["berlin"]
    );
    assert_eq!(
        uids(p.query(&near(52.52, 13.405, 900_000.0))),
        vec!["berlin", "paris"]
    );
    // Across the antimeridian: the two Fiji points are ~21 km apart.
    assert_eq!(
        uids(p.query(&near(-17.7, 180.0, 15_000.0))),
        vec!["fiji-e", "fiji-w"]
    );
    // Across the pole: north and north2 are on opposite meridians, ~22 km apart.
    assert_eq!(
        uids(p.query(&near(89.9, 45.0, 25_000.0))),
        vec!["north", "north2"]
    );
    assert_eq!(uids(p.query(&near(89.9, 45.0, 20_000.0))), vec!["north"]);
    assert!(p.query(&near(0.0, 0.0, -1.0)).is_empty());
    // Combined with a bbox: both must hold.
    let mut q = near(52.52, 13.405, 900_000.0);
    q.bbox = Some(BBox::parse("0,40,5,50").unwrap());
    assert_eq!(uids(p.query(&q)), vec!["paris"]);
}

#[test]
fn type_text_stale_and_limit_filters() {
    let mut p = sample_picture();
    let q = Query {
        type_prefix: Some("a-f".into()),
        ..Query::default()
    };
    assert_eq!(uids(p.query(&q)), vec!["berlin", "fiji-w"]);
    let q = Query {
        text: Some("ISLAND".into()),
        ..Query::default()
    };
    assert_eq!(uids(p.query(&q)), vec!["fiji-e", "fiji-w"]);
    let q = Query {
        text: Some("nort".into()),
        ..Query::default()
    };
    assert_eq!(
        uids(p.query(&q)),
        vec!["north", "north2"],
        "uid matches too"
    );
    let q = Query {
        limit: Some(3),
        ..Query::default()
    };
    assert_eq!(p.query(&q).len(), 3);
    let q = Query {
        limit: Some(1),
        ..bbox("-180,-90,180,90")
    };
    assert_eq!(p.query(&q).len(), 1);
    let q = Query {
        limit: Some(0),
        ..Query::default()
    };
    assert!(p.query(&q).is_empty());

    let mut r = rep("paris", 48.8566, 2.3522, 1);
    r.stale = Some(ts(1));
    p.fold(&r, ts(2), ts(2));
    let q = Query {
        stale: Some(true),
        ..Query::default()
    };
    assert_eq!(uids(p.query(&q)), vec!["paris"]);
    let q = Query {
        stale: Some(false),
        ..Query::default()
    };
    assert_eq!(p.query(&q).len(), 6);
}

fn brute_nearest(p: &Picture, lat: f64, lon: f64, k: usize, q: &Query) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = p
        .query(q)
        .into_iter()
        .map(|e| (e.uid.to_string(), haversine_m(lat, lon, e.lat, e.lon)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1));
    all.truncate(k);
    all
}

fn check_nearest(p: &Picture, lat: f64, lon: f64, k: usize, q: &Query) {
    let got = p.nearest(lat, lon, k, q);
    let want = brute_nearest(p, lat, lon, k, q);
    assert_eq!(got.len(), want.len(), "count at {lat},{lon} k={k}");
    for (i, ((e, d), (_, wd))) in got.iter().zip(&want).enumerate() {
        // Distances must agree exactly rank by rank (uids may differ on ties).
        assert!(
            (d - wd).abs() < 1e-6,
            "rank {i} at {lat},{lon}: {} {d} vs {wd}",
            e.uid
        );
    }
    for w in got.windows(2) {
        assert!(w[0].1 <= w[1].1, "sorted");
    }
}

#[test]
fn nearest_matches_brute_force() {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut p = pic();
    let types = ["a-f-G-U-C", "a-h-G", "a-n-A", "a-fx-G"];
    for i in 0..3_000 {
        let (lat, lon) = if i % 3 == 0 {
            // Some world-wide, including near poles and the antimeridian.
            (
                rng.random_range(-90.0..=90.0),
                rng.random_range(-180.0..=180.0),
            )
        } else {
            (rng.random_range(45.0..47.0), rng.random_range(5.0..8.0))
        };
        let mut r = rep(&format!("e{i}"), lat, lon, 0);
        r.cot_type = Some(types[i % types.len()].into());
        p.fold(&r, ts(0), ts(0));
    }
    let any = Query::default();
    let friends = Query {
        type_prefix: Some("a-f".into()),
        ..Query::default()
    };
    for _ in 0..200 {
        let (lat, lon) = (
            rng.random_range(-90.0..=90.0),
            rng.random_range(-180.0..=180.0),
        );
        check_nearest(&p, lat, lon, 10, &any);
        check_nearest(&p, lat, lon, 3, &friends);
        let (lat, lon) = (rng.random_range(45.0..47.0), rng.random_range(5.0..8.0));
        check_nearest(&p, lat, lon, 10, &any);
        check_nearest(&p, lat, lon, 25, &friends);
    }
    // Special spots.
    for (lat, lon) in [
        (90.0, 0.0),
        (-90.0, 180.0),
        (0.0, 180.0),
        (0.0, -180.0),
        (46.0, 6.5),
    ] {
        check_nearest(&p, lat, lon, 7, &any);
    }
    // With a radius cap around the same point and a limit.
    let q = Query {
        near: Some(Near {
            lat: 46.0,
            lon: 6.0,
            radius_m: 5_000.0,
        }),
        ..Query::default()
    };
    check_nearest(&p, 46.0, 6.0, 50, &q);
    let q = Query {
        limit: Some(4),
        ..Query::default()
    };
    assert_eq!(p.nearest(46.0, 6.0, 50, &q).len(), 4);
    assert!(p.nearest(46.0, 6.0, 0, &any).is_empty());
    // A filter matching nothing falls back to a scan and returns nothing.
    let none = Query {
        type_prefix: Some("b-m".into()),
        ..Query::default()
    };
    assert!(p.nearest(46.0, 6.0, 5, &none).is_empty());
}

#[test]
fn nearest_with_odd_cell_sizes_and_sparse_pictures() {
    let mut rng = SmallRng::seed_from_u64(11);
    // 360 / 7 and 180 / 7 are not whole: the last column and row are narrower.
    for cell in [7.0, 0.7, 0.013] {
        let mut p = Picture::new(PictureConfig {
            cell_deg: cell,
            ..PictureConfig::default()
        });
        for i in 0..400 {
            let lat = rng.random_range(-90.0..=90.0);
            let lon = rng.random_range(-180.0..=180.0);
            p.fold(&rep(&format!("e{i}"), lat, lon, 0), ts(0), ts(0));
        }
        for _ in 0..100 {
            let (lat, lon) = (
                rng.random_range(-90.0..=90.0),
                rng.random_range(-180.0..=180.0),
            );
            check_nearest(&p, lat, lon, 5, &Query::default());
        }
        for (lat, lon) in [(0.0, 179.99), (0.0, -179.99), (89.99, 10.0)] {
            check_nearest(&p, lat, lon, 5, &Query::default());
        }
    }
}

/// Random folds, moves, removals and sweeps, then every query kind against brute force.
#[test]
fn randomized_consistency_with_brute_force() {
    let mut rng = SmallRng::seed_from_u64(42);
    let mut p = Picture::new(PictureConfig {
        cell_deg: 0.5,
        stale_grace_ms: 1_000,
        ..PictureConfig::default()
    });
    let types = ["a-f-G-U-C", "a-h-G", "a-n-A", "a-fx-G", "b-m-p"];
    let names = ["Alpha", "bravo", "CHARLIE", "delta", "Écho"];
    let mut now = 0i64;
    let mut out = Vec::new();
    for step in 0..40_000 {
        now += 1;
        let id = rng.random_range(0..2_000);
        let uid = format!("uid-{id}");
        match rng.random_range(0..100) {
            0 => {
                p.remove(&uid);
            }
            1 => {
                p.sweep(ts(now), &mut out);
            }
            _ => {
                let (lat, lon) = if rng.random_bool(0.8) {
                    (rng.random_range(-5.0..5.0), rng.random_range(175.0..185.0))
                } else {
                    (
                        rng.random_range(-90.0..=90.0),
                        rng.random_range(-180.0..=180.0),
                    )
                };
                let lon = if lon > 180.0 { lon - 360.0 } else { lon };
                let mut r = rep(&uid, lat, lon, now - rng.random_range(0..50));
                if rng.random_bool(0.5) {
                    r.cot_type = Some(types[step % types.len()].into());
                }
                if rng.random_bool(0.3) {
                    r.callsign = Some(Text::from(names[rng.random_range(0..names.len())]));
                }
                r.stale = Some(ts(now + rng.random_range(0..3_000)));
                p.fold(&r, ts(now), ts(now));
            }
        }
    }
    let all: Vec<_> = p.iter().collect();
    assert_eq!(all.len(), p.len());
    assert_eq!(all.iter().filter(|e| e.is_stale()).count(), p.stale_count());
    for e in &all {
        assert_eq!(p.get(&e.uid).map(|x| &x.uid), Some(&e.uid));
    }
    for _ in 0..300 {
        let mut q = Query::default();
        if rng.random_bool(0.7) {
            let lat0: f64 = rng.random_range(-90.0..90.0);
            let lat1 = (lat0 + rng.random_range(0.0..20.0)).min(90.0);
            let lon0 = rng.random_range(-180.0..180.0);
            let lon1: f64 = lon0 + rng.random_range(0.0..30.0);
            let lon1 = if lon1 > 180.0 { lon1 - 360.0 } else { lon1 };
            q.bbox = Some(BBox {
                min_lon: lon0,
                min_lat: lat0,
                max_lon: lon1,
                max_lat: lat1,
            });
        }
        if rng.random_bool(0.4) {
            q.near = Some(Near {
                lat: rng.random_range(-90.0..=90.0),
                lon: rng.random_range(-180.0..=180.0),
                radius_m: rng.random_range(0.0..2_000_000.0),
            });
        }
        if rng.random_bool(0.3) {
            q.type_prefix = Some(["a-f", "a", "a-h-G", "b"][rng.random_range(0..4)].into());
        }
        if rng.random_bool(0.2) {
            q.text = Some(["ALPHA", "ch", "uid-1", "écho"][rng.random_range(0..4)].into());
        }
        if rng.random_bool(0.2) {
            q.stale = Some(rng.random_bool(0.5));
        }
        let want: Vec<String> = uids(all.iter().copied().filter(|e| {
            q.bbox.is_none_or(|b| b.contains(e.lat, e.lon))
                && q.near.is_none_or(|n| n.contains(e.lat, e.lon))
                && q.type_prefix
                    .as_deref()
                    .is_none_or(|t| type_matches(&e.cot_type, t))
                && q.text.as_deref().is_none_or(|t| {
                    let t = t.to_lowercase();
                    e.uid.to_lowercase().contains(&t)
                        || e.callsign
                            .as_deref()
                            .is_some_and(|c| c.to_lowercase().contains(&t))
                })
                && q.stale.is_none_or(|s| e.is_stale() == s)
        }));
        assert_eq!(uids(p.query(&q)), want, "{q:?}");
        let (lat, lon) = (
            rng.random_range(-10.0..10.0),
            rng.random_range(170.0..=180.0),
        );
        check_nearest(&p, lat, lon, 8, &q);
        if !want.is_empty() {
            let limited = Query {
                limit: Some(want.len().div_ceil(2)),
                ..q.clone()
            };
            let got = p.query(&limited);
            assert_eq!(got.len(), want.len().div_ceil(2));
            assert!(uids(got).iter().all(|u| want.contains(u)));
        }
    }
}

/// Spatial-only queries take the whole-cell shortcut; check them against brute force on dense
/// data with several cell sizes, including ones that do not divide 360.
#[test]
fn spatial_only_queries_match_brute_force() {
    let mut rng = SmallRng::seed_from_u64(5);
    for cell in [0.05, 0.3, 7.0] {
        let mut p = Picture::new(PictureConfig {
            cell_deg: cell,
            ..PictureConfig::default()
        });
        for i in 0..6_000 {
            let (lat, lon) = match i % 3 {
                0 => (rng.random_range(44.0..48.0), rng.random_range(4.0..10.0)),
                1 => (
                    rng.random_range(-89.9..=-85.0),
                    rng.random_range(-180.0..=180.0),
                ),
                _ => (
                    rng.random_range(-90.0..=90.0),
                    rng.random_range(-180.0..=180.0),
                ),
            };
            p.fold(&rep(&format!("e{i}"), lat, lon, 0), ts(0), ts(0));
        }
        let all: Vec<_> = p.iter().collect();
        for _ in 0..200 {
            let lat0: f64 = rng.random_range(-90.0..90.0);
            let b = BBox {
                min_lat: lat0,
                max_lat: (lat0 + rng.random_range(0.0..10.0)).min(90.0),
                min_lon: rng.random_range(-180.0..=180.0),
                max_lon: rng.random_range(-180.0..=180.0),
            };
            let q = Query {
                bbox: Some(b),
                ..Query::default()
            };
            let want = uids(all.iter().copied().filter(|e| b.contains(e.lat, e.lon)));
            assert_eq!(uids(p.query(&q)), want, "{b:?}");

            let n = Near {
                lat: rng.random_range(-90.0..=90.0),
                lon: rng.random_range(-180.0..=180.0),
                radius_m: rng.random_range(0.0..3_000_000.0),
            };
            let q = Query {
                near: Some(n),
                ..Query::default()
            };
            let want = uids(all.iter().copied().filter(|e| n.contains(e.lat, e.lon)));
            assert_eq!(uids(p.query(&q)), want, "{n:?}");
            let n = Near {
                lat: rng.random_range(44.0..48.0),
                lon: rng.random_range(4.0..10.0),
                radius_m: rng.random_range(0.0..200_000.0),
            };
            let q = Query {
                near: Some(n),
                bbox: Some(b),
                ..Query::default()
            };
            let want = uids(
                all.iter()
                    .copied()
                    .filter(|e| n.contains(e.lat, e.lon) && b.contains(e.lat, e.lon)),
            );
            assert_eq!(uids(p.query(&q)), want, "{n:?} {b:?}");
        }
    }
}

fn lbl(c: &str, rel: &[&str]) -> Label {
    Label {
        classification: c.into(),
        releasability: rel.iter().map(|g| Text::from(*g)).collect(),
    }
}

#[test]
fn entity_label_is_the_join_of_its_reports_until_set_explicitly() {
    let mut p = pic();
    let mut r = rep("u1", 1.0, 1.0, 0);
    r.label = Some(lbl("SECRET", &["NATO", "FVEY"]));
    p.fold(&r, ts(0), ts(0));
    let mut r = rep("u1", 1.0, 1.1, 1_000);
    r.label = Some(lbl("UNCLASSIFIED", &[]));
    p.fold(&r, ts(1_000), ts(1_000));
    // Releasability lists come out sorted and without repeats.
    assert_eq!(
        *p.get("u1").unwrap().label,
        lbl("SECRET", &["FVEY", "NATO"])
    );
    let mut r = rep("u1", 1.0, 1.2, 2_000);
    r.label = Some(lbl("CONFIDENTIAL", &["NATO"]));
    p.fold(&r, ts(2_000), ts(2_000));
    assert_eq!(*p.get("u1").unwrap().label, lbl("SECRET", &["NATO"]));

    // An explicit set replaces it; a later report joins on top of the new label.
    let old = p.set_label("u1", &lbl("UNCLASSIFIED", &[])).unwrap();
    assert_eq!(*old, lbl("SECRET", &["NATO"]));
    assert_eq!(*p.get("u1").unwrap().label, lbl("UNCLASSIFIED", &[]));
    let mut r = rep("u1", 1.0, 1.3, 3_000);
    r.label = Some(lbl("RESTRICTED", &[]));
    p.fold(&r, ts(3_000), ts(3_000));
    assert_eq!(*p.get("u1").unwrap().label, lbl("RESTRICTED", &[]));
    assert!(p.set_label("nobody", &lbl("SECRET", &[])).is_none());
}

#[test]
fn queries_with_a_clearance_skip_what_it_may_not_see() {
    let levels = rampart_labels::Levels::default();
    let mut p = pic();
    for (i, (uid, l)) in [
        ("unc", lbl("UNCLASSIFIED", &[])),
        ("sec", lbl("SECRET", &[])),
        ("nato", lbl("SECRET", &["NATO"])),
        ("typo", lbl("SECERT", &[])),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = rep(uid, 10.0 + i as f64 * 0.01, 10.0, 0);
        r.label = Some(l);
        p.fold(&r, ts(0), ts(0));
    }
    let q = |c: rampart_labels::Clearance, limit| Query {
        clearance: Some(c),
        limit: Some(limit),
        ..Query::default()
    };
    let fvey = levels.clearance("SECRET", &["FVEY"]).unwrap();
    assert_eq!(uids(p.query(&q(fvey.clone(), 10))), ["sec", "unc"]);
    // The limit counts visible entities only: hidden ones never take a slot.
    assert_eq!(p.query(&q(fvey.clone(), 2)).len(), 2);
    let near = p.nearest(10.03, 10.0, 2, &q(fvey, 10));
    assert_eq!(uids(near.into_iter().map(|(e, _)| e)), ["sec", "unc"]);
    let low = levels.clearance::<&str>("UNCLASSIFIED", &[]).unwrap();
    assert_eq!(uids(p.query(&q(low, 10))), ["unc"]);
    let all = p.query(&q(rampart_labels::Clearance::unrestricted(), 10));
    assert_eq!(all.len(), 4);
}
