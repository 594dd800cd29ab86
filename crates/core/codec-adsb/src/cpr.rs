//! Compact Position Reporting (CPR): the NL function, global decoding of an even/odd pair and
//! local decoding against a reference, airborne and surface, plus the encoder the tests and
//! simulators use.
//!
//! CPR sends 17 bits of latitude and longitude *within a zone*. Even frames use 60 latitude
//! zones, odd frames 59; the longitude zone count NL depends on latitude. Two frames of
//! opposite parity pin down the zone (global decoding); one frame plus a reference within half
//! a zone does too (local decoding). Surface frames use the same scheme on a 90° span, so they
//! always need a reference to choose among four quadrants.
//!
//! These functions are pure arithmetic: the time window, zone-match and plausibility policy
//! lives in [`crate::AdsbTracker`].

use crate::{AdsbError, CprFrame, error::OrdF64};

/// 2^17: the CPR fixed-point scale.
const SCALE: f64 = 131_072.0;

/// Latitudes (degrees, ascending) at which NL steps down from 59: entry `i` is where NL goes
/// from `59 - i` to `58 - i`. Derived from the DO-260B closed form
/// `NL = floor(2π / acos(1 - (1 - cos(π/30)) / cos²(lat)))` (the test checks it), and
/// identical to pyModeS's table so that both decoders agree exactly at the boundaries.
const NL_BOUNDARIES: [f64; 58] = [
    10.47047129996848,
    14.828174368686794,
    18.186263570713354,
    21.029394926028463,
    23.545044865570706,
    25.829247070587755,
    27.938987101219045,
    29.911356857318083,
    31.77209707681077,
    33.53993436298484,
    35.22899597796385,
    36.85025107593526,
    38.41241892412256,
    39.922566843338615,
    41.38651832260239,
    42.80914012243555,
    44.194549514192744,
    45.546267226602346,
    46.867332524987454,
    48.160391280966216,
    49.42776439255687,
    50.67150165553835,
    51.893424691687684,
    53.09516152796003,
    54.278174722729,
    55.44378444495043,
    56.59318756205918,
    57.72747353866114,
    58.84763776148457,
    59.954592766940294,
    61.04917774246351,
    62.13216659210329,
    63.20427479381928,
    64.2661652256744,
    65.31845309682089,
    66.36171008382617,
    67.39646774084667,
    68.4232202208333,
    69.44242631144024,
    70.454510749876,
    71.45986473028982,
    72.45884544728945,
    73.45177441667865,
    74.43893415725137,
    75.42056256653356,
    76.39684390794469,
    77.36789461328188,
    78.33374082922747,
    79.29428225456925,
    80.24923213280512,
    81.19801349271948,
    82.13956980510606,
    83.07199444719814,
    83.99173562980565,
    84.89166190702085,
    85.75541620944418,
    86.535369975121,
    87.0,
];

/// The number of longitude zones at latitude `lat` (degrees), 1–59.
pub fn nl(lat: f64) -> u8 {
    let a = lat.abs();
    if a > 87.0 {
        return 1;
    }
    if a == 87.0 {
        return 2;
    }
    // Count boundaries at or below |lat|; the table is sorted, so a partition point suffices.
    let below = NL_BOUNDARIES.partition_point(|&b| b <= a);
    // below ≤ 58, so the result is 1..=59.
    (59 - below) as u8
}

/// Which CPR variant a frame uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CprKind {
    /// Airborne positions: latitude zones span 360°.
    Airborne,
    /// Surface positions: latitude zones span 90°, so the result needs a reference.
    Surface,
}

impl CprKind {
    fn span(self) -> f64 {
        match self {
            CprKind::Airborne => 360.0,
            CprKind::Surface => 90.0,
        }
    }
}

fn frac(raw: u32) -> f64 {
    f64::from(raw & 0x1_FFFF) / SCALE
}

/// `x` modulo `m` for a positive `m`, always in `[0, m)`.
fn modulo(x: f64, m: f64) -> f64 {
    x - m * (x / m).floor()
}

/// Longitude folded into `[-180, 180)`.
pub fn wrap_lon(lon: f64) -> f64 {
    modulo(lon + 180.0, 360.0) - 180.0
}

/// Global decoding of an even/odd pair. `newest_odd` says which frame is the newer: the
/// position is that frame's. `reference` is required for surface frames (within 45 NM) and
/// ignored for airborne ones. `address` only labels the errors.
pub fn decode_global(
    kind: CprKind,
    even: CprFrame,
    odd: CprFrame,
    newest_odd: bool,
    reference: Option<(f64, f64)>,
    address: u32,
) -> Result<(f64, f64), AdsbError> {
    let span = kind.span();
    let (lat_e, lon_e) = (frac(even.lat), frac(even.lon));
    let (lat_o, lon_o) = (frac(odd.lat), frac(odd.lon));
    let j = (59.0 * lat_e - 60.0 * lat_o + 0.5).floor();
    let mut rlat_e = span / 60.0 * (modulo(j, 60.0) + lat_e);
    let mut rlat_o = span / 59.0 * (modulo(j, 59.0) + lat_o);
    match kind {
        CprKind::Airborne => {
            // Southern latitudes come out as 270..360.
            if rlat_e >= 270.0 {
                rlat_e -= 360.0;
            }
            if rlat_o >= 270.0 {
                rlat_o -= 360.0;
            }
        }
        CprKind::Surface => {
            let Some((ref_lat, _)) = reference else {
                return Err(AdsbError::NoReference { address });
            };
            // Two solutions, 90° apart: north (as computed) and south; take the one nearer
            // the reference, judged on the newer frame's latitude.
            let newer = if newest_odd { rlat_o } else { rlat_e };
            if (newer - 90.0 - ref_lat).abs() < (newer - ref_lat).abs() {
                rlat_e -= 90.0;
                rlat_o -= 90.0;
            }
        }
    }
    for lat in [rlat_e, rlat_o] {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(AdsbError::impossible(
                "lat",
                format!("the CPR pair resolves to latitude {lat:.4}, beyond the pole"),
            ));
        }
    }
    let (nl_e, nl_o) = (nl(rlat_e), nl(rlat_o));
    if nl_e != nl_o {
        return Err(AdsbError::CprZoneMismatch {
            address,
            lat_even: OrdF64(rlat_e),
            lat_odd: OrdF64(rlat_o),
            nl_even: nl_e,
            nl_odd: nl_o,
        });
    }
    let nl_v = f64::from(nl_e);
    let m = (lon_e * (nl_v - 1.0) - lon_o * nl_v + 0.5).floor();
    let (lat, ni, lon_frac) = if newest_odd {
        (rlat_o, (nl_v - 1.0).max(1.0), lon_o)
    } else {
        (rlat_e, nl_v.max(1.0), lon_e)
    };
    let lon = span / ni * (modulo(m, ni) + lon_frac);
    let lon = match (kind, reference) {
        (CprKind::Surface, Some((_, ref_lon))) => {
            // Four candidates one quadrant apart; take the nearest to the reference.
            let mut best = wrap_lon(lon);
            for q in [90.0, 180.0, 270.0] {
                let c = wrap_lon(lon + q);
                if wrap_lon(c - ref_lon).abs() < wrap_lon(best - ref_lon).abs() {
                    best = c;
                }
            }
            best
        }
        _ => wrap_lon(lon),
    };
    Ok((lat, lon))
}

/// Local decoding of one frame against a reference position that lies within half a zone
/// of the truth (under 180 NM airborne, 45 NM surface; the caller guarantees it).
pub fn decode_local(kind: CprKind, frame: CprFrame, reference: (f64, f64)) -> (f64, f64) {
    let span = kind.span();
    let (ref_lat, ref_lon) = reference;
    let i = if frame.odd { 1.0 } else { 0.0 };
    let dlat = span / (60.0 - i);
    let (lat_c, lon_c) = (frac(frame.lat), frac(frame.lon));
    let j = (ref_lat / dlat).floor() + (0.5 + modulo(ref_lat, dlat) / dlat - lat_c).floor();
    let lat = dlat * (j + lat_c);
    let ni = (f64::from(nl(lat)) - i).max(1.0);
    let dlon = span / ni;
    let m = (ref_lon / dlon).floor() + (0.5 + modulo(ref_lon, dlon) / dlon - lon_c).floor();
    (lat, wrap_lon(dlon * (m + lon_c)))
}

/// Encodes a position into a CPR frame (DO-260B A.1.7.1). For building test and simulation
/// traffic; a decoder never needs it.
pub fn encode(kind: CprKind, lat: f64, lon: f64, odd: bool) -> CprFrame {
    let span = kind.span();
    let i = if odd { 1.0 } else { 0.0 };
    let dlat = span / (60.0 - i);
    let yz = (SCALE * modulo(lat, dlat) / dlat + 0.5).floor();
    let rlat = dlat * (yz / SCALE + (lat / dlat).floor());
    let dlon = span / (f64::from(nl(rlat)) - i).max(1.0);
    let xz = (SCALE * modulo(lon, dlon) / dlon + 0.5).floor();
    CprFrame {
        odd,
        // Both are in 0..=2^17 and the wire keeps the low 17 bits.
        lat: (yz as u32) & 0x1_FFFF,
        lon: (xz as u32) & 0x1_FFFF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nl_formula(lat: f64) -> u8 {
        if lat.abs() >= 87.0 {
            return if lat.abs() > 87.0 { 1 } else { 2 };
        }
        let a = 1.0 - (std::f64::consts::PI / 30.0).cos();
        let c = lat.to_radians().cos();
        (2.0 * std::f64::consts::PI / (1.0 - a / (c * c)).acos()).floor() as u8
    }

    #[test]
    fn nl_table_matches_formula() {
        assert_eq!(nl(0.0), 59);
        assert_eq!(nl(52.2572), 36);
        assert_eq!(nl(-52.2572), 36);
        assert_eq!(nl(87.0), 2);
        assert_eq!(nl(89.0), 1);
        for i in 0..=8_990 {
            let lat = f64::from(i) * 0.01 + 0.003;
            assert_eq!(nl(lat), nl_formula(lat), "lat {lat}");
        }
    }

    #[test]
    fn riddle_global_airborne() {
        let even = CprFrame {
            odd: false,
            lat: 93_000,
            lon: 51_372,
        };
        let odd = CprFrame {
            odd: true,
            lat: 74_158,
            lon: 50_194,
        };
        // The Riddle's answer, 52.2572, 3.9194, is the even frame's position; pyModeS gives
        // these exact values for each parity.
        let (lat, lon) = decode_global(CprKind::Airborne, even, odd, true, None, 0).unwrap();
        assert!((lat - 52.265_780_174_126_06).abs() < 1e-9, "{lat}");
        assert!((lon - 3.938_912_527_901_786).abs() < 1e-9, "{lon}");
        let (lat, lon) = decode_global(CprKind::Airborne, even, odd, false, None, 0).unwrap();
        assert!((lat - 52.257_202_148_437_5).abs() < 1e-9, "{lat}");
        assert!((lon - 3.919_372_558_593_75).abs() < 1e-9, "{lon}");
        // Local decode of the even frame against a reference nearby gives the same answer.
        let (l2, o2) = decode_local(CprKind::Airborne, even, (52.258, 3.918));
        assert!((l2 - lat).abs() < 1e-9 && (o2 - lon).abs() < 1e-9);
    }

    #[test]
    fn riddle_surface() {
        // 1090 MHz Riddle surface example, receiver at 51.990, 4.375: 52.32061, 4.73473.
        let even = CprFrame {
            odd: false,
            lat: 115_609,
            lon: 116_941,
        };
        let odd = CprFrame {
            odd: true,
            lat: 39_199,
            lon: 110_269,
        };
        // The odd frame is the newer one in the book's example.
        let (lat, lon) =
            decode_global(CprKind::Surface, even, odd, true, Some((51.990, 4.375)), 0).unwrap();
        assert!((lat - 52.320_607).abs() < 1e-5, "{lat}");
        assert!((lon - 4.734_735).abs() < 1e-5, "{lon}");
        let (l2, o2) = decode_local(CprKind::Surface, even, (51.990, 4.375));
        assert!((l2 - 52.323_04).abs() < 1e-4 && (o2 - 4.730_47).abs() < 1e-4);
        assert_eq!(
            decode_global(CprKind::Surface, even, odd, false, None, 7)
                .unwrap_err()
                .reason(),
            "no_reference"
        );
    }

    #[test]
    fn encode_round_trips_everywhere() {
        for (lat, lon) in [
            (52.2572, 3.9194),
            (-33.9, 151.2),
            (0.001, -179.99),
            (64.1, -21.9),
            (-77.8, 166.7),
            (86.9, 10.0),
            (1.3, 103.9),
        ] {
            for kind in [CprKind::Airborne, CprKind::Surface] {
                let e = encode(kind, lat, lon, false);
                let o = encode(kind, lat, lon, true);
                let r = Some((lat + 0.1, lon - 0.1));
                // Quantisation is span/NL/2^17 in longitude: up to 1e-3° near the poles.
                let tol = 1.5e-3;
                for newest_odd in [false, true] {
                    let (a, b) = decode_global(kind, e, o, newest_odd, r, 0).unwrap();
                    assert!((a - lat).abs() < tol, "{kind:?} {lat} {lon} -> {a}");
                    assert!(wrap_lon(b - lon).abs() < tol, "{kind:?} {lat} {lon} -> {b}");
                }
                let (a, b) = decode_local(kind, o, (lat - 0.2, lon + 0.2));
                assert!((a - lat).abs() < tol && wrap_lon(b - lon).abs() < tol);
            }
        }
    }

    #[test]
    fn zone_mismatch_is_named() {
        // Frames from either side of the NL 36/35 boundary at 53.0952°, close enough (a pair
        // must be within about 0.05° of latitude) for the zone index to resolve.
        let e = encode(CprKind::Airborne, 53.09, 4.0, false);
        let o = encode(CprKind::Airborne, 53.10, 4.0, true);
        let err = decode_global(CprKind::Airborne, e, o, true, None, 0xABCDEF).unwrap_err();
        assert_eq!(err.reason(), "cpr_zone_mismatch");
        assert!(err.to_string().contains("abcdef"), "{err}");
    }
}
