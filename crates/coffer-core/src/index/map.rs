//! The blob map backups and restores look blobs up in: the whole in-memory
//! [`Index`], or the on-disk [`Table`]s of the live index files, searched
//! together with the same rules (a copy in an unmarked pack first, then a
//! whole copy over a delta, then the lowest pack id), so the answer never
//! depends on which one a command holds. With tables, memory is the packs
//! plus about 1.1 bytes a blob, whatever the repository's size.

use std::path::PathBuf;
use std::sync::Mutex;

use super::table::{Opened, Table};
use super::{copy_rank, entries_in, location, BlobLocation, Index, IndexFile, PackInfo, Slot};
use crate::id::{BlobId, PackId};
use crate::pack::{BlobEntry, BlobKind};

/// Where blobs are looked up.
pub enum BlobMap {
    /// Every blob in memory (48 bytes each).
    Memory(Index),
    /// The live index files' tables on local disk.
    Tables(TableSet),
}

impl From<Index> for BlobMap {
    fn from(index: Index) -> Self {
        BlobMap::Memory(index)
    }
}

/// The tables of the live index files, with their packs numbered in one
/// sequence (table after table).
#[derive(Default)]
pub struct TableSet {
    pub(super) tables: Vec<(PathBuf, Table)>,
    /// The number of each table's first pack.
    pub(super) first_pack: Vec<u32>,
    pub(super) packs: Vec<PackInfo>,
    /// Pack numbers sorted by pack id; a pack listed by two tables has two
    /// numbers and the same mark under both.
    pub(super) by_id: Vec<u32>,
    /// Each pack number's canonical number: the lowest number of its pack
    /// (see [`super::scan`]).
    pub(super) canonical: Vec<u32>,
    /// The first table that failed to read, and why: its lookups answered
    /// "not found" (so a backup stores the blob again, which loses nothing)
    /// and the table was removed so the next command builds it again.
    failure: Mutex<Option<String>>,
}

impl TableSet {
    /// Adds one live file's table (read from `path`).
    pub fn push(&mut self, path: PathBuf, opened: Opened) -> Result<(), String> {
        let first = self.packs.len() as u32;
        if self.packs.len() + opened.packs.len() >= super::MAX_PACKS {
            return Err(format!("more than {} packs", super::MAX_PACKS));
        }
        self.first_pack.push(first);
        self.by_id.extend(first..first + opened.packs.len() as u32);
        self.packs.extend(opened.packs);
        self.tables.push((path, opened.table));
        Ok(())
    }

    /// Call once every table is pushed: a pack marked in any table is
    /// marked in all (its latest mark), and each number's canonical number
    /// is known.
    pub fn finish(&mut self) {
        let packs = &mut self.packs;
        self.by_id
            .sort_unstable_by_key(|&n| (packs[n as usize].id, n));
        self.canonical = (0..packs.len() as u32).collect();
        // `by_id` is sorted by (id, number): a run's first is its lowest.
        let shared: Vec<&[u32]> = self
            .by_id
            .chunk_by(|&a, &b| packs[a as usize].id == packs[b as usize].id)
            .filter(|same| same.len() > 1)
            .collect();
        for same in shared {
            let mark = same.iter().filter_map(|&n| packs[n as usize].marked).max();
            for &n in same {
                packs[n as usize].marked = mark;
                self.canonical[n as usize] = same[0];
            }
        }
        self.by_id.shrink_to_fit();
        self.packs.shrink_to_fit();
    }

    /// The table holding pack number `pack`, and the pack's number in it.
    fn owner(&self, pack: u32) -> (usize, u32) {
        let t = self.first_pack.partition_point(|f| *f <= pack) - 1;
        (t, pack - self.first_pack[t])
    }

    fn failed(&self, t: usize, e: String) {
        let path = &self.tables[t].0;
        let _ = std::fs::remove_file(path);
        let mut failure = self.failure.lock().expect("failure lock");
        failure.get_or_insert_with(|| format!("index table {}: {e}", path.display()));
    }

    fn get(&self, kind: BlobKind, id: &BlobId) -> Option<BlobLocation> {
        let mut best: Option<BlobLocation> = None;
        for (t, (_, table)) in self.tables.iter().enumerate() {
            match table.find(kind as u8, &id.0) {
                Ok(Some(s)) => {
                    let local = s.pack_kind_enc & 0x00ff_ffff;
                    if local >= table.pack_count() {
                        self.failed(t, format!("a slot names pack {local}"));
                        continue;
                    }
                    let loc = location(&Slot {
                        pack_kind_enc: (s.pack_kind_enc & 0xff00_0000)
                            | (self.first_pack[t] + local),
                        ..s
                    });
                    let rank = |l: &BlobLocation| copy_rank(l, &self.packs);
                    if best.is_none_or(|b| rank(&loc) < rank(&b)) {
                        best = Some(loc);
                    }
                }
                Ok(None) => {}
                Err(e) => self.failed(t, e),
            }
        }
        best
    }

    fn bases(&self, loc: &BlobLocation) -> Option<Vec<BlobId>> {
        let (t, local) = self.owner(loc.pack);
        match self.tables[t].1.bases(&loc.entry.id.0, local) {
            Ok(found) => found,
            Err(e) => {
                self.failed(t, e);
                None
            }
        }
    }

    fn blobs_in(&self, pack: u32) -> Vec<BlobEntry> {
        let (t, local) = self.owner(pack);
        let slots = match self.tables[t].1.slots() {
            Ok(s) => s,
            Err(e) => {
                self.failed(t, e);
                return Vec::new();
            }
        };
        entries_in(&slots, local)
    }

    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True when no table is open.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

impl BlobMap {
    /// The in-memory index, if this map is one.
    pub fn memory(&self) -> Option<&Index> {
        match self {
            BlobMap::Memory(index) => Some(index),
            BlobMap::Tables(_) => None,
        }
    }

    /// Looks a blob of `kind` up.
    pub fn get(&self, kind: BlobKind, id: &BlobId) -> Option<BlobLocation> {
        match self {
            BlobMap::Memory(index) => index.get(kind, id),
            BlobMap::Tables(set) => set.get(kind, id),
        }
    }

    /// True when the blob is stored (possibly only in a marked pack).
    pub fn contains(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.get(kind, id).is_some()
    }

    /// The blob's location if it is in a pack not marked for deletion: the
    /// only locations a backup may deduplicate against.
    pub fn get_usable(&self, kind: BlobKind, id: &BlobId) -> Option<BlobLocation> {
        self.get(kind, id)
            .filter(|l| self.pack(l.pack).marked.is_none())
    }

    /// The bases of a delta blob at `loc`, in order; `None` for a blob that
    /// is not a delta.
    pub fn bases(&self, loc: &BlobLocation) -> Option<Vec<BlobId>> {
        match self {
            BlobMap::Memory(index) => index.bases(loc).map(<[BlobId]>::to_vec),
            BlobMap::Tables(set) => set.bases(loc),
        }
    }

    /// The pack with a given number.
    pub fn pack(&self, n: u32) -> &PackInfo {
        match self {
            BlobMap::Memory(index) => index.pack(n),
            BlobMap::Tables(set) => &set.packs[n as usize],
        }
    }

    /// The number of a pack, if known.
    pub fn pack_number(&self, id: &PackId) -> Option<u32> {
        match self {
            BlobMap::Memory(index) => index.pack_number(id),
            BlobMap::Tables(set) => {
                let packs = &set.packs;
                let i = set.by_id.partition_point(|&n| packs[n as usize].id < *id);
                set.by_id
                    .get(i)
                    .copied()
                    .filter(|&n| packs[n as usize].id == *id)
            }
        }
    }

    /// Number of packs known.
    pub fn pack_count(&self) -> usize {
        match self {
            BlobMap::Memory(index) => index.pack_count(),
            BlobMap::Tables(set) => set.packs.len(),
        }
    }

    /// The blobs pack number `pack` holds, in pack order.
    pub fn blobs_in(&self, pack: u32) -> Vec<BlobEntry> {
        match self {
            BlobMap::Memory(index) => index.blobs_in(pack),
            BlobMap::Tables(set) => set.blobs_in(pack),
        }
    }

    /// Every pack and blob as one index file (for a full rewrite): over
    /// tables, built pack by pack without an in-memory map.
    pub fn export(&self) -> Result<IndexFile, String> {
        match self {
            BlobMap::Memory(index) => Ok(index.export()),
            BlobMap::Tables(_) => {
                let kept = self.scan_kept(|_| {})?;
                let mut file = IndexFile::default();
                self.scan_packs(&kept, |group| {
                    for (n, pack) in group {
                        super::add_listing(&mut file, self.pack(n), pack);
                    }
                    Ok::<_, super::ScanError>(())
                })
                .map_err(|e| e.0)?;
                Ok(file)
            }
        }
    }

    /// Why a table failed to read, if one did (its lookups answered "not
    /// found"; the table is gone and the next command builds it again).
    pub fn failure(&self) -> Option<String> {
        match self {
            BlobMap::Memory(_) => None,
            BlobMap::Tables(set) => set.failure.lock().expect("failure lock").clone(),
        }
    }

    /// Heap bytes held by the map.
    pub fn heap_bytes(&self) -> usize {
        match self {
            BlobMap::Memory(index) => index.heap_bytes(),
            BlobMap::Tables(set) => {
                set.tables
                    .iter()
                    .map(|(_, t)| t.heap_bytes())
                    .sum::<usize>()
                    + set.packs.capacity() * std::mem::size_of::<PackInfo>()
                    + set.by_id.capacity() * 4
                    + set.canonical.capacity() * 4
            }
        }
    }

    /// The map of the live index files' tables, each with the path it was
    /// opened from.
    pub fn from_tables(tables: Vec<(PathBuf, Opened)>) -> Result<Self, String> {
        let mut set = TableSet::default();
        for (path, opened) in tables {
            set.push(path, opened)?;
        }
        set.finish();
        Ok(BlobMap::Tables(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::id::IndexId;
    use crate::index::{write_table, DeltaBases, IndexedPack, MarkedPack, Table};

    fn blob(n: u32, kind: u8, encoding: u8, offset: u32) -> BlobEntry {
        BlobEntry {
            kind,
            encoding,
            id: BlobId(*blake3::hash(&n.to_le_bytes()).as_bytes()),
            offset,
            length: 100 + n,
            raw_length: 200 + n,
        }
    }

    /// `n` packs of `per` data blobs numbered from `first`; every third
    /// blob a delta against the blob before it.
    fn packs(tag: u8, first: u32, n: u32, per: u32) -> Vec<IndexedPack> {
        (0..n)
            .map(|p| {
                let blobs: Vec<BlobEntry> = (0..per)
                    .map(|b| {
                        let k = first + p * per + b;
                        blob(k, 0, if k % 3 == 2 { 2 } else { 1 }, 37 + 400 * b)
                    })
                    .collect();
                let bases = blobs
                    .iter()
                    .filter(|b| b.encoding == 2)
                    .map(|b| DeltaBases {
                        id: b.id,
                        bases: vec![blob(0, 0, 1, 0).id],
                    })
                    .collect();
                IndexedPack {
                    id: PackId([tag.wrapping_add(p as u8); 32]),
                    salt: [tag; 32],
                    size: 1 << 20,
                    blobs,
                    bases,
                }
            })
            .collect()
    }

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("coffer-tables-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn tables(key: &MasterKey, dir: &Dir, files: &[(IndexId, IndexFile)]) -> BlobMap {
        let opened = files
            .iter()
            .map(|(id, f)| {
                let path = dir.0.join(id.to_hex());
                write_table(&path, key, *id, f.clone()).unwrap();
                let o = Table::open(&path, key, *id).unwrap();
                assert_eq!(o.supersedes, f.supersedes);
                assert_eq!(o.blob_count, f.blob_count());
                (path, o)
            })
            .collect();
        BlobMap::from_tables(opened).unwrap()
    }

    fn memory(files: &[(IndexId, IndexFile)]) -> BlobMap {
        let mut index = Index::default();
        for (_, f) in files {
            index.add_file(f).unwrap();
        }
        index.finish();
        BlobMap::Memory(index)
    }

    /// Two files: a full one of 60 packs (so tables span many blocks) with
    /// one marked pack, and a small one that lists some of the same blobs
    /// again (a whole copy of a delta, a copy in an unmarked pack) and one
    /// pack of the first again, marked.
    fn two_files() -> Vec<(IndexId, IndexFile)> {
        let mut full = IndexFile {
            packs: packs(1, 0, 60, 40),
            ..IndexFile::default()
        };
        let marked = full.packs.remove(7);
        full.marked.push(MarkedPack {
            marked_unix_ns: 5,
            pack: marked.clone(),
        });
        let mut small = IndexFile {
            supersedes: vec![IndexId([9; 32])],
            packs: packs(200, 0, 1, 40),
            ..IndexFile::default()
        };
        // Whole copies of every blob of pack 0 (some are deltas there).
        for b in &mut small.packs[0].blobs {
            b.encoding = 1;
        }
        small.packs[0].bases.clear();
        // The marked pack's blobs again, unmarked elsewhere.
        small.packs.push(IndexedPack {
            id: PackId([250; 32]),
            ..marked.clone()
        });
        // A pack of the full file marked by the small one.
        small.marked.push(MarkedPack {
            marked_unix_ns: 9,
            pack: full.packs[3].clone(),
        });
        vec![(IndexId([1; 32]), full), (IndexId([2; 32]), small)]
    }

    #[test]
    fn tables_answer_every_lookup_as_the_memory_index_does() {
        let key = MasterKey::generate();
        let d = dir("same");
        let files = two_files();
        let (mem, tab) = (memory(&files), tables(&key, &d, &files));
        for n in 0..2500 {
            for kind in [BlobKind::Data, BlobKind::Tree] {
                let id = blob(n, 1, 1, 0).id;
                let (m, t) = (mem.get(kind, &id), tab.get(kind, &id));
                // Pack numbers differ; the pack and entry must not.
                assert_eq!(
                    m.map(|l| (mem.pack(l.pack).clone(), l.entry)),
                    t.map(|l| (tab.pack(l.pack).clone(), l.entry)),
                    "blob {n}"
                );
                let usable = |map: &BlobMap| map.get_usable(kind, &id).map(|l| map.pack(l.pack).id);
                assert_eq!(usable(&mem), usable(&tab), "blob {n}");
                if let (Some(m), Some(t)) = (m, t) {
                    assert_eq!(mem.bases(&m), tab.bases(&t), "blob {n}");
                    if n % 97 != 0 {
                        continue;
                    }
                    let ids = |map: &BlobMap, p: u32| {
                        map.blobs_in(p).iter().map(|e| e.id).collect::<Vec<_>>()
                    };
                    assert!(ids(&tab, t.pack).contains(&id));
                    assert!(ids(&mem, m.pack).len() <= ids(&tab, t.pack).len());
                }
            }
        }
        for f in &files {
            for p in f.1.packs.iter().chain(f.1.marked.iter().map(|m| &m.pack)) {
                let marked = |map: &BlobMap| map.pack_number(&p.id).map(|n| map.pack(n).marked);
                assert_eq!(marked(&mem), marked(&tab));
            }
        }
        let sorted = |mut f: IndexFile| {
            f.packs.sort_by_key(|p| p.id);
            f.marked.sort_by_key(|m| m.pack.id);
            f
        };
        assert_eq!(sorted(mem.export().unwrap()), sorted(tab.export().unwrap()));
        assert!(tab.failure().is_none());
        assert!(tab.heap_bytes() < mem.heap_bytes());
    }

    /// The whole-map passes prune makes see over tables what they see over
    /// the in-memory map: the same kept copies, the same packs with the
    /// same listings (a pack two tables list merged under one number), the
    /// same delta rows.
    #[test]
    fn tables_scan_as_the_memory_index_does() {
        let key = MasterKey::generate();
        let d = dir("scan");
        let files = two_files();
        let (mem, tab) = (memory(&files), tables(&key, &d, &files));
        let kept = |map: &BlobMap| {
            let mut seen = Vec::new();
            let kept = map
                .scan_kept(|l| seen.push((map.pack(l.pack).id, l.entry)))
                .unwrap();
            (seen, kept)
        };
        let ((mem_seen, mem_kept), (tab_seen, tab_kept)) = (kept(&mem), kept(&tab));
        assert_eq!(mem_seen, tab_seen);
        assert!(mem_seen
            .windows(2)
            .all(|w| (w[0].1.id, w[0].1.kind) < (w[1].1.id, w[1].1.kind)));
        let packs = |map: &BlobMap, kept: &crate::index::Kept| {
            let mut all = Vec::new();
            map.scan_packs(kept, |group| {
                for (n, p) in group {
                    assert_eq!(map.canonical(n), n);
                    all.push((map.pack(n).marked, p));
                }
                Ok::<_, crate::index::ScanError>(())
            })
            .unwrap();
            all.sort_by_key(|(_, p)| p.id);
            all
        };
        let (mem_packs, tab_packs) = (packs(&mem, &mem_kept), packs(&tab, &tab_kept));
        assert_eq!(mem_packs.len(), mem.pack_count());
        assert_eq!(mem_packs, tab_packs);
        // The pack both files list comes once, marked.
        let both = files[1].1.marked[0].pack.id;
        let listed: Vec<_> = tab_packs.iter().filter(|(_, p)| p.id == both).collect();
        assert_eq!((listed.len(), listed[0].0), (1, Some(9)));
        let deltas = |map: &BlobMap| {
            let mut rows = std::collections::BTreeSet::new();
            map.scan_deltas(|id, n, bases| {
                rows.insert((*id, map.pack(n).id, bases.to_vec()));
            })
            .unwrap();
            rows
        };
        assert!(!deltas(&mem).is_empty());
        assert_eq!(deltas(&mem), deltas(&tab));
    }

    /// Blocks are keyed in memory by 8 bytes of the id: ids that share
    /// them across several blocks are all still found.
    #[test]
    fn ids_sharing_their_first_bytes_over_many_blocks_are_found() {
        let key = MasterKey::generate();
        let d = dir("prefix");
        let mut pack = packs(3, 0, 1, 400).remove(0);
        pack.bases.clear();
        for (i, b) in pack.blobs.iter_mut().enumerate() {
            b.encoding = 1;
            // Every third id shares the prefix of its neighbours' block.
            if i % 3 != 0 {
                b.id.0[..8].copy_from_slice(&[0x77; 8]);
            }
        }
        let file = IndexFile {
            packs: vec![pack.clone()],
            ..IndexFile::default()
        };
        let tab = tables(&key, &d, &[(IndexId([4; 32]), file)]);
        for b in &pack.blobs {
            assert_eq!(tab.get(BlobKind::Data, &b.id).map(|l| l.entry), Some(*b));
            let mut absent = b.id;
            absent.0[31] ^= 1;
            assert!(tab.get(BlobKind::Data, &absent).is_none());
        }
    }

    #[test]
    fn a_damaged_or_foreign_table_is_refused() {
        let key = MasterKey::generate();
        let d = dir("damaged");
        let files = two_files();
        let (id, file) = &files[0];
        let path = d.0.join("t");
        write_table(&path, &key, *id, file.clone()).unwrap();
        // Another file's name, or another repository's key.
        assert!(Table::open(&path, &key, IndexId([3; 32])).is_err());
        assert!(Table::open(&path, &MasterKey::generate(), *id).is_err());
        // Truncated by one block.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4112]).unwrap();
        assert!(Table::open(&path, &key, *id).is_err());
        // One byte flipped in a block: refused at open.
        let mut bad = bytes.clone();
        let header_len = u32::from_le_bytes(bytes[37..41].try_into().unwrap()) as usize;
        bad[41 + header_len + 5 * 4112 + 7] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(Table::open(&path, &key, *id)
            .err()
            .unwrap()
            .contains("block 5 does not verify"));
        // Flipped after opening (the same file rewritten in place): the
        // lookups in that block fail, answer "not found", and the failure
        // names the table, which is removed.
        std::fs::write(&path, &bytes).unwrap();
        let opened = Table::open(&path, &key, *id).unwrap();
        std::fs::write(&path, &bad).unwrap();
        let map = BlobMap::from_tables(vec![(path.clone(), opened)]).unwrap();
        let found = (0..2400)
            .filter(|&n| map.get(BlobKind::Data, &blob(n, 1, 1, 0).id).is_some())
            .count();
        assert!(found < 2400 - 40, "{found}");
        assert!(map.failure().unwrap().contains("does not verify"));
        assert!(!path.exists());
    }
}
