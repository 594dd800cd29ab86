//! Security markings as data: which session may receive which message.
//!
//! The embedder (the MQTT edge) resolves its security labels to numbers before they reach
//! the broker, so the core stays pure and knows nothing of level names:
//!
//! - a [`Marking`] on an injected message: the rank of its classification and the
//!   releasability groups of which a receiver must hold at least one (none: no restriction);
//! - a [`Clearance`] on a session: the highest rank it may see and the groups it holds,
//!   given by [`crate::Authorizer::clearance`] at CONNECT.
//!
//! Unmarked messages (everything clients publish) reach every subscriber, and a session
//! without a clearance is unrestricted, so application traffic pays one `Option` test.
//! The broker checks markings wherever a message reaches a session: live routing (plain and
//! shared subscriptions), retained messages on SUBSCRIBE, queued and inflight messages of a
//! persistent session when they are sent (its clearance may have changed on reconnect).

use serde::{Deserialize, Serialize};

/// The sensitivity of a message. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Marking {
    /// Rank of the classification (0 = lowest). An unknown classification should be
    /// marked `u32::MAX`: no clearance reaches it.
    pub rank: u32,
    /// Releasability groups: a receiver must hold at least one. Empty: no restriction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Box<str>>,
}

/// What a session may receive. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Clearance {
    /// Highest rank it may see.
    pub rank: u32,
    /// Releasability groups it holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Box<str>>,
}

impl Clearance {
    /// Whether this clearance may receive a message marked `m`.
    pub fn permits(&self, m: &Marking) -> bool {
        m.rank <= self.rank
            && (m.groups.is_empty() || m.groups.iter().any(|g| self.groups.contains(g)))
    }
}

/// Whether a session with `clearance` (`None`: unrestricted) may receive a message marked
/// `marking` (`None`: unmarked).
pub fn permits(clearance: Option<&Clearance>, marking: Option<&Marking>) -> bool {
    match (clearance, marking) {
        (Some(c), Some(m)) => c.permits(m),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rank: u32, groups: &[&str]) -> Marking {
        Marking {
            rank,
            groups: groups.iter().map(|g| Box::from(*g)).collect(),
        }
    }

    fn c(rank: u32, groups: &[&str]) -> Clearance {
        Clearance {
            rank,
            groups: groups.iter().map(|g| Box::from(*g)).collect(),
        }
    }

    #[test]
    fn rank_and_one_shared_group_decide() {
        let secret_nato = c(3, &["NATO"]);
        let conf = c(2, &[]);
        assert!(permits(Some(&secret_nato), Some(&m(3, &["NATO", "FVEY"]))));
        assert!(permits(Some(&secret_nato), Some(&m(0, &[]))));
        assert!(!permits(Some(&secret_nato), Some(&m(3, &["FVEY"]))));
        assert!(!permits(Some(&conf), Some(&m(3, &[]))));
        assert!(permits(Some(&conf), Some(&m(2, &[]))));
        assert!(!permits(
            Some(&c(u32::MAX - 1, &["NATO"])),
            Some(&m(u32::MAX, &[]))
        ));
        assert!(permits(None, Some(&m(u32::MAX, &["X"]))), "unrestricted");
        assert!(permits(Some(&conf), None), "unmarked");
    }
}
