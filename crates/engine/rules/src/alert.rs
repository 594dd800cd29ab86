//! The alert lifecycle: raised → acknowledged (by whom, when) → cleared, with duplicate
//! suppression and a bounded store of active and closed alerts.
//!
//! An alert is identified for suppression by its key (rule, kind, entity, other entity):
//! while an alert with that key is active (raised or acknowledged), raising it again does
//! nothing. Clearing moves it to the closed list, which keeps the newest `max_closed`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rampart_model::{Label, Timestamp};
use serde::{Deserialize, Serialize};

use crate::def::Priority;

/// What raised an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An entity came inside a geofence.
    Enter,
    /// An entity left a geofence.
    Exit,
    /// An entity stayed inside a geofence longer than its dwell time.
    Dwell,
    /// More entities inside a geofence than its limit.
    Count,
    /// Two entities too close.
    Proximity,
    /// No report for too long.
    LostComms,
    /// An attribute past its limit.
    Threshold,
    /// A CoT emergency (911, ring the bell, troops in contact).
    Emergency,
    /// An SOS flag on a report.
    Sos,
    /// A report implying impossible movement was quarantined (`rampart-guard`).
    Spoofing,
    /// An identity sent far above its normal rate and is being throttled (`rampart-guard`).
    Flood,
    /// Many entities in one area lost their fix or went silent at once (`rampart-guard`).
    Jamming,
}

impl AlertKind {
    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Enter => "enter",
            AlertKind::Exit => "exit",
            AlertKind::Dwell => "dwell",
            AlertKind::Count => "count",
            AlertKind::Proximity => "proximity",
            AlertKind::LostComms => "lost_comms",
            AlertKind::Threshold => "threshold",
            AlertKind::Emergency => "emergency",
            AlertKind::Sos => "sos",
            AlertKind::Spoofing => "spoofing",
            AlertKind::Flood => "flood",
            AlertKind::Jamming => "jamming",
        }
    }
}

/// Where an alert is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised, nobody acknowledged it yet.
    Raised,
    /// Someone acknowledged it; the condition still holds.
    Acknowledged,
    /// The condition ended (or it was cleared by hand).
    Cleared,
}

impl AlertState {
    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Raised => "raised",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Cleared => "cleared",
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique, increasing id.
    pub id: u64,
    /// The rule or geofence id (`emergency` and `sos` for the built-in ones).
    pub rule_id: String,
    /// What raised it.
    pub kind: AlertKind,
    /// How urgent it is.
    pub priority: Priority,
    /// The entities concerned: the subject first (for proximity, then the other entity).
    pub entities: Vec<String>,
    /// Text for a watch officer.
    pub message: String,
    /// Where the subject was, `[lon, lat]`, when raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 2]>,
    /// When it was raised.
    pub raised_at: Timestamp,
    /// Lifecycle state.
    pub state: AlertState,
    /// Who acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    /// When it was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<Timestamp>,
    /// When it was cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<Timestamp>,
    /// Duplicate-suppression key.
    pub key: String,
    /// Security label: the subject entity's label (the join of both for proximity). Every
    /// read path shows the alert only to receivers whose clearance permits it. Alerts stored
    /// before labels existed read as `UNCLASSIFIED`.
    #[serde(default)]
    pub label: Label,
}

impl Alert {
    /// Whether it is still active (raised or acknowledged).
    pub fn is_active(&self) -> bool {
        self.state != AlertState::Cleared
    }
}

/// What the evaluator asks of the alert store.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// Raise an alert unless one with the same key is active.
    Raise {
        /// Suppression key.
        key: String,
        /// Rule or geofence id.
        rule_id: String,
        /// Kind.
        kind: AlertKind,
        /// Priority.
        priority: Priority,
        /// Entities concerned.
        entities: Vec<String>,
        /// Text.
        message: String,
        /// Subject position, `[lon, lat]`.
        position: Option<[f64; 2]>,
        /// Security label of the alert (see [`Alert::label`]).
        label: Label,
    },
    /// Clear the active alert with this key, if any.
    Clear {
        /// Suppression key.
        key: String,
    },
    /// Clear every active alert of a rule (the rule was deleted or disabled).
    ClearRule {
        /// Rule or geofence id.
        rule_id: String,
    },
}

/// A change to an alert, as delivered to subscribers (WebSocket, TAK, MQTT, webhooks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// `raised`, `acknowledged` or `cleared`: the alert's new state.
    pub event: AlertState,
    /// The alert after the change.
    pub alert: Alert,
}

/// Bounds of the alert store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertLimits {
    /// Most active alerts; when full, the oldest is cleared to make room (and counted).
    pub max_active: usize,
    /// Most closed (cleared) alerts kept for listing.
    pub max_closed: usize,
}

impl Default for AlertLimits {
    fn default() -> Self {
        AlertLimits {
            max_active: 100_000,
            max_closed: 10_000,
        }
    }
}

/// Why an acknowledgement failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No alert with that id.
    #[error("no alert with id {0}")]
    NotFound(u64),
    /// The alert is already cleared.
    #[error("alert {0} is already cleared")]
    Cleared(u64),
}

/// Active and closed alerts, bounded.
#[derive(Debug, Default)]
pub struct AlertStore {
    limits: AlertLimits,
    next_id: u64,
    active: BTreeMap<u64, Alert>,
    by_key: HashMap<String, u64>,
    closed: VecDeque<Alert>,
    /// Raises suppressed because an alert with the same key was active.
    pub suppressed: u64,
    /// Active alerts cleared early to stay within `max_active`.
    pub evicted: u64,
}

/// Filters for listing alerts.
#[derive(Clone, Debug, Default)]
pub struct AlertQuery {
    /// Only alerts in this state.
    pub state: Option<AlertState>,
    /// Only alerts of this priority or higher.
    pub min_priority: Option<Priority>,
    /// Only alerts of this kind.
    pub kind: Option<AlertKind>,
    /// Only alerts concerning this entity uid.
    pub entity: Option<String>,
    /// Only alerts of this rule or geofence.
    pub rule_id: Option<String>,
    /// Only alerts raised at or after this time.
    pub since: Option<Timestamp>,
    /// Most alerts returned.
    pub limit: usize,
}

impl AlertStore {
    /// An empty store.
    pub fn new(limits: AlertLimits) -> Self {
        AlertStore {
            limits,
            next_id: 1,
            ..Default::default()
        }
    }

    /// Restores a store from persisted alerts (active and closed, any order).
    pub fn restore(limits: AlertLimits, alerts: Vec<Alert>) -> Self {
        let mut s = AlertStore::new(limits);
        let mut alerts = alerts;
        alerts.sort_by_key(|a| a.id);
        for a in alerts {
            s.next_id = s.next_id.max(a.id + 1);
            if a.is_active() {
                if s.active.len() < s.limits.max_active && !s.by_key.contains_key(&a.key) {
                    s.by_key.insert(a.key.clone(), a.id);
                    s.active.insert(a.id, a);
                }
            } else {
                s.push_closed(a);
            }
        }
        s
    }

    fn push_closed(&mut self, a: Alert) {
        self.closed.push_back(a);
        while self.closed.len() > self.limits.max_closed {
            self.closed.pop_front();
        }
    }

    /// Whether an alert with `key` is active.
    pub fn is_active(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// Number of active alerts.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    fn clear_id(&mut self, id: u64, now: Timestamp, out: &mut Vec<AlertEvent>) {
        if let Some(mut a) = self.active.remove(&id) {
            self.by_key.remove(&a.key);
            a.state = AlertState::Cleared;
            a.cleared_at = Some(now);
            out.push(AlertEvent {
                event: AlertState::Cleared,
                alert: a.clone(),
            });
            self.push_closed(a);
        }
    }

    /// Applies the evaluator's transitions, appending the resulting events to `out`.
    pub fn apply(
        &mut self,
        transitions: Vec<Transition>,
        now: Timestamp,
        out: &mut Vec<AlertEvent>,
    ) {
        for t in transitions {
            match t {
                Transition::Raise {
                    key,
                    rule_id,
                    kind,
                    priority,
                    entities,
                    message,
                    position,
                    label,
                } => {
                    if self.by_key.contains_key(&key) {
                        self.suppressed += 1;
                        continue;
                    }
                    if self.active.len() >= self.limits.max_active.max(1) {
                        // Make room: the oldest alert goes (ids increase with time).
                        let victim = self.active.keys().next().copied();
                        if let Some(id) = victim {
                            self.evicted += 1;
                            self.clear_id(id, now, out);
                        }
                    }
                    let id = self.next_id;
                    self.next_id += 1;
                    let a = Alert {
                        id,
                        rule_id,
                        kind,
                        priority,
                        entities,
                        message,
                        position,
                        raised_at: now,
                        state: AlertState::Raised,
                        acked_by: None,
                        acked_at: None,
                        cleared_at: None,
                        key: key.clone(),
                        label,
                    };
                    self.by_key.insert(key, id);
                    out.push(AlertEvent {
                        event: AlertState::Raised,
                        alert: a.clone(),
                    });
                    self.active.insert(id, a);
                }
                Transition::Clear { key } => {
                    if let Some(&id) = self.by_key.get(&key) {
                        self.clear_id(id, now, out);
                    }
                }
                Transition::ClearRule { rule_id } => {
                    let mut ids: Vec<u64> = self
                        .active
                        .values()
                        .filter(|a| a.rule_id == rule_id)
                        .map(|a| a.id)
                        .collect();
                    ids.sort_unstable();
                    for id in ids {
                        self.clear_id(id, now, out);
                    }
                }
            }
        }
    }

    /// Acknowledges alert `id` on behalf of `who`. Acknowledging twice keeps the first.
    pub fn ack(
        &mut self,
        id: u64,
        who: &str,
        now: Timestamp,
    ) -> Result<Option<AlertEvent>, AckError> {
        match self.active.get_mut(&id) {
            Some(a) if a.state == AlertState::Raised => {
                a.state = AlertState::Acknowledged;
                a.acked_by = Some(who.to_string());
                a.acked_at = Some(now);
                Ok(Some(AlertEvent {
                    event: AlertState::Acknowledged,
                    alert: a.clone(),
                }))
            }
            Some(_) => Ok(None),
            None if self.closed.iter().any(|a| a.id == id) => Err(AckError::Cleared(id)),
            None => Err(AckError::NotFound(id)),
        }
    }

    /// Clears alert `id` by hand (a lost-comms alert of an entity that is gone for good).
    pub fn clear(&mut self, id: u64, now: Timestamp) -> Result<Option<AlertEvent>, AckError> {
        if self.active.contains_key(&id) {
            let mut out = Vec::new();
            self.clear_id(id, now, &mut out);
            return Ok(out.pop());
        }
        if self.closed.iter().any(|a| a.id == id) {
            return Err(AckError::Cleared(id));
        }
        Err(AckError::NotFound(id))
    }

    /// One alert by id.
    pub fn get(&self, id: u64) -> Option<&Alert> {
        self.active
            .get(&id)
            .or_else(|| self.closed.iter().find(|a| a.id == id))
    }

    /// Alerts matching `q`, newest first.
    pub fn list(&self, q: &AlertQuery) -> Vec<Alert> {
        self.list_where(q, |_| true)
    }

    /// Alerts matching `q` for which `visible` holds (a reader's clearance), newest first.
    /// `visible` is applied before `q.limit`, so a restricted reader still gets up to `limit`
    /// alerts it may see.
    pub fn list_where(&self, q: &AlertQuery, visible: impl Fn(&Alert) -> bool) -> Vec<Alert> {
        let keep = |a: &&Alert| {
            q.state.is_none_or(|s| a.state == s)
                && q.min_priority.is_none_or(|p| a.priority >= p)
                && q.kind.is_none_or(|k| a.kind == k)
                && q.entity
                    .as_deref()
                    .is_none_or(|e| a.entities.iter().any(|x| x == e))
                && q.rule_id.as_deref().is_none_or(|r| a.rule_id == r)
                && q.since.is_none_or(|t| a.raised_at >= t)
                && visible(a)
        };
        let mut out: Vec<Alert> = self
            .active
            .values()
            .chain(self.closed.iter())
            .filter(keep)
            .cloned()
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.id));
        out.truncate(q.limit);
        out
    }

    /// Every alert (active and closed), for persistence.
    pub fn all(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self
            .active
            .values()
            .chain(self.closed.iter())
            .cloned()
            .collect();
        v.sort_by_key(|a| a.id);
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn raise(key: &str) -> Transition {
        Transition::Raise {
            key: key.into(),
            rule_id: "r".into(),
            kind: AlertKind::Enter,
            priority: Priority::High,
            entities: vec!["u1".into()],
            message: "m".into(),
            position: None,
            label: Label::unclassified(),
        }
    }

    #[test]
    fn duplicates_are_suppressed_while_active_and_lifecycle_runs() {
        let mut s = AlertStore::new(AlertLimits::default());
        let mut out = Vec::new();
        s.apply(vec![raise("k"), raise("k")], Timestamp(1), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(s.suppressed, 1);
        let id = out[0].alert.id;
        let ev = s.ack(id, "alice", Timestamp(2)).unwrap().unwrap();
        assert_eq!(ev.alert.acked_by.as_deref(), Some("alice"));
        assert_eq!(ev.event, AlertState::Acknowledged);
        out.clear();
        s.apply(vec![raise("k")], Timestamp(3), &mut out);
        assert!(out.is_empty(), "acknowledged is still active");
        s.apply(
            vec![Transition::Clear { key: "k".into() }],
            Timestamp(4),
            &mut out,
        );
        assert_eq!(out[0].event, AlertState::Cleared);
        assert_eq!(out[0].alert.acked_by.as_deref(), Some("alice"));
        assert_eq!(s.ack(id, "bob", Timestamp(5)), Err(AckError::Cleared(id)));
        out.clear();
        s.apply(vec![raise("k")], Timestamp(6), &mut out);
        assert_eq!(out.len(), 1, "raised again after clearing");
        assert!(out[0].alert.id > id);
        assert_eq!(s.ack(999, "x", Timestamp(7)), Err(AckError::NotFound(999)));
    }

    #[test]
    fn store_is_bounded_and_restores() {
        let mut s = AlertStore::new(AlertLimits {
            max_active: 2,
            max_closed: 1,
        });
        let mut out = Vec::new();
        s.apply(
            vec![raise("a"), raise("b"), raise("c")],
            Timestamp(1),
            &mut out,
        );
        assert_eq!(s.active_len(), 2);
        assert_eq!(s.evicted, 1);
        assert!(!s.is_active("a"));
        let all = s.all();
        let r = AlertStore::restore(AlertLimits::default(), all);
        assert!(r.is_active("b") && r.is_active("c"));
        assert_eq!(
            r.list(&AlertQuery {
                limit: 10,
                ..Default::default()
            })
            .len(),
            3
        );
        assert_eq!(
            r.list(&AlertQuery {
                limit: 10,
                state: Some(AlertState::Cleared),
                ..Default::default()
            })
            .len(),
            1
        );
    }
}
