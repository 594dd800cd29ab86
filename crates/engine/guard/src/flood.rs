//! Floods: per (source, identity) rate learning and throttling. See
//! [`FloodConfig`](crate::config::FloodConfig) for the rule.
//!
//! State is one small record per tracked identity, in a map bounded by `max_identities`: the
//! least recently active identity is forgotten first (an LRU index touched once per window,
//! not per report, to keep the per-report cost at two hash lookups).

use std::collections::BTreeMap;

use foldhash::HashMap;
use rampart_model::{Text, Timestamp};

use crate::config::FloodConfig;

/// Empty windows beyond this many decay the learned rate no further (it is then ~0).
const MAX_DECAY_WINDOWS: i64 = 256;

#[derive(Debug)]
struct Ident {
    window_start: i64,
    count: u64,
    refused: u64,
    /// Learned rate, reports per second.
    learned: f64,
    /// Start of the current throttling episode.
    episode: Option<i64>,
    lru: u64,
}

/// What the detector decided about one report.
#[derive(Clone, Debug, PartialEq)]
pub enum RateVerdict {
    /// Within its budget (or exempt).
    Pass,
    /// Over its budget: refuse it.
    Throttle {
        /// The budget of the window, reports per second.
        budget_per_sec: f64,
        /// The learned rate, reports per second.
        learned_per_sec: f64,
        /// `Some(start)` for the first refusal of an episode: raise the alert.
        episode_started: Option<Timestamp>,
    },
}

/// The flood detector. See the module docs.
#[derive(Debug)]
pub struct FloodDetector {
    cfg: FloodConfig,
    by_source: HashMap<Text, HashMap<Text, Ident>>,
    lru: BTreeMap<u64, (Text, Text)>,
    next_lru: u64,
    len: usize,
    /// Identities forgotten to stay within `max_identities`.
    pub evicted: u64,
    /// Episodes started.
    pub episodes: u64,
}

/// Whether `source` matches a pattern: exact, `*suffix` or `prefix*`.
fn matches(pattern: &str, source: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return source.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return source.starts_with(prefix);
    }
    pattern == source
}

impl FloodDetector {
    /// A detector with no identities tracked.
    pub fn new(cfg: FloodConfig) -> Self {
        FloodDetector {
            cfg,
            by_source: HashMap::default(),
            lru: BTreeMap::new(),
            next_lru: 0,
            len: 0,
            evicted: 0,
            episodes: 0,
        }
    }

    /// Identities tracked.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none are tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `source` is exempt from throttling.
    pub fn is_exempt(&self, source: &str) -> bool {
        self.cfg.exempt_sources.iter().any(|p| matches(p, source))
    }

    /// The learned rate of an identity, reports per second, if tracked.
    pub fn learned(&self, source: &str, identity: &str) -> Option<f64> {
        self.by_source
            .get(source)
            .and_then(|m| m.get(identity))
            .map(|i| i.learned)
    }

    fn evict_one(&mut self) {
        if let Some((_, (source, identity))) = self.lru.pop_first() {
            if let Some(m) = self.by_source.get_mut(&source) {
                if m.remove(&identity).is_some() {
                    self.len -= 1;
                    self.evicted += 1;
                }
                if m.is_empty() {
                    self.by_source.remove(&source);
                }
            }
        }
    }

    /// Counts one report of (`source`, `identity`) at server time `now` and decides.
    pub fn check(&mut self, source: &str, identity: &str, now: Timestamp) -> RateVerdict {
        if !self.cfg.enabled || self.is_exempt(source) {
            return RateVerdict::Pass;
        }
        let now_ms = now.millis();
        let w = self.cfg.window_ms.max(1);
        let known = self
            .by_source
            .get(source)
            .is_some_and(|m| m.contains_key(identity));
        if !known {
            while self.len >= self.cfg.max_identities.max(1) && !self.lru.is_empty() {
                self.evict_one();
            }
            let seq = self.next_lru;
            self.next_lru += 1;
            self.lru
                .insert(seq, (Text::from(source), Text::from(identity)));
            self.by_source
                .entry(Text::from(source))
                .or_default()
                .insert(
                    Text::from(identity),
                    Ident {
                        window_start: now_ms,
                        count: 0,
                        refused: 0,
                        learned: self.cfg.initial_rate_per_sec,
                        episode: None,
                        lru: seq,
                    },
                );
            self.len += 1;
        }
        let alpha = self.cfg.ewma_alpha;
        let Some(id) = self
            .by_source
            .get_mut(source)
            .and_then(|m| m.get_mut(identity))
        else {
            return RateVerdict::Pass;
        };
        let mut touched = None;
        if now_ms >= id.window_start.saturating_add(w) {
            let windows = (now_ms - id.window_start) / w;
            let secs = w as f64 / 1000.0;
            if id.refused == 0 {
                // Learn only from windows that were not throttled: a flood never becomes
                // the normal rate.
                id.learned = alpha * (id.count as f64 / secs) + (1.0 - alpha) * id.learned;
            }
            let empty = (windows - 1).clamp(0, MAX_DECAY_WINDOWS);
            if empty > 0 {
                id.learned *= (1.0 - alpha).powi(empty as i32);
            }
            if id.refused == 0 || windows > 1 {
                id.episode = None;
            }
            id.window_start = id.window_start.saturating_add(windows.saturating_mul(w));
            id.count = 0;
            id.refused = 0;
            touched = Some(id.lru);
        }
        id.count += 1;
        let secs = w as f64 / 1000.0;
        let budget_per_sec = self.cfg.min_rate_per_sec.max(self.cfg.factor * id.learned);
        let verdict = if id.count as f64 > (budget_per_sec * secs).max(1.0) {
            id.refused += 1;
            let episode_started = if id.episode.is_none() {
                id.episode = Some(now_ms);
                self.episodes += 1;
                Some(now)
            } else {
                None
            };
            RateVerdict::Throttle {
                budget_per_sec,
                learned_per_sec: id.learned,
                episode_started,
            }
        } else {
            RateVerdict::Pass
        };
        if let Some(old) = touched {
            let seq = self.next_lru;
            self.next_lru += 1;
            if let Some(id) = self
                .by_source
                .get_mut(source)
                .and_then(|m| m.get_mut(identity))
            {
                id.lru = seq;
            }
            if let Some(key) = self.lru.remove(&old) {
                self.lru.insert(seq, key);
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg() -> FloodConfig {
        FloodConfig {
            window_ms: 1_000,
            ewma_alpha: 0.5,
            factor: 10.0,
            min_rate_per_sec: 50.0,
            initial_rate_per_sec: 0.0,
            max_identities: 100,
            ..FloodConfig::default()
        }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + ms)
    }

    /// Sends `n` reports spread over window `win`; returns how many were throttled and the
    /// episode starts seen.
    fn send(d: &mut FloodDetector, source: &str, identity: &str, win: i64, n: u64) -> (u64, u64) {
        let (mut refused, mut started) = (0, 0);
        for i in 0..n {
            let at = t(win * 1_000 + (i as i64 * 999) / n.max(1) as i64);
            if let RateVerdict::Throttle {
                episode_started, ..
            } = d.check(source, identity, at)
            {
                refused += 1;
                started += u64::from(episode_started.is_some());
            }
        }
        (refused, started)
    }

    #[test]
    fn steady_rate_is_never_throttled() {
        let mut d = FloodDetector::new(cfg());
        for win in 0..20 {
            assert_eq!(send(&mut d, "http", "a", win, 40), (0, 0), "window {win}");
        }
        let learned = d.learned("http", "a").unwrap();
        assert!((learned - 40.0).abs() < 1.0, "{learned}");
    }

    #[test]
    fn flood_far_above_learned_rate_is_throttled_once_per_episode() {
        let mut d = FloodDetector::new(cfg());
        for win in 0..10 {
            send(&mut d, "http", "a", win, 10);
        }
        // Budget: max(50, 10 × ~10) ≈ 100 per window.
        let (refused, started) = send(&mut d, "http", "a", 10, 1_000);
        assert!((890..=910).contains(&refused), "{refused}");
        assert_eq!(started, 1, "one alert per episode");
        // The flood continues in the next window: same episode, and it was not learned.
        let (refused, started) = send(&mut d, "http", "a", 11, 1_000);
        assert!(refused > 850, "{refused}");
        assert_eq!(started, 0);
        assert!(d.learned("http", "a").unwrap() < 20.0);
        // A quiet window ends the episode; a new flood is a new episode.
        send(&mut d, "http", "a", 12, 5);
        let (_, started) = send(&mut d, "http", "a", 13, 1_000);
        assert_eq!(started, 1);
        assert_eq!(d.episodes, 2);
    }

    #[test]
    fn other_identities_and_sources_are_unaffected() {
        let mut d = FloodDetector::new(cfg());
        for win in 0..5 {
            send(&mut d, "http", "flooder", win, 10);
            send(&mut d, "http", "calm", win, 10);
            send(&mut d, "cot-tcp", "flooder", win, 10);
        }
        let (refused, _) = send(&mut d, "http", "flooder", 5, 5_000);
        assert!(refused > 4_000);
        assert_eq!(send(&mut d, "http", "calm", 5, 30), (0, 0));
        // Same identity name on another source is another key.
        assert_eq!(send(&mut d, "cot-tcp", "flooder", 5, 30), (0, 0));
    }

    #[test]
    fn below_the_absolute_floor_is_never_a_flood() {
        let mut d = FloodDetector::new(cfg());
        for win in 0..5 {
            send(&mut d, "http", "a", win, 1);
        }
        // 45/s is 45× the learned rate but under the 50/s floor.
        assert_eq!(send(&mut d, "http", "a", 5, 45), (0, 0));
    }

    #[test]
    fn silence_decays_the_learned_rate() {
        let mut d = FloodDetector::new(FloodConfig {
            initial_rate_per_sec: 400.0,
            ..cfg()
        });
        for win in 0..10 {
            send(&mut d, "http", "a", win, 400);
        }
        let busy = d.learned("http", "a").unwrap();
        assert!(busy > 350.0, "{busy}");
        send(&mut d, "http", "a", 30, 1);
        let after = d.learned("http", "a").unwrap();
        assert!(after < 1.0, "{after}");
    }

    #[test]
    fn exempt_sources_and_disabled_detector_pass() {
        let mut d = FloodDetector::new(cfg());
        assert!(d.is_exempt("sim"));
        assert!(d.is_exempt("nmea-replay"));
        assert!(!d.is_exempt("http"));
        assert_eq!(send(&mut d, "ais-replay", "file", 0, 10_000), (0, 0));
        assert!(d.is_empty(), "exempt sources are not even tracked");
        let mut d = FloodDetector::new(FloodConfig {
            enabled: false,
            ..cfg()
        });
        assert_eq!(send(&mut d, "http", "a", 0, 10_000), (0, 0));
    }

    #[test]
    fn identity_map_is_bounded_least_recently_active_first() {
        let mut d = FloodDetector::new(FloodConfig {
            max_identities: 3,
            ..cfg()
        });
        d.check("http", "a", t(0));
        d.check("http", "b", t(10));
        d.check("http", "c", t(20));
        // "a" rolls to a new window: it becomes the most recently active.
        d.check("http", "a", t(1_500));
        d.check("http", "d", t(1_600));
        assert_eq!(d.len(), 3);
        assert_eq!(d.evicted, 1);
        assert!(
            d.learned("http", "b").is_none(),
            "b was the least recently active"
        );
        assert!(d.learned("http", "a").is_some());
        for i in 0..1_000 {
            d.check("mqtt", &format!("dev-{i}"), t(2_000));
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.lru.len(), 3);
    }

    #[test]
    fn a_new_identity_gets_its_initial_budget() {
        let mut d = FloodDetector::new(FloodConfig {
            initial_rate_per_sec: 1_000.0,
            ..cfg()
        });
        // Budget 10,000/s at first: a gateway connecting is not a flood…
        assert_eq!(send(&mut d, "ais-tcp", "gw", 0, 9_000), (0, 0));
        // …but 50,000 in a second from a stranger is.
        let (refused, started) = send(&mut d, "http", "stranger", 0, 50_000);
        assert!(refused >= 39_000, "{refused}");
        assert_eq!(started, 1);
    }
}
