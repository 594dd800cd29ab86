//! CoT events ⇄ model reports and entities.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rampart_codec_cot::report::attr;
use rampart_codec_cot::{CotEvent, CotLimits, encode_xml, parse_xml};
use rampart_model::{
    AttrValue, Attributes, Entity, EntityState, Label, Limits, Provenance, Report, Text, Timestamp,
};

fn sample(name: &str) -> CotEvent {
    let path = format!("{}/tests/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    parse_xml(&std::fs::read(path).unwrap(), &CotLimits::default()).unwrap()
}

fn text(r: &Report, k: &str) -> Option<String> {
    match r.attributes.get(k) {
        Some(AttrValue::Text(t)) => Some(t.to_string()),
        _ => None,
    }
}

#[test]
fn pli_to_report() {
    let r = sample("pli-atak.xml").to_report().unwrap();
    assert_eq!(r.uid, "ANDROID-589520ccfcd20f01");
    assert_eq!(r.cot_type.as_deref(), Some("a-f-G-U-C"));
    assert_eq!(r.callsign.as_deref(), Some("HOPE"));
    assert_eq!((r.lat, r.lon), (50.8503412, 4.3517103));
    assert_eq!((r.hae, r.ce, r.le), (Some(71.2), Some(4.9), None));
    assert_eq!((r.course, r.speed), (Some(127.30000000000001), Some(1.42)));
    assert_eq!(r.how.as_deref(), Some("m-g"));
    assert_eq!(r.time, Timestamp(1_715_678_493_412));
    assert_eq!(r.start, Some(Timestamp(1_715_678_493_412)));
    assert_eq!(r.stale, Some(Timestamp(1_715_678_868_412)));
    assert_eq!(r.attributes.get(attr::BATTERY), Some(&AttrValue::Num(87.0)));
    assert_eq!(text(&r, attr::GROUP_NAME).as_deref(), Some("Cyan"));
    assert_eq!(text(&r, attr::GROUP_ROLE).as_deref(), Some("Team Member"));
    assert_eq!(
        text(&r, attr::CONTACT_ENDPOINT).as_deref(),
        Some("*:-1:stcp")
    );
    assert_eq!(text(&r, attr::TAKV_PLATFORM).as_deref(), Some("ATAK-CIV"));
    assert_eq!(
        text(&r, attr::TAKV_VERSION).as_deref(),
        Some("4.10.0.48 (3e0c0db8).1700000000-CIV")
    );
    assert_eq!(
        text(&r, attr::TAKV_DEVICE).as_deref(),
        Some("SAMSUNG SM-G991B")
    );
    assert_eq!(text(&r, attr::TAKV_OS).as_deref(), Some("33"));
    assert_eq!(text(&r, attr::GEOPOINTSRC).as_deref(), Some("GPS"));
    assert_eq!(text(&r, attr::DROID).as_deref(), Some("HOPE"));
    assert!(r.label.is_none() && r.id.is_none());
}

#[test]
fn every_sample_maps_to_a_valid_report() {
    for name in std::fs::read_dir(format!("{}/tests/samples", env!("CARGO_MANIFEST_DIR"))).unwrap()
    {
        let name = name.unwrap().file_name().into_string().unwrap();
        let r = sample(&name)
            .to_report()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Limits::default().validate(&r).unwrap();
    }
    let e = sample("emergency.xml").to_report().unwrap();
    assert_eq!(text(&e, attr::EMERGENCY_TYPE).as_deref(), Some("911 Alert"));
    assert_eq!(
        text(&e, attr::LINK_PARENT_UID).as_deref(),
        Some("ANDROID-589520ccfcd20f01")
    );
    let c = sample("geochat.xml").to_report().unwrap();
    assert_eq!(text(&c, attr::CHAT_ROOM).as_deref(), Some("All Chat Rooms"));
    assert_eq!(text(&c, attr::CHAT_SENDER).as_deref(), Some("HOPE"));
    assert!(
        text(&c, attr::REMARKS)
            .unwrap()
            .starts_with("Rally at CP Bravo & wait")
    );
    let p = sample("pli-phone.xml").to_report().unwrap();
    assert_eq!(
        text(&p, attr::CONTACT_PHONE).as_deref(),
        Some("+32 470 12 34 56")
    );
    assert_eq!(p.course, None, "course=NaN is no course");
    assert_eq!(
        p.attributes.get(attr::BATTERY),
        Some(&AttrValue::Num(100.0))
    );
    let s = sample("sensor-namespaced.xml").to_report().unwrap();
    assert_eq!(s.course, Some(270.0), "-90 folds to 270");
}

#[test]
fn overlong_and_odd_texts_are_fitted_not_fatal() {
    let mut ev = sample("pli-atak.xml");
    let d = &mut ev.detail;
    d.contact.as_mut().unwrap().callsign = Some(Text::from("C".repeat(500)));
    d.remarks = Some(rampart_codec_cot::Remarks {
        text: format!("line1\nline2\t{}", "é".repeat(1000)),
        ..Default::default()
    });
    d.group.as_mut().unwrap().name = Some(Text::from("\u{1}\u{2}"));
    ev.how = Some(Text::from("h-e-much-too-long-how"));
    ev.stale = Timestamp(ev.time.0 - 1000);
    ev.point.hae = 999_999.0;
    ev.point.ce = -5.0;
    let r = ev.to_report().unwrap();
    assert_eq!(r.callsign.as_ref().unwrap().len(), 128);
    let remarks = text(&r, attr::REMARKS).unwrap();
    assert!(remarks.len() <= 1024 && remarks.starts_with("line1 line2 é"));
    assert_eq!(
        text(&r, attr::GROUP_NAME),
        None,
        "nothing but control characters"
    );
    assert_eq!(r.how, None);
    assert_eq!(r.stale, Some(r.time));
    assert_eq!((r.hae, r.ce), (None, None));

    let small = Limits {
        max_attributes: 2,
        ..Limits::default()
    };
    let r = sample("pli-atak.xml").to_report_with(&small).unwrap();
    assert_eq!(r.attributes.len(), 2);
    assert!(r.attributes.contains_key(attr::BATTERY));

    // What the model cannot do without still fails, naming the field.
    let mut ev = sample("pli-atak.xml");
    ev.point.lat = 91.0;
    assert_eq!(ev.to_report().unwrap_err().field, "lat");
    ev.point.lat = 0.0;
    ev.cot_type = Text::from("a-.-G");
    assert_eq!(ev.to_report().unwrap_err().field, "type");
}

fn http_report() -> Report {
    let mut attributes = Attributes::new();
    attributes.insert(attr::BATTERY.into(), AttrValue::Num(54.6));
    attributes.insert(attr::GROUP_NAME.into(), AttrValue::Text("Red".into()));
    attributes.insert(attr::GROUP_ROLE.into(), AttrValue::Text("HQ".into()));
    attributes.insert(
        attr::REMARKS.into(),
        AttrValue::Text("from <HTTP> & co".into()),
    );
    attributes.insert("fuel".into(), AttrValue::Num(0.5));
    Report {
        cot_type: Some("a-n-S".into()),
        callsign: Some("MV Example".into()),
        hae: Some(12.5),
        course: Some(90.0),
        speed: Some(5.5),
        how: Some("m-g".into()),
        start: Some(Timestamp(1_700_000_000_000)),
        stale: Some(Timestamp(1_700_000_300_000)),
        attributes,
        ..Report::new("ais-244660000", 51.9, 4.1, Timestamp(1_700_000_000_000))
    }
}

#[test]
fn report_to_cot() {
    let ev = CotEvent::from_report(&http_report());
    let xml = encode_xml(&ev);
    assert_eq!(
        xml,
        r#"<event version="2.0" uid="ais-244660000" type="a-n-S" time="2023-11-14T22:13:20.000Z" start="2023-11-14T22:13:20.000Z" stale="2023-11-14T22:18:20.000Z" how="m-g"><point lat="51.9" lon="4.1" hae="12.5" ce="9999999" le="9999999"/><detail><contact callsign="MV Example"/><__group name="Red" role="HQ"/><status battery="55"/><track course="90" speed="5.5"/><remarks>from &lt;HTTP&gt; &amp; co</remarks></detail></event>"#
    );
    // And back: the CoT-expressible part survives (fuel has no CoT element).
    let back = parse_xml(xml.as_bytes(), &CotLimits::default())
        .unwrap()
        .to_report()
        .unwrap();
    let mut want = http_report();
    want.attributes.remove("fuel");
    want.attributes
        .insert(attr::BATTERY.into(), AttrValue::Num(55.0));
    assert_eq!(back, want);
    // Defaults for what a report leaves out.
    let bare = CotEvent::from_report(&Report::new("x", 1.0, 2.0, Timestamp(0)));
    assert_eq!(bare.cot_type, "a-u-G");
    assert_eq!(bare.how.as_deref(), Some("h-e"));
    assert_eq!(bare.stale, Timestamp(300_000));
    assert!(bare.detail.is_empty());
}

#[test]
fn entity_to_cot() {
    let r = http_report();
    let e = Entity {
        uid: r.uid.clone(),
        cot_type: Arc::from("a-n-S"),
        callsign: r.callsign.clone(),
        lat: r.lat,
        lon: r.lon,
        hae: r.hae,
        ce: None,
        le: None,
        course: r.course,
        speed: r.speed,
        how: Arc::from("m-g"),
        time: r.time,
        start: r.time,
        stale: r.stale.unwrap(),
        provenance: Arc::new(Provenance::new("http", "anonymous")),
        attributes: Some(Box::new(r.attributes.clone())),
        label: Arc::new(Label::unclassified()),
        state: EntityState::Live,
        received: r.time,
    };
    assert_eq!(CotEvent::from_entity(&e), CotEvent::from_report(&r));
}

/// `to_report_with` validates only what fitting cannot guarantee; what it returns and the
/// errors it gives are still exactly `Limits::validate`'s, attribute names included.
#[test]
fn report_validation_matches_the_model() {
    for name in [
        "pli-atak.xml",
        "geochat.xml",
        "emergency.xml",
        "marker-spot.xml",
    ] {
        let ev = sample(name);
        let r = ev.to_report().unwrap();
        Limits::default().validate(&r).unwrap();
        // The map is in key order and holds each attribute once, as inserting would.
        let keys: Vec<&str> = r.attributes.keys().map(|k| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(keys, sorted, "{name}");
        // A name limit below the longest name used fails as the model fails it.
        let longest = keys.iter().map(|k| k.len()).max().unwrap();
        let tight = Limits {
            max_attribute_key_len: longest - 1,
            ..Limits::default()
        };
        let err = ev.to_report_with(&tight).unwrap_err();
        assert_eq!(err, tight.validate(&r).unwrap_err(), "{name}");
        assert_eq!(err.field, "attributes");
        // An earlier field still fails first.
        let mut bad = ev.clone();
        bad.point.lon = 181.0;
        assert_eq!(bad.to_report_with(&tight).unwrap_err().field, "lon");
    }
}
