//! Possible jamming: many entities in one area losing their fix or going silent within a
//! short window. See [`JammingConfig`](crate::config::JammingConfig) for the rule.
//!
//! Losses are kept per grid cell, at most `min_entities` per cell (an alert empties the
//! cell), in at most `max_cells` cells.

use std::collections::VecDeque;

use foldhash::HashMap;
use rampart_model::{Label, Text, Timestamp};

use crate::config::JammingConfig;

/// One entity losing its fix, at its last good position.
#[derive(Clone, Copy, Debug)]
pub struct Loss<'a> {
    /// Entity uid.
    pub uid: &'a str,
    /// Last good latitude.
    pub lat: f64,
    /// Last good longitude.
    pub lon: f64,
    /// The entity's label.
    pub label: &'a Label,
}

/// A possible-jamming detection for one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct AreaLoss {
    /// Grid cell `(row, column)` in units of `cell_deg`.
    pub cell: (i64, i64),
    /// Centroid of the losses, `[lon, lat]`.
    pub center: [f64; 2],
    /// The entities that lost their fix, oldest first.
    pub uids: Vec<Text>,
    /// Their labels, in the same order.
    pub labels: Vec<Label>,
    /// Time from the first loss to the last, milliseconds.
    pub span_ms: i64,
}

#[derive(Debug)]
struct Lost {
    at: i64,
    uid: Text,
    lat: f64,
    lon: f64,
    label: Label,
}

#[derive(Debug, Default)]
struct Cell {
    losses: VecDeque<Lost>,
    alerted_at: Option<i64>,
    last: i64,
}

/// The jamming detector. See the module docs.
#[derive(Debug)]
pub struct JammingDetector {
    cfg: JammingConfig,
    cells: HashMap<(i64, i64), Cell>,
    /// Cells forgotten to stay within `max_cells`.
    pub evicted: u64,
    /// Losses recorded.
    pub losses: u64,
}

impl JammingDetector {
    /// A detector with no cells tracked.
    pub fn new(cfg: JammingConfig) -> Self {
        JammingDetector {
            cfg,
            cells: HashMap::default(),
            evicted: 0,
            losses: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &JammingConfig {
        &self.cfg
    }

    /// Cells tracked.
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// The cell of a position.
    pub fn cell_of(&self, lat: f64, lon: f64) -> (i64, i64) {
        let c = self.cfg.cell_deg.max(1e-6);
        let f = |v: f64| (v / c).floor().clamp(-1e9, 1e9) as i64;
        (f(lat), f(lon))
    }

    fn make_room(&mut self, now: i64) {
        let horizon = now.saturating_sub(self.cfg.window_ms);
        let before = self.cells.len();
        self.cells.retain(|_, c| c.last >= horizon);
        self.evicted += (before - self.cells.len()) as u64;
        while self.cells.len() >= self.cfg.max_cells.max(1) {
            let Some(oldest) = self
                .cells
                .iter()
                .min_by_key(|(_, c)| c.last)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.cells.remove(&oldest);
            self.evicted += 1;
        }
    }

    /// Records one loss at server time `now`; returns the detection when it completes one.
    pub fn record(&mut self, loss: Loss<'_>, now: Timestamp) -> Option<AreaLoss> {
        if !self.cfg.enabled || !loss.lat.is_finite() || !loss.lon.is_finite() {
            return None;
        }
        let now_ms = now.millis();
        let key = self.cell_of(loss.lat, loss.lon);
        if !self.cells.contains_key(&key) && self.cells.len() >= self.cfg.max_cells.max(1) {
            self.make_room(now_ms);
        }
        self.losses += 1;
        let window = self.cfg.window_ms;
        let min = self.cfg.min_entities.max(1);
        let cell = self.cells.entry(key).or_default();
        cell.last = now_ms;
        if let Some(at) = cell.alerted_at {
            if now_ms.saturating_sub(at) < window {
                // Part of the episode already alerted.
                return None;
            }
            cell.alerted_at = None;
        }
        let horizon = now_ms.saturating_sub(window);
        while cell.losses.front().is_some_and(|l| l.at < horizon) {
            cell.losses.pop_front();
        }
        cell.losses.retain(|l| l.uid != loss.uid);
        cell.losses.push_back(Lost {
            at: now_ms,
            uid: Text::from(loss.uid),
            lat: loss.lat,
            lon: loss.lon,
            label: loss.label.clone(),
        });
        if cell.losses.len() < min {
            return None;
        }
        let lost: Vec<Lost> = cell.losses.drain(..).collect();
        cell.alerted_at = Some(now_ms);
        let n = lost.len() as f64;
        let center = [
            lost.iter().map(|l| l.lon).sum::<f64>() / n,
            lost.iter().map(|l| l.lat).sum::<f64>() / n,
        ];
        let span_ms = lost.last().map_or(0, |l| l.at) - lost.first().map_or(0, |l| l.at);
        let (uids, labels) = lost.into_iter().map(|l| (l.uid, l.label)).unzip();
        Some(AreaLoss {
            cell: key,
            center,
            uids,
            labels,
            span_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg() -> JammingConfig {
        JammingConfig {
            cell_deg: 0.5,
            window_ms: 60_000,
            min_entities: 5,
            max_cells: 100,
            ..JammingConfig::default()
        }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + ms)
    }

    fn lose(d: &mut JammingDetector, uid: &str, lat: f64, lon: f64, at: i64) -> Option<AreaLoss> {
        let label = Label::unclassified();
        d.record(
            Loss {
                uid,
                lat,
                lon,
                label: &label,
            },
            t(at),
        )
    }

    #[test]
    fn five_losses_in_one_cell_within_the_window_raise_one_alert() {
        let mut d = JammingDetector::new(cfg());
        let mut alerts = Vec::new();
        for i in 0..8 {
            if let Some(a) = lose(
                &mut d,
                &format!("u{i}"),
                48.1 + i as f64 * 0.01,
                2.1,
                i * 1_000,
            ) {
                alerts.push(a);
            }
        }
        assert_eq!(alerts.len(), 1, "one alert per episode");
        let a = &alerts[0];
        assert_eq!(a.uids.len(), 5);
        assert_eq!(a.uids[0], "u0");
        assert_eq!(a.span_ms, 4_000);
        assert!((a.center[1] - 48.12).abs() < 1e-9);
        // After the window, a new episode can alert again.
        let mut again = 0;
        for i in 0..5 {
            again += usize::from(lose(&mut d, &format!("v{i}"), 48.2, 2.2, 70_000 + i).is_some());
        }
        assert_eq!(again, 1);
    }

    #[test]
    fn spread_out_or_slow_losses_do_not_alert() {
        let mut d = JammingDetector::new(cfg());
        // Five losses in five different cells.
        for i in 0..5 {
            assert!(lose(&mut d, &format!("u{i}"), 40.0 + i as f64, 2.0, 0).is_none());
        }
        // Five losses in one cell, 20 s apart: never five within 60 s.
        for i in 0..5 {
            assert!(lose(&mut d, &format!("w{i}"), 30.1, 2.1, i * 20_000).is_none());
        }
        // The same entity lost five times is one entity.
        for i in 0..5 {
            assert!(lose(&mut d, "same", 20.1, 2.1, i).is_none());
        }
    }

    #[test]
    fn cells_are_bounded() {
        let mut d = JammingDetector::new(JammingConfig {
            max_cells: 10,
            ..cfg()
        });
        for i in 0..100 {
            lose(&mut d, "u", -80.0 + i as f64, 2.0, i);
        }
        assert!(d.cells() <= 10);
        assert_eq!(d.evicted, 90);
        let mut d = JammingDetector::new(JammingConfig {
            enabled: false,
            ..cfg()
        });
        for i in 0..10 {
            assert!(lose(&mut d, &format!("u{i}"), 48.1, 2.1, i).is_none());
        }
        assert_eq!(d.cells(), 0);
    }

    #[test]
    fn cell_of_handles_negative_coordinates() {
        let d = JammingDetector::new(cfg());
        assert_eq!(d.cell_of(-0.1, -0.1), (-1, -1));
        assert_eq!(d.cell_of(0.1, 0.1), (0, 0));
        assert_eq!(d.cell_of(0.6, 179.9), (1, 359));
    }
}
