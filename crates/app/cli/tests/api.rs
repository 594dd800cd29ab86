//! End-to-end tests of the HTTP API against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Node, time};
use serde_json::{Value, json};

async fn post(c: &reqwest::Client, node: &Node, body: Value) -> (u16, Value) {
    let r = c
        .post(node.url("/api/v1/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get(c: &reqwest::Client, node: &Node, path: &str) -> (u16, Value) {
    let r = c.get(node.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn uids(fc: &Value) -> Vec<String> {
    let mut v: Vec<String> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_entities_queries_and_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let c = reqwest::Client::new();

    let t0 = time(-60_000);
    let t1 = time(-30_000);
    let (status, receipt) = post(
        &c,
        &node,
        json!([
            {"uid": "alpha", "type": "a-f-G-U-C", "callsign": "ALPHA 1", "lat": 54.30, "lon": 10.10,
             "hae": 12.5, "ce": 5, "le": 7, "course": 90, "speed": 4.5, "how": "m-g", "time": t0,
             "attributes": {"battery": 87, "radio": "PRC-163"},
             "label": {"classification": "SECRET", "releasability": ["NATO"]}},
            {"uid": "bravo", "type": "a-h-A-M-F", "callsign": "BANDIT", "lat": 54.50, "lon": 10.50, "time": t0},
            {"uid": "charlie", "lat": -33.9, "lon": 151.2, "time": t0},
            {"uid": "alpha", "lat": 54.31, "lon": 10.11, "time": t1, "attributes": {"battery": 80}}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 4);
    assert_eq!(receipt["rejected"], json!([]));

    // One entity, with the later report folded and attributes merged.
    let (status, alpha) = get(&c, &node, "/api/v1/entities/alpha").await;
    assert_eq!(status, 200);
    assert_eq!(alpha["type"], "Feature");
    assert_eq!(alpha["id"], "alpha");
    let p = &alpha["properties"];
    assert_eq!(p["lat"], 54.31);
    assert_eq!(p["callsign"], "ALPHA 1");
    assert_eq!(p["type"], "a-f-G-U-C");
    assert_eq!(p["sidc"], "SFGPUC---------");
    assert_eq!(p["attributes"]["battery"], 80.0);
    assert_eq!(p["attributes"]["radio"], "PRC-163");
    assert_eq!(p["label"]["classification"], "SECRET");
    assert_eq!(p["provenance"]["source"], "http");
    assert_eq!(alpha["geometry"]["coordinates"][0], 10.11);

    // Defaults of a minimal report.
    let (_, charlie) = get(&c, &node, "/api/v1/entities/charlie").await;
    assert_eq!(charlie["properties"]["type"], "a-u-G");
    assert_eq!(charlie["properties"]["how"], "h-e");
    assert_eq!(
        charlie["properties"]["label"]["classification"],
        "UNCLASSIFIED"
    );
    assert_eq!(charlie["properties"]["hae"], Value::Null);

    // A late report is stored but never regresses the live state.
    let (status, receipt) = post(
        &c,
        &node,
        json!([{"uid": "alpha", "lat": 1.0, "lon": 1.0, "time": time(-120_000)}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(receipt["late"], 1);
    let (_, alpha) = get(&c, &node, "/api/v1/entities/alpha").await;
    assert_eq!(alpha["properties"]["lat"], 54.31);

    // Queries.
    let (_, all) = get(&c, &node, "/api/v1/entities").await;
    assert_eq!(all["type"], "FeatureCollection");
    assert_eq!(uids(&all), ["alpha", "bravo", "charlie"]);
    let (_, bbox) = get(&c, &node, "/api/v1/entities?bbox=10,54,10.2,54.4").await;
    assert_eq!(uids(&bbox), ["alpha"]);
    let (_, near) = get(&c, &node, "/api/v1/entities?near=54.5,10.5,1000").await;
    assert_eq!(uids(&near), ["bravo"]);
    let (_, nearest) = get(&c, &node, "/api/v1/entities?nearest=54.3,10.1,2").await;
    let ids: Vec<&str> = nearest["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "bravo"]);
    let (_, friendly) = get(&c, &node, "/api/v1/entities?type=a-f").await;
    assert_eq!(uids(&friendly), ["alpha"]);
    let (_, hostile_air) = get(&c, &node, "/api/v1/entities?type=a-h-A").await;
    assert_eq!(uids(&hostile_air), ["bravo"]);
    let (_, text) = get(&c, &node, "/api/v1/entities?q=bandit").await;
    assert_eq!(uids(&text), ["bravo"]);
    let (_, fresh) = get(&c, &node, "/api/v1/entities?stale=false").await;
    assert_eq!(uids(&fresh).len(), 3);
    let (_, stale) = get(&c, &node, "/api/v1/entities?stale=true").await;
    assert_eq!(uids(&stale).len(), 0);
    let (_, limited) = get(&c, &node, "/api/v1/entities?limit=2").await;
    assert_eq!(limited["features"].as_array().unwrap().len(), 2);

    // Bad parameters name themselves.
    for (path, param) in [
        ("/api/v1/entities?bbox=1,2,3", "bbox"),
        ("/api/v1/entities?near=54,10,abc", "near"),
        ("/api/v1/entities?stale=maybe", "stale"),
        ("/api/v1/entities?limit=-4", "limit"),
        ("/api/v1/entities/alpha/track?from=yesterday", "from"),
    ] {
        let (status, err) = get(&c, &node, path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(err["parameter"], param, "{path}: {err}");
    }
    let (status, err) = get(&c, &node, "/api/v1/entities?colour=red").await;
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("colour"), "{err}");

    // Unknown entity.
    let (status, err) = get(&c, &node, "/api/v1/entities/nobody").await;
    assert_eq!(status, 404);
    assert!(err["error"].as_str().unwrap().contains("nobody"));

    // Track: all three alpha reports, oldest first, and a time window.
    let (status, track) = get(&c, &node, "/api/v1/entities/alpha/track").await;
    assert_eq!(status, 200);
    let times: Vec<&str> = track["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["time"].as_str().unwrap())
        .collect();
    assert_eq!(times.len(), 3, "{track}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let from = urlencode(&time(-90_000));
    let (_, window) = get(
        &c,
        &node,
        &format!("/api/v1/entities/alpha/track?from={from}"),
    )
    .await;
    assert_eq!(window["features"].as_array().unwrap().len(), 2);

    // Operations endpoints.
    let (status, health) = get(&c, &node, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    let metrics = c
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rampart_reports_accepted_total{source=\"http\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("rampart_live_entities 3"), "{metrics}");
    assert!(metrics.contains("rampart_ingest_commit_seconds_bucket"));
    assert!(metrics.contains("rampart_store_bytes"));
    assert!(metrics.contains("rampart_connections{kind=\"http\"}"));
    let (status, doc) = get(&c, &node, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/reports"]["post"].is_object());
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_reports_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let c = reqwest::Client::new();
    let t = time(-1000);
    let batch = json!([
        {"uid": "d1", "lat": 1, "lon": 1, "time": t, "id": "key-1"},
        {"uid": "d1", "lat": 1, "lon": 1, "time": t, "id": {"source": "gw-7", "seq": 41}},
    ]);
    let (_, first) = post(&c, &node, batch.clone()).await;
    assert_eq!(first["accepted"], 2);
    let (status, second) = post(&c, &node, batch).await;
    assert_eq!(status, 200);
    assert_eq!(second["accepted"], 0);
    assert_eq!(second["duplicates"], 2);
    let (_, track) = get(&c, &node, "/api/v1/entities/d1/track").await;
    assert_eq!(track["features"].as_array().unwrap().len(), 2);

    // The idempotency memory survives a restart (rebuilt from history).
    node.kill9();
    let node = Node::start(dir.path(), &[]);
    let (_, third) = post(
        &c,
        &node,
        json!([{"uid": "d1", "lat": 1, "lon": 1, "time": t, "id": "key-1"}]),
    )
    .await;
    assert_eq!(third["duplicates"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn entities_go_stale_and_are_dropped_but_stay_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--stale-grace-secs", "1"]);
    let c = reqwest::Client::new();
    let (status, _) = post(
        &c,
        &node,
        json!([{"uid": "ghost", "lat": 5, "lon": 5, "time": time(-2000), "stale": time(300)}]),
    )
    .await;
    assert_eq!(status, 200);
    let stale = common::eventually(std::time::Duration::from_secs(10), async || {
        get(&c, &node, "/api/v1/entities/ghost").await.1["properties"]["is_stale"] == true
    })
    .await;
    assert!(stale, "entity never marked stale");
    let gone = common::eventually(std::time::Duration::from_secs(10), async || {
        get(&c, &node, "/api/v1/entities/ghost").await.0 == 404
    })
    .await;
    assert!(gone, "entity never dropped after the grace period");
    let (_, track) = get(&c, &node, "/api/v1/entities/ghost/track").await;
    assert_eq!(track["features"].as_array().unwrap().len(), 1);
}
