//! Throughput figures for the lead to quote. Ignored by default; run with
//! `cargo test --release -p rampart-codec-cot --test bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use rampart_codec_cot::{
    CotEvent, CotLimits, ProtoStreamSplitter, XmlStreamSplitter, decode_payload, encode_stream,
    encode_xml, parse_xml,
};

/// A compact PLI of about 330 bytes (position, callsign, battery, track).
const PLI: &str = r#"<event version="2.0" uid="ANDROID-5895" type="a-f-G-U-C" time="2024-05-14T09:21:33.412Z" start="2024-05-14T09:21:33.412Z" stale="2024-05-14T09:27:48.412Z" how="m-g"><point lat="50.85034" lon="4.35171" hae="71.2" ce="4.9" le="9999999"/><detail><contact callsign="HOPE"/><status battery="87"/><track course="127.3" speed="1.42"/></detail></event>"#;

fn rate(name: &str, n: u32, bytes: usize, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{name:<28} {:>10.0} events/s  {:>7.1} MB/s  ({:.0} ns/event)",
        f64::from(n) / s,
        (bytes as f64 * f64::from(n)) / s / 1e6,
        s * 1e9 / f64::from(n)
    );
}

#[test]
#[ignore = "benchmark: run explicitly in release mode"]
fn codec_rates() {
    let limits = CotLimits::default();
    let ev = parse_xml(PLI.as_bytes(), &limits).unwrap();
    let msg = ev.to_tak_message();
    let frame = encode_stream(&msg);
    let mut split = ProtoStreamSplitter::default();
    split.push(&frame);
    let payload = split.next_frame().unwrap().unwrap();
    let payload = &payload[..];
    println!(
        "PLI: {} bytes XML, {} bytes protobuf frame",
        PLI.len(),
        frame.len()
    );
    let n = 200_000;
    rate("XML parse", n, PLI.len(), || {
        black_box(parse_xml(black_box(PLI.as_bytes()), &limits).unwrap());
    });
    rate("XML encode", n, PLI.len(), || {
        black_box(encode_xml(black_box(&ev)));
    });
    rate("proto decode (+to event)", n, frame.len(), || {
        let m = decode_payload(black_box(payload)).unwrap();
        black_box(CotEvent::from_tak_message(&m, &limits).unwrap());
    });
    rate("proto encode (from event)", n, frame.len(), || {
        black_box(encode_stream(&black_box(&ev).to_tak_message()));
    });
    rate("event -> report", n, PLI.len(), || {
        black_box(black_box(&ev).to_report().unwrap());
    });
    let mut stream = Vec::new();
    for _ in 0..1000 {
        stream.extend_from_slice(PLI.as_bytes());
    }
    rate("XML split (x1000, 1 KiB reads)", 200, stream.len(), || {
        let mut s = XmlStreamSplitter::default();
        for c in stream.chunks(1024) {
            s.push(c);
            while let Some(f) = s.next_frame().unwrap() {
                black_box(f);
            }
        }
    });
    let mut pstream = Vec::new();
    for _ in 0..1000 {
        pstream.extend_from_slice(&frame);
    }
    rate(
        "proto split (x1000, 1 KiB reads)",
        200,
        pstream.len(),
        || {
            let mut s = ProtoStreamSplitter::default();
            for c in pstream.chunks(1024) {
                s.push(c);
                while let Some(f) = s.next_frame().unwrap() {
                    black_box(f);
                }
            }
        },
    );
}

#[test]
#[ignore = "profiling aid: XML parse only"]
fn xml_parse_only() {
    let limits = CotLimits::default();
    for _ in 0..300_000 {
        black_box(parse_xml(black_box(PLI.as_bytes()), &limits).unwrap());
    }
}

/// The ~590-byte ATAK PLI the TAK load generator writes (`crates/app/bench/src/tak.rs`,
/// `write_pli`): what the server ingests in the TAK benchmark.
fn atak_pli(seq: u64) -> String {
    format!(
        "<event version=\"2.0\" uid=\"ANDROID-rb7-i01-{seq:05}\" type=\"a-f-G-U-C\" how=\"m-g\" \
         time=\"2026-11-29T09:21:33.412Z\" start=\"2026-11-29T09:21:33.412Z\" \
         stale=\"2026-11-29T09:23:33Z\"><point lat=\"{lat:.6}\" lon=\"{lon:.6}\" hae=\"512.3\" \
         ce=\"4.9\" le=\"9999999.0\"/><detail><takv os=\"34\" version=\"5.2.0.8\" \
         device=\"GOOGLE PIXEL 7\" platform=\"ATAK-CIV\"/><contact endpoint=\"*:-1:stcp\" \
         callsign=\"RB-I1-{seq}\"/><uid Droid=\"RB-I1-{seq}\"/><precisionlocation altsrc=\"GPS\" \
         geopointsrc=\"GPS\"/><__group role=\"Team Member\" name=\"Cyan\"/><status \
         battery=\"{bat}\"/><track course=\"{course}.0\" speed=\"1.4\"/><remarks>seq={seq} \
         t={t_us}</remarks></detail></event>",
        lat = 48.1 + (seq % 10_000) as f64 * 1e-6,
        lon = 11.5 + (seq % 10_000) as f64 * 1e-6,
        bat = 100 - seq % 80,
        course = seq % 360,
        t_us = 1_000_000 + seq * 7,
    )
}

/// Events per run of the profiling aids below (`RAMPART_BENCH_N`, default 20 000).
fn profile_n() -> u64 {
    std::env::var("RAMPART_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Profiling aid (callgrind): the server's ingest path, `next_event` then `to_report_with`,
/// over a stream of realistic ATAK PLIs read in 64 KiB chunks. `RAMPART_BENCH_STAGE=split`
/// stops after `next_event`.
#[test]
#[ignore = "profiling aid: run under callgrind"]
fn ingest_atak_pli() {
    let n = profile_n();
    let report = std::env::var("RAMPART_BENCH_STAGE").as_deref() != Ok("split");
    let mut stream = Vec::new();
    for seq in 0..n {
        stream.extend_from_slice(atak_pli(seq).as_bytes());
    }
    println!("PLI: {} bytes", atak_pli(1).len());
    assert_eq!(ingest_loop(&stream, report), n);
}

/// The measured part of [`ingest_atak_pli`] (callgrind: `--toggle-collect='*ingest_loop*'`).
#[inline(never)]
fn ingest_loop(stream: &[u8], report: bool) -> u64 {
    let limits = CotLimits::default();
    let model = rampart_model::Limits::default();
    let mut s = XmlStreamSplitter::default();
    let mut got = 0;
    // The loop of the TAK edge's session: the one-pass path, else the lexer and parse_xml.
    for c in stream.chunks(64 * 1024) {
        s.push(c);
        loop {
            let ev = match s.next_event(&limits) {
                Some((frame, ev)) => {
                    black_box(&frame);
                    ev
                }
                None => match s.next_frame().unwrap() {
                    Some(f) => parse_xml(&f, &limits).unwrap(),
                    None => break,
                },
            };
            if report {
                black_box(ev.to_report_with(&model).unwrap());
            } else {
                black_box(ev);
            }
            got += 1;
        }
    }
    got
}
