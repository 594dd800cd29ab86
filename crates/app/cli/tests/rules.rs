//! End-to-end tests of rules and alerts against the real binary: rules created through the
//! API (and refused when bad), alerts on `/api/v1/alerts` and on the WebSocket stream,
//! acknowledgement, a restart (SIGKILL) in the middle of a dwell, and webhooks to a real HTTP
//! receiver that is down at first and comes up, plus a dead letter for one that never does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Node, eventually, time};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (u16, Value) {
    let r = c.request(method, url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(c: &reqwest::Client, node: &Node, path: &str, body: Value) -> (u16, Value) {
    send(c, reqwest::Method::POST, node.url(path), body).await
}

async fn get(c: &reqwest::Client, node: &Node, path: &str) -> Value {
    c.get(node.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn report(c: &reqwest::Client, node: &Node, uid: &str, lat: f64, lon: f64, attrs: Value) {
    let (s, r) = post(
        c,
        node,
        "/api/v1/reports",
        json!([{"uid": uid, "type": "a-f-G-U-C", "lat": lat, "lon": lon, "time": time(0), "attributes": attrs}]),
    )
    .await;
    assert_eq!(s, 200, "{r}");
}

/// The next alert message on the stream (skipping entity messages).
async fn next_alert(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("no alert on the stream")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "alert" {
                return v;
            }
        }
    }
}

/// A free loopback port with nothing listening on it (yet).
fn free_port() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A webhook receiver on `port`, recording every body it gets.
async fn receiver(port: u16) -> Arc<parking_lot_free::Bodies> {
    let bodies = Arc::new(parking_lot_free::Bodies::default());
    let b = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let b = b.clone();
            async move {
                b.0.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    bodies
}

mod parking_lot_free {
    /// Bodies a receiver got.
    #[derive(Default)]
    pub struct Bodies(pub std::sync::Mutex<Vec<serde_json::Value>>);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_alerts_stream_ack_restart_dwell_and_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    // Reserved until the node has its own port, so it cannot pick one of them.
    let late = free_port();
    let dead = free_port();
    let late_port = late.local_addr().unwrap().port();
    let dead_port = dead.local_addr().unwrap().port();
    let cfg_path = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"
[engine]
sweep_interval_ms = 100

[rules]
state_save_interval_ms = 100

[rules.webhook]
initial_backoff_ms = 100
max_backoff_ms = 400
max_attempts = 12
timeout_ms = 1000

[[rules.webhooks]]
url = "http://127.0.0.1:{late_port}/hook"

[[rules.webhooks]]
url = "http://127.0.0.1:{dead_port}/hook"
min_priority = "high"
"#
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let cfg_arg = cfg_path.to_str().unwrap().to_string();
    let node = Node::start(&data, &["--config", &cfg_arg]);
    drop((late, dead));
    let c = reqwest::Client::new();

    // Bad rules are refused with what is wrong.
    let (s, e) = post(
        &c,
        &node,
        "/api/v1/geofences",
        json!({"shape": {"type": "polygon", "exterior": [[0,0],[1,1],[1,0],[0,1],[0,0]]}, "triggers": {"enter": true}}),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["field"], "shape.exterior");
    assert!(
        e["reason"].as_str().unwrap().contains("self-intersecting"),
        "{e}"
    );
    let (s, e) = post(
        &c,
        &node,
        "/api/v1/geofences",
        json!({"shape": {"type": "circle", "center": [10, 50], "radius_m": 0}, "triggers": {"enter": true}}),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (422, Some("shape.radius_m")),
        "{e}"
    );
    let (s, e) = post(
        &c,
        &node,
        "/api/v1/rules",
        json!({"rule": {"type": "threshold", "attribute": "batery", "raise": {"below": 15}}}),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (422, Some("rule.attribute")),
        "{e}"
    );

    // A restricted area (enter, high priority) and a dwell zone, both for friendlies.
    let (s, fence) = post(
        &c,
        &node,
        "/api/v1/geofences",
        json!({"id": "restricted", "name": "Restricted", "priority": "high",
               "shape": {"type": "circle", "center": [10.0, 50.0], "radius_m": 1000},
               "filter": {"types": ["a-f"]}, "triggers": {"enter": true}}),
    )
    .await;
    assert_eq!(s, 201, "{fence}");
    let (s, _) = post(
        &c,
        &node,
        "/api/v1/geofences",
        json!({"id": "loiter", "shape": {"type": "polygon", "exterior": [[20,20],[20.1,20],[20.1,20.1],[20,20.1]]},
               "triggers": {"dwell_secs": 6}}),
    )
    .await;
    assert_eq!(s, 201);
    let (s, rule) = post(
        &c,
        &node,
        "/api/v1/rules",
        json!({"id": "battery", "rule": {"type": "threshold", "attribute": "battery", "raise": {"below": 15}, "clear": {"above": 18}}}),
    )
    .await;
    assert_eq!(s, 201, "{rule}");
    assert_eq!(
        get(&c, &node, "/api/v1/geofences")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/v1/stream", node.addr))
        .await
        .unwrap();

    // The stream sends the active alerts, then the picture: after that it is subscribed.
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "alerts" {
                assert_eq!(v["alerts"], json!([]));
            }
            if v["type"] == "snapshot" {
                break;
            }
        }
    }

    // Enter: on the stream and in the list.
    report(&c, &node, "alpha", 50.001, 10.0, json!({"battery": 80})).await;
    let a = next_alert(&mut ws).await;
    assert_eq!(a["event"], "raised");
    assert_eq!(a["alert"]["kind"], "enter");
    assert_eq!(a["alert"]["entities"], json!(["alpha"]));
    let id = a["alert"]["id"].as_u64().unwrap();
    let list = get(&c, &node, "/api/v1/alerts?kind=enter&state=raised").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        get(&c, &node, "/api/v1/alerts?priority=critical").await,
        json!([])
    );

    // The same entity inside again: suppressed. Battery hysteresis: 14 raises, 17 keeps, 19 clears.
    report(&c, &node, "alpha", 50.002, 10.0, json!({"battery": 14})).await;
    let a = next_alert(&mut ws).await;
    assert_eq!(
        (a["event"].as_str(), a["alert"]["kind"].as_str()),
        (Some("raised"), Some("threshold"))
    );
    report(&c, &node, "alpha", 50.002, 10.0, json!({"battery": 17})).await;
    report(&c, &node, "alpha", 50.002, 10.0, json!({"battery": 19})).await;
    let a = next_alert(&mut ws).await;
    assert_eq!(
        (a["event"].as_str(), a["alert"]["kind"].as_str()),
        (Some("cleared"), Some("threshold"))
    );

    // Acknowledge.
    let (s, acked) = post(
        &c,
        &node,
        &format!("/api/v1/alerts/{id}/ack"),
        json!({"by": "watch officer"}),
    )
    .await;
    assert_eq!(s, 200, "{acked}");
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acked_by"], "watch officer");
    let a = next_alert(&mut ws).await;
    assert_eq!(a["event"], "acknowledged");
    let (s, _) = post(&c, &node, "/api/v1/alerts/999999/ack", json!({"by": "x"})).await;
    assert_eq!(s, 404);

    // SOS flag: emergency priority, at once.
    report(&c, &node, "bravo", 40.0, 5.0, json!({"sos": 1})).await;
    let a = next_alert(&mut ws).await;
    assert_eq!(
        (a["alert"]["kind"].as_str(), a["alert"]["priority"].as_str()),
        (Some("sos"), Some("emergency"))
    );

    // The webhook receiver comes up late: the events reach it after retries.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let bodies = receiver(late_port).await;
    assert!(
        eventually(Duration::from_secs(15), async || {
            let b = bodies.0.lock().unwrap();
            b.iter()
                .any(|v| v["alert"]["kind"] == "enter" && v["event"] == "raised")
                && b.iter().any(|v| v["alert"]["kind"] == "sos")
        })
        .await,
        "the late webhook never received the alerts"
    );
    // The one that never comes up dead-letters the high-priority ones only.
    assert!(
        eventually(Duration::from_secs(20), async || {
            let d = get(&c, &node, "/api/v1/alerts/deadletters").await;
            let d = d.as_array().unwrap();
            d.iter().any(|x| x["event"]["alert"]["kind"] == "enter")
                && d.iter().any(|x| x["event"]["alert"]["kind"] == "sos")
        })
        .await,
        "no dead letters"
    );
    let d = get(&c, &node, "/api/v1/alerts/deadletters").await;
    assert!(
        d.as_array()
            .unwrap()
            .iter()
            .all(|x| x["url"].as_str().unwrap().contains(&dead_port.to_string())),
        "{d}"
    );
    assert!(
        d.as_array()
            .unwrap()
            .iter()
            .all(|x| x["event"]["alert"]["kind"] != "threshold"),
        "normal priority filtered: {d}"
    );

    // Dwell across a crash: enter the loiter zone, let the state be saved, SIGKILL, restart.
    let entered = rampart_model::Timestamp::now();
    report(&c, &node, "charlie", 20.05, 20.05, json!({})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(ws);
    node.kill9();
    eprintln!(
        "STATE {}",
        std::fs::read_to_string(data.join("rules/state.json")).unwrap_or_default()
    );
    let node = Node::start(&data, &["--config", &cfg_arg]);
    let restarted = rampart_model::Timestamp::now();
    // It reports again from inside: that must not restart its dwell clock.
    report(&c, &node, "charlie", 20.06, 20.06, json!({})).await;
    assert!(
        eventually(Duration::from_secs(15), async || {
            !get(&c, &node, "/api/v1/alerts?kind=dwell")
                .await
                .as_array()
                .unwrap()
                .is_empty()
        })
        .await,
        "no dwell alert after the restart"
    );
    let dwell = get(&c, &node, "/api/v1/alerts?kind=dwell").await;
    let raised =
        rampart_model::Timestamp::parse_rfc3339(dwell[0]["raised_at"].as_str().unwrap()).unwrap();
    assert!(raised.millis() >= entered.millis() + 6_000, "{dwell}");
    assert!(
        raised.millis() < restarted.millis() + 5_700,
        "dwell counted from the report after the restart (it would fire at restart + 6 s), not from the entry: {dwell}"
    );
    // Alerts and their acknowledgement survived; no duplicate enter alert.
    let enters = get(&c, &node, "/api/v1/alerts?kind=enter").await;
    assert_eq!(enters.as_array().unwrap().len(), 1, "{enters}");
    assert_eq!(enters[0]["acked_by"], "watch officer");
    report(&c, &node, "alpha", 50.003, 10.0, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&c, &node, "/api/v1/alerts?kind=enter")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Leaving clears it; deleting a rule works.
    report(&c, &node, "alpha", 51.0, 10.0, json!({})).await;
    assert!(
        eventually(Duration::from_secs(5), async || {
            get(&c, &node, "/api/v1/alerts?kind=enter").await[0]["state"] == "cleared"
        })
        .await
    );
    let r = c
        .delete(node.url("/api/v1/rules/battery"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(get(&c, &node, "/api/v1/rules").await, json!([]));
}

fn cot_event(uid: &str, cot_type: &str, lat: f64, lon: f64, detail: &str) -> String {
    let (t, stale) = (time(0), time(600_000));
    format!(
        r#"<event version="2.0" uid="{uid}" type="{cot_type}" how="h-e" time="{t}" start="{t}" stale="{stale}"><point lat="{lat}" lon="{lon}" hae="0" ce="9999999" le="9999999"/><detail>{detail}</detail></event>"#
    )
}

/// Reads the TAK stream until an event containing every one of `needles` arrives.
async fn read_until(
    stream: &mut tokio::net::TcpStream,
    buf: &mut String,
    needles: &[&str],
) -> String {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        while let Some(end) = buf.find("</event>") {
            let ev: String = buf.drain(..end + "</event>".len()).collect();
            if needles.iter().all(|n| ev.contains(n)) {
                return ev;
            }
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no TAK event with {needles:?}"))
            .unwrap();
        assert!(n > 0, "TAK connection closed");
        buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tak_drawings_become_geofences_and_alerts_reach_tak_clients() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--listen", "cot-tcp=127.0.0.1:0"]);
    let c = reqwest::Client::new();
    let mut tak = tokio::net::TcpStream::connect(node.listener("cot-tcp"))
        .await
        .unwrap();
    let mut buf = String::new();

    // A rectangle drawn on ATAK becomes a geofence.
    let rect = cot_event(
        "R1",
        "u-d-r",
        50.05,
        10.05,
        r#"<link point="50.0,10.0"/><link point="50.0,10.1"/><link point="50.1,10.1"/><link point="50.1,10.0"/><contact callsign="Objective"/>"#,
    );
    tak.write_all(rect.as_bytes()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            c.get(node.url("/api/v1/geofences/cot-R1"))
                .send()
                .await
                .unwrap()
                .status()
                == 200
        })
        .await,
        "the drawing did not become a geofence"
    );
    let g = get(&c, &node, "/api/v1/geofences/cot-R1").await;
    assert_eq!(g["name"], "Objective");
    assert_eq!(g["shape"]["type"], "polygon");

    // A unit entering it: the alert reaches the TAK client as CoT.
    report(&c, &node, "delta", 50.05, 10.05, json!({})).await;
    let ev = read_until(
        &mut tak,
        &mut buf,
        &["rampart-alert-", "b-a-g", "entered Objective"],
    )
    .await;
    assert!(ev.contains("[RAISED]"), "{ev}");

    // An ATAK 911 alert: emergency priority, for the sender; the cancel clears it.
    let link =
        r#"<link uid="ANDROID-viper" type="a-f-G-U-C" relation="p-p" parent_callsign="VIPER"/>"#;
    let alert = cot_event(
        "ANDROID-viper-9-1-1",
        "b-a-o-tbl",
        50.2,
        10.2,
        &format!(
            r#"{link}<contact callsign="VIPER-Alert"/><emergency type="911 Alert">VIPER</emergency>"#
        ),
    );
    tak.write_all(alert.as_bytes()).await.unwrap();
    let ev = read_until(
        &mut tak,
        &mut buf,
        &["rampart-alert-", "b-a-o-tbl", "EMERGENCY"],
    )
    .await;
    assert!(ev.contains("VIPER"), "{ev}");
    let em = get(&c, &node, "/api/v1/alerts?kind=emergency").await;
    assert_eq!(em[0]["entities"][0], "ANDROID-viper", "{em}");
    assert_eq!(em[0]["priority"], "emergency");
    let cancel = cot_event(
        "ANDROID-viper-9-1-1",
        "b-a-o-can",
        50.2,
        10.2,
        &format!(r#"{link}<emergency cancel="true">VIPER</emergency>"#),
    );
    tak.write_all(cancel.as_bytes()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            get(&c, &node, "/api/v1/alerts?kind=emergency").await[0]["state"] == "cleared"
        })
        .await,
        "the cancel did not clear the emergency"
    );

    // Deleting the drawing on ATAK deletes the geofence.
    let del = cot_event(
        "del-1",
        "t-x-d-d",
        0.0,
        0.0,
        r#"<link uid="R1" relation="none" type="none"/><__forcedelete/>"#,
    );
    tak.write_all(del.as_bytes()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            c.get(node.url("/api/v1/geofences/cot-R1"))
                .send()
                .await
                .unwrap()
                .status()
                == 404
        })
        .await,
        "the deletion did not remove the geofence"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_scenario_raises_geofence_count_and_threshold_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_cmd("demo", dir.path(), &["--entities", "300"]);
    let c = reqwest::Client::new();
    // The demo's area of operations is 60 km around 54.3 N, 10.1 E.
    let (s, e) = post(
        &c,
        &node,
        "/api/v1/geofences",
        json!({"id": "ao-core", "shape": {"type": "circle", "center": [10.1, 54.3], "radius_m": 30000},
               "filter": {"types": ["a-f-G"]}, "triggers": {"enter": true, "count_above": 3}}),
    )
    .await;
    assert_eq!(s, 201, "{e}");
    let (s, e) = post(
        &c,
        &node,
        "/api/v1/rules",
        json!([{"id": "fuel", "rule": {"type": "threshold", "attribute": "fuel", "raise": {"below": 101}, "clear": {"above": 102}, "min_duration_secs": 1}},
               {"id": "near", "rule": {"type": "proximity", "a": {"types": ["a-h"]}, "b": {"types": ["a-f"]}, "distance_m": 5000}}]),
    )
    .await;
    assert_eq!(s, 201, "{e}");
    for kind in ["enter", "count", "threshold"] {
        assert!(
            eventually(Duration::from_secs(30), async || {
                !get(&c, &node, &format!("/api/v1/alerts?kind={kind}"))
                    .await
                    .as_array()
                    .unwrap()
                    .is_empty()
            })
            .await,
            "the demo raised no {kind} alert"
        );
    }
    let count = get(&c, &node, "/api/v1/alerts?kind=count").await;
    assert_eq!(
        count.as_array().unwrap().len(),
        1,
        "one count alert while above: {count}"
    );
    // Every enter alert concerns a friendly ground unit inside the circle.
    let enters = get(&c, &node, "/api/v1/alerts?kind=enter&state=raised").await;
    for a in enters.as_array().unwrap() {
        let uid = a["entities"][0].as_str().unwrap();
        let e = get(&c, &node, &format!("/api/v1/entities/{uid}")).await;
        assert!(
            e["properties"]["type"]
                .as_str()
                .unwrap()
                .starts_with("a-f-G"),
            "{e}"
        );
    }
}
