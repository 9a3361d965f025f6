//! Prune's re-basing phase: carries out [`crate::delta::rebase::plan`] for
//! every stream (host and name) of the kept snapshots, so the newest version
//! of each is stored whole and older ones as deltas against newer ones. New
//! copies go into new packs through the one pack sink; the old copies they
//! replace are reported, and the plan treats them as unused (their packs
//! are marked and deleted, or repacked, by the usual two phases). Blob ids
//! do not change, so no tree or snapshot is touched, and until the new index
//! is written every old copy is still where the index says.

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;

use super::super::blobs::{on_decode_pool, BlobReader};
use super::super::pack_sink::PackSink;
use super::super::sketches::load_sketch;
use super::super::Repository;
use crate::compress::Encoding;
use crate::delta;
use crate::delta::rebase::{self, Rebase, Stored};
use crate::error::Result;
use crate::id::{BlobId, PackId, SnapshotId};
use crate::index::{BlobMap, IndexedPack};
use crate::pack::{BlobKind, EncodedBlob};
use crate::snapshot::{Snapshot, StreamEntry};

/// What re-basing wrote.
#[derive(Default)]
pub(super) struct Rebased {
    /// The new packs.
    pub packs: Vec<IndexedPack>,
    /// The old copies the new ones replace: (pack, blob).
    pub superseded: HashSet<(PackId, BlobId)>,
    /// Blobs stored whole again (for a dry run: that would be).
    pub made_whole: u64,
    /// Blobs stored as deltas against a newer version (dry run: tried).
    pub made_deltas: u64,
    /// Sealed bytes of the new copies.
    pub bytes_written: u64,
}

impl Rebased {
    /// True when re-basing replaced the copy of `blob` in `pack`.
    pub fn replaced(&self, pack: &PackId, blob: &BlobId) -> bool {
        !self.superseded.is_empty() && self.superseded.contains(&(*pack, *blob))
    }
}

/// How the index stores a data blob now.
fn stored(index: &BlobMap, id: &BlobId) -> Option<Stored> {
    let loc = index.get(BlobKind::Data, id)?;
    Some(match index.bases(&loc) {
        Some(bases) => Stored::Delta(bases.to_vec()),
        None => Stored::Whole,
    })
}

/// Each stream's kept versions that have sketches (the newest run of
/// them), oldest first.
fn stream_versions(snapshots: &[(SnapshotId, Snapshot)]) -> Vec<Vec<&StreamEntry>> {
    let mut groups: BTreeMap<(&str, &str), Vec<(i64, &StreamEntry)>> = BTreeMap::new();
    for (_, snap) in snapshots {
        for s in &snap.streams {
            groups
                .entry((&snap.host, &s.name))
                .or_default()
                .push((snap.time_unix_ns, s));
        }
    }
    groups
        .into_values()
        .map(|mut v| {
            v.sort_by_key(|(t, s)| (*t, s.root));
            let start = v
                .iter()
                .rposition(|(_, s)| s.sketch.is_none())
                .map_or(0, |i| i + 1);
            v.drain(..start);
            v.into_iter().map(|(_, s)| s).collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

impl Repository {
    /// Re-bases every stream of `snapshots` (see the module documentation);
    /// with `dry_run` only counts.
    pub(super) async fn rebase(
        &self,
        reader: &BlobReader,
        snapshots: &[(SnapshotId, Snapshot)],
        dry_run: bool,
    ) -> Result<Rebased> {
        let mut out = Rebased::default();
        if !self.config.has_deltas() {
            return Ok(out);
        }
        let mut sink = PackSink::new(self.key.clone(), self.config.pack_size as usize)
            .spooling_to(self.spool_dir());
        for versions in stream_versions(snapshots) {
            let mut sketches = Vec::with_capacity(versions.len());
            for v in versions {
                sketches.push(load_sketch(reader, v).await?);
            }
            let index = reader.index();
            let decisions = rebase::plan(&sketches, |id| stored(index, id));
            if dry_run {
                let (whole, deltas) = rebase::counts(&decisions);
                out.made_whole += whole;
                out.made_deltas += deltas;
                continue;
            }
            // Encoded a few at a time (reads and CPU overlap), stored in
            // order.
            let level = self.config.compression_level;
            let encoded = futures::stream::iter(decisions)
                .map(|d| encode(reader, d, level))
                .buffered(REBASE_AT_ONCE);
            let mut encoded = std::pin::pin!(encoded);
            while let Some(next) = encoded.next().await {
                crate::interrupt::check()?;
                let Some(blob) = next? else {
                    continue;
                };
                let no_bases: &[BlobId] = &[];
                let as_delta = blob.encoding == Encoding::Delta;
                let entry = EncodedBlob {
                    kind: BlobKind::Data,
                    id: blob.id,
                    encoding: blob.encoding,
                    payload: &blob.payload,
                    raw_len: blob.raw_len,
                    bases: if as_delta { &blob.bases } else { no_bases },
                };
                if let (_, Some(full)) = sink.add(entry)? {
                    out.packs.push(self.store_pack(full).await?);
                }
                out.superseded.insert((blob.old_pack, blob.id));
                if as_delta {
                    out.made_deltas += 1;
                } else {
                    out.made_whole += 1;
                }
            }
        }
        for pack in sink.take_open()? {
            out.packs.push(self.store_pack(pack).await?);
        }
        out.bytes_written = out.packs.iter().map(|p| p.size).sum();
        Ok(out)
    }
}

/// Blobs re-encoded at once.
const REBASE_AT_ONCE: usize = 4;

/// A blob re-encoded by re-basing.
struct NewCopy {
    id: BlobId,
    encoding: Encoding,
    payload: Vec<u8>,
    raw_len: u32,
    /// Its bases when it is a delta.
    bases: Vec<BlobId>,
    /// The pack of the copy it replaces.
    old_pack: PackId,
}

/// Re-encodes one blob as its decision says; `None` when it stays as it is
/// (whole already, and a delta does not pay).
async fn encode(reader: &BlobReader, decision: Rebase, level: i32) -> Result<Option<NewCopy>> {
    let (id, bases) = match decision {
        Rebase::Whole(id) => (id, Vec::new()),
        Rebase::Against { id, bases } => (id, bases),
    };
    let index = reader.index();
    let Some(loc) = index.get(BlobKind::Data, &id) else {
        return Ok(None);
    };
    let was_delta = index.bases(&loc).is_some();
    let plain = reader.base_plaintext(id).await?;
    let mut base_plains = Vec::with_capacity(bases.len());
    for b in &bases {
        base_plains.push(reader.base_plaintext(*b).await?);
    }
    let ids = bases.clone();
    let (encoding, payload) = on_decode_pool(move || {
        let pairs: Vec<(BlobId, &[u8])> = ids
            .iter()
            .zip(&base_plains)
            .map(|(id, p)| (*id, p.as_slice()))
            .collect();
        delta::encode_best(&plain, &pairs, level).map_err(crate::Error::Internal)
    })
    .await?;
    if encoding != Encoding::Delta && !was_delta {
        return Ok(None);
    }
    Ok(Some(NewCopy {
        id,
        encoding,
        payload,
        raw_len: loc.entry.raw_length,
        bases,
        old_pack: index.pack(loc.pack).id,
    }))
}
