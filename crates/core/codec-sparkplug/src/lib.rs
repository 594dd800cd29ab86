//! Eclipse Sparkplug B: topic names and protobuf payloads to metrics. Pure, no I/O.
