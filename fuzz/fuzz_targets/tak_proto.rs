//! TAK protocol v1 (protobuf): the first input byte picks the entry point, the rest is its
//! input.
//!
//! - 0: `decode_payload` (a bare `TakMessage`), then the event conversion;
//! - 1: `decode_mesh` (a mesh datagram `0xbf 0x01 0xbf` + payload);
//! - 2: `ProtoStreamSplitter` fed the stream in chunks (`0xbf`, varint length, payload, …),
//!   every frame decoded; the frames must not depend on how the stream is cut.
//!
//! Any event that converts from protobuf must convert back, survive the stream framing and
//! convert again (the conversion is documented as lossless), and its XML must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_cot::proto::TakMessage;
use rampart_codec_cot::{
    CotEvent, CotLimits, ProtoError, ProtoStreamSplitter, decode_mesh, decode_payload,
    encode_stream, encode_xml, parse_xml,
};

fn check_message(msg: &TakMessage) {
    let limits = CotLimits::default();
    let Ok(ev) = CotEvent::from_tak_message(msg, &limits) else {
        return;
    };
    let back = ev.to_tak_message();
    let mut s = ProtoStreamSplitter::new(usize::MAX);
    s.push(&encode_stream(&back));
    let again = s
        .next_message()
        .expect("an encoded message splits and decodes")
        .expect("an encoded message is complete");
    match CotEvent::from_tak_message(&again, &limits) {
        Ok(ev2) => assert_eq!(
            encode_xml(&ev2),
            encode_xml(&ev),
            "event → protobuf → event changed the event"
        ),
        Err(e) => panic!("an event from protobuf does not convert again: {e}\n{ev:?}"),
    }
    let xml = encode_xml(&ev);
    if xml.len() <= limits.max_event_bytes
        && let Err(e) = parse_xml(xml.as_bytes(), &limits)
    {
        panic!("the XML of an event from protobuf does not parse: {e}\n{xml}");
    }
    let _ = ev.to_report();
}

/// Frames (decoded or not) until more input is needed, and the error that ended the stream.
fn drain(s: &mut ProtoStreamSplitter, frames: &mut Vec<Vec<u8>>) -> Option<ProtoError> {
    loop {
        match s.next_frame() {
            Ok(Some(f)) => {
                if let Ok(msg) = decode_payload(&f) {
                    check_message(&msg);
                }
                frames.push(f.to_vec());
            }
            Ok(None) => return None,
            Err(e) => {
                assert_eq!(
                    s.next_frame().err().as_ref(),
                    Some(&e),
                    "the error is not sticky"
                );
                return Some(e);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(msg) = decode_payload(input) {
                check_message(&msg);
            }
        }
        1 => {
            if let Ok(msg) = decode_mesh(input) {
                check_message(&msg);
            }
        }
        _ => {
            let max_frame = 8192;
            let mut chunked = ProtoStreamSplitter::new(max_frame);
            let mut frames = Vec::new();
            let mut err = None;
            let mut rest = input;
            let mut k = u32::from(mode) | 1;
            while !rest.is_empty() && err.is_none() {
                k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let n = (1 + (k >> 16) as usize % 48).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                chunked.push(chunk);
                rest = tail;
                err = drain(&mut chunked, &mut frames);
            }
            let _ = chunked.buffered();

            let mut whole = ProtoStreamSplitter::new(max_frame);
            whole.push(input);
            let mut frames_whole = Vec::new();
            let err_whole = drain(&mut whole, &mut frames_whole);
            assert_eq!(
                frames, frames_whole,
                "frames depend on how the stream is cut"
            );
            assert_eq!(err, err_whole, "the error depends on how the stream is cut");
        }
    }
});
