//! Legacy feed benchmarks (issue 5 targets: decode ≥ 2,000,000 NMEA or AIS sentences/s on one
//! core; replay a 1,000,000-message AIS file end to end into the picture and history).
//!
//! - **Decode, one core.** A realistic NMEA mix (GGA, RMC, VTG, GSA, GSV, GLL, ZDA from several
//!   talkers) and an AIS mix (types 1 and 3, single fragment, many MMSIs) are decoded in a
//!   loop on this thread with the codecs' public functions: decode only
//!   (`rampart_codec_nmea::decode`, `rampart_codec_ais::decode_single`), and decode plus the
//!   per-source state machine that builds reports (`GpsSource::feed`, `AisTracker::feed`).
//! - **Replay end to end.** A 1,000,000-line AIS file (20,000 vessels, valid checksums,
//!   armored here with the AIS 6-bit alphabet and checked against the codec) is replayed by
//!   the real binary, `rampart replay FILE --format ais --speed 0 --data DIR`: line
//!   splitting, decoding, batching, durable history (fsync) and the live picture. The bench
//!   reports messages per second, then opens the data directory to count the entities and the
//!   history bytes. The binary is this process (`rampart bench feeds`) or `$RAMPART_BIN`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use rampart_codec_ais::{AisMessage, AisTracker, TrackerConfig, decode_single};
use rampart_codec_nmea::{FrameOptions, GpsSource, GpsSourceConfig, SourceMapping, decode};
use rampart_engine::{Engine, EngineConfig, Metrics};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{Text, Timestamp, Uid};

use crate::Figures;

/// A tiny deterministic generator (xorshift64*), so every run decodes the same input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn with_checksum(lead: char, body: &str) -> String {
    let cs = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("{lead}{body}*{cs:02X}")
}

fn nmea_lat(lat: f64) -> String {
    let d = lat.abs().trunc();
    let m = (lat.abs() - d) * 60.0;
    format!(
        "{:02}{:07.4},{}",
        d as u32,
        m,
        if lat >= 0.0 { 'N' } else { 'S' }
    )
}

fn nmea_lon(lon: f64) -> String {
    let d = lon.abs().trunc();
    let m = (lon.abs() - d) * 60.0;
    format!(
        "{:03}{:07.4},{}",
        d as u32,
        m,
        if lon >= 0.0 { 'E' } else { 'W' }
    )
}

/// Epochs of `receivers` receivers: per epoch RMC, VTG, GGA, GSA, three GSV, GLL and ZDA, the
/// way a multi-constellation receiver talks (talkers GP and GN). Returns the lines of each
/// epoch, receiver by receiver.
pub fn nmea_epochs(epochs: usize, seed: u64) -> Vec<Vec<String>> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(epochs);
    for e in 0..epochs {
        let secs = e % 86_400;
        let time = format!("{:02}{:02}{:02}.00", secs / 3600, secs / 60 % 60, secs % 60);
        let lat = -60.0 + rng.unit() * 120.0;
        let lon = -179.0 + rng.unit() * 358.0;
        let (la, lo) = (nmea_lat(lat), nmea_lon(lon));
        let knots = rng.unit() * 30.0;
        let course = rng.unit() * 359.9;
        let talker = if rng.below(2) == 0 { "GP" } else { "GN" };
        let mut lines = vec![
            with_checksum(
                '$',
                &format!("{talker}RMC,{time},A,{la},{lo},{knots:.1},{course:.1},291125,,,A"),
            ),
            with_checksum(
                '$',
                &format!(
                    "{talker}VTG,{course:.1},T,,M,{knots:.1},N,{:.1},K,A",
                    knots * 1.852
                ),
            ),
            with_checksum(
                '$',
                &format!(
                    "{talker}GGA,{time},{la},{lo},1,{:02},{:.1},{:.1},M,{:.1},M,,",
                    4 + rng.below(12),
                    0.6 + rng.unit() * 2.0,
                    rng.unit() * 500.0,
                    -30.0 + rng.unit() * 60.0
                ),
            ),
            with_checksum(
                '$',
                &format!("{talker}GSA,A,3,04,05,09,12,24,25,29,31,,,,,1.8,1.0,1.5"),
            ),
        ];
        for part in 1..=3 {
            let mut body = format!("GPGSV,3,{part},11");
            for s in 0..4 {
                if part == 3 && s == 3 {
                    break;
                }
                let _ = write!(
                    body,
                    ",{:02},{:02},{:03},{:02}",
                    1 + rng.below(32),
                    rng.below(90),
                    rng.below(360),
                    rng.below(50)
                );
            }
            lines.push(with_checksum('$', &body));
        }
        lines.push(with_checksum(
            '$',
            &format!("{talker}GLL,{la},{lo},{time},A,A"),
        ));
        lines.push(with_checksum(
            '$',
            &format!("{talker}ZDA,{time},29,11,2025,00,00"),
        ));
        out.push(lines);
    }
    out
}

/// Writes `value` as `bits` bits at `pos` of a bit vector.
fn put(bits: &mut [u8], pos: &mut usize, len: usize, value: u64) {
    for i in (0..len).rev() {
        bits[*pos] = ((value >> i) & 1) as u8;
        *pos += 1;
    }
}

/// A type 1 or 3 position report, armored: 168 bits, 28 characters, no fill.
#[allow(clippy::too_many_arguments)]
pub fn ais_position_payload(
    msg_type: u8,
    mmsi: u32,
    status: u8,
    sog_tenths: u16,
    lon: f64,
    lat: f64,
    cog_tenths: u16,
    heading: u16,
    second: u8,
) -> String {
    let mut bits = [0u8; 168];
    let mut p = 0;
    put(&mut bits, &mut p, 6, u64::from(msg_type));
    put(&mut bits, &mut p, 2, 0);
    put(&mut bits, &mut p, 30, u64::from(mmsi));
    put(&mut bits, &mut p, 4, u64::from(status));
    put(&mut bits, &mut p, 8, 0x80); // rate of turn: not available
    put(&mut bits, &mut p, 10, u64::from(sog_tenths));
    put(&mut bits, &mut p, 1, 1);
    let lon_raw = (lon * 600_000.0).round() as i64;
    let lat_raw = (lat * 600_000.0).round() as i64;
    put(&mut bits, &mut p, 28, (lon_raw as u64) & ((1 << 28) - 1));
    put(&mut bits, &mut p, 27, (lat_raw as u64) & ((1 << 27) - 1));
    put(&mut bits, &mut p, 12, u64::from(cog_tenths));
    put(&mut bits, &mut p, 9, u64::from(heading));
    put(&mut bits, &mut p, 6, u64::from(second));
    put(&mut bits, &mut p, 2, 0);
    put(&mut bits, &mut p, 3, 0);
    put(&mut bits, &mut p, 1, 0);
    put(&mut bits, &mut p, 19, 0x1_2345);
    debug_assert_eq!(p, 168);
    bits.chunks(6)
        .map(|c| {
            let v = c.iter().fold(0u8, |a, &b| (a << 1) | b);
            char::from(if v < 40 { v + 48 } else { v + 56 })
        })
        .collect()
}

/// One AIS sentence per element: types 1 and 3, `vessels` MMSIs in round robin, each vessel
/// moving along its own course. Every line is checked against the codec's decoder the first
/// time round.
pub fn ais_lines(count: usize, vessels: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed | 1);
    let start: Vec<(f64, f64, u16, u16)> = (0..vessels)
        .map(|_| {
            (
                -60.0 + rng.unit() * 120.0,
                -179.0 + rng.unit() * 358.0,
                rng.below(3600) as u16,
                rng.below(300) as u16,
            )
        })
        .collect();
    let opts = FrameOptions::default();
    (0..count)
        .map(|i| {
            let v = i % vessels;
            let round = (i / vessels) as f64;
            let (lat0, lon0, cog, sog) = start[v];
            let lat = (lat0 + round * 1e-4).clamp(-89.0, 89.0);
            let lon = lon0 + round * 1e-4;
            let mmsi = 200_000_000 + v as u32 * 7;
            let msg_type = if i % 4 == 3 { 3 } else { 1 };
            let payload = ais_position_payload(
                msg_type,
                mmsi,
                (v % 9) as u8,
                sog,
                lon,
                lat,
                cog,
                cog / 10,
                (i % 60) as u8,
            );
            let channel = if i % 2 == 0 { 'A' } else { 'B' };
            let line = with_checksum('!', &format!("AIVDM,1,1,,{channel},{payload},0"));
            if i < vessels {
                match decode_single(line.as_bytes(), &opts) {
                    Ok(AisMessage::Position(p)) => {
                        assert_eq!(p.mmsi, mmsi, "{line}");
                        let got = p.lat.unwrap_or(f64::NAN);
                        assert!((got - lat).abs() < 1e-6, "{line}: lat {got} vs {lat}");
                    }
                    other => panic!("generated AIS line {line} decodes as {other:?}"),
                }
            }
            line
        })
        .collect()
}

/// Decodes every line of `lines`, `rounds` times, with `f`; returns lines per second.
fn rate(lines: &[&[u8]], rounds: usize, mut f: impl FnMut(&[u8]) -> bool) -> (f64, u64) {
    let started = Instant::now();
    let mut ok = 0u64;
    for _ in 0..rounds {
        for l in lines {
            ok += u64::from(f(black_box(l)));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    ((lines.len() * rounds) as f64 / secs, ok)
}

/// Single-core decode rates for NMEA and AIS, `total` sentences each.
pub fn decode_rates(total: usize) -> Figures {
    let mut f = Figures::new("feeds decode (one core)");
    let opts = FrameOptions::default();

    // NMEA: 10,000 epochs of 10 sentences = 100,000 distinct lines, decoded in rounds.
    let epochs = nmea_epochs(10_000, 7);
    let flat: Vec<&[u8]> = epochs
        .iter()
        .flat_map(|e| e.iter().map(|l| l.as_bytes()))
        .collect();
    let rounds = total.div_ceil(flat.len()).max(1);
    let (r, ok) = rate(&flat, rounds, |l| decode(l, &opts).is_ok());
    assert_eq!(ok as usize, flat.len() * rounds, "every NMEA line decodes");
    f.push("nmea decode (mix of 7 types)", r, "sentences/s");
    let mut source = GpsSource::new(
        SourceMapping {
            uid: Uid::from("bench-gps"),
            cot_type: Text::const_new("a-f-G"),
            callsign: None,
        },
        GpsSourceConfig::default(),
    );
    let mut out = Vec::with_capacity(1024);
    let now = Timestamp::now();
    let mut reports = 0usize;
    let (r, _) = rate(&flat, rounds, |l| {
        let ok = source.feed(l, now, &mut out).is_ok();
        if out.len() >= 1024 {
            reports += out.len();
            out.clear();
        }
        ok
    });
    reports += out.len();
    f.push("nmea decode + epoch → report", r, "sentences/s");
    f.push("nmea reports built", reports as f64, "reports");

    // AIS: 100,000 distinct type 1/3 lines over 20,000 vessels.
    let lines = ais_lines(100_000, 20_000, 11);
    let flat: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    let rounds = total.div_ceil(flat.len()).max(1);
    let (r, ok) = rate(&flat, rounds, |l| decode_single(l, &opts).is_ok());
    assert_eq!(ok as usize, flat.len() * rounds, "every AIS line decodes");
    f.push("ais decode (types 1/3, one fragment)", r, "sentences/s");
    let mut tracker = AisTracker::new(TrackerConfig::default());
    let mut reports = 0u64;
    let (r, _) = rate(&flat, rounds, |l| match tracker.feed(l, now) {
        Ok(Some(rep)) => {
            reports += 1;
            black_box(rep);
            true
        }
        _ => false,
    });
    f.push("ais decode + tracker → report", r, "sentences/s");
    f.push("ais reports built", reports as f64, "reports");
    f
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The `rampart` binary to run: `$RAMPART_BIN`, else this process when it is `rampart`.
fn rampart_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("RAMPART_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let name = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if name != "rampart" {
        anyhow::bail!(
            "the replay benchmark runs the rampart binary: start it as `rampart bench feeds` or set RAMPART_BIN"
        );
    }
    Ok(exe)
}

/// Replays a `messages`-line AIS file with the real binary at `--speed 0` and reports the rate,
/// the entities in the picture and the history size.
pub fn replay(messages: usize, vessels: usize) -> anyhow::Result<Figures> {
    let mut f = Figures::new("feeds replay (AIS file, end to end)");
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("ais.nmea");
    let started = Instant::now();
    let mut text = String::with_capacity(messages * 50);
    for l in ais_lines(messages, vessels, 23) {
        text.push_str(&l);
        text.push_str("\r\n");
    }
    std::fs::write(&file, &text)?;
    f.push("file generation", started.elapsed().as_secs_f64(), "s");
    f.push("file size", text.len() as f64 / 1e6, "MB");
    drop(text);

    let data = dir.path().join("data");
    let bin = rampart_bin()?;
    let started = Instant::now();
    let out = Command::new(&bin)
        .arg("replay")
        .arg(&file)
        .args(["--format", "ais", "--speed", "0", "--data"])
        .arg(&data)
        .env("RAMPART_LOG", "warn")
        .output()?;
    let wall = started.elapsed().as_secs_f64();
    if !out.status.success() {
        anyhow::bail!(
            "{} replay failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    // "rampart: replayed FILE (N bytes): R reports stored in S s (X reports/s)"
    let stored: f64 = stdout
        .split(": ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    f.push("messages", messages as f64, "lines");
    f.push("reports stored", stored, "reports");
    f.push("replay wall time (process)", wall, "s");
    f.push(
        "replay rate (process wall)",
        messages as f64 / wall,
        "messages/s",
    );

    let history_dir = data.join("history");
    let history_bytes = dir_bytes(&history_dir);
    f.push("history bytes", history_bytes as f64, "bytes");
    f.push(
        "history bytes per report",
        history_bytes as f64 / stored.max(1.0),
        "bytes",
    );
    // The picture as a restarted node sees it.
    let store: Arc<dyn HistoryStore> = SegmentLog::open(SegmentLogConfig::new(&history_dir))?;
    let engine = Engine::open(EngineConfig::default(), store, Arc::new(Metrics::new()))?;
    f.push(
        "entities in picture",
        engine.picture().len() as f64,
        "entities",
    );
    Ok(f)
}
