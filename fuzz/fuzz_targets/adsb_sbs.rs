//! ADS-B SBS-1 BaseStation: an `AdsbTracker` fed line by line (`ingest_sbs`), its state
//! carried across lines; blank lines advance the clock. Nothing may panic, and every report
//! must meet the model's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_adsb::{AdsbTracker, TrackerConfig, parse_sbs};
use rampart_fuzz::timed_lines;
use rampart_model::Limits;

fuzz_target!(|data: &[u8]| {
    let mut tracker = AdsbTracker::new(TrackerConfig {
        max_aircraft: 4,
        ..TrackerConfig::default()
    });
    let mut local = AdsbTracker::new(TrackerConfig {
        receiver: Some((52.3, 4.76)),
        ..TrackerConfig::default()
    });
    let limits = Limits::default();
    for (line, now) in timed_lines(data) {
        let line = String::from_utf8_lossy(line);
        let _ = parse_sbs(&line);
        for t in [&mut tracker, &mut local] {
            t.expire(now);
            if let Ok(Some(r)) = t.ingest_sbs(&line, now)
                && let Err(e) = limits.validate(&r)
            {
                panic!("AdsbTracker emitted an invalid report: {e}\n{r:?}");
            }
        }
    }
    assert!(tracker.len() <= 4, "aircraft map exceeds its bound");
});
