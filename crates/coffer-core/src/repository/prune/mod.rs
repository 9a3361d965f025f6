//! `prune`: reclaims the space of blobs no snapshot references, in two
//! phases so that backups running at the same time (which take no lock)
//! never lose data. See "Prune" in docs/format.md for the argument.
//!
//! One run: take the prune lock; list snapshots, then load the index, then
//! walk every snapshot's trees to find the blobs in use (tree packs are read;
//! data packs never are, unless repacked). Then [`plan`] decides every
//! pack's fate (a pure function; its documentation lists the rules), and
//! this module carries the decision out, measuring every age on the
//! storage's clock from one reference read before anything is listed.
//!
//! Write order: new packs (repacked and rescued blobs), then one index file
//! that supersedes every index file listed, then (only while the lock is
//! held) deletions of packs and staging files, then of the superseded index
//! files.

mod plan;
mod rebase;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::blobs::BlobReader;
use super::index_files::IndexParts;
use super::lock::{PruneLock, StorageClock};
use super::pack_sink::PackSink;
use super::used_keys::{self as used, UsedKeys};
use super::{blocking, Repository};
use crate::backend::{object_path, Kind};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::id::BlobId;
use crate::index::{BlobMap, IndexedPack, Kept, ScanError};
use crate::pack::{BlobEntry, BlobKind, EncodedBlob};
use crate::snapshot::Snapshot;
use plan::{plan, Fate, PackUse, Plan, PlanInput, Tally};

pub use plan::PruneReport;

/// How much unused space `prune` tolerates in packs it keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxUnused {
    /// A percentage (0-100) of the bytes in kept packs.
    Percent(f64),
    /// An absolute number of bytes.
    Bytes(u64),
    /// Never repack.
    Unlimited,
}

impl std::str::FromStr for MaxUnused {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "{s:?} is not a limit: use a percentage (5%), a size (200M, 1G) or \"unlimited\""
            )
        };
        if s == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            return (0.0..=100.0)
                .contains(&p)
                .then_some(MaxUnused::Percent(p))
                .ok_or_else(bad);
        }
        crate::units::parse_size(s)
            .map(MaxUnused::Bytes)
            .ok_or_else(bad)
    }
}

impl std::fmt::Display for MaxUnused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxUnused::Percent(p) => write!(f, "{p}%"),
            MaxUnused::Bytes(b) => write!(f, "{b}"),
            MaxUnused::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// Default unused space tolerated in kept packs.
pub const DEFAULT_MAX_UNUSED: MaxUnused = MaxUnused::Percent(5.0);

/// Default delay between marking a pack unused and deleting it: one day,
/// far above [`super::RECHECK_AFTER`].
pub const DEFAULT_DELETE_DELAY: crate::policy::Duration = crate::policy::Duration {
    years: 0,
    months: 0,
    days: 1,
    hours: 0,
};

/// Longest delete delay accepted: a century. Longer ones would overflow the
/// nanosecond clock arithmetic (about 292 years) and mean "never" anyway.
pub const MAX_DELETE_DELAY: Duration = Duration::from_secs(100 * 366 * 24 * 3600);

/// Checks a delete delay: zero (no backup may run), or from twice the
/// backups' recheck interval (so a long backup notices a mark before the
/// marked pack can go) up to [`MAX_DELETE_DELAY`].
pub fn check_delete_delay(delay: Duration, recheck_after: Duration) -> Result<()> {
    let shortest = recheck_after * 2;
    if delay.is_zero() || (shortest..=MAX_DELETE_DELAY).contains(&delay) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "a delete delay of {}s is out of range: use 0 (only when no backup runs) or from {}s to {} years",
        delay.as_secs(),
        shortest.as_secs(),
        MAX_DELETE_DELAY.as_secs() / (366 * 24 * 3600)
    )))
}

/// Settings of one prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Unused space tolerated before partly used packs are repacked.
    pub max_unused: MaxUnused,
    /// How long a pack stays marked (and an unindexed pack stays) before it
    /// is deleted. Zero deletes at once: only safe when no backup runs.
    pub delete_delay: Duration,
    /// Decide and report, change nothing.
    pub dry_run: bool,
    /// The backups' recheck interval ([`super::BackupOptions::recheck_after`]);
    /// a non-zero delay must be at least twice it.
    pub recheck_after: Duration,
    /// Recorded in the lock.
    pub host: String,
    /// Re-base delta chains: store each stream's newest version whole and
    /// older ones as deltas against newer ones (format 2 repositories).
    pub rebase: bool,
}

impl Repository {
    /// Runs one prune (see the module documentation).
    pub async fn prune(&self, opts: PruneOptions) -> Result<PruneReport> {
        check_delete_delay(opts.delete_delay, opts.recheck_after)?;
        let lock = if opts.dry_run {
            None
        } else {
            Some(self.lock_for_prune(&opts.host).await?)
        };
        failpoint::reach("prune-locked");
        let result = self.prune_locked(&opts, lock.as_ref()).await;
        if let Some(lock) = lock {
            let released = lock.release().await;
            if result.is_ok() {
                released?;
            }
        }
        result
    }

    async fn prune_locked(
        &self,
        opts: &PruneOptions,
        lock: Option<&PruneLock>,
    ) -> Result<PruneReport> {
        let clock = lock.map_or_else(StorageClock::local, |l| l.clock);
        // Every age is measured against this moment, read before anything
        // is listed: a backup that commits after it is seen by the listings
        // that follow, or is younger than the delay (see "Prune" in
        // docs/format.md).
        let reference = clock.now();
        // Snapshots first: every index file a listed snapshot depends on was
        // written before it, so the index loaded next covers them all.
        let snapshots = self.list_snapshots().await?;
        let (index, listed) = self.load_prune_index().await?;
        let index = Arc::new(index);
        let mut used = UsedKeys::default();
        self.walk_used(&index, &snapshots, |kind, id| {
            used.insert(kind, id);
            Ok(())
        })
        .await?;
        failpoint::reach("prune-loaded");

        let stored: HashMap<String, (i64, u64)> = self
            .backend
            .list_with_times(Kind::Pack)
            .await?
            .into_iter()
            .map(|(n, t, size)| (n, (t, size)))
            .collect();
        // New copies first (unindexed until the index below): the old ones
        // they replace count as unused in the plan. After the listing
        // above, so that the plan never sees the new packs as leftovers.
        let reader = self.blob_reader(index.clone());
        let rebased = Arc::new(if opts.rebase {
            self.rebase(&reader, &snapshots, opts.dry_run).await?
        } else {
            rebase::Rebased::default()
        });
        let (used, packs, kept) = {
            let (index, rebased) = (index.clone(), rebased.clone());
            blocking(move || tally(&index, used, &rebased)).await?
        };
        // A table block that failed to read made its lookups answer "not
        // found" (safe for a backup, which stores the blob again): prune
        // decides nothing on such answers.
        if let Some(failure) = index.failure() {
            return Err(table_error(failure));
        }
        let missing = used.missing();
        if !missing.is_empty() {
            return Err(self.name_missing(&index, &snapshots, &missing).await);
        }
        // In range (checked above), so it fits; saturating all the same.
        let delay = i64::try_from(opts.delete_delay.as_nanos()).unwrap_or(i64::MAX);
        let staging = self.backend.list_staging()?;
        let input = PlanInput {
            staging: &staging,
            stored: &stored,
            now: reference,
            delay,
            max_unused: opts.max_unused,
            index_files: listed.len(),
        };
        let Plan {
            packs,
            unindexed_old,
            staging_old,
            mut report,
            nothing_to_do,
        } = plan(packs, &input);
        report.snapshots = snapshots.len();
        report.used_blobs = used.len() as u64;
        report.chunks_made_whole = rebased.made_whole;
        report.chunks_made_deltas = rebased.made_deltas;
        report.bytes_rebased = rebased.bytes_written;
        if opts.dry_run || (nothing_to_do && rebased.packs.is_empty()) {
            return Ok(report);
        }
        let passes = Passes {
            index: index.clone(),
            kept: Arc::new(kept),
            used: Arc::new(used),
            rebased: rebased.clone(),
        };

        // Phase: copy still-used blobs out of repacked packs.
        crate::interrupt::check()?;
        let new_packs = self
            .repack(&reader, passes.repack_jobs(&packs).await?)
            .await?;
        report.packs_written = (new_packs.len() + rebased.packs.len()) as u64;

        // Phase: one index superseding everything listed, written as it is
        // made (parts of at most MAX_INDEX_FILE_BLOBS, the last one
        // superseding). New marks are stamped now, when they are about to
        // become visible (repacking may have taken hours): a backup that
        // loaded the index before this write may still reuse these packs,
        // and the delay counts from here.
        failpoint::reach("prune-before-index");
        crate::interrupt::check()?;
        let stamp = clock.now();
        let mut fates: HashMap<u32, Option<i64>> = HashMap::with_capacity(packs.len());
        for p in packs.iter().filter(|p| !p.deleted_now(delay)) {
            let listed_as = match p.fate {
                Fate::Keep => None,
                // A marked pack keeps its mark's time, also when its used
                // blobs were copied out: it never becomes usable again.
                Fate::Mark | Fate::Repack => Some(p.marked.unwrap_or(stamp)),
                Fate::StayMarked(t) => Some(t),
                Fate::Delete | Fate::DropStaleMark | Fate::DropMissing => continue,
            };
            fates.insert(p.number, listed_as);
        }
        let mut parts = IndexParts::new(self);
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let scan = {
            let passes = passes.clone();
            tokio::task::spawn_blocking(move || passes.listings(&fates, &tx))
        };
        while let Some((pack, marked)) = rx.recv().await {
            parts.push(pack, marked).await?;
        }
        scan.await.expect("index scan panicked")?;
        for pack in new_packs.into_iter().chain(rebased.packs.iter().cloned()) {
            parts.push(pack, None).await?;
        }
        parts.finish(listed.clone()).await?;
        failpoint::reach("prune-after-index");

        // Phase: deletions, packs first, and only while the lock is held. A
        // crash from here on leaves only objects no live index needs; the
        // next prune finishes the job.
        crate::interrupt::check()?;
        if let Some(lock) = lock {
            lock.check_held().await?;
        }
        let doomed = packs
            .iter()
            .filter(|p| p.deleted_now(delay))
            .map(|p| p.id.to_hex())
            .chain(unindexed_old.into_iter().map(|(n, _)| n));
        for (i, name) in doomed.enumerate() {
            // Stopping between deletions is as safe as a crash there.
            crate::interrupt::check()?;
            self.backend.delete(&object_path(Kind::Pack, &name)).await?;
            if let Some(copies) = &self.blob_copies {
                copies.remove_pack(&name);
            }
            if i == 0 {
                failpoint::reach("prune-deleting-packs");
            }
        }
        for file in &staging_old {
            crate::interrupt::check()?;
            self.backend.delete_staging(file)?;
        }
        for id in &listed {
            self.backend
                .delete(&object_path(Kind::Index, &id.to_hex()))
                .await?;
            report.index_files_deleted += 1;
        }
        Ok(report)
    }

    /// Walks every snapshot's trees and hands every blob they reference
    /// (tree nodes, chunks and sketch parts) to `leaf`, by kind byte and
    /// id; each node is read once however many snapshots share it. Whether
    /// the chunks are indexed is checked later, all at once ([`tally`]).
    async fn walk_used(
        &self,
        index: &Arc<BlobMap>,
        snapshots: &[(crate::id::SnapshotId, Snapshot)],
        mut leaf: impl FnMut(u8, &BlobId) -> Result<()>,
    ) -> Result<()> {
        let reader = self.blob_reader(index.clone());
        let tree = BlobKind::Tree as u8;
        let mut whole = HashSet::new();
        // Nodes to read, with the kind of blob their tree's leaves are; a
        // node is visited once per leaf kind (a stream's chunks are data, a
        // sketch's parts are sketch blobs).
        let mut visited: HashSet<(BlobId, BlobKind)> = HashSet::new();
        let mut pending: Vec<(BlobId, BlobKind)> = Vec::new();
        for (_, snap) in snapshots {
            for s in &snap.streams {
                // A stream's chunks, and its sketch's parts (which the next
                // backup of the stream chooses delta bases by).
                let roots = std::iter::once((s.root, BlobKind::Data))
                    .chain(s.sketch.map(|e| (e.id, BlobKind::Sketch)));
                for root in roots {
                    leaf(tree, &root.0)?;
                    if visited.insert(root) {
                        pending.push(root);
                    }
                }
            }
        }
        while !pending.is_empty() {
            let batch: Vec<(BlobId, BlobKind)> = pending.drain(..pending.len().min(1024)).collect();
            let ids: Vec<BlobId> = batch.iter().map(|(id, _)| *id).collect();
            // Damage stops the prune before it changes anything.
            let nodes = reader.load_nodes(&ids, &mut whole).await?;
            for (id, leaf_kind) in batch {
                let node = nodes.get(&id).ok_or_else(|| Error::Missing {
                    object: format!("tree blob {id}"),
                })?;
                let kind = if node.level == 0 {
                    leaf_kind
                } else {
                    BlobKind::Tree
                };
                for e in &node.entries {
                    leaf(kind as u8, &e.id)?;
                    if node.level > 0 && visited.insert((e.id, leaf_kind)) {
                        pending.push((e.id, leaf_kind));
                    }
                }
            }
        }
        Ok(())
    }

    /// The error for blobs in use that no index entry has (keys of
    /// [`UsedKeys`]): walks the snapshots and the deltas again to name one.
    /// Deleting anything on the basis of a damaged repository could lose
    /// more, so the prune stops.
    async fn name_missing(
        &self,
        index: &Arc<BlobMap>,
        snapshots: &[(crate::id::SnapshotId, Snapshot)],
        missing: &HashSet<u64>,
    ) -> Error {
        let named = self
            .walk_used(index, snapshots, |kind, id| {
                if !missing.contains(&used::key(kind, id)) {
                    return Ok(());
                }
                let what = match BlobKind::from_byte(kind) {
                    Some(BlobKind::Sketch) => "sketch",
                    Some(BlobKind::Tree) => "tree",
                    _ => "data",
                };
                Err(Error::Missing {
                    object: format!(
                        "{what} blob {id} (a snapshot needs it; prune stopped, run `coffer check`)"
                    ),
                })
            })
            .await;
        if let Err(e) = named {
            return e;
        }
        let data = BlobKind::Data as u8;
        let mut base_of = None;
        let scanned = index.scan_deltas(|id, _, bases| {
            if let Some(b) = bases.iter().find(|b| missing.contains(&used::key(data, b))) {
                base_of.get_or_insert((*b, *id));
            }
        });
        match (scanned, base_of) {
            (Err(e), _) => table_error(e),
            (Ok(()), Some((base, id))) => Error::Missing {
                object: format!(
                    "data blob {base} (a base of delta blob {id}; prune stopped, run `coffer check`)"
                ),
            },
            (Ok(()), None) => Error::Missing {
                object: format!(
                    "{} blobs in use (prune stopped, run `coffer check`)",
                    missing.len()
                ),
            },
        }
    }

    /// Copies the given used blobs of packs fated [`Fate::Repack`] into new
    /// packs (data and tree apart, as backups write them); returns their
    /// entries. Payloads are copied as stored (a delta stays a delta of the
    /// same bases, which the new pack's index entry lists); all but deltas
    /// are decoded and verified on the way.
    async fn repack(&self, reader: &BlobReader, jobs: Vec<RepackJob>) -> Result<Vec<IndexedPack>> {
        let mut sink = PackSink::new(self.key.clone(), self.config.pack_size as usize)
            .spooling_to(self.spool_dir());
        let mut done = Vec::new();
        let jobs = jobs.into_iter().map(|(number, wanted)| async move {
            let entries = wanted.iter().map(|(e, _)| *e).collect();
            let payloads = reader.read_payloads(number, entries).await?;
            Ok::<_, Error>(wanted.into_iter().zip(payloads))
        });
        let mut fetched = futures::stream::iter(jobs).buffered(2);
        while let Some(blobs) = fetched.next().await {
            crate::interrupt::check()?;
            for ((e, bases), (enc, payload)) in blobs? {
                let kind = BlobKind::from_byte(e.kind).ok_or_else(|| {
                    Error::corrupt(format!("blob {}", e.id), format!("unknown kind {}", e.kind))
                })?;
                let blob = EncodedBlob {
                    kind,
                    id: e.id,
                    encoding: enc,
                    payload: &payload,
                    raw_len: e.raw_length,
                    bases: &bases,
                };
                if let (_, Some(full)) = sink.add(blob)? {
                    done.push(self.store_pack(full).await?);
                }
            }
        }
        for pack in sink.take_open()? {
            done.push(self.store_pack(pack).await?);
        }
        Ok(done)
    }
}

/// One repacked pack: its number and the used blobs to copy, with the
/// bases of those that are deltas.
type RepackJob = (u32, Vec<(BlobEntry, Vec<BlobId>)>);

/// Adds to `used` the bases of the deltas in use, down every chain, also
/// when the snapshots that first stored them are gone. Every stored copy
/// counts (a blob stored whole and as a delta may keep either), except the
/// copies re-basing replaced, and the new copies count instead.
fn add_bases(index: &BlobMap, used: &mut UsedKeys, rebased: &rebase::Rebased) -> Result<()> {
    let data = BlobKind::Data as u8;
    // Bases of deltas not known to be in use when their row was read:
    // (delta key, base key). Usually only the unused deltas.
    let mut waiting: Vec<(u64, u64)> = Vec::new();
    let mut visit = |id: &BlobId, bases: &[BlobId]| {
        let k = used::key(data, id);
        if used.contains(k) {
            for b in bases {
                used.add(used::key(data, b));
            }
        } else {
            waiting.extend(bases.iter().map(|b| (k, used::key(data, b))));
        }
    };
    index
        .scan_deltas(|id, pack, bases| {
            if !rebased.superseded.contains(&(index.pack(pack).id, *id)) {
                visit(id, bases);
            }
        })
        .map_err(table_error)?;
    for d in rebased.packs.iter().flat_map(|p| &p.bases) {
        visit(&d.id, &d.bases);
    }
    // A delta found in use after its row was read (the base of a later
    // one): its bases too, until nothing changes.
    loop {
        let before = used.len();
        waiting.retain(|&(delta, base)| {
            let now_used = used.contains(delta);
            if now_used {
                used.add(base);
            }
            !now_used
        });
        if used.len() == before {
            return Ok(());
        }
    }
}

/// Prune's pass over every blob the index keeps: adds the bases of deltas
/// in use to `used`, then counts each pack's used and unused bytes, and
/// notes which used keys the index has ([`UsedKeys::missing`] are the
/// others). Returns every pack (by canonical number) with its count.
fn tally(
    index: &BlobMap,
    mut used: UsedKeys,
    rebased: &rebase::Rebased,
) -> Result<(UsedKeys, Vec<PackUse>, Kept)> {
    add_bases(index, &mut used, rebased)?;
    used.seal();
    let mut tallies = vec![Tally::default(); index.pack_count()];
    let kept = index
        .scan_kept(|loc| {
            let e = &loc.entry;
            let is_used = used.found(used::key(e.kind, &e.id));
            let replaced = rebased.replaced(&index.pack(loc.pack).id, &e.id);
            tallies[loc.pack as usize].add(e.length, is_used, replaced);
        })
        .map_err(table_error)?;
    let packs = (0..index.pack_count() as u32)
        .filter(|&n| index.canonical(n) == n)
        .map(|n| PackUse::new(n, index.pack(n), &tallies[n as usize]))
        .collect();
    Ok((used, packs, kept))
}

/// What the passes after the plan read: the map, which of its slots are
/// kept, the blobs in use and what re-basing replaced.
#[derive(Clone)]
struct Passes {
    index: Arc<BlobMap>,
    kept: Arc<Kept>,
    used: Arc<UsedKeys>,
    rebased: Arc<rebase::Rebased>,
}

impl Passes {
    /// The used blobs of every pack fated [`Fate::Repack`].
    async fn repack_jobs(&self, packs: &[PackUse]) -> Result<Vec<RepackJob>> {
        let numbers: HashSet<u32> = packs
            .iter()
            .filter(|p| p.fate == Fate::Repack)
            .map(|p| p.number)
            .collect();
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let this = self.clone();
        blocking(move || {
            let mut jobs = Vec::new();
            this.scan(|n, pack| {
                if numbers.contains(&n) {
                    let mut bases: HashMap<BlobId, Vec<BlobId>> =
                        pack.bases.into_iter().map(|d| (d.id, d.bases)).collect();
                    let wanted = pack
                        .blobs
                        .into_iter()
                        .filter(|b| this.used.is_used(used::key(b.kind, &b.id)))
                        .map(|b| (b, bases.remove(&b.id).unwrap_or_default()))
                        .collect();
                    jobs.push((n, wanted));
                }
                Ok(())
            })?;
            Ok(jobs)
        })
        .await
    }

    /// Sends the listing of every pack in `fates` (pack number: `None` to
    /// list it unmarked, else marked since then) to `out`, with its mark.
    fn listings(
        &self,
        fates: &HashMap<u32, Option<i64>>,
        out: &tokio::sync::mpsc::Sender<(IndexedPack, Option<i64>)>,
    ) -> Result<()> {
        self.scan(|n, pack| match fates.get(&n) {
            Some(&marked) => out
                .blocking_send((pack, marked))
                .map_err(|_| Error::Internal("the index writer stopped".into())),
            None => Ok(()),
        })
    }

    /// Every pack with the blobs the map keeps in it, less the copies
    /// re-basing replaced.
    fn scan(&self, mut visit: impl FnMut(u32, IndexedPack) -> Result<()>) -> Result<()> {
        self.index.scan_packs(&self.kept, |group| {
            for (n, mut pack) in group {
                let id = pack.id;
                if !self.rebased.superseded.is_empty() {
                    pack.blobs.retain(|b| !self.rebased.replaced(&id, &b.id));
                    pack.bases.retain(|d| !self.rebased.replaced(&id, &d.id));
                }
                visit(n, pack)?;
            }
            Ok::<_, Error>(())
        })
    }
}

impl From<ScanError> for Error {
    fn from(e: ScanError) -> Self {
        table_error(e.0)
    }
}

/// A table of the local cache failed to read during a pass: the cache was
/// damaged, not the repository (the table is gone, so running the command
/// again builds it anew).
fn table_error(e: String) -> Error {
    Error::corrupt(
        "the local index cache",
        format!("{e}; it has been removed, run the command again"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_delays_out_of_range_are_refused_not_wrapped() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let check = |d| check_delete_delay(d, super::super::RECHECK_AFTER);
        assert!(check(Duration::ZERO).is_ok());
        assert!(check(hours(1)).is_ok());
        assert!(check(hours(24)).is_ok());
        assert!(check(MAX_DELETE_DELAY).is_ok());
        // 300 years is more nanoseconds than an i64 holds: it used to wrap
        // to a negative delay, "delete everything now".
        assert!(matches!(
            check(hours(300 * 365 * 24)),
            Err(Error::InvalidArgument(_))
        ));
        // Below twice the recheck interval a long backup could miss a mark.
        assert!(check(Duration::from_secs(60)).is_err());
        assert!(check_delete_delay(Duration::from_secs(60), Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn limits_parse() {
        assert_eq!("5%".parse::<MaxUnused>(), Ok(MaxUnused::Percent(5.0)));
        assert_eq!("unlimited".parse::<MaxUnused>(), Ok(MaxUnused::Unlimited));
        assert_eq!("200M".parse::<MaxUnused>(), Ok(MaxUnused::Bytes(200 << 20)));
        assert_eq!("0".parse::<MaxUnused>(), Ok(MaxUnused::Bytes(0)));
        assert!("150%".parse::<MaxUnused>().is_err());
        assert!("5x".parse::<MaxUnused>().is_err());
        assert!("".parse::<MaxUnused>().is_err());
        for limit in [
            DEFAULT_MAX_UNUSED,
            MaxUnused::Bytes(7),
            MaxUnused::Unlimited,
        ] {
            assert_eq!(limit.to_string().parse::<MaxUnused>(), Ok(limit));
        }
    }
}
