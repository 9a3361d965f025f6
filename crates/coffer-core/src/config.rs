//! The repository `config` object: format version, repository id and the
//! parameters every writer must agree on (chunk sizes, pack size, default
//! compression level, whether backups store deltas). Sealed under the master
//! key like other metadata. Format 1 and 2 configs have their own layouts;
//! [`RepoConfig::decode`] reads both.

use bincode::{Decode, Encode};

use crate::chunker::ChunkerParams;
use crate::codec;
use crate::compress;
use crate::delta::DeltaMode;

/// Repository format version written by this build (and the newest it
/// reads). Format 2 adds delta blobs, type 6 index files and type 7
/// snapshots; format 1 repositories are read and written as format 1.
pub const REPO_VERSION: u32 = 2;

/// Default target pack size: 16 MiB, few enough objects for object storage
/// listing and per-request costs, small enough to keep memory flat.
pub const DEFAULT_PACK_SIZE: u32 = 16 * 1024 * 1024;

/// The repository configuration, of either format.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Default delta mode of backups (always off in format 1).
    pub delta: DeltaMode,
}

/// Payload of a format 1 `config`.
#[derive(Encode, Decode)]
struct ConfigV1 {
    version: u32,
    id: [u8; 32],
    chunker: ChunkerParams,
    pack_size: u32,
    compression_level: i32,
}

/// Payload of a format 2 `config`: format 1's fields, then the delta mode.
#[derive(Encode, Decode)]
struct ConfigV2 {
    version: u32,
    id: [u8; 32],
    chunker: ChunkerParams,
    pack_size: u32,
    compression_level: i32,
    delta: u8,
}

impl RepoConfig {
    /// A new format 2 configuration with a fresh id.
    pub fn new(
        chunker: ChunkerParams,
        pack_size: u32,
        compression_level: i32,
        delta: DeltaMode,
    ) -> Self {
        RepoConfig {
            version: REPO_VERSION,
            id: crate::crypto::random_bytes(),
            chunker,
            pack_size,
            compression_level,
            delta,
        }
    }

    /// True for a format 2 (or later) repository: delta blobs, type 6
    /// index files and type 7 snapshots may be written.
    pub fn has_deltas(&self) -> bool {
        self.version >= 2
    }

    /// The stored payload.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        if self.version == 1 {
            return codec::encode(&ConfigV1 {
                version: 1,
                id: self.id,
                chunker: self.chunker,
                pack_size: self.pack_size,
                compression_level: self.compression_level,
            });
        }
        codec::encode(&ConfigV2 {
            version: self.version,
            id: self.id,
            chunker: self.chunker,
            pack_size: self.pack_size,
            compression_level: self.compression_level,
            delta: self.delta as u8,
        })
    }

    /// Reads a stored payload of either format. `Err(Some(version))` is a
    /// format newer than this build reads; `Err(None)` damage.
    pub fn decode(bytes: &[u8]) -> Result<Self, Result<u32, String>> {
        let version = u32::from_le_bytes(
            bytes
                .get(..4)
                .ok_or(Err("too short".to_string()))?
                .try_into()
                .expect("4 bytes"),
        );
        match version {
            1 => {
                let c: ConfigV1 = codec::decode(bytes).map_err(Err)?;
                Ok(RepoConfig {
                    version: 1,
                    id: c.id,
                    chunker: c.chunker,
                    pack_size: c.pack_size,
                    compression_level: c.compression_level,
                    delta: DeltaMode::Off,
                })
            }
            2 => {
                let c: ConfigV2 = codec::decode(bytes).map_err(Err)?;
                Ok(RepoConfig {
                    version: 2,
                    id: c.id,
                    chunker: c.chunker,
                    pack_size: c.pack_size,
                    compression_level: c.compression_level,
                    delta: DeltaMode::from_byte(c.delta)
                        .ok_or_else(|| Err(format!("unknown delta mode {}", c.delta)))?,
                })
            }
            0 => Err(Err("format version 0".into())),
            v => Err(Ok(v)),
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

/// zstd levels coffer accepts: 1..22, and zstd's fast levels -7..-1
/// (less compression for more speed; any zstd decoder reads their frames).
pub fn check_level(level: i32) -> Result<(), String> {
    if (1..=22).contains(&level) || (-7..=-1).contains(&level) {
        Ok(())
    } else {
        Err(format!(
            "compression level {level} is outside 1..22 and -7..-1"
        ))
    }
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig::new(
            ChunkerParams::DEFAULT,
            DEFAULT_PACK_SIZE,
            compress::DEFAULT_LEVEL,
            DeltaMode::Auto,
        )
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn levels_are_zstd_s_normal_and_fast_ones() {
        for ok in [1, 3, 22, -1, -7] {
            assert!(check_level(ok).is_ok(), "{ok}");
        }
        for bad in [0, 23, -8, i32::MIN] {
            assert!(check_level(bad).is_err(), "{bad}");
        }
        // A fast level round-trips through the compressor.
        let text = b"a line of text\n".repeat(1000);
        let (enc, frame) = crate::compress::compress(&text, -3);
        assert_eq!(
            crate::compress::decompress(enc, frame, text.len()).unwrap(),
            text
        );
    }

    use super::*;

    #[test]
    fn both_formats_round_trip_and_newer_ones_are_named() {
        let v2 = RepoConfig::default();
        assert_eq!(RepoConfig::decode(&v2.encode().unwrap()).unwrap(), v2);
        let v1 = RepoConfig {
            version: 1,
            delta: DeltaMode::Off,
            ..v2.clone()
        };
        let bytes = v1.encode().unwrap();
        assert_eq!(bytes.len() + 1, v2.encode().unwrap().len());
        assert_eq!(RepoConfig::decode(&bytes).unwrap(), v1);
        let v3 = RepoConfig { version: 3, ..v2 };
        assert_eq!(RepoConfig::decode(&v3.encode().unwrap()), Err(Ok(3)));
        assert!(matches!(RepoConfig::decode(&[1, 0]), Err(Err(_))));
    }
}
