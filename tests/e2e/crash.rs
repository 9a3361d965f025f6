//! Killing `backup`, `forget` or `prune` with SIGKILL at any moment (at
//! random, and at injected points between write steps) loses no committed
//! snapshot: check passes, every snapshot restores byte for byte, the next
//! backup and prune work.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use coffer_e2e::{dump_like, stderr, Change, Store, TestRepo};

fn small_pack_repo(store: Store) -> TestRepo {
    let repo = TestRepo::uninitialised_on(store);
    let out = repo.run(&["init", "--pack-size", "1"], b"");
    out.assert_ok();
    repo
}

/// Starts a backup, feeds it `data` in pieces, and kills it once `kill_after`
/// packs have appeared (or the input is exhausted).
fn kill_backup_midway(repo: &TestRepo, data: &[u8], kill_after: usize) {
    let packs_before = repo.objects("data").len();
    let mut child = repo
        .command(&["backup", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    for piece in data.chunks(256 * 1024) {
        if stdin.write_all(piece).is_err()
            || repo.objects("data").len() >= packs_before + kill_after
        {
            break;
        }
        assert!(Instant::now() < deadline, "backup made no progress");
    }
    // Packs are being written; kill without closing stdin, mid-stream.
    std::thread::sleep(Duration::from_millis(kill_after as u64 * 7 % 50));
    child.kill().unwrap();
    child.wait().unwrap();
}

fn a_killed_backup_leaves_no_snapshot_and_the_next_one_works(store: Store) {
    let day1 = dump_like(8_000_000, Change::None);
    let day2 = dump_like(30_000_000, Change::Scattered);
    let repo = small_pack_repo(store);
    let first = repo.backup(&day1, &[]);
    for kill_after in [1, 3, 6] {
        kill_backup_midway(&repo, &day2, kill_after);
        assert_eq!(
            repo.objects("snapshots").len(),
            1,
            "a killed backup must not leave a snapshot"
        );
        assert!(repo.restore(first["snapshot_id"].as_str().unwrap()) == day1);
    }
    let second = repo.backup(&day2, &[]);
    assert!(repo.restore(second["snapshot_id"].as_str().unwrap()) == day2);
    assert!(repo.restore(first["snapshot_id"].as_str().unwrap()) == day1);
}

/// A repository with four snapshots of changing data (small packs, so
/// forgetting and pruning touch many objects), the later ones mostly delta
/// blobs against the earlier ones (so forgetting the early ones leaves
/// bases in use); returns it with each snapshot's id and content.
fn history(store: Store) -> (TestRepo, Vec<(String, Vec<u8>)>) {
    let repo = small_pack_repo(store);
    let mut snaps = Vec::new();
    for day in 0..4u64 {
        let mut data = dump_like(2_000_000, Change::Day(day));
        data.extend_from_slice(&coffer_e2e::noise(1_500_000, day));
        let s = repo.backup(&data, &[]);
        if day > 0 {
            assert!(s["delta_chunks"].as_u64().unwrap() >= 3, "{s}");
        }
        snaps.push((s["snapshot_id"].as_str().unwrap().to_string(), data));
    }
    (repo, snaps)
}

/// After a crash: check passes (leftovers are only notes), every snapshot
/// still listed restores byte for byte, and the newest `must_survive` are
/// among them.
fn assert_sound(repo: &TestRepo, snaps: &[(String, Vec<u8>)], must_survive: usize, when: &str) {
    let out = repo.run(&["check"], b"");
    assert!(
        out.status.success(),
        "{when}: check failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let listed = String::from_utf8(repo.run(&["snapshots", "--json"], b"").output.stdout).unwrap();
    for (i, (id, data)) in snaps.iter().enumerate() {
        let alive = listed.contains(id.as_str());
        assert!(
            alive || i + must_survive < snaps.len(),
            "{when}: snapshot {id} was lost"
        );
        if alive {
            assert!(
                repo.restore(id) == *data,
                "{when}: snapshot {id} restores wrong"
            );
        }
    }
}

fn killing_forget_and_prune_at_every_write_step_loses_nothing(store: Store) {
    let (repo, snaps) = history(store);
    repo.run_killed_at(&["forget", "--keep-last", "2"], "forget-deleted-one", b"");
    assert_sound(&repo, &snaps, 2, "forget killed after one deletion");
    let out = repo.run(&["forget", "--keep-last", "2"], b"");
    out.assert_ok();
    for point in ["prune-locked", "prune-after-index", "prune-deleting-packs"] {
        repo.run_killed_at(
            &["prune", "--delete-delay", "0h", "--max-unused", "0"],
            point,
            b"",
        );
        assert_sound(&repo, &snaps, 2, point);
    }
    // The next backup and prune work (the dead prune's lock is stale).
    let data = dump_like(1_000_000, Change::Scattered);
    let s = repo.backup(&data, &[]);
    let out = repo.run(&["prune", "--delete-delay", "0h"], b"");
    out.assert_ok();
    assert_sound(&repo, &snaps, 2, "after the final prune");
    assert!(repo.restore(s["snapshot_id"].as_str().unwrap()) == data);
}

/// A default pack (16 MiB) goes up in parts read from its spool file;
/// killed between two parts, the backup leaves no snapshot and no pack under
/// the pack's name (at most a local staging file, which prune removes), the
/// earlier snapshot restores, and the next backup stores everything.
fn a_backup_killed_between_upload_parts_loses_nothing(store: Store) {
    let repo = TestRepo::new_on(store);
    let day1 = dump_like(2_000_000, Change::None);
    let first = repo.backup(&day1, &[]);
    let packs = repo.objects("data");
    let big = coffer_e2e::noise(40_000_000, 21);
    repo.run_killed_at(&["backup", "--stdin"], "upload-between-parts", &big);
    assert_eq!(repo.objects("snapshots").len(), 1);
    assert_eq!(repo.objects("data"), packs, "no pack appears half uploaded");
    assert!(repo.restore(first["snapshot_id"].as_str().unwrap()) == day1);
    repo.assert_spool_empty();
    repo.run_ok(&["prune", "--delete-delay", "0h"], b"");
    repo.assert_check_passes(false);
    let second = repo.backup(&big, &[]);
    assert!(repo.restore(second["snapshot_id"].as_str().unwrap()) == big);
    repo.assert_check_passes(true);
}

#[test]
fn killing_backup_between_its_write_steps_leaves_no_snapshot() {
    let (repo, snaps) = history(Store::Local);
    for point in ["backup-before-index", "backup-before-snapshot"] {
        repo.run_killed_at(
            &["backup", "--stdin"],
            point,
            &coffer_e2e::noise(2_000_000, 77),
        );
        assert_eq!(repo.objects("snapshots").len(), 4, "{point}");
        assert_sound(&repo, &snaps, 4, point);
    }
    let out = repo.run(&["prune", "--delete-delay", "0h"], b"");
    out.assert_ok();
    assert_sound(&repo, &snaps, 4, "after prune");
}

/// SIGKILL at random moments of a prune that deletes and repacks. CI runs
/// 6 rounds; `COFFER_CRASH_ROUNDS=100` is the longer run (docs/architecture.md).
#[test]
fn prune_killed_at_random_moments_loses_nothing() {
    let (repo, snaps) = history(Store::Local);
    let rounds: u64 = std::env::var("COFFER_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let mut seed = 0x5eed_u64;
    for round in 0..rounds {
        if round == 2 {
            let out = repo.run(&["forget", "--keep-last", "2"], b"");
            assert!(out.status.success());
        }
        if round % 3 == 1 {
            // Fresh work for the next prunes: a snapshot to forget later.
            let extra = coffer_e2e::noise(1_000_000, 1000 + round);
            repo.backup(&extra, &["--tag", "extra"]);
            let out = repo.run(
                &[
                    "forget",
                    "--tag",
                    "extra",
                    "--keep-last",
                    "0",
                    "--keep-tag",
                    "none",
                    "--force",
                ],
                b"",
            );
            out.assert_ok();
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = repo
            .command(&["prune", "--delete-delay", "0h", "--max-unused", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(seed % 400));
        let _ = child.kill();
        child.wait().unwrap();
        assert_sound(&repo, &snaps, 2, &format!("prune killed in round {round}"));
    }
    let out = repo.run(&["prune", "--delete-delay", "0h"], b"");
    out.assert_ok();
    assert_sound(&repo, &snaps, 2, "final prune");
}

on_every_store!(
    a_killed_backup_leaves_no_snapshot_and_the_next_one_works,
    killing_forget_and_prune_at_every_write_step_loses_nothing,
    a_backup_killed_between_upload_parts_loses_nothing
);
