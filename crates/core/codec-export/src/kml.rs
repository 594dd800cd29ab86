//! KML 2.2 documents for Google Earth, QGIS, ATAK/WinTAK imports and other GIS tools.
//!
//! Layout decisions, each for a tool we want to open the file:
//!
//! - Every field of the model goes into `ExtendedData/Data` under its JSON name (`uid`, `type`,
//!   `label.classification`, `attributes.fuel`, …), which GIS tools turn into attribute-table
//!   columns. `description` carries a short HTML summary for Google Earth's balloon.
//! - Descriptions are HTML that Google Earth renders (and may run scripts in), so every model
//!   string in them is HTML-escaped before the whole is XML-escaped: a callsign such as
//!   `<script>` shows as text.
//! - Icons use Google's `placemark_circle.png` tinted per affiliation via `IconStyle/color`.
//!   KML has no way to embed an icon, and Google Earth ships this one in its cache, so the
//!   file renders offline; other tools fall back to their default marker, still coloured.
//! - Heights are written as `hae` with `altitudeMode` `absolute`. KML's absolute altitude is
//!   above mean sea level, so a point is drawn up to about ±100 m (the local geoid
//!   undulation) off vertically; converting would need a geoid model, which a pure encoder
//!   does not carry. Without `hae` the point is `clampToGround`.

use rampart_model::{AttrValue, Entity, Label, Report, ReportId};

use crate::affiliation::Affiliation;
use crate::xml::{self, DECLARATION, attr, elem, finite, num};
use crate::{join_groups, valid_time};

/// The KML 2.2 namespace, the default namespace of every KML document written here.
pub const KML_NAMESPACE: &str = "http://www.opengis.net/kml/2.2";
/// Google's KML extension namespace, bound to the `gx` prefix (for `gx:Track`).
pub const GX_NAMESPACE: &str = "http://www.google.com/kml/ext/2.2";
/// The icon every placemark uses, tinted per affiliation.
pub const ICON_HREF: &str = "http://maps.google.com/mapfiles/kml/shapes/placemark_circle.png";

/// Opacity of stale entities' icons, so a stale picture is visibly faded.
const STALE_ALPHA: u8 = 0x80;

/// Writes the live picture as a KML 2.2 Document: one Placemark per entity.
///
/// Each Placemark has the callsign (or the uid) as its name, an HTML summary, a `TimeStamp`
/// at the entity's `time`, a style by affiliation (`#friend`, `#hostile`, `#neutral`,
/// `#unknown`, or the faded `#…-stale` variant for stale entities), every field under
/// `ExtendedData`, and a `Point`. An entity with a non-finite position (possible only for
/// unvalidated input) keeps its data but gets no geometry.
pub fn write_entities_kml<'a>(entities: impl IntoIterator<Item = &'a Entity>, out: &mut Vec<u8>) {
    open_document(out, "Rampart live picture");
    for aff in Affiliation::ALL {
        let live = StyleSpec {
            icon_color: aff.kml_color(0xff),
            ..StyleSpec::default()
        };
        write_style(out, aff.name(), &live);
        let stale = StyleSpec {
            icon_color: aff.kml_color(STALE_ALPHA),
            ..StyleSpec::default()
        };
        write_style(out, &format!("{}-stale", aff.name()), &stale);
    }
    for e in entities {
        entity_placemark(out, e);
    }
    close_document(out);
}

/// Writes one entity's track (its reports, oldest first, as history returns them) as a KML
/// 2.2 Document.
///
/// The Document holds:
///
/// 1. a Placemark named after the newest callsign (or `uid`) whose `MultiGeometry` has a
///    `gx:Track` (a `when` and a `gx:coord` per point, which Google Earth animates with its
///    time slider) **and** a plain `LineString` of the same points for tools that ignore the
///    `gx` extension (a `LineString` needs two points, so it is left out for a single one);
/// 2. a Folder `Points` with one small Placemark per report, carrying its `TimeStamp` and
///    every field in `ExtendedData`, so the point times survive in tools without `gx:Track`.
///
/// The track is coloured by the affiliation of the newest report that has a type. Heights
/// are used only if every point has one (`altitudeMode` is per geometry, and a line that
/// drops to the ground between points would be misleading); otherwise the line is clamped
/// to the ground. Reports with a non-finite position or an out-of-range time (possible only
/// for unvalidated input) are left out of the geometries.
pub fn write_track_kml(uid: &str, reports: &[Report], out: &mut Vec<u8>) {
    let title = reports
        .iter()
        .rev()
        .find_map(|r| r.callsign.as_deref())
        .unwrap_or(uid);
    let cot_type = reports.iter().rev().find_map(|r| r.cot_type.as_deref());
    let aff = cot_type.map_or(Affiliation::Unknown, Affiliation::of_cot_type);

    open_document(out, title);
    let track = StyleSpec {
        icon_color: aff.kml_color(0xff),
        line: true,
        ..StyleSpec::default()
    };
    write_style(out, "track", &track);
    let point = StyleSpec {
        icon_color: aff.kml_color(0xff),
        icon_scale: 0.5,
        // One label per point would bury the map in timestamps; the balloon still has them.
        hide_label: true,
        line: false,
    };
    write_style(out, "point", &point);

    // Points usable in a geometry: finite position and a time `gx:Track` can carry.
    let points: Vec<(&Report, String)> = reports
        .iter()
        .filter(|r| r.lat.is_finite() && r.lon.is_finite())
        .filter_map(|r| valid_time(r.time).map(|t| (r, t)))
        .collect();
    let absolute = !points.is_empty() && points.iter().all(|(r, _)| finite(r.hae).is_some());
    let mode: &[u8] = if absolute {
        b"<altitudeMode>absolute</altitudeMode>\n"
    } else {
        b"<altitudeMode>clampToGround</altitudeMode>\n"
    };

    out.extend_from_slice(b"<Placemark>\n");
    elem(out, "name", title);
    let mut html = Html::table();
    html.row("uid", uid);
    if let Some(t) = cot_type {
        html.row("type", t);
    }
    html.row("points", &reports.len().to_string());
    if let (Some((_, first)), Some((_, last))) = (points.first(), points.last()) {
        html.row("from", first);
        html.row("to", last);
    }
    elem(out, "description", &html.finish());
    out.extend_from_slice(b"<styleUrl>#track</styleUrl>\n<ExtendedData>\n");
    data(out, "uid", uid);
    if let Some(t) = cot_type {
        data(out, "type", t);
    }
    if let Some(c) = reports.iter().rev().find_map(|r| r.callsign.as_deref()) {
        data(out, "callsign", c);
    }
    out.extend_from_slice(b"</ExtendedData>\n<MultiGeometry>\n<gx:Track>\n");
    out.extend_from_slice(mode);
    // The gx schema wants every `when` before the first `gx:coord`, paired by position.
    for (_, t) in &points {
        elem(out, "when", t);
    }
    for (r, _) in &points {
        out.extend_from_slice(b"<gx:coord>");
        num(out, r.lon);
        out.push(b' ');
        num(out, r.lat);
        out.push(b' ');
        // `gx:coord` always has three values; the altitude is ignored when clamped.
        num(
            out,
            if absolute {
                finite(r.hae).unwrap_or(0.0)
            } else {
                0.0
            },
        );
        out.extend_from_slice(b"</gx:coord>\n");
    }
    out.extend_from_slice(b"</gx:Track>\n");
    if points.len() >= 2 {
        out.extend_from_slice(b"<LineString>\n");
        if !absolute {
            // Follow the terrain rather than cutting through hills between points.
            out.extend_from_slice(b"<tessellate>1</tessellate>\n");
        }
        out.extend_from_slice(mode);
        out.extend_from_slice(b"<coordinates>");
        for (i, (r, _)) in points.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            coordinate(
                out,
                r.lon,
                r.lat,
                if absolute { finite(r.hae) } else { None },
            );
        }
        out.extend_from_slice(b"</coordinates>\n</LineString>\n");
    }
    out.extend_from_slice(b"</MultiGeometry>\n</Placemark>\n");

    out.extend_from_slice(b"<Folder>\n<name>Points</name>\n");
    for r in reports {
        report_placemark(out, r);
    }
    out.extend_from_slice(b"</Folder>\n");
    close_document(out);
}

fn open_document(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(DECLARATION);
    out.extend_from_slice(b"<kml xmlns=\"");
    out.extend_from_slice(KML_NAMESPACE.as_bytes());
    out.extend_from_slice(b"\" xmlns:gx=\"");
    out.extend_from_slice(GX_NAMESPACE.as_bytes());
    out.extend_from_slice(b"\">\n<Document>\n");
    elem(out, "name", name);
}

fn close_document(out: &mut Vec<u8>) {
    out.extend_from_slice(b"</Document>\n</kml>\n");
}

/// What a shared `Style` looks like.
struct StyleSpec {
    icon_color: String,
    icon_scale: f64,
    hide_label: bool,
    line: bool,
}

impl Default for StyleSpec {
    fn default() -> Self {
        StyleSpec {
            icon_color: String::from("ffffffff"),
            icon_scale: 1.0,
            hide_label: false,
            line: false,
        }
    }
}

fn write_style(out: &mut Vec<u8>, id: &str, s: &StyleSpec) {
    out.extend_from_slice(b"<Style id=\"");
    attr(out, id);
    out.extend_from_slice(b"\">\n<IconStyle>\n");
    elem(out, "color", &s.icon_color);
    xml::elem_num(out, "scale", s.icon_scale);
    out.extend_from_slice(b"<Icon><href>");
    xml::text(out, ICON_HREF);
    out.extend_from_slice(b"</href></Icon>\n");
    // The circle's centre, not its bottom-left corner, marks the position.
    out.extend_from_slice(
        b"<hotSpot x=\"0.5\" y=\"0.5\" xunits=\"fraction\" yunits=\"fraction\"/>\n</IconStyle>\n",
    );
    if s.hide_label {
        out.extend_from_slice(b"<LabelStyle><scale>0</scale></LabelStyle>\n");
    }
    if s.line {
        out.extend_from_slice(b"<LineStyle>\n");
        elem(out, "color", &s.icon_color);
        out.extend_from_slice(b"<width>3</width>\n</LineStyle>\n");
    }
    out.extend_from_slice(b"</Style>\n");
}

fn entity_placemark(out: &mut Vec<u8>, e: &Entity) {
    let sidc = e.sidc();
    let time = valid_time(e.time);

    out.extend_from_slice(b"<Placemark>\n");
    elem(out, "name", e.callsign.as_deref().unwrap_or(&e.uid));

    let mut html = Html::table();
    html.label(&e.label);
    html.row("uid", &e.uid);
    if let Some(c) = &e.callsign {
        html.row("callsign", c);
    }
    html.row("type", &e.cot_type);
    html.row("sidc", sidc.as_str());
    html.row("time", &e.time.to_rfc3339());
    let stale_text = if e.is_stale() {
        format!("{} (stale)", e.stale)
    } else {
        e.stale.to_rfc3339()
    };
    html.row("stale", &stale_text);
    html.motion(e.speed, e.course, e.hae);
    elem(out, "description", &html.finish());

    if let Some(t) = &time {
        out.extend_from_slice(b"<TimeStamp>");
        elem(out, "when", t);
        out.extend_from_slice(b"</TimeStamp>\n");
    }
    let aff = Affiliation::of_cot_type(&e.cot_type);
    out.extend_from_slice(b"<styleUrl>#");
    out.extend_from_slice(aff.name().as_bytes());
    if e.is_stale() {
        out.extend_from_slice(b"-stale");
    }
    out.extend_from_slice(b"</styleUrl>\n<ExtendedData>\n");
    data(out, "uid", &e.uid);
    data(out, "type", &e.cot_type);
    data(out, "sidc", sidc.as_str());
    if let Some(c) = &e.callsign {
        data(out, "callsign", c);
    }
    data_num(out, "lat", Some(e.lat));
    data_num(out, "lon", Some(e.lon));
    data_num(out, "hae", e.hae);
    data_num(out, "ce", e.ce);
    data_num(out, "le", e.le);
    data_num(out, "course", e.course);
    data_num(out, "speed", e.speed);
    data(out, "how", &e.how);
    data(out, "time", &e.time.to_rfc3339());
    data(out, "start", &e.start.to_rfc3339());
    data(out, "stale", &e.stale.to_rfc3339());
    data(out, "is_stale", if e.is_stale() { "true" } else { "false" });
    data(out, "received", &e.received.to_rfc3339());
    data(out, "provenance.source", &e.provenance.source);
    data(out, "provenance.identity", &e.provenance.identity);
    label_data(out, &e.label);
    if let Some(attrs) = &e.attributes {
        attribute_data(out, attrs);
    }
    out.extend_from_slice(b"</ExtendedData>\n");
    if e.lat.is_finite() && e.lon.is_finite() {
        point(out, e.lon, e.lat, finite(e.hae));
    }
    out.extend_from_slice(b"</Placemark>\n");
}

/// One report of a track as a small point Placemark named by its time.
fn report_placemark(out: &mut Vec<u8>, r: &Report) {
    let time = valid_time(r.time);
    out.extend_from_slice(b"<Placemark>\n");
    elem(out, "name", &r.time.to_rfc3339());
    let mut html = Html::table();
    if let Some(l) = &r.label {
        html.label(l);
    }
    html.row("time", &r.time.to_rfc3339());
    html.motion(r.speed, r.course, r.hae);
    elem(out, "description", &html.finish());
    if let Some(t) = &time {
        out.extend_from_slice(b"<TimeStamp>");
        elem(out, "when", t);
        out.extend_from_slice(b"</TimeStamp>\n");
    }
    out.extend_from_slice(b"<styleUrl>#point</styleUrl>\n<ExtendedData>\n");
    data(out, "uid", &r.uid);
    if let Some(t) = &r.cot_type {
        data(out, "type", t);
        data(out, "sidc", rampart_model::sidc::from_cot_type(t).as_str());
    }
    if let Some(c) = &r.callsign {
        data(out, "callsign", c);
    }
    data_num(out, "lat", Some(r.lat));
    data_num(out, "lon", Some(r.lon));
    data_num(out, "hae", r.hae);
    data_num(out, "ce", r.ce);
    data_num(out, "le", r.le);
    data_num(out, "course", r.course);
    data_num(out, "speed", r.speed);
    if let Some(h) = &r.how {
        data(out, "how", h);
    }
    data(out, "time", &r.time.to_rfc3339());
    if let Some(s) = r.start {
        data(out, "start", &s.to_rfc3339());
    }
    if let Some(s) = r.stale {
        data(out, "stale", &s.to_rfc3339());
    }
    data(out, "provenance.source", &r.provenance.source);
    data(out, "provenance.identity", &r.provenance.identity);
    if let Some(l) = &r.label {
        label_data(out, l);
    }
    match &r.id {
        Some(ReportId::Key(k)) => data(out, "id", k),
        Some(ReportId::Seq { source, seq }) => {
            data(out, "id.source", source);
            data(out, "id.seq", &seq.to_string());
        }
        None => {}
    }
    attribute_data(out, &r.attributes);
    out.extend_from_slice(b"</ExtendedData>\n");
    if r.lat.is_finite() && r.lon.is_finite() {
        point(out, r.lon, r.lat, finite(r.hae));
    }
    out.extend_from_slice(b"</Placemark>\n");
}

fn point(out: &mut Vec<u8>, lon: f64, lat: f64, hae: Option<f64>) {
    out.extend_from_slice(b"<Point>\n");
    if hae.is_some() {
        out.extend_from_slice(b"<altitudeMode>absolute</altitudeMode>\n");
    } else {
        out.extend_from_slice(b"<altitudeMode>clampToGround</altitudeMode>\n");
    }
    out.extend_from_slice(b"<coordinates>");
    coordinate(out, lon, lat, hae);
    out.extend_from_slice(b"</coordinates>\n</Point>\n");
}

/// `lon,lat[,hae]`: KML's tuple order, longitude first, no spaces inside a tuple.
fn coordinate(out: &mut Vec<u8>, lon: f64, lat: f64, hae: Option<f64>) {
    num(out, lon);
    out.push(b',');
    num(out, lat);
    if let Some(h) = hae {
        out.push(b',');
        num(out, h);
    }
}

/// `<Data name="…"><value>…</value></Data>`.
fn data(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b"<Data name=\"");
    attr(out, name);
    out.extend_from_slice(b"\"><value>");
    xml::text(out, value);
    out.extend_from_slice(b"</value></Data>\n");
}

/// A numeric `Data`, left out when unknown (or non-finite) rather than written empty, so an
/// empty value never has to be told apart from zero.
fn data_num(out: &mut Vec<u8>, name: &str, value: Option<f64>) {
    if let Some(v) = finite(value) {
        out.extend_from_slice(b"<Data name=\"");
        attr(out, name);
        out.extend_from_slice(b"\"><value>");
        num(out, v);
        out.extend_from_slice(b"</value></Data>\n");
    }
}

fn label_data(out: &mut Vec<u8>, l: &Label) {
    data(out, "label.classification", &l.classification);
    if !l.releasability.is_empty() {
        data(
            out,
            "label.releasability",
            &join_groups(&l.releasability, ";"),
        );
    }
}

fn attribute_data(out: &mut Vec<u8>, attrs: &rampart_model::Attributes) {
    for (k, v) in attrs {
        let name = format!("attributes.{k}");
        match v {
            AttrValue::Num(n) if n.is_finite() => data_num(out, &name, Some(*n)),
            AttrValue::Num(_) => {}
            AttrValue::Text(t) => data(out, &name, t),
        }
    }
}

/// A two-column HTML table for a `description` balloon. Values are HTML-escaped here; the
/// finished string is XML-escaped again by [`elem`].
struct Html(String);

impl Html {
    fn table() -> Self {
        Html(String::from("<table>"))
    }

    fn row(&mut self, key: &str, value: &str) {
        self.0.push_str("<tr><th align=\"left\">");
        html_escape(&mut self.0, key);
        self.0.push_str("</th><td>");
        html_escape(&mut self.0, value);
        self.0.push_str("</td></tr>");
    }

    /// The security label first, so it is the first thing a reader sees.
    fn label(&mut self, l: &Label) {
        self.row("classification", &l.classification);
        if !l.releasability.is_empty() {
            self.row("releasability", &join_groups(&l.releasability, ", "));
        }
    }

    fn motion(&mut self, speed: Option<f64>, course: Option<f64>, hae: Option<f64>) {
        if let Some(s) = finite(speed) {
            self.row("speed", &format!("{s} m/s"));
        }
        if let Some(c) = finite(course) {
            self.row("course", &format!("{c}°"));
        }
        if let Some(h) = finite(hae) {
            self.row("hae", &format!("{h} m"));
        }
    }

    fn finish(mut self) -> String {
        self.0.push_str("</table>");
        self.0
    }
}

fn html_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}
