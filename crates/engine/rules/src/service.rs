//! The rules engine of a node: the evaluator and the alert store behind one lock, attached to
//! the engine as its [`BatchObserver`], persisted under `DATA/rules/`, publishing every alert
//! change on a bounded broadcast channel.
//!
//! Subscribing: [`RulesService::subscribe`] returns a `tokio::sync::broadcast::Receiver` of
//! `Arc<AlertEvent>` (raised, acknowledged, cleared). Publishing never waits; a subscriber
//! that falls more than `alert_channel_capacity` behind gets `RecvError::Lagged` and can
//! re-read the active alerts with [`RulesService::alerts`].
//!
//! I/O never happens on the ingest path: the alert log is appended by a background thread
//! that reads the same channel, and the per-entity state is snapshotted by another every
//! `state_save_interval_ms`. Definitions are written (atomically) by the API call that
//! changes them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use rampart_engine::{BatchObserver, Engine, Metrics};
use rampart_labels::Policy;
use rampart_model::{Entity, Timestamp, Uid};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::alert::{AckError, Alert, AlertEvent, AlertLimits, AlertQuery, AlertStore, Transition};
use crate::def::{DefError, DefLimits, Geofence, Rule, validate_id};
use crate::eval::{EntitySnapshot, EvalConfig, Evaluator, Observation};
use crate::store::{self, LineLog};
use crate::webhook::{self, DeadLetter, DeadLetters, WebhookConfig, WebhookSettings};

/// `[rules]`: limits and delivery of the rules engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Most geofences.
    pub max_geofences: usize,
    /// Most other rules (proximity, lost comms, threshold).
    pub max_rules: usize,
    /// How often the per-entity state (dwell entry times, …) is saved, in milliseconds.
    pub state_save_interval_ms: u64,
    /// Alert events buffered for slow subscribers of the alert channel.
    pub alert_channel_capacity: usize,
    /// `[rules.limits]`: definition limits.
    pub limits: DefLimits,
    /// `[rules.eval]`: evaluation grids and bounds.
    pub eval: EvalConfig,
    /// `[rules.alerts]`: active and closed alerts kept.
    pub alerts: AlertLimits,
    /// `[[rules.webhooks]]`: where alerts are POSTed.
    pub webhooks: Vec<WebhookConfig>,
    /// `[rules.webhook]`: retries, backoff, queue and dead-letter bounds.
    pub webhook: WebhookSettings,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            max_geofences: 100_000,
            max_rules: 10_000,
            state_save_interval_ms: 2_000,
            alert_channel_capacity: 4_096,
            limits: DefLimits::default(),
            eval: EvalConfig::default(),
            alerts: AlertLimits::default(),
            webhooks: Vec::new(),
            webhook: WebhookSettings::default(),
        }
    }
}

impl RulesConfig {
    /// Checks the configuration (webhook URLs).
    pub fn validate(&self) -> Result<(), String> {
        for w in &self.webhooks {
            w.validate()?;
        }
        Ok(())
    }
}

/// Why a definition change failed.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The definition is invalid.
    #[error("invalid definition: {0}")]
    Invalid(#[from] DefError),
    /// No such id.
    #[error("no {0} with id {1:?}")]
    NotFound(&'static str, String),
    /// The id is taken.
    #[error("a {0} with id {1:?} already exists")]
    Exists(&'static str, String),
    /// A limit is reached.
    #[error("{0}")]
    Full(String),
    /// Writing the definitions failed; the change was not applied.
    #[error("storing the definitions failed: {0}")]
    Storage(String),
}

#[derive(Default, Serialize, Deserialize)]
struct Definitions {
    #[serde(default)]
    geofences: Vec<Geofence>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    next_seq: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct StateFile {
    saved_at: i64,
    entities: Vec<EntitySnapshot>,
}

struct Inner {
    eval: Evaluator,
    alerts: AlertStore,
    fences: BTreeMap<String, Geofence>,
    rules: BTreeMap<String, Rule>,
    next_seq: u64,
    scratch: Vec<Transition>,
    events: Vec<AlertEvent>,
}

struct RulesMetrics {
    raised: Counter,
    cleared: Counter,
    acknowledged: Counter,
    suppressed: Counter,
    evaluated: Counter,
    untracked: Counter,
    webhook_withheld: Counter,
}

/// The rules engine of a node. See the module docs.
pub struct RulesService {
    cfg: RulesConfig,
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    defs_write: Mutex<()>,
    state_write: Mutex<()>,
    tx: broadcast::Sender<Arc<AlertEvent>>,
    dead: Arc<DeadLetters>,
    dirty: AtomicBool,
    metrics: RulesMetrics,
    last_suppressed: AtomicU64,
    last_untracked: AtomicU64,
    /// The engine observed, to catch up on its picture when the first definitions arrive.
    engine: std::sync::OnceLock<Weak<Engine>>,
    /// The node's label policy (levels for joins, webhook clearances); open until
    /// [`RulesService::set_labels`] (which [`RulesService::attach`] calls).
    labels: parking_lot::RwLock<Arc<Policy>>,
}

/// What priming needs of a live entity, copied out of the picture.
type PrimeItem = (
    Uid,
    Arc<str>,
    Option<rampart_model::Text>,
    f64,
    f64,
    Timestamp,
    Arc<rampart_model::Label>,
);

impl RulesService {
    /// Opens the rules engine, loading definitions, alerts and state from `dir` (created if
    /// missing; `None` keeps everything in memory), and starts the persistence threads.
    pub fn open(
        cfg: RulesConfig,
        dir: Option<PathBuf>,
        metrics: &Metrics,
    ) -> Result<Arc<RulesService>, String> {
        cfg.validate()?;
        let mut defs = Definitions::default();
        let mut state = StateFile::default();
        let mut alerts = Vec::new();
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
            if let Some(x) = store::read_json::<Definitions>(&d.join("definitions.json"))? {
                defs = x;
            }
            // A damaged state file only loses dwell timers; never refuse to start for it.
            match store::read_json::<StateFile>(&d.join("state.json")) {
                Ok(Some(x)) => state = x,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "rule state unreadable; starting without it"),
            }
            let (events, bad) = store::read_lines::<AlertEvent>(&d.join("alerts.jsonl"));
            if bad > 0 {
                tracing::warn!(bad, "skipped unreadable lines of the alert log");
            }
            let mut by_id: BTreeMap<u64, Alert> = BTreeMap::new();
            for ev in events {
                by_id.insert(ev.alert.id, ev.alert);
            }
            alerts = by_id.into_values().collect();
        }
        let mut eval = Evaluator::new(cfg.eval.clone());
        let mut scratch = Vec::new();
        eval.set_definitions(&defs.geofences, &defs.rules, &mut scratch);
        eval.restore(&state.entities);
        let alerts = AlertStore::restore(cfg.alerts.clone(), alerts);
        let (tx, _) = broadcast::channel(cfg.alert_channel_capacity.max(1));
        let m = RulesMetrics {
            raised: metrics.register_counter("rampart_alerts_raised", "Alerts raised"),
            cleared: metrics.register_counter("rampart_alerts_cleared", "Alerts cleared"),
            acknowledged: metrics
                .register_counter("rampart_alerts_acknowledged", "Alerts acknowledged"),
            suppressed: metrics.register_counter(
                "rampart_alerts_suppressed",
                "Raises suppressed because the same alert was active",
            ),
            evaluated: metrics.register_counter(
                "rampart_rules_observations",
                "Entity updates evaluated by the rules engine",
            ),
            untracked: metrics.register_counter(
                "rampart_rules_untracked",
                "Entity updates not evaluated because the rule state is full",
            ),
            webhook_withheld: metrics.register_counter(
                "webhook_withheld",
                "Alert events not sent to a webhook because its clearance does not permit the alert's label",
            ),
        };
        let svc = Arc::new(RulesService {
            dead: Arc::new(DeadLetters::new(cfg.webhook.max_dead_letters)),
            dir,
            inner: Mutex::new(Inner {
                eval,
                alerts,
                fences: defs
                    .geofences
                    .into_iter()
                    .map(|g| (g.id.clone(), g))
                    .collect(),
                rules: defs.rules.into_iter().map(|r| (r.id.clone(), r)).collect(),
                next_seq: defs.next_seq,
                scratch: Vec::new(),
                events: Vec::new(),
            }),
            defs_write: Mutex::new(()),
            state_write: Mutex::new(()),
            tx,
            dirty: AtomicBool::new(false),
            metrics: m,
            last_suppressed: AtomicU64::new(0),
            last_untracked: AtomicU64::new(0),
            engine: std::sync::OnceLock::new(),
            labels: parking_lot::RwLock::new(Arc::new(Policy::open())),
            cfg,
        });
        svc.start_persistence()?;
        Ok(svc)
    }

    /// The configuration.
    pub fn config(&self) -> &RulesConfig {
        &self.cfg
    }

    /// Sets the node's label policy: the level order used to join labels (proximity and
    /// count alerts) and the policy webhook clearances are checked under. Refuses a webhook
    /// clearance naming a level the policy does not know.
    pub fn set_labels(&self, policy: Arc<Policy>) -> Result<(), String> {
        for w in &self.cfg.webhooks {
            w.validate_clearance(&policy)?;
        }
        self.inner.lock().eval.set_levels(policy.levels.clone());
        *self.labels.write() = policy;
        Ok(())
    }

    /// The label policy in force (see [`RulesService::set_labels`]).
    pub fn labels(&self) -> Arc<Policy> {
        self.labels.read().clone()
    }

    /// Takes the label policy of the engine's configuration, primes the state from the
    /// engine's live picture (last report times, proximity positions; nothing is raised) and
    /// attaches the service as the engine's observer.
    pub fn attach(self: &Arc<Self>, engine: &Arc<Engine>) -> Result<(), String> {
        self.set_labels(engine.config().labels.clone())?;
        {
            let picture = engine.picture();
            let mut inner = self.inner.lock();
            // With no definitions nothing is tracked; the first ones prime from the picture.
            if !inner.eval.is_idle() {
                for e in picture.iter() {
                    inner.eval.prime(&Observation::from_entity(e), e.received);
                }
            }
        }
        let _ = self.engine.set(Arc::downgrade(engine));
        engine
            .set_observer(self.clone())
            .map_err(|_| "the engine already has an observer".to_string())
    }

    /// Subscribes to alert events. See the module docs.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AlertEvent>> {
        self.tx.subscribe()
    }

    /// Starts webhook delivery for the configured webhooks (needs a tokio runtime).
    pub fn spawn_webhooks(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.cfg.webhooks.is_empty() {
            return None;
        }
        Some(webhook::spawn(
            self.cfg.webhooks.clone(),
            self.cfg.webhook.clone(),
            self.subscribe(),
            self.dead.clone(),
            self.labels(),
            self.metrics.webhook_withheld.clone(),
        ))
    }

    /// Events no webhook took.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.list()
    }

    fn publish(&self, inner: &mut Inner) {
        if inner.events.is_empty() {
            return;
        }
        for ev in inner.events.drain(..) {
            match ev.event {
                crate::AlertState::Raised => self.metrics.raised.inc(),
                crate::AlertState::Acknowledged => self.metrics.acknowledged.inc(),
                crate::AlertState::Cleared => self.metrics.cleared.inc(),
            };
            // No subscriber is not an error; publishing never waits.
            let _ = self.tx.send(Arc::new(ev));
        }
        let s = inner.alerts.suppressed;
        let before = self.last_suppressed.swap(s, Ordering::Relaxed);
        self.metrics.suppressed.inc_by(s.saturating_sub(before));
    }

    fn apply(&self, inner: &mut Inner, now: Timestamp) {
        if inner.scratch.is_empty() {
            return;
        }
        let t = std::mem::take(&mut inner.scratch);
        let Inner { alerts, events, .. } = inner;
        alerts.apply(t, now, events);
        self.publish(inner);
    }

    /// Evaluates entities directly (what the engine observer does), for tests and tools.
    pub fn observe(&self, entities: &[&Entity], now: Timestamp) {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        for e in entities {
            inner
                .eval
                .observe(&Observation::from_entity(e), now, &mut inner.scratch);
        }
        self.metrics.evaluated.inc_by(entities.len() as u64);
        let u = inner.eval.stats().untracked;
        let before = self.last_untracked.swap(u, Ordering::Relaxed);
        if u > before {
            self.metrics.untracked.inc_by(u - before);
        }
        self.apply(inner, now);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Raises (or clears) alerts found outside the evaluator, such as the spoofing, flood and
    /// jamming detections of `rampart-guard`, through the same lifecycle, suppression,
    /// persistence and channel as rule alerts. Safe to call inside the engine's write lock
    /// (the lock order is engine, then rules).
    pub fn raise_external(&self, transitions: Vec<Transition>, now: Timestamp) {
        if transitions.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        inner.scratch.extend(transitions);
        self.apply(&mut inner, now);
    }

    /// Runs the time-based triggers at `now`.
    pub fn tick(&self, now: Timestamp) {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        inner.eval.tick(now, &mut inner.scratch);
        if !inner.scratch.is_empty() {
            self.dirty.store(true, Ordering::Relaxed);
        }
        self.apply(inner, now);
    }

    // ---- alerts ----

    /// Alerts matching `q`, newest first.
    pub fn alerts(&self, q: &AlertQuery) -> Vec<Alert> {
        self.inner.lock().alerts.list(q)
    }

    /// Alerts matching `q` that `visible` admits (a reader's clearance), newest first; the
    /// limit counts only visible alerts.
    pub fn alerts_where(&self, q: &AlertQuery, visible: impl Fn(&Alert) -> bool) -> Vec<Alert> {
        self.inner.lock().alerts.list_where(q, visible)
    }

    /// One alert.
    pub fn alert(&self, id: u64) -> Option<Alert> {
        self.inner.lock().alerts.get(id).cloned()
    }

    /// Acknowledges alert `id` for `who`; returns the alert.
    pub fn ack(&self, id: u64, who: &str) -> Result<Alert, AckError> {
        self.ack_where(id, who, |_| true)
    }

    /// Acknowledges alert `id` for `who` if `visible` admits it; an alert it does not admit
    /// is [`AckError::NotFound`], so a reader cannot learn that it exists.
    pub fn ack_where(
        &self,
        id: u64,
        who: &str,
        visible: impl Fn(&Alert) -> bool,
    ) -> Result<Alert, AckError> {
        let mut inner = self.inner.lock();
        if inner.alerts.get(id).is_some_and(|a| !visible(a)) {
            return Err(AckError::NotFound(id));
        }
        let now = Timestamp::now();
        if let Some(ev) = inner.alerts.ack(id, who, now)? {
            inner.events.push(ev);
            self.publish(&mut inner);
        }
        inner.alerts.get(id).cloned().ok_or(AckError::NotFound(id))
    }

    /// Clears alert `id` by hand; returns the alert.
    pub fn clear(&self, id: u64) -> Result<Alert, AckError> {
        self.clear_where(id, |_| true)
    }

    /// Clears alert `id` by hand if `visible` admits it (otherwise [`AckError::NotFound`]).
    pub fn clear_where(
        &self,
        id: u64,
        visible: impl Fn(&Alert) -> bool,
    ) -> Result<Alert, AckError> {
        let mut inner = self.inner.lock();
        if inner.alerts.get(id).is_some_and(|a| !visible(a)) {
            return Err(AckError::NotFound(id));
        }
        let now = Timestamp::now();
        if let Some(ev) = inner.alerts.clear(id, now)? {
            inner.events.push(ev);
            self.publish(&mut inner);
        }
        inner.alerts.get(id).cloned().ok_or(AckError::NotFound(id))
    }

    // ---- definitions ----

    /// Every geofence, by id.
    pub fn geofences(&self) -> Vec<Geofence> {
        self.inner.lock().fences.values().cloned().collect()
    }

    /// One geofence.
    pub fn geofence(&self, id: &str) -> Option<Geofence> {
        self.inner.lock().fences.get(id).cloned()
    }

    /// Every rule, by id.
    pub fn rules(&self) -> Vec<Rule> {
        self.inner.lock().rules.values().cloned().collect()
    }

    /// One rule.
    pub fn rule(&self, id: &str) -> Option<Rule> {
        self.inner.lock().rules.get(id).cloned()
    }

    /// Creates geofences (`replace = false`: an existing id is an error) or creates/replaces
    /// them (`replace = true`), all or none. Ids left empty are assigned. Returns them.
    pub fn put_geofences(
        &self,
        mut fences: Vec<Geofence>,
        replace: bool,
    ) -> Result<Vec<Geofence>, RulesError> {
        for (i, g) in fences.iter().enumerate() {
            g.validate(&self.cfg.limits).map_err(|e| {
                if fences.len() > 1 {
                    DefError::new(format!("[{i}].{}", e.field), e.reason)
                } else {
                    e
                }
            })?;
        }
        let _w = self.defs_write.lock();
        let items = self.prime_items();
        let defs = {
            let mut inner = self.inner.lock();
            let mut seq = inner.next_seq;
            for g in &mut fences {
                if g.id.is_empty() {
                    seq += 1;
                    g.id = format!("gf-{seq}");
                    while inner.fences.contains_key(&g.id) {
                        seq += 1;
                        g.id = format!("gf-{seq}");
                    }
                } else if !replace && inner.fences.contains_key(&g.id) {
                    return Err(RulesError::Exists("geofence", g.id.clone()));
                }
            }
            let added = fences
                .iter()
                .filter(|g| !inner.fences.contains_key(&g.id))
                .count();
            if inner.fences.len() + added > self.cfg.max_geofences {
                return Err(RulesError::Full(format!(
                    "at most {} geofences (max_geofences)",
                    self.cfg.max_geofences
                )));
            }
            inner.next_seq = seq;
            for g in &fences {
                inner.fences.insert(g.id.clone(), g.clone());
            }
            self.rebuild(&mut inner);
            Self::prime(&mut inner, &items);
            snapshot_defs(&inner)
        };
        self.save_defs(&defs)?;
        Ok(fences)
    }

    /// Creates (or with `replace`, creates/replaces) a rule. Returns it with its id.
    pub fn put_rules(&self, mut rules: Vec<Rule>, replace: bool) -> Result<Vec<Rule>, RulesError> {
        for (i, r) in rules.iter().enumerate() {
            r.validate(&self.cfg.limits).map_err(|e| {
                if rules.len() > 1 {
                    DefError::new(format!("[{i}].{}", e.field), e.reason)
                } else {
                    e
                }
            })?;
            if matches!(
                r.id.as_str(),
                "emergency" | "sos" | "spoofing" | "flood" | "jamming"
            ) {
                return Err(DefError::new(
                    "id",
                    format!("{:?} is reserved for built-in alerts", r.id),
                )
                .into());
            }
        }
        let _w = self.defs_write.lock();
        let items = self.prime_items();
        let defs = {
            let mut inner = self.inner.lock();
            let mut seq = inner.next_seq;
            for r in &mut rules {
                if r.id.is_empty() {
                    seq += 1;
                    r.id = format!("rule-{seq}");
                    while inner.rules.contains_key(&r.id) {
                        seq += 1;
                        r.id = format!("rule-{seq}");
                    }
                } else if !replace && inner.rules.contains_key(&r.id) {
                    return Err(RulesError::Exists("rule", r.id.clone()));
                }
            }
            let added = rules
                .iter()
                .filter(|r| !inner.rules.contains_key(&r.id))
                .count();
            if inner.rules.len() + added > self.cfg.max_rules {
                return Err(RulesError::Full(format!(
                    "at most {} rules (max_rules)",
                    self.cfg.max_rules
                )));
            }
            inner.next_seq = seq;
            for r in &rules {
                inner.rules.insert(r.id.clone(), r.clone());
            }
            self.rebuild(&mut inner);
            Self::prime(&mut inner, &items);
            snapshot_defs(&inner)
        };
        self.save_defs(&defs)?;
        Ok(rules)
    }

    /// Deletes a geofence; its active alerts clear.
    pub fn delete_geofence(&self, id: &str) -> Result<(), RulesError> {
        validate_id(id, self.cfg.limits.max_text_len)?;
        let _w = self.defs_write.lock();
        let defs = {
            let mut inner = self.inner.lock();
            if inner.fences.remove(id).is_none() {
                return Err(RulesError::NotFound("geofence", id.to_string()));
            }
            self.rebuild(&mut inner);
            snapshot_defs(&inner)
        };
        self.save_defs(&defs)
    }

    /// Deletes a rule; its active alerts clear.
    pub fn delete_rule(&self, id: &str) -> Result<(), RulesError> {
        validate_id(id, self.cfg.limits.max_text_len)?;
        let _w = self.defs_write.lock();
        let defs = {
            let mut inner = self.inner.lock();
            if inner.rules.remove(id).is_none() {
                return Err(RulesError::NotFound("rule", id.to_string()));
            }
            self.rebuild(&mut inner);
            snapshot_defs(&inner)
        };
        self.save_defs(&defs)
    }

    /// The live entities, copied, when the evaluator is idle (so the first definitions see
    /// entities that are already silent). Called without the inner lock held.
    fn prime_items(&self) -> Vec<PrimeItem> {
        if !self.inner.lock().eval.is_idle() {
            return Vec::new();
        }
        let Some(engine) = self.engine.get().and_then(Weak::upgrade) else {
            return Vec::new();
        };
        let picture = engine.picture();
        picture
            .iter()
            .map(|e| {
                (
                    e.uid.clone(),
                    e.cot_type.clone(),
                    e.callsign.clone(),
                    e.lat,
                    e.lon,
                    e.received,
                    e.label.clone(),
                )
            })
            .collect()
    }

    fn prime(inner: &mut Inner, items: &[PrimeItem]) {
        for (uid, cot_type, callsign, lat, lon, received, label) in items {
            let obs = Observation {
                uid,
                cot_type,
                callsign: callsign.as_deref(),
                lat: *lat,
                lon: *lon,
                speed: None,
                course: None,
                hae: None,
                attributes: None,
                label,
            };
            inner.eval.prime(&obs, *received);
        }
    }

    fn rebuild(&self, inner: &mut Inner) {
        let fences: Vec<Geofence> = inner.fences.values().cloned().collect();
        let rules: Vec<Rule> = inner.rules.values().cloned().collect();
        let Inner { eval, scratch, .. } = inner;
        eval.set_definitions(&fences, &rules, scratch);
        self.apply(inner, Timestamp::now());
    }

    fn save_defs(&self, defs: &Definitions) -> Result<(), RulesError> {
        let Some(d) = &self.dir else { return Ok(()) };
        let bytes = serde_json::to_vec(defs).map_err(|e| RulesError::Storage(e.to_string()))?;
        store::write_atomic(&d.join("definitions.json"), &bytes)
            .map_err(|e| RulesError::Storage(e.to_string()))
    }

    // ---- persistence ----

    fn start_persistence(self: &Arc<Self>) -> Result<(), String> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        // Compact the alert log now: one line per alert.
        let all = self.inner.lock().alerts.all();
        let compact = |all: &[Alert]| -> std::io::Result<()> {
            let mut buf = Vec::new();
            for a in all {
                let ev = AlertEvent {
                    event: a.state,
                    alert: a.clone(),
                };
                serde_json::to_writer(&mut buf, &ev).map_err(std::io::Error::other)?;
                buf.push(b'\n');
            }
            store::write_atomic(&dir.join("alerts.jsonl"), &buf)
        };
        compact(&all)
            .map_err(|e| format!("writing {}: {e}", dir.join("alerts.jsonl").display()))?;
        let mut log = LineLog::open(&dir.join("alerts.jsonl"), all.len())
            .map_err(|e| format!("opening the alert log: {e}"))?;
        let max_lines = 2 * (self.cfg.alerts.max_active + self.cfg.alerts.max_closed).max(1000);
        let mut rx = self.subscribe();
        let weak: Weak<RulesService> = Arc::downgrade(self);
        let log_dir = dir.clone();
        std::thread::Builder::new()
            .name("rampart-alert-log".into())
            .spawn(move || {
                let mut batch: Vec<Arc<AlertEvent>> = Vec::new();
                loop {
                    let mut resync = false;
                    match rx.blocking_recv() {
                        Ok(ev) => batch.push(ev),
                        Err(broadcast::error::RecvError::Lagged(_)) => resync = true,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    loop {
                        match rx.try_recv() {
                            Ok(ev) => batch.push(ev),
                            Err(broadcast::error::TryRecvError::Lagged(_)) => resync = true,
                            Err(_) => break,
                        }
                    }
                    if resync || log.lines + batch.len() > max_lines {
                        let Some(svc) = weak.upgrade() else { return };
                        let all = svc.inner.lock().alerts.all();
                        drop(svc);
                        let path = log_dir.join("alerts.jsonl");
                        let mut buf = Vec::new();
                        for a in &all {
                            let ev = AlertEvent {
                                event: a.state,
                                alert: a.clone(),
                            };
                            if serde_json::to_writer(&mut buf, &ev).is_ok() {
                                buf.push(b'\n');
                            }
                        }
                        match store::write_atomic(&path, &buf)
                            .and_then(|_| LineLog::open(&path, all.len()))
                        {
                            Ok(l) => log = l,
                            Err(e) => {
                                tracing::error!(error = %e, "compacting the alert log failed")
                            }
                        }
                        batch.clear();
                        continue;
                    }
                    let items: Vec<&AlertEvent> = batch.iter().map(|e| &**e).collect();
                    if let Err(e) = log.append(&items) {
                        tracing::error!(error = %e, "appending to the alert log failed");
                    }
                    batch.clear();
                }
            })
            .map_err(|e| format!("starting the alert log thread: {e}"))?;
        let weak: Weak<RulesService> = Arc::downgrade(self);
        let every = Duration::from_millis(self.cfg.state_save_interval_ms.max(10));
        std::thread::Builder::new()
            .name("rampart-rule-state".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(svc) = weak.upgrade() else { return };
                    if svc.dirty.swap(false, Ordering::Relaxed)
                        && let Err(e) = svc.save_state()
                    {
                        tracing::error!(error = %e, "saving the rule state failed");
                    }
                }
            })
            .map_err(|e| format!("starting the rule state thread: {e}"))?;
        Ok(())
    }

    /// Saves the per-entity state now.
    pub fn save_state(&self) -> Result<(), String> {
        let Some(d) = &self.dir else { return Ok(()) };
        // One writer at a time, so an older snapshot never replaces a newer one.
        let _w = self.state_write.lock();
        let entities = self.inner.lock().eval.snapshot();
        let file = StateFile {
            saved_at: Timestamp::now().millis(),
            entities,
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        store::write_atomic(&d.join("state.json"), &bytes).map_err(|e| e.to_string())
    }
}

fn snapshot_defs(inner: &Inner) -> Definitions {
    Definitions {
        geofences: inner.fences.values().cloned().collect(),
        rules: inner.rules.values().cloned().collect(),
        next_seq: inner.next_seq,
    }
}

impl BatchObserver for RulesService {
    fn on_batch(&self, entities: &[&Entity], now: Timestamp) {
        self.observe(entities, now);
    }

    fn on_removed(&self, uids: &[Uid], now: Timestamp) {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        for u in uids {
            inner.eval.remove(u, &mut inner.scratch);
        }
        self.apply(inner, now);
        self.dirty.store(true, Ordering::Relaxed);
    }

    fn on_tick(&self, now: Timestamp) {
        self.tick(now);
    }
}
