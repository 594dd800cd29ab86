//! MQTT edge settings: the `[mqtt]` section of the configuration file.
//!
//! Every bound the edge and the broker core hold is named here, with its default.

use std::path::PathBuf;
use std::time::Duration;

use rampart_mqtt_broker::Limits;
use serde::{Deserialize, Serialize};

/// The `[mqtt]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Let clients without credentials connect. They may use ordinary application topics,
    /// never `rampart/...` nor `spBv1.0/...`, and may not subscribe with a leading wildcard.
    pub allow_anonymous: bool,
    /// Open connections at most (all listeners); more are refused at accept.
    pub max_connections: usize,
    /// Open connections from one source address at most (all listeners); more are refused at
    /// accept and counted (`connections_per_peer`). A gateway multiplexing many devices behind
    /// one address needs this raised.
    pub max_connections_per_peer: usize,
    /// A connection that has not sent CONNECT within this time is closed.
    pub connect_timeout_ms: u64,
    /// Largest MQTT packet accepted; a larger one closes its connection.
    pub max_packet_bytes: u32,
    /// Bytes queued for one connection beyond which the broker stops taking input until the
    /// connection drains (backpressure); at four times this, the connection is closed.
    pub max_outbound_bytes: usize,
    /// How long the broker waits for one connection to drain before marking it slow; QoS 0
    /// deliveries to a slow connection beyond `max_outbound_bytes` are dropped and counted.
    pub slow_consumer_ms: u64,
    /// Bytes read per socket read.
    pub read_chunk_bytes: usize,
    /// Events (packet batches of one read each, connects, closes) queued to the broker task
    /// before readers wait: the backpressure point.
    pub event_queue: usize,
    /// Batches of durable publishes queued to the engine before the broker task waits.
    pub persist_queue: usize,
    /// How often persistent sessions are written to disk when they changed.
    pub snapshot_interval_ms: u64,
    /// Publish live entity updates on `rampart/v1/entities/{uid}` to subscribers.
    pub entity_topics: bool,
    /// Publish entity updates retained, so that a late subscriber gets the current state
    /// of every entity it is cleared for at once (removed entities are cleared). Off by
    /// default: every update is then encoded even with no subscriber, and each live entity
    /// holds one of `max_retained` (beyond it, counted in `retained_refused`).
    pub entity_retain: bool,
    /// Sessions, connected or not.
    pub max_sessions: usize,
    /// Subscriptions per session.
    pub max_subscriptions_per_session: usize,
    /// Outbound QoS 1/2 messages awaiting acknowledgement, per session.
    pub max_inflight: u16,
    /// Inbound QoS 1/2 publishes not yet acknowledged, per connection (MQTT 5 Receive
    /// Maximum).
    pub receive_maximum: u16,
    /// QoS 1/2 messages queued for an offline or busy session; beyond it new ones are
    /// dropped, counted in `mqtt_broker_events_total{reason="queue_full_drops"}` and logged.
    pub max_queued_per_session: usize,
    /// Retained messages.
    pub max_retained: usize,
    /// Inbound topic aliases per MQTT 5 connection.
    pub topic_alias_maximum: u16,
    /// Longest session expiry, seconds (also the expiry of 3.1.1 persistent sessions).
    pub max_session_expiry_s: u64,
    /// Longest keepalive granted, seconds.
    pub max_keepalive_s: u16,
    /// Most reports in one `report` payload.
    pub max_reports_per_publish: usize,
    /// TLS certificate (PEM) for `mqtts`; a self-signed one is made when absent.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for `mqtts`.
    pub tls_key: Option<PathBuf>,
    /// Sparkplug B: metric names read as the entity position.
    pub sparkplug_lat_metrics: Vec<String>,
    /// Sparkplug B: metric names read as the entity longitude.
    pub sparkplug_lon_metrics: Vec<String>,
    /// `[[mqtt.bridge]]`: external brokers to bridge with.
    pub bridge: Vec<crate::bridge::BridgeConfig>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        let l = Limits::default();
        MqttConfig {
            allow_anonymous: false,
            max_connections: 100_000,
            max_connections_per_peer: 1_024,
            connect_timeout_ms: 10_000,
            max_packet_bytes: l.max_packet_size,
            max_outbound_bytes: 1024 * 1024,
            slow_consumer_ms: 500,
            read_chunk_bytes: 16 * 1024,
            event_queue: 64,
            persist_queue: 256,
            snapshot_interval_ms: 1000,
            entity_topics: true,
            entity_retain: false,
            max_sessions: l.max_sessions,
            max_subscriptions_per_session: l.max_subscriptions_per_session,
            max_inflight: l.max_inflight_out,
            receive_maximum: 1024,
            max_queued_per_session: l.max_queued_per_session,
            max_retained: l.max_retained,
            topic_alias_maximum: l.topic_alias_maximum,
            max_session_expiry_s: l.max_session_expiry.as_secs(),
            max_keepalive_s: l.max_keepalive.unwrap_or(3600),
            max_reports_per_publish: 1000,
            tls_cert: None,
            tls_key: None,
            sparkplug_lat_metrics: vec!["Latitude".into(), "latitude".into(), "lat".into()],
            sparkplug_lon_metrics: vec!["Longitude".into(), "longitude".into(), "lon".into()],
            bridge: Vec::new(),
        }
    }
}

impl MqttConfig {
    /// The broker core's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_sessions: self.max_sessions,
            max_subscriptions_per_session: self.max_subscriptions_per_session,
            max_inflight_out: self.max_inflight.max(1),
            receive_maximum: self.receive_maximum.max(1),
            max_queued_per_session: self.max_queued_per_session,
            max_retained: self.max_retained,
            topic_alias_maximum: self.topic_alias_maximum,
            max_packet_size: self.max_packet_bytes,
            max_session_expiry: Duration::from_secs(self.max_session_expiry_s),
            max_keepalive: Some(self.max_keepalive_s),
        }
    }
}
