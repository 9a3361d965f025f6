//! Restore's reads of delta bases, planned per window: the bases of a
//! window's deltas, down every chain, that the local blob copies lack are
//! fetched into the copies before the window is decoded, one ranged GET per
//! pack range, so decoding finds them on local disk. Without planning, an
//! old day's chunks (deltas of deltas, down to the last whole version) had
//! their bases read as decoding asked, a few at a time. Only with blob
//! copies (a remote store and a cache); without them, bases are read as
//! decoding needs them ([`super::blobs::BlobReader::base_plaintext`]).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::blobs::{push_read, BlobReader, Cutter, PackRead, MAX_CHAIN_READ};
use super::blocking;
use crate::compress::Encoding;
use crate::error::Result;
use crate::index::BlobLocation;
use crate::pack::BlobKind;

/// Sealed bytes of bases one window plans at most. They go to disk, not
/// memory; what a longer chain needs beyond this is read as decoding asks.
const WINDOW_BASE_BYTES: u64 = 64 * 1024 * 1024;

/// Sealed bytes cut from a base read before they are written as copies.
const PUT_BATCH: usize = 1024 * 1024;

/// The reads that fetch the bases of `chunks`' deltas, down every chain,
/// that neither the copies hold nor an earlier window planned (`planned`,
/// by pack and offset, is updated): coalesced per pack range, in pack
/// order. None without blob copies.
pub(super) fn plan(
    reader: &BlobReader,
    chunks: &[BlobLocation],
    planned: &mut HashSet<(u32, u32)>,
) -> Vec<Arc<PackRead>> {
    let Some(copies) = reader.copies() else {
        return Vec::new();
    };
    let index = reader.index();
    let is_delta = |l: &BlobLocation| l.entry.encoding == Encoding::Delta as u8;
    let mut todo: Vec<(BlobLocation, u32)> = chunks
        .iter()
        .filter(|l| is_delta(l))
        .map(|l| (*l, 0))
        .collect();
    let (mut wanted, mut bytes) = (Vec::new(), 0u64);
    while let Some((loc, depth)) = todo.pop() {
        // Decoding reports a chain too long, or a base not indexed.
        if depth >= MAX_CHAIN_READ {
            continue;
        }
        for id in index.bases(&loc).unwrap_or_default() {
            let Some(base) = index.get(BlobKind::Data, &id) else {
                continue;
            };
            if !planned.insert((base.pack, base.entry.offset)) {
                continue;
            }
            if is_delta(&base) {
                todo.push((base, depth + 1));
            }
            let pack = index.pack(base.pack).id;
            if bytes < WINDOW_BASE_BYTES && !copies.has(&pack, base.entry.range().start) {
                bytes += base.entry.length as u64;
                wanted.push(base);
            }
        }
    }
    wanted.sort_by_key(|l| (l.pack, l.entry.offset));
    let mut reads = Vec::new();
    for loc in &wanted {
        push_read(&mut reads, loc);
    }
    reads.into_iter().map(Arc::new).collect()
}

/// Fetches one planned read and keeps each of its blobs as a local copy as
/// it arrives (copies are opened and verified like pack bytes when used).
pub(super) async fn fetch(reader: BlobReader, read: Arc<PackRead>) -> Result<()> {
    let Some(copies) = reader.copies().cloned() else {
        return Ok(());
    };
    let path = reader.pack_path(read.pack);
    let pack = reader.index().pack(read.pack).id;
    let mut body = reader
        .backend()
        .get_range_stream(&path, read.start..read.end)
        .await?;
    let mut offsets = read.blobs.iter().map(|e| e.range().start);
    let mut cutter = Cutter::new(read.clone());
    let mut batch: Vec<(u64, Bytes)> = Vec::new();
    let mut batch_bytes = 0;
    loop {
        let piece = body.next().await.transpose()?;
        for blob in piece.as_deref().map(|p| cutter.feed(p)).unwrap_or_default() {
            batch_bytes += blob.len();
            batch.push((offsets.next().expect("one offset a blob"), blob));
        }
        if batch_bytes >= PUT_BATCH || (piece.is_none() && !batch.is_empty()) {
            let (c, put) = (copies.clone(), std::mem::take(&mut batch));
            batch_bytes = 0;
            blocking(move || {
                for (offset, sealed) in put {
                    c.put(&pack, offset, &sealed);
                }
            })
            .await;
        }
        if piece.is_none() {
            break;
        }
    }
    cutter.finish(&path)
}
