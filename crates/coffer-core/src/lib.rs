//! # coffer-core
//!
//! The engine of coffer, a backup tool for database dump streams. A stream is
//! cut into content-defined chunks ([`chunker`]), each named by a keyed
//! BLAKE3 MAC ([`crypto`]), deduplicated against the repository [`index`],
//! compressed with zstd ([`compress`]) and sealed with AES-256-GCM into
//! [`pack`] files. The order of chunks is kept as a [`tree`] of list blobs; a
//! [`snapshot`] names the tree's root. Everything is stored write-once through
//! the [`backend`] on any `object_store`.
//!
//! Vocabulary: a **blob** is one chunk or tree node; a **pack** holds many
//! blobs; an **index** file says which pack holds which blob; a **snapshot**
//! records one backup. The byte layout of everything is in `docs/format.md`.
//!
//! This crate never prints and never exits: every failure is an [`Error`].
#![forbid(unsafe_code)]

pub mod backend;
pub mod cache;
pub mod chunker;
pub mod codec;
pub mod compress;
pub mod config;
pub mod crypto;
pub mod delta;
mod error;
pub mod failpoint;
pub mod id;
pub mod index;
pub mod interrupt;
pub mod keys;
pub mod object;
pub mod pack;
pub mod policy;
pub mod producer;
pub mod progress;
pub mod repository;
pub mod snapshot;
pub mod tree;
pub mod units;

pub use error::{Error, Result};

/// `n` deterministic, incompressible bytes (xorshift64 from `seed`), for
/// unit tests.
#[cfg(test)]
pub(crate) fn test_noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
pub use repository::{
    Actor, BackupOptions, BackupSummary, CheckOptions, CheckReport, InitOptions, MaxUnused,
    Problem, PruneOptions, PruneReport, ReadData, Repository, RestoreSummary, DEFAULT_DELETE_DELAY,
    DEFAULT_MAX_UNUSED,
};
