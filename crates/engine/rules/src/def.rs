//! Rules as data: geofence and rule definitions (serde, JSON) and their validation.
//!
//! Coordinates are `[lon, lat]` pairs in degrees, in GeoJSON order. Validation refuses a bad
//! definition with a [`DefError`] naming the field at fault and saying exactly what is wrong
//! (a self-intersecting ring names the two crossing edges).

use serde::{Deserialize, Serialize};

use crate::geo;

/// Limits on definitions, so one request cannot make evaluation or memory unbounded.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefLimits {
    /// Most vertices in one polygon ring or corridor route.
    pub max_vertices: usize,
    /// Most holes in one polygon.
    pub max_holes: usize,
    /// Most polygons in one multipolygon geofence.
    pub max_parts: usize,
    /// Largest circle radius, corridor half-width or proximity distance, in metres.
    pub max_distance_m: f64,
    /// Most uids in one filter.
    pub max_filter_uids: usize,
    /// Most type prefixes in one filter.
    pub max_filter_types: usize,
    /// Longest id, name or message text, in bytes.
    pub max_text_len: usize,
    /// Attribute names a threshold may use besides the built-in ones (see [`BUILTIN_ATTRIBUTES`]).
    pub extra_attributes: Vec<String>,
}

impl Default for DefLimits {
    fn default() -> Self {
        DefLimits {
            max_vertices: 4096,
            max_holes: 64,
            max_parts: 64,
            max_distance_m: 500_000.0,
            max_filter_uids: 10_000,
            max_filter_types: 32,
            max_text_len: 256,
            extra_attributes: Vec::new(),
        }
    }
}

/// Attributes a threshold rule may watch without configuration: report fields (`speed`,
/// `course`, `hae`) and the attribute names sources use (CoT `battery`, sensors' `fuel`, …).
pub const BUILTIN_ATTRIBUTES: &[&str] = &[
    "speed",
    "course",
    "hae",
    "battery",
    "fuel",
    "engine_temp",
    "temperature",
    "oil_pressure",
    "tire_pressure",
    "signal",
    "rssi",
    "heart_rate",
    "altitude",
    "voltage",
    "water",
    "ammo",
];

/// A validation error: the field at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DefError {
    /// JSON path of the offending field, e.g. `shape.holes[0]`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl DefError {
    /// An error on `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DefError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Alert priority; emergencies are always [`Priority::Emergency`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Informational.
    Low,
    /// Worth a look.
    #[default]
    Normal,
    /// Needs attention.
    High,
    /// Needs attention now.
    Critical,
    /// Life or mission at risk: emergencies and SOS.
    Emergency,
}

impl Priority {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
            Priority::Emergency => "emergency",
        }
    }
}

/// Which entities a rule applies to. Empty `types` and `uids` match every entity; otherwise an
/// entity must match one of the type prefixes (if any are given) and be one of the uids (if
/// any are given).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// CoT type prefixes, e.g. `a-h` (hostile) or `a-f-G` (friendly ground).
    pub types: Vec<String>,
    /// Entity uids.
    pub uids: Vec<String>,
}

impl Filter {
    /// Whether an entity with `uid` and `cot_type` matches.
    #[inline]
    pub fn matches(&self, uid: &str, cot_type: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|p| type_matches(cot_type, p)))
            && (self.uids.is_empty() || self.uids.iter().any(|u| u == uid))
    }

    fn validate(&self, field: &str, lim: &DefLimits) -> Result<(), DefError> {
        if self.types.len() > lim.max_filter_types {
            return Err(DefError::new(
                format!("{field}.types"),
                format!(
                    "{} type prefixes; at most {}",
                    self.types.len(),
                    lim.max_filter_types
                ),
            ));
        }
        if self.uids.len() > lim.max_filter_uids {
            return Err(DefError::new(
                format!("{field}.uids"),
                format!("{} uids; at most {}", self.uids.len(), lim.max_filter_uids),
            ));
        }
        for (i, t) in self.types.iter().enumerate() {
            if t.is_empty()
                || t.len() > lim.max_text_len
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            {
                return Err(DefError::new(
                    format!("{field}.types[{i}]"),
                    format!("{t:?} is not a CoT type prefix such as \"a-f-G\""),
                ));
            }
        }
        for (i, u) in self.uids.iter().enumerate() {
            if u.is_empty() || u.len() > lim.max_text_len {
                return Err(DefError::new(
                    format!("{field}.uids[{i}]"),
                    "must be 1 to max_text_len bytes",
                ));
            }
        }
        Ok(())
    }
}

/// CoT type prefix match on dash boundaries: `a-f` matches `a-f-G-U` but not `a-fx`.
#[inline]
pub fn type_matches(cot_type: &str, prefix: &str) -> bool {
    cot_type.starts_with(prefix)
        && (prefix.ends_with('-')
            || matches!(cot_type.as_bytes().get(prefix.len()), None | Some(b'-')))
}

/// A polygon: an exterior ring and holes, each a list of `[lon, lat]` (closed or open).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Polygon {
    /// The outer boundary.
    pub exterior: Vec<[f64; 2]>,
    /// Areas cut out of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holes: Vec<Vec<[f64; 2]>>,
}

/// A geofence's area.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// One polygon with holes.
    Polygon {
        /// The outer boundary.
        exterior: Vec<[f64; 2]>,
        /// Areas cut out of it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        holes: Vec<Vec<[f64; 2]>>,
    },
    /// Several polygons (inside any of them is inside).
    MultiPolygon {
        /// The parts.
        polygons: Vec<Polygon>,
    },
    /// A circle around a point.
    Circle {
        /// `[lon, lat]`.
        center: [f64; 2],
        /// Radius in metres; must be above 0.
        radius_m: f64,
    },
    /// A route with a buffer: inside means within `width_m / 2` of the polyline.
    Corridor {
        /// The route, `[lon, lat]` points (at least two).
        line: Vec<[f64; 2]>,
        /// Total width in metres (the buffer is half of it on each side); must be above 0.
        width_m: f64,
    },
}

/// What a geofence raises alerts on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Triggers {
    /// An entity comes inside.
    pub enter: bool,
    /// An entity goes outside (after having been inside).
    pub exit: bool,
    /// An entity stays inside longer than this many seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dwell_secs: Option<f64>,
    /// More than this many matching entities are inside at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_above: Option<u32>,
}

/// A geofence: an area, which entities it watches and what it raises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geofence {
    /// Stable id (`[A-Za-z0-9_.:-]`, assigned by the server when empty).
    #[serde(default)]
    pub id: String,
    /// Human name, shown in alerts.
    #[serde(default)]
    pub name: String,
    /// The area.
    pub shape: Shape,
    /// Entities it applies to.
    #[serde(default)]
    pub filter: Filter,
    /// What it raises.
    pub triggers: Triggers,
    /// Priority of its alerts.
    #[serde(default)]
    pub priority: Priority,
    /// A disabled geofence is kept but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A comparison of a value against a limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Cmp {
    /// Strictly below.
    Below(f64),
    /// Strictly above.
    Above(f64),
}

impl Cmp {
    /// Whether `v` satisfies the comparison.
    #[inline]
    pub fn test(self, v: f64) -> bool {
        match self {
            Cmp::Below(x) => v < x,
            Cmp::Above(x) => v > x,
        }
    }

    fn value(self) -> f64 {
        match self {
            Cmp::Below(x) | Cmp::Above(x) => x,
        }
    }
}

/// What a rule watches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// An entity matching `a` within `distance_m` of an entity matching `b`.
    Proximity {
        /// The watched entities.
        a: Filter,
        /// The entities they must keep away from.
        b: Filter,
        /// Distance in metres; must be above 0.
        distance_m: f64,
    },
    /// No report from a matching entity for longer than `after_secs`; a new report clears it.
    LostComms {
        /// Entities watched.
        #[serde(default)]
        filter: Filter,
        /// Silence in seconds; must be above 0.
        after_secs: f64,
    },
    /// A numeric attribute crosses a limit, with hysteresis and a minimum duration.
    Threshold {
        /// Entities watched.
        #[serde(default)]
        filter: Filter,
        /// Attribute name (see [`BUILTIN_ATTRIBUTES`]).
        attribute: String,
        /// Condition that raises, e.g. `{"below": 15}`.
        raise: Cmp,
        /// Condition that clears, e.g. `{"above": 18}`; defaults to the negation of `raise`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear: Option<Cmp>,
        /// The raise condition must hold this many seconds before the alert is raised.
        #[serde(default)]
        min_duration_secs: f64,
    },
}

impl RuleKind {
    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Proximity { .. } => "proximity",
            RuleKind::LostComms { .. } => "lost_comms",
            RuleKind::Threshold { .. } => "threshold",
        }
    }
}

/// A rule other than a geofence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id (assigned by the server when empty).
    #[serde(default)]
    pub id: String,
    /// Human name, shown in alerts.
    #[serde(default)]
    pub name: String,
    /// What it watches.
    pub rule: RuleKind,
    /// Priority of its alerts.
    #[serde(default)]
    pub priority: Priority,
    /// A disabled rule is kept but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Checks an id: 1 to `max` bytes of `[A-Za-z0-9_.:-]`.
pub fn validate_id(id: &str, max: usize) -> Result<(), DefError> {
    if id.is_empty() || id.len() > max {
        return Err(DefError::new("id", format!("must be 1 to {max} bytes")));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(DefError::new(
            "id",
            format!("character {c:?} is not allowed; use letters, digits, '_', '.', ':' or '-'"),
        ));
    }
    Ok(())
}

fn check_point(field: &str, p: [f64; 2]) -> Result<(), DefError> {
    if !p[0].is_finite() || !(-180.0..=180.0).contains(&p[0]) {
        return Err(DefError::new(
            field,
            format!(
                "longitude {} is outside -180..180 (points are [lon, lat])",
                p[0]
            ),
        ));
    }
    if !p[1].is_finite() || !(-90.0..=90.0).contains(&p[1]) {
        return Err(DefError::new(
            field,
            format!(
                "latitude {} is outside -90..90 (points are [lon, lat])",
                p[1]
            ),
        ));
    }
    Ok(())
}

fn check_distance(field: &str, what: &str, v: f64, lim: &DefLimits) -> Result<(), DefError> {
    if !v.is_finite() || v <= 0.0 {
        return Err(DefError::new(
            field,
            format!("{what} must be above 0 metres, got {v}"),
        ));
    }
    if v > lim.max_distance_m {
        return Err(DefError::new(
            field,
            format!(
                "{what} {v} m is above the limit of {} m",
                lim.max_distance_m
            ),
        ));
    }
    Ok(())
}

/// The ring without its closing vertex and without repeated consecutive vertices.
pub fn open_ring(ring: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(ring.len());
    for p in ring {
        if out.last() != Some(p) {
            out.push(*p);
        }
    }
    if out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    out
}

fn check_ring(field: &str, ring: &[[f64; 2]], lim: &DefLimits) -> Result<Vec<[f64; 2]>, DefError> {
    if ring.len() > lim.max_vertices {
        return Err(DefError::new(
            field,
            format!("{} vertices; at most {}", ring.len(), lim.max_vertices),
        ));
    }
    for (i, p) in ring.iter().enumerate() {
        check_point(&format!("{field}[{i}]"), *p)?;
    }
    let open = open_ring(ring);
    if open.len() < 3 {
        return Err(DefError::new(
            field,
            format!(
                "a ring needs at least 3 distinct vertices, got {}",
                open.len()
            ),
        ));
    }
    if let Some((i, j)) = geo::self_intersection(&open) {
        let n = open.len();
        let e = |k: usize| format!("{k} ({:?} → {:?})", open[k], open[(k + 1) % n]);
        return Err(DefError::new(
            field,
            format!(
                "the ring is self-intersecting: edge {} crosses edge {}",
                e(i),
                e(j)
            ),
        ));
    }
    Ok(open)
}

fn check_polygon(
    field: &str,
    exterior: &[[f64; 2]],
    holes: &[Vec<[f64; 2]>],
    lim: &DefLimits,
) -> Result<(), DefError> {
    let ext = check_ring(&format!("{field}.exterior"), exterior, lim)?;
    if holes.len() > lim.max_holes {
        return Err(DefError::new(
            format!("{field}.holes"),
            format!("{} holes; at most {}", holes.len(), lim.max_holes),
        ));
    }
    for (h, hole) in holes.iter().enumerate() {
        let f = format!("{field}.holes[{h}]");
        let open = check_ring(&f, hole, lim)?;
        if let Some(p) = open.iter().find(|p| !geo::ring_contains(&ext, p[0], p[1])) {
            return Err(DefError::new(
                f,
                format!("vertex {p:?} of the hole is outside the exterior ring"),
            ));
        }
    }
    Ok(())
}

impl Shape {
    /// Validates the shape; `field` prefixes error paths.
    pub fn validate(&self, field: &str, lim: &DefLimits) -> Result<(), DefError> {
        match self {
            Shape::Polygon { exterior, holes } => check_polygon(field, exterior, holes, lim),
            Shape::MultiPolygon { polygons } => {
                if polygons.is_empty() {
                    return Err(DefError::new(
                        format!("{field}.polygons"),
                        "a multipolygon needs at least one polygon",
                    ));
                }
                if polygons.len() > lim.max_parts {
                    return Err(DefError::new(
                        format!("{field}.polygons"),
                        format!("{} polygons; at most {}", polygons.len(), lim.max_parts),
                    ));
                }
                for (i, p) in polygons.iter().enumerate() {
                    check_polygon(
                        &format!("{field}.polygons[{i}]"),
                        &p.exterior,
                        &p.holes,
                        lim,
                    )?;
                }
                Ok(())
            }
            Shape::Circle { center, radius_m } => {
                check_point(&format!("{field}.center"), *center)?;
                check_distance(&format!("{field}.radius_m"), "the radius", *radius_m, lim)
            }
            Shape::Corridor { line, width_m } => {
                if line.is_empty() {
                    return Err(DefError::new(
                        format!("{field}.line"),
                        "the corridor is empty: its route needs at least 2 points",
                    ));
                }
                if line.len() > lim.max_vertices {
                    return Err(DefError::new(
                        format!("{field}.line"),
                        format!("{} points; at most {}", line.len(), lim.max_vertices),
                    ));
                }
                for (i, p) in line.iter().enumerate() {
                    check_point(&format!("{field}.line[{i}]"), *p)?;
                }
                let distinct =
                    open_ring(line)
                        .len()
                        .max(if line.len() > 1 && line.first() != line.last() {
                            2
                        } else {
                            0
                        });
                if line.len() < 2 || distinct < 2 {
                    return Err(DefError::new(
                        format!("{field}.line"),
                        "the corridor route needs at least 2 distinct points",
                    ));
                }
                check_distance(
                    &format!("{field}.width_m"),
                    "the corridor width",
                    *width_m,
                    lim,
                )
            }
        }
    }
}

fn check_text(field: &str, s: &str, lim: &DefLimits) -> Result<(), DefError> {
    if s.len() > lim.max_text_len {
        return Err(DefError::new(
            field,
            format!("{} bytes; at most {}", s.len(), lim.max_text_len),
        ));
    }
    Ok(())
}

impl Geofence {
    /// Validates everything but the id (which the server may assign).
    pub fn validate(&self, lim: &DefLimits) -> Result<(), DefError> {
        if !self.id.is_empty() {
            validate_id(&self.id, lim.max_text_len)?;
        }
        check_text("name", &self.name, lim)?;
        self.shape.validate("shape", lim)?;
        self.filter.validate("filter", lim)?;
        let t = &self.triggers;
        if !t.enter && !t.exit && t.dwell_secs.is_none() && t.count_above.is_none() {
            return Err(DefError::new(
                "triggers",
                "no trigger: set enter, exit, dwell_secs or count_above",
            ));
        }
        if let Some(d) = t.dwell_secs
            && (!d.is_finite() || d <= 0.0)
        {
            return Err(DefError::new(
                "triggers.dwell_secs",
                format!("must be above 0 seconds, got {d}"),
            ));
        }
        Ok(())
    }
}

/// Whether a threshold may watch `name`.
pub fn attribute_known(name: &str, lim: &DefLimits) -> bool {
    BUILTIN_ATTRIBUTES.contains(&name) || lim.extra_attributes.iter().any(|a| a == name)
}

impl Rule {
    /// Validates everything but the id (which the server may assign).
    pub fn validate(&self, lim: &DefLimits) -> Result<(), DefError> {
        if !self.id.is_empty() {
            validate_id(&self.id, lim.max_text_len)?;
        }
        check_text("name", &self.name, lim)?;
        match &self.rule {
            RuleKind::Proximity { a, b, distance_m } => {
                a.validate("rule.a", lim)?;
                b.validate("rule.b", lim)?;
                check_distance("rule.distance_m", "the distance", *distance_m, lim)
            }
            RuleKind::LostComms { filter, after_secs } => {
                filter.validate("rule.filter", lim)?;
                if !after_secs.is_finite() || *after_secs <= 0.0 {
                    return Err(DefError::new(
                        "rule.after_secs",
                        format!("must be above 0 seconds, got {after_secs}"),
                    ));
                }
                Ok(())
            }
            RuleKind::Threshold {
                filter,
                attribute,
                raise,
                clear,
                min_duration_secs,
            } => {
                filter.validate("rule.filter", lim)?;
                if !attribute_known(attribute, lim) {
                    let mut known: Vec<&str> = BUILTIN_ATTRIBUTES.to_vec();
                    known.extend(lim.extra_attributes.iter().map(String::as_str));
                    return Err(DefError::new(
                        "rule.attribute",
                        format!(
                            "unknown attribute {attribute:?}; known: {} (add more with [rules] extra_attributes)",
                            known.join(", ")
                        ),
                    ));
                }
                if !raise.value().is_finite() {
                    return Err(DefError::new(
                        "rule.raise",
                        "the limit must be a finite number",
                    ));
                }
                if let Some(c) = clear {
                    if !c.value().is_finite() {
                        return Err(DefError::new(
                            "rule.clear",
                            "the limit must be a finite number",
                        ));
                    }
                    match (raise, c) {
                        (Cmp::Below(r), Cmp::Above(c)) if *c >= *r => {}
                        (Cmp::Above(r), Cmp::Below(c)) if *c <= *r => {}
                        (Cmp::Below(r), _) => {
                            return Err(DefError::new(
                                "rule.clear",
                                format!(
                                    "a rule raised below {r} must clear above a value of at least {r} (hysteresis)"
                                ),
                            ));
                        }
                        (Cmp::Above(r), _) => {
                            return Err(DefError::new(
                                "rule.clear",
                                format!(
                                    "a rule raised above {r} must clear below a value of at most {r} (hysteresis)"
                                ),
                            ));
                        }
                    }
                }
                if !min_duration_secs.is_finite() || *min_duration_secs < 0.0 {
                    return Err(DefError::new(
                        "rule.min_duration_secs",
                        format!("must be 0 or more seconds, got {min_duration_secs}"),
                    ));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn fence(shape: Shape) -> Geofence {
        Geofence {
            id: "f1".into(),
            name: String::new(),
            shape,
            filter: Filter::default(),
            triggers: Triggers {
                enter: true,
                ..Default::default()
            },
            priority: Priority::High,
            enabled: true,
        }
    }

    #[test]
    fn self_intersecting_polygon_names_the_edges() {
        let g = fence(Shape::Polygon {
            exterior: vec![[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
            holes: vec![],
        });
        let e = g.validate(&DefLimits::default()).unwrap_err();
        assert_eq!(e.field, "shape.exterior");
        assert!(e.reason.contains("self-intersecting"), "{}", e.reason);
        assert!(
            e.reason.contains("edge 0") && e.reason.contains("edge 2"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn bad_radius_empty_corridor_and_bad_hole_are_named() {
        let lim = DefLimits::default();
        for r in [0.0, -5.0, f64::NAN] {
            let e = fence(Shape::Circle {
                center: [1.0, 1.0],
                radius_m: r,
            })
            .validate(&lim)
            .unwrap_err();
            assert_eq!(e.field, "shape.radius_m");
            assert!(e.reason.contains("above 0"), "{}", e.reason);
        }
        let e = fence(Shape::Corridor {
            line: vec![],
            width_m: 10.0,
        })
        .validate(&lim)
        .unwrap_err();
        assert!(e.reason.contains("empty"), "{}", e.reason);
        let e = fence(Shape::Corridor {
            line: vec![[1.0, 1.0]],
            width_m: 10.0,
        })
        .validate(&lim)
        .unwrap_err();
        assert_eq!(e.field, "shape.line");
        let e = fence(Shape::Polygon {
            exterior: vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
            holes: vec![vec![[2.0, 2.0], [3.0, 2.0], [3.0, 3.0]]],
        })
        .validate(&lim)
        .unwrap_err();
        assert_eq!(e.field, "shape.holes[0]");
        let e = fence(Shape::Circle {
            center: [1.0, 95.0],
            radius_m: 5.0,
        })
        .validate(&lim)
        .unwrap_err();
        assert!(e.reason.contains("latitude 95"), "{}", e.reason);
        let mut g = fence(Shape::Circle {
            center: [1.0, 1.0],
            radius_m: 5.0,
        });
        g.triggers = Triggers::default();
        assert_eq!(g.validate(&lim).unwrap_err().field, "triggers");
    }

    #[test]
    fn unknown_attribute_and_inverted_hysteresis_are_refused() {
        let lim = DefLimits::default();
        let mut r = Rule {
            id: "r1".into(),
            name: String::new(),
            rule: RuleKind::Threshold {
                filter: Filter::default(),
                attribute: "batery".into(),
                raise: Cmp::Below(15.0),
                clear: Some(Cmp::Above(18.0)),
                min_duration_secs: 0.0,
            },
            priority: Priority::Normal,
            enabled: true,
        };
        let e = r.validate(&lim).unwrap_err();
        assert_eq!(e.field, "rule.attribute");
        assert!(
            e.reason.contains("unknown attribute \"batery\""),
            "{}",
            e.reason
        );
        if let RuleKind::Threshold {
            attribute, clear, ..
        } = &mut r.rule
        {
            *attribute = "battery".into();
            *clear = Some(Cmp::Above(10.0));
        }
        assert_eq!(r.validate(&lim).unwrap_err().field, "rule.clear");
        let p = Rule {
            id: "p".into(),
            name: String::new(),
            rule: RuleKind::Proximity {
                a: Filter::default(),
                b: Filter::default(),
                distance_m: 0.0,
            },
            priority: Priority::High,
            enabled: true,
        };
        assert_eq!(p.validate(&lim).unwrap_err().field, "rule.distance_m");
    }

    #[test]
    fn definitions_round_trip_json() {
        let json = r#"{"id":"zone-1","name":"Depot","shape":{"type":"polygon","exterior":[[0,0],[1,0],[1,1],[0,1]],"holes":[[[0.2,0.2],[0.4,0.2],[0.4,0.4]]]},"filter":{"types":["a-h"]},"triggers":{"enter":true,"dwell_secs":60}}"#;
        let g: Geofence = serde_json::from_str(json).unwrap();
        g.validate(&DefLimits::default()).unwrap();
        assert!(g.enabled);
        let back: Geofence = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(g, back);
        let r: Rule = serde_json::from_str(r#"{"rule":{"type":"threshold","attribute":"fuel","raise":{"below":20},"clear":{"above":25},"min_duration_secs":30}}"#).unwrap();
        r.validate(&DefLimits::default()).unwrap();
        assert!(type_matches("a-f-G-U", "a-f"));
        assert!(!type_matches("a-fx", "a-f"));
    }
}
