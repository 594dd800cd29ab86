//! The broker state machine: connections, sessions, routing, QoS flows, durability holds.
//!
//! [`Broker`] is sans-IO in the style of `quinn-proto`: the embedder feeds it decoded
//! packets, connection losses, the clock and durability confirmations, and carries out the
//! [`Action`]s it returns, in order. It never blocks, never reads a clock, and never
//! allocates without a bound (see [`crate::Limits`]).
//!
//! Durability: a publish whose topic matches one of [`crate::Config::durable`] is not
//! routed nor acknowledged when it arrives. The broker emits [`Action::Persist`] and holds
//! both until [`Broker::persisted`] (after the engine's group commit), or answers with an
//! error on [`Broker::persist_failed`]. So a PUBACK/PUBREC for a durable topic always means
//! "durable", and no subscriber sees a message that could still be lost.

use std::collections::{HashMap, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use rmqtt_codec::types::{Publish, QoS};
use rmqtt_codec::{v3, v5};

use crate::config::{AllowAll, Authorizer, Config, Credentials, Refusal};
use crate::marking::{Clearance, Marking, permits};
use crate::packet::{
    ConnId, Packet, Version, disconnect_v5, puback, pubcomp, publish_size_bound, pubrec, pubrel,
    qos_max, qos_min,
};
use crate::subs::{Match, SessionId, SubOptions, Trie};
use crate::topic;

mod snapshot;
pub use snapshot::{
    PendingSnapshot, RestoreStats, SNAPSHOT_VERSION, SessionSnapshot, Snapshot,
    SubscriptionSnapshot,
};

/// A durability request, answered by [`Broker::persisted`] or [`Broker::persist_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersistToken(pub u64);

/// Why the broker closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// CONNECT was refused (the CONNACK saying why precedes this).
    ConnectRefused,
    /// The client broke the protocol.
    ProtocolError,
    /// No packet within 1.5 × keepalive.
    KeepaliveTimeout,
    /// Another connection took the session over (same client identifier).
    SessionTakenOver,
    /// The client exceeded the Receive Maximum (too many unacknowledged QoS 1/2 publishes).
    ReceiveMaximumExceeded,
    /// MQTT 5 topic alias out of range or unknown.
    TopicAliasInvalid,
    /// A PUBLISH carried an invalid topic name.
    TopicNameInvalid,
    /// A durable publish could not be persisted and 3.1.1 has no negative acknowledgement.
    PersistFailed,
}

/// What the embedder must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Encode and write `packet` on connection `conn`.
    Send {
        /// Target connection.
        conn: ConnId,
        /// The packet, in the connection's protocol version.
        packet: Packet,
    },
    /// Flush what was sent and close the connection. The broker has already forgotten
    /// it; a later [`Broker::disconnected`] for it is a no-op.
    Close {
        /// Connection to close.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// Make `publish` durable (append it to history, group commit), then call
    /// [`Broker::persisted`] with `token`, or [`Broker::persist_failed`].
    Persist {
        /// The token to answer with.
        token: PersistToken,
        /// The publishing client (`None` for a will published by the broker).
        client_id: Option<Arc<str>>,
        /// The message, topic alias resolved.
        publish: Publish,
    },
    /// A message was routed whose topic matches one of [`Config::observe`].
    Observed {
        /// The message as routed.
        publish: Publish,
        /// Its security marking, if it was injected with one: forward it only to peers
        /// cleared for it.
        marking: Option<Arc<Marking>>,
    },
}

/// Counters of everything the broker refused, dropped or expired. Never reset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// CONNECTs accepted.
    pub connects: u64,
    /// CONNECTs refused (bad credentials, identifier, version, limits).
    pub connects_refused: u64,
    /// CONNECTs refused because `max_sessions` was reached.
    pub sessions_limit_refused: u64,
    /// Sessions taken over by a new connection with the same client identifier.
    pub takeovers: u64,
    /// Connections closed for a protocol error.
    pub protocol_errors: u64,
    /// Connections closed for keepalive timeout.
    pub keepalive_timeouts: u64,
    /// PUBLISH packets received.
    pub publishes_in: u64,
    /// PUBLISH packets sent (first sends and redeliveries).
    pub publishes_out: u64,
    /// Publishes refused by the authorizer.
    pub publish_denied: u64,
    /// Publishes refused for an invalid UTF-8 payload declared as UTF-8.
    pub payload_format_invalid: u64,
    /// Subscriptions refused by the authorizer.
    pub subscribe_denied: u64,
    /// Subscriptions refused because `max_subscriptions_per_session` was reached.
    pub subscriptions_limit_refused: u64,
    /// Deliveries dropped because a session queue was at `max_queued_per_session`.
    pub queue_full_drops: u64,
    /// QoS 0 deliveries dropped because the session was offline (not queued, as in
    /// Mosquitto's default).
    pub offline_qos0_drops: u64,
    /// Deliveries dropped because their message expiry interval had passed.
    pub expired_drops: u64,
    /// Deliveries dropped because they exceed the client's Maximum Packet Size.
    pub oversize_drops: u64,
    /// Queued or inflight deliveries dropped when their session ended.
    pub session_end_drops: u64,
    /// Retained messages not stored because `max_retained` was reached.
    pub retained_refused: u64,
    /// Wills published.
    pub wills_published: u64,
    /// Sessions expired or discarded.
    pub sessions_ended: u64,
    /// Durability requests emitted.
    pub persists: u64,
    /// Durability failures reported by the embedder.
    pub persist_failures: u64,
    /// Durable publishes the embedder refused (bad payload, policy).
    pub persist_refused: u64,
    /// Acknowledgements for unknown packet identifiers, ignored.
    pub unknown_acks: u64,
    /// Deliveries withheld from a subscriber whose clearance does not permit the message's
    /// marking (live, retained, queued or inflight after a reconnect).
    pub label_withheld: u64,
}

/// A message as routed: resolved topic, no packet id, no alias.
#[derive(Debug)]
struct Message {
    publish: Publish,
    /// False for messages that must not be reported as [`Action::Observed`].
    observe: bool,
    /// The publishing session, for MQTT 5 No Local.
    origin: Option<SessionId>,
    expires_at: Option<Instant>,
    /// Who may receive it; `None` (all client traffic) for everyone.
    marking: Option<Arc<Marking>>,
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
struct Delivery {
    msg: Arc<Message>,
    qos: QoS,
    retain: bool,
    sub_ids: Vec<NonZeroU32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    /// QoS 1 sent, waiting for PUBACK.
    Ack,
    /// QoS 2 sent, waiting for PUBREC.
    Rec,
    /// PUBREL sent, waiting for PUBCOMP.
    Comp,
}

#[derive(Debug)]
struct OutFlight {
    packet_id: NonZeroU16,
    delivery: Delivery,
    state: OutState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// Durable publish waiting for [`Broker::persisted`]; no ack sent yet.
    Persisting(QoS),
    /// QoS 2 routed and PUBREC sent, waiting for PUBREL.
    AwaitRel,
}

#[derive(Debug)]
struct Will {
    msg: Arc<Message>,
    delay: Duration,
}

#[derive(Debug)]
struct Session {
    client_id: Arc<str>,
    conn: Option<ConnId>,
    version: Version,
    /// Raw filter (with any `$share/` prefix) → options.
    subs: SubList,
    /// Outbound QoS 1/2 in send order; at most the inflight window.
    inflight: VecDeque<OutFlight>,
    /// Deliveries waiting for the client or for inflight room.
    queue: VecDeque<Delivery>,
    /// Inbound QoS 1/2 not yet fully acknowledged, by packet id.
    inbound: HashMap<NonZeroU16, Inbound>,
    next_packet_id: u16,
    /// Session Expiry Interval; 0 ends the session with its connection.
    expiry: Duration,
    /// When an offline session ends.
    expires_at: Option<Instant>,
    will: Option<Will>,
    /// The client's Receive Maximum (65,535 for 3.1.1).
    client_receive_max: u16,
    /// The client's Maximum Packet Size.
    client_max_packet: Option<u32>,
    /// Inbound topic aliases of the current connection.
    aliases: HashMap<u16, ByteString>,
    /// What it may receive (from [`Authorizer::clearance`] at CONNECT); `None`: unrestricted.
    clearance: Option<Arc<Clearance>>,
}

impl Session {
    /// Whether this session may receive `msg`.
    fn may_receive(&self, msg: &Message) -> bool {
        s_may_receive(&self.clearance, msg)
    }

    fn window(&self, limit: u16) -> usize {
        usize::from(self.client_receive_max.min(limit))
    }

    /// Allocates an outbound packet identifier not in use. The inflight window is below
    /// 65,535, so the loop ends.
    fn alloc_packet_id(&mut self) -> NonZeroU16 {
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            if let Some(id) = NonZeroU16::new(self.next_packet_id)
                && !self.inflight.iter().any(|f| f.packet_id == id)
            {
                return id;
            }
        }
    }
}

#[derive(Debug)]
struct Conn {
    session: SessionId,
    version: Version,
    /// 1.5 × keepalive, or `None` for no keepalive.
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Held {
    session: Option<SessionId>,
    packet_id: Option<NonZeroU16>,
    msg: Arc<Message>,
}

/// Normalized CONNECT of either version.
struct ConnectInfo {
    version: Version,
    client_id: ByteString,
    clean: bool,
    keep_alive: u16,
    username: Option<ByteString>,
    password: Option<bytes::Bytes>,
    /// Requested expiry, already capped.
    expiry: Duration,
    receive_max: u16,
    max_packet: Option<u32>,
    will: Option<(Publish, Duration)>,
    auth_method: bool,
}

/// The sans-IO MQTT broker. See the module documentation.
pub struct Broker {
    config: Config,
    authorizer: Box<dyn Authorizer>,
    conns: HashMap<ConnId, Conn>,
    /// Boxed: the map doubles as it grows, and a session is a few hundred bytes.
    sessions: HashMap<SessionId, Box<Session>>,
    by_client: HashMap<Arc<str>, SessionId>,
    trie: Trie,
    retained: HashMap<ByteString, Arc<Message>>,
    held: HashMap<PersistToken, Held>,
    /// Wills waiting for their delay, by owning session.
    pending_wills: HashMap<SessionId, (Instant, Arc<Message>)>,
    next_session: SessionId,
    /// Connected sessions whose queue is above the high watermark: the embedder should stop
    /// reading publishers until it clears (see [`Broker::congested`]).
    congested: std::collections::HashSet<SessionId>,
    next_token: u64,
    next_assigned_id: u64,
    metrics: Metrics,
    out: Vec<Action>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connections", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .field("subscriptions", &self.trie.len())
            .field("retained", &self.retained.len())
            .field("held", &self.held.len())
            .finish()
    }
}

impl Broker {
    /// A broker allowing every client.
    pub fn new(config: Config) -> Broker {
        Broker::with_authorizer(config, Box::new(AllowAll))
    }

    /// A broker asking `authorizer` about connections, publishes and subscriptions.
    pub fn with_authorizer(config: Config, authorizer: Box<dyn Authorizer>) -> Broker {
        Broker {
            config,
            authorizer,
            conns: HashMap::new(),
            sessions: HashMap::new(),
            by_client: HashMap::new(),
            trie: Trie::default(),
            retained: HashMap::new(),
            held: HashMap::new(),
            pending_wills: HashMap::new(),
            next_session: 1,
            congested: std::collections::HashSet::new(),
            next_token: 1,
            next_assigned_id: 1,
            metrics: Metrics::default(),
            out: Vec::new(),
        }
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Connected clients.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Sessions, connected or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Subscriptions across all sessions.
    pub fn subscription_count(&self) -> usize {
        self.trie.len()
    }

    /// Retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Durable publishes waiting for [`Broker::persisted`].
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Messages queued for a client's session, if it exists.
    pub fn queued(&self, client_id: &str) -> Option<usize> {
        let id = self.by_client.get(client_id)?;
        self.sessions.get(id).map(|s| s.queue.len())
    }

    /// Handles one decoded packet from `conn`. The first packet of a connection must be
    /// CONNECT; anything else closes it.
    pub fn packet(&mut self, conn: ConnId, packet: Packet, now: Instant) -> Vec<Action> {
        let Some(c) = self.conns.get_mut(&conn) else {
            match packet {
                Packet::V3(v3::Packet::Connect(c)) => self.connect_v3(conn, *c, now),
                Packet::V5(v5::Packet::Connect(c)) => self.connect_v5(conn, *c, now),
                _ => {
                    self.metrics.protocol_errors += 1;
                    self.close(conn, CloseReason::ProtocolError);
                }
            }
            return self.take();
        };
        if let Some(t) = c.timeout {
            c.deadline = Some(now + t);
        }
        let (sid, version) = (c.session, c.version);
        match (version, packet) {
            (Version::V3, Packet::V3(p)) => self.packet_v3(conn, sid, p, now),
            (Version::V5, Packet::V5(p)) => self.packet_v5(conn, sid, p, now),
            _ => self.protocol_error(conn, now),
        }
        self.take()
    }

    /// The connection was lost (socket closed or errored) without a DISCONNECT. Publishes
    /// the will, and ends the session if its expiry is zero.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) -> Vec<Action> {
        self.end_connection(conn, true, now);
        self.take()
    }

    /// Advances timers: keepalive deadlines, delayed wills, session expiry. Call it about
    /// once a second.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for conn in late {
            self.metrics.keepalive_timeouts += 1;
            self.server_disconnect(
                conn,
                v5::DisconnectReasonCode::KeepAliveTimeout,
                CloseReason::KeepaliveTimeout,
                now,
            );
        }
        let due: Vec<SessionId> = self
            .pending_wills
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(&s, _)| s)
            .collect();
        for sid in due {
            if let Some((_, msg)) = self.pending_wills.remove(&sid) {
                self.publish_will(msg, now);
            }
        }
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn.is_none() && s.expires_at.is_some_and(|t| t <= now))
            .map(|(&id, _)| id)
            .collect();
        for sid in expired {
            self.end_session(sid, now);
        }
        self.take()
    }

    /// The durable publish behind `token` is committed: route it and send its PUBACK or
    /// PUBREC if its client is still connected (a reconnected client resending it is
    /// handled as a duplicate).
    pub fn persisted(&mut self, token: PersistToken, now: Instant) -> Vec<Action> {
        let Some(held) = self.held.remove(&token) else {
            self.metrics.unknown_acks += 1;
            return self.take();
        };
        self.route(held.msg, now);
        if let (Some(sid), Some(pid)) = (held.session, held.packet_id)
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            let ok = v5::PublishAckReason::Success;
            match s.inbound.get(&pid) {
                Some(Inbound::Persisting(QoS::ExactlyOnce)) => {
                    s.inbound.insert(pid, Inbound::AwaitRel);
                    if let Some(conn) = s.conn {
                        let p = pubrec(s.version, pid, ok);
                        self.out.push(Action::Send { conn, packet: p });
                    }
                }
                Some(Inbound::Persisting(_)) => {
                    s.inbound.remove(&pid);
                    if let Some(conn) = s.conn {
                        let p = puback(s.version, pid, ok);
                        self.out.push(Action::Send { conn, packet: p });
                    }
                }
                _ => {}
            }
        }
        self.take()
    }

    /// The durable publish behind `token` could not be persisted. MQTT 5 clients get a
    /// PUBACK/PUBREC with *Implementation specific error*; MQTT 3.1.1 clients, which have
    /// no negative acknowledgement, are disconnected so that they resend.
    pub fn persist_failed(&mut self, token: PersistToken, now: Instant) -> Vec<Action> {
        let Some(held) = self.held.remove(&token) else {
            self.metrics.unknown_acks += 1;
            return self.take();
        };
        self.metrics.persist_failures += 1;
        if let (Some(sid), Some(pid)) = (held.session, held.packet_id)
            && let Some(s) = self.sessions.get_mut(&sid)
            && let Some(Inbound::Persisting(qos)) = s.inbound.remove(&pid)
            && let Some(conn) = s.conn
        {
            let bad = v5::PublishAckReason::ImplementationSpecificError;
            match s.version {
                Version::V5 if qos == QoS::ExactlyOnce => {
                    let p = pubrec(Version::V5, pid, bad);
                    self.out.push(Action::Send { conn, packet: p });
                }
                Version::V5 => {
                    let p = puback(Version::V5, pid, bad);
                    self.out.push(Action::Send { conn, packet: p });
                }
                Version::V3 => {
                    self.close(conn, CloseReason::PersistFailed);
                    self.end_connection(conn, true, now);
                }
            }
        }
        self.take()
    }

    /// The durable publish behind `token` was refused by the embedder (bad payload, policy):
    /// it is not routed. MQTT 5 clients get a PUBACK/PUBREC with `reason`; MQTT 3.1.1 clients,
    /// which have no negative acknowledgement, get a plain acknowledgement so that they do
    /// not resend a message that can never be taken (the refusal is counted and logged by the
    /// embedder, as a denied publish is).
    pub fn refused(
        &mut self,
        token: PersistToken,
        reason: v5::PublishAckReason,
        now: Instant,
    ) -> Vec<Action> {
        let _ = now;
        let Some(held) = self.held.remove(&token) else {
            self.metrics.unknown_acks += 1;
            return self.take();
        };
        self.metrics.persist_refused += 1;
        if let (Some(sid), Some(pid)) = (held.session, held.packet_id)
            && let Some(s) = self.sessions.get_mut(&sid)
            && let Some(Inbound::Persisting(qos)) = s.inbound.remove(&pid)
            && let Some(conn) = s.conn
        {
            let reason = match s.version {
                Version::V5 => reason,
                Version::V3 => v5::PublishAckReason::Success,
            };
            let packet = if qos == QoS::ExactlyOnce {
                // PUBREL for a refused QoS 2 publish then finds no state and gets PUBCOMP
                // *Packet Identifier not found* (3.1.1: plain PUBCOMP), which ends the flow.
                pubrec(s.version, pid, reason)
            } else {
                puback(s.version, pid, reason)
            };
            self.out.push(Action::Send { conn, packet });
        }
        self.take()
    }

    /// Publishes a message from the server itself (device commands, entity updates, bridged
    /// messages): routed like a client's publish, retained if flagged, and held for
    /// durability if its topic is durable. With `observe = false` it is never reported as
    /// [`Action::Observed`] (a message that came in over a bridge must not go back out).
    pub fn inject(&mut self, publish: Publish, observe: bool, now: Instant) -> Vec<Action> {
        self.inject_marked(publish, observe, None, now)
    }

    /// [`Broker::inject`] with a security marking: the message (live, retained, queued) only
    /// reaches sessions whose clearance permits `marking` (see [`crate::marking`]).
    pub fn inject_marked(
        &mut self,
        mut publish: Publish,
        observe: bool,
        marking: Option<Marking>,
        now: Instant,
    ) -> Vec<Action> {
        publish.dup = false;
        publish.packet_id = None;
        if topic::validate_name(&publish.topic).is_ok() {
            let msg = Arc::new(Message {
                observe,
                expires_at: expiry_of(&publish, now),
                publish,
                origin: None,
                marking: marking.map(Arc::new),
            });
            self.ingest(None, None, msg, now);
        }
        self.take()
    }

    /// Forgets the retained message of `topic`, if any, without publishing anything (unlike
    /// an empty retained publish, which reaches the topic's subscribers). Returns whether
    /// there was one.
    pub fn clear_retained(&mut self, topic: &str) -> bool {
        self.retained.remove(topic).is_some()
    }

    /// True if some session subscribes to `topic` (a cheap test before building a message
    /// nobody would receive).
    pub fn has_subscribers(&mut self, topic: &str) -> bool {
        let mut out = Vec::new();
        self.trie.matches(topic, &|_| true, &|_| true, &mut out);
        !out.is_empty()
    }

    /// True while a connected subscriber's queue is above three quarters of
    /// `max_queued_per_session` (until it drains to a quarter). The embedder should then stop
    /// reading from publishing connections, so that QoS 1/2 messages wait in publishers'
    /// sockets instead of being dropped at the queue limit. Offline sessions never count.
    pub fn congested(&self) -> bool {
        !self.congested.is_empty()
    }

    /// Checks the internal invariants; for tests and fuzzing. Returns the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        let l = &self.config.limits;
        if self.sessions.len() > l.max_sessions {
            return Err("more sessions than max_sessions".into());
        }
        if self.retained.len() > l.max_retained {
            return Err("more retained than max_retained".into());
        }
        for (id, c) in &self.conns {
            let s = self
                .sessions
                .get(&c.session)
                .ok_or_else(|| format!("{id:?} has no session"))?;
            if s.conn != Some(*id) {
                return Err(format!("{id:?}: session points elsewhere"));
            }
        }
        let mut subs = 0;
        for (sid, s) in &self.sessions {
            if self.by_client.get(&s.client_id) != Some(sid) {
                return Err(format!("session {sid} not indexed by client id"));
            }
            if let Some(c) = s.conn
                && self.conns.get(&c).map(|c| c.session) != Some(*sid)
            {
                return Err(format!("session {sid}: connection mismatch"));
            }
            if s.subs.len() > l.max_subscriptions_per_session {
                return Err(format!("session {sid}: too many subscriptions"));
            }
            if s.inflight.len() > usize::from(l.max_inflight_out) {
                return Err(format!("session {sid}: inflight over limit"));
            }
            if s.queue.len() > l.max_queued_per_session {
                return Err(format!("session {sid}: queue over limit"));
            }
            // 3.1.1 clients are bounded only by their packet identifiers (a session may move
            // between versions, keeping what its 3.1.1 connection left).
            if s.inbound.len() > usize::from(u16::MAX) {
                return Err(format!(
                    "session {sid}: inbound over the packet identifier space"
                ));
            }
            let mut ids: Vec<u16> = s.inflight.iter().map(|f| f.packet_id.get()).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() != s.inflight.len() {
                return Err(format!("session {sid}: duplicate outbound packet id"));
            }
            if s.inflight.iter().any(|f| f.delivery.qos == QoS::AtMostOnce)
                || s.queue
                    .iter()
                    .any(|d| d.qos == QoS::AtMostOnce && s.conn.is_none())
            {
                return Err(format!("session {sid}: QoS 0 held"));
            }
            subs += s.subs.len();
        }
        if subs != self.trie.len() {
            return Err(format!(
                "trie has {} entries, sessions {subs}",
                self.trie.len()
            ));
        }
        if self.by_client.len() != self.sessions.len() {
            return Err("client index out of step".into());
        }
        Ok(())
    }

    // ---- connection lifecycle ---------------------------------------------------------

    fn connect_v3(&mut self, conn: ConnId, c: v3::Connect, now: Instant) {
        let lim = &self.config.limits;
        let info = ConnectInfo {
            version: Version::V3,
            clean: c.clean_session,
            keep_alive: c.keep_alive,
            expiry: if c.clean_session {
                Duration::ZERO
            } else {
                lim.max_session_expiry
            },
            receive_max: u16::MAX,
            max_packet: None,
            will: c.last_will.map(|w| {
                let p = Publish {
                    dup: false,
                    retain: w.retain,
                    qos: w.qos,
                    topic: w.topic,
                    packet_id: None,
                    payload: w.message,
                    properties: None,
                };
                (p, Duration::ZERO)
            }),
            client_id: c.client_id,
            username: c.username,
            password: c.password,
            auth_method: false,
        };
        self.connect(conn, info, now);
    }

    fn connect_v5(&mut self, conn: ConnId, c: v5::Connect, now: Instant) {
        let lim = &self.config.limits;
        let expiry = match c.session_expiry_interval_secs {
            u32::MAX => lim.max_session_expiry,
            s => Duration::from_secs(u64::from(s)).min(lim.max_session_expiry),
        };
        let info = ConnectInfo {
            version: Version::V5,
            clean: c.clean_start,
            keep_alive: c.keep_alive,
            expiry,
            receive_max: c.receive_max.map_or(u16::MAX, NonZeroU16::get),
            max_packet: c.max_packet_size.map(NonZeroU32::get),
            will: c.last_will.map(|w| {
                let props = v5::PublishProperties {
                    topic_alias: None,
                    correlation_data: w.correlation_data,
                    message_expiry_interval: w.message_expiry_interval,
                    content_type: w.content_type,
                    user_properties: w.user_properties,
                    is_utf8_payload: w.is_utf8_payload.unwrap_or(false),
                    response_topic: w.response_topic,
                    subscription_ids: Vec::new(),
                };
                let p = Publish {
                    dup: false,
                    retain: w.retain,
                    qos: w.qos,
                    topic: w.topic,
                    packet_id: None,
                    payload: w.message,
                    properties: Some(props),
                };
                let delay = Duration::from_secs(u64::from(w.will_delay_interval_sec.unwrap_or(0)));
                (p, delay)
            }),
            client_id: c.client_id,
            username: c.username,
            password: c.password,
            auth_method: c.auth_method.is_some(),
        };
        self.connect(conn, info, now);
    }

    fn refuse(
        &mut self,
        conn: ConnId,
        version: Version,
        v3r: v3::ConnectAckReason,
        v5r: v5::ConnectAckReason,
    ) {
        self.metrics.connects_refused += 1;
        let packet = match version {
            Version::V3 => Packet::V3(v3::Packet::ConnectAck(v3::ConnectAck {
                return_code: v3r,
                session_present: false,
            })),
            Version::V5 => Packet::V5(v5::Packet::ConnectAck(Box::new(v5::ConnectAck {
                reason_code: v5r,
                ..Default::default()
            }))),
        };
        self.out.push(Action::Send { conn, packet });
        self.close(conn, CloseReason::ConnectRefused);
    }

    fn connect(&mut self, conn: ConnId, mut c: ConnectInfo, now: Instant) {
        use v3::ConnectAckReason as R3;
        use v5::ConnectAckReason as R5;
        let v = c.version;
        if c.auth_method {
            return self.refuse(conn, v, R3::NotAuthorized, R5::BadAuthenticationMethod);
        }
        let mut assigned = None;
        if c.client_id.is_empty() {
            if v == Version::V3 && !c.clean {
                return self.refuse(
                    conn,
                    v,
                    R3::IdentifierRejected,
                    R5::ClientIdentifierNotValid,
                );
            }
            let id = ByteString::from(format!("rampart-auto-{}", self.next_assigned_id));
            self.next_assigned_id += 1;
            c.client_id = id.clone();
            assigned = Some(id);
        }
        if let Some((w, _)) = &c.will
            && topic::validate_name(&w.topic).is_err()
        {
            return self.refuse(conn, v, R3::NotAuthorized, R5::TopicNameInvalid);
        }
        let creds = Credentials {
            client_id: &c.client_id,
            username: c.username.as_deref(),
            password: c.password.as_deref(),
        };
        match self.authorizer.authenticate(&creds) {
            Ok(()) => {}
            Err(Refusal::BadCredentials) => {
                return self.refuse(
                    conn,
                    v,
                    R3::BadUserNameOrPassword,
                    R5::BadUserNameOrPassword,
                );
            }
            Err(Refusal::NotAuthorized) => {
                return self.refuse(conn, v, R3::NotAuthorized, R5::NotAuthorized);
            }
        }
        if let Some((w, _)) = &c.will
            && !self.authorizer.may_publish(&c.client_id, &w.topic)
        {
            self.metrics.publish_denied += 1;
            return self.refuse(conn, v, R3::NotAuthorized, R5::NotAuthorized);
        }

        // Take over a connected session with the same client identifier.
        let existing = self.by_client.get(&*c.client_id).copied();
        if let Some(sid) = existing
            && let Some(old) = self.sessions.get(&sid).and_then(|s| s.conn)
        {
            self.metrics.takeovers += 1;
            self.server_disconnect(
                old,
                v5::DisconnectReasonCode::SessionTakenOver,
                CloseReason::SessionTakenOver,
                now,
            );
        }
        let mut existing = self.by_client.get(&*c.client_id).copied();
        if let Some(sid) = existing
            && c.clean
        {
            self.end_session(sid, now);
            existing = None;
        }
        if existing.is_none() && self.sessions.len() >= self.config.limits.max_sessions {
            self.metrics.sessions_limit_refused += 1;
            return self.refuse(conn, v, R3::ServiceUnavailable, R5::QuotaExceeded);
        }
        // A resumed session cancels a will still waiting for its delay (MQTT 5 §3.1.3.2.2).
        let session_present = existing.is_some();
        let sid = match existing {
            Some(sid) => {
                self.pending_wills.remove(&sid);
                sid
            }
            None => {
                let sid = self.next_session;
                self.next_session += 1;
                let client_id: Arc<str> = Arc::from(&*c.client_id);
                self.by_client.insert(client_id.clone(), sid);
                self.sessions.insert(
                    sid,
                    Box::new(Session {
                        client_id,
                        conn: None,
                        version: v,
                        subs: SubList::default(),
                        inflight: VecDeque::new(),
                        queue: VecDeque::new(),
                        inbound: HashMap::new(),
                        next_packet_id: 0,
                        expiry: Duration::ZERO,
                        expires_at: None,
                        will: None,
                        client_receive_max: u16::MAX,
                        client_max_packet: None,
                        aliases: HashMap::new(),
                        clearance: None,
                    }),
                );
                sid
            }
        };
        // Asked on every CONNECT: a resumed session gets its new identity's clearance before
        // anything queued for it is sent.
        let clearance = self.authorizer.clearance(&c.client_id).map(Arc::new);
        let lim = &self.config.limits;
        let (keep_alive, server_keepalive) = match lim.max_keepalive {
            Some(max) if c.keep_alive == 0 || c.keep_alive > max => (max, Some(max)),
            _ => (c.keep_alive, None),
        };
        // MQTT 3.1.1 cannot be told another keepalive, so its own value is kept.
        let keep_alive = if v == Version::V3 {
            c.keep_alive
        } else {
            keep_alive
        };
        let timeout = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
        self.conns.insert(
            conn,
            Conn {
                session: sid,
                version: v,
                timeout,
                deadline: timeout.map(|t| now + t),
            },
        );
        let receive_maximum = lim.receive_maximum;
        let (max_packet_size, alias_max) = (lim.max_packet_size, lim.topic_alias_maximum);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        s.conn = Some(conn);
        s.version = v;
        s.expiry = c.expiry;
        s.expires_at = None;
        s.client_receive_max = c.receive_max.max(1);
        s.client_max_packet = c.max_packet;
        s.aliases.clear();
        s.clearance = clearance;
        s.will = c.will.map(|(p, delay)| Will {
            msg: Arc::new(Message {
                observe: true,
                expires_at: expiry_of(&p, now),
                publish: p,
                origin: Some(sid),
                marking: None,
            }),
            delay,
        });
        self.metrics.connects += 1;
        let packet = match v {
            Version::V3 => Packet::V3(v3::Packet::ConnectAck(v3::ConnectAck {
                return_code: R3::ConnectionAccepted,
                session_present,
            })),
            Version::V5 => {
                Packet::V5(v5::Packet::ConnectAck(Box::new(v5::ConnectAck {
                    session_present,
                    reason_code: R5::Success,
                    // Always stated, since the broker may have lowered the client's value.
                    session_expiry_interval_secs: Some(
                        u32::try_from(c.expiry.as_secs()).unwrap_or(u32::MAX),
                    ),
                    receive_max: NonZeroU16::new(receive_maximum).unwrap_or(NonZeroU16::MIN),
                    max_qos: QoS::ExactlyOnce,
                    max_packet_size: Some(max_packet_size),
                    assigned_client_id: assigned,
                    topic_alias_max: alias_max,
                    server_keepalive_sec: server_keepalive,
                    ..Default::default()
                })))
            }
        };
        self.out.push(Action::Send { conn, packet });
        self.resume(sid, now);
    }

    /// Resends what was inflight (with DUP) and drains the queue, after a (re)connect.
    fn resume(&mut self, sid: SessionId, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let Some(conn) = s.conn else { return };
        // The session may come back under another identity: what it may no longer see is
        // not sent again (a PUBREL carries no message and is kept).
        let before = s.inflight.len();
        s.inflight
            .retain(|f| f.state == OutState::Comp || s_may_receive(&s.clearance, &f.delivery.msg));
        self.metrics.label_withheld += (before - s.inflight.len()) as u64;
        for f in &s.inflight {
            let packet = match f.state {
                OutState::Comp => pubrel(s.version, f.packet_id, true),
                _ => {
                    self.metrics.publishes_out += 1;
                    publish_packet(s.version, &f.delivery, Some(f.packet_id), true, now)
                }
            };
            self.out.push(Action::Send { conn, packet });
        }
        self.drain(sid, now);
    }

    /// Server-initiated close: MQTT 5 DISCONNECT with `code`, close, will.
    fn server_disconnect(
        &mut self,
        conn: ConnId,
        code: v5::DisconnectReasonCode,
        reason: CloseReason,
        now: Instant,
    ) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.version == Version::V5)
        {
            self.out.push(Action::Send {
                conn,
                packet: disconnect_v5(code),
            });
        }
        self.close(conn, reason);
        self.end_connection(conn, true, now);
    }

    fn protocol_error(&mut self, conn: ConnId, now: Instant) {
        self.metrics.protocol_errors += 1;
        self.server_disconnect(
            conn,
            v5::DisconnectReasonCode::ProtocolError,
            CloseReason::ProtocolError,
            now,
        );
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.out.push(Action::Close { conn, reason });
    }

    /// Forgets `conn`; with `abnormal`, publishes (or schedules) the will. Ends the session
    /// if its expiry is zero.
    fn end_connection(&mut self, conn: ConnId, abnormal: bool, now: Instant) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let sid = c.session;
        // An offline session's queue is bounded and dropped beyond its limit; it never
        // holds publishers back.
        self.congested.remove(&sid);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        s.conn = None;
        s.aliases.clear();
        let will = s.will.take();
        let expiry = s.expiry;
        // An expiry too far to represent never comes: the session lives until `max_sessions`
        // pressure or a clean start ends it.
        s.expires_at = now.checked_add(expiry);
        if abnormal && let Some(w) = will {
            if w.delay.is_zero() {
                self.publish_will(w.msg, now);
            } else {
                self.pending_wills.insert(
                    sid,
                    (now.checked_add(w.delay.min(expiry)).unwrap_or(now), w.msg),
                );
            }
        }
        if expiry.is_zero() {
            self.end_session(sid, now);
        }
    }

    /// Discards a session: its subscriptions, queue and inflight. A will still waiting for
    /// its delay is published now (MQTT 5 §3.1.2.5: at the latest when the session ends).
    fn end_session(&mut self, sid: SessionId, now: Instant) {
        let Some(s) = self.sessions.remove(&sid) else {
            return;
        };
        self.congested.remove(&sid);
        self.metrics.sessions_ended += 1;
        self.by_client.remove(&s.client_id);
        for raw in s.subs.keys() {
            if let Ok(f) = topic::parse_filter(raw) {
                self.trie.remove(f.group, f.filter, sid);
            }
        }
        self.metrics.session_end_drops += (s.queue.len() + s.inflight.len()) as u64;
        if let Some((_, msg)) = self.pending_wills.remove(&sid) {
            self.publish_will(msg, now);
        }
        if let Some(conn) = s.conn {
            self.conns.remove(&conn);
        }
    }

    fn publish_will(&mut self, msg: Arc<Message>, now: Instant) {
        self.metrics.wills_published += 1;
        self.ingest(None, None, msg, now);
    }

    // ---- packets ----------------------------------------------------------------------

    fn packet_v3(&mut self, conn: ConnId, sid: SessionId, p: v3::Packet, now: Instant) {
        match p {
            v3::Packet::Publish(p) => self.publish(conn, sid, *p, now),
            v3::Packet::PublishAck { packet_id } => self.out_ack(sid, packet_id, now),
            v3::Packet::PublishReceived { packet_id } => self.out_rec(sid, packet_id, true, now),
            v3::Packet::PublishComplete { packet_id } => self.out_comp(sid, packet_id, now),
            v3::Packet::PublishRelease { packet_id } => self.in_rel(conn, sid, packet_id),
            v3::Packet::Subscribe {
                packet_id,
                topic_filters,
            } => {
                let filters = topic_filters
                    .into_iter()
                    .map(|(f, qos)| {
                        let o = v5::SubscriptionOptions {
                            qos,
                            no_local: false,
                            retain_as_published: false,
                            retain_handling: v5::RetainHandling::AtSubscribe,
                        };
                        (f, o)
                    })
                    .collect();
                self.subscribe(conn, sid, packet_id, None, filters, now);
            }
            v3::Packet::Unsubscribe {
                packet_id,
                topic_filters,
            } => self.unsubscribe(conn, sid, packet_id, topic_filters),
            v3::Packet::PingRequest => self.out.push(Action::Send {
                conn,
                packet: Packet::V3(v3::Packet::PingResponse),
            }),
            v3::Packet::Disconnect => {
                self.close(conn, CloseReason::ClientDisconnect);
                self.end_connection(conn, false, now);
            }
            // A second CONNECT, or a server-to-client packet.
            _ => self.protocol_error(conn, now),
        }
    }

    fn packet_v5(&mut self, conn: ConnId, sid: SessionId, p: v5::Packet, now: Instant) {
        match p {
            v5::Packet::Publish(p) => self.publish(conn, sid, *p, now),
            v5::Packet::PublishAck(a) => self.out_ack(sid, a.packet_id, now),
            v5::Packet::PublishReceived(a) => {
                let ok = u8::from(a.reason_code) < 0x80;
                self.out_rec(sid, a.packet_id, ok, now);
            }
            v5::Packet::PublishComplete(a) => self.out_comp(sid, a.packet_id, now),
            v5::Packet::PublishRelease(a) => self.in_rel(conn, sid, a.packet_id),
            v5::Packet::Subscribe(s) => {
                self.subscribe(conn, sid, s.packet_id, s.id, s.topic_filters, now);
            }
            v5::Packet::Unsubscribe(u) => self.unsubscribe(conn, sid, u.packet_id, u.topic_filters),
            v5::Packet::PingRequest => self.out.push(Action::Send {
                conn,
                packet: Packet::V5(v5::Packet::PingResponse),
            }),
            v5::Packet::Disconnect(d) => {
                let Some(s) = self.sessions.get_mut(&sid) else {
                    return;
                };
                if let Some(e) = d.session_expiry_interval_secs {
                    // MQTT 5 §3.14.2.2.2: from zero to non-zero is a protocol error.
                    if s.expiry.is_zero() && e != 0 {
                        return self.protocol_error(conn, now);
                    }
                    s.expiry = Duration::from_secs(u64::from(e))
                        .min(self.config.limits.max_session_expiry);
                }
                let normal = d.reason_code == v5::DisconnectReasonCode::NormalDisconnection;
                self.close(conn, CloseReason::ClientDisconnect);
                self.end_connection(conn, !normal, now);
            }
            // AUTH without an authentication method, a second CONNECT, or a
            // server-to-client packet.
            _ => self.protocol_error(conn, now),
        }
    }

    fn publish(&mut self, conn: ConnId, sid: SessionId, mut p: Publish, now: Instant) {
        use v5::PublishAckReason as R;
        self.metrics.publishes_in += 1;
        let limits = &self.config.limits;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let v = s.version;
        // Inbound topic alias (MQTT 5 §3.3.2.3.4).
        if let Some(props) = p.properties.as_mut()
            && let Some(alias) = props.topic_alias.take()
        {
            let alias = alias.get();
            if alias > limits.topic_alias_maximum {
                return self.server_disconnect(
                    conn,
                    v5::DisconnectReasonCode::TopicAliasInvalid,
                    CloseReason::TopicAliasInvalid,
                    now,
                );
            }
            if p.topic.is_empty() {
                match s.aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        return self.server_disconnect(
                            conn,
                            v5::DisconnectReasonCode::TopicAliasInvalid,
                            CloseReason::TopicAliasInvalid,
                            now,
                        );
                    }
                }
            } else {
                s.aliases.insert(alias, p.topic.clone());
            }
        }
        if topic::validate_name(&p.topic).is_err() {
            return self.server_disconnect(
                conn,
                v5::DisconnectReasonCode::TopicNameInvalid,
                CloseReason::TopicNameInvalid,
                now,
            );
        }
        let pid = p.packet_id;
        if p.qos != QoS::AtMostOnce && pid.is_none() {
            return self.protocol_error(conn, now);
        }
        // Duplicates of what is still in progress are answered without routing again.
        if let Some(id) = pid {
            match s.inbound.get(&id) {
                Some(Inbound::Persisting(_)) => return,
                Some(Inbound::AwaitRel) if p.qos == QoS::ExactlyOnce => {
                    let packet = pubrec(v, id, R::Success);
                    return self.out.push(Action::Send { conn, packet });
                }
                Some(Inbound::AwaitRel) => {
                    let packet = puback(v, id, R::PacketIdentifierInUse);
                    return self.out.push(Action::Send { conn, packet });
                }
                // Only MQTT 5 clients are told the Receive Maximum; a 3.1.1 client may have
                // as many unacknowledged publishes as it has packet identifiers (the embedder
                // bounds them by not reading while durable publishes wait).
                None if v == Version::V5
                    && s.inbound.len() >= usize::from(limits.receive_maximum) =>
                {
                    return self.server_disconnect(
                        conn,
                        v5::DisconnectReasonCode::ReceiveMaximumExceeded,
                        CloseReason::ReceiveMaximumExceeded,
                        now,
                    );
                }
                None => {}
            }
        }
        let client_id = s.client_id.clone();
        let refuse = |reason| match (p.qos, pid) {
            (QoS::AtLeastOnce, Some(id)) => Some(puback(v, id, reason)),
            (QoS::ExactlyOnce, Some(id)) => Some(pubrec(v, id, reason)),
            _ => None,
        };
        let utf8_declared = p.properties.as_ref().is_some_and(|pr| pr.is_utf8_payload);
        if utf8_declared && std::str::from_utf8(&p.payload).is_err() {
            self.metrics.payload_format_invalid += 1;
            if let Some(packet) = refuse(R::PayloadFormatInvalid) {
                self.out.push(Action::Send { conn, packet });
            }
            return;
        }
        if !self.authorizer.may_publish(&client_id, &p.topic) {
            // 3.1.1 has no negative acknowledgement: the publish is acknowledged and
            // dropped, as Mosquitto does, and counted.
            self.metrics.publish_denied += 1;
            if let Some(packet) = refuse(R::NotAuthorized) {
                self.out.push(Action::Send { conn, packet });
            }
            return;
        }
        let qos = p.qos;
        p.dup = false;
        p.packet_id = None;
        let msg = Arc::new(Message {
            observe: true,
            expires_at: expiry_of(&p, now),
            publish: p,
            origin: Some(sid),
            marking: None,
        });
        self.ingest(Some(sid), pid.filter(|_| qos != QoS::AtMostOnce), msg, now);
        let Some(id) = pid else { return };
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.inbound.contains_key(&id) {
            return; // held for durability; acknowledged by `persisted`
        }
        match qos {
            QoS::AtLeastOnce => {
                let packet = puback(v, id, R::Success);
                self.out.push(Action::Send { conn, packet });
            }
            QoS::ExactlyOnce => {
                s.inbound.insert(id, Inbound::AwaitRel);
                let packet = pubrec(v, id, R::Success);
                self.out.push(Action::Send { conn, packet });
            }
            QoS::AtMostOnce => {}
        }
    }

    /// Routes `msg` now, or holds it for durability if its topic is durable.
    fn ingest(
        &mut self,
        session: Option<SessionId>,
        packet_id: Option<NonZeroU16>,
        msg: Arc<Message>,
        now: Instant,
    ) {
        let durable = self
            .config
            .durable
            .iter()
            .any(|f| topic::matches(f, &msg.publish.topic));
        if !durable {
            return self.route(msg, now);
        }
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        let client_id = session
            .and_then(|sid| self.sessions.get_mut(&sid))
            .map(|s| {
                if let Some(id) = packet_id {
                    s.inbound.insert(id, Inbound::Persisting(msg.publish.qos));
                }
                s.client_id.clone()
            });
        self.metrics.persists += 1;
        self.out.push(Action::Persist {
            token,
            client_id,
            publish: msg.publish.clone(),
        });
        self.held.insert(
            token,
            Held {
                session,
                packet_id,
                msg,
            },
        );
    }

    /// Stores a retained message and delivers `msg` to every matching subscriber.
    fn route(&mut self, msg: Arc<Message>, now: Instant) {
        let p = &msg.publish;
        if msg.observe
            && !self.config.observe.is_empty()
            && self
                .config
                .observe
                .iter()
                .any(|f| topic::matches(f, &p.topic))
        {
            self.out.push(Action::Observed {
                publish: p.clone(),
                marking: msg.marking.clone(),
            });
        }
        if p.retain {
            if p.payload.is_empty() {
                self.retained.remove(&p.topic);
            } else if self.retained.len() < self.config.limits.max_retained
                || self.retained.contains_key(&p.topic)
            {
                self.retained.insert(p.topic.clone(), msg.clone());
            } else {
                self.metrics.retained_refused += 1;
            }
        }
        let limit = self.config.limits.max_inflight_out;
        let sessions = &self.sessions;
        let eligible = |sid: SessionId| {
            sessions
                .get(&sid)
                .is_some_and(|s| s.conn.is_some() && s.inflight.len() < s.window(limit))
        };
        // Shared groups pick among members cleared for the message; plain subscribers not
        // cleared are withheld (and counted) in `deliver`.
        let marked = msg.marking.is_some();
        let allowed =
            |sid: SessionId| !marked || sessions.get(&sid).is_some_and(|s| s.may_receive(&msg));
        let mut matches = Vec::new();
        self.trie
            .matches(&p.topic, &allowed, &eligible, &mut matches);
        // One delivery per session for overlapping plain subscriptions: the highest QoS,
        // every subscription identifier (MQTT 5 §3.3.4).
        matches.sort_by_key(|m| (m.shared, m.session));
        let mut merged: Vec<(Match, Vec<NonZeroU32>)> = Vec::with_capacity(matches.len());
        for m in matches {
            if m.opts.no_local && msg.origin == Some(m.session) && !m.shared {
                continue;
            }
            match merged.last_mut() {
                Some((last, ids)) if !m.shared && !last.shared && last.session == m.session => {
                    last.opts.qos = qos_max(last.opts.qos, m.opts.qos);
                    last.opts.retain_as_published |= m.opts.retain_as_published;
                    ids.extend(m.opts.id);
                }
                _ => merged.push((m, m.opts.id.into_iter().collect())),
            }
        }
        for (m, sub_ids) in merged {
            let d = Delivery {
                qos: qos_min(msg.publish.qos, m.opts.qos),
                retain: msg.publish.retain && m.opts.retain_as_published,
                sub_ids,
                msg: msg.clone(),
            };
            self.deliver(m.session, d, now);
        }
    }

    /// Sends `d` now, or queues it (bounded), or drops it with a count.
    fn deliver(&mut self, sid: SessionId, d: Delivery, now: Instant) {
        let limits = &self.config.limits;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if d.msg.expires_at.is_some_and(|t| t <= now) {
            self.metrics.expired_drops += 1;
            return;
        }
        if !s.may_receive(&d.msg) {
            self.metrics.label_withheld += 1;
            return;
        }
        let Some(conn) = s.conn else {
            if d.qos == QoS::AtMostOnce {
                self.metrics.offline_qos0_drops += 1;
            } else if s.queue.len() < limits.max_queued_per_session {
                s.queue.push_back(d);
            } else {
                self.metrics.queue_full_drops += 1;
            }
            return;
        };
        if d.qos == QoS::AtMostOnce {
            if fits(s, &d, now) {
                self.metrics.publishes_out += 1;
                let packet = publish_packet(s.version, &d, None, false, now);
                self.out.push(Action::Send { conn, packet });
            } else {
                self.metrics.oversize_drops += 1;
            }
            return;
        }
        if s.queue.len() >= limits.max_queued_per_session {
            self.metrics.queue_full_drops += 1;
            return;
        }
        s.queue.push_back(d);
        if s.queue.len() >= congestion_high(limits.max_queued_per_session) {
            self.congested.insert(sid);
        }
        self.drain(sid, now);
    }

    /// Moves queued deliveries into the inflight window while there is room.
    fn drain(&mut self, sid: SessionId, now: Instant) {
        let limit = self.config.limits.max_inflight_out;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let Some(conn) = s.conn else { return };
        while s.inflight.len() < s.window(limit) {
            let Some(d) = s.queue.pop_front() else { break };
            if d.msg.expires_at.is_some_and(|t| t <= now) {
                self.metrics.expired_drops += 1;
                continue;
            }
            // Queued under an earlier clearance (or restored): checked again when sent.
            if !s.may_receive(&d.msg) {
                self.metrics.label_withheld += 1;
                continue;
            }
            if !fits(s, &d, now) {
                self.metrics.oversize_drops += 1;
                continue;
            }
            self.metrics.publishes_out += 1;
            if d.qos == QoS::AtMostOnce {
                let packet = publish_packet(s.version, &d, None, false, now);
                self.out.push(Action::Send { conn, packet });
                continue;
            }
            let packet_id = s.alloc_packet_id();
            let packet = publish_packet(s.version, &d, Some(packet_id), false, now);
            self.out.push(Action::Send { conn, packet });
            let state = if d.qos == QoS::ExactlyOnce {
                OutState::Rec
            } else {
                OutState::Ack
            };
            s.inflight.push_back(OutFlight {
                packet_id,
                delivery: d,
                state,
            });
        }
        if s.queue.len() <= congestion_low(self.config.limits.max_queued_per_session) {
            self.congested.remove(&sid);
        }
    }

    fn out_ack(&mut self, sid: SessionId, id: NonZeroU16, now: Instant) {
        self.finish_out(sid, id, OutState::Ack, now);
    }

    fn out_comp(&mut self, sid: SessionId, id: NonZeroU16, now: Instant) {
        self.finish_out(sid, id, OutState::Comp, now);
    }

    fn finish_out(&mut self, sid: SessionId, id: NonZeroU16, state: OutState, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match s
            .inflight
            .iter()
            .position(|f| f.packet_id == id && f.state == state)
        {
            Some(i) => {
                s.inflight.remove(i);
                self.drain(sid, now);
            }
            None => self.metrics.unknown_acks += 1,
        }
    }

    fn out_rec(&mut self, sid: SessionId, id: NonZeroU16, ok: bool, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let Some(conn) = s.conn else { return };
        let found = s
            .inflight
            .iter()
            .position(|f| f.packet_id == id && f.state != OutState::Ack);
        match found {
            // MQTT 5: a PUBREC with an error code ends the exchange.
            Some(i) if !ok => {
                s.inflight.remove(i);
                self.drain(sid, now);
            }
            Some(i) => {
                if let Some(f) = s.inflight.get_mut(i) {
                    f.state = OutState::Comp;
                }
                let packet = pubrel(s.version, id, true);
                self.out.push(Action::Send { conn, packet });
            }
            None => {
                self.metrics.unknown_acks += 1;
                let packet = pubrel(s.version, id, false);
                self.out.push(Action::Send { conn, packet });
            }
        }
    }

    fn in_rel(&mut self, conn: ConnId, sid: SessionId, id: NonZeroU16) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let found = s.inbound.get(&id) == Some(&Inbound::AwaitRel);
        if found {
            s.inbound.remove(&id);
        } else {
            self.metrics.unknown_acks += 1;
        }
        let packet = pubcomp(s.version, id, found);
        self.out.push(Action::Send { conn, packet });
    }

    fn subscribe(
        &mut self,
        conn: ConnId,
        sid: SessionId,
        packet_id: NonZeroU16,
        sub_id: Option<NonZeroU32>,
        filters: Vec<(ByteString, v5::SubscriptionOptions)>,
        now: Instant,
    ) {
        use v5::SubscribeAckReason as R;
        let max_subs = self.config.limits.max_subscriptions_per_session;
        let Some(client_id) = self.sessions.get(&sid).map(|s| s.client_id.clone()) else {
            return;
        };
        let mut codes = Vec::with_capacity(filters.len());
        let mut retained_for = Vec::new();
        for (raw, o) in filters {
            let Ok(f) = topic::parse_filter(&raw) else {
                codes.push(R::TopicFilterInvalid);
                continue;
            };
            if f.group.is_some() && o.no_local {
                // MQTT 5 §3.8.3.1: No Local on a shared subscription is a protocol error.
                return self.protocol_error(conn, now);
            }
            if !self.authorizer.may_subscribe(&client_id, &raw) {
                self.metrics.subscribe_denied += 1;
                codes.push(R::NotAuthorized);
                continue;
            }
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            let existed = s.subs.contains_key(&raw);
            if !existed && s.subs.len() >= max_subs {
                self.metrics.subscriptions_limit_refused += 1;
                codes.push(R::QuotaExceeded);
                continue;
            }
            let opts = SubOptions {
                qos: o.qos,
                no_local: o.no_local,
                retain_as_published: o.retain_as_published,
                id: sub_id,
            };
            s.subs.insert(Box::from(&*raw), opts);
            self.trie.insert(f.group, f.filter, sid, opts);
            codes.push(match o.qos {
                QoS::AtMostOnce => R::GrantedQos0,
                QoS::AtLeastOnce => R::GrantedQos1,
                QoS::ExactlyOnce => R::GrantedQos2,
            });
            let send_retained = f.group.is_none()
                && match o.retain_handling {
                    v5::RetainHandling::AtSubscribe => true,
                    v5::RetainHandling::AtSubscribeNew => !existed,
                    v5::RetainHandling::NoAtSubscribe => false,
                };
            if send_retained {
                retained_for.push((f.filter.to_owned(), opts));
            }
        }
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let packet = match s.version {
            Version::V3 => Packet::V3(v3::Packet::SubscribeAck {
                packet_id,
                status: codes
                    .iter()
                    .map(|c| match c {
                        R::GrantedQos0 => v3::SubscribeReturnCode::Success(QoS::AtMostOnce),
                        R::GrantedQos1 => v3::SubscribeReturnCode::Success(QoS::AtLeastOnce),
                        R::GrantedQos2 => v3::SubscribeReturnCode::Success(QoS::ExactlyOnce),
                        _ => v3::SubscribeReturnCode::Failure,
                    })
                    .collect(),
            }),
            Version::V5 => Packet::V5(v5::Packet::SubscribeAck(v5::SubscribeAck {
                packet_id,
                properties: Vec::new(),
                reason_string: None,
                status: codes,
            })),
        };
        self.out.push(Action::Send { conn, packet });
        // Retained messages follow the SUBACK, with RETAIN set (MQTT 5 §3.3.1.3).
        for (filter, opts) in retained_for {
            let msgs: Vec<Arc<Message>> = self
                .retained
                .values()
                .filter(|m| topic::matches(&filter, &m.publish.topic))
                .cloned()
                .collect();
            for msg in msgs {
                let d = Delivery {
                    qos: qos_min(msg.publish.qos, opts.qos),
                    retain: true,
                    sub_ids: opts.id.into_iter().collect(),
                    msg,
                };
                self.deliver(sid, d, now);
            }
        }
    }

    fn unsubscribe(
        &mut self,
        conn: ConnId,
        sid: SessionId,
        packet_id: NonZeroU16,
        filters: Vec<ByteString>,
    ) {
        use v5::UnsubscribeAckReason as R;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let mut codes = Vec::with_capacity(filters.len());
        for raw in filters {
            let existed = s.subs.remove(&raw).is_some();
            if existed && let Ok(f) = topic::parse_filter(&raw) {
                self.trie.remove(f.group, f.filter, sid);
            }
            codes.push(if existed {
                R::Success
            } else {
                R::NoSubscriptionExisted
            });
        }
        let packet = match s.version {
            Version::V3 => Packet::V3(v3::Packet::UnsubscribeAck { packet_id }),
            Version::V5 => Packet::V5(v5::Packet::UnsubscribeAck(v5::UnsubscribeAck {
                packet_id,
                properties: Vec::new(),
                reason_string: None,
                status: codes,
            })),
        };
        self.out.push(Action::Send { conn, packet });
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }
}

/// A session's subscriptions: raw filter (with any `$share/` prefix) → options. A short
/// vector rather than a map: most sessions hold one to a few filters, the limit is
/// `max_subscriptions_per_session`, and an empty or small vector costs far less memory per
/// idle connection than a hash map.
#[derive(Debug, Default)]
struct SubList(Vec<(Box<str>, SubOptions)>);

impl SubList {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn keys(&self) -> impl Iterator<Item = &Box<str>> {
        self.0.iter().map(|(k, _)| k)
    }
    fn iter(&self) -> impl Iterator<Item = (&Box<str>, &SubOptions)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    fn contains_key(&self, raw: &str) -> bool {
        self.0.iter().any(|(k, _)| &**k == raw)
    }
    fn insert(&mut self, raw: Box<str>, opts: SubOptions) {
        match self.0.iter_mut().find(|(k, _)| *k == raw) {
            Some(slot) => slot.1 = opts,
            None => self.0.push((raw, opts)),
        }
    }
    fn remove(&mut self, raw: &str) -> Option<SubOptions> {
        let i = self.0.iter().position(|(k, _)| &**k == raw)?;
        Some(self.0.swap_remove(i).1)
    }
}

/// Whether a session with `clearance` may receive `msg` (a free function so that it can be
/// called while the session's inflight list is borrowed).
fn s_may_receive(clearance: &Option<Arc<Clearance>>, msg: &Message) -> bool {
    permits(clearance.as_deref(), msg.marking.as_deref())
}

/// Queue length at which a connected session becomes congested.
fn congestion_high(max: usize) -> usize {
    (max - max / 4).max(1)
}

/// Queue length at which it stops being congested.
fn congestion_low(max: usize) -> usize {
    max / 4
}

fn expiry_of(p: &Publish, now: Instant) -> Option<Instant> {
    let secs = p.properties.as_ref()?.message_expiry_interval?;
    now.checked_add(Duration::from_secs(u64::from(secs.get())))
}

/// True if `d` fits the client's Maximum Packet Size.
fn fits(s: &Session, d: &Delivery, now: Instant) -> bool {
    match s.client_max_packet {
        None => true,
        Some(max) => {
            let p = publish_packet(s.version, d, None, false, now);
            match &p {
                Packet::V3(v3::Packet::Publish(p)) | Packet::V5(v5::Packet::Publish(p)) => {
                    publish_size_bound(p) <= max as usize
                }
                _ => true,
            }
        }
    }
}

/// Builds the PUBLISH of `d` for a connection of version `v`.
fn publish_packet(
    v: Version,
    d: &Delivery,
    packet_id: Option<NonZeroU16>,
    dup: bool,
    now: Instant,
) -> Packet {
    let src = &d.msg.publish;
    let properties = match v {
        Version::V3 => None,
        Version::V5 => {
            let mut pr = src.properties.clone().unwrap_or_default();
            pr.topic_alias = None;
            pr.subscription_ids.clone_from(&d.sub_ids);
            // The expiry interval sent is what remains of it (MQTT 5 §3.3.2.3.3).
            if let Some(at) = d.msg.expires_at {
                let left = at.saturating_duration_since(now).as_secs().max(1);
                pr.message_expiry_interval =
                    NonZeroU32::new(u32::try_from(left).unwrap_or(u32::MAX));
            }
            Some(pr)
        }
    };
    let p = Publish {
        dup,
        retain: d.retain,
        qos: d.qos,
        topic: src.topic.clone(),
        packet_id,
        payload: src.payload.clone(),
        properties,
    };
    match v {
        Version::V3 => Packet::V3(v3::Packet::Publish(Box::new(p))),
        Version::V5 => Packet::V5(v5::Packet::Publish(Box::new(p))),
    }
}

#[cfg(test)]
mod size_tests {
    /// What every idle connection costs in the broker core; see the idle-connection
    /// benchmark.
    #[test]
    fn per_connection_structures_stay_small() {
        let session = std::mem::size_of::<super::Session>();
        let conn = std::mem::size_of::<super::Conn>();
        println!("Session {session} B, Conn {conn} B");
        assert!(
            session <= 512 && conn <= 64,
            "Session {session} B, Conn {conn} B"
        );
    }
}
