//! The compact in-memory index (which pack holds which blob, where, and
//! which bases a delta blob needs) built from index files ([`file`]), and
//! the plan for the next index write. Knows nothing of storage: the
//! repository loads the files and feeds them in. (Over 600 lines because its
//! unit tests, which pin the planning, splitting and lookup rules, are 270
//! of them.)

mod bloom;
mod file;
mod map;
mod scan;
mod table;

use std::collections::HashMap;

use crate::compress::Encoding;
use crate::crypto::SALT_LEN;
use crate::id::{BlobId, IndexId, PackId};
use crate::pack::{BlobEntry, BlobKind};

pub use file::{
    split_index_file, DeltaBases, IndexFile, IndexFileV1, IndexFileV2, IndexedPack, MarkedPack,
};
pub use map::{BlobMap, TableSet};
pub use scan::{Kept, NumberedPack, ScanError};
pub use table::{write as write_table, Opened, Table, WriteError};

/// What a writer does with the index after a backup, so that readers keep
/// reading at most about two index files however many backups were made
/// (see "Index consolidation" in docs/format.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexPlan {
    /// Write nothing: no new packs and at most one small file besides the
    /// largest.
    Nothing,
    /// Write a file with the new packs plus the small files' packs, which it
    /// supersedes.
    Delta {
        /// The small live files folded in.
        supersedes: Vec<IndexId>,
    },
    /// Write a file with every indexed pack plus the new ones, superseding
    /// every live file.
    Full {
        /// Every live file.
        supersedes: Vec<IndexId>,
    },
}

/// A delta is folded into a full rewrite once it holds more than
/// 1/`FULL_REWRITE_RATIO` of the full files' blobs.
pub const FULL_REWRITE_RATIO: u64 = 8;

/// Most blobs in one index file: about 12 MB encoded, well under what a
/// reader decodes ([`crate::codec::MAX_DECODE_BYTES`]) and small enough that
/// building its table ([`table`]) fits a small pod. A larger index is
/// written as several files ([`split_index_file`]).
pub const MAX_INDEX_FILE_BLOBS: u64 = 1 << 18;

/// True for a live file the planner treats as part of the full index: the
/// largest file, or one at least half the split size (a part of a split
/// full rewrite).
pub fn is_full_part(id: &IndexId, blobs: u64, largest: &IndexId) -> bool {
    id == largest || blobs >= MAX_INDEX_FILE_BLOBS / 2
}

/// Chooses the index write after a backup. `live` lists the index files a
/// reader would read now (id, blob count); `new_blobs` counts the blobs of
/// the packs this backup stored.
pub fn plan_index_write(live: &[(IndexId, u64)], new_blobs: u64) -> IndexPlan {
    let Some(&(full_id, full_blobs)) = live.iter().max_by_key(|(id, n)| (*n, *id)) else {
        return if new_blobs == 0 {
            IndexPlan::Nothing
        } else {
            IndexPlan::Full {
                supersedes: Vec::new(),
            }
        };
    };
    type Files = Vec<(IndexId, u64)>;
    let (full, deltas): (Files, Files) = live
        .iter()
        .copied()
        .partition(|(id, n)| is_full_part(id, *n, &full_id));
    let full_blobs: u64 = full.iter().map(|(_, n)| n).sum::<u64>().max(full_blobs);
    if new_blobs == 0 && deltas.len() <= 1 {
        return IndexPlan::Nothing;
    }
    let delta_blobs: u64 = deltas.iter().map(|(_, n)| n).sum::<u64>() + new_blobs;
    if delta_blobs * FULL_REWRITE_RATIO > full_blobs {
        IndexPlan::Full {
            supersedes: live.iter().map(|(id, _)| *id).collect(),
        }
    } else {
        IndexPlan::Delta {
            supersedes: deltas.into_iter().map(|(id, _)| id).collect(),
        }
    }
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
    /// Marked for deletion by `prune` at this time (Unix ns).
    pub marked: Option<i64>,
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

/// What the map is sorted and searched by: id, then kind.
fn slot_key(s: &Slot) -> ([u8; 32], u8) {
    (s.id, (s.pack_kind_enc >> 28) as u8)
}

fn location(s: &Slot) -> BlobLocation {
    BlobLocation {
        pack: s.pack_kind_enc & 0x00ff_ffff,
        entry: BlobEntry {
            kind: (s.pack_kind_enc >> 28) as u8,
            encoding: ((s.pack_kind_enc >> 24) & 0xf) as u8,
            id: BlobId(s.id),
            offset: s.offset,
            length: s.length,
            raw_length: s.raw_length,
        },
    }
}

/// One stored delta copy: blob id, pack number, and where its bases lie
/// in [`Index::base_ids`] (44 bytes, plus 32 a base).
#[derive(Clone, Copy)]
struct DeltaRow {
    id: [u8; 32],
    pack: u32,
    first_base: u32,
    bases: u8,
}

/// The repository's blob map: a sorted vector (48 bytes a blob, binary
/// search), built once per command from all index files.
#[derive(Default)]
pub struct Index {
    packs: Vec<PackInfo>,
    pack_numbers: HashMap<PackId, u32>,
    slots: Vec<Slot>,
    /// Every delta copy (sorted by id and pack once finished), and their
    /// bases, each copy's in a run.
    deltas: Vec<DeltaRow>,
    base_ids: Vec<BlobId>,
    sorted: bool,
}

impl Index {
    /// Adds every pack of an index file. Call [`Index::finish`] before lookups.
    pub fn add_file(&mut self, file: &IndexFile) -> Result<(), String> {
        for p in &file.packs {
            self.add_pack(p)?;
        }
        for m in &file.marked {
            self.add_marked_pack(&m.pack, m.marked_unix_ns)?;
        }
        Ok(())
    }

    /// Adds a pack marked for deletion. A mark wins over an unmarked listing
    /// of the same pack in another file; of several marks the latest counts.
    pub fn add_marked_pack(&mut self, p: &IndexedPack, marked_unix_ns: i64) -> Result<(), String> {
        let n = self.add_pack(p)?;
        let info = &mut self.packs[n as usize];
        info.marked = Some(
            info.marked
                .map_or(marked_unix_ns, |t| t.max(marked_unix_ns)),
        );
        Ok(())
    }

    /// Adds one pack's blobs; returns its number.
    pub fn add_pack(&mut self, p: &IndexedPack) -> Result<u32, String> {
        if self.packs.len() >= MAX_PACKS {
            return Err(format!("more than {MAX_PACKS} packs"));
        }
        // A pack named by several index files (a superseded one and its
        // consolidation, or two concurrent writers) keeps one number.
        let n = match self.pack_numbers.get(&p.id) {
            Some(&n) => n,
            None => {
                let n = self.packs.len() as u32;
                self.packs.push(PackInfo {
                    id: p.id,
                    salt: p.salt,
                    size: p.size,
                    marked: None,
                });
                self.pack_numbers.insert(p.id, n);
                n
            }
        };
        let bases: HashMap<BlobId, &[BlobId]> =
            p.bases.iter().map(|d| (d.id, d.bases.as_slice())).collect();
        for b in &p.blobs {
            if b.kind > 0xf || b.encoding > 0xf {
                return Err(format!(
                    "blob {} has unknown kind/encoding {}/{}",
                    b.id.short(),
                    b.kind,
                    b.encoding
                ));
            }
            let is_delta = b.encoding == Encoding::Delta as u8;
            match bases.get(&b.id) {
                Some(list) if is_delta && b.kind == BlobKind::Data as u8 => {
                    if list.is_empty() || list.len() > crate::delta::MAX_BASES {
                        return Err(format!(
                            "delta blob {} lists {} bases",
                            b.id.short(),
                            list.len()
                        ));
                    }
                    if self.base_ids.len() + list.len() > u32::MAX as usize {
                        return Err("too many delta bases".into());
                    }
                    self.deltas.push(DeltaRow {
                        id: b.id.0,
                        pack: n,
                        first_base: self.base_ids.len() as u32,
                        bases: list.len() as u8,
                    });
                    self.base_ids.extend_from_slice(list);
                }
                None if !is_delta => {}
                _ => {
                    return Err(format!(
                        "blob {} is listed as a delta without bases, or with bases but not as a data delta",
                        b.id.short()
                    ))
                }
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
        Ok(n)
    }

    /// Sorts the map by kind and id; duplicates (a blob stored twice) keep
    /// one location: one in an unmarked pack if there is one, then a whole
    /// copy over a delta, then the lowest pack id. Blobs are
    /// keyed by kind *and* id: a tree node and a data chunk with the same
    /// bytes have the same MAC, and are two blobs.
    pub fn finish(&mut self) {
        let packs = &self.packs;
        self.slots.sort_unstable_by(|a, b| {
            slot_key(a)
                .cmp(&slot_key(b))
                .then_with(|| copy_rank(&location(a), packs).cmp(&copy_rank(&location(b), packs)))
        });
        self.slots.dedup_by(|a, b| slot_key(a) == slot_key(b));
        self.slots.shrink_to_fit();
        // A pack listed by two index files lists its deltas twice.
        self.deltas.sort_unstable_by_key(|d| (d.id, d.pack));
        self.deltas.dedup_by_key(|d| (d.id, d.pack));
        self.deltas.shrink_to_fit();
        self.base_ids.shrink_to_fit();
        self.sorted = true;
    }

    /// Looks a blob of `kind` up.
    pub fn get(&self, kind: BlobKind, id: &BlobId) -> Option<BlobLocation> {
        debug_assert!(
            self.sorted || self.slots.is_empty(),
            "Index::finish not called"
        );
        let key = (id.0, kind as u8);
        let i = self
            .slots
            .binary_search_by(|s| slot_key(s).cmp(&key))
            .ok()?;
        Some(location(&self.slots[i]))
    }

    /// True when the blob is stored (possibly only in a marked pack).
    pub fn contains(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.get(kind, id).is_some()
    }

    /// The blob's location if it is in a pack not marked for deletion: the
    /// only locations a backup may deduplicate against.
    pub fn get_usable(&self, kind: BlobKind, id: &BlobId) -> Option<BlobLocation> {
        self.get(kind, id)
            .filter(|l| self.packs[l.pack as usize].marked.is_none())
    }

    /// The bases of a delta blob at `loc`, in order; `None` for a blob that
    /// is not a delta.
    pub fn bases(&self, loc: &BlobLocation) -> Option<&[BlobId]> {
        let key = (loc.entry.id.0, loc.pack);
        let i = self
            .deltas
            .binary_search_by(|d| (d.id, d.pack).cmp(&key))
            .ok()?;
        Some(self.bases_of(&self.deltas[i]))
    }

    fn bases_of(&self, d: &DeltaRow) -> &[BlobId] {
        let first = d.first_base as usize;
        &self.base_ids[first..first + d.bases as usize]
    }

    /// Every stored copy of data blob `id` that is a delta, as its pack
    /// number and bases (a blob may be stored twice, once whole and once
    /// as a delta, or as deltas against different bases).
    pub fn delta_copies(&self, id: &BlobId) -> impl Iterator<Item = (u32, &[BlobId])> {
        let id = id.0;
        let first = self.deltas.partition_point(|d| d.id < id);
        self.deltas[first..]
            .iter()
            .take_while(move |d| d.id == id)
            .map(|d| (d.pack, self.bases_of(d)))
    }

    /// Number of packs known.
    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    /// The number of a pack, if known.
    pub fn pack_number(&self, id: &PackId) -> Option<u32> {
        self.pack_numbers.get(id).copied()
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

    /// The blobs this map places in pack number `pack`, in pack order (a
    /// scan of the whole map).
    pub fn blobs_in(&self, pack: u32) -> Vec<BlobEntry> {
        entries_in(&self.slots, pack)
    }

    /// Every pack and blob as one index file (for a full rewrite), marks
    /// included. Where a blob is stored twice only the location the map kept
    /// is listed.
    pub fn export(&self) -> IndexFile {
        let mut file = IndexFile::default();
        for (n, pack) in self.numbered_packs() {
            add_listing(&mut file, &self.packs[n as usize], pack);
        }
        file
    }

    /// Memory held by the blob map, for the ≤ 48 bytes/blob budget.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.packs.capacity() * std::mem::size_of::<PackInfo>()
            + self.pack_numbers.capacity() * (std::mem::size_of::<PackId>() + 4)
            + self.deltas.capacity() * std::mem::size_of::<DeltaRow>()
            + self.base_ids.capacity() * std::mem::size_of::<BlobId>()
    }
}

/// Which of several copies of one blob a lookup answers with: the lowest
/// rank. A copy in an unmarked pack, then a whole one (no chain to decode,
/// and a backup may base deltas on it), then the lowest pack id, so the
/// choice never depends on the order index files were read in. `packs` is
/// what `loc.pack` numbers.
fn copy_rank(loc: &BlobLocation, packs: &[PackInfo]) -> (bool, bool, PackId) {
    let p = &packs[loc.pack as usize];
    (
        p.marked.is_some(),
        loc.entry.encoding == Encoding::Delta as u8,
        p.id,
    )
}

/// The entries of `slots` in pack number `pack`, in pack order (a scan).
fn entries_in(slots: &[Slot], pack: u32) -> Vec<BlobEntry> {
    let mut found: Vec<BlobEntry> = slots
        .iter()
        .map(location)
        .filter(|l| l.pack == pack)
        .map(|l| l.entry)
        .collect();
    found.sort_by_key(|e| e.offset);
    found
}

/// Pack `p`'s listing of `blobs` (put in pack order here) and their bases.
fn listing(p: &PackInfo, mut blobs: Vec<BlobEntry>, bases: Vec<DeltaBases>) -> IndexedPack {
    blobs.sort_by_key(|e| e.offset);
    IndexedPack {
        bases,
        ..IndexedPack::plain(p.id, p.salt, p.size, blobs)
    }
}

/// Adds `pack`'s listing to `file`, as marked when `p` is.
fn add_listing(file: &mut IndexFile, p: &PackInfo, pack: IndexedPack) {
    match p.marked {
        None => file.packs.push(pack),
        Some(marked_unix_ns) => file.marked.push(MarkedPack {
            marked_unix_ns,
            pack,
        }),
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

    fn two_packs() -> IndexFile {
        IndexFile {
            supersedes: vec![],
            marked: vec![],
            packs: vec![
                IndexedPack {
                    bases: vec![],
                    id: PackId([1; 32]),
                    salt: [5; 32],
                    size: 100,
                    blobs: vec![entry(9, 37), entry(3, 57)],
                },
                IndexedPack {
                    bases: vec![],
                    id: PackId([2; 32]),
                    salt: [6; 32],
                    size: 100,
                    blobs: vec![entry(7, 37)],
                },
            ],
        }
    }

    #[test]
    fn lookups_find_pack_and_entry() {
        let file = two_packs();
        let decoded: IndexFile = codec::decode(&codec::encode(&file).unwrap()).unwrap();
        assert_eq!(decoded, file);
        let mut idx = Index::default();
        idx.add_file(&decoded).unwrap();
        idx.finish();
        let loc = idx.get(BlobKind::Tree, &BlobId([7; 32])).unwrap();
        assert_eq!(idx.pack(loc.pack).id, PackId([2; 32]));
        assert_eq!(loc.entry, entry(7, 37));
        assert_eq!(
            idx.get(BlobKind::Tree, &BlobId([3; 32]))
                .unwrap()
                .entry
                .offset,
            57
        );
        assert!(idx.get(BlobKind::Tree, &BlobId([4; 32])).is_none());
        assert_eq!(loc.kind(), Some(BlobKind::Tree));
    }

    #[test]
    fn a_tree_node_and_a_chunk_with_one_id_are_two_blobs() {
        let tree = entry(5, 37);
        let data = BlobEntry {
            kind: BlobKind::Data as u8,
            offset: 57,
            ..tree
        };
        let mut idx = Index::default();
        idx.add_pack(&IndexedPack::plain(
            PackId([1; 32]),
            [0; 32],
            100,
            vec![tree, data],
        ))
        .unwrap();
        idx.finish();
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.get(BlobKind::Tree, &tree.id).unwrap().entry, tree);
        assert_eq!(idx.get(BlobKind::Data, &tree.id).unwrap().entry, data);
        assert_eq!(idx.export().packs[0].blobs.len(), 2);
    }

    /// Found by fuzzing (`index_file`): an entry of a kind this build does
    /// not know (reserved for later kinds) is indexed and exported, not
    /// refused, and no lookup of a known kind returns it.
    #[test]
    fn entries_of_unknown_kinds_are_kept_but_never_found_as_known_ones() {
        let later = BlobEntry {
            kind: 3,
            ..entry(5, 37)
        };
        let mut idx = Index::default();
        idx.add_pack(&IndexedPack::plain(
            PackId([1; 32]),
            [0; 32],
            100,
            vec![later],
        ))
        .unwrap();
        idx.finish();
        assert!(idx.get(BlobKind::Tree, &later.id).is_none());
        assert!(idx.get(BlobKind::Data, &later.id).is_none());
        assert_eq!(idx.export().packs[0].blobs, vec![later]);
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
            bases: vec![],
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

    fn id(n: u8) -> IndexId {
        IndexId([n; 32])
    }

    #[test]
    fn index_writes_keep_readers_at_two_files() {
        use IndexPlan::*;
        // First backup: its packs become the full file.
        assert_eq!(plan_index_write(&[], 10), Full { supersedes: vec![] });
        assert_eq!(plan_index_write(&[], 0), Nothing);
        // A small day next to a big full file: a delta.
        assert_eq!(
            plan_index_write(&[(id(1), 1000)], 10),
            Delta { supersedes: vec![] }
        );
        // The delta is folded into the next one.
        assert_eq!(
            plan_index_write(&[(id(1), 1000), (id(2), 10)], 10),
            Delta {
                supersedes: vec![id(2)]
            }
        );
        // An unchanged day writes nothing while there are at most two files.
        assert_eq!(plan_index_write(&[(id(1), 1000), (id(2), 10)], 0), Nothing);
        // Concurrent writers left three files: fold the small ones even with no new data.
        assert_eq!(
            plan_index_write(&[(id(1), 1000), (id(2), 10), (id(3), 10)], 0),
            Delta {
                supersedes: vec![id(2), id(3)]
            }
        );
        // A delta above 1/8 of the full file triggers a full rewrite.
        assert_eq!(
            plan_index_write(&[(id(1), 1000), (id(2), 100)], 30),
            Full {
                supersedes: vec![id(1), id(2)]
            }
        );
    }

    #[test]
    fn big_indexes_are_split_and_only_the_last_part_supersedes() {
        let pack = |n: u8, blobs: u32| IndexedPack {
            bases: vec![],
            id: PackId([n; 32]),
            salt: [0; 32],
            size: 1,
            blobs: (0..blobs).map(|i| entry(n, 37 + i)).collect(),
        };
        let file = IndexFile {
            supersedes: vec![id(9)],
            packs: vec![pack(1, 4), pack(2, 4), pack(3, 9)],
            marked: vec![MarkedPack {
                marked_unix_ns: 5,
                pack: pack(4, 2),
            }],
        };
        let parts = split_index_file(file.clone(), 5);
        let counts: Vec<u64> = parts.iter().map(IndexFile::blob_count).collect();
        // Packs stay whole unless one alone is over the cap (pack 3: 5 + 4).
        assert_eq!(counts, [4, 4, 5, 4, 2]);
        assert!(parts[..4].iter().all(|p| p.supersedes.is_empty()));
        assert_eq!(parts[4].supersedes, vec![id(9)]);
        assert_eq!(parts[4].marked[0].marked_unix_ns, 5);
        // Every part decodes, and together they index what the file did.
        let mut whole = Index::default();
        whole.add_file(&file).unwrap();
        whole.finish();
        let mut rebuilt = Index::default();
        for p in &parts {
            let bytes = codec::encode(p).unwrap();
            rebuilt.add_file(&codec::decode(&bytes).unwrap()).unwrap();
        }
        rebuilt.finish();
        assert_eq!(rebuilt.export(), whole.export());
        // A file within the cap stays one file.
        assert_eq!(split_index_file(file.clone(), 100), vec![file]);
    }

    #[test]
    fn parts_of_a_split_full_file_count_as_full_when_planning() {
        let max = MAX_INDEX_FILE_BLOBS;
        let live = [(id(1), max), (id(2), max), (id(3), max / 2), (id(4), 10)];
        // A small day folds only the small file, not the parts.
        assert_eq!(
            plan_index_write(&live, 10),
            IndexPlan::Delta {
                supersedes: vec![id(4)]
            }
        );
        // A delta above 1/8 of all parts together triggers a full rewrite.
        assert!(matches!(
            plan_index_write(&live, max / 3),
            IndexPlan::Full { .. }
        ));
    }

    #[test]
    fn export_lists_every_pack_and_blob() {
        let file = two_packs();
        let mut idx = Index::default();
        idx.add_file(&file).unwrap();
        idx.finish();
        let mut out = idx.export();
        for p in &mut out.packs {
            p.blobs.sort_by_key(|b| b.offset);
        }
        assert_eq!(out, file);
    }

    #[test]
    fn marks_win_and_usable_lookups_skip_marked_packs() {
        let mut marked = two_packs();
        let pack = marked.packs.remove(0);
        marked.packs.clear();
        marked.marked.push(MarkedPack {
            marked_unix_ns: 7,
            pack: pack.clone(),
        });
        let mut idx = Index::default();
        idx.add_file(&two_packs()).unwrap();
        idx.add_file(&marked).unwrap();
        idx.finish();
        let loc = idx.get(BlobKind::Tree, &BlobId([9; 32])).unwrap();
        assert_eq!(idx.pack(loc.pack).marked, Some(7));
        assert!(idx.get_usable(BlobKind::Tree, &BlobId([9; 32])).is_none());
        assert!(idx.get_usable(BlobKind::Tree, &BlobId([7; 32])).is_some());
        let out = idx.export();
        assert_eq!(out.marked.len(), 1);
        assert_eq!(out.marked[0].pack.id, pack.id);
        assert_eq!(out.packs.len(), 1);
        // A copy of the blob in an unmarked pack is preferred.
        let mut copy = pack.clone();
        copy.id = PackId([3; 32]);
        idx.add_pack(&copy).unwrap();
        idx.finish();
        let loc = idx.get_usable(BlobKind::Tree, &BlobId([9; 32])).unwrap();
        assert_eq!(idx.pack(loc.pack).id, PackId([3; 32]));
    }

    #[test]
    fn a_duplicate_is_chosen_by_rule_not_by_load_order() {
        let id = BlobId([5; 32]);
        let whole = BlobEntry {
            kind: 0,
            encoding: 1,
            id,
            offset: 37,
            length: 20,
            raw_length: 90,
        };
        let as_delta = BlobEntry {
            encoding: Encoding::Delta as u8,
            ..whole
        };
        let pack = |n: u8, e: BlobEntry| IndexedPack {
            bases: if e.encoding == Encoding::Delta as u8 {
                vec![DeltaBases {
                    id,
                    bases: vec![BlobId([6; 32])],
                }]
            } else {
                vec![]
            },
            ..IndexedPack::plain(PackId([n; 32]), [0; 32], 100, vec![e])
        };
        let packs = [pack(1, as_delta), pack(2, whole), pack(3, whole)];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut idx = Index::default();
            for i in order {
                idx.add_pack(&packs[i]).unwrap();
            }
            idx.finish();
            let loc = idx.get(BlobKind::Data, &id).unwrap();
            // The whole copy with the lowest pack id, whatever the order.
            assert_eq!(idx.pack(loc.pack).id, PackId([2; 32]), "{order:?}");
            assert!(idx.bases(&loc).is_none());
        }
    }

    #[test]
    fn every_delta_copy_keeps_its_own_bases() {
        let id = BlobId([5; 32]);
        let entry = BlobEntry {
            kind: 0,
            encoding: Encoding::Delta as u8,
            id,
            offset: 37,
            length: 20,
            raw_length: 90,
        };
        let pack = |n: u8, bases: Vec<BlobId>| IndexedPack {
            bases: vec![DeltaBases { id, bases }],
            ..IndexedPack::plain(PackId([n; 32]), [0; 32], 100, vec![entry])
        };
        let (a, b, c) = (BlobId([6; 32]), BlobId([7; 32]), BlobId([8; 32]));
        let mut idx = Index::default();
        idx.add_pack(&pack(2, vec![b, c])).unwrap();
        idx.add_pack(&pack(1, vec![a])).unwrap();
        // The same pack named by a second index file counts once.
        idx.add_pack(&pack(2, vec![b, c])).unwrap();
        idx.finish();
        let mut copies: Vec<(PackId, Vec<BlobId>)> = idx
            .delta_copies(&id)
            .map(|(p, bases)| (idx.pack(p).id, bases.to_vec()))
            .collect();
        copies.sort();
        assert_eq!(
            copies,
            [(PackId([1; 32]), vec![a]), (PackId([2; 32]), vec![b, c])]
        );
        let loc = idx.get(BlobKind::Data, &id).unwrap();
        assert_eq!(idx.bases(&loc), Some(&[a][..]));
        assert_eq!(idx.delta_copies(&a).count(), 0);
    }

    #[test]
    fn older_file_versions_decode() {
        // A type 4 file's payload is a type 2 file's plus the marks.
        let v2 = IndexFileV2::try_from(IndexFile {
            supersedes: vec![id(4)],
            ..two_packs()
        })
        .unwrap();
        let v2_bytes = codec::encode(&v2).unwrap();
        let decoded: IndexFileV2 = codec::decode(&v2_bytes).unwrap();
        let file = IndexFile::from(decoded);
        assert_eq!(file.packs, two_packs().packs);
        assert_eq!(file.supersedes, vec![id(4)]);
        // Without marks, the first 8 bytes of the (empty) marks list gone:
        let v1_bytes = &v2_bytes[..v2_bytes.len() - 8];
        let v1: IndexFileV1 = codec::decode(v1_bytes).unwrap();
        assert_eq!(IndexFile::from(v1).packs, two_packs().packs);
        // Delta bases need a type 6 file.
        let mut with_delta = two_packs();
        with_delta.packs[0].bases.push(DeltaBases {
            id: BlobId([1; 32]),
            bases: vec![BlobId([2; 32])],
        });
        assert!(IndexFileV2::try_from(with_delta).is_err());
    }

    proptest! {
        #[test]
        fn every_added_blob_is_found(ids in proptest::collection::hash_set(any::<[u8; 32]>(), 0..300)) {
            let mut idx = Index::default();
            let blobs: Vec<_> = ids.iter().enumerate()
                .map(|(i, id)| BlobEntry { id: BlobId(*id), ..entry(0, i as u32) }).collect();
            idx.add_pack(&IndexedPack { bases: vec![], id: PackId([1; 32]), salt: [0; 32], size: 1, blobs: blobs.clone() }).unwrap();
            idx.finish();
            for b in &blobs {
                prop_assert_eq!(idx.get(BlobKind::Tree, &b.id).unwrap().entry, *b);
            }
        }
    }
}
