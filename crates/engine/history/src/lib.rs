//! # rampart-history
//!
//! The durable history of every accepted report, behind the [`HistoryStore`] trait (the seam
//! for a later PostgreSQL or JetStream implementation). The embedded implementation,
//! [`SegmentLog`], is a purpose-built segment log:
//!
//! - **Group commit.** [`HistoryStore::append`] encodes reports into an in-memory buffer and
//!   returns a [`Ticket`]. A dedicated flusher thread writes everything buffered as one
//!   CRC32C-protected frame, fdatasyncs it, and only then publishes the ticket as durable
//!   ([`HistoryStore::durable`], [`HistoryStore::wait_durable`]). Acknowledged means fsynced.
//! - **Compact encoding.** Per-segment dictionaries turn each distinct (uid, type, how,
//!   callsign, label, provenance) into a small stream number, and position records hold
//!   delta-coded, quantised fields: a moving entity costs about 20 bytes per report on disk,
//!   index included. Positions come back quantised (see [`quantize`]).
//! - **Track index.** Each segment indexes record offsets per stream: in memory while it is
//!   written, in a CRC-protected `.idx` sidecar once sealed (memory-mapped on first use,
//!   rebuilt by a scan if missing or damaged). Segments are read through read-only maps of
//!   their committed (fsynced) length only.
//! - **Recovery.** On open the newest segment is verified frame by frame and a torn tail is
//!   truncated (logged with file and offset); damage inside an older segment skips the rest of
//!   that segment. Nothing panics on corrupt files.
//! - **Retention.** Whole oldest segments are deleted by age and total size.
//!
//! Modules: `codec` (record encoding and dictionaries), `format` (file layouts, frames,
//! sidecars), `segment` (one segment file: mapping, index, recovery, decoding), `store`
//! (the [`SegmentLog`]: writer, flusher thread, queries, retention), `error`.
//!
//! ## On-disk format (version 1)
//!
//! ```text
//! <dir>/LOCK                  advisory lock: one process per directory
//! <dir>/seg-<seq:020>.log     header: "RMPHSEG1", version u32, reserved u32, seq u64, created ms i64
//!                             frames: len u32 | crc32c(len ‖ payload) u32 | payload
//!                               one frame per group commit; payload = records:
//!                               0x81 string  (defines string id n)
//!                               0x82 stream  (defines stream id n: uid, type, how, callsign,
//!                                             label, provenance)
//!                               0x00..=0x7F position (flags, stream, zigzag deltas vs the
//!                                             stream's previous record: time ms, lat/lon 1e-7°,
//!                                             hae dm, course 0.1°, speed cm/s; ce/le dm;
//!                                             stale s or ms; start; attributes; id)
//! <dir>/seg-<seq:020>.idx     sidecar of a sealed segment: uid-hash table, per-stream record
//!                             offsets (u32), string offsets; CRC32C over all of it
//! ```

mod codec;
mod error;
mod format;
mod segment;
mod store;

use std::path::PathBuf;

use rampart_model::{Report, Timestamp};

pub use codec::quantize;
pub use error::HistoryError;
pub use store::SegmentLog;

/// A commit ticket: one per [`HistoryStore::append`] call, increasing.
pub type Ticket = u64;

/// The durability watermark: every ticket up to `ticket` is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Durable {
    /// The highest durable ticket (0 before the first commit).
    pub ticket: Ticket,
    /// True after an I/O error: nothing more is acknowledged and appends fail.
    pub failed: bool,
}

/// A track query: the reports of one entity within a time window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackQuery {
    /// The entity.
    pub uid: String,
    /// Earliest report time, inclusive.
    pub from: Timestamp,
    /// Latest report time, inclusive.
    pub to: Timestamp,
    /// Most points returned: the *latest* `limit` in the window, returned oldest first.
    pub limit: usize,
}

/// A window scan: the reports of every entity within a time window (console playback of
/// entities that may have left the live picture).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowQuery {
    /// Earliest report time, inclusive.
    pub from: Timestamp,
    /// Latest report time, inclusive.
    pub to: Timestamp,
    /// Most reports returned (capped by the store's own bound, for [`SegmentLog`]
    /// [`SegmentLogConfig::max_window_records`]). When more match, the most recently
    /// appended are kept and [`Window::truncated`] is set.
    pub max_records: usize,
}

/// The answer of [`HistoryStore::window`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Window {
    /// The reports in the window, sorted by time (ties in append order).
    pub reports: Vec<Report>,
    /// True when more reports matched than the record limit allowed.
    pub truncated: bool,
}

/// Size and content of the store.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HistoryStats {
    /// Bytes on disk: segment files plus sidecar indexes.
    pub bytes: u64,
    /// Segment files, including the one being written.
    pub segments: usize,
    /// Reports retained (including ones still waiting for their commit).
    pub reports: u64,
    /// Time of the oldest retained report.
    pub oldest: Option<Timestamp>,
}

/// A durable, append-only history of reports.
pub trait HistoryStore: Send + Sync + 'static {
    /// Encodes and buffers `reports` (already validated, provenance set) for the next group
    /// commit and returns the ticket that becomes durable once the commit containing them has
    /// been fsynced. Fast: this is on the ingest path. Blocks (backpressure) while the
    /// not-yet-written buffer is over its bound. An empty slice returns the newest ticket.
    fn append(&self, reports: &[Report]) -> Result<Ticket, HistoryError>;

    /// A watch of the highest durable ticket; `failed` turns true after an I/O error (then
    /// nothing more is acknowledged and `append` returns an error).
    fn durable(&self) -> tokio::sync::watch::Receiver<Durable>;

    /// Asks for `ticket` to become durable as soon as the store can: somebody waits for it.
    /// Appends nobody asked for may wait for a later, shared commit (the segment log's
    /// `lazy_commit_ms`). [`HistoryStore::wait_durable`] asks by itself.
    fn expedite(&self, ticket: Ticket) {
        let _ = ticket;
    }

    /// Blocks until `ticket` is durable (for benchmarks and synchronous callers). Fails if the
    /// store failed or `ticket` was never issued.
    fn wait_durable(&self, ticket: Ticket) -> Result<(), HistoryError>;

    /// Durable reports of `q.uid` with `q.from <= time <= q.to`, sorted by time (ties in append
    /// order). When more than `q.limit` match, the **latest** `q.limit` are kept; they are
    /// still returned oldest first. Positions come back quantised (see [`quantize`]).
    fn track(&self, q: &TrackQuery) -> Result<Vec<Report>, HistoryError>;

    /// Durable reports of every entity with `q.from <= time <= q.to`, sorted by time (ties in
    /// append order), at most `q.max_records`: when more match, the most recently appended
    /// are kept and the answer says it was truncated. Positions come back quantised.
    ///
    /// The default scans [`HistoryStore::replay`] (every report); a store with a time index
    /// should skip what lies outside the window, as [`SegmentLog`] does.
    fn window(&self, q: &WindowQuery) -> Result<Window, HistoryError> {
        let mut kept = std::collections::VecDeque::new();
        let mut truncated = false;
        if q.max_records == 0 || q.from > q.to {
            return Ok(Window::default());
        }
        self.replay(&mut |r| {
            if q.from <= r.time && r.time <= q.to {
                if kept.len() == q.max_records {
                    kept.pop_front();
                    truncated = true;
                }
                kept.push_back(r);
            }
        })?;
        let mut reports = Vec::from(kept);
        reports.sort_by_key(|r| r.time);
        Ok(Window { reports, truncated })
    }

    /// Calls `f` for every retained, durable report in append order; returns how many. Used
    /// to rebuild the live picture and the idempotency memory on restart.
    fn replay(&self, f: &mut dyn FnMut(Report)) -> Result<u64, HistoryError>;

    /// Deletes whole oldest segments whose reports are all older than the age limit (relative
    /// to `now`) or while the store is over its size limit; returns the bytes freed. The
    /// segment being written is never deleted.
    fn enforce_retention(&self, now: Timestamp) -> Result<u64, HistoryError>;

    /// Size and content of the store.
    fn stats(&self) -> HistoryStats;
}

/// Configuration of a [`SegmentLog`]. Every in-memory structure is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentLogConfig {
    /// Directory holding the segments (created if missing; one process at a time).
    pub dir: PathBuf,
    /// Roll to a new segment once the current one reaches this size (64 MiB; at most 1 GiB
    /// because record offsets are 32-bit).
    pub segment_bytes: u64,
    /// Roll to a new segment once the current one is this old (1 h), so age retention, which
    /// deletes whole segments, is this granular.
    pub segment_max_age_ms: i64,
    /// Retention: total bytes on disk (10 GiB). Keep it well above `segment_bytes`.
    pub max_bytes: u64,
    /// Retention: reports older than this relative to `enforce_retention`'s `now` (30 days).
    pub max_age_ms: i64,
    /// Bound on the encoded, not-yet-written group-commit buffer (64 MiB): `append` blocks
    /// while the buffer is over it. Memory in flight is at most about twice this (one buffer
    /// being written, one filling).
    pub max_buffer_bytes: usize,
    /// Extra time the flusher waits to gather more appends into a commit (0 = flush as soon
    /// as the flusher is free, which already groups everything that arrived during the last
    /// fsync). At most 20.
    pub commit_delay_ms: u64,
    /// Longest wait before appends that nobody waits for are committed (20 ms): they ride
    /// the next commit somebody asked for ([`HistoryStore::expedite`]) or go after this.
    /// Bounds what a crash can lose of unacknowledged streams (TAK, UDP feeds), and makes
    /// such a stream cost at most 50 fsyncs a second. 0 commits every append at once.
    pub lazy_commit_ms: u64,
    /// fdatasync each commit (true). `false` only for tests: acknowledgements then mean
    /// "written", not "durable".
    pub fsync: bool,
    /// Most dictionary entries (distinct strings plus streams) in one segment (1 Mi); the
    /// writer rolls to a new segment when it is reached. Bounds the writer's memory to
    /// roughly 200 bytes per entry.
    pub max_dict_entries: usize,
    /// Most points a track query returns, whatever its `limit` (1,000,000).
    pub max_track_points: usize,
    /// Most reports a window scan ([`HistoryStore::window`]) returns, whatever its
    /// `max_records` (1,000,000): bounds the scan's memory to about 400 bytes per report.
    pub max_window_records: usize,
}

impl SegmentLogConfig {
    /// The default configuration for a store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SegmentLogConfig {
            dir: dir.into(),
            segment_bytes: 64 << 20,
            segment_max_age_ms: 60 * 60 * 1000,
            max_bytes: 10 << 30,
            max_age_ms: 30 * 24 * 60 * 60 * 1000,
            max_buffer_bytes: 64 << 20,
            commit_delay_ms: 0,
            lazy_commit_ms: 20,
            fsync: true,
            max_dict_entries: 1 << 20,
            max_track_points: 1_000_000,
            max_window_records: 1_000_000,
        }
    }

    fn validate(&self) -> Result<(), HistoryError> {
        let bad = |m: &str| Err(HistoryError::Config(m.to_string()));
        if !(4096..=(1 << 30)).contains(&self.segment_bytes) {
            return bad("segment_bytes must be between 4 KiB and 1 GiB");
        }
        if self.segment_max_age_ms <= 0 || self.max_age_ms <= 0 {
            return bad("segment_max_age_ms and max_age_ms must be positive");
        }
        if self.max_buffer_bytes == 0 {
            return bad("max_buffer_bytes must be positive");
        }
        if self.commit_delay_ms > 20 {
            return bad("commit_delay_ms must be at most 20");
        }
        if self.max_dict_entries < 64 {
            return bad("max_dict_entries must be at least 64");
        }
        if self.max_track_points == 0 {
            return bad("max_track_points must be positive");
        }
        if self.max_window_records == 0 {
            return bad("max_window_records must be positive");
        }
        Ok(())
    }
}
