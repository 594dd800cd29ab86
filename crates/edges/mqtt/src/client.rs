//! A small async MQTT 3.1.1 / 5.0 client over rmqtt-codec, used by the bridge and the load generator.
//!
//! [`connect`] opens a TCP (optionally TLS) connection with `TCP_NODELAY`, does the
//! CONNECT / CONNACK handshake and then runs two tasks:
//!
//! - a reader that decodes packets, hands received PUBLISHes to [`Incoming`] (bounded: when
//!   it is full the reader stops reading, which is TCP backpressure towards the server),
//!   answers QoS 1 (PUBACK) and QoS 2 (PUBREC, then PUBCOMP on PUBREL) publishes, and
//!   completes the packet ids of acknowledged publishes and subscriptions;
//! - a writer that encodes what [`Client`] queues, batching whatever is ready into one
//!   write, and sends a PINGREQ every keepalive period (a missing PINGRESP by the next
//!   period closes the connection).
//!
//! QoS 1 publishing is pipelined: [`Client::publish`] returns once the packet is queued and
//! only waits when the in-flight window (at most [`ConnectOptions::max_inflight`] and the
//! server's Receive Maximum) is full. [`Client::publish_acked`] waits for the PUBACK,
//! [`Client::wait_acked`] for every outstanding one. QoS 2 publishing is not offered (the
//! bridge and the load generator only need 0 and 1); QoS 2 publishes *received* are handled.
//!
//! Every queue is bounded by a named limit, frames by [`ConnectOptions::max_packet_size`].

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use rmqtt_codec::types::{Protocol, Publish, QoS};
use rmqtt_codec::{v3, v5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::codec::{Decoder, Encoder};
use tokio_util::sync::CancellationToken;

/// Default largest packet accepted from the server (and sent to it), in bytes.
pub const DEFAULT_MAX_PACKET_SIZE: u32 = 1024 * 1024;
/// Default outbound in-flight window: QoS 1 publishes (and subscriptions) awaiting their ack.
pub const DEFAULT_MAX_INFLIGHT: u16 = 256;
/// Default capacity of the queue of received publishes ([`Incoming`]).
pub const DEFAULT_INCOMING_QUEUE: usize = 4096;
/// Default capacity of the queue of packets waiting for the writer.
pub const DEFAULT_COMMAND_QUEUE: usize = 1024;
/// Default time allowed for TCP connect, TLS and the CONNECT / CONNACK exchange.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Acknowledgements the reader may queue for the writer before it waits.
const ACK_QUEUE: usize = 4096;
/// Free read-buffer space kept before each read.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes encoded into one write before it is flushed to the socket.
const WRITE_BATCH: usize = 64 * 1024;
/// A write that makes no progress for this long closes the connection.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The protocol version spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0.
    V5,
}

/// TLS settings: the rustls configuration and the name the server's certificate must carry.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// The rustls client configuration (roots, client certificate, ALPN).
    pub config: Arc<rustls::ClientConfig>,
    /// The server name checked against the certificate (a DNS name or an IP address).
    pub server_name: String,
}

/// How to connect.
#[derive(Clone)]
pub struct ConnectOptions {
    /// The protocol version.
    pub version: Version,
    /// The client identifier (may be empty with `clean_start`, the server then assigns one).
    pub client_id: String,
    /// User name, if any.
    pub username: Option<String>,
    /// Password, if any.
    pub password: Option<Bytes>,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    /// Session expiry in seconds (5.0 only; 3.1.1 sessions last until a clean connect).
    pub session_expiry_secs: u32,
    /// Keepalive in seconds; 0 disables pings.
    pub keepalive_secs: u16,
    /// Largest packet accepted from the server and sent to it, in bytes.
    pub max_packet_size: u32,
    /// Outbound window: QoS 1 publishes and subscriptions awaiting their ack (at least 1).
    pub max_inflight: u16,
    /// Capacity of the [`Incoming`] queue (also the Receive Maximum announced on 5.0).
    pub incoming_queue: usize,
    /// Capacity of the queue between [`Client`] and the writer task.
    pub command_queue: usize,
    /// Time allowed for TCP connect, TLS and the CONNECT / CONNACK exchange.
    pub connect_timeout: Duration,
    /// TLS, or plain TCP when `None`.
    pub tls: Option<TlsOptions>,
}

impl ConnectOptions {
    /// Defaults for `client_id`: MQTT 3.1.1, clean start, keepalive 30 s, no credentials.
    pub fn new(client_id: impl Into<String>) -> Self {
        ConnectOptions {
            version: Version::V311,
            client_id: client_id.into(),
            username: None,
            password: None,
            clean_start: true,
            session_expiry_secs: 0,
            keepalive_secs: 30,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            incoming_queue: DEFAULT_INCOMING_QUEUE,
            command_queue: DEFAULT_COMMAND_QUEUE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
        }
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("clean_start", &self.clean_start)
            .field("session_expiry_secs", &self.session_expiry_secs)
            .field("keepalive_secs", &self.keepalive_secs)
            .field("max_packet_size", &self.max_packet_size)
            .field("max_inflight", &self.max_inflight)
            .field("incoming_queue", &self.incoming_queue)
            .field("command_queue", &self.command_queue)
            .field("tls", &self.tls.as_ref().map(|t| &t.server_name))
            .finish()
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// TCP connect, TLS or the CONNACK took longer than `connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The TLS server name is not a valid DNS name or IP address.
    #[error("invalid TLS server name {0:?}")]
    TlsName(String),
    /// The server sent bytes that are not a valid MQTT packet (or one over the size limit).
    #[error("malformed packet from the server: {0}")]
    Decode(#[from] rmqtt_codec::error::DecodeError),
    /// A packet could not be encoded.
    #[error("cannot encode packet: {0}")]
    Encode(#[from] rmqtt_codec::error::EncodeError),
    /// The server refused the connection (CONNACK reason).
    #[error("connection refused by the server: {0}")]
    Refused(String),
    /// The server broke the protocol.
    #[error("protocol violation by the server: {0}")]
    Protocol(&'static str),
    /// The connection is closed; the reason says why.
    #[error("connection closed: {0}")]
    Closed(String),
    /// No PINGRESP arrived within a keepalive period.
    #[error("keepalive timeout: no PINGRESP from the server")]
    KeepAliveTimeout,
    /// The server refused a publish (PUBACK reason code).
    #[error("publish refused by the server: {0}")]
    PublishRefused(String),
    /// A topic name or filter is invalid.
    #[error("invalid topic {topic:?}: {why:?}")]
    InvalidTopic {
        /// The topic or filter.
        topic: String,
        /// What is wrong with it.
        why: rampart_mqtt_broker::topic::TopicError,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE without filters.
    #[error("no topic filters given")]
    NoFilters,
    /// The packet is larger than the limit (ours or the server's Maximum Packet Size).
    #[error("packet of about {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Estimated encoded size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// QoS 2 publishing is not supported by this client.
    #[error("publishing at QoS 2 is not supported by this client")]
    Qos2Unsupported,
}

/// The outcome of one filter of a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeResult {
    /// Granted at this QoS.
    Granted(QoS),
    /// Refused with this reason code (0x80 on 3.1.1).
    Refused(u8),
}

/// One filter to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topic filter (`$share/{group}/...` allowed).
    pub filter: String,
    /// Maximum QoS requested.
    pub qos: QoS,
    /// MQTT 5 No Local: the server does not send this client's own publishes back (ignored
    /// on 3.1.1).
    pub no_local: bool,
}

impl Subscription {
    /// A subscription to `filter` at `qos`.
    pub fn new(filter: impl Into<String>, qos: QoS) -> Self {
        Subscription {
            filter: filter.into(),
            qos,
            no_local: false,
        }
    }
}

/// What the server told us in its CONNACK.
#[derive(Debug, Clone, Default)]
pub struct ConnAckInfo {
    /// The server resumed a session.
    pub session_present: bool,
    /// The server's Receive Maximum (5.0; 65,535 otherwise).
    pub receive_max: u16,
    /// The server's Maximum Packet Size (5.0), if it set one.
    pub max_packet_size: Option<u32>,
    /// The client identifier the server assigned (5.0), if any.
    pub assigned_client_id: Option<String>,
    /// The keepalive the server imposes (5.0), if any.
    pub server_keepalive_secs: Option<u16>,
}

/// Counters of one connection (relaxed atomics, for monitoring and benchmarks).
#[derive(Debug, Default)]
pub struct ClientStats {
    /// PUBLISH packets written to the socket.
    pub published: AtomicU64,
    /// Publishes the server acknowledged with success (PUBACK).
    pub acked: AtomicU64,
    /// Publishes the server refused (PUBACK with an error reason) or that could not be
    /// encoded.
    pub refused: AtomicU64,
    /// PUBLISH packets received from the server.
    pub received: AtomicU64,
    /// Received publishes dropped because [`Incoming`] was dropped.
    pub dropped_incoming: AtomicU64,
}

/// Creates a PUBLISH to `topic` (no packet id; the client assigns it).
pub fn message(topic: &str, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Publish {
    Publish {
        dup: false,
        retain,
        qos,
        topic: ByteString::from(topic),
        packet_id: None,
        payload: payload.into(),
        properties: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Packets of either version
// ---------------------------------------------------------------------------------------------

/// What the reader decodes, whatever the version.
enum In {
    ConnAck(Result<ConnAckInfo, String>),
    Publish(Box<Publish>),
    PubAck(NonZeroU16, Option<String>),
    /// PUBREC or PUBCOMP: only valid for QoS 2 publishes, which this client never sends.
    Qos2Ack,
    PubRel(NonZeroU16),
    SubAck(NonZeroU16, Vec<SubscribeResult>),
    UnsubAck(NonZeroU16),
    PingResp,
    Disconnect(String),
    Unexpected(&'static str),
}

/// What the writer encodes, whatever the version.
enum Out {
    Publish(Box<Publish>),
    PubAck(NonZeroU16),
    PubRec(NonZeroU16),
    PubComp(NonZeroU16),
    Subscribe(NonZeroU16, Vec<Subscription>),
    Unsubscribe(NonZeroU16, Vec<String>),
    PingReq,
    Disconnect,
}

enum Codec {
    V3(v3::Codec),
    V5(v5::Codec),
}

impl Codec {
    fn new(version: Version, max_in: u32) -> Self {
        match version {
            Version::V311 => Codec::V3(v3::Codec::new(max_in)),
            Version::V5 => Codec::V5(v5::Codec::new(max_in, 0)),
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<In>, Error> {
        Ok(match self {
            Codec::V3(c) => c.decode(buf)?.map(|(p, _)| from_v3(p)),
            Codec::V5(c) => c.decode(buf)?.map(|(p, _)| from_v5(p)),
        })
    }

    fn encode(&mut self, out: Out, buf: &mut BytesMut) -> Result<(), Error> {
        match self {
            Codec::V3(c) => c.encode(to_v3(out), buf)?,
            Codec::V5(c) => c.encode(to_v5(out), buf)?,
        }
        Ok(())
    }
}

fn from_v3(p: v3::Packet) -> In {
    use v3::Packet as P;
    match p {
        P::ConnectAck(a) => In::ConnAck(
            if a.return_code == v3::ConnectAckReason::ConnectionAccepted {
                Ok(ConnAckInfo {
                    session_present: a.session_present,
                    receive_max: u16::MAX,
                    ..ConnAckInfo::default()
                })
            } else {
                Err(a.return_code.reason().to_string())
            },
        ),
        P::Publish(p) => In::Publish(p),
        P::PublishAck { packet_id } => In::PubAck(packet_id, None),
        P::PublishReceived { .. } | P::PublishComplete { .. } => In::Qos2Ack,
        P::PublishRelease { packet_id } => In::PubRel(packet_id),
        P::SubscribeAck { packet_id, status } => In::SubAck(
            packet_id,
            status
                .into_iter()
                .map(|s| match s {
                    v3::SubscribeReturnCode::Success(q) => SubscribeResult::Granted(q),
                    v3::SubscribeReturnCode::Failure => SubscribeResult::Refused(0x80),
                })
                .collect(),
        ),
        P::UnsubscribeAck { packet_id } => In::UnsubAck(packet_id),
        P::PingResponse => In::PingResp,
        P::Disconnect => In::Disconnect("DISCONNECT".into()),
        P::Connect(_) => In::Unexpected("CONNECT"),
        P::Subscribe { .. } => In::Unexpected("SUBSCRIBE"),
        P::Unsubscribe { .. } => In::Unexpected("UNSUBSCRIBE"),
        P::PingRequest => In::Unexpected("PINGREQ"),
    }
}

fn from_v5(p: v5::Packet) -> In {
    use v5::Packet as P;
    match p {
        P::ConnectAck(a) => In::ConnAck(if a.reason_code == v5::ConnectAckReason::Success {
            Ok(ConnAckInfo {
                session_present: a.session_present,
                receive_max: a.receive_max.get(),
                max_packet_size: a.max_packet_size,
                assigned_client_id: a.assigned_client_id.map(|s| s.to_string()),
                server_keepalive_secs: a.server_keepalive_sec,
            })
        } else {
            Err(match a.reason_string {
                Some(s) => format!("{:?}: {s}", a.reason_code),
                None => format!("{:?}", a.reason_code),
            })
        }),
        P::Publish(p) => In::Publish(p),
        P::PublishAck(a) => {
            let ok = matches!(
                a.reason_code,
                v5::PublishAckReason::Success | v5::PublishAckReason::NoMatchingSubscribers
            );
            In::PubAck(a.packet_id, (!ok).then(|| format!("{:?}", a.reason_code)))
        }
        P::PublishReceived(_) | P::PublishComplete(_) => In::Qos2Ack,
        P::PublishRelease(a) => In::PubRel(a.packet_id),
        P::SubscribeAck(a) => In::SubAck(
            a.packet_id,
            a.status
                .into_iter()
                .map(|s| match s {
                    v5::SubscribeAckReason::GrantedQos0 => {
                        SubscribeResult::Granted(QoS::AtMostOnce)
                    }
                    v5::SubscribeAckReason::GrantedQos1 => {
                        SubscribeResult::Granted(QoS::AtLeastOnce)
                    }
                    v5::SubscribeAckReason::GrantedQos2 => {
                        SubscribeResult::Granted(QoS::ExactlyOnce)
                    }
                    other => SubscribeResult::Refused(other as u8),
                })
                .collect(),
        ),
        P::UnsubscribeAck(a) => In::UnsubAck(a.packet_id),
        P::PingResponse => In::PingResp,
        P::Disconnect(d) => In::Disconnect(match d.reason_string {
            Some(s) => format!("DISCONNECT {:?}: {s}", d.reason_code),
            None => format!("DISCONNECT {:?}", d.reason_code),
        }),
        P::Connect(_) => In::Unexpected("CONNECT"),
        P::Subscribe(_) => In::Unexpected("SUBSCRIBE"),
        P::Unsubscribe(_) => In::Unexpected("UNSUBSCRIBE"),
        P::PingRequest => In::Unexpected("PINGREQ"),
        P::Auth(_) => In::Unexpected("AUTH"),
    }
}

fn to_v3(out: Out) -> v3::Packet {
    use v3::Packet as P;
    match out {
        Out::Publish(p) => P::Publish(p),
        Out::PubAck(packet_id) => P::PublishAck { packet_id },
        Out::PubRec(packet_id) => P::PublishReceived { packet_id },
        Out::PubComp(packet_id) => P::PublishComplete { packet_id },
        Out::Subscribe(packet_id, subs) => P::Subscribe {
            packet_id,
            topic_filters: subs
                .into_iter()
                .map(|s| (ByteString::from(s.filter), s.qos))
                .collect(),
        },
        Out::Unsubscribe(packet_id, filters) => P::Unsubscribe {
            packet_id,
            topic_filters: filters.into_iter().map(ByteString::from).collect(),
        },
        Out::PingReq => P::PingRequest,
        Out::Disconnect => P::Disconnect,
    }
}

fn ack5(packet_id: NonZeroU16) -> v5::PublishAck {
    v5::PublishAck {
        packet_id,
        reason_code: v5::PublishAckReason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

fn to_v5(out: Out) -> v5::Packet {
    use v5::Packet as P;
    match out {
        Out::Publish(p) => P::Publish(p),
        Out::PubAck(id) => P::PublishAck(ack5(id)),
        Out::PubRec(id) => P::PublishReceived(ack5(id)),
        Out::PubComp(packet_id) => P::PublishComplete(v5::PublishAck2 {
            packet_id,
            reason_code: v5::PublishAck2Reason::Success,
            properties: Vec::new(),
            reason_string: None,
        }),
        Out::Subscribe(packet_id, subs) => P::Subscribe(v5::Subscribe {
            packet_id,
            id: None,
            user_properties: Vec::new(),
            topic_filters: subs
                .into_iter()
                .map(|s| {
                    let opts = v5::SubscriptionOptions {
                        qos: s.qos,
                        no_local: s.no_local,
                        retain_as_published: false,
                        retain_handling: v5::RetainHandling::AtSubscribe,
                    };
                    (ByteString::from(s.filter), opts)
                })
                .collect(),
        }),
        Out::Unsubscribe(packet_id, filters) => P::Unsubscribe(v5::Unsubscribe {
            packet_id,
            user_properties: Vec::new(),
            topic_filters: filters.into_iter().map(ByteString::from).collect(),
        }),
        Out::PingReq => P::PingRequest,
        Out::Disconnect => P::Disconnect(v5::Disconnect::new(
            v5::DisconnectReasonCode::NormalDisconnection,
        )),
    }
}

fn connect_packet(opts: &ConnectOptions) -> Result<Vec<u8>, Error> {
    let mut buf = BytesMut::with_capacity(128);
    let client_id = ByteString::from(opts.client_id.as_str());
    let username = opts.username.as_deref().map(ByteString::from);
    match opts.version {
        Version::V311 => {
            let c = v3::Connect {
                protocol: Protocol(rmqtt_codec::types::MQTT_LEVEL_311),
                clean_session: opts.clean_start,
                keep_alive: opts.keepalive_secs,
                last_will: None,
                client_id,
                username,
                password: opts.password.clone(),
                cert: None,
            };
            v3::Codec::new(0).encode(v3::Packet::Connect(Box::new(c)), &mut buf)?;
        }
        Version::V5 => {
            let receive_max = opts.incoming_queue.clamp(1, usize::from(u16::MAX)) as u16;
            let c = v5::Connect {
                clean_start: opts.clean_start,
                keep_alive: opts.keepalive_secs,
                session_expiry_interval_secs: opts.session_expiry_secs,
                receive_max: NonZeroU16::new(receive_max),
                max_packet_size: NonZeroU32::new(opts.max_packet_size),
                client_id,
                username,
                password: opts.password.clone(),
                ..v5::Connect::default()
            };
            v5::Codec::new(0, 0).encode(v5::Packet::Connect(Box::new(c)), &mut buf)?;
        }
    }
    Ok(buf.to_vec())
}

/// An upper bound of the encoded size of a publish (fixed header, topic, packet id,
/// properties, payload).
fn publish_size_bound(p: &Publish) -> usize {
    let mut n = 5 + 2 + p.topic.len() + 2 + p.payload.len();
    if let Some(pr) = &p.properties {
        n += 4 + 5 + 2 + 3;
        n += pr.correlation_data.as_ref().map_or(0, |b| 3 + b.len());
        n += pr.content_type.as_ref().map_or(0, |s| 3 + s.len());
        n += pr.response_topic.as_ref().map_or(0, |s| 3 + s.len());
        n += pr
            .user_properties
            .iter()
            .map(|(k, v)| 5 + k.len() + v.len())
            .sum::<usize>();
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------

enum Waiter {
    Publish(Option<oneshot::Sender<Result<(), Error>>>),
    Subscribe(oneshot::Sender<Result<Vec<SubscribeResult>, Error>>),
    Unsubscribe(oneshot::Sender<Result<(), Error>>),
}

struct Pending {
    waiter: Waiter,
    /// Released (window slot freed) when the entry is removed.
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct State {
    /// Packet ids awaiting their ack; at most `window` entries, so a free id always exists.
    pending: HashMap<u16, Pending>,
    next_id: u16,
    closed: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    window: Arc<Semaphore>,
    window_size: u32,
    cancel: CancellationToken,
    ping_outstanding: AtomicBool,
    stats: ClientStats,
    max_out: u32,
    version: Version,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked mid-update; the map stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn closed_error(&self) -> Error {
        let reason = self.lock().closed.clone();
        Error::Closed(reason.unwrap_or_else(|| "connection closed".into()))
    }

    /// Takes a window slot and a free packet id for `waiter`.
    async fn register(&self, waiter: Waiter) -> Result<NonZeroU16, Error> {
        let permit = match self.window.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => return Err(self.closed_error()),
        };
        let mut st = self.lock();
        if let Some(r) = &st.closed {
            return Err(Error::Closed(r.clone()));
        }
        loop {
            st.next_id = st.next_id.wrapping_add(1);
            if let Some(id) = NonZeroU16::new(st.next_id)
                && !st.pending.contains_key(&id.get())
            {
                st.pending.insert(
                    id.get(),
                    Pending {
                        waiter,
                        _permit: permit,
                    },
                );
                return Ok(id);
            }
        }
    }

    fn take(&self, id: NonZeroU16) -> Option<Waiter> {
        self.take_pending(id).map(|p| p.waiter)
    }

    /// Removes `id` with its window slot, which is freed when the result is dropped.
    fn take_pending(&self, id: NonZeroU16) -> Option<Pending> {
        self.lock().pending.remove(&id.get())
    }

    /// Closes the connection for good: wakes every waiter with `reason`.
    fn shutdown(&self, reason: String) {
        let pending = {
            let mut st = self.lock();
            if st.closed.is_none() {
                st.closed = Some(reason.clone());
            }
            std::mem::take(&mut st.pending)
        };
        self.window.close();
        self.cancel.cancel();
        let reason = self.lock().closed.clone().unwrap_or(reason);
        for (_, p) in pending {
            let e = Error::Closed(reason.clone());
            match p.waiter {
                Waiter::Publish(Some(tx)) => drop(tx.send(Err(e))),
                Waiter::Publish(None) => {}
                Waiter::Subscribe(tx) => drop(tx.send(Err(e))),
                Waiter::Unsubscribe(tx) => drop(tx.send(Err(e))),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public handles
// ---------------------------------------------------------------------------------------------

enum Cmd {
    Packet(Out),
    Disconnect(oneshot::Sender<()>),
}

/// A connected client. Cheap to clone; the connection closes when every clone is dropped or
/// [`Client::disconnect`] is called.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    cmd: mpsc::Sender<Cmd>,
    connack: Arc<ConnAckInfo>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("version", &self.shared.version)
            .field("connack", &self.connack)
            .finish()
    }
}

/// The publishes the server sends, in order. Keep receiving: while this queue is full the
/// connection stops reading (so acknowledgements of our own publishes wait too).
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Box<Publish>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("version", &self.version)
            .finish()
    }
}

impl Incoming {
    /// The next received publish; `None` once the connection is closed and the queue drained.
    pub async fn recv(&mut self) -> Option<Publish> {
        self.rx.recv().await.map(|b| *b)
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone()
    }
}

/// Connects to `addr` (`host:port`), performs the MQTT handshake and starts the connection's
/// tasks. Must be called inside a tokio runtime.
pub async fn connect(addr: &str, opts: ConnectOptions) -> Result<(Client, Incoming), Error> {
    let limit = opts.connect_timeout;
    match tokio::time::timeout(limit, connect_inner(addr, opts)).await {
        Ok(r) => r,
        Err(_) => Err(Error::ConnectTimeout),
    }
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

async fn connect_inner(addr: &str, opts: ConnectOptions) -> Result<(Client, Incoming), Error> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (r, w): (BoxRead, BoxWrite) = match &opts.tls {
        None => {
            let (r, w) = tcp.into_split();
            (Box::new(r), Box::new(w))
        }
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from(tls.server_name.clone())
                .map_err(|_| Error::TlsName(tls.server_name.clone()))?;
            let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                .connect(name, tcp)
                .await?;
            let (r, w) = tokio::io::split(stream);
            (Box::new(r), Box::new(w))
        }
    };
    handshake(r, w, opts).await
}

async fn handshake(
    mut r: BoxRead,
    mut w: BoxWrite,
    opts: ConnectOptions,
) -> Result<(Client, Incoming), Error> {
    w.write_all(&connect_packet(&opts)?).await?;
    w.flush().await?;
    let mut codec = Codec::new(opts.version, opts.max_packet_size);
    let mut buf = BytesMut::with_capacity(1024);
    let info = loop {
        match codec.decode(&mut buf)? {
            Some(In::ConnAck(Ok(info))) => break info,
            Some(In::ConnAck(Err(reason))) => return Err(Error::Refused(reason)),
            Some(_) => return Err(Error::Protocol("a packet other than CONNACK first")),
            None => {}
        }
        if r.read_buf(&mut buf).await? == 0 {
            return Err(Error::Closed("closed by the server before CONNACK".into()));
        }
    };
    let window = u32::from(opts.max_inflight.clamp(1, info.receive_max.max(1)));
    let max_out = info
        .max_packet_size
        .map_or(opts.max_packet_size, |m| m.min(opts.max_packet_size));
    let keepalive = info.server_keepalive_secs.unwrap_or(opts.keepalive_secs);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        window: Arc::new(Semaphore::new(window as usize)),
        window_size: window,
        cancel: CancellationToken::new(),
        ping_outstanding: AtomicBool::new(false),
        stats: ClientStats::default(),
        max_out,
        version: opts.version,
    });
    let (cmd_tx, cmd_rx) = mpsc::channel(opts.command_queue.max(1));
    let (ack_tx, ack_rx) = mpsc::channel(ACK_QUEUE);
    let (in_tx, in_rx) = mpsc::channel(opts.incoming_queue.max(1));
    let out_codec = Codec::new(opts.version, opts.max_packet_size);
    tokio::spawn(reader(r, codec, buf, shared.clone(), in_tx, ack_tx));
    tokio::spawn(writer(
        w,
        out_codec,
        shared.clone(),
        cmd_rx,
        ack_rx,
        keepalive,
    ));
    Ok((
        Client {
            shared: shared.clone(),
            cmd: cmd_tx,
            connack: Arc::new(info),
        },
        Incoming { rx: in_rx, shared },
    ))
}

impl Client {
    /// What the server said in its CONNACK.
    pub fn connack(&self) -> &ConnAckInfo {
        &self.connack
    }

    /// The connection's counters.
    pub fn stats(&self) -> &ClientStats {
        &self.shared.stats
    }

    /// The protocol version of the connection.
    pub fn version(&self) -> Version {
        self.shared.version
    }

    /// The outbound in-flight window in use (ours, capped by the server's Receive Maximum).
    pub fn window(&self) -> u32 {
        self.shared.window_size
    }

    /// True once the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone()
    }

    /// Resolves once the connection is closed.
    pub async fn closed(&self) {
        self.shared.cancel.cancelled().await;
    }

    /// Queues a publish. QoS 0 returns once queued; QoS 1 first waits for a slot in the
    /// in-flight window (the PUBACK frees it) and does not wait for the PUBACK itself.
    /// QoS 2 is refused. MQTT 5 per-connection properties (topic alias, subscription ids)
    /// are removed; the packet id and DUP flag are set by the client.
    pub async fn publish(&self, msg: Publish) -> Result<(), Error> {
        self.enqueue(msg, None).await
    }

    /// Publishes and waits for the PUBACK (QoS 1); QoS 0 returns once queued.
    pub async fn publish_acked(&self, msg: Publish) -> Result<(), Error> {
        if msg.qos == QoS::AtMostOnce {
            return self.enqueue(msg, None).await;
        }
        let (tx, rx) = oneshot::channel();
        self.enqueue(msg, Some(tx)).await?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    async fn enqueue(
        &self,
        mut msg: Publish,
        waiter: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<(), Error> {
        rampart_mqtt_broker::topic::validate_name(&msg.topic).map_err(|why| {
            Error::InvalidTopic {
                topic: msg.topic.to_string(),
                why,
            }
        })?;
        msg.dup = false;
        match self.shared.version {
            Version::V311 => msg.properties = None,
            Version::V5 => {
                if let Some(p) = &mut msg.properties {
                    p.topic_alias = None;
                    p.subscription_ids.clear();
                }
            }
        }
        let size = publish_size_bound(&msg);
        if size > self.shared.max_out as usize {
            return Err(Error::TooLarge {
                size,
                max: self.shared.max_out,
            });
        }
        match msg.qos {
            QoS::AtMostOnce => msg.packet_id = None,
            QoS::AtLeastOnce => {
                msg.packet_id = Some(self.shared.register(Waiter::Publish(waiter)).await?);
            }
            QoS::ExactlyOnce => return Err(Error::Qos2Unsupported),
        }
        self.send(Out::Publish(Box::new(msg))).await
    }

    async fn send(&self, out: Out) -> Result<(), Error> {
        if self.cmd.send(Cmd::Packet(out)).await.is_err() {
            return Err(self.shared.closed_error());
        }
        Ok(())
    }

    /// Waits until every QoS 1 publish queued so far is acknowledged (or the connection
    /// closes, which is an error).
    pub async fn wait_acked(&self) -> Result<(), Error> {
        match self
            .shared
            .window
            .acquire_many(self.shared.window_size)
            .await
        {
            Ok(_all) => Ok(()),
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    /// Subscribes and waits for the SUBACK; one result per filter, in order.
    pub async fn subscribe(&self, subs: &[Subscription]) -> Result<Vec<SubscribeResult>, Error> {
        if subs.is_empty() {
            return Err(Error::NoFilters);
        }
        for s in subs {
            rampart_mqtt_broker::topic::parse_filter(&s.filter).map_err(|why| {
                Error::InvalidTopic {
                    topic: s.filter.clone(),
                    why,
                }
            })?;
        }
        let (tx, rx) = oneshot::channel();
        let id = self.shared.register(Waiter::Subscribe(tx)).await?;
        self.send(Out::Subscribe(id, subs.to_vec())).await?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    /// Unsubscribes and waits for the UNSUBACK.
    pub async fn unsubscribe(&self, filters: &[String]) -> Result<(), Error> {
        if filters.is_empty() {
            return Err(Error::NoFilters);
        }
        let (tx, rx) = oneshot::channel();
        let id = self.shared.register(Waiter::Unsubscribe(tx)).await?;
        self.send(Out::Unsubscribe(id, filters.to_vec())).await?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    /// Sends DISCONNECT after everything queued before it and closes the connection.
    /// Unacknowledged QoS 1 publishes fail with [`Error::Closed`].
    pub async fn disconnect(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Disconnect(tx)).await.is_err() {
            return Err(self.shared.closed_error());
        }
        let _ = rx.await;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Connection tasks
// ---------------------------------------------------------------------------------------------

async fn reader(
    r: BoxRead,
    codec: Codec,
    buf: BytesMut,
    shared: Arc<Shared>,
    in_tx: mpsc::Sender<Box<Publish>>,
    ack_tx: mpsc::Sender<Out>,
) {
    let reason = match read_loop(r, codec, buf, &shared, &in_tx, &ack_tx).await {
        Ok(()) => "closed".to_string(),
        Err(e) => e.to_string(),
    };
    shared.shutdown(reason);
}

async fn read_loop(
    mut r: BoxRead,
    mut codec: Codec,
    mut buf: BytesMut,
    shared: &Shared,
    in_tx: &mpsc::Sender<Box<Publish>>,
    ack_tx: &mpsc::Sender<Out>,
) -> Result<(), Error> {
    // QoS 2 publishes received and not yet released: their redeliveries are not passed on
    // twice. Bounded by the packet-id space (65,535).
    let mut qos2: HashSet<u16> = HashSet::new();
    let cancel = &shared.cancel;
    loop {
        while let Some(pkt) = codec.decode(&mut buf)? {
            match pkt {
                In::Publish(p) => {
                    shared.stats.received.fetch_add(1, Ordering::Relaxed);
                    match p.qos {
                        QoS::AtMostOnce => deliver(p, in_tx, shared).await?,
                        QoS::AtLeastOnce => {
                            let id = p.packet_id.ok_or(Error::Protocol("QoS 1 without id"))?;
                            deliver(p, in_tx, shared).await?;
                            queue_ack(ack_tx, Out::PubAck(id), cancel).await?;
                        }
                        QoS::ExactlyOnce => {
                            let id = p.packet_id.ok_or(Error::Protocol("QoS 2 without id"))?;
                            if qos2.insert(id.get()) {
                                deliver(p, in_tx, shared).await?;
                            }
                            queue_ack(ack_tx, Out::PubRec(id), cancel).await?;
                        }
                    }
                }
                In::PubRel(id) => {
                    qos2.remove(&id.get());
                    queue_ack(ack_tx, Out::PubComp(id), cancel).await?;
                }
                // Counted before the window slot is freed (`_permit` drops last), so that
                // `wait_acked` sees every ack counted.
                In::PubAck(id, refused) => match shared.take_pending(id) {
                    Some(Pending {
                        waiter: Waiter::Publish(tx),
                        _permit,
                    }) => {
                        let r = match refused {
                            None => {
                                shared.stats.acked.fetch_add(1, Ordering::Relaxed);
                                Ok(())
                            }
                            Some(why) => {
                                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                                Err(Error::PublishRefused(why))
                            }
                        };
                        if let Some(tx) = tx {
                            let _ = tx.send(r);
                        }
                    }
                    Some(_) => return Err(Error::Protocol("PUBACK for a subscription id")),
                    // A late ack after a redelivery is harmless.
                    None => {}
                },
                In::SubAck(id, results) => match shared.take(id) {
                    Some(Waiter::Subscribe(tx)) => drop(tx.send(Ok(results))),
                    Some(_) => return Err(Error::Protocol("SUBACK for a non-SUBSCRIBE id")),
                    None => return Err(Error::Protocol("SUBACK for an unknown packet id")),
                },
                In::UnsubAck(id) => match shared.take(id) {
                    Some(Waiter::Unsubscribe(tx)) => drop(tx.send(Ok(()))),
                    Some(_) => return Err(Error::Protocol("UNSUBACK for a non-UNSUBSCRIBE id")),
                    None => return Err(Error::Protocol("UNSUBACK for an unknown packet id")),
                },
                In::PingResp => shared.ping_outstanding.store(false, Ordering::Relaxed),
                In::Qos2Ack => {
                    return Err(Error::Protocol(
                        "PUBREC/PUBCOMP but this client never sends QoS 2",
                    ));
                }
                In::ConnAck(_) => return Err(Error::Protocol("a second CONNACK")),
                In::Disconnect(why) => return Err(Error::Closed(format!("server sent {why}"))),
                In::Unexpected(what) => {
                    return Err(Error::Closed(format!("server sent a {what} packet")));
                }
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            n = r.read_buf(&mut buf) => {
                if n? == 0 {
                    return Err(Error::Closed("closed by the server".into()));
                }
            }
        }
    }
}

/// Hands a publish to [`Incoming`], waiting while it is full (backpressure).
async fn deliver(
    p: Box<Publish>,
    in_tx: &mpsc::Sender<Box<Publish>>,
    shared: &Shared,
) -> Result<(), Error> {
    match in_tx.try_send(p) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            shared
                .stats
                .dropped_incoming
                .fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(mpsc::error::TrySendError::Full(p)) => {
            tokio::select! {
                _ = shared.cancel.cancelled() => Err(Error::Closed("client closed".into())),
                r = in_tx.send(p) => {
                    if r.is_err() {
                        shared.stats.dropped_incoming.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            }
        }
    }
}

async fn queue_ack(
    ack_tx: &mpsc::Sender<Out>,
    out: Out,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let closed = || Error::Closed("writer stopped".into());
    match ack_tx.try_send(out) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(closed()),
        Err(mpsc::error::TrySendError::Full(out)) => tokio::select! {
            _ = cancel.cancelled() => Err(closed()),
            r = ack_tx.send(out) => r.map_err(|_| closed()),
        },
    }
}

async fn writer(
    w: BoxWrite,
    codec: Codec,
    shared: Arc<Shared>,
    cmd_rx: mpsc::Receiver<Cmd>,
    ack_rx: mpsc::Receiver<Out>,
    keepalive: u16,
) {
    let reason = match write_loop(w, codec, &shared, cmd_rx, ack_rx, keepalive).await {
        Ok(()) => "disconnected by the client".to_string(),
        Err(e) => e.to_string(),
    };
    shared.shutdown(reason);
}

/// Encodes `out` into `buf`; a publish that cannot be encoded fails alone (its waiter gets
/// the error) rather than closing the connection.
fn encode_one(codec: &mut Codec, out: Out, buf: &mut BytesMut, shared: &Shared, n: &mut u64) {
    let mark = buf.len();
    let (is_pub, id) = match &out {
        Out::Publish(p) => (true, p.packet_id),
        _ => (false, None),
    };
    match codec.encode(out, buf) {
        Ok(()) => *n += u64::from(is_pub),
        Err(e) => {
            buf.truncate(mark);
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "mqtt client: packet not encoded");
            if let Some(id) = id
                && let Some(Waiter::Publish(Some(tx))) = shared.take(id)
            {
                let _ = tx.send(Err(e));
            }
        }
    }
}

async fn write_loop(
    mut w: BoxWrite,
    mut codec: Codec,
    shared: &Shared,
    mut cmd_rx: mpsc::Receiver<Cmd>,
    mut ack_rx: mpsc::Receiver<Out>,
    keepalive: u16,
) -> Result<(), Error> {
    let mut buf = BytesMut::with_capacity(4096);
    let period = Duration::from_secs(u64::from(keepalive.max(1)));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut publishes = 0u64;
        let mut done: Option<Option<oneshot::Sender<()>>> = None;
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return Ok(()),
            Some(out) = ack_rx.recv() => encode_one(&mut codec, out, &mut buf, shared, &mut publishes),
            cmd = cmd_rx.recv() => match cmd {
                Some(Cmd::Packet(out)) => encode_one(&mut codec, out, &mut buf, shared, &mut publishes),
                Some(Cmd::Disconnect(tx)) => done = Some(Some(tx)),
                // Every Client handle is gone: disconnect cleanly.
                None => done = Some(None),
            },
            _ = ticker.tick(), if keepalive > 0 => {
                if shared.ping_outstanding.swap(true, Ordering::Relaxed) {
                    return Err(Error::KeepAliveTimeout);
                }
                encode_one(&mut codec, Out::PingReq, &mut buf, shared, &mut publishes);
            }
        }
        // Batch whatever else is ready into the same write.
        while done.is_none() && buf.len() < WRITE_BATCH {
            if let Ok(out) = ack_rx.try_recv() {
                encode_one(&mut codec, out, &mut buf, shared, &mut publishes);
            } else {
                match cmd_rx.try_recv() {
                    Ok(Cmd::Packet(out)) => {
                        encode_one(&mut codec, out, &mut buf, shared, &mut publishes)
                    }
                    Ok(Cmd::Disconnect(tx)) => done = Some(Some(tx)),
                    Err(_) => break,
                }
            }
        }
        if done.is_some() {
            encode_one(
                &mut codec,
                Out::Disconnect,
                &mut buf,
                shared,
                &mut publishes,
            );
        }
        if !buf.is_empty() {
            match tokio::time::timeout(WRITE_STALL_TIMEOUT, w.write_all(&buf)).await {
                Ok(r) => r?,
                Err(_) => return Err(Error::Closed("write stalled".into())),
            }
            buf.clear();
            if buf.capacity() > 4 * WRITE_BATCH {
                buf = BytesMut::with_capacity(4096);
            }
            shared
                .stats
                .published
                .fetch_add(publishes, Ordering::Relaxed);
        }
        if let Some(tx) = done {
            let _ = w.shutdown().await;
            shared.shutdown("disconnected by the client".into());
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn packet_ids_skip_zero_and_ids_in_use() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let shared = Shared {
                state: Mutex::new(State::default()),
                window: Arc::new(Semaphore::new(3)),
                window_size: 3,
                cancel: CancellationToken::new(),
                ping_outstanding: AtomicBool::new(false),
                stats: ClientStats::default(),
                max_out: 1000,
                version: Version::V311,
            };
            shared.lock().next_id = u16::MAX - 1;
            let a = shared.register(Waiter::Publish(None)).await.unwrap();
            let b = shared.register(Waiter::Publish(None)).await.unwrap();
            assert_eq!((a.get(), b.get()), (u16::MAX, 1));
            shared.lock().next_id = 0;
            let c = shared.register(Waiter::Publish(None)).await.unwrap();
            assert_eq!(c.get(), 2, "1 is in use");
            // The window is full: a fourth registration waits until an ack frees a slot.
            let blocked = tokio::time::timeout(
                Duration::from_millis(20),
                shared.register(Waiter::Publish(None)),
            )
            .await;
            assert!(blocked.is_err());
            assert!(shared.take(b).is_some());
            let d = shared.register(Waiter::Publish(None)).await.unwrap();
            assert_eq!(d.get(), 3);
            shared.shutdown("test".into());
            assert!(matches!(
                shared.register(Waiter::Publish(None)).await,
                Err(Error::Closed(r)) if r == "test"
            ));
        });
    }

    #[test]
    fn connect_packets_decode_as_sent() {
        let mut o = ConnectOptions::new("dev-1");
        o.username = Some("u".into());
        o.password = Some(Bytes::from_static(b"p"));
        o.keepalive_secs = 7;
        let bytes = connect_packet(&o).unwrap();
        let (p, _) = v3::Codec::new(0)
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        let v3::Packet::Connect(c) = p else {
            panic!("not a CONNECT")
        };
        assert_eq!(
            (c.client_id.as_ref(), c.keep_alive, c.clean_session),
            ("dev-1", 7, true)
        );
        assert_eq!(c.password.as_deref(), Some(&b"p"[..]));

        o.version = Version::V5;
        o.clean_start = false;
        o.session_expiry_secs = 3600;
        let bytes = connect_packet(&o).unwrap();
        let (p, _) = v5::Codec::new(0, 0)
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        let v5::Packet::Connect(c) = p else {
            panic!("not a CONNECT")
        };
        assert_eq!(c.session_expiry_interval_secs, 3600);
        assert!(!c.clean_start);
        assert_eq!(
            c.max_packet_size.map(|m| m.get()),
            Some(DEFAULT_MAX_PACKET_SIZE)
        );
    }

    #[test]
    fn debug_redacts_the_password() {
        let mut o = ConnectOptions::new("x");
        o.password = Some(Bytes::from_static(b"hunter2"));
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
