//! Reading delta bases ahead into local blob copies. When the bases of a
//! pack are wanted in pack order (a day on which most chunks changed needs
//! the previous version's chunk at each place), one ranged GET fetches a run
//! of them, which is kept in the local copies; the run doubles while the
//! order holds, up to [`MAX_READ_AHEAD`] blobs. On a few scattered changes
//! it stays at one blob, so nothing unwanted is downloaded. A base inside a
//! read still in flight waits for that read instead of fetching its bytes a
//! second time. State is per pack: decoding a delta base reads that base's
//! own bases from another pack in between.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::blobs::PackRead;
use crate::index::{BlobLocation, BlobMap};
use crate::pack::{BlobEntry, BlobKind};

/// Most blobs fetched with one base.
pub(super) const MAX_READ_AHEAD: usize = 32;

/// Bytes between two base reads of a pack that still count as reading it
/// in order.
const IN_ORDER_GAP: u64 = 4 * 1024 * 1024;

/// Packs whose state (and blob listing) is kept.
const PACKS_KEPT: usize = 64;

/// What to do for a base that is not in the local copies.
pub(super) enum Plan {
    /// Fetch this read, keep its blobs as copies, then send `true`.
    Fetch(PackRead, watch::Sender<bool>),
    /// A read in flight covers the base: wait for it (an error ends the
    /// wait with the sender dropped), then look in the copies again.
    Wait(watch::Receiver<bool>),
}

/// How the next read of a pack relates to the runs read so far.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Inside the last run, which is still in flight.
    Inside,
    /// Blobs to fetch.
    Read(usize),
}

/// The run length for a read at `start`, after a last run `last` (start,
/// end) read with `span` blobs.
fn step(last: Option<(u64, u64)>, span: usize, start: u64) -> Step {
    let Some((first, end)) = last else {
        return Step::Read(1);
    };
    if start >= end && start - end <= IN_ORDER_GAP {
        Step::Read((span * 2).clamp(1, MAX_READ_AHEAD))
    } else if start >= first && start < end {
        Step::Inside
    } else if start < first && first - start <= IN_ORDER_GAP {
        // Slightly behind (another worker's base): the run holds.
        Step::Read(span.max(1))
    } else {
        Step::Read(1)
    }
}

/// The read-ahead state of one reader.
#[derive(Default)]
pub(super) struct ReadAhead {
    packs: HashMap<u32, PackState>,
}

struct PackState {
    last: Option<(u64, u64)>,
    span: usize,
    /// Reads in flight: range, and the channel that says it is done.
    in_flight: Vec<(u64, u64, watch::Receiver<bool>)>,
    /// The pack's data blobs, in pack order.
    listing: Arc<Vec<BlobEntry>>,
}

impl ReadAhead {
    /// The plan for base `loc`, not in the copies; `copied` says whether the
    /// blob at an offset of its pack is.
    pub fn plan(
        &mut self,
        index: &BlobMap,
        loc: &BlobLocation,
        copied: impl Fn(u64) -> bool,
    ) -> Plan {
        if self.packs.len() >= PACKS_KEPT && !self.packs.contains_key(&loc.pack) {
            self.packs.clear();
        }
        let p = self.packs.entry(loc.pack).or_insert_with(|| {
            let data = BlobKind::Data as u8;
            let mut listing = index.blobs_in(loc.pack);
            listing.retain(|b| b.kind == data);
            PackState {
                last: None,
                span: 0,
                in_flight: Vec::new(),
                listing: Arc::new(listing),
            }
        });
        p.in_flight
            .retain(|(_, _, rx)| !*rx.borrow() && rx.has_changed().is_ok());
        let start = loc.entry.range().start;
        if let Some((_, _, rx)) = p
            .in_flight
            .iter()
            .find(|(s, e, _)| (*s..*e).contains(&start))
        {
            return Plan::Wait(rx.clone());
        }
        let span = match step(p.last, p.span, start) {
            // The run it was in has arrived, yet the blob is not in the
            // copies (not written, or dropped): fetch it alone.
            Step::Inside => 1,
            Step::Read(n) => {
                p.span = n;
                n
            }
        };
        let mut read = PackRead::of(loc);
        let at = p.listing.partition_point(|b| (b.offset as u64) <= start);
        for b in p.listing.iter().skip(at).take(span - 1) {
            let next = BlobLocation {
                pack: loc.pack,
                entry: *b,
            };
            if next.entry.range().start != read.end || copied(read.end) {
                break;
            }
            read.try_extend(&next);
        }
        if p.last.is_none_or(|(_, e)| read.end > e) {
            p.last = Some((read.start, read.end));
        }
        let (tx, rx) = watch::channel(false);
        p.in_flight.push((read.start, read.end, rx));
        Plan::Fetch(read, tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_grow_while_reads_follow_each_other_and_reset_on_a_jump() {
        let mut span = 0;
        let mut last = None;
        let mut spans = Vec::new();
        let mut at = 0u64;
        for _ in 0..7 {
            let Step::Read(n) = step(last, span, at) else {
                panic!("in order")
            };
            span = n;
            spans.push(n);
            last = Some((at, at + n as u64 * 100));
            at += n as u64 * 100;
        }
        assert_eq!(spans, [1, 2, 4, 8, 16, 32, 32]);
        // A jump far ahead, or back, starts again at one blob.
        assert_eq!(step(last, span, at + 100 * 1024 * 1024), Step::Read(1));
        assert_eq!(step(Some((500 << 20, 501 << 20)), 8, 0), Step::Read(1));
        // A little behind: the run holds; inside the last run: wait for it.
        assert_eq!(step(Some((1000, 2000)), 8, 900), Step::Read(8));
        assert_eq!(step(Some((1000, 2000)), 8, 1500), Step::Inside);
    }
}
