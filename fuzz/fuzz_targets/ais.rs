//! AIS: an `AisTracker` fed line by line, with its fragment assembler's state carried from
//! line to line (multi-part messages, timeouts as blank lines advance the clock, eviction).
//! Each line goes in with its checksums repaired (so mutated payloads reach the 6-bit
//! decoder and the message decoders); the raw line goes to the stateless `decode_single`.
//! Nothing may panic, and every report must meet the model's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_ais::{AisTracker, AssemblerConfig, TrackerConfig, decode_single};
use rampart_codec_nmea::FrameOptions;
use rampart_fuzz::{fix_nmea_checksums, timed_lines};
use rampart_model::Limits;

fuzz_target!(|data: &[u8]| {
    let opts = FrameOptions::default();
    let mut tracker = AisTracker::new(TrackerConfig {
        assembler: AssemblerConfig {
            // Small bounds so eviction is reachable.
            max_pending_groups: 4,
            ..AssemblerConfig::default()
        },
        max_vessels: 8,
        stale_after_ms: Some(600_000),
        ..TrackerConfig::default()
    });
    let limits = Limits::default();
    for (line, now) in timed_lines(data) {
        let _ = decode_single(line, &opts);
        let fixed = fix_nmea_checksums(line);
        tracker.poll(now);
        if let Ok(Some(r)) = tracker.feed(&fixed, now)
            && let Err(e) = limits.validate(&r)
        {
            panic!("AisTracker emitted an invalid report: {e}\n{r:?}");
        }
    }
    let _ = tracker.counters();
    let _ = tracker.assembler().counters();
    let _ = tracker.assembler().pending();
    assert!(
        tracker.vessel_count() <= 8,
        "vessel memory exceeds its bound"
    );
});
