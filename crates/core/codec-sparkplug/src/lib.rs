//! # rampart-codec-sparkplug
//!
//! Eclipse Sparkplug B (v3.0) for a host application, as pure functions and one sans-IO state
//! machine. It owns:
//!
//! - [`topic`]: topic names `spBv1.0/{group}/{type}/{edge_node}[/{device}]` and
//!   `spBv1.0/STATE/{host}` → [`Topic`];
//! - [`proto`] and [`payload`]: the `Payload` protobuf (hand-written `prost` structs),
//!   bounded decoding and encoding, data types and typed [`Value`]s;
//! - [`state`]: the bounded [`AliasBook`] (aliases registered at birth, forgotten at death)
//!   and each edge node's `bdSeq`/`seq` session;
//! - [`Decoder`]: topic + payload → [`Message`] with resolved metric names.
//!
//! Nothing here does I/O, so every entry point can be fuzzed directly.

mod decoder;
mod error;

pub mod payload;
pub mod proto;
pub mod state;
pub mod topic;

pub use decoder::{BD_SEQ, Decoder, HostState, Message, MetricUpdate};
pub use error::{Error, MetricError, MetricErrorKind};
pub use payload::{DataType, Limits, PayloadError, Value, ValueError, encode_metric};
pub use state::{AliasBook, BookLimits, FullPolicy, Scope, SeqGap, StateError};
pub use topic::{EdgeTopic, MessageType, Topic, TopicError};
