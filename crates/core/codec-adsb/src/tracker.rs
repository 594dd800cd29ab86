//! The sans-IO ADS-B tracker: per-aircraft state fed by decoded frames and SBS messages,
//! emitting [`Report`]s only for positions it trusts.
//!
//! The rules it applies are documented on [`AdsbTracker`], where rustdoc shows them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};

use rampart_model::{AttrValue, Attributes, Limits, Report, Text, Timestamp};

use crate::cpr::{self, CprKind};
use crate::frame::emergency_name;
use crate::sbs::{SbsMessage, parse_sbs};
use crate::{
    AddressKind, AdsbError, AdsbFrame, AdsbMessage, AirspeedKind, AltitudeSource, CprFrame,
    EmitterCategory, Squawk, decode_frame, parse_avr,
};

/// Metres per foot.
const M_PER_FT: f64 = 0.3048;
/// Metres per second per knot.
const MPS_PER_KT: f64 = 1852.0 / 3600.0;
/// Mean Earth radius in metres (IUGG), for great-circle distances.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Tracker settings. Every map and window is bounded by one of these.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerConfig {
    /// Most aircraft tracked at once; the stalest is evicted beyond it. Default 10,000.
    pub max_aircraft: usize,
    /// An aircraft silent this long is forgotten. Default 60 s.
    pub expiry_ms: i64,
    /// Most time between the even and odd frames of an airborne global pair. Default 10 s.
    pub pair_window_ms: i64,
    /// The same for surface frames, which are sent less often when slow. Default 25 s.
    pub surface_pair_window_ms: i64,
    /// A track position older than this is not used as a local-decode reference (nor for
    /// the reachability check): the aircraft needs a fresh global pair. Default 30 s.
    pub local_max_age_ms: i64,
    /// Farthest an airborne local decode may land from its reference. Default 180 NM, the
    /// CPR bound for an unambiguous result.
    pub max_local_range_m: f64,
    /// The same for surface local decodes. Default 45 NM.
    pub max_surface_local_range_m: f64,
    /// Fastest believable aircraft, in knots, for the reachability check. Default 1,000 kt.
    pub max_speed_kt: f64,
    /// Distance added to the reachability bound for CPR quantisation and time-stamping
    /// jitter. Default 1 NM (1,852 m).
    pub jump_margin_m: f64,
    /// The receiver's position (lat, lon in degrees): the reference for surface decodes and
    /// the centre of the range check. Default none.
    pub receiver: Option<(f64, f64)>,
    /// Farthest believable position from [`TrackerConfig::receiver`]. Default 700 km (1090 MHz
    /// line of sight to an aircraft at FL450 is about 480 km).
    pub max_receiver_range_m: f64,
    /// CoT type of aircraft. Default `a-u-A` (unknown affiliation, air); a feed of known
    /// civil traffic may set `a-n-A-C-F` (neutral civil fixed wing).
    pub cot_type: Text,
    /// CoT type of emitters whose category says surface vehicle or obstacle (set C).
    /// Default `a-u-G`.
    pub surface_vehicle_cot_type: Text,
    /// Reports go stale this long after their time. Default 60 s.
    pub stale_after_ms: i64,
    /// Velocity, altitude and GNSS-minus-baro values older than this are left off a report.
    /// Default 30 s.
    pub data_max_age_ms: i64,
    /// Field limits every emitted report is validated against.
    pub limits: Limits,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_aircraft: 10_000,
            expiry_ms: 60_000,
            pair_window_ms: 10_000,
            surface_pair_window_ms: 25_000,
            local_max_age_ms: 30_000,
            max_local_range_m: 180.0 * 1852.0,
            max_surface_local_range_m: 45.0 * 1852.0,
            max_speed_kt: 1_000.0,
            jump_margin_m: 1852.0,
            receiver: None,
            max_receiver_range_m: 700_000.0,
            cot_type: Text::const_new("a-u-A"),
            surface_vehicle_cot_type: Text::const_new("a-u-G"),
            stale_after_ms: 60_000,
            data_max_age_ms: 30_000,
            limits: Limits::default(),
        }
    }
}

/// Great-circle distance in metres between two (lat, lon) points in degrees.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A position with the time it was observed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fix {
    lat: f64,
    lon: f64,
    time: Timestamp,
}

impl Fix {
    fn pos(self) -> (f64, f64) {
        (self.lat, self.lon)
    }
}

/// A value with the time it was received, so stale values can be left off reports.
#[derive(Clone, Copy, Debug)]
struct Timed<T> {
    value: T,
    time: Timestamp,
}

fn timed<T>(value: T, time: Timestamp) -> Option<Timed<T>> {
    Some(Timed { value, time })
}

/// The most recent even and odd frames of one CPR kind.
#[derive(Clone, Copy, Debug)]
struct CprBuffer {
    kind: CprKind,
    even: Option<Timed<CprFrame>>,
    odd: Option<Timed<CprFrame>>,
}

impl CprBuffer {
    fn clear(&mut self) {
        self.even = None;
        self.odd = None;
    }
    fn store(&mut self, frame: CprFrame, time: Timestamp) {
        let slot = if frame.odd {
            &mut self.odd
        } else {
            &mut self.even
        };
        *slot = Some(Timed { value: frame, time });
    }
}

/// Everything known about one aircraft.
#[derive(Clone, Debug)]
struct Aircraft {
    last_seen: Timestamp,
    callsign: Option<Text>,
    category: Option<EmitterCategory>,
    squawk: Option<Squawk>,
    emergency: Option<&'static str>,
    baro_alt_ft: Option<Timed<i32>>,
    gnss_alt_ft: Option<Timed<i32>>,
    geo_minus_baro_ft: Option<Timed<i32>>,
    ground_speed_kt: Option<Timed<f64>>,
    track_deg: Option<Timed<f64>>,
    vertical_rate_fpm: Option<Timed<i32>>,
    heading_deg: Option<Timed<f64>>,
    airspeed: Option<Timed<(u16, AirspeedKind)>>,
    on_ground: Option<bool>,
    /// The last trusted (emitted) position.
    track: Option<Fix>,
    /// An unconfirmed position: a first fix, or a rejected jump awaiting independent support.
    pending: Option<Fix>,
    /// Whether local CPR decoding against `track` is allowed (cleared by a rejection).
    local_ok: bool,
    cpr: CprBuffer,
}

impl Aircraft {
    fn new(now: Timestamp) -> Self {
        Aircraft {
            last_seen: now,
            callsign: None,
            category: None,
            squawk: None,
            emergency: None,
            baro_alt_ft: None,
            gnss_alt_ft: None,
            geo_minus_baro_ft: None,
            ground_speed_kt: None,
            track_deg: None,
            vertical_rate_fpm: None,
            heading_deg: None,
            airspeed: None,
            on_ground: None,
            track: None,
            pending: None,
            local_ok: false,
            cpr: CprBuffer {
                kind: CprKind::Airborne,
                even: None,
                odd: None,
            },
        }
    }
}

/// Where a candidate position came from; it decides how much confirmation it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A global CPR pair: needs confirmation at acquisition.
    Global,
    /// A local CPR decode: only ever made against a trusted track.
    Local,
    /// An already decoded SBS position.
    Sbs,
}

/// The key of the aircraft map: the address, with bit 24 set for non-ICAO addresses so an
/// anonymous address never merges with the aircraft that owns the same 24 bits.
fn key(address: u32, kind: AddressKind) -> u32 {
    match kind {
        AddressKind::Icao => address & 0xFF_FFFF,
        AddressKind::NonIcao => (address & 0xFF_FFFF) | 1 << 24,
    }
}

/// The entity uid of an address: `icao-<6 lowercase hex>`, or `adsb-nonicao-<hex>`.
pub fn uid_for(address: u32, kind: AddressKind) -> Text {
    match kind {
        AddressKind::Icao => Text::from(format!("icao-{:06x}", address & 0xFF_FFFF)),
        AddressKind::NonIcao => Text::from(format!("adsb-nonicao-{:06x}", address & 0xFF_FFFF)),
    }
}

/// The sans-IO ADS-B tracker. Feed it lines or decoded messages with their receive time;
/// it returns a report for each trusted new position.
///
/// ## Trust: a bad decode never teleports an aircraft
///
/// A CRC-valid frame can still be wrong (a transponder bug, a 2^-24 CRC collision, a spoofer),
/// and one wrong CPR frame can decode anywhere within a zone. So:
///
/// 1. **Acquisition.** A track starts only from a *global* decode of an even/odd pair received
///    within `pair_window_ms` whose latitudes agree on NL. Even then the first fix is held as
///    *pending* and the pair is discarded; an independent pair must confirm it (be within
///    reach at `max_speed_kt`) before anything is emitted (`unconfirmed` until then).
/// 2. **Tracking.** Each new frame is decoded globally when it has a partner in the window,
///    else locally against the track's last position (if that is younger than
///    `local_max_age_ms` and within `max_local_range_m`). Every result must be reachable from
///    the last position at `max_speed_kt` plus `jump_margin_m`.
/// 3. **Rejection.** An unreachable position is rejected with `impossible_value`; the track
///    stays where it was, the CPR buffer is cleared and local decoding is disabled, so the
///    aircraft needs a fresh global pair. A rejected global fix becomes the pending fix: if an
///    independent pair later agrees with it, the track moves there (the old track was the
///    wrong one). Two independent agreeing pairs are needed to move a track, never one frame.
/// 4. **Range.** With a receiver position configured, positions beyond
///    `max_receiver_range_m` are `impossible_value`.
///
/// SBS positions arrive already decoded, so the first one is accepted; later ones pass the
/// same reachability check, and a rejected one becomes pending as above.
///
/// ## Reports
///
/// A report is emitted for each newly trusted position; other messages (identification,
/// velocity, status) update the state that the next report carries, and return `Ok(None)`.
/// See the crate documentation for the fields, the CoT type and the altitude policy.
///
/// ## Bounds
///
/// At most `max_aircraft` entries; when full, expired entries are swept and then the stalest
/// entry is evicted. An entry silent for `expiry_ms` is forgotten (swept, or reset on its next
/// message).
#[derive(Debug)]
pub struct AdsbTracker {
    config: TrackerConfig,
    // A fixed-key hasher keeps the tracker deterministic (same input, same evictions) and
    // free of OS randomness; the map is small and bounded, so flooding costs little.
    aircraft: HashMap<u32, Aircraft, BuildHasherDefault<DefaultHasher>>,
    evicted: u64,
}

impl AdsbTracker {
    /// A tracker with `config`.
    pub fn new(config: TrackerConfig) -> Self {
        AdsbTracker {
            config,
            aircraft: HashMap::default(),
            evicted: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Aircraft currently held.
    pub fn len(&self) -> usize {
        self.aircraft.len()
    }

    /// True when no aircraft is held.
    pub fn is_empty(&self) -> bool {
        self.aircraft.is_empty()
    }

    /// Live aircraft evicted because [`TrackerConfig::max_aircraft`] was reached.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The last trusted position of an aircraft and its time, if any.
    pub fn position(&self, address: u32, kind: AddressKind) -> Option<(f64, f64, Timestamp)> {
        self.aircraft
            .get(&key(address, kind))
            .and_then(|a| a.track)
            .map(|f| (f.lat, f.lon, f.time))
    }

    /// Forgets every aircraft silent for longer than [`TrackerConfig::expiry_ms`]; returns
    /// how many were dropped. Call it now and then; the tracker also sweeps when full.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let before = self.aircraft.len();
        let expiry = self.config.expiry_ms;
        self.aircraft
            .retain(|_, a| now.0.saturating_sub(a.last_seen.0) <= expiry);
        before - self.aircraft.len()
    }

    /// Parses, decodes and tracks one AVR line (`*…;` or `@…;`).
    pub fn ingest_avr(&mut self, line: &str, now: Timestamp) -> Result<Option<Report>, AdsbError> {
        let raw = parse_avr(line)?;
        let frame = decode_frame(raw.bytes())?;
        self.ingest_frame(&frame, now)
    }

    /// Parses and tracks one SBS-1 line.
    pub fn ingest_sbs(&mut self, line: &str, now: Timestamp) -> Result<Option<Report>, AdsbError> {
        let msg = parse_sbs(line)?;
        self.ingest_sbs_message(&msg, now)
    }

    /// Takes the entry of an aircraft, creating (or resetting an expired) one.
    fn take(&mut self, k: u32, now: Timestamp) -> Aircraft {
        if let Some(a) = self.aircraft.remove(&k) {
            if now.0.saturating_sub(a.last_seen.0) <= self.config.expiry_ms {
                return a;
            }
            return Aircraft::new(now);
        }
        if self.aircraft.len() >= self.config.max_aircraft {
            self.expire(now);
        }
        // Still full of live aircraft: make room by evicting the stalest. O(n), but only on
        // the arrival of a new aircraft into a full table.
        while self.aircraft.len() >= self.config.max_aircraft.max(1) {
            let stalest = self
                .aircraft
                .iter()
                .min_by_key(|(k, a)| (a.last_seen, **k))
                .map(|(k, _)| *k);
            match stalest {
                Some(s) => {
                    self.aircraft.remove(&s);
                    self.evicted += 1;
                }
                None => break,
            }
        }
        Aircraft::new(now)
    }

    /// Runs `f` on the aircraft's entry and puts it back, even when `f` fails, so that the
    /// state changes of a rejection (pending fix, cleared buffer) persist.
    fn with_aircraft<T>(
        &mut self,
        address: u32,
        kind: AddressKind,
        now: Timestamp,
        f: impl FnOnce(&TrackerConfig, &mut Aircraft) -> Result<T, AdsbError>,
    ) -> Result<T, AdsbError> {
        let k = key(address, kind);
        let mut a = self.take(k, now);
        if now > a.last_seen {
            a.last_seen = now;
        }
        let out = f(&self.config, &mut a);
        if self.config.max_aircraft > 0 {
            self.aircraft.insert(k, a);
        }
        out
    }

    /// Tracks one decoded DF17/18 frame received at `now`.
    pub fn ingest_frame(
        &mut self,
        frame: &AdsbFrame,
        now: Timestamp,
    ) -> Result<Option<Report>, AdsbError> {
        let (address, kind) = (frame.address, frame.address_kind);
        let message = frame.message.clone();
        self.with_aircraft(address, kind, now, |cfg, a| match message {
            AdsbMessage::Identification(id) => {
                a.callsign = (!id.callsign.is_empty()).then_some(id.callsign);
                a.category = Some(id.category);
                Ok(None)
            }
            AdsbMessage::Velocity(v) => {
                if let (Some(gs), Some(trk)) = (v.ground_speed_kt, v.track_deg) {
                    a.ground_speed_kt = timed(gs, now);
                    a.track_deg = timed(trk, now);
                }
                if let Some(h) = v.heading_deg {
                    a.heading_deg = timed(h, now);
                }
                if let (Some(s), Some(k)) = (v.airspeed_kt, v.airspeed_kind) {
                    a.airspeed = Some(Timed {
                        value: (s, k),
                        time: now,
                    });
                }
                if let Some(vr) = v.vertical_rate_fpm {
                    a.vertical_rate_fpm = timed(vr, now);
                }
                if let Some(d) = v.geo_minus_baro_ft {
                    a.geo_minus_baro_ft = timed(d, now);
                }
                a.on_ground = Some(false);
                Ok(None)
            }
            AdsbMessage::Status(s) => {
                a.emergency = (s.emergency != 0).then(|| emergency_name(s.emergency));
                if s.squawk.is_some() {
                    a.squawk = s.squawk;
                }
                Ok(None)
            }
            AdsbMessage::AirbornePosition(p) => {
                let (lat, lon) = cpr_fix(cfg, a, address, CprKind::Airborne, p.cpr, now)?;
                match (p.altitude_ft, p.altitude_source) {
                    (Some(ft), AltitudeSource::Barometric) => {
                        a.baro_alt_ft = timed(ft, now);
                    }
                    (Some(ft), AltitudeSource::Gnss) => {
                        a.gnss_alt_ft = timed(ft, now);
                    }
                    (None, _) => {}
                }
                a.on_ground = Some(false);
                build_report(cfg, a, address, kind, lat, lon, now).map(Some)
            }
            AdsbMessage::SurfacePosition(p) => {
                let (lat, lon) = cpr_fix(cfg, a, address, CprKind::Surface, p.cpr, now)?;
                a.on_ground = Some(true);
                a.ground_speed_kt = p.ground_speed_kt.and_then(|v| timed(v, now));
                a.track_deg = p.track_deg.and_then(|v| timed(v, now));
                a.vertical_rate_fpm = None;
                build_report(cfg, a, address, kind, lat, lon, now).map(Some)
            }
        })
    }

    /// Tracks one parsed SBS-1 message received at `now`.
    pub fn ingest_sbs_message(
        &mut self,
        msg: &SbsMessage,
        now: Timestamp,
    ) -> Result<Option<Report>, AdsbError> {
        let (address, kind) = (msg.address, msg.address_kind);
        self.with_aircraft(address, kind, now, |cfg, a| {
            if let Some(c) = &msg.callsign {
                a.callsign = Some(c.clone());
            }
            if let Some(ft) = msg.altitude_ft {
                a.baro_alt_ft = timed(ft, now);
            }
            if let Some(gs) = msg.ground_speed_kt {
                a.ground_speed_kt = timed(gs, now);
            }
            if let Some(t) = msg.track_deg {
                a.track_deg = timed(t, now);
            }
            if let Some(vr) = msg.vertical_rate_fpm {
                a.vertical_rate_fpm = timed(vr, now);
            }
            if let Some(sq) = msg.squawk {
                a.squawk = Some(sq);
            }
            if let Some(e) = msg.emergency {
                a.emergency = e.then(|| sbs_emergency(a.squawk));
            }
            // Transmission type 2 is a surface position: on the ground by definition.
            if msg.transmission == 2 {
                a.on_ground = Some(true);
            } else if let Some(g) = msg.on_ground {
                a.on_ground = Some(g);
            }
            let (Some(lat), Some(lon)) = (msg.lat, msg.lon) else {
                return Ok(None);
            };
            judge(cfg, a, address, (lat, lon), now, Source::Sbs)?;
            build_report(cfg, a, address, kind, lat, lon, now).map(Some)
        })
    }
}

/// The emergency an SBS "emergency" flag means, from the squawk that usually raised it.
fn sbs_emergency(squawk: Option<Squawk>) -> &'static str {
    match squawk.map(|s| s.0) {
        Some(0o7500) => "unlawful_interference",
        Some(0o7600) => "no_communications",
        _ => "general",
    }
}

/// Whether `p` at `now` is reachable from `from` at the configured top speed.
fn reachable(cfg: &TrackerConfig, from: Fix, p: (f64, f64), now: Timestamp) -> bool {
    let dt_s = (now.0.saturating_sub(from.time.0)).max(0) as f64 / 1000.0;
    let limit = cfg.max_speed_kt * MPS_PER_KT * dt_s + cfg.jump_margin_m;
    distance_m(from.pos(), p) <= limit
}

fn fresh(cfg: &TrackerConfig, f: Option<Fix>, now: Timestamp) -> Option<Fix> {
    f.filter(|f| now.0.saturating_sub(f.time.0) <= cfg.local_max_age_ms)
}

/// Decides whether a candidate position becomes the track (see the module docs).
fn judge(
    cfg: &TrackerConfig,
    a: &mut Aircraft,
    address: u32,
    p: (f64, f64),
    now: Timestamp,
    source: Source,
) -> Result<(), AdsbError> {
    let candidate = Fix {
        lat: p.0,
        lon: p.1,
        time: now,
    };
    if !(-90.0..=90.0).contains(&p.0) || !p.1.is_finite() {
        // Only a corrupted frame decodes beyond the pole (e.g. a local decode near it).
        a.cpr.clear();
        a.local_ok = false;
        return Err(AdsbError::impossible(
            "lat",
            format!(
                "{address:06x} resolves to latitude {:.4}, beyond the pole",
                p.0
            ),
        ));
    }
    if let Some(rx) = cfg.receiver {
        let d = distance_m(rx, p);
        if d > cfg.max_receiver_range_m {
            a.cpr.clear();
            a.local_ok = false;
            return Err(AdsbError::impossible(
                "position",
                format!(
                    "{address:06x} at {:.5}, {:.5} is {:.0} km from the receiver, the limit is {:.0} km",
                    p.0,
                    p.1,
                    d / 1000.0,
                    cfg.max_receiver_range_m / 1000.0
                ),
            ));
        }
    }
    let pending = fresh(cfg, a.pending, now);
    let confirmed_by_pending =
        source != Source::Local && pending.is_some_and(|f| reachable(cfg, f, p, now));
    match fresh(cfg, a.track, now) {
        Some(track) if reachable(cfg, track, p, now) || confirmed_by_pending => {}
        Some(track) => {
            // Keep the track where it is; a global or SBS fix may still be the truth and is
            // remembered, but only an independent agreeing fix will move the track there.
            if source != Source::Local {
                a.pending = Some(candidate);
            }
            a.cpr.clear();
            a.local_ok = false;
            let dt_s = now.0.saturating_sub(track.time.0).max(0) as f64 / 1000.0;
            return Err(AdsbError::impossible(
                "position",
                format!(
                    "{address:06x} would jump {:.1} km in {dt_s:.1} s, beyond {} kt; track kept at {:.5}, {:.5}",
                    distance_m(track.pos(), p) / 1000.0,
                    cfg.max_speed_kt,
                    track.lat,
                    track.lon
                ),
            ));
        }
        None if source == Source::Global && !confirmed_by_pending => {
            a.pending = Some(candidate);
            // Discard the pair so the confirmation comes from two new frames.
            a.cpr.clear();
            return Err(AdsbError::Unconfirmed { address });
        }
        None => {}
    }
    a.track = Some(candidate);
    a.pending = None;
    a.local_ok = true;
    Ok(())
}

/// Resolves one CPR frame into a trusted position, or says why not.
fn cpr_fix(
    cfg: &TrackerConfig,
    a: &mut Aircraft,
    address: u32,
    kind: CprKind,
    frame: CprFrame,
    now: Timestamp,
) -> Result<(f64, f64), AdsbError> {
    if a.cpr.kind != kind {
        // Airborne and surface frames never pair; the newest kind wins the buffer.
        a.cpr.clear();
        a.cpr.kind = kind;
    }
    let window = match kind {
        CprKind::Airborne => cfg.pair_window_ms,
        CprKind::Surface => cfg.surface_pair_window_ms,
    };
    let partner = if frame.odd { a.cpr.even } else { a.cpr.odd }
        .filter(|t| now.0.saturating_sub(t.time.0).saturating_abs() <= window);
    let track = fresh(cfg, a.track, now);
    let reference = match kind {
        // Surface decodes need a nearby reference: the receiver first (always near an
        // airport it can see), else the aircraft's own recent position.
        CprKind::Surface => cfg
            .receiver
            .or(track.map(Fix::pos))
            .or(fresh(cfg, a.pending, now).map(Fix::pos)),
        CprKind::Airborne => None,
    };
    if let Some(partner) = partner {
        let (even, odd) = if frame.odd {
            (partner.value, frame)
        } else {
            (frame, partner.value)
        };
        match cpr::decode_global(kind, even, odd, frame.odd, reference, address) {
            Ok(p) => {
                judge(cfg, a, address, p, now, Source::Global)?;
                a.cpr.store(frame, now);
                return Ok(p);
            }
            Err(e @ AdsbError::CprZoneMismatch { .. }) => {
                // The partner is from the other side of a zone boundary: drop it, keep this
                // frame for the next pair.
                a.cpr.clear();
                a.cpr.store(frame, now);
                return Err(e);
            }
            Err(e @ AdsbError::NoReference { .. }) => {
                a.cpr.store(frame, now);
                return Err(e);
            }
            Err(e) => {
                // A pair resolving beyond the pole holds a corrupted frame; trust nothing
                // local until a fresh pair agrees with the track again.
                a.cpr.clear();
                a.local_ok = false;
                return Err(e);
            }
        }
    }
    if let (Some(track), true) = (track, a.local_ok) {
        let p = cpr::decode_local(kind, frame, track.pos());
        let range = match kind {
            CprKind::Airborne => cfg.max_local_range_m,
            CprKind::Surface => cfg.max_surface_local_range_m,
        };
        let d = distance_m(track.pos(), p);
        if d > range {
            a.cpr.clear();
            a.local_ok = false;
            return Err(AdsbError::impossible(
                "position",
                format!(
                    "local CPR decode of {address:06x} lands {:.0} km from its reference, beyond {:.0} km",
                    d / 1000.0,
                    range / 1000.0
                ),
            ));
        }
        judge(cfg, a, address, p, now, Source::Local)?;
        a.cpr.store(frame, now);
        return Ok(p);
    }
    a.cpr.store(frame, now);
    Err(AdsbError::NoCprPair {
        address,
        detail: format!(
            "{} {} frame stored; waiting for the opposite parity within {} ms",
            match kind {
                CprKind::Airborne => "airborne",
                CprKind::Surface => "surface",
            },
            if frame.odd { "odd" } else { "even" },
            window
        ),
    })
}

fn recent<T: Copy>(cfg: &TrackerConfig, v: Option<Timed<T>>, now: Timestamp) -> Option<T> {
    v.filter(|t| now.0.saturating_sub(t.time.0) <= cfg.data_max_age_ms)
        .map(|t| t.value)
}

/// Builds and validates the report for a newly trusted position.
fn build_report(
    cfg: &TrackerConfig,
    a: &Aircraft,
    address: u32,
    kind: AddressKind,
    lat: f64,
    lon: f64,
    now: Timestamp,
) -> Result<Report, AdsbError> {
    let mut attrs = Attributes::new();
    let mut num = |k: &'static str, v: f64| {
        attrs.insert(Text::const_new(k), AttrValue::Num(v));
    };
    let on_ground = a.on_ground == Some(true);
    num("on_ground", if on_ground { 1.0 } else { 0.0 });
    // Altitude policy (crate docs): hae from GNSS height when the aircraft sends it, else
    // barometric altitude corrected by the GNSS-minus-baro difference, else barometric
    // altitude as an approximation. `alt_source` says which.
    let baro = recent(cfg, a.baro_alt_ft, now);
    let gnss = recent(cfg, a.gnss_alt_ft, now);
    let delta = recent(cfg, a.geo_minus_baro_ft, now);
    let (hae, alt_source) = if on_ground {
        (None, None)
    } else {
        match (gnss, baro, delta) {
            (Some(g), _, _) => (Some(f64::from(g) * M_PER_FT), Some("gnss")),
            (None, Some(b), Some(d)) => (Some(f64::from(b + d) * M_PER_FT), Some("baro+geo_delta")),
            (None, Some(b), None) => (Some(f64::from(b) * M_PER_FT), Some("baro")),
            (None, None, _) => (None, None),
        }
    };
    if let (Some(b), false) = (baro, on_ground) {
        num("baro_alt_m", f64::from(b) * M_PER_FT);
    }
    if let Some(vr) = recent(cfg, a.vertical_rate_fpm, now) {
        num("vertical_rate", f64::from(vr) * M_PER_FT / 60.0);
    }
    if let Some(h) = recent(cfg, a.heading_deg, now) {
        num("heading", h);
    }
    if let Some((s, k)) = recent(cfg, a.airspeed, now) {
        let name = match k {
            AirspeedKind::Indicated => "ias",
            AirspeedKind::True => "tas",
        };
        num(name, f64::from(s) * MPS_PER_KT);
    }
    let mut text = |k: &'static str, v: Text| {
        attrs.insert(Text::const_new(k), AttrValue::Text(v));
    };
    text("icao", Text::from(format!("{:06x}", address & 0xFF_FFFF)));
    if let Some(src) = alt_source {
        text("alt_source", Text::const_new(src));
    }
    if let Some(sq) = a.squawk {
        text("squawk", Text::from(sq.to_string()));
    }
    if let Some(c) = a.category.filter(|c| c.code != 0) {
        text("category", Text::from(c.to_string()));
    }
    if let Some(e) = a.emergency {
        text("emergency", Text::const_new(e));
    }
    let (speed, course) = match (
        recent(cfg, a.ground_speed_kt, now),
        recent(cfg, a.track_deg, now),
    ) {
        (Some(s), Some(t)) => (Some(s * MPS_PER_KT), Some(t)),
        (Some(s), None) => (Some(s * MPS_PER_KT), None),
        _ => (None, None),
    };
    let cot_type = if a.category.is_some_and(EmitterCategory::is_surface) {
        cfg.surface_vehicle_cot_type.clone()
    } else {
        cfg.cot_type.clone()
    };
    let report = Report {
        uid: uid_for(address, kind),
        cot_type: Some(cot_type),
        callsign: a.callsign.clone(),
        lat,
        lon,
        hae,
        course,
        speed,
        // Positions are the aircraft's own GNSS fix relayed by radio.
        how: Some(Text::const_new("m-g")),
        time: now,
        stale: Some(now.plus_millis(cfg.stale_after_ms.max(0))),
        attributes: attrs,
        ..Report::default()
    };
    cfg.limits
        .validate(&report)
        .map_err(|e| AdsbError::ImpossibleValue {
            field: "report",
            detail: e.to_string(),
        })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_avr, encode};

    const ICAO: u32 = 0x4840D6;

    fn t(ms: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + ms)
    }

    fn pos(lat: f64, lon: f64, odd: bool) -> AdsbFrame {
        decode_frame(&encode::airborne_position(
            ICAO,
            Some(36_000),
            false,
            lat,
            lon,
            odd,
        ))
        .unwrap()
    }

    /// An aircraft flying east along 52.25° N at about 450 kt: 0.002° of longitude per 0.5 s.
    fn east(i: i64) -> (f64, f64) {
        (52.25, 4.0 + 0.002 * i as f64)
    }

    /// Feeds alternating even/odd frames for steps `from..to` (0.5 s apart) and returns the
    /// outcome of each.
    fn fly(tr: &mut AdsbTracker, from: i64, to: i64) -> Vec<Result<Option<Report>, AdsbError>> {
        (from..to)
            .map(|i| {
                let (lat, lon) = east(i);
                tr.ingest_frame(&pos(lat, lon, i % 2 == 1), t(500 * i))
            })
            .collect()
    }

    fn reasons(out: &[Result<Option<Report>, AdsbError>]) -> Vec<&'static str> {
        out.iter()
            .map(|r| match r {
                Ok(Some(_)) => "report",
                Ok(None) => "none",
                Err(e) => e.reason(),
            })
            .collect()
    }

    fn established() -> AdsbTracker {
        let mut tr = AdsbTracker::new(TrackerConfig::default());
        let out = fly(&mut tr, 0, 6);
        assert_eq!(
            reasons(&out),
            [
                "no_cpr_pair",
                "unconfirmed",
                "no_cpr_pair",
                "report",
                "report",
                "report"
            ]
        );
        tr
    }

    #[test]
    fn acquisition_needs_two_independent_pairs() {
        let tr = established();
        let (lat, lon, time) = tr.position(ICAO, AddressKind::Icao).unwrap();
        let (elat, elon) = east(5);
        assert!(distance_m((lat, lon), (elat, elon)) < 20.0);
        assert_eq!(time, t(2500));
    }

    #[test]
    fn riddle_pair_through_the_tracker() {
        let mut tr = AdsbTracker::new(TrackerConfig::default());
        let e = decode_avr("*8D40621D58C382D690C8AC2863A7;").unwrap();
        let o = decode_avr("*8D40621D58C386435CC412692AD6;").unwrap();
        let id = decode_avr("*8D40621D202CC371C32CE0576098;");
        // That identification frame is not CRC-valid for 40621D: proof the CRC covers the address.
        assert_eq!(id.unwrap_err().reason(), "bad_crc");
        assert_eq!(
            tr.ingest_frame(&e, t(0)).unwrap_err().reason(),
            "no_cpr_pair"
        );
        assert_eq!(
            tr.ingest_frame(&o, t(1000)).unwrap_err().reason(),
            "unconfirmed"
        );
        assert_eq!(
            tr.ingest_frame(&e, t(2000)).unwrap_err().reason(),
            "no_cpr_pair"
        );
        let r = tr.ingest_frame(&o, t(3000)).unwrap().unwrap();
        assert_eq!(r.uid, "icao-40621d");
        assert!((r.lat - 52.265_78).abs() < 1e-5 && (r.lon - 3.938_91).abs() < 1e-5);
        // Even frame newest: the Riddle's 52.2572, 3.9194.
        let r = tr.ingest_frame(&e, t(4000)).unwrap().unwrap();
        assert!((r.lat - 52.257_20).abs() < 1e-5 && (r.lon - 3.919_37).abs() < 1e-5);
        assert_eq!(r.hae, Some(38_000.0 * M_PER_FT));
        assert_eq!(r.cot_type.as_deref(), Some("a-u-A"));
        assert_eq!(r.how.as_deref(), Some("m-g"));
        assert_eq!(r.stale, Some(t(64_000)));
        assert_eq!(
            r.attributes.get("icao"),
            Some(&AttrValue::Text("40621d".into()))
        );
        assert_eq!(
            r.attributes.get("alt_source"),
            Some(&AttrValue::Text("baro".into()))
        );
        assert_eq!(r.attributes.get("on_ground"), Some(&AttrValue::Num(0.0)));
    }

    #[test]
    fn report_carries_identification_velocity_and_status() {
        let mut tr = established();
        let id = encode::identification(ICAO, EmitterCategory { set: 'A', code: 3 }, "KLM1023");
        assert_eq!(
            tr.ingest_frame(&decode_frame(&id).unwrap(), t(2600)),
            Ok(None)
        );
        let v = encode::velocity(ICAO, 450, 0, Some(-832), Some(550));
        assert_eq!(
            tr.ingest_frame(&decode_frame(&v).unwrap(), t(2700)),
            Ok(None)
        );
        let s = encode::status(ICAO, 1, Squawk(0o7700));
        assert_eq!(
            tr.ingest_frame(&decode_frame(&s).unwrap(), t(2800)),
            Ok(None)
        );
        let r = fly(&mut tr, 6, 7).remove(0).unwrap().unwrap();
        assert_eq!(r.callsign.as_deref(), Some("KLM1023"));
        assert!((r.speed.unwrap() - 450.0 * MPS_PER_KT).abs() < 0.6);
        assert!((r.course.unwrap() - 90.0).abs() < 0.2);
        // Baro 36,000 ft plus 550 ft GNSS-minus-baro.
        assert!((r.hae.unwrap() - 36_550.0 * M_PER_FT).abs() < 0.01);
        let a = &r.attributes;
        assert_eq!(
            a.get("alt_source"),
            Some(&AttrValue::Text("baro+geo_delta".into()))
        );
        assert_eq!(
            a.get("baro_alt_m"),
            Some(&AttrValue::Num(36_000.0 * M_PER_FT))
        );
        assert_eq!(a.get("squawk"), Some(&AttrValue::Text("7700".into())));
        assert_eq!(a.get("emergency"), Some(&AttrValue::Text("general".into())));
        assert_eq!(a.get("category"), Some(&AttrValue::Text("A3".into())));
        let Some(AttrValue::Num(vr)) = a.get("vertical_rate") else {
            panic!("{a:?}")
        };
        assert!((vr + 832.0 * M_PER_FT / 60.0).abs() < 1e-9);
    }

    #[test]
    fn gnss_height_is_hae() {
        let mut tr = AdsbTracker::new(TrackerConfig::default());
        let mut last = None;
        for i in 0..4 {
            let (lat, lon) = east(i);
            let f = encode::airborne_position(ICAO, Some(35_000), true, lat, lon, i % 2 == 1);
            last = Some(tr.ingest_frame(&decode_frame(&f).unwrap(), t(500 * i)));
        }
        let r = last.unwrap().unwrap().unwrap();
        assert_eq!(r.hae, Some(35_000.0 * M_PER_FT));
        assert_eq!(
            r.attributes.get("alt_source"),
            Some(&AttrValue::Text("gnss".into()))
        );
        assert_eq!(r.attributes.get("baro_alt_m"), None);
    }

    #[test]
    fn teleport_by_global_pair_is_rejected() {
        let mut tr = established();
        let before = tr.position(ICAO, AddressKind::Icao).unwrap();
        // A CRC-valid frame that lies: same parity as step 6 (even), 0.04° north, 1.5° east.
        let (lat, lon) = east(6);
        let forged = decode_frame(&encode::airborne_position(
            ICAO,
            Some(36_000),
            false,
            lat + 0.04,
            lon + 1.5,
            false,
        ))
        .unwrap();
        let err = tr.ingest_frame(&forged, t(3000)).unwrap_err();
        assert_eq!(err.reason(), "impossible_value", "{err}");
        assert!(err.to_string().contains("track kept"), "{err}");
        assert_eq!(tr.position(ICAO, AddressKind::Icao), Some(before));
        // The aircraft needs a fresh pair: the next genuine frame has no partner …
        assert_eq!(reasons(&fly(&mut tr, 7, 9)), ["no_cpr_pair", "report"]);
        let (lat, lon, _) = tr.position(ICAO, AddressKind::Icao).unwrap();
        assert!(distance_m((lat, lon), east(8)) < 20.0);
    }

    #[test]
    fn teleport_by_local_decode_is_rejected() {
        let mut tr = established();
        // Step 5 (odd) was the last frame. Ten seconds later the odd frame has left the pair
        // window, so even frames decode locally against the track.
        let (lat, lon) = east(25);
        let ok = tr
            .ingest_frame(&pos(lat, lon, false), t(12_500))
            .unwrap()
            .unwrap();
        assert!(distance_m((ok.lat, ok.lon), (lat, lon)) < 20.0);
        let before = tr.position(ICAO, AddressKind::Icao).unwrap();
        // Forged raw CPR: a position 60 km away that a local decode happily resolves.
        let c = cpr::encode(CprKind::Airborne, lat + 0.5, lon + 0.3, false);
        let forged = decode_frame(&encode::airborne_position_raw(
            ICAO,
            Some(36_000),
            false,
            c.lat,
            c.lon,
            false,
        ))
        .unwrap();
        let err = tr.ingest_frame(&forged, t(13_000)).unwrap_err();
        assert_eq!(err.reason(), "impossible_value", "{err}");
        assert_eq!(tr.position(ICAO, AddressKind::Icao), Some(before));
        // Local decoding is now off: a genuine even frame alone does not move the track.
        let (lat, lon) = east(27);
        assert_eq!(
            tr.ingest_frame(&pos(lat, lon, false), t(13_500))
                .unwrap_err()
                .reason(),
            "no_cpr_pair"
        );
        let (lat, lon) = east(28);
        assert!(tr.ingest_frame(&pos(lat, lon, true), t(14_000)).is_ok());
    }

    #[test]
    fn two_agreeing_pairs_move_a_wrong_track() {
        let mut tr = established();
        // The truth turns out to be 1° further north (the track came from a bad fix).
        let north = |i: i64| (53.25, 4.0 + 0.002 * i as f64);
        let mut out = Vec::new();
        for i in 6..11 {
            let (lat, lon) = north(i);
            out.push(tr.ingest_frame(&pos(lat, lon, i % 2 == 1), t(500 * i)));
        }
        // Step 6 pairs with the old step 5 and resolves to nonsense; 7+8 is the first clean
        // pair (rejected, remembered as pending); 9+10 agrees with it and moves the track.
        assert_eq!(
            reasons(&out),
            [
                "impossible_value",
                "no_cpr_pair",
                "impossible_value",
                "no_cpr_pair",
                "report"
            ]
        );
        let (lat, _, _) = tr.position(ICAO, AddressKind::Icao).unwrap();
        assert!((lat - 53.25).abs() < 0.001);
    }

    #[test]
    fn surface_positions_need_a_reference() {
        let frames: Vec<AdsbFrame> = (0..4)
            .map(|i| {
                let f = encode::surface_position(
                    ICAO,
                    Some(18.0),
                    Some(140.625),
                    52.3206,
                    4.7347,
                    i % 2 == 1,
                );
                decode_frame(&f).unwrap()
            })
            .collect();
        let mut tr = AdsbTracker::new(TrackerConfig::default());
        let _ = tr.ingest_frame(&frames[0], t(0));
        assert_eq!(
            tr.ingest_frame(&frames[1], t(5000)).unwrap_err().reason(),
            "no_reference"
        );
        let mut tr = AdsbTracker::new(TrackerConfig {
            receiver: Some((51.990, 4.375)),
            ..TrackerConfig::default()
        });
        let out: Vec<_> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| tr.ingest_frame(f, t(5000 * i as i64)))
            .collect();
        assert_eq!(
            reasons(&out),
            ["no_cpr_pair", "unconfirmed", "no_cpr_pair", "report"]
        );
        let r = out[3].clone().unwrap().unwrap();
        assert!(distance_m((r.lat, r.lon), (52.3206, 4.7347)) < 10.0);
        assert_eq!(r.hae, None);
        assert_eq!(r.course, Some(140.625));
        assert!((r.speed.unwrap() - 18.0 * MPS_PER_KT).abs() < 1e-9);
        assert_eq!(r.attributes.get("on_ground"), Some(&AttrValue::Num(1.0)));
    }

    #[test]
    fn receiver_range_bounds_positions() {
        let mut tr = AdsbTracker::new(TrackerConfig {
            receiver: Some((40.0, -74.0)),
            ..TrackerConfig::default()
        });
        let out = fly(&mut tr, 0, 2);
        assert_eq!(reasons(&out), ["no_cpr_pair", "impossible_value"]);
        assert!(
            out[1]
                .clone()
                .unwrap_err()
                .to_string()
                .contains("from the receiver")
        );
    }

    #[test]
    fn sbs_feeds_the_same_track() {
        let mut tr = AdsbTracker::new(TrackerConfig::default());
        let line = |ty: u8, rest: &str| format!("MSG,{ty},1,1,4840D6,1,,,,,{rest}");
        assert_eq!(
            tr.ingest_sbs(&line(1, "KLM1023,,,,,,,,,,,"), t(0)),
            Ok(None)
        );
        assert_eq!(
            tr.ingest_sbs(&line(4, ",,420,90,,,-640,,,,,0"), t(100)),
            Ok(None)
        );
        let r = tr
            .ingest_sbs(&line(3, ",36000,,,52.25,4.0,,,0,0,0,0"), t(200))
            .unwrap()
            .unwrap();
        assert_eq!(r.uid, "icao-4840d6");
        assert_eq!(r.callsign.as_deref(), Some("KLM1023"));
        assert_eq!(r.course, Some(90.0));
        assert!((r.speed.unwrap() - 420.0 * MPS_PER_KT).abs() < 1e-9);
        assert_eq!(r.hae, Some(36_000.0 * M_PER_FT));
        // 0.5° of latitude (55 km) in one second: rejected, the track stays.
        let err = tr
            .ingest_sbs(&line(3, ",36000,,,52.75,4.0,,,0,0,0,0"), t(1200))
            .unwrap_err();
        assert_eq!(err.reason(), "impossible_value");
        assert_eq!(tr.position(ICAO, AddressKind::Icao).unwrap().0, 52.25);
        // Normal progress is accepted; so is a second, agreeing report of the new place.
        assert!(
            tr.ingest_sbs(&line(3, ",36000,,,52.251,4.0,,,0,0,0,0"), t(1700))
                .is_ok()
        );
        let _ = tr.ingest_sbs(&line(3, ",36000,,,52.75,4.0,,,0,0,0,0"), t(2200));
        assert!(
            tr.ingest_sbs(&line(3, ",36000,,,52.751,4.0,,,0,0,0,0"), t(2700))
                .is_ok()
        );
        // Surface position (type 2): on the ground, no hae.
        let r = tr
            .ingest_sbs(&line(2, ",,10,180,52.7511,4.0,,,,,,-1"), t(3200))
            .unwrap()
            .unwrap();
        assert_eq!(r.hae, None);
        assert_eq!(r.attributes.get("on_ground"), Some(&AttrValue::Num(1.0)));
        assert_eq!(
            tr.ingest_sbs("STA,,1,1,4840D6,1,,,,,RM", t(0))
                .unwrap_err()
                .reason(),
            "unsupported"
        );
    }

    #[test]
    fn bounded_and_expiring() {
        let mut tr = AdsbTracker::new(TrackerConfig {
            max_aircraft: 3,
            ..TrackerConfig::default()
        });
        for a in 0..5u32 {
            let f = encode::identification(a, EmitterCategory { set: 'A', code: 1 }, "X");
            tr.ingest_frame(&decode_frame(&f).unwrap(), t(i64::from(a)))
                .unwrap();
        }
        assert_eq!(tr.len(), 3);
        assert_eq!(tr.evicted(), 2);
        assert_eq!(tr.expire(t(60_004)), 2, "aircraft 2 is 60.002 s silent");
        assert_eq!(tr.expire(t(1_000_000)), 1);
        assert!(tr.is_empty());

        // An aircraft silent past the expiry starts over and needs a new pair.
        let mut tr = established();
        let (lat, lon) = east(200);
        assert_eq!(
            tr.ingest_frame(&pos(lat, lon, false), t(100_000))
                .unwrap_err()
                .reason(),
            "no_cpr_pair"
        );
    }

    #[test]
    fn surface_vehicle_category_gets_ground_type() {
        let mut tr = AdsbTracker::new(TrackerConfig {
            cot_type: "a-n-A-C-F".into(),
            ..TrackerConfig::default()
        });
        let f = encode::identification(ICAO, EmitterCategory { set: 'C', code: 1 }, "FIRE1");
        tr.ingest_frame(&decode_frame(&f).unwrap(), t(0)).unwrap();
        let line = "MSG,3,1,1,4840D6,1,,,,,,,,,52.0,4.0,,,,,,";
        let r = tr.ingest_sbs(line, t(10)).unwrap().unwrap();
        assert_eq!(r.cot_type.as_deref(), Some("a-u-G"));
        let r = tr
            .ingest_sbs("MSG,3,1,1,4840D7,1,,,,,,,,,52.0,4.0,,,,,,", t(10))
            .unwrap()
            .unwrap();
        assert_eq!(r.cot_type.as_deref(), Some("a-n-A-C-F"));
        assert_eq!(uid_for(0xABC, AddressKind::NonIcao), "adsb-nonicao-000abc");
    }
}
