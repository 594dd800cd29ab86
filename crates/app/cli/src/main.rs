//! The `rampart` command line: `serve`, `demo` and `bench`.

mod audit;
mod config;
mod export;
mod mqtt;
mod node;
mod pki;
mod rules;
mod users;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// Rampart: a secure IoT platform and live common operating picture in one binary.
#[derive(Parser)]
#[command(
    name = "rampart",
    version,
    about = "Rampart: a secure IoT platform and live common operating picture in one binary",
    long_about = None,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: ingest reports, keep the live picture and history, serve the API.
    Serve(ServeArgs),
    /// Run a node with a built-in scenario of moving entities, for a first look.
    Demo(DemoArgs),
    /// Measure performance against the targets in BENCHMARKS.md (use a release build).
    Bench(BenchArgs),
    /// Replay a recorded feed file (NMEA, AIS, SBS, AVR or CoT) into a node's picture and history.
    Replay(ReplayArgs),
    /// Export the live picture or a track from a data directory (GeoJSON, KML, CSV, CoT, GPX).
    Export(ExportArgs),
    /// Print the effective configuration (defaults, file, environment and flags) as TOML.
    Config(ServeArgs),
    /// The built-in certificate authority: init, issue, revoke, list.
    Pki(pki::PkiArgs),
    /// The audit log: verify its hash chain, export it as JSON lines.
    Audit(audit::AuditArgs),
    /// Operator accounts: add, token, list, remove (run with the node stopped).
    User(users::UserArgs),
}

/// Options shared by `serve` and `demo`. Flags override environment variables, which
/// override the config file, which overrides the defaults.
#[derive(Args)]
struct NodeArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "RAMPART_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (history lives under DIR/history).
    #[arg(long, env = "RAMPART_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// A listener as KIND=ADDR, repeatable, e.g. `--listen http=127.0.0.1:8080`. Port 0 picks
    /// a free port. Kinds: http, https, cot-tcp, cot-tls, cot-udp, cot-mesh (multicast group), mqtt, mqtts, nmea-udp, nmea-tcp, ais-udp, ais-tcp, sbs-tcp,
    /// avr-tcp.
    #[arg(
        long,
        env = "RAMPART_LISTEN",
        value_name = "KIND=ADDR",
        value_delimiter = ','
    )]
    listen: Vec<String>,
    /// Drop history older than this many seconds.
    #[arg(long, env = "RAMPART_RETENTION_MAX_AGE_SECS", value_name = "SECS")]
    retention_max_age_secs: Option<u64>,
    /// Keep at most this many bytes of history on disk.
    #[arg(long, env = "RAMPART_RETENTION_MAX_BYTES", value_name = "BYTES")]
    retention_max_bytes: Option<u64>,
    /// Most live entities.
    #[arg(long, env = "RAMPART_MAX_ENTITIES", value_name = "N")]
    max_entities: Option<usize>,
    /// Seconds a stale entity stays in the live picture before it is dropped.
    #[arg(long, env = "RAMPART_STALE_GRACE_SECS", value_name = "SECS")]
    stale_grace_secs: Option<u64>,
    /// Largest HTTP request body in bytes.
    #[arg(long, env = "RAMPART_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Let MQTT clients without credentials use ordinary application topics (never
    /// `rampart/...` or `spBv1.0/...`).
    #[arg(long, env = "RAMPART_MQTT_ALLOW_ANONYMOUS")]
    mqtt_allow_anonymous: bool,
    /// Secure defaults: a CA and server certificate if absent, TLS listeners only (default
    /// https=127.0.0.1:8443), client certificates required, signed UDP datagrams only.
    #[arg(long, env = "RAMPART_SECURE")]
    secure: bool,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Simulated entities.
    #[arg(long, default_value_t = 2500)]
    entities: usize,
    /// Scenario seed: the same seed gives the same scenario.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Args)]
struct ReplayArgs {
    /// The recorded file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The file's protocol.
    #[arg(long, value_enum)]
    format: node::ReplayFormat,
    /// Playback speed: 1 keeps the original timing, 10 is ten times faster, 0 is as fast as
    /// possible. Lines without a time are sent with the timed line before them.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Keep serving after the replay (with `--listen`), instead of exiting.
    #[arg(long)]
    serve: bool,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
struct ExportArgs {
    /// Output format: geojson, kml, csv or cot for the picture; geojson, gpx, kml or csv for a track.
    #[arg(long, default_value = "geojson")]
    format: String,
    /// Export this entity's track instead of the live picture.
    #[arg(long, value_name = "UID")]
    track: Option<String>,
    /// Track start (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Track end (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Only entities in `minLon,minLat,maxLon,maxLat`.
    #[arg(long)]
    bbox: Option<String>,
    /// Only entities whose type starts with this CoT prefix (e.g. `a-h`).
    #[arg(long = "type")]
    type_prefix: Option<String>,
    /// Most entities or track points.
    #[arg(long, default_value_t = 1_000_000)]
    limit: usize,
    /// Write to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// Which benchmark: engine, query, memory, history, track, replay, http, feeds, tls, or all.
    #[arg(value_name = "NAME", default_value = "all")]
    name: String,
    /// Smaller sizes, for a quick look (figures are not comparable with the targets).
    #[arg(long)]
    quick: bool,
    /// Print the figures as JSON too.
    #[arg(long)]
    json: bool,
}

impl NodeArgs {
    /// The effective configuration: file, then environment and flags on top.
    fn resolve(&self, default_listen: &str) -> anyhow::Result<Config> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data {
            cfg.data = d.clone();
        }
        if !self.listen.is_empty() {
            cfg.listen = self.listen.clone();
        }
        if self.secure {
            cfg.security.secure = true;
        }
        if cfg.listen.is_empty() {
            cfg.listen = vec![if cfg.security.secure && !default_listen.is_empty() {
                pki::SECURE_DEFAULT_LISTEN.to_string()
            } else {
                default_listen.to_string()
            }];
        }
        if let Some(v) = self.retention_max_age_secs {
            cfg.history.max_age_secs = v;
        }
        if let Some(v) = self.retention_max_bytes {
            cfg.history.max_bytes = v;
        }
        if let Some(v) = self.max_entities {
            cfg.picture.max_entities = v;
        }
        if let Some(v) = self.stale_grace_secs {
            cfg.picture.stale_grace_secs = v;
        }
        if let Some(v) = self.max_body_bytes {
            cfg.http.max_body_bytes = v;
        }
        if self.mqtt_allow_anonymous {
            cfg.mqtt.allow_anonymous = true;
        }
        pki::apply_secure(&mut cfg)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve(a) => {
            let cfg = a.node.resolve("http=127.0.0.1:8080")?;
            node::run(cfg, node::Mode::Serve)
        }
        Command::Demo(a) => {
            let mut cfg = a.node.resolve("http=127.0.0.1:8080")?;
            if a.node.data.is_none() && a.node.config.is_none() {
                cfg.data =
                    std::env::temp_dir().join(format!("rampart-demo-{}", std::process::id()));
            }
            node::run(
                cfg,
                node::Mode::Demo(node::DemoOptions {
                    entities: a.entities,
                    seed: a.seed,
                }),
            )
        }
        Command::Replay(a) => {
            // Listeners only when asked for: a replay is an import by default.
            let mut cfg = a.node.resolve("")?;
            cfg.listen.retain(|l| !l.is_empty());
            node::run(
                cfg,
                node::Mode::Replay(node::ReplayJob {
                    file: a.file,
                    format: a.format,
                    speed: a.speed,
                    serve: a.serve,
                }),
            )
        }
        Command::Export(a) => {
            let cfg = a.node.resolve("")?;
            export::run(
                cfg,
                export::ExportJob {
                    format: a.format,
                    track: a.track,
                    from: a.from,
                    to: a.to,
                    bbox: a.bbox,
                    type_prefix: a.type_prefix,
                    limit: a.limit,
                    out: a.out,
                },
            )
        }
        Command::Bench(a) => rampart_bench::run(&a.name, a.quick, a.json),
        Command::Pki(a) => pki::run(a),
        Command::Audit(a) => audit::run(a),
        Command::User(a) => users::run(a),
        Command::Config(a) => {
            let cfg = a.node.resolve("http=127.0.0.1:8080")?;
            print!("{}", toml::to_string(&cfg)?);
            Ok(())
        }
    }
}
