//! Fixtures shared by the export tests: ordinary and hostile entities and reports.

#![allow(dead_code)]

use std::sync::Arc;

use rampart_model::{
    AttrValue, Attributes, Entity, EntityState, Label, Provenance, Report, ReportId, Timestamp,
};

/// Text every escaping layer must survive: XML and HTML specials, CSV specials, a formula,
/// unicode outside the BMP.
pub const HOSTILE: &str = "=HYPERLINK(\"x\") <b>&amp;</b> 'q', \"dq\" ]]> 漢字 🚁";

/// Control characters XML 1.0 cannot carry, next to the three it can.
pub const CONTROLS: &str = "a\u{0}b\u{1b}c\u{8}d\u{FFFF}e\tf\ng\rh";

/// [`CONTROLS`] as an XML parser must read it back from our output.
pub const CONTROLS_READ: &str = "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}e\tf\ng\rh";

pub fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

pub fn attrs(pairs: &[(&str, AttrValue)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}

pub fn entity(uid: &str, cot_type: &str, lat: f64, lon: f64) -> Entity {
    Entity {
        uid: uid.into(),
        cot_type: Arc::from(cot_type),
        callsign: None,
        lat,
        lon,
        hae: None,
        ce: None,
        le: None,
        course: None,
        speed: None,
        how: Arc::from("m-g"),
        time: t("2026-01-02T03:04:05.123Z"),
        start: t("2026-01-02T03:04:05.123Z"),
        stale: t("2026-01-02T03:09:05.123Z"),
        provenance: Arc::new(Provenance::new("http", "anonymous")),
        attributes: None,
        label: Arc::new(Label::unclassified()),
        state: EntityState::Live,
        received: t("2026-01-02T03:04:05.200Z"),
    }
}

/// A friendly ground unit with every optional field set.
pub fn full_entity() -> Entity {
    let mut e = entity("u-1", "a-f-G-U-C", 51.501_234_567, -0.141_987_654);
    e.callsign = Some("ALPHA 1".into());
    e.hae = Some(-12.5);
    e.ce = Some(4.0);
    e.le = Some(9.5);
    e.course = Some(271.25);
    e.speed = Some(3.6);
    e.label = Arc::new(Label {
        classification: "SECRET".into(),
        releasability: vec!["NATO".into(), "FVEY".into()],
    });
    e.provenance = Arc::new(Provenance::new("cot-tcp", "CN=gw-7"));
    e.attributes = Some(Box::new(attrs(&[
        ("battery", AttrValue::Num(-0.25)),
        ("fw", AttrValue::Text("1.2.3".into())),
    ])));
    e
}

/// An entity whose every text field is hostile.
pub fn hostile_entity() -> Entity {
    let mut e = entity(HOSTILE, "a-h-A-M-F", -33.865_143, 151.209_9);
    e.callsign = Some(format!("<script>alert(1)</script>{CONTROLS}").into());
    e.how = Arc::from("-h<e>");
    e.provenance = Arc::new(Provenance::new("@src", "+id,\"x\""));
    e.label = Arc::new(Label {
        classification: "=SECRET".into(),
        releasability: vec!["A&B".into(), "<C>".into()],
    });
    e.attributes = Some(Box::new(attrs(&[
        ("note", AttrValue::Text(CONTROLS.into())),
        ("<key \"&\">", AttrValue::Text(HOSTILE.into())),
        ("depth", AttrValue::Num(-1500.75)),
    ])));
    e.state = EntityState::Stale;
    e
}

/// A track of `n` reports one minute apart, moving north-east, all with height.
pub fn track(uid: &str, n: usize) -> Vec<Report> {
    (0..n)
        .map(|i| {
            let f = i as f64;
            let mut r = Report::new(
                uid,
                -10.5 + f * 0.001,
                -179.5 + f * 0.002,
                t("2026-01-02T03:00:00Z").plus_millis(i as i64 * 60_000),
            );
            r.cot_type = Some("a-n-S".into());
            r.hae = Some(100.0 + f);
            r.speed = Some(5.0 + f);
            r.course = Some(45.0);
            r.how = Some("m-g".into());
            r.provenance = Provenance::new("ais", "feed-1");
            r
        })
        .collect()
}

/// Reports that exercise the edges: no height, hostile text, a 180° longitude, a 360°
/// course, a sequence id, labels.
pub fn edge_track(uid: &str) -> Vec<Report> {
    let mut a = Report::new(uid, 10.0, 180.0, t("2026-01-02T03:00:00Z"));
    a.course = Some(360.0);
    a.label = Some(Label::unclassified());
    a.id = Some(ReportId::Seq {
        source: "gw-7".into(),
        seq: 42,
    });
    let mut b = Report::new(uid, 10.5, -179.9, t("2026-01-02T03:01:00.5Z"));
    b.callsign = Some(HOSTILE.into());
    b.cot_type = Some("a-h-G".into());
    b.hae = Some(5.0);
    b.speed = Some(0.0);
    b.label = Some(Label {
        classification: "SECRET".into(),
        releasability: vec!["NATO".into()],
    });
    b.attributes = attrs(&[("note", AttrValue::Text(CONTROLS.into()))]);
    b.id = Some(ReportId::Key("k-1".into()));
    vec![a, b]
}
