//! The broker task and the edge's public face.
//!
//! One task owns the sans-IO [`Broker`] and everything that must agree with it: the
//! connections' outboxes, the authorizer's state and the batch of publishes waiting for
//! durability. Connection tasks send it [`Event`]s over a bounded channel (the one place
//! where a flood of input waits); it answers by filling outboxes, which never blocks it:
//! a slow subscriber loses QoS 0 messages (counted) or its connection, never anyone's
//! throughput.
//!
//! Persistent sessions are snapshotted to `<data>/mqtt/sessions.json` when they changed,
//! at most every `snapshot_interval_ms`, and at shutdown; they are restored at start.
//!
//! Entity updates and alerts are injected with their security label as a broker marking
//! (see `labels`), so they reach only subscribers, and bridges, cleared for them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rampart_devices::Devices;
use rampart_engine::{Delta, Metrics, ReasonLabel, ReportSink};
use rampart_mqtt_broker::codec::types::{Publish, QoS};
use rampart_mqtt_broker::codec::{v3, v5};
use rampart_mqtt_broker::{Action, Broker, Config, ConnId, Packet, Snapshot};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::authz::{AuthState, DeviceAuthorizer, identity_of};
use crate::config::MqttConfig;
use crate::ingest::{self, DURABLE_FILTERS, Job, Outcome, PositionLookup};
use crate::outbox::{Outbox, Pushed};

/// What connection tasks and helpers tell the broker task.
pub(crate) enum Event {
    /// A connection opened.
    Open {
        conn: ConnId,
        outbox: Arc<Outbox>,
        tls_identity: Option<String>,
    },
    /// Packets decoded from one read.
    Packets { conn: ConnId, packets: Vec<Packet> },
    /// A connection ended.
    Closed { conn: ConnId },
    /// Durability outcomes of held publishes.
    Persisted(Vec<(rampart_mqtt_broker::PersistToken, Outcome)>),
    /// A message from the server itself.
    Inject(Publish),
    /// A labelled message from the server itself (alerts): delivered only to subscribers
    /// cleared for the label.
    InjectLabelled(Publish, rampart_model::Label),
    /// A message that came in over a bridge (never forwarded back out).
    Bridged(Publish),
    /// Changes to the live picture, for entity topics.
    Entities(Arc<Delta>),
    /// A device has new commands.
    Wake(String),
    /// Write a final snapshot, then answer.
    Shutdown(oneshot::Sender<()>),
}

/// Counters of the edge, exported as Prometheus metrics.
pub(crate) struct Counters {
    malformed: Family<ReasonLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    auth: Family<ReasonLabel, Counter>,
    broker: Family<ReasonLabel, Counter>,
    dropped_qos0: Counter,
    slow_closed: Counter,
    published_entities: Counter,
    commands_sent: Counter,
    bridge_dropped: Counter,
    bridge_label_withheld: Counter,
    slow_marked: Counter,
    paused: Counter,
    gave_up: Counter,
}

impl Counters {
    pub(crate) fn new(m: &Metrics) -> Counters {
        Counters {
            malformed: m.register_reason_counter(
                "mqtt_connections_closed_bad_input",
                "MQTT connections closed for bad input, by reason",
            ),
            refused: m.register_reason_counter(
                "mqtt_publishes_refused",
                "MQTT publishes on device topics refused, by reason",
            ),
            auth: m.register_reason_counter(
                "mqtt_auth_refused",
                "MQTT connections refused at authentication, by reason",
            ),
            broker: m.register_reason_counter(
                "mqtt_broker_events",
                "MQTT broker core counters (drops, refusals, expiries), by name",
            ),
            dropped_qos0: m.register_counter(
                "mqtt_outbound_qos0_dropped",
                "QoS 0 deliveries dropped because the subscriber's outbound queue was full",
            ),
            slow_closed: m.register_counter(
                "mqtt_slow_consumers_closed",
                "MQTT connections closed because their outbound queue passed the hard limit",
            ),
            published_entities: m.register_counter(
                "mqtt_entity_updates_published",
                "Entity updates published on rampart/v1/entities/{uid}",
            ),
            commands_sent: m.register_counter(
                "mqtt_commands_sent",
                "Device commands published on rampart/v1/{device}/cmd",
            ),
            paused: m.register_counter(
                "mqtt_publishers_paused",
                "Times publishers were paused because a connected subscriber's session queue was congested",
            ),
            gave_up: m.register_counter(
                "mqtt_congestion_gave_up",
                "Times a congestion outlasted slow_consumer_ms and publishers resumed",
            ),
            slow_marked: m.register_counter(
                "mqtt_slow_consumers_marked",
                "MQTT connections that could not drain within slow_consumer_ms",
            ),
            bridge_dropped: m.register_counter(
                "mqtt_bridge_outbound_dropped",
                "Local messages not forwarded to a bridge because its queue was full",
            ),
            bridge_label_withheld: m.register_counter(
                "mqtt_bridge_label_withheld",
                "Labelled local messages not forwarded to a bridge because its clearance does not permit the label",
            ),
        }
    }

    fn label(reason: &str) -> ReasonLabel {
        ReasonLabel {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn publish_refused(&self, reason: &str) {
        self.refused.get_or_create(&Self::label(reason)).inc();
    }

    pub(crate) fn auth_refused(&self, reason: &str) {
        self.auth.get_or_create(&Self::label(reason)).inc();
    }
}

/// Low-level counters read by tests and benchmarks.
#[derive(Default, Debug)]
pub struct Stats {
    /// Packets the codec could not encode (never expected).
    pub encode_errors: AtomicU64,
    /// Open connections.
    pub connections: AtomicUsize,
}

/// State shared by the listeners, the connection tasks and the broker task.
pub(crate) struct Shared {
    pub events: mpsc::Sender<Event>,
    /// True while publishers must not be read (a connected subscriber is congested).
    pub pause: tokio::sync::watch::Sender<bool>,
    pub cfg: MqttConfig,
    pub stats: Arc<Stats>,
    counters: Arc<Counters>,
    next_conn: AtomicU64,
    /// Connections per source address, across the `mqtt` and `mqtts` listeners.
    peers: Arc<rampart_engine::PeerLimiter>,
}

impl Shared {
    #[cfg(test)]
    pub(crate) fn for_tests() -> Arc<Shared> {
        let (events, _) = mpsc::channel(1);
        Arc::new(Shared {
            events,
            pause: tokio::sync::watch::Sender::new(false),
            cfg: MqttConfig::default(),
            stats: Arc::new(Stats::default()),
            counters: Arc::new(Counters::new(&Metrics::new())),
            next_conn: AtomicU64::new(1),
            peers: rampart_engine::PeerLimiter::new(1_024, 1_024),
        })
    }

    pub(crate) fn count_malformed(&self, reason: &str) {
        self.counters
            .malformed
            .get_or_create(&Counters::label(reason))
            .inc();
    }
}

/// What the edge needs from the node.
pub struct MqttDeps {
    /// Where durable device reports go.
    pub sink: Arc<dyn ReportSink>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Device registry.
    pub devices: Arc<Devices>,
    /// Current entity positions, for telemetry without one.
    pub positions: PositionLookup,
    /// Live picture changes, for `rampart/v1/entities/{uid}` (`None` disables them).
    pub deltas: Option<broadcast::Receiver<Arc<Delta>>>,
    /// Directory for persistent sessions (`None`: sessions live in memory only).
    pub data_dir: Option<PathBuf>,
    /// Field limits of reports.
    pub limits: rampart_model::Limits,
    /// The node's label policy: clearances of devices, anonymous clients and bridges.
    pub labels: Arc<rampart_labels::Policy>,
}

/// The MQTT edge. Start it with [`MqttEdge::start`], then hand it listeners.
pub struct MqttEdge {
    shared: Arc<Shared>,
}

impl MqttEdge {
    /// Starts the broker task and the ingest task, restoring persistent sessions.
    pub fn start(cfg: MqttConfig, deps: MqttDeps) -> anyhow::Result<Arc<MqttEdge>> {
        let counters = Arc::new(Counters::new(&deps.metrics));
        let (events_tx, events_rx) = mpsc::channel(cfg.event_queue.max(1));
        let (jobs_tx, jobs_rx) = mpsc::channel(cfg.persist_queue.max(1));
        let (persisted_tx, persisted_rx) = mpsc::unbounded_channel();
        let mut bcfg = Config::with_durable(DURABLE_FILTERS)
            .map_err(|e| anyhow::anyhow!("durable topic filters: {e:?}"))?;
        bcfg.limits = cfg.limits();
        // Bridges: messages in go through the broker task; local messages matching a
        // bridge's filters are handed to it (Action::Observed).
        let mut bridges = Vec::new();
        for b in &cfg.bridge {
            b.validate()
                .map_err(|e| anyhow::anyhow!("[[mqtt.bridge]] {:?}: {e}", b.name))?;
            let filters = b.local_filters();
            b.clearance
                .resolve(&deps.labels.levels)
                .map_err(|e| anyhow::anyhow!("[[mqtt.bridge]] {:?}: clearance: {e}", b.name))?;
            let clearance = crate::labels::clearance(&deps.labels, Some(&b.clearance));
            bcfg.observe.extend(filters.iter().cloned());
            let (out_tx, out_rx) = mpsc::channel(b.queue_len.max(1));
            let (in_tx, mut in_rx) = mpsc::channel::<Publish>(b.queue_len.max(1));
            let events = events_tx.clone();
            tokio::spawn(async move {
                while let Some(p) = in_rx.recv().await {
                    if events.send(Event::Bridged(p)).await.is_err() {
                        return;
                    }
                }
            });
            let stats = Arc::new(crate::bridge::BridgeStats::default());
            tokio::spawn(crate::bridge::run_bridge(b.clone(), in_tx, out_rx, stats));
            bridges.push(Bridge {
                filters,
                tx: out_tx,
                clearance,
            });
        }
        let auth = Arc::new(Mutex::new(AuthState::default()));
        let authorizer = DeviceAuthorizer::new(
            deps.devices.clone(),
            cfg.allow_anonymous,
            auth.clone(),
            counters.clone(),
            cfg.max_sessions,
            deps.labels.clone(),
        );
        let mut broker = Broker::with_authorizer(bcfg, Box::new(authorizer));
        let snapshot_path = deps
            .data_dir
            .as_ref()
            .map(|d| d.join("mqtt").join("sessions.json"));
        if let Some(path) = &snapshot_path {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::read(path) {
                Ok(bytes) => {
                    let mut snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| {
                        anyhow::anyhow!("reading MQTT sessions from {}: {e}", path.display())
                    })?;
                    let scale = crate::labels::scale(&deps.labels);
                    if snap.marking_scale.as_ref().is_some_and(|s| *s != scale) {
                        let n = snap.drop_marked();
                        tracing::warn!(
                            dropped = n,
                            "the label levels changed since MQTT sessions were saved: their labelled messages are dropped"
                        );
                    }
                    let stats = broker.restore(snap, Instant::now());
                    tracing::info!(
                        sessions = stats.sessions,
                        pending = stats.pending,
                        retained = stats.retained,
                        skipped = stats.skipped,
                        "MQTT sessions restored"
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let shared = Arc::new(Shared {
            events: events_tx.clone(),
            pause: tokio::sync::watch::Sender::new(false),
            cfg: cfg.clone(),
            stats: Arc::new(Stats::default()),
            counters: counters.clone(),
            next_conn: AtomicU64::new(1),
            peers: rampart_engine::PeerLimiter::new(
                cfg.max_connections_per_peer,
                cfg.max_connections,
            ),
        });
        let ing = ingest::Ingest {
            cfg: cfg.clone(),
            sink: deps.sink,
            devices: deps.devices.clone(),
            positions: deps.positions,
            counters: counters.clone(),
            persisted: persisted_tx,
            limits: deps.limits,
            sparkplug: rampart_codec_sparkplug::Decoder::new(
                rampart_codec_sparkplug::Limits::default(),
                rampart_codec_sparkplug::BookLimits::default(),
            ),
        };
        tokio::spawn(ingest::run(ing, jobs_rx));
        if let Some(mut deltas) = deps.deltas
            && cfg.entity_topics
        {
            let tx = events_tx.clone();
            tokio::spawn(async move {
                loop {
                    match deltas.recv().await {
                        Ok(d) => {
                            // Entity topics are best effort: never wait on a busy broker.
                            let _ = tx.try_send(Event::Entities(d));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
        }
        {
            let mut wake = deps.devices.subscribe_wake();
            let tx = events_tx.clone();
            tokio::spawn(async move {
                loop {
                    match wake.recv().await {
                        Ok(dev) => {
                            if tx.send(Event::Wake(dev)).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
        }
        let actor = Actor {
            broker,
            conns: HashMap::new(),
            tls: HashMap::new(),
            conn_device: HashMap::new(),
            awaiting_connect: HashMap::new(),
            auth,
            devices: deps.devices,
            jobs: jobs_tx,
            shared: shared.clone(),
            touched: Vec::new(),
            full: Vec::new(),
            pending_jobs: Vec::new(),
            wake_devices: Vec::new(),
            dirty: false,
            snapshot_path,
            last_metrics: rampart_mqtt_broker::Metrics::default(),
            labels: deps.labels.clone(),
            bridges,
            paused_since: None,
            deferred: std::collections::VecDeque::new(),
            deferred_conns: std::collections::HashSet::new(),
            gave_up: false,
        };
        tokio::spawn(actor.run(events_rx, persisted_rx));
        Ok(Arc::new(MqttEdge { shared }))
    }

    /// Low-level counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.shared.stats
    }

    /// A sender of messages into the broker (for bridges and server publishes).
    pub fn injector(&self) -> mpsc::Sender<Publish> {
        let (tx, mut rx) = mpsc::channel::<Publish>(1024);
        let events = self.shared.events.clone();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if events.send(Event::Inject(p)).await.is_err() {
                    return;
                }
            }
        });
        tx
    }

    /// A sender of labelled messages into the broker (alerts): each reaches only
    /// subscribers and bridges whose clearance permits its label.
    pub fn labelled_injector(&self) -> mpsc::Sender<(Publish, rampart_model::Label)> {
        let (tx, mut rx) = mpsc::channel::<(Publish, rampart_model::Label)>(1024);
        let events = self.shared.events.clone();
        tokio::spawn(async move {
            while let Some((p, l)) = rx.recv().await {
                if events.send(Event::InjectLabelled(p, l)).await.is_err() {
                    return;
                }
            }
        });
        tx
    }

    /// Writes a final session snapshot.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.shared.events.send(Event::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    fn admit(&self, peer: std::net::SocketAddr) -> Option<(ConnId, rampart_engine::PeerSlot)> {
        let n = self.shared.stats.connections.load(Ordering::Relaxed);
        if n >= self.shared.cfg.max_connections {
            self.shared.count_malformed("max_connections");
            return None;
        }
        let slot = match self.shared.peers.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                self.shared.count_malformed(why.reason());
                tracing::debug!(%peer, reason = why.reason(), "MQTT connection refused");
                return None;
            }
        };
        Some((
            ConnId(self.shared.next_conn.fetch_add(1, Ordering::Relaxed)),
            slot,
        ))
    }

    /// Accepts plain MQTT connections on `listener` until the process ends.
    pub async fn run_tcp_listener(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some((conn, slot)) = self.admit(peer) else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let guard = ConnGuard::new(&shared.stats);
                let (rd, wr) = stream.into_split();
                crate::conn::run(rd, wr, conn, peer, None, shared).await;
                drop((guard, slot));
            });
        }
    }

    /// Accepts MQTT over TLS on `listener`. `identity` maps a verified client certificate
    /// (DER) to the subject a device is bound to; connections without one authenticate
    /// with a token.
    pub async fn run_tls_listener(
        self: Arc<Self>,
        listener: TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
        identity: CertIdentity,
    ) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "MQTTS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some((conn, slot)) = self.admit(peer) else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            let acceptor = acceptor.clone();
            let identity = identity.clone();
            tokio::spawn(async move {
                let guard = ConnGuard::new(&shared.stats);
                // Held for the connection's life, released on every return below.
                let _slot = slot;
                let timeout = Duration::from_millis(shared.cfg.connect_timeout_ms);
                let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "MQTTS handshake failed");
                        shared.count_malformed("tls_handshake");
                        return;
                    }
                    Err(_) => {
                        shared.count_malformed("tls_handshake_timeout");
                        return;
                    }
                };
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| identity(c.as_ref()));
                let (subject, revoked) = match cert {
                    Some(PeerCert { subject, revoked }) => (Some(subject), revoked),
                    None => (None, None),
                };
                let (rd, wr) = tokio::io::split(tls);
                let run = crate::conn::run(rd, wr, conn, peer, subject, shared.clone());
                match revoked {
                    None => run.await,
                    Some(revoked) => {
                        tokio::select! {
                            () = run => {}
                            () = revoked => {
                                // Dropping the connection closes its socket; the broker
                                // task learns of it here (publishing its will).
                                shared.count_malformed("certificate_revoked");
                                tracing::info!(%peer, "closing an MQTT connection: its certificate was revoked");
                                let _ = shared.events.send(Event::Closed { conn }).await;
                            }
                        }
                    }
                }
                drop(guard);
            });
        }
    }
}

/// A verified client certificate, as the node's PKI reads it.
pub struct PeerCert {
    /// The subject a device is bound to (`cert_subject` of the device registry).
    pub subject: String,
    /// Resolves when the certificate is revoked: the connection is then closed.
    pub revoked: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

/// Maps a verified client certificate (DER) to its [`PeerCert`].
pub type CertIdentity = Arc<dyn Fn(&[u8]) -> Option<PeerCert> + Send + Sync>;

/// Counts a connection while it lives.
struct ConnGuard(Arc<Stats>);

impl ConnGuard {
    fn new(stats: &Arc<Stats>) -> ConnGuard {
        stats.connections.fetch_add(1, Ordering::Relaxed);
        ConnGuard(stats.clone())
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Events taken per wake-up of the broker task.
const EVENT_BATCH: usize = 256;

/// `/` in a uid would add topic levels, and `+`/`#` are wildcards: they are
/// percent-encoded in entity topics (with `%` itself).
pub fn entity_topic(uid: &str) -> String {
    let mut t = String::with_capacity(20 + uid.len());
    t.push_str("rampart/v1/entities/");
    for c in uid.chars() {
        match c {
            '/' => t.push_str("%2F"),
            '+' => t.push_str("%2B"),
            '#' => t.push_str("%23"),
            '%' => t.push_str("%25"),
            '\0' => t.push_str("%00"),
            c => t.push(c),
        }
    }
    t
}

/// One bridge as the broker task sees it.
struct Bridge {
    /// Local filters whose messages it forwards out.
    filters: Vec<String>,
    /// The queue of messages it forwards out.
    tx: mpsc::Sender<Publish>,
    /// What the remote may receive (`None`: unrestricted).
    clearance: Option<rampart_mqtt_broker::Clearance>,
}

struct Actor {
    broker: Broker,
    conns: HashMap<ConnId, Arc<Outbox>>,
    tls: HashMap<ConnId, String>,
    conn_device: HashMap<ConnId, Arc<str>>,
    /// Connections that have sent nothing yet, since when.
    awaiting_connect: HashMap<ConnId, Instant>,
    auth: Arc<Mutex<AuthState>>,
    devices: Arc<Devices>,
    jobs: mpsc::Sender<Vec<Job>>,
    shared: Arc<Shared>,
    touched: Vec<ConnId>,
    /// Connections over their soft outbound limit in this round: wait for them to drain.
    full: Vec<ConnId>,
    pending_jobs: Vec<Job>,
    wake_devices: Vec<Arc<str>>,
    dirty: bool,
    snapshot_path: Option<PathBuf>,
    last_metrics: rampart_mqtt_broker::Metrics,
    /// The node's label policy (markings of entity updates and alerts).
    labels: Arc<rampart_labels::Policy>,
    /// The bridges: what each forwards out, and to whom.
    bridges: Vec<Bridge>,
    /// Since when publishers are paused for a congested subscriber.
    paused_since: Option<Instant>,
    /// Publish-bearing events held while a subscriber is congested, in arrival order.
    deferred: std::collections::VecDeque<Event>,
    deferred_conns: std::collections::HashSet<ConnId>,
    /// Congestion outlasted `slow_consumer_ms`: publishers run again (the session queue's
    /// limit applies, drops counted) until the congestion clears.
    gave_up: bool,
}

impl Actor {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        mut persisted: mpsc::UnboundedReceiver<crate::ingest::Outcomes>,
    ) {
        let mut events = Vec::with_capacity(EVENT_BATCH);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let snap_every = Duration::from_millis(self.shared.cfg.snapshot_interval_ms.max(10));
        let mut snap_tick = tokio::time::interval(snap_every);
        snap_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut events, EVENT_BATCH) => {
                    if n == 0 {
                        self.snapshot().await;
                        return;
                    }
                    let now = Instant::now();
                    for ev in events.drain(..) {
                        if let Event::Shutdown(done) = ev {
                            self.snapshot().await;
                            let _ = done.send(());
                            continue;
                        }
                        self.handle_or_defer(ev, now);
                    }
                    self.resume_deferred(now);
                    self.flush().await;
                }
                Some(outcomes) = persisted.recv() => {
                    let now = Instant::now();
                    self.handle(Event::Persisted(outcomes), now);
                    self.resume_deferred(now);
                    self.flush().await;
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let actions = self.broker.tick(now);
                    self.dispatch(actions, now);
                    self.devices.expire(rampart_model::Timestamp::now());
                    self.close_silent(now);
                    self.update_pause(now);
                    self.sync_metrics();
                    self.resume_deferred(now);
                    self.flush().await;
                }
                _ = snap_tick.tick() => {
                    if self.dirty {
                        self.snapshot().await;
                    }
                }
            }
        }
    }

    /// Handles `ev`, unless it carries publishes while a subscriber is congested: then it
    /// waits in `deferred` (with every later event of its connection, to keep order) until
    /// the congestion clears. Acknowledgements and everything else go on, which is what
    /// clears it. The deferral is bounded: past `4 × event_queue` events it stops.
    fn handle_or_defer(&mut self, ev: Event, now: Instant) {
        if let Event::Packets { conn, packets } = &ev {
            let from_deferred = self.deferred_conns.contains(conn);
            let holding = self.broker.congested() && !self.gave_up;
            let has_publish = || {
                packets.iter().any(|p| {
                    matches!(
                        p,
                        Packet::V3(v3::Packet::Publish(_)) | Packet::V5(v5::Packet::Publish(_))
                    )
                })
            };
            let room = self.deferred.len() < self.shared.cfg.event_queue.saturating_mul(4);
            if room && (from_deferred || (holding && has_publish())) {
                self.deferred_conns.insert(*conn);
                self.deferred.push_back(ev);
                return;
            }
        }
        self.handle(ev, now);
    }

    /// Handles deferred events once the congestion that held them clears.
    fn resume_deferred(&mut self, now: Instant) {
        while !self.deferred.is_empty() && (!self.broker.congested() || self.gave_up) {
            if let Some(ev) = self.deferred.pop_front() {
                self.handle(ev, now);
            }
        }
        if self.deferred.is_empty() {
            self.deferred_conns.clear();
        }
    }

    fn handle(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Open {
                conn,
                outbox,
                tls_identity,
            } => {
                self.conns.insert(conn, outbox);
                self.awaiting_connect.insert(conn, now);
                if let Some(t) = tls_identity {
                    self.tls.insert(conn, t);
                }
            }
            Event::Packets { conn, packets } => {
                self.dirty = true;
                self.awaiting_connect.remove(&conn);
                for p in packets {
                    let kind = match &p {
                        Packet::V3(v3::Packet::Connect(_)) | Packet::V5(v5::Packet::Connect(_)) => {
                            1
                        }
                        Packet::V3(v3::Packet::Subscribe { .. })
                        | Packet::V5(v5::Packet::Subscribe(_)) => 2,
                        _ => 0,
                    };
                    if kind == 1 {
                        self.auth.lock().pending_tls = self.tls.get(&conn).cloned();
                    }
                    let actions = self.broker.packet(conn, p, now);
                    if kind == 1 {
                        let mut st = self.auth.lock();
                        st.pending_tls = None;
                        if let Some(d) = st.last_device.take() {
                            self.conn_device.insert(conn, d);
                        }
                    }
                    self.dispatch(actions, now);
                    if kind != 0
                        && let Some(d) = self.conn_device.get(&conn)
                    {
                        self.wake_devices.push(d.clone());
                    }
                }
            }
            Event::Closed { conn } => {
                self.dirty = true;
                self.forget(conn);
                let actions = self.broker.disconnected(conn, now);
                self.dispatch(actions, now);
            }
            Event::Persisted(outcomes) => {
                self.dirty = true;
                for (token, o) in outcomes {
                    let actions = match o {
                        Outcome::Stored => self.broker.persisted(token, now),
                        Outcome::Refused(reason) => self.broker.refused(token, reason, now),
                        Outcome::Failed => self.broker.persist_failed(token, now),
                    };
                    self.dispatch(actions, now);
                }
            }
            Event::Inject(p) => {
                let actions = self.broker.inject(p, true, now);
                self.dispatch(actions, now);
            }
            Event::InjectLabelled(p, label) => {
                let m = crate::labels::marking(&self.labels, &label);
                let actions = self.broker.inject_marked(p, true, Some(m), now);
                self.dispatch(actions, now);
            }
            Event::Bridged(p) => {
                let actions = self.broker.inject(p, false, now);
                self.dispatch(actions, now);
            }
            Event::Entities(delta) => self.entities(&delta, now),
            Event::Wake(device) => self.wake_devices.push(Arc::from(device.as_str())),
            Event::Shutdown(_) => {}
        }
    }

    /// Closes connections that sent nothing within `connect_timeout_ms` of opening (kept
    /// here, not in each connection task, so an idle connection carries no timer).
    fn close_silent(&mut self, now: Instant) {
        let limit = Duration::from_millis(self.shared.cfg.connect_timeout_ms);
        let late: Vec<ConnId> = self
            .awaiting_connect
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= limit)
            .map(|(c, _)| *c)
            .collect();
        for conn in late {
            self.shared.count_malformed("connect_timeout");
            if let Some(o) = self.conns.get(&conn) {
                o.close();
            }
            self.forget(conn);
        }
    }

    fn forget(&mut self, conn: ConnId) {
        self.awaiting_connect.remove(&conn);
        self.conns.remove(&conn);
        self.tls.remove(&conn);
        self.conn_device.remove(&conn);
    }

    fn dispatch(&mut self, actions: Vec<Action>, now: Instant) {
        let soft = self.shared.cfg.max_outbound_bytes;
        let hard = soft.saturating_mul(4);
        let mut overflowed = Vec::new();
        for a in actions {
            match a {
                Action::Send { conn, packet } => {
                    let Some(o) = self.conns.get(&conn) else {
                        continue;
                    };
                    match o.push(packet, soft, hard) {
                        Pushed::Queued => self.touched.push(conn),
                        Pushed::Full => {
                            self.touched.push(conn);
                            self.full.push(conn);
                        }
                        Pushed::Dropped => {
                            self.shared.counters.dropped_qos0.inc();
                        }
                        Pushed::Overflow => overflowed.push(conn),
                        Pushed::Closed => {}
                    }
                }
                Action::Close { conn, .. } => {
                    if let Some(o) = self.conns.get(&conn) {
                        o.close();
                    }
                    self.forget(conn);
                }
                Action::Persist {
                    token,
                    client_id,
                    publish,
                } => {
                    let identity = client_id.and_then(|c| identity_of(&self.auth, &c));
                    self.pending_jobs.push(Job {
                        token,
                        identity,
                        publish,
                    });
                }
                Action::Observed { publish, marking } => {
                    for b in &self.bridges {
                        if !b
                            .filters
                            .iter()
                            .any(|f| rampart_mqtt_broker::topic::matches(f, &publish.topic))
                        {
                            continue;
                        }
                        if !rampart_mqtt_broker::marking::permits(
                            b.clearance.as_ref(),
                            marking.as_deref(),
                        ) {
                            self.shared.counters.bridge_label_withheld.inc();
                            continue;
                        }
                        if b.tx.try_send(publish.clone()).is_err() {
                            self.shared.counters.bridge_dropped.inc();
                        }
                    }
                }
            }
        }
        for conn in overflowed {
            self.shared.counters.slow_closed.inc();
            tracing::warn!(
                conn = conn.0,
                "closing a slow MQTT subscriber: its outbound queue passed 4 × max_outbound_bytes"
            );
            if let Some(o) = self.conns.get(&conn) {
                o.close();
            }
            self.forget(conn);
            let actions = self.broker.disconnected(conn, now);
            self.dispatch(actions, now);
        }
    }

    async fn flush(&mut self) {
        let now = Instant::now();
        let mut devices = std::mem::take(&mut self.wake_devices);
        devices.sort();
        devices.dedup();
        for d in devices {
            self.deliver_commands(&d, now);
        }
        self.touched.sort_unstable();
        self.touched.dedup();
        for conn in self.touched.drain(..) {
            if let Some(o) = self.conns.get(&conn) {
                o.wake();
            }
        }
        if !self.pending_jobs.is_empty() {
            let jobs = std::mem::take(&mut self.pending_jobs);
            // Waiting here is the backpressure when the engine cannot keep up.
            let _ = self.jobs.send(jobs).await;
        }
        self.wait_for_full().await;
        self.update_pause(Instant::now());
    }

    /// Pauses reading from publishers while a connected subscriber's session queue is
    /// congested, for at most `slow_consumer_ms` at a time.
    fn update_pause(&mut self, now: Instant) {
        let congested = self.broker.congested();
        if !congested {
            self.gave_up = false;
        }
        let patience = Duration::from_millis(self.shared.cfg.slow_consumer_ms);
        let want = congested && !self.gave_up;
        match (want, self.paused_since) {
            (true, None) => {
                self.paused_since = Some(now);
                self.shared.counters.paused.inc();
                self.shared.pause.send_replace(true);
            }
            (true, Some(since)) if now.duration_since(since) > patience => {
                self.gave_up = true;
                self.paused_since = None;
                self.shared.counters.gave_up.inc();
                tracing::warn!(
                    "an MQTT subscriber stayed congested for slow_consumer_ms: publishers resume, its queue limit applies"
                );
                self.shared.pause.send_replace(false);
            }
            (false, Some(_)) => {
                self.paused_since = None;
                self.shared.pause.send_replace(false);
            }
            _ => {}
        }
    }

    /// Backpressure: while a connection's outbound queue is over its soft limit, take no
    /// more input (publishers wait in their sockets) until it drains to half, for at most
    /// `slow_consumer_ms`; a connection that cannot is marked slow and no longer waited for.
    async fn wait_for_full(&mut self) {
        if self.full.is_empty() {
            return;
        }
        let mut full = std::mem::take(&mut self.full);
        full.sort_unstable();
        full.dedup();
        let low = self.shared.cfg.max_outbound_bytes / 2;
        let patience = Duration::from_millis(self.shared.cfg.slow_consumer_ms);
        for conn in full {
            let Some(o) = self.conns.get(&conn).cloned() else {
                continue;
            };
            if o.is_slow() {
                continue;
            }
            if tokio::time::timeout(patience, o.wait_drained(low))
                .await
                .is_err()
            {
                o.set_slow(true);
                self.shared.counters.slow_marked.inc();
                tracing::debug!(
                    conn = conn.0,
                    "MQTT subscriber marked slow: QoS 0 beyond its queue is dropped"
                );
            }
        }
    }

    /// Publishes queued commands of `device` if it subscribes to its command topic (its
    /// session may be offline: the broker then queues them for its return).
    fn deliver_commands(&mut self, device: &str, now: Instant) {
        let topic = format!("rampart/v1/{device}/cmd");
        if !self.broker.has_subscribers(&topic) {
            return;
        }
        let cmds = self.devices.to_deliver(device, false);
        if cmds.is_empty() {
            return;
        }
        let mut ids = Vec::with_capacity(cmds.len());
        for c in cmds {
            let p = Publish {
                dup: false,
                retain: false,
                qos: QoS::AtLeastOnce,
                topic: topic.as_str().into(),
                packet_id: None,
                payload: c.payload().into(),
                properties: None,
            };
            let actions = self.broker.inject(p, true, now);
            self.dispatch(actions, now);
            self.shared.counters.commands_sent.inc();
            ids.push(c.id);
        }
        if let Err(e) = self.devices.mark_sent(&ids) {
            tracing::warn!(error = %e, "recording sent commands failed");
        }
    }

    fn entities(&mut self, delta: &Delta, now: Instant) {
        let retain = self.shared.cfg.entity_retain;
        let updates = match delta {
            Delta::Updated(updates) => updates,
            Delta::Removed(uids) if retain => {
                // Cleared without a message: an empty publish would tell every subscriber
                // of the topic, cleared or not, that the uid existed.
                for uid in uids {
                    self.broker.clear_retained(&entity_topic(uid));
                }
                return;
            }
            _ => return,
        };
        for u in updates {
            let topic = entity_topic(&u.entity.uid);
            let bridged = self.bridges.iter().any(|b| {
                b.filters
                    .iter()
                    .any(|f| rampart_mqtt_broker::topic::matches(f, &topic))
            });
            if !retain && !bridged && !self.broker.has_subscribers(&topic) {
                continue;
            }
            let payload = serde_json::to_vec(&rampart_codec_json::EntityFeature(&u.entity))
                .unwrap_or_default();
            let p = Publish {
                dup: false,
                retain,
                qos: QoS::AtMostOnce,
                topic: topic.into(),
                packet_id: None,
                payload: payload.into(),
                properties: None,
            };
            let m = crate::labels::marking(&self.labels, &u.entity.label);
            let actions = self.broker.inject_marked(p, true, Some(m), now);
            self.dispatch(actions, now);
            self.shared.counters.published_entities.inc();
        }
    }

    fn sync_metrics(&mut self) {
        let m = self.broker.metrics().clone();
        let old = &self.last_metrics;
        let pairs = [
            ("queue_full_drops", m.queue_full_drops, old.queue_full_drops),
            (
                "offline_qos0_drops",
                m.offline_qos0_drops,
                old.offline_qos0_drops,
            ),
            ("expired_drops", m.expired_drops, old.expired_drops),
            ("oversize_drops", m.oversize_drops, old.oversize_drops),
            (
                "session_end_drops",
                m.session_end_drops,
                old.session_end_drops,
            ),
            ("retained_refused", m.retained_refused, old.retained_refused),
            ("publish_denied", m.publish_denied, old.publish_denied),
            ("subscribe_denied", m.subscribe_denied, old.subscribe_denied),
            ("connects_refused", m.connects_refused, old.connects_refused),
            ("protocol_errors", m.protocol_errors, old.protocol_errors),
            (
                "keepalive_timeouts",
                m.keepalive_timeouts,
                old.keepalive_timeouts,
            ),
            ("persist_failures", m.persist_failures, old.persist_failures),
            ("persist_refused", m.persist_refused, old.persist_refused),
            ("publishes_in", m.publishes_in, old.publishes_in),
            ("publishes_out", m.publishes_out, old.publishes_out),
            ("label_withheld", m.label_withheld, old.label_withheld),
        ];
        for (name, new, before) in pairs {
            if new > before {
                if name == "queue_full_drops" {
                    tracing::warn!(
                        dropped = new - before,
                        "MQTT QoS 1/2 deliveries dropped: a session queue reached max_queued_per_session"
                    );
                }
                self.shared
                    .counters
                    .broker
                    .get_or_create(&Counters::label(name))
                    .inc_by(new - before);
            }
        }
        self.last_metrics = m;
    }

    async fn snapshot(&mut self) {
        self.dirty = false;
        let Some(path) = self.snapshot_path.clone() else {
            return;
        };
        let mut snap = self.broker.snapshot(Instant::now());
        snap.marking_scale = Some(crate::labels::scale(&self.labels));
        let res = tokio::task::spawn_blocking(move || write_atomic(&path, &snap)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "writing MQTT sessions failed"),
            Err(e) => tracing::warn!(error = %e, "writing MQTT sessions failed"),
        }
    }
}

fn write_atomic(path: &std::path::Path, snap: &Snapshot) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(snap).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::entity_topic;

    #[test]
    fn entity_topics_escape_levels_and_wildcards() {
        assert_eq!(
            entity_topic("a/b+c#d%"),
            "rampart/v1/entities/a%2Fb%2Bc%23d%25"
        );
        assert_eq!(entity_topic("unit-1"), "rampart/v1/entities/unit-1");
    }
}
