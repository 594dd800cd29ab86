//! rampart-codec-adsb (being written)
