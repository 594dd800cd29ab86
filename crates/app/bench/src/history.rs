//! History benchmarks: bytes on disk per report and append throughput (group commit, fsync
//! on), track query latency over sealed segments with sidecar indexes, and replay rate.
//!
//! Every store lives in a temporary directory that is deleted afterwards. Reports are
//! realistic position reports: moving entities with course, speed, height, a 60 s stale time,
//! a label and provenance, no attributes and no id.

use std::path::Path;
use std::time::Instant;

use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig, TrackQuery};
use rampart_model::{Label, Provenance, Report, Text, Timestamp, Uid};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::Figures;
use crate::util::quantile;

/// Reports per append call, as the engine batches them.
const BATCH: usize = 1000;
/// 2026-01-01T00:00:00Z: the simulated clock's start.
const T0: i64 = 1_767_225_600_000;
/// Seconds between two reports of one entity.
const INTERVAL_MS: i64 = 5_000;

/// One simulated entity: a ground vehicle or an aircraft moving on a slowly turning course.
struct Mover {
    uid: Uid,
    callsign: Text,
    cot_type: Text,
    lat: f64,
    lon: f64,
    hae: f64,
    course: f64,
    speed: f64,
    provenance: Provenance,
    label: Label,
}

/// A fleet of movers that emits their reports round by round (shared with the storage
/// engine comparison, so every engine sees the same workload).
pub(crate) struct Fleet {
    movers: Vec<Mover>,
    rng: SmallRng,
}

impl Fleet {
    pub(crate) fn new(n: usize, seed: u64, prefix: &str) -> Fleet {
        let mut rng = SmallRng::seed_from_u64(seed);
        let secret = Label {
            classification: "SECRET".into(),
            releasability: vec!["NATO".into()],
        };
        let movers = (0..n)
            .map(|i| {
                let air = rng.random_bool(0.1);
                Mover {
                    uid: format!("{prefix}-{i:06}").into(),
                    callsign: format!("{}{}", if air { "EAGLE" } else { "WOLF" }, i).into(),
                    cot_type: if air { "a-f-A-M-F" } else { "a-f-G-U-C" }.into(),
                    lat: rng.random_range(48.0..54.0),
                    lon: rng.random_range(6.0..14.0),
                    hae: if air {
                        rng.random_range(3_000.0..10_000.0)
                    } else {
                        rng.random_range(0.0..800.0)
                    },
                    course: rng.random_range(0.0..360.0),
                    speed: if air {
                        rng.random_range(100.0..250.0)
                    } else {
                        rng.random_range(0.0..25.0)
                    },
                    // Reports arrive through a few dozen gateways.
                    provenance: Provenance::new("cot-tcp", &format!("gateway-{:02}", i % 40)),
                    label: if i % 10 == 0 {
                        secret.clone()
                    } else {
                        Label::unclassified()
                    },
                }
            })
            .collect();
        Fleet { movers, rng }
    }

    /// A random arrival delay below `max_ms`, from the fleet's own generator.
    pub(crate) fn jitter_ms(&mut self, max_ms: i64) -> i64 {
        self.rng.random_range(0..max_ms.max(1))
    }

    /// Moves entity `i` by one interval and returns its report at `time`.
    pub(crate) fn report(&mut self, i: usize, time: i64) -> Report {
        let rng = &mut self.rng;
        let m = &mut self.movers[i];
        m.course = (m.course + rng.random_range(-5.0..5.0)).rem_euclid(360.0);
        m.speed = (m.speed + rng.random_range(-0.5..0.5)).max(0.0);
        let dist = m.speed * INTERVAL_MS as f64 / 1000.0;
        let rad = m.course.to_radians();
        m.lat = (m.lat + dist * rad.cos() / 111_320.0).clamp(-89.0, 89.0);
        m.lon += dist * rad.sin() / (111_320.0 * m.lat.to_radians().cos());
        if m.lon > 180.0 {
            m.lon -= 360.0;
        }
        m.hae = (m.hae + rng.random_range(-2.0..2.0)).max(-100.0);
        Report {
            uid: m.uid.clone(),
            cot_type: Some(m.cot_type.clone()),
            callsign: Some(m.callsign.clone()),
            lat: m.lat,
            lon: m.lon,
            hae: Some(m.hae),
            course: Some(m.course),
            speed: Some(m.speed),
            how: Some("m-g".into()),
            time: Timestamp(time),
            stale: Some(Timestamp(time + 60_000)),
            label: Some(m.label.clone()),
            provenance: m.provenance.clone(),
            ..Report::default()
        }
    }

    /// The `k`-th report of the round-robin schedule: entity `k % n` in round `k / n`, with
    /// up to a second of arrival jitter.
    fn next(&mut self, k: usize) -> Report {
        let n = self.movers.len();
        let round = (k / n) as i64;
        let jitter = self.rng.random_range(0..1000);
        self.report(k % n, T0 + round * INTERVAL_MS + jitter)
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    }
}

fn open(cfg: SegmentLogConfig) -> std::sync::Arc<SegmentLog> {
    match SegmentLog::open(cfg) {
        Ok(l) => l,
        Err(e) => panic!("cannot open the history store: {e}"),
    }
}

/// Appends `reports` in batches of [`BATCH`], then waits for the last commit. Returns seconds.
fn append_all(log: &SegmentLog, mut next: impl FnMut(usize) -> Report, reports: usize) -> f64 {
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let mut ticket = 0;
    for k in 0..reports {
        batch.push(next(k));
        if batch.len() == BATCH || k + 1 == reports {
            ticket = log
                .append(&batch)
                .unwrap_or_else(|e| panic!("append failed: {e}"));
            batch.clear();
        }
    }
    if let Err(e) = log.wait_durable(ticket) {
        panic!("commit failed: {e}");
    }
    started.elapsed().as_secs_f64()
}

/// Bytes on disk per report and append throughput: `reports` position reports of `entities`
/// moving entities, appended in batches of 1000 with fsync on.
///
/// Throughput counts report generation too, and ends when the last commit is durable. Bytes
/// are measured after a clean close, so they include every frame, dictionary and sidecar.
pub fn bytes_per_report(entities: usize, reports: usize, seed: u64) -> Figures {
    let mut fig = Figures::new("history: bytes per report and append rate");
    let dir = tempdir();
    let log = open(SegmentLogConfig::new(dir.path()));
    let mut fleet = Fleet::new(entities.max(1), seed, "unit");
    // Generation is timed separately so the append figure can be read both ways.
    let gen_started = Instant::now();
    let pre: Vec<Report> = (0..reports.min(BATCH * 10))
        .map(|k| fleet.next(k))
        .collect();
    let gen_per_report = gen_started.elapsed().as_secs_f64() / pre.len().max(1) as f64;
    let mut fleet = Fleet::new(entities.max(1), seed, "unit");
    let secs = append_all(&log, |k| fleet.next(k), reports);
    let stats = log.stats();
    if let Err(e) = log.close() {
        panic!("close failed: {e}");
    }
    let bytes = dir_bytes(dir.path());
    fig.push("entities", entities as f64, "");
    fig.push("reports", reports as f64, "");
    fig.push("segments", stats.segments as f64, "");
    fig.push("bytes on disk", bytes as f64, "B");
    fig.push(
        "bytes per report",
        bytes as f64 / reports.max(1) as f64,
        "B",
    );
    fig.push(
        "append rate (incl. generation, fsync)",
        reports as f64 / secs,
        "reports/s",
    );
    let append_only = secs - gen_per_report * reports as f64;
    if append_only > 0.0 {
        fig.push(
            "append rate (excl. generation)",
            reports as f64 / append_only,
            "reports/s",
        );
    }
    fig
}

/// Track query latency: one entity with `points` points, each followed by 10 reports of
/// `other_entities` other entities, in 4 MiB segments so most of the track is in sealed
/// segments read through sidecar indexes. Reports p50/p99 of 20 runs of a full-range query
/// (limit = points), a 10 % sub-range query and a latest-1000 query.
pub fn track(points: usize, other_entities: usize, seed: u64) -> Figures {
    let mut fig = Figures::new("history: track query");
    let dir = tempdir();
    let log = open(SegmentLogConfig {
        segment_bytes: 4 << 20,
        ..SegmentLogConfig::new(dir.path())
    });
    let mut target = Fleet::new(1, seed, "track");
    let mut others = Fleet::new(other_entities.max(1), seed ^ 0x5eed, "other");
    let per_point = 11;
    let total = points * per_point;
    append_all(
        &log,
        |k| {
            let point = k / per_point;
            let t = T0 + point as i64 * 1000;
            if k % per_point == 0 {
                target.report(0, t)
            } else {
                let r = others.next(k);
                Report {
                    time: Timestamp(t),
                    stale: Some(Timestamp(t + 60_000)),
                    ..r
                }
            }
        },
        total,
    );
    let stats = log.stats();
    fig.push("track points", points as f64, "");
    fig.push("reports stored", total as f64, "");
    fig.push("segments", stats.segments as f64, "");

    let t_end = T0 + points as i64 * 1000;
    let queries = [
        ("full range", T0, t_end, points),
        (
            "10% sub-range",
            T0 + (t_end - T0) * 45 / 100,
            T0 + (t_end - T0) * 55 / 100,
            points,
        ),
        ("latest 1000", T0, t_end, 1000),
    ];
    for (name, from, to, limit) in queries {
        let q = TrackQuery {
            uid: "track-000000".into(),
            from: Timestamp(from),
            to: Timestamp(to),
            limit,
        };
        let mut samples = Vec::new();
        let mut n = 0;
        for run in 0..21 {
            let started = Instant::now();
            let pts = log
                .track(&q)
                .unwrap_or_else(|e| panic!("track query failed: {e}"));
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            n = pts.len();
            if run == 0 {
                // First run maps segments and sidecars.
                fig.push(&format!("{name}: first run"), ms, "ms");
            } else {
                samples.push(ms);
            }
        }
        fig.push(&format!("{name}: points returned"), n as f64, "");
        fig.push(&format!("{name}: p50"), quantile(&mut samples, 0.5), "ms");
        fig.push(&format!("{name}: p99"), quantile(&mut samples, 0.99), "ms");
    }
    fig
}

/// Replay rate: `reports` reports of `entities` entities are stored, the store is closed and
/// reopened (timed), then replayed in full (timed).
pub fn replay(entities: usize, reports: usize, seed: u64) -> Figures {
    let mut fig = Figures::new("history: replay");
    let dir = tempdir();
    {
        let log = open(SegmentLogConfig {
            fsync: false, // setup only; replay reads what is on disk either way
            ..SegmentLogConfig::new(dir.path())
        });
        let mut fleet = Fleet::new(entities.max(1), seed, "unit");
        append_all(&log, |k| fleet.next(k), reports);
    }
    let started = Instant::now();
    let log = open(SegmentLogConfig::new(dir.path()));
    fig.push("reopen", started.elapsed().as_secs_f64() * 1000.0, "ms");
    let started = Instant::now();
    let mut n = 0u64;
    let mut checksum = 0.0;
    let count = log
        .replay(&mut |r| {
            n += 1;
            checksum += r.lat;
        })
        .unwrap_or_else(|e| panic!("replay failed: {e}"));
    let secs = started.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    fig.push("reports replayed", count as f64, "");
    fig.push("replay time", secs * 1000.0, "ms");
    fig.push("replay rate", n as f64 / secs, "reports/s");
    fig
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(f: &Figures, name: &str) -> f64 {
        f.rows
            .iter()
            .find(|r| r.0 == name)
            .map(|r| r.1)
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn smoke() {
        let b = bytes_per_report(50, 3000, 1);
        assert!(figure(&b, "bytes per report") > 0.0);
        let t = track(300, 20, 2);
        assert_eq!(figure(&t, "full range: points returned"), 300.0);
        assert_eq!(figure(&t, "latest 1000: points returned"), 300.0);
        let r = replay(20, 2000, 3);
        assert_eq!(figure(&r, "reports replayed"), 2000.0);
    }

    // The release figures: `cargo test --release -p rampart-bench history -- --ignored --nocapture`.

    #[test]
    #[ignore]
    fn figures_bytes_per_report() {
        println!("{}", bytes_per_report(100_000, 3_000_000, 1));
    }

    #[test]
    #[ignore]
    fn figures_track() {
        println!("{}", track(100_000, 10_000, 2));
    }

    #[test]
    #[ignore]
    fn figures_replay() {
        println!("{}", replay(100_000, 3_000_000, 3));
    }
}
