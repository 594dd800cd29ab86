//! On-disk layout: segment file headers, CRC-protected frames and sidecar index files. This
//! module owns every byte position; it knows nothing about what the records inside mean.
//!
//! ```text
//! seg-<seq:020>.log   header (32 B): magic "RMPHSEG1", version u32, reserved u32,
//!                                    seq u64, created ms i64            (all little endian)
//!                     frames:        len u32, crc32c(len ‖ payload) u32, payload (records)
//! seg-<seq:020>.idx   header (80 B): magic "RMPHIDX1", version u32, crc32c(rest) u32,
//!                                    seq u64, file_len u64, valid_len u64, reports u64,
//!                                    min_time i64, max_time i64,
//!                                    n_hashes u32, n_streams u32, n_strings u32, n_offsets u32
//!                     hash table:    n_hashes × (fnv1a64(uid) u64, first u32, count u32), sorted
//!                     stream list:   n_streams × stream id u32, grouped by uid hash
//!                     stream table:  n_streams × (dict offset u32, first offset u32, count u32)
//!                     string table:  n_strings × offset u32
//!                     offsets:       n_offsets × record offset u32 (per stream, ascending)
//! ```
//!
//! One frame is one group commit. A frame is valid only if its whole payload is present and
//! its CRC matches, so a torn write is always detected at the first bad frame.

use std::fs::File;
use std::ops::Range;

use memmap2::{Mmap, MmapOptions};
use rampart_model::Uid;

/// Magic bytes opening every segment file.
pub(crate) const SEG_MAGIC: [u8; 8] = *b"RMPHSEG1";
/// Magic bytes opening every sidecar index file.
pub(crate) const IDX_MAGIC: [u8; 8] = *b"RMPHIDX1";
/// Format version of both file kinds.
pub(crate) const VERSION: u32 = 1;
/// Bytes of a segment header.
pub(crate) const HEADER_LEN: u64 = 32;
/// Bytes of a frame header (length and CRC).
pub(crate) const FRAME_HEADER: u64 = 8;
/// Largest frame payload accepted when reading; larger lengths are corruption.
pub(crate) const MAX_FRAME: u32 = 1 << 30;
const IDX_HEADER: usize = 80;

/// Maps the first `len` bytes of `file` read-only.
///
/// Only called with `len` no larger than what this process has written and fsynced (or what
/// recovery verified), and only on files this store owns (the directory is locked).
#[allow(unsafe_code)]
pub(crate) fn map_file(file: &File, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: the mapping is read-only and covers only bytes that exist in the file. The store
    // never truncates or rewrites a file while it can be mapped: segments are append-only
    // (torn tails are truncated during `open`, before anything is mapped), sidecars are
    // written under a temporary name and renamed, and retention deletes whole files, which on
    // Linux leaves existing mappings valid. Other processes are kept out by the directory
    // lock; a foreign process writing the files anyway is outside what this can defend.
    unsafe { MmapOptions::new().len(len).map(file) }
}

/// The 32-byte header of segment `seq`, created at wall-clock `created_ms`.
pub(crate) fn segment_header(seq: u64, created_ms: i64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(&SEG_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    h[24..32].copy_from_slice(&created_ms.to_le_bytes());
    h
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Checks a segment header; returns the segment's sequence number.
pub(crate) fn parse_segment_header(b: &[u8]) -> Result<u64, &'static str> {
    if b.len() < HEADER_LEN as usize {
        return Err("shorter than a segment header");
    }
    if b[0..8] != SEG_MAGIC {
        return Err("not a Rampart history segment (bad magic)");
    }
    if le_u32(b, 8) != VERSION {
        return Err("unsupported segment format version");
    }
    Ok(le_u64(b, 16))
}

/// The 8-byte header of a frame carrying `payload`.
pub(crate) fn frame_header(payload: &[u8]) -> [u8; FRAME_HEADER as usize] {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    let mut h = [0u8; 8];
    h[0..4].copy_from_slice(&len);
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The outcome of reading the frame at some position.
pub(crate) enum Frame {
    /// A valid frame: its payload's range and where the next frame starts.
    Ok {
        /// Payload bytes within the data.
        payload: Range<usize>,
        /// Start of the next frame.
        next: usize,
    },
    /// Clean end of data.
    End,
    /// A torn or corrupt frame.
    Bad(&'static str),
}

/// Reads and verifies the frame starting at `pos` of `data` (a whole segment file prefix).
pub(crate) fn next_frame(data: &[u8], pos: usize) -> Frame {
    if pos >= data.len() {
        return Frame::End;
    }
    if data.len() - pos < FRAME_HEADER as usize {
        return Frame::Bad("partial frame header");
    }
    let len = le_u32(data, pos);
    if len == 0 || len > MAX_FRAME {
        return Frame::Bad("impossible frame length");
    }
    let start = pos + FRAME_HEADER as usize;
    let end = start + len as usize;
    if end > data.len() {
        return Frame::Bad("frame runs past the end of the file");
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&data[pos..pos + 4]), &data[start..end]);
    if crc != le_u32(data, pos + 4) {
        return Frame::Bad("frame checksum mismatch");
    }
    Frame::Ok {
        payload: start..end,
        next: end,
    }
}

/// A stable 64-bit hash of a uid for the sidecar's lookup table (FNV-1a: simple, stable
/// across versions and platforms, and collisions are resolved by comparing the uid).
pub(crate) fn uid_hash(uid: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in uid.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One stream of a segment's in-memory index.
pub(crate) struct IdxStream {
    /// The stream's entity.
    pub uid: Uid,
    /// Offset of its definition record.
    pub dict_offset: u32,
    /// Offsets of its position records, ascending.
    pub offsets: Vec<u32>,
}

/// A segment's index in memory: built by the writer (then sealed to a sidecar) or by a scan.
#[derive(Default)]
pub(crate) struct SegIndex {
    /// Streams by stream id.
    pub streams: Vec<IdxStream>,
    /// Offset of each string definition by string id.
    pub string_offsets: Vec<u32>,
    /// Position records.
    pub reports: u64,
    /// Smallest report time (`i64::MAX` when none).
    pub min_time: i64,
    /// Largest report time (`i64::MIN` when none).
    pub max_time: i64,
    /// Length of the segment file when indexed.
    pub file_len: u64,
    /// Bytes of the segment that hold valid frames.
    pub valid_len: u64,
}

impl SegIndex {
    /// Streams of `uid`: `(dict offset, record offsets)`.
    pub fn lookup(&self, uid: &str) -> Vec<(u32, Vec<u32>)> {
        self.streams
            .iter()
            .filter(|s| s.uid == uid)
            .map(|s| (s.dict_offset, s.offsets.clone()))
            .collect()
    }

    /// Serialises the index as a sidecar file for segment `seq`, whose file is `file_len`
    /// bytes long with valid frames up to `valid_len`.
    pub fn to_sidecar(&self, seq: u64, file_len: u64, valid_len: u64) -> Vec<u8> {
        let mut by_hash: Vec<(u64, u32)> = self
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| (uid_hash(&s.uid), i as u32))
            .collect();
        by_hash.sort_unstable();
        let mut table: Vec<(u64, u32, u32)> = Vec::new();
        for (i, &(h, _)) in by_hash.iter().enumerate() {
            match table.last_mut() {
                Some(last) if last.0 == h => last.2 += 1,
                _ => table.push((h, i as u32, 1)),
            }
        }
        let n_offsets: usize = self.streams.iter().map(|s| s.offsets.len()).sum();
        let mut out = Vec::with_capacity(
            IDX_HEADER
                + table.len() * 16
                + self.streams.len() * 16
                + self.string_offsets.len() * 4
                + n_offsets * 4,
        );
        out.extend_from_slice(&IDX_MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // CRC, filled in below
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&file_len.to_le_bytes());
        out.extend_from_slice(&valid_len.to_le_bytes());
        out.extend_from_slice(&self.reports.to_le_bytes());
        out.extend_from_slice(&self.min_time.to_le_bytes());
        out.extend_from_slice(&self.max_time.to_le_bytes());
        for n in [
            table.len(),
            self.streams.len(),
            self.string_offsets.len(),
            n_offsets,
        ] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for (h, first, count) in &table {
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        for (_, s) in &by_hash {
            out.extend_from_slice(&s.to_le_bytes());
        }
        let mut start = 0u32;
        for s in &self.streams {
            out.extend_from_slice(&s.dict_offset.to_le_bytes());
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&(s.offsets.len() as u32).to_le_bytes());
            start += s.offsets.len() as u32;
        }
        for o in &self.string_offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        for s in &self.streams {
            for o in &s.offsets {
                out.extend_from_slice(&o.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&out[16..]);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// The summary numbers of a sidecar.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SidecarMeta {
    /// Segment sequence number.
    pub seq: u64,
    /// Segment file length when the sidecar was written.
    pub file_len: u64,
    /// Bytes of the segment holding valid frames.
    pub valid_len: u64,
    /// Position records.
    pub reports: u64,
    /// Smallest report time.
    pub min_time: i64,
    /// Largest report time.
    pub max_time: i64,
}

/// A verified, memory-mapped sidecar index.
pub(crate) struct Sidecar {
    bytes: Mmap,
    /// Its summary numbers.
    pub meta: SidecarMeta,
    n_hashes: usize,
    n_streams: usize,
    n_strings: usize,
    n_offsets: usize,
    list_at: usize,
    streams_at: usize,
    strings_at: usize,
    offsets_at: usize,
}

impl Sidecar {
    /// Verifies a mapped sidecar (magic, version, CRC, section sizes).
    pub fn parse(bytes: Mmap) -> Result<Sidecar, (u64, &'static str)> {
        let b: &[u8] = &bytes;
        if b.len() < IDX_HEADER {
            return Err((0, "shorter than a sidecar header"));
        }
        if b[0..8] != IDX_MAGIC {
            return Err((0, "bad magic"));
        }
        if le_u32(b, 8) != VERSION {
            return Err((8, "unsupported version"));
        }
        if crc32c::crc32c(&b[16..]) != le_u32(b, 12) {
            return Err((12, "checksum mismatch"));
        }
        let meta = SidecarMeta {
            seq: le_u64(b, 16),
            file_len: le_u64(b, 24),
            valid_len: le_u64(b, 32),
            reports: le_u64(b, 40),
            min_time: le_u64(b, 48) as i64,
            max_time: le_u64(b, 56) as i64,
        };
        let n_hashes = le_u32(b, 64) as usize;
        let n_streams = le_u32(b, 68) as usize;
        let n_strings = le_u32(b, 72) as usize;
        let n_offsets = le_u32(b, 76) as usize;
        let list_at = IDX_HEADER + n_hashes * 16;
        let streams_at = list_at + n_streams * 4;
        let strings_at = streams_at + n_streams * 12;
        let offsets_at = strings_at + n_strings * 4;
        if offsets_at + n_offsets * 4 != b.len() {
            return Err((64, "section sizes do not match the file length"));
        }
        Ok(Sidecar {
            bytes,
            meta,
            n_hashes,
            n_streams,
            n_strings,
            n_offsets,
            list_at,
            streams_at,
            strings_at,
            offsets_at,
        })
    }

    /// Bytes of the sidecar file.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Streams whose uid hashes like `uid`: `(dict offset, record offsets)`. The caller checks
    /// the uid in the definition record (hash collisions). Out-of-range entries are skipped.
    pub fn lookup(&self, uid: &str) -> Vec<(u32, Vec<u32>)> {
        let b: &[u8] = &self.bytes;
        let h = uid_hash(uid);
        let hash_at = |i: usize| le_u64(b, IDX_HEADER + i * 16);
        let (mut lo, mut hi) = (0usize, self.n_hashes);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if hash_at(mid) < h {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        if lo >= self.n_hashes || hash_at(lo) != h {
            return out;
        }
        let first = le_u32(b, IDX_HEADER + lo * 16 + 8) as usize;
        let count = le_u32(b, IDX_HEADER + lo * 16 + 12) as usize;
        for i in first..first.saturating_add(count).min(self.n_streams) {
            let s = le_u32(b, self.list_at + i * 4) as usize;
            if s >= self.n_streams {
                continue;
            }
            let at = self.streams_at + s * 12;
            let dict = le_u32(b, at);
            let start = le_u32(b, at + 4) as usize;
            let n = le_u32(b, at + 8) as usize;
            let end = start.saturating_add(n).min(self.n_offsets);
            let start = start.min(end);
            let offsets = b[self.offsets_at + start * 4..self.offsets_at + end * 4]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            out.push((dict, offsets));
        }
        out
    }

    /// Offset of string `id`'s definition record.
    pub fn string_offset(&self, id: u32) -> Option<u32> {
        let id = id as usize;
        (id < self.n_strings).then(|| le_u32(&self.bytes, self.strings_at + id * 4))
    }
}
