//! CoT XML → [`CotEvent`], with quick-xml over the borrowed input.
//!
//! One pass, no DOM: the parser walks the events of the document and, for every element it
//! does not model, records the byte span so the element can be kept verbatim. Typed detail
//! elements keep their unmodelled attributes and child content in [`Extra`], so
//! `parse(encode(parse(x))) == parse(x)` holds for every accepted input.
//!
//! Bounds: the input size, the nesting depth and the number of detail elements are checked
//! against [`CotLimits`] before anything proportional to them is allocated.

use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, BytesText, Event};
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
    check_chars(text)?;
    Parser::new(text, limits).document()
}

/// Rejects characters XML 1.0 does not allow anywhere (C0 controls other than tab, LF, CR;
/// U+FFFE, U+FFFF). quick-xml lets them through, but TAK clients' parsers reject the whole
/// event, so relaying them would break other clients.
fn check_chars(text: &str) -> Result<(), CotError> {
    let b = text.as_bytes();
    // Fast path (vectorises): no C0 control but tab/LF/CR, and no byte that could start
    // U+FFFE/U+FFFF.
    if b.iter()
        .all(|&c| (c >= 0x20 || matches!(c, b'\t' | b'\n' | b'\r')) && c != 0xef)
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
    let mut p = Parser::new(&wrapped, limits);
    let (_, first) = p.next()?;
    if !matches!(first, Event::Start(_)) {
        return Err(CotError::invalid("xmlDetail", "not an XML fragment"));
    }
    let detail = p.detail()?;
    p.epilog()?;
    Ok(detail)
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

struct Parser<'a, 'l> {
    src: &'a str,
    reader: Reader<&'a [u8]>,
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

fn local_name<'b>(e: &'b BytesStart<'_>) -> &'b str {
    let q = qname(e);
    q.rsplit(':').next().unwrap_or(q)
}

fn attr_key<'b>(a: &'b Attribute<'_>) -> &'b str {
    std::str::from_utf8(a.key.into_inner()).unwrap_or("?")
}

fn attr_value(a: &Attribute<'_>, path: &dyn Fn() -> String) -> Result<String, CotError> {
    let raw = std::str::from_utf8(&a.value)
        .map_err(|_| CotError::invalid(path(), "value is not UTF-8"))?;
    let v = quick_xml::escape::unescape(raw)
        .map_err(|e| CotError::invalid(path(), format!("bad escape in {raw:?}: {e}")))?;
    if v.chars().any(forbidden) {
        return Err(CotError::invalid(
            path(),
            "character reference to a character XML does not allow",
        ));
    }
    Ok(v.into_owned())
}

/// Checks the syntax of an element's name and attributes (quoting, duplicates, names).
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

fn non_empty(v: String) -> Option<Text> {
    if v.is_empty() {
        None
    } else {
        Some(Text::from(v))
    }
}

fn parse_f64(path: &str, v: &str) -> Result<f64, CotError> {
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        Ok(_) => Err(CotError::invalid(
            path,
            format!("not a finite number {v:?}"),
        )),
        Err(_) => Err(CotError::invalid(path, format!("not a number {v:?}"))),
    }
}

/// Parses a CoT time: RFC 3339 / xsd:dateTime with or without fraction, `Z` or an offset.
/// A time without any zone is read as UTC, as CoT producers that omit it mean.
pub(crate) fn parse_time(path: &str, v: &str) -> Result<Timestamp, CotError> {
    let v = v.trim();
    let t = match Timestamp::parse_rfc3339(v) {
        Ok(t) => t,
        Err(_) => Timestamp::parse_rfc3339(&format!("{v}Z")).map_err(|_| {
            CotError::invalid(
                path,
                format!("not a time {v:?} (expected e.g. 2020-01-01T00:00:00.000Z)"),
            )
        })?,
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

fn accepts(kind: Kind, v: &str) -> bool {
    match kind {
        Kind::Text => true,
        Kind::U32 => v.parse::<u32>().is_ok(),
        Kind::F64 => v.parse::<f64>().is_ok_and(f64::is_finite),
    }
}

impl<'a, 'l> Parser<'a, 'l> {
    fn new(src: &'a str, limits: &'l CotLimits) -> Self {
        // Defaults: end tag names are checked, text is not trimmed (spans stay exact).
        Parser {
            src,
            reader: Reader::from_str(src),
            limits,
            detail_elements: 0,
        }
    }

    fn pos(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    /// The next XML event and the byte offset where it starts.
    fn next(&mut self) -> Result<(usize, Event<'a>), CotError> {
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

    fn document(&mut self) -> Result<CotEvent, CotError> {
        loop {
            let (_, ev) = self.next()?;
            match ev {
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
                Event::Text(t) if is_ws(&t) => {}
                Event::Start(e) if local_name(&e) == "event" => {
                    let event = self.event(&e, true)?;
                    self.epilog()?;
                    return Ok(event);
                }
                Event::Empty(e) if local_name(&e) == "event" => {
                    let event = self.event(&e, false)?;
                    self.epilog()?;
                    return Ok(event);
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
                    check_element(&e, path)?;
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
                    check_element(&e, path)?;
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

    fn event(&mut self, e: &BytesStart<'a>, has_content: bool) -> Result<CotEvent, CotError> {
        check_element(e, &|| "event".to_owned())?;
        let mut ev = CotEvent::new("", "", Timestamp(0), Timestamp(0));
        ev.start = None;
        let (mut uid, mut cot_type, mut time, mut stale) = (None, None, None, None);
        for a in e.attributes() {
            let a = a.map_err(|err| CotError::invalid("event", format!("bad attribute: {err}")))?;
            let key = attr_key(&a);
            let value = attr_value(&a, &|| format!("event@{key}"))?;
            match key {
                "version" => ev.version = Text::from(value),
                "uid" => uid = Some(value),
                "type" => cot_type = Some(value),
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
        }
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
                check_element(&c, &path)?;
                match local_name(&c) {
                    "point" => {
                        if point.is_some() {
                            return Err(CotError::invalid("event/point", "appears more than once"));
                        }
                        point = Some(self.point(&c)?);
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
                    "detail" => {
                        if seen_detail {
                            return Err(CotError::invalid(
                                "event/detail",
                                "appears more than once",
                            ));
                        }
                        seen_detail = true;
                        if is_start {
                            ev.detail = self.detail()?;
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
            Some(u) if !u.is_empty() => Text::from(u),
            Some(_) => return Err(CotError::invalid("event@uid", "must not be empty")),
            None => return Err(CotError::missing("event@uid")),
        };
        ev.cot_type = match cot_type {
            Some(t) if !t.is_empty() => Text::from(t),
            Some(_) => return Err(CotError::invalid("event@type", "must not be empty")),
            None => return Err(CotError::missing("event@type")),
        };
        ev.time = time.ok_or_else(|| CotError::missing("event@time"))?;
        ev.stale = stale.ok_or_else(|| CotError::missing("event@stale"))?;
        ev.point = point.ok_or_else(|| CotError::missing("event/point"))?;
        Ok(ev)
    }

    fn point(&mut self, e: &BytesStart<'a>) -> Result<Point, CotError> {
        let mut p = Point::default();
        let (mut lat, mut lon) = (None, None);
        for a in e.attributes() {
            let a =
                a.map_err(|err| CotError::invalid("event/point", format!("bad attribute: {err}")))?;
            let key = attr_key(&a);
            let path = || format!("event/point@{key}");
            let value = attr_value(&a, &path)?;
            match key {
                "lat" => lat = Some(parse_f64(&path(), &value)?),
                "lon" => lon = Some(parse_f64(&path(), &value)?),
                "hae" => p.hae = parse_f64(&path(), &value)?,
                "ce" => p.ce = parse_f64(&path(), &value)?,
                "le" => p.le = parse_f64(&path(), &value)?,
                _ => p.extra_attrs.push(Attr::new(key, &value)),
            }
        }
        p.lat = lat.ok_or_else(|| CotError::missing("event/point@lat"))?;
        p.lon = lon.ok_or_else(|| CotError::missing("event/point@lon"))?;
        // A missing hae/ce/le stays at Point::default()'s UNKNOWN_VALUE: CoT's "unknown".
        Ok(p)
    }

    /// Reads the children of `<detail>` (its start tag just read, at depth 2) up to `</detail>`.
    fn detail(&mut self) -> Result<Detail, CotError> {
        let mut d = Detail::default();
        loop {
            let (start, ev) = self.next()?;
            match ev {
                Event::Start(c) => {
                    let path = || format!("event/detail/{}", qname(&c));
                    self.enter(3, &path, true)?;
                    check_element(&c, &path)?;
                    let content = self.content(3, &path, true)?;
                    let end = self.pos();
                    self.classify(&mut d, &c, start..end, Some(content))?;
                }
                Event::Empty(c) => {
                    let path = || format!("event/detail/{}", qname(&c));
                    self.enter(3, &path, true)?;
                    check_element(&c, &path)?;
                    let end = self.pos();
                    self.classify(&mut d, &c, start..end, None)?;
                }
                Event::End(_) => return Ok(d),
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
        fields: [(&str, Kind); N],
    ) -> Result<([Option<String>; N], Extra), CotError> {
        let name = qname(e);
        let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
        let mut extra = Extra::default();
        for a in e.attributes() {
            let a = a.map_err(|err| {
                CotError::invalid(
                    format!("event/detail/{name}"),
                    format!("bad attribute: {err}"),
                )
            })?;
            let key = attr_key(&a);
            let value = attr_value(&a, &|| format!("event/detail/{name}@{key}"))?;
            match fields.iter().position(|(f, _)| *f == key) {
                Some(i) if accepts(fields[i].1, &value) => values[i] = Some(value),
                _ => extra.attrs.push(Attr::new(key, &value)),
            }
        }
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
        span: Range<usize>,
        content: Option<Content<'a>>,
    ) -> Result<(), CotError> {
        let name = qname(e);
        let raw = self.slice(span);
        let content = content.as_ref();
        let s = |v: &mut Option<String>| v.take().map(Text::from);
        match name {
            "contact" if d.contact.is_none() => {
                let ([mut cs, mut ep], mut extra) =
                    self.typed(e, [("callsign", Kind::Text), ("endpoint", Kind::Text)])?;
                extra.children = self.children_verbatim(content);
                d.contact = Some(Contact {
                    callsign: s(&mut cs),
                    endpoint: s(&mut ep),
                    extra,
                });
            }
            "__group" if d.group.is_none() => {
                let ([mut n, mut r], mut extra) =
                    self.typed(e, [("name", Kind::Text), ("role", Kind::Text)])?;
                extra.children = self.children_verbatim(content);
                d.group = Some(Group {
                    name: s(&mut n),
                    role: s(&mut r),
                    extra,
                });
            }
            "takv" if d.takv.is_none() => {
                let ([mut dv, mut pf, mut os, mut vs], mut extra) = self.typed(
                    e,
                    [
                        ("device", Kind::Text),
                        ("platform", Kind::Text),
                        ("os", Kind::Text),
                        ("version", Kind::Text),
                    ],
                )?;
                extra.children = self.children_verbatim(content);
                d.takv = Some(Takv {
                    device: s(&mut dv),
                    platform: s(&mut pf),
                    os: s(&mut os),
                    version: s(&mut vs),
                    extra,
                });
            }
            "status" if d.status.is_none() => {
                let ([b], mut extra) = self.typed(e, [("battery", Kind::U32)])?;
                extra.children = self.children_verbatim(content);
                d.status = Some(Status {
                    battery: b.and_then(|v| v.parse().ok()),
                    extra,
                });
            }
            "track" if d.track.is_none() => {
                let ([c, sp], mut extra) =
                    self.typed(e, [("course", Kind::F64), ("speed", Kind::F64)])?;
                extra.children = self.children_verbatim(content);
                d.track = Some(Track {
                    course: c.and_then(|v| v.parse().ok()),
                    speed: sp.and_then(|v| v.parse().ok()),
                    extra,
                });
            }
            "precisionlocation" if d.precision_location.is_none() => {
                let ([mut g, mut a], mut extra) =
                    self.typed(e, [("geopointsrc", Kind::Text), ("altsrc", Kind::Text)])?;
                extra.children = self.children_verbatim(content);
                d.precision_location = Some(PrecisionLocation {
                    geopointsrc: s(&mut g),
                    altsrc: s(&mut a),
                    extra,
                });
            }
            "uid" if d.uid.is_none() => {
                let ([mut droid], mut extra) = self.typed(e, [("Droid", Kind::Text)])?;
                extra.children = self.children_verbatim(content);
                d.uid = Some(UidDetail {
                    droid: s(&mut droid),
                    extra,
                });
            }
            "link" => {
                let ([mut u, mut t, mut r, mut pc, mut pt, mut pp], mut extra) = self.typed(
                    e,
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
                    uid: s(&mut u),
                    cot_type: s(&mut t),
                    relation: s(&mut r),
                    parent_callsign: s(&mut pc),
                    production_time: s(&mut pt),
                    point: s(&mut pp),
                    extra,
                });
            }
            "__chat" if d.chat.is_none() && !content.is_some_and(|c| c.text) => {
                let ([mut id, mut room, mut sender, mut owner, mut msg, mut parent], mut extra) =
                    self.typed(
                        e,
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
                        let ([mut u0, mut u1, mut gid], gextra) = self.typed(
                            &child.start,
                            [
                                ("uid0", Kind::Text),
                                ("uid1", Kind::Text),
                                ("id", Kind::Text),
                            ],
                        )?;
                        chat_group = Some(ChatGroup {
                            uid0: s(&mut u0),
                            uid1: s(&mut u1),
                            id: s(&mut gid),
                            extra: gextra,
                        });
                    } else {
                        extra.children.push_str(self.slice(child.span.clone()));
                    }
                }
                d.chat = Some(Chat {
                    id: s(&mut id),
                    chatroom: s(&mut room),
                    sender_callsign: s(&mut sender),
                    group_owner: s(&mut owner),
                    message_id: s(&mut msg),
                    parent: s(&mut parent),
                    chat_group,
                    extra,
                });
            }
            "remarks" if d.remarks.is_none() => {
                match self.text_of(content, "event/detail/remarks")? {
                    Some(text) => {
                        let ([mut src, mut to, mut time], extra) = self.typed(
                            e,
                            [
                                ("source", Kind::Text),
                                ("to", Kind::Text),
                                ("time", Kind::Text),
                            ],
                        )?;
                        d.remarks = Some(Remarks {
                            text,
                            source: s(&mut src),
                            to: s(&mut to),
                            time: s(&mut time),
                            extra,
                        });
                    }
                    None => d.unknown.push(raw.to_owned()),
                }
            }
            "emergency" if d.emergency.is_none() => {
                match self.text_of(content, "event/detail/emergency")? {
                    Some(text) => {
                        let ([mut t, mut cancel], extra) =
                            self.typed(e, [("type", Kind::Text), ("cancel", Kind::Text)])?;
                        d.emergency = Some(Emergency {
                            emergency_type: s(&mut t),
                            cancel: s(&mut cancel),
                            text,
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
