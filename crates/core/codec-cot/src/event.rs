//! The CoT event as data: every attribute of the CoT 2.0 `event` and `point` elements, the
//! well-known `detail` elements as typed fields, and everything else kept verbatim.
//!
//! This module owns the shapes only. Parsing lives in `xml::parse`, writing in `xml::encode`,
//! protobuf conversion in `tak`. The invariant the codecs keep is:
//! `parse(encode(e)) == e` for every event `e` the parser produced, and
//! `from_proto(to_proto(e)) == e` for every event whose optional texts are non-empty.

use rampart_model::{Text, Timestamp};

/// The value CoT uses for an unknown `hae`, `ce` or `le` (9 999 999).
pub const UNKNOWN_VALUE: f64 = 9_999_999.0;

/// The shorter "unknown" some TAK software writes (999 999, e.g. in protocol control events).
pub const UNKNOWN_VALUE_SHORT: f64 = 999_999.0;

/// True when `v` is one of CoT's "unknown" markers for `hae`, `ce` or `le`.
pub fn is_unknown_value(v: f64) -> bool {
    v == UNKNOWN_VALUE || v == UNKNOWN_VALUE_SHORT
}

/// One XML attribute the codec does not model: its qualified name and its unescaped value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Qualified name as written, e.g. `phone` or `xmlns:foo`.
    pub name: Text,
    /// Value with XML escapes resolved.
    pub value: String,
}

impl Attr {
    /// Builds an attribute.
    pub fn new(name: &str, value: &str) -> Self {
        Attr {
            name: Text::from(name),
            value: value.to_owned(),
        }
    }
}

/// What a typed detail element carried beyond its modelled attributes, so it is re-emitted
/// unchanged: other attributes (in document order) and its child content, verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Extra {
    /// Attributes the typed struct has no field for (or whose value did not parse).
    pub attrs: Vec<Attr>,
    /// Child content, verbatim XML; empty when the element had none (or only whitespace).
    pub children: String,
}

impl Extra {
    /// True when nothing beyond the typed fields was present.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.children.is_empty()
    }

    /// The value of the unmodelled attribute `name`, if present (e.g. `phone` on `contact`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

/// The `<point>` element. Values are kept raw: 9999999 stays 9999999 here.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// WGS-84 latitude in degrees.
    pub lat: f64,
    /// WGS-84 longitude in degrees.
    pub lon: f64,
    /// Height above ellipsoid in metres; [`UNKNOWN_VALUE`] when unknown.
    pub hae: f64,
    /// Circular error in metres; [`UNKNOWN_VALUE`] when unknown.
    pub ce: f64,
    /// Linear error in metres; [`UNKNOWN_VALUE`] when unknown.
    pub le: f64,
    /// Attributes of `<point>` other than the five above.
    pub extra_attrs: Vec<Attr>,
}

impl Default for Point {
    fn default() -> Self {
        Point {
            lat: 0.0,
            lon: 0.0,
            hae: UNKNOWN_VALUE,
            ce: UNKNOWN_VALUE,
            le: UNKNOWN_VALUE,
            extra_attrs: Vec::new(),
        }
    }
}

/// `<contact callsign endpoint …/>`: who the event is about and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Contact {
    /// Display name.
    pub callsign: Option<Text>,
    /// `host:port:proto`, e.g. `*:-1:stcp` for a streaming client.
    pub endpoint: Option<Text>,
    /// Other attributes (`phone`, `emailAddress`, `xmppUsername`, …) and children.
    pub extra: Extra,
}

/// `<__group name role/>`: the team colour and role of a TAK user.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Group {
    /// Team, e.g. `Cyan`.
    pub name: Option<Text>,
    /// Role, e.g. `Team Member`.
    pub role: Option<Text>,
    /// Anything else.
    pub extra: Extra,
}

/// `<takv device platform os version/>`: the sending software.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Takv {
    /// Device model.
    pub device: Option<Text>,
    /// Software, e.g. `ATAK-CIV`.
    pub platform: Option<Text>,
    /// Operating system version.
    pub os: Option<Text>,
    /// Software version.
    pub version: Option<Text>,
    /// Anything else.
    pub extra: Extra,
}

/// `<status battery/>`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// Battery percentage. A value that is not an unsigned integer stays in `extra.attrs`.
    pub battery: Option<u32>,
    /// Anything else (e.g. `readiness`).
    pub extra: Extra,
}

/// `<track course speed/>`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Track {
    /// Course in degrees true. A value that is not a finite number stays in `extra.attrs`.
    pub course: Option<f64>,
    /// Speed in metres per second. A value that is not a finite number stays in `extra.attrs`.
    pub speed: Option<f64>,
    /// Anything else (e.g. `slope`).
    pub extra: Extra,
}

/// `<precisionlocation geopointsrc altsrc/>`: where the position came from.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PrecisionLocation {
    /// Source of the horizontal position, e.g. `GPS` or `USER`.
    pub geopointsrc: Option<Text>,
    /// Source of the altitude, e.g. `GPS` or `DTED0`.
    pub altsrc: Option<Text>,
    /// Anything else.
    pub extra: Extra,
}

/// `<uid Droid/>`: the device's own name for itself.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UidDetail {
    /// The `Droid` attribute.
    pub droid: Option<Text>,
    /// Anything else.
    pub extra: Extra,
}

/// `<link …/>`: a relation to another event (parent of a marker, a shape's vertex, a route point).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Link {
    /// Uid of the linked event.
    pub uid: Option<Text>,
    /// CoT type of the linked event (`type` attribute).
    pub cot_type: Option<Text>,
    /// Relation, e.g. `p-p` (parent, producer).
    pub relation: Option<Text>,
    /// Callsign of the parent (`parent_callsign`).
    pub parent_callsign: Option<Text>,
    /// When the link was produced (`production_time`), kept as written.
    pub production_time: Option<Text>,
    /// `lat,lon[,hae]` of a shape vertex (`point`), kept as written.
    pub point: Option<Text>,
    /// Anything else.
    pub extra: Extra,
}

/// `<chatgrp uid0 uid1 id/>` inside `__chat`: the chat's participants.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChatGroup {
    /// First participant (the sender).
    pub uid0: Option<Text>,
    /// Second participant or room.
    pub uid1: Option<Text>,
    /// Chat room id.
    pub id: Option<Text>,
    /// Further participants (`uid2`, …) and anything else.
    pub extra: Extra,
}

/// `<__chat …>`: GeoChat metadata of a `b-t-f` message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Chat {
    /// Conversation id.
    pub id: Option<Text>,
    /// Room name, e.g. `All Chat Rooms`.
    pub chatroom: Option<Text>,
    /// Sender's callsign (`senderCallsign`).
    pub sender_callsign: Option<Text>,
    /// `groupOwner`.
    pub group_owner: Option<Text>,
    /// `messageId`.
    pub message_id: Option<Text>,
    /// `parent`, e.g. `RootContactGroup`.
    pub parent: Option<Text>,
    /// The first `<chatgrp/>` child.
    pub chat_group: Option<ChatGroup>,
    /// Other attributes and other children (e.g. `hierarchy`), verbatim.
    pub extra: Extra,
}

/// `<remarks source to time>text</remarks>`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Remarks {
    /// The text, unescaped, whitespace kept.
    pub text: String,
    /// `source`, e.g. `BAO.F.ATAK.<uid>`.
    pub source: Option<Text>,
    /// `to`: recipient (room or uid).
    pub to: Option<Text>,
    /// `time`, kept as written.
    pub time: Option<Text>,
    /// Other attributes (remarks never keep child elements: those make it an unknown element).
    pub extra: Extra,
}

/// `<emergency type cancel>callsign</emergency>` of a `b-a-…` alert.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Emergency {
    /// `type`, e.g. `911 Alert`, `Ring The Bell`, `Troops In Contact`.
    pub emergency_type: Option<Text>,
    /// `cancel`, `true` when the alert is cancelled.
    pub cancel: Option<Text>,
    /// The text (ATAK puts the callsign there).
    pub text: String,
    /// Other attributes.
    pub extra: Extra,
}

/// The `<detail>` element: typed well-known children, then everything else verbatim.
///
/// Each typed slot holds the first occurrence; a repeated element (other than `link`) is
/// kept verbatim in [`Detail::unknown`] so nothing is lost.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Detail {
    /// `<contact>`.
    pub contact: Option<Contact>,
    /// `<__group>`.
    pub group: Option<Group>,
    /// `<takv>`.
    pub takv: Option<Takv>,
    /// `<status>`.
    pub status: Option<Status>,
    /// `<track>`.
    pub track: Option<Track>,
    /// `<precisionlocation>`.
    pub precision_location: Option<PrecisionLocation>,
    /// `<uid Droid/>`.
    pub uid: Option<UidDetail>,
    /// `<__chat>`.
    pub chat: Option<Chat>,
    /// Every `<link>`, in document order.
    pub links: Vec<Link>,
    /// `<remarks>`.
    pub remarks: Option<Remarks>,
    /// `<emergency>`.
    pub emergency: Option<Emergency>,
    /// Every other child element, each verbatim (`<usericon …/>`, `<color …/>`, `<TakControl>…`).
    pub unknown: Vec<String>,
}

impl Detail {
    /// True when the detail holds nothing (it is then not written at all).
    pub fn is_empty(&self) -> bool {
        self.contact.is_none()
            && self.group.is_none()
            && self.takv.is_none()
            && self.status.is_none()
            && self.track.is_none()
            && self.precision_location.is_none()
            && self.uid.is_none()
            && self.chat.is_none()
            && self.links.is_empty()
            && self.remarks.is_none()
            && self.emergency.is_none()
            && self.unknown.is_empty()
    }
}

/// A Cursor-on-Target event: every attribute of `event` and `point`, and the detail.
///
/// Empty optional attributes (`how=""`) are treated as absent, because TAK's protobuf form
/// cannot tell the two apart and the round trip must be exact.
#[derive(Clone, Debug, PartialEq)]
pub struct CotEvent {
    /// Schema version, `2.0`.
    pub version: Text,
    /// Unique id of the thing reported.
    pub uid: Text,
    /// CoT type, e.g. `a-f-G-U-C`.
    pub cot_type: Text,
    /// How the position was obtained, e.g. `m-g`.
    pub how: Option<Text>,
    /// When the event was generated.
    pub time: Timestamp,
    /// Start of validity; absent in some senders' events.
    pub start: Option<Timestamp>,
    /// End of validity.
    pub stale: Timestamp,
    /// `access`.
    pub access: Option<Text>,
    /// `qos`.
    pub qos: Option<Text>,
    /// `opex`.
    pub opex: Option<Text>,
    /// `caveat` (TAK Server extension, protobuf field 16).
    pub caveat: Option<Text>,
    /// `releasableTo` (TAK Server extension, protobuf field 17 `releaseableTo`).
    pub releasable_to: Option<Text>,
    /// Other attributes of `<event>` (e.g. `xmlns`). Not carried by the protobuf form.
    pub extra_attrs: Vec<Attr>,
    /// The `<point>`.
    pub point: Point,
    /// The `<detail>`.
    pub detail: Detail,
    /// Children of `<event>` other than `point` and `detail`, verbatim. Not carried by the
    /// protobuf form.
    pub extra_children: String,
}

impl CotEvent {
    /// The schema version this codec writes.
    pub const VERSION: &'static str = "2.0";

    /// A minimal event: uid, type, times and position; everything else empty or unknown.
    pub fn new(uid: &str, cot_type: &str, time: Timestamp, stale: Timestamp) -> Self {
        CotEvent {
            version: Text::const_new(Self::VERSION),
            uid: Text::from(uid),
            cot_type: Text::from(cot_type),
            how: None,
            time,
            start: Some(time),
            stale,
            access: None,
            qos: None,
            opex: None,
            caveat: None,
            releasable_to: None,
            extra_attrs: Vec::new(),
            point: Point::default(),
            detail: Detail::default(),
            extra_children: String::new(),
        }
    }

    /// The contact callsign, if any.
    pub fn callsign(&self) -> Option<&str> {
        self.detail
            .contact
            .as_ref()
            .and_then(|c| c.callsign.as_deref())
    }
}
