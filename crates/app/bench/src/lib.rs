//! # rampart-bench
//!
//! Benchmarks that measure Rampart against the targets in BENCHMARKS.md. Each module owns one
//! benchmark and returns its figures as a [`Figures`] table, which `rampart bench` prints.
//! Benchmarks run in release builds only; tests never time anything.

pub mod history;
pub mod picture;
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
