//! Third-party oracle: pynmea2 renders and parses random valid sentences of every supported
//! type (`tests/oracle/nmea_oracle.py`); this test decodes the same sentences and compares
//! every field. It fails — never skips — when the Python environment is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use rampart_codec_nmea::{FrameOptions, LatLon, Sentence, TimeOfDay, decode};
use serde_json::Value;

fn python() -> PathBuf {
    let path = std::env::var_os("RAMPART_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/pyenv/bin/python")
        });
    assert!(
        path.exists(),
        "the oracle interpreter {} is missing: run scripts/python-env (or set RAMPART_PYTHON)",
        path.display()
    );
    path
}

fn run_oracle(args: &[&str]) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/nmea_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("run the pynmea2 oracle");
    assert!(
        out.status.success(),
        "pynmea2 oracle failed (run scripts/python-env?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn close(ctx: &str, name: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{ctx}: {name}: {g} vs {w}"
        ),
        (g, _) => panic!("{ctx}: {name}: got {g:?}, pynmea2 says {want}"),
    }
}

fn int(ctx: &str, name: &str, got: Option<i64>, want: &Value) {
    assert_eq!(got, want.as_i64(), "{ctx}: {name}");
}

fn time(ctx: &str, got: Option<TimeOfDay>, want: &Value) {
    int(ctx, "time", got.map(|t| i64::from(t.millis())), want);
}

fn position(ctx: &str, got: Option<LatLon>, want: &Value) {
    match (got, want.as_array()) {
        (None, None) => {}
        (Some(p), Some(w)) => {
            close(ctx, "lat", Some(p.lat), &w[0]);
            close(ctx, "lon", Some(p.lon), &w[1]);
        }
        (g, _) => panic!("{ctx}: position: got {g:?}, pynmea2 says {want}"),
    }
}

fn letter(ctx: &str, name: &str, got: Option<char>, want: &Value) {
    assert_eq!(
        got.map(String::from).as_deref(),
        want.as_str(),
        "{ctx}: {name}"
    );
}

#[test]
fn matches_pynmea2_on_every_sentence_type() {
    let records = run_oracle(&["24301", "400"]);
    assert_eq!(records.len(), 7 * 400);
    let seen = check_all(&records);
    assert_eq!(seen.len(), 7, "every sentence type covered: {seen:?}");
}

#[test]
fn matches_pynmea2_on_recorded_public_samples() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/public_samples.nmea");
    let records = run_oracle(&["--decode", fixture.to_str().unwrap()]);
    assert_eq!(records.len(), 16);
    let seen = check_all(&records);
    assert_eq!(seen.len(), 7, "every sentence type covered: {seen:?}");
}

fn check_all(records: &[Value]) -> std::collections::BTreeMap<&'static str, usize> {
    let opts = FrameOptions::default();
    let mut seen = std::collections::BTreeMap::new();
    for r in records {
        let line = r["sentence"].as_str().unwrap();
        let e = &r["expect"];
        let ctx = line;
        let s = decode(line.as_bytes(), &opts).unwrap_or_else(|err| panic!("{line}: {err}"));
        assert_eq!(s.kind(), r["kind"].as_str().unwrap(), "{ctx}");
        assert_eq!(s.talker().as_str(), r["talker"].as_str().unwrap(), "{ctx}");
        *seen.entry(s.kind()).or_insert(0) += 1;
        match s {
            Sentence::Gga(g) => {
                time(ctx, g.time, &e["time"]);
                position(ctx, g.position, &e["position"]);
                int(
                    ctx,
                    "fix_quality",
                    g.fix_quality.map(i64::from),
                    &e["fix_quality"],
                );
                int(
                    ctx,
                    "satellites",
                    g.satellites.map(i64::from),
                    &e["satellites"],
                );
                close(ctx, "hdop", g.hdop, &e["hdop"]);
                close(ctx, "altitude", g.altitude_msl, &e["altitude"]);
                close(
                    ctx,
                    "geoid_separation",
                    g.geoid_separation,
                    &e["geoid_separation"],
                );
                close(ctx, "dgps_age", g.dgps_age, &e["dgps_age"]);
                int(
                    ctx,
                    "dgps_station",
                    g.dgps_station.map(i64::from),
                    &e["dgps_station"],
                );
            }
            Sentence::Rmc(m) => {
                time(ctx, m.time, &e["time"]);
                assert_eq!(m.valid, e["valid"].as_bool().unwrap(), "{ctx}");
                position(ctx, m.position, &e["position"]);
                close(ctx, "speed", m.speed_knots, &e["speed_knots"]);
                close(ctx, "course", m.course_true, &e["course"]);
                let want_date = e["date"].as_array().map(|d| {
                    (
                        d[0].as_i64().unwrap(),
                        d[1].as_i64().unwrap(),
                        d[2].as_i64().unwrap(),
                    )
                });
                let got_date = m
                    .date
                    .map(|d| (i64::from(d.year), i64::from(d.month), i64::from(d.day)));
                assert_eq!(got_date, want_date, "{ctx}: date");
                close(
                    ctx,
                    "magnetic_variation",
                    m.magnetic_variation,
                    &e["magnetic_variation"],
                );
                letter(ctx, "mode", m.mode, &e["mode"]);
            }
            Sentence::Vtg(v) => {
                close(ctx, "course_true", v.course_true, &e["course_true"]);
                close(
                    ctx,
                    "course_magnetic",
                    v.course_magnetic,
                    &e["course_magnetic"],
                );
                close(ctx, "speed_knots", v.speed_knots, &e["speed_knots"]);
                close(ctx, "speed_kmh", v.speed_kmh, &e["speed_kmh"]);
                letter(ctx, "mode", v.mode, &e["mode"]);
            }
            Sentence::Gll(g) => {
                position(ctx, g.position, &e["position"]);
                time(ctx, g.time, &e["time"]);
                assert_eq!(g.valid, e["valid"].as_bool().unwrap(), "{ctx}");
                letter(ctx, "mode", g.mode, &e["mode"]);
            }
            Sentence::Gsa(g) => {
                letter(
                    ctx,
                    "selection_mode",
                    g.selection_mode,
                    &e["selection_mode"],
                );
                int(ctx, "fix_type", g.fix_type.map(i64::from), &e["fix_type"]);
                for (k, want) in e["satellites"].as_array().unwrap().iter().enumerate() {
                    int(ctx, "prn", g.satellites[k].map(i64::from), want);
                }
                close(ctx, "pdop", g.pdop, &e["pdop"]);
                close(ctx, "hdop", g.hdop, &e["hdop"]);
                close(ctx, "vdop", g.vdop, &e["vdop"]);
            }
            Sentence::Gsv(g) => {
                int(ctx, "total", Some(i64::from(g.total_messages)), &e["total"]);
                int(
                    ctx,
                    "number",
                    Some(i64::from(g.message_number)),
                    &e["number"],
                );
                int(
                    ctx,
                    "in_view",
                    g.satellites_in_view.map(i64::from),
                    &e["in_view"],
                );
                for (k, want) in e["satellites"].as_array().unwrap().iter().enumerate() {
                    match (g.satellites[k], want.as_array()) {
                        (None, None) => {}
                        (Some(s), Some(w)) => {
                            int(ctx, "prn", Some(i64::from(s.prn)), &w[0]);
                            int(ctx, "elevation", s.elevation.map(i64::from), &w[1]);
                            int(ctx, "azimuth", s.azimuth.map(i64::from), &w[2]);
                            int(ctx, "snr", s.snr.map(i64::from), &w[3]);
                        }
                        (got, _) => panic!("{ctx}: satellite {k}: {got:?} vs {want}"),
                    }
                }
            }
            Sentence::Zda(z) => {
                time(ctx, z.time, &e["time"]);
                let d = z.date.unwrap();
                let w = e["date"].as_array().unwrap();
                assert_eq!(
                    (i64::from(d.year), i64::from(d.month), i64::from(d.day)),
                    (
                        w[0].as_i64().unwrap(),
                        w[1].as_i64().unwrap(),
                        w[2].as_i64().unwrap()
                    ),
                    "{ctx}"
                );
                int(
                    ctx,
                    "zone_hours",
                    z.local_zone_hours.map(i64::from),
                    &e["zone_hours"],
                );
                int(
                    ctx,
                    "zone_minutes",
                    z.local_zone_minutes.map(i64::from),
                    &e["zone_minutes"],
                );
            }
        }
    }
    seen
}
