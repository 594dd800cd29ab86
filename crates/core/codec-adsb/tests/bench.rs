//! Throughput on one core: AVR messages/s and SBS lines/s, decode only and through the
//! tracker (which includes CPR, the plausibility checks and building validated reports).
//!
//! `cargo test --release -p rampart-codec-adsb -- --ignored --nocapture`
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use rampart_codec_adsb::{
    AdsbTracker, EmitterCategory, TrackerConfig, decode_avr, encode, parse_sbs,
};
use rampart_model::Timestamp;

const AIRCRAFT: u32 = 500;
const STEPS: u32 = 200;

/// A realistic mix per aircraft and step: 2 positions, 1 velocity, and an identification
/// every fifth step, for `AIRCRAFT` aircraft on straight tracks.
fn avr_lines() -> Vec<String> {
    let mut out = Vec::new();
    for step in 0..STEPS {
        for a in 0..AIRCRAFT {
            let icao = 0x400000 + a;
            let lat = 45.0 + f64::from(a % 50) * 0.1 + f64::from(step) * 0.0005;
            let lon = 2.0 + f64::from(a / 50) * 0.2 + f64::from(step) * 0.001;
            for odd in [false, true] {
                out.push(encode::to_avr(&encode::airborne_position(
                    icao,
                    Some(30_000),
                    false,
                    lat,
                    lon,
                    odd,
                )));
            }
            out.push(encode::to_avr(&encode::velocity(
                icao,
                300,
                150,
                Some(-640),
                Some(200),
            )));
            if step % 5 == 0 {
                out.push(encode::to_avr(&encode::identification(
                    icao,
                    EmitterCategory { set: 'A', code: 3 },
                    "TEST123",
                )));
            }
        }
    }
    out
}

fn sbs_lines() -> Vec<String> {
    let mut out = Vec::new();
    for step in 0..STEPS {
        for a in 0..AIRCRAFT {
            let icao = 0x400000 + a;
            let lat = 45.0 + f64::from(a % 50) * 0.1 + f64::from(step) * 0.0005;
            let lon = 2.0 + f64::from(a / 50) * 0.2 + f64::from(step) * 0.001;
            out.push(format!(
                "MSG,3,1,1,{icao:06X},1,2026/01/02,10:00:00.000,2026/01/02,10:00:00.000,,30000,,,{lat:.5},{lon:.5},,,0,0,0,0"
            ));
            out.push(format!(
                "MSG,4,1,1,{icao:06X},1,2026/01/02,10:00:00.000,2026/01/02,10:00:00.000,,,335.4,63.4,,,-640,,0,0,0,0"
            ));
        }
    }
    out
}

fn rate(n: usize, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore]
fn bench_throughput() {
    let avr = avr_lines();
    let sbs = sbs_lines();

    let start = Instant::now();
    let mut ok = 0;
    for _ in 0..3 {
        for l in &avr {
            ok += usize::from(black_box(decode_avr(black_box(l))).is_ok());
        }
    }
    let avr_decode = rate(3 * avr.len(), start);
    assert_eq!(ok, 3 * avr.len());

    let mut tracker = AdsbTracker::new(TrackerConfig::default());
    let start = Instant::now();
    let mut reports = 0;
    let per_step = avr.len() / STEPS as usize;
    for (i, l) in avr.iter().enumerate() {
        // Steps are 1 s apart; lines within a step share the second.
        let now = Timestamp(1_700_000_000_000 + 1000 * (i / per_step) as i64);
        if let Ok(Some(r)) = tracker.ingest_avr(l, now) {
            reports += 1;
            black_box(r);
        }
    }
    let avr_tracked = rate(avr.len(), start);
    assert!(reports > avr.len() / 3, "{reports}");

    let start = Instant::now();
    let mut ok = 0;
    for _ in 0..3 {
        for l in &sbs {
            ok += usize::from(black_box(parse_sbs(black_box(l))).is_ok());
        }
    }
    let sbs_parse = rate(3 * sbs.len(), start);
    assert_eq!(ok, 3 * sbs.len());

    let mut tracker = AdsbTracker::new(TrackerConfig::default());
    let start = Instant::now();
    let per_step = sbs.len() / STEPS as usize;
    for (i, l) in sbs.iter().enumerate() {
        let now = Timestamp(1_700_000_000_000 + 1000 * (i / per_step) as i64);
        if let Ok(Some(r)) = tracker.ingest_sbs(l, now) {
            black_box(r);
        }
    }
    let sbs_tracked = rate(sbs.len(), start);

    println!("AVR decode (parse + CRC + ME):   {avr_decode:>12.0} messages/s");
    println!("AVR through the tracker:         {avr_tracked:>12.0} messages/s ({reports} reports)");
    println!("SBS parse:                       {sbs_parse:>12.0} lines/s");
    println!("SBS through the tracker:         {sbs_tracked:>12.0} lines/s");
}
