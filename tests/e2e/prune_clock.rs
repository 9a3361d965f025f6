//! Prune's clock against backups running beside it. Each story pauses real
//! processes at named failpoints and moves prune's clock ahead
//! (`COFFER_TEST_CLOCK_SKEW_SECS`) to play out a delete delay without
//! waiting an hour: the delay is the default 1 hour, and the skew puts a
//! prune just short of it, so only a clock read at the wrong moment would
//! delete anything.

use coffer_e2e::{noise, TestRepo};

/// One hour (the shortest delete delay) less two seconds.
const ALMOST_THE_DELAY: &str = "3598";

fn id(v: &serde_json::Value) -> String {
    v["snapshot_id"].as_str().expect("snapshot id").to_string()
}

/// A prune with its clock moved ahead by [`ALMOST_THE_DELAY`], stopped at
/// failpoint `point`.
fn skewed_prune(repo: &TestRepo, point: &str) -> coffer_e2e::Paused {
    let mut cmd = repo.command(&["prune", "--json", "--delete-delay", "1h"]);
    cmd.env("COFFER_TEST_CLOCK_SKEW_SECS", ALMOST_THE_DELAY);
    repo.spawn_paused_with(cmd, point, Vec::new())
}

/// Prune A decides to mark a pack, then spends long (here 3 s, in the field
/// a repack of hours) before its index makes the mark visible. A backup
/// that loaded the index meanwhile reuses the pack. A later prune, almost a
/// delay after A *decided* but only moments after the mark became visible,
/// must not delete the pack: marks count from when they are written.
#[test]
fn a_mark_counts_from_when_it_is_written_not_when_it_was_decided() {
    let repo = TestRepo::new();
    let data = noise(2_000_000, 21);
    let first = repo.backup(&data, &[]);
    repo.run_ok(&["forget", &id(&first)], b"");

    let mut a = repo.spawn_paused(&["prune", "--json"], "prune-before-index", Vec::new());
    a.wait_reached();
    std::thread::sleep(std::time::Duration::from_secs(3));
    // A backup loads the index now: the pack is not marked yet.
    let mut b = repo.spawn_paused(
        &["backup", "--stdin", "--json"],
        "backup-before-index",
        data.clone(),
    );
    b.wait_reached();
    let marked = a.resume().ok().json();
    assert!(marked["packs_marked"].as_u64().unwrap() >= 1, "{marked}");

    // Prune C lists snapshots (the backup has not committed) and loads
    // the index, then the backup commits, then C decides and deletes.
    let mut c = skewed_prune(&repo, "prune-loaded");
    c.wait_reached();
    let second = b.resume().ok().json();
    assert_eq!(second["new_chunks"].as_u64(), Some(0), "it reused the pack");
    let r = c.resume().ok().json();
    assert_eq!(
        r["packs_deleted"].as_u64(),
        Some(0),
        "a mark a few seconds old was taken for an hour old: {r}"
    );
    assert!(r["packs_waiting"].as_u64().unwrap() >= 1, "{r}");
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&second)) == data);
}

/// A backup's packs are in no index until it commits. A prune that loaded
/// the index just before that commit sees them unindexed; it must age them
/// against a time read before it loaded the index, or a backup that ran
/// almost the delay long loses its packs right after committing.
#[test]
fn unindexed_packs_are_aged_against_the_time_before_the_index_was_loaded() {
    let repo = TestRepo::new();
    repo.backup(b"an earlier day\n", &[]);
    let data = noise(3_000_000, 22);
    let mut b = repo.spawn_paused(
        &["backup", "--stdin", "--json"],
        "backup-before-index",
        data.clone(),
    );
    b.wait_reached();
    // The prune starts, loads the index, then stops: the backup commits.
    let mut c = skewed_prune(&repo, "prune-loaded");
    c.wait_reached();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let snap = b.resume().ok().json();
    let r = c.resume().ok().json();
    assert_eq!(
        r["packs_deleted"].as_u64(),
        Some(0),
        "the committed backup's packs were deleted: {r}"
    );
    assert!(r["unindexed_young"].as_u64().unwrap() >= 1, "{r}");
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&snap)) == data);
}
