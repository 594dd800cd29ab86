//! Geometry: a local flat plane around the area of operations and its mapping to WGS-84.
//!
//! Entities move in a local east/north plane in metres, where speed × time and turn-rate
//! limits are simple vector arithmetic. The plane is an azimuthal equidistant projection
//! centred on the AO: distances and bearings from the centre are exact on the sphere, and the
//! scale error elsewhere is below 1e-4 within a few hundred kilometres. Unlike a plain
//! equirectangular approximation it stays valid at the poles and across the antimeridian, so
//! every emitted coordinate is a legal latitude/longitude whatever centre is configured.

use std::ops::{Add, Mul, Sub};

/// Mean Earth radius (IUGG) in metres.
pub(crate) const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point or displacement in the local plane: `x` metres east, `y` metres north.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub(crate) struct Vec2 {
    /// Metres east of the AO centre.
    pub(crate) x: f64,
    /// Metres north of the AO centre.
    pub(crate) y: f64,
}

impl Vec2 {
    /// A vector from its components.
    pub(crate) const fn new(x: f64, y: f64) -> Self {
        Vec2 { x, y }
    }

    /// The unit vector pointing along `heading_deg` (degrees clockwise from grid north).
    pub(crate) fn from_heading(heading_deg: f64) -> Self {
        let (s, c) = heading_deg.to_radians().sin_cos();
        Vec2 { x: s, y: c }
    }

    /// Euclidean length.
    pub(crate) fn len(self) -> f64 {
        self.x.hypot(self.y)
    }

    /// The heading of this displacement in degrees `[0, 360)`; 0 for the zero vector.
    pub(crate) fn heading(self) -> f64 {
        norm_deg(self.x.atan2(self.y).to_degrees())
    }

    /// This vector turned 90° counter-clockwise.
    pub(crate) fn perp(self) -> Self {
        Vec2 {
            x: -self.y,
            y: self.x,
        }
    }
}

impl Add for Vec2 {
    type Output = Vec2;
    fn add(self, o: Vec2) -> Vec2 {
        Vec2::new(self.x + o.x, self.y + o.y)
    }
}

impl Sub for Vec2 {
    type Output = Vec2;
    fn sub(self, o: Vec2) -> Vec2 {
        Vec2::new(self.x - o.x, self.y - o.y)
    }
}

impl Mul<f64> for Vec2 {
    type Output = Vec2;
    fn mul(self, k: f64) -> Vec2 {
        Vec2::new(self.x * k, self.y * k)
    }
}

/// Normalises an angle to `[0, 360)`.
pub(crate) fn norm_deg(a: f64) -> f64 {
    if !a.is_finite() {
        return 0.0;
    }
    let x = a.rem_euclid(360.0);
    // rem_euclid of a tiny negative number rounds up to exactly 360.0.
    if x >= 360.0 { 0.0 } else { x }
}

/// The signed smallest turn from `from` to `to`, in degrees `(-180, 180]`; positive is clockwise.
pub(crate) fn turn_between(from: f64, to: f64) -> f64 {
    let d = norm_deg(to - from);
    if d > 180.0 { d - 360.0 } else { d }
}

/// Wraps a longitude to `[-180, 180)`.
pub(crate) fn wrap_lon(lon: f64) -> f64 {
    let l = (lon + 180.0).rem_euclid(360.0) - 180.0;
    if l >= 180.0 { -180.0 } else { l }
}

/// The local plane's anchor: the AO centre on the sphere.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    lon0: f64,
    sin_lat0: f64,
    cos_lat0: f64,
    lat0_deg: f64,
    lon0_deg: f64,
}

impl Frame {
    /// A frame centred on (`lat_deg`, `lon_deg`), which must already be valid.
    pub(crate) fn new(lat_deg: f64, lon_deg: f64) -> Self {
        let lat0 = lat_deg.to_radians();
        Frame {
            lon0: lon_deg.to_radians(),
            sin_lat0: lat0.sin(),
            cos_lat0: lat0.cos(),
            lat0_deg: lat_deg,
            lon0_deg: lon_deg,
        }
    }

    /// Maps a local point to (latitude, longitude) in degrees, always within
    /// `[-90, 90]` × `[-180, 180)`: the inverse azimuthal equidistant projection, i.e. the
    /// great-circle destination from the centre at the point's bearing and distance.
    pub(crate) fn to_geo(&self, p: Vec2) -> (f64, f64) {
        let d = p.len();
        if d < 1e-6 {
            return (self.lat0_deg, wrap_lon(self.lon0_deg));
        }
        let az = p.x.atan2(p.y);
        let delta = d / EARTH_RADIUS_M;
        let (sin_d, cos_d) = delta.sin_cos();
        let sin_lat = (self.sin_lat0 * cos_d + self.cos_lat0 * sin_d * az.cos()).clamp(-1.0, 1.0);
        let lat = sin_lat.asin();
        let lon =
            self.lon0 + (az.sin() * sin_d * self.cos_lat0).atan2(cos_d - self.sin_lat0 * sin_lat);
        (
            lat.to_degrees().clamp(-90.0, 90.0),
            wrap_lon(lon.to_degrees()),
        )
    }

    /// The true (great-circle) course in degrees `[0, 360)` of motion from local point `p`
    /// along grid heading `heading_deg`. It differs from the grid heading by the meridian
    /// convergence, about 0.75° at the edge of a 60 km AO in the Baltic.
    pub(crate) fn true_course(&self, p: Vec2, heading_deg: f64) -> f64 {
        let (lat1, lon1) = self.to_geo(p);
        let (lat2, lon2) = self.to_geo(p + Vec2::from_heading(heading_deg));
        initial_bearing(lat1, lon1, lat2, lon2)
    }
}

/// Initial great-circle bearing from point 1 to point 2, degrees `[0, 360)`.
pub(crate) fn initial_bearing(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = (lon2 - lon1).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    norm_deg(y.atan2(x).to_degrees())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn haversine(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
        let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
        let dp = p2 - p1;
        let dl = (lon2 - lon1).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }

    #[test]
    fn angles_normalise() {
        assert_eq!(norm_deg(-1e-18), 0.0);
        assert_eq!(norm_deg(720.0), 0.0);
        assert_eq!(norm_deg(-90.0), 270.0);
        assert_eq!(turn_between(350.0, 10.0), 20.0);
        assert_eq!(turn_between(10.0, 350.0), -20.0);
        assert_eq!(wrap_lon(180.0), -180.0);
        assert_eq!(wrap_lon(-190.0), 170.0);
        assert!((Vec2::new(1.0, 0.0).heading() - 90.0).abs() < 1e-12);
    }

    #[test]
    fn projection_preserves_distance_from_centre_and_locally() {
        let f = Frame::new(54.3, 10.1);
        let p = Vec2::new(30_000.0, -40_000.0);
        let (lat, lon) = f.to_geo(p);
        assert!((haversine(54.3, 10.1, lat, lon) - 50_000.0).abs() < 1e-3);
        // A 100 m step far from the centre is still ~100 m on the sphere.
        let (lat2, lon2) = f.to_geo(p + Vec2::new(100.0, 0.0));
        assert!((haversine(lat, lon, lat2, lon2) - 100.0).abs() < 0.01);
        // Northward motion at the centre is a true course of 0/360.
        let c = f.true_course(Vec2::default(), 0.0);
        assert!(!(0.01..359.99).contains(&c));
    }

    #[test]
    fn valid_at_poles_and_antimeridian() {
        for (lat, lon) in [(90.0, 0.0), (-90.0, 179.9), (0.0, -180.0), (89.9, 179.99)] {
            let f = Frame::new(lat, lon);
            for k in 0..16 {
                let p = Vec2::from_heading(k as f64 * 22.5) * 80_000.0;
                let (la, lo) = f.to_geo(p);
                assert!((-90.0..=90.0).contains(&la), "{la}");
                assert!((-180.0..180.0).contains(&lo), "{lo}");
                let c = f.true_course(p, 45.0);
                assert!((0.0..360.0).contains(&c));
            }
        }
    }
}
