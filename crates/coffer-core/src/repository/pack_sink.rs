//! Filling packs: the one place that keeps a data pack and a tree pack open,
//! seals blobs into the one of their kind, and hands over a pack when it
//! reaches the repository's pack size. Backup's packer and prune's repack
//! both write through it; what happens to a full pack (queued for upload, or
//! uploaded at once) is theirs to decide. Data packs spool to files in the
//! cache directory when there is one, so a pack waiting for its upload
//! holds no memory.

use std::path::PathBuf;
use std::sync::Arc;

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::pack::{BlobKind, EncodedBlob, FinishedPack, PackWriter};

/// Room reserved beyond the target size, so the blob that fills a pack
/// (at most one maximum-size chunk) never makes its buffer grow.
const PACK_SLACK: usize = 1024 * 1024;

/// First buffer of a tree pack.
const TREE_PACK_START: usize = 256 * 1024;

/// The open packs of one writer.
pub(super) struct PackSink {
    key: Arc<MasterKey>,
    pack_size: usize,
    /// Data packs, and tree packs (tree nodes and sketch parts: the
    /// metadata a command reads before any data).
    open: [Option<PackWriter>; 2],
    /// Where data packs spool as they are written (none: in memory).
    spool: Option<PathBuf>,
}

impl PackSink {
    /// A sink shipping packs of about `pack_size` bytes, built in memory.
    pub fn new(key: Arc<MasterKey>, pack_size: usize) -> Self {
        PackSink {
            key,
            pack_size,
            open: [None, None],
            spool: None,
        }
    }

    /// Data packs are written to unnamed files in `dir` as they fill,
    /// instead of held in memory until uploaded (tree packs, small, stay in
    /// memory).
    pub fn spooling_to(mut self, dir: Option<PathBuf>) -> Self {
        self.spool = dir;
        self
    }

    /// Seals one encoded blob into the open pack of its kind. Returns its
    /// sealed length and, when that pack is now full, the finished pack to
    /// ship.
    pub fn add(&mut self, blob: EncodedBlob<'_>) -> Result<(u32, Option<FinishedPack>)> {
        let data = blob.kind == BlobKind::Data;
        let slot = &mut self.open[usize::from(!data)];
        if slot.is_none() {
            *slot = Some(match (&self.spool, data) {
                (Some(dir), true) => PackWriter::spooled(&self.key, dir).map_err(Error::Spool)?,
                // Tree packs stay small (one per backup, usually): their
                // buffer grows as needed instead of reserving a data pack's
                // size.
                (None, true) => PackWriter::new(&self.key, self.pack_size + PACK_SLACK),
                (_, false) => PackWriter::new(&self.key, TREE_PACK_START),
            });
        }
        let w = slot.as_mut().expect("just opened");
        let sealed = w.add(blob).map_err(Error::Spool)?;
        let full = if w.is_full(self.pack_size) {
            Some(finish(slot.take().expect("just used"))?)
        } else {
            None
        };
        Ok((sealed, full))
    }

    /// The packs still open (each holds at least one blob), finished, to
    /// ship at the end; the sink is empty afterwards.
    pub fn take_open(&mut self) -> Result<Vec<FinishedPack>> {
        self.open
            .iter_mut()
            .filter_map(Option::take)
            .map(finish)
            .collect()
    }
}

fn finish(w: PackWriter) -> Result<FinishedPack> {
    w.finish().map_err(Error::Spool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Encoding;
    use crate::id::BlobId;
    use crate::pack::BlobKind;

    fn raw(kind: BlobKind, id: BlobId, payload: &[u8]) -> EncodedBlob<'_> {
        EncodedBlob {
            bases: &[],
            kind,
            id,
            encoding: Encoding::Raw,
            payload,
            raw_len: payload.len() as u32,
        }
    }

    #[test]
    fn kinds_go_to_their_own_packs_which_ship_when_full() {
        let key = Arc::new(MasterKey::generate());
        let mut sink = PackSink::new(key, 900);
        let blob = |n: u8| (BlobId([n; 32]), vec![n; 300]);
        let mut shipped = Vec::new();
        for n in 0..4 {
            let (id, payload) = blob(n);
            let (sealed, full) = sink.add(raw(BlobKind::Data, id, &payload)).unwrap();
            assert_eq!(sealed, 316);
            shipped.extend(full);
            if n < 2 {
                let (id, payload) = blob(100 + n);
                let (_, full) = sink.add(raw(BlobKind::Tree, id, &payload)).unwrap();
                assert!(full.is_none(), "a tree pack of {} blobs shipped", n + 1);
            }
        }
        // 37 + 3 x 316 >= 900: the data pack shipped after its third blob.
        assert_eq!(shipped.len(), 1);
        let shipped = shipped.pop().unwrap();
        assert!(shipped.blobs.iter().all(|b| b.kind == BlobKind::Data as u8));
        assert_eq!(shipped.blobs.len(), 3);
        let rest = sink.take_open().unwrap();
        let kinds: Vec<(u8, usize)> = rest
            .iter()
            .map(|p| (p.blobs[0].kind, p.blobs.len()))
            .collect();
        assert_eq!(
            kinds,
            [(BlobKind::Data as u8, 1), (BlobKind::Tree as u8, 2)]
        );
        assert!(rest[1].blobs.iter().all(|b| b.kind == BlobKind::Tree as u8));
        assert!(sink.take_open().unwrap().is_empty());
    }
}
