//! The guard: the three detectors behind one sans-IO facade. [`Guard::screen`] judges one
//! report (rate first, then kinematics, then loss of fix); [`Guard::on_stale`] records
//! entities going silent. Both return their detections as [`Finding`]s for the caller to
//! turn into alerts.

use rampart_model::{Label, Report, Text, Timestamp};

use crate::config::GuardConfig;
use crate::flood::{FloodDetector, RateVerdict};
use crate::jamming::{AreaLoss, JammingDetector, Loss};
use crate::kinematics::{self, Fix, Previous, QuarantineQuery, QuarantineRing, Quarantined};

/// The accepted state of a report's entity: its live state, or the report of the same uid
/// accepted earlier in the batch.
#[derive(Clone, Copy, Debug)]
pub struct Prior<'a> {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Observation time.
    pub time: Timestamp,
    /// Circular error in metres.
    pub ce: Option<f64>,
    /// CoT type.
    pub cot_type: &'a str,
    /// Callsign, if any.
    pub callsign: Option<&'a str>,
    /// Label.
    pub label: &'a Label,
}

/// What the guard decided about one report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Take it.
    Accept,
    /// Impossible kinematics: refuse it; it is in the quarantine.
    Quarantine(String),
    /// The sender is flooding: refuse it.
    Throttle(String),
}

/// A detection to raise as an alert.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// A report was quarantined (`spoofing`).
    Spoofing(Box<Quarantined>),
    /// An identity started flooding (`flood`), once per episode.
    Flood {
        /// Receiving listener or feed.
        source: Text,
        /// Sender.
        identity: Text,
        /// When the episode started.
        started: Timestamp,
        /// Its learned rate, reports per second.
        learned_per_sec: f64,
        /// The rate above which it is throttled, reports per second.
        budget_per_sec: f64,
        /// The label of the first refused report.
        label: Label,
    },
    /// Many entities in one cell lost their fix (`jamming`).
    Jamming(AreaLoss),
}

/// Counters of what the guard did, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Reports quarantined.
    pub quarantined: u64,
    /// Reports throttled.
    pub throttled: u64,
    /// Quarantined reports dropped from the ring to stay within `max_quarantined`.
    pub quarantine_evicted: u64,
    /// Identities forgotten to stay within `max_identities`.
    pub identities_evicted: u64,
    /// Jamming cells forgotten to stay within `max_cells`.
    pub cells_evicted: u64,
    /// Losses of fix recorded.
    pub losses: u64,
}

/// The guard. See the module docs.
#[derive(Debug)]
pub struct Guard {
    cfg: GuardConfig,
    flood: FloodDetector,
    jamming: JammingDetector,
    quarantine: QuarantineRing,
    quarantined: u64,
    throttled: u64,
}

impl Guard {
    /// A guard with nothing learned yet. `cfg` should have passed [`GuardConfig::validate`].
    pub fn new(cfg: GuardConfig) -> Self {
        Guard {
            flood: FloodDetector::new(cfg.flood.clone()),
            jamming: JammingDetector::new(cfg.jamming.clone()),
            quarantine: QuarantineRing::new(cfg.kinematics.max_quarantined),
            quarantined: 0,
            throttled: 0,
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> GuardStats {
        GuardStats {
            quarantined: self.quarantined,
            throttled: self.throttled,
            quarantine_evicted: self.quarantine.evicted,
            identities_evicted: self.flood.evicted,
            cells_evicted: self.jamming.evicted,
            losses: self.jamming.losses,
        }
    }

    /// Quarantined reports matching `q` and `visible`, newest first.
    pub fn quarantined(
        &self,
        q: &QuarantineQuery,
        visible: impl Fn(&Quarantined) -> bool,
    ) -> Vec<Quarantined> {
        self.quarantine.list(q, visible)
    }

    /// Judges `report` at server time `now` against its entity's accepted state `prior`,
    /// appending detections to `findings`.
    pub fn screen(
        &mut self,
        report: &Report,
        prior: Option<Prior<'_>>,
        now: Timestamp,
        findings: &mut Vec<Finding>,
    ) -> Verdict {
        let report_label = || report.label.clone().unwrap_or_else(Label::unclassified);
        if let RateVerdict::Throttle {
            budget_per_sec,
            learned_per_sec,
            episode_started,
        } = self
            .flood
            .check(&report.provenance.source, &report.provenance.identity, now)
        {
            self.throttled += 1;
            if let Some(started) = episode_started {
                findings.push(Finding::Flood {
                    source: report.provenance.source.clone(),
                    identity: report.provenance.identity.clone(),
                    started,
                    learned_per_sec,
                    budget_per_sec,
                    label: report_label(),
                });
            }
            return Verdict::Throttle(format!(
                "{} on {} is over {budget_per_sec:.0} reports/s ({}x its usual {learned_per_sec:.1}/s, at least {}/s); throttled",
                report.provenance.identity,
                report.provenance.source,
                self.cfg.flood.factor,
                self.cfg.flood.min_rate_per_sec
            ));
        }
        let Some(prior) = prior else {
            return Verdict::Accept;
        };
        let cot_type = report.cot_type.as_deref().unwrap_or(prior.cot_type);
        if self.cfg.kinematics.enabled {
            let prev = Fix {
                lat: prior.lat,
                lon: prior.lon,
                time: prior.time,
                ce: prior.ce,
                cot_type: prior.cot_type,
            };
            let new = Fix {
                lat: report.lat,
                lon: report.lon,
                time: report.time,
                ce: report.ce,
                cot_type,
            };
            if let Some(why) = kinematics::judge(&self.cfg.kinematics, &prev, &new) {
                let q = Quarantined {
                    quarantined_at: now,
                    uid: report.uid.clone(),
                    cot_type: Text::from(cot_type),
                    callsign: report
                        .callsign
                        .clone()
                        .or_else(|| prior.callsign.map(Text::from)),
                    lat: report.lat,
                    lon: report.lon,
                    time: report.time,
                    ce: report.ce,
                    source: report.provenance.source.clone(),
                    identity: report.provenance.identity.clone(),
                    label: report_label(),
                    previous: Previous {
                        lat: prior.lat,
                        lon: prior.lon,
                        time: prior.time,
                        cot_type: Text::from(prior.cot_type),
                        label: prior.label.clone(),
                    },
                    distance_m: why.distance_m,
                    implied_kmh: why.implied_kmh,
                    reason: why.reason.clone(),
                };
                self.quarantined += 1;
                self.quarantine.push(q.clone());
                findings.push(Finding::Spoofing(Box::new(q)));
                return Verdict::Quarantine(why.reason);
            }
        }
        // Loss of fix: an entity that had one (a known, small ce) now reports none.
        let no_fix = self.cfg.jamming.lost_fix_ce_m;
        if cot_type.starts_with("a-")
            && report.ce.is_some_and(|c| c >= no_fix)
            && prior.ce.is_some_and(|c| c < no_fix)
            && let Some(area) = self.jamming.record(
                Loss {
                    uid: &report.uid,
                    lat: prior.lat,
                    lon: prior.lon,
                    label: prior.label,
                },
                now,
            )
        {
            findings.push(Finding::Jamming(area));
        }
        Verdict::Accept
    }

    /// Records an entity of type `cot_type` that went stale (silent) at server time `now`,
    /// at its last position. Only atoms (`a-…`) count: markers and drawings go stale by design.
    pub fn on_stale(
        &mut self,
        cot_type: &str,
        loss: Loss<'_>,
        now: Timestamp,
        findings: &mut Vec<Finding>,
    ) {
        if !cot_type.starts_with("a-") {
            return;
        }
        if let Some(area) = self.jamming.record(loss, now) {
            findings.push(Finding::Jamming(area));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rampart_model::Provenance;

    fn report(uid: &str, lat: f64, lon: f64, t_ms: i64, identity: &str) -> Report {
        Report {
            uid: uid.into(),
            cot_type: Some("a-f-G-U-C".into()),
            callsign: None,
            lat,
            lon,
            hae: None,
            ce: None,
            le: None,
            course: None,
            speed: None,
            how: None,
            time: Timestamp(1_700_000_000_000 + t_ms),
            start: None,
            stale: None,
            attributes: Default::default(),
            label: Some(Label::unclassified()),
            id: None,
            provenance: Provenance::new("http", identity),
        }
    }

    fn prior<'a>(r: &'a Report, label: &'a Label) -> Prior<'a> {
        Prior {
            lat: r.lat,
            lon: r.lon,
            time: r.time,
            ce: r.ce,
            cot_type: r.cot_type.as_deref().unwrap_or("a-u-G"),
            callsign: None,
            label,
        }
    }

    #[test]
    fn quarantines_and_reports_spoofing() {
        let mut g = Guard::new(GuardConfig::default());
        let label = Label::unclassified();
        let a = report("u1", 48.0, 2.0, 0, "x");
        let mut f = Vec::new();
        assert_eq!(g.screen(&a, None, Timestamp(0), &mut f), Verdict::Accept);
        // 400 km/h over 30 s.
        let b = report("u1", 48.0 + 3_333.0 / 111_195.0, 2.0, 30_000, "x");
        let v = g.screen(&b, Some(prior(&a, &label)), Timestamp(1), &mut f);
        assert!(
            matches!(v, Verdict::Quarantine(ref why) if why.contains("km/h")),
            "{v:?}"
        );
        assert_eq!(f.len(), 1);
        assert!(matches!(&f[0], Finding::Spoofing(q) if q.uid == "u1" && q.previous.lat == 48.0));
        let listed = g.quarantined(
            &QuarantineQuery {
                uid: None,
                limit: 10,
            },
            |_| true,
        );
        assert_eq!(listed.len(), 1);
        assert_eq!(g.stats().quarantined, 1);
        // A plausible move is accepted and not listed.
        let c = report("u1", 48.001, 2.0, 30_000, "x");
        assert_eq!(
            g.screen(&c, Some(prior(&a, &label)), Timestamp(2), &mut f),
            Verdict::Accept
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn disabled_kinematics_accepts_anything() {
        let mut cfg = GuardConfig::default();
        cfg.kinematics.enabled = false;
        let mut g = Guard::new(cfg);
        let label = Label::unclassified();
        let a = report("u1", 48.0, 2.0, 0, "x");
        let b = report("u1", 10.0, 2.0, 1, "x");
        let mut f = Vec::new();
        assert_eq!(
            g.screen(&b, Some(prior(&a, &label)), Timestamp(0), &mut f),
            Verdict::Accept
        );
        assert!(f.is_empty());
    }

    #[test]
    fn flood_is_throttled_and_alerted_once_and_others_pass() {
        let mut cfg = GuardConfig::default();
        cfg.flood.initial_rate_per_sec = 0.0;
        cfg.flood.min_rate_per_sec = 100.0;
        let mut g = Guard::new(cfg);
        let now = Timestamp(1_700_000_000_000);
        let mut f = Vec::new();
        let mut throttled = 0;
        for i in 0..1_000 {
            let r = report(&format!("f{i}"), 48.0, 2.0, i, "flooder");
            if matches!(g.screen(&r, None, now, &mut f), Verdict::Throttle(_)) {
                throttled += 1;
            }
            // A calm identity interleaved with the flood.
            let r = report("calm", 48.0, 2.0, i, "calm");
            if i % 20 == 0 {
                assert_eq!(g.screen(&r, None, now, &mut f), Verdict::Accept);
            }
        }
        assert_eq!(throttled, 900);
        assert_eq!(f.len(), 1);
        assert!(matches!(&f[0], Finding::Flood { identity, .. } if identity == "flooder"));
        assert_eq!(g.stats().throttled, 900);
    }

    #[test]
    fn lost_fix_reports_and_stale_entities_count_towards_jamming() {
        let mut cfg = GuardConfig::default();
        cfg.jamming.min_entities = 4;
        let mut g = Guard::new(cfg);
        let label = Label::unclassified();
        let now = Timestamp(1_700_000_000_000);
        let mut f = Vec::new();
        // Two entities report "no fix" (CoT's unknown circular error) at their old place.
        for uid in ["a", "b"] {
            let mut before = report(uid, 48.1, 2.1, 0, "x");
            before.ce = Some(10.0);
            let mut lost = report(uid, 48.1, 2.1, 1_000, "x");
            lost.ce = Some(9_999_999.0);
            assert_eq!(
                g.screen(&lost, Some(prior(&before, &label)), now, &mut f),
                Verdict::Accept
            );
            // Still without a fix: not a second loss.
            let still = lost.clone();
            g.screen(&still, Some(prior(&lost, &label)), now, &mut f);
        }
        // An entity that never had a known fix does not lose one.
        let unknown = report("e", 48.1, 2.1, 0, "x");
        let mut lost = unknown.clone();
        lost.ce = Some(9_999_999.0);
        g.screen(&lost, Some(prior(&unknown, &label)), now, &mut f);
        assert!(f.is_empty());
        // A marker going stale does not count; two units going silent complete the four.
        g.on_stale(
            "b-m-p-s-m",
            Loss {
                uid: "m",
                lat: 48.1,
                lon: 2.1,
                label: &label,
            },
            now,
            &mut f,
        );
        g.on_stale(
            "a-f-G",
            Loss {
                uid: "c",
                lat: 48.12,
                lon: 2.1,
                label: &label,
            },
            now,
            &mut f,
        );
        assert!(f.is_empty());
        g.on_stale(
            "a-f-G",
            Loss {
                uid: "d",
                lat: 48.13,
                lon: 2.1,
                label: &label,
            },
            now,
            &mut f,
        );
        assert_eq!(f.len(), 1);
        let Finding::Jamming(area) = &f[0] else {
            panic!("{f:?}")
        };
        assert_eq!(area.uids, vec!["a", "b", "c", "d"]);
        assert_eq!(g.stats().losses, 4);
    }

    #[test]
    fn default_config_validates_and_round_trips() {
        let cfg = GuardConfig::default();
        cfg.validate().unwrap();
        let text = toml::to_string(&cfg).unwrap();
        let back: GuardConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        let err = toml::from_str::<GuardConfig>("[flood]\nwindow_msec = 3\n").unwrap_err();
        assert!(err.to_string().contains("window_msec"));
        let mut bad = GuardConfig::default();
        bad.flood.ewma_alpha = 0.0;
        assert!(bad.validate().unwrap_err().contains("ewma_alpha"));
        let mut bad = GuardConfig::default();
        bad.kinematics.max_speed_kmh.insert("G".into(), f64::NAN);
        assert!(bad.validate().unwrap_err().contains("max_speed_kmh.G"));
        let mut bad = GuardConfig::default();
        bad.jamming.min_entities = 1;
        assert!(bad.validate().unwrap_err().contains("min_entities"));
    }
}
