//! HTTP ingest benchmark: a node on a loopback port, several client connections posting
//! batches of 1,000 JSON reports, counted once acknowledged (durable).

use std::sync::Arc;
use std::time::Instant;

use rampart_engine::{Engine, EngineConfig, Metrics, ReportSink};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_http::{AppState, HttpConfig};
use rampart_model::{Limits, Timestamp};

use crate::Figures;
use crate::engine::{next_batch, templates};

/// Posts `bodies` bodies of `batch` reports over `connections` concurrent connections.
pub fn ingest(
    entities: usize,
    bodies: usize,
    batch: usize,
    connections: usize,
) -> anyhow::Result<Figures> {
    // Pre-serialise every body so the client's cost is only sending.
    let templates = templates(entities);
    let base = Timestamp::now();
    let mut cursor = 0;
    let mut buf = Vec::new();
    let mut payloads: Vec<bytes::Bytes> = Vec::with_capacity(bodies);
    for _ in 0..bodies {
        next_batch(&templates, &mut cursor, base, &mut buf, batch);
        let mut body = Vec::with_capacity(batch * 300);
        body.push(b'[');
        for (i, r) in buf.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend(rampart_codec_json::encode_report(r));
        }
        body.push(b']');
        payloads.push(body.into());
    }
    let body_bytes: usize = payloads.iter().map(|b| b.len()).sum();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dir = tempfile::tempdir()?;
        let history = SegmentLog::open(SegmentLogConfig::new(dir.path()))?;
        let store: Arc<dyn HistoryStore> = history;
        let engine = Engine::open(EngineConfig::default(), store, Arc::new(Metrics::new()))?;
        let sink: Arc<dyn ReportSink> = engine.clone();
        let state = AppState::new(
            engine.clone(),
            sink,
            HttpConfig::default(),
            Limits::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(rampart_http::serve(listener, state, std::future::pending()));

        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .build()?;
        let url = format!("http://{addr}/api/v1/reports");
        let payloads = Arc::new(payloads);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let client = client.clone();
            let url = url.clone();
            let payloads = payloads.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                let mut accepted = 0u64;
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = payloads.get(i) else { break };
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = resp.status();
                    let v: serde_json::Value = resp.json().await?;
                    anyhow::ensure!(status.is_success(), "HTTP {status}: {v}");
                    accepted += v["accepted"].as_u64().unwrap_or(0);
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                anyhow::Ok((accepted, latencies))
            }));
        }
        let mut accepted = 0;
        let mut latencies = Vec::new();
        for t in tasks {
            let (a, l) = t.await??;
            accepted += a;
            latencies.extend(l);
        }
        let elapsed = started.elapsed();
        server.abort();
        let mut f = Figures::new("http ingest");
        f.push("connections", connections as f64, "");
        f.push("reports per body", batch as f64, "");
        f.push("mean body size", body_bytes as f64 / bodies as f64, "bytes");
        f.push("reports acknowledged", accepted as f64, "");
        f.push(
            "throughput (acknowledged, durable)",
            accepted as f64 / elapsed.as_secs_f64(),
            "reports/s",
        );
        f.push(
            "request latency p50",
            crate::util::quantile(&mut latencies, 0.5),
            "ms",
        );
        f.push(
            "request latency p99",
            crate::util::quantile(&mut latencies, 0.99),
            "ms",
        );
        Ok(f)
    })
}
