//! Populating the scenario: the mix of entity classes and each class's parameters.
//!
//! The mix is roughly a brigade-sized picture along a coast: a third ground vehicles, a
//! quarter dismounted soldiers, a sixth vessels, the rest sensors, installations and aircraft.
//! Every number drawn here (speeds, intervals, errors) is within the class's real-world range,
//! so the picture looks plausible to an operator at any zoom level.

use crate::entity::{
    Kin, Marking, Motion, Orbit, RouteFollow, SimEntity, Telemetry, Transit, Wander,
};
use crate::geo::Vec2;
use crate::names;
use crate::rng::Rng;
use crate::world::World;

/// Salt for the shared patrol-area streams, kept apart from the per-entity streams.
const AREA_SALT: u64 = 0xA5EA_5A17_0000_0001;
/// Soldiers per patrol area: about a squad.
const SQUAD: usize = 6;
/// Probability that an entity reports only every 5–15 minutes (degraded link).
const P_RARE: f64 = 0.025;
/// Probability that an entity falls silent for good after a few minutes.
const P_SILENT: f64 = 0.025;

const MS: f64 = 1000.0;

/// How many of `n` entities each class gets.
pub(crate) struct Mix {
    pub(crate) vehicles: usize,
    pub(crate) dismounts: usize,
    pub(crate) aircraft: usize,
    pub(crate) vessels: usize,
    pub(crate) fixed: usize,
}

impl Mix {
    /// Splits `n` entities: 34 % vehicles, 26 % dismounts, 8 % aircraft, 17 % vessels and the
    /// remaining ~15 % fixed sensors and installations.
    pub(crate) fn new(n: usize) -> Self {
        let vehicles = n * 34 / 100;
        let dismounts = n * 26 / 100;
        let aircraft = n * 8 / 100;
        let vessels = n * 17 / 100;
        Mix {
            vehicles,
            dismounts,
            aircraft,
            vessels,
            fixed: n - vehicles - dismounts - aircraft - vessels,
        }
    }
}

/// Builds every entity, in a fixed order, each from its own random stream.
pub(crate) fn populate(seed: u64, mix: &Mix, world: &World, start_ms: i64) -> Vec<SimEntity> {
    let total = mix.vehicles + mix.dismounts + mix.aircraft + mix.vessels + mix.fixed;
    let mut out = Vec::with_capacity(total);
    let mut stream = 0u64;
    let mut next_rng = || {
        stream += 1;
        Rng::derive(seed, stream)
    };
    for i in 0..mix.vehicles {
        out.push(vehicle(i, next_rng(), world));
    }
    for i in 0..mix.dismounts {
        out.push(dismount(i, next_rng(), world, seed));
    }
    for i in 0..mix.aircraft {
        out.push(aircraft(i, next_rng(), world));
    }
    for i in 0..mix.vessels {
        out.push(vessel(i, next_rng(), world));
    }
    for i in 0..mix.fixed {
        out.push(fixed(i, next_rng(), world));
    }
    for e in &mut out {
        finish(e, start_ms);
    }
    out
}

/// Common fields; the caller fills in the class-specific ones.
fn base(rng: Rng, uid: &str, i: usize, interval_s: (f64, f64)) -> SimEntity {
    let mut rng = rng;
    let nominal_ms = (rng.range(interval_s.0, interval_s.1) * MS) as i64;
    SimEntity {
        uid: names::uid(uid, i),
        callsign: Default::default(),
        cot_type: "a-u-G",
        how: "m-g",
        marking: Marking::Unclassified,
        kin: Kin::default(),
        hae: None,
        ce: 10.0,
        le: None,
        motion: Motion::Fixed,
        telemetry: Telemetry::None,
        rng,
        nominal_ms,
        actual_ms: nominal_ms,
        next_due: 0,
        updated: 0,
        silent_after: None,
        first: true,
    }
}

/// Schedules the first report at the start and picks the poorly connected and silent few.
fn finish(e: &mut SimEntity, start_ms: i64) {
    e.next_due = start_ms;
    e.updated = start_ms;
    let roll = e.rng.unit();
    if roll < P_RARE {
        e.actual_ms = (e.rng.range(5.0, 15.0) * 60.0 * MS) as i64;
    } else if roll < P_RARE + P_SILENT {
        e.silent_after = Some(start_ms + (e.rng.range(2.0, 20.0) * 60.0 * MS) as i64);
    }
}

fn vehicle(i: usize, rng: Rng, world: &World) -> SimEntity {
    let mut e = base(rng, "veh", i, (2.0, 10.0));
    let r = &mut e.rng;
    if r.chance(0.12) {
        e.cot_type = *r
            .pick(&["a-h-G-E-V-A", "a-h-G-U-C-A", "a-h-G-E-V"])
            .unwrap_or(&"a-h-G");
        e.callsign = names::track_number(i);
        e.how = "m-f";
        e.ce = r.range(20.0, 50.0);
        e.marking = Marking::draw(r, 0.6, 0.2);
    } else {
        e.cot_type = *r
            .pick(&[
                "a-f-G-E-V",
                "a-f-G-U-C-A",
                "a-f-G-U-C-R",
                "a-f-G-U-C-A-W",
                "a-f-G-U-S-T",
            ])
            .unwrap_or(&"a-f-G-E-V");
        e.callsign = names::vehicle(i);
        e.ce = r.range(5.0, 20.0);
        e.marking = Marking::draw(r, 0.08, 0.07);
    }
    e.hae = Some(r.range(20.0, 80.0).round());
    e.telemetry = Telemetry::Fuel {
        pct: r.range(30.0, 100.0),
        per_m: 100.0 / r.range(300_000.0, 600_000.0),
    };
    let route_ix = r.below(world.roads.len());
    let cruise = r.range(10.0, 25.0);
    let mut follow = RouteFollow {
        route: route_ix,
        at_sea: false,
        target: 0,
        forward: r.chance(0.5),
        cruise,
        min_speed: 4.0,
        accel: 2.0,
        decel: 3.0,
        lat_accel: 3.0,
        max_rate: 40.0,
        capture: 15.0,
    };
    e.kin = place_on_route(r, world.roads.get(route_ix), &mut follow);
    e.kin.speed = cruise;
    e.motion = Motion::Route(follow);
    e
}

/// Places a follower at a random point of a random segment, heading along it.
fn place_on_route(rng: &mut Rng, route: Option<&crate::world::Route>, f: &mut RouteFollow) -> Kin {
    let Some(route) = route else {
        return Kin::default();
    };
    let n = route.points.len();
    let segs = if route.closed { n } else { n.saturating_sub(1) }.max(1);
    let k = rng.below(segs);
    let (a, b) = (route.points[k], route.points[(k + 1) % n]);
    let pos = a + (b - a) * rng.range(0.05, 0.95);
    let (target, dir) = if f.forward {
        ((k + 1) % n, b - a)
    } else {
        (k, a - b)
    };
    f.target = target;
    Kin {
        pos,
        heading: dir.heading(),
        speed: 0.0,
    }
}

fn dismount(i: usize, rng: Rng, world: &World, seed: u64) -> SimEntity {
    let mut e = base(rng, "dis", i, (5.0, 15.0));
    // Squad members share one patrol area, drawn from a stream keyed by the squad.
    let mut area_rng = Rng::derive(seed ^ AREA_SALT, (i / SQUAD) as u64);
    let radius = area_rng.range(300.0, 1_500.0);
    let centre = world.land_point(&mut area_rng, radius + 200.0);
    let r = &mut e.rng;
    e.cot_type = "a-f-G-U-C-I";
    e.callsign = names::dismount(i);
    e.ce = r.range(5.0, 15.0);
    e.hae = Some(r.range(20.0, 80.0).round());
    e.marking = Marking::draw(r, 0.08, 0.05);
    e.telemetry = Telemetry::Battery {
        pct: r.range(40.0, 100.0),
        per_s: r.range(3.0, 8.0) / 3600.0,
    };
    e.kin = Kin {
        pos: centre + Vec2::from_heading(r.range(0.0, 360.0)) * (radius * 0.5 * r.unit()),
        heading: r.range(0.0, 360.0),
        speed: r.range(1.0, 2.0),
    };
    e.motion = Motion::Wander(Wander {
        centre,
        radius,
        min_speed: 1.0,
        max_speed: 2.0,
        max_rate: 20.0,
        rate: 0.0,
    });
    e
}

fn aircraft(i: usize, rng: Rng, world: &World) -> SimEntity {
    let mut e = base(rng, "air", i, (1.0, 5.0));
    let radius = world.radius;
    let r = &mut e.rng;
    e.ce = r.range(10.0, 50.0);
    e.le = Some(r.range(10.0, 30.0).round());
    // (speed m/s, hae m, orbit leg m, orbit radius m); a zero radius means a transit.
    let kind = r.unit();
    let (speed, hae, leg, turn_r) = if kind < 0.2 {
        e.cot_type = "a-f-A-M-F";
        e.callsign = names::fighter(i);
        e.marking = Marking::draw(r, 0.4, 0.1);
        let s = r.range(180.0, 240.0);
        (
            s,
            r.range(6_000.0, 9_000.0),
            r.range(20_000.0, 40_000.0),
            r.range(8_000.0, 12_000.0),
        )
    } else if kind < 0.3 {
        e.cot_type = "a-f-A-M-F-Q";
        e.callsign = names::uav(i);
        e.marking = Marking::draw(r, 0.5, 0.1);
        let s = r.range(60.0, 75.0);
        (
            s,
            r.range(3_000.0, 6_000.0),
            r.range(0.0, 5_000.0),
            r.range(3_000.0, 6_000.0),
        )
    } else if kind < 0.5 {
        e.cot_type = "a-f-A-C-H";
        e.callsign = names::helicopter(i);
        e.marking = Marking::draw(r, 0.05, 0.05);
        let s = r.range(60.0, 80.0);
        (
            s,
            r.range(300.0, 1_500.0),
            r.range(0.0, 3_000.0),
            r.range(1_000.0, 3_000.0),
        )
    } else if kind < 0.6 {
        e.cot_type = "a-h-A-M-F";
        e.callsign = names::bandit(i);
        e.how = "m-f";
        e.marking = Marking::draw(r, 0.7, 0.2);
        (r.range(200.0, 250.0), r.range(3_000.0, 9_000.0), 0.0, 0.0)
    } else {
        e.cot_type = "a-n-A-C-F";
        e.callsign = names::airliner(i);
        e.telemetry = Telemetry::Squawk(format!("{:04o}", 0o1000 + r.below(0o6000)).into());
        if r.chance(0.25) {
            // General aviation below the airways.
            (r.range(60.0, 80.0), r.range(300.0, 1_500.0), 0.0, 0.0)
        } else {
            (r.range(200.0, 240.0), r.range(7_000.0, 9_000.0), 0.0, 0.0)
        }
    };
    e.hae = Some(hae.round());
    if turn_r > 0.0 {
        let orbit = Orbit {
            centre: Vec2::from_heading(r.range(0.0, 360.0)) * (0.7 * radius * r.unit().sqrt()),
            theta: r.range(0.0, std::f64::consts::TAU),
            leg,
            r: turn_r,
            s: r.range(0.0, 2.0 * leg + std::f64::consts::TAU * turn_r),
        };
        let (pos, heading) = orbit.pose();
        e.kin = Kin {
            pos,
            heading,
            speed,
        };
        e.motion = Motion::Orbit(orbit);
    } else {
        let pos = Vec2::from_heading(r.range(0.0, 360.0)) * (radius * r.unit().sqrt());
        let target = Transit::next_target(r, pos, radius);
        e.kin = Kin {
            pos,
            heading: (target - pos).heading(),
            speed,
        };
        e.motion = Motion::Transit(Transit { target, rate: 3.0 });
    }
    e
}

fn vessel(i: usize, rng: Rng, world: &World) -> SimEntity {
    let mut e = base(rng, "sea", i, (10.0, 30.0));
    let r = &mut e.rng;
    e.ce = r.range(10.0, 30.0);
    let kind = r.unit();
    if kind < 0.55 {
        e.cot_type = "a-n-S-C";
        e.callsign = names::merchant(i);
        // Maritime identification digits of Baltic flag states: DE, DK, FI, PL, SE.
        let mid = *r.pick(&[211u32, 219, 230, 261, 265]).unwrap_or(&211);
        e.telemetry = Telemetry::Ship {
            mmsi: mid * 1_000_000 + r.below(1_000_000) as u32,
            destination: r
                .pick(&[
                    "KIEL",
                    "GDANSK",
                    "ROSTOCK",
                    "AARHUS",
                    "KLAIPEDA",
                    "STOCKHOLM",
                    "LUEBECK",
                    "OSLO",
                ])
                .copied()
                .unwrap_or("KIEL"),
        };
        let route_ix = r.below(world.lanes.len());
        let cruise = r.range(5.0, 12.0);
        let mut follow = RouteFollow {
            route: route_ix,
            at_sea: true,
            target: 0,
            forward: r.chance(0.5),
            cruise,
            min_speed: 3.0,
            accel: 0.1,
            decel: 0.15,
            lat_accel: 0.3,
            max_rate: 5.0,
            capture: 150.0,
        };
        e.kin = place_on_route(r, world.lanes.get(route_ix), &mut follow);
        e.kin.speed = cruise;
        e.motion = Motion::Route(follow);
        return e;
    }
    let (radius, min_speed, max_speed) = if kind < 0.8 {
        e.cot_type = "a-f-S-C";
        e.callsign = names::warship(i);
        e.marking = Marking::draw(r, 0.2, 0.3);
        (r.range(3_000.0, 8_000.0), 5.0, 12.0)
    } else {
        e.cot_type = "a-u-S";
        e.callsign = names::skunk(i);
        e.how = "m-f";
        e.marking = Marking::draw(r, 0.1, 0.3);
        (r.range(2_000.0, 6_000.0), 3.0, 7.0)
    };
    // The inset keeps the patrol circle, plus the turning circle, out of the coastal band.
    let centre = world.sea_point(r, radius + 1_000.0);
    e.kin = Kin {
        pos: centre + Vec2::from_heading(r.range(0.0, 360.0)) * (radius * 0.7 * r.unit()),
        heading: r.range(0.0, 360.0),
        speed: r.range(min_speed, max_speed),
    };
    e.motion = Motion::Wander(Wander {
        centre,
        radius,
        min_speed,
        max_speed,
        max_rate: 3.0,
        rate: 0.0,
    });
    e
}

fn fixed(i: usize, rng: Rng, world: &World) -> SimEntity {
    let mut e = base(rng, "sen", i, (30.0, 60.0));
    let r = &mut e.rng;
    e.ce = r.range(3.0, 8.0);
    e.marking = Marking::draw(r, 0.1, 0.1);
    let kind = r.unit();
    let (pos, mains) = if kind < 0.2 {
        // Coastal surveillance radars stand just inland of the shore.
        let pos = world.shore_point(r, 200.0);
        e.cot_type = "a-f-G-E-S";
        e.callsign = names::sensor("RADAR", pos.heading(), i);
        (pos, true)
    } else if kind < 0.7 {
        let pos = world.land_point(r, 0.0);
        e.cot_type = "a-f-G-E-S";
        let label = if r.chance(0.5) { "CAM" } else { "SENSOR" };
        e.callsign = names::sensor(label, pos.heading(), i);
        (pos, false)
    } else {
        let pos = world.land_point(r, 0.0);
        e.uid = names::uid("site", i);
        e.cot_type = "a-f-G-I";
        e.callsign = names::site(i);
        (pos, true)
    };
    e.kin = Kin {
        pos,
        heading: 0.0,
        speed: 0.0,
    };
    e.hae = Some(r.range(20.0, 90.0).round());
    e.telemetry = Telemetry::Sensor {
        battery: if mains { 100.0 } else { r.range(30.0, 100.0) },
        per_s: if mains {
            0.0
        } else {
            r.range(1.0, 3.0) / 3600.0
        },
        temp_base: r.range(4.0, 16.0),
        signal_base: r.range(-100.0, -60.0),
        degraded: r.chance(0.05),
    };
    e
}
