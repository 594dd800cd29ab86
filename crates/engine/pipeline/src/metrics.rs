//! Prometheus metrics shared by the engine and every edge.
//!
//! Hot paths count once per batch (`inc_by`), never once per report, so metrics cost nothing
//! measurable at a million reports per second.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels: the source a report arrived on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// Source name, e.g. `http`.
    pub source: String,
}

/// Labels: the source and why a report or body was rejected.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    /// Source name.
    pub source: String,
    /// Short reason class, e.g. `invalid_value` or `malformed_json`.
    pub reason: String,
}

/// Labels: a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Short reason class.
    pub reason: String,
}

/// Labels: a connection kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Connection kind, e.g. `http` or `websocket`.
    pub kind: String,
}

/// Every metric Rampart exports.
pub struct Metrics {
    registry: parking_lot::Mutex<Registry>,
    /// Reports stored and folded, by source.
    pub accepted: Family<SourceLabel, Counter>,
    /// Reports (or whole bodies) rejected, by source and reason.
    pub rejected: Family<RejectLabel, Counter>,
    /// Reports acknowledged without storing because their id was seen before.
    pub duplicates: Family<SourceLabel, Counter>,
    /// Reports older than the entity's current state: stored, not folded.
    pub late: Family<SourceLabel, Counter>,
    /// Live entities in the picture.
    pub live_entities: Gauge,
    /// Entities past their stale time, still in the picture.
    pub stale_entities: Gauge,
    /// Seconds from a batch's arrival at the engine until it is durable.
    pub ingest_commit_seconds: Histogram,
    /// Bytes of history on disk.
    pub store_bytes: Gauge,
    /// History segments on disk.
    pub store_segments: Gauge,
    /// Open connections by kind.
    pub connections: Family<KindLabel, Gauge>,
    /// Stream subscribers that fell behind and were resynchronised from a snapshot.
    pub stream_resyncs: Counter,
    /// Stream subscribers disconnected for being too slow.
    pub stream_slow_disconnects: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rampart");
        let accepted = Family::<SourceLabel, Counter>::default();
        let rejected = Family::<RejectLabel, Counter>::default();
        let duplicates = Family::<SourceLabel, Counter>::default();
        let late = Family::<SourceLabel, Counter>::default();
        let live_entities = Gauge::default();
        let stale_entities = Gauge::default();
        // 100 µs .. ~3.3 s in 16 doubling buckets.
        let ingest_commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let store_bytes = Gauge::default();
        let store_segments = Gauge::default();
        let connections = Family::<KindLabel, Gauge>::default();
        let stream_resyncs = Counter::default();
        let stream_slow_disconnects = Counter::default();
        registry.register(
            "reports_accepted",
            "Reports stored and folded into the picture",
            accepted.clone(),
        );
        registry.register(
            "reports_rejected",
            "Reports or bodies rejected, by reason",
            rejected.clone(),
        );
        registry.register(
            "reports_duplicate",
            "Reports acknowledged without storing because their id was seen before",
            duplicates.clone(),
        );
        registry.register(
            "reports_late",
            "Reports older than the entity's current state: stored, not folded",
            late.clone(),
        );
        registry.register(
            "live_entities",
            "Entities in the live picture",
            live_entities.clone(),
        );
        registry.register(
            "stale_entities",
            "Entities past their stale time still in the picture",
            stale_entities.clone(),
        );
        registry.register(
            "ingest_commit_seconds",
            "Time from a batch reaching the engine until it is durable",
            ingest_commit_seconds.clone(),
        );
        registry.register(
            "store_bytes",
            "Bytes of history on disk",
            store_bytes.clone(),
        );
        registry.register(
            "store_segments",
            "History segment files",
            store_segments.clone(),
        );
        registry.register(
            "connections",
            "Open connections by kind",
            connections.clone(),
        );
        registry.register(
            "stream_resyncs",
            "Stream subscribers that fell behind and were resynchronised from a snapshot",
            stream_resyncs.clone(),
        );
        registry.register(
            "stream_slow_disconnects",
            "Stream subscribers disconnected for being too slow",
            stream_slow_disconnects.clone(),
        );
        Metrics {
            registry: parking_lot::Mutex::new(registry),
            accepted,
            rejected,
            duplicates,
            late,
            live_entities,
            stale_entities,
            ingest_commit_seconds,
            store_bytes,
            store_segments,
            connections,
            stream_resyncs,
            stream_slow_disconnects,
        }
    }

    /// Counts `n` rejections from `source` for `reason`.
    pub fn reject(&self, source: &str, reason: &str, n: u64) {
        self.rejected
            .get_or_create(&RejectLabel {
                source: source.to_string(),
                reason: reason.to_string(),
            })
            .inc_by(n);
    }

    /// The gauge of open connections of `kind`.
    pub fn connection_gauge(&self, kind: &str) -> Gauge {
        self.connections
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .clone()
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock());
        out
    }

    /// Registers and returns a counter owned by an edge (e.g. `cot_deliveries`).
    pub fn register_counter(&self, name: &str, help: &str) -> Counter {
        let c = Counter::default();
        self.registry.lock().register(name, help, c.clone());
        c
    }

    /// Registers and returns a counter family labelled by `reason`, owned by an edge.
    pub fn register_reason_counter(&self, name: &str, help: &str) -> Family<ReasonLabel, Counter> {
        let f = Family::<ReasonLabel, Counter>::default();
        self.registry.lock().register(name, help, f.clone());
        f
    }
}
