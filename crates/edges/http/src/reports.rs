//! `POST /api/v1/reports`: a JSON array of reports in, a receipt out once they are durable.
//!
//! Status codes: 200 when at least one report was accepted (or the body was empty), with
//! every rejected item listed; 422 when every item was rejected; 400 for a body that is not a
//! JSON array; 413 for a body over the size limit; 503 when the history store has failed.
//! Bad input never gets a 5xx.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
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
    headers: HeaderMap,
    body: Body,
) -> Response {
    let metrics = st.engine.metrics();
    let max = st.cfg.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body is larger than the limit of {max} bytes"),
        )
        .into_response()
    };
    // Refuse from the declared length before reading a byte of an oversized body.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        metrics.reject(SOURCE, "body_too_large", 1);
        return too_large();
    }
    let body: Bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(e) => {
            // A chunked body that outgrew the limit, or a client that went away mid-body.
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                metrics.reject(SOURCE, "body_too_large", 1);
                return too_large();
            }
            metrics.reject(SOURCE, "body_unreadable", 1);
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("body could not be read: {e}"),
            )
            .into_response();
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
