//! Regenerates the binary seed inputs under `fuzz/seeds/` (`tak_proto`, `history_segment`)
//! from the codec-cot sample corpus and from a real `SegmentLog`. The text seeds are plain
//! copies of the crates' samples and fixtures and are committed as they are.
//!
//! ```sh
//! cd fuzz && cargo run --example make_seeds
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rampart_codec_cot::{CotLimits, encode_mesh, encode_stream, parse_xml};
use rampart_codec_json::{DecodeOptions, decode_reports};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{Report, Timestamp};

const SEP: &[u8] = b"#FRAME#";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn tak_proto() {
    let samples = root().join("../crates/core/codec-cot/tests/samples");
    let mut names: Vec<_> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    let mut all_stream = vec![2u8];
    for name in &names {
        let xml = std::fs::read(samples.join(name)).unwrap();
        let ev = parse_xml(&xml, &CotLimits::default()).unwrap();
        let msg = ev.to_tak_message();
        let stem = name.trim_end_matches(".xml");
        let stream = encode_stream(&msg);
        // Mode 0: the bare payload (the stream frame without 0xbf and the length varint).
        let header = 1 + stream[1..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
        let mut payload = vec![0u8];
        payload.extend_from_slice(&stream[header..]);
        write("tak_proto", &format!("payload-{stem}"), &payload);
        // Mode 1: a mesh datagram.
        let mut mesh = vec![1u8];
        mesh.extend_from_slice(&encode_mesh(&msg));
        write("tak_proto", &format!("mesh-{stem}"), &mesh);
        if all_stream.len() < 2048 {
            all_stream.extend_from_slice(&stream);
        }
    }
    // Mode 2: a stream of several frames.
    write("tak_proto", "stream-several", &all_stream);
}

fn reports() -> Vec<Report> {
    let body = std::fs::read(root().join("seeds/json_reports/two-reports.json")).unwrap();
    let mut out: Vec<Report> = decode_reports(&body, &DecodeOptions::default())
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for i in 0..6 {
        let mut r = Report::new(
            &format!("mover-{}", i % 2),
            54.0 + f64::from(i) * 0.001,
            10.0 - f64::from(i) * 0.002,
            Timestamp(1_767_225_600_000 + i64::from(i) * 1_000),
        );
        r.cot_type = Some("a-f-G-U-C".into());
        r.speed = Some(3.5);
        r.course = Some(f64::from(i) * 10.0);
        out.push(r);
    }
    out
}

/// Frame payloads of a segment file.
fn frames(seg: &[u8]) -> Vec<&[u8]> {
    let mut pos = 32;
    let mut out = Vec::new();
    while pos + 8 <= seg.len() {
        let len = u32::from_le_bytes(seg[pos..pos + 4].try_into().unwrap()) as usize;
        out.push(&seg[pos + 8..pos + 8 + len]);
        pos += 8 + len;
    }
    out
}

fn history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("h");
    let mut cfg = SegmentLogConfig::new(&dir);
    cfg.fsync = false;
    let log = SegmentLog::open(cfg).unwrap();
    let rs = reports();
    // Two commits, so the segment holds two frames.
    let t = log.append(&rs[..3]).unwrap();
    log.wait_durable(t).unwrap();
    let t = log.append(&rs[3..]).unwrap();
    log.wait_durable(t).unwrap();
    log.close().unwrap();
    drop(log);
    let seg = std::fs::read(dir.join(format!("seg-{:020}.log", 1))).unwrap();
    let idx = std::fs::read(dir.join(format!("seg-{:020}.idx", 1))).unwrap();
    let payloads = frames(&seg);
    assert_eq!(payloads.len(), 2);

    let framed = |flags: u8, extra: Option<&[u8]>| {
        let mut v = vec![flags];
        v.extend_from_slice(&payloads.join(SEP));
        if let Some(e) = extra {
            v.extend_from_slice(SEP);
            v.extend_from_slice(e);
        }
        v
    };
    write("history_segment", "frames", &framed(0, None));
    let mut raw = vec![1u8];
    raw.extend_from_slice(&seg[32..]);
    write("history_segment", "raw", &raw);
    let mut torn = raw.clone();
    torn.truncate(torn.len() - 5);
    write("history_segment", "raw-torn", &torn);
    // The sidecar body: everything after seq and file_len.
    write("history_segment", "sidecar", &framed(2, Some(&idx[32..])));
    write(
        "history_segment",
        "sidecar-older",
        &framed(2 | 4, Some(&idx[32..])),
    );
}

fn adsb() {
    use rampart_codec_adsb::encode::{
        airborne_position, identification, status, surface_position, to_avr, velocity,
    };
    use rampart_codec_adsb::{EmitterCategory, Squawk};
    let a = 0x4840D6;
    // An airliner near the receiver: identification, two global pairs (acquisition and
    // confirmation), velocity with GNSS-minus-baro, local decodes, a squawk 7700 status.
    let mut lines = vec![to_avr(&identification(
        a,
        EmitterCategory { set: 'A', code: 3 },
        "KLM1023",
    ))];
    for i in 0..6 {
        let lat = 52.30 + f64::from(i) * 0.002;
        let lon = 4.70 + f64::from(i) * 0.003;
        lines.push(to_avr(&airborne_position(
            a,
            Some(12_000),
            false,
            lat,
            lon,
            i % 2 == 1,
        )));
        if i == 2 {
            lines.push(to_avr(&velocity(a, 250, 180, Some(-640), Some(-150))));
            lines.push(to_avr(&status(a, 1, Squawk(0o7700))));
        }
    }
    lines.push(to_avr(&airborne_position(
        a,
        Some(12_100),
        true,
        52.313,
        4.719,
        false,
    )));
    write(
        "adsb_avr",
        "encoded-airborne-track",
        (lines.join("\n") + "\n").as_bytes(),
    );
    // A ground vehicle at the airport (surface CPR needs the receiver position).
    let g = 0x4840D7;
    let mut lines = vec![to_avr(&identification(
        g,
        EmitterCategory { set: 'C', code: 1 },
        "TUG01",
    ))];
    for i in 0..5 {
        let lat = 52.3080 + f64::from(i) * 0.0002;
        let lon = 4.7640 + f64::from(i) * 0.0001;
        lines.push(to_avr(&surface_position(
            g,
            Some(12.0),
            Some(20.0),
            lat,
            lon,
            i % 2 == 1,
        )));
    }
    write(
        "adsb_avr",
        "encoded-surface",
        (lines.join("\n") + "\n").as_bytes(),
    );
}

fn main() {
    assert!(Path::new(&root().join("seeds/json_reports")).is_dir());
    tak_proto();
    history();
    adsb();
    println!("seeds written under {}", root().join("seeds").display());
}
