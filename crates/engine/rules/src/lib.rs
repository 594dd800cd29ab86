//! # rampart-rules
//!
//! Rules and alerts: geofences (polygons with holes, circles, corridors; enter, exit, dwell,
//! count), proximity, lost comms, thresholds with hysteresis, CoT emergencies and SOS flags,
//! evaluated as reports fold, and the alert lifecycle (raised → acknowledged → cleared).
//!
//! The core is sans-IO: [`def`] (definitions and validation), [`geo`] (geometry), [`eval`]
//! (the evaluator), [`alert`] (lifecycle and bounded store), [`import`] (GeoJSON, KML) and
//! [`cot`] (TAK drawings → geofences, alerts → CoT). [`service`] wraps it for a node: it
//! observes the engine's batches, persists definitions, alerts and state under the data
//! directory, and publishes alert events on a broadcast channel; [`webhook`] delivers them.

pub mod alert;
pub mod cot;
pub mod def;
pub mod eval;
pub mod geo;
pub mod import;
pub mod service;
mod store;
pub mod webhook;

pub use alert::{
    AckError, Alert, AlertEvent, AlertKind, AlertLimits, AlertQuery, AlertState, AlertStore,
    Transition,
};
pub use def::{
    Cmp, DefError, DefLimits, Filter, Geofence, Polygon, Priority, Rule, RuleKind, Shape, Triggers,
};
pub use eval::{EvalConfig, Evaluator, Observation};
pub use service::{RulesConfig, RulesService};

#[cfg(test)]
mod tests;
