//! The decoders never panic: mutated and truncated versions of valid inputs only ever give
//! errors. And whatever the XML parser accepts round trips exactly, through XML and through
//! protobuf. A cheap, deterministic stand-in for coverage-guided fuzzing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_codec_cot::{
    CotEvent, CotLimits, ProtoStreamSplitter, XmlStreamSplitter, decode_mesh, decode_payload,
    encode_mesh, encode_stream, encode_xml, parse_xml,
};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn samples() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/samples", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

fn mutate(rng: &mut Rng, base: &[u8], interesting: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..(1 + rng.below(4)) {
        if b.is_empty() {
            break;
        }
        let i = rng.below(b.len());
        match rng.below(6) {
            0 => b[i] = interesting[rng.below(interesting.len())],
            1 => b[i] = rng.next() as u8,
            2 => {
                b.remove(i);
            }
            3 => b.truncate(i.max(1)),
            4 => {
                // Duplicate a slice: repeated elements and attributes.
                let j = (i + rng.below(40)).min(b.len());
                let chunk = b[i..j].to_vec();
                b.splice(i..i, chunk);
            }
            _ => b.insert(i, interesting[rng.below(interesting.len())]),
        }
    }
    b
}

/// Whatever parses must re-encode to an equal event, through XML and through protobuf.
fn check_round_trips(ev: &CotEvent) {
    let limits = CotLimits {
        // Re-encoding may grow an event (escapes, declarations dropped are not counted).
        max_event_bytes: 1 << 20,
        ..CotLimits::default()
    };
    let xml = encode_xml(ev);
    let back = parse_xml(xml.as_bytes(), &limits)
        .unwrap_or_else(|e| panic!("re-parse failed: {e}\n{xml}\n{ev:?}"));
    assert_eq!(&back, ev, "XML round trip\n{xml}");
    let mut proto_ev = ev.clone();
    proto_ev.extra_attrs.clear();
    proto_ev.point.extra_attrs.clear();
    proto_ev.extra_children.clear();
    proto_ev.version = "2.0".into();
    if proto_ev.start.is_some_and(|s| s.0 == 0) {
        proto_ev.start = None; // 0 ms means "absent" in proto3
    }
    let msg = decode_mesh(&encode_mesh(&proto_ev.to_tak_message())).unwrap();
    let via = CotEvent::from_tak_message(&msg, &limits)
        .unwrap_or_else(|e| panic!("proto round trip failed: {e}\n{xml}"));
    assert_eq!(via, proto_ev, "protobuf round trip\n{xml}");
}

#[test]
fn mutated_xml_never_panics_and_what_parses_round_trips() {
    let limits = CotLimits::default();
    let interesting = b"<>/=\"' &;![]-?CDATA:x0.9eE+-\n\t\xff\xc3\xa9";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for base in samples() {
        let ev = parse_xml(&base, &limits).unwrap();
        check_round_trips(&ev);
        for _ in 0..3_000 {
            let input = mutate(&mut rng, &base, interesting);
            match parse_xml(&input, &limits) {
                Ok(ev) => {
                    accepted += 1;
                    check_round_trips(&ev);
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
    // The mutations must exercise the success path too, not only rejections.
    assert!(accepted > 1_000, "only {accepted} mutants parsed");
}

#[test]
fn mutated_streams_never_panic() {
    let mut stream = Vec::new();
    for s in samples() {
        stream.extend_from_slice(&s);
        stream.extend_from_slice(b"\n");
    }
    let interesting = b"<>/\"'!-?[]CDATA \n";
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for _ in 0..2_000 {
        let input = mutate(&mut rng, &stream, interesting);
        let mut s = XmlStreamSplitter::new(2048);
        let mut pos = 0;
        'feed: while pos < input.len() {
            let n = 1 + rng.below(300);
            let end = (pos + n).min(input.len());
            s.push(&input[pos..end]);
            pos = end;
            loop {
                match s.next_frame() {
                    Ok(Some(f)) => {
                        assert!(f.len() <= 2048);
                        let _ = parse_xml(&f, &CotLimits::default());
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        break 'feed;
                    }
                }
            }
        }
    }
}

#[test]
fn mutated_protobuf_never_panics() {
    let limits = CotLimits::default();
    let interesting = [0x00, 0x01, 0x02, 0x08, 0x0a, 0x12, 0x7a, 0x80, 0xbf, 0xff];
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let mut stream = Vec::new();
    for base in samples() {
        let ev = parse_xml(&base, &limits).unwrap();
        let msg = ev.to_tak_message();
        let mesh = encode_mesh(&msg);
        stream.extend_from_slice(&encode_stream(&msg));
        for _ in 0..2_000 {
            let input = mutate(&mut rng, &mesh, &interesting);
            if let Ok(m) = decode_mesh(&input)
                && let Ok(ev) = CotEvent::from_tak_message(&m, &limits)
            {
                let _ = ev.to_report();
                let _ = encode_xml(&ev);
            }
            let _ = decode_payload(input.get(3..).unwrap_or(&[]));
        }
    }
    for _ in 0..1_000 {
        let input = mutate(&mut rng, &stream, &interesting);
        let mut s = ProtoStreamSplitter::new(4096);
        for chunk in input.chunks(1 + rng.below(200)) {
            s.push(chunk);
            loop {
                match s.next_message() {
                    Ok(Some(m)) => {
                        let _ = CotEvent::from_tak_message(&m, &limits);
                    }
                    Ok(None) => break,
                    Err(rampart_codec_cot::ProtoError::Decode(_)) => {}
                    Err(_) => break,
                }
            }
        }
    }
}
