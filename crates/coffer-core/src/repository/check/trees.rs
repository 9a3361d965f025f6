//! Check's walks over a snapshot's trees. The first walk reports every
//! problem of the trees themselves (a node that cannot be read, a level or
//! size that disagrees) and collects each chunk as a key with its length
//! ([`key_with_length`]), checked later against the index in one sorted
//! pass ([`super::chunks`]). Only when that pass finds chunks in trouble
//! does a second walk look those chunks up one by one to report each with
//! its snapshot and stream, as the user needs to read it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{CheckReport, MISSING_REPORTED};
use crate::backend::{object_path, Kind};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::BlobLocation;
use crate::pack::BlobKind;
use crate::repository::blobs::{BlobReader, MAX_CHAIN_READ};
use crate::repository::used_keys::{key_with_length, UsedKeys};
use crate::snapshot::Snapshot;
use crate::tree::{Step, TreeEntry, TreeWalker};

/// What a walk does with the chunks it meets.
pub(super) enum Chunks<'a> {
    /// First walk: collect every chunk's key, check none; report the
    /// trees' own problems.
    Collect(&'a mut UsedKeys),
    /// Second walk: look up the chunks whose key is here and report what
    /// is wrong with them; the trees' problems were reported already.
    Name(&'a HashSet<u64>),
}

impl Chunks<'_> {
    fn reports_trees(&self) -> bool {
        matches!(self, Chunks::Collect(_))
    }
}

/// Leaf nodes (level 0, by id and leaf kind) walked already, with the
/// bytes they cover: another snapshot that lists one is not walked chunk
/// by chunk again. In the second walk only nodes whose chunks all checked
/// out are here, so every snapshot that lists a damaged node reports it.
type DoneNodes = HashMap<(BlobId, BlobKind), u64>;

/// Walks every stream of every snapshot (and each stream's sketch), each
/// leaf node once or, in the second walk, once if its chunks check out:
/// see the module documentation. `gone` lists the pack numbers storage
/// lacks.
pub(super) async fn walk_snapshots(
    reader: &BlobReader,
    gone: &HashSet<u32>,
    snapshots: &[(String, Snapshot)],
    mut chunks: Chunks<'_>,
    report: &mut CheckReport,
) -> Result<()> {
    let mut done = DoneNodes::default();
    for (id, snap) in snapshots {
        walk_snapshot(reader, gone, (id, snap), &mut chunks, &mut done, report).await?;
    }
    Ok(())
}

/// Walks every stream of one snapshot.
async fn walk_snapshot(
    reader: &BlobReader,
    gone: &HashSet<u32>,
    (id, snap): (&str, &Snapshot),
    chunks: &mut Chunks<'_>,
    done: &mut DoneNodes,
    report: &mut CheckReport,
) -> Result<()> {
    let object = object_path(Kind::Snapshot, id);
    let mut whole = HashSet::new();
    for stream in &snap.streams {
        let label = format!("stream {:?}", stream.name);
        let root = (stream.root_entry(), BlobKind::Data);
        let walk = TreeCheck {
            reader,
            gone,
            at: (&object, &label),
        };
        walk.run(root, chunks, &mut whole, done, report).await?;
        if let Some(sketch) = stream.sketch {
            let label = format!("the sketch of stream {:?}", stream.name);
            let walk = TreeCheck {
                at: (&object, &label),
                ..walk
            };
            walk.run((sketch, BlobKind::Sketch), chunks, &mut whole, done, report)
                .await?;
        }
    }
    Ok(())
}

/// Where a tree check reads and reports.
#[derive(Clone, Copy)]
struct TreeCheck<'a> {
    reader: &'a BlobReader,
    gone: &'a HashSet<u32>,
    /// The snapshot object and the tree's label in it.
    at: (&'a str, &'a str),
}

/// Why the delta chain below a chunk cannot be decoded, if it cannot: a
/// base not indexed as data, or a chain too long (a cycle). Index only.
pub(super) fn chain_problem(reader: &BlobReader, loc: &BlobLocation) -> Option<String> {
    let mut pending = vec![(*loc, 0u32)];
    while let Some((loc, depth)) = pending.pop() {
        let Some(bases) = reader.index().bases(&loc) else {
            continue;
        };
        if depth >= MAX_CHAIN_READ {
            return Some(format!(
                "delta blob {}: its chain is longer than {MAX_CHAIN_READ}",
                loc.entry.id
            ));
        }
        for b in bases {
            match reader.index().get(BlobKind::Data, &b) {
                Some(base) => pending.push((base, depth + 1)),
                None => {
                    return Some(format!(
                        "delta blob {}: its base {b} is not indexed",
                        loc.entry.id
                    ))
                }
            }
        }
    }
    None
}

/// What one tree walk found wrong with its chunks.
#[derive(Default)]
struct ChunkTally {
    /// Chunks not indexed as the tree says (or whose chain is broken).
    missing: usize,
    /// Chunks per pack that storage lacks.
    lost: BTreeMap<u32, u64>,
}

impl ChunkTally {
    fn problems(&self) -> usize {
        self.missing + self.lost.values().sum::<u64>() as usize
    }
}

impl TreeCheck<'_> {
    /// Walks one tree (a stream's chunks, or its sketch's parts, whose
    /// kind is `leaf`): nodes must load and agree; the chunks go to
    /// `chunks`. Leaf nodes in `done` are passed over; those walked are
    /// added (in the second walk, only those whose chunks checked out).
    async fn run(
        self,
        (root, leaf): (TreeEntry, BlobKind),
        chunks: &mut Chunks<'_>,
        whole: &mut HashSet<u32>,
        done: &mut DoneNodes,
        report: &mut CheckReport,
    ) -> Result<()> {
        let (reader, (object, label)) = (self.reader, self.at);
        let trees = chunks.reports_trees();
        let mut walker = TreeWalker::new(root);
        let mut bytes = 0u64;
        let mut tally = ChunkTally::default();
        // The leaf node being walked: its entry, and the problems counted
        // before it.
        let mut in_leaf: Option<(TreeEntry, usize)> = None;
        loop {
            let step = walker.next_step();
            if !matches!(step, Step::Chunk(_)) {
                // A leaf node's chunks come one after another: it is done.
                if let Some((entry, before)) = in_leaf.take() {
                    if tally.problems() == before {
                        done.insert((entry.id, leaf), entry.size);
                    }
                }
            }
            match step {
                Step::Need(node_id) => {
                    let (entry, level) = walker.needed().expect("a node is needed");
                    if level == Some(0) && done.get(&(entry.id, leaf)) == Some(&entry.size) {
                        walker.skip();
                        bytes += entry.size;
                        continue;
                    }
                    let node = match reader.load_nodes(&[node_id], whole).await {
                        Ok(mut nodes) => nodes.remove(&node_id),
                        Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
                            if trees {
                                report.error_from(&e);
                            }
                            None
                        }
                        Err(e) => return Err(e),
                    };
                    let Some(node) = node else {
                        if trees {
                            report.error(
                                object,
                                format!("{label}: tree node {node_id} cannot be read"),
                            );
                        }
                        break;
                    };
                    let is_leaf = node.level == 0;
                    if let Err(reason) = walker.provide(node) {
                        if trees {
                            report.error(object, format!("{label}: {reason}"));
                        }
                        break;
                    }
                    if is_leaf && level.is_some() {
                        in_leaf = Some((entry, tally.problems()));
                    }
                }
                Step::Chunk(chunk) => {
                    bytes += chunk.size;
                    let key = key_with_length(leaf as u8, &chunk.id, chunk.size);
                    match chunks {
                        Chunks::Collect(used) => used.insert_key(key),
                        Chunks::Name(bad) if bad.contains(&key) => {
                            self.name(&chunk, leaf, &mut tally, report)?
                        }
                        Chunks::Name(_) => {}
                    }
                }
                Step::Done => {
                    if trees && bytes != root.size {
                        report.error(
                            object,
                            format!(
                                "{label}: tree covers {bytes} bytes, snapshot says {}",
                                root.size
                            ),
                        );
                    }
                    break;
                }
            }
        }
        for (pack, chunks) in tally.lost {
            report.error(
                object,
                format!(
                    "{label}: {chunks} data blobs are in {}, which is missing",
                    reader.pack_path(pack)
                ),
            );
        }
        if tally.missing > MISSING_REPORTED {
            report.error(
                object,
                format!(
                    "{label}: {} more data blobs are not indexed as the tree says",
                    tally.missing - MISSING_REPORTED
                ),
            );
        }
        Ok(())
    }

    /// Looks one chunk up and counts (and, for the first few, reports) what
    /// is wrong with it: not indexed as the tree says, in a pack storage
    /// lacks, or a delta whose chain cannot be decoded.
    fn name(
        self,
        chunk: &TreeEntry,
        leaf: BlobKind,
        tally: &mut ChunkTally,
        report: &mut CheckReport,
    ) -> Result<()> {
        let (object, label) = self.at;
        let problem = match self.reader.locate(&chunk.id, leaf, Some(chunk.size)) {
            Ok(loc) if self.gone.contains(&loc.pack) => {
                *tally.lost.entry(loc.pack).or_default() += 1;
                None
            }
            Ok(loc) => chain_problem(self.reader, &loc),
            Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => Some(e.to_string()),
            Err(e) => return Err(e),
        };
        if let Some(problem) = problem {
            tally.missing += 1;
            if tally.missing <= MISSING_REPORTED {
                report.error(object, format!("{label}: {problem}"));
            }
        }
        Ok(())
    }
}
