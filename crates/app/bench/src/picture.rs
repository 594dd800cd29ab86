//! Live-picture benchmarks: bounding-box, radius and nearest-neighbour query latency over a
//! realistic scatter of entities, and memory per entity plus fold throughput.
//!
//! Positions are uniform over Europe (lat 30..60, lon -10..40) with 30% of entities in 20
//! dense clusters, the shape of a real deployment (cities, exercise areas). Only folds and
//! queries are timed; building reports is kept out of the timed sections.

use std::time::Instant;

use rampart_model::{Provenance, Report, Text, Timestamp};
use rampart_picture::{BBox, Near, Picture, PictureConfig, Query};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::Figures;
use crate::util::{quantile, rss_bytes};

/// Southern, northern, western and eastern edges of the scatter region, in degrees.
const LAT0: f64 = 30.0;
const LAT1: f64 = 60.0;
const LON0: f64 = -10.0;
const LON1: f64 = 40.0;
/// Share of entities placed in clusters rather than uniformly.
const CLUSTER_SHARE: f64 = 0.3;
/// Number of clusters.
const CLUSTERS: usize = 20;
/// Approximate cluster radius (standard deviation) in degrees.
const CLUSTER_SIGMA_DEG: f64 = 0.3;
/// Results a bbox query is sized to return in the uniform part of the region.
const TARGET_RESULTS: f64 = 1_000.0;
/// Reports built per batch, so report construction stays out of the timed fold loop while
/// the buffer stays small next to the picture.
const BATCH: usize = 10_000;
/// The benchmark's fixed "now": 2026-01-01T00:00:00Z.
const NOW_MS: i64 = 1_767_225_600_000;
/// Metres per degree of latitude on the mean sphere.
const M_PER_DEG: f64 = 111_195.08;

const TYPES: [&str; 6] = [
    "a-f-G-U-C",
    "a-f-G-E-V",
    "a-h-G-U-C-I",
    "a-n-A-C-F",
    "a-u-G",
    "a-f-S-X",
];
const HOWS: [&str; 2] = ["m-g", "h-e"];

/// splitmix64: a deterministic 64-bit mix, used to derive stable uids from an index.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A 36-character UUID-like uid for entity `i` (heap-allocated in a `CompactString`).
fn long_uid(seed: u64, i: u64) -> String {
    let a = mix(seed ^ i);
    let b = mix(a ^ 0x5555);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// A short uid (stored inline, no allocation).
fn short_uid(i: u64) -> String {
    format!("ent-{i}")
}

/// Scatter generator: uniform region plus clusters.
struct Scatter {
    clusters: Vec<(f64, f64)>,
}

impl Scatter {
    fn new(rng: &mut SmallRng) -> Self {
        let clusters = (0..CLUSTERS)
            .map(|_| (rng.random_range(LAT0..LAT1), rng.random_range(LON0..LON1)))
            .collect();
        Scatter { clusters }
    }

    /// Approximately normal deviate (sum of uniforms), cheap and good enough for clusters.
    fn gauss(rng: &mut SmallRng) -> f64 {
        (0..4).map(|_| rng.random_range(-1.0..1.0)).sum::<f64>() * 0.866
    }

    /// The home position of entity `i`: a pure function of the seed and `i`, so updates can
    /// recompute it without reading the picture.
    fn home(&self, seed: u64, i: u64) -> (f64, f64) {
        self.point(&mut SmallRng::seed_from_u64(mix(seed ^ mix(i))))
    }

    fn point(&self, rng: &mut SmallRng) -> (f64, f64) {
        if rng.random_bool(CLUSTER_SHARE) {
            let (lat, lon) = self.clusters[rng.random_range(0..self.clusters.len())];
            let lat = (lat + Self::gauss(rng) * CLUSTER_SIGMA_DEG).clamp(-90.0, 90.0);
            let lon = (lon + Self::gauss(rng) * CLUSTER_SIGMA_DEG).clamp(-180.0, 180.0);
            (lat, lon)
        } else {
            (rng.random_range(LAT0..LAT1), rng.random_range(LON0..LON1))
        }
    }
}

/// A realistic report: type, how, callsign, ce, speed and course, no attributes.
fn report(uid: &str, lat: f64, lon: f64, t: i64, i: u64, provenance: &Provenance) -> Report {
    let mut r = Report::new(uid, lat, lon, Timestamp(t));
    r.cot_type = Some(Text::from(TYPES[(i % TYPES.len() as u64) as usize]));
    r.how = Some(Text::from(HOWS[(i % 2) as usize]));
    r.callsign = Some(Text::from(format!("CS{:06}", i % 1_000_000)));
    r.hae = Some(120.0);
    r.ce = Some(10.0);
    r.course = Some((i % 360) as f64);
    r.speed = Some(3.5);
    // Stale far enough away that every entity stays live during the benchmark.
    r.stale = Some(Timestamp(t + 3_600_000));
    r.provenance = provenance.clone();
    r
}

/// Folds `n` distinct entities in batches; returns the seconds spent inside `fold` only.
fn populate(
    p: &mut Picture,
    n: usize,
    seed: u64,
    uid: impl Fn(u64) -> String,
    batch: &mut Vec<Report>,
) -> f64 {
    let mut rng = SmallRng::seed_from_u64(seed);
    let scatter = Scatter::new(&mut rng);
    let prov = Provenance::new("bench", "generator");
    let now = Timestamp(NOW_MS);
    let mut secs = 0.0;
    let mut i = 0u64;
    while (i as usize) < n {
        batch.clear();
        let end = (i as usize + BATCH).min(n) as u64;
        for j in i..end {
            let (lat, lon) = scatter.home(seed, j);
            batch.push(report(&uid(j), lat, lon, NOW_MS, j, &prov));
        }
        let t = Instant::now();
        for r in batch.iter() {
            p.fold(r, now, now);
        }
        secs += t.elapsed().as_secs_f64();
        i = end;
    }
    batch.clear();
    secs
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Query latency over `entities` entities: `queries` random bounding boxes sized to return
/// about 1,000 entities each, the same number of radius queries of equal area, and
/// nearest-10 searches.
pub fn query(entities: usize, queries: usize, seed: u64) -> Figures {
    let mut f = Figures::new("picture-query");
    let mut p = Picture::new(PictureConfig::default());
    let mut batch = Vec::with_capacity(BATCH);
    let secs = populate(&mut p, entities, seed, |i| long_uid(seed, i), &mut batch);
    f.push("entities", p.len() as f64, "");
    f.push("build folds/s", entities as f64 / secs.max(1e-9), "folds/s");

    // Side of a square (in degrees) holding TARGET_RESULTS entities of the uniform part.
    let area = (LAT1 - LAT0) * (LON1 - LON0);
    let density = (entities as f64 * (1.0 - CLUSTER_SHARE) / area).max(1e-9);
    let side = (TARGET_RESULTS / density)
        .sqrt()
        .min((LAT1 - LAT0).min(LON1 - LON0));
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xB0B);
    let centre = |rng: &mut SmallRng| {
        (
            rng.random_range(LAT0 + side / 2.0..=LAT1 - side / 2.0),
            rng.random_range(LON0 + side / 2.0..=LON1 - side / 2.0),
        )
    };

    // Warm caches and the allocator so the first samples are not outliers of setup.
    for _ in 0..queries.min(20) {
        let (lat, lon) = centre(&mut rng);
        let q = Query {
            bbox: Some(BBox {
                min_lon: lon - side / 2.0,
                min_lat: lat - side / 2.0,
                max_lon: lon + side / 2.0,
                max_lat: lat + side / 2.0,
            }),
            ..Query::default()
        };
        std::hint::black_box(p.query(&q).len());
    }

    let mut bbox_ms = Vec::with_capacity(queries);
    let mut bbox_results = 0usize;
    for _ in 0..queries {
        let (lat, lon) = centre(&mut rng);
        let q = Query {
            bbox: Some(BBox {
                min_lon: lon - side / 2.0,
                min_lat: lat - side / 2.0,
                max_lon: lon + side / 2.0,
                max_lat: lat + side / 2.0,
            }),
            ..Query::default()
        };
        let t = Instant::now();
        let n = p.query(&q).len();
        bbox_ms.push(ms(t));
        bbox_results += n;
    }
    f.push("bbox side", side, "deg");
    f.push("bbox p50", quantile(&mut bbox_ms, 0.5), "ms");
    f.push("bbox p99", quantile(&mut bbox_ms, 0.99), "ms");
    f.push("bbox max", quantile(&mut bbox_ms, 1.0), "ms");
    f.push(
        "bbox mean results",
        bbox_results as f64 / queries.max(1) as f64,
        "entities",
    );

    // A disc with the same area as the box at the centre's latitude.
    let mut near_ms = Vec::with_capacity(queries);
    let mut near_results = 0usize;
    for _ in 0..queries {
        let (lat, lon) = centre(&mut rng);
        let radius_m = side * M_PER_DEG * (lat.to_radians().cos() / std::f64::consts::PI).sqrt();
        let q = Query {
            near: Some(Near { lat, lon, radius_m }),
            ..Query::default()
        };
        let t = Instant::now();
        let n = p.query(&q).len();
        near_ms.push(ms(t));
        near_results += n;
    }
    f.push("near p50", quantile(&mut near_ms, 0.5), "ms");
    f.push("near p99", quantile(&mut near_ms, 0.99), "ms");
    f.push(
        "near mean results",
        near_results as f64 / queries.max(1) as f64,
        "entities",
    );

    let mut knn_ms = Vec::with_capacity(queries);
    let any = Query::default();
    for _ in 0..queries {
        let (lat, lon) = centre(&mut rng);
        let t = Instant::now();
        std::hint::black_box(p.nearest(lat, lon, 10, &any).len());
        knn_ms.push(ms(t));
    }
    f.push("nearest k=10 p50", quantile(&mut knn_ms, 0.5), "ms");
    f.push("nearest k=10 p99", quantile(&mut knn_ms, 0.99), "ms");

    // A selective filter makes the ring search go further before it has 10 matches.
    let hostile = Query {
        type_prefix: Some("a-h".into()),
        ..Query::default()
    };
    let mut knn_f_ms = Vec::with_capacity(queries);
    for _ in 0..queries {
        let (lat, lon) = centre(&mut rng);
        let t = Instant::now();
        std::hint::black_box(p.nearest(lat, lon, 10, &hostile).len());
        knn_f_ms.push(ms(t));
    }
    f.push(
        "nearest k=10 type=a-h p50",
        quantile(&mut knn_f_ms, 0.5),
        "ms",
    );
    f.push(
        "nearest k=10 type=a-h p99",
        quantile(&mut knn_f_ms, 0.99),
        "ms",
    );
    f
}

/// Resident bytes per entity for `entities` distinct entities with 36-character UUID uids
/// (which allocate) and with short inline uids, plus fold throughput for creations and for
/// updates of existing entities.
///
/// Both pictures are kept alive until the end, so the second measurement cannot reuse memory
/// the first one freed and each RSS delta counts only its own picture. Run it first in its
/// process (or alone): heap freed by an earlier benchmark is reused without raising RSS and
/// would make the figure look too small. The `estimated heap` rows do not have that caveat.
pub fn memory(entities: usize, seed: u64) -> Figures {
    let mut f = Figures::new("picture-memory");
    let n = entities.max(1);
    let mut batch: Vec<Report> = Vec::with_capacity(BATCH);
    let rss = || rss_bytes().map_or(f64::NAN, |b| b as f64);

    let before = rss();
    let mut long = Picture::new(PictureConfig::default());
    let secs = populate(&mut long, n, seed, |i| long_uid(seed, i), &mut batch);
    let after = rss();
    f.push("entities", long.len() as f64, "");
    f.push(
        "rss per entity (36-byte uids)",
        (after - before) / n as f64,
        "bytes",
    );
    f.push(
        "estimated heap per entity (36-byte uids)",
        long.approx_heap_bytes() as f64 / n as f64,
        "bytes",
    );
    f.push("create folds/s", n as f64 / secs.max(1e-9), "folds/s");

    let before = rss();
    let mut short = Picture::new(PictureConfig::default());
    populate(&mut short, n, seed ^ 1, short_uid, &mut batch);
    let after = rss();
    f.push(
        "rss per entity (short uids)",
        (after - before) / n as f64,
        "bytes",
    );
    f.push(
        "estimated heap per entity (short uids)",
        short.approx_heap_bytes() as f64 / n as f64,
        "bytes",
    );
    drop(short);

    // Updates: existing uids in random order, moved a little, newer times.
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xF01D);
    let prov = Provenance::new("bench", "generator");
    let scatter = Scatter::new(&mut SmallRng::seed_from_u64(seed));
    let now = Timestamp(NOW_MS + 1_000);
    let mut secs = 0.0;
    let mut done = 0usize;
    while done < n {
        batch.clear();
        let count = BATCH.min(n - done);
        for j in 0..count {
            let i = rng.random_range(0..n as u64);
            let uid = long_uid(seed, i);
            let (lat, lon) = scatter.home(seed, i);
            // About 10 m per update, the pace of a walking or slowly driving unit.
            let lat = (lat + rng.random_range(-1e-4..1e-4)).clamp(-90.0, 90.0);
            let lon = (lon + rng.random_range(-1e-4..1e-4)).clamp(-180.0, 180.0);
            let t = NOW_MS + 1 + (done + j) as i64;
            batch.push(report(&uid, lat, lon, t, i, &prov));
        }
        let t = Instant::now();
        for r in batch.iter() {
            std::hint::black_box(long.fold(r, now, now));
        }
        secs += t.elapsed().as_secs_f64();
        done += count;
    }
    f.push("update folds/s", n as f64 / secs.max(1e-9), "folds/s");
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: &Figures) -> Vec<&str> {
        f.rows.iter().map(|(n, _, _)| n.as_str()).collect()
    }

    #[test]
    fn query_smoke() {
        let f = query(2_000, 10, 1);
        assert_eq!(f.bench, "picture-query");
        let n = names(&f);
        for want in [
            "entities",
            "bbox p99",
            "bbox mean results",
            "near p99",
            "nearest k=10 p99",
        ] {
            assert!(n.contains(&want), "missing {want}");
        }
        assert_eq!(f.rows[0].1, 2_000.0);
    }

    #[test]
    fn memory_smoke() {
        let f = memory(2_000, 1);
        assert_eq!(f.bench, "picture-memory");
        let n = names(&f);
        for want in [
            "entities",
            "rss per entity (36-byte uids)",
            "update folds/s",
        ] {
            assert!(n.contains(&want), "missing {want}");
        }
        assert_eq!(f.rows[0].1, 2_000.0);
    }

    #[test]
    fn uids_are_realistic() {
        let u = long_uid(1, 2);
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert_ne!(long_uid(1, 2), long_uid(1, 3));
        assert!(short_uid(999_999).len() <= 24);
    }

    /// Prints the figures at full scale: `cargo test --release -p rampart-bench -- --ignored
    /// --nocapture picture`.
    #[test]
    #[ignore]
    fn picture_full_scale() {
        // Memory first: memory freed by an earlier benchmark in the same process would be
        // reused without raising RSS and make the per-entity figure look too small.
        println!("{}", memory(1_000_000, 7));
        println!("{}", memory(100_000, 7));
        println!("{}", query(1_000_000, 2_000, 7));
    }
}
