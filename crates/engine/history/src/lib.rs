//! rampart-history (placeholder)
