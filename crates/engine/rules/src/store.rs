//! Files under `DATA/rules/`: whole JSON documents written atomically (temp file, fsync,
//! rename, fsync of the directory) and the append-only JSON-lines alert log.
//!
//! ```text
//! definitions.json   {"geofences":[…],"rules":[…],"webhooks":[…]}        rewritten on every change
//! state.json         per-entity rule state (dwell entry times …)         rewritten every state_save_interval_ms
//! alerts.jsonl       one AlertEvent per line, compacted to one line per alert when it grows
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A temp name per call: two writers of the same file never share (and lose) a temp file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a JSON document; `Ok(None)` when the file does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Reads every well-formed line of a JSON-lines file; a torn last line is skipped and counted.
pub(crate) fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> (Vec<T>, usize) {
    let Ok(f) = File::open(path) else {
        return (Vec::new(), 0);
    };
    let mut out = Vec::new();
    let mut bad = 0;
    for line in BufReader::new(f).lines() {
        let Ok(line) = line else {
            bad += 1;
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(v) => out.push(v),
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

/// An append-only JSON-lines file.
pub(crate) struct LineLog {
    file: File,
    /// Lines written since the last compaction.
    pub lines: usize,
}

impl LineLog {
    /// Opens `path` for appending.
    pub fn open(path: &Path, lines: usize) -> std::io::Result<LineLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LineLog { file, lines })
    }

    /// Appends one line per item and syncs.
    pub fn append<T: serde::Serialize>(&mut self, items: &[T]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for it in items {
            serde_json::to_writer(&mut buf, it).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.lines += items.len();
        Ok(())
    }
}
