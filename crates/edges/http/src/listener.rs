//! A TCP listener that counts open connections in a gauge and bounds them with a semaphore.
//!
//! When the bound is reached the listener simply stops accepting, so new clients wait in the
//! kernel's accept queue instead of costing the process memory.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rampart_engine::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Accepts TCP connections, counting and bounding them.
pub struct CountingListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    gauge: Gauge,
    /// Connections per source address, and where refusals are counted.
    peers: Option<(
        Arc<rampart_engine::PeerLimiter>,
        Arc<rampart_engine::Metrics>,
    )>,
}

impl CountingListener {
    /// Wraps `inner`, allowing at most `max` open connections, counted in `gauge`.
    pub fn new(inner: TcpListener, max: usize, gauge: Gauge) -> Self {
        CountingListener {
            inner,
            permits: Arc::new(Semaphore::new(max.max(1))),
            gauge,
            peers: None,
        }
    }

    /// Also caps the connections of each source address with `peers`; a connection over the
    /// cap is closed at once and counted in `metrics` as an `http` rejection.
    pub fn with_peer_limit(
        mut self,
        peers: Arc<rampart_engine::PeerLimiter>,
        metrics: Arc<rampart_engine::Metrics>,
    ) -> Self {
        self.peers = Some((peers, metrics));
        self
    }
}

/// An accepted connection; dropping it releases its slot and decrements the gauge.
pub struct CountedStream {
    inner: TcpStream,
    gauge: Gauge,
    _permit: OwnedSemaphorePermit,
    _peer: Option<rampart_engine::PeerSlot>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // The semaphore is never closed, so acquiring only waits.
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let peer = match &self.peers {
                        None => None,
                        Some((limiter, metrics)) => match limiter.admit(addr.ip()) {
                            Ok(slot) => Some(slot),
                            Err(why) => {
                                // Dropping the stream closes it; the permit is reused.
                                metrics.reject("http", why.reason(), 1);
                                tracing::debug!(peer = %addr, reason = why.reason(), "connection refused");
                                continue;
                            }
                        },
                    };
                    // Small JSON answers and WebSocket frames must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    self.gauge.inc();
                    return (
                        CountedStream {
                            inner: stream,
                            gauge: self.gauge.clone(),
                            _permit: permit,
                            _peer: peer,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The peer address of a connection, made available to handlers as `ConnectInfo<PeerAddr>`.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, CountingListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, CountingListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}
