//! Allocation-free parsing of NMEA field values: decimals, `ddmm.mmmm` coordinates,
//! `hhmmss.sss` times, `ddmmyy` dates, and the civil-calendar arithmetic that turns a date and
//! a time of day into a [`Timestamp`].
//!
//! Decimals take the exact fast path (an integer mantissa below 2^53 divided by a power of
//! ten is correctly rounded by IEEE 754), so results equal `str::parse::<f64>` while avoiding
//! its general machinery on the hot path; longer inputs fall back to `str::parse`.

use rampart_model::Timestamp;

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Parses a plain decimal (`-12.345`, `5`, `.5`, `5.`); no exponent, no spaces.
pub(crate) fn parse_decimal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    let mut mant: u64 = 0;
    let mut ndigits = 0usize;
    let mut frac = 0usize;
    let mut dot = false;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                ndigits += 1;
                if ndigits > 15 {
                    // Too many digits for the exact fast path.
                    return s.parse::<f64>().ok().filter(|v| v.is_finite());
                }
                mant = mant * 10 + u64::from(c - b'0');
                if dot {
                    frac += 1;
                }
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if ndigits == 0 {
        return None;
    }
    let v = mant as f64 / POW10.get(frac).copied().unwrap_or(1e15);
    Some(if neg { -v } else { v })
}

/// Parses an unsigned decimal integer of at most 9 digits.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
        }
        _ => None,
    }
}

/// A UTC time of day, in milliseconds since midnight (up to 60.999 s for leap seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(pub u32);

impl TimeOfDay {
    /// Milliseconds since midnight.
    pub fn millis(self) -> u32 {
        self.0
    }
    /// Hour, 0–23.
    pub fn hour(self) -> u32 {
        self.0 / 3_600_000
    }
    /// Minute, 0–59.
    pub fn minute(self) -> u32 {
        self.0 / 60_000 % 60
    }
    /// Second, 0–60 (60 only during a leap second).
    pub fn second(self) -> u32 {
        (self.0 % 60_000) / 1000
    }
    /// Millisecond within the second.
    pub fn millisecond(self) -> u32 {
        self.0 % 1000
    }
}

/// Why a time or date field is wrong (mapped to a field error by the caller).
pub(crate) type Problem = &'static str;

/// Parses `hhmmss` or `hhmmss.f…`; fractional digits beyond milliseconds are truncated.
pub(crate) fn parse_time(s: &str) -> Result<TimeOfDay, Problem> {
    let b = s.as_bytes();
    let (hms, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (
            b.get(..i).unwrap_or_default(),
            b.get(i + 1..).unwrap_or_default(),
        ),
        None => (b, &[][..]),
    };
    let [h0, h1, m0, m1, s0, s1] = hms else {
        return Err("is not a time hhmmss[.sss]");
    };
    let (Some(h), Some(m), Some(sec)) = (
        two_digits(&[*h0, *h1]),
        two_digits(&[*m0, *m1]),
        two_digits(&[*s0, *s1]),
    ) else {
        return Err("is not a time hhmmss[.sss]");
    };
    if h > 23 || m > 59 || sec > 60 {
        return Err("is not a valid time of day");
    }
    let mut ms = 0u32;
    let mut scale = 100u32;
    for &c in frac {
        if !c.is_ascii_digit() {
            return Err("is not a time hhmmss[.sss]");
        }
        ms += u32::from(c - b'0') * scale;
        scale /= 10;
    }
    Ok(TimeOfDay(((h * 60 + m) * 60 + sec) * 1000 + ms))
}

/// A calendar date (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Full year, e.g. 2026.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of month, 1–31.
    pub day: u8,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(i64::from(year)) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// Builds a date, checking month and day ranges.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        (day >= 1 && day <= days_in_month(year, month)).then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let m = i64::from(self.month);
        let d = i64::from(self.day);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01 (Hinnant's civil_from_days).
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        Date::new(
            u16::try_from(y).ok()?,
            u8::try_from(m).ok()?,
            u8::try_from(d).ok()?,
        )
    }

    /// This date at `time` (UTC).
    pub fn at(self, time: TimeOfDay) -> Timestamp {
        Timestamp(self.days_since_epoch() * 86_400_000 + i64::from(time.0))
    }
}

/// Parses an RMC `ddmmyy` date. Two-digit years pivot at 80: `80`–`99` are 1980–1999 (GPS
/// began in 1980), `00`–`79` are 2000–2079.
pub(crate) fn parse_ddmmyy(s: &str) -> Result<Date, Problem> {
    let b = s.as_bytes();
    let [d0, d1, m0, m1, y0, y1] = b else {
        return Err("is not a date ddmmyy");
    };
    let (Some(d), Some(m), Some(y)) = (
        two_digits(&[*d0, *d1]),
        two_digits(&[*m0, *m1]),
        two_digits(&[*y0, *y1]),
    ) else {
        return Err("is not a date ddmmyy");
    };
    let year = if y >= 80 { 1900 + y } else { 2000 + y };
    Date::new(year as u16, m as u8, d as u8).ok_or("is not a valid calendar date")
}

/// Combines a time of day with the day (yesterday, today or tomorrow of `reference`) that puts
/// it closest to `reference`. This is how a GGA time (no date) is dated: a receiver's clock
/// and the reference never differ by 12 hours, so midnight roll-over is handled.
pub fn date_time_near(time: TimeOfDay, reference: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400_000;
    let day = reference.0.div_euclid(DAY);
    // Saturating: a nonsensical `reference` near the i64 range must not overflow.
    let at = |d: i64| d.saturating_mul(DAY).saturating_add(i64::from(time.0));
    let mut best = at(day);
    for cand in [at(day.saturating_sub(1)), at(day.saturating_add(1))] {
        if cand.abs_diff(reference.0) < best.abs_diff(reference.0) {
            best = cand;
        }
    }
    Timestamp(best)
}

/// Parses a `ddmm.mmmm` / `dddmm.mmmm` coordinate with its hemisphere letter into signed
/// degrees. `max_deg` is 90 for latitude, 180 for longitude; `pos`/`neg` the hemispheres.
pub(crate) fn parse_coord(
    value: &str,
    hemi: &str,
    max_deg: f64,
    pos: &str,
    neg: &str,
) -> Result<f64, (bool, Problem)> {
    // The error's bool says which field is at fault: false = value, true = hemisphere.
    let b = value.as_bytes();
    let int_len = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
    if int_len < 3 {
        return Err((false, "is not a coordinate ddmm.mmmm"));
    }
    let Some((deg_txt, min_txt)) = value.split_at_checked(int_len - 2) else {
        return Err((false, "is not a coordinate ddmm.mmmm"));
    };
    let deg = parse_u32(deg_txt).ok_or((false, "is not a coordinate ddmm.mmmm"))?;
    let min = parse_decimal(min_txt).ok_or((false, "is not a coordinate ddmm.mmmm"))?;
    if min_txt.starts_with(['-', '+']) || min >= 60.0 {
        return Err((false, "has minutes outside 0..60"));
    }
    let v = f64::from(deg) + min / 60.0;
    if v > max_deg {
        return Err((false, "is out of range"));
    }
    if hemi == pos {
        Ok(v)
    } else if hemi == neg {
        Ok(-v)
    } else {
        Err((true, "is not a hemisphere letter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_match_std() {
        for s in [
            "0",
            "1.5",
            "-0.25",
            "4807.038",
            "123.456789012345",
            ".5",
            "5.",
            "0.1",
            "99.99",
        ] {
            assert_eq!(parse_decimal(s), s.parse::<f64>().ok(), "{s}");
        }
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("."), None);
        assert_eq!(parse_decimal("1e5"), None);
        assert_eq!(parse_decimal("1.2.3"), None);
    }

    #[test]
    fn civil_days_round_trip() {
        for days in [-1, 0, 1, 10_957, 20_000, 2_932_896] {
            let d = Date::from_days_since_epoch(days).unwrap();
            assert_eq!(d.days_since_epoch(), days);
        }
        assert_eq!(Date::new(2000, 2, 29).unwrap().days_since_epoch(), 11_016);
        assert!(Date::new(2001, 2, 29).is_none());
    }

    #[test]
    fn dates_time_of_day_across_midnight() {
        // Reference 00:00:05 on day 100; a time of 23:59:59 belongs to day 99.
        let reference = Timestamp(100 * 86_400_000 + 5_000);
        let t = parse_time("235959").unwrap();
        assert_eq!(
            date_time_near(t, reference),
            Timestamp(100 * 86_400_000 - 1_000)
        );
    }
}
