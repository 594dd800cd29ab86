//! Sans-IO splitting of TAK's streaming XML: a TCP stream that is a plain concatenation of
//! `<event>…</event>` documents, sometimes with XML declarations, whitespace or comments
//! between them.
//!
//! TAK Server itself splits on the literal token `</event>`. That breaks on a `</event>` inside
//! a comment or CDATA section, so this splitter runs a small byte-level lexer instead: it tracks
//! tags, quoted attribute values, comments, CDATA sections and processing instructions, and a
//! frame ends where the root element's depth returns to zero. Every byte is examined exactly
//! once, whatever the read sizes, so splitting is O(n). The lexer state survives between
//! pushes, so an event may be split across reads at any byte.
//!
//! A frame is any complete root element. It is usually `<event>`, but the first frame of a
//! connection may be TAK's `<auth>` message; telling them apart is the parser's job.

use bytes::{Buf, Bytes, BytesMut};

use crate::xml::parse::{blank_event, parse_fast_prefix, suspicious_byte};
use crate::{CotEvent, CotLimits};

/// Why the stream cannot be split any further. The caller closes the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A frame (or the junk before one) grew beyond the limit without completing.
    #[error("XML event exceeds {max} bytes (at stream offset {offset})")]
    TooLarge {
        /// The frame limit.
        max: usize,
        /// Stream offset where the frame started.
        offset: u64,
    },
    /// Something other than whitespace, declarations or comments between events.
    #[error("unexpected byte 0x{byte:02x} between events at stream offset {offset}")]
    Garbage {
        /// The offending byte.
        byte: u8,
        /// Its stream offset.
        offset: u64,
    },
    /// Markup the stream cannot contain (`<!DOCTYPE`, `</x>` with nothing open, `< x`).
    #[error("malformed XML at stream offset {offset}: {reason}")]
    Malformed {
        /// Stream offset of the offending byte.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

impl SplitError {
    /// A short machine-readable reason, for a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            SplitError::TooLarge { .. } => "frame_too_large",
            SplitError::Garbage { .. } => "garbage",
            SplitError::Malformed { .. } => "malformed_xml",
        }
    }
}

/// Lexer state; each variant says what the previous bytes opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    /// Character data (or the gap between frames).
    Text,
    /// After `<`.
    Lt,
    /// After `<!`.
    Bang,
    /// After `<!-`.
    BangDash,
    /// Inside `<!-- … -->`; how many `-` were just seen (saturating at 2).
    Comment(u8),
    /// After `<![`; how many bytes of `CDATA[` matched so far.
    CdataOpen(u8),
    /// Inside `<![CDATA[ … ]]>`; how many `]` were just seen (saturating at 2).
    Cdata(u8),
    /// Inside `<? … ?>`; whether a `?` was just seen.
    Pi(bool),
    /// Inside a start tag; the open quote (0 for none) and whether `/` was just seen.
    StartTag { quote: u8, slash: bool },
    /// Inside an end tag.
    EndTag,
}

const CDATA: &[u8; 6] = b"CDATA[";

/// Splits a TAK XML stream into complete root-element frames.
///
/// ```
/// use rampart_codec_cot::XmlStreamSplitter;
/// let mut s = XmlStreamSplitter::new(64 * 1024);
/// s.push(b"<?xml version=\"1.0\"?>\n<event uid=\"a\"><point/></ev");
/// assert_eq!(s.next_frame().unwrap(), None);
/// s.push(b"ent><event uid=\"b\"/>");
/// assert_eq!(&s.next_frame().unwrap().unwrap()[..], b"<event uid=\"a\"><point/></event>");
/// assert_eq!(&s.next_frame().unwrap().unwrap()[..], b"<event uid=\"b\"/>");
/// assert_eq!(s.next_frame().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct XmlStreamSplitter {
    /// Bytes received and not yet handed out or discarded.
    buf: BytesMut,
    /// Next byte of `buf` to examine.
    pos: usize,
    /// Where in `buf` the current frame's root start tag begins, once seen.
    frame_start: Option<usize>,
    /// Position of the most recent `<`.
    lt_at: usize,
    /// Open elements of the current frame.
    depth: usize,
    state: Lex,
    /// Stream offset of `buf[0]`, for error messages.
    offset: u64,
    max_frame: usize,
    failed: Option<SplitError>,
}

/// Finds `</event>` for [`XmlStreamSplitter::next_event`]. Built once per process: building
/// one costs about as much as a search through a whole event, and one per splitter would add
/// its size to every connection.
static END_TAG: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"</event>"));

impl Default for XmlStreamSplitter {
    fn default() -> Self {
        Self::new(crate::CotLimits::DEFAULT_MAX_EVENT_BYTES)
    }
}

impl XmlStreamSplitter {
    /// A splitter whose frames may be at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        XmlStreamSplitter {
            buf: BytesMut::new(),
            pos: 0,
            frame_start: None,
            lt_at: 0,
            depth: 0,
            state: Lex::Text,
            offset: 0,
            max_frame,
            failed: None,
        }
    }

    /// Splits off and parses the next event in one pass, when it is in the plain XML subset
    /// TAK clients write (see `parse_fast_prefix`), is complete in the buffer and fits the
    /// limits. `None` means "use [`Self::next_frame`] and [`crate::parse_xml`]", which then
    /// decide, with their usual results and errors; whenever this returns an event, they
    /// would have returned the same frame and the same event.
    ///
    /// The frame comes back in its own allocation (a relay cache may keep it long after the
    /// read buffer is gone).
    ///
    /// Only tried between frames: white space and `<?…?>` declarations before the event are
    /// skipped as the lexer skips them; comments or anything else leave it to the lexer.
    pub fn next_event(&mut self, limits: &CotLimits) -> Option<(Bytes, CotEvent)> {
        if self.failed.is_some()
            || self.pos != 0
            || self.frame_start.is_some()
            || self.state != Lex::Text
        {
            return None;
        }
        let b = &self.buf[..];
        // What the lexer drops before a frame: white space and processing instructions.
        let mut skip = 0;
        loop {
            skip += b[skip..].iter().position(|c| !c.is_ascii_whitespace())?;
            if b.get(skip..skip + 2) != Some(b"<?") {
                break;
            }
            skip += 2 + memchr::memmem::find(&b[skip + 2..], b"?>")? + 2;
        }
        // The root element ends at an `</event>`; try the first one. Should it not be the
        // root's (one in an attribute value, or a nested `<event>`), the fast reader meets the
        // end of its input inside the root and gives up.
        let rest = &b[skip..];
        let len = END_TAG.find(rest)? + b"</event>".len();
        // The lexer fails a frame that, with what it skipped before it, exceeds `max_frame`
        // (a conservative bound: beyond it the lexer decides).
        if len > limits.max_event_bytes || skip + len > self.max_frame {
            return None;
        }
        let candidate = &rest[..len];
        // The checks parse_xml makes on the whole document (a stricter form of check_chars).
        if candidate
            .iter()
            .fold(false, |acc, &c| acc | suspicious_byte(c))
        {
            return None;
        }
        let text = std::str::from_utf8(candidate).ok()?;
        let mut event = blank_event();
        let len = parse_fast_prefix(text, limits, &mut event)?;
        let frame = Bytes::copy_from_slice(&rest[..len]);
        self.buf.advance(skip + len);
        self.offset += (skip + len) as u64;
        Some((frame, event))
    }

    /// Appends bytes read from the connection. Call [`Self::next_frame`] until it returns
    /// `Ok(None)` after each push, so the buffer never holds more than one read plus one frame.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the bytes not yet returned as frames, e.g. to hand them to a
    /// [`crate::ProtoStreamSplitter`] once TAK protocol negotiation switched the connection to
    /// protobuf. Only whitespace the splitter already skipped is missing from them.
    pub fn take_remaining(&mut self) -> BytesMut {
        let rest = std::mem::take(&mut self.buf);
        *self = XmlStreamSplitter::new(self.max_frame);
        rest
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or the error that makes
    /// the stream unusable (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, SplitError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.scan() {
            Ok(frame) => Ok(frame),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    fn at(&self, i: usize) -> u64 {
        self.offset + i as u64
    }

    fn malformed(&self, reason: &'static str) -> SplitError {
        SplitError::Malformed {
            offset: self.at(self.pos),
            reason,
        }
    }

    fn scan(&mut self) -> Result<Option<Bytes>, SplitError> {
        while self.pos < self.buf.len() {
            // Fast-forward over bytes that change nothing but the position (text inside a
            // frame, quoted values, the rest of a tag), as the byte loop below would.
            let rest = &self.buf[self.pos..];
            let neutral = match self.state {
                Lex::Text if self.frame_start.is_some() => rest.iter().position(|&c| c == b'<'),
                Lex::StartTag { quote, .. } if quote != 0 => rest.iter().position(|&c| c == quote),
                Lex::StartTag { .. } => rest
                    .iter()
                    .position(|&c| matches!(c, b'"' | b'\'' | b'/' | b'>')),
                Lex::EndTag => rest.iter().position(|&c| c == b'>'),
                Lex::Pi(false) => rest.iter().position(|&c| c == b'?'),
                _ => Some(0),
            };
            let skip = neutral.unwrap_or(rest.len());
            if skip > 0 {
                match self.state {
                    Lex::StartTag { quote: 0, .. } => {
                        self.state = Lex::StartTag {
                            quote: 0,
                            slash: false,
                        };
                    }
                    Lex::Pi(_) => self.state = Lex::Pi(false),
                    _ => {}
                }
                self.pos += skip;
                let held_from = self.frame_start.unwrap_or(0);
                if self.pos - held_from > self.max_frame {
                    return Err(SplitError::TooLarge {
                        max: self.max_frame,
                        offset: self.at(held_from),
                    });
                }
                continue;
            }
            let b = self.buf[self.pos];
            let in_frame = self.frame_start.is_some();
            let mut complete = false;
            self.state = match self.state {
                Lex::Text => {
                    if b == b'<' {
                        self.lt_at = self.pos;
                        Lex::Lt
                    } else if in_frame || b.is_ascii_whitespace() {
                        Lex::Text
                    } else {
                        return Err(SplitError::Garbage {
                            byte: b,
                            offset: self.at(self.pos),
                        });
                    }
                }
                Lex::Lt => match b {
                    b'/' if in_frame => Lex::EndTag,
                    b'/' => return Err(self.malformed("end tag with no open element")),
                    b'!' => Lex::Bang,
                    b'?' => Lex::Pi(false),
                    b if b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80 => {
                        if !in_frame {
                            self.frame_start = Some(self.lt_at);
                        }
                        Lex::StartTag {
                            quote: 0,
                            slash: false,
                        }
                    }
                    _ => return Err(self.malformed("'<' not followed by a name")),
                },
                Lex::Bang => match b {
                    b'-' => Lex::BangDash,
                    b'[' if in_frame => Lex::CdataOpen(0),
                    _ => return Err(self.malformed("DOCTYPE and declarations are not allowed")),
                },
                Lex::BangDash => match b {
                    b'-' => Lex::Comment(0),
                    _ => return Err(self.malformed("'<!-' not followed by '-'")),
                },
                Lex::Comment(n) => match b {
                    b'-' => Lex::Comment((n + 1).min(2)),
                    b'>' if n >= 2 => Lex::Text,
                    _ => Lex::Comment(0),
                },
                Lex::CdataOpen(i) => {
                    if CDATA.get(usize::from(i)) == Some(&b) {
                        if usize::from(i) + 1 == CDATA.len() {
                            Lex::Cdata(0)
                        } else {
                            Lex::CdataOpen(i + 1)
                        }
                    } else {
                        return Err(self.malformed("'<![' not followed by 'CDATA['"));
                    }
                }
                Lex::Cdata(n) => match b {
                    b']' => Lex::Cdata((n + 1).min(2)),
                    b'>' if n >= 2 => Lex::Text,
                    _ => Lex::Cdata(0),
                },
                Lex::Pi(q) => match b {
                    b'>' if q => Lex::Text,
                    b'?' => Lex::Pi(true),
                    _ => Lex::Pi(false),
                },
                Lex::StartTag { quote, slash } => {
                    if quote != 0 {
                        Lex::StartTag {
                            quote: if b == quote { 0 } else { quote },
                            slash: false,
                        }
                    } else {
                        match b {
                            b'"' | b'\'' => Lex::StartTag {
                                quote: b,
                                slash: false,
                            },
                            b'/' => Lex::StartTag {
                                quote: 0,
                                slash: true,
                            },
                            b'>' => {
                                if slash {
                                    complete = self.depth == 0;
                                } else {
                                    self.depth += 1;
                                }
                                Lex::Text
                            }
                            _ => Lex::StartTag {
                                quote: 0,
                                slash: false,
                            },
                        }
                    }
                }
                Lex::EndTag => {
                    if b == b'>' {
                        // In a frame the root start tag has closed, so depth ≥ 1 here.
                        self.depth = self.depth.saturating_sub(1);
                        complete = self.depth == 0;
                        Lex::Text
                    } else {
                        Lex::EndTag
                    }
                }
            };
            self.pos += 1;
            if complete {
                let start = self.frame_start.unwrap_or(0);
                self.buf.advance(start);
                let frame = self.buf.split_to(self.pos - start).freeze();
                self.offset += self.pos as u64;
                self.pos = 0;
                self.frame_start = None;
                self.depth = 0;
                return Ok(Some(frame));
            }
            let held_from = self.frame_start.unwrap_or(0);
            if self.pos - held_from > self.max_frame {
                return Err(SplitError::TooLarge {
                    max: self.max_frame,
                    offset: self.at(held_from),
                });
            }
        }
        // Between frames, whatever was scanned is whitespace or a finished declaration or
        // comment: drop it so idle gaps never accumulate.
        if self.frame_start.is_none() && self.state == Lex::Text {
            self.buf.advance(self.pos);
            self.offset += self.pos as u64;
            self.pos = 0;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(s: &mut XmlStreamSplitter) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(f) = s.next_frame().unwrap() {
            out.push(String::from_utf8(f.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn splits_concatenated_events_with_declarations() {
        let mut s = XmlStreamSplitter::new(1024);
        s.push(b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<event a='>'><detail><x><![CDATA[</event>]]></x><!-- </event> --></detail></event><?xml version=\"1.0\"?><event/>  \r\n");
        assert_eq!(
            frames(&mut s),
            vec![
                "<event a='>'><detail><x><![CDATA[</event>]]></x><!-- </event> --></detail></event>",
                "<event/>"
            ]
        );
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn rejects_garbage_and_stays_failed() {
        let mut s = XmlStreamSplitter::new(1024);
        s.push(b"<event/>junk");
        assert_eq!(frames_until_err(&mut s), 1);
        let e = s.next_frame().unwrap_err();
        assert_eq!(
            e,
            SplitError::Garbage {
                byte: b'j',
                offset: 8
            }
        );
        assert_eq!(s.next_frame().unwrap_err(), e);
    }

    fn frames_until_err(s: &mut XmlStreamSplitter) -> usize {
        let mut n = 0;
        while let Ok(Some(_)) = s.next_frame() {
            n += 1;
        }
        n
    }

    #[test]
    fn oversize_frame_is_an_error_before_it_completes() {
        let mut s = XmlStreamSplitter::new(20);
        s.push(b"<event>");
        assert_eq!(s.next_frame().unwrap(), None);
        s.push(&[b'x'; 30]);
        assert!(matches!(
            s.next_frame(),
            Err(SplitError::TooLarge { max: 20, offset: 0 })
        ));
    }

    #[test]
    fn take_remaining_hands_over_unconsumed_bytes() {
        let mut s = XmlStreamSplitter::new(1024);
        s.push(b"<event/>\xbf\x03abc");
        assert_eq!(&s.next_frame().unwrap().unwrap()[..], b"<event/>");
        assert_eq!(&s.take_remaining()[..], b"\xbf\x03abc");
    }
}
