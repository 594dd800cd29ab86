//! 6-bit payload armoring and the bit reader.
//!
//! A [`Payload`] is a fixed-size bit buffer on the stack (no allocation per message), bounded
//! by [`MAX_PAYLOAD_BITS`]: the longest AIS message is five slots, 1008 data bits. Reads past
//! the end yield zero bits, as most decoders do, so a message a few spare bits short (type 5
//! sent as 420 bits, type 24A as 160) still decodes; each message type checks its own minimum.

use crate::AisError;

/// The most bits a reassembled payload may hold (five-slot messages carry 1008).
pub const MAX_PAYLOAD_BITS: usize = 1024;
/// Eight spare zero bytes let every field read load a whole big-endian `u64`.
const MAX_BYTES: usize = MAX_PAYLOAD_BITS / 8 + 8;

/// A de-armored AIS payload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    bytes: [u8; MAX_BYTES],
    /// Bits written, fill bits not yet removed.
    written: usize,
    /// Valid bits after fill bits are removed.
    bits: usize,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bits)", self.bits)
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload {
            bytes: [0; MAX_BYTES],
            written: 0,
            bits: 0,
        }
    }
}

/// The 6-bit value of an armored payload character, if it is one.
#[inline]
fn unarmor(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'W' => Some(c - 48),
        b'`'..=b'w' => Some(c - 56),
        _ => None,
    }
}

impl Payload {
    /// Decodes a complete single-fragment payload.
    pub fn from_armored(payload: &str, fill_bits: u8) -> Result<Payload, AisError> {
        let mut p = Payload::default();
        p.append(payload)?;
        p.finish(fill_bits);
        Ok(p)
    }

    /// Appends one fragment's armored characters (6 bits each).
    pub fn append(&mut self, payload: &str) -> Result<(), AisError> {
        let total = self.written.saturating_add(payload.len().saturating_mul(6));
        if total > MAX_PAYLOAD_BITS {
            return Err(AisError::PayloadTooLong {
                bits: total,
                max: MAX_PAYLOAD_BITS,
            });
        }
        let bytes = payload.as_bytes();
        let mut done = 0;
        // Fast path while byte-aligned: four characters are exactly three bytes.
        while self.written.is_multiple_of(8) {
            let Some([a, b, c, d]) = bytes
                .get(done..done + 4)
                .and_then(|q| <[u8; 4]>::try_from(q).ok())
            else {
                break;
            };
            let (Some(a), Some(b), Some(c), Some(d)) =
                (unarmor(a), unarmor(b), unarmor(c), unarmor(d))
            else {
                break; // the slow path below names the bad character
            };
            let v =
                (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
            let at = self.written / 8;
            if let Some(dst) = self.bytes.get_mut(at..at + 3) {
                dst.copy_from_slice(&v.to_be_bytes()[1..]);
            }
            self.written += 24;
            done += 4;
        }
        for (position, &c) in bytes.iter().enumerate().skip(done) {
            let Some(v) = unarmor(c) else {
                return Err(AisError::BadPayloadChar {
                    ch: char::from(c),
                    position,
                });
            };
            // Write 6 bits starting at `written`; they span at most two bytes.
            let byte = self.written / 8;
            let shift = self.written % 8;
            let wide = u16::from(v) << (10 - shift);
            if let Some(b) = self.bytes.get_mut(byte) {
                *b |= (wide >> 8) as u8;
            }
            if let Some(b) = self.bytes.get_mut(byte + 1) {
                *b |= wide as u8;
            }
            self.written += 6;
        }
        Ok(())
    }

    /// Removes `fill_bits` trailing bits (at most 5) and clears them so reads past the end
    /// yield zeros.
    pub fn finish(&mut self, fill_bits: u8) {
        self.bits = self.written.saturating_sub(usize::from(fill_bits.min(5)));
        let first = self.bits / 8;
        if let Some(b) = self.bytes.get_mut(first) {
            let keep = self.bits % 8;
            *b &= if keep == 0 { 0 } else { 0xFFu8 << (8 - keep) };
        }
        for b in self.bytes.iter_mut().skip(first + 1).take(2) {
            *b = 0;
        }
    }

    /// Valid bits.
    pub fn len_bits(&self) -> usize {
        self.bits
    }

    /// Unsigned field of `len` (1..=57) bits at bit `start`; bits past the end read as 0.
    #[inline]
    pub fn u(&self, start: usize, len: usize) -> u64 {
        if len == 0 || len > 57 {
            return 0;
        }
        let first = start / 8;
        let w = match self.bytes.get(first..first + 8) {
            Some(chunk) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                u64::from_be_bytes(b)
            }
            // Only reachable for starts past the buffer: those bits read as zero.
            None => 0,
        };
        (w << (start % 8)) >> (64 - len)
    }

    /// Two's complement signed field of `len` (1..=57) bits at bit `start`.
    #[inline]
    pub fn i(&self, start: usize, len: usize) -> i64 {
        if len == 0 || len > 57 {
            return 0;
        }
        let v = self.u(start, len) as i64;
        (v << (64 - len)) >> (64 - len)
    }

    /// One-bit flag.
    #[inline]
    pub fn flag(&self, start: usize) -> bool {
        self.u(start, 1) == 1
    }

    /// `chars` 6-bit ASCII characters at `start`, with the trailing `@` padding and then
    /// surrounding spaces removed (an `@` inside the text is kept, as pyais and gpsd do).
    /// Characters past the payload's end are not read, so a shortened field yields what is
    /// there.
    pub fn text(&self, start: usize, chars: usize) -> rampart_model::Text {
        let mut buf = [0u8; 64];
        let mut n = 0;
        for k in 0..chars.min(buf.len()) {
            let at = start + 6 * k;
            if at + 6 > self.bits {
                break;
            }
            let v = self.u(at, 6) as u8;
            if let Some(slot) = buf.get_mut(n) {
                *slot = if v < 32 { v + 64 } else { v };
                n += 1;
            }
        }
        // Every byte is in 0x20..=0x5F, so this is valid UTF-8.
        let s = std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default();
        rampart_model::Text::from(s.trim_end_matches('@').trim_matches(' '))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_across_bytes() {
        // "1" = 000001, "P" = 100000 → bits 000001 100000
        let p = Payload::from_armored("1P000", 0).unwrap();
        assert_eq!(p.u(0, 6), 1);
        assert_eq!(p.u(6, 6), 32);
        assert_eq!(p.i(6, 6), -32);
        assert_eq!(p.len_bits(), 30);
        assert_eq!(p.u(28, 20), 0);
    }

    #[test]
    fn rejects_non_armor_characters() {
        let e = Payload::from_armored("15X", 0).unwrap_err();
        assert_eq!(e.reason(), "bad_field");
    }
}
