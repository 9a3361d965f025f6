//! Re-basing: which blobs prune re-encodes so that the newest version of a
//! stream is stored whole and each older kept version as deltas against the
//! next newer one. A backup stores forward deltas (today against
//! yesterday: a small upload); left alone, those chains grow a day deeper
//! each day and every chain's first, whole copy stays. Turned around, the
//! newest version restores at full speed and a stream's history costs one
//! whole copy plus a delta per kept version.
//!
//! A pure function of the kept versions' sketches and of how each blob is
//! stored now; prune carries the decisions out. A blob's *home* is the
//! newest version that holds it. Blobs at home in the newest version should
//! be whole; blobs at home in an older version should be deltas against
//! chunks of the next newer version (chosen by anchors, like a backup's),
//! except every [`MAX_REVERSE_DEPTH`]-th version back, which is kept whole
//! so that chains stay short enough to read. Bases always lie in newer
//! versions, so no cycle can form.

use std::collections::HashSet;

use super::select;
use super::sketch::{ChunkSketch, PrevVersion};
use crate::id::BlobId;

/// Versions back from the newest after which one is kept whole: chains of
/// reverse deltas stay well within what readers follow (64).
pub const MAX_REVERSE_DEPTH: usize = 48;

/// How a blob is stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Whole (raw or compressed).
    Whole,
    /// A delta against these bases.
    Delta(Vec<BlobId>),
}

/// One re-encoding to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebase {
    /// Store the blob whole.
    Whole(BlobId),
    /// Store the blob as a delta against these bases when that pays; else
    /// whole if it is a delta now, else leave it.
    Against {
        /// The blob.
        id: BlobId,
        /// Its new bases, chunks of the next newer version.
        bases: Vec<BlobId>,
    },
}

/// The re-encodings that turn the chains of one stream around. `versions`
/// are its kept versions, oldest first, each its chunks in stream order;
/// `stored` says how a blob is stored now (`None`: not indexed, left
/// alone). Newest version first, in stream order.
pub fn plan(
    versions: &[Vec<ChunkSketch>],
    stored: impl Fn(&BlobId) -> Option<Stored>,
) -> Vec<Rebase> {
    let mut out = Vec::new();
    let mut homed: HashSet<BlobId> = HashSet::new();
    let newest = versions.len().saturating_sub(1);
    for (k, version) in versions.iter().enumerate().rev() {
        let back = newest - k;
        let keyframe = back % MAX_REVERSE_DEPTH == 0;
        let next = (!keyframe).then(|| {
            let newer = &versions[k + 1];
            let ids: HashSet<BlobId> = newer.iter().map(|c| c.id).collect();
            (PrevVersion::from_chunks(newer), ids)
        });
        let mut after = None;
        for c in version {
            if !homed.insert(c.id) {
                continue;
            }
            let Some(now) = stored(&c.id) else {
                continue;
            };
            let Some((next, next_ids)) = &next else {
                if now != Stored::Whole {
                    out.push(Rebase::Whole(c.id));
                }
                continue;
            };
            if let Stored::Delta(bases) = &now {
                if bases.iter().all(|b| next_ids.contains(b)) {
                    continue; // already against the next newer version
                }
            }
            match select::choose(next, &c.anchors, after) {
                Some(choice) => {
                    after = Some(choice.best);
                    let bases = choice.bases.iter().map(|&n| next.chunk(n).0).collect();
                    out.push(Rebase::Against { id: c.id, bases });
                }
                None if now != Stored::Whole => out.push(Rebase::Whole(c.id)),
                None => {}
            }
        }
    }
    out
}

/// How many of `plan`'s decisions make blobs whole, and how many try deltas.
pub fn counts(plan: &[Rebase]) -> (u64, u64) {
    let whole = plan
        .iter()
        .filter(|r| matches!(r, Rebase::Whole(_)))
        .count() as u64;
    (whole, plan.len() as u64 - whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The blobs of a plan mapped to their new bases.
    fn new_bases(plan: &[Rebase]) -> HashMap<BlobId, Vec<BlobId>> {
        plan.iter()
            .filter_map(|r| match r {
                Rebase::Against { id, bases } => Some((*id, bases.clone())),
                Rebase::Whole(_) => None,
            })
            .collect()
    }

    fn id(v: u8, n: u8) -> BlobId {
        let mut b = [0u8; 32];
        (b[0], b[1]) = (v, n);
        BlobId(b)
    }

    /// Version and chunk number of an id made by [`id`].
    fn vn(b: &BlobId) -> (u8, u8) {
        (b.0[0], b.0[1])
    }

    /// Version `v`: chunks n = 0..4, each with anchors 10n, 10n+1 (the same
    /// rows in every version); `same` lists chunks unchanged since v-1.
    fn version(v: u8, same: &[u8]) -> Vec<ChunkSketch> {
        (0..4u8)
            .map(|n| ChunkSketch {
                id: if same.contains(&n) {
                    id(v - 1, n)
                } else {
                    id(v, n)
                },
                size: 100,
                anchors: vec![10 * n as u32, 10 * n as u32 + 1],
                marks: vec![],
            })
            .collect()
    }

    #[test]
    fn forward_chains_are_turned_around() {
        // Three days; each backup stored its chunks as deltas against the
        // day before, day 0 whole; chunk 3 never changed after day 1.
        let versions = vec![version(1, &[]), version(2, &[3]), version(3, &[])];
        let stored = |b: &BlobId| {
            let (v, n) = vn(b);
            Some(if v == 1 {
                Stored::Whole
            } else {
                Stored::Delta(vec![id(v - 1, n)])
            })
        };
        let plan = plan(&versions, stored);
        // The newest whole; each older chunk against the next day's.
        let whole: Vec<BlobId> = plan
            .iter()
            .filter_map(|r| match r {
                Rebase::Whole(b) => Some(*b),
                _ => None,
            })
            .collect();
        assert_eq!(whole, (0..4).map(|n| id(3, n)).collect::<Vec<_>>());
        let against = new_bases(&plan);
        // (Each chunk's anchors are only its own rows: one base each.)
        assert_eq!(against[&id(2, 0)], vec![id(3, 0)]);
        assert_eq!(against[&id(1, 2)], vec![id(2, 2)]);
        // Chunk 3 of day 1 is at home in day 2 (unchanged there): against
        // day 3's chunk 3 now.
        assert_eq!(against[&id(1, 3)], vec![id(3, 3)]);
        assert_eq!(counts(&plan), (4, 7));
        // Every new base is at home in a newer version: no cycle.
        let home = |b: &BlobId| versions.iter().rposition(|v| v.iter().any(|c| c.id == *b));
        for (b, bases) in &against {
            assert!(bases.iter().all(|x| home(x) > home(b)), "{b:?}");
        }
    }

    #[test]
    fn a_turned_chain_is_left_alone_and_a_single_version_is_made_whole() {
        let versions = vec![version(1, &[]), version(2, &[])];
        let turned = |b: &BlobId| {
            let (v, n) = vn(b);
            Some(if v == 2 {
                Stored::Whole
            } else {
                Stored::Delta(vec![id(2, n)])
            })
        };
        assert!(plan(&versions, turned).is_empty());
        let forward = |b: &BlobId| Some(Stored::Delta(vec![id(0, vn(b).1)]));
        let plan1 = plan(&versions[1..], forward);
        assert_eq!(counts(&plan1), (4, 0));
        // Not indexed: left alone.
        assert!(plan(&versions, |_| None).is_empty());
    }

    #[test]
    fn every_max_reverse_depth_th_version_back_stays_whole() {
        let n = MAX_REVERSE_DEPTH + 2;
        let versions: Vec<Vec<ChunkSketch>> = (1..=n as u8).map(|v| version(v, &[])).collect();
        let plan = plan(&versions, |_| Some(Stored::Whole));
        let against = new_bases(&plan);
        // The version MAX_REVERSE_DEPTH back from the newest is a keyframe.
        let keyframe = (n - 1 - MAX_REVERSE_DEPTH) as u8 + 1;
        assert!(!against.contains_key(&id(keyframe, 0)));
        assert!(against.contains_key(&id(keyframe + 1, 0)));
        assert!(against.contains_key(&id(keyframe - 1, 0)));
    }
}
