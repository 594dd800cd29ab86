//! # rampart-codec-nmea
//!
//! NMEA 0183 GNSS sentences → Rampart reports. Pure and sans-IO: no sockets, threads or
//! clocks (the caller passes `now`), so every function can be unit tested and fuzzed.
//! It owns:
//!
//! - [`parse_frame`]: framing (`$`/`!`, talker, type, fields, `*hh` checksum, NMEA 4.x tag
//!   block, length limit), allocation-free, shared with the AIS codec;
//! - [`decode`] / [`decode_frame`]: typed [`Gga`], [`Rmc`], [`Vtg`], [`Gll`], [`Gsa`],
//!   [`Gsv`], [`Zda`] sentences, borrowing the line, allocation-free on success;
//! - [`GpsSource`]: a per-receiver state machine combining one epoch's sentences into one
//!   [`rampart_model::Report`];
//! - [`NmeaError`]: every rejection, with a message naming what is wrong and a
//!   machine-readable [`NmeaError::reason`].

mod error;
mod frame;
mod num;
mod sentences;
mod source;

pub use error::NmeaError;
pub use frame::{Frame, FrameOptions, TagBlock, Talker, checksum, parse_frame};
pub use num::{Date, TimeOfDay, date_time_near};
pub use sentences::{
    Gga, Gll, Gsa, Gsv, LatLon, Rmc, SatelliteInView, Sentence, Vtg, Zda, decode, decode_frame,
};
pub use source::{
    GpsCounters, GpsSource, GpsSourceConfig, KNOTS_TO_MPS, SourceMapping, quality_from_mode, uere_m,
};
