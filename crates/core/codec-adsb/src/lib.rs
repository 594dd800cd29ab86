//! # rampart-codec-adsb
//!
//! ADS-B (1090 MHz extended squitter) into Rampart [`Report`](rampart_model::Report)s. Pure
//! functions and a sans-IO tracker: no sockets, threads or clocks; every time is passed in.
//!
//! - [`parse_avr`] → [`RawFrame`]: raw AVR text lines (`*…;`, `@…;`);
//! - [`decode_frame`] → [`AdsbFrame`]: CRC-24 check, DF17/DF18, ME by type code
//!   (identification, surface position, airborne position baro/GNSS, velocity, status);
//! - [`parse_sbs`] → [`SbsMessage`]: SBS-1 BaseStation `MSG` lines, types 1–8;
//! - [`cpr`]: NL, global (pair) and local (reference) CPR decoding, airborne and surface;
//! - [`AdsbTracker`]: bounded per-aircraft state that emits a report only for a position it
//!   trusts. A track is built only from valid CPR pairs: a bad decode never teleports an
//!   aircraft (see [`AdsbTracker`] for the rules);
//! - [`encode`]: valid frames from fields, for tests and simulators.
//!
//! Every rejection is an [`AdsbError`] whose [`AdsbError::reason`] is a metrics label:
//! `truncated`, `bad_field`, `bad_crc`, `unsupported`, `impossible_value`, `no_cpr_pair`,
//! `cpr_zone_mismatch`, `no_reference`, `unconfirmed`.
//!
//! ## Reports
//!
//! | field        | value                                                                  |
//! |--------------|------------------------------------------------------------------------|
//! | `uid`        | `icao-<6 lowercase hex>`; non-ICAO addresses `adsb-nonicao-<hex>`      |
//! | `type`       | [`TrackerConfig::cot_type`], default `a-u-A`; emitters of category set C (surface vehicles, obstacles) get [`TrackerConfig::surface_vehicle_cot_type`], default `a-u-G` |
//! | `callsign`   | from identification (TC 1–4) or SBS, padding removed                  |
//! | `lat`, `lon` | the trusted position                                                   |
//! | `hae`        | see the altitude policy below; `None` on the ground                    |
//! | `course`     | track over ground, degrees true (velocity or surface movement)         |
//! | `speed`      | ground speed, knots converted to m/s                                   |
//! | `how`        | `m-g`: the aircraft's own GNSS fix relayed by radio                    |
//! | `stale`      | `time` + [`TrackerConfig::stale_after_ms`] (60 s)                      |
//!
//! Attributes: `icao` (hex text), `squawk` (4 octal digits), `vertical_rate` (m/s, up
//! positive), `on_ground` (0/1), `category` (e.g. `A3`, omitted when 0), `baro_alt_m`,
//! `alt_source`, `emergency` (e.g. `general`, only when declared), `heading` (degrees),
//! `ias`/`tas` (m/s).
//!
//! **Why `a-u-A`.** ADS-B says nothing about affiliation and military aircraft fly with it,
//! so the default is unknown. An edge that only sees civil traffic (an airport feed) sets
//! `cot_type = "a-n-A-C-F"` in its configuration.
//!
//! ## Altitude policy
//!
//! Barometric altitude (TC 9–18, SBS) is pressure altitude against 1013.25 hPa, not a height
//! above the ellipsoid: the two differ by hundreds of metres with weather and geoid. So:
//!
//! 1. GNSS height (TC 20–22) is HAE by definition and is used as is;
//! 2. else barometric altitude plus the GNSS-minus-baro difference that velocity messages
//!    carry (TC 19) gives the GNSS height, which is used;
//! 3. else barometric altitude is used as an approximation (errors of ±300 m are normal).
//!
//! The `alt_source` attribute says which (`gnss`, `baro+geo_delta`, `baro`) and
//! `baro_alt_m` always carries the barometric value, so a consumer that needs flight
//! levels has them.
//!
//! **GNSS height coding.** TC 20–22 altitude is decoded like the barometric field (25 ft
//! steps, DO-260B §2.2.3.2.3.4.3, as dump1090 and readsb do). pyModeS 3.6.1 reads it as
//! metres; the oracle test pins that difference explicitly.

mod avr;
pub mod cpr;
mod crc;
pub mod encode;
mod error;
mod frame;
mod sbs;
mod tracker;

pub use avr::{LONG_FRAME_BYTES, RawFrame, SHORT_FRAME_BYTES, parse_avr};
pub use crc::{POLY as CRC24_POLY, crc24, remainder as crc_remainder};
pub use error::{AdsbError, OrdF64};
pub use frame::{
    AddressKind, AdsbFrame, AdsbMessage, AirbornePosition, AircraftStatus, AirspeedKind,
    AltitudeSource, CprFrame, EmitterCategory, Identification, Squawk, SurfacePosition, Velocity,
    VerticalRateSource, ac12_to_feet, decode_frame, emergency_name, id13_to_squawk,
    movement_to_knots,
};
pub use sbs::{MAX_SBS_LINE_BYTES, SbsDateTime, SbsMessage, parse_sbs};
pub use tracker::{AdsbTracker, TrackerConfig, distance_m, uid_for};

/// Parses and decodes one AVR line: [`parse_avr`] then [`decode_frame`].
pub fn decode_avr(line: &str) -> Result<AdsbFrame, AdsbError> {
    decode_frame(parse_avr(line)?.bytes())
}
