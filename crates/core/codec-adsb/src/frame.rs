//! DF17/DF18 extended squitter: CRC check, address, and the ME field by type code.
//!
//! Decoded here, each into a typed struct:
//!
//! | type code | content                                         | struct                |
//! |-----------|-------------------------------------------------|-----------------------|
//! | 1–4       | identification: callsign, emitter category      | [`Identification`]    |
//! | 5–8       | surface position: movement, track, CPR          | [`SurfacePosition`]   |
//! | 9–18      | airborne position, barometric altitude, CPR     | [`AirbornePosition`]  |
//! | 19        | airborne velocity, vertical rate                | [`Velocity`]          |
//! | 20–22     | airborne position, GNSS height, CPR             | [`AirbornePosition`]  |
//! | 28 sub 1  | emergency/priority status and Mode A squawk     | [`AircraftStatus`]    |
//!
//! Everything else (short frames, DF20/21 Comm-B, TIS-B, operational status, …) is
//! `unsupported`: well-formed, just not interpreted.
//!
//! Bit positions in comments are 1-based within the 56-bit ME field, as in DO-260B.

use rampart_model::Text;

use crate::AdsbError;
use crate::crc;

/// Whether the 24-bit address is an ICAO aircraft address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// An ICAO 24-bit aircraft address (DF17, DF18 CF=0).
    Icao,
    /// A non-ICAO address, e.g. an anonymous or ground-vehicle address (DF18 CF=1).
    NonIcao,
}

/// One decoded DF17/DF18 extended squitter with an intact CRC.
#[derive(Clone, Debug, PartialEq)]
pub struct AdsbFrame {
    /// Downlink format: 17 or 18.
    pub df: u8,
    /// The 3-bit CA (DF17) or CF (DF18) field.
    pub capability: u8,
    /// The 24-bit address (AA field).
    pub address: u32,
    /// What kind of address [`AdsbFrame::address`] is.
    pub address_kind: AddressKind,
    /// The ME type code, 1–31.
    pub type_code: u8,
    /// The interpreted ME field.
    pub message: AdsbMessage,
}

/// The interpreted ME field of an extended squitter.
#[derive(Clone, Debug, PartialEq)]
pub enum AdsbMessage {
    /// Type codes 1–4.
    Identification(Identification),
    /// Type codes 5–8.
    SurfacePosition(SurfacePosition),
    /// Type codes 9–18 and 20–22.
    AirbornePosition(AirbornePosition),
    /// Type code 19.
    Velocity(Velocity),
    /// Type code 28, subtype 1.
    Status(AircraftStatus),
}

/// ADS-B emitter category: a set letter (`A` from TC 4 … `D` from TC 1) and a code 0–7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EmitterCategory {
    /// `A` (aircraft), `B` (gliders, balloons, UAVs), `C` (surface vehicles, obstacles), `D` (reserved).
    pub set: char,
    /// 0 means "no category information".
    pub code: u8,
}

impl EmitterCategory {
    /// True for a surface emergency or service vehicle, or a ground obstacle (set C, codes 1–7).
    pub fn is_surface(self) -> bool {
        self.set == 'C' && self.code != 0
    }
}

impl std::fmt::Display for EmitterCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.set, self.code)
    }
}

/// Aircraft identification (TC 1–4).
#[derive(Clone, Debug, PartialEq)]
pub struct Identification {
    /// Emitter category.
    pub category: EmitterCategory,
    /// The callsign with padding spaces removed; may be empty if the aircraft sent none.
    pub callsign: Text,
}

/// One compact position report (CPR) frame: its parity and raw 17-bit coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CprFrame {
    /// True for an odd frame (F bit 1).
    pub odd: bool,
    /// Raw 17-bit encoded latitude.
    pub lat: u32,
    /// Raw 17-bit encoded longitude.
    pub lon: u32,
}

/// What an airborne position's altitude field measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AltitudeSource {
    /// Pressure altitude (TC 9–18), referenced to 1013.25 hPa: not a geometric height.
    Barometric,
    /// GNSS height above the WGS-84 ellipsoid (TC 20–22).
    Gnss,
}

/// Airborne position (TC 9–18 and 20–22).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AirbornePosition {
    /// Surveillance status: 0 none, 1 permanent alert, 2 temporary alert, 3 SPI.
    pub surveillance_status: u8,
    /// Altitude in feet, `None` when the transponder sent "unknown" (all zeros).
    pub altitude_ft: Option<i32>,
    /// What [`AirbornePosition::altitude_ft`] measures.
    pub altitude_source: AltitudeSource,
    /// The CPR coordinates.
    pub cpr: CprFrame,
}

/// Surface position (TC 5–8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SurfacePosition {
    /// Ground speed in knots from the movement field; `None` when unavailable.
    pub ground_speed_kt: Option<f64>,
    /// Ground track in degrees true; `None` when the status bit says invalid.
    pub track_deg: Option<f64>,
    /// The CPR coordinates.
    pub cpr: CprFrame,
}

/// Whether a reported airspeed is indicated or true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AirspeedKind {
    /// Indicated airspeed.
    Indicated,
    /// True airspeed.
    True,
}

/// Where a vertical rate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerticalRateSource {
    /// GNSS (geometric) rate.
    Gnss,
    /// Barometric rate.
    Barometric,
}

/// Airborne velocity (TC 19).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Velocity {
    /// 1–2 ground speed (subsonic/supersonic), 3–4 airspeed and heading.
    pub subtype: u8,
    /// Ground speed in knots (subtypes 1–2).
    pub ground_speed_kt: Option<f64>,
    /// Track over ground in degrees true, `[0, 360)` (subtypes 1–2).
    pub track_deg: Option<f64>,
    /// Airspeed in knots (subtypes 3–4).
    pub airspeed_kt: Option<u16>,
    /// Indicated or true (subtypes 3–4).
    pub airspeed_kind: Option<AirspeedKind>,
    /// Heading in degrees, `[0, 360)` (subtypes 3–4, when the status bit says valid).
    pub heading_deg: Option<f64>,
    /// Vertical rate in feet per minute, positive up; `None` when unavailable.
    pub vertical_rate_fpm: Option<i32>,
    /// Source of the vertical rate.
    pub vertical_rate_source: VerticalRateSource,
    /// GNSS height minus barometric altitude in feet; `None` when unavailable.
    pub geo_minus_baro_ft: Option<i32>,
}

/// A Mode A code (squawk): four octal digits held as a 12-bit number, e.g. 7700 is 0o7700.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Squawk(pub u16);

impl std::fmt::Display for Squawk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0 & 0o7777)
    }
}

/// Emergency/priority status and squawk (TC 28, subtype 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AircraftStatus {
    /// Emergency state 0–7: 0 none, 1 general, 2 medical, 3 minimum fuel, 4 no
    /// communications, 5 unlawful interference, 6 downed aircraft, 7 reserved.
    pub emergency: u8,
    /// The Mode A code, `None` when all zero.
    pub squawk: Option<Squawk>,
}

/// The name of an emergency state as used in the `emergency` attribute.
pub fn emergency_name(state: u8) -> &'static str {
    match state {
        0 => "none",
        1 => "general",
        2 => "medical",
        3 => "minimum_fuel",
        4 => "no_communications",
        5 => "unlawful_interference",
        6 => "downed",
        _ => "reserved",
    }
}

/// The 56-bit ME field and helpers to slice it the way DO-260B numbers its bits.
#[derive(Clone, Copy)]
struct Me(u64);

impl Me {
    /// `len` bits starting at 1-based ME bit `start`.
    fn bits(self, start: u32, len: u32) -> u32 {
        let shift = 56 - (start - 1) - len;
        ((self.0 >> shift) & ((1u64 << len) - 1)) as u32
    }
    fn bit(self, n: u32) -> bool {
        self.bits(n, 1) == 1
    }
}

/// Decodes one raw Mode S frame. Only intact DF17/DF18 extended squitters decode; a damaged
/// frame is `bad_crc`, other downlink formats are `unsupported`.
pub fn decode_frame(bytes: &[u8]) -> Result<AdsbFrame, AdsbError> {
    let Some(&first) = bytes.first() else {
        return Err(AdsbError::truncated("Mode S frame", "no bytes"));
    };
    let df = first >> 3;
    let df = if df >= 24 { 24 } else { df };
    match (df, bytes.len()) {
        (17 | 18, 14) => {}
        (17 | 18, n) => {
            return Err(AdsbError::truncated(
                "Mode S frame",
                format!("DF{df} is 112 bits (14 bytes), got {n} bytes"),
            ));
        }
        (0 | 4 | 5 | 11, 7) => {
            return Err(AdsbError::Unsupported(format!(
                "DF{df} is a short Mode S reply, not ADS-B"
            )));
        }
        (_, 14) if df >= 16 => {
            return Err(AdsbError::Unsupported(format!(
                "DF{df} is a Mode S reply, not an ADS-B extended squitter"
            )));
        }
        (_, n) => {
            return Err(AdsbError::bad(
                "downlink format",
                format!("DF{df} cannot have {n} bytes"),
            ));
        }
    }
    let remainder = crc::remainder(bytes);
    if remainder != 0 {
        return Err(AdsbError::BadCrc { df, remainder });
    }
    let word = bytes
        .iter()
        .fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
    let capability = first & 0x07;
    let address = ((word >> 80) & 0xFF_FFFF) as u32;
    let me = Me(((word >> 24) & 0xFF_FFFF_FFFF_FFFF) as u64);
    let address_kind = match (df, capability) {
        (17, _) | (18, 0) => AddressKind::Icao,
        (18, 1) => AddressKind::NonIcao,
        (_, cf) => {
            return Err(AdsbError::Unsupported(format!(
                "DF18 control field {cf} (TIS-B / ADS-R / reserved) is not decoded"
            )));
        }
    };
    let type_code = me.bits(1, 5) as u8;
    let message = decode_me(type_code, me)?;
    Ok(AdsbFrame {
        df,
        capability,
        address,
        address_kind,
        type_code,
        message,
    })
}

fn decode_me(tc: u8, me: Me) -> Result<AdsbMessage, AdsbError> {
    Ok(match tc {
        1..=4 => AdsbMessage::Identification(identification(tc, me)?),
        5..=8 => AdsbMessage::SurfacePosition(surface_position(me)),
        9..=18 | 20..=22 => AdsbMessage::AirbornePosition(airborne_position(tc, me)?),
        19 => AdsbMessage::Velocity(velocity(me)?),
        28 if me.bits(6, 3) == 1 => AdsbMessage::Status(AircraftStatus {
            emergency: me.bits(9, 3) as u8,
            squawk: match me.bits(12, 13) {
                0 => None,
                id13 => Some(id13_to_squawk(id13)),
            },
        }),
        0 => {
            return Err(AdsbError::Unsupported(
                "type code 0 (no position information)".into(),
            ));
        }
        _ => {
            return Err(AdsbError::Unsupported(format!(
                "type code {tc}{} is not decoded",
                if tc == 28 { " (ACAS RA)" } else { "" }
            )));
        }
    })
}

/// The 6-bit ICAO callsign alphabet: `#` marks codes that are not characters.
const CHARSET: &[u8; 64] = b"#ABCDEFGHIJKLMNOPQRSTUVWXYZ##### ###############0123456789######";

fn identification(tc: u8, me: Me) -> Result<Identification, AdsbError> {
    let mut buf = [0u8; 8];
    for (i, out) in (0u32..).zip(buf.iter_mut()) {
        let code = me.bits(9 + 6 * i, 6) as usize;
        let c = CHARSET.get(code).copied().unwrap_or(b'#');
        if c == b'#' {
            // A CRC-valid frame with a non-character is a broken transponder, not a name.
            return Err(AdsbError::bad(
                "callsign",
                format!(
                    "character {} holds code {code}, which is outside the ICAO alphabet",
                    i + 1
                ),
            ));
        }
        *out = c;
    }
    let text = std::str::from_utf8(&buf).unwrap_or("").trim();
    let set = match tc {
        4 => 'A',
        3 => 'B',
        2 => 'C',
        _ => 'D',
    };
    Ok(Identification {
        category: EmitterCategory {
            set,
            code: me.bits(6, 3) as u8,
        },
        callsign: Text::from(text),
    })
}

/// Ground speed in knots from the 7-bit surface movement field (DO-260B table 2-79): a
/// piecewise-linear scale, fine at taxi speeds and coarse above 70 kt.
pub fn movement_to_knots(mov: u32) -> Option<f64> {
    let m = f64::from(mov);
    Some(match mov {
        1 => 0.0,
        2..=8 => 0.125 + (m - 2.0) * 0.125,
        9..=12 => 1.0 + (m - 9.0) * 0.25,
        13..=38 => 2.0 + (m - 13.0) * 0.5,
        39..=93 => 15.0 + (m - 39.0),
        94..=108 => 70.0 + (m - 94.0) * 2.0,
        109..=123 => 100.0 + (m - 109.0) * 5.0,
        124 => 175.0,
        // 0 is "no information", 125–127 are reserved.
        _ => return None,
    })
}

fn surface_position(me: Me) -> SurfacePosition {
    SurfacePosition {
        ground_speed_kt: movement_to_knots(me.bits(6, 7)),
        track_deg: me
            .bit(13)
            .then(|| f64::from(me.bits(14, 7)) * 360.0 / 128.0),
        cpr: cpr_fields(me),
    }
}

fn cpr_fields(me: Me) -> CprFrame {
    CprFrame {
        odd: me.bit(22),
        lat: me.bits(23, 17),
        lon: me.bits(40, 17),
    }
}

fn airborne_position(tc: u8, me: Me) -> Result<AirbornePosition, AdsbError> {
    let ac12 = me.bits(9, 12);
    // DO-260B encodes the TC 20–22 GNSS height like the barometric field (dump1090 and
    // readsb agree); pyModeS 3.6.1 reads it as metres instead. See the crate docs.
    let altitude_ft = match ac12 {
        0 => None,
        _ => Some(ac12_to_feet(ac12)?),
    };
    Ok(AirbornePosition {
        surveillance_status: me.bits(6, 2) as u8,
        altitude_ft,
        altitude_source: if tc >= 20 {
            AltitudeSource::Gnss
        } else {
            AltitudeSource::Barometric
        },
        cpr: cpr_fields(me),
    })
}

/// Decodes the 12-bit altitude field of an airborne position (the 13-bit AC code without
/// its M bit): Q=1 is 25 ft steps, Q=0 is 100 ft Gillham (Gray) code.
pub fn ac12_to_feet(ac12: u32) -> Result<i32, AdsbError> {
    if ac12 & 0x10 != 0 {
        // Q bit set: the 11 other bits are a plain count of 25 ft from -1000 ft.
        let n = ((ac12 & 0xFE0) >> 1) | (ac12 & 0x0F);
        return Ok(n as i32 * 25 - 1000);
    }
    // Re-insert M=0 to get the 13-bit AC layout C1 A1 C2 A2 C4 A4 M B1 Q B2 D2 B4 D4.
    let ac13 = ((ac12 & 0xFC0) << 1) | (ac12 & 0x3F);
    gillham_to_feet(ac13).ok_or_else(|| {
        AdsbError::bad(
            "altitude",
            format!("Gillham code {ac12:03X} has an invalid 100 ft digit"),
        )
    })
}

/// Gillham (ICAO Annex 10) 100 ft altitude from a 13-bit AC field with Q=0, M=0.
fn gillham_to_feet(ac13: u32) -> Option<i32> {
    let b = |pos: u32| (ac13 >> (12 - pos)) & 1;
    let (c1, a1, c2, a2, c4, a4) = (b(0), b(1), b(2), b(3), b(4), b(5));
    let (b1, b2, d2, b4, d4) = (b(7), b(9), b(10), b(11), b(12));
    let gc500 =
        (d2 << 7) | (d4 << 6) | (a1 << 5) | (a2 << 4) | (a4 << 3) | (b1 << 2) | (b2 << 1) | b4;
    let gc100 = (c1 << 2) | (c2 << 1) | c4;
    let n500 = gray_to_binary(gc500) as i32;
    let mut n100 = gray_to_binary(gc100) as i32;
    if matches!(n100, 0 | 5 | 6) {
        return None;
    }
    if n100 == 7 {
        n100 = 5;
    }
    // The 100 ft count runs backwards in odd 500 ft bands (that is what makes it Gray).
    if n500 % 2 == 1 {
        n100 = 6 - n100;
    }
    Some(n500 * 500 + n100 * 100 - 1300)
}

fn gray_to_binary(mut n: u32) -> u32 {
    n ^= n >> 8;
    n ^= n >> 4;
    n ^= n >> 2;
    n ^= n >> 1;
    n
}

/// The Mode A code from a 13-bit identity field C1 A1 C2 A2 C4 A4 X B1 D1 B2 D2 B4 D4.
pub fn id13_to_squawk(id13: u32) -> Squawk {
    let b = |pos: u32| ((id13 >> (12 - pos)) & 1) as u16;
    let a = (b(5) << 2) | (b(3) << 1) | b(1);
    let bb = (b(11) << 2) | (b(9) << 1) | b(7);
    let c = (b(4) << 2) | (b(2) << 1) | b(0);
    let d = (b(12) << 2) | (b(10) << 1) | b(8);
    Squawk((a << 9) | (bb << 6) | (c << 3) | d)
}

fn velocity(me: Me) -> Result<Velocity, AdsbError> {
    let subtype = me.bits(6, 3) as u8;
    let mut v = Velocity {
        subtype,
        ground_speed_kt: None,
        track_deg: None,
        airspeed_kt: None,
        airspeed_kind: None,
        heading_deg: None,
        vertical_rate_fpm: None,
        vertical_rate_source: if me.bit(36) {
            VerticalRateSource::Barometric
        } else {
            VerticalRateSource::Gnss
        },
        geo_minus_baro_ft: None,
    };
    // Supersonic subtypes count in 4 kt steps.
    let scale = if subtype == 2 || subtype == 4 { 4 } else { 1 };
    match subtype {
        1 | 2 => {
            let (ew, ns) = (me.bits(15, 10), me.bits(26, 10));
            if ew != 0 && ns != 0 {
                let east = f64::from((ew - 1) * scale) * if me.bit(14) { -1.0 } else { 1.0 };
                let north = f64::from((ns - 1) * scale) * if me.bit(25) { -1.0 } else { 1.0 };
                v.ground_speed_kt = Some(east.hypot(north));
                let track = east.atan2(north).to_degrees();
                v.track_deg = Some(if track < 0.0 { track + 360.0 } else { track });
            }
        }
        3 | 4 => {
            if me.bit(14) {
                v.heading_deg = Some(f64::from(me.bits(15, 10)) * 360.0 / 1024.0);
            }
            let raw = me.bits(26, 10);
            if raw != 0 {
                v.airspeed_kt = Some(((raw - 1) * scale) as u16);
                v.airspeed_kind = Some(if me.bit(25) {
                    AirspeedKind::True
                } else {
                    AirspeedKind::Indicated
                });
            }
        }
        other => {
            return Err(AdsbError::Unsupported(format!(
                "airborne velocity subtype {other} is reserved"
            )));
        }
    }
    let vr = me.bits(38, 9);
    if vr != 0 {
        let rate = (vr as i32 - 1) * 64;
        v.vertical_rate_fpm = Some(if me.bit(37) { -rate } else { rate });
    }
    let diff = me.bits(50, 7);
    // 0 is "no information"; 127 means "more than 3137.5 ft", not a usable value.
    if diff != 0 && diff != 127 {
        let ft = (diff as i32 - 1) * 25;
        v.geo_minus_baro_ft = Some(if me.bit(49) { -ft } else { ft });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_avr;

    fn decode(line: &str) -> Result<AdsbFrame, AdsbError> {
        decode_frame(parse_avr(line)?.bytes())
    }

    #[test]
    fn riddle_identification() {
        let f = decode("*8D4840D6202CC371C32CE0576098;").unwrap();
        assert_eq!((f.df, f.address, f.type_code), (17, 0x4840D6, 4));
        let AdsbMessage::Identification(id) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(id.callsign, "KLM1023");
        assert_eq!(id.category.to_string(), "A0");
    }

    #[test]
    fn riddle_airborne_position() {
        let f = decode("*8D40621D58C382D690C8AC2863A7;").unwrap();
        let AdsbMessage::AirbornePosition(p) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(p.altitude_ft, Some(38_000));
        assert_eq!(p.altitude_source, AltitudeSource::Barometric);
        assert_eq!(
            p.cpr,
            CprFrame {
                odd: false,
                lat: 93_000,
                lon: 51_372
            }
        );
        let f = decode("*8D40621D58C386435CC412692AD6;").unwrap();
        let AdsbMessage::AirbornePosition(p) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(
            p.cpr,
            CprFrame {
                odd: true,
                lat: 74_158,
                lon: 50_194
            }
        );
    }

    #[test]
    fn riddle_velocity() {
        let f = decode("*8D485020994409940838175B284F;").unwrap();
        let AdsbMessage::Velocity(v) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(v.subtype, 1);
        assert_eq!(v.ground_speed_kt.unwrap().floor(), 159.0);
        assert!((v.track_deg.unwrap() - 182.88).abs() < 0.01);
        assert_eq!(v.vertical_rate_fpm, Some(-832));
        assert_eq!(v.vertical_rate_source, VerticalRateSource::Gnss);
        assert_eq!(v.geo_minus_baro_ft, Some(550));
        // Subtype 3: airspeed and heading.
        let f = decode("*8DA05F219B06B6AF189400CBC33F;").unwrap();
        let AdsbMessage::Velocity(v) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(v.subtype, 3);
        assert_eq!(v.airspeed_kt, Some(375));
        assert_eq!(v.airspeed_kind, Some(AirspeedKind::True));
        assert!((v.heading_deg.unwrap() - 243.98).abs() < 0.01);
        assert_eq!(v.vertical_rate_fpm, Some(-2304));
    }

    #[test]
    fn riddle_surface_position() {
        let f = decode("*8C4841753AAB238733C8CD4020B1;").unwrap();
        assert_eq!(f.type_code, 7);
        let AdsbMessage::SurfacePosition(s) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(s.ground_speed_kt, Some(18.0));
        assert_eq!(s.track_deg, Some(140.625));
        assert_eq!(
            s.cpr,
            CprFrame {
                odd: false,
                lat: 115_609,
                lon: 116_941
            }
        );
    }

    #[test]
    fn altitude_codes() {
        // Q=1: 25 ft steps.
        assert_eq!(ac12_to_feet(0xC38).unwrap(), 38_000);
        assert_eq!(ac12_to_feet(0x010).unwrap(), -1000);
        // Q=0 Gillham, values checked against pyModeS 3.6.1.
        assert_eq!(ac12_to_feet(0x808).unwrap(), 300);
        assert_eq!(ac12_to_feet(0x221).unwrap(), 59_000);
        assert_eq!(ac12_to_feet(0xA04).unwrap(), 126_400);
        // Every valid Gillham code decodes to a multiple of 100 ft within the coded range.
        let mut valid = 0;
        for ac12 in 0..4096u32 {
            if ac12 & 0x10 != 0 || ac12 == 0 {
                continue;
            }
            if let Ok(ft) = ac12_to_feet(ac12) {
                assert_eq!(ft % 100, 0);
                assert!((-1200..=126_700).contains(&ft), "{ft}");
                valid += 1;
            }
        }
        assert!(valid > 1000);
        assert_eq!(ac12_to_feet(0x001).unwrap_err().reason(), "bad_field");
    }

    #[test]
    fn squawk_from_id13() {
        assert_eq!(id13_to_squawk(0x0808).to_string(), "1200");
        assert_eq!(Squawk(0o7700).to_string(), "7700");
    }

    #[test]
    fn movement_table() {
        assert_eq!(movement_to_knots(0), None);
        assert_eq!(movement_to_knots(1), Some(0.0));
        assert_eq!(movement_to_knots(42), Some(18.0));
        assert_eq!(movement_to_knots(124), Some(175.0));
        assert_eq!(movement_to_knots(125), None);
    }

    #[test]
    fn rejects_with_reasons() {
        let reason = |l: &str| decode(l).unwrap_err().reason();
        // One flipped bit anywhere breaks the parity.
        assert_eq!(reason("*8D4840D6202CC371C32CE0576099;"), "bad_crc");
        assert_eq!(reason("*8D4840D6202CC371C32CE1576098;"), "bad_crc");
        // DF17 claims 112 bits.
        assert_eq!(reason("*8D4840D6202CC3;"), "truncated");
        // DF4/DF5 short replies and DF20/21 Comm-B are not ADS-B.
        assert_eq!(reason("*20001838CA3804;"), "unsupported");
        assert_eq!(reason("*A0001838CA380000000000000000;"), "unsupported");
        // DF17 with 56 bits of DF11 length mismatch the other way.
        assert_eq!(reason("*5D4840D6202CC371C32CE0576098;"), "bad_field");
        assert_eq!(decode_frame(&[]).unwrap_err().reason(), "truncated");
    }
}
