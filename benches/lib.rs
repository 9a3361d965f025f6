//! Benchmarks: `micro.rs` (criterion, per-stage throughput), `e2e.py`
//! (whole-command runs against restic and `zstd -T2`, medians) and
//! `pg_formats.sh` (what a day of change costs per pg_dump format). This
//! crate has no library code; see docs/performance.md for how to run them.
