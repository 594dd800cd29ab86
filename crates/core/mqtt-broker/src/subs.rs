//! The subscription index: a trie over topic levels, with `+` and `#` children, plain
//! subscribers per node and shared groups (`$share/{group}/...`) per node.
//!
//! Matching a topic name walks at most `levels × 3` children (exact, `+`, `#`), so its cost
//! grows with the depth of the topic and the number of matching subscribers, not with the
//! number of subscriptions. Empty nodes are pruned on removal, so the trie never holds more
//! nodes than the live filters need.

use std::collections::HashMap;
use std::num::NonZeroU32;

use rmqtt_codec::types::QoS;

/// The broker's handle for a session; stable while the session exists.
pub type SessionId = u64;

/// What a subscriber asked for, per filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    /// Granted maximum QoS.
    pub qos: QoS,
    /// MQTT 5 No Local: never send this session its own publishes.
    pub no_local: bool,
    /// MQTT 5 Retain As Published: keep the RETAIN flag on live deliveries.
    pub retain_as_published: bool,
    /// MQTT 5 subscription identifier, echoed on deliveries.
    pub id: Option<NonZeroU32>,
}

/// One subscriber chosen for a topic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The session to deliver to.
    pub session: SessionId,
    /// Its options for the matching filter.
    pub opts: SubOptions,
    /// True if chosen from a shared group (no retained delivery, no merging).
    pub shared: bool,
}

#[derive(Debug, Default)]
struct SharedGroup {
    members: Vec<(SessionId, SubOptions)>,
    /// Round-robin cursor into `members`.
    next: usize,
}

#[derive(Debug, Default)]
struct Node {
    /// Boxed: most nodes are leaves, and the map doubles as it grows.
    children: HashMap<Box<str>, Box<Node>>,
    subs: HashMap<SessionId, SubOptions>,
    groups: HashMap<Box<str>, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty() && self.groups.is_empty()
    }

    /// Adds this node's subscribers to `out`, choosing one member per shared group among
    /// those `allowed` to receive the message (none allowed: the group gets nothing).
    fn collect(&mut self, f: &Filters<'_>, out: &mut Vec<Match>) {
        out.extend(self.subs.iter().map(|(&session, &opts)| Match {
            session,
            opts,
            shared: false,
        }));
        for group in self.groups.values_mut() {
            let n = group.members.len();
            if n == 0 {
                continue;
            }
            // Prefer the next allowed member that can take the message now; if none can,
            // the next allowed member gets it queued, so the group still shares the load.
            let start = group.next % n;
            let order = || (0..n).map(|i| (start + i) % n);
            let Some(first_allowed) = order().find(|&i| (f.allowed)(group.members[i].0)) else {
                continue;
            };
            let pick = order()
                .find(|&i| (f.allowed)(group.members[i].0) && (f.eligible)(group.members[i].0))
                .unwrap_or(first_allowed);
            group.next = pick + 1;
            let (session, opts) = group.members[pick];
            out.push(Match {
                session,
                opts,
                shared: true,
            });
        }
    }
}

/// The two questions `matches` asks about a shared group's members.
struct Filters<'a> {
    allowed: &'a dyn Fn(SessionId) -> bool,
    eligible: &'a dyn Fn(SessionId) -> bool,
}

/// The subscription trie. See the module documentation.
#[derive(Debug, Default)]
pub struct Trie {
    root: Node,
    len: usize,
}

impl Trie {
    /// Number of (session, filter) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there is no subscription at all.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces a subscription. Returns true if it is new (not a replacement).
    pub fn insert(
        &mut self,
        group: Option<&str>,
        filter: &str,
        session: SessionId,
        opts: SubOptions,
    ) -> bool {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let new = match group {
            None => node.subs.insert(session, opts).is_none(),
            Some(g) => {
                let group = node.groups.entry(g.into()).or_default();
                match group.members.iter_mut().find(|(s, _)| *s == session) {
                    Some(member) => {
                        member.1 = opts;
                        false
                    }
                    None => {
                        group.members.push((session, opts));
                        true
                    }
                }
            }
        };
        if new {
            self.len += 1;
        }
        new
    }

    /// Removes a subscription. Returns true if it existed.
    pub fn remove(&mut self, group: Option<&str>, filter: &str, session: SessionId) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove_at(&mut self.root, &levels, group, session);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Collects the subscribers of topic name `name` into `out`. For shared groups,
    /// `allowed` tells which members may receive the message at all (its security marking)
    /// and `eligible` which can take it right now; plain subscribers are all returned.
    pub fn matches(
        &mut self,
        name: &str,
        allowed: &dyn Fn(SessionId) -> bool,
        eligible: &dyn Fn(SessionId) -> bool,
        out: &mut Vec<Match>,
    ) {
        let levels: Vec<&str> = name.split('/').collect();
        let dollar = name.starts_with('$');
        let f = Filters { allowed, eligible };
        walk(&mut self.root, &levels, !dollar, &f, out);
    }
}

fn walk(node: &mut Node, levels: &[&str], wildcards: bool, f: &Filters<'_>, out: &mut Vec<Match>) {
    // `#` matches the parent level too ("a/#" matches "a"), and everything below.
    if wildcards && let Some(hash) = node.children.get_mut("#") {
        hash.collect(f, out);
    }
    let Some((first, rest)) = levels.split_first() else {
        node.collect(f, out);
        return;
    };
    if let Some(child) = node.children.get_mut(*first) {
        walk(child, rest, true, f, out);
    }
    if wildcards && let Some(plus) = node.children.get_mut("+") {
        walk(plus, rest, true, f, out);
    }
}

fn remove_at(node: &mut Node, levels: &[&str], group: Option<&str>, session: SessionId) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return match group {
            None => node.subs.remove(&session).is_some(),
            Some(g) => {
                let Some(grp) = node.groups.get_mut(g) else {
                    return false;
                };
                let before = grp.members.len();
                grp.members.retain(|(s, _)| *s != session);
                let removed = grp.members.len() != before;
                if grp.members.is_empty() {
                    node.groups.remove(g);
                }
                removed
            }
        };
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove_at(child, rest, group, session);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SubOptions {
        SubOptions {
            qos: QoS::AtMostOnce,
            no_local: false,
            retain_as_published: false,
            id: None,
        }
    }

    fn hits(t: &mut Trie, name: &str) -> Vec<SessionId> {
        let mut out = Vec::new();
        t.matches(name, &|_| true, &|_| true, &mut out);
        let mut v: Vec<_> = out.iter().map(|m| m.session).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn trie_agrees_with_reference_matcher() {
        let filters = [
            "#", "+", "+/+", "a", "a/#", "a/+", "a/b", "a/+/c", "+/b/#", "/", "/+", "$SYS/#",
            "$SYS/+", "+/x", "a//b", "a/b/c/#",
        ];
        let names = [
            "a",
            "a/b",
            "a/b/c",
            "a/x/c",
            "/",
            "/a",
            "$SYS/load",
            "$SYS",
            "x/b/y",
            "a//b",
            "b",
            "a/b/c/d",
        ];
        let mut t = Trie::default();
        for (i, f) in filters.iter().enumerate() {
            assert!(t.insert(None, f, i as u64, opts()));
        }
        for name in names {
            let want: Vec<u64> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| crate::topic::matches(f, name))
                .map(|(i, _)| i as u64)
                .collect();
            assert_eq!(hits(&mut t, name), want, "topic {name}");
        }
        for (i, f) in filters.iter().enumerate() {
            assert!(t.remove(None, f, i as u64));
        }
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "pruned");
    }

    #[test]
    fn shared_round_robin_and_eligibility() {
        let mut t = Trie::default();
        for s in 1..=3 {
            t.insert(Some("g"), "a/+", s, opts());
        }
        let mut seen = Vec::new();
        for _ in 0..6 {
            let mut out = Vec::new();
            t.matches("a/b", &|_| true, &|_| true, &mut out);
            assert_eq!(out.len(), 1);
            seen.push(out[0].session);
        }
        assert_eq!(seen, [1, 2, 3, 1, 2, 3]);
        let mut out = Vec::new();
        t.matches("a/b", &|_| true, &|s| s == 3, &mut out);
        assert_eq!(out[0].session, 3);
        // Only members allowed to see the message are chosen, eligible or not.
        for _ in 0..3 {
            let mut out = Vec::new();
            t.matches("a/b", &|s| s == 2, &|s| s == 3, &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].session, 2);
        }
        let mut out = Vec::new();
        t.matches("a/b", &|_| false, &|_| true, &mut out);
        assert!(
            out.is_empty(),
            "no member may see it: the group gets nothing"
        );
        assert!(t.remove(Some("g"), "a/+", 2));
        assert!(!t.remove(Some("g"), "a/+", 2));
        assert_eq!(t.len(), 2);
    }
}
