//! # rampart-http
//!
//! The HTTP edge of a Rampart node. It owns:
//!
//! - `reports`: `POST /api/v1/reports`, JSON in, acknowledged once durable;
//! - `entities`: GeoJSON queries of the live picture and of history tracks;
//! - `stream`: the WebSocket live picture (snapshot, then deltas, per-client filters);
//! - `ops`: `/healthz`, `/metrics` and `/api/v1/openapi.json` (its old built-in live view
//!   remains at `/live`);
//! - `history`: `/api/v1/history` (positions over a period, for playback) and
//!   `/api/v1/console/config`; the operator console itself (`rampart-console`) is served at `/`;
//! - `rules`, `alerts`: geofences and rules as data, alerts listed, acknowledged and cleared;
//! - `listener`: a TCP listener that counts and bounds connections;
//! - `tls`: HTTPS over rustls, with client certificates and revocation from `rampart-pki`;
//! - `auth`: operators, roles, API tokens, console sessions, CSRF, and the per-route role table.
//!
//! Handlers only translate between HTTP and the engine; all state lives in the engine.

mod alerts;
mod audit;
pub mod auth;
mod devices;
mod entities;
mod error;
pub mod formats;
mod history;
pub mod labels;
mod listener;
mod openapi;
mod ops;
mod quarantine;
mod reports;
mod rules;
mod stream;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use rampart_engine::{Engine, ReportSink};

pub use listener::{CountingListener, PeerAddr};
pub use rampart_console::ConsoleConfig;
pub use tls::{HANDSHAKE_TIMEOUT, TlsListener, serve_tls};

/// Limits and settings of the HTTP edge. Every bound is named so it can be configured.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most reports in one `POST /api/v1/reports` body.
    pub max_reports_per_request: usize,
    /// Entities returned when a query gives no `limit`.
    pub default_query_limit: usize,
    /// Largest `limit` a query may ask for.
    pub max_query_limit: usize,
    /// Track points returned when no `limit` is given.
    pub default_track_limit: usize,
    /// Largest track `limit`.
    pub max_track_limit: usize,
    /// Most entities in a WebSocket snapshot; larger snapshots are truncated and flagged.
    pub max_snapshot_entities: usize,
    /// Largest message a WebSocket client may send, in bytes.
    pub max_ws_message_bytes: usize,
    /// A WebSocket send that cannot complete within this many milliseconds disconnects the
    /// client as too slow.
    pub ws_send_timeout_ms: u64,
    /// Most open TCP connections; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// A connection on which nothing is read or written for this long is closed (0: never).
    /// WebSocket streams are kept busy by a ping every 30 s.
    pub idle_timeout_secs: u64,
    /// Most open connections from one source address; more are closed at once and counted
    /// (`rampart_rejected_total{source="http",reason="connections_per_peer"}`).
    pub max_connections_per_peer: usize,
    /// Most entities in one `GET /api/v1/history` answer (console playback).
    pub max_history_entities: usize,
    /// Most positions in one `GET /api/v1/history` answer, split evenly between its entities.
    pub max_history_points: usize,
    /// Most history reports one `GET /api/v1/history` scans (the newest of the period are
    /// kept; about 400 bytes of memory each while the answer is built).
    pub max_history_scan_records: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 16 * 1024 * 1024,
            max_reports_per_request: 10_000,
            default_query_limit: 10_000,
            max_query_limit: 100_000,
            default_track_limit: 10_000,
            max_track_limit: 200_000,
            max_snapshot_entities: 100_000,
            max_ws_message_bytes: 64 * 1024,
            ws_send_timeout_ms: 10_000,
            max_connections: 10_000,
            max_connections_per_peer: rampart_engine::DEFAULT_MAX_CONNECTIONS_PER_PEER,
            idle_timeout_secs: 300,
            max_history_entities: 5_000,
            max_history_points: 1_000_000,
            max_history_scan_records: 1_000_000,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The live picture, history and metrics.
    pub engine: Arc<Engine>,
    /// Where reports are submitted: the local engine, or a cluster publisher.
    pub sink: Arc<dyn ReportSink>,
    /// Edge limits.
    pub cfg: Arc<HttpConfig>,
    /// How report bodies are decoded (field limits, items per body).
    pub decode: Arc<rampart_codec_json::DecodeOptions>,
    /// Settings of the operator console (`[console]`).
    pub console: Arc<ConsoleConfig>,
    /// The device registry (`/api/v1/devices`), when the node runs one.
    pub devices: Option<Arc<rampart_devices::Devices>>,
    /// The rules engine (`/api/v1/geofences`, `/api/v1/rules`, `/api/v1/alerts`, alerts on
    /// the stream), when the node runs one.
    pub rules: Option<Arc<rampart_rules::RulesService>>,
    /// Spoofing and abuse detection (`/api/v1/quarantine`), when the node runs it.
    pub guard: Option<Arc<rampart_guard::GuardScreen>>,
    /// The audit log (changes and commands are recorded; `/api/v1/audit/tail`), when open.
    pub audit: Option<Arc<rampart_audit::AuditLog>>,
    /// Operators and sessions (`[auth]`); `None` leaves every route open.
    pub auth: Option<Arc<auth::Auth>>,
    /// Whether this listener serves HTTPS (session cookies are then `Secure`).
    pub https: bool,
    /// Labels set explicitly by admins (`PUT /api/v1/entities/{uid}/label`), when persisted.
    pub label_overrides: Option<Arc<labels::LabelOverrides>>,
    /// The operator's MBTiles basemap (`[console] mbtiles_file`), opened at startup.
    pub mbtiles: Option<Arc<rampart_console::MbTiles>>,
}

impl AppState {
    /// Builds the state, deriving the decode options from `cfg` and the field `limits`.
    pub fn new(
        engine: Arc<Engine>,
        sink: Arc<dyn ReportSink>,
        cfg: HttpConfig,
        limits: rampart_model::Limits,
    ) -> Self {
        let decode = rampart_codec_json::DecodeOptions {
            limits,
            max_items: cfg.max_reports_per_request,
            allow_single_object: false,
        };
        AppState {
            engine,
            sink,
            cfg: Arc::new(cfg),
            decode: Arc::new(decode),
            console: Arc::new(ConsoleConfig::default()),
            devices: None,
            rules: None,
            guard: None,
            label_overrides: None,
            mbtiles: None,
            audit: None,
            auth: None,
            https: false,
        }
    }

    /// Serves `devices` at `/api/v1/devices`.
    pub fn with_devices(mut self, devices: Arc<rampart_devices::Devices>) -> Self {
        self.devices = Some(devices);
        self
    }

    /// Checks credentials and roles with `auth` (see [`auth::ROUTES`]).
    pub fn with_auth(mut self, auth: Arc<auth::Auth>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Records changes and commands in `audit` and serves its tail hash.
    pub fn with_audit(mut self, audit: Arc<rampart_audit::AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Persists explicit label overrides in `overrides`.
    pub fn with_label_overrides(mut self, overrides: Arc<labels::LabelOverrides>) -> Self {
        self.label_overrides = Some(overrides);
        self
    }

    /// Serves the guard's quarantine at `/api/v1/quarantine` (`None`: the route answers 503).
    pub fn with_guard(mut self, guard: Option<Arc<rampart_guard::GuardScreen>>) -> Self {
        self.guard = guard;
        self
    }

    /// Serves the rules engine's API and streams its alerts.
    pub fn with_rules(mut self, rules: Arc<rampart_rules::RulesService>) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Serves `tiles` at `/api/v1/console/tiles/{z}/{x}/{y}` (see [`ConsoleConfig::open_mbtiles`]).
    pub fn with_mbtiles(mut self, tiles: Option<Arc<rampart_console::MbTiles>>) -> Self {
        self.mbtiles = tiles;
        self
    }

    /// Uses `console` as the operator console's settings.
    pub fn with_console(mut self, console: ConsoleConfig) -> Self {
        self.console = Arc::new(console);
        self
    }
}

impl AppState {
    fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.ws_send_timeout_ms)
    }
}

/// Builds the router with every route of the API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.cfg.max_body_bytes;
    Router::new()
        .route("/api/v1/reports", post(reports::post_reports))
        .route("/api/v1/entities", get(entities::list))
        .route("/api/v1/entities/{uid}", get(entities::one))
        .route("/api/v1/entities/{uid}/track", get(entities::track))
        .route("/api/v1/entities/{uid}/label", put(entities::set_label))
        .route("/api/v1/stream", get(stream::upgrade))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/devices", get(devices::list).post(devices::create))
        .route(
            "/api/v1/devices/{id}",
            get(devices::one).delete(devices::remove),
        )
        .route("/api/v1/devices/{id}/policy", put(devices::set_policy))
        .route(
            "/api/v1/devices/{id}/commands",
            get(devices::commands).post(devices::create_command),
        )
        .route("/api/v1/commands/{id}", get(devices::command))
        .route("/api/v1/history", get(history::window))
        .route("/api/v1/console/config", get(history::console_config))
        .route(rampart_console::PMTILES_PATH, get(history::pmtiles))
        .route(
            "/api/v1/console/tiles/{z}/{x}/{y}",
            get(history::mbtiles_tile),
        )
        .merge(rules::routes())
        .route("/api/v1/quarantine", get(quarantine::list))
        .route("/api/v1/audit/tail", get(audit::tail))
        .route("/live", get(ops::index))
        .merge(rampart_console::router())
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .merge(auth::routes())
        // After routing, so the guard sees the matched route pattern.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let gauge = state.engine.metrics().connection_gauge("http");
    let peers = rampart_engine::PeerLimiter::new(
        state.cfg.max_connections_per_peer,
        state.cfg.max_connections,
    );
    let listener = CountingListener::new(listener, state.cfg.max_connections, gauge)
        .with_peer_limit(peers, state.engine.metrics().clone())
        .with_idle_timeout(Duration::from_secs(state.cfg.idle_timeout_secs));
    let app = router(state).into_make_service_with_connect_info::<PeerAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The address a request came from, for provenance.
pub(crate) fn peer_ip(addr: &SocketAddr) -> String {
    addr.ip().to_string()
}
