//! rampart-codec-json (placeholder)
