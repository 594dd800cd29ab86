//! The store's error type. Every variant that concerns a file names it (and the byte offset
//! when one is known) so an operator can find the damage without a debugger.

use std::path::PathBuf;

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// An operating-system I/O call failed on `path`.
    #[error("history I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file's contents are not what this store wrote.
    #[error("corrupt history file {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A write or fsync failed earlier; the store acknowledges nothing more until reopened.
    #[error("the history store failed after an I/O error and acknowledges nothing more; reopen it")]
    Failed,
    /// The store was closed.
    #[error("the history store is closed")]
    Closed,
    /// The configuration is unusable.
    #[error("invalid history configuration: {0}")]
    Config(String),
    /// A ticket that no append call has returned yet was waited for.
    #[error("ticket {ticket} has not been issued (the newest is {newest})")]
    UnknownTicket {
        /// The ticket waited for.
        ticket: u64,
        /// The newest ticket issued.
        newest: u64,
    },
    /// One report does not fit a segment's 32-bit offsets (only reachable with unvalidated input).
    #[error("a report is too large to store ({0} bytes)")]
    TooLarge(usize),
}

impl HistoryError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HistoryError::Io {
            path: path.into(),
            source,
        }
    }

    /// A corruption report for `path` at `offset`.
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        HistoryError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}
