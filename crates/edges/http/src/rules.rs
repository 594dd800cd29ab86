//! `/api/v1/geofences` and `/api/v1/rules`: rules as data (create, read, update, delete),
//! and `/api/v1/geofences/import` for GeoJSON and KML files.
//!
//! Bodies are the `rampart-rules` definitions as JSON (coordinates `[lon, lat]`). A bad
//! definition is refused with 422 and `{"error": "...", "field": "shape.exterior", ...}`
//! saying exactly what is wrong.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rampart_rules::service::RulesError;
use rampart_rules::{Geofence, Rule, RulesService};

use crate::AppState;
use crate::error::ApiError;

/// The routes of this module and of `alerts`.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/api/v1/geofences",
            get(list_geofences).post(create_geofences),
        )
        .route("/api/v1/geofences/import", post(import_geofences))
        .route(
            "/api/v1/geofences/{id}",
            get(get_geofence).put(put_geofence).delete(delete_geofence),
        )
        .route("/api/v1/rules", get(list_rules).post(create_rules))
        .route(
            "/api/v1/rules/{id}",
            get(get_rule).put(put_rule).delete(delete_rule),
        )
        .route("/api/v1/alerts", get(crate::alerts::list))
        .route(
            "/api/v1/alerts/deadletters",
            get(crate::alerts::dead_letters),
        )
        .route("/api/v1/alerts/{id}", get(crate::alerts::one))
        .route("/api/v1/alerts/{id}/ack", post(crate::alerts::ack))
        .route("/api/v1/alerts/{id}/clear", post(crate::alerts::clear))
}

pub(crate) fn service(st: &AppState) -> Result<&Arc<RulesService>, ApiError> {
    st.rules.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the rules engine is not running on this node",
        )
    })
}

/// Records a definition change in the audit log (the ids changed).
fn audit<'a>(st: &AppState, ext: &Extensions, action: &str, ids: impl Iterator<Item = &'a str>) {
    let ids: Vec<&str> = ids.collect();
    let target = match ids.as_slice() {
        [one] => one.to_string(),
        many => format!("{} definitions", many.len()),
    };
    crate::audit::record(
        st,
        &crate::audit::actor(ext),
        action,
        &target,
        serde_json::json!({ "ids": ids }),
    );
}

fn rules_error(e: RulesError) -> Response {
    match e {
        RulesError::Invalid(d) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({
                "error": format!("{}: {}", d.field, d.reason),
                "field": d.field,
                "reason": d.reason,
            })),
        )
            .into_response(),
        RulesError::NotFound(..) => {
            ApiError::new(StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        RulesError::Exists(..) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string()).into_response()
        }
        RulesError::Full(_) => {
            ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()).into_response()
        }
        RulesError::Storage(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(Vec<T>, bool), ApiError> {
    // Parse as a value first so the error names the item and field at fault.
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")))?;
    match v {
        serde_json::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                out.push(serde_json::from_value(item).map_err(|e| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("[{i}]: {e}"))
                })?);
            }
            Ok((out, true))
        }
        other => {
            let one = serde_json::from_value(other)
                .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
            Ok((vec![one], false))
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RulesError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(rules_error(e)),
        Err(e) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
        }
    }
}

fn created<T: serde::Serialize>(mut items: Vec<T>, many: bool) -> Response {
    if many {
        (StatusCode::CREATED, Json(serde_json::json!(items))).into_response()
    } else {
        match items.pop() {
            Some(one) => (StatusCode::CREATED, Json(one)).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// List geofences.
#[utoipa::path(get, path = "/api/v1/geofences", tag = "rules",
    responses((status = 200, description = "Every geofence", body = serde_json::Value)))]
pub(crate) async fn list_geofences(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(service(&st)?.geofences()).into_response())
}

/// Create geofences: one object or an array (all or none).
#[utoipa::path(post, path = "/api/v1/geofences", tag = "rules",
    request_body(content = serde_json::Value, description = "A geofence or an array: {id?, name?, shape: {type: polygon|multi_polygon|circle|corridor, …}, filter?: {types?, uids?}, triggers: {enter?, exit?, dwell_secs?, count_above?}, priority?, enabled?}"),
    responses((status = 201, description = "Created (with assigned ids)", body = serde_json::Value),
              (status = 409, description = "The id exists", body = crate::openapi::ErrorDoc),
              (status = 422, description = "Invalid: the field and the reason", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn create_geofences(
    State(st): State<AppState>,
    ext: Extensions,
    body: Bytes,
) -> Response {
    let svc = match service(&st) {
        Ok(s) => s.clone(),
        Err(e) => return e.into_response(),
    };
    let (items, many) = match parse_body::<Geofence>(&body) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match blocking(move || svc.put_geofences(items, false)).await {
        Ok(v) => {
            audit(
                &st,
                &ext,
                "geofence.create",
                v.iter().map(|g| g.id.as_str()),
            );
            created(v, many)
        }
        Err(r) => r,
    }
}

/// One geofence.
#[utoipa::path(get, path = "/api/v1/geofences/{id}", tag = "rules",
    params(("id" = String, Path, description = "Geofence id")),
    responses((status = 200, description = "The geofence", body = serde_json::Value),
              (status = 404, description = "No such geofence", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn get_geofence(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match service(&st)?.geofence(&id) {
        Some(g) => Ok(Json(g).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no geofence with id {id:?}"),
        )),
    }
}

/// Create or replace a geofence.
#[utoipa::path(put, path = "/api/v1/geofences/{id}", tag = "rules",
    params(("id" = String, Path, description = "Geofence id")),
    request_body(content = serde_json::Value, description = "The geofence"),
    responses((status = 200, description = "Stored", body = serde_json::Value),
              (status = 422, description = "Invalid", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn put_geofence(
    State(st): State<AppState>,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Response {
    let svc = match service(&st) {
        Ok(s) => s.clone(),
        Err(e) => return e.into_response(),
    };
    let mut g: Geofence = match serde_json::from_slice(&body) {
        Ok(g) => g,
        Err(e) => {
            return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response();
        }
    };
    if !g.id.is_empty() && g.id != id {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("id: the body says {:?} but the path says {id:?}", g.id),
        )
        .into_response();
    }
    g.id = id;
    match blocking(move || svc.put_geofences(vec![g], true)).await {
        Ok(mut v) => {
            audit(&st, &ext, "geofence.put", v.iter().map(|g| g.id.as_str()));
            Json(v.pop()).into_response()
        }
        Err(r) => r,
    }
}

/// Delete a geofence (its active alerts clear).
#[utoipa::path(delete, path = "/api/v1/geofences/{id}", tag = "rules",
    params(("id" = String, Path, description = "Geofence id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such geofence", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn delete_geofence(
    State(st): State<AppState>,
    Path(id): Path<String>,
    ext: Extensions,
) -> Response {
    let svc = match service(&st) {
        Ok(s) => s.clone(),
        Err(e) => return e.into_response(),
    };
    let target = id.clone();
    match blocking(move || svc.delete_geofence(&id)).await {
        Ok(()) => {
            audit(&st, &ext, "geofence.delete", [target.as_str()].into_iter());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

/// Import parameters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImportParams {
    /// `geojson` or `kml`.
    format: String,
    /// Triggers for shapes that do not say: comma-separated `enter`, `exit` (default both).
    triggers: Option<String>,
    /// Dwell trigger, seconds.
    dwell_secs: Option<f64>,
    /// Count trigger.
    count_above: Option<u32>,
    /// Filter: comma-separated CoT type prefixes.
    types: Option<String>,
    /// Priority: low, normal, high, critical.
    priority: Option<String>,
    /// Id prefix for imported shapes without an id (default `import`).
    prefix: Option<String>,
}

/// Import geofences from GeoJSON (Polygon/MultiPolygon with holes, Point with a `radius_m`
/// property, LineString with a `width_m` property) or KML (Polygon, LineString).
#[utoipa::path(post, path = "/api/v1/geofences/import", tag = "rules",
    params(ImportParams),
    request_body(content = String, description = "The GeoJSON or KML document"),
    responses((status = 201, description = "The created geofences", body = serde_json::Value),
              (status = 422, description = "A shape is invalid: which one and why", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn import_geofences(
    State(st): State<AppState>,
    params: Result<Query<ImportParams>, axum::extract::rejection::QueryRejection>,
    ext: Extensions,
    body: Bytes,
) -> Response {
    let svc = match service(&st) {
        Ok(s) => s.clone(),
        Err(e) => return e.into_response(),
    };
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid query parameters: {}", e.body_text()),
            )
            .into_response();
        }
    };
    let mut d = rampart_rules::import::ImportDefaults::default();
    if let Some(t) = &p.triggers {
        d.triggers.enter = false;
        d.triggers.exit = false;
        for part in t.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part {
                "enter" => d.triggers.enter = true,
                "exit" => d.triggers.exit = true,
                other => {
                    return ApiError::bad_param(
                        "triggers",
                        format!("unknown trigger {other:?}; use enter and/or exit"),
                    )
                    .into_response();
                }
            }
        }
    }
    d.triggers.dwell_secs = p.dwell_secs;
    d.triggers.count_above = p.count_above;
    if let Some(t) = &p.types {
        d.filter.types = t
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(pr) = &p.priority {
        match serde_json::from_value(serde_json::Value::String(pr.clone())) {
            Ok(v) => d.priority = v,
            Err(_) => {
                return ApiError::bad_param("priority", "use low, normal, high or critical")
                    .into_response();
            }
        }
    }
    if let Some(x) = &p.prefix {
        d.id_prefix = x.clone();
    }
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(_) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8").into_response();
        }
    };
    let parsed = match p.format.as_str() {
        "geojson" | "json" => rampart_rules::import::from_geojson(text, &d),
        "kml" => rampart_rules::import::from_kml(text, &d),
        other => {
            return ApiError::bad_param("format", format!("{other:?}: use geojson or kml"))
                .into_response();
        }
    };
    let fences = match parsed {
        Ok(f) => f,
        Err(e) => return rules_error(RulesError::Invalid(e)),
    };
    match blocking(move || svc.put_geofences(fences, true)).await {
        Ok(v) => {
            audit(
                &st,
                &ext,
                "geofence.import",
                v.iter().map(|g| g.id.as_str()),
            );
            (StatusCode::CREATED, Json(v)).into_response()
        }
        Err(r) => r,
    }
}

/// List rules.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules",
    responses((status = 200, description = "Every rule", body = serde_json::Value)))]
pub(crate) async fn list_rules(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(service(&st)?.rules()).into_response())
}

/// Create rules: one object or an array (all or none).
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules",
    request_body(content = serde_json::Value, description = "A rule or an array: {id?, name?, rule: {type: proximity|lost_comms|threshold, …}, priority?, enabled?}"),
    responses((status = 201, description = "Created", body = serde_json::Value),
              (status = 422, description = "Invalid: the field and the reason", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn create_rules(
    State(st): State<AppState>,
    ext: Extensions,
    body: Bytes,
) -> Response {
    let svc = match service(&st) {
        Ok(s) => s.clone(),
        Err(e) => return e.into_response(),
    };
    let (items, many) = match parse_body::<Rule>(&body) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match blocking(move || svc.put_rules(items, false)).await {
        Ok(v) => {
            audit(&st, &ext, "rule.create", v.iter().map(|r| r.id.as_str()));
            created(v, many)
        }
        Err(r) => r,
    }
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 200, description = "The rule", body = serde_json::Value),
              (status = 404, description = "No such rule", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn get_rule(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match service(&st)?.rule(&id) {
        Some(r) => Ok(Json(r).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no rule with id {id:?}"),
        )),
    }
}

/// Create or replace a rule.
#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    request_body(content = serde_json::Value, description = "The rule"),
    responses((status = 200, description = "Stored", body = serde_json::Value),
              (status = 422, description = "Invalid", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn put_rule(
    State(st): State<AppState>,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Response {
    let svc = match service(&st) {
        Ok(s) => s.clone(),
        Err(e) => return e.into_response(),
    };
    let mut r: Rule = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response();
        }
    };
    if !r.id.is_empty() && r.id != id {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("id: the body says {:?} but the path says {id:?}", r.id),
        )
        .into_response();
    }
    r.id = id;
    match blocking(move || svc.put_rules(vec![r], true)).await {
        Ok(mut v) => {
            audit(&st, &ext, "rule.put", v.iter().map(|r| r.id.as_str()));
            Json(v.pop()).into_response()
        }
        Err(r) => r,
    }
}

/// Delete a rule (its active alerts clear).
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such rule", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn delete_rule(
    State(st): State<AppState>,
    Path(id): Path<String>,
    ext: Extensions,
) -> Response {
    let svc = match service(&st) {
        Ok(s) => s.clone(),
        Err(e) => return e.into_response(),
    };
    let target = id.clone();
    match blocking(move || svc.delete_rule(&id)).await {
        Ok(()) => {
            audit(&st, &ext, "rule.delete", [target.as_str()].into_iter());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}
