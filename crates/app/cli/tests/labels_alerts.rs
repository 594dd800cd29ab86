//! Security labels on every alert read path, against the real binary with `[auth] required`.
//!
//! One geofence fires for a `SECRET//REL NATO` entity and for an `UNCLASSIFIED` one. A
//! `SECRET`+`NATO` user sees both alerts on REST (list, one) and on the WebSocket stream
//! (events and the snapshot of active alerts on connect); a `RESTRICTED` user sees only the
//! `UNCLASSIFIED` one, never the hidden entity's uid, and gets 404 (as for an alert that does
//! not exist) when it reads, acknowledges or clears the hidden one. A webhook with a low
//! clearance receives only the low alert, one with `SECRET`+`NATO` receives both, and the
//! withheld deliveries are counted on `/metrics` (which names no entity).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Node, eventually, time};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The uid only cleared callers may ever learn.
const HIDDEN: &str = "hidden-secret-unit";
/// The uid everybody may see.
const OPEN: &str = "open-unclass-unit";

/// `rampart user add NAME --role ROLE --token --config CFG --clearance L [--groups G]`.
fn add_user(data: &Path, cfg: &Path, name: &str, role: &str, clearance: &[&str]) -> String {
    let cfg = cfg.to_str().unwrap();
    let extra: Vec<&str> = ["--config", cfg]
        .into_iter()
        .chain(clearance.iter().copied())
        .collect();
    common::add_user(data, name, role, &extra, None)
}

async fn get(c: &reqwest::Client, node: &Node, token: &str, path: &str) -> (u16, String) {
    let r = c
        .get(node.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(
    c: &reqwest::Client,
    node: &Node,
    token: &str,
    path: &str,
    body: Value,
) -> (u16, String) {
    let r = c
        .post(node.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn ws_connect(node: &Node, token: &str) -> Ws {
    let mut rq = format!("ws://{}/api/v1/stream", node.addr)
        .into_client_request()
        .unwrap();
    rq.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(rq).await.unwrap();
    ws
}

/// Reads text frames until one of type `kind` arrives (failing after 15 s). Every frame read
/// is returned too, so callers can check that nothing hidden went by.
async fn until(ws: &mut Ws, kind: &str) -> (Value, Vec<String>) {
    let mut seen = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} message on the stream; got {seen:?}"))
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            seen.push(t.to_string());
            if v["type"] == kind {
                return (v, seen);
            }
        }
    }
}

/// Bodies a webhook receiver got.
type Bodies = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on a free loopback port; returns its port and what it receives.
async fn receiver() -> (u16, Bodies) {
    let bodies: Bodies = Arc::default();
    let b = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let b = b.clone();
            async move {
                b.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, bodies)
}

/// `(event, entity)` pairs a webhook received.
fn deliveries(b: &Bodies) -> Vec<(String, String)> {
    b.lock()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap().to_string(),
                v["alert"]["entities"][0].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn alert_entities(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["entities"][0].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_alerts_rest_stream_ack_and_webhooks_follow_clearance() {
    let dir = tempfile::tempdir().unwrap();
    let (low_port, low_hook) = receiver().await;
    let (high_port, high_hook) = receiver().await;
    let cfg_path = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"
[auth]
required = true

[labels]
levels = ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]

[rules.webhook]
initial_backoff_ms = 100
max_backoff_ms = 400
timeout_ms = 2000

[[rules.webhooks]]
url = "http://127.0.0.1:{low_port}/hook"
clearance = {{ level = "RESTRICTED" }}

[[rules.webhooks]]
url = "http://127.0.0.1:{high_port}/hook"
clearance = {{ level = "SECRET", groups = ["NATO"] }}
"#
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let secret = add_user(
        &data,
        &cfg_path,
        "watch-secret",
        "admin",
        &["--clearance", "SECRET", "--groups", "NATO"],
    );
    let low = add_user(
        &data,
        &cfg_path,
        "watch-restricted",
        "operator",
        &["--clearance", "RESTRICTED"],
    );
    let cfg_arg = cfg_path.to_str().unwrap().to_string();
    let node = Node::start(&data, &["--config", &cfg_arg]);
    let c = reqwest::Client::new();

    let (s, b) = post(
        &c,
        &node,
        &secret,
        "/api/v1/geofences",
        json!({"id": "zone", "name": "Zone", "priority": "high",
               "shape": {"type": "circle", "center": [10.0, 50.0], "radius_m": 1000},
               "triggers": {"enter": true}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // Both watch officers are on the stream before anything fires.
    let mut ws_secret = ws_connect(&node, &secret).await;
    let mut ws_low = ws_connect(&node, &low).await;
    until(&mut ws_secret, "snapshot").await;
    until(&mut ws_low, "snapshot").await;

    // The SECRET//NATO entity enters first, the UNCLASSIFIED one after it: a receiver whose
    // first alert is the UNCLASSIFIED one was not sent the SECRET one.
    for (uid, label) in [
        (
            HIDDEN,
            json!({"classification": "SECRET", "releasability": ["NATO"]}),
        ),
        (OPEN, json!({"classification": "UNCLASSIFIED"})),
    ] {
        let (s, b) = post(
            &c,
            &node,
            &secret,
            "/api/v1/reports",
            json!([{"uid": uid, "type": "a-f-G-U-C", "lat": 50.001, "lon": 10.0,
                    "time": time(0), "label": label}]),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }

    // WebSocket, positive: the cleared officer gets both, SECRET first, with their labels.
    let (a1, _) = until(&mut ws_secret, "alert").await;
    let (a2, _) = until(&mut ws_secret, "alert").await;
    assert_eq!(a1["alert"]["entities"], json!([HIDDEN]));
    assert_eq!(a1["alert"]["label"]["classification"], "SECRET");
    assert_eq!(a2["alert"]["entities"], json!([OPEN]));
    let hidden_id = a1["alert"]["id"].as_u64().unwrap();
    let open_id = a2["alert"]["id"].as_u64().unwrap();
    // WebSocket, negative: the restricted officer's first alert is the open one, and nothing
    // on its stream ever named the hidden entity.
    let (b1, frames) = until(&mut ws_low, "alert").await;
    assert_eq!(b1["alert"]["id"].as_u64(), Some(open_id), "{b1}");
    assert!(
        frames.iter().all(|f| !f.contains(HIDDEN)),
        "hidden uid on the restricted stream: {frames:?}"
    );

    // REST list.
    let (s, body) = get(&c, &node, &secret, "/api/v1/alerts").await;
    assert_eq!(s, 200);
    let mut all = alert_entities(&serde_json::from_str(&body).unwrap());
    all.sort();
    assert_eq!(all, vec![HIDDEN.to_string(), OPEN.to_string()], "{body}");
    let (s, body) = get(&c, &node, &low, "/api/v1/alerts").await;
    assert_eq!(s, 200);
    assert_eq!(
        alert_entities(&serde_json::from_str(&body).unwrap()),
        vec![OPEN.to_string()]
    );
    assert!(!body.contains(HIDDEN), "{body}");
    // Filters do not open a side door: asking for the hidden entity by uid finds nothing.
    let (_, body) = get(&c, &node, &low, &format!("/api/v1/alerts?entity={HIDDEN}")).await;
    assert_eq!(body.trim(), "[]");

    // REST one: 404 for the hidden alert, the same answer as for an alert that never existed.
    let (s, body) = get(&c, &node, &secret, &format!("/api/v1/alerts/{hidden_id}")).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = get(&c, &node, &low, &format!("/api/v1/alerts/{hidden_id}")).await;
    assert_eq!(s, 404, "{body}");
    assert!(!body.contains(HIDDEN), "{body}");
    let (s, _) = get(&c, &node, &low, &format!("/api/v1/alerts/{open_id}")).await;
    assert_eq!(s, 200);
    let (s, nothing) = get(&c, &node, &low, "/api/v1/alerts/999999").await;
    assert_eq!(s, 404);
    assert_eq!(
        body.replace(&hidden_id.to_string(), "N"),
        nothing.replace("999999", "N"),
        "a hidden alert answers like a missing one"
    );

    // Ack and clear of the hidden alert: 404, and it stays raised.
    let (s, body) = post(
        &c,
        &node,
        &low,
        &format!("/api/v1/alerts/{hidden_id}/ack"),
        json!({"by": "restricted"}),
    )
    .await;
    assert_eq!(s, 404, "{body}");
    let (s, body) = post(
        &c,
        &node,
        &low,
        &format!("/api/v1/alerts/{hidden_id}/clear"),
        json!({}),
    )
    .await;
    assert_eq!(s, 404, "{body}");
    let (_, body) = get(&c, &node, &secret, &format!("/api/v1/alerts/{hidden_id}")).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "raised", "{v}");
    // The restricted officer may acknowledge the alert it sees.
    let (s, body) = post(
        &c,
        &node,
        &low,
        &format!("/api/v1/alerts/{open_id}/ack"),
        json!({"by": "restricted"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    // Lifecycle events follow the label too: the SECRET officer acknowledges the hidden alert
    // and then clears the open one; the restricted stream's next alert is the clear.
    let (s, body) = post(
        &c,
        &node,
        &secret,
        &format!("/api/v1/alerts/{hidden_id}/ack"),
        json!({"by": "secret"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = post(
        &c,
        &node,
        &secret,
        &format!("/api/v1/alerts/{open_id}/clear"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (b2, frames) = until(&mut ws_low, "alert").await;
    assert_eq!(
        (b2["event"].as_str(), b2["alert"]["id"].as_u64()),
        (Some("acknowledged"), Some(open_id)),
        "{b2}"
    );
    let (b3, more) = until(&mut ws_low, "alert").await;
    assert_eq!(
        (b3["event"].as_str(), b3["alert"]["id"].as_u64()),
        (Some("cleared"), Some(open_id)),
        "{b3}"
    );
    assert!(
        frames
            .iter()
            .chain(more.iter())
            .all(|f| !f.contains(HIDDEN)),
        "hidden uid on the restricted stream"
    );
    // The cleared officer saw the hidden alert's acknowledgement.
    let mut events = Vec::new();
    for _ in 0..3 {
        let (a, _) = until(&mut ws_secret, "alert").await;
        events.push((
            a["event"].as_str().unwrap().to_string(),
            a["alert"]["id"].as_u64().unwrap(),
        ));
    }
    assert!(
        events.contains(&("acknowledged".to_string(), hidden_id)),
        "{events:?}"
    );

    // The active-alert snapshot a new stream gets on connect.
    let mut fresh_low = ws_connect(&node, &low).await;
    let mut fresh_secret = ws_connect(&node, &secret).await;
    // The hidden alert is still active, the open one is cleared: the cleared officer's
    // snapshot lists it, the restricted officer's has nothing, so it gets no `alerts` message.
    let (snap, _) = until(&mut fresh_secret, "alerts").await;
    assert_eq!(alert_entities(&snap["alerts"]), vec![HIDDEN.to_string()]);
    let (_, frames) = until(&mut fresh_low, "snapshot").await;
    let next = tokio::time::timeout(Duration::from_millis(500), fresh_low.next()).await;
    let mut texts: Vec<String> = frames;
    if let Ok(Some(Ok(Message::Text(t)))) = next {
        texts.push(t.to_string());
    }
    assert!(
        texts
            .iter()
            .all(|f| !f.contains(HIDDEN) && !f.contains("\"alerts\"")),
        "{texts:?}"
    );

    // Webhooks: the high one gets everything, the low one only the open alert's events.
    let want_high = [
        ("raised".to_string(), HIDDEN.to_string()),
        ("raised".to_string(), OPEN.to_string()),
        ("acknowledged".to_string(), OPEN.to_string()),
        ("acknowledged".to_string(), HIDDEN.to_string()),
        ("cleared".to_string(), OPEN.to_string()),
    ];
    assert!(
        eventually(Duration::from_secs(20), async || {
            let got = deliveries(&high_hook);
            want_high.iter().all(|w| got.contains(w))
        })
        .await,
        "high webhook got {:?}",
        deliveries(&high_hook)
    );
    let want_low = vec![
        ("raised".to_string(), OPEN.to_string()),
        ("acknowledged".to_string(), OPEN.to_string()),
        ("cleared".to_string(), OPEN.to_string()),
    ];
    assert!(
        eventually(Duration::from_secs(20), async || {
            let mut got = deliveries(&low_hook);
            got.sort();
            let mut w = want_low.clone();
            w.sort();
            got == w
        })
        .await,
        "low webhook got {:?}",
        deliveries(&low_hook)
    );

    // Metrics: withheld deliveries counted; no entity named.
    let (s, metrics) = get(&c, &node, &low, "/metrics").await;
    assert_eq!(s, 200);
    let withheld: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rampart_webhook_withheld_total "))
        .unwrap_or_else(|| panic!("no withheld counter in {metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        withheld, 2.0,
        "the hidden alert's raise and acknowledgement"
    );
    assert!(!metrics.contains(HIDDEN) && !metrics.contains(OPEN));
}
