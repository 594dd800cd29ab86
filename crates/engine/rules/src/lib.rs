//! Rules and alerts: geofences, proximity, lost comms, thresholds and emergencies, evaluated as reports fold.
