//! KML output parsed back with roxmltree and compared field by field with the model.
// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use rampart_codec_export::{
    GX_NAMESPACE, ICON_HREF, KML_NAMESPACE, write_entities_kml, write_track_kml,
};
use rampart_model::{AttrValue, Entity, Report};
use roxmltree::{Document, Node};

fn kml(n: Node<'_, '_>, name: &str) -> bool {
    n.has_tag_name((KML_NAMESPACE, name))
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
    n.children()
        .find(|c| kml(*c, name))
        .unwrap_or_else(|| panic!("no <{name}> in <{}>", n.tag_name().name()))
}

fn children<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| kml(*c, name))
}

fn text<'a>(n: Node<'a, '_>, name: &str) -> &'a str {
    child(n, name).text().unwrap_or("")
}

fn extended_data(placemark: Node<'_, '_>) -> BTreeMap<String, String> {
    children(child(placemark, "ExtendedData"), "Data")
        .map(|d| {
            (
                d.attribute("name").unwrap().to_string(),
                text(d, "value").to_string(),
            )
        })
        .collect()
}

fn coords(s: &str) -> Vec<Vec<f64>> {
    s.split_whitespace()
        .map(|tuple| tuple.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

fn parse(out: &[u8]) -> Document<'_> {
    let s = std::str::from_utf8(out).unwrap();
    assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let doc = Document::parse(s).unwrap_or_else(|e| panic!("ill-formed KML: {e}\n{s}"));
    let root = doc.root_element();
    assert!(kml(root, "kml"), "root is {:?}", root.tag_name());
    assert_eq!(root.lookup_namespace_uri(Some("gx")), Some(GX_NAMESPACE));
    doc
}

/// Checks one entity Placemark against the entity, every field.
fn check_entity(p: Node<'_, '_>, e: &Entity) {
    let name = e.callsign.as_deref().unwrap_or(&e.uid);
    assert_eq!(text(p, "name"), sanitized(name));
    assert_eq!(
        text(child(p, "TimeStamp"), "when"),
        e.time.to_rfc3339().as_str()
    );

    let data = extended_data(p);
    let num = |k: &str| data.get(k).map(|v| v.parse::<f64>().unwrap());
    assert_eq!(data["uid"], sanitized(&e.uid));
    assert_eq!(data["type"], &*e.cot_type);
    assert_eq!(data["sidc"], e.sidc().as_str());
    assert_eq!(
        data.get("callsign").map(String::as_str),
        e.callsign.as_deref().map(sanitized).as_deref()
    );
    assert_eq!(num("lat"), Some(e.lat));
    assert_eq!(num("lon"), Some(e.lon));
    assert_eq!(num("hae"), e.hae);
    assert_eq!(num("ce"), e.ce);
    assert_eq!(num("le"), e.le);
    assert_eq!(num("course"), e.course);
    assert_eq!(num("speed"), e.speed);
    assert_eq!(data["how"], &*e.how);
    assert_eq!(data["time"], e.time.to_rfc3339());
    assert_eq!(data["start"], e.start.to_rfc3339());
    assert_eq!(data["stale"], e.stale.to_rfc3339());
    assert_eq!(data["is_stale"], e.is_stale().to_string());
    assert_eq!(data["received"], e.received.to_rfc3339());
    assert_eq!(data["provenance.source"], &*e.provenance.source);
    assert_eq!(data["provenance.identity"], &*e.provenance.identity);
    assert_eq!(data["label.classification"], &*e.label.classification);
    let groups: Vec<&str> = e.label.releasability.iter().map(|g| g.as_str()).collect();
    assert_eq!(
        data.get("label.releasability").cloned().unwrap_or_default(),
        groups.join(";")
    );
    let mut attr_count = 0;
    for (k, v) in e.attributes.iter().flat_map(|a| a.iter()) {
        let got = &data[&format!("attributes.{k}")];
        match v {
            AttrValue::Num(n) => assert_eq!(got.parse::<f64>().unwrap(), *n),
            AttrValue::Text(t) => assert_eq!(got, &sanitized(t)),
        }
        attr_count += 1;
    }
    let fixed = data
        .keys()
        .filter(|k| !k.starts_with("attributes."))
        .count();
    assert_eq!(data.len(), fixed + attr_count, "unexpected Data: {data:?}");

    let aff = rampart_codec_export::Affiliation::of_cot_type(&e.cot_type).name();
    let style = if e.is_stale() {
        format!("#{aff}-stale")
    } else {
        format!("#{aff}")
    };
    assert_eq!(text(p, "styleUrl"), style);

    let point = child(p, "Point");
    let c = coords(text(point, "coordinates"));
    assert_eq!(c.len(), 1);
    match e.hae {
        Some(h) => {
            assert_eq!(c[0], vec![e.lon, e.lat, h]);
            assert_eq!(text(point, "altitudeMode"), "absolute");
        }
        None => {
            assert_eq!(c[0], vec![e.lon, e.lat]);
            assert_eq!(text(point, "altitudeMode"), "clampToGround");
        }
    }
}

/// What an XML parser must read back for a string we wrote.
fn sanitized(s: &str) -> String {
    s.replace(CONTROLS, CONTROLS_READ)
}

#[test]
fn entities_round_trip_field_by_field() {
    let mut plain = entity("u-2", "b-m-p-s-p-i", 0.0, 180.0);
    plain.state = rampart_model::EntityState::Stale;
    let entities = [full_entity(), hostile_entity(), plain];
    let mut out = Vec::new();
    write_entities_kml(&entities, &mut out);
    let doc = parse(&out);
    let document = child(doc.root_element(), "Document");
    assert_eq!(text(document, "name"), "Rampart live picture");

    let styles: BTreeMap<&str, Node> = children(document, "Style")
        .map(|s| (s.attribute("id").unwrap(), s))
        .collect();
    assert_eq!(styles.len(), 8);
    for (id, colour) in [
        ("friend", "ffffe080"),
        ("hostile", "ff8080ff"),
        ("neutral", "ffaaffaa"),
        ("unknown", "ff80ffff"),
        ("unknown-stale", "8080ffff"),
    ] {
        let icon = child(styles[id], "IconStyle");
        assert_eq!(text(icon, "color"), colour);
        assert_eq!(text(child(icon, "Icon"), "href"), ICON_HREF);
    }

    let placemarks: Vec<Node> = children(document, "Placemark").collect();
    assert_eq!(placemarks.len(), entities.len());
    for (p, e) in placemarks.iter().zip(&entities) {
        check_entity(*p, e);
    }
}

#[test]
fn descriptions_are_escaped_html() {
    let e = hostile_entity();
    let mut out = Vec::new();
    write_entities_kml([&e], &mut out);
    let doc = parse(&out);
    let p = child(child(doc.root_element(), "Document"), "Placemark");
    // After XML parsing, the description is the HTML Google Earth renders: the hostile
    // callsign must be text in it, never markup.
    let html = text(p, "description");
    assert!(html.starts_with("<table>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("<td>=SECRET</td>"), "{html}");
    assert!(html.contains("<td>A&amp;B, &lt;C&gt;</td>"), "{html}");
    assert!(html.contains("(stale)"), "{html}");
    let full = full_entity();
    let mut out = Vec::new();
    write_entities_kml([&full], &mut out);
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("3.6 m/s") && s.contains("271.25°") && s.contains("-12.5 m"));
}

#[test]
fn empty_picture_is_a_valid_document() {
    let mut out = Vec::new();
    write_entities_kml(std::iter::empty(), &mut out);
    let doc = parse(&out);
    assert_eq!(
        children(child(doc.root_element(), "Document"), "Placemark").count(),
        0
    );
}

#[test]
fn non_finite_positions_keep_data_without_geometry() {
    let mut e = full_entity();
    e.lat = f64::NAN;
    e.speed = Some(f64::INFINITY);
    let mut out = Vec::new();
    write_entities_kml([&e], &mut out);
    let doc = parse(&out);
    let p = child(child(doc.root_element(), "Document"), "Placemark");
    assert!(children(p, "Point").next().is_none());
    let data = extended_data(p);
    assert!(!data.contains_key("lat") && !data.contains_key("speed"));
    assert_eq!(data["uid"], "u-1");
}

/// The track Placemark, its gx:Track and its LineString, if any.
fn track_parts<'a, 'i>(
    document: Node<'a, 'i>,
) -> (Node<'a, 'i>, Node<'a, 'i>, Option<Node<'a, 'i>>) {
    let p = child(document, "Placemark");
    let geometry = child(p, "MultiGeometry");
    let track = geometry
        .children()
        .find(|c| c.has_tag_name((GX_NAMESPACE, "Track")))
        .unwrap();
    (p, track, children(geometry, "LineString").next())
}

#[test]
fn track_has_gx_track_line_string_and_timed_points() {
    let reports = track("ship-9", 5);
    let mut out = Vec::new();
    write_track_kml("ship-9", &reports, &mut out);
    let doc = parse(&out);
    let document = child(doc.root_element(), "Document");
    let (p, gx_track, line) = track_parts(document);
    assert_eq!(text(p, "name"), "ship-9");
    assert_eq!(text(p, "styleUrl"), "#track");
    assert_eq!(extended_data(p)["type"], "a-n-S");
    let styles: BTreeMap<&str, Node> = children(document, "Style")
        .map(|s| (s.attribute("id").unwrap(), s))
        .collect();
    // Neutral green, for the line as for the icon.
    assert_eq!(
        text(child(styles["track"], "LineStyle"), "color"),
        "ffaaffaa"
    );

    assert_eq!(text(gx_track, "altitudeMode"), "absolute");
    let whens: Vec<&str> = children(gx_track, "when")
        .map(|w| w.text().unwrap())
        .collect();
    let gx_coords: Vec<Vec<f64>> = gx_track
        .children()
        .filter(|c| c.has_tag_name((GX_NAMESPACE, "coord")))
        .map(|c| {
            c.text()
                .unwrap()
                .split(' ')
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect();
    let line = line.unwrap();
    assert_eq!(text(line, "altitudeMode"), "absolute");
    let line_coords = coords(text(line, "coordinates"));
    assert_eq!(whens.len(), reports.len());
    assert_eq!(gx_coords.len(), reports.len());
    assert_eq!(line_coords.len(), reports.len());
    for (i, r) in reports.iter().enumerate() {
        let expected = vec![r.lon, r.lat, r.hae.unwrap()];
        assert_eq!(whens[i], r.time.to_rfc3339());
        assert_eq!(gx_coords[i], expected);
        assert_eq!(line_coords[i], expected);
    }
    // The whens all come before the coords, as the gx schema's sequence requires.
    let kinds: Vec<&str> = gx_track
        .children()
        .filter(|c| c.is_element())
        .map(|c| c.tag_name().name())
        .collect();
    let last_when = kinds.iter().rposition(|k| *k == "when").unwrap();
    let first_coord = kinds.iter().position(|k| *k == "coord").unwrap();
    assert!(last_when < first_coord);

    let folder = child(document, "Folder");
    let points: Vec<Node> = children(folder, "Placemark").collect();
    assert_eq!(points.len(), reports.len());
    for (pt, r) in points.iter().zip(&reports) {
        assert_eq!(text(child(*pt, "TimeStamp"), "when"), r.time.to_rfc3339());
        assert_eq!(text(*pt, "styleUrl"), "#point");
        let data = extended_data(*pt);
        assert_eq!(data["speed"].parse::<f64>().unwrap(), r.speed.unwrap());
        assert_eq!(data["course"], "45");
        assert_eq!(data["sidc"], "SNSP-----------");
        let c = coords(text(child(*pt, "Point"), "coordinates"));
        assert_eq!(c, vec![vec![r.lon, r.lat, r.hae.unwrap()]]);
    }
}

#[test]
fn track_with_missing_heights_is_clamped_and_hostile_text_survives() {
    let reports = edge_track(HOSTILE);
    let mut out = Vec::new();
    write_track_kml(HOSTILE, &reports, &mut out);
    let doc = parse(&out);
    let document = child(doc.root_element(), "Document");
    let (p, gx_track, line) = track_parts(document);
    // The newest callsign names the track; the newest type colours it (hostile).
    assert_eq!(text(p, "name"), HOSTILE);
    assert_eq!(extended_data(p)["uid"], HOSTILE);
    assert_eq!(text(gx_track, "altitudeMode"), "clampToGround");
    let line = line.unwrap();
    assert_eq!(text(line, "tessellate"), "1");
    assert_eq!(
        coords(text(line, "coordinates")),
        vec![vec![180.0, 10.0], vec![-179.9, 10.5]]
    );
    let points: Vec<Node> = children(child(document, "Folder"), "Placemark").collect();
    let a = extended_data(points[0]);
    assert_eq!(a["id.source"], "gw-7");
    assert_eq!(a["id.seq"], "42");
    assert_eq!(a["label.classification"], "UNCLASSIFIED");
    assert!(!a.contains_key("type") && !a.contains_key("hae"));
    let b = extended_data(points[1]);
    assert_eq!(b["id"], "k-1");
    assert_eq!(b["callsign"], HOSTILE);
    assert_eq!(b["attributes.note"], CONTROLS_READ);
    assert_eq!(b["label.releasability"], "NATO");
    assert_eq!(b["time"], "2026-01-02T03:01:00.500Z");
}

#[test]
fn short_tracks_stay_valid() {
    for n in [0, 1] {
        let reports: Vec<Report> = track("x", n);
        let mut out = Vec::new();
        write_track_kml("x", &reports, &mut out);
        let doc = parse(&out);
        let document = child(doc.root_element(), "Document");
        let (p, gx_track, line) = track_parts(document);
        assert_eq!(text(p, "name"), "x");
        assert_eq!(children(gx_track, "when").count(), n);
        // A LineString needs two positions; one point is left to gx:Track and the Folder.
        assert!(line.is_none());
    }
}

/// Optional: Python's parser, as a second opinion, when the project's venv exists.
#[test]
fn python_etree_accepts_the_output() {
    let python = std::env::var("RAMPART_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../target/pyenv/bin/python"
        )
        .into()
    });
    if !std::path::Path::new(&python).exists() {
        eprintln!("skipped: no python at {python}");
        return;
    }
    let mut docs = Vec::new();
    let mut out = Vec::new();
    write_entities_kml(&[full_entity(), hostile_entity()], &mut out);
    docs.push(out);
    let mut out = Vec::new();
    write_track_kml(HOSTILE, &edge_track(HOSTILE), &mut out);
    docs.push(out);
    let mut out = Vec::new();
    rampart_codec_export::write_track_gpx(HOSTILE, &edge_track(HOSTILE), &mut out);
    docs.push(out);
    for doc in docs {
        use std::io::Write;
        let mut child = std::process::Command::new(&python)
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as ET; ET.fromstring(sys.stdin.buffer.read())",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&doc).unwrap();
        assert!(
            child.wait().unwrap().success(),
            "{}",
            String::from_utf8_lossy(&doc)
        );
    }
}
