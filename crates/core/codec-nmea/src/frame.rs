//! Sentence framing: start character, optional NMEA 4.x tag block, address (talker + type),
//! comma-separated fields and the `*hh` checksum.
//!
//! Framing works on borrowed bytes and never allocates on success: a [`Frame`] points into the
//! caller's line. The AIS crate reuses it for `!AIVDM` sentences.
//!
//! Tag blocks (`\s:station,c:1700000000*hh\` before the sentence) are parsed, not just
//! skipped: their checksum is verified like a sentence's, and the source (`s:`), UNIX time
//! (`c:`), line count (`n:`) and group (`g:`) parameters are exposed on [`TagBlock`]. Unknown
//! parameters are ignored.

use crate::NmeaError;

/// Framing options. Every bound is named and configurable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameOptions {
    /// Longest sentence accepted, from `$`/`!` through the checksum, without tag block and
    /// line ending. The standard says 82 including CR/LF; real receivers exceed it (long GSV,
    /// multi-constellation GSA), so the default is 128. Longer sentences are rejected.
    pub max_sentence_len: usize,
    /// Longest tag block accepted, backslashes included.
    pub max_tag_block_len: usize,
    /// Reject sentences without a `*hh` checksum (the default). Some old receivers omit it.
    pub require_checksum: bool,
}

impl Default for FrameOptions {
    fn default() -> Self {
        FrameOptions {
            max_sentence_len: 128,
            max_tag_block_len: 256,
            require_checksum: true,
        }
    }
}

/// A two-character talker id such as `GP` or `GN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Talker(pub [u8; 2]);

impl Talker {
    /// GPS.
    pub const GP: Talker = Talker(*b"GP");
    /// Multi-constellation (combined) GNSS.
    pub const GN: Talker = Talker(*b"GN");
    /// GLONASS.
    pub const GL: Talker = Talker(*b"GL");
    /// Galileo.
    pub const GA: Talker = Talker(*b"GA");
    /// BeiDou (NMEA 4.x spelling).
    pub const GB: Talker = Talker(*b"GB");
    /// BeiDou (older spelling).
    pub const BD: Talker = Talker(*b"BD");
    /// AIS mobile station.
    pub const AI: Talker = Talker(*b"AI");

    /// The talker as text. Talkers are checked to be ASCII alphanumerics when framed.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// True for the GNSS talkers named in this crate's scope (GP, GN, GL, GA, GB, BD).
    pub fn is_gnss(&self) -> bool {
        matches!(
            *self,
            Talker::GP | Talker::GN | Talker::GL | Talker::GA | Talker::GB | Talker::BD
        )
    }
}

impl std::fmt::Display for Talker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed NMEA 4.x tag block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagBlock<'a> {
    /// The parameters between the backslashes, without the checksum.
    pub raw: &'a str,
    /// `s:` source / station id.
    pub source: Option<&'a str>,
    /// `c:` UNIX time, in milliseconds. Values above 10^11 are taken as milliseconds already
    /// (some base stations send them), smaller ones as seconds.
    pub unix_time_ms: Option<i64>,
    /// `n:` line count.
    pub line_count: Option<u32>,
    /// `g:` sentence group, e.g. `1-2-73874`.
    pub group: Option<&'a str>,
}

/// A framed sentence: checksum verified, fields not yet interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The tag block in front of the sentence, if any.
    pub tag_block: Option<TagBlock<'a>>,
    /// `b'$'` (parametric) or `b'!'` (encapsulated, e.g. AIS).
    pub start: u8,
    /// Talker id.
    pub talker: Talker,
    /// Sentence type, e.g. `GGA` or `VDM`.
    pub kind: &'a str,
    /// Everything after the address field's comma, up to `*`.
    pub fields: &'a str,
    /// The stated checksum, if the sentence had one (it then matched).
    pub checksum: Option<u8>,
}

impl<'a> Frame<'a> {
    /// The comma-separated data fields, in order (field 1 first).
    pub fn fields(&self) -> std::str::Split<'a, char> {
        self.fields.split(',')
    }
}

/// Trims trailing CR, LF (and stray spaces a serial port may leave) from a line.
fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., last] = line {
        if matches!(*last, b'\r' | b'\n' | b' ' | b'\0') {
            line = rest;
        } else {
            break;
        }
    }
    line
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Splits `body*hh` into the body and verified checksum. `offset` locates `body` in the line
/// for error messages. Every byte must be printable ASCII.
fn checked_body(
    bytes: &[u8],
    offset: usize,
    require_checksum: bool,
) -> Result<(&[u8], Option<u8>), NmeaError> {
    let mut xor = 0u8;
    for (i, &b) in bytes.iter().enumerate() {
        if !(0x20..=0x7E).contains(&b) {
            return Err(NmeaError::NotAscii {
                byte: b,
                offset: offset + i,
            });
        }
        if b == b'*' {
            let body = bytes.get(..i).unwrap_or_default();
            let tail = bytes.get(i + 1..).unwrap_or_default();
            let stated = match tail {
                [h, l] => match (hex_val(*h), hex_val(*l)) {
                    (Some(h), Some(l)) => (h << 4) | l,
                    _ => {
                        return Err(NmeaError::MalformedChecksum(
                            String::from_utf8_lossy(tail).into_owned(),
                        ));
                    }
                },
                _ => {
                    return Err(NmeaError::MalformedChecksum(
                        String::from_utf8_lossy(tail).into_owned(),
                    ));
                }
            };
            if stated != xor {
                return Err(NmeaError::BadChecksum {
                    computed: xor,
                    stated,
                });
            }
            return Ok((body, Some(stated)));
        }
        xor ^= b;
    }
    if require_checksum {
        Err(NmeaError::MissingChecksum)
    } else {
        Ok((bytes, None))
    }
}

fn parse_tag_block(raw: &str) -> Result<TagBlock<'_>, NmeaError> {
    let mut tb = TagBlock {
        raw,
        source: None,
        unix_time_ms: None,
        line_count: None,
        group: None,
    };
    if raw.is_empty() {
        return Ok(tb);
    }
    for param in raw.split(',') {
        let Some((key, value)) = param.split_once(':') else {
            return Err(NmeaError::BadTagBlock(format!(
                "parameter {param:?} is not key:value"
            )));
        };
        match key {
            "s" => tb.source = Some(value),
            "g" => tb.group = Some(value),
            "n" => {
                tb.line_count = Some(value.parse().map_err(|_| {
                    NmeaError::BadTagBlock(format!("line count n:{value:?} is not a number"))
                })?)
            }
            "c" => {
                let v: i64 = value.parse().map_err(|_| {
                    NmeaError::BadTagBlock(format!("time c:{value:?} is not a number"))
                })?;
                if v < 0 {
                    return Err(NmeaError::BadTagBlock(format!(
                        "time c:{value:?} is negative"
                    )));
                }
                tb.unix_time_ms = Some(if v > 100_000_000_000 {
                    v
                } else {
                    v.saturating_mul(1000)
                });
            }
            // Destination, relative time, text: carried in `raw`, not interpreted.
            _ => {}
        }
    }
    Ok(tb)
}

/// Frames one line: strips the line ending, parses and verifies an optional tag block,
/// checks length, start character, printable ASCII and checksum, and splits off the address.
pub fn parse_frame<'a>(line: &'a [u8], opts: &FrameOptions) -> Result<Frame<'a>, NmeaError> {
    let line = trim_line_end(line);
    let mut rest = line;
    let mut tag_block = None;
    let mut offset = 0;
    if let [b'\\', after @ ..] = rest {
        let Some(end) = after.iter().position(|&b| b == b'\\') else {
            return Err(NmeaError::BadTagBlock("no closing backslash".into()));
        };
        if end + 2 > opts.max_tag_block_len {
            return Err(NmeaError::TooLong {
                what: "tag block",
                len: end + 2,
                max: opts.max_tag_block_len,
            });
        }
        let inner = after.get(..end).unwrap_or_default();
        let (body, _) = checked_body(inner, 1, opts.require_checksum).map_err(|e| match e {
            NmeaError::BadChecksum { .. }
            | NmeaError::MalformedChecksum(_)
            | NmeaError::MissingChecksum
            | NmeaError::NotAscii { .. } => NmeaError::BadTagBlock(e.to_string()),
            other => other,
        })?;
        // checked_body verified printable ASCII, so this conversion cannot fail.
        let body = std::str::from_utf8(body).unwrap_or_default();
        tag_block = Some(parse_tag_block(body)?);
        rest = after.get(end + 1..).unwrap_or_default();
        offset = end + 2;
    }
    if rest.is_empty() {
        return Err(NmeaError::Empty);
    }
    if rest.len() > opts.max_sentence_len {
        return Err(NmeaError::TooLong {
            what: "sentence",
            len: rest.len(),
            max: opts.max_sentence_len,
        });
    }
    let (start, after_start) = match rest {
        [s @ (b'$' | b'!'), tail @ ..] => (*s, tail),
        [s, ..] => {
            return Err(NmeaError::BadStart(if s.is_ascii_graphic() {
                format!("{:?}", *s as char)
            } else {
                format!("byte 0x{s:02X}")
            }));
        }
        [] => return Err(NmeaError::Empty),
    };
    let (body, checksum) = checked_body(after_start, offset + 1, opts.require_checksum)?;
    // Printable ASCII was verified byte by byte above.
    let body = std::str::from_utf8(body).unwrap_or_default();
    let (address, fields) = match body.split_once(',') {
        Some((a, f)) => (a, f),
        None => (body, ""),
    };
    let ab = address.as_bytes();
    if let [b'P', ..] = ab {
        return Err(NmeaError::Unsupported(address.to_owned()));
    }
    let (talker, kind) = match ab {
        [t0, t1, k0, k1, k2]
            if t0.is_ascii_alphanumeric()
                && t1.is_ascii_alphanumeric()
                && [k0, k1, k2].iter().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (Talker([*t0, *t1]), address.get(2..).unwrap_or_default())
        }
        _ => return Err(NmeaError::BadAddress(address.to_owned())),
    };
    if !body.contains(',') {
        return Err(NmeaError::Truncated {
            sentence: static_kind(kind),
            got: 0,
            need: 1,
        });
    }
    Ok(Frame {
        tag_block,
        start,
        talker,
        kind,
        fields,
        checksum,
    })
}

/// Maps a sentence type to a `'static` name for errors; unknown types become `sentence`.
pub(crate) fn static_kind(kind: &str) -> &'static str {
    match kind {
        "GGA" => "GGA",
        "RMC" => "RMC",
        "VTG" => "VTG",
        "GLL" => "GLL",
        "GSA" => "GSA",
        "GSV" => "GSV",
        "ZDA" => "ZDA",
        "VDM" => "VDM",
        "VDO" => "VDO",
        _ => "sentence",
    }
}

/// The NMEA checksum of `body` (the bytes between the start character and `*`).
pub fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0, |acc, b| acc ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_with_tag_block_and_crlf() {
        let inner = b"s:r003669945,c:1241544035";
        let line = format!(
            "\\{}*{:02X}\\!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C\r\n",
            std::str::from_utf8(inner).unwrap(),
            checksum(inner)
        );
        let f = parse_frame(line.as_bytes(), &FrameOptions::default()).unwrap();
        let tb = f.tag_block.unwrap();
        assert_eq!(tb.source, Some("r003669945"));
        assert_eq!(tb.unix_time_ms, Some(1_241_544_035_000));
        assert_eq!(f.kind, "VDM");
        assert_eq!(f.start, b'!');
        assert_eq!(f.talker, Talker::AI);
    }

    #[test]
    fn rejects_bad_checksum_with_both_values() {
        let e = parse_frame(b"$GPGGA,1*00", &FrameOptions::default()).unwrap_err();
        assert_eq!(e.reason(), "bad_checksum");
        assert!(e.to_string().starts_with("checksum mismatch: computed"));
    }
}
