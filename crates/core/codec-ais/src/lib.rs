//! # rampart-codec-ais
//!
//! AIS (`!AIVDM` / `!AIVDO`) → Rampart reports. Pure and sans-IO: no sockets, threads or
//! clocks (the caller passes `now`). It owns:
//!
//! - [`parse_fragment`]: the VDM/VDO fields of a sentence framed by the NMEA codec;
//! - [`Payload`]: 6-bit de-armoring into a fixed stack buffer and the bit reader;
//! - [`Assembler`]: bounded, time-limited multi-fragment reassembly;
//! - [`decode_message`]: typed messages 1, 2, 3, 4, 5, 18, 19, 21, 24, 27 with scaling and
//!   "not available" sentinels mapped to `None`;
//! - [`AisTracker`]: messages → [`rampart_model::Report`]s with remembered vessel names;
//! - [`AisError`]: every rejection, with a machine-readable [`AisError::reason`].
//!
//! Single-fragment messages decode without allocation up to the report.

mod assembler;
mod bits;
mod error;
mod messages;
mod tracker;

pub use assembler::{Assembler, AssemblerConfig, AssemblerCounters, Fragment, parse_fragment};
pub use bits::{MAX_PAYLOAD_BITS, Payload};
pub use error::AisError;
pub use messages::{
    AidToNavigation, AisMessage, BaseStationReport, ClassBPosition, Dimensions, Eta,
    ExtendedClassB, LongRangePosition, PositionReport, StaticDataReport, StaticVoyageData,
    decode_message,
};
pub use rampart_codec_nmea::KNOTS_TO_MPS;
pub use tracker::{AisTracker, TrackerConfig, TrackerCounters, VesselInfo, ship_type_suffix};

/// Frames, parses and decodes a single-fragment sentence without any state. Multi-fragment
/// sentences need an [`Assembler`]; given one here they are an `orphan_fragment`.
pub fn decode_single(
    line: &[u8],
    opts: &rampart_codec_nmea::FrameOptions,
) -> Result<AisMessage, AisError> {
    let frame = rampart_codec_nmea::parse_frame(line, opts)?;
    let f = parse_fragment(&frame)?;
    if f.count != 1 {
        return Err(AisError::OrphanFragment {
            number: f.number,
            count: f.count,
            channel: f.channel.map_or('-', char::from),
            seq_id: f.seq_id.map_or('-', |d| char::from(b'0' + d)),
            why: "a multi-fragment message needs an Assembler".into(),
        });
    }
    decode_message(&Payload::from_armored(f.payload, f.fill_bits)?)
}
