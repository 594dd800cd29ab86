//! # rampart-labels
//!
//! The security lattice of a node, and the one check every read path calls.
//!
//! - [`Levels`]: the classification levels in order, from configuration
//!   (e.g. `UNCLASSIFIED < RESTRICTED < CONFIDENTIAL < SECRET`).
//! - [`Clearance`]: what an identity may see: a level and the releasability groups it belongs to.
//! - [`Levels::permits`]: may this clearance see data with this [`Label`]?
//! - [`Levels::join`]: the label of data derived from two labelled inputs (an entity folded from
//!   several reports carries the join of their labels).
//!
//! ## Semantics
//!
//! - A label `SECRET, releasability [NATO, FVEY]` may be seen by a clearance at `SECRET` or above
//!   that holds **at least one** of `NATO` or `FVEY`. An empty releasability list means no
//!   releasability restriction.
//! - The check **fails closed**: a label whose classification is not a configured level is
//!   visible to nobody but an [`Clearance::unrestricted`] identity, and is refused at ingest by
//!   [`Levels::validate`].
//! - The join takes the higher level and the **intersection** of non-empty releasability lists.
//!   That is conservative: `REL NATO` joined with `REL FVEY` is releasable to nobody (it becomes
//!   [`NO_RELEASE`], a group no identity may hold), although a person in both groups could in
//!   principle see it. Over-restricting is the safe error.
//!
//! Nothing here does I/O; the edges ask, this crate answers.

use std::collections::BTreeSet;

use rampart_model::{Label, Text};
use serde::{Deserialize, Serialize};

/// The releasability group of data releasable to nobody: the join of two disjoint
/// releasability lists. No clearance may hold it (configuration refuses it).
pub const NO_RELEASE: &str = "NO-RELEASE";

/// Most classification levels a configuration may name.
pub const MAX_LEVELS: usize = 16;
/// Most releasability groups one clearance may hold.
pub const MAX_GROUPS: usize = 64;

/// Why a label or clearance is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The classification is not one of the configured levels.
    #[error("unknown classification {0:?} (configured levels: {1})")]
    UnknownLevel(String, String),
    /// The level list is empty, too long or repeats a name.
    #[error("invalid level list: {0}")]
    BadLevels(String),
    /// A clearance names too many groups, or the reserved group.
    #[error("invalid groups: {0}")]
    BadGroups(String),
}

/// The ordered classification levels of a node, lowest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Levels {
    names: Vec<Text>,
}

impl Default for Levels {
    /// `UNCLASSIFIED < RESTRICTED < CONFIDENTIAL < SECRET < TOP SECRET`.
    fn default() -> Self {
        Levels {
            names: [
                "UNCLASSIFIED",
                "RESTRICTED",
                "CONFIDENTIAL",
                "SECRET",
                "TOP SECRET",
            ]
            .into_iter()
            .map(Text::const_new)
            .collect(),
        }
    }
}

impl Levels {
    /// Levels from a configured list, lowest first. Names are compared case-sensitively.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self, LabelError> {
        if names.is_empty() || names.len() > MAX_LEVELS {
            return Err(LabelError::BadLevels(format!(
                "need 1 to {MAX_LEVELS} levels, got {}",
                names.len()
            )));
        }
        let mut seen = BTreeSet::new();
        for n in names {
            let n = n.as_ref();
            if n.trim().is_empty() || !seen.insert(n) {
                return Err(LabelError::BadLevels(format!(
                    "level {n:?} is empty or repeated"
                )));
            }
        }
        Ok(Levels {
            names: names.iter().map(|n| Text::from(n.as_ref())).collect(),
        })
    }

    /// The level names, lowest first.
    pub fn names(&self) -> &[Text] {
        &self.names
    }

    /// The lowest level (the default classification of unlabelled data).
    pub fn lowest(&self) -> &Text {
        // `new` refuses an empty list and `default` has five levels.
        &self.names[0]
    }

    /// The rank of `classification` (0 = lowest), or `None` if it is not configured.
    pub fn rank(&self, classification: &str) -> Option<usize> {
        self.names.iter().position(|n| n == classification)
    }

    /// Refuses a label whose classification is not a configured level. Ingest calls this so
    /// that a typo such as `SECERT` is an error naming the level, not data nobody can see.
    pub fn validate(&self, label: &Label) -> Result<(), LabelError> {
        match self.rank(&label.classification) {
            Some(_) => Ok(()),
            None => Err(LabelError::UnknownLevel(
                label.classification.to_string(),
                self.names.join(" < "),
            )),
        }
    }

    /// A clearance at `level` holding `groups`.
    pub fn clearance<S: AsRef<str>>(
        &self,
        level: &str,
        groups: &[S],
    ) -> Result<Clearance, LabelError> {
        let rank = self
            .rank(level)
            .ok_or_else(|| LabelError::UnknownLevel(level.to_string(), self.names.join(" < ")))?;
        if groups.len() > MAX_GROUPS {
            return Err(LabelError::BadGroups(format!(
                "{} groups, at most {MAX_GROUPS}",
                groups.len()
            )));
        }
        let mut set = BTreeSet::new();
        for g in groups {
            let g = g.as_ref();
            if g == NO_RELEASE || g.trim().is_empty() {
                return Err(LabelError::BadGroups(format!(
                    "group {g:?} is empty or reserved"
                )));
            }
            set.insert(Text::from(g));
        }
        Ok(Clearance {
            rank,
            groups: set,
            all_groups: false,
        })
    }

    /// Whether `clearance` may see data labelled `label`.
    pub fn permits(&self, clearance: &Clearance, label: &Label) -> bool {
        if clearance.all_groups && clearance.rank == usize::MAX {
            return true;
        }
        let Some(rank) = self.rank(&label.classification) else {
            return false; // fail closed on a level this node does not know
        };
        if rank > clearance.rank {
            return false;
        }
        label.releasability.is_empty()
            || clearance.all_groups
            || label
                .releasability
                .iter()
                .any(|g| clearance.groups.contains(g))
    }

    /// The label of data derived from data labelled `a` and `b`: the higher level and the
    /// intersection of the releasability lists (see the crate docs). An unknown level wins,
    /// so that the result is never less restrictive than either input.
    pub fn join(&self, a: &Label, b: &Label) -> Label {
        let classification = match (self.rank(&a.classification), self.rank(&b.classification)) {
            (Some(ra), Some(rb)) if rb > ra => b.classification.clone(),
            (Some(_), Some(_)) => a.classification.clone(),
            (None, _) => a.classification.clone(),
            (_, None) => b.classification.clone(),
        };
        let releasability = match (a.releasability.is_empty(), b.releasability.is_empty()) {
            (true, _) => normalized(&b.releasability),
            (_, true) => normalized(&a.releasability),
            _ => {
                let both: Vec<Text> = normalized(&a.releasability)
                    .into_iter()
                    .filter(|g| b.releasability.contains(g))
                    .collect();
                if both.is_empty() {
                    vec![Text::const_new(NO_RELEASE)]
                } else {
                    both
                }
            }
        };
        Label {
            classification,
            releasability,
        }
    }
}

fn normalized(groups: &[Text]) -> Vec<Text> {
    let set: BTreeSet<&Text> = groups.iter().collect();
    set.into_iter().cloned().collect()
}

/// What an identity may see: a level (by rank in [`Levels`]) and its releasability groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clearance {
    rank: usize,
    groups: BTreeSet<Text>,
    all_groups: bool,
}

impl Clearance {
    /// Sees everything, whatever its label. Used for the node itself (history, rules) and for
    /// callers when labels are not enforced (no `[auth] required`, no `--secure`).
    pub fn unrestricted() -> Self {
        Clearance {
            rank: usize::MAX,
            groups: BTreeSet::new(),
            all_groups: true,
        }
    }

    /// Whether this is [`Clearance::unrestricted`].
    pub fn is_unrestricted(&self) -> bool {
        self.all_groups && self.rank == usize::MAX
    }

    /// The rank of the level (0 = lowest; `usize::MAX` when unrestricted).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The groups held.
    pub fn groups(&self) -> impl Iterator<Item = &Text> {
        self.groups.iter()
    }
}

/// A clearance as written in configuration, user records and device records.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearanceSpec {
    /// Level name; `None` means the lowest configured level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Releasability groups held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl ClearanceSpec {
    /// Resolves against `levels`; an unknown level or a reserved group is an error.
    pub fn resolve(&self, levels: &Levels) -> Result<Clearance, LabelError> {
        let level = self.level.as_deref().unwrap_or(levels.lowest());
        levels.clearance(level, &self.groups)
    }
}

/// The `[labels]` section of the node configuration.
///
/// ```toml
/// [labels]
/// levels = ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]
/// anonymous = { level = "UNCLASSIFIED" }        # callers with no identity
/// [labels.sources]                               # default label per listener kind
/// "ais-udp" = { classification = "RESTRICTED" }
/// "cot-tls" = { classification = "SECRET", releasability = ["NATO"] }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelsConfig {
    /// Classification levels, lowest first. Empty means [`Levels::default`].
    pub levels: Vec<String>,
    /// The clearance of callers with no identity (no credentials, no client certificate, open
    /// listeners). `None`: unrestricted unless labels are enforced (`--secure` or
    /// `[auth] required`), the lowest level with no groups when they are.
    pub anonymous: Option<ClearanceSpec>,
    /// The label of reports that carry none, per source (listener kind such as `cot-udp` or
    /// `mqtt`). Sources not listed get `[defaults] classification`.
    pub sources: std::collections::BTreeMap<String, Label>,
}

impl Default for LabelsConfig {
    /// The default levels written out (so `rampart config` shows them), no anonymous
    /// override, no per-source labels.
    fn default() -> Self {
        LabelsConfig {
            levels: Levels::default()
                .names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
            anonymous: None,
            sources: Default::default(),
        }
    }
}

/// The resolved label policy of a node, shared by every edge.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The level order.
    pub levels: Levels,
    /// The clearance of callers with no identity.
    pub anonymous: Clearance,
    /// Whether identities' clearances are enforced. When `false` (an open node: no
    /// `--secure`, no `[auth] required`) every caller is treated as unrestricted, because
    /// without authentication a clearance would only be a claim.
    pub enforced: bool,
    /// The default label of reports without one, per source.
    pub sources: std::collections::BTreeMap<String, Label>,
    /// The label of reports without one from unlisted sources.
    pub default_label: Label,
}

impl Policy {
    /// Resolves `cfg`. `enforced` comes from `--secure` / `[auth] required`; `default_label`
    /// from `[defaults]`. Every configured label and clearance must name a configured level.
    pub fn new(
        cfg: &LabelsConfig,
        enforced: bool,
        default_label: Label,
    ) -> Result<Self, LabelError> {
        let levels = if cfg.levels.is_empty() {
            Levels::default()
        } else {
            Levels::new(&cfg.levels)?
        };
        let anonymous = match &cfg.anonymous {
            Some(spec) => spec.resolve(&levels)?,
            None if enforced => ClearanceSpec::default().resolve(&levels)?,
            None => Clearance::unrestricted(),
        };
        levels.validate(&default_label)?;
        for label in cfg.sources.values() {
            levels.validate(label)?;
        }
        Ok(Policy {
            levels,
            anonymous,
            enforced,
            sources: cfg.sources.clone(),
            default_label,
        })
    }

    /// An open policy (nothing enforced) with the default levels, for tests and tools.
    pub fn open() -> Self {
        Policy {
            levels: Levels::default(),
            anonymous: Clearance::unrestricted(),
            enforced: false,
            sources: Default::default(),
            default_label: Label::unclassified(),
        }
    }

    /// The effective clearance of an identity whose configured clearance is `spec` (`None`:
    /// no identity). Unrestricted when labels are not enforced. A spec that no longer resolves
    /// (its level was removed from the configuration) gets the anonymous clearance.
    pub fn clearance_of(&self, spec: Option<&ClearanceSpec>) -> Clearance {
        if !self.enforced {
            return Clearance::unrestricted();
        }
        match spec {
            Some(s) => s
                .resolve(&self.levels)
                .unwrap_or_else(|_| self.anonymous.clone()),
            None => self.anonymous.clone(),
        }
    }

    /// Whether `clearance` may see data labelled `label` (see [`Levels::permits`]).
    pub fn permits(&self, clearance: &Clearance, label: &Label) -> bool {
        self.levels.permits(clearance, label)
    }

    /// The label a report from `source` gets when it carries none.
    pub fn source_default(&self, source: &str) -> &Label {
        self.sources.get(source).unwrap_or(&self.default_label)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn label(c: &str, rel: &[&str]) -> Label {
        Label {
            classification: c.into(),
            releasability: rel.iter().map(|g| Text::from(*g)).collect(),
        }
    }

    fn levels() -> Levels {
        Levels::new(&["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]).unwrap()
    }

    #[test]
    fn level_order_decides() {
        let l = levels();
        let conf = l.clearance::<&str>("CONFIDENTIAL", &[]).unwrap();
        assert!(l.permits(&conf, &label("UNCLASSIFIED", &[])));
        assert!(l.permits(&conf, &label("CONFIDENTIAL", &[])));
        assert!(!l.permits(&conf, &label("SECRET", &[])));
    }

    #[test]
    fn releasability_needs_one_shared_group() {
        let l = levels();
        let nato = l.clearance("SECRET", &["NATO"]).unwrap();
        let fvey = l.clearance("SECRET", &["FVEY"]).unwrap();
        let none = l.clearance::<&str>("SECRET", &[]).unwrap();
        let s_nato = label("SECRET", &["NATO"]);
        assert!(l.permits(&nato, &s_nato));
        assert!(!l.permits(&fvey, &s_nato));
        assert!(!l.permits(&none, &s_nato));
        assert!(l.permits(&fvey, &label("SECRET", &["NATO", "FVEY"])));
        assert!(l.permits(&none, &label("RESTRICTED", &[])));
    }

    #[test]
    fn unknown_levels_fail_closed() {
        let l = levels();
        let top = l.clearance("SECRET", &["NATO"]).unwrap();
        assert!(!l.permits(&top, &label("SECERT", &[])));
        assert!(l.permits(&Clearance::unrestricted(), &label("SECERT", &[])));
        let err = l.validate(&label("SECERT", &[])).unwrap_err().to_string();
        assert!(err.contains("SECERT") && err.contains("UNCLASSIFIED < RESTRICTED"));
        assert!(l.clearance::<&str>("COSMIC", &[]).is_err());
    }

    #[test]
    fn join_is_highest_level_and_common_groups() {
        let l = levels();
        let j = l.join(
            &label("RESTRICTED", &["NATO", "FVEY"]),
            &label("SECRET", &["FVEY"]),
        );
        assert_eq!(j, label("SECRET", &["FVEY"]));
        let j = l.join(&label("SECRET", &["NATO"]), &label("UNCLASSIFIED", &[]));
        assert_eq!(j, label("SECRET", &["NATO"]));
        let j = l.join(&label("SECRET", &["NATO"]), &label("SECRET", &["FVEY"]));
        assert_eq!(j, label("SECRET", &[NO_RELEASE]));
        let everyone = l.clearance("SECRET", &["NATO", "FVEY"]).unwrap();
        assert!(
            !l.permits(&everyone, &j),
            "disjoint releasability is released to nobody"
        );
        let j = l.join(&label("BOGUS", &[]), &label("SECRET", &[]));
        assert_eq!(
            j.classification, "BOGUS",
            "an unknown level is never joined away"
        );
    }

    #[test]
    fn join_is_commutative_and_never_lowers() {
        let l = levels();
        let labels = [
            label("UNCLASSIFIED", &[]),
            label("RESTRICTED", &["NATO"]),
            label("SECRET", &["NATO", "FVEY"]),
            label("CONFIDENTIAL", &["FVEY"]),
        ];
        let clearances = [
            l.clearance::<&str>("UNCLASSIFIED", &[]).unwrap(),
            l.clearance("SECRET", &["NATO"]).unwrap(),
            l.clearance("CONFIDENTIAL", &["FVEY", "NATO"]).unwrap(),
            l.clearance("SECRET", &["FVEY"]).unwrap(),
        ];
        for a in &labels {
            for b in &labels {
                let ab = l.join(a, b);
                assert_eq!(ab, l.join(b, a));
                for c in &clearances {
                    // Whoever may see the join may see both inputs.
                    if l.permits(c, &ab) {
                        assert!(l.permits(c, a) && l.permits(c, b), "{a:?} {b:?} {c:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn reserved_group_and_bad_level_lists_are_refused() {
        let l = levels();
        assert!(l.clearance("SECRET", &[NO_RELEASE]).is_err());
        assert!(Levels::new::<&str>(&[]).is_err());
        assert!(Levels::new(&["A", "A"]).is_err());
        let spec: ClearanceSpec =
            serde_json::from_str(r#"{"level":"SECRET","groups":["NATO"]}"#).unwrap();
        assert!(spec.resolve(&l).unwrap().groups().any(|g| g == "NATO"));
        assert_eq!(ClearanceSpec::default().resolve(&l).unwrap().rank(), 0);
    }

    #[test]
    fn policy_is_open_until_enforced() {
        let cfg = LabelsConfig::default();
        let open = Policy::new(&cfg, false, Label::unclassified()).unwrap();
        let secret = label("SECRET", &["NATO"]);
        assert!(open.permits(&open.clearance_of(None), &secret));
        let spec = ClearanceSpec {
            level: Some("RESTRICTED".into()),
            groups: vec![],
        };
        assert!(open.permits(&open.clearance_of(Some(&spec)), &secret));

        let closed = Policy::new(&cfg, true, Label::unclassified()).unwrap();
        assert!(!closed.permits(&closed.clearance_of(None), &secret));
        assert!(closed.permits(&closed.clearance_of(None), &label("UNCLASSIFIED", &[])));
        assert!(!closed.permits(&closed.clearance_of(Some(&spec)), &secret));
        let nato = ClearanceSpec {
            level: Some("SECRET".into()),
            groups: vec!["NATO".into()],
        };
        assert!(closed.permits(&closed.clearance_of(Some(&nato)), &secret));
    }

    #[test]
    fn policy_refuses_unknown_levels_in_its_configuration() {
        let mut cfg = LabelsConfig::default();
        cfg.sources
            .insert("ais-udp".into(), label("RESTRICTD", &[]));
        let err = Policy::new(&cfg, true, Label::unclassified())
            .unwrap_err()
            .to_string();
        assert!(err.contains("RESTRICTD"), "{err}");
        let cfg: LabelsConfig = serde_json::from_str(
            r#"{"levels":["U","S"],"anonymous":{"level":"U"},"sources":{"cot-tls":{"classification":"S","releasability":["NATO"]}}}"#,
        )
        .unwrap();
        let p = Policy::new(&cfg, true, label("U", &[])).unwrap();
        assert_eq!(p.source_default("cot-tls"), &label("S", &["NATO"]));
        assert_eq!(p.source_default("http"), &label("U", &[]));
    }
}
