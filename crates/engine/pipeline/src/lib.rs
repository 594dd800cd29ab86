//! # rampart-engine
//!
//! The one normalized report pipeline every source feeds:
//!
//! ```text
//! source edge ──► decode + validate ──► ReportSink::submit
//!                                          │
//!                     idempotency check ◄──┘   (dedup)
//!                     history append (group commit, durable before ack)   (rampart-history)
//!                     fold into the live picture                          (rampart-picture)
//!                     rules (a BatchObserver, e.g. rampart-rules)
//!                     fan-out of deltas to subscribers                    (bus)
//! ```
//!
//! Two seams keep cluster mode pluggable: [`ReportSink`], which edges submit reports to (a
//! JetStream publisher can stand in for the local engine), and
//! [`rampart_history::HistoryStore`], which the engine appends to (PostgreSQL can stand in for
//! the embedded segment log).

mod bus;
mod dedup;
mod engine;
mod metrics;
mod peers;

pub use bus::{Delta, EntityUpdate, Interest, Subscription};
pub use dedup::{DedupConfig, DedupVerdict};
pub use engine::{
    BatchObserver, Engine, EngineConfig, EngineError, IngestReceipt, Rejection, ReportScreen,
    ReportSink, ScreenVerdict,
};
pub use metrics::{Metrics, ReasonLabel};
pub use peers::{DEFAULT_MAX_CONNECTIONS_PER_PEER, PeerLimiter, PeerRefusal, PeerSlot};
/// The gauge type used for connection counts.
pub use prometheus_client::metrics::gauge::Gauge;
