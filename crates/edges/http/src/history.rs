//! `GET /api/v1/history`: recorded positions of the entities in an area over a period, for the
//! console's playback; and `GET /api/v1/console/config`, the console's settings.
//!
//! The positions come from a bounded scan of history over `[from, to]`
//! ([`rampart_history::HistoryStore::window`], at most `max_history_scan_records` reports,
//! the newest kept), so an entity that has since left the live picture is replayed too. They
//! are grouped by uid; only points the caller may see (each point keeps the label it was
//! reported with) and that lie inside `bbox` are kept, and an entity's type and callsign are
//! those of its newest visible point, so a hidden report never lends its callsign. An entity
//! still in the live picture whose (joined) label the caller may not see is left out, as on
//! every other read path. At most
//! `max_history_entities` entities (those reported most recently) and `max_history_points`
//! positions (split evenly, newest kept) are returned; `truncated` says when a limit cut.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_history::{Window, WindowQuery};
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
    /// `minLon,minLat,maxLon,maxLat`: only positions inside it are replayed.
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
    /// Its CoT type (of its newest point the caller may see).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    cot_type: String,
    /// Its MIL-STD-2525C SIDC, from that type.
    sidc: String,
    /// Its callsign (of its newest visible point that had one; empty if none).
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
    /// True when the scan, entity or point limit cut the answer short.
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
        (status = 200, description = "Tracks of the entities reported in `bbox` over `[from, to]`, including ones no longer in the live picture", body = HistoryWindow),
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
    let bbox = match &p.bbox {
        Some(b) => Some(BBox::parse(b).map_err(|e| ApiError::bad_param("bbox", e))?),
        None => None,
    };
    let type_prefix = p.type_prefix.filter(|t| !t.is_empty());
    let max_entities = st.cfg.max_history_entities;
    let max_points = st.cfg.max_history_points;
    let query = WindowQuery {
        from,
        to,
        max_records: st.cfg.max_history_scan_records,
    };
    let default_type = st.engine.config().picture.defaults.cot_type.clone();
    let engine = st.engine.clone();
    let (tracks, truncated) = tokio::task::spawn_blocking(move || {
        let scan = engine.history().window(&query)?;
        // An entity still in the live picture keeps its joined label there: one the caller
        // may not see stays hidden here too, as it is on every other read path.
        let hidden_live = |uid: &str| {
            engine
                .picture()
                .get(uid)
                .is_some_and(|e| !caller.may_see(&e.label))
        };
        Ok::<_, rampart_history::HistoryError>(select(
            scan,
            &Selection {
                caller: &caller,
                hidden_live: &hidden_live,
                bbox,
                type_prefix: type_prefix.as_deref(),
                default_type: &default_type,
                max_entities,
                max_points,
            },
        ))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(HistoryWindow {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        truncated,
        entities: tracks,
    })
    .into_response())
}

/// What [`select`] keeps of a window scan.
struct Selection<'a> {
    caller: &'a crate::labels::Caller,
    /// Whether `uid` is in the live picture with a label the caller may not see.
    hidden_live: &'a dyn Fn(&str) -> bool,
    bbox: Option<BBox>,
    type_prefix: Option<&'a str>,
    /// The type of an entity none of whose visible points carries one.
    default_type: &'a str,
    max_entities: usize,
    max_points: usize,
}

/// One entity's visible points during grouping.
#[derive(Default)]
struct Group {
    /// Type and callsign of the newest visible point that carried them.
    cot_type: Option<rampart_model::Text>,
    callsign: Option<rampart_model::Text>,
    points: Vec<(i64, f64, f64, Option<f64>)>,
}

/// Groups a window scan (sorted by time) into tracks: label, bbox and type filters, then the
/// entity and point limits. Returns the tracks (by uid) and whether anything was cut.
fn select(scan: Window, s: &Selection<'_>) -> (Vec<HistoryTrack>, bool) {
    let mut truncated = scan.truncated;
    let mut groups: std::collections::HashMap<rampart_model::Uid, Group> =
        std::collections::HashMap::new();
    for r in scan.reports {
        // Each point keeps the label it was reported with: an older point may be above the
        // caller's clearance even when the entity's current label is not, and the reverse.
        if !s.caller.may_see_report(&r) {
            continue;
        }
        // Time order: a later point's type and callsign replace an earlier one's. They are
        // taken from visible points only, whether or not the point is inside the bbox.
        let g = groups.entry(r.uid.clone()).or_default();
        if r.cot_type.is_some() {
            g.cot_type = r.cot_type.clone();
        }
        if r.callsign.is_some() {
            g.callsign = r.callsign.clone();
        }
        if s.bbox.is_none_or(|b| b.contains(r.lat, r.lon)) {
            g.points.push((r.time.0, r.lat, r.lon, r.course));
        }
    }
    let mut kept: Vec<(rampart_model::Uid, Group)> = groups
        .into_iter()
        .filter(|(_, g)| !g.points.is_empty())
        .filter(|(uid, _)| !(s.hidden_live)(uid))
        .filter(|(_, g)| {
            s.type_prefix.is_none_or(|t| {
                g.cot_type
                    .as_deref()
                    .unwrap_or(s.default_type)
                    .starts_with(t)
            })
        })
        .collect();
    // The entities reported most recently first (then by uid, so answers are stable).
    kept.sort_by(|a, b| {
        let last = |g: &Group| g.points.last().map_or(i64::MIN, |p| p.0);
        last(&b.1).cmp(&last(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    if kept.len() > s.max_entities {
        kept.truncate(s.max_entities);
        truncated = true;
    }
    let per_entity = (s.max_points / kept.len().max(1)).max(1);
    let tracks = kept
        .into_iter()
        .map(|(uid, mut g)| {
            if g.points.len() > per_entity {
                g.points.drain(..g.points.len() - per_entity);
                truncated = true;
            }
            let cot_type = g.cot_type.as_deref().unwrap_or(s.default_type).to_string();
            HistoryTrack {
                uid: uid.as_str().to_string(),
                sidc: rampart_model::sidc::from_cot_type(&cot_type)
                    .as_str()
                    .to_string(),
                cot_type,
                callsign: g.callsign.as_deref().unwrap_or_default().to_string(),
                points: g.points,
            }
        })
        .collect();
    (tracks, truncated)
}

/// The console's settings (tile sources, playback defaults), from `[console]`.
#[utoipa::path(
    get,
    path = "/api/v1/console/config",
    tag = "console",
    responses((status = 200, description = "The console's settings"))
)]
pub(crate) async fn console_config(State(st): State<AppState>) -> Response {
    let mut v = st.console.to_json();
    if let Some(m) = &st.mbtiles {
        v["mbtiles"] = m.to_json();
    }
    Json(v).into_response()
}

/// One tile of the operator's MBTiles basemap (`[console] mbtiles_file`), XYZ numbering.
#[utoipa::path(
    get,
    path = "/api/v1/console/tiles/{z}/{x}/{y}",
    tag = "console",
    params(
        ("z" = u32, Path, description = "Zoom level"),
        ("x" = u32, Path, description = "Column, from the west"),
        ("y" = String, Path, description = "Row, from the north (XYZ; an extension such as `.png` is ignored)"),
    ),
    responses(
        (status = 200, description = "The tile, typed from the file's `format` (image/png, image/jpeg, image/webp, application/vnd.mapbox-vector-tile)"),
        (status = 400, description = "A coordinate is not a number"),
        (status = 404, description = "No such tile, or no MBTiles file is configured"),
    )
)]
pub(crate) async fn mbtiles_tile(
    State(st): State<AppState>,
    axum::extract::Path((z, x, y)): axum::extract::Path<(String, String, String)>,
) -> Response {
    rampart_console::mbtiles::serve_tile(st.mbtiles.clone(), &z, &x, &y).await
}

/// The operator's PMTiles basemap (`[console] pmtiles_file`), by HTTP range.
pub(crate) async fn pmtiles(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    rampart_console::pmtiles(&st.console, &headers).await
}
