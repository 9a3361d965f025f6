//! Reading blobs back: the one place where an index entry and pack bytes
//! become verified plaintext. Restore, check and prune's repack all open
//! blobs here, and this module owns the rule that a blob is "indexed as this
//! kind with this length". A new blob encoding (a delta against a base) is
//! decoded here and nowhere else.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use rayon::prelude::*;

use super::blocking;
use crate::backend::{object_path, Backend, Kind};
use crate::crypto::{MasterKey, SubKey};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::{BlobLocation, Index};
use crate::pack::{self, BlobEntry, BlobKind};
use crate::tree::TreeNode;

/// Largest coalesced read: a whole pack visit is one GET, consumed as a
/// stream, so the bound is only a guard.
const MAX_READ: u64 = 256 * 1024 * 1024;
/// Unneeded bytes a read may span to join two blobs of the same pack.
const MAX_GAP: u64 = 1024 * 1024;
/// Tree packs up to this size are read whole (one GET) on first use.
const WHOLE_TREE_PACK: u64 = 4 * 1024 * 1024;

/// Opens one sealed blob found in `bytes`, a slice of its pack that starts
/// at pack offset `bytes_start`: the blob must lie inside the slice, then
/// its AEAD tag, encoding, length and keyed MAC are checked
/// ([`pack::open_blob`]). Every caller that has pack bytes in hand opens
/// blobs through this function.
pub(super) fn open_in(
    key: &MasterKey,
    subkey: &SubKey,
    entry: &BlobEntry,
    bytes: &[u8],
    bytes_start: u64,
) -> std::result::Result<Vec<u8>, String> {
    let r = entry.range();
    let sealed = r
        .start
        .checked_sub(bytes_start)
        .and_then(|at| bytes.get(at as usize..(at + entry.length as u64) as usize))
        .ok_or_else(|| {
            format!(
                "blob {} lies outside the bytes read (truncated pack?)",
                entry.id.short()
            )
        })?;
    pack::open_blob(key, subkey, entry, sealed)
}

/// Where the index places blob `id`, which a tree says is of `kind` and
/// (for data) `size` plaintext bytes. Not indexed as that kind is
/// [`Error::Missing`] (a blob of another kind with the same id is another
/// blob); indexed with another length is [`Error::Corrupt`]: following such
/// an entry would restore the wrong bytes.
pub(super) fn locate(
    index: &Index,
    id: &BlobId,
    kind: BlobKind,
    size: Option<u64>,
) -> Result<BlobLocation> {
    let what = match kind {
        BlobKind::Data => "data blob",
        BlobKind::Tree => "tree blob",
    };
    let loc = index.get(kind, id).ok_or_else(|| Error::Missing {
        object: format!("{what} {id}"),
    })?;
    if size.is_some_and(|s| s != loc.entry.raw_length as u64) {
        return Err(Error::corrupt(
            format!("{what} {id}"),
            "index entry disagrees with the stream's tree about its length",
        ));
    }
    Ok(loc)
}

/// Consecutive blobs of one pack fetched with one ranged GET.
pub(super) struct PackRead {
    /// Pack number in the index.
    pub pack: u32,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The blobs, in pack order.
    pub blobs: Vec<BlobEntry>,
}

impl PackRead {
    /// A read of one blob.
    pub fn of(loc: &BlobLocation) -> Self {
        let r = loc.entry.range();
        PackRead {
            pack: loc.pack,
            start: r.start,
            end: r.end,
            blobs: vec![loc.entry],
        }
    }

    /// Takes the blob into this read if it follows closely in the same pack.
    pub fn try_extend(&mut self, loc: &BlobLocation) -> bool {
        let r = loc.entry.range();
        let joins = loc.pack == self.pack
            && r.start >= self.end
            && r.start - self.end <= MAX_GAP
            && r.end - self.start <= MAX_READ;
        if joins {
            self.end = r.end;
            self.blobs.push(loc.entry);
        }
        joins
    }
}

/// Appends a blob to a list of coalesced reads.
pub(super) fn push_read(reads: &mut Vec<PackRead>, loc: &BlobLocation) {
    if !reads.last_mut().is_some_and(|r| r.try_extend(loc)) {
        reads.push(PackRead::of(loc));
    }
}

/// Fetches byte ranges of packs and opens the blobs in them.
#[derive(Clone)]
pub(super) struct BlobReader {
    backend: Backend,
    key: Arc<MasterKey>,
    index: Arc<Index>,
}

impl BlobReader {
    /// A reader of the blobs `index` places.
    pub fn new(backend: Backend, key: Arc<MasterKey>, index: Arc<Index>) -> Self {
        BlobReader {
            backend,
            key,
            index,
        }
    }

    /// The index it reads through.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The storage.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Repository path of a pack.
    pub fn pack_path(&self, pack: u32) -> String {
        object_path(Kind::Pack, &self.index.pack(pack).id.to_hex())
    }

    /// [`locate`] in this reader's index.
    pub fn locate(&self, id: &BlobId, kind: BlobKind, size: Option<u64>) -> Result<BlobLocation> {
        locate(&self.index, id, kind, size)
    }

    fn subkey(&self, pack: u32) -> SubKey {
        self.key.subkey(&self.index.pack(pack).salt)
    }

    /// Opens, in parallel and in order, `blobs` of pack number `pack` out of
    /// `bytes`, which start at pack offset `bytes_start` (CPU work; call on
    /// a blocking thread).
    pub fn open_many(
        &self,
        pack: u32,
        blobs: &[BlobEntry],
        bytes: &[u8],
        bytes_start: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let subkey = self.subkey(pack);
        blobs
            .par_iter()
            .map(|e| {
                open_in(&self.key, &subkey, e, bytes, bytes_start)
                    .map_err(|reason| Error::corrupt(self.pack_path(pack), reason))
            })
            .collect()
    }

    /// Opens a batch of blobs of one pack, each already cut to its sealed
    /// bytes (CPU work; call on a blocking thread).
    pub fn open_cut(&self, pack: u32, batch: &[(BlobEntry, Bytes)]) -> Result<Vec<Vec<u8>>> {
        let subkey = self.subkey(pack);
        batch
            .par_iter()
            .map(|(e, sealed)| {
                open_in(&self.key, &subkey, e, sealed, e.offset as u64)
                    .map_err(|reason| Error::corrupt(self.pack_path(pack), reason))
            })
            .collect()
    }

    /// Fetches a whole pack and opens the given blobs of it.
    pub async fn read_from_pack(&self, pack: u32, blobs: Vec<BlobEntry>) -> Result<Vec<Vec<u8>>> {
        let bytes = self.backend.get(&self.pack_path(pack)).await?;
        let this = self.clone();
        blocking(move || this.open_many(pack, &blobs, &bytes, 0)).await
    }

    /// Loads tree nodes, coalescing neighbours in the same pack.
    ///
    /// A small tree pack (the usual case: one per backup) is read whole the
    /// first time any of its nodes is needed, and all its nodes are kept, so
    /// walking a tree costs one GET per tree pack, not one per level.
    /// `whole` records the packs already read that way.
    pub async fn load_nodes(
        &self,
        ids: &[BlobId],
        whole: &mut HashSet<u32>,
    ) -> Result<HashMap<BlobId, TreeNode>> {
        let mut nodes = HashMap::new();
        let mut locs: Vec<BlobLocation> = ids
            .iter()
            .map(|id| self.locate(id, BlobKind::Tree, None))
            .collect::<Result<_>>()?;
        locs.sort_by_key(|l| (l.pack, l.entry.offset));
        locs.dedup_by_key(|l| l.entry.id);
        for pack in locs.iter().map(|l| l.pack).collect::<HashSet<u32>>() {
            if self.index.pack(pack).size <= WHOLE_TREE_PACK && whole.insert(pack) {
                nodes.extend(self.load_whole_tree_pack(pack).await?);
            }
        }
        locs.retain(|l| !nodes.contains_key(&l.entry.id));
        let mut reads = Vec::new();
        for loc in &locs {
            push_read(&mut reads, loc);
        }
        for read in reads {
            let path = self.pack_path(read.pack);
            let bytes = self.backend.get_range(&path, read.start..read.end).await?;
            let this = self.clone();
            let (plains, read) = blocking(move || {
                let plains = this.open_many(read.pack, &read.blobs, &bytes, read.start);
                (plains, read)
            })
            .await;
            for (plain, e) in plains?.into_iter().zip(&read.blobs) {
                let node = TreeNode::decode(&plain).map_err(|r| Error::corrupt(&path, r))?;
                nodes.insert(e.id, node);
            }
        }
        Ok(nodes)
    }

    /// Reads a whole tree pack with one GET and opens every tree blob in it
    /// (the pack's own header lists them).
    async fn load_whole_tree_pack(&self, pack: u32) -> Result<HashMap<BlobId, TreeNode>> {
        let path = self.pack_path(pack);
        let bytes = self
            .backend
            .get_range(&path, 0..self.index.pack(pack).size)
            .await?;
        let key = self.key.clone();
        blocking(move || {
            let bad = |r: String| Error::corrupt(&path, r);
            let (salt, entries) = pack::read_header(&key, &bytes).map_err(bad)?;
            let subkey = key.subkey(&salt);
            entries
                .iter()
                .filter(|e| e.kind == BlobKind::Tree as u8)
                .map(|e| {
                    let plain = open_in(&key, &subkey, e, &bytes, 0).map_err(bad)?;
                    Ok((e.id, TreeNode::decode(&plain).map_err(bad)?))
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress;
    use crate::pack::PackWriter;

    #[test]
    fn a_blob_outside_the_bytes_read_is_an_error_not_a_panic() {
        let key = MasterKey::generate();
        let mut w = PackWriter::new(&key, 1024);
        let (enc, payload) = compress::compress(b"hello hello", 3);
        w.add(crate::pack::EncodedBlob {
            kind: BlobKind::Data,
            id: key.blob_id(b"hello hello"),
            encoding: enc,
            payload: &payload,
            raw_len: 11,
        });
        let pack = w.finish();
        let e = pack.blobs[0];
        let sub = key.subkey(&pack.salt);
        assert_eq!(
            open_in(&key, &sub, &e, &pack.bytes, 0).unwrap(),
            b"hello hello"
        );
        let r = e.range();
        let exact = &pack.bytes[r.start as usize..r.end as usize];
        assert!(open_in(&key, &sub, &e, exact, r.start).is_ok());
        // Cut short, or starting after the blob: refused.
        assert!(open_in(&key, &sub, &e, &exact[..exact.len() - 1], r.start).is_err());
        assert!(open_in(&key, &sub, &e, exact, r.start + 1).is_err());
    }

    #[test]
    fn located_blobs_must_have_the_kind_and_length_the_tree_says() {
        use crate::id::PackId;
        use crate::index::{IndexFile, IndexedPack};
        let entry = |id: u8, kind: u8| BlobEntry {
            kind,
            encoding: 0,
            id: BlobId([id; 32]),
            offset: 37,
            length: 20,
            raw_length: 4,
        };
        let mut index = Index::default();
        index
            .add_file(&IndexFile {
                packs: vec![IndexedPack {
                    id: PackId([1; 32]),
                    salt: [0; 32],
                    size: 100,
                    blobs: vec![entry(1, 0), entry(2, 1)],
                }],
                ..IndexFile::default()
            })
            .unwrap();
        index.finish();
        let data = BlobId([1; 32]);
        assert!(locate(&index, &data, BlobKind::Data, Some(4)).is_ok());
        assert!(matches!(
            locate(&index, &data, BlobKind::Data, Some(5)),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            locate(&index, &data, BlobKind::Tree, None),
            Err(Error::Missing { .. })
        ));
        assert!(locate(&index, &BlobId([2; 32]), BlobKind::Tree, None).is_ok());
        assert!(matches!(
            locate(&index, &BlobId([3; 32]), BlobKind::Data, Some(4)),
            Err(Error::Missing { .. })
        ));
    }
}
