//! Great-circle distance on the WGS-84 mean sphere, for the kinematics and jamming detectors.

/// Mean Earth radius in metres (IUGG).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle (haversine) distance in metres between two points given in degrees.
/// Well conditioned for short distances and across the antimeridian.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.clamp(0.0, 1.0).sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // One degree of latitude is about 111.2 km on the mean sphere.
        let d = distance_m(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        // Across the antimeridian: 0.2 degrees of longitude at the equator, not 359.8.
        let d = distance_m(0.0, 179.9, 0.0, -179.9);
        assert!((d - 22_239.0).abs() < 10.0, "{d}");
        assert_eq!(distance_m(48.0, 2.0, 48.0, 2.0), 0.0);
        // Paris to London, about 344 km.
        let d = distance_m(48.8566, 2.3522, 51.5074, -0.1278);
        assert!((d - 343_500.0).abs() < 1_500.0, "{d}");
    }
}
