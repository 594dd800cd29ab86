//! Rules benchmarks.
//!
//! - `rules`: engine ingest (durable history + fold) over 100,000 moving entities, first with
//!   no rules, then with 10,000 geofences (polygons, circles, corridors) and 1,000 other rules
//!   (proximity, lost comms, thresholds) attached, in one run; reports/s of both and the ratio.
//! - `rules-latency`: a node (engine, rules, HTTP) under background load; a probe entity
//!   posted over HTTP crosses into a geofence again and again, and the time from the POST to
//!   the alert on the WebSocket stream is measured (p50, p99).
//!
//! `RAMPART_BENCH_RULES_SKIP` (comma-separated `fences`, `prox`, `other`) leaves parts of the
//! definitions out, to see what each costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_engine::{Engine, EngineConfig, Metrics, ReportSink};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{AttrValue, Provenance, Report, Text, Timestamp};
use rampart_rules::{
    Cmp, Filter, Geofence, Priority, Rule, RuleKind, RulesConfig, RulesService, Shape, Triggers,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::Figures;
use crate::util::quantile;

const TYPES: &[&str] = &[
    "a-f-G-U-C-I",
    "a-f-G-E-V-A",
    "a-f-G-U-C-R",
    "a-f-A-M-H",
    "a-n-G-E-V",
    "a-u-G",
    "a-f-S-X",
    "a-f-G-U-C-F",
    "a-n-S-X-M",
    "a-h-G-U-C",
];

/// Area of the entities: lat 30..60, lon -10..-5 (1000 rows × 100 columns).
fn templates(entities: usize) -> Vec<Report> {
    (0..entities)
        .map(|i| {
            let lat = 30.0 + (i % 1000) as f64 * 0.03;
            let lon = -10.0 + (i / 1000) as f64 * 0.05;
            let mut r = Report::new(&format!("unit-{i:07}"), lat, lon, Timestamp(0));
            r.cot_type = Some(Text::from(TYPES[i % TYPES.len()]));
            r.callsign = Some(Text::from(format!("VIPER {i}").as_str()));
            r.how = Some(Text::const_new("m-g"));
            r.speed = Some(12.5);
            r.provenance = Provenance::new("bench", "bench");
            r
        })
        .collect()
}

/// The next batch: each entity circles (radius about 1 km, 20 steps a lap), battery drains.
fn next_batch(t: &[Report], cursor: &mut usize, base: Timestamp, out: &mut Vec<Report>, n: usize) {
    out.clear();
    for _ in 0..n {
        let i = *cursor % t.len();
        let round = *cursor / t.len();
        let mut r = t[i].clone();
        let phase = i as f64 * 0.7 + round as f64 * std::f64::consts::TAU / 20.0;
        r.time = base.plus_millis(round as i64 * 1000);
        r.stale = Some(r.time.plus_millis(600_000));
        r.lat += 0.009 * phase.sin();
        r.lon += 0.012 * phase.cos();
        r.attributes.insert(
            Text::const_new("battery"),
            AttrValue::Num(100.0 - ((i + round * 3) % 100) as f64),
        );
        out.push(r);
        *cursor += 1;
    }
}

/// `fences` geofences and `rules` other rules over the entity area (deterministic).
pub fn definitions(fences: usize, rules: usize, entities: usize) -> (Vec<Geofence>, Vec<Rule>) {
    let mut rng = SmallRng::seed_from_u64(9);
    let mut gs = Vec::with_capacity(fences);
    let fences = if std::env::var("RAMPART_BENCH_RULES_SKIP")
        .unwrap_or_default()
        .contains("fences")
    {
        0
    } else {
        fences
    };
    for i in 0..fences {
        let lat: f64 = rng.random_range(30.0..60.0);
        let lon: f64 = rng.random_range(-10.0..-5.0);
        let triggers = Triggers {
            enter: true,
            exit: i % 3 == 0,
            dwell_secs: (i % 5 == 0).then_some(600.0),
            count_above: (i % 7 == 0).then_some(5),
        };
        let filter = if i % 4 == 0 {
            Filter {
                types: vec!["a-f-G".into()],
                uids: vec![],
            }
        } else {
            Filter::default()
        };
        let shape = match i % 5 {
            0..=2 => {
                let r_m = rng.random_range(1000.0..4000.0);
                let n = rng.random_range(6..14);
                let exterior = (0..n)
                    .map(|k| {
                        let a = k as f64 / n as f64 * std::f64::consts::TAU;
                        let rr = r_m * rng.random_range(0.7..1.0);
                        [
                            lon + rr * a.cos() / (111_000.0 * lat.to_radians().cos()),
                            lat + rr * a.sin() / 111_000.0,
                        ]
                    })
                    .collect();
                Shape::Polygon {
                    exterior,
                    holes: vec![],
                }
            }
            3 => Shape::Circle {
                center: [lon, lat],
                radius_m: rng.random_range(500.0..3000.0),
            },
            _ => {
                let pts = rng.random_range(3..6);
                let mut line = vec![[lon, lat]];
                for _ in 1..pts {
                    let [x, y] = line[line.len() - 1];
                    line.push([
                        x + rng.random_range(-0.03..0.03),
                        y + rng.random_range(-0.03..0.03),
                    ]);
                }
                Shape::Corridor {
                    line,
                    width_m: rng.random_range(200.0..1000.0),
                }
            }
        };
        gs.push(Geofence {
            id: format!("gf-{i}"),
            name: String::new(),
            shape,
            filter,
            triggers,
            priority: Priority::Normal,
            enabled: true,
        });
    }
    // Rules apply to groups of 100 units (a convoy, a platoon), like a fleet manager's.
    let group = |rng: &mut SmallRng| -> Vec<String> {
        let start = rng.random_range(0..entities.saturating_sub(100).max(1));
        (start..start + 100)
            .map(|i| format!("unit-{i:07}"))
            .collect()
    };
    let mut rs = Vec::with_capacity(rules);
    let skip = std::env::var("RAMPART_BENCH_RULES_SKIP").unwrap_or_default();
    for i in 0..rules {
        if (skip.contains("prox") && i % 10 >= 7) || (skip.contains("other") && i % 10 < 7) {
            continue;
        }
        let kind = match i % 10 {
            0..=3 => RuleKind::Threshold {
                filter: Filter {
                    types: vec![],
                    uids: group(&mut rng),
                },
                attribute: "battery".into(),
                raise: Cmp::Below(15.0),
                clear: Some(Cmp::Above(18.0)),
                min_duration_secs: 5.0,
            },
            4..=6 => RuleKind::LostComms {
                filter: Filter {
                    types: vec![],
                    uids: group(&mut rng),
                },
                after_secs: 120.0,
            },
            _ => RuleKind::Proximity {
                a: Filter {
                    types: vec![],
                    uids: group(&mut rng),
                },
                b: Filter {
                    types: vec!["a-h".into()],
                    uids: vec![],
                },
                distance_m: 2000.0,
            },
        };
        rs.push(Rule {
            id: format!("rule-{i}"),
            name: String::new(),
            rule: kind,
            priority: Priority::Normal,
            enabled: true,
        });
    }
    (gs, rs)
}

struct Run {
    folded: f64,
    durable: f64,
    /// Reports per CPU second of the ingesting thread (fold, history encode, rules): less
    /// sensitive than wall time to other processes on a shared machine.
    per_cpu: f64,
}

/// CPU seconds (user + system) of the calling thread, from `/proc/thread-self/stat`.
fn thread_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn best(a: Option<Run>, b: Run) -> Run {
    match a {
        Some(a) => Run {
            folded: a.folded.max(b.folded),
            durable: a.durable.max(b.durable),
            per_cpu: a.per_cpu.max(b.per_cpu),
        },
        None => b,
    }
}

fn run_ingest(
    entities: usize,
    reports: usize,
    batch: usize,
    rules: Option<&Arc<RulesService>>,
    engine_metrics: Arc<Metrics>,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let history = SegmentLog::open(SegmentLogConfig::new(dir.path()))?;
    let store: Arc<dyn HistoryStore> = history.clone();
    let engine = Engine::open(EngineConfig::default(), store.clone(), engine_metrics)?;
    if let Some(r) = rules {
        r.attach(&engine).map_err(anyhow::Error::msg)?;
    }
    let templates = templates(entities);
    let base = Timestamp::now();
    let mut cursor = 0;
    let mut buf = Vec::with_capacity(batch);
    let started = Instant::now();
    let cpu0 = thread_cpu_secs();
    let mut last_tick = Instant::now();
    let mut last_ticket = 0;
    let mut done = 0;
    while done < reports {
        let n = batch.min(reports - done);
        next_batch(&templates, &mut cursor, base, &mut buf, n);
        let receipt = engine.ingest_now(std::mem::take(&mut buf), Timestamp::now())?;
        last_ticket = receipt.ticket;
        done += n;
        buf = Vec::with_capacity(batch);
        // The node's sweep runs the time-based triggers once a second; so does this loop.
        if last_tick.elapsed() >= Duration::from_secs(1) {
            engine.sweep(Timestamp::now());
            last_tick = Instant::now();
        }
    }
    let folded = started.elapsed();
    let cpu = thread_cpu_secs() - cpu0;
    store.wait_durable(last_ticket)?;
    let durable = started.elapsed();
    Ok(Run {
        folded: reports as f64 / folded.as_secs_f64(),
        durable: reports as f64 / durable.as_secs_f64(),
        per_cpu: reports as f64 / cpu,
    })
}

/// Ingest without and with rules, in one run.
pub fn ingest(
    entities: usize,
    reports: usize,
    batch: usize,
    fences: usize,
    rules: usize,
) -> anyhow::Result<Figures> {
    // Alternate the two runs twice and keep the best of each: on a shared machine the best
    // run is the least disturbed one.
    let (gs, rs) = definitions(fences, rules, entities);
    let mut base: Option<Run> = None;
    let mut with: Option<Run> = None;
    let mut last = None;
    let mut load_ms = 0.0;
    for _ in 0..2 {
        let b = run_ingest(entities, reports, batch, None, Arc::new(Metrics::new()))?;
        let metrics = Arc::new(Metrics::new());
        let svc = RulesService::open(RulesConfig::default(), None, &metrics)
            .map_err(anyhow::Error::msg)?;
        let t = Instant::now();
        svc.put_geofences(gs.clone(), true)?;
        svc.put_rules(rs.clone(), true)?;
        load_ms = t.elapsed().as_secs_f64() * 1000.0;
        let events = svc.subscribe();
        let w = run_ingest(entities, reports, batch, Some(&svc), metrics)?;
        base = Some(best(base, b));
        with = Some(best(with, w));
        last = Some((svc, events));
    }
    let (Some(base), Some(with), Some((svc, mut events))) = (base, with, last) else {
        anyhow::bail!("no run");
    };
    let mut raised = 0u64;
    let mut cleared = 0u64;
    loop {
        match events.try_recv() {
            Ok(e) if e.event == rampart_rules::AlertState::Raised => raised += 1,
            Ok(_) => cleared += 1,
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => raised += n,
            Err(_) => break,
        }
    }
    let active = svc
        .alerts(&rampart_rules::AlertQuery {
            limit: usize::MAX,
            state: Some(rampart_rules::AlertState::Raised),
            ..Default::default()
        })
        .len();
    let mut f = Figures::new(
        "rules: ingest with 10k geofences + 1k rules vs none (best of 2 alternating runs each)",
    );
    f.push("entities", entities as f64, "");
    f.push("reports", reports as f64, "");
    f.push("batch size", batch as f64, "reports");
    f.push("geofences", fences as f64, "");
    f.push("other rules", rules as f64, "");
    f.push("definitions load time", load_ms, "ms");
    f.push("no rules: throughput (folded)", base.folded, "reports/s");
    f.push("no rules: throughput (durable)", base.durable, "reports/s");
    f.push("rules: throughput (folded)", with.folded, "reports/s");
    f.push("rules: throughput (durable)", with.durable, "reports/s");
    f.push(
        "no rules: per ingest-thread CPU second",
        base.per_cpu,
        "reports/s",
    );
    f.push(
        "rules: per ingest-thread CPU second",
        with.per_cpu,
        "reports/s",
    );
    f.push(
        "slowdown (CPU, none / rules)",
        base.per_cpu / with.per_cpu,
        "x",
    );
    f.push(
        "slowdown (durable, none / rules)",
        base.durable / with.durable,
        "x",
    );
    f.push(
        "alert events (last 4096 counted exactly)",
        (raised + cleared) as f64,
        "",
    );
    f.push("active raised alerts at end", active as f64, "");
    Ok(f)
}

/// Report → WebSocket alert latency on a loaded node.
pub fn latency(
    samples: usize,
    background_entities: usize,
    background_rate: usize,
) -> anyhow::Result<Figures> {
    use futures_util::StreamExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dir = tempfile::tempdir()?;
        let history = SegmentLog::open(SegmentLogConfig::new(dir.path()))?;
        let store: Arc<dyn HistoryStore> = history.clone();
        let metrics = Arc::new(Metrics::new());
        let engine = Engine::open(EngineConfig::default(), store, metrics.clone())?;
        let _maintenance = engine.spawn_maintenance();
        let svc = RulesService::open(RulesConfig::default(), Some(dir.path().join("rules")), &metrics)
            .map_err(anyhow::Error::msg)?;
        let (gs, rs) = definitions(10_000, 1_000, background_entities);
        svc.put_geofences(gs, true)?;
        svc.put_rules(rs, true)?;
        let probe_fence: Geofence = serde_json::from_str(
            r#"{"id":"probe","shape":{"type":"circle","center":[100,0],"radius_m":1000},"filter":{"uids":["probe"]},"triggers":{"enter":true}}"#,
        )?;
        svc.put_geofences(vec![probe_fence], true)?;
        svc.attach(&engine).map_err(anyhow::Error::msg)?;
        let sink: Arc<dyn ReportSink> = engine.clone();
        let state = rampart_http::AppState::new(
            engine.clone(),
            sink,
            rampart_http::HttpConfig::default(),
            rampart_model::Limits::default(),
        )
        .with_rules(svc.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(rampart_http::serve(listener, state, std::future::pending()));

        // Background load on a blocking thread: batches of 1000 at the given rate.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bg = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let t = templates(background_entities);
                let base = Timestamp::now();
                let mut cursor = 0;
                let mut buf = Vec::new();
                let started = Instant::now();
                let mut sent = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    next_batch(&t, &mut cursor, base, &mut buf, 1000);
                    let _ = engine.ingest_now(std::mem::take(&mut buf), Timestamp::now());
                    sent += 1000;
                    let due = Duration::from_secs_f64(sent as f64 / background_rate.max(1) as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                sent as f64 / started.elapsed().as_secs_f64()
            })
        };

        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?bbox=99,-1,101,1")).await?;
        // Wait for the snapshot: then the stream is subscribed.
        while let Some(Ok(m)) = ws.next().await {
            if m.to_text().is_ok_and(|t| t.contains("\"snapshot\"")) {
                break;
            }
        }
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/api/v1/reports");
        let mut lat_ms = Vec::with_capacity(samples);
        for i in 0..samples * 2 {
            let inside = i % 2 == 1;
            let body = serde_json::json!([{
                "uid": "probe", "type": "a-f-G", "lat": if inside { 0.0 } else { 0.5 }, "lon": 100.0,
                "time": Timestamp::now().to_rfc3339()
            }]);
            let sent = Instant::now();
            let resp = client.post(&url).json(&body).send().await?;
            anyhow::ensure!(resp.status().is_success(), "probe report refused: {}", resp.status());
            if !inside {
                continue; // leaving clears the alert, so the next entry raises again
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(Some(Ok(m))) = tokio::time::timeout(left, ws.next()).await else {
                    anyhow::bail!("no alert within 5 s");
                };
                let Ok(t) = m.to_text() else { continue };
                if t.contains("\"type\":\"alert\"") && t.contains("\"raised\"") && t.contains("probe") {
                    lat_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rate = bg.join().unwrap_or(0.0);
        let mut f = Figures::new("rules: alert latency, report POST to WebSocket alert");
        f.push("samples", lat_ms.len() as f64, "");
        f.push("background load", rate, "reports/s");
        f.push("background entities", background_entities as f64, "");
        f.push("p50", quantile(&mut lat_ms, 0.5), "ms");
        f.push("p99", quantile(&mut lat_ms, 0.99), "ms");
        f.push("max", quantile(&mut lat_ms, 1.0), "ms");
        Ok(f)
    })
}
