//! The one error type of the crate, [`NmeaError`], and its machine-readable reasons.
//!
//! Every variant says what is wrong in words a field engineer can act on, and maps to a
//! short, stable [`NmeaError::reason`] used as a metrics label. Values copied into errors come
//! from a sentence that already passed the length limit, so errors stay small.

/// Why a sentence was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NmeaError {
    /// Nothing but whitespace or line endings.
    #[error("sentence is empty")]
    Empty,
    /// The first byte is not `$` or `!` (after an optional tag block).
    #[error("sentence must start with '$' or '!', got {0}")]
    BadStart(String),
    /// A byte outside printable ASCII.
    #[error("byte 0x{byte:02X} at offset {offset} is not printable ASCII")]
    NotAscii {
        /// The offending byte.
        byte: u8,
        /// Its offset in the line.
        offset: usize,
    },
    /// Longer than [`crate::FrameOptions::max_sentence_len`] (or the tag block limit).
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLong {
        /// `sentence` or `tag block`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The `*hh` checksum does not match the XOR of the sentence.
    #[error("checksum mismatch: computed {computed:02X}, sentence says {stated:02X}")]
    BadChecksum {
        /// XOR of the bytes between the start character and `*`.
        computed: u8,
        /// The value after `*`.
        stated: u8,
    },
    /// The text after `*` is not exactly two hex digits.
    #[error("checksum {0:?} is not two hex digits")]
    MalformedChecksum(String),
    /// No `*hh` and [`crate::FrameOptions::require_checksum`] is set.
    #[error("sentence has no *hh checksum, and sentences without one are rejected")]
    MissingChecksum,
    /// The address field is not a two-letter talker plus a three-letter sentence type.
    #[error("address field {0:?} is not a talker and sentence type such as GPGGA")]
    BadAddress(String),
    /// A sentence type this crate does not decode (proprietary `$P…` included).
    #[error("unsupported sentence type {0:?}")]
    Unsupported(String),
    /// Fewer fields than the sentence type needs.
    #[error("{sentence} has {got} fields, needs at least {need}")]
    Truncated {
        /// Sentence type, e.g. `GGA`.
        sentence: &'static str,
        /// Fields present.
        got: usize,
        /// Fields needed.
        need: usize,
    },
    /// More fields than any supported sentence carries.
    #[error("{sentence} has more than {max} fields")]
    TooManyFields {
        /// Sentence type.
        sentence: &'static str,
        /// The bound.
        max: usize,
    },
    /// One field does not parse or is out of its range.
    #[error("{sentence} field {index} ({name}): {value:?} {problem}")]
    BadField {
        /// Sentence type, e.g. `GGA`.
        sentence: &'static str,
        /// 1-based field number after the address field.
        index: usize,
        /// What the field means, e.g. `fix quality`.
        name: &'static str,
        /// The text as received.
        value: String,
        /// What is wrong, e.g. `is not a number`.
        problem: &'static str,
    },
    /// The NMEA 4.x tag block (`\…\`) is malformed.
    #[error("tag block: {0}")]
    BadTagBlock(String),
    /// A decoded fix that cannot be a real position (rejected by the report limits).
    #[error("impossible value: {0}")]
    Impossible(String),
}

impl NmeaError {
    /// A short machine-readable reason, used as a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            NmeaError::Empty | NmeaError::Truncated { .. } => "truncated",
            NmeaError::BadStart(_) | NmeaError::NotAscii { .. } | NmeaError::BadAddress(_) => {
                "garbage"
            }
            NmeaError::TooLong { .. } => "too_long",
            NmeaError::BadChecksum { .. } | NmeaError::MalformedChecksum(_) => "bad_checksum",
            NmeaError::MissingChecksum => "missing_checksum",
            NmeaError::Unsupported(_) => "unsupported_sentence",
            NmeaError::TooManyFields { .. } | NmeaError::BadField { .. } => "bad_field",
            NmeaError::BadTagBlock(_) => "bad_tag_block",
            NmeaError::Impossible(_) => "impossible_value",
        }
    }
}
