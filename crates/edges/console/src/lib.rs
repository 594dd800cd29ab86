//! The operator console: web assets built into the binary and served at /.
