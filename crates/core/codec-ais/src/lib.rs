//! rampart-codec-ais (being written)
