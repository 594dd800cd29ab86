//! rampart-codec-cot (being written)
