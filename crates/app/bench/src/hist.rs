//! The latency histogram the load generators share: log-bucketed microseconds, 2 %
//! resolution, up to about ten minutes.

/// Log-bucketed latency histogram in microseconds (2% resolution, up to ~10 minutes).
#[derive(Clone, Debug)]
pub(crate) struct Hist {
    buckets: Vec<u64>,
    count: u64,
    /// The largest value recorded, in microseconds.
    pub(crate) max_us: u64,
}

const HIST_GROWTH: f64 = 1.02;
const HIST_BUCKETS: usize = 1100;

impl Hist {
    pub(crate) fn new() -> Self {
        Hist {
            buckets: vec![0; HIST_BUCKETS],
            count: 0,
            max_us: 0,
        }
    }

    pub(crate) fn record(&mut self, us: u64) {
        let i = ((us as f64 + 1.0).ln() / HIST_GROWTH.ln()) as usize;
        self.buckets[i.min(HIST_BUCKETS - 1)] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    pub(crate) fn merge(&mut self, other: &Hist) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The `q` quantile in milliseconds (bucket upper bound, capped at the maximum).
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let rank = ((self.count as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = HIST_GROWTH.powi(i as i32 + 1) - 1.0;
                return upper.min(self.max_us as f64) / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }
}
