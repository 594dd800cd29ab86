//! The contract between transports and protocol codecs.

use std::net::SocketAddr;
use std::sync::Arc;

use rampart_model::{Report, Timestamp};

/// A line the decoder refused, with a short machine-readable reason for metrics
/// (e.g. `bad_checksum`) and a message that names what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedError {
    /// Metrics label.
    pub reason: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl FeedError {
    /// Builds an error.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        FeedError {
            reason,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.reason)
    }
}

/// Who a decoder instance serves: used for provenance and per-source mapping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Listener or upstream kind, e.g. `nmea-udp`.
    pub kind: String,
    /// The remote address, when there is one (not for file replay).
    pub addr: Option<SocketAddr>,
}

/// A stateful, sans-IO decoder of one source's lines into reports.
pub trait FeedDecoder: Send {
    /// Decodes one line (without its line end), appending any completed reports to `out`.
    /// `now` is the receive time; decoders use it for fragment timeouts and for reports whose
    /// protocol carries no full timestamp.
    fn line(&mut self, line: &[u8], now: Timestamp, out: &mut Vec<Report>)
    -> Result<(), FeedError>;

    /// Emits what the decoder holds back waiting for more input (e.g. an NMEA epoch waiting
    /// for its closing sentence). Called with `end = true` when the source ends (connection
    /// closed, end of file), and with `end = false` while it is idle, when a decoder should
    /// emit only what has waited long enough.
    fn flush(
        &mut self,
        _now: Timestamp,
        _end: bool,
        _out: &mut Vec<Report>,
    ) -> Result<(), FeedError> {
        Ok(())
    }

    /// The time a line carries, if its format has one (used to pace file replay).
    fn line_time(&mut self, _line: &[u8]) -> Option<Timestamp> {
        None
    }
}

/// Makes a fresh decoder for each source.
pub type DecoderFactory = Arc<dyn Fn(&Peer) -> Box<dyn FeedDecoder> + Send + Sync>;
