//! TAK protocol version 1 messages, as hand-written `prost` structs (no `protoc` at build time).
//!
//! Message names, field names, numbers and types follow the public TAK protocol definitions
//! (package `atakmap.commoncommo.protobuf.v1`); `proto/takproto.proto` in this crate restates
//! them as documentation. They were checked field by field against the descriptors compiled
//! into `takproto` 3.0.1 (the Python package pytak uses) and against the TAK protocol
//! description `protocol.txt` of ATAK-CIV (commoncommo/core/impl/protobuf). TAK Server adds
//! `TakMessage.submissionTime/creationTime` (3, 4) and `CotEvent.caveat/releaseableTo` (16, 17);
//! they are included so relayed messages keep them. Receivers that do not know them skip them,
//! as protobuf requires.
//!
//! proto3 semantics: a scalar equal to its default (0, "", 0.0) is not written on the wire,
//! and a reader cannot tell it from an absent field.

/// The payload of every TAK protocol v1 frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TakMessage {
    /// Protocol version support of the sender (mesh networks) or a contact uid.
    #[prost(message, optional, tag = "1")]
    pub tak_control: Option<TakControl>,
    /// The event.
    #[prost(message, optional, tag = "2")]
    pub cot_event: Option<CotEvent>,
    /// TAK Server extension: when the server received the message, ms since the epoch.
    #[prost(uint64, tag = "3")]
    pub submission_time: u64,
    /// TAK Server extension: when the message was created, ms since the epoch.
    #[prost(uint64, tag = "4")]
    pub creation_time: u64,
}

/// Which TAK protocol versions the sender can decode.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TakControl {
    /// Lowest supported version (0 is read as 1).
    #[prost(uint32, tag = "1")]
    pub min_proto_version: u32,
    /// Highest supported version (0 is read as 1).
    #[prost(uint32, tag = "2")]
    pub max_proto_version: u32,
    /// Uid of the sending contact, when sent without an event.
    #[prost(string, tag = "3")]
    pub contact_uid: String,
}

/// A CoT event: the `event` and `point` attributes, times in ms since the epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CotEvent {
    /// `event@type`.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// `event@access`.
    #[prost(string, tag = "2")]
    pub access: String,
    /// `event@qos`.
    #[prost(string, tag = "3")]
    pub qos: String,
    /// `event@opex`.
    #[prost(string, tag = "4")]
    pub opex: String,
    /// `event@uid`.
    #[prost(string, tag = "5")]
    pub uid: String,
    /// `event@time`, ms since the epoch.
    #[prost(uint64, tag = "6")]
    pub send_time: u64,
    /// `event@start`, ms since the epoch.
    #[prost(uint64, tag = "7")]
    pub start_time: u64,
    /// `event@stale`, ms since the epoch.
    #[prost(uint64, tag = "8")]
    pub stale_time: u64,
    /// `event@how`.
    #[prost(string, tag = "9")]
    pub how: String,
    /// `point@lat`.
    #[prost(double, tag = "10")]
    pub lat: f64,
    /// `point@lon`.
    #[prost(double, tag = "11")]
    pub lon: f64,
    /// `point@hae`.
    #[prost(double, tag = "12")]
    pub hae: f64,
    /// `point@ce`.
    #[prost(double, tag = "13")]
    pub ce: f64,
    /// `point@le`.
    #[prost(double, tag = "14")]
    pub le: f64,
    /// The detail.
    #[prost(message, optional, tag = "15")]
    pub detail: Option<Detail>,
    /// TAK Server extension: `event@caveat`.
    #[prost(string, tag = "16")]
    pub caveat: String,
    /// TAK Server extension: `event@releasableTo` (the field name is spelt `releaseableTo`).
    #[prost(string, tag = "17")]
    pub releaseable_to: String,
}

/// The detail: typed sub-messages for six common elements, the rest as XML.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Detail {
    /// Every detail child not carried by a sub-message below, as XML without a wrapper.
    #[prost(string, tag = "1")]
    pub xml_detail: String,
    /// `<contact>`.
    #[prost(message, optional, tag = "2")]
    pub contact: Option<Contact>,
    /// `<__group>`.
    #[prost(message, optional, tag = "3")]
    pub group: Option<Group>,
    /// `<precisionlocation>`.
    #[prost(message, optional, tag = "4")]
    pub precision_location: Option<PrecisionLocation>,
    /// `<status>`.
    #[prost(message, optional, tag = "5")]
    pub status: Option<Status>,
    /// `<takv>`.
    #[prost(message, optional, tag = "6")]
    pub takv: Option<Takv>,
    /// `<track>`.
    #[prost(message, optional, tag = "7")]
    pub track: Option<Track>,
}

/// `<contact endpoint callsign/>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Contact {
    /// `endpoint`; empty when absent.
    #[prost(string, tag = "1")]
    pub endpoint: String,
    /// `callsign`.
    #[prost(string, tag = "2")]
    pub callsign: String,
}

/// `<__group name role/>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Group {
    /// `name`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `role`.
    #[prost(string, tag = "2")]
    pub role: String,
}

/// `<precisionlocation geopointsrc altsrc/>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PrecisionLocation {
    /// `geopointsrc`.
    #[prost(string, tag = "1")]
    pub geopointsrc: String,
    /// `altsrc`.
    #[prost(string, tag = "2")]
    pub altsrc: String,
}

/// `<status battery/>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// `battery`.
    #[prost(uint32, tag = "1")]
    pub battery: u32,
}

/// `<takv device platform os version/>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Takv {
    /// `device`.
    #[prost(string, tag = "1")]
    pub device: String,
    /// `platform`.
    #[prost(string, tag = "2")]
    pub platform: String,
    /// `os`.
    #[prost(string, tag = "3")]
    pub os: String,
    /// `version`.
    #[prost(string, tag = "4")]
    pub version: String,
}

/// `<track speed course/>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Track {
    /// `speed`, metres per second.
    #[prost(double, tag = "1")]
    pub speed: f64,
    /// `course`, degrees true.
    #[prost(double, tag = "2")]
    pub course: f64,
}
