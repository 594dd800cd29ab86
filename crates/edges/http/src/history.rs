//! `GET /api/v1/history`: recorded positions of the entities in an area over a period, for the
//! console's playback; and `GET /api/v1/console/config`, the console's settings.
//!
//! The entities are those of the live picture inside `bbox` (and of `type`), at most
//! `max_history_entities`; each one's track is read from history for `[from, to]`, and the
//! whole answer holds at most `max_history_points` positions (split evenly, newest kept). An
//! entity that has left the live picture is not replayed.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_history::TrackQuery;
use rampart_model::Timestamp;
use rampart_picture::BBox;

use crate::AppState;
use crate::error::ApiError;

/// Query parameters of `GET /api/v1/history`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryParams {
    /// RFC 3339 start of the period (inclusive). Required.
    from: Option<String>,
    /// RFC 3339 end of the period (inclusive). Required.
    to: Option<String>,
    /// `minLon,minLat,maxLon,maxLat` of the entities to replay (their current position).
    bbox: Option<String>,
    /// CoT type prefix.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_prefix: Option<String>,
}

/// One entity's recorded positions.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct HistoryTrack {
    /// The entity's uid.
    uid: String,
    /// Its current CoT type.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    cot_type: String,
    /// Its current MIL-STD-2525C SIDC.
    sidc: String,
    /// Its current callsign.
    callsign: String,
    /// `[time_ms, lat, lon, course_or_null]`, oldest first.
    points: Vec<(i64, f64, f64, Option<f64>)>,
}

/// The answer of `GET /api/v1/history`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct HistoryWindow {
    /// Start of the period, RFC 3339.
    from: String,
    /// End of the period, RFC 3339.
    to: String,
    /// True when the entity or point limit cut the answer short.
    truncated: bool,
    /// One track per entity.
    entities: Vec<HistoryTrack>,
}

fn required_time(param: &'static str, text: Option<&str>) -> Result<Timestamp, ApiError> {
    let text = text.ok_or_else(|| ApiError::bad_param(param, "is required (RFC 3339)"))?;
    Timestamp::parse_rfc3339(text).map_err(|e| ApiError::bad_param(param, e.to_string()))
}

/// Recorded positions of the entities in an area over a period.
#[utoipa::path(
    get,
    path = "/api/v1/history",
    tag = "entities",
    params(HistoryParams),
    responses(
        (status = 200, description = "Tracks of the live entities in `bbox` over `[from, to]`", body = HistoryWindow),
        (status = 400, description = "A parameter is invalid", body = crate::openapi::ErrorDoc),
        (status = 503, description = "The history store could not be read", body = crate::openapi::ErrorDoc),
    )
)]
pub(crate) async fn window(
    State(st): State<AppState>,
    caller: crate::labels::Caller,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid query parameters: {}", e.body_text()),
        )
    })?;
    let from = required_time("from", p.from.as_deref())?;
    let to = required_time("to", p.to.as_deref())?;
    if from > to {
        return Err(ApiError::bad_param("from", "must not be after to"));
    }
    let max_entities = st.cfg.max_history_entities;
    let mut q = rampart_picture::Query {
        limit: Some(max_entities.saturating_add(1)),
        type_prefix: p.type_prefix.filter(|t| !t.is_empty()),
        clearance: Some(caller.clearance.clone()),
        ..Default::default()
    };
    if let Some(b) = &p.bbox {
        q.bbox = Some(BBox::parse(b).map_err(|e| ApiError::bad_param("bbox", e))?);
    }
    let mut selected: Vec<(String, String, String, String)> = {
        let picture = st.engine.picture();
        picture
            .query(&q)
            .into_iter()
            .map(|e| {
                (
                    e.uid.as_str().to_string(),
                    e.cot_type.to_string(),
                    e.sidc().as_str().to_string(),
                    e.callsign.as_deref().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let mut truncated = selected.len() > max_entities;
    selected.truncate(max_entities);
    let per_entity = (st.cfg.max_history_points / selected.len().max(1)).max(1);
    let history = st.engine.history().clone();
    let (tracks, cut) = tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(selected.len());
        let mut cut = false;
        for (uid, cot_type, sidc, callsign) in selected {
            let query = TrackQuery {
                uid: uid.clone(),
                from,
                to,
                limit: per_entity,
            };
            let mut points = history.track(&query)?;
            cut |= points.len() >= per_entity;
            // Each point keeps the label it was reported with: an older point may be above
            // the caller's clearance even when the entity's current label is not.
            points.retain(|r| caller.may_see_report(r));
            if points.is_empty() {
                continue;
            }
            out.push(HistoryTrack {
                uid,
                cot_type,
                sidc,
                callsign,
                points: points
                    .iter()
                    .map(|r| (r.time.0, r.lat, r.lon, r.course))
                    .collect(),
            });
        }
        Ok::<_, rampart_history::HistoryError>((out, cut))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    truncated |= cut;
    Ok(Json(HistoryWindow {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        truncated,
        entities: tracks,
    })
    .into_response())
}

/// The console's settings (tile sources, playback defaults), from `[console]`.
#[utoipa::path(
    get,
    path = "/api/v1/console/config",
    tag = "console",
    responses((status = 200, description = "The console's settings"))
)]
pub(crate) async fn console_config(State(st): State<AppState>) -> Response {
    Json(st.console.to_json()).into_response()
}

/// The operator's PMTiles basemap (`[console] pmtiles_file`), by HTTP range.
pub(crate) async fn pmtiles(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    rampart_console::pmtiles(&st.console, &headers).await
}
