//! The decoders never panic: tens of thousands of mutated sentences (and fragment sequences)
//! through the assembler, decoder and tracker only ever give errors with a reason. Also the
//! single-core throughput bench (`--ignored`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::Instant;

use rampart_codec_ais::{
    AisTracker, Assembler, AssemblerConfig, TrackerConfig, decode_message, decode_single,
};
use rampart_codec_nmea::FrameOptions;
use rampart_model::Timestamp;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

const REASONS: &[&str] = &[
    "truncated",
    "garbage",
    "too_long",
    "bad_checksum",
    "missing_checksum",
    "unsupported_sentence",
    "bad_field",
    "bad_tag_block",
    "impossible_value",
    "orphan_fragment",
    "unsupported_message",
];

fn seeds() -> Vec<String> {
    let fixtures = include_str!("fixtures/public_samples.nmea");
    let mut v: Vec<String> = fixtures
        .lines()
        .filter(|l| l.starts_with('!'))
        .map(str::to_owned)
        .collect();
    v.extend(two_fragments(&type5(211_000_001, "NAME", 70, "DEST"), "4"));
    v.push(single(&type1(211_000_002, 12.5, -33.25, 55, 1234, 120)));
    v
}

#[test]
fn mutated_sentences_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let interesting = b"!$*,\\0123456789ABW`w@:;?~\x7f\xff\r\n ";
    let mut tracker = AisTracker::new(TrackerConfig::default());
    let mut asm = Assembler::new(AssemblerConfig {
        max_pending_groups: 8,
        ..AssemblerConfig::default()
    });
    let opts = FrameOptions::default();
    let mut now = Timestamp(1_767_225_600_000);
    let (mut ok, mut err) = (0u32, 0u32);
    for round in 0..60_000u32 {
        let base = seeds[(rng.next() as usize) % seeds.len()].as_bytes();
        let mut line = base.to_vec();
        // Keep some lines intact so fragment sequences complete and reach the tracker.
        if round % 4 != 0 {
            for _ in 0..(1 + rng.next() % 3) {
                if line.is_empty() {
                    break;
                }
                let i = (rng.next() as usize) % line.len();
                match rng.next() % 5 {
                    0 => line[i] = interesting[(rng.next() as usize) % interesting.len()],
                    1 => line[i] = rng.next() as u8,
                    2 => {
                        line.remove(i);
                    }
                    3 => line.insert(i, interesting[(rng.next() as usize) % interesting.len()]),
                    _ => line.truncate(i),
                }
            }
        }
        now = now.plus_millis((rng.next() % 700) as i64);
        for result in [
            decode_single(&line, &opts).map(|_| ()),
            asm.feed(&line, now).and_then(|p| match p {
                Some(p) => decode_message(&p).map(|_| ()),
                None => Ok(()),
            }),
            tracker.feed(&line, now).map(|_| ()),
        ] {
            match result {
                Ok(()) => ok += 1,
                Err(e) => {
                    err += 1;
                    assert!(REASONS.contains(&e.reason()), "{e}: {}", e.reason());
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        assert!(asm.pending() <= 8);
    }
    assert!(ok > 10_000 && err > 10_000, "ok {ok}, err {err}");
    assert!(tracker.counters().reports > 1_000);
}

/// Fragment soup: random fragment numbers, counts, sequence ids and channels.
#[test]
fn random_fragment_sequences_stay_bounded() {
    let mut rng = Rng(42);
    let mut asm = Assembler::new(AssemblerConfig {
        max_pending_groups: 16,
        ..AssemblerConfig::default()
    });
    let mut now = Timestamp(0);
    for _ in 0..30_000 {
        let count = 1 + (rng.next() % 4) as u8;
        let number = 1 + (rng.next() % u64::from(count)) as u8;
        let seq = (rng.next() % 10).to_string();
        let chan = ["A", "B", ""][(rng.next() % 3) as usize];
        let payload: String = (0..(1 + rng.next() % 60))
            .map(|_| {
                char::from(
                    b"0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVW`abcdefghijklmnopqrstuvw"
                        [(rng.next() % 64) as usize],
                )
            })
            .collect();
        let line = sentence(count, number, &seq, chan, &payload, (rng.next() % 6) as u8);
        now = now.plus_millis((rng.next() % 200) as i64);
        match asm.feed(line.as_bytes(), now) {
            Ok(Some(p)) => {
                let _ = decode_message(&p);
            }
            Ok(None) => {}
            Err(e) => assert!(
                REASONS.contains(&e.reason()) || e.reason() == "too_long",
                "{e}"
            ),
        }
        assert!(asm.pending() <= 16);
    }
}

#[test]
#[ignore = "benchmark: cargo test --release -p rampart-codec-ais -- --ignored --nocapture"]
fn bench_single_fragment_type_1_decode() {
    let mut rng = Rng(7);
    let lines: Vec<String> = (0..4096)
        .map(|_| {
            let lat = (rng.next() % 170_000) as f64 / 1000.0 - 85.0;
            let lon = (rng.next() % 350_000) as f64 / 1000.0 - 175.0;
            let mut b = type1(
                200_000_000 + (rng.next() % 500_000_000) as i64,
                lon,
                lat,
                (rng.next() % 300) as i64,
                (rng.next() % 3600) as i64,
                (rng.next() % 360) as i64,
            );
            b.0[4] = rng.next().is_multiple_of(3); // a mix of types 1 and 3
            single(&b)
        })
        .collect();
    let mut asm = Assembler::new(AssemblerConfig::default());
    let now = Timestamp(0);
    let mut checksum = 0u64;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < 2.0 {
        for l in &lines {
            let p = asm.feed(l.as_bytes(), now).unwrap().unwrap();
            let m = decode_message(&p).unwrap();
            checksum = checksum.wrapping_add(u64::from(m.mmsi()));
            n += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "AIS decode (frame + checksum + de-armor + type 1/3 fields): {rate:.0} sentences/s on one core [{checksum}]"
    );

    let mut tracker = AisTracker::new(TrackerConfig::default());
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < 1.0 {
        for l in &lines {
            let r = tracker.feed(l.as_bytes(), now).unwrap();
            checksum = checksum.wrapping_add(r.map_or(0, |r| r.lat.to_bits()));
            n += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "AIS tracker (decode + Report with attributes): {rate:.0} sentences/s on one core [{checksum}]"
    );
}
