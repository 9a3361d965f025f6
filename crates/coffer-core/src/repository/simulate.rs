//! The scale simulator's writes (`benches/scale.rs`): index files that
//! describe many blobs in packs that are never stored, and copies of a
//! snapshot at other times, so memory and start-up can be measured at
//! millions of blobs and thousands of snapshots in minutes. Everything is
//! written exactly as a backup writes it (real codec, real sealing); only
//! the packs are absent, so `check` reports them missing and restoring a
//! snapshot that names them fails. Never use it on a repository you keep.

use super::Repository;
use crate::error::Result;
use crate::id::{BlobId, PackId, SnapshotId};
use crate::index::{IndexFile, IndexedPack, MAX_INDEX_FILE_BLOBS};
use crate::pack::{BlobEntry, BlobKind};
use crate::snapshot::Snapshot;

/// Blobs per simulated pack: a 16 MiB pack of ~55 KB compressed chunks.
pub const BLOBS_PER_PACK: u32 = 300;

/// What [`Repository::simulate_blobs`] wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simulated {
    /// Index files written.
    pub index_files: u64,
    /// Their bytes, sealed.
    pub index_bytes: u64,
}

impl Repository {
    /// Indexes `blobs` data blobs (ids derived from `seed` and a counter)
    /// in absent packs of [`BLOBS_PER_PACK`] blobs, written as full index
    /// parts of at most [`MAX_INDEX_FILE_BLOBS`] blobs each. For benchmarks
    /// only; see the module documentation.
    pub async fn simulate_blobs(&self, blobs: u64, seed: u64) -> Result<Simulated> {
        let id = |tag: &[u8], k: u64| {
            let mut h = blake3::Hasher::new();
            h.update(tag)
                .update(&seed.to_le_bytes())
                .update(&k.to_le_bytes());
            *h.finalize().as_bytes()
        };
        let mut out = Simulated::default();
        let mut next = 0u64;
        while next < blobs {
            let part = (blobs - next).min(MAX_INDEX_FILE_BLOBS);
            let mut file = IndexFile::default();
            let mut n = 0;
            while n < part {
                let in_pack = (part - n).min(BLOBS_PER_PACK as u64) as u32;
                let pack_no = (next + n) / BLOBS_PER_PACK as u64;
                let entries = (0..in_pack)
                    .map(|i| BlobEntry {
                        kind: BlobKind::Data as u8,
                        encoding: 1,
                        id: BlobId(id(b"blob", next + n + i as u64)),
                        offset: 37 + i * 56_000,
                        length: 55_000,
                        raw_length: 230_000,
                    })
                    .collect();
                file.packs.push(IndexedPack::plain(
                    PackId(id(b"pack", pack_no)),
                    id(b"salt", pack_no),
                    37 + in_pack as u64 * 56_000,
                    entries,
                ));
                n += in_pack as u64;
            }
            let (_, len) = self.write_index(file).await?;
            out.index_files += 1;
            out.index_bytes += len;
            next += part;
        }
        Ok(out)
    }

    /// Writes `count` copies of `snap`, one second apart before it, with
    /// hosts cycling over `hosts` names. For benchmarks only.
    pub async fn simulate_snapshots(
        &self,
        snap: &Snapshot,
        count: u64,
        hosts: u64,
    ) -> Result<Vec<SnapshotId>> {
        let mut ids = Vec::new();
        for i in 0..count {
            let copy = Snapshot {
                time_unix_ns: snap.time_unix_ns - (i as i64 + 1) * 1_000_000_000,
                host: format!("{}-{}", snap.host, i % hosts.max(1)),
                ..snap.clone()
            };
            ids.push(self.write_snapshot(&copy).await?.0);
        }
        Ok(ids)
    }
}
