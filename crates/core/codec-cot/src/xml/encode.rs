//! [`CotEvent`] → CoT XML, the exact inverse of `parse`.
//!
//! Output is compact standard CoT: double-quoted attributes, `event` attributes in the order
//! ATAK writes them, detail children in a fixed order (typed elements, then links, remarks,
//! emergency, then every unknown element verbatim in its original order). Attribute values
//! escape `& < > "` and tab/CR/LF (as character references, so conforming parsers do not
//! normalise them to spaces); characters XML 1.0 cannot carry become U+FFFD.

use std::fmt::Write as _;

use crate::event::{Attr, CotEvent, Detail, Extra};

/// How to write an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Prefix `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` and a newline, as
    /// TAK's streaming protocol text asks for. TAK clients accept events without it.
    pub xml_declaration: bool,
}

/// The declaration written when [`EncodeOptions::xml_declaration`] is set.
pub const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;

/// Writes `event` as CoT XML without an XML declaration.
pub fn encode_xml(event: &CotEvent) -> String {
    encode_xml_with(event, &EncodeOptions::default())
}

/// Writes `event` as CoT XML with `opts`.
pub fn encode_xml_with(event: &CotEvent, opts: &EncodeOptions) -> String {
    let mut out = String::with_capacity(512);
    write_xml(event, opts, &mut out);
    out
}

/// Appends `event` as CoT XML to `out` (lets a caller reuse one buffer).
pub fn write_xml(event: &CotEvent, opts: &EncodeOptions, out: &mut String) {
    if opts.xml_declaration {
        out.push_str(XML_DECLARATION);
        out.push('\n');
    }
    out.push_str("<event");
    attr(out, "version", &event.version);
    attr(out, "uid", &event.uid);
    attr(out, "type", &event.cot_type);
    attr(out, "time", &event.time.to_rfc3339());
    if let Some(s) = event.start {
        attr(out, "start", &s.to_rfc3339());
    }
    attr(out, "stale", &event.stale.to_rfc3339());
    opt(out, "how", event.how.as_deref());
    opt(out, "access", event.access.as_deref());
    opt(out, "qos", event.qos.as_deref());
    opt(out, "opex", event.opex.as_deref());
    opt(out, "caveat", event.caveat.as_deref());
    opt(out, "releasableTo", event.releasable_to.as_deref());
    attrs(out, &event.extra_attrs);
    out.push_str("><point");
    let p = &event.point;
    num(out, "lat", p.lat);
    num(out, "lon", p.lon);
    num(out, "hae", p.hae);
    num(out, "ce", p.ce);
    num(out, "le", p.le);
    attrs(out, &p.extra_attrs);
    out.push_str("/>");
    if !event.detail.is_empty() {
        out.push_str("<detail>");
        write_detail_children(out, &event.detail, &Typed::NONE);
        out.push_str("</detail>");
    }
    out.push_str(&event.extra_children);
    out.push_str("</event>");
}

/// Which typed detail elements to leave out (because the protobuf form carries them in its
/// own sub-messages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Typed {
    pub contact: bool,
    pub group: bool,
    pub precision_location: bool,
    pub status: bool,
    pub takv: bool,
    pub track: bool,
}

impl Typed {
    pub const NONE: Typed = Typed {
        contact: false,
        group: false,
        precision_location: false,
        status: false,
        takv: false,
        track: false,
    };
}

/// Writes the children of `<detail>`, skipping the elements `skip` names.
pub(crate) fn write_detail_children(out: &mut String, d: &Detail, skip: &Typed) {
    if let Some(c) = d.contact.as_ref().filter(|_| !skip.contact) {
        out.push_str("<contact");
        opt(out, "callsign", c.callsign.as_deref());
        opt(out, "endpoint", c.endpoint.as_deref());
        close(out, "contact", &c.extra);
    }
    if let Some(g) = d.group.as_ref().filter(|_| !skip.group) {
        out.push_str("<__group");
        opt(out, "name", g.name.as_deref());
        opt(out, "role", g.role.as_deref());
        close(out, "__group", &g.extra);
    }
    if let Some(t) = d.takv.as_ref().filter(|_| !skip.takv) {
        out.push_str("<takv");
        opt(out, "device", t.device.as_deref());
        opt(out, "platform", t.platform.as_deref());
        opt(out, "os", t.os.as_deref());
        opt(out, "version", t.version.as_deref());
        close(out, "takv", &t.extra);
    }
    if let Some(s) = d.status.as_ref().filter(|_| !skip.status) {
        out.push_str("<status");
        if let Some(b) = s.battery {
            let _ = write!(out, " battery=\"{b}\"");
        }
        close(out, "status", &s.extra);
    }
    if let Some(t) = d.track.as_ref().filter(|_| !skip.track) {
        out.push_str("<track");
        if let Some(c) = t.course {
            num(out, "course", c);
        }
        if let Some(s) = t.speed {
            num(out, "speed", s);
        }
        close(out, "track", &t.extra);
    }
    if let Some(p) = d
        .precision_location
        .as_ref()
        .filter(|_| !skip.precision_location)
    {
        out.push_str("<precisionlocation");
        opt(out, "geopointsrc", p.geopointsrc.as_deref());
        opt(out, "altsrc", p.altsrc.as_deref());
        close(out, "precisionlocation", &p.extra);
    }
    if let Some(u) = &d.uid {
        out.push_str("<uid");
        opt(out, "Droid", u.droid.as_deref());
        close(out, "uid", &u.extra);
    }
    if let Some(c) = &d.chat {
        out.push_str("<__chat");
        opt(out, "id", c.id.as_deref());
        opt(out, "chatroom", c.chatroom.as_deref());
        opt(out, "senderCallsign", c.sender_callsign.as_deref());
        opt(out, "groupOwner", c.group_owner.as_deref());
        opt(out, "messageId", c.message_id.as_deref());
        opt(out, "parent", c.parent.as_deref());
        attrs(out, &c.extra.attrs);
        if c.chat_group.is_none() && c.extra.children.is_empty() {
            out.push_str("/>");
        } else {
            out.push('>');
            if let Some(g) = &c.chat_group {
                out.push_str("<chatgrp");
                opt(out, "uid0", g.uid0.as_deref());
                opt(out, "uid1", g.uid1.as_deref());
                opt(out, "id", g.id.as_deref());
                close(out, "chatgrp", &g.extra);
            }
            out.push_str(&c.extra.children);
            out.push_str("</__chat>");
        }
    }
    for l in &d.links {
        out.push_str("<link");
        opt(out, "uid", l.uid.as_deref());
        opt(out, "type", l.cot_type.as_deref());
        opt(out, "relation", l.relation.as_deref());
        opt(out, "parent_callsign", l.parent_callsign.as_deref());
        opt(out, "production_time", l.production_time.as_deref());
        opt(out, "point", l.point.as_deref());
        close(out, "link", &l.extra);
    }
    if let Some(r) = &d.remarks {
        out.push_str("<remarks");
        opt(out, "source", r.source.as_deref());
        opt(out, "to", r.to.as_deref());
        opt(out, "time", r.time.as_deref());
        text_element(out, "remarks", &r.text, &r.extra);
    }
    if let Some(e) = &d.emergency {
        out.push_str("<emergency");
        opt(out, "type", e.emergency_type.as_deref());
        opt(out, "cancel", e.cancel.as_deref());
        text_element(out, "emergency", &e.text, &e.extra);
    }
    for raw in &d.unknown {
        out.push_str(raw);
    }
}

/// Finishes an element whose start tag is open: extra attributes, then `/>` or children.
fn close(out: &mut String, name: &str, extra: &Extra) {
    attrs(out, &extra.attrs);
    if extra.children.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        out.push_str(&extra.children);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

fn text_element(out: &mut String, name: &str, text: &str, extra: &Extra) {
    attrs(out, &extra.attrs);
    if text.is_empty() && extra.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    escape_text(out, text);
    out.push_str(&extra.children);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn attrs(out: &mut String, list: &[Attr]) {
    for a in list {
        attr(out, &a.name, &a.value);
    }
}

fn opt(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        attr(out, name, v);
    }
}

fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_attr(out, value);
    out.push('"');
}

/// Writes a number so that parsing it gives back the same `f64`: plain decimal for everyday
/// magnitudes, exponent form for huge or tiny ones (which would otherwise print hundreds of
/// digits). Both forms are valid xsd:double.
fn num(out: &mut String, name: &str, v: f64) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    let a = v.abs();
    if a >= 1e15 || (a != 0.0 && a < 1e-5) {
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
    out.push('"');
}

/// True for characters XML 1.0 cannot carry at all, not even as a character reference.
fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

fn escape_attr(out: &mut String, s: &str) {
    if !s
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"') || b < 0x20 || b == 0xef)
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if forbidden(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

fn escape_text(out: &mut String, s: &str) {
    if !s.bytes().any(|b| {
        matches!(b, b'&' | b'<' | b'>') || (b < 0x20 && b != b'\n' && b != b'\t') || b == 0xef
    }) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if forbidden(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_attributes_and_text() {
        let mut s = String::new();
        escape_attr(&mut s, "a&b<c>\"d'\te\nf\rg\u{1}h");
        assert_eq!(s, "a&amp;b&lt;c&gt;&quot;d'&#9;e&#10;f&#13;g\u{fffd}h");
        let mut t = String::new();
        escape_text(&mut t, "x & y < z > w\r\n\"q\"");
        assert_eq!(t, "x &amp; y &lt; z &gt; w&#13;\n\"q\"");
    }

    #[test]
    fn numbers_round_trip() {
        for v in [
            0.0,
            -0.5,
            1.0,
            9_999_999.0,
            51.123456789,
            1e300,
            1e-9,
            -179.99999999,
        ] {
            let mut s = String::new();
            num(&mut s, "x", v);
            let text = s.trim_start_matches(" x=\"").trim_end_matches('"');
            assert_eq!(text.parse::<f64>().unwrap(), v, "{s}");
        }
        let mut s = String::new();
        num(&mut s, "hae", 9_999_999.0);
        assert_eq!(s, " hae=\"9999999\"");
    }
}
