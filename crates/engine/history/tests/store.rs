//! Behaviour of the segment log through its public API: commit, recovery, retention, queries.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_history::{
    HistoryStore, SegmentLog, SegmentLogConfig, TrackQuery, Window, WindowQuery, quantize,
};
use rampart_model::{AttrValue, Label, Provenance, Report, ReportId, Timestamp};

const T0: i64 = 1_700_000_000_000;

fn cfg(dir: &Path) -> SegmentLogConfig {
    SegmentLogConfig {
        fsync: false,
        ..SegmentLogConfig::new(dir)
    }
}

fn report(uid: &str, i: i64) -> Report {
    let mut r = Report::new(
        uid,
        50.0 + i as f64 * 1e-4,
        8.0 - i as f64 * 1e-4,
        Timestamp(T0 + i * 1000),
    );
    r.cot_type = Some("a-f-G-U-C".into());
    r.callsign = Some(format!("CS-{uid}").into());
    r.how = Some("m-g".into());
    r.hae = Some(100.0 + i as f64 * 0.1);
    r.course = Some((i % 360) as f64);
    r.speed = Some(5.5);
    r.stale = Some(Timestamp(T0 + i * 1000 + 60_000));
    r.label = Some(Label::unclassified());
    r.provenance = Provenance::new("http", "tester");
    r
}

fn replay_all(log: &SegmentLog) -> Vec<Report> {
    let mut out = Vec::new();
    log.replay(&mut |r| out.push(r)).unwrap();
    out
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn track(log: &SegmentLog, uid: &str, from: i64, to: i64, limit: usize) -> Vec<Report> {
    log.track(&TrackQuery {
        uid: uid.into(),
        from: Timestamp(from),
        to: Timestamp(to),
        limit,
    })
    .unwrap()
}

#[test]
fn append_commit_replay_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(cfg(dir.path())).unwrap();
    let mut all = Vec::new();
    for b in 0..10 {
        let batch: Vec<Report> = (0..100)
            .map(|i| report(&format!("u{}", i % 7), b * 100 + i))
            .collect();
        let t = log.append(&batch).unwrap();
        assert_eq!(t, b as u64 + 1, "one ticket per append call");
        all.extend(batch);
    }
    log.wait_durable(10).unwrap();
    let back = replay_all(&log);
    assert_eq!(back, all.iter().map(quantize).collect::<Vec<_>>());
    let s = log.stats();
    assert_eq!(s.reports, 1000);
    assert_eq!(s.segments, 1);
    assert_eq!(s.oldest, Some(Timestamp(T0)));
    assert!(s.bytes > 0);
    assert!(
        log.wait_durable(11).is_err(),
        "an unissued ticket is an error, not a hang"
    );
}

#[test]
fn rich_reports_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = report("rich", 1);
    r.attributes.insert("fuel".into(), AttrValue::Num(0.75));
    r.attributes
        .insert("fw".into(), AttrValue::Text("1.2.3".into()));
    r.id = Some(ReportId::Seq {
        source: "radar".into(),
        seq: 42,
    });
    r.start = Some(Timestamp(T0 + 500));
    r.ce = Some(3.2);
    r.le = Some(7.9);
    r.stale = Some(Timestamp(T0 + 1000 + 1234));
    let mut k = report("rich", 2);
    k.id = Some(ReportId::Key("abc".into()));
    k.label = None;
    k.cot_type = None;
    {
        let log = SegmentLog::open(cfg(dir.path())).unwrap();
        let t = log.append(&[r.clone(), k.clone()]).unwrap();
        log.wait_durable(t).unwrap();
        log.close().unwrap();
        assert!(log.append(&[r.clone()]).is_err(), "closed");
    }
    let log = SegmentLog::open(cfg(dir.path())).unwrap();
    assert_eq!(replay_all(&log), vec![quantize(&r), quantize(&k)]);
    assert_eq!(
        track(&log, "rich", 0, i64::MAX, 10),
        vec![quantize(&r), quantize(&k)]
    );
}

/// Appends nobody waits for are committed after `lazy_commit_ms` at the latest; a waiter
/// (`wait_durable`, `expedite`) gets its ticket committed without that wait.
#[test]
fn unwaited_appends_wait_for_the_lazy_commit_and_waiters_do_not() {
    let dir = tempfile::tempdir().unwrap();
    // A lazy bound far beyond the test: only expediting can make these durable.
    let log = SegmentLog::open(SegmentLogConfig {
        lazy_commit_ms: 600_000,
        ..cfg(dir.path())
    })
    .unwrap();
    let rx = log.durable();
    // The first commit also writes the new segment's header, which goes at once.
    let t0 = log.append(&[report("lazy", 0)]).unwrap();
    log.wait_durable(t0).unwrap();
    let t1 = log.append(&[report("lazy", 1)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        rx.borrow().ticket,
        t0,
        "an unwaited append was committed early"
    );
    let t2 = log.append(&[report("lazy", 2)]).unwrap();
    log.expedite(t1);
    log.wait_durable(t2).unwrap();
    assert_eq!(replay_all(&log).len(), 3);

    // With a short bound, an append nobody waits for still becomes durable by itself.
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        lazy_commit_ms: 5,
        ..cfg(dir.path())
    })
    .unwrap();
    let mut rx = log.durable();
    let t = log.append(&[report("soon", 1)]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let d = rt
        .block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                rx.wait_for(|d| d.ticket >= t),
            )
            .await
            .map(|r| r.map(|d| *d))
        })
        .expect("never committed without a waiter")
        .unwrap();
    assert!(!d.failed);
}

#[test]
fn group_commit_orders_tickets_and_durable_watch() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        commit_delay_ms: 2,
        ..cfg(dir.path())
    })
    .unwrap();
    let rx = log.durable();
    assert_eq!(rx.borrow().ticket, 0);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                for i in 0..200 {
                    let ticket = log.append(&[report(&format!("t{t}"), i)]).unwrap();
                    assert!(ticket > last, "tickets increase");
                    last = ticket;
                    if i % 50 == 0 {
                        log.wait_durable(ticket).unwrap();
                    }
                }
                last
            })
        })
        .collect();
    let max = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .max()
        .unwrap();
    assert_eq!(max, 800);
    log.wait_durable(max).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut rx = rx;
    let d = rt
        .block_on(rx.wait_for(|d| d.ticket >= max))
        .map(|d| *d)
        .unwrap();
    assert!(!d.failed);
    assert_eq!(replay_all(&log).len(), 800);
    // Per thread, replay order is append order.
    let mut last = std::collections::HashMap::new();
    for r in replay_all(&log) {
        let prev = last.insert(r.uid.clone(), r.time);
        assert!(prev.is_none_or(|p| p < r.time));
    }
}

#[test]
fn reopen_after_clean_close_continues() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = SegmentLog::open(cfg(dir.path())).unwrap();
        let t = log
            .append(&(0..50).map(|i| report("a", i)).collect::<Vec<_>>())
            .unwrap();
        log.wait_durable(t).unwrap();
    } // drop closes: sidecar written
    assert_eq!(files(dir.path(), "idx").len(), 1);
    {
        let log = SegmentLog::open(cfg(dir.path())).unwrap();
        assert_eq!(log.stats().reports, 50);
        let t = log
            .append(&(50..100).map(|i| report("a", i)).collect::<Vec<_>>())
            .unwrap();
        log.wait_durable(t).unwrap();
        assert_eq!(track(&log, "a", 0, i64::MAX, 1000).len(), 100);
    }
    let log = SegmentLog::open(cfg(dir.path())).unwrap();
    let back = replay_all(&log);
    assert_eq!(back.len(), 100);
    assert!(back.windows(2).all(|w| w[0].time < w[1].time));
    assert_eq!(
        log.stats().segments,
        3,
        "two sealed plus a fresh active one"
    );
    // Empty segments do not pile up across restarts.
    drop(log);
    let log = SegmentLog::open(cfg(dir.path())).unwrap();
    assert_eq!(log.stats().segments, 3);
}

#[test]
fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _log = SegmentLog::open(cfg(dir.path())).unwrap();
    let err = SegmentLog::open(cfg(dir.path())).err().unwrap();
    assert!(err.to_string().contains("in use"));
}

/// Writes 100 reports, closes, then returns the newest segment's path and length.
fn hundred(dir: &Path) -> (PathBuf, u64) {
    let log = SegmentLog::open(cfg(dir)).unwrap();
    for b in 0..10 {
        let t = log
            .append(&(0..10).map(|i| report("a", b * 10 + i)).collect::<Vec<_>>())
            .unwrap();
        log.wait_durable(t).unwrap();
    }
    drop(log);
    let seg = files(dir, "log").pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    (seg, len)
}

#[test]
fn torn_tail_is_truncated_and_earlier_data_kept() {
    for tail in [
        b"garbage!".to_vec(),
        // A frame header promising more than is there: a torn write.
        [1000u32.to_le_bytes(), 0u32.to_le_bytes()]
            .concat()
            .into_iter()
            .chain([1, 2, 3])
            .collect(),
        vec![0u8; 3],
        vec![0u8; 4096],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (seg, len) = hundred(dir.path());
        // As after a crash: no sidecar, junk after the last good frame.
        fs::remove_file(seg.with_extension("idx")).unwrap();
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&tail)
            .unwrap();
        let log = SegmentLog::open(cfg(dir.path())).unwrap();
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            len,
            "truncated to the last good frame"
        );
        assert_eq!(replay_all(&log).len(), 100);
        assert_eq!(track(&log, "a", 0, i64::MAX, 1000).len(), 100);
    }
}

#[test]
fn corrupt_last_frame_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, len) = hundred(dir.path());
    fs::remove_file(seg.with_extension("idx")).unwrap();
    // Flip a byte in the last frame's payload: its CRC fails, the 9 frames before it survive.
    let mut bytes = fs::read(&seg).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x55;
    fs::write(&seg, &bytes).unwrap();
    let log = SegmentLog::open(cfg(dir.path())).unwrap();
    assert_eq!(replay_all(&log).len(), 90);
    assert!(fs::metadata(&seg).unwrap().len() < len);
}

fn small_segments(dir: &Path) -> SegmentLogConfig {
    SegmentLogConfig {
        segment_bytes: 4096,
        ..cfg(dir)
    }
}

/// Appends `n` reports of `uids` entities, one batch of 20 per commit; returns them.
fn fill(log: &SegmentLog, n: i64, uids: i64) -> Vec<Report> {
    let mut all = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
        let batch: Vec<Report> = chunk
            .iter()
            .map(|&i| report(&format!("u{}", i % uids), i))
            .collect();
        let t = log.append(&batch).unwrap();
        log.wait_durable(t).unwrap();
        all.extend(batch);
    }
    all
}

#[test]
fn corruption_inside_a_sealed_segment_skips_its_rest() {
    let dir = tempfile::tempdir().unwrap();
    let all = {
        let log = SegmentLog::open(small_segments(dir.path())).unwrap();
        fill(&log, 2000, 5)
    };
    let segs = files(dir.path(), "log");
    assert!(segs.len() > 4, "{} segments", segs.len());
    // Damage the middle of the second segment and lose its sidecar.
    let victim = &segs[1];
    let mut bytes = fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    fs::write(victim, &bytes).unwrap();
    fs::remove_file(victim.with_extension("idx")).unwrap();
    // And corrupt another segment's sidecar: it is rebuilt on use.
    let idx = segs[2].with_extension("idx");
    let mut ib = fs::read(&idx).unwrap();
    let n = ib.len();
    ib[n - 1] ^= 1;
    fs::write(&idx, &ib).unwrap();

    let log = SegmentLog::open(small_segments(dir.path())).unwrap();
    let back = replay_all(&log);
    assert!(
        back.len() < all.len() && back.len() > all.len() / 2,
        "{}",
        back.len()
    );
    // What comes back is an in-order subsequence of what went in.
    let want: Vec<Report> = all.iter().map(quantize).collect();
    let mut it = want.iter();
    for r in &back {
        assert!(
            it.any(|w| w == r),
            "replay returned something not appended, or out of order"
        );
    }
    // Track sees the same subset.
    let n_track: usize = (0..5)
        .map(|u| track(&log, &format!("u{u}"), 0, i64::MAX, 10_000).len())
        .sum();
    assert_eq!(n_track, back.len());
    assert_eq!(
        fs::metadata(victim).unwrap().len(),
        bytes.len() as u64,
        "sealed segments are not truncated"
    );
}

#[test]
fn track_ranges_and_limits_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(small_segments(dir.path())).unwrap();
    let all = fill(&log, 3000, 3);
    assert!(log.stats().segments > 5);
    assert!(
        !files(dir.path(), "idx").is_empty(),
        "sealed segments have sidecars"
    );
    let model = |uid: &str, from: i64, to: i64, limit: usize| {
        let mut v: Vec<Report> = all
            .iter()
            .filter(|r| r.uid == uid && r.time.0 >= from && r.time.0 <= to)
            .map(quantize)
            .collect();
        v.sort_by_key(|r| r.time);
        let skip = v.len().saturating_sub(limit);
        v.split_off(skip)
    };
    for (uid, from, to, limit) in [
        ("u0", 0, i64::MAX, 100_000),
        ("u1", T0 + 500_000, T0 + 1_500_000, 100_000),
        ("u2", T0 + 500_000, T0 + 1_500_000, 7),
        ("u0", T0, T0, 10),
        ("u0", T0 + 10_000_000, i64::MAX, 10),
        ("nobody", 0, i64::MAX, 10),
        ("u1", 0, i64::MAX, 0),
    ] {
        let got = track(&log, uid, from, to, limit);
        assert_eq!(
            got,
            model(uid, from, to, limit),
            "{uid} {from} {to} {limit}"
        );
    }
    // Reopen: everything from sidecars.
    drop(log);
    let log = SegmentLog::open(small_segments(dir.path())).unwrap();
    assert_eq!(
        track(&log, "u2", 0, i64::MAX, 50),
        model("u2", 0, i64::MAX, 50)
    );
}

#[test]
fn track_is_sorted_by_time_with_out_of_order_reports() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(small_segments(dir.path())).unwrap();
    let times = [5, 1, 9, 3, 3, 7, 2, 8];
    let mut batch = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let mut r = report("x", *t);
        r.callsign = Some(format!("c{}", i % 2).into()); // two streams for one uid
        batch.push(r);
    }
    let t = log.append(&batch).unwrap();
    log.wait_durable(t).unwrap();
    let got = track(&log, "x", 0, i64::MAX, 100);
    let got_times: Vec<i64> = got.iter().map(|r| (r.time.0 - T0) / 1000).collect();
    assert_eq!(got_times, vec![1, 2, 3, 3, 5, 7, 8, 9]);
    // Equal times keep append order: index 3 (c1) before index 4 (c0).
    assert_eq!(got[2].callsign.as_deref(), Some("c1"));
    assert_eq!(got[3].callsign.as_deref(), Some("c0"));
    let latest = track(&log, "x", 0, i64::MAX, 3);
    assert_eq!(
        latest
            .iter()
            .map(|r| (r.time.0 - T0) / 1000)
            .collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
}

#[test]
fn retention_by_size_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        max_bytes: 40_000,
        ..small_segments(dir.path())
    })
    .unwrap();
    fill(&log, 5000, 5);
    // Size retention runs by itself after each seal.
    let s = log.stats();
    assert!(s.bytes <= 40_000 + 8192, "bytes {}", s.bytes);
    let back = replay_all(&log);
    assert!(back.len() < 5000 && !back.is_empty());
    assert_eq!(
        back.last().unwrap().time,
        Timestamp(T0 + 4999 * 1000),
        "newest kept"
    );
    let first = back[0].time;
    assert_eq!(s.oldest, Some(first));

    // Age: everything older than `now - max_age` in sealed segments goes.
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        max_age_ms: 1_000_000,
        ..small_segments(dir.path())
    })
    .unwrap();
    fill(&log, 3000, 5);
    let before = log.stats();
    let now = Timestamp(T0 + 3000 * 1000);
    let freed = log.enforce_retention(now).unwrap();
    let after = log.stats();
    assert!(freed > 0);
    assert_eq!(before.bytes - after.bytes, freed);
    // Whole segments go: the oldest survivor is at most one segment (~300 reports) older
    // than the cutoff.
    assert!(
        after.oldest.unwrap().0 >= T0 + 1_500_000,
        "{:?}",
        after.oldest
    );
    for r in replay_all(&log) {
        assert!(r.time.0 > T0);
    }
    assert!(after.segments < before.segments);
    // Nothing left to do.
    assert_eq!(log.enforce_retention(now).unwrap(), 0);
    // Far future: all sealed segments go, the active one stays.
    log.enforce_retention(Timestamp(T0 * 2)).unwrap();
    assert!(log.stats().segments <= 2);
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        segment_max_age_ms: 1,
        ..cfg(dir.path())
    })
    .unwrap();
    for i in 0..3 {
        let t = log.append(&[report("a", i)]).unwrap();
        log.wait_durable(t).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    assert_eq!(log.stats().segments, 3);
    assert_eq!(replay_all(&log).len(), 3);
}

#[test]
fn backpressure_with_a_tiny_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        max_buffer_bytes: 100,
        ..cfg(dir.path())
    })
    .unwrap();
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    log.append(&[report(&format!("b{t}"), i)]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    log.wait_durable(900).unwrap();
    assert_eq!(replay_all(&log).len(), 900);
}

#[test]
fn concurrent_append_and_track() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        segment_bytes: 16 * 1024,
        ..cfg(dir.path())
    })
    .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for b in 0..200 {
                let batch: Vec<Report> = (0..20)
                    .map(|i| report(&format!("c{}", i % 4), b * 20 + i))
                    .collect();
                log.append(&batch).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = log.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let pts = track(&log, "c1", 0, i64::MAX, 100_000);
                    assert!(pts.windows(2).all(|w| w[0].time <= w[1].time));
                    assert!(pts.len() >= seen, "durable points never disappear");
                    seen = pts.len();
                    let mut n = 0;
                    log.replay(&mut |_| n += 1).unwrap();
                    let _ = log.stats();
                }
            })
        })
        .collect();
    writer.join().unwrap();
    log.wait_durable(200).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(track(&log, "c1", 0, i64::MAX, 100_000).len(), 1000);
}

#[test]
fn bad_headers_and_orphans_do_not_break_open() {
    let dir = tempfile::tempdir().unwrap();
    hundred(dir.path());
    // A newest segment torn during creation (empty), and an orphan sidecar.
    fs::write(dir.path().join("seg-00000000000000000009.log"), b"").unwrap();
    fs::write(dir.path().join("seg-00000000000000000005.idx"), b"junk").unwrap();
    fs::write(dir.path().join("seg-00000000000000000004.idx.tmp"), b"junk").unwrap();
    let log = SegmentLog::open(cfg(dir.path())).unwrap();
    assert_eq!(replay_all(&log).len(), 100);
    assert!(!dir.path().join("seg-00000000000000000009.log").exists());
    assert!(!dir.path().join("seg-00000000000000000005.idx").exists());
    assert!(!dir.path().join("seg-00000000000000000004.idx.tmp").exists());
}

#[test]
fn bad_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for c in [
        SegmentLogConfig {
            commit_delay_ms: 21,
            ..cfg(dir.path())
        },
        SegmentLogConfig {
            segment_bytes: 10,
            ..cfg(dir.path())
        },
        SegmentLogConfig {
            segment_bytes: 8 << 30,
            ..cfg(dir.path())
        },
    ] {
        assert!(matches!(
            SegmentLog::open(c),
            Err(rampart_history::HistoryError::Config(_))
        ));
    }
}

#[test]
fn fsync_mode_works() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        segment_bytes: 4096,
        ..SegmentLogConfig::new(dir.path())
    })
    .unwrap();
    fill(&log, 500, 3);
    assert_eq!(replay_all(&log).len(), 500);
}

#[test]
fn large_tracks_match_a_model() {
    // Enough points for the two-threaded build, over many sealed segments.
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        segment_bytes: 64 * 1024,
        ..cfg(dir.path())
    })
    .unwrap();
    let mut all = Vec::new();
    for chunk in (0..60_000i64).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<Report> = chunk
            .iter()
            .map(|&i| report(if i % 3 == 0 { "other" } else { "big" }, i))
            .collect();
        log.append(&batch).unwrap();
        all.extend(batch);
    }
    log.wait_durable(60).unwrap();
    assert!(log.stats().segments > 5);
    let model = |from: i64, to: i64, limit: usize| {
        let v: Vec<Report> = all
            .iter()
            .filter(|r| r.uid == "big" && r.time.0 >= from && r.time.0 <= to)
            .map(quantize)
            .collect();
        let skip = v.len().saturating_sub(limit);
        v[skip..].to_vec()
    };
    for (from, to, limit) in [
        (0, i64::MAX, 1_000_000),
        (T0 + 1_000_000, T0 + 50_000_000, 1_000_000),
        (T0 + 7_000_000, i64::MAX, 1_000_000),
        (0, T0 + 33_000_000, 1_000_000),
        (0, i64::MAX, 39_999),
        (0, i64::MAX, 5),
    ] {
        let got = track(&log, "big", from, to, limit);
        let want = model(from, to, limit);
        assert_eq!(got.len(), want.len(), "{from} {to} {limit}");
        assert!(got == want, "{from} {to} {limit}");
    }
}

fn window(log: &dyn HistoryStore, from: i64, to: i64, max: usize) -> Window {
    log.window(&WindowQuery {
        from: Timestamp(from),
        to: Timestamp(to),
        max_records: max,
    })
    .unwrap()
}

#[test]
fn window_scans_every_entity_in_a_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(small_segments(dir.path())).unwrap();
    let all = fill(&log, 2000, 5);
    assert!(files(dir.path(), "log").len() > 4);
    let (from, to) = (T0 + 500_000, T0 + 1_499_000);
    let w = window(&*log, from, to, 1_000_000);
    let want: Vec<Report> = all
        .iter()
        .filter(|r| from <= r.time.0 && r.time.0 <= to)
        .map(quantize)
        .collect();
    assert_eq!(want.len(), 1000);
    assert_eq!(w.reports, want);
    assert!(!w.truncated);
    // Exactly as many as the limit: all of them, not truncated.
    let w = window(&*log, from, to, 1000);
    assert_eq!(w.reports.len(), 1000);
    assert!(!w.truncated);
    // Fewer allowed: the newest are kept, oldest first, and the answer says so.
    let w = window(&*log, from, to, 100);
    assert_eq!(w.reports, want[900..]);
    assert!(w.truncated);
    // Nothing in the window, or a reversed one.
    assert!(window(&*log, T0 - 10_000, T0 - 1, 10).reports.is_empty());
    assert!(window(&*log, to, from, 10).reports.is_empty());
    // Reports still in the segment being written are found too, after reopening as well.
    drop(log);
    let log = SegmentLog::open(small_segments(dir.path())).unwrap();
    assert_eq!(window(&*log, from, to, 1_000_000).reports, want);
}

#[test]
fn window_is_bounded_by_the_store_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig {
        max_window_records: 7,
        ..small_segments(dir.path())
    })
    .unwrap();
    let all = fill(&log, 300, 3);
    let w = window(&*log, 0, i64::MAX, 1_000_000);
    let want: Vec<Report> = all[293..].iter().map(quantize).collect();
    assert_eq!(w.reports, want);
    assert!(w.truncated);
    assert!(
        SegmentLog::open(SegmentLogConfig {
            max_window_records: 0,
            ..cfg(tempfile::tempdir().unwrap().path())
        })
        .is_err()
    );
}

/// A store without its own scan: the trait's default (over `replay`) is used.
struct Plain(Arc<SegmentLog>);

impl HistoryStore for Plain {
    fn append(
        &self,
        r: &[Report],
    ) -> Result<rampart_history::Ticket, rampart_history::HistoryError> {
        self.0.append(r)
    }
    fn durable(&self) -> tokio::sync::watch::Receiver<rampart_history::Durable> {
        self.0.durable()
    }
    fn wait_durable(
        &self,
        t: rampart_history::Ticket,
    ) -> Result<(), rampart_history::HistoryError> {
        self.0.wait_durable(t)
    }
    fn track(&self, q: &TrackQuery) -> Result<Vec<Report>, rampart_history::HistoryError> {
        self.0.track(q)
    }
    fn replay(&self, f: &mut dyn FnMut(Report)) -> Result<u64, rampart_history::HistoryError> {
        self.0.replay(f)
    }
    fn enforce_retention(&self, now: Timestamp) -> Result<u64, rampart_history::HistoryError> {
        self.0.enforce_retention(now)
    }
    fn stats(&self) -> rampart_history::HistoryStats {
        self.0.stats()
    }
}

#[test]
fn the_default_window_scan_agrees_with_the_segment_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(small_segments(dir.path())).unwrap();
    fill(&log, 900, 4);
    let plain = Plain(log.clone());
    for (from, to, max) in [
        (T0, T0 + 900_000, 10_000),
        (T0 + 100_000, T0 + 350_000, 50),
        (T0 + 800_000, i64::MAX, 3),
    ] {
        assert_eq!(
            window(&plain, from, to, max),
            window(&*log, from, to, max),
            "{from}..{to} max {max}"
        );
    }
}
