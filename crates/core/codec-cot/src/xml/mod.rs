//! CoT XML: the parser (`parse`) and the writer (`encode`), kept as exact inverses.

pub(crate) mod encode;
pub(crate) mod parse;
