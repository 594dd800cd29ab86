//! GPX 1.1 tracks for GPS tools (Garmin BaseCamp, GPXSee, OsmAnd, QGIS, Strava-like viewers).
//!
//! GPX 1.1 dropped the `course` and `speed` elements GPX 1.0 had, so they travel in Garmin's
//! TrackPointExtension v2, the extension most GPX readers understand; its units (metres per
//! second, degrees true) are the model's. `ele` carries `hae`: GPX does not name its vertical
//! datum and GPS receivers usually write mean sea level, so the same ±100 m caveat as for KML
//! applies. The security labels seen on the track are listed in `metadata/desc`, since GPX has
//! no per-point slot for them.

use rampart_model::{Label, Report};

use crate::xml::{DECLARATION, elem, elem_num, finite, num};
use crate::{join_groups, valid_time};

/// The GPX 1.1 namespace, the default namespace of the document.
pub const GPX_NAMESPACE: &str = "http://www.topografix.com/GPX/1/1";
/// Garmin's TrackPointExtension v2 namespace, bound to the `gpxtpx` prefix.
pub const GPXTPX_NAMESPACE: &str = "http://www.garmin.com/xmlschemas/TrackPointExtension/v2";

/// Writes one entity's track (its reports, oldest first) as a GPX 1.1 document with one
/// `trk` named `uid` and one `trkseg`.
///
/// Each `trkpt` has `lat`/`lon` attributes, `ele` when `hae` is known and `time`; `speed`
/// and `course` go into `extensions/gpxtpx:TrackPointExtension` when known. GPX restricts
/// longitude to `[-180, 180)` and course to `[0, 360)`, so `180` is written as `-180` and
/// `360` as `0` (the same meridian and the same heading). Reports with a non-finite position
/// or an out-of-range time (possible only for unvalidated input) are left out.
pub fn write_track_gpx(uid: &str, reports: &[Report], out: &mut Vec<u8>) {
    out.extend_from_slice(DECLARATION);
    out.extend_from_slice(b"<gpx version=\"1.1\" creator=\"Rampart\" xmlns=\"");
    out.extend_from_slice(GPX_NAMESPACE.as_bytes());
    out.extend_from_slice(b"\" xmlns:gpxtpx=\"");
    out.extend_from_slice(GPXTPX_NAMESPACE.as_bytes());
    out.extend_from_slice(b"\">\n");

    let labels = distinct_labels(reports);
    if !labels.is_empty() {
        let text: Vec<String> = labels.iter().map(|l| label_text(l)).collect();
        out.extend_from_slice(b"<metadata>\n");
        elem(
            out,
            "desc",
            &format!("Security labels: {}", text.join("; ")),
        );
        out.extend_from_slice(b"</metadata>\n");
    }

    out.extend_from_slice(b"<trk>\n");
    elem(out, "name", uid);
    out.extend_from_slice(b"<trkseg>\n");
    for r in reports {
        if !(r.lat.is_finite() && r.lon.is_finite()) {
            continue;
        }
        let Some(time) = valid_time(r.time) else {
            continue;
        };
        let lon = if r.lon >= 180.0 { r.lon - 360.0 } else { r.lon };
        out.extend_from_slice(b"<trkpt lat=\"");
        num(out, r.lat);
        out.extend_from_slice(b"\" lon=\"");
        num(out, lon);
        out.extend_from_slice(b"\">\n");
        // wptType's sequence fixes the order: ele, time, …, extensions.
        if let Some(h) = finite(r.hae) {
            elem_num(out, "ele", h);
        }
        elem(out, "time", &time);
        let speed = finite(r.speed);
        let course = finite(r.course).map(|c| if c >= 360.0 { c - 360.0 } else { c });
        if speed.is_some() || course.is_some() {
            out.extend_from_slice(b"<extensions>\n<gpxtpx:TrackPointExtension>\n");
            // The extension's sequence puts speed before course.
            if let Some(s) = speed {
                elem_num(out, "gpxtpx:speed", s);
            }
            if let Some(c) = course {
                elem_num(out, "gpxtpx:course", c);
            }
            out.extend_from_slice(b"</gpxtpx:TrackPointExtension>\n</extensions>\n");
        }
        out.extend_from_slice(b"</trkpt>\n");
    }
    out.extend_from_slice(b"</trkseg>\n</trk>\n</gpx>\n");
}

/// The labels present on the track, in order of first appearance.
fn distinct_labels(reports: &[Report]) -> Vec<&Label> {
    let mut seen: Vec<&Label> = Vec::new();
    for l in reports.iter().filter_map(|r| r.label.as_ref()) {
        if !seen.contains(&l) {
            seen.push(l);
        }
    }
    seen
}

/// `SECRET (releasable to NATO, FVEY)` or just `UNCLASSIFIED`.
fn label_text(l: &Label) -> String {
    if l.releasability.is_empty() {
        l.classification.to_string()
    } else {
        format!(
            "{} (releasable to {})",
            l.classification,
            join_groups(&l.releasability, ", ")
        )
    }
}
