//! CSV output read back with the `csv` crate and compared cell by cell with the model.
// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rampart_codec_export::{
    ENTITY_CSV_COLUMNS, TRACK_CSV_COLUMNS, write_entities_csv, write_track_csv,
};
use rampart_model::{Attributes, Entity};

/// Reads `out` as CSV, checks the header, and returns the rows as maps column → cell.
fn read(out: &[u8], columns: &[&str]) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(out);
    let header: Vec<&str> = reader.headers().unwrap().iter().collect();
    assert_eq!(header, columns);
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), columns.len());
            columns
                .iter()
                .zip(r.iter())
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// What a text cell holding `s` must read back as: formula-like text gets a leading `'`.
fn guarded(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn num(cell: &str) -> Option<f64> {
    (!cell.is_empty()).then(|| cell.parse().unwrap())
}

fn check_entity(row: &std::collections::BTreeMap<String, String>, e: &Entity) {
    assert_eq!(row["uid"], guarded(&e.uid));
    assert_eq!(row["type"], &*e.cot_type);
    assert_eq!(row["sidc"], e.sidc().as_str());
    assert_eq!(
        row["callsign"],
        guarded(e.callsign.as_deref().unwrap_or(""))
    );
    assert_eq!(num(&row["lat"]), Some(e.lat));
    assert_eq!(num(&row["lon"]), Some(e.lon));
    assert_eq!(num(&row["hae"]), e.hae);
    assert_eq!(num(&row["ce"]), e.ce);
    assert_eq!(num(&row["le"]), e.le);
    assert_eq!(num(&row["course"]), e.course);
    assert_eq!(num(&row["speed"]), e.speed);
    assert_eq!(row["how"], guarded(&e.how));
    assert_eq!(row["time"], e.time.to_rfc3339());
    assert_eq!(row["start"], e.start.to_rfc3339());
    assert_eq!(row["stale"], e.stale.to_rfc3339());
    assert_eq!(row["is_stale"], e.is_stale().to_string());
    assert_eq!(row["classification"], guarded(&e.label.classification));
    let groups: Vec<&str> = e.label.releasability.iter().map(|g| g.as_str()).collect();
    assert_eq!(row["releasability"], guarded(&groups.join(";")));
    assert_eq!(row["source"], guarded(&e.provenance.source));
    assert_eq!(row["identity"], guarded(&e.provenance.identity));
    assert_eq!(row["received"], e.received.to_rfc3339());
    match &e.attributes {
        Some(a) => {
            let back: Attributes = serde_json::from_str(&row["attributes"]).unwrap();
            assert_eq!(&back, &**a);
        }
        None => assert_eq!(row["attributes"], ""),
    }
}

#[test]
fn entities_round_trip_cell_by_cell() {
    let mut tricky = entity("u-3", "a-u-G", -89.5, -179.25);
    // Commas, quotes, both newline styles, unicode: all must survive quoting unchanged.
    tricky.callsign = Some("a,b \"q\"\nline2\r\nx ünï 漢字 🚁".into());
    tricky.hae = Some(-11_999.5);
    let entities = [full_entity(), hostile_entity(), tricky];
    let mut out = Vec::new();
    write_entities_csv(&entities, &mut out);
    let rows = read(&out, &ENTITY_CSV_COLUMNS);
    assert_eq!(rows.len(), entities.len());
    for (row, e) in rows.iter().zip(&entities) {
        check_entity(row, e);
    }
    assert_eq!(rows[2]["callsign"], "a,b \"q\"\nline2\r\nx ünï 漢字 🚁");
    // Control characters are legal in CSV and kept as they are.
    let attrs: serde_json::Value = serde_json::from_str(&rows[1]["attributes"]).unwrap();
    assert_eq!(attrs["note"], CONTROLS);
}

#[test]
fn formulas_are_neutralised_but_negative_numbers_stay_numbers() {
    let mut e = entity("-u", "a-f-G", -33.5, -70.25);
    e.callsign = Some("=1+2".into());
    e.hae = Some(-5.0);
    e.course = Some(0.0);
    e.provenance = std::sync::Arc::new(rampart_model::Provenance::new("+src", "@me"));
    let mut out = Vec::new();
    write_entities_csv([&e], &mut out);
    let text = String::from_utf8(out.clone()).unwrap();
    let line = text.lines().nth(1).unwrap();
    // The raw cells: numbers are bare, formula-like text carries the quote.
    assert!(
        line.starts_with("'-u,a-f-G,SFGP-----------,'=1+2,-33.5,-70.25,-5,,,0,,m-g,"),
        "{line}"
    );
    assert!(line.contains(",UNCLASSIFIED,,'+src,'@me,"), "{line}");
    let rows = read(&out, &ENTITY_CSV_COLUMNS);
    assert_eq!(rows[0]["callsign"], "'=1+2");
    assert_eq!(rows[0]["uid"], "'-u");
    assert_eq!(rows[0]["lat"], "-33.5");
    assert_eq!(rows[0]["hae"], "-5");
    // A quoted formula is still guarded, inside the quotes.
    let mut q = entity("q", "a-f-G", 0.0, 0.0);
    q.callsign = Some("=HYPERLINK(\"http://x\",\"y\")".into());
    let mut out = Vec::new();
    write_entities_csv([&q], &mut out);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains(",\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",")
    );
}

#[test]
fn rows_end_in_crlf_and_empty_inputs_give_only_the_header() {
    let mut out = Vec::new();
    write_entities_csv(std::iter::empty(), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}\r\n", ENTITY_CSV_COLUMNS.join(","))
    );
    let mut out = Vec::new();
    write_track_csv("x", &[], &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}\r\n", TRACK_CSV_COLUMNS.join(","))
    );
    let mut out = Vec::new();
    write_entities_csv([&full_entity()], &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\r\n").count(), 2);
    assert_eq!(text.matches('\n').count(), 2);
}

#[test]
fn track_round_trips_cell_by_cell() {
    let uid = "trk,\"1\"";
    let mut reports = edge_track(uid);
    reports.extend(track(uid, 2));
    let mut out = Vec::new();
    write_track_csv(uid, &reports, &mut out);
    let rows = read(&out, &TRACK_CSV_COLUMNS);
    assert_eq!(rows.len(), reports.len());
    for (row, r) in rows.iter().zip(&reports) {
        assert_eq!(row["uid"], uid);
        assert_eq!(row["type"], r.cot_type.as_deref().unwrap_or(""));
        let sidc = r
            .cot_type
            .as_deref()
            .map(|t| rampart_model::sidc::from_cot_type(t).to_string());
        assert_eq!(row["sidc"], sidc.unwrap_or_default());
        assert_eq!(
            row["callsign"],
            guarded(r.callsign.as_deref().unwrap_or(""))
        );
        assert_eq!(num(&row["lat"]), Some(r.lat));
        assert_eq!(num(&row["lon"]), Some(r.lon));
        assert_eq!(num(&row["hae"]), r.hae);
        assert_eq!(num(&row["ce"]), r.ce);
        assert_eq!(num(&row["le"]), r.le);
        assert_eq!(num(&row["course"]), r.course);
        assert_eq!(num(&row["speed"]), r.speed);
        assert_eq!(row["how"], r.how.as_deref().unwrap_or(""));
        assert_eq!(row["time"], r.time.to_rfc3339());
        assert_eq!(
            row["start"],
            r.start.map(|t| t.to_rfc3339()).unwrap_or_default()
        );
        assert_eq!(
            row["stale"],
            r.stale.map(|t| t.to_rfc3339()).unwrap_or_default()
        );
        let (class, groups) = match &r.label {
            Some(l) => (
                l.classification.to_string(),
                l.releasability
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            None => (String::new(), String::new()),
        };
        assert_eq!(row["classification"], class);
        assert_eq!(row["releasability"], groups);
        assert_eq!(row["source"], &*r.provenance.source);
        assert_eq!(row["identity"], &*r.provenance.identity);
        if r.attributes.is_empty() {
            assert_eq!(row["attributes"], "");
        } else {
            let back: Attributes = serde_json::from_str(&row["attributes"]).unwrap();
            assert_eq!(back, r.attributes);
        }
    }
}
