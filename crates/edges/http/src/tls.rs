//! HTTPS: the API served over rustls. A background task accepts TCP connections (bounded
//! like plain HTTP), runs each TLS handshake in its own task under a timeout, and hands
//! finished connections to axum. With a client certificate, a revocation closes the
//! connection (including WebSocket streams) within the revocation watch's polling interval.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rampart_engine::{Gauge, ReasonLabel};
use rampart_pki::RevocationWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::{AppState, PeerAddr, router};

/// A TLS handshake that takes longer than this is dropped (slowloris on the handshake).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 64;

type Revoked = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One HTTPS connection: the TLS stream, its connection slot, and the revocation of its
/// client certificate, which fails every read and write once it fires.
pub struct TlsIo {
    inner: TlsStream<TcpStream>,
    revoked: Option<Revoked>,
    gauge: Gauge,
    _permit: OwnedSemaphorePermit,
    _peer: rampart_engine::PeerSlot,
    idle: Option<crate::listener::IdleTimer>,
}

impl Drop for TlsIo {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl TlsIo {
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(r) = &mut self.revoked
            && r.as_mut().poll(cx).is_ready()
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the client certificate was revoked",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        crate::listener::IdleTimer::guard(&mut this.idle, cx, r)
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        crate::listener::IdleTimer::guard(&mut this.idle, cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A listener of finished TLS connections, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsIo, SocketAddr)>,
    local: SocketAddr,
}

impl Listener for TlsListener {
    type Io = TlsIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

fn refused(f: &Family<ReasonLabel, Counter>, reason: &str) {
    f.get_or_create(&ReasonLabel {
        reason: reason.to_string(),
    })
    .inc();
}

/// Serves the API over TLS on `listener` until `shutdown` resolves. `config` decides TLS
/// versions and client certificates (see `rampart_pki::server_config`); `watch`, when given,
/// closes connections whose client certificate gets revoked.
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    watch: Option<Arc<RevocationWatch>>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Session cookies set over this listener carry `Secure`.
    let mut state = state;
    state.https = true;
    let metrics = state.engine.metrics().clone();
    let gauge = metrics.connection_gauge("https");
    let refusals = metrics.register_reason_counter(
        "https_tls_refusals",
        "HTTPS connections refused during the TLS handshake, by reason",
    );
    let local = listener.local_addr()?;
    let permits = Arc::new(Semaphore::new(state.cfg.max_connections.max(1)));
    let idle = Duration::from_secs(state.cfg.idle_timeout_secs);
    let peers = rampart_engine::PeerLimiter::new(
        state.cfg.max_connections_per_peer,
        state.cfg.max_connections,
    );
    let (tx, rx) = mpsc::channel(READY_QUEUE);
    let acceptor = TlsAcceptor::from(config);
    let accept_task = tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (stream, addr) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "https accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let peer = match peers.admit(addr.ip()) {
                Ok(slot) => slot,
                Err(why) => {
                    refused(&refusals, why.reason());
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, tx, watch, gauge, refusals) = (
                acceptor.clone(),
                tx.clone(),
                watch.clone(),
                gauge.clone(),
                refusals.clone(),
            );
            tokio::spawn(async move {
                let tls =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            refused(&refusals, "handshake");
                            tracing::warn!(peer = %addr, error = %e, "HTTPS TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            refused(&refusals, "handshake_timeout");
                            tracing::warn!(peer = %addr, "HTTPS TLS handshake timed out");
                            return;
                        }
                    };
                let revoked = rampart_pki::peer_identity(tls.get_ref().1).and_then(|id| {
                    tracing::debug!(peer = %addr, cn = %id.subject_cn, "HTTPS client authenticated");
                    watch.map(|w| Box::pin(w.revoked(id.serial)) as Revoked)
                });
                gauge.inc();
                let io = TlsIo {
                    inner: tls,
                    revoked,
                    gauge,
                    _permit: permit,
                    _peer: peer,
                    idle: crate::listener::IdleTimer::new(idle),
                };
                let _ = tx.send((io, addr)).await;
            });
        }
    });
    let app = router(state).into_make_service_with_connect_info::<PeerAddr>();
    let result = axum::serve(TlsListener { ready: rx, local }, app)
        .with_graceful_shutdown(shutdown)
        .await;
    accept_task.abort();
    result
}
