//! The bridge to an external MQTT broker: subscribe there and feed messages in, publish local messages out.
//!
//! One [`BridgeConfig`] (a `[[mqtt.bridge]]` TOML table) is one connection to a remote
//! broker, run by [`run_bridge`] until the local side goes away:
//!
//! - **In**: the bridge subscribes at the remote to `remote_prefix + filter` for every
//!   `subscribe` entry; a message on remote topic `remote_prefix + rest` is handed to the
//!   local broker as `local_prefix + rest` (with `try_send`: when the local queue is full the
//!   message is dropped and counted, so a slow local side never stalls the remote reader).
//! - **Out**: a local message on `local_prefix + rest`, where `rest` matches one of the
//!   `publish` filters, is published at the remote as `remote_prefix + rest`, at the QoS it
//!   was received with, capped at 1 (QoS 1 is pipelined within the client's in-flight window).
//!
//! The prefixes work as Mosquitto's bridge `local_prefix` / `remote_prefix` do: filters are
//! written without them. Both default to empty. The retain flag and MQTT 5 properties (user
//! properties, content type, …) travel as received, as in Mosquitto's bridge; per-link
//! properties (topic alias, subscription identifiers) are removed.
//!
//! **Loop prevention.** The embedder must not feed messages that came out of `to_local`
//! (bridge-originated) back into `from_local`; that alone stops a local→remote→local cycle.
//! On MQTT 5 the remote subscriptions also set No Local, so the remote broker does not echo
//! the bridge's own publishes back; on 3.1.1 a message forwarded out whose remote topic also
//! matches a `subscribe` filter comes back in once (and stops there, by the rule above).
//!
//! TLS: `tls = true` with `tls_ca_file` (PEM roots to trust; there is no system trust store),
//! optionally `tls_server_name` and, for brokers that want client certificates,
//! `tls_cert_file` + `tls_key_file`.
//!
//! Reconnects use exponential backoff between `reconnect_min_ms` and `reconnect_max_ms`.
//! While the remote is down, local messages wait in the `from_local` channel, whose capacity
//! the embedder sets to [`BridgeConfig::queue_len`] (and counts its own `try_send` failures in
//! [`BridgeStats::dropped_out`]). QoS 1 messages in flight when a connection drops are
//! counted as dropped too (the bridge uses clean sessions by default).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use rampart_mqtt_broker::topic;
use rmqtt_codec::types::{Publish, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::client::{self, Client, ConnectOptions, Incoming, SubscribeResult, Subscription};

/// Default lower bound of the reconnect backoff, in milliseconds.
pub const DEFAULT_RECONNECT_MIN_MS: u64 = 500;
/// Default upper bound of the reconnect backoff, in milliseconds.
pub const DEFAULT_RECONNECT_MAX_MS: u64 = 30_000;
/// Default length of the outbound queue (local messages waiting for the remote).
pub const DEFAULT_QUEUE_LEN: usize = 10_000;
/// Default keepalive towards the remote broker, in seconds.
pub const DEFAULT_KEEPALIVE_SECS: u16 = 30;
/// Default outbound in-flight window (QoS 1 publishes awaiting PUBACK).
pub const DEFAULT_MAX_INFLIGHT: u16 = 100;
/// A connection that stayed up this long resets the backoff to its minimum.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// One remote topic filter to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteFilter {
    /// The filter, without `remote_prefix`.
    pub filter: String,
    /// Requested QoS (0, 1 or 2).
    #[serde(default)]
    pub qos: u8,
}

/// One bridge: a `[[mqtt.bridge]]` table.
///
/// ```toml
/// [[mqtt.bridge]]
/// name = "hq"
/// address = "broker.example:1883"
/// version = 5
/// subscribe = [{ filter = "sensors/#", qos = 1 }]
/// publish = ["rampart/v1/+/report"]
/// remote_prefix = "site-a/"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// A name for logs and metrics; unique among bridges.
    pub name: String,
    /// The remote broker, `host:port`.
    pub address: String,
    /// Client identifier at the remote (default `rampart-bridge-{name}`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name at the remote.
    #[serde(default)]
    pub username: Option<String>,
    /// Password at the remote.
    #[serde(default)]
    pub password: Option<String>,
    /// Protocol version: 3 (or 4) for MQTT 3.1.1, 5 for MQTT 5.0.
    #[serde(default = "default_version")]
    pub version: u8,
    /// Keepalive in seconds.
    #[serde(default = "default_keepalive", alias = "keepalive")]
    pub keepalive_secs: u16,
    /// Clean session / clean start at each connect.
    #[serde(default = "default_true")]
    pub clean_start: bool,
    /// Session expiry in seconds (MQTT 5, when `clean_start` is false).
    #[serde(default)]
    pub session_expiry_secs: u32,
    /// Remote filters whose messages are fed into the local broker.
    #[serde(default)]
    pub subscribe: Vec<RemoteFilter>,
    /// Local topic filters whose messages are published at the remote.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Prefix of topics at the remote.
    #[serde(default)]
    pub remote_prefix: String,
    /// Prefix of topics in the local broker.
    #[serde(default)]
    pub local_prefix: String,
    /// First reconnect delay, doubled after each failure.
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Capacity of the `from_local` channel the embedder creates (messages waiting to go out).
    #[serde(default = "default_queue_len")]
    pub queue_len: usize,
    /// Outbound QoS 1 in-flight window.
    #[serde(default = "default_inflight")]
    pub max_inflight: u16,
    /// Largest packet exchanged with the remote, in bytes.
    #[serde(default = "default_max_packet")]
    pub max_packet_size: u32,
    /// Connect over TLS (then `tls_ca_file` is required).
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA certificates that may sign the remote's certificate.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Name checked against the remote's certificate (default: the host of `address`).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// PEM certificate chain for mutual TLS (with `tls_key_file`).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for mutual TLS (with `tls_cert_file`).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// What the remote may receive when labels are enforced: a labelled local message
    /// (entity updates, alerts) is forwarded out only if this clearance permits its label.
    /// Default: the lowest level, no groups. E.g. `clearance = { level = "SECRET",
    /// groups = ["NATO"] }`.
    #[serde(default)]
    pub clearance: rampart_labels::ClearanceSpec,
}

fn default_version() -> u8 {
    4
}
fn default_keepalive() -> u16 {
    DEFAULT_KEEPALIVE_SECS
}
fn default_true() -> bool {
    true
}
fn default_reconnect_min() -> u64 {
    DEFAULT_RECONNECT_MIN_MS
}
fn default_reconnect_max() -> u64 {
    DEFAULT_RECONNECT_MAX_MS
}
fn default_queue_len() -> usize {
    DEFAULT_QUEUE_LEN
}
fn default_inflight() -> u16 {
    DEFAULT_MAX_INFLIGHT
}
fn default_max_packet() -> u32 {
    client::DEFAULT_MAX_PACKET_SIZE
}

/// What is wrong with a [`BridgeConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeConfigError {
    /// `name` is empty.
    #[error("mqtt bridge: name is empty")]
    NoName,
    /// `address` is not `host:port`.
    #[error("mqtt bridge {0}: address {1:?} is not host:port")]
    Address(String, String),
    /// `version` is not 3, 4 or 5.
    #[error("mqtt bridge {0}: version {1} is not 3, 4 (both MQTT 3.1.1) or 5")]
    Version(String, u8),
    /// A filter or prefix is invalid.
    #[error("mqtt bridge {0}: {1}")]
    Topic(String, String),
    /// A QoS above 2.
    #[error("mqtt bridge {0}: qos {1} of {2:?} is not 0, 1 or 2")]
    Qos(String, u8, String),
    /// A zero or inverted limit.
    #[error("mqtt bridge {0}: {1}")]
    Limit(String, &'static str),
    /// The TLS settings are incomplete or their files unreadable.
    #[error("mqtt bridge {0}: tls: {1}")]
    Tls(String, String),
}

impl BridgeConfig {
    /// Checks every field; [`run_bridge`] refuses to start with an invalid configuration.
    pub fn validate(&self) -> Result<(), BridgeConfigError> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Err(BridgeConfigError::NoName);
        }
        let port_ok = self
            .address
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(BridgeConfigError::Address(
                name.clone(),
                self.address.clone(),
            ));
        }
        if !matches!(self.version, 3..=5) {
            return Err(BridgeConfigError::Version(name.clone(), self.version));
        }
        for (what, p) in [
            ("remote_prefix", &self.remote_prefix),
            ("local_prefix", &self.local_prefix),
        ] {
            if p.contains(['+', '#', '\0']) {
                return Err(BridgeConfigError::Topic(
                    name.clone(),
                    format!("{what} {p:?} contains a wildcard or NUL"),
                ));
            }
        }
        let bad = |f: &str, e: topic::TopicError| {
            BridgeConfigError::Topic(name.clone(), format!("filter {f:?}: {e:?}"))
        };
        for s in &self.subscribe {
            let full = format!("{}{}", self.remote_prefix, s.filter);
            topic::parse_filter(&full).map_err(|e| bad(&full, e))?;
            if s.qos > 2 {
                return Err(BridgeConfigError::Qos(
                    name.clone(),
                    s.qos,
                    s.filter.clone(),
                ));
            }
        }
        for f in &self.publish {
            topic::validate_filter(f).map_err(|e| bad(f, e))?;
        }
        if self.subscribe.is_empty() && self.publish.is_empty() {
            return Err(BridgeConfigError::Limit(
                name.clone(),
                "neither subscribe nor publish filters: the bridge would do nothing",
            ));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            return Err(BridgeConfigError::Limit(
                name.clone(),
                "reconnect_min_ms must be > 0 and <= reconnect_max_ms",
            ));
        }
        if self.tls && self.tls_ca_file.is_none() {
            return Err(BridgeConfigError::Tls(
                name.clone(),
                "tls = true needs tls_ca_file (the CA certificates to trust)".into(),
            ));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(BridgeConfigError::Tls(
                name.clone(),
                "tls_cert_file and tls_key_file go together".into(),
            ));
        }
        if self.queue_len == 0 || self.max_inflight == 0 || self.max_packet_size < 64 {
            return Err(BridgeConfigError::Limit(
                name.clone(),
                "queue_len and max_inflight must be > 0, max_packet_size >= 64",
            ));
        }
        Ok(())
    }

    /// The client identifier used at the remote.
    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("rampart-bridge-{}", self.name))
    }

    /// The local topic filters whose messages this bridge forwards out (`local_prefix`
    /// applied): what the embedder should feed into `from_local`.
    pub fn local_filters(&self) -> Vec<String> {
        self.publish
            .iter()
            .map(|f| format!("{}{f}", self.local_prefix))
            .collect()
    }

    /// The remote topic for local topic `local`, or `None` when no `publish` filter takes it.
    pub fn outbound_topic(&self, local: &str) -> Option<String> {
        let rest = local.strip_prefix(self.local_prefix.as_str())?;
        if rest.is_empty() || !self.publish.iter().any(|f| topic::matches(f, rest)) {
            return None;
        }
        Some(format!("{}{rest}", self.remote_prefix))
    }

    /// The local topic for remote topic `remote`, or `None` when it lacks `remote_prefix` or
    /// the result is not a valid topic name.
    pub fn inbound_topic(&self, remote: &str) -> Option<String> {
        let rest = remote.strip_prefix(self.remote_prefix.as_str())?;
        let local = format!("{}{rest}", self.local_prefix);
        (!rest.is_empty() && topic::validate_name(&local).is_ok()).then_some(local)
    }

    /// The rustls configuration for `tls = true` (reads the PEM files).
    fn tls_options(&self) -> Result<Option<client::TlsOptions>, BridgeConfigError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        if !self.tls {
            return Ok(None);
        }
        let err = |what: String| BridgeConfigError::Tls(self.name.clone(), what);
        let read_certs =
            |path: &PathBuf| -> Result<Vec<CertificateDer<'static>>, BridgeConfigError> {
                CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| err(format!("{}: {e}", path.display())))
            };
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &self.tls_ca_file {
            for c in read_certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| err(format!("{}: {e}", ca.display())))?;
            }
        }
        if roots.is_empty() {
            return Err(err("tls_ca_file holds no certificate".into()));
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots);
        let config = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| err(format!("{}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| err(e.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(Some(client::TlsOptions {
            config: Arc::new(config),
            server_name: self
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host.to_string()),
        }))
    }

    fn connect_options(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new(self.client_id());
        o.version = if self.version == 5 {
            client::Version::V5
        } else {
            client::Version::V311
        };
        o.username = self.username.clone();
        o.password = self.password.clone().map(Bytes::from);
        o.keepalive_secs = self.keepalive_secs;
        o.clean_start = self.clean_start;
        o.session_expiry_secs = self.session_expiry_secs;
        o.max_inflight = self.max_inflight;
        o.max_packet_size = self.max_packet_size;
        o
    }
}

/// Counters of one bridge (relaxed atomics; the embedder exports them as metrics).
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// 1 while connected and subscribed at the remote, else 0.
    pub connected: AtomicU64,
    /// Remote messages handed to the local broker.
    pub messages_in: AtomicU64,
    /// Local messages published at the remote.
    pub messages_out: AtomicU64,
    /// Remote messages dropped: the local queue was full, or the rewritten topic was invalid.
    pub dropped_in: AtomicU64,
    /// Local messages lost: refused or unacknowledged by the remote, in flight when the
    /// connection dropped, or (counted by the embedder) not queued because `from_local` was
    /// full.
    pub dropped_out: AtomicU64,
    /// Connection attempts after the first (after a failure or a lost connection).
    pub reconnects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl BridgeStats {
    /// The last connection error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }
}

enum End {
    /// The local side is gone: stop the bridge.
    LocalClosed,
    /// The remote connection failed: reconnect.
    Lost(String),
}

/// Runs one bridge until the local side goes away (`from_local`'s senders or `to_local`'s
/// receiver dropped). Connects with exponential backoff, subscribes, and forwards both ways
/// as the [module documentation](self) describes. An invalid configuration is logged and
/// recorded in [`BridgeStats::last_error`], and the bridge does not start (so are unreadable
/// TLS files).
pub async fn run_bridge(
    cfg: BridgeConfig,
    to_local: mpsc::Sender<Publish>,
    mut from_local: mpsc::Receiver<Publish>,
    stats: Arc<BridgeStats>,
) {
    let tls = match cfg.validate().and_then(|()| cfg.tls_options()) {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!(bridge = %cfg.name, error = %e, "mqtt bridge not started");
            stats.set_error(e.to_string());
            return;
        }
    };
    let mut options = cfg.connect_options();
    options.tls = tls;
    let min = Duration::from_millis(cfg.reconnect_min_ms);
    let max = Duration::from_millis(cfg.reconnect_max_ms);
    let mut backoff = min;
    let mut first = true;
    loop {
        if !first {
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        match client::connect(&cfg.address, options.clone()).await {
            Ok((client, incoming)) => {
                let started = Instant::now();
                let end =
                    session(&cfg, &client, incoming, &to_local, &mut from_local, &stats).await;
                stats.connected.store(0, Ordering::Relaxed);
                match end {
                    End::LocalClosed => {
                        let _ = client.disconnect().await;
                        tracing::info!(bridge = %cfg.name, "mqtt bridge stopped");
                        return;
                    }
                    End::Lost(why) => {
                        tracing::warn!(bridge = %cfg.name, error = %why, "mqtt bridge connection lost");
                        stats.set_error(why);
                        let _ = client.disconnect().await;
                        if started.elapsed() >= STABLE_AFTER {
                            backoff = min;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(bridge = %cfg.name, address = %cfg.address, error = %e, "mqtt bridge cannot connect");
                stats.set_error(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = to_local.closed() => return,
        }
        backoff = (backoff * 2).min(max);
    }
}

async fn session(
    cfg: &BridgeConfig,
    client: &Client,
    mut incoming: Incoming,
    to_local: &mpsc::Sender<Publish>,
    from_local: &mut mpsc::Receiver<Publish>,
    stats: &BridgeStats,
) -> End {
    if !cfg.subscribe.is_empty() {
        let subs: Vec<Subscription> = cfg
            .subscribe
            .iter()
            .map(|f| Subscription {
                filter: format!("{}{}", cfg.remote_prefix, f.filter),
                qos: QoS::try_from(f.qos).unwrap_or(QoS::AtMostOnce),
                no_local: true,
            })
            .collect();
        match client.subscribe(&subs).await {
            Ok(results) => {
                for (s, r) in subs.iter().zip(results) {
                    if let SubscribeResult::Refused(code) = r {
                        tracing::warn!(bridge = %cfg.name, filter = %s.filter, code, "remote broker refused a bridge subscription");
                    }
                }
            }
            Err(e) => return End::Lost(format!("subscribe: {e}")),
        }
    }
    stats.connected.store(1, Ordering::Relaxed);
    tracing::info!(bridge = %cfg.name, address = %cfg.address, "mqtt bridge connected");

    let inbound = async {
        while let Some(mut p) = incoming.recv().await {
            let Some(local) = cfg.inbound_topic(&p.topic) else {
                stats.dropped_in.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            p.topic = ByteString::from(local);
            p.packet_id = None;
            p.dup = false;
            if let Some(pr) = &mut p.properties {
                // Per-connection properties of the remote link mean nothing locally.
                pr.topic_alias = None;
                pr.subscription_ids.clear();
            }
            match to_local.try_send(p) {
                Ok(()) => {
                    stats.messages_in.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    stats.dropped_in.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return End::LocalClosed,
            }
        }
        End::Lost(
            incoming
                .close_reason()
                .unwrap_or_else(|| "connection closed".into()),
        )
    };

    let acked0 = client.stats().acked.load(Ordering::Relaxed);
    let refused0 = client.stats().refused.load(Ordering::Relaxed);
    let mut qos1_sent = 0u64;
    let outbound = async {
        loop {
            let Some(mut p) = from_local.recv().await else {
                return End::LocalClosed;
            };
            let Some(remote) = cfg.outbound_topic(&p.topic) else {
                continue;
            };
            p.topic = ByteString::from(remote);
            if p.qos == QoS::ExactlyOnce {
                p.qos = QoS::AtLeastOnce;
            }
            let qos1 = p.qos == QoS::AtLeastOnce;
            match client.publish(p).await {
                Ok(()) => {
                    qos1_sent += u64::from(qos1);
                    stats.messages_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(client::Error::Closed(why)) => {
                    stats.dropped_out.fetch_add(1, Ordering::Relaxed);
                    return End::Lost(why);
                }
                Err(e) => {
                    stats.dropped_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(bridge = %cfg.name, error = %e, "mqtt bridge: message not forwarded");
                }
            }
        }
    };

    let end = tokio::select! {
        e = inbound => e,
        e = outbound => e,
    };
    // QoS 1 publishes the remote never acknowledged (or refused) on this connection are lost.
    let acked = client.stats().acked.load(Ordering::Relaxed) - acked0;
    let refused = client.stats().refused.load(Ordering::Relaxed) - refused0;
    if matches!(end, End::LocalClosed) {
        // Give the messages in flight a moment to be acknowledged before disconnecting.
        let _ = tokio::time::timeout(Duration::from_secs(2), client.wait_acked()).await;
    }
    let acked_now = client.stats().acked.load(Ordering::Relaxed) - acked0;
    let unacked = qos1_sent.saturating_sub(acked_now.max(acked) + refused);
    stats
        .dropped_out
        .fetch_add(unacked + refused, Ordering::Relaxed);
    end
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg(toml_text: &str) -> BridgeConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn parses_a_bridge_table_with_defaults() {
        let c = cfg(r#"
            name = "hq"
            address = "127.0.0.1:1883"
            subscribe = [{ filter = "sensors/#", qos = 1 }]
            publish = ["rampart/v1/+/report"]
        "#);
        c.validate().unwrap();
        assert_eq!(c.client_id(), "rampart-bridge-hq");
        assert_eq!(c.version, 4);
        assert_eq!(c.keepalive_secs, DEFAULT_KEEPALIVE_SECS);
        assert_eq!(c.queue_len, DEFAULT_QUEUE_LEN);
        assert!(c.clean_start);
        assert_eq!(c.subscribe[0].qos, 1);
        assert_eq!(
            c.clearance,
            rampart_labels::ClearanceSpec::default(),
            "the lowest level unless configured"
        );
        let c = cfg(r#"
            name = "x"
            address = "h:1"
            keepalive = 5
            publish = ["a"]
            clearance = { level = "SECRET", groups = ["NATO"] }
        "#);
        assert_eq!(c.keepalive_secs, 5);
        assert_eq!(c.clearance.level.as_deref(), Some("SECRET"));
        assert!(
            toml::from_str::<BridgeConfig>("name='x'\naddress='h:1'\nbogus=1").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let base = r#"name = "b"
            address = "h:1883"
            publish = ["a/#"]
        "#;
        cfg(base).validate().unwrap();
        let mut c = cfg(base);
        c.address = "nohost".into();
        assert!(matches!(c.validate(), Err(BridgeConfigError::Address(..))));
        let mut c = cfg(base);
        c.version = 6;
        assert!(matches!(c.validate(), Err(BridgeConfigError::Version(..))));
        let mut c = cfg(base);
        c.publish = vec!["a/#/b".into()];
        assert!(matches!(c.validate(), Err(BridgeConfigError::Topic(..))));
        let mut c = cfg(base);
        c.remote_prefix = "x/+/".into();
        assert!(matches!(c.validate(), Err(BridgeConfigError::Topic(..))));
        let mut c = cfg(base);
        c.subscribe = vec![RemoteFilter {
            filter: "s".into(),
            qos: 3,
        }];
        assert!(matches!(c.validate(), Err(BridgeConfigError::Qos(..))));
        let mut c = cfg(base);
        c.reconnect_min_ms = 10_000;
        c.reconnect_max_ms = 100;
        assert!(matches!(c.validate(), Err(BridgeConfigError::Limit(..))));
        let mut c = cfg(base);
        c.publish.clear();
        assert!(matches!(c.validate(), Err(BridgeConfigError::Limit(..))));
        let mut c = cfg(base);
        c.tls = true;
        assert!(matches!(c.validate(), Err(BridgeConfigError::Tls(..))));
        c.tls_ca_file = Some("ca.pem".into());
        c.validate().unwrap();
        c.tls_key_file = Some("key.pem".into());
        assert!(matches!(c.validate(), Err(BridgeConfigError::Tls(..))));
    }

    #[test]
    fn topics_are_rewritten_like_mosquitto_prefixes() {
        let mut c = cfg(r#"name = "b"
            address = "h:1883"
            subscribe = [{ filter = "sensors/#" }]
            publish = ["+/report", "cmd/#"]
        "#);
        // No prefixes: topics pass unchanged, filtered by `publish`.
        assert_eq!(c.outbound_topic("d1/report").as_deref(), Some("d1/report"));
        assert_eq!(c.outbound_topic("d1/telemetry"), None);
        assert_eq!(c.inbound_topic("sensors/t").as_deref(), Some("sensors/t"));

        c.remote_prefix = "site-a/".into();
        c.local_prefix = "bridge/hq/".into();
        assert_eq!(
            c.local_filters(),
            vec!["bridge/hq/+/report", "bridge/hq/cmd/#"]
        );
        assert_eq!(
            c.outbound_topic("bridge/hq/d1/report").as_deref(),
            Some("site-a/d1/report")
        );
        assert_eq!(c.outbound_topic("d1/report"), None, "lacks local_prefix");
        assert_eq!(
            c.inbound_topic("site-a/sensors/t").as_deref(),
            Some("bridge/hq/sensors/t")
        );
        assert_eq!(c.inbound_topic("other/sensors/t"), None);
        assert_eq!(c.inbound_topic("site-a/"), None, "nothing after the prefix");
    }
}
