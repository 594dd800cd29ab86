//! rampart-bench (placeholder)
