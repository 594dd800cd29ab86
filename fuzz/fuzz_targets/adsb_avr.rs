//! ADS-B raw AVR: an `AdsbTracker` fed line by line (`ingest_avr`), its state carried across
//! lines (CPR pairs, local decodes, expiry as blank lines advance the clock). A long frame
//! that fails only its parity is ingested again with the CRC-24 repaired, so mutated frames
//! reach the message decoders and the CPR logic. Nothing may panic, and every report must
//! meet the model's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_adsb::{AdsbTracker, TrackerConfig, decode_avr};
use rampart_fuzz::{fix_avr_crc, timed_lines};
use rampart_model::{Limits, Report};

fn check(r: Result<Option<Report>, rampart_codec_adsb::AdsbError>) {
    if let Ok(Some(r)) = r
        && let Err(e) = Limits::default().validate(&r)
    {
        panic!("AdsbTracker emitted an invalid report: {e}\n{r:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut tracker = AdsbTracker::new(TrackerConfig {
        max_aircraft: 4,
        ..TrackerConfig::default()
    });
    // A second tracker with a receiver position: surface decodes and the range check.
    let mut local = AdsbTracker::new(TrackerConfig {
        receiver: Some((52.3, 4.76)),
        ..TrackerConfig::default()
    });
    for (line, now) in timed_lines(data) {
        let line = String::from_utf8_lossy(line);
        let _ = decode_avr(&line);
        for t in [&mut tracker, &mut local] {
            t.expire(now);
            match t.ingest_avr(&line, now) {
                Err(e) if e.reason() == "bad_crc" => {
                    if let Some(fixed) = fix_avr_crc(&line) {
                        check(t.ingest_avr(&fixed, now));
                    }
                }
                r => check(r),
            }
        }
    }
    assert!(tracker.len() <= 4, "aircraft map exceeds its bound");
});
