//! `rampart_history::SegmentLog::open` on a directory holding one fuzzed segment file (and
//! optionally a fuzzed sidecar index), then replay, track queries, time-window scans (the
//! console's playback; the answer stays within its bound and sorted), stats, close and a second
//! open of what the first left behind. Recovery must never panic, whatever the files hold.
//!
//! Input layout (see `fuzz/README.md`):
//!
//! ```text
//! flags u8 | section (SEP section)*          SEP = b"#FRAME#"
//! ```
//!
//! - flags bit 0 (raw): the sections, joined back, are written verbatim after the 32-byte
//!   header (tests torn tails, bad lengths and CRC mismatches). Otherwise each section is a
//!   frame payload, written with a valid length and CRC32C, so the record decoder is reached.
//! - flags bit 1 (sidecar): the last section is not a frame but the body of a sidecar index
//!   `seg-…01.idx` (everything after its 80-byte header's fixed fields, see below). The
//!   harness writes the magic, version, CRC, seq and file length so the sidecar is accepted
//!   and its tables (offsets into the segment) are used by track queries.
//! - flags bit 2 (older): a valid, empty newer segment is written too, so the fuzzed one is
//!   recovered as an older segment (the sidecar is trusted without a rescan).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig, TrackQuery, WindowQuery};
use rampart_model::Timestamp;

const SEP: &[u8] = b"#FRAME#";
const SEQ: u64 = 1;

fn segment_header(seq: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(b"RMPHSEG1");
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&seq.to_le_bytes());
    h.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
    h
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&len);
    f.extend_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// A sidecar for segment `seq` of `file_len` bytes. `body` supplies, in order: valid_len u64,
/// reports u64, min_time i64, max_time i64, the four counts u32 and the tables; missing
/// bytes are zero. valid_len is clamped to the file length (a larger one is rejected anyway).
fn sidecar(seq: u64, file_len: u64, body: &[u8]) -> Vec<u8> {
    let mut fixed = [0u8; 48];
    let n = body.len().min(48);
    fixed[..n].copy_from_slice(&body[..n]);
    let valid_len = u64::from_le_bytes(fixed[0..8].try_into().unwrap_or_default());
    fixed[0..8].copy_from_slice(&valid_len.min(file_len).to_le_bytes());
    let tables = body.get(48..).unwrap_or(&[]);
    let mut out = Vec::with_capacity(80 + tables.len());
    out.extend_from_slice(b"RMPHIDX1");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&file_len.to_le_bytes());
    out.extend_from_slice(&fixed);
    out.extend_from_slice(tables);
    let crc = crc32c::crc32c(&out[16..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

fn exercise(dir: &std::path::Path) {
    let mut cfg = SegmentLogConfig::new(dir);
    cfg.fsync = false;
    let Ok(log) = SegmentLog::open(cfg) else {
        return;
    };
    let mut uids = Vec::new();
    let _ = log.replay(&mut |r| {
        if uids.len() < 8 && !uids.contains(&r.uid) {
            uids.push(r.uid.clone());
        }
    });
    uids.push("absent".into());
    for uid in &uids {
        for limit in [1, 1000] {
            let _ = log.track(&TrackQuery {
                uid: uid.to_string(),
                from: Timestamp(i64::MIN),
                to: Timestamp(i64::MAX),
                limit,
            });
        }
    }
    for (from, to, max_records) in [
        (i64::MIN, i64::MAX, 3),
        (i64::MIN, i64::MAX, 100_000),
        (1_700_000_000_000, 1_700_000_100_000, 50),
    ] {
        if let Ok(w) = log.window(&WindowQuery {
            from: Timestamp(from),
            to: Timestamp(to),
            max_records,
        }) {
            assert!(w.reports.len() <= max_records, "window over its bound");
            assert!(
                w.reports.windows(2).all(|p| p[0].time <= p[1].time),
                "window not sorted by time"
            );
            assert!(
                w.reports.iter().all(|r| r.time.0 >= from && r.time.0 <= to),
                "window holds a report outside it"
            );
        }
    }
    let _ = log.stats();
    let _ = log.enforce_retention(Timestamp(1_800_000_000_000));
    let _ = log.close();
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let raw = flags & 1 != 0;
    let with_sidecar = flags & 2 != 0;
    let older = flags & 4 != 0;

    let mut sections = rampart_fuzz::split_on(rest, SEP);
    let side_body = if with_sidecar && sections.len() > 1 {
        sections.pop()
    } else {
        None
    };
    let mut seg = segment_header(SEQ);
    if raw {
        seg.extend_from_slice(&sections.join(SEP));
    } else {
        for s in sections.iter().filter(|s| !s.is_empty()) {
            seg.extend_from_slice(&frame(s));
        }
    }

    let base = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::Builder::new()
            .prefix("rampart-fuzz-")
            .tempdir_in("/dev/shm")
    } else {
        tempfile::Builder::new().prefix("rampart-fuzz-").tempdir()
    };
    let Ok(tmp) = base else {
        return;
    };
    let dir = tmp.path().join("history");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let name = |seq: u64, ext: &str| dir.join(format!("seg-{seq:020}.{ext}"));
    if std::fs::write(name(SEQ, "log"), &seg).is_err() {
        return;
    }
    if let Some(body) = side_body {
        let _ = std::fs::write(name(SEQ, "idx"), sidecar(SEQ, seg.len() as u64, body));
    }
    if older {
        let _ = std::fs::write(name(SEQ + 1, "log"), segment_header(SEQ + 1));
    }

    // First open: recovery of the fuzzed files. Second open: whatever the first left (a
    // truncated tail, a rebuilt sidecar, the sealed segment it created).
    exercise(&dir);
    exercise(&dir);
});
