//! The HTTP edge's side of the audit log: who a request's actor is, recording an action, and
//! `GET /api/v1/audit/tail` (the chain head, for anchoring elsewhere).

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::{AppState, PeerAddr, peer_ip};

/// The actor of a request: `user@address` for an authenticated operator or token, and
/// `anonymous@address` otherwise (`api` stands for the address when the connection has none,
/// e.g. in-process tests).
pub(crate) fn actor(ext: &Extensions) -> String {
    let addr = ext
        .get::<ConnectInfo<PeerAddr>>()
        .map_or_else(|| "api".to_string(), |c| peer_ip(&c.0.0));
    match ext.get::<crate::auth::Identity>() {
        Some(id) => format!("{}@{addr}", id.user),
        None => format!("anonymous@{addr}"),
    }
}

/// Records an action that has been done. The action already happened, so a failure to
/// record it is logged loudly rather than undoing it.
pub(crate) fn record(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) {
    let Some(log) = &state.audit else { return };
    let result = match log.append(actor, action, target, detail) {
        // Keep the event even when its detail is too large to record.
        Err(rampart_audit::AuditError::TooLarge(why)) => log.append(
            actor,
            action,
            &truncate(target),
            serde_json::json!({ "detail_omitted": why }),
        ),
        other => other,
    };
    if let Err(e) = result {
        tracing::error!(error = %e, action, target, "could not write the audit record");
    }
}

/// `s` cut to the audit field limit (on a character boundary).
fn truncate(s: &str) -> String {
    let mut end = s.len().min(rampart_audit::MAX_FIELD_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The audit chain's head: the last record's `seq` and `hash` (hex SHA-256).
#[utoipa::path(get, path = "/api/v1/audit/tail", tag = "audit",
    responses((status = 200, description = "{seq, hash} of the last audit record (seq 0: none)", body = serde_json::Value),
              (status = 404, description = "No audit log on this node", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn tail(State(state): State<AppState>) -> Result<Response, ApiError> {
    match &state.audit {
        Some(log) => Ok(Json(log.tail_hash()).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "the audit log is not enabled on this node",
        )),
    }
}
