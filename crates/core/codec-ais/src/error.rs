//! The crate's error type, [`AisError`], and its machine-readable reasons.
//!
//! Framing errors (checksum, length, garbage) come from the NMEA codec unchanged, so one
//! metrics vocabulary covers both crates.

use rampart_codec_nmea::NmeaError;

/// Why an AIS sentence or message was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AisError {
    /// The NMEA framing failed (checksum, length, start character, tag block…).
    #[error(transparent)]
    Frame(#[from] NmeaError),
    /// A well-framed sentence that is not `VDM` or `VDO`.
    #[error("sentence type {0:?} is not AIS (VDM or VDO)")]
    NotAis(String),
    /// A VDM/VDO field does not parse or is out of range.
    #[error("{sentence} field {index} ({name}): {value:?} {problem}")]
    BadField {
        /// `VDM` or `VDO`.
        sentence: &'static str,
        /// 1-based field number.
        index: usize,
        /// What the field means.
        name: &'static str,
        /// The text as received.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A payload character outside the 6-bit armoring alphabet.
    #[error("payload character {ch:?} at position {position} is not AIS 6-bit armoring")]
    BadPayloadChar {
        /// The character.
        ch: char,
        /// Its 0-based position in the fragment's payload.
        position: usize,
    },
    /// A reassembled payload longer than the bound.
    #[error("payload of {bits} bits exceeds the limit of {max} bits")]
    PayloadTooLong {
        /// Bits the payload would have.
        bits: usize,
        /// The limit.
        max: usize,
    },
    /// A fragment that does not continue any pending message.
    #[error("orphan fragment {number} of {count} (channel {channel}, sequence id {seq_id}): {why}")]
    OrphanFragment {
        /// This fragment's number.
        number: u8,
        /// Fragments in its message.
        count: u8,
        /// Radio channel, or `-` when none.
        channel: char,
        /// Sequential message id, or `-` when none.
        seq_id: char,
        /// What was expected instead.
        why: String,
    },
    /// A message type this crate does not decode.
    #[error("AIS message type {0} is not supported")]
    UnsupportedMessage(u8),
    /// A payload shorter than its message type needs.
    #[error("AIS message type {msg_type} has {bits} bits, needs at least {need}")]
    Truncated {
        /// Message type (0 when the payload is too short to hold one).
        msg_type: u8,
        /// Bits present.
        bits: usize,
        /// Bits needed.
        need: usize,
    },
    /// A value no real vessel or station can have (e.g. latitude 95°, MMSI 0).
    #[error("impossible value: {field} {value}")]
    Impossible {
        /// The field, e.g. `latitude`.
        field: &'static str,
        /// What it held and why it is impossible.
        value: String,
    },
}

impl AisError {
    /// A short machine-readable reason, used as a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            AisError::Frame(e) => e.reason(),
            AisError::NotAis(_) => "unsupported_sentence",
            AisError::BadField { .. } | AisError::BadPayloadChar { .. } => "bad_field",
            AisError::PayloadTooLong { .. } => "too_long",
            AisError::OrphanFragment { .. } => "orphan_fragment",
            AisError::UnsupportedMessage(_) => "unsupported_message",
            AisError::Truncated { .. } => "truncated",
            AisError::Impossible { .. } => "impossible_value",
        }
    }
}
