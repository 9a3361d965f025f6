//! `check`: verifies a repository and reports every problem with the object
//! it concerns, never stopping at the first. Structure: every index and
//! snapshot object opens, every indexed pack exists with the indexed size,
//! every snapshot's tree (and sketch) resolves and every chunk it lists is
//! indexed, down to the bases of deltas. With `read_data`, packs are
//! downloaded and every blob in them is opened (hash of the pack, AEAD,
//! length, keyed MAC; a delta decoded against its bases) and compared with
//! the index.
//! Reading only: check never changes the repository, and it reads storage,
//! never the local cache: the index tables it searches are built afresh
//! from the index files it downloads, in a directory of its own.
//!
//! The chunks are checked in sorted passes, not looked up one by one
//! (module [`chunks`]): memory is the tables' few bytes a blob plus 8 bytes
//! a distinct chunk in use, whatever the repository's size or number of
//! snapshots.

mod chunks;
mod read_data;
mod trees;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::blobs::BlobReader;
use super::used_keys::UsedKeys;
use super::{blocking, Repository};
use crate::backend::{object_path, Kind};
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::index::BlobMap;
use crate::snapshot::Snapshot;
use trees::{walk_snapshots, Chunks};

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

impl Repository {
    /// Checks the repository; storage failures (not damage) end it early
    /// with an error, damage is collected in the report.
    pub async fn check(&self, opts: CheckOptions) -> Result<CheckReport> {
        let mut report = CheckReport::default();

        // Every index file must open; the live ones (superseded by no
        // other) are what the packs are checked against. Superseded files
        // are leftovers that prune deletes.
        let scratch = self.cache.as_ref().and_then(|c| c.scratch_dir());
        let loaded = self
            .index_for_check(scratch.as_ref().map(|d| d.path()))
            .await?;
        for e in &loaded.errors {
            report.error_from(e);
        }
        let index = Arc::new(loaded.index);
        // A pack listed by several index files has several numbers: each
        // is reported once, under its lowest (canonical) number.
        let packs: Vec<u32> = (0..index.pack_count() as u32)
            .filter(|&n| index.canonical(n) == n)
            .collect();
        report.packs = packs.len();

        // Packs: present, with the indexed size; unindexed ones are leftovers.
        // One listing of data/ (the large folder) serves the packs and the
        // strays note below.
        let data = self.backend.listing(Kind::Pack).await?;
        let stored: HashMap<String, u64> = data
            .objects
            .iter()
            .map(|(n, _, size)| (n.clone(), *size))
            .collect();
        // Missing packs, whose messages get their blob counts from the
        // pass over the index below: (place in the errors, pack number).
        let mut missing: Vec<(usize, u32)> = Vec::new();
        for &n in &packs {
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
                    missing.push((report.errors.len(), n));
                    report.error(path, "is missing")
                }
                Some(&size) if size != p.size => {
                    report.error(path, format!("has {size} bytes, the index says {}", p.size))
                }
                Some(_) => {}
            }
        }
        self.note_leftovers(&index, &packs, &data, &loaded.superseded, &mut report)
            .await?;

        // Snapshots and their trees: the trees' own problems, and every
        // chunk collected for one pass over the index.
        // Without local copies: check verifies what storage holds.
        let reader = BlobReader::new(self.backend.clone(), self.key.clone(), index.clone(), None);
        // Indexed packs (marked or not) that storage no longer has.
        let gone: HashSet<u32> = (0..index.pack_count() as u32)
            .filter(|&n| !stored.contains_key(&index.pack(n).id.to_hex()))
            .collect();
        let mut snapshots: Vec<(String, Snapshot)> = Vec::new();
        for name in self.backend.list(Kind::Snapshot).await? {
            match self.read_snapshot(name, false).await {
                Ok((id, snap)) => snapshots.push((id.to_hex(), snap)),
                Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => report.error_from(&e),
                Err(e) => return Err(e),
            }
        }
        report.snapshots = snapshots.len();
        let mut used = UsedKeys::default();
        let collect = Chunks::Collect(&mut used);
        walk_snapshots(&reader, &gone, &snapshots, collect, &mut report).await?;
        let pass = {
            let (reader, gone) = (reader.clone(), gone.clone());
            blocking(move || chunks::chunks_in_trouble(&reader, &gone, used)).await
        }
        .map_err(table_error)?;
        if let Some(failure) = index.failure() {
            return Err(table_error(failure));
        }
        for (at, n) in missing {
            let lost = pass.blobs_per_pack[n as usize];
            report.errors[at].message = format!("is missing ({lost} indexed blobs are lost)");
        }
        let trouble = pass.trouble;
        // Rarely: walk again to say which snapshot and stream lists each
        // chunk in trouble, and what is wrong with it.
        if !trouble.is_empty() {
            let name = Chunks::Name(&trouble);
            walk_snapshots(&reader, &gone, &snapshots, name, &mut report).await?;
        }
        drop(trouble);

        // Data: download selected packs and open every blob.
        let present: Vec<u32> = packs
            .iter()
            .copied()
            .filter(|&n| {
                let p = index.pack(n);
                p.marked.is_none() && stored.get(&p.id.to_hex()) == Some(&p.size)
            })
            .collect();
        let selected = opts.read_data.choose(present, |&n| {
            let p = index.pack(n);
            (p.id, p.size)
        });
        read_data::read_packs(self, &reader, pass.kept, selected, &mut report).await?;
        Ok(report)
    }

    /// Notes for what is harmless: packs in no index and unfinished
    /// uploads (from interrupted or running backups), files that are not
    /// coffer objects, and superseded index files.
    async fn note_leftovers(
        &self,
        index: &BlobMap,
        packs: &[u32],
        data: &crate::backend::Listing,
        superseded: &[crate::id::IndexId],
        report: &mut CheckReport,
    ) -> Result<()> {
        let indexed: HashSet<String> = packs.iter().map(|&n| index.pack(n).id.to_hex()).collect();
        // One line in all, however many (a stopped backup can leave a
        // hundred).
        let orphans: Vec<u64> = data
            .objects
            .iter()
            .filter(|(n, _, _)| !indexed.contains(n))
            .map(|(_, _, size)| *size)
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
        let mut stale = superseded.to_vec();
        stale.sort();
        for id in stale {
            report.notes.push(Problem {
                object: object_path(Kind::Index, &id.to_hex()),
                message: "is superseded by a newer index file (prune deletes it)".into(),
            });
        }
        Ok(())
    }
}

/// A table check built failed to read back (the local disk, not the
/// repository).
fn table_error(e: String) -> Error {
    Error::corrupt("check's index tables", e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::BlobId;

    /// A repository (local, in a temporary directory) whose snapshots all
    /// list the same 20 000 blobs: their tree is stored, their packs are
    /// empty sparse files of the indexed size (what check reads without
    /// `read_data`). Returns the packs' paths.
    async fn shared_tree(
        snapshots: u64,
    ) -> (tempfile::TempDir, Repository, Vec<std::path::PathBuf>) {
        shared_tree_listing(snapshots, 0).await
    }

    /// [`shared_tree`], with `unindexed` more chunks in the stream than
    /// in the index.
    async fn shared_tree_listing(
        snapshots: u64,
        unindexed: u64,
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
        repo.simulate_stream(blobs + unindexed, 3, "h")
            .await
            .unwrap();
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

    /// Every kind of trouble a chunk can be in, under three snapshots that
    /// share one tree: checked with the index in memory (no cache) and
    /// from tables in sorted passes (with one), the reports are the same,
    /// each snapshot names each problem, and the cache keeps nothing of
    /// the check.
    #[tokio::test]
    async fn passes_over_tables_report_what_lookups_in_memory_do() {
        use crate::index::{DeltaBases, IndexFile, IndexedPack};
        use crate::pack::{BlobEntry, BlobKind};
        use crate::repository::simulate::{simulated_id, SIMULATED_RAW};
        let (dir, mut repo, packs) = shared_tree_listing(3, 10).await;
        // Chunks 20 000 and 20 001 indexed in a pack of their own: one as
        // a delta of a base nothing indexes, one with another length. The
        // other eight are in no index.
        let chunk = |k: u64, encoding: u8, raw_length: u32| BlobEntry {
            kind: BlobKind::Data as u8,
            encoding,
            id: BlobId(simulated_id(3, b"blob", 20_000 + k)),
            offset: 37 + k as u32 * 100,
            length: 100,
            raw_length,
        };
        let blobs = vec![chunk(0, 2, SIMULATED_RAW), chunk(1, 1, SIMULATED_RAW + 1)];
        let bases = vec![DeltaBases {
            id: blobs[0].id,
            bases: vec![BlobId([9; 32])],
        }];
        let extra = IndexedPack {
            id: PackId([7; 32]),
            salt: [1; 32],
            size: 237,
            blobs,
            bases,
        };
        let path = dir.path().join(object_path(Kind::Pack, &extra.id.to_hex()));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::File::create(&path).unwrap().set_len(237).unwrap();
        let mut file = IndexFile::default();
        file.packs.push(extra);
        repo.write_index(file).await.unwrap();
        std::fs::remove_file(&packs[7]).unwrap();

        let in_memory = repo.check(structure()).await.unwrap();
        let cache = tempfile::tempdir().unwrap();
        repo.use_cache(cache.path(), 0);
        let from_tables = repo.check(structure()).await.unwrap();

        let sorted = |r: &CheckReport| {
            let mut e: Vec<String> = r
                .errors
                .iter()
                .map(|p| format!("{}: {}", p.object, p.message))
                .collect();
            e.sort();
            e
        };
        assert_eq!(sorted(&in_memory), sorted(&from_tables));
        let errors = sorted(&from_tables);
        let count = |needle: &str| errors.iter().filter(|e| e.contains(needle)).count();
        assert_eq!(count("is not indexed"), 3, "{errors:#?}");
        assert_eq!(
            count("disagrees with the stream's tree about its length"),
            3
        );
        // Eight chunks a snapshot, the pack, and the pack again for each
        // snapshot's lost chunks.
        assert_eq!(count("is missing"), 3 * 8 + 1 + 3);
        assert_eq!(count("300 data blobs are in"), 3);
        assert_eq!(count("(300 indexed blobs are lost)"), 1);
        assert_eq!(errors.len(), 1 + 3 * (1 + 1 + 8 + 1));
        assert_eq!(from_tables.snapshots, 3);
        assert_eq!(from_tables.packs, in_memory.packs);

        let left: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .flat_map(|repo_dir| std::fs::read_dir(repo_dir.unwrap().path()).unwrap())
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "the check left {left:?} in the cache");
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
