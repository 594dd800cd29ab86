//! rampart-engine (placeholder)
