//! File replay: feeds a recorded file through a decoder into the engine, keeping the file's
//! original timing (scaled by a speed factor) or as fast as the engine takes it.
//!
//! Timing comes from the lines themselves (`FeedDecoder::line_time`): NMEA RMC/ZDA times,
//! AIS tag-block `c:` stamps, SBS generation times, CoT `time`. Lines without a time are sent
//! as soon as the previous timed line's deadline has passed.

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_model::Timestamp;
use tokio::io::AsyncReadExt;

use crate::decoder::Peer;
use crate::input::{FeedInput, Source};

/// How to replay.
#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    /// Playback speed: 1.0 keeps the original timing, 10.0 is ten times faster, 0 (or any
    /// non-positive value) ignores timing altogether.
    pub speed: f64,
    /// Reports per chunk handed to the batcher.
    pub chunk: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: 1.0,
            chunk: 1000,
        }
    }
}

/// What a replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Bytes read from the file.
    pub bytes: u64,
    /// Reports produced by the decoder and queued for the engine.
    pub reports: u64,
}

/// Replays `path` through `input`'s decoder. Returns once every line has been decoded and
/// queued; the caller drops its batcher handles and awaits the batcher to know it is stored.
pub async fn replay_file(
    path: &Path,
    input: &FeedInput,
    opts: ReplayOptions,
) -> std::io::Result<ReplayStats> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut source = Source::new(
        input,
        Peer {
            kind: input.kind.clone(),
            addr: None,
        },
    );
    let mut stats = ReplayStats::default();
    let started = Instant::now();
    let mut first_time: Option<Timestamp> = None;
    let mut buf = vec![0u8; 256 * 1024];
    let mut out = Vec::with_capacity(opts.chunk);
    let timed = opts.speed > 0.0;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stats.bytes += n as u64;
        let data = buf.get(..n).unwrap_or_default();
        if !timed {
            source.feed(input, data, false, &mut out);
        } else {
            // Line by line so each line can wait for its moment.
            for piece in data.split_inclusive(|&b| b == b'\n') {
                if let Some(t) = source.line_time(piece) {
                    let first = *first_time.get_or_insert(t);
                    let offset_ms = (t.millis() - first.millis()).max(0) as f64 / opts.speed;
                    let due = started + Duration::from_millis(offset_ms as u64);
                    if due > Instant::now() {
                        stats.reports += out.len() as u64;
                        if !input.batcher.send(std::mem::take(&mut out)).await {
                            return Ok(stats);
                        }
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                source.feed(input, piece, false, &mut out);
            }
        }
        if out.len() >= opts.chunk {
            stats.reports += out.len() as u64;
            if !input.batcher.send(std::mem::take(&mut out)).await {
                return Ok(stats);
            }
        }
    }
    source.flush(input, true, &mut out);
    stats.reports += out.len() as u64;
    input.batcher.send(out).await;
    Ok(stats)
}
