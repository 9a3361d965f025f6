//! Benchmarks: `micro.rs` (criterion, per-stage throughput), `e2e.py`
//! (whole-command runs against restic and `zstd -T2`, medians) and
//! `pg_formats.sh` (what a day of change costs per pg_dump format),
//! `delta_days.sh` (two months of daily scattered changes with deltas),
//! `delta_formats.sh` (deltas on dumps that change shape) and `scale.sh`
//! (memory and start-up at millions of blobs, grown by the scale simulator
//! `scale.rs`). This
//! crate has no library code; see docs/performance.md for how to run them.
