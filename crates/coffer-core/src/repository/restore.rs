//! The restore pipeline: walk the stream's tree in order, plan the reads
//! of each window of the stream (each pack range it needs once, however
//! often the stream returns to that pack: [`plan_window`], pure), fetch
//! them several at once, open and verify blobs in stream order on rayon (through [`super::blobs`]:
//! AEAD tag, length, keyed MAC; a delta's bases are read and decoded there
//! too) and write them in order from a writer thread. Nothing unverified is
//! ever written; every queue is bounded.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use super::base_prefetch;
use super::blobs::{push_read, BlobReader, Cutter, PackRead};
use super::Repository;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::BlobLocation;
use crate::pack::{BlobEntry, BlobKind};
use crate::snapshot::StreamEntry;
use crate::tree::{Step, TreeNode, TreeWalker};

/// GETs in flight at once.
const FETCH_AHEAD: usize = 4;
/// Sealed bytes of the stream planned together: each pack range a window
/// needs is read once, however often the stream returns to that pack.
/// Wider windows make fewer GETs and hold more: 4 MiB took a 5 GB restore
/// into a pipe to 59-64 MiB, 3 MiB keeps it at 55-58 (docs/performance.md).
const WINDOW_BYTES: u64 = 3 * 1024 * 1024;
/// Chunks in a window at most.
const WINDOW_BLOBS: usize = 4096;
/// Windows fetched or being decoded at once (so at most about four times
/// [`WINDOW_BYTES`] of sealed bytes are held: a window may run on to the
/// end of a pack, up to twice its size).
const WINDOWS_AHEAD: usize = 2;
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

        let (window_tx, window_rx) = tokio::sync::mpsc::channel::<Window>(1);
        let (fetching_tx, fetching_rx) = tokio::sync::mpsc::channel::<Fetching>(1);
        let plan = plan_reads(reader, stream, window_tx);
        let fetch = fetch_windows(reader, window_rx, fetching_tx);
        let decode = decode_windows(reader, fetching_rx, write_tx);
        let result = tokio::try_join!(plan, fetch, decode);
        // The writer's error (closed pipe, full disk) is the root cause of a
        // failed hand-over, so it takes precedence.
        let written = written_rx
            .await
            .map_err(|_| Error::Output(std::io::Error::other("writer thread panicked")))?;
        let bytes = written.map_err(Error::Output)?;
        let ((blobs, data_reads), (), ()) = result?;
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

/// The reads of one window of the stream: each pack range its chunks need,
/// once, and the chunks in stream order as (read, blob) positions.
#[derive(Debug, PartialEq, Eq)]
struct Window {
    reads: Vec<Arc<PackRead>>,
    order: Vec<(usize, usize)>,
    /// Reads of the bases its deltas need into the local copies
    /// ([`base_prefetch`]), done before it is decoded.
    bases: Vec<Arc<PackRead>>,
}

/// Plans a window (pure): the distinct blobs of each pack, in pack order,
/// coalesced into reads as [`push_read`] joins them; packs in the order the
/// stream first needs them. A pack a window visits many times is read once.
fn plan_window(chunks: &[BlobLocation]) -> Window {
    let mut packs: Vec<(u32, Vec<BlobEntry>)> = Vec::new();
    let mut slot: HashMap<u32, usize> = HashMap::new();
    for loc in chunks {
        let i = *slot.entry(loc.pack).or_insert_with(|| {
            packs.push((loc.pack, Vec::new()));
            packs.len() - 1
        });
        packs[i].1.push(loc.entry);
    }
    let mut reads: Vec<PackRead> = Vec::new();
    let mut at: HashMap<(u32, u32), (usize, usize)> = HashMap::new();
    for (pack, mut entries) in packs {
        entries.sort_by_key(|e| e.offset);
        entries.dedup_by_key(|e| e.offset);
        let first = reads.len();
        for entry in entries {
            push_read(&mut reads, &BlobLocation { pack, entry });
            let r = reads.len() - 1;
            at.insert((pack, entry.offset), (r, reads[r].blobs.len() - 1));
        }
        debug_assert!(reads[first..].iter().all(|r| r.pack == pack));
    }
    let order = chunks
        .iter()
        .map(|loc| at[&(loc.pack, loc.entry.offset)])
        .collect();
    Window {
        reads: reads.into_iter().map(Arc::new).collect(),
        order,
        bases: Vec::new(),
    }
}

/// Walks the tree and sends the stream's chunks in windows of about
/// [`WINDOW_BYTES`] sealed bytes; returns the number of data blobs and of
/// reads planned.
async fn plan_reads(
    reader: &BlobReader,
    stream: &StreamEntry,
    tx: tokio::sync::mpsc::Sender<Window>,
) -> Result<(u64, u64)> {
    let mut walker = TreeWalker::new(stream.root_entry());
    let mut cache: HashMap<BlobId, TreeNode> = HashMap::new();
    let mut whole_packs = HashSet::new();
    let mut window: Vec<BlobLocation> = Vec::new();
    let mut window_bytes = 0u64;
    let (mut blobs, mut reads) = (0u64, 0u64);
    let mut bases_planned = HashSet::new();
    let mut send = |window: &mut Vec<BlobLocation>, reads: &mut u64| {
        let mut planned = plan_window(window);
        planned.bases = base_prefetch::plan(reader, window, &mut bases_planned);
        window.clear();
        *reads += (planned.reads.len() + planned.bases.len()) as u64;
        let tx = tx.clone();
        async move { tx.send(planned).await.map_err(|_| closed_output()) }
    };
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
                // A full window closes where the stream leaves a pack, so a
                // pack read straight through is one GET, not one a window
                // (within twice the window's size).
                let same_pack = window.last().is_some_and(|l| l.pack == loc.pack);
                let full = window_bytes >= WINDOW_BYTES || window.len() >= WINDOW_BLOBS;
                if full && (!same_pack || window_bytes >= 2 * WINDOW_BYTES) {
                    send(&mut window, &mut reads).await?;
                    window_bytes = 0;
                }
                window_bytes += loc.entry.length as u64;
                window.push(loc);
            }
            Step::Done => break,
        }
    }
    if !window.is_empty() {
        send(&mut window, &mut reads).await?;
    }
    Ok((blobs, reads))
}

/// One read's blobs, cut from its body as it streams in (the bytes between
/// them are dropped as they arrive).
async fn fetch_sealed(reader: BlobReader, read: Arc<PackRead>) -> Result<Vec<Bytes>> {
    let path = reader.pack_path(read.pack);
    let mut body = reader
        .backend()
        .get_range_stream(&path, read.start..read.end)
        .await?;
    let mut out = Vec::with_capacity(read.blobs.len());
    let mut cutter = Cutter::new(read);
    while let Some(piece) = body.next().await.transpose()? {
        out.extend(cutter.feed(&piece));
    }
    cutter.finish(&path)?;
    Ok(out)
}

/// A window whose reads have been started.
struct Fetching {
    window: Window,
    /// The base reads into the local copies.
    bases: Vec<tokio::task::JoinHandle<Result<()>>>,
    reads: Vec<tokio::task::JoinHandle<Result<Vec<Bytes>>>>,
    /// Held until the window is decoded: bounds the windows in memory.
    _room: tokio::sync::OwnedSemaphorePermit,
}

/// Starts every read of each window (at most [`FETCH_AHEAD`] GETs at once,
/// in the order the stream needs them), at most [`WINDOWS_AHEAD`] windows
/// ahead of the one being decoded.
async fn fetch_windows(
    reader: &BlobReader,
    mut rx: tokio::sync::mpsc::Receiver<Window>,
    tx: tokio::sync::mpsc::Sender<Fetching>,
) -> Result<()> {
    let windows = Arc::new(tokio::sync::Semaphore::new(WINDOWS_AHEAD));
    let gets = Arc::new(tokio::sync::Semaphore::new(FETCH_AHEAD));
    while let Some(window) = rx.recv().await {
        let room = windows.clone().acquire_owned().await.expect("never closed");
        // Bases first: the window's deltas cannot be decoded without them.
        let mut bases = Vec::with_capacity(window.bases.len());
        for read in &window.bases {
            let (reader, read) = (reader.clone(), read.clone());
            let permit = gets.clone().acquire_owned().await.expect("never closed");
            bases.push(tokio::spawn(async move {
                let got = base_prefetch::fetch(reader, read).await;
                drop(permit);
                got
            }));
        }
        let mut reads = Vec::with_capacity(window.reads.len());
        for read in &window.reads {
            let (reader, gets) = (reader.clone(), gets.clone());
            let read = read.clone();
            // Queued in order, so the first needed is fetched first.
            let permit = gets.acquire_owned().await.expect("never closed");
            reads.push(tokio::spawn(async move {
                let got = fetch_sealed(reader, read).await;
                drop(permit);
                got
            }));
        }
        let fetching = Fetching {
            window,
            bases,
            reads,
            _room: room,
        };
        if tx.send(fetching).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Opens each window's blobs in stream order, in batches of one pack on
/// rayon (a delta's bases are read and decoded there too), and hands the
/// plaintext to the writer in order.
async fn decode_windows(
    reader: &BlobReader,
    mut rx: tokio::sync::mpsc::Receiver<Fetching>,
    write_tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<()> {
    let mut decoding = std::collections::VecDeque::new();
    while let Some(Fetching {
        window,
        bases,
        reads,
        _room,
    }) = rx.recv().await
    {
        // Best effort: a base that did not reach the copies is read when
        // decoding needs it (and a storage error surfaces there).
        for read in bases {
            let _ = read.await.expect("base fetch task panicked");
        }
        let mut fetched: Vec<Option<Vec<Bytes>>> = vec![None; reads.len()];
        // Uses left of each blob in this window: its bytes are let go at
        // the last one, so a window's memory drains as it is decoded.
        let mut uses: Vec<Vec<u32>> = window
            .reads
            .iter()
            .map(|r| vec![0; r.blobs.len()])
            .collect();
        for &(r, b) in &window.order {
            uses[r][b] += 1;
        }
        let mut reads: Vec<Option<_>> = reads.into_iter().map(Some).collect();
        let mut batch: Vec<(BlobEntry, Bytes)> = Vec::new();
        let (mut batch_bytes, mut batch_plain) = (0u64, 0u64);
        let mut batch_pack = 0u32;
        let count = window.order.len();
        for (i, &(r, b)) in window.order.iter().enumerate() {
            if let Some(handle) = reads[r].take() {
                crate::failpoint::reach("restore-fetching");
                crate::interrupt::check()?;
                fetched[r] = Some(handle.await.expect("fetch task panicked")?);
            }
            let read = &window.reads[r];
            let entry = read.blobs[b];
            let blobs = fetched[r].as_mut().expect("fetched");
            uses[r][b] -= 1;
            let sealed = if uses[r][b] == 0 {
                std::mem::take(&mut blobs[b])
            } else {
                blobs[b].clone()
            };
            if !batch.is_empty() && batch_pack != read.pack {
                decoding.push_back(decode_batch(reader, batch_pack, std::mem::take(&mut batch)));
                (batch_bytes, batch_plain) = (0, 0);
            }
            batch_pack = read.pack;
            batch_bytes += entry.length as u64;
            batch_plain += entry.raw_length as u64;
            batch.push((entry, sealed));
            let full = batch_bytes >= DECODE_BATCH || batch_plain >= DECODE_BATCH_PLAIN;
            if full || i + 1 == count {
                decoding.push_back(decode_batch(reader, batch_pack, std::mem::take(&mut batch)));
                (batch_bytes, batch_plain) = (0, 0);
            }
            while decoding.len() > DECODE_AHEAD {
                write_decoded(&mut decoding, &write_tx).await?;
            }
        }
    }
    while !decoding.is_empty() {
        write_decoded(&mut decoding, &write_tx).await?;
    }
    Ok(())
}

type Decoding = tokio::task::JoinHandle<Result<Vec<Vec<u8>>>>;

fn decode_batch(reader: &BlobReader, pack: u32, batch: Vec<(BlobEntry, Bytes)>) -> Decoding {
    let r = reader.clone();
    tokio::spawn(async move {
        let r2 = r.clone();
        let opened = tokio::task::spawn_blocking(move || r2.open_cut(pack, &batch))
            .await
            .expect("decode task panicked")?;
        // Deltas among them read and decode their bases.
        r.finish(pack, opened).await
    })
}

async fn write_decoded(
    decoding: &mut std::collections::VecDeque<Decoding>,
    write_tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<()> {
    let plains = decoding
        .pop_front()
        .expect("non-empty")
        .await
        .expect("decode task panicked")?;
    for plain in plains {
        write_tx.send(plain).await.map_err(|_| closed_output())?;
    }
    Ok(())
}

/// The writer hung up: it stopped on an error of its own, which the restore
/// reports instead of this one. Never a broken pipe: only the writer's own
/// EPIPE may end a restore quietly.
fn closed_output() -> Error {
    Error::Internal("the output writer stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pack: u32, n: u8, offset: u32) -> BlobLocation {
        BlobLocation {
            pack,
            entry: BlobEntry {
                kind: 0,
                encoding: 1,
                id: BlobId([n; 32]),
                offset,
                length: 1000,
                raw_length: 4000,
            },
        }
    }

    #[test]
    fn a_window_reads_each_pack_range_once_however_often_the_stream_returns() {
        // The stream goes A B A C A B, and repeats one chunk of A.
        let chunks = [
            at(0, 1, 37),
            at(1, 2, 37),
            at(0, 3, 1037),
            at(2, 4, 37),
            at(0, 5, 2037),
            at(1, 6, 1037),
            at(0, 1, 37),
        ];
        let w = plan_window(&chunks);
        let reads: Vec<(u32, u64, u64, usize)> = w
            .reads
            .iter()
            .map(|r| (r.pack, r.start, r.end, r.blobs.len()))
            .collect();
        // Packs in the order first needed; each one read, its repeated
        // chunk once.
        assert_eq!(
            reads,
            [(0, 37, 3037, 3), (1, 37, 2037, 2), (2, 37, 1037, 1)]
        );
        assert_eq!(
            w.order,
            [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1), (0, 0)]
        );
        for (loc, &(r, b)) in chunks.iter().zip(&w.order) {
            assert_eq!(w.reads[r].blobs[b], loc.entry);
        }
    }

    #[test]
    fn far_apart_blobs_of_one_pack_are_separate_reads() {
        // 3 MiB between them: more than a read may span to join them.
        let chunks = [at(0, 1, 37), at(0, 2, 3 << 20), at(0, 3, 1037)];
        let w = plan_window(&chunks);
        assert_eq!(w.reads.len(), 2);
        assert_eq!(w.reads[0].blobs.len(), 2);
        assert_eq!(w.order, [(0, 0), (1, 0), (0, 1)]);
    }
}
