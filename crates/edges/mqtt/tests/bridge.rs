//! The MQTT client and the bridge against a real Mosquitto (Debian `mosquitto`, installed by
//! `.ci/run`), started by each test on a free loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rampart_edge_mqtt::bridge::{BridgeConfig, BridgeStats, run_bridge};
use rampart_edge_mqtt::client::{
    self, Client, ConnectOptions, Incoming, SubscribeResult, Subscription, Version,
};
use rmqtt_codec::types::{Publish, QoS};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// A private Mosquitto; killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, tempfile::tempdir().unwrap(), "")
    }

    /// Starts on a free port with `extra` lines after the listener's (e.g. TLS files).
    fn start_with(extra: &str, dir: tempfile::TempDir) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, dir, extra)
    }

    fn start_on(port: u16, dir: tempfile::TempDir, extra: &str) -> Self {
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{extra}\nallow_anonymous true\npersistence false\n"
            ),
        )
        .unwrap();
        // Debian installs it in /usr/sbin, which is not on every user's PATH.
        let bin = if std::path::Path::new("/usr/sbin/mosquitto").exists() {
            "/usr/sbin/mosquitto"
        } else {
            "mosquitto"
        };
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is not installed (apt-get install mosquitto, see .ci/run)");
        let m = Mosquitto { child, port, dir };
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops this instance and starts a new one on the same port.
    fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        Self::start_on(port, dir, "")
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn client(addr: &str, id: &str, version: Version) -> (Client, Incoming) {
    let mut o = ConnectOptions::new(id);
    o.version = version;
    client::connect(addr, o).await.unwrap()
}

async fn next(incoming: &mut Incoming) -> Publish {
    tokio::time::timeout(WAIT, incoming.recv())
        .await
        .expect("no message in time")
        .expect("connection closed")
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn roundtrip(version: Version) {
    let m = Mosquitto::start();
    rt().block_on(async {
        let (sub, mut inbox) = client(&m.addr(), "sub", version).await;
        let granted = sub
            .subscribe(&[
                Subscription::new("t/#", QoS::AtLeastOnce),
                Subscription::new("q2/#", QoS::ExactlyOnce),
            ])
            .await
            .unwrap();
        assert_eq!(
            granted,
            vec![
                SubscribeResult::Granted(QoS::AtLeastOnce),
                SubscribeResult::Granted(QoS::ExactlyOnce)
            ]
        );
        let (publ, _) = client(&m.addr(), "pub", version).await;
        publ.publish(client::message("t/a", "zero", QoS::AtMostOnce, false))
            .await
            .unwrap();
        publ.publish_acked(client::message("t/b", "one", QoS::AtLeastOnce, false))
            .await
            .unwrap();
        // Pipelined QoS 1: many more than the window, without waiting for each PUBACK.
        let n = 3 * publ.window() as usize;
        for i in 0..n {
            publ.publish(client::message(
                "t/seq",
                i.to_string(),
                QoS::AtLeastOnce,
                false,
            ))
            .await
            .unwrap();
        }
        publ.wait_acked().await.unwrap();
        assert_eq!(publ.stats().acked.load(Ordering::Relaxed), n as u64 + 1);

        let p = next(&mut inbox).await;
        assert_eq!(
            (&p.topic[..], &p.payload[..], p.qos),
            ("t/a", &b"zero"[..], QoS::AtMostOnce)
        );
        let p = next(&mut inbox).await;
        assert_eq!(
            (&p.topic[..], &p.payload[..], p.qos),
            ("t/b", &b"one"[..], QoS::AtLeastOnce)
        );
        for i in 0..n {
            let p = next(&mut inbox).await;
            assert_eq!(p.payload, i.to_string().as_bytes(), "message {i} in order");
        }

        // A QoS 2 publish from a third-party client arrives exactly once (PUBREC / PUBREL /
        // PUBCOMP handled by the client).
        let v = if version == Version::V5 {
            "mqttv5"
        } else {
            "mqttv311"
        };
        let port = m.port.to_string();
        let status = tokio::task::spawn_blocking(move || {
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port, "-V", v])
                .args(["-q", "2", "-t", "q2/x", "-m", "exactly"])
                .status()
                .expect("mosquitto_pub is not installed (mosquitto-clients)")
        })
        .await
        .unwrap();
        assert!(status.success());
        let p = next(&mut inbox).await;
        assert_eq!(
            (&p.topic[..], &p.payload[..], p.qos),
            ("q2/x", &b"exactly"[..], QoS::ExactlyOnce)
        );
        // Invalid topics are refused before anything is sent.
        assert!(matches!(
            publ.publish(client::message("a/+", "x", QoS::AtMostOnce, false))
                .await,
            Err(client::Error::InvalidTopic { .. })
        ));
        publ.disconnect().await.unwrap();
        assert!(publ.is_closed());
        sub.disconnect().await.unwrap();
        assert!(
            inbox.recv().await.is_none(),
            "incoming ends after disconnect"
        );
    });
}

#[test]
fn client_round_trip_mqtt311() {
    roundtrip(Version::V311);
}

#[test]
fn client_round_trip_mqtt5() {
    roundtrip(Version::V5);
}

#[test]
fn keepalive_pings_keep_an_idle_connection_open() {
    let m = Mosquitto::start();
    rt().block_on(async {
        let mut o = ConnectOptions::new("idle");
        o.keepalive_secs = 1;
        let (c, mut inbox) = client::connect(&m.addr(), o).await.unwrap();
        c.subscribe(&[Subscription::new("ka", QoS::AtMostOnce)])
            .await
            .unwrap();
        // Mosquitto closes a client silent for 1.5 keepalive periods; PINGREQs prevent it.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(!c.is_closed(), "{:?}", c.close_reason());
        c.publish_acked(client::message("ka", "still here", QoS::AtLeastOnce, false))
            .await
            .unwrap();
        assert_eq!(next(&mut inbox).await.payload, &b"still here"[..]);
    });
}

#[test]
fn refused_connection_is_a_typed_error() {
    let m = Mosquitto::start();
    rt().block_on(async {
        // An empty client id without clean session is refused by a 3.1.1 broker.
        let mut o = ConnectOptions::new("");
        o.clean_start = false;
        let e = client::connect(&m.addr(), o).await.unwrap_err();
        assert!(matches!(e, client::Error::Refused(_)), "{e}");
    });
}

#[test]
fn client_over_tls() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let m = Mosquitto::start_with(
        &format!("certfile {}\nkeyfile {}", cert.display(), key.display()),
        dir,
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = |name: &str| client::TlsOptions {
        config: Arc::new(config.clone()),
        server_name: name.to_string(),
    };
    rt().block_on(async {
        let mut o = ConnectOptions::new("tls-client");
        o.version = Version::V5;
        o.tls = Some(tls("localhost"));
        let (c, mut inbox) = client::connect(&m.addr(), o.clone()).await.unwrap();
        c.subscribe(&[Subscription::new("tls/#", QoS::AtLeastOnce)])
            .await
            .unwrap();
        c.publish_acked(client::message("tls/a", "secret", QoS::AtLeastOnce, false))
            .await
            .unwrap();
        let p = next(&mut inbox).await;
        assert_eq!((&p.topic[..], &p.payload[..]), ("tls/a", &b"secret"[..]));
        c.disconnect().await.unwrap();
        // The certificate is checked: a name it does not carry is refused.
        o.tls = Some(tls("other.example"));
        let e = client::connect(&m.addr(), o).await.unwrap_err();
        assert!(matches!(e, client::Error::Io(_)), "{e}");
    });
}

fn bridge_config(addr: &str, version: u8) -> BridgeConfig {
    toml::from_str(&format!(
        r#"
        name = "test"
        address = "{addr}"
        version = {version}
        subscribe = [{{ filter = "sensors/#", qos = 1 }}, {{ filter = "out/#", qos = 1 }}]
        publish = ["out/#"]
        remote_prefix = "site/"
        local_prefix = "loc/"
        reconnect_min_ms = 50
        reconnect_max_ms = 200
        "#
    ))
    .unwrap()
}

fn local(topic: &str, payload: &'static str, qos: QoS) -> Publish {
    client::message(topic, payload, qos, false)
}

fn bridge_both_ways(version: u8) {
    let m = Mosquitto::start();
    let cv = if version == 5 {
        Version::V5
    } else {
        Version::V311
    };
    rt().block_on(async {
        let (to_local, mut local_in) = mpsc::channel(64);
        let (local_out, from_local) = mpsc::channel(64);
        let stats = Arc::new(BridgeStats::default());
        let task = tokio::spawn(run_bridge(
            bridge_config(&m.addr(), version),
            to_local,
            from_local,
            stats.clone(),
        ));
        wait_for("bridge connected", || {
            stats.connected.load(Ordering::Relaxed) == 1
        })
        .await;

        // Remote -> local, with the prefixes rewritten.
        let (remote, _) = client(&m.addr(), "remote-device", cv).await;
        remote
            .publish_acked(local("site/sensors/t1", "42", QoS::AtLeastOnce))
            .await
            .unwrap();
        let p = tokio::time::timeout(WAIT, local_in.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&p.topic[..], &p.payload[..], p.qos),
            ("loc/sensors/t1", &b"42"[..], QoS::AtLeastOnce)
        );

        // Local -> remote: only topics matching `publish` go out.
        let (watcher, mut seen) = client(&m.addr(), "watcher", cv).await;
        watcher
            .subscribe(&[
                Subscription::new("site/out/#", QoS::AtLeastOnce),
                Subscription::new("site/other/#", QoS::AtLeastOnce),
            ])
            .await
            .unwrap();
        local_out
            .send(local("loc/other/x", "no", QoS::AtLeastOnce))
            .await
            .unwrap();
        local_out
            .send(local("loc/out/y", "hi", QoS::AtLeastOnce))
            .await
            .unwrap();
        let p = next(&mut seen).await;
        assert_eq!(
            (&p.topic[..], &p.payload[..], p.qos),
            ("site/out/y", &b"hi"[..], QoS::AtLeastOnce)
        );
        // QoS 2 locally goes out at QoS 1.
        local_out
            .send(local("loc/out/q2", "two", QoS::ExactlyOnce))
            .await
            .unwrap();
        let p = next(&mut seen).await;
        assert_eq!((&p.topic[..], p.qos), ("site/out/q2", QoS::AtLeastOnce));

        // The bridge also subscribes to `out/#` at the remote. On MQTT 5 No Local keeps its
        // own publishes from coming back, so the next local arrival is the marker; on 3.1.1
        // the echoes arrive first (documented; the embedder stops them there).
        remote
            .publish_acked(local("site/sensors/marker", "m", QoS::AtLeastOnce))
            .await
            .unwrap();
        let mut echoes = 0;
        loop {
            let p = tokio::time::timeout(WAIT, local_in.recv())
                .await
                .unwrap()
                .unwrap();
            if &p.topic[..] == "loc/sensors/marker" {
                break;
            }
            assert!(p.topic.starts_with("loc/out/"), "{}", &p.topic[..]);
            echoes += 1;
        }
        if version == 5 {
            assert_eq!(echoes, 0, "No Local stops echoes on MQTT 5");
        } else {
            assert_eq!(
                echoes, 2,
                "3.1.1 echoes what matches a remote subscription once"
            );
        }
        wait_for("out counted", || {
            stats.messages_out.load(Ordering::Relaxed) == 2
        })
        .await;
        assert_eq!(stats.dropped_out.load(Ordering::Relaxed), 0);
        assert_eq!(stats.dropped_in.load(Ordering::Relaxed), 0);

        // Dropping the local side stops the bridge.
        drop(local_out);
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        assert_eq!(stats.connected.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn bridge_forwards_both_ways_mqtt311() {
    bridge_both_ways(4);
}

#[test]
fn bridge_forwards_both_ways_mqtt5() {
    bridge_both_ways(5);
}

#[test]
fn bridge_reconnects_after_the_remote_restarts() {
    let m = Mosquitto::start();
    let addr = m.addr();
    let rt = rt();
    let (to_local, mut local_in) = mpsc::channel(64);
    let (_local_out, from_local) = mpsc::channel(64);
    let stats = Arc::new(BridgeStats::default());
    rt.spawn(run_bridge(
        bridge_config(&addr, 4),
        to_local,
        from_local,
        stats.clone(),
    ));
    rt.block_on(wait_for("connected", || {
        stats.connected.load(Ordering::Relaxed) == 1
    }));
    let m = m.restart();
    rt.block_on(async {
        wait_for("reconnected", || {
            stats.reconnects.load(Ordering::Relaxed) >= 1
                && stats.connected.load(Ordering::Relaxed) == 1
        })
        .await;
        let (remote, _) = client(&addr, "remote-device", Version::V311).await;
        remote
            .publish_acked(local("site/sensors/again", "1", QoS::AtLeastOnce))
            .await
            .unwrap();
        let p = tokio::time::timeout(WAIT, local_in.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&p.topic[..], "loc/sensors/again");
        assert!(
            stats.last_error().is_some(),
            "the lost connection is recorded"
        );
    });
    drop(m);
}

#[test]
fn bridge_drops_and_counts_when_the_local_queue_is_full() {
    let m = Mosquitto::start();
    rt().block_on(async {
        let (to_local, mut local_in) = mpsc::channel(1);
        let (_local_out, from_local) = mpsc::channel(4);
        let stats = Arc::new(BridgeStats::default());
        tokio::spawn(run_bridge(
            bridge_config(&m.addr(), 4),
            to_local,
            from_local,
            stats.clone(),
        ));
        wait_for("connected", || stats.connected.load(Ordering::Relaxed) == 1).await;
        let (remote, _) = client(&m.addr(), "remote-device", Version::V311).await;
        for i in 0..5 {
            remote
                .publish_acked(local(
                    "site/sensors/x",
                    ["0", "1", "2", "3", "4"][i],
                    QoS::AtLeastOnce,
                ))
                .await
                .unwrap();
        }
        wait_for("all five accounted for", || {
            stats.messages_in.load(Ordering::Relaxed) + stats.dropped_in.load(Ordering::Relaxed)
                == 5
        })
        .await;
        assert_eq!(stats.messages_in.load(Ordering::Relaxed), 1);
        assert_eq!(stats.dropped_in.load(Ordering::Relaxed), 4);
        // The remote reader never stalled: the bridge is still connected and the first
        // message is there.
        assert_eq!(local_in.recv().await.unwrap().payload, &b"0"[..]);
        assert_eq!(stats.connected.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn bridge_over_tls() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let tls_lines = format!("certfile {}\nkeyfile {}", cert.display(), key.display());
    let m = Mosquitto::start_with(&tls_lines, dir);
    let mut cfg = bridge_config(&m.addr(), 5);
    cfg.tls = true;
    cfg.tls_ca_file = Some(cert.clone());
    cfg.tls_server_name = Some("localhost".into());
    rt().block_on(async {
        // Without the CA file the bridge refuses to start and says why.
        let mut bad = cfg.clone();
        bad.tls_ca_file = Some(cert.with_file_name("missing.pem"));
        let stats = Arc::new(BridgeStats::default());
        let (tx, _rx) = mpsc::channel(4);
        let (_ltx, lrx) = mpsc::channel(4);
        tokio::time::timeout(WAIT, run_bridge(bad, tx, lrx, stats.clone()))
            .await
            .unwrap();
        assert!(stats.last_error().unwrap().contains("missing.pem"));

        let (to_local, mut local_in) = mpsc::channel(4);
        let (_local_out, from_local) = mpsc::channel(4);
        let stats = Arc::new(BridgeStats::default());
        tokio::spawn(run_bridge(cfg, to_local, from_local, stats.clone()));
        wait_for("connected over TLS", || {
            stats.connected.load(Ordering::Relaxed) == 1
        })
        .await;
        // A plain-TCP client cannot talk to the TLS listener, so publish from mosquitto_pub.
        let port = m.port.to_string();
        let ca = cert.display().to_string();
        let ok = tokio::task::spawn_blocking(move || {
            Command::new("mosquitto_pub")
                .args(["-h", "localhost", "-p", &port, "--cafile", &ca])
                .args(["-q", "1", "-t", "site/sensors/tls", "-m", "sealed"])
                .status()
                .unwrap()
                .success()
        })
        .await
        .unwrap();
        assert!(ok, "mosquitto_pub over TLS");
        let p = tokio::time::timeout(WAIT, local_in.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&p.topic[..], &p.payload[..]),
            ("loc/sensors/tls", &b"sealed"[..])
        );
    });
}
