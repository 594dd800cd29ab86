//! # rampart-codec-json
//!
//! The JSON shape of a report, used wherever reports travel as JSON (HTTP now, MQTT and
//! federation later), and the GeoJSON shape of entities and tracks. It owns:
//!
//! - [`decode_reports`]: a body of reports → one `Result` per item, so one bad item never
//!   spoils the others, and every error names the field at fault;
//! - [`encode_report`]: a report → the same flat JSON object;
//! - [`EntityFeature`], [`ReportFeature`] and the `write_*` helpers: GeoJSON output.
//!
//! Pure functions only, so the decoder can be fuzzed directly.

mod decode;
mod encode;

pub use decode::{BodyError, DecodeOptions, ItemError, decode_reports};
pub use encode::{
    EntityFeature, ReportFeature, encode_report, write_entity_collection, write_track_collection,
};
