//! Benchmarks live in micro.rs and e2e.sh; this crate has no library code.
