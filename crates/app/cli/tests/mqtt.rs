//! The MQTT edge end to end, against the real binary and real third-party MQTT clients:
//! Debian's `mosquitto_pub`/`mosquitto_sub` and PyPI `paho-mqtt` (MQTT 3.1.1 and 5, driven
//! by `tests/mqtt/mqtt_clients.py`), plus raw sockets for malformed input.
//!
//! Each test starts its own node with an `mqtt` listener on a free port. The tests fail —
//! never skip — when a client is missing: run `scripts/python-env` and install Debian's
//! `mosquitto-clients` (`.ci/run` does both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Mosquitto, Node, eventually, python, time};
use serde_json::{Value, json};

fn start(dir: &tempfile::TempDir, extra: &[&str]) -> Node {
    let mut args = vec!["--listen", "mqtt=127.0.0.1:0"];
    args.extend_from_slice(extra);
    Node::start(&dir.path().join("data"), &args)
}

/// Runs a paho-mqtt scenario and returns the JSON it printed.
async fn paho(node: &Node, scenario: &str, args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mqtt/mqtt_clients.py");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(scenario)
        .args(["--port", &node.listener("mqtt").port().to_string()])
        .args(args);
    let name = scenario.to_string();
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run mqtt_clients.py"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "paho scenario {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("scenario {name} printed no JSON ({e}): {text}"))
}

fn mosquitto(bin: &str, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    c
}

async fn register(node: &Node, body: Value) -> String {
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/devices"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "register {body}");
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn metric(node: &Node, needle: &str) -> f64 {
    let text = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn entity(node: &Node, uid: &str) -> Option<Value> {
    let path = uid.replace('%', "%25").replace('/', "%2F");
    let r = reqwest::get(node.url(&format!("/api/v1/entities/{path}")))
        .await
        .unwrap();
    if r.status() == 200 {
        r.json().await.ok()
    } else {
        None
    }
}

fn report(uid: &str, lat: f64, lon: f64) -> String {
    json!({"uid": uid, "lat": lat, "lon": lon, "time": time(0), "type": "a-f-G-U-C"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_pubsub_qos_and_retained() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, &["--mqtt-allow-anonymous"]);
    let port = node.listener("mqtt").port();
    // A retained message first, then a late subscriber gets it.
    let st = mosquitto(
        "mosquitto_pub",
        port,
        &["-t", "app/state", "-m", "ready", "-r", "-q", "1"],
    )
    .status()
    .expect("mosquitto_pub (install Debian mosquitto-clients)");
    assert!(st.success());
    let sub = mosquitto(
        "mosquitto_sub",
        port,
        &[
            "-t", "app/#", "-v", "-C", "4", "-W", "10", "-q", "2", "-V", "mqttv5",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (q, m) in [("0", "zero"), ("1", "one"), ("2", "two")] {
        let st = mosquitto(
            "mosquitto_pub",
            port,
            &["-t", &format!("app/q{q}"), "-m", m, "-q", q],
        )
        .status()
        .unwrap();
        assert!(st.success());
    }
    let out = tokio::task::spawn_blocking(move || sub.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["app/state ready", "app/q0 zero", "app/q1 one", "app/q2 two"],
        "{text}"
    );
    // Anonymous clients may not touch device topics: refused and counted, not stored.
    let st = mosquitto(
        "mosquitto_pub",
        port,
        &[
            "-t",
            "rampart/v1/x/report",
            "-m",
            &report("x", 1.0, 2.0),
            "-q",
            "1",
        ],
    )
    .status()
    .unwrap();
    assert!(
        st.success(),
        "3.1.1 has no negative PUBACK: acknowledged and dropped"
    );
    // Broker counters reach /metrics once a second.
    let counted = eventually(Duration::from_secs(5), async || {
        metric(
            &node,
            "rampart_mqtt_broker_events_total{reason=\"publish_denied\"}",
        )
        .await
            >= 1.0
    })
    .await;
    assert!(counted, "denied publish counted");
    assert!(entity(&node, "x").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_report_over_paho_v311_and_v5_and_spoofing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, &[]);
    let token = register(&node, json!({"id": "truck-1"})).await;
    for v5 in [false, true] {
        let uid = if v5 { "truck-1.v5" } else { "truck-1" };
        let mut args = vec![
            "--device",
            "truck-1",
            "--token",
            &token,
            "--topic",
            "rampart/v1/truck-1/report",
        ];
        let good = report(uid, 59.3, 18.1);
        let spoof = report("truck-2", 59.0, 18.0);
        args.extend(["--payload", &good, "--payload", &spoof]);
        if v5 {
            args.push("--v5");
        }
        let out = paho(&node, "device-report", &args).await;
        assert_eq!(out["connack"]["rc"], 0, "{out}");
        let codes = out["codes"].as_array().unwrap();
        assert_eq!(
            codes[0], 0,
            "the report is acknowledged once durable: {out}"
        );
        if v5 {
            assert_eq!(
                codes[1], 135,
                "MQTT 5 gets Not authorized for another unit's uid: {out}"
            );
        }
        let e = entity(&node, uid)
            .await
            .expect("reported entity in the picture");
        assert_eq!(e["properties"]["provenance"]["identity"], "truck-1");
    }
    assert!(
        entity(&node, "truck-2").await.is_none(),
        "the spoofed uid never reaches the picture"
    );
    assert_eq!(
        metric(
            &node,
            "rampart_mqtt_publishes_refused_total{reason=\"uid_not_allowed\"}"
        )
        .await,
        2.0
    );
    // A wrong token is refused at CONNECT.
    let out = paho(
        &node,
        "device-report",
        &[
            "--device",
            "truck-1",
            "--token",
            "nope",
            "--topic",
            "rampart/v1/truck-1/report",
        ],
    )
    .await;
    assert_ne!(out["connack"]["rc"], 0);
    assert!(
        metric(
            &node,
            "rampart_mqtt_auth_refused_total{reason=\"bad_token\"}"
        )
        .await
            >= 1.0
    );
    // Telemetry updates attributes of the device's entity, at its last position.
    let st = mosquitto(
        "mosquitto_pub",
        node.listener("mqtt").port(),
        &[
            "-u",
            "truck-1",
            "-P",
            &token,
            "-t",
            "rampart/v1/truck-1/telemetry",
            "-m",
            r#"{"fuel": 42.5, "engine_temp": 88}"#,
            "-q",
            "1",
        ],
    )
    .status()
    .unwrap();
    assert!(st.success());
    let ok = eventually(Duration::from_secs(5), async || {
        entity(&node, "truck-1")
            .await
            .is_some_and(|e| e["properties"]["attributes"]["fuel"] == 42.5)
    })
    .await;
    assert!(ok, "telemetry attributes folded");
    let e = entity(&node, "truck-1").await.unwrap();
    assert_eq!(e["properties"]["lat"], 59.3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v5_shared_subscriptions_user_properties_wills_and_reason_codes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, &["--mqtt-allow-anonymous"]);
    let out = paho(&node, "v5-features", &[]).await;
    let (a, b) = (
        out["share_a"].as_u64().unwrap(),
        out["share_b"].as_u64().unwrap(),
    );
    assert_eq!(a + b, 10, "{out}");
    assert!(a > 0 && b > 0, "both group members get work: {out}");
    assert_eq!(out["user_properties"], json!([["origin", "test"]]));
    assert_eq!(out["will"], json!(["gone"]));
    assert_eq!(
        out["watcher_subacks"][1],
        json!([135]),
        "rampart/# refused for anonymous: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sessions_and_queued_qos1_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    for v5 in [false, true] {
        let node = start(&dir, &["--mqtt-allow-anonymous"]);
        let id = if v5 { "keeper5" } else { "keeper3" };
        let topic = format!("queue/{id}/#");
        let mut base = vec!["--client-id", id, "--topic", &topic];
        if v5 {
            base.push("--v5");
        }
        let with = |phase: &'static str| {
            let mut a = base.clone();
            a.extend(["--phase", phase, "--count", "5"]);
            a
        };
        paho(&node, "persistent", &with("subscribe")).await;
        paho(&node, "persistent", &with("publish")).await;
        node.stop();
        let node = start(&dir, &["--mqtt-allow-anonymous"]);
        let out = paho(&node, "persistent", &with("receive")).await;
        assert_eq!(out["connack"]["session_present"], true, "{out}");
        let got: Vec<&str> = out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["payload"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            ["msg-0", "msg-1", "msg-2", "msg-3", "msg-4"],
            "v5={v5}"
        );
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_an_offline_device_on_reconnect_and_are_acked() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, &[]);
    let token = register(&node, json!({"id": "pump-7"})).await;
    let dev = ["--device", "pump-7", "--token", token.as_str()];
    let mut a = dev.to_vec();
    a.extend(["--phase", "subscribe"]);
    paho(&node, "commands", &a).await;
    // The device is offline now. Two commands are queued for it.
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for name in ["reboot", "set-rate"] {
        let r = http
            .post(node.url("/api/v1/devices/pump-7/commands"))
            .json(&json!({"command": name, "args": {"hz": 5}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let c: Value = r.json().await.unwrap();
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    // Its persistent session holds them: status `sent`.
    let ok = eventually(Duration::from_secs(5), async || {
        let c: Value = http
            .get(node.url(&format!("/api/v1/commands/{}", ids[0])))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        c["status"] == "sent"
    })
    .await;
    assert!(ok, "command handed to the device's session");
    let mut a = dev.to_vec();
    a.extend(["--phase", "serve", "--count", "2"]);
    let out = paho(&node, "commands", &a).await;
    let names: Vec<&str> = out["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reboot", "set-rate"]);
    for id in &ids {
        let ok = eventually(Duration::from_secs(5), async || {
            let c: Value = http
                .get(node.url(&format!("/api/v1/commands/{id}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            c["status"] == "acked"
        })
        .await;
        assert!(ok, "command {id} acked");
    }
    // Unknown devices and bad requests are refused with a reason.
    let r = http
        .post(node.url("/api/v1/devices/nobody/commands"))
        .json(&json!({"command": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(node.url("/api/v1/devices/pump-7/commands"))
        .json(&json!({"command": "x", "ttl_s": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("ttl_s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_updates_are_published_on_entity_topics() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, &[]);
    let token = register(&node, json!({"id": "viewer"})).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mqtt/mqtt_clients.py");
    let mut child = Command::new(python())
        .arg(script)
        .args([
            "entities",
            "--port",
            &node.listener("mqtt").port().to_string(),
        ])
        .args(["--device", "viewer", "--token", &token, "--uid", "alpha/1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    let n = tokio::task::spawn_blocking(move || {
        let n = stdout.read(&mut first).unwrap();
        (n, stdout)
    })
    .await
    .unwrap();
    let (_, mut stdout) = n;
    let body = json!([{"uid": "alpha/1", "lat": 1.0, "lon": 2.0, "time": time(0)}]);
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        let _ = child.wait();
        s
    })
    .await
    .unwrap();
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let msgs = v["messages"].as_array().unwrap();
    let m = msgs
        .iter()
        .find(|m| m["topic"] == "rampart/v1/entities/alpha%2F1")
        .expect("entity topic, uid escaped");
    let e: Value = serde_json::from_str(m["payload"].as_str().unwrap()).unwrap();
    assert_eq!(e["id"], "alpha/1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_packets_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        "[mqtt]\nmax_packet_bytes = 4096\nallow_anonymous = true\n",
    )
    .unwrap();
    let node = start(&dir, &["--config", cfg.to_str().unwrap()]);
    let addr = node.listener("mqtt");
    // A subscriber that must keep working throughout.
    let sub = mosquitto(
        "mosquitto_sub",
        addr.port(),
        &["-t", "ok/#", "-C", "1", "-W", "15"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let closed = |bytes: Vec<u8>| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&bytes);
        let mut buf = [0u8; 64];
        // The server closes: read returns 0 (or a reset), never hangs.
        matches!(s.read(&mut buf), Ok(0) | Err(_)) || matches!(s.read(&mut buf), Ok(0) | Err(_))
    };
    // Not MQTT at all.
    assert!(closed(b"GET / HTTP/1.1\r\n\r\n".to_vec()));
    // A CONNECT with a bad protocol level.
    assert!(closed(vec![
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x09, 0x02, 0x00, 0x3c, 0x00, 0x00
    ]));
    // Oversized: a valid CONNECT, then a PUBLISH declaring 1 MiB.
    let mut big = vec![
        0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, b'z',
    ];
    big.extend([0x30, 0x80, 0x80, 0x40]);
    big.extend(vec![b'a'; 8192]);
    assert!(closed(big));
    assert!(metric(&node, "rampart_mqtt_connections_closed_bad_input_total").await >= 3.0);
    let st = mosquitto(
        "mosquitto_pub",
        addr.port(),
        &["-t", "ok/1", "-m", "still-here"],
    )
    .status()
    .unwrap();
    assert!(st.success());
    let out = tokio::task::spawn_blocking(move || sub.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "still-here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_b_births_and_data_become_entity_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, &[]);
    let policy = json!({
        "publish": ["spBv1.0/plant-1/+/edge-7", "spBv1.0/plant-1/+/edge-7/#"],
        "uids": ["spb/plant-1/edge-7*"]
    });
    let token = register(&node, json!({"id": "edge-7", "policy": policy})).await;
    paho(
        &node,
        "sparkplug",
        &["--device", "edge-7", "--token", &token],
    )
    .await;
    let e = entity(&node, "spb/plant-1/edge-7")
        .await
        .expect("edge node entity");
    let p = &e["properties"];
    assert_eq!(p["lat"], 59.33);
    assert_eq!(p["attributes"]["Node/Temperature"], 21.5);
    assert_eq!(p["attributes"]["Node/Online"], 1.0);
    assert_eq!(p["provenance"]["source"], "sparkplug");
    let ok = eventually(Duration::from_secs(5), async || {
        entity(&node, "spb/plant-1/edge-7/pump-3")
            .await
            .is_some_and(|e| e["properties"]["attributes"]["Pressure"] == 7.0)
    })
    .await;
    assert!(ok, "DDATA by alias updated the DBIRTH metric");
    let d = entity(&node, "spb/plant-1/edge-7/pump-3").await.unwrap();
    assert_eq!(d["properties"]["attributes"]["Model"], "P-300");
    assert_eq!(d["properties"]["lon"], 18.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_published_on_the_alerts_topic() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, &[]);
    let token = register(&node, json!({"id": "ops-screen"})).await;
    let sub = mosquitto(
        "mosquitto_sub",
        node.listener("mqtt").port(),
        &[
            "-u",
            "ops-screen",
            "-P",
            &token,
            "-t",
            "rampart/v1/alerts",
            "-C",
            "1",
            "-W",
            "15",
            "-q",
            "1",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // An SOS flag on a report raises the highest-priority alert at once.
    let body = json!([{"uid": "medic-3", "lat": 1.0, "lon": 2.0, "time": time(0), "attributes": {"sos": 1}}]);
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let out = tokio::task::spawn_blocking(move || sub.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(v["event"], "raised", "{v}");
    assert!(v["alert"].to_string().contains("medic-3"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_to_a_real_mosquitto_feeds_in_and_publishes_the_picture_out() {
    let remote = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "[mqtt]\nallow_anonymous = true\n\n[[mqtt.bridge]]\nname = \"hq\"\naddress = \"127.0.0.1:{}\"\nsubscribe = [{{ filter = \"field/#\", qos = 1 }}]\npublish = [\"rampart/v1/entities/#\"]\nreconnect_min_ms = 50\nreconnect_max_ms = 500\n",
            remote.port
        ),
    )
    .unwrap();
    let node = start(&dir, &["--config", cfg.to_str().unwrap()]);
    let local = node.listener("mqtt").port();
    // Remote → local: a message published at Mosquitto reaches a local subscriber.
    let sub = mosquitto(
        "mosquitto_sub",
        local,
        &["-t", "field/#", "-v", "-C", "1", "-W", "15"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    // The bridge connects and subscribes asynchronously: publish until the subscriber has it.
    let watcher = tokio::task::spawn_blocking(move || sub.wait_with_output().unwrap());
    let mut got = None;
    for _ in 0..100 {
        mosquitto(
            "mosquitto_pub",
            remote.port,
            &["-t", "field/temp", "-m", "21.5", "-q", "1"],
        )
        .status()
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if watcher.is_finished() {
            got = Some(watcher.await.unwrap());
            break;
        }
    }
    let out = got.expect("bridged message never arrived");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "field/temp 21.5"
    );
    // Local → remote: the live picture is published at Mosquitto.
    let rsub = mosquitto(
        "mosquitto_sub",
        remote.port,
        &["-t", "rampart/v1/entities/#", "-C", "1", "-W", "15"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = json!([{"uid": "convoy-1", "lat": 5.0, "lon": 6.0, "time": time(0)}]);
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let out = tokio::task::spawn_blocking(move || rsub.wait_with_output().unwrap())
        .await
        .unwrap();
    let e: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(e["id"], "convoy-1");
}

fn pki(data: &std::path::Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("pki")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rampart pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_client_certificates_identifies_devices_and_revocation_closes_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, "[security]\nrevocation_poll_secs = 1\n").unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &[
            "--listen",
            "mqtts=127.0.0.1:0",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let data = node.data.clone();
    pki(&data, &["issue", "device", "truck-9"]);
    let issued = data.join("pki/issued/truck-9");
    let ca = data.join("pki/ca.crt");
    // The device is bound to its certificate's name; it has no token.
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/devices"))
        .json(&json!({"id": "truck-9", "cert_subject": "truck-9", "token": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let port = node.listener("mqtts").port().to_string();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mqtt/mqtt_clients.py");
    // Without a client certificate the handshake is refused (mutual TLS is the default).
    let out = Command::new(python())
        .arg(&script)
        .args(["mtls", "--port", &port, "--device", "truck-9", "--ca"])
        .arg(&ca)
        .args(["--payload", &report("truck-9", 1.0, 2.0)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"connected\": false"), "{text}");
    // With it, the device reports, and is cut when its certificate is revoked.
    let child = Command::new(python())
        .arg(&script)
        .args(["mtls", "--port", &port, "--device", "truck-9", "--ca"])
        .arg(&ca)
        .arg("--cert")
        .arg(issued.join("truck-9.crt"))
        .arg("--key")
        .arg(issued.join("truck-9.key"))
        .args(["--payload", &report("truck-9", 3.0, 4.0), "--wait", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ok = eventually(Duration::from_secs(10), async || {
        entity(&node, "truck-9").await.is_some()
    })
    .await;
    assert!(ok, "report over mqtts stored");
    let e = entity(&node, "truck-9").await.unwrap();
    assert_eq!(e["properties"]["provenance"]["identity"], "truck-9");
    pki(&data, &["revoke", "truck-9"]);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let last: Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(last["disconnected"], true, "{text}");
    assert!(last["after_s"].as_f64().unwrap() < 10.0, "{text}");
}
