//! [`GpsSource`]: the sans-IO state machine that turns one receiver's sentence stream into
//! [`Report`]s.
//!
//! # Epochs
//!
//! A receiver emits a burst of sentences per fix ("epoch"): e.g. RMC, VTG, GGA, GSA, GSV…,
//! all describing the same instant. The source collects them and emits one report per epoch:
//!
//! - a sentence carrying a time of day (GGA, RMC, GLL, ZDA) that differs from the epoch's
//!   time closes the epoch and starts a new one;
//! - the sentence type that was last in a closed epoch is learned as the receiver's
//!   **cycle ender** (as gpsd does); afterwards the epoch is emitted as soon as that type
//!   arrives, without waiting a second for the next burst. If the receiver's order changes,
//!   the next time-change close re-learns it. GSV only counts when it is the last part;
//! - [`GpsSource::poll`] closes an epoch older than [`GpsSourceConfig::epoch_timeout_ms`] so a
//!   receiver that goes quiet still gets its last fix out.
//!
//! Sentences without time (VTG, GSA, GSV) join the current epoch.
//!
//! # The report
//!
//! - position: GGA if its quality is non-zero, else RMC (status A), else GLL (status A);
//! - `hae` = GGA altitude above MSL + geoid separation (height of the geoid above the
//!   ellipsoid); absent when either is missing;
//! - course/speed: RMC, else VTG; knots × 1852/3600 → m/s;
//! - time: the epoch's date (RMC or ZDA) and time of day. A time of day without a date is
//!   dated by [`date_time_near`] against the last full date-time seen (advanced by the `now`
//!   elapsed since), or `now` if none was ever seen. No time at all → `now`;
//! - `ce` = HDOP × UERE(fix quality), `le` = VDOP × UERE (see [`uere_m`]);
//! - attributes: `fix_quality`, `satellites`, `hdop`, `pdop`, `vdop`, `altitude_msl`.
//!
//! An epoch marked invalid (GGA quality 0, RMC or GLL status V) emits nothing and is counted
//! in [`GpsCounters::no_fix`]; that is the receiver's state, not an error.

use rampart_model::{AttrValue, Attributes, Limits, Report, Text, Timestamp, Uid};

use crate::NmeaError;
use crate::frame::{FrameOptions, Talker};
use crate::num::{Date, TimeOfDay, date_time_near};
use crate::sentences::{Gga, Gll, Gsa, Rmc, Sentence, Vtg, decode};

/// Knots to metres per second (one nautical mile is exactly 1852 m).
pub const KNOTS_TO_MPS: f64 = 1852.0 / 3600.0;

/// What a receiver's reports are about: configured per source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceMapping {
    /// Entity uid of the platform carrying the receiver.
    pub uid: Uid,
    /// CoT type of that platform, e.g. `a-f-G-U-C`.
    pub cot_type: Text,
    /// Display name, if any.
    pub callsign: Option<Text>,
}

/// Tuning of a [`GpsSource`].
#[derive(Clone, Debug, PartialEq)]
pub struct GpsSourceConfig {
    /// Sentence framing options.
    pub frame: FrameOptions,
    /// Limits every emitted report is validated against.
    pub limits: Limits,
    /// An epoch this old (since its first sentence) is emitted by [`GpsSource::poll`].
    pub epoch_timeout_ms: i64,
    /// If set, reports carry `stale = time + stale_after_ms`; otherwise the engine default.
    pub stale_after_ms: Option<i64>,
    /// CoT `how` for GNSS fixes (`m-g`, machine GPS). Manual fixes (quality 7) use `h-e`.
    pub how: Text,
}

impl Default for GpsSourceConfig {
    fn default() -> Self {
        GpsSourceConfig {
            frame: FrameOptions::default(),
            limits: Limits::default(),
            epoch_timeout_ms: 1_500,
            stale_after_ms: None,
            how: Text::const_new("m-g"),
        }
    }
}

/// Counts of what a source saw that are not errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpsCounters {
    /// Sentences decoded and absorbed.
    pub sentences: u64,
    /// Reports emitted.
    pub reports: u64,
    /// Epochs the receiver itself marked invalid (no fix).
    pub no_fix: u64,
    /// Epochs without any position sentence (e.g. only GSV).
    pub no_position: u64,
}

/// User equivalent range error (1-sigma, metres) per GGA fix quality: the ce model is
/// `ce = HDOP × UERE`, `le = VDOP × UERE`.
///
/// | quality | meaning              | UERE   |
/// |---------|----------------------|--------|
/// | 1       | GPS / autonomous     | 5 m    |
/// | 2       | DGPS / SBAS          | 1 m    |
/// | 3       | PPS (precise)        | 2 m    |
/// | 4       | RTK fixed            | 0.02 m |
/// | 5       | RTK float            | 0.5 m  |
/// | 6       | estimated (DR)       | 50 m   |
/// | 8       | simulation           | 5 m    |
/// | 0, 7, other | invalid / manual | none (no ce) |
pub fn uere_m(fix_quality: u8) -> Option<f64> {
    match fix_quality {
        1 | 8 => Some(5.0),
        2 => Some(1.0),
        3 => Some(2.0),
        4 => Some(0.02),
        5 => Some(0.5),
        6 => Some(50.0),
        _ => None,
    }
}

/// Maps an FAA mode letter (RMC/GLL/VTG) to the equivalent GGA fix quality.
pub fn quality_from_mode(mode: char) -> Option<u8> {
    Some(match mode {
        'A' => 1,
        'D' => 2,
        'P' => 3,
        'R' => 4,
        'F' => 5,
        'E' => 6,
        'M' => 7,
        'S' => 8,
        _ => return None,
    })
}

type Key = (Talker, &'static str);

#[derive(Default, Clone, Copy)]
struct Epoch {
    started: Option<Timestamp>,
    time: Option<TimeOfDay>,
    date: Option<Date>,
    gga: Option<Gga>,
    rmc: Option<Rmc>,
    vtg: Option<Vtg>,
    gll: Option<Gll>,
    gsa: Option<Gsa>,
    last: Option<Key>,
    invalid: bool,
}

/// One GNSS receiver's sans-IO state: feed it lines, get reports.
#[derive(Clone)]
pub struct GpsSource {
    mapping: SourceMapping,
    config: GpsSourceConfig,
    epoch: Epoch,
    ender: Option<Key>,
    /// Last exact (dated) fix time and the `now` at which it was seen.
    last_exact: Option<(Timestamp, Timestamp)>,
    counters: GpsCounters,
}

fn sentence_time(s: &Sentence) -> Option<TimeOfDay> {
    match s {
        Sentence::Gga(g) => g.time,
        Sentence::Rmc(r) => r.time,
        Sentence::Gll(g) => g.time,
        Sentence::Zda(z) => z.time,
        Sentence::Vtg(_) | Sentence::Gsa(_) | Sentence::Gsv(_) => None,
    }
}

fn key(s: &Sentence) -> Option<Key> {
    match s {
        // Only the last part of a GSV group can end a cycle.
        Sentence::Gsv(g) if g.message_number != g.total_messages => None,
        _ => Some((s.talker(), s.kind())),
    }
}

impl GpsSource {
    /// A source reporting as `mapping`.
    pub fn new(mapping: SourceMapping, config: GpsSourceConfig) -> Self {
        GpsSource {
            mapping,
            config,
            epoch: Epoch::default(),
            ender: None,
            last_exact: None,
            counters: GpsCounters::default(),
        }
    }

    /// What this source has seen so far.
    pub fn counters(&self) -> GpsCounters {
        self.counters
    }

    /// The learned cycle-ending sentence (talker, type), if any.
    pub fn cycle_ender(&self) -> Option<(Talker, &'static str)> {
        self.ender
    }

    /// Decodes one line and absorbs it; completed epochs are appended to `out`.
    ///
    /// A decoding error leaves the state untouched. An epoch whose report fails validation
    /// is dropped and returned as an `impossible_value` error after the line was absorbed.
    pub fn feed(
        &mut self,
        line: &[u8],
        now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), NmeaError> {
        let s = decode(line, &self.config.frame)?;
        self.feed_sentence(&s, now, out)
    }

    /// Absorbs an already decoded sentence; completed epochs are appended to `out`.
    pub fn feed_sentence(
        &mut self,
        s: &Sentence,
        now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), NmeaError> {
        self.counters.sentences += 1;
        let mut result = Ok(());
        if let (Some(t), Some(et)) = (sentence_time(s), self.epoch.time)
            && t != et
        {
            // A new instant: the previous epoch is complete, and its last sentence type is
            // this receiver's cycle ender.
            self.ender = self.epoch.last;
            result = self.flush(now, out);
        }
        self.absorb(s, now);
        if self.ender.is_some() && key(s) == self.ender {
            let r = self.flush(now, out);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Emits the pending epoch if it is older than the epoch timeout.
    pub fn poll(&mut self, now: Timestamp, out: &mut Vec<Report>) -> Result<(), NmeaError> {
        match self.epoch.started {
            Some(t) if now.0.saturating_sub(t.0) >= self.config.epoch_timeout_ms => {
                self.flush(now, out)
            }
            _ => Ok(()),
        }
    }

    /// Emits the pending epoch now, whatever its age (e.g. at end of input).
    pub fn flush(&mut self, now: Timestamp, out: &mut Vec<Report>) -> Result<(), NmeaError> {
        let e = std::mem::take(&mut self.epoch);
        if e.started.is_none() {
            return Ok(());
        }
        if e.invalid {
            self.counters.no_fix += 1;
            return Ok(());
        }
        match self.build(&e, now)? {
            Some(r) => {
                self.counters.reports += 1;
                out.push(r);
            }
            None => self.counters.no_position += 1,
        }
        Ok(())
    }

    fn absorb(&mut self, s: &Sentence, now: Timestamp) {
        let e = &mut self.epoch;
        e.started.get_or_insert(now);
        if e.time.is_none() {
            e.time = sentence_time(s);
        }
        match s {
            Sentence::Gga(g) => {
                if g.fix_quality == Some(0) {
                    e.invalid = true;
                }
                e.gga = Some(*g);
            }
            Sentence::Rmc(r) => {
                if !r.valid || r.mode == Some('N') {
                    e.invalid = true;
                }
                if r.date.is_some() {
                    e.date = r.date;
                }
                e.rmc = Some(*r);
            }
            Sentence::Gll(g) => {
                if !g.valid || g.mode == Some('N') {
                    e.invalid = true;
                }
                e.gll = Some(*g);
            }
            Sentence::Vtg(v) => e.vtg = Some(*v),
            Sentence::Gsa(g) => e.gsa = Some(*g),
            Sentence::Gsv(_) => {}
            Sentence::Zda(z) => {
                if z.date.is_some() {
                    e.date = z.date;
                }
            }
        }
        if let Some(k) = key(s) {
            e.last = Some(k);
        }
    }

    fn build(&mut self, e: &Epoch, now: Timestamp) -> Result<Option<Report>, NmeaError> {
        let gga_pos = e
            .gga
            .filter(|g| g.fix_quality.is_some_and(|q| q > 0))
            .and_then(|g| g.position);
        let Some(pos) = gga_pos
            .or(e.rmc.and_then(|r| r.position))
            .or(e.gll.and_then(|g| g.position))
        else {
            return Ok(None);
        };
        let time = match (e.date, e.time) {
            (Some(d), Some(t)) => {
                let ts = d.at(t);
                self.last_exact = Some((ts, now));
                ts
            }
            (None, Some(t)) => {
                let reference = match self.last_exact {
                    Some((ts, seen)) => ts.plus_millis(now.0.saturating_sub(seen.0)),
                    None => now,
                };
                date_time_near(t, reference)
            }
            (_, None) => now,
        };
        let mode = e
            .rmc
            .and_then(|r| r.mode)
            .or(e.gll.and_then(|g| g.mode))
            .or(e.vtg.and_then(|v| v.mode));
        let quality = e
            .gga
            .and_then(|g| g.fix_quality)
            .or(mode.and_then(quality_from_mode))
            .unwrap_or(1);
        let uere = uere_m(quality);
        let hdop = e.gga.and_then(|g| g.hdop).or(e.gsa.and_then(|g| g.hdop));
        let vdop = e.gsa.and_then(|g| g.vdop);
        let pdop = e.gsa.and_then(|g| g.pdop);
        let altitude = e.gga.and_then(|g| g.altitude_msl);
        let separation = e.gga.and_then(|g| g.geoid_separation);
        let course = e
            .rmc
            .and_then(|r| r.course_true)
            .or(e.vtg.and_then(|v| v.course_true))
            .map(|c| c.rem_euclid(360.0));
        let speed = e
            .rmc
            .and_then(|r| r.speed_knots)
            .or(e.vtg.and_then(|v| v.speed_knots))
            .map(|k| k * KNOTS_TO_MPS)
            .or(e.vtg.and_then(|v| v.speed_kmh).map(|k| k / 3.6));

        let mut attributes = Attributes::new();
        let mut num = |k: &'static str, v: Option<f64>| {
            if let Some(v) = v {
                attributes.insert(Text::const_new(k), AttrValue::Num(v));
            }
        };
        num("fix_quality", Some(f64::from(quality)));
        num(
            "satellites",
            e.gga.and_then(|g| g.satellites).map(f64::from),
        );
        num("hdop", hdop);
        num("pdop", pdop);
        num("vdop", vdop);
        num("altitude_msl", altitude);

        let report = Report {
            uid: self.mapping.uid.clone(),
            cot_type: Some(self.mapping.cot_type.clone()),
            callsign: self.mapping.callsign.clone(),
            lat: pos.lat,
            lon: pos.lon,
            hae: altitude.zip(separation).map(|(a, s)| a + s),
            ce: hdop.zip(uere).map(|(h, u)| h * u),
            le: vdop.zip(uere).map(|(v, u)| v * u),
            course,
            speed,
            how: Some(if quality == 7 {
                Text::const_new("h-e")
            } else {
                self.config.how.clone()
            }),
            time,
            start: None,
            stale: self.config.stale_after_ms.map(|ms| time.plus_millis(ms)),
            attributes,
            label: None,
            id: None,
            provenance: Default::default(),
        };
        self.config
            .limits
            .validate(&report)
            .map_err(|e| NmeaError::Impossible(e.to_string()))?;
        Ok(Some(report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(body: &str) -> String {
        format!(
            "${body}*{:02X}\r\n",
            crate::frame::checksum(body.as_bytes())
        )
    }

    fn source() -> GpsSource {
        GpsSource::new(
            SourceMapping {
                uid: "veh-1".into(),
                cot_type: "a-f-G-U-C".into(),
                callsign: Some("ALPHA".into()),
            },
            GpsSourceConfig::default(),
        )
    }

    #[test]
    fn combines_an_epoch_and_learns_the_cycle_ender() {
        let mut s = source();
        let mut out = Vec::new();
        let now = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z
        for t in ["120000", "120001", "120002"] {
            for body in [
                format!("GPRMC,{t}.00,A,4807.038,N,01131.000,E,10.0,84.4,010126,3.1,W,D"),
                "GPVTG,84.4,T,,M,10.0,N,18.5,K,D".to_string(),
                format!("GPGGA,{t}.00,4807.038,N,01131.000,E,2,08,0.9,545.4,M,46.9,M,,"),
                "GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,0.9,2.1".to_string(),
            ] {
                s.feed(line(&body).as_bytes(), now, &mut out).unwrap();
            }
        }
        // Epoch 1 closes on epoch 2's RMC (learning GSA as ender); 2 and 3 close on their GSA.
        assert_eq!(out.len(), 3);
        assert_eq!(s.cycle_ender(), Some((Talker::GP, "GSA")));
        let r = &out[2];
        assert_eq!(
            r.time,
            Timestamp::parse_rfc3339("2026-01-01T12:00:02Z").unwrap()
        );
        assert!((r.hae.unwrap() - 592.3).abs() < 1e-9);
        assert!((r.ce.unwrap() - 0.9).abs() < 1e-9);
        assert!((r.le.unwrap() - 2.1).abs() < 1e-9);
        assert!((r.speed.unwrap() - 10.0 * KNOTS_TO_MPS).abs() < 1e-9);
        assert_eq!(r.course, Some(84.4));
        assert_eq!(r.callsign.as_deref(), Some("ALPHA"));
        assert_eq!(r.attributes.get("fix_quality"), Some(&AttrValue::Num(2.0)));
    }

    #[test]
    fn invalid_fixes_are_counted_not_reported() {
        let mut s = source();
        let mut out = Vec::new();
        let now = Timestamp(1_767_225_600_000);
        for t in ["120000", "120001", "120002"] {
            let body = format!("GPGGA,{t},4807.038,N,01131.000,E,0,00,99.9,,M,,M,,");
            s.feed(line(&body).as_bytes(), now, &mut out).unwrap();
        }
        assert!(out.is_empty());
        // The second GGA closes the first epoch and is learned as ender, closing the others at once.
        assert_eq!(s.counters().no_fix, 3);
    }

    #[test]
    fn gga_time_is_dated_near_now_and_poll_flushes() {
        let mut s = source();
        let mut out = Vec::new();
        // now is 00:00:01 on 2026-01-02; the fix was taken at 23:59:59 the day before.
        let now = Timestamp::parse_rfc3339("2026-01-02T00:00:01Z").unwrap();
        let body = "GPGGA,235959,4807.038,S,01131.000,W,1,08,1.0,10,M,,M,,";
        s.feed(line(body).as_bytes(), now, &mut out).unwrap();
        assert!(out.is_empty());
        s.poll(now.plus_millis(1_000), &mut out).unwrap();
        assert!(out.is_empty());
        s.poll(now.plus_millis(2_000), &mut out).unwrap();
        let r = &out[0];
        assert_eq!(
            r.time,
            Timestamp::parse_rfc3339("2026-01-01T23:59:59Z").unwrap()
        );
        assert!(r.lat < 0.0 && r.lon < 0.0);
        assert_eq!(r.hae, None);
        assert_eq!(r.ce, Some(5.0));
    }
}
