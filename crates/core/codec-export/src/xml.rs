//! Small XML writing helpers shared by the KML and GPX encoders.
//!
//! Hand-rolled rather than delegated to an XML library: the documents have a fixed shape, and
//! the two properties that matter, correct escaping and XML 1.0 character validity, are easier
//! to audit in one place than across a library's configuration. Every string that reaches the
//! output from the model goes through [`text`] or [`attr`].

use std::io::Write as _;

/// The XML declaration every document starts with.
pub(crate) const DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// What replaces a character that XML 1.0 cannot carry at all (even as a character
/// reference). U+FFFD rather than deletion, so a reader can see that something was there.
const REPLACEMENT: &str = "\u{FFFD}";

/// Whether `c` matches XML 1.0's `Char` production (§2.2). Everything else, C0 controls other
/// than tab/LF/CR, U+FFFE and U+FFFF, makes a document ill-formed, even when escaped as `&#N;`.
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Escapes `s` for element content (`in_attr == false`) or a double-quoted attribute value.
fn escape(out: &mut Vec<u8>, s: &str, in_attr: bool) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            // Only required after `]]`, but escaping always is simpler and never wrong.
            '>' => "&gt;",
            '"' if in_attr => "&quot;",
            // A literal CR is turned into LF by every parser's end-of-line handling; the
            // reference survives it.
            '\r' => "&#13;",
            // Parsers normalise literal tabs and newlines in attribute values to spaces.
            '\n' if in_attr => "&#10;",
            '\t' if in_attr => "&#9;",
            c if !is_xml_char(c) => REPLACEMENT,
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[start..i]);
        out.extend_from_slice(rep.as_bytes());
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
}

/// Writes `s` escaped as element content.
pub(crate) fn text(out: &mut Vec<u8>, s: &str) {
    escape(out, s, false);
}

/// Writes `s` escaped as a double-quoted attribute value (without the quotes).
pub(crate) fn attr(out: &mut Vec<u8>, s: &str) {
    escape(out, s, true);
}

/// Writes `<name>s</name>` with `s` escaped. `name` is always a literal from this crate.
pub(crate) fn elem(out: &mut Vec<u8>, name: &str, s: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    text(out, s);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b">\n");
}

/// Writes `<name>v</name>` for a number.
pub(crate) fn elem_num(out: &mut Vec<u8>, name: &str, v: f64) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    num(out, v);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b">\n");
}

/// Writes a number in plain decimal notation.
///
/// Rust's `Display` for `f64` prints the shortest text that parses back to the same value and
/// never uses exponent notation, which KML's `coordinates` and GPX's `xsd:decimal` both forbid.
/// Callers pass finite values only (see [`finite`]).
pub(crate) fn num(out: &mut Vec<u8>, v: f64) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{v}");
}

/// `Some(v)` only for a finite value. The model's validation guarantees finite numbers, but
/// these encoders also take unvalidated input and must never write `NaN` into a coordinate.
pub(crate) fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, in_attr: bool) -> String {
        let mut out = Vec::new();
        escape(&mut out, s, in_attr);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_specials_and_replaces_invalid_characters() {
        assert_eq!(esc("a<b>&\"'", false), "a&lt;b&gt;&amp;\"'");
        assert_eq!(esc("a<b>&\"'", true), "a&lt;b&gt;&amp;&quot;'");
        assert_eq!(
            esc("x\u{0}y\u{1b}z\u{FFFF}", false),
            "x\u{FFFD}y\u{FFFD}z\u{FFFD}"
        );
        assert_eq!(esc("l1\nl2\r\tt", false), "l1\nl2&#13;\tt");
        assert_eq!(esc("l1\nl2\r\tt", true), "l1&#10;l2&#13;&#9;t");
        assert_eq!(esc("ünï 漢字 🚁", true), "ünï 漢字 🚁");
    }

    #[test]
    fn numbers_are_plain_decimals() {
        let mut out = Vec::new();
        for v in [1e21, 1e-7, -0.5, 12.0] {
            num(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1000000000000000000000 0.0000001 -0.5 12 "
        );
    }
}
