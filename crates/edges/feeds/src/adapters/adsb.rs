//! ADS-B: SBS-1 BaseStation lines (`sbs-tcp`) and raw AVR hex (`avr-tcp`).

use rampart_codec_adsb::{AdsbError, AdsbTracker, TrackerConfig};
use rampart_model::{Report, Timestamp};

use crate::decoder::{FeedDecoder, FeedError};

/// Which ADS-B text format a source speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdsbFormat {
    /// SBS-1 BaseStation (`MSG,…`), as served on port 30003.
    Sbs,
    /// Raw AVR hex (`*8D…;`, or `@`-prefixed with an MLAT timestamp).
    Avr,
}

/// A per-source ADS-B decoder: the codec's tracker, which only ever emits positions from
/// valid CPR pairs that pass its plausibility checks.
pub struct AdsbDecoder {
    format: AdsbFormat,
    tracker: AdsbTracker,
    lines: u64,
}

/// How often (in lines) silent aircraft are expired from the tracker.
const EXPIRE_EVERY_LINES: u64 = 4096;

impl AdsbDecoder {
    /// A decoder for `format` with the tracker settings `cfg`.
    pub fn new(format: AdsbFormat, cfg: TrackerConfig) -> Self {
        AdsbDecoder {
            format,
            tracker: AdsbTracker::new(cfg),
            lines: 0,
        }
    }
}

impl FeedDecoder for AdsbDecoder {
    fn line(
        &mut self,
        line: &[u8],
        now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), FeedError> {
        self.lines += 1;
        if self.lines.is_multiple_of(EXPIRE_EVERY_LINES) {
            self.tracker.expire(now);
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| FeedError::new("not_utf8", "line is not UTF-8 text"))?
            .trim();
        let result = match self.format {
            AdsbFormat::Sbs => self.tracker.ingest_sbs(text, now),
            AdsbFormat::Avr => self.tracker.ingest_avr(text, now),
        };
        match result {
            Ok(Some(report)) => {
                out.push(report);
                Ok(())
            }
            Ok(None) => Ok(()),
            // Waiting for the other half of a CPR pair, or for a confirming pair, is the normal
            // course of acquiring a track, not bad input.
            Err(AdsbError::NoCprPair { .. } | AdsbError::Unconfirmed { .. }) => Ok(()),
            // Non-position SBS record types and other downlink formats are common on real
            // feeds; they are counted, not logged as errors.
            Err(e) => Err(FeedError::new(e.reason(), e.to_string())),
        }
    }

    /// SBS lines carry their generation (else log) date and time, which pace a replay. Only
    /// differences matter there, so the sender's time zone does not.
    fn line_time(&mut self, line: &[u8]) -> Option<Timestamp> {
        if self.format != AdsbFormat::Sbs {
            return None;
        }
        let msg = rampart_codec_adsb::parse_sbs(std::str::from_utf8(line).ok()?).ok()?;
        msg.generated.or(msg.logged).map(|t| t.assuming_utc())
    }
}
