//! The payload of `index/<id>` objects, in each version: type 6 (format 2,
//! delta bases per pack), type 4 (marked packs) and type 2 (the first). All
//! are read into one [`IndexFile`]; a format 1 repository is written type 4
//! files, a format 2 one type 6 files. Also splits a large file into parts.

use bincode::{Decode, Encode};

use crate::crypto::SALT_LEN;
use crate::id::{BlobId, IndexId, PackId};
use crate::pack::BlobEntry;

/// Payload of a type 6 `index/<id>` object, and what every version is read
/// into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct IndexFile {
    /// Index files whose content this one fully includes, transitively;
    /// readers ignore those.
    pub supersedes: Vec<IndexId>,
    /// Packs described by this file.
    pub packs: Vec<IndexedPack>,
    /// Packs `prune` found unused and will delete once they have been marked
    /// for the deletion delay. Their blobs still restore, but backups do not
    /// deduplicate against them. A pack marked in any live file is marked.
    pub marked: Vec<MarkedPack>,
}

/// A pack waiting for deletion, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MarkedPack {
    /// When `prune` marked it (Unix nanoseconds, prune's clock).
    pub marked_unix_ns: i64,
    /// The pack as it was indexed.
    pub pack: IndexedPack,
}

/// One pack and its blobs, as listed in an index file.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct IndexedPack {
    /// Pack id (hash of its bytes).
    pub id: PackId,
    /// Salt selecting the pack's subkey, so a blob can be read with one
    /// ranged GET.
    pub salt: [u8; SALT_LEN],
    /// Pack size in bytes.
    pub size: u64,
    /// Its blobs.
    pub blobs: Vec<BlobEntry>,
    /// The bases of each of its delta blobs (encoding 2), in the order the
    /// blob's payload lists them, so prune and restore know what a delta
    /// needs without opening it.
    pub bases: Vec<DeltaBases>,
}

/// The base blobs (data blobs) one delta blob of a pack is decoded against.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct DeltaBases {
    /// The delta blob.
    pub id: BlobId,
    /// Its bases, in order.
    pub bases: Vec<BlobId>,
}

impl IndexedPack {
    /// A pack with no delta blobs.
    pub fn plain(id: PackId, salt: [u8; SALT_LEN], size: u64, blobs: Vec<BlobEntry>) -> Self {
        IndexedPack {
            id,
            salt,
            size,
            blobs,
            bases: Vec::new(),
        }
    }

    /// The same pack listing only `blobs` (a subset of its own), with their bases.
    fn with_blobs(&self, blobs: &[BlobEntry]) -> Self {
        let ids: std::collections::HashSet<BlobId> = blobs.iter().map(|b| b.id).collect();
        IndexedPack {
            blobs: blobs.to_vec(),
            bases: self
                .bases
                .iter()
                .filter(|d| ids.contains(&d.id))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

impl IndexFile {
    /// Blobs listed, marked packs included (for planning consolidation).
    pub fn blob_count(&self) -> u64 {
        self.packs
            .iter()
            .chain(self.marked.iter().map(|m| &m.pack))
            .map(|p| p.blobs.len() as u64)
            .sum()
    }

    /// True when some pack lists delta bases: such a file can only be
    /// written as type 6.
    pub fn has_deltas(&self) -> bool {
        self.packs
            .iter()
            .chain(self.marked.iter().map(|m| &m.pack))
            .any(|p| !p.bases.is_empty())
    }
}

/// A pack as type 2 and type 4 files list it: no delta bases.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct IndexedPackV1 {
    id: PackId,
    salt: [u8; SALT_LEN],
    size: u64,
    blobs: Vec<BlobEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
struct MarkedPackV1 {
    marked_unix_ns: i64,
    pack: IndexedPackV1,
}

/// Payload of a type 2 `index/<id>` object: no marks, no bases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct IndexFileV1 {
    supersedes: Vec<IndexId>,
    packs: Vec<IndexedPackV1>,
}

/// Payload of a type 4 `index/<id>` object: marks, no bases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct IndexFileV2 {
    supersedes: Vec<IndexId>,
    packs: Vec<IndexedPackV1>,
    marked: Vec<MarkedPackV1>,
}

impl From<IndexedPackV1> for IndexedPack {
    fn from(p: IndexedPackV1) -> Self {
        IndexedPack::plain(p.id, p.salt, p.size, p.blobs)
    }
}

impl From<IndexFileV1> for IndexFile {
    fn from(v1: IndexFileV1) -> Self {
        IndexFile {
            supersedes: v1.supersedes,
            packs: v1.packs.into_iter().map(Into::into).collect(),
            marked: Vec::new(),
        }
    }
}

impl From<IndexFileV2> for IndexFile {
    fn from(v2: IndexFileV2) -> Self {
        IndexFile {
            supersedes: v2.supersedes,
            packs: v2.packs.into_iter().map(Into::into).collect(),
            marked: v2
                .marked
                .into_iter()
                .map(|m| MarkedPack {
                    marked_unix_ns: m.marked_unix_ns,
                    pack: m.pack.into(),
                })
                .collect(),
        }
    }
}

impl TryFrom<IndexFile> for IndexFileV2 {
    type Error = String;

    /// A type 4 file cannot carry delta bases.
    fn try_from(f: IndexFile) -> Result<Self, String> {
        if f.has_deltas() {
            return Err("delta blobs need a type 6 index file".into());
        }
        let v1 = |p: IndexedPack| IndexedPackV1 {
            id: p.id,
            salt: p.salt,
            size: p.size,
            blobs: p.blobs,
        };
        Ok(IndexFileV2 {
            supersedes: f.supersedes,
            packs: f.packs.into_iter().map(v1).collect(),
            marked: f
                .marked
                .into_iter()
                .map(|m| MarkedPackV1 {
                    marked_unix_ns: m.marked_unix_ns,
                    pack: v1(m.pack),
                })
                .collect(),
        })
    }
}

/// Splits an index file into parts of at most `max_blobs` blobs (a pack's
/// blobs are never split, unless one pack alone exceeds the cap). Only the
/// last part carries `supersedes`, so it must be written last: a crash
/// before it leaves the superseded files live and the earlier parts as
/// harmless duplicates.
pub fn split_index_file(file: IndexFile, max_blobs: u64) -> Vec<IndexFile> {
    let mut parts = vec![IndexFile::default()];
    let mut in_part = 0u64;
    let mut room = |n: u64, parts: &mut Vec<IndexFile>| {
        if in_part > 0 && in_part + n > max_blobs {
            parts.push(IndexFile::default());
            in_part = 0;
        }
        in_part += n;
    };
    for pack in file.packs {
        for chunk in pack.blobs.chunks(max_blobs.max(1) as usize) {
            room(chunk.len() as u64, &mut parts);
            let part = parts.last_mut().expect("one part at least");
            part.packs.push(pack.with_blobs(chunk));
        }
    }
    for m in file.marked {
        for chunk in m.pack.blobs.chunks(max_blobs.max(1) as usize) {
            room(chunk.len() as u64, &mut parts);
            let part = parts.last_mut().expect("one part at least");
            part.marked.push(MarkedPack {
                marked_unix_ns: m.marked_unix_ns,
                pack: m.pack.with_blobs(chunk),
            });
        }
    }
    parts.last_mut().expect("one part at least").supersedes = file.supersedes;
    parts
}
