//! Bad input is rejected with the right reason, mutated sentences never panic, and the
//! single-core throughput bench (`--ignored`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use rampart_codec_nmea::{
    FrameOptions, GpsSource, GpsSourceConfig, NmeaError, Sentence, SourceMapping, checksum, decode,
};
use rampart_model::Timestamp;

fn line(body: &str) -> String {
    format!("${body}*{:02X}", checksum(body.as_bytes()))
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
];

#[test]
fn bad_input_is_rejected_with_the_right_reason() {
    let opts = FrameOptions::default();
    let gga = "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,";
    let good = line(gga);
    assert!(decode(good.as_bytes(), &opts).is_ok());
    let tag = |inner: &str| format!("\\{inner}*{:02X}\\{good}", checksum(inner.as_bytes()));
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        (
            good.replace("*47", "*48"),
            "bad_checksum",
            Some("checksum mismatch: computed 47, sentence says 48"),
        ),
        (good.replace("*47", "*4"), "bad_checksum", None),
        (good.replace("*47", "*ZZ"), "bad_checksum", None),
        (format!("${gga}"), "missing_checksum", None),
        (
            line("GPGGA,123519,4807.038,N"),
            "truncated",
            Some("GGA has 3 fields, needs at least 14"),
        ),
        (line("GPGGA"), "truncated", None),
        ("".into(), "truncated", None),
        ("\r\n".into(), "truncated", None),
        ("garbage".into(), "garbage", None),
        ("$GPG\u{7f}GA,1*00".into(), "garbage", None),
        (line("GPGGAX,1"), "garbage", None),
        (
            line(&format!("GPGGA,{}", "1,".repeat(70))),
            "too_long",
            None,
        ),
        (line("GPTXT,01,01,02,hello"), "unsupported_sentence", None),
        (
            line("PGRME,15.0,M,45.0,M,25.0,M"),
            "unsupported_sentence",
            None,
        ),
        (
            line("GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,46.9,M,,"),
            "bad_field",
            Some(r#"GGA field 6 (fix quality): "x" is not a number"#),
        ),
        (
            line("GPGGA,256019,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            "bad_field",
            None,
        ),
        (
            line("GPGGA,123519,4807.038,Q,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            "bad_field",
            None,
        ),
        (
            line("GPGGA,123519,9107.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            "bad_field",
            None,
        ),
        (
            line("GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            "bad_field",
            None,
        ),
        (
            line("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,310294,003.1,W"),
            "bad_field",
            None,
        ),
        (
            line("GPRMC,123519,X,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
            "bad_field",
            None,
        ),
        (
            line("GPVTG,054.7,T,034.4,M,005.5,N,010.2,X"),
            "bad_field",
            None,
        ),
        (line("GPGSV,2,3,08"), "bad_field", None),
        (
            line(&format!("GPGSV,1,1,08{}", ",1".repeat(30))),
            "bad_field",
            None,
        ),
        ("\\s:x*00\\$GPGGA".into(), "bad_tag_block", None),
        ("\\s:x,c:1".into(), "bad_tag_block", None),
        (tag("c:notanumber"), "bad_tag_block", None),
    ];
    for (input, reason, message) in cases {
        let e = decode(input.as_bytes(), &opts).unwrap_err();
        assert_eq!(e.reason(), reason, "{input:?}: {e}");
        if let Some(m) = message {
            assert_eq!(e.to_string(), m);
        }
    }
    // Tolerated: CR/LF, tag blocks, and missing checksums when configured.
    assert!(decode(format!("{good}\r\n").as_bytes(), &opts).is_ok());
    assert!(decode(tag("s:station-1,c:1700000000").as_bytes(), &opts).is_ok());
    let lax = FrameOptions {
        require_checksum: false,
        ..FrameOptions::default()
    };
    assert!(decode(format!("${gga}").as_bytes(), &lax).is_ok());
    // The 128-byte default limit and its configurable bound.
    let strict = FrameOptions {
        max_sentence_len: 60,
        ..FrameOptions::default()
    };
    assert!(matches!(
        decode(good.as_bytes(), &strict),
        Err(NmeaError::TooLong { max: 60, .. })
    ));
}

#[test]
fn impossible_reports_are_rejected_by_the_source() {
    let mut s = GpsSource::new(
        SourceMapping {
            uid: "".into(), // an empty uid can never be folded
            cot_type: "a-f-G".into(),
            callsign: None,
        },
        GpsSourceConfig::default(),
    );
    let mut out = Vec::new();
    let g = line("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,");
    s.feed(g.as_bytes(), Timestamp(0), &mut out).unwrap();
    let e = s.flush(Timestamp(0), &mut out).unwrap_err();
    assert_eq!(e.reason(), "impossible_value");
    assert!(out.is_empty());
}

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

fn seeds() -> Vec<String> {
    include_str!("fixtures/public_samples.nmea")
        .lines()
        .filter(|l| l.starts_with('$'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn mutated_sentences_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let interesting = b"$!*,.\\-+0123456789ANSEWVMT\x7f\xff\r\n ";
    let opts = FrameOptions::default();
    let mut source = GpsSource::new(
        SourceMapping {
            uid: "gps-1".into(),
            cot_type: "a-f-G".into(),
            callsign: None,
        },
        GpsSourceConfig::default(),
    );
    let mut out = Vec::new();
    let mut now = Timestamp(1_767_225_600_000);
    let (mut ok, mut err) = (0u32, 0u32);
    for round in 0..60_000u32 {
        let mut input = seeds[(rng.next() as usize) % seeds.len()]
            .as_bytes()
            .to_vec();
        if round % 4 != 0 {
            for _ in 0..(1 + rng.next() % 3) {
                if input.is_empty() {
                    break;
                }
                let i = (rng.next() as usize) % input.len();
                match rng.next() % 5 {
                    0 => input[i] = interesting[(rng.next() as usize) % interesting.len()],
                    1 => input[i] = rng.next() as u8,
                    2 => {
                        input.remove(i);
                    }
                    3 => input.insert(i, interesting[(rng.next() as usize) % interesting.len()]),
                    _ => input.truncate(i),
                }
            }
            // Re-seal half of the mutants so the field parsers, not just the checksum, see them.
            if rng.next().is_multiple_of(2)
                && let Some(star) = input.iter().rposition(|&b| b == b'*')
                && star >= 1
            {
                let cs = checksum(&input[1..star]);
                input.truncate(star + 1);
                input.extend_from_slice(format!("{cs:02X}").as_bytes());
            }
        }
        now = now.plus_millis((rng.next() % 400) as i64);
        for result in [
            decode(&input, &opts).map(|_| ()),
            source.feed(&input, now, &mut out),
            source.poll(now, &mut out),
        ] {
            match result {
                Ok(()) => ok += 1,
                Err(e) => {
                    err += 1;
                    assert!(REASONS.contains(&e.reason()), "{e}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        for r in out.drain(..) {
            rampart_model::Limits::default().validate(&r).unwrap();
        }
    }
    assert!(ok > 10_000 && err > 10_000, "ok {ok}, err {err}");
    assert!(source.counters().reports > 100);
}

#[test]
#[ignore = "benchmark: cargo test --release -p rampart-codec-nmea -- --ignored --nocapture"]
fn bench_decode_realistic_mix() {
    let mut rng = Rng(3);
    // One epoch of a typical receiver: RMC, VTG, GGA, GSA, 3×GSV, GLL, ZDA.
    let mut lines = Vec::new();
    for k in 0..512u64 {
        let t = format!("{:02}{:02}{:02}.00", (k / 3600) % 24, (k / 60) % 60, k % 60);
        let lat = format!(
            "{:02}{:07.4}",
            rng.next() % 90,
            (rng.next() % 600_000) as f64 / 10_000.0
        );
        let lon = format!(
            "{:03}{:07.4}",
            rng.next() % 180,
            (rng.next() % 600_000) as f64 / 10_000.0
        );
        for body in [
            format!("GNRMC,{t},A,{lat},N,{lon},E,12.34,84.4,010126,3.1,W,D"),
            "GNVTG,84.4,T,81.3,M,12.34,N,22.85,K,D".to_string(),
            format!("GNGGA,{t},{lat},N,{lon},E,2,12,0.9,545.4,M,46.9,M,1.2,0031"),
            "GNGSA,A,3,04,05,09,12,24,25,29,31,,,,,1.8,0.9,1.5".to_string(),
            "GPGSV,3,1,11,10,63,137,17,07,61,098,15,05,59,290,20,08,54,157,30".to_string(),
            "GPGSV,3,2,11,02,39,223,19,13,28,070,17,26,23,252,,04,14,186,14".to_string(),
            "GPGSV,3,3,11,29,09,301,24,16,09,020,,36,,,".to_string(),
            format!("GNGLL,{lat},N,{lon},E,{t},A,D"),
            format!("GNZDA,{t},01,01,2026,00,00"),
        ] {
            lines.push(format!("{}\r\n", line(&body)));
        }
    }
    let opts = FrameOptions::default();
    let mut sink = 0u64;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < 2.0 {
        for l in &lines {
            let s = decode(l.as_bytes(), &opts).unwrap();
            sink = sink.wrapping_add(match s {
                Sentence::Gga(g) => u64::from(g.satellites.unwrap_or(0)),
                _ => 1,
            });
            n += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("NMEA decode (realistic epoch mix): {rate:.0} sentences/s on one core [{sink}]");

    let mut source = GpsSource::new(
        SourceMapping {
            uid: "gps-1".into(),
            cot_type: "a-f-G".into(),
            callsign: None,
        },
        GpsSourceConfig::default(),
    );
    let mut out = Vec::with_capacity(1024);
    let start = Instant::now();
    let mut n = 0u64;
    let mut reports = 0usize;
    while start.elapsed().as_secs_f64() < 1.0 {
        for l in &lines {
            source
                .feed(l.as_bytes(), Timestamp(1_767_225_600_000), &mut out)
                .unwrap();
            n += 1;
        }
        reports += out.len();
        out.clear();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "NMEA GpsSource (decode + epoch fusion + Report): {rate:.0} sentences/s on one core ({reports} reports)"
    );
}
