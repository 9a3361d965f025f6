//! Looking inside a repository without restoring: a stream's chunk list,
//! what a set of snapshots costs (`stats`), what changed between two
//! versions of a stream (`diff`), and one index file as stored (`cat`).
//! The arithmetic is pure ([`Stats::of`], [`StreamDiff::of`]); this module
//! only gathers its inputs.

use std::collections::HashSet;
use std::sync::Arc;

use crate::backend::Kind;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::{BlobMap, IndexFile};
use crate::pack::BlobKind;
use crate::snapshot::{Snapshot, StreamEntry};
use crate::tree::TreeEntry;

use super::Repository;

/// What a set of snapshots holds and costs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Snapshots counted.
    pub snapshots: u64,
    /// Streams counted.
    pub streams: u64,
    /// Bytes a restore of every counted stream writes.
    pub restore_size: u64,
    /// Distinct data chunks they reference.
    pub chunks: u64,
    /// Plaintext bytes of those chunks (each once).
    pub raw_size: u64,
    /// Sealed bytes those chunks take in storage (a delta counts its own
    /// bytes, not its bases').
    pub stored_size: u64,
    /// Chunks among them stored as deltas.
    pub delta_chunks: u64,
    /// Chunks kept only as bases of those deltas (in no counted stream),
    /// and their sealed bytes.
    pub base_chunks: u64,
    /// Sealed bytes of those bases.
    pub base_stored_size: u64,
}

impl Stats {
    /// Counts `streams` (each a list of chunks) against `index`.
    pub fn of(streams: &[(u64, Vec<TreeEntry>)], index: &BlobMap) -> Self {
        let mut s = Stats {
            streams: streams.len() as u64,
            ..Stats::default()
        };
        let mut seen: HashSet<BlobId> = HashSet::new();
        let mut deltas = Vec::new();
        for (size, chunks) in streams {
            s.restore_size += size;
            for c in chunks {
                if !seen.insert(c.id) {
                    continue;
                }
                s.chunks += 1;
                s.raw_size += c.size;
                if let Some(loc) = index.get(BlobKind::Data, &c.id) {
                    s.stored_size += loc.entry.length as u64;
                    if index.bases(&loc).is_some() {
                        s.delta_chunks += 1;
                        deltas.push(loc);
                    }
                }
            }
        }
        // Bases down every chain, each once.
        let mut bases_seen: HashSet<BlobId> = HashSet::new();
        while let Some(loc) = deltas.pop() {
            for b in index.bases(&loc).unwrap_or_default() {
                if seen.contains(&b) || !bases_seen.insert(b) {
                    continue;
                }
                if let Some(base) = index.get(BlobKind::Data, &b) {
                    s.base_chunks += 1;
                    s.base_stored_size += base.entry.length as u64;
                    if index.bases(&base).is_some() {
                        deltas.push(base);
                    }
                }
            }
        }
        s
    }
}

/// How one version of a stream differs from another, by chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamDiff {
    /// Sizes of the two versions.
    pub size_a: u64,
    /// Size of the second version.
    pub size_b: u64,
    /// Bytes of B in chunks A also has.
    pub shared: u64,
    /// Bytes of B in chunks A does not have.
    pub added: u64,
    /// Sealed bytes those chunks of B take in storage (small when they are
    /// deltas against A's).
    pub added_stored: u64,
    /// Bytes of A in chunks B does not have.
    pub removed: u64,
}

impl StreamDiff {
    /// Compares the chunk lists of two versions; `stored` gives a chunk's
    /// sealed size.
    pub fn of(a: &[TreeEntry], b: &[TreeEntry], stored: impl Fn(&BlobId) -> u64) -> Self {
        let in_a: HashSet<BlobId> = a.iter().map(|c| c.id).collect();
        let in_b: HashSet<BlobId> = b.iter().map(|c| c.id).collect();
        let mut d = StreamDiff {
            size_a: a.iter().map(|c| c.size).sum(),
            size_b: b.iter().map(|c| c.size).sum(),
            ..StreamDiff::default()
        };
        for c in b {
            if in_a.contains(&c.id) {
                d.shared += c.size;
            } else {
                d.added += c.size;
                d.added_stored += stored(&c.id);
            }
        }
        d.removed = a
            .iter()
            .filter(|c| !in_b.contains(&c.id))
            .map(|c| c.size)
            .sum();
        d
    }
}

impl Repository {
    /// How snapshot `b` differs from snapshot `a`, per stream name in
    /// either (in `a`'s order, then `b`'s new ones).
    pub async fn diff(&self, a: &Snapshot, b: &Snapshot) -> Result<Vec<(String, StreamDiff)>> {
        let index = Arc::new(self.load_index().await?);
        let reader = self.blob_reader(index.clone());
        let mut names: Vec<&str> = a.streams.iter().map(|s| s.name.as_str()).collect();
        for s in &b.streams {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
        let stored = |id: &BlobId| {
            index
                .get(BlobKind::Data, id)
                .map_or(0, |l| l.entry.length as u64)
        };
        let mut out = Vec::new();
        for name in names {
            let mut lists = Vec::new();
            for snap in [a, b] {
                lists.push(match snap.streams.iter().find(|s| s.name == name) {
                    Some(s) => chunks_of(&reader, s).await?,
                    None => Vec::new(),
                });
            }
            out.push((
                name.to_string(),
                StreamDiff::of(&lists[0], &lists[1], stored),
            ));
        }
        Ok(out)
    }

    /// What the streams of `snaps` hold and cost.
    pub async fn stats(&self, snaps: &[&Snapshot]) -> Result<Stats> {
        let index = Arc::new(self.load_index().await?);
        let reader = self.blob_reader(index.clone());
        let mut streams = Vec::new();
        for snap in snaps {
            for stream in &snap.streams {
                streams.push((stream.size, chunks_of(&reader, stream).await?));
            }
        }
        Ok(Stats {
            snapshots: snaps.len() as u64,
            ..Stats::of(&streams, &index)
        })
    }

    /// The index file whose id starts with `prefix`, as stored.
    pub async fn index_file(&self, prefix: &str) -> Result<(String, IndexFile)> {
        let prefix = prefix.to_ascii_lowercase();
        let names: Vec<String> = self
            .backend
            .list(Kind::Index)
            .await?
            .into_iter()
            .filter(|name| !prefix.is_empty() && name.starts_with(&prefix))
            .collect();
        match &names[..] {
            [one] => Ok((one.clone(), self.read_index_file(one.clone(), true).await?)),
            [] => Err(Error::IndexNotFound { prefix }),
            more => Err(Error::InvalidArgument(format!(
                "{} index files start with {prefix:?}",
                more.len()
            ))),
        }
    }
}

/// A stream's chunk list.
async fn chunks_of(
    reader: &super::blobs::BlobReader,
    stream: &StreamEntry,
) -> Result<Vec<TreeEntry>> {
    let what = format!("the tree of stream {:?}", stream.name);
    reader.tree_leaves(stream.root_entry(), &what).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Encoding;
    use crate::id::PackId;
    use crate::index::{DeltaBases, IndexedPack};
    use crate::pack::BlobEntry;

    fn chunk(n: u8, size: u64) -> TreeEntry {
        TreeEntry {
            id: BlobId([n; 32]),
            size,
        }
    }

    #[test]
    fn a_diff_counts_shared_added_and_removed_bytes() {
        let a = [chunk(1, 10), chunk(2, 20), chunk(3, 30)];
        let b = [chunk(1, 10), chunk(4, 25), chunk(3, 30), chunk(5, 5)];
        let d = StreamDiff::of(&a, &b, |id| id.0[0] as u64 * 2);
        assert_eq!(
            d,
            StreamDiff {
                size_a: 60,
                size_b: 70,
                shared: 40,
                added: 30,
                added_stored: 8 + 10,
                removed: 20
            }
        );
    }

    #[test]
    fn stats_count_each_chunk_once_and_the_bases_deltas_need() {
        let entry = |n: u8, enc: Encoding, at: u32| BlobEntry {
            kind: BlobKind::Data as u8,
            encoding: enc as u8,
            id: BlobId([n; 32]),
            offset: at,
            length: 100 + n as u32,
            raw_length: 1000,
        };
        // Chunk 3 is a delta against 9, which no stream references, and 9
        // against 8.
        let pack = IndexedPack {
            bases: vec![
                DeltaBases {
                    id: BlobId([3; 32]),
                    bases: vec![BlobId([9; 32])],
                },
                DeltaBases {
                    id: BlobId([9; 32]),
                    bases: vec![BlobId([8; 32])],
                },
            ],
            ..IndexedPack::plain(
                PackId([1; 32]),
                [0; 32],
                10_000,
                vec![
                    entry(1, Encoding::Zstd, 37),
                    entry(2, Encoding::Zstd, 200),
                    entry(3, Encoding::Delta, 400),
                    entry(8, Encoding::Zstd, 600),
                    entry(9, Encoding::Delta, 800),
                ],
            )
        };
        let mut index = crate::index::Index::default();
        index.add_pack(&pack).unwrap();
        index.finish();
        let index = BlobMap::from(index);
        let streams = vec![
            (3000, vec![chunk(1, 1000), chunk(2, 1000), chunk(1, 1000)]),
            (2000, vec![chunk(1, 1000), chunk(3, 1000)]),
        ];
        let s = Stats::of(&streams, &index);
        assert_eq!(
            s,
            Stats {
                snapshots: 0,
                streams: 2,
                restore_size: 5000,
                chunks: 3,
                raw_size: 3000,
                stored_size: 101 + 102 + 103,
                delta_chunks: 1,
                base_chunks: 2,
                base_stored_size: 109 + 108,
            }
        );
    }
}
