//! The four display affiliations (friend, hostile, neutral, unknown) and their colours.
//!
//! Derived through the model's SIDC mapping rather than by re-parsing the CoT type, so the
//! exports colour an entity exactly as the SIDC (and therefore the console) classifies it:
//! the CoT type's second atom, with non-atom types (`b-…`, `t-…`) as unknown.

use rampart_model::sidc;

/// How an entity is drawn: the four MIL-STD-2525 affiliation frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Affiliation {
    /// Friend or assumed friend (CoT `f`, `a`).
    Friend,
    /// Hostile, suspect, joker or faker (CoT `h`, `s`, `j`, `k`): 2525C draws all four red.
    Hostile,
    /// Neutral (CoT `n`).
    Neutral,
    /// Unknown, pending, none specified, other, and every non-atom type.
    Unknown,
}

impl Affiliation {
    /// All four, in the order styles are written.
    pub const ALL: [Affiliation; 4] = [
        Affiliation::Friend,
        Affiliation::Hostile,
        Affiliation::Neutral,
        Affiliation::Unknown,
    ];

    /// The affiliation of a CoT type, e.g. `a-h-A-M-F` → [`Affiliation::Hostile`].
    pub fn of_cot_type(cot_type: &str) -> Self {
        match sidc::from_cot_type(cot_type).0[1] {
            b'F' | b'A' => Affiliation::Friend,
            b'H' | b'S' | b'J' | b'K' => Affiliation::Hostile,
            b'N' => Affiliation::Neutral,
            _ => Affiliation::Unknown,
        }
    }

    /// Lower-case name, also used as the KML style id: `friend`, `hostile`, `neutral`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Affiliation::Friend => "friend",
            Affiliation::Hostile => "hostile",
            Affiliation::Neutral => "neutral",
            Affiliation::Unknown => "unknown",
        }
    }

    /// The 2525C fill colour as `[r, g, b]`: crystal blue, salmon red, bamboo green and light
    /// yellow. The light fills rather than pure primaries keep labels readable on imagery.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Affiliation::Friend => [128, 224, 255],
            Affiliation::Hostile => [255, 128, 128],
            Affiliation::Neutral => [170, 255, 170],
            Affiliation::Unknown => [255, 255, 128],
        }
    }

    /// The colour in KML's `aabbggrr` hex notation with the given alpha.
    pub fn kml_color(self, alpha: u8) -> String {
        let [r, g, b] = self.rgb();
        format!("{alpha:02x}{b:02x}{g:02x}{r:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_second_atom() {
        assert_eq!(Affiliation::of_cot_type("a-f-G-U-C"), Affiliation::Friend);
        assert_eq!(Affiliation::of_cot_type("a-a-A"), Affiliation::Friend);
        assert_eq!(Affiliation::of_cot_type("a-h-A-M-F"), Affiliation::Hostile);
        assert_eq!(Affiliation::of_cot_type("a-s-S"), Affiliation::Hostile);
        assert_eq!(Affiliation::of_cot_type("a-n-S"), Affiliation::Neutral);
        assert_eq!(Affiliation::of_cot_type("a-u-G"), Affiliation::Unknown);
        assert_eq!(Affiliation::of_cot_type("a-p-G"), Affiliation::Unknown);
        assert_eq!(
            Affiliation::of_cot_type("b-m-p-s-p-i"),
            Affiliation::Unknown
        );
        assert_eq!(Affiliation::of_cot_type(""), Affiliation::Unknown);
    }

    #[test]
    fn kml_colours_are_aabbggrr() {
        assert_eq!(Affiliation::Hostile.kml_color(0xff), "ff8080ff");
        assert_eq!(Affiliation::Friend.kml_color(0x80), "80ffe080");
    }
}
