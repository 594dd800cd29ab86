//! TAK load generator: realistic ATAK position reports (PLI) streamed as plain TAK streaming
//! XML over loopback TCP, so the same scenarios drive Rampart's `cot-tcp` listener and any
//! other TAK server (FreeTAKServer, …).
//!
//! Three scenarios, each against a target `host:port` on a loopback address:
//!
//! - [`fanout`]: N clients register with one SA each, then send PLI at an aggregate rate while
//!   every client reads everything. Deliveries are counted per (sender, sequence number) at
//!   every receiving client: one event written to one client counts once. Echoes of a client's
//!   own events, duplicates, registrations and the late-joiner picture are counted apart.
//! - [`ingest`]: a few clients stream PLI for many distinct entities as fast as the server
//!   takes them (or at a set rate); acceptance is read from Rampart's `/metrics` when given.
//! - [`idle`]: many connections each send one SA and then stay idle (draining what the server
//!   sends); the server's process-tree RSS before and after gives bytes per idle connection.
//!
//! Every event carries `seq=N t=MICROS` (a per-client sequence number and the send instant in
//! microseconds since the run started) in `<remarks>`. The readers find it by a byte search
//! anywhere in the event, so it survives servers that reorder attributes and detail elements
//! or turn `<remarks>` into an attribute (FreeTAKServer does both).
//!
//! Every loop is bounded in count and in time, and only loopback targets are accepted.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rampart_codec_cot::XmlStreamSplitter;
use rampart_model::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;

use crate::Figures;
use crate::hist::Hist;

/// A write that cannot complete within this time counts as a stall and stops that client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most events a paced client writes at once when it has fallen behind its schedule.
const MAX_CATCH_UP: usize = 64;
/// Events per write in unpaced ingest (about 30 KB).
const INGEST_BATCH: usize = 96;
/// Connections opened concurrently by the idle scenario.
const CONNECT_CONCURRENCY: usize = 200;
/// Read buffer per client.
const READ_BUF: usize = 64 * 1024;
/// Read buffer per fan-out client, which reads about 12 MB/s at the issue's load: larger
/// reads mean fewer system calls on the shared cores.
const FANOUT_READ_BUF: usize = 256 * 1024;

/// Settings of the fan-out scenario.
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// The TAK server's streaming XML endpoint (loopback only).
    pub target: SocketAddr,
    /// Connected clients; each sends and reads.
    pub clients: usize,
    /// Aggregate PLI rate over all clients, events/s.
    pub rate: f64,
    /// Length of the sending phase in seconds.
    pub seconds: f64,
    /// Wait after the registrations before sending starts.
    pub settle: Duration,
    /// Longest wait for stragglers after the last send; the wait also ends once nothing
    /// arrived for a third of it.
    pub drain: Duration,
    /// The server's PID, for its CPU time and memory (process tree).
    pub server_pid: Option<u32>,
    /// Label in the figures' title (`rampart`, `fts`, …).
    pub label: String,
    /// How readers split the incoming stream.
    pub split: SplitMode,
}

/// Settings of the ingest scenario.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// The TAK server's streaming XML endpoint (loopback only).
    pub target: SocketAddr,
    /// Streaming clients.
    pub clients: usize,
    /// Length of the sending phase in seconds.
    pub seconds: f64,
    /// Distinct entities each client cycles over.
    pub uids_per_client: usize,
    /// Aggregate rate, events/s; `None` streams as fast as the server accepts.
    pub rate: Option<f64>,
    /// Rampart's Prometheus endpoint (`http://127.0.0.1:PORT/metrics`), for accepted reports.
    pub metrics_url: Option<String>,
    /// The server's PID, for its CPU time and memory (process tree).
    pub server_pid: Option<u32>,
    /// Label in the figures' title.
    pub label: String,
}

/// Settings of the idle-connections scenario.
#[derive(Clone, Debug)]
pub struct IdleConfig {
    /// The TAK server's streaming XML endpoint (loopback only).
    pub target: SocketAddr,
    /// Idle connections to open.
    pub connections: usize,
    /// Whether each connection first sends its SA (as a TAK client does).
    pub send_sa: bool,
    /// Longest wait for the server's traffic to settle before measuring.
    pub settle_max: Duration,
    /// The server's PID (required for the memory figures).
    pub server_pid: Option<u32>,
    /// Label in the figures' title.
    pub label: String,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// RFC 3339 texts for the current millisecond and its stale time, reformatted at most once per
/// millisecond.
struct TimeCache {
    ms: i64,
    time: String,
    start: String,
    stale: String,
}

impl TimeCache {
    fn new() -> Self {
        TimeCache {
            ms: i64::MIN,
            time: String::new(),
            start: String::new(),
            stale: String::new(),
        }
    }

    fn refresh(&mut self) {
        let now = Timestamp::now();
        if now.0 != self.ms {
            self.ms = now.0;
            self.time = now.to_rfc3339();
            // FreeTAKServer rejects times without fractional seconds: keep milliseconds.
            self.start = self.time.clone();
            self.stale = now.plus_millis(120_000).to_rfc3339();
            self.stale = Timestamp(now.0 - now.0.rem_euclid(1000) + 120_000)
                .to_rfc3339()
                .replace(".000Z", "Z");
        }
    }
}

/// Identity and motion of one simulated ATAK device.
struct Device {
    uid: String,
    callsign: String,
    lat: f64,
    lon: f64,
}

impl Device {
    fn new(uid: String, callsign: String, n: usize) -> Self {
        Device {
            uid,
            callsign,
            lat: 48.10 + (n % 100) as f64 * 0.001,
            lon: 11.50 + (n / 100 % 100) as f64 * 0.001,
        }
    }
}

/// Appends one ATAK-style PLI event for `dev` with sequence number `seq` sent at `t_us`.
fn write_pli(buf: &mut Vec<u8>, dev: &Device, seq: u64, t_us: u64, tc: &TimeCache) {
    let step = (seq % 10_000) as f64 * 1e-6;
    // Writing to a Vec cannot fail.
    let _ = write!(
        buf,
        "<event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{t}\" \
         start=\"{start}\" stale=\"{s}\"><point lat=\"{lat:.6}\" lon=\"{lon:.6}\" hae=\"512.3\" \
         ce=\"4.9\" le=\"9999999.0\"/><detail><takv os=\"34\" version=\"5.2.0.8\" \
         device=\"GOOGLE PIXEL 7\" platform=\"ATAK-CIV\"/><contact endpoint=\"*:-1:stcp\" \
         callsign=\"{cs}\"/><uid Droid=\"{cs}\"/><precisionlocation altsrc=\"GPS\" \
         geopointsrc=\"GPS\"/><__group role=\"Team Member\" name=\"Cyan\"/><status \
         battery=\"{bat}\"/><track course=\"{course}.0\" speed=\"1.4\"/><remarks>seq={seq} \
         t={t_us}</remarks></detail></event>",
        start = tc.start,
        uid = dev.uid,
        t = tc.time,
        s = tc.stale,
        lat = dev.lat + step,
        lon = dev.lon + step,
        cs = dev.callsign,
        bat = 100 - seq % 80,
        course = seq % 360,
    );
}

/// What the readers extract from one received frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks<'a> {
    /// The event's uid.
    pub uid: Option<&'a [u8]>,
    /// `seq=` of the load generator, if present.
    pub seq: Option<u64>,
    /// `t=` of the load generator (µs since the run's start), if present.
    pub t_us: Option<u64>,
}

/// The leading decimal number of `s` (1 to 19 digits), and its digit count.
fn digits_len(s: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    let mut n = 0;
    for &b in s.iter().take(20) {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        n += 1;
    }
    (1..=19).contains(&n).then_some((v, n))
}

fn digits(s: &[u8]) -> Option<u64> {
    digits_len(s).map(|(v, _)| v)
}

/// Substring searchers built once: building one costs more than a search in a 600-byte frame.
struct Finders {
    uid: memchr::memmem::Finder<'static>,
    seq: memchr::memmem::FinderRev<'static>,
}

thread_local! {
    static FINDERS: Finders = Finders {
        uid: memchr::memmem::Finder::new(b"uid="),
        seq: memchr::memmem::FinderRev::new(b"seq="),
    };
}

/// The prefix every event of this generator starts with, so its uid is found without a search.
const PLI_HEAD: &[u8] = b"<event version=\"2.0\" uid=\"";

/// A light parse of one event: the first `uid` attribute (the root's) and `seq=… t=…`.
/// The generator's own layout is read directly; anything else (a server that reorders
/// attributes or moves `<remarks>`) falls back to searching.
pub(crate) fn parse_marks(frame: &[u8]) -> Marks<'_> {
    let mut m = Marks::default();
    FINDERS.with(|f| {
        if let Some(rest) = frame.strip_prefix(PLI_HEAD) {
            m.uid = memchr::memchr(b'"', rest).map(|end| &rest[..end]);
        } else {
            let mut from = 0;
            // The first ` uid=` attribute belongs to the root element, which comes first.
            while let Some(i) = f.uid.find(&frame[from..]) {
                let at = from + i;
                let ws_before = at > 0 && frame[at - 1].is_ascii_whitespace();
                if ws_before && let Some(&q) = frame.get(at + 4) {
                    if q == b'"' || q == b'\'' {
                        let rest = &frame[at + 5..];
                        m.uid = memchr::memchr(q, rest).map(|end| &rest[..end]);
                    }
                    break;
                }
                from = at + 4;
            }
        }
        // `<remarks>` comes last in the generator's events: search from the end.
        if let Some(i) = f.seq.rfind(frame) {
            let rest = &frame[i + 4..];
            if let Some((seq, n)) = digits_len(rest) {
                m.seq = Some(seq);
                let rest = &rest[n..];
                if rest.starts_with(b" t=") {
                    m.t_us = digits(&rest[3..]);
                }
            }
        }
    });
    m
}

/// How readers cut the incoming stream into events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitMode {
    /// Cut after every literal `</event>` (as TAK Server does), found with a SIMD substring
    /// search: about 2.3 GB/s on one core, so the generator is not the bottleneck.
    Fast,
    /// [`XmlStreamSplitter`], the full lexer Rampart's listener uses: about 0.2 GB/s per core,
    /// so it cannot check 2,000,000 deliveries/s on a 2-core machine.
    Xml,
}

/// A stream splitter of either kind; the largest event kept is 64 KiB.
enum Splitter {
    Fast {
        pending: Vec<u8>,
        finder: memchr::memmem::Finder<'static>,
    },
    Xml(XmlStreamSplitter),
}

const MAX_FRAME: usize = 64 * 1024;

impl Splitter {
    fn new(mode: SplitMode) -> Self {
        match mode {
            SplitMode::Fast => Splitter::Fast {
                pending: Vec::with_capacity(MAX_FRAME),
                finder: memchr::memmem::Finder::new(b"</event>"),
            },
            SplitMode::Xml => Splitter::Xml(XmlStreamSplitter::new(MAX_FRAME)),
        }
    }

    /// Feeds `bytes` and calls `each` with every complete event; an error ends the stream.
    fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(&[u8])) -> Result<(), String> {
        match self {
            Splitter::Fast { pending, finder } => {
                let data: &[u8] = if pending.is_empty() {
                    bytes
                } else {
                    pending.extend_from_slice(bytes);
                    pending
                };
                let mut from = 0;
                for end in finder.find_iter(data) {
                    each(&data[from..end + 8]);
                    from = end + 8;
                }
                let rest = data.len() - from;
                if rest > MAX_FRAME {
                    return Err(format!("no </event> in {rest} bytes"));
                }
                if pending.is_empty() {
                    pending.extend_from_slice(&bytes[from..]);
                } else {
                    pending.drain(..from);
                }
                Ok(())
            }
            Splitter::Xml(split) => {
                split.push(bytes);
                loop {
                    match split.next_frame() {
                        Ok(Some(f)) => each(&f),
                        Ok(None) => return Ok(()),
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Process measurements
// ---------------------------------------------------------------------------------------------

/// Linux clock ticks per second for `/proc/*/stat` CPU times.
const CLK_TCK: f64 = 100.0;

/// `(ppid, utime + stime ticks)` of `pid` from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, ut + st))
}

/// `pid` and all its descendants.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && let Some((ppid, _)) = proc_stat(p)
            {
                parents.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() && tree.len() <= parents.len() + 1 {
        let parent = tree[i];
        for &(p, pp) in &parents {
            if pp == parent && !tree.contains(&p) {
                tree.push(p);
            }
        }
        i += 1;
    }
    tree
}

/// Summed VmRSS of `pid`'s process tree, in bytes.
pub fn tree_rss_bytes(pid: u32) -> u64 {
    process_tree(pid)
        .into_iter()
        .filter_map(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .sum()
}

/// Summed CPU seconds (user + system) of `pid`'s process tree.
pub fn tree_cpu_secs(pid: u32) -> f64 {
    process_tree(pid)
        .into_iter()
        .filter_map(proc_stat)
        .map(|(_, t)| t as f64 / CLK_TCK)
        .sum()
}

/// `(busy, total)` jiffies of the whole machine from `/proc/stat`.
fn machine_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

fn self_cpu_secs() -> f64 {
    proc_stat(std::process::id()).map_or(0.0, |(_, t)| t as f64 / CLK_TCK)
}

/// CPU of the server and of this generator over one phase.
struct CpuMeter {
    pid: Option<u32>,
    started: Instant,
    server0: f64,
    self0: f64,
    machine0: (u64, u64),
}

impl CpuMeter {
    fn start(pid: Option<u32>) -> Self {
        CpuMeter {
            pid,
            started: Instant::now(),
            server0: pid.map_or(0.0, tree_cpu_secs),
            self0: self_cpu_secs(),
            machine0: machine_jiffies(),
        }
    }

    fn report(&self, f: &mut Figures) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        if let Some(pid) = self.pid {
            f.push(
                "server CPU (process tree)",
                (tree_cpu_secs(pid) - self.server0) / secs,
                "cores",
            );
            f.push(
                "server RSS (process tree)",
                tree_rss_bytes(pid) as f64 / (1024.0 * 1024.0),
                "MiB",
            );
        }
        f.push(
            "load generator CPU",
            (self_cpu_secs() - self.self0) / secs,
            "cores",
        );
        let (busy, total) = machine_jiffies();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let (db, dt) = (busy - self.machine0.0, total - self.machine0.1);
        if dt > 0 {
            f.push(
                "machine CPU busy (all processes)",
                cores * db as f64 / dt as f64,
                "cores",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------------------------

fn check_loopback(target: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        target.ip().is_loopback(),
        "the TAK load generator only targets loopback addresses, not {target}"
    );
    Ok(())
}

async fn connect(target: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(target))
        .await
        .map_err(|_| anyhow::anyhow!("connect to {target} timed out"))??;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn write_timed(w: &mut tokio::net::tcp::OwnedWriteHalf, buf: &[u8]) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, w.write_all(buf)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Err("write stalled".to_string()),
    }
}

/// A per-run tag in every uid, so events of earlier runs (which a server may keep in its
/// picture) are never mistaken for this run's.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:04x}", (nanos ^ std::process::id()) & 0xffff)
}

fn micros_since(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

/// Sends `count` PLI events for `dev`, paced at one per `period` starting at `t0`.
#[allow(clippy::too_many_arguments)]
async fn paced_sender(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    dev: Device,
    count: u64,
    t0: tokio::time::Instant,
    period: Duration,
    base: Instant,
    hard_stop: tokio::time::Instant,
) -> (u64, Option<String>, tokio::net::tcp::OwnedWriteHalf) {
    let mut tc = TimeCache::new();
    let mut buf = Vec::with_capacity(MAX_CATCH_UP * 512);
    let mut k = 0u64;
    let period_ns = period.as_nanos().max(1) as u64;
    let due = |k: u64| t0 + Duration::from_nanos(period_ns.saturating_mul(k));
    while k < count {
        if tokio::time::Instant::now() >= hard_stop {
            return (k, Some("time limit".to_string()), w);
        }
        tokio::time::sleep_until(due(k).min(hard_stop)).await;
        let now = tokio::time::Instant::now();
        buf.clear();
        tc.refresh();
        let t_us = micros_since(base);
        let mut n = 0;
        while k < count && n < MAX_CATCH_UP && due(k) <= now {
            write_pli(&mut buf, &dev, k + 1, t_us, &tc);
            k += 1;
            n += 1;
        }
        if n == 0 {
            continue;
        }
        if let Err(e) = write_timed(&mut w, &buf).await {
            return (k - n as u64, Some(e), w);
        }
    }
    (k, None, w)
}

// ---------------------------------------------------------------------------------------------
// Fan-out
// ---------------------------------------------------------------------------------------------

/// What one fan-out reader saw.
#[derive(Debug)]
struct ReaderStats {
    delivered: u64,
    duplicates: u64,
    echoes: u64,
    registrations: u64,
    foreign: u64,
    disconnected: bool,
    stream_error: Option<String>,
    hist: Hist,
    last_delivery: Option<Instant>,
}

/// Per-sender bitsets of the sequence numbers one reader has received.
struct Seen {
    bits: Vec<Vec<u64>>,
}

impl Seen {
    /// Marks `seq` of `sender`; true if it is new.
    fn insert(&mut self, sender: usize, seq: u64) -> bool {
        let Some(v) = self.bits.get_mut(sender) else {
            return false;
        };
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= v.len() {
            // Bounded: a sender never exceeds its quota, and the caller checks it.
            v.resize(word + 1, 0);
        }
        let fresh = v[word] & (1 << bit) == 0;
        v[word] |= 1 << bit;
        fresh
    }
}

#[allow(clippy::too_many_arguments)]
async fn fanout_reader(
    mut r: OwnedReadHalf,
    me: usize,
    clients: usize,
    max_seq: u64,
    prefix: Arc<Vec<u8>>,
    base: Instant,
    total: Arc<AtomicU64>,
    mode: SplitMode,
    mut stop: watch::Receiver<bool>,
) -> ReaderStats {
    let mut st = ReaderStats {
        delivered: 0,
        duplicates: 0,
        echoes: 0,
        registrations: 0,
        foreign: 0,
        disconnected: false,
        stream_error: None,
        hist: Hist::new(),
        last_delivery: None,
    };
    let mut seen = Seen {
        bits: vec![Vec::new(); clients],
    };
    let mut split = Splitter::new(mode);
    let mut buf = vec![0u8; FANOUT_READ_BUF];
    loop {
        let n = tokio::select! {
            r = r.read(&mut buf) => r,
            _ = stop.changed() => break,
        };
        let n = match n {
            Ok(0) | Err(_) => {
                st.disconnected = !*stop.borrow();
                break;
            }
            Ok(n) => n,
        };
        let now_us = micros_since(base);
        let mut fresh = 0;
        let result = split.feed(&buf[..n], |frame| {
            let m = parse_marks(frame);
            let sender = m
                .uid
                .and_then(|u| u.strip_prefix(prefix.as_slice()))
                .and_then(digits)
                .map(|s| s as usize)
                .filter(|&s| s < clients);
            let (Some(sender), Some(seq)) = (sender, m.seq) else {
                st.foreign += 1;
                return;
            };
            if seq == 0 {
                st.registrations += 1;
            } else if sender == me {
                st.echoes += 1;
            } else if seq > max_seq {
                st.foreign += 1;
            } else if seen.insert(sender, seq) {
                st.delivered += 1;
                fresh += 1;
                if let Some(t) = m.t_us {
                    st.hist.record(now_us.saturating_sub(t));
                }
            } else {
                st.duplicates += 1;
            }
        });
        if let Err(e) = result {
            st.stream_error = Some(e);
        }
        if fresh > 0 {
            total.fetch_add(fresh, Ordering::Relaxed);
            st.last_delivery = Some(Instant::now());
        }
        if st.stream_error.is_some() {
            break;
        }
    }
    st
}

/// Runs the fan-out scenario: every client sends PLI and receives everyone else's.
pub async fn fanout(cfg: &FanoutConfig) -> anyhow::Result<Figures> {
    check_loopback(cfg.target)?;
    anyhow::ensure!(cfg.clients >= 2, "fan-out needs at least 2 clients");
    anyhow::ensure!(
        cfg.rate > 0.0 && cfg.seconds > 0.0,
        "rate and seconds must be > 0"
    );
    let n = cfg.clients;
    let total_events = (cfg.rate * cfg.seconds).round().max(1.0) as u64;
    let quota =
        |i: usize| total_events / n as u64 + u64::from((i as u64) < total_events % n as u64);
    let max_seq = quota(0);
    let tag = run_tag();
    let prefix = Arc::new(format!("ANDROID-rb{tag}-").into_bytes());
    let base = Instant::now();
    let total = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);

    // Connect and register: every client sends its SA (seq 0) first.
    let mut writers = Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    let mut tc = TimeCache::new();
    tc.refresh();
    let mut sa = Vec::with_capacity(512);
    let connect_deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..n {
        anyhow::ensure!(
            Instant::now() < connect_deadline,
            "only {i} of {n} clients connected and registered within 60 s"
        );
        let s = connect(cfg.target).await?;
        let (r, mut w) = s.into_split();
        readers.push(tokio::spawn(fanout_reader(
            r,
            i,
            n,
            max_seq,
            prefix.clone(),
            base,
            total.clone(),
            cfg.split,
            stop_rx.clone(),
        )));
        let dev = Device::new(format!("ANDROID-rb{tag}-{i:05}"), format!("RB-{i}"), i);
        sa.clear();
        tc.refresh();
        write_pli(&mut sa, &dev, 0, micros_since(base), &tc);
        write_timed(&mut w, &sa)
            .await
            .map_err(|e| anyhow::anyhow!("client {i} registration: {e}"))?;
        writers.push((w, dev));
    }
    let event_bytes = sa.len();
    tokio::time::sleep(cfg.settle).await;

    // Send at the aggregate rate, each client on its own staggered schedule.
    let cpu = CpuMeter::start(cfg.server_pid);
    let period = Duration::from_secs_f64(n as f64 / cfg.rate);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(20);
    let hard_stop = t0 + Duration::from_secs_f64(cfg.seconds * 2.0 + 10.0);
    let started = Instant::now();
    let mut senders = Vec::with_capacity(n);
    for (i, (w, dev)) in writers.into_iter().enumerate() {
        let offset = period.mul_f64(i as f64 / n as f64);
        senders.push(tokio::spawn(paced_sender(
            w,
            dev,
            quota(i),
            t0 + offset,
            period,
            base,
            hard_stop,
        )));
    }
    let mut sent = Vec::with_capacity(n);
    let mut write_errors = 0u64;
    let mut keep_open = Vec::with_capacity(n);
    for s in senders {
        let (k, err, w) = s.await?;
        sent.push(k);
        write_errors += u64::from(err.is_some());
        keep_open.push(w);
    }
    let send_secs = started.elapsed().as_secs_f64();

    // Drain: wait until deliveries stop arriving (bounded).
    let drain_end = Instant::now() + cfg.drain;
    let mut last = total.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    let expected: u64 = sent.iter().sum::<u64>() * (n as u64 - 1);
    while Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = total.load(Ordering::Relaxed);
        if now >= expected {
            break;
        }
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > cfg.drain / 3 {
            // Quiet for a third of the drain bound: a slow server's next batch is not coming.
            break;
        }
    }
    let mut cpu_fig = Figures::new("");
    cpu.report(&mut cpu_fig);
    let _ = stop_tx.send(true);
    let mut hist = Hist::new();
    let (mut delivered, mut dups, mut echoes, mut regs, mut foreign) = (0, 0, 0, 0, 0);
    let (mut disconnected, mut stream_errors) = (0, 0);
    let mut last_delivery = started;
    for r in readers {
        let st = r.await?;
        delivered += st.delivered;
        dups += st.duplicates;
        echoes += st.echoes;
        regs += st.registrations;
        foreign += st.foreign;
        disconnected += u64::from(st.disconnected);
        stream_errors += u64::from(st.stream_error.is_some());
        hist.merge(&st.hist);
        if let Some(t) = st.last_delivery {
            last_delivery = last_delivery.max(t);
        }
    }
    drop(keep_open);
    let sent_total: u64 = sent.iter().sum();
    let delivery_secs = last_delivery
        .duration_since(started)
        .as_secs_f64()
        .max(send_secs);

    let mut f = Figures::new(&format!("tak fanout ({})", cfg.label));
    f.push("clients", n as f64, "");
    f.push("target aggregate rate", cfg.rate, "events/s");
    f.push("event size (XML)", event_bytes as f64, "bytes");
    f.push("events sent", sent_total as f64, "");
    f.push("offered rate", sent_total as f64 / send_secs, "events/s");
    f.push("deliveries expected", expected as f64, "");
    f.push("deliveries received", delivered as f64, "");
    f.push(
        "delivered",
        if expected == 0 {
            0.0
        } else {
            100.0 * delivered as f64 / expected as f64
        },
        "%",
    );
    f.push("deliveries/s", delivered as f64 / delivery_secs, "");
    f.push("relay latency p50", hist.quantile_ms(0.50), "ms");
    f.push("relay latency p99", hist.quantile_ms(0.99), "ms");
    f.push("relay latency p99.9", hist.quantile_ms(0.999), "ms");
    f.push("relay latency max", hist.max_us as f64 / 1000.0, "ms");
    f.push("echoes (own events returned)", echoes as f64, "");
    f.push("duplicates", dups as f64, "");
    f.push("registrations/snapshot received", regs as f64, "");
    f.push("other events received", foreign as f64, "");
    f.push("clients disconnected", disconnected as f64, "");
    f.push("stream errors", stream_errors as f64, "");
    f.push("senders stopped by write errors", write_errors as f64, "");
    f.rows.extend(cpu_fig.rows);
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Ingest
// ---------------------------------------------------------------------------------------------

/// Reads and discards what the server sends, counting events; returns (events, disconnected).
async fn drain_reader(
    mut r: OwnedReadHalf,
    bytes: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> (u64, bool) {
    let mut buf = vec![0u8; READ_BUF];
    let mut events = 0u64;
    let finder = memchr::memmem::Finder::new(b"</event>");
    loop {
        let n = tokio::select! {
            r = r.read(&mut buf) => r,
            _ = stop.changed() => return (events, false),
        };
        match n {
            Ok(0) | Err(_) => return (events, !*stop.borrow()),
            Ok(n) => {
                bytes.fetch_add(n as u64, Ordering::Relaxed);
                events += finder.find_iter(&buf[..n]).count() as u64;
            }
        }
    }
}

/// Sum of `rampart_reports_accepted_total{source="cot-tcp"}` at `url`.
async fn accepted_cot(client: &reqwest::Client, url: &str) -> anyhow::Result<f64> {
    let text = client.get(url).send().await?.text().await?;
    let mut sum = 0.0;
    let mut found = false;
    for line in text.lines() {
        if line.starts_with("rampart_reports_accepted_total{")
            && line.contains("source=\"cot-tcp\"")
            && let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())
        {
            sum += v;
            found = true;
        }
    }
    if !found {
        // The counter appears with the first accepted report.
        return Ok(0.0);
    }
    Ok(sum)
}

async fn ingest_sender(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    client: usize,
    tag: String,
    uids: usize,
    deadline: tokio::time::Instant,
    period: Option<Duration>,
    base: Instant,
) -> (u64, Option<String>, tokio::net::tcp::OwnedWriteHalf) {
    let mut devices: Vec<Device> = (0..uids)
        .map(|e| {
            Device::new(
                format!("ANDROID-rb{tag}-i{client:02}-{e:05}"),
                format!("RB-I{client}-{e}"),
                e,
            )
        })
        .collect();
    devices.shrink_to_fit();
    let mut tc = TimeCache::new();
    let mut buf = Vec::with_capacity(INGEST_BATCH * 512);
    let mut seq = 0u64;
    let started = tokio::time::Instant::now();
    // Bounded by the deadline (every iteration checks it) and by a hard event cap.
    let cap = 1u64 << 40;
    while tokio::time::Instant::now() < deadline && seq < cap {
        let batch = match period {
            Some(p) => {
                let due = started + Duration::from_nanos((p.as_nanos() as u64).saturating_mul(seq));
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due).await;
                1
            }
            None => INGEST_BATCH,
        };
        buf.clear();
        tc.refresh();
        let t_us = micros_since(base);
        for _ in 0..batch {
            let dev = &devices[(seq % uids as u64) as usize];
            write_pli(&mut buf, dev, seq + 1, t_us, &tc);
            seq += 1;
        }
        if let Err(e) = write_timed(&mut w, &buf).await {
            return (seq - batch as u64, Some(e), w);
        }
    }
    (seq, None, w)
}

/// Runs the ingest scenario: clients stream PLI for many distinct entities.
pub async fn ingest(cfg: &IngestConfig) -> anyhow::Result<Figures> {
    check_loopback(cfg.target)?;
    anyhow::ensure!(
        cfg.clients >= 1 && cfg.uids_per_client >= 1,
        "need clients and uids"
    );
    let tag = run_tag();
    let base = Instant::now();
    let http = reqwest::Client::new();
    let bytes = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..cfg.clients {
        let (r, w) = connect(cfg.target).await?.into_split();
        readers.push(tokio::spawn(drain_reader(
            r,
            bytes.clone(),
            stop_rx.clone(),
        )));
        writers.push(w);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = match &cfg.metrics_url {
        Some(u) => Some(accepted_cot(&http, u).await?),
        None => None,
    };
    let cpu = CpuMeter::start(cfg.server_pid);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.seconds);
    let period = cfg
        .rate
        .map(|r| Duration::from_secs_f64(cfg.clients as f64 / r.max(1e-3)));
    let mut tasks = Vec::new();
    for (i, w) in writers.into_iter().enumerate() {
        tasks.push(tokio::spawn(ingest_sender(
            w,
            i,
            tag.clone(),
            cfg.uids_per_client,
            deadline,
            period,
            base,
        )));
    }
    let mut sent = 0;
    let mut write_errors = 0;
    let mut keep_open = Vec::new();
    for t in tasks {
        let (k, e, w) = t.await?;
        sent += k;
        write_errors += u64::from(e.is_some());
        keep_open.push(w);
    }
    let secs = started.elapsed().as_secs_f64();
    let at_window_end = match &cfg.metrics_url {
        Some(u) => Some(accepted_cot(&http, u).await?),
        None => None,
    };
    // Let the server finish what it has buffered: poll until the count stops (≤ 15 s).
    let mut final_count = at_window_end;
    let mut final_secs = secs;
    if let (Some(u), Some(mut last)) = (&cfg.metrics_url, at_window_end) {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = accepted_cot(&http, u).await?;
            if now == last {
                break;
            }
            last = now;
            final_secs = started.elapsed().as_secs_f64() - 0.25;
        }
        final_count = Some(last);
    }
    let mut cpu_fig = Figures::new("");
    cpu.report(&mut cpu_fig);
    let _ = stop_tx.send(true);
    let mut received = 0;
    let mut disconnected = 0;
    for r in readers {
        let (e, d) = r.await?;
        received += e;
        disconnected += u64::from(d);
    }
    drop(keep_open);

    let mut f = Figures::new(&format!("tak ingest ({})", cfg.label));
    f.push("clients", cfg.clients as f64, "");
    f.push(
        "distinct entities",
        (cfg.clients * cfg.uids_per_client) as f64,
        "",
    );
    if let Some(r) = cfg.rate {
        f.push("target aggregate rate", r, "events/s");
    }
    f.push("events sent", sent as f64, "");
    f.push("sent/s", sent as f64 / secs, "events/s");
    if let (Some(b), Some(w), Some(fin)) = (before, at_window_end, final_count) {
        f.push("accepted in the send window/s", (w - b) / secs, "events/s");
        f.push("accepted total", fin - b, "");
        f.push(
            "accepted/s (until the last)",
            (fin - b) / final_secs,
            "events/s",
        );
        f.push(
            "accepted of sent",
            if sent == 0 {
                0.0
            } else {
                100.0 * (fin - b) / sent as f64
            },
            "%",
        );
    }
    f.push("events relayed to the other clients", received as f64, "");
    f.push(
        "relayed/s per receiving client",
        received as f64 / secs / cfg.clients as f64,
        "events/s",
    );
    f.push("clients disconnected", disconnected as f64, "");
    f.push("senders stopped by write errors", write_errors as f64, "");
    f.rows.extend(cpu_fig.rows);
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Idle
// ---------------------------------------------------------------------------------------------

/// Runs the idle scenario: many connections each send one SA and then stay idle.
pub async fn idle(cfg: &IdleConfig) -> anyhow::Result<Figures> {
    check_loopback(cfg.target)?;
    let tag = run_tag();
    let base = Instant::now();
    let rss0 = cfg.server_pid.map(tree_rss_bytes);
    let cpu = CpuMeter::start(cfg.server_pid);
    let bytes = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let started = Instant::now();
    let mut conns = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        // A server that stops accepting must not hold the run: stop opening after settle_max.
        if started.elapsed() > cfg.settle_max {
            break;
        }
        let permit = sem.clone().acquire_owned().await?;
        let (bytes, open, failed, stop) =
            (bytes.clone(), open.clone(), failed.clone(), stop_rx.clone());
        let (target, tag, send_sa) = (cfg.target, tag.clone(), cfg.send_sa);
        conns.push(tokio::spawn(async move {
            let s = match connect(target).await {
                Ok(s) => s,
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return (false, None);
                }
            };
            let (r, mut w) = s.into_split();
            if send_sa {
                let mut tc = TimeCache::new();
                tc.refresh();
                let dev = Device::new(format!("ANDROID-rb{tag}-{i:05}"), format!("RB-{i}"), i);
                let mut sa = Vec::with_capacity(512);
                write_pli(&mut sa, &dev, 0, micros_since(base), &tc);
                if write_timed(&mut w, &sa).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return (false, None);
                }
            }
            open.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            let (_, disconnected) = drain_reader(r, bytes, stop).await;
            (disconnected, Some(w))
        }));
    }
    let attempted = conns.len();
    let connect_secs = started.elapsed().as_secs_f64();
    // Wait until every connection is made and the server's traffic has settled (bounded).
    let settle_end = Instant::now() + cfg.settle_max;
    let mut last = u64::MAX;
    let mut quiet_since = Instant::now();
    while Instant::now() < settle_end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let done = open.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
        let now = bytes.load(Ordering::Relaxed);
        if now != last || done < attempted {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_secs(2) {
            break;
        }
    }
    let settle_secs = started.elapsed().as_secs_f64();
    let rss1 = cfg.server_pid.map(tree_rss_bytes);
    let mut cpu_fig = Figures::new("");
    cpu.report(&mut cpu_fig);
    let _ = stop_tx.send(true);
    let mut disconnected = 0;
    let mut keep = Vec::new();
    for c in conns {
        let (d, w) = c.await?;
        disconnected += u64::from(d);
        keep.push(w);
    }
    drop(keep);
    let opened = open.load(Ordering::Relaxed);

    let mut f = Figures::new(&format!("tak idle ({})", cfg.label));
    f.push("connections requested", cfg.connections as f64, "");
    f.push("connections opened", opened as f64, "");
    f.push(
        "connections failed",
        failed.load(Ordering::Relaxed) as f64,
        "",
    );
    f.push("disconnected by the server", disconnected as f64, "");
    f.push(
        "SA sent per connection",
        if cfg.send_sa { 1.0 } else { 0.0 },
        "",
    );
    f.push("time to open all", connect_secs, "s");
    f.push("time until traffic settled", settle_secs, "s");
    f.push(
        "bytes received per connection",
        bytes.load(Ordering::Relaxed) as f64 / opened.max(1) as f64,
        "bytes",
    );
    if let (Some(a), Some(b)) = (rss0, rss1) {
        f.push("server RSS before", a as f64 / (1024.0 * 1024.0), "MiB");
        f.push(
            "server RSS with connections",
            b as f64 / (1024.0 * 1024.0),
            "MiB",
        );
        let per = (b as f64 - a as f64) / opened.max(1) as f64;
        f.push("server memory per idle connection", per, "bytes");
    }
    f.rows.extend(cpu_fig.rows);
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// `rampart bench tak-*`
// ---------------------------------------------------------------------------------------------

fn env<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid")),
        _ => Ok(None),
    }
}

/// Runs `tak-fanout`, `tak-ingest` or `tak-idle` with settings from the environment:
/// `RAMPART_TAK_TARGET` (default `127.0.0.1:8087`), `RAMPART_TAK_CLIENTS` (fan-out 100, ingest
/// 10, idle 10,000), `RAMPART_TAK_RATE` (fan-out 20,000 events/s; ingest unpaced),
/// `RAMPART_TAK_SECONDS` (10), `RAMPART_TAK_SETTLE_MS` (fan-out 1,000),
/// `RAMPART_TAK_DRAIN_MS` (fan-out 5,000), `RAMPART_TAK_UIDS` (ingest 10,000 per client),
/// `RAMPART_TAK_IDLE_SA` (1), `RAMPART_TAK_SETTLE_MAX_S` (idle 180), `RAMPART_TAK_PID` (the
/// server's PID), `RAMPART_TAK_SPLITTER` (`fast`, or `xml` for [`XmlStreamSplitter`]), `RAMPART_METRICS_URL` (Rampart's `/metrics`) and `RAMPART_TAK_LABEL`.
/// `quick` shrinks the defaults for a smoke run.
pub fn run_env(name: &str, quick: bool) -> anyhow::Result<Figures> {
    let target: SocketAddr =
        env("RAMPART_TAK_TARGET")?.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8087)));
    let pick = |full: usize, small: usize| if quick { small } else { full };
    let clients: Option<usize> = env("RAMPART_TAK_CLIENTS")?;
    let rate: Option<f64> = env("RAMPART_TAK_RATE")?;
    let seconds: f64 = env("RAMPART_TAK_SECONDS")?.unwrap_or(if quick { 2.0 } else { 10.0 });
    let server_pid: Option<u32> = env("RAMPART_TAK_PID")?;
    let label: String = env("RAMPART_TAK_LABEL")?.unwrap_or_else(|| target.to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match name {
        "tak-fanout" => {
            let cfg = FanoutConfig {
                target,
                clients: clients.unwrap_or(pick(100, 10)),
                rate: rate.unwrap_or(if quick { 1_000.0 } else { 20_000.0 }),
                seconds,
                settle: Duration::from_millis(env("RAMPART_TAK_SETTLE_MS")?.unwrap_or(1_000)),
                drain: Duration::from_millis(env("RAMPART_TAK_DRAIN_MS")?.unwrap_or(5_000)),
                server_pid,
                label,
                split: match env::<String>("RAMPART_TAK_SPLITTER")?.as_deref() {
                    Some("xml") => SplitMode::Xml,
                    _ => SplitMode::Fast,
                },
            };
            rt.block_on(fanout(&cfg))
        }
        "tak-ingest" => {
            let cfg = IngestConfig {
                target,
                clients: clients.unwrap_or(10),
                seconds,
                uids_per_client: env("RAMPART_TAK_UIDS")?.unwrap_or(pick(10_000, 1_000)),
                rate,
                metrics_url: env("RAMPART_METRICS_URL")?,
                server_pid,
                label,
            };
            rt.block_on(ingest(&cfg))
        }
        "tak-idle" => {
            let cfg = IdleConfig {
                target,
                connections: clients.unwrap_or(pick(10_000, 200)),
                send_sa: env::<u8>("RAMPART_TAK_IDLE_SA")?.unwrap_or(1) != 0,
                settle_max: Duration::from_secs(env("RAMPART_TAK_SETTLE_MAX_S")?.unwrap_or(180)),
                server_pid,
                label,
            };
            rt.block_on(idle(&cfg))
        }
        other => anyhow::bail!("unknown TAK benchmark {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio::sync::Mutex;

    #[test]
    fn pli_is_realistic_and_marks_survive() {
        let mut tc = TimeCache::new();
        tc.refresh();
        let dev = Device::new("ANDROID-rbabcd-00007".into(), "RB-7".into(), 7);
        let mut buf = Vec::new();
        write_pli(&mut buf, &dev, 123, 456_789, &tc);
        let text = String::from_utf8_lossy(&buf).to_string();
        assert!(
            (300..=640).contains(&buf.len()),
            "PLI is {} bytes: {text}",
            buf.len()
        );
        let ev = rampart_codec_cot::parse_xml(&buf, &rampart_codec_cot::CotLimits::default())
            .expect("valid CoT");
        assert_eq!(ev.uid.as_str(), "ANDROID-rbabcd-00007");
        assert_eq!(ev.callsign(), Some("RB-7"));
        let m = parse_marks(&buf);
        assert_eq!(m.uid, Some(&b"ANDROID-rbabcd-00007"[..]));
        assert_eq!((m.seq, m.t_us), (Some(123), Some(456_789)));
        // As FreeTAKServer re-encodes it: attributes reordered, remarks as an attribute.
        let fts = br#"<event how="m-g" uid="ANDROID-x" version="2.0"><detail remarks="seq=9 t=77"><uid Droid="x"/></detail></event>"#;
        let m = parse_marks(fts);
        assert_eq!(m.uid, Some(&b"ANDROID-x"[..]));
        assert_eq!((m.seq, m.t_us), (Some(9), Some(77)));
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Hist::new();
        for us in 1..=1000 {
            h.record(us * 10);
        }
        let p50 = h.quantile_ms(0.5);
        assert!((4.8..=5.2).contains(&p50), "{p50}");
        assert_eq!(h.quantile_ms(1.0), 10.0);
    }

    /// A tiny TAK-style relay: every client's bytes go to every other client, no echo.
    async fn relay(listener: TcpListener, clients: usize) {
        let peers: Arc<Mutex<Vec<(usize, tokio::net::tcp::OwnedWriteHalf)>>> =
            Arc::new(Mutex::new(Vec::new()));
        for id in 0..clients {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let (mut r, w) = s.into_split();
            peers.lock().await.push((id, w));
            let peers = peers.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = r.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    for (pid, w) in peers.lock().await.iter_mut() {
                        if *pid != id {
                            let _ = w.write_all(&buf[..n]).await;
                        }
                    }
                }
            });
        }
    }

    #[test]
    fn fanout_counts_every_delivery_through_a_relay() {
        for split in [SplitMode::Fast, SplitMode::Xml] {
            fanout_through_relay(split);
        }
    }

    fn fanout_through_relay(split: SplitMode) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let target = listener.local_addr().unwrap();
            tokio::spawn(relay(listener, 3));
            let cfg = FanoutConfig {
                target,
                clients: 3,
                rate: 100.0,
                seconds: 1.0,
                settle: Duration::from_millis(100),
                drain: Duration::from_secs(5),
                server_pid: None,
                label: "relay".into(),
                split,
            };
            let f = fanout(&cfg).await.unwrap();
            let get = |name: &str| {
                f.rows
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|r| r.1)
                    .unwrap()
            };
            assert_eq!(get("events sent"), 100.0);
            assert_eq!(get("deliveries expected"), 200.0);
            assert_eq!(get("deliveries received"), 200.0);
            assert_eq!(get("delivered"), 100.0);
            assert_eq!(get("echoes (own events returned)"), 0.0);
            assert_eq!(get("duplicates"), 0.0);
            assert_eq!(get("clients disconnected"), 0.0);
        });
    }

    #[test]
    fn refuses_non_loopback_targets() {
        assert!(check_loopback("10.1.2.3:8087".parse().unwrap()).is_err());
        assert!(check_loopback("127.0.0.1:8087".parse().unwrap()).is_ok());
    }
}
