//! `/api/v1/alerts`: alerts listed and filtered, acknowledged and cleared by hand, and the
//! webhook dead-letter list.
//!
//! Labels: every handler takes the [`Caller`] and shows only alerts whose label the caller's
//! clearance permits. An alert the caller may not see answers 404 exactly like one that does
//! not exist (get, ack, clear), so its existence does not leak.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_model::Timestamp;
use rampart_rules::{AckError, AlertQuery};

use crate::AppState;
use crate::error::ApiError;
use crate::labels::Caller;
use crate::rules::service;

/// Most alerts one listing returns.
const MAX_ALERT_LIMIT: usize = 10_000;
/// Alerts returned when no `limit` is given.
const DEFAULT_ALERT_LIMIT: usize = 1_000;

/// Alert filters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertParams {
    /// `raised`, `acknowledged`, `cleared`, or `active` (raised or acknowledged).
    state: Option<String>,
    /// Minimum priority: `low`, `normal`, `high`, `critical`, `emergency`.
    priority: Option<String>,
    /// `enter`, `exit`, `dwell`, `count`, `proximity`, `lost_comms`, `threshold`, `emergency`, `sos`.
    kind: Option<String>,
    /// Entity uid.
    entity: Option<String>,
    /// Rule or geofence id.
    rule: Option<String>,
    /// Raised at or after this RFC 3339 time.
    since: Option<String>,
    /// Most alerts returned (default 1000, at most 10000).
    limit: Option<usize>,
}

fn enum_param<T: serde::de::DeserializeOwned>(
    name: &'static str,
    v: &str,
    allowed: &str,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(v.to_string()))
        .map_err(|_| ApiError::bad_param(name, format!("{v:?} is not one of {allowed}")))
}

/// List alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertParams),
    responses((status = 200, description = "Alerts, newest first", body = serde_json::Value),
              (status = 400, description = "A filter is invalid", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    params: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let svc = service(&st)?;
    let Query(p) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid query parameters: {}", e.body_text()),
        )
    })?;
    let mut q = AlertQuery {
        limit: p.limit.unwrap_or(DEFAULT_ALERT_LIMIT).min(MAX_ALERT_LIMIT),
        entity: p.entity,
        rule_id: p.rule,
        ..Default::default()
    };
    let mut active_only = false;
    if let Some(s) = &p.state {
        if s == "active" {
            active_only = true;
        } else {
            q.state = Some(enum_param(
                "state",
                s,
                "raised, acknowledged, cleared, active",
            )?);
        }
    }
    if let Some(v) = &p.priority {
        q.min_priority = Some(enum_param(
            "priority",
            v,
            "low, normal, high, critical, emergency",
        )?);
    }
    if let Some(v) = &p.kind {
        q.kind = Some(enum_param(
            "kind",
            v,
            "enter, exit, dwell, count, proximity, lost_comms, threshold, emergency, sos",
        )?);
    }
    if let Some(v) = &p.since {
        q.since = Some(
            Timestamp::parse_rfc3339(v).map_err(|e| ApiError::bad_param("since", e.to_string()))?,
        );
    }
    let alerts = svc.alerts_where(&q, |a| {
        (!active_only || a.is_active()) && caller.may_see(&a.label)
    });
    Ok(Json(alerts).into_response())
}

/// One alert.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = u64, Path, description = "Alert id")),
    responses((status = 200, description = "The alert", body = serde_json::Value),
              (status = 404, description = "No such alert", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    match service(&st)?.alert(id) {
        Some(a) if caller.may_see(&a.label) => Ok(Json(a).into_response()),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no alert with id {id}"),
        )),
    }
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_param("id", format!("{id:?} is not an alert id (a number)")))
}

fn ack_error(e: AckError) -> ApiError {
    match e {
        AckError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
        AckError::Cleared(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
    }
}

/// Acknowledge body.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckBody {
    /// Who acknowledges (operator name or callsign, 1–128 bytes).
    by: String,
}

/// Acknowledge an alert: `{"by": "operator"}`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = u64, Path, description = "Alert id")),
    request_body(content = AckBody),
    responses((status = 200, description = "The acknowledged alert", body = serde_json::Value),
              (status = 404, description = "No such alert", body = crate::openapi::ErrorDoc),
              (status = 409, description = "Already cleared", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn ack(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let svc = service(&st)?;
    let id = parse_id(&id)?;
    let b: AckBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("expected {{\"by\": \"operator\"}}: {e}"),
        )
    })?;
    let who = b.by.trim();
    if who.is_empty() || who.len() > 128 || who.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "by: must be 1 to 128 bytes without control characters",
        ));
    }
    let a = svc
        .ack_where(id, who, |a| caller.may_see(&a.label))
        .map_err(ack_error)?;
    tracing::info!(alert = id, by = who, "alert acknowledged");
    crate::audit::record(
        &st,
        &crate::audit::actor(&ext),
        "alert.ack",
        &id.to_string(),
        serde_json::json!({ "by": who, "rule": a.rule_id, "kind": a.kind }),
    );
    Ok(Json(a).into_response())
}

/// Clear an alert by hand (e.g. the lost-comms alert of a unit known to be off duty).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/clear", tag = "alerts",
    params(("id" = u64, Path, description = "Alert id")),
    responses((status = 200, description = "The cleared alert", body = serde_json::Value),
              (status = 404, description = "No such alert", body = crate::openapi::ErrorDoc),
              (status = 409, description = "Already cleared", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn clear(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    let svc = service(&st)?;
    let id = parse_id(&id)?;
    let a = svc
        .clear_where(id, |a| caller.may_see(&a.label))
        .map_err(ack_error)?;
    crate::audit::record(
        &st,
        &crate::audit::actor(&ext),
        "alert.clear",
        &id.to_string(),
        serde_json::json!({ "rule": a.rule_id, "kind": a.kind }),
    );
    Ok(Json(a).into_response())
}

/// Alert events that webhooks never took (oldest first).
#[utoipa::path(get, path = "/api/v1/alerts/deadletters", tag = "alerts",
    responses((status = 200, description = "Dead letters: {url, event, attempts, error, at}", body = serde_json::Value)))]
pub(crate) async fn dead_letters(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let mut dead = service(&st)?.dead_letters();
    dead.retain(|d| caller.may_see(&d.event.alert.label));
    Ok(Json(dead).into_response())
}
