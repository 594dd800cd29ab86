//! Commands to devices and their lifecycle.
//!
//! `queued` (created, not yet handed to the broker) → `sent` (published on the device's
//! `cmd` topic while it had a subscription there) → `acked` or `failed` (the device's answer
//! on `cmd/ack`). A command not answered before its expiry becomes `expired`. Commands that
//! ended stay readable until the store's bound pushes the oldest out.

use rampart_model::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a command is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandStatus {
    /// Waiting for the device to be reachable.
    Queued,
    /// Published to the device's command topic.
    Sent,
    /// The device confirmed it.
    Acked,
    /// The device reported a failure.
    Failed,
    /// Not confirmed before its expiry.
    Expired,
}

impl CommandStatus {
    /// True once the command can no longer change.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CommandStatus::Acked | CommandStatus::Failed | CommandStatus::Expired
        )
    }
}

/// A command as submitted through the API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCommand {
    /// What to do, e.g. `reboot`, `set-rate`.
    pub command: String,
    /// Arguments, passed to the device as they are.
    #[serde(default)]
    pub args: serde_json::Value,
    /// Seconds before an unconfirmed command expires (default and bound in
    /// [`crate::DevicesConfig`]).
    #[serde(default)]
    pub ttl_s: Option<u64>,
}

/// One command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique id, also sent to the device, which echoes it in its acknowledgement.
    pub id: String,
    /// The target device.
    pub device: String,
    /// What to do.
    pub command: String,
    /// Arguments.
    pub args: serde_json::Value,
    /// Status.
    pub status: CommandStatus,
    /// Created at.
    pub created: Timestamp,
    /// Expires at, unless confirmed before.
    pub expires: Timestamp,
    /// Last published to the device.
    pub sent: Option<Timestamp>,
    /// Confirmed or failed at.
    pub answered: Option<Timestamp>,
    /// The device's message with its answer.
    pub result: Option<String>,
}

impl Command {
    /// The JSON payload published to the device.
    pub fn payload(&self) -> Vec<u8> {
        let v = serde_json::json!({
            "id": self.id,
            "command": self.command,
            "args": self.args,
            "expires": self.expires,
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// A device's answer on `rampart/v1/{device}/cmd/ack`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CommandAck {
    /// The command's id.
    pub id: String,
    /// `ok`/`acked`/`done` for success; anything else is a failure.
    #[serde(default = "ok")]
    pub status: String,
    /// Optional message.
    #[serde(default)]
    pub message: Option<String>,
}

fn ok() -> String {
    "ok".into()
}

impl CommandAck {
    /// True if the device reports success.
    pub fn success(&self) -> bool {
        matches!(
            self.status.to_ascii_lowercase().as_str(),
            "ok" | "acked" | "done" | "success"
        )
    }
}
