//! MQTT load generator: the issue's broker scenarios against any broker on a loopback address
//! (Rampart's `mqtt` listener, Mosquitto, …), so `scripts/bench-mqtt.sh` drives both with the
//! same code in one run.
//!
//! - `mqtt-qos0` / `mqtt-qos1`: 10 publishers (64-byte payloads, topics `bench/{run}/{i}`)
//!   publish open loop, as fast as the broker takes them (QoS 1 pipelined within an
//!   in-flight window), while one subscriber on `bench/#` at the same QoS counts what is
//!   delivered. Deliveries are counted **at the subscriber**; after the sending phase a drain
//!   waits for stragglers, then loss = sent − received. The backlog (sent − received) is
//!   sampled every second: its final value and its growth rate say whether the broker keeps
//!   up or queues. Accepted/s (QoS 1: acknowledged/s) and delivered/s are steady-state rates,
//!   slopes of the per-second counts from the second second on: a QoS 0 "write" only reaches
//!   the kernel's socket buffer, and the first seconds fill several MB of those without the
//!   broker reading anything. Whole-phase averages are printed too.
//! - `mqtt-latency`: the same at a fixed offered rate (20,000 msg/s in total); every payload
//!   carries its send instant, the subscriber records publish-to-delivery latency (p50/p99).
//! - `mqtt-idle`: 10,000 connections each send CONNECT and one SUBSCRIBE, then nothing; the
//!   server's VmRSS before and after gives its memory per idle connection.
//!
//! Every run prints a human summary line and a JSON line (`MQTT_RESULT {...}`) besides the
//! usual figures table. Every loop is bounded in count and time; only loopback targets are
//! accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use rampart_edge_mqtt::client::{self, Client, ConnectOptions, Subscription, Version};
use rmqtt_codec::types::QoS;
use tokio_util::codec::{Decoder, Encoder};

use crate::Figures;
use crate::hist::Hist;
use crate::tak::tree_cpu_secs;

/// Marks this generator's payloads (first 8 bytes), so foreign traffic is not counted.
const MAGIC: u64 = 0x5241_4d50_4d51_5454; // "RAMPMQTT"
/// Bytes of the payload header: magic, run tag, publisher, sequence number, send instant.
const HEADER: usize = 8 + 4 + 4 + 8 + 8;
/// Received publishes the subscriber's client may buffer.
const SUB_QUEUE: usize = 16 * 1024;
/// Idle connections opened concurrently.
const CONNECT_CONCURRENCY: usize = 200;
/// Most messages a paced publisher sends at once when behind its schedule.
const MAX_CATCH_UP: u64 = 64;
/// The drain ends once nothing arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_secs(2);
/// Keepalive of every connection: long enough that no PINGREQ falls into a measurement.
const KEEPALIVE_SECS: u16 = 600;

/// Settings of the publish/subscribe scenarios.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The broker (loopback only).
    pub target: SocketAddr,
    /// Protocol version of every connection.
    pub version: Version,
    /// Publishing connections.
    pub publishers: usize,
    /// Payload bytes per message (at least the 32-byte header).
    pub payload: usize,
    /// Durable mode: publish telemetry on `rampart/v1/{device}/telemetry` (JSON, about 100
    /// bytes) instead of `bench/...`, so each QoS 1 publish is stored before its PUBACK.
    pub device: Option<String>,
    /// QoS of the publishes and of the subscription.
    pub qos: QoS,
    /// Length of the sending phase.
    pub seconds: f64,
    /// Aggregate offered rate, msg/s; `None` publishes open loop.
    pub rate: Option<f64>,
    /// QoS 1 in-flight window per publisher.
    pub inflight: u16,
    /// Longest wait for stragglers after the sending phase.
    pub drain_max: Duration,
    /// The server's PID, for its CPU time and memory.
    pub server_pid: Option<u32>,
    /// Label in the figures' title (`rampart`, `mosquitto`, …).
    pub label: String,
    /// Credentials for every connection (a broker that requires them).
    pub username: Option<String>,
    /// Password for every connection.
    pub password: Option<String>,
}

/// Settings of the idle-connections scenario.
#[derive(Clone, Debug)]
pub struct IdleConfig {
    /// The broker (loopback only).
    pub target: SocketAddr,
    /// Connections to open.
    pub connections: usize,
    /// Wait after the last connection before measuring.
    pub settle: Duration,
    /// The server's PID (required for the memory figures).
    pub server_pid: Option<u32>,
    /// Label in the figures' title.
    pub label: String,
    /// Credentials for every connection.
    pub username: Option<String>,
    /// Password for every connection.
    pub password: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------------------------

/// VmRSS of one process, in bytes.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn self_cpu_secs() -> f64 {
    tree_cpu_secs(std::process::id())
}

fn check_loopback(target: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        target.ip().is_loopback(),
        "the MQTT load generator only targets loopback addresses, not {target}"
    );
    Ok(())
}

/// A per-run tag in payloads and client ids, so earlier runs' traffic is never counted.
fn run_tag() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

fn options(
    id: String,
    cfg_version: Version,
    user: &Option<String>,
    pass: &Option<String>,
) -> ConnectOptions {
    let mut o = ConnectOptions::new(id);
    o.version = cfg_version;
    o.keepalive_secs = KEEPALIVE_SECS;
    o.username = user.clone();
    o.password = pass.clone().map(bytes::Bytes::from);
    o.tls = TLS.get().cloned().flatten();
    o
}

/// Client TLS for every connection of the run (mutual TLS on `mqtts`), set once from
/// `RAMPART_BENCH_MQTT_TLS_DIR` (a node's PKI directory) and `RAMPART_BENCH_MQTT_TLS_NAME`
/// (a certificate issued there, e.g. `rampart pki issue device bench`).
static TLS: std::sync::OnceLock<Option<client::TlsOptions>> = std::sync::OnceLock::new();

fn init_tls() -> anyhow::Result<()> {
    let dir: Option<std::path::PathBuf> = env(&["RAMPART_BENCH_MQTT_TLS_DIR"])?;
    let tls = match dir {
        None => None,
        Some(dir) => {
            let name: String =
                env(&["RAMPART_BENCH_MQTT_TLS_NAME"])?.unwrap_or_else(|| "bench".to_string());
            let issued = dir.join("issued").join(&name);
            let cfg = rampart_pki::client_config(
                &dir.join("ca.crt"),
                Some((
                    &issued.join(format!("{name}.crt")),
                    &issued.join(format!("{name}.key")),
                )),
            )
            .map_err(|e| anyhow::anyhow!("client TLS from {}: {e}", dir.display()))?;
            Some(client::TlsOptions {
                config: Arc::new(cfg),
                server_name: "localhost".to_string(),
            })
        }
    };
    let _ = TLS.set(tls);
    Ok(())
}

/// Least-squares slope of `(x, y)` points.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in points {
        num += (x - mx) * (y - my);
        den += (x - mx) * (x - mx);
    }
    if den == 0.0 { 0.0 } else { num / den }
}

// ---------------------------------------------------------------------------------------------
// Publish / subscribe scenarios
// ---------------------------------------------------------------------------------------------

/// What the subscriber saw.
#[derive(Default)]
struct SubResult {
    hist: Option<Hist>,
    /// Messages whose sequence number was not above the previous one of their publisher.
    out_of_order: u64,
    foreign: u64,
    close_reason: Option<String>,
}

/// Reads the hex-encoded header of a durable-mode JSON payload (`"h":"<64 hex>"`).
fn json_header(b: &[u8], out: &mut [u8; HEADER]) -> Option<()> {
    let key = b"\"h\":\"";
    let at = b.windows(key.len()).position(|w| w == key)? + key.len();
    let hex = b.get(at..at + 2 * HEADER)?;
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(())
}

async fn subscriber(
    mut incoming: client::Incoming,
    tag: u32,
    publishers: usize,
    base: Instant,
    received: Arc<AtomicU64>,
) -> SubResult {
    let mut hist = Hist::new();
    let mut last = vec![u64::MAX; publishers];
    let mut r = SubResult::default();
    // Ends when the connection closes (the run disconnects it after the drain).
    while let Some(p) = incoming.recv().await {
        let b = &p.payload[..];
        // Durable mode carries the header hex-encoded in a JSON telemetry object.
        let mut unhexed = [0u8; HEADER];
        let h: &[u8] = if b.first() == Some(&b'{') {
            match json_header(b, &mut unhexed) {
                Some(()) => &unhexed,
                None => {
                    r.foreign += 1;
                    continue;
                }
            }
        } else {
            match b.get(..HEADER) {
                Some(h) => h,
                None => {
                    r.foreign += 1;
                    continue;
                }
            }
        };
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[i..i + 8]);
            u64::from_be_bytes(a)
        };
        let mut t = [0u8; 4];
        t.copy_from_slice(&h[8..12]);
        let mut pb = [0u8; 4];
        pb.copy_from_slice(&h[12..16]);
        let publisher = u32::from_be_bytes(pb) as usize;
        if u64_at(0) != MAGIC || u32::from_be_bytes(t) != tag || publisher >= publishers {
            r.foreign += 1;
            continue;
        }
        let seq = u64_at(16);
        let sent_us = u64_at(24);
        let now_us = base.elapsed().as_micros() as u64;
        hist.record(now_us.saturating_sub(sent_us));
        if last[publisher] != u64::MAX && seq <= last[publisher] {
            r.out_of_order += 1;
        }
        last[publisher] = seq;
        received.fetch_add(1, Ordering::Relaxed);
    }
    r.close_reason = incoming.close_reason();
    r.hist = Some(hist);
    r
}

#[allow(clippy::too_many_arguments)]
async fn publisher(
    client: Client,
    index: usize,
    tag: u32,
    cfg: LoadConfig,
    base: Instant,
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
) {
    let topic = bytestring::ByteString::from(match &cfg.device {
        Some(d) => format!("rampart/v1/{d}/telemetry"),
        None => format!("bench/{tag:08x}/{index}"),
    });
    let payload_len = cfg.payload.max(HEADER);
    let interval = cfg
        .rate
        .map(|r| Duration::from_secs_f64(cfg.publishers as f64 / r.max(1e-3)));
    let started = tokio::time::Instant::now();
    let mut seq: u64 = 0;
    let mut buf = BytesMut::with_capacity(payload_len * 256);
    while !stop.load(Ordering::Relaxed) {
        // Paced: wait for this message's slot; never more than MAX_CATCH_UP behind.
        if let Some(iv) = interval {
            let due = started + iv.mul_f64(seq as f64);
            let now = tokio::time::Instant::now();
            if due > now {
                tokio::time::sleep_until(due).await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            } else if now.duration_since(due) > iv.mul_f64(MAX_CATCH_UP as f64) {
                // Far behind: skip the schedule forward rather than bursting.
                let behind = (now.duration_since(due).as_secs_f64() / iv.as_secs_f64()) as u64;
                seq += behind.saturating_sub(MAX_CATCH_UP);
            }
        }
        if buf.capacity() < payload_len {
            buf.reserve(payload_len * 256);
        }
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(&MAGIC.to_be_bytes());
        header[8..12].copy_from_slice(&tag.to_be_bytes());
        header[12..16].copy_from_slice(&(index as u32).to_be_bytes());
        header[16..24].copy_from_slice(&seq.to_be_bytes());
        header[24..32].copy_from_slice(&(base.elapsed().as_micros() as u64).to_be_bytes());
        match &cfg.device {
            Some(d) => {
                // A telemetry report of entity `{device}.{index}`, durable before its PUBACK.
                let hex: String = header.iter().map(|b| format!("{b:02x}")).collect();
                buf.put_slice(
                    format!(r#"{{"uid":"{d}.{index}","lat":59.3,"lon":18.1,"h":"{hex}"}}"#)
                        .as_bytes(),
                );
            }
            None => {
                buf.put_slice(&header);
                buf.put_bytes(b'.', payload_len - HEADER);
            }
        }
        let payload = buf.split().freeze();
        let msg = rmqtt_codec::types::Publish {
            dup: false,
            retain: false,
            qos: cfg.qos,
            topic: topic.clone(),
            packet_id: None,
            payload,
            properties: None,
        };
        if let Err(e) = client.publish(msg).await {
            errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("bench publisher {index} stopped: {e}");
            return;
        }
        seq += 1;
    }
}

fn sent_total(pubs: &[Client]) -> u64 {
    pubs.iter()
        .map(|c| c.stats().published.load(Ordering::Relaxed))
        .sum()
}

fn acked_total(pubs: &[Client]) -> u64 {
    pubs.iter()
        .map(|c| c.stats().acked.load(Ordering::Relaxed))
        .sum()
}

/// Runs `mqtt-qos0`, `mqtt-qos1` or `mqtt-latency` (per `cfg`), returning its figures.
pub async fn load(name: &str, cfg: &LoadConfig) -> anyhow::Result<Figures> {
    check_loopback(cfg.target)?;
    let addr = cfg.target.to_string();
    let tag = run_tag();
    let base = Instant::now();

    // The subscriber first, so that nothing is published before it listens.
    let mut so = options(
        format!("rb-{tag:08x}-sub"),
        cfg.version,
        &cfg.username,
        &cfg.password,
    );
    so.incoming_queue = SUB_QUEUE;
    let (sub, incoming) = client::connect(&addr, so)
        .await
        .map_err(|e| anyhow::anyhow!("subscriber cannot connect to {addr}: {e}"))?;
    let filter = match &cfg.device {
        Some(d) => format!("rampart/v1/{d}/telemetry"),
        None => "bench/#".to_string(),
    };
    let granted = sub
        .subscribe(&[Subscription::new(&filter, cfg.qos)])
        .await
        .map_err(|e| anyhow::anyhow!("subscribe: {e}"))?;
    anyhow::ensure!(
        granted == vec![client::SubscribeResult::Granted(cfg.qos)],
        "subscription to {filter} not granted at {:?}: {granted:?}",
        cfg.qos
    );
    let received = Arc::new(AtomicU64::new(0));
    let sub_task = tokio::spawn(subscriber(
        incoming,
        tag,
        cfg.publishers,
        base,
        received.clone(),
    ));

    let mut pubs = Vec::with_capacity(cfg.publishers);
    for i in 0..cfg.publishers {
        let mut o = options(
            format!("rb-{tag:08x}-pub-{i}"),
            cfg.version,
            &cfg.username,
            &cfg.password,
        );
        o.max_inflight = cfg.inflight;
        let (c, _incoming) = client::connect(&addr, o)
            .await
            .map_err(|e| anyhow::anyhow!("publisher {i} cannot connect to {addr}: {e}"))?;
        pubs.push(c);
    }
    let server_cpu0 = cfg.server_pid.map(tree_cpu_secs);
    let self_cpu0 = self_cpu_secs();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in pubs.iter().enumerate() {
        tasks.push(tokio::spawn(publisher(
            c.clone(),
            i,
            tag,
            cfg.clone(),
            base,
            stop.clone(),
            errors.clone(),
        )));
    }

    // Sample the counters every second of the sending phase: `(t, sent, acked, received)`.
    let mut samples: Vec<(f64, f64, f64, f64)> = Vec::new();
    let end = started + Duration::from_secs_f64(cfg.seconds);
    let mut next = started + Duration::from_secs(1);
    while next <= end {
        tokio::time::sleep_until(next.into()).await;
        samples.push((
            started.elapsed().as_secs_f64(),
            sent_total(&pubs) as f64,
            acked_total(&pubs) as f64,
            received.load(Ordering::Relaxed) as f64,
        ));
        next += Duration::from_secs(1);
    }
    tokio::time::sleep_until(end.into()).await;
    let send_secs = started.elapsed().as_secs_f64();
    let sent_in_phase = sent_total(&pubs);
    let acked_in_phase = acked_total(&pubs);
    let received_in_phase = received.load(Ordering::Relaxed);
    let server_cpu = cfg
        .server_pid
        .zip(server_cpu0)
        .map(|(pid, c0)| (tree_cpu_secs(pid) - c0) / send_secs);
    let self_cpu = (self_cpu_secs() - self_cpu0) / send_secs;
    let server_rss = cfg.server_pid.and_then(rss_of);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    // Everything queued in the clients goes out; QoS 1 waits for its acks (bounded).
    if cfg.qos != QoS::AtMostOnce {
        for c in &pubs {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.wait_acked()).await;
        }
    }
    let drain_start = Instant::now();
    let mut last = received.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while drain_start.elapsed() < cfg.drain_max {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = received.load(Ordering::Relaxed);
        if now >= sent_total(&pubs) && now > 0 {
            break;
        }
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= DRAIN_QUIET {
            break;
        }
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let sent = sent_total(&pubs);
    let acked = acked_total(&pubs);
    for c in &pubs {
        let _ = c.disconnect().await;
    }
    let _ = sub.disconnect().await;
    let sub_result = sub_task.await?;
    let got = received.load(Ordering::Relaxed);
    let hist = sub_result.hist.unwrap_or_else(Hist::new);

    let lag_end = sent_in_phase as f64 - received_in_phase as f64;
    let written_rate = sent_in_phase as f64 / send_secs;
    let whole_delivered = received_in_phase as f64 / send_secs;
    let whole_accepted = if cfg.qos == QoS::AtMostOnce {
        written_rate
    } else {
        acked_in_phase as f64 / send_secs
    };
    // Steady state: slopes from the second second on. This leaves out the warm-up and the
    // first fill of the kernel's socket buffers, which a QoS 0 publisher "writes" without the
    // broker having read it (several MB per connection).
    let steady = samples.get(1..).unwrap_or(&[]);
    let series = |f: fn(&(f64, f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        steady.iter().map(|s| (s.0, f(s))).collect()
    };
    let enough = steady.len() >= 3;
    let accepted_rate = if !enough {
        whole_accepted
    } else if cfg.qos == QoS::AtMostOnce {
        slope(&series(|s| s.1))
    } else {
        slope(&series(|s| s.2))
    };
    let delivered_rate = if enough {
        slope(&series(|s| s.3))
    } else {
        whole_delivered
    };
    let growth = slope(&series(|s| s.1 - s.3));
    let grows = growth > (0.01 * accepted_rate).max(100.0);

    let mut f = Figures::new(&format!("{name} ({})", cfg.label));
    f.push("publishers", cfg.publishers as f64, "");
    f.push("payload", cfg.payload.max(HEADER) as f64, "bytes");
    f.push("qos", f64::from(cfg.qos.value()), "");
    if let Some(r) = cfg.rate {
        f.push("offered rate", r, "msg/s");
    }
    f.push("sending phase", send_secs, "s");
    f.push("sent (written to the socket)", sent as f64, "msgs");
    if cfg.qos != QoS::AtMostOnce {
        f.push("acknowledged", acked as f64, "msgs");
    }
    f.push(
        if cfg.qos == QoS::AtMostOnce {
            "accepted/s"
        } else {
            "acknowledged/s"
        },
        accepted_rate,
        "msg/s",
    );
    f.push("delivered/s (at the subscriber)", delivered_rate, "msg/s");
    f.push(
        "written/s, whole phase (incl. socket buffers)",
        written_rate,
        "msg/s",
    );
    if cfg.qos != QoS::AtMostOnce {
        f.push("acknowledged/s, whole phase", whole_accepted, "msg/s");
    }
    f.push("delivered/s, whole phase", whole_delivered, "msg/s");
    f.push("backlog at end of sending", lag_end, "msgs");
    f.push(
        "backlog at end of sending (time)",
        if delivered_rate > 0.0 {
            lag_end / delivered_rate
        } else {
            f64::NAN
        },
        "s",
    );
    f.push("backlog growth", growth, "msg/s");
    f.push("backlog grows", if grows { 1.0 } else { 0.0 }, "");
    f.push("drain", drain_secs, "s");
    f.push("received after drain", got as f64, "msgs");
    f.push("lost (sent - received)", sent as f64 - got as f64, "msgs");
    f.push(
        "lost",
        if sent > 0 {
            100.0 * (sent as f64 - got as f64) / sent as f64
        } else {
            0.0
        },
        "%",
    );
    f.push(
        "out of order or duplicate",
        sub_result.out_of_order as f64,
        "msgs",
    );
    f.push("latency p50", hist.quantile_ms(0.50), "ms");
    f.push("latency p99", hist.quantile_ms(0.99), "ms");
    f.push("latency max", hist.max_us as f64 / 1000.0, "ms");
    f.push(
        "publisher errors",
        errors.load(Ordering::Relaxed) as f64,
        "",
    );
    if let Some(c) = server_cpu {
        f.push("server CPU", c, "cores");
    }
    if let Some(r) = server_rss {
        f.push("server RSS", r as f64 / (1024.0 * 1024.0), "MiB");
    }
    f.push("load generator CPU", self_cpu, "cores");
    if let Some(why) = sub_result
        .close_reason
        .filter(|w| !w.contains("by the client"))
    {
        eprintln!("bench subscriber connection closed: {why}");
        f.push("subscriber disconnected", 1.0, "");
    }
    let human = format!(
        "{name} ({label}): {what} {accepted_rate:.0}/s, delivered {delivered_rate:.0}/s, \
         lost {lost:.2}%, backlog {lag_end:.0} msgs ({grow}), p50 {p50:.2} ms, p99 {p99:.2} ms",
        label = cfg.label,
        what = if cfg.qos == QoS::AtMostOnce {
            "accepted"
        } else {
            "acknowledged"
        },
        lost = if sent > 0 {
            100.0 * (sent as f64 - got as f64) / sent as f64
        } else {
            0.0
        },
        grow = if grows { "growing" } else { "not growing" },
        p50 = hist.quantile_ms(0.5),
        p99 = hist.quantile_ms(0.99),
    );
    print_result(name, &cfg.label, &f, &human);
    Ok(f)
}

/// Prints the human line and the machine-readable `MQTT_RESULT {json}` line.
fn print_result(name: &str, label: &str, f: &Figures, human: &str) {
    let mut map = serde_json::Map::new();
    map.insert("bench".into(), name.into());
    map.insert("label".into(), label.into());
    for (k, v, _) in &f.rows {
        let key: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .split('_')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        let value = serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into);
        map.insert(key, value);
    }
    println!("{human}");
    println!("MQTT_RESULT {}", serde_json::Value::Object(map));
}

// ---------------------------------------------------------------------------------------------
// Idle connections
// ---------------------------------------------------------------------------------------------

/// CONNECT and SUBSCRIBE of idle connection `i`, MQTT 3.1.1.
fn idle_packets(
    tag: u32,
    i: usize,
    user: &Option<String>,
    pass: &Option<String>,
) -> anyhow::Result<BytesMut> {
    use rmqtt_codec::v3;
    let mut buf = BytesMut::with_capacity(128);
    let mut codec = v3::Codec::new(0);
    let connect = v3::Connect {
        protocol: rmqtt_codec::types::Protocol(rmqtt_codec::types::MQTT_LEVEL_311),
        clean_session: true,
        keep_alive: KEEPALIVE_SECS,
        last_will: None,
        client_id: format!("rb-{tag:08x}-idle-{i}").into(),
        username: user.as_deref().map(Into::into),
        password: pass.clone().map(bytes::Bytes::from),
        cert: None,
    };
    codec.encode(v3::Packet::Connect(Box::new(connect)), &mut buf)?;
    let sub = v3::Packet::Subscribe {
        packet_id: std::num::NonZeroU16::MIN,
        topic_filters: vec![(format!("bench/idle/{tag:08x}/{i}").into(), QoS::AtMostOnce)],
    };
    codec.encode(sub, &mut buf)?;
    Ok(buf)
}

/// Opens one idle connection: CONNECT, SUBSCRIBE, and waits for CONNACK and SUBACK.
async fn open_idle(target: SocketAddr, packets: BytesMut) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    s.write_all(&packets).await?;
    let mut codec = rmqtt_codec::v3::Codec::new(4096);
    let mut buf = BytesMut::with_capacity(64);
    let (mut connack, mut suback) = (false, false);
    while !(connack && suback) {
        while let Some((p, _)) = codec.decode(&mut buf)? {
            match p {
                rmqtt_codec::v3::Packet::ConnectAck(a) => {
                    anyhow::ensure!(
                        a.return_code == rmqtt_codec::v3::ConnectAckReason::ConnectionAccepted,
                        "connection refused: {}",
                        a.return_code.reason()
                    );
                    connack = true;
                }
                rmqtt_codec::v3::Packet::SubscribeAck { .. } => suback = true,
                _ => {}
            }
        }
        if connack && suback {
            break;
        }
        anyhow::ensure!(s.read_buf(&mut buf).await? > 0, "closed by the server");
    }
    Ok(s)
}

/// Runs the idle scenario: many connections, each CONNECT + one SUBSCRIBE, then nothing.
pub async fn idle(cfg: &IdleConfig) -> anyhow::Result<Figures> {
    check_loopback(cfg.target)?;
    let tag = run_tag();
    let rss0 = cfg.server_pid.and_then(rss_of);
    let sem = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        let permit = sem.clone().acquire_owned().await?;
        let packets = idle_packets(tag, i, &cfg.username, &cfg.password)?;
        let (target, failed, first_error) = (cfg.target, failed.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(30), open_idle(target, packets)).await;
            drop(permit);
            match r {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    let mut fe = first_error.lock().unwrap_or_else(|e| e.into_inner());
                    fe.get_or_insert_with(|| e.to_string());
                    None
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }));
    }
    let mut open = Vec::with_capacity(cfg.connections);
    for t in tasks {
        if let Some(s) = t.await? {
            open.push(s);
        }
    }
    let open_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(cfg.settle).await;
    let rss1 = cfg.server_pid.and_then(rss_of);
    // Still open? A server that dropped them would make the memory figure meaningless.
    let mut closed = 0usize;
    for s in &open {
        let mut b = [0u8; 1];
        if let Ok(0) = s.try_read(&mut b) {
            closed += 1;
        }
    }
    let opened = open.len();
    drop(open);

    let mut f = Figures::new(&format!("mqtt-idle ({})", cfg.label));
    f.push("connections requested", cfg.connections as f64, "");
    f.push("connections opened", opened as f64, "");
    f.push(
        "connections failed",
        failed.load(Ordering::Relaxed) as f64,
        "",
    );
    f.push("closed by the server while idle", closed as f64, "");
    f.push("time to open all", open_secs, "s");
    let mut per_kib = f64::NAN;
    if let (Some(a), Some(b)) = (rss0, rss1) {
        f.push("server RSS before", a as f64 / (1024.0 * 1024.0), "MiB");
        f.push(
            "server RSS with connections",
            b as f64 / (1024.0 * 1024.0),
            "MiB",
        );
        let per = (b as f64 - a as f64) / opened.max(1) as f64;
        per_kib = per / 1024.0;
        f.push("server memory per idle connection", per, "bytes");
        f.push("server memory per idle connection (KiB)", per_kib, "KiB");
    }
    if let Some(e) = first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        eprintln!("first connection error: {e}");
    }
    let human = format!(
        "mqtt-idle ({}): {opened} of {} connections open, {per_kib:.2} KiB of server memory each",
        cfg.label, cfg.connections
    );
    print_result("mqtt-idle", &cfg.label, &f, &human);
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// `rampart bench mqtt-*`
// ---------------------------------------------------------------------------------------------

fn env<T: std::str::FromStr>(names: &[&str]) -> anyhow::Result<Option<T>> {
    for name in names {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => {
                return v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid"));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Runs `mqtt-qos0`, `mqtt-qos1`, `mqtt-latency` or `mqtt-idle` against a running broker,
/// with settings from the environment:
///
/// - `RAMPART_BENCH_MQTT_ADDR` (default `127.0.0.1:18830`), `RAMPART_BENCH_MQTT_PID` (the
///   server's PID: CPU and memory figures; required for `mqtt-idle`'s memory),
///   `RAMPART_BENCH_MQTT_LABEL`;
/// - `MQTT_SECONDS` (sending phase, 10; quick 2), `RAMPART_BENCH_MQTT_PUBLISHERS` (10),
///   `RAMPART_BENCH_MQTT_PAYLOAD` (64 bytes), `RAMPART_BENCH_MQTT_VERSION` (3 = 3.1.1, or 5),
///   `RAMPART_BENCH_MQTT_INFLIGHT` (QoS 1 window per publisher, 256),
///   `RAMPART_BENCH_MQTT_DRAIN_S` (longest drain, 30);
/// - `mqtt-latency`: `RAMPART_BENCH_MQTT_RATE` (20,000 msg/s in total),
///   `RAMPART_BENCH_MQTT_QOS` (0);
/// - `mqtt-idle`: `RAMPART_BENCH_MQTT_CONNECTIONS` (10,000; quick 500),
///   `RAMPART_BENCH_MQTT_SETTLE_S` (3);
/// - `RAMPART_BENCH_MQTT_USERNAME` / `RAMPART_BENCH_MQTT_PASSWORD` for every connection.
pub fn run_env(name: &str, quick: bool) -> anyhow::Result<Figures> {
    init_tls()?;
    let target: SocketAddr = env(&["RAMPART_BENCH_MQTT_ADDR"])?
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 18830)));
    let server_pid: Option<u32> = env(&["RAMPART_BENCH_MQTT_PID"])?;
    let label: String = env(&["RAMPART_BENCH_MQTT_LABEL"])?.unwrap_or_else(|| target.to_string());
    let username: Option<String> = env(&["RAMPART_BENCH_MQTT_USERNAME"])?;
    let password: Option<String> = env(&["RAMPART_BENCH_MQTT_PASSWORD"])?;
    let version = match env::<u8>(&["RAMPART_BENCH_MQTT_VERSION"])?.unwrap_or(4) {
        3 | 4 => Version::V311,
        5 => Version::V5,
        v => anyhow::bail!("RAMPART_BENCH_MQTT_VERSION={v} is not 3, 4 or 5"),
    };
    let qos_of = |q: u8| match q {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        _ => Err(anyhow::anyhow!("RAMPART_BENCH_MQTT_QOS={q} is not 0 or 1")),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if name == "mqtt-idle" {
        let cfg = IdleConfig {
            target,
            connections: env(&["RAMPART_BENCH_MQTT_CONNECTIONS"])?.unwrap_or(if quick {
                500
            } else {
                10_000
            }),
            settle: Duration::from_secs(env(&["RAMPART_BENCH_MQTT_SETTLE_S"])?.unwrap_or(3)),
            server_pid,
            label,
            username,
            password,
        };
        return rt.block_on(idle(&cfg));
    }
    let (qos, rate) = match name {
        "mqtt-qos0" => (QoS::AtMostOnce, None),
        "mqtt-qos1" => (QoS::AtLeastOnce, None),
        "mqtt-latency" => (
            qos_of(env(&["RAMPART_BENCH_MQTT_QOS"])?.unwrap_or(0))?,
            Some(env(&["RAMPART_BENCH_MQTT_RATE"])?.unwrap_or(20_000.0)),
        ),
        other => anyhow::bail!("unknown MQTT benchmark {other:?}"),
    };
    let cfg = LoadConfig {
        target,
        version,
        publishers: env(&["RAMPART_BENCH_MQTT_PUBLISHERS"])?.unwrap_or(10),
        payload: env(&["RAMPART_BENCH_MQTT_PAYLOAD"])?.unwrap_or(64),
        qos,
        seconds: env(&["MQTT_SECONDS", "RAMPART_BENCH_MQTT_SECONDS"])?.unwrap_or(if quick {
            2.0
        } else {
            10.0
        }),
        rate,
        inflight: env(&["RAMPART_BENCH_MQTT_INFLIGHT"])?.unwrap_or(256),
        device: env(&["RAMPART_BENCH_MQTT_DEVICE"])?,
        drain_max: Duration::from_secs(env(&["RAMPART_BENCH_MQTT_DRAIN_S"])?.unwrap_or(30)),
        server_pid,
        label,
        username,
        password,
    };
    anyhow::ensure!(
        cfg.publishers > 0 && cfg.seconds > 0.0,
        "publishers and seconds must be positive"
    );
    rt.block_on(load(name, &cfg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn slope_and_histogram() {
        assert_eq!(slope(&[(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]), 10.0);
        assert_eq!(slope(&[(1.0, 5.0), (2.0, 5.0)]), 0.0);
        let mut h = Hist::new();
        for us in 1..=1000 {
            h.record(us);
        }
        let p50 = h.quantile_ms(0.5);
        assert!((0.49..=0.52).contains(&p50), "{p50}");
        assert!(h.quantile_ms(0.99) <= 1.0);
    }

    #[test]
    fn idle_packets_decode() {
        let mut b = idle_packets(7, 3, &Some("u".into()), &None).unwrap();
        let mut c = rmqtt_codec::v3::Codec::new(0);
        let (p, _) = c.decode(&mut b).unwrap().unwrap();
        assert!(
            matches!(p, rmqtt_codec::v3::Packet::Connect(ref c) if c.client_id == "rb-00000007-idle-3")
        );
        let (p, _) = c.decode(&mut b).unwrap().unwrap();
        assert!(matches!(p, rmqtt_codec::v3::Packet::Subscribe { .. }));
    }

    #[test]
    fn refuses_non_loopback_targets() {
        assert!(check_loopback("10.0.0.1:1883".parse().unwrap()).is_err());
        assert!(check_loopback("127.0.0.1:1883".parse().unwrap()).is_ok());
    }
}
