//! The interner: shares the strings that repeat across many entities (type, `how`), their
//! provenance and their security label as `Arc`s, so a million entities hold a handful of
//! copies. It is bounded by [`crate::PictureConfig::max_interned`]; past the bound a fresh
//! `Arc` is handed out uninterned, which stays correct and only costs memory.

use std::collections::HashSet;
use std::sync::Arc;

use foldhash::fast::RandomState;
use rampart_model::{Label, Provenance};

/// Bounded sets of shared values, one per kind.
#[derive(Debug)]
pub(crate) struct Interner {
    /// The combined bound on the three sets.
    max: usize,
    strs: HashSet<Arc<str>, RandomState>,
    provenances: HashSet<Arc<Provenance>, RandomState>,
    labels: HashSet<Arc<Label>, RandomState>,
    /// Uninterned allocations since the last purge; purging only every `max / 4` misses keeps
    /// the purge's O(max) cost amortised to O(1) per miss.
    misses: usize,
    /// The last values returned, compared before hashing: consecutive entities mostly share
    /// them. Two strings, since type and how alternate. Cleared before a purge, so they never
    /// keep an unused value interned.
    recent_strs: [Option<Arc<str>>; 2],
    recent_provenance: Option<Arc<Provenance>>,
    recent_label: Option<Arc<Label>>,
}

impl Interner {
    pub(crate) fn new(max: usize) -> Self {
        Interner {
            max,
            strs: HashSet::default(),
            provenances: HashSet::default(),
            labels: HashSet::default(),
            misses: 0,
            recent_strs: [None, None],
            recent_provenance: None,
            recent_label: None,
        }
    }

    /// How many values are interned.
    pub(crate) fn len(&self) -> usize {
        self.strs.len() + self.provenances.len() + self.labels.len()
    }

    /// True when a new value may be added; purges unused values when the bound is hit.
    fn has_room(&mut self) -> bool {
        if self.len() < self.max {
            return true;
        }
        self.misses += 1;
        if self.misses >= (self.max / 4).max(1) {
            self.misses = 0;
            self.recent_strs = [None, None];
            self.recent_provenance = None;
            self.recent_label = None;
            // Values only the interner still holds are no longer used by any entity.
            self.strs.retain(|a| Arc::strong_count(a) > 1);
            self.provenances.retain(|a| Arc::strong_count(a) > 1);
            self.labels.retain(|a| Arc::strong_count(a) > 1);
        }
        self.len() < self.max
    }

    /// The shared `Arc<str>` equal to `s`.
    pub(crate) fn str(&mut self, s: &str) -> Arc<str> {
        for a in self.recent_strs.iter().flatten() {
            if **a == *s {
                return Arc::clone(a);
            }
        }
        let a = match self.strs.get(s) {
            Some(a) => Arc::clone(a),
            None => {
                let a: Arc<str> = Arc::from(s);
                if !self.has_room() {
                    return a;
                }
                self.strs.insert(Arc::clone(&a));
                a
            }
        };
        self.recent_strs.swap(0, 1);
        self.recent_strs[0] = Some(Arc::clone(&a));
        a
    }

    /// The shared `Arc<Provenance>` equal to `p`.
    pub(crate) fn provenance(&mut self, p: &Provenance) -> Arc<Provenance> {
        if let Some(a) = &self.recent_provenance
            && **a == *p
        {
            return Arc::clone(a);
        }
        let a = match self.provenances.get(p) {
            Some(a) => Arc::clone(a),
            None => {
                let a = Arc::new(p.clone());
                if !self.has_room() {
                    return a;
                }
                self.provenances.insert(Arc::clone(&a));
                a
            }
        };
        self.recent_provenance = Some(Arc::clone(&a));
        a
    }

    /// The shared `Arc<Label>` equal to `l`.
    pub(crate) fn label(&mut self, l: &Label) -> Arc<Label> {
        if let Some(a) = &self.recent_label
            && **a == *l
        {
            return Arc::clone(a);
        }
        let a = match self.labels.get(l) {
            Some(a) => Arc::clone(a),
            None => {
                let a = Arc::new(l.clone());
                if !self.has_room() {
                    return a;
                }
                self.labels.insert(Arc::clone(&a));
                a
            }
        };
        self.recent_label = Some(Arc::clone(&a));
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_bounds() {
        let mut i = Interner::new(3);
        let a = i.str("a-f-G");
        let b = i.str("a-f-G");
        assert!(Arc::ptr_eq(&a, &b));
        let p = i.provenance(&Provenance::new("http", "alice"));
        let l = i.label(&Label::unclassified());
        assert_eq!(i.len(), 3);
        // Full: a new value is still returned, just not shared.
        let c = i.str("h-e");
        let d = i.str("h-e");
        assert_eq!(&*c, "h-e");
        assert!(!Arc::ptr_eq(&c, &d));
        assert!(i.len() <= 3);
        drop((a, b, p, l));
        // Once the old values are unused, a purge makes room again.
        let e = i.str("m-g");
        let f = i.str("m-g");
        assert!(Arc::ptr_eq(&e, &f));
    }
}
