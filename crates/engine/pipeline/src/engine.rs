//! The engine: the single place where reports become durable history and live state.
//!
//! One `RwLock` guards the picture and the idempotency memory together. Ingest takes it for
//! writing once per batch, so a batch is deduplicated, appended to history and folded as one
//! step, and history order always matches fold order. Queries take it for reading. The lock is
//! never held while waiting for the disk: a batch is acknowledged after the lock is released,
//! when the group commit that holds it has been fsynced.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rampart_history::{HistoryError, HistoryStore, Ticket};
use rampart_model::{Entity, Report, ReportId, Timestamp, Uid};
use rampart_picture::{Change, FoldOutcome, Picture, PictureConfig, Query};
use tokio::sync::broadcast;

use crate::bus::{Delta, EntityUpdate, Interest, Interests, Subscription, Wanted};
use crate::dedup::{Dedup, DedupConfig, DedupVerdict};
use crate::metrics::{Metrics, SourceLabel};

/// Engine settings. Every bound is named here so the command line can set it.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Live picture settings (spatial grid, entity bound, stale grace, defaults).
    pub picture: PictureConfig,
    /// Idempotency memory bounds.
    pub dedup: DedupConfig,
    /// How often entities are checked for staleness and removal.
    pub sweep_interval: Duration,
    /// How often history retention runs.
    pub retention_interval: Duration,
    /// Delta batches buffered for subscribers before a slow one must resynchronise.
    pub fanout_capacity: usize,
    /// A report whose `time` is further than this ahead of the server clock is rejected: it
    /// would otherwise freeze its entity, since the newest time always wins.
    pub max_future_ms: i64,
    /// The label policy: the default label of each source and the configured levels. A report
    /// without a label gets its source's default before it is stored, so history keeps the
    /// label each point had; a label naming an unknown level is refused.
    pub labels: Arc<rampart_labels::Policy>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            picture: PictureConfig::default(),
            dedup: DedupConfig::default(),
            sweep_interval: Duration::from_secs(1),
            retention_interval: Duration::from_secs(60),
            fanout_capacity: 1024,
            max_future_ms: 3_600_000,
            labels: Arc::new(rampart_labels::Policy::open()),
        }
    }
}

/// Why the engine could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The history store failed; nothing in the batch was acknowledged.
    #[error("history store unavailable: {0}")]
    Storage(#[from] HistoryError),
    /// The history store failed while the batch waited for its commit.
    #[error("history store failed before the batch was durable")]
    CommitFailed,
}

/// One report of a batch the engine refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// Position in the submitted batch.
    pub index: usize,
    /// The field at fault.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// What happened to a submitted batch. Everything counted in `accepted`, `late` and
/// `duplicates` is durable once the receipt is returned by [`Engine::ingest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestReceipt {
    /// Reports stored in history (including late ones).
    pub accepted: usize,
    /// Of those, reports older than their entity's current state: stored, not folded.
    pub late: usize,
    /// Reports whose id was seen before: acknowledged, not stored again.
    pub duplicates: usize,
    /// Reports refused by the engine, with the reason.
    pub rejected: Vec<Rejection>,
    /// The history commit ticket covering the batch.
    #[serde(skip)]
    pub ticket: Ticket,
}

/// The seam between sources and the engine. Edges submit decoded, validated reports here;
/// the future resolves once they are durable. A cluster deployment implements it with a
/// JetStream publisher instead of the local engine.
pub trait ReportSink: Send + Sync {
    /// Submits a batch and resolves when it is durable.
    fn submit(
        &self,
        reports: Vec<Report>,
    ) -> Pin<Box<dyn Future<Output = Result<IngestReceipt, EngineError>> + Send + '_>>;

    /// Submits a batch without waiting for durability, for protocols that acknowledge
    /// nothing (CoT streams, UDP feeds). The reports are durable at the next group commit.
    fn submit_unacked(&self, reports: Vec<Report>) -> Result<IngestReceipt, EngineError>;

    /// [`ReportSink::submit_unacked`] unless that would wait for another batch: then `Ok(Err)`
    /// hands the reports back, for the caller to submit later with more. The default always
    /// submits.
    #[allow(clippy::type_complexity)]
    fn try_submit_unacked(
        &self,
        reports: Vec<Report>,
    ) -> Result<Result<IngestReceipt, Vec<Report>>, EngineError> {
        self.submit_unacked(reports).map(Ok)
    }

    /// Resolves once everything up to `ticket` (from [`ReportSink::submit_unacked`]) is
    /// durable. With the two, a source appends batches in its own order and still waits for
    /// durability without blocking the next batch.
    fn wait_durable(
        &self,
        ticket: rampart_history::Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EngineError>> + Send + '_>>;
}

/// Sees every folded batch, inside the engine's write lock and in fold order, before the
/// deltas are fanned out: the seam the rules engine plugs into. Implementations must be
/// quick and must never block on I/O (ingest waits for them).
pub trait BatchObserver: Send + Sync {
    /// Entities created or updated by a batch (late reports excluded), in their state after
    /// the batch. An entity updated several times in the batch appears once per report.
    fn on_batch(&self, entities: &[&Entity], now: Timestamp);

    /// Entities dropped from the live picture after their stale grace period.
    fn on_removed(&self, _uids: &[Uid], _now: Timestamp) {}

    /// Called after each stale sweep (every `sweep_interval`), outside the engine lock, for
    /// time-based triggers.
    fn on_tick(&self, _now: Timestamp) {}
}

/// What a [`ReportScreen`] decided about one report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScreenVerdict {
    /// Take the report.
    Accept,
    /// Implausible (e.g. impossible kinematics): refused as field `kinematics`, neither stored
    /// nor folded; the screen keeps it aside for review.
    Quarantine(String),
    /// The sender is far over its rate: refused as field `rate`, neither stored nor folded.
    Throttle(String),
}

/// Screens each report before it is stored: the seam spoofing and flood detection
/// (`rampart-guard`) plugs into. Called inside the engine's write lock, after the label, time
/// and idempotency checks; implementations must be quick and never block on I/O.
pub trait ReportScreen: Send + Sync {
    /// Judges `report` given its entity's live state (`current`) and the last report of the
    /// same uid kept earlier in the same batch (`earlier`), if any.
    fn screen(
        &self,
        report: &Report,
        current: Option<&Entity>,
        earlier: Option<&Report>,
        now: Timestamp,
    ) -> ScreenVerdict;

    /// Entities the stale sweep just marked stale (for loss-of-fix detection).
    fn on_stale(&self, _entities: &[&Entity], _now: Timestamp) {}
}

struct State {
    picture: Picture,
    dedup: Dedup,
    /// Ticket of the newest append; duplicates wait for it so an acknowledgement of a
    /// retry never overtakes the durability of the original.
    last_ticket: Ticket,
}

/// The report pipeline: dedup → history → live picture → fan-out.
pub struct Engine {
    cfg: EngineConfig,
    state: RwLock<State>,
    history: Arc<dyn HistoryStore>,
    bus: broadcast::Sender<Arc<Delta>>,
    /// Declared interests of filtered subscriptions (see [`Engine::subscribe_with`]).
    interests: Arc<Interests>,
    metrics: Arc<Metrics>,
    observer: OnceLock<Arc<dyn BatchObserver>>,
    screen: OnceLock<Arc<dyn ReportScreen>>,
}

impl Engine {
    /// Opens the engine over `history`, rebuilding the live picture and the idempotency memory
    /// by replaying every retained report.
    pub fn open(
        cfg: EngineConfig,
        history: Arc<dyn HistoryStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Engine>, EngineError> {
        let now = Timestamp::now();
        let mut picture = Picture::new(cfg.picture.clone());
        let mut dedup = Dedup::new(cfg.dedup.clone());
        let started = Instant::now();
        let replayed = history.replay(&mut |r: Report| {
            if let Some(id) = &r.id {
                dedup.insert(id);
            }
            picture.fold(&r, r.time, now);
        })?;
        let mut changes = Vec::new();
        picture.sweep(now, &mut changes);
        tracing::info!(
            replayed,
            entities = picture.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "live picture rebuilt from history"
        );
        let (bus, _) = broadcast::channel(cfg.fanout_capacity.max(1));
        let engine = Arc::new(Engine {
            cfg,
            state: RwLock::new(State {
                picture,
                dedup,
                last_ticket: 0,
            }),
            history,
            bus,
            interests: Arc::default(),
            metrics,
            observer: OnceLock::new(),
            screen: OnceLock::new(),
        });
        engine.refresh_gauges();
        Ok(engine)
    }

    /// Attaches the batch observer (the rules engine). There is at most one; a second call
    /// returns the observer back as the error.
    pub fn set_observer(
        &self,
        observer: Arc<dyn BatchObserver>,
    ) -> Result<(), Arc<dyn BatchObserver>> {
        self.observer.set(observer)
    }

    /// Attaches the report screen (spoofing and flood detection). There is at most one; a
    /// second call returns the screen back as the error.
    pub fn set_screen(&self, screen: Arc<dyn ReportScreen>) -> Result<(), Arc<dyn ReportScreen>> {
        self.screen.set(screen)
    }

    /// Metrics shared with the edges.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The history store.
    pub fn history(&self) -> &Arc<dyn HistoryStore> {
        &self.history
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Read access to the live picture. Hold it briefly: ingest waits while it is held.
    pub fn picture(&self) -> MappedRwLockReadGuard<'_, Picture> {
        RwLockReadGuard::map(self.state.read(), |s| &s.picture)
    }

    /// Subscribes to the live picture: a snapshot of the entities matching `filter`, taken
    /// atomically with the start of the delta stream so nothing is missed or doubled.
    pub fn subscribe(&self, filter: &Query) -> Subscription {
        let state = self.state.read();
        let deltas = self.bus.subscribe();
        let snapshot = state.picture.query(filter).into_iter().cloned().collect();
        Subscription {
            _interest: None,
            snapshot,
            deltas,
        }
    }

    /// Like [`Engine::subscribe`], declaring which updates the subscriber wants. When every
    /// subscriber declared an interest and none wants any entity a batch updated, the batch
    /// publishes no `Updated` delta (and clones no entity). Deltas built for other subscribers
    /// still carry every updated entity: the subscriber must filter them itself. Keep the
    /// returned subscription whole while using it.
    pub fn subscribe_with(&self, filter: &Query, interest: Interest) -> Subscription {
        // Registered under the read lock, like the receiver, so a batch sees both or neither.
        let state = self.state.read();
        let guard = self.interests.register(interest);
        let deltas = self.bus.subscribe();
        let snapshot = state.picture.query(filter).into_iter().cloned().collect();
        Subscription {
            _interest: Some(guard),
            snapshot,
            deltas,
        }
    }

    /// Deduplicates, appends and folds a batch, without waiting for durability. Returns the
    /// receipt whose `ticket` [`Engine::wait_durable`] waits for.
    pub fn ingest_now(
        &self,
        reports: Vec<Report>,
        now: Timestamp,
    ) -> Result<IngestReceipt, EngineError> {
        self.ingest_locked(self.state.write(), reports, now)
    }

    /// [`Engine::ingest_now`] if no other batch holds the engine; otherwise the reports come
    /// back untouched, so a stream source can parse more input meanwhile and submit one
    /// larger batch instead of waiting.
    pub fn try_ingest_now(
        &self,
        reports: Vec<Report>,
        now: Timestamp,
    ) -> Result<Result<IngestReceipt, Vec<Report>>, EngineError> {
        match self.state.try_write() {
            Some(state) => self.ingest_locked(state, reports, now).map(Ok),
            None => Ok(Err(reports)),
        }
    }

    fn ingest_locked(
        &self,
        mut state: RwLockWriteGuard<'_, State>,
        reports: Vec<Report>,
        now: Timestamp,
    ) -> Result<IngestReceipt, EngineError> {
        let mut receipt = IngestReceipt::default();
        let State {
            picture,
            dedup,
            last_ticket,
        } = &mut *state;

        // 1. Idempotency and capacity checks. Ids are remembered only after the append
        //    succeeds, so a failed append never turns a retry into a "duplicate".
        let has_ids = reports.iter().any(|r| r.id.is_some());
        let mut batch_ids: HashSet<ReportId> = HashSet::new();
        let max_entities = self.cfg.picture.max_entities;
        let near_full = picture.len() + reports.len() >= max_entities;
        let mut new_uids: HashSet<Uid> = HashSet::new();
        let mut keep: Vec<Report> = Vec::with_capacity(reports.len());
        let latest_allowed = now.plus_millis(self.cfg.max_future_ms);
        let labels = &self.cfg.labels;
        let screen = self.screen.get();
        // The last kept report per uid, so the screen judges movement within a batch too.
        let mut batch_last: HashMap<Uid, usize> = HashMap::new();
        for (index, mut r) in reports.into_iter().enumerate() {
            match &r.label {
                None => r.label = Some(labels.source_default(&r.provenance.source).clone()),
                Some(l) => {
                    if let Err(e) = labels.levels.validate(l) {
                        receipt.rejected.push(Rejection {
                            index,
                            field: "label.classification".into(),
                            reason: e.to_string(),
                        });
                        continue;
                    }
                }
            }
            if r.time > latest_allowed {
                receipt.rejected.push(Rejection {
                    index,
                    field: "time".into(),
                    reason: format!(
                        "{} is more than {} s ahead of the server clock",
                        r.time,
                        self.cfg.max_future_ms / 1000
                    ),
                });
                continue;
            }
            if has_ids && let Some(id) = &r.id {
                match dedup.check(id) {
                    DedupVerdict::Duplicate => {
                        receipt.duplicates += 1;
                        continue;
                    }
                    DedupVerdict::TooManySources => {
                        receipt.rejected.push(Rejection {
                            index,
                            field: "id.source".into(),
                            reason: "too many distinct sequence sources; use a client key".into(),
                        });
                        continue;
                    }
                    DedupVerdict::New => {
                        if !batch_ids.insert(id.clone()) {
                            receipt.duplicates += 1;
                            continue;
                        }
                    }
                }
            }
            if let Some(screen) = screen {
                let earlier = batch_last.get(&r.uid).map(|&i| &keep[i]);
                let (field, reason) = match screen.screen(&r, picture.get(&r.uid), earlier, now) {
                    ScreenVerdict::Accept => ("", String::new()),
                    ScreenVerdict::Quarantine(why) => ("kinematics", why),
                    ScreenVerdict::Throttle(why) => ("rate", why),
                };
                if !field.is_empty() {
                    receipt.rejected.push(Rejection {
                        index,
                        field: field.into(),
                        reason,
                    });
                    continue;
                }
            }
            if near_full && picture.get(&r.uid).is_none() && !new_uids.contains(&r.uid) {
                if picture.len() + new_uids.len() >= max_entities {
                    receipt.rejected.push(Rejection {
                        index,
                        field: "uid".into(),
                        reason: format!("the live picture is full ({max_entities} entities)"),
                    });
                    continue;
                }
                new_uids.insert(r.uid.clone());
            }
            if screen.is_some() {
                batch_last.insert(r.uid.clone(), keep.len());
            }
            keep.push(r);
        }

        // 2. History first: what is folded is always what was stored.
        if !keep.is_empty() {
            *last_ticket = self.history.append(&keep)?;
        }
        receipt.ticket = *last_ticket;
        for id in keep.iter().filter_map(|r| r.id.as_ref()) {
            dedup.insert(id);
        }

        // 3. Fold, remembering prior positions only if someone wants the updates. With only
        //    filtered subscribers, a batch whose reports none of them wants (CoT traffic with
        //    only the CoT bridge listening) builds nothing.
        let wanted = self.interests.wanted(self.bus.receiver_count());
        let listening = match &wanted {
            Wanted::Nothing => false,
            Wanted::All => true,
            Wanted::Some(_) => keep.iter().any(|r| wanted.source(&r.provenance.source)),
        };
        let observer = self.observer.get();
        let mut observed: Vec<usize> = Vec::new();
        let mut touched: HashMap<Uid, Option<(f64, f64)>> = HashMap::new();
        for (i, r) in keep.iter().enumerate() {
            if listening && !touched.contains_key(&r.uid) {
                let prev = picture.get(&r.uid).map(|e| (e.lat, e.lon));
                touched.insert(r.uid.clone(), prev);
            }
            match picture.fold(r, now, now) {
                FoldOutcome::Created | FoldOutcome::Updated => {
                    receipt.accepted += 1;
                    if observer.is_some() {
                        observed.push(i);
                    }
                }
                FoldOutcome::Late => {
                    receipt.accepted += 1;
                    receipt.late += 1;
                }
                // Pre-checked above; a race-free single writer makes this unreachable, but a
                // stored report that could not be folded is still in history, so count it.
                FoldOutcome::Full => receipt.accepted += 1,
            }
        }

        // 3b. Rules, on the folded state, before fan-out (no entity is copied).
        if let Some(obs) = observer
            && !observed.is_empty()
        {
            let entities: Vec<&Entity> = observed
                .iter()
                .filter_map(|&i| picture.get(&keep[i].uid))
                .collect();
            obs.on_batch(&entities, now);
        }

        // 4. Fan-out, inside the lock so subscribers see deltas in fold order.
        if listening && !touched.is_empty() {
            let updates: Vec<EntityUpdate> = touched
                .into_iter()
                .filter_map(|(uid, prev)| {
                    picture
                        .get(&uid)
                        .filter(|e| wanted.source(&e.provenance.source))
                        .map(|e| EntityUpdate {
                            entity: e.clone(),
                            prev,
                        })
                })
                .collect();
            // No receivers left is not an error.
            if !updates.is_empty() {
                let _ = self.bus.send(Arc::new(Delta::Updated(updates)));
            }
        }
        drop(state);
        self.count(&keep, &receipt);
        Ok(receipt)
    }

    /// Sets an entity's label outright (an admin's explicit downgrade; the caller audits it)
    /// and fans the change out. Returns the old label, or `None` when no such entity is live.
    /// The new label must name a configured level.
    pub fn set_label(
        &self,
        uid: &str,
        label: &rampart_model::Label,
    ) -> Result<Option<rampart_model::Label>, rampart_labels::LabelError> {
        self.cfg.labels.levels.validate(label)?;
        let mut state = self.state.write();
        let old = state.picture.set_label(uid, label);
        if old.is_some()
            && self.bus.receiver_count() > 0
            && let Some(e) = state.picture.get(uid)
        {
            let update = EntityUpdate {
                entity: e.clone(),
                prev: Some((e.lat, e.lon)),
            };
            let _ = self.bus.send(Arc::new(Delta::Updated(vec![update])));
        }
        Ok(old.map(|l| (*l).clone()))
    }

    fn count(&self, kept: &[Report], receipt: &IngestReceipt) {
        // Batches almost always come from one source: count per run of equal sources.
        let mut i = 0;
        while i < kept.len() {
            let source = &kept[i].provenance.source;
            let run = kept[i..]
                .iter()
                .take_while(|r| r.provenance.source == *source)
                .count();
            self.metrics
                .accepted
                .get_or_create(&SourceLabel {
                    source: source.to_string(),
                })
                .inc_by(run as u64);
            i += run;
        }
        let source = kept
            .first()
            .map(|r| r.provenance.source.to_string())
            .unwrap_or_default();
        if receipt.late > 0 {
            self.metrics
                .late
                .get_or_create(&SourceLabel {
                    source: source.clone(),
                })
                .inc_by(receipt.late as u64);
        }
        if receipt.duplicates > 0 {
            self.metrics
                .duplicates
                .get_or_create(&SourceLabel {
                    source: source.clone(),
                })
                .inc_by(receipt.duplicates as u64);
        }
        if !receipt.rejected.is_empty() {
            self.metrics
                .reject(&source, "engine_refused", receipt.rejected.len() as u64);
        }
    }

    /// Waits until `ticket` is durable.
    pub async fn wait_durable(&self, ticket: Ticket) -> Result<(), EngineError> {
        let mut rx = self.history.durable();
        self.history.expedite(ticket);
        let state = rx
            .wait_for(|d| d.ticket >= ticket || d.failed)
            .await
            .map_err(|_| EngineError::CommitFailed)?;
        if state.failed && state.ticket < ticket {
            return Err(EngineError::CommitFailed);
        }
        Ok(())
    }

    /// Ingests a batch and resolves once it is durable: the acknowledgement point.
    pub async fn ingest(&self, reports: Vec<Report>) -> Result<IngestReceipt, EngineError> {
        let started = Instant::now();
        let receipt = self.ingest_now(reports, Timestamp::now())?;
        self.wait_durable(receipt.ticket).await?;
        self.metrics
            .ingest_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(receipt)
    }

    /// Marks entities stale and drops those past the grace period, publishing the changes.
    pub fn sweep(&self, now: Timestamp) {
        let mut changes = Vec::new();
        let mut state = self.state.write();
        state.picture.sweep(now, &mut changes);
        if let Some(screen) = self.screen.get() {
            let stale: Vec<&Entity> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Stale(uid) => state.picture.get(uid),
                    Change::Removed(_) => None,
                })
                .collect();
            if !stale.is_empty() {
                screen.on_stale(&stale, now);
            }
        }
        if let Some(obs) = self.observer.get() {
            let removed: Vec<Uid> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Removed(uid) => Some(uid.clone()),
                    Change::Stale(_) => None,
                })
                .collect();
            if !removed.is_empty() {
                obs.on_removed(&removed, now);
            }
        }
        if !changes.is_empty() && self.bus.receiver_count() > 0 {
            let mut stale = Vec::new();
            let mut removed = Vec::new();
            for c in changes {
                match c {
                    Change::Stale(uid) => {
                        if let Some(e) = state.picture.get(&uid) {
                            stale.push(e.clone());
                        }
                    }
                    Change::Removed(uid) => removed.push(uid),
                }
            }
            if !stale.is_empty() {
                let _ = self.bus.send(Arc::new(Delta::Stale(stale)));
            }
            if !removed.is_empty() {
                let _ = self.bus.send(Arc::new(Delta::Removed(removed)));
            }
        }
        drop(state);
        if let Some(obs) = self.observer.get() {
            obs.on_tick(now);
        }
        self.refresh_gauges();
    }

    /// Updates the gauges that are cheaper to read than to track.
    pub fn refresh_gauges(&self) {
        let (len, stale) = {
            let p = self.picture();
            (p.len(), p.stale_count())
        };
        self.metrics
            .live_entities
            .set(len.saturating_sub(stale) as i64);
        self.metrics.stale_entities.set(stale as i64);
        let stats = self.history.stats();
        self.metrics.store_bytes.set(stats.bytes as i64);
        self.metrics.store_segments.set(stats.segments as i64);
    }

    /// Starts the background sweeps (staleness every `sweep_interval`, retention every
    /// `retention_interval`). They stop when the engine is dropped.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let sweep_every = self.cfg.sweep_interval;
        let retention_every = self.cfg.retention_interval;
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(sweep_every);
            let mut retention = tokio::time::interval(retention_every);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = sweep.tick() => {
                        let Some(engine) = weak.upgrade() else { return };
                        engine.sweep(Timestamp::now());
                    }
                    _ = retention.tick() => {
                        let Some(engine) = weak.upgrade() else { return };
                        let history = engine.history.clone();
                        drop(engine);
                        let freed = tokio::task::spawn_blocking(move || history.enforce_retention(Timestamp::now())).await;
                        match freed {
                            Ok(Ok(0)) => {}
                            Ok(Ok(bytes)) => tracing::info!(bytes, "history retention freed space"),
                            Ok(Err(e)) => tracing::error!(error = %e, "history retention failed"),
                            Err(e) => tracing::error!(error = %e, "history retention task failed"),
                        }
                    }
                }
            }
        })
    }
}

impl ReportSink for Engine {
    fn submit(
        &self,
        reports: Vec<Report>,
    ) -> Pin<Box<dyn Future<Output = Result<IngestReceipt, EngineError>> + Send + '_>> {
        Box::pin(self.ingest(reports))
    }

    fn submit_unacked(&self, reports: Vec<Report>) -> Result<IngestReceipt, EngineError> {
        self.ingest_now(reports, Timestamp::now())
    }

    fn try_submit_unacked(
        &self,
        reports: Vec<Report>,
    ) -> Result<Result<IngestReceipt, Vec<Report>>, EngineError> {
        self.try_ingest_now(reports, Timestamp::now())
    }

    fn wait_durable(
        &self,
        ticket: rampart_history::Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EngineError>> + Send + '_>> {
        Box::pin(Engine::wait_durable(self, ticket))
    }
}
