//! The scale simulator's writes (`benches/scale.rs`): index files that
//! describe many blobs in packs that are never stored, and copies of a
//! snapshot at other times, so memory and start-up can be measured at
//! millions of blobs and thousands of snapshots in minutes. Everything is
//! written exactly as a backup writes it (real codec, real sealing); only
//! the packs are absent (or, for a local repository, empty sparse files the
//! benchmark makes), so `check` reports them missing or damaged and
//! restoring a snapshot that names them fails. Never use it on a
//! repository you keep.

use super::pack_sink::PackSink;
use super::{blocking, Repository};
use crate::error::Result;
use crate::id::{BlobId, PackId, SnapshotId};
use crate::index::{IndexFile, IndexedPack, MAX_INDEX_FILE_BLOBS};
use crate::pack::{BlobEntry, BlobKind, EncodedBlob};
use crate::snapshot::{Snapshot, StreamEntry};
use crate::tree::{TreeBuilder, TreeEntry};

/// Blobs per simulated pack: a 16 MiB pack of ~55 KB compressed chunks.
pub const BLOBS_PER_PACK: u32 = 300;

/// What [`Repository::simulate_blobs`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Simulated {
    /// Index files written.
    pub index_files: u64,
    /// Their bytes, sealed.
    pub index_bytes: u64,
    /// The packs indexed (never stored): id and size.
    pub packs: Vec<(PackId, u64)>,
}

/// The id the simulator gives the `k`th object of a kind (`tag`).
pub(crate) fn simulated_id(seed: u64, tag: &[u8], k: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(tag)
        .update(&seed.to_le_bytes())
        .update(&k.to_le_bytes());
    *h.finalize().as_bytes()
}

/// Plaintext length of a simulated blob.
pub(crate) const SIMULATED_RAW: u32 = 230_000;

impl Repository {
    /// Indexes `blobs` data blobs (ids derived from `seed` and a counter)
    /// in absent packs of [`BLOBS_PER_PACK`] blobs, written as full index
    /// parts of at most [`MAX_INDEX_FILE_BLOBS`] blobs each. For benchmarks
    /// only; see the module documentation.
    pub async fn simulate_blobs(&self, blobs: u64, seed: u64) -> Result<Simulated> {
        let id = |tag: &[u8], k: u64| simulated_id(seed, tag, k);
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
                        raw_length: SIMULATED_RAW,
                    })
                    .collect();
                let (pack, size) = (PackId(id(b"pack", pack_no)), 37 + in_pack as u64 * 56_000);
                file.packs.push(IndexedPack::plain(
                    pack,
                    id(b"salt", pack_no),
                    size,
                    entries,
                ));
                out.packs.push((pack, size));
                n += in_pack as u64;
            }
            let (_, len) = self.write_index(file).await?;
            out.index_files += 1;
            out.index_bytes += len;
            next += part;
        }
        Ok(out)
    }

    /// Writes a snapshot (host `host`) of one stream whose chunks are the
    /// `blobs` blobs [`Repository::simulate_blobs`] indexed with `seed`, so
    /// that every one of them is in use: its tree nodes are stored for real
    /// (about 40 bytes a blob), in tree packs indexed by one more file. For
    /// benchmarks only.
    pub async fn simulate_stream(&self, blobs: u64, seed: u64, host: &str) -> Result<SnapshotId> {
        let key = self.key.clone();
        let level = self.config.compression_level;
        let pack_size = self.config.pack_size as usize;
        let (root, finished) = blocking(move || {
            let mut sink = PackSink::new(key.clone(), pack_size);
            let mut finished = Vec::new();
            let mut store = |nodes: &mut Vec<crate::tree::NodeBlob>| {
                for node in nodes.drain(..) {
                    let (encoding, payload) = crate::compress::compress(&node.bytes, level);
                    let blob = EncodedBlob {
                        kind: BlobKind::Tree,
                        id: node.id,
                        encoding,
                        payload: &payload,
                        raw_len: node.bytes.len() as u32,
                        bases: &[],
                    };
                    if let (_, Some(full)) = sink.add(blob).expect("packs in memory") {
                        finished.push(full);
                    }
                }
            };
            let (mut tree, mut nodes) = (TreeBuilder::default(), Vec::new());
            for k in 0..blobs {
                let entry = TreeEntry {
                    id: BlobId(simulated_id(seed, b"blob", k)),
                    size: SIMULATED_RAW as u64,
                };
                tree.push_chunk(&key, entry, &mut nodes);
                store(&mut nodes);
            }
            let root = tree.finish(&key, &mut nodes);
            store(&mut nodes);
            finished.extend(sink.take_open().expect("packs in memory"));
            (root, finished)
        })
        .await;
        let mut file = IndexFile::default();
        for pack in finished {
            file.packs.push(self.store_pack(pack).await?);
        }
        self.write_index(file).await?;
        let snap = Snapshot {
            time_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
            utc_offset_s: 0,
            host: host.to_string(),
            user: "simulator".into(),
            tags: Vec::new(),
            program_version: env!("CARGO_PKG_VERSION").into(),
            streams: vec![StreamEntry {
                name: "simulated".into(),
                root: root.id,
                size: root.size,
                chunks: blobs,
                stored_size: blobs * 55_000,
                added_size: 0,
                sketch: None,
            }],
        };
        Ok(self.write_snapshot(&snap).await?.0)
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
