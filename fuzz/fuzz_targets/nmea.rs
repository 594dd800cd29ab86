//! NMEA 0183: every line goes to `rampart_codec_nmea::decode` as is, and (with its tag-block
//! and sentence checksums repaired, so mutated sentences get past the checksum) to a
//! `GpsSource` fed line by line, polled as time passes and flushed at the end. A second
//! source that does not require checksums gets the raw lines. Nothing may panic, and every
//! report a source emits must meet the model's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_codec_nmea::{
    FrameOptions, GpsSource, GpsSourceConfig, SourceMapping, decode, parse_frame,
};
use rampart_fuzz::{fix_nmea_checksums, timed_lines};
use rampart_model::{Limits, Report, Text, Timestamp};

fn source(config: GpsSourceConfig) -> GpsSource {
    GpsSource::new(
        SourceMapping {
            uid: "gps-fuzz".into(),
            cot_type: Text::const_new("a-f-G-U-C"),
            callsign: Some(Text::const_new("FUZZ")),
        },
        config,
    )
}

fn check(reports: &mut Vec<Report>) {
    let limits = Limits::default();
    for r in reports.drain(..) {
        if let Err(e) = limits.validate(&r) {
            panic!("GpsSource emitted an invalid report: {e}\n{r:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let strict_opts = FrameOptions::default();
    let mut strict = source(GpsSourceConfig {
        stale_after_ms: Some(30_000),
        ..GpsSourceConfig::default()
    });
    let mut lax = source(GpsSourceConfig {
        frame: FrameOptions {
            require_checksum: false,
            ..FrameOptions::default()
        },
        ..GpsSourceConfig::default()
    });
    let mut out = Vec::new();
    let mut now = Timestamp(rampart_fuzz::T0_MS);
    for (line, t) in timed_lines(data) {
        now = t;
        let _ = parse_frame(line, &strict_opts);
        let _ = decode(line, &strict_opts);
        let fixed = fix_nmea_checksums(line);
        let _ = strict.poll(now, &mut out);
        let _ = strict.feed(&fixed, now, &mut out);
        let _ = lax.poll(now, &mut out);
        let _ = lax.feed(line, now, &mut out);
        check(&mut out);
    }
    let _ = strict.flush(now, &mut out);
    let _ = lax.flush(now, &mut out);
    check(&mut out);
    let _ = strict.counters();
    let _ = strict.cycle_ender();
});
