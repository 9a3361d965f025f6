//! The repository `config` object: format version, repository id and the
//! parameters every writer must agree on (chunk sizes, pack size, default
//! compression level). Sealed under the master key like other metadata.

use bincode::{Decode, Encode};

use crate::chunker::ChunkerParams;
use crate::compress;

/// Repository format version written by this build (and the newest it reads).
pub const REPO_VERSION: u32 = 1;

/// Default target pack size: 16 MiB, few enough objects for object storage
/// listing and per-request costs, small enough to keep memory flat.
pub const DEFAULT_PACK_SIZE: u32 = 16 * 1024 * 1024;

/// Payload of the `config` object.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RepoConfig {
    /// Repository format version.
    pub version: u32,
    /// Random repository id (names the local cache; never reused).
    pub id: [u8; 32],
    /// Chunk size bounds.
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Default zstd level for new blobs.
    pub compression_level: i32,
}

impl RepoConfig {
    /// A new configuration with a fresh id and the given sizes.
    pub fn new(chunker: ChunkerParams, pack_size: u32, compression_level: i32) -> Self {
        RepoConfig {
            version: REPO_VERSION,
            id: crate::crypto::random_bytes(),
            chunker,
            pack_size,
            compression_level,
        }
    }

    /// Checks values a writer relies on.
    pub fn validate(&self) -> Result<(), String> {
        self.chunker.validate()?;
        if !(1024 * 1024..=1024 * 1024 * 1024).contains(&self.pack_size) {
            return Err(format!(
                "pack size {} is outside 1 MiB..1 GiB",
                self.pack_size
            ));
        }
        check_level(self.compression_level)
    }
}

/// zstd levels coffer accepts.
pub fn check_level(level: i32) -> Result<(), String> {
    if (1..=22).contains(&level) {
        Ok(())
    } else {
        Err(format!("compression level {level} is outside 1..22"))
    }
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig::new(
            ChunkerParams::DEFAULT,
            DEFAULT_PACK_SIZE,
            compress::DEFAULT_LEVEL,
        )
    }
}
