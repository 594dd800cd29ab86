//! Security labels on every HTTP read path, against the real binary with `[auth] required`.
//!
//! Four entities with different labels, four users with different clearances. For each path
//! (entity list in every export format, one entity, track, history window, WebSocket snapshot
//! and deltas, metrics) each user must get exactly what their clearance and groups allow: the
//! cleared user gets the entity (positive case), the others never see it or its uid (negative
//! case). Also: the source default label, the join of report labels into the entity label, an
//! unknown level refused at ingest, the audited admin downgrade that survives a restart, and
//! logins in the audit log. TAK, MQTT and alerts paths have their own files
//! (`labels_cot.rs`, `labels_mqtt.rs`, `labels_alerts.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Node, eventually, time};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const ADMIN_PASSWORD: &str = "admin-password-for-labels";

const CONFIG: &str = r#"
[auth]
required = true

[labels]
levels = ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]

[labels.sources]
http = { classification = "RESTRICTED" }
"#;

/// `rampart user add NAME --role ROLE --token --config CFG [--clearance L --groups G]`.
fn add_user(
    data: &Path,
    cfg: &Path,
    name: &str,
    role: &str,
    clearance: &[&str],
    password: Option<&str>,
) -> String {
    let cfg = cfg.to_str().unwrap();
    let extra: Vec<&str> = ["--config", cfg]
        .into_iter()
        .chain(clearance.iter().copied())
        .collect();
    common::add_user(data, name, role, &extra, password)
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

/// The uids of a GeoJSON FeatureCollection.
fn uids(body: &str) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["uid"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn post_reports(c: &reqwest::Client, node: &Node, token: &str, reports: Value) -> Value {
    let r = c
        .post(node.url("/api/v1/reports"))
        .bearer_auth(token)
        .json(&reports)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
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

/// The next JSON message of type `snapshot`, `update`, `stale` or `removed` (alerts skipped),
/// or `None` when none comes within `wait`.
async fn next_picture_msg(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, ws.next()).await.ok()??.ok()?;
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if matches!(
                v["type"].as_str(),
                Some("snapshot" | "update" | "stale" | "removed")
            ) {
                return Some(v);
            }
        }
    }
}

fn label(classification: &str, rel: &[&str]) -> Value {
    json!({"classification": classification, "releasability": rel})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_read_path_enforces_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let admin = add_user(
        &data,
        &cfg,
        "ada",
        "admin",
        &["--clearance", "SECRET", "--groups", "NATO,FVEY"],
        Some(ADMIN_PASSWORD),
    );
    let sam = add_user(
        &data,
        &cfg,
        "sam",
        "viewer",
        &["--clearance", "SECRET", "--groups", "NATO"],
        None,
    );
    let fred = add_user(
        &data,
        &cfg,
        "fred",
        "viewer",
        &["--clearance", "SECRET", "--groups", "FVEY"],
        None,
    );
    let rita = add_user(
        &data,
        &cfg,
        "rita",
        "viewer",
        &["--clearance", "RESTRICTED"],
        None,
    );
    // A clearance naming a level the node does not have is refused by the CLI.
    let bad = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["user", "add", "x", "--clearance", "COSMIC", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("COSMIC"));

    let node = Node::start(&data, &["--config", cfg.to_str().unwrap()]);
    let c = reqwest::Client::new();

    // Ingest: explicit labels, the source default (http = RESTRICTED), and a join.
    let receipt = post_reports(
        &c,
        &node,
        &admin,
        json!([
            {"uid": "u-unc", "lat": 50.0, "lon": 10.0, "time": time(-4000), "label": label("UNCLASSIFIED", &[])},
            {"uid": "u-def", "lat": 50.1, "lon": 10.1, "time": time(-4000)},
            {"uid": "u-nato", "lat": 50.2, "lon": 10.2, "time": time(-4000), "label": label("SECRET", &["NATO"])},
            {"uid": "u-mixed", "lat": 50.3, "lon": 10.3, "time": time(-3000), "label": label("UNCLASSIFIED", &[])},
            {"uid": "u-mixed", "lat": 50.31, "lon": 10.31, "time": time(-2000), "label": label("SECRET", &["NATO", "FVEY"])},
            {"uid": "u-mixed", "lat": 50.32, "lon": 10.32, "time": time(-1000), "label": label("UNCLASSIFIED", &[])},
            {"uid": "u-typo", "lat": 50.4, "lon": 10.4, "time": time(-1000), "label": label("SECERT", &[])},
        ]),
    )
    .await;
    assert_eq!(receipt["accepted"], 6, "{receipt}");
    let rejected = &receipt["rejected"][0];
    assert_eq!(rejected["index"], 6, "{receipt}");
    assert_eq!(rejected["field"], "label.classification");
    assert!(rejected["reason"].as_str().unwrap().contains("SECERT"));

    // The entity label: the source default, and the join (a later UNCLASSIFIED report does
    // not lower u-mixed).
    let (_, body) = get(&c, &node, &admin, "/api/v1/entities/u-def").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["properties"]["label"]["classification"], "RESTRICTED",
        "{v}"
    );
    let (_, body) = get(&c, &node, &admin, "/api/v1/entities/u-mixed").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["properties"]["label"],
        label("SECRET", &["FVEY", "NATO"]),
        "{v}"
    );

    // Who may see what.
    let all = ["u-unc", "u-def", "u-nato", "u-mixed"];
    let cases: [(&str, &str, &[&str]); 4] = [
        ("ada", &admin, &all),
        ("sam", &sam, &all),
        ("fred", &fred, &["u-unc", "u-def", "u-mixed"]),
        ("rita", &rita, &["u-unc", "u-def"]),
    ];
    for (who, token, visible) in cases {
        // Path 1: the entity list, as GeoJSON.
        let (s, body) = get(&c, &node, token, "/api/v1/entities").await;
        assert_eq!(s, 200);
        assert_eq!(uids(&body), set(visible), "{who}: /api/v1/entities");
        // Path 2: the exports (CSV, KML, CoT XML): hidden uids appear nowhere in the text.
        for format in ["csv", "kml", "cot"] {
            let (s, body) = get(
                &c,
                &node,
                token,
                &format!("/api/v1/entities?format={format}"),
            )
            .await;
            assert_eq!(s, 200, "{who} {format}");
            for uid in all {
                assert_eq!(
                    body.contains(uid),
                    visible.contains(&uid),
                    "{who}: {uid} in the {format} export"
                );
            }
        }
        // Path 3: a spatial query (the grid path) and a text search.
        let (_, body) = get(&c, &node, token, "/api/v1/entities?bbox=9,49,11,51&q=u-").await;
        assert_eq!(uids(&body), set(visible), "{who}: bbox+q");
        let (_, body) = get(&c, &node, token, "/api/v1/entities?nearest=50.2,10.2,10").await;
        assert_eq!(uids(&body), set(visible), "{who}: nearest");
        // Path 4: one entity: a hidden one is a 404, exactly like a missing one.
        for uid in all {
            let (s, body) = get(&c, &node, token, &format!("/api/v1/entities/{uid}")).await;
            if visible.contains(&uid) {
                assert_eq!(s, 200, "{who}: {uid}");
            } else {
                assert_eq!(s, 404, "{who}: {uid}");
                assert!(!body.contains("SECRET"), "{body}");
            }
        }
        // Path 5: tracks, point by point: u-mixed has two UNCLASSIFIED points and one SECRET.
        let (s, body) = get(&c, &node, token, "/api/v1/entities/u-mixed/track").await;
        assert_eq!(s, 200);
        let n = serde_json::from_str::<Value>(&body).unwrap()["features"]
            .as_array()
            .unwrap()
            .len();
        let want = if who == "rita" { 2 } else { 3 };
        assert_eq!(n, want, "{who}: u-mixed track points");
        let (_, body) = get(&c, &node, token, "/api/v1/entities/u-nato/track?format=csv").await;
        assert_eq!(
            body.contains("50.2"),
            visible.contains(&"u-nato"),
            "{who}: u-nato track export"
        );
        // Path 6: the console's history window.
        let path = format!(
            "/api/v1/history?from={}&to={}",
            urlencode(&time(-60_000)),
            urlencode(&time(1000))
        );
        let (s, body) = get(&c, &node, token, &path).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let got: BTreeSet<String> = v["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["uid"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, set(visible), "{who}: history window");
        // Path 7: metrics name no entity.
        let (s, body) = get(&c, &node, token, "/metrics").await;
        assert_eq!(s, 200);
        for uid in all {
            assert!(!body.contains(uid), "{who}: /metrics names {uid}");
        }
    }

    // Path 8: the WebSocket stream: snapshot, then deltas.
    let mut ws_sam = ws_connect(&node, &sam).await;
    let mut ws_rita = ws_connect(&node, &rita).await;
    let snap = next_picture_msg(&mut ws_sam, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(uids(&snap.to_string()), set(&all), "sam: snapshot");
    let snap = next_picture_msg(&mut ws_rita, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(
        uids(&snap.to_string()),
        set(&["u-unc", "u-def"]),
        "rita: snapshot"
    );

    // A SECRET update reaches sam, not rita.
    post_reports(
        &c,
        &node,
        &admin,
        json!([{"uid": "u-nato", "lat": 50.25, "lon": 10.25, "time": time(0), "label": label("SECRET", &["NATO"])}]),
    )
    .await;
    let m = next_picture_msg(&mut ws_sam, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(m["type"], "update");
    assert_eq!(uids(&m.to_string()), set(&["u-nato"]));
    // u-unc is raised to SECRET//NATO by a new report: rita is told it is gone (she saw it),
    // and never sees the new position.
    post_reports(
        &c,
        &node,
        &admin,
        json!([{"uid": "u-unc", "lat": 50.05, "lon": 10.05, "time": time(10), "label": label("SECRET", &["NATO"])}]),
    )
    .await;
    let m = next_picture_msg(&mut ws_rita, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(m, json!({"type": "removed", "uids": ["u-unc"]}), "rita");
    assert!(
        next_picture_msg(&mut ws_rita, Duration::from_millis(700))
            .await
            .is_none(),
        "rita got more than the removal"
    );
    let m = next_picture_msg(&mut ws_sam, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        uids(&m.to_string()),
        set(&["u-unc"]),
        "sam sees the raised entity"
    );

    // The explicit downgrade: admins only, with a reason, audited, and it survives a restart.
    let r = c
        .put(node.url("/api/v1/entities/u-nato/label"))
        .bearer_auth(&sam)
        .json(&json!({"classification": "UNCLASSIFIED", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a viewer may not downgrade");
    let r = c
        .put(node.url("/api/v1/entities/u-nato/label"))
        .bearer_auth(&admin)
        .json(&json!({"classification": "UNCLASSIFIED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "no reason: refused");
    let r = c
        .put(node.url("/api/v1/entities/u-nato/label"))
        .bearer_auth(&admin)
        .json(&json!({"classification": "UNCLASSIFIED", "reason": "released by the J2 on 29 Nov"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Rita's stream now shows it, and so does her REST view.
    let m = next_picture_msg(&mut ws_rita, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(m["type"], "update");
    assert_eq!(uids(&m.to_string()), set(&["u-nato"]));
    let (s, _) = get(&c, &node, &rita, "/api/v1/entities/u-nato").await;
    assert_eq!(s, 200);

    // Logins, failed logins and the downgrade are in the audit log, with their actors.
    let r = c
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"user": "ada", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"user": "ada", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    node.stop();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["audit", "export", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |action: &str| {
        records
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} record in {records:?}"))
            .clone()
    };
    let d = find("entity.label_downgrade");
    assert_eq!(d["target"], "u-nato");
    assert!(d["actor"].as_str().unwrap().starts_with("ada@"), "{d}");
    assert_eq!(d["detail"]["before"]["classification"], "SECRET");
    assert_eq!(d["detail"]["after"]["classification"], "UNCLASSIFIED");
    assert!(d["detail"]["reason"].as_str().unwrap().contains("J2"));
    assert_eq!(find("auth.login_failed")["target"], "ada");
    assert_eq!(find("auth.login")["target"], "ada");
    // The first start recorded its configuration digest as a change (from nothing).
    let c0 = find("config.change");
    assert!(c0["detail"]["before"].is_null(), "{c0}");
    assert_eq!(c0["detail"]["after"].as_str().unwrap().len(), 64);
    assert_eq!(find("node.start")["detail"]["auth_required"], true);
    let u = find("user.create");
    assert!(u["actor"].as_str().unwrap().starts_with("cli"), "{u}");

    // After a restart the picture is rebuilt from history (u-nato would be SECRET again by
    // the join) and the override is applied on top.
    let node = Node::start(&data, &["--config", cfg.to_str().unwrap()]);
    let ok = eventually(Duration::from_secs(15), async || {
        get(&c, &node, &rita, "/api/v1/entities/u-nato").await.0 == 200
    })
    .await;
    assert!(ok, "the downgrade did not survive the restart");
    let (_, body) = get(&c, &node, &rita, "/api/v1/entities").await;
    assert_eq!(uids(&body), set(&["u-def", "u-nato"]));
    let (_, body) = get(&c, &node, &fred, "/api/v1/entities").await;
    assert_eq!(uids(&body), set(&["u-def", "u-nato", "u-mixed"]));
}

/// The history window replays entities that have left the live picture (short stale grace,
/// reports stale in the past), and still filters them point by point: a hidden entity's points
/// never come back, and an entity whose newest point is hidden shows the callsign of its newest
/// visible one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_replays_removed_entities_within_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, format!("{CONFIG}\n[picture]\nstale_grace_secs = 1\n")).unwrap();
    let admin = add_user(
        &data,
        &cfg,
        "ada",
        "admin",
        &["--clearance", "SECRET", "--groups", "NATO"],
        None,
    );
    let rita = add_user(
        &data,
        &cfg,
        "rita",
        "viewer",
        &["--clearance", "RESTRICTED"],
        None,
    );
    let node = Node::start(&data, &["--config", cfg.to_str().unwrap()]);
    let c = reqwest::Client::new();
    let gone = |t: i64| time(t + 500); // stale half a second after the report: gone soon
    let receipt = post_reports(
        &c,
        &node,
        &admin,
        json!([
            {"uid": "r-open", "callsign": "OPEN ONE", "lat": 51.0, "lon": 7.0, "time": time(-9000), "stale": gone(-9000), "label": label("UNCLASSIFIED", &[])},
            {"uid": "r-open", "lat": 51.01, "lon": 7.01, "time": time(-8000), "stale": gone(-8000), "label": label("UNCLASSIFIED", &[])},
            {"uid": "r-secret", "callsign": "HIDDEN ONE", "lat": 51.1, "lon": 7.1, "time": time(-9000), "stale": gone(-9000), "label": label("SECRET", &["NATO"])},
            {"uid": "r-mixed", "callsign": "MIXED OPEN", "lat": 51.2, "lon": 7.2, "time": time(-9000), "stale": gone(-9000), "label": label("UNCLASSIFIED", &[])},
            {"uid": "r-mixed", "callsign": "MIXED SECRET", "lat": 51.21, "lon": 7.21, "time": time(-8000), "stale": gone(-8000), "label": label("SECRET", &["NATO"])},
        ]),
    )
    .await;
    assert_eq!(receipt["accepted"], 5, "{receipt}");
    // Swept out of the live picture.
    let removed = eventually(Duration::from_secs(20), async || {
        let (_, body) = get(&c, &node, &admin, "/api/v1/entities").await;
        uids(&body).is_empty()
    })
    .await;
    assert!(removed, "the entities never left the live picture");
    let path = format!(
        "/api/v1/history?from={}&to={}",
        urlencode(&time(-60_000)),
        urlencode(&time(1000))
    );
    let tracks = async |token: &str, extra: &str| {
        let (s, body) = get(&c, &node, token, &format!("{path}{extra}")).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let mut out = std::collections::BTreeMap::new();
        for e in v["entities"].as_array().unwrap() {
            out.insert(e["uid"].as_str().unwrap().to_string(), e.clone());
        }
        (out, body)
    };
    // The cleared admin: all three, every point, the newest callsigns.
    let (all, _) = tracks(&admin, "").await;
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        ["r-mixed", "r-open", "r-secret"]
    );
    assert_eq!(all["r-open"]["points"].as_array().unwrap().len(), 2);
    assert!((all["r-open"]["points"][1][1].as_f64().unwrap() - 51.01).abs() < 1e-6);
    assert_eq!(all["r-open"]["callsign"], "OPEN ONE");
    assert_eq!(all["r-mixed"]["callsign"], "MIXED SECRET");
    assert_eq!(all["r-mixed"]["points"].as_array().unwrap().len(), 2);
    // A bbox keeps only the points inside it.
    let (boxed, _) = tracks(&admin, "&bbox=7.005,50.9,7.05,51.05").await;
    assert_eq!(boxed.keys().cloned().collect::<Vec<_>>(), ["r-open"]);
    assert_eq!(boxed["r-open"]["points"].as_array().unwrap().len(), 1);
    // Rita (RESTRICTED): the hidden entity not at all, the mixed one by its visible point
    // only, under that point's callsign.
    let (seen, body) = tracks(&rita, "").await;
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["r-mixed", "r-open"]
    );
    assert_eq!(seen["r-mixed"]["points"].as_array().unwrap().len(), 1);
    assert_eq!(seen["r-mixed"]["callsign"], "MIXED OPEN");
    for secret in ["r-secret", "HIDDEN ONE", "MIXED SECRET", "51.21", "51.1,"] {
        assert!(
            !body.contains(secret),
            "rita's history names {secret}: {body}"
        );
    }
}

/// Without `[auth] required` (an open node) labels are carried but not enforced: an
/// anonymous caller sees everything, which is what the demo and loopback use rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_node_carries_labels_without_enforcing_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    let r: Value = c
        .post(node.url("/api/v1/reports"))
        .json(&json!([{"uid": "s1", "lat": 1.0, "lon": 1.0, "time": time(0), "label": label("SECRET", &["NATO"])}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["accepted"], 1, "{r}");
    let v: Value = c
        .get(node.url("/api/v1/entities/s1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["properties"]["label"], label("SECRET", &["NATO"]));
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}
