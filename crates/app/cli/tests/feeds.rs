//! Legacy position sources end to end, against the real binary: NMEA, AIS and ADS-B over the
//! UDP and TCP listeners, an upstream TCP feed that goes away and comes back, hostile input,
//! file replay (paced and as fast as possible), and the export formats over HTTP and
//! `rampart export`.
//!
//! Inputs are made, and outputs parsed back, by third-party Python packages (pynmea2, pyais,
//! pyModeS, geojson) through `tests/feeds_py/feeds_oracle.py`. The tests fail — never skip —
//! when the interpreter is missing: run `scripts/python-env` (or set `RAMPART_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Node, eventually, python};
use rampart_codec_adsb::{EmitterCategory, encode};
use rampart_model::Timestamp;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const KNOTS: f64 = 1852.0 / 3600.0;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Runs the oracle script with `args` and parses its JSON output.
fn oracle(args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/feeds_py/feeds_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("run the feeds oracle");
    assert!(
        out.status.success(),
        "feeds oracle {args:?} failed (run scripts/python-env?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle output is JSON")
}

/// Writes `bytes` to a file in `dir` and runs the oracle checker `check` on it.
fn check_file(dir: &Path, name: &str, check: &str, bytes: &[u8]) -> Value {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    oracle(&[check, path.to_str().unwrap()])
}

fn now_s() -> i64 {
    Timestamp::now().millis() / 1000
}

fn close(ctx: &str, got: &Value, want: f64, tol: f64) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("{ctx}: expected a number near {want}, got {got}"));
    assert!(
        (g - want).abs() <= tol,
        "{ctx}: got {g}, want {want} ± {tol}"
    );
}

async fn get_entity(c: &reqwest::Client, node: &Node, uid: &str) -> Option<Value> {
    let r = c
        .get(node.url(&format!("/api/v1/entities/{uid}")))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// Waits until entity `uid` exists and satisfies `ok`; returns its properties.
async fn wait_entity(
    c: &reqwest::Client,
    node: &Node,
    uid: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = None;
    let found = eventually(Duration::from_secs(10), async || {
        last = get_entity(c, node, uid).await;
        last.as_ref().is_some_and(|e| ok(&e["properties"]))
    })
    .await;
    assert!(
        found,
        "entity {uid} never reached the expected state; last: {last:?}"
    );
    last.unwrap()["properties"].clone()
}

async fn uids(c: &reqwest::Client, node: &Node) -> Vec<String> {
    let all: Value = c
        .get(node.url("/api/v1/entities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<String> = all["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// `rampart_reports_rejected_total` by `(source, reason)`.
async fn rejected(c: &reqwest::Client, node: &Node) -> HashMap<(String, String), u64> {
    let text = c
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("rampart_reports_rejected_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").unwrap();
        let mut source = String::new();
        let mut reason = String::new();
        for kv in labels.split(',') {
            let (k, v) = kv.split_once('=').unwrap();
            let v = v.trim_matches('"').to_string();
            match k {
                "source" => source = v,
                "reason" => reason = v,
                _ => {}
            }
        }
        out.insert(
            (source, reason),
            value.trim().parse::<f64>().unwrap() as u64,
        );
    }
    out
}

/// `body` (from `$` or `!`) with its NMEA checksum appended.
fn checksummed(body: &str) -> String {
    let cs = body.bytes().skip(1).fold(0u8, |a, b| a ^ b);
    format!("{body}*{cs:02X}")
}

fn write_config(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("rampart.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn rampart() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.env("RAMPART_LOG", "warn");
    cmd
}

/// Runs `rampart ARGS` to completion, asserting success; returns stdout and the duration.
fn run_rampart(args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
    let out = rampart().args(args).output().expect("run rampart");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "rampart {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8(out.stdout).unwrap(), took)
}

fn lines_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn crlf(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect()
}

async fn udp_from(port_hint: &str) -> UdpSocket {
    UdpSocket::bind(port_hint).await.unwrap()
}

async fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. NMEA over UDP and TCP, with the per-sender mapping.

fn check_gps_entity(ctx: &str, p: &Value, want: &Value) {
    close(
        &format!("{ctx} lat"),
        &p["lat"],
        want["lat"].as_f64().unwrap(),
        1e-6,
    );
    close(
        &format!("{ctx} lon"),
        &p["lon"],
        want["lon"].as_f64().unwrap(),
        1e-6,
    );
    let hae = want["alt"].as_f64().unwrap() + want["sep"].as_f64().unwrap();
    close(&format!("{ctx} hae"), &p["hae"], hae, 1e-6);
    let speed = want["knots"].as_f64().unwrap() * KNOTS;
    close(&format!("{ctx} speed"), &p["speed"], speed, 1e-6);
    close(
        &format!("{ctx} course"),
        &p["course"],
        want["course"].as_f64().unwrap(),
        1e-6,
    );
    // GGA quality 1 (autonomous GPS): UERE 5 m.
    let ce = want["hdop"].as_f64().unwrap() * 5.0;
    close(&format!("{ctx} ce"), &p["ce"], ce, 1e-6);
    assert_eq!(p["how"], "m-g", "{ctx} how");
    let time = Timestamp::parse_rfc3339(p["time"].as_str().unwrap()).unwrap();
    assert_eq!(time.millis(), want["time"].as_i64().unwrap(), "{ctx} time");
}

#[tokio::test(flavor = "multi_thread")]
async fn nmea_over_udp_and_tcp_becomes_the_mapped_entity() {
    let dir = tempfile::tempdir().unwrap();
    let epochs = oracle(&["nmea", "4", &(now_s() - 6).to_string()]);
    let epochs = epochs.as_array().unwrap();
    let last = epochs.last().unwrap();

    // Senders bound first, so the mapping can name their ports.
    let mapped_udp = udp_from("127.0.0.1:0").await;
    let unmapped_udp = udp_from("127.0.0.1:0").await;
    let tcp_socket = TcpSocket::new_v4().unwrap();
    tcp_socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let tcp_port = tcp_socket.local_addr().unwrap().port();
    // Two receivers that send a single epoch: one over UDP that then goes quiet, one over TCP
    // that then hangs up. Their epoch has no successor to close it.
    let quiet_udp = udp_from("127.0.0.1:0").await;
    let closing_socket = TcpSocket::new_v4().unwrap();
    closing_socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closing_port = closing_socket.local_addr().unwrap().port();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[[feeds.protocols.nmea_source]]
peer = "127.0.0.1:{udp}"
uid = "gps-udp"
type = "a-f-G-E-V"
callsign = "ALPHA"

[[feeds.protocols.nmea_source]]
peer = "127.0.0.1:{tcp_port}"
uid = "gps-tcp"
type = "a-f-G-U-C"
callsign = "BRAVO"

[[feeds.protocols.nmea_source]]
peer = "127.0.0.1:{quiet}"
uid = "gps-quiet"

[[feeds.protocols.nmea_source]]
peer = "127.0.0.1:{closing_port}"
uid = "gps-closed"
"#,
            udp = mapped_udp.local_addr().unwrap().port(),
            quiet = quiet_udp.local_addr().unwrap().port(),
        ),
    );
    let node = Node::start(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "nmea-udp=127.0.0.1:0",
            "--listen",
            "nmea-tcp=127.0.0.1:0",
        ],
    );
    let udp_addr = node.listener("nmea-udp");
    let mut stream = tcp_socket.connect(node.listener("nmea-tcp")).await.unwrap();

    for epoch in epochs {
        let sentences = lines_of(&epoch["sentences"]);
        // One sentence per datagram from the mapped sender…
        for s in &sentences {
            mapped_udp
                .send_to(format!("{s}\r\n").as_bytes(), udp_addr)
                .await
                .unwrap();
        }
        // …a whole epoch per datagram (last line unterminated) from the unmapped one…
        let joined = sentences.join("\r\n");
        unmapped_udp
            .send_to(joined.as_bytes(), udp_addr)
            .await
            .unwrap();
        // …and a byte stream over TCP, split mid-sentence.
        let bytes = crlf(&sentences);
        let (a, b) = bytes.split_at(bytes.len() / 2 + 3);
        stream.write_all(a).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        stream.write_all(b).await.unwrap();
    }
    stream.flush().await.unwrap();
    let single = lines_of(&last["sentences"]);
    quiet_udp.send_to(&crlf(&single), udp_addr).await.unwrap();
    let mut closing = closing_socket
        .connect(node.listener("nmea-tcp"))
        .await
        .unwrap();
    closing.write_all(&crlf(&single)).await.unwrap();
    closing.shutdown().await.unwrap();
    drop(closing);

    let c = reqwest::Client::new();
    let last_time = last["time"].as_i64().unwrap();
    let at_last = |p: &Value| {
        p["time"]
            .as_str()
            .and_then(|t| Timestamp::parse_rfc3339(t).ok())
            .is_some_and(|t| t.millis() == last_time)
    };
    let udp = wait_entity(&c, &node, "gps-udp", at_last).await;
    check_gps_entity("nmea-udp mapped", &udp, last);
    assert_eq!(udp["type"], "a-f-G-E-V");
    assert_eq!(udp["callsign"], "ALPHA");
    assert_eq!(udp["provenance"]["source"], "nmea-udp");

    let tcp = wait_entity(&c, &node, "gps-tcp", at_last).await;
    check_gps_entity("nmea-tcp mapped", &tcp, last);
    assert_eq!(tcp["type"], "a-f-G-U-C");
    assert_eq!(tcp["callsign"], "BRAVO");
    assert_eq!(tcp["provenance"]["source"], "nmea-tcp");

    let anon = wait_entity(&c, &node, "nmea-127.0.0.1", at_last).await;
    check_gps_entity("nmea-udp unmapped", &anon, last);
    assert_eq!(anon["type"], "a-u-G");
    assert_eq!(anon["callsign"], "nmea-127.0.0.1");

    // The single epochs: emitted at the end of the connection, and after the epoch timeout
    // (1.5 s) of a receiver gone quiet.
    let closed = wait_entity(&c, &node, "gps-closed", at_last).await;
    check_gps_entity("nmea-tcp closed", &closed, last);
    assert_eq!(closed["type"], "a-u-G", "the mapping's default type");
    let quiet = wait_entity(&c, &node, "gps-quiet", at_last).await;
    check_gps_entity("nmea-udp quiet", &quiet, last);

    assert_eq!(
        uids(&c, &node).await,
        [
            "gps-closed",
            "gps-quiet",
            "gps-tcp",
            "gps-udp",
            "nmea-127.0.0.1"
        ]
    );

    // Every epoch is in the history, in order.
    let track: Value = c
        .get(node.url("/api/v1/entities/gps-udp/track"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let points = track["features"].as_array().unwrap();
    assert_eq!(points.len(), epochs.len(), "one report per epoch: {track}");
}

// ---------------------------------------------------------------------------------------------
// 2. AIS over UDP and TCP.

/// Checks the entities of one `ais` oracle run against pyais's decoded fields.
fn check_ais_entities(kind: &str, groups: &Value, entities: &HashMap<String, Value>) {
    let groups = groups.as_array().unwrap();
    let mut last_pos: HashMap<u64, &Value> = HashMap::new();
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut ship_types: HashMap<u64, u64> = HashMap::new();
    for g in groups {
        let f = &g["fields"];
        let mmsi = f["mmsi"].as_u64().unwrap();
        if let Some(n) = f["shipname"].as_str().or(f["name"].as_str())
            && !n.is_empty()
        {
            names.insert(mmsi, n.to_string());
        }
        if let Some(t) = f["ship_type"].as_u64()
            && t != 0
        {
            ship_types.insert(mmsi, t);
        }
        if f["lat"].is_number() {
            last_pos.insert(mmsi, g);
        }
    }
    assert_eq!(last_pos.len(), 4, "{kind}: four stations report positions");
    for (mmsi, g) in &last_pos {
        let uid = format!("ais-{mmsi}");
        let p = entities
            .get(&uid)
            .unwrap_or_else(|| panic!("{kind}: no entity {uid}"));
        let f = &g["fields"];
        let ctx = format!("{kind} {uid} (type {})", g["type"]);
        // pyais rounds to 6 decimals; the codec keeps the 1/10000 minute exactly.
        close(
            &format!("{ctx} lat"),
            &p["lat"],
            f["lat"].as_f64().unwrap(),
            1e-6,
        );
        close(
            &format!("{ctx} lon"),
            &p["lon"],
            f["lon"].as_f64().unwrap(),
            1e-6,
        );
        if let Some(cog) = f["course"].as_f64() {
            close(&format!("{ctx} course"), &p["course"], cog, 1e-6);
        }
        if let Some(sog) = f["speed"].as_f64() {
            close(&format!("{ctx} speed"), &p["speed"], sog * KNOTS, 1e-6);
        }
        assert_eq!(
            p["callsign"].as_str(),
            names.get(mmsi).map(String::as_str),
            "{ctx} callsign is the name from static data"
        );
        assert_eq!(p["attributes"]["mmsi"], json!(*mmsi as f64), "{ctx} mmsi");
        assert_eq!(p["provenance"]["source"], kind, "{ctx} provenance");
        let want_type = match (g["type"].as_u64().unwrap(), ship_types.get(mmsi)) {
            (21, _) => "a-n-G-I",
            (_, Some(70)) => "a-n-S-X-M-C",
            (_, Some(37)) => "a-n-S-X-R",
            (_, None) => "a-n-S",
            (t, s) => panic!("{ctx}: unexpected type {t} / ship type {s:?}"),
        };
        assert_eq!(p["type"], want_type, "{ctx} type");
        if g["type"] == 27 {
            assert_eq!(p["ce"], 185.0, "{ctx}: long-range positions are coarse");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ais_over_udp_and_tcp_matches_pyais() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &[
            "--listen",
            "ais-udp=127.0.0.1:0",
            "--listen",
            "ais-tcp=127.0.0.1:0",
        ],
    );
    let over_udp = oracle(&["ais", "244000000"]);
    let over_tcp = oracle(&["ais", "244100000"]);

    let sock = udp_from("127.0.0.1:0").await;
    for g in over_udp.as_array().unwrap() {
        // Fragments of one message in separate datagrams.
        for s in lines_of(&g["sentences"]) {
            sock.send_to(format!("{s}\n").as_bytes(), node.listener("ais-udp"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut stream = tcp(node.listener("ais-tcp")).await;
    let all: Vec<String> = over_tcp
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| lines_of(&g["sentences"]))
        .collect();
    stream.write_all(&crlf(&all)).await.unwrap();
    stream.flush().await.unwrap();

    let c = reqwest::Client::new();
    // The last message of each run is the type 27; the yacht's name arrives before its last
    // position, so waiting for both settles the picture.
    let mut entities = HashMap::new();
    for (base, kind) in [(244000000u64, "ais-udp"), (244100000, "ais-tcp")] {
        let yacht = format!("ais-{}", base + 2);
        wait_entity(&c, &node, &yacht, |p| {
            p["callsign"] == "SEA BREEZE" && p["type"] == "a-n-S-X-R"
        })
        .await;
        wait_entity(&c, &node, &format!("ais-{}", base + 4), |_| true).await;
        for i in 1..=4 {
            let uid = format!("ais-{}", base + i);
            entities.insert(
                uid.clone(),
                get_entity(&c, &node, &uid).await.unwrap()["properties"].clone(),
            );
        }
        let groups = if kind == "ais-udp" {
            &over_udp
        } else {
            &over_tcp
        };
        check_ais_entities(kind, groups, &entities);
    }
    // Static voyage data lands in the attributes of the next position.
    let cargo = &entities["ais-244000001"];
    assert_eq!(cargo["attributes"]["ais_callsign"], "RMP01");
    assert_eq!(cargo["attributes"]["destination"], "ROTTERDAM");
    assert_eq!(cargo["attributes"]["ship_type"], 70.0);
    assert_eq!(
        uids(&c, &node).await.len(),
        8,
        "nothing but the eight stations"
    );
    let r = rejected(&c, &node).await;
    assert!(
        r.keys().all(|(s, _)| !s.starts_with("ais")),
        "clean input is not rejected: {r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. ADS-B: SBS over sbs-tcp and AVR over avr-tcp.

#[tokio::test(flavor = "multi_thread")]
async fn adsb_sbs_and_avr_become_aircraft() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &[
            "--listen",
            "sbs-tcp=127.0.0.1:0",
            "--listen",
            "avr-tcp=127.0.0.1:0",
        ],
    );
    let c = reqwest::Client::new();

    // SBS: callsign (MSG,1), velocity (MSG,4) and two positions (MSG,3).
    let d = "2025/11/29,12:00:00.000,2025/11/29,12:00:00.100";
    let sbs = [
        format!("MSG,1,1,1,3C6586,1,{d},DLH9LF  ,,,,,,,,,,,0"),
        format!("MSG,4,1,1,3C6586,1,{d},,,420.0,271.5,,,-640,,,,,0"),
        format!("MSG,3,1,1,3C6586,1,{d},,36000,,,50.03790,8.56220,,,0,0,0,0"),
        format!("MSG,3,1,1,3C6586,1,{d},,36000,,,50.03810,8.56100,,,0,0,0,0"),
    ];
    let mut s = tcp(node.listener("sbs-tcp")).await;
    for l in &sbs {
        s.write_all(format!("{l}\r\n").as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = wait_entity(&c, &node, "icao-3c6586", |p| p["lon"] == 8.561).await;
    close("sbs lat", &p["lat"], 50.0381, 1e-9);
    assert_eq!(p["callsign"], "DLH9LF");
    assert_eq!(p["type"], "a-u-A");
    close("sbs speed", &p["speed"], 420.0 * KNOTS, 1e-6);
    close("sbs course", &p["course"], 271.5, 1e-9);
    assert_eq!(p["provenance"]["source"], "sbs-tcp");

    // AVR: the Riddle frames ("The 1090 MHz Riddle"), odd then even so the even frame is the
    // newer one, twice (the tracker wants a confirming pair); an identification of 40621D made
    // with the codec's encoder; the Riddle identification of 4840D6 with encoded positions.
    let odd = "8D40621D58C386435CC412692AD6";
    let even = "8D40621D58C382D690C8AC2863A7";
    let riddle_id = "8D4840D6202CC371C32CE0576098";
    let riddle_velocity = "8D485020994409940838175B284F";
    let hex = |f: [u8; 14]| encode::to_avr(&f).trim_matches(['*', ';']).to_string();
    let id_40621d = hex(encode::identification(
        0x40621D,
        EmitterCategory { set: 'A', code: 3 },
        "RIDDLE1",
    ));
    let klm = |odd: bool| {
        hex(encode::airborne_position(
            0x4840D6,
            Some(36000),
            false,
            52.3,
            4.76,
            odd,
        ))
    };
    let klm_velocity = hex(encode::velocity(0x4840D6, 300, -200, Some(-640), None));
    let checked = oracle(&[
        "adsb",
        riddle_id,
        odd,
        even,
        riddle_velocity,
        &id_40621d,
        &klm(false),
        &klm(true),
        &klm_velocity,
    ]);
    let frames = checked["frames"].as_array().unwrap();
    assert!(frames.iter().all(|f| f["crc_valid"] == true), "{checked}");
    assert_eq!(frames[0]["callsign"], "KLM1023");
    assert_eq!(frames[4]["callsign"], "RIDDLE1");
    let pair = &checked["pair"];
    close("pyModeS riddle lat", &pair["lat"], 52.2572, 1e-4);
    close("pyModeS riddle lon", &pair["lon"], 3.9194, 1e-4);

    let mut a = tcp(node.listener("avr-tcp")).await;
    let mut send = async |frames: &[&str]| {
        for f in frames {
            a.write_all(format!("*{f};\n").as_bytes()).await.unwrap();
        }
        a.flush().await.unwrap();
    };
    send(&[riddle_id, &id_40621d, riddle_velocity, &klm_velocity]).await;
    send(&[odd, even, &klm(false), &klm(true)]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    send(&[odd, even, &klm(false), &klm(true)]).await;

    let p = wait_entity(&c, &node, "icao-40621d", |_| true).await;
    close("riddle lat", &p["lat"], pair["lat"].as_f64().unwrap(), 1e-6);
    close("riddle lon", &p["lon"], pair["lon"].as_f64().unwrap(), 1e-6);
    assert_eq!(p["callsign"], "RIDDLE1");
    assert_eq!(p["provenance"]["source"], "avr-tcp");
    let k = wait_entity(&c, &node, "icao-4840d6", |_| true).await;
    assert_eq!(k["callsign"], "KLM1023");
    close("klm lat", &k["lat"], 52.3, 1e-3);
    close("klm lon", &k["lon"], 4.76, 1e-3);
    let v = &frames[7];
    close(
        "klm speed",
        &k["speed"],
        v["groundspeed"].as_f64().unwrap() * KNOTS,
        0.6,
    );
    close(
        "klm course",
        &k["course"],
        v["track"].as_f64().unwrap(),
        0.1,
    );
    // 485020 sent only a velocity: no position, no entity.
    assert!(get_entity(&c, &node, "icao-485020").await.is_none());
    let r = rejected(&c, &node).await;
    assert!(
        r.keys().all(|(s, _)| !s.ends_with("-tcp")),
        "clean ADS-B input is not rejected: {r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Upstream connect with reconnect.

/// A one-connection-at-a-time SBS server on `listener` that sends `lines` to each client and
/// then holds the connection open until the listener task is aborted.
fn serve_sbs(listener: std::net::TcpListener, lines: Vec<String>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        for l in &lines {
            if conn.write_all(format!("{l}\r\n").as_bytes()).is_err() {
                return;
            }
        }
        let _ = conn.flush();
        // Hold until the test closes us by shutting the socket down from outside.
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut conn, &mut buf);
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_feed_reconnects_after_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[feeds.limits]
reconnect_min_ms = 100
reconnect_max_ms = 400

[[feeds.upstream]]
protocol = "sbs"
addr = "{addr}"
"#
        ),
    );
    let line = |icao: &str, lat: f64, lon: f64| {
        format!(
            "MSG,3,1,1,{icao},1,2025/11/29,12:00:00.000,2025/11/29,12:00:00.000,,12000,,,{lat},{lon},,,0,0,0,0"
        )
    };
    // The first server instance accepts, sends one aircraft, then dies.
    let server_clone = server.try_clone().unwrap();
    let first = std::thread::spawn(move || {
        let (mut conn, _) = server_clone.accept().unwrap();
        conn.write_all(format!("{}\r\n", line("AAAAA1", 48.1, 11.5)).as_bytes())
            .unwrap();
        conn.flush().unwrap();
        conn
    });
    let node = Node::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    let p = wait_entity(&c, &node, "icao-aaaaa1", |_| true).await;
    assert_eq!(p["provenance"]["source"], "sbs-upstream");
    // Kill the server: close the connection and the listening socket.
    let conn = first.join().unwrap();
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    drop(conn);
    drop(server);
    // Down for a while: Rampart retries with backoff (and keeps serving).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(get_entity(&c, &node, "icao-aaaaa1").await.is_some());

    // Restart on the same port with a second aircraft.
    let again = std::net::TcpListener::bind(addr).expect("rebind the upstream port");
    let _second = serve_sbs(again, vec![line("BBBBB2", 48.2, 11.6)]);
    let p = wait_entity(&c, &node, "icao-bbbbb2", |_| true).await;
    close("reconnected lat", &p["lat"], 48.2, 1e-9);
    assert_eq!(p["provenance"]["source"], "sbs-upstream");
}

// ---------------------------------------------------------------------------------------------
// 5. Bad input.

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_counted_never_folded_and_good_data_still_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(
        dir.path(),
        &[
            "--listen",
            "nmea-udp=127.0.0.1:0",
            "--listen",
            "nmea-tcp=127.0.0.1:0",
            "--listen",
            "ais-udp=127.0.0.1:0",
            "--listen",
            "ais-tcp=127.0.0.1:0",
            "--listen",
            "sbs-tcp=127.0.0.1:0",
            "--listen",
            "avr-tcp=127.0.0.1:0",
        ],
    );
    let c = reqwest::Client::new();
    let epochs = oracle(&["nmea", "3", &(now_s() - 5).to_string()]);
    let epochs = epochs.as_array().unwrap();
    let ais = oracle(&["ais", "255000000"]);
    let ais = ais.as_array().unwrap();

    // NMEA: bad checksum, truncated, garbage, out-of-range and impossible values, overlong —
    // between the sentences of an epoch. Each with the reason it must be counted under.
    // Checksummed bad lines carry the epoch's own time, so they do not open epochs of their own.
    let good = lines_of(&epochs[1]["sentences"]);
    let gga = &good[0];
    let t = gga.split(',').nth(1).unwrap();
    let bad_nmea: Vec<(String, &str)> = vec![
        (format!("{}00", &gga[..gga.len() - 2]), "bad_checksum"),
        (gga[..30].to_string(), "missing_checksum"),
        (checksummed(&format!("$GPRMC,{t},A")), "truncated"),
        ("hello, world".to_string(), "garbage"),
        (
            checksummed(&format!(
                "$GPGGA,{t},9512.000000,N,01804.116000,E,1,09,0.9,45.0,M,18.7,M,,"
            )),
            "bad_field",
        ),
        (
            // Two million kilometres up: beyond the model's limit on hae.
            checksummed(&format!(
                "$GPGGA,{t},5919.758000,N,01804.116000,E,1,09,0.9,2000000000.0,M,18.7,M,,"
            )),
            "impossible_value",
        ),
        (format!("$GPGGA,{}", "1".repeat(3000)), "line_too_long"),
    ];
    let mut nt = tcp(node.listener("nmea-tcp")).await;
    let nu = udp_from("127.0.0.1:0").await;
    for (i, epoch) in epochs.iter().enumerate() {
        let mut lines = lines_of(&epoch["sentences"]);
        if i == 1 {
            lines.splice(1..1, bad_nmea.iter().map(|(l, _)| l.clone()));
        }
        nt.write_all(&crlf(&lines)).await.unwrap();
        for l in &lines {
            nu.send_to(format!("{l}\r\n").as_bytes(), node.listener("nmea-udp"))
                .await
                .unwrap();
        }
    }
    nt.flush().await.unwrap();

    // AIS: orphan second fragment, bad checksum, garbage payload, overlong.
    let cargo5 = lines_of(&ais[0]["sentences"]);
    let pos = lines_of(&ais[1]["sentences"]);
    let mmsi_zero = oracle(&[
        "ais-one",
        r#"{"msg_type": 1, "mmsi": 0, "lat": 51.0, "lon": 3.0, "speed": 1.0, "course": 10.0}"#,
    ]);
    let bad_ais: Vec<(String, &str)> = vec![
        (cargo5[1].clone(), "orphan_fragment"),
        (format!("{}FF", &pos[0][..pos[0].len() - 2]), "bad_checksum"),
        (checksummed("!AIVDM,1,1,,A,~~~~~~,0"), "bad_field"),
        ("!AIVDM,garbage".to_string(), "missing_checksum"),
        (
            mmsi_zero[0].as_str().unwrap().to_string(),
            "impossible_value",
        ),
        (
            format!("!AIVDM,1,1,,A,{},0*00", "1".repeat(2000)),
            "line_too_long",
        ),
    ];
    let mut at = tcp(node.listener("ais-tcp")).await;
    let au = udp_from("127.0.0.1:0").await;
    let mut ais_lines: Vec<String> = bad_ais.iter().map(|(l, _)| l.clone()).collect();
    ais_lines.extend(cargo5.iter().cloned());
    ais_lines.extend(pos.iter().cloned());
    at.write_all(&crlf(&ais_lines)).await.unwrap();
    at.flush().await.unwrap();
    for l in &ais_lines {
        au.send_to(format!("{l}\n").as_bytes(), node.listener("ais-udp"))
            .await
            .unwrap();
    }

    // SBS: garbage, impossible latitude, then a good position.
    let d = "2025/11/29,12:00:00.000,2025/11/29,12:00:00.000";
    let mut st = tcp(node.listener("sbs-tcp")).await;
    let sbs_bad: Vec<(String, &str)> = vec![
        ("garbage,,,".to_string(), "bad_field"),
        (
            format!("MSG,3,1,1,ABCDEF,1,{d},,12000,,,95.00000,8.00000,,,0,0,0,0"),
            "impossible_value",
        ),
    ];
    let mut sbs: Vec<String> = sbs_bad.iter().map(|(l, _)| l.clone()).collect();
    sbs.push(format!(
        "MSG,3,1,1,ABCDEF,1,{d},,12000,,,47.00000,8.00000,,,0,0,0,0"
    ));
    st.write_all(&crlf(&sbs)).await.unwrap();
    st.flush().await.unwrap();

    // AVR: bad CRC, truncated, not hex.
    let mut vt = tcp(node.listener("avr-tcp")).await;
    let avr_bad: Vec<(String, &str)> = vec![
        ("*8D40621D58C382D690C8AC2863A8;".to_string(), "bad_crc"),
        ("*8D40621D58C3;".to_string(), "truncated"),
        ("*ZZZZ;".to_string(), "bad_field"),
    ];
    let avr: Vec<String> = avr_bad.iter().map(|(l, _)| l.clone()).collect();
    vt.write_all(&crlf(&avr)).await.unwrap();
    vt.flush().await.unwrap();

    // Good data in between all arrived.
    let last_time = epochs.last().unwrap()["time"].as_i64().unwrap();
    for uid in ["nmea-127.0.0.1"] {
        let p = wait_entity(&c, &node, uid, |p| {
            p["time"]
                .as_str()
                .and_then(|t| Timestamp::parse_rfc3339(t).ok())
                .is_some_and(|t| t.millis() == last_time)
        })
        .await;
        check_gps_entity(uid, &p, epochs.last().unwrap());
    }
    wait_entity(&c, &node, "ais-255000001", |p| {
        p["callsign"] == "RAMPART TRADER"
    })
    .await;
    let p = wait_entity(&c, &node, "icao-abcdef", |_| true).await;
    assert_eq!(
        p["lat"], 47.0,
        "the impossible SBS position was never folded"
    );

    // Every bad line counted under its input and reason.
    let mut m = HashMap::new();
    let mut want: HashMap<(String, String), u64> = HashMap::new();
    for (sources, bad) in [
        (&["nmea-tcp", "nmea-udp"][..], &bad_nmea),
        (&["ais-tcp", "ais-udp"][..], &bad_ais),
        (&["sbs-tcp"][..], &sbs_bad),
        (&["avr-tcp"][..], &avr_bad),
    ] {
        for source in sources {
            for (_, reason) in bad {
                *want
                    .entry((source.to_string(), reason.to_string()))
                    .or_default() += 1;
            }
        }
    }
    let settled = eventually(Duration::from_secs(10), async || {
        m = rejected(&c, &node).await;
        m == want
    })
    .await;
    assert!(
        settled,
        "rejections by source and reason: got {m:#?}, want {want:#?}"
    );

    // Only the good entities exist, and the node still serves.
    assert_eq!(
        uids(&c, &node).await,
        ["ais-255000001", "icao-abcdef", "nmea-127.0.0.1"]
    );
    assert!(node.alive());
    let health = c.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// 6. Replay.

fn export_geojson(dir: &Path, data: &Path, name: &str) -> Value {
    let (out, _) = run_rampart(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "geojson",
    ]);
    check_file(dir, name, "check-geojson", out.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_keeps_the_pace_and_fills_picture_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();

    // AIS with tag-block times spanning 4 s: at speed 4 the replay takes about one second.
    let ais = oracle(&["ais-tagged", "40", "4", &(now_s() - 10).to_string()]);
    let file = tmp.join("ais.nmea");
    std::fs::write(&file, crlf(&lines_of(&ais["lines"]))).unwrap();
    let paced = tmp.join("paced");
    let (out, took) = run_rampart(&[
        "replay",
        file.to_str().unwrap(),
        "--format",
        "ais",
        "--speed",
        "4",
        "--data",
        paced.to_str().unwrap(),
    ]);
    assert!(out.contains("40 reports stored"), "{out}");
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(3500),
        "speed 4 over 4 s of traffic took {took:?}"
    );
    let fast = tmp.join("fast");
    let (out, took) = run_rampart(&[
        "replay",
        file.to_str().unwrap(),
        "--format",
        "ais",
        "--speed",
        "0",
        "--data",
        fast.to_str().unwrap(),
    ]);
    assert!(out.contains("40 reports stored"), "{out}");
    assert!(
        took < Duration::from_millis(2000),
        "speed 0 ignores the 4 s of timing, took {took:?}"
    );
    for data in [&paced, &fast] {
        let gj = export_geojson(tmp, data, "ais.geojson");
        let features = gj["features"].as_array().unwrap();
        assert_eq!(features.len(), 40);
        for v in ais["vessels"].as_array().unwrap() {
            let uid = format!("ais-{}", v["mmsi"]);
            let f = features
                .iter()
                .find(|f| f["id"] == uid.as_str())
                .unwrap_or_else(|| panic!("{uid} missing from the export"));
            close(
                &format!("{uid} lon"),
                &f["coordinates"][0],
                v["lon"].as_f64().unwrap(),
                1e-6,
            );
            close(
                &format!("{uid} lat"),
                &f["coordinates"][1],
                v["lat"].as_f64().unwrap(),
                1e-6,
            );
            assert_eq!(f["properties"]["provenance"]["source"], "ais-replay");
        }
    }

    // NMEA with RMC times, SBS, AVR and CoT into one data directory.
    let data = tmp.join("mixed");
    let epochs = oracle(&["nmea", "5", &(now_s() - 20).to_string()]);
    let epochs = epochs.as_array().unwrap();
    let nmea: Vec<String> = epochs
        .iter()
        .flat_map(|e| lines_of(&e["sentences"]))
        .collect();
    let nmea_file = tmp.join("gps.nmea");
    std::fs::write(&nmea_file, crlf(&nmea)).unwrap();
    let (_, took) = run_rampart(&[
        "replay",
        nmea_file.to_str().unwrap(),
        "--format",
        "nmea",
        "--speed",
        "10",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(
        took >= Duration::from_millis(300),
        "4 s of RMC times at speed 10 take about 0.4 s, took {took:?}"
    );

    // A file of a single epoch: nothing follows to close it but the end of the file.
    let one_epoch = tmp.join("one-epoch.nmea");
    std::fs::write(&one_epoch, crlf(&lines_of(&epochs[0]["sentences"]))).unwrap();
    let single = tmp.join("single");
    let (out, _) = run_rampart(&[
        "replay",
        one_epoch.to_str().unwrap(),
        "--format",
        "nmea",
        "--data",
        single.to_str().unwrap(),
    ]);
    assert!(out.contains(": 1 reports stored"), "{out}");
    let gj = export_geojson(tmp, &single, "single.geojson");
    assert_eq!(gj["features"].as_array().unwrap().len(), 1, "{gj}");

    // SBS generation times span 2 s: at speed 2 the replay takes about one second.
    let sbs_file = tmp.join("basestation.sbs");
    let at = |s: u32| format!("2025/11/29,12:00:0{s}.000,2025/11/29,12:00:0{s}.100");
    std::fs::write(
        &sbs_file,
        [
            format!("MSG,1,1,1,4CA123,1,{},RYR12AB ,,,,,,,,,,,0", at(0)),
            format!(
                "MSG,3,1,1,4CA123,1,{},,35000,,,53.34000,-6.25000,,,0,0,0,0",
                at(1)
            ),
            format!(
                "MSG,3,1,1,4CA123,1,{},,35000,,,53.35000,-6.26000,,,0,0,0,0",
                at(2)
            ),
        ]
        .join("\n"),
    )
    .unwrap();
    let (_, took) = run_rampart(&[
        "replay",
        sbs_file.to_str().unwrap(),
        "--format",
        "sbs",
        "--speed",
        "2",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(3500),
        "2 s of SBS times at speed 2 took {took:?}"
    );

    let avr_file = tmp.join("riddle.avr");
    std::fs::write(
        &avr_file,
        "*8D40621D58C386435CC412692AD6;\n*8D40621D58C382D690C8AC2863A7;\n\
         *8D40621D58C386435CC412692AD6;\n*8D40621D58C382D690C8AC2863A7;\n",
    )
    .unwrap();
    run_rampart(&[
        "replay",
        avr_file.to_str().unwrap(),
        "--format",
        "avr",
        "--speed",
        "0",
        "--data",
        data.to_str().unwrap(),
    ]);

    let cot_file = tmp.join("events.cot");
    let t = |ms: i64| Timestamp::now().plus_millis(ms).to_rfc3339();
    let mut cot = String::new();
    for (i, (lat, lon)) in [(34.05, -118.25), (34.06, -118.24), (34.07, -118.23)]
        .iter()
        .enumerate()
    {
        let when = t(-3000 + i as i64 * 1000);
        cot.push_str(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<event version=\"2.0\" uid=\"cot-{i}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{when}\" start=\"{when}\" stale=\"{}\">\n  <point lat=\"{lat}\" lon=\"{lon}\" hae=\"10\" ce=\"5\" le=\"5\"/>\n  <detail><contact callsign=\"UNIT {i}\"/></detail>\n</event>\n",
            t(600_000)
        ));
    }
    std::fs::write(&cot_file, cot).unwrap();
    run_rampart(&[
        "replay",
        cot_file.to_str().unwrap(),
        "--format",
        "cot",
        "--speed",
        "0",
        "--data",
        data.to_str().unwrap(),
    ]);

    let gj = export_geojson(tmp, &data, "mixed.geojson");
    let features = gj["features"].as_array().unwrap();
    let by_source = |src: &str| -> Vec<&Value> {
        features
            .iter()
            .filter(|f| f["properties"]["provenance"]["source"] == src)
            .collect()
    };
    let gps = by_source("nmea-replay");
    assert_eq!(gps.len(), 1, "one receiver: {gj}");
    let last = epochs.last().unwrap();
    close(
        "gps lat",
        &gps[0]["coordinates"][1],
        last["lat"].as_f64().unwrap(),
        1e-6,
    );
    close(
        "gps lon",
        &gps[0]["coordinates"][0],
        last["lon"].as_f64().unwrap(),
        1e-6,
    );
    let sbs = by_source("sbs-replay");
    assert_eq!(sbs.len(), 1);
    assert_eq!(sbs[0]["id"], "icao-4ca123");
    assert_eq!(sbs[0]["properties"]["callsign"], "RYR12AB");
    let avr = by_source("avr-replay");
    assert_eq!(avr.len(), 1, "{gj}");
    assert_eq!(avr[0]["id"], "icao-40621d");
    close("avr lat", &avr[0]["coordinates"][1], 52.2572, 1e-4);
    close("avr lon", &avr[0]["coordinates"][0], 3.9194, 1e-4);
    let cot = by_source("cot-replay");
    assert_eq!(cot.len(), 3, "{gj}");
    let c2 = cot.iter().find(|f| f["id"] == "cot-2").unwrap();
    assert_eq!(c2["properties"]["callsign"], "UNIT 2");
    close("cot lat", &c2["coordinates"][1], 34.07, 1e-9);

    // The NMEA track holds every epoch.
    let (out, _) = run_rampart(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--track",
        gps[0]["id"].as_str().unwrap(),
        "--format",
        "csv",
    ]);
    let rows = check_file(tmp, "gps.csv", "check-csv", out.as_bytes());
    assert_eq!(
        rows["rows"].as_array().unwrap().len(),
        epochs.len(),
        "{rows}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Exports.

async fn fetch(
    c: &reqwest::Client,
    node: &Node,
    path: &str,
    accept: Option<&str>,
) -> (u16, String, Vec<u8>) {
    let mut req = c.get(node.url(path));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_parse_back_over_http_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let data = tmp.join("data");
    let node = Node::start(&data, &[]);
    let c = reqwest::Client::new();
    let mut reports = vec![
        json!({"uid": "unit-a", "type": "a-f-G-U-C", "callsign": "ALPHA & CO <1>", "lat": 54.31, "lon": 10.11, "hae": 12.5, "time": common::time(-1000)}),
        json!({"uid": "unit-b", "type": "a-h-G", "callsign": "BRAVO, \"2\"", "lat": -33.5, "lon": -70.25, "time": common::time(-1000)}),
    ];
    let track: Vec<(f64, f64)> = (0..5)
        .map(|i| (54.0 + i as f64 * 0.01, 10.0 + i as f64 * 0.02))
        .collect();
    for (i, (lat, lon)) in track.iter().enumerate() {
        reports.push(json!({"uid": "walker", "lat": lat, "lon": lon, "hae": 3.0, "time": common::time(-10_000 + i as i64 * 1000)}));
    }
    let r = c
        .post(node.url("/api/v1/reports"))
        .json(&reports)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let want: HashMap<&str, (f64, f64)> = [
        ("unit-a", (54.31, 10.11)),
        ("unit-b", (-33.5, -70.25)),
        ("walker", *track.last().unwrap()),
    ]
    .into_iter()
    .collect();

    // GeoJSON (default), validated by the geojson package.
    let (s, ct, body) = fetch(&c, &node, "/api/v1/entities", None).await;
    assert_eq!((s, ct.as_str()), (200, "application/geo+json"));
    let gj = check_file(tmp, "all.geojson", "check-geojson", &body);
    assert_eq!(gj["features"].as_array().unwrap().len(), 3);
    for f in gj["features"].as_array().unwrap() {
        let (lat, lon) = want[f["id"].as_str().unwrap()];
        close("geojson lon", &f["coordinates"][0], lon, 1e-9);
        close("geojson lat", &f["coordinates"][1], lat, 1e-9);
    }

    // KML, by parameter and by Accept.
    for (path, accept) in [
        ("/api/v1/entities?format=kml", None),
        (
            "/api/v1/entities",
            Some("application/vnd.google-earth.kml+xml"),
        ),
    ] {
        let (s, ct, body) = fetch(&c, &node, path, accept).await;
        assert_eq!(s, 200);
        assert!(
            ct.starts_with("application/vnd.google-earth.kml+xml"),
            "{ct}"
        );
        let x = check_file(tmp, "all.kml", "check-xml", &body);
        assert_eq!(x["root"], "kml");
        assert_eq!(x["namespace"], "http://www.opengis.net/kml/2.2");
        let coords = x["coordinates"].as_array().unwrap();
        assert_eq!(coords.len(), 3, "{x}");
        for (lat, lon) in want.values() {
            assert!(
                coords
                    .iter()
                    .any(|c| (c[0].as_f64().unwrap() - lon).abs() < 1e-9
                        && (c[1].as_f64().unwrap() - lat).abs() < 1e-9),
                "{lat},{lon} not in the KML: {x}"
            );
        }
        let names = x["names"].to_string();
        assert!(
            names.contains("ALPHA & CO <1>"),
            "escaped callsign round-trips: {names}"
        );
    }

    // CSV, by parameter and by Accept.
    for (path, accept) in [
        ("/api/v1/entities?format=csv", None),
        ("/api/v1/entities", Some("text/csv")),
    ] {
        let (s, ct, body) = fetch(&c, &node, path, accept).await;
        assert_eq!(s, 200);
        assert!(ct.starts_with("text/csv"), "{ct}");
        let rows = check_file(tmp, "all.csv", "check-csv", &body);
        let rows = rows["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        for row in rows {
            let uid = row["uid"].as_str().unwrap();
            let (lat, lon) = want[uid];
            close(
                "csv lat",
                &json!(row["lat"].as_str().unwrap().parse::<f64>().unwrap()),
                lat,
                1e-9,
            );
            close(
                "csv lon",
                &json!(row["lon"].as_str().unwrap().parse::<f64>().unwrap()),
                lon,
                1e-9,
            );
        }
        let b = rows.iter().find(|r| r["uid"] == "unit-b").unwrap();
        assert_eq!(b["callsign"], "BRAVO, \"2\"", "quoting round-trips");
    }

    // CoT XML, by parameter and by Accept.
    for (path, accept) in [
        ("/api/v1/entities?format=cot", None),
        ("/api/v1/entities", Some("application/cot+xml")),
    ] {
        let (s, _, body) = fetch(&c, &node, path, accept).await;
        assert_eq!(s, 200);
        let x = check_file(tmp, "all.cot", "check-xml", &body);
        assert_eq!(x["root"], "events");
        let pts = x["points"].as_array().unwrap();
        assert_eq!(pts.len(), 3);
        let names = x["names"].to_string();
        for uid in want.keys() {
            assert!(names.contains(uid), "{uid} missing from CoT: {x}");
        }
    }
    // An Accept header without a known type falls back to GeoJSON; format= beats Accept.
    let (_, ct, _) = fetch(&c, &node, "/api/v1/entities", Some("image/png")).await;
    assert_eq!(ct, "application/geo+json");
    let (_, ct, _) = fetch(
        &c,
        &node,
        "/api/v1/entities?format=csv",
        Some("application/vnd.google-earth.kml+xml"),
    )
    .await;
    assert!(ct.starts_with("text/csv"), "{ct}");

    // Tracks: GPX, KML, CSV, GeoJSON.
    let check_track = |x: &Value, what: &str| {
        let pts: Vec<(f64, f64)> = if let Some(p) = x["points"].as_array().filter(|p| !p.is_empty())
        {
            p.iter()
                .map(|p| (p["lat"].as_f64().unwrap(), p["lon"].as_f64().unwrap()))
                .collect()
        } else {
            x["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c[1].as_f64().unwrap(), c[0].as_f64().unwrap()))
                .collect()
        };
        // Tracks are quantised to 1e-7 degrees in history.
        let mut pts = pts;
        pts.dedup();
        assert!(pts.len() >= track.len(), "{what}: {x}");
        for (lat, lon) in &track {
            assert!(
                pts.iter()
                    .any(|(a, b)| (a - lat).abs() < 2e-7 && (b - lon).abs() < 2e-7),
                "{what}: {lat},{lon} missing: {pts:?}"
            );
        }
    };
    for (path, accept) in [
        ("/api/v1/entities/walker/track?format=gpx", None),
        ("/api/v1/entities/walker/track", Some("application/gpx+xml")),
    ] {
        let (s, ct, body) = fetch(&c, &node, path, accept).await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        assert!(ct.starts_with("application/gpx+xml"), "{ct}");
        let x = check_file(tmp, "walker.gpx", "check-xml", &body);
        assert_eq!(x["root"], "gpx");
        assert_eq!(x["namespace"], "http://www.topografix.com/GPX/1/1");
        assert_eq!(x["points"].as_array().unwrap().len(), track.len(), "{x}");
        check_track(&x, "gpx");
    }
    let (s, _, body) = fetch(&c, &node, "/api/v1/entities/walker/track?format=kml", None).await;
    assert_eq!(s, 200);
    let x = check_file(tmp, "walker.kml", "check-xml", &body);
    assert_eq!(x["root"], "kml");
    check_track(&x, "kml track");
    let (s, ct, body) = fetch(&c, &node, "/api/v1/entities/walker/track", Some("text/csv")).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let rows = check_file(tmp, "walker.csv", "check-csv", &body);
    let rows = rows["rows"].as_array().unwrap();
    assert_eq!(rows.len(), track.len());
    let (s, _, body) = fetch(
        &c,
        &node,
        "/api/v1/entities/walker/track?format=geojson",
        None,
    )
    .await;
    assert_eq!(s, 200);
    check_file(tmp, "walker.geojson", "check-geojson", &body);

    // Unknown or unavailable formats are a 400 naming `format`.
    for path in [
        "/api/v1/entities?format=shapefile",
        "/api/v1/entities?format=gpx",
        "/api/v1/entities/walker/track?format=cot",
        "/api/v1/entities/walker/track?format=",
    ] {
        let (s, _, body) = fetch(&c, &node, path, None).await;
        assert_eq!(s, 400, "{path}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("format"), "{path}: {text}");
    }

    // `rampart export` from the data directory once the node is gone.
    node.kill9();
    let gpx = tmp.join("walker-cli.gpx");
    run_rampart(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--track",
        "walker",
        "--format",
        "gpx",
        "-o",
        gpx.to_str().unwrap(),
    ]);
    let x = oracle(&["check-xml", gpx.to_str().unwrap()]);
    assert_eq!(x["root"], "gpx");
    assert_eq!(x["points"].as_array().unwrap().len(), track.len());
    check_track(&x, "cli gpx");
    for (fmt, check) in [
        ("kml", "check-xml"),
        ("csv", "check-csv"),
        ("cot", "check-xml"),
        ("geojson", "check-geojson"),
    ] {
        let (out, _) = run_rampart(&["export", "--data", data.to_str().unwrap(), "--format", fmt]);
        let v = check_file(tmp, &format!("cli.{fmt}"), check, out.as_bytes());
        let s = v.to_string();
        for uid in ["unit-a", "unit-b", "walker"] {
            if fmt != "kml" {
                assert!(s.contains(uid), "{fmt}: {uid} missing: {s}");
            }
        }
    }
    let out = rampart()
        .args([
            "export",
            "--data",
            data.to_str().unwrap(),
            "--format",
            "shapefile",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
}
