//! The MQTT edge: broker listeners, session persistence, device topics into the engine, entity topics out.
