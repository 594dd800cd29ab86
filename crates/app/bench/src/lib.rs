//! # rampart-bench
//!
//! Benchmarks that measure Rampart against the targets in BENCHMARKS.md. Each module owns one
//! benchmark and returns its figures as a [`Figures`] table, which `rampart bench` prints.
//! Benchmarks run in release builds only; tests never time anything.

pub mod engine;
pub mod feeds;
mod hist;
pub mod history;
pub mod http;
pub mod mqtt;
pub mod picture;
pub mod rules;
pub mod store_compare;
pub mod tak;
pub mod tls;
pub mod util;

/// Named results of one benchmark run, printed one per line as `name: value unit`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Figures {
    /// The benchmark's name.
    pub bench: String,
    /// `(name, value, unit)` rows in print order.
    pub rows: Vec<(String, f64, String)>,
}

impl Figures {
    /// An empty table for `bench`.
    pub fn new(bench: &str) -> Self {
        Figures {
            bench: bench.to_string(),
            rows: Vec::new(),
        }
    }

    /// Adds one figure.
    pub fn push(&mut self, name: &str, value: f64, unit: &str) {
        self.rows.push((name.to_string(), value, unit.to_string()));
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "== {} ==", self.bench)?;
        for (name, value, unit) in &self.rows {
            writeln!(f, "{name:<40} {value:>16.3} {unit}")?;
        }
        Ok(())
    }
}

/// Runs the benchmark `name` (`engine`, `query`, `memory`, `history`, `track`, `replay`,
/// `http`, `all`, or `store-compare`, which `all` leaves out because it takes minutes, or
/// `rules` (ingest with 10k geofences + 1k rules against none) and `rules-latency`, or
/// `tak-fanout`, `tak-ingest`, `tak-idle` against a running TAK server, see [`tak::run_env`], or
/// `mqtt-qos0`, `mqtt-qos1`, `mqtt-latency`, `mqtt-idle` against a running MQTT broker, see
/// [`mqtt::run_env`]) and
/// prints its figures. `quick` shrinks the sizes for a smoke run.
pub fn run(name: &str, quick: bool, json: bool) -> anyhow::Result<()> {
    let all = name == "all";
    let known = [
        "engine",
        "query",
        "memory",
        "history",
        "track",
        "replay",
        "http",
        "feeds",
        "tls",
        "all",
        "store-compare",
        "rules",
        "rules-latency",
        "tak-fanout",
        "tak-ingest",
        "tak-idle",
        "mqtt-qos0",
        "mqtt-qos1",
        "mqtt-latency",
        "mqtt-idle",
    ];
    if !known.contains(&name) {
        anyhow::bail!("unknown benchmark {name:?} (known: {})", known.join(", "));
    }
    let scale = |full: usize, small: usize| if quick { small } else { full };
    let mut results = Vec::new();
    // Memory first: RSS deltas are only honest before other benchmarks have grown the heap.
    if all || name == "memory" {
        results.push(picture::memory(scale(1_000_000, 50_000), 1));
    }
    if all || name == "engine" {
        results.push(engine::ingest(
            scale(100_000, 10_000),
            scale(5_000_000, 200_000),
            1_000,
        )?);
    }
    if all || name == "query" {
        results.push(picture::query(
            scale(1_000_000, 50_000),
            scale(10_000, 500),
            1,
        ));
    }
    if all || name == "history" {
        results.push(history::bytes_per_report(
            scale(100_000, 5_000),
            scale(3_000_000, 100_000),
            1,
        ));
    }
    if all || name == "track" {
        results.push(history::track(scale(100_000, 5_000), 10, 1));
    }
    if all || name == "replay" {
        results.push(history::replay(
            scale(100_000, 5_000),
            scale(2_000_000, 50_000),
            1,
        ));
    }
    if all || name == "http" {
        results.push(http::ingest(
            scale(100_000, 10_000),
            scale(1_000, 50),
            1_000,
            4,
        )?);
    }
    if all || name == "feeds" {
        results.push(feeds::decode_rates(scale(5_000_000, 200_000)));
        results.push(feeds::replay(
            scale(1_000_000, 50_000),
            scale(20_000, 2_000),
        )?);
    }
    if all || name == "tls" {
        results.push(tls::handshakes(if quick { 1.0 } else { 5.0 }, 64)?);
        results.push(tls::cot_ingest(if quick { 1.0 } else { 5.0 }, 10)?);
    }
    // Rules: ingest with 10k geofences + 1k rules against none, and alert latency.
    if name == "rules" {
        results.push(rules::ingest(
            scale(100_000, 10_000),
            scale(3_000_000, 100_000),
            1_000,
            scale(10_000, 1_000),
            scale(1_000, 100),
        )?);
    }
    if name == "rules-latency" {
        results.push(rules::latency(
            scale(500, 50),
            scale(100_000, 10_000),
            scale(200_000, 20_000),
        )?);
    }
    if name == "store-compare" {
        results.extend(store_compare::compare(quick)?);
    }
    // TAK load against a running server (see `tak::run_env`); never part of `all`.
    if name.starts_with("tak-") {
        results.push(tak::run_env(name, quick)?);
    }
    // MQTT load against a running broker (see `mqtt::run_env`); never part of `all`.
    if name.starts_with("mqtt-") {
        results.push(mqtt::run_env(name, quick)?);
    }
    for f in &results {
        println!("{f}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}
