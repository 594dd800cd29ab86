//! Errors of the codec: a message refused as a whole ([`Error`]) and one metric of an
//! otherwise good message left out ([`MetricError`]). Each has a `reason()` for a metrics label.

use crate::payload::{PayloadError, ValueError};
use crate::state::StateError;
use crate::topic::TopicError;

/// Why a message was refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The topic name is not a Sparkplug B topic.
    #[error("topic: {0}")]
    Topic(#[from] TopicError),
    /// The payload is over a limit or not a `Payload` protobuf.
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
    /// `seq` is outside 0..=255.
    #[error("payload: seq {seq} is outside 0..=255")]
    SeqOutOfRange {
        /// The value sent.
        seq: u64,
    },
    /// The alias book refused a birth.
    #[error("{0}")]
    State(#[from] StateError),
    /// A STATE payload is not `{"online": bool, "timestamp": ms}`.
    #[error("STATE payload: {reason}")]
    HostState {
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// A short machine-readable reason, for a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Topic(e) => e.reason(),
            Error::Payload(e) => e.reason(),
            Error::SeqOutOfRange { .. } => "seq_out_of_range",
            Error::State(StateError::TooManyNodes { .. }) => "too_many_nodes",
            Error::State(_) => "alias_book",
            Error::HostState { .. } => "bad_state_payload",
        }
    }
}

/// What is wrong with one metric.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricErrorKind {
    /// Neither a name nor an alias (or a birth metric without a name).
    #[error("metric has no name{}", if *.birth { " (required at birth)" } else { " and no alias" })]
    NoName {
        /// In a birth, where the name is required.
        birth: bool,
    },
    /// The alias was not registered by the scope's birth (or the birth was not seen).
    #[error("unknown alias {0}")]
    UnknownAlias(u64),
    /// The name is longer than [`crate::Limits::max_name_bytes`].
    #[error("metric name is {len} bytes, the limit max_name_bytes is {max}")]
    NameTooLong {
        /// Name length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value does not fit the data type.
    #[error("{0}")]
    Value(#[from] ValueError),
    /// The birth metric was decoded but could not be registered in the alias book; it is
    /// still reported in [`crate::Message::metrics`].
    #[error("not registered: {0}")]
    Register(StateError),
}

/// One metric of a message that could not be decoded or registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("metric #{index}{}{}: {kind}",
    .name.as_ref().map(|n| format!(" {n:?}")).unwrap_or_default(),
    .alias.map(|a| format!(" (alias {a})")).unwrap_or_default())]
pub struct MetricError {
    /// Position of the metric in the payload.
    pub index: usize,
    /// Its name, when known.
    pub name: Option<String>,
    /// Its alias, when sent.
    pub alias: Option<u64>,
    /// What is wrong.
    pub kind: MetricErrorKind,
}

impl MetricError {
    /// A short machine-readable reason, for a metrics label.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            MetricErrorKind::NoName { .. } => "metric_no_name",
            MetricErrorKind::UnknownAlias(_) => "unknown_alias",
            MetricErrorKind::NameTooLong { .. } => "metric_name_too_long",
            MetricErrorKind::Value(ValueError::Missing { .. }) => "metric_value_missing",
            MetricErrorKind::Value(ValueError::WrongField { .. }) => "metric_wrong_field",
            MetricErrorKind::Value(ValueError::OutOfRange { .. }) => "metric_out_of_range",
            MetricErrorKind::Register(_) => "alias_not_registered",
        }
    }
}
