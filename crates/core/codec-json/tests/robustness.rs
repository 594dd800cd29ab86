//! The decoder never panics: mutated and truncated versions of valid bodies only ever give
//! errors. A cheap, deterministic stand-in for the coverage-guided fuzzing of the fuzz targets.
#![allow(clippy::unwrap_used)]

use rampart_codec_json::{DecodeOptions, decode_reports};

const SEED_BODY: &str = r#"[{"uid":"a-1","type":"a-f-G-U-C","callsign":"ALPHA","lat":54.3,"lon":10.1,"hae":12,"ce":5,"le":9,
"course":270.5,"speed":3.2,"how":"m-g","time":"2026-01-01T00:00:00.123Z","start":"2026-01-01T00:00:00Z",
"stale":"2026-01-01T00:05:00Z","attributes":{"fuel":0.5,"fw":"1.2.3"},"label":{"classification":"SECRET",
"releasability":["NATO","FVEY"]},"id":{"source":"gw","seq":1}},{"uid":"b","lat":-1,"lon":-2,"time":"2026-01-01T00:00:00Z","id":"k"}]"#;

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

#[test]
fn mutated_bodies_never_panic() {
    let opts = DecodeOptions::default();
    let base = SEED_BODY.as_bytes();
    assert!(
        decode_reports(base, &opts)
            .unwrap()
            .iter()
            .all(|r| r.is_ok())
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let interesting = b"{}[]\",:0-9eE.+\\u\0\xff ntf";
    for _ in 0..20_000 {
        let mut body = base.to_vec();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % body.len();
            match rng.next() % 4 {
                0 => body[i] = interesting[(rng.next() as usize) % interesting.len()],
                1 => body[i] = rng.next() as u8,
                2 => {
                    body.remove(i);
                }
                _ => body.truncate(i.max(1)),
            }
            if body.is_empty() {
                break;
            }
        }
        // Any outcome but a panic is fine; errors must carry a message.
        match decode_reports(&body, &opts) {
            Ok(items) => {
                for e in items.iter().filter_map(|r| r.as_ref().err()) {
                    assert!(!e.reason.is_empty());
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
