//! Reassembly, tracker and bad-input behaviour: every rejection carries the right reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_codec_ais::{
    AisError, AisMessage, AisTracker, Assembler, AssemblerConfig, KNOTS_TO_MPS, TrackerConfig,
    decode_single,
};
use rampart_codec_nmea::FrameOptions;
use rampart_model::{AttrValue, Timestamp};

mod common;
use common::*;

const T0: Timestamp = Timestamp(1_767_225_600_000);

#[test]
fn decodes_a_well_known_type_5_across_two_fragments() {
    let mut asm = Assembler::new(AssemblerConfig::default());
    let a = "!AIVDM,2,1,1,A,55?MbV02;H;s<HtKR20EHE:0@T4@Dn2222222216L961O5Gf0NSQEp6ClRp8,0*1C";
    let b = "!AIVDM,2,2,1,A,88888888880,2*25";
    assert!(asm.feed(a.as_bytes(), T0).unwrap().is_none());
    let p = asm.feed(b.as_bytes(), T0).unwrap().unwrap();
    let AisMessage::StaticVoyage(s) = rampart_codec_ais::decode_message(&p).unwrap() else {
        panic!("not type 5")
    };
    assert_eq!(s.mmsi, 351_759_000);
    assert_eq!(s.imo, Some(9_134_270));
    assert_eq!(s.callsign, "3FOF8");
    assert_eq!(s.name, "EVER DIADEM");
    assert_eq!(s.ship_type, 70);
    assert_eq!(s.destination, "NEW YORK");
    assert_eq!(s.draught, Some(12.2));
    assert_eq!(s.dimensions.length(), Some(295));
    assert_eq!(s.eta.month, Some(5));
}

#[test]
fn orphans_out_of_order_timeouts_and_eviction() {
    let cfg = AssemblerConfig {
        max_pending_groups: 2,
        ..AssemblerConfig::default()
    };
    let mut asm = Assembler::new(cfg);
    let frags = two_fragments(&type5(211_000_001, "A", 70, "X"), "3");

    // Fragment 2 with no fragment 1.
    let e = asm.feed(frags[1].as_bytes(), T0).unwrap_err();
    assert_eq!(e.reason(), "orphan_fragment");
    assert!(e.to_string().contains("orphan fragment 2 of 2"), "{e}");

    // Timed out: fragment 1, then fragment 2 six seconds later.
    asm.feed(frags[0].as_bytes(), T0).unwrap();
    let e = asm
        .feed(frags[1].as_bytes(), T0.plus_millis(6_000))
        .unwrap_err();
    assert_eq!(e.reason(), "orphan_fragment");
    assert_eq!(asm.counters().expired, 1);

    // Out of order within a three-part message: 1 then 3.
    let b3 = |n: u8| sentence(3, n, "7", "A", "000000", 0);
    asm.feed(b3(1).as_bytes(), T0).unwrap();
    let e = asm.feed(b3(3).as_bytes(), T0).unwrap_err();
    assert!(e.to_string().contains("expected fragment 2"), "{e}");
    assert_eq!(asm.pending(), 0);

    // Eviction: three groups with room for two; the oldest is gone.
    for seq in ["1", "2", "3"] {
        let f = two_fragments(&type5(211_000_002, "B", 70, "Y"), seq);
        asm.feed(f[0].as_bytes(), T0).unwrap();
    }
    assert_eq!(asm.pending(), 2);
    assert_eq!(asm.counters().evicted, 1);
    let f1 = two_fragments(&type5(211_000_002, "B", 70, "Y"), "1");
    assert_eq!(
        asm.feed(f1[1].as_bytes(), T0).unwrap_err().reason(),
        "orphan_fragment"
    );
    let f3 = two_fragments(&type5(211_000_002, "B", 70, "Y"), "3");
    assert!(asm.feed(f3[1].as_bytes(), T0).unwrap().is_some());
}

#[test]
fn impossible_values_are_rejected_not_folded() {
    let opts = FrameOptions::default();
    let cases = [
        (type1(0, 10.0, 50.0, 100, 900, 90), "MMSI"),
        (type1(211_000_003, 10.0, 95.0, 100, 900, 90), "latitude"),
        (type1(211_000_003, -190.0, 50.0, 100, 900, 90), "longitude"),
        (type1(211_000_003, 10.0, 50.0, 100, 3650, 90), "course"),
        (type1(211_000_003, 10.0, 50.0, 100, 900, 400), "heading"),
    ];
    let mut tracker = AisTracker::new(TrackerConfig::default());
    for (bits, field) in cases {
        let line = single(&bits);
        let e = decode_single(line.as_bytes(), &opts).unwrap_err();
        assert_eq!(e.reason(), "impossible_value", "{line}: {e}");
        assert!(
            matches!(&e, AisError::Impossible { field: f, .. } if *f == field),
            "{e}"
        );
        let e = tracker.feed(line.as_bytes(), T0).unwrap_err();
        assert_eq!(e.reason(), "impossible_value");
    }
    assert_eq!(tracker.counters().reports, 0);
}

#[test]
fn sentinels_become_none_and_no_position_means_no_report() {
    let line = single(&type1(211_000_004, 181.0, 91.0, 1023, 3600, 511));
    let AisMessage::Position(p) = decode_single(line.as_bytes(), &FrameOptions::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (p.lon, p.lat, p.sog, p.cog, p.heading),
        (None, None, None, None, None)
    );
    let mut tracker = AisTracker::new(TrackerConfig::default());
    assert_eq!(tracker.feed(line.as_bytes(), T0).unwrap(), None);
    assert_eq!(tracker.counters().no_position, 1);
}

#[test]
fn tracker_names_vessels_and_maps_ship_types() {
    let mut tracker = AisTracker::new(TrackerConfig::default());
    for f in two_fragments(&type5(211_000_005, "EVER DIADEM", 70, "NEW YORK"), "1") {
        assert_eq!(tracker.feed(f.as_bytes(), T0).unwrap(), None);
    }
    let line = single(&type1(211_000_005, 10.5, 54.25, 123, 2705, 271));
    let r = tracker.feed(line.as_bytes(), T0).unwrap().unwrap();
    assert_eq!(r.uid, "ais-211000005");
    assert_eq!(r.cot_type.as_deref(), Some("a-n-S-X-M-C"));
    assert_eq!(r.callsign.as_deref(), Some("EVER DIADEM"));
    assert!((r.lat - 54.25).abs() < 1e-9 && (r.lon - 10.5).abs() < 1e-9);
    assert!((r.speed.unwrap() - 12.3 * KNOTS_TO_MPS).abs() < 1e-9);
    assert_eq!(r.course, Some(270.5));
    assert_eq!(r.time, T0);
    assert_eq!(r.ce, Some(10.0));
    let a = &r.attributes;
    assert_eq!(a.get("mmsi"), Some(&AttrValue::Num(211_000_005.0)));
    assert_eq!(a.get("imo"), Some(&AttrValue::Num(9_134_270.0)));
    assert_eq!(a.get("ship_type"), Some(&AttrValue::Num(70.0)));
    assert_eq!(a.get("heading"), Some(&AttrValue::Num(271.0)));
    assert_eq!(a.get("nav_status"), Some(&AttrValue::Num(0.0)));
    assert_eq!(
        a.get("destination"),
        Some(&AttrValue::Text("NEW YORK".into()))
    );
    assert_eq!(
        a.get("ais_callsign"),
        Some(&AttrValue::Text("3FOF8".into()))
    );
    assert_eq!(a.get("length"), Some(&AttrValue::Num(295.0)));
    rampart_model::Limits::default().validate(&r).unwrap();

    // Unknown vessel: plain sea surface, no callsign.
    let r = tracker
        .feed(
            single(&type1(211_000_006, 1.0, 2.0, 0, 0, 0)).as_bytes(),
            T0,
        )
        .unwrap()
        .unwrap();
    assert_eq!(r.cot_type.as_deref(), Some("a-n-S"));
    assert_eq!(r.callsign, None);

    // Affiliation is configurable.
    let mut hostile = AisTracker::new(TrackerConfig {
        affiliation: 'h',
        ..TrackerConfig::default()
    });
    let r = hostile
        .feed(
            single(&type1(211_000_006, 1.0, 2.0, 0, 0, 0)).as_bytes(),
            T0,
        )
        .unwrap()
        .unwrap();
    assert_eq!(r.cot_type.as_deref(), Some("a-h-S"));
}

#[test]
fn vessel_memory_is_bounded_lru() {
    let mut tracker = AisTracker::new(TrackerConfig {
        max_vessels: 2,
        ..TrackerConfig::default()
    });
    let feed_static = |t: &mut AisTracker, mmsi: i64| {
        for f in two_fragments(&type5(mmsi, "N", 30, "D"), "1") {
            t.feed(f.as_bytes(), T0).unwrap();
        }
    };
    feed_static(&mut tracker, 211_000_010);
    feed_static(&mut tracker, 211_000_011);
    // Touch the first: the second becomes least recently used.
    tracker
        .feed(
            single(&type1(211_000_010, 1.0, 1.0, 0, 0, 0)).as_bytes(),
            T0,
        )
        .unwrap();
    feed_static(&mut tracker, 211_000_012);
    assert_eq!(tracker.vessel_count(), 2);
    assert!(tracker.vessel(211_000_010).is_some());
    assert!(tracker.vessel(211_000_011).is_none());
    assert_eq!(tracker.counters().vessels_evicted, 1);
    // Many touches keep the LRU queue bounded.
    for _ in 0..100 {
        tracker
            .feed(
                single(&type1(211_000_010, 1.0, 1.0, 0, 0, 0)).as_bytes(),
                T0,
            )
            .unwrap();
    }
    assert_eq!(tracker.vessel_count(), 2);
}

#[test]
fn bad_input_is_rejected_with_the_right_reason() {
    let opts = FrameOptions::default();
    let good = "!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C";
    assert!(decode_single(good.as_bytes(), &opts).is_ok());
    let long_payload = "1".repeat(200);
    let cases: Vec<(String, &str)> = vec![
        (good.replace("*5C", "*5D"), "bad_checksum"),
        (good.replace("*5C", "*5"), "bad_checksum"),
        (good.replace("*5C", ""), "missing_checksum"),
        (sentence(1, 1, "", "B", "177KQJ5000G?tO", 0), "truncated"),
        (sentence(1, 1, "", "B", "", 0), "bad_field"),
        (
            sentence(1, 1, "", "B", "177KQJ5000G?tO`K>RA1wUbN0TKH", 7),
            "bad_field",
        ),
        (
            sentence(1, 1, "", "C", "177KQJ5000G?tO`K>RA1wUbN0TKH", 0),
            "bad_field",
        ),
        (
            sentence(1, 1, "", "B", "177KQJ5000G?tO`K>RA1wUbN0TK~", 0),
            "bad_field",
        ),
        (
            sentence(1, 1, "", "B", "877KQJ5000G?tO`K>RA1wUbN0TKH", 0),
            "unsupported_message",
        ),
        (sentence(2, 2, "1", "B", "0000", 0), "orphan_fragment"),
        (sentence(1, 1, "", "B", &long_payload, 0), "too_long"),
        ("!AIVDM,1,1,,B*00".to_string(), "bad_checksum"),
        ("\u{1}\u{2}garbage".to_string(), "garbage"),
        ("".to_string(), "truncated"),
        ("$GPGGA,1,2*4A".to_string(), "bad_checksum"),
        (
            "$GPTXT,01,01,02,hello*2F".to_string(),
            "unsupported_sentence",
        ),
    ];
    for (line, reason) in cases {
        let e = decode_single(line.as_bytes(), &opts).unwrap_err();
        assert_eq!(e.reason(), reason, "{line:?}: {e}");
        assert!(!e.to_string().is_empty());
    }
    // A garbage byte inside a sentence names its offset.
    let e = decode_single(b"!AIVDM,1,1,,B,17\xff7KQ,0*00", &opts).unwrap_err();
    assert_eq!(e.reason(), "garbage");
    assert!(e.to_string().contains("0xFF at offset"), "{e}");
}

#[test]
fn base_stations_and_aids_get_their_own_types() {
    let mut tracker = AisTracker::new(TrackerConfig::default());
    let r = tracker
        .feed(b"!AIVDM,1,1,,A,403OviQuMGCqWrRO9>E6fE700@GO,0*4D", T0)
        .unwrap()
        .unwrap();
    assert_eq!(r.cot_type.as_deref(), Some("a-n-G-I"));
    assert_eq!(
        r.attributes.get("ais_class"),
        Some(&AttrValue::Text("base_station".into()))
    );
    let r = tracker
        .feed(
            b"!AIVDM,1,1,,B,E>kb9O9aS@7PUh10dh19@;0Tah2cWrfP:l?M`00003vP100,0*01",
            T0,
        )
        .unwrap()
        .unwrap();
    assert_eq!(r.callsign.as_deref(), Some("SF OAK BAY BR VAIS E"));
    assert_eq!(r.attributes.get("virtual_aid"), Some(&AttrValue::Num(1.0)));
}
