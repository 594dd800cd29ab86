//! Callsigns and uids that look like the real thing.
//!
//! Callsigns are derived from the entity's index within its class rather than drawn at random,
//! so they are unique within a class for any scenario size a demo uses (a duplicated callsign
//! on a common operating picture reads like a data error to a newcomer).

use rampart_model::Text;

const VEHICLE_WORDS: [&str; 12] = [
    "VIPER", "COBRA", "SABRE", "LANCER", "HAMMER", "RAVEN", "DAGGER", "TITAN", "GRIZZLY", "WOLF",
    "MUSTANG", "BISON",
];
const PHONETIC: [&str; 26] = [
    "ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL", "INDIA", "JULIET",
    "KILO", "LIMA", "MIKE", "NOVEMBER", "OSCAR", "PAPA", "QUEBEC", "ROMEO", "SIERRA", "TANGO",
    "UNIFORM", "VICTOR", "WHISKEY", "XRAY", "YANKEE", "ZULU",
];
const FIGHTER_WORDS: [&str; 6] = ["RAPTOR", "EAGLE", "HAWK", "TIGER", "JAGUAR", "SHARK"];
const UAV_WORDS: [&str; 3] = ["HERON", "REAPER", "GRAYHAWK"];
const HELO_WORDS: [&str; 4] = ["CHRISTOPH", "SAR", "PEDRO", "DUSTOFF"];
const AIRLINES: [&str; 10] = [
    "DLH", "SAS", "EZY", "RYR", "KLM", "EWG", "FIN", "BAW", "AFR", "CFG",
];
const SHIP_ADJ: [&str; 12] = [
    "NORDIC",
    "BALTIC",
    "ATLANTIC",
    "POLAR",
    "NORTHERN",
    "SILVER",
    "GOLDEN",
    "ARCTIC",
    "HANSEATIC",
    "CELTIC",
    "OCEAN",
    "STELLA",
];
const SHIP_NOUN: [&str; 12] = [
    "STAR", "TRADER", "SPIRIT", "WIND", "PIONEER", "EXPRESS", "CARRIER", "QUEEN", "BREEZE",
    "VOYAGER", "HARMONY", "FORTUNE",
];
/// Patrol vessels with names from their own navy's tradition.
const WARSHIPS: [(&str, [&str; 4]); 4] = [
    ("HMS", ["DEFENDER", "MERCY", "TYNE", "SEVERN"]),
    ("FGS", ["FALKE", "GEPARD", "ZOBEL", "HERMELIN"]),
    (
        "HDMS",
        ["ESBERN SNARE", "KNUD RASMUSSEN", "SKRALDEN", "DIANA"],
    ),
    ("HNLMS", ["HOLLAND", "ZEELAND", "FRIESLAND", "GRONINGEN"]),
];
const SITES: [&str; 4] = ["FOB", "CP", "OP", "HQ"];
const SECTORS: [&str; 8] = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];

/// A stable uid such as `sim-veh-0042`.
pub(crate) fn uid(prefix: &str, i: usize) -> Text {
    Text::from(format!("sim-{prefix}-{i:04}"))
}

/// `VIPER 2-1`: unit word, platoon, vehicle.
pub(crate) fn vehicle(i: usize) -> Text {
    let k = i / VEHICLE_WORDS.len();
    let word = VEHICLE_WORDS[i % VEHICLE_WORDS.len()];
    Text::from(format!("{word} {}-{}", k / 9 + 1, k % 9 + 1))
}

/// `TN 04127`: a NATO-style octal track number, used for hostile and unknown tracks.
pub(crate) fn track_number(i: usize) -> Text {
    Text::from(format!("TN {:05o}", 0o4000 + i))
}

/// `TANGO-14`.
pub(crate) fn dismount(i: usize) -> Text {
    let word = PHONETIC[i % PHONETIC.len()];
    Text::from(format!("{word}-{:02}", i / PHONETIC.len() + 1))
}

/// `EAGLE 21`: flight number and position in the flight of four.
pub(crate) fn fighter(i: usize) -> Text {
    let k = i / FIGHTER_WORDS.len();
    let word = FIGHTER_WORDS[i % FIGHTER_WORDS.len()];
    Text::from(format!("{word} {}{}", k / 4 + 1, k % 4 + 1))
}

/// `HERON 03`.
pub(crate) fn uav(i: usize) -> Text {
    let word = UAV_WORDS[i % UAV_WORDS.len()];
    Text::from(format!("{word} {:02}", i / UAV_WORDS.len() + 1))
}

/// `CHRISTOPH 12`: rescue and utility helicopters.
pub(crate) fn helicopter(i: usize) -> Text {
    let word = HELO_WORDS[i % HELO_WORDS.len()];
    Text::from(format!("{word} {}", 10 + i / HELO_WORDS.len()))
}

/// `BANDIT 07`: hostile aircraft.
pub(crate) fn bandit(i: usize) -> Text {
    Text::from(format!("BANDIT {:02}", i + 1))
}

/// `DLH4372`: ICAO airline designator and flight number.
pub(crate) fn airliner(i: usize) -> Text {
    let code = AIRLINES[i % AIRLINES.len()];
    // 173 is coprime with 9000, so the flight numbers of one airline never repeat.
    let number = 100 + ((i / AIRLINES.len()) * 173 + 41) % 9000;
    Text::from(format!("{code}{number}"))
}

/// `MV NORDIC STAR`, with a numeral once the names run out.
pub(crate) fn merchant(i: usize) -> Text {
    let combos = SHIP_ADJ.len() * SHIP_NOUN.len();
    let j = i % combos;
    let base = format!(
        "MV {} {}",
        SHIP_ADJ[j % SHIP_ADJ.len()],
        SHIP_NOUN[j / SHIP_ADJ.len()]
    );
    numbered(base, i / combos)
}

/// `HMS DEFENDER`, `FGS GEPARD`, …
pub(crate) fn warship(i: usize) -> Text {
    let combos = WARSHIPS.len() * 4;
    let j = i % combos;
    let (navy, names) = WARSHIPS[j % WARSHIPS.len()];
    numbered(format!("{navy} {}", names[j / WARSHIPS.len()]), i / combos)
}

/// `SKUNK C07`: unidentified surface contact.
pub(crate) fn skunk(i: usize) -> Text {
    let letter = char::from(b'A' + (i % 26) as u8);
    Text::from(format!("SKUNK {letter}{:02}", i / 26 + 1))
}

/// `RADAR NE3`, `CAM S14`, `SENSOR N7`: the kind, the compass sector and a serial.
pub(crate) fn sensor(kind: &str, heading_from_centre: f64, serial: usize) -> Text {
    let sector = SECTORS[((heading_from_centre + 22.5) / 45.0) as usize % SECTORS.len()];
    Text::from(format!("{kind} {sector}{}", serial + 1))
}

/// `FOB LIMA`, `CP ECHO-2`.
pub(crate) fn site(i: usize) -> Text {
    let kind = SITES[i % SITES.len()];
    let k = i / SITES.len();
    let base = format!("{kind} {}", PHONETIC[k % PHONETIC.len()]);
    let round = k / PHONETIC.len();
    if round == 0 {
        Text::from(base)
    } else {
        Text::from(format!("{base}-{}", round + 1))
    }
}

fn numbered(base: String, round: usize) -> Text {
    if round == 0 {
        Text::from(base)
    } else {
        Text::from(format!("{base} {}", round + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn callsigns_look_right_and_are_unique() {
        assert_eq!(vehicle(0), "VIPER 1-1");
        assert_eq!(dismount(19), "TANGO-01");
        assert_eq!(uid("veh", 42), "sim-veh-0042");
        assert_eq!(sensor("SENSOR", 0.0, 6), "SENSOR N7");
        assert_eq!(sensor("RADAR", 350.0, 0), "RADAR N1");
        for f in [
            vehicle,
            dismount,
            fighter,
            uav,
            helicopter,
            airliner,
            merchant,
            warship,
            skunk,
            site,
            track_number,
            bandit,
        ] {
            let all: HashSet<Text> = (0..5_000).map(f).collect();
            assert_eq!(all.len(), 5_000);
        }
    }
}
