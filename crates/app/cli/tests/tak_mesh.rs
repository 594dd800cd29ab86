//! TAK mesh SA (`--listen cot-mesh=GROUP:PORT`) end to end, against the real binary: a mesh
//! peer built on PyPI `takproto` (mesh-framed TAK protocol v1) multicasting on 127.0.0.1 and
//! pytak streaming clients, driven by `tests/tak/tak_mesh.py`.
//!
//! Each test joins 239.2.3.1 on a free port with `[cot] mesh_interface = "127.0.0.1"` (multicast
//! on loopback), so tests never hear each other or a real mesh. The tests fail — never skip —
//! when the interpreter is missing: run `scripts/python-env` (or set `RAMPART_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Node, close_to, entity, metrics, python, run_json, series};
use serde_json::Value;

const GROUP: &str = "239.2.3.1";

/// A UDP port free right now (bound to port 0, then released).
fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Starts a node with `cot-tcp` and `cot-mesh` on a free port, the mesh on loopback.
fn start(dir: &tempfile::TempDir, proxy: bool) -> (Node, String) {
    let group = format!("{GROUP}:{}", free_udp_port());
    let path = dir.path().join("rampart.toml");
    std::fs::write(
        &path,
        format!("[cot]\nmesh_interface = \"127.0.0.1\"\nmesh_proxy = {proxy}\n"),
    )
    .unwrap();
    let mesh = format!("cot-mesh={group}");
    let node = Node::start(
        &dir.path().join("data"),
        &[
            "--listen",
            "cot-tcp=127.0.0.1:0",
            "--listen",
            &mesh,
            "--config",
            path.to_str().unwrap(),
        ],
    );
    (node, group)
}

/// Runs the mesh scenario against `node`; `expect_out` waits for the proxy's datagram.
async fn scenario(node: &Node, group: &str, expect_out: bool) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tak/tak_mesh.py");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .args(["--tcp", &node.listener("cot-tcp").to_string()])
        .args(["--group", group]);
    if expect_out {
        cmd.arg("--expect-out");
    }
    run_json(cmd, "TAK mesh scenario").await
}

async fn metric(node: &Node, name: &str) -> f64 {
    series(&metrics(node).await, name)
}

/// (a) A takproto mesh datagram reaches a TCP client and the picture; (b) with the mesh proxy,
/// a TCP client's event leaves on the group as a mesh datagram takproto decodes; (c) the mesh
/// peer's event is not sent back to the mesh, and the proxy's looped-back datagram is not
/// taken for a new event (the TCP client does not get its own event back).
#[tokio::test(flavor = "multi_thread")]
async fn mesh_in_reaches_clients_and_the_proxy_sends_other_events_out_without_loops() {
    let dir = tempfile::tempdir().unwrap();
    let (node, group) = start(&dir, true);
    let out = scenario(&node, &group, true).await;

    // (a) The mesh peer's PLI, at the TCP client and in the picture.
    let bob = &out["bob_got"];
    assert_eq!(bob["callsign"], "MESHPEER");
    close_to("lat", &bob["lat"], 59.3293);
    let peer = entity(&node, "ANDROID-mesh-peer").await;
    assert_eq!(peer["callsign"], "MESHPEER");
    assert_eq!(peer["provenance"]["source"], "cot-mesh");
    close_to("lon", &peer["lon"], 18.0686);
    close_to("battery", &peer["attributes"]["battery"], 61.0);

    // (b) Alice's PLI on the group, decoded by takproto; (c) and nothing else: not the mesh
    // peer's PLI, not a second copy.
    let sent = out["mesh_out"].as_array().unwrap();
    assert_eq!(
        sent.len(),
        1,
        "expected exactly alice's PLI on the mesh: {out}"
    );
    let a = &sent[0];
    assert_eq!(a["uid"], "ANDROID-alice-tcp", "{out}");
    assert_eq!(a["callsign"], "ALICE");
    assert_eq!(a["type"], "a-f-G-U-C");
    close_to("lat", &a["lat"], 60.1699);
    close_to("lon", &a["lon"], 24.9384);
    close_to("battery", &a["battery"], 71.0);
    assert_ne!(a["from"], out["sender"]);
    // The script's own datagram looped back to it: multicast on loopback really worked.
    assert_eq!(out["own_datagrams_seen"], 1, "{out}");

    // The proxy's datagram came back to the node's group socket and was dropped as its own:
    // alice did not get her PLI back, and its provenance is still cot-tcp.
    let alice_uids = out["alice_uids"].as_array().unwrap();
    assert!(
        !alice_uids.iter().any(|u| u == "ANDROID-alice-tcp"),
        "alice got her own PLI back through the mesh: {alice_uids:?}"
    );
    assert!(alice_uids.iter().any(|u| u == "ANDROID-mesh-peer"));
    let alice = entity(&node, "ANDROID-alice-tcp").await;
    assert_eq!(alice["provenance"]["source"], "cot-tcp");
    assert_eq!(metric(&node, "rampart_cot_mesh_sent_total").await, 1.0);
    assert_eq!(metric(&node, "rampart_cot_mesh_echoes_total").await, 1.0);
}

/// Without `mesh_proxy` (the default) the node only listens on the group.
#[tokio::test(flavor = "multi_thread")]
async fn without_the_proxy_nothing_leaves_on_the_mesh() {
    let dir = tempfile::tempdir().unwrap();
    let (node, group) = start(&dir, false);
    let out = scenario(&node, &group, false).await;
    assert_eq!(out["bob_got"]["callsign"], "MESHPEER");
    assert_eq!(out["mesh_out"], serde_json::json!([]), "{out}");
    assert_eq!(out["own_datagrams_seen"], 1, "{out}");
    assert_eq!(metric(&node, "rampart_cot_mesh_sent_total").await, 0.0);
}

/// (d) The mesh is off unless `--listen cot-mesh` is given, the proxy is off by default, and a
/// bad interface is refused with an error naming the setting.
#[test]
fn the_mesh_is_off_by_default_and_its_interface_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: toml::Value = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(cfg["cot"]["mesh_proxy"].as_bool(), Some(false));
    assert_eq!(cfg["cot"]["mesh_interface"].as_str(), Some("0.0.0.0"));
    let listen = cfg.get("listen").map(|l| l.to_string()).unwrap_or_default();
    assert!(!listen.contains("cot-mesh"), "{listen}");

    for (bad, needle) in [
        ("mesh_interface = \"eth0\"", "cot.mesh_interface"),
        ("mesh_interface = \"239.2.3.1\"", "cot.mesh_interface"),
        ("mesh_ttl = 300", "cot.mesh_ttl"),
        (
            "max_mesh_datagram_bytes = 70000",
            "cot.max_mesh_datagram_bytes",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, format!("[cot]\n{bad}\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["config", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(err.contains(needle), "{bad}: {err}");
    }
}
