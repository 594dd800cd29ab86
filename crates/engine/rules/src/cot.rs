//! CoT: TAK drawing shapes become geofences, alerts become CoT events.
