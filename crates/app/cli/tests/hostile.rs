//! Malformed and hostile input: every bad body gets a clear 4xx naming what is wrong, is
//! counted in the metrics, and the server keeps serving and keeps the good data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Node, time};
use serde_json::{Value, json};

async fn post_raw(c: &reqwest::Client, node: &Node, body: Vec<u8>) -> (u16, Value) {
    let r = c
        .post(node.url("/api/v1/reports"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_bodies_get_clear_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--max-body-bytes", "1048576"]);
    let c = reqwest::Client::new();
    let good = json!([{"uid": "keeper", "lat": 1, "lon": 2, "time": time(0)}]);
    let (s, _) = post_raw(&c, &node, serde_json::to_vec(&good).unwrap()).await;
    assert_eq!(s, 200);

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty body", vec![], 400, "not valid JSON"),
        ("not json", b"hello".to_vec(), 400, "not valid JSON"),
        (
            "truncated",
            br#"[{"uid":"a","lat":1"#.to_vec(),
            400,
            "not valid JSON",
        ),
        (
            "object body",
            br#"{"uid":"a"}"#.to_vec(),
            400,
            "must be a JSON array",
        ),
        (
            "string body",
            br#""reports""#.to_vec(),
            400,
            "must be a JSON array",
        ),
        (
            "invalid utf-8",
            vec![b'[', b'"', 0xff, 0xfe, b'"', b']'],
            400,
            "not valid JSON",
        ),
        (
            "binary garbage",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            400,
            "not valid JSON",
        ),
    ];
    for (name, body, want, text) in cases {
        let (status, v) = post_raw(&c, &node, body).await;
        assert_eq!(status, want, "{name}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(text),
            "{name}: error {msg:?} should mention {text:?}"
        );
        assert!(node.alive(), "server died on {name}");
    }

    // An oversized body is refused from its Content-Length, before it is read.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&node.addr).await.unwrap();
        let head = format!(
            "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            2 * 1024 * 1024
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[b' '; 4096]).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("larger than the limit"), "{answer}");
    }

    // Deep nesting is refused without exhausting the stack.
    let (status, v) = post_raw(&c, &node, deep.into_bytes()).await;
    assert!(status == 400 || status == 422, "deep nesting: {status} {v}");
    assert!(node.alive());

    // Item-level errors: the good items are kept, each bad one is named by index and field.
    let body = json!([
        {"uid": "ok-1", "lat": 1, "lon": 2, "time": time(0)},
        {"uid": "", "lat": 1, "lon": 2, "time": time(0)},
        {"uid": "x", "lat": 1e308, "lon": 2, "time": time(0)},
        {"uid": "x", "lat": 1, "lon": 2, "time": "2026-13-45T99:00:00Z"},
        {"uid": "x", "lat": 1, "lon": 2, "time": time(0), "type": "a f G"},
        {"uid": "x", "lat": 1, "lon": 2, "time": time(0), "attributes": {"n": [1, 2]}},
        {"uid": "x", "lat": 1, "lon": 2, "time": time(0), "label": {"classification": ""}},
        {"uid": "x".repeat(300), "lat": 1, "lon": 2, "time": time(0)},
        {"uid": "x", "lat": 1, "lon": 2, "time": time(0), "course": 400},
        {"uid": "x", "lat": 1, "lon": 2, "time": time(0), "speed": -1},
        {"uid": "x", "lat": 1, "lon": 2, "time": time(0), "stale": time(-100_000)},
        [1, 2, 3],
        null,
        {"uid": "ok-2", "lat": -1, "lon": -2, "time": time(0)},
    ]);
    let (status, receipt) = post_raw(&c, &node, serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 2);
    let rejected = receipt["rejected"].as_array().unwrap();
    let got: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "uid"),
            (2, "lat"),
            (3, "time"),
            (4, "type"),
            (5, "attributes.n"),
            (6, "label.classification"),
            (7, "uid"),
            (8, "course"),
            (9, "speed"),
            (10, "stale"),
            (11, ""),
            (12, "")
        ]
    );
    for r in rejected {
        assert!(!r["reason"].as_str().unwrap().is_empty());
    }

    // All bad: 422 with every item listed.
    let all_bad = format!(
        r#"[{{"uid":"a"}}, 7, {{"uid":"x","lat":"north","lon":2,"time":"{}"}}]"#,
        time(0)
    );
    let (status, receipt) = post_raw(&c, &node, all_bad.into_bytes()).await;
    assert_eq!(status, 422);
    assert_eq!(receipt["rejected"].as_array().unwrap().len(), 3);
    assert_eq!(receipt["rejected"][2]["field"], "lat");
    assert!(
        receipt["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("missing field")
    );

    // Too many items in one body.
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({"uid": format!("m{i}"), "lat": 0, "lon": 0, "time": time(0)}))
        .collect();
    let (status, v) = post_raw(&c, &node, serde_json::to_vec(&many).unwrap()).await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("10000"), "{v}");

    // Hostile WebSocket and query input does not hurt either.
    let r = c
        .get(node.url("/api/v1/stream?bbox=1,2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(node.url("/api/v1/entities?bbox=NaN,NaN,NaN,NaN"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(node.url(&format!("/api/v1/entities/{}", "%00".repeat(1000))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Still serving, the good data is intact, and the rejections are counted.
    assert!(node.alive());
    let keeper: Value = c
        .get(node.url("/api/v1/entities/keeper"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keeper["properties"]["lon"], 2.0);
    for uid in ["ok-1", "ok-2"] {
        assert_eq!(
            c.get(node.url(&format!("/api/v1/entities/{uid}")))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let metrics = c
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in [
        "malformed_json",
        "not_an_array",
        "too_many_items",
        "body_too_large",
        "invalid_value",
        "missing_field",
        "invalid_type",
        "not_an_object",
    ] {
        assert!(
            metrics.contains(&format!(
                "rampart_reports_rejected_total{{source=\"http\",reason=\"{reason}\"}}"
            )),
            "metric for {reason} missing:\n{metrics}"
        );
    }
}

/// One address may hold at most `[http] max_connections_per_peer` connections: the next one is
/// closed at once and counted, and a slot freed by a closed connection is usable again. The
/// NMEA TCP feed applies its own cap the same way.
#[tokio::test(flavor = "multi_thread")]
async fn connections_per_peer_are_capped_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        "[http]\nmax_connections_per_peer = 2\n[feeds.limits]\nmax_connections_per_peer = 1\n\
         [mqtt]\nmax_connections_per_peer = 1\n[cot]\nmax_connections_per_peer = 1\n",
    )
    .unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "nmea-tcp=127.0.0.1:0",
            "--listen",
            "mqtt=127.0.0.1:0",
            "--listen",
            "cot-tcp=127.0.0.1:0",
        ],
    );
    let addr = node.addr.clone();
    // Two idle connections hold both slots (a request on each proves they were served).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            std::str::from_utf8(&buf[..n])
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        held.push(s);
    }
    // The third is closed without an answer.
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), third.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection from one address was served");
    // Free one slot: a new connection is served again (reqwest opens a fresh one).
    drop(held.pop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let metrics = c
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l.contains("source=\"http\"")
            && l.contains("reason=\"connections_per_peer\"")
            && !l.starts_with('#')),
        "refusal not counted"
    );

    // The NMEA feed, MQTT (before its CONNECT) and TAK: one connection per address here, so
    // a second one is closed at once, and the refusal is counted.
    let metrics_line = |m: &str, source: &str| {
        m.lines().any(|l| {
            !l.starts_with('#') && l.contains("connections_per_peer") && l.contains(source)
        })
    };
    for (kind, counted_as) in [
        ("nmea-tcp", "source=\"nmea-tcp\""),
        ("mqtt", "mqtt"),
        ("cot-tcp", "rampart_cot_disconnects_total"),
    ] {
        let addr = node.listener(kind);
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        if kind == "cot-tcp" {
            // A TAK client is offered the protocol at once: proof the first one is served.
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), first.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the first TAK client got nothing");
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), second.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(
            n, 0,
            "{kind}: a second connection from one address was kept"
        );
        let metrics = c
            .get(node.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics_line(&metrics, counted_as),
            "{kind}: refusal not counted"
        );
        drop(first);
    }
}

/// A connection that sends nothing (a slowloris that never finishes its request line, or a
/// forgotten keep-alive) is closed after `[http] idle_timeout_secs`; a busy one is not.
#[tokio::test(flavor = "multi_thread")]
async fn idle_http_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, "[http]\nidle_timeout_secs = 2\n").unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let mut idle = tokio::net::TcpStream::connect(&node.addr).await.unwrap();
    idle.write_all(b"GET /heal").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(20), idle.read(&mut buf))
        .await
        .expect("the idle connection was not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    // A connection that keeps making requests stays open past the timeout.
    let mut busy = tokio::net::TcpStream::connect(&node.addr).await.unwrap();
    for _ in 0..8 {
        busy.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let n = busy.read(&mut buf).await.unwrap();
        assert!(n > 0, "the busy connection was closed");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
