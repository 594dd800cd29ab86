//! # rampart-model
//!
//! The pure data model every other Rampart crate speaks. It owns:
//!
//! - [`Report`]: one observation of an entity, as decoded by any source codec;
//! - [`Entity`]: the folded, current state of one tracked thing in the live picture;
//! - [`Label`]: the security label (classification plus releasability) that travels with both;
//! - [`Timestamp`]: milliseconds since the Unix epoch, with RFC 3339 text form;
//! - [`sidc`]: the mapping from a Cursor-on-Target type to a MIL-STD-2525 symbol code;
//! - [`Limits`] and [`FieldError`]: the validation every report passes before it is accepted.
//!
//! Nothing here does I/O, so every function can be unit tested and fuzzed.

mod attrs;
mod entity;
mod label;
mod limits;
mod report;
pub mod sidc;
mod time;

pub use attrs::{AttrValue, Attributes};
pub use entity::{Entity, EntityState};
pub use label::Label;
pub use limits::{FieldError, Limits};
pub use report::{Defaults, Provenance, Report, ReportId};
pub use time::{Timestamp, TimestampError};

/// A stable entity identifier. Short uids (up to 24 bytes) are stored inline without allocation.
pub type Uid = compact_str::CompactString;

/// A short owned string, stored inline up to 24 bytes.
pub type Text = compact_str::CompactString;
