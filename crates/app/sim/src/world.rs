//! The scenario's static geography: a coastline, a road network on land and sea lanes.
//!
//! Everything is generated from the seed in the local plane (see [`crate::geo`]). The model is
//! deliberately simple but shaped like the default Kiel Bay AO: land to the south of a gently
//! curving shore a few kilometres north of the centre, open water beyond it.
//!
//! Roads only use land below the *lowest* point of the shore and sea lanes only water above
//! its *highest* point. Both regions are convex (a disc cut by a straight line), so a straight
//! segment between two of their points never crosses the shore: vehicles stay dry and ships
//! stay afloat without any per-step terrain test.

use std::collections::VecDeque;

use crate::geo::Vec2;
use crate::rng::Rng;

/// A polyline that route followers drive along.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// Waypoints in the local plane; at least two.
    pub(crate) points: Vec<Vec2>,
    /// True when the last point connects back to the first (loop); false to reverse at the ends.
    pub(crate) closed: bool,
}

/// The generated geography.
#[derive(Clone, Debug)]
pub(crate) struct World {
    /// AO radius in metres.
    pub(crate) radius: f64,
    coast_phase: f64,
    /// Road routes on land.
    pub(crate) roads: Vec<Route>,
    /// Shipping lanes at sea.
    pub(crate) lanes: Vec<Route>,
}

impl World {
    /// Generates the geography for an AO of `radius` metres, sized for the entity counts.
    pub(crate) fn generate(rng: &mut Rng, radius: f64, vehicles: usize, vessels: usize) -> World {
        let mut world = World {
            radius,
            coast_phase: rng.range(0.0, std::f64::consts::TAU),
            roads: Vec::new(),
            lanes: Vec::new(),
        };
        world.roads = world.road_routes(rng, vehicles);
        world.lanes = world.sea_lanes(rng, vessels);
        world
    }

    /// The shore's northing at easting `x`: sea lies north of it.
    pub(crate) fn coast_y(&self, x: f64) -> f64 {
        let r = self.radius;
        r * (0.13 + 0.04 * (x / (0.15 * r) + self.coast_phase).sin())
    }

    /// Highest northing used by land features: below the shore's lowest point (0.09 R).
    fn land_limit(&self) -> f64 {
        0.07 * self.radius
    }

    /// Lowest northing used by open-water features: above the shore's highest point (0.17 R).
    fn sea_limit(&self) -> f64 {
        0.22 * self.radius
    }

    /// A random point on land, at least `inset` metres inside the land region.
    pub(crate) fn land_point(&self, rng: &mut Rng, inset: f64) -> Vec2 {
        let max_r = (0.95 * self.radius - inset).max(0.0);
        for _ in 0..64 {
            let p = disc_point(rng, max_r);
            if p.y <= self.land_limit() - inset {
                return p;
            }
        }
        // Practically unreachable (land covers over half the disc); still on land.
        Vec2::new(0.0, -0.5 * self.radius)
    }

    /// A random point at sea, at least `inset` metres inside the open-water region.
    pub(crate) fn sea_point(&self, rng: &mut Rng, inset: f64) -> Vec2 {
        let max_r = (0.95 * self.radius - inset).max(0.0);
        for _ in 0..64 {
            let p = disc_point(rng, max_r);
            if p.y >= self.sea_limit() + inset {
                return p;
            }
        }
        Vec2::new(0.0, 0.6 * self.radius)
    }

    /// A point on the shore at a random easting, `back` metres inland (negative: offshore).
    pub(crate) fn shore_point(&self, rng: &mut Rng, back: f64) -> Vec2 {
        let x = rng.range(-0.7, 0.7) * self.radius;
        Vec2::new(x, self.coast_y(x) - back)
    }

    /// Roads: towns on land joined to their nearest neighbours, and routes that are random
    /// walks through that graph, so several routes share the same stretches of road.
    fn road_routes(&self, rng: &mut Rng, vehicles: usize) -> Vec<Route> {
        let n_nodes = (24 + vehicles / 40).clamp(24, 240);
        let nodes: Vec<Vec2> = (0..n_nodes).map(|_| self.land_point(rng, 0.0)).collect();
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n_nodes];
        for i in 0..n_nodes {
            let mut by_dist: Vec<(f64, usize)> = (0..n_nodes)
                .filter(|&j| j != i)
                .map(|j| ((nodes[j] - nodes[i]).len(), j))
                .collect();
            by_dist.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(_, j) in by_dist.iter().take(3) {
                if !adj[i].contains(&j) {
                    adj[i].push(j);
                }
                if !adj[j].contains(&i) {
                    adj[j].push(i);
                }
            }
        }
        // Bends are keyed by the edge, not the route, so shared roads have identical shapes.
        let bend_seed = rng.next_u64();
        let n_routes = (vehicles / 6).clamp(6, 400);
        (0..n_routes)
            .map(|_| {
                let hops = 4 + rng.below(10);
                let mut path = random_walk(rng, &adj, hops);
                let mut closed = false;
                if path.len() > 2 && rng.chance(0.5) {
                    let (first, last) = (path[0], path[path.len() - 1]);
                    if let Some(back) = shortest_path(&adj, last, first) {
                        // `back` runs last..=first; the loop closes onto path[0] implicitly.
                        path.extend(back.iter().skip(1).take(back.len().saturating_sub(2)));
                        closed = true;
                    }
                }
                let mut points = Vec::with_capacity(path.len() * 2);
                let pairs = if closed { path.len() } else { path.len() - 1 };
                for k in 0..pairs {
                    let (a, b) = (path[k], path[(k + 1) % path.len()]);
                    points.push(nodes[a]);
                    if let Some(mid) = self.bend(bend_seed, &nodes, a, b) {
                        points.push(mid);
                    }
                }
                if !closed {
                    points.push(nodes[path[path.len() - 1]]);
                }
                points.dedup_by(|a, b| (*a - *b).len() < 1.0);
                if points.len() < 2 {
                    // A degenerate walk (isolated town): give it a short spur so it can move.
                    let p = points.first().copied().unwrap_or_default();
                    points = vec![p, p + Vec2::new(2_000.0, 0.0)];
                    closed = false;
                }
                Route { points, closed }
            })
            .collect()
    }

    /// The bend point in the middle of road `a`–`b`, offset sideways so roads are not ruler-straight.
    fn bend(&self, seed: u64, nodes: &[Vec2], a: usize, b: usize) -> Option<Vec2> {
        let (lo, hi) = (a.min(b), a.max(b));
        let (pa, pb) = (nodes[lo], nodes[hi]);
        let d = pb - pa;
        let len = d.len();
        if len < 200.0 {
            return None;
        }
        let mut r = Rng::derive(seed, (lo as u64) << 32 | hi as u64);
        let mid = (pa + pb) * 0.5 + d.perp() * (r.range(-0.12, 0.12));
        Some(Vec2::new(mid.x, mid.y.min(self.land_limit())))
    }

    /// Sea lanes: east–west transits across the bay, and port approaches running from the
    /// shore out to open water.
    fn sea_lanes(&self, rng: &mut Rng, vessels: usize) -> Vec<Route> {
        let r = self.radius;
        let n_lanes = (6 + vessels / 100).clamp(6, 40);
        (0..n_lanes)
            .map(|k| {
                let mut points = Vec::new();
                if k % 3 == 2 {
                    // Port approach: a harbour on the shore, then out to sea almost due north.
                    // The easting drifts at most 0.05 R, over which the shore rises at most
                    // 0.014 R, less than the 0.02 R offshore margin, so the lane stays wet.
                    let harbour = self.shore_point(rng, -0.02 * r);
                    points.push(harbour);
                    let mut x = harbour.x;
                    for y in [0.3, 0.5, 0.7] {
                        x += rng.range(-0.02, 0.02) * r;
                        points.push(self.inside_sea_disc(Vec2::new(x, y * r)));
                    }
                } else {
                    let y0 = rng.range(0.3, 0.75) * r;
                    let n = 5 + rng.below(4);
                    let half = ((0.92 * r).powi(2) - y0 * y0).max(0.0).sqrt();
                    for i in 0..n {
                        let x = -half + 2.0 * half * i as f64 / (n - 1) as f64;
                        let y = (y0 + rng.range(-0.05, 0.05) * r).max(self.sea_limit());
                        points.push(self.inside_sea_disc(Vec2::new(x, y)));
                    }
                    if rng.chance(0.5) {
                        points.reverse();
                    }
                }
                points.dedup_by(|a, b| (*a - *b).len() < 1.0);
                Route {
                    points,
                    closed: false,
                }
            })
            .filter(|route| route.points.len() >= 2)
            .collect()
    }

    /// Pulls a sea point back inside the AO disc, keeping it above the sea limit.
    fn inside_sea_disc(&self, p: Vec2) -> Vec2 {
        let max = 0.95 * self.radius;
        if p.len() <= max {
            return p;
        }
        let y = p.y.min(max);
        let half = (max * max - y * y).max(0.0).sqrt();
        Vec2::new(p.x.clamp(-half, half), y)
    }
}

/// A uniformly distributed point in the disc of radius `r` around the centre.
fn disc_point(rng: &mut Rng, r: f64) -> Vec2 {
    let d = r * rng.unit().sqrt();
    Vec2::from_heading(rng.range(0.0, 360.0)) * d
}

/// A walk of up to `steps` hops, avoiding immediate backtracking where the graph allows.
fn random_walk(rng: &mut Rng, adj: &[Vec<usize>], steps: usize) -> Vec<usize> {
    let mut path = vec![rng.below(adj.len())];
    let mut prev = usize::MAX;
    for _ in 0..steps {
        let cur = path[path.len() - 1];
        let options: Vec<usize> = adj[cur].iter().copied().filter(|&n| n != prev).collect();
        let next = match rng.pick(&options).or_else(|| rng.pick(&adj[cur])) {
            Some(&n) => n,
            None => break,
        };
        prev = cur;
        path.push(next);
    }
    path
}

/// Breadth-first shortest path (in hops) from `from` to `to`, both ends included.
fn shortest_path(adj: &[Vec<usize>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut parent = vec![usize::MAX; adj.len()];
    parent[from] = from;
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![to];
            let mut cur = to;
            while cur != from {
                cur = parent[cur];
                path.push(cur);
            }
            path.reverse();
            return Some(path);
        }
        for &m in &adj[n] {
            if parent[m] == usize::MAX {
                parent[m] = n;
                queue.push_back(m);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::generate(&mut Rng::new(42), 60_000.0, 850, 425)
    }

    /// Samples a segment and asserts every sample satisfies `ok`.
    fn segment_all(a: Vec2, b: Vec2, ok: impl Fn(Vec2) -> bool) -> bool {
        (0..=50).all(|i| ok(a + (b - a) * (i as f64 / 50.0)))
    }

    #[test]
    fn roads_stay_on_land_and_lanes_at_sea() {
        let w = world();
        assert!(w.roads.len() >= 6 && w.lanes.len() >= 6);
        for route in &w.roads {
            assert!(route.points.len() >= 2);
            let n = route.points.len();
            let segs = if route.closed { n } else { n - 1 };
            for k in 0..segs {
                let (a, b) = (route.points[k], route.points[(k + 1) % n]);
                assert!(
                    segment_all(a, b, |p| p.y < w.coast_y(p.x)),
                    "road crosses the shore"
                );
            }
        }
        for lane in &w.lanes {
            for seg in lane.points.windows(2) {
                assert!(
                    segment_all(seg[0], seg[1], |p| p.y > w.coast_y(p.x)),
                    "lane crosses the shore"
                );
            }
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (world(), world());
        assert_eq!(a.roads.len(), b.roads.len());
        for (x, y) in a.roads.iter().zip(&b.roads) {
            assert_eq!(x.points, y.points);
        }
    }
}
