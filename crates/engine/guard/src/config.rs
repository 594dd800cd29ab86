//! `[guard]`: the limits and thresholds of the three detectors, with their defaults and the
//! reasons for them. Every map and buffer the guard keeps is bounded by a limit named here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most entries of `[guard.kinematics.max_speed_kmh]` (each is matched per report).
pub const MAX_SPEED_RULES: usize = 64;
/// Most patterns in `[guard.flood] exempt_sources`.
pub const MAX_EXEMPT_SOURCES: usize = 64;

/// `[guard]`: spoofing and abuse detection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Whether the guard screens reports. Unset (the default) means: on when the node runs
    /// with `--secure`, off otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `[guard.kinematics]`: impossible movement → quarantine.
    pub kinematics: KinematicsConfig,
    /// `[guard.flood]`: per-identity rates → throttle.
    pub flood: FloodConfig,
    /// `[guard.jamming]`: area-wide loss of fix → alert.
    pub jamming: JammingConfig,
}

/// `[guard.kinematics]`: what movement is plausible.
///
/// Only CoT atoms (`a-…`) are checked: markers and drawings (`b-…`, `u-d-…`) are moved by
/// hand. The limit of a report is the lower of its entity's type and the report's type, so
/// relabelling a ground unit as an aircraft does not buy a jump.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KinematicsConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Plausible maximum ground speed in km/h by the part of the CoT type after the
    /// affiliation (`a-f-G-U-C` → `G-U-C`); the longest matching prefix wins, on `-`
    /// boundaries. Defaults: `G` ground 250 (fast road vehicles; 400 km/h is not plausible),
    /// `F` special forces 250, `S` sea surface 130 (70 kn: fast patrol and speed boats),
    /// `U` subsurface 100, `A` air 3,500 (military jets up to about Mach 2.8), `A-C` civil
    /// air 1,200, `A-W` weapons (missiles) 30,000, `P` space 30,000 (low orbit is about
    /// 28,000).
    pub max_speed_kmh: BTreeMap<String, f64>,
    /// Limit for atoms whose dimension matches no entry (e.g. `a-u-X`), default 3,500 km/h:
    /// an unknown type is given the benefit of the doubt of a fast aircraft.
    pub other_max_kmh: f64,
    /// Movement up to this distance is never judged (GPS noise, two sensors disagreeing),
    /// default 200 m.
    pub min_distance_m: f64,
    /// The tolerated distance also grows with the reports' circular errors: `ce_factor` times
    /// the sum of both `ce` values (default 3, i.e. 3 sigma)…
    pub ce_factor: f64,
    /// …but by at most this much (default 2,000 m), so claiming `ce = 9999999` does not make
    /// any jump plausible.
    pub max_ce_slack_m: f64,
    /// Intervals shorter than this are rounded up to it (default 1,000 ms): many sources send
    /// whole seconds, and two reports in the same second are not infinitely fast.
    pub min_dt_ms: i64,
    /// A jump longer than this within `max_jump_window_ms` is refused whatever the type
    /// (default 50,000 m).
    pub max_jump_m: f64,
    /// See `max_jump_m` (default 1,000 ms).
    pub max_jump_window_ms: i64,
    /// Quarantined reports kept for `GET /api/v1/quarantine`; the oldest go first (default
    /// 10,000).
    pub max_quarantined: usize,
}

impl Default for KinematicsConfig {
    fn default() -> Self {
        let max_speed_kmh = [
            ("G", 250.0),
            ("F", 250.0),
            ("S", 130.0),
            ("U", 100.0),
            ("A", 3_500.0),
            ("A-C", 1_200.0),
            ("A-W", 30_000.0),
            ("P", 30_000.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        KinematicsConfig {
            enabled: true,
            max_speed_kmh,
            other_max_kmh: 3_500.0,
            min_distance_m: 200.0,
            ce_factor: 3.0,
            max_ce_slack_m: 2_000.0,
            min_dt_ms: 1_000,
            max_jump_m: 50_000.0,
            max_jump_window_ms: 1_000,
            max_quarantined: 10_000,
        }
    }
}

/// `[guard.flood]`: per-identity rate learning and throttling.
///
/// Each (source, identity) pair counts its reports in windows of `window_ms` and learns its
/// normal rate as an exponentially weighted moving average of the windows it was not
/// throttled in (a window with no reports counts as zero). Within a window, reports beyond
/// `max(min_rate_per_sec, factor × learned rate)` are refused; the first refusal starts an
/// episode and raises one alert; a window without refusals ends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Counting window (default 1,000 ms).
    pub window_ms: i64,
    /// Weight of the newest window in the learned rate, in (0, 1] (default 0.2: about the
    /// last five windows).
    pub ewma_alpha: f64,
    /// How far above its learned rate an identity may go (default 10×)…
    pub factor: f64,
    /// …and a rate every identity may reach whatever it learned (default 200 reports/s).
    pub min_rate_per_sec: f64,
    /// The learned rate an identity starts with (default 1,000 reports/s, so a new identity
    /// may send up to 10,000/s at first: a gateway connecting is not a flood).
    pub initial_rate_per_sec: f64,
    /// Most identities tracked; the least recently active is forgotten (default 10,000).
    pub max_identities: usize,
    /// Sources never throttled: exact names, or `*` at the start or end of a pattern
    /// (default `sim` and `*-replay`: the demo and `rampart replay` are local and bulk).
    pub exempt_sources: Vec<String>,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            enabled: true,
            window_ms: 1_000,
            ewma_alpha: 0.2,
            factor: 10.0,
            min_rate_per_sec: 200.0,
            initial_rate_per_sec: 1_000.0,
            max_identities: 10_000,
            exempt_sources: vec!["sim".into(), "*-replay".into()],
        }
    }
}

/// `[guard.jamming]`: many entities in one area losing their fix at once.
///
/// A loss is an entity going stale (silent past its stale time), or a report whose circular
/// error is at least `lost_fix_ce_m` from an entity whose last known circular error was below
/// it (an entity that never gave one has no fix to lose). Losses are counted per
/// grid cell at the entity's last good position; `min_entities` distinct entities within
/// `window_ms` raise one alert for the cell, and further losses there within `window_ms`
/// of it belong to the same episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JammingConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Grid cell size in degrees (default 0.5, about 55 km north-south: a jammer's reach).
    pub cell_deg: f64,
    /// Losses closer together than this are "at once" (default 60,000 ms).
    pub window_ms: i64,
    /// Distinct entities that must lose their fix in one cell within the window (default 5).
    pub min_entities: usize,
    /// A report with a circular error at least this large has no fix (default 10,000 m; CoT
    /// uses 9,999,999 for "unknown").
    pub lost_fix_ce_m: f64,
    /// Most cells tracked; cells with no recent loss go first, then the least recently
    /// active (default 10,000).
    pub max_cells: usize,
}

impl Default for JammingConfig {
    fn default() -> Self {
        JammingConfig {
            enabled: true,
            cell_deg: 0.5,
            window_ms: 60_000,
            min_entities: 5,
            lost_fix_ce_m: 10_000.0,
            max_cells: 10_000,
        }
    }
}

fn positive(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("guard.{name} must be a positive number (got {v})"))
    }
}

impl GuardConfig {
    /// Checks the values the types cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let k = &self.kinematics;
        if k.max_speed_kmh.len() > MAX_SPEED_RULES {
            return Err(format!(
                "guard.kinematics.max_speed_kmh has {} entries; at most {MAX_SPEED_RULES}",
                k.max_speed_kmh.len()
            ));
        }
        for (key, v) in &k.max_speed_kmh {
            if key.is_empty() || key.starts_with('-') || key.ends_with('-') {
                return Err(format!(
                    "guard.kinematics.max_speed_kmh: {key:?} is not a CoT type part such as \"G\" or \"A-C\""
                ));
            }
            positive(&format!("kinematics.max_speed_kmh.{key}"), *v)?;
        }
        positive("kinematics.other_max_kmh", k.other_max_kmh)?;
        positive("kinematics.max_jump_m", k.max_jump_m)?;
        if !(k.min_distance_m.is_finite() && k.min_distance_m >= 0.0) {
            return Err("guard.kinematics.min_distance_m must be 0 or more".into());
        }
        if !(k.ce_factor.is_finite() && k.ce_factor >= 0.0) {
            return Err("guard.kinematics.ce_factor must be 0 or more".into());
        }
        if !(k.max_ce_slack_m.is_finite() && k.max_ce_slack_m >= 0.0) {
            return Err("guard.kinematics.max_ce_slack_m must be 0 or more".into());
        }
        if k.min_dt_ms < 1 || k.max_jump_window_ms < 0 {
            return Err(
                "guard.kinematics.min_dt_ms must be at least 1 and max_jump_window_ms 0 or more"
                    .into(),
            );
        }
        if k.max_quarantined == 0 {
            return Err("guard.kinematics.max_quarantined must be at least 1".into());
        }
        let f = &self.flood;
        if f.window_ms < 1 {
            return Err("guard.flood.window_ms must be at least 1".into());
        }
        if !(f.ewma_alpha > 0.0 && f.ewma_alpha <= 1.0) {
            return Err("guard.flood.ewma_alpha must be in (0, 1]".into());
        }
        positive("flood.factor", f.factor)?;
        positive("flood.min_rate_per_sec", f.min_rate_per_sec)?;
        if !(f.initial_rate_per_sec.is_finite() && f.initial_rate_per_sec >= 0.0) {
            return Err("guard.flood.initial_rate_per_sec must be 0 or more".into());
        }
        if f.max_identities == 0 {
            return Err("guard.flood.max_identities must be at least 1".into());
        }
        if f.exempt_sources.len() > MAX_EXEMPT_SOURCES {
            return Err(format!(
                "guard.flood.exempt_sources has {} patterns; at most {MAX_EXEMPT_SOURCES}",
                f.exempt_sources.len()
            ));
        }
        let j = &self.jamming;
        if !(j.cell_deg > 0.0 && j.cell_deg <= 10.0) {
            return Err("guard.jamming.cell_deg must be in (0, 10]".into());
        }
        if j.window_ms < 1 {
            return Err("guard.jamming.window_ms must be at least 1".into());
        }
        if j.min_entities < 2 || j.min_entities > 10_000 {
            return Err("guard.jamming.min_entities must be in [2, 10000]".into());
        }
        positive("jamming.lost_fix_ce_m", j.lost_fix_ce_m)?;
        if j.max_cells == 0 {
            return Err("guard.jamming.max_cells must be at least 1".into());
        }
        Ok(())
    }
}
