//! `rampart bench tls`: full mutual-TLS handshakes per second. A CA, a server certificate and
//! a client certificate are issued by `rampart-pki` into a temporary directory; the server
//! uses the same `server_config` as `cot-tls`/`https` (client certificate required, CRL
//! checked through the revocation watch). Clients and server run in one process over
//! loopback, so the figure pays for both ends of every handshake on the same 2 cores.
//! Session resumption is off on both sides: every handshake is a full one (ECDHE X25519,
//! ECDSA P-256 signatures and certificate chain checks both ways).
//!
//! The server runs on its own two threads (`tls-srv`), the clients on two others, so the
//! server's CPU time per handshake is measured apart from the clients'. Two figures result:
//! the rate measured with clients and server sharing the 2 cores, and the server's capacity
//! on 2 cores (2 / server CPU seconds per handshake), which is what clients on other machines
//! would see.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_pki::{ClientAuth, IssueOptions, Kind, Pki, RevocationWatch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Figures;

/// Measures full mutual-TLS handshakes for `secs` seconds with `concurrency` clients, once
/// with TLS 1.3 and once with TLS 1.2.
pub fn handshakes(secs: f64, concurrency: usize) -> anyhow::Result<Figures> {
    let tmp = tempfile::tempdir()?;
    let (pki, _) = Pki::init(&tmp.path().join("pki"))?;
    pki.issue(Kind::Server, "bench-server", &IssueOptions::default())?;
    pki.issue(Kind::Device, "bench-client", &IssueOptions::default())?;
    let p = pki.paths();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tls-cli")
        .enable_all()
        .build()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()?;
    let mut f = Figures::new("tls");
    for (label, tls12) in [("tls13", false), ("tls12", true)] {
        let handle = server_rt.handle().clone();
        let (rate, server_cpu_per_hs) = rt.block_on(async {
            let watch = RevocationWatch::for_pki(&p, rampart_pki::tls::DEFAULT_POLL)?;
            let mut server = rampart_pki::server_config(
                &p.issued_cert("bench-server"),
                &p.issued_key("bench-server"),
                ClientAuth::Required,
                Some(&watch),
            )?;
            server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            server.send_tls13_tickets = 0;
            let mut client = rampart_pki::client_config(
                &p.ca_cert(),
                Some((
                    &p.issued_cert("bench-client"),
                    &p.issued_key("bench-client"),
                )),
            )?;
            if tls12 {
                client = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_protocol_versions(&[&rustls::version::TLS12])?
                .with_root_certificates(client_roots(&p.ca_cert())?)
                .with_client_auth_cert(
                    rustls::pki_types::pem::PemObject::pem_file_iter(
                        p.issued_cert("bench-client"),
                    )?
                    .collect::<Result<Vec<_>, _>>()?,
                    rustls::pki_types::pem::PemObject::from_pem_file(p.issued_key("bench-client"))?,
                )?;
            }
            client.resumption = rustls::client::Resumption::disabled();
            run(
                Arc::new(server),
                Arc::new(client),
                secs,
                concurrency,
                handle,
            )
            .await
        })?;
        f.push(
            &format!("mtls_handshakes_per_sec_{label}"),
            rate,
            "handshakes/s",
        );
        f.push(
            &format!("server_cpu_us_per_handshake_{label}"),
            server_cpu_per_hs * 1e6,
            "us",
        );
        f.push(
            &format!("server_capacity_2_cores_{label}"),
            2.0 / server_cpu_per_hs.max(1e-9),
            "handshakes/s",
        );
    }
    f.push("concurrent_clients", concurrency as f64, "connections");
    Ok(f)
}

fn client_roots(ca: &std::path::Path) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in
        <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_file_iter(ca)?
    {
        roots.add(c?)?;
    }
    Ok(roots)
}

/// Name of the server's threads, whose CPU time is measured.
const SERVER_THREADS: &str = "tls-srv";

/// CPU seconds used so far by this process's threads named `name`.
fn threads_cpu_secs(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            ticks += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

/// Returns (handshakes/s measured, server CPU seconds per handshake).
async fn run(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    secs: f64,
    concurrency: usize,
    server_rt: tokio::runtime::Handle,
) -> anyhow::Result<(f64, f64)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let cpu0 = threads_cpu_secs(SERVER_THREADS);
    let accept = server_rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // One byte after the handshake: the client counts only handshakes the server
                // completed, client certificate verified.
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.write_all(b"k").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (connector, name, done, failed, stop) = (
            connector.clone(),
            name.clone(),
            done.clone(),
            failed.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = async {
                    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
                    let _ = tcp.set_nodelay(true);
                    let mut tls = connector.connect(name.clone(), tcp).await.ok()?;
                    let mut b = [0u8; 1];
                    tls.read_exact(&mut b).await.ok()?;
                    Some(())
                }
                .await;
                match ok {
                    Some(()) => done.fetch_add(1, Ordering::Relaxed),
                    None => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let n = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = threads_cpu_secs(SERVER_THREADS) - cpu0;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    accept.abort();
    let failed = failed.load(Ordering::Relaxed);
    if failed > n / 100 {
        anyhow::bail!("{failed} of {} handshakes failed", n + failed);
    }
    Ok((n as f64 / elapsed, server_cpu / (n.max(1) as f64)))
}

/// The throughput cost of TLS on CoT ingest: the same load (`clients` connections writing
/// CoT XML as fast as accepted, into a write-only channel) into an in-process TAK edge over
/// `cot-tcp`, then over `cot-tls` with mutual TLS, for `secs` seconds each. Clients and
/// server share the 2 cores, so the clients' encryption is counted against TLS too.
pub fn cot_ingest(secs: f64, clients: usize) -> anyhow::Result<Figures> {
    use rampart_edge_cot::{CotConfig, CotEdge, CotSecurity};
    use rampart_engine::{Engine, EngineConfig, Metrics, ReportSink};
    use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};

    let tmp = tempfile::tempdir()?;
    let (pki, _) = Pki::init(&tmp.path().join("pki"))?;
    pki.issue(Kind::Server, "bench-server", &IssueOptions::default())?;
    pki.issue(Kind::Device, "bench-client", &IssueOptions::default())?;
    let p = pki.paths();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut f = Figures::new("tls-cot");
    let mut rates = Vec::new();
    for tls in [false, true] {
        let rate = rt.block_on(async {
            let history = SegmentLog::open(SegmentLogConfig::new(tmp.path().join(if tls {
                "h-tls"
            } else {
                "h-tcp"
            })))?;
            let store: Arc<dyn HistoryStore> = history;
            let engine = Engine::open(EngineConfig::default(), store, Arc::new(Metrics::new()))?;
            let sink: Arc<dyn ReportSink> = engine.clone();
            let mut cfg = CotConfig::default();
            for kind in ["cot-tcp", "cot-tls"] {
                cfg.channels
                    .insert(kind.to_string(), vec!["sensors:in".to_string()]);
            }
            let edge = CotEdge::new(cfg, engine.clone(), sink);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let connector = if tls {
                let watch = RevocationWatch::for_pki(&p, rampart_pki::tls::DEFAULT_POLL)?;
                edge.set_security(CotSecurity {
                    watch: Some(watch.clone()),
                    verifier: None,
                });
                let server = rampart_pki::server_config(
                    &p.issued_cert("bench-server"),
                    &p.issued_key("bench-server"),
                    ClientAuth::Required,
                    Some(&watch),
                )?;
                tokio::spawn(rampart_edge_cot::run_tls_listener(
                    listener,
                    tokio_rustls::TlsAcceptor::from(Arc::new(server)),
                    edge.clone(),
                    "cot-tls",
                ));
                Some(tokio_rustls::TlsConnector::from(Arc::new(
                    rampart_pki::client_config(
                        &p.ca_cert(),
                        Some((
                            &p.issued_cert("bench-client"),
                            &p.issued_key("bench-client"),
                        )),
                    )?,
                )))
            } else {
                tokio::spawn(rampart_edge_cot::run_tcp_listener(
                    listener,
                    edge.clone(),
                    "cot-tcp",
                ));
                None
            };
            let stop = Arc::new(AtomicBool::new(false));
            let mut tasks = Vec::new();
            for c in 0..clients.max(1) {
                let (connector, stop) = (connector.clone(), stop.clone());
                let events = cot_events(c, 1_000);
                tasks.push(tokio::spawn(async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    let _ = tcp.set_nodelay(true);
                    let mut io: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match connector {
                        Some(c) => {
                            let name = rustls::pki_types::ServerName::try_from("localhost")?;
                            let tls = c.connect(name, tcp).await?;
                            // Drain what the server sends (its protocol offer) so it never
                            // waits on this client.
                            let (mut rd, wr) = tokio::io::split(tls);
                            tokio::spawn(async move {
                                let mut b = vec![0u8; 16 * 1024];
                                while matches!(rd.read(&mut b).await, Ok(n) if n > 0) {}
                            });
                            Box::new(wr)
                        }
                        None => {
                            let (mut rd, wr) = tcp.into_split();
                            tokio::spawn(async move {
                                let mut b = vec![0u8; 16 * 1024];
                                while matches!(rd.read(&mut b).await, Ok(n) if n > 0) {}
                            });
                            Box::new(wr)
                        }
                    };
                    while !stop.load(Ordering::Relaxed) {
                        io.write_all(&events).await?;
                    }
                    anyhow::Ok(())
                }));
            }
            // Let connections settle, then count events the edge accepted over `secs`.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let metrics = engine.metrics().clone();
            let n0 = events_in(&metrics);
            let cpu0 = process_cpu_secs();
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            let n = events_in(&metrics) - n0;
            let rate = n / t0.elapsed().as_secs_f64();
            let cpu_per_event = (process_cpu_secs() - cpu0) / n.max(1.0);
            stop.store(true, Ordering::Relaxed);
            for t in tasks {
                t.abort();
            }
            anyhow::Ok((rate, cpu_per_event))
        })?;
        let label = if tls { "cot_tls_mtls" } else { "cot_tcp" };
        f.push(&format!("{label}_events_per_sec"), rate.0, "events/s");
        f.push(&format!("{label}_cpu_us_per_event"), rate.1 * 1e6, "us");
        rates.push(rate);
    }
    if let [tcp, tls] = rates[..] {
        f.push(
            "tls_cost_percent_measured",
            100.0 * (1.0 - tls.0 / tcp.0.max(1e-9)),
            "% of plain-TCP throughput",
        );
        // CPU per event (clients and server together) does not depend on what else runs on
        // the machine: on 2 dedicated cores, throughput is inversely proportional to it.
        f.push(
            "tls_cost_percent_cpu",
            100.0 * (1.0 - tcp.1 / tls.1.max(1e-12)),
            "% of plain-TCP throughput",
        );
    }
    f.push("clients", clients as f64, "connections");
    Ok(f)
}

/// CPU seconds used so far by this process (all threads).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

/// `rampart_cot_events_in_total` from the registry.
fn events_in(m: &rampart_engine::Metrics) -> f64 {
    m.render()
        .lines()
        .find(|l| {
            l.starts_with("rampart_cot_events_in_total") || l.starts_with("cot_events_in_total")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `n` CoT events (about 330 bytes each) of client `c`, over `n` distinct uids.
fn cot_events(c: usize, n: usize) -> Vec<u8> {
    let now = now_rfc3339();
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!(
                "<event version=\"2.0\" uid=\"bench-{c}-{i}\" type=\"a-f-G-U-C\" how=\"m-g\" \
                 time=\"{now}\" start=\"{now}\" stale=\"2099-01-01T00:00:00Z\">\
                 <point lat=\"{lat:.6}\" lon=\"{lon:.6}\" hae=\"10\" ce=\"5\" le=\"5\"/>\
                 <detail><contact callsign=\"B{c}-{i}\"/><track course=\"90\" speed=\"3\"/></detail></event>",
                lat = 40.0 + (i as f64) * 1e-4,
                lon = -3.0 + (c as f64) * 1e-3,
            )
            .as_bytes(),
        );
    }
    out
}

/// The current UTC time as RFC 3339 (seconds).
fn now_rfc3339() -> String {
    rampart_model::Timestamp::now().to_rfc3339()
}
