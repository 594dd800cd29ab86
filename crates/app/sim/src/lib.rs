//! # rampart-sim
//!
//! The built-in scenario simulator behind `rampart demo`: a deterministic, living common
//! operating picture over a coastal area of operations, so a newcomer sees moving tracks the
//! moment Rampart starts, without a single sensor attached.
//!
//! A [`Scenario`] holds a few thousand (up to 100 000) entities of five classes:
//!
//! | class | CoT types | motion | reports every |
//! |---|---|---|---|
//! | ground vehicles | `a-f-G-E-V`, `a-f-G-U-C-A…`, hostile `a-h-G-…` | along a generated road network, 10–25 m/s, braking for corners, looping or reversing | 2–10 s |
//! | dismounted soldiers | `a-f-G-U-C-I` | squad patrol areas, 1–2 m/s, meandering; radio `battery` % | 5–15 s |
//! | aircraft | `a-f-A-M-F`, `a-f-A-M-F-Q`, `a-f-A-C-H`, `a-h-A-M-F`, `a-n-A-C-F` | racetrack/circle orbits and transits, 60–250 m/s, 300–9 000 m | 1–5 s |
//! | vessels | `a-n-S-C`, `a-f-S-C`, `a-u-S` | sea lanes and patrol boxes, 3–12 m/s | 10–30 s |
//! | fixed sensors, installations | `a-f-G-E-S`, `a-f-G-I` | fixed; `battery`, `temperature_c`, `signal_dbm`, `status` | 30–60 s |
//!
//! About 5 % of the entities have a poor link (a report every 5–15 minutes) or fall silent
//! for good after a few minutes; every report's `stale` is three *nominal* intervals after its
//! time, so these go stale on the picture while everybody else stays live.
//!
//! The crate is pure: no I/O, threads or clocks. The caller passes the time to
//! [`Scenario::tick`] and forwards the returned reports wherever it likes.
//!
//! ```
//! use rampart_model::{Limits, Timestamp};
//! use rampart_sim::{Scenario, ScenarioConfig};
//!
//! let start = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z
//! let mut sim = Scenario::new(ScenarioConfig { entities: 200, ..ScenarioConfig::default() }, start);
//! let first = sim.tick(start);
//! assert_eq!(first.len(), sim.len()); // the first tick reports everyone
//! let next = sim.tick(start.plus_millis(1_000));
//! assert!(next.iter().all(|r| Limits::default().validate(r).is_ok()));
//! ```

mod entity;
mod geo;
mod names;
mod rng;
mod spawn;
mod world;

use rampart_model::{Report, Timestamp};

use crate::entity::SimEntity;
use crate::geo::{Frame, wrap_lon};
use crate::rng::Rng;
use crate::world::World;

/// How far behind its schedule an entity may fall before it skips ahead instead of replaying
/// every missed report. Bounds the cost of a tick after a long pause (a suspended laptop).
const CATCH_UP_MS: i64 = 10 * 60 * 1000;

/// Scenario parameters. [`ScenarioConfig::default`] gives the stock `rampart demo` picture.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioConfig {
    /// Random seed: the same seed, configuration and tick times give the same reports.
    pub seed: u64,
    /// Number of entities, default 2 500; 100 000 is still cheap to tick once a second.
    pub entities: usize,
    /// Latitude of the AO centre in degrees (default 54.3 N, Kiel Bay).
    pub center_lat: f64,
    /// Longitude of the AO centre in degrees (default 10.1 E, Kiel Bay).
    pub center_lon: f64,
    /// AO radius in kilometres (default 60); clamped to 5–2 000 km.
    pub radius_km: f64,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        // Kiel Bay: the city and Schleswig-Holstein to the south, the western Baltic to the
        // north, so the default picture has roads, shipping lanes and coastline.
        ScenarioConfig {
            seed: 0x5EED_2026,
            entities: 2_500,
            center_lat: 54.3,
            center_lon: 10.1,
            radius_km: 60.0,
        }
    }
}

/// A running scenario: the entities and the generated geography they move through.
///
/// Geography follows a synthetic shore a few kilometres north of the centre (matching the
/// Kiel Bay shore for the default centre): land with roads to the south, sea lanes to the north.
#[derive(Clone, Debug)]
pub struct Scenario {
    config: ScenarioConfig,
    frame: Frame,
    world: World,
    entities: Vec<SimEntity>,
    /// Size of the previous tick's output, used to pre-size the next one.
    last_batch: usize,
}

impl Scenario {
    /// Builds the scenario starting at `start`; every entity is due at `start`.
    ///
    /// Out-of-range configuration values are repaired rather than rejected, since a demo should
    /// always run: a non-finite or out-of-range latitude falls back to the default centre, the
    /// longitude is wrapped into `[-180, 180)` and the radius is clamped to 5–2 000 km.
    pub fn new(cfg: ScenarioConfig, start: Timestamp) -> Self {
        let defaults = ScenarioConfig::default();
        let mut config = cfg;
        if !config.center_lat.is_finite() || !(-90.0..=90.0).contains(&config.center_lat) {
            config.center_lat = defaults.center_lat;
        }
        config.center_lon = if config.center_lon.is_finite() {
            wrap_lon(config.center_lon)
        } else {
            defaults.center_lon
        };
        config.radius_km = if config.radius_km.is_finite() {
            config.radius_km.clamp(5.0, 2_000.0)
        } else {
            defaults.radius_km
        };
        let mix = spawn::Mix::new(config.entities);
        let mut world_rng = Rng::derive(config.seed, 0);
        let world = World::generate(
            &mut world_rng,
            config.radius_km * 1000.0,
            mix.vehicles,
            mix.vessels,
        );
        let entities = spawn::populate(config.seed, &mix, &world, start.millis());
        Scenario {
            frame: Frame::new(config.center_lat, config.center_lon),
            config,
            world,
            entities,
            last_batch: 0,
        }
    }

    /// Advances the simulation to `now` and returns the reports due since the last call, in
    /// time order (each entity reports at its own interval, so an entity that reports every
    /// 2 s contributes several reports to a 5 s tick).
    ///
    /// Each report carries the time it was due, not `now`. The first call at the start time
    /// returns one report per entity. An entity more than ten minutes behind its schedule
    /// (after a long pause between ticks) skips the missed reports and reports once at `now`.
    /// A `now` earlier than a previous one returns nothing new.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Report> {
        let now = now.millis();
        let mut out = Vec::with_capacity(self.last_batch + self.last_batch / 4);
        for e in &mut self.entities {
            if e.next_due > now {
                continue;
            }
            if now - e.next_due > CATCH_UP_MS && !e.skip_to(now) {
                continue;
            }
            while e.next_due <= now {
                let t = e.next_due;
                e.advance(&self.world, t);
                out.push(e.report(&self.frame, t));
                e.schedule_after(t);
            }
        }
        // Stable: reports of equal time keep the fixed entity order, so output is deterministic.
        out.sort_by_key(|r| r.time);
        self.last_batch = out.len();
        out
    }

    /// Number of simulated entities.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// True when the scenario has no entities (a configuration of zero entities).
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The configuration in effect, after out-of-range values were repaired.
    pub fn config(&self) -> &ScenarioConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Motion;

    /// Land entities stay south of the shore and ships north of it for a whole hour.
    #[test]
    fn ground_stays_ashore_and_ships_afloat() {
        let start = Timestamp(1_767_225_600_000);
        let mut sim = Scenario::new(ScenarioConfig::default(), start);
        for s in (0..=3_600).step_by(10) {
            sim.tick(start.plus_millis(s * 1000));
            for e in &sim.entities {
                let p = e.kin.pos;
                let coast = sim.world.coast_y(p.x);
                match (&e.motion, e.uid.as_str().split('-').nth(1)) {
                    (Motion::Route(_) | Motion::Wander(_), Some("veh" | "dis")) => {
                        assert!(p.y < coast, "{} went to sea at t={s}", e.uid)
                    }
                    (_, Some("sea")) => assert!(p.y > coast, "{} ran aground at t={s}", e.uid),
                    _ => {}
                }
            }
        }
    }
}
