//! Security labels on CoT routing to TAK clients, against the real binary and real pytak
//! clients (`tests/tak/labels_clients.py`).
//!
//! The node enforces labels (`[auth] required = true`), labels every `cot-udp` report
//! SECRET//NATO by default, and clears `cot-tls` clients by certificate CN: `alice` SECRET+NATO,
//! `carol` CONFIDENTIAL, `dave` unlisted (lowest level); a `cot-tcp` client is anonymous. An
//! operator posts one SECRET//NATO and one unlabelled report over HTTP (they reach TAK clients
//! through the bridge), a `cot-tcp` client sends an unclassified PLI and a `cot-udp` datagram a
//! secret one. Only alice may receive the two secret entities; everyone receives the two
//! unclassified ones — on live routing and in the picture a client gets when it joins.
//! The tests fail — never skip — when the Python interpreter is missing: run
//! `scripts/python-env` (or set `RAMPART_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{python, run_json};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Node;
use serde_json::{Value, json};

const CONFIG: &str = r#"
[auth]
required = true

[labels.sources]
"cot-udp" = { classification = "SECRET", releasability = ["NATO"] }

[cot.clearances]
"alice" = { level = "SECRET", groups = ["NATO"] }
"carol" = { level = "CONFIDENTIAL" }
"#;

fn rampart(args: &[&str], data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rampart {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A labelled node with every TAK listener, certificates for alice, carol and dave, and an
/// operator token (cleared SECRET+NATO, so its labelled posts are accepted).
fn start(dir: &tempfile::TempDir) -> (Node, String) {
    let data = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let token = rampart(
        &[
            "user",
            "add",
            "poster",
            "--role",
            "operator",
            "--clearance",
            "SECRET",
            "--groups",
            "NATO",
            "--token",
        ],
        &data,
    );
    assert!(token.starts_with("rmp_"), "no token printed: {token:?}");
    let node = Node::start(
        &data,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "cot-tcp=127.0.0.1:0",
            "--listen",
            "cot-tls=127.0.0.1:0",
            "--listen",
            "cot-udp=127.0.0.1:0",
        ],
    );
    for cn in ["alice", "carol", "dave"] {
        rampart(
            &["pki", "issue", "user", cn, "--p12-password", "atakatak"],
            &data,
        );
    }
    (node, token)
}

async fn scenario(node: &Node, token: &str, name: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tak/labels_clients.py");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(name)
        .args(["--tcp", &node.listener("cot-tcp").to_string()])
        .args(["--tls", &node.listener("cot-tls").to_string()])
        .args(["--udp", &node.listener("cot-udp").to_string()])
        .args(["--http", &node.base])
        .args(["--token", token])
        .arg("--data")
        .arg(&node.data);
    run_json(cmd, &format!("TAK label scenario {name}")).await
}

/// What each receiver saw, checked again here so the table of expectations is in one place.
fn check_seen(seen: &Value, what: &str) {
    let everything = json!(["http-secret", "http-unclass", "tcp-unclass", "udp-secret"]);
    let unclassified = json!(["http-unclass", "tcp-unclass"]);
    assert_eq!(seen["alice"], everything, "{what}: alice (SECRET+NATO)");
    for name in ["carol", "dave", "anon"] {
        assert_eq!(seen[name], unclassified, "{what}: {name} (not cleared)");
    }
}

async fn withheld(node: &Node, token: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(node.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("rampart_cot_label_withheld_total ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// CoT routing, live: a cot-tls client cleared SECRET+NATO receives the SECRET//NATO entities
/// (relayed from cot-udp, and bridged from HTTP) and the unclassified ones; a CONFIDENTIAL
/// client, an unlisted CN and an anonymous cot-tcp client receive only the unclassified ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cot_live_routing_respects_clearance_and_releasability() {
    let dir = tempfile::tempdir().unwrap();
    let (node, token) = start(&dir);
    let seen = scenario(&node, &token, "live").await;
    check_seen(&seen, "live");
    // Two secret events, each withheld from carol, dave, anon and the cot-tcp sender.
    assert!(
        withheld(&node, &token).await >= 8.0,
        "withheld count too low"
    );
}

/// CoT routing, join snapshot: clients joining after the events get only the picture they
/// are cleared for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cot_join_snapshot_respects_clearance_and_releasability() {
    let dir = tempfile::tempdir().unwrap();
    let (node, token) = start(&dir);
    let seen = scenario(&node, &token, "snapshot").await;
    check_seen(&seen, "snapshot");
    assert!(
        withheld(&node, &token).await >= 6.0,
        "withheld count too low"
    );
}

/// Alerts rendered as CoT: an SOS alert about a SECRET//NATO entity carries that label and
/// reaches only the client cleared for it; one about an unclassified entity reaches everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cot_alerts_respect_clearance_and_releasability() {
    let dir = tempfile::tempdir().unwrap();
    let (node, token) = start(&dir);
    let out = scenario(&node, &token, "alerts").await;
    assert_eq!(out["secret_alert"]["type"], "b-a-o-tbl");
    let alerts = &out["alerts"];
    let about = |name: &str, who: &str| {
        alerts[name]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains(who))
    };
    assert!(about("alice", "SOS-SECRET") && about("alice", "SOS-UNCLASS"));
    for name in ["carol", "dave", "anon"] {
        assert!(about(name, "SOS-UNCLASS"), "{name}: {alerts}");
        assert!(
            !about(name, "SOS-SECRET"),
            "{name} got the SECRET alert: {alerts}"
        );
    }
}
