//! rampart-picture (placeholder)
