//! One client connection: bytes in → packets → the broker task; packets from the broker
//! task → bytes out.
//!
//! Framing only: the connection knows nothing of sessions or topics. It detects the
//! protocol version from the CONNECT, decodes whole packets with `rmqtt-codec`, and hands
//! them to the broker task in one event per read, so a burst costs one channel send. It
//! writes whatever the broker task queued in its [`Outbox`] in one `write_all`.
//!
//! Idle connections hold no buffers: the read buffer is allocated when the socket becomes
//! readable and released when it is drained; the write buffer likewise.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use rampart_mqtt_broker::codec::version::{ProtocolVersion, VersionCodec};
use rampart_mqtt_broker::codec::{error::DecodeError, v3, v5};
use rampart_mqtt_broker::{ConnId, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, Encoder};

use crate::outbox::Outbox;
use crate::server::{Event, Shared};

/// A read half that can wait for readability without a buffer (plain TCP), or that is
/// always "ready" (TLS, whose reads go through the TLS state machine).
pub trait Reader: AsyncRead + Unpin + Send + 'static {
    /// Resolves when a read would likely not block.
    fn wait_readable(&self) -> impl Future<Output = std::io::Result<()>> + Send + '_;
}

impl Reader for tokio::net::tcp::OwnedReadHalf {
    fn wait_readable(&self) -> impl Future<Output = std::io::Result<()>> + Send + '_ {
        // `poll_read_ready` keeps no waiter of its own (unlike `readable()`), which keeps
        // every idle connection's task about 150 bytes smaller.
        let stream: &tokio::net::TcpStream = self.as_ref();
        std::future::poll_fn(move |cx| stream.poll_read_ready(cx))
    }
}

impl<S: AsyncRead + Unpin + Send + 'static> Reader for tokio::io::ReadHalf<S> {
    fn wait_readable(&self) -> impl Future<Output = std::io::Result<()>> + Send + '_ {
        std::future::ready(Ok(()))
    }
}

/// The codec of a connection, once its version is known.
enum Codec {
    Detect,
    V3(v3::Codec),
    V5(v5::Codec),
}

impl Codec {
    /// Decodes every whole packet in `buf` into `out`.
    fn decode_all(
        &mut self,
        buf: &mut BytesMut,
        max: u32,
        out: &mut Vec<Packet>,
    ) -> Result<(), DecodeError> {
        loop {
            match self {
                Codec::Detect => match VersionCodec.decode(buf)? {
                    None => return Ok(()),
                    Some(ProtocolVersion::MQTT3) => *self = Codec::V3(v3::Codec::new(max)),
                    Some(ProtocolVersion::MQTT5) => *self = Codec::V5(v5::Codec::new(max, 0)),
                },
                Codec::V3(c) => match c.decode(buf)? {
                    Some((p, _)) => out.push(Packet::V3(p)),
                    None => return Ok(()),
                },
                Codec::V5(c) => match c.decode(buf)? {
                    Some((p, _)) => out.push(Packet::V5(p)),
                    None => return Ok(()),
                },
            }
        }
    }

    fn encode(&mut self, p: Packet, dst: &mut BytesMut) -> bool {
        match (self, p) {
            (Codec::V3(c), Packet::V3(p)) => c.encode(p, dst).is_ok(),
            (Codec::V5(c), Packet::V5(p)) => c.encode(p, dst).is_ok(),
            _ => false,
        }
    }
}

/// A short reason label for a decode error.
fn decode_reason(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::MaxSizeExceeded { .. } => "packet_too_large",
        DecodeError::InvalidProtocol | DecodeError::UnsupportedProtocolLevel => "bad_protocol",
        DecodeError::Utf8Error => "invalid_utf8",
        DecodeError::InvalidTopicName | DecodeError::InvalidTopicFilter => "invalid_topic",
        _ => "malformed_packet",
    }
}

/// Bytes reserved for a connection's first reads.
const FIRST_READ_BYTES: usize = 1024;

async fn read_some<R: Reader>(
    rd: &mut R,
    buf: &mut BytesMut,
    chunk: usize,
) -> std::io::Result<usize> {
    rd.wait_readable().await?;
    if buf.capacity() - buf.len() < chunk / 2 {
        buf.reserve(chunk);
    }
    rd.read_buf(buf).await
}

enum Flushed {
    More,
    Close,
}

/// Encodes and writes everything queued in `outbox`.
async fn flush<W: AsyncWrite + Unpin>(
    outbox: &Outbox,
    codec: &mut Codec,
    wbuf: &mut BytesMut,
    wr: &mut W,
    shared: &Shared,
) -> Flushed {
    let (queue, taken, close) = outbox.take();
    for p in queue {
        if !codec.encode(p, wbuf) {
            shared.stats.encode_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    if !wbuf.is_empty() {
        if wr.write_all(wbuf).await.is_err() {
            return Flushed::Close;
        }
        *wbuf = BytesMut::new();
    }
    outbox.written(taken);
    if close { Flushed::Close } else { Flushed::More }
}

/// Sends `ev` to the broker task, writing this connection's output meanwhile. False if the
/// connection must close.
async fn send_while_flushing<W: AsyncWrite + Unpin>(
    ev: Event,
    events: &mpsc::Sender<Event>,
    outbox: &Outbox,
    codec: &mut Codec,
    wbuf: &mut BytesMut,
    wr: &mut W,
    shared: &Shared,
) -> bool {
    let mut ev = Some(ev);
    while let Some(e) = ev.take() {
        tokio::select! {
            permit = events.reserve() => match permit {
                Ok(p) => p.send(e),
                Err(_) => return false,
            },
            _ = outbox.ready() => {
                ev = Some(e);
                if let Flushed::Close = flush(outbox, codec, wbuf, wr, shared).await {
                    return false;
                }
            }
        }
    }
    true
}

/// Waits while publishers are paused, writing this connection's output meanwhile. False if
/// the connection must close.
async fn wait_unpaused<W: AsyncWrite + Unpin>(
    pause: &mut tokio::sync::watch::Receiver<bool>,
    outbox: &Outbox,
    codec: &mut Codec,
    wbuf: &mut BytesMut,
    wr: &mut W,
    shared: &Shared,
) -> bool {
    while *pause.borrow_and_update() {
        tokio::select! {
            r = pause.changed() => {
                if r.is_err() {
                    return false;
                }
            }
            _ = outbox.ready() => {
                if let Flushed::Close = flush(outbox, codec, wbuf, wr, shared).await {
                    return false;
                }
            }
        }
    }
    true
}

/// Runs one connection until it closes; the broker task learns of its end.
pub(crate) async fn run<R: Reader, W: AsyncWrite + Unpin + Send>(
    mut rd: R,
    mut wr: W,
    conn: ConnId,
    peer: std::net::SocketAddr,
    tls_identity: Option<String>,
    shared: Arc<Shared>,
) {
    let events: mpsc::Sender<Event> = shared.events.clone();
    let outbox = Arc::new(Outbox::default());
    let open = Event::Open {
        conn,
        outbox: outbox.clone(),
        tls_identity,
    };
    // Boxed, and built outside the `match`: the wait is rare, and idle connections should
    // not carry its state.
    let slow = match events.try_send(open) {
        Ok(()) => None,
        Err(mpsc::error::TrySendError::Full(open)) => Some(Box::pin(events.send(open))),
        Err(mpsc::error::TrySendError::Closed(_)) => return,
    };
    if let Some(slow) = slow
        && slow.await.is_err()
    {
        return;
    }
    let cfg = &shared.cfg;
    let mut codec = Codec::Detect;
    let mut buf = BytesMut::new();
    let mut wbuf = BytesMut::new();
    // Publishers stop being read while the broker task asks for it (a subscriber is
    // congested); everyone else keeps reading, so acknowledgements still flow.
    let mut publisher = false;
    let mut chunk = FIRST_READ_BYTES.min(cfg.read_chunk_bytes);
    let mut pause = shared.pause.subscribe();
    'conn: loop {
        if publisher && *pause.borrow_and_update() {
            let go_on = Box::pin(wait_unpaused(
                &mut pause, &outbox, &mut codec, &mut wbuf, &mut wr, &shared,
            ))
            .await;
            if !go_on {
                break 'conn;
            }
            continue;
        }
        tokio::select! {
            _ = outbox.ready() => {
                match Box::pin(flush(&outbox, &mut codec, &mut wbuf, &mut wr, &shared)).await {
                    Flushed::More => {}
                    Flushed::Close => break 'conn,
                }
            }
            r = read_some(&mut rd, &mut buf, chunk) => {
                match r {
                    Ok(0) | Err(_) => break 'conn,
                    // A read that filled what was reserved asks for more next time: busy
                    // publishers grow to `read_chunk_bytes`, quiet devices stay small.
                    Ok(n) if n >= chunk => chunk = (chunk * 2).min(cfg.read_chunk_bytes),
                    Ok(_) => {}
                }
                let mut packets = Vec::new();
                let res = codec.decode_all(&mut buf, cfg.max_packet_bytes, &mut packets);
                if !packets.is_empty() {
                    publisher = publisher
                        || packets.iter().any(|p| {
                            matches!(
                                p,
                                Packet::V3(v3::Packet::Publish(_)) | Packet::V5(v5::Packet::Publish(_))
                            )
                        });
                    // The broker task may be busy (maybe waiting for this very connection
                    // to drain): then keep writing while waiting. The slow path is boxed and
                    // built outside the `match`, so idle connections carry none of its state.
                    let slow = match events.try_send(Event::Packets { conn, packets }) {
                        Ok(()) => None,
                        Err(mpsc::error::TrySendError::Closed(_)) => break 'conn,
                        Err(mpsc::error::TrySendError::Full(ev)) => Some(Box::pin(
                            send_while_flushing(
                                ev, &events, &outbox, &mut codec, &mut wbuf, &mut wr, &shared,
                            ),
                        )),
                    };
                    if let Some(slow) = slow
                        && !slow.await
                    {
                        break 'conn;
                    }
                }
                if let Err(e) = res {
                    let reason = decode_reason(&e);
                    shared.count_malformed(reason);
                    tracing::debug!(%peer, error = %e, reason, "closing MQTT connection on a bad packet");
                    if let Codec::V5(c) = &mut codec {
                        let code = if reason == "packet_too_large" {
                            v5::DisconnectReasonCode::PacketTooLarge
                        } else {
                            v5::DisconnectReasonCode::MalformedPacket
                        };
                        let mut out = BytesMut::new();
                        if c.encode(v5::Packet::Disconnect(v5::Disconnect::new(code)), &mut out).is_ok() {
                            let _ = Box::pin(wr.write_all(&out)).await;
                        }
                    }
                    break 'conn;
                }
                if buf.is_empty() {
                    buf = BytesMut::new();
                }
            }
        }
    }
    outbox.close();
    // Boxed for the same reason as above: these run once, at the end.
    let _ = Box::pin(wr.shutdown()).await;
    drop(wr);
    let slow = match events.try_send(Event::Closed { conn }) {
        Err(mpsc::error::TrySendError::Full(ev)) => Some(Box::pin(events.send(ev))),
        _ => None,
    };
    if let Some(slow) = slow {
        let _ = slow.await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::server::Shared;

    /// The connection task's state is what every idle connection costs; keep it small.
    #[tokio::test]
    async fn idle_connection_task_is_small() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (rd, wr) = c.into_split();
        let shared = Shared::for_tests();
        let fut = run(
            rd,
            wr,
            ConnId(1),
            "127.0.0.1:1".parse().unwrap(),
            None,
            shared,
        );
        let size = std::mem::size_of_val(&fut);
        println!("connection future: {size} bytes");
        // 600 bytes on Rust 1.95; the bound leaves room for toolchain changes, not for
        // state that every idle connection would carry.
        assert!(size <= 768, "connection future is {size} bytes");
    }
}
