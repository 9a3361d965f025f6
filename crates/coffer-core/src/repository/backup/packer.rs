//! The backup's packer thread: takes chunks in stream order, has rayon
//! compute their ids (and compress the ones the repository lacks) within a
//! bounded window, builds each stream's tree, and seals new blobs into packs
//! through the [`PackSink`]. A full pack waits for a free upload slot, so at
//! most `concurrency` finished packs exist at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::deltas::{encode_new, DeltaContext, Packed};
use super::reader::Block;
use crate::compress;
use crate::crypto::MasterKey;
use crate::delta::anchors::{self, Lines};
use crate::delta::sketch::{ChunkSketch, SketchBuilder};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::BlobMap;
use crate::pack::{BlobKind, EncodedBlob, FinishedPack};
use crate::progress::BackupProgress;
use crate::repository::pack_sink::PackSink;
use crate::tree::{NodeBlob, TreeBuilder, TreeEntry};

/// What the packer thread hands back when every stream ended.
pub(super) struct PackerOutcome {
    pub streams: Vec<StreamOutcome>,
    /// Numbers of the indexed packs reused.
    pub reused: Vec<u32>,
}

/// One stream as packed.
pub(super) struct StreamOutcome {
    pub root: TreeEntry,
    /// Root of its sketch tree, when sketches are kept.
    pub sketch: Option<TreeEntry>,
    /// New chunks stored as deltas.
    pub delta_chunks: u64,
    pub chunks: u64,
    pub stored_size: u64,
    pub new_chunks: u64,
    pub new_bytes: u64,
    /// Sealed bytes of the blobs (chunks and tree nodes) it added.
    pub added: u64,
}

/// Packer state: open data and tree packs, blobs stored in this session.
pub(super) struct Packer {
    key: Arc<MasterKey>,
    index: Arc<BlobMap>,
    level: i32,
    sink: PackSink,
    /// Blobs added in this backup, with their sealed length.
    session: HashMap<(BlobKind, BlobId), u32>,
    /// Packs of the loaded index this backup deduplicated against, by
    /// number (checked again before committing a long backup).
    reused: Vec<bool>,
    out: tokio::sync::mpsc::UnboundedSender<FinishedPack>,
    /// One token per upload slot: a finished pack waits here until a slot is
    /// free, so at most `concurrency` packs exist besides the open ones.
    upload_slots: crossbeam_channel::Receiver<()>,
    progress: Arc<BackupProgress>,
    /// Per stream, in order: how to encode its new chunks as deltas (none:
    /// no previous version, or deltas off).
    deltas: Vec<Option<Arc<DeltaContext>>>,
    /// Whether streams get a sketch (format 2, deltas on).
    sketching: bool,
}

impl Packer {
    /// A packer deduplicating against `index`, sealing new blobs at zstd
    /// `level` into packs of `pack_size`, handing full packs to `out` once
    /// `upload_slots` yields a token.
    pub fn new(
        key: Arc<MasterKey>,
        index: Arc<BlobMap>,
        (pack_size, level, spool): (usize, i32, Option<std::path::PathBuf>),
        out: tokio::sync::mpsc::UnboundedSender<FinishedPack>,
        upload_slots: crossbeam_channel::Receiver<()>,
        progress: Arc<BackupProgress>,
    ) -> Self {
        Packer {
            sink: PackSink::new(key.clone(), pack_size).spooling_to(spool),
            key,
            reused: vec![false; index.pack_count()],
            index,
            level,
            session: HashMap::new(),
            out,
            upload_slots,
            progress,
            deltas: Vec::new(),
            sketching: false,
        }
    }

    /// Keeps sketches, and encodes each stream's new chunks with its delta
    /// context (in stream order).
    pub fn with_deltas(mut self, deltas: Vec<Option<Arc<DeltaContext>>>) -> Self {
        self.deltas = deltas;
        self.sketching = true;
        self
    }

    /// Stored length of an already known blob (one in a pack marked for
    /// deletion does not count: it is stored again).
    fn known_length(&mut self, kind: BlobKind, id: &BlobId) -> Option<u32> {
        if let Some(l) = self.index.get_usable(kind, id) {
            self.reused[l.pack as usize] = true;
            return Some(l.entry.length);
        }
        self.session.get(&(kind, *id)).copied()
    }

    /// Stores a tree node or sketch part (compressed on its own) unless
    /// the repository or this backup has it; returns its sealed length if
    /// it was new.
    fn add_metadata(&mut self, kind: BlobKind, id: BlobId, bytes: &[u8]) -> Result<Option<u32>> {
        if self.known_length(kind, &id).is_some() {
            return Ok(None);
        }
        let (encoding, payload) = compress::compress(bytes, self.level);
        self.add(EncodedBlob {
            kind,
            id,
            encoding,
            payload: &payload,
            raw_len: bytes.len() as u32,
            bases: &[],
        })
        .map(Some)
    }

    fn add(&mut self, blob: EncodedBlob<'_>) -> Result<u32> {
        let (sealed, full) = self.sink.add(blob)?;
        self.session.insert((blob.kind, blob.id), sealed);
        if let Some(full) = full {
            self.ship(full)?;
        }
        Ok(sealed)
    }

    fn ship(&self, pack: FinishedPack) -> Result<()> {
        // A closed channel means the uploader stopped on an error; it reports it.
        self.upload_slots.recv().map_err(|_| upload_aborted())?;
        self.out.send(pack).map_err(|_| upload_aborted())
    }

    /// Stores the new tree nodes; returns their sealed bytes.
    fn add_nodes(&mut self, nodes: &mut Vec<NodeBlob>) -> Result<u64> {
        let mut added = 0;
        for node in nodes.drain(..) {
            added += self
                .add_metadata(BlobKind::Tree, node.id, &node.bytes)?
                .unwrap_or(0) as u64;
        }
        Ok(added)
    }

    fn flush(&mut self) -> Result<()> {
        for pack in self.sink.take_open()? {
            self.ship(pack)?;
        }
        Ok(())
    }
}

fn upload_aborted() -> Error {
    Error::Internal("the uploader stopped".into())
}

/// The stream as it is packed: its tree, its sketch and its counters.
#[derive(Default)]
struct StreamState {
    tree: TreeBuilder,
    nodes: Vec<NodeBlob>,
    sketch: SketchBuilder,
    sketch_tree: TreeBuilder,
    sketch_size: u64,
    delta_chunks: u64,
    chunks: u64,
    size: u64,
    stored_size: u64,
    new_chunks: u64,
    new_bytes: u64,
    added: u64,
}

impl StreamState {
    /// Takes the next chunk, in stream order, with its id, its lines (when
    /// sketching) and (when it was not stored before) its encoded form.
    fn push(
        &mut self,
        packer: &mut Packer,
        chunk: &[u8],
        id: BlobId,
        lines: Lines,
        packed: Option<Packed>,
    ) -> Result<()> {
        let len = chunk.len() as u32;
        let known = packer.known_length(BlobKind::Data, &id);
        packer.progress.chunk(len as u64, known.is_none());
        let stored = match known {
            Some(l) => l,
            None => {
                // Encoded on rayon unless an earlier chunk of this same
                // backup had the id (then it is known and we never get here).
                let packed = packed.unwrap_or_else(|| Packed::plain(chunk, packer.level));
                let bases: Vec<BlobId> = packed.bases.iter().map(|l| l.entry.id).collect();
                for b in &packed.bases {
                    packer.reused[b.pack as usize] = true;
                }
                self.delta_chunks += u64::from(!bases.is_empty());
                self.new_chunks += 1;
                self.new_bytes += len as u64;
                let sealed = packer.add(EncodedBlob {
                    kind: BlobKind::Data,
                    id,
                    encoding: packed.encoding,
                    payload: &packed.payload,
                    raw_len: len,
                    bases: &bases,
                })?;
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
        if packer.sketching {
            let part = self.sketch.push(ChunkSketch {
                id,
                size: len,
                anchors: lines.anchors,
                marks: lines.marks,
            });
            if let Some(part) = part {
                self.add_sketch_part(packer, &part)?;
            }
        }
        self.added += packer.add_nodes(&mut self.nodes)?;
        Ok(())
    }

    /// Stores one sketch part and lists it in the sketch's tree.
    fn add_sketch_part(&mut self, packer: &mut Packer, part: &[u8]) -> Result<()> {
        let id = packer.key.blob_id(part);
        let sealed = packer.add_metadata(BlobKind::Sketch, id, part)?;
        self.added += sealed.unwrap_or(0) as u64;
        self.sketch_size += part.len() as u64;
        let entry = TreeEntry {
            id,
            size: part.len() as u64,
        };
        self.sketch_tree
            .push_chunk(&packer.key, entry, &mut self.nodes);
        Ok(())
    }

    /// Closes the stream's tree.
    fn finish(mut self, packer: &mut Packer, allow_empty: bool) -> Result<StreamOutcome> {
        if self.size == 0 && !allow_empty {
            return Err(Error::EmptyInput);
        }
        let tree = std::mem::take(&mut self.tree);
        let root = tree.finish(&packer.key, &mut self.nodes);
        let sketch = if packer.sketching && self.chunks > 0 {
            let sketch = std::mem::take(&mut self.sketch);
            if let Some(part) = sketch.finish() {
                self.add_sketch_part(packer, &part)?;
            }
            let tree = std::mem::take(&mut self.sketch_tree);
            Some(tree.finish(&packer.key, &mut self.nodes))
        } else {
            None
        };
        self.added += packer.add_nodes(&mut self.nodes)?;
        packer.progress.stream_done();
        Ok(StreamOutcome {
            root,
            sketch,
            delta_chunks: self.delta_chunks,
            chunks: self.chunks,
            stored_size: self.stored_size,
            new_chunks: self.new_chunks,
            new_bytes: self.new_bytes,
            added: self.added,
        })
    }
}

/// Makes room for stream number `n`.
fn grow(states: &mut Vec<StreamState>, outcomes: &mut Vec<Option<StreamOutcome>>, n: usize) {
    if states.len() <= n {
        states.resize_with(n + 1, StreamState::default);
        outcomes.resize_with(n + 1, || None);
    }
}

/// Result of the CPU work on one chunk: its sequence number, id, lines
/// (when sketching) and, when the repository lacks it, its encoded form.
type Hashed = (u64, BlobId, Lines, Option<Result<Packed>>);

/// Packer thread: chunks -> packs, and the stream's tree.
///
/// Chunks go to rayon one by one (MAC, and compression when new) with a
/// bounded window of tasks in flight; results are taken back in stream order,
/// so sealing and tree building here overlap with compression there and no
/// core waits for the slowest chunk of a batch.
pub(super) fn pack_chunks(
    mut packer: Packer,
    rx: crossbeam_channel::Receiver<Result<Block>>,
    allow_empty: bool,
) -> Result<PackerOutcome> {
    let window = rayon::current_num_threads() * 3;
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Hashed>();
    let mut in_flight: VecDeque<(u64, usize, Bytes)> = VecDeque::new();
    let mut finished: BTreeMap<u64, (BlobId, Lines, Option<Result<Packed>>)> = BTreeMap::new();
    // One state per stream: streams read at once interleave their blocks.
    let mut states: Vec<StreamState> = Vec::new();
    let mut outcomes: Vec<Option<StreamOutcome>> = Vec::new();
    let mut next_seq = 0u64;

    let mut take_oldest = |packer: &mut Packer,
                           states: &mut Vec<StreamState>,
                           in_flight: &mut VecDeque<(u64, usize, Bytes)>|
     -> Result<()> {
        let (seq, stream, chunk) = in_flight.pop_front().expect("a chunk in flight");
        let (id, lines, packed) = loop {
            if let Some(r) = finished.remove(&seq) {
                break r;
            }
            let (s, id, lines, packed) = done_rx.recv().expect("a rayon task panicked");
            finished.insert(s, (id, lines, packed));
        };
        states[stream].push(packer, &chunk, id, lines, packed.transpose()?)
    };

    for block in rx {
        let (stream, chunks) = match block? {
            Block::Chunks(stream, chunks) => (stream, chunks),
            Block::End(stream) => {
                // Its chunks still in flight are taken first (with those of
                // streams read beside it: order within each stream holds).
                while in_flight.iter().any(|(_, s, _)| *s == stream) {
                    take_oldest(&mut packer, &mut states, &mut in_flight)?;
                }
                grow(&mut states, &mut outcomes, stream);
                let done = std::mem::take(&mut states[stream]);
                outcomes[stream] = Some(done.finish(&mut packer, allow_empty)?);
                continue;
            }
        };
        grow(&mut states, &mut outcomes, stream);
        for chunk in chunks {
            if in_flight.len() >= window {
                take_oldest(&mut packer, &mut states, &mut in_flight)?;
            }
            let (key, index, level, tx) = (
                packer.key.clone(),
                packer.index.clone(),
                packer.level,
                done_tx.clone(),
            );
            let delta = packer.deltas.get(stream).cloned().flatten();
            let sketching = packer.sketching;
            let c = chunk.clone();
            rayon::spawn_fifo(move || {
                let id = key.blob_id(&c);
                let lines = if sketching {
                    anchors::lines(&c)
                } else {
                    Lines::default()
                };
                let packed = (index.get_usable(BlobKind::Data, &id).is_none())
                    .then(|| encode_new(delta.as_deref(), &index, &c, &lines, level));
                let _ = tx.send((next_seq, id, lines, packed));
            });
            in_flight.push_back((next_seq, stream, chunk));
            next_seq += 1;
        }
    }
    // Every stream ended (a reader that failed sent its error instead).
    let streams: Vec<StreamOutcome> = outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| Error::Internal("a stream ended without its end".into())))
        .collect::<Result<_>>()?;
    packer.flush()?;
    let reused = (0..packer.reused.len() as u32)
        .filter(|&n| packer.reused[n as usize])
        .collect();
    Ok(PackerOutcome { streams, reused })
}
