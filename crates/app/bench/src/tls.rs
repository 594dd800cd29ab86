//! `rampart bench tls`: full mutual-TLS handshakes per second. A CA, a server certificate and
//! a client certificate are issued by `rampart-pki` into a temporary directory; the server
//! uses the same `server_config` as `cot-tls`/`https` (client certificate required, CRL
//! checked through the revocation watch). Clients and server run in one process over
//! loopback, so the figure pays for both ends of every handshake on the same 2 cores.
//! Session resumption is off on both sides: every handshake is a full one (ECDHE X25519,
//! ECDSA P-256 signatures and certificate chain checks both ways).

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
        .enable_all()
        .build()?;
    let mut f = Figures::new("tls");
    for (label, tls12) in [("tls13", false), ("tls12", true)] {
        let rate = rt.block_on(async {
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
            run(Arc::new(server), Arc::new(client), secs, concurrency).await
        })?;
        f.push(
            &format!("mtls_handshakes_per_sec_{label}"),
            rate,
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

async fn run(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    secs: f64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let accept = tokio::spawn(async move {
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
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    accept.abort();
    let failed = failed.load(Ordering::Relaxed);
    if failed > n / 100 {
        anyhow::bail!("{failed} of {} handshakes failed", n + failed);
    }
    Ok(n as f64 / elapsed)
}
