//! rampart-edge-cot (being written)
pub mod router;
