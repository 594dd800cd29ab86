//! Adapters from the protocol codecs (sans-IO state machines) to [`crate::FeedDecoder`], and
//! the mapping from a listener kind to its decoder.

pub mod adsb;
pub mod cot;
pub mod nmea;

use std::sync::Arc;

use rampart_model::{Text, Uid};

use crate::decoder::{DecoderFactory, FeedDecoder, Peer};

/// The protocol of a feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// NMEA 0183 GPS sentences.
    Nmea,
    /// AIS AIVDM/AIVDO sentences.
    Ais,
    /// ADS-B SBS-1 BaseStation lines.
    Sbs,
    /// ADS-B raw AVR hex lines.
    Avr,
}

impl Protocol {
    /// Parses a protocol name (`nmea`, `ais`, `sbs`, `avr`).
    pub fn parse(name: &str) -> Option<Protocol> {
        Some(match name {
            "nmea" => Protocol::Nmea,
            "ais" => Protocol::Ais,
            "sbs" => Protocol::Sbs,
            "avr" => Protocol::Avr,
            _ => return None,
        })
    }

    /// The protocol's name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Nmea => "nmea",
            Protocol::Ais => "ais",
            Protocol::Sbs => "sbs",
            Protocol::Avr => "avr",
        }
    }
}

/// The listener kinds this edge serves, as `(kind, protocol, is_udp)`.
pub const LISTENER_KINDS: &[(&str, Protocol, bool)] = &[
    ("nmea-udp", Protocol::Nmea, true),
    ("nmea-tcp", Protocol::Nmea, false),
    ("ais-udp", Protocol::Ais, true),
    ("ais-tcp", Protocol::Ais, false),
    ("sbs-tcp", Protocol::Sbs, false),
    ("avr-tcp", Protocol::Avr, false),
];

/// Which entity a GPS receiver reports as.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NmeaSourceConfig {
    /// The sender's IP address (any port), `IP:PORT` for one sender, or `file` for
    /// `rampart replay`.
    pub peer: String,
    /// Entity uid.
    pub uid: String,
    /// CoT type, e.g. `a-f-G-E-V`.
    #[serde(rename = "type", default = "default_nmea_type")]
    pub cot_type: String,
    /// Callsign.
    #[serde(default)]
    pub callsign: Option<String>,
}

fn default_nmea_type() -> String {
    "a-u-G".to_string()
}

/// Protocol settings of the feeds.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// GPS receivers by sender; an unlisted sender reports as `nmea-<ip>` of type `a-u-G`.
    pub nmea_source: Vec<NmeaSourceConfig>,
    /// AIS affiliation letter for vessels (`n` neutral by default; `f`, `h`, `u`, …).
    pub ais_affiliation: Option<char>,
    /// CoT type of ADS-B aircraft (`a-u-A` by default; `a-n-A-C-F` for known civil traffic).
    pub adsb_cot_type: Option<String>,
    /// The ADS-B receiver's position `[lat, lon]`, needed for surface positions.
    pub adsb_receiver: Option<[f64; 2]>,
}

impl ProtocolConfig {
    /// The entity a GPS receiver at `peer` reports as.
    fn nmea_mapping(&self, peer: &Peer) -> rampart_codec_nmea::SourceMapping {
        // A file replay has no address: it matches `peer = "file"`.
        let ip = Some(
            peer.addr
                .map_or_else(|| "file".to_string(), |a| a.ip().to_string()),
        );
        let full = peer.addr.map(|a| a.to_string());
        let found = self
            .nmea_source
            .iter()
            .find(|s| Some(&s.peer) == full.as_ref() || Some(&s.peer) == ip.as_ref());
        match found {
            Some(s) => rampart_codec_nmea::SourceMapping {
                uid: Uid::from(s.uid.as_str()),
                cot_type: Text::from(s.cot_type.as_str()),
                callsign: s.callsign.as_deref().map(Text::from),
            },
            None => {
                let uid = format!("nmea-{}", ip.as_deref().unwrap_or("file"));
                rampart_codec_nmea::SourceMapping {
                    callsign: Some(Text::from(uid.as_str())),
                    uid: Uid::from(uid.as_str()),
                    cot_type: Text::const_new("a-u-G"),
                }
            }
        }
    }

    /// A factory of per-source decoders for `protocol`.
    pub fn factory(&self, protocol: Protocol) -> DecoderFactory {
        let cfg = self.clone();
        match protocol {
            Protocol::Nmea => Arc::new(move |peer: &Peer| {
                Box::new(nmea::NmeaDecoder::new(
                    cfg.nmea_mapping(peer),
                    rampart_codec_nmea::GpsSourceConfig::default(),
                )) as Box<dyn FeedDecoder>
            }),
            Protocol::Ais => Arc::new(move |_: &Peer| {
                let mut c = rampart_codec_ais::TrackerConfig::default();
                if let Some(a) = cfg.ais_affiliation {
                    c.affiliation = a;
                }
                Box::new(nmea::AisDecoder::new(c)) as Box<dyn FeedDecoder>
            }),
            Protocol::Sbs | Protocol::Avr => Arc::new(move |_: &Peer| {
                let mut c = rampart_codec_adsb::TrackerConfig::default();
                if let Some(t) = &cfg.adsb_cot_type {
                    c.cot_type = Text::from(t.as_str());
                }
                if let Some([lat, lon]) = cfg.adsb_receiver {
                    c.receiver = Some((lat, lon));
                }
                let format = if protocol == Protocol::Sbs {
                    adsb::AdsbFormat::Sbs
                } else {
                    adsb::AdsbFormat::Avr
                };
                Box::new(adsb::AdsbDecoder::new(format, c)) as Box<dyn FeedDecoder>
            }),
        }
    }
}
