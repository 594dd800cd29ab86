//! The TAK edge end to end, against the real binary and real third-party TAK clients: PyPI
//! `pytak` (its CLITool/TXWorker/RXWorker over `protocol_factory`, events from `gen_cot_xml`)
//! and `takproto` (TAK protocol v1), driven by `tests/tak/tak_clients.py`.
//!
//! Each test starts its own node with `cot-tcp`, `cot-tls`, `cot-udp` and `http` listeners on
//! free ports, runs one client scenario (the script asserts what each client must and must not
//! receive, and prints what it saw as JSON), then checks the picture over HTTP, the WebSocket
//! stream and `/metrics`. The tests fail — never skip — when the interpreter is missing: run
//! `scripts/python-env` (or set `RAMPART_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Node, close_to, entity, eventually, metrics, python, run_json, series};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Starts a node with every TAK listener, and `config` (TOML) when given.
fn start(dir: &tempfile::TempDir, config: Option<&str>) -> Node {
    let mut args = vec![
        "--listen",
        "cot-tcp=127.0.0.1:0",
        "--listen",
        "cot-tls=127.0.0.1:0",
        "--listen",
        "cot-udp=127.0.0.1:0",
    ];
    let path = dir.path().join("rampart.toml");
    if let Some(toml) = config {
        std::fs::write(&path, toml).unwrap();
        args.extend(["--config", path.to_str().unwrap()]);
    }
    let node = Node::start(&dir.path().join("data"), &args);
    // cot-tls requires client certificates from the node's CA (created on start): the pytak
    // clients use this PKCS#12 bundle.
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "pki",
            "issue",
            "user",
            "pytak",
            "--p12-password",
            "atakatak",
            "--data",
        ])
        .arg(&node.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rampart pki issue: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    node
}

/// Runs client scenario `name` against `node` (off the async runtime) and returns its JSON.
async fn scenario(node: &Node, name: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tak/tak_clients.py");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(name)
        .args(["--tcp", &node.listener("cot-tcp").to_string()])
        .args(["--tls", &node.listener("cot-tls").to_string()])
        .args(["--udp", &node.listener("cot-udp").to_string()])
        .args(["--http", &node.base])
        .arg("--data")
        .arg(&node.data);
    run_json(cmd, &format!("TAK client scenario {name}")).await
}

// ---------------------------------------------------------------------------------------------
// Tests

/// 1 and 3: PLI over streaming XML, both directions, no echo; the entity over HTTP and the
/// WebSocket stream.
#[tokio::test(flavor = "multi_thread")]
async fn pli_over_xml_reaches_the_other_client_and_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    let out = scenario(&node, "pli").await;
    let bob_got = &out["bob_got"];
    assert_eq!(bob_got["callsign"], "ALICE");
    assert_eq!(bob_got["type"], "a-f-G-U-C");
    close_to("lat", &bob_got["lat"], 50.8503);
    close_to("battery", &bob_got["battery"], 87.0);
    assert_eq!(out["alice_got"]["callsign"], "BOB");
    assert_eq!(out["alice_uids"], serde_json::json!(["ANDROID-bob"]));

    // The latest report of each over HTTP.
    let alice = entity(&node, "ANDROID-alice").await;
    let p = eventually(Duration::from_secs(5), async || {
        entity(&node, "ANDROID-alice").await["lat"] == 50.9
    })
    .await;
    assert!(p, "ALICE's second report never folded: {alice}");
    let alice = entity(&node, "ANDROID-alice").await;
    assert_eq!(alice["callsign"], "ALICE");
    assert_eq!(alice["type"], "a-f-G-U-C");
    assert_eq!(alice["how"], "m-g");
    close_to("lat", &alice["lat"], 50.9);
    close_to("lon", &alice["lon"], 4.4);
    close_to("hae", &alice["hae"], 25.0);
    close_to("battery", &alice["attributes"]["battery"], 86.0);
    assert_eq!(alice["provenance"]["source"], "cot-tcp");
    let bob = entity(&node, "ANDROID-bob").await;
    close_to("battery", &bob["attributes"]["battery"], 42.0);

    // The WebSocket stream's snapshot holds both.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/v1/stream", node.addr))
        .await
        .unwrap();
    let snap = loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no stream message")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "snapshot" {
                break v;
            }
        }
    };
    let feature = snap["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "ANDROID-alice")
        .unwrap_or_else(|| panic!("ALICE not in the stream snapshot: {snap}"));
    assert_eq!(feature["properties"]["callsign"], "ALICE");
}

/// 2: TAK protocol v1 negotiation and stream framing, interoperating with an XML client.
#[tokio::test(flavor = "multi_thread")]
async fn protobuf_client_negotiates_and_interoperates_with_xml_clients() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    let out = scenario(&node, "proto").await;
    // What the XML client got from the protobuf client.
    let x = &out["xml_got"];
    assert_eq!(x["callsign"], "PROTO");
    close_to("lat", &x["lat"], -33.8688);
    close_to("lon", &x["lon"], 151.2093);
    close_to("battery", &x["battery"], 55.0);
    close_to("speed", &x["speed"], 3.25);
    close_to("course", &x["course"], 45.0);
    // What the protobuf client decoded with takproto from the XML client's event.
    let p = &out["proto_got"];
    assert_eq!(p["type"], "a-f-G-U-C");
    assert_eq!(p["how"], "m-g");
    assert_eq!(p["callsign"], "XMLER");
    assert_eq!(p["group"], "Cyan");
    close_to("lat", &p["lat"], 48.8566);
    close_to("lon", &p["lon"], 2.3522);
    close_to("hae", &p["hae"], 25.0);
    close_to("battery", &p["battery"], 64.0);
    close_to("speed", &p["speed"], 2.5);
    close_to("course", &p["course"], 180.0);
    let (send, stale) = (
        p["sendTime"].as_i64().unwrap(),
        p["staleTime"].as_i64().unwrap(),
    );
    assert!(
        (stale - send - 120_000).abs() < 1_000,
        "stale {stale} is not send {send} + 120 s"
    );
    assert!(
        p["xmlDetail"].as_str().unwrap().contains("_flow-tags_"),
        "{p}"
    );
    assert_eq!(out["pong"]["type"], "t-x-c-t-r");
    // The protobuf client's report is in the picture too.
    let e = entity(&node, "ANDROID-proto").await;
    assert_eq!(e["callsign"], "PROTO");
    close_to("battery", &e["attributes"]["battery"], 55.0);
}

/// 4: GeoChat to all with its remarks intact, and a directed GeoChat only its addressee gets.
#[tokio::test(flavor = "multi_thread")]
async fn geochat_broadcast_and_directed() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    let out = scenario(&node, "chat").await;
    assert_eq!(out["broadcast"]["remarks"], out["text"]);
    assert_eq!(out["broadcast"]["sender"], "ALICE");
    assert_eq!(out["broadcast"]["chatroom"], "All Chat Rooms");
    assert_eq!(out["direct"]["remarks"], "for BOB only");
    assert_eq!(out["direct"]["chatroom"], "BOB");
}

/// 5: a 911 alert reaches the others and the picture.
#[tokio::test(flavor = "multi_thread")]
async fn emergency_alert_reaches_clients_and_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    let out = scenario(&node, "emergency").await;
    assert_eq!(out["alert"]["emergency"], "911 Alert");
    assert_eq!(out["alert"]["callsign"], "ALICE-Alert");
    let e = entity(&node, "ANDROID-alice-9-1-1").await;
    assert_eq!(e["type"], "b-a-o-tbl");
    assert_eq!(e["attributes"]["emergency.type"], "911 Alert");
}

/// 6: a late joiner gets the current picture (latest, non-stale, HTTP-posted included).
#[tokio::test(flavor = "multi_thread")]
async fn late_joiner_gets_the_current_picture() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    let out = scenario(&node, "late").await;
    let b = &out["via_bridge"];
    assert_eq!(b["type"], "a-h-G");
    assert_eq!(b["callsign"], "HTTPER");
    close_to("lat", &b["lat"], -12.5);
    close_to("lon", &b["lon"], 130.8);
    let late = out["late"].as_array().unwrap();
    let http = late.iter().find(|e| e["uid"] == "http-late").unwrap();
    assert_eq!(http["callsign"], "HTTPER");
}

/// 7: a keepalive ping is answered with a pong.
#[tokio::test(flavor = "multi_thread")]
async fn ping_is_answered_with_a_pong() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    let out = scenario(&node, "ping").await;
    assert_eq!(out["pong"]["type"], "t-x-c-t-r");
    assert_eq!(out["pong"]["uid"], "takPong");
}

/// 8: pytak over mutual TLS with a PKCS#12 bundle from the node's CA (server verified).
#[tokio::test(flavor = "multi_thread")]
async fn tls_client_interoperates_with_tcp_clients() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    assert!(node.data.join("pki/ca.crt").exists());
    let out = scenario(&node, "tls").await;
    assert_eq!(out["tcp_got"]["callsign"], "TLSER");
    close_to("battery", &out["tcp_got"]["battery"], 77.0);
    assert_eq!(out["tls_got"]["callsign"], "TCPER");
    let e = entity(&node, "ANDROID-tls").await;
    assert_eq!(e["provenance"]["source"], "cot-tls");
}

/// 9: CoT over UDP (pytak XML and a takproto mesh datagram) reaches TCP clients and the picture.
#[tokio::test(flavor = "multi_thread")]
async fn udp_events_reach_tcp_clients_and_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None);
    let out = scenario(&node, "udp").await;
    assert_eq!(out["xml_got"]["callsign"], "UDPXML");
    assert_eq!(out["mesh_got"]["callsign"], "UDPMESH");
    close_to("battery", &out["mesh_got"]["battery"], 34.0);
    for (uid, callsign, lat) in [
        ("ANDROID-udp-xml", "UDPXML", -1.28),
        ("ANDROID-udp-mesh", "UDPMESH", -1.29),
    ] {
        let e = entity(&node, uid).await;
        assert_eq!(e["callsign"], callsign);
        close_to("lat", &e["lat"], lat);
        assert_eq!(e["provenance"]["source"], "cot-udp");
    }
}

/// 10: malformed XML, garbage, an oversized event, a slowloris sender and a receiver that never
/// reads are each disconnected (and counted by reason), while other clients keep working and
/// a reading client gets every event of a flood.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_connections_are_closed_alone() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(
        &dir,
        Some("[cot]\nmax_event_bytes = 4096\nframe_timeout_secs = 2\nmax_queue_bytes = 65536\n"),
    );
    let out = scenario(&node, "robust").await;
    assert!(out["cut_at"].as_u64().is_some(), "no cut-off: {out}");
    let m = metrics(&node).await;
    for reason in [
        "malformed_xml",
        "garbage",
        "frame_too_large",
        "frame_timeout",
        "slow_consumer",
    ] {
        let n = series(
            &m,
            &format!("rampart_cot_disconnects_total{{reason=\"{reason}\"}}"),
        );
        assert_eq!(n, 1.0, "disconnects for {reason}: {n}\n{m}");
    }
    // Nothing else was disconnected: the witnesses and the fast reader stayed up.
    let total: f64 = m
        .lines()
        .filter(|l| l.starts_with("rampart_cot_disconnects_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 5.0, "{m}");
}

/// 11: channels by listener kind; HTTP-originated entities reach every channel.
#[tokio::test(flavor = "multi_thread")]
async fn channels_separate_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(
        &dir,
        Some("[cot.channels]\ncot-tcp = [\"blue\"]\ncot-tls = [\"red\"]\n"),
    );
    let out = scenario(&node, "channels").await;
    let t1: Vec<String> = serde_json::from_value(out["t1"].clone()).unwrap();
    let l1: Vec<String> = serde_json::from_value(out["l1"].clone()).unwrap();
    assert!(t1.contains(&"http-both".to_string()), "{t1:?}");
    assert!(l1.contains(&"http-both".to_string()), "{l1:?}");
    assert!(!t1.contains(&"ANDROID-red-1".to_string()), "{t1:?}");
    assert!(!l1.contains(&"ANDROID-blue-1".to_string()), "{l1:?}");
}

/// A client that streams TAK protocol v1 without negotiating (as pytak does with TAK_PROTO
/// set) is understood, and is answered in protobuf too.
#[tokio::test(flavor = "multi_thread")]
async fn unnegotiated_protobuf_streams_are_detected() {
    use rampart_codec_cot::{
        CotEvent, CotLimits, ProtoStreamSplitter, XmlStreamSplitter, encode_stream, encode_xml,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, Some("[cot]\noffer_protocol = false\n"));
    let addr = node.listener("cot-tcp");
    let now = rampart_model::Timestamp::now();
    let pli = |uid: &str, lat: f64| {
        let mut e = CotEvent::new(uid, "a-f-G-U-C", now, now.plus_millis(60_000));
        e.point.lat = lat;
        e.point.lon = 10.0;
        e
    };
    let mut xml_client = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut proto_client = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    proto_client
        .write_all(&encode_stream(&pli("proto-1", 1.5).to_tak_message()))
        .await
        .unwrap();
    // The XML client gets it as XML.
    let mut xml = XmlStreamSplitter::new(65536);
    let mut buf = vec![0u8; 65536];
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let n = xml_client.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed");
            xml.push(&buf[..n]);
            if let Some(frame) = xml.next_frame().unwrap() {
                return rampart_codec_cot::parse_xml(&frame, &CotLimits::default()).unwrap();
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got.uid, "proto-1");
    // The protobuf client gets the XML client's event as protobuf.
    xml_client
        .write_all(encode_xml(&pli("xml-1", 2.5)).as_bytes())
        .await
        .unwrap();
    let mut proto = ProtoStreamSplitter::new(65536);
    let msg = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let n = proto_client.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed");
            proto.push(&buf[..n]);
            if let Some(m) = proto.next_message().unwrap() {
                return m;
            }
        }
    })
    .await
    .unwrap();
    let event = CotEvent::from_tak_message(&msg, &CotLimits::default()).unwrap();
    assert_eq!(event.uid, "xml-1");
    assert_eq!(entity(&node, "proto-1").await["lat"], 1.5);
}
