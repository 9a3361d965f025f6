//! Prune's clock against backups running beside it. Each story pauses real
//! processes at named failpoints and moves prune's clock ahead
//! (`COFFER_TEST_CLOCK_SKEW_SECS`) to play out a delete delay without
//! waiting an hour: the delay is the default 1 hour, and the skew puts a
//! prune just short of it, so only a clock read at the wrong moment would
//! delete anything.

use coffer_e2e::{noise, snapshot_id as id, TestRepo};

/// One hour (the shortest delete delay) less two seconds.
const ALMOST_THE_DELAY: &str = "3598";

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
    let mut b = repo.spawn_paused_backup(data.clone());
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
    let mut b = repo.spawn_paused_backup(data.clone());
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

/// A mark must never come back over a later decision. Backup E reused a
/// pack that prune A then marked; a prune (an hour later, skewed) finds E's
/// snapshot needing it. Meanwhile backup B, which loaded the index while
/// the pack was marked, rewrites the whole index from that old view. Then
/// E's snapshot is forgotten while backup F, which loaded the index after
/// the later prune, is about to commit a snapshot reusing those blobs: the
/// next prune must not take them away from F.
#[test]
fn an_index_rewritten_from_an_older_view_cannot_bring_a_mark_back() {
    let repo = TestRepo::new();
    let x = noise(2_000_000, 23);
    let s1 = repo.backup(&x, &[]);
    let mut e = repo.spawn_paused_backup(x.clone());
    e.wait_reached();
    repo.run_ok(&["forget", &id(&s1)], b"");
    let marked = prune_json(&repo, &[]);
    assert!(marked["packs_marked"].as_u64().unwrap() >= 1, "{marked}");
    // The later prunes' clock runs 2.5 s short of an hour ahead: the mark
    // (4 s old by then) looks an hour old, B's packs (uploaded after this
    // pause, moments before) do not.
    std::thread::sleep(std::time::Duration::from_secs(4));
    // B loads the index with the pack marked; much new data: a full rewrite.
    let mut b = repo.spawn_paused_backup(noise(6_000_000, 24));
    b.wait_reached();
    let se = e.resume().ok().json();
    assert_eq!(se["new_chunks"].as_u64(), Some(0), "E reused the pack");
    // An hour later: E's snapshot needs the marked pack.
    let later = prune_json(&repo, &[("COFFER_TEST_CLOCK_SKEW_SECS", "3597.5")]);
    assert!(later["packs_rescued"].as_u64().unwrap() >= 1, "{later}");
    let mut f = repo.spawn_paused_backup(x.clone());
    f.wait_reached();
    b.resume().ok();
    repo.run_ok(&["forget", &id(&se)], b"");
    prune_json(&repo, &[("COFFER_TEST_CLOCK_SKEW_SECS", "3597.5")]);
    let sf = f.resume().ok().json();
    assert_eq!(sf["new_chunks"].as_u64(), Some(0), "F reused stored blobs");
    repo.assert_check_passes(true);
    assert!(repo.restore(&id(&sf)) == x);
}

/// `prune --json` with extra environment; returns the report.
#[track_caller]
fn prune_json(repo: &TestRepo, env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = repo.command(&["prune", "--json", "--delete-delay", "1h"]);
    cmd.envs(env.iter().copied());
    coffer_e2e::run_with_input(cmd, b"").ok().json()
}
