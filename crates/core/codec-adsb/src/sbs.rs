//! SBS-1 BaseStation text lines (dump1090 port 30003) into typed messages.
//!
//! A line is 22 comma-separated fields:
//!
//! ```text
//! MSG,<type 1-8>,session,aircraft,hexident,flight,date gen,time gen,date log,time log,
//!     callsign,altitude,groundspeed,track,lat,lon,vertical rate,squawk,alert,emergency,SPI,onground
//! ```
//!
//! Every `MSG` transmission type 1–8 parses into one [`SbsMessage`] whose data fields are
//! `None` when empty; which fields a type fills is the sender's business, so none is required
//! beyond the address. `SEL`, `ID`, `AIR`, `STA` and `CLK` lines are well-formed but carry no
//! track data and are `unsupported`. Trailing empty fields may be omitted (some relays do):
//! at least the ten header fields must be present.
//!
//! Values are range-checked: a latitude beyond the pole or a ground speed of 5,000 kt is
//! `impossible_value`, not a track point. The date and time fields are parsed but not
//! interpreted as the report time: dump1090 writes the receiver's *local* time without a zone,
//! so the tracker takes the time from its caller instead.

use rampart_model::{Text, Timestamp};

use crate::{AddressKind, AdsbError, Squawk};

/// Longest SBS line accepted, in bytes. Real lines are under 200; the bound keeps a garbage
/// stream from costing more than a fixed amount per line.
pub const MAX_SBS_LINE_BYTES: usize = 512;

/// Fields of a full SBS-1 line.
const FIELDS: usize = 22;
/// Header fields a line must have (through "time message logged").
const MIN_FIELDS: usize = 10;

/// A date and time as written in an SBS line, without a time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SbsDateTime {
    /// Year, e.g. 2026.
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Milliseconds since midnight, 0–86,399,999 (a leap second is folded into :59).
    pub millis_of_day: u32,
}

impl SbsDateTime {
    /// The instant this would be if the sender wrote UTC. dump1090 writes local time, so use
    /// this only for feeds known to be configured for UTC.
    pub fn assuming_utc(self) -> Timestamp {
        // Days from civil (Howard Hinnant's algorithm), valid for every u16 year.
        let (y, m, d) = (
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Timestamp(days * 86_400_000 + i64::from(self.millis_of_day))
    }
}

/// One SBS-1 `MSG` line.
#[derive(Clone, Debug, PartialEq)]
pub struct SbsMessage {
    /// Transmission type 1–8: 1 identification, 2 surface position, 3 airborne position,
    /// 4 airborne velocity, 5 surveillance altitude, 6 surveillance identity, 7 air-to-air,
    /// 8 all-call reply.
    pub transmission: u8,
    /// Session id, if given.
    pub session_id: Option<u32>,
    /// Aircraft id, if given.
    pub aircraft_id: Option<u32>,
    /// Flight id, if given.
    pub flight_id: Option<u32>,
    /// The 24-bit address.
    pub address: u32,
    /// ICAO, or non-ICAO when the hex ident carries dump1090's `~` prefix (TIS-B and others).
    pub address_kind: AddressKind,
    /// When the message was generated.
    pub generated: Option<SbsDateTime>,
    /// When the message was logged.
    pub logged: Option<SbsDateTime>,
    /// Callsign, trimmed.
    pub callsign: Option<Text>,
    /// Barometric altitude in feet.
    pub altitude_ft: Option<i32>,
    /// Ground speed in knots.
    pub ground_speed_kt: Option<f64>,
    /// Track over ground in degrees true.
    pub track_deg: Option<f64>,
    /// Latitude in degrees (present together with [`SbsMessage::lon`] or not at all).
    pub lat: Option<f64>,
    /// Longitude in degrees.
    pub lon: Option<f64>,
    /// Vertical rate in feet per minute, positive up.
    pub vertical_rate_fpm: Option<i32>,
    /// Mode A code.
    pub squawk: Option<Squawk>,
    /// Squawk changed.
    pub alert: Option<bool>,
    /// Emergency declared.
    pub emergency: Option<bool>,
    /// Special position identification ("ident").
    pub spi: Option<bool>,
    /// On the ground.
    pub on_ground: Option<bool>,
}

/// Highest plausible altitude in feet (above any aircraft's ceiling, below Mode C's coded max).
const MAX_ALT_FT: f64 = 130_000.0;
/// Lowest plausible altitude in feet (Mode C's floor is -1,200 ft).
const MIN_ALT_FT: f64 = -2_000.0;
/// Fastest plausible ground speed in knots (ADS-B's supersonic coding tops out at 4,088).
const MAX_SPEED_KT: f64 = 4_100.0;
/// Steepest plausible vertical rate in ft/min (ADS-B codes at most ±32,640).
const MAX_VRATE_FPM: f64 = 40_000.0;
/// Longest callsign: 8 characters in the ICAO alphabet.
const MAX_CALLSIGN: usize = 8;

fn number(field: &'static str, s: &str) -> Result<Option<f64>, AdsbError> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(AdsbError::bad(field, format!("{s:?} is not a number"))),
    }
}

fn ranged(field: &'static str, s: &str, lo: f64, hi: f64) -> Result<Option<f64>, AdsbError> {
    match number(field, s)? {
        Some(v) if !(lo..=hi).contains(&v) => Err(AdsbError::impossible(
            field,
            format!("{v} is outside {lo}..={hi}"),
        )),
        v => Ok(v),
    }
}

fn id(field: &'static str, s: &str) -> Result<Option<u32>, AdsbError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u32>()
        .map(Some)
        .map_err(|_| AdsbError::bad(field, format!("{s:?} is not a whole number")))
}

fn flag(field: &'static str, s: &str) -> Result<Option<bool>, AdsbError> {
    match s {
        "" => Ok(None),
        "0" => Ok(Some(false)),
        // BaseStation writes -1 for true; some relays write 1.
        "-1" | "1" => Ok(Some(true)),
        _ => Err(AdsbError::bad(
            field,
            format!("{s:?} is not a flag (0, -1 or 1)"),
        )),
    }
}

fn digits<const N: usize>(field: &'static str, s: &str) -> Result<[u32; N], AdsbError> {
    let mut out = [0u32; N];
    let bytes = s.as_bytes();
    if bytes.len() != N {
        return Err(AdsbError::bad(field, format!("{s:?} must have {N} digits")));
    }
    for (o, &b) in out.iter_mut().zip(bytes) {
        if !b.is_ascii_digit() {
            return Err(AdsbError::bad(field, format!("{s:?} must be digits")));
        }
        *o = u32::from(b - b'0');
    }
    Ok(out)
}

fn date_time(
    field: &'static str,
    date: &str,
    time: &str,
) -> Result<Option<SbsDateTime>, AdsbError> {
    if date.is_empty() && time.is_empty() {
        return Ok(None);
    }
    let bad = || {
        AdsbError::bad(
            field,
            format!("{date:?} {time:?} is not YYYY/MM/DD HH:MM:SS.sss"),
        )
    };
    let mut d = date.split('/');
    let (Some(y), Some(mo), Some(da), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let [y0, y1, y2, y3] = digits::<4>(field, y)?;
    let [m0, m1] = digits::<2>(field, mo)?;
    let [d0, d1] = digits::<2>(field, da)?;
    let (year, month, day) = (
        y0 * 1000 + y1 * 100 + y2 * 10 + y3,
        m0 * 10 + m1,
        d0 * 10 + d1,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let (Some(h), Some(mi), Some(se), None) = (t.next(), t.next(), t.next(), t.next()) else {
        return Err(bad());
    };
    let [h0, h1] = digits::<2>(field, h)?;
    let [mi0, mi1] = digits::<2>(field, mi)?;
    let [s0, s1] = digits::<2>(field, se)?;
    let (hour, minute, second) = (h0 * 10 + h1, mi0 * 10 + mi1, s0 * 10 + s1);
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Milliseconds from the first three fractional digits, padding short fractions.
    let millis = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(AdsbError::impossible(
            field,
            format!("{date} {time} is not a calendar date and time"),
        ));
    }
    Ok(Some(SbsDateTime {
        // year ≤ 9999 and the others are range-checked above.
        year: year as u16,
        month: month as u8,
        day: day as u8,
        millis_of_day: ((hour * 60 + minute) * 60 + second.min(59)) * 1000 + millis,
    }))
}

fn address(s: &str) -> Result<(u32, AddressKind), AdsbError> {
    let (hex, kind) = match s.strip_prefix('~') {
        Some(rest) => (rest, AddressKind::NonIcao),
        None => (s, AddressKind::Icao),
    };
    if hex.is_empty() {
        return Err(AdsbError::truncated("SBS line", "the hex ident is empty"));
    }
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AdsbError::bad(
            "hexident",
            format!("{s:?} is not a 24-bit address (6 hex digits)"),
        ));
    }
    u32::from_str_radix(hex, 16)
        .map(|a| (a, kind))
        .map_err(|_| AdsbError::bad("hexident", format!("{s:?} is not hex")))
}

fn callsign(s: &str) -> Result<Option<Text>, AdsbError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > MAX_CALLSIGN || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return Err(AdsbError::bad(
            "callsign",
            format!("{s:?} is not up to {MAX_CALLSIGN} letters and digits"),
        ));
    }
    Ok(Some(Text::from(s)))
}

fn squawk(s: &str) -> Result<Option<Squawk>, AdsbError> {
    if s.is_empty() {
        return Ok(None);
    }
    let b = s.as_bytes();
    if b.len() != 4 || !b.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return Err(AdsbError::bad(
            "squawk",
            format!("{s:?} is not four octal digits"),
        ));
    }
    Ok(Some(Squawk(
        b.iter()
            .fold(0u16, |acc, &c| (acc << 3) | u16::from(c - b'0')),
    )))
}

/// Parses one SBS-1 line. Surrounding whitespace (including CR/LF) is ignored.
pub fn parse_sbs(line: &str) -> Result<SbsMessage, AdsbError> {
    if line.len() > MAX_SBS_LINE_BYTES {
        return Err(AdsbError::bad(
            "SBS line",
            format!("{} bytes, the limit is {MAX_SBS_LINE_BYTES}", line.len()),
        ));
    }
    let line = line.trim();
    if line.is_empty() {
        return Err(AdsbError::truncated("SBS line", "the line is empty"));
    }
    let mut f = [""; FIELDS];
    let mut count = 0;
    for part in line.split(',') {
        let Some(slot) = f.get_mut(count) else {
            return Err(AdsbError::bad(
                "SBS line",
                format!("more than {FIELDS} fields"),
            ));
        };
        *slot = part.trim();
        count += 1;
    }
    // Destructuring names every field and cannot index out of bounds.
    let [
        kind,
        ty,
        session,
        aircraft,
        hexident,
        flight,
        date_gen,
        time_gen,
        date_log,
        time_log,
        cs,
        alt,
        gs,
        trk,
        lat_s,
        lon_s,
        vr,
        sq,
        alert_s,
        emergency_s,
        spi_s,
        ground_s,
    ] = f;
    match kind {
        "MSG" => {}
        kind @ ("SEL" | "ID" | "AIR" | "STA" | "CLK") => {
            return Err(AdsbError::Unsupported(format!(
                "SBS-1 {kind} lines carry no track data"
            )));
        }
        other => {
            return Err(AdsbError::bad(
                "message type",
                format!("{other:?} is not MSG, SEL, ID, AIR, STA or CLK"),
            ));
        }
    }
    if count < MIN_FIELDS {
        return Err(AdsbError::truncated(
            "SBS line",
            format!("{count} fields, a MSG line has {FIELDS} (at least {MIN_FIELDS})"),
        ));
    }
    let transmission = match ty {
        t @ ("1" | "2" | "3" | "4" | "5" | "6" | "7" | "8") => {
            t.as_bytes().first().map_or(0, |b| b - b'0')
        }
        other => {
            return Err(AdsbError::bad(
                "transmission type",
                format!("{other:?} is not 1-8"),
            ));
        }
    };
    let (address, address_kind) = address(hexident)?;
    let lat = ranged("lat", lat_s, -90.0, 90.0)?;
    let lon = ranged("lon", lon_s, -180.0, 180.0)?;
    if lat.is_some() != lon.is_some() {
        return Err(AdsbError::bad(
            "position",
            "latitude and longitude must come together",
        ));
    }
    Ok(SbsMessage {
        transmission,
        session_id: id("session id", session)?,
        aircraft_id: id("aircraft id", aircraft)?,
        flight_id: id("flight id", flight)?,
        address,
        address_kind,
        generated: date_time("date/time generated", date_gen, time_gen)?,
        logged: date_time("date/time logged", date_log, time_log)?,
        callsign: callsign(cs)?,
        altitude_ft: ranged("altitude", alt, MIN_ALT_FT, MAX_ALT_FT)?.map(|v| v.round() as i32),
        ground_speed_kt: ranged("ground speed", gs, 0.0, MAX_SPEED_KT)?,
        track_deg: ranged("track", trk, 0.0, 360.0)?.map(|t| if t >= 360.0 { 0.0 } else { t }),
        lat,
        lon,
        vertical_rate_fpm: ranged("vertical rate", vr, -MAX_VRATE_FPM, MAX_VRATE_FPM)?
            .map(|v| v.round() as i32),
        squawk: squawk(sq)?,
        alert: flag("alert", alert_s)?,
        emergency: flag("emergency", emergency_s)?,
        spi: flag("spi", spi_s)?,
        on_ground: flag("on ground", ground_s)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_msg_type() {
        let lines = [
            "MSG,1,111,11111,4840D6,111111,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,KLM1023 ,,,,,,,,,,,",
            "MSG,2,111,11111,4840D6,111111,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,,18,140.6,52.32061,4.73473,,,,,,-1",
            "MSG,3,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,36000,,,51.45735,-1.02826,,,0,0,0,0",
            "MSG,4,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,,420.5,90.0,,,-832,,,,,0",
            "MSG,5,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,36000,,,,,,,0,,0,0",
            "MSG,6,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,36000,,,,,,7700,-1,-1,0,0",
            "MSG,7,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,36000,,,,,,,,,,0",
            "MSG,8,1,1,4840D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,,,,,,,,,,,0",
        ];
        let msgs: Vec<_> = lines.iter().map(|l| parse_sbs(l).unwrap()).collect();
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(usize::from(m.transmission), i + 1);
            assert_eq!(m.address, 0x4840D6);
        }
        assert_eq!(msgs[0].callsign.as_deref(), Some("KLM1023"));
        assert_eq!(msgs[0].session_id, Some(111));
        assert_eq!(msgs[1].on_ground, Some(true));
        assert_eq!((msgs[2].lat, msgs[2].lon), (Some(51.45735), Some(-1.02826)));
        assert_eq!(msgs[2].altitude_ft, Some(36_000));
        assert_eq!(msgs[3].ground_speed_kt, Some(420.5));
        assert_eq!(msgs[3].vertical_rate_fpm, Some(-832));
        assert_eq!(msgs[5].squawk, Some(Squawk(0o7700)));
        assert_eq!(msgs[5].emergency, Some(true));
        let g = msgs[2].generated.unwrap();
        assert_eq!((g.year, g.month, g.day), (2008, 11, 28));
        assert_eq!(
            g.assuming_utc(),
            Timestamp::parse_rfc3339("2008-11-28T23:48:18.611Z").unwrap()
        );
    }

    #[test]
    fn tolerates_short_lines_and_tilde() {
        let m = parse_sbs("MSG,8,1,1,~A1B2C3,1,,,,\r\n").unwrap();
        assert_eq!(m.address_kind, AddressKind::NonIcao);
        assert_eq!(m.generated, None);
    }

    #[test]
    fn rejects_with_reasons() {
        let reason = |l: &str| parse_sbs(l).unwrap_err().reason();
        assert_eq!(
            reason(
                "SEL,,496,2286,4CA4E5,27215,2010/02/19,18:06:07.710,2010/02/19,18:06:07.710,RYR1427"
            ),
            "unsupported"
        );
        assert_eq!(
            reason("STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153,RM"),
            "unsupported"
        );
        assert_eq!(reason("CLK,,,,,,"), "unsupported");
        assert_eq!(reason(""), "truncated");
        assert_eq!(reason("MSG,3,1,1,4840D6"), "truncated");
        assert_eq!(reason("FOO,1"), "bad_field");
        assert_eq!(reason("MSG,9,1,1,4840D6,1,,,,,,,,,,,,,,,,"), "bad_field");
        assert_eq!(reason("MSG,3,1,1,4840G6,1,,,,,,,,,,,,,,,,"), "bad_field");
        assert_eq!(reason("MSG,3,1,1,,1,,,,,,,,,,,,,,,,"), "truncated");
        assert_eq!(
            reason("MSG,3,1,1,4840D6,1,,,,,,,,,91.0,1.0,,,,,,"),
            "impossible_value"
        );
        assert_eq!(
            reason("MSG,3,1,1,4840D6,1,,,,,,,,,51.0,,,,,,,"),
            "bad_field"
        );
        assert_eq!(reason("MSG,3,1,1,4840D6,1,,,,,,abc,,,,,,,,,,"), "bad_field");
        assert_eq!(reason("MSG,3,1,1,4840D6,1,,,,,,NaN,,,,,,,,,,"), "bad_field");
        assert_eq!(
            reason("MSG,4,1,1,4840D6,1,,,,,,,9000,,,,,,,,,"),
            "impossible_value"
        );
        assert_eq!(
            reason("MSG,6,1,1,4840D6,1,,,,,,,,,,,,7800,,,,"),
            "bad_field"
        );
        assert_eq!(reason("MSG,6,1,1,4840D6,1,,,,,,,,,,,,,2,,,"), "bad_field");
        assert_eq!(
            reason("MSG,1,1,1,4840D6,1,,,,,KLM/1023,,,,,,,,,,,"),
            "bad_field"
        );
        assert_eq!(
            reason("MSG,3,1,1,4840D6,1,2008/13/28,23:48:18.611,,,,,,,,,,,,,,"),
            "impossible_value"
        );
        assert_eq!(
            reason("MSG,3,1,1,4840D6,1,2008-11-28,23:48:18.611,,,,,,,,,,,,,,"),
            "bad_field"
        );
        assert_eq!(reason("MSG,3,1,1,4840D6,1,,,,,,,,,,,,,,,,,,"), "bad_field");
        assert_eq!(reason(&"M".repeat(600)), "bad_field");
    }
}
