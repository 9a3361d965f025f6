//! Reading a stream version's sketch (see [`crate::delta::sketch`]): walk
//! its tree, then read its parts with coalesced ranged reads (they sit side
//! by side in tree packs). Backup reads the previous version's; prune reads
//! every kept version's to re-base deltas.

use std::collections::HashSet;

use super::blobs::{push_read, BlobReader};
use crate::delta::sketch::{ChunkSketch, SketchPart};
use crate::error::{Error, Result};
use crate::pack::BlobKind;
use crate::snapshot::StreamEntry;
use crate::tree::{Step, TreeWalker};

/// The chunks of a stream version as its sketch lists them, in stream
/// order; empty when it has no sketch.
pub(crate) async fn load_sketch(
    reader: &BlobReader,
    stream: &StreamEntry,
) -> Result<Vec<ChunkSketch>> {
    let Some(root) = stream.sketch else {
        return Ok(Vec::new());
    };
    let bad = |r: String| Error::corrupt(format!("the sketch of stream {:?}", stream.name), r);
    let mut walker = TreeWalker::new(root);
    let mut whole = HashSet::new();
    let mut reads = Vec::new();
    loop {
        match walker.next_step() {
            Step::Need(id) => {
                let mut nodes = reader.load_nodes(&[id], &mut whole).await?;
                let node = nodes.remove(&id).ok_or_else(|| Error::Missing {
                    object: format!("tree blob {id}"),
                })?;
                walker.provide(node).map_err(bad)?;
            }
            Step::Chunk(part) => {
                let loc = reader.locate(&part.id, BlobKind::Sketch, Some(part.size))?;
                push_read(&mut reads, &loc);
            }
            Step::Done => break,
        }
    }
    let mut chunks = Vec::new();
    for read in reads {
        for plain in reader.fetch_read(read).await? {
            chunks.extend(SketchPart::decode(&plain).map_err(bad)?.chunks);
        }
    }
    Ok(chunks)
}
