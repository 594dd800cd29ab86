//! Cursor-on-Target type to MIL-STD-2525C symbol identification code (SIDC).
//!
//! A CoT atom type reads `a-{affiliation}-{dimension}-{function…}`, e.g. `a-f-G-U-C-I`
//! (friendly ground unit, combat, infantry). Its 2525C SIDC is 15 characters:
//!
//! ```text
//! S F G P UCI--- -- -- -
//! │ │ │ │ │      │  │  └ order of battle
//! │ │ │ │ │      │  └─── country
//! │ │ │ │ │      └────── size/modifier
//! │ │ │ │ └───────────── function id (the remaining CoT atoms, padded with '-')
//! │ │ │ └─────────────── status: P = present
//! │ │ └───────────────── battle dimension
//! │ └─────────────────── affiliation
//! └───────────────────── coding scheme: S = warfighting
//! ```
//!
//! Types that are not atoms (`b-…` bits, `t-…` tasking, …) map to the unknown warfighting symbol.

use std::fmt;

/// A 15-character MIL-STD-2525C symbol code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sidc(pub [u8; 15]);

impl Sidc {
    /// The symbol for an unknown warfighting entity: `SUZP-----------`.
    pub const UNKNOWN: Sidc = Sidc(*b"SUZP-----------");

    /// The code as text (always ASCII).
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written into a Sidc, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or("SUZP-----------")
    }
}

impl fmt::Debug for Sidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sidc({})", self.as_str())
    }
}

impl fmt::Display for Sidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maps a CoT affiliation atom to the 2525C affiliation character.
fn affiliation(atom: &str) -> Option<u8> {
    Some(match atom {
        "f" => b'F', // friend
        "h" => b'H', // hostile
        "n" => b'N', // neutral
        "u" => b'U', // unknown
        "p" => b'P', // pending
        "a" => b'A', // assumed friend
        "s" => b'S', // suspect
        "j" => b'J', // joker
        "k" => b'K', // faker
        "o" => b'O', // none specified
        "x" => b'U', // other: drawn as unknown
        _ => return None,
    })
}

/// Maps a CoT battle-dimension atom to the 2525C dimension character.
fn dimension(atom: &str) -> Option<u8> {
    Some(match atom {
        "P" => b'P', // space
        "A" => b'A', // air
        "G" => b'G', // ground
        "S" => b'S', // sea surface
        "U" => b'U', // subsurface
        "F" => b'F', // special operations forces
        "X" => b'Z', // other: unknown dimension
        _ => return None,
    })
}

/// Derives the 2525C SIDC for a CoT type. Never fails: unmappable types give [`Sidc::UNKNOWN`].
pub fn from_cot_type(cot_type: &str) -> Sidc {
    let mut atoms = cot_type.split('-');
    if atoms.next() != Some("a") {
        return Sidc::UNKNOWN;
    }
    let Some(aff) = atoms.next().and_then(affiliation) else {
        return Sidc::UNKNOWN;
    };
    let mut out = *b"S-ZP-----------";
    out[1] = aff;
    let Some(dim_atom) = atoms.next() else {
        return Sidc(out);
    };
    let Some(dim) = dimension(dim_atom) else {
        return Sidc(out);
    };
    out[2] = dim;
    // Function id: positions 5..=10 take one character per remaining single-letter atom.
    let mut pos = 4;
    for atom in atoms {
        if pos >= 10 {
            break;
        }
        let mut chars = atom.bytes();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphanumeric() => {
                out[pos] = c.to_ascii_uppercase();
                pos += 1;
            }
            // Multi-character atoms are not part of the 2525 function hierarchy.
            _ => break,
        }
    }
    Sidc(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_common_types() {
        assert_eq!(from_cot_type("a-f-G-U-C").as_str(), "SFGPUC---------");
        assert_eq!(from_cot_type("a-h-A-M-F-Q").as_str(), "SHAPMFQ--------");
        assert_eq!(from_cot_type("a-n-S").as_str(), "SNSP-----------");
        assert_eq!(from_cot_type("a-u-G").as_str(), "SUGP-----------");
        assert_eq!(
            from_cot_type("a-f-G-E-V-A-T-H-X-Y").as_str(),
            "SFGPEVATHX-----"
        );
    }

    #[test]
    fn unknown_types_are_unknown_symbols() {
        assert_eq!(from_cot_type("b-m-p-s-p-i"), Sidc::UNKNOWN);
        assert_eq!(from_cot_type(""), Sidc::UNKNOWN);
        assert_eq!(from_cot_type("a-q-G").as_str(), "SUZP-----------");
        assert_eq!(from_cot_type("a-f").as_str(), "SFZP-----------");
    }
}
