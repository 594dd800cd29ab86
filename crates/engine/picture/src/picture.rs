//! The [`Picture`]: entities in a dense slab addressed by `u32` slots, a uid index that stores
//! only slots (the uid itself lives in the slab), the spatial grid, and per-slot sweep
//! deadlines. It owns the fold rules (newest `time` wins), queries, nearest-neighbour search
//! and the stale/removal sweep.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::ops::ControlFlow;
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use rampart_model::{
    AttrValue, Attributes, Entity, EntityState, Label, Provenance, Report, Text, Timestamp, Uid,
};

use crate::geo::{EARTH_RADIUS_M, haversine_m};
use crate::grid::{Cover, DiscCover, Grid, Region};
use crate::intern::Interner;
use crate::query::{Filter, Query};
use crate::{Change, FoldOutcome, PictureConfig};

/// Slots per sweep chunk. The sweep skips a whole chunk when its recorded minimum deadline is
/// in the future, so a sweep over a million entities that are all fresh reads ~1,000 numbers.
const SWEEP_CHUNK: usize = 1024;

/// Deadline of a free slot: never due.
const NO_DEADLINE: i64 = i64::MAX;

/// Slack subtracted from the nearest-neighbour stopping bound so floating-point rounding in
/// cell edges (nanometres) can never stop the search one ring too early.
const RING_BOUND_SLACK_M: f64 = 1e-3;

/// `Slot::cell_idx` of a free slot.
const FREE: u32 = u32::MAX;

/// One slab entry: the entity plus its index inside its grid cell's vector (its cell is
/// recomputed from its position, which saves 8 bytes per entity).
///
/// A free slot holds a tombstone entity (empty uid, shared default values, no heap of its own)
/// and `cell_idx == FREE`. Keeping slots unconditionally initialised, rather than
/// `Option<Slot>`, lets a query hand out `&Entity` for slots the grid lists without reading
/// the slot's memory, which is what makes large box queries cheap.
#[derive(Debug)]
#[repr(align(64))]
struct Slot {
    entity: Entity,
    cell_idx: u32,
}

impl Slot {
    fn occupied(&self) -> Option<&Entity> {
        (self.cell_idx != FREE).then_some(&self.entity)
    }
}

/// How a query finds its candidates.
enum Plan {
    /// The spatial filters cannot match anything.
    Empty,
    /// No spatial filter: scan every entity.
    Scan,
    /// Visit these grid cells.
    Cells(Region),
}

/// A nearest-neighbour candidate, ordered by distance then slot so results are deterministic.
#[derive(Clone, Copy, Debug)]
struct Cand {
    dist: f64,
    slot: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.slot.cmp(&other.slot))
    }
}

/// The live common operating picture. See the crate documentation.
#[derive(Debug)]
pub struct Picture {
    cfg: PictureConfig,
    /// Entities by slot; free slots (listed in `free`) hold tombstones.
    slab: Vec<Slot>,
    /// Free slots, reused last-in first-out. Never longer than `slab`.
    free: Vec<u32>,
    /// uid -> slot. Holds slots only; equality and rehashing read the uid from the slab.
    index: HashTable<u32>,
    hasher: RandomState,
    grid: Grid,
    /// Per slot: when the sweep must next look at it (its stale time while live, its removal
    /// time while stale), in epoch milliseconds.
    deadlines: Vec<i64>,
    /// Per `SWEEP_CHUNK` slots: a lower bound of their deadlines.
    chunk_min: Vec<i64>,
    interner: Interner,
    default_type: Arc<str>,
    default_how: Arc<str>,
    default_label: Arc<Label>,
    /// The provenance of tombstones.
    empty_provenance: Arc<Provenance>,
    len: usize,
    stale: usize,
}

/// The hash of a uid in the index.
fn uid_hash(hasher: &RandomState, uid: &str) -> u64 {
    hasher.hash_one(uid)
}

/// Records slot `i`'s new deadline, lowering its chunk's bound if needed.
fn set_deadline(deadlines: &mut [i64], chunk_min: &mut [i64], i: usize, d: i64) {
    if let Some(slot) = deadlines.get_mut(i) {
        *slot = d;
    }
    if let Some(m) = chunk_min.get_mut(i / SWEEP_CHUNK) {
        *m = (*m).min(d);
    }
}

/// Copies at most `cap` attributes (the first by name) for a new entity.
fn initial_attributes(src: &Attributes, cap: usize) -> Option<Box<Attributes>> {
    if src.is_empty() || cap == 0 {
        return None;
    }
    if src.len() <= cap {
        return Some(Box::new(src.clone()));
    }
    Some(Box::new(
        src.iter()
            .take(cap)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ))
}

/// Merges `src` into `dst`: existing keys are overwritten, new keys added while fewer than
/// `cap` are held, extra new keys dropped.
fn merge_attributes(dst: &mut Option<Box<Attributes>>, src: &Attributes, cap: usize) {
    if src.is_empty() || cap == 0 {
        return;
    }
    let d = dst.get_or_insert_with(Box::default);
    // Both maps are sorted by name: one merge pass overwrites the names `d` has (a sender
    // mostly repeats its names) without a tree search per name, and collects the new ones.
    // Overwrites do not change `d.len()`, so inserting the new names afterwards, in order,
    // keeps the same ones under the cap as inserting them in the pass would.
    let mut new: Vec<(&Text, &AttrValue)> = Vec::new();
    let mut held = d.iter_mut().peekable();
    for (k, v) in src {
        loop {
            match held.peek_mut() {
                Some((hk, hv)) => match hk.as_str().cmp(k.as_str()) {
                    Ordering::Less => {
                        held.next();
                    }
                    Ordering::Equal => {
                        if **hv != *v {
                            **hv = v.clone();
                        }
                        held.next();
                        break;
                    }
                    Ordering::Greater => {
                        new.push((k, v));
                        break;
                    }
                },
                None => {
                    new.push((k, v));
                    break;
                }
            }
        }
    }
    for (k, v) in new {
        if d.len() >= cap {
            break;
        }
        d.insert(k.clone(), v.clone());
    }
}

impl Picture {
    /// An empty picture.
    pub fn new(cfg: PictureConfig) -> Self {
        let mut interner = Interner::new(cfg.max_interned);
        let default_type = interner.str(&cfg.defaults.cot_type);
        let default_how = interner.str(&cfg.defaults.how);
        let default_label = interner.label(&cfg.defaults.label);
        Picture {
            grid: Grid::new(cfg.cell_deg),
            cfg,
            slab: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::default(),
            deadlines: Vec::new(),
            chunk_min: Vec::new(),
            interner,
            default_type,
            default_how,
            default_label,
            empty_provenance: Arc::new(Provenance::default()),
            len: 0,
            stale: 0,
        }
    }

    /// The configuration the picture was built with.
    pub fn config(&self) -> &PictureConfig {
        &self.cfg
    }

    /// The grid cell size actually used (the configured one clamped to a sane range).
    pub fn cell_deg(&self) -> f64 {
        self.grid.cell_deg()
    }

    /// Slot of `uid`, if present.
    fn find(&self, hash: u64, uid: &str) -> Option<usize> {
        let slab = &self.slab;
        self.index
            .find(hash, |&s| {
                // The index holds occupied slots only, so the occupancy flag (on another cache
                // line of the slot) need not be read; a tombstone's empty uid never matches a
                // stored one anyway.
                slab.get(s as usize)
                    .is_some_and(|x| x.entity.uid.as_str() == uid)
            })
            .map(|&s| s as usize)
    }

    /// Folds one validated report. `received` is the server accept time, `now` the current
    /// time, used to decide whether the entity is stale.
    ///
    /// A report older (by `time`) than the entity is [`FoldOutcome::Late`] and changes nothing;
    /// an equal or newer one replaces the position, kinematics, times and provenance, replaces
    /// type/how/callsign/label only when it carries them, and merges attributes.
    pub fn fold(&mut self, r: &Report, received: Timestamp, now: Timestamp) -> FoldOutcome {
        let hash = uid_hash(&self.hasher, &r.uid);
        match self.find(hash, &r.uid) {
            Some(i) => self.update(i, r, received, now),
            None => self.create(hash, r, received, now),
        }
    }

    fn create(
        &mut self,
        hash: u64,
        r: &Report,
        received: Timestamp,
        now: Timestamp,
    ) -> FoldOutcome {
        if self.len >= self.cfg.max_entities {
            return FoldOutcome::Full;
        }
        // A free slot is reused; otherwise the entity is pushed as a new slot below (not via a
        // tombstone, which would cost eight atomic reference-count updates per creation).
        let reuse = self.free.last().map(|&i| i as usize);
        let i = match reuse {
            Some(i) => i,
            None => {
                let i = self.slab.len();
                if i >= u32::MAX as usize {
                    return FoldOutcome::Full;
                }
                self.deadlines.push(NO_DEADLINE);
                if i.is_multiple_of(SWEEP_CHUNK) {
                    self.chunk_min.push(NO_DEADLINE);
                }
                i
            }
        };
        let defaults = &self.cfg.defaults;
        let stale = r.stale_or_default(defaults);
        let state = if stale <= now {
            EntityState::Stale
        } else {
            EntityState::Live
        };
        let entity = Entity {
            uid: r.uid.clone(),
            cot_type: match &r.cot_type {
                Some(t) => self.interner.str(t),
                None => Arc::clone(&self.default_type),
            },
            callsign: r.callsign.clone(),
            lat: r.lat,
            lon: r.lon,
            hae: r.hae,
            ce: r.ce,
            le: r.le,
            course: r.course,
            speed: r.speed,
            how: match &r.how {
                Some(h) => self.interner.str(h),
                None => Arc::clone(&self.default_how),
            },
            time: r.time,
            start: r.start_or_default(),
            stale,
            provenance: self.interner.provenance(&r.provenance),
            attributes: initial_attributes(&r.attributes, self.cfg.max_attributes_per_entity),
            label: match &r.label {
                Some(l) => self.interner.label(l),
                None => Arc::clone(&self.default_label),
            },
            state,
            received,
        };
        let deadline = match state {
            EntityState::Live => stale.0,
            EntityState::Stale => {
                self.stale += 1;
                stale.plus_millis(self.cfg.stale_grace_ms).0
            }
        };
        let cell_idx = self.grid.insert(self.grid.key(r.lat, r.lon), i as u32);
        let slot = Slot { entity, cell_idx };
        if reuse.is_some() {
            self.free.pop();
            if let Some(s) = self.slab.get_mut(i) {
                *s = slot;
            }
        } else {
            self.slab.push(slot);
        }
        set_deadline(&mut self.deadlines, &mut self.chunk_min, i, deadline);
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.insert_unique(hash, i as u32, |&s| {
            // The index only holds occupied slots, so the fallback is unreachable.
            slab.get(s as usize)
                .map_or(0, |x| uid_hash(hasher, &x.entity.uid))
        });
        self.len += 1;
        FoldOutcome::Created
    }

    fn update(&mut self, i: usize, r: &Report, received: Timestamp, now: Timestamp) -> FoldOutcome {
        // `find` only returns occupied slots, so occupancy is not re-checked here.
        let Some(slot) = self.slab.get_mut(i) else {
            // Unreachable: `find` only returns slots inside the slab. Changing nothing is safe.
            return FoldOutcome::Late;
        };
        let e = &mut slot.entity;
        if r.time < e.time {
            return FoldOutcome::Late;
        }
        let old_key = self.grid.key(e.lat, e.lon);
        e.lat = r.lat;
        e.lon = r.lon;
        e.hae = r.hae;
        e.ce = r.ce;
        e.le = r.le;
        e.course = r.course;
        e.speed = r.speed;
        e.time = r.time;
        e.start = r.start_or_default();
        e.stale = r.stale_or_default(&self.cfg.defaults);
        e.received = received;
        // Compare before interning: the common case (same sender, same type) costs no lookup.
        if *e.provenance != r.provenance {
            e.provenance = self.interner.provenance(&r.provenance);
        }
        if let Some(t) = &r.cot_type
            && *e.cot_type != **t
        {
            e.cot_type = self.interner.str(t);
        }
        if let Some(h) = &r.how
            && *e.how != **h
        {
            e.how = self.interner.str(h);
        }
        if let Some(c) = &r.callsign
            && e.callsign.as_ref() != Some(c)
        {
            e.callsign = Some(c.clone());
        }
        // The entity's label is the highest of the reports folded into it (the join of
        // their labels): a later UNCLASSIFIED report never lowers a SECRET track. Only an
        // explicit, audited downgrade (`set_label`) lowers it.
        if let Some(l) = &r.label
            && *e.label != *l
        {
            let joined = self.cfg.levels.join(&e.label, l);
            if joined != *e.label {
                e.label = self.interner.label(&joined);
            }
        }
        merge_attributes(
            &mut e.attributes,
            &r.attributes,
            self.cfg.max_attributes_per_entity,
        );

        let was_stale = e.state == EntityState::Stale;
        let is_stale = e.stale <= now;
        e.state = if is_stale {
            EntityState::Stale
        } else {
            EntityState::Live
        };
        let deadline = if is_stale {
            e.stale.plus_millis(self.cfg.stale_grace_ms).0
        } else {
            e.stale.0
        };
        match (was_stale, is_stale) {
            (false, true) => self.stale += 1,
            (true, false) => self.stale = self.stale.saturating_sub(1),
            _ => {}
        }

        // Touch the grid only when the entity changed cell.
        let new_key = self.grid.key(r.lat, r.lon);
        let mut moved = None;
        if new_key != old_key {
            let old_idx = slot.cell_idx;
            moved = self.grid.remove(old_key, old_idx).map(|m| (m, old_idx));
            slot.cell_idx = self.grid.insert(new_key, i as u32);
        }
        if let Some((m, idx)) = moved
            && let Some(ms) = self.slab.get_mut(m as usize)
        {
            ms.cell_idx = idx;
        }
        set_deadline(&mut self.deadlines, &mut self.chunk_min, i, deadline);
        FoldOutcome::Updated
    }

    /// The entity with this uid.
    pub fn get(&self, uid: &str) -> Option<&Entity> {
        let i = self.find(uid_hash(&self.hasher, uid), uid)?;
        self.entity_at(i)
    }

    /// Sets an entity's label outright: the explicit downgrade (or upgrade) by an admin. The
    /// caller audits it. Returns the old label, or `None` when no such entity is held.
    pub fn set_label(
        &mut self,
        uid: &str,
        label: &rampart_model::Label,
    ) -> Option<Arc<rampart_model::Label>> {
        let i = self.find(uid_hash(&self.hasher, uid), uid)?;
        let new = self.interner.label(label);
        let slot = self.slab.get_mut(i)?;
        if slot.cell_idx == FREE {
            return None;
        }
        Some(std::mem::replace(&mut slot.entity.label, new))
    }

    /// The entity in slot `i`, if the slot is occupied.
    fn entity_at(&self, i: usize) -> Option<&Entity> {
        self.slab.get(i).and_then(Slot::occupied)
    }

    /// The entity in slot `i` without checking occupancy, so without reading the slot: only
    /// for slots taken from the grid, which lists occupied slots only.
    fn grid_entity(&self, i: u32) -> Option<&Entity> {
        self.slab.get(i as usize).map(|s| &s.entity)
    }

    /// A placeholder for a free slot: no heap of its own, only shared values.
    fn tombstone(&self) -> Entity {
        Entity {
            uid: Uid::const_new(""),
            cot_type: Arc::clone(&self.default_type),
            callsign: None,
            lat: 0.0,
            lon: 0.0,
            hae: None,
            ce: None,
            le: None,
            course: None,
            speed: None,
            how: Arc::clone(&self.default_how),
            time: Timestamp(0),
            start: Timestamp(0),
            stale: Timestamp(0),
            provenance: Arc::clone(&self.empty_provenance),
            attributes: None,
            label: Arc::clone(&self.default_label),
            state: EntityState::Live,
            received: Timestamp(0),
        }
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the picture holds no entity.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of entities currently marked stale.
    pub fn stale_count(&self) -> usize {
        self.stale
    }

    /// Number of distinct shared strings, provenances and labels.
    pub fn interned_count(&self) -> usize {
        self.interner.len()
    }

    /// Every entity, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Entity> {
        self.slab.iter().filter_map(Slot::occupied)
    }

    /// Removes an entity. Returns whether it was present.
    pub fn remove(&mut self, uid: &str) -> bool {
        match self.find(uid_hash(&self.hasher, uid), uid) {
            Some(i) => self.remove_slot(i).is_some(),
            None => false,
        }
    }

    fn remove_slot(&mut self, i: usize) -> Option<Entity> {
        let tomb = self.tombstone();
        let s = self.slab.get_mut(i).filter(|s| s.cell_idx != FREE)?;
        let slot = Slot {
            entity: std::mem::replace(&mut s.entity, tomb),
            cell_idx: std::mem::replace(&mut s.cell_idx, FREE),
        };
        let hash = uid_hash(&self.hasher, &slot.entity.uid);
        if let Ok(entry) = self.index.find_entry(hash, |&s| s as usize == i) {
            entry.remove();
        }
        let key = self.grid.key(slot.entity.lat, slot.entity.lon);
        if let Some(m) = self.grid.remove(key, slot.cell_idx)
            && let Some(ms) = self.slab.get_mut(m as usize)
        {
            ms.cell_idx = slot.cell_idx;
        }
        self.free.push(i as u32);
        if let Some(d) = self.deadlines.get_mut(i) {
            *d = NO_DEADLINE;
        }
        self.len -= 1;
        if slot.entity.state == EntityState::Stale {
            self.stale = self.stale.saturating_sub(1);
        }
        Some(slot.entity)
    }

    /// Marks live entities whose stale time is at or before `now` as stale
    /// ([`Change::Stale`]) and removes entities for which `now >= stale + stale_grace_ms`
    /// ([`Change::Removed`]). A live entity already past its removal time is only reported
    /// as removed.
    ///
    /// Cost is proportional to the number of slots whose deadline chunk may be due, not to
    /// the picture size, so calling it every second is cheap.
    pub fn sweep(&mut self, now: Timestamp, out: &mut Vec<Change>) {
        let grace = self.cfg.stale_grace_ms;
        for c in 0..self.chunk_min.len() {
            if self.chunk_min.get(c).is_none_or(|&m| m > now.0) {
                continue;
            }
            let start = c * SWEEP_CHUNK;
            let end = (start + SWEEP_CHUNK).min(self.slab.len());
            let mut min = NO_DEADLINE;
            for i in start..end {
                let due = self.deadlines.get(i).is_some_and(|&d| d <= now.0);
                if due {
                    self.sweep_slot(i, now, grace, out);
                }
                min = min.min(self.deadlines.get(i).copied().unwrap_or(NO_DEADLINE));
            }
            if let Some(m) = self.chunk_min.get_mut(c) {
                *m = min;
            }
        }
    }

    fn sweep_slot(&mut self, i: usize, now: Timestamp, grace: i64, out: &mut Vec<Change>) {
        let (remove_at, state) = match self.entity_at(i) {
            Some(e) => (e.stale.plus_millis(grace), e.state),
            None => {
                if let Some(d) = self.deadlines.get_mut(i) {
                    *d = NO_DEADLINE;
                }
                return;
            }
        };
        if now >= remove_at {
            if let Some(e) = self.remove_slot(i) {
                out.push(Change::Removed(e.uid));
            }
            return;
        }
        if let Some(s) = self.slab.get_mut(i) {
            let e = &mut s.entity;
            if state == EntityState::Live && e.stale <= now {
                e.state = EntityState::Stale;
                self.stale += 1;
                out.push(Change::Stale(e.uid.clone()));
            }
            let d = match e.state {
                EntityState::Live => e.stale.0,
                EntityState::Stale => remove_at.0,
            };
            if let Some(slot) = self.deadlines.get_mut(i) {
                *slot = d;
            }
        }
    }

    fn plan(&self, q: &Query) -> Plan {
        let mut best: Option<Region> = None;
        if let Some(b) = &q.bbox {
            match self.grid.region(b) {
                Some(r) => best = Some(r),
                None => return Plan::Empty,
            }
        }
        if let Some(n) = &q.near {
            match n.bbox().and_then(|b| self.grid.region(&b)) {
                Some(r) => {
                    if best.is_none_or(|b| r.cell_count() < b.cell_count()) {
                        best = Some(r);
                    }
                }
                None => return Plan::Empty,
            }
        }
        best.map_or(Plan::Scan, Plan::Cells)
    }

    /// The entities matching every filter of `q`, at most `q.limit` of them. Order is
    /// unspecified but stable for an unchanged picture.
    pub fn query(&self, q: &Query) -> Vec<&Entity> {
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 || self.len == 0 {
            return out;
        }
        let f = Filter::new(q, &self.cfg.levels);
        match self.plan(q) {
            Plan::Empty => {}
            Plan::Cells(region) => {
                // Cells wholly inside every spatial filter need no per-entity test, and when
                // no other filter is set their entities are returned without reading them.
                let bbox_region = q.bbox.as_ref().and_then(|b| self.grid.region(b));
                let bulk = !f.has_entity_filters();
                let mut disc = q
                    .near
                    .as_ref()
                    .map(|n| DiscCover::new(n, self.grid.cell_deg()));
                let _ = self.grid.visit(&region, |row, col, slots| {
                    let cover = disc
                        .as_mut()
                        .map_or(Cover::Inside, |d| d.classify(row, col));
                    if cover == Cover::Outside {
                        return ControlFlow::Continue(());
                    }
                    let covered = bulk
                        && cover == Cover::Inside
                        && q.bbox
                            .is_none_or(|_| bbox_region.is_some_and(|r| r.is_interior(row, col)));
                    for &slot in slots {
                        let Some(e) = self.grid_entity(slot) else {
                            continue;
                        };
                        if covered || f.matches(e) {
                            out.push(e);
                            if out.len() >= limit {
                                return ControlFlow::Break(());
                            }
                        }
                    }
                    ControlFlow::Continue(())
                });
            }
            Plan::Scan => {
                for e in self.iter() {
                    if f.matches(e) {
                        out.push(e);
                        if out.len() >= limit {
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// The `k` entities nearest to (`lat`, `lon`) by great-circle distance in metres, nearest
    /// first, among those matching every filter of `q` (at most `q.limit` if set).
    ///
    /// Searches rings of grid cells outward from the point's cell and stops once no unvisited
    /// cell can hold anything nearer than the k-th best; when the rings would visit more cells
    /// than are occupied it scans all entities instead.
    pub fn nearest(&self, lat: f64, lon: f64, k: usize, q: &Query) -> Vec<(&Entity, f64)> {
        let k = k.min(q.limit.unwrap_or(usize::MAX)).min(self.len);
        if k == 0 || !lat.is_finite() || !lon.is_finite() {
            return Vec::new();
        }
        let f = Filter::new(q, &self.cfg.levels);
        // A `near` filter around the same point caps how far the search needs to go.
        let cap_m = q
            .near
            .filter(|n| n.lat == lat && n.lon == lon)
            .map_or(f64::INFINITY, |n| n.radius_m);
        let mut best: BinaryHeap<Cand> = BinaryHeap::with_capacity(k + 1);
        let consider = |slot: u32, best: &mut BinaryHeap<Cand>| {
            let Some(e) = self.entity_at(slot as usize) else {
                return;
            };
            if !f.matches_except_near(e) {
                return;
            }
            let dist = haversine_m(lat, lon, e.lat, e.lon);
            if let Some(n) = &q.near {
                let inside = if cap_m.is_finite() {
                    dist <= n.radius_m
                } else {
                    n.contains(e.lat, e.lon)
                };
                if !inside {
                    return;
                }
            }
            let c = Cand { dist, slot };
            if best.len() < k {
                best.push(c);
            } else if best.peek().is_some_and(|top| c < *top) {
                best.pop();
                best.push(c);
            }
        };

        let (rows, cols) = self.grid.dims();
        let (rows, cols) = (i64::from(rows), i64::from(cols));
        let rc = i64::from(self.grid.row(lat));
        let cc = i64::from(self.grid.col(lon));
        let cd = self.grid.cell_deg();
        let occupied = self.grid.occupied() as i64;
        let mut r: i64 = 0;
        loop {
            let side = 2 * r + 1;
            if side > cols || side.saturating_mul(side) > occupied.max(1) {
                // Rings would now cost more than looking at everything once.
                best.clear();
                for i in 0..self.slab.len() {
                    consider(i as u32, &mut best);
                }
                break;
            }
            for dr in -r..=r {
                let row = rc + dr;
                if row < 0 || row >= rows {
                    continue;
                }
                let mut visit_col = |dc: i64| {
                    let col = (cc + dc).rem_euclid(cols);
                    for &slot in self.grid.cell(Grid::key_rc(row as u32, col as u32)) {
                        consider(slot, &mut best);
                    }
                };
                if dr.abs() == r {
                    for dc in -r..=r {
                        visit_col(dc);
                    }
                } else {
                    visit_col(-r);
                    visit_col(r);
                }
            }
            let all_rows = rc - r <= 0 && rc + r >= rows - 1;
            let all_cols = side >= cols;
            if all_rows && all_cols {
                break;
            }
            // Lower bound on the distance to anything outside the visited block.
            let lat_gap = {
                let south = if rc - r <= 0 {
                    f64::INFINITY
                } else {
                    lat - ((rc - r) as f64 * cd - 90.0)
                };
                let north = if rc + r >= rows - 1 {
                    f64::INFINITY
                } else {
                    ((rc + r + 1) as f64 * cd - 90.0) - lat
                };
                south.min(north).max(0.0).to_radians()
            };
            let lon_gap = if all_cols {
                f64::INFINITY
            } else {
                // Edges in unwrapped degrees; the last column may be narrower than `cd` when
                // 360 is not a multiple of it, so wrapped edges are measured from ±180.
                let west = if cc >= r {
                    (cc - r) as f64 * cd - 180.0
                } else {
                    (cc + cols - r) as f64 * cd - 540.0
                };
                let east = if cc + r < cols {
                    ((cc + r + 1) as f64 * cd - 180.0).min(180.0)
                } else {
                    180.0 + (cc + r + 1 - cols) as f64 * cd
                };
                let dl = (lon - west).min(east - lon).max(0.0);
                if dl <= 90.0 {
                    // Distance from the point to the meridian `dl` degrees away.
                    (dl.to_radians().sin() * lat.to_radians().cos())
                        .clamp(-1.0, 1.0)
                        .asin()
                } else {
                    // Beyond 90 degrees of longitude the nearest outside point is the pole.
                    (90.0 - lat.abs()).to_radians()
                }
            };
            let bound = EARTH_RADIUS_M * lat_gap.min(lon_gap) - RING_BOUND_SLACK_M;
            if bound > cap_m {
                break;
            }
            if best.len() == k && best.peek().is_some_and(|top| top.dist <= bound) {
                break;
            }
            r += 1;
        }
        best.into_sorted_vec()
            .into_iter()
            .filter_map(|c| self.entity_at(c.slot as usize).map(|e| (e, c.dist)))
            .collect()
    }

    /// Approximate heap bytes held by the picture, excluding free attributes and shared
    /// values. Walks every entity and cell: meant for benchmarks and occasional metrics.
    pub fn approx_heap_bytes(&self) -> usize {
        let slab = self.slab.capacity() * std::mem::size_of::<Slot>();
        let index = self.index.capacity() * 8 / 7 * (std::mem::size_of::<u32>() + 1);
        let sweep = self.deadlines.capacity() * 8 + self.chunk_min.capacity() * 8;
        let free = self.free.capacity() * 4;
        let uids: usize = self
            .iter()
            .map(|e| {
                if e.uid.is_heap_allocated() {
                    e.uid.capacity()
                } else {
                    0
                }
            })
            .sum();
        slab + index + sweep + free + uids + self.grid.heap_bytes()
    }
}
