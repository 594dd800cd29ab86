//! Entities: the folded, current state of one tracked thing in the live picture.
//!
//! Strings that repeat across many entities (type, `how`, provenance, label) are shared
//! `Arc`s interned by the picture, which keeps an entity near 250 bytes.

use std::sync::Arc;

use crate::{Attributes, Label, Provenance, Text, Timestamp, Uid, sidc};

/// Whether an entity is current or past its `stale` time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityState {
    /// Within its validity window.
    Live,
    /// Past its `stale` time; dropped from the picture after the grace period.
    Stale,
}

/// The current state of one entity: the fold of every report about it, newest `time` winning.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// Stable identifier.
    pub uid: Uid,
    /// Cursor-on-Target type, e.g. `a-f-G-U-C`.
    pub cot_type: Arc<str>,
    /// Display name, if any report gave one.
    pub callsign: Option<Text>,
    /// WGS-84 latitude in degrees.
    pub lat: f64,
    /// WGS-84 longitude in degrees.
    pub lon: f64,
    /// Height above ellipsoid in metres.
    pub hae: Option<f64>,
    /// Circular error (1-sigma) in metres.
    pub ce: Option<f64>,
    /// Linear error (1-sigma) in metres.
    pub le: Option<f64>,
    /// Course in degrees true.
    pub course: Option<f64>,
    /// Speed in metres per second.
    pub speed: Option<f64>,
    /// CoT `how`.
    pub how: Arc<str>,
    /// Observation time of the newest folded report.
    pub time: Timestamp,
    /// Validity start of the newest folded report.
    pub start: Timestamp,
    /// Validity end of the newest folded report.
    pub stale: Timestamp,
    /// Who sent the newest folded report.
    pub provenance: Arc<Provenance>,
    /// Merged free attributes; `None` until a report carries some.
    pub attributes: Option<Box<Attributes>>,
    /// Security label.
    pub label: Arc<Label>,
    /// Live or stale.
    pub state: EntityState,
    /// Server time at which the newest folded report was accepted.
    pub received: Timestamp,
}

impl Entity {
    /// The MIL-STD-2525C symbol code derived from the CoT type.
    pub fn sidc(&self) -> sidc::Sidc {
        sidc::from_cot_type(&self.cot_type)
    }

    /// True when past the stale time.
    pub fn is_stale(&self) -> bool {
        self.state == EntityState::Stale
    }
}
