//! NMEA 0183 GPS receivers (`nmea-udp`, `nmea-tcp`) and AIS (`ais-udp`, `ais-tcp`).

use rampart_codec_ais::{AisTracker, TrackerConfig as AisConfig};
use rampart_codec_nmea::{
    FrameOptions, GpsSource, GpsSourceConfig, Sentence, SourceMapping, decode, parse_frame,
};
use rampart_model::{Report, Timestamp};

use crate::decoder::{FeedDecoder, FeedError};

/// The time a sentence carries: a tag block `c:` stamp, or an RMC/ZDA date and time.
fn sentence_time(line: &[u8], opts: &FrameOptions) -> Option<Timestamp> {
    let frame = parse_frame(line, opts).ok()?;
    if let Some(ms) = frame.tag_block.as_ref().and_then(|t| t.unix_time_ms) {
        return Some(Timestamp(ms));
    }
    match decode(line, opts).ok()? {
        Sentence::Rmc(r) => Some(r.date?.at(r.time?)),
        Sentence::Zda(z) => Some(z.date?.at(z.time?)),
        _ => None,
    }
}

/// One GPS receiver: combines each epoch's sentences into one report of the mapped entity.
pub struct NmeaDecoder {
    source: GpsSource,
    frame: FrameOptions,
}

impl NmeaDecoder {
    /// A receiver reporting as `mapping`.
    pub fn new(mapping: SourceMapping, cfg: GpsSourceConfig) -> Self {
        NmeaDecoder {
            frame: cfg.frame.clone(),
            source: GpsSource::new(mapping, cfg),
        }
    }
}

impl FeedDecoder for NmeaDecoder {
    fn line(
        &mut self,
        line: &[u8],
        now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), FeedError> {
        // An epoch the receiver never closed is sent once it is old enough.
        let polled = self.source.poll(now, out);
        self.source
            .feed(line, now, out)
            .map_err(|e| FeedError::new(e.reason(), e.to_string()))?;
        polled.map_err(|e| FeedError::new(e.reason(), e.to_string()))
    }

    fn flush(&mut self, now: Timestamp, end: bool, out: &mut Vec<Report>) -> Result<(), FeedError> {
        let done = if end {
            self.source.flush(now, out)
        } else {
            self.source.poll(now, out)
        };
        done.map_err(|e| FeedError::new(e.reason(), e.to_string()))
    }

    fn line_time(&mut self, line: &[u8]) -> Option<Timestamp> {
        sentence_time(line, &self.frame)
    }
}

/// AIS sentences from one receiver: fragments reassembled, vessels remembered.
pub struct AisDecoder {
    tracker: AisTracker,
    frame: FrameOptions,
    lines: u64,
}

/// How often (in lines) timed-out fragment groups are dropped.
const AIS_POLL_EVERY_LINES: u64 = 1024;

impl AisDecoder {
    /// A decoder with the tracker settings `cfg`.
    pub fn new(cfg: AisConfig) -> Self {
        AisDecoder {
            frame: cfg.assembler.frame.clone(),
            tracker: AisTracker::new(cfg),
            lines: 0,
        }
    }
}

impl FeedDecoder for AisDecoder {
    fn line(
        &mut self,
        line: &[u8],
        now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), FeedError> {
        self.lines += 1;
        if self.lines.is_multiple_of(AIS_POLL_EVERY_LINES) {
            self.tracker.poll(now);
        }
        match self.tracker.feed(line, now) {
            Ok(Some(r)) => {
                out.push(r);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(FeedError::new(e.reason(), e.to_string())),
        }
    }

    fn line_time(&mut self, line: &[u8]) -> Option<Timestamp> {
        let frame = parse_frame(line, &self.frame).ok()?;
        frame
            .tag_block
            .as_ref()
            .and_then(|t| t.unix_time_ms)
            .map(Timestamp)
    }
}
