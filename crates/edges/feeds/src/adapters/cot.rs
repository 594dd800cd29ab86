//! CoT XML files for `rampart replay --format cot`: concatenated `<event>` documents, split
//! and parsed by the CoT codec, each mapped to a report.

use rampart_codec_cot::{CotLimits, XmlStreamSplitter, parse_xml};
use rampart_model::{Report, Timestamp};

use crate::decoder::{FeedDecoder, FeedError};

/// Reassembles events that span lines, then parses them.
pub struct CotFileDecoder {
    splitter: XmlStreamSplitter,
    limits: CotLimits,
}

impl Default for CotFileDecoder {
    fn default() -> Self {
        let limits = CotLimits::default();
        CotFileDecoder {
            splitter: XmlStreamSplitter::new(limits.max_event_bytes),
            limits,
        }
    }
}

impl FeedDecoder for CotFileDecoder {
    fn line(
        &mut self,
        line: &[u8],
        _now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), FeedError> {
        self.splitter.push(line);
        self.splitter.push(b"\n");
        loop {
            match self.splitter.next_frame() {
                Ok(Some(frame)) => {
                    let event = parse_xml(&frame, &self.limits)
                        .map_err(|e| FeedError::new(e.reason(), e.to_string()))?;
                    // Protocol control events (t-x-…) are not entities.
                    if event.cot_type.starts_with("t-x-") {
                        continue;
                    }
                    let report = event
                        .to_report()
                        .map_err(|e| FeedError::new("invalid_value", e.to_string()))?;
                    out.push(report);
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    // Start afresh after a broken event so the rest of the file still plays.
                    self.splitter.take_remaining();
                    return Err(FeedError::new(e.reason(), e.to_string()));
                }
            }
        }
    }

    /// The `time` attribute of an `<event` start tag on this line, if there is one.
    fn line_time(&mut self, line: &[u8]) -> Option<Timestamp> {
        let text = std::str::from_utf8(line).ok()?;
        let start = text.find("<event")?;
        let tag = &text[start..];
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let at = tag.find(" time=")? + " time=".len();
        let quote = tag[at..].chars().next()?;
        let value = tag[at + 1..].split(quote).next()?;
        Timestamp::parse_rfc3339(value).ok()
    }
}
