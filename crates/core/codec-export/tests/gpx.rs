//! GPX output parsed back with roxmltree and compared point by point with the reports.
// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rampart_codec_export::{GPX_NAMESPACE, GPXTPX_NAMESPACE, write_track_gpx};
use rampart_model::Report;
use roxmltree::{Document, Node};

fn gpx<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((GPX_NAMESPACE, name)))
}

fn tpx(n: Node<'_, '_>, name: &str) -> Option<f64> {
    let ext = gpx(n, "extensions")?;
    let tpe = ext
        .children()
        .find(|c| c.has_tag_name((GPXTPX_NAMESPACE, "TrackPointExtension")))?;
    tpe.children()
        .find(|c| c.has_tag_name((GPXTPX_NAMESPACE, name)))
        .map(|c| c.text().unwrap().parse().unwrap())
}

fn write(uid: &str, reports: &[Report]) -> String {
    let mut out = Vec::new();
    write_track_gpx(uid, reports, &mut out);
    String::from_utf8(out).unwrap()
}

/// Parses the document and returns the `trkpt` elements after checking the envelope.
fn points<'a, 'i>(doc: &'a Document<'i>, uid: &str) -> Vec<Node<'a, 'i>> {
    let root = doc.root_element();
    assert!(root.has_tag_name((GPX_NAMESPACE, "gpx")));
    assert_eq!(root.attribute("version"), Some("1.1"));
    assert_eq!(root.attribute("creator"), Some("Rampart"));
    let trk = gpx(root, "trk").unwrap();
    assert_eq!(gpx(trk, "name").unwrap().text(), Some(uid));
    let seg = gpx(trk, "trkseg").unwrap();
    seg.children()
        .filter(|c| c.is_element())
        .inspect(|c| assert!(c.has_tag_name((GPX_NAMESPACE, "trkpt"))))
        .collect()
}

#[test]
fn track_round_trips_point_by_point() {
    let reports = track("ship-9", 4);
    let s = write("ship-9", &reports);
    assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"Rampart\" xmlns=\"http://www.topografix.com/GPX/1/1\""));
    let doc = Document::parse(&s).unwrap();
    let pts = points(&doc, "ship-9");
    assert_eq!(pts.len(), reports.len());
    // No labels on these reports, so no metadata.
    assert!(gpx(doc.root_element(), "metadata").is_none());
    for (p, r) in pts.iter().zip(&reports) {
        let lat: f64 = p.attribute("lat").unwrap().parse().unwrap();
        let lon: f64 = p.attribute("lon").unwrap().parse().unwrap();
        assert_eq!((lat, lon), (r.lat, r.lon));
        let ele: f64 = gpx(*p, "ele").unwrap().text().unwrap().parse().unwrap();
        assert_eq!(Some(ele), r.hae);
        assert_eq!(
            gpx(*p, "time").unwrap().text().unwrap(),
            r.time.to_rfc3339()
        );
        assert_eq!(tpx(*p, "speed"), r.speed);
        assert_eq!(tpx(*p, "course"), r.course);
        // wptType's element order: ele, time, extensions.
        let order: Vec<&str> = p
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert_eq!(order, ["ele", "time", "extensions"]);
    }
}

#[test]
fn edges_are_normalised_and_hostile_text_escaped() {
    let reports = edge_track(HOSTILE);
    let doc_text = write(HOSTILE, &reports);
    let doc = Document::parse(&doc_text).unwrap();
    let pts = points(&doc, HOSTILE);
    assert_eq!(pts.len(), 2);
    // GPX longitudes are [-180, 180) and courses [0, 360).
    assert_eq!(pts[0].attribute("lon"), Some("-180"));
    assert_eq!(tpx(pts[0], "course"), Some(0.0));
    assert_eq!(tpx(pts[0], "speed"), None);
    assert!(gpx(pts[0], "ele").is_none());
    assert_eq!(gpx(pts[1], "ele").unwrap().text(), Some("5"));
    assert_eq!(tpx(pts[1], "speed"), Some(0.0));
    assert_eq!(tpx(pts[1], "course"), None);
    let desc = gpx(gpx(doc.root_element(), "metadata").unwrap(), "desc").unwrap();
    assert_eq!(
        desc.text(),
        Some("Security labels: UNCLASSIFIED; SECRET (releasable to NATO)")
    );
}

#[test]
fn control_characters_never_reach_the_document() {
    let uid = format!("trk{CONTROLS}");
    let s = write(&uid, &track(&uid, 1));
    assert!(
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    );
    let doc = Document::parse(&s).unwrap();
    points(&doc, &format!("trk{CONTROLS_READ}"));
}

#[test]
fn unusable_points_are_skipped_and_empty_tracks_are_valid() {
    let mut reports = track("x", 3);
    reports[1].lat = f64::NAN;
    reports[2].time = rampart_model::Timestamp(i64::MAX);
    let s = write("x", &reports);
    let doc = Document::parse(&s).unwrap();
    assert_eq!(points(&doc, "x").len(), 1);
    let s = write("x", &[]);
    let doc = Document::parse(&s).unwrap();
    assert_eq!(points(&doc, "x").len(), 0);
}
