//! The spatial index: a uniform latitude/longitude grid whose occupied cells map to the slab
//! slots of the entities inside them. Only occupied cells exist, so memory follows the data,
//! not the globe. The cell of an entity is a pure function of its position, so entities do not
//! store it; they store only their index inside the cell's vector, which makes removal an
//! O(1) `swap_remove`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use foldhash::fast::RandomState;

use crate::geo::{BBox, EARTH_RADIUS_M, Near, haversine_m};

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

    /// True when every point of cell (`row`, `col`) lies within the disc `n`.
    ///
    /// On a sphere the farthest point of a lat/lon cell from a centre is one of its corners,
    /// unless the cell straddles the meridian opposite the centre or the disc reaches past a
    /// quarter of the globe; such cells answer `false` (the caller then tests each entity).
    pub(crate) fn cell_inside_disc(&self, row: u32, col: u32, n: &Near) -> bool {
        let quarter_globe_m = EARTH_RADIUS_M * std::f64::consts::FRAC_PI_2;
        if n.radius_m.is_nan() || n.radius_m >= quarter_globe_m {
            return false;
        }
        let lat0 = f64::from(row) * self.cell_deg - 90.0;
        let lat1 = (lat0 + self.cell_deg).min(90.0);
        let lon0 = f64::from(col) * self.cell_deg - 180.0;
        let lon1 = (lon0 + self.cell_deg).min(180.0);
        // Longitude offset of the western edge from the centre, in [-180, 180).
        let west = (lon0 - n.lon + 180.0).rem_euclid(360.0) - 180.0;
        if west + (lon1 - lon0) >= 180.0 || west <= -180.0 {
            return false;
        }
        let r = n.radius_m - DISC_MARGIN_M;
        [(lat0, lon0), (lat0, lon1), (lat1, lon0), (lat1, lon1)]
            .iter()
            .all(|&(lat, lon)| haversine_m(n.lat, n.lon, lat, lon) <= r)
    }

    /// Calls `f` with each occupied cell of the region (row, column, slots) until it breaks. Walks the region's
    /// cells when there are fewer of them than occupied cells, else walks the occupied cells,
    /// so a huge box over a sparse picture costs no more than a scan.
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
