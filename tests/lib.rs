//! Shared helpers live in e2e/support.rs; this crate has no library code.
