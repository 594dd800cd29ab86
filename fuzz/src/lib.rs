//! Helpers shared by the fuzz targets: splitting the input into lines with a fuzzer-driven
//! clock, and repairing the checksums that a mutating fuzzer cannot compute by itself (so
//! the decoders behind the framing checks get explored, not only the checksum rejection).

use rampart_model::Timestamp;

/// The clock every line-based target starts at (2023-11-14T22:13:20Z).
pub const T0_MS: i64 = 1_700_000_000_000;

/// Time between two consecutive non-empty lines.
pub const LINE_STEP_MS: i64 = 500;

/// Time an empty line adds, so the fuzzer can reach timeouts, expiry and pair windows by
/// inserting blank lines.
pub const BLANK_STEP_MS: i64 = 30_000;

/// Splits `data` on `\n` (a trailing `\r` is left on the line: the decoders strip line
/// endings themselves) and pairs each non-empty line with its `now`. Empty lines only
/// advance the clock.
pub fn timed_lines(data: &[u8]) -> impl Iterator<Item = (&[u8], Timestamp)> {
    let mut now = T0_MS;
    data.split(|&b| b == b'\n').filter_map(move |line| {
        if line.is_empty() || line == b"\r" {
            now += BLANK_STEP_MS;
            None
        } else {
            now += LINE_STEP_MS;
            Some((line, Timestamp(now)))
        }
    })
}

fn hex_upper(n: u8) -> u8 {
    b"0123456789ABCDEF"[usize::from(n & 0xF)]
}

/// Rewrites the two characters after the last `*` of `seg` (if there are two) with the
/// NMEA checksum of the bytes between the first byte of `seg` and that `*`.
fn fix_one(seg: &mut [u8]) {
    let Some(star) = seg.iter().rposition(|&b| b == b'*') else {
        return;
    };
    if star == 0 || seg.len() < star + 3 {
        return;
    }
    let sum = rampart_codec_nmea::checksum(&seg[1..star]);
    seg[star + 1] = hex_upper(sum >> 4);
    seg[star + 2] = hex_upper(sum);
}

/// A copy of an NMEA/AIS line whose tag-block checksum and sentence checksum (when present
/// as `*hh`) are made correct. A line without a checksum is returned unchanged.
pub fn fix_nmea_checksums(line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    // Strip the line ending for the fix-up, put it back afterwards.
    let mut end = out.len();
    while end > 0 && (out[end - 1] == b'\r' || out[end - 1] == b'\n') {
        end -= 1;
    }
    let body = &mut out[..end];
    let mut start = 0;
    if body.first() == Some(&b'\\')
        && let Some(close) = body[1..].iter().position(|&b| b == b'\\')
    {
        let close = close + 1;
        // The tag block body runs from after the first '\' to before the closing '\'.
        let tag = &mut body[..close];
        // fix_one skips its first byte, which here is the opening backslash.
        fix_one(tag);
        start = close + 1;
    }
    if start < body.len() {
        // The sentence: from its start character ('$' or '!') to the end.
        let sentence = &mut body[start..];
        if let Some(s) = sentence.iter().position(|&b| b == b'$' || b == b'!') {
            fix_one(&mut sentence[s..]);
        }
    }
    out
}

/// A copy of an AVR line (`*hex;` or `@ts hex;`) of a 112-bit frame whose parity bytes are
/// replaced by the CRC-24 of the rest, so DF17/18 frames pass the parity check. `None` when
/// the line does not parse as a long frame.
pub fn fix_avr_crc(line: &str) -> Option<String> {
    let raw = rampart_codec_adsb::parse_avr(line).ok()?;
    let bytes = raw.bytes();
    if bytes.len() != rampart_codec_adsb::LONG_FRAME_BYTES {
        return None;
    }
    let (body, _) = bytes.split_at(bytes.len() - 3);
    let crc = rampart_codec_adsb::crc24(body);
    let mut s = String::with_capacity(32);
    s.push('*');
    for b in body {
        s.push(char::from(hex_upper(b >> 4)));
        s.push(char::from(hex_upper(*b)));
    }
    for b in &crc.to_be_bytes()[1..] {
        s.push(char::from(hex_upper(b >> 4)));
        s.push(char::from(hex_upper(*b)));
    }
    s.push(';');
    Some(s)
}

/// Splits `data` on every occurrence of `sep`.
pub fn split_on<'a>(mut data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(sep.len()).position(|w| w == sep) {
        out.push(&data[..i]);
        data = &data[i + sep.len()..];
    }
    out.push(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_repaired() {
        let good = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47";
        let mut bad = good.to_vec();
        let n = bad.len();
        bad[n - 1] = b'0';
        assert_eq!(fix_nmea_checksums(&bad), good.to_vec());
        let ais =
            b"\\s:r003669945,c:1241544035*4A\\!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C\r";
        let fixed = fix_nmea_checksums(ais);
        assert!(fixed.ends_with(b"*5C\r"));
    }

    #[test]
    fn avr_crc_is_repaired() {
        assert_eq!(
            fix_avr_crc("*8D4840D6202CC371C32CE0576099;").as_deref(),
            Some("*8D4840D6202CC371C32CE0576098;")
        );
    }
}
