//! telemetry (to be written)
