//! Identity and transport security end to end, against the real binary and real third-party
//! tools: `openssl s_client` and `curl` (Debian) over `cot-tls` and `https`, pytak with a
//! PKCS#12 bundle, Python `cryptography` signing an envelope, and signed CoT over `cot-udp`.
//!
//! Certificates are issued with `rampart pki …` into the node's data directory, as an operator
//! would. Each refusal case is paired with an acceptance case on the same node, so a test
//! cannot pass by refusing everything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Node, eventually, python, time};
use rampart_pki::DeviceSigningKey;
use serde_json::Value;

fn rampart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

/// Runs `rampart pki ARGS --data DATA` and returns stdout; panics on failure.
fn pki(data: &Path, args: &[&str]) -> String {
    let out = rampart()
        .arg("pki")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rampart pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Files {
    ca: PathBuf,
    issued: PathBuf,
}

impl Files {
    fn new(data: &Path) -> Self {
        Files {
            ca: data.join("pki/ca.crt"),
            issued: data.join("pki/issued"),
        }
    }
    fn cert(&self, name: &str) -> PathBuf {
        self.issued.join(name).join(format!("{name}.crt"))
    }
    fn key(&self, name: &str) -> PathBuf {
        self.issued.join(name).join(format!("{name}.key"))
    }
}

/// A node with `https` (client certificates required) and `cot-tls`, revocations polled
/// every second, and the harness's plain `http` for checking the picture.
fn start_tls_node(dir: &tempfile::TempDir, cot_udp: bool, extra_toml: &str) -> Node {
    let config = dir.path().join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\nrevocation_poll_secs = 1\nhttps_client_auth = \"required\"\n{extra_toml}"
        ),
    )
    .unwrap();
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "https=127.0.0.1:0",
        "--listen",
        "cot-tls=127.0.0.1:0",
    ];
    if cot_udp {
        args.extend(["--listen", "cot-udp=127.0.0.1:0"]);
    }
    Node::start(&dir.path().join("data"), &args)
}

fn cot_event(uid: &str) -> String {
    format!(
        "<event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{t}\" start=\"{t}\" stale=\"{s}\">\
         <point lat=\"48.85\" lon=\"2.35\" hae=\"35\" ce=\"10\" le=\"10\"/>\
         <detail><contact callsign=\"{uid}\"/></detail></event>",
        t = time(0),
        s = time(300_000)
    )
}

/// The entity's properties once it is in the picture (`None` after `wait`).
async fn entity(node: &Node, uid: &str, wait: Duration) -> Option<Value> {
    let url = node.url(&format!("/api/v1/entities/{uid}"));
    let mut found = None;
    eventually(wait, async || {
        let Ok(r) = reqwest::get(&url).await else {
            return false;
        };
        if r.status() != 200 {
            return false;
        }
        found = r
            .json::<Value>()
            .await
            .ok()
            .map(|v| v["properties"].clone());
        found.is_some()
    })
    .await;
    found
}

/// The value of `rampart_NAME{reason="REASON"}` in `/metrics` (0 if absent).
async fn metric(node: &Node, name: &str, reason: &str) -> f64 {
    let text = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let needle = format!("{name}{{reason=\"{reason}\"}}");
    text.lines()
        .find(|l| l.contains(&needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `openssl s_client` to `addr` with an optional client certificate; stdin stays open.
fn s_client(addr: SocketAddr, ca: &Path, id: Option<(&Path, &Path)>, extra: &[&str]) -> Child {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(ca)
        .args(extra);
    if let Some((cert, key)) = id {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (apt-get install openssl)")
}

/// Waits up to `limit` for `child` to exit; true if it did.
fn exits_within(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Sends one CoT event over `cot-tls` with `openssl s_client`. `Ok` if it reached the
/// picture (with the connection's identity), `Err(openssl's output)` if the server refused.
async fn cot_over_openssl(
    node: &Node,
    f: &Files,
    uid: &str,
    id: Option<(&Path, &Path)>,
    extra: &[&str],
) -> Result<Value, String> {
    let mut child = s_client(node.listener("cot-tls"), &f.ca, id, extra);
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(cot_event(uid).as_bytes())
        .unwrap();
    let found = entity(node, uid, Duration::from_secs(4)).await;
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    match found {
        Some(e) => Ok(e),
        None => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// `curl` GET of `/healthz` over `https`; the HTTP status, or `Err(curl's error)`.
fn curl(node: &Node, f: &Files, id: Option<(&Path, &Path)>) -> Result<u16, String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .arg("--cacert")
    .arg(&f.ca);
    if let Some((cert, key)) = id {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cmd
        .arg(format!("https://{}/healthz", node.listener("https")))
        .output()
        .expect("curl (apt-get install curl)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_openssl_and_curl() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_tls_node(&dir, false, "");
    let f = Files::new(&node.data);
    assert!(f.ca.exists(), "the node created its CA on first start");
    let now = chrono_now();
    pki(
        &node.data,
        &["issue", "user", "alice", "--p12-password", "pw"],
    );
    pki(
        &node.data,
        &["issue", "user", "bob", "--p12-password", "pw"],
    );
    pki(
        &node.data,
        &[
            "issue",
            "device",
            "old",
            "--not-before-unix",
            &(now - 2 * 86_400).to_string(),
            "--not-after-unix",
            &(now - 86_400).to_string(),
        ],
    );
    // A second CA with a user of the same name.
    let other = dir.path().join("other");
    pki(&other, &["init"]);
    pki(&other, &["issue", "user", "alice"]);
    let foreign = Files::new(&other);
    let alice = (f.cert("alice"), f.key("alice"));
    let bob = (f.cert("bob"), f.key("bob"));
    let old = (f.cert("old"), f.key("old"));
    let mallory = (foreign.cert("alice"), foreign.key("alice"));
    let id = |p: &(PathBuf, PathBuf)| Some((p.0.clone(), p.1.clone()));

    // HTTPS with curl.
    assert_eq!(curl(&node, &f, as_ref(&id(&alice))), Ok(200));
    assert_eq!(curl(&node, &f, as_ref(&id(&bob))), Ok(200));
    for (what, who) in [
        ("no certificate", None),
        ("a certificate of another CA", id(&mallory)),
        ("an expired certificate", id(&old)),
    ] {
        let r = curl(&node, &f, as_ref(&who));
        assert!(r.is_err(), "https let in a client with {what}: {r:?}");
    }

    // cot-tls with openssl s_client, TLS 1.3 and 1.2.
    let e = cot_over_openssl(&node, &f, "S-alice", as_ref(&id(&alice)), &[])
        .await
        .unwrap();
    assert_eq!(e["provenance"]["source"], "cot-tls");
    assert_eq!(e["provenance"]["identity"], "alice");
    let e = cot_over_openssl(&node, &f, "S-bob12", as_ref(&id(&bob)), &["-tls1_2"])
        .await
        .unwrap();
    assert_eq!(e["provenance"]["identity"], "bob");
    for (uid, what, who) in [
        ("S-none", "no certificate", None),
        ("S-other", "a certificate of another CA", id(&mallory)),
        ("S-old", "an expired certificate", id(&old)),
    ] {
        let r = cot_over_openssl(&node, &f, uid, as_ref(&who), &[]).await;
        assert!(r.is_err(), "cot-tls let in a client with {what}");
    }

    // Revocation: bob's next connection is refused on both listeners.
    pki(&node.data, &["revoke", "bob"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = curl(&node, &f, as_ref(&id(&bob)));
    assert!(r.is_err(), "https let in a revoked certificate: {r:?}");
    let r = cot_over_openssl(&node, &f, "S-bob-revoked", as_ref(&id(&bob)), &[]).await;
    assert!(r.is_err(), "cot-tls let in a revoked certificate");
    // … while alice still gets in.
    assert_eq!(curl(&node, &f, as_ref(&id(&alice))), Ok(200));
    let list = pki(&node.data, &["list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("bob") && l.contains("revoked"))
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("old") && l.contains("expired"))
    );
    assert!(metric(&node, "https_tls_refusals_total", "handshake").await >= 3.0);
}

fn as_ref(p: &Option<(PathBuf, PathBuf)>) -> Option<(&Path, &Path)> {
    p.as_ref().map(|(c, k)| (c.as_path(), k.as_path()))
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_closes_live_connections() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_tls_node(&dir, false, "");
    let f = Files::new(&node.data);
    pki(&node.data, &["issue", "user", "carol"]);
    pki(&node.data, &["issue", "user", "dave"]);
    let carol = s_client(
        node.listener("cot-tls"),
        &f.ca,
        Some((&f.cert("carol"), &f.key("carol"))),
        &[],
    );
    let mut dave = s_client(
        node.listener("cot-tls"),
        &f.ca,
        Some((&f.cert("dave"), &f.key("dave"))),
        &[],
    );
    let mut carol = carol;
    for (child, uid) in [(&mut carol, "L-carol"), (&mut dave, "L-dave")] {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(cot_event(uid).as_bytes()).unwrap();
        stdin.flush().unwrap();
        assert!(entity(&node, uid, Duration::from_secs(5)).await.is_some());
    }
    pki(&node.data, &["revoke", "carol"]);
    // Polled every second: the server closes carol's connection, and only hers.
    assert!(
        exits_within(&mut carol, Duration::from_secs(6)),
        "the revoked client's live connection stayed open"
    );
    assert!(!exits_within(&mut dave, Duration::from_millis(500)));
    assert!(metric(&node, "cot_disconnects_total", "revoked").await >= 1.0);
    let _ = dave.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn pytak_connects_with_a_pkcs12_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_tls_node(&dir, false, "");
    let f = Files::new(&node.data);
    pki(
        &node.data,
        &["issue", "user", "atak-1", "--p12-password", "atakatak"],
    );
    let p12 = f.issued.join("atak-1/atak-1.p12");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/security/pytak_p12.py");
    let out = Command::new(python())
        .arg(script)
        .arg(node.listener("cot-tls").to_string())
        .arg(&p12)
        .arg("atakatak")
        .arg(&f.ca)
        .arg("PYTAK-P12")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pytak: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = entity(&node, "PYTAK-P12", Duration::from_secs(10))
        .await
        .expect("pytak's event reached the picture");
    assert_eq!(e["provenance"]["identity"], "atak-1");
    // The same bundle with a wrong password does not open.
    let out = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/security/pytak_p12.py"))
        .arg(node.listener("cot-tls").to_string())
        .arg(&p12)
        .arg("wrong")
        .arg(&f.ca)
        .arg("PYTAK-BADPW")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A certificate owns the uids it reports its position under: once alice's client has sent
/// its PLI as `ANDROID-alice`, mallory's certificate (or a client without one) cannot move
/// that entity, and is counted; mallory's own uid still works.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_owns_the_uids_it_reports_under() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_tls_node(&dir, false, "");
    let f = Files::new(&node.data);
    for name in ["alice", "mallory"] {
        pki(&node.data, &["issue", "user", name, "--p12-password", "pw"]);
    }
    let alice = (f.cert("alice"), f.key("alice"));
    let mallory = (f.cert("mallory"), f.key("mallory"));
    let e = cot_over_openssl(&node, &f, "ANDROID-alice", Some((&alice.0, &alice.1)), &[])
        .await
        .expect("alice's PLI reached the picture");
    assert_eq!(e["provenance"]["identity"], "alice");

    // Mallory sends a PLI under alice's uid, from elsewhere, then one under her own.
    let spoof = format!(
        "<event version=\"2.0\" uid=\"ANDROID-alice\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{t}\" start=\"{t}\" stale=\"{s}\">\
         <point lat=\"10.5\" lon=\"20.5\" hae=\"0\" ce=\"10\" le=\"10\"/>\
         <detail><contact callsign=\"ALICE\"/></detail></event>",
        t = time(1_000),
        s = time(300_000)
    );
    let mut child = s_client(
        node.listener("cot-tls"),
        &f.ca,
        Some((&mallory.0, &mallory.1)),
        &[],
    );
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(spoof.as_bytes()).unwrap();
    stdin
        .write_all(cot_event("ANDROID-mallory").as_bytes())
        .unwrap();
    let own = entity(&node, "ANDROID-mallory", Duration::from_secs(10)).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        own.expect("mallory's own uid works")["provenance"]["identity"],
        "mallory"
    );
    // Her own PLI came after the spoof on the same connection: the spoof was handled.
    let e = entity(&node, "ANDROID-alice", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        e["provenance"]["identity"], "alice",
        "mallory moved alice: {e}"
    );
    let text = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("rampart_cot_uid_refused_total ") && l.ends_with(" 1")),
        "refusal not counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_cot_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    pki(&data, &["init"]);
    pki(&data, &["issue", "device", "radio-1"]);
    pki(&data, &["issue", "device", "radio-2"]);
    let config = dir.path().join("rampart.toml");
    std::fs::write(
        &config,
        "[cot]\nrequire_signatures = true\n[security]\nrevocation_poll_secs = 1\n",
    )
    .unwrap();
    let node = Node::start(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "cot-udp=127.0.0.1:0",
        ],
    );
    let key_file = |n: &str| data.join(format!("pki/issued/{n}/{n}.sign.key"));
    let k1 =
        DeviceSigningKey::from_pkcs8_pem(&std::fs::read_to_string(key_file("radio-1")).unwrap())
            .unwrap();
    let k2 =
        DeviceSigningKey::from_pkcs8_pem(&std::fs::read_to_string(key_file("radio-2")).unwrap())
            .unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = node.listener("cot-udp");
    let now = || chrono_now() * 1000;
    let send = |d: &[u8]| {
        sock.send_to(d, to).unwrap();
    };

    // Valid.
    let good = k1.seal("radio-1", 1, now(), cot_event("U-good").as_bytes());
    send(&good);
    let e = entity(&node, "U-good", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e["provenance"]["identity"], "radio-1");
    assert_eq!(e["provenance"]["source"], "cot-udp");
    // Unsigned, wrong key, a flipped byte, a replay, stale and future timestamps.
    send(cot_event("U-unsigned").as_bytes());
    send(&k2.seal("radio-1", 2, now(), cot_event("U-wrongkey").as_bytes()));
    let mut flipped = k1.seal("radio-1", 3, now(), cot_event("U-flipped").as_bytes());
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    send(&flipped);
    send(&good);
    send(&k1.seal(
        "radio-1",
        4,
        now() - 120_000,
        cot_event("U-stale").as_bytes(),
    ));
    send(&k1.seal(
        "radio-1",
        5,
        now() + 120_000,
        cot_event("U-future").as_bytes(),
    ));
    send(&k1.seal("nobody", 6, now(), cot_event("U-unknown").as_bytes()));
    // A datagram signed by Python `cryptography` with the PEM key file, as a radio gateway
    // would: proves the envelope and key format are not Rust-only.
    let py = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/security/sign_envelope.py"))
        .arg(key_file("radio-2"))
        .arg("radio-2")
        .arg("7")
        .arg(cot_event("U-python"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    send(&py.stdout);
    let e = entity(&node, "U-python", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e["provenance"]["identity"], "radio-2");
    for (reason, uid) in [
        ("unsigned", "U-unsigned"),
        ("bad_signature", "U-wrongkey"),
        ("replay", ""),
        ("stale", "U-stale"),
        ("future", "U-future"),
        ("unknown_key", "U-unknown"),
    ] {
        let ok = eventually(Duration::from_secs(5), async || {
            metric(&node, "cot_signature_refusals_total", reason).await >= 1.0
        })
        .await;
        assert!(ok, "no {reason} refusal counted");
        if !uid.is_empty() {
            assert!(
                entity(&node, uid, Duration::from_millis(100))
                    .await
                    .is_none()
            );
        }
    }
    // Two bad signatures: the wrong key and the flipped byte.
    assert!(metric(&node, "cot_signature_refusals_total", "bad_signature").await >= 2.0);
    assert!(
        entity(&node, "U-flipped", Duration::from_millis(100))
            .await
            .is_none()
    );
    // Revoking the device removes its key within the polling interval.
    pki(&data, &["revoke", "radio-1"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    send(&k1.seal(
        "radio-1",
        100,
        now(),
        cot_event("U-after-revoke").as_bytes(),
    ));
    let ok = eventually(Duration::from_secs(5), async || {
        metric(&node, "cot_signature_refusals_total", "unknown_key").await >= 2.0
    })
    .await;
    assert!(ok, "a revoked device's signature was not refused");
}

/// Spawns `rampart serve --secure` and returns it with its listeners.
fn start_secure(data: &Path, extra: &[&str]) -> (Child, Vec<(String, SocketAddr)>) {
    let mut child = rampart()
        .args(["serve", "--secure", "--data"])
        .arg(data)
        .args(extra)
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut listeners = Vec::new();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some((kind, addr)) = line
            .strip_prefix("rampart: listening ")
            .and_then(|r| r.split_once(' '))
        {
            listeners.push((kind.to_string(), addr.parse().unwrap()));
        } else if line.starts_with("rampart: open ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, listeners)
}

#[test]
fn secure_flag_turns_on_the_secure_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Plaintext listeners are refused outright.
    let out = rampart()
        .args(["serve", "--secure", "--data"])
        .arg(&data)
        .args(["--listen", "http=127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secure"));
    let out = rampart().args(["config", "--secure"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("https=127.0.0.1:8443"), "{text}");
    assert!(text.contains("require_signatures = true"), "{text}");

    let (mut child, listeners) = start_secure(
        &data,
        &[
            "--listen",
            "https=127.0.0.1:0",
            "--listen",
            "cot-udp=127.0.0.1:0",
        ],
    );
    let https = listeners
        .iter()
        .find(|(k, _)| k == "https")
        .map(|(_, a)| *a)
        .expect("https listener");
    let f = Files::new(&data);
    assert!(f.ca.exists() && f.cert("rampart-server").exists());
    pki(&data, &["issue", "user", "erin"]);
    let get = |id: bool| {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg("--cacert")
        .arg(&f.ca);
        if id {
            cmd.arg("--cert")
                .arg(f.cert("erin"))
                .arg("--key")
                .arg(f.key("erin"));
        }
        cmd.arg(format!("https://{https}/healthz"))
            .output()
            .unwrap()
    };
    let with = get(true);
    assert_eq!(String::from_utf8_lossy(&with.stdout), "200");
    // Client certificates are required on https under --secure.
    assert!(!get(false).status.success());
    // A second start keeps the same CA.
    let ca = std::fs::read(&f.ca).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, _) = start_secure(&data, &["--listen", "https=127.0.0.1:0"]);
    assert_eq!(std::fs::read(&f.ca).unwrap(), ca);
    let _ = child.kill();
    let _ = child.wait();
}

/// An NMEA sentence with its checksum.
fn nmea(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{sum:02X}\r\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_nmea_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    pki(&data, &["init"]);
    pki(&data, &["issue", "device", "gps-9"]);
    let config = dir.path().join("rampart.toml");
    std::fs::write(&config, "[security]\nfeeds_require_signatures = true\n").unwrap();
    let node = Node::start(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "nmea-udp=127.0.0.1:0",
        ],
    );
    let key = DeviceSigningKey::from_pkcs8_pem(
        &std::fs::read_to_string(data.join("pki/issued/gps-9/gps-9.sign.key")).unwrap(),
    )
    .unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = node.listener("nmea-udp");
    let epoch = |offset_s: i64| {
        let t = chrono_now() + offset_s;
        let (hh, mm, ss) = ((t / 3600) % 24, (t / 60) % 60, t % 60);
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = t.div_euclid(86_400) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let time = format!("{hh:02}{mm:02}{ss:02}.00");
        let date = format!("{d:02}{m:02}{:02}", y % 100);
        format!(
            "{}{}",
            nmea(&format!(
                "GPGGA,{time},4851.0000,N,00221.0000,E,1,08,0.9,35.0,M,47.0,M,,"
            )),
            nmea(&format!(
                "GPRMC,{time},A,4851.0000,N,00221.0000,E,0.5,54.7,{date},,,A"
            ))
        )
    };
    // Unsigned: refused.
    sock.send_to(epoch(-3).as_bytes(), to).unwrap();
    // A flipped byte: refused.
    let mut bad = key.seal("gps-9", 1, chrono_now() * 1000, epoch(-2).as_bytes());
    bad[30] ^= 1;
    sock.send_to(&bad, to).unwrap();
    for (seq, offset) in [(2u64, -1i64), (3, 0)] {
        let env = key.seal("gps-9", seq, chrono_now() * 1000, epoch(offset).as_bytes());
        sock.send_to(&env, to).unwrap();
    }
    let e = entity(&node, "nmea-127.0.0.1", Duration::from_secs(10))
        .await
        .expect("the signed NMEA epoch reached the picture");
    assert_eq!(e["provenance"]["source"], "nmea-udp");
    for reason in ["unsigned", "bad_signature"] {
        assert!(
            metric(&node, "feed_signature_refusals_total", reason).await >= 1.0,
            "no {reason} refusal counted"
        );
    }
}
