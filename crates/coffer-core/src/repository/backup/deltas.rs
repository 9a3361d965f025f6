//! The delta side of a backup: loading the previous version of each stream
//! (its sketch), and, on rayon for each new chunk, choosing bases, reading
//! them (through the one blob reader and its cache) and keeping the delta
//! when it pays. Decisions come from [`crate::delta`]; this module applies
//! them with the repository's index and storage.

use std::sync::Arc;

use futures::StreamExt;

use super::super::blobs::BlobReader;
use crate::backend::Kind;
use crate::compress::{self, Encoding};
use crate::delta::anchors::Lines;
use crate::delta::select;
use crate::delta::sketch::PrevVersion;
use crate::delta::{self, MAX_DEPTH};
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};
use crate::index::{BlobLocation, BlobMap};
use crate::pack::BlobKind;
use crate::repository::Repository;
use crate::snapshot::StreamEntry;

/// How far apart in storage time two snapshots may be and still be
/// ordered wrongly by it: stores keep last-modified times to the second.
const STORED_SLACK_MS: i64 = 2_000;

/// Snapshots read within that slack once every stream is found: a bound
/// for the (rare) burst of backups stored in the same seconds.
const SLACK_READS: usize = 4;

/// Snapshots read one at a time before reading several at once.
const SEQUENTIAL_READS: usize = 8;

impl Repository {
    /// For each of `names`, the newest earlier version (by snapshot time)
    /// backed up from `host`, if it has a sketch: where its next version
    /// takes delta bases from. Reads snapshots newest stored first and stops
    /// once every name is found and the rest were stored clearly earlier (on
    /// a daily job, after one or a few; cached locally).
    pub(crate) async fn previous_versions(
        &self,
        host: &str,
        names: &[String],
    ) -> Result<Vec<Option<StreamEntry>>> {
        let mut listed = self.backend.list_with_times(Kind::Snapshot).await?;
        listed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        // Per name: the newest by snapshot time, and when its object was
        // stored. Stores keep times to the second (or coarser), so snapshots
        // stored within STORED_SLACK_MS of the one found may still be newer.
        let mut found: Vec<Option<(i64, i64, StreamEntry)>> = vec![None; names.len()];
        let mut extra = 0;
        // Every snapshot may have to be read: a bucket shared by hundreds
        // of databases stores hundreds of other hosts' snapshots between
        // two of this one's. Read newest stored first (from the cache when
        // it has them) until every stream is found: the first few one at a
        // time, where the previous version almost always is, so no read is
        // wasted; past them several at once.
        let read = |(name, _, _): (String, i64, u64)| async move {
            Ok::<_, Error>(self.read_snapshot(name, true).await?.1)
        };
        let stored_times: Vec<i64> = listed.iter().map(|(_, t, _)| *t).collect();
        let rest = listed.split_off(listed.len().min(SEQUENTIAL_READS));
        let mut reads = std::pin::pin!(futures::stream::iter(listed).then(read).chain(
            futures::stream::iter(rest)
                .map(read)
                .buffered(crate::repository::METADATA_CONCURRENCY),
        ));
        // When each was stored, known from the listing before it is read.
        for stored_ms in stored_times {
            // Whether to read it at all is decided before reading it.
            if found.iter().all(Option::is_some) {
                let settled = found
                    .iter()
                    .flatten()
                    .all(|(_, at, _)| stored_ms < at - STORED_SLACK_MS);
                if settled || extra == SLACK_READS {
                    break;
                }
                extra += 1;
            }
            let Some(read) = reads.next().await else {
                break;
            };
            let snap = read?;
            if snap.host != host {
                continue;
            }
            for (slot, wanted) in found.iter_mut().zip(names) {
                let Some(stream) = snap.streams.iter().find(|s| &s.name == wanted) else {
                    continue;
                };
                if slot.as_ref().is_none_or(|(t, _, _)| snap.time_unix_ns > *t) {
                    *slot = Some((snap.time_unix_ns, stored_ms, stream.clone()));
                }
            }
        }
        let found: Vec<Option<StreamEntry>> = found.into_iter().map(|f| f.map(|f| f.2)).collect();
        // A previous version without a sketch (written with deltas off, or
        // by format 1) gives no bases.
        Ok(found
            .into_iter()
            .map(|s| s.filter(|s| s.sketch.is_some()))
            .collect())
    }
}

impl Repository {
    /// For each of `names`, its version in snapshot `parent`: the stream of
    /// the same name, or the parent's only stream when the backup has one
    /// too (a renamed dump); only versions with a sketch give bases.
    pub(crate) async fn parent_versions(
        &self,
        parent: &SnapshotId,
        names: &[String],
    ) -> Result<Vec<Option<StreamEntry>>> {
        let (_, snap) = self.read_snapshot(parent.to_hex(), true).await?;
        let only = match (&snap.streams[..], names.len()) {
            ([one], 1) => Some(one),
            _ => None,
        };
        Ok(names
            .iter()
            .map(|n| {
                snap.streams
                    .iter()
                    .find(|s| &s.name == n)
                    .or(only)
                    .filter(|s| s.sketch.is_some())
                    .cloned()
            })
            .collect())
    }
}

/// What the rayon side needs to encode a stream's new chunks as deltas.
pub(crate) struct DeltaContext {
    pub prev: Arc<PrevVersion>,
    pub reader: BlobReader,
    pub runtime: tokio::runtime::Handle,
}

/// A new chunk, encoded.
pub(crate) struct Packed {
    pub encoding: Encoding,
    pub payload: Vec<u8>,
    /// For a delta: its bases and where they are (the backup reuses their
    /// packs, and rechecks them like any reused pack).
    pub bases: Vec<BlobLocation>,
}

impl Packed {
    /// The chunk compressed on its own.
    pub(super) fn plain(chunk: &[u8], level: i32) -> Self {
        let (encoding, payload) = compress::compress(chunk, level);
        Packed {
            encoding,
            payload,
            bases: Vec::new(),
        }
    }
}

/// Chain depth of a stored blob: 0 for a whole blob, one more than its
/// deepest base for a delta. A chain deeper than the reader follows (a
/// cycle) counts as too deep.
pub(crate) fn depth(index: &BlobMap, loc: &BlobLocation) -> u8 {
    fn go(index: &BlobMap, loc: &BlobLocation, budget: u8) -> u8 {
        let Some(bases) = index.bases(loc) else {
            return 0;
        };
        if budget == 0 {
            return u8::MAX;
        }
        let deepest = bases
            .iter()
            .map(|b| {
                index
                    .get(BlobKind::Data, b)
                    .map_or(u8::MAX, |l| go(index, &l, budget - 1))
            })
            .max()
            .unwrap_or(0);
        deepest.saturating_add(1)
    }
    go(index, loc, MAX_DEPTH + 1)
}

/// Encodes a new chunk: as a delta against the bases its anchors point to
/// in the previous version when they are usable, not too deep, and the
/// delta pays; otherwise compressed on its own.
pub(crate) fn encode_new(
    ctx: Option<&DeltaContext>,
    index: &BlobMap,
    chunk: &[u8],
    lines: &Lines,
    level: i32,
) -> Result<Packed> {
    let Some(ctx) = ctx else {
        return Ok(Packed::plain(chunk, level));
    };
    let Some(choice) = select::choose(&ctx.prev, &lines.anchors, None) else {
        return Ok(Packed::plain(chunk, level));
    };
    let mut bases = Vec::new();
    for n in choice.bases {
        let (id, _) = ctx.prev.chunk(n);
        // Only bases in packs no prune has marked: a marked pack may be
        // deleted before this backup's snapshot names the delta.
        match index.get_usable(BlobKind::Data, &id) {
            Some(loc) if depth(index, &loc) < MAX_DEPTH => bases.push(loc),
            _ => {}
        }
    }
    if bases.is_empty() {
        return Ok(Packed::plain(chunk, level));
    }
    let mut plains = Vec::with_capacity(bases.len());
    for loc in &bases {
        let read = ctx.reader.base_plaintext(loc.entry.id);
        plains.push(ctx.runtime.block_on(read)?);
    }
    let with_ids: Vec<(BlobId, &[u8])> = bases
        .iter()
        .zip(&plains)
        .map(|(l, p)| (l.entry.id, p.as_slice()))
        .collect();
    let (encoding, payload) =
        delta::encode_best(chunk, &with_ids, level).map_err(Error::Internal)?;
    Ok(Packed {
        encoding,
        payload,
        bases: if encoding == Encoding::Delta {
            bases
        } else {
            Vec::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::id::BlobId;
    use crate::repository::memory_repo;
    use crate::snapshot::{Snapshot, StreamEntry};
    use crate::tree::TreeEntry;

    fn snapshot(host: &str, time: i64, name: &str) -> Snapshot {
        Snapshot {
            time_unix_ns: time,
            utc_offset_s: 0,
            host: host.into(),
            user: "u".into(),
            tags: vec![],
            program_version: "test".into(),
            streams: vec![StreamEntry {
                name: name.into(),
                root: BlobId([1; 32]),
                size: 10,
                chunks: 1,
                stored_size: 10,
                added_size: 10,
                sketch: Some(TreeEntry {
                    id: BlobId([time as u8; 32]),
                    size: 10,
                }),
            }],
        }
    }

    /// A bucket shared by many databases: hundreds of other hosts' backups
    /// were stored since this host's last one. Its previous version is
    /// still found (it once was not, past 256 snapshots, and the night was
    /// stored whole).
    #[tokio::test]
    async fn the_previous_version_is_found_behind_many_other_hosts_snapshots() {
        let repo = memory_repo().await;
        repo.write_snapshot(&snapshot("db-host", 1_000, "app.sql"))
            .await
            .unwrap();
        for i in 0..300 {
            let other = snapshot(&format!("other-{i}"), 2_000 + i, "app.sql");
            repo.write_snapshot(&other).await.unwrap();
        }
        let names = vec!["app.sql".to_string(), "gone.sql".to_string()];
        let found = repo.previous_versions("db-host", &names).await.unwrap();
        assert_eq!(
            found[0].as_ref().unwrap().sketch.unwrap().id,
            BlobId([1_000i64 as u8; 32])
        );
        assert!(found[1].is_none());
    }
}
