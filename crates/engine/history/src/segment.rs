//! One segment file and everything read-side about it: its committed length, its mapping,
//! its index (in memory while active or sealing, a sidecar once sealed), recovery on open,
//! and decoding for replay and track queries.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use memmap2::Mmap;
use parking_lot::{Mutex, RwLock};
use rampart_model::{Report, Text};

use crate::HistoryError;
use crate::codec::{
    self, DecodeError, Delta, Item, REC_STREAM, REC_STRING, Reader, SeqDecoder, Strings,
};
use crate::format::{self, Frame, HEADER_LEN, IdxStream, SegIndex, Sidecar};

/// File name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("seg-{seq:020}.log")
}

/// Parses a segment file name back into its sequence number.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// fsyncs a directory so file creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), HistoryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| HistoryError::io(dir, e))
}

/// Where a segment's index lives.
pub(crate) enum IndexState {
    /// The segment is being written; its index lives in the writer.
    Active,
    /// Held in memory: the segment is sealing (sidecar not yet written) or its sidecar could
    /// not be written.
    Memory(Arc<SegIndex>),
    /// Sealed with a sidecar on disk, mapped on first use.
    Sealed(Option<Arc<Sidecar>>),
}

/// One segment file.
pub(crate) struct Segment {
    /// Sequence number (from the file name).
    pub seq: u64,
    /// The segment file.
    pub path: PathBuf,
    /// Its sidecar index file.
    pub idx_path: PathBuf,
    /// Bytes that are durable (fsynced) and valid: readers never look past this.
    pub committed: AtomicU64,
    /// Bytes of the file on disk.
    pub file_len: AtomicU64,
    /// Bytes of the sidecar on disk (0 when none).
    pub idx_len: AtomicU64,
    /// Position records in the segment (for the active one: including buffered ones).
    pub reports: AtomicU64,
    /// Smallest report time (`i64::MAX` when none).
    pub min_time: AtomicI64,
    /// Largest report time (`i64::MIN` when none).
    pub max_time: AtomicI64,
    /// Where its index lives.
    pub state: RwLock<IndexState>,
    /// Set once all data is fsynced and the writer has moved on (see [`Segment::is_sealed`]).
    pub sealed: AtomicBool,
    map: Mutex<Option<Arc<Mmap>>>,
}

impl Segment {
    /// A segment entry for `seq` in `dir` with nothing committed.
    pub fn new(dir: &Path, seq: u64, state: IndexState) -> Segment {
        let path = dir.join(segment_name(seq));
        Segment {
            seq,
            idx_path: path.with_extension("idx"),
            path,
            committed: AtomicU64::new(0),
            file_len: AtomicU64::new(0),
            idx_len: AtomicU64::new(0),
            reports: AtomicU64::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            sealed: AtomicBool::new(matches!(state, IndexState::Sealed(_))),
            state: RwLock::new(state),
            map: Mutex::new(None),
        }
    }

    /// Bytes on disk: segment plus sidecar.
    pub fn disk_bytes(&self) -> u64 {
        self.file_len.load(Ordering::Acquire) + self.idx_len.load(Ordering::Acquire)
    }

    /// True once the segment is sealed: all its data fsynced and no writer will touch it
    /// again, so retention may delete it.
    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    /// Folds in the summary numbers of an index.
    pub fn set_summary(&self, reports: u64, min_time: i64, max_time: i64) {
        self.reports.store(reports, Ordering::Release);
        self.min_time.store(min_time, Ordering::Release);
        self.max_time.store(max_time, Ordering::Release);
    }

    /// The committed bytes of the segment, mapped. `None` when nothing is committed or the
    /// file is gone (retired by retention while a reader held the entry).
    pub fn data(&self) -> Result<Option<(Arc<Mmap>, usize)>, HistoryError> {
        let len = self.committed.load(Ordering::Acquire) as usize;
        if len <= HEADER_LEN as usize {
            return Ok(None);
        }
        let mut cached = self.map.lock();
        if let Some(m) = cached.as_ref()
            && m.len() >= len
        {
            return Ok(Some((m.clone(), len)));
        }
        // The active segment grows, so its mapping is renewed when the committed length has
        // passed it; sealed segments are mapped once.
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(HistoryError::io(&self.path, e)),
        };
        let m =
            Arc::new(format::map_file(&file, len).map_err(|e| HistoryError::io(&self.path, e))?);
        *cached = Some(m.clone());
        Ok(Some((m, len)))
    }

    /// Writes `index` as this segment's sidecar (temporary name, then rename). The sidecar is
    /// not fsynced: a sidecar lost or torn in a crash fails its CRC and is rebuilt by a scan.
    pub fn write_sidecar(
        &self,
        index: &SegIndex,
        file_len: u64,
        valid_len: u64,
    ) -> Result<u64, HistoryError> {
        let bytes = index.to_sidecar(self.seq, file_len, valid_len);
        let tmp = self.idx_path.with_extension("idx.tmp");
        let mut f = File::create(&tmp).map_err(|e| HistoryError::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| HistoryError::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &self.idx_path).map_err(|e| HistoryError::io(&self.idx_path, e))?;
        self.idx_len.store(bytes.len() as u64, Ordering::Release);
        Ok(bytes.len() as u64)
    }

    /// Maps and verifies the sidecar on disk; `None` (with a warning) if it is missing, corrupt
    /// or belongs to another version of the segment.
    fn load_sidecar(&self, file_len: u64) -> Option<Sidecar> {
        let file = match File::open(&self.idx_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %self.idx_path.display(), error = %e, "cannot open history sidecar index; rebuilding it");
                return None;
            }
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0) as usize;
        let parsed = format::map_file(&file, len)
            .map_err(|_| (0, "cannot be mapped"))
            .and_then(Sidecar::parse);
        match parsed {
            Ok(s)
                if s.meta.seq == self.seq
                    && s.meta.file_len == file_len
                    && s.meta.valid_len <= file_len =>
            {
                Some(s)
            }
            Ok(_) => {
                tracing::warn!(file = %self.idx_path.display(), "history sidecar index does not match its segment; rebuilding it");
                None
            }
            Err((offset, reason)) => {
                tracing::warn!(file = %self.idx_path.display(), offset, reason, "corrupt history sidecar index; rebuilding it");
                None
            }
        }
    }

    /// Where to find `uid`'s streams in a sealed segment: loads (or rebuilds) the sidecar on
    /// first use. `None` for the active segment (the caller asks the writer).
    pub fn sealed_lookup(&self, uid: &str) -> Result<Option<Found>, HistoryError> {
        {
            let st = self.state.read();
            match &*st {
                IndexState::Active => return Ok(None),
                IndexState::Memory(idx) => {
                    return Ok(Some(Found {
                        strings: StrSrc::Index(idx.clone()),
                        streams: idx.lookup(uid),
                    }));
                }
                IndexState::Sealed(Some(side)) => {
                    return Ok(Some(Found {
                        strings: StrSrc::Sidecar(side.clone()),
                        streams: side.lookup(uid),
                    }));
                }
                IndexState::Sealed(None) => {}
            }
        }
        let mut st = self.state.write();
        if let IndexState::Sealed(None) = &*st {
            let file_len = self.file_len.load(Ordering::Acquire);
            *st = match self.load_sidecar(file_len) {
                Some(s) => IndexState::Sealed(Some(Arc::new(s))),
                None => {
                    // Rebuild from the segment itself.
                    let index = match self.data()? {
                        Some((m, len)) => scan(&m[..len], &self.path).0,
                        None => SegIndex::default(),
                    };
                    let index = SegIndex { file_len, ..index };
                    match self
                        .write_sidecar(&index, index.file_len, index.valid_len)
                        .and_then(|_| {
                            self.load_sidecar(file_len).ok_or_else(|| {
                                HistoryError::corrupt(&self.idx_path, 0, "unreadable after writing")
                            })
                        }) {
                        Ok(s) => IndexState::Sealed(Some(Arc::new(s))),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot write history sidecar index; keeping it in memory");
                            IndexState::Memory(Arc::new(index))
                        }
                    }
                }
            };
        }
        drop(st);
        self.sealed_lookup(uid)
    }
}

/// Where string ids of one segment resolve to record offsets.
pub(crate) enum StrSrc {
    /// A copy of the active segment's string table.
    Owned(Vec<u32>),
    /// An in-memory index.
    Index(Arc<SegIndex>),
    /// A sidecar.
    Sidecar(Arc<Sidecar>),
}

impl StrSrc {
    fn get(&self, id: u32) -> Option<u32> {
        match self {
            StrSrc::Owned(v) => v.get(id as usize).copied(),
            StrSrc::Index(i) => i.string_offsets.get(id as usize).copied(),
            StrSrc::Sidecar(s) => s.string_offset(id),
        }
    }
}

/// The streams of one uid in one segment: `(definition offset, record offsets)` and how to
/// resolve the segment's strings.
pub(crate) struct Found {
    /// String table.
    pub strings: StrSrc,
    /// Candidate streams (a sidecar may include hash collisions; the decoder checks the uid).
    pub streams: Vec<(u32, Vec<u32>)>,
}

/// Strings of a mapped segment, decoded from their definition records on demand.
struct MappedStrings<'a> {
    data: &'a [u8],
    src: &'a StrSrc,
}

impl Strings for MappedStrings<'_> {
    fn string(&self, id: u32) -> Result<Text, DecodeError> {
        let off = self.src.get(id).ok_or(DecodeError {
            pos: 0,
            reason: "reference to an undefined string",
        })? as usize;
        let mut rd = Reader::new(self.data, off);
        if rd.u8()? != REC_STRING {
            return Err(DecodeError {
                pos: off,
                reason: "string offset does not point at a string",
            });
        }
        codec::read_string_def(&mut rd)
    }
}

/// One stream being decoded by [`track_segment`].
struct Cursor<'a> {
    template: Report,
    delta: Delta,
    offsets: &'a [u32],
    next: usize,
}

/// Decodes `uid`'s records in one segment's committed `data` in append order. For each record
/// `visit(time)` says whether to build the report, which is then handed to `out`. Several
/// streams of one uid (e.g. after a callsign change) are merged by offset, so `visit` and
/// `out` always see append order. Damage is logged and ends that stream's contribution; it
/// never fails the query.
pub(crate) fn track_segment(
    data: &[u8],
    path: &Path,
    found: &Found,
    uid: &str,
    visit: &mut dyn FnMut(i64) -> bool,
    out: &mut dyn FnMut(Report),
) {
    let strings = MappedStrings {
        data,
        src: &found.strings,
    };
    let mut cursors = Vec::with_capacity(found.streams.len());
    for (dict, offsets) in &found.streams {
        let mut rd = Reader::new(data, *dict as usize);
        let template = rd.u8().and_then(|k| {
            if k == REC_STREAM {
                codec::read_stream_def(&mut rd, &strings)
            } else {
                Err(DecodeError {
                    pos: *dict as usize,
                    reason: "stream offset does not point at a stream",
                })
            }
        });
        match template {
            // A different uid is a sidecar hash collision.
            Ok(template) if template.uid == uid => cursors.push(Cursor {
                template,
                delta: Delta::default(),
                offsets,
                next: 0,
            }),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(file = %path.display(), offset = e.pos, reason = e.reason, "corrupt history stream definition; skipping it");
            }
        }
    }
    loop {
        // The cursor with the smallest next offset (there is almost always just one).
        let mut best: Option<(usize, u32)> = None;
        for (i, c) in cursors.iter().enumerate() {
            if let Some(&off) = c.offsets.get(c.next)
                && (off as usize) < data.len() // later offsets are not committed yet
                && best.is_none_or(|(_, b)| off < b)
            {
                best = Some((i, off));
            }
        }
        let Some((i, off)) = best else { return };
        let c = &mut cursors[i];
        c.next += 1;
        let mut rd = Reader::new(data, off as usize);
        let res = rd.u8().and_then(|f| {
            if f & 0x80 != 0 {
                return Err(DecodeError {
                    pos: off as usize,
                    reason: "record offset does not point at a position",
                });
            }
            codec::read_stream_id(&mut rd)?;
            codec::read_position(&mut rd, f, &mut c.delta, &c.template, &strings, &mut *visit)
        });
        match res {
            Ok((_, Some(r))) => out(r),
            Ok((_, None)) => {}
            Err(e) => {
                tracing::error!(file = %path.display(), offset = e.pos, reason = e.reason, "corrupt history record; skipping the rest of this track in the segment");
                c.next = c.offsets.len();
            }
        }
    }
}

/// Calls `f` for every report of one segment's committed `data` in file order. Returns the
/// number of reports; damage is logged and ends the segment.
pub(crate) fn replay_segment(data: &[u8], path: &Path, f: &mut dyn FnMut(Report)) -> u64 {
    let mut dec = SeqDecoder::default();
    let mut pos = HEADER_LEN as usize;
    let mut n = 0u64;
    loop {
        match format::next_frame(data, pos) {
            Frame::Ok { payload, next } => {
                let mut rd = Reader::new(&data[..payload.end], payload.start);
                while !rd.at_end() {
                    match dec.next(&mut rd, true) {
                        Ok(Item::Position {
                            report: Some(r), ..
                        }) => {
                            f(r);
                            n += 1;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(file = %path.display(), offset = e.pos, reason = e.reason, "corrupt history record; skipping the rest of the segment");
                            return n;
                        }
                    }
                }
                pos = next;
            }
            Frame::End => return n,
            Frame::Bad(reason) => {
                tracing::error!(file = %path.display(), offset = pos, reason, "corrupt history frame; skipping the rest of the segment");
                return n;
            }
        }
    }
}

/// Calls `f` for every report of one segment's committed `data` whose time is within
/// `[from, to]`, in file order; reports outside the window are decoded only as far as their
/// time (their fields are skipped, not built). Damage is logged and ends the segment.
pub(crate) fn window_segment(
    data: &[u8],
    path: &Path,
    from: i64,
    to: i64,
    f: &mut dyn FnMut(Report),
) {
    let mut dec = SeqDecoder::default();
    let mut pos = HEADER_LEN as usize;
    loop {
        match format::next_frame(data, pos) {
            Frame::Ok { payload, next } => {
                let mut rd = Reader::new(&data[..payload.end], payload.start);
                while !rd.at_end() {
                    match dec.next_if(&mut rd, |t| from <= t && t <= to) {
                        Ok(Item::Position {
                            report: Some(r), ..
                        }) => f(r),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(file = %path.display(), offset = e.pos, reason = e.reason, "corrupt history record; skipping the rest of the segment");
                            return;
                        }
                    }
                }
                pos = next;
            }
            Frame::End => return,
            Frame::Bad(reason) => {
                tracing::error!(file = %path.display(), offset = pos, reason, "corrupt history frame; skipping the rest of the segment");
                return;
            }
        }
    }
}

/// Scans a whole segment (`data` starts with its header), verifying every frame and building
/// its index. Returns the index (valid up to `valid_len`) and the first damage found, if any.
pub(crate) fn scan(data: &[u8], _path: &Path) -> (SegIndex, Option<(u64, &'static str)>) {
    // Offsets are u32; a file larger than that is not one this store wrote.
    let data = &data[..data.len().min(u32::MAX as usize)];
    let mut idx = SegIndex {
        min_time: i64::MAX,
        max_time: i64::MIN,
        file_len: data.len() as u64,
        ..SegIndex::default()
    };
    let mut dec = SeqDecoder::default();
    let mut pos = HEADER_LEN as usize;
    let mut bad = None;
    'frames: loop {
        match format::next_frame(data, pos) {
            Frame::Ok { payload, next } => {
                let mut rd = Reader::new(&data[..payload.end], payload.start);
                while !rd.at_end() {
                    let at = rd.pos as u32;
                    match dec.next(&mut rd, false) {
                        Ok(Item::String) => idx.string_offsets.push(at),
                        Ok(Item::Stream(s)) => idx.streams.push(IdxStream {
                            uid: dec.uid(s).cloned().unwrap_or_default(),
                            dict_offset: at,
                            offsets: Vec::new(),
                        }),
                        Ok(Item::Position { stream, time, .. }) => {
                            if let Some(s) = idx.streams.get_mut(stream as usize) {
                                s.offsets.push(at);
                            }
                            idx.reports += 1;
                            idx.min_time = idx.min_time.min(time);
                            idx.max_time = idx.max_time.max(time);
                        }
                        Err(e) => {
                            bad = Some((e.pos as u64, e.reason));
                            break 'frames;
                        }
                    }
                }
                pos = next;
            }
            Frame::End => break,
            Frame::Bad(reason) => {
                bad = Some((pos as u64, reason));
                break;
            }
        }
    }
    // A frame that passed its CRC but did not decode is dropped whole: cut the index back to
    // the frame's start.
    let valid = pos as u32;
    idx.valid_len = u64::from(valid);
    if bad.is_some() {
        while idx.streams.last().is_some_and(|s| s.dict_offset >= valid) {
            idx.streams.pop();
        }
        while idx.string_offsets.last().is_some_and(|&o| o >= valid) {
            idx.string_offsets.pop();
        }
        let mut reports = 0;
        for s in &mut idx.streams {
            while s.offsets.last().is_some_and(|&o| o >= valid) {
                s.offsets.pop();
            }
            reports += s.offsets.len() as u64;
        }
        // min/max stay conservative (they may include a dropped frame); that only widens
        // which queries look at this segment.
        idx.reports = reports;
    }
    (idx, bad)
}

/// Opens segment `seq` during recovery: trusts a matching sidecar, otherwise scans the file,
/// truncating a torn tail if it is the newest segment (`is_last`), and writes a fresh sidecar.
/// Returns `None` for a segment that holds no reports (it is deleted) or whose header is bad
/// (it is left alone and logged).
pub(crate) fn recover(
    dir: &Path,
    seq: u64,
    is_last: bool,
) -> Result<Option<Arc<Segment>>, HistoryError> {
    let seg = Segment::new(dir, seq, IndexState::Sealed(None));
    let path = seg.path.clone();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| HistoryError::io(&path, e))?;
    let mut file_len = file
        .metadata()
        .map_err(|e| HistoryError::io(&path, e))?
        .len();
    let mut header = [0u8; HEADER_LEN as usize];
    let header_ok = {
        use std::os::unix::fs::FileExt;
        file_len >= HEADER_LEN
            && file.read_exact_at(&mut header, 0).is_ok()
            && format::parse_segment_header(&header) == Ok(seq)
    };
    if !header_ok {
        let reason = format::parse_segment_header(&header)
            .err()
            .unwrap_or("sequence number does not match the file name");
        if is_last {
            // The header is fsynced before any frame is written, so a bad header on the newest
            // segment means it was torn while being created: it holds nothing acknowledged.
            tracing::warn!(file = %path.display(), offset = 0, reason, "deleting a history segment torn while being created");
            drop(file);
            fs::remove_file(&path).map_err(|e| HistoryError::io(&path, e))?;
            let _ = fs::remove_file(&seg.idx_path);
        } else {
            tracing::error!(file = %path.display(), offset = 0, reason, "history segment has a bad header; ignoring it");
        }
        return Ok(None);
    }

    if !is_last {
        if let Some(side) = seg.load_sidecar(file_len) {
            let m = side.meta;
            seg.committed.store(m.valid_len, Ordering::Release);
            seg.file_len.store(file_len, Ordering::Release);
            seg.idx_len.store(side.len(), Ordering::Release);
            seg.set_summary(m.reports, m.min_time, m.max_time);
            if m.reports == 0 {
                return delete_empty(seg);
            }
            *seg.state.write() = IndexState::Sealed(Some(Arc::new(side)));
            return Ok(Some(Arc::new(seg)));
        }
    } else if let Some(side) = seg.load_sidecar(file_len) {
        // The newest segment was sealed by a clean close.
        let m = side.meta;
        if m.valid_len == file_len {
            seg.committed.store(m.valid_len, Ordering::Release);
            seg.file_len.store(file_len, Ordering::Release);
            seg.idx_len.store(side.len(), Ordering::Release);
            seg.set_summary(m.reports, m.min_time, m.max_time);
            if m.reports == 0 {
                return delete_empty(seg);
            }
            *seg.state.write() = IndexState::Sealed(Some(Arc::new(side)));
            return Ok(Some(Arc::new(seg)));
        }
    }

    let (mut index, bad) = {
        let map =
            format::map_file(&file, file_len as usize).map_err(|e| HistoryError::io(&path, e))?;
        scan(&map, &path)
        // The mapping ends here, before any truncation below.
    };
    if let Some((offset, reason)) = bad {
        if is_last {
            tracing::warn!(file = %path.display(), offset, reason, "truncating the torn tail of the newest history segment");
            file.set_len(index.valid_len)
                .map_err(|e| HistoryError::io(&path, e))?;
            file.sync_all().map_err(|e| HistoryError::io(&path, e))?;
            file_len = index.valid_len;
        } else {
            tracing::error!(file = %path.display(), offset, reason, "corrupt history segment; skipping the rest of it");
        }
    }
    index.file_len = file_len;
    seg.committed.store(index.valid_len, Ordering::Release);
    seg.file_len.store(file_len, Ordering::Release);
    seg.set_summary(index.reports, index.min_time, index.max_time);
    if index.reports == 0 {
        return delete_empty(seg);
    }
    match seg.write_sidecar(&index, index.file_len, index.valid_len) {
        Ok(_) => *seg.state.write() = IndexState::Sealed(None),
        Err(e) => {
            tracing::warn!(error = %e, "cannot write history sidecar index; keeping it in memory");
            *seg.state.write() = IndexState::Memory(Arc::new(index));
        }
    }
    Ok(Some(Arc::new(seg)))
}

fn delete_empty(seg: Segment) -> Result<Option<Arc<Segment>>, HistoryError> {
    tracing::info!(file = %seg.path.display(), "deleting an empty history segment");
    fs::remove_file(&seg.path).map_err(|e| HistoryError::io(&seg.path, e))?;
    match fs::remove_file(&seg.idx_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(HistoryError::io(&seg.idx_path, e));
        }
        _ => {}
    }
    Ok(None)
}
