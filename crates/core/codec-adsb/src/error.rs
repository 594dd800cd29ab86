//! The one error type of the crate: every rejection names what is wrong in words and carries a
//! short machine-readable reason ([`AdsbError::reason`]) that edges use as a metrics label.
//!
//! Errors are built only on the rejection path, so the `String` details cost nothing on the
//! hot path of valid frames.

/// Why a line, frame or message was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdsbError {
    /// The input ended before the data it announces (short hex, missing SBS fields).
    #[error("truncated {what}: {detail}")]
    Truncated {
        /// What is truncated, e.g. `AVR frame`.
        what: &'static str,
        /// What was expected and what arrived.
        detail: String,
    },
    /// A field is malformed: not hex, not a number, a character outside the alphabet, …
    #[error("bad {field}: {detail}")]
    BadField {
        /// The field at fault, e.g. `hex`, `altitude`, `callsign`.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The Mode S CRC-24 parity does not check: the frame was damaged in flight.
    #[error("bad CRC: Mode S parity remainder is {remainder:06X}, a valid DF{df} frame has 000000")]
    BadCrc {
        /// Downlink format of the damaged frame.
        df: u8,
        /// The CRC-24 remainder over the whole frame (zero for an intact DF17/18 frame).
        remainder: u32,
    },
    /// Well-formed, but a kind of message this decoder does not interpret.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Well-formed, but physically impossible: a latitude beyond the pole, a position jump
    /// faster than any aircraft, an altitude below the Dead Sea …
    #[error("impossible {field}: {detail}")]
    ImpossibleValue {
        /// The quantity at fault, e.g. `position`, `lat`, `altitude`.
        field: &'static str,
        /// The value and the bound it breaks.
        detail: String,
    },
    /// A CPR position frame that cannot be resolved yet: no opposite-parity frame within the
    /// pairing window and no trusted reference for a local decode. Expected for the first
    /// frame of every aircraft; count it, don't log it.
    #[error("no CPR pair for {address:06x}: {detail}")]
    NoCprPair {
        /// The 24-bit address of the aircraft.
        address: u32,
        /// Why no pair or reference was usable.
        detail: String,
    },
    /// An even/odd pair whose latitudes fall in different longitude-zone counts (NL): the
    /// aircraft crossed a zone boundary between the frames, so the pair cannot be resolved.
    #[error(
        "CPR zone mismatch for {address:06x}: NL(even lat {lat_even:.4}) = {nl_even}, NL(odd lat {lat_odd:.4}) = {nl_odd}"
    )]
    CprZoneMismatch {
        /// The 24-bit address of the aircraft.
        address: u32,
        /// Latitude resolved from the even frame.
        lat_even: OrdF64,
        /// Latitude resolved from the odd frame.
        lat_odd: OrdF64,
        /// NL of the even latitude.
        nl_even: u8,
        /// NL of the odd latitude.
        nl_odd: u8,
    },
    /// A surface position needs a reference (receiver position or a recent track) to pick
    /// among its four 90° quadrants, and none is available.
    #[error(
        "no reference position for the surface CPR decode of {address:06x}: configure the receiver position"
    )]
    NoReference {
        /// The 24-bit address of the aircraft.
        address: u32,
    },
    /// A first global CPR fix is held until an independent even/odd pair confirms it, so a
    /// single corrupted frame at acquisition never places an aircraft.
    #[error(
        "unconfirmed first fix for {address:06x}: waiting for an independent even/odd pair to agree"
    )]
    Unconfirmed {
        /// The 24-bit address of the aircraft.
        address: u32,
    },
}

impl AdsbError {
    /// A short machine-readable reason, used as a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            AdsbError::Truncated { .. } => "truncated",
            AdsbError::BadField { .. } => "bad_field",
            AdsbError::BadCrc { .. } => "bad_crc",
            AdsbError::Unsupported(_) => "unsupported",
            AdsbError::ImpossibleValue { .. } => "impossible_value",
            AdsbError::NoCprPair { .. } => "no_cpr_pair",
            AdsbError::CprZoneMismatch { .. } => "cpr_zone_mismatch",
            AdsbError::NoReference { .. } => "no_reference",
            AdsbError::Unconfirmed { .. } => "unconfirmed",
        }
    }

    pub(crate) fn bad(field: &'static str, detail: impl Into<String>) -> Self {
        AdsbError::BadField {
            field,
            detail: detail.into(),
        }
    }

    pub(crate) fn impossible(field: &'static str, detail: impl Into<String>) -> Self {
        AdsbError::ImpossibleValue {
            field,
            detail: detail.into(),
        }
    }

    pub(crate) fn truncated(what: &'static str, detail: impl Into<String>) -> Self {
        AdsbError::Truncated {
            what,
            detail: detail.into(),
        }
    }
}

/// An `f64` that compares by bits, so [`AdsbError`] can be `Eq` while carrying coordinates.
#[derive(Clone, Copy, Debug)]
pub struct OrdF64(pub f64);

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for OrdF64 {}

impl std::fmt::Display for OrdF64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}
