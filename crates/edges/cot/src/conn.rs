//! Streaming connections (`cot-tcp`, `cot-tls`): one task per client that reads into its
//! [`Session`] and writes its direct answers and routed queue back.
//!
//! Every way a client can hurt the server closes only that client, with a log line and a
//! `rampart_cot_disconnects_total{reason}` count:
//! malformed input (`malformed_xml`, `bad_proto`, …), an event over the size limit
//! (`too_large`), an event left half-sent (`frame_timeout`, slowloris), silence
//! (`idle_timeout`, half-open sockets), a queue over its bound (`slow_consumer`) and a
//! blocked write (`write_timeout`).
//!
//! Plain TCP reads through `readable()` + `try_read()` into a per-thread scratch buffer, so an
//! idle connection holds no read buffer at all: its cost is the task, the session and the
//! kernel socket.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::CotEdge;
use crate::router::Outgoing;
use crate::session::{Close, Session};

/// Bytes read per `try_read` on plain TCP.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Reads handled per wake-up before other work gets a turn.
const READS_PER_WAKE: usize = 16;
/// Read buffer of a TLS connection (allocated per connection: TLS needs its own).
const TLS_READ_BYTES: usize = 16 * 1024;
/// Most bytes taken from the queue per round of writes, so a large backlog is written in
/// bounded pieces between reads.
const WRITE_CHUNK_BYTES: usize = 256 * 1024;
/// Most pieces handed to one vectored write (the kernel takes up to 1,024).
const IOV_PER_WRITE: usize = 128;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_BYTES]);
}

/// Where a connection's bytes come from.
trait Reader: Send {
    /// Waits for bytes and feeds them to the session. `Ok(false)` at end of stream.
    fn read_into(
        &mut self,
        session: &mut Session,
    ) -> impl Future<Output = Result<bool, Close>> + Send;
}

fn closed(message: impl Into<String>) -> Close {
    Close {
        reason: "closed",
        message: message.into(),
    }
}

struct TcpReader(OwnedReadHalf);

impl Reader for TcpReader {
    async fn read_into(&mut self, session: &mut Session) -> Result<bool, Close> {
        self.0.readable().await.map_err(|e| closed(e.to_string()))?;
        for _ in 0..READS_PER_WAKE {
            let step = SCRATCH.with(|scratch| {
                let mut buf = scratch.borrow_mut();
                match self.0.try_read(&mut buf) {
                    Ok(0) => Ok(Some(false)),
                    Ok(n) => session.on_bytes(&buf[..n]).map(|_| None),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Some(true)),
                    Err(e) => Err(closed(e.to_string())),
                }
            })?;
            if let Some(open) = step {
                return Ok(open);
            }
        }
        // More is waiting: give the other connections a turn first. A task that always has
        // input otherwise never returns to the scheduler, and the runtime's other worker,
        // which could take half of the connections, is never woken to steal them.
        tokio::task::yield_now().await;
        Ok(true)
    }
}

struct StreamReader<R> {
    rd: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin + Send> Reader for StreamReader<R> {
    async fn read_into(&mut self, session: &mut Session) -> Result<bool, Close> {
        let n = self
            .rd
            .read(&mut self.buf)
            .await
            .map_err(|e| closed(e.to_string()))?;
        if n == 0 {
            return Ok(false);
        }
        session.on_bytes(&self.buf[..n])?;
        Ok(true)
    }
}

/// Most reports a connection holds back while the engine is busy with another batch.
const MAX_DEFERRED_REPORTS: usize = 4096;

/// Hands the session's reports to the engine. With `may_defer`, reports the engine cannot take
/// without waiting (another connection's batch holds it) stay with the session, up to
/// [`MAX_DEFERRED_REPORTS`], and go with its next batch: the connection parses on instead of
/// blocking its runtime worker on the engine's lock.
fn submit_reports(edge: &CotEdge, session: &mut Session, kind: &str, may_defer: bool) {
    let Some(reports) = session.take_reports() else {
        return;
    };
    let result = if may_defer && reports.len() < MAX_DEFERRED_REPORTS {
        match edge.sink.try_submit_unacked(reports) {
            Ok(Err(back)) => {
                session.defer_reports(back);
                return;
            }
            Ok(Ok(_)) => Ok(()),
            Err(e) => Err(e),
        }
    } else {
        edge.sink.submit_unacked(reports).map(|_| ())
    };
    if let Err(e) = result {
        tracing::error!(error = %e, kind, "CoT reports not stored");
    }
}

/// Writes every piece of `parts` in order with vectored writes: the routed frames go to the
/// kernel straight from the shared buffers, without gathering them into one copy first.
async fn write_parts<W: AsyncWrite + Unpin>(wr: &mut W, parts: &[Outgoing]) -> std::io::Result<()> {
    let (mut i, mut off) = (0, 0);
    while i < parts.len() {
        let mut iov = [std::io::IoSlice::new(&[]); IOV_PER_WRITE];
        let mut n = 0;
        for (k, p) in parts[i..].iter().take(IOV_PER_WRITE).enumerate() {
            let b = p.as_bytes();
            iov[k] = std::io::IoSlice::new(if k == 0 { &b[off.min(b.len())..] } else { b });
            n = k + 1;
        }
        let mut left = wr.write_vectored(&iov[..n]).await?;
        if left == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // Advance past what was written; a piece written in part keeps its offset.
        while i < parts.len() {
            let rest = parts[i].as_bytes().len() - off;
            if left < rest {
                off += left;
                break;
            }
            left -= rest;
            i += 1;
            off = 0;
        }
    }
    Ok(())
}

/// Resolves when the client's certificate is revoked (never for clients without one).
type Revoked = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Who a connected client is: its certificate CN when `authenticated`, else its address.
struct Who {
    identity: String,
    authenticated: bool,
    clearance: rampart_labels::Clearance,
}

/// Serves one client until it leaves or is closed.
async fn serve<R: Reader, W: AsyncWrite + Unpin + Send>(
    mut reader: R,
    mut wr: W,
    who: Who,
    edge: Arc<CotEdge>,
    kind: &'static str,
    revoked: Option<Revoked>,
) {
    let mut revoked = revoked.unwrap_or_else(|| Box::pin(std::future::pending()));
    let gauge = edge.metrics.connection_gauge(kind);
    gauge.inc();
    let Who {
        identity,
        authenticated,
        clearance,
    } = who;
    let mut session = Session::new(edge.clone(), kind, &identity, clearance);
    if authenticated {
        session.set_authenticated(&identity);
    }
    let client = session.client.clone();
    let write_timeout = Duration::from_secs(edge.cfg.write_timeout_secs.max(1));
    let idle = Duration::from_secs(edge.cfg.idle_timeout_secs.max(1));
    let frame_timeout = Duration::from_secs(edge.cfg.frame_timeout_secs.max(1));
    let linger = Duration::from_millis(edge.cfg.write_linger_ms);
    let slow_consumer = || Close {
        reason: "slow_consumer",
        message: format!(
            "more than {} bytes queued: the client does not keep up",
            edge.cfg.max_queue_bytes
        ),
    };
    let close = loop {
        if client.is_cut() {
            break slow_consumer();
        }
        // Allocated per round (one allocation next to a system call) so that an idle
        // connection keeps nothing of its largest round.
        let mut parts: Vec<Outgoing> = Vec::new();
        if !session.direct.is_empty() {
            parts.push(Outgoing::Owned(std::mem::take(&mut session.direct).into()));
        }
        client.drain_frames(&mut parts, WRITE_CHUNK_BYTES);
        if !parts.is_empty() {
            // A client that stops reading blocks this write while its queue overflows: the
            // router's cut-off must end the connection now, not when the write times out.
            let mut woken = false;
            let written = {
                // Boxed: the write's state (its I/O vector array, about 2 KiB) then exists
                // only while a write is in progress, not in every idle connection's task.
                let mut write = Box::pin(tokio::time::timeout(
                    write_timeout,
                    write_parts(&mut wr, &parts),
                ));
                loop {
                    tokio::select! {
                        r = &mut write => break Some(r),
                        _ = client.notify.notified() => {
                            if client.is_cut() {
                                break None;
                            }
                            woken = true;
                        }
                    }
                }
            };
            // Written or not, let go of the frames now rather than after the next wait.
            drop(parts);
            if woken {
                // Frames queued during the write consumed the wake-up: keep it for the wait
                // below, or they would sit until the next one.
                client.notify.notify_one();
            }
            match written {
                None => break slow_consumer(),
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => break closed(e.to_string()),
                Some(Err(_)) => {
                    break Close {
                        reason: "write_timeout",
                        message: format!("a write did not complete in {write_timeout:?}"),
                    };
                }
            }
        }
        let deadline = match session.partial_since {
            Some(t) => t + frame_timeout,
            None => session.last_rx + idle,
        };
        tokio::select! {
            r = reader.read_into(&mut session) => {
                submit_reports(&edge, &mut session, kind, matches!(r, Ok(true)));
                match r {
                    Ok(true) => {}
                    Ok(false) => break closed("end of stream"),
                    Err(c) => break c,
                }
            },
            // Reports held back while another batch had the engine: if no more input is
            // ready to go with them, they go now.
            () = std::future::ready(()), if session.has_reports() => {
                submit_reports(&edge, &mut session, kind, false);
            }
            _ = client.notify.notified() => {
                // Let a few more events gather before writing: one write of many events costs
                // far less than a wake-up and a write each, for a bounded delay.
                if linger > Duration::ZERO && client.queued_bytes() < WRITE_CHUNK_BYTES {
                    tokio::time::sleep(linger).await;
                }
            }
            _ = &mut revoked => {
                break Close { reason: "revoked", message: "the client certificate was revoked".to_string() };
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                break if session.partial_since.is_some() {
                    Close { reason: "frame_timeout", message: format!("an event stayed incomplete for {frame_timeout:?}") }
                } else {
                    Close { reason: "idle_timeout", message: format!("nothing received for {idle:?}") }
                };
            }
        }
    };
    // Whatever the answers to the last input were, try to send them (e.g. before a close).
    if !session.direct.is_empty() {
        let _ =
            tokio::time::timeout(Duration::from_millis(200), wr.write_all(&session.direct)).await;
    }
    submit_reports(&edge, &mut session, kind, false);
    session.finish();
    gauge.dec();
    if close.reason == "closed" {
        tracing::debug!(kind, peer = %identity, "TAK client left");
    } else {
        edge.cot_metrics.disconnect(close.reason);
        tracing::warn!(kind, peer = %identity, reason = close.reason, message = %close.message, "TAK client disconnected");
    }
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    edge: Arc<CotEdge>,
    kind: &'static str,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<CotEdge>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(edge.cfg.max_connections.max(1)));
    let peers = rampart_engine::PeerLimiter::new(
        edge.cfg.max_connections_per_peer,
        edge.cfg.max_connections,
    );
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, addr)) => {
                let slot = match peers.admit(addr.ip()) {
                    Ok(slot) => slot,
                    Err(why) => {
                        edge.cot_metrics.disconnect(why.reason());
                        tracing::debug!(kind, peer = %addr, reason = why.reason(), "TAK connection refused");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let fut = handle(stream, addr, edge.clone());
                tokio::spawn(async move {
                    fut.await;
                    drop((permit, slot));
                });
            }
            Err(e) => {
                tracing::warn!(kind, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves streaming CoT (XML, upgradable to TAK protocol v1) on a TCP listener.
pub async fn run_tcp_listener(listener: TcpListener, edge: Arc<CotEdge>, kind: &'static str) {
    accept_loop(listener, edge, kind, move |stream, addr, edge| async move {
        let (rd, wr) = stream.into_split();
        // No identity on plain TCP: the anonymous clearance.
        let clearance = edge.clearance_for(None);
        serve(
            TcpReader(rd),
            wr,
            Who {
                identity: addr.to_string(),
                authenticated: false,
                clearance,
            },
            edge,
            kind,
            None,
        )
        .await;
    })
    .await;
}

/// Serves streaming CoT over TLS.
pub async fn run_tls_listener(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    edge: Arc<CotEdge>,
    kind: &'static str,
) {
    accept_loop(listener, edge, kind, move |stream, addr, edge| {
        let acceptor = acceptor.clone();
        async move {
            let handshake = tokio::time::timeout(
                Duration::from_secs(edge.cfg.frame_timeout_secs.max(1)),
                acceptor.accept(stream),
            )
            .await;
            let tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    edge.cot_metrics.disconnect("tls_handshake");
                    tracing::warn!(kind, peer = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    edge.cot_metrics.disconnect("tls_handshake");
                    tracing::warn!(kind, peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            // With a client certificate, the connection's identity is its subject CN, its
            // clearance is the CN's in `[cot.clearances]`, and a revocation closes it within the
            // watch's polling interval. Without one (`tls_client_auth` optional or none) it is
            // anonymous.
            let authenticated = rampart_pki::peer_identity(tls.get_ref().1).is_some();
            let (identity, clearance, revoked) = match rampart_pki::peer_identity(tls.get_ref().1) {
                Some(id) => {
                    let revoked = edge
                        .watch()
                        .map(|w| Box::pin(w.revoked(id.serial.clone())) as Revoked);
                    tracing::debug!(kind, peer = %addr, cn = %id.subject_cn, serial = %id.serial, "TAK client authenticated");
                    let clearance = edge.clearance_for(Some(&id.subject_cn));
                    (id.subject_cn, clearance, revoked)
                }
                None => (addr.to_string(), edge.clearance_for(None), None),
            };
            let (rd, wr) = tokio::io::split(tls);
            let reader = StreamReader {
                rd,
                buf: vec![0; TLS_READ_BYTES],
            };
            let who = Who {
                identity,
                authenticated,
                clearance,
            };
            serve(reader, wr, who, edge, kind, revoked).await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A writer that takes at most `step` bytes per call, vectored or not.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.step - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.step {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn vectored_writes_survive_partial_writes_in_any_place() {
        // More pieces than one vectored write takes, of uneven sizes.
        let parts: Vec<Outgoing> = (0..(IOV_PER_WRITE * 2 + 7))
            .map(|i| Outgoing::Owned(bytes::Bytes::from(vec![(i % 251) as u8; 1 + i % 13])))
            .collect();
        let want: Vec<u8> = parts.iter().flat_map(|p| p.as_bytes().to_vec()).collect();
        for step in [1, 2, 5, 12, 13, 14, 100, 4096, 1 << 20] {
            let mut w = Trickle {
                got: Vec::new(),
                step,
            };
            write_parts(&mut w, &parts).await.unwrap();
            assert_eq!(w.got, want, "step {step}");
        }
    }
}
