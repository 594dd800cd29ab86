//! Errors of the XML codec and the event conversions. Every message names what is wrong and
//! where, as `event/point@lat: not a number "abc"`, so a log line is enough to fix a sender.

/// Why an event was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CotError {
    /// The input is larger than [`crate::CotLimits::max_event_bytes`].
    #[error("event is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not UTF-8.
    #[error("not UTF-8 (invalid byte at offset {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// The input is not well-formed XML.
    #[error("malformed XML at byte {at}: {reason}")]
    Malformed {
        /// Byte offset where the parser gave up.
        at: u64,
        /// The XML parser's explanation.
        reason: String,
    },
    /// No `<event>` element at all.
    #[error("no <event> element")]
    NoEvent,
    /// A required element or attribute is missing, e.g. `event@uid` or `event/point`.
    #[error("{path}: missing")]
    Missing {
        /// Where, e.g. `event/point@lat`.
        path: String,
    },
    /// An element or attribute has an unusable value.
    #[error("{path}: {reason}")]
    Invalid {
        /// Where, e.g. `event@time`.
        path: String,
        /// Why, e.g. `not a number "abc"`.
        reason: String,
    },
    /// Elements nest deeper than [`crate::CotLimits::max_depth`].
    #[error("{path}: elements nest deeper than {max} levels")]
    TooDeep {
        /// The element that went too deep.
        path: String,
        /// The limit.
        max: usize,
    },
    /// The detail holds more elements than [`crate::CotLimits::max_detail_elements`].
    #[error("event/detail: more than {max} elements")]
    TooManyElements {
        /// The limit.
        max: usize,
    },
}

impl CotError {
    /// A short machine-readable reason, for a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            CotError::TooLarge { .. } => "too_large",
            CotError::NotUtf8 { .. } => "not_utf8",
            CotError::Malformed { .. } => "malformed_xml",
            CotError::NoEvent => "no_event",
            CotError::Missing { .. } => "missing_field",
            CotError::Invalid { .. } => "invalid_value",
            CotError::TooDeep { .. } => "too_deep",
            CotError::TooManyElements { .. } => "too_many_elements",
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        CotError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(path: impl Into<String>) -> Self {
        CotError::Missing { path: path.into() }
    }
}
