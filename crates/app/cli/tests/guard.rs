//! End-to-end tests of spoofing and abuse detection (`[guard]`) against the real binary: a
//! ground unit at 400 km/h and a 50 km jump in a second are quarantined (the live picture
//! does not move, `/api/v1/quarantine` lists them, `spoofing` alerts are raised); six
//! entities in one area going silent at once raise one `jamming` alert; a flooding identity
//! is throttled and alerted while another source's reports still land.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Node, eventually, time};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[engine]
sweep_interval_ms = 100

[guard]
enabled = true

# Every HTTP report of this test comes from one identity (anonymous@127.0.0.1): the floor
# (20 reports per 200 ms window) leaves room for the first steps, not for the flood.
[guard.flood]
window_ms = 200
ewma_alpha = 0.5
min_rate_per_sec = 100.0
initial_rate_per_sec = 0.0
"#;

async fn post(c: &reqwest::Client, node: &Node, body: Value) -> (u16, Value) {
    let r = c
        .post(node.url("/api/v1/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, node: &Node, path: &str) -> (u16, Value) {
    let r = c.get(node.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn unit(uid: &str, lat: f64, lon: f64, t: String) -> Value {
    json!({"uid": uid, "type": "a-f-G-U-C", "lat": lat, "lon": lon, "time": t})
}

/// `lat` moved `metres` north.
fn north(lat: f64, metres: f64) -> f64 {
    lat + metres / 111_195.0
}

async fn alerts(c: &reqwest::Client, node: &Node, kind: &str) -> Vec<Value> {
    let (s, v) = get(c, node, &format!("/api/v1/alerts?kind={kind}")).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

async fn lat_of(c: &reqwest::Client, node: &Node, uid: &str) -> f64 {
    let (s, v) = get(c, node, &format!("/api/v1/entities/{uid}")).await;
    assert_eq!(s, 200, "{v}");
    v["geometry"]["coordinates"][1].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofing_jamming_and_floods_are_detected() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("rampart.toml");
    std::fs::write(&cfg_path, CONFIG).unwrap();
    let data = dir.path().join("data");
    let node = Node::start(
        &data,
        &[
            "--config",
            cfg_path.to_str().unwrap(),
            "--listen",
            "cot-tcp=127.0.0.1:0",
        ],
    );
    let c = reqwest::Client::new();

    // 1. A ground unit reported at 400 km/h (3.33 km in 30 s) is quarantined.
    let (s, r) = post(&c, &node, json!([unit("g1", 48.0, 2.0, time(-60_000))])).await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = post(
        &c,
        &node,
        json!([unit("g1", north(48.0, 3_333.0), 2.0, time(-30_000))]),
    )
    .await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["accepted"], 0);
    assert_eq!(r["rejected"][0]["field"], "kinematics", "{r}");
    assert!(
        r["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("km/h"),
        "{r}"
    );
    assert_eq!(
        lat_of(&c, &node, "g1").await,
        48.0,
        "the live position moved"
    );
    let (s, q) = get(&c, &node, "/api/v1/quarantine").await;
    assert_eq!(s, 200, "{q}");
    let q = q.as_array().unwrap().clone();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["uid"], "g1");
    assert_eq!(q[0]["previous"]["lat"], 48.0);
    assert!(q[0]["implied_kmh"].as_f64().unwrap() > 390.0, "{q:?}");
    let a = alerts(&c, &node, "spoofing").await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["entities"], json!(["g1"]));
    assert_eq!(a[0]["rule_id"], "spoofing");

    // A plausible report still moves it.
    let (s, r) = post(
        &c,
        &node,
        json!([unit("g1", north(48.0, 500.0), 2.0, time(-30_000))]),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert!(lat_of(&c, &node, "g1").await > 48.0);

    // 2. A 50 km jump in one second is quarantined too.
    let base = rampart_model::Timestamp::now();
    let at = |ms: i64| base.plus_millis(ms).to_rfc3339();
    let (s, r) = post(&c, &node, json!([unit("j1", 47.0, 3.0, at(-2_000))])).await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = post(
        &c,
        &node,
        json!([unit("j1", north(47.0, 50_500.0), 3.0, at(-1_000))]),
    )
    .await;
    assert_eq!(s, 422, "{r}");
    assert!(
        r["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("jump"),
        "{r}"
    );
    assert_eq!(lat_of(&c, &node, "j1").await, 47.0);
    let (_, q) = get(&c, &node, "/api/v1/quarantine?uid=j1").await;
    assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
    assert_eq!(alerts(&c, &node, "spoofing").await.len(), 2);
    let (s, _) = get(&c, &node, "/api/v1/quarantine?limit=0").await;
    assert_eq!(s, 400);

    // 3. Six entities in one area going silent at once: one jamming alert.
    let silent: Vec<Value> = (0..6)
        .map(|i| {
            let mut u = unit(&format!("s{i}"), 50.1 + i as f64 * 0.01, 3.1, time(0));
            u["stale"] = json!(time(1_500));
            u
        })
        .collect();
    let (s, r) = post(&c, &node, Value::Array(silent)).await;
    assert_eq!(s, 200, "{r}");
    assert!(
        eventually(Duration::from_secs(10), async || {
            !alerts(&c, &node, "jamming").await.is_empty()
        })
        .await,
        "no jamming alert"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = alerts(&c, &node, "jamming").await;
    assert_eq!(a.len(), 1, "one alert for the area: {a:?}");
    assert!(a[0]["message"].as_str().unwrap().contains("jamming"));
    let named = a[0]["entities"].as_array().unwrap();
    assert!(named.len() >= 5, "{a:?}");
    assert!(named.iter().all(|u| u.as_str().unwrap().starts_with('s')));

    // 4. A flood from one identity is throttled and alerted once…
    let flood: Vec<Value> = (0..1_000)
        .map(|i| unit(&format!("f{i}"), 40.0, 5.0 + i as f64 * 0.001, time(0)))
        .collect();
    let (s, r) = post(&c, &node, Value::Array(flood)).await;
    assert_eq!(s, 200, "{r}");
    let refused = r["rejected"].as_array().unwrap();
    assert!(refused.len() > 900, "{}", refused.len());
    assert!(refused.iter().all(|x| x["field"] == "rate"), "{r}");
    let a = alerts(&c, &node, "flood").await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(
        a[0]["message"]
            .as_str()
            .unwrap()
            .contains("anonymous@127.0.0.1"),
        "{a:?}"
    );
    // …while another source's reports still land.
    let mut tak = tokio::net::TcpStream::connect(node.listener("cot-tcp"))
        .await
        .unwrap();
    let (t, stale) = (time(0), time(600_000));
    let ev = format!(
        r#"<event version="2.0" uid="tak-1" type="a-f-G-U-C" how="m-g" time="{t}" start="{t}" stale="{stale}"><point lat="41.0" lon="6.0" hae="0" ce="10" le="10"/><detail><contact callsign="Other"/></detail></event>"#
    );
    tak.write_all(ev.as_bytes()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            get(&c, &node, "/api/v1/entities/tak-1").await.0 == 200
        })
        .await,
        "the other source's report did not land"
    );
    let metrics = c
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "rampart_guard_refused_total{reason=\"kinematics\"} 2",
        "rampart_guard_detections_total{reason=\"flood\"} 1",
        "rampart_guard_detections_total{reason=\"jamming\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_guard_the_quarantine_is_unavailable_and_nothing_is_screened() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let c = reqwest::Client::new();
    let (s, _) = post(&c, &node, json!([unit("g1", 48.0, 2.0, time(-60_000))])).await;
    assert_eq!(s, 200);
    let (s, r) = post(
        &c,
        &node,
        json!([unit("g1", north(48.0, 3_333.0), 2.0, time(-30_000))]),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, _) = get(&c, &node, "/api/v1/quarantine").await;
    assert_eq!(s, 503);
}
