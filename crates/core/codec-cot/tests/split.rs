//! The stream splitters under every way a TCP stream can cut events: every split point,
//! one byte at a time, declarations and whitespace between events, garbage and oversize.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_codec_cot::{
    CotEvent, CotLimits, ProtoError, ProtoStreamSplitter, SplitError, XmlStreamSplitter,
    encode_stream, parse_xml,
};

const A: &str = r#"<event version="2.0" uid="a" type="a-f-G" time="2024-01-01T00:00:00Z" stale="2024-01-01T00:05:00Z"><point lat="1" lon="2"/><detail><remarks>x &gt; y, "&lt;/event&gt;"</remarks><note><![CDATA[ </event> ]]></note><!-- </event> --></detail></event>"#;
const B: &str = r#"<event version='2.0' uid='b' type='a-h-A' time='2024-01-01T00:00:00Z' stale='2024-01-01T00:05:00Z'><point lat='3' lon='4' hae='5'/><detail><x q='a>b/c'/></detail></event>"#;
const C: &str = r#"<event uid="c" type="t-x-c-t" time="2024-01-01T00:00:00Z" stale="2024-01-01T00:00:20Z"><point lat="0" lon="0"/><detail/></event>"#;

fn stream() -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n{A}<?xml version='1.0'?>{B}\r\n\t <!-- keepalive -->\n{C}\n"
    )
    .into_bytes()
}

fn drain(s: &mut XmlStreamSplitter, out: &mut Vec<Vec<u8>>) {
    while let Some(f) = s.next_frame().unwrap() {
        out.push(f.to_vec());
    }
}

fn expected() -> Vec<Vec<u8>> {
    vec![A.into(), B.into(), C.into()]
}

#[test]
fn every_split_point_gives_the_same_frames() {
    let bytes = stream();
    for cut in 0..=bytes.len() {
        let mut s = XmlStreamSplitter::new(4096);
        let mut frames = Vec::new();
        s.push(&bytes[..cut]);
        drain(&mut s, &mut frames);
        s.push(&bytes[cut..]);
        drain(&mut s, &mut frames);
        assert_eq!(frames, expected(), "split at byte {cut}");
        assert_eq!(s.buffered(), 0);
    }
}

#[test]
fn every_pair_of_split_points_gives_the_same_frames() {
    let bytes = stream();
    for i in (0..bytes.len()).step_by(7) {
        for j in (i..=bytes.len()).step_by(5) {
            let mut s = XmlStreamSplitter::new(4096);
            let mut frames = Vec::new();
            for part in [&bytes[..i], &bytes[i..j], &bytes[j..]] {
                s.push(part);
                drain(&mut s, &mut frames);
            }
            assert_eq!(frames, expected(), "split at {i} and {j}");
        }
    }
}

#[test]
fn one_byte_at_a_time_and_frames_parse() {
    let mut s = XmlStreamSplitter::default();
    let mut frames = Vec::new();
    for b in stream() {
        s.push(&[b]);
        drain(&mut s, &mut frames);
    }
    assert_eq!(frames, expected());
    for f in &frames {
        parse_xml(f, &CotLimits::default()).unwrap();
    }
}

#[test]
fn many_small_pushes_of_a_big_event_stay_linear() {
    // 60 KB event pushed a byte at a time: quadratic rescanning would be ~1.8e9 steps.
    let mut ev = String::from(
        r#"<event uid="s" type="u-d-f" time="2024-01-01T00:00:00Z" stale="2024-01-01T00:05:00Z"><point lat="0" lon="0"/><detail>"#,
    );
    while ev.len() < 60_000 {
        ev.push_str(r#"<link point="50.8400,4.3400"/>"#);
    }
    ev.push_str("</detail></event>");
    let started = std::time::Instant::now();
    let mut s = XmlStreamSplitter::new(64 * 1024);
    let mut frames = Vec::new();
    for _ in 0..3 {
        for b in ev.as_bytes() {
            s.push(std::slice::from_ref(b));
            drain(&mut s, &mut frames);
        }
    }
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f == ev.as_bytes()));
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn garbage_between_events_is_an_error_naming_the_offset() {
    let mut s = XmlStreamSplitter::default();
    s.push(format!("{C}  hello").as_bytes());
    assert_eq!(s.next_frame().unwrap().unwrap(), C.as_bytes());
    let e = s.next_frame().unwrap_err();
    assert_eq!(
        e,
        SplitError::Garbage {
            byte: b'h',
            offset: C.len() as u64 + 2
        }
    );
    assert!(e.to_string().contains("0x68"), "{e}");
    // Poisoned: the connection is to be closed.
    s.push(C.as_bytes());
    assert_eq!(s.next_frame().unwrap_err(), e);

    for (input, reason) in [
        (&b"</event>"[..], "end tag with no open element"),
        (b"<!DOCTYPE x [<!ENTITY a 'b'>]><event/>", "DOCTYPE"),
        (b"< event/>", "not followed by a name"),
    ] {
        let mut s = XmlStreamSplitter::default();
        s.push(input);
        let e = s.next_frame().unwrap_err();
        assert!(e.to_string().contains(reason), "{e}");
    }
}

#[test]
fn oversize_events_are_errors_even_unterminated() {
    let max = C.len() + 10;
    assert!(A.len() > max);
    let mut s = XmlStreamSplitter::new(max);
    s.push(C.as_bytes());
    assert_eq!(s.next_frame().unwrap().unwrap(), C.as_bytes());
    s.push(A.as_bytes());
    let e = s.next_frame().unwrap_err();
    assert_eq!(
        e,
        SplitError::TooLarge {
            max,
            offset: C.len() as u64
        }
    );
    // A never-ending comment between events is bounded too.
    let mut s = XmlStreamSplitter::new(100);
    s.push(b"<!--");
    s.push(&[b'x'; 200]);
    assert!(matches!(s.next_frame(), Err(SplitError::TooLarge { .. })));
    // An event of exactly the limit passes.
    let mut s = XmlStreamSplitter::new(C.len());
    s.push(C.as_bytes());
    assert_eq!(s.next_frame().unwrap().unwrap(), C.as_bytes());
}

#[test]
fn switch_to_protobuf_after_negotiation() {
    // The client's request, then (after the server's accepting answer) protobuf frames that
    // may already sit in the same read.
    let ev = parse_xml(C.as_bytes(), &CotLimits::default()).unwrap();
    let frame = encode_stream(&ev.to_tak_message());
    let mut bytes = C.as_bytes().to_vec();
    bytes.extend_from_slice(&frame);
    bytes.extend_from_slice(&frame[..5]);
    let mut xml = XmlStreamSplitter::default();
    xml.push(&bytes);
    assert_eq!(xml.next_frame().unwrap().unwrap(), C.as_bytes());
    let mut proto = ProtoStreamSplitter::with_buffered(64 * 1024, xml.take_remaining());
    let got = proto.next_message().unwrap().unwrap();
    assert_eq!(
        CotEvent::from_tak_message(&got, &CotLimits::default()).unwrap(),
        ev
    );
    assert_eq!(proto.next_frame().unwrap(), None);
    proto.push(&frame[5..]);
    assert!(proto.next_frame().unwrap().is_some());
}

#[test]
fn proto_stream_every_split_point() {
    let events: Vec<_> = [A, B, C]
        .iter()
        .map(|x| parse_xml(x.as_bytes(), &CotLimits::default()).unwrap())
        .collect();
    let mut bytes = Vec::new();
    for e in &events {
        bytes.extend_from_slice(&encode_stream(&e.to_tak_message()));
    }
    for cut in 0..=bytes.len() {
        let mut s = ProtoStreamSplitter::default();
        let mut got = Vec::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            s.push(part);
            while let Some(m) = s.next_message().unwrap() {
                got.push(CotEvent::from_tak_message(&m, &CotLimits::default()).unwrap());
            }
        }
        assert_eq!(got, events, "split at {cut}");
        assert_eq!(s.buffered(), 0);
    }
    let mut s = ProtoStreamSplitter::default();
    for b in &bytes {
        s.push(std::slice::from_ref(b));
        while s.next_frame().unwrap().is_some() {}
    }
}

#[test]
fn proto_stream_errors() {
    let mut s = ProtoStreamSplitter::new(1000);
    s.push(b"<event/>");
    let e = s.next_frame().unwrap_err();
    assert!(e.to_string().contains("magic byte 0xbf"), "{e}");
    assert!(e.to_string().contains("found 0x3c"), "{e}");

    let mut s = ProtoStreamSplitter::new(1000);
    s.push(&[0xbf, 0xe9, 0x07]); // 1001
    assert_eq!(
        s.next_frame().unwrap_err(),
        ProtoError::TooLarge {
            size: 1001,
            max: 1000
        }
    );
    let mut s = ProtoStreamSplitter::new(1000);
    s.push(&[
        0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    assert!(matches!(s.next_frame(), Err(ProtoError::BadVarint { .. })));
    // A frame whose payload is not protobuf spoils only itself.
    let mut s = ProtoStreamSplitter::new(1000);
    s.push(&[0xbf, 0x02, 0xff, 0xff, 0xbf, 0x00]);
    assert!(matches!(s.next_message(), Err(ProtoError::Decode(_))));
    assert_eq!(
        s.next_message().unwrap(),
        Some(rampart_codec_cot::proto::TakMessage::default())
    );
}

/// One frame and its event, or the error that ended the stream.
type Outcome = Result<(Vec<u8>, CotEvent), String>;

/// What a connection makes of its stream: each frame and its event, or the error that ends
/// it (a splitter error or a parse error, as text). `fast` also tries the one-pass path.
fn outcomes(chunks: &[&[u8]], max: usize, limits: &CotLimits, fast: bool) -> (Vec<Outcome>, usize) {
    let mut s = XmlStreamSplitter::new(max);
    let mut out = Vec::new();
    let mut hits = 0;
    for c in chunks {
        s.push(c);
        loop {
            if fast && let Some((frame, ev)) = s.next_event(limits) {
                hits += 1;
                out.push(Ok((frame.to_vec(), ev)));
                continue;
            }
            match s.next_frame() {
                Ok(Some(f)) => match parse_xml(&f, limits) {
                    Ok(ev) => out.push(Ok((f.to_vec(), ev))),
                    Err(e) => {
                        out.push(Err(e.to_string()));
                        return (out, hits);
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return (out, hits);
                }
            }
        }
    }
    (out, hits)
}

fn samples() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samples");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The one-pass path (`next_event`) gives exactly what the lexer and the full parser give,
/// for every sample, under every way the stream can be cut, and before every kind of error.
#[test]
fn one_pass_path_matches_split_then_parse() {
    let limits = CotLimits::default();
    let mut good = samples().join("\n");
    good.push_str(&format!(
        "{A}<?xml version='1.0'?>{B}\r\n\t {C}<?xml version=\"1.0\"?>\n<event uid=\"d\" type=\"a-f-G\" time=\"2024-01-01T00:00:00Z\" stale=\"2024-01-01T00:05:00Z\"><point lat=\"1\" lon=\"2\"/><detail><contact callsign=\"é&amp;\"/></detail></event>"
    ));
    let tails: [&[u8]; 7] = [
        b"",
        b"junk",
        b"<event uid=\"x\"/>",
        b"<!DOCTYPE x>",
        b"<auth><cot username=\"u\"/></auth>",
        b"<event uid=\"x\" type=\"a\" time=\"2024-01-01T00:00:00Z\" stale=\"2024-01-01T00:00:01Z\"><point lat=\"1\" lon=\"2\"/>\x01</event>",
        b"<event uid=\"x\" type=\"a\" time=\"2024-01-01T00:00:00Z\" stale=\"2024-01-01T00:00:01Z\"><point lat=\"1\" lon=\"2\"/></event></x>",
    ];
    let mut total_hits = 0;
    for tail in tails {
        let mut bytes = good.clone().into_bytes();
        bytes.extend_from_slice(tail);
        for max in [64 * 1024, 600] {
            let whole = outcomes(&[&bytes], max, &limits, false).0;
            // With the small limit the stream fails at the first large sample.
            assert!(max < 64 * 1024 || whole.len() > 10, "{whole:?}");
            let (fast, hits) = outcomes(&[&bytes], max, &limits, true);
            assert_eq!(fast, whole);
            total_hits += hits;
            for cut in (0..=bytes.len()).step_by(7) {
                let chunks = [&bytes[..cut], &bytes[cut..]];
                assert_eq!(
                    outcomes(&chunks, max, &limits, true).0,
                    whole,
                    "cut at {cut}"
                );
            }
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(
            outcomes(&bytewise, 64 * 1024, &limits, true).0,
            outcomes(&[&bytes], 64 * 1024, &limits, false).0
        );
    }
    // The fast path must actually be taken (most samples are plain XML).
    assert!(total_hits > 50, "{total_hits}");
}
