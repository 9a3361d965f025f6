//! `check`: verifies a repository and reports every problem with the object
//! it concerns, never stopping at the first. Structure: every index and
//! snapshot object opens, every indexed pack exists with the indexed size,
//! every snapshot's tree (and sketch) resolves and every chunk it lists is
//! indexed, down to the bases of deltas. With `read_data`, packs are
//! downloaded and every blob in them is opened (hash of the pack, AEAD,
//! length, keyed MAC; a delta decoded against its bases) and compared with
//! the index.
//! Reading only: check never changes the repository, and it reads storage,
//! never the local cache.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;

use super::blobs::{open_in, BlobReader, Opened, MAX_CHAIN_READ};
use super::index_files::Walk;
use super::{blocking, Repository};
use crate::backend::{object_path, Kind};
use crate::error::{Error, Result};
use crate::id::{content_hash, BlobId, PackId};
use crate::index::{BlobLocation, BlobMap, IndexedPack};
use crate::pack::{self, BlobKind};
use crate::snapshot::Snapshot;
use crate::tree::{Step, TreeEntry, TreeWalker};

/// Which packs `check` downloads and verifies blob by blob.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// None: structure only.
    None,
    /// Every pack.
    All,
    /// A random fraction (0..=1) of the packs.
    Fraction(f64),
    /// Bucket `n` of `t` (1-based), chosen by the pack id's first byte, so
    /// that `1/7` ... `7/7` on seven days together read everything.
    Bucket {
        /// This bucket, 1..=t.
        n: u32,
        /// Number of buckets.
        t: u32,
    },
    /// Packs chosen at random until they hold this many bytes (or all).
    Bytes(u64),
}

impl ReadData {
    /// Parses `--read-data-subset`: `10%` or `n/t`.
    pub fn parse_subset(s: &str) -> Option<Self> {
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().ok()?;
            return (p > 0.0 && p <= 100.0).then_some(ReadData::Fraction(p / 100.0));
        }
        if !s.contains('/') {
            let bytes = crate::units::parse_size(s)?;
            return (bytes > 0).then_some(ReadData::Bytes(bytes));
        }
        let (n, t) = s.split_once('/')?;
        let (n, t): (u32, u32) = (n.trim().parse().ok()?, t.trim().parse().ok()?);
        (t >= 1 && (1..=t).contains(&n)).then_some(ReadData::Bucket { n, t })
    }

    /// The packs of `packs` (id and size) to read, in the given order.
    fn choose<T>(&self, packs: Vec<T>, id_size: impl Fn(&T) -> (PackId, u64)) -> Vec<T> {
        let ReadData::Bytes(wanted) = *self else {
            return packs
                .into_iter()
                .filter(|p| self.selects(&id_size(p).0))
                .collect();
        };
        let mut shuffled: Vec<(u64, T)> = packs
            .into_iter()
            .map(|p| (u64::from_le_bytes(crate::crypto::random_bytes()), p))
            .collect();
        shuffled.sort_unstable_by_key(|(r, _)| *r);
        let mut total = 0;
        shuffled
            .into_iter()
            .map(|(_, p)| p)
            .take_while(|p| {
                let more = total < wanted;
                total += id_size(p).1;
                more
            })
            .collect()
    }

    fn selects(&self, id: &PackId) -> bool {
        match *self {
            ReadData::None => false,
            ReadData::All | ReadData::Bytes(_) => true,
            ReadData::Fraction(f) => {
                let r = u64::from_le_bytes(crate::crypto::random_bytes());
                (r as f64 / u64::MAX as f64) < f
            }
            ReadData::Bucket { n, t } => u32::from(id.0[0]) % t == n - 1,
        }
    }
}

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Packs to download and verify.
    pub read_data: ReadData,
}

/// One finding, with the object it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Repository path or blob id.
    pub object: String,
    /// What is wrong.
    pub message: String,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Damage: missing or corrupt objects, unresolvable snapshots.
    pub errors: Vec<Problem>,
    /// Harmless leftovers (packs no index names, from interrupted backups).
    pub notes: Vec<Problem>,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Packs downloaded and verified.
    pub packs_read: usize,
    /// Blobs opened while reading packs.
    pub blobs_read: u64,
}

impl CheckReport {
    fn error(&mut self, object: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem {
            object: object.into(),
            message: message.into(),
        });
    }

    fn error_from(&mut self, e: &Error) {
        let (object, message) = match e {
            Error::Corrupt { object, reason } => (object.clone(), reason.clone()),
            Error::Missing { object } => (object.clone(), "is missing".into()),
            other => (String::new(), other.to_string()),
        };
        self.error(object, message);
    }
}

/// Most missing chunks reported per stream; the rest are counted.
const MISSING_REPORTED: usize = 10;

/// Packs whose listings `check --read-data` makes in one pass over the map.
const READ_BATCH: usize = 256;

impl Repository {
    /// Checks the repository; storage failures (not damage) end it early
    /// with an error, damage is collected in the report.
    pub async fn check(&self, opts: CheckOptions) -> Result<CheckReport> {
        let mut report = CheckReport::default();

        // Every index file must open; the live ones (superseded by no
        // other) are what the packs are checked against. Superseded files
        // are leftovers that prune deletes.
        // The files are read one at a time into the map: memory holds the
        // map (48 bytes a blob) and one decoded file.
        let walk = Walk {
            read_superseded: true,
            cached: false,
            for_writer: false,
        };
        let loaded = self.memory_index_by(walk, true).await?;
        for e in &loaded.errors {
            report.error_from(e);
        }
        let index = Arc::new(BlobMap::from(loaded.index));
        // Blobs per pack, counted (a pass over the map) only when a pack
        // is missing.
        let mut blobs_in: Option<Vec<u64>> = None;
        report.packs = index.pack_count();

        // Packs: present, with the indexed size; unindexed ones are leftovers.
        // One listing of data/ (the large folder) serves the packs and the
        // strays note below.
        let data = self.backend.listing(Kind::Pack).await?;
        let stored: HashMap<String, u64> = data
            .objects
            .iter()
            .map(|(n, _, size)| (n.clone(), *size))
            .collect();
        let indexed: HashSet<String> = (0..index.pack_count() as u32)
            .map(|n| index.pack(n).id.to_hex())
            .collect();
        for n in 0..index.pack_count() as u32 {
            let p = index.pack(n);
            let path = object_path(Kind::Pack, &p.id.to_hex());
            let stored_size = stored.get(&p.id.to_hex());
            if p.marked.is_some() {
                let message = if stored_size.is_some() {
                    "is marked for deletion by prune (deleted later, unless a snapshot needs it)"
                } else {
                    "was deleted by prune (a stale mark the next prune drops)"
                };
                report.notes.push(Problem {
                    object: path,
                    message: message.into(),
                });
                continue;
            }
            match stored_size {
                None => {
                    let counts = match &mut blobs_in {
                        Some(counts) => counts,
                        None => blobs_in.insert(blobs_per_pack(&index)?),
                    };
                    report.error(
                        path,
                        format!("is missing ({} indexed blobs are lost)", counts[n as usize]),
                    )
                }
                Some(&size) if size != p.size => {
                    report.error(path, format!("has {size} bytes, the index says {}", p.size))
                }
                Some(_) => {}
            }
        }
        // Leftovers of interrupted (or running) backups: one line in all,
        // however many (a stopped backup can leave a hundred).
        let orphans: Vec<u64> = stored
            .iter()
            .filter(|(n, _)| !indexed.contains(*n))
            .map(|(_, size)| *size)
            .collect();
        let staging = self.backend.list_staging()?;
        if !orphans.is_empty() || !staging.is_empty() {
            let bytes: u64 =
                orphans.iter().sum::<u64>() + staging.iter().map(|f| f.size).sum::<u64>();
            report.notes.push(Problem {
                object: "data/".into(),
                message: format!(
                    "{} packs and {} unfinished uploads ({bytes} bytes) are in no index \
                     (left by interrupted or running backups; prune reclaims them after \
                     the delete delay)",
                    orphans.len(),
                    staging.len()
                ),
            });
        }
        // Files coffer did not write are ignored by every command; named
        // here so that nobody wonders.
        for kind in Kind::ALL {
            let strays = match kind {
                Kind::Pack => data.strays.clone(),
                _ => self.backend.listing(kind).await?.strays,
            };
            if let Some(first) = strays.first() {
                report.notes.push(Problem {
                    object: format!("{}/", kind.folder()),
                    message: format!(
                        "{} files that are not coffer objects are ignored (first: {first})",
                        strays.len()
                    ),
                });
            }
        }
        let mut stale = loaded.superseded.clone();
        stale.sort();
        for id in stale {
            report.notes.push(Problem {
                object: object_path(Kind::Index, &id.to_hex()),
                message: "is superseded by a newer index file (prune deletes it)".into(),
            });
        }

        // Snapshots and their trees.
        // Without local copies: check verifies what storage holds.
        let reader = BlobReader::new(self.backend.clone(), self.key.clone(), index.clone(), None);
        // Indexed packs (marked or not) that storage no longer has.
        let gone: HashSet<u32> = (0..index.pack_count() as u32)
            .filter(|&n| !stored.contains_key(&index.pack(n).id.to_hex()))
            .collect();
        let mut clean = CleanNodes::default();
        for name in self.backend.list(Kind::Snapshot).await? {
            let (id, snap) = match self.read_snapshot(name, false).await {
                Ok(s) => s,
                Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
                    report.error_from(&e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.snapshots += 1;
            check_snapshot(&reader, &gone, &id.to_hex(), &snap, &mut clean, &mut report).await?;
        }

        // Data: download selected packs and open every blob. Their listings
        // are made a batch of packs at a time (one pass over the map each),
        // never for every pack at once.
        let present: Vec<u32> = (0..index.pack_count() as u32)
            .filter(|&n| {
                let p = index.pack(n);
                p.marked.is_none() && stored.get(&p.id.to_hex()) == Some(&p.size)
            })
            .collect();
        let selected = opts.read_data.choose(present, |&n| {
            let p = index.pack(n);
            (p.id, p.size)
        });
        let memory = index.memory().expect("check holds the index in memory");
        for batch in selected.chunks(READ_BATCH) {
            let listings = memory.listings_of(batch);
            let results: Vec<Result<(u64, Vec<Problem>)>> = futures::stream::iter(listings)
                .map(|(_, p)| read_pack(self, &reader, p))
                .buffer_unordered(2)
                .collect()
                .await;
            for r in results {
                let (blobs, problems) = r?;
                report.packs_read += 1;
                report.blobs_read += blobs;
                report.errors.extend(problems);
            }
        }
        Ok(report)
    }
}

/// The number of blobs the map keeps in each pack.
fn blobs_per_pack(index: &BlobMap) -> Result<Vec<u64>> {
    let mut counts = vec![0u64; index.pack_count()];
    index
        .scan_kept(|loc| counts[loc.pack as usize] += 1)
        .map_err(Error::Internal)?;
    Ok(counts)
}

/// Walks every stream of a snapshot: tree nodes must load and agree, every
/// chunk must be indexed as data with the size the tree records, in a pack
/// that storage still has (`gone` lists the pack numbers it lacks).
async fn check_snapshot(
    reader: &BlobReader,
    gone: &HashSet<u32>,
    id: &str,
    snap: &Snapshot,
    clean: &mut CleanNodes,
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
        walk.run(root, &mut whole, clean, report).await?;
        if let Some(sketch) = stream.sketch {
            let label = format!("the sketch of stream {:?}", stream.name);
            let walk = TreeCheck {
                at: (&object, &label),
                ..walk
            };
            walk.run((sketch, BlobKind::Sketch), &mut whole, clean, report)
                .await?;
        }
    }
    Ok(())
}

/// Leaf nodes (level 0, by id and leaf kind) whose every chunk checked out,
/// with the bytes they cover: another snapshot that lists one is not
/// checked chunk by chunk again. A node with any problem is never here, so
/// every snapshot that lists it reports it.
type CleanNodes = HashMap<(BlobId, BlobKind), u64>;

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
fn chain_problem(reader: &BlobReader, loc: &BlobLocation) -> Option<String> {
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

impl TreeCheck<'_> {
    /// Walks one tree (a stream's chunks, or its sketch's parts): nodes must
    /// load and agree, every leaf must be indexed as `leaf` with the size
    /// the tree records, in a pack that storage still has (`gone` lists the
    /// pack numbers it lacks), and a delta's bases must be indexed. Leaf
    /// nodes in `clean` are passed over; those that check out are added.
    async fn run(
        self,
        (root, leaf): (TreeEntry, BlobKind),
        whole: &mut HashSet<u32>,
        clean: &mut CleanNodes,
        report: &mut CheckReport,
    ) -> Result<()> {
        let (reader, gone, (object, label)) = (self.reader, self.gone, self.at);
        let mut walker = TreeWalker::new(root);
        let (mut missing, mut bytes) = (0usize, 0u64);
        // Chunks per pack that is gone.
        let mut lost: std::collections::BTreeMap<u32, u64> = Default::default();
        // The leaf node being walked: its entry, and the problems counted
        // before it.
        let mut in_leaf: Option<(TreeEntry, usize)> = None;
        let problems = |missing: usize, lost: &std::collections::BTreeMap<u32, u64>| {
            missing + lost.values().sum::<u64>() as usize
        };
        loop {
            let step = walker.next_step();
            if !matches!(step, Step::Chunk(_)) {
                // A leaf node's chunks come one after another: it is done.
                if let Some((entry, before)) = in_leaf.take() {
                    if problems(missing, &lost) == before {
                        clean.insert((entry.id, leaf), entry.size);
                    }
                }
            }
            match step {
                Step::Need(node_id) => {
                    let needed = walker.needed().expect("a node is needed");
                    let (entry, level) = needed;
                    if level == Some(0) && clean.get(&(entry.id, leaf)) == Some(&entry.size) {
                        walker.skip();
                        bytes += entry.size;
                        continue;
                    }
                    let node = match reader.load_nodes(&[node_id], whole).await {
                        Ok(mut nodes) => nodes.remove(&node_id),
                        Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
                            report.error_from(&e);
                            None
                        }
                        Err(e) => return Err(e),
                    };
                    let Some(node) = node else {
                        report.error(
                            object,
                            format!("{label}: tree node {node_id} cannot be read"),
                        );
                        break;
                    };
                    let is_leaf = node.level == 0;
                    if let Err(reason) = walker.provide(node) {
                        report.error(object, format!("{label}: {reason}"));
                        break;
                    }
                    if is_leaf && level.is_some() {
                        in_leaf = Some((entry, problems(missing, &lost)));
                    }
                }
                Step::Chunk(chunk) => {
                    bytes += chunk.size;
                    match reader.locate(&chunk.id, leaf, Some(chunk.size)) {
                        Ok(loc) if gone.contains(&loc.pack) => {
                            *lost.entry(loc.pack).or_default() += 1;
                        }
                        Ok(loc) => {
                            if let Some(problem) = chain_problem(reader, &loc) {
                                missing += 1;
                                if missing <= MISSING_REPORTED {
                                    report.error(object, format!("{label}: {problem}"));
                                }
                            }
                        }
                        Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
                            missing += 1;
                            if missing <= MISSING_REPORTED {
                                report.error(object, format!("{label}: {e}"));
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Step::Done => {
                    if bytes != root.size {
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
        for (pack, chunks) in lost {
            report.error(
                object,
                format!(
                    "{label}: {chunks} data blobs are in {}, which is missing",
                    reader.pack_path(pack)
                ),
            );
        }
        if missing > MISSING_REPORTED {
            report.error(
                object,
                format!(
                    "{label}: {} more data blobs are not indexed as the tree says",
                    missing - MISSING_REPORTED
                ),
            );
        }
        Ok(())
    }
}

/// Downloads one pack and opens every blob it holds; returns the number of
/// blobs opened and the problems found.
/// Deltas are decoded against their bases, read through `reader`.
async fn read_pack(
    repo: &Repository,
    reader: &BlobReader,
    expected: IndexedPack,
) -> Result<(u64, Vec<Problem>)> {
    let path = object_path(Kind::Pack, &expected.id.to_hex());
    let bytes = match repo.backend.get(&path).await {
        Ok(b) => b,
        Err(Error::Missing { object }) => {
            return Ok((
                0,
                vec![Problem {
                    object,
                    message: "disappeared during the check".into(),
                }],
            ))
        }
        Err(e) => return Err(e),
    };
    let key = repo.key.clone();
    let number = reader.index().pack_number(&expected.id);
    let (opened, mut deltas, mut problems) = blocking({
        let path = path.clone();
        move || {
            let mut problems = Vec::new();
            let mut err = |message: String| {
                problems.push(Problem {
                    object: path.clone(),
                    message,
                })
            };
            if PackId(content_hash(&bytes)) != expected.id {
                err("content does not match its name (damaged in storage)".into());
            }
            let (salt, header) = match pack::read_header(&key, &bytes) {
                Ok(h) => h,
                Err(reason) => {
                    err(format!("header: {reason}"));
                    return (0, Vec::new(), problems);
                }
            };
            if salt != expected.salt {
                err("the index records another salt for this pack".into());
            }
            let in_header: HashMap<BlobId, &pack::BlobEntry> =
                header.iter().map(|e| (e.id, e)).collect();
            for e in &expected.blobs {
                if in_header.get(&e.id).map(|h| **h) != Some(*e) {
                    err(format!(
                        "blob {} is indexed here but not in the pack's header",
                        e.id.short()
                    ));
                }
            }
            let subkey = key.subkey(&salt);
            let mut opened = 0;
            let mut deltas = Vec::new();
            for e in &header {
                match open_in(&key, &subkey, e, &bytes, 0) {
                    Ok(Opened::Plain(_)) => opened += 1,
                    Ok(delta) => deltas.push((e.id, delta)),
                    Err(reason) => err(reason),
                }
            }
            (opened, deltas, problems)
        }
    })
    .await;
    // Deltas decode against their bases (read through the index, with the
    // reader's cache), one at a time: a failure names the delta and base.
    // A delta copy the index does not list in this pack (a duplicate, or
    // one re-basing replaced) is no reader's concern: its bases may be
    // gone, so its AEAD check (done above) is all that applies.
    let mut opened = opened;
    if let Some(number) = number {
        for (_, delta) in deltas.drain(..) {
            let listed = match &delta {
                Opened::Delta { entry, .. } => reader
                    .index()
                    .bases(&BlobLocation {
                        pack: number,
                        entry: *entry,
                    })
                    .is_some(),
                Opened::Plain(_) => true,
            };
            if !listed {
                opened += 1;
                continue;
            }
            match reader.finish(number, vec![delta]).await {
                Ok(_) => opened += 1,
                Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
                    problems.push(Problem {
                        object: path.clone(),
                        message: e.to_string(),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }
    for (id, _) in deltas {
        problems.push(Problem {
            object: path.clone(),
            message: format!(
                "delta blob {} is in a pack the index does not list",
                id.short()
            ),
        });
    }
    Ok((opened, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository (local, in a temporary directory) whose snapshots all
    /// list the same 20 000 blobs: their tree is stored, their packs are
    /// empty sparse files of the indexed size (what check reads without
    /// `read_data`). Returns the packs' paths.
    async fn shared_tree(
        snapshots: u64,
    ) -> (tempfile::TempDir, Repository, Vec<std::path::PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let backend =
            crate::backend::Backend::open(dir.path().to_str().unwrap(), true, &[]).unwrap();
        let repo = crate::repository::test_repo_on(backend).await;
        let blobs = 20_000;
        let simulated = repo.simulate_blobs(blobs, 3).await.unwrap();
        let mut packs = Vec::new();
        for (pack, size) in &simulated.packs {
            let path = dir.path().join(object_path(Kind::Pack, &pack.to_hex()));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::File::create(&path)
                .unwrap()
                .set_len(*size)
                .unwrap();
            packs.push(path);
        }
        repo.simulate_stream(blobs, 3, "h").await.unwrap();
        let (_, snap) = repo.list_snapshots().await.unwrap().remove(0);
        repo.simulate_snapshots(&snap, snapshots - 1, 1)
            .await
            .unwrap();
        (dir, repo, packs)
    }

    fn structure() -> CheckOptions {
        CheckOptions {
            read_data: ReadData::None,
        }
    }

    /// Snapshots sharing a tree: its leaf nodes are read and their chunks
    /// looked up once, not once a snapshot; damage under them is still
    /// reported for every snapshot.
    #[tokio::test]
    async fn leaf_nodes_are_checked_once_and_damage_reported_for_every_snapshot() {
        let (_dir, one, _) = shared_tree(1).await;
        let before = one.backend().requests().get;
        let report = one.check(structure()).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let gets_for_one = one.backend().requests().get - before;

        let (_dir, five, packs) = shared_tree(5).await;
        let before = five.backend().requests().get;
        let report = five.check(structure()).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.snapshots, 5);
        // Four more snapshot objects and the nodes above the leaves (a
        // few: the tree's shape depends on the repository key), not four
        // more walks of every leaf node (which made 4.9 times the GETs).
        let gets_for_five = five.backend().requests().get - before;
        assert!(
            gets_for_five * 2 < gets_for_one * 3,
            "{gets_for_five} GETs for 5 snapshots, {gets_for_one} for one"
        );

        std::fs::remove_file(&packs[7]).unwrap();
        let report = five.check(structure()).await.unwrap();
        let lost: Vec<&Problem> = report
            .errors
            .iter()
            .filter(|p| p.message.contains("which is missing"))
            .collect();
        assert_eq!(lost.len(), 5, "{:?}", report.errors);
    }

    #[test]
    fn subsets_parse() {
        assert_eq!(ReadData::parse_subset("10%"), Some(ReadData::Fraction(0.1)));
        assert_eq!(
            ReadData::parse_subset("2/7"),
            Some(ReadData::Bucket { n: 2, t: 7 })
        );
        assert_eq!(ReadData::parse_subset("0/7"), None);
        assert_eq!(ReadData::parse_subset("8/7"), None);
        assert_eq!(ReadData::parse_subset("150%"), None);
        assert_eq!(ReadData::parse_subset("x"), None);
        assert_eq!(
            ReadData::parse_subset("500M"),
            Some(ReadData::Bytes(500 << 20))
        );
        assert_eq!(ReadData::parse_subset("0"), None);
        // By size: random packs until they hold that much.
        let packs: Vec<(PackId, u64)> = (0..10u8).map(|n| (PackId([n; 32]), 100)).collect();
        for _ in 0..20 {
            let chosen = ReadData::Bytes(250).choose(packs.clone(), |p| *p);
            assert_eq!(chosen.len(), 3, "{chosen:?}");
            let mut ids: Vec<_> = chosen.iter().map(|p| p.0).collect();
            ids.dedup();
            assert_eq!(ids.len(), 3);
        }
        assert_eq!(
            ReadData::Bytes(1 << 40).choose(packs.clone(), |p| *p).len(),
            10
        );
        let firsts: std::collections::HashSet<PackId> = (0..40)
            .map(|_| ReadData::Bytes(1).choose(packs.clone(), |p| *p)[0].0)
            .collect();
        assert!(firsts.len() > 1, "always the same pack");
        // Buckets partition the packs.
        let id = PackId([200; 32]);
        let hits = (1..=7)
            .filter(|n| ReadData::Bucket { n: *n, t: 7 }.selects(&id))
            .count();
        assert_eq!(hits, 1);
    }
}
