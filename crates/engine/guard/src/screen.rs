//! The guard on a node: a [`ReportScreen`] for the engine that counts its refusals in the
//! metrics and raises its detections in the rules engine's alert stream (kinds `spoofing`,
//! `flood`, `jamming`), labelled with the data they reveal.
//!
//! Both run inside the engine's write lock: the guard's own lock is held only while judging,
//! and alerts are raised after it is released (the lock order is engine, guard; engine,
//! rules).

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rampart_engine::{Engine, Metrics, ReasonLabel, ReportScreen, ScreenVerdict};
use rampart_labels::Policy;
use rampart_model::{Entity, Label, Report, Timestamp};
use rampart_rules::{AlertKind, Priority, RulesService, Transition};

use crate::config::GuardConfig;
use crate::guard::{Finding, Guard, GuardStats, Prior, Verdict};
use crate::jamming::Loss;
use crate::kinematics::{QuarantineQuery, Quarantined};

/// Most entity uids named in one jamming alert.
const MAX_ALERT_ENTITIES: usize = 64;

struct GuardMetrics {
    refused: Family<ReasonLabel, Counter>,
    detections: Family<ReasonLabel, Counter>,
    evicted: Family<ReasonLabel, Counter>,
}

/// The guard on a node. See the module docs.
pub struct GuardScreen {
    guard: Mutex<Guard>,
    policy: Arc<Policy>,
    alerts: OnceLock<Arc<RulesService>>,
    metrics: GuardMetrics,
    last: Mutex<GuardStats>,
}

fn count(f: &Family<ReasonLabel, Counter>, reason: &str, n: u64) {
    if n > 0 {
        f.get_or_create(&ReasonLabel {
            reason: reason.to_string(),
        })
        .inc_by(n);
    }
}

impl GuardScreen {
    /// Builds the guard, checking `cfg` and registering its metrics in `metrics`. `policy`
    /// (the engine's label policy) labels the alerts.
    pub fn new(
        cfg: GuardConfig,
        policy: Arc<Policy>,
        metrics: &Metrics,
    ) -> Result<Arc<GuardScreen>, String> {
        cfg.validate()?;
        let m = GuardMetrics {
            refused: metrics.register_reason_counter(
                "rampart_guard_refused",
                "Reports refused by the guard, by reason (kinematics: quarantined; rate: throttled)",
            ),
            detections: metrics.register_reason_counter(
                "rampart_guard_detections",
                "Detections raised as alerts, by kind (spoofing, flood, jamming)",
            ),
            evicted: metrics.register_reason_counter(
                "rampart_guard_evicted",
                "Guard state dropped to stay within its bounds (quarantine, identities, cells)",
            ),
        };
        Ok(Arc::new(GuardScreen {
            guard: Mutex::new(Guard::new(cfg)),
            policy,
            alerts: OnceLock::new(),
            metrics: m,
            last: Mutex::new(GuardStats::default()),
        }))
    }

    /// Screens `engine`'s reports from now on.
    pub fn attach(self: &Arc<Self>, engine: &Engine) -> Result<(), String> {
        engine
            .set_screen(self.clone())
            .map_err(|_| "the engine already has a report screen".to_string())
    }

    /// Raises detections in `rules`' alert stream from now on.
    pub fn set_alerts(&self, rules: Arc<RulesService>) {
        let _ = self.alerts.set(rules);
    }

    /// Quarantined reports matching `q` that `visible` allows, newest first.
    pub fn quarantined(
        &self,
        q: &QuarantineQuery,
        visible: impl Fn(&Quarantined) -> bool,
    ) -> Vec<Quarantined> {
        self.guard.lock().quarantined(q, visible)
    }

    /// The guard's counters.
    pub fn stats(&self) -> GuardStats {
        self.guard.lock().stats()
    }

    fn sync_evictions(&self, now: GuardStats) {
        let mut last = self.last.lock();
        count(
            &self.metrics.evicted,
            "quarantine",
            now.quarantine_evicted
                .saturating_sub(last.quarantine_evicted),
        );
        count(
            &self.metrics.evicted,
            "identities",
            now.identities_evicted
                .saturating_sub(last.identities_evicted),
        );
        count(
            &self.metrics.evicted,
            "cells",
            now.cells_evicted.saturating_sub(last.cells_evicted),
        );
        *last = now;
    }

    fn raise(&self, findings: Vec<Finding>, now: Timestamp) {
        if findings.is_empty() {
            return;
        }
        let mut transitions = Vec::with_capacity(findings.len());
        for f in findings {
            let kind = match &f {
                Finding::Spoofing(_) => AlertKind::Spoofing,
                Finding::Flood { .. } => AlertKind::Flood,
                Finding::Jamming(_) => AlertKind::Jamming,
            };
            count(&self.metrics.detections, kind.as_str(), 1);
            transitions.push(self.transition(f, now));
        }
        // Without a rules engine the detections are only counted.
        if let Some(rules) = self.alerts.get() {
            rules.raise_external(transitions, now);
        }
    }

    fn transition(&self, f: Finding, now: Timestamp) -> Transition {
        let levels = &self.policy.levels;
        match f {
            Finding::Spoofing(q) => {
                let name = q.callsign.as_deref().unwrap_or(&q.uid).to_string();
                Transition::Raise {
                    // One active spoofing alert per entity; an operator clears it.
                    key: format!("spoofing:{}", q.uid),
                    rule_id: "spoofing".into(),
                    kind: AlertKind::Spoofing,
                    priority: Priority::High,
                    entities: vec![q.uid.to_string()],
                    message: format!(
                        "{name}: report from {} on {} quarantined: {} (claimed {:.5}, {:.5}; last accepted {:.5}, {:.5})",
                        q.identity,
                        q.source,
                        q.reason,
                        q.lat,
                        q.lon,
                        q.previous.lat,
                        q.previous.lon
                    ),
                    position: Some([q.previous.lon, q.previous.lat]),
                    // It reveals both the claim and the accepted position.
                    label: levels.join(&q.label, &q.previous.label),
                }
            }
            Finding::Flood {
                source,
                identity,
                started,
                learned_per_sec,
                budget_per_sec,
                label,
            } => Transition::Raise {
                key: format!("flood:{source}:{identity}:{}", started.millis()),
                rule_id: "flood".into(),
                kind: AlertKind::Flood,
                priority: Priority::High,
                entities: Vec::new(),
                message: format!(
                    "{identity} on {source} is sending above {budget_per_sec:.0} reports/s (usual rate {learned_per_sec:.1}/s); its excess reports are refused"
                ),
                position: None,
                label,
            },
            Finding::Jamming(area) => {
                let label = area
                    .labels
                    .iter()
                    .fold(None::<Label>, |acc, l| {
                        Some(match acc {
                            None => l.clone(),
                            Some(a) => levels.join(&a, l),
                        })
                    })
                    .unwrap_or_else(Label::unclassified);
                let n = area.uids.len();
                Transition::Raise {
                    key: format!("jamming:{}:{}:{}", area.cell.0, area.cell.1, now.millis()),
                    rule_id: "jamming".into(),
                    kind: AlertKind::Jamming,
                    priority: Priority::Critical,
                    entities: area
                        .uids
                        .iter()
                        .take(MAX_ALERT_ENTITIES)
                        .map(|u| u.to_string())
                        .collect(),
                    message: format!(
                        "possible jamming: {n} entities lost their fix or went silent within {:.0} s near {:.4}, {:.4}",
                        area.span_ms as f64 / 1000.0,
                        area.center[1],
                        area.center[0]
                    ),
                    position: Some(area.center),
                    label,
                }
            }
        }
    }
}

impl ReportScreen for GuardScreen {
    fn screen(
        &self,
        report: &Report,
        current: Option<&Entity>,
        earlier: Option<&Report>,
        now: Timestamp,
    ) -> ScreenVerdict {
        let prior = match (earlier, current) {
            (Some(r), cur) => {
                let cot_type = r
                    .cot_type
                    .as_deref()
                    .or(cur.map(|e| &*e.cot_type))
                    .unwrap_or("");
                let label = match (&r.label, cur) {
                    (Some(l), _) => l,
                    (None, Some(e)) => &*e.label,
                    (None, None) => &*UNCLASSIFIED,
                };
                Some(Prior {
                    lat: r.lat,
                    lon: r.lon,
                    time: r.time,
                    ce: r.ce,
                    cot_type,
                    callsign: r
                        .callsign
                        .as_deref()
                        .or(cur.and_then(|e| e.callsign.as_deref())),
                    label,
                })
            }
            (None, Some(e)) => Some(Prior {
                lat: e.lat,
                lon: e.lon,
                time: e.time,
                ce: e.ce,
                cot_type: &e.cot_type,
                callsign: e.callsign.as_deref(),
                label: &e.label,
            }),
            (None, None) => None,
        };
        let mut findings = Vec::new();
        let (verdict, stats) = {
            let mut g = self.guard.lock();
            let v = g.screen(report, prior, now, &mut findings);
            (v, g.stats())
        };
        let out = match verdict {
            Verdict::Accept => ScreenVerdict::Accept,
            Verdict::Quarantine(why) => {
                count(&self.metrics.refused, "kinematics", 1);
                ScreenVerdict::Quarantine(why)
            }
            Verdict::Throttle(why) => {
                count(&self.metrics.refused, "rate", 1);
                ScreenVerdict::Throttle(why)
            }
        };
        self.sync_evictions(stats);
        self.raise(findings, now);
        out
    }

    fn on_stale(&self, entities: &[&Entity], now: Timestamp) {
        let mut findings = Vec::new();
        let stats = {
            let mut g = self.guard.lock();
            for e in entities {
                let loss = Loss {
                    uid: &e.uid,
                    lat: e.lat,
                    lon: e.lon,
                    label: &e.label,
                };
                g.on_stale(&e.cot_type, loss, now, &mut findings);
            }
            g.stats()
        };
        self.sync_evictions(stats);
        self.raise(findings, now);
    }
}

static UNCLASSIFIED: std::sync::LazyLock<Label> = std::sync::LazyLock::new(Label::unclassified);
