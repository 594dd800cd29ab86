//! Query descriptions and the per-entity filter they compile to. The picture decides which
//! entities to visit (grid cells or the whole slab); this module decides which of them match.

use rampart_model::{Entity, EntityState};

use crate::geo::{BBox, Near};

/// A picture query. Every filter that is set must match (they are ANDed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Only entities inside this box.
    pub bbox: Option<BBox>,
    /// Only entities within this great-circle radius.
    pub near: Option<Near>,
    /// Only entities whose type starts with these whole atoms: `a-f` matches `a-f` and
    /// `a-f-G-U-C` but not `a-fx`. Empty matches everything.
    pub type_prefix: Option<String>,
    /// Only entities whose callsign or uid contains this text, ignoring case.
    pub text: Option<String>,
    /// `Some(true)`: only stale entities; `Some(false)`: only live ones.
    pub stale: Option<bool>,
    /// At most this many results. `None` means no limit beyond the picture's size, which
    /// `PictureConfig::max_entities` bounds.
    pub limit: Option<usize>,
    /// Only entities this clearance may see (their label against the picture's levels).
    /// `None` applies no label check: for the node's own use, never for a caller's.
    pub clearance: Option<rampart_labels::Clearance>,
}

/// True when `cot_type` starts with `prefix` on an atom boundary.
pub fn type_matches(cot_type: &str, prefix: &str) -> bool {
    if prefix.is_empty() || prefix.ends_with('-') {
        return cot_type.starts_with(prefix);
    }
    cot_type.starts_with(prefix)
        && matches!(cot_type.as_bytes().get(prefix.len()), None | Some(b'-'))
}

/// A case-insensitive substring matcher with its needle lowered once per query.
#[derive(Debug)]
struct TextMatcher {
    lower: String,
    ascii: bool,
}

impl TextMatcher {
    fn new(needle: &str) -> Self {
        TextMatcher {
            lower: needle.to_lowercase(),
            ascii: needle.is_ascii(),
        }
    }

    fn matches(&self, hay: &str) -> bool {
        let needle = self.lower.as_bytes();
        if needle.is_empty() {
            return true;
        }
        if self.ascii && hay.is_ascii() {
            // The common case allocates nothing.
            return hay
                .as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle));
        }
        hay.to_lowercase().contains(self.lower.as_str())
    }
}

/// A compiled [`Query`]: the checks to run on each candidate entity, cheapest first.
#[derive(Debug)]
pub(crate) struct Filter<'q> {
    bbox: Option<&'q BBox>,
    near: Option<&'q Near>,
    type_prefix: Option<&'q str>,
    text: Option<TextMatcher>,
    stale: Option<bool>,
    /// The label check; `None` when the query has no clearance or it is unrestricted.
    clearance: Option<(&'q rampart_labels::Levels, &'q rampart_labels::Clearance)>,
}

impl<'q> Filter<'q> {
    pub(crate) fn new(q: &'q Query, levels: &'q rampart_labels::Levels) -> Self {
        Filter {
            clearance: q
                .clearance
                .as_ref()
                .filter(|c| !c.is_unrestricted())
                .map(|c| (levels, c)),
            bbox: q.bbox.as_ref(),
            near: q.near.as_ref(),
            type_prefix: q.type_prefix.as_deref().filter(|p| !p.is_empty()),
            text: q.text.as_deref().map(TextMatcher::new),
            stale: q.stale,
        }
    }

    /// True when a filter other than the spatial ones is set, so every entity must be read.
    pub(crate) fn has_entity_filters(&self) -> bool {
        self.stale.is_some()
            || self.type_prefix.is_some()
            || self.text.is_some()
            || self.clearance.is_some()
    }

    /// True when `e` passes every filter except `near` (which nearest-neighbour search
    /// applies itself, reusing the distance it computes).
    pub(crate) fn matches_except_near(&self, e: &Entity) -> bool {
        if let Some(want_stale) = self.stale
            && (e.state == EntityState::Stale) != want_stale
        {
            return false;
        }
        if let Some(b) = self.bbox
            && !b.contains(e.lat, e.lon)
        {
            return false;
        }
        if let Some(p) = self.type_prefix
            && !type_matches(&e.cot_type, p)
        {
            return false;
        }
        if let Some(t) = &self.text
            && !(t.matches(&e.uid) || e.callsign.as_deref().is_some_and(|c| t.matches(c)))
        {
            return false;
        }
        if let Some((levels, c)) = self.clearance
            && !levels.permits(c, &e.label)
        {
            return false;
        }
        true
    }

    /// True when `e` passes every filter.
    pub(crate) fn matches(&self, e: &Entity) -> bool {
        self.matches_except_near(e) && self.near.is_none_or(|n| n.contains(e.lat, e.lon))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_prefix_on_atom_boundaries() {
        assert!(type_matches("a-f", "a-f"));
        assert!(type_matches("a-f-G-U-C", "a-f"));
        assert!(type_matches("a-f-G-U-C", "a-f-"));
        assert!(!type_matches("a-fx", "a-f"));
        assert!(!type_matches("a-fx-G", "a-f"));
        assert!(!type_matches("a", "a-f"));
        assert!(type_matches("b-m-p", ""));
    }

    #[test]
    fn text_ignores_case() {
        let m = TextMatcher::new("ALPHA");
        assert!(m.matches("team-alpha-1"));
        assert!(!m.matches("bravo"));
        let m = TextMatcher::new("émile");
        assert!(m.matches("Team ÉMILE"));
        let m = TextMatcher::new("e");
        assert!(m.matches("ÉtE"));
    }
}
