//! Starting a node: open the history, rebuild the engine, bind the listeners, run until
//! Ctrl-C or SIGTERM. `demo` adds the scenario simulator as one more report source.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rampart_edge_cot::CotEdge;
use rampart_edge_feeds::adapters::{LISTENER_KINDS as FEED_KINDS, Protocol};
use rampart_edge_feeds::{
    Batcher, FeedInput, run_tcp_connect, run_tcp_listener, run_udp_listener_gated,
};
use rampart_engine::{Engine, Metrics, ReportSink};
use rampart_history::SegmentLog;
use rampart_http::AppState;
use rampart_model::Timestamp;
use rampart_sim::{Scenario, ScenarioConfig};

use crate::config::Config;

/// Demo scenario options.
pub struct DemoOptions {
    /// Simulated entities.
    pub entities: usize,
    /// Scenario seed.
    pub seed: u64,
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A recorded file to replay into the node.
pub struct ReplayJob {
    /// The file.
    pub file: std::path::PathBuf,
    /// Its protocol.
    pub format: ReplayFormat,
    /// Playback speed (1 = original timing, 0 = as fast as possible).
    pub speed: f64,
    /// Keep serving after the replay instead of exiting.
    pub serve: bool,
}

/// The formats `rampart replay` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// NMEA 0183 GPS sentences.
    Nmea,
    /// AIS AIVDM/AIVDO sentences (tag-block `c:` times are honoured).
    Ais,
    /// ADS-B SBS-1 BaseStation lines.
    Sbs,
    /// ADS-B raw AVR hex lines.
    Avr,
    /// Concatenated CoT XML events.
    Cot,
}

/// What a node does besides serving.
pub enum Mode {
    /// Serve only.
    Serve,
    /// Serve with the demo scenario.
    Demo(DemoOptions),
    /// Replay a file, then exit (or keep serving).
    Replay(ReplayJob),
}

/// Runs a node with `cfg` until a shutdown signal (or the end of a replay).
pub fn run(cfg: Config, mode: Mode) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rampart")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(cfg, mode))
}

async fn run_async(cfg: Config, mode: Mode) -> anyhow::Result<()> {
    let listeners = cfg.listeners()?;
    std::fs::create_dir_all(&cfg.data)
        .with_context(|| format!("creating data directory {}", cfg.data.display()))?;
    let history = SegmentLog::open(cfg.history_config())
        .with_context(|| format!("opening history under {}", cfg.data.display()))?;
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::open(cfg.engine_config()?, history, metrics)?;
    let labels = Arc::clone(&engine.config().labels);
    // Explicit label downgrades survive a restart: applied on the picture rebuilt from history.
    let label_overrides = Arc::new(
        rampart_http::labels::LabelOverrides::open(&cfg.data).map_err(|e| anyhow::anyhow!(e))?,
    );
    let applied = label_overrides.apply(&engine);
    if applied > 0 {
        tracing::info!(applied, "label overrides applied");
    }
    let _maintenance = engine.spawn_maintenance();
    let sink: Arc<dyn ReportSink> = engine.clone();
    let rules = crate::rules::start(&cfg, &engine)?;
    let guard = crate::rules::start_guard(&cfg, &engine, &rules)?;
    // Operator accounts and sessions, shared by the http and https listeners.
    let auth = crate::users::open_auth(&cfg, engine.metrics())?;
    let devices = crate::mqtt::open_devices(&cfg)?;
    // Refuses to start on a log that does not verify: the chain is never silently restarted.
    let audit = crate::audit::open(&cfg.data)?;
    crate::audit::record_start(&audit, &cfg);
    let mqtt = if listeners.iter().any(|l| l.kind.starts_with("mqtt")) {
        let edge = crate::mqtt::start(&cfg, &engine, &sink, &devices)?;
        crate::mqtt::publish_alerts(&edge, &rules);
        Some(edge)
    } else {
        None
    };
    // The PKI (created on first start when a TLS listener needs it) and its revocation watch.
    let security = crate::pki::NodeSecurity::setup(&cfg, &listeners)?;

    let cot = listeners
        .iter()
        .any(|l| l.kind.starts_with("cot-"))
        .then(|| start_cot(&cfg, &engine, &sink, &labels));
    if let Some(edge) = &cot {
        crate::rules::attach_cot(&rules, edge);
    }
    if let (Some(edge), Some(sec)) = (&cot, &security) {
        edge.set_security(sec.cot(&cfg));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let mut http_urls = Vec::new();
    // One API state for `http` and `https`: the same routes, limits and services.
    let app_state = AppState::new(
        engine.clone(),
        sink.clone(),
        cfg.http.clone(),
        cfg.limits.clone(),
    )
    .with_console(cfg.console.clone())
    // A configured MBTiles basemap that is not MBTiles stops the node here, naming the file.
    .with_mbtiles(
        cfg.console
            .open_mbtiles()
            .map_err(anyhow::Error::msg)
            .context("[console] mbtiles_file")?,
    )
    .with_devices(devices.clone())
    .with_rules(rules.clone())
    .with_guard(guard.clone())
    .with_auth(auth.clone())
    .with_audit(audit.clone())
    .with_label_overrides(label_overrides);
    for l in &listeners {
        match l.kind.as_str() {
            "http" => {
                let listener = tokio::net::TcpListener::bind(l.addr)
                    .await
                    .with_context(|| format!("binding http listener on {}", l.addr))?;
                let bound = listener.local_addr()?;
                tracing::info!(kind = "http", addr = %bound, "listening");
                // A stable line on stdout for scripts and tests that start on port 0.
                println!("rampart: listening http {bound}");
                http_urls.push(format!("http://{bound}"));
                let state = app_state.clone();
                let mut rx = stop_rx.clone();
                servers.push(tokio::spawn(async move {
                    let stop = async move {
                        let _ = rx.wait_for(|s| *s).await;
                    };
                    if let Err(e) = rampart_http::serve(listener, state, stop).await {
                        tracing::error!(error = %e, "http server failed");
                    }
                }));
            }
            "https" => {
                let tls = crate::pki::https_config(&cfg, security.as_ref())?;
                let watch = security.as_ref().map(|s| s.watch.clone());
                let listener = tokio::net::TcpListener::bind(l.addr)
                    .await
                    .with_context(|| format!("binding https listener on {}", l.addr))?;
                let bound = listener.local_addr()?;
                tracing::info!(kind = "https", addr = %bound, "listening");
                println!("rampart: listening https {bound}");
                http_urls.push(format!("https://{bound}"));
                // The same API as `http`, over TLS.
                let state = app_state.clone();
                let mut rx = stop_rx.clone();
                servers.push(tokio::spawn(async move {
                    let stop = async move {
                        let _ = rx.wait_for(|s| *s).await;
                    };
                    if let Err(e) = rampart_http::serve_tls(listener, tls, watch, state, stop).await
                    {
                        tracing::error!(error = %e, "https server failed");
                    }
                }));
            }
            "mqtt" | "mqtts" => {
                let Some(edge) = mqtt.clone() else {
                    anyhow::bail!("the MQTT edge did not start");
                };
                crate::mqtt::bind(&cfg, edge, l, security.as_ref()).await?;
            }
            "cot-tcp" | "cot-tls" | "cot-udp" | "cot-mesh" => {
                let Some(edge) = cot.clone() else {
                    anyhow::bail!("the TAK edge did not start");
                };
                bind_cot(&cfg, edge, l, security.as_ref()).await?;
            }
            kind => {
                let Some(&(_, protocol, udp)) = FEED_KINDS.iter().find(|k| k.0 == kind) else {
                    anyhow::bail!("listener kind {kind:?} is not available in this build");
                };
                let input = feed_input(&cfg, &engine, kind, protocol);
                if udp {
                    let socket = tokio::net::UdpSocket::bind(l.addr)
                        .await
                        .with_context(|| format!("binding {kind} listener on {}", l.addr))?;
                    let bound = socket.local_addr()?;
                    tracing::info!(kind, addr = %bound, "listening");
                    println!("rampart: listening {kind} {bound}");
                    // Signed datagrams are verified whenever the node has a PKI.
                    let gate = security
                        .as_ref()
                        .map(|s| s.feed_gate(&cfg, engine.metrics()));
                    tokio::spawn(run_udp_listener_gated(socket, input, gate));
                } else {
                    let listener = tokio::net::TcpListener::bind(l.addr)
                        .await
                        .with_context(|| format!("binding {kind} listener on {}", l.addr))?;
                    let bound = listener.local_addr()?;
                    tracing::info!(kind, addr = %bound, "listening");
                    println!("rampart: listening {kind} {bound}");
                    tokio::spawn(run_tcp_listener(listener, input));
                }
            }
        }
    }
    for up in &cfg.feeds.upstream {
        let kind = format!("{}-upstream", up.protocol.name());
        let input = feed_input(&cfg, &engine, &kind, up.protocol);
        tracing::info!(kind, upstream = %up.addr, "connecting to upstream feed");
        tokio::spawn(run_tcp_connect(up.addr.clone(), input));
    }

    if let Some(url) = http_urls.first() {
        println!(
            "rampart: open {url}/ to see the live picture (API: {url}/api/v1/entities, stream: {url}/api/v1/stream, metrics: {url}/metrics)"
        );
    }
    let mut sim = None;
    match mode {
        Mode::Serve => shutdown_signal().await,
        Mode::Demo(d) => {
            sim = Some(tokio::spawn(run_scenario(engine.clone(), d)));
            shutdown_signal().await;
        }
        Mode::Replay(job) => {
            let serve = job.serve;
            tokio::select! {
                done = run_replay(&cfg, &engine, job) => {
                    done?;
                    if serve {
                        shutdown_signal().await;
                    }
                }
                _ = shutdown_signal() => {}
            }
        }
    }
    tracing::info!("shutting down");
    if let Some(s) = sim.take() {
        s.abort();
    }
    if let Some(m) = &mqtt {
        m.shutdown().await;
    }
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    Ok(())
}

/// Starts the TAK edge: its router, the bridge from other sources and cache pruning.
/// Its router compares each client's clearance with each event's label under `labels`.
fn start_cot(
    cfg: &Config,
    engine: &Arc<Engine>,
    sink: &Arc<dyn ReportSink>,
    labels: &Arc<rampart_labels::Policy>,
) -> Arc<CotEdge> {
    let edge = CotEdge::with_labels(
        cfg.cot.clone(),
        engine.clone(),
        sink.clone(),
        Arc::clone(labels),
    );
    tokio::spawn(rampart_edge_cot::run_bridge(edge.clone()));
    let weak = Arc::downgrade(&edge);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(edge) => edge.prune(),
                None => return,
            }
        }
    });
    edge
}

/// Binds one CoT listener.
async fn bind_cot(
    cfg: &Config,
    edge: Arc<CotEdge>,
    l: &crate::config::ListenSpec,
    security: Option<&crate::pki::NodeSecurity>,
) -> anyhow::Result<()> {
    let kind: &'static str = match l.kind.as_str() {
        "cot-tcp" => "cot-tcp",
        "cot-tls" => "cot-tls",
        "cot-udp" => "cot-udp",
        _ => "cot-mesh",
    };
    let bound = match kind {
        "cot-tcp" | "cot-tls" => {
            let listener = tokio::net::TcpListener::bind(l.addr)
                .await
                .with_context(|| format!("binding {kind} listener on {}", l.addr))?;
            let bound = listener.local_addr()?;
            if kind == "cot-tcp" {
                tokio::spawn(rampart_edge_cot::run_tcp_listener(listener, edge, kind));
            } else {
                let acceptor = crate::pki::cot_tls_acceptor(cfg, security)?;
                tokio::spawn(rampart_edge_cot::run_tls_listener(
                    listener, acceptor, edge, kind,
                ));
            }
            bound
        }
        _ => {
            // cot-mesh: bind the group's port on all interfaces (shared with other TAK apps)
            // and join the group on [cot] mesh_interface; the mesh proxy runs with it.
            match (kind, l.addr) {
                ("cot-mesh", std::net::SocketAddr::V4(g)) if g.ip().is_multicast() => {
                    let socket = rampart_edge_cot::bind_mesh(&edge, g).with_context(|| {
                        format!(
                            "joining multicast group {g} on interface {}",
                            cfg.cot.mesh_interface
                        )
                    })?;
                    let bound = socket.local_addr()?;
                    tokio::spawn(rampart_edge_cot::run_mesh(socket, edge, g));
                    bound
                }
                ("cot-mesh", a) => anyhow::bail!(
                    "--listen cot-mesh={a}: expects an IPv4 multicast group, e.g. 239.2.3.1:6969"
                ),
                (_, a) => {
                    let socket = tokio::net::UdpSocket::bind(a)
                        .await
                        .with_context(|| format!("binding {kind} listener on {a}"))?;
                    let bound = socket.local_addr()?;
                    tokio::spawn(rampart_edge_cot::run_udp_listener(socket, edge, kind));
                    bound
                }
            }
        }
    };
    tracing::info!(kind, addr = %bound, "listening");
    println!("rampart: listening {kind} {bound}");
    Ok(())
}

/// Replays `job` into the engine and waits until every report is durable.
async fn run_replay(cfg: &Config, engine: &Arc<Engine>, job: ReplayJob) -> anyhow::Result<()> {
    use rampart_edge_feeds::{FeedDecoder, Peer, ReplayOptions, replay_file};
    let kind = format!("{}-replay", format!("{:?}", job.format).to_lowercase());
    let sink: Arc<dyn ReportSink> = engine.clone();
    let (batcher, handle) = Batcher::new(sink, FEED_QUEUE_CHUNKS, FEED_BATCH_REPORTS);
    let drained = tokio::spawn(batcher.run());
    let factory: rampart_edge_feeds::DecoderFactory = match job.format {
        ReplayFormat::Nmea => cfg.feeds.protocols.factory(Protocol::Nmea),
        ReplayFormat::Ais => cfg.feeds.protocols.factory(Protocol::Ais),
        ReplayFormat::Sbs => cfg.feeds.protocols.factory(Protocol::Sbs),
        ReplayFormat::Avr => cfg.feeds.protocols.factory(Protocol::Avr),
        ReplayFormat::Cot => Arc::new(|_: &Peer| {
            Box::new(rampart_edge_feeds::adapters::cot::CotFileDecoder::default())
                as Box<dyn FeedDecoder>
        }),
    };
    let input = FeedInput {
        kind: kind.clone(),
        factory,
        batcher: handle,
        metrics: engine.metrics().clone(),
        cfg: cfg.feeds.limits.clone(),
    };
    let started = std::time::Instant::now();
    let stats = replay_file(
        &job.file,
        &input,
        ReplayOptions {
            speed: job.speed,
            ..ReplayOptions::default()
        },
    )
    .await
    .with_context(|| format!("replaying {}", job.file.display()))?;
    drop(input);
    drained.await.context("replay batcher failed")?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rampart: replayed {} ({} bytes): {} reports stored in {:.2} s ({:.0} reports/s)",
        job.file.display(),
        stats.bytes,
        stats.reports,
        secs,
        stats.reports as f64 / secs.max(1e-9),
    );
    engine.refresh_gauges();
    Ok(())
}

/// Builds a feed input of `kind` for `protocol`, with its own batcher task.
pub fn feed_input(cfg: &Config, engine: &Arc<Engine>, kind: &str, protocol: Protocol) -> FeedInput {
    let sink: Arc<dyn ReportSink> = engine.clone();
    let (batcher, handle) = Batcher::new(sink, FEED_QUEUE_CHUNKS, FEED_BATCH_REPORTS);
    tokio::spawn(batcher.run());
    FeedInput {
        kind: kind.to_string(),
        factory: cfg.feeds.protocols.factory(protocol),
        batcher: handle,
        metrics: engine.metrics().clone(),
        cfg: cfg.feeds.limits.clone(),
    }
}

/// Decoded chunks a feed input may queue before its sources wait (TCP) or drop (UDP).
const FEED_QUEUE_CHUNKS: usize = 256;
/// Most reports per engine batch from one feed input.
const FEED_BATCH_REPORTS: usize = 8192;

/// Feeds the scenario into the engine four times a second.
async fn run_scenario(engine: Arc<Engine>, d: DemoOptions) {
    let mut scenario = Scenario::new(
        ScenarioConfig {
            seed: d.seed,
            entities: d.entities,
            ..ScenarioConfig::default()
        },
        Timestamp::now(),
    );
    tracing::info!(entities = scenario.len(), "demo scenario running");
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let reports = scenario.tick(Timestamp::now());
        if reports.is_empty() {
            continue;
        }
        if let Err(e) = engine.ingest(reports).await {
            tracing::error!(error = %e, "demo ingest failed");
        }
    }
}
