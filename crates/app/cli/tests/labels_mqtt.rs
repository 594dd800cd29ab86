//! Security labels on the MQTT read paths, against the real binary and Debian's
//! `mosquitto_sub`, with `[auth] required = true` (labels enforced).
//!
//! Two devices are registered over the REST API with an admin token: `cleared` holds
//! SECRET with group NATO, `conf` holds CONFIDENTIAL. A SECRET//REL NATO entity and
//! UNCLASSIFIED entities are reported over HTTP. Every test shows both sides: the cleared
//! device receives the SECRET data (positive) and the CONFIDENTIAL one never does
//! (negative), on each path: live entity updates, retained entity updates on a late
//! SUBSCRIBE (also after a restart, from the session snapshot), live alerts, and alerts
//! queued for persistent sessions while they were offline, and bridges to a real Mosquitto
//! (each forwards only what its configured clearance permits).
//!
//! Negative cases do not rely on timeouts where order can decide: the SECRET item is made
//! first and an UNCLASSIFIED one after it, so a subscriber that stops after its expected
//! count would have seen a leaked SECRET item among them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Mosquitto, Node, eventually, time};
use serde_json::{Value, json};

const SECRET_NATO: &str = r#"{"classification":"SECRET","releasability":["NATO"]}"#;
const UNCLASSIFIED: &str = r#"{"classification":"UNCLASSIFIED"}"#;

/// `rampart user add ada --role admin --token`; returns the printed token.
fn add_admin(data: &Path) -> String {
    common::add_user(data, "ada", "admin", &[], None)
}

/// A node with labels enforced and an `mqtt` listener, its admin token, and the tokens of
/// the `cleared` (SECRET, NATO) and `conf` (CONFIDENTIAL) devices.
struct Secure {
    node: Node,
    admin: String,
    cleared: String,
    conf: String,
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("rampart.toml");
    std::fs::write(&cfg, format!("[auth]\nrequired = true\n{extra}")).unwrap();
    cfg
}

fn start_node(dir: &Path, cfg: &Path) -> Node {
    Node::start(
        &dir.join("data"),
        &[
            "--listen",
            "mqtt=127.0.0.1:0",
            "--config",
            cfg.to_str().unwrap(),
        ],
    )
}

async fn secure_node(dir: &Path, extra: &str) -> Secure {
    let cfg = write_config(dir, extra);
    let admin = add_admin(&dir.join("data"));
    let node = start_node(dir, &cfg);
    let cleared = register(
        &node,
        &admin,
        json!({"id": "cleared", "clearance": {"level": "SECRET", "groups": ["NATO"]}}),
    )
    .await;
    let conf = register(
        &node,
        &admin,
        json!({"id": "conf", "clearance": {"level": "CONFIDENTIAL"}}),
    )
    .await;
    Secure {
        node,
        admin,
        cleared,
        conf,
    }
}

async fn register(node: &Node, admin: &str, body: Value) -> String {
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/devices"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "register {body}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["device"]["clearance"], body["clearance"],
        "clearance stored"
    );
    v["token"].as_str().unwrap().to_string()
}

/// Reports `uid` over HTTP with `label` (JSON text) and optional attributes.
async fn report(s: &Secure, uid: &str, label: &str, attributes: Value) {
    let label: Value = serde_json::from_str(label).unwrap();
    let body = json!([{"uid": uid, "lat": 1.0, "lon": 2.0, "time": time(0),
        "type": "a-f-G-U-C", "label": label, "attributes": attributes}]);
    let r = reqwest::Client::new()
        .post(s.node.url("/api/v1/reports"))
        .bearer_auth(&s.admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "report {uid}: {}", r.status());
}

/// `mosquitto_sub` as `device`, printing `RETAIN TOPIC PAYLOAD` per message.
fn sub(s: &Secure, device: &str, topic: &str, args: &[&str]) -> Child {
    let token = if device == "cleared" {
        &s.cleared
    } else {
        &s.conf
    };
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(s.node.listener("mqtt").port().to_string())
        .args(["-u", device, "-P", token, "-t", topic, "-F", "%r %t %p"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mosquitto_sub (Debian mosquitto-clients) must be installed")
}

/// The lines `child` printed once it exits.
async fn lines(child: Child) -> Vec<String> {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn topics(lines: &[String]) -> Vec<String> {
    let mut t: Vec<String> = lines
        .iter()
        .filter_map(|l| l.split(' ').nth(1).map(str::to_string))
        .collect();
    t.sort();
    t
}

/// Alert lines as `(event, first entity)`.
fn alerts(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let json = l.splitn(3, ' ').nth(2)?;
            let v: Value = serde_json::from_str(json).ok()?;
            Some(v["alert"]["entities"][0].as_str()?.to_string())
        })
        .collect();
    v.sort();
    v
}

async fn withheld(s: &Secure) -> f64 {
    let text = reqwest::Client::new()
        .get(s.node.url("/metrics"))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("rampart_mqtt_broker_events_total") && l.contains("label_withheld")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const SETTLE: Duration = Duration::from_millis(1000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_live_entity_updates_only_reach_cleared_devices() {
    let dir = tempfile::tempdir().unwrap();
    let s = secure_node(dir.path(), "").await;
    let topic = "rampart/v1/entities/#";
    let cleared = sub(&s, "cleared", topic, &["-C", "3", "-W", "20"]);
    let conf = sub(&s, "conf", topic, &["-C", "2", "-W", "20"]);
    tokio::time::sleep(SETTLE).await;
    // SECRET first: a leak would be among the CONFIDENTIAL device's two messages.
    report(&s, "s-1", SECRET_NATO, json!({})).await;
    report(&s, "u-1", UNCLASSIFIED, json!({})).await;
    report(&s, "u-2", UNCLASSIFIED, json!({})).await;
    let cleared = lines(cleared).await;
    let conf = lines(conf).await;
    assert_eq!(
        topics(&cleared),
        [
            "rampart/v1/entities/s-1",
            "rampart/v1/entities/u-1",
            "rampart/v1/entities/u-2"
        ],
        "SECRET+NATO device receives both labels: {cleared:?}"
    );
    assert_eq!(
        topics(&conf),
        ["rampart/v1/entities/u-1", "rampart/v1/entities/u-2"],
        "CONFIDENTIAL device never receives the SECRET entity: {conf:?}"
    );
    assert!(
        eventually(Duration::from_secs(5), async || withheld(&s).await >= 1.0).await,
        "the withheld delivery is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_retained_entities_on_late_subscribe_follow_clearance() {
    let dir = tempfile::tempdir().unwrap();
    let s = secure_node(dir.path(), "[mqtt]\nentity_retain = true\n").await;
    report(&s, "s-1", SECRET_NATO, json!({})).await;
    report(&s, "u-1", UNCLASSIFIED, json!({})).await;
    // Give the broker task the two updates before anyone subscribes.
    tokio::time::sleep(SETTLE).await;

    // `earlier`: UNCLASSIFIED entities retained by an earlier round.
    let check = async |s: &Secure, when: &str, earlier: &[&str]| {
        let topic = "rampart/v1/entities/#";
        let entity = |uid: &str| format!("rampart/v1/entities/{uid}");
        let n = (2 + earlier.len()).to_string();
        let cleared = lines(sub(s, "cleared", topic, &["-C", &n, "-W", "20"])).await;
        let mut want: Vec<String> = ["s-1", "u-1"]
            .iter()
            .chain(earlier)
            .map(|u| entity(u))
            .collect();
        want.sort();
        assert_eq!(
            topics(&cleared),
            want,
            "{when}: SECRET+NATO late subscriber gets both retained entities: {cleared:?}"
        );
        assert!(cleared.iter().all(|l| l.starts_with("1 ")), "retained flag");
        // Retained messages follow the SUBACK at once; a live UNCLASSIFIED update made after
        // the subscription ends the wait, so a leaked SECRET entity would be among these.
        let conf = sub(s, "conf", topic, &["-C", &n, "-W", "20"]);
        tokio::time::sleep(SETTLE).await;
        let live = format!("u-{when}");
        report(s, &live, UNCLASSIFIED, json!({})).await;
        let conf = lines(conf).await;
        let mut want: Vec<String> = ["u-1", live.as_str()]
            .iter()
            .chain(earlier)
            .map(|u| entity(u))
            .collect();
        want.sort();
        assert_eq!(
            topics(&conf),
            want,
            "{when}: CONFIDENTIAL late subscriber never gets the retained SECRET entity: {conf:?}"
        );
    };
    check(&s, "before", &[]).await;

    // The retained messages and their labels survive a restart (session snapshot).
    let Secure {
        node,
        admin,
        cleared,
        conf,
    } = s;
    node.stop();
    let cfg = dir.path().join("rampart.toml");
    let node = start_node(dir.path(), &cfg);
    let s = Secure {
        node,
        admin,
        cleared,
        conf,
    };
    let snap = std::fs::read_to_string(dir.path().join("data/mqtt/sessions.json")).unwrap();
    assert!(
        snap.contains("retained_markings"),
        "labels are in the snapshot"
    );
    check(&s, "after", &["u-before"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_alerts_live_and_queued_only_reach_cleared_devices() {
    let dir = tempfile::tempdir().unwrap();
    let s = secure_node(dir.path(), "").await;
    let topic = "rampart/v1/alerts";
    // Persistent sessions (QoS 1, clean session off) that subscribe and leave at once.
    for dev in ["cleared", "conf"] {
        let id = format!("{dev}-alerts");
        let out = sub(&s, dev, topic, &["-c", "-i", &id, "-q", "1", "-E"])
            .wait_with_output()
            .unwrap();
        assert!(out.status.success(), "{dev}: persistent subscribe");
    }
    // Live subscribers too.
    let live_cleared = sub(&s, "cleared", topic, &["-q", "1", "-C", "2", "-W", "20"]);
    let live_conf = sub(&s, "conf", topic, &["-q", "1", "-C", "1", "-W", "20"]);
    tokio::time::sleep(SETTLE).await;
    // SOS raises an alert labelled like its entity; the SECRET one first.
    report(&s, "medic-s", SECRET_NATO, json!({"sos": 1})).await;
    report(&s, "medic-u", UNCLASSIFIED, json!({"sos": 1})).await;
    let live_cleared = lines(live_cleared).await;
    let live_conf = lines(live_conf).await;
    assert_eq!(
        alerts(&live_cleared),
        ["medic-s", "medic-u"],
        "live: SECRET+NATO device gets both alerts: {live_cleared:?}"
    );
    assert_eq!(
        alerts(&live_conf),
        ["medic-u"],
        "live: CONFIDENTIAL device never gets the SECRET alert: {live_conf:?}"
    );
    // The persistent sessions come back and collect what was queued while they were away.
    let queued_cleared = sub(
        &s,
        "cleared",
        topic,
        &[
            "-c",
            "-i",
            "cleared-alerts",
            "-q",
            "1",
            "-C",
            "2",
            "-W",
            "20",
        ],
    );
    let queued_conf = sub(
        &s,
        "conf",
        topic,
        &["-c", "-i", "conf-alerts", "-q", "1", "-C", "1", "-W", "20"],
    );
    let queued_cleared = lines(queued_cleared).await;
    let queued_conf = lines(queued_conf).await;
    assert_eq!(
        alerts(&queued_cleared),
        ["medic-s", "medic-u"],
        "queued: SECRET+NATO device gets both alerts: {queued_cleared:?}"
    );
    assert_eq!(
        alerts(&queued_conf),
        ["medic-u"],
        "queued: CONFIDENTIAL device never gets the SECRET alert: {queued_conf:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_bridges_forward_only_what_their_clearance_permits() {
    let remote = Mosquitto::start();
    let remote_sub = |prefix: &str, count: &str| {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &remote.port.to_string()])
            .args(["-t", &format!("{prefix}/#"), "-F", "%r %t %p"])
            .args(["-C", count, "-W", "30"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let nato = remote_sub("nato", "3");
    let conf = remote_sub("conf", "2");
    let bridge = |name: &str, clearance: &str| {
        format!(
            "[[mqtt.bridge]]\nname = \"{name}\"\naddress = \"127.0.0.1:{}\"\npublish = [\"rampart/v1/entities/#\"]\nremote_prefix = \"{name}/\"\nreconnect_min_ms = 50\nreconnect_max_ms = 500\nclearance = {clearance}\n",
            remote.port
        )
    };
    let extra = format!(
        "{}{}",
        bridge("nato", r#"{ level = "SECRET", groups = ["NATO"] }"#),
        bridge("conf", r#"{ level = "CONFIDENTIAL" }"#)
    );
    let dir = tempfile::tempdir().unwrap();
    let s = secure_node(dir.path(), &extra).await;
    // Entity updates wait in each bridge's queue until it is connected; SECRET first.
    report(&s, "s-1", SECRET_NATO, json!({})).await;
    report(&s, "u-1", UNCLASSIFIED, json!({})).await;
    report(&s, "u-2", UNCLASSIFIED, json!({})).await;
    let nato = lines(nato).await;
    let conf = lines(conf).await;
    assert_eq!(
        topics(&nato),
        [
            "nato/rampart/v1/entities/s-1",
            "nato/rampart/v1/entities/u-1",
            "nato/rampart/v1/entities/u-2"
        ],
        "a SECRET+NATO bridge forwards both labels: {nato:?}"
    );
    assert_eq!(
        topics(&conf),
        [
            "conf/rampart/v1/entities/u-1",
            "conf/rampart/v1/entities/u-2"
        ],
        "a CONFIDENTIAL bridge never forwards the SECRET entity: {conf:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_device_clearance_must_name_a_configured_level() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let admin = add_admin(&dir.path().join("data"));
    let node = start_node(dir.path(), &cfg);
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/devices"))
        .bearer_auth(&admin)
        .json(&json!({"id": "typo", "clearance": {"level": "SECERT"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("SECERT"));
    let _ = std::io::stdout().flush();
}
