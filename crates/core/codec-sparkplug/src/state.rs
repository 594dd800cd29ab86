//! What a Sparkplug host must remember between messages, bounded: the alias table of every
//! edge node and device ([`AliasBook`]: birth registers name ↔ alias and data type, data and
//! commands resolve aliases, death forgets), and each edge node's session (its `bdSeq` and
//! the next expected `seq`, 0..=255 wrapping).
//!
//! Bounds ([`BookLimits`]): the number of scopes (edge nodes and devices), the metrics
//! registered per scope and in total. A birth for a new scope when the book is full evicts
//! the least recently used scope or is refused, per [`FullPolicy`].

use std::collections::HashMap;

use crate::payload::DataType;

/// An edge node (`device_id` `None`) or one of its devices.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// Group id.
    pub group_id: String,
    /// Edge node id.
    pub edge_node_id: String,
    /// Device id, `None` for the edge node itself.
    pub device_id: Option<String>,
}

impl Scope {
    /// The edge node this scope belongs to (itself for an edge node).
    pub fn node(&self) -> Scope {
        Scope {
            device_id: None,
            ..self.clone()
        }
    }
}

/// What to do with a birth for a new scope when [`BookLimits::max_nodes`] are in the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Forget the scope that was used least recently (its later data then reports unknown
    /// aliases until it is born again).
    #[default]
    EvictLeastRecent,
    /// Refuse the birth with [`StateError::TooManyNodes`].
    Refuse,
}

/// Bounds of the [`AliasBook`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookLimits {
    /// Scopes (edge nodes plus devices) remembered at once.
    pub max_nodes: usize,
    /// Metrics (with or without an alias) registered per scope by one birth.
    pub max_aliases_per_node: usize,
    /// Metrics registered over all scopes.
    pub max_total_aliases: usize,
    /// Behaviour when `max_nodes` is reached.
    pub on_full: FullPolicy,
}

impl Default for BookLimits {
    fn default() -> Self {
        BookLimits {
            max_nodes: 4096,
            max_aliases_per_node: 10_000,
            max_total_aliases: 200_000,
            on_full: FullPolicy::EvictLeastRecent,
        }
    }
}

/// Why the book refused something.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The book is full and the policy is [`FullPolicy::Refuse`].
    #[error("alias book is full: {max} nodes and devices (limit max_nodes)")]
    TooManyNodes {
        /// The limit.
        max: usize,
    },
    /// The scope already has `max` metrics registered.
    #[error("more than {max} metrics registered for one node or device (limit {limit})")]
    TooManyAliases {
        /// Which limit: `max_aliases_per_node` or `max_total_aliases`.
        limit: &'static str,
        /// Its value.
        max: usize,
    },
    /// Two metrics of one birth share an alias (the specification forbids it).
    #[error("alias {alias} is already used by metric {existing:?}")]
    DuplicateAlias {
        /// The alias.
        alias: u64,
        /// The metric that registered it first.
        existing: String,
    },
    /// No scope with this key (register before begin_birth).
    #[error("no birth on record for this node or device")]
    NotBorn,
}

/// A break in an edge node's `seq` sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqGap {
    /// The `seq` that should have come.
    pub expected: u8,
    /// The `seq` that came (`None`: the message had none).
    pub got: Option<u8>,
}

#[derive(Debug, Default)]
struct Entry {
    /// alias → (name, type).
    aliases: HashMap<u64, (String, DataType)>,
    /// name → type, for data messages that leave the type out.
    types: HashMap<String, DataType>,
    /// Birth/death sequence number of the node's session (edge nodes only).
    bd_seq: Option<u64>,
    /// Next expected `seq` (edge nodes only; `None` once a message lacked it).
    next_seq: Option<u8>,
    last_used: u64,
}

/// The bounded alias and session table of a Sparkplug host. See the module documentation.
#[derive(Debug)]
pub struct AliasBook {
    limits: BookLimits,
    entries: HashMap<Scope, Entry>,
    total: usize,
    tick: u64,
    evictions: u64,
}

impl AliasBook {
    /// An empty book.
    pub fn new(limits: BookLimits) -> Self {
        AliasBook {
            limits,
            entries: HashMap::new(),
            total: 0,
            tick: 0,
            evictions: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &BookLimits {
        &self.limits
    }

    /// Scopes remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Metrics registered over all scopes.
    pub fn total_aliases(&self) -> usize {
        self.total
    }

    /// Scopes evicted so far to make room.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// True when `scope` has a birth on record.
    pub fn is_born(&self, scope: &Scope) -> bool {
        self.entries.contains_key(scope)
    }

    /// Starts a birth of `scope`: forgets what it registered before (and, for an edge node,
    /// every device of the node, as a new session begins). Returns the scope evicted to make
    /// room, if any.
    pub fn begin_birth(&mut self, scope: &Scope) -> Result<Option<Scope>, StateError> {
        if scope.device_id.is_none() {
            self.clear_node(&scope.group_id, &scope.edge_node_id);
        } else {
            self.remove(scope);
        }
        let mut evicted = None;
        if self.entries.len() >= self.limits.max_nodes {
            if self.limits.on_full == FullPolicy::Refuse || self.limits.max_nodes == 0 {
                return Err(StateError::TooManyNodes {
                    max: self.limits.max_nodes,
                });
            }
            // O(max_nodes), only when the book is full.
            if let Some(k) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            {
                self.remove(&k);
                self.evictions += 1;
                evicted = Some(k);
            }
        }
        self.tick += 1;
        self.entries.insert(
            scope.clone(),
            Entry {
                last_used: self.tick,
                ..Entry::default()
            },
        );
        Ok(evicted)
    }

    /// Registers a metric of the birth of `scope` (after [`AliasBook::begin_birth`]).
    pub fn register(
        &mut self,
        scope: &Scope,
        name: &str,
        alias: Option<u64>,
        datatype: DataType,
    ) -> Result<(), StateError> {
        let at_total = self.total >= self.limits.max_total_aliases;
        let e = self.entries.get_mut(scope).ok_or(StateError::NotBorn)?;
        if let Some(a) = alias
            && let Some((existing, _)) = e.aliases.get(&a)
        {
            return Err(StateError::DuplicateAlias {
                alias: a,
                existing: existing.clone(),
            });
        }
        if !e.types.contains_key(name) {
            if e.types.len() >= self.limits.max_aliases_per_node {
                return Err(StateError::TooManyAliases {
                    limit: "max_aliases_per_node",
                    max: self.limits.max_aliases_per_node,
                });
            }
            if at_total {
                return Err(StateError::TooManyAliases {
                    limit: "max_total_aliases",
                    max: self.limits.max_total_aliases,
                });
            }
            self.total += 1;
        }
        e.types.insert(name.to_owned(), datatype);
        if let Some(a) = alias {
            e.aliases.insert(a, (name.to_owned(), datatype));
        }
        Ok(())
    }

    /// The name and type registered for `alias` at the birth of `scope`.
    pub fn resolve(&self, scope: &Scope, alias: u64) -> Option<(&str, DataType)> {
        let (n, t) = self.entries.get(scope)?.aliases.get(&alias)?;
        Some((n, *t))
    }

    /// The type registered for metric `name` at the birth of `scope`.
    pub fn datatype_of(&self, scope: &Scope, name: &str) -> Option<DataType> {
        self.entries.get(scope)?.types.get(name).copied()
    }

    /// Marks `scope` as used now (for eviction order).
    pub fn touch(&mut self, scope: &Scope) {
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(scope) {
            e.last_used = self.tick;
        }
    }

    /// Forgets `scope`. Returns whether it was known.
    pub fn remove(&mut self, scope: &Scope) -> bool {
        match self.entries.remove(scope) {
            Some(e) => {
                self.total -= e.types.len();
                true
            }
            None => false,
        }
    }

    /// Forgets an edge node and all its devices.
    pub fn clear_node(&mut self, group_id: &str, edge_node_id: &str) {
        let gone: Vec<Scope> = self
            .entries
            .keys()
            .filter(|k| k.group_id == group_id && k.edge_node_id == edge_node_id)
            .cloned()
            .collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// The `bdSeq` the edge node announced at birth.
    pub fn bd_seq(&self, node: &Scope) -> Option<u64> {
        self.entries.get(node)?.bd_seq
    }

    /// Records the `bdSeq` of an edge node's birth.
    pub fn set_bd_seq(&mut self, node: &Scope, bd_seq: Option<u64>) {
        if let Some(e) = self.entries.get_mut(node) {
            e.bd_seq = bd_seq;
        }
    }

    /// Records the `seq` of an edge node's birth: the sequence restarts there.
    pub fn start_seq(&mut self, node: &Scope, seq: Option<u8>) {
        if let Some(e) = self.entries.get_mut(node) {
            e.next_seq = seq.map(|s| s.wrapping_add(1));
        }
    }

    /// Checks the `seq` of a message that continues an edge node's sequence (NDATA, DBIRTH,
    /// DDATA, DDEATH) and advances it. Returns the gap when it is not the expected one;
    /// `None` when it is, or when the node has no birth (or expected `seq`) on record.
    pub fn observe_seq(&mut self, node: &Scope, seq: Option<u8>) -> Option<SeqGap> {
        let e = self.entries.get_mut(node)?;
        let expected = e.next_seq;
        e.next_seq = seq.map(|s| s.wrapping_add(1));
        let expected = expected?;
        (seq != Some(expected)).then_some(SeqGap { expected, got: seq })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn node(n: &str) -> Scope {
        Scope {
            group_id: "g".into(),
            edge_node_id: n.into(),
            device_id: None,
        }
    }

    fn dev(n: &str, d: &str) -> Scope {
        Scope {
            device_id: Some(d.into()),
            ..node(n)
        }
    }

    #[test]
    fn birth_registers_and_death_forgets() {
        let mut b = AliasBook::new(BookLimits::default());
        let n = node("e1");
        let d = dev("e1", "d1");
        b.begin_birth(&n).unwrap();
        b.register(&n, "temp", Some(1), DataType::Double).unwrap();
        b.register(&n, "label", None, DataType::String).unwrap();
        b.begin_birth(&d).unwrap();
        b.register(&d, "rpm", Some(1), DataType::UInt16).unwrap();
        assert_eq!(b.resolve(&n, 1), Some(("temp", DataType::Double)));
        assert_eq!(b.resolve(&d, 1), Some(("rpm", DataType::UInt16)));
        assert_eq!(b.datatype_of(&n, "label"), Some(DataType::String));
        assert_eq!(b.resolve(&n, 2), None);
        assert_eq!(b.total_aliases(), 3);
        // A device death forgets the device only.
        assert!(b.remove(&d));
        assert_eq!(b.resolve(&d, 1), None);
        assert_eq!(b.resolve(&n, 1), Some(("temp", DataType::Double)));
        // A node rebirth forgets the node's devices.
        b.begin_birth(&d).unwrap();
        b.register(&d, "rpm", Some(1), DataType::UInt16).unwrap();
        b.begin_birth(&n).unwrap();
        assert!(!b.is_born(&d));
        assert_eq!(b.resolve(&n, 1), None);
        assert_eq!(b.total_aliases(), 0);
        b.clear_node("g", "e1");
        assert!(b.is_empty());
    }

    #[test]
    fn duplicate_alias_and_per_node_limit() {
        let mut b = AliasBook::new(BookLimits {
            max_aliases_per_node: 2,
            ..BookLimits::default()
        });
        let n = node("e1");
        b.begin_birth(&n).unwrap();
        b.register(&n, "a", Some(1), DataType::Int8).unwrap();
        let e = b.register(&n, "b", Some(1), DataType::Int8).unwrap_err();
        assert_eq!(e.to_string(), "alias 1 is already used by metric \"a\"");
        b.register(&n, "b", Some(2), DataType::Int8).unwrap();
        let e = b.register(&n, "c", Some(3), DataType::Int8).unwrap_err();
        assert!(e.to_string().contains("max_aliases_per_node"), "{e}");
        assert_eq!(
            b.register(&node("x"), "a", None, DataType::Int8),
            Err(StateError::NotBorn)
        );
    }

    #[test]
    fn total_limit() {
        let mut b = AliasBook::new(BookLimits {
            max_total_aliases: 1,
            ..BookLimits::default()
        });
        b.begin_birth(&node("a")).unwrap();
        b.register(&node("a"), "m", Some(1), DataType::Int8)
            .unwrap();
        b.begin_birth(&node("b")).unwrap();
        let e = b
            .register(&node("b"), "m", Some(1), DataType::Int8)
            .unwrap_err();
        assert!(e.to_string().contains("max_total_aliases"), "{e}");
    }

    #[test]
    fn full_book_evicts_least_recent_or_refuses() {
        let mut b = AliasBook::new(BookLimits {
            max_nodes: 2,
            ..BookLimits::default()
        });
        b.begin_birth(&node("a")).unwrap();
        b.begin_birth(&node("b")).unwrap();
        b.touch(&node("a"));
        assert_eq!(b.begin_birth(&node("c")).unwrap(), Some(node("b")));
        assert!(b.is_born(&node("a")) && b.is_born(&node("c")) && !b.is_born(&node("b")));
        assert_eq!(b.evictions(), 1);
        // A rebirth of a known scope needs no room.
        assert_eq!(b.begin_birth(&node("a")).unwrap(), None);

        let mut r = AliasBook::new(BookLimits {
            max_nodes: 1,
            on_full: FullPolicy::Refuse,
            ..BookLimits::default()
        });
        r.begin_birth(&node("a")).unwrap();
        let e = r.begin_birth(&node("b")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "alias book is full: 1 nodes and devices (limit max_nodes)"
        );
    }

    #[test]
    fn seq_wraps_and_gaps_are_seen() {
        let mut b = AliasBook::new(BookLimits::default());
        let n = node("e");
        assert_eq!(
            b.observe_seq(&n, Some(3)),
            None,
            "unborn: nothing to compare"
        );
        b.begin_birth(&n).unwrap();
        b.start_seq(&n, Some(254));
        assert_eq!(b.observe_seq(&n, Some(255)), None);
        assert_eq!(b.observe_seq(&n, Some(0)), None, "255 wraps to 0");
        assert_eq!(
            b.observe_seq(&n, Some(2)),
            Some(SeqGap {
                expected: 1,
                got: Some(2)
            })
        );
        assert_eq!(b.observe_seq(&n, Some(3)), None, "resynchronised");
        assert_eq!(
            b.observe_seq(&n, None),
            Some(SeqGap {
                expected: 4,
                got: None
            })
        );
        assert_eq!(
            b.observe_seq(&n, Some(9)),
            None,
            "no expectation after a missing seq"
        );
        assert_eq!(
            b.observe_seq(&n, Some(11)),
            Some(SeqGap {
                expected: 10,
                got: Some(11)
            })
        );
    }
}
