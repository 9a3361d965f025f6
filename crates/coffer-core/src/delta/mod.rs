//! Delta blobs: a new chunk stored as a zstd frame against one or two chunks
//! of the previous version of the same stream (its *bases*), so a day of
//! scattered row changes costs what changed, not a full copy.
//!
//! This module owns the delta's payload (the bases it names, then the
//! frame), the rules for when a delta is worth storing and how deep chains
//! may grow, and, in its submodules, how bases are found: [`anchors`] samples
//! a chunk's lines, [`sketch`] stores those samples per stream version, and
//! [`select`] picks the bases. Decoding against bases happens in the one
//! blob reader (`repository/blobs.rs`), which checks the result's keyed MAC
//! like any other blob's: a wrong or damaged base gives an error, never
//! wrong bytes.

pub mod anchors;
pub mod rebase;
pub mod select;
pub mod sketch;

use crate::compress;
use crate::id::BlobId;

/// Most bases one delta names.
pub const MAX_BASES: usize = 2;

/// Longest chain allowed: a delta whose bases are themselves deltas is one
/// level deeper than its deepest base; a chunk whose best bases are already
/// this deep is stored whole, which starts a new chain. Restoring a chunk
/// decodes its whole chain, so this bounds restore work; storage pays one
/// whole copy per chain. Measured on 18 days of a 77 MB dump with 2% of
/// rows changing daily: depth 4 stored 4.3 full copies and restored its
/// deepest day at 1/2.5 the speed of a whole one; depth 8 stored 2.2 copies
/// and restored its deepest day at 1/5 (docs/performance.md).
pub const MAX_DEPTH: u8 = 8;

/// A delta is kept only if it is at most this fraction of the chunk's
/// ordinary compressed size (numerator over 16): a delta costs reads of its
/// bases at restore, so a small saving is not worth it.
const PAYS_SIXTEENTHS: usize = 12;

/// A delta at most 1/`CLEARLY_PAYS` of the chunk's length is kept without
/// compressing the chunk on its own to compare (saves that CPU on the
/// common case of a small change).
pub const CLEARLY_PAYS: usize = 16;

/// zstd level of delta frames. The long matches into the bases come from
/// long-distance matching whatever the level; what the level sets is how
/// the bases are indexed, which is most of a delta's cost (filling level
/// 3's double hash table took 44% of a backup's CPU). Measured on a
/// scattered day of a 77 MB dump: level 1 stored 3% less than level 3 in
/// 9% less CPU.
pub const LEVEL: i32 = 1;

/// Whether to store new chunks as deltas (`--delta`, and the repository
/// default in `config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaMode {
    /// Never.
    Off = 0,
    /// Against the previous version of the same stream, when it pays.
    Auto = 1,
}

impl DeltaMode {
    /// Parses the stored byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(DeltaMode::Off),
            1 => Some(DeltaMode::Auto),
            _ => None,
        }
    }
}

impl std::str::FromStr for DeltaMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(DeltaMode::Off),
            "auto" => Ok(DeltaMode::Auto),
            _ => Err(format!("{s:?} is not a delta mode (auto, off)")),
        }
    }
}

impl std::fmt::Display for DeltaMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeltaMode::Off => "off",
            DeltaMode::Auto => "auto",
        })
    }
}

/// True when a delta of `delta_len` bytes is worth storing instead of the
/// chunk compressed on its own to `plain_len` bytes.
pub fn pays(delta_len: usize, plain_len: usize) -> bool {
    delta_len * 16 <= plain_len * PAYS_SIXTEENTHS
}

/// Encodes a delta blob's payload: `count u8 | base ids | zstd frame` of
/// `chunk` against the concatenated `bases`.
pub fn encode(chunk: &[u8], bases: &[(BlobId, &[u8])], level: i32) -> Result<Vec<u8>, String> {
    if bases.is_empty() || bases.len() > MAX_BASES {
        return Err(format!("a delta needs 1 to {MAX_BASES} bases"));
    }
    let plains: Vec<&[u8]> = bases.iter().map(|(_, b)| *b).collect();
    let frame = compress::compress_against(&plains, chunk, level)?;
    let mut out = Vec::with_capacity(1 + 32 * bases.len() + frame.len());
    out.push(bases.len() as u8);
    for (id, _) in bases {
        out.extend_from_slice(&id.0);
    }
    out.extend_from_slice(&frame);
    Ok(out)
}

/// Encodes `chunk` the cheaper way: as a delta against `bases` when that
/// pays, else compressed on its own at `level` (a delta of at most
/// 1/[`CLEARLY_PAYS`] of the chunk is kept without trying). Backup and
/// prune's re-basing both decide here.
pub fn encode_best(
    chunk: &[u8],
    bases: &[(BlobId, &[u8])],
    level: i32,
) -> Result<(compress::Encoding, Vec<u8>), String> {
    if bases.is_empty() {
        return Ok(compress::compress(chunk, level));
    }
    let delta = encode(chunk, bases, LEVEL)?;
    if delta.len() * CLEARLY_PAYS <= chunk.len() {
        return Ok((compress::Encoding::Delta, delta));
    }
    let (encoding, whole) = compress::compress(chunk, level);
    Ok(if pays(delta.len(), whole.len()) {
        (compress::Encoding::Delta, delta)
    } else {
        (encoding, whole)
    })
}

/// Splits a delta payload into the bases it names and its frame.
pub fn parse(payload: &[u8]) -> Result<(Vec<BlobId>, &[u8]), String> {
    let count = *payload.first().ok_or("an empty delta payload")? as usize;
    if count == 0 || count > MAX_BASES {
        return Err(format!("a delta naming {count} bases"));
    }
    let ids_end = 1 + 32 * count;
    let ids = payload
        .get(1..ids_end)
        .ok_or("a delta payload cut inside its base ids")?;
    let bases = ids
        .chunks_exact(32)
        .map(|c| BlobId(c.try_into().expect("32 bytes")))
        .collect();
    Ok((bases, &payload[ids_end..]))
}

/// Decodes a delta's frame against its bases' plaintexts (in the payload's
/// order) to exactly `raw_len` bytes. The caller checks the keyed MAC.
pub fn decode(frame: &[u8], bases: &[&[u8]], raw_len: usize) -> Result<Vec<u8>, String> {
    compress::decompress_against(bases, frame, raw_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_bad_payloads() {
        let base = b"COPY t (a, b) FROM stdin;\n1\tone\n2\ttwo\n3\tthree\n".repeat(40);
        let mut chunk = base.clone();
        chunk[100] = b'X';
        let id = BlobId([9; 32]);
        let payload = encode(&chunk, &[(id, &base)], 3).unwrap();
        assert!(payload.len() < 100, "{}", payload.len());
        let (bases, frame) = parse(&payload).unwrap();
        assert_eq!(bases, vec![id]);
        assert_eq!(decode(frame, &[&base], chunk.len()).unwrap(), chunk);
        assert!(parse(&[]).is_err());
        assert!(parse(&[0]).is_err());
        assert!(parse(&[3; 200]).is_err());
        assert!(parse(&payload[..20]).is_err());
        assert!(encode(&chunk, &[], 3).is_err());
    }

    #[test]
    fn a_delta_pays_only_when_clearly_smaller() {
        assert!(pays(10, 100));
        assert!(pays(75, 100));
        assert!(!pays(76, 100));
        assert!(!pays(100, 100));
    }
}
