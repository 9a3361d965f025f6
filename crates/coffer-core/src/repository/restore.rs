//! The restore pipeline: walk the stream's tree in order, coalesce
//! neighbouring blobs of a pack into ranged reads, fetch several reads ahead
//! concurrently, open and verify blobs on rayon (through [`super::blobs`]:
//! AEAD tag, length, keyed MAC; a delta's bases are read and decoded there
//! too) and write them in order from a writer thread. Nothing unverified is
//! ever written; every queue is bounded.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use super::blobs::{BlobReader, PackRead};
use super::Repository;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::pack::{BlobEntry, BlobKind};
use crate::snapshot::StreamEntry;
use crate::tree::{Step, TreeNode, TreeWalker};

/// Reads whose GET is started ahead of the one being consumed.
const FETCH_AHEAD: usize = 3;
/// Sealed bytes opened together on rayon.
const DECODE_BATCH: u64 = 1024 * 1024;
/// Plaintext bytes a batch may decode to: a delta's plaintext can be fifty
/// times its sealed size, so batches are cut by both.
const DECODE_BATCH_PLAIN: u64 = 4 * 1024 * 1024;
/// Batches being opened at once.
const DECODE_AHEAD: usize = 3;
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

/// Restores streams against one load of the index: for the several
/// streams of a snapshot (`restore --target`, `copy`).
pub struct Restorer {
    reader: BlobReader,
}

impl Repository {
    /// Writes one stream of a snapshot to `out` (see [`Restorer::restore`]).
    pub async fn restore<W: Write + Send + 'static>(
        &self,
        stream: &StreamEntry,
        out: W,
    ) -> Result<RestoreSummary> {
        self.restorer().await?.restore(stream, out).await
    }

    /// A restorer over the index as it is now.
    pub async fn restorer(&self) -> Result<Restorer> {
        Ok(Restorer {
            reader: self.blob_reader(Arc::new(self.load_index().await?)),
        })
    }
}

impl Restorer {
    /// Writes one stream of a snapshot to `out`, in order, verifying every
    /// blob. A reader that closes the output early ends the restore with an
    /// [`Error::Output`] of kind `BrokenPipe` (see [`Error::is_broken_pipe`]).
    pub async fn restore<W: Write + Send + 'static>(
        &self,
        stream: &StreamEntry,
        out: W,
    ) -> Result<RestoreSummary> {
        let started = Instant::now();
        let reader = &self.reader;

        let (write_tx, write_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        let (written_tx, written_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("coffer-writer".into())
            .spawn(move || {
                let _ = written_tx.send(write_all(out, write_rx));
            })
            .expect("spawn writer thread");

        let (read_tx, read_rx) = tokio::sync::mpsc::channel::<PackRead>(FETCH_AHEAD);
        let plan = plan_reads(reader, stream, read_tx);
        let fetch = fetch_and_decode(reader, read_rx, write_tx);
        let result = tokio::try_join!(plan, fetch);
        // The writer's error (closed pipe, full disk) is the root cause of a
        // failed hand-over, so it takes precedence.
        let written = written_rx
            .await
            .map_err(|_| Error::Output(std::io::Error::other("writer thread panicked")))?;
        let bytes = written.map_err(Error::Output)?;
        let ((blobs, data_reads), ()) = result?;
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
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<u64> {
    let mut n = 0u64;
    while let Some(buf) = rx.blocking_recv() {
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
    tx: tokio::sync::mpsc::Sender<PackRead>,
) -> Result<(u64, u64)> {
    let mut walker = TreeWalker::new(stream.root_entry());
    let mut cache: HashMap<BlobId, TreeNode> = HashMap::new();
    let mut whole_packs = HashSet::new();
    let mut current: Option<PackRead> = None;
    let (mut blobs, mut reads) = (0u64, 0u64);
    loop {
        match walker.next_step() {
            Step::Need(id) => {
                let node = match cache.remove(&id) {
                    Some(n) => n,
                    None => {
                        let mut got = reader.load_nodes(&[id], &mut whole_packs).await?;
                        let node = got.remove(&id).expect("loaded");
                        cache.extend(got);
                        node
                    }
                };
                if node.level > 0 {
                    // Fetch all children at once: they sit side by side in a tree pack.
                    let ids: Vec<BlobId> = node
                        .entries
                        .iter()
                        .map(|e| e.id)
                        .filter(|id| !cache.contains_key(id))
                        .collect();
                    if !ids.is_empty() {
                        cache.extend(reader.load_nodes(&ids, &mut whole_packs).await?);
                    }
                }
                walker
                    .provide(node)
                    .map_err(|r| Error::corrupt(format!("stream {:?}", stream.name), r))?;
            }
            Step::Chunk(chunk) => {
                let loc = reader.locate(&chunk.id, BlobKind::Data, Some(chunk.size))?;
                blobs += 1;
                if !current.as_mut().is_some_and(|r| r.try_extend(&loc)) {
                    if let Some(done) = current.replace(PackRead::of(&loc)) {
                        reads += 1;
                        tx.send(done).await.map_err(|_| closed_output())?;
                    }
                }
            }
            Step::Done => break,
        }
    }
    if let Some(done) = current {
        reads += 1;
        tx.send(done).await.map_err(|_| closed_output())?;
    }
    Ok((blobs, reads))
}

/// Starts the GETs of upcoming reads ahead (each on its own task), then
/// consumes one read's body at a time as it arrives, opening complete blobs
/// in batches on rayon while more bytes come in, and hands the plaintext to
/// the writer in order.
async fn fetch_and_decode(
    reader: &BlobReader,
    rx: tokio::sync::mpsc::Receiver<PackRead>,
    write_tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<()> {
    let reads =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let started = reads
        .map(|read| {
            let reader = reader.clone();
            tokio::spawn(async move {
                let body = reader
                    .backend()
                    .get_range_stream(&reader.pack_path(read.pack), read.start..read.end)
                    .await;
                (read, body)
            })
        })
        .buffered(FETCH_AHEAD);
    let mut started = std::pin::pin!(started);
    let mut decoding = std::collections::VecDeque::new();
    while let Some(joined) = started.next().await {
        crate::failpoint::reach("restore-fetching");
        crate::interrupt::check()?;
        let (read, body) = joined.expect("fetch task panicked");
        let mut body = body?;
        let mut buf = bytes::BytesMut::new();
        let mut buf_start = read.start;
        let mut blobs = read.blobs.iter().peekable();
        let mut batch: Vec<(BlobEntry, Bytes)> = Vec::new();
        let (mut batch_bytes, mut batch_plain) = (0u64, 0u64);
        loop {
            let piece = body.next().await.transpose()?;
            let at_end = piece.is_none();
            if let Some(p) = piece {
                buf.extend_from_slice(&p);
            }
            // Cut every blob that has fully arrived, shipping a batch to
            // decoding whenever it is full, and never keeping more than
            // DECODE_AHEAD batches in decoding.
            loop {
                let cut = match blobs.peek() {
                    Some(e) if e.range().end <= buf_start + buf.len() as u64 => {
                        let r = e.range();
                        let mut part = buf.split_to((r.end - buf_start) as usize);
                        let sealed = part.split_off((r.start - buf_start) as usize).freeze();
                        buf_start = r.end;
                        batch_bytes += e.length as u64;
                        batch_plain += e.raw_length as u64;
                        batch.push((**e, sealed));
                        blobs.next();
                        true
                    }
                    _ => false,
                };
                let full = batch_bytes >= DECODE_BATCH || batch_plain >= DECODE_BATCH_PLAIN;
                let last = blobs.peek().is_none() || (at_end && !cut);
                if !batch.is_empty() && (full || last) {
                    let (r, b, pack) = (reader.clone(), std::mem::take(&mut batch), read.pack);
                    decoding.push_back(tokio::spawn(async move {
                        let r2 = r.clone();
                        let opened = tokio::task::spawn_blocking(move || r2.open_cut(pack, &b))
                            .await
                            .expect("decode task panicked")?;
                        // Deltas among them read and decode their bases.
                        r.finish(pack, opened).await
                    }));
                    (batch_bytes, batch_plain) = (0, 0);
                }
                while decoding.len() > DECODE_AHEAD || (at_end && !cut && !decoding.is_empty()) {
                    let plains = decoding
                        .pop_front()
                        .expect("non-empty")
                        .await
                        .expect("decode task panicked")?;
                    for plain in plains {
                        write_tx.send(plain).await.map_err(|_| closed_output())?;
                    }
                }
                if !cut {
                    break;
                }
            }
            if at_end {
                break;
            }
        }
        if blobs.peek().is_some() {
            return Err(Error::corrupt(
                reader.pack_path(read.pack),
                "truncated: the read ended before its last blob",
            ));
        }
    }
    Ok(())
}

/// The writer hung up: it stopped on an error of its own, which the restore
/// reports instead of this one. Never a broken pipe: only the writer's own
/// EPIPE may end a restore quietly.
fn closed_output() -> Error {
    Error::Internal("the output writer stopped".into())
}
