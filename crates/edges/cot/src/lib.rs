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
//! - `mesh`: TAK mesh SA on a multicast group (`cot-mesh`, joined on `[cot] mesh_interface`)
//!   and the optional mesh proxy (`[cot] mesh_proxy`) sending other clients' events to it;
//! - `bridge`: entities from other sources (HTTP, feeds, MQTT) reach TAK clients as CoT;
//! - `tls`: the server certificate (configured, or generated on first start);
//! - security: mutual TLS identities and revocation (`conn`), signed datagrams (`udp`), both
//!   from `rampart-pki`;
//! - labels: each client's clearance (`[cot.clearances]` by certificate CN on `cot-tls`, the
//!   anonymous clearance elsewhere) and each routed event's label, compared by the `router`
//!   so that no client receives an event above its clearance or outside its groups.

mod bridge;
mod conn;
mod frame;
pub mod mesh;
pub mod owners;
pub mod router;
mod session;
pub mod tls;
mod udp;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rampart_engine::{Engine, Metrics, ReasonLabel, ReportSink};
use rampart_labels::{Clearance, ClearanceSpec, Levels, Policy};
use rampart_model::{Label, Timestamp};

pub use bridge::run_bridge;
pub use conn::{run_tcp_listener, run_tls_listener};
pub use mesh::{bind_mesh, run_mesh};
pub use router::Router;
pub use udp::run_udp_listener;

/// Most entries in `[cot.clearances]`.
pub const MAX_CLEARANCES: usize = 10_000;

/// Why a TAK edge configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CotConfigError {
    /// Too many `[cot.clearances]` entries.
    #[error("cot.clearances has {0} entries, at most {MAX_CLEARANCES}")]
    TooManyClearances(usize),
    /// A `[cot.clearances]` entry names an empty CN.
    #[error("cot.clearances: an entry has an empty certificate CN")]
    EmptyCn,
    /// A `[cot.clearances]` entry does not resolve against the configured levels.
    #[error("cot.clearances.{cn:?}: {message}")]
    BadClearance {
        /// The certificate CN of the entry.
        cn: String,
        /// What is wrong with it.
        message: String,
    },
    /// `mesh_interface` is not the IPv4 address of an interface.
    #[error(
        "cot.mesh_interface = {0:?}: expects the IPv4 address of a local interface (e.g. \"192.168.1.10\"), or \"0.0.0.0\" for the kernel's choice"
    )]
    BadMeshInterface(String),
    /// `mesh_ttl` is not a valid IPv4 TTL.
    #[error("cot.mesh_ttl = {0}: expects 0 to 255 (1: the local network only)")]
    BadMeshTtl(u32),
    /// `max_mesh_datagram_bytes` is out of range.
    #[error(
        "cot.max_mesh_datagram_bytes = {0}: expects {min} to {max} (the largest UDP payload)",
        min = mesh::MIN_MESH_DATAGRAM_BYTES,
        max = mesh::MAX_UDP_PAYLOAD
    )]
    BadMeshDatagramBytes(usize),
}

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
    /// Most concurrent connections from one source address per listener; more are closed at
    /// once and counted (`rampart_cot_disconnects_total{reason="connections_per_peer"}`).
    pub max_connections_per_peer: usize,
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
    /// Clearances of `cot-tls` clients by certificate subject CN
    /// (`"alice" = { level = "SECRET", groups = ["NATO"] }`), at most [`MAX_CLEARANCES`].
    /// When labels are enforced, a CN not listed gets the lowest level with no groups, and
    /// clients without a certificate (and every `cot-tcp`, `cot-udp`, `cot-mesh` client) get
    /// `[labels] anonymous`.
    pub clearances: BTreeMap<String, ClearanceSpec>,
    /// Bind a uid to the certificate CN whose client first reports its position under it;
    /// then only that CN may send events with that uid (see [`owners`]).
    pub bind_uids: bool,
    /// Most uids bound to certificate identities; when full, new uids are not bound (counted).
    pub max_bound_uids: usize,
    /// IPv4 address of the interface `cot-mesh` joins its group on and the mesh proxy sends
    /// from; `0.0.0.0` (default) lets the kernel choose.
    pub mesh_interface: String,
    /// Send the events routed to TAK clients from other origins (stream clients, `cot-udp`,
    /// HTTP/MQTT/feeds) to the `cot-mesh` group too, one mesh protobuf datagram each (TAK
    /// Server's `mcast` input with `proxy="true"`). Only data the anonymous clearance may see
    /// leaves on the mesh; events from the mesh are never sent back to it.
    pub mesh_proxy: bool,
    /// IP TTL of the mesh proxy's datagrams (1: the local network only).
    pub mesh_ttl: u32,
    /// Largest datagram the mesh proxy sends; larger events are not sent to the mesh and are
    /// counted (`rampart_cot_mesh_not_sent_total{reason="oversize"}`).
    pub max_mesh_datagram_bytes: usize,
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
            max_connections_per_peer: 1_024,
            max_cached_events: 200_000,
            offer_protocol: true,
            channels: HashMap::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_auth: rampart_pki::ClientAuth::Required,
            bind_uids: true,
            max_bound_uids: 100_000,
            require_signatures: false,
            max_clock_skew_secs: 30,
            clearances: BTreeMap::new(),
            mesh_interface: "0.0.0.0".to_string(),
            mesh_proxy: false,
            mesh_ttl: 1,
            max_mesh_datagram_bytes: 8 * 1024,
        }
    }
}

impl CotConfig {
    /// Checks what serde cannot: the clearance table's size, that every clearance names a
    /// configured level and no reserved group, and the mesh settings.
    pub fn validate(&self, levels: &Levels) -> Result<(), CotConfigError> {
        mesh::parse_interface(&self.mesh_interface)?;
        if self.mesh_ttl > 255 {
            return Err(CotConfigError::BadMeshTtl(self.mesh_ttl));
        }
        if !(mesh::MIN_MESH_DATAGRAM_BYTES..=mesh::MAX_UDP_PAYLOAD)
            .contains(&self.max_mesh_datagram_bytes)
        {
            return Err(CotConfigError::BadMeshDatagramBytes(
                self.max_mesh_datagram_bytes,
            ));
        }
        if self.clearances.len() > MAX_CLEARANCES {
            return Err(CotConfigError::TooManyClearances(self.clearances.len()));
        }
        for (cn, spec) in &self.clearances {
            if cn.trim().is_empty() {
                return Err(CotConfigError::EmptyCn);
            }
            spec.resolve(levels)
                .map_err(|e| CotConfigError::BadClearance {
                    cn: cn.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }
}

/// Whether every client may see `label` under `policy`: nothing is enforced, or it is the
/// lowest level with no releasability restriction (an unknown level is never public).
fn is_public(policy: &Policy, label: &Label) -> bool {
    !policy.enforced
        || (label.releasability.is_empty() && policy.levels.rank(&label.classification) == Some(0))
}

/// See [`CotEdge::clearance_for`].
fn clearance_of_cn(cfg: &CotConfig, policy: &Policy, cn: Option<&str>) -> Clearance {
    match cn {
        None => policy.clearance_of(None),
        Some(cn) => {
            let unlisted = ClearanceSpec::default();
            let spec = cfg.clearances.get(cn).unwrap_or(&unlisted);
            policy.clearance_of(Some(spec))
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
    pub label_withheld: Counter,
    pub uid_refused: Counter,
    pub uid_unbound_full: Counter,
    pub mesh_sent: Counter,
    pub mesh_not_sent: Family<ReasonLabel, Counter>,
    pub mesh_echoes: Counter,
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
            label_withheld: m.register_counter("cot_label_withheld", "CoT events (live or in a late joiner's picture) not sent to a TAK client because its clearance does not permit their label"),
            uid_refused: m.register_counter("cot_uid_refused", "CoT events refused because their uid is bound to another certificate identity (uid spoofing)"),
            mesh_sent: m.register_counter("cot_mesh_sent", "CoT events the TAK mesh proxy sent to the cot-mesh group"),
            mesh_not_sent: m.register_reason_counter("cot_mesh_not_sent", "CoT events the TAK mesh proxy did not send to the cot-mesh group, by reason (oversize, send_error, undecodable)"),
            mesh_echoes: m.register_counter("cot_mesh_echoes", "The TAK mesh proxy's own datagrams looped back by the host and dropped"),
            uid_unbound_full: m.register_counter("cot_uid_unbound_full", "Position reports whose uid could not be bound to their certificate identity because max_bound_uids was reached"),
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
    /// The node's label policy (the engine's): levels, anonymous clearance, source defaults.
    pub(crate) labels: Arc<Policy>,
    /// This server's uid in control events.
    pub(crate) server_uid: String,
    /// Revocation and signature checking, set once by the node before listeners start.
    pub(crate) security: std::sync::OnceLock<CotSecurity>,
    /// Sees every event from stream clients (before `t-x-*` events are dropped), set once by
    /// the node: the rules engine turns drawings into geofences with it.
    pub(crate) event_hook: std::sync::OnceLock<EventHook>,
    /// uid → certificate CN bindings (`bind_uids`).
    pub(crate) owners: owners::UidOwners,
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
    /// Builds the edge over `engine` (for the picture, metrics and the node's label policy,
    /// `engine.config().labels`) and `sink` (for ingest).
    pub fn new(cfg: CotConfig, engine: Arc<Engine>, sink: Arc<dyn ReportSink>) -> Arc<CotEdge> {
        let labels = Arc::clone(&engine.config().labels);
        Self::with_labels(cfg, engine, sink, labels)
    }

    /// [`CotEdge::new`] with an explicit label policy (the node passes the engine's own).
    pub fn with_labels(
        cfg: CotConfig,
        engine: Arc<Engine>,
        sink: Arc<dyn ReportSink>,
        labels: Arc<Policy>,
    ) -> Arc<CotEdge> {
        let metrics = engine.metrics().clone();
        let cot_metrics = CotMetrics::new(&metrics);
        let cfg_max_bound = cfg.max_bound_uids;
        Arc::new(CotEdge {
            router: Router::with_levels(
                cfg.max_queue_bytes,
                cfg.max_cached_events,
                labels.levels.clone(),
                cot_metrics.label_withheld.clone(),
                cot_metrics.deliveries.clone(),
            ),
            cot_metrics,
            labels,
            cfg,
            engine,
            sink,
            metrics,
            server_uid: "Rampart".to_string(),
            security: std::sync::OnceLock::new(),
            event_hook: std::sync::OnceLock::new(),
            owners: owners::UidOwners::new(cfg_max_bound),
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

    /// The clearance of a client: by certificate CN in `[cot.clearances]` (`cn` is `Some` for
    /// an authenticated `cot-tls` client; an unlisted CN gets the lowest level with no groups),
    /// or `[labels] anonymous` without one. Unrestricted when labels are not enforced.
    pub fn clearance_for(&self, cn: Option<&str>) -> Clearance {
        clearance_of_cn(&self.cfg, &self.labels, cn)
    }

    /// The label a frame carries for routing: `None` when every client may see `label`
    /// (labels not enforced, or the lowest level with no releasability), so routing it costs
    /// no comparison.
    pub fn route_label(&self, label: &Label) -> Option<Arc<Label>> {
        (!self.is_public(label)).then(|| Arc::new(label.clone()))
    }

    /// [`CotEdge::route_label`] sharing an entity's label instead of copying it.
    pub(crate) fn route_label_arc(&self, label: &Arc<Label>) -> Option<Arc<Label>> {
        (!self.is_public(label)).then(|| Arc::clone(label))
    }

    fn is_public(&self, label: &Label) -> bool {
        is_public(&self.labels, label)
    }

    /// Sends `event`, labelled `label`, to every TAK client cleared for it (and to the
    /// late-joiner cache), e.g. an alert with the alert's label.
    pub fn publish_event(&self, event: &rampart_codec_cot::CotEvent, label: &Label) {
        let f = frame::build(
            event,
            None,
            None,
            Arc::from(Vec::new()),
            self.route_label(label),
            self.router.has_proto_clients(),
        );
        self.router.publish(f, true);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg() -> CotConfig {
        with_clearances(&[
            ("alice", "SECRET", &["NATO"]),
            ("carol", "CONFIDENTIAL", &[]),
        ])
    }

    fn with_clearances(entries: &[(&str, &str, &[&str])]) -> CotConfig {
        let mut c = CotConfig::default();
        for (cn, level, groups) in entries {
            c.clearances.insert(
                cn.to_string(),
                ClearanceSpec {
                    level: Some(level.to_string()),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                },
            );
        }
        c
    }

    fn secret_nato() -> Label {
        Label {
            classification: "SECRET".into(),
            releasability: vec!["NATO".into()],
        }
    }

    #[test]
    fn clearances_come_from_the_cn_table_when_enforced() {
        let labels = rampart_labels::LabelsConfig {
            anonymous: Some(ClearanceSpec {
                level: Some("RESTRICTED".into()),
                groups: vec![],
            }),
            ..Default::default()
        };
        let policy = Policy::new(&labels, true, Label::unclassified()).unwrap();
        let c = cfg();
        let restricted = Label {
            classification: "RESTRICTED".into(),
            releasability: vec![],
        };
        let alice = clearance_of_cn(&c, &policy, Some("alice"));
        assert!(policy.permits(&alice, &secret_nato()));
        let carol = clearance_of_cn(&c, &policy, Some("carol"));
        assert!(!policy.permits(&carol, &secret_nato()));
        assert_eq!(carol.rank(), 2);
        // An unlisted CN gets the lowest level, below the configured anonymous clearance.
        let mallory = clearance_of_cn(&c, &policy, Some("mallory"));
        assert_eq!(mallory.rank(), 0);
        assert!(!policy.permits(&mallory, &restricted));
        // No certificate (or cot-tcp/udp/mesh): anonymous.
        let anon = clearance_of_cn(&c, &policy, None);
        assert!(policy.permits(&anon, &restricted));
        assert!(!policy.permits(&anon, &secret_nato()));
    }

    #[test]
    fn everyone_is_unrestricted_when_labels_are_not_enforced() {
        let policy = Policy::new(&Default::default(), false, Label::unclassified()).unwrap();
        for cn in [Some("carol"), Some("mallory"), None] {
            assert!(clearance_of_cn(&cfg(), &policy, cn).is_unrestricted());
        }
    }

    #[test]
    fn only_the_lowest_unrestricted_label_skips_the_check() {
        let enforced = Policy::new(&Default::default(), true, Label::unclassified()).unwrap();
        let open = Policy::new(&Default::default(), false, Label::unclassified()).unwrap();
        let label = |c: &str, rel: &[&str]| Label {
            classification: c.into(),
            releasability: rel.iter().map(|g| (*g).into()).collect(),
        };
        assert!(is_public(&enforced, &Label::unclassified()));
        assert!(!is_public(&enforced, &label("UNCLASSIFIED", &["NATO"])));
        assert!(!is_public(&enforced, &label("RESTRICTED", &[])));
        assert!(!is_public(&enforced, &label("SECERT", &[])));
        assert!(!is_public(&enforced, &secret_nato()));
        assert!(is_public(&open, &secret_nato()));
    }

    #[test]
    fn clearance_tables_are_validated() {
        let levels = Levels::default();
        assert_eq!(cfg().validate(&levels), Ok(()));
        let err = with_clearances(&[("bob", "SECERT", &[])])
            .validate(&levels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bob") && err.contains("SECERT"), "{err}");
        let err = with_clearances(&[("eve", "SECRET", &[rampart_labels::NO_RELEASE])])
            .validate(&levels)
            .unwrap_err();
        assert!(matches!(err, CotConfigError::BadClearance { .. }));
        assert_eq!(
            with_clearances(&[(" ", "SECRET", &[])]).validate(&levels),
            Err(CotConfigError::EmptyCn)
        );
        let mut big = CotConfig::default();
        for i in 0..=MAX_CLEARANCES {
            big.clearances
                .insert(format!("cn-{i}"), ClearanceSpec::default());
        }
        assert_eq!(
            big.validate(&levels),
            Err(CotConfigError::TooManyClearances(MAX_CLEARANCES + 1))
        );
    }
}
