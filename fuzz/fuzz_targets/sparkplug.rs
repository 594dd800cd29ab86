//! Sparkplug B: a `Decoder` fed a sequence of (topic, payload) messages, its alias book and
//! seq state carried across them (framing in [`records`]). Most records pick a canned topic
//! (births, data, deaths, commands, STATE of one edge node and its devices), so the fuzzer
//! reaches the stateful paths without spelling topics; the others carry an arbitrary topic.
//! Nothing may panic, the book must stay within its bounds, and every payload that decodes
//! must survive encode → decode unchanged (bit for bit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_sparkplug::payload::{decode, encode};
use rampart_codec_sparkplug::{BookLimits, Decoder, Limits};

const TOPICS: [&str; 10] = [
    "spBv1.0/g/NBIRTH/e",
    "spBv1.0/g/NDATA/e",
    "spBv1.0/g/DBIRTH/e/d",
    "spBv1.0/g/DDATA/e/d",
    "spBv1.0/g/DDEATH/e/d",
    "spBv1.0/g/NDEATH/e",
    "spBv1.0/g/NCMD/e",
    "spBv1.0/g/DCMD/e/d2",
    "spBv1.0/STATE/host",
    "spBv1.0/g/DBIRTH/e/d3",
];

/// Splits the input into (topic, payload) records: a selector byte (below 200: canned topic
/// `TOPICS[sel % 10]`; otherwise a length byte and that many topic bytes), a little-endian
/// u16 payload length, the payload (cut short at the end of the input).
fn records(mut data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    while let Some((&sel, rest)) = data.split_first() {
        data = rest;
        let topic = if sel < 200 {
            TOPICS[usize::from(sel) % TOPICS.len()].to_owned()
        } else {
            let Some((&n, rest)) = data.split_first() else {
                break;
            };
            let (t, rest) = rest.split_at(usize::from(n).min(rest.len()));
            data = rest;
            String::from_utf8_lossy(t).into_owned()
        };
        let len = match data {
            [a, b, rest @ ..] => {
                data = rest;
                usize::from(u16::from_le_bytes([*a, *b]))
            }
            _ => std::mem::take(&mut data).len(),
        };
        let (payload, rest) = data.split_at(len.min(data.len()));
        data = rest;
        out.push((topic, payload));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_payload_bytes: 4096,
        max_metrics_per_payload: 64,
        max_name_bytes: 32,
        max_topic_bytes: 128,
    };
    let book = BookLimits {
        max_nodes: 3,
        max_aliases_per_node: 8,
        max_total_aliases: 16,
        ..BookLimits::default()
    };
    let mut dec = Decoder::new(limits.clone(), book);
    for (topic, payload) in records(data) {
        if let Ok(msg) = dec.decode(&topic, payload) {
            assert_eq!(msg.kind, msg.topic.message_type());
            assert!(
                msg.metrics.len() + msg.metric_errors.len() <= 2 * limits.max_metrics_per_payload
            );
            for m in &msg.metrics {
                assert!(m.name.len() <= limits.max_name_bytes, "name over the limit");
            }
        }
        assert!(dec.book().len() <= 3, "alias book exceeds max_nodes");
        assert!(
            dec.book().total_aliases() <= 16,
            "alias book exceeds max_total_aliases"
        );
        if let Ok(p) = decode(payload, &limits) {
            let again = decode(
                &encode(&p),
                &Limits {
                    max_payload_bytes: usize::MAX,
                    ..limits.clone()
                },
            )
            .expect("an encoded payload decodes");
            // Compared as bytes: NaN values are not equal to themselves.
            assert_eq!(
                encode(&again),
                encode(&p),
                "encode → decode changed the payload"
            );
        }
    }
});
