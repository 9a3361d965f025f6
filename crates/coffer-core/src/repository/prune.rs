//! `prune`: reclaims the space of blobs no snapshot references, in two
//! phases so that backups running at the same time (which take no lock)
//! never lose data. See "Prune" in docs/format.md for the argument.
//!
//! One run: take the prune lock; list snapshots, then load the index, then
//! walk every snapshot's trees to find the blobs in use (tree packs are read;
//! data packs never are, unless repacked). Then, pack by pack:
//! * fully used: kept;
//! * unused: *marked* in the new index (backups stop deduplicating against
//!   it, restores can still read it);
//! * marked earlier and now needed again (a backup that started before the
//!   mark committed a snapshot using it): unmarked;
//! * marked at least `delete_delay` ago and still unneeded: deleted;
//! * partly used, while the unused space exceeds `max_unused`: its used
//!   blobs are copied into new packs and it is marked;
//! * stored but in no index, older than `delete_delay`: the leftover of an
//!   interrupted backup, deleted.
//!
//! Write order: new packs, then one index file that supersedes every index
//! file listed, then deletions of packs, then of the superseded index files.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::restore::BlobReader;
use super::{blocking, now_unix_ns, LiveIndex, Repository};
use crate::backend::{object_path, Kind};
use crate::compress;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::id::BlobId;
use crate::index::{Index, IndexFile, IndexedPack, MarkedPack};
use crate::pack::{self, BlobKind, PackWriter};
use crate::snapshot::Snapshot;

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
    /// Recorded in the lock.
    pub host: String,
}

/// What a prune found and did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Snapshots whose blobs were kept.
    pub snapshots: usize,
    /// Blobs in use.
    pub used_blobs: u64,
    /// Packs in the index before.
    pub packs_before: u64,
    /// Packs found unused and marked for deletion now (repacked ones included).
    pub packs_marked: u64,
    /// Bytes of those packs.
    pub bytes_marked: u64,
    /// Marked packs needed again and unmarked.
    pub packs_unmarked: u64,
    /// Marked packs whose delay has not passed yet.
    pub packs_waiting: u64,
    /// Packs deleted (marked long enough, or unindexed and old).
    pub packs_deleted: u64,
    /// Bytes freed by those deletions.
    pub bytes_deleted: u64,
    /// Of the deleted packs, those no index named (interrupted backups).
    pub unindexed_deleted: u64,
    /// Unindexed packs left because they are younger than the delay.
    pub unindexed_young: u64,
    /// Packs whose used blobs were copied into new packs.
    pub packs_repacked: u64,
    /// New packs written by repacking.
    pub packs_written: u64,
    /// Indexed packs not found in storage (damage; `check` reports it).
    pub packs_missing: u64,
    /// Unused bytes left in kept packs.
    pub unused_bytes_left: u64,
    /// Bytes in packs that stay unmarked.
    pub kept_bytes: u64,
    /// Superseded index files deleted.
    pub index_files_deleted: u64,
}

/// A pack's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Repack,
    Mark,
    StayMarked(i64),
    Delete,
    Forget,
}

/// One indexed pack with the blobs the index places in it.
struct PackUse {
    pack: IndexedPack,
    marked: Option<i64>,
    used: Vec<bool>,
    unused_bytes: u64,
    fate: Fate,
}

impl Repository {
    /// Runs one prune (see the module documentation).
    pub async fn prune(&self, opts: PruneOptions) -> Result<PruneReport> {
        let lock = if opts.dry_run {
            None
        } else {
            Some(self.lock_for_prune(&opts.host).await?)
        };
        failpoint::reach("prune-locked");
        let result = self.prune_locked(&opts).await;
        if let Some(lock) = lock {
            let released = lock.release().await;
            if result.is_ok() {
                released?;
            }
        }
        result
    }

    async fn prune_locked(&self, opts: &PruneOptions) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        // Snapshots first: every index file a listed snapshot depends on was
        // written before it, so the index loaded next covers them all.
        let snapshots = self.list_snapshots().await?;
        report.snapshots = snapshots.len();
        let LiveIndex { index, listed, .. } = self.load_live_index().await?;
        let index = Arc::new(index);
        let used = self.used_blobs(&index, &snapshots).await?;
        report.used_blobs = used.len() as u64;
        let stored: HashMap<String, (i64, u64)> = self
            .backend
            .list_with_times(Kind::Pack)
            .await?
            .into_iter()
            .map(|(n, t, size)| (n, (t, size)))
            .collect();
        let now = now_unix_ns();
        let delay = opts.delete_delay.as_nanos() as i64;

        let exported = index.export();
        let mut packs: Vec<PackUse> = exported
            .packs
            .into_iter()
            .map(|p| (p, None))
            .chain(
                exported
                    .marked
                    .into_iter()
                    .map(|m| (m.pack, Some(m.marked_unix_ns))),
            )
            .map(|(pack, marked)| {
                let used: Vec<bool> = pack.blobs.iter().map(|b| used.contains(&b.id)).collect();
                let unused_bytes = pack
                    .blobs
                    .iter()
                    .zip(&used)
                    .filter(|(_, u)| !**u)
                    .map(|(b, _)| b.length as u64)
                    .sum();
                PackUse {
                    pack,
                    marked,
                    used,
                    unused_bytes,
                    fate: Fate::Keep,
                }
            })
            .collect();
        report.packs_before = packs.len() as u64;

        let mut kept_bytes = 0u64;
        let mut unused_in_kept = 0u64;
        for p in &mut packs {
            let present = stored.contains_key(&p.pack.id.to_hex());
            let any_used = p.used.iter().any(|u| *u);
            p.fate = match (p.marked, any_used, present) {
                (None, _, false) => {
                    report.packs_missing += 1;
                    Fate::Keep
                }
                (None, false, true) if delay == 0 => Fate::Delete,
                (None, false, true) => Fate::Mark,
                (None, true, true) => Fate::Keep,
                (Some(_), true, _) => {
                    report.packs_unmarked += 1;
                    if !present {
                        report.packs_missing += 1;
                    }
                    Fate::Keep
                }
                (Some(_), false, false) => Fate::Forget,
                (Some(t), false, true) if now.saturating_sub(t) >= delay => Fate::Delete,
                (Some(t), false, true) => Fate::StayMarked(t),
            };
            if p.fate == Fate::Keep {
                kept_bytes += p.pack.size;
                unused_in_kept += p.unused_bytes;
            }
        }

        // Repack the partly used packs with the most unused share until
        // what is left is within the limit.
        let limit = match opts.max_unused {
            MaxUnused::Unlimited => u64::MAX,
            MaxUnused::Bytes(b) => b,
            MaxUnused::Percent(pct) => (kept_bytes as f64 * pct / 100.0) as u64,
        };
        let mut candidates: Vec<usize> = (0..packs.len())
            .filter(|&i| packs[i].fate == Fate::Keep && packs[i].unused_bytes > 0)
            .filter(|&i| stored.contains_key(&packs[i].pack.id.to_hex()))
            .collect();
        candidates.sort_by(|&a, &b| {
            let share = |p: &PackUse| p.unused_bytes as f64 / p.pack.size.max(1) as f64;
            share(&packs[b]).total_cmp(&share(&packs[a]))
        });
        for i in candidates {
            if unused_in_kept <= limit {
                break;
            }
            unused_in_kept -= packs[i].unused_bytes;
            kept_bytes -= packs[i].pack.size;
            packs[i].fate = Fate::Repack;
        }
        let repacked: Vec<bool> = packs.iter().map(|p| p.fate == Fate::Repack).collect();
        report.unused_bytes_left = unused_in_kept;

        // Unindexed packs: leftovers of interrupted (or still running)
        // backups; only old ones go.
        let indexed: HashSet<String> = packs.iter().map(|p| p.pack.id.to_hex()).collect();
        let mut unindexed_old = Vec::new();
        for (name, (mtime_ms, size)) in &stored {
            if indexed.contains(name) {
                continue;
            }
            if now.saturating_sub(mtime_ms.saturating_mul(1_000_000)) >= delay {
                unindexed_old.push((name.clone(), *size));
            } else {
                report.unindexed_young += 1;
            }
        }
        unindexed_old.sort();

        for p in &packs {
            if p.fate == Fate::Repack {
                report.packs_repacked += 1;
            }
            match p.fate {
                Fate::Mark | Fate::Repack if delay > 0 => {
                    report.packs_marked += 1;
                    report.bytes_marked += p.pack.size;
                }
                Fate::Mark | Fate::Repack => {
                    report.packs_deleted += 1;
                    report.bytes_deleted += p.pack.size;
                }
                Fate::StayMarked(_) => report.packs_waiting += 1,
                Fate::Delete => {
                    report.packs_deleted += 1;
                    report.bytes_deleted += p.pack.size;
                }
                Fate::Keep | Fate::Forget => {}
            }
        }
        report.unindexed_deleted = unindexed_old.len() as u64;
        report.packs_deleted += unindexed_old.len() as u64;
        report.bytes_deleted += unindexed_old.iter().map(|(_, s)| s).sum::<u64>();
        report.kept_bytes = kept_bytes;
        let nothing_to_do = packs
            .iter()
            .all(|p| matches!(p.fate, Fate::Keep | Fate::StayMarked(_)))
            && report.packs_unmarked == 0
            && unindexed_old.is_empty()
            && listed.len() <= 1;
        if opts.dry_run || nothing_to_do {
            return Ok(report);
        }

        // Phase: copy still-used blobs out of repacked packs.
        let new_packs = self.repack(&packs).await?;
        report.packs_written = new_packs.len() as u64;
        if delay == 0 {
            for (p, was_repacked) in packs.iter_mut().zip(&repacked) {
                if *was_repacked {
                    p.fate = Fate::Delete;
                }
            }
        }

        // Phase: one index file superseding everything listed.
        let mut file = IndexFile {
            supersedes: listed.clone(),
            ..IndexFile::default()
        };
        for p in &packs {
            match p.fate {
                Fate::Keep => file.packs.push(p.pack.clone()),
                Fate::Mark | Fate::Repack => file.marked.push(MarkedPack {
                    marked_unix_ns: now,
                    pack: p.pack.clone(),
                }),
                Fate::StayMarked(t) => file.marked.push(MarkedPack {
                    marked_unix_ns: t,
                    pack: p.pack.clone(),
                }),
                Fate::Delete | Fate::Forget => {}
            }
        }
        file.packs.extend(new_packs);
        self.write_index(&file).await?;
        failpoint::reach("prune-after-index");

        // Phase: deletions, packs first. A crash from here on leaves only
        // objects no live index needs; the next prune finishes the job.
        let doomed = packs
            .iter()
            .filter(|p| p.fate == Fate::Delete)
            .map(|p| p.pack.id.to_hex())
            .chain(unindexed_old.into_iter().map(|(n, _)| n));
        for (i, name) in doomed.enumerate() {
            self.backend.delete(&object_path(Kind::Pack, &name)).await?;
            if i == 0 {
                failpoint::reach("prune-deleting-packs");
            }
        }
        for id in &listed {
            self.backend
                .delete(&object_path(Kind::Index, &id.to_hex()))
                .await?;
            report.index_files_deleted += 1;
        }
        Ok(report)
    }

    /// Every blob the snapshots reference: their tree nodes and chunks. Each
    /// node is read once however many snapshots share it. A node or chunk
    /// that is not indexed stops the prune: deleting anything on the basis
    /// of a damaged repository could lose more.
    async fn used_blobs(
        &self,
        index: &Arc<Index>,
        snapshots: &[(crate::id::SnapshotId, Snapshot)],
    ) -> Result<HashSet<BlobId>> {
        let reader = BlobReader {
            backend: self.backend.clone(),
            key: self.key.clone(),
            index: index.clone(),
        };
        let mut used = HashSet::new();
        let mut whole = HashSet::new();
        let mut pending: Vec<BlobId> = Vec::new();
        for (_, snap) in snapshots {
            for s in &snap.streams {
                if used.insert(s.root) {
                    pending.push(s.root);
                }
            }
        }
        while !pending.is_empty() {
            let batch: Vec<BlobId> = pending.drain(..pending.len().min(1024)).collect();
            // Damage stops the prune before it changes anything.
            let nodes = reader.load_nodes(&batch, &mut whole).await?;
            for id in batch {
                let node = nodes.get(&id).ok_or_else(|| Error::Missing {
                    object: format!("tree blob {id}"),
                })?;
                for e in &node.entries {
                    if node.level == 0 && !index.contains(&e.id) {
                        return Err(Error::Missing {
                            object: format!(
                                "data blob {} (a snapshot needs it; prune stopped, run `coffer check`)",
                                e.id
                            ),
                        });
                    }
                    if used.insert(e.id) && node.level > 0 {
                        pending.push(e.id);
                    }
                }
            }
        }
        Ok(used)
    }

    /// Copies the used blobs of packs fated [`Fate::Repack`] into new packs
    /// (data and tree apart, as backups write them); returns their entries.
    async fn repack(&self, packs: &[PackUse]) -> Result<Vec<IndexedPack>> {
        let pack_size = self.config.pack_size as usize;
        let level = self.config.compression_level;
        let mut writers: [Option<PackWriter>; 2] = [None, None];
        let mut done = Vec::new();
        let jobs: Vec<&PackUse> = packs.iter().filter(|p| p.fate == Fate::Repack).collect();
        let mut fetched = futures::stream::iter(jobs)
            .map(|p| async move {
                let path = object_path(Kind::Pack, &p.pack.id.to_hex());
                Ok::<_, Error>((p, path.clone(), self.backend.get(&path).await?))
            })
            .buffered(2);
        while let Some(r) = fetched.next().await {
            let (p, path, bytes) = r?;
            let (key, salt) = (self.key.clone(), p.pack.salt);
            let wanted: Vec<pack::BlobEntry> = p
                .pack
                .blobs
                .iter()
                .zip(&p.used)
                .filter(|(_, u)| **u)
                .map(|(b, _)| *b)
                .collect();
            let blobs = blocking(move || {
                let subkey = key.subkey(&salt);
                wanted
                    .iter()
                    .map(|e| {
                        let sealed = bytes
                            .get(e.range().start as usize..e.range().end as usize)
                            .ok_or_else(|| Error::corrupt(path.clone(), "truncated"))?;
                        let plain = pack::open_blob(&key, &subkey, e, sealed)
                            .map_err(|r| Error::corrupt(path.clone(), r))?;
                        let (enc, payload) = compress::compress(&plain, level);
                        Ok((*e, enc, payload))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
            for (e, enc, payload) in blobs {
                let slot = usize::from(e.kind == BlobKind::Tree as u8);
                let kind = if slot == 1 {
                    BlobKind::Tree
                } else {
                    BlobKind::Data
                };
                let w = writers[slot]
                    .get_or_insert_with(|| PackWriter::new(&self.key, pack_size + (1 << 20)));
                w.add(kind, e.id, enc, &payload, e.raw_length);
                if w.len() >= pack_size {
                    let full = writers[slot].take().expect("just filled");
                    done.push(self.upload_new_pack(full).await?);
                }
            }
        }
        for w in writers.into_iter().flatten() {
            done.push(self.upload_new_pack(w).await?);
        }
        Ok(done)
    }

    async fn upload_new_pack(&self, w: PackWriter) -> Result<IndexedPack> {
        let finished = blocking(move || w.finish()).await;
        super::store_pack(&self.backend, finished).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!("5%".parse::<MaxUnused>(), Ok(MaxUnused::Percent(5.0)));
        assert_eq!("unlimited".parse::<MaxUnused>(), Ok(MaxUnused::Unlimited));
        assert_eq!("200M".parse::<MaxUnused>(), Ok(MaxUnused::Bytes(200 << 20)));
        assert_eq!("0".parse::<MaxUnused>(), Ok(MaxUnused::Bytes(0)));
        assert!("150%".parse::<MaxUnused>().is_err());
        assert!("5x".parse::<MaxUnused>().is_err());
        assert!("".parse::<MaxUnused>().is_err());
    }
}
