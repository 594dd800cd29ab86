//! The delta bus: how changes to the live picture reach subscribers (WebSocket clients now,
//! TAK and MQTT subscribers later).
//!
//! It is a bounded `tokio::sync::broadcast` channel of delta batches. Publishing never waits,
//! so a slow subscriber can never slow ingest. A subscriber that falls more than the channel's
//! capacity behind loses its place (`RecvError::Lagged`) and must resynchronise from a fresh
//! snapshot: that is how it gets "the latest state per entity" instead of every intermediate
//! update, and why memory stays bounded whatever the subscriber does.
//!
//! Subscribers may also declare which updates they want ([`Interest`]). The engine builds a
//! batch's `Updated` delta (one entity clone per updated entity) only when some subscriber
//! wants at least one of its entities: a CoT bridge that ignores CoT-sourced entities costs
//! nothing for CoT traffic when it is the only subscriber.

use std::sync::Arc;

use parking_lot::Mutex;
use rampart_model::{Entity, Uid};
use tokio::sync::broadcast;

/// One entity's new state, with where it was before the batch (to tell a subscriber with a
/// spatial filter that the entity left its area).
#[derive(Clone, Debug)]
pub struct EntityUpdate {
    /// The entity after the batch was folded.
    pub entity: Entity,
    /// `(lat, lon)` before the batch, or `None` for a new entity.
    pub prev: Option<(f64, f64)>,
}

/// A batch of changes to the live picture.
#[derive(Clone, Debug)]
pub enum Delta {
    /// Entities created or updated.
    Updated(Vec<EntityUpdate>),
    /// Entities that went past their stale time (their current state included).
    Stale(Vec<Entity>),
    /// Entities dropped from the live picture after the stale grace period.
    Removed(Vec<Uid>),
}

/// A subscriber's view: a consistent snapshot, then every delta published after it.
///
/// A subscription with an [`Interest`] should be kept whole while it is used: its interest is
/// withdrawn when the `Subscription` is dropped, not when `deltas` alone is.
pub struct Subscription {
    /// Withdraws the interest on drop. Declared first so it is dropped before the receiver: in
    /// between, the engine only over-builds deltas, never under-builds them.
    pub(crate) _interest: Option<InterestGuard>,
    /// Entities matching the subscriber's filter at subscription time.
    pub snapshot: Vec<Entity>,
    /// Deltas published after the snapshot was taken.
    pub deltas: broadcast::Receiver<Arc<Delta>>,
}

/// Which entity updates a subscriber wants. It only lets the engine skip building deltas that
/// no subscriber wants: a delta built for another subscriber still carries every updated
/// entity, so the subscriber must filter too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    /// Entities whose provenance source starts with one of these are not wanted.
    pub exclude_source_prefixes: Vec<String>,
}

impl Interest {
    /// Whether an entity last updated by `source` is wanted.
    pub fn wants(&self, source: &str) -> bool {
        !self
            .exclude_source_prefixes
            .iter()
            .any(|p| source.starts_with(p.as_str()))
    }
}

/// The interests of the live filtered subscriptions. Bounded by the number of subscriptions
/// (each holds one entry and removes it on drop).
#[derive(Default)]
pub(crate) struct Interests {
    inner: Mutex<InterestList>,
}

struct InterestList {
    next_id: u64,
    ids: Vec<u64>,
    /// The interests, in `ids` order; rebuilt on every change so a batch takes it with one
    /// reference count increment.
    current: Arc<[Interest]>,
}

impl Default for InterestList {
    fn default() -> Self {
        InterestList {
            next_id: 0,
            ids: Vec::new(),
            current: Arc::from(Vec::new()),
        }
    }
}

/// What the subscribers of one batch want.
pub(crate) enum Wanted {
    /// Nobody listens.
    Nothing,
    /// At least one subscriber wants every update.
    All,
    /// Every subscriber declared an interest: an update is wanted if any of them wants it.
    Some(Arc<[Interest]>),
}

impl Wanted {
    /// Whether an update whose entity came from `source` is wanted.
    pub(crate) fn source(&self, source: &str) -> bool {
        match self {
            Wanted::Nothing => false,
            Wanted::All => true,
            Wanted::Some(list) => list.iter().any(|i| i.wants(source)),
        }
    }
}

impl Interests {
    /// Registers `interest`; the guard withdraws it.
    pub(crate) fn register(self: &Arc<Self>, interest: Interest) -> InterestGuard {
        let mut l = self.inner.lock();
        let id = l.next_id;
        l.next_id += 1;
        l.ids.push(id);
        let mut v = l.current.to_vec();
        v.push(interest);
        l.current = Arc::from(v);
        InterestGuard {
            set: Arc::downgrade(self),
            id,
        }
    }

    /// What `receivers` live receivers want. Only when every receiver has a registered
    /// interest is the answer narrower than `All`; any mismatch (a receiver without interest,
    /// or an interest outliving its receiver) answers `All`, which is always safe.
    pub(crate) fn wanted(&self, receivers: usize) -> Wanted {
        if receivers == 0 {
            return Wanted::Nothing;
        }
        let l = self.inner.lock();
        if l.ids.len() != receivers {
            return Wanted::All;
        }
        Wanted::Some(Arc::clone(&l.current))
    }
}

/// Withdraws a subscription's interest when dropped.
pub(crate) struct InterestGuard {
    set: std::sync::Weak<Interests>,
    id: u64,
}

impl Drop for InterestGuard {
    fn drop(&mut self) {
        if let Some(set) = self.set.upgrade() {
            let mut l = set.inner.lock();
            if let Some(at) = l.ids.iter().position(|&id| id == self.id) {
                l.ids.remove(at);
                let mut v = l.current.to_vec();
                v.remove(at);
                l.current = Arc::from(v);
            }
        }
    }
}
