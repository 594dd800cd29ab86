//! rampart-http (placeholder)
