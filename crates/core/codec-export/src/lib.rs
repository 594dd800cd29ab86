//! rampart-codec-export (being written)
