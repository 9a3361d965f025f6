//! A stream version's sketch: per chunk, its id, length, anchors and marks,
//! stored alongside the stream so the next backup of the same stream can
//! pick delta bases without reading the data, and so a later reader can
//! find where each table's rows lie.
//!
//! The sketch is cut into parts at content-defined chunk boundaries (after a
//! chunk whose id's byte 30 is a multiple of [`PART_CUT`], or at
//! [`PART_MAX_CHUNKS`] chunks), each part stored as an ordinary data blob and
//! listed by a tree like a stream's chunks: unchanged stretches give the
//! same parts, which deduplicate.

use bincode::{Decode, Encode};

use super::anchors::Mark;
use crate::codec;
use crate::id::BlobId;

/// A part ends after a chunk whose id byte 30 is a multiple of this
/// (about 16 chunks a part on average).
pub const PART_CUT: u8 = 16;
/// Most chunks in one part.
pub const PART_MAX_CHUNKS: usize = 256;

/// One chunk as the sketch records it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ChunkSketch {
    /// The data chunk.
    pub id: BlobId,
    /// Its length.
    pub size: u32,
    /// Its anchors ([`super::anchors`]).
    pub anchors: Vec<u32>,
    /// Its marks.
    pub marks: Vec<Mark>,
}

/// The plaintext of one sketch part blob: `codec(SketchPart)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct SketchPart {
    /// Consecutive chunks of the stream.
    pub chunks: Vec<ChunkSketch>,
}

impl SketchPart {
    /// Decodes a part blob's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        codec::decode(bytes).map_err(|e| format!("sketch part: {e}"))
    }
}

/// Collects chunk sketches in stream order and cuts them into parts.
#[derive(Default)]
pub struct SketchBuilder {
    part: SketchPart,
}

impl SketchBuilder {
    /// Adds the next chunk; returns a finished part's plaintext when this
    /// chunk ends one.
    pub fn push(&mut self, chunk: ChunkSketch) -> Option<Vec<u8>> {
        let cut = chunk.id.0[30] % PART_CUT == 0;
        self.part.chunks.push(chunk);
        (cut || self.part.chunks.len() >= PART_MAX_CHUNKS).then(|| self.take())
    }

    /// The last, partial part, if any chunk is left.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        (!self.part.chunks.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        // At most 256 chunks of a few hundred bytes each.
        codec::encode(&std::mem::take(&mut self.part)).expect("a sketch part encodes")
    }
}

/// The previous version of a stream, as base selection needs it: its chunks
/// in order, and every anchor with the chunk (by position) that holds it.
#[derive(Debug, Default)]
pub struct PrevVersion {
    chunks: Vec<(BlobId, u32)>,
    /// (anchor, chunk position), sorted.
    anchors: Vec<(u32, u32)>,
}

impl PrevVersion {
    /// Builds the lookup from a version's chunks, in order.
    pub fn from_chunks(
        chunks: impl IntoIterator<Item = impl std::borrow::Borrow<ChunkSketch>>,
    ) -> Self {
        let mut v = PrevVersion::default();
        for c in chunks {
            let c = c.borrow();
            let n = v.chunks.len() as u32;
            v.anchors.extend(c.anchors.iter().map(|&a| (a, n)));
            v.chunks.push((c.id, c.size));
        }
        v.anchors.sort_unstable();
        v.anchors.shrink_to_fit();
        v
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// True for an empty version.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The chunk at a position: its id and length.
    pub fn chunk(&self, n: u32) -> (BlobId, u32) {
        self.chunks[n as usize]
    }

    /// Positions of the chunks holding `anchor`.
    pub fn holders(&self, anchor: u32) -> impl Iterator<Item = u32> + '_ {
        let start = self.anchors.partition_point(|&(a, _)| a < anchor);
        self.anchors[start..]
            .iter()
            .take_while(move |&&(a, _)| a == anchor)
            .map(|&(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: u8, anchors: &[u32]) -> ChunkSketch {
        let mut id = [n; 32];
        id[30] = n.wrapping_mul(3) | 1;
        ChunkSketch {
            id: BlobId(id),
            size: 100 + n as u32,
            anchors: anchors.to_vec(),
            marks: vec![],
        }
    }

    #[test]
    fn parts_are_cut_by_content_and_read_back_in_order() {
        let mut b = SketchBuilder::default();
        let mut parts = Vec::new();
        for n in 0..40u8 {
            let mut c = chunk(n, &[n as u32 * 10, 7]);
            if n == 9 {
                c.id.0[30] = 32; // a multiple of PART_CUT: the part ends here
            }
            if let Some(p) = b.push(c) {
                parts.push(p);
            }
        }
        parts.extend(b.finish());
        assert_eq!(parts.len(), 2);
        let decoded: Vec<SketchPart> = parts
            .iter()
            .map(|p| SketchPart::decode(p).unwrap())
            .collect();
        assert_eq!(decoded[0].chunks.len(), 10);
        let v = PrevVersion::from_chunks(decoded.into_iter().flat_map(|p| p.chunks));
        assert_eq!(v.len(), 40);
        assert_eq!(v.chunk(12).1, 112);
        assert_eq!(v.holders(120).collect::<Vec<_>>(), vec![12]);
        assert_eq!(v.holders(7).count(), 40);
        assert_eq!(v.holders(3).count(), 0);
        assert!(SketchPart::decode(&parts[0][..5]).is_err());
    }
}
