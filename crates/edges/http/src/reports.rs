//! `POST /api/v1/reports`: a JSON array of reports in, a receipt out once they are durable.
//!
//! Status codes: 200 when at least one report was accepted (or the body was empty), with
//! every rejected item listed; 422 when every item was rejected; 400 for a body that is not a
//! JSON array; 413 for a body over the size limit; 503 when the history store has failed.
//! Bad input never gets a 5xx.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_codec_json::decode_reports;
use rampart_engine::Rejection;
use rampart_model::Provenance;

use crate::error::ApiError;
use crate::{AppState, PeerAddr, peer_ip};

/// The source name HTTP reports are counted and stamped under.
const SOURCE: &str = "http";

/// The receipt returned for a batch.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Receipt {
    /// Reports stored durably (including late ones).
    accepted: usize,
    /// Of those, reports older than their entity's current state (stored, not folded).
    late: usize,
    /// Reports acknowledged without storing, because their `id` was seen before.
    duplicates: usize,
    /// Every refused item: its index in the body, the field at fault and why.
    #[schema(value_type = Vec<crate::openapi::RejectionDoc>)]
    rejected: Vec<Rejection>,
}

/// Submit reports.
#[utoipa::path(
    post,
    path = "/api/v1/reports",
    tag = "reports",
    request_body(content = Vec<crate::openapi::ReportDoc>, description = "A JSON array of reports"),
    responses(
        (status = 200, description = "At least one report accepted; all accepted reports are durable", body = Receipt),
        (status = 400, description = "The body is not a JSON array of objects", body = crate::openapi::ErrorDoc),
        (status = 413, description = "The body is over the size limit", body = crate::openapi::ErrorDoc),
        (status = 422, description = "Every report was rejected", body = Receipt),
        (status = 503, description = "The history store failed; nothing was acknowledged", body = crate::openapi::ErrorDoc),
    )
)]
pub(crate) async fn post_reports(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let metrics = st.engine.metrics();
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            metrics.reject(SOURCE, "body_unreadable", 1);
            let status = e.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "body is larger than the limit of {} bytes",
                    st.cfg.max_body_bytes
                )
            } else {
                format!("body could not be read: {e}")
            };
            return ApiError::new(status, message).into_response();
        }
    };
    let items = match decode_reports(&body, &st.decode) {
        Ok(items) => items,
        Err(e) => {
            metrics.reject(SOURCE, e.reason(), 1);
            return ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let provenance = Provenance::new(SOURCE, &format!("anonymous@{}", peer_ip(&peer.0)));
    let mut rejected = Vec::new();
    let mut reports = Vec::with_capacity(items.len());
    // Engine rejections index into `reports`; this maps them back to body positions.
    let mut origin = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Ok(mut r) => {
                r.provenance = provenance.clone();
                reports.push(r);
                origin.push(index);
            }
            Err(e) => {
                metrics.reject(SOURCE, e.reason_class(), 1);
                rejected.push(Rejection {
                    index: e.index,
                    field: e.field,
                    reason: e.reason,
                });
            }
        }
    }
    let submitted = reports.len();
    let receipt = match st.sink.submit(reports).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "ingest failed");
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
        }
    };
    for mut r in receipt.rejected {
        r.index = origin.get(r.index).copied().unwrap_or(r.index);
        rejected.push(r);
    }
    rejected.sort_by_key(|r| r.index);
    let status = if submitted == 0 && !rejected.is_empty()
        || receipt.accepted + receipt.duplicates == 0 && !rejected.is_empty()
    {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(Receipt {
            accepted: receipt.accepted,
            late: receipt.late,
            duplicates: receipt.duplicates,
            rejected,
        }),
    )
        .into_response()
}
