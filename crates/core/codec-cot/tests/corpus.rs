//! The sample corpus (tests/samples/*.xml, realistic ATAK/iTAK/TAK Server traffic) round
//! trips exactly: XML → event → XML, XML → protobuf (stream and mesh) → XML, and the typed
//! detail lands where TAK's rules put it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use rampart_codec_cot::proto::{self, TakMessage};
use rampart_codec_cot::{
    CotEvent, CotLimits, EncodeOptions, ProtoStreamSplitter, decode_mesh, encode_mesh,
    encode_stream, encode_xml, encode_xml_with, parse_xml,
};

fn samples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 13, "corpus is missing samples: {out:?}");
    out
}

fn sample(name: &str) -> CotEvent {
    let (_, xml) = samples().into_iter().find(|(n, _)| n == name).unwrap();
    parse_xml(xml.as_bytes(), &CotLimits::default()).unwrap()
}

fn via_stream(ev: &CotEvent) -> CotEvent {
    let bytes = encode_stream(&ev.to_tak_message());
    let mut s = ProtoStreamSplitter::default();
    s.push(&bytes);
    let msg = s.next_message().unwrap().unwrap();
    assert_eq!(s.next_frame().unwrap(), None);
    CotEvent::from_tak_message(&msg, &CotLimits::default()).unwrap()
}

fn via_mesh(ev: &CotEvent) -> CotEvent {
    let msg = decode_mesh(&encode_mesh(&ev.to_tak_message())).unwrap();
    CotEvent::from_tak_message(&msg, &CotLimits::default()).unwrap()
}

#[test]
fn every_sample_round_trips_through_xml() {
    for (name, xml) in samples() {
        let ev = parse_xml(xml.as_bytes(), &CotLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = encode_xml(&ev);
        let again = parse_xml(out.as_bytes(), &CotLimits::default())
            .unwrap_or_else(|e| panic!("{name}: re-parse: {e}\n{out}"));
        assert_eq!(
            again, ev,
            "{name}: XML → event → XML changed the event\n{out}"
        );
        assert_eq!(encode_xml(&again), out, "{name}: encoding is not stable");
        let declared = encode_xml_with(
            &ev,
            &EncodeOptions {
                xml_declaration: true,
            },
        );
        assert!(
            declared.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<event "
            )
        );
        assert_eq!(
            parse_xml(declared.as_bytes(), &CotLimits::default()).unwrap(),
            ev
        );
    }
}

#[test]
fn every_sample_round_trips_through_protobuf() {
    for (name, xml) in samples() {
        let mut ev = parse_xml(xml.as_bytes(), &CotLimits::default()).unwrap();
        // Only these have no place in the protobuf form (documented); no TAK sample has them
        // except the non-TAK producer's namespace declaration.
        if name == "sensor-namespaced.xml" {
            assert_eq!(ev.extra_attrs.len(), 1);
            ev.extra_attrs.clear();
        }
        let xml_out = encode_xml(&ev);
        for (how, back) in [("stream", via_stream(&ev)), ("mesh", via_mesh(&ev))] {
            assert_eq!(
                back, ev,
                "{name}: XML → {how} protobuf → event changed the event"
            );
            assert_eq!(
                encode_xml(&back),
                xml_out,
                "{name}: XML → {how} → XML differs"
            );
        }
    }
}

#[test]
fn pli_uses_every_typed_submessage() {
    let ev = sample("pli-atak.xml");
    assert_eq!(ev.callsign(), Some("HOPE"));
    assert_eq!(ev.point.le, 9_999_999.0);
    let p = ev.to_proto();
    let d = p.detail.as_ref().unwrap();
    assert_eq!(
        d.contact,
        Some(proto::Contact {
            endpoint: "*:-1:stcp".into(),
            callsign: "HOPE".into()
        })
    );
    assert_eq!(
        d.group,
        Some(proto::Group {
            name: "Cyan".into(),
            role: "Team Member".into()
        })
    );
    assert_eq!(d.status, Some(proto::Status { battery: 87 }));
    assert_eq!(
        d.track,
        Some(proto::Track {
            speed: 1.42,
            course: 127.30000000000001
        })
    );
    assert_eq!(
        d.takv.as_ref().map(|t| t.platform.as_str()),
        Some("ATAK-CIV")
    );
    assert_eq!(
        d.precision_location,
        Some(proto::PrecisionLocation {
            geopointsrc: "GPS".into(),
            altsrc: "GPS".into()
        })
    );
    // Only the element without a sub-message travels as XML.
    assert_eq!(d.xml_detail, r#"<uid Droid="HOPE"/>"#);
    assert_eq!(p.send_time, 1_715_678_493_412);
    assert_eq!(p.stale_time, 1_715_678_868_412);
    assert_eq!(p.how, "m-g");
}

#[test]
fn inexact_elements_stay_in_xml_detail() {
    let ev = sample("pli-phone.xml");
    let c = ev.detail.contact.as_ref().unwrap();
    assert_eq!(c.extra.get("phone"), Some("+32 470 12 34 56"));
    // `course="NaN"` is not a usable number: kept verbatim, not typed.
    let t = ev.detail.track.as_ref().unwrap();
    assert_eq!(t.course, None);
    assert_eq!(t.speed, Some(0.0));
    assert_eq!(t.extra.get("course"), Some("NaN"));
    let d = ev.to_proto().detail.unwrap();
    assert_eq!(d.contact, None, "contact with phone must stay XML");
    assert_eq!(d.status, None, "status with readiness must stay XML");
    assert_eq!(d.track, None);
    assert!(d.takv.is_some() && d.group.is_some() && d.precision_location.is_some());
    assert!(d.xml_detail.starts_with(r#"<contact callsign="VIPER" endpoint="192.168.1.23:4242:tcp" phone="+32 470 12 34 56" emailAddress="viper@example.org"/><status battery="100" readiness="true"/><track speed="0" course="NaN"/>"#), "{}", d.xml_detail);
    assert!(d.xml_detail.ends_with(
        r#"<_flow-tags_ TAK-Server-e87a0e02420b44a08f6032bcf1877745='2024-05-14T09:21:35Z'/>"#
    ));

    let marker = sample("marker-spot.xml").to_proto().detail.unwrap();
    assert_eq!(marker.contact.map(|c| c.callsign), Some("R 1".into()));
    assert_eq!(
        marker.precision_location, None,
        "altsrc without geopointsrc stays XML"
    );
    assert_eq!(marker.status, None);
}

#[test]
fn unknown_detail_is_kept_verbatim() {
    let marker = encode_xml(&sample("marker-spot.xml"));
    for raw in [
        r#"<usericon iconsetpath="COT_MAPPING_SPOTMAP/b-m-p-s-m/-1"/>"#,
        r#"<color argb="-1"/>"#,
        "<archive/><archive/>",
    ] {
        assert!(marker.contains(raw), "{raw} missing from {marker}");
    }
    let chat = sample("geochat.xml");
    assert!(
        chat.detail
            .unknown
            .contains(&r#"<marti><dest callsign="VIPER"/></marti>"#.to_owned())
    );
    let group_chat = sample("geochat-group.xml");
    let c = group_chat.detail.chat.as_ref().unwrap();
    assert_eq!(
        c.chat_group.as_ref().unwrap().extra.get("uid2"),
        Some("ANDROID-ffeeddccbbaa0099")
    );
    assert!(
        c.extra
            .children
            .starts_with("<hierarchy><group uid=\"UserGroups\"")
    );
    let sensor = sample("sensor-namespaced.xml");
    assert!(sensor.detail.unknown[0].starts_with(
        r#"<sensor fov="60" vfov="40" azimuth="270" range="4000" model="EO/IR &quot;X&quot;"/>"#
    ));
    assert!(
        sensor.detail.unknown[1]
            .starts_with(r#"<__video url="rtsp://10.0.0.7:554/live"><ConnectionEntry "#)
    );
}

#[test]
fn typed_fields_of_the_corpus() {
    let chat = sample("geochat.xml");
    let c = chat.detail.chat.as_ref().unwrap();
    assert_eq!(c.chatroom.as_deref(), Some("All Chat Rooms"));
    assert_eq!(c.sender_callsign.as_deref(), Some("HOPE"));
    assert_eq!(
        c.chat_group.as_ref().unwrap().uid0.as_deref(),
        Some("ANDROID-589520ccfcd20f01")
    );
    let r = chat.detail.remarks.as_ref().unwrap();
    assert_eq!(r.text, "Rally at CP Bravo & wait <10 min> — \"ok\"?");
    assert_eq!(r.to.as_deref(), Some("All Chat Rooms"));
    assert_eq!(chat.detail.links[0].relation.as_deref(), Some("p-p"));

    let e = sample("emergency.xml");
    let em = e.detail.emergency.as_ref().unwrap();
    assert_eq!(
        (em.emergency_type.as_deref(), em.text.as_str()),
        (Some("911 Alert"), "HOPE")
    );
    let cancel = sample("emergency-cancel.xml");
    assert_eq!(
        cancel.detail.emergency.as_ref().unwrap().cancel.as_deref(),
        Some("true")
    );

    let shape = sample("shape-freehand.xml");
    assert_eq!(shape.detail.links.len(), 13);
    assert_eq!(
        shape.detail.links[4].point.as_deref(),
        Some("50.8452,4.3480,112.5")
    );
    assert_eq!(shape.detail.remarks.as_ref().unwrap().text, "");

    let sensor = sample("sensor-namespaced.xml");
    assert_eq!(sensor.time.to_rfc3339(), "2024-05-14T09:00:00.000Z");
    assert_eq!(sensor.caveat.as_deref(), Some("FOUO"));
    assert_eq!(sensor.releasable_to.as_deref(), Some("NATO"));
    assert_eq!(sensor.to_proto().releaseable_to, "NATO");
    assert_eq!(
        sensor.detail.track.as_ref().unwrap().extra.get("slope"),
        Some("0.5")
    );

    let ping = sample("ping.xml");
    assert!(ping.detail.is_empty());
    assert_eq!(ping.to_proto().detail, None);
}

/// Protobuf bytes written by hand from the field numbers of the TAK protocol definitions,
/// so a wrong tag or wire type in the prost structs cannot go unnoticed.
#[test]
fn protobuf_field_numbers_match_hand_built_bytes() {
    fn field(out: &mut Vec<u8>, tag: u8, wire: u8) {
        out.push((tag << 3) | wire);
    }
    fn string(out: &mut Vec<u8>, tag: u8, s: &str) {
        field(out, tag, 2);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    fn varint(out: &mut Vec<u8>, tag: u8, mut v: u64) {
        field(out, tag, 0);
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
    fn double(out: &mut Vec<u8>, tag: u8, v: f64) {
        field(out, tag, 1);
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        field(out, tag, 2);
        out.push(body.len() as u8);
        out.extend_from_slice(body);
    }
    let mut contact = Vec::new();
    string(&mut contact, 1, "*:-1:stcp");
    string(&mut contact, 2, "HOPE");
    let mut group = Vec::new();
    string(&mut group, 1, "Cyan");
    string(&mut group, 2, "Team Member");
    let mut prec = Vec::new();
    string(&mut prec, 1, "GPS");
    string(&mut prec, 2, "DTED0");
    let mut status = Vec::new();
    varint(&mut status, 1, 87);
    let mut takv = Vec::new();
    string(&mut takv, 1, "Pixel");
    string(&mut takv, 2, "ATAK-CIV");
    string(&mut takv, 3, "34");
    string(&mut takv, 4, "5.1");
    let mut track = Vec::new();
    double(&mut track, 1, 1.5);
    double(&mut track, 2, 270.25);
    let mut detail = Vec::new();
    string(&mut detail, 1, r#"<uid Droid="HOPE"/>"#);
    message(&mut detail, 2, &contact);
    message(&mut detail, 3, &group);
    message(&mut detail, 4, &prec);
    message(&mut detail, 5, &status);
    message(&mut detail, 6, &takv);
    message(&mut detail, 7, &track);
    let mut ev = Vec::new();
    string(&mut ev, 1, "a-f-G-U-C");
    string(&mut ev, 2, "acc");
    string(&mut ev, 3, "q");
    string(&mut ev, 4, "op");
    string(&mut ev, 5, "ANDROID-1");
    varint(&mut ev, 6, 1_715_678_493_412);
    varint(&mut ev, 7, 1_715_678_493_413);
    varint(&mut ev, 8, 1_715_678_868_412);
    string(&mut ev, 9, "m-g");
    double(&mut ev, 10, 50.85);
    double(&mut ev, 11, 4.35);
    double(&mut ev, 12, 71.2);
    double(&mut ev, 13, 4.9);
    double(&mut ev, 14, 9_999_999.0);
    message(&mut ev, 15, &detail);
    let mut control = Vec::new();
    varint(&mut control, 1, 1);
    varint(&mut control, 2, 1);
    string(&mut control, 3, "ANDROID-1");
    let mut msg = Vec::new();
    message(&mut msg, 1, &control);
    field(&mut msg, 2, 2);
    // The event is longer than 127 bytes: a two-byte length varint.
    msg.push((ev.len() as u8 & 0x7f) | 0x80);
    msg.push((ev.len() >> 7) as u8);
    msg.extend_from_slice(&ev);

    let decoded = rampart_codec_cot::decode_payload(&msg).unwrap();
    let event = CotEvent::from_tak_message(&decoded, &CotLimits::default()).unwrap();
    assert_eq!(event.cot_type, "a-f-G-U-C");
    assert_eq!(
        (
            event.access.as_deref(),
            event.qos.as_deref(),
            event.opex.as_deref()
        ),
        (Some("acc"), Some("q"), Some("op"))
    );
    assert_eq!(event.start.unwrap().0, 1_715_678_493_413);
    assert_eq!(event.callsign(), Some("HOPE"));
    assert_eq!(
        event.detail.uid.as_ref().unwrap().droid.as_deref(),
        Some("HOPE")
    );
    assert_eq!(
        event
            .detail
            .precision_location
            .as_ref()
            .unwrap()
            .altsrc
            .as_deref(),
        Some("DTED0")
    );
    assert_eq!(event.detail.track.as_ref().unwrap().course, Some(270.25));
    let control_msg = decoded.tak_control.as_ref().unwrap();
    assert_eq!(
        (control_msg.min_proto_version, control_msg.max_proto_version),
        (1, 1)
    );
    // Our encoder writes exactly these bytes back (fields in number order, as protobuf does).
    assert_eq!(prost::Message::encode_to_vec(&decoded), msg);
    let again = TakMessage {
        tak_control: decoded.tak_control.clone(),
        ..event.to_tak_message()
    };
    assert_eq!(prost::Message::encode_to_vec(&again), msg);
    // Stream framing: magic, varint length, payload.
    let framed = encode_stream(&again);
    assert_eq!(framed[0], 0xbf);
    assert_eq!(
        &framed[1..3],
        &[(msg.len() as u8 & 0x7f) | 0x80, (msg.len() >> 7) as u8]
    );
    assert_eq!(&framed[3..], &msg[..]);
    assert_eq!(&encode_mesh(&again)[..3], &[0xbf, 0x01, 0xbf]);
}

#[test]
fn repeated_typed_elements_survive_protobuf() {
    // A second <contact> stays unknown; the first must then not go to the typed field, or
    // the receiver (which lets xmlDetail win) would swap them.
    let xml = r#"<event version="2.0" uid="d" type="a-f-G" time="2024-01-01T00:00:00Z" stale="2024-01-01T00:05:00Z"><point lat="1" lon="2"/><detail><contact callsign="first"/><status battery="1"/><contact callsign="second"/><status battery="2"/><track course="1" speed="2"/></detail></event>"#;
    let ev = parse_xml(xml.as_bytes(), &CotLimits::default()).unwrap();
    assert_eq!(ev.callsign(), Some("first"));
    let d = ev.to_proto().detail.unwrap();
    assert_eq!(
        (d.contact.is_none(), d.status.is_none(), d.track.is_some()),
        (true, true, true)
    );
    assert_eq!(via_stream(&ev), ev);
}
