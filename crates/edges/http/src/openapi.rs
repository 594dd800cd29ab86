//! The OpenAPI document, generated from the handlers' annotations and the schema types below.
//!
//! The schema types document the wire shapes; the codec in `rampart-codec-json` is the
//! implementation, and a test checks the two agree on field names.

use axum::Json;
use axum::response::IntoResponse;
use utoipa::{OpenApi, ToSchema};

/// A security label.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct LabelDoc {
    /// Classification level, e.g. `UNCLASSIFIED` or `SECRET`.
    classification: String,
    /// Releasability groups.
    releasability: Option<Vec<String>>,
}

/// A report: one observation of an entity. Only `uid`, `lat`, `lon` and `time` are required.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ReportDoc {
    /// Stable entity id (1–256 bytes, no control characters).
    uid: String,
    /// CoT type, e.g. `a-f-G-U-C`. Default `a-u-G`; an existing entity keeps its type.
    #[schema(rename = "type")]
    r#type: Option<String>,
    /// Display name. Default: the entity keeps its previous callsign.
    callsign: Option<String>,
    /// WGS-84 latitude, degrees, -90..90.
    lat: f64,
    /// WGS-84 longitude, degrees, -180..180.
    lon: f64,
    /// Height above ellipsoid, metres. Default unknown (null).
    hae: Option<f64>,
    /// Circular error (1-sigma), metres. Default unknown.
    ce: Option<f64>,
    /// Linear error (1-sigma), metres. Default unknown.
    le: Option<f64>,
    /// Course, degrees true, 0..360. Default unknown.
    course: Option<f64>,
    /// Speed, m/s. Default unknown.
    speed: Option<f64>,
    /// CoT how, e.g. `m-g`. Default `h-e`.
    how: Option<String>,
    /// Observation time, RFC 3339.
    time: String,
    /// Validity start, RFC 3339. Default: `time`.
    start: Option<String>,
    /// Validity end, RFC 3339. Default: `time` + 5 minutes (configurable).
    stale: Option<String>,
    /// Free numeric and text attributes, merged into the entity's.
    attributes: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// Security label. Default: the source's default label (UNCLASSIFIED).
    label: Option<LabelDoc>,
    /// Idempotency id: a string key, or `{"source": "...", "seq": N}`.
    id: Option<serde_json::Value>,
}

/// A refused report.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RejectionDoc {
    /// Index in the submitted array.
    index: usize,
    /// The field at fault.
    field: String,
    /// Why.
    reason: String,
}

/// An error answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorDoc {
    /// What was wrong.
    error: String,
    /// The query parameter at fault, if any.
    parameter: Option<String>,
}

/// A GeoJSON Feature: `id` is the uid, `properties` hold the model's fields
/// (plus `sidc`, `is_stale`, `received`, `provenance`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct FeatureDoc {
    /// Always `Feature`.
    #[schema(rename = "type")]
    r#type: String,
    /// The uid.
    id: String,
    /// A GeoJSON Point `[lon, lat, hae?]`.
    geometry: serde_json::Value,
    /// The entity's fields under the model's names.
    properties: serde_json::Value,
}

/// A GeoJSON FeatureCollection.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct FeatureCollectionDoc {
    /// Always `FeatureCollection`.
    #[schema(rename = "type")]
    r#type: String,
    /// The features.
    features: Vec<FeatureDoc>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart API",
        description = "Rampart node: live common operating picture, history and ingest."
    ),
    paths(
        crate::reports::post_reports,
        crate::entities::list,
        crate::entities::one,
        crate::entities::track,
        crate::entities::set_label,
        crate::history::window,
        crate::history::console_config,
        crate::history::mbtiles_tile,
        crate::stream::upgrade,
        crate::rules::list_geofences,
        crate::rules::create_geofences,
        crate::rules::get_geofence,
        crate::rules::put_geofence,
        crate::rules::delete_geofence,
        crate::rules::import_geofences,
        crate::rules::list_rules,
        crate::rules::create_rules,
        crate::rules::get_rule,
        crate::rules::put_rule,
        crate::rules::delete_rule,
        crate::alerts::list,
        crate::alerts::one,
        crate::alerts::ack,
        crate::alerts::clear,
        crate::alerts::dead_letters,
        crate::quarantine::list,
        crate::audit::tail,
        crate::ops::healthz,
        crate::ops::metrics,
    ),
    components(schemas(
        ReportDoc,
        LabelDoc,
        RejectionDoc,
        ErrorDoc,
        FeatureDoc,
        FeatureCollectionDoc,
        crate::history::HistoryWindow,
        crate::history::HistoryTrack,
        crate::reports::Receipt
    ))
)]
pub(crate) struct ApiDoc;

/// The OpenAPI document as JSON.
pub(crate) async fn document() -> impl IntoResponse {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    // Each operation states the role it needs (`x-rampart-role`), from `auth::ROUTES`.
    crate::auth::annotate_openapi(&mut doc);
    Json(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_route_and_report_field() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/api/v1/reports",
            "/api/v1/entities",
            "/api/v1/entities/{uid}",
            "/api/v1/entities/{uid}/track",
            "/api/v1/stream",
            "/healthz",
            "/metrics",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
        let props = doc["components"]["schemas"]["ReportDoc"]["properties"]
            .as_object()
            .unwrap();
        // The documented fields must be exactly what the codec accepts.
        let mut r = rampart_model::Report::new("u", 1.0, 2.0, rampart_model::Timestamp(0));
        r.id = Some(rampart_model::ReportId::Key("k".into()));
        r.attributes
            .insert("a".into(), rampart_model::AttrValue::Num(1.0));
        let encoded: serde_json::Value =
            serde_json::from_slice(&rampart_codec_json::encode_report(&r)).unwrap();
        let mut documented: Vec<&String> = props.keys().collect();
        let mut actual: Vec<&String> = encoded.as_object().unwrap().keys().collect();
        documented.sort();
        actual.sort();
        assert_eq!(documented, actual);
    }
}
