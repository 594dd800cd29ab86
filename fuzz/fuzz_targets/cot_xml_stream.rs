//! `rampart_codec_cot::XmlStreamSplitter` fed the input in chunks whose sizes come from the
//! input itself. Every frame it returns goes to `parse_xml`. Splitting must be independent
//! of how the stream is cut: the frames (and the error, if any) are compared with a second
//! splitter fed the whole input at once.
//!
//! A third splitter, fed the same chunks, is drained the way a TAK session drains it: the
//! one-pass `next_event` first, `next_frame` + `parse_xml` when it declines. It must yield
//! the same frames and the same error, and every event `next_event` returns must equal what
//! `parse_xml` makes of its frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_cot::{CotLimits, SplitError, XmlStreamSplitter, parse_xml};

/// Drains like a TAK session: one pass first, the lexer and parser when it declines.
fn drain_fast(s: &mut XmlStreamSplitter, frames: &mut Vec<Vec<u8>>) -> Option<SplitError> {
    let limits = CotLimits::default();
    loop {
        if let Some((frame, event)) = s.next_event(&limits) {
            match parse_xml(&frame, &limits) {
                Ok(reference) => assert_eq!(event, reference, "next_event differs from parse_xml"),
                Err(e) => panic!("next_event accepted a frame parse_xml refuses: {e}"),
            }
            frames.push(frame.to_vec());
            continue;
        }
        match s.next_frame() {
            Ok(Some(f)) => frames.push(f.to_vec()),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

/// Collects the frames until more input is needed; returns the error that ended the stream.
fn drain(s: &mut XmlStreamSplitter, frames: &mut Vec<Vec<u8>>) -> Option<SplitError> {
    loop {
        match s.next_frame() {
            Ok(Some(f)) => {
                assert!(f.len() <= 4096, "frame larger than max_frame");
                let _ = parse_xml(&f, &CotLimits::default());
                frames.push(f.to_vec());
            }
            Ok(None) => return None,
            Err(e) => {
                // The error is sticky.
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
    // First byte: seed of the chunk sizes. The rest: the stream.
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let max_frame = 4096;

    let mut chunked = XmlStreamSplitter::new(max_frame);
    let mut fast = XmlStreamSplitter::new(max_frame);
    let mut frames = Vec::new();
    let mut frames_fast = Vec::new();
    let mut err = None;
    let mut err_fast = None;
    let mut rest = stream;
    let mut k = u32::from(seed) | 1;
    while !rest.is_empty() && err.is_none() {
        k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (1 + (k >> 16) as usize % 64).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunked.push(chunk);
        rest = tail;
        err = drain(&mut chunked, &mut frames);
        if err_fast.is_none() {
            fast.push(chunk);
            err_fast = drain_fast(&mut fast, &mut frames_fast);
        }
    }
    let _ = chunked.buffered();
    let _ = chunked.take_remaining();

    let mut whole = XmlStreamSplitter::new(max_frame);
    whole.push(stream);
    let mut frames_whole = Vec::new();
    let err_whole = drain(&mut whole, &mut frames_whole);

    // Only compare when neither hit the size limit: a chunked reader may notice an
    // oversized frame at a different point.
    let too_large = |e: &Option<SplitError>| matches!(e, Some(SplitError::TooLarge { .. }));
    if !too_large(&err) && !too_large(&err_fast) {
        assert_eq!(frames, frames_fast, "the one-pass path splits differently");
        assert_eq!(err, err_fast, "the one-pass path fails differently");
    }
    if !too_large(&err) && !too_large(&err_whole) {
        assert_eq!(
            frames, frames_whole,
            "frames depend on how the stream is cut"
        );
        assert_eq!(err, err_whole, "the error depends on how the stream is cut");
    }
});
