//! The registry: devices, their credentials and policies, and their commands, persisted
//! under `<data>/devices/`.
//!
//! All state sits behind one lock. The hot path (the MQTT authorizer asking about a
//! publish) takes it for reading and clones an `Arc` of the device's policy; changes
//! (registration, commands) are rare and write the JSON files before returning, so an
//! acknowledged change survives a crash.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use rampart_model::Timestamp;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::commands::{Command, CommandAck, CommandStatus, NewCommand};
use crate::policy::Policy;
use crate::store;

/// Bounds and defaults of the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    /// Registered devices at most.
    pub max_devices: usize,
    /// Commands kept (pending and ended); the oldest ended ones go first.
    pub max_commands: usize,
    /// Commands not yet ended, per device.
    pub max_pending_per_device: usize,
    /// Largest command `args`, in bytes of JSON.
    pub max_command_args_bytes: usize,
    /// Default command time to live, seconds.
    pub default_command_ttl_s: u64,
    /// Longest command time to live, seconds.
    pub max_command_ttl_s: u64,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            max_devices: 100_000,
            max_commands: 10_000,
            max_pending_per_device: 100,
            max_command_args_bytes: 16 * 1024,
            default_command_ttl_s: 3600,
            max_command_ttl_s: 7 * 24 * 3600,
        }
    }
}

/// A registered device, as stored and as the API shows it (never with its token).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Device id: the MQTT user name it connects with, and `{device}` in topics.
    pub id: String,
    /// SHA-256 of the secret token, hex. Not shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Subject of the client certificate bound to this device, if any.
    #[serde(default)]
    pub cert_subject: Option<String>,
    /// What the device may do.
    pub policy: Arc<Policy>,
    /// Registered at.
    pub created: Timestamp,
    /// What the device may receive (entity and alert topics) when labels are enforced.
    /// Devices registered before clearances existed get the lowest level, no groups.
    #[serde(default)]
    pub clearance: rampart_labels::ClearanceSpec,
}

impl Device {
    /// The device as the API shows it: without the token hash.
    pub fn public(&self) -> Device {
        Device {
            token_sha256: None,
            ..self.clone()
        }
    }
}

/// A registration request.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// Device id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// Bind the device to a client-certificate subject instead of (or besides) a token.
    #[serde(default)]
    pub cert_subject: Option<String>,
    /// Policy; the default confines the device to its own topics and uids.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// Issue a token (default true).
    #[serde(default = "yes")]
    pub token: bool,
    /// Clearance (level and releasability groups); default the lowest level, no groups.
    /// The caller checks it against the node's levels (the registry does not know them).
    #[serde(default)]
    pub clearance: rampart_labels::ClearanceSpec,
}

fn yes() -> bool {
    true
}

/// Why a registry change was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Bad request: the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No such device or command.
    #[error("{0} not found")]
    NotFound(String),
    /// The device id is taken.
    #[error("device {0:?} already exists")]
    Exists(String),
    /// A bound of [`DevicesConfig`] was reached.
    #[error("{0}")]
    Full(String),
    /// Writing the registry to disk failed; the change was not made.
    #[error("device registry storage failed: {0}")]
    Storage(#[from] std::io::Error),
}

/// Why a device could not authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown device id.
    #[error("unknown device")]
    UnknownDevice,
    /// No or wrong token.
    #[error("bad token")]
    BadToken,
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    devices: Vec<Device>,
}

#[derive(Default, Serialize, Deserialize)]
struct StoredCommands {
    next: u64,
    commands: Vec<Command>,
}

struct State {
    devices: HashMap<String, Device>,
    /// Certificate subject → device id.
    by_subject: HashMap<String, String>,
    commands: BTreeMap<u64, Command>,
    next_command: u64,
}

/// The device registry. See the module documentation.
pub struct Devices {
    cfg: DevicesConfig,
    dir: Option<PathBuf>,
    state: RwLock<State>,
    /// Device ids with new commands to deliver.
    wake: broadcast::Sender<String>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("devices", &self.state.read().devices.len())
            .finish()
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn command_key(id: &str) -> Option<u64> {
    id.strip_prefix("cmd-")?.parse().ok()
}

impl Devices {
    /// Opens the registry stored under `dir` (created if missing), or an in-memory one with
    /// `None` (tests).
    pub fn open(dir: Option<PathBuf>, cfg: DevicesConfig) -> Result<Arc<Devices>, DeviceError> {
        let mut state = State {
            devices: HashMap::new(),
            by_subject: HashMap::new(),
            commands: BTreeMap::new(),
            next_command: 1,
        };
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
            if let Some(s) = store::read_json::<Stored>(&d.join("devices.json"))? {
                for dev in s.devices {
                    if let Some(subj) = &dev.cert_subject {
                        state.by_subject.insert(subj.clone(), dev.id.clone());
                    }
                    state.devices.insert(dev.id.clone(), dev);
                }
            }
            if let Some(c) = store::read_json::<StoredCommands>(&d.join("commands.json"))? {
                state.next_command = c.next.max(1);
                for cmd in c.commands {
                    if let Some(k) = command_key(&cmd.id) {
                        state.commands.insert(k, cmd);
                    }
                }
            }
        }
        let (wake, _) = broadcast::channel(1024);
        Ok(Arc::new(Devices {
            cfg,
            dir,
            state: RwLock::new(state),
            wake,
        }))
    }

    /// The registry's bounds.
    pub fn config(&self) -> &DevicesConfig {
        &self.cfg
    }

    fn save_devices(&self, st: &State) -> Result<(), DeviceError> {
        if let Some(d) = &self.dir {
            let mut devices: Vec<Device> = st.devices.values().cloned().collect();
            devices.sort_by(|a, b| a.id.cmp(&b.id));
            store::write_json(&d.join("devices.json"), &Stored { devices })?;
        }
        Ok(())
    }

    fn save_commands(&self, st: &State) -> Result<(), DeviceError> {
        if let Some(d) = &self.dir {
            let s = StoredCommands {
                next: st.next_command,
                commands: st.commands.values().cloned().collect(),
            };
            store::write_json(&d.join("commands.json"), &s)?;
        }
        Ok(())
    }

    /// Registers a device. Returns it and its secret token, shown this once.
    pub fn register(&self, req: NewDevice) -> Result<(Device, Option<String>), DeviceError> {
        if !valid_id(&req.id) {
            return Err(DeviceError::Invalid(format!(
                "id {:?}: must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                req.id
            )));
        }
        let policy = req.policy.unwrap_or_default();
        policy.validate().map_err(DeviceError::Invalid)?;
        if !req.token && req.cert_subject.is_none() {
            return Err(DeviceError::Invalid(
                "a device needs a token or a cert_subject to authenticate".into(),
            ));
        }
        let token = req.token.then(|| {
            let mut raw = [0u8; 32];
            rand::rng().fill_bytes(&mut raw);
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
        let dev = Device {
            id: req.id.clone(),
            token_sha256: token.as_deref().map(|t| sha256_hex(t.as_bytes())),
            cert_subject: req.cert_subject.clone(),
            policy: Arc::new(policy),
            created: Timestamp::now(),
            clearance: req.clearance.clone(),
        };
        let mut st = self.state.write();
        if st.devices.contains_key(&req.id) {
            return Err(DeviceError::Exists(req.id));
        }
        if st.devices.len() >= self.cfg.max_devices {
            return Err(DeviceError::Full(format!(
                "the registry holds max_devices = {} devices",
                self.cfg.max_devices
            )));
        }
        if let Some(s) = &req.cert_subject
            && st.by_subject.contains_key(s)
        {
            return Err(DeviceError::Invalid(format!(
                "cert_subject {s:?} is bound to another device"
            )));
        }
        st.devices.insert(dev.id.clone(), dev.clone());
        if let Some(s) = &dev.cert_subject {
            st.by_subject.insert(s.clone(), dev.id.clone());
        }
        if let Err(e) = self.save_devices(&st) {
            st.devices.remove(&dev.id);
            if let Some(s) = &dev.cert_subject {
                st.by_subject.remove(s);
            }
            return Err(e);
        }
        Ok((dev.public(), token))
    }

    /// Replaces a device's policy.
    pub fn set_policy(&self, id: &str, policy: Policy) -> Result<Device, DeviceError> {
        policy.validate().map_err(DeviceError::Invalid)?;
        let mut st = self.state.write();
        let Some(dev) = st.devices.get_mut(id) else {
            return Err(DeviceError::NotFound(format!("device {id:?}")));
        };
        let old = std::mem::replace(&mut dev.policy, Arc::new(policy));
        let out = dev.public();
        if let Err(e) = self.save_devices(&st) {
            if let Some(dev) = st.devices.get_mut(id) {
                dev.policy = old;
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Removes a device (its pending commands are expired).
    pub fn remove(&self, id: &str) -> Result<(), DeviceError> {
        let mut st = self.state.write();
        let Some(dev) = st.devices.remove(id) else {
            return Err(DeviceError::NotFound(format!("device {id:?}")));
        };
        if let Some(s) = &dev.cert_subject {
            st.by_subject.remove(s);
        }
        let now = Timestamp::now();
        for c in st.commands.values_mut() {
            if c.device == id && !c.status.is_final() {
                c.status = CommandStatus::Expired;
                c.answered = Some(now);
            }
        }
        self.save_devices(&st)?;
        self.save_commands(&st)
    }

    /// One device (without its token hash).
    pub fn get(&self, id: &str) -> Option<Device> {
        self.state.read().devices.get(id).map(Device::public)
    }

    /// Every device, by id.
    pub fn list(&self) -> Vec<Device> {
        let st = self.state.read();
        let mut v: Vec<Device> = st.devices.values().map(Device::public).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Checks a device's token.
    pub fn authenticate(&self, id: &str, token: &[u8]) -> Result<Arc<Policy>, AuthError> {
        let st = self.state.read();
        let dev = st.devices.get(id).ok_or(AuthError::UnknownDevice)?;
        match &dev.token_sha256 {
            Some(h) if *h == sha256_hex(token) => Ok(dev.policy.clone()),
            _ => Err(AuthError::BadToken),
        }
    }

    /// The device bound to a certificate subject, with its policy.
    pub fn by_cert_subject(&self, subject: &str) -> Option<(String, Arc<Policy>)> {
        let st = self.state.read();
        let id = st.by_subject.get(subject)?;
        let dev = st.devices.get(id)?;
        Some((dev.id.clone(), dev.policy.clone()))
    }

    /// A device's clearance, as registered (resolve it with the node's label policy).
    pub fn clearance(&self, id: &str) -> Option<rampart_labels::ClearanceSpec> {
        self.state
            .read()
            .devices
            .get(id)
            .map(|d| d.clearance.clone())
    }

    /// A device's current policy.
    pub fn policy(&self, id: &str) -> Option<Arc<Policy>> {
        self.state.read().devices.get(id).map(|d| d.policy.clone())
    }

    /// Device ids that get new commands, as they are created.
    pub fn subscribe_wake(&self) -> broadcast::Receiver<String> {
        self.wake.subscribe()
    }

    /// Queues a command for a device.
    pub fn create_command(&self, device: &str, req: NewCommand) -> Result<Command, DeviceError> {
        if req.command.is_empty() || req.command.len() > 128 {
            return Err(DeviceError::Invalid(
                "command must be 1 to 128 characters".into(),
            ));
        }
        let args_len = serde_json::to_vec(&req.args).map(|v| v.len()).unwrap_or(0);
        if args_len > self.cfg.max_command_args_bytes {
            return Err(DeviceError::Invalid(format!(
                "args is {args_len} bytes of JSON, the limit is max_command_args_bytes = {}",
                self.cfg.max_command_args_bytes
            )));
        }
        let ttl = req.ttl_s.unwrap_or(self.cfg.default_command_ttl_s);
        if ttl == 0 || ttl > self.cfg.max_command_ttl_s {
            return Err(DeviceError::Invalid(format!(
                "ttl_s must be 1 to {} seconds",
                self.cfg.max_command_ttl_s
            )));
        }
        let mut st = self.state.write();
        if !st.devices.contains_key(device) {
            return Err(DeviceError::NotFound(format!("device {device:?}")));
        }
        let pending = st
            .commands
            .values()
            .filter(|c| c.device == device && !c.status.is_final())
            .count();
        if pending >= self.cfg.max_pending_per_device {
            return Err(DeviceError::Full(format!(
                "device {device:?} has max_pending_per_device = {} commands pending",
                self.cfg.max_pending_per_device
            )));
        }
        // Make room: drop the oldest ended commands; refuse if all are pending.
        while st.commands.len() >= self.cfg.max_commands {
            let oldest_final = st
                .commands
                .iter()
                .find(|(_, c)| c.status.is_final())
                .map(|(&k, _)| k);
            match oldest_final {
                Some(k) => {
                    st.commands.remove(&k);
                }
                None => {
                    return Err(DeviceError::Full(format!(
                        "max_commands = {} commands are pending",
                        self.cfg.max_commands
                    )));
                }
            }
        }
        let now = Timestamp::now();
        let key = st.next_command;
        st.next_command += 1;
        let cmd = Command {
            id: format!("cmd-{key}"),
            device: device.to_string(),
            command: req.command,
            args: req.args,
            status: CommandStatus::Queued,
            created: now,
            expires: now.plus_millis(i64::try_from(ttl).unwrap_or(i64::MAX / 2) * 1000),
            sent: None,
            answered: None,
            result: None,
        };
        st.commands.insert(key, cmd.clone());
        if let Err(e) = self.save_commands(&st) {
            st.commands.remove(&key);
            return Err(e);
        }
        drop(st);
        let _ = self.wake.send(device.to_string());
        Ok(cmd)
    }

    /// One command.
    pub fn command(&self, id: &str) -> Option<Command> {
        let k = command_key(id)?;
        self.state.read().commands.get(&k).cloned()
    }

    /// A device's commands, oldest first.
    pub fn commands_of(&self, device: &str) -> Vec<Command> {
        self.state
            .read()
            .commands
            .values()
            .filter(|c| c.device == device)
            .cloned()
            .collect()
    }

    /// Commands still to send to `device` (queued, or sent but unconfirmed when `resend`).
    pub fn to_deliver(&self, device: &str, resend: bool) -> Vec<Command> {
        let now = Timestamp::now();
        self.state
            .read()
            .commands
            .values()
            .filter(|c| c.device == device && c.expires > now)
            .filter(|c| {
                c.status == CommandStatus::Queued || (resend && c.status == CommandStatus::Sent)
            })
            .cloned()
            .collect()
    }

    /// Records that commands were published to their device.
    pub fn mark_sent(&self, ids: &[String]) -> Result<(), DeviceError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now();
        let mut st = self.state.write();
        for id in ids {
            if let Some(k) = command_key(id)
                && let Some(c) = st.commands.get_mut(&k)
                && c.status == CommandStatus::Queued
            {
                c.status = CommandStatus::Sent;
                c.sent = Some(now);
            }
        }
        self.save_commands(&st)
    }

    /// Applies a device's answer. Returns the command, or an error naming why the answer
    /// does not apply (unknown id, another device's command, already ended).
    pub fn answer(&self, device: &str, payload: &[u8]) -> Result<Command, DeviceError> {
        let ack: CommandAck = serde_json::from_slice(payload).map_err(|e| {
            DeviceError::Invalid(format!(
                "command ack must be JSON {{\"id\": ..., \"status\": \"ok\"|\"error\", \"message\": ...}}: {e}"
            ))
        })?;
        let mut st = self.state.write();
        let Some(k) = command_key(&ack.id) else {
            return Err(DeviceError::NotFound(format!("command {:?}", ack.id)));
        };
        let Some(c) = st.commands.get_mut(&k) else {
            return Err(DeviceError::NotFound(format!("command {:?}", ack.id)));
        };
        if c.device != device {
            return Err(DeviceError::Invalid(format!(
                "command {:?} is not for device {device:?}",
                ack.id
            )));
        }
        if c.status.is_final() {
            return Err(DeviceError::Invalid(format!(
                "command {:?} already ended ({:?})",
                ack.id, c.status
            )));
        }
        c.status = if ack.success() {
            CommandStatus::Acked
        } else {
            CommandStatus::Failed
        };
        c.answered = Some(Timestamp::now());
        c.result = ack.message;
        let out = c.clone();
        self.save_commands(&st)?;
        Ok(out)
    }

    /// Expires commands past their time; returns how many.
    pub fn expire(&self, now: Timestamp) -> usize {
        let mut st = self.state.write();
        let mut n = 0;
        for c in st.commands.values_mut() {
            if !c.status.is_final() && c.expires <= now {
                c.status = CommandStatus::Expired;
                c.answered = Some(now);
                n += 1;
            }
        }
        if n > 0
            && let Err(e) = self.save_commands(&st)
        {
            tracing::warn!(error = %e, "saving expired commands failed");
        }
        n
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn new(id: &str) -> NewDevice {
        NewDevice {
            id: id.into(),
            cert_subject: None,
            policy: None,
            token: true,
            clearance: Default::default(),
        }
    }

    #[test]
    fn register_authenticate_persist() {
        let dir = tempfile::tempdir().unwrap();
        let d = Devices::open(Some(dir.path().into()), DevicesConfig::default()).unwrap();
        let (dev, token) = d.register(new("truck-1")).unwrap();
        let token = token.unwrap();
        assert!(dev.token_sha256.is_none(), "the API never shows the hash");
        assert!(d.authenticate("truck-1", token.as_bytes()).is_ok());
        assert_eq!(
            d.authenticate("truck-1", b"nope").unwrap_err(),
            AuthError::BadToken
        );
        assert_eq!(
            d.authenticate("x", b"nope").unwrap_err(),
            AuthError::UnknownDevice
        );
        assert!(matches!(
            d.register(new("truck-1")),
            Err(DeviceError::Exists(_))
        ));
        assert!(matches!(
            d.register(new("bad id")),
            Err(DeviceError::Invalid(_))
        ));
        let stored = std::fs::read_to_string(dir.path().join("devices.json")).unwrap();
        assert!(!stored.contains(&token), "the token itself is never stored");
        drop(d);
        let d = Devices::open(Some(dir.path().into()), DevicesConfig::default()).unwrap();
        assert!(d.authenticate("truck-1", token.as_bytes()).is_ok());
    }

    #[test]
    fn clearance_is_registered_persisted_and_defaults_to_lowest() {
        let dir = tempfile::tempdir().unwrap();
        let d = Devices::open(Some(dir.path().into()), DevicesConfig::default()).unwrap();
        let req: NewDevice =
            serde_json::from_str(r#"{"id":"s1","clearance":{"level":"SECRET","groups":["NATO"]}}"#)
                .unwrap();
        let (dev, _) = d.register(req).unwrap();
        assert_eq!(dev.clearance.level.as_deref(), Some("SECRET"));
        d.register(new("plain")).unwrap();
        assert_eq!(
            d.clearance("plain").unwrap(),
            rampart_labels::ClearanceSpec::default()
        );
        assert!(d.clearance("nobody").is_none());
        let bad = serde_json::from_str::<NewDevice>(r#"{"id":"x","clearance":{"lvl":"S"}}"#);
        assert!(bad.is_err(), "unknown clearance fields are refused");
        drop(d);
        let d = Devices::open(Some(dir.path().into()), DevicesConfig::default()).unwrap();
        let spec = d.clearance("s1").unwrap();
        assert_eq!(spec.groups, ["NATO"]);
        // A record written before clearances existed reads as the lowest level.
        let old: Device = serde_json::from_str(
            r#"{"id":"o","cert_subject":null,"policy":{},"created":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(old.clearance, rampart_labels::ClearanceSpec::default());
    }

    #[test]
    fn command_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let d = Devices::open(Some(dir.path().into()), DevicesConfig::default()).unwrap();
        d.register(new("dev")).unwrap();
        let mut wake = d.subscribe_wake();
        let req = |ttl| NewCommand {
            command: "reboot".into(),
            args: serde_json::json!({"delay": 5}),
            ttl_s: ttl,
        };
        let c = d.create_command("dev", req(None)).unwrap();
        assert_eq!(wake.try_recv().unwrap(), "dev");
        assert_eq!(c.status, CommandStatus::Queued);
        assert_eq!(d.to_deliver("dev", false).len(), 1);
        d.mark_sent(std::slice::from_ref(&c.id)).unwrap();
        assert_eq!(d.command(&c.id).unwrap().status, CommandStatus::Sent);
        assert!(d.to_deliver("dev", false).is_empty());
        assert_eq!(d.to_deliver("dev", true).len(), 1);
        let ack = format!(r#"{{"id":"{}","status":"ok","message":"done"}}"#, c.id);
        assert!(matches!(
            d.answer("other", ack.as_bytes()),
            Err(DeviceError::Invalid(_))
        ));
        let done = d.answer("dev", ack.as_bytes()).unwrap();
        assert_eq!(done.status, CommandStatus::Acked);
        assert!(d.answer("dev", ack.as_bytes()).is_err(), "already ended");
        let c2 = d.create_command("dev", req(Some(1))).unwrap();
        let fail = format!(r#"{{"id":"{}","status":"error"}}"#, c2.id);
        d.register(new("dev2")).unwrap();
        let c3 = d.create_command("dev2", req(Some(1))).unwrap();
        assert_eq!(
            d.answer("dev", fail.as_bytes()).unwrap().status,
            CommandStatus::Failed
        );
        assert_eq!(d.expire(Timestamp::now().plus_millis(2000)), 1);
        // Persisted across a reopen.
        drop(d);
        let d = Devices::open(Some(dir.path().into()), DevicesConfig::default()).unwrap();
        assert_eq!(d.command(&c3.id).unwrap().status, CommandStatus::Expired);
        assert_eq!(d.command(&c.id).unwrap().status, CommandStatus::Acked);
        let c4 = d.create_command("dev", req(None)).unwrap();
        assert_ne!(c4.id, c3.id, "ids are never reused");
        assert!(matches!(
            d.create_command("nobody", req(None)),
            Err(DeviceError::NotFound(_))
        ));
        assert!(matches!(
            d.create_command("dev", req(Some(0))),
            Err(DeviceError::Invalid(_))
        ));
    }
}
