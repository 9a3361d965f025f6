//! Killing `backup` with SIGKILL at any moment leaves no snapshot and no
//! damage: earlier snapshots restore, the next backup works.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use coffer_e2e::{dump_like, stderr, stores, Change, Store, TestRepo};

fn small_pack_repo(store: Store) -> TestRepo {
    let repo = TestRepo::uninitialised_on(store);
    let out = repo.run(&["init", "--pack-size", "1"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
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

#[test]
fn a_killed_backup_leaves_no_snapshot_and_the_next_one_works() {
    let day1 = dump_like(8_000_000, Change::None);
    let day2 = dump_like(30_000_000, Change::Scattered);
    for store in stores() {
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
}
