//! History benchmarks: bytes on disk per report and track query latency. (being written)
