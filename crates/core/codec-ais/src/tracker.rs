//! [`AisTracker`]: the sans-IO state machine that turns AIS messages into
//! [`rampart_model::Report`]s, remembering each vessel's static data.
//!
//! # Reports
//!
//! Position-bearing messages (1, 2, 3, 4, 18, 19, 21, 27) become reports; static messages
//! (5, 24) only update the vessel memory and the next position report carries them.
//!
//! - uid: `ais-<mmsi>` (the prefix is configurable);
//! - callsign: the vessel or aid name from types 5, 19, 21 and 24A, remembered per MMSI;
//! - course/speed: COG in degrees, SOG knots × 1852/3600 → m/s;
//! - time: `now` as passed in (AIS carries only the second of the minute);
//! - `how`: `m-g` (GNSS position reported by the station);
//! - ce model: position accuracy flag high (DGNSS, ≤ 10 m) → 10 m, low → 30 m; type 27,
//!   quantised to 1/10 minute, → 185 m;
//! - attributes: `mmsi`, `ais_class`, `nav_status` (0–14), `rot` (°/min), `heading`,
//!   `imo`, `ship_type`, `destination`, `ais_callsign`, `draught`, `length`, `beam`, and for
//!   aids `aid_type`, `virtual_aid`, `off_position`.
//!
//! # CoT types
//!
//! `{a}` is the configured affiliation atom (default `n`, neutral).
//!
//! | source                             | CoT type          | 2525C meaning            |
//! |------------------------------------|-------------------|--------------------------|
//! | ship type 30 fishing               | `a-{a}-S-X-F`     | fishing vessel           |
//! | 31, 32 towing                      | `a-{a}-S-X-M-T-O` | towing vessel            |
//! | 52 tug                             | `a-{a}-S-X-M-T-U` | tug                      |
//! | 36 sailing, 37 pleasure            | `a-{a}-S-X-R`     | leisure craft            |
//! | 55 law enforcement                 | `a-{a}-S-X-L`     | law enforcement vessel   |
//! | 40–49 high-speed craft             | `a-{a}-S-X-M`     | merchant ship            |
//! | 60–69 passenger                    | `a-{a}-S-X-M-P`   | passenger ship           |
//! | 70–79 cargo                        | `a-{a}-S-X-M-C`   | cargo ship               |
//! | 80–89 tanker                       | `a-{a}-S-X-M-O`   | oiler/tanker             |
//! | 59 non-combatant (RR 18)           | `a-{a}-S-N`       | non-combatant            |
//! | 20–29, 33, 34, 50, 51, 53, 54, 58  | `a-{a}-S-X`       | non-military             |
//! | 35 military, 0, 90–99, other       | `a-{a}-S`         | sea surface track        |
//! | type 4 base station                | `a-{a}-G-I`       | ground installation      |
//! | type 21 aid to navigation          | `a-{a}-G-I`       | installation (fixed mark)|
//!
//! Base station and aid types are configurable ([`TrackerConfig::base_station_type`],
//! [`TrackerConfig::aid_to_navigation_type`]).
//!
//! # Vessel memory
//!
//! Static data lives in a map bounded by [`TrackerConfig::max_vessels`] with least-recently
//! used eviction: each touch appends `(mmsi, generation)` to a queue; eviction pops entries
//! until one matches its vessel's current generation. The queue is compacted whenever it
//! exceeds twice the map bound, so it is bounded too and costs amortised O(1) per message.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use rampart_model::{AttrValue, Attributes, Limits, Report, Text, Timestamp, Uid};

use crate::assembler::{Assembler, AssemblerConfig};
use crate::messages::{AisMessage, Dimensions, StaticDataReport, decode_message};
use crate::{AisError, KNOTS_TO_MPS};

/// Tuning of an [`AisTracker`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerConfig {
    /// Fragment reassembly bounds.
    pub assembler: AssemblerConfig,
    /// Limits every report is validated against.
    pub limits: Limits,
    /// CoT affiliation atom for AIS tracks (`n` neutral by default; `u`, `f`, `h`, …).
    pub affiliation: char,
    /// Most vessels whose static data is remembered (default 100,000).
    pub max_vessels: usize,
    /// Uid prefix before the MMSI.
    pub uid_prefix: Text,
    /// CoT type of base stations after `a-{affiliation}-`.
    pub base_station_type: Text,
    /// CoT type of aids to navigation after `a-{affiliation}-`.
    pub aid_to_navigation_type: Text,
    /// If set, reports carry `stale = now + stale_after_ms`; otherwise the engine default.
    pub stale_after_ms: Option<i64>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            assembler: AssemblerConfig::default(),
            limits: Limits::default(),
            affiliation: 'n',
            max_vessels: 100_000,
            uid_prefix: Text::const_new("ais-"),
            base_station_type: Text::const_new("G-I"),
            aid_to_navigation_type: Text::const_new("G-I"),
            stale_after_ms: None,
        }
    }
}

/// Counts of what the tracker saw that are not errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerCounters {
    /// Messages decoded.
    pub messages: u64,
    /// Reports emitted.
    pub reports: u64,
    /// Static messages absorbed into vessel memory (5, 24).
    pub static_updates: u64,
    /// Position messages without a position (lat/lon not available).
    pub no_position: u64,
    /// Vessels forgotten because the memory bound was reached.
    pub vessels_evicted: u64,
}

/// What is remembered about one MMSI.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VesselInfo {
    /// Vessel or aid name.
    pub name: Option<Text>,
    /// Radio call sign.
    pub callsign: Option<Text>,
    /// Ship and cargo type.
    pub ship_type: Option<u8>,
    /// IMO number.
    pub imo: Option<u32>,
    /// Destination.
    pub destination: Option<Text>,
    /// Draught, metres.
    pub draught: Option<f64>,
    /// Hull dimensions.
    pub dimensions: Option<Dimensions>,
    generation: u64,
}

/// The sans-IO AIS tracker for one feed.
pub struct AisTracker {
    config: TrackerConfig,
    assembler: Assembler,
    vessels: HashMap<u32, VesselInfo>,
    lru: VecDeque<(u32, u64)>,
    generation: u64,
    counters: TrackerCounters,
}

/// The CoT type suffix (after `a-{affiliation}-`) for an AIS ship and cargo type.
pub fn ship_type_suffix(ship_type: Option<u8>) -> &'static str {
    match ship_type {
        Some(30) => "S-X-F",
        Some(31 | 32) => "S-X-M-T-O",
        Some(52) => "S-X-M-T-U",
        Some(36 | 37) => "S-X-R",
        Some(55) => "S-X-L",
        Some(40..=49) => "S-X-M",
        Some(60..=69) => "S-X-M-P",
        Some(70..=79) => "S-X-M-C",
        Some(80..=89) => "S-X-M-O",
        Some(59) => "S-N",
        Some(20..=29 | 33 | 34 | 50 | 51 | 53 | 54 | 58) => "S-X",
        _ => "S",
    }
}

fn text_opt(t: &Text) -> Option<Text> {
    (!t.is_empty()).then(|| t.clone())
}

/// Position-bearing content common to every reporting message.
struct Fix {
    mmsi: u32,
    class: &'static str,
    lat: Option<f64>,
    lon: Option<f64>,
    cog: Option<f64>,
    sog_knots: Option<f64>,
    ce: f64,
}

impl AisTracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        AisTracker {
            assembler: Assembler::new(config.assembler.clone()),
            config,
            vessels: HashMap::new(),
            lru: VecDeque::new(),
            generation: 0,
            counters: TrackerCounters::default(),
        }
    }

    /// What the tracker has seen.
    pub fn counters(&self) -> TrackerCounters {
        self.counters
    }

    /// The reassembler (for its counters).
    pub fn assembler(&self) -> &Assembler {
        &self.assembler
    }

    /// Static data remembered for `mmsi`.
    pub fn vessel(&self, mmsi: u32) -> Option<&VesselInfo> {
        self.vessels.get(&mmsi)
    }

    /// Vessels remembered.
    pub fn vessel_count(&self) -> usize {
        self.vessels.len()
    }

    /// Frames, reassembles and decodes one line; returns a report when it completes a
    /// position-bearing message.
    pub fn feed(&mut self, line: &[u8], now: Timestamp) -> Result<Option<Report>, AisError> {
        match self.assembler.feed(line, now)? {
            Some(payload) => {
                let msg = decode_message(&payload)?;
                self.ingest(&msg, now)
            }
            None => Ok(None),
        }
    }

    /// Drops timed-out fragment groups (call now and then when input is idle).
    pub fn poll(&mut self, now: Timestamp) {
        self.assembler.expire(now);
    }

    /// Absorbs one decoded message; returns a report for position-bearing messages.
    pub fn ingest(&mut self, msg: &AisMessage, now: Timestamp) -> Result<Option<Report>, AisError> {
        self.counters.messages += 1;
        let mmsi = msg.mmsi();
        if mmsi == 0 || mmsi > 999_999_999 {
            return Err(AisError::Impossible {
                field: "MMSI",
                value: format!("{mmsi} is not a valid MMSI"),
            });
        }
        let mut attrs = Attributes::new();
        let num = |attrs: &mut Attributes, k: &'static str, v: f64| {
            attrs.insert(Text::const_new(k), AttrValue::Num(v));
        };
        let (fix, type_suffix): (Fix, Option<Text>) = match msg {
            AisMessage::Position(p) => {
                if p.nav_status != 15 {
                    num(&mut attrs, "nav_status", f64::from(p.nav_status));
                }
                if let Some(r) = p.rot_deg_per_min() {
                    num(&mut attrs, "rot", r);
                }
                if let Some(h) = p.heading {
                    num(&mut attrs, "heading", f64::from(h));
                }
                (
                    Fix {
                        mmsi,
                        class: "A",
                        lat: p.lat,
                        lon: p.lon,
                        cog: p.cog,
                        sog_knots: p.sog,
                        ce: if p.accuracy { 10.0 } else { 30.0 },
                    },
                    None,
                )
            }
            AisMessage::ClassB(p) => {
                if let Some(h) = p.heading {
                    num(&mut attrs, "heading", f64::from(h));
                }
                (
                    Fix {
                        mmsi,
                        class: "B",
                        lat: p.lat,
                        lon: p.lon,
                        cog: p.cog,
                        sog_knots: p.sog,
                        ce: if p.accuracy { 10.0 } else { 30.0 },
                    },
                    None,
                )
            }
            AisMessage::ExtendedClassB(p) => {
                let info = self.touch(mmsi);
                if let Some(n) = text_opt(&p.name) {
                    info.name = Some(n);
                }
                if p.ship_type != 0 {
                    info.ship_type = Some(p.ship_type);
                }
                if p.dimensions != Dimensions::default() {
                    info.dimensions = Some(p.dimensions);
                }
                if let Some(h) = p.heading {
                    num(&mut attrs, "heading", f64::from(h));
                }
                (
                    Fix {
                        mmsi,
                        class: "B",
                        lat: p.lat,
                        lon: p.lon,
                        cog: p.cog,
                        sog_knots: p.sog,
                        ce: if p.accuracy { 10.0 } else { 30.0 },
                    },
                    None,
                )
            }
            AisMessage::LongRange(p) => {
                if p.nav_status != 15 {
                    num(&mut attrs, "nav_status", f64::from(p.nav_status));
                }
                (
                    Fix {
                        mmsi,
                        class: "long_range",
                        lat: p.lat,
                        lon: p.lon,
                        cog: p.cog.map(f64::from),
                        sog_knots: p.sog.map(f64::from),
                        ce: 185.0,
                    },
                    None,
                )
            }
            AisMessage::BaseStation(p) => (
                Fix {
                    mmsi,
                    class: "base_station",
                    lat: p.lat,
                    lon: p.lon,
                    cog: None,
                    sog_knots: None,
                    ce: if p.accuracy { 10.0 } else { 30.0 },
                },
                Some(self.config.base_station_type.clone()),
            ),
            AisMessage::AidToNavigation(p) => {
                let info = self.touch(mmsi);
                if let Some(n) = text_opt(&p.name) {
                    info.name = Some(n);
                }
                num(&mut attrs, "aid_type", f64::from(p.aid_type));
                num(
                    &mut attrs,
                    "virtual_aid",
                    f64::from(u8::from(p.virtual_aid)),
                );
                num(
                    &mut attrs,
                    "off_position",
                    f64::from(u8::from(p.off_position)),
                );
                (
                    Fix {
                        mmsi,
                        class: "aid_to_navigation",
                        lat: p.lat,
                        lon: p.lon,
                        cog: None,
                        sog_knots: None,
                        ce: if p.accuracy { 10.0 } else { 30.0 },
                    },
                    Some(self.config.aid_to_navigation_type.clone()),
                )
            }
            AisMessage::StaticVoyage(s) => {
                let info = self.touch(mmsi);
                info.name = text_opt(&s.name).or(info.name.take());
                info.callsign = text_opt(&s.callsign).or(info.callsign.take());
                if s.ship_type != 0 {
                    info.ship_type = Some(s.ship_type);
                }
                info.imo = s.imo.or(info.imo);
                info.destination = text_opt(&s.destination).or(info.destination.take());
                info.draught = s.draught.or(info.draught);
                if s.dimensions != Dimensions::default() {
                    info.dimensions = Some(s.dimensions);
                }
                self.counters.static_updates += 1;
                return Ok(None);
            }
            AisMessage::StaticData(StaticDataReport::PartA { name, .. }) => {
                let info = self.touch(mmsi);
                info.name = text_opt(name).or(info.name.take());
                self.counters.static_updates += 1;
                return Ok(None);
            }
            AisMessage::StaticData(StaticDataReport::PartB {
                ship_type,
                callsign,
                dimensions,
                ..
            }) => {
                let info = self.touch(mmsi);
                if *ship_type != 0 {
                    info.ship_type = Some(*ship_type);
                }
                info.callsign = text_opt(callsign).or(info.callsign.take());
                if *dimensions != Dimensions::default() {
                    info.dimensions = Some(*dimensions);
                }
                self.counters.static_updates += 1;
                return Ok(None);
            }
        };
        let (Some(lat), Some(lon)) = (fix.lat, fix.lon) else {
            self.counters.no_position += 1;
            return Ok(None);
        };
        // Position reports refresh the vessel's place in the LRU order, if it is known.
        let info = if self.vessels.contains_key(&mmsi) {
            Some(self.touch(mmsi).clone())
        } else {
            None
        };
        let ship_type = info.as_ref().and_then(|i| i.ship_type);
        let suffix = type_suffix.unwrap_or_else(|| Text::const_new(ship_type_suffix(ship_type)));
        let mut cot_type = Text::default();
        let _ = write!(cot_type, "a-{}-{}", self.config.affiliation, suffix);
        let mut uid = Uid::default();
        let _ = write!(uid, "{}{}", self.config.uid_prefix, fix.mmsi);

        num(&mut attrs, "mmsi", f64::from(mmsi));
        attrs.insert(
            Text::const_new("ais_class"),
            AttrValue::Text(Text::const_new(fix.class)),
        );
        let mut callsign = None;
        if let Some(i) = &info {
            callsign = i.name.clone();
            if let Some(v) = i.imo {
                num(&mut attrs, "imo", f64::from(v));
            }
            if let Some(v) = i.ship_type {
                num(&mut attrs, "ship_type", f64::from(v));
            }
            if let Some(v) = i.draught {
                num(&mut attrs, "draught", v);
            }
            if let Some(d) = i.dimensions {
                if let Some(l) = d.length() {
                    num(&mut attrs, "length", f64::from(l));
                }
                if let Some(b) = d.beam() {
                    num(&mut attrs, "beam", f64::from(b));
                }
            }
            if let Some(v) = &i.destination {
                attrs.insert(Text::const_new("destination"), AttrValue::Text(v.clone()));
            }
            if let Some(v) = &i.callsign {
                attrs.insert(Text::const_new("ais_callsign"), AttrValue::Text(v.clone()));
            }
        }
        let report = Report {
            uid,
            cot_type: Some(cot_type),
            callsign,
            lat,
            lon,
            hae: None,
            ce: Some(fix.ce),
            le: None,
            // COG is 0..=359.9 after decoding; 360 would be the sentinel.
            course: fix.cog,
            speed: fix.sog_knots.map(|k| k * KNOTS_TO_MPS),
            how: Some(Text::const_new("m-g")),
            time: now,
            start: None,
            stale: self.config.stale_after_ms.map(|ms| now.plus_millis(ms)),
            attributes: attrs,
            label: None,
            id: None,
            provenance: Default::default(),
        };
        self.config
            .limits
            .validate(&report)
            .map_err(|e| AisError::Impossible {
                field: "report",
                value: e.to_string(),
            })?;
        self.counters.reports += 1;
        Ok(Some(report))
    }

    /// Returns the vessel entry for `mmsi`, creating it (evicting the least recently used
    /// vessel at the bound) and marking it most recently used.
    fn touch(&mut self, mmsi: u32) -> &mut VesselInfo {
        self.generation += 1;
        let generation = self.generation;
        if !self.vessels.contains_key(&mmsi) {
            while self.vessels.len() >= self.config.max_vessels.max(1) {
                let Some((old, g)) = self.lru.pop_front() else {
                    break;
                };
                if self.vessels.get(&old).is_some_and(|v| v.generation == g) {
                    self.vessels.remove(&old);
                    self.counters.vessels_evicted += 1;
                }
            }
        }
        self.lru.push_back((mmsi, generation));
        if self.lru.len() > 2 * self.config.max_vessels.max(1) + 16 {
            let vessels = &self.vessels;
            self.lru
                .retain(|(m, g)| vessels.get(m).is_some_and(|v| v.generation == *g) || *m == mmsi);
        }
        let entry = self.vessels.entry(mmsi).or_default();
        entry.generation = generation;
        entry
    }
}
