//! rampart-codec-nmea (being written)
