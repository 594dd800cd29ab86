//! Starting a node: open the history, rebuild the engine, bind the listeners, run until
//! Ctrl-C or SIGTERM. `demo` adds the scenario simulator as one more report source.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
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

/// Runs a node with `cfg` until a shutdown signal.
pub fn run(cfg: Config, demo: Option<DemoOptions>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rampart")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(cfg, demo))
}

async fn run_async(cfg: Config, demo: Option<DemoOptions>) -> anyhow::Result<()> {
    let listeners = cfg.listeners()?;
    std::fs::create_dir_all(&cfg.data)
        .with_context(|| format!("creating data directory {}", cfg.data.display()))?;
    let history = SegmentLog::open(cfg.history_config())
        .with_context(|| format!("opening history under {}", cfg.data.display()))?;
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::open(cfg.engine_config(), history, metrics)?;
    let _maintenance = engine.spawn_maintenance();
    let sink: Arc<dyn ReportSink> = engine.clone();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let mut http_urls = Vec::new();
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
                let state = AppState::new(
                    engine.clone(),
                    sink.clone(),
                    cfg.http.clone(),
                    cfg.limits.clone(),
                );
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
            other => anyhow::bail!("listener kind {other:?} is not available in this build"),
        }
    }

    let sim = demo.map(|d| {
        let engine = engine.clone();
        tokio::spawn(run_scenario(engine, d))
    });
    if let Some(url) = http_urls.first() {
        println!(
            "rampart: open {url}/ to see the live picture (API: {url}/api/v1/entities, stream: {url}/api/v1/stream, metrics: {url}/metrics)"
        );
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    if let Some(s) = sim {
        s.abort();
    }
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    Ok(())
}

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
