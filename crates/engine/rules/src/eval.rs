//! The evaluator: compiled geofences and rules, per-entity rule state, and the transitions
//! (raise / clear) that observations and clock ticks produce. Sans-IO: the caller feeds
//! observations of folded entities with a clock `now`, and applies the transitions to an
//! [`crate::AlertStore`].
//!
//! Cost model, per observation: one hash lookup of the entity's state, one hash lookup of a
//! uniform lon/lat grid cell listing the geofences whose bounding box touches it, an exact
//! containment test per candidate that matches the filter, and a merge of the (small, sorted)
//! inside set. Nothing is allocated unless something changes. Rule filters are matched once
//! per entity and cached until its type or the rules change. Proximity keeps its own grid of
//! the entities that take part in a proximity rule. Time-based triggers (dwell, lost comms,
//! threshold minimum duration) are checked by [`Evaluator::tick`] in one pass over the states.

use std::collections::HashMap;

use rampart_labels::Levels;
use rampart_model::{AttrValue, Attributes, Entity, Label, Text, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertKind, Transition};
use crate::def::{Cmp, Filter, Geofence, Priority, Rule, RuleKind, Shape, Triggers, open_ring};
use crate::geo::{self, Bounds};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Evaluation bounds and grid sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Most entities with rule state; further new entities are not evaluated (and counted).
    pub max_entities: usize,
    /// Cell size of the geofence grid, in degrees.
    pub fence_cell_deg: f64,
    /// A geofence whose bounding box covers more cells than this is checked for every report
    /// instead of being listed in cells.
    pub max_cells_per_fence: usize,
    /// Cell size of the proximity grid, in degrees.
    pub proximity_cell_deg: f64,
    /// Most candidate entities examined by one proximity search.
    pub max_proximity_candidates: usize,
    /// Most simultaneous proximity pairs per entity.
    pub max_pairs_per_entity: usize,
    /// Distance factor above which a proximity pair clears (hysteresis), e.g. 1.05.
    pub proximity_clear_factor: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            max_entities: 2_000_000,
            fence_cell_deg: 0.1,
            max_cells_per_fence: 4096,
            proximity_cell_deg: 0.05,
            max_proximity_candidates: 4096,
            max_pairs_per_entity: 64,
            proximity_clear_factor: 1.05,
        }
    }
}

/// One folded entity as the evaluator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// Entity uid.
    pub uid: &'a str,
    /// CoT type.
    pub cot_type: &'a str,
    /// Callsign, for messages.
    pub callsign: Option<&'a str>,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Speed, m/s.
    pub speed: Option<f64>,
    /// Course, degrees.
    pub course: Option<f64>,
    /// Height, metres.
    pub hae: Option<f64>,
    /// Merged attributes.
    pub attributes: Option<&'a Attributes>,
    /// Security label of the entity; alerts about it carry it.
    pub label: &'a Label,
}

impl<'a> Observation<'a> {
    /// The observation of a live-picture entity.
    pub fn from_entity(e: &'a Entity) -> Self {
        Observation {
            uid: &e.uid,
            cot_type: &e.cot_type,
            callsign: e.callsign.as_deref(),
            lat: e.lat,
            lon: e.lon,
            speed: e.speed,
            course: e.course,
            hae: e.hae,
            attributes: e.attributes.as_deref(),
            label: &e.label,
        }
    }

    fn value(&self, name: &str) -> Option<f64> {
        match name {
            "speed" => self.speed,
            "course" => self.course,
            "hae" | "altitude" if self.hae.is_some() => self.hae,
            _ => match self.attributes?.get(name)? {
                AttrValue::Num(v) => Some(*v),
                AttrValue::Text(t) => t.trim().trim_end_matches('%').parse().ok(),
            },
        }
        .filter(|v: &f64| v.is_finite())
    }

    fn text(&self, name: &str) -> Option<&'a str> {
        match self.attributes?.get(name)? {
            AttrValue::Text(t) => Some(t.as_str()),
            AttrValue::Num(_) => None,
        }
    }
}

/// A filter with its uid list hashed, so matching is O(type prefixes) whatever the list size.
struct CFilter {
    types: Vec<String>,
    uids: std::collections::HashSet<String, foldhash::fast::RandomState>,
}

impl CFilter {
    fn new(f: &Filter) -> CFilter {
        CFilter {
            types: f.types.clone(),
            uids: f.uids.iter().cloned().collect(),
        }
    }

    #[inline]
    fn types_match(&self, cot_type: &str) -> bool {
        self.types.is_empty()
            || self
                .types
                .iter()
                .any(|p| crate::def::type_matches(cot_type, p))
    }

    #[inline]
    fn matches(&self, uid: &str, cot_type: &str) -> bool {
        (self.types.is_empty()
            || self
                .types
                .iter()
                .any(|p| crate::def::type_matches(cot_type, p)))
            && (self.uids.is_empty() || self.uids.contains(uid))
    }
}

/// An exterior ring and its holes, open, `[lon, lat]`.
type PolyRings = (Vec<[f64; 2]>, Vec<Vec<[f64; 2]>>);

enum Geom {
    Polys(Vec<PolyRings>),
    Circle { lat: f64, lon: f64, r: f64 },
    Corridor { line: Vec<[f64; 2]>, half: f64 },
}

struct CFence {
    id: String,
    name: String,
    bounds: Bounds,
    geom: Geom,
    filter: CFilter,
    triggers: Triggers,
    priority: Priority,
}

impl CFence {
    #[inline]
    fn contains(&self, lat: f64, lon: f64) -> bool {
        if !self.bounds.contains(lat, lon) {
            return false;
        }
        match &self.geom {
            Geom::Polys(parts) => parts.iter().any(|(ext, holes)| {
                geo::ring_contains(ext, lon, lat)
                    && !holes.iter().any(|h| geo::ring_contains(h, lon, lat))
            }),
            Geom::Circle {
                lat: clat,
                lon: clon,
                r,
            } => geo::haversine_m(lat, lon, *clat, *clon) <= *r,
            Geom::Corridor { line, half } => geo::polyline_distance_m(line, lat, lon) <= *half,
        }
    }

    fn compile(g: &Geofence) -> Option<CFence> {
        let (geom, bounds) = match &g.shape {
            Shape::Polygon { exterior, holes } => {
                let ext = open_ring(exterior);
                let b = Bounds::of(&ext)?;
                (
                    Geom::Polys(vec![(ext, holes.iter().map(|h| open_ring(h)).collect())]),
                    b,
                )
            }
            Shape::MultiPolygon { polygons } => {
                let mut all = Vec::new();
                let mut parts = Vec::new();
                for p in polygons {
                    let ext = open_ring(&p.exterior);
                    all.extend_from_slice(&ext);
                    parts.push((ext, p.holes.iter().map(|h| open_ring(h)).collect()));
                }
                (Geom::Polys(parts), Bounds::of(&all)?)
            }
            Shape::Circle { center, radius_m } => (
                Geom::Circle {
                    lat: center[1],
                    lon: center[0],
                    r: *radius_m,
                },
                Bounds::around(center[1], center[0], *radius_m * 1.01),
            ),
            Shape::Corridor { line, width_m } => {
                let half = width_m / 2.0;
                (
                    Geom::Corridor {
                        line: line.clone(),
                        half,
                    },
                    Bounds::of(line)?.grow_m(half * 1.01),
                )
            }
        };
        Some(CFence {
            id: g.id.clone(),
            name: if g.name.is_empty() {
                g.id.clone()
            } else {
                g.name.clone()
            },
            bounds,
            geom,
            filter: CFilter::new(&g.filter),
            triggers: g.triggers.clone(),
            priority: g.priority,
        })
    }
}

enum CKind {
    Prox {
        a: CFilter,
        b: CFilter,
        d: f64,
    },
    Lost {
        filter: CFilter,
        after_ms: i64,
    },
    Thr {
        filter: CFilter,
        attribute: String,
        raise: Cmp,
        clear: Option<Cmp>,
        min_ms: i64,
    },
}

struct CRule {
    id: String,
    name: String,
    priority: Priority,
    kind: CKind,
}

const ROLE_A: u8 = 1;
const ROLE_B: u8 = 2;
const ROLE_LOST: u8 = 4;
const ROLE_THR: u8 = 8;

#[derive(Clone, Copy, Debug)]
struct Match {
    rule: u32,
    roles: u8,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Inside {
    fence: u32,
    since: i64,
    dwell_fired: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Pending,
    Raised,
}

#[derive(Clone, Copy, Debug)]
struct Thr {
    rule: u32,
    phase: Phase,
    since: i64,
}

#[derive(Clone, Copy, Debug)]
struct Pair {
    rule: u32,
    other: u32,
    /// Whether this entity is the `a` side.
    is_a: bool,
}

struct EState {
    uid: Text,
    cot_type: Text,
    name: Text,
    generation: u64,
    matched: Vec<Match>,
    prox: bool,
    /// `ROLE_A | ROLE_B` bits it has in any proximity rule.
    prox_roles: u8,
    /// The roles under which it is in the proximity grids (at `prox_cell`).
    prox_in: u8,
    /// Largest distance of the proximity rules it takes part in.
    prox_max_d: f64,
    inside: Vec<Inside>,
    lat: f64,
    lon: f64,
    last_seen: i64,
    lost: Vec<u32>,
    thr: Vec<Thr>,
    callsign: Option<Text>,
    pairs: Vec<Pair>,
    prox_cell: Option<u64>,
    sos: bool,
    emergency: bool,
    /// False while the entity is out of the live picture (kept only for lost comms).
    present: bool,
    /// The last label seen: alerts about it carry it, also after it left the picture.
    label: Label,
}

/// Counters of the evaluator, for metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalStats {
    /// Observations evaluated.
    pub observations: u64,
    /// Observations of new entities not evaluated because `max_entities` was reached.
    pub untracked: u64,
    /// Proximity searches cut short at `max_proximity_candidates`.
    pub proximity_truncated: u64,
}

/// A persisted per-entity state (what must survive a restart: dwell entry times, threshold
/// phases, raised lost-comms alerts).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntitySnapshot {
    /// Entity uid.
    pub uid: String,
    /// Its CoT type.
    pub cot_type: String,
    /// Display name.
    pub name: String,
    /// Last position `[lon, lat]`.
    pub position: [f64; 2],
    /// Last report, ms.
    pub last_seen: i64,
    /// Geofences it is inside: `(fence id, since ms, dwell fired)`.
    #[serde(default)]
    pub inside: Vec<(String, i64, bool)>,
    /// Threshold phases: `(rule id, phase, since ms)`.
    #[serde(default)]
    pub thresholds: Vec<(String, String, i64)>,
    /// Lost-comms rules raised.
    #[serde(default)]
    pub lost: Vec<String>,
    /// SOS flag seen.
    #[serde(default)]
    pub sos: bool,
    /// Emergency raised by this entity's events.
    #[serde(default)]
    pub emergency: bool,
    /// Its last security label (alerts raised after a restart carry it). State saved before
    /// labels existed reads as `UNCLASSIFIED`.
    #[serde(default)]
    pub label: Label,
}

/// Geofences, rules and per-entity state.
pub struct Evaluator {
    cfg: EvalConfig,
    fences: Vec<CFence>,
    large: Vec<u32>,
    /// Geofences by grid cell, with their bounding boxes inline (tested without touching the
    /// geofence itself).
    grid: FastMap<u64, Vec<CellFence>>,
    counts: Vec<u32>,
    count_raised: Vec<bool>,
    rules: Vec<CRule>,
    prox_rules: Vec<u32>,
    /// Rule filters by listed uid: `(rule, role)`.
    uid_rules: FastMap<String, Vec<(u32, u8)>>,
    /// Rule filters without a uid list: `(rule, role)`.
    generic_rules: Vec<(u32, u8)>,
    generation: u64,
    index: FastMap<Text, u32>,
    states: Vec<Option<EState>>,
    free: Vec<u32>,
    /// Proximity participants by cell: `[0]` those with an `a` role, `[1]` a `b` role.
    prox_grids: ProxGrids,
    scratch: Vec<u32>,
    stats: EvalStats,
    /// Classification order, for the join of two entities' labels (proximity, counts).
    levels: Levels,
}

type ProxGrids = [FastMap<u64, Vec<u32>>; 2];

/// A geofence listed in a grid cell: its index and its bounding box in `f32`, rounded
/// outwards (`[min_lon, min_lat, max_lon, max_lat]`), a prefilter before the exact test.
#[derive(Clone, Copy, Debug)]
struct CellFence {
    fence: u32,
    b: [f32; 4],
}

impl CellFence {
    fn new(fence: u32, b: &Bounds) -> CellFence {
        // f32 keeps ~7 digits: widen by 1e-4° (about 11 m) so rounding never excludes.
        const PAD: f64 = 1e-4;
        CellFence {
            fence,
            b: [
                (b.min_lon - PAD) as f32,
                (b.min_lat - PAD) as f32,
                (b.max_lon + PAD) as f32,
                (b.max_lat + PAD) as f32,
            ],
        }
    }
}

fn grid_add(g: &mut ProxGrids, key: u64, slot: u32, roles: u8) {
    for (i, bit) in [(0, ROLE_A), (1, ROLE_B)] {
        if roles & bit != 0 {
            g[i].entry(key).or_default().push(slot);
        }
    }
}

fn grid_del(g: &mut ProxGrids, key: u64, slot: u32, roles: u8) {
    for (i, bit) in [(0, ROLE_A), (1, ROLE_B)] {
        if roles & bit != 0
            && let Some(v) = g[i].get_mut(&key)
        {
            if let Some(p) = v.iter().position(|x| *x == slot) {
                v.swap_remove(p);
            }
            if v.is_empty() {
                g[i].remove(&key);
            }
        }
    }
}

fn cell_key(ix: i64, iy: i64) -> u64 {
    ((ix as u64) << 32) | (iy as u64 & 0xffff_ffff)
}

fn cell_of(lat: f64, lon: f64, size: f64) -> (i64, i64) {
    (
        ((lon + 180.0) / size).floor() as i64,
        ((lat + 90.0) / size).floor() as i64,
    )
}

fn display(uid: &str, callsign: Option<&str>) -> Text {
    match callsign {
        Some(c) if c != uid => Text::from(format!("{c} ({uid})").as_str()),
        _ => Text::from(uid),
    }
}

fn truthy(v: &AttrValue) -> bool {
    match v {
        AttrValue::Num(n) => *n != 0.0 && n.is_finite(),
        AttrValue::Text(t) => matches!(
            t.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        ),
    }
}

/// The emergency a CoT type means: `Some(Some(label))` raises, `Some(None)` cancels.
fn emergency_of(cot_type: &str) -> Option<Option<&'static str>> {
    match cot_type {
        "b-a-o-tbl" => Some(Some("911 alert")),
        "b-a-o-pan" => Some(Some("ring the bell")),
        "b-a-o-opn" => Some(Some("troops in contact")),
        "b-a-o-can" => Some(None),
        t if t.starts_with("b-a-o-") => Some(Some("emergency")),
        _ => None,
    }
}

impl Evaluator {
    /// An evaluator with no geofences or rules.
    pub fn new(cfg: EvalConfig) -> Self {
        Evaluator {
            cfg,
            fences: Vec::new(),
            large: Vec::new(),
            grid: FastMap::default(),
            counts: Vec::new(),
            count_raised: Vec::new(),
            rules: Vec::new(),
            prox_rules: Vec::new(),
            uid_rules: FastMap::default(),
            generic_rules: Vec::new(),
            generation: 1,
            index: FastMap::default(),
            states: Vec::new(),
            free: Vec::new(),
            prox_grids: [FastMap::default(), FastMap::default()],
            scratch: Vec::new(),
            stats: EvalStats::default(),
            levels: Levels::default(),
        }
    }

    /// Sets the classification order used to join labels (the node's `[labels] levels`).
    pub fn set_levels(&mut self, levels: Levels) {
        self.levels = levels;
    }

    /// Counters.
    pub fn stats(&self) -> EvalStats {
        self.stats
    }

    /// True with no geofences and no rules: entities are then not tracked (see
    /// [`Evaluator::prime`] to catch up when the first definitions arrive).
    pub fn is_idle(&self) -> bool {
        self.fences.is_empty() && self.rules.is_empty()
    }

    /// Entities with state.
    pub fn tracked(&self) -> usize {
        self.index.len()
    }

    /// Replaces the definitions (validated by the caller), keeping the state of entities
    /// (dwell entry times, threshold phases) for geofences and rules that still exist, and
    /// clearing the alerts of those that were removed or disabled.
    pub fn set_definitions(
        &mut self,
        fences: &[Geofence],
        rules: &[Rule],
        out: &mut Vec<Transition>,
    ) {
        let new_fences: Vec<CFence> = fences
            .iter()
            .filter(|g| g.enabled)
            .filter_map(CFence::compile)
            .collect();
        let new_rules: Vec<CRule> = rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| CRule {
                id: r.id.clone(),
                name: if r.name.is_empty() {
                    r.id.clone()
                } else {
                    r.name.clone()
                },
                priority: r.priority,
                kind: match &r.rule {
                    RuleKind::Proximity { a, b, distance_m } => CKind::Prox {
                        a: CFilter::new(a),
                        b: CFilter::new(b),
                        d: *distance_m,
                    },
                    RuleKind::LostComms { filter, after_secs } => CKind::Lost {
                        filter: CFilter::new(filter),
                        after_ms: (after_secs * 1000.0) as i64,
                    },
                    RuleKind::Threshold {
                        filter,
                        attribute,
                        raise,
                        clear,
                        min_duration_secs,
                    } => CKind::Thr {
                        filter: CFilter::new(filter),
                        attribute: attribute.clone(),
                        raise: *raise,
                        clear: *clear,
                        min_ms: (min_duration_secs * 1000.0) as i64,
                    },
                },
            })
            .collect();
        // Old index → new index, by id.
        let fence_ids: FastMap<&str, u32> = new_fences
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.as_str(), i as u32))
            .collect();
        let rule_ids: FastMap<&str, u32> = new_rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i as u32))
            .collect();
        let fence_map: Vec<Option<u32>> = self
            .fences
            .iter()
            .map(|f| fence_ids.get(f.id.as_str()).copied())
            .collect();
        let rule_map: Vec<Option<u32>> = self
            .rules
            .iter()
            .map(|r| rule_ids.get(r.id.as_str()).copied())
            .collect();
        for (i, f) in self.fences.iter().enumerate() {
            if fence_map[i].is_none() {
                out.push(Transition::ClearRule {
                    rule_id: f.id.clone(),
                });
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if rule_map[i].is_none() {
                out.push(Transition::ClearRule {
                    rule_id: r.id.clone(),
                });
            }
        }
        let old_count_raised: FastMap<String, bool> = self
            .fences
            .iter()
            .zip(self.count_raised.iter())
            .map(|(f, r)| (f.id.clone(), *r))
            .collect();
        drop(fence_ids);
        drop(rule_ids);

        self.fences = new_fences;
        self.rules = new_rules;
        self.generation += 1;
        self.uid_rules.clear();
        self.generic_rules.clear();
        for (i, r) in self.rules.iter().enumerate() {
            let filters: Vec<(&CFilter, u8)> = match &r.kind {
                CKind::Prox { a, b, .. } => vec![(a, ROLE_A), (b, ROLE_B)],
                CKind::Lost { filter, .. } => vec![(filter, ROLE_LOST)],
                CKind::Thr { filter, .. } => vec![(filter, ROLE_THR)],
            };
            for (f, role) in filters {
                if f.uids.is_empty() {
                    self.generic_rules.push((i as u32, role));
                } else {
                    for u in &f.uids {
                        self.uid_rules
                            .entry(u.clone())
                            .or_default()
                            .push((i as u32, role));
                    }
                }
            }
        }
        self.prox_rules = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.kind, CKind::Prox { .. }))
            .map(|(i, _)| i as u32)
            .collect();
        // Fence grid.
        self.grid.clear();
        self.large.clear();
        let size = self.cfg.fence_cell_deg;
        for (i, f) in self.fences.iter().enumerate() {
            let (x0, y0) = cell_of(f.bounds.min_lat, f.bounds.min_lon, size);
            let (x1, y1) = cell_of(f.bounds.max_lat, f.bounds.max_lon, size);
            let cells = ((x1 - x0 + 1) * (y1 - y0 + 1)) as usize;
            if cells > self.cfg.max_cells_per_fence {
                self.large.push(i as u32);
                continue;
            }
            for ix in x0..=x1 {
                for iy in y0..=y1 {
                    self.grid
                        .entry(cell_key(ix, iy))
                        .or_default()
                        .push(CellFence::new(i as u32, &f.bounds));
                }
            }
        }
        // Remap entity state; recompute filters eagerly so ticks see the new rules.
        self.counts = vec![0; self.fences.len()];
        self.count_raised = self
            .fences
            .iter()
            .map(|f| old_count_raised.get(&f.id).copied().unwrap_or(false))
            .collect();
        self.prox_grids[0].clear();
        self.prox_grids[1].clear();
        for slot in 0..self.states.len() {
            let Some(st) = self.states[slot].as_mut() else {
                continue;
            };
            st.inside.retain_mut(|ins| {
                match fence_map.get(ins.fence as usize).copied().flatten() {
                    Some(n) => {
                        ins.fence = n;
                        true
                    }
                    None => false,
                }
            });
            st.inside.sort_by_key(|i| i.fence);
            for ins in &st.inside {
                self.counts[ins.fence as usize] += 1;
            }
            st.thr
                .retain_mut(|t| match rule_map.get(t.rule as usize).copied().flatten() {
                    Some(n) => {
                        t.rule = n;
                        true
                    }
                    None => false,
                });
            st.lost = st
                .lost
                .iter()
                .filter_map(|r| rule_map.get(*r as usize).copied().flatten())
                .collect();
            // Pairs of rules that still exist stay, so their alerts still clear on separation.
            st.pairs
                .retain_mut(|p| match rule_map.get(p.rule as usize).copied().flatten() {
                    Some(n) => {
                        p.rule = n;
                        true
                    }
                    None => false,
                });
            st.prox_cell = None;
            st.prox_in = 0;
        }
        for slot in 0..self.states.len() {
            self.refresh_matches(slot as u32);
            let Some(st) = self.states[slot].as_mut() else {
                continue;
            };
            if st.prox && st.present {
                let (ix, iy) = cell_of(st.lat, st.lon, self.cfg.proximity_cell_deg);
                let key = cell_key(ix, iy);
                st.prox_cell = Some(key);
                st.prox_in = st.prox_roles;
                grid_add(&mut self.prox_grids, key, slot as u32, st.prox_roles);
            }
        }
        // Drop thresholds/lost of rules that no longer match the entity.
        for st in self.states.iter_mut().flatten() {
            let matched = &st.matched;
            st.thr.retain(|t| {
                matched
                    .iter()
                    .any(|m| m.rule == t.rule && m.roles & ROLE_THR != 0)
            });
            st.lost.retain(|r| {
                matched
                    .iter()
                    .any(|m| m.rule == *r && m.roles & ROLE_LOST != 0)
            });
        }
        for f in 0..self.fences.len() {
            self.check_count(f as u32, out);
        }
    }

    fn refresh_matches(&mut self, slot: u32) {
        let Some(st) = self.states.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        st.matched.clear();
        st.prox = false;
        st.prox_roles = 0;
        st.prox_max_d = 0.0;
        // Candidates: rules whose filter lists this uid, and rules whose filter has no uid
        // list. Only their type prefixes remain to check.
        let listed = self
            .uid_rules
            .get(st.uid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &(rule, role) in listed.iter().chain(self.generic_rules.iter()) {
            let Some(r) = self.rules.get(rule as usize) else {
                continue;
            };
            let filter = match (&r.kind, role) {
                (CKind::Prox { a, .. }, ROLE_A) => a,
                (CKind::Prox { b, .. }, ROLE_B) => b,
                (CKind::Lost { filter, .. }, _) | (CKind::Thr { filter, .. }, _) => filter,
                _ => continue,
            };
            if !filter.types_match(&st.cot_type) {
                continue;
            }
            if let CKind::Prox { d, .. } = &r.kind {
                st.prox = true;
                st.prox_roles |= role;
                st.prox_max_d = st.prox_max_d.max(*d);
            }
            st.matched.push(Match { rule, roles: role });
        }
        // Sorted by rule, one entry per rule (binary searched by proximity).
        st.matched.sort_unstable_by_key(|m| m.rule);
        st.matched.dedup_by(|later, first| {
            if later.rule == first.rule {
                first.roles |= later.roles;
                true
            } else {
                false
            }
        });
        st.generation = self.generation;
    }

    fn slot_for(&mut self, obs: &Observation<'_>, now: i64) -> Option<u32> {
        if let Some(&s) = self.index.get(obs.uid) {
            return Some(s);
        }
        if self.index.len() >= self.cfg.max_entities {
            self.stats.untracked += 1;
            return None;
        }
        let st = EState {
            uid: Text::from(obs.uid),
            cot_type: Text::from(obs.cot_type),
            name: display(obs.uid, obs.callsign),
            generation: 0,
            matched: Vec::new(),
            prox: false,
            prox_roles: 0,
            prox_in: 0,
            prox_max_d: 0.0,
            inside: Vec::new(),
            lat: obs.lat,
            lon: obs.lon,
            last_seen: now,
            lost: Vec::new(),
            thr: Vec::new(),
            callsign: obs.callsign.map(Text::from),
            pairs: Vec::new(),
            prox_cell: None,
            sos: false,
            emergency: false,
            present: true,
            label: obs.label.clone(),
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.states[s as usize] = Some(st);
                s
            }
            None => {
                self.states.push(Some(st));
                (self.states.len() - 1) as u32
            }
        };
        self.index.insert(Text::from(obs.uid), slot);
        Some(slot)
    }

    /// Records an entity without raising anything (its last report time and position), to
    /// rebuild state from the live picture after a restart. Restored snapshot state wins.
    pub fn prime(&mut self, obs: &Observation<'_>, last_seen: Timestamp) {
        let known = self.index.contains_key(obs.uid);
        let Some(slot) = self.slot_for(obs, last_seen.millis()) else {
            return;
        };
        let cell = self.cfg.proximity_cell_deg;
        if !known && let Some(st) = self.states[slot as usize].as_mut() {
            st.last_seen = last_seen.millis();
        }
        self.refresh_matches(slot);
        if let Some(st) = self.states[slot as usize].as_mut() {
            st.present = true;
            if st.label != *obs.label {
                st.label = obs.label.clone();
            }
            if st.prox && st.prox_cell.is_none() {
                let (ix, iy) = cell_of(st.lat, st.lon, cell);
                let key = cell_key(ix, iy);
                st.prox_cell = Some(key);
                st.prox_in = st.prox_roles;
                grid_add(&mut self.prox_grids, key, slot, st.prox_roles);
            }
        }
    }

    /// Evaluates one folded entity at `now`, appending transitions to `out`.
    pub fn observe(&mut self, obs: &Observation<'_>, now: Timestamp, out: &mut Vec<Transition>) {
        self.stats.observations += 1;
        let now_ms = now.millis();
        self.emergencies(obs, out);
        // Without geofences or rules only emergencies and SOS flags matter: keep no state
        // (and cost nothing) for entities that carry no SOS flag.
        if self.is_idle() && obs.attributes.is_none_or(|a| !a.contains_key("sos")) {
            return;
        }
        let Some(slot) = self.slot_for(obs, now_ms) else {
            return;
        };
        let s = slot as usize;
        let stale_matches = {
            let Some(st) = self.states[s].as_mut() else {
                return;
            };
            if st.cot_type.as_str() != obs.cot_type {
                st.cot_type = Text::from(obs.cot_type);
                st.generation = 0;
            }
            if st.callsign.as_deref() != obs.callsign {
                st.callsign = obs.callsign.map(Text::from);
                st.name = display(obs.uid, obs.callsign);
            }
            st.last_seen = now_ms;
            st.present = true;
            if st.label != *obs.label {
                st.label = obs.label.clone();
            }
            st.lat = obs.lat;
            st.lon = obs.lon;
            st.generation != self.generation
        };
        if stale_matches {
            let had_prox = self.states[s]
                .as_ref()
                .is_some_and(|st| st.prox_cell.is_some());
            self.refresh_matches(slot);
            if had_prox
                && self.states[s]
                    .as_ref()
                    .is_some_and(|st| st.prox_roles != st.prox_in)
            {
                self.leave_prox_grid(slot, out);
            }
        }
        let mut changed_fences: Vec<u32> = Vec::new();
        {
            let Evaluator {
                fences,
                grid,
                large,
                rules,
                states,
                scratch,
                cfg,
                counts,
                ..
            } = self;
            let Some(st) = states[s].as_mut() else { return };

            // A report clears lost comms.
            for r in st.lost.drain(..) {
                if let Some(rule) = rules.get(r as usize) {
                    out.push(Transition::Clear {
                        key: format!("lost|{}|{}", rule.id, st.uid),
                    });
                }
            }

            // SOS flag.
            if let Some(v) = obs.attributes.and_then(|a| a.get("sos")) {
                let on = truthy(v);
                if on != st.sos {
                    st.sos = on;
                    let key = format!("sos|{}", st.uid);
                    if on {
                        out.push(Transition::Raise {
                            key,
                            rule_id: "sos".into(),
                            kind: AlertKind::Sos,
                            priority: Priority::Emergency,
                            entities: vec![st.uid.to_string()],
                            message: format!("SOS from {}", st.name),
                            position: Some([obs.lon, obs.lat]),
                            label: st.label.clone(),
                        });
                    } else {
                        out.push(Transition::Clear { key });
                    }
                }
            }

            // Geofences: the new inside set, into scratch (no allocation once warm).
            scratch.clear();
            let (ix, iy) = cell_of(obs.lat, obs.lon, cfg.fence_cell_deg);
            let cands = grid
                .get(&cell_key(ix, iy))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let (la, lo) = (obs.lat as f32, obs.lon as f32);
            for c in cands {
                if la < c.b[1] || la > c.b[3] || lo < c.b[0] || lo > c.b[2] {
                    continue;
                }
                let fence = &fences[c.fence as usize];
                if fence.bounds.contains(obs.lat, obs.lon)
                    && fence.filter.matches(obs.uid, obs.cot_type)
                    && fence.contains(obs.lat, obs.lon)
                {
                    scratch.push(c.fence);
                }
            }
            for &f in large.iter() {
                let fence = &fences[f as usize];
                if fence.bounds.contains(obs.lat, obs.lon)
                    && fence.filter.matches(obs.uid, obs.cot_type)
                    && fence.contains(obs.lat, obs.lon)
                {
                    scratch.push(f);
                }
            }
            if !large.is_empty() {
                scratch.sort_unstable();
                scratch.dedup();
            }
            let same = scratch.len() == st.inside.len()
                && scratch
                    .iter()
                    .zip(st.inside.iter())
                    .all(|(a, b)| *a == b.fence);
            if !same {
                let old = std::mem::take(&mut st.inside);
                let mut new_inside = Vec::with_capacity(scratch.len());
                let (mut i, mut j) = (0, 0);
                loop {
                    let o = old.get(i).map(|x| x.fence);
                    let n = scratch.get(j).copied();
                    match (o, n) {
                        (None, None) => break,
                        (Some(a), Some(b)) if a == b => {
                            new_inside.push(old[i]);
                            i += 1;
                            j += 1;
                        }
                        (Some(a), Some(b)) if a < b => {
                            exit_fence(&fences[a as usize], st, obs, out);
                            counts[a as usize] = counts[a as usize].saturating_sub(1);
                            changed_fences.push(a);
                            i += 1;
                        }
                        (Some(a), None) => {
                            exit_fence(&fences[a as usize], st, obs, out);
                            counts[a as usize] = counts[a as usize].saturating_sub(1);
                            changed_fences.push(a);
                            i += 1;
                        }
                        (_, Some(b)) => {
                            new_inside.push(Inside {
                                fence: b,
                                since: now_ms,
                                dwell_fired: false,
                            });
                            enter_fence(&fences[b as usize], st, obs, out);
                            counts[b as usize] += 1;
                            changed_fences.push(b);
                            j += 1;
                        }
                    }
                }
                st.inside = new_inside;
            }

            // Thresholds.
            for m in st.matched.iter().filter(|m| m.roles & ROLE_THR != 0) {
                let Some(rule) = rules.get(m.rule as usize) else {
                    continue;
                };
                let CKind::Thr {
                    attribute,
                    raise,
                    clear,
                    min_ms,
                    ..
                } = &rule.kind
                else {
                    continue;
                };
                let Some(v) = obs.value(attribute.as_str()) else {
                    continue;
                };
                match st.thr.iter().position(|t| t.rule == m.rule) {
                    None => {
                        if raise.test(v) {
                            if *min_ms <= 0 {
                                st.thr.push(Thr {
                                    rule: m.rule,
                                    phase: Phase::Raised,
                                    since: now_ms,
                                });
                                out.push(threshold_raise(
                                    rule,
                                    st,
                                    attribute.as_str(),
                                    v,
                                    [obs.lon, obs.lat],
                                ));
                            } else {
                                st.thr.push(Thr {
                                    rule: m.rule,
                                    phase: Phase::Pending,
                                    since: now_ms,
                                });
                            }
                        }
                    }
                    Some(p) => match st.thr[p].phase {
                        Phase::Pending => {
                            if !raise.test(v) {
                                st.thr.swap_remove(p);
                            } else if now_ms - st.thr[p].since >= *min_ms {
                                st.thr[p].phase = Phase::Raised;
                                out.push(threshold_raise(
                                    rule,
                                    st,
                                    attribute.as_str(),
                                    v,
                                    [obs.lon, obs.lat],
                                ));
                            }
                        }
                        Phase::Raised => {
                            let cleared = match clear {
                                Some(c) => c.test(v),
                                None => !raise.test(v),
                            };
                            if cleared {
                                st.thr.swap_remove(p);
                                out.push(Transition::Clear {
                                    key: format!("thr|{}|{}", rule.id, st.uid),
                                });
                            }
                        }
                    },
                }
            }
        }
        for f in changed_fences {
            self.check_count(f, out);
        }
        if self.states[s].as_ref().is_some_and(|st| st.prox) {
            self.proximity(slot, now_ms, out);
        }
    }

    fn emergencies(&mut self, obs: &Observation<'_>, out: &mut Vec<Transition>) {
        let Some(what) = emergency_of(obs.cot_type) else {
            return;
        };
        // ATAK emergencies are their own event (uid "<sender>-9-1-1") linked to the sender.
        let sender = obs.text("link.parent_uid").unwrap_or(obs.uid);
        let cancelled = obs
            .text("emergency.cancel")
            .is_some_and(|c| c.eq_ignore_ascii_case("true"));
        let key = format!("emergency|{sender}");
        match what {
            Some(label) if !cancelled => {
                let who = obs
                    .text("link.parent_callsign")
                    .or(obs.callsign)
                    .unwrap_or(sender);
                let kind_text = obs.text("emergency.type").unwrap_or(label);
                out.push(Transition::Raise {
                    key,
                    rule_id: "emergency".into(),
                    kind: AlertKind::Emergency,
                    priority: Priority::Emergency,
                    entities: if sender == obs.uid {
                        vec![sender.to_string()]
                    } else {
                        vec![sender.to_string(), obs.uid.to_string()]
                    },
                    message: format!("EMERGENCY {kind_text} from {who}"),
                    position: Some([obs.lon, obs.lat]),
                    label: obs.label.clone(),
                });
            }
            _ => out.push(Transition::Clear { key }),
        }
    }

    fn check_count(&mut self, f: u32, out: &mut Vec<Transition>) {
        let i = f as usize;
        let Some(fence) = self.fences.get(i) else {
            return;
        };
        // Counts change on enter/exit only; recomputed from inside sets here.
        let Some(limit) = fence.triggers.count_above else {
            return;
        };
        let n = self.counts[i];
        let key = format!("count|{}", fence.id);
        if n > limit && !self.count_raised[i] {
            self.count_raised[i] = true;
            // The count tells of every entity inside: the join of their labels. A scan of
            // the states, but only when the limit is crossed upwards.
            let label = self
                .states
                .iter()
                .flatten()
                .filter(|st| st.inside.iter().any(|ins| ins.fence == f))
                .map(|st| &st.label)
                .fold(None::<Label>, |acc, l| {
                    Some(match acc {
                        Some(a) => self.levels.join(&a, l),
                        None => l.clone(),
                    })
                })
                .unwrap_or_else(|| Label {
                    classification: self.levels.lowest().clone(),
                    releasability: Vec::new(),
                });
            out.push(Transition::Raise {
                key,
                rule_id: fence.id.clone(),
                kind: AlertKind::Count,
                priority: fence.priority,
                entities: Vec::new(),
                message: format!("{n} entities inside {} (limit {limit})", fence.name),
                position: None,
                label,
            });
        } else if n <= limit && self.count_raised[i] {
            self.count_raised[i] = false;
            out.push(Transition::Clear { key });
        }
    }

    fn leave_prox_grid(&mut self, slot: u32, out: &mut Vec<Transition>) {
        let Some(st) = self.states[slot as usize].as_mut() else {
            return;
        };
        if let Some(key) = st.prox_cell.take() {
            grid_del(&mut self.prox_grids, key, slot, st.prox_in);
            st.prox_in = 0;
        }
        let pairs = std::mem::take(&mut st.pairs);
        for p in pairs {
            self.unpair(slot, p, out);
        }
    }

    fn pair_key(&self, rule: u32, a: u32, b: u32) -> String {
        let uid = |s: u32| {
            self.states
                .get(s as usize)
                .and_then(Option::as_ref)
                .map(|st| st.uid.as_str())
                .unwrap_or("")
        };
        let id = self
            .rules
            .get(rule as usize)
            .map(|r| r.id.as_str())
            .unwrap_or("");
        format!("prox|{id}|{}|{}", uid(a), uid(b))
    }

    fn unpair(&mut self, slot: u32, p: Pair, out: &mut Vec<Transition>) {
        let (a, b) = if p.is_a {
            (slot, p.other)
        } else {
            (p.other, slot)
        };
        out.push(Transition::Clear {
            key: self.pair_key(p.rule, a, b),
        });
        if let Some(o) = self
            .states
            .get_mut(p.other as usize)
            .and_then(Option::as_mut)
        {
            o.pairs
                .retain(|q| !(q.rule == p.rule && q.other == slot && q.is_a != p.is_a));
        }
    }

    fn proximity(&mut self, slot: u32, _now_ms: i64, out: &mut Vec<Transition>) {
        let cell = self.cfg.proximity_cell_deg;
        let s = slot as usize;
        let Some(st) = self.states[s].as_mut() else {
            return;
        };
        let (lat, lon) = (st.lat, st.lon);
        // Move in the grid.
        let (ix, iy) = cell_of(lat, lon, cell);
        let key = cell_key(ix, iy);
        if st.prox_cell != Some(key) {
            if let Some(old) = st.prox_cell {
                grid_del(&mut self.prox_grids, old, slot, st.prox_in);
            }
            st.prox_cell = Some(key);
            st.prox_in = st.prox_roles;
            grid_add(&mut self.prox_grids, key, slot, st.prox_roles);
        }
        // Existing pairs: clear those now apart.
        let factor = self.cfg.proximity_clear_factor;
        let mut gone = Vec::new();
        let pairs = st.pairs.clone();
        for p in &pairs {
            let d = match self.rules.get(p.rule as usize).map(|r| &r.kind) {
                Some(CKind::Prox { d, .. }) => *d,
                _ => 0.0,
            };
            let far = match self.states.get(p.other as usize).and_then(Option::as_ref) {
                Some(o) => geo::haversine_m(lat, lon, o.lat, o.lon) > d * factor,
                None => true,
            };
            if far {
                gone.push(*p);
            }
        }
        if !gone.is_empty() {
            if let Some(st) = self.states[s].as_mut() {
                st.pairs.retain(|p| {
                    !gone
                        .iter()
                        .any(|g| g.rule == p.rule && g.other == p.other && g.is_a == p.is_a)
                });
            }
            for p in gone {
                self.unpair(slot, p, out);
            }
        }
        // New pairs: one grid search out to the largest distance of my rules, then, per
        // candidate, only the rules it takes part in (its list is short; mine is sorted).
        let Some(st) = self.states[s].as_ref() else {
            return;
        };
        let maxd = st.prox_max_d;
        if maxd <= 0.0 {
            return;
        }
        let b = Bounds::around(lat, lon, maxd);
        let (x0, y0) = cell_of(b.min_lat, b.min_lon, cell);
        let (x1, y1) = cell_of(b.max_lat, b.max_lon, cell);
        let mut found: Vec<(u32, u32, bool, f64)> = Vec::new();
        let mut seen = 0usize;
        // As `a`, look among entities with a `b` role (grid 1); as `b`, among `a`s (grid 0).
        let my_roles = st.prox_roles;
        let max_candidates = self.cfg.max_proximity_candidates;
        let mut truncated = false;
        for (grid, is_a) in [(1usize, true), (0usize, false)] {
            if truncated || my_roles & (if is_a { ROLE_A } else { ROLE_B }) == 0 {
                continue;
            }
            let their_bit = if is_a { ROLE_B } else { ROLE_A };
            let my_bit = if is_a { ROLE_A } else { ROLE_B };
            // Examines one cell's entities; false once the candidate bound is reached.
            let mut visit = |v: &Vec<u32>| -> bool {
                for &o in v {
                    if o == slot {
                        continue;
                    }
                    seen += 1;
                    if seen > max_candidates {
                        return false;
                    }
                    let Some(os) = self.states.get(o as usize).and_then(Option::as_ref) else {
                        continue;
                    };
                    if !os.present {
                        continue;
                    }
                    let dist = geo::haversine_m(lat, lon, os.lat, os.lon);
                    if dist > maxd {
                        continue;
                    }
                    for m in os.matched.iter().filter(|m| m.roles & their_bit != 0) {
                        let Ok(i) = st.matched.binary_search_by_key(&m.rule, |x| x.rule) else {
                            continue;
                        };
                        if st.matched[i].roles & my_bit == 0 {
                            continue;
                        }
                        let Some(CKind::Prox { d, .. }) =
                            self.rules.get(m.rule as usize).map(|r| &r.kind)
                        else {
                            continue;
                        };
                        if dist <= *d
                            && !st
                                .pairs
                                .iter()
                                .any(|p| p.rule == m.rule && p.other == o && p.is_a == is_a)
                        {
                            found.push((o, m.rule, is_a, dist));
                        }
                    }
                }
                true
            };
            let cells = &self.prox_grids[grid];
            let range = ((x1 - x0 + 1) * (y1 - y0 + 1)) as usize;
            if range <= cells.len() {
                'probe: for cx in x0..=x1 {
                    for cy in y0..=y1 {
                        if let Some(v) = cells.get(&cell_key(cx, cy))
                            && !visit(v)
                        {
                            truncated = true;
                            break 'probe;
                        }
                    }
                }
            } else {
                // A large distance over a sparse grid: scan the occupied cells instead.
                for (key, v) in cells {
                    let (cx, cy) = ((key >> 32) as i64, (key & 0xffff_ffff) as i64);
                    if (x0..=x1).contains(&cx) && (y0..=y1).contains(&cy) && !visit(v) {
                        truncated = true;
                        break;
                    }
                }
            }
        }
        if truncated {
            self.stats.proximity_truncated += 1;
        }
        let max_pairs = self.cfg.max_pairs_per_entity;
        for (o, rule, is_a, dist) in found {
            let full = self.states[s]
                .as_ref()
                .is_none_or(|m| m.pairs.len() >= max_pairs)
                || self.states[o as usize]
                    .as_ref()
                    .is_none_or(|m| m.pairs.len() >= max_pairs);
            if full {
                continue;
            }
            if let Some(m) = self.states[s].as_mut() {
                m.pairs.push(Pair {
                    rule,
                    other: o,
                    is_a,
                });
            }
            if let Some(m) = self.states[o as usize].as_mut() {
                m.pairs.push(Pair {
                    rule,
                    other: slot,
                    is_a: !is_a,
                });
            }
            let (a, bb) = if is_a { (slot, o) } else { (o, slot) };
            let (Some(sa), Some(sb)) = (
                self.states[a as usize].as_ref(),
                self.states[bb as usize].as_ref(),
            ) else {
                continue;
            };
            let Some(r) = self.rules.get(rule as usize) else {
                continue;
            };
            out.push(Transition::Raise {
                key: self.pair_key(rule, a, bb),
                rule_id: r.id.clone(),
                kind: AlertKind::Proximity,
                priority: r.priority,
                entities: vec![sa.uid.to_string(), sb.uid.to_string()],
                message: format!(
                    "{} within {:.0} m of {} ({})",
                    sa.name, dist, sb.name, r.name
                ),
                position: Some([sa.lon, sa.lat]),
                label: self.levels.join(&sa.label, &sb.label),
            });
        }
    }

    /// The entities left the live picture: their geofence and proximity state ends (alerts
    /// of those clear); entities watched by a lost-comms rule keep their silence clock.
    pub fn remove(&mut self, uid: &str, out: &mut Vec<Transition>) {
        let Some(&slot) = self.index.get(uid) else {
            return;
        };
        self.leave_prox_grid(slot, out);
        let Some(st) = self.states[slot as usize].as_mut() else {
            return;
        };
        let inside = std::mem::take(&mut st.inside);
        let keep = st.matched.iter().any(|m| m.roles & ROLE_LOST != 0) || st.sos || st.emergency;
        st.present = false;
        st.thr.clear();
        for ins in &inside {
            let Some(f) = self.fences.get(ins.fence as usize) else {
                continue;
            };
            for k in ["enter", "dwell"] {
                out.push(Transition::Clear {
                    key: format!("{k}|{}|{uid}", f.id),
                });
            }
            if let Some(c) = self.counts.get_mut(ins.fence as usize) {
                *c = c.saturating_sub(1);
            }
        }
        for ins in inside {
            self.check_count(ins.fence, out);
        }
        if !keep {
            self.index.remove(uid);
            self.states[slot as usize] = None;
            self.free.push(slot);
        }
    }

    /// Time-based triggers at `now`: dwell, lost comms, threshold minimum durations.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        let now_ms = now.millis();
        for st in self.states.iter_mut().flatten() {
            for ins in st.inside.iter_mut().filter(|i| !i.dwell_fired) {
                let Some(f) = self.fences.get(ins.fence as usize) else {
                    continue;
                };
                let Some(dwell) = f.triggers.dwell_secs else {
                    continue;
                };
                if (now_ms - ins.since) as f64 >= dwell * 1000.0 {
                    ins.dwell_fired = true;
                    out.push(Transition::Raise {
                        key: format!("dwell|{}|{}", f.id, st.uid),
                        rule_id: f.id.clone(),
                        kind: AlertKind::Dwell,
                        priority: f.priority,
                        entities: vec![st.uid.to_string()],
                        message: format!("{} inside {} for more than {} s", st.name, f.name, dwell),
                        position: Some([st.lon, st.lat]),
                        label: st.label.clone(),
                    });
                }
            }
            for m in st.matched.iter().filter(|m| m.roles & ROLE_LOST != 0) {
                let Some(r) = self.rules.get(m.rule as usize) else {
                    continue;
                };
                let CKind::Lost { after_ms, .. } = r.kind else {
                    continue;
                };
                if now_ms - st.last_seen > after_ms && !st.lost.contains(&m.rule) {
                    st.lost.push(m.rule);
                    out.push(Transition::Raise {
                        key: format!("lost|{}|{}", r.id, st.uid),
                        rule_id: r.id.clone(),
                        kind: AlertKind::LostComms,
                        priority: r.priority,
                        entities: vec![st.uid.to_string()],
                        message: format!(
                            "no report from {} for {} s ({})",
                            st.name,
                            (now_ms - st.last_seen) / 1000,
                            r.name
                        ),
                        position: Some([st.lon, st.lat]),
                        label: st.label.clone(),
                    });
                }
            }
            for t in st.thr.iter_mut().filter(|t| t.phase == Phase::Pending) {
                let Some(r) = self.rules.get(t.rule as usize) else {
                    continue;
                };
                let CKind::Thr {
                    attribute, min_ms, ..
                } = &r.kind
                else {
                    continue;
                };
                if now_ms - t.since >= *min_ms {
                    t.phase = Phase::Raised;
                    out.push(Transition::Raise {
                        key: format!("thr|{}|{}", r.id, st.uid),
                        rule_id: r.id.clone(),
                        kind: AlertKind::Threshold,
                        priority: r.priority,
                        entities: vec![st.uid.to_string()],
                        message: format!(
                            "{} {attribute} past its limit for {} s ({})",
                            st.name,
                            min_ms / 1000,
                            r.name
                        ),
                        position: Some([st.lon, st.lat]),
                        label: st.label.clone(),
                    });
                }
            }
        }
    }

    /// The state worth persisting: entities inside geofences, with threshold phases,
    /// raised lost comms or flags.
    pub fn snapshot(&self) -> Vec<EntitySnapshot> {
        let mut out = Vec::new();
        for st in self.states.iter().flatten() {
            if st.inside.is_empty()
                && st.thr.is_empty()
                && st.lost.is_empty()
                && !st.sos
                && !st.emergency
            {
                continue;
            }
            out.push(EntitySnapshot {
                uid: st.uid.to_string(),
                cot_type: st.cot_type.to_string(),
                name: st.name.to_string(),
                position: [st.lon, st.lat],
                last_seen: st.last_seen,
                inside: st
                    .inside
                    .iter()
                    .filter_map(|i| {
                        self.fences
                            .get(i.fence as usize)
                            .map(|f| (f.id.clone(), i.since, i.dwell_fired))
                    })
                    .collect(),
                thresholds: st
                    .thr
                    .iter()
                    .filter_map(|t| {
                        self.rules.get(t.rule as usize).map(|r| {
                            (
                                r.id.clone(),
                                if t.phase == Phase::Raised {
                                    "raised"
                                } else {
                                    "pending"
                                }
                                .to_string(),
                                t.since,
                            )
                        })
                    })
                    .collect(),
                lost: st
                    .lost
                    .iter()
                    .filter_map(|r| self.rules.get(*r as usize).map(|r| r.id.clone()))
                    .collect(),
                sos: st.sos,
                emergency: st.emergency,
                label: st.label.clone(),
            });
        }
        out
    }

    /// Restores persisted state (after [`Evaluator::set_definitions`]); ids that no longer
    /// exist are ignored.
    pub fn restore(&mut self, snaps: &[EntitySnapshot]) {
        let fence_ids: FastMap<String, u32> = self
            .fences
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.clone(), i as u32))
            .collect();
        let rule_ids: FastMap<String, u32> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i as u32))
            .collect();
        for snap in snaps {
            let obs = Observation {
                uid: &snap.uid,
                cot_type: &snap.cot_type,
                callsign: None,
                lat: snap.position[1],
                lon: snap.position[0],
                speed: None,
                course: None,
                hae: None,
                attributes: None,
                label: &snap.label,
            };
            let Some(slot) = self.slot_for(&obs, snap.last_seen) else {
                continue;
            };
            self.refresh_matches(slot);
            let Some(st) = self.states[slot as usize].as_mut() else {
                continue;
            };
            st.name = Text::from(snap.name.as_str());
            st.last_seen = snap.last_seen;
            st.sos = snap.sos;
            st.emergency = snap.emergency;
            st.label = snap.label.clone();
            st.present = false;
            st.inside = snap
                .inside
                .iter()
                .filter_map(|(id, since, fired)| {
                    fence_ids.get(id).map(|&f| Inside {
                        fence: f,
                        since: *since,
                        dwell_fired: *fired,
                    })
                })
                .collect();
            st.inside.sort_by_key(|i| i.fence);
            st.inside.dedup_by_key(|i| i.fence);
            for i in &st.inside {
                self.counts[i.fence as usize] += 1;
            }
            st.thr = snap
                .thresholds
                .iter()
                .filter_map(|(id, phase, since)| {
                    rule_ids.get(id).map(|&r| Thr {
                        rule: r,
                        phase: if phase == "raised" {
                            Phase::Raised
                        } else {
                            Phase::Pending
                        },
                        since: *since,
                    })
                })
                .collect();
            st.lost = snap
                .lost
                .iter()
                .filter_map(|id| rule_ids.get(id).copied())
                .collect();
        }
        for (i, f) in self.fences.iter().enumerate() {
            if let Some(limit) = f.triggers.count_above {
                self.count_raised[i] = self.counts[i] > limit;
            }
        }
    }
}

fn threshold_raise(
    rule: &CRule,
    st: &EState,
    attribute: &str,
    v: f64,
    pos: [f64; 2],
) -> Transition {
    let limit = match &rule.kind {
        CKind::Thr {
            raise: Cmp::Below(x),
            ..
        } => format!("below {x}"),
        CKind::Thr {
            raise: Cmp::Above(x),
            ..
        } => format!("above {x}"),
        _ => String::new(),
    };
    Transition::Raise {
        key: format!("thr|{}|{}", rule.id, st.uid),
        rule_id: rule.id.clone(),
        kind: AlertKind::Threshold,
        priority: rule.priority,
        entities: vec![st.uid.to_string()],
        message: format!("{} {attribute} {v} is {limit} ({})", st.name, rule.name),
        position: Some(pos),
        label: st.label.clone(),
    }
}

fn enter_fence(fence: &CFence, st: &EState, obs: &Observation<'_>, out: &mut Vec<Transition>) {
    if fence.triggers.exit {
        out.push(Transition::Clear {
            key: format!("exit|{}|{}", fence.id, st.uid),
        });
    }
    if fence.triggers.enter {
        out.push(Transition::Raise {
            key: format!("enter|{}|{}", fence.id, st.uid),
            rule_id: fence.id.clone(),
            kind: AlertKind::Enter,
            priority: fence.priority,
            entities: vec![st.uid.to_string()],
            message: format!("{} entered {}", st.name, fence.name),
            position: Some([obs.lon, obs.lat]),
            label: st.label.clone(),
        });
    }
}

fn exit_fence(fence: &CFence, st: &EState, obs: &Observation<'_>, out: &mut Vec<Transition>) {
    if fence.triggers.enter {
        out.push(Transition::Clear {
            key: format!("enter|{}|{}", fence.id, st.uid),
        });
    }
    if fence.triggers.dwell_secs.is_some() {
        out.push(Transition::Clear {
            key: format!("dwell|{}|{}", fence.id, st.uid),
        });
    }
    if fence.triggers.exit {
        out.push(Transition::Raise {
            key: format!("exit|{}|{}", fence.id, st.uid),
            rule_id: fence.id.clone(),
            kind: AlertKind::Exit,
            priority: fence.priority,
            entities: vec![st.uid.to_string()],
            message: format!("{} left {}", st.name, fence.name),
            position: Some([obs.lon, obs.lat]),
            label: st.label.clone(),
        });
    }
}
