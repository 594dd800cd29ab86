//! The audit log end to end, against the real binary: changes made over HTTP and with
//! `rampart pki` are recorded, `rampart audit verify` accepts the untouched chain and names
//! the first bad record after a changed byte, a deleted line, or a cut-off last record, and
//! `rampart audit export` prints JSON lines (without device secrets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Node;
use serde_json::{Value, json};

fn rampart(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("RAMPART_LOG", "warn")
        .output()
        .unwrap()
}

fn verify(data: &Path) -> (bool, String, String) {
    let o = rampart(&["audit", "verify"], data);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_log_records_changes_and_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let node = Node::start(data, &[]);
    let http = reqwest::Client::new();
    let tail0: Value = http
        .get(node.url("/api/v1/audit/tail"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The node's start and its first configuration digest are the first two records.
    assert_eq!(tail0["seq"], 2);

    let r = http
        .post(node.url("/api/v1/devices"))
        .json(&json!({"id": "pump-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    let token = reg["token"].as_str().unwrap().to_string();
    let r = http
        .post(node.url("/api/v1/devices/pump-7/commands"))
        .json(&json!({"command": "reboot", "args": {"delay": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A refused change is not recorded.
    let r = http
        .post(node.url("/api/v1/devices/nobody/commands"))
        .json(&json!({"command": "reboot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let tail: Value = http
        .get(node.url("/api/v1/audit/tail"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tail["seq"], 4, "{tail}");
    let tail_hash = tail["hash"].as_str().unwrap().to_string();
    assert_eq!(tail_hash.len(), 64);
    node.stop();

    // Certificates issued and revoked with the CLI join the same chain.
    ok(&rampart(&["pki", "init"], data), "pki init");
    ok(
        &rampart(
            &["pki", "issue", "device", "sensor-1", "--p12-password", "pw"],
            data,
        ),
        "pki issue",
    );
    ok(&rampart(&["pki", "revoke", "sensor-1"], data), "pki revoke");

    let (good, out, err) = verify(data);
    assert!(good, "{out}{err}");
    assert!(out.starts_with("ok: 6 records, tail "), "{out}");

    let log = data.join("audit").join("audit.log");
    let original = std::fs::read(&log).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    let fourth: Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(fourth["hash"], tail_hash.as_str());
    assert_eq!(
        fourth["prev"],
        serde_json::from_str::<Value>(lines[2]).unwrap()["hash"]
    );

    // One byte changed in record 4 (the command's name).
    let at = text.find("reboot").unwrap();
    let mut flipped = original.clone();
    flipped[at] = b'R';
    std::fs::write(&log, &flipped).unwrap();
    let (good, out, err) = verify(data);
    assert!(!good, "a changed byte verified: {out}");
    assert!(err.contains("record 4 (line 4)"), "{err}");

    std::fs::write(&log, &original).unwrap();
    assert!(verify(data).0, "the restored log must verify");

    // A deleted line.
    let without_first = format!("{}\n", lines[1..].join("\n"));
    std::fs::write(&log, without_first).unwrap();
    let (good, _, err) = verify(data);
    assert!(!good);
    assert!(err.contains("record 1 (line 1)"), "{err}");

    // The last record cut off: the chain alone is intact, the head sidecar says otherwise.
    let without_last = format!("{}\n", lines[..5].join("\n"));
    std::fs::write(&log, without_last).unwrap();
    let (good, _, err) = verify(data);
    assert!(!good);
    assert!(
        err.contains("record 6") && err.contains("truncated"),
        "{err}"
    );

    // Export: JSON lines, in order, no device secret.
    std::fs::write(&log, &original).unwrap();
    let o = rampart(&["audit", "export"], data);
    ok(&o, "audit export");
    let exported = String::from_utf8(o.stdout).unwrap();
    assert!(
        !exported.contains(&token),
        "the device token leaked into the audit log"
    );
    let records: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "node.start",
            "config.change",
            "device.register",
            "command.create",
            "cert.issue",
            "cert.revoke"
        ]
    );
    // An open node: the API caller has no identity, so the actor is anonymous@address.
    assert_eq!(records[2]["actor"], "anonymous@127.0.0.1");
    assert_eq!(records[2]["target"], "pump-7");
    assert_eq!(records[3]["detail"]["command"], "reboot");
    assert_eq!(records[4]["target"], "sensor-1");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1);
    }

    // The node continues the chain after a restart, and refuses a broken one.
    let node = Node::start(data, &[]);
    let r = http
        .delete(node.url("/api/v1/devices/pump-7"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    node.stop();
    let (good, out, err) = verify(data);
    assert!(good, "{out}{err}");
    // The restart adds its node.start (the configuration is unchanged: no config.change).
    assert!(out.starts_with("ok: 8 records"), "{out}");
}

#[test]
fn node_refuses_to_continue_a_broken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(&rampart(&["pki", "init"], data), "pki init");
    for name in ["a1", "a2"] {
        ok(
            &rampart(
                &["pki", "issue", "user", name, "--p12-password", "pw"],
                data,
            ),
            "pki issue",
        );
    }
    assert!(verify(data).0);
    let log = data.join("audit").join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, format!("{}\n{}\n", lines[1], lines[0])).unwrap();
    let (good, _, err) = verify(data);
    assert!(!good);
    assert!(err.contains("record 1 (line 1)"), "{err}");
    // Issuing refuses too: no certificate goes unaudited into a broken chain.
    let o = rampart(
        &["pki", "issue", "user", "a3", "--p12-password", "pw"],
        data,
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
