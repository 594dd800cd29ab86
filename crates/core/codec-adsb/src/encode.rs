//! Building valid DF17 frames from fields: the inverse of the decoder, for tests, the oracle
//! corpus and simulators (a demo can replay synthetic 1090 MHz traffic through the real
//! decoding path). Every frame gets a correct CRC-24, so it exercises more than the parity
//! check.

use crate::cpr::{self, CprKind};
use crate::{EmitterCategory, Squawk, crc, movement_to_knots};

/// Sets `len` bits at 1-based ME bit `start` to `value` (extra high bits are dropped).
fn put(me: &mut u64, start: u32, len: u32, value: u64) {
    let shift = 56 - (start - 1) - len;
    let mask = ((1u64 << len) - 1) << shift;
    *me = (*me & !mask) | ((value << shift) & mask);
}

/// A 112-bit extended squitter with the given DF (17 or 18), CA/CF, address and 56-bit ME
/// field, with its parity computed.
pub fn frame(df: u8, ca: u8, address: u32, me: u64) -> [u8; 14] {
    let mut out = [0u8; 14];
    let head: u128 = (u128::from(df & 0x1F) << 107)
        | (u128::from(ca & 0x07) << 104)
        | (u128::from(address & 0xFF_FFFF) << 80)
        | (u128::from(me & 0xFF_FFFF_FFFF_FFFF) << 24);
    for (i, b) in out.iter_mut().enumerate() {
        *b = (head >> (8 * (13 - i))) as u8;
    }
    let parity = crc::crc24(out.get(..11).unwrap_or(&[]));
    let [.., p0, p1, p2] = &mut out;
    *p0 = (parity >> 16) as u8;
    *p1 = (parity >> 8) as u8;
    *p2 = parity as u8;
    out
}

/// An AVR line `*HEX;` for a frame.
pub fn to_avr(frame: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * frame.len());
    s.push('*');
    for b in frame {
        s.push_str(&format!("{b:02X}"));
    }
    s.push(';');
    s
}

/// The 12-bit altitude field for `alt_ft` in 25 ft steps (Q=1), or 0 ("unknown") for `None`.
/// Altitudes outside -1,000..=50,175 ft are clamped to that coded range.
pub fn altitude_field(alt_ft: Option<i32>) -> u64 {
    let Some(ft) = alt_ft else { return 0 };
    let n = ((ft + 1000 + 12) / 25).clamp(0, 2047) as u64;
    ((n & 0x7F0) << 1) | 0x10 | (n & 0x0F)
}

/// Identification (TC from the category set: A→4 … D→1). Characters outside the ICAO
/// alphabet (A–Z, 0–9, space) are sent as spaces; more than 8 are cut.
pub fn identification(address: u32, category: EmitterCategory, callsign: &str) -> [u8; 14] {
    let tc = match category.set {
        'A' => 4,
        'B' => 3,
        'C' => 2,
        _ => 1,
    };
    let mut me = 0u64;
    put(&mut me, 1, 5, tc);
    put(&mut me, 6, 3, u64::from(category.code));
    let chars = callsign.bytes().chain(std::iter::repeat(b' ')).take(8);
    for (i, c) in (0u32..).zip(chars) {
        let code = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A' + 1,
            c @ b'0'..=b'9' => c,
            _ => 32,
        };
        put(&mut me, 9 + 6 * i, 6, u64::from(code & 0x3F));
    }
    frame(17, 5, address, me)
}

/// Airborne position with barometric altitude (TC 11) or, with `gnss`, GNSS height (TC 20),
/// both coded in 25 ft steps.
pub fn airborne_position(
    address: u32,
    alt_ft: Option<i32>,
    gnss: bool,
    lat: f64,
    lon: f64,
    odd: bool,
) -> [u8; 14] {
    let c = cpr::encode(CprKind::Airborne, lat, lon, odd);
    airborne_position_raw(address, alt_ft, gnss, c.lat, c.lon, odd)
}

/// Airborne position from raw CPR fields: lets tests forge a CRC-valid but lying frame.
pub fn airborne_position_raw(
    address: u32,
    alt_ft: Option<i32>,
    gnss: bool,
    cpr_lat: u32,
    cpr_lon: u32,
    odd: bool,
) -> [u8; 14] {
    let mut me = 0u64;
    put(&mut me, 1, 5, if gnss { 20 } else { 11 });
    put(&mut me, 9, 12, altitude_field(alt_ft));
    put(&mut me, 22, 1, u64::from(odd));
    put(&mut me, 23, 17, u64::from(cpr_lat));
    put(&mut me, 40, 17, u64::from(cpr_lon));
    frame(17, 5, address, me)
}

/// Surface position (TC 7) with the movement code nearest `ground_speed_kt` and a track.
pub fn surface_position(
    address: u32,
    ground_speed_kt: Option<f64>,
    track_deg: Option<f64>,
    lat: f64,
    lon: f64,
    odd: bool,
) -> [u8; 14] {
    let c = cpr::encode(CprKind::Surface, lat, lon, odd);
    let mov = ground_speed_kt.map_or(0, |gs| {
        (1..=124u32)
            .min_by(|&a, &b| {
                let da = (movement_to_knots(a).unwrap_or(f64::MAX) - gs).abs();
                let db = (movement_to_knots(b).unwrap_or(f64::MAX) - gs).abs();
                da.total_cmp(&db)
            })
            .unwrap_or(0)
    });
    let mut me = 0u64;
    put(&mut me, 1, 5, 7);
    put(&mut me, 6, 7, u64::from(mov));
    if let Some(t) = track_deg {
        put(&mut me, 13, 1, 1);
        put(
            &mut me,
            14,
            7,
            ((t.rem_euclid(360.0) * 128.0 / 360.0).round() as u64) % 128,
        );
    }
    put(&mut me, 22, 1, u64::from(odd));
    put(&mut me, 23, 17, u64::from(c.lat));
    put(&mut me, 40, 17, u64::from(c.lon));
    frame(17, 5, address, me)
}

/// Airborne velocity, subtype 1 (or 2 when a component exceeds 1,021 kt), from east and
/// north ground-speed components in knots, a vertical rate in ft/min and an optional
/// GNSS-minus-baro difference in feet.
pub fn velocity(
    address: u32,
    east_kt: i32,
    north_kt: i32,
    vertical_rate_fpm: Option<i32>,
    geo_minus_baro_ft: Option<i32>,
) -> [u8; 14] {
    let supersonic = east_kt.abs() > 1021 || north_kt.abs() > 1021;
    let scale = if supersonic { 4 } else { 1 };
    let mut me = 0u64;
    put(&mut me, 1, 5, 19);
    put(&mut me, 6, 3, if supersonic { 2 } else { 1 });
    put(&mut me, 14, 1, u64::from(east_kt < 0));
    put(
        &mut me,
        15,
        10,
        (east_kt.unsigned_abs() / scale + 1).min(1023).into(),
    );
    put(&mut me, 25, 1, u64::from(north_kt < 0));
    put(
        &mut me,
        26,
        10,
        (north_kt.unsigned_abs() / scale + 1).min(1023).into(),
    );
    if let Some(vr) = vertical_rate_fpm {
        put(&mut me, 37, 1, u64::from(vr < 0));
        put(&mut me, 38, 9, (vr.unsigned_abs() / 64 + 1).min(511).into());
    }
    if let Some(d) = geo_minus_baro_ft {
        put(&mut me, 49, 1, u64::from(d < 0));
        put(&mut me, 50, 7, (d.unsigned_abs() / 25 + 1).min(126).into());
    }
    frame(17, 5, address, me)
}

/// Emergency/priority status (TC 28 subtype 1) with an emergency state and squawk.
pub fn status(address: u32, emergency: u8, squawk: Squawk) -> [u8; 14] {
    let s = u32::from(squawk.0);
    let (a, b, c, d) = ((s >> 9) & 7, (s >> 6) & 7, (s >> 3) & 7, s & 7);
    // C1 A1 C2 A2 C4 A4 X B1 D1 B2 D2 B4 D4, with digit bits 1, 2, 4.
    let bits = [
        c & 1,
        a & 1,
        (c >> 1) & 1,
        (a >> 1) & 1,
        (c >> 2) & 1,
        (a >> 2) & 1,
        0,
        b & 1,
        d & 1,
        (b >> 1) & 1,
        (d >> 1) & 1,
        (b >> 2) & 1,
        (d >> 2) & 1,
    ];
    let id13 = bits
        .iter()
        .fold(0u64, |acc, &bit| (acc << 1) | u64::from(bit));
    let mut me = 0u64;
    put(&mut me, 1, 5, 28);
    put(&mut me, 6, 3, 1);
    put(&mut me, 9, 3, u64::from(emergency & 7));
    put(&mut me, 12, 13, id13);
    frame(17, 5, address, me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AdsbMessage, decode_frame};

    #[test]
    fn round_trips_through_the_decoder() {
        let id = identification(0x4840D6, EmitterCategory { set: 'A', code: 3 }, "klm1023");
        let f = decode_frame(&id).unwrap();
        let AdsbMessage::Identification(i) = f.message else {
            panic!()
        };
        assert_eq!(
            (i.callsign.as_str(), i.category.to_string().as_str()),
            ("KLM1023", "A3")
        );

        let v = decode_frame(&velocity(1, -100, -100, Some(-1000), Some(-75))).unwrap();
        let AdsbMessage::Velocity(v) = v.message else {
            panic!()
        };
        assert!((v.track_deg.unwrap() - 225.0).abs() < 1e-9);
        assert_eq!(v.vertical_rate_fpm, Some(-960));
        assert_eq!(v.geo_minus_baro_ft, Some(-75));

        let s = decode_frame(&status(2, 1, Squawk(0o7700))).unwrap();
        let AdsbMessage::Status(s) = s.message else {
            panic!()
        };
        assert_eq!(s.squawk.unwrap().to_string(), "7700");
        assert_eq!(s.emergency, 1);

        let p = decode_frame(&airborne_position(3, Some(38_000), false, 52.0, 4.0, true)).unwrap();
        let AdsbMessage::AirbornePosition(p) = p.message else {
            panic!()
        };
        assert_eq!(p.altitude_ft, Some(38_000));
        assert!(p.cpr.odd);
        assert_eq!(to_avr(&[0x8D, 0x01]), "*8D01;");
    }
}
