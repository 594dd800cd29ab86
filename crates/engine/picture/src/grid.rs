//! The spatial index: a uniform latitude/longitude grid whose occupied cells map to the slab
//! slots of the entities inside them. Only occupied cells exist, so memory follows the data,
//! not the globe. The cell of an entity is a pure function of its position, so entities do not
//! store it; they store only their index inside the cell's vector, which makes removal an
//! O(1) `swap_remove`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use foldhash::fast::RandomState;

use crate::geo::{BBox, EARTH_RADIUS_M, Near};

/// Margin by which a cell's corners must be inside a disc for the whole cell to count as
/// inside: entities sit at most nanometres outside their cell's computed edges.
const DISC_MARGIN_M: f64 = 1e-3;

/// Smallest accepted cell size (about 1 m): below it the cell count would overflow `u32` rows.
pub(crate) const MIN_CELL_DEG: f64 = 1e-5;

/// A packed cell key: row in the high 32 bits, column in the low 32 bits.
pub(crate) type CellKey = u64;

/// A set of cells: a row range and one or two column ranges (two when crossing the
/// antimeridian). Ranges are inclusive.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    row0: u32,
    row1: u32,
    cols: [(u32, u32); 2],
    ncols: usize,
}

impl Region {
    /// How many cells the region spans, occupied or not.
    pub(crate) fn cell_count(&self) -> u64 {
        let rows = u64::from(self.row1 - self.row0) + 1;
        let cols: u64 = self.cols[..self.ncols]
            .iter()
            .map(|&(a, b)| u64::from(b - a) + 1)
            .sum();
        rows * cols
    }

    /// True when the cell is strictly inside the region's row and column ranges. Because cell
    /// indices are monotonic in position, every entity placed in such a cell lies inside the
    /// box the region was built from, exactly, with no floating-point doubt.
    pub(crate) fn is_interior(&self, row: u32, col: u32) -> bool {
        row > self.row0
            && row < self.row1
            && self.cols[..self.ncols]
                .iter()
                .any(|&(a, b)| col > a && col < b)
    }

    fn contains_key(&self, key: CellKey) -> bool {
        let row = (key >> 32) as u32;
        let col = key as u32;
        row >= self.row0
            && row <= self.row1
            && self.cols[..self.ncols]
                .iter()
                .any(|&(a, b)| col >= a && col <= b)
    }
}

/// The grid: geometry plus the occupied cells.
#[derive(Debug)]
pub(crate) struct Grid {
    cell_deg: f64,
    inv_cell: f64,
    rows: u32,
    cols: u32,
    cells: HashMap<CellKey, Vec<u32>, RandomState>,
}

impl Grid {
    /// A grid of `cell_deg`-degree cells; nonsensical sizes are clamped to
    /// `MIN_CELL_DEG..=180`.
    pub(crate) fn new(cell_deg: f64) -> Self {
        let cell_deg = if cell_deg.is_finite() {
            cell_deg.clamp(MIN_CELL_DEG, 180.0)
        } else {
            0.05
        };
        Grid {
            cell_deg,
            inv_cell: 1.0 / cell_deg,
            rows: ((180.0 / cell_deg).ceil() as u32).max(1),
            cols: ((360.0 / cell_deg).ceil() as u32).max(1),
            cells: HashMap::default(),
        }
    }

    /// Cell size in degrees after clamping.
    pub(crate) fn cell_deg(&self) -> f64 {
        self.cell_deg
    }

    /// Number of rows and columns.
    pub(crate) fn dims(&self) -> (u32, u32) {
        (self.rows, self.cols)
    }

    /// Number of occupied cells.
    pub(crate) fn occupied(&self) -> usize {
        self.cells.len()
    }

    /// Row of a latitude. Monotonic in `lat`, which is what makes range queries exact.
    pub(crate) fn row(&self, lat: f64) -> u32 {
        // `as` saturates (NaN becomes 0), so out-of-range input cannot index out of the grid.
        (((lat + 90.0) * self.inv_cell).floor() as i64).clamp(0, i64::from(self.rows) - 1) as u32
    }

    /// Column of a longitude. Monotonic in `lon`.
    pub(crate) fn col(&self, lon: f64) -> u32 {
        (((lon + 180.0) * self.inv_cell).floor() as i64).clamp(0, i64::from(self.cols) - 1) as u32
    }

    /// The packed key of a row and column.
    pub(crate) fn key_rc(row: u32, col: u32) -> CellKey {
        (u64::from(row) << 32) | u64::from(col)
    }

    /// The key of the cell containing a point.
    pub(crate) fn key(&self, lat: f64, lon: f64) -> CellKey {
        Self::key_rc(self.row(lat), self.col(lon))
    }

    /// The slots in one cell (empty when unoccupied).
    pub(crate) fn cell(&self, key: CellKey) -> &[u32] {
        self.cells.get(&key).map_or(&[], Vec::as_slice)
    }

    /// Adds `slot` to cell `key`; returns its index inside the cell.
    pub(crate) fn insert(&mut self, key: CellKey, slot: u32) -> u32 {
        let v = self.cells.entry(key).or_default();
        v.push(slot);
        // A cell holds at most max_entities (< u32::MAX) slots.
        (v.len() - 1) as u32
    }

    /// Removes the slot at `idx` of cell `key`. Returns the slot that was moved into `idx`
    /// (whose stored index the caller must update), if any.
    pub(crate) fn remove(&mut self, key: CellKey, idx: u32) -> Option<u32> {
        let v = self.cells.get_mut(&key)?;
        let idx = idx as usize;
        if idx >= v.len() {
            return None;
        }
        v.swap_remove(idx);
        let moved = v.get(idx).copied();
        if v.is_empty() {
            self.cells.remove(&key);
        } else if v.capacity() > 16 && v.capacity() > 4 * v.len() {
            // A crowd that dispersed should not pin its peak allocation forever.
            v.shrink_to(2 * v.len());
        }
        moved
    }

    /// The cells overlapping `b`, or `None` when `b` is empty.
    pub(crate) fn region(&self, b: &BBox) -> Option<Region> {
        if b.min_lat.is_nan() || b.max_lat.is_nan() || b.min_lat > b.max_lat {
            return None;
        }
        if !b.min_lon.is_finite() || !b.max_lon.is_finite() {
            return None;
        }
        let row0 = self.row(b.min_lat);
        let row1 = self.row(b.max_lat);
        let (cols, ncols) = if b.min_lon <= b.max_lon {
            ([(self.col(b.min_lon), self.col(b.max_lon)), (0, 0)], 1)
        } else {
            let west = self.col(b.min_lon);
            // A box wrapping almost all the way round can start and end in the same column;
            // the ranges must stay disjoint so no cell is visited twice.
            let east = self.col(b.max_lon).min(west.saturating_sub(1));
            if west == 0 {
                ([(0, self.cols - 1), (0, 0)], 1)
            } else {
                ([(west, self.cols - 1), (0, east)], 2)
            }
        };
        Some(Region {
            row0,
            row1,
            cols,
            ncols,
        })
    }

    /// Calls `f` with each occupied cell of the region (row, column, slots) until it breaks.
    /// Walks the region's cells when there are fewer of them than occupied cells, else walks
    /// the occupied cells, so a huge box over a sparse picture costs no more than a scan.
    pub(crate) fn visit(
        &self,
        region: &Region,
        mut f: impl FnMut(u32, u32, &[u32]) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if region.cell_count() <= self.cells.len() as u64 {
            for row in region.row0..=region.row1 {
                for &(c0, c1) in &region.cols[..region.ncols] {
                    for col in c0..=c1 {
                        if let Some(v) = self.cells.get(&Self::key_rc(row, col)) {
                            f(row, col, v)?;
                        }
                    }
                }
            }
        } else {
            for (&key, v) in &self.cells {
                if region.contains_key(key) {
                    f((key >> 32) as u32, key as u32, v)?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Approximate heap bytes held by the grid.
    pub(crate) fn heap_bytes(&self) -> usize {
        let buckets = self.cells.capacity() * 8 / 7;
        let table = buckets * (std::mem::size_of::<(CellKey, Vec<u32>)>() + 1);
        let vecs: usize = self.cells.values().map(|v| v.capacity() * 4).sum();
        table + vecs
    }
}

/// How a grid cell relates to a disc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cover {
    /// Every point of the cell is inside the disc.
    Inside,
    /// No point of the cell is inside the disc.
    Outside,
    /// Unknown or partial: test each entity.
    Partial,
}

/// Terms of one grid row, computed once and reused along the row.
#[derive(Clone, Copy, Debug)]
struct RowTerms {
    row: u32,
    /// `sin²(Δφ/2)` for the southern and northern edge.
    s: [f64; 2],
    /// `cos φ` for the southern and northern edge.
    c: [f64; 2],
    /// Largest longitude offset, in degrees, of any disc point within the row's latitude band
    /// (negative when the band misses the disc).
    half_width: f64,
}

/// Classifies grid cells against a disc, so cells wholly inside need no distance test and
/// cells wholly outside (the corners of the disc's bounding box) are not read at all.
///
/// On a sphere the farthest point of a lat/lon cell from a centre is one of its corners,
/// unless the cell straddles the meridian opposite the centre or the disc reaches past a
/// quarter of the globe; such cells are reported as partial. A cell is outside when its
/// longitudes miss the disc's widest extent within the cell's latitude band.
#[derive(Debug)]
pub(crate) struct DiscCover {
    /// Whether the corner rule applies (radius below a quarter of the globe).
    inside_usable: bool,
    /// Whether the row-width rule applies (the disc contains no pole).
    outside_usable: bool,
    lat_c: f64,
    lon_c: f64,
    sin_c: f64,
    cos_c: f64,
    /// Haversine `a` of the radius less a margin: corners with `a <= a_max` are inside.
    a_max: f64,
    /// Angular radius plus a margin, in radians, for the outside rule.
    ang_out: f64,
    cell_deg: f64,
    row: Option<RowTerms>,
}

impl DiscCover {
    pub(crate) fn new(n: &Near, cell_deg: f64) -> Self {
        let quarter = EARTH_RADIUS_M * std::f64::consts::FRAC_PI_2;
        let r_in = n.radius_m - DISC_MARGIN_M;
        let inside_usable = (0.0..quarter).contains(&r_in);
        let half = if inside_usable {
            r_in / EARTH_RADIUS_M * 0.5
        } else {
            0.0
        };
        let lat_c = n.lat.to_radians();
        let ang_out = (n.radius_m + DISC_MARGIN_M) / EARTH_RADIUS_M;
        let outside_usable = n.radius_m >= 0.0
            && lat_c.abs() + ang_out < std::f64::consts::FRAC_PI_2 - 1e-9
            && n.lon.is_finite();
        DiscCover {
            inside_usable,
            outside_usable,
            lat_c,
            lon_c: n.lon,
            sin_c: lat_c.sin(),
            cos_c: lat_c.cos(),
            a_max: half.sin() * half.sin(),
            ang_out,
            cell_deg,
            row: None,
        }
    }

    fn row_terms(&mut self, row: u32) -> RowTerms {
        if let Some(t) = self.row
            && t.row == row
        {
            return t;
        }
        let lat0 = f64::from(row) * self.cell_deg - 90.0;
        let lat1 = (lat0 + self.cell_deg).min(90.0);
        let mut t = RowTerms {
            row,
            s: [0.0; 2],
            c: [0.0; 2],
            half_width: 180.0,
        };
        for (i, lat) in [lat0, lat1].into_iter().enumerate() {
            let phi = lat.to_radians();
            let h = ((phi - self.lat_c) * 0.5).sin();
            t.s[i] = h * h;
            t.c[i] = phi.cos();
        }
        if self.outside_usable {
            // The disc's half-width at latitude φ is acos((cos r − sin φc sin φ) / (cos φc
            // cos φ)); it peaks at φ = asin(sin φc / cos r), so within the band it peaks at
            // that latitude clamped into the band's overlap with the disc.
            let lo = lat0.to_radians().max(self.lat_c - self.ang_out);
            let hi = lat1.to_radians().min(self.lat_c + self.ang_out);
            t.half_width = if lo > hi {
                -1.0
            } else {
                let cos_r = self.ang_out.cos();
                let widest = (self.sin_c / cos_r).clamp(-1.0, 1.0).asin();
                let phi = widest.clamp(lo, hi);
                let cos_w = (cos_r - self.sin_c * phi.sin()) / (self.cos_c * phi.cos());
                cos_w.clamp(-1.0, 1.0).acos().to_degrees() + 1e-7
            };
        }
        self.row = Some(t);
        t
    }

    /// How cell (`row`, `col`) relates to the disc.
    pub(crate) fn classify(&mut self, row: u32, col: u32) -> Cover {
        if !self.inside_usable && !self.outside_usable {
            return Cover::Partial;
        }
        let lon0 = f64::from(col) * self.cell_deg - 180.0;
        let lon1 = (lon0 + self.cell_deg).min(180.0);
        // Longitude offsets of the cell's edges from the centre, western in [-180, 180).
        let west = (lon0 - self.lon_c + 180.0).rem_euclid(360.0) - 180.0;
        let east = west + (lon1 - lon0);
        if east >= 180.0 || west <= -180.0 {
            // Straddles the meridian opposite the centre.
            return Cover::Partial;
        }
        let t = self.row_terms(row);
        if self.outside_usable && (west > t.half_width || east < -t.half_width) {
            return Cover::Outside;
        }
        if !self.inside_usable {
            return Cover::Partial;
        }
        let h0 = (west.to_radians() * 0.5).sin();
        let h1 = (east.to_radians() * 0.5).sin();
        let l = [h0 * h0, h1 * h1];
        let inside =
            (0..2).all(|i| (0..2).all(|j| t.s[i] + self.cos_c * t.c[i] * l[j] <= self.a_max));
        if inside {
            Cover::Inside
        } else {
            Cover::Partial
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disc_cover_covers_inner_cells_only() {
        let g = Grid::new(0.05);
        let n = Near {
            lat: 50.02,
            lon: 10.02,
            radius_m: 76_000.0,
        };
        let mut d = DiscCover::new(&n, g.cell_deg());
        assert_eq!(d.classify(g.row(50.02), g.col(10.02)), Cover::Inside);
        assert_eq!(d.classify(g.row(50.5), g.col(10.5)), Cover::Inside);
        assert_eq!(d.classify(g.row(50.7), g.col(10.02)), Cover::Partial);
        assert_eq!(d.classify(g.row(50.02), g.col(11.2)), Cover::Outside);
        assert_eq!(d.classify(g.row(50.65), g.col(11.0)), Cover::Outside);
        let mut covered = 0;
        for row in g.row(49.0)..=g.row(51.0) {
            for col in g.col(9.0)..=g.col(11.0) {
                let c = d.classify(row, col);
                let lat0 = f64::from(row) * 0.05 - 90.0;
                let lon0 = f64::from(col) * 0.05 - 180.0;
                if c == Cover::Outside {
                    // No point of the cell (sampled on a fine lattice) is inside.
                    for i in 0..=10 {
                        for j in 0..=10 {
                            let (la, lo) =
                                (lat0 + 0.005 * f64::from(i), lon0 + 0.005 * f64::from(j));
                            assert!(!n.contains(la, lo), "{la},{lo}");
                        }
                    }
                }
                if c == Cover::Inside {
                    covered += 1;
                    // Every corner is within the radius.
                    for (la, lo) in [(0.0, 0.0), (0.05, 0.0), (0.0, 0.05), (0.05, 0.05)] {
                        assert!(n.contains(lat0 + la, lon0 + lo));
                    }
                }
            }
        }
        // About the disc's area in cells (76 km radius, cells ~5.6 x 3.6 km).
        assert!(covered > 700 && covered < 1000, "{covered}");
    }
}
