//! Operations endpoints: `/healthz`, `/metrics`, and `/live`, a built-in live view that needs
//! nothing from the network.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Liveness and readiness.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving; history writable"),
        (status = 503, description = "The history store has failed: reports are not acknowledged"),
    )
)]
pub(crate) async fn healthz(State(st): State<AppState>) -> Response {
    let failed = st.engine.history().durable().borrow().failed;
    let entities = st.engine.picture().len();
    let status = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "status": if failed { "history_failed" } else { "ok" },
        "entities": entities,
    });
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Metrics in the Prometheus (OpenMetrics) text format", content_type = "application/openmetrics-text"))
)]
pub(crate) async fn metrics(State(st): State<AppState>) -> Response {
    st.engine.refresh_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.engine.metrics().render(),
    )
        .into_response()
}

/// The built-in live view (one self-contained HTML page).
pub(crate) async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../assets/index.html"),
    )
        .into_response()
}
