//! Rejections name the element or attribute at fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_codec_cot::{CotError, CotLimits, parse_xml};

fn err(xml: &str) -> String {
    parse_xml(xml.as_bytes(), &CotLimits::default())
        .unwrap_err()
        .to_string()
}

const T: &str = r#"time="2020-01-01T00:00:00.000Z" start="2020-01-01T00:00:00.000Z" stale="2020-01-01T00:05:00.000Z""#;

#[test]
fn names_what_is_wrong() {
    let cases = [
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="abc" lon="1"/></event>"#), r#"event/point@lat: not a number "abc""#),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="NaN" lon="1"/></event>"#), r#"event/point@lat: not a finite number "NaN""#),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lon="1"/></event>"#), "event/point@lat: missing"),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1" hae="high"/></event>"#), r#"event/point@hae: not a number "high""#),
        (format!(r#"<event uid="u" type="a-f-G" {T}></event>"#), "event/point: missing"),
        (format!(r#"<event type="a-f-G" {T}><point lat="1" lon="1"/></event>"#), "event@uid: missing"),
        (format!(r#"<event uid="" type="a-f-G" {T}><point lat="1" lon="1"/></event>"#), "event@uid: must not be empty"),
        (format!(r#"<event uid="u" {T}><point lat="1" lon="1"/></event>"#), "event@type: missing"),
        (r#"<event uid="u" type="a-f-G" stale="2020-01-01T00:05:00Z"><point lat="1" lon="1"/></event>"#.to_owned(), "event@time: missing"),
        (r#"<event uid="u" type="a-f-G" time="2020-01-01T00:05:00Z"><point lat="1" lon="1"/></event>"#.to_owned(), "event@stale: missing"),
        (r#"<event uid="u" type="a-f-G" time="yesterday" stale="2020-01-01T00:05:00Z"><point lat="1" lon="1"/></event>"#.to_owned(), r#"event@time: not a time "yesterday""#),
        (r#"<event uid="u" type="a-f-G" time="1969-12-31T23:59:59Z" stale="2020-01-01T00:05:00Z"><point lat="1" lon="1"/></event>"#.to_owned(), "event@time: \"1969-12-31T23:59:59Z\" is outside"),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/><point lat="1" lon="1"/></event>"#), "event/point: appears more than once"),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/><detail><contact callsign="a &bogus; b"/></detail></event>"#), "event/detail/contact@callsign: bad escape"),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/><detail><contact></detail></event>"#), "malformed XML at byte"),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/><detail>"#), "malformed XML"),
        (r#"<auth><cot username="u" password="p" uid="x"/></auth>"#.to_owned(), "document: expected <event>, found <auth>"),
        (format!(r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/></event><event/>"#), "document: unexpected content after the root element"),
        ("   ".to_owned(), "no <event> element"),
    ];
    for (xml, want) in cases {
        let got = err(&xml);
        assert!(
            got.starts_with(want),
            "input {xml}\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn accepts_time_variants() {
    for (t, ms) in [
        ("2020-01-01T00:00:00Z", 1_577_836_800_000),
        ("2020-01-01T00:00:00.5Z", 1_577_836_800_500),
        ("2020-01-01T00:00:00.123456Z", 1_577_836_800_123),
        ("2020-01-01T02:00:00+02:00", 1_577_836_800_000),
        ("2020-01-01T00:00:00", 1_577_836_800_000),
    ] {
        let xml = format!(
            r#"<event uid="u" type="a-f-G" time="{t}" stale="{t}"><point lat="1" lon="1"/></event>"#
        );
        let ev = parse_xml(xml.as_bytes(), &CotLimits::default()).unwrap();
        assert_eq!(ev.time.0, ms, "{t}");
        assert_eq!(ev.start, None);
    }
}

#[test]
fn limits_are_enforced() {
    let limits = CotLimits {
        max_event_bytes: 300,
        max_depth: 4,
        max_detail_elements: 3,
    };
    let big = format!(
        r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/><detail><x>{}</x></detail></event>"#,
        "y".repeat(300)
    );
    assert!(matches!(
        parse_xml(big.as_bytes(), &limits),
        Err(CotError::TooLarge { max: 300, .. })
    ));
    let deep = format!(
        r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/><detail><a><b><c></c></b></a></detail></event>"#
    );
    assert_eq!(
        parse_xml(deep.as_bytes(), &limits).unwrap_err().to_string(),
        "event/detail/a: elements nest deeper than 4 levels"
    );
    let many = format!(
        r#"<event uid="u" type="a-f-G" {T}><point lat="1" lon="1"/><detail><a/><b/><c/><d/></detail></event>"#
    );
    assert_eq!(
        parse_xml(many.as_bytes(), &limits).unwrap_err(),
        CotError::TooManyElements { max: 3 }
    );
    assert!(matches!(
        parse_xml(b"<event \xff/>", &limits),
        Err(CotError::NotUtf8 { at: 7 })
    ));
}

#[test]
fn tolerates_bom_whitespace_comments_and_empty_optionals() {
    let xml = format!(
        "\u{feff}<?xml version=\"1.0\"?>\n<!-- hi -->\n<event uid=\"u\" type=\"a-f-G\" how=\"\" access=\"\" {T}>\n  <point lat=\" 1.5 \" lon=\"-2\"/>\n  <!-- c -->\n  <detail>\n  </detail>\n</event>\n<!-- bye -->\n"
    );
    let ev = parse_xml(xml.as_bytes(), &CotLimits::default()).unwrap();
    assert_eq!((ev.point.lat, ev.point.lon), (1.5, -2.0));
    assert_eq!((ev.how.as_deref(), ev.access.as_deref()), (None, None));
    assert_eq!(ev.point.hae, 9_999_999.0, "absent hae is CoT's unknown");
    assert!(ev.detail.is_empty());
}
