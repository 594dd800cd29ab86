//! Temporary profiling harness (callgrind / perf). Not part of the crate.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use rampart_codec_cot::{CotLimits, XmlStreamSplitter, encode_xml, parse_xml};

const PLI: &str = r#"<event version="2.0" uid="ANDROID-5895" type="a-f-G-U-C" time="2024-05-14T09:21:33.412Z" start="2024-05-14T09:21:33.412Z" stale="2024-05-14T09:27:48.412Z" how="m-g"><point lat="50.85034" lon="4.35171" hae="71.2" ce="4.9" le="9999999"/><detail><contact callsign="HOPE"/><status battery="87"/><track course="127.3" speed="1.42"/></detail></event>"#;
const ATAK: &str = include_str!("../tests/samples/pli-atak.xml");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("parse", String::as_str);
    let n: u32 = args.get(2).map_or(100_000, |s| s.parse().unwrap());
    let input = if args.get(3).map(String::as_str) == Some("atak") {
        ATAK
    } else {
        PLI
    };
    let limits = CotLimits::default();
    let ev = parse_xml(input.as_bytes(), &limits).unwrap();
    let t = std::time::Instant::now();
    match mode {
        "parse" => {
            for _ in 0..n {
                black_box(parse_xml(black_box(input.as_bytes()), &limits).unwrap());
            }
        }
        "encode" => {
            for _ in 0..n {
                black_box(encode_xml(black_box(&ev)));
            }
        }
        "report" => {
            for _ in 0..n {
                black_box(black_box(&ev).to_report().unwrap());
            }
        }
        "split" => {
            let mut stream = Vec::new();
            for _ in 0..n {
                stream.extend_from_slice(input.as_bytes());
            }
            let mut s = XmlStreamSplitter::default();
            for c in stream.chunks(1024) {
                s.push(c);
                while let Some(f) = s.next_frame().unwrap() {
                    black_box(f);
                }
            }
        }
        _ => panic!("mode"),
    }
    let s = t.elapsed().as_secs_f64();
    eprintln!(
        "{mode} {} bytes: {:.0} ns/op, {:.0} ops/s",
        input.len(),
        s * 1e9 / f64::from(n),
        f64::from(n) / s
    );
}
