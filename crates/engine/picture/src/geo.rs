//! Geometry on the sphere: great-circle distance, bounding boxes (with antimeridian crossing)
//! and the bounding box of a great-circle radius, which the spatial index uses to pick cells.

use std::f64::consts::PI;

/// Mean Earth radius in metres (IUGG), the radius every distance in Rampart uses.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Margin added to computed circle extents so floating-point rounding never drops an entity
/// lying exactly on the circle; 1e-9 degrees is about 0.1 mm.
const EXTENT_EPS_DEG: f64 = 1e-9;

/// Great-circle distance in metres between two WGS-84 points (haversine on the mean sphere).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let p1 = lat1.to_radians();
    let p2 = lat2.to_radians();
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let s_dp = (dp * 0.5).sin();
    let s_dl = (dl * 0.5).sin();
    let a = s_dp * s_dp + p1.cos() * p2.cos() * s_dl * s_dl;
    // Rounding can push `a` a hair above 1 for antipodal points; asin would then return NaN.
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// A latitude/longitude rectangle in degrees. `min_lon > max_lon` means it crosses the
/// antimeridian (e.g. `170,-10,-170,10` spans 20 degrees of longitude around 180).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    /// Western edge in degrees, `-180..=180`.
    pub min_lon: f64,
    /// Southern edge in degrees, `-90..=90`.
    pub min_lat: f64,
    /// Eastern edge in degrees, `-180..=180`.
    pub max_lon: f64,
    /// Northern edge in degrees, `-90..=90`.
    pub max_lat: f64,
}

impl BBox {
    /// The whole globe.
    pub const WORLD: BBox = BBox {
        min_lon: -180.0,
        min_lat: -90.0,
        max_lon: 180.0,
        max_lat: 90.0,
    };

    /// Parses `minLon,minLat,maxLon,maxLat` (the order of GeoJSON and OGC APIs).
    ///
    /// Latitudes must satisfy `minLat <= maxLat`; `minLon > maxLon` is accepted and means the
    /// box crosses the antimeridian.
    pub fn parse(text: &str) -> Result<BBox, String> {
        const FORMAT: &str = "expected minLon,minLat,maxLon,maxLat, e.g. 5.9,45.8,10.5,47.8";
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(format!(
                "bbox has {} comma-separated values, {FORMAT}",
                parts.len()
            ));
        }
        let names = ["minLon", "minLat", "maxLon", "maxLat"];
        let mut v = [0.0f64; 4];
        for (i, part) in parts.iter().enumerate() {
            let n: f64 = part
                .parse()
                .map_err(|_| format!("bbox {} is not a number: {part:?} ({FORMAT})", names[i]))?;
            if !n.is_finite() {
                return Err(format!("bbox {} must be finite, got {part:?}", names[i]));
            }
            v[i] = n;
        }
        let [min_lon, min_lat, max_lon, max_lat] = v;
        for (name, lon) in [("minLon", min_lon), ("maxLon", max_lon)] {
            if !(-180.0..=180.0).contains(&lon) {
                return Err(format!(
                    "bbox {name} must be between -180 and 180, got {lon}"
                ));
            }
        }
        for (name, lat) in [("minLat", min_lat), ("maxLat", max_lat)] {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(format!("bbox {name} must be between -90 and 90, got {lat}"));
            }
        }
        if min_lat > max_lat {
            return Err(format!(
                "bbox minLat ({min_lat}) must not be greater than maxLat ({max_lat})"
            ));
        }
        Ok(BBox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }

    /// True when the box crosses the antimeridian.
    pub fn crosses_antimeridian(&self) -> bool {
        self.min_lon > self.max_lon
    }

    /// True when the point lies inside the box (edges included).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        let lat_inside = lat >= self.min_lat && lat <= self.max_lat;
        if !lat_inside {
            return false;
        }
        if self.crosses_antimeridian() {
            lon >= self.min_lon || lon <= self.max_lon
        } else {
            lon >= self.min_lon && lon <= self.max_lon
        }
    }
}

/// A great-circle disc: everything within `radius_m` metres of (`lat`, `lon`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Near {
    /// Centre latitude in degrees.
    pub lat: f64,
    /// Centre longitude in degrees.
    pub lon: f64,
    /// Radius in metres.
    pub radius_m: f64,
}

impl Near {
    /// True when the point lies within the radius (boundary included).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m
    }

    /// The smallest lat/lon box containing the disc, or `None` when the disc is empty
    /// (negative or non-finite radius, non-finite centre).
    ///
    /// A disc reaching a pole spans every longitude; one crossing the antimeridian yields a
    /// box with `min_lon > max_lon`.
    pub fn bbox(&self) -> Option<BBox> {
        if self.radius_m.is_nan()
            || self.radius_m < 0.0
            || !self.lat.is_finite()
            || !self.lon.is_finite()
        {
            return None;
        }
        let ang = self.radius_m / EARTH_RADIUS_M;
        if ang >= PI {
            return Some(BBox::WORLD);
        }
        let dlat = ang.to_degrees() + EXTENT_EPS_DEG;
        let min_lat = self.lat - dlat;
        let max_lat = self.lat + dlat;
        if min_lat <= -90.0 || max_lat >= 90.0 {
            // The disc contains a pole, so it contains every meridian.
            return Some(BBox {
                min_lon: -180.0,
                min_lat: min_lat.max(-90.0),
                max_lon: 180.0,
                max_lat: max_lat.min(90.0),
            });
        }
        // Longitude half-extent of a spherical cap that excludes the poles.
        let s = ang.sin() / self.lat.to_radians().cos();
        let dlon = if s >= 1.0 {
            180.0
        } else {
            s.asin().to_degrees() + EXTENT_EPS_DEG
        };
        if dlon >= 180.0 {
            return Some(BBox {
                min_lon: -180.0,
                min_lat,
                max_lon: 180.0,
                max_lat,
            });
        }
        let mut min_lon = self.lon - dlon;
        let mut max_lon = self.lon + dlon;
        // At most one side can wrap because dlon < 180.
        if min_lon < -180.0 {
            min_lon += 360.0;
        }
        if max_lon > 180.0 {
            max_lon -= 360.0;
        }
        Some(BBox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distances() {
        // One degree of latitude on the mean sphere.
        let d = haversine_m(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111_195.08).abs() < 0.1, "{d}");
        // Across the antimeridian is short.
        let d = haversine_m(0.0, 179.9, 0.0, -179.9);
        assert!((d - 22_239.0).abs() < 1.0, "{d}");
        // Antipodes.
        let d = haversine_m(10.0, 20.0, -10.0, -160.0);
        assert!((d - PI * EARTH_RADIUS_M).abs() < 1.0, "{d}");
        assert_eq!(haversine_m(45.0, 7.0, 45.0, 7.0), 0.0);
    }

    #[test]
    fn parse_accepts_and_rejects() {
        let b = BBox::parse("5.9, 45.8,10.5,47.8").unwrap();
        assert_eq!(b.min_lon, 5.9);
        assert_eq!(b.max_lat, 47.8);
        assert!(!b.crosses_antimeridian());
        let b = BBox::parse("170,-10,-170,10").unwrap();
        assert!(b.crosses_antimeridian());
        assert!(b.contains(0.0, 180.0));
        assert!(b.contains(0.0, -175.0));
        assert!(!b.contains(0.0, 0.0));

        assert!(
            BBox::parse("1,2,3")
                .unwrap_err()
                .contains("3 comma-separated")
        );
        assert!(
            BBox::parse("a,2,3,4")
                .unwrap_err()
                .contains("minLon is not a number")
        );
        assert!(
            BBox::parse("1,2,3,NaN")
                .unwrap_err()
                .contains("maxLat must be finite")
        );
        assert!(
            BBox::parse("1,2,181,4")
                .unwrap_err()
                .contains("maxLon must be between")
        );
        assert!(
            BBox::parse("1,-91,3,4")
                .unwrap_err()
                .contains("minLat must be between")
        );
        assert!(
            BBox::parse("1,5,3,4")
                .unwrap_err()
                .contains("must not be greater")
        );
    }

    #[test]
    fn circle_bbox_contains_circle() {
        let n = Near {
            lat: 50.0,
            lon: 179.5,
            radius_m: 100_000.0,
        };
        let b = n.bbox().unwrap();
        assert!(b.crosses_antimeridian());
        // Points on the circle in every direction are inside the box.
        for i in 0..360 {
            let brg = (i as f64).to_radians();
            let ang = n.radius_m / EARTH_RADIUS_M;
            let (p1, l1) = (n.lat.to_radians(), n.lon.to_radians());
            let p2 = (p1.sin() * ang.cos() + p1.cos() * ang.sin() * brg.cos()).asin();
            let l2 = l1 + (brg.sin() * ang.sin() * p1.cos()).atan2(ang.cos() - p1.sin() * p2.sin());
            let mut lon = l2.to_degrees();
            if lon > 180.0 {
                lon -= 360.0;
            }
            let lat = p2.to_degrees();
            assert!(
                b.contains(lat, lon),
                "bearing {i}: {lat},{lon} not in {b:?}"
            );
        }
        // A disc around a pole spans all longitudes.
        let polar = Near {
            lat: 89.5,
            lon: 0.0,
            radius_m: 100_000.0,
        };
        let b = polar.bbox().unwrap();
        assert_eq!((b.min_lon, b.max_lon, b.max_lat), (-180.0, 180.0, 90.0));
        assert!(
            Near {
                lat: 0.0,
                lon: 0.0,
                radius_m: -1.0
            }
            .bbox()
            .is_none()
        );
    }
}
