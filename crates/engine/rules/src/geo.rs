//! Geometry for rules: distances on the Earth, point-in-polygon, distance to a polyline and
//! the self-intersection check that validation uses.
//!
//! Distances between two entities and to a circle's centre use the **haversine** formula on
//! a sphere of radius 6,371,008.8 m (error below 0.5 % against the ellipsoid). Polygon
//! containment is tested in plain longitude/latitude (edges are rhumb-ish straight lines in
//! degrees, which is what GeoJSON and KML editors draw). Corridor distance projects the
//! route locally with an **equirectangular approximation** centred on the tested point,
//! accurate to well under 1 % for segments shorter than a few hundred kilometres.

/// Mean Earth radius in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Metres per degree of latitude on the mean sphere.
pub const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Great-circle distance in metres between two `(lat, lon)` points (haversine).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// A longitude/latitude bounding box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Western edge.
    pub min_lon: f64,
    /// Southern edge.
    pub min_lat: f64,
    /// Eastern edge.
    pub max_lon: f64,
    /// Northern edge.
    pub max_lat: f64,
}

impl Bounds {
    /// The box around `(lon, lat)` points; `None` for no points.
    pub fn of(points: &[[f64; 2]]) -> Option<Bounds> {
        let first = points.first()?;
        let mut b = Bounds {
            min_lon: first[0],
            min_lat: first[1],
            max_lon: first[0],
            max_lat: first[1],
        };
        for p in points {
            b.min_lon = b.min_lon.min(p[0]);
            b.max_lon = b.max_lon.max(p[0]);
            b.min_lat = b.min_lat.min(p[1]);
            b.max_lat = b.max_lat.max(p[1]);
        }
        Some(b)
    }

    /// The box around a circle of `radius_m` around `(lat, lon)`.
    pub fn around(lat: f64, lon: f64, radius_m: f64) -> Bounds {
        let dlat = radius_m / M_PER_DEG;
        let dlon = radius_m / (M_PER_DEG * lat.to_radians().cos().max(0.01));
        Bounds {
            min_lon: (lon - dlon).max(-180.0),
            min_lat: (lat - dlat).max(-90.0),
            max_lon: (lon + dlon).min(180.0),
            max_lat: (lat + dlat).min(90.0),
        }
    }

    /// Grows the box by `m` metres on every side.
    pub fn grow_m(self, m: f64) -> Bounds {
        let mid = (self.min_lat + self.max_lat) / 2.0;
        let dlat = m / M_PER_DEG;
        let dlon = m
            / (M_PER_DEG
                * mid
                    .abs()
                    .max(self.min_lat.abs().max(self.max_lat.abs()))
                    .to_radians()
                    .cos()
                    .max(0.01));
        Bounds {
            min_lon: (self.min_lon - dlon).max(-180.0),
            min_lat: (self.min_lat - dlat).max(-90.0),
            max_lon: (self.max_lon + dlon).min(180.0),
            max_lat: (self.max_lat + dlat).min(90.0),
        }
    }

    /// Whether `(lat, lon)` is inside or on the box.
    #[inline]
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        lat >= self.min_lat && lat <= self.max_lat && lon >= self.min_lon && lon <= self.max_lon
    }
}

/// Whether `(lon, lat)` is inside the ring (even-odd rule; the ring is open or closed).
#[inline]
pub fn ring_contains(ring: &[[f64; 2]], lon: f64, lat: f64) -> bool {
    let mut inside = false;
    let n = ring.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (xi, yi) = (ring[i][0], ring[i][1]);
        let (xj, yj) = (ring[j][0], ring[j][1]);
        if (yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Distance in metres from `(lat, lon)` to the polyline `line` of `(lon, lat)` points, using
/// a local equirectangular projection centred on the point.
pub fn polyline_distance_m(line: &[[f64; 2]], lat: f64, lon: f64) -> f64 {
    let kx = M_PER_DEG * lat.to_radians().cos();
    let ky = M_PER_DEG;
    let proj = |p: &[f64; 2]| {
        // Wrap the longitude difference so routes across the antimeridian work.
        let mut dl = p[0] - lon;
        if dl > 180.0 {
            dl -= 360.0;
        } else if dl < -180.0 {
            dl += 360.0;
        }
        (dl * kx, (p[1] - lat) * ky)
    };
    let mut best = f64::INFINITY;
    if line.len() == 1 {
        let (x, y) = proj(&line[0]);
        return (x * x + y * y).sqrt();
    }
    for w in line.windows(2) {
        let (ax, ay) = proj(&w[0]);
        let (bx, by) = proj(&w[1]);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            ((-ax * dx - ay * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (px, py) = (ax + t * dx, ay + t * dy);
        best = best.min(px * px + py * py);
    }
    best.sqrt()
}

fn orient(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

fn on_segment(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> bool {
    p[0] >= a[0].min(b[0])
        && p[0] <= a[0].max(b[0])
        && p[1] >= a[1].min(b[1])
        && p[1] <= a[1].max(b[1])
}

/// Whether segments `a-b` and `c-d` touch or cross.
pub fn segments_intersect(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let d1 = orient(c, d, a);
    let d2 = orient(c, d, b);
    let d3 = orient(a, b, c);
    let d4 = orient(a, b, d);
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    (d1 == 0.0 && on_segment(c, d, a))
        || (d2 == 0.0 && on_segment(c, d, b))
        || (d3 == 0.0 && on_segment(a, b, c))
        || (d4 == 0.0 && on_segment(a, b, d))
}

/// The first pair of non-adjacent edges `(i, j)` of the (open) ring that touch or cross;
/// edge `i` runs from vertex `i` to vertex `i + 1` (wrapping).
pub fn self_intersection(ring: &[[f64; 2]]) -> Option<(usize, usize)> {
    let n = ring.len();
    if n < 4 {
        return None;
    }
    let edge = |i: usize| (ring[i], ring[(i + 1) % n]);
    for i in 0..n {
        let (a, b) = edge(i);
        let (lo_x, hi_x) = (a[0].min(b[0]), a[0].max(b[0]));
        let (lo_y, hi_y) = (a[1].min(b[1]), a[1].max(b[1]));
        for j in (i + 2)..n {
            if i == 0 && j == n - 1 {
                continue; // adjacent through the closing vertex
            }
            let (c, d) = edge(j);
            if c[0].max(d[0]) < lo_x
                || c[0].min(d[0]) > hi_x
                || c[1].max(d[1]) < lo_y
                || c[1].min(d[1]) > hi_y
            {
                continue;
            }
            if segments_intersect(a, b, c, d) {
                return Some((i, j));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn haversine_matches_known_distance() {
        // One degree of latitude is about 111.2 km on the mean sphere.
        let d = haversine_m(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111_195.0).abs() < 50.0, "{d}");
        // Paris to London, about 343.5 km.
        let d = haversine_m(48.8566, 2.3522, 51.5074, -0.1278);
        assert!((d - 343_500.0).abs() < 2_000.0, "{d}");
    }

    #[test]
    fn ring_containment_and_polyline_distance() {
        let sq = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!(ring_contains(&sq, 0.5, 0.5));
        assert!(!ring_contains(&sq, 1.5, 0.5));
        let line = [[0.0, 0.0], [1.0, 0.0]];
        let d = polyline_distance_m(&line, 0.01, 0.5);
        assert!((d - 1_112.0).abs() < 5.0, "{d}");
    }

    #[test]
    fn bowtie_is_self_intersecting() {
        let bow = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]];
        assert_eq!(self_intersection(&bow), Some((0, 2)));
        let sq = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert_eq!(self_intersection(&sq), None);
    }
}
