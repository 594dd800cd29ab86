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
use std::time::Duration;

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
        self.readable()
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

async fn read_some<R: Reader>(
    rd: &mut R,
    buf: &mut BytesMut,
    chunk: usize,
) -> std::io::Result<usize> {
    rd.wait_readable().await?;
    if buf.capacity() - buf.len() < chunk / 4 {
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

/// Runs one connection until it closes; the broker task learns of its end.
pub(crate) async fn run<R: Reader, W: AsyncWrite + Unpin + Send>(
    mut rd: R,
    mut wr: W,
    conn: ConnId,
    peer: String,
    tls_identity: Option<String>,
    shared: Arc<Shared>,
) {
    let events: mpsc::Sender<Event> = shared.events.clone();
    let outbox = Arc::new(Outbox::default());
    if events
        .send(Event::Open {
            conn,
            outbox: outbox.clone(),
            tls_identity,
        })
        .await
        .is_err()
    {
        return;
    }
    let cfg = &shared.cfg;
    let mut codec = Codec::Detect;
    let mut buf = BytesMut::new();
    let mut wbuf = BytesMut::new();
    let connect_deadline = tokio::time::sleep(Duration::from_millis(cfg.connect_timeout_ms));
    tokio::pin!(connect_deadline);
    let mut connected = false;
    // Publishers stop being read while the broker task asks for it (a subscriber is
    // congested); everyone else keeps reading, so acknowledgements still flow.
    let mut publisher = false;
    let mut pause = shared.pause.subscribe();
    'conn: loop {
        let paused = publisher && *pause.borrow_and_update();
        tokio::select! {
            r = pause.changed(), if paused => {
                if r.is_err() {
                    break 'conn;
                }
            }
            _ = outbox.ready() => {
                match flush(&outbox, &mut codec, &mut wbuf, &mut wr, &shared).await {
                    Flushed::More => {}
                    Flushed::Close => break 'conn,
                }
            }
            r = read_some(&mut rd, &mut buf, cfg.read_chunk_bytes), if !paused => {
                match r {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(_) => {}
                }
                let mut packets = Vec::new();
                let res = codec.decode_all(&mut buf, cfg.max_packet_bytes, &mut packets);
                if !packets.is_empty() {
                    connected = true;
                    publisher = publisher
                        || packets.iter().any(|p| {
                            matches!(
                                p,
                                Packet::V3(v3::Packet::Publish(_)) | Packet::V5(v5::Packet::Publish(_))
                            )
                        });
                    // Hand the packets over, but keep writing while the broker task is
                    // busy: it may be waiting for this very connection to drain.
                    let mut ev = Some(Event::Packets { conn, packets });
                    while let Some(e) = ev.take() {
                        tokio::select! {
                            permit = events.reserve() => match permit {
                                Ok(p) => p.send(e),
                                Err(_) => break 'conn,
                            },
                            _ = outbox.ready() => {
                                ev = Some(e);
                                if let Flushed::Close = flush(&outbox, &mut codec, &mut wbuf, &mut wr, &shared).await {
                                    break 'conn;
                                }
                            }
                        }
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
                            let _ = wr.write_all(&out).await;
                        }
                    }
                    break 'conn;
                }
                if buf.is_empty() {
                    buf = BytesMut::new();
                }
            }
            _ = &mut connect_deadline, if !connected => {
                shared.count_malformed("connect_timeout");
                break 'conn;
            }
        }
    }
    outbox.close();
    let _ = wr.shutdown().await;
    let _ = events.send(Event::Closed { conn }).await;
}
