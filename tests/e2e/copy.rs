//! A second copy of every backup (the 3-2-1 rule): `coffer copy` copies into
//! another repository, on another store, the snapshots it lacks; a nightly
//! run copies only the new night, as a delta against the copy before it;
//! every copy restores byte for byte; a copy killed midway is completed by
//! the next run and never shows a snapshot whose data is missing.

use coffer_e2e::{dump_like, store_available, stream_names, Change, Store, TestRepo};

const DUMP: usize = 8_000_000;

/// `copy --to TARGET --to-password-file ITS_PASSWORD --json`.
pub fn copy_args(target: &TestRepo) -> Vec<String> {
    let password = target.password_file.to_string_lossy().into_owned();
    [
        "copy",
        "--to",
        &target.location,
        "--to-password-file",
        &password,
        "--json",
    ]
    .map(String::from)
    .to_vec()
}

/// `coffer copy` from `source` into `target`, with `--json`.
fn copy(source: &TestRepo, target: &TestRepo, extra: &[&str]) -> serde_json::Value {
    let args = copy_args(target);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    source.run_ok(&args, b"").json()
}

/// Snapshots as `snapshots --json` lists them, oldest first.
fn snapshots(repo: &TestRepo) -> Vec<serde_json::Value> {
    let list = repo.run_ok(&["snapshots", "--json"], b"").json();
    list.as_array().unwrap().clone()
}

fn a_nightly_copy_copies_what_the_target_lacks(from: Store, to: Store) {
    if !store_available(from) || !store_available(to) {
        return;
    }
    let source = TestRepo::new_on(from);
    let target = TestRepo::new_on(to);
    let days: Vec<Vec<u8>> = (0..3).map(|d| dump_like(DUMP, Change::Day(d))).collect();
    source.backup(&days[0], &["--host", "db-1", "--tag", "nightly"]);
    source.backup(&days[1], &["--host", "db-1", "--tag", "nightly"]);

    let first = copy(&source, &target, &[]);
    assert_eq!(first["copied"].as_array().unwrap().len(), 2, "{first}");
    let copies = snapshots(&target);
    let originals = snapshots(&source);
    for (c, o) in copies.iter().zip(&originals) {
        // The same backup: time, host, tags and streams; another id.
        for key in ["time", "host", "user", "tags"] {
            assert_eq!(c[key], o[key], "{key}: {c} vs {o}");
        }
        assert_eq!(stream_names(c), stream_names(o));
        assert_ne!(c["id"], o["id"]);
    }
    for (c, day) in copies.iter().zip(&days) {
        assert!(target.restore(c["id"].as_str().unwrap()) == *day);
    }

    // The next night: only the new snapshot is copied, and it costs what a
    // delta day costs in the target.
    let again = copy(&source, &target, &[]);
    assert_eq!(again["copied"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["already_copied"], 2);
    let third = source.backup(&days[2], &["--host", "db-1", "--tag", "nightly"]);
    let night = copy(&source, &target, &[]);
    let copied = &night["copied"][0];
    assert_eq!(copied["source_id"], third["snapshot_id"], "{night}");
    assert!(copied["delta_chunks"].as_u64().unwrap() > 0, "{night}");
    let full = first["copied"][0]["bytes_added"].as_u64().unwrap();
    assert!(
        copied["bytes_added"].as_u64().unwrap() * 5 < full,
        "{night}"
    );
    assert!(target.restore(copied["id"].as_str().unwrap()) == days[2]);
    target.assert_check_passes(true);
}

#[test]
fn a_nightly_copy_copies_what_the_target_lacks_local_to_local() {
    a_nightly_copy_copies_what_the_target_lacks(Store::Local, Store::Local);
}

#[test]
fn a_nightly_copy_copies_what_the_target_lacks_local_to_s3() {
    a_nightly_copy_copies_what_the_target_lacks(Store::Local, Store::S3);
}

#[test]
fn a_nightly_copy_copies_what_the_target_lacks_s3_to_azure() {
    a_nightly_copy_copies_what_the_target_lacks(Store::S3, Store::Azure);
}

#[test]
fn a_killed_copy_is_completed_by_the_next_run() {
    let source = TestRepo::new();
    let target = TestRepo::new();
    let day = dump_like(DUMP, Change::None);
    let s = source.backup(&day, &[]);
    let password = target.password_file.to_string_lossy().into_owned();
    let args = [
        "copy",
        "--to",
        &target.location,
        "--to-password-file",
        &password,
    ];
    // Killed after the target's data and index are written, before its
    // snapshot: the target shows nothing.
    source.run_killed_at(&args, "backup-before-snapshot", b"");
    assert!(snapshots(&target).is_empty());
    let next = copy(&source, &target, &[]);
    assert_eq!(next["copied"][0]["source_id"], s["snapshot_id"], "{next}");
    assert!(target.restore(next["copied"][0]["id"].as_str().unwrap()) == day);
    target.assert_check_passes(true);
}

#[test]
fn a_dry_run_copies_nothing_and_the_wrong_password_or_the_same_repository_is_refused() {
    let source = TestRepo::new();
    let target = TestRepo::new();
    source.backup(&dump_like(DUMP / 4, Change::None), &[]);
    let dry = copy(&source, &target, &["--dry-run"]);
    assert_eq!(dry["to_copy"], 1, "{dry}");
    assert!(snapshots(&target).is_empty());

    let wrong = target.dir.path().join("wrong");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let out = source.run(
        &[
            "copy",
            "--to",
            &target.location,
            "--to-password-file",
            &wrong.to_string_lossy(),
        ],
        b"",
    );
    assert_eq!(out.output.status.code(), Some(12), "{}", out.stderr());

    let own = source.password_file.to_string_lossy().into_owned();
    let out = source.run(
        &["copy", "--to", &source.location, "--to-password-file", &own],
        b"",
    );
    assert_eq!(out.output.status.code(), Some(2), "{}", out.stderr());
    assert!(out.stderr().contains("copied from"), "{}", out.stderr());
}

/// Prunes on both sides while a copy is under way (paused after its packs
/// are in the target, before its index): the copy commits, and everything
/// in the target restores.
#[test]
fn a_copy_survives_prunes_on_either_side() {
    let source = TestRepo::new();
    let target = TestRepo::new();
    let days: Vec<Vec<u8>> = (0..3).map(|d| dump_like(DUMP, Change::Day(d))).collect();
    for day in &days[..2] {
        source.backup(day, &[]);
    }
    copy(&source, &target, &[]);
    let last = source.backup(&days[2], &[]);
    // The copied-before snapshots are forgotten on both sides, so the
    // prunes have something to mark (and, with no delay, delete).
    let ids = |repo: &TestRepo| -> Vec<String> {
        snapshots(repo)
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let args = copy_args(&target);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut paused = source.spawn_paused(&args, "backup-before-index", Vec::new());
    paused.wait_reached();
    for repo in [&source, &target] {
        let old = ids(repo);
        let mut args = vec!["forget"];
        args.extend(old.iter().take(1).map(String::as_str));
        repo.run_ok(&args, b"");
        repo.run_ok(&["prune"], b"");
    }
    let done = paused.resume();
    done.assert_ok();
    let copied: serde_json::Value = serde_json::from_slice(&done.output.stdout).unwrap();
    assert_eq!(
        copied["copied"][0]["source_id"], last["snapshot_id"],
        "{copied}"
    );
    for s in snapshots(&target) {
        target.run_ok(&["restore", s["id"].as_str().unwrap()], b"");
    }
    assert!(target.restore(copied["copied"][0]["id"].as_str().unwrap()) == days[2]);
    target.assert_check_passes(true);
}
