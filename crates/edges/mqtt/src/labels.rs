//! Security labels on the MQTT read paths: the node's label policy turned into the broker
//! core's data ([`Marking`] on entity and alert publishes, [`Clearance`] on sessions and
//! bridges).
//!
//! - A session's clearance is its device's registered clearance (device identified by
//!   token or certificate subject), or the policy's anonymous clearance; unrestricted when
//!   labels are not enforced. The broker asks for it at every CONNECT.
//! - Entity updates carry the entity's label, alerts the alert's label. Application topics
//!   published by clients carry none and are unaffected.
//! - Ranks are positions in the configured level list, so persisted sessions record the
//!   list they were taken under ([`scale`]); a different list at restart drops every marked
//!   message rather than reinterpret its rank.

use rampart_labels::{ClearanceSpec, Policy};
use rampart_model::Label;
use rampart_mqtt_broker::{Clearance, Marking};

/// The broker clearance of an identity whose registered clearance is `spec` (`None`:
/// anonymous). `None` means unrestricted.
pub(crate) fn clearance(policy: &Policy, spec: Option<&ClearanceSpec>) -> Option<Clearance> {
    from_resolved(&policy.clearance_of(spec))
}

/// The broker form of a resolved clearance (`None`: unrestricted).
pub(crate) fn from_resolved(c: &rampart_labels::Clearance) -> Option<Clearance> {
    if c.is_unrestricted() {
        return None;
    }
    Some(Clearance {
        rank: u32::try_from(c.rank()).unwrap_or(u32::MAX - 1),
        groups: c.groups().map(|g| Box::from(&**g)).collect(),
    })
}

/// The marking of data labelled `label`. An unknown classification gets `u32::MAX`, which
/// no clearance reaches (fail closed, as [`rampart_labels::Levels::permits`]).
pub(crate) fn marking(policy: &Policy, label: &Label) -> Marking {
    let rank = policy
        .levels
        .rank(&label.classification)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(u32::MAX);
    Marking {
        rank,
        groups: label
            .releasability
            .iter()
            .map(|g| Box::from(&**g))
            .collect(),
    }
}

/// What the ranks of markings refer to: the level list, for session snapshots.
pub(crate) fn scale(policy: &Policy) -> String {
    policy
        .levels
        .names()
        .iter()
        .map(|n| &**n)
        .collect::<Vec<_>>()
        .join(" < ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rampart_labels::LabelsConfig;

    fn label(c: &str, rel: &[&str]) -> Label {
        Label {
            classification: c.into(),
            releasability: rel.iter().map(|g| (*g).into()).collect(),
        }
    }

    /// The broker's check agrees with the labels crate's for every pair.
    #[test]
    fn broker_check_agrees_with_the_policy() {
        let p = Policy::new(&LabelsConfig::default(), true, Label::unclassified()).unwrap();
        let specs = [
            None,
            Some(ClearanceSpec::default()),
            Some(ClearanceSpec {
                level: Some("CONFIDENTIAL".into()),
                groups: vec![],
            }),
            Some(ClearanceSpec {
                level: Some("SECRET".into()),
                groups: vec!["NATO".into()],
            }),
            Some(ClearanceSpec {
                level: Some("TOP SECRET".into()),
                groups: vec!["FVEY".into(), "NATO".into()],
            }),
        ];
        let labels = [
            label("UNCLASSIFIED", &[]),
            label("CONFIDENTIAL", &[]),
            label("SECRET", &["NATO"]),
            label("SECRET", &["FVEY"]),
            label("TOP SECRET", &["NATO", "FVEY"]),
            label("SECERT", &[]),
        ];
        for spec in &specs {
            let resolved = p.clearance_of(spec.as_ref());
            let c = clearance(&p, spec.as_ref());
            for l in &labels {
                let m = marking(&p, l);
                assert_eq!(
                    rampart_mqtt_broker::marking::permits(c.as_ref(), Some(&m)),
                    p.permits(&resolved, l),
                    "{spec:?} {l:?}"
                );
            }
        }
        let open = Policy::open();
        assert!(clearance(&open, None).is_none(), "open node: unrestricted");
        assert_eq!(
            scale(&p),
            "UNCLASSIFIED < RESTRICTED < CONFIDENTIAL < SECRET < TOP SECRET"
        );
    }
}
