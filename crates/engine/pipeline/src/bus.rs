//! The delta bus: how changes to the live picture reach subscribers (WebSocket clients now,
//! TAK and MQTT subscribers later).
//!
//! It is a bounded `tokio::sync::broadcast` channel of delta batches. Publishing never waits,
//! so a slow subscriber can never slow ingest. A subscriber that falls more than the channel's
//! capacity behind loses its place (`RecvError::Lagged`) and must resynchronise from a fresh
//! snapshot: that is how it gets "the latest state per entity" instead of every intermediate
//! update, and why memory stays bounded whatever the subscriber does.

use std::sync::Arc;

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
pub struct Subscription {
    /// Entities matching the subscriber's filter at subscription time.
    pub snapshot: Vec<Entity>,
    /// Deltas published after the snapshot was taken.
    pub deltas: broadcast::Receiver<Arc<Delta>>,
}
