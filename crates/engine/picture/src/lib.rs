//! # rampart-picture
//!
//! The live common operating picture: every current entity in memory, folded from validated
//! reports, with a uniform lat/lon grid index for bounding-box, radius and nearest-neighbour
//! queries, and a sweep that marks entities stale and drops them after a grace period.
//!
//! It is pure and single-threaded: no I/O, no threads, no clocks (callers pass `now`). The
//! engine wraps a [`Picture`] in a lock.
//!
//! Modules:
//! - `picture`: the [`Picture`] itself (slab, uid index, fold, queries, sweep);
//! - `grid`: the spatial grid;
//! - `geo`: distances and boxes on the sphere ([`haversine_m`], [`BBox`], [`Near`]);
//! - `query`: [`Query`] and the filters it compiles to;
//! - `intern`: sharing of repeated strings, provenances and labels.

mod geo;
mod grid;
mod intern;
mod picture;
mod query;

#[cfg(test)]
mod tests;

pub use geo::{BBox, EARTH_RADIUS_M, Near, haversine_m};
pub use picture::Picture;
pub use query::{Query, type_matches};

use rampart_model::{Defaults, Limits, Uid};

/// Tuning and bounds of a [`Picture`].
#[derive(Clone, Debug, PartialEq)]
pub struct PictureConfig {
    /// Spatial grid cell size in degrees. Smaller cells make small queries cheaper and cost
    /// memory per occupied cell; 0.05 (about 5.5 km of latitude) suits city-to-country views.
    pub cell_deg: f64,
    /// Most entities held. Folding a new uid beyond it returns [`FoldOutcome::Full`].
    pub max_entities: usize,
    /// An entity is removed this many milliseconds after it went stale.
    pub stale_grace_ms: i64,
    /// Most distinct types, `how`s, provenances and labels shared between entities. Beyond it
    /// new values are still stored, just not shared.
    pub max_interned: usize,
    /// Most attributes one entity keeps; merging more keys drops the new extra keys.
    pub max_attributes_per_entity: usize,
    /// Values for fields reports leave out.
    pub defaults: Defaults,
    /// The classification order: an entity's label is the join of its reports' labels.
    pub levels: rampart_labels::Levels,
}

impl Default for PictureConfig {
    fn default() -> Self {
        PictureConfig {
            cell_deg: 0.05,
            max_entities: 2_000_000,
            stale_grace_ms: 10 * 60 * 1000,
            max_interned: 100_000,
            max_attributes_per_entity: Limits::default().max_attributes,
            defaults: Defaults::default(),
            levels: rampart_labels::Levels::default(),
        }
    }
}

/// What [`Picture::fold`] did with a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FoldOutcome {
    /// The uid was new; an entity was created.
    Created,
    /// The existing entity was updated (the report was not older than it).
    Updated,
    /// The report is older than the entity's current state; nothing changed.
    Late,
    /// The uid was new but the picture already holds `max_entities`; nothing changed.
    Full,
}

/// A state change made by [`Picture::sweep`], for subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// The entity passed its stale time and is now marked stale.
    Stale(Uid),
    /// The entity was removed from the picture.
    Removed(Uid),
}
