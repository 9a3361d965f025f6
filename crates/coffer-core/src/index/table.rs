//! Index tables: one index file's blob map kept on local disk in sealed
//! 4 KiB blocks, so a command looks blobs up with one block read instead of
//! holding every blob of a large repository in memory. A table is built
//! once per index file (index files never change) and is a pure function of
//! it; its in-memory part is a header with the packs, the first key of each
//! block and a Bloom filter (about 1.1 bytes a blob).
//!
//! The file lives in the local cache, which is not trusted any more than
//! storage: the header and every block are sealed with AES-256-GCM under a
//! subkey of the repository key (a random salt per file), the nonce is the
//! block's number and the index id is authenticated with each, so a block
//! cannot be altered, moved, or taken from another table or repository.
//! Layout (see "Index tables" in docs/format.md):
//!
//! `CFIT` | version 1 | salt (32) | header length (u32 LE) | sealed header |
//! sealed slot blocks | sealed delta blocks, each block 4096 + 16 bytes.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bincode::{Decode, Encode};

use super::bloom::Bloom;
use super::{Index, IndexFile, PackInfo, Slot};
use crate::codec;
use crate::crypto::{random_bytes, MasterKey, SubKey, NONCE_LEN, SALT_LEN, TAG_LEN};
use crate::id::{BlobId, IndexId, PackId};

/// First bytes of a table file.
pub const TABLE_MAGIC: &[u8; 4] = b"CFIT";
/// Table format version.
pub const TABLE_VERSION: u8 = 1;
/// Plaintext bytes in a block.
const BLOCK: usize = 4096;
const SEALED_BLOCK: u64 = (BLOCK + TAG_LEN) as u64;
const PREFIX_LEN: usize = 4 + 1 + SALT_LEN + 4;
/// One slot: id, pack number (24 bits) with kind and encoding, offset,
/// sealed length, plaintext length.
const SLOT_LEN: usize = 48;
const SLOTS_PER_BLOCK: usize = BLOCK / SLOT_LEN;
/// One delta row: id, pack number, base count, two bases (zero-filled).
const DELTA_LEN: usize = 32 + 4 + 1 + 32 * crate::delta::MAX_BASES;
const DELTAS_PER_BLOCK: usize = BLOCK / DELTA_LEN;
const AAD_CONTEXT: &[u8] = b"coffer index table";

#[derive(Debug, Clone, Encode, Decode)]
struct TablePack {
    id: PackId,
    salt: [u8; SALT_LEN],
    size: u64,
    marked: Option<i64>,
}

#[derive(Debug, Clone, Encode, Decode)]
struct Header {
    index_id: IndexId,
    supersedes: Vec<IndexId>,
    blob_count: u64,
    packs: Vec<TablePack>,
    slots: u64,
    /// The first 8 bytes (big-endian) of the first id of each slot block.
    slot_keys: Vec<u64>,
    deltas: u64,
    /// The first (id, pack) of each delta block.
    delta_keys: Vec<([u8; 32], u32)>,
    bloom: Bloom,
}

/// What opening a table gives besides the table: its packs in number order,
/// the files it supersedes and its blob count (for index planning).
pub struct Opened {
    /// The table.
    pub table: Table,
    /// Its packs, numbered from 0.
    pub packs: Vec<PackInfo>,
    /// The index files its file supersedes.
    pub supersedes: Vec<IndexId>,
    /// Blobs its file lists (marked packs included), for index planning.
    pub blob_count: u64,
}

/// An open table: the file and the in-memory part of its header.
pub struct Table {
    file: File,
    key: SubKey,
    aad: Vec<u8>,
    data_start: u64,
    slots: u64,
    slot_keys: Vec<u64>,
    deltas: u64,
    delta_keys: Vec<([u8; 32], u32)>,
    bloom: Bloom,
    pack_count: u32,
}

/// What slot blocks are keyed by in memory: an id's first 8 bytes.
fn id_prefix(id: &[u8; 32]) -> u64 {
    u64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
}

fn nonce(block: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&block.to_le_bytes());
    n
}

fn aad(index_id: &IndexId) -> Vec<u8> {
    [AAD_CONTEXT, &index_id.0[..]].concat()
}

fn encode_slot(s: &Slot, out: &mut Vec<u8>) {
    out.extend_from_slice(&s.id);
    for v in [s.pack_kind_enc, s.offset, s.length, s.raw_length] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn decode_slot(b: &[u8]) -> Slot {
    let u = |i: usize| u32::from_le_bytes(b[32 + 4 * i..36 + 4 * i].try_into().expect("4 bytes"));
    Slot {
        id: b[..32].try_into().expect("32 bytes"),
        pack_kind_enc: u(0),
        offset: u(1),
        length: u(2),
        raw_length: u(3),
    }
}

fn encode_delta(id: &[u8; 32], pack: u32, bases: &[BlobId], out: &mut Vec<u8>) {
    out.extend_from_slice(id);
    out.extend_from_slice(&pack.to_le_bytes());
    out.push(bases.len() as u8);
    for i in 0..crate::delta::MAX_BASES {
        out.extend_from_slice(&bases.get(i).map_or([0; 32], |b| b.0));
    }
}

/// A decoded delta row: id, pack number and bases.
type DeltaRecord = ([u8; 32], u32, Vec<BlobId>);

fn decode_delta(b: &[u8]) -> Result<DeltaRecord, String> {
    let n = b[36] as usize;
    if n == 0 || n > crate::delta::MAX_BASES {
        return Err(format!("a delta row lists {n} bases"));
    }
    let bases = (0..n)
        .map(|i| BlobId(b[37 + 32 * i..69 + 32 * i].try_into().expect("32 bytes")))
        .collect();
    Ok((
        b[..32].try_into().expect("32 bytes"),
        u32::from_le_bytes(b[32..36].try_into().expect("4 bytes")),
        bases,
    ))
}

/// Why a table was not written.
#[derive(Debug)]
pub enum WriteError {
    /// The index file is one the in-memory index refuses too.
    Invalid(String),
    /// The file could not be written.
    Io(String),
}

/// Seals `records` (fixed-size, encoded by `encode`) into blocks of
/// `per_block`, each zero-padded to [`BLOCK`] bytes, numbered from `first`;
/// returns the next block number.
fn write_blocks<T>(
    out: &mut impl Write,
    (sub, aad): (&SubKey, &[u8]),
    first: u64,
    records: &[T],
    per_block: usize,
    encode: impl Fn(&T, &mut Vec<u8>),
) -> std::io::Result<u64> {
    let mut block = Vec::with_capacity(BLOCK + TAG_LEN);
    let mut n = first;
    for chunk in records.chunks(per_block) {
        block.clear();
        for r in chunk {
            encode(r, &mut block);
        }
        block.resize(BLOCK, 0);
        sub.seal_tail(&nonce(1 + n), aad, &mut block, 0);
        out.write_all(&block)?;
        n += 1;
    }
    Ok(n)
}

/// Builds the table of index file `index_id` and writes it to `path`
/// (through a temporary file renamed into place). Takes the file so that
/// it is freed once indexed: at most one file's slots are in memory twice.
pub fn write(
    path: &Path,
    key: &MasterKey,
    index_id: IndexId,
    file: IndexFile,
) -> Result<(), WriteError> {
    let mut index = Index::default();
    index.add_file(&file).map_err(WriteError::Invalid)?;
    let blob_count = file.blob_count();
    let supersedes = file.supersedes;
    drop(file.packs);
    drop(file.marked);
    index.finish();
    let mut bloom = Bloom::with_capacity(index.slots.len() as u64);
    for s in &index.slots {
        bloom.insert(&s.id, (s.pack_kind_enc >> 28) as u8);
    }
    let header = Header {
        index_id,
        supersedes,
        blob_count,
        packs: index
            .packs
            .iter()
            .map(|p| TablePack {
                id: p.id,
                salt: p.salt,
                size: p.size,
                marked: p.marked,
            })
            .collect(),
        slots: index.slots.len() as u64,
        slot_keys: index
            .slots
            .iter()
            .step_by(SLOTS_PER_BLOCK)
            .map(|s| id_prefix(&s.id))
            .collect(),
        deltas: index.deltas.len() as u64,
        delta_keys: index
            .deltas
            .iter()
            .step_by(DELTAS_PER_BLOCK)
            .map(|d| (d.id, d.pack))
            .collect(),
        bloom,
    };
    let salt: [u8; SALT_LEN] = random_bytes();
    let sub = key.subkey(&salt);
    let aad = aad(&index_id);
    let encoded = codec::encode(&header).map_err(WriteError::Invalid)?;
    drop(header);
    let sealed_header = sub.seal(&nonce(0), &aad, &encoded);
    drop(encoded);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(File::create(&tmp)?);
        out.write_all(TABLE_MAGIC)?;
        out.write_all(&[TABLE_VERSION])?;
        out.write_all(&salt)?;
        out.write_all(&(sealed_header.len() as u32).to_le_bytes())?;
        out.write_all(&sealed_header)?;
        let seal = (&sub, &aad[..]);
        let next = write_blocks(
            &mut out,
            seal,
            0,
            &index.slots,
            SLOTS_PER_BLOCK,
            encode_slot,
        )?;
        write_blocks(
            &mut out,
            seal,
            next,
            &index.deltas,
            DELTAS_PER_BLOCK,
            |d, b| encode_delta(&d.id, d.pack, index.bases_of(d), b),
        )?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(WriteError::Io(format!("{}: {e}", path.display())));
    }
    Ok(())
}

/// Opens every block once, in batches of 16, so that a damaged table is
/// refused (and built again) before a command relies on it. About a
/// quarter of a second a gigabyte of table.
fn verify_blocks(
    file: &File,
    key: &SubKey,
    aad: &[u8],
    start: u64,
    blocks: u64,
) -> Result<(), String> {
    const BATCH: u64 = 16;
    let mut buf = vec![0u8; (BATCH * SEALED_BLOCK) as usize];
    let mut n = 0;
    while n < blocks {
        let count = BATCH.min(blocks - n);
        let bytes = &mut buf[..(count * SEALED_BLOCK) as usize];
        file.read_exact_at(bytes, start + n * SEALED_BLOCK)
            .map_err(|e| format!("block {n}: {e}"))?;
        for (i, sealed) in bytes.chunks(SEALED_BLOCK as usize).enumerate() {
            let b = n + i as u64;
            key.open(&nonce(1 + b), aad, sealed)
                .map_err(|_| format!("block {b} does not verify"))?;
        }
        n += count;
    }
    Ok(())
}

impl Table {
    /// Opens the table of index file `index_id`: checks the prefix, opens
    /// the header, checks that it is this file's and that the file has
    /// exactly the blocks it announces, and opens every block.
    pub fn open(path: &Path, key: &MasterKey, index_id: IndexId) -> Result<Opened, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let mut prefix = [0u8; PREFIX_LEN];
        file.read_exact_at(&mut prefix, 0)
            .map_err(|e| e.to_string())?;
        if &prefix[..4] != TABLE_MAGIC || prefix[4] != TABLE_VERSION {
            return Err("not a version 1 index table".into());
        }
        let salt: [u8; SALT_LEN] = prefix[5..5 + SALT_LEN].try_into().expect("salt");
        let header_len = u32::from_le_bytes(prefix[PREFIX_LEN - 4..].try_into().expect("4 bytes"));
        let file_len = file.metadata().map_err(|e| e.to_string())?.len();
        if PREFIX_LEN as u64 + header_len as u64 > file_len
            || header_len as usize > codec::MAX_DECODE_BYTES
        {
            return Err("header longer than the file".into());
        }
        let mut sealed = vec![0u8; header_len as usize];
        file.read_exact_at(&mut sealed, PREFIX_LEN as u64)
            .map_err(|e| e.to_string())?;
        let key = key.subkey(&salt);
        let aad = aad(&index_id);
        let plain = key
            .open(&nonce(0), &aad, &sealed)
            .map_err(|_| "header does not verify".to_string())?;
        drop(sealed);
        let h: Header = codec::decode(&plain)?;
        drop(plain);
        let data_start = PREFIX_LEN as u64 + header_len as u64;
        let blocks = h.slot_keys.len() as u64 + h.delta_keys.len() as u64;
        let consistent = h.index_id == index_id
            && h.slot_keys.len() == h.slots.div_ceil(SLOTS_PER_BLOCK as u64) as usize
            && h.delta_keys.len() == h.deltas.div_ceil(DELTAS_PER_BLOCK as u64) as usize
            && file_len == data_start + blocks * SEALED_BLOCK
            && h.packs.len() < super::MAX_PACKS;
        if !consistent {
            return Err("header does not match the file".into());
        }
        verify_blocks(&file, &key, &aad, data_start, blocks)?;
        let packs = h
            .packs
            .into_iter()
            .map(|p| PackInfo {
                id: p.id,
                salt: p.salt,
                size: p.size,
                marked: p.marked,
            })
            .collect::<Vec<_>>();
        Ok(Opened {
            table: Table {
                file,
                key,
                aad,
                data_start,
                slots: h.slots,
                slot_keys: h.slot_keys,
                deltas: h.deltas,
                delta_keys: h.delta_keys,
                bloom: h.bloom,
                pack_count: packs.len() as u32,
            },
            packs,
            supersedes: h.supersedes,
            blob_count: h.blob_count,
        })
    }

    /// Number of packs the table lists.
    pub fn pack_count(&self) -> u32 {
        self.pack_count
    }

    /// Number of distinct blobs the table lists.
    pub fn len(&self) -> u64 {
        self.slots
    }

    /// True for a table of no blobs.
    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// Heap bytes held by the in-memory part.
    pub fn heap_bytes(&self) -> usize {
        self.bloom.heap_bytes() + self.slot_keys.capacity() * 8 + self.delta_keys.capacity() * 36
    }

    /// Reads and opens block `n` (slot blocks first, then delta blocks).
    fn block(&self, n: u64) -> Result<Vec<u8>, String> {
        let mut sealed = vec![0u8; SEALED_BLOCK as usize];
        self.file
            .read_exact_at(&mut sealed, self.data_start + n * SEALED_BLOCK)
            .map_err(|e| format!("block {n}: {e}"))?;
        self.key
            .open(&nonce(1 + n), &self.aad, &sealed)
            .map_err(|_| format!("block {n} does not verify"))
    }

    /// The records of slot block `b`.
    pub(super) fn slot_block(&self, b: usize) -> Result<Vec<Slot>, String> {
        let bytes = self.block(b as u64)?;
        let n = (self.slots - (b * SLOTS_PER_BLOCK) as u64).min(SLOTS_PER_BLOCK as u64) as usize;
        Ok(bytes.chunks(SLOT_LEN).take(n).map(decode_slot).collect())
    }

    /// The slot of blob (`id`, `kind`), its pack number local to the table.
    pub(super) fn find(&self, kind: u8, id: &[u8; 32]) -> Result<Option<Slot>, String> {
        if !self.bloom.may_contain(id, kind) {
            return Ok(None);
        }
        let key = (*id, kind);
        let key_of = |s: &Slot| (s.id, (s.pack_kind_enc >> 28) as u8);
        // The blob can only be in the last block whose first key is not
        // above it. Block keys keep 8 bytes of the id, so the blocks whose
        // key equals the id's are tried from the last down (almost always
        // none or one), then the one before them.
        let p = id_prefix(id);
        let first = self.slot_keys.partition_point(|k| *k < p);
        let end = self.slot_keys.partition_point(|k| *k <= p);
        for b in (first.saturating_sub(1)..end).rev() {
            let slots = self.slot_block(b)?;
            if slots.first().is_some_and(|s| key_of(s) > key) {
                continue;
            }
            return Ok(slots
                .binary_search_by(|s| key_of(s).cmp(&key))
                .ok()
                .map(|i| slots[i]));
        }
        Ok(None)
    }

    /// Every slot, in key order (a read of the whole table).
    pub(super) fn slots(&self) -> Result<Vec<Slot>, String> {
        let mut all = Vec::with_capacity(self.slots as usize);
        for b in 0..self.slot_keys.len() {
            all.extend(self.slot_block(b)?);
        }
        Ok(all)
    }

    fn delta_block(&self, b: usize) -> Result<Vec<DeltaRecord>, String> {
        let bytes = self.block((self.slot_keys.len() + b) as u64)?;
        let n = (self.deltas - (b * DELTAS_PER_BLOCK) as u64).min(DELTAS_PER_BLOCK as u64) as usize;
        bytes.chunks(DELTA_LEN).take(n).map(decode_delta).collect()
    }

    /// The bases of the delta copy of `id` in local pack `pack`.
    pub(super) fn bases(&self, id: &[u8; 32], pack: u32) -> Result<Option<Vec<BlobId>>, String> {
        let key = (*id, pack);
        let b = self.delta_keys.partition_point(|k| *k <= key);
        if b == 0 {
            return Ok(None);
        }
        let rows = self.delta_block(b - 1)?;
        Ok(rows
            .into_iter()
            .find(|(i, p, _)| (*i, *p) == key)
            .map(|(_, _, bases)| bases))
    }

    /// Every delta row, in (id, pack) order.
    pub(super) fn delta_rows(&self) -> Result<Vec<DeltaRecord>, String> {
        let mut all = Vec::with_capacity(self.deltas as usize);
        for b in 0..self.delta_keys.len() {
            all.extend(self.delta_block(b)?);
        }
        Ok(all)
    }
}
