//! RFC 4180 CSV for spreadsheets and anything else that reads tables.
//!
//! Decisions:
//!
//! - Rows end in CRLF as RFC 4180 says. A cell is quoted only when it holds a comma, a quote,
//!   CR or LF; quotes inside are doubled. No byte-order mark is written; callers serving the
//!   file to Excel may prepend [`UTF8_BOM`], without which Excel reads UTF-8 as a legacy code
//!   page.
//! - Spreadsheets execute a cell that starts with `=`, `+`, `-` or `@` (and tab or CR, which
//!   some strip first) as a formula, so a hostile callsign like `=HYPERLINK(…)` could run on
//!   an analyst's machine. Text cells that start with one of these get a leading `'`,
//!   OWASP's recommended neutraliser, which spreadsheets hide and other readers see. This is
//!   lossy for such text by design. Numeric cells are never touched, so `-33.9` stays a number.
//! - Unknown numbers are empty cells; non-finite numbers (only in unvalidated input) too.
//! - Attributes go into one `attributes` cell as compact JSON (`{"fuel":0.5,"fw":"1.2"}`),
//!   rather than one column per name: the set of names differs between entities and is only
//!   known after a full pass, and JSON keeps numbers and text apart. Empty when there are none.
//! - Releasability groups are joined with `;` (a group name containing `;` would be ambiguous;
//!   none of the usual ones, `NATO`, `FVEY`, … does).

use rampart_model::{Attributes, Entity, Label, Report};

use crate::join_groups;

/// The UTF-8 byte-order mark, for callers that want Excel to detect the encoding.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header of [`write_entities_csv`], in column order.
pub const ENTITY_CSV_COLUMNS: [&str; 22] = [
    "uid",
    "type",
    "sidc",
    "callsign",
    "lat",
    "lon",
    "hae",
    "ce",
    "le",
    "course",
    "speed",
    "how",
    "time",
    "start",
    "stale",
    "is_stale",
    "classification",
    "releasability",
    "source",
    "identity",
    "received",
    "attributes",
];

/// The header of [`write_track_csv`], in column order.
pub const TRACK_CSV_COLUMNS: [&str; 20] = [
    "uid",
    "type",
    "sidc",
    "callsign",
    "lat",
    "lon",
    "hae",
    "ce",
    "le",
    "course",
    "speed",
    "how",
    "time",
    "start",
    "stale",
    "classification",
    "releasability",
    "source",
    "identity",
    "attributes",
];

/// Writes the live picture as CSV: the [`ENTITY_CSV_COLUMNS`] header, then one row per
/// entity. `classification`/`releasability` come from the label, `source`/`identity` from
/// the provenance; times are RFC 3339 UTC with milliseconds; `is_stale` is `true`/`false`.
pub fn write_entities_csv<'a>(entities: impl IntoIterator<Item = &'a Entity>, out: &mut Vec<u8>) {
    header(out, &ENTITY_CSV_COLUMNS);
    for e in entities {
        let mut row = Row::new(out);
        row.text(&e.uid);
        row.text(&e.cot_type);
        row.text(e.sidc().as_str());
        row.text(e.callsign.as_deref().unwrap_or(""));
        row.num(Some(e.lat));
        row.num(Some(e.lon));
        row.num(e.hae);
        row.num(e.ce);
        row.num(e.le);
        row.num(e.course);
        row.num(e.speed);
        row.text(&e.how);
        row.text(&e.time.to_rfc3339());
        row.text(&e.start.to_rfc3339());
        row.text(&e.stale.to_rfc3339());
        row.text(if e.is_stale() { "true" } else { "false" });
        row.label(Some(&e.label));
        row.text(&e.provenance.source);
        row.text(&e.provenance.identity);
        row.text(&e.received.to_rfc3339());
        row.attributes(e.attributes.as_deref());
        row.end();
    }
}

/// Writes a track (one entity's reports, oldest first) as CSV: the [`TRACK_CSV_COLUMNS`]
/// header, then one row per report. Fields a report left unset (type, callsign, how, start,
/// stale, label) are empty cells, and so is `sidc` without a type. The idempotency `id` is
/// not exported: it matters to ingest, not to whoever opens the track.
///
/// Every row's `uid` cell is `uid`, the entity the track belongs to, as for the KML and GPX
/// tracks (a history query only returns that entity's reports).
pub fn write_track_csv(uid: &str, reports: &[Report], out: &mut Vec<u8>) {
    header(out, &TRACK_CSV_COLUMNS);
    for r in reports {
        let mut row = Row::new(out);
        row.text(uid);
        row.text(r.cot_type.as_deref().unwrap_or(""));
        let sidc = r
            .cot_type
            .as_deref()
            .map(rampart_model::sidc::from_cot_type);
        row.text(sidc.as_ref().map_or("", |s| s.as_str()));
        row.text(r.callsign.as_deref().unwrap_or(""));
        row.num(Some(r.lat));
        row.num(Some(r.lon));
        row.num(r.hae);
        row.num(r.ce);
        row.num(r.le);
        row.num(r.course);
        row.num(r.speed);
        row.text(r.how.as_deref().unwrap_or(""));
        row.text(&r.time.to_rfc3339());
        row.text(&r.start.map(|t| t.to_rfc3339()).unwrap_or_default());
        row.text(&r.stale.map(|t| t.to_rfc3339()).unwrap_or_default());
        row.label(r.label.as_ref());
        row.text(&r.provenance.source);
        row.text(&r.provenance.identity);
        row.attributes(Some(&r.attributes));
        row.end();
    }
}

fn header(out: &mut Vec<u8>, columns: &[&str]) {
    let mut row = Row::new(out);
    for c in columns {
        row.text(c);
    }
    row.end();
}

/// One row being written: tracks whether a separator is due.
struct Row<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Row<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Row { out, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    /// A text cell: formula-guarded, then quoted if needed.
    fn text(&mut self, s: &str) {
        self.sep();
        let guard = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let quote = s.contains([',', '"', '\r', '\n']);
        if quote {
            self.out.push(b'"');
        }
        if guard {
            self.out.push(b'\'');
        }
        if quote {
            for part in s.split_inclusive('"') {
                self.out.extend_from_slice(part.as_bytes());
                if part.ends_with('"') {
                    self.out.push(b'"');
                }
            }
            self.out.push(b'"');
        } else {
            self.out.extend_from_slice(s.as_bytes());
        }
    }

    /// A numeric cell, never guarded or quoted (plain decimal text has nothing to quote).
    fn num(&mut self, v: Option<f64>) {
        self.sep();
        if let Some(v) = crate::xml::finite(v) {
            crate::xml::num(self.out, v);
        }
    }

    fn label(&mut self, l: Option<&Label>) {
        match l {
            Some(l) => {
                self.text(&l.classification);
                self.text(&join_groups(&l.releasability, ";"));
            }
            None => {
                self.text("");
                self.text("");
            }
        }
    }

    fn attributes(&mut self, a: Option<&Attributes>) {
        match a.filter(|a| !a.is_empty()) {
            // Serializing a map of numbers and strings cannot fail; non-finite numbers
            // (unvalidated input only) become `null`.
            Some(a) => self.text(&serde_json::to_string(a).unwrap_or_default()),
            None => self.text(""),
        }
    }

    fn end(self) {
        self.out.extend_from_slice(b"\r\n");
    }
}
