//! End-to-end tests of the WebSocket live stream against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Node, time};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("stream ended")
            .expect("websocket error");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Reads messages until one of type `kind` arrives.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

async fn post(node: &Node, body: Value) {
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn ids(msg: &Value) -> Vec<String> {
    let mut v: Vec<String> = msg["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_then_deltas_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    post(
        &node,
        json!([
            {"uid": "in-box", "type": "a-f-G", "lat": 10.5, "lon": 20.5, "time": time(-1000)},
            {"uid": "outside", "type": "a-f-G", "lat": -40, "lon": -70, "time": time(-1000)},
        ]),
    )
    .await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/v1/stream", node.addr))
        .await
        .unwrap();
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(ids(&snap), ["in-box", "outside"]);
    assert_eq!(snap["truncated"], false);

    // Narrow the filter: a new snapshot with only what matches.
    ws.send(Message::Text(
        json!({"type": "subscribe", "bbox": [20, 10, 21, 11], "type_prefix": "a-f"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let snap = next_of(&mut ws, "snapshot").await;
    assert_eq!(ids(&snap), ["in-box"]);

    // Updates outside the filter are not sent; inside they are.
    post(
        &node,
        json!([{"uid": "outside", "lat": -40.1, "lon": -70, "time": time(0)}]),
    )
    .await;
    post(
        &node,
        json!([{"uid": "in-box", "lat": 10.6, "lon": 20.6, "time": time(0)}]),
    )
    .await;
    let upd = next_of(&mut ws, "update").await;
    assert_eq!(ids(&upd), ["in-box"]);
    assert_eq!(upd["features"][0]["properties"]["lat"], 10.6);

    // Leaving the filter area is a removal for this subscriber.
    post(
        &node,
        json!([{"uid": "in-box", "lat": 50, "lon": 50, "time": time(1000)}]),
    )
    .await;
    let rem = next_of(&mut ws, "removed").await;
    assert_eq!(rem["uids"], json!(["in-box"]));

    // A bad subscription message gets an error and the stream stays open.
    ws.send(Message::Text("{\"type\":\"dance\"}".into()))
        .await
        .unwrap();
    let err = next_of(&mut ws, "error").await;
    assert!(err["error"].as_str().unwrap().contains("subscribe"));
    post(&node, json!([{"uid": "new-in-box", "type": "a-f-G-U", "lat": 10.1, "lon": 20.1, "time": time(0)}])).await;
    let upd = next_of(&mut ws, "update").await;
    assert_eq!(ids(&upd), ["new-in-box"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_and_removed_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--stale-grace-secs", "1"]);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/v1/stream", node.addr))
        .await
        .unwrap();
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["features"], json!([]));
    post(
        &node,
        json!([{"uid": "fading", "lat": 1, "lon": 1, "time": time(-1000), "stale": time(200)}]),
    )
    .await;
    let upd = next_of(&mut ws, "update").await;
    assert_eq!(ids(&upd), ["fading"]);
    let stale = next_of(&mut ws, "stale").await;
    assert_eq!(ids(&stale), ["fading"]);
    assert_eq!(stale["features"][0]["properties"]["is_stale"], true);
    let rem = next_of(&mut ws, "removed").await;
    assert_eq!(rem["uids"], json!(["fading"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_does_not_block_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    // Connect and never read: its socket buffers fill up.
    let (_stuck, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/v1/stream", node.addr))
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let attrs: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("k{i}"), json!("x".repeat(500))))
        .collect();
    // More batches than the fan-out buffer holds (256), and far more bytes than socket buffers.
    for round in 0..400 {
        let batch: Vec<Value> = (0..10)
            .map(|i| json!({"uid": format!("u{}", (round * 10 + i) % 500), "lat": 1, "lon": 1, "time": time(round), "attributes": attrs}))
            .collect();
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            c.post(node.url("/api/v1/reports")).json(&batch).send(),
        )
        .await
        .expect("ingest blocked by a stuck stream client")
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    // The stuck client is cut off after the send timeout, and that is counted.
    let cut = common::eventually(Duration::from_secs(40), async || {
        let m = c
            .get(node.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        m.contains("rampart_stream_slow_disconnects_total 1")
    })
    .await;
    assert!(cut, "the stuck stream client was never disconnected");
    // A reading client still gets a consistent picture.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/v1/stream", node.addr))
        .await
        .unwrap();
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["features"].as_array().unwrap().len(), 500);
}
