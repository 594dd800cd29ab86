//! Which authenticated TAK identity a CoT uid belongs to.
//!
//! A `cot-tls` client with a certificate is its subject CN. The first position report
//! (`a-…` with a `<contact>`) it sends for a uid binds that uid to its CN; from then on only
//! that CN may send events with that uid. Anyone else (another CN, or an unauthenticated
//! client on `cot-tcp` or `cot-tls` without a certificate) is refused for that uid: the event
//! is neither routed nor folded, and it is counted. A uid nobody has bound stays open to all,
//! as on any TAK server, so markers, chat and sensors keep working.
//!
//! The map is bounded by `max_bound_uids`; when it is full, new uids are not bound (and that
//! is counted), while existing bindings keep protecting their uids. Bindings live as long as
//! the process: a certificate's uids stay its own across reconnects.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// What [`UidOwners::check`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The sender may use the uid.
    Allowed,
    /// The uid is bound to another identity (named here, for the log).
    Foreign(Arc<str>),
}

/// uid → owning identity, bounded.
#[derive(Debug)]
pub struct UidOwners {
    max: usize,
    map: Mutex<HashMap<Arc<str>, Arc<str>>>,
}

impl UidOwners {
    /// An empty table holding at most `max` bindings.
    pub fn new(max: usize) -> Self {
        UidOwners {
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// May `identity` (`None`: unauthenticated) send an event with `uid`? When `claim` is set
    /// (a position report of its own) and the uid is unbound, an authenticated sender binds
    /// it. Returns the verdict and whether the table was too full to bind.
    pub fn check(&self, uid: &str, identity: Option<&str>, claim: bool) -> (Verdict, bool) {
        let mut map = self.map.lock();
        match (map.get(uid), identity) {
            (Some(owner), Some(me)) if **owner == *me => (Verdict::Allowed, false),
            (Some(owner), _) => (Verdict::Foreign(owner.clone()), false),
            (None, Some(me)) if claim => {
                if map.len() >= self.max {
                    return (Verdict::Allowed, true);
                }
                map.insert(Arc::from(uid), Arc::from(me));
                (Verdict::Allowed, false)
            }
            (None, _) => (Verdict::Allowed, false),
        }
    }

    /// Bound uids.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_authenticated_position_report_binds_the_uid() {
        let o = UidOwners::new(10);
        assert_eq!(
            o.check("ANDROID-1", Some("alice"), true).0,
            Verdict::Allowed
        );
        assert_eq!(
            o.check("ANDROID-1", Some("alice"), true).0,
            Verdict::Allowed
        );
        assert_eq!(
            o.check("ANDROID-1", Some("mallory"), true).0,
            Verdict::Foreign(Arc::from("alice"))
        );
        assert_eq!(
            o.check("ANDROID-1", None, false).0,
            Verdict::Foreign(Arc::from("alice")),
            "an unauthenticated client may not use a bound uid"
        );
        // Unbound uids stay open; an unauthenticated sender or a non-claim never binds.
        assert_eq!(o.check("marker-7", None, true).0, Verdict::Allowed);
        assert_eq!(o.check("marker-7", Some("bob"), false).0, Verdict::Allowed);
        assert_eq!(
            o.check("marker-7", Some("carol"), false).0,
            Verdict::Allowed
        );
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn a_full_table_binds_nothing_new_but_keeps_its_bindings() {
        let o = UidOwners::new(1);
        assert_eq!(o.check("a", Some("alice"), true), (Verdict::Allowed, false));
        assert_eq!(o.check("b", Some("bob"), true), (Verdict::Allowed, true));
        assert_eq!(o.check("b", Some("carol"), true).0, Verdict::Allowed);
        assert!(matches!(
            o.check("a", Some("bob"), true).0,
            Verdict::Foreign(_)
        ));
    }
}
