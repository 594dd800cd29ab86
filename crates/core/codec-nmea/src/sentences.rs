//! Typed NMEA sentences (GGA, RMC, VTG, GLL, GSA, GSV, ZDA) and their decoders.
//!
//! Fields are read from a fixed-size array of borrowed slices, so decoding a sentence never
//! allocates unless it fails (the error copies the offending field). Empty fields are `None`;
//! a field that is present but malformed or out of its range is an error naming the sentence,
//! the 1-based field number, its meaning and the received text.

use crate::NmeaError;
use crate::frame::{Frame, FrameOptions, Talker, parse_frame, static_kind};
use crate::num::{
    Date, TimeOfDay, parse_coord, parse_ddmmyy, parse_decimal, parse_time, parse_u32,
};

/// Most fields any supported sentence carries (GSV: 3 + 4×4 + signal id = 20).
const MAX_FIELDS: usize = 24;

/// A position in signed decimal degrees (north and east positive).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatLon {
    /// Latitude, −90..90.
    pub lat: f64,
    /// Longitude, −180..180.
    pub lon: f64,
}

/// GGA: fix data (time of day, position, quality, satellites, HDOP, altitude).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gga {
    /// Talker id.
    pub talker: Talker,
    /// UTC time of day of the fix (no date: GGA carries none).
    pub time: Option<TimeOfDay>,
    /// Position, if the receiver gave one.
    pub position: Option<LatLon>,
    /// Fix quality: 0 invalid, 1 GPS, 2 DGPS/SBAS, 3 PPS, 4 RTK fixed, 5 RTK float,
    /// 6 estimated (dead reckoning), 7 manual, 8 simulation.
    pub fix_quality: Option<u8>,
    /// Satellites used.
    pub satellites: Option<u8>,
    /// Horizontal dilution of precision.
    pub hdop: Option<f64>,
    /// Antenna altitude above mean sea level (geoid), metres.
    pub altitude_msl: Option<f64>,
    /// Geoid separation: height of the geoid above the WGS-84 ellipsoid, metres.
    pub geoid_separation: Option<f64>,
    /// Age of differential corrections, seconds.
    pub dgps_age: Option<f64>,
    /// Differential reference station id.
    pub dgps_station: Option<u16>,
}

/// RMC: recommended minimum (time, date, validity, position, speed, course).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rmc {
    /// Talker id.
    pub talker: Talker,
    /// UTC time of day.
    pub time: Option<TimeOfDay>,
    /// Status: true for `A` (valid), false for `V` (warning, no fix).
    pub valid: bool,
    /// Position.
    pub position: Option<LatLon>,
    /// Speed over ground, knots.
    pub speed_knots: Option<f64>,
    /// Course over ground, degrees true.
    pub course_true: Option<f64>,
    /// UTC date.
    pub date: Option<Date>,
    /// Magnetic variation, degrees, east positive.
    pub magnetic_variation: Option<f64>,
    /// FAA mode indicator (NMEA 2.3+): A autonomous, D differential, E estimated, F float RTK,
    /// M manual, N not valid, P precise, R RTK fixed, S simulator.
    pub mode: Option<char>,
}

/// VTG: course and speed over ground.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vtg {
    /// Talker id.
    pub talker: Talker,
    /// Course, degrees true.
    pub course_true: Option<f64>,
    /// Course, degrees magnetic.
    pub course_magnetic: Option<f64>,
    /// Speed, knots.
    pub speed_knots: Option<f64>,
    /// Speed, km/h.
    pub speed_kmh: Option<f64>,
    /// FAA mode indicator (NMEA 2.3+).
    pub mode: Option<char>,
}

/// GLL: geographic position with time and status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gll {
    /// Talker id.
    pub talker: Talker,
    /// Position.
    pub position: Option<LatLon>,
    /// UTC time of day.
    pub time: Option<TimeOfDay>,
    /// Status: true for `A` (valid).
    pub valid: bool,
    /// FAA mode indicator (NMEA 2.3+).
    pub mode: Option<char>,
}

/// GSA: DOP and active satellites.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gsa {
    /// Talker id.
    pub talker: Talker,
    /// Selection mode: `A` automatic, `M` manual.
    pub selection_mode: Option<char>,
    /// Fix type: 1 no fix, 2 2D, 3 3D.
    pub fix_type: Option<u8>,
    /// PRNs of the satellites used, in field order; empty slots are `None`.
    pub satellites: [Option<u16>; 12],
    /// Position DOP.
    pub pdop: Option<f64>,
    /// Horizontal DOP.
    pub hdop: Option<f64>,
    /// Vertical DOP.
    pub vdop: Option<f64>,
    /// GNSS system id (NMEA 4.1+).
    pub system_id: Option<u8>,
}

/// One satellite in view (GSV).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SatelliteInView {
    /// PRN / satellite id.
    pub prn: u16,
    /// Elevation, degrees.
    pub elevation: Option<u8>,
    /// Azimuth, degrees true.
    pub azimuth: Option<u16>,
    /// Signal-to-noise ratio, dB-Hz (`None` when not tracking).
    pub snr: Option<u8>,
}

/// GSV: satellites in view (one part of a multi-sentence group).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gsv {
    /// Talker id.
    pub talker: Talker,
    /// Sentences in this group.
    pub total_messages: u8,
    /// This sentence's number, 1-based.
    pub message_number: u8,
    /// Satellites in view.
    pub satellites_in_view: Option<u16>,
    /// Up to four satellites in this sentence.
    pub satellites: [Option<SatelliteInView>; 4],
    /// Signal id (NMEA 4.1+).
    pub signal_id: Option<u8>,
}

/// ZDA: UTC date and time with local zone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Zda {
    /// Talker id.
    pub talker: Talker,
    /// UTC time of day.
    pub time: Option<TimeOfDay>,
    /// UTC date (all three fields present and valid).
    pub date: Option<Date>,
    /// Local zone hours (−13..13).
    pub local_zone_hours: Option<i8>,
    /// Local zone minutes.
    pub local_zone_minutes: Option<u8>,
}

/// Any supported sentence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sentence {
    /// GGA.
    Gga(Gga),
    /// RMC.
    Rmc(Rmc),
    /// VTG.
    Vtg(Vtg),
    /// GLL.
    Gll(Gll),
    /// GSA.
    Gsa(Gsa),
    /// GSV.
    Gsv(Gsv),
    /// ZDA.
    Zda(Zda),
}

impl Sentence {
    /// The sentence type, e.g. `GGA`.
    pub fn kind(&self) -> &'static str {
        match self {
            Sentence::Gga(_) => "GGA",
            Sentence::Rmc(_) => "RMC",
            Sentence::Vtg(_) => "VTG",
            Sentence::Gll(_) => "GLL",
            Sentence::Gsa(_) => "GSA",
            Sentence::Gsv(_) => "GSV",
            Sentence::Zda(_) => "ZDA",
        }
    }

    /// The talker id.
    pub fn talker(&self) -> Talker {
        match self {
            Sentence::Gga(s) => s.talker,
            Sentence::Rmc(s) => s.talker,
            Sentence::Vtg(s) => s.talker,
            Sentence::Gll(s) => s.talker,
            Sentence::Gsa(s) => s.talker,
            Sentence::Gsv(s) => s.talker,
            Sentence::Zda(s) => s.talker,
        }
    }
}

/// The fields of one sentence, borrowed, with error helpers that name the field.
struct Fields<'a> {
    sentence: &'static str,
    f: [&'a str; MAX_FIELDS],
    n: usize,
}

impl<'a> Fields<'a> {
    fn split(sentence: &'static str, text: &'a str, need: usize) -> Result<Self, NmeaError> {
        let mut f = [""; MAX_FIELDS];
        let mut n = 0;
        for part in text.split(',') {
            let Some(slot) = f.get_mut(n) else {
                return Err(NmeaError::TooManyFields {
                    sentence,
                    max: MAX_FIELDS,
                });
            };
            *slot = part;
            n += 1;
        }
        if n < need {
            return Err(NmeaError::Truncated {
                sentence,
                got: n,
                need,
            });
        }
        Ok(Fields { sentence, f, n })
    }

    /// Field `i` (1-based); absent fields read as empty.
    fn get(&self, i: usize) -> &'a str {
        self.f.get(i.wrapping_sub(1)).copied().unwrap_or("")
    }

    fn bad(&self, i: usize, name: &'static str, problem: &'static str) -> NmeaError {
        NmeaError::BadField {
            sentence: self.sentence,
            index: i,
            name,
            value: self.get(i).to_owned(),
            problem,
        }
    }

    fn f64(&self, i: usize, name: &'static str) -> Result<Option<f64>, NmeaError> {
        let s = self.get(i);
        if s.is_empty() {
            return Ok(None);
        }
        parse_decimal(s)
            .map(Some)
            .ok_or_else(|| self.bad(i, name, "is not a number"))
    }

    /// A non-negative number no larger than `max`.
    fn f64_range(&self, i: usize, name: &'static str, max: f64) -> Result<Option<f64>, NmeaError> {
        match self.f64(i, name)? {
            Some(v) if !(0.0..=max).contains(&v) => Err(self.bad(i, name, "is out of range")),
            v => Ok(v),
        }
    }

    fn uint(&self, i: usize, name: &'static str, max: u32) -> Result<Option<u32>, NmeaError> {
        let s = self.get(i);
        if s.is_empty() {
            return Ok(None);
        }
        match parse_u32(s) {
            Some(v) if v <= max => Ok(Some(v)),
            Some(_) => Err(self.bad(i, name, "is out of range")),
            None => Err(self.bad(i, name, "is not a number")),
        }
    }

    fn time(&self, i: usize) -> Result<Option<TimeOfDay>, NmeaError> {
        let s = self.get(i);
        if s.is_empty() {
            return Ok(None);
        }
        parse_time(s)
            .map(Some)
            .map_err(|p| self.bad(i, "UTC time", p))
    }

    /// A single-letter field; `allowed` lists the accepted letters.
    fn letter(
        &self,
        i: usize,
        name: &'static str,
        allowed: &str,
    ) -> Result<Option<char>, NmeaError> {
        let s = self.get(i);
        match s.as_bytes() {
            [] => Ok(None),
            [c] if allowed.as_bytes().contains(c) => Ok(Some(char::from(*c))),
            _ => Err(self.bad(i, name, "is not one of the allowed letters")),
        }
    }

    /// A unit letter that must be `unit` when present.
    fn unit(&self, i: usize, name: &'static str, unit: &str) -> Result<(), NmeaError> {
        let s = self.get(i);
        if s.is_empty() || s == unit {
            Ok(())
        } else {
            Err(self.bad(i, name, "is not the expected unit letter"))
        }
    }

    /// Latitude at `i`, N/S at `i+1`, longitude at `i+2`, E/W at `i+3`.
    fn position(&self, i: usize) -> Result<Option<LatLon>, NmeaError> {
        let (lat, ns, lon, ew) = (
            self.get(i),
            self.get(i + 1),
            self.get(i + 2),
            self.get(i + 3),
        );
        if lat.is_empty() && ns.is_empty() && lon.is_empty() && ew.is_empty() {
            return Ok(None);
        }
        let lat = parse_coord(lat, ns, 90.0, "N", "S").map_err(|(hemi, p)| {
            if hemi {
                self.bad(i + 1, "latitude hemisphere", p)
            } else {
                self.bad(i, "latitude", p)
            }
        })?;
        let lon = parse_coord(lon, ew, 180.0, "E", "W").map_err(|(hemi, p)| {
            if hemi {
                self.bad(i + 3, "longitude hemisphere", p)
            } else {
                self.bad(i + 2, "longitude", p)
            }
        })?;
        Ok(Some(LatLon { lat, lon }))
    }

    fn status(&self, i: usize) -> Result<bool, NmeaError> {
        match self.get(i) {
            "A" => Ok(true),
            "V" => Ok(false),
            _ => Err(self.bad(i, "status", "is not A (valid) or V (invalid)")),
        }
    }
}

const MODES: &str = "ADEFMNPRS";

fn gga(t: Talker, f: &Fields<'_>) -> Result<Gga, NmeaError> {
    f.unit(10, "altitude unit", "M")?;
    f.unit(12, "geoid separation unit", "M")?;
    Ok(Gga {
        talker: t,
        time: f.time(1)?,
        position: f.position(2)?,
        fix_quality: f.uint(6, "fix quality", 9)?.map(|v| v as u8),
        satellites: f.uint(7, "satellites", 99)?.map(|v| v as u8),
        hdop: f.f64_range(8, "HDOP", 1000.0)?,
        altitude_msl: f.f64(9, "altitude")?,
        geoid_separation: f.f64(11, "geoid separation")?,
        dgps_age: f.f64(13, "DGPS age")?,
        dgps_station: f.uint(14, "DGPS station", 9999)?.map(|v| v as u16),
    })
}

fn magnetic_variation(f: &Fields<'_>, i: usize) -> Result<Option<f64>, NmeaError> {
    let Some(v) = f.f64_range(i, "magnetic variation", 180.0)? else {
        return Ok(None);
    };
    match f.get(i + 1) {
        "E" => Ok(Some(v)),
        "W" => Ok(Some(-v)),
        _ => Err(f.bad(i + 1, "magnetic variation direction", "is not E or W")),
    }
}

fn rmc(t: Talker, f: &Fields<'_>) -> Result<Rmc, NmeaError> {
    let date = match f.get(9) {
        "" => None,
        s => Some(parse_ddmmyy(s).map_err(|p| f.bad(9, "date", p))?),
    };
    Ok(Rmc {
        talker: t,
        time: f.time(1)?,
        valid: f.status(2)?,
        position: f.position(3)?,
        speed_knots: f.f64_range(7, "speed", 100_000.0)?,
        course_true: f.f64_range(8, "course", 360.0)?,
        date,
        magnetic_variation: magnetic_variation(f, 10)?,
        mode: f.letter(12, "mode", MODES)?,
    })
}

fn vtg(t: Talker, f: &Fields<'_>) -> Result<Vtg, NmeaError> {
    f.unit(2, "course reference", "T")?;
    f.unit(4, "course reference", "M")?;
    f.unit(6, "speed unit", "N")?;
    f.unit(8, "speed unit", "K")?;
    Ok(Vtg {
        talker: t,
        course_true: f.f64_range(1, "course true", 360.0)?,
        course_magnetic: f.f64_range(3, "course magnetic", 360.0)?,
        speed_knots: f.f64_range(5, "speed knots", 100_000.0)?,
        speed_kmh: f.f64_range(7, "speed km/h", 200_000.0)?,
        mode: f.letter(9, "mode", MODES)?,
    })
}

fn gll(t: Talker, f: &Fields<'_>) -> Result<Gll, NmeaError> {
    Ok(Gll {
        talker: t,
        position: f.position(1)?,
        time: f.time(5)?,
        valid: f.status(6)?,
        mode: f.letter(7, "mode", MODES)?,
    })
}

fn gsa(t: Talker, f: &Fields<'_>) -> Result<Gsa, NmeaError> {
    let mut satellites = [None; 12];
    for (k, slot) in satellites.iter_mut().enumerate() {
        *slot = f.uint(3 + k, "satellite PRN", 999)?.map(|v| v as u16);
    }
    Ok(Gsa {
        talker: t,
        selection_mode: f.letter(1, "selection mode", "AM")?,
        fix_type: f.uint(2, "fix type", 3)?.map(|v| v as u8),
        satellites,
        pdop: f.f64_range(15, "PDOP", 1000.0)?,
        hdop: f.f64_range(16, "HDOP", 1000.0)?,
        vdop: f.f64_range(17, "VDOP", 1000.0)?,
        system_id: f.uint(18, "system id", 15)?.map(|v| v as u8),
    })
}

fn gsv(t: Talker, f: &Fields<'_>) -> Result<Gsv, NmeaError> {
    let total = f
        .uint(1, "number of messages", 99)?
        .ok_or_else(|| f.bad(1, "number of messages", "is missing"))?;
    let number = f
        .uint(2, "message number", 99)?
        .ok_or_else(|| f.bad(2, "message number", "is missing"))?;
    if number == 0 || number > total {
        return Err(f.bad(2, "message number", "is not within the number of messages"));
    }
    let mut satellites = [None; 4];
    let blocks = f.n.saturating_sub(3) / 4;
    for (k, slot) in satellites.iter_mut().enumerate().take(blocks) {
        let i = 4 + 4 * k;
        let Some(prn) = f.uint(i, "satellite PRN", 999)? else {
            continue;
        };
        *slot = Some(SatelliteInView {
            prn: prn as u16,
            elevation: f.uint(i + 1, "elevation", 90)?.map(|v| v as u8),
            azimuth: f.uint(i + 2, "azimuth", 359)?.map(|v| v as u16),
            snr: f.uint(i + 3, "SNR", 99)?.map(|v| v as u8),
        });
    }
    let signal_id = if f.n.saturating_sub(3) % 4 == 1 {
        f.uint(f.n, "signal id", 15)?.map(|v| v as u8)
    } else {
        None
    };
    Ok(Gsv {
        talker: t,
        total_messages: total as u8,
        message_number: number as u8,
        satellites_in_view: f.uint(3, "satellites in view", 999)?.map(|v| v as u16),
        satellites,
        signal_id,
    })
}

fn zda(t: Talker, f: &Fields<'_>) -> Result<Zda, NmeaError> {
    let day = f.uint(2, "day", 31)?;
    let month = f.uint(3, "month", 12)?;
    let year = f.uint(4, "year", 9999)?;
    let date = match (day, month, year) {
        (Some(d), Some(m), Some(y)) => Some(
            Date::new(y as u16, m as u8, d as u8)
                .ok_or_else(|| f.bad(2, "day", "is not a valid calendar date"))?,
        ),
        _ => None,
    };
    let zone_h = match f.get(5) {
        "" => None,
        s => {
            let v = parse_decimal(s)
                .filter(|v| v.fract() == 0.0 && v.abs() <= 13.0)
                .ok_or_else(|| f.bad(5, "local zone hours", "is not a whole number in -13..13"))?;
            Some(v as i8)
        }
    };
    Ok(Zda {
        talker: t,
        time: f.time(1)?,
        date,
        local_zone_hours: zone_h,
        local_zone_minutes: f.uint(6, "local zone minutes", 59)?.map(|v| v as u8),
    })
}

/// Decodes a framed sentence into its typed form.
pub fn decode_frame(frame: &Frame<'_>) -> Result<Sentence, NmeaError> {
    let sentence = static_kind(frame.kind);
    let t = frame.talker;
    let need = match frame.kind {
        "GGA" => 14,
        "RMC" => 11,
        "VTG" => 8,
        "GLL" => 6,
        "GSA" => 17,
        "GSV" => 3,
        "ZDA" => 6,
        other => return Err(NmeaError::Unsupported(format!("{}{other}", t.as_str()))),
    };
    let f = Fields::split(sentence, frame.fields, need)?;
    Ok(match frame.kind {
        "GGA" => Sentence::Gga(gga(t, &f)?),
        "RMC" => Sentence::Rmc(rmc(t, &f)?),
        "VTG" => Sentence::Vtg(vtg(t, &f)?),
        "GLL" => Sentence::Gll(gll(t, &f)?),
        "GSA" => Sentence::Gsa(gsa(t, &f)?),
        "GSV" => Sentence::Gsv(gsv(t, &f)?),
        _ => Sentence::Zda(zda(t, &f)?),
    })
}

/// Frames and decodes one line (trailing CR/LF and a tag block allowed).
pub fn decode(line: &[u8], opts: &FrameOptions) -> Result<Sentence, NmeaError> {
    decode_frame(&parse_frame(line, opts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<Sentence, NmeaError> {
        decode(s.as_bytes(), &FrameOptions::default())
    }

    #[test]
    fn decodes_the_classic_gga() {
        let Sentence::Gga(g) =
            d("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47").unwrap()
        else {
            panic!("not GGA")
        };
        assert_eq!(g.time.unwrap().hour(), 12);
        let p = g.position.unwrap();
        assert!((p.lat - (48.0 + 7.038 / 60.0)).abs() < 1e-12);
        assert!((p.lon - (11.0 + 31.0 / 60.0)).abs() < 1e-12);
        assert_eq!(g.fix_quality, Some(1));
        assert_eq!(g.satellites, Some(8));
        assert_eq!(g.hdop, Some(0.9));
        assert_eq!(g.altitude_msl, Some(545.4));
        assert_eq!(g.geoid_separation, Some(46.9));
    }

    #[test]
    fn field_errors_name_the_field() {
        let body = "GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,46.9,M,,";
        let line = format!("${body}*{:02X}", crate::frame::checksum(body.as_bytes()));
        let e = d(&line).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"GGA field 6 (fix quality): "x" is not a number"#
        );
        assert_eq!(e.reason(), "bad_field");
    }
}
