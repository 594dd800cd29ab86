//! Typed AIS messages (types 1–5, 18, 19, 21, 24, 27) decoded from a [`Payload`].
//!
//! Scaling follows ITU-R M.1371-5: positions in 1/10,000 minute (type 27: 1/10 minute), speed
//! in 0.1 knot (type 27: 1 knot), course in 0.1° (type 27: 1°). "Not available" sentinels
//! become `None`: longitude 181°, latitude 91°, speed 102.3 kn (1023; type 27: 63), course
//! 360° (3600; type 27: 511), heading 511, ETA month/day 0, hour 24, minute 60, draught 0,
//! IMO 0. Values outside their defined range that are not sentinels — latitude beyond ±90°,
//! longitude beyond ±180°, course 360.1–409.5°, heading 360–510, MMSI 0 or above 999999999 —
//! are rejected as `impossible_value`, never passed on.

use rampart_model::Text;

use crate::AisError;
use crate::bits::Payload;

/// Hull dimensions relative to the position reference point, metres (0 = not available).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dimensions {
    /// Reference point to bow.
    pub to_bow: u16,
    /// Reference point to stern.
    pub to_stern: u16,
    /// Reference point to port side.
    pub to_port: u8,
    /// Reference point to starboard side.
    pub to_starboard: u8,
}

impl Dimensions {
    /// Overall length, if both bow and stern distances are known.
    pub fn length(&self) -> Option<u16> {
        (self.to_bow > 0 && self.to_stern > 0).then(|| self.to_bow + self.to_stern)
    }
    /// Overall beam, if both side distances are known.
    pub fn beam(&self) -> Option<u16> {
        (self.to_port > 0 && self.to_starboard > 0)
            .then(|| u16::from(self.to_port) + u16::from(self.to_starboard))
    }
}

/// Estimated time of arrival (UTC, no year); each part `None` when not available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Eta {
    /// Month 1–12.
    pub month: Option<u8>,
    /// Day 1–31.
    pub day: Option<u8>,
    /// Hour 0–23.
    pub hour: Option<u8>,
    /// Minute 0–59.
    pub minute: Option<u8>,
}

/// Types 1, 2, 3: class A position report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionReport {
    /// 1, 2 or 3.
    pub msg_type: u8,
    /// Repeat indicator.
    pub repeat: u8,
    /// Maritime Mobile Service Identity.
    pub mmsi: u32,
    /// Navigational status 0–15 (15 = not defined).
    pub nav_status: u8,
    /// Rate of turn, raw ROT_AIS (−128 = not available, ±127 = turning fast without TI).
    pub rot_raw: i8,
    /// Speed over ground, knots.
    pub sog: Option<f64>,
    /// Position accuracy flag: true = high (≤ 10 m).
    pub accuracy: bool,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Course over ground, degrees.
    pub cog: Option<f64>,
    /// True heading, degrees.
    pub heading: Option<u16>,
    /// UTC second of the report (60–63: not available / manual / DR / inoperative).
    pub second: u8,
    /// Special manoeuvre indicator.
    pub maneuver: u8,
    /// RAIM in use.
    pub raim: bool,
    /// Radio status.
    pub radio: u32,
}

impl PositionReport {
    /// Rate of turn in degrees per minute, when the sensor value is available
    /// (`(ROT_AIS / 4.733)²`, signed).
    pub fn rot_deg_per_min(&self) -> Option<f64> {
        match self.rot_raw {
            -128 | -127 | 127 => None,
            r => {
                let v = (f64::from(r) / 4.733).powi(2);
                Some(if r < 0 { -v } else { v })
            }
        }
    }
}

/// Type 4: base station report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BaseStationReport {
    /// Repeat indicator.
    pub repeat: u8,
    /// MMSI of the base station.
    pub mmsi: u32,
    /// UTC year (0 = not available).
    pub year: u16,
    /// UTC month (0 = not available).
    pub month: u8,
    /// UTC day (0 = not available).
    pub day: u8,
    /// UTC hour (24 = not available).
    pub hour: u8,
    /// UTC minute (60 = not available).
    pub minute: u8,
    /// UTC second (60 = not available).
    pub second: u8,
    /// Position accuracy flag.
    pub accuracy: bool,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Type of position fixing device.
    pub epfd: u8,
    /// RAIM in use.
    pub raim: bool,
    /// Radio status.
    pub radio: u32,
}

/// Type 5: static and voyage related data.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticVoyageData {
    /// Repeat indicator.
    pub repeat: u8,
    /// MMSI.
    pub mmsi: u32,
    /// AIS version indicator.
    pub ais_version: u8,
    /// IMO number.
    pub imo: Option<u32>,
    /// Radio call sign.
    pub callsign: Text,
    /// Vessel name.
    pub name: Text,
    /// Ship and cargo type (0 = not available).
    pub ship_type: u8,
    /// Hull dimensions.
    pub dimensions: Dimensions,
    /// Type of position fixing device.
    pub epfd: u8,
    /// Estimated time of arrival.
    pub eta: Eta,
    /// Maximum present static draught, metres.
    pub draught: Option<f64>,
    /// Destination.
    pub destination: Text,
    /// Data terminal equipment not ready.
    pub dte: bool,
}

/// Type 18: standard class B position report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassBPosition {
    /// Repeat indicator.
    pub repeat: u8,
    /// MMSI.
    pub mmsi: u32,
    /// Speed over ground, knots.
    pub sog: Option<f64>,
    /// Position accuracy flag.
    pub accuracy: bool,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Course over ground, degrees.
    pub cog: Option<f64>,
    /// True heading, degrees.
    pub heading: Option<u16>,
    /// UTC second.
    pub second: u8,
    /// Carrier-sense (CS) unit.
    pub cs_unit: bool,
    /// Has a display.
    pub display: bool,
    /// Has DSC.
    pub dsc: bool,
    /// Can use the whole marine band.
    pub band: bool,
    /// Accepts message 22.
    pub msg22: bool,
    /// Assigned mode.
    pub assigned: bool,
    /// RAIM in use.
    pub raim: bool,
    /// Radio status.
    pub radio: u32,
}

/// Type 19: extended class B position report.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtendedClassB {
    /// Repeat indicator.
    pub repeat: u8,
    /// MMSI.
    pub mmsi: u32,
    /// Speed over ground, knots.
    pub sog: Option<f64>,
    /// Position accuracy flag.
    pub accuracy: bool,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Course over ground, degrees.
    pub cog: Option<f64>,
    /// True heading, degrees.
    pub heading: Option<u16>,
    /// UTC second.
    pub second: u8,
    /// Vessel name.
    pub name: Text,
    /// Ship and cargo type.
    pub ship_type: u8,
    /// Hull dimensions.
    pub dimensions: Dimensions,
    /// Type of position fixing device.
    pub epfd: u8,
    /// RAIM in use.
    pub raim: bool,
    /// Data terminal equipment not ready.
    pub dte: bool,
    /// Assigned mode.
    pub assigned: bool,
}

/// Type 21: aid-to-navigation report.
#[derive(Clone, Debug, PartialEq)]
pub struct AidToNavigation {
    /// Repeat indicator.
    pub repeat: u8,
    /// MMSI.
    pub mmsi: u32,
    /// Aid type 0–31 (e.g. 1 reference point, 5–19 fixed, 20–31 floating).
    pub aid_type: u8,
    /// Name, including the name extension.
    pub name: Text,
    /// Position accuracy flag.
    pub accuracy: bool,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Dimensions.
    pub dimensions: Dimensions,
    /// Type of position fixing device.
    pub epfd: u8,
    /// UTC second.
    pub second: u8,
    /// Off its charted position (floating aids).
    pub off_position: bool,
    /// RAIM in use.
    pub raim: bool,
    /// Virtual aid (no physical structure).
    pub virtual_aid: bool,
    /// Assigned mode.
    pub assigned: bool,
}

/// Type 24: static data report (class B), part A or B.
#[derive(Clone, Debug, PartialEq)]
pub enum StaticDataReport {
    /// Part A: the name.
    PartA {
        /// Repeat indicator.
        repeat: u8,
        /// MMSI.
        mmsi: u32,
        /// Vessel name.
        name: Text,
    },
    /// Part B: type, vendor, call sign, dimensions.
    PartB {
        /// Repeat indicator.
        repeat: u8,
        /// MMSI.
        mmsi: u32,
        /// Ship and cargo type.
        ship_type: u8,
        /// Vendor id (3 characters).
        vendor_id: Text,
        /// Unit model code.
        model: u8,
        /// Serial number.
        serial: u32,
        /// Radio call sign.
        callsign: Text,
        /// Hull dimensions (zero for auxiliary craft, which carry a mothership MMSI instead).
        dimensions: Dimensions,
        /// Mothership MMSI, for auxiliary craft (MMSI 98MIDxxxx).
        mothership_mmsi: Option<u32>,
    },
}

/// Type 27: long-range position report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongRangePosition {
    /// Repeat indicator.
    pub repeat: u8,
    /// MMSI.
    pub mmsi: u32,
    /// Position accuracy flag.
    pub accuracy: bool,
    /// RAIM in use.
    pub raim: bool,
    /// Navigational status.
    pub nav_status: u8,
    /// Longitude, degrees (1/10 minute resolution).
    pub lon: Option<f64>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Speed over ground, whole knots.
    pub sog: Option<u8>,
    /// Course over ground, whole degrees.
    pub cog: Option<u16>,
    /// Position latency: false = less than 5 s.
    pub gnss_latency: bool,
}

/// Any supported AIS message.
#[derive(Clone, Debug, PartialEq)]
pub enum AisMessage {
    /// Types 1, 2, 3.
    Position(PositionReport),
    /// Type 4.
    BaseStation(BaseStationReport),
    /// Type 5.
    StaticVoyage(StaticVoyageData),
    /// Type 18.
    ClassB(ClassBPosition),
    /// Type 19.
    ExtendedClassB(ExtendedClassB),
    /// Type 21.
    AidToNavigation(AidToNavigation),
    /// Type 24.
    StaticData(StaticDataReport),
    /// Type 27.
    LongRange(LongRangePosition),
}

impl AisMessage {
    /// The message type number.
    pub fn msg_type(&self) -> u8 {
        match self {
            AisMessage::Position(p) => p.msg_type,
            AisMessage::BaseStation(_) => 4,
            AisMessage::StaticVoyage(_) => 5,
            AisMessage::ClassB(_) => 18,
            AisMessage::ExtendedClassB(_) => 19,
            AisMessage::AidToNavigation(_) => 21,
            AisMessage::StaticData(_) => 24,
            AisMessage::LongRange(_) => 27,
        }
    }

    /// The sender's MMSI.
    pub fn mmsi(&self) -> u32 {
        match self {
            AisMessage::Position(m) => m.mmsi,
            AisMessage::BaseStation(m) => m.mmsi,
            AisMessage::StaticVoyage(m) => m.mmsi,
            AisMessage::ClassB(m) => m.mmsi,
            AisMessage::ExtendedClassB(m) => m.mmsi,
            AisMessage::AidToNavigation(m) => m.mmsi,
            AisMessage::StaticData(StaticDataReport::PartA { mmsi, .. })
            | AisMessage::StaticData(StaticDataReport::PartB { mmsi, .. }) => *mmsi,
            AisMessage::LongRange(m) => m.mmsi,
        }
    }
}

fn impossible(field: &'static str, value: String) -> AisError {
    AisError::Impossible { field, value }
}

fn need(p: &Payload, msg_type: u8, bits: usize) -> Result<(), AisError> {
    if p.len_bits() < bits {
        return Err(AisError::Truncated {
            msg_type,
            bits: p.len_bits(),
            need: bits,
        });
    }
    Ok(())
}

fn mmsi(p: &Payload) -> Result<u32, AisError> {
    let m = p.u(8, 30) as u32;
    if m == 0 || m > 999_999_999 {
        return Err(impossible("MMSI", format!("{m} is not a valid MMSI")));
    }
    Ok(m)
}

/// Longitude and latitude at `at`, `lon_bits`+`lat_bits` wide, `per_deg` raw units per degree.
fn position(
    p: &Payload,
    at: usize,
    lon_bits: usize,
    lat_bits: usize,
    per_deg: f64,
) -> Result<(Option<f64>, Option<f64>), AisError> {
    let lon_raw = p.i(at, lon_bits);
    let lat_raw = p.i(at + lon_bits, lat_bits);
    let max_lon = (180.0 * per_deg) as i64;
    let max_lat = (90.0 * per_deg) as i64;
    let lon = if lon_raw == (181.0 * per_deg) as i64 {
        None
    } else if lon_raw.abs() > max_lon {
        return Err(impossible(
            "longitude",
            format!("{}° is outside -180..180", lon_raw as f64 / per_deg),
        ));
    } else {
        Some(lon_raw as f64 / per_deg)
    };
    let lat = if lat_raw == (91.0 * per_deg) as i64 {
        None
    } else if lat_raw.abs() > max_lat {
        return Err(impossible(
            "latitude",
            format!("{}° is outside -90..90", lat_raw as f64 / per_deg),
        ));
    } else {
        Some(lat_raw as f64 / per_deg)
    };
    Ok((lon, lat))
}

const PER_DEG: f64 = 600_000.0;

fn sog(p: &Payload, at: usize) -> Option<f64> {
    match p.u(at, 10) {
        1023 => None,
        v => Some(v as f64 / 10.0),
    }
}

fn cog(p: &Payload, at: usize) -> Result<Option<f64>, AisError> {
    match p.u(at, 12) {
        3600 => Ok(None),
        v if v > 3600 => Err(impossible(
            "course",
            format!("{}° is above 360", v as f64 / 10.0),
        )),
        v => Ok(Some(v as f64 / 10.0)),
    }
}

fn heading(p: &Payload, at: usize) -> Result<Option<u16>, AisError> {
    match p.u(at, 9) {
        511 => Ok(None),
        v if v >= 360 => Err(impossible("heading", format!("{v}° is not 0..359 or 511"))),
        v => Ok(Some(v as u16)),
    }
}

fn dimensions(p: &Payload, at: usize) -> Dimensions {
    Dimensions {
        to_bow: p.u(at, 9) as u16,
        to_stern: p.u(at + 9, 9) as u16,
        to_port: p.u(at + 18, 6) as u8,
        to_starboard: p.u(at + 24, 6) as u8,
    }
}

fn opt_u8(v: u64, na: u64) -> Option<u8> {
    (v != na).then_some(v as u8)
}

/// Decodes a complete payload into a typed message.
pub fn decode_message(p: &Payload) -> Result<AisMessage, AisError> {
    need(p, 0, 38)?;
    let msg_type = p.u(0, 6) as u8;
    let repeat = p.u(6, 2) as u8;
    Ok(match msg_type {
        1..=3 => {
            need(p, msg_type, 168)?;
            let (lon, lat) = position(p, 61, 28, 27, PER_DEG)?;
            AisMessage::Position(PositionReport {
                msg_type,
                repeat,
                mmsi: mmsi(p)?,
                nav_status: p.u(38, 4) as u8,
                rot_raw: p.i(42, 8) as i8,
                sog: sog(p, 50),
                accuracy: p.flag(60),
                lon,
                lat,
                cog: cog(p, 116)?,
                heading: heading(p, 128)?,
                second: p.u(137, 6) as u8,
                maneuver: p.u(143, 2) as u8,
                raim: p.flag(148),
                radio: p.u(149, 19) as u32,
            })
        }
        4 => {
            need(p, 4, 168)?;
            let (lon, lat) = position(p, 79, 28, 27, PER_DEG)?;
            AisMessage::BaseStation(BaseStationReport {
                repeat,
                mmsi: mmsi(p)?,
                year: p.u(38, 14) as u16,
                month: p.u(52, 4) as u8,
                day: p.u(56, 5) as u8,
                hour: p.u(61, 5) as u8,
                minute: p.u(66, 6) as u8,
                second: p.u(72, 6) as u8,
                accuracy: p.flag(78),
                lon,
                lat,
                epfd: p.u(134, 4) as u8,
                raim: p.flag(148),
                radio: p.u(149, 19) as u32,
            })
        }
        5 => {
            // 424 bits by the standard; many transponders send 420 (no spare, dte read as 0).
            need(p, 5, 420)?;
            let draught = p.u(294, 8);
            let imo = p.u(40, 30) as u32;
            AisMessage::StaticVoyage(StaticVoyageData {
                repeat,
                mmsi: mmsi(p)?,
                ais_version: p.u(38, 2) as u8,
                imo: (imo != 0).then_some(imo),
                callsign: p.text(70, 7),
                name: p.text(112, 20),
                ship_type: p.u(232, 8) as u8,
                dimensions: dimensions(p, 240),
                epfd: p.u(270, 4) as u8,
                eta: Eta {
                    month: opt_u8(p.u(274, 4), 0),
                    day: opt_u8(p.u(278, 5), 0),
                    hour: opt_u8(p.u(283, 5), 24),
                    minute: opt_u8(p.u(288, 6), 60),
                },
                draught: (draught != 0).then_some(draught as f64 / 10.0),
                destination: p.text(302, 20),
                dte: p.flag(422),
            })
        }
        18 => {
            need(p, 18, 168)?;
            let (lon, lat) = position(p, 57, 28, 27, PER_DEG)?;
            AisMessage::ClassB(ClassBPosition {
                repeat,
                mmsi: mmsi(p)?,
                sog: sog(p, 46),
                accuracy: p.flag(56),
                lon,
                lat,
                cog: cog(p, 112)?,
                heading: heading(p, 124)?,
                second: p.u(133, 6) as u8,
                cs_unit: p.flag(141),
                display: p.flag(142),
                dsc: p.flag(143),
                band: p.flag(144),
                msg22: p.flag(145),
                assigned: p.flag(146),
                raim: p.flag(147),
                radio: p.u(148, 20) as u32,
            })
        }
        19 => {
            need(p, 19, 312)?;
            let (lon, lat) = position(p, 57, 28, 27, PER_DEG)?;
            AisMessage::ExtendedClassB(ExtendedClassB {
                repeat,
                mmsi: mmsi(p)?,
                sog: sog(p, 46),
                accuracy: p.flag(56),
                lon,
                lat,
                cog: cog(p, 112)?,
                heading: heading(p, 124)?,
                second: p.u(133, 6) as u8,
                name: p.text(143, 20),
                ship_type: p.u(263, 8) as u8,
                dimensions: dimensions(p, 271),
                epfd: p.u(301, 4) as u8,
                raim: p.flag(305),
                dte: p.flag(306),
                assigned: p.flag(307),
            })
        }
        21 => {
            need(p, 21, 272)?;
            let (lon, lat) = position(p, 164, 28, 27, PER_DEG)?;
            let mut name = p.text(43, 20);
            // The extension continues the name only when the 20 characters were all used.
            let ext_chars = (p.len_bits().saturating_sub(272) / 6).min(14);
            if ext_chars > 0 {
                let ext = p.text(272, ext_chars);
                name.push_str(&ext);
            }
            AisMessage::AidToNavigation(AidToNavigation {
                repeat,
                mmsi: mmsi(p)?,
                aid_type: p.u(38, 5) as u8,
                name,
                accuracy: p.flag(163),
                lon,
                lat,
                dimensions: dimensions(p, 219),
                epfd: p.u(249, 4) as u8,
                second: p.u(253, 6) as u8,
                off_position: p.flag(259),
                raim: p.flag(268),
                virtual_aid: p.flag(269),
                assigned: p.flag(270),
            })
        }
        24 => {
            need(p, 24, 40)?;
            let mmsi = mmsi(p)?;
            match p.u(38, 2) {
                0 => {
                    need(p, 24, 160)?;
                    AisMessage::StaticData(StaticDataReport::PartA {
                        repeat,
                        mmsi,
                        name: p.text(40, 20),
                    })
                }
                1 => {
                    need(p, 24, 162)?;
                    let auxiliary = mmsi / 10_000_000 == 98;
                    AisMessage::StaticData(StaticDataReport::PartB {
                        repeat,
                        mmsi,
                        ship_type: p.u(40, 8) as u8,
                        vendor_id: p.text(48, 3),
                        model: p.u(66, 4) as u8,
                        serial: p.u(70, 20) as u32,
                        callsign: p.text(90, 7),
                        dimensions: if auxiliary {
                            Dimensions::default()
                        } else {
                            dimensions(p, 132)
                        },
                        mothership_mmsi: auxiliary.then(|| p.u(132, 30) as u32),
                    })
                }
                part => {
                    return Err(AisError::Impossible {
                        field: "type 24 part number",
                        value: format!("{part} is not 0 (A) or 1 (B)"),
                    });
                }
            }
        }
        27 => {
            need(p, 27, 96)?;
            let (lon, lat) = position(p, 44, 18, 17, 600.0)?;
            let cog = match p.u(85, 9) {
                511 => None,
                v if v >= 360 => {
                    return Err(impossible("course", format!("{v}° is not 0..359 or 511")));
                }
                v => Some(v as u16),
            };
            AisMessage::LongRange(LongRangePosition {
                repeat,
                mmsi: mmsi(p)?,
                accuracy: p.flag(38),
                raim: p.flag(39),
                nav_status: p.u(40, 4) as u8,
                lon,
                lat,
                sog: opt_u8(p.u(79, 6), 63),
                cog,
                gnss_latency: p.flag(94),
            })
        }
        other => return Err(AisError::UnsupportedMessage(other)),
    })
}
