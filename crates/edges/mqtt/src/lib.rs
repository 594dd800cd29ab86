//! # rampart-edge-mqtt
//!
//! The MQTT edge: it runs the sans-IO broker core (`rampart-mqtt-broker`) on sockets and
//! links it to the engine. Read it in this order:
//!
//! - [`conn`]: one connection — framing, version detection, the read/write loop;
//! - `outbox`: the bounded queue between the broker task and a connection;
//! - [`server`]: the broker task, listeners, session snapshots, entity topics, commands;
//! - `authz`: device identity and topic policy (the broker's `Authorizer`);
//! - `labels`: security labels as broker markings and clearances (entity and alert topics,
//!   bridges);
//! - [`ingest`]: durable device topics (reports, telemetry, command acks, Sparkplug B) →
//!   reports → the engine, answering the broker's held acknowledgements;
//! - [`config`]: the `[mqtt]` settings and their limits;
//! - [`client`] and [`bridge`]: a small MQTT client, and the bridge to an external broker.

mod authz;
pub mod bridge;
pub mod client;
pub mod config;
pub mod conn;
pub mod ingest;
mod labels;
mod outbox;
pub mod server;

pub use config::MqttConfig;
pub use ingest::{DURABLE_FILTERS, PositionLookup};
pub use server::{CertIdentity, MqttDeps, MqttEdge, PeerCert, Stats, entity_topic};
