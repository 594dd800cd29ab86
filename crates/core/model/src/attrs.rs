//! Free attributes: numeric and text values keyed by name (battery, fuel, engine temperature, …).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::Text;

/// One attribute value: a number or a short text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A numeric value such as a battery percentage.
    Num(f64),
    /// A text value such as a firmware version.
    Text(Text),
}

/// Named attributes, sorted by name so their encoding is deterministic.
pub type Attributes = BTreeMap<Text, AttrValue>;
