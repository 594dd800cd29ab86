//! Transports: UDP listen, TCP listen, and TCP connect to an upstream feed with reconnect.
//!
//! Each source gets its own decoder (per UDP peer, per TCP connection), lines are bounded by
//! [`FeedConfig::max_line_bytes`], and every refused line is counted under the input's kind
//! and the decoder's reason. Nothing a sender does can crash the node or grow memory past
//! the named limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rampart_engine::Metrics;
use rampart_model::{Provenance, Report, Timestamp};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::batcher::BatcherHandle;
use crate::decoder::{DecoderFactory, FeedDecoder, Peer};
use crate::lines::{LineError, LineSplitter};

/// Bounds of a feed input.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Longest accepted line in bytes (NMEA allows 82; AVR with timestamps ~60).
    pub max_line_bytes: usize,
    /// Most concurrent TCP connections per listener.
    pub max_connections: usize,
    /// Most concurrent TCP connections from one source address; more are closed at once and
    /// counted (`reason="connections_per_peer"`).
    pub max_connections_per_peer: usize,
    /// A TCP sender silent this long is disconnected (0: never). Receivers reconnect.
    pub idle_timeout_secs: u64,
    /// Most UDP senders with decoder state; the least recently heard is forgotten first.
    pub max_udp_peers: usize,
    /// Read buffer per TCP connection in bytes.
    pub read_buffer_bytes: usize,
    /// First reconnect delay of an upstream connection, in milliseconds (doubles to the max).
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, in milliseconds.
    pub reconnect_max_ms: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            max_line_bytes: 1024,
            max_connections: 256,
            max_connections_per_peer: 16,
            idle_timeout_secs: 600,
            max_udp_peers: 1024,
            read_buffer_bytes: 16 * 1024,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
        }
    }
}

/// Everything an input needs: its kind, how to decode, where reports go, what to count.
#[derive(Clone)]
pub struct FeedInput {
    /// Kind, e.g. `ais-udp`; the source name in provenance and metrics.
    pub kind: String,
    /// Makes a decoder per source.
    pub factory: DecoderFactory,
    /// Where decoded reports go.
    pub batcher: BatcherHandle,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Bounds.
    pub cfg: FeedConfig,
}

/// One source's decoding state: a line splitter and a decoder.
pub(crate) struct Source {
    peer: Peer,
    provenance: Provenance,
    splitter: LineSplitter,
    decoder: Box<dyn FeedDecoder>,
    last_heard: Timestamp,
}

impl Source {
    pub(crate) fn new(input: &FeedInput, peer: Peer) -> Self {
        let identity = match peer.addr {
            Some(a) => a.to_string(),
            None => "file".to_string(),
        };
        Source {
            provenance: Provenance::new(&input.kind, &identity),
            splitter: LineSplitter::new(input.cfg.max_line_bytes),
            decoder: (input.factory)(&peer),
            peer,
            last_heard: Timestamp::now(),
        }
    }

    /// Decodes `data` (and, for datagrams, the unterminated last line), counting refusals.
    pub(crate) fn feed(
        &mut self,
        input: &FeedInput,
        data: &[u8],
        end_of_message: bool,
        out: &mut Vec<Report>,
    ) {
        let now = Timestamp::now();
        self.last_heard = now;
        let Source {
            splitter,
            decoder,
            provenance,
            peer,
            ..
        } = self;
        let start = out.len();
        let refuse = |reason: &str, message: &str| {
            input.metrics.reject(&input.kind, reason, 1);
            tracing::debug!(kind = %input.kind, peer = ?peer.addr, reason, message, "feed line refused");
        };
        let mut on_line = |line: &[u8]| {
            if let Err(e) = decoder.line(line, now, out) {
                refuse(e.reason, &e.message);
            }
        };
        let mut errors = Vec::new();
        splitter.push(data, &mut on_line, |e| errors.push(e));
        if end_of_message {
            splitter.finish(&mut on_line);
        }
        for LineError::TooLong { max } in errors {
            refuse("line_too_long", &format!("line longer than {max} bytes"));
        }
        for r in &mut out[start..] {
            r.provenance = provenance.clone();
        }
    }
}

impl Source {
    /// Emits what the decoder holds back: everything at the end of the source (`end`), or
    /// what has waited long enough while the source is idle. Refusals are counted.
    pub(crate) fn flush(&mut self, input: &FeedInput, end: bool, out: &mut Vec<Report>) {
        let now = Timestamp::now();
        let start = out.len();
        if end {
            let Source {
                splitter, decoder, ..
            } = self;
            let mut on_line = |line: &[u8]| {
                if let Err(e) = decoder.line(line, now, out) {
                    input.metrics.reject(&input.kind, e.reason, 1);
                }
            };
            splitter.finish(&mut on_line);
        }
        if let Err(e) = self.decoder.flush(now, end, out) {
            input.metrics.reject(&input.kind, e.reason, 1);
            tracing::debug!(kind = %input.kind, peer = ?self.peer.addr, reason = e.reason, message = %e.message, "feed data refused");
        }
        for r in &mut out[start..] {
            r.provenance = self.provenance.clone();
        }
    }

    /// The time `line` carries, if its format has one (the line end is ignored).
    pub(crate) fn line_time(&mut self, line: &[u8]) -> Option<Timestamp> {
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        self.decoder.line_time(trimmed)
    }
}

/// Checks a datagram before it is decoded (e.g. a signature check, see `rampart-pki`):
/// returns the byte range of the datagram to decode, or the refusal reason for metrics.
pub type DatagramGate =
    Arc<dyn Fn(&[u8]) -> Result<std::ops::Range<usize>, &'static str> + Send + Sync>;

/// Serves a UDP socket: every datagram is one or more lines from its sender.
pub async fn run_udp_listener(socket: UdpSocket, input: FeedInput) {
    run_udp_listener_gated(socket, input, None).await;
}

/// [`run_udp_listener`] with every datagram passed through `gate` first; refused datagrams
/// are counted in `rampart_reports_rejected_total{source, reason}` and dropped.
pub async fn run_udp_listener_gated(
    socket: UdpSocket,
    input: FeedInput,
    gate: Option<DatagramGate>,
) {
    let mut sources: HashMap<SocketAddr, Source> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut idle = tokio::time::interval(IDLE_FLUSH);
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = idle.tick() => {
                // Senders that went quiet still get their held-back data out.
                let mut out = Vec::new();
                for source in sources.values_mut() {
                    source.flush(&input, false, &mut out);
                }
                let count = out.len() as u64;
                if !input.batcher.try_send(out) {
                    input.metrics.reject(&input.kind, "ingest_queue_full", count);
                }
                continue;
            }
        };
        let (n, from) = match received {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(kind = %input.kind, error = %e, "udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let datagram = buf.get(..n).unwrap_or_default();
        let range = match &gate {
            None => 0..n,
            Some(g) => match g(datagram) {
                Ok(r) if r.start <= r.end && r.end <= n => r,
                Ok(_) => 0..0,
                Err(reason) => {
                    input.metrics.reject(&input.kind, reason, 1);
                    tracing::debug!(kind = %input.kind, peer = %from, reason, "datagram refused");
                    continue;
                }
            },
        };
        if !sources.contains_key(&from) && sources.len() >= input.cfg.max_udp_peers {
            // Forget the sender heard least recently: bounded state, newest senders win.
            if let Some(oldest) = sources
                .iter()
                .min_by_key(|(_, s)| s.last_heard)
                .map(|(a, _)| *a)
            {
                sources.remove(&oldest);
            }
        }
        let source = sources.entry(from).or_insert_with(|| {
            Source::new(
                &input,
                Peer {
                    kind: input.kind.clone(),
                    addr: Some(from),
                },
            )
        });
        let mut out = Vec::new();
        source.feed(&input, buf.get(range).unwrap_or_default(), true, &mut out);
        let count = out.len() as u64;
        if !input.batcher.try_send(out) {
            input
                .metrics
                .reject(&input.kind, "ingest_queue_full", count);
        }
    }
}

/// Serves a TCP listener: each connection is a stream of lines from one source.
pub async fn run_tcp_listener(listener: TcpListener, input: FeedInput) {
    let permits = Arc::new(Semaphore::new(input.cfg.max_connections.max(1)));
    let peers = rampart_engine::PeerLimiter::new(
        input.cfg.max_connections_per_peer,
        input.cfg.max_connections,
    );
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, addr)) => {
                let slot = match peers.admit(addr.ip()) {
                    Ok(slot) => slot,
                    Err(why) => {
                        input.metrics.reject(&input.kind, why.reason(), 1);
                        tracing::debug!(kind = %input.kind, peer = %addr, reason = why.reason(), "connection refused");
                        continue;
                    }
                };
                let input = input.clone();
                tokio::spawn(async move {
                    let gauge = input.metrics.connection_gauge(&input.kind);
                    gauge.inc();
                    read_stream(stream, addr, &input).await;
                    gauge.dec();
                    drop((permit, slot));
                });
            }
            Err(e) => {
                tracing::warn!(kind = %input.kind, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connects to an upstream feed and keeps reconnecting with exponential backoff.
pub async fn run_tcp_connect(addr: String, input: FeedInput) {
    let min = Duration::from_millis(input.cfg.reconnect_min_ms.max(10));
    let max = Duration::from_millis(input.cfg.reconnect_max_ms.max(input.cfg.reconnect_min_ms));
    let mut delay = min;
    loop {
        match TcpStream::connect(&addr).await {
            Ok(stream) => {
                let peer = stream.peer_addr().ok();
                tracing::info!(kind = %input.kind, upstream = %addr, "connected to upstream feed");
                let gauge = input.metrics.connection_gauge(&input.kind);
                gauge.inc();
                let healthy = match peer {
                    Some(p) => read_stream(stream, p, &input).await,
                    None => false,
                };
                gauge.dec();
                if healthy {
                    delay = min;
                }
                tracing::warn!(kind = %input.kind, upstream = %addr, retry_ms = delay.as_millis() as u64, "upstream feed closed; reconnecting");
            }
            Err(e) => {
                tracing::warn!(kind = %input.kind, upstream = %addr, error = %e, retry_ms = delay.as_millis() as u64, "cannot reach upstream feed");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max);
    }
}

/// Reads lines from one TCP stream until it ends. Returns true if any data arrived (so the
/// caller can reset its backoff).
async fn read_stream(mut stream: TcpStream, addr: SocketAddr, input: &FeedInput) -> bool {
    let mut source = Source::new(
        input,
        Peer {
            kind: input.kind.clone(),
            addr: Some(addr),
        },
    );
    let mut buf = vec![0u8; input.cfg.read_buffer_bytes.max(512)];
    let mut any = false;
    let idle_limit =
        (input.cfg.idle_timeout_secs > 0).then(|| Duration::from_secs(input.cfg.idle_timeout_secs));
    let mut last_data = tokio::time::Instant::now();
    loop {
        let n = match tokio::time::timeout(IDLE_FLUSH, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => {
                last_data = tokio::time::Instant::now();
                n
            }
            Err(_) => {
                if idle_limit.is_some_and(|l| last_data.elapsed() >= l) {
                    input.metrics.reject(&input.kind, "idle_timeout", 1);
                    tracing::debug!(kind = %input.kind, peer = %addr, "idle sender disconnected");
                    break;
                }
                // Idle: a quiet sender still gets its held-back data out.
                let mut out = Vec::new();
                source.flush(input, false, &mut out);
                if !input.batcher.send(out).await {
                    break;
                }
                continue;
            }
        };
        any = true;
        let mut out = Vec::new();
        source.feed(input, buf.get(..n).unwrap_or_default(), false, &mut out);
        // Waiting here is the backpressure: a sender faster than the disk is slowed, not dropped.
        if !input.batcher.send(out).await {
            break;
        }
    }
    let mut out = Vec::new();
    source.flush(input, true, &mut out);
    input.batcher.send(out).await;
    any
}

/// How often idle sources are asked for data they hold back (an NMEA epoch whose receiver
/// went quiet is emitted once it is older than the epoch timeout).
const IDLE_FLUSH: Duration = Duration::from_millis(500);
