//! # rampart-audit
//!
//! The node's append-only, hash-chained audit log. It owns the on-disk format, appending,
//! verification and export; callers (HTTP handlers, the CLI) only say who did what to what.
//!
//! - `<data>/audit/audit.log`: one JSON record per line,
//!   `{seq, time, actor, action, target, detail, prev, hash}`. `hash` is the hex SHA-256 of
//!   the record's canonical serialization without `hash` (the same JSON with fields in that
//!   order and no whitespace); `prev` is the previous record's `hash` (64 zeros for the first).
//! - `<data>/audit/audit.head`: the last record's `{seq, hash}`, rewritten (atomically) after
//!   every append. A chain alone cannot show that whole trailing records were cut off; the
//!   head can.
//!
//! Verification names the first bad record by line and sequence number. A hash chain is
//! tamper-evident, not tamper-proof: someone who can write the data directory can rebuild the
//! whole chain, which is why the tail hash is exposed for anchoring outside the node.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Largest serialized record (one line, without its newline), in bytes.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Largest `actor`, `action` or `target`, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;
/// The log's sub-directory of a node's data directory.
pub const AUDIT_DIR: &str = "audit";
/// The log file's name.
pub const LOG_FILE: &str = "audit.log";
/// The head sidecar's name.
pub const HEAD_FILE: &str = "audit.head";
/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it was appended (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// Who did it: an operator, a peer address, `cli`, `api`.
    pub actor: String,
    /// What was done, e.g. `device.register`, `command.create`, `cert.revoke`.
    pub action: String,
    /// What it was done to, e.g. a device id.
    pub target: String,
    /// Anything else worth keeping (never secrets).
    pub detail: serde_json::Value,
    /// The previous record's `hash` ([`GENESIS`] for the first).
    pub prev: String,
    /// Hex SHA-256 of the canonical serialization without `hash`.
    pub hash: String,
}

/// The fields that are hashed, in their canonical order.
#[derive(Serialize)]
struct Unsigned<'a> {
    seq: u64,
    time: &'a str,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    detail: &'a serde_json::Value,
    prev: &'a str,
}

impl Record {
    /// The hash this record should carry.
    pub fn compute_hash(&self) -> String {
        let unsigned = Unsigned {
            seq: self.seq,
            time: &self.time,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            detail: &self.detail,
            prev: &self.prev,
        };
        // Serializing plain strings, integers and a JSON value cannot fail.
        let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
        hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
    }

    fn line(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The chain's head: the last record's sequence number and hash (0 and [`GENESIS`] when empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tail {
    /// Sequence number of the last record (0: none).
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl Tail {
    fn genesis() -> Self {
        Tail {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// What a successful verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records in the log.
    pub records: u64,
    /// The last record.
    pub tail: Tail,
    /// The head sidecar was one record behind (a crash between the two writes); not tampering.
    pub head_lagged: bool,
}

/// Why a log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log or its head could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The first bad record: its line (from 1) and the sequence number expected there.
    #[error("record {seq} (line {line}) is bad: {reason}")]
    Record {
        /// Line number in the log, from 1.
        line: u64,
        /// The sequence number expected on that line.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The head sidecar is unreadable or disagrees with the log.
    #[error("audit head {path}: {reason}")]
    Head {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Why an append or open failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// File system error.
    #[error("audit log I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The existing log does not verify; it is not continued.
    #[error("the audit log does not verify: {0}")]
    Broken(#[from] VerifyError),
    /// A field or the whole record exceeds its limit.
    #[error("audit record too large: {0}")]
    TooLarge(String),
    /// An earlier append failed half-way; the log must be reopened (and verified).
    #[error("the audit log is unusable after an earlier write error; restart to verify it")]
    Poisoned,
}

/// How far a scan got.
struct Scan {
    records: u64,
    tail: Tail,
    /// Byte length of the complete lines.
    good_len: u64,
    /// A final line without its newline (a torn write or a truncation): its line number.
    torn_line: Option<u64>,
}

fn record_err(line: u64, seq: u64, reason: impl Into<String>) -> VerifyError {
    VerifyError::Record {
        line,
        seq,
        reason: reason.into(),
    }
}

/// Checks every complete line of `reader`; a final line without newline is reported, not judged.
fn scan(reader: impl Read, path: &Path) -> Result<Scan, VerifyError> {
    scan_from(reader, path, Tail::genesis())
}

/// [`scan`] of records that continue the chain after `tail` (line numbers follow `tail.seq`).
fn scan_from(reader: impl Read, path: &Path, start: Tail) -> Result<Scan, VerifyError> {
    let mut reader = BufReader::new(reader);
    let mut line_no = start.seq;
    let mut tail = start;
    let mut good_len = 0u64;
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(|source| VerifyError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let expected = tail.seq + 1;
        if buf.last() != Some(&b'\n') {
            if buf.len() > MAX_RECORD_BYTES {
                return Err(record_err(
                    line_no,
                    expected,
                    format!("longer than the {MAX_RECORD_BYTES}-byte record limit"),
                ));
            }
            return Ok(Scan {
                records: tail.seq,
                tail,
                good_len,
                torn_line: Some(line_no),
            });
        }
        let body = &buf[..buf.len() - 1];
        let r: Record = serde_json::from_slice(body)
            .map_err(|e| record_err(line_no, expected, format!("not a valid record: {e}")))?;
        if r.seq != expected {
            return Err(record_err(
                line_no,
                expected,
                format!(
                    "sequence number is {} (a record was deleted, inserted or reordered)",
                    r.seq
                ),
            ));
        }
        if r.prev != tail.hash {
            return Err(record_err(
                line_no,
                expected,
                "prev does not match the previous record's hash (the chain is broken)",
            ));
        }
        if r.compute_hash() != r.hash {
            return Err(record_err(
                line_no,
                expected,
                "hash mismatch: the record was changed",
            ));
        }
        if r.line() != body {
            return Err(record_err(
                line_no,
                expected,
                "not in canonical form: the record was changed",
            ));
        }
        good_len += n as u64;
        tail = Tail {
            seq: r.seq,
            hash: r.hash,
        };
    }
    Ok(Scan {
        records: tail.seq,
        tail,
        good_len,
        torn_line: None,
    })
}

fn head_path(log: &Path) -> PathBuf {
    log.with_file_name(HEAD_FILE)
}

fn read_head(path: &Path) -> Result<Option<Tail>, VerifyError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(VerifyError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| VerifyError::Head {
            path: path.to_path_buf(),
            reason: format!("not a valid head: {e}"),
        })
}

/// Checks the complete records against the head; returns whether the head lags by one.
fn check_head(
    scan: &Scan,
    head: Option<&Tail>,
    hpath: &Path,
    log: &Path,
) -> Result<bool, VerifyError> {
    let head_seq = head.map_or(0, |h| h.seq);
    if head_seq > scan.tail.seq {
        let first_missing = scan.tail.seq + 1;
        return Err(record_err(
            scan.records + 1,
            first_missing,
            format!(
                "missing: the head says the log ends at record {head_seq} but it ends at record {} (truncated)",
                scan.tail.seq
            ),
        ));
    }
    if head_seq + 1 < scan.tail.seq {
        return Err(VerifyError::Head {
            path: hpath.to_path_buf(),
            reason: format!(
                "names record {head_seq} but the log ends at record {} (head replaced or records appended outside the log)",
                scan.tail.seq
            ),
        });
    }
    if let Some(h) = head
        && h.seq > 0
    {
        // The hash of record `h.seq`: the tail, or (lagging by one) the tail's `prev`.
        let hash_at = if h.seq == scan.tail.seq {
            Some(scan.tail.hash.clone())
        } else {
            last_prev(log)?
        };
        if hash_at.as_deref() != Some(h.hash.as_str()) {
            return Err(VerifyError::Head {
                path: hpath.to_path_buf(),
                reason: format!(
                    "the hash of record {} differs from the head's (the log was rewritten)",
                    h.seq
                ),
            });
        }
    }
    Ok(head_seq < scan.tail.seq)
}

/// The `prev` of the log's last complete record.
fn last_prev(log: &Path) -> Result<Option<String>, VerifyError> {
    let f = File::open(log).map_err(|source| VerifyError::Io {
        path: log.to_path_buf(),
        source,
    })?;
    let mut last = None;
    let mut reader = BufReader::new(f);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(|source| VerifyError::Io {
                path: log.to_path_buf(),
                source,
            })?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        if let Ok(r) = serde_json::from_slice::<Record>(&buf[..buf.len() - 1]) {
            last = Some(r.prev);
        }
    }
    Ok(last)
}

fn open_log(path: &Path) -> Result<Option<File>, VerifyError> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VerifyError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Verifies the log at `path` (and its head sidecar beside it) from the first record.
pub fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    let hpath = head_path(path);
    let log = open_log(path)?;
    // Appenders hold an exclusive lock while they write the record and the head.
    if let Some(f) = &log {
        f.lock_shared().map_err(|source| VerifyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let head = read_head(&hpath)?;
    let scan = match log {
        Some(f) => scan(f, path)?,
        None => Scan {
            records: 0,
            tail: Tail::genesis(),
            good_len: 0,
            torn_line: None,
        },
    };
    if let Some(line) = scan.torn_line {
        return Err(record_err(
            line,
            scan.tail.seq + 1,
            "incomplete final line (truncated mid-record)",
        ));
    }
    let head_lagged = check_head(&scan, head.as_ref(), &hpath, path)?;
    Ok(VerifyReport {
        records: scan.records,
        tail: scan.tail,
        head_lagged,
    })
}

/// Writes the log at `path` to `out` as JSON lines, one record each (whether or not the chain
/// verifies: run [`verify`] for that). Returns the records written.
pub fn export(path: &Path, out: &mut dyn Write) -> Result<u64, VerifyError> {
    let f = File::open(path).map_err(|source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::new(f);
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(|source| VerifyError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            break;
        }
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let r: Record = serde_json::from_slice(body)
            .map_err(|e| record_err(n + 1, n + 1, format!("not a valid record: {e}")))?;
        let mut line = r.line();
        line.push(b'\n');
        out.write_all(&line).map_err(|source| VerifyError::Io {
            path: PathBuf::from("<output>"),
            source,
        })?;
        n += 1;
    }
    Ok(n)
}

struct Inner {
    file: File,
    tail: Tail,
    /// Bytes of the log this handle has seen; more means another process appended.
    len: u64,
    poisoned: bool,
}

/// An open audit log. Appends are serialized, written and fsynced before they return. Each
/// append holds an exclusive file lock and first takes in records other processes (the CLI
/// beside a running node) appended since, so one chain has many writers.
pub struct AuditLog {
    log: PathBuf,
    head: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("log", &self.log).finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl AuditLog {
    /// The audit directory of a node whose data directory is `data`.
    pub fn dir_in(data: &Path) -> PathBuf {
        data.join(AUDIT_DIR)
    }

    /// The log file of a node whose data directory is `data`.
    pub fn log_in(data: &Path) -> PathBuf {
        Self::dir_in(data).join(LOG_FILE)
    }

    /// Opens (or creates) the log in `dir`, verifies it and continues its chain. A final line
    /// cut short by a crash mid-write (beyond the head) is dropped and the drop is recorded;
    /// any other damage refuses the open.
    pub fn open(dir: &Path) -> Result<AuditLog, AuditError> {
        // Owner only: records name devices, commands and certificates.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        let mut opts = OpenOptions::new();
        opts.create(true).read(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            builder.mode(0o700);
            opts.mode(0o600);
        }
        builder.create(dir).map_err(io_err(dir))?;
        let log = dir.join(LOG_FILE);
        let hpath = dir.join(HEAD_FILE);
        let mut file = opts.open(&log).map_err(io_err(&log))?;
        file.lock().map_err(io_err(&log))?;
        let opened = Self::open_locked(&mut file, log, hpath);
        let _ = file.unlock();
        let (this, torn) = opened?;
        if let Some(line) = torn {
            tracing::warn!(line, "audit log: dropped an incomplete final line");
            this.append(
                "rampart",
                "audit.torn_tail_dropped",
                "audit.log",
                serde_json::json!({ "line": line }),
            )?;
        }
        Ok(this)
    }

    fn open_locked(
        file: &mut File,
        log: PathBuf,
        hpath: PathBuf,
    ) -> Result<(AuditLog, Option<u64>), AuditError> {
        let head = read_head(&hpath)?;
        let s = scan(&mut *file, &log)?;
        check_head(&s, head.as_ref(), &hpath, &log)?;
        let torn = s.torn_line;
        if torn.is_some() {
            file.set_len(s.good_len).map_err(io_err(&log))?;
            file.sync_all().map_err(io_err(&log))?;
        }
        let file = file.try_clone().map_err(io_err(&log))?;
        let this = AuditLog {
            head: hpath,
            inner: Mutex::new(Inner {
                file,
                tail: s.tail,
                len: s.good_len,
                poisoned: false,
            }),
            log,
        };
        // Bring a lagging head up to date.
        let tail = this.tail_hash();
        this.write_head(&tail)?;
        Ok((this, torn))
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.log
    }

    /// The last record's sequence number and hash, for anchoring elsewhere.
    pub fn tail_hash(&self) -> Tail {
        self.inner.lock().tail.clone()
    }

    fn write_head(&self, tail: &Tail) -> Result<(), AuditError> {
        let tmp = self.head.with_extension("head.tmp");
        let mut bytes = serde_json::to_vec(tail).unwrap_or_default();
        bytes.push(b'\n');
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &self.head).map_err(io_err(&self.head))
    }

    /// Appends a record and fsyncs it (then the head) before returning it. `actor` is who did
    /// it; `detail` must not hold secrets.
    pub fn append(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<Record, AuditError> {
        for (name, v) in [("actor", actor), ("action", action), ("target", target)] {
            if v.len() > MAX_FIELD_BYTES {
                return Err(AuditError::TooLarge(format!(
                    "{name} is {} bytes, the limit is {MAX_FIELD_BYTES}",
                    v.len()
                )));
            }
        }
        let mut inner = self.inner.lock();
        if inner.poisoned {
            return Err(AuditError::Poisoned);
        }
        inner.file.lock().map_err(io_err(&self.log))?;
        let result = self.append_locked(&mut inner, actor, action, target, detail);
        let _ = inner.file.unlock();
        result
    }

    /// Takes in records appended by other processes since this handle last looked.
    fn catch_up(&self, inner: &mut Inner) -> Result<(), AuditError> {
        let len = inner.file.metadata().map_err(io_err(&self.log))?.len();
        if len == inner.len {
            return Ok(());
        }
        let mut f = File::open(&self.log).map_err(io_err(&self.log))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(inner.len))
            .map_err(io_err(&self.log))?;
        let s = scan_from(f, &self.log, inner.tail.clone())?;
        if let Some(line) = s.torn_line {
            return Err(AuditError::Broken(record_err(
                line,
                s.tail.seq + 1,
                "incomplete final line written by another process",
            )));
        }
        inner.tail = s.tail;
        inner.len += s.good_len;
        Ok(())
    }

    fn append_locked(
        &self,
        inner: &mut Inner,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<Record, AuditError> {
        self.catch_up(inner)?;
        let mut r = Record {
            seq: inner.tail.seq + 1,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
            prev: inner.tail.hash.clone(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        let mut line = r.line();
        if line.len() > MAX_RECORD_BYTES {
            return Err(AuditError::TooLarge(format!(
                "the record is {} bytes, the limit is {MAX_RECORD_BYTES}",
                line.len()
            )));
        }
        line.push(b'\n');
        let written = inner
            .file
            .write_all(&line)
            .and_then(|()| inner.file.sync_data());
        if let Err(e) = written {
            inner.poisoned = true;
            return Err(io_err(&self.log)(e));
        }
        inner.len += line.len() as u64;
        inner.tail = Tail {
            seq: r.seq,
            hash: r.hash.clone(),
        };
        let tail = inner.tail.clone();
        // Still under the lock so heads are written in order.
        if let Err(e) = self.write_head(&tail) {
            inner.poisoned = true;
            return Err(e);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn log_with(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let a = AuditLog::open(dir.path()).unwrap();
        for i in 0..n {
            a.append(
                "127.0.0.1",
                "device.register",
                &format!("dev-{i}"),
                serde_json::json!({ "i": i, "note": "x" }),
            )
            .unwrap();
        }
        let p = a.path().to_path_buf();
        (dir, p)
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(p: &Path, l: &[String]) {
        let mut s = l.join("\n");
        s.push('\n');
        std::fs::write(p, s).unwrap();
    }

    fn bad_seq(e: VerifyError) -> (u64, u64) {
        match e {
            VerifyError::Record { line, seq, .. } => (line, seq),
            other => panic!("expected a bad record, got {other}"),
        }
    }

    #[test]
    fn valid_chain_across_reopen() {
        let (dir, p) = log_with(3);
        let before = verify(&p).unwrap();
        assert_eq!(before.records, 3);
        let a = AuditLog::open(dir.path()).unwrap();
        assert_eq!(a.tail_hash(), before.tail);
        let r = a
            .append("api", "rule.delete", "r1", serde_json::json!({}))
            .unwrap();
        assert_eq!(r.seq, 4);
        assert_eq!(r.prev, before.tail.hash);
        let after = verify(&p).unwrap();
        assert_eq!(after.records, 4);
        assert_eq!(after.tail.hash, r.hash);
        assert!(!after.head_lagged);
    }

    #[test]
    fn two_handles_share_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let node = AuditLog::open(dir.path()).unwrap();
        node.append("api", "a", "1", serde_json::json!({})).unwrap();
        let cli = AuditLog::open(dir.path()).unwrap();
        cli.append("cli", "cert.issue", "d1", serde_json::json!({}))
            .unwrap();
        let r = node.append("api", "a", "2", serde_json::json!({})).unwrap();
        assert_eq!(r.seq, 3);
        cli.append("cli", "cert.revoke", "d1", serde_json::json!({}))
            .unwrap();
        let rep = verify(node.path()).unwrap();
        assert_eq!(rep.records, 4);
        assert_eq!(
            node.tail_hash().seq,
            3,
            "a handle learns of others' records on append"
        );
    }

    #[test]
    fn empty_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let r = verify(&dir.path().join(LOG_FILE)).unwrap();
        assert_eq!(r.records, 0);
        assert_eq!(r.tail.hash, GENESIS);
    }

    #[test]
    fn one_byte_changed_is_detected_at_that_record() {
        let (_d, p) = log_with(5);
        let mut l = lines(&p);
        // Change the target of record 3: dev-2 -> dev-3.
        l[2] = l[2].replace("dev-2", "dev-3");
        write_lines(&p, &l);
        let (line, seq) = bad_seq(verify(&p).unwrap_err());
        assert_eq!((line, seq), (3, 3));
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let (_d, p) = log_with(2);
        let orig = std::fs::read(&p).unwrap();
        for i in 0..orig.len() {
            let mut b = orig.clone();
            b[i] ^= 0x01;
            std::fs::write(&p, &b).unwrap();
            assert!(verify(&p).is_err(), "flip at byte {i} went unnoticed");
        }
        std::fs::write(&p, &orig).unwrap();
        assert!(verify(&p).is_ok());
    }

    #[test]
    fn deleted_line_is_detected() {
        let (_d, p) = log_with(5);
        let mut l = lines(&p);
        l.remove(1);
        write_lines(&p, &l);
        let (line, seq) = bad_seq(verify(&p).unwrap_err());
        assert_eq!((line, seq), (2, 2));
    }

    #[test]
    fn swapped_lines_are_detected() {
        let (_d, p) = log_with(5);
        let mut l = lines(&p);
        l.swap(2, 3);
        write_lines(&p, &l);
        let (line, seq) = bad_seq(verify(&p).unwrap_err());
        assert_eq!((line, seq), (3, 3));
    }

    #[test]
    fn truncated_last_record_is_detected_by_the_head() {
        let (_d, p) = log_with(4);
        let mut l = lines(&p);
        l.pop();
        write_lines(&p, &l);
        let err = verify(&p).unwrap_err();
        let msg = err.to_string();
        assert_eq!(bad_seq(err), (4, 4), "{msg}");
        assert!(msg.contains("truncated"), "{msg}");
        // And the node refuses to continue such a chain.
        assert!(AuditLog::open(p.parent().unwrap()).is_err());
    }

    #[test]
    fn truncated_mid_line_is_detected() {
        let (_d, p) = log_with(3);
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 10]).unwrap();
        let err = verify(&p).unwrap_err();
        assert_eq!(bad_seq(err), (3, 3));
    }

    #[test]
    fn rewritten_head_or_missing_head_is_detected() {
        let (_d, p) = log_with(3);
        let hp = head_path(&p);
        std::fs::remove_file(&hp).unwrap();
        assert!(matches!(verify(&p), Err(VerifyError::Head { .. })));
        std::fs::write(&hp, format!("{{\"seq\":3,\"hash\":\"{GENESIS}\"}}")).unwrap();
        assert!(matches!(verify(&p), Err(VerifyError::Head { .. })));
    }

    #[test]
    fn torn_write_beyond_the_head_is_dropped_on_open() {
        let (d, p) = log_with(2);
        let tail = verify(&p).unwrap().tail;
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":3,\"ti").unwrap();
        drop(f);
        assert!(verify(&p).is_err());
        let a = AuditLog::open(d.path()).unwrap();
        let t = a.tail_hash();
        assert_eq!(t.seq, 3);
        let l = lines(&p);
        let r: Record = serde_json::from_str(&l[2]).unwrap();
        assert_eq!(r.action, "audit.torn_tail_dropped");
        assert_eq!(r.prev, tail.hash);
        assert_eq!(verify(&p).unwrap().records, 3);
    }

    #[test]
    fn head_lagging_by_one_is_tolerated() {
        let (_d, p) = log_with(3);
        let l = lines(&p);
        let r2: Record = serde_json::from_str(&l[1]).unwrap();
        std::fs::write(
            head_path(&p),
            serde_json::to_vec(&Tail {
                seq: 2,
                hash: r2.hash,
            })
            .unwrap(),
        )
        .unwrap();
        let rep = verify(&p).unwrap();
        assert!(rep.head_lagged);
        assert_eq!(rep.records, 3);
    }

    #[test]
    fn oversized_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = AuditLog::open(dir.path()).unwrap();
        let big = "x".repeat(MAX_RECORD_BYTES);
        assert!(matches!(
            a.append("api", "x", "y", serde_json::json!({ "big": big })),
            Err(AuditError::TooLarge(_))
        ));
        assert!(matches!(
            a.append(
                &"a".repeat(MAX_FIELD_BYTES + 1),
                "x",
                "y",
                serde_json::json!(null)
            ),
            Err(AuditError::TooLarge(_))
        ));
        assert_eq!(a.tail_hash().seq, 0);
    }

    #[test]
    fn export_writes_json_lines() {
        let (_d, p) = log_with(3);
        let mut out = Vec::new();
        assert_eq!(export(&p, &mut out).unwrap(), 3);
        let text = String::from_utf8(out).unwrap();
        let recs: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2].target, "dev-2");
    }
}
