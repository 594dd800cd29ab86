//! `GET /api/v1/quarantine`: the reports the guard (`rampart-guard`) refused for impossible
//! kinematics, newest first, for review. A caller sees an entry only if its clearance permits
//! both the report's label and the label of the entity state it was judged against (the
//! entry reveals both positions).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_guard::QuarantineQuery;

use crate::AppState;
use crate::error::ApiError;
use crate::labels::Caller;

/// Entries returned when no `limit` is given.
const DEFAULT_QUARANTINE_LIMIT: usize = 1_000;
/// Most entries one listing returns.
const MAX_QUARANTINE_LIMIT: usize = 10_000;

/// Quarantine filters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct QuarantineParams {
    /// Only reports of this entity uid.
    uid: Option<String>,
    /// Most entries returned (default 1000, at most 10000).
    limit: Option<usize>,
}

/// Quarantined reports, newest first.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "alerts", params(QuarantineParams),
    responses((status = 200, description = "Reports refused for impossible kinematics, newest first", body = serde_json::Value),
              (status = 400, description = "A filter is invalid", body = crate::openapi::ErrorDoc),
              (status = 503, description = "Spoofing detection is not running on this node", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    params: Result<Query<QuarantineParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Some(guard) = st.guard.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "spoofing detection is not running on this node ([guard] enabled = false)",
        ));
    };
    let Query(p) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid query parameters: {}", e.body_text()),
        )
    })?;
    let limit = p.limit.unwrap_or(DEFAULT_QUARANTINE_LIMIT);
    if limit == 0 || limit > MAX_QUARANTINE_LIMIT {
        return Err(ApiError::bad_param(
            "limit",
            format!("{limit} is not in 1..={MAX_QUARANTINE_LIMIT}"),
        ));
    }
    let q = QuarantineQuery {
        uid: p.uid.filter(|u| !u.is_empty()),
        limit,
    };
    let items = guard.quarantined(&q, |x| {
        caller.may_see(&x.label) && caller.may_see(&x.previous.label)
    });
    Ok(Json(items).into_response())
}
