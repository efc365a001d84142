//! Benchmarks live in `benches/` (criterion) and `src/bin/coldstart.rs`; see BENCHMARKS.md.
