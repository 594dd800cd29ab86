//! Node configuration: a TOML file (`--config`), overridden by environment variables and
//! flags. Every limit of the node is named here with its default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rampart_engine::{DedupConfig, EngineConfig};
use rampart_history::SegmentLogConfig;
use rampart_http::HttpConfig;
use rampart_model::{Defaults, Label, Limits, Text};
use rampart_picture::PictureConfig;
use serde::{Deserialize, Serialize};

/// The whole node configuration, as read from TOML.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory (history segments live under `history/`).
    pub data: PathBuf,
    /// Listeners as `KIND=ADDR`, e.g. `http=127.0.0.1:8080`. Port 0 picks a free port.
    pub listen: Vec<String>,
    /// History retention and storage.
    pub history: HistorySection,
    /// Live picture.
    pub picture: PictureSection,
    /// Defaults for fields a report leaves out.
    pub defaults: DefaultsSection,
    /// Idempotency memory bounds.
    pub dedup: DedupConfig,
    /// HTTP edge limits.
    pub http: HttpConfig,
    /// Per-report field limits.
    pub limits: Limits,
    /// Engine housekeeping.
    pub engine: EngineSection,
    /// Legacy feeds: NMEA, AIS, ADS-B.
    pub feeds: FeedsSection,
    /// The TAK edge: CoT listeners and routing.
    pub cot: rampart_edge_cot::CotConfig,
    /// `[security]`: the PKI, HTTPS client certificates, `--secure`.
    pub security: crate::pki::SecuritySection,
    /// The operator console: tile sources and playback defaults.
    pub console: rampart_http::ConsoleConfig,
    /// The MQTT edge: broker limits, anonymous access, TLS.
    pub mqtt: rampart_edge_mqtt::MqttConfig,
    /// The device registry's bounds.
    pub devices: rampart_devices::DevicesConfig,
    /// `[rules]`: the rules engine's limits, alert store bounds and webhooks.
    pub rules: rampart_rules::RulesConfig,
    /// `[auth]`: operator accounts, sessions and login limits (`required` is forced on by
    /// `--secure`).
    pub auth: rampart_http::auth::AuthConfig,
    /// `[labels]`: classification levels, the anonymous clearance and per-source default
    /// labels. Clearances are enforced when `[auth] required` (or `--secure`) is on.
    pub labels: rampart_labels::LabelsConfig,
    /// `[guard]`: spoofing and abuse detection (impossible kinematics, floods, possible
    /// jamming). On under `--secure` unless `enabled` says otherwise.
    pub guard: rampart_guard::GuardConfig,
}

/// `[feeds]`: limits, protocol settings and upstream connections of the legacy feeds.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsSection {
    /// `[feeds.limits]`: line length, connections, UDP senders, reconnect backoff.
    pub limits: rampart_edge_feeds::FeedConfig,
    /// `[feeds.protocols]`: NMEA source mapping, AIS affiliation, ADS-B type and receiver.
    pub protocols: rampart_edge_feeds::adapters::ProtocolConfig,
    /// `[[feeds.upstream]]`: feeds Rampart connects to, reconnecting with backoff.
    pub upstream: Vec<UpstreamConfig>,
}

/// One upstream feed to connect to.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `nmea`, `ais`, `sbs` or `avr`.
    pub protocol: rampart_edge_feeds::adapters::Protocol,
    /// `HOST:PORT`.
    pub addr: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("rampart-data"),
            listen: Vec::new(),
            history: HistorySection::default(),
            picture: PictureSection::default(),
            defaults: DefaultsSection::default(),
            dedup: DedupConfig::default(),
            http: HttpConfig::default(),
            limits: Limits::default(),
            engine: EngineSection::default(),
            feeds: FeedsSection::default(),
            cot: rampart_edge_cot::CotConfig::default(),
            security: crate::pki::SecuritySection::default(),
            console: rampart_http::ConsoleConfig::default(),
            mqtt: rampart_edge_mqtt::MqttConfig::default(),
            devices: rampart_devices::DevicesConfig::default(),
            rules: rampart_rules::RulesConfig::default(),
            auth: rampart_http::auth::AuthConfig::default(),
            labels: rampart_labels::LabelsConfig::default(),
            guard: rampart_guard::GuardConfig::default(),
        }
    }
}

/// `[history]`: retention and the segment log.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySection {
    /// Drop history older than this many seconds (default 30 days).
    pub max_age_secs: u64,
    /// Keep at most this many bytes of history on disk (default 10 GiB).
    pub max_bytes: u64,
    /// Roll to a new segment file at this size (default 64 MiB).
    pub segment_bytes: u64,
    /// Roll to a new segment file after this many seconds (default 1 h), so age retention is granular.
    pub segment_max_age_secs: u64,
    /// Bound of the not-yet-written group-commit buffer; ingest waits while it is full (default 64 MiB).
    pub max_buffer_bytes: usize,
    /// Extra wait before a group commit, to batch more (default 0; at most 20).
    pub commit_delay_ms: u64,
    /// Longest wait before reports nobody waits for (TAK, UDP and TCP feeds) are committed
    /// (default 20 ms; at most 1,000). Acknowledged paths (HTTP, MQTT QoS 1/2) never wait
    /// for it.
    pub lazy_commit_ms: u64,
}

impl Default for HistorySection {
    fn default() -> Self {
        HistorySection {
            max_age_secs: 30 * 24 * 3600,
            max_bytes: 10 * 1024 * 1024 * 1024,
            segment_bytes: 64 * 1024 * 1024,
            segment_max_age_secs: 3600,
            max_buffer_bytes: 64 * 1024 * 1024,
            commit_delay_ms: 0,
            lazy_commit_ms: 20,
        }
    }
}

/// `[picture]`: the live picture.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PictureSection {
    /// Most live entities (default 2,000,000); reports creating more are rejected.
    pub max_entities: usize,
    /// Seconds an entity stays in the picture after going stale (default 600).
    pub stale_grace_secs: u64,
    /// Spatial grid cell size in degrees (default 0.05).
    pub cell_deg: f64,
    /// Most attributes kept per entity (default 64).
    pub max_attributes_per_entity: usize,
}

impl Default for PictureSection {
    fn default() -> Self {
        let p = PictureConfig::default();
        PictureSection {
            max_entities: p.max_entities,
            stale_grace_secs: (p.stale_grace_ms / 1000) as u64,
            cell_deg: p.cell_deg,
            max_attributes_per_entity: p.max_attributes_per_entity,
        }
    }
}

/// `[defaults]`: values for fields a report leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefaultsSection {
    /// Type of reports without one (default `a-u-G`).
    pub cot_type: String,
    /// `how` of reports without one (default `h-e`).
    pub how: String,
    /// A report without `stale` goes stale this many seconds after `time` (default 300).
    pub stale_after_secs: u64,
    /// Classification of reports without a label (default `UNCLASSIFIED`).
    pub classification: String,
}

impl Default for DefaultsSection {
    fn default() -> Self {
        let d = Defaults::default();
        DefaultsSection {
            cot_type: d.cot_type.to_string(),
            how: d.how.to_string(),
            stale_after_secs: (d.stale_after_ms / 1000) as u64,
            classification: d.label.classification.to_string(),
        }
    }
}

/// `[engine]`: housekeeping intervals and the fan-out buffer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Milliseconds between stale sweeps (default 1000).
    pub sweep_interval_ms: u64,
    /// Seconds between retention runs (default 60).
    pub retention_interval_secs: u64,
    /// Delta batches buffered for live subscribers before a slow one resynchronises (default 256).
    pub fanout_capacity: usize,
    /// Reports timed more than this many seconds ahead of the server clock are rejected (default 3600).
    pub max_future_secs: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            sweep_interval_ms: 1000,
            retention_interval_secs: 60,
            fanout_capacity: 256,
            max_future_secs: 3600,
        }
    }
}

/// One parsed `--listen KIND=ADDR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// Listener kind, e.g. `http`.
    pub kind: String,
    /// Address to bind.
    pub addr: std::net::SocketAddr,
}

/// Listener kinds this build knows.
pub fn listener_kinds() -> Vec<&'static str> {
    let mut kinds = vec![
        "http", "https", "cot-tcp", "cot-tls", "cot-udp", "cot-mesh", "mqtt", "mqtts",
    ];
    kinds.extend(
        rampart_edge_feeds::adapters::LISTENER_KINDS
            .iter()
            .map(|k| k.0),
    );
    kinds
}

impl ListenSpec {
    /// Parses `KIND=ADDR`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let Some((kind, addr)) = text.split_once('=') else {
            bail!("--listen {text:?}: expected KIND=ADDR, e.g. http=127.0.0.1:8080");
        };
        let known = listener_kinds();
        if !known.contains(&kind) {
            bail!(
                "--listen {text:?}: unknown listener kind {kind:?} (known: {})",
                known.join(", ")
            );
        }
        let addr = addr
            .parse()
            .with_context(|| format!("--listen {text:?}: {addr:?} is not an IP:PORT address"))?;
        Ok(ListenSpec {
            kind: kind.to_string(),
            addr,
        })
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// The parsed listeners.
    pub fn listeners(&self) -> anyhow::Result<Vec<ListenSpec>> {
        self.listen.iter().map(|l| ListenSpec::parse(l)).collect()
    }

    /// Checks cross-field rules the types cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.history.commit_delay_ms > 20 {
            bail!("history.commit_delay_ms must be at most 20");
        }
        if self.history.lazy_commit_ms > 1000 {
            bail!("history.lazy_commit_ms must be at most 1000");
        }
        if !(self.picture.cell_deg > 0.0 && self.picture.cell_deg <= 10.0) {
            bail!("picture.cell_deg must be in (0, 10]");
        }
        if self.picture.max_entities == 0 {
            bail!("picture.max_entities must be positive");
        }
        // A bad `[labels]` section is reported by `engine_config`; here only its levels matter.
        if let Ok(policy) = self.label_policy() {
            self.cot.validate(&policy.levels)?;
        }
        Ok(())
    }

    /// Defaults for report fields.
    pub fn report_defaults(&self) -> Defaults {
        Defaults {
            cot_type: Text::from(self.defaults.cot_type.as_str()),
            how: Text::from(self.defaults.how.as_str()),
            stale_after_ms: self.defaults.stale_after_secs as i64 * 1000,
            label: Label {
                classification: Text::from(self.defaults.classification.as_str()),
                releasability: Vec::new(),
            },
        }
    }

    /// The node's label policy. Enforced when `[auth] required` is on (`--secure` sets it):
    /// without authentication a clearance would only be a claim.
    pub fn label_policy(&self) -> anyhow::Result<rampart_labels::Policy> {
        rampart_labels::Policy::new(
            &self.labels,
            self.auth.required,
            self.report_defaults().label,
        )
        .map_err(|e| anyhow::anyhow!("[labels]: {e}"))
    }

    /// The engine's configuration.
    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let labels = std::sync::Arc::new(self.label_policy()?);
        let picture = PictureConfig {
            cell_deg: self.picture.cell_deg,
            max_entities: self.picture.max_entities,
            stale_grace_ms: self.picture.stale_grace_secs as i64 * 1000,
            max_attributes_per_entity: self.picture.max_attributes_per_entity,
            defaults: self.report_defaults(),
            levels: labels.levels.clone(),
            ..PictureConfig::default()
        };
        Ok(EngineConfig {
            picture,
            dedup: self.dedup.clone(),
            sweep_interval: Duration::from_millis(self.engine.sweep_interval_ms.max(10)),
            retention_interval: Duration::from_secs(self.engine.retention_interval_secs.max(1)),
            fanout_capacity: self.engine.fanout_capacity.max(1),
            max_future_ms: self.engine.max_future_secs as i64 * 1000,
            labels,
        })
    }

    /// The history store's configuration.
    pub fn history_config(&self) -> SegmentLogConfig {
        SegmentLogConfig {
            segment_bytes: self.history.segment_bytes,
            segment_max_age_ms: self.history.segment_max_age_secs as i64 * 1000,
            max_bytes: self.history.max_bytes,
            max_age_ms: self.history.max_age_secs as i64 * 1000,
            max_buffer_bytes: self.history.max_buffer_bytes,
            commit_delay_ms: self.history.commit_delay_ms,
            lazy_commit_ms: self.history.lazy_commit_ms,
            ..SegmentLogConfig::new(self.data.join("history"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_specs() {
        let l = ListenSpec::parse("http=127.0.0.1:0").unwrap();
        assert_eq!(l.kind, "http");
        assert!(
            ListenSpec::parse("ftp=127.0.0.1:0")
                .unwrap_err()
                .to_string()
                .contains("unknown listener kind")
        );
        assert!(ListenSpec::parse("http").is_err());
        assert!(ListenSpec::parse("http=localhost").is_err());
    }

    #[test]
    fn toml_round_trips_and_rejects_typos() {
        let text = toml::to_string(&Config::default()).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.history.max_bytes, Config::default().history.max_bytes);
        let err = toml::from_str::<Config>("[history]\nmax_byts = 3\n").unwrap_err();
        assert!(err.to_string().contains("max_byts"));
    }
}
