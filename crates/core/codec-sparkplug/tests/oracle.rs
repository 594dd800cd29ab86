//! Third-party oracle: Eclipse Tahu's Python Sparkplug helper (PyPI `sparkplug-b-packets`)
//! encodes an edge node session (births with every scalar datatype and aliases, data by alias
//! only, a seq gap, deaths) and Google's protobuf runtime with Tahu's compiled
//! `sparkplug_b.proto` decodes it again (`tests/oracle/sparkplug_oracle.py`); this test decodes
//! the same bytes with [`Decoder`] and compares every metric. It fails — never skips — when
//! the Python environment is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use rampart_codec_sparkplug::{DataType, Decoder, MessageType, Value};
use serde_json::Value as Json;

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

fn run_oracle(seed: u32) -> Vec<Json> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/sparkplug_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(seed.to_string())
        .output()
        .expect("run the Sparkplug oracle");
    assert!(
        out.status.success(),
        "Sparkplug oracle failed (run scripts/python-env?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn int(j: &Json) -> i128 {
    j.as_i64()
        .map(i128::from)
        .or_else(|| j.as_u64().map(i128::from))
        .unwrap_or_else(|| panic!("not an integer: {j}"))
}

fn f64_bits(j: &Json) -> u64 {
    u64::from_str_radix(
        j["f64"]
            .as_str()
            .unwrap_or_else(|| panic!("not a float: {j}")),
        16,
    )
    .unwrap()
}

fn check_value(ctx: &str, got: &Value, want: &Json) {
    let ok = match got {
        Value::Int8(v) => i128::from(*v) == int(want),
        Value::Int16(v) => i128::from(*v) == int(want),
        Value::Int32(v) => i128::from(*v) == int(want),
        Value::Int64(v) => i128::from(*v) == int(want),
        Value::UInt8(v) => i128::from(*v) == int(want),
        Value::UInt16(v) => i128::from(*v) == int(want),
        Value::UInt32(v) => i128::from(*v) == int(want),
        Value::UInt64(v) | Value::DateTime(v) => i128::from(*v) == int(want),
        // Floats come as the exact bits of the (widened) double.
        Value::Float(v) => f64::from(*v).to_bits() == f64_bits(want),
        Value::Double(v) => v.to_bits() == f64_bits(want),
        Value::Boolean(b) => Some(*b) == want.as_bool(),
        Value::String(s) | Value::Text(s) | Value::Uuid(s) => Some(s.as_str()) == want.as_str(),
        Value::Bytes(b) => want["hex"].as_str().map(hex).as_deref() == Some(b.as_slice()),
        Value::Null => want.is_null(),
        Value::Unsupported(_) => false,
    };
    assert!(ok, "{ctx}: decoded {got:?}, the oracle says {want}");
}

#[test]
fn tahu_sessions_decode_identically() {
    let mut seen_types = std::collections::BTreeSet::new();
    let mut alias_only = 0;
    for seed in 1..=12 {
        let mut dec = Decoder::default();
        let mut prev_seq: Option<u64> = None;
        let mut nbirth_bd_seq = None;
        let mut gaps = 0;
        for (i, msg) in run_oracle(seed).iter().enumerate() {
            let ctx = format!("seed {seed} message {i} ({})", msg["kind"]);
            let topic = msg["topic"].as_str().unwrap();
            let bytes = hex(msg["hex"].as_str().unwrap());
            let got = dec
                .decode(topic, &bytes)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(got.kind.as_str(), msg["kind"].as_str().unwrap(), "{ctx}");
            assert!(
                got.metric_errors.is_empty(),
                "{ctx}: {:?}",
                got.metric_errors
            );
            assert_eq!(got.seq.map(u64::from), msg["seq"].as_u64(), "{ctx}: seq");
            if let Some(t) = msg["timestamp"].as_u64() {
                assert_eq!(got.timestamp, Some(t), "{ctx}: timestamp");
            }
            // Continuity, recomputed from the seqs the oracle wrote.
            if got.kind != MessageType::NBirth
                && let (Some(p), Some(s)) = (prev_seq, msg["seq"].as_u64())
            {
                let expected = (p + 1) % 256;
                assert_eq!(
                    got.seq_gap.map(|g| u64::from(g.expected)),
                    (s != expected).then_some(expected),
                    "{ctx}: seq gap"
                );
                gaps += usize::from(s != expected);
            }
            if msg["seq"].is_u64() {
                prev_seq = msg["seq"].as_u64();
            }
            let want = msg["metrics"].as_array().unwrap();
            assert_eq!(got.metrics.len(), want.len(), "{ctx}: metric count");
            for (m, w) in got.metrics.iter().zip(want) {
                let mctx = format!("{ctx} metric {}", m.name);
                assert_eq!(Some(m.name.as_str()), w["name"].as_str(), "{mctx}: name");
                assert_eq!(m.alias, w["alias"].as_u64(), "{mctx}: alias");
                assert_eq!(
                    u64::from(m.datatype.code()),
                    w["datatype"].as_u64().unwrap(),
                    "{mctx}: datatype"
                );
                assert_eq!(m.timestamp, w["timestamp"].as_u64(), "{mctx}: timestamp");
                assert_eq!(
                    Some(m.is_historical),
                    w["is_historical"].as_bool(),
                    "{mctx}: is_historical"
                );
                check_value(&mctx, &m.value, &w["value"]);
                seen_types.insert(m.datatype);
            }
            match got.kind {
                MessageType::NBirth => nbirth_bd_seq = got.bd_seq,
                MessageType::NDeath => {
                    assert_eq!(got.bd_seq, nbirth_bd_seq, "{ctx}: bdSeq");
                    assert!(!got.stale_death, "{ctx}");
                    assert!(dec.book().is_empty(), "{ctx}: NDEATH leaves aliases behind");
                }
                MessageType::DData | MessageType::NData => {
                    // Sent by alias only (half without datatype): the names came from the births.
                    alias_only += got.metrics.len();
                    assert!(got.birth_seen, "{ctx}");
                }
                _ => {}
            }
        }
        assert_eq!(
            gaps, 1,
            "seed {seed}: the oracle writes exactly one seq gap"
        );
    }
    assert!(alias_only > 100, "too few alias-only metrics: {alias_only}");
    for t in (1..=15).chain([17]) {
        assert!(
            seen_types.contains(&DataType::from_code(t)),
            "datatype {t} never exercised"
        );
    }
}
