//! `rampart_codec_cot::parse_xml`: never panics; an event it accepts encodes with
//! `encode_xml`, and that XML parses again (the round trip must succeed) to an event that
//! encodes to the same XML (encoding is stable). The event also goes through the TAK
//! protobuf form and the model conversion, which must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_cot::{CotEvent, CotLimits, decode_mesh, encode_mesh, encode_xml, parse_xml};

fuzz_target!(|data: &[u8]| {
    let limits = CotLimits::default();
    let Ok(ev) = parse_xml(data, &limits) else {
        return;
    };
    let xml = encode_xml(&ev);
    let again = match parse_xml(xml.as_bytes(), &limits) {
        Ok(again) => again,
        Err(e) => {
            panic!("encode_xml output does not parse again: {e}\ninput event: {ev:?}\nxml: {xml}")
        }
    };
    let xml2 = encode_xml(&again);
    assert_eq!(xml, xml2, "encoding is not stable");

    // Protobuf and model conversions of an accepted event: errors are fine, panics are not.
    let msg = ev.to_tak_message();
    if let Ok(back) = decode_mesh(&encode_mesh(&msg)) {
        let _ = CotEvent::from_tak_message(&back, &limits);
    }
    let _ = ev.to_report();
});
