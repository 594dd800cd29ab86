//! Byte compatibility with the reference Python implementation `takproto` (3.0.1, used by
//! pytak): it parses what we encode field for field, and we decode what it encodes.
//!
//! Needs the interpreter made by `scripts/python-env` (or `$RAMPART_PYTHON`). Without it the
//! test FAILS on purpose: interoperability must not silently go untested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use rampart_codec_cot::proto::{self, TakMessage};
use rampart_codec_cot::{
    CotEvent, CotLimits, ProtoStreamSplitter, decode_mesh, encode_mesh, encode_stream, parse_xml,
};
use serde_json::{Value, json};

fn python() -> PathBuf {
    let path = std::env::var_os("RAMPART_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/pyenv/bin/python"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "no Python with takproto at {}: run scripts/python-env (or set RAMPART_PYTHON)",
        path.display()
    );
    path
}

/// `dump(m)` prints every field of a TakMessage, defaults included, as JSON.
const SCRIPT: &str = r#"
import sys, json, struct
import takproto
from takproto import TAKProtoVer

def bits(x):
    # Doubles compared by bit pattern: JSON number parsing is not always exact.
    return struct.pack("<d", x).hex()

def sub(d, name, fields):
    if not d.HasField(name):
        return None
    m = getattr(d, name)
    return [getattr(m, f) for f in fields]

def dump(m):
    e = m.cotEvent
    d = e.detail
    c = m.takControl
    return {
        "control": [c.minProtoVersion, c.maxProtoVersion, c.contactUid] if m.HasField("takControl") else None,
        "event": None if not m.HasField("cotEvent") else {
            "type": e.type, "access": e.access, "qos": e.qos, "opex": e.opex, "uid": e.uid,
            "sendTime": e.sendTime, "startTime": e.startTime, "staleTime": e.staleTime,
            "how": e.how, "lat": bits(e.lat), "lon": bits(e.lon), "hae": bits(e.hae),
            "ce": bits(e.ce), "le": bits(e.le),
            "detail": None if not e.HasField("detail") else {
                "xmlDetail": d.xmlDetail,
                "contact": sub(d, "contact", ["endpoint", "callsign"]),
                "group": sub(d, "group", ["name", "role"]),
                "precisionLocation": sub(d, "precisionLocation", ["geopointsrc", "altsrc"]),
                "status": sub(d, "status", ["battery"]),
                "takv": sub(d, "takv", ["device", "platform", "os", "version"]),
                "track": [bits(d.track.speed), bits(d.track.course)] if d.HasField("track") else None,
            },
        },
    }

mode = sys.argv[1]
if mode == "parse":
    for line in sys.stdin:
        print(json.dumps(dump(takproto.parse_proto(bytearray.fromhex(line.strip())))))
else:
    ver = TAKProtoVer.STREAM if mode == "stream" else TAKProtoVer.MESH
    for path in sys.argv[2:]:
        b = takproto.xml2proto(open(path, "rb").read(), ver)
        print(bytes(b).hex() + " " + json.dumps(dump(takproto.parse_proto(b))))
"#;

fn run(args: &[&str], stdin: &str) -> Vec<String> {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn bits(x: f64) -> String {
    hex(&x.to_le_bytes())
}

/// Our message in the same shape as the script's `dump`.
fn dump(m: &TakMessage) -> Value {
    let sub = |present: bool, v: Value| if present { v } else { Value::Null };
    json!({
        "control": m.tak_control.as_ref().map(|c| json!([c.min_proto_version, c.max_proto_version, c.contact_uid])),
        "event": m.cot_event.as_ref().map(|e| json!({
            "type": e.r#type, "access": e.access, "qos": e.qos, "opex": e.opex, "uid": e.uid,
            "sendTime": e.send_time, "startTime": e.start_time, "staleTime": e.stale_time,
            "how": e.how, "lat": bits(e.lat), "lon": bits(e.lon), "hae": bits(e.hae),
            "ce": bits(e.ce), "le": bits(e.le),
            "detail": e.detail.as_ref().map(|d| json!({
                "xmlDetail": d.xml_detail,
                "contact": sub(d.contact.is_some(), d.contact.as_ref().map(|c| json!([c.endpoint, c.callsign])).into()),
                "group": sub(d.group.is_some(), d.group.as_ref().map(|g| json!([g.name, g.role])).into()),
                "precisionLocation": sub(d.precision_location.is_some(), d.precision_location.as_ref().map(|p| json!([p.geopointsrc, p.altsrc])).into()),
                "status": sub(d.status.is_some(), d.status.as_ref().map(|s| json!([s.battery])).into()),
                "takv": sub(d.takv.is_some(), d.takv.as_ref().map(|t| json!([t.device, t.platform, t.os, t.version])).into()),
                "track": sub(d.track.is_some(), d.track.as_ref().map(|t| json!([bits(t.speed), bits(t.course)])).into()),
            })),
        })),
    })
}

fn sample_paths() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn takproto_parses_our_stream_and_mesh_bytes() {
    let mut messages = Vec::new();
    for path in sample_paths() {
        let ev = parse_xml(&std::fs::read(&path).unwrap(), &CotLimits::default()).unwrap();
        messages.push(ev.to_tak_message());
    }
    messages.push(TakMessage {
        tak_control: Some(proto::TakControl {
            min_proto_version: 1,
            max_proto_version: 1,
            contact_uid: "ANDROID-1".into(),
        }),
        ..Default::default()
    });
    let mut input = String::new();
    for m in &messages {
        input.push_str(&hex(&encode_stream(m)));
        input.push('\n');
        input.push_str(&hex(&encode_mesh(m)));
        input.push('\n');
    }
    let lines = run(&["parse"], &input);
    assert_eq!(lines.len(), messages.len() * 2);
    for (i, m) in messages.iter().enumerate() {
        let want = dump(m);
        for line in &lines[2 * i..2 * i + 2] {
            let got: Value = serde_json::from_str(line).unwrap();
            assert_eq!(got, want, "takproto read message {i} differently");
        }
    }
}

#[test]
fn we_decode_takproto_bytes() {
    let paths: Vec<_> = sample_paths()
        .into_iter()
        // takproto's own XML reader cannot handle namespaces or zone offsets.
        .filter(|p| !p.ends_with("sensor-namespaced.xml"))
        .collect();
    let args: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    for mode in ["stream", "mesh"] {
        let mut a = vec![mode];
        a.extend(args.iter().map(String::as_str));
        let lines = run(&a, "");
        assert_eq!(lines.len(), paths.len());
        for (path, line) in paths.iter().zip(&lines) {
            let (bytes, their_view) = line.split_once(' ').unwrap();
            let bytes = unhex(bytes);
            let msg = if mode == "stream" {
                let mut s = ProtoStreamSplitter::default();
                s.push(&bytes);
                let m = s.next_message().unwrap().unwrap();
                assert_eq!(s.buffered(), 0);
                m
            } else {
                decode_mesh(&bytes).unwrap()
            };
            // Field for field, we read exactly what takproto wrote.
            let their_view: Value = serde_json::from_str(their_view).unwrap();
            assert_eq!(dump(&msg), their_view, "{}", path.display());
            // And the event means what the XML said (takproto rounds times through floats).
            let ours = parse_xml(&std::fs::read(path).unwrap(), &CotLimits::default()).unwrap();
            let mut theirs = CotEvent::from_tak_message(&msg, &CotLimits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!((theirs.time.0 - ours.time.0).abs() <= 1);
            assert!((theirs.stale.0 - ours.stale.0).abs() <= 1);
            (theirs.time, theirs.start, theirs.stale) = (ours.time, ours.start, ours.stale);
            assert_eq!(
                (
                    &theirs.uid,
                    &theirs.cot_type,
                    &theirs.how,
                    theirs.callsign()
                ),
                (&ours.uid, &ours.cot_type, &ours.how, ours.callsign())
            );
            assert_eq!(
                (theirs.point.lat, theirs.point.lon, theirs.point.hae),
                (ours.point.lat, ours.point.lon, ours.point.hae)
            );
            if path.ends_with("pli-atak.xml") {
                // An exact PLI survives takproto's conversion completely.
                assert_eq!(theirs, ours);
            }
        }
    }
}
