//! rampart-sim (placeholder)
