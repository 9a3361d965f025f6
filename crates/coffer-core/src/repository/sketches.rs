//! Reading a stream version's sketch (see [`crate::delta::sketch`]): walk
//! its tree, then read its parts with coalesced ranged reads (they sit side
//! by side in tree packs). Backup reads the previous version's; prune reads
//! every kept version's to re-base deltas.

use super::blobs::{push_read, BlobReader};
use crate::delta::sketch::{ChunkSketch, SketchPart};
use crate::error::{Error, Result};
use crate::pack::BlobKind;
use crate::snapshot::StreamEntry;

/// The chunks of a stream version as its sketch lists them, in stream
/// order; empty when it has no sketch.
pub(crate) async fn load_sketch(
    reader: &BlobReader,
    stream: &StreamEntry,
) -> Result<Vec<ChunkSketch>> {
    let Some(root) = stream.sketch else {
        return Ok(Vec::new());
    };
    let what = format!("the sketch of stream {:?}", stream.name);
    let mut reads = Vec::new();
    for part in reader.tree_leaves(root, &what).await? {
        let loc = reader.locate(&part.id, BlobKind::Sketch, Some(part.size))?;
        push_read(&mut reads, &loc);
    }
    let mut chunks = Vec::new();
    for read in reads {
        for plain in reader.fetch_read(read).await? {
            chunks.extend(
                SketchPart::decode(&plain)
                    .map_err(|r| Error::corrupt(what.clone(), r))?
                    .chunks,
            );
        }
    }
    Ok(chunks)
}
