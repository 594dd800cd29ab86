//! The decoders never panic and the tracker never teleports: mutated, truncated and forged
//! input only ever gives errors with a known reason. A cheap, deterministic stand-in for
//! coverage-guided fuzzing (same pattern as rampart-codec-json's robustness test).
#![allow(clippy::unwrap_used)]

use rampart_codec_adsb::{
    AdsbTracker, EmitterCategory, TrackerConfig, decode_avr, decode_frame, distance_m, encode,
    parse_avr, parse_sbs,
};
use rampart_model::{Limits, Timestamp};

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
    "bad_field",
    "bad_crc",
    "unsupported",
    "impossible_value",
    "no_cpr_pair",
    "cpr_zone_mismatch",
    "no_reference",
    "unconfirmed",
];

fn seeds() -> Vec<String> {
    let mut v: Vec<String> = [
        "*8D4840D6202CC371C32CE0576098;",
        "*8D40621D58C382D690C8AC2863A7;",
        "*8D40621D58C386435CC412692AD6;",
        "*8D485020994409940838175B284F;",
        "*8DA05F219B06B6AF189400CBC33F;",
        "*8C4841753AAB238733C8CD4020B1;",
        "@0000012345678D4840D6202CC371C32CE0576098;",
        "*5D4840D6AABBCC;",
        "MSG,1,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,KLM1023,,,,,,,,,,,",
        "MSG,2,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,,18,140.6,52.32061,4.73473,,,,,,-1",
        "MSG,3,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,36000,,,52.25,4.0,,,0,0,0,0",
        "MSG,4,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,,420.5,90.0,,,-832,,,,,0",
        "MSG,6,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,36000,,,,,,7700,-1,-1,0,0",
        "SEL,,496,2286,4CA4E5,27215,2010/02/19,18:06:07.710,2010/02/19,18:06:07.710,RYR1427",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..8 {
        let lat = 52.25 + 0.001 * f64::from(i);
        v.push(encode::to_avr(&encode::airborne_position(
            0x4840D6,
            Some(36_000),
            false,
            lat,
            4.0,
            i % 2 == 1,
        )));
        v.push(encode::to_avr(&encode::surface_position(
            0x4840D6,
            Some(12.0),
            Some(90.0),
            lat,
            4.0,
            i % 2 == 1,
        )));
    }
    v.push(encode::to_avr(&encode::velocity(
        0x4840D6,
        400,
        -30,
        Some(640),
        Some(100),
    )));
    v.push(encode::to_avr(&encode::identification(
        0x4840D6,
        EmitterCategory { set: 'A', code: 3 },
        "KLM1023",
    )));
    v
}

#[test]
fn mutated_lines_never_panic() {
    let seeds = seeds();
    for s in &seeds {
        assert!(
            decode_avr(s).is_ok()
                || parse_sbs(s).is_ok()
                || s.starts_with("SEL")
                || s.starts_with("*5D"),
            "seed {s} must be valid"
        );
    }
    let mut tracker = AdsbTracker::new(TrackerConfig {
        max_aircraft: 64,
        receiver: Some((52.0, 4.5)),
        ..TrackerConfig::default()
    });
    let limits = Limits::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let interesting = b"*@;,-.0123456789ABCDEFabcdef~MSG \0\xff\r\n";
    let mut reports = 0;
    let mut rejected = 0;
    for n in 0..60_000i64 {
        let seed = &seeds[(rng.next() as usize) % seeds.len()];
        let mut line = seed.as_bytes().to_vec();
        for _ in 0..(1 + rng.next() % 4) {
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
        let text = String::from_utf8_lossy(&line);
        let now = Timestamp(1_700_000_000_000 + 100 * n);
        let _ = parse_avr(&text);
        let _ = parse_sbs(&text);
        for out in [
            tracker.ingest_avr(&text, now),
            tracker.ingest_sbs(&text, now),
        ] {
            match out {
                Ok(Some(r)) => {
                    limits.validate(&r).unwrap();
                    reports += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    assert!(REASONS.contains(&e.reason()), "{e:?}");
                    assert!(!e.to_string().is_empty());
                    rejected += 1;
                }
            }
        }
    }
    assert!(tracker.len() <= 64);
    assert!(reports > 0 && rejected > 0, "{reports} {rejected}");
}

#[test]
fn random_frames_never_panic() {
    let mut rng = Rng(0x1090_1090_1090_1090);
    let mut tracker = AdsbTracker::new(TrackerConfig::default());
    for n in 0..40_000i64 {
        let mut frame = [0u8; 14];
        for b in frame.iter_mut() {
            *b = rng.next() as u8;
        }
        let len = [7, 14, 14, 14, 0, 3][(rng.next() % 6) as usize];
        let _ = decode_frame(&frame[..len]);
        // The same, made CRC-valid DF17: the ME field decoders see every bit pattern.
        let forged = encode::frame(17, 5, (rng.next() & 0xFF) as u32, rng.next());
        if let Ok(f) = decode_frame(&forged) {
            let _ = tracker.ingest_frame(&f, Timestamp(1_700_000_000_000 + 50 * n));
        }
    }
    assert!(tracker.len() <= 256);
}

/// One genuine aircraft, with a third of its position frames replaced by CRC-valid forgeries
/// (same address, random CPR): every report stays on the true trajectory.
#[test]
fn forged_frames_never_move_a_track() {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let mut tracker = AdsbTracker::new(TrackerConfig::default());
    let icao = 0x3C6586;
    let truth = |i: i64| (48.1 + 0.0005 * i as f64, 11.2 + 0.0015 * i as f64);
    let (mut reports, mut rejected) = (0, 0);
    for i in 0..20_000i64 {
        let now = Timestamp(1_700_000_000_000 + 500 * i);
        let odd = rng.next() % 2 == 1;
        let frame = if rng.next().is_multiple_of(3) {
            let lat = (rng.next() & 0x1_FFFF) as u32;
            let lon = (rng.next() & 0x1_FFFF) as u32;
            encode::airborne_position_raw(icao, Some(30_000), false, lat, lon, odd)
        } else {
            let (lat, lon) = truth(i);
            encode::airborne_position(icao, Some(30_000), false, lat, lon, odd)
        };
        match tracker.ingest_frame(&decode_frame(&frame).unwrap(), now) {
            Ok(Some(r)) => {
                let d = distance_m((r.lat, r.lon), truth(i));
                assert!(
                    d < 3_000.0,
                    "step {i}: report {:.5},{:.5} is {d:.0} m off",
                    r.lat,
                    r.lon
                );
                reports += 1;
            }
            Ok(None) => unreachable!("position frames always report or fail"),
            Err(_) => rejected += 1,
        }
    }
    // Forgeries cost availability, never integrity; most genuine frames still get through.
    assert!(reports > 5_000, "{reports} reports, {rejected} rejected");
}

/// Caller-supplied times are arbitrary: extremes and time running backwards never overflow.
#[test]
fn extreme_times_never_panic() {
    let mut tracker = AdsbTracker::new(TrackerConfig::default());
    let times = [
        i64::MIN,
        i64::MAX,
        0,
        -1,
        i64::MIN + 1,
        1_700_000_000_000,
        i64::MAX - 1,
    ];
    for (i, &t) in times.iter().cycle().take(70).enumerate() {
        let frame = encode::airborne_position(0x123456, Some(1000), false, 10.0, 20.0, i % 2 == 1);
        let _ = tracker.ingest_frame(&decode_frame(&frame).unwrap(), Timestamp(t));
        let line = "MSG,3,1,1,123456,1,,,,,,1000,,,10.0,20.0,,,,,,";
        let _ = tracker.ingest_sbs(line, Timestamp(t));
        let _ = tracker.expire(Timestamp(t));
    }
}
