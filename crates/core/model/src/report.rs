//! Reports: single observations of an entity, as every source codec produces them.
//!
//! A report keeps optional fields optional: a codec fills in only what its protocol carried.
//! The engine resolves the rest with [`Defaults`] when it folds the report into an entity.

use serde::{Deserialize, Serialize};

use crate::{Attributes, Label, Text, Timestamp, Uid};

/// Where a report came from: the source (listener or feed) and the authenticated identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Provenance {
    /// The listener or feed that received it, e.g. `http` or `cot-tcp`.
    pub source: Text,
    /// Who sent it: a certificate subject, token name, device id, or `anonymous`.
    pub identity: Text,
}

impl Provenance {
    /// Builds a provenance from a source and an identity.
    pub fn new(source: &str, identity: &str) -> Self {
        Provenance {
            source: Text::from(source),
            identity: Text::from(identity),
        }
    }
}

/// An idempotency id: a report carrying one is stored and folded at most once.
///
/// In JSON it is either a string (a client-chosen key) or `{"source": "...", "seq": N}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportId {
    /// A client-chosen unique key.
    Key(Text),
    /// A per-source monotonically increasing sequence number.
    Seq {
        /// The sending source's name; sequences of different sources are independent.
        source: Text,
        /// The sequence number within that source.
        seq: u64,
    },
}

/// One observation of an entity.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Report {
    /// Stable entity identifier.
    pub uid: Uid,
    /// Cursor-on-Target type such as `a-f-G-U-C`; defaults to [`Defaults::cot_type`].
    pub cot_type: Option<Text>,
    /// Display name; absent means the entity keeps its previous callsign (or none).
    pub callsign: Option<Text>,
    /// WGS-84 latitude in degrees.
    pub lat: f64,
    /// WGS-84 longitude in degrees.
    pub lon: f64,
    /// Height above the WGS-84 ellipsoid in metres.
    pub hae: Option<f64>,
    /// Circular error (1-sigma) in metres.
    pub ce: Option<f64>,
    /// Linear (vertical) error (1-sigma) in metres.
    pub le: Option<f64>,
    /// Course over ground in degrees true, `[0, 360)`.
    pub course: Option<f64>,
    /// Speed over ground in metres per second.
    pub speed: Option<f64>,
    /// How the position was obtained (CoT `how`, e.g. `m-g` for machine GPS).
    pub how: Option<Text>,
    /// When the observation was made.
    pub time: Timestamp,
    /// When the observation starts being valid; defaults to `time`.
    pub start: Option<Timestamp>,
    /// When the observation stops being valid; defaults to `time` plus [`Defaults::stale_after_ms`].
    pub stale: Option<Timestamp>,
    /// Free numeric and text attributes.
    pub attributes: Attributes,
    /// Security label; defaults to the source's default label.
    pub label: Option<Label>,
    /// Idempotency id, if the sender supplied one.
    pub id: Option<ReportId>,
    /// Who reported it. Set by the receiving edge, never by the sender.
    pub provenance: Provenance,
}

/// Values the engine fills in for fields a report left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// Type for reports without one: `a-u-G` (unknown affiliation, ground).
    pub cot_type: Text,
    /// `how` for reports without one: `h-e` (human entered).
    pub how: Text,
    /// A report without `stale` goes stale this long after its `time`.
    pub stale_after_ms: i64,
    /// Label for reports without one.
    pub label: Label,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            cot_type: Text::const_new("a-u-G"),
            how: Text::const_new("h-e"),
            stale_after_ms: 5 * 60 * 1000,
            label: Label::unclassified(),
        }
    }
}

impl Report {
    /// A minimal report with only the required fields set.
    pub fn new(uid: &str, lat: f64, lon: f64, time: Timestamp) -> Self {
        Report {
            uid: Uid::from(uid),
            lat,
            lon,
            time,
            ..Report::default()
        }
    }

    /// The effective start time.
    pub fn start_or_default(&self) -> Timestamp {
        self.start.unwrap_or(self.time)
    }

    /// The effective stale time under `defaults`.
    pub fn stale_or_default(&self, defaults: &Defaults) -> Timestamp {
        self.stale
            .unwrap_or_else(|| self.time.plus_millis(defaults.stale_after_ms))
    }
}
