//! # rampart-guard
//!
//! Spoofing and abuse detection for the report pipeline. Three detectors, each bounded by the
//! named limits of [`GuardConfig`]:
//!
//! - [`kinematics`]: a report implying a speed above the plausible maximum for its entity's
//!   CoT type (or a jump of tens of kilometres in a second) is **quarantined**: refused,
//!   neither stored nor folded, kept in a bounded ring for review, and alerted (`spoofing`).
//! - [`flood`]: each (source, identity) learns its normal rate; one sending far above it is
//!   **throttled** (reports refused and counted) and alerted once per episode (`flood`).
//!   Other identities are unaffected.
//! - [`jamming`]: many entities in one grid cell losing their fix or going silent within a
//!   short window raise one `jamming` alert for the area.
//!
//! The detectors and [`Guard`] are pure and sans-IO: callers pass `now`. [`screen`] adapts
//! them to the engine ([`rampart_engine::ReportScreen`]), the rules engine's alert stream
//! ([`rampart_rules::RulesService::raise_external`]) and the metrics.

pub mod config;
pub mod flood;
pub mod geo;
pub mod guard;
pub mod jamming;
pub mod kinematics;
pub mod screen;

pub use config::{FloodConfig, GuardConfig, JammingConfig, KinematicsConfig};
pub use guard::{Finding, Guard, GuardStats, Prior, Verdict};
pub use kinematics::{Previous, QuarantineQuery, Quarantined};
pub use screen::GuardScreen;
