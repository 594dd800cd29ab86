//! # rampart-codec-export
//!
//! Encoders that let other tools open Rampart's live picture and tracks:
//!
//! - [`write_entities_kml`] / [`write_track_kml`]: KML 2.2 for Google Earth and GIS tools;
//! - [`write_track_gpx`]: GPX 1.1 for GPS tools;
//! - [`write_entities_csv`] / [`write_track_csv`]: RFC 4180 CSV for spreadsheets.
//!
//! Every function appends to a `&mut Vec<u8>` and cannot fail, like the GeoJSON encoder in
//! `rampart-codec-json`: no I/O, so the HTTP edge decides how to serve the bytes (the
//! `*_CONTENT_TYPE` constants give the media types).
//!
//! All XML output is escaped, and characters that XML 1.0 cannot carry at all (C0 controls
//! other than tab/LF/CR, U+FFFE, U+FFFF) are replaced by U+FFFD, because the model forbids
//! control characters in validated fields but these encoders may also see unvalidated input.
//!
//! The encoders do not filter by security label: callers pass only what the requester may
//! see. Labels are exported with every entity and point (KML `ExtendedData`, CSV columns, GPX
//! metadata) so the marking travels with the file.

mod affiliation;
mod csv;
mod gpx;
mod kml;
mod xml;

use rampart_model::{Text, Timestamp};

pub use affiliation::Affiliation;
pub use csv::{
    ENTITY_CSV_COLUMNS, TRACK_CSV_COLUMNS, UTF8_BOM, write_entities_csv, write_track_csv,
};
pub use gpx::{GPX_NAMESPACE, GPXTPX_NAMESPACE, write_track_gpx};
pub use kml::{GX_NAMESPACE, ICON_HREF, KML_NAMESPACE, write_entities_kml, write_track_kml};

/// Media type of the KML documents.
pub const KML_CONTENT_TYPE: &str = "application/vnd.google-earth.kml+xml";
/// Media type of the GPX documents.
pub const GPX_CONTENT_TYPE: &str = "application/gpx+xml";
/// Media type of the CSV tables (RFC 4180 with a header row; RFC 7111 registers `text/csv`).
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8; header=present";

/// Releasability groups joined with `sep`.
fn join_groups(groups: &[Text], sep: &str) -> String {
    let mut s = String::new();
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(g);
    }
    s
}

/// The RFC 3339 text of `t` if it lies in the range validation accepts. Outside it the
/// model's formatter falls back to `@<ms>ms`, which is not an `xsd:dateTime` and must not
/// reach a `when` or GPX `time` element.
fn valid_time(t: Timestamp) -> Option<String> {
    (Timestamp::MIN_VALID..=Timestamp::MAX_VALID)
        .contains(&t)
        .then(|| t.to_rfc3339())
}
