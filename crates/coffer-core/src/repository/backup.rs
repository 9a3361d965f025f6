//! The backup pipeline: a reader thread cuts the input into chunks, a packer
//! thread hashes and compresses them on rayon and seals new ones into packs,
//! and the async side uploads finished packs with bounded concurrency. Every
//! queue is bounded, so memory stays flat however long the stream is. Only
//! after all packs are stored are the index file and then the snapshot
//! written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::{LiveIndex, Repository};
use crate::backend::{object_path, Kind};
use crate::chunker::Chunker;
use crate::compress::{self, Encoding};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::index::{plan_index_write, Index, IndexFile, IndexPlan, IndexedPack};
use crate::pack::{BlobKind, FinishedPack, PackWriter};
use crate::progress::BackupProgress;
use crate::snapshot::{Snapshot, StreamEntry};
use crate::tree::{NodeBlob, TreeBuilder, TreeEntry};

/// A compressed payload and how it is encoded.
type Encoded = (Encoding, Vec<u8>);

/// Bytes the reader gathers before cutting them into chunks.
const READ_BLOCK: usize = 2 * 1024 * 1024;
/// Cut blocks waiting for the packer.
const BLOCK_QUEUE: usize = 1;

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
}

/// Default [`BackupOptions::recheck_after`]; `prune` refuses delays between
/// zero and twice this.
pub const RECHECK_AFTER: Duration = Duration::from_secs(30 * 60);

/// Fails when a pack the backup reuses is no longer indexed or is marked.
fn check_still_usable(index: &Index, reused: &[PackId]) -> Result<()> {
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
            upload_concurrency: 2,
            recheck_after: RECHECK_AFTER,
            progress: None,
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
    /// Packs uploaded (data and tree).
    pub packs_written: u64,
    /// All bytes uploaded: packs, index, snapshot.
    pub bytes_uploaded: u64,
    /// Wall time.
    pub duration: Duration,
}

/// What the packer thread hands back when every stream ended.
struct PackerOutcome {
    streams: Vec<StreamOutcome>,
    /// Numbers of the indexed packs reused.
    reused: Vec<u32>,
}

/// One stream as packed.
struct StreamOutcome {
    root: TreeEntry,
    chunks: u64,
    stored_size: u64,
    new_chunks: u64,
    new_bytes: u64,
    /// Sealed bytes of the blobs (chunks and tree nodes) it added.
    added: u64,
}

fn read_full(input: &mut dyn Read, buf: &mut BytesMut, target: usize) -> std::io::Result<bool> {
    while buf.len() < target {
        let start = buf.len();
        buf.resize(target, 0);
        let n = loop {
            match input.read(&mut buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    buf.truncate(start);
                    return Err(e);
                }
            }
        };
        buf.truncate(start + n);
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What the reader thread sends the packer.
enum Block {
    /// The next chunks of the current stream.
    Chunks(Vec<Bytes>),
    /// The current stream ended.
    End,
}

/// Opens one stream when its turn comes (a producer command is started only
/// then, so producers run one after another).
pub type OpenStream = Box<dyn FnOnce() -> Result<Box<dyn Read + Send>> + Send>;

/// Reader thread: each source in turn -> blocks of chunks, then [`Block::End`].
fn read_streams(
    sources: Vec<OpenStream>,
    chunker: Chunker,
    tx: crossbeam_channel::Sender<Result<Block>>,
) {
    for open in sources {
        let input = match open() {
            Ok(input) => input,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if !read_chunks(input, &chunker, &tx) || tx.send(Ok(Block::End)).is_err() {
            return;
        }
    }
}

/// Chunks one input; false when the packer is gone or reading failed (the
/// error was sent).
fn read_chunks(
    mut input: impl Read,
    chunker: &Chunker,
    tx: &crossbeam_channel::Sender<Result<Block>>,
) -> bool {
    let mut buf = BytesMut::with_capacity(READ_BLOCK + chunker.max_size());
    loop {
        let eof = match read_full(&mut input, &mut buf, READ_BLOCK + chunker.max_size()) {
            Ok(eof) => eof,
            Err(e) => {
                let err = match crate::producer::producer_error(&e) {
                    Some(p) => Error::Producer(p.clone()),
                    None => Error::Input(e),
                };
                let _ = tx.send(Err(err));
                return false;
            }
        };
        let lengths = chunker.chunk_lengths(&buf, eof);
        let consumed: usize = lengths.iter().sum();
        let mut block = buf.split_to(consumed).freeze();
        let chunks = lengths.into_iter().map(|l| block.split_to(l)).collect();
        if tx.send(Ok(Block::Chunks(chunks))).is_err() {
            return false;
        }
        if eof {
            return true;
        }
    }
}

/// Packer state: open data and tree packs, blobs stored in this session.
struct Packer {
    key: Arc<MasterKey>,
    index: Arc<Index>,
    pack_size: usize,
    level: i32,
    data: Option<PackWriter>,
    tree: Option<PackWriter>,
    /// Blobs added in this backup, with their sealed length.
    session: HashMap<BlobId, u32>,
    /// Packs of the loaded index this backup deduplicated against, by
    /// number (checked again before committing a long backup).
    reused: Vec<bool>,
    out: tokio::sync::mpsc::UnboundedSender<FinishedPack>,
    /// One token per upload slot: a finished pack waits here until a slot is
    /// free, so at most `concurrency` packs exist besides the open ones.
    upload_slots: crossbeam_channel::Receiver<()>,
    progress: Arc<BackupProgress>,
}

impl Packer {
    /// Stored length of an already known blob (one in a pack marked for
    /// deletion does not count: it is stored again).
    fn known_length(&mut self, id: &BlobId) -> Option<u32> {
        if let Some(l) = self.index.get_usable(id) {
            self.reused[l.pack as usize] = true;
            return Some(l.entry.length);
        }
        self.session.get(id).copied()
    }

    fn add(
        &mut self,
        kind: BlobKind,
        id: BlobId,
        encoding: Encoding,
        payload: &[u8],
        raw_len: u32,
    ) -> Result<u32> {
        let slot = match kind {
            BlobKind::Data => &mut self.data,
            BlobKind::Tree => &mut self.tree,
        };
        let w =
            slot.get_or_insert_with(|| PackWriter::new(&self.key, self.pack_size + 1024 * 1024));
        let sealed = w.add(kind, id, encoding, payload, raw_len);
        self.session.insert(id, sealed);
        if w.len() >= self.pack_size {
            let full = slot.take().expect("just used");
            self.ship(full)?;
        }
        Ok(sealed)
    }

    fn ship(&self, w: PackWriter) -> Result<()> {
        // A closed channel means the uploader stopped on an error; it reports it.
        self.upload_slots.recv().map_err(|_| upload_aborted())?;
        self.out.send(w.finish()).map_err(|_| upload_aborted())
    }

    /// Stores the new tree nodes; returns their sealed bytes.
    fn add_nodes(&mut self, nodes: &mut Vec<NodeBlob>) -> Result<u64> {
        let mut added = 0;
        for node in nodes.drain(..) {
            if self.known_length(&node.id).is_none() {
                let (enc, payload) = compress::compress(&node.bytes, self.level);
                added += self.add(
                    BlobKind::Tree,
                    node.id,
                    enc,
                    &payload,
                    node.bytes.len() as u32,
                )? as u64;
            }
        }
        Ok(added)
    }

    fn flush(&mut self) -> Result<()> {
        for w in [self.data.take(), self.tree.take()].into_iter().flatten() {
            self.ship(w)?;
        }
        Ok(())
    }
}

fn upload_aborted() -> Error {
    Error::Internal("the uploader stopped".into())
}

/// The stream as it is packed: its tree and its counters.
#[derive(Default)]
struct StreamState {
    tree: TreeBuilder,
    nodes: Vec<NodeBlob>,
    chunks: u64,
    size: u64,
    stored_size: u64,
    new_chunks: u64,
    new_bytes: u64,
    added: u64,
}

impl StreamState {
    /// Takes the next chunk, in stream order, with its id and (when it was
    /// not stored before) its compressed form.
    fn push(
        &mut self,
        packer: &mut Packer,
        chunk: &[u8],
        id: BlobId,
        packed: Option<Encoded>,
    ) -> Result<()> {
        let len = chunk.len() as u32;
        let known = packer.known_length(&id);
        packer.progress.chunk(len as u64, known.is_none());
        let stored = match known {
            Some(l) => l,
            None => {
                // Compressed on rayon unless an earlier chunk of this same
                // backup had the id (then it is known and we never get here).
                let (enc, payload) =
                    packed.unwrap_or_else(|| compress::compress(chunk, packer.level));
                self.new_chunks += 1;
                self.new_bytes += len as u64;
                let sealed = packer.add(BlobKind::Data, id, enc, &payload, len)?;
                self.added += sealed as u64;
                sealed
            }
        };
        self.chunks += 1;
        self.size += len as u64;
        self.stored_size += stored as u64;
        let entry = TreeEntry {
            id,
            size: len as u64,
        };
        self.tree.push_chunk(&packer.key, entry, &mut self.nodes);
        self.added += packer.add_nodes(&mut self.nodes)?;
        Ok(())
    }

    /// Closes the stream's tree.
    fn finish(mut self, packer: &mut Packer, allow_empty: bool) -> Result<StreamOutcome> {
        if self.size == 0 && !allow_empty {
            return Err(Error::EmptyInput);
        }
        let root = self.tree.finish(&packer.key, &mut self.nodes);
        self.added += packer.add_nodes(&mut self.nodes)?;
        packer.progress.stream_done();
        Ok(StreamOutcome {
            root,
            chunks: self.chunks,
            stored_size: self.stored_size,
            new_chunks: self.new_chunks,
            new_bytes: self.new_bytes,
            added: self.added,
        })
    }
}

/// Result of the CPU work on one chunk: its sequence number, id and, when the
/// repository lacks it, its compressed form.
type Hashed = (u64, BlobId, Option<Encoded>);

/// Packer thread: chunks -> packs, and the stream's tree.
///
/// Chunks go to rayon one by one (MAC, and compression when new) with a
/// bounded window of tasks in flight; results are taken back in stream order,
/// so sealing and tree building here overlap with compression there and no
/// core waits for the slowest chunk of a batch.
fn pack_chunks(
    mut packer: Packer,
    rx: crossbeam_channel::Receiver<Result<Block>>,
    allow_empty: bool,
) -> Result<PackerOutcome> {
    let window = rayon::current_num_threads() * 3;
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Hashed>();
    let mut in_flight: VecDeque<(u64, Bytes)> = VecDeque::new();
    let mut finished: BTreeMap<u64, (BlobId, Option<Encoded>)> = BTreeMap::new();
    let mut state = StreamState::default();
    let mut next_seq = 0u64;

    let mut take_oldest = |packer: &mut Packer,
                           state: &mut StreamState,
                           in_flight: &mut VecDeque<(u64, Bytes)>|
     -> Result<()> {
        let (seq, chunk) = in_flight.pop_front().expect("a chunk in flight");
        let (id, packed) = loop {
            if let Some(r) = finished.remove(&seq) {
                break r;
            }
            let (s, id, packed) = done_rx.recv().expect("a rayon task panicked");
            finished.insert(s, (id, packed));
        };
        state.push(packer, &chunk, id, packed)
    };

    let mut streams = Vec::new();
    for block in rx {
        let chunks = match block? {
            Block::Chunks(chunks) => chunks,
            Block::End => {
                while !in_flight.is_empty() {
                    take_oldest(&mut packer, &mut state, &mut in_flight)?;
                }
                let done = std::mem::take(&mut state);
                streams.push(done.finish(&mut packer, allow_empty)?);
                continue;
            }
        };
        for chunk in chunks {
            if in_flight.len() >= window {
                take_oldest(&mut packer, &mut state, &mut in_flight)?;
            }
            let (key, index, level, tx) = (
                packer.key.clone(),
                packer.index.clone(),
                packer.level,
                done_tx.clone(),
            );
            let c = chunk.clone();
            rayon::spawn_fifo(move || {
                let id = key.blob_id(&c);
                let packed =
                    (index.get_usable(&id).is_none()).then(|| compress::compress(&c, level));
                let _ = tx.send((next_seq, id, packed));
            });
            in_flight.push_back((next_seq, chunk));
            next_seq += 1;
        }
    }
    packer.flush()?;
    let reused = (0..packer.reused.len() as u32)
        .filter(|&n| packer.reused[n as usize])
        .collect();
    Ok(PackerOutcome { streams, reused })
}

/// The live index files as the index planner needs them: every file's blob
/// count, and the content of all but the largest (which can be rebuilt from
/// the in-memory index, so it is not kept twice).
struct LiveFiles {
    counts: Vec<(IndexId, u64)>,
    small: Vec<(IndexId, IndexFile)>,
    listed: Vec<IndexId>,
}

impl LiveFiles {
    fn new(live: Vec<(IndexId, IndexFile)>, listed: Vec<IndexId>) -> Self {
        let counts: Vec<(IndexId, u64)> =
            live.iter().map(|(id, f)| (*id, f.blob_count())).collect();
        let largest = counts
            .iter()
            .max_by_key(|(id, n)| (*n, *id))
            .map(|(id, _)| *id);
        let small = live
            .into_iter()
            .filter(|(id, _)| Some(*id) != largest)
            .collect();
        LiveFiles {
            counts,
            small,
            listed,
        }
    }

    /// The index file this backup writes, if any (see [`plan_index_write`]).
    fn next_file(self, index: &Index, new_packs: Vec<IndexedPack>) -> Option<IndexFile> {
        let new_blobs = new_packs.iter().map(|p| p.blobs.len() as u64).sum();
        match plan_index_write(&self.counts, new_blobs) {
            IndexPlan::Nothing => None,
            IndexPlan::Delta { supersedes: folded } => {
                // Supersede lists are transitive: the new file also names
                // everything the folded files replaced.
                let mut supersedes = folded.clone();
                let (mut packs, mut marked) = (Vec::new(), Vec::new());
                for (_, f) in self.small.into_iter().filter(|(id, _)| folded.contains(id)) {
                    supersedes.extend(f.supersedes);
                    packs.extend(f.packs);
                    // Marks are carried, never dropped: only prune unmarks.
                    marked.extend(f.marked);
                }
                supersedes.sort();
                supersedes.dedup();
                packs.extend(new_packs);
                Some(IndexFile {
                    supersedes,
                    packs,
                    marked,
                })
            }
            IndexPlan::Full { .. } => {
                // Everything indexed is in it, so it replaces every index
                // file that exists, live or already superseded.
                let mut file = index.export();
                file.packs.extend(new_packs);
                file.supersedes = self.listed;
                Some(file)
            }
        }
    }
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
        let LiveIndex {
            index,
            live,
            listed,
        } = self.load_live_index().await?;
        let live = LiveFiles::new(live, listed);
        let index = Arc::new(index);

        let chunker = Chunker::new(self.config.chunker, self.key.chunker_seed());
        let (block_tx, block_rx) = crossbeam_channel::bounded(BLOCK_QUEUE);
        // The reader may block on a pipe forever if we fail early, so it is a
        // detached thread rather than a runtime task.
        std::thread::Builder::new()
            .name("coffer-reader".into())
            .spawn(move || read_streams(sources, chunker, block_tx))
            .expect("spawn reader thread");

        let concurrency = opts.upload_concurrency.max(1);
        let progress = opts.progress.clone().unwrap_or_default();
        let (pack_tx, pack_rx) = tokio::sync::mpsc::unbounded_channel::<FinishedPack>();
        let (slot_tx, slot_rx) = crossbeam_channel::bounded(concurrency);
        for _ in 0..concurrency {
            slot_tx.send(()).expect("room for every token");
        }
        let packer = Packer {
            key: self.key.clone(),
            index: index.clone(),
            pack_size: self.config.pack_size as usize,
            level,
            data: None,
            tree: None,
            session: HashMap::new(),
            reused: vec![false; index.pack_count()],
            out: pack_tx,
            upload_slots: slot_rx,
            progress: progress.clone(),
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
        let long_running = started.elapsed() >= opts.recheck_after;
        let (index, live) = if long_running {
            // A prune may have marked packs this backup reuses since the
            // index was loaded: see "Prune" in docs/format.md.
            let reused: Vec<PackId> = outcome.reused.iter().map(|&n| index.pack(n).id).collect();
            let fresh = self.load_live_index().await?;
            check_still_usable(&fresh.index, &reused)?;
            (
                Arc::new(fresh.index),
                LiveFiles::new(fresh.live, fresh.listed),
            )
        } else {
            (index, live)
        };
        if let Some(file) = live.next_file(&index, packs) {
            let (_, len) = self.write_index(&file).await?;
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
                })
                .collect(),
        };
        let (snapshot_id, len) = self.write_snapshot(&snapshot).await?;
        bytes_uploaded += len;
        Ok(BackupSummary {
            snapshot_id,
            snapshot,
            new_chunks: outcome.streams.iter().map(|o| o.new_chunks).sum(),
            new_bytes: outcome.streams.iter().map(|o| o.new_bytes).sum(),
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
                    let indexed = super::store_pack(&self.backend, pack).await?;
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
    use crate::backend::Backend;
    use crate::crypto::KdfParams;
    use crate::repository::{Actor, InitOptions};

    async fn memory_repo() -> Repository {
        let store = Arc::new(object_store::memory::InMemory::new());
        let opts = InitOptions {
            kdf: KdfParams::INSECURE_FAST,
            ..InitOptions::default()
        };
        let actor = Actor {
            host: "h".into(),
            user: "u".into(),
        };
        Repository::init(Backend::new(store, "memory://"), b"pw", opts, &actor)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn progress_counters_end_at_the_summary_totals() {
        let repo = memory_repo().await;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..3_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
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
