//! TAK protocol version 1: the lossless [`CotEvent`] ⇄ [`proto::TakMessage`] conversion, the
//! stream and mesh framings, and the sans-IO [`ProtoStreamSplitter`].
//!
//! Framings (ATAK-CIV `protocol.txt`, "TAK Protocol - Generic Framework"):
//!
//! ```text
//! stream:  0xbf | varint(payload length) | TakMessage
//! mesh:    0xbf | varint(protocol version = 1) | 0xbf | TakMessage     (one per datagram)
//! ```
//!
//! Detail mapping, following TAK Server's rule: a `contact`, `__group`, `precisionlocation`,
//! `status`, `takv` or `track` element goes into its typed sub-message only when the
//! sub-message represents it exactly — the attributes TAK requires are present and non-empty,
//! there are no other attributes and no children. Otherwise it stays in `xmlDetail`, as do
//! `remarks`, `link`, `__chat`, `emergency`, `uid` and every unknown element. On decode the
//! `xmlDetail` copy of an element wins over a typed one (TAK's rule for broken senders).
//! `CotEvent::extra_attrs`, `Point::extra_attrs`, `extra_children` and a `version` other than
//! 2.0 have no place in the protobuf form and are dropped by it.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message as _;
use rampart_model::{Text, Timestamp};

use crate::event::{Contact, Detail, Group, PrecisionLocation, Status, Takv, Track};
use crate::proto::{self, TakMessage};
use crate::xml::encode::{Typed, write_detail_children};
use crate::xml::parse::parse_detail_xml;
use crate::{CotError, CotEvent, CotLimits, Point};

/// The TAK protocol magic byte.
pub const MAGIC: u8 = 0xbf;

/// The only TAK protocol version this crate speaks besides XML.
pub const PROTOCOL_VERSION: u64 = 1;

/// Longest varint (a `u64` needs at most 10 bytes).
const MAX_VARINT_BYTES: usize = 10;

/// Why a TAK protocol message was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A frame did not start with `0xbf`.
    #[error("expected the TAK magic byte 0xbf at stream offset {offset}, found 0x{found:02x}")]
    BadMagic {
        /// The byte found instead.
        found: u8,
        /// Its stream offset.
        offset: u64,
    },
    /// A frame announced a payload beyond the limit.
    #[error("TAK message of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced size.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A varint ran over 10 bytes.
    #[error("malformed varint in the TAK header at stream offset {offset}")]
    BadVarint {
        /// Stream offset of the header.
        offset: u64,
    },
    /// A mesh header named a version other than 1.
    #[error("TAK mesh header announces protocol version {version}, only 1 is supported")]
    UnsupportedVersion {
        /// The version found.
        version: u64,
    },
    /// A datagram ended inside the mesh header.
    #[error("datagram too short for the TAK mesh header")]
    Truncated,
    /// The payload is not a valid `TakMessage`.
    #[error("invalid TakMessage protobuf: {0}")]
    Decode(String),
    /// The message has no `cotEvent`.
    #[error("TakMessage has no cotEvent")]
    NoEvent,
    /// The event inside is unusable.
    #[error("cotEvent: {0}")]
    Event(#[from] CotError),
}

impl ProtoError {
    /// A short machine-readable reason, for a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            ProtoError::BadMagic { .. } => "bad_magic",
            ProtoError::TooLarge { .. } => "frame_too_large",
            ProtoError::BadVarint { .. } => "bad_varint",
            ProtoError::UnsupportedVersion { .. } => "unsupported_version",
            ProtoError::Truncated => "truncated",
            ProtoError::Decode(_) => "bad_protobuf",
            ProtoError::NoEvent => "no_event",
            ProtoError::Event(e) => e.reason(),
        }
    }
}

/// Reads a varint from the front of `buf`: `Ok(None)` when more bytes are needed, otherwise
/// the value and the bytes it took.
fn read_varint(buf: &[u8]) -> Result<Option<(u64, usize)>, ()> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(MAX_VARINT_BYTES) {
        let bits = u64::from(b & 0x7f);
        if i == MAX_VARINT_BYTES - 1 && b > 1 {
            return Err(()); // would overflow 64 bits
        }
        value |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= MAX_VARINT_BYTES {
        Err(())
    } else {
        Ok(None)
    }
}

/// `msg` as one stream frame: `0xbf`, varint length, payload.
pub fn encode_stream(msg: &TakMessage) -> Vec<u8> {
    let len = msg.encoded_len();
    let mut out = Vec::with_capacity(1 + MAX_VARINT_BYTES + len);
    out.push(MAGIC);
    prost::encoding::encode_varint(len as u64, &mut out);
    msg.encode_raw(&mut out);
    out
}

/// `msg` as one mesh datagram: `0xbf 0x01 0xbf`, payload.
pub fn encode_mesh(msg: &TakMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + msg.encoded_len());
    out.push(MAGIC);
    prost::encoding::encode_varint(PROTOCOL_VERSION, &mut out);
    out.push(MAGIC);
    msg.encode_raw(&mut out);
    out
}

/// Decodes a `TakMessage` payload (no header), e.g. a frame from [`ProtoStreamSplitter`].
pub fn decode_payload(payload: &[u8]) -> Result<TakMessage, ProtoError> {
    TakMessage::decode(payload).map_err(|e| ProtoError::Decode(e.to_string()))
}

/// Decodes one mesh datagram (`0xbf 0x01 0xbf` + payload). A datagram that does not start
/// with `0xbf` is legacy XML: check the first byte before calling this.
pub fn decode_mesh(datagram: &[u8]) -> Result<TakMessage, ProtoError> {
    let Some((&first, rest)) = datagram.split_first() else {
        return Err(ProtoError::Truncated);
    };
    if first != MAGIC {
        return Err(ProtoError::BadMagic {
            found: first,
            offset: 0,
        });
    }
    let (version, n) = match read_varint(rest) {
        Ok(Some(v)) => v,
        Ok(None) => return Err(ProtoError::Truncated),
        Err(()) => return Err(ProtoError::BadVarint { offset: 1 }),
    };
    if version != PROTOCOL_VERSION {
        return Err(ProtoError::UnsupportedVersion { version });
    }
    match rest.get(n) {
        Some(&MAGIC) => decode_payload(rest.get(n + 1..).unwrap_or(&[])),
        Some(&found) => Err(ProtoError::BadMagic {
            found,
            offset: 1 + n as u64,
        }),
        None => Err(ProtoError::Truncated),
    }
}

/// Splits a TAK protocol stream (`0xbf`, varint length, payload, repeated) into payloads.
///
/// Each call to [`Self::next_frame`] looks at one header (at most 11 bytes) and then slices
/// the payload out without copying, so splitting is O(n) whatever the read sizes. A bad magic
/// byte or an announced length beyond the limit is an error the caller turns into closing the
/// connection; it is returned again on every later call.
#[derive(Debug)]
pub struct ProtoStreamSplitter {
    buf: BytesMut,
    /// Stream offset of `buf[0]`, for error messages.
    offset: u64,
    max_frame: usize,
    failed: Option<ProtoError>,
}

impl Default for ProtoStreamSplitter {
    fn default() -> Self {
        Self::new(CotLimits::DEFAULT_MAX_EVENT_BYTES)
    }
}

impl ProtoStreamSplitter {
    /// A splitter whose payloads may be at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        ProtoStreamSplitter {
            buf: BytesMut::new(),
            offset: 0,
            max_frame,
            failed: None,
        }
    }

    /// A splitter that starts with bytes already read (e.g. from
    /// [`crate::XmlStreamSplitter::take_remaining`] after negotiation).
    pub fn with_buffered(max_frame: usize, bytes: BytesMut) -> Self {
        let mut s = Self::new(max_frame);
        s.buf = bytes;
        s
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete payload, `Ok(None)` when more bytes are needed, or the error that
    /// makes the stream unusable.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ProtoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.scan();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// The next complete message, decoded. A payload that is not a valid `TakMessage` is an
    /// error for that frame only: framing stays intact, so the caller may go on.
    pub fn next_message(&mut self) -> Result<Option<TakMessage>, ProtoError> {
        match self.next_frame()? {
            Some(payload) => decode_payload(&payload).map(Some),
            None => Ok(None),
        }
    }

    fn scan(&mut self) -> Result<Option<Bytes>, ProtoError> {
        let Some(&first) = self.buf.first() else {
            return Ok(None);
        };
        if first != MAGIC {
            return Err(ProtoError::BadMagic {
                found: first,
                offset: self.offset,
            });
        }
        let (len, n) = match read_varint(&self.buf[1..]) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(()) => {
                return Err(ProtoError::BadVarint {
                    offset: self.offset,
                });
            }
        };
        if len > self.max_frame as u64 {
            return Err(ProtoError::TooLarge {
                size: len,
                max: self.max_frame,
            });
        }
        // len ≤ max_frame, a usize, so this cannot truncate.
        let len = len as usize;
        let header = 1 + n;
        if self.buf.len() < header + len {
            self.buf.reserve(header + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(header);
        self.offset += (header + len) as u64;
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

fn ms(t: Timestamp) -> u64 {
    // Parsed events never hold times before 1970; clamp anything constructed by hand.
    u64::try_from(t.0).unwrap_or(0)
}

fn time_from_ms(path: &str, v: u64) -> Result<Timestamp, CotError> {
    match i64::try_from(v) {
        Ok(t) if Timestamp(t) <= Timestamp::MAX_VALID => Ok(Timestamp(t)),
        _ => Err(CotError::invalid(
            path,
            format!("{v} ms is after 9999-12-31"),
        )),
    }
}

fn finite(path: &str, v: f64) -> Result<f64, CotError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(CotError::invalid(path, format!("not a finite number {v}")))
    }
}

fn text(s: &Option<Text>) -> String {
    s.as_deref().unwrap_or_default().to_owned()
}

fn non_empty(s: &str) -> Option<Text> {
    if s.is_empty() {
        None
    } else {
        Some(Text::from(s))
    }
}

fn filled(s: &Option<Text>) -> bool {
    s.as_deref().is_some_and(|v| !v.is_empty())
}

/// True when a repeated `<name>` sits among the unknown elements. The typed one must then
/// stay in `xmlDetail` too: a receiver lets the `xmlDetail` copy win, which would swap them.
fn repeated(d: &Detail, name: &str) -> bool {
    d.unknown.iter().any(|raw| {
        raw.strip_prefix('<')
            .and_then(|r| r.strip_prefix(name))
            .is_some_and(|r| {
                r.starts_with(|c: char| c == '/' || c == '>' || c.is_ascii_whitespace())
            })
    })
}

/// Which typed elements of `d` the protobuf sub-messages represent exactly.
fn exact(d: &Detail) -> Typed {
    let t = exact_elements(d);
    Typed {
        contact: t.contact && !repeated(d, "contact"),
        group: t.group && !repeated(d, "__group"),
        precision_location: t.precision_location && !repeated(d, "precisionlocation"),
        status: t.status && !repeated(d, "status"),
        takv: t.takv && !repeated(d, "takv"),
        track: t.track && !repeated(d, "track"),
    }
}

fn exact_elements(d: &Detail) -> Typed {
    Typed {
        contact: d.contact.as_ref().is_some_and(|c| {
            c.extra.is_empty()
                && filled(&c.callsign)
                && c.endpoint.as_deref().is_none_or(|e| !e.is_empty())
        }),
        group: d
            .group
            .as_ref()
            .is_some_and(|g| g.extra.is_empty() && filled(&g.name) && filled(&g.role)),
        precision_location: d
            .precision_location
            .as_ref()
            .is_some_and(|p| p.extra.is_empty() && filled(&p.geopointsrc) && filled(&p.altsrc)),
        status: d
            .status
            .as_ref()
            .is_some_and(|s| s.extra.is_empty() && s.battery.is_some()),
        takv: d.takv.as_ref().is_some_and(|t| {
            t.extra.is_empty()
                && filled(&t.device)
                && filled(&t.platform)
                && filled(&t.os)
                && filled(&t.version)
        }),
        track: d
            .track
            .as_ref()
            .is_some_and(|t| t.extra.is_empty() && t.course.is_some() && t.speed.is_some()),
    }
}

impl CotEvent {
    /// The protobuf form of this event. Lossless for every known field (see the module docs).
    pub fn to_proto(&self) -> proto::CotEvent {
        let detail = if self.detail.is_empty() {
            None
        } else {
            let d = &self.detail;
            let typed = exact(d);
            let mut xml_detail = String::new();
            write_detail_children(&mut xml_detail, d, &typed);
            Some(proto::Detail {
                xml_detail,
                contact: d
                    .contact
                    .as_ref()
                    .filter(|_| typed.contact)
                    .map(|c| proto::Contact {
                        endpoint: text(&c.endpoint),
                        callsign: text(&c.callsign),
                    }),
                group: d
                    .group
                    .as_ref()
                    .filter(|_| typed.group)
                    .map(|g| proto::Group {
                        name: text(&g.name),
                        role: text(&g.role),
                    }),
                precision_location: d
                    .precision_location
                    .as_ref()
                    .filter(|_| typed.precision_location)
                    .map(|p| proto::PrecisionLocation {
                        geopointsrc: text(&p.geopointsrc),
                        altsrc: text(&p.altsrc),
                    }),
                status: d
                    .status
                    .as_ref()
                    .filter(|_| typed.status)
                    .map(|s| proto::Status {
                        battery: s.battery.unwrap_or(0),
                    }),
                takv: d.takv.as_ref().filter(|_| typed.takv).map(|t| proto::Takv {
                    device: text(&t.device),
                    platform: text(&t.platform),
                    os: text(&t.os),
                    version: text(&t.version),
                }),
                track: d
                    .track
                    .as_ref()
                    .filter(|_| typed.track)
                    .map(|t| proto::Track {
                        speed: t.speed.unwrap_or(0.0),
                        course: t.course.unwrap_or(0.0),
                    }),
            })
        };
        proto::CotEvent {
            r#type: self.cot_type.to_string(),
            access: text(&self.access),
            qos: text(&self.qos),
            opex: text(&self.opex),
            uid: self.uid.to_string(),
            send_time: ms(self.time),
            start_time: self.start.map(ms).unwrap_or(0),
            stale_time: ms(self.stale),
            how: text(&self.how),
            lat: self.point.lat,
            lon: self.point.lon,
            hae: self.point.hae,
            ce: self.point.ce,
            le: self.point.le,
            detail,
            caveat: text(&self.caveat),
            releaseable_to: text(&self.releasable_to),
        }
    }

    /// This event wrapped in a `TakMessage` (without `takControl`).
    pub fn to_tak_message(&self) -> TakMessage {
        TakMessage {
            tak_control: None,
            cot_event: Some(self.to_proto()),
            submission_time: 0,
            creation_time: 0,
        }
    }

    /// The event of a protobuf `CotEvent`, validated like a parsed XML event (uid, type, finite
    /// numbers, times up to 9999) with `xmlDetail` parsed under `limits`.
    pub fn from_proto(p: &proto::CotEvent, limits: &CotLimits) -> Result<CotEvent, CotError> {
        if p.uid.is_empty() {
            return Err(CotError::missing("cotEvent.uid"));
        }
        if p.r#type.is_empty() {
            return Err(CotError::missing("cotEvent.type"));
        }
        let mut ev = CotEvent::new(
            &p.uid,
            &p.r#type,
            time_from_ms("cotEvent.sendTime", p.send_time)?,
            time_from_ms("cotEvent.staleTime", p.stale_time)?,
        );
        ev.start = match p.start_time {
            0 => None,
            t => Some(time_from_ms("cotEvent.startTime", t)?),
        };
        ev.how = non_empty(&p.how);
        ev.access = non_empty(&p.access);
        ev.qos = non_empty(&p.qos);
        ev.opex = non_empty(&p.opex);
        ev.caveat = non_empty(&p.caveat);
        ev.releasable_to = non_empty(&p.releaseable_to);
        ev.point = Point {
            lat: finite("cotEvent.lat", p.lat)?,
            lon: finite("cotEvent.lon", p.lon)?,
            hae: finite("cotEvent.hae", p.hae)?,
            ce: finite("cotEvent.ce", p.ce)?,
            le: finite("cotEvent.le", p.le)?,
            extra_attrs: Vec::new(),
        };
        if let Some(pd) = &p.detail {
            let mut d = if pd.xml_detail.trim().is_empty() {
                Detail::default()
            } else {
                parse_detail_xml(&pd.xml_detail, limits)
                    .map_err(|e| CotError::invalid("cotEvent.detail.xmlDetail", e.to_string()))?
            };
            if let (None, Some(c)) = (&d.contact, &pd.contact) {
                d.contact = Some(Contact {
                    callsign: non_empty(&c.callsign),
                    endpoint: non_empty(&c.endpoint),
                    extra: Default::default(),
                });
            }
            if let (None, Some(g)) = (&d.group, &pd.group) {
                d.group = Some(Group {
                    name: non_empty(&g.name),
                    role: non_empty(&g.role),
                    extra: Default::default(),
                });
            }
            if let (None, Some(pl)) = (&d.precision_location, &pd.precision_location) {
                d.precision_location = Some(PrecisionLocation {
                    geopointsrc: non_empty(&pl.geopointsrc),
                    altsrc: non_empty(&pl.altsrc),
                    extra: Default::default(),
                });
            }
            if let (None, Some(s)) = (&d.status, &pd.status) {
                d.status = Some(Status {
                    battery: Some(s.battery),
                    extra: Default::default(),
                });
            }
            if let (None, Some(t)) = (&d.takv, &pd.takv) {
                d.takv = Some(Takv {
                    device: non_empty(&t.device),
                    platform: non_empty(&t.platform),
                    os: non_empty(&t.os),
                    version: non_empty(&t.version),
                    extra: Default::default(),
                });
            }
            if let (None, Some(t)) = (&d.track, &pd.track) {
                // A non-finite course or speed is garbage; drop that value, keep the rest.
                d.track = Some(Track {
                    course: Some(t.course).filter(|v| v.is_finite()),
                    speed: Some(t.speed).filter(|v| v.is_finite()),
                    extra: Default::default(),
                });
            }
            ev.detail = d;
        }
        Ok(ev)
    }

    /// The event of a `TakMessage`; an error if it carries none.
    pub fn from_tak_message(msg: &TakMessage, limits: &CotLimits) -> Result<CotEvent, ProtoError> {
        let p = msg.cot_event.as_ref().ok_or(ProtoError::NoEvent)?;
        Ok(CotEvent::from_proto(p, limits)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(read_varint(&[0x00]), Ok(Some((0, 1))));
        assert_eq!(read_varint(&[0xac, 0x02]), Ok(Some((300, 2))));
        assert_eq!(read_varint(&[0xac]), Ok(None));
        assert_eq!(read_varint(&[0xff; 10]), Err(()));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&max), Ok(Some((u64::MAX, 10))));
    }

    #[test]
    fn mesh_header_errors_are_named() {
        assert_eq!(decode_mesh(&[]), Err(ProtoError::Truncated));
        assert_eq!(
            decode_mesh(&[0xbf, 0x02, 0xbf]),
            Err(ProtoError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            decode_mesh(b"<event"),
            Err(ProtoError::BadMagic {
                found: b'<',
                offset: 0
            })
        );
        assert_eq!(
            decode_mesh(&[0xbf, 0x01, 0x00]),
            Err(ProtoError::BadMagic {
                found: 0,
                offset: 2
            })
        );
        assert!(decode_mesh(&[0xbf, 0x01, 0xbf]).is_ok());
    }

    #[test]
    fn stream_splitter_checks_magic_and_length() {
        let mut s = ProtoStreamSplitter::new(100);
        s.push(&[0xbf, 0x80]);
        assert_eq!(s.next_frame(), Ok(None));
        s.push(&[0x01]);
        assert_eq!(
            s.next_frame(),
            Err(ProtoError::TooLarge {
                size: 128,
                max: 100
            })
        );
        let mut s = ProtoStreamSplitter::new(100);
        s.push(&[0xbf, 0x00, 0x41]);
        assert_eq!(s.next_frame(), Ok(Some(Bytes::new())));
        assert_eq!(
            s.next_frame(),
            Err(ProtoError::BadMagic {
                found: 0x41,
                offset: 2
            })
        );
    }
}
