//! Raw AVR text lines (dump1090 port 30002 and its MLAT variant) into raw Mode S frames.
//!
//! Two line forms are accepted:
//!
//! - `*8D4840D6202CC371C32CE0576098;`: a 56- or 112-bit frame as 14 or 28 hex digits;
//! - `@0123456789AB8D4840D6202CC371C32CE0576098;`: the same, preceded by a 48-bit receiver
//!   timestamp (12 hex digits, a 12 MHz counter in dump1090's MLAT output).
//!
//! The trailing `;` is optional (some relays strip it) and surrounding whitespace, including
//! CR/LF, is ignored. Beast binary and the `<` Beast-as-hex form are not accepted here: they
//! need a framing layer that belongs in the edge, which can pass the bytes to
//! [`crate::decode_frame`] directly.

use crate::AdsbError;

/// Longest Mode S frame in bytes (112 bits).
pub const LONG_FRAME_BYTES: usize = 14;
/// Shortest Mode S frame in bytes (56 bits).
pub const SHORT_FRAME_BYTES: usize = 7;
/// Hex digits of the `@` MLAT timestamp.
const MLAT_DIGITS: usize = 12;

/// One raw Mode S frame from an AVR line, not yet checked or interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame {
    bytes: [u8; LONG_FRAME_BYTES],
    len: u8,
    /// The 48-bit receiver clock of an `@` line; `None` for `*` lines.
    pub mlat_ticks: Option<u64>,
}

impl RawFrame {
    /// The frame's bytes: 7 for a short frame, 14 for a long one.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes[..])
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Checks that `digits` are all hex and names the first offender otherwise.
fn check_hex(digits: &[u8]) -> Result<(), AdsbError> {
    match digits.iter().position(|&c| nibble(c).is_none()) {
        None => Ok(()),
        Some(i) => Err(AdsbError::bad(
            "hex",
            format!(
                "character {:?} at offset {i} is not a hex digit",
                char::from(digits.get(i).copied().unwrap_or(b'?'))
            ),
        )),
    }
}

/// Parses one AVR line into a raw frame. Does not check the CRC: that is
/// [`crate::decode_frame`]'s job, which knows which downlink formats carry plain parity.
pub fn parse_avr(line: &str) -> Result<RawFrame, AdsbError> {
    let line = line.trim().as_bytes();
    let Some((&first, rest)) = line.split_first() else {
        return Err(AdsbError::truncated("AVR line", "the line is empty"));
    };
    let body = rest.strip_suffix(b";").unwrap_or(rest);
    let (mlat_ticks, hex) = match first {
        b'*' => (None, body),
        b'@' => {
            if body.len() < MLAT_DIGITS {
                return Err(AdsbError::truncated(
                    "AVR line",
                    format!(
                        "an '@' line starts with a {MLAT_DIGITS}-digit timestamp, got {} characters",
                        body.len()
                    ),
                ));
            }
            let (ts, hex) = body.split_at(MLAT_DIGITS);
            check_hex(ts)?;
            let ticks = ts
                .iter()
                .filter_map(|&c| nibble(c))
                .fold(0u64, |acc, n| (acc << 4) | u64::from(n));
            (Some(ticks), hex)
        }
        other => {
            return Err(AdsbError::bad(
                "AVR line",
                format!("must start with '*' or '@', got {:?}", char::from(other)),
            ));
        }
    };
    check_hex(hex)?;
    let len = match hex.len() {
        n if n == 2 * SHORT_FRAME_BYTES || n == 2 * LONG_FRAME_BYTES => n / 2,
        n if n < 2 * LONG_FRAME_BYTES => {
            return Err(AdsbError::truncated(
                "AVR frame",
                format!(
                    "a Mode S frame has 14 or 28 hex digits, got {n}{}",
                    if n > 2 * SHORT_FRAME_BYTES {
                        " (a cut 112-bit frame?)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        n => {
            return Err(AdsbError::bad(
                "hex",
                format!("a Mode S frame has 14 or 28 hex digits, got {n}"),
            ));
        }
    };
    let mut bytes = [0u8; LONG_FRAME_BYTES];
    for (out, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        // check_hex has vetted every digit; the fallbacks are unreachable.
        let hi = pair.first().copied().and_then(nibble).unwrap_or(0);
        let lo = pair.get(1).copied().and_then(nibble).unwrap_or(0);
        *out = (hi << 4) | lo;
    }
    Ok(RawFrame {
        bytes,
        // len is 7 or 14, so it fits a u8.
        len: len as u8,
        mlat_ticks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_star_and_at_lines() {
        let f = parse_avr("*8D4840D6202CC371C32CE0576098;\r\n").unwrap();
        assert_eq!(f.bytes().len(), 14);
        assert_eq!(f.bytes()[0], 0x8D);
        assert_eq!(f.mlat_ticks, None);
        let f = parse_avr("@00000123ABCD8d4840d6202cc371c32ce0576098;").unwrap();
        assert_eq!(f.mlat_ticks, Some(0x123ABCD));
        assert_eq!(f.bytes()[13], 0x98);
        let short = parse_avr("*5D4840D6AABBCC;").unwrap();
        assert_eq!(short.bytes().len(), 7);
        assert!(parse_avr("*8D4840D6202CC371C32CE0576098").is_ok());
    }

    #[test]
    fn rejects_with_reasons() {
        let reason = |l: &str| parse_avr(l).unwrap_err().reason();
        assert_eq!(reason(""), "truncated");
        assert_eq!(reason("   "), "truncated");
        assert_eq!(reason("*8D4840D6202CC371C32CE05760;"), "truncated");
        assert_eq!(reason("*8D48;"), "truncated");
        assert_eq!(reason("@0012;"), "truncated");
        assert_eq!(reason("*8D4840D6202CC371C32CE0576098AA;"), "bad_field");
        assert_eq!(reason("*8D4840D6202CC371C32CE057609G;"), "bad_field");
        assert_eq!(reason("8D4840D6202CC371C32CE0576098"), "bad_field");
        assert_eq!(reason("*8D4840D6202CC371C32CÉ0576098;"), "bad_field");
        let e = parse_avr("*8D4840D6202CC371C32CE057609G;").unwrap_err();
        assert!(e.to_string().contains("'G' at offset 27"), "{e}");
    }
}
