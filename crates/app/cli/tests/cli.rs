//! The command line: configuration precedence (file < environment < flags), help, the demo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Node, time};
use serde_json::{Value, json};

fn rampart(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_is_tidy_and_every_subcommand_has_help() {
    let out = rampart(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["serve", "demo", "bench", "config"] {
        assert!(text.contains(cmd), "{cmd} missing from --help");
        let sub = rampart(&[cmd, "--help"]);
        assert!(sub.status.success(), "{cmd} --help failed");
        assert!(!sub.stdout.is_empty());
    }
    let bad = rampart(&["serve", "--listen", "gopher=127.0.0.1:1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown listener kind"));
}

#[test]
fn config_file_environment_and_flags_layer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rampart.toml");
    std::fs::write(
        &file,
        "[picture]\nmax_entities = 7\nstale_grace_secs = 9\n[history]\nmax_bytes = 123456789\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let show = |args: &[&str], envs: &[(&str, &str)]| -> toml::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .envs(envs.iter().copied())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap()
    };
    let v = show(&["config", "--config", f], &[]);
    assert_eq!(v["picture"]["max_entities"].as_integer(), Some(7));
    assert_eq!(v["history"]["max_bytes"].as_integer(), Some(123456789));
    let v = show(&["config", "--config", f], &[("RAMPART_MAX_ENTITIES", "8")]);
    assert_eq!(v["picture"]["max_entities"].as_integer(), Some(8));
    assert_eq!(v["picture"]["stale_grace_secs"].as_integer(), Some(9));
    let v = show(
        &["config", "--config", f, "--max-entities", "9"],
        &[("RAMPART_MAX_ENTITIES", "8")],
    );
    assert_eq!(v["picture"]["max_entities"].as_integer(), Some(9));

    std::fs::write(&file, "[picture]\nmax_entitees = 7\n").unwrap();
    let out = rampart(&["config", "--config", f]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_entitees"));
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_limits_apply_to_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rampart.toml");
    std::fs::write(&file, "[picture]\nmax_entities = 1\n").unwrap();
    let node = Node::start(dir.path(), &["--config", file.to_str().unwrap()]);
    let r: Value = reqwest::Client::new()
        .post(node.url("/api/v1/reports"))
        .json(&json!([{"uid": "a", "lat": 1, "lon": 1, "time": time(0)}, {"uid": "b", "lat": 1, "lon": 1, "time": time(0)}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["accepted"], 1);
    assert_eq!(r["rejected"][0]["field"], "uid");
    assert!(
        r["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("full")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_shows_a_living_picture_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_cmd("demo", dir.path(), &["--entities", "2000"]);
    let c = reqwest::Client::new();
    let page = c
        .get(node.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // `/` is the operator console; its bundled script uses the live stream.
    let script = page
        .split('"')
        .find(|s| s.starts_with("assets/") && s.ends_with(".js"));
    let code = match script {
        Some(path) => c
            .get(node.url(&format!("/{path}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        // Built without npm: the fallback page still points at the stream.
        None => page.clone(),
    };
    assert!(
        code.contains("/api/v1/stream"),
        "the console must use the live stream"
    );
    let full = common::eventually(Duration::from_secs(20), async || {
        let v: Value = c
            .get(node.url("/api/v1/entities?limit=100000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["features"].as_array().unwrap().len() >= 2000
    })
    .await;
    assert!(full, "the demo never showed 2,000 entities");
    // Entities move: a vehicle's position changes between two looks.
    let pos = async || -> Value {
        let v: Value = c
            .get(node.url("/api/v1/entities?q=sim-veh&limit=20"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["geometry"]["coordinates"].clone())
            .collect()
    };
    let before = pos().await;
    let moved = common::eventually(Duration::from_secs(20), async || pos().await != before).await;
    assert!(moved, "demo vehicles do not move");
    let kinds: Value = c
        .get(node.url("/api/v1/entities?type=a-h&limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        kinds["features"].as_array().unwrap().len(),
        1,
        "the demo has hostile entities"
    );
}
