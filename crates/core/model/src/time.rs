//! Timestamps: milliseconds since the Unix epoch, UTC, with RFC 3339 parsing and formatting.
//!
//! Milliseconds match Cursor-on-Target's precision and fit in an `i64` for ±292 million years,
//! so arithmetic never overflows for any time that validation lets through.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Why a timestamp text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp (expected e.g. 2026-01-02T03:04:05Z): {0}")]
pub struct TimestampError(String);

impl Timestamp {
    /// The earliest time Rampart accepts: 1970-01-01T00:00:00Z.
    pub const MIN_VALID: Timestamp = Timestamp(0);
    /// The latest time Rampart accepts: 9999-12-31T23:59:59.999Z.
    pub const MAX_VALID: Timestamp = Timestamp(253_402_300_799_999);

    /// The current wall-clock time.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 text such as `2026-01-02T03:04:05.123Z` or `...+02:00`.
    /// Sub-millisecond digits are truncated.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Timestamp(t.timestamp_millis()))
            .map_err(|e| TimestampError(format!("{text:?}: {e}")))
    }

    /// This time shifted by `ms` milliseconds, saturating at the `i64` range.
    pub fn plus_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Formats as RFC 3339 UTC with millisecond precision, e.g. `2026-01-02T03:04:05.123Z`.
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_millis(self.0) {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            // Out of chrono's range: only reachable for values validation rejects.
            None => format!("@{}ms", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Borrow when the JSON has no escapes; fall back to an owned string otherwise.
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-01-02T03:04:05.123Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T03:04:05.123Z");
        let offset = Timestamp::parse_rfc3339("2026-01-02T05:04:05.123+02:00").unwrap();
        assert_eq!(t, offset);
    }

    #[test]
    fn rejects_garbage() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(err.to_string().contains("RFC 3339"));
    }
}
