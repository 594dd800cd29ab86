//! Impossible kinematics: the speed a report implies from its entity's previous accepted
//! position, judged against the plausible maximum for the entity's CoT type, and the bounded
//! quarantine ring of the reports refused for it.

use std::collections::VecDeque;

use rampart_model::{Label, Text, Timestamp};
use serde::Serialize;

use crate::config::KinematicsConfig;
use crate::geo::distance_m;

/// One position fix: where an entity was (or claims to be), when, and how precisely.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix<'a> {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Observation time.
    pub time: Timestamp,
    /// Circular error in metres, if known.
    pub ce: Option<f64>,
    /// CoT type.
    pub cot_type: &'a str,
}

/// Why a movement is implausible.
#[derive(Clone, Debug, PartialEq)]
pub struct Implausible {
    /// Great-circle distance between the two fixes, metres.
    pub distance_m: f64,
    /// Time between them, milliseconds (absolute).
    pub dt_ms: i64,
    /// The speed the movement implies, km/h (over at least `min_dt_ms`).
    pub implied_kmh: f64,
    /// The limit applied, km/h (`None` for the absolute jump limit).
    pub max_kmh: Option<f64>,
    /// Text for the rejection and the alert.
    pub reason: String,
}

/// The speed limit of a CoT type in km/h, or `None` when the type is not checked (not an
/// atom). See [`KinematicsConfig::max_speed_kmh`].
pub fn max_speed_kmh(cfg: &KinematicsConfig, cot_type: &str) -> Option<f64> {
    let mut parts = cot_type.splitn(3, '-');
    if parts.next() != Some("a") {
        return None;
    }
    let _affiliation = parts.next();
    let dim = parts.next().unwrap_or("");
    let mut best: Option<(usize, f64)> = None;
    for (key, &v) in &cfg.max_speed_kmh {
        let matches = dim == key
            || (dim.len() > key.len()
                && dim.starts_with(key.as_str())
                && dim.as_bytes().get(key.len()) == Some(&b'-'));
        if matches && best.is_none_or(|(len, _)| key.len() > len) {
            best = Some((key.len(), v));
        }
    }
    Some(best.map_or(cfg.other_max_kmh, |(_, v)| v))
}

/// Judges the movement from `prev` (the entity's previous accepted fix) to `new` (a report).
/// Returns why it is implausible, or `None` when it is plausible or not checked.
pub fn judge(cfg: &KinematicsConfig, prev: &Fix<'_>, new: &Fix<'_>) -> Option<Implausible> {
    // The stricter of the two types: changing type does not buy speed.
    let max_kmh = match (
        max_speed_kmh(cfg, prev.cot_type),
        max_speed_kmh(cfg, new.cot_type),
    ) {
        (None, None) => return None,
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) => a.min(b),
    };
    let distance = distance_m(prev.lat, prev.lon, new.lat, new.lon);
    if !distance.is_finite() {
        return None;
    }
    let dt_ms = new.time.millis().saturating_sub(prev.time.millis()).abs();
    let dt_s = dt_ms.max(cfg.min_dt_ms) as f64 / 1000.0;
    let implied_kmh = distance / dt_s * 3.6;
    if dt_ms <= cfg.max_jump_window_ms && distance > cfg.max_jump_m {
        return Some(Implausible {
            distance_m: distance,
            dt_ms,
            implied_kmh,
            max_kmh: None,
            reason: format!(
                "jump of {:.1} km in {:.3} s (at most {:.1} km within {:.3} s)",
                distance / 1000.0,
                dt_ms as f64 / 1000.0,
                cfg.max_jump_m / 1000.0,
                cfg.max_jump_window_ms as f64 / 1000.0
            ),
        });
    }
    // GPS noise: the first metres of any movement are free.
    let ce = |c: Option<f64>| c.filter(|c| c.is_finite() && *c > 0.0).unwrap_or(0.0);
    let ce_slack = (cfg.ce_factor * (ce(prev.ce) + ce(new.ce))).min(cfg.max_ce_slack_m);
    let slack = cfg.min_distance_m.max(ce_slack);
    let excess = distance - slack;
    if excess <= 0.0 {
        return None;
    }
    let excess_kmh = excess / dt_s * 3.6;
    if excess_kmh <= max_kmh {
        return None;
    }
    Some(Implausible {
        distance_m: distance,
        dt_ms,
        implied_kmh,
        max_kmh: Some(max_kmh),
        reason: format!(
            "implies {implied_kmh:.0} km/h ({:.2} km in {:.1} s) for type {}; at most {max_kmh:.0} km/h is plausible",
            distance / 1000.0,
            dt_ms as f64 / 1000.0,
            new.cot_type
        ),
    })
}

/// The accepted state a quarantined report was judged against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Previous {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Observation time.
    pub time: Timestamp,
    /// CoT type.
    pub cot_type: Text,
    /// The entity's label.
    pub label: Label,
}

/// A report refused for impossible kinematics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quarantined {
    /// Server time it was refused.
    pub quarantined_at: Timestamp,
    /// Entity uid.
    pub uid: Text,
    /// The report's CoT type (or its entity's, when the report gave none).
    pub cot_type: Text,
    /// The report's callsign, or the entity's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callsign: Option<Text>,
    /// Claimed latitude.
    pub lat: f64,
    /// Claimed longitude.
    pub lon: f64,
    /// Claimed observation time.
    pub time: Timestamp,
    /// Claimed circular error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce: Option<f64>,
    /// Receiving listener or feed.
    pub source: Text,
    /// Sender.
    pub identity: Text,
    /// The report's label.
    pub label: Label,
    /// What it was judged against.
    pub previous: Previous,
    /// Distance from the previous position, metres.
    pub distance_m: f64,
    /// Implied speed, km/h.
    pub implied_kmh: f64,
    /// Why it was refused.
    pub reason: String,
}

/// Filters for listing the quarantine.
#[derive(Clone, Debug, Default)]
pub struct QuarantineQuery {
    /// Only reports of this uid.
    pub uid: Option<String>,
    /// Most returned.
    pub limit: usize,
}

/// The quarantine: the newest `capacity` refused reports.
#[derive(Debug)]
pub struct QuarantineRing {
    capacity: usize,
    items: VecDeque<Quarantined>,
    /// Entries dropped to stay within the capacity.
    pub evicted: u64,
}

impl QuarantineRing {
    /// An empty ring holding at most `capacity` (at least 1) reports.
    pub fn new(capacity: usize) -> Self {
        QuarantineRing {
            capacity: capacity.max(1),
            items: VecDeque::new(),
            evicted: 0,
        }
    }

    /// Adds a report, dropping the oldest when full.
    pub fn push(&mut self, q: Quarantined) {
        while self.items.len() >= self.capacity {
            self.items.pop_front();
            self.evicted += 1;
        }
        self.items.push_back(q);
    }

    /// Reports held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Reports matching `q` (and `visible`), newest first.
    pub fn list(
        &self,
        q: &QuarantineQuery,
        visible: impl Fn(&Quarantined) -> bool,
    ) -> Vec<Quarantined> {
        self.items
            .iter()
            .rev()
            .filter(|x| q.uid.as_deref().is_none_or(|u| x.uid == u))
            .filter(|x| visible(x))
            .take(q.limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn fix(lat: f64, lon: f64, t_ms: i64, ty: &str) -> Fix<'_> {
        Fix {
            lat,
            lon,
            time: Timestamp(1_700_000_000_000 + t_ms),
            ce: None,
            cot_type: ty,
        }
    }

    /// The point `metres` north of (lat, lon).
    fn north(lat: f64, metres: f64) -> f64 {
        lat + metres / 111_195.0
    }

    #[test]
    fn limits_by_type_prefix() {
        let c = KinematicsConfig::default();
        assert_eq!(max_speed_kmh(&c, "a-f-G-U-C"), Some(250.0));
        assert_eq!(max_speed_kmh(&c, "a-h-G"), Some(250.0));
        assert_eq!(max_speed_kmh(&c, "a-n-S-X"), Some(130.0));
        assert_eq!(max_speed_kmh(&c, "a-f-A-M-F"), Some(3_500.0));
        assert_eq!(max_speed_kmh(&c, "a-n-A-C-F"), Some(1_200.0));
        assert_eq!(max_speed_kmh(&c, "a-h-A-W-M"), Some(30_000.0));
        // "A-CX" is not "A-C": prefixes match on '-' boundaries only.
        assert_eq!(max_speed_kmh(&c, "a-u-A-CX"), Some(3_500.0));
        assert_eq!(max_speed_kmh(&c, "a-u-X"), Some(3_500.0));
        assert_eq!(max_speed_kmh(&c, "a-u"), Some(3_500.0));
        assert_eq!(max_speed_kmh(&c, "b-m-p-s-m"), None);
        assert_eq!(max_speed_kmh(&c, "u-d-f"), None);
    }

    #[test]
    fn ground_unit_at_400_kmh_is_implausible_and_at_100_is_not() {
        let c = KinematicsConfig::default();
        let a = fix(48.0, 2.0, 0, "a-f-G-U-C");
        // 400 km/h for 30 s = 3,333 m.
        let b = fix(north(48.0, 3_333.0), 2.0, 30_000, "a-f-G-U-C");
        let why = judge(&c, &a, &b).expect("400 km/h ground");
        assert!((why.implied_kmh - 400.0).abs() < 2.0, "{why:?}");
        assert_eq!(why.max_kmh, Some(250.0));
        assert!(why.reason.contains("km/h"), "{}", why.reason);
        let b = fix(north(48.0, 833.0), 2.0, 30_000, "a-f-G-U-C");
        assert_eq!(judge(&c, &a, &b), None, "100 km/h is plausible");
        // The same 400 km/h is fine for an aircraft.
        let a = fix(48.0, 2.0, 0, "a-f-A-C-F");
        let b = fix(north(48.0, 3_333.0), 2.0, 30_000, "a-f-A-C-F");
        assert_eq!(judge(&c, &a, &b), None);
    }

    #[test]
    fn type_change_takes_the_stricter_limit() {
        let c = KinematicsConfig::default();
        let a = fix(48.0, 2.0, 0, "a-f-G");
        let b = fix(north(48.0, 3_333.0), 2.0, 30_000, "a-f-A");
        assert!(judge(&c, &a, &b).is_some());
    }

    #[test]
    fn fifty_km_jump_in_a_second_is_refused_for_any_type() {
        let c = KinematicsConfig::default();
        for ty in ["a-f-G", "a-h-A-W", "a-u-P"] {
            let a = fix(48.0, 2.0, 0, ty);
            let b = fix(north(48.0, 50_500.0), 2.0, 1_000, ty);
            let why = judge(&c, &a, &b).unwrap_or_else(|| panic!("{ty}"));
            assert!(why.reason.contains("jump"), "{ty}: {}", why.reason);
        }
        // The same distance over an hour is a plausible flight.
        let a = fix(48.0, 2.0, 0, "a-f-A");
        let b = fix(north(48.0, 50_500.0), 2.0, 3_600_000, "a-f-A");
        assert_eq!(judge(&c, &a, &b), None);
    }

    #[test]
    fn gps_noise_is_tolerated() {
        let c = KinematicsConfig::default();
        // 150 m in the same millisecond: noise, not an infinite speed.
        let a = fix(48.0, 2.0, 0, "a-f-G");
        let b = fix(north(48.0, 150.0), 2.0, 0, "a-f-G");
        assert_eq!(judge(&c, &a, &b), None);
        // 600 m in one second is too far for the floor alone…
        let b = fix(north(48.0, 600.0), 2.0, 1_000, "a-f-G");
        assert!(judge(&c, &a, &b).is_some());
        // …but not with a 100 m circular error on each side (3 × 200 = 600 m of slack).
        let mut a2 = a;
        let mut b2 = b;
        a2.ce = Some(100.0);
        b2.ce = Some(100.0);
        assert_eq!(judge(&c, &a2, &b2), None);
        // A huge claimed ce does not make a long jump plausible.
        let b3 = Fix {
            ce: Some(9_999_999.0),
            ..fix(north(48.0, 10_000.0), 2.0, 1_000, "a-f-G")
        };
        assert!(judge(&c, &a, &b3).is_some());
    }

    #[test]
    fn markers_are_not_checked_and_late_reports_are() {
        let c = KinematicsConfig::default();
        let a = fix(48.0, 2.0, 0, "b-m-p-s-m");
        let b = fix(north(48.0, 100_000.0), 2.0, 100, "b-m-p-s-m");
        assert_eq!(judge(&c, &a, &b), None);
        // A report timed before the accepted one is judged over the absolute interval.
        let a = fix(48.0, 2.0, 30_000, "a-f-G");
        let b = fix(north(48.0, 5_000.0), 2.0, 0, "a-f-G");
        assert!(judge(&c, &a, &b).is_some());
    }

    fn q(uid: &str, n: i64) -> Quarantined {
        Quarantined {
            quarantined_at: Timestamp(n),
            uid: uid.into(),
            cot_type: "a-f-G".into(),
            callsign: None,
            lat: 0.0,
            lon: 0.0,
            time: Timestamp(n),
            ce: None,
            source: "http".into(),
            identity: "x".into(),
            label: Label::unclassified(),
            previous: Previous {
                lat: 0.0,
                lon: 0.0,
                time: Timestamp(0),
                cot_type: "a-f-G".into(),
                label: Label::unclassified(),
            },
            distance_m: 1.0,
            implied_kmh: 1.0,
            reason: String::new(),
        }
    }

    #[test]
    fn quarantine_ring_is_bounded_and_lists_newest_first() {
        let mut r = QuarantineRing::new(3);
        for i in 0..5 {
            r.push(q(if i % 2 == 0 { "a" } else { "b" }, i));
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.evicted, 2);
        let all = r.list(
            &QuarantineQuery {
                uid: None,
                limit: 10,
            },
            |_| true,
        );
        let times: Vec<i64> = all.iter().map(|x| x.time.0).collect();
        assert_eq!(times, vec![4, 3, 2]);
        let a = r.list(
            &QuarantineQuery {
                uid: Some("a".into()),
                limit: 1,
            },
            |_| true,
        );
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].time.0, 4);
        assert!(
            r.list(
                &QuarantineQuery {
                    uid: None,
                    limit: 10
                },
                |x| x.uid != "a" && x.uid != "b"
            )
            .is_empty()
        );
    }
}
