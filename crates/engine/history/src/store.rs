//! The [`SegmentLog`]: the writer state behind one mutex (encoding and the group-commit
//! buffer), the flusher thread that writes, fsyncs and publishes tickets, the segment list
//! that queries read, and retention.
//!
//! Lock order: `writer` before `segments` before a segment's `state`. The flusher holds the
//! writer lock only to take the buffer, never during I/O, so appends proceed while it fsyncs
//! (that is the group commit: whatever accumulates during one fsync is the next frame).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rampart_model::{Report, Timestamp};
use tokio::sync::watch;

use crate::codec::SegEncoder;
use crate::format::{self, FRAME_HEADER, HEADER_LEN, SegIndex};
use crate::segment::{self, Found, IndexState, Segment, StrSrc};
use crate::{
    Durable, HistoryError, HistoryStats, HistoryStore, SegmentLogConfig, Ticket, TrackQuery,
    Window, WindowQuery,
};

/// Work handed from appenders to the flusher, in order.
enum Job {
    /// Write one frame to the current segment.
    Frame { payload: Vec<u8> },
    /// The current segment is complete: fsync it and write its sidecar.
    Seal {
        seg: Arc<Segment>,
        index: Arc<SegIndex>,
    },
    /// Create the next segment and make it current.
    Open { seg: Arc<Segment> },
}

/// Everything appends mutate, behind `Inner::writer`.
struct Writer {
    /// Newest ticket issued.
    ticket: Ticket,
    failed: bool,
    closing: bool,
    /// The segment being encoded into.
    seg: Arc<Segment>,
    enc: SegEncoder,
    /// Segment offset where the frame holding `buf` will start.
    frame_start: u64,
    /// Records of the next frame.
    buf: Vec<u8>,
    /// Jobs queued before `buf` (frames of rolled segments, seals, opens).
    jobs: Vec<Job>,
    /// Payload bytes in `jobs`.
    queued_bytes: usize,
    /// When the current segment was started.
    created: Instant,
    /// Written buffers returned by the flusher for reuse (at most two).
    spare: Vec<Vec<u8>>,
    /// When the oldest append not yet taken by the flusher arrived (`None`: nothing waits).
    oldest_unflushed: Option<Instant>,
    /// Highest ticket somebody waits for ([`HistoryStore::expedite`]).
    wanted: Ticket,
    /// Newest ticket the flusher has taken (written or being written).
    taken: Ticket,
}

impl Writer {
    /// Bytes encoded but not yet taken by the flusher.
    fn pending(&self) -> usize {
        self.queued_bytes + self.buf.len()
    }

    /// Segment offset of the next record.
    fn next_offset(&self) -> u64 {
        self.frame_start + FRAME_HEADER + self.buf.len() as u64
    }

    /// Publishes the current segment's summary numbers to readers.
    fn publish_summary(&self) {
        self.seg
            .set_summary(self.enc.reports, self.enc.min_time, self.enc.max_time);
    }

    /// Closes the current segment and starts the next: its buffered frame, its seal and the
    /// new segment's creation are queued for the flusher, in that order.
    fn roll(&mut self, inner: &Inner) {
        self.publish_summary();
        if !self.buf.is_empty() {
            let payload = std::mem::replace(&mut self.buf, self.spare.pop().unwrap_or_default());
            self.queued_bytes += payload.len();
            self.jobs.push(Job::Frame { payload });
        }
        let enc = std::mem::replace(&mut self.enc, SegEncoder::new(inner.cfg.max_dict_entries));
        let index = Arc::new(enc.into_index());
        *self.seg.state.write() = IndexState::Memory(index.clone());
        self.jobs.push(Job::Seal {
            seg: self.seg.clone(),
            index,
        });
        let seg = Arc::new(Segment::new(
            &inner.cfg.dir,
            self.seg.seq + 1,
            IndexState::Active,
        ));
        inner.segments.write().push(seg.clone());
        self.jobs.push(Job::Open { seg: seg.clone() });
        self.seg = seg;
        self.frame_start = HEADER_LEN;
        self.created = Instant::now();
    }
}

/// State shared by the [`SegmentLog`] handle and its flusher thread.
struct Inner {
    cfg: SegmentLogConfig,
    writer: Mutex<Writer>,
    /// Wakes the flusher when there is work or the store closes.
    work: Condvar,
    /// Wakes appenders blocked on a full buffer.
    space: Condvar,
    /// Retained segments, oldest first; the last is the one being written.
    segments: RwLock<Vec<Arc<Segment>>>,
    durable_tx: watch::Sender<Durable>,
    durable: Mutex<Durable>,
    durable_cv: Condvar,
    /// Newest ticket issued (readable without the writer lock).
    issued: AtomicU64,
    /// Serialises retention runs.
    retention: Mutex<()>,
    /// The directory lock, held for the store's lifetime.
    _lock: File,
}

/// The embedded [`HistoryStore`]: a directory of segment files with group commit. See the
/// crate documentation for the format and guarantees.
pub struct SegmentLog {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

fn io<T>(path: &std::path::Path, r: std::io::Result<T>) -> Result<T, HistoryError> {
    r.map_err(|e| HistoryError::io(path, e))
}

/// Creates segment `seg`'s file with its header, durably (file and directory entry).
fn create_segment(seg: &Segment, dir: &std::path::Path, fsync: bool) -> Result<File, HistoryError> {
    let mut f = io(
        &seg.path,
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&seg.path),
    )?;
    let created = Timestamp::now().0;
    io(
        &seg.path,
        f.write_all(&format::segment_header(seg.seq, created)),
    )?;
    if fsync {
        io(&seg.path, f.sync_data())?;
        segment::sync_dir(dir)?;
    }
    seg.committed.store(HEADER_LEN, Ordering::Release);
    seg.file_len.store(HEADER_LEN, Ordering::Release);
    Ok(f)
}

impl SegmentLog {
    /// Opens (or creates) the store in `cfg.dir`: recovers existing segments (truncating a
    /// torn tail of the newest, rebuilding missing sidecars), starts a fresh segment and the
    /// flusher thread.
    pub fn open(cfg: SegmentLogConfig) -> Result<Arc<SegmentLog>, HistoryError> {
        cfg.validate()?;
        let dir = cfg.dir.clone();
        io(&dir, fs::create_dir_all(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock = io(
            &lock_path,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path),
        )?;
        if lock.try_lock().is_err() {
            return Err(HistoryError::Config(format!(
                "{} is in use by another history store",
                dir.display()
            )));
        }

        let mut seqs = Vec::new();
        for entry in io(&dir, fs::read_dir(&dir))? {
            let entry = io(&dir, entry)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = segment::parse_segment_name(name) {
                seqs.push(seq);
            } else if name.ends_with(".idx.tmp") {
                // A sidecar write interrupted by a crash.
                let _ = fs::remove_file(entry.path());
            } else if let Some(stem) = name.strip_suffix(".idx")
                && !dir.join(format!("{stem}.log")).exists()
            {
                // The sidecar of a segment that is gone.
                let _ = fs::remove_file(entry.path());
            }
        }
        seqs.sort_unstable();
        let mut segments = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            if let Some(seg) = segment::recover(&dir, seq, i + 1 == seqs.len())? {
                segments.push(seg);
            }
        }
        let next_seq = seqs.last().map_or(1, |s| s + 1);
        let active = Arc::new(Segment::new(&dir, next_seq, IndexState::Active));
        let file = create_segment(&active, &dir, cfg.fsync)?;
        segments.push(active.clone());
        tracing::info!(
            dir = %dir.display(),
            segments = segments.len(),
            reports = segments.iter().map(|s| s.reports.load(Ordering::Relaxed)).sum::<u64>(),
            "history store opened"
        );

        let (durable_tx, _) = watch::channel(Durable::default());
        let inner = Arc::new(Inner {
            writer: Mutex::new(Writer {
                ticket: 0,
                failed: false,
                closing: false,
                seg: active.clone(),
                enc: SegEncoder::new(cfg.max_dict_entries),
                frame_start: HEADER_LEN,
                buf: Vec::new(),
                jobs: Vec::new(),
                queued_bytes: 0,
                created: Instant::now(),
                spare: Vec::new(),
                oldest_unflushed: None,
                wanted: 0,
                taken: 0,
            }),
            cfg,
            work: Condvar::new(),
            space: Condvar::new(),
            segments: RwLock::new(segments),
            durable_tx,
            durable: Mutex::new(Durable::default()),
            durable_cv: Condvar::new(),
            issued: AtomicU64::new(0),
            retention: Mutex::new(()),
            _lock: lock,
        });
        let flusher_inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name("rampart-history-flush".into())
            .spawn(move || Flusher::new(flusher_inner, file, active).run())
            .map_err(|e| HistoryError::io(&dir, e))?;
        Ok(Arc::new(SegmentLog {
            inner,
            flusher: Mutex::new(Some(handle)),
        }))
    }

    /// Flushes everything buffered, seals the current segment (writing its sidecar so the next
    /// open need not scan it) and stops the flusher. Later appends fail with
    /// [`HistoryError::Closed`]; queries keep working. Also done on drop.
    pub fn close(&self) -> Result<(), HistoryError> {
        self.inner.writer.lock().closing = true;
        self.inner.work.notify_all();
        self.inner.space.notify_all();
        if let Some(h) = self.flusher.lock().take()
            && h.join().is_err()
        {
            tracing::error!("history flusher thread panicked");
            return Err(HistoryError::Failed);
        }
        if self.inner.durable.lock().failed {
            return Err(HistoryError::Failed);
        }
        Ok(())
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &SegmentLogConfig {
        &self.inner.cfg
    }

    fn snapshot(&self) -> Vec<Arc<Segment>> {
        self.inner.segments.read().clone()
    }

    /// `uid`'s streams in `seg`, from the writer for the active segment, else its index.
    fn lookup(&self, seg: &Arc<Segment>, uid: &str) -> Result<Found, HistoryError> {
        if let Some(f) = seg.sealed_lookup(uid)? {
            return Ok(f);
        }
        {
            let w = self.inner.writer.lock();
            if Arc::ptr_eq(&w.seg, seg) {
                let streams = w.enc.lookup(uid);
                let strings = if streams.is_empty() {
                    Vec::new()
                } else {
                    w.enc.string_offsets.clone()
                };
                return Ok(Found {
                    strings: StrSrc::Owned(strings),
                    streams,
                });
            }
        }
        // It rolled between the two looks: it is sealing or sealed now.
        Ok(seg.sealed_lookup(uid)?.unwrap_or(Found {
            strings: StrSrc::Owned(Vec::new()),
            streams: Vec::new(),
        }))
    }
}

impl Drop for SegmentLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "closing the history store");
        }
    }
}

impl Inner {
    fn publish(&self, ticket: Ticket) {
        {
            let mut d = self.durable.lock();
            if d.failed || d.ticket >= ticket {
                return;
            }
            d.ticket = ticket;
        }
        self.durable_cv.notify_all();
        self.durable_tx.send_replace(Durable {
            ticket,
            failed: false,
        });
    }

    fn fail(&self, e: &HistoryError) {
        tracing::error!(error = %e, "history store failed; nothing more will be acknowledged");
        {
            let mut w = self.writer.lock();
            w.failed = true;
            w.jobs.clear();
            w.buf = Vec::new();
            w.queued_bytes = 0;
        }
        let ticket = {
            let mut d = self.durable.lock();
            d.failed = true;
            d.ticket
        };
        self.durable_cv.notify_all();
        self.space.notify_all();
        self.durable_tx.send_replace(Durable {
            ticket,
            failed: true,
        });
    }

    /// Deletes whole oldest sealed segments over the size limit or (with `now`) the age limit.
    fn retain(&self, now: Option<Timestamp>) -> Result<u64, HistoryError> {
        let _one_at_a_time = self.retention.lock();
        let segs = self.segments.read().clone();
        let mut total: u64 = segs.iter().map(|s| s.disk_bytes()).sum();
        let cutoff = now.map(|n| n.0.saturating_sub(self.cfg.max_age_ms));
        let mut doomed = Vec::new();
        for s in &segs {
            if !s.is_sealed() {
                break; // the segment being written (or still sealing) and everything after it
            }
            let too_big = total > self.cfg.max_bytes;
            let too_old = cutoff.is_some_and(|c| s.max_time.load(Ordering::Acquire) < c);
            if !too_big && !too_old {
                break; // only a prefix goes, so replay order stays append order
            }
            total = total.saturating_sub(s.disk_bytes());
            doomed.push(s.clone());
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        self.segments
            .write()
            .retain(|s| !doomed.iter().any(|d| Arc::ptr_eq(d, s)));
        let mut freed = 0;
        for s in &doomed {
            // Readers holding the segment keep their mapping: unlinking does not invalidate it.
            io(&s.path, fs::remove_file(&s.path))?;
            match fs::remove_file(&s.idx_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(HistoryError::io(&s.idx_path, e));
                }
                _ => {}
            }
            freed += s.disk_bytes();
            tracing::info!(file = %s.path.display(), bytes = s.disk_bytes(), "history retention deleted a segment");
        }
        if self.cfg.fsync {
            segment::sync_dir(&self.cfg.dir)?;
        }
        Ok(freed)
    }
}

/// One segment's share of a track query: the segment, its committed bytes and the uid's streams.
type Part = (Arc<Segment>, Arc<memmap2::Mmap>, usize, Found);

/// Track queries with at least this many candidate points build them on two threads.
const PARALLEL_POINTS: usize = 16_384;

/// Builds every in-range point of `parts` (at most `candidates`, in append order) on two
/// threads, each writing its half of the segments straight into its own region of the result.
///
/// Measured need: building 100,000 reports (384 bytes each) is dominated not by decoding but
/// by page-faulting the 38 MB result; a single thread took ~27 ms, over the 20 ms target. Two
/// threads fault and fill disjoint halves concurrently. Returns `None` (the caller then builds
/// serially) if a region would overflow, which the candidate count rules out.
#[allow(unsafe_code)]
fn materialize_on_two_threads(
    parts: &[Part],
    uid: &str,
    from: i64,
    to: i64,
    candidates: usize,
) -> Option<Vec<Report>> {
    let count = |p: &Part| p.3.streams.iter().map(|s| s.1.len()).sum::<usize>();
    // Split the segments where the first half of the candidates ends.
    let mut split = 0;
    let mut cap_a = 0;
    while split < parts.len() && cap_a * 2 < candidates {
        cap_a += count(&parts[split]);
        split += 1;
    }
    let mut out: Vec<Report> = Vec::with_capacity(candidates);
    let spare = &mut out.spare_capacity_mut()[..candidates];
    let (region_a, region_b) = spare.split_at_mut(cap_a);
    let fill = |parts: &[Part], region: &mut [std::mem::MaybeUninit<Report>]| -> Option<usize> {
        let mut n = 0;
        let mut overflow = false;
        for (seg, data, len, found) in parts {
            let mut visit = |t: i64| from <= t && t <= to;
            segment::track_segment(&data[..*len], &seg.path, found, uid, &mut visit, &mut |r| {
                match region.get_mut(n) {
                    Some(slot) => {
                        slot.write(r);
                        n += 1;
                    }
                    None => overflow = true,
                }
            });
        }
        (!overflow).then_some(n)
    };
    let (n_a, n_b) = std::thread::scope(|s| {
        let b = s.spawn(|| fill(&parts[split..], region_b));
        let n_a = fill(&parts[..split], region_a);
        (n_a, b.join().ok().flatten())
    });
    let (n_a, n_b) = match (n_a, n_b) {
        (Some(a), Some(b)) => (a, b),
        // Unreachable (see above). Written slots are leaked, never read: no unsafety.
        _ => return None,
    };
    // Close the gap between the two regions (points outside the time range leave one).
    let spare = out.spare_capacity_mut();
    if n_a < cap_a {
        for i in 0..n_b {
            spare.swap(n_a + i, cap_a + i);
        }
    }
    // SAFETY: slots 0..n_a were written by the first thread and slots n_a..n_a + n_b hold the
    // second thread's writes (moved down by the swaps above); all lie within the capacity
    // reserved above, so the first n_a + n_b elements are initialised.
    unsafe { out.set_len(n_a + n_b) };
    Some(out)
}

/// The flusher thread's state: the file of the current segment and what was written to it.
struct Flusher {
    inner: Arc<Inner>,
    file: File,
    seg: Arc<Segment>,
    /// Bytes written to `file`.
    len: u64,
    /// Bytes written but not yet fsynced.
    dirty: bool,
}

impl Flusher {
    fn new(inner: Arc<Inner>, file: File, seg: Arc<Segment>) -> Self {
        Flusher {
            inner,
            file,
            seg,
            len: HEADER_LEN,
            dirty: false,
        }
    }

    fn run(mut self) {
        let inner = self.inner.clone();
        let delay = Duration::from_millis(inner.cfg.commit_delay_ms);
        let lazy = Duration::from_millis(inner.cfg.lazy_commit_ms);
        loop {
            let (jobs, ticket, close) = {
                let mut w = inner.writer.lock();
                loop {
                    if w.failed {
                        return;
                    }
                    if !w.jobs.is_empty() || !w.buf.is_empty() || w.closing {
                        break;
                    }
                    inner.work.wait(&mut w);
                }
                // Appends nobody waits for ride the next commit somebody does wait for, or
                // go after `lazy_commit_ms`: a stream of unacknowledged reports (TAK, UDP
                // feeds) costs a few fsyncs a second, not one per append.
                if !lazy.is_zero() && w.jobs.is_empty() {
                    let deadline = w.oldest_unflushed.unwrap_or_else(Instant::now) + lazy;
                    while !w.closing
                        && !w.failed
                        && w.wanted <= w.taken
                        && !inner.work.wait_until(&mut w, deadline).timed_out()
                    {
                    }
                }
                if !delay.is_zero() && !w.closing {
                    // Gather more appends into this commit.
                    let deadline = Instant::now() + delay;
                    while !w.closing && !inner.work.wait_until(&mut w, deadline).timed_out() {}
                }
                let mut jobs = std::mem::take(&mut w.jobs);
                if !w.buf.is_empty() {
                    let spare = w.spare.pop().unwrap_or_default();
                    let payload = std::mem::replace(&mut w.buf, spare);
                    w.frame_start += FRAME_HEADER + payload.len() as u64;
                    jobs.push(Job::Frame { payload });
                }
                w.queued_bytes = 0;
                w.oldest_unflushed = None;
                w.taken = w.ticket;
                let close = w.closing && jobs.is_empty();
                (jobs, w.ticket, close)
            };
            inner.space.notify_all();
            if close {
                if let Err(e) = self.seal_on_close() {
                    inner.fail(&e);
                }
                return;
            }
            match self.run_jobs(jobs) {
                Ok(sealed) => {
                    inner.publish(ticket);
                    if sealed {
                        // Keep the store within its size bound without waiting for the
                        // engine's periodic retention.
                        if let Err(e) = inner.retain(None) {
                            tracing::error!(error = %e, "history size retention failed");
                        }
                    }
                }
                Err(e) => {
                    inner.fail(&e);
                    return;
                }
            }
        }
    }

    fn sync(&mut self) -> Result<(), HistoryError> {
        if self.dirty {
            if self.inner.cfg.fsync {
                io(&self.seg.path, self.file.sync_data())?;
            }
            self.dirty = false;
            // Only now may readers (and retention's byte count) see the new bytes.
            self.seg.file_len.store(self.len, Ordering::Release);
            self.seg.committed.store(self.len, Ordering::Release);
        }
        Ok(())
    }

    /// Runs jobs in order; returns whether a segment was sealed.
    fn run_jobs(&mut self, jobs: Vec<Job>) -> Result<bool, HistoryError> {
        let mut sealed = false;
        let mut done = Vec::new();
        for job in jobs {
            match job {
                Job::Frame { payload } => {
                    let header = format::frame_header(&payload);
                    io(&self.seg.path, self.file.write_all(&header))?;
                    io(&self.seg.path, self.file.write_all(&payload))?;
                    self.len += FRAME_HEADER + payload.len() as u64;
                    self.dirty = true;
                    done.push(payload);
                }
                Job::Seal { seg, index } => {
                    self.sync()?;
                    self.seal(&seg, &index);
                    sealed = true;
                }
                Job::Open { seg } => {
                    self.sync()?;
                    self.file = create_segment(&seg, &self.inner.cfg.dir, self.inner.cfg.fsync)?;
                    self.seg = seg;
                    self.len = HEADER_LEN;
                }
            }
        }
        self.sync()?;
        // Hand written buffers back for reuse (bounded: two, each at most a commit's worth).
        let mut w = self.inner.writer.lock();
        for mut b in done {
            if w.spare.len() >= 2 {
                break;
            }
            b.clear();
            w.spare.push(b);
        }
        Ok(sealed)
    }

    /// Writes the sidecar of a fully written and fsynced segment and drops its in-memory
    /// index. A sidecar that cannot be written is logged; the index then stays in memory.
    fn seal(&self, seg: &Segment, index: &SegIndex) {
        match seg.write_sidecar(index, self.len, self.len) {
            Ok(_) => *seg.state.write() = IndexState::Sealed(None),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write history sidecar index; keeping it in memory");
            }
        }
        seg.sealed.store(true, Ordering::Release);
    }

    /// On close: everything is written; seal the current segment, or delete it when empty.
    fn seal_on_close(&mut self) -> Result<(), HistoryError> {
        self.sync()?;
        let index = {
            let mut w = self.inner.writer.lock();
            w.publish_summary();
            let enc = std::mem::replace(&mut w.enc, SegEncoder::new(64));
            Arc::new(enc.into_index())
        };
        let seg = self.seg.clone();
        if index.reports == 0 {
            self.inner
                .segments
                .write()
                .retain(|s| !Arc::ptr_eq(s, &seg));
            io(&seg.path, fs::remove_file(&seg.path))?;
            if self.inner.cfg.fsync {
                segment::sync_dir(&self.inner.cfg.dir)?;
            }
            return Ok(());
        }
        *seg.state.write() = IndexState::Memory(index.clone());
        self.seal(&seg, &index);
        Ok(())
    }
}

impl HistoryStore for SegmentLog {
    fn append(&self, reports: &[Report]) -> Result<Ticket, HistoryError> {
        let inner = &*self.inner;
        let mut w = inner.writer.lock();
        loop {
            if w.failed {
                return Err(HistoryError::Failed);
            }
            if w.closing {
                return Err(HistoryError::Closed);
            }
            if w.pending() <= inner.cfg.max_buffer_bytes {
                break;
            }
            inner.space.wait(&mut w);
        }
        if reports.is_empty() {
            return Ok(w.ticket);
        }
        if w.oldest_unflushed.is_none() {
            w.oldest_unflushed = Some(Instant::now());
        }
        let max_age = Duration::from_millis(inner.cfg.segment_max_age_ms as u64);
        if w.enc.reports > 0 && w.created.elapsed() >= max_age {
            w.roll(inner);
        }
        for r in reports {
            if w.enc.reports > 0 && w.next_offset() >= inner.cfg.segment_bytes {
                w.roll(inner);
            }
            let mut retried = false;
            loop {
                // Segment offset of `buf[0]`: the encoder adds its position in the buffer.
                let base = w.frame_start + FRAME_HEADER;
                let Writer { enc, buf, .. } = &mut *w;
                match enc.encode(r, buf, base) {
                    Ok(true) => break,
                    // The dictionary is full, or the report does not fit this segment's 32-bit
                    // offsets: a fresh segment takes it.
                    Ok(false) | Err(HistoryError::TooLarge(_)) if !retried && w.enc.reports > 0 => {
                        w.roll(inner);
                        retried = true;
                    }
                    Ok(false) => break, // unreachable: a fresh segment always accepts
                    Err(e) => {
                        // Earlier reports of this batch are buffered and will be stored;
                        // only size-bound violations of unvalidated input get here.
                        w.publish_summary();
                        return Err(e);
                    }
                }
            }
        }
        w.publish_summary();
        w.ticket += 1;
        let ticket = w.ticket;
        inner.issued.store(ticket, Ordering::Release);
        drop(w);
        inner.work.notify_one();
        Ok(ticket)
    }

    fn durable(&self) -> watch::Receiver<Durable> {
        self.inner.durable_tx.subscribe()
    }

    fn expedite(&self, ticket: Ticket) {
        let mut w = self.inner.writer.lock();
        if ticket > w.wanted {
            w.wanted = ticket.min(w.ticket);
            drop(w);
            self.inner.work.notify_one();
        }
    }

    fn wait_durable(&self, ticket: Ticket) -> Result<(), HistoryError> {
        let newest = self.inner.issued.load(Ordering::Acquire);
        if ticket > newest {
            return Err(HistoryError::UnknownTicket { ticket, newest });
        }
        self.expedite(ticket);
        let mut d = self.inner.durable.lock();
        loop {
            if d.ticket >= ticket {
                return Ok(());
            }
            if d.failed {
                return Err(HistoryError::Failed);
            }
            self.inner.durable_cv.wait(&mut d);
        }
    }

    fn track(&self, q: &TrackQuery) -> Result<Vec<Report>, HistoryError> {
        let limit = q.limit.min(self.inner.cfg.max_track_points);
        if limit == 0 || q.from > q.to {
            return Ok(Vec::new());
        }
        let (from, to) = (q.from.0, q.to.0);
        // Gather the segments that may hold points, with their committed bytes and the uid's
        // record offsets. The committed length is read before the index, so every listed
        // offset below it is durable (later ones are skipped by the decoder).
        let mut parts = Vec::new();
        let mut candidates = 0usize;
        for seg in self.snapshot() {
            if seg.reports.load(Ordering::Acquire) == 0
                || seg.min_time.load(Ordering::Acquire) > to
                || seg.max_time.load(Ordering::Acquire) < from
            {
                continue;
            }
            let Some((data, len)) = seg.data()? else {
                continue;
            };
            let found = self.lookup(&seg, &q.uid)?;
            if found.streams.is_empty() {
                continue;
            }
            candidates += found.streams.iter().map(|s| s.1.len()).sum::<usize>();
            parts.push((seg, data, len, found));
        }
        let in_range = |t: i64| from <= t && t <= to;

        // With more candidates than the limit, a first pass decodes times only and finds the
        // time of the limit-th latest point, so the second pass builds only the points that
        // can be returned. Memory stays bounded by the limit (plus ties at the threshold).
        let mut threshold = i64::MIN;
        if candidates > limit {
            // Newest segments first: once `limit` points are known, an older segment whose
            // newest report is not later than the threshold cannot contribute (its ties would
            // be the earliest appended and are dropped), so it is skipped in both passes.
            let mut latest: BinaryHeap<Reverse<i64>> = BinaryHeap::with_capacity(limit + 1);
            let mut keep = vec![true; parts.len()];
            for (i, (seg, data, len, found)) in parts.iter().enumerate().rev() {
                if latest.len() == limit
                    && let Some(Reverse(t)) = latest.peek()
                    && seg.max_time.load(Ordering::Acquire) <= *t
                {
                    keep[i] = false;
                    continue;
                }
                let mut visit = |t: i64| {
                    if in_range(t)
                        && (latest.len() < limit || latest.peek().is_some_and(|m| t > m.0))
                    {
                        latest.push(Reverse(t));
                        if latest.len() > limit {
                            latest.pop();
                        }
                    }
                    false
                };
                segment::track_segment(
                    &data[..*len],
                    &seg.path,
                    found,
                    &q.uid,
                    &mut visit,
                    &mut |_| {},
                );
            }
            if latest.len() == limit
                && let Some(Reverse(t)) = latest.peek()
            {
                threshold = *t;
            }
            let mut i = 0;
            parts.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        let mut out = None;
        if threshold == i64::MIN && candidates >= PARALLEL_POINTS {
            out = materialize_on_two_threads(&parts, &q.uid, from, to, candidates);
        }
        let mut out = out.unwrap_or_else(|| {
            let mut out = Vec::with_capacity(candidates.min(limit));
            for (seg, data, len, found) in &parts {
                let mut visit = |t: i64| in_range(t) && t >= threshold;
                segment::track_segment(
                    &data[..*len],
                    &seg.path,
                    found,
                    &q.uid,
                    &mut visit,
                    &mut |r| out.push(r),
                );
            }
            out
        });
        // Usually already in time order; the sort is stable, so ties keep append order.
        if !out.is_sorted_by_key(|r| r.time) {
            out.sort_by_key(|r| r.time);
        }
        // Ties at the threshold may leave a few extra: the earliest appended go.
        if out.len() > limit {
            out.drain(..out.len() - limit);
        }
        Ok(out)
    }

    fn window(&self, q: &WindowQuery) -> Result<Window, HistoryError> {
        let limit = q.max_records.min(self.inner.cfg.max_window_records);
        if limit == 0 || q.from > q.to {
            return Ok(Window::default());
        }
        let (from, to) = (q.from.0, q.to.0);
        // Newest segments first, so the most recently appended reports are the ones kept;
        // a segment whose time range misses the window is never read. Each segment's share
        // is held in a ring of at most the records still allowed, so memory stays bounded by
        // `limit` however large a segment is.
        let mut chunks: Vec<Vec<Report>> = Vec::new();
        let mut remaining = limit;
        let mut truncated = false;
        for seg in self.snapshot().iter().rev() {
            if seg.reports.load(Ordering::Acquire) == 0
                || seg.min_time.load(Ordering::Acquire) > to
                || seg.max_time.load(Ordering::Acquire) < from
            {
                continue;
            }
            if remaining == 0 {
                // An older segment may hold more: say so rather than read it.
                truncated = true;
                break;
            }
            let Some((data, len)) = seg.data()? else {
                continue;
            };
            let mut ring = std::collections::VecDeque::new();
            segment::window_segment(&data[..len], &seg.path, from, to, &mut |r| {
                if ring.len() == remaining {
                    ring.pop_front();
                    truncated = true;
                }
                ring.push_back(r);
            });
            remaining -= ring.len();
            chunks.push(Vec::from(ring));
        }
        let mut reports = Vec::with_capacity(limit - remaining);
        for chunk in chunks.into_iter().rev() {
            reports.extend(chunk);
        }
        // Usually already in time order; the sort is stable, so ties keep append order.
        if !reports.is_sorted_by_key(|r| r.time) {
            reports.sort_by_key(|r| r.time);
        }
        Ok(Window { reports, truncated })
    }

    fn replay(&self, f: &mut dyn FnMut(Report)) -> Result<u64, HistoryError> {
        let mut n = 0;
        for seg in self.snapshot() {
            if let Some((data, len)) = seg.data()? {
                n += segment::replay_segment(&data[..len], &seg.path, f);
            }
        }
        Ok(n)
    }

    fn enforce_retention(&self, now: Timestamp) -> Result<u64, HistoryError> {
        // Roll an old current segment first, so age retention can reach its reports once the
        // flusher has sealed it.
        {
            let mut w = self.inner.writer.lock();
            let max_age = Duration::from_millis(self.inner.cfg.segment_max_age_ms as u64);
            if !w.failed && !w.closing && w.enc.reports > 0 && w.created.elapsed() >= max_age {
                w.roll(&self.inner);
                drop(w);
                self.inner.work.notify_one();
            }
        }
        self.inner.retain(Some(now))
    }

    fn stats(&self) -> HistoryStats {
        let segs = self.snapshot();
        let mut s = HistoryStats {
            segments: segs.len(),
            ..HistoryStats::default()
        };
        let mut oldest = i64::MAX;
        for seg in &segs {
            s.bytes += seg.disk_bytes();
            let n = seg.reports.load(Ordering::Acquire);
            s.reports += n;
            if n > 0 {
                oldest = oldest.min(seg.min_time.load(Ordering::Acquire));
            }
        }
        s.oldest = (oldest != i64::MAX).then_some(Timestamp(oldest));
        s
    }
}
