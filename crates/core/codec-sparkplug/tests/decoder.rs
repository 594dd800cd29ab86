//! Behaviour of [`Decoder`]: alias resolution, per-metric errors, deaths, seq continuity,
//! STATE, limits, and the encode → decode round trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_codec_sparkplug::payload::{decode, encode};
use rampart_codec_sparkplug::proto::{Metric, Payload, metric};
use rampart_codec_sparkplug::{
    BookLimits, DataType, Decoder, Error, FullPolicy, Limits, MessageType, MetricErrorKind, SeqGap,
    Value, encode_metric,
};

const NB: &str = "spBv1.0/g/NBIRTH/e";
const ND: &str = "spBv1.0/g/NDATA/e";
const DB: &str = "spBv1.0/g/DBIRTH/e/d";
const DD: &str = "spBv1.0/g/DDATA/e/d";

fn payload(seq: Option<u64>, metrics: Vec<Metric>) -> Vec<u8> {
    encode(&Payload {
        timestamp: Some(1000),
        metrics,
        seq,
        ..Default::default()
    })
}

fn named(name: &str, alias: u64, v: Value) -> Metric {
    encode_metric(Some(name), Some(alias), DataType::Unknown, &v)
}

/// By alias only, no datatype: the type must come from the birth.
fn by_alias(alias: u64, v: Value) -> Metric {
    let mut m = encode_metric(None, Some(alias), DataType::Unknown, &v);
    m.datatype = None;
    m
}

fn born() -> Decoder {
    let mut d = Decoder::default();
    let bd = encode_metric(Some("bdSeq"), None, DataType::Int64, &Value::Int64(7));
    let m = d
        .decode(
            NB,
            &payload(
                Some(0),
                vec![
                    bd,
                    named("temp", 1, Value::Double(20.5)),
                    named("level", 2, Value::Int8(-3)),
                    named("on", 3, Value::Boolean(false)),
                ],
            ),
        )
        .unwrap();
    assert_eq!(m.bd_seq, Some(7));
    assert!(m.metric_errors.is_empty(), "{:?}", m.metric_errors);
    d
}

#[test]
fn data_by_alias_resolves_names_and_types() {
    let mut d = born();
    let m = d
        .decode(
            ND,
            &payload(
                Some(1),
                vec![
                    by_alias(2, Value::Int8(-100)),
                    by_alias(1, Value::Double(1.25)),
                ],
            ),
        )
        .unwrap();
    assert_eq!(m.kind, MessageType::NData);
    assert_eq!(m.seq, Some(1));
    assert_eq!(m.seq_gap, None);
    assert!(m.birth_seen);
    let names: Vec<_> = m.metrics.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["level", "temp"]);
    // int_value 156 read as Int8 (registered at birth) is −100, not UInt32 156.
    assert_eq!(m.metrics[0].value, Value::Int8(-100));
    assert_eq!(m.metrics[0].datatype, DataType::Int8);
    assert_eq!(m.metrics[1].value.as_f64(), Some(1.25));
    assert_eq!(
        m.metrics[1].timestamp,
        Some(1000),
        "falls back to the payload timestamp"
    );
}

#[test]
fn unknown_alias_is_a_metric_error_and_the_rest_decodes() {
    let mut d = born();
    let m = d
        .decode(
            ND,
            &payload(
                Some(1),
                vec![
                    by_alias(99, Value::Double(1.0)),
                    by_alias(3, Value::Boolean(true)),
                    Metric::default(),
                    by_alias(1, Value::String("x".into())),
                ],
            ),
        )
        .unwrap();
    assert_eq!(m.metrics.len(), 1);
    assert_eq!(m.metrics[0].name, "on");
    assert_eq!(m.metrics[0].value, Value::Boolean(true));
    let reasons: Vec<_> = m.metric_errors.iter().map(|e| e.reason()).collect();
    assert_eq!(
        reasons,
        ["unknown_alias", "metric_no_name", "metric_wrong_field"]
    );
    assert_eq!(m.metric_errors[0].index, 0);
    assert_eq!(
        m.metric_errors[0].to_string(),
        "metric #0 (alias 99): unknown alias 99"
    );
    assert_eq!(
        m.metric_errors[2].to_string(),
        "metric #3 \"temp\" (alias 1): Double metric carries its value in string_value"
    );
}

#[test]
fn deaths_clear_aliases_and_stale_deaths_are_ignored() {
    let mut d = born();
    d.decode(
        DB,
        &payload(Some(1), vec![named("rpm", 1, Value::UInt16(900))]),
    )
    .unwrap();
    let m = d
        .decode(DD, &payload(Some(2), vec![by_alias(1, Value::UInt16(901))]))
        .unwrap();
    assert_eq!(m.metrics[0].name, "rpm");
    assert_eq!(m.metrics[0].value, Value::UInt16(901));

    // DDEATH forgets the device only.
    d.decode("spBv1.0/g/DDEATH/e/d", &payload(Some(3), vec![]))
        .unwrap();
    let m = d
        .decode(DD, &payload(Some(4), vec![by_alias(1, Value::UInt16(1))]))
        .unwrap();
    assert!(!m.birth_seen);
    assert_eq!(m.metric_errors[0].kind, MetricErrorKind::UnknownAlias(1));
    let m = d
        .decode(ND, &payload(Some(5), vec![by_alias(1, Value::Double(2.0))]))
        .unwrap();
    assert_eq!(m.metrics[0].name, "temp");

    // An NDEATH of an older session (bdSeq 6, current 7) changes nothing.
    let death = |bd: i64| {
        payload(
            None,
            vec![encode_metric(
                Some("bdSeq"),
                None,
                DataType::Int64,
                &Value::Int64(bd),
            )],
        )
    };
    let m = d.decode("spBv1.0/g/NDEATH/e", &death(6)).unwrap();
    assert!(m.stale_death);
    assert_eq!(m.bd_seq, Some(6));
    assert!(d.book().is_born(&rampart_codec_sparkplug::Scope {
        group_id: "g".into(),
        edge_node_id: "e".into(),
        device_id: None
    }));
    let m = d.decode("spBv1.0/g/NDEATH/e", &death(7)).unwrap();
    assert!(!m.stale_death);
    assert!(d.book().is_empty());
    let m = d
        .decode(ND, &payload(Some(6), vec![by_alias(1, Value::Double(2.0))]))
        .unwrap();
    assert!(!m.birth_seen);
    assert_eq!(m.metric_errors.len(), 1);
}

#[test]
fn seq_gaps_are_reported_across_node_and_devices() {
    let mut d = born();
    let m = d.decode(DB, &payload(Some(1), vec![])).unwrap();
    assert_eq!(m.seq_gap, None);
    let m = d.decode(DD, &payload(Some(3), vec![])).unwrap();
    assert_eq!(
        m.seq_gap,
        Some(SeqGap {
            expected: 2,
            got: Some(3)
        })
    );
    assert_eq!(
        d.decode(ND, &payload(Some(4), vec![])).unwrap().seq_gap,
        None
    );
    // Wrap 255 → 0 after a rebirth at 255.
    d.decode(NB, &payload(Some(255), vec![])).unwrap();
    assert_eq!(
        d.decode(ND, &payload(Some(0), vec![])).unwrap().seq_gap,
        None
    );
    let e = d.decode(ND, &payload(Some(256), vec![])).unwrap_err();
    assert_eq!(e, Error::SeqOutOfRange { seq: 256 });
    assert_eq!(e.reason(), "seq_out_of_range");
}

#[test]
fn commands_resolve_aliases_and_state_is_json() {
    let mut d = born();
    let m = d
        .decode(
            "spBv1.0/g/NCMD/e",
            &payload(None, vec![by_alias(3, Value::Boolean(true))]),
        )
        .unwrap();
    assert_eq!(m.metrics[0].name, "on");
    assert!(m.birth_seen);

    let m = d
        .decode(
            "spBv1.0/STATE/scada",
            br#"{"online":true,"timestamp":1700000000000}"#,
        )
        .unwrap();
    let s = m.host_state.unwrap();
    assert!(s.online);
    assert_eq!(s.timestamp, Some(1_700_000_000_000));
    for (bad, why) in [
        (&b"ONLINE"[..], "not JSON"),
        (b"[1]", "not a JSON object"),
        (b"{}", "no \"online\""),
        (br#"{"online":"yes"}"#, "\"online\" is not a boolean"),
        (br#"{"online":true,"timestamp":-1}"#, "timestamp"),
    ] {
        let e = d.decode("spBv1.0/STATE/scada", bad).unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
        assert_eq!(e.reason(), "bad_state_payload");
    }
}

#[test]
fn births_need_names_and_register_within_limits() {
    let mut d = Decoder::new(
        Limits {
            max_name_bytes: 8,
            ..Limits::default()
        },
        BookLimits {
            max_aliases_per_node: 2,
            ..BookLimits::default()
        },
    );
    let mut no_name = named("x", 5, Value::UInt8(1));
    no_name.name = None;
    let m = d
        .decode(
            NB,
            &payload(
                Some(0),
                vec![
                    named("a", 1, Value::UInt8(1)),
                    no_name,
                    named("much-too-long", 2, Value::UInt8(2)),
                    named("b", 1, Value::UInt8(3)),
                    named("c", 3, Value::UInt8(4)),
                    named("d", 4, Value::UInt8(5)),
                ],
            ),
        )
        .unwrap();
    let reasons: Vec<_> = m.metric_errors.iter().map(|e| e.reason()).collect();
    assert_eq!(
        reasons,
        [
            "metric_no_name",
            "metric_name_too_long",
            "alias_not_registered",
            "alias_not_registered"
        ]
    );
    assert!(
        m.metric_errors[1]
            .to_string()
            .contains("max_name_bytes is 8")
    );
    assert!(
        m.metric_errors[2]
            .to_string()
            .contains("already used by metric \"a\"")
    );
    assert!(
        m.metric_errors[3]
            .to_string()
            .contains("max_aliases_per_node")
    );
    // Unregistered birth metrics are still reported.
    let names: Vec<_> = m.metrics.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
}

#[test]
fn full_book_refuses_or_evicts() {
    let mut d = Decoder::new(
        Limits::default(),
        BookLimits {
            max_nodes: 1,
            on_full: FullPolicy::Refuse,
            ..BookLimits::default()
        },
    );
    d.decode(NB, &payload(Some(0), vec![])).unwrap();
    let e = d.decode(DB, &payload(Some(1), vec![])).unwrap_err();
    assert_eq!(e.reason(), "too_many_nodes");
    assert!(e.to_string().contains("max_nodes"), "{e}");

    let mut d = Decoder::new(
        Limits::default(),
        BookLimits {
            max_nodes: 1,
            ..BookLimits::default()
        },
    );
    assert!(
        !d.decode(DB, &payload(Some(1), vec![])).unwrap().birth_seen,
        "no NBIRTH yet"
    );
    d.decode(NB, &payload(Some(0), vec![])).unwrap();
    let m = d.decode(DB, &payload(Some(1), vec![])).unwrap();
    assert!(m.birth_seen);
    assert_eq!(m.evicted.unwrap().device_id, None);
    assert_eq!(d.book().len(), 1);
    assert_eq!(d.book().evictions(), 1);
}

#[test]
fn whole_message_errors_name_the_problem() {
    let mut d = Decoder::new(
        Limits {
            max_payload_bytes: 64,
            max_metrics_per_payload: 3,
            ..Limits::default()
        },
        BookLimits::default(),
    );
    let e = d.decode("spBv1.0/g/DDATA/e", b"").unwrap_err();
    assert_eq!(e.to_string(), "topic: DDATA topic has no device_id");
    assert_eq!(e.reason(), "topic_missing_device");
    let e = d.decode(ND, &[0u8; 65]).unwrap_err();
    assert_eq!(e.reason(), "payload_too_large");
    assert!(e.to_string().contains("max_payload_bytes is 64"), "{e}");
    let e = d
        .decode(ND, &payload(Some(0), vec![Metric::default(); 4]))
        .unwrap_err();
    assert_eq!(e.reason(), "too_many_metrics");
    let e = d.decode(ND, &[0x12, 0x7f, 0x00]).unwrap_err();
    assert!(
        e.to_string().contains("declares 127 bytes but 1 remain"),
        "{e}"
    );
    let e = d.decode("spBv1.0/STATE/h", &[b' '; 65]).unwrap_err();
    assert_eq!(e.reason(), "payload_too_large");
}

#[test]
fn encode_decode_round_trip_keeps_every_field() {
    let mut m = encode_metric(
        Some("t"),
        Some(4),
        DataType::Unknown,
        &Value::UInt64(u64::MAX),
    );
    m.timestamp = Some(77);
    m.is_historical = Some(true);
    m.is_transient = Some(false);
    let p = Payload {
        timestamp: Some(1),
        metrics: vec![
            m,
            encode_metric(Some("n"), None, DataType::Float, &Value::Null),
            encode_metric(
                Some("ds"),
                None,
                DataType::DataSet,
                &Value::Unsupported(DataType::DataSet),
            ),
            Metric {
                name: Some("tpl".into()),
                datatype: Some(DataType::Template.code()),
                value: Some(metric::Value::TemplateValue(vec![0x08, 0x01])),
                ..Default::default()
            },
        ],
        seq: Some(200),
        uuid: Some("schema-1".into()),
        body: Some(vec![1, 2, 3]),
    };
    let bytes = encode(&p);
    assert_eq!(decode(&bytes, &Limits::default()).unwrap(), p);
    let msg = Decoder::default().decode(NB, &bytes).unwrap();
    assert_eq!(msg.uuid.as_deref(), Some("schema-1"));
    assert_eq!(msg.seq, Some(200));
    let u = &msg.metrics;
    assert_eq!(u[0].value, Value::UInt64(u64::MAX));
    assert_eq!((u[0].timestamp, u[0].is_historical), (Some(77), true));
    assert_eq!(
        (u[1].value.clone(), u[1].datatype),
        (Value::Null, DataType::Float)
    );
    assert_eq!(u[2].value, Value::Unsupported(DataType::DataSet));
    assert_eq!(u[3].value, Value::Unsupported(DataType::Template));
    assert!(msg.metric_errors.is_empty());
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic sweep; the fuzz target `sparkplug` goes further.
    let good = payload(Some(1), vec![named("temp", 1, Value::Double(1.0))]);
    let mut d = born();
    let mut x: u32 = 12345;
    for i in 0..5000 {
        let mut b = good.clone();
        for _ in 0..1 + i % 4 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let pos = (x >> 8) as usize % b.len();
            b[pos] = (x >> 20) as u8;
        }
        b.truncate(b.len() - i % 3);
        let _ = d.decode(if i % 2 == 0 { ND } else { NB }, &b);
    }
}
