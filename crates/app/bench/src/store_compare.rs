//! Storage engine comparison behind the choice of the history store: the project's
//! [`SegmentLog`] against two well-kept, pure-Rust embedded databases, `redb` (a copy-on-write
//! B-tree) and `fjall` (an LSM tree), measured side by side in one run on one generated
//! workload. `rampart bench store-compare` prints one [`Figures`] table per engine and a ratio
//! summary against the targets of the storage issue:
//!
//! - durable ingest of at least 1,000,000 reports/s, with group commit every 20 ms or less;
//! - at most 24 bytes on disk per position report;
//! - a track query of 100,000 points in at most 20 ms.
//!
//! ## Workload
//!
//! 100,000 moving entities (ground vehicles and aircraft with course, speed, height, a 60 s
//! stale time, a label and provenance), 2,000,000 reports in batches of 1,000, generated once
//! before any store is opened so every engine ingests exactly the same reports and generation
//! is never timed. The track workload is one entity with 100,000 points, each followed by one
//! report from each of 10 other entities at the same time (1.1 M reports), so the track is
//! interleaved with other data as it is in a real store.
//!
//! ## How each engine is driven
//!
//! - **Segment log, pipelined** (the production mode): [`HistoryStore::append`] per batch and a
//!   single [`HistoryStore::wait_durable`] on the last ticket. The flusher thread group-commits
//!   whatever accumulated during the previous fdatasync, so commits follow each other as fast
//!   as fdatasync allows (well under 20 ms apart) and each is durable before it is acknowledged.
//! - **Segment log, wait per batch**: `append` then `wait_durable` for every batch: one
//!   synchronous fdatasync per batch, exactly the pattern the databases below are given.
//! - **redb**: one write transaction per batch, committed with the default
//!   `Durability::Immediate`. Positions live in a table keyed by `(uid hash, time ms)`, so a
//!   track is a range scan; the value is a fixed 23-byte encoding (flags, lat/lon as i32
//!   1e-7°, hae i32 dm, course u16 0.1°, speed u32 cm/s, stale delta i32 ms), quantised exactly
//!   as the segment log quantises. Static fields (uid, type, how, callsign, label, provenance)
//!   are stored once per entity in a second table.
//! - **fjall**: one write batch per report batch, committed with `PersistMode::SyncData`
//!   (fdatasync of its journal), same 16-byte keys (big-endian so byte order is time order)
//!   and 23-byte values, LZ4 block compression on every level so its size figure is its best.
//!
//! The database encodings are deliberately generous to the databases: they store only the
//! fields this workload has (no ce/le, start, attributes or idempotency id), assume an entity's
//! static fields never change, and let a second report of one entity at the same millisecond
//! overwrite the first. The segment log stores all of that. Any of these would add bytes and
//! work to the databases, never remove them.
//!
//! Bytes on disk are the blocks allocated to every file in the store's directory after a clean
//! close. redb is also measured after its compaction and fjall after flushing its memtables
//! and compacting fully (with and without its active journal), so each database's best size
//! is shown next to its plain one.
//!
//! Track queries run on a store that was built, closed and reopened, and return decoded
//! [`Report`]s in every engine. The first run (it maps files and fills caches) is reported on
//! its own, then the median and maximum of the next ten. Ingest runs twice per engine and the
//! faster round counts; see [`compare_with`] for why, on a shared two-core machine.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig, Ticket, TrackQuery};
use rampart_model::{Label, Provenance, Report, Text, Timestamp};
use redb::{ReadableDatabase, ReadableTable};

use crate::Figures;
use crate::util::quantile;

/// 2026-01-01T00:00:00Z: the simulated clock's start.
const T0: i64 = 1_767_225_600_000;
/// Milliseconds between two reports of one entity in the ingest workload.
const INTERVAL_MS: i64 = 5_000;
/// The uid of the entity whose track is queried.
const TRACK_UID: &str = "track-000000";

/// Sizes of one comparison run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Distinct moving entities in the ingest workload.
    pub entities: usize,
    /// Reports in the ingest workload.
    pub reports: usize,
    /// Reports per append call, transaction or write batch.
    pub batch: usize,
    /// Points of the queried track.
    pub track_points: usize,
    /// Other entities, each reporting once per track point, interleaved with the track.
    pub track_others: usize,
    /// Timed track query runs (after one untimed first run); the median is reported.
    pub query_runs: usize,
    /// Ingest rounds; each engine's fastest round is reported (contention only slows down).
    pub ingest_rounds: usize,
    /// Ingest into one engine stops after the first batch that ends past this budget, so a
    /// slow engine cannot stretch the run; its figures then cover what it ingested, and
    /// `ingest stopped at budget` says so. `None` never stops.
    pub ingest_budget: Option<Duration>,
}

impl Sizes {
    /// The sizes of the storage issue: 100,000 entities, 2,000,000 reports in batches of
    /// 1,000, a 100,000-point track among 10 other entities, 10 query runs, two ingest rounds
    /// and a 40 s ingest budget per engine and round, so the whole run stays under about three
    /// minutes on two cores even if a store is very slow.
    pub fn full() -> Self {
        Sizes {
            entities: 100_000,
            reports: 2_000_000,
            batch: 1_000,
            track_points: 100_000,
            track_others: 10,
            query_runs: 10,
            ingest_rounds: 2,
            ingest_budget: Some(Duration::from_secs(40)),
        }
    }

    /// Ten times smaller in every count (batches stay 1,000), one round, no budget: the smoke
    /// run.
    pub fn quick() -> Self {
        Sizes {
            entities: 10_000,
            reports: 200_000,
            batch: 1_000,
            track_points: 10_000,
            track_others: 10,
            query_runs: 10,
            ingest_rounds: 1,
            ingest_budget: None,
        }
    }
}

/// Runs the comparison at [`Sizes::full`] or, with `quick`, [`Sizes::quick`].
pub fn compare(quick: bool) -> Result<Vec<Figures>> {
    compare_with(&if quick { Sizes::quick() } else { Sizes::full() })
}

/// Runs the comparison at `sizes`: one [`Figures`] table per engine, in the order segment log
/// (pipelined), segment log (wait per batch), redb, fjall, then the summary table.
///
/// The machine may be shared (builds, other benchmarks), and contention only ever slows a
/// store down, so ingest runs `sizes.ingest_rounds` times with the engines in turn and keeps
/// each engine's fastest round, and the track queries of all engines alternate run by run, so
/// a burst of contention falls on all of them alike. The 1-minute load average at the start is
/// recorded so a reader can judge how quiet the machine was.
pub fn compare_with(sizes: &Sizes) -> Result<Vec<Figures>> {
    if sizes.batch == 0 || sizes.reports == 0 || sizes.track_points == 0 {
        bail!("store-compare needs a positive batch size, report count and track length");
    }
    let load = load_average();
    progress("generating the workloads");
    let ingest = ingest_workload(sizes);
    let track = track_workload(sizes);

    let mut best: Vec<Option<Ingest>> = Engine::ALL.iter().map(|_| None).collect();
    for round in 0..sizes.ingest_rounds.max(1) {
        for (engine, slot) in Engine::ALL.into_iter().zip(&mut best) {
            progress(&format!("{}: ingest, round {}", engine.name(), round + 1));
            // Sizes are the same every round: only the first reclaims space to measure it.
            let m = measure_ingest(engine, &ingest, sizes, round == 0)?;
            *slot = Some(match slot.take() {
                Some(prev) if prev.rate() >= m.rate() => prev.with_extra(m.extra),
                Some(prev) => m.with_extra(prev.extra),
                None => m,
            });
        }
    }

    // Both segment log modes build the same store, so its track is measured once.
    let queried = [Engine::SegmentLogPipelined, Engine::Redb, Engine::Fjall];
    let mut fixtures = Vec::new();
    for engine in queried {
        progress(&format!("{}: building the track store", engine.name()));
        fixtures.push(build_track(engine, &track)?);
    }
    progress("track queries");
    let tracks = query_tracks(&fixtures, sizes)?;
    for (_, store) in fixtures {
        store.close()?;
    }

    let mut results = Vec::new();
    for (engine, m) in Engine::ALL.into_iter().zip(best) {
        let mut fig = Figures::new(&format!("store-compare: {}", engine.name()));
        fig.push("1-min load average at start", load, "");
        if let Some(m) = m {
            m.push(engine, &mut fig);
        }
        if let Some(i) = queried.iter().position(|e| *e == engine) {
            tracks[i].push(sizes, &mut fig);
        }
        results.push(fig);
    }
    results.push(summary(&results));
    Ok(results)
}

/// The 1-minute load average (Linux), or NaN where it cannot be read.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn progress(what: &str) {
    // On stderr, so `--json` output on stdout stays parseable during a minutes-long run.
    eprintln!("store-compare: {what}");
}

// ---------------------------------------------------------------------------------------------
// Engines

/// The stores compared, each with the way it is driven (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    SegmentLogPipelined,
    SegmentLogPerBatch,
    Redb,
    Fjall,
}

impl Engine {
    const ALL: [Engine; 4] = [
        Engine::SegmentLogPipelined,
        Engine::SegmentLogPerBatch,
        Engine::Redb,
        Engine::Fjall,
    ];

    fn name(self) -> &'static str {
        match self {
            Engine::SegmentLogPipelined => "segment log (pipelined group commit)",
            Engine::SegmentLogPerBatch => "segment log (wait per batch)",
            Engine::Redb => "redb (txn per batch, Durability::Immediate)",
            Engine::Fjall => "fjall (batch per commit, PersistMode::SyncData)",
        }
    }

    /// True when every batch is durable before the next one starts, so a batch's wall time is
    /// its commit latency.
    fn durable_per_batch(self) -> bool {
        self != Engine::SegmentLogPipelined
    }

    /// Opens the engine in `dir`. `durable` false is for building query fixtures only: setup
    /// time is not measured, and [`Store::finish`] still makes everything durable.
    fn open(self, dir: &Path, durable: bool, small_segments: bool) -> Result<Box<dyn Store>> {
        Ok(match self {
            Engine::SegmentLogPipelined | Engine::SegmentLogPerBatch => Box::new(SegStore::open(
                dir,
                durable,
                small_segments,
                self == Engine::SegmentLogPerBatch,
            )?),
            Engine::Redb => Box::new(RedbStore::open(dir, durable)?),
            Engine::Fjall => Box::new(FjallStore::open(dir, durable)?),
        })
    }
}

/// What the comparison needs from a store.
trait Store {
    /// Stores one batch. Engines driven per batch make it durable before returning.
    fn append(&mut self, batch: &[Report]) -> Result<()>;
    /// Makes everything appended so far durable.
    fn finish(&mut self) -> Result<()>;
    /// The latest `limit` reports of `uid` with `from <= time <= to`, oldest first, decoded.
    fn track(&self, uid: &str, from: i64, to: i64, limit: usize) -> Result<Vec<Report>>;
    /// Closes the store cleanly: after this every byte it will keep is on disk.
    fn close(self: Box<Self>) -> Result<()>;
    /// Finishes the store's deferred background work (memtable flushes, compaction) so its
    /// files are in their steady-state shape. Nothing to do for most stores.
    fn settle(&self) -> Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// One ingest round's figures.
struct Ingest {
    ingested: usize,
    stopped: bool,
    secs: f64,
    batch_p50: f64,
    batch_p99: f64,
    bytes: u64,
    /// Engine-specific size figures after space reclamation (first round only).
    extra: Vec<(String, f64, String)>,
}

impl Ingest {
    fn rate(&self) -> f64 {
        self.ingested as f64 / self.secs.max(1e-9)
    }

    fn with_extra(mut self, extra: Vec<(String, f64, String)>) -> Self {
        if self.extra.is_empty() {
            self.extra = extra;
        }
        self
    }

    fn push(&self, engine: Engine, fig: &mut Figures) {
        fig.push("reports ingested", self.ingested as f64, "");
        fig.push(
            "ingest stopped at budget",
            f64::from(u8::from(self.stopped)),
            "",
        );
        fig.push("durable ingest rate", self.rate(), "reports/s");
        let call = if engine.durable_per_batch() {
            "durable commit per batch"
        } else {
            // Pipelined appends return once encoded; durability follows in the flusher.
            "append call per batch (buffered)"
        };
        fig.push(&format!("{call}: p50"), self.batch_p50, "ms");
        fig.push(&format!("{call}: p99"), self.batch_p99, "ms");
        fig.push(
            "bytes on disk after close (allocated)",
            self.bytes as f64,
            "B",
        );
        fig.push(
            "bytes per report",
            self.bytes as f64 / self.ingested.max(1) as f64,
            "B",
        );
        for (name, value, unit) in &self.extra {
            fig.push(name, *value, unit);
        }
    }
}

/// Durable ingest of the whole workload into a fresh store, then bytes on disk after a clean
/// close and, with `reclaim`, after the database's own space reclamation.
fn measure_ingest(
    engine: Engine,
    batches: &[Vec<Report>],
    sizes: &Sizes,
    reclaim: bool,
) -> Result<Ingest> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let path = dir.path().join("store");
    let mut store = engine.open(&path, true, false)?;
    let mut batch_ms = Vec::with_capacity(batches.len());
    let mut ingested = 0usize;
    let mut stopped = false;
    let started = Instant::now();
    for batch in batches {
        let t = Instant::now();
        store.append(batch)?;
        batch_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ingested += batch.len();
        if sizes.ingest_budget.is_some_and(|b| started.elapsed() > b) {
            stopped = ingested < sizes.reports;
            break;
        }
    }
    store.finish()?;
    let secs = started.elapsed().as_secs_f64();
    store.close()?;
    let mut m = Ingest {
        ingested,
        stopped,
        secs,
        batch_p50: quantile(&mut batch_ms, 0.5),
        batch_p99: quantile(&mut batch_ms, 0.99),
        bytes: dir_bytes(&path)?,
        extra: Vec::new(),
    };
    let per_report = |bytes: u64| bytes as f64 / ingested.max(1) as f64;
    let mut extra = |name: &str, value: f64, unit: &str| {
        m.extra.push((name.to_string(), value, unit.to_string()));
    };
    match engine {
        Engine::Redb if reclaim => {
            // redb keeps freed copy-on-write pages in its file; compaction returns them, which
            // is the best size it can reach.
            let started = Instant::now();
            let mut db = redb::Database::open(path.join("history.redb"))?;
            while db.compact()? {}
            db.close()?;
            extra(
                "compaction time",
                started.elapsed().as_secs_f64() * 1000.0,
                "ms",
            );
            extra(
                "bytes per report after compaction",
                per_report(dir_bytes(&path)?),
                "B",
            );
        }
        Engine::Fjall if reclaim => {
            // After a close the newest data may still sit in the uncompressed journal; flushing
            // every memtable and compacting fully is the best size fjall can reach.
            let started = Instant::now();
            let store = Engine::Fjall.open(&path, false, false)?;
            store.settle()?;
            store.close()?;
            extra(
                "flush + compaction time",
                started.elapsed().as_secs_f64() * 1000.0,
                "ms",
            );
            extra(
                "bytes per report after flush + compaction",
                per_report(dir_bytes(&path)?),
                "B",
            );
            // The active journal stays whatever was flushed; in a long-lived store it is a
            // bounded constant, so the tables alone are the size per report in the long run.
            extra(
                "bytes per report in tables (no journal)",
                per_report(dir_bytes(&path.join("keyspaces"))?),
                "B",
            );
        }
        _ => {}
    }
    Ok(m)
}

/// Builds the track store (not timed), closes and reopens it: queries then read what a
/// restarted process reads. Returns the open store with the directory that holds it.
fn build_track(
    engine: Engine,
    batches: &[Vec<Report>],
) -> Result<(tempfile::TempDir, Box<dyn Store>)> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let path = dir.path().join("store");
    {
        // Small segments for the segment log, so the track is mostly read from sealed segments
        // through their sidecar indexes, as a long-lived store serves it.
        let mut store = engine.open(&path, false, true)?;
        for batch in batches {
            store.append(batch)?;
        }
        store.finish()?;
        // For fjall the fixture would otherwise fit in its 64 MiB memtable and be answered
        // from memory after recovery; a real history is far larger than any memtable.
        store.settle()?;
        store.close()?;
    }
    let store = engine.open(&path, false, true)?;
    Ok((dir, store))
}

/// Track query figures of one engine.
struct Track {
    points: usize,
    first_ms: f64,
    samples: Vec<f64>,
}

impl Track {
    fn push(&self, sizes: &Sizes, fig: &mut Figures) {
        let mut samples = self.samples.clone();
        let stored = sizes.track_points * (1 + sizes.track_others);
        fig.push("track: reports stored", stored as f64, "");
        fig.push("track: points returned", self.points as f64, "");
        fig.push("track: first run", self.first_ms, "ms");
        fig.push("track: median", quantile(&mut samples, 0.5), "ms");
        fig.push("track: max", quantile(&mut samples, 1.0), "ms");
    }
}

/// Full-range queries of the tracked entity, the stores taking turns run by run: one untimed
/// first run each (it maps files and fills caches), then `sizes.query_runs` timed ones.
fn query_tracks(
    fixtures: &[(tempfile::TempDir, Box<dyn Store>)],
    sizes: &Sizes,
) -> Result<Vec<Track>> {
    let to = T0 + sizes.track_points as i64 * 1000;
    let mut out: Vec<Track> = fixtures
        .iter()
        .map(|_| Track {
            points: 0,
            first_ms: f64::NAN,
            samples: Vec::with_capacity(sizes.query_runs),
        })
        .collect();
    for run in 0..=sizes.query_runs {
        for ((_, store), track) in fixtures.iter().zip(&mut out) {
            let started = Instant::now();
            let pts = store.track(TRACK_UID, T0, to, sizes.track_points)?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            track.points = pts.len();
            // Dropped after the clock stopped, as a caller would after serialising it.
            std::hint::black_box(&pts);
            if run == 0 {
                track.first_ms = ms;
            } else {
                track.samples.push(ms);
            }
        }
    }
    Ok(out)
}

/// Ratios of the segment log against each database, and the targets each engine meets.
fn summary(results: &[Figures]) -> Figures {
    let mut fig = Figures::new("store-compare: summary (segment log vs each database)");
    let get = |engine: Engine, row: &str| {
        results
            .iter()
            .find(|f| f.bench.ends_with(engine.name()))
            .and_then(|f| f.rows.iter().find(|r| r.0 == row))
            .map_or(f64::NAN, |r| r.1)
    };
    let rate = "durable ingest rate";
    let bytes = "bytes per report";
    let track = "track: median";
    let seg = Engine::SegmentLogPipelined;
    for (db, label) in [(Engine::Redb, "redb"), (Engine::Fjall, "fjall")] {
        fig.push(
            &format!("ingest: segment log pipelined / {label}"),
            get(seg, rate) / get(db, rate),
            "x",
        );
        fig.push(
            &format!("ingest: segment log per batch / {label}"),
            get(Engine::SegmentLogPerBatch, rate) / get(db, rate),
            "x",
        );
        fig.push(
            &format!("bytes per report: {label} / segment log"),
            get(db, bytes) / get(seg, bytes),
            "x",
        );
        fig.push(
            &format!("track median: {label} / segment log"),
            get(db, track) / get(seg, track),
            "x",
        );
    }
    for engine in [seg, Engine::SegmentLogPerBatch, Engine::Redb, Engine::Fjall] {
        // The per-batch segment log shares the pipelined one's store, hence its track figure.
        let track_engine = if engine == Engine::SegmentLogPerBatch {
            seg
        } else {
            engine
        };
        let met = [
            get(engine, rate) >= 1_000_000.0,
            get(engine, bytes) <= 24.0,
            get(track_engine, track) <= 20.0,
        ]
        .iter()
        .filter(|m| **m)
        .count();
        fig.push(
            &format!("targets met of 3: {}", engine.name()),
            met as f64,
            "",
        );
    }
    fig
}

/// Space allocated on disk to every file under `dir`, recursively (fjall keeps its tables in
/// folders). Allocated blocks rather than file lengths, because fjall preallocates its journal
/// as a 64 MiB sparse file whose length says nothing about the disk it uses.
fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            allocated(&meta)
        };
    }
    Ok(total)
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    // `blocks` counts 512-byte units whatever the file system's block size.
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

// ---------------------------------------------------------------------------------------------
// Workloads

use crate::history::Fleet;

/// Splits `n` reports made by `make` into batches of `batch`.
fn batched(n: usize, batch: usize, mut make: impl FnMut(usize) -> Report) -> Vec<Vec<Report>> {
    let mut out = Vec::with_capacity(n.div_ceil(batch));
    let mut k = 0;
    while k < n {
        let end = (k + batch).min(n);
        out.push((k..end).map(&mut make).collect());
        k = end;
    }
    out
}

/// Round-robin reports of `sizes.entities` movers, with up to a second of arrival jitter.
fn ingest_workload(sizes: &Sizes) -> Vec<Vec<Report>> {
    let n = sizes.entities.max(1);
    let mut fleet = Fleet::new(n, 1, "unit");
    batched(sizes.reports, sizes.batch, |k| {
        let round = (k / n) as i64;
        let jitter = fleet.jitter_ms(1000);
        fleet.report(k % n, T0 + round * INTERVAL_MS + jitter)
    })
}

/// One tracked entity reporting every second, each point followed by one report from each of
/// `sizes.track_others` other entities at the same time.
fn track_workload(sizes: &Sizes) -> Vec<Vec<Report>> {
    let mut target = Fleet::new(1, 2, "track");
    let others_n = sizes.track_others.max(1);
    let mut others = Fleet::new(others_n, 3, "other");
    let per_point = 1 + sizes.track_others;
    batched(sizes.track_points * per_point, sizes.batch, |k| {
        let t = T0 + (k / per_point) as i64 * 1000;
        match k % per_point {
            0 => target.report(0, t),
            j => others.report((j - 1) % others_n, t),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The segment log

struct SegStore {
    log: Arc<SegmentLog>,
    wait_each: bool,
    last: Ticket,
}

impl SegStore {
    fn open(dir: &Path, durable: bool, small_segments: bool, wait_each: bool) -> Result<Self> {
        let mut cfg = SegmentLogConfig::new(dir);
        cfg.fsync = durable;
        if small_segments {
            cfg.segment_bytes = 4 << 20;
        }
        Ok(SegStore {
            log: SegmentLog::open(cfg)?,
            wait_each,
            last: 0,
        })
    }
}

impl Store for SegStore {
    fn append(&mut self, batch: &[Report]) -> Result<()> {
        self.last = self.log.append(batch)?;
        if self.wait_each {
            self.log.wait_durable(self.last)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(self.log.wait_durable(self.last)?)
    }

    fn track(&self, uid: &str, from: i64, to: i64, limit: usize) -> Result<Vec<Report>> {
        Ok(self.log.track(&TrackQuery {
            uid: uid.into(),
            from: Timestamp(from),
            to: Timestamp(to),
            limit,
        })?)
    }

    fn close(self: Box<Self>) -> Result<()> {
        // Dropping the last handle afterwards releases the directory lock for a reopen.
        Ok(self.log.close()?)
    }
}

// ---------------------------------------------------------------------------------------------
// The databases' shared record encoding

/// Encoded size of one position value.
const POS_LEN: usize = 23;
const HAS_HAE: u8 = 1;
const HAS_COURSE: u8 = 2;
const HAS_SPEED: u8 = 4;
const HAS_STALE: u8 = 8;

/// FNV-1a: a stable 64-bit uid hash for keys (collisions are detected at query time).
fn uid_hash(uid: &str) -> u64 {
    uid.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The position fields of `r` in [`POS_LEN`] bytes, quantised as the segment log quantises
/// them. `as` saturates, so out-of-range input cannot panic.
fn encode_position(r: &Report) -> [u8; POS_LEN] {
    let mut flags = 0u8;
    let mut field = |v: Option<f64>, bit: u8, scale: f64| {
        v.map_or(0.0, |v| {
            flags |= bit;
            (v * scale).round()
        })
    };
    let hae = field(r.hae, HAS_HAE, 10.0) as i32;
    let course = field(r.course, HAS_COURSE, 10.0) as u16;
    let speed = field(r.speed, HAS_SPEED, 100.0) as u32;
    let stale = r.stale.map_or(0, |s| {
        flags |= HAS_STALE;
        // A stale time more than 24 days from the report saturates; the segment log has no
        // such limit, and this workload never reaches it.
        (s.0 - r.time.0).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    });
    let mut b = [0u8; POS_LEN];
    b[0] = flags;
    b[1..5].copy_from_slice(&((r.lat * 1e7).round() as i32).to_le_bytes());
    b[5..9].copy_from_slice(&((r.lon * 1e7).round() as i32).to_le_bytes());
    b[9..13].copy_from_slice(&hae.to_le_bytes());
    b[13..15].copy_from_slice(&course.to_le_bytes());
    b[15..19].copy_from_slice(&speed.to_le_bytes());
    b[19..23].copy_from_slice(&stale.to_le_bytes());
    b
}

/// A report of `template`'s entity at `time` with the position fields in `b`.
fn decode_position(template: &Report, time: i64, b: &[u8; POS_LEN]) -> Report {
    let i32_at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let flags = b[0];
    let has = |bit: u8| flags & bit != 0;
    let course = u16::from_le_bytes([b[13], b[14]]);
    let speed = u32::from_le_bytes([b[15], b[16], b[17], b[18]]);
    Report {
        lat: f64::from(i32_at(1)) / 1e7,
        lon: f64::from(i32_at(5)) / 1e7,
        hae: has(HAS_HAE).then(|| f64::from(i32_at(9)) / 10.0),
        course: has(HAS_COURSE).then(|| f64::from(course) / 10.0),
        speed: has(HAS_SPEED).then(|| f64::from(speed) / 100.0),
        time: Timestamp(time),
        stale: has(HAS_STALE).then(|| Timestamp(time + i64::from(i32_at(19)))),
        ..template.clone()
    }
}

/// The per-entity static fields of `r` (uid, type, callsign, how, label, provenance).
fn encode_static(r: &Report) -> Vec<u8> {
    fn put(buf: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => buf.push(0),
            Some(s) => {
                buf.push(1);
                // Fields are validated to well under 64 KiB before they reach a store.
                let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
            }
        }
    }
    let mut buf = Vec::with_capacity(96);
    put(&mut buf, Some(&r.uid));
    put(&mut buf, r.cot_type.as_deref());
    put(&mut buf, r.callsign.as_deref());
    put(&mut buf, r.how.as_deref());
    put(&mut buf, Some(&r.provenance.source));
    put(&mut buf, Some(&r.provenance.identity));
    put(
        &mut buf,
        r.label.as_ref().map(|l| l.classification.as_str()),
    );
    let rel = r.label.as_ref().map_or(&[][..], |l| &l.releasability[..]);
    buf.push(u8::try_from(rel.len()).unwrap_or(u8::MAX));
    for g in rel.iter().take(usize::from(u8::MAX)) {
        put(&mut buf, Some(g));
    }
    buf
}

/// A report carrying the static fields of [`encode_static`]; its position is filled per point.
fn decode_static(mut b: &[u8]) -> Result<Report> {
    fn get(b: &mut &[u8]) -> Result<Option<Text>> {
        let (&tag, rest) = b.split_first().context("truncated entity record")?;
        *b = rest;
        if tag == 0 {
            return Ok(None);
        }
        if b.len() < 2 {
            bail!("truncated entity record");
        }
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        let s = b.get(2..2 + len).context("truncated entity record")?;
        *b = &b[2 + len..];
        Ok(Some(Text::from(std::str::from_utf8(s)?)))
    }
    let uid = get(&mut b)?.context("entity record without uid")?;
    let cot_type = get(&mut b)?;
    let callsign = get(&mut b)?;
    let how = get(&mut b)?;
    let source = get(&mut b)?.unwrap_or_default();
    let identity = get(&mut b)?.unwrap_or_default();
    let classification = get(&mut b)?;
    let (&n, rest) = b.split_first().context("truncated entity record")?;
    b = rest;
    let mut releasability = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        releasability.push(get(&mut b)?.unwrap_or_default());
    }
    Ok(Report {
        uid,
        cot_type,
        callsign,
        how,
        label: classification.map(|classification| Label {
            classification,
            releasability,
        }),
        provenance: Provenance { source, identity },
        ..Report::default()
    })
}

/// Checks that the entity record found under a uid hash is that uid's (not a collision).
fn check_uid(template: &Report, uid: &str) -> Result<()> {
    if template.uid != uid {
        bail!("uid hash collision between {uid} and {}", template.uid);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// redb

const REDB_POSITIONS: redb::TableDefinition<(u64, i64), &[u8; POS_LEN]> =
    redb::TableDefinition::new("positions");
const REDB_ENTITIES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("entities");

struct RedbStore {
    db: redb::Database,
    durable: bool,
    /// Entities whose static record is committed, so each is written once.
    known: HashSet<u64>,
}

impl RedbStore {
    fn open(dir: &Path, durable: bool) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = redb::Database::create(dir.join("history.redb"))?;
        // Reopening a fixture for queries: every entity already has its record.
        let mut known = HashSet::new();
        let txn = db.begin_read()?;
        if let Ok(t) = txn.open_table(REDB_ENTITIES) {
            for row in t.iter()? {
                known.insert(row?.0.value());
            }
        }
        drop(txn);
        Ok(RedbStore { db, durable, known })
    }
}

impl Store for RedbStore {
    fn append(&mut self, batch: &[Report]) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        if !self.durable {
            txn.set_durability(redb::Durability::None)?;
        }
        {
            let mut positions = txn.open_table(REDB_POSITIONS)?;
            let mut entities = txn.open_table(REDB_ENTITIES)?;
            for r in batch {
                let h = uid_hash(&r.uid);
                // Marked before the commit: a failed commit ends the benchmark and discards
                // the store, so no entity can be left known but unrecorded.
                if self.known.insert(h) {
                    entities.insert(h, encode_static(r).as_slice())?;
                }
                positions.insert((h, r.time.0), &encode_position(r))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if !self.durable {
            // An Immediate commit persists every earlier non-durable one.
            let txn = self.db.begin_write()?;
            txn.commit()?;
        }
        Ok(())
    }

    fn track(&self, uid: &str, from: i64, to: i64, limit: usize) -> Result<Vec<Report>> {
        let h = uid_hash(uid);
        let txn = self.db.begin_read()?;
        let entities = txn.open_table(REDB_ENTITIES)?;
        let Some(rec) = entities.get(h)? else {
            return Ok(Vec::new());
        };
        let template = decode_static(rec.value())?;
        check_uid(&template, uid)?;
        let positions = txn.open_table(REDB_POSITIONS)?;
        // Newest first so `limit` keeps the latest points, then back to oldest first.
        let mut out = Vec::new();
        for row in positions.range((h, from)..=(h, to))?.rev().take(limit) {
            let (k, v) = row?;
            out.push(decode_position(&template, k.value().1, v.value()));
        }
        out.reverse();
        Ok(out)
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.db.close()?)
    }
}

// ---------------------------------------------------------------------------------------------
// fjall

struct FjallStore {
    db: fjall::Database,
    positions: fjall::Keyspace,
    entities: fjall::Keyspace,
    durable: bool,
    known: HashSet<u64>,
}

/// `(uid hash, time)` as 16 big-endian bytes; the sign bit of the time is flipped so byte
/// order is numeric order.
fn fjall_key(h: u64, time: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&h.to_be_bytes());
    k[8..].copy_from_slice(&((time as u64) ^ (1 << 63)).to_be_bytes());
    k
}

impl FjallStore {
    fn open(dir: &Path, durable: bool) -> Result<Self> {
        let db = fjall::Database::builder(dir).open()?;
        let options = || {
            fjall::KeyspaceCreateOptions::default().data_block_compression_policy(
                fjall::config::CompressionPolicy::all(fjall::CompressionType::Lz4),
            )
        };
        let positions = db.keyspace("positions", options)?;
        let entities = db.keyspace("entities", options)?;
        let mut known = HashSet::new();
        for row in entities.iter() {
            let key = row.key()?;
            if let Ok(b) = <[u8; 8]>::try_from(&key[..]) {
                known.insert(u64::from_be_bytes(b));
            }
        }
        Ok(FjallStore {
            db,
            positions,
            entities,
            durable,
            known,
        })
    }
}

impl Store for FjallStore {
    /// Moves everything into compressed, fully compacted tables (journal no longer needed).
    fn settle(&self) -> Result<()> {
        for ks in [&self.positions, &self.entities] {
            ks.rotate_memtable_and_wait()?;
            ks.major_compact()?;
        }
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    fn append(&mut self, batch: &[Report]) -> Result<()> {
        let mut b = self.db.batch();
        if self.durable {
            b = b.durability(Some(fjall::PersistMode::SyncData));
        }
        for r in batch {
            let h = uid_hash(&r.uid);
            // As for redb: a failed commit ends the benchmark, so marking early is safe.
            if self.known.insert(h) {
                b.insert(&self.entities, &h.to_be_bytes()[..], &encode_static(r)[..]);
            }
            b.insert(
                &self.positions,
                &fjall_key(h, r.time.0)[..],
                &encode_position(r)[..],
            );
        }
        b.commit()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(self.db.persist(fjall::PersistMode::SyncAll)?)
    }

    fn track(&self, uid: &str, from: i64, to: i64, limit: usize) -> Result<Vec<Report>> {
        let h = uid_hash(uid);
        let Some(rec) = self.entities.get(h.to_be_bytes())? else {
            return Ok(Vec::new());
        };
        let template = decode_static(&rec)?;
        check_uid(&template, uid)?;
        let mut out = Vec::new();
        let range = fjall_key(h, from)..=fjall_key(h, to);
        for row in self.positions.range(range).rev().take(limit) {
            let (k, v) = row.into_inner()?;
            let time = k
                .get(8..16)
                .and_then(|t| <[u8; 8]>::try_from(t).ok())
                .map(|t| (u64::from_be_bytes(t) ^ (1 << 63)) as i64)
                .context("short fjall key")?;
            let pos = <&[u8; POS_LEN]>::try_from(&v[..]).context("short fjall value")?;
            out.push(decode_position(&template, time, pos));
        }
        out.reverse();
        Ok(out)
    }

    fn close(self: Box<Self>) -> Result<()> {
        // fjall has no close call: dropping the last handle persists the journal and joins its
        // background workers. Persist first so an error is reported rather than swallowed.
        self.db.persist(fjall::PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(f: &Figures, name: &str) -> f64 {
        f.rows
            .iter()
            .find(|r| r.0 == name)
            .map_or(f64::NAN, |r| r.1)
    }

    #[test]
    fn position_and_static_records_round_trip_as_the_segment_log_quantises() {
        let mut fleet = Fleet::new(20, 9, "unit");
        for i in 0..20 {
            let r = fleet.report(i, T0 + 1234);
            let template = decode_static(&encode_static(&r)).unwrap();
            let back = decode_position(&template, r.time.0, &encode_position(&r));
            assert_eq!(back, rampart_history::quantize(&r));
        }
    }

    #[test]
    fn fjall_keys_sort_by_time() {
        let h = uid_hash(TRACK_UID);
        assert!(fjall_key(h, -5) < fjall_key(h, 3));
        assert!(fjall_key(h, T0) < fjall_key(h, T0 + 1));
    }

    /// The quick run end to end: every engine reports every figure and returns the whole
    /// track. Structure only: tests never judge timing.
    #[test]
    fn quick_run_has_every_table_and_the_whole_track() {
        let sizes = Sizes::quick();
        let results = compare(true).unwrap();
        assert_eq!(results.len(), Engine::ALL.len() + 1);
        for (engine, fig) in Engine::ALL.iter().zip(&results) {
            assert!(fig.bench.ends_with(engine.name()), "{}", fig.bench);
            assert_eq!(figure(fig, "reports ingested"), sizes.reports as f64);
            assert_eq!(figure(fig, "ingest stopped at budget"), 0.0);
            assert!(figure(fig, "durable ingest rate") > 0.0);
            assert!(figure(fig, "bytes per report") > 0.0);
            if *engine != Engine::SegmentLogPerBatch {
                assert_eq!(
                    figure(fig, "track: points returned"),
                    sizes.track_points as f64
                );
                assert!(figure(fig, "track: median").is_finite());
            }
        }
        let summary = &results[Engine::ALL.len()];
        assert_eq!(summary.rows.len(), 2 * 4 + Engine::ALL.len());
        assert!(summary.rows.iter().all(|r| r.1.is_finite()));
    }
}
