//! Idempotency: remembers which report ids were already stored, so a report sent twice
//! (a retry, an MQTT redelivery, a replay after a partition) is stored and folded once.
//!
//! Two kinds of id, two structures, both bounded:
//!
//! - client keys: a FIFO set of 64-bit SipHash digests (random seed per process, rebuilt from
//!   history on restart), holding the newest [`DedupConfig::max_keys`];
//! - `(source, seq)`: per source a high-water mark plus a bitmap of the last
//!   [`DedupConfig::seq_window`] sequence numbers. A sequence number older than the window is
//!   treated as a duplicate, because the engine can no longer prove it is new.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use rampart_model::{ReportId, Text};

/// Bounds of the idempotency memory.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Most client keys remembered; the oldest are forgotten first.
    pub max_keys: usize,
    /// Sequence numbers remembered per source, below its highest one.
    pub seq_window: u64,
    /// Most distinct sequence sources; reports from further sources are rejected.
    pub max_sources: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            max_keys: 1_000_000,
            seq_window: 16_384,
            max_sources: 10_000,
        }
    }
}

/// The outcome of checking one id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DedupVerdict {
    /// Not seen: store and fold it.
    New,
    /// Seen before (or older than the sequence window): acknowledge without storing.
    Duplicate,
    /// A new sequence source beyond [`DedupConfig::max_sources`].
    TooManySources,
}

struct SeqWindow {
    high: u64,
    bits: Vec<u64>,
}

impl SeqWindow {
    fn new(window: u64) -> Self {
        SeqWindow {
            high: 0,
            bits: vec![0; window.div_ceil(64).max(1) as usize],
        }
    }

    fn window(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn bit(&self, seq: u64) -> (usize, u64) {
        let i = seq % self.window();
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn seen(&self, seq: u64) -> bool {
        if seq > self.high {
            return false;
        }
        if self.high - seq >= self.window() {
            return true;
        }
        let (w, m) = self.bit(seq);
        self.bits[w] & m != 0
    }

    fn insert(&mut self, seq: u64) {
        if seq > self.high {
            if seq - self.high >= self.window() {
                self.bits.iter_mut().for_each(|b| *b = 0);
            } else {
                for s in self.high + 1..seq {
                    let (w, m) = self.bit(s);
                    self.bits[w] &= !m;
                }
            }
            self.high = seq;
        }
        let (w, m) = self.bit(seq);
        self.bits[w] |= m;
    }
}

/// The idempotency memory.
pub(crate) struct Dedup {
    cfg: DedupConfig,
    hasher: RandomState,
    keys: HashSet<u64>,
    order: VecDeque<u64>,
    sources: HashMap<Text, SeqWindow>,
}

impl Dedup {
    pub(crate) fn new(cfg: DedupConfig) -> Self {
        Dedup {
            cfg,
            hasher: RandomState::new(),
            keys: HashSet::new(),
            order: VecDeque::new(),
            sources: HashMap::new(),
        }
    }

    fn digest(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Checks an id without remembering it.
    pub(crate) fn check(&self, id: &ReportId) -> DedupVerdict {
        match id {
            ReportId::Key(k) => {
                if self.keys.contains(&self.digest(k)) {
                    DedupVerdict::Duplicate
                } else {
                    DedupVerdict::New
                }
            }
            ReportId::Seq { source, seq } => match self.sources.get(source) {
                Some(w) if w.seen(*seq) => DedupVerdict::Duplicate,
                Some(_) => DedupVerdict::New,
                None if self.sources.len() >= self.cfg.max_sources => DedupVerdict::TooManySources,
                None => DedupVerdict::New,
            },
        }
    }

    /// Remembers an id (after the report carrying it was appended to history).
    pub(crate) fn insert(&mut self, id: &ReportId) {
        match id {
            ReportId::Key(k) => {
                if self.cfg.max_keys == 0 {
                    return;
                }
                let d = self.digest(k);
                if self.keys.insert(d) {
                    self.order.push_back(d);
                    while self.order.len() > self.cfg.max_keys {
                        if let Some(old) = self.order.pop_front() {
                            self.keys.remove(&old);
                        }
                    }
                }
            }
            ReportId::Seq { source, seq } => {
                if !self.sources.contains_key(source) {
                    if self.sources.len() >= self.cfg.max_sources {
                        return;
                    }
                    self.sources
                        .insert(source.clone(), SeqWindow::new(self.cfg.seq_window));
                }
                if let Some(w) = self.sources.get_mut(source) {
                    w.insert(*seq);
                }
            }
        }
    }

    /// Number of remembered client keys and sequence sources.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.keys.len(), self.sources.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str, n: u64) -> ReportId {
        ReportId::Seq {
            source: s.into(),
            seq: n,
        }
    }

    #[test]
    fn keys_are_remembered_and_bounded() {
        let mut d = Dedup::new(DedupConfig {
            max_keys: 2,
            ..DedupConfig::default()
        });
        let a = ReportId::Key("a".into());
        assert_eq!(d.check(&a), DedupVerdict::New);
        d.insert(&a);
        assert_eq!(d.check(&a), DedupVerdict::Duplicate);
        d.insert(&ReportId::Key("b".into()));
        d.insert(&ReportId::Key("c".into()));
        // "a" was the oldest and is forgotten at the bound.
        assert_eq!(d.check(&a), DedupVerdict::New);
        assert_eq!(d.sizes().0, 2);
    }

    #[test]
    fn sequences_use_a_window() {
        let mut d = Dedup::new(DedupConfig {
            seq_window: 128,
            ..DedupConfig::default()
        });
        for n in [5, 7, 6, 200] {
            assert_eq!(d.check(&seq("gw", n)), DedupVerdict::New, "seq {n}");
            d.insert(&seq("gw", n));
        }
        assert_eq!(d.check(&seq("gw", 200)), DedupVerdict::Duplicate);
        assert_eq!(d.check(&seq("gw", 199)), DedupVerdict::New);
        assert_eq!(
            d.check(&seq("gw", 5)),
            DedupVerdict::Duplicate,
            "older than window"
        );
        assert_eq!(d.check(&seq("other", 5)), DedupVerdict::New);
        // A jump clears stale bits that would alias.
        d.insert(&seq("gw", 200 + 128));
        assert_eq!(d.check(&seq("gw", 201 + 127)), DedupVerdict::Duplicate);
        assert_eq!(d.check(&seq("gw", 300)), DedupVerdict::New);
    }

    #[test]
    fn sources_are_bounded() {
        let mut d = Dedup::new(DedupConfig {
            max_sources: 1,
            ..DedupConfig::default()
        });
        d.insert(&seq("a", 1));
        assert_eq!(d.check(&seq("b", 1)), DedupVerdict::TooManySources);
    }
}
