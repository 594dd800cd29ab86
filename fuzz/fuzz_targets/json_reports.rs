//! `rampart_codec_json::decode_reports`: any body gives a `BodyError` or one result per item,
//! never a panic. Both the array form and the single-object form (MQTT) are exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_json::{DecodeOptions, decode_reports, encode_report};

fuzz_target!(|data: &[u8]| {
    let strict = DecodeOptions::default();
    let single = DecodeOptions {
        allow_single_object: true,
        max_items: 16,
        ..DecodeOptions::default()
    };
    for opts in [&strict, &single] {
        if let Ok(items) = decode_reports(data, opts) {
            for report in items.into_iter().flatten() {
                // A report the decoder accepted is valid: encoding it must work, and the
                // encoded form must decode again.
                let mut body = b"[".to_vec();
                body.extend_from_slice(&encode_report(&report));
                body.push(b']');
                let again = decode_reports(&body, &DecodeOptions::default())
                    .expect("an encoded report is a valid body");
                assert_eq!(again.len(), 1);
                if let Err(e) = &again[0] {
                    panic!(
                        "an accepted report does not decode after encoding: {e:?}\n{}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }
    }
});
