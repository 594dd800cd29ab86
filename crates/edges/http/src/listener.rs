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

/// Closes a connection on which nothing was read or written for a while: a slowloris or a
/// forgotten keep-alive connection must not hold a connection slot forever. WebSocket
/// streams stay busy through the pings the stream sends every 30 s.
pub(crate) struct IdleTimer {
    after: std::time::Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// When the deadline was last pushed back; it moves at most once a second, so busy
    /// connections do not touch the timer wheel on every read.
    touched: tokio::time::Instant,
}

impl IdleTimer {
    /// A timer of `after`; `None` when it is zero (no idle timeout).
    pub(crate) fn new(after: std::time::Duration) -> Option<IdleTimer> {
        if after.is_zero() {
            return None;
        }
        let now = tokio::time::Instant::now();
        Some(IdleTimer {
            after,
            sleep: Box::pin(tokio::time::sleep_until(now + after)),
            touched: now,
        })
    }

    fn touch(&mut self) {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.touched) >= std::time::Duration::from_secs(1) {
            self.touched = now;
            self.sleep.as_mut().reset(now + self.after);
        }
    }

    /// Wraps one poll of the connection: activity pushes the deadline back; a pending
    /// operation past the deadline fails with `TimedOut`.
    pub(crate) fn guard<T>(
        timer: &mut Option<IdleTimer>,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Some(t) = timer else { return r };
        match r {
            Poll::Ready(r) => {
                t.touch();
                Poll::Ready(r)
            }
            Poll::Pending => {
                if t.sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for too long",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

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
    /// Idle timeout of each connection (zero: none).
    idle: std::time::Duration,
}

impl CountingListener {
    /// Wraps `inner`, allowing at most `max` open connections, counted in `gauge`.
    pub fn new(inner: TcpListener, max: usize, gauge: Gauge) -> Self {
        CountingListener {
            inner,
            permits: Arc::new(Semaphore::new(max.max(1))),
            gauge,
            peers: None,
            idle: std::time::Duration::ZERO,
        }
    }

    /// Closes connections idle (nothing read or written) for `idle`; zero disables it.
    pub fn with_idle_timeout(mut self, idle: std::time::Duration) -> Self {
        self.idle = idle;
        self
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
    idle: Option<IdleTimer>,
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
                            idle: IdleTimer::new(self.idle),
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
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        IdleTimer::guard(&mut this.idle, cx, r)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        IdleTimer::guard(&mut this.idle, cx, r)
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
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        IdleTimer::guard(&mut this.idle, cx, r)
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
