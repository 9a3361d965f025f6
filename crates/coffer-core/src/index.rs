//! Index files (which pack holds which blob, where) and the compact in-memory
//! index built from them. Knows nothing of storage: the repository loads the
//! files and feeds them in.

use bincode::{Decode, Encode};

use crate::compress::Encoding;
use crate::crypto::SALT_LEN;
use crate::id::{BlobId, IndexId, PackId};
use crate::pack::{BlobEntry, BlobKind};

/// Payload of an `index/<id>` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct IndexFile {
    /// Index files whose content this one fully includes; readers may ignore
    /// those (used when indexes are consolidated; empty for now).
    pub supersedes: Vec<IndexId>,
    /// Packs described by this file.
    pub packs: Vec<IndexedPack>,
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
}

/// A pack known to the in-memory index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    /// Pack id.
    pub id: PackId,
    /// Subkey salt.
    pub salt: [u8; SALT_LEN],
    /// Size in bytes.
    pub size: u64,
}

/// Where a blob is, as answered by [`Index::get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// Position of the pack in [`Index::packs`].
    pub pack: u32,
    /// The entry as the pack header has it.
    pub entry: BlobEntry,
}

/// Highest number of packs the in-memory index addresses (24 bits); at the
/// default 16 MiB pack size that is 256 TiB of packs.
pub const MAX_PACKS: usize = 1 << 24;

/// 48 bytes per blob: id, then the pack number (24 bits) with kind and
/// encoding in the top byte, offset, sealed length, plaintext length.
#[derive(Clone, Copy)]
struct Slot {
    id: [u8; 32],
    pack_kind_enc: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 48);

/// The repository's blob map: a sorted vector (48 bytes a blob, binary
/// search), built once per command from all index files.
#[derive(Default)]
pub struct Index {
    packs: Vec<PackInfo>,
    slots: Vec<Slot>,
    sorted: bool,
}

impl Index {
    /// Adds every pack of an index file. Call [`Index::finish`] before lookups.
    pub fn add_file(&mut self, file: &IndexFile) -> Result<(), String> {
        for p in &file.packs {
            self.add_pack(p)?;
        }
        Ok(())
    }

    /// Adds one pack's blobs.
    pub fn add_pack(&mut self, p: &IndexedPack) -> Result<(), String> {
        if self.packs.len() >= MAX_PACKS {
            return Err(format!("more than {MAX_PACKS} packs"));
        }
        let n = self.packs.len() as u32;
        self.packs.push(PackInfo {
            id: p.id,
            salt: p.salt,
            size: p.size,
        });
        for b in &p.blobs {
            if b.kind > 0xf || b.encoding > 0xf {
                return Err(format!(
                    "blob {} has unknown kind/encoding {}/{}",
                    b.id.short(),
                    b.kind,
                    b.encoding
                ));
            }
            self.slots.push(Slot {
                id: b.id.0,
                pack_kind_enc: n | (b.kind as u32) << 28 | (b.encoding as u32) << 24,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
            });
        }
        self.sorted = false;
        Ok(())
    }

    /// Sorts the map; duplicates (a blob stored twice) keep one location.
    pub fn finish(&mut self) {
        self.slots.sort_unstable_by_key(|s| s.id);
        self.slots.dedup_by(|a, b| a.id == b.id);
        self.slots.shrink_to_fit();
        self.sorted = true;
    }

    /// Looks a blob up.
    pub fn get(&self, id: &BlobId) -> Option<BlobLocation> {
        debug_assert!(
            self.sorted || self.slots.is_empty(),
            "Index::finish not called"
        );
        let i = self.slots.binary_search_by(|s| s.id.cmp(&id.0)).ok()?;
        let s = &self.slots[i];
        Some(BlobLocation {
            pack: s.pack_kind_enc & 0x00ff_ffff,
            entry: BlobEntry {
                kind: (s.pack_kind_enc >> 28) as u8,
                encoding: ((s.pack_kind_enc >> 24) & 0xf) as u8,
                id: *id,
                offset: s.offset,
                length: s.length,
                raw_length: s.raw_length,
            },
        })
    }

    /// True when the blob is stored.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.get(id).is_some()
    }

    /// The pack with a given number.
    pub fn pack(&self, n: u32) -> &PackInfo {
        &self.packs[n as usize]
    }

    /// Number of distinct blobs.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no blob is indexed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Memory held by the blob map, for the ≤ 48 bytes/blob budget.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.packs.capacity() * std::mem::size_of::<PackInfo>()
    }
}

impl BlobLocation {
    /// The blob's kind, if known to this build.
    pub fn kind(&self) -> Option<BlobKind> {
        BlobKind::from_byte(self.entry.kind)
    }

    /// The blob's encoding, if known to this build.
    pub fn encoding(&self) -> Option<Encoding> {
        Encoding::from_byte(self.entry.encoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use proptest::prelude::*;

    fn entry(id: u8, offset: u32) -> BlobEntry {
        BlobEntry {
            kind: 1,
            encoding: 1,
            id: BlobId([id; 32]),
            offset,
            length: 20,
            raw_length: 90,
        }
    }

    #[test]
    fn lookups_find_pack_and_entry() {
        let file = IndexFile {
            supersedes: vec![],
            packs: vec![
                IndexedPack {
                    id: PackId([1; 32]),
                    salt: [5; 32],
                    size: 100,
                    blobs: vec![entry(9, 37), entry(3, 57)],
                },
                IndexedPack {
                    id: PackId([2; 32]),
                    salt: [6; 32],
                    size: 100,
                    blobs: vec![entry(7, 37)],
                },
            ],
        };
        let decoded: IndexFile = codec::decode(&codec::encode(&file)).unwrap();
        assert_eq!(decoded, file);
        let mut idx = Index::default();
        idx.add_file(&decoded).unwrap();
        idx.finish();
        let loc = idx.get(&BlobId([7; 32])).unwrap();
        assert_eq!(idx.pack(loc.pack).id, PackId([2; 32]));
        assert_eq!(loc.entry, entry(7, 37));
        assert_eq!(idx.get(&BlobId([3; 32])).unwrap().entry.offset, 57);
        assert!(idx.get(&BlobId([4; 32])).is_none());
        assert_eq!(loc.kind(), Some(BlobKind::Tree));
    }

    #[test]
    fn memory_is_48_bytes_per_blob() {
        let mut idx = Index::default();
        let blobs: Vec<_> = (0..10_000u32)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&i.to_le_bytes());
                BlobEntry {
                    id: BlobId(id),
                    ..entry(0, 37)
                }
            })
            .collect();
        idx.add_pack(&IndexedPack {
            id: PackId([1; 32]),
            salt: [0; 32],
            size: 1,
            blobs,
        })
        .unwrap();
        idx.finish();
        assert!(
            idx.heap_bytes() <= 48 * 10_000 + 1024,
            "{}",
            idx.heap_bytes()
        );
    }

    proptest! {
        #[test]
        fn every_added_blob_is_found(ids in proptest::collection::hash_set(any::<[u8; 32]>(), 0..300)) {
            let mut idx = Index::default();
            let blobs: Vec<_> = ids.iter().enumerate()
                .map(|(i, id)| BlobEntry { id: BlobId(*id), ..entry(0, i as u32) }).collect();
            idx.add_pack(&IndexedPack { id: PackId([1; 32]), salt: [0; 32], size: 1, blobs: blobs.clone() }).unwrap();
            idx.finish();
            for b in &blobs {
                prop_assert_eq!(idx.get(&b.id).unwrap().entry, *b);
            }
        }
    }
}
