//! Live-picture benchmarks: bounding-box query latency and memory per entity. (being written)
