//! The backup pipeline and its commit. A reader thread ([`reader`]) cuts
//! the input into chunks, a packer thread ([`packer`]) hashes and compresses
//! them on rayon and seals new ones into packs, and the async side here
//! uploads finished packs with bounded concurrency. Every queue is bounded,
//! so memory stays flat however long the stream is. Only after all packs are
//! stored are the index file and then the snapshot written; a long backup
//! first re-reads the index to check that a concurrent prune left what it
//! reuses.

mod deltas;
mod packer;
mod reader;

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{LiveIndex, Repository};
use crate::backend::{object_path, Kind};
use crate::chunker::Chunker;
use crate::delta::sketch::PrevVersion;
use crate::delta::DeltaMode;
use crate::error::{Error, Result};
use crate::id::{PackId, SnapshotId};
use crate::index::{BlobMap, IndexedPack};
use crate::pack::FinishedPack;
use crate::progress::BackupProgress;
use crate::snapshot::{Snapshot, StreamEntry};
use deltas::DeltaContext;
use packer::{pack_chunks, Packer};
use reader::{read_streams, BLOCK_QUEUE};

pub use reader::OpenStream;

/// What to record and how to store it.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Stream name (`--stdin-filename`).
    pub name: String,
    /// Snapshot tags.
    pub tags: Vec<String>,
    /// Host recorded in the snapshot.
    pub host: String,
    /// User recorded in the snapshot.
    pub user: String,
    /// Snapshot time; now when `None`.
    pub time: Option<jiff::Zoned>,
    /// zstd level; the repository default when `None`.
    pub compression_level: Option<i32>,
    /// Store an empty stream instead of failing with [`Error::EmptyInput`].
    pub allow_empty: bool,
    /// Packs uploaded at once.
    pub upload_concurrency: usize,
    /// A backup running longer than this re-reads the index before
    /// committing and fails rather than commit a snapshot whose data a
    /// concurrent prune marked or deleted. Must stay below the prune delay.
    pub recheck_after: Duration,
    /// Counters to update as the backup goes, for a progress display.
    pub progress: Option<Arc<BackupProgress>>,
    /// Store new chunks as deltas against the previous version of the same
    /// stream (same host and name); the repository default when `None`.
    /// Format 1 repositories never do.
    pub delta: Option<DeltaMode>,
    /// Take delta bases from this snapshot (its stream of the same name, or
    /// its only stream when both have one) instead of the previous version
    /// of the same stream and host.
    pub parent: Option<SnapshotId>,
    /// Streams read at once (producers running at once): each reader holds
    /// a read block of a few MiB, so memory grows by that much per stream.
    pub parallel: usize,
}

/// Default [`BackupOptions::upload_concurrency`].
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 2;

/// Default [`BackupOptions::recheck_after`]; `prune` refuses delays between
/// zero and twice this.
pub const RECHECK_AFTER: Duration = Duration::from_secs(30 * 60);

/// Fails when a pack the backup reuses is no longer indexed or is marked.
fn check_still_usable(index: &BlobMap, reused: &[PackId]) -> Result<()> {
    for id in reused {
        let usable = index
            .pack_number(id)
            .is_some_and(|n| index.pack(n).marked.is_none());
        if !usable {
            return Err(Error::ConcurrentPrune(format!(
                "pack {} that this backup reuses was marked for deletion by a prune while the backup ran",
                id.short()
            )));
        }
    }
    Ok(())
}

/// Fails when a pack the backup reuses or uploaded is not in storage.
fn check_stored(stored: &HashSet<String>, packs: &[PackId], how: &str) -> Result<()> {
    match packs.iter().find(|id| !stored.contains(&id.to_hex())) {
        None => Ok(()),
        Some(id) => Err(Error::ConcurrentPrune(format!(
            "pack {} that this backup {how} is gone from storage (a prune, or damage: \
             `coffer check` tells)",
            id.short()
        ))),
    }
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            name: "stdin".into(),
            tags: Vec::new(),
            host: String::new(),
            user: String::new(),
            time: None,
            compression_level: None,
            allow_empty: false,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            recheck_after: RECHECK_AFTER,
            progress: None,
            delta: None,
            parent: None,
            parallel: 1,
        }
    }
}

/// What a backup did.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// The new snapshot.
    pub snapshot_id: SnapshotId,
    /// Its content.
    pub snapshot: Snapshot,
    /// Data chunks that were not yet stored.
    pub new_chunks: u64,
    /// Plaintext bytes of those chunks.
    pub new_bytes: u64,
    /// New chunks stored as deltas.
    pub delta_chunks: u64,
    /// Sealed bytes fetched from storage to read delta bases (with the
    /// blobs read ahead with them).
    pub base_bytes_read: u64,
    /// Sealed bytes of delta bases read from local copies instead.
    pub base_bytes_local: u64,
    /// Packs uploaded (data and tree).
    pub packs_written: u64,
    /// All bytes uploaded: packs, index, snapshot.
    pub bytes_uploaded: u64,
    /// Wall time.
    pub duration: Duration,
}

impl Repository {
    /// Backs up one stream read from `input` as a new snapshot.
    ///
    /// Reading, chunking, hashing, compressing, sealing and uploading run
    /// concurrently with bounded queues. The snapshot is written last, after
    /// its packs and index file; if anything fails before, no snapshot exists
    /// and the packs already uploaded are only unreferenced leftovers.
    pub async fn backup<R: Read + Send + 'static>(
        &self,
        input: R,
        opts: BackupOptions,
    ) -> Result<BackupSummary> {
        let open: OpenStream = Box::new(move || Ok(Box::new(input) as Box<dyn Read + Send>));
        let name = opts.name.clone();
        self.backup_streams(vec![(name, open)], opts).await
    }

    /// Backs up several named streams, read one after another, as one
    /// snapshot (`opts.name` is ignored). Nothing is committed unless every
    /// stream was read to its end: one failing producer fails the backup.
    pub async fn backup_streams(
        &self,
        streams: Vec<(String, OpenStream)>,
        opts: BackupOptions,
    ) -> Result<BackupSummary> {
        if streams.is_empty() {
            return Err(Error::InvalidArgument("no stream to back up".into()));
        }
        let mut names = Vec::new();
        for (name, _) in &streams {
            if name.is_empty() || names.contains(name) {
                return Err(Error::InvalidArgument(format!(
                    "stream names must be unique and not empty: {name:?}"
                )));
            }
            names.push(name.clone());
        }
        let sources: Vec<OpenStream> = streams.into_iter().map(|(_, open)| open).collect();
        let started = Instant::now();
        let level = opts
            .compression_level
            .unwrap_or(self.config.compression_level);
        crate::config::check_level(level).map_err(Error::InvalidArgument)?;
        let LiveIndex { index, live } = self.load_live_index().await?;
        let index = Arc::new(index);
        let delta = opts.delta.unwrap_or(self.config.delta);
        let deltas = (delta == DeltaMode::Auto && self.config.has_deltas())
            .then(|| self.blob_reader(index.clone()));
        let mut contexts = Vec::new();
        if let Some(reader) = &deltas {
            let previous = match &opts.parent {
                Some(parent) => self.parent_versions(parent, &names).await?,
                None => self.previous_versions(&opts.host, &names).await?,
            };
            for stream in previous {
                let prev = match stream {
                    Some(stream) => {
                        let chunks = super::sketches::load_sketch(reader, &stream).await?;
                        Some(Arc::new(PrevVersion::from_chunks(chunks)))
                    }
                    None => None,
                };
                contexts.push(prev.filter(|p| !p.is_empty()).map(|prev| {
                    Arc::new(DeltaContext {
                        prev,
                        reader: reader.clone(),
                        runtime: tokio::runtime::Handle::current(),
                    })
                }));
            }
        }

        let chunker = Chunker::new(self.config.chunker, self.key.chunker_seed());
        let parallel = opts.parallel.clamp(1, sources.len().max(1));
        let (block_tx, block_rx) = crossbeam_channel::bounded(BLOCK_QUEUE * parallel);
        // The reader may block on a pipe forever if we fail early, so it is a
        // detached thread rather than a runtime task.
        std::thread::Builder::new()
            .name("coffer-reader".into())
            .spawn(move || read_streams(sources, chunker, block_tx, parallel))
            .expect("spawn reader thread");

        let concurrency = opts.upload_concurrency.max(1);
        let progress = opts.progress.clone().unwrap_or_default();
        let (pack_tx, pack_rx) = tokio::sync::mpsc::unbounded_channel::<FinishedPack>();
        let (slot_tx, slot_rx) = crossbeam_channel::bounded(concurrency);
        for _ in 0..concurrency {
            slot_tx.send(()).expect("room for every token");
        }
        let packer = Packer::new(
            self.key.clone(),
            index.clone(),
            (self.config.pack_size as usize, level, self.spool_dir()),
            pack_tx,
            slot_rx,
            progress.clone(),
        );
        let packer = if deltas.is_some() {
            packer.with_deltas(contexts)
        } else {
            packer
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let allow_empty = opts.allow_empty;
        std::thread::Builder::new()
            .name("coffer-packer".into())
            .spawn(move || {
                let _ = done_tx.send(pack_chunks(packer, block_rx, allow_empty));
            })
            .expect("spawn packer thread");

        // An upload error comes first: it is the cause of the packer's
        // "upload stopped", and the packer may still be waiting for input.
        let packs = self
            .upload_packs(pack_rx, slot_tx, concurrency, &progress)
            .await?;
        let outcome = done_rx
            .await
            .map_err(|_| Error::Internal("the packer thread panicked".into()))??;

        let mut bytes_uploaded: u64 = packs.iter().map(|p| p.0.size).sum();
        let packs_written = packs.len() as u64;
        let uploaded: Vec<(PackId, Instant)> = packs.iter().map(|p| (p.0.id, p.1)).collect();
        let packs: Vec<IndexedPack> = packs.into_iter().map(|p| p.0).collect();
        crate::failpoint::reach("backup-before-index");
        crate::interrupt::check()?;
        let long_running = started.elapsed() >= opts.recheck_after;
        let (index, live) = if long_running {
            // A prune may have marked packs this backup reuses since the
            // index was loaded: see "Prune" in docs/format.md.
            let reused: Vec<PackId> = outcome.reused.iter().map(|&n| index.pack(n).id).collect();
            let fresh = self.load_live_index().await?;
            check_still_usable(&fresh.index, &reused)?;
            // And still stored, before any index names them: a pack lost
            // meanwhile (damage) must not end up under a new snapshot.
            let stored: HashSet<String> = self
                .backend
                .list_with_times(Kind::Pack)
                .await?
                .into_iter()
                .map(|(name, _, _)| name)
                .collect();
            check_stored(&stored, &reused, "reuses")?;
            let own: Vec<PackId> = uploaded.iter().map(|(id, _)| *id).collect();
            check_stored(&stored, &own, "uploaded")?;
            (Arc::new(fresh.index), fresh.live)
        } else {
            (index, live)
        };
        if let Some(file) = live.next_file(&index, packs)? {
            let (_, len) = self.write_index(file).await?;
            bytes_uploaded += len;
        }
        if long_running {
            // Packs uploaded long ago were unindexed until now; a prune
            // deletes unindexed packs older than its delay. Now indexed,
            // they are safe, if they are still there.
            for (id, at) in uploaded {
                if at.elapsed() >= opts.recheck_after
                    && !self
                        .backend
                        .exists(&object_path(Kind::Pack, &id.to_hex()))
                        .await?
                {
                    return Err(Error::ConcurrentPrune(format!(
                        "pack {} that this backup uploaded was deleted while the backup ran",
                        id.short()
                    )));
                }
            }
        }
        crate::failpoint::reach("backup-before-snapshot");
        crate::interrupt::check()?;
        let time = opts.time.unwrap_or_else(jiff::Zoned::now);
        let snapshot = Snapshot {
            time_unix_ns: time.timestamp().as_nanosecond() as i64,
            utc_offset_s: time.offset().seconds(),
            host: opts.host,
            user: opts.user,
            tags: opts.tags,
            program_version: concat!("coffer ", env!("CARGO_PKG_VERSION")).to_string(),
            streams: names
                .into_iter()
                .zip(&outcome.streams)
                .map(|(name, o)| StreamEntry {
                    name,
                    root: o.root.id,
                    size: o.root.size,
                    chunks: o.chunks,
                    stored_size: o.stored_size,
                    added_size: o.added,
                    sketch: o.sketch,
                })
                .collect(),
        };
        let (snapshot_id, len) = self.write_snapshot(&snapshot).await?;
        bytes_uploaded += len;
        let (base_bytes_read, base_bytes_local) = deltas.map_or((0, 0), |r| r.base_bytes_read());
        Ok(BackupSummary {
            snapshot_id,
            snapshot,
            new_chunks: outcome.streams.iter().map(|o| o.new_chunks).sum(),
            new_bytes: outcome.streams.iter().map(|o| o.new_bytes).sum(),
            delta_chunks: outcome.streams.iter().map(|o| o.delta_chunks).sum(),
            base_bytes_read,
            base_bytes_local,
            packs_written,
            bytes_uploaded,
            duration: started.elapsed(),
        })
    }

    /// Uploads packs as they come, `concurrency` at a time; returns their
    /// index entries once all are stored.
    async fn upload_packs(
        &self,
        rx: tokio::sync::mpsc::UnboundedReceiver<FinishedPack>,
        slots: crossbeam_channel::Sender<()>,
        concurrency: usize,
        progress: &BackupProgress,
    ) -> Result<Vec<(IndexedPack, Instant)>> {
        let incoming =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
        let uploads = incoming
            .map(|pack| {
                let slots = slots.clone();
                async move {
                    let indexed = self.store_pack(pack).await?;
                    progress.uploaded(indexed.size);
                    // Free the slot; the packer may be gone already, which is fine.
                    let _ = slots.try_send(());
                    Ok::<_, Error>((indexed, Instant::now()))
                }
            })
            .buffer_unordered(concurrency);
        let mut uploads = std::pin::pin!(uploads);
        let mut done = Vec::new();
        while let Some(r) = uploads.next().await {
            done.push(r?);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::memory_repo;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn progress_counters_end_at_the_summary_totals() {
        let repo = memory_repo().await;
        let data = crate::test_noise(3_000_000, 0x9e37_79b9_7f4a_7c15);
        let progress = Arc::new(BackupProgress::new());
        let opts = BackupOptions {
            progress: Some(progress.clone()),
            ..BackupOptions::default()
        };
        let first = repo
            .backup(std::io::Cursor::new(data.clone()), opts.clone())
            .await
            .unwrap();
        let p = progress.get();
        assert_eq!(p.bytes_read, data.len() as u64);
        assert_eq!(p.new_bytes, first.new_bytes);
        assert_eq!(p.streams_done, 1);
        let packs: u64 = first.bytes_uploaded;
        assert!(
            p.bytes_uploaded > 0 && p.bytes_uploaded < packs,
            "{p:?} vs {packs}"
        );

        // The same stream again: everything read is known.
        let again = Arc::new(BackupProgress::new());
        let opts = BackupOptions {
            progress: Some(again.clone()),
            ..BackupOptions::default()
        };
        repo.backup(std::io::Cursor::new(data.clone()), opts)
            .await
            .unwrap();
        let p = again.get();
        assert_eq!((p.bytes_read, p.new_bytes), (data.len() as u64, 0));
        assert_eq!(p.dedup_ratio(), 1.0);
    }
}
