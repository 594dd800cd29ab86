//! Security labels: a classification level plus releasability groups.
//!
//! The label travels with every report and entity from day one. Enforcement (comparing a label
//! with an identity's clearance) belongs to the security layer; this module only carries it.

use serde::{Deserialize, Serialize};

use crate::Text;

/// A security label: classification level name plus the groups it is releasable to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Classification level name, e.g. `UNCLASSIFIED` or `SECRET`. Levels are ordered by configuration.
    pub classification: Text,
    /// Releasability groups, e.g. `["NATO", "FVEY"]`; empty means no releasability restriction.
    #[serde(default)]
    pub releasability: Vec<Text>,
}

impl Label {
    /// The default label of a source with none configured.
    pub const DEFAULT_CLASSIFICATION: &'static str = "UNCLASSIFIED";

    /// `UNCLASSIFIED` with no releasability groups.
    pub fn unclassified() -> Self {
        Label {
            classification: Text::const_new(Self::DEFAULT_CLASSIFICATION),
            releasability: Vec::new(),
        }
    }
}

impl Default for Label {
    fn default() -> Self {
        Self::unclassified()
    }
}
