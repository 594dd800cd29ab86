//! Mode S CRC-24 parity (generator polynomial 0x1FFF409, written 0xFFF409 without its top bit).
//!
//! DF17/18 frames carry the plain parity in their last 24 bits, so the CRC-24 remainder over
//! the whole frame is zero for an intact frame. The table is built at compile time; one
//! lookup per byte keeps the check far cheaper than the hex parsing in front of it.

/// The generator polynomial without its implicit x^24 term.
pub const POLY: u32 = 0xFF_F409;

const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x80_0000 != 0 {
                ((crc << 1) ^ POLY) & 0xFF_FFFF
            } else {
                (crc << 1) & 0xFF_FFFF
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The CRC-24 of `data` (no initial value, no final xor), as Mode S defines it.
pub fn crc24(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |crc, &b| {
        // The index is masked to 8 bits, so it is always within the 256-entry table.
        let idx = (((crc >> 16) ^ u32::from(b)) & 0xFF) as usize;
        ((crc << 8) & 0xFF_FFFF) ^ TABLE.get(idx).copied().unwrap_or(0)
    })
}

/// The parity remainder of a whole frame: the CRC of everything but the last three bytes,
/// xored with those bytes. Zero for an intact DF17/18 frame; for DF11/20/21 it is the
/// address or interrogator overlaid on the parity. Frames shorter than 3 bytes give `u32::MAX`.
pub fn remainder(frame: &[u8]) -> u32 {
    let Some(split) = frame.len().checked_sub(3) else {
        return u32::MAX;
    };
    let (body, parity) = frame.split_at(split);
    let tail = parity
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    crc24(body) ^ tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Bit-by-bit long division, the textbook definition the table must agree with.
    fn slow(frame: &[u8]) -> u32 {
        let bits = frame.len() * 8;
        let mut msg: u128 = frame.iter().fold(0u128, |a, &b| (a << 8) | u128::from(b));
        let poly = (u128::from(POLY) | 0x100_0000) << (bits - 25);
        for i in 0..bits - 24 {
            if msg & (1u128 << (bits - 1 - i)) != 0 {
                msg ^= poly >> i;
            }
        }
        (msg & 0xFF_FFFF) as u32
    }

    #[test]
    fn riddle_frames_check() {
        for m in [
            "8D4840D6202CC371C32CE0576098",
            "8D40621D58C382D690C8AC2863A7",
            "8D40621D58C386435CC412692AD6",
            "8D485020994409940838175B284F",
        ] {
            assert_eq!(remainder(&bytes(m)), 0, "{m}");
            assert_eq!(slow(&bytes(m)), 0, "{m}");
        }
    }

    #[test]
    fn table_matches_long_division() {
        let mut f = bytes("8D4840D6202CC371C32CE0576098");
        for i in 0..f.len() {
            f[i] ^= 0x5A;
            assert_eq!(remainder(&f), slow(&f));
            assert_ne!(remainder(&f), 0, "a single damaged byte is always detected");
            f[i] ^= 0x5A;
        }
        assert_eq!(remainder(&[1, 2]), u32::MAX);
    }
}
