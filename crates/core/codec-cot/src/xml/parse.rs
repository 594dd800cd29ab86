//! CoT XML → [`CotEvent`], over the borrowed input.
//!
//! One pass, no DOM: the parser walks the events of the document and, for every element it
//! does not model, records the byte span so the element can be kept verbatim. Typed detail
//! elements keep their unmodelled attributes and child content in [`Extra`], so
//! `parse(encode(parse(x))) == parse(x)` holds for every accepted input.
//!
//! Speed (a TAK server parses hundreds of thousands of PLIs a second): the events come first
//! from [`FastReader`], a reader for the plain XML TAK clients write, and attributes are read
//! once, by byte spans, borrowing their values unless they hold escapes. Any input the fast
//! reader does not take, and any error, is read again with quick-xml, whose behaviour
//! (results and error messages) is the reference: the unit tests check that both agree.
//!
//! Bounds: the input size, the nesting depth and the number of detail elements are checked
//! against [`CotLimits`] before anything proportional to them is allocated.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use rampart_model::{Text, Timestamp};

use crate::event::{
    Attr, Chat, ChatGroup, Contact, CotEvent, Detail, Emergency, Extra, Group, Link, Point,
    PrecisionLocation, Remarks, Status, Takv, Track, UidDetail,
};
use crate::{CotError, CotLimits};

/// Parses one CoT XML document (optionally with an XML declaration, comments and whitespace
/// around the `<event>`) into a [`CotEvent`].
///
/// Rejects, naming the element or attribute: a missing `uid`, `type`, `time`, `stale` or
/// `point` (with `lat` and `lon`), numbers that are not finite numbers, times that are not
/// RFC 3339 / xsd:dateTime between 1970 and 9999, malformed XML, and inputs beyond `limits`.
pub fn parse_xml(input: &[u8], limits: &CotLimits) -> Result<CotEvent, CotError> {
    if input.len() > limits.max_event_bytes {
        return Err(CotError::TooLarge {
            size: input.len(),
            max: limits.max_event_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| CotError::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // One byte-order mark is allowed; a second one is a character before the root element.
    // quick-xml would skip it silently and report positions past it, which would cut the
    // verbatim detail spans three bytes short (found by the `cot_xml` fuzz target).
    if text.starts_with('\u{feff}') {
        return Err(CotError::invalid(
            "document",
            "a second byte-order mark (U+FEFF) before the root element".to_string(),
        ));
    }
    check_chars(text)?;
    // The fast reader handles the plain XML every TAK client writes and gives up on the
    // rest (comments, CDATA, references in text, anything malformed); whatever it does not
    // accept, or any error, is decided again by quick-xml so results and errors stay exact.
    let mut ev = blank_event();
    if Parser::with_fast(text, limits).document(&mut ev).is_ok() {
        return Ok(ev);
    }
    let mut ev = blank_event();
    Parser::new(text, limits).document(&mut ev)?;
    Ok(ev)
}

/// Parses the `<event>` root element that `text` starts with, where `text` may go on past
/// it (the rest of a stream read), with the fast reader only, into `ev` (a
/// [`blank_event`]: filled in place, as the event is large to move). Returns the length of
/// the root element, or `None` whenever the fast reader does not take it.
///
/// `text` must already have passed the checks [`parse_xml`] makes on a whole document (UTF-8,
/// [`check_chars`], no byte-order mark), and the caller must bound the returned length by
/// `limits.max_event_bytes`. Then the event is the one `parse_xml` returns for
/// `&text[..len]`: that runs this same reader over the same bytes and then finds nothing
/// after the root. On `None`, the caller splits and parses the usual way.
pub(crate) fn parse_fast_prefix(
    text: &str,
    limits: &CotLimits,
    ev: &mut CotEvent,
) -> Option<usize> {
    if !text.starts_with('<') {
        return None;
    }
    let mut p = Parser::with_fast(text, limits);
    match p.next().ok()? {
        (0, Event::Start(e)) if local_name(&e) == b"event" => p.event(&e, 0, true, ev),
        (0, Event::Empty(e)) if local_name(&e) == b"event" => p.event(&e, 0, false, ev),
        _ => return None,
    }
    .ok()?;
    Some(p.pos())
}

/// Whether `b` may hold a character [`check_chars`] rejects: a C0 control other than tab,
/// LF and CR, or `0xEF`, the first byte of U+FFFE, U+FFFF (and of the byte-order mark).
pub(crate) fn suspicious_byte(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xef
}

/// The event the parser fills in.
pub(crate) fn blank_event() -> CotEvent {
    let mut ev = CotEvent::new("", "", Timestamp(0), Timestamp(0));
    ev.start = None;
    ev
}

/// Rejects characters XML 1.0 does not allow anywhere (C0 controls other than tab, LF, CR;
/// U+FFFE, U+FFFF). quick-xml lets them through, but TAK clients' parsers reject the whole
/// event, so relaying them would break other clients.
fn check_chars(text: &str) -> Result<(), CotError> {
    let b = text.as_bytes();
    // Fast path: no C0 control but tab/LF/CR, and no byte that could start U+FFFE/U+FFFF.
    // Branch-free over fixed-size chunks so it vectorises.
    let suspicious = |c: u8| (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')) || c == 0xef;
    if b.chunks(32)
        .all(|chunk| !chunk.iter().fold(false, |acc, &c| acc | suspicious(c)))
    {
        return Ok(());
    }
    for (i, &c) in b.iter().enumerate() {
        let bad = (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r'))
            || (c == 0xef
                && b.get(i + 1) == Some(&0xbf)
                && matches!(b.get(i + 2), Some(0xbe | 0xbf)));
        if bad {
            return Err(CotError::invalid(
                "document",
                format!("character not allowed in XML at byte {i}"),
            ));
        }
    }
    Ok(())
}

/// True when `c` may not appear in XML 1.0 content, even as a character reference.
fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// A loose XML `Name` check: what TAK clients' parsers accept as element or attribute name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':' || !c.is_ascii())
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.') || !c.is_ascii())
}

/// Parses the `xmlDetail` of a TAK protobuf event: the detail's children without the
/// `<detail>` wrapper, as TAK senders write it.
pub(crate) fn parse_detail_xml(xml: &str, limits: &CotLimits) -> Result<Detail, CotError> {
    if xml.len() > limits.max_event_bytes {
        return Err(CotError::TooLarge {
            size: xml.len(),
            max: limits.max_event_bytes,
        });
    }
    check_chars(xml)?;
    let wrapped = format!("<detail>{xml}</detail>");
    // As in parse_xml: the fast reader first, quick-xml for anything it does not accept.
    let mut detail = Detail::default();
    if detail_fragment(&mut Parser::with_fast(&wrapped, limits), &mut detail).is_ok() {
        return Ok(detail);
    }
    let mut detail = Detail::default();
    detail_fragment(&mut Parser::new(&wrapped, limits), &mut detail)?;
    Ok(detail)
}

fn detail_fragment(p: &mut Parser<'_, '_>, detail: &mut Detail) -> Result<(), CotError> {
    let (_, first) = p.next()?;
    if !matches!(first, Event::Start(_)) {
        return Err(CotError::invalid("xmlDetail", "not an XML fragment"));
    }
    p.detail(detail)?;
    p.epilog()
}

/// The content of an element the parser stepped over.
struct Content<'a> {
    /// Byte range between the start tag's `>` and the end tag's `<`.
    inner: Range<usize>,
    /// Direct child elements.
    children: Vec<Child<'a>>,
    /// Non-whitespace character data (text, references, CDATA) directly inside.
    text: bool,
    /// Comments, CDATA sections or processing instructions directly inside.
    markup: bool,
}

struct Child<'a> {
    start: BytesStart<'a>,
    span: Range<usize>,
    /// Written as `<x/>`.
    empty: bool,
}

/// Deepest nesting the fast reader tracks; deeper documents go to quick-xml.
const FAST_DEPTH: usize = 32;

/// A reader for the common subset of XML, producing the same events at the same offsets as
/// quick-xml's reader (with the configuration [`Parser::new`] uses) does on that subset.
///
/// It gives up (`None`) on comments, CDATA, DOCTYPE, processing instructions other than an
/// XML declaration before the root, `&`, `>` or `]` in text, mismatched or stray end tags,
/// input ending inside markup, and nesting deeper than [`FAST_DEPTH`]. Start tags end at the
/// first `>` outside quotes, as quick-xml's do; their names and attributes are then checked
/// by [`Parser::check`] like any other.
struct FastReader<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    /// Name of each open element: start offset and length.
    open: [(u32, u32); FAST_DEPTH],
    root_seen: bool,
    /// The attributes of the start tag at `spans_at`, the last one read.
    spans: AttrSpans,
    spans_at: Option<usize>,
}

impl<'a> FastReader<'a> {
    fn new(src: &'a str) -> Self {
        FastReader {
            src,
            pos: 0,
            depth: 0,
            open: [(0, 0); FAST_DEPTH],
            root_seen: false,
            spans: AttrSpans::new(),
            spans_at: None,
        }
    }

    fn next(&mut self) -> Option<(usize, Event<'a>)> {
        let b = self.src.as_bytes();
        loop {
            let at = self.pos;
            let Some(&first) = b.get(at) else {
                return Some((at, Event::Eof));
            };
            if first != b'<' {
                let len = b[at..]
                    .iter()
                    .position(|&c| c == b'<')
                    .unwrap_or(b.len() - at);
                let end = at + len;
                if b[at..end].iter().any(|&c| matches!(c, b'&' | b'>' | b']')) {
                    return None;
                }
                self.pos = end;
                return Some((
                    at,
                    Event::Text(BytesText::from_escaped(self.src.get(at..end)?)),
                ));
            }
            match *b.get(at + 1)? {
                b'/' => {
                    let gt = at + 2 + b.get(at + 2..)?.iter().position(|&c| c == b'>')?;
                    let mut name_end = gt;
                    while name_end > at + 2 && xml_ws(b[name_end - 1]) {
                        name_end -= 1;
                    }
                    let name = b.get(at + 2..name_end)?;
                    self.depth = self.depth.checked_sub(1)?;
                    let (start, len) = self.open[self.depth];
                    if b.get(start as usize..start as usize + len as usize)? != name {
                        return None;
                    }
                    self.pos = gt + 1;
                    return Some((
                        at,
                        Event::End(BytesEnd::new(self.src.get(at + 2..name_end)?)),
                    ));
                }
                b'?' if !self.root_seen
                    && b.get(at + 2..at + 5) == Some(b"xml")
                    && b.get(at + 5).is_some_and(|&c| xml_ws(c)) =>
                {
                    let len = b.get(at + 2..)?.windows(2).position(|w| w == b"?>")?;
                    if b[at + 2..at + 2 + len].contains(&b'<') {
                        return None;
                    }
                    self.pos = at + 2 + len + 2;
                }
                b'?' | b'!' => return None,
                _ => {
                    // A strict tag: an ASCII name, attributes in the subset `scan_attrs`
                    // takes, then `>` or `/>`. Its `>` is the first one outside quotes, where
                    // quick-xml ends it too.
                    let name_end = at
                        + 1
                        + b[at + 1..]
                            .iter()
                            .position(|&c| NAME_BYTES[usize::from(c)] == 0)?;
                    let name_len = name_end - at - 1;
                    if !ascii_name(&b[at + 1..name_end]) {
                        return None;
                    }
                    let stop = match b[name_end] {
                        b'/' | b'>' => name_end,
                        c if xml_ws(c) => scan_attrs(b, name_end, b.len(), &mut self.spans)?,
                        _ => return None,
                    };
                    if stop == name_end {
                        self.spans.n = 0;
                        self.spans.amp = 0;
                        self.spans.slow = false;
                    }
                    let (empty, gt) = match b.get(stop..stop + 2)? {
                        [b'>', _] => (false, stop),
                        b"/>" => (true, stop + 1),
                        _ => return None,
                    };
                    self.spans_at = Some(at);
                    let content_end = if empty { gt - 1 } else { gt };
                    let content = self.src.get(at + 1..content_end)?;
                    self.root_seen = true;
                    self.pos = gt + 1;
                    let start = BytesStart::from_content(content, name_len);
                    if empty {
                        return Some((at, Event::Empty(start)));
                    }
                    if self.depth == FAST_DEPTH {
                        return None;
                    }
                    self.open[self.depth] =
                        (u32::try_from(at + 1).ok()?, u32::try_from(name_len).ok()?);
                    self.depth += 1;
                    return Some((at, Event::Start(start)));
                }
            }
        }
    }
}

struct Parser<'a, 'l> {
    src: &'a str,
    reader: Reader<&'a [u8]>,
    /// Set: events come from the fast reader, and any error means "ask quick-xml".
    fast: Option<FastReader<'a>>,
    limits: &'l CotLimits,
    detail_elements: usize,
}

fn is_ws(t: &BytesText<'_>) -> bool {
    t.iter().all(|b| b.is_ascii_whitespace())
}

fn qname<'b>(e: &'b BytesStart<'_>) -> &'b str {
    // The input was checked to be UTF-8, and names are whole tokens of it.
    std::str::from_utf8(e.name().into_inner()).unwrap_or("?")
}

fn local_name<'b>(e: &'b BytesStart<'_>) -> &'b [u8] {
    let q = e.name().into_inner();
    match q.iter().rposition(|&c| c == b':') {
        Some(i) => &q[i + 1..],
        None => q,
    }
}

fn attr_key<'b>(a: &'b Attribute<'_>) -> &'b str {
    std::str::from_utf8(a.key.into_inner()).unwrap_or("?")
}

/// The value of an attribute with XML escapes resolved (called only when it holds a `&`).
///
/// Without a `&` there is nothing to resolve, and the characters XML forbids were already
/// rejected for the whole input by [`check_chars`]; only a character reference can bring
/// one back.
fn unescape<'v>(raw: &'v str, path: &dyn Fn() -> String) -> Result<Cow<'v, str>, CotError> {
    let v = quick_xml::escape::unescape(raw)
        .map_err(|e| CotError::invalid(path(), format!("bad escape in {raw:?}: {e}")))?;
    if v.chars().any(forbidden) {
        return Err(CotError::invalid(
            path(),
            "character reference to a character XML does not allow",
        ));
    }
    Ok(v)
}

/// Checks the syntax of an element's name and attributes (quoting, duplicates, names) with
/// quick-xml's attribute iterator. The slow path: only taken for inputs the fast scanner
/// ([`Parser::check`]) does not handle, so that its errors stay exactly quick-xml's.
fn check_element(e: &BytesStart<'_>, path: &dyn Fn() -> String) -> Result<(), CotError> {
    if !valid_name(qname(e)) {
        return Err(CotError::invalid(
            path(),
            format!("invalid element name {:?}", qname(e)),
        ));
    }
    for a in e.attributes() {
        let a = a.map_err(|err| CotError::invalid(path(), format!("bad attribute: {err}")))?;
        if !valid_name(attr_key(&a)) {
            return Err(CotError::invalid(
                path(),
                format!("invalid attribute name {:?}", attr_key(&a)),
            ));
        }
    }
    Ok(())
}

/// Most attributes on one element the fast scanner handles; more take the slow path.
const FAST_ATTRS: usize = 16;

/// The attributes of a start tag whose syntax was checked: either the byte spans found by
/// the fast scanner (`[key start, key end, value start, value end]` in the source), or a
/// marker that quick-xml's iterator must be used.
struct AttrSpans {
    n: usize,
    spans: [[u32; 4]; FAST_ATTRS],
    /// Bit `i` set: the value of attribute `i` holds a `&` (so it has escapes to resolve).
    amp: u32,
    slow: bool,
}

impl AttrSpans {
    fn new() -> Self {
        AttrSpans {
            n: 0,
            spans: [[0; 4]; FAST_ATTRS],
            amp: 0,
            slow: true,
        }
    }
}

/// Bit 1: ASCII byte allowed in a name; bit 2: ASCII byte allowed to start one (the ASCII
/// part of [`valid_name`]).
const NAME_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            t[b] = 3;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            t[b] = 1;
        }
        b += 1;
    }
    t
};

/// Bytes of `x` equal to `b`: the high bit of each such byte set. Bits above the first
/// match may be spurious, so only the lowest set bit is meaningful.
fn bytes_equal(x: u64, b: u8) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let y = x ^ (LO * u64::from(b));
    y.wrapping_sub(LO) & !y & HI
}

/// The offset of the first `quote` in `buf[from..]`, and whether a `&` comes before it.
fn value_end(buf: &[u8], from: usize, quote: u8) -> Option<(usize, bool)> {
    let mut i = from;
    let mut amp = false;
    while let Some(chunk) = buf.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        let q = bytes_equal(w, quote);
        let a = bytes_equal(w, b'&');
        if q != 0 {
            let at = q.trailing_zeros();
            amp |= a != 0 && a.trailing_zeros() < at;
            return Some((i + (at / 8) as usize, amp));
        }
        amp |= a != 0;
        i += 8;
    }
    while i < buf.len() {
        match buf[i] {
            b if b == quote => return Some((i, amp)),
            b'&' => amp = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// True when `name` is a valid name of ASCII characters only.
fn ascii_name(name: &[u8]) -> bool {
    name.first()
        .is_some_and(|&c| NAME_BYTES[usize::from(c)] & 2 != 0)
        && name.iter().all(|&c| NAME_BYTES[usize::from(c)] != 0)
}

/// Scans the attributes in `b[i..end]` (`i` just after the element name) into `out`,
/// accepting only the strict subset `name="value"` / `name='value'` (no white space around
/// `=`) with ASCII names that are valid and distinct, at most [`FAST_ATTRS`] of them. On that
/// subset quick-xml splits the attributes the same way: it ends a name at `=` or white space,
/// neither of which is a name byte, and a value at the matching quote.
///
/// Returns where the scan stopped: `end`, or the first byte after white space that cannot
/// start a name (`/` or `>` at the end of a tag, say); `None` when the attributes are not in
/// the subset.
fn scan_attrs(b: &[u8], mut i: usize, end: usize, out: &mut AttrSpans) -> Option<usize> {
    out.n = 0;
    out.amp = 0;
    out.slow = false;
    // Every offset below is under `end`, so each fits in a u32 when `end` does.
    u32::try_from(end).ok()?;
    let mut seen = 0u64;
    loop {
        while i < end && xml_ws(b[i]) {
            i += 1;
        }
        if i == end || NAME_BYTES[usize::from(b[i])] & 2 == 0 {
            return Some(i);
        }
        let key_start = i;
        // The rest of the name, over a slice (no bounds check per byte).
        i += 1 + b
            .get(i + 1..end)?
            .iter()
            .position(|&c| NAME_BYTES[usize::from(c)] == 0)?;
        if i + 1 >= end || b[i] != b'=' {
            return None;
        }
        let key_end = i;
        let quote = b[i + 1];
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let value_start = i + 2;
        let (value_end, amp) = value_end(b.get(..end)?, value_start, quote)?;
        i = value_end + 1;
        let key = &b[key_start..key_end];
        // A cheap signature of the name; only names sharing one are compared.
        let sig = 1u64
            << ((key.len() * 7 + usize::from(b[key_start]) + usize::from(b[key_end - 1]) * 3) & 63);
        if out.n == FAST_ATTRS
            || (seen & sig != 0
                && out.spans[..out.n]
                    .iter()
                    .any(|s| b.get(s[0] as usize..s[1] as usize) == Some(key)))
        {
            return None;
        }
        seen |= sig;
        out.spans[out.n] = [
            key_start as u32,
            key_end as u32,
            value_start as u32,
            value_end as u32,
        ];
        out.amp |= u32::from(amp) << out.n;
        out.n += 1;
    }
}

/// `a == b` for the short names of typed fields, without a call to `memcmp`.
fn short_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// XML white space, as quick-xml defines it.
fn xml_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

fn non_empty(v: Cow<'_, str>) -> Option<Text> {
    if v.is_empty() {
        None
    } else {
        Some(Text::from(v.as_ref()))
    }
}

/// `v.trim()`, without the Unicode white space tables when `v` starts and ends with a
/// visible ASCII character.
fn trim(v: &str) -> &str {
    let b = v.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => v,
        _ => v.trim(),
    }
}

/// `v.parse::<f64>()`, with a fast path for plain decimals (`-12.345`).
///
/// When the digits, read as an integer, fit in 53 bits and there are at most 22 after the
/// point, both that integer and the power of ten are exact `f64`s, so one division gives the
/// correctly rounded value, as `str::parse` does. Everything else goes to `str::parse`.
fn parse_float(v: &str) -> Result<f64, std::num::ParseFloatError> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let b = v.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let mut mantissa: u64 = 0;
    let mut int_digits = 0usize;
    let mut frac_digits = 0usize;
    let mut seen_point = false;
    let mut simple = !digits.is_empty() && digits.len() <= 19;
    if simple {
        for &c in digits {
            match c {
                b'0'..=b'9' => {
                    mantissa = mantissa * 10 + u64::from(c - b'0');
                    if seen_point {
                        frac_digits += 1;
                    } else {
                        int_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => {
                    simple = false;
                    break;
                }
            }
        }
    }
    if simple
        && int_digits > 0
        && (!seen_point || frac_digits > 0)
        && mantissa < (1 << 53)
        && frac_digits < POW10.len()
    {
        #[allow(clippy::cast_precision_loss)] // exact: below 2^53
        let m = mantissa as f64;
        let x = m / POW10[frac_digits];
        return Ok(if neg { -x } else { x });
    }
    v.parse::<f64>()
}

fn parse_f64(path: &dyn Fn() -> String, v: &str) -> Result<f64, CotError> {
    match parse_float(trim(v)) {
        Ok(n) if n.is_finite() => Ok(n),
        Ok(_) => Err(CotError::invalid(
            path(),
            format!("not a finite number {v:?}"),
        )),
        Err(_) => Err(CotError::invalid(path(), format!("not a number {v:?}"))),
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The common shape `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` in milliseconds since the epoch, or
/// `None` for anything else (which then goes to the general RFC 3339 parser). Gives the
/// same value as [`Timestamp::parse_rfc3339`]: the fraction is truncated to milliseconds.
fn fast_time(v: &[u8]) -> Option<i64> {
    if v.len() < 20
        || v[4] != b'-'
        || v[7] != b'-'
        || v[10] != b'T'
        || v[13] != b':'
        || v[16] != b':'
    {
        return None;
    }
    let d = |i: usize| -> Option<i64> {
        let c = v[i].wrapping_sub(b'0');
        (c < 10).then_some(i64::from(c))
    };
    let year = d(0)? * 1000 + d(1)? * 100 + d(2)? * 10 + d(3)?;
    let month = d(5)? * 10 + d(6)?;
    let day = d(8)? * 10 + d(9)?;
    let hour = d(11)? * 10 + d(12)?;
    let min = d(14)? * 10 + d(15)?;
    let sec = d(17)? * 10 + d(18)?;
    let mut ms = 0;
    let mut rest = &v[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        for i in 0..3 {
            ms = ms * 10 + if i < digits { d(20 + i)? } else { 0 };
        }
        rest = &rest[1 + digits..];
    }
    if rest != b"Z" {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3_600 + min * 60 + sec) * 1_000) + ms)
}

/// Parses a CoT time: RFC 3339 / xsd:dateTime with or without fraction, `Z` or an offset.
/// A time without any zone is read as UTC, as CoT producers that omit it mean.
pub(crate) fn parse_time(path: &str, v: &str) -> Result<Timestamp, CotError> {
    let v = trim(v);
    let t = match fast_time(v.as_bytes()) {
        Some(ms) => Timestamp(ms),
        None => match Timestamp::parse_rfc3339(v) {
            Ok(t) => t,
            Err(_) => Timestamp::parse_rfc3339(&format!("{v}Z")).map_err(|_| {
                CotError::invalid(
                    path,
                    format!("not a time {v:?} (expected e.g. 2020-01-01T00:00:00.000Z)"),
                )
            })?,
        },
    };
    if t < Timestamp::MIN_VALID || t > Timestamp::MAX_VALID {
        return Err(CotError::invalid(
            path,
            format!("{v:?} is outside 1970-01-01..9999-12-31"),
        ));
    }
    Ok(t)
}

/// Which attribute values a typed element accepts into its fields; a rejected value stays
/// verbatim in [`Extra::attrs`] at its original position.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    U32,
    F64,
}

/// A typed field's value, converted once.
enum Val {
    Text(Text),
    U32(u32),
    F64(f64),
}

impl Val {
    fn accept(kind: Kind, v: &str) -> Option<Val> {
        match kind {
            Kind::Text => Some(Val::Text(Text::from(v))),
            Kind::U32 => v.parse::<u32>().ok().map(Val::U32),
            Kind::F64 => parse_float(v).ok().filter(|n| n.is_finite()).map(Val::F64),
        }
    }
}

fn text(v: Option<Val>) -> Option<Text> {
    match v {
        Some(Val::Text(t)) => Some(t),
        _ => None,
    }
}

fn u32_of(v: Option<Val>) -> Option<u32> {
    match v {
        Some(Val::U32(n)) => Some(n),
        _ => None,
    }
}

fn f64_of(v: Option<Val>) -> Option<f64> {
    match v {
        Some(Val::F64(n)) => Some(n),
        _ => None,
    }
}

impl<'a, 'l> Parser<'a, 'l> {
    fn new(src: &'a str, limits: &'l CotLimits) -> Self {
        // Defaults: end tag names are checked, text is not trimmed (spans stay exact).
        Parser {
            src,
            reader: Reader::from_str(src),
            fast: None,
            limits,
            detail_elements: 0,
        }
    }

    /// A parser reading with [`FastReader`]: any error it returns only means "ask quick-xml".
    fn with_fast(src: &'a str, limits: &'l CotLimits) -> Self {
        Parser {
            src,
            reader: Reader::from_str(src),
            fast: Some(FastReader::new(src)),
            limits,
            detail_elements: 0,
        }
    }

    fn pos(&self) -> usize {
        match &self.fast {
            Some(f) => f.pos,
            None => usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX),
        }
    }

    /// The next XML event and the byte offset where it starts.
    fn next(&mut self) -> Result<(usize, Event<'a>), CotError> {
        if let Some(f) = &mut self.fast {
            // The error only makes parse_xml ask quick-xml; its text is never shown.
            return f.next().ok_or(CotError::NoEvent);
        }
        let before = self.pos();
        match self.reader.read_event() {
            Ok(ev) => Ok((before, ev)),
            Err(e) => Err(CotError::Malformed {
                at: self.reader.error_position(),
                reason: e.to_string(),
            }),
        }
    }

    fn slice(&self, r: Range<usize>) -> &'a str {
        self.src.get(r).unwrap_or("")
    }

    fn unexpected_eof(&self, inside: &str) -> CotError {
        CotError::Malformed {
            at: self.reader.buffer_position(),
            reason: format!("input ends inside <{inside}>"),
        }
    }

    /// Where the tag content of `e` (its name, then its attributes) starts in the source,
    /// when `e` is a start tag read at `at` and borrows the source directly.
    fn tag_offset(&self, e: &BytesStart<'a>, at: usize) -> Option<usize> {
        let buf: &[u8] = e;
        let base = at + 1;
        let mirrored = self.src.as_bytes().get(base..base + buf.len())?;
        std::ptr::eq(mirrored.as_ptr(), buf.as_ptr()).then_some(base)
    }

    /// Checks the syntax of an element's name and attributes (quoting, duplicates, names),
    /// exactly as [`check_element`] does, and returns the attributes' spans.
    ///
    /// The fast scanner accepts the strict subset `name="value"` / `name='value'` (no white
    /// space around `=`) with names that are valid and distinct, at most [`FAST_ATTRS`] of
    /// them; on that subset quick-xml splits the attributes the same way. Anything else,
    /// including every error, is left to [`check_element`] so errors read the same.
    fn check(
        &self,
        e: &BytesStart<'a>,
        at: usize,
        path: &dyn Fn() -> String,
        out: &mut AttrSpans,
    ) -> Result<(), CotError> {
        if self.scan(e, at, out).is_none() {
            out.slow = true;
            check_element(e, path)?;
        }
        Ok(())
    }

    /// The fast scanner of [`Parser::check`]; `None` when the slow path must decide.
    fn scan(&self, e: &BytesStart<'a>, at: usize, out: &mut AttrSpans) -> Option<()> {
        if let Some(f) = &self.fast
            && f.spans_at == Some(at)
        {
            // The fast reader scanned this very tag already.
            out.n = f.spans.n;
            out.amp = f.spans.amp;
            out.slow = false;
            out.spans[..out.n].copy_from_slice(&f.spans.spans[..f.spans.n]);
            return Some(());
        }
        let base = self.tag_offset(e, at)?;
        let buf: &[u8] = e;
        let name = e.name().into_inner();
        // The element name: ASCII name bytes only (anything else is left to valid_name).
        if !ascii_name(name) && !valid_name(qname(e)) {
            return None;
        }
        let end = base + buf.len();
        (scan_attrs(self.src.as_bytes(), base + name.len(), end, out)? == end).then_some(())
    }

    /// Calls `f` with the name and the unescaped value of each attribute of `e`, whose
    /// syntax [`Parser::check`] accepted; stops at the first error. An escape error names
    /// `{at()}@{name}`.
    fn each_attr(
        &self,
        e: &BytesStart<'a>,
        spans: &AttrSpans,
        at: &dyn Fn() -> String,
        mut f: impl FnMut(&str, Cow<'_, str>) -> Result<(), CotError>,
    ) -> Result<(), CotError> {
        if !spans.slow {
            for (i, s) in spans.spans[..spans.n].iter().enumerate() {
                let key = self.slice(s[0] as usize..s[1] as usize);
                let raw = self.slice(s[2] as usize..s[3] as usize);
                if spans.amp & (1 << i) == 0 {
                    f(key, Cow::Borrowed(raw))?;
                } else {
                    f(key, unescape(raw, &|| format!("{}@{key}", at()))?)?;
                }
            }
            return Ok(());
        }
        for a in e.attributes() {
            let a = a.map_err(|err| CotError::invalid(at(), format!("bad attribute: {err}")))?;
            let key = attr_key(&a);
            let path = || format!("{}@{key}", at());
            let raw = std::str::from_utf8(&a.value)
                .map_err(|_| CotError::invalid(path(), "value is not UTF-8"))?;
            if raw.contains('&') {
                f(key, unescape(raw, &path)?)?;
            } else {
                f(key, Cow::Borrowed(raw))?;
            }
        }
        Ok(())
    }

    fn document(&mut self, out: &mut CotEvent) -> Result<(), CotError> {
        loop {
            let (at, ev) = self.next()?;
            match ev {
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
                Event::Text(t) if is_ws(&t) => {}
                Event::Start(e) if local_name(&e) == b"event" => {
                    self.event(&e, at, true, out)?;
                    return self.epilog();
                }
                Event::Empty(e) if local_name(&e) == b"event" => {
                    self.event(&e, at, false, out)?;
                    return self.epilog();
                }
                Event::Start(e) | Event::Empty(e) => {
                    return Err(CotError::invalid(
                        "document",
                        format!("expected <event>, found <{}>", qname(&e)),
                    ));
                }
                Event::Eof => return Err(CotError::NoEvent),
                _ => {
                    return Err(CotError::invalid(
                        "document",
                        "character data before <event>",
                    ));
                }
            }
        }
    }

    /// After the root element only whitespace, comments and processing instructions may follow.
    fn epilog(&mut self) -> Result<(), CotError> {
        loop {
            let (at, ev) = self.next()?;
            match ev {
                Event::Eof => return Ok(()),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if is_ws(&t) => {}
                _ => {
                    return Err(CotError::invalid(
                        "document",
                        format!("unexpected content after the root element at byte {at}"),
                    ));
                }
            }
        }
    }

    fn enter(
        &mut self,
        depth: usize,
        path: &dyn Fn() -> String,
        in_detail: bool,
    ) -> Result<(), CotError> {
        if depth > self.limits.max_depth {
            return Err(CotError::TooDeep {
                path: path(),
                max: self.limits.max_depth,
            });
        }
        if in_detail {
            self.detail_elements += 1;
            if self.detail_elements > self.limits.max_detail_elements {
                return Err(CotError::TooManyElements {
                    max: self.limits.max_detail_elements,
                });
            }
        }
        Ok(())
    }

    /// Reads the content of an element whose start tag (at `depth`) was just read, up to and
    /// including its end tag.
    fn content(
        &mut self,
        depth: usize,
        path: &dyn Fn() -> String,
        in_detail: bool,
    ) -> Result<Content<'a>, CotError> {
        let inner_start = self.pos();
        let mut spans = AttrSpans::new();
        let mut level = 0usize;
        let mut c = Content {
            inner: inner_start..inner_start,
            children: Vec::new(),
            text: false,
            markup: false,
        };
        loop {
            let (before, ev) = self.next()?;
            match ev {
                Event::Start(e) => {
                    self.enter(depth + level + 1, path, in_detail)?;
                    self.check(&e, before, path, &mut spans)?;
                    if level == 0 {
                        c.children.push(Child {
                            start: e,
                            span: before..before,
                            empty: false,
                        });
                    }
                    level += 1;
                }
                Event::Empty(e) => {
                    self.enter(depth + level + 1, path, in_detail)?;
                    self.check(&e, before, path, &mut spans)?;
                    if level == 0 {
                        c.children.push(Child {
                            start: e,
                            span: before..self.pos(),
                            empty: true,
                        });
                    }
                }
                Event::End(_) => {
                    if level == 0 {
                        c.inner = inner_start..before;
                        return Ok(c);
                    }
                    level -= 1;
                    if level == 0 {
                        let end = self.pos();
                        if let Some(last) = c.children.last_mut() {
                            last.span.end = end;
                        }
                    }
                }
                Event::Text(t) => c.text |= level == 0 && !is_ws(&t),
                Event::GeneralRef(_) => c.text |= level == 0,
                Event::CData(_) => {
                    if level == 0 {
                        c.text = true;
                        c.markup = true;
                    }
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => c.markup |= level == 0,
                Event::DocType(_) => {
                    return Err(CotError::invalid(path(), "DOCTYPE inside an element"));
                }
                Event::Eof => return Err(self.unexpected_eof(&path())),
            }
        }
    }

    fn event(
        &mut self,
        e: &BytesStart<'a>,
        at: usize,
        has_content: bool,
        ev: &mut CotEvent,
    ) -> Result<(), CotError> {
        let mut spans = AttrSpans::new();
        self.check(e, at, &|| "event".to_owned(), &mut spans)?;
        let (mut uid, mut cot_type, mut time, mut stale) = (None, None, None, None);
        self.each_attr(e, &spans, &|| "event".to_owned(), |key, value| {
            match key {
                "version" => ev.version = Text::from(value.as_ref()),
                "uid" => uid = Some(Text::from(value.as_ref())),
                "type" => cot_type = Some(Text::from(value.as_ref())),
                "how" => ev.how = non_empty(value),
                "time" => time = Some(parse_time("event@time", &value)?),
                "start" => ev.start = Some(parse_time("event@start", &value)?),
                "stale" => stale = Some(parse_time("event@stale", &value)?),
                "access" => ev.access = non_empty(value),
                "qos" => ev.qos = non_empty(value),
                "opex" => ev.opex = non_empty(value),
                "caveat" => ev.caveat = non_empty(value),
                "releasableTo" => ev.releasable_to = non_empty(value),
                _ => ev.extra_attrs.push(Attr::new(key, &value)),
            }
            Ok(())
        })?;
        let mut point = None;
        let mut seen_detail = false;
        if has_content {
            loop {
                let (start, child) = self.next()?;
                let (is_start, c) = match child {
                    Event::Start(c) => (true, c),
                    Event::Empty(c) => (false, c),
                    Event::End(_) => break,
                    Event::Eof => return Err(self.unexpected_eof("event")),
                    // Stray text, comments and the like inside <event> carry no meaning.
                    _ => continue,
                };
                let path = || format!("event/{}", qname(&c));
                self.check(&c, start, &path, &mut spans)?;
                match local_name(&c) {
                    b"point" => {
                        if point.is_some() {
                            return Err(CotError::invalid("event/point", "appears more than once"));
                        }
                        point = Some(self.point(&c, &spans)?);
                        if is_start {
                            let content = self.content(2, &|| "event/point".to_owned(), false)?;
                            if content.text || !content.children.is_empty() {
                                return Err(CotError::invalid(
                                    "event/point",
                                    "must be an empty element",
                                ));
                            }
                        }
                    }
                    b"detail" => {
                        if seen_detail {
                            return Err(CotError::invalid(
                                "event/detail",
                                "appears more than once",
                            ));
                        }
                        seen_detail = true;
                        if is_start {
                            self.detail(&mut ev.detail)?;
                        }
                    }
                    _ => {
                        if is_start {
                            self.enter(2, &path, false)?;
                            self.content(2, &path, false)?;
                        }
                        let end = self.pos();
                        ev.extra_children.push_str(self.slice(start..end));
                    }
                }
            }
        }
        ev.uid = match uid {
            Some(u) if !u.is_empty() => u,
            Some(_) => return Err(CotError::invalid("event@uid", "must not be empty")),
            None => return Err(CotError::missing("event@uid")),
        };
        ev.cot_type = match cot_type {
            Some(t) if !t.is_empty() => t,
            Some(_) => return Err(CotError::invalid("event@type", "must not be empty")),
            None => return Err(CotError::missing("event@type")),
        };
        ev.time = time.ok_or_else(|| CotError::missing("event@time"))?;
        ev.stale = stale.ok_or_else(|| CotError::missing("event@stale"))?;
        ev.point = point.ok_or_else(|| CotError::missing("event/point"))?;
        Ok(())
    }

    fn point(&self, e: &BytesStart<'a>, spans: &AttrSpans) -> Result<Point, CotError> {
        let mut p = Point::default();
        let (mut lat, mut lon) = (None, None);
        self.each_attr(e, spans, &|| "event/point".to_owned(), |key, value| {
            let path = || format!("event/point@{key}");
            match key {
                "lat" => lat = Some(parse_f64(&path, &value)?),
                "lon" => lon = Some(parse_f64(&path, &value)?),
                "hae" => p.hae = parse_f64(&path, &value)?,
                "ce" => p.ce = parse_f64(&path, &value)?,
                "le" => p.le = parse_f64(&path, &value)?,
                _ => p.extra_attrs.push(Attr::new(key, &value)),
            }
            Ok(())
        })?;
        p.lat = lat.ok_or_else(|| CotError::missing("event/point@lat"))?;
        p.lon = lon.ok_or_else(|| CotError::missing("event/point@lon"))?;
        // A missing hae/ce/le stays at Point::default()'s UNKNOWN_VALUE: CoT's "unknown".
        Ok(p)
    }

    /// Reads the children of `<detail>` (its start tag just read, at depth 2) up to `</detail>`.
    fn detail(&mut self, d: &mut Detail) -> Result<(), CotError> {
        let mut spans = AttrSpans::new();
        loop {
            let (start, ev) = self.next()?;
            match ev {
                Event::Start(c) => {
                    let path = || format!("event/detail/{}", qname(&c));
                    self.enter(3, &path, true)?;
                    self.check(&c, start, &path, &mut spans)?;
                    let content = self.content(3, &path, true)?;
                    let end = self.pos();
                    self.classify(d, &c, &mut spans, start..end, Some(content))?;
                }
                Event::Empty(c) => {
                    let path = || format!("event/detail/{}", qname(&c));
                    self.enter(3, &path, true)?;
                    self.check(&c, start, &path, &mut spans)?;
                    let end = self.pos();
                    self.classify(d, &c, &mut spans, start..end, None)?;
                }
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(self.unexpected_eof("detail")),
                // Whitespace, comments and stray text between detail children are not kept.
                _ => {}
            }
        }
    }

    /// Splits the attributes of a typed element into its `N` fields and the rest.
    fn typed<const N: usize>(
        &self,
        e: &BytesStart<'a>,
        spans: &AttrSpans,
        fields: [(&str, Kind); N],
    ) -> Result<([Option<Val>; N], Extra), CotError> {
        let mut values: [Option<Val>; N] = std::array::from_fn(|_| None);
        let mut extra = Extra::default();
        self.each_attr(
            e,
            spans,
            &|| format!("event/detail/{}", qname(e)),
            |key, value| {
                match fields.iter().position(|(f, _)| short_eq(f, key)) {
                    Some(i) => match Val::accept(fields[i].1, &value) {
                        Some(v) => values[i] = Some(v),
                        None => extra.attrs.push(Attr::new(key, &value)),
                    },
                    None => extra.attrs.push(Attr::new(key, &value)),
                }
                Ok(())
            },
        )?;
        Ok((values, extra))
    }

    /// The verbatim child content of an element whose content is not modelled.
    fn children_verbatim(&self, content: Option<&Content<'a>>) -> String {
        match content {
            Some(c) => {
                let inner = self.slice(c.inner.clone());
                if inner.bytes().all(|b| b.is_ascii_whitespace()) {
                    String::new()
                } else {
                    inner.to_owned()
                }
            }
            None => String::new(),
        }
    }

    /// The text of an element that models its text (`remarks`, `emergency`), or `None` when
    /// it holds markup and must therefore be kept verbatim as a whole.
    fn text_of(
        &self,
        content: Option<&Content<'a>>,
        path: &str,
    ) -> Result<Option<String>, CotError> {
        let Some(c) = content else {
            return Ok(Some(String::new()));
        };
        if c.markup || !c.children.is_empty() {
            return Ok(None);
        }
        let raw = self.slice(c.inner.clone());
        // Without a `&` there is nothing to resolve, and the characters XML forbids were
        // already rejected for the whole input by `check_chars` (see `unescape`).
        if !raw.contains('&') {
            return Ok(Some(raw.to_owned()));
        }
        let t = quick_xml::escape::unescape(raw)
            .map_err(|e| CotError::invalid(path, format!("bad escape: {e}")))?;
        if t.chars().any(forbidden) {
            return Err(CotError::invalid(
                path,
                "character reference to a character XML does not allow",
            ));
        }
        Ok(Some(t.into_owned()))
    }

    fn classify(
        &self,
        d: &mut Detail,
        e: &BytesStart<'a>,
        spans: &mut AttrSpans,
        span: Range<usize>,
        content: Option<Content<'a>>,
    ) -> Result<(), CotError> {
        let raw = self.slice(span);
        let content = content.as_ref();
        match e.name().into_inner() {
            b"contact" if d.contact.is_none() => {
                let ([cs, ep], mut extra) = self.typed(
                    e,
                    spans,
                    [("callsign", Kind::Text), ("endpoint", Kind::Text)],
                )?;
                extra.children = self.children_verbatim(content);
                d.contact = Some(Contact {
                    callsign: text(cs),
                    endpoint: text(ep),
                    extra,
                });
            }
            b"__group" if d.group.is_none() => {
                let ([n, r], mut extra) =
                    self.typed(e, spans, [("name", Kind::Text), ("role", Kind::Text)])?;
                extra.children = self.children_verbatim(content);
                d.group = Some(Group {
                    name: text(n),
                    role: text(r),
                    extra,
                });
            }
            b"takv" if d.takv.is_none() => {
                let ([dv, pf, os, vs], mut extra) = self.typed(
                    e,
                    spans,
                    [
                        ("device", Kind::Text),
                        ("platform", Kind::Text),
                        ("os", Kind::Text),
                        ("version", Kind::Text),
                    ],
                )?;
                extra.children = self.children_verbatim(content);
                d.takv = Some(Takv {
                    device: text(dv),
                    platform: text(pf),
                    os: text(os),
                    version: text(vs),
                    extra,
                });
            }
            b"status" if d.status.is_none() => {
                let ([b], mut extra) = self.typed(e, spans, [("battery", Kind::U32)])?;
                extra.children = self.children_verbatim(content);
                d.status = Some(Status {
                    battery: u32_of(b),
                    extra,
                });
            }
            b"track" if d.track.is_none() => {
                let ([c, sp], mut extra) =
                    self.typed(e, spans, [("course", Kind::F64), ("speed", Kind::F64)])?;
                extra.children = self.children_verbatim(content);
                d.track = Some(Track {
                    course: f64_of(c),
                    speed: f64_of(sp),
                    extra,
                });
            }
            b"precisionlocation" if d.precision_location.is_none() => {
                let ([g, a], mut extra) = self.typed(
                    e,
                    spans,
                    [("geopointsrc", Kind::Text), ("altsrc", Kind::Text)],
                )?;
                extra.children = self.children_verbatim(content);
                d.precision_location = Some(PrecisionLocation {
                    geopointsrc: text(g),
                    altsrc: text(a),
                    extra,
                });
            }
            b"uid" if d.uid.is_none() => {
                let ([droid], mut extra) = self.typed(e, spans, [("Droid", Kind::Text)])?;
                extra.children = self.children_verbatim(content);
                d.uid = Some(UidDetail {
                    droid: text(droid),
                    extra,
                });
            }
            b"link" => {
                let ([u, t, r, pc, pt, pp], mut extra) = self.typed(
                    e,
                    spans,
                    [
                        ("uid", Kind::Text),
                        ("type", Kind::Text),
                        ("relation", Kind::Text),
                        ("parent_callsign", Kind::Text),
                        ("production_time", Kind::Text),
                        ("point", Kind::Text),
                    ],
                )?;
                extra.children = self.children_verbatim(content);
                d.links.push(Link {
                    uid: text(u),
                    cot_type: text(t),
                    relation: text(r),
                    parent_callsign: text(pc),
                    production_time: text(pt),
                    point: text(pp),
                    extra,
                });
            }
            b"__chat" if d.chat.is_none() && !content.is_some_and(|c| c.text) => {
                let ([id, room, sender, owner, msg, parent], mut extra) = self.typed(
                    e,
                    spans,
                    [
                        ("id", Kind::Text),
                        ("chatroom", Kind::Text),
                        ("senderCallsign", Kind::Text),
                        ("groupOwner", Kind::Text),
                        ("messageId", Kind::Text),
                        ("parent", Kind::Text),
                    ],
                )?;
                let mut chat_group = None;
                for child in content.map(|c| c.children.as_slice()).unwrap_or(&[]) {
                    if qname(&child.start) == "chatgrp" && child.empty && chat_group.is_none() {
                        // Its syntax was checked while the content was read.
                        if self.scan(&child.start, child.span.start, spans).is_none() {
                            spans.slow = true;
                        }
                        let ([u0, u1, gid], gextra) = self.typed(
                            &child.start,
                            spans,
                            [
                                ("uid0", Kind::Text),
                                ("uid1", Kind::Text),
                                ("id", Kind::Text),
                            ],
                        )?;
                        chat_group = Some(ChatGroup {
                            uid0: text(u0),
                            uid1: text(u1),
                            id: text(gid),
                            extra: gextra,
                        });
                    } else {
                        extra.children.push_str(self.slice(child.span.clone()));
                    }
                }
                d.chat = Some(Chat {
                    id: text(id),
                    chatroom: text(room),
                    sender_callsign: text(sender),
                    group_owner: text(owner),
                    message_id: text(msg),
                    parent: text(parent),
                    chat_group,
                    extra,
                });
            }
            b"remarks" if d.remarks.is_none() => {
                match self.text_of(content, "event/detail/remarks")? {
                    Some(t) => {
                        let ([src, to, time], extra) = self.typed(
                            e,
                            spans,
                            [
                                ("source", Kind::Text),
                                ("to", Kind::Text),
                                ("time", Kind::Text),
                            ],
                        )?;
                        d.remarks = Some(Remarks {
                            text: t,
                            source: text(src),
                            to: text(to),
                            time: text(time),
                            extra,
                        });
                    }
                    None => d.unknown.push(raw.to_owned()),
                }
            }
            b"emergency" if d.emergency.is_none() => {
                match self.text_of(content, "event/detail/emergency")? {
                    Some(t) => {
                        let ([ty, cancel], extra) =
                            self.typed(e, spans, [("type", Kind::Text), ("cancel", Kind::Text)])?;
                        d.emergency = Some(Emergency {
                            emergency_type: text(ty),
                            cancel: text(cancel),
                            text: t,
                            extra,
                        });
                    }
                    None => d.unknown.push(raw.to_owned()),
                }
            }
            _ => d.unknown.push(raw.to_owned()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }
    }

    fn with(p: &mut Parser<'_, '_>) -> Result<CotEvent, CotError> {
        let mut ev = blank_event();
        p.document(&mut ev).map(|()| ev)
    }

    /// Regression (fuzz `cot_xml`): two byte-order marks shifted quick-xml's positions and cut
    /// verbatim detail short. One BOM is fine; two are an error naming the cause.
    #[test]
    fn one_byte_order_mark_is_allowed_two_are_refused() {
        let doc = "<event version='2.0' uid='u' type='a-f-G' time='2020-01-01T00:00:00Z' \
                   stale='2020-01-01T00:01:00Z'><point lat='1' lon='2'/><detail><x a='1'/></detail></event>";
        let limits = CotLimits::default();
        let one = format!("\u{feff}{doc}");
        let ev = parse_xml(one.as_bytes(), &limits).unwrap();
        let again = parse_xml(crate::encode_xml(&ev).as_bytes(), &limits).unwrap();
        assert_eq!(ev, again);
        let two = format!("\u{feff}\u{feff}{doc}");
        let err = parse_xml(two.as_bytes(), &limits).unwrap_err().to_string();
        assert!(err.contains("byte-order mark"), "{err}");
    }

    /// Whenever the fast reader accepts a document, quick-xml reads the same event from it.
    #[test]
    fn fast_reader_agrees_with_quick_xml() {
        let dir = format!("{}/tests/samples", env!("CARGO_MANIFEST_DIR"));
        let mut samples: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        samples.sort();
        samples.push(
            "<event version='2.0' uid='a&amp;b' type='a-f-G' time='2020-02-29T23:59:59.9Z' \
             stale='2020-03-01T00:00:00Z' x:y='1'><point lat=' 1.5 ' lon='-2' q='&#65;'></point>\
             <detail><__chat id='1'><chatgrp uid0='a' uid1='b'/><h><g/></h></__chat>\
             <x a='1'><y/>t</x><remarks to='x'>hi</remarks></detail><o/></event>"
                .into(),
        );
        let limits = CotLimits::default();
        let small = CotLimits {
            max_event_bytes: 4096,
            max_depth: 4,
            max_detail_elements: 5,
        };
        let interesting = b"<>/=\"' &;![]-?:x0.9eE+-\n\tZT";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut fast_accepted = 0;
        for base in &samples {
            for k in 0..1_500 {
                let mut b = base.clone();
                for _ in 0..(k.min(1) * (1 + rng.below(3))) {
                    let i = rng.below(b.len());
                    match rng.below(4) {
                        0 => b[i] = interesting[rng.below(interesting.len())],
                        1 => {
                            b.remove(i);
                        }
                        2 => {
                            let j = (i + rng.below(40)).min(b.len());
                            let chunk = b[i..j].to_vec();
                            b.splice(i..i, chunk);
                        }
                        _ => b.insert(i, interesting[rng.below(interesting.len())]),
                    }
                }
                let Ok(text) = std::str::from_utf8(&b) else {
                    continue;
                };
                if check_chars(text).is_err() {
                    continue;
                }
                for l in [&limits, &small] {
                    if let Ok(fast) = with(&mut Parser::with_fast(text, l)) {
                        fast_accepted += 1;
                        assert_eq!(Ok(fast), with(&mut Parser::new(text, l)), "{text}");
                    }
                }
            }
        }
        assert!(
            fast_accepted > 2_000,
            "only {fast_accepted} taken by the fast reader"
        );
    }

    #[test]
    fn fast_floats_are_std_floats() {
        let mut rng = Rng(7);
        for v in [
            "0",
            "-0",
            "1",
            "0.1",
            "9999999.0",
            "1.",
            ".5",
            "+1",
            "-",
            "",
            "1e5",
            "NaN",
            "inf",
            "007.50",
            "9007199254740993",
            "0.0000000000000000000001",
            "1.2.3",
            "12a",
            "99999999999999999999",
            "127.30000000000001",
        ] {
            assert_eq!(
                format!("{:?}", parse_float(v)),
                format!("{:?}", v.parse::<f64>()),
                "{v}"
            );
        }
        for _ in 0..200_000 {
            let mut s = String::new();
            if rng.below(2) == 0 {
                s.push('-');
            }
            for _ in 0..rng.below(10) {
                s.push(char::from(b'0' + u8::try_from(rng.below(10)).unwrap()));
            }
            if rng.below(4) != 0 {
                s.push('.');
                for _ in 0..rng.below(14) {
                    s.push(char::from(b'0' + u8::try_from(rng.below(10)).unwrap()));
                }
            }
            match (parse_float(&s), s.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert_eq!(x.to_bits(), y.to_bits(), "{s}"),
                (Err(_), Err(_)) => {}
                (x, y) => panic!("{s}: {x:?} vs {y:?}"),
            }
        }
    }

    #[test]
    fn fast_times_are_rfc3339_times() {
        let mut rng = Rng(42);
        for k in 0..50_000i64 {
            let ms = match k % 2 {
                0 => i64::try_from(rng.next() % 253_402_300_800_000).unwrap(),
                _ => k * 86_399_999,
            };
            let base = Timestamp(ms).to_rfc3339();
            for v in [
                base.clone(),
                base.replace(".000Z", "Z"),
                base.replace('Z', "1Z"),
                base.replace('Z', "123456789Z"),
                base.replace("-02-28T", "-02-29T")
                    .replace("-02-29T", "-02-30T"),
                base.replace(":5", ":6"),
                base.replace("T2", "T3").replace("T1", "T2"),
            ] {
                if let Some(fast) = fast_time(v.as_bytes()) {
                    assert_eq!(Ok(Timestamp(fast)), Timestamp::parse_rfc3339(&v), "{v}");
                }
            }
            assert_eq!(fast_time(base.as_bytes()), Some(ms));
        }
    }
}
