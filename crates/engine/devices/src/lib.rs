//! # rampart-devices
//!
//! The device registry, shared by the HTTP API (which manages it) and the MQTT edge (which
//! asks it who may connect, publish, subscribe and report what).
//!
//! - [`policy`]: what one device may do: topic filters to publish and subscribe, entity uids
//!   and types it may report. The check that stops a device from reporting another unit's
//!   uid (position spoofing) lives here.
//! - [`registry`]: registered devices, their secret tokens (stored only as SHA-256 hashes;
//!   tokens are 256 random bits, so a fast hash is as strong as a slow one), certificate
//!   subjects, and the persistent store under the data directory.
//! - [`commands`]: commands to devices and their status (queued, sent, acked, failed,
//!   expired), kept until delivered or expired, across restarts.

pub mod commands;
pub mod policy;
pub mod registry;
mod store;

pub use commands::{Command, CommandStatus, NewCommand};
pub use policy::Policy;
pub use registry::{AuthError, Device, DeviceError, Devices, DevicesConfig, NewDevice};
