//! A pack lost from storage (damage, or a prune a long backup did not
//! notice) never silently breaks snapshots made afterwards: backups do not
//! commit over it, prune drops it from the index so the next backup stores
//! its blobs again, and `check` names every snapshot that needs it.

use coffer_e2e::{noise, snapshot_id as id, TestRepo};

/// The data packs (the largest ones; tree packs are small).
fn data_packs(repo: &TestRepo) -> Vec<String> {
    repo.objects("data")
        .into_iter()
        .filter(|(_, size)| *size > 100_000)
        .map(|(key, _)| key)
        .collect()
}

#[test]
fn a_long_backup_does_not_commit_over_a_pack_that_is_gone() {
    let repo = TestRepo::new();
    let data = noise(2_000_000, 31);
    repo.backup(&data, &[]);
    let index_files = repo.objects("index").len();
    let mut long = repo.spawn_paused(
        &["backup", "--stdin", "--recheck-after-secs", "0"],
        "backup-before-index",
        data.clone(),
    );
    long.wait_reached();
    for pack in data_packs(&repo) {
        repo.delete_object(&pack);
    }
    let out = long.resume();
    assert_eq!(out.status.code(), Some(22), "{}", out.explain());
    assert!(
        out.stderr().contains("is gone from storage"),
        "{}",
        out.explain()
    );
    assert_eq!(repo.objects("snapshots").len(), 1, "no new snapshot");
    assert_eq!(repo.objects("index").len(), index_files, "no index written");
}

#[test]
fn prune_drops_a_missing_pack_and_the_next_backup_stores_its_blobs_again() {
    let repo = TestRepo::new();
    let data = noise(2_000_000, 32);
    let first = repo.backup(&data, &[]);
    for pack in data_packs(&repo) {
        repo.delete_object(&pack);
    }
    let out = repo.run_ok(&["prune", "--json"], b"");
    let r = out.json();
    assert!(r["packs_missing"].as_u64().unwrap() >= 1, "{r}");
    // Backups no longer deduplicate against what is gone.
    let again = repo.backup(&data, &[]);
    assert!(again["new_chunks"].as_u64().unwrap() > 0, "{again}");
    assert!(repo.restore(&id(&again)) == data);
    // Same blobs, same ids: the damaged snapshot is whole again.
    assert!(repo.restore(&id(&first)) == data);
    repo.assert_check_passes(true);
}

#[test]
fn check_names_the_snapshot_that_needs_a_missing_marked_pack() {
    let repo = TestRepo::new();
    let data = noise(2_000_000, 33);
    let first = repo.backup(&data, &[]);
    // A backup that loaded the index before the prune's mark reuses the
    // packs and commits after it: its snapshot needs marked packs.
    let mut late = repo.spawn_paused_backup(data.clone());
    late.wait_reached();
    repo.run_ok(&["forget", &id(&first)], b"");
    repo.run_ok(&["prune"], b"");
    let needing = id(&late.resume().ok().json());
    let lost = data_packs(&repo);
    for pack in &lost {
        repo.delete_object(pack);
    }
    let out = repo.run(&["check"], b"");
    assert_eq!(out.status.code(), Some(16), "{}", out.explain());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pack_name = lost[0].rsplit('/').next().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("error:") && l.contains(&needing) && l.contains(pack_name)),
        "no error names snapshot {needing} and pack {pack_name}:\n{}",
        out.explain()
    );
}
