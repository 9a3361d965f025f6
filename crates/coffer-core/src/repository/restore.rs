//! The restore pipeline: walk the stream's tree in order, coalesce
//! neighbouring blobs of a pack into ranged reads, fetch several reads ahead
//! concurrently, open and verify blobs on rayon (AEAD tag, length, keyed MAC)
//! and write them in order from a writer thread. Nothing unverified is ever
//! written; every queue is bounded.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rayon::prelude::*;

use super::{blocking, Repository};
use crate::backend::{object_path, Backend, Kind};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::Index;
use crate::pack::{self, BlobEntry, BlobKind};
use crate::snapshot::StreamEntry;
use crate::tree::{Step, TreeNode, TreeWalker};

/// Largest coalesced read (stored bytes; about 4x that once decoded).
const MAX_READ: u64 = 2 * 1024 * 1024;
/// Unneeded bytes a read may span to join two blobs.
const MAX_GAP: u64 = 256 * 1024;
/// Reads fetched ahead of the writer.
const FETCH_AHEAD: usize = 4;
/// Reads decoded at once.
const DECODE_AHEAD: usize = 2;
/// Decoded blobs queued for the writer.
const WRITE_QUEUE: usize = 16;

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// Bytes written.
    pub bytes: u64,
    /// Data blobs written.
    pub blobs: u64,
    /// Ranged reads of data packs.
    pub data_reads: u64,
    /// Wall time.
    pub duration: Duration,
}

/// Consecutive blobs of one pack fetched with one ranged GET.
struct Read {
    pack: u32,
    start: u64,
    end: u64,
    blobs: Vec<BlobEntry>,
}

impl Read {
    fn try_extend(&mut self, pack: u32, e: &BlobEntry) -> bool {
        let r = e.range();
        let joins = pack == self.pack
            && r.start >= self.end
            && r.start - self.end <= MAX_GAP
            && r.end - self.start <= MAX_READ;
        if joins {
            self.end = r.end;
            self.blobs.push(*e);
        }
        joins
    }
}

/// Fetches byte ranges of packs and opens the blobs in them.
#[derive(Clone)]
struct BlobReader {
    backend: Backend,
    key: Arc<MasterKey>,
    index: Arc<Index>,
}

impl BlobReader {
    fn pack_path(&self, pack: u32) -> String {
        object_path(Kind::Pack, &self.index.pack(pack).id.to_hex())
    }

    async fn fetch(&self, read: &Read) -> Result<Bytes> {
        self.backend
            .get_range(&self.pack_path(read.pack), read.start..read.end)
            .await
    }

    /// Opens every blob of a fetched read (CPU work; call on a blocking thread).
    fn open_all(&self, read: &Read, bytes: &Bytes) -> Result<Vec<Vec<u8>>> {
        let subkey = self.key.subkey(&self.index.pack(read.pack).salt);
        read.blobs
            .par_iter()
            .map(|e| {
                let at = (e.offset as u64 - read.start) as usize;
                pack::open_blob(&self.key, &subkey, e, &bytes[at..at + e.length as usize])
                    .map_err(|reason| Error::corrupt(self.pack_path(read.pack), reason))
            })
            .collect()
    }

    /// Loads tree nodes, coalescing neighbours in the same pack.
    async fn load_nodes(&self, ids: &[BlobId]) -> Result<HashMap<BlobId, TreeNode>> {
        let mut reads: Vec<Read> = Vec::new();
        let mut locs: Vec<_> = ids
            .iter()
            .map(|id| {
                let loc = self.index.get(id).ok_or_else(|| Error::Missing {
                    object: format!("tree blob {id}"),
                })?;
                if loc.kind() != Some(BlobKind::Tree) {
                    return Err(Error::corrupt(
                        format!("tree blob {id}"),
                        "indexed as a data blob",
                    ));
                }
                Ok(loc)
            })
            .collect::<Result<_>>()?;
        locs.sort_by_key(|l| (l.pack, l.entry.offset));
        locs.dedup_by_key(|l| l.entry.id);
        for loc in locs {
            if !reads
                .last_mut()
                .is_some_and(|r| r.try_extend(loc.pack, &loc.entry))
            {
                let r = loc.entry.range();
                reads.push(Read {
                    pack: loc.pack,
                    start: r.start,
                    end: r.end,
                    blobs: vec![loc.entry],
                });
            }
        }
        let mut nodes = HashMap::new();
        for read in reads {
            let bytes = self.fetch(&read).await?;
            let this = self.clone();
            let (plains, read) = blocking(move || (this.open_all(&read, &bytes), read)).await;
            for (plain, e) in plains?.into_iter().zip(&read.blobs) {
                let node = TreeNode::decode(&plain)
                    .map_err(|r| Error::corrupt(self.pack_path(read.pack), r))?;
                nodes.insert(e.id, node);
            }
        }
        Ok(nodes)
    }
}

impl Repository {
    /// Writes one stream of a snapshot to `out`, in order, verifying every
    /// blob. A reader that closes the output early ends the restore with an
    /// [`Error::Output`] of kind `BrokenPipe` (see [`Error::is_broken_pipe`]).
    pub async fn restore<W: Write + Send + 'static>(
        &self,
        stream: &StreamEntry,
        out: W,
    ) -> Result<RestoreSummary> {
        let started = Instant::now();
        let reader = BlobReader {
            backend: self.backend.clone(),
            key: self.key.clone(),
            index: Arc::new(self.load_index().await?),
        };

        let (write_tx, write_rx) = crossbeam_channel::bounded::<Vec<u8>>(WRITE_QUEUE);
        let (written_tx, written_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("coffer-writer".into())
            .spawn(move || {
                let _ = written_tx.send(write_all(out, write_rx));
            })
            .expect("spawn writer thread");

        let (read_tx, read_rx) = tokio::sync::mpsc::channel::<Read>(FETCH_AHEAD);
        let plan = plan_reads(&reader, stream, read_tx);
        let fetch = fetch_and_decode(&reader, read_rx, write_tx);
        let result = tokio::try_join!(plan, fetch);
        // The writer's error (closed pipe, full disk) is the root cause of a
        // failed hand-over, so it takes precedence.
        let written = written_rx
            .await
            .map_err(|_| Error::Output(std::io::Error::other("writer thread panicked")))?;
        let ((blobs, data_reads), ()) = result?;
        let bytes = written.map_err(Error::Output)?;
        if bytes != stream.size {
            return Err(Error::corrupt(
                format!("stream {:?}", stream.name),
                format!(
                    "restored {bytes} bytes, the snapshot records {}",
                    stream.size
                ),
            ));
        }
        Ok(RestoreSummary {
            bytes,
            blobs,
            data_reads,
            duration: started.elapsed(),
        })
    }
}

fn write_all<W: Write>(
    mut out: W,
    rx: crossbeam_channel::Receiver<Vec<u8>>,
) -> std::io::Result<u64> {
    let mut n = 0u64;
    for buf in rx {
        out.write_all(&buf)?;
        n += buf.len() as u64;
    }
    out.flush()?;
    Ok(n)
}

/// Walks the tree and sends coalesced reads in stream order; returns the
/// number of data blobs.
async fn plan_reads(
    reader: &BlobReader,
    stream: &StreamEntry,
    tx: tokio::sync::mpsc::Sender<Read>,
) -> Result<(u64, u64)> {
    let mut walker = TreeWalker::new(stream.root_entry());
    let mut cache: HashMap<BlobId, TreeNode> = HashMap::new();
    let mut current: Option<Read> = None;
    let (mut blobs, mut reads) = (0u64, 0u64);
    let closed = || Error::Output(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
    loop {
        match walker.next_step() {
            Step::Need(id) => {
                let node = match cache.remove(&id) {
                    Some(n) => n,
                    None => reader.load_nodes(&[id]).await?.remove(&id).expect("loaded"),
                };
                if node.level > 0 {
                    // Fetch all children at once: they sit side by side in a tree pack.
                    let ids: Vec<BlobId> = node.entries.iter().map(|e| e.id).collect();
                    cache.extend(reader.load_nodes(&ids).await?);
                }
                walker
                    .provide(node)
                    .map_err(|r| Error::corrupt(format!("stream {:?}", stream.name), r))?;
            }
            Step::Chunk(chunk) => {
                let loc = reader.index.get(&chunk.id).ok_or_else(|| Error::Missing {
                    object: format!("data blob {}", chunk.id),
                })?;
                if loc.entry.raw_length as u64 != chunk.size || loc.kind() != Some(BlobKind::Data) {
                    return Err(Error::corrupt(
                        format!("data blob {}", chunk.id),
                        "index entry disagrees with the stream's tree",
                    ));
                }
                blobs += 1;
                if !current
                    .as_mut()
                    .is_some_and(|r| r.try_extend(loc.pack, &loc.entry))
                {
                    let r = loc.entry.range();
                    let next = Read {
                        pack: loc.pack,
                        start: r.start,
                        end: r.end,
                        blobs: vec![loc.entry],
                    };
                    if let Some(done) = current.replace(next) {
                        reads += 1;
                        tx.send(done).await.map_err(|_| closed())?;
                    }
                }
            }
            Step::Done => break,
        }
    }
    if let Some(done) = current {
        reads += 1;
        tx.send(done).await.map_err(|_| closed())?;
    }
    Ok((blobs, reads))
}

/// Fetches reads ahead (each on its own task so they progress in parallel),
/// decodes them in order and hands the plaintext to the writer.
async fn fetch_and_decode(
    reader: &BlobReader,
    rx: tokio::sync::mpsc::Receiver<Read>,
    write_tx: crossbeam_channel::Sender<Vec<u8>>,
) -> Result<()> {
    let reads =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let fetched = reads
        .map(|read| {
            let reader = reader.clone();
            tokio::spawn(async move {
                let bytes = reader.fetch(&read).await;
                (read, bytes)
            })
        })
        .buffered(FETCH_AHEAD);
    // Decode two reads at once so no core idles on the tail of one read.
    let decoded = fetched
        .map(|joined| {
            let reader = reader.clone();
            async move {
                let (read, bytes) = joined.expect("fetch task panicked");
                let bytes = bytes?;
                blocking(move || reader.open_all(&read, &bytes)).await
            }
        })
        .buffered(DECODE_AHEAD);
    let mut decoded = std::pin::pin!(decoded);
    while let Some(plains) = decoded.next().await {
        let tx = write_tx.clone();
        blocking(move || {
            for plain in plains? {
                tx.send(plain).map_err(|_| {
                    Error::Output(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
                })?;
            }
            Ok::<_, Error>(())
        })
        .await?;
    }
    Ok(())
}
