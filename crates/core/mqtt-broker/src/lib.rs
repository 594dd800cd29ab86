//! # rampart-mqtt-broker
//!
//! The core of Rampart's embedded MQTT 3.1.1 / 5.0 broker. Pure and sans-IO: no sockets,
//! threads or clocks (the caller passes `now`), so every behaviour is unit tested and
//! fuzzed by feeding packets. Packets are encoded and decoded by the `rmqtt-codec` crate
//! (re-exported as [`codec`]); `DECISION.md` records why this crate and not a broker crate.
//!
//! It owns:
//!
//! - [`Broker`]: the state machine. Feed it [`Broker::packet`], [`Broker::disconnected`],
//!   [`Broker::tick`] and [`Broker::persisted`]; carry out the [`Action`]s it returns.
//!   Sessions (clean or persistent, MQTT 5 session expiry), takeover, keepalive (1.5 ×),
//!   wills (with MQTT 5 delay), retained messages, QoS 0/1/2 both ways with packet-id
//!   bookkeeping and redelivery, shared subscriptions, topic aliases (inbound), message
//!   expiry, Receive Maximum and Maximum Packet Size, user properties passed through.
//! - Durable acknowledgements: publishes on [`Config::durable`] topics are held until the
//!   embedder confirms the group commit ([`Action::Persist`] → [`Broker::persisted`]).
//! - [`Limits`]: every bound, with what happens when it is reached, counted in [`Metrics`].
//! - [`topic`]: topic name and filter validation and the reference matcher.
//! - [`Authorizer`]: the embedder's authentication and topic policy hook, and each session's
//!   [`Clearance`] for messages injected with a security [`Marking`] ([`marking`]).

mod broker;
mod config;
pub mod marking;
mod packet;
mod subs;
pub mod topic;

pub use broker::{
    Action, Broker, CloseReason, Metrics, PendingSnapshot, PersistToken, RestoreStats,
    SNAPSHOT_VERSION, SessionSnapshot, Snapshot, SubscriptionSnapshot,
};
pub use config::{AllowAll, Authorizer, Config, Credentials, Limits, Refusal};
pub use marking::{Clearance, Marking};
pub use packet::{ConnId, Packet, Version};
pub use subs::{Match, SessionId, SubOptions};

/// The MQTT codec the broker speaks, re-exported so that embedders use the same version.
pub use rmqtt_codec as codec;
