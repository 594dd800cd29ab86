//! # rampart-codec-cot
//!
//! Cursor-on-Target (CoT) and the TAK protocol, as pure functions and sans-IO state machines.
//! It owns:
//!
//! - [`CotEvent`]: every attribute of CoT 2.0 `event`/`point`, the well-known `detail`
//!   elements as typed fields, and all other detail XML kept verbatim;
//! - [`parse_xml`] / [`encode_xml`]: CoT XML ⇄ [`CotEvent`], bounded by [`CotLimits`];
//! - [`XmlStreamSplitter`]: TAK streaming XML (concatenated `<event>` documents) → frames;
//! - [`proto`] and [`tak`]: TAK protocol version 1 (protobuf) messages, the stream and mesh
//!   framings, the [`ProtoStreamSplitter`], and the lossless [`CotEvent`] ⇄ `TakMessage`
//!   conversion;
//! - [`report`]: [`CotEvent`] ⇄ the model's `Report`/`Entity`;
//! - [`control`]: the protocol negotiation (`t-x-takp-*`) and ping (`t-x-c-t`) events;
//! - [`sidc`]: CoT type → MIL-STD-2525C symbol code for every atom type.
//!
//! Nothing here does I/O or spawns threads, so every entry point can be fuzzed directly.

mod error;
mod event;
mod split;
mod xml;

pub mod control;
pub mod proto;
pub mod report;
pub mod sidc;
pub mod tak;

pub use error::CotError;
pub use event::{
    Attr, Chat, ChatGroup, Contact, CotEvent, Detail, Emergency, Extra, Group, Link, Point,
    PrecisionLocation, Remarks, Status, Takv, Track, UNKNOWN_VALUE, UNKNOWN_VALUE_SHORT, UidDetail,
    is_unknown_value,
};
pub use split::{SplitError, XmlStreamSplitter};
pub use tak::{
    ProtoError, ProtoStreamSplitter, decode_mesh, decode_payload, encode_mesh, encode_stream,
};
pub use xml::encode::{EncodeOptions, encode_xml, encode_xml_with, write_xml};
pub use xml::parse::parse_xml;

/// Bounds on one event. Each is a named, configurable limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CotLimits {
    /// Largest event in bytes (XML document, protobuf payload, or stream frame).
    pub max_event_bytes: usize,
    /// Deepest element nesting, counting `<event>` as level 1.
    pub max_depth: usize,
    /// Most elements inside `<detail>`, at any depth (a freehand shape has one `link` per vertex).
    pub max_detail_elements: usize,
}

impl CotLimits {
    /// 64 KiB: the frame cap ATAK applies to TAK protocol messages.
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
    /// Real detail trees are at most 6 levels deep; 32 leaves ample room.
    pub const DEFAULT_MAX_DEPTH: usize = 32;
    /// A 64 KiB event holds at most about 2000 `<link point=…/>` elements.
    pub const DEFAULT_MAX_DETAIL_ELEMENTS: usize = 4096;
}

impl Default for CotLimits {
    fn default() -> Self {
        CotLimits {
            max_event_bytes: Self::DEFAULT_MAX_EVENT_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_detail_elements: Self::DEFAULT_MAX_DETAIL_ELEMENTS,
        }
    }
}
