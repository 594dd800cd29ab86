//! Engine ingest benchmark: reports deduplicated, appended to durable history (real fsync,
//! group commit) and folded into the live picture, as fast as one producer can feed them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rampart_engine::{Engine, EngineConfig, Metrics};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{Provenance, Report, Text, Timestamp};

use crate::Figures;

/// A template report per entity; batches copy these with a new time and position.
pub(crate) fn templates(entities: usize) -> Vec<Report> {
    (0..entities)
        .map(|i| {
            let lat = 30.0 + (i % 1000) as f64 * 0.03;
            let lon = -10.0 + (i / 1000) as f64 * 0.05;
            let mut r = Report::new(&format!("unit-{i:07}"), lat, lon, Timestamp(0));
            r.cot_type = Some(Text::const_new("a-f-G-U-C"));
            r.callsign = Some(Text::from(format!("VIPER {i}").as_str()));
            r.how = Some(Text::const_new("m-g"));
            r.hae = Some(42.0);
            r.ce = Some(10.0);
            r.course = Some((i % 360) as f64);
            r.speed = Some(12.5);
            r.provenance = Provenance::new("bench", "bench");
            r
        })
        .collect()
}

/// Fills `out` with the next batch: `n` reports cycling over the templates.
pub(crate) fn next_batch(
    templates: &[Report],
    cursor: &mut usize,
    base: Timestamp,
    out: &mut Vec<Report>,
    n: usize,
) {
    out.clear();
    for _ in 0..n {
        let i = *cursor % templates.len();
        let round = (*cursor / templates.len()) as i64;
        let mut r = templates[i].clone();
        r.time = base.plus_millis(round * 1000);
        r.stale = Some(r.time.plus_millis(60_000));
        r.lat += round as f64 * 1e-4;
        r.lon += round as f64 * 1e-4;
        out.push(r);
        *cursor += 1;
    }
}

/// Ingests `reports` reports over `entities` distinct entities in batches of `batch`.
pub fn ingest(entities: usize, reports: usize, batch: usize) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let history = SegmentLog::open(SegmentLogConfig::new(dir.path()))?;
    let store: Arc<dyn HistoryStore> = history.clone();
    let engine = Engine::open(
        EngineConfig::default(),
        store.clone(),
        Arc::new(Metrics::new()),
    )?;

    // Count group commits from the durable watch on a side thread.
    let commits = Arc::new(AtomicU64::new(0));
    let counter = commits.clone();
    let mut watch = store.durable();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let watcher = std::thread::spawn(move || {
        rt.block_on(async move {
            while watch.changed().await.is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
                if watch.borrow().ticket == u64::MAX {
                    break;
                }
            }
        })
    });

    let templates = templates(entities);
    let base = Timestamp::now();
    let mut cursor = 0;
    let mut buf = Vec::with_capacity(batch);
    let started = Instant::now();
    let mut last_ticket = 0;
    let mut done = 0;
    while done < reports {
        let n = batch.min(reports - done);
        next_batch(&templates, &mut cursor, base, &mut buf, n);
        let receipt = engine.ingest_now(std::mem::take(&mut buf), base)?;
        last_ticket = receipt.ticket;
        done += n;
        buf = Vec::with_capacity(batch);
    }
    let folded = started.elapsed();
    store.wait_durable(last_ticket)?;
    let elapsed = started.elapsed();
    let commit_count = commits.load(Ordering::Relaxed).max(1);
    drop(watcher);

    let mut f = Figures::new("engine ingest");
    f.push("entities", entities as f64, "");
    f.push("reports", reports as f64, "");
    f.push("batch size", batch as f64, "reports");
    f.push(
        "throughput (durable)",
        reports as f64 / elapsed.as_secs_f64(),
        "reports/s",
    );
    f.push(
        "throughput (folded)",
        reports as f64 / folded.as_secs_f64(),
        "reports/s",
    );
    f.push("group commits", commit_count as f64, "");
    f.push(
        "mean commit interval",
        elapsed.as_secs_f64() * 1000.0 / commit_count as f64,
        "ms",
    );
    f.push("live entities", engine.picture().len() as f64, "");
    f.push("history bytes", store.stats().bytes as f64, "bytes");
    Ok(f)
}
