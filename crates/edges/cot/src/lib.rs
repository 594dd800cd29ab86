//! # rampart-edge-cot
//!
//! The TAK edge: ATAK, WinTAK and iTAK clients (and CoT sensors) connect here as to a TAK
//! server. It owns:
//!
//! - `session`: one client's protocol state, sans-IO: stream splitting (XML, then TAK
//!   protocol v1 after negotiation), control events (pings, `t-x-takp-*`), decoding into
//!   reports for the engine, and turning events into routable frames;
//! - `router`: TAK-style all-to-all routing without echo, by channel, with bounded per-client
//!   queues and a late-joiner cache;
//! - `conn`: the TCP and TLS connection loops (timeouts, write-back);
//! - `udp`: one event per datagram (XML or mesh protobuf), optionally on a multicast group;
//! - `bridge`: entities from other sources (HTTP, feeds, MQTT) reach TAK clients as CoT;
//! - `tls`: the server certificate (configured, or generated on first start);
//! - security: mutual TLS identities and revocation (`conn`), signed datagrams (`udp`), both
//!   from `rampart-pki`.

mod bridge;
mod conn;
mod frame;
pub mod router;
mod session;
pub mod tls;
mod udp;

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rampart_engine::{Engine, Metrics, ReasonLabel, ReportSink};
use rampart_model::Timestamp;

pub use bridge::run_bridge;
pub use conn::{run_tcp_listener, run_tls_listener};
pub use router::Router;
pub use udp::run_udp_listener;

/// Limits and behaviour of the TAK edge. Every bound is named here.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CotConfig {
    /// Largest event (XML document or protobuf frame) in bytes; a larger one closes the
    /// connection.
    pub max_event_bytes: usize,
    /// Bytes queued for one client before it counts as unable to keep up and is disconnected.
    pub max_queue_bytes: usize,
    /// A connection that sends nothing for this many seconds is closed (half-open sockets).
    pub idle_timeout_secs: u64,
    /// A connection that leaves an event half-sent for this many seconds is closed (slowloris).
    pub frame_timeout_secs: u64,
    /// A write to a client that cannot complete within this many seconds closes it.
    pub write_timeout_secs: u64,
    /// Milliseconds to let events gather for a client before writing them (0: write at once).
    /// Batching writes is what lets one core feed many clients.
    pub write_linger_ms: u64,
    /// Most concurrent TCP/TLS connections per listener.
    pub max_connections: usize,
    /// Entities whose latest event is kept for late joiners.
    pub max_cached_events: usize,
    /// Offer TAK protocol v1 (`t-x-takp-v`) to every streaming client on connect.
    pub offer_protocol: bool,
    /// Channels by listener kind (`cot-tcp`, `cot-tls`, `cot-udp`): clients receive the events
    /// of clients sharing a channel. `name:in` only sends into a channel (a write-only group,
    /// e.g. sensors nobody on that listener reads), `name:out` only receives from it. A kind
    /// without an entry has no channel restriction.
    pub channels: HashMap<String, Vec<String>>,
    /// Server certificate (PEM) for `cot-tls`; generated under the data directory if absent.
    pub tls_cert: Option<std::path::PathBuf>,
    /// Server private key (PEM) for `cot-tls`.
    pub tls_key: Option<std::path::PathBuf>,
    /// Client certificates on `cot-tls`: `required` (default: mutual TLS against the built-in
    /// CA, revoked certificates refused and live connections closed), `optional` or `none`.
    pub tls_client_auth: rampart_pki::ClientAuth,
    /// Refuse unsigned datagrams on `cot-udp` and `cot-mesh` (signed envelopes, see
    /// SECURITY.md). Signed datagrams are verified whether or not this is set.
    pub require_signatures: bool,
    /// Clock-skew window of signed datagrams, in seconds either way.
    pub max_clock_skew_secs: u64,
}

impl Default for CotConfig {
    fn default() -> Self {
        CotConfig {
            max_event_bytes: 64 * 1024,
            max_queue_bytes: 16 * 1024 * 1024,
            idle_timeout_secs: 600,
            frame_timeout_secs: 30,
            write_timeout_secs: 10,
            write_linger_ms: 5,
            max_connections: 20_000,
            max_cached_events: 200_000,
            offer_protocol: true,
            channels: HashMap::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_auth: rampart_pki::ClientAuth::Required,
            require_signatures: false,
            max_clock_skew_secs: 30,
        }
    }
}

/// Counters of the TAK edge.
#[derive(Clone)]
pub(crate) struct CotMetrics {
    pub events_in: Counter,
    pub deliveries: Counter,
    pub disconnects: Family<ReasonLabel, Counter>,
    pub bridged: Counter,
    pub bridge_lagged: Counter,
    pub signature_refusals: Family<ReasonLabel, Counter>,
}

impl CotMetrics {
    fn new(m: &Metrics) -> Self {
        CotMetrics {
            events_in: m.register_counter("cot_events_in", "CoT events received from TAK clients and CoT sources"),
            deliveries: m.register_counter("cot_deliveries", "CoT events written into client queues (one per receiving client)"),
            disconnects: m.register_reason_counter("cot_disconnects", "TAK client connections closed by the server, by reason"),
            bridged: m.register_counter("cot_bridged", "Entity updates from non-CoT sources sent to TAK clients"),
            bridge_lagged: m.register_counter("cot_bridge_lagged", "Entity update batches the CoT bridge fell behind on (TAK clients get the next update)"),
            signature_refusals: m.register_reason_counter("cot_signature_refusals", "CoT datagrams refused by signature checks, by reason (unsigned, malformed, unknown_key, bad_signature, replay, stale, future)"),
        }
    }

    pub fn disconnect(&self, reason: &str) {
        self.disconnects
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}

/// Everything the TAK edge's tasks share.
pub struct CotEdge {
    pub(crate) cfg: CotConfig,
    pub(crate) router: Router,
    pub(crate) engine: Arc<Engine>,
    pub(crate) sink: Arc<dyn ReportSink>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) cot_metrics: CotMetrics,
    /// This server's uid in control events.
    pub(crate) server_uid: String,
    /// Revocation and signature checking, set once by the node before listeners start.
    pub(crate) security: std::sync::OnceLock<CotSecurity>,
    /// Sees every event from stream clients (before `t-x-*` events are dropped), set once by
    /// the node: the rules engine turns drawings into geofences with it.
    pub(crate) event_hook: std::sync::OnceLock<EventHook>,
}

/// A function shown every event TAK stream clients send. It must not block (hand work off).
pub type EventHook = Arc<dyn Fn(&rampart_codec_cot::CotEvent) + Send + Sync>;

/// The PKI pieces the TAK edge uses: the revocation watch (closes `cot-tls` connections of
/// revoked certificates) and the verifier of signed datagrams.
#[derive(Clone, Default)]
pub struct CotSecurity {
    /// Revocations of client certificates.
    pub watch: Option<Arc<rampart_pki::RevocationWatch>>,
    /// Verifier of signed datagrams on `cot-udp`/`cot-mesh`.
    pub verifier: Option<Arc<rampart_pki::SignatureVerifier>>,
}

impl CotEdge {
    /// Builds the edge over `engine` (for the picture and metrics) and `sink` (for ingest).
    pub fn new(cfg: CotConfig, engine: Arc<Engine>, sink: Arc<dyn ReportSink>) -> Arc<CotEdge> {
        let metrics = engine.metrics().clone();
        Arc::new(CotEdge {
            router: Router::new(cfg.max_queue_bytes, cfg.max_cached_events),
            cot_metrics: CotMetrics::new(&metrics),
            cfg,
            engine,
            sink,
            metrics,
            server_uid: "Rampart".to_string(),
            security: std::sync::OnceLock::new(),
            event_hook: std::sync::OnceLock::new(),
        })
    }

    /// Installs revocation and signature checking. Only the first call counts; call it before
    /// starting listeners.
    pub fn set_security(&self, security: CotSecurity) {
        let _ = self.security.set(security);
    }

    pub(crate) fn watch(&self) -> Option<&Arc<rampart_pki::RevocationWatch>> {
        self.security.get().and_then(|s| s.watch.as_ref())
    }

    /// Installs the event hook. Only the first call counts.
    pub fn set_event_hook(&self, hook: EventHook) {
        let _ = self.event_hook.set(hook);
    }

    /// Sends `event` to every TAK client (and the late-joiner cache), e.g. an alert.
    pub fn publish_event(&self, event: &rampart_codec_cot::CotEvent) {
        let f = frame::build(
            event,
            None,
            None,
            Arc::from(Vec::new()),
            self.router.has_proto_clients(),
        );
        let (delivered, _) = self.router.publish(f, true);
        self.cot_metrics.deliveries.inc_by(delivered);
    }

    /// The router, for inspection.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The channels clients of `kind` send into.
    pub(crate) fn channels_for(&self, kind: &str) -> Arc<[Arc<str>]> {
        self.membership(kind).0
    }

    /// The channels clients of `kind` send into and receive from (`None`: everything).
    pub(crate) fn membership(&self, kind: &str) -> (router::Channels, Option<router::Channels>) {
        let Some(entries) = self.cfg.channels.get(kind) else {
            return (Arc::from(Vec::new()), None);
        };
        let mut send = Vec::new();
        let mut recv = Vec::new();
        for e in entries {
            if let Some(name) = e.strip_suffix(":in") {
                send.push(Arc::<str>::from(name));
            } else if let Some(name) = e.strip_suffix(":out") {
                recv.push(Arc::<str>::from(name));
            } else {
                send.push(Arc::<str>::from(e.as_str()));
                recv.push(Arc::<str>::from(e.as_str()));
            }
        }
        (Arc::from(send), Some(Arc::from(recv)))
    }

    /// Drops cached events that went stale (call periodically).
    pub fn prune(&self) {
        self.router.prune(Timestamp::now());
    }
}
