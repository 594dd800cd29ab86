//! Encoding reports as flat JSON and entities/tracks as GeoJSON.
//!
//! Serialization is streamed straight into a byte buffer with no intermediate
//! `serde_json::Value`, because the entities endpoint may return many thousands of features.

use rampart_model::{Entity, Report};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Serializes the fields shared by reports and entities, flat, under the model's names.
struct Point {
    lat: f64,
    lon: f64,
    hae: Option<f64>,
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", "Point")?;
        match self.hae {
            Some(h) => m.serialize_entry("coordinates", &[self.lon, self.lat, h])?,
            None => m.serialize_entry("coordinates", &[self.lon, self.lat])?,
        }
        m.end()
    }
}

/// Writes the flat report fields into an open map.
fn report_fields<M: SerializeMap>(m: &mut M, r: &Report) -> Result<(), M::Error> {
    m.serialize_entry("uid", r.uid.as_str())?;
    m.serialize_entry("type", &r.cot_type)?;
    m.serialize_entry("callsign", &r.callsign)?;
    m.serialize_entry("lat", &r.lat)?;
    m.serialize_entry("lon", &r.lon)?;
    m.serialize_entry("hae", &r.hae)?;
    m.serialize_entry("ce", &r.ce)?;
    m.serialize_entry("le", &r.le)?;
    m.serialize_entry("course", &r.course)?;
    m.serialize_entry("speed", &r.speed)?;
    m.serialize_entry("how", &r.how)?;
    m.serialize_entry("time", &r.time)?;
    m.serialize_entry("start", &r.start)?;
    m.serialize_entry("stale", &r.stale)?;
    if !r.attributes.is_empty() {
        m.serialize_entry("attributes", &r.attributes)?;
    }
    m.serialize_entry("label", &r.label)?;
    if let Some(id) = &r.id {
        m.serialize_entry("id", id)?;
    }
    Ok(())
}

/// A report as the flat JSON object the API accepts (the `provenance` is added as a field
/// only when set, since senders never supply it).
struct FlatReport<'a>(&'a Report);

impl Serialize for FlatReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        report_fields(&mut m, self.0)?;
        m.end()
    }
}

/// Encodes a report as the flat JSON object that [`crate::decode_reports`] accepts.
/// Fields left unset are written as `null`, which decodes back to "unset".
pub fn encode_report(r: &Report) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    serde_json::to_vec(&FlatReport(r)).unwrap_or_default()
}

/// An entity as a GeoJSON Feature: `id` is the uid, `properties` hold the model's fields.
pub struct EntityFeature<'a>(pub &'a Entity);

impl Serialize for EntityFeature<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("type", "Feature")?;
        m.serialize_entry("id", e.uid.as_str())?;
        m.serialize_entry(
            "geometry",
            &Point {
                lat: e.lat,
                lon: e.lon,
                hae: e.hae,
            },
        )?;
        m.serialize_entry("properties", &EntityProps(e))?;
        m.end()
    }
}

struct EntityProps<'a>(&'a Entity);

impl Serialize for EntityProps<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("uid", e.uid.as_str())?;
        m.serialize_entry("type", &*e.cot_type)?;
        m.serialize_entry("sidc", e.sidc().as_str())?;
        m.serialize_entry("callsign", &e.callsign)?;
        m.serialize_entry("lat", &e.lat)?;
        m.serialize_entry("lon", &e.lon)?;
        m.serialize_entry("hae", &e.hae)?;
        m.serialize_entry("ce", &e.ce)?;
        m.serialize_entry("le", &e.le)?;
        m.serialize_entry("course", &e.course)?;
        m.serialize_entry("speed", &e.speed)?;
        m.serialize_entry("how", &*e.how)?;
        m.serialize_entry("time", &e.time)?;
        m.serialize_entry("start", &e.start)?;
        m.serialize_entry("stale", &e.stale)?;
        m.serialize_entry("is_stale", &e.is_stale())?;
        m.serialize_entry("received", &e.received)?;
        m.serialize_entry("provenance", &*e.provenance)?;
        match &e.attributes {
            Some(a) => m.serialize_entry("attributes", a)?,
            None => m.serialize_entry("attributes", &serde_json::Map::new())?,
        }
        m.serialize_entry("label", &*e.label)?;
        m.end()
    }
}

/// A stored report as a GeoJSON Feature of a track: `id` is the uid, `properties` hold the
/// report's fields plus its provenance.
pub struct ReportFeature<'a>(pub &'a Report);

impl Serialize for ReportFeature<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("type", "Feature")?;
        m.serialize_entry("id", r.uid.as_str())?;
        m.serialize_entry(
            "geometry",
            &Point {
                lat: r.lat,
                lon: r.lon,
                hae: r.hae,
            },
        )?;
        m.serialize_entry("properties", &ReportProps(r))?;
        m.end()
    }
}

struct ReportProps<'a>(&'a Report);

impl Serialize for ReportProps<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        report_fields(&mut m, self.0)?;
        if let Some(t) = &self.0.cot_type {
            m.serialize_entry("sidc", rampart_model::sidc::from_cot_type(t).as_str())?;
        }
        m.serialize_entry("provenance", &self.0.provenance)?;
        m.end()
    }
}

/// Writes `{"type":"FeatureCollection","features":[...]}` for entities into `out`.
pub fn write_entity_collection<'a>(
    entities: impl IntoIterator<Item = &'a Entity>,
    out: &mut Vec<u8>,
) {
    write_collection(entities.into_iter().map(EntityFeature), out, None);
}

/// Writes a track (reports of one entity, oldest first) as a FeatureCollection of Points.
pub fn write_track_collection<'a>(
    uid: &str,
    reports: impl IntoIterator<Item = &'a Report>,
    out: &mut Vec<u8>,
) {
    write_collection(reports.into_iter().map(ReportFeature), out, Some(uid));
}

fn write_collection<T: Serialize>(
    items: impl Iterator<Item = T>,
    out: &mut Vec<u8>,
    uid: Option<&str>,
) {
    out.extend_from_slice(b"{\"type\":\"FeatureCollection\",");
    if let Some(uid) = uid {
        out.extend_from_slice(b"\"uid\":");
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, uid);
        out.push(b',');
    }
    out.extend_from_slice(b"\"features\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, &item);
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeOptions, decode_reports};
    use rampart_model::{Label, ReportId, Timestamp};

    #[test]
    fn report_round_trips_through_json() {
        let mut r = Report::new("u-1", 12.5, -3.25, Timestamp(1_700_000_000_123));
        r.cot_type = Some("a-f-G".into());
        r.callsign = Some("ALPHA".into());
        r.hae = Some(12.0);
        r.speed = Some(3.0);
        r.stale = Some(Timestamp(1_700_000_060_000));
        r.label = Some(Label::unclassified());
        r.id = Some(ReportId::Key("k1".into()));
        r.attributes
            .insert("fuel".into(), rampart_model::AttrValue::Num(0.5));
        let mut body = b"[".to_vec();
        body.extend(encode_report(&r));
        body.push(b']');
        let back = decode_reports(&body, &DecodeOptions::default()).unwrap();
        assert_eq!(back[0].as_ref().unwrap(), &r);
    }
}
