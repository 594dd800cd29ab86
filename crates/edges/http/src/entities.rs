//! GeoJSON queries: the live picture (`/api/v1/entities`, `/api/v1/entities/{uid}`) and an
//! entity's history (`/api/v1/entities/{uid}/track`).
//!
//! Matching entities are cloned under the picture's read lock and serialised after it is
//! released, so a large answer never holds up ingest.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_codec_json::EntityFeature;
use rampart_history::TrackQuery;
use rampart_model::{Entity, Timestamp};
use rampart_picture::{BBox, Near};

use crate::AppState;
use crate::error::ApiError;
use crate::formats::{self, Format};
use crate::labels::Caller;

/// Query parameters of `GET /api/v1/entities`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EntitiesParams {
    /// `minLon,minLat,maxLon,maxLat`; `minLon > maxLon` crosses the antimeridian.
    bbox: Option<String>,
    /// `lat,lon,radius_m`: within a great-circle radius.
    near: Option<String>,
    /// `lat,lon,k`: the k nearest entities, nearest first.
    nearest: Option<String>,
    /// CoT type prefix on atom boundaries: `a-f` is every friendly, `a-h-A` hostile air.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_prefix: Option<String>,
    /// Case-insensitive text search in callsign or uid.
    q: Option<String>,
    /// `true` for only stale entities, `false` for only current ones.
    stale: Option<String>,
    /// Most features returned.
    limit: Option<String>,
    /// `geojson` (default), `kml`, `csv` or `cot`; otherwise chosen by the `Accept` header.
    format: Option<String>,
}

/// Query parameters of `GET /api/v1/entities/{uid}/track`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TrackParams {
    /// RFC 3339 start of the range (inclusive); default: the oldest retained report.
    from: Option<String>,
    /// RFC 3339 end of the range (inclusive); default: no end.
    to: Option<String>,
    /// Most points returned (the newest ones, oldest first).
    limit: Option<String>,
    /// `geojson` (default), `gpx`, `kml` or `csv`; otherwise chosen by the `Accept` header.
    format: Option<String>,
}

fn floats<const N: usize>(
    param: &'static str,
    text: &str,
    shape: &str,
) -> Result<[f64; N], ApiError> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != N {
        return Err(ApiError::bad_param(
            param,
            format!("expected {shape} ({N} comma-separated numbers), got {text:?}"),
        ));
    }
    let mut out = [0.0; N];
    for (i, p) in parts.iter().enumerate() {
        out[i] = p
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                ApiError::bad_param(param, format!("{p:?} is not a number (expected {shape})"))
            })?;
    }
    Ok(out)
}

fn check_lat_lon(param: &'static str, lat: f64, lon: f64) -> Result<(), ApiError> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(ApiError::bad_param(
            param,
            format!("lat {lat} / lon {lon} out of range"),
        ));
    }
    Ok(())
}

fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match text {
        None => Ok(default),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            Ok(_) => Err(ApiError::bad_param(
                "limit",
                format!("must be at most {max}"),
            )),
            Err(_) => Err(ApiError::bad_param(
                "limit",
                format!("{t:?} is not a whole number"),
            )),
        },
    }
}

fn parse_time(param: &'static str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| Timestamp::parse_rfc3339(t).map_err(|e| ApiError::bad_param(param, e.to_string())))
        .transpose()
}

fn geojson(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/geo+json")], body).into_response()
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("invalid query parameters: {}", e.body_text()),
    )
}

/// Query the live picture.
#[utoipa::path(
    get,
    path = "/api/v1/entities",
    tag = "entities",
    params(EntitiesParams),
    responses(
        (status = 200, description = "A GeoJSON FeatureCollection of entities (or KML, CSV, CoT XML by `format`/`Accept`)", content_type = "application/geo+json", body = crate::openapi::FeatureCollectionDoc),
        (status = 400, description = "A parameter is invalid", body = crate::openapi::ErrorDoc),
    )
)]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<EntitiesParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(query_rejection)?;
    let format = Format::choose(p.format.as_deref(), &headers, formats::ENTITY_FORMATS)?;
    let limit = parse_limit(
        p.limit.as_deref(),
        st.cfg.default_query_limit,
        st.cfg.max_query_limit,
    )?;
    let mut q = rampart_picture::Query {
        limit: Some(limit),
        type_prefix: p.type_prefix.filter(|t| !t.is_empty()),
        text: p.q.filter(|t| !t.is_empty()),
        clearance: Some(caller.clearance.clone()),
        ..Default::default()
    };
    if let Some(b) = &p.bbox {
        q.bbox = Some(BBox::parse(b).map_err(|e| ApiError::bad_param("bbox", e))?);
    }
    if let Some(n) = &p.near {
        let [lat, lon, radius_m] = floats::<3>("near", n, "lat,lon,radius_m")?;
        check_lat_lon("near", lat, lon)?;
        if radius_m < 0.0 {
            return Err(ApiError::bad_param("near", "radius_m must not be negative"));
        }
        q.near = Some(Near { lat, lon, radius_m });
    }
    if let Some(s) = &p.stale {
        q.stale = Some(match s.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(ApiError::bad_param(
                    "stale",
                    format!("{other:?} is not true or false"),
                ));
            }
        });
    }
    let entities: Vec<Entity> = {
        let picture = st.engine.picture();
        match &p.nearest {
            Some(n) => {
                let [lat, lon, k] = floats::<3>("nearest", n, "lat,lon,k")?;
                check_lat_lon("nearest", lat, lon)?;
                if k < 0.0 || k.fract() != 0.0 {
                    return Err(ApiError::bad_param("nearest", "k must be a whole number"));
                }
                let k = (k as usize).min(limit);
                picture
                    .nearest(lat, lon, k, &q)
                    .into_iter()
                    .map(|(e, _)| e.clone())
                    .collect()
            }
            None => picture.query(&q).into_iter().cloned().collect(),
        }
    };
    Ok(formats::entities(format, &entities))
}

/// One entity of the live picture.
#[utoipa::path(
    get,
    path = "/api/v1/entities/{uid}",
    tag = "entities",
    params(("uid" = String, Path, description = "The entity's uid")),
    responses(
        (status = 200, description = "A GeoJSON Feature", content_type = "application/geo+json", body = crate::openapi::FeatureDoc),
        (status = 404, description = "No live entity has this uid", body = crate::openapi::ErrorDoc),
    )
)]
pub(crate) async fn one(
    State(st): State<AppState>,
    caller: Caller,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    // An entity the caller may not see answers exactly like one that does not exist.
    let entity = st
        .engine
        .picture()
        .get(&uid)
        .filter(|e| caller.may_see(&e.label))
        .cloned();
    match entity {
        Some(e) => Ok(geojson(
            serde_json::to_vec(&EntityFeature(&e)).unwrap_or_default(),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no live entity with uid {uid:?}"),
        )),
    }
}

/// An entity's history.
#[utoipa::path(
    get,
    path = "/api/v1/entities/{uid}/track",
    tag = "entities",
    params(("uid" = String, Path, description = "The entity's uid"), TrackParams),
    responses(
        (status = 200, description = "A GeoJSON FeatureCollection of Point features, oldest first (or GPX, KML, CSV by `format`/`Accept`)", content_type = "application/geo+json", body = crate::openapi::FeatureCollectionDoc),
        (status = 400, description = "A parameter is invalid", body = crate::openapi::ErrorDoc),
        (status = 503, description = "The history store could not be read", body = crate::openapi::ErrorDoc),
    )
)]
pub(crate) async fn track(
    State(st): State<AppState>,
    caller: Caller,
    Path(uid): Path<String>,
    headers: HeaderMap,
    params: Result<Query<TrackParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(query_rejection)?;
    let format = Format::choose(p.format.as_deref(), &headers, formats::TRACK_FORMATS)?;
    let from = parse_time("from", p.from.as_deref())?.unwrap_or(Timestamp(i64::MIN));
    let to = parse_time("to", p.to.as_deref())?.unwrap_or(Timestamp(i64::MAX));
    if from > to {
        return Err(ApiError::bad_param("from", "must not be after to"));
    }
    let limit = parse_limit(
        p.limit.as_deref(),
        st.cfg.default_track_limit,
        st.cfg.max_track_limit,
    )?;
    let history = st.engine.history().clone();
    let query = TrackQuery {
        uid: uid.clone(),
        from,
        to,
        limit,
    };
    let mut points = tokio::task::spawn_blocking(move || history.track(&query))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    // Per point: each keeps the label it was reported with.
    points.retain(|r| caller.may_see_report(r));
    Ok(formats::track(format, &uid, &points))
}

/// The body of `PUT /api/v1/entities/{uid}/label`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetLabel {
    /// The new classification (a configured level).
    classification: String,
    /// The new releasability groups (empty: no restriction).
    #[serde(default)]
    releasability: Vec<String>,
    /// Why: recorded in the audit log. Required.
    reason: String,
}

/// Most bytes of a downgrade's reason.
const MAX_REASON_BYTES: usize = 1024;

/// Sets an entity's label outright: the explicit, audited downgrade (or upgrade) by an admin.
/// Later reports still raise it again (an entity's label is the join of its reports').
#[utoipa::path(
    put,
    path = "/api/v1/entities/{uid}/label",
    tag = "entities",
    params(("uid" = String, Path, description = "The entity's uid")),
    request_body = SetLabel,
    responses(
        (status = 200, description = "`{uid, before, after}`"),
        (status = 400, description = "Unknown level, or no reason given", body = crate::openapi::ErrorDoc),
        (status = 404, description = "No live entity has this uid", body = crate::openapi::ErrorDoc),
    )
)]
pub(crate) async fn set_label(
    State(st): State<AppState>,
    caller: Caller,
    ext: axum::http::Extensions,
    Path(uid): Path<String>,
    axum::Json(body): axum::Json<SetLabel>,
) -> Result<Response, ApiError> {
    if body.reason.trim().is_empty() || body.reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::bad_param(
            "reason",
            format!("is required (1 to {MAX_REASON_BYTES} bytes)"),
        ));
    }
    let label = rampart_model::Label {
        classification: body.classification.as_str().into(),
        releasability: body
            .releasability
            .iter()
            .map(|g| g.as_str().into())
            .collect(),
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no live entity with uid {uid:?}"),
        )
    };
    st.engine
        .config()
        .labels
        .levels
        .validate(&label)
        .map_err(|e| ApiError::bad_param("classification", e.to_string()))?;
    // An admin changes only what they may see: a hidden entity is a 404, as for everyone.
    let visible = st
        .engine
        .picture()
        .get(&uid)
        .is_some_and(|e| caller.may_see(&e.label));
    if !visible {
        return Err(not_found());
    }
    // Persist first, so a change that cannot be kept across a restart is refused, not half
    // done.
    if let Some(o) = &st.label_overrides {
        o.set(&uid, &label)
            .map_err(|e| ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e))?;
    }
    let before = st
        .engine
        .set_label(&uid, &label)
        .map_err(|e| ApiError::bad_param("classification", e.to_string()))?
        .ok_or_else(not_found)?;
    let levels = &st.engine.config().labels.levels;
    let downgrade = levels.join(&before, &label) == before && before != label;
    crate::audit::record(
        &st,
        &crate::audit::actor(&ext),
        if downgrade {
            "entity.label_downgrade"
        } else {
            "entity.label_set"
        },
        &uid,
        serde_json::json!({"before": before, "after": label, "reason": body.reason}),
    );
    Ok(
        axum::Json(serde_json::json!({"uid": uid, "before": before, "after": label}))
            .into_response(),
    )
}
