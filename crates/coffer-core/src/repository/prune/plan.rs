//! Prune's decisions, apart from its effects: a pure function from the
//! indexed packs (with the blobs the snapshots use), the packs in storage,
//! the time and the options, to the fate of every pack and the report. The
//! execution in [`super`] only carries the plan out.
//!
//! Per indexed pack (marked or not, any blob used, present in storage):
//! * unmarked, used, present: kept (and repacked if it holds enough unused
//!   space, see below);
//! * unmarked, unused, present: marked (deleted at once with a zero delay);
//! * absent and either unmarked or used: dropped from the index and counted
//!   missing (damage `check` reports): backups stop deduplicating against
//!   blobs that are gone, so new snapshots store them again;
//! * marked, used, present: *rescued*. A backup that loaded the index before
//!   the mark committed a snapshot needing it. Its used blobs are copied
//!   into new packs and it stays marked with its old time: a pack never
//!   goes back from marked to usable, so no writer holding an older view can
//!   resurrect an old mark over a newer decision;
//! * marked, unused, absent: its stale mark is dropped from the index;
//! * marked, unused, present: deleted once marked for the delay, else it
//!   stays marked.
//!
//! Then partly used kept packs with the largest unused share are repacked
//! until the unused space left is within `max_unused`; a repacked pack is
//! marked (deleted at once with a zero delay). Stored packs no index names,
//! older than the delay, are leftovers of interrupted backups and deleted.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::MaxUnused;
use crate::backend::StagingFile;
use crate::id::PackId;
use crate::index::PackInfo;

/// What a prune found and did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    /// Marked packs a new snapshot needs again: their used blobs were copied
    /// into new packs (they stay marked).
    pub packs_rescued: u64,
    /// Marked packs whose delay has not passed yet.
    pub packs_waiting: u64,
    /// Bytes of every pack left marked (waiting, and marked now): what
    /// later prunes will free.
    pub bytes_waiting: u64,
    /// When the last of those packs may be deleted (Unix ns, prune's
    /// clock): a prune run after this frees all of `bytes_waiting`.
    pub freed_after_unix_ns: Option<i64>,
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
    /// Indexed packs not found in storage, dropped from the index (damage;
    /// `check` reports the snapshots it breaks).
    pub packs_missing: u64,
    /// Unused bytes left in kept packs.
    pub unused_bytes_left: u64,
    /// Bytes in packs that stay unmarked.
    pub kept_bytes: u64,
    /// Superseded index files deleted.
    pub index_files_deleted: u64,
    /// Staging files of interrupted local writes deleted (their bytes are
    /// in `bytes_deleted`).
    pub staging_deleted: u64,
    /// Chunks stored whole again by re-basing (the newest version of a
    /// stream, or a delta that no longer paid).
    pub chunks_made_whole: u64,
    /// Chunks stored as deltas against a newer version by re-basing (dry
    /// run: to be tried).
    pub chunks_made_deltas: u64,
    /// Bytes of the packs re-basing wrote.
    pub bytes_rebased: u64,
}

/// A pack's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Stays indexed, unmarked.
    Keep,
    /// Its used blobs are copied into new packs, then it is marked (or, with
    /// a zero delay, deleted); a marked pack keeps its mark's time.
    Repack,
    /// Marked unused now.
    Mark,
    /// Stays marked since the given time (Unix ns): the delay has not passed.
    StayMarked(i64),
    /// Deleted from storage and dropped from the index.
    Delete,
    /// Marked and already gone from storage: the stale mark is dropped.
    DropStaleMark,
    /// Gone from storage though needed or unmarked: dropped from the index.
    DropMissing,
}

/// What prune's pass over the blobs the index keeps adds up for one pack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tally {
    /// Blobs the index keeps in the pack.
    listed: u64,
    /// Their sealed bytes.
    listed_bytes: u64,
    /// Bytes of those whose copy here re-basing replaced.
    replaced_bytes: u64,
    /// Bytes of the others that no snapshot uses.
    unused_bytes: u64,
    /// Some blob of the pack is used (and not replaced).
    any_used: bool,
}

impl Tally {
    /// Counts one blob the index keeps in the pack: its sealed length,
    /// whether a snapshot uses it, and whether re-basing replaced this copy
    /// (then it is dropped from the pack's listing and counts as unused).
    pub fn add(&mut self, length: u32, used: bool, replaced: bool) {
        let length = length as u64;
        self.listed += 1;
        self.listed_bytes += length;
        if replaced {
            self.replaced_bytes += length;
        } else if used {
            self.any_used = true;
        } else {
            self.unused_bytes += length;
        }
    }

    /// Unused bytes of a pack of `size` bytes: its unused and replaced
    /// blobs, and the bytes no listed blob accounts for (copies an earlier
    /// re-basing replaced, or duplicates the index keeps elsewhere), so
    /// that repacking reclaims those too.
    fn unused_in(&self, size: u64) -> u64 {
        let overhead = crate::pack::pack_overhead(self.listed as usize);
        let hidden = size.saturating_sub(self.listed_bytes + overhead);
        hidden + self.replaced_bytes + self.unused_bytes
    }
}

/// One indexed pack, whether the snapshots use it, and its fate.
#[derive(Debug, Clone)]
pub(super) struct PackUse {
    /// Its (canonical) number in the blob map.
    pub number: u32,
    pub id: PackId,
    pub size: u64,
    /// Marked for deletion since (Unix ns).
    pub marked: Option<i64>,
    /// Some blob of it is used by a snapshot.
    pub any_used: bool,
    /// Sealed bytes of the unused blobs, and of bytes no blob accounts for.
    pub unused_bytes: u64,
    pub fate: Fate,
}

impl PackUse {
    /// True when the prune deletes the pack: fated so, or repacked with a
    /// zero delay (its blobs are copied first).
    pub fn deleted_now(&self, delay: i64) -> bool {
        self.fate == Fate::Delete || (self.fate == Fate::Repack && delay == 0)
    }

    /// Pack number `number` (`info` as the map has it) with what the pass
    /// over its blobs counted.
    pub fn new(number: u32, info: &PackInfo, tally: &Tally) -> Self {
        PackUse {
            number,
            id: info.id,
            size: info.size,
            marked: info.marked,
            any_used: tally.any_used,
            unused_bytes: tally.unused_in(info.size),
            fate: Fate::Keep,
        }
    }
}

/// The inputs of a plan besides the packs.
#[derive(Debug, Clone)]
pub(super) struct PlanInput<'a> {
    /// Packs in storage by name: (last modified, Unix ms; size).
    pub stored: &'a HashMap<String, (i64, u64)>,
    /// The reference time (Unix ns).
    pub now: i64,
    /// The delete delay (ns).
    pub delay: i64,
    /// Unused space tolerated in kept packs.
    pub max_unused: MaxUnused,
    /// Index files listed (more than one means a rewrite is worth it).
    pub index_files: usize,
    /// Staging files of interrupted local writes.
    pub staging: &'a [StagingFile],
}

/// What a prune will do.
pub(super) struct Plan {
    /// Every indexed pack with its fate.
    pub packs: Vec<PackUse>,
    /// Unindexed packs old enough to delete: (name, size), sorted.
    pub unindexed_old: Vec<(String, u64)>,
    /// Staging files old enough to delete.
    pub staging_old: Vec<StagingFile>,
    /// The report (written index and deletions counted when they happen).
    pub report: PruneReport,
    /// True when nothing would change: no write at all.
    pub nothing_to_do: bool,
}

/// Decides every pack's fate (see the module documentation).
pub(super) fn plan(mut packs: Vec<PackUse>, input: &PlanInput<'_>) -> Plan {
    let mut report = PruneReport {
        packs_before: packs.len() as u64,
        ..PruneReport::default()
    };
    let delay = input.delay;
    let mut kept_bytes = 0u64;
    let mut unused_in_kept = 0u64;
    for p in &mut packs {
        let present = input.stored.contains_key(&p.id.to_hex());
        p.fate = match (p.marked, p.any_used, present) {
            (None, _, false) | (Some(_), true, false) => {
                report.packs_missing += 1;
                Fate::DropMissing
            }
            (None, false, true) if delay == 0 => Fate::Delete,
            (None, false, true) => Fate::Mark,
            (None, true, true) => Fate::Keep,
            (Some(_), true, true) => {
                report.packs_rescued += 1;
                Fate::Repack
            }
            (Some(_), false, false) => Fate::DropStaleMark,
            // A zero delay deletes at once, whatever the clocks: stores that
            // keep whole seconds can put a mark a moment "ahead" of a
            // prune run right after the one that made it.
            (Some(t), false, true) if delay == 0 || input.now.saturating_sub(t) >= delay => {
                Fate::Delete
            }
            (Some(t), false, true) => Fate::StayMarked(t),
        };
        if p.fate == Fate::Keep {
            kept_bytes += p.size;
            unused_in_kept += p.unused_bytes;
        }
    }

    // Repack the partly used packs with the most unused share until what
    // is left is within the limit.
    let limit = match input.max_unused {
        MaxUnused::Unlimited => u64::MAX,
        MaxUnused::Bytes(b) => b,
        MaxUnused::Percent(pct) => (kept_bytes as f64 * pct / 100.0) as u64,
    };
    let mut candidates: Vec<usize> = (0..packs.len())
        .filter(|&i| packs[i].fate == Fate::Keep && packs[i].unused_bytes > 0)
        .filter(|&i| input.stored.contains_key(&packs[i].id.to_hex()))
        .collect();
    let share = |p: &PackUse| p.unused_bytes as f64 / p.size.max(1) as f64;
    candidates.sort_by(|&a, &b| share(&packs[b]).total_cmp(&share(&packs[a])));
    for i in candidates {
        if unused_in_kept <= limit {
            break;
        }
        unused_in_kept -= packs[i].unused_bytes;
        kept_bytes -= packs[i].size;
        packs[i].fate = Fate::Repack;
    }
    report.unused_bytes_left = unused_in_kept;
    report.kept_bytes = kept_bytes;

    // Unindexed packs: leftovers of interrupted (or still running)
    // backups; only old ones go.
    let indexed: HashSet<String> = packs.iter().map(|p| p.id.to_hex()).collect();
    let mut unindexed_old = Vec::new();
    for (name, (mtime_ms, size)) in input.stored {
        if indexed.contains(name) {
            continue;
        }
        if delay == 0 || input.now.saturating_sub(mtime_ms.saturating_mul(1_000_000)) >= delay {
            unindexed_old.push((name.clone(), *size));
        } else {
            report.unindexed_young += 1;
        }
    }
    unindexed_old.sort();
    // Staging files of interrupted local writes: aged like unindexed packs
    // (a running backup may be writing one).
    let staging_old: Vec<StagingFile> = input
        .staging
        .iter()
        .filter(|f| {
            delay == 0
                || input
                    .now
                    .saturating_sub(f.modified_ms.saturating_mul(1_000_000))
                    >= delay
        })
        .cloned()
        .collect();

    for p in &packs {
        if p.fate == Fate::Repack {
            report.packs_repacked += 1;
        }
        let marked_at = match p.fate {
            Fate::Repack | Fate::Mark if delay > 0 => Some(p.marked.unwrap_or(input.now)),
            Fate::StayMarked(t) => Some(t),
            _ => None,
        };
        if let Some(t) = marked_at {
            report.bytes_waiting += p.size;
            let free = t.saturating_add(delay);
            report.freed_after_unix_ns =
                Some(report.freed_after_unix_ns.map_or(free, |f| f.max(free)));
        }
        match p.fate {
            // A rescued pack was marked before: it waits, not newly marked.
            Fate::Repack if delay > 0 && p.marked.is_some() => report.packs_waiting += 1,
            Fate::Mark | Fate::Repack if delay > 0 => {
                report.packs_marked += 1;
                report.bytes_marked += p.size;
            }
            Fate::Mark | Fate::Repack | Fate::Delete => {
                report.packs_deleted += 1;
                report.bytes_deleted += p.size;
            }
            Fate::StayMarked(_) => report.packs_waiting += 1,
            Fate::Keep | Fate::DropStaleMark | Fate::DropMissing => {}
        }
    }
    report.unindexed_deleted = unindexed_old.len() as u64;
    report.packs_deleted += unindexed_old.len() as u64;
    report.bytes_deleted += unindexed_old.iter().map(|(_, s)| s).sum::<u64>();
    report.staging_deleted = staging_old.len() as u64;
    report.bytes_deleted += staging_old.iter().map(|f| f.size).sum::<u64>();
    let nothing_to_do = packs
        .iter()
        .all(|p| matches!(p.fate, Fate::Keep | Fate::StayMarked(_)))
        && unindexed_old.is_empty()
        && staging_old.is_empty()
        && input.index_files <= 1;
    Plan {
        packs,
        unindexed_old,
        staging_old,
        report,
        nothing_to_do,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000_000;
    const NOW: i64 = 100 * DAY;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Used {
        None,
        Part,
        All,
    }

    /// Pack `n` of 180 bytes holding 4 blobs of 20 (its overhead leaves no
    /// unaccounted bytes), whose first `used` blobs are used.
    fn pack(n: u8, marked: Option<i64>, used: Used) -> PackUse {
        let in_use = match used {
            Used::None => 0,
            Used::Part => 1,
            Used::All => 4,
        };
        let mut tally = Tally::default();
        for i in 0..4 {
            tally.add(20, i < in_use, false);
        }
        let info = PackInfo {
            id: PackId([n; 32]),
            salt: [0; 32],
            size: 180,
            marked,
        };
        assert!(80 + crate::pack::pack_overhead(4) >= 180);
        PackUse::new(n as u32, &info, &tally)
    }

    #[test]
    fn bytes_no_listed_blob_accounts_for_count_unused() {
        // One listed blob of 20 bytes in a pack with 500 more bytes of
        // blobs the index no longer lists (replaced copies, duplicates).
        let size = 20 + 500 + crate::pack::pack_overhead(1);
        let info = PackInfo {
            id: PackId([1; 32]),
            salt: [0; 32],
            size,
            marked: None,
        };
        let mut used = Tally::default();
        used.add(20, true, false);
        let p = PackUse::new(1, &info, &used);
        assert_eq!((p.unused_bytes, p.any_used), (500, true));
        // Replacing the listed blob too: all of it is unused.
        let mut replaced = Tally::default();
        replaced.add(20, true, true);
        let p = PackUse::new(1, &info, &replaced);
        assert_eq!((p.unused_bytes, p.any_used), (520, false));
        // An unused blob counts with the hidden bytes.
        let mut unused = Tally::default();
        unused.add(20, false, false);
        assert_eq!(PackUse::new(1, &info, &unused).unused_bytes, 520);
    }

    fn stored_as(packs: &[(u8, i64)]) -> HashMap<String, (i64, u64)> {
        packs
            .iter()
            .map(|(n, mtime_ns)| (PackId([*n; 32]).to_hex(), (mtime_ns / 1_000_000, 180)))
            .collect()
    }

    fn input(stored: &HashMap<String, (i64, u64)>, delay: i64, max: MaxUnused) -> PlanInput<'_> {
        PlanInput {
            stored,
            now: NOW,
            delay,
            max_unused: max,
            index_files: 1,
            staging: &[],
        }
    }

    #[test]
    fn every_combination_of_marked_used_present_and_age() {
        let old = Some(NOW - 2 * DAY);
        let recent = Some(NOW - DAY / 2);
        use Fate::*;
        #[rustfmt::skip]
        let table: &[(Option<i64>, Used, bool, i64, Fate)] = &[
            // unmarked
            (None, Used::None, true, DAY, Mark),
            (None, Used::None, true, 0, Delete),
            (None, Used::Part, true, DAY, Keep),
            (None, Used::All, true, DAY, Keep),
            (None, Used::All, true, 0, Keep),
            (None, Used::None, false, DAY, DropMissing),
            (None, Used::All, false, DAY, DropMissing),
            // marked long enough ago
            (old, Used::None, true, DAY, Delete),
            (old, Used::None, true, 0, Delete),
            (old, Used::Part, true, DAY, Repack),
            (old, Used::All, true, DAY, Repack),
            (old, Used::All, true, 0, Repack),
            (old, Used::None, false, DAY, DropStaleMark),
            (old, Used::All, false, DAY, DropMissing),
            // marked recently
            (recent, Used::None, true, DAY, StayMarked(NOW - DAY / 2)),
            (recent, Used::None, true, 0, Delete),
            (recent, Used::All, true, DAY, Repack),
            (recent, Used::None, false, DAY, DropStaleMark),
            // A mark "ahead" of the clock (a store keeping whole seconds).
            (Some(NOW + 500_000_000), Used::None, true, 0, Delete),
            (Some(NOW + 500_000_000), Used::None, true, DAY, StayMarked(NOW + 500_000_000)),
            (recent, Used::Part, false, DAY, DropMissing),
        ];
        for &(marked, used, present, delay, want) in table {
            let stored = if present {
                stored_as(&[(1, NOW - 10 * DAY)])
            } else {
                HashMap::new()
            };
            let p = plan(
                vec![pack(1, marked, used)],
                &input(&stored, delay, MaxUnused::Unlimited),
            );
            let case =
                format!("marked {marked:?}, used {used:?}, present {present}, delay {delay}");
            assert_eq!(p.packs[0].fate, want, "{case}");
            let r = &p.report;
            let rescued = marked.is_some() && want == Repack;
            assert_eq!(r.packs_missing, u64::from(want == DropMissing), "{case}");
            assert_eq!(r.packs_rescued, u64::from(rescued), "{case}");
            let deleted = want == Delete || (rescued && delay == 0);
            assert_eq!(r.packs_deleted, u64::from(deleted), "{case}");
            assert_eq!(r.packs_marked, u64::from(want == Mark), "{case}");
            let waiting = matches!(want, StayMarked(_)) || (rescued && delay > 0);
            assert_eq!(r.packs_waiting, u64::from(waiting), "{case}");
            // Whatever stays marked is freed one delay after its mark.
            let left_marked = waiting || want == Mark || (want == Repack && delay > 0);
            let free = left_marked.then(|| marked.unwrap_or(NOW) + delay);
            assert_eq!(r.freed_after_unix_ns, free, "{case}");
            let size = p.packs[0].size;
            assert_eq!(
                r.bytes_waiting,
                if left_marked { size } else { 0 },
                "{case}"
            );
        }
    }

    #[test]
    fn repacks_the_emptiest_packs_until_within_the_limit() {
        // Unused bytes: pack 1 uses one blob of four (60 unused), pack 2
        // three of four (20 unused), pack 3 all; 80 of 540 kept bytes.
        let three = || {
            let mut most = pack(2, None, Used::All);
            most.unused_bytes = 20;
            vec![pack(1, None, Used::Part), most, pack(3, None, Used::All)]
        };
        let stored = stored_as(&[(1, 0), (2, 0), (3, 0)]);
        // 15% tolerates 80 of 540.
        let p = plan(three(), &input(&stored, DAY, MaxUnused::Percent(15.0)));
        assert!(p.packs.iter().all(|p| p.fate == Fate::Keep));
        assert_eq!(p.report.unused_bytes_left, 80);
        // 10% does not: the emptiest pack goes, then 20 of 360 is within it.
        let p = plan(three(), &input(&stored, DAY, MaxUnused::Percent(10.0)));
        let fates: Vec<Fate> = p.packs.iter().map(|p| p.fate).collect();
        assert_eq!(fates, [Fate::Repack, Fate::Keep, Fate::Keep]);
        assert_eq!((p.report.unused_bytes_left, p.report.kept_bytes), (20, 360));

        let packs = vec![pack(1, None, Used::Part), pack(3, None, Used::All)];
        let p = plan(packs, &input(&stored, DAY, MaxUnused::Bytes(0)));
        assert_eq!(p.packs[0].fate, Fate::Repack);
        assert_eq!(p.packs[1].fate, Fate::Keep);
        assert_eq!((p.report.packs_repacked, p.report.packs_marked), (1, 1));
        assert_eq!((p.report.unused_bytes_left, p.report.kept_bytes), (0, 180));
        // With a zero delay, a repacked pack is deleted, not marked.
        let only_1 = stored_as(&[(1, 0)]);
        let packs = vec![pack(1, None, Used::Part)];
        let p = plan(packs, &input(&only_1, 0, MaxUnused::Bytes(0)));
        assert_eq!(p.packs[0].fate, Fate::Repack);
        assert_eq!((p.report.packs_marked, p.report.packs_deleted), (0, 1));
        // A missing pack is never a repack candidate: it is dropped.
        let p = plan(
            vec![pack(9, None, Used::Part)],
            &input(&stored, DAY, MaxUnused::Bytes(0)),
        );
        assert_eq!(p.packs[0].fate, Fate::DropMissing);
        assert_eq!(p.report.packs_repacked, 0);
    }

    #[test]
    fn unindexed_packs_go_only_once_older_than_the_delay() {
        let stored = stored_as(&[(1, NOW - 2 * DAY), (2, NOW - DAY / 2), (3, NOW)]);
        let p = plan(
            vec![pack(3, None, Used::All)],
            &input(&stored, DAY, MaxUnused::Unlimited),
        );
        assert_eq!(p.unindexed_old, vec![(PackId([1; 32]).to_hex(), 180)]);
        assert_eq!(p.report.unindexed_young, 1);
        assert_eq!((p.report.unindexed_deleted, p.report.packs_deleted), (1, 1));
        assert!(!p.nothing_to_do);
        // Staging files of interrupted local writes age the same way.
        let staging = [
            StagingFile {
                path: "data/ab/old#1".into(),
                modified_ms: (NOW - 2 * DAY) / 1_000_000,
                size: 7,
            },
            StagingFile {
                path: "data/ab/new#1".into(),
                modified_ms: NOW / 1_000_000,
                size: 9,
            },
        ];
        let with_staging = PlanInput {
            staging: &staging,
            ..input(&stored, DAY, MaxUnused::Unlimited)
        };
        let p = plan(vec![pack(3, None, Used::All)], &with_staging);
        assert_eq!(p.staging_old, staging[..1]);
        assert_eq!(p.report.staging_deleted, 1);
    }

    #[test]
    fn nothing_to_do_writes_nothing() {
        let stored = stored_as(&[(1, 0), (2, 0)]);
        let waiting = Some(NOW - DAY / 2);
        let packs = vec![pack(1, None, Used::All), pack(2, waiting, Used::None)];
        let p = plan(packs, &input(&stored, DAY, MaxUnused::Unlimited));
        assert!(p.nothing_to_do);
        // Several index files are worth folding into one even then.
        let packs = vec![pack(1, None, Used::All)];
        let two_files = PlanInput {
            index_files: 2,
            ..input(&stored, DAY, MaxUnused::Unlimited)
        };
        assert!(!plan(packs, &two_files).nothing_to_do);
    }
}
