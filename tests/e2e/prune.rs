//! `prune` reclaims the space of forgotten snapshots in two phases (mark,
//! then delete after the delay), repacks partly used packs, reclaims what
//! interrupted backups left, excludes a second prune, and never loses a blob
//! a snapshot needs, even with backups running at the same time.

use coffer_e2e::{dump_like, noise, snapshot_id as id, Change, Store, TestRepo};
use serde_json::Value;

use crate::errors::assert_fails;

/// Runs `prune --json` with extra arguments; returns the report.
pub fn prune(repo: &TestRepo, extra: &[&str]) -> Value {
    let mut args = vec!["prune", "--json"];
    args.extend_from_slice(extra);
    repo.run_ok(&args, b"").json()
}

fn data_bytes(repo: &TestRepo) -> u64 {
    repo.objects("data").iter().map(|(_, s)| s).sum()
}

fn prune_marks_then_deletes_and_keeps_what_snapshots_need(store: Store) {
    let repo = TestRepo::new_on(store);
    let old = noise(3_000_000, 1);
    let kept = noise(3_000_000, 2);
    let a = repo.backup(&old, &[]);
    let b = repo.backup(&kept, &[]);
    let full = data_bytes(&repo);

    // Nothing to reclaim yet.
    let r = prune(&repo, &[]);
    assert_eq!(
        (r["packs_marked"].as_u64(), r["packs_deleted"].as_u64()),
        (Some(0), Some(0))
    );

    let out = repo.run(&["forget", &id(&a)], b"");
    out.assert_ok();
    // Dry run: says what, changes nothing.
    let dry = prune(&repo, &["--dry-run"]);
    assert!(dry["packs_marked"].as_u64().unwrap() >= 1, "{dry}");
    let r = prune(&repo, &["--dry-run"]);
    assert_eq!(r["packs_marked"], dry["packs_marked"]);

    // Phase one marks, deletes nothing, and says when the space comes
    // back: one delete delay (1d by default) from now.
    let before = jiff::Timestamp::now().as_nanosecond() as i64;
    let r = prune(&repo, &[]);
    assert!(r["packs_marked"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["packs_deleted"].as_u64(), Some(0));
    assert_eq!(r["bytes_waiting"], r["bytes_marked"], "{r}");
    let day: i64 = 86_400 * 1_000_000_000;
    // Marks are stamped with prune's clock, which follows the storage's:
    // allow the test servers' clocks some minutes.
    let freed = r["freed_after_unix_ns"].as_i64().unwrap();
    let slack = 600 * 1_000_000_000;
    assert!((freed - (before + day)).abs() < slack, "{r}");
    // Run again, the marks wait, and the report says until when.
    let text = repo.run_ok(&["prune"], b"").stderr();
    assert!(text.contains("is freed by a prune run after "), "{text}");
    assert_eq!(data_bytes(&repo), full);
    repo.assert_check_passes(false);
    // A marked pack's blobs are not deduplicated against: backing the
    // old data up again stores it again.
    let again = repo.backup(&old, &[]);
    assert!(again["new_chunks"].as_u64().unwrap() > 0, "{again}");
    let out = repo.run(&["forget", &id(&again)], b"");
    assert!(out.status.success());

    // Phase two (the delay passed; 0h here) deletes.
    let r = prune(&repo, &["--delete-delay", "0h"]);
    assert!(r["packs_deleted"].as_u64().unwrap() >= 2, "{r}");
    assert!(
        data_bytes(&repo) < full * 6 / 10,
        "{} of {full}",
        data_bytes(&repo)
    );
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&b)) == kept);
    // Superseded index files are gone: one live index file is left.
    assert_eq!(repo.objects("index").len(), 1);
    // A later backup and prune work.
    let c = repo.backup(&old, &[]);
    prune(&repo, &["--delete-delay", "0h"]);
    assert!(repo.restore(&id(&c)) == old);
    assert!(repo.restore(&id(&b)) == kept);
}

#[test]
fn prune_repacks_partly_used_packs() {
    let repo = TestRepo::new();
    let whole = noise(6_000_000, 3);
    let half = whole[..3_000_000].to_vec();
    let a = repo.backup(&whole, &[]);
    assert_eq!(repo.objects("data").len(), 2, "one data and one tree pack");
    let b = repo.backup(&half, &[]);
    let out = repo.run(&["forget", &id(&a)], b"");
    assert!(out.status.success());
    // Tolerating any unused space: nothing to do.
    let r = prune(&repo, &["--max-unused", "unlimited", "--dry-run"]);
    assert_eq!(r["packs_repacked"].as_u64(), Some(0), "{r}");
    let r = prune(&repo, &["--max-unused", "5%", "--delete-delay", "0h"]);
    assert!(r["packs_repacked"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["packs_written"].as_u64().unwrap() >= 1, "{r}");
    // With no delay the repacked pack is deleted in the same run (what is
    // left: half the data, and a tree pack with its tree and sketch).
    assert!(data_bytes(&repo) < 3_350_000, "{}", data_bytes(&repo));
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&b)) == half);
}

/// Prune works from the cache's index tables, a pass at a time; without a
/// cache it holds the index in memory. Both decide the same, down to the
/// byte, on a repository with deltas, shared chunks and a forgotten day.
#[test]
fn prune_decides_the_same_with_and_without_the_index_cache() {
    let repo = TestRepo::new();
    let day0 = dump_like(4_000_000, Change::None);
    let day1 = dump_like(4_000_000, Change::Day(1));
    let day2 = dump_like(4_000_000, Change::Day(2));
    let a = repo.backup(&day0, &[]);
    repo.backup(&day1, &[]);
    let c = repo.backup(&day2, &[]);
    // A pack half of which is forgotten: a repack candidate.
    let whole = noise(3_000_000, 10);
    let w = repo.backup(&whole, &[]);
    repo.backup(&whole[..1_500_000], &[]);
    repo.run_ok(&["forget", &id(&a), &id(&w)], b"");
    for limits in [&["--max-unused", "0"][..], &["--max-unused", "unlimited"]] {
        let mut dry = vec!["--dry-run"];
        dry.extend_from_slice(limits);
        let tables = prune(&repo, &dry);
        let mut args = vec!["--no-cache", "prune", "--json"];
        args.extend_from_slice(&dry);
        let memory = repo.run_ok(&args, b"").json();
        // All but the clock and the requests made.
        let decided = |mut r: Value| {
            let r = r.as_object_mut().unwrap();
            r.remove("requests");
            r.remove("freed_after_unix_ns");
            r.clone()
        };
        assert_eq!(decided(tables.clone()), decided(memory));
        assert!(tables["used_blobs"].as_u64().unwrap() > 0, "{tables}");
    }
    let r = repo
        .run_ok(
            &[
                "--no-cache",
                "prune",
                "--json",
                "--max-unused",
                "0",
                "--delete-delay",
                "0h",
            ],
            b"",
        )
        .json();
    assert!(r["packs_repacked"].as_u64().unwrap() >= 1, "{r}");
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&c)) == day2);
}

#[test]
fn prune_reclaims_what_interrupted_backups_left_after_the_delay() {
    let repo = TestRepo::new();
    let a = repo.backup(b"committed\n", &[]);
    // A backup killed after uploading its packs, before its index.
    repo.run_killed_at(
        &["backup", "--stdin"],
        "backup-before-index",
        &noise(2_000_000, 4),
    );
    let leftovers = repo.objects("data").len();
    assert!(leftovers >= 3, "{leftovers}");
    // Young leftovers may belong to a running backup: kept.
    let r = prune(&repo, &[]);
    assert_eq!(r["packs_deleted"].as_u64(), Some(0), "{r}");
    assert!(r["unindexed_young"].as_u64().unwrap() >= 1, "{r}");
    let r = prune(&repo, &["--delete-delay", "0h"]);
    assert!(r["unindexed_deleted"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(repo.objects("data").len(), leftovers - 2);
    repo.assert_check_passes(true);
    assert_eq!(repo.restore(&id(&a)), b"committed\n");
}

#[test]
fn a_second_prune_is_refused_while_one_runs() {
    let repo = TestRepo::new();
    repo.backup(b"data\n", &[]);
    let mut first = repo.spawn_paused(&["prune"], "prune-locked", Vec::new());
    first.wait_reached();
    assert_fails(
        &repo.run(&["prune"], b""),
        22,
        "another prune holds the repository",
    );
    first.resume().ok();
    // Released: prune works again, and leaves no lock behind.
    prune(&repo, &[]);
    assert!(repo.objects("locks").is_empty());
}

/// A backup that loaded the index before a prune marked the packs it
/// reuses commits a snapshot needing them: the next prune rescues their
/// blobs (copies them into new packs) instead of deleting them.
fn prune_rescues_packs_a_backup_started_before_the_mark_needs(store: Store) {
    let repo = TestRepo::new_on(store);
    let data = noise(2_000_000, 5);
    let a = repo.backup(&data, &[]);
    let mut slow = repo.spawn_paused_backup(data.clone());
    slow.wait_reached();
    repo.run_ok(&["forget", &id(&a)], b"");
    let r = prune(&repo, &[]);
    assert!(r["packs_marked"].as_u64().unwrap() >= 1, "{r}");
    let b = slow.resume().ok().json();
    assert_eq!(
        b["new_chunks"].as_u64(),
        Some(0),
        "it deduplicated against the packs"
    );
    // Past the delay the packs would go, but a snapshot needs them.
    let r = prune(&repo, &["--delete-delay", "0h"]);
    assert!(r["packs_rescued"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["packs_written"].as_u64().unwrap() >= 1, "{r}");
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&b)) == data);
    let r = prune(&repo, &["--delete-delay", "0h"]);
    assert_eq!(r["packs_deleted"].as_u64(), Some(0), "{r}");
    assert!(repo.restore(&id(&b)) == data);
}

/// A backup running longer than its recheck interval re-reads the index
/// before committing; if a prune marked what it reuses, it fails (exit 22)
/// rather than commit, and a rerun succeeds.
#[test]
fn a_long_backup_fails_rather_than_commit_data_a_prune_marked() {
    let repo = TestRepo::new();
    let data = noise(2_000_000, 6);
    let a = repo.backup(&data, &[]);
    let mut slow = repo.spawn_paused(
        &["backup", "--stdin", "--recheck-after-secs", "0"],
        "backup-before-index",
        data.clone(),
    );
    slow.wait_reached();
    repo.run_ok(&["forget", &id(&a)], b"");
    prune(&repo, &[]);
    let out = slow.resume();
    assert_eq!(out.status.code(), Some(22), "{}", out.explain());
    assert!(
        out.stderr().contains("marked for deletion"),
        "{}",
        out.explain()
    );
    assert!(repo.objects("snapshots").is_empty());
    // Run again: the data is stored anew and restores.
    let b = repo.backup(&data, &[]);
    assert!(b["new_chunks"].as_u64().unwrap() > 0);
    prune(&repo, &["--delete-delay", "0h"]);
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&b)) == data);
}

/// Many backups and prunes at once (the "many writers"): every
/// snapshot restores, check passes, and a final prune past the delay
/// leaves a sound repository.
fn concurrent_backups_and_prunes_lose_nothing(store: Store) {
    let repo = TestRepo::new_on(store);
    let base = dump_like(3_000_000, Change::None);
    repo.backup(&base, &[]);
    let inputs: Vec<Vec<u8>> = (0..8u64)
        .map(|i| {
            let mut d = base.clone();
            d.extend_from_slice(&noise(300_000, 100 + i));
            d
        })
        .collect();
    let results: Vec<(Vec<u8>, String)> = std::thread::scope(|s| {
        let backups: Vec<_> = inputs
            .iter()
            .map(|input| {
                let repo = &repo;
                s.spawn(move || (input.clone(), id(&repo.backup(input, &[]))))
            })
            .collect();
        let pruner = s.spawn(|| {
            for _ in 0..3 {
                let out = repo.run(&["forget", "--keep-last", "3"], b"");
                out.assert_ok();
                let out = repo.run(&["prune"], b"");
                // Another prune cannot be running here; only success.
                out.assert_ok();
            }
        });
        pruner.join().unwrap();
        backups.into_iter().map(|h| h.join().unwrap()).collect()
    });
    repo.assert_check_passes(false);
    let listed: Value =
        serde_json::from_slice(&repo.run(&["snapshots", "--json"], b"").stdout).unwrap();
    let alive: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    for (input, sid) in &results {
        if alive.contains(sid) {
            assert!(&repo.restore(sid) == input, "snapshot {sid} on {store:?}");
        }
    }
    // Nothing runs now: deleting at once is safe.
    prune(&repo, &["--delete-delay", "0h"]);
    repo.assert_check_passes(store == Store::Local);
    for (input, sid) in &results {
        if alive.contains(sid) {
            assert!(&repo.restore(sid) == input);
        }
    }
}

/// Prune reads metadata (index, snapshots, tree packs), never data packs,
/// unless it repacks.
#[test]
fn prune_reads_no_data_pack_unless_repacking() {
    let repo = TestRepo::uninitialised();
    assert!(repo
        .run(&["init", "--pack-size", "1"], b"")
        .status
        .success());
    let a = repo.backup(&noise(12_000_000, 8), &[]);
    repo.backup(&noise(12_000_000, 9), &[]);
    let data_packs = repo.objects("data").len() as u64;
    assert!(data_packs >= 20, "{data_packs}");
    assert!(repo.run(&["forget", &id(&a)], b"").status.success());
    let r = prune(&repo, &["--delete-delay", "0h"]);
    assert_eq!(r["packs_repacked"].as_u64(), Some(0), "{r}");
    // config, key, index file, 1 snapshot, its tree pack, the lock listing,
    // and for re-basing the kept version's sketch (its tree pack, its parts)
    let gets = r["requests"]["get"].as_u64().unwrap();
    assert!(
        gets <= 8,
        "prune made {gets} GETs with {data_packs} packs: {r}"
    );
    assert!(r["packs_deleted"].as_u64().unwrap() >= 10, "{r}");
}

#[test]
fn prune_rejects_bad_limits() {
    let repo = TestRepo::new();
    assert_fails(
        &repo.run(&["prune", "--max-unused", "120%"], b""),
        2,
        "--max-unused",
    );
    assert_fails(
        &repo.run(&["prune", "--delete-delay", "1w"], b""),
        2,
        "unknown unit",
    );
}

/// `--delete-delay 300y` used to overflow into a negative delay, which
/// deleted marked packs at once: now it is refused and nothing is deleted.
#[test]
fn a_delete_delay_beyond_the_clock_is_refused_and_deletes_nothing() {
    let repo = TestRepo::new();
    let a = repo.backup(&noise(1_000_000, 10), &[]);
    repo.backup(&noise(1_000_000, 11), &[]);
    repo.run_ok(&["forget", &id(&a)], b"");
    let marked = prune(&repo, &[]);
    assert!(marked["packs_marked"].as_u64().unwrap() >= 1, "{marked}");
    let packs = repo.objects("data");
    assert_fails(
        &repo.run(&["prune", "--delete-delay", "300y"], b""),
        2,
        "out of range",
    );
    assert_eq!(repo.objects("data"), packs);
    // A century is accepted, and a marked pack waits for it.
    let r = prune(&repo, &["--delete-delay", "100y"]);
    assert_eq!(r["packs_deleted"].as_u64(), Some(0), "{r}");
    assert_eq!(repo.objects("data"), packs);
}

#[test]
fn forget_with_prune_runs_a_prune_with_the_default_limits() {
    let repo = TestRepo::new();
    repo.backup(&noise(1_000_000, 8), &[]);
    repo.backup(&noise(1_000_000, 9), &[]);
    let out = repo.run_ok(&["forget", "--keep-last", "1", "--prune"], b"");
    assert!(
        out.stderr().contains("packs marked unused"),
        "no prune report:\n{}",
        out.explain()
    );
    assert_eq!(repo.objects("snapshots").len(), 1);
    // The forgotten snapshot's pack is marked, not yet deleted (1d delay).
    let r = prune(&repo, &["--dry-run"]);
    assert!(r["packs_waiting"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["packs_deleted"].as_u64(), Some(0), "{r}");
    // -q: the report is not printed.
    let out = repo.run_ok(&["prune", "-q"], b"");
    assert_eq!(out.stderr(), "", "{}", out.explain());
}

on_every_store!(
    prune_marks_then_deletes_and_keeps_what_snapshots_need,
    prune_rescues_packs_a_backup_started_before_the_mark_needs,
    concurrent_backups_and_prunes_lose_nothing
);

/// A local write interrupted by a kill leaves `data/<xx>/<id>#<n>`: `check`
/// counts it, and prune removes it once older than the delay.
#[test]
fn prune_reclaims_staging_files_of_interrupted_local_writes() {
    let repo = TestRepo::new();
    repo.backup(b"kept\n", &[]);
    let folder = repo.repo.join("data/ab");
    std::fs::create_dir_all(&folder).unwrap();
    let old = folder.join(format!("ab{}#1", "1".repeat(62)));
    let young = folder.join(format!("ab{}#2", "2".repeat(62)));
    std::fs::write(&old, vec![0u8; 1000]).unwrap();
    std::fs::write(&young, vec![0u8; 1000]).unwrap();
    coffer_e2e::age_file(&old, "2 days ago");
    let out = repo.run_ok(&["check"], b"");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("2 unfinished uploads"), "{}", out.explain());
    let r = prune(&repo, &[]);
    assert_eq!(r["staging_deleted"].as_u64(), Some(1), "{r}");
    assert!(!old.exists());
    assert!(young.exists(), "a young one may be a running backup's");
}

/// A prune whose lock disappeared (another prune took it for stale) stops
/// before deleting anything.
#[test]
fn a_prune_that_lost_its_lock_deletes_nothing() {
    let repo = TestRepo::new();
    let first = repo.backup(&noise(1_000_000, 12), &[]);
    repo.backup(&noise(1_000_000, 13), &[]);
    repo.run_ok(&["forget", &id(&first)], b"");
    let mut pruning = repo.spawn_paused(
        &["prune", "--delete-delay", "0h"],
        "prune-before-index",
        Vec::new(),
    );
    pruning.wait_reached();
    let packs = repo.objects("data");
    for (lock, _) in repo.objects("locks") {
        repo.delete_object(&lock);
    }
    let out = pruning.resume();
    assert_eq!(out.status.code(), Some(22), "{}", out.explain());
    assert!(out.stderr().contains("lost its lock"), "{}", out.explain());
    assert_eq!(repo.objects("data"), packs, "nothing deleted");
    repo.assert_check_passes(false);
}

/// A young lock this version cannot read (a newer coffer's) holds the
/// repository like any other: it is not deleted as damage.
#[test]
fn a_young_lock_that_cannot_be_read_is_respected() {
    let repo = TestRepo::new();
    repo.backup(b"data\n", &[]);
    let lock = format!("locks/{}", "c".repeat(64));
    repo.write_object(&lock, b"a lock from a later version");
    assert_fails(&repo.run(&["prune"], b""), 22, "an unreadable lock");
    assert_eq!(repo.objects("locks").len(), 1, "the lock stays");
}

/// `coffer unlock` keeps a lock that may be held, and `--remove-all`
/// removes it for an operator who knows better; prune then runs.
#[test]
fn unlock_removes_what_the_operator_says_is_dead() {
    let repo = TestRepo::new();
    repo.backup(b"data\n", &[]);
    repo.write_object(&format!("locks/{}", "c".repeat(64)), b"an unreadable lock");
    let kept = repo.run_ok(&["unlock"], b"");
    assert!(
        kept.stderr().contains("removed 0 lock(s)"),
        "{}",
        kept.explain()
    );
    assert!(kept.stderr().contains("--remove-all"), "{}", kept.explain());
    assert_eq!(repo.objects("locks").len(), 1);
    let removed = repo.run_ok(&["unlock", "--remove-all"], b"");
    assert!(
        removed.stderr().contains("removed 1 lock(s)"),
        "{}",
        removed.explain()
    );
    assert!(repo.objects("locks").is_empty());
    prune(&repo, &[]);
}
