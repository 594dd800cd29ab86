//! One simulated entity: its kinematics, motion model, telemetry and report schedule.
//!
//! Every entity owns its own random stream and only draws from it while advancing to one of
//! its own report times. Its trajectory and reports are therefore a function of the seed alone,
//! not of how often the caller ticks (up to the catch-up limit in [`crate::Scenario::tick`]).

use rampart_model::{AttrValue, Attributes, Label, Provenance, Report, Text, Timestamp, Uid};

use crate::geo::{Frame, Vec2, norm_deg, turn_between};
use crate::rng::Rng;
use crate::world::{Route, World};

/// Most integration sub-steps per advance, bounding the cost of a long gap between ticks.
const MAX_SUBSTEPS: f64 = 600.0;

/// Position, grid heading (degrees) and speed (m/s) in the local plane.
#[derive(Clone, Debug, Default)]
pub(crate) struct Kin {
    pub(crate) pos: Vec2,
    pub(crate) heading: f64,
    pub(crate) speed: f64,
}

impl Kin {
    /// Turns toward `desired` by at most `max_turn` degrees; returns the remaining error.
    fn turn_toward(&mut self, desired: f64, max_turn: f64) -> f64 {
        let err = turn_between(self.heading, desired);
        self.heading = norm_deg(self.heading + err.clamp(-max_turn, max_turn));
        err
    }

    /// Moves along the current heading for `dt` seconds.
    fn advance(&mut self, dt: f64) {
        self.pos = self.pos + Vec2::from_heading(self.heading) * (self.speed * dt);
    }
}

/// Driving along a road or sea lane: steer toward the next waypoint with a bounded turn rate,
/// brake ahead of sharp corners, loop or reverse at the end.
#[derive(Clone, Debug)]
pub(crate) struct RouteFollow {
    /// Index into [`World::roads`] or [`World::lanes`].
    pub(crate) route: usize,
    /// True to follow a sea lane, false a road.
    pub(crate) at_sea: bool,
    /// Index of the waypoint being steered to.
    pub(crate) target: usize,
    /// Direction of travel along the polyline.
    pub(crate) forward: bool,
    /// Cruising speed on straights, m/s.
    pub(crate) cruise: f64,
    /// Slowest speed, used in the tightest turns, m/s.
    pub(crate) min_speed: f64,
    /// Acceleration and braking limits, m/s².
    pub(crate) accel: f64,
    /// Braking limit, m/s².
    pub(crate) decel: f64,
    /// Largest comfortable lateral acceleration, m/s²; sets the turn rate at speed.
    pub(crate) lat_accel: f64,
    /// Turn-rate ceiling at low speed, degrees/s.
    pub(crate) max_rate: f64,
    /// Distance at which a waypoint counts as reached, m.
    pub(crate) capture: f64,
}

impl RouteFollow {
    /// The waypoint after `i` in the direction of travel, and the direction there.
    fn next(&self, route: &Route, i: usize, forward: bool) -> (usize, bool) {
        let n = route.points.len();
        match (route.closed, forward) {
            (true, true) => ((i + 1) % n, true),
            (true, false) => ((i + n - 1) % n, false),
            (false, true) if i + 1 < n => (i + 1, true),
            (false, true) => (i.saturating_sub(1), false),
            (false, false) if i > 0 => (i - 1, false),
            (false, false) => ((i + 1).min(n - 1), true),
        }
    }

    /// Corner speed for a change of heading of `turn` degrees.
    fn corner_speed(&self, turn: f64) -> f64 {
        (self.cruise * (1.0 - 0.75 * (turn.abs() / 90.0).min(1.0))).max(self.min_speed)
    }

    fn step(&mut self, kin: &mut Kin, world: &World, dt: f64) {
        let routes = if self.at_sea {
            &world.lanes
        } else {
            &world.roads
        };
        let Some(route) = routes.get(self.route) else {
            return;
        };
        let Some(&target) = route.points.get(self.target) else {
            return;
        };
        let mut to = target - kin.pos;
        if to.len() <= kin.speed * dt + self.capture {
            (self.target, self.forward) = self.next(route, self.target, self.forward);
            to = route.points[self.target] - kin.pos;
        }
        let rate = (self.lat_accel / kin.speed.max(0.1))
            .to_degrees()
            .min(self.max_rate);
        let err = kin.turn_toward(to.heading(), rate * dt);
        // Brake for the corner at the coming waypoint early enough to make it at corner speed.
        let (after, _) = self.next(route, self.target, self.forward);
        let leg_after = route.points[after] - route.points[self.target];
        let corner = if leg_after.len() > 0.0 {
            turn_between(to.heading(), leg_after.heading())
        } else {
            0.0
        };
        let v_corner = self.corner_speed(corner);
        let braking = (kin.speed * kin.speed - v_corner * v_corner).max(0.0) / (2.0 * self.decel);
        let mut want = self.corner_speed(err);
        if to.len() <= braking + self.capture + kin.speed * dt {
            want = want.min(v_corner);
        }
        kin.speed += (want - kin.speed).clamp(-self.decel * dt, self.accel * dt);
        kin.speed = kin.speed.clamp(self.min_speed, self.cruise);
        kin.advance(dt);
    }
}

/// Wandering inside a patrol area: the turn rate itself random-walks (so heading changes are
/// smooth), and the entity turns back toward the centre whenever it strays outside.
#[derive(Clone, Debug)]
pub(crate) struct Wander {
    pub(crate) centre: Vec2,
    pub(crate) radius: f64,
    pub(crate) min_speed: f64,
    pub(crate) max_speed: f64,
    /// Turn-rate ceiling, degrees/s.
    pub(crate) max_rate: f64,
    /// Current turn rate, degrees/s.
    pub(crate) rate: f64,
}

impl Wander {
    fn step(&mut self, kin: &mut Kin, rng: &mut Rng, dt: f64) {
        let home = self.centre - kin.pos;
        if home.len() > self.radius {
            let err = kin.turn_toward(home.heading(), self.max_rate * dt);
            self.rate = (err / dt.max(1e-3)).clamp(-self.max_rate, self.max_rate);
        } else {
            // Mean-reverting drift so walkers meander instead of circling.
            self.rate = (self.rate * 0.8f64.powf(dt) + rng.range(-0.5, 0.5) * self.max_rate * dt)
                .clamp(-self.max_rate, self.max_rate);
            kin.heading = norm_deg(kin.heading + self.rate * dt);
        }
        let jitter = rng.range(-0.1, 0.1) * (self.max_speed - self.min_speed) * dt;
        kin.speed = (kin.speed + jitter).clamp(self.min_speed, self.max_speed);
        kin.advance(dt);
    }
}

/// A racetrack orbit (a circle when `leg` is 0), flown counter-clockwise at constant speed.
/// It is evaluated in closed form, so any step size gives the exact position.
#[derive(Clone, Debug)]
pub(crate) struct Orbit {
    pub(crate) centre: Vec2,
    /// Orientation of the straight legs, radians counter-clockwise from east.
    pub(crate) theta: f64,
    /// Length of each straight leg, m.
    pub(crate) leg: f64,
    /// Turn radius, m.
    pub(crate) r: f64,
    /// Distance flown along the track, m.
    pub(crate) s: f64,
}

impl Orbit {
    /// Position and grid heading at the current track distance.
    pub(crate) fn pose(&self) -> (Vec2, f64) {
        use std::f64::consts::{FRAC_PI_2, PI};
        let (leg, r) = (self.leg, self.r.max(1.0));
        let u = self.s.rem_euclid(2.0 * leg + 2.0 * PI * r);
        let arc = |cx: f64, a: f64| {
            (
                Vec2::new(cx + r * a.cos(), r * a.sin()),
                Vec2::new(-a.sin(), a.cos()),
            )
        };
        let (p, dir) = if u < leg {
            (Vec2::new(-leg / 2.0 + u, -r), Vec2::new(1.0, 0.0))
        } else if u < leg + PI * r {
            arc(leg / 2.0, -FRAC_PI_2 + (u - leg) / r)
        } else if u < 2.0 * leg + PI * r {
            (
                Vec2::new(leg / 2.0 - (u - leg - PI * r), r),
                Vec2::new(-1.0, 0.0),
            )
        } else {
            arc(-leg / 2.0, FRAC_PI_2 + (u - 2.0 * leg - PI * r) / r)
        };
        let (s, c) = self.theta.sin_cos();
        let rot = |v: Vec2| Vec2::new(v.x * c - v.y * s, v.x * s + v.y * c);
        (self.centre + rot(p), rot(dir).heading())
    }
}

/// Flying across the AO toward a far waypoint; on arrival a new one is drawn on the opposite
/// side, so traffic keeps crossing the picture with smooth standard-rate turns.
#[derive(Clone, Debug)]
pub(crate) struct Transit {
    pub(crate) target: Vec2,
    /// Turn rate, degrees/s.
    pub(crate) rate: f64,
}

impl Transit {
    /// A waypoint roughly opposite `pos`, just beyond the AO edge.
    pub(crate) fn next_target(rng: &mut Rng, pos: Vec2, radius: f64) -> Vec2 {
        let base = if pos.len() < 1.0 {
            rng.range(0.0, 360.0)
        } else {
            pos.heading() + 180.0
        };
        Vec2::from_heading(base + rng.range(-50.0, 50.0)) * (1.15 * radius)
    }

    fn step(&mut self, kin: &mut Kin, rng: &mut Rng, radius: f64, dt: f64) {
        let to = self.target - kin.pos;
        if to.len() <= kin.speed * dt + 1_500.0 {
            self.target = Self::next_target(rng, kin.pos, radius);
        }
        kin.turn_toward((self.target - kin.pos).heading(), self.rate * dt);
        kin.advance(dt);
    }
}

/// How an entity moves.
#[derive(Clone, Debug)]
pub(crate) enum Motion {
    /// Does not move.
    Fixed,
    /// Follows a road or sea lane.
    Route(RouteFollow),
    /// Wanders inside a patrol area.
    Wander(Wander),
    /// Flies an orbit at constant speed.
    Orbit(Orbit),
    /// Flies across the AO.
    Transit(Transit),
}

impl Motion {
    /// Longest integration step in seconds: short enough for waypoint capture and smooth turns.
    fn max_step(&self) -> f64 {
        match self {
            Motion::Fixed | Motion::Orbit(_) => f64::INFINITY,
            Motion::Route(r) if r.at_sea => 2.0,
            Motion::Route(_) | Motion::Transit(_) => 1.0,
            Motion::Wander(_) => 2.0,
        }
    }
}

/// Slowly changing measurements carried as report attributes.
#[derive(Clone, Debug)]
pub(crate) enum Telemetry {
    /// No attributes.
    None,
    /// Vehicle fuel, draining with distance; refuelled when low.
    Fuel { pct: f64, per_m: f64 },
    /// A soldier's radio battery, draining with time; swapped when low.
    Battery { pct: f64, per_s: f64 },
    /// Sensor health.
    Sensor {
        battery: f64,
        /// Zero for mains-powered equipment.
        per_s: f64,
        temp_base: f64,
        signal_base: f64,
        degraded: bool,
    },
    /// AIS-style identity of a merchant ship.
    Ship {
        mmsi: u32,
        destination: &'static str,
    },
    /// A civil aircraft's transponder code.
    Squawk(Text),
}

impl Telemetry {
    fn advance(&mut self, dt: f64, travelled: f64) {
        match self {
            Telemetry::Fuel { pct, per_m } => {
                *pct -= travelled * *per_m;
                if *pct < 12.0 {
                    *pct = 100.0;
                }
            }
            Telemetry::Battery { pct, per_s } => {
                *pct -= dt * *per_s;
                if *pct < 5.0 {
                    *pct = 100.0;
                }
            }
            Telemetry::Sensor { battery, per_s, .. } => {
                *battery -= dt * *per_s;
                if *battery < 10.0 {
                    *battery = 100.0;
                }
            }
            Telemetry::None | Telemetry::Ship { .. } | Telemetry::Squawk(_) => {}
        }
    }

    fn attributes(&self, rng: &mut Rng, time_ms: i64) -> Attributes {
        let mut a = Attributes::new();
        let mut num = |k: &'static str, v: f64| {
            a.insert(Text::const_new(k), AttrValue::Num(v));
        };
        match self {
            Telemetry::None => {}
            Telemetry::Fuel { pct, .. } => num("fuel", round1(*pct)),
            Telemetry::Battery { pct, .. } => num("battery", round1(*pct)),
            Telemetry::Sensor {
                battery,
                temp_base,
                signal_base,
                degraded,
                ..
            } => {
                // A daily temperature cycle peaking mid-afternoon UTC, from the passed-in time.
                let day = (time_ms.rem_euclid(86_400_000) as f64) / 86_400_000.0;
                let diurnal = 4.0 * ((day - 0.375) * std::f64::consts::TAU).sin();
                num("battery", round1(*battery));
                num(
                    "temperature_c",
                    round1(temp_base + diurnal + rng.range(-0.3, 0.3)),
                );
                num("signal_dbm", (signal_base + rng.range(-3.0, 3.0)).round());
                let status = if *degraded {
                    "DEGRADED"
                } else if *battery < 25.0 {
                    "LOW BATTERY"
                } else {
                    "OK"
                };
                a.insert(
                    Text::const_new("status"),
                    AttrValue::Text(Text::const_new(status)),
                );
            }
            Telemetry::Ship { mmsi, destination } => {
                num("mmsi", f64::from(*mmsi));
                a.insert(
                    Text::const_new("destination"),
                    AttrValue::Text(Text::const_new(destination)),
                );
            }
            Telemetry::Squawk(code) => {
                a.insert(Text::const_new("squawk"), AttrValue::Text(code.clone()));
            }
        }
        a
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The security label an entity's reports carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marking {
    Unclassified,
    Confidential,
    SecretNato,
}

impl Marking {
    /// Draws a marking: `secret` and `confidential` are probabilities.
    pub(crate) fn draw(rng: &mut Rng, secret: f64, confidential: f64) -> Self {
        let x = rng.unit();
        if x < secret {
            Marking::SecretNato
        } else if x < secret + confidential {
            Marking::Confidential
        } else {
            Marking::Unclassified
        }
    }

    fn label(self) -> Label {
        match self {
            Marking::Unclassified => Label::unclassified(),
            Marking::Confidential => Label {
                classification: Text::const_new("CONFIDENTIAL"),
                releasability: Vec::new(),
            },
            Marking::SecretNato => Label {
                classification: Text::const_new("SECRET"),
                releasability: vec![Text::const_new("NATO")],
            },
        }
    }
}

/// One simulated entity.
#[derive(Clone, Debug)]
pub(crate) struct SimEntity {
    pub(crate) uid: Uid,
    pub(crate) callsign: Text,
    pub(crate) cot_type: &'static str,
    pub(crate) how: &'static str,
    pub(crate) marking: Marking,
    pub(crate) kin: Kin,
    pub(crate) hae: Option<f64>,
    /// Typical circular error, m; each report jitters it a little.
    pub(crate) ce: f64,
    pub(crate) le: Option<f64>,
    pub(crate) motion: Motion,
    pub(crate) telemetry: Telemetry,
    pub(crate) rng: Rng,
    /// The class's configured report interval, ms: sets `stale` (3×) on every report.
    pub(crate) nominal_ms: i64,
    /// The interval actually used, ms: the nominal one, or minutes for a poorly connected unit.
    pub(crate) actual_ms: i64,
    /// When the next report is due, ms since the epoch; `i64::MAX` once silent.
    pub(crate) next_due: i64,
    /// The time the kinematic state refers to, ms since the epoch.
    pub(crate) updated: i64,
    /// After this time the entity stops reporting for good.
    pub(crate) silent_after: Option<i64>,
    /// True until the first report: the second comes after a random fraction of the interval,
    /// so entities that all reported at the start spread out instead of reporting in bursts.
    pub(crate) first: bool,
}

impl SimEntity {
    /// Integrates the motion from the last update to `t_ms`.
    pub(crate) fn advance(&mut self, world: &World, t_ms: i64) {
        if t_ms <= self.updated {
            return;
        }
        let gap = (t_ms - self.updated) as f64 / 1000.0;
        self.updated = t_ms;
        let n = (gap / self.motion.max_step())
            .ceil()
            .clamp(1.0, MAX_SUBSTEPS);
        let dt = gap / n;
        let mut travelled = 0.0;
        for _ in 0..n as usize {
            match &mut self.motion {
                Motion::Fixed => {}
                Motion::Route(r) => r.step(&mut self.kin, world, dt),
                Motion::Wander(w) => w.step(&mut self.kin, &mut self.rng, dt),
                Motion::Transit(tr) => tr.step(&mut self.kin, &mut self.rng, world.radius, dt),
                Motion::Orbit(o) => {
                    o.s += self.kin.speed * dt;
                    (self.kin.pos, self.kin.heading) = o.pose();
                }
            }
            travelled += self.kin.speed * dt;
        }
        self.telemetry.advance(gap, travelled);
    }

    /// Sets `next_due` after a report at `t_ms`, with ±10 % jitter so reports do not march in
    /// lock-step (a random phase after the first report), and honouring a scheduled fall into silence.
    pub(crate) fn schedule_after(&mut self, t_ms: i64) {
        let spread = if std::mem::take(&mut self.first) {
            self.rng.range(0.05, 1.0)
        } else {
            self.rng.range(0.9, 1.1)
        };
        let interval = ((self.actual_ms as f64) * spread) as i64;
        let next = t_ms.saturating_add(interval.max(100));
        self.next_due = match self.silent_after {
            Some(s) if next > s => i64::MAX,
            _ => next,
        };
    }

    /// Skips a schedule that fell far behind so the next report is due at `now_ms`; returns
    /// false (and stays quiet for good) when the entity went silent during the gap.
    pub(crate) fn skip_to(&mut self, now_ms: i64) -> bool {
        if self.silent_after.is_some_and(|s| now_ms > s) {
            self.next_due = i64::MAX;
            return false;
        }
        self.next_due = now_ms;
        true
    }

    /// The report for the current state, observed at `t_ms`.
    pub(crate) fn report(&mut self, frame: &Frame, t_ms: i64) -> Report {
        let (lat, lon) = frame.to_geo(self.kin.pos);
        let moving = !matches!(self.motion, Motion::Fixed);
        let course = moving.then(|| frame.true_course(self.kin.pos, self.kin.heading));
        let ce = round1((self.ce * self.rng.range(0.85, 1.15)).max(1.0));
        let time = Timestamp(t_ms);
        // Three missed reports make an entity stale; never past the last valid time.
        let stale = time
            .plus_millis(3 * self.nominal_ms)
            .min(Timestamp::MAX_VALID)
            .max(time);
        Report {
            uid: self.uid.clone(),
            cot_type: Some(Text::const_new(self.cot_type)),
            callsign: Some(self.callsign.clone()),
            lat,
            lon,
            hae: self.hae,
            ce: Some(ce),
            le: self.le,
            course,
            speed: moving.then(|| (self.kin.speed * 100.0).round() / 100.0),
            how: Some(Text::const_new(self.how)),
            time,
            start: Some(time),
            stale: Some(stale),
            attributes: self.telemetry.attributes(&mut self.rng, t_ms),
            label: Some(self.marking.label()),
            id: None,
            provenance: Provenance::new("sim", "demo"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orbit_is_continuous_and_heading_tangent() {
        let o = |s| Orbit {
            centre: Vec2::new(1_000.0, 2_000.0),
            theta: 0.7,
            leg: 5_000.0,
            r: 1_500.0,
            s,
        };
        let (mut prev, _) = o(0.0).pose();
        let mut s = 0.0;
        while s < 40_000.0 {
            s += 10.0;
            let (p, h) = o(s).pose();
            let step = p - prev;
            assert!(
                (step.len() - 10.0).abs() < 0.05,
                "jump at s={s}: {}",
                step.len()
            );
            assert!(
                turn_between(step.heading(), h).abs() < 0.5,
                "heading at s={s}"
            );
            prev = p;
        }
    }

    #[test]
    fn markings_make_labels() {
        assert_eq!(Marking::Unclassified.label(), Label::unclassified());
        assert_eq!(
            Marking::SecretNato.label().releasability,
            vec![Text::const_new("NATO")]
        );
    }
}
