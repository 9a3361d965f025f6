//! Passes over the whole blob map, for prune: every blob copy the map keeps
//! (the one its lookups answer with), every delta row, and every pack with
//! the blobs the map keeps in it. Over tables these stream: one block per
//! table in memory for the kept copies (a merge of the tables in id order),
//! one table at a time for the packs, so a pass over 10 M blobs holds a few
//! megabytes, not the 48 bytes a blob the in-memory map takes.
//!
//! A pack listed by several tables (two writers indexed it) has several
//! numbers in a [`TableSet`]; the passes name it by its lowest, its
//! *canonical* number, and merge its listings, as the in-memory map does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::map::TableSet;
use super::table::Table;
use super::{
    copy_rank, listing, location, BlobLocation, BlobMap, DeltaBases, Index, IndexedPack, Slot,
};
use crate::id::BlobId;
use crate::pack::BlobEntry;

/// Which slot of each table holds the copy the map keeps (tables only; the
/// in-memory map keeps one slot a blob already).
#[derive(Default)]
pub struct Kept {
    /// Bit number of each table's first slot.
    first: Vec<u64>,
    bits: Vec<u64>,
}

impl Kept {
    fn new(tables: &[(std::path::PathBuf, Table)]) -> Self {
        let mut first = Vec::with_capacity(tables.len());
        let mut total = 0;
        for (_, t) in tables {
            first.push(total);
            total += t.len();
        }
        Kept {
            first,
            bits: vec![0; total.div_ceil(64) as usize],
        }
    }

    fn set(&mut self, table: usize, slot: u64) {
        let b = self.first[table] + slot;
        self.bits[(b / 64) as usize] |= 1 << (b % 64);
    }

    fn get(&self, table: usize, slot: u64) -> bool {
        let b = self.first[table] + slot;
        self.bits[(b / 64) as usize] & (1 << (b % 64)) != 0
    }
}

/// A table that failed to read during a pass (it has been removed, so the
/// next command builds it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError(pub String);

impl From<String> for ScanError {
    fn from(e: String) -> Self {
        ScanError(e)
    }
}

/// A pack with the blobs the map keeps in it (pack order) and their bases,
/// under its canonical number.
pub type NumberedPack = (u32, IndexedPack);

impl BlobMap {
    /// The canonical number of pack number `n` (see the module
    /// documentation): `n` unless a lower number has the same pack.
    pub fn canonical(&self, n: u32) -> u32 {
        match self {
            BlobMap::Memory(_) => n,
            BlobMap::Tables(set) => set.canonical[n as usize],
        }
    }

    /// Visits every blob the map keeps, once each, in (id, kind) order, at
    /// the location a lookup answers with (its pack by canonical number).
    /// Returns which table slots those are, for [`BlobMap::scan_packs`].
    pub fn scan_kept(&self, mut visit: impl FnMut(&BlobLocation)) -> Result<Kept, String> {
        match self {
            BlobMap::Memory(index) => {
                index.slots.iter().for_each(|s| visit(&location(s)));
                Ok(Kept::default())
            }
            BlobMap::Tables(set) => set.scan_kept(visit),
        }
    }

    /// Visits every stored delta copy: its id, its pack (canonical number)
    /// and its bases. A copy listed by two tables may be visited twice.
    pub fn scan_deltas(
        &self,
        mut visit: impl FnMut(&BlobId, u32, &[BlobId]),
    ) -> Result<(), String> {
        match self {
            BlobMap::Memory(index) => {
                for d in &index.deltas {
                    visit(&BlobId(d.id), d.pack, index.bases_of(d));
                }
                Ok(())
            }
            BlobMap::Tables(set) => {
                for (t, (_, table)) in set.tables.iter().enumerate() {
                    for (id, local, bases) in table.delta_rows().map_err(|e| set.broken(t, e))? {
                        let n = set.global(t, local)?;
                        visit(&BlobId(id), set.canonical[n as usize], &bases);
                    }
                }
                Ok(())
            }
        }
    }

    /// Hands every pack, with the blobs the map keeps in it and their bases,
    /// to `visit` in groups: one table's packs at a time (the in-memory map:
    /// all at once), packs listed by several tables last. `kept` is what
    /// [`BlobMap::scan_kept`] returned.
    pub fn scan_packs<E: From<ScanError>>(
        &self,
        kept: &Kept,
        mut visit: impl FnMut(Vec<NumberedPack>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            BlobMap::Memory(index) => visit(index.numbered_packs()),
            BlobMap::Tables(set) => set.scan_packs(kept, visit),
        }
    }

    /// The listings of packs `wanted` (canonical numbers; in their order
    /// for the in-memory map), handed to `visit` one at a time: the
    /// in-memory map makes them [`LISTING_BATCH`] packs a pass, tables a
    /// table at a time ([`BlobMap::scan_packs`]), so that memory holds a
    /// batch or a table's listings, never every pack's.
    pub fn scan_listings_of<E: From<ScanError>>(
        &self,
        kept: &Kept,
        wanted: &[u32],
        mut visit: impl FnMut(NumberedPack) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            BlobMap::Memory(index) => {
                for batch in wanted.chunks(LISTING_BATCH) {
                    index
                        .listings_of(batch)
                        .into_iter()
                        .try_for_each(&mut visit)?;
                }
                Ok(())
            }
            BlobMap::Tables(set) => {
                let wanted: std::collections::HashSet<u32> = wanted.iter().copied().collect();
                set.scan_packs(kept, |group| {
                    group
                        .into_iter()
                        .filter(|(n, _)| wanted.contains(n))
                        .try_for_each(&mut visit)
                })
            }
        }
    }
}

/// Packs whose listings [`BlobMap::scan_listings_of`] makes in one pass
/// over the in-memory map.
const LISTING_BATCH: usize = 256;

impl Index {
    /// Every pack with the blobs this map keeps in it and their bases.
    pub(super) fn numbered_packs(&self) -> Vec<NumberedPack> {
        let all: Vec<u32> = (0..self.packs.len() as u32).collect();
        self.listings_of(&all)
    }

    /// Packs `numbers` (in that order) with the blobs this map keeps in
    /// them and their bases: one pass over the map.
    pub fn listings_of(&self, numbers: &[u32]) -> Vec<NumberedPack> {
        // Where each pack number goes in the result, if it is asked for.
        let mut at = vec![usize::MAX; self.packs.len()];
        for (i, &n) in numbers.iter().enumerate() {
            at[n as usize] = i;
        }
        let mut blobs: Vec<Vec<BlobEntry>> = vec![Vec::new(); numbers.len()];
        let mut bases: Vec<Vec<DeltaBases>> = vec![Vec::new(); numbers.len()];
        for loc in self.slots.iter().map(location) {
            let i = at[loc.pack as usize];
            if i == usize::MAX {
                continue;
            }
            blobs[i].push(loc.entry);
            if let Some(b) = self.bases(&loc) {
                bases[i].push(DeltaBases {
                    id: loc.entry.id,
                    bases: b.to_vec(),
                });
            }
        }
        numbers
            .iter()
            .zip(blobs.into_iter().zip(bases))
            .map(|(&n, (b, d))| (n, listing(&self.packs[n as usize], b, d)))
            .collect()
    }
}

/// One table's place in the merge: its current block and position.
struct Cursor<'a> {
    table: &'a Table,
    block: usize,
    slots: Vec<Slot>,
    /// Index in `slots` of the next slot.
    next: usize,
    /// Table-wide number of `slots[0]`.
    first: u64,
}

impl Cursor<'_> {
    /// The next slot and its table-wide number, reading the next block when
    /// this one is used up.
    fn peek(&mut self) -> Result<Option<(Slot, u64)>, String> {
        while self.next == self.slots.len() {
            if self.first + self.slots.len() as u64 >= self.table.len() {
                return Ok(None);
            }
            self.first += self.slots.len() as u64;
            self.slots = self.table.slot_block(self.block)?;
            self.block += 1;
            self.next = 0;
            if self.slots.is_empty() {
                return Err(format!("slot block {} is empty", self.block - 1));
            }
        }
        Ok(Some((self.slots[self.next], self.first + self.next as u64)))
    }
}

impl TableSet {
    /// A read of table `t` failed: the table is removed (the next command
    /// builds it again) and the error names it.
    fn broken(&self, t: usize, e: String) -> String {
        let path = &self.tables[t].0;
        let _ = std::fs::remove_file(path);
        format!("index table {}: {e}", path.display())
    }

    /// The set-wide number of table `t`'s pack `local`.
    fn global(&self, t: usize, local: u32) -> Result<u32, String> {
        if local >= self.tables[t].1.pack_count() {
            return Err(self.broken(t, format!("a row names pack {local}")));
        }
        Ok(self.first_pack[t] + local)
    }

    /// A merge of the tables (each sorted by id and kind): the copies of one
    /// blob come out together, and the one of lowest [`copy_rank`] (then
    /// the first table, as lookups break ties) is kept.
    fn scan_kept(&self, mut visit: impl FnMut(&BlobLocation)) -> Result<Kept, String> {
        let mut kept = Kept::new(&self.tables);
        let mut cursors: Vec<Cursor> = self
            .tables
            .iter()
            .map(|(_, table)| Cursor {
                table,
                block: 0,
                slots: Vec::new(),
                next: 0,
                first: 0,
            })
            .collect();
        let key = |s: &Slot| (s.id, (s.pack_kind_enc >> 28) as u8);
        let mut heads = BinaryHeap::new();
        for (t, c) in cursors.iter_mut().enumerate() {
            if let Some((s, _)) = c.peek().map_err(|e| self.broken(t, e))? {
                heads.push(Reverse((key(&s), t)));
            }
        }
        while let Some(Reverse((blob, _))) = heads.peek().copied() {
            // Every copy of `blob`: (rank, table, slot number, location).
            let mut best: Option<(_, usize, u64, BlobLocation)> = None;
            while let Some(Reverse((k, t))) = heads.peek().copied() {
                if k != blob {
                    break;
                }
                heads.pop();
                let c = &mut cursors[t];
                let (s, number) = c
                    .peek()
                    .map_err(|e| self.broken(t, e))?
                    .expect("a head has a slot");
                c.next += 1;
                let local = s.pack_kind_enc & 0x00ff_ffff;
                let global = self.global(t, local)?;
                let loc = location(&Slot {
                    pack_kind_enc: (s.pack_kind_enc & 0xff00_0000) | global,
                    ..s
                });
                let rank = (copy_rank(&loc, &self.packs), t);
                if best.as_ref().is_none_or(|(r, ..)| rank < *r) {
                    best = Some((rank, t, number, loc));
                }
                if let Some((next, _)) = c.peek().map_err(|e| self.broken(t, e))? {
                    if key(&next) <= k {
                        return Err(self.broken(t, "slots out of order".into()));
                    }
                    heads.push(Reverse((key(&next), t)));
                }
            }
            let (_, t, number, mut loc) = best.expect("one copy at least");
            kept.set(t, number);
            loc.pack = self.canonical[loc.pack as usize];
            visit(&loc);
        }
        Ok(kept)
    }

    fn scan_packs<E: From<ScanError>>(
        &self,
        kept: &Kept,
        mut visit: impl FnMut(Vec<NumberedPack>) -> Result<(), E>,
    ) -> Result<(), E> {
        let canonical = &self.canonical;
        let mut listings = vec![0u8; self.packs.len()];
        for &c in canonical {
            listings[c as usize] = listings[c as usize].saturating_add(1);
        }
        // Packs several tables list, merged across them.
        type Listing = (Vec<BlobEntry>, Vec<DeltaBases>);
        let mut shared: HashMap<u32, Listing> = HashMap::new();
        for (t, (_, table)) in self.tables.iter().enumerate() {
            let count = table.pack_count() as usize;
            let mut blobs: Vec<Vec<BlobEntry>> = vec![Vec::new(); count];
            let mut bases: Vec<Vec<DeltaBases>> = vec![Vec::new(); count];
            let fail = |e| E::from(ScanError(self.broken(t, e)));
            let mut deltas: HashMap<([u8; 32], u32), Vec<BlobId>> = table
                .delta_rows()
                .map_err(fail)?
                .into_iter()
                .map(|(id, local, b)| ((id, local), b))
                .collect();
            let slots = table.slots().map_err(fail)?;
            for (number, s) in slots.into_iter().enumerate() {
                if !kept.get(t, number as u64) {
                    continue;
                }
                let loc = location(&s);
                if loc.pack >= table.pack_count() {
                    return Err(fail(format!("a slot names pack {}", loc.pack)));
                }
                if let Some(b) = deltas.remove(&(s.id, loc.pack)) {
                    bases[loc.pack as usize].push(DeltaBases {
                        id: loc.entry.id,
                        bases: b,
                    });
                }
                blobs[loc.pack as usize].push(loc.entry);
            }
            drop(deltas);
            let mut group = Vec::new();
            for (local, (b, d)) in blobs.into_iter().zip(bases).enumerate() {
                let c = canonical[self.first_pack[t] as usize + local];
                if listings[c as usize] > 1 {
                    let (sb, sd) = shared.entry(c).or_default();
                    sb.extend(b);
                    sd.extend(d);
                } else {
                    group.push((c, listing(&self.packs[c as usize], b, d)));
                }
            }
            visit(group)?;
        }
        let mut group: Vec<NumberedPack> = shared
            .into_iter()
            .map(|(c, (b, d))| (c, listing(&self.packs[c as usize], b, d)))
            .collect();
        group.sort_by_key(|(c, _)| *c);
        if !group.is_empty() {
            visit(group)?;
        }
        Ok(())
    }
}
