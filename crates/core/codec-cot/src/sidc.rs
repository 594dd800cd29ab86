//! CoT type → MIL-STD-2525C symbol code for every atom type TAK clients send.
//!
//! The model's `rampart_model::sidc::from_cot_type` does the work; this module only maps
//! what its affiliation table does not know onto "unknown" first: the CoT wildcard `.`
//! (`a-.-G`) and letters outside 2525C's affiliations. So `a-.-G-U-C` draws as an unknown
//! ground unit (`SUGPUC---------`) instead of the bare unknown symbol.

use rampart_model::sidc::{self as model, Sidc};

/// CoT affiliation atoms the model maps itself.
const KNOWN_AFFILIATIONS: [&str; 11] = ["f", "h", "n", "u", "p", "a", "s", "j", "k", "o", "x"];

/// The 2525C SIDC for `cot_type`. Never fails: non-atom types give [`Sidc::UNKNOWN`].
pub fn from_cot_type(cot_type: &str) -> Sidc {
    let mut atoms = cot_type.splitn(3, '-');
    match (atoms.next(), atoms.next(), atoms.next()) {
        (Some("a"), Some(aff), rest) if !KNOWN_AFFILIATIONS.contains(&aff) => {
            let mut normalised = String::from("a-u");
            if let Some(r) = rest {
                normalised.push('-');
                normalised.push_str(r);
            }
            model::from_cot_type(&normalised)
        }
        _ => model::from_cot_type(cot_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_wildcards_and_unknown_affiliations() {
        assert_eq!(from_cot_type("a-.-G-U-C").as_str(), "SUGPUC---------");
        assert_eq!(from_cot_type("a-q-A").as_str(), "SUAP-----------");
        assert_eq!(from_cot_type("a-f-G-U-C").as_str(), "SFGPUC---------");
        assert_eq!(from_cot_type("a-x-X").as_str(), "SUZP-----------");
        assert_eq!(from_cot_type("b-m-p-s-m"), Sidc::UNKNOWN);
        assert_eq!(from_cot_type("a"), Sidc::UNKNOWN);
    }
}
