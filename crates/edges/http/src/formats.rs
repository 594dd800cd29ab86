//! Output formats of the query endpoints, chosen by `format=` or the `Accept` header.
//!
//! The live picture: GeoJSON (default), KML, CSV and CoT XML. Tracks: GeoJSON (default),
//! GPX, KML and CSV. An explicit `format=` wins over `Accept`; an unknown `format=` is a 400
//! naming the parameter, while an `Accept` header without a known type falls back to GeoJSON.

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use rampart_model::{Entity, Report};

use crate::error::ApiError;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// GeoJSON FeatureCollection.
    GeoJson,
    /// KML 2.2 (Google Earth).
    Kml,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// GPX 1.1 (tracks only).
    Gpx,
    /// CoT XML events (live picture only).
    Cot,
}

const GEOJSON_TYPE: &str = "application/geo+json";
const COT_TYPE: &str = "application/xml; charset=utf-8";

impl Format {
    /// Parses a format name (`geojson`, `kml`, `csv`, `gpx`, `cot`).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "geojson" | "json" => Format::GeoJson,
            "kml" => Format::Kml,
            "csv" => Format::Csv,
            "gpx" => Format::Gpx,
            "cot" | "xml" => Format::Cot,
            _ => return None,
        })
    }

    fn from_accept(accept: &str) -> Option<Format> {
        accept.split(',').find_map(|part| {
            let mime = part.split(';').next().unwrap_or("").trim();
            Some(match mime {
                "application/geo+json" | "application/json" => Format::GeoJson,
                "application/vnd.google-earth.kml+xml" => Format::Kml,
                "text/csv" => Format::Csv,
                "application/gpx+xml" => Format::Gpx,
                "application/cot+xml" | "application/xml" | "text/xml" => Format::Cot,
                _ => return None,
            })
        })
    }

    /// Picks the format from `format=` (wins) or `Accept`, among `allowed`.
    pub(crate) fn choose(
        param: Option<&str>,
        headers: &HeaderMap,
        allowed: &[Format],
    ) -> Result<Format, ApiError> {
        let names = || {
            allowed
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(p) = param {
            return match Format::from_name(p) {
                Some(f) if allowed.contains(&f) => Ok(f),
                _ => Err(ApiError::bad_param(
                    "format",
                    format!("{p:?} is not available here (choose one of: {})", names()),
                )),
            };
        }
        let from_header = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::from_accept)
            .filter(|f| allowed.contains(f));
        Ok(from_header.unwrap_or(Format::GeoJson))
    }

    fn name(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Kml => "kml",
            Format::Csv => "csv",
            Format::Gpx => "gpx",
            Format::Cot => "cot",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::GeoJson => GEOJSON_TYPE,
            Format::Kml => rampart_codec_export::KML_CONTENT_TYPE,
            Format::Csv => rampart_codec_export::CSV_CONTENT_TYPE,
            Format::Gpx => rampart_codec_export::GPX_CONTENT_TYPE,
            Format::Cot => COT_TYPE,
        }
    }

    fn respond(self, body: Vec<u8>) -> Response {
        ([(header::CONTENT_TYPE, self.content_type())], body).into_response()
    }
}

/// Formats of the live picture.
pub const ENTITY_FORMATS: &[Format] = &[Format::GeoJson, Format::Kml, Format::Csv, Format::Cot];
/// Formats of a track.
pub const TRACK_FORMATS: &[Format] = &[Format::GeoJson, Format::Gpx, Format::Kml, Format::Csv];

/// Encodes entities in `format`.
pub(crate) fn entities(format: Format, entities: &[Entity]) -> Response {
    format.respond(entities_bytes(format, entities))
}

/// Encodes a track in `format`.
pub(crate) fn track(format: Format, uid: &str, points: &[Report]) -> Response {
    format.respond(track_bytes(format, uid, points))
}

/// Entities as bytes in `format` (GPX falls back to GeoJSON: it has no live picture form).
pub fn entities_bytes(format: Format, entities: &[Entity]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entities.len() * 512 + 64);
    match format {
        Format::Kml => rampart_codec_export::write_entities_kml(entities, &mut out),
        Format::Csv => rampart_codec_export::write_entities_csv(entities, &mut out),
        Format::Cot => write_cot(entities, &mut out),
        Format::GeoJson | Format::Gpx => {
            rampart_codec_json::write_entity_collection(entities, &mut out)
        }
    }
    out
}

/// A track as bytes in `format` (CoT falls back to GeoJSON).
pub fn track_bytes(format: Format, uid: &str, points: &[Report]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * 400 + 64);
    match format {
        Format::Gpx => rampart_codec_export::write_track_gpx(uid, points, &mut out),
        Format::Kml => rampart_codec_export::write_track_kml(uid, points, &mut out),
        Format::Csv => rampart_codec_export::write_track_csv(uid, points, &mut out),
        Format::GeoJson | Format::Cot => {
            rampart_codec_json::write_track_collection(uid, points, &mut out)
        }
    }
    out
}

/// CoT XML: an `<events>` document holding one `<event>` per entity.
fn write_cot(entities: &[Entity], out: &mut Vec<u8>) {
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<events>\n");
    for e in entities {
        out.extend_from_slice(
            rampart_codec_cot::encode_xml(&rampart_codec_cot::CotEvent::from_entity(e)).as_bytes(),
        );
        out.push(b'\n');
    }
    out.extend_from_slice(b"</events>\n");
}
