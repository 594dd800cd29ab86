//! TAK-style routing: every client receives the events of the others, never its own, within
//! the channels they share and its clearance; a late joiner first receives the latest
//! non-stale event of every entity it may see.
//!
//! Security labels: every frame carries the label of the data it holds (`None` when anyone may
//! see it: the lowest level with no releasability, or a node that does not enforce labels),
//! and every client its [`Clearance`]. A frame reaches a client only if the node's levels
//! permit that clearance to see that label, on live routing and in the late-joiner snapshot
//! alike. The check runs once per (frame, client) and is skipped for unlabelled frames and
//! unrestricted clients.
//!
//! Each event is encoded once per wire format into a shared [`CotFrame`] and appended to one
//! broadcast log. Publishing does not visit every client's queue: each connection pulls the
//! frames it wants from the log at its own cursor when it is ready to write, and only clients
//! that are idle (everything pulled) are woken, once, by a frame they want. What a client has
//! pulled but not yet written is its queue, bounded in bytes; a client that overflows it, or
//! falls so far behind that the log (bounded by the same number of bytes) drops frames it has
//! not pulled, is disconnected with a log line and a metric, never silently skipped, so
//! nothing is dropped for clients that keep up.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use rampart_labels::{Clearance, Levels};
use rampart_model::{Label, Timestamp};
use tokio::sync::Notify;

/// Queue slots an emptied client queue may keep; a larger one is freed once drained, so an
/// idle client holds no memory for the backlog it once had.
const IDLE_QUEUE_CAPACITY: usize = 1024;

/// Identifies a connected client.
pub type ClientId = u64;

/// A set of channel names.
pub type Channels = Arc<[Arc<str>]>;

/// The wire format a client reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Format {
    /// Streaming CoT XML.
    Xml = 0,
    /// TAK protocol v1, stream framing.
    Proto = 1,
}

/// One event, encoded for every wire format, shared by every queue it is on.
#[derive(Debug)]
pub struct CotFrame {
    /// The event's uid.
    pub uid: Arc<str>,
    /// The event's type (control events are never cached for late joiners).
    pub cot_type: Arc<str>,
    /// When the event goes stale (late joiners only get non-stale events).
    pub stale: Timestamp,
    /// The sender, which must not get its own event back; `None` for events from other sources.
    pub origin: Option<ClientId>,
    /// The channels the event may be delivered in; empty means every channel.
    pub channels: Arc<[Arc<str>]>,
    /// When set, only clients with one of these callsigns receive it (TAK `marti/dest`).
    pub dest_callsigns: Option<Arc<[String]>>,
    /// The security label of the event; `None` when every client may see it.
    pub label: Option<Arc<Label>>,
    /// The event as XML (no declaration), as streaming clients read it.
    pub xml: Bytes,
    /// The event as a stream-framed TAK protocol v1 message.
    pub proto: Bytes,
}

impl CotFrame {
    /// The same frame under another label (the encoded bytes are shared, not copied).
    fn with_label(&self, label: Option<Arc<Label>>) -> CotFrame {
        CotFrame {
            uid: self.uid.clone(),
            cot_type: self.cot_type.clone(),
            stale: self.stale,
            origin: self.origin,
            channels: self.channels.clone(),
            dest_callsigns: self.dest_callsigns.clone(),
            label,
            xml: self.xml.clone(),
            proto: self.proto.clone(),
        }
    }
}

/// The stream-framed protobuf form of an XML event, for frames built before any client
/// asked for protobuf.
fn reencode_proto(xml: &[u8]) -> Option<Vec<u8>> {
    let event = rampart_codec_cot::parse_xml(xml, &rampart_codec_cot::CotLimits::default()).ok()?;
    Some(rampart_codec_cot::encode_stream(&event.to_tak_message()))
}

impl CotFrame {
    fn bytes(&self, f: Format) -> &Bytes {
        match f {
            Format::Xml => &self.xml,
            Format::Proto => &self.proto,
        }
    }
}

/// One piece of a client's pending output.
#[derive(Debug)]
pub enum Outgoing {
    /// A routed frame, in the format the client read when it was taken.
    Frame(Arc<CotFrame>, Format),
    /// Bytes made for this client alone (control answers, a late protobuf encoding).
    Owned(Bytes),
}

impl Outgoing {
    /// The bytes to write.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Outgoing::Frame(f, format) => f.bytes(*format),
            Outgoing::Owned(b) => b,
        }
    }
}

/// Appends `f` to `out` in `format`; returns the bytes added.
fn take(f: Arc<CotFrame>, format: Format, out: &mut Vec<Outgoing>) -> usize {
    let len = f.bytes(format).len();
    if len == 0 && format == Format::Proto {
        // Published before any client spoke protobuf: encode it now (rare).
        return match reencode_proto(&f.xml) {
            Some(p) => {
                let n = p.len();
                out.push(Outgoing::Owned(Bytes::from(p)));
                n
            }
            None => 0,
        };
    }
    if len > 0 {
        out.push(Outgoing::Frame(f, format));
    }
    len
}

/// Why a client was cut off by the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cutoff {
    /// Its queue exceeded the byte bound: it cannot keep up.
    Overflow,
}

/// A connected client's routing state, shared between the router and its connection task.
#[derive(Debug)]
pub struct ClientHandle {
    /// The client's id.
    pub id: ClientId,
    /// The channels the client's events are sent into (empty: every client may see them).
    pub channels: Arc<[Arc<str>]>,
    /// The channels the client receives from; `None` receives from every channel. Events
    /// sent into no channel (other sources, unrestricted listeners) reach every client.
    pub recv: Option<Arc<[Arc<str>]>>,
    /// What the client may see.
    clearance: Clearance,
    format: AtomicU8,
    callsign: Mutex<Option<String>>,
    /// Frames pulled from the log (or from the join snapshot) and not yet taken for writing.
    queue: Mutex<ClientQueue>,
    /// Woken when a frame the idle client wants is published, or when it is cut off.
    pub notify: Notify,
    cut: AtomicBool,
    /// The log sequence number of the next frame to pull. Changed under the log lock only.
    cursor: AtomicU64,
    /// Set (under the log lock) when the client has pulled and taken everything; the first
    /// publisher of a frame it wants clears it and wakes the client.
    idle: AtomicBool,
    max_queue_bytes: usize,
    shared: Arc<Shared>,
}

/// The broadcast log: every published frame in order, for clients to pull at their cursor.
#[derive(Debug, Default)]
struct Log {
    frames: VecDeque<Arc<CotFrame>>,
    /// Sequence number of `frames[0]`.
    first: u64,
    /// XML bytes of the frames held: the log's bound is on these.
    bytes: usize,
}

impl Log {
    /// Sequence number of the next frame appended.
    fn head(&self) -> u64 {
        self.first + self.frames.len() as u64
    }
}

/// What the router and its client handles share.
#[derive(Debug)]
struct Shared {
    log: Mutex<Log>,
    /// The node's classification levels, for [`Levels::permits`].
    levels: Levels,
    /// Mirrors `stats.label_withheld` into the node's metrics.
    withheld: Counter,
    /// Mirrors `stats.deliveries` into the node's metrics.
    delivered: Counter,
    stats: RouterStats,
}

impl Shared {
    fn count_withheld(&self, n: u64) {
        if n > 0 {
            self.stats.label_withheld.fetch_add(n, Ordering::Relaxed);
            self.withheld.inc_by(n);
        }
    }

    fn count_delivered(&self, n: u64) {
        if n > 0 {
            self.stats.deliveries.fetch_add(n, Ordering::Relaxed);
            self.delivered.inc_by(n);
        }
    }
}

#[derive(Debug, Default)]
struct ClientQueue {
    frames: VecDeque<Arc<CotFrame>>,
    bytes: usize,
}

impl ClientHandle {
    /// The format the client reads now.
    pub fn format(&self) -> Format {
        if self.format.load(Ordering::Relaxed) == Format::Proto as u8 {
            Format::Proto
        } else {
            Format::Xml
        }
    }

    fn set_format(&self, f: Format) {
        self.format.store(f as u8, Ordering::Relaxed);
    }

    /// Records the callsign the client announced, for directed messages.
    pub fn set_callsign(&self, callsign: &str) {
        let mut c = self.callsign.lock();
        if c.as_deref() != Some(callsign) {
            *c = Some(callsign.to_string());
        }
    }

    /// What the client may see.
    pub fn clearance(&self) -> &Clearance {
        &self.clearance
    }

    /// Whether the client's clearance permits `frame`'s label. Unlabelled frames and
    /// unrestricted clients skip the comparison.
    fn may_see(&self, frame: &CotFrame, levels: &Levels) -> bool {
        match &frame.label {
            None => true,
            Some(label) => {
                self.clearance.is_unrestricted() || levels.permits(&self.clearance, label)
            }
        }
    }

    /// True once the router has cut the client off.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// Moves the client's pending frames into `out` as [`Outgoing`] pieces in its current
    /// format, stopping once they hold `max_bytes` (at least one frame is always taken):
    /// first what is already queued (the join snapshot, an earlier backlog), then the frames
    /// it wants from the broadcast log since its cursor; what does not fit is queued. Returns
    /// the number of frames taken. When frames remain, the client is woken again, so a large
    /// backlog is written in bounded pieces. The frames are shared, not copied: the
    /// connection hands them to one vectored write.
    pub fn drain_frames(&self, out: &mut Vec<Outgoing>, max_bytes: usize) -> usize {
        if self.idle.load(Ordering::SeqCst) && !self.is_cut() && self.queue.lock().frames.is_empty()
        {
            // Nothing it wants was published since it took everything (a publisher of one
            // would have cleared `idle`): the log need not even be looked at. The frames it
            // skips this way are passed over when the log drops them.
            return 0;
        }
        let format = self.format();
        let mut taken = 0;
        let mut bytes = 0;
        let log = self.shared.log.lock();
        let mut q = self.queue.lock();
        // 1. What was queued before comes first.
        while bytes < max_bytes {
            let Some(f) = q.frames.pop_front() else { break };
            q.bytes = q.bytes.saturating_sub(f.bytes(format).len());
            bytes += take(f, format, out);
            taken += 1;
        }
        // 2. New frames from the log, straight into `out` while the queue is empty.
        let cursor = self.cursor.load(Ordering::Relaxed);
        let (mut pulled, mut withheld) = (0u64, 0u64);
        if cursor < log.first && !self.is_cut() {
            // The log dropped frames this client had not pulled (only a client that was not
            // idle can miss any): it did not keep up.
            self.cut.store(true, Ordering::Relaxed);
            self.shared
                .stats
                .overflow_cutoffs
                .fetch_add(1, Ordering::Relaxed);
        }
        if !self.is_cut() {
            let start = (cursor.max(log.first) - log.first) as usize;
            for f in log.frames.range(start..) {
                if !self.wants(f) {
                    continue;
                }
                if !self.may_see(f, &self.shared.levels) {
                    withheld += 1;
                    continue;
                }
                pulled += 1;
                if q.frames.is_empty() && bytes < max_bytes {
                    bytes += take(f.clone(), format, out);
                    taken += 1;
                    continue;
                }
                let len = f.bytes(format).len();
                if q.bytes + len > self.max_queue_bytes {
                    q.frames.clear();
                    q.bytes = 0;
                    self.cut.store(true, Ordering::Relaxed);
                    self.shared
                        .stats
                        .overflow_cutoffs
                        .fetch_add(1, Ordering::Relaxed);
                    break;
                }
                q.bytes += len;
                q.frames.push_back(f.clone());
            }
            self.cursor.store(log.head(), Ordering::Relaxed);
        }
        let more = !q.frames.is_empty();
        if !more {
            q.bytes = 0;
            if q.frames.capacity() > IDLE_QUEUE_CAPACITY {
                // A drained backlog (a late joiner's picture, a burst) would otherwise keep
                // its peak capacity for as long as the client stays connected.
                q.frames = VecDeque::new();
            }
        }
        // Idle is set under the log lock: a publisher that appends after this sees it and
        // wakes the client; one that appended before is already in what was pulled.
        self.idle.store(!more, Ordering::SeqCst);
        drop(q);
        drop(log);
        self.shared.count_delivered(pulled);
        self.shared.count_withheld(withheld);
        if more || self.is_cut() {
            self.notify.notify_one();
        }
        taken
    }

    /// [`ClientHandle::drain_frames`], copying the bytes into one buffer.
    pub fn drain_into(&self, out: &mut Vec<u8>, max_bytes: usize) -> usize {
        let mut parts = Vec::new();
        let taken = self.drain_frames(&mut parts, max_bytes);
        for p in &parts {
            out.extend_from_slice(p.as_bytes());
        }
        taken
    }

    /// Bytes of live traffic queued for the client.
    pub fn queued_bytes(&self) -> usize {
        self.queue.lock().bytes
    }

    /// Queues the late-joiner picture. Its frames are shared with the cache and do not count
    /// towards the byte bound, which is for traffic the client must keep up with.
    fn push_snapshot(&self, frames: impl Iterator<Item = Arc<CotFrame>>) {
        let mut q = self.queue.lock();
        q.frames.extend(frames);
        let any = !q.frames.is_empty();
        drop(q);
        if any {
            self.notify.notify_one();
        }
    }

    fn wants(&self, frame: &CotFrame) -> bool {
        if frame.origin == Some(self.id) {
            return false;
        }
        let shares_channel = frame.channels.is_empty()
            || match &self.recv {
                None => true,
                Some(recv) => frame.channels.iter().any(|c| recv.contains(c)),
            };
        if !shares_channel {
            return false;
        }
        match &frame.dest_callsigns {
            None => true,
            Some(dest) => self
                .callsign
                .lock()
                .as_deref()
                .is_some_and(|c| dest.iter().any(|d| d == c)),
        }
    }
}

/// Router counters.
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Frames pulled by clients for writing (one per receiving client).
    pub deliveries: AtomicU64,
    /// Clients cut off for not keeping up.
    pub overflow_cutoffs: AtomicU64,
    /// Frames (live or in a join snapshot) withheld from a client by its clearance.
    pub label_withheld: AtomicU64,
}

/// The registry of connected clients, the broadcast log and the late-joiner cache.
#[derive(Debug)]
pub struct Router {
    clients: RwLock<HashMap<ClientId, Arc<ClientHandle>>>,
    latest: Mutex<HashMap<Arc<str>, Arc<CotFrame>>>,
    next_id: AtomicU64,
    proto_clients: AtomicU64,
    max_queue_bytes: usize,
    max_cached: usize,
    shared: Arc<Shared>,
}

impl Router {
    /// A router whose client queues (and broadcast log) hold at most `max_queue_bytes`,
    /// caching the latest event of at most `max_cached` entities for late joiners, with the
    /// default levels.
    pub fn new(max_queue_bytes: usize, max_cached: usize) -> Self {
        Self::with_levels(
            max_queue_bytes,
            max_cached,
            Levels::default(),
            Counter::default(),
            Counter::default(),
        )
    }

    /// [`Router::new`] comparing labels against `levels`, counting withheld frames in
    /// `withheld` and deliveries in `delivered` as well as in [`RouterStats`].
    pub fn with_levels(
        max_queue_bytes: usize,
        max_cached: usize,
        levels: Levels,
        withheld: Counter,
        delivered: Counter,
    ) -> Self {
        Router {
            clients: RwLock::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            proto_clients: AtomicU64::new(0),
            max_queue_bytes: max_queue_bytes.max(1024),
            max_cached,
            shared: Arc::new(Shared {
                log: Mutex::new(Log::default()),
                levels,
                withheld,
                delivered,
                stats: RouterStats::default(),
            }),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &RouterStats {
        &self.shared.stats
    }

    /// Registers a client in `channels`, cleared for `clearance`, and queues the current
    /// picture for it: the latest non-stale event of every entity it may see. Live frames
    /// follow from the log's head at the time of joining.
    pub fn join(
        &self,
        channels: Arc<[Arc<str>]>,
        recv: Option<Arc<[Arc<str>]>>,
        clearance: Clearance,
        now: Timestamp,
    ) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut clients = self.clients.write();
        let client = Arc::new(ClientHandle {
            id,
            channels,
            recv,
            clearance,
            format: AtomicU8::new(Format::Xml as u8),
            callsign: Mutex::new(None),
            queue: Mutex::new(ClientQueue::default()),
            notify: Notify::new(),
            cut: AtomicBool::new(false),
            cursor: AtomicU64::new(self.shared.log.lock().head()),
            idle: AtomicBool::new(false),
            max_queue_bytes: self.max_queue_bytes,
            shared: self.shared.clone(),
        });
        // Register first, then snapshot: an event published in between may arrive twice,
        // which TAK clients handle (same uid, same time), but none is missed.
        clients.insert(id, client.clone());
        drop(clients);
        let snapshot: Vec<Arc<CotFrame>> = self
            .latest
            .lock()
            .values()
            .filter(|f| f.stale > now)
            .cloned()
            .collect();
        // The picture is bounded by the cache, not by the queue bound: counting it would cut
        // off every client joining a picture larger than `max_queue_bytes`.
        let mut withheld = 0u64;
        client.push_snapshot(snapshot.into_iter().filter(|f| {
            if !client.wants(f) {
                return false;
            }
            let ok = client.may_see(f, &self.shared.levels);
            withheld += u64::from(!ok);
            ok
        }));
        self.shared.count_withheld(withheld);
        client
    }

    /// Removes a client.
    pub fn leave(&self, id: ClientId) {
        if let Some(c) = self.clients.write().remove(&id)
            && c.format() == Format::Proto
        {
            self.proto_clients.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Switches a client's wire format (after protocol negotiation).
    pub fn set_format(&self, client: &ClientHandle, f: Format) {
        if client.format() == f {
            return;
        }
        client.set_format(f);
        match f {
            Format::Proto => self.proto_clients.fetch_add(1, Ordering::Relaxed),
            Format::Xml => self.proto_clients.fetch_sub(1, Ordering::Relaxed),
        };
    }

    /// True when some client reads protobuf, so new frames need that encoding too.
    pub fn has_proto_clients(&self) -> bool {
        self.proto_clients.load(Ordering::Relaxed) > 0
    }

    /// Connected clients.
    pub fn len(&self) -> usize {
        self.clients.read().len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `frame` to the broadcast log for every client that may see it, wakes the idle
    /// clients that want it, and remembers it for late joiners when `cache` is set. Returns
    /// the clients cut off because the log had to drop frames they had not pulled.
    pub fn publish(&self, frame: Arc<CotFrame>, cache: bool) -> Vec<ClientId> {
        let mut frame = frame;
        if cache {
            let mut latest = self.latest.lock();
            // An entity's label is the join of everything known about it: an UNCLASSIFIED
            // update of an entity that an earlier SECRET report made SECRET is routed as
            // SECRET, so an uncleared client never learns that the SECRET entity moved.
            if let Some(prev) = latest.get(&frame.uid).and_then(|p| p.label.clone()) {
                let joined = match &frame.label {
                    Some(l) if **l == *prev => None,
                    Some(l) => Some(self.shared.levels.join(&prev, l)).filter(|j| *j != **l),
                    None => Some((*prev).clone()),
                };
                if let Some(j) = joined {
                    frame = Arc::new(frame.with_label(Some(Arc::new(j))));
                }
            }
            if latest.len() < self.max_cached || latest.contains_key(&frame.uid) {
                latest.insert(frame.uid.clone(), frame.clone());
            }
        }
        let clients = self.clients.read();
        let mut cut = Vec::new();
        {
            let mut log = self.shared.log.lock();
            log.bytes += frame.xml.len();
            log.frames.push_back(frame.clone());
            if log.bytes > self.max_queue_bytes {
                // Drop an eighth of the bound at once, so the clients are visited once per
                // eighth and not once per frame.
                let keep = self.max_queue_bytes - self.max_queue_bytes / 8;
                while log.bytes > keep {
                    let Some(f) = log.frames.pop_front() else {
                        break;
                    };
                    log.bytes = log.bytes.saturating_sub(f.xml.len());
                    log.first += 1;
                }
                let first = log.first;
                for c in clients.values() {
                    if c.cursor.load(Ordering::Relaxed) >= first {
                        continue;
                    }
                    if c.idle.load(Ordering::SeqCst) {
                        // Idle and not woken since: nothing it wants was published, so the
                        // dropped frames were none of its business.
                        c.cursor.store(first, Ordering::Relaxed);
                    } else if !c.cut.swap(true, Ordering::Relaxed) {
                        c.notify.notify_one();
                        cut.push(c.id);
                    }
                }
            }
        }
        for c in clients.values() {
            if c.idle.load(Ordering::SeqCst)
                && c.wants(&frame)
                && c.may_see(&frame, &self.shared.levels)
                && c.idle.swap(false, Ordering::SeqCst)
            {
                c.notify.notify_one();
            }
        }
        drop(clients);
        if !cut.is_empty() {
            self.shared
                .stats
                .overflow_cutoffs
                .fetch_add(cut.len() as u64, Ordering::Relaxed);
        }
        cut
    }

    /// Drops cached events that are stale at `now`. Returns how many were dropped.
    pub fn prune(&self, now: Timestamp) -> usize {
        let mut latest = self.latest.lock();
        let before = latest.len();
        latest.retain(|_, f| f.stale > now);
        before - latest.len()
    }

    /// Entities cached for late joiners.
    pub fn cached(&self) -> usize {
        self.latest.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn chans(names: &[&str]) -> Arc<[Arc<str>]> {
        names.iter().map(|n| Arc::<str>::from(*n)).collect()
    }

    fn recv(names: &[&str]) -> Option<Arc<[Arc<str>]>> {
        (!names.is_empty()).then(|| chans(names))
    }

    fn frame(uid: &str, origin: Option<ClientId>, channels: &[&str], stale: i64) -> Arc<CotFrame> {
        Arc::new(CotFrame {
            uid: uid.into(),
            cot_type: "a-f-G".into(),
            stale: Timestamp(stale),
            origin,
            channels: chans(channels),
            dest_callsigns: None,
            label: None,
            xml: Bytes::from(format!("<event uid='{uid}'/>")),
            proto: Bytes::from_static(b"\xbf\x01\x00"),
        })
    }

    fn drained(c: &ClientHandle) -> String {
        let mut out = Vec::new();
        c.drain_into(&mut out, usize::MAX);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn no_echo_channels_and_late_joiners() {
        let r = Router::new(1 << 20, 100);
        let a = r.join(
            chans(&["blue"]),
            recv(&["blue"]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        let b = r.join(
            chans(&["blue"]),
            recv(&["blue"]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        let c = r.join(
            chans(&["red"]),
            recv(&["red"]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        r.publish(frame("a-sa", Some(a.id), &["blue"], 1000), true);
        assert_eq!(drained(&a), "");
        assert_eq!(drained(&b), "<event uid='a-sa'/>");
        assert_eq!(drained(&c), "");
        // Events from other sources (no channel) go to everyone.
        r.publish(frame("http-1", None, &[], 1000), true);
        assert!(drained(&c).contains("http-1"));
        // A late joiner gets the current, non-stale picture of its channels.
        r.publish(frame("old", Some(b.id), &["blue"], 10), true);
        let d = r.join(
            chans(&["blue"]),
            recv(&["blue"]),
            Clearance::unrestricted(),
            Timestamp(500),
        );
        let got = drained(&d);
        assert!(
            got.contains("a-sa") && got.contains("http-1") && !got.contains("old"),
            "{got}"
        );
        assert_eq!(r.prune(Timestamp(500)), 1);
    }

    #[test]
    fn slow_clients_are_cut_off_not_skipped() {
        let r = Router::new(1024, 100);
        let fast = r.join(
            chans(&[]),
            recv(&[]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        let slow = r.join(
            chans(&[]),
            recv(&[]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        let mut cut = Vec::new();
        for i in 0..200 {
            cut.extend(r.publish(frame(&format!("e{i}"), None, &[], 1000), false));
            drained(&fast);
        }
        assert_eq!(cut, vec![slow.id]);
        assert!(slow.is_cut());
        assert!(!fast.is_cut());
        assert_eq!(r.stats().overflow_cutoffs.load(Ordering::Relaxed), 1);
    }

    /// The log wraps many times over while a client of a quiet channel is idle: it is not cut
    /// (nothing it wants was dropped), it is not woken by traffic it does not want, and it
    /// still gets the next frame it does want.
    #[tokio::test]
    async fn idle_clients_of_quiet_channels_survive_the_log_wrapping_and_sleep() {
        let r = Router::new(1024, 100);
        let red = r.join(
            chans(&["red"]),
            recv(&["red"]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        let blue = r.join(
            chans(&["blue"]),
            recv(&["blue"]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        assert_eq!(drained(&red), "");
        let woken = |c: &ClientHandle| futures_now(c.notify.notified());
        // Clear the join's wake-up.
        let _ = woken(&red);
        let mut cut = Vec::new();
        for i in 0..500 {
            cut.extend(r.publish(frame(&format!("b{i}"), None, &["blue"], 1000), false));
            if i % 10 == 0 {
                drained(&blue);
            }
        }
        assert!(cut.is_empty(), "cut: {cut:?}");
        assert!(!red.is_cut() && !blue.is_cut());
        assert!(!woken(&red), "woken by frames of another channel");
        r.publish(frame("r1", None, &["red"], 1000), false);
        assert!(woken(&red), "not woken by a frame it wants");
        assert_eq!(drained(&red), "<event uid='r1'/>");
    }

    /// Whether a `notified()` future is ready at once (a stored wake-up).
    fn futures_now(f: tokio::sync::futures::Notified<'_>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn a_drained_backlog_does_not_keep_its_queue_memory() {
        let r = Router::new(1 << 30, 10_000);
        for i in 0..5_000 {
            r.publish(frame(&format!("e{i}"), None, &[], 1000), true);
        }
        let c = r.join(
            chans(&[]),
            recv(&[]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        assert!(c.queue.lock().frames.capacity() >= 5_000);
        let mut parts = Vec::new();
        while c.drain_frames(&mut parts, 64 * 1024) > 0 {}
        assert_eq!(parts.len(), 5_000);
        assert!(c.queue.lock().frames.capacity() <= IDLE_QUEUE_CAPACITY);
    }

    #[test]
    fn a_picture_larger_than_the_queue_bound_does_not_cut_off_a_joiner() {
        let r = Router::new(1024, 10_000);
        for i in 0..500 {
            r.publish(frame(&format!("e{i}"), None, &[], 1000), true);
        }
        let late = r.join(
            chans(&[]),
            recv(&[]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        assert!(!late.is_cut());
        let got = drained(&late);
        assert_eq!(got.matches("<event").count(), 500);
        // Live traffic is bounded again once the picture is drained.
        r.publish(frame("live", None, &[], 1000), false);
        assert!(!late.is_cut());
        assert!(drained(&late).contains("live"));
    }

    #[test]
    fn directed_messages_reach_only_their_callsigns() {
        let r = Router::new(1 << 20, 100);
        let alice = r.join(
            chans(&[]),
            recv(&[]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        alice.set_callsign("ALICE");
        let bob = r.join(
            chans(&[]),
            recv(&[]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        bob.set_callsign("BOB");
        let mut f = frame("chat", None, &[], 1000);
        Arc::get_mut(&mut f).unwrap().dest_callsigns = Some(Arc::from(vec!["BOB".to_string()]));
        r.publish(f, false);
        assert_eq!(drained(&alice), "");
        assert!(drained(&bob).contains("chat"));
    }

    #[test]
    fn format_switch_changes_the_bytes() {
        let r = Router::new(1 << 20, 100);
        let a = r.join(
            chans(&[]),
            recv(&[]),
            Clearance::unrestricted(),
            Timestamp(0),
        );
        r.set_format(&a, Format::Proto);
        assert!(r.has_proto_clients());
        r.publish(frame("x", None, &[], 1000), false);
        let mut out = Vec::new();
        a.drain_into(&mut out, usize::MAX);
        assert_eq!(out, b"\xbf\x01\x00");
    }

    fn label(classification: &str, rel: &[&str]) -> Option<Arc<Label>> {
        Some(Arc::new(Label {
            classification: classification.into(),
            releasability: rel.iter().map(|g| (*g).into()).collect(),
        }))
    }

    fn labelled(uid: &str, l: Option<Arc<Label>>) -> Arc<CotFrame> {
        let mut f = frame(uid, None, &[], 1000);
        Arc::get_mut(&mut f).unwrap().label = l;
        f
    }

    fn uids(c: &ClientHandle) -> Vec<String> {
        let got = drained(c);
        let mut v: Vec<String> = got
            .split("<event uid='")
            .skip(1)
            .map(|s| s.split('\'').next().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// Cleared SECRET+NATO, cleared CONFIDENTIAL, anonymous (lowest), unrestricted.
    fn cleared(r: &Router) -> [Arc<ClientHandle>; 4] {
        let levels = Levels::default();
        let join = |c: Clearance| r.join(chans(&[]), recv(&[]), c, Timestamp(0));
        [
            join(levels.clearance("SECRET", &["NATO"]).unwrap()),
            join(levels.clearance::<&str>("CONFIDENTIAL", &[]).unwrap()),
            join(levels.clearance::<&str>("UNCLASSIFIED", &[]).unwrap()),
            join(Clearance::unrestricted()),
        ]
    }

    fn publish_all(r: &Router) {
        r.publish(labelled("public", None), true);
        r.publish(labelled("u", label("UNCLASSIFIED", &[])), true);
        r.publish(labelled("s-nato", label("SECRET", &["NATO"])), true);
        r.publish(labelled("s-fvey", label("SECRET", &["FVEY"])), true);
        r.publish(labelled("c", label("CONFIDENTIAL", &[])), true);
        r.publish(labelled("ts", label("TOP SECRET", &[])), true);
        r.publish(labelled("typo", label("SECERT", &[])), true);
    }

    fn expect_by_clearance(clients: &[Arc<ClientHandle>; 4], what: &str) {
        let [nato, conf, anon, all] = clients;
        assert_eq!(
            uids(nato),
            ["c", "public", "s-nato", "u"],
            "{what}: SECRET NATO"
        );
        assert_eq!(uids(conf), ["c", "public", "u"], "{what}: CONFIDENTIAL");
        assert_eq!(uids(anon), ["public", "u"], "{what}: anonymous");
        assert_eq!(
            uids(all),
            ["c", "public", "s-fvey", "s-nato", "ts", "typo", "u"],
            "{what}: unrestricted"
        );
    }

    #[test]
    fn live_routing_respects_clearance_and_releasability() {
        let withheld = Counter::default();
        let r = Router::with_levels(
            1 << 20,
            100,
            Levels::default(),
            withheld.clone(),
            Counter::default(),
        );
        let clients = cleared(&r);
        publish_all(&r);
        expect_by_clearance(&clients, "live");
        // nato: s-fvey, ts, typo; conf: + s-nato; anon: + c.
        assert_eq!(r.stats().label_withheld.load(Ordering::Relaxed), 3 + 4 + 5);
        assert_eq!(withheld.get(), 3 + 4 + 5);
    }

    #[test]
    fn late_joiners_get_only_the_picture_they_are_cleared_for() {
        let r = Router::new(1 << 20, 100);
        publish_all(&r);
        let clients = cleared(&r);
        expect_by_clearance(&clients, "snapshot");
        assert_eq!(r.stats().label_withheld.load(Ordering::Relaxed), 3 + 4 + 5);
    }

    /// An unlabelled (or lower-labelled) update of an entity cached under a higher label is
    /// routed under the join, so an uncleared client does not see the SECRET entity move.
    #[test]
    fn updates_of_a_labelled_entity_keep_its_highest_label() {
        let r = Router::new(1 << 20, 100);
        let [nato, _, anon, _] = cleared(&r);
        r.publish(labelled("e", label("SECRET", &["NATO"])), true);
        r.publish(labelled("e", None), true);
        r.publish(labelled("e", label("UNCLASSIFIED", &[])), true);
        r.publish(labelled("other", None), true);
        assert_eq!(
            uids(&anon),
            ["other"],
            "the low client saw the SECRET entity's updates"
        );
        assert_eq!(uids(&nato), ["e", "e", "e", "other"]);
        assert_eq!(
            r.latest
                .lock()
                .get("e")
                .and_then(|f| f.label.clone())
                .as_deref(),
            label("SECRET", &["NATO"]).as_deref()
        );
    }

    #[test]
    fn the_label_check_comes_after_channels_and_never_echoes() {
        let r = Router::new(1 << 20, 100);
        let levels = Levels::default();
        let nato = r.join(
            chans(&["blue"]),
            recv(&["blue"]),
            levels.clearance("SECRET", &["NATO"]).unwrap(),
            Timestamp(0),
        );
        // Another channel: not delivered and not counted as withheld by label.
        let mut f = frame("red", None, &["red"], 1000);
        Arc::get_mut(&mut f).unwrap().label = label("SECRET", &["NATO"]);
        r.publish(f, false);
        let mut own = frame("own", Some(nato.id), &["blue"], 1000);
        Arc::get_mut(&mut own).unwrap().label = label("UNCLASSIFIED", &[]);
        r.publish(own, false);
        assert_eq!(drained(&nato), "");
        assert_eq!(r.stats().label_withheld.load(Ordering::Relaxed), 0);
    }
}
