//! Every mistake a user can make gets one clear line on stderr, a documented
//! exit code, and loses nothing already stored; on every store.

use std::io::{Read, Write};
use std::process::{Output, Stdio};

use coffer_e2e::{dump_like, stderr, Change, Store, TestRepo};

/// Asserts the exit code and a single stderr line containing `needle`.
pub fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
}

fn repo_with_snapshot(store: Store, size: usize) -> (TestRepo, Vec<u8>) {
    let repo = TestRepo::new_on(store);
    let data = dump_like(size, Change::None);
    repo.backup(&data, &[]);
    (repo, data)
}

/// The largest pack: it holds data blobs (tree packs are small).
fn largest_pack(repo: &TestRepo) -> String {
    repo.objects("data")
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .unwrap()
        .0
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap()
}

fn wrong_password_exits_12_and_the_right_one_still_works(store: Store) {
    let (repo, data) = repo_with_snapshot(store, 100_000);
    let other = repo.dir.path().join("other");
    std::fs::write(&other, "not the password\n").unwrap();
    let out = repo.run(
        &["snapshots", "--password-file", other.to_str().unwrap()],
        b"",
    );
    assert_fails(&out, 12, "wrong password");
    assert!(repo.restore("latest") == data);
}

fn a_missing_repository_exits_10(store: Store) {
    let repo = TestRepo::uninitialised_on(store);
    assert_fails(&repo.run(&["snapshots"], b""), 10, "no repository at");
    if store == Store::Local {
        std::fs::create_dir_all(&repo.repo).unwrap();
    }
    assert_fails(
        &repo.run(&["backup", "--stdin"], b"data"),
        10,
        "coffer init",
    );
}

fn init_over_an_existing_repository_exits_13_and_changes_nothing(store: Store) {
    let (repo, data) = repo_with_snapshot(store, 100_000);
    let keys = repo.objects("keys");
    assert_fails(&repo.run(&["init"], b""), 13, "already exists");
    assert_eq!(repo.objects("keys"), keys);
    assert!(repo.restore("latest") == data);
}

fn unknown_and_ambiguous_snapshot_ids(store: Store) {
    let repo = TestRepo::new_on(store);
    // 17 snapshots: two of them must share a first hex digit.
    let mut ids = Vec::new();
    for i in 0..17 {
        let s = repo.backup(format!("stream {i}\n").as_bytes(), &[]);
        ids.push(s["snapshot_id"].as_str().unwrap().to_string());
    }
    let shared = (0..16)
        .map(|d| format!("{d:x}"))
        .find(|p| ids.iter().filter(|id| id.starts_with(p.as_str())).count() > 1)
        .unwrap();
    assert_fails(&repo.run(&["restore", &shared], b""), 15, "ambiguous");
    assert_fails(
        &repo.run(&["restore", "0123456789abcdef0123"], b""),
        14,
        "no snapshot matches",
    );
    assert_fails(
        &repo.run(&["restore", "not-hex"], b""),
        14,
        "no snapshot matches",
    );
    assert_eq!(repo.restore(&ids[3][..10]), b"stream 3\n");
}

fn empty_stdin_exits_3_and_writes_no_snapshot(store: Store) {
    let repo = TestRepo::new_on(store);
    assert_fails(&repo.run(&["backup", "--stdin"], b""), 3, "empty");
    assert!(repo.objects("snapshots").is_empty());
    assert!(
        repo.objects("data").is_empty(),
        "nothing uploaded for an empty stream"
    );
    assert_fails(&repo.run(&["restore", "latest"], b""), 14, "latest");
}

fn a_corrupt_pack_is_named_and_no_wrong_byte_is_output(store: Store) {
    let (repo, data) = repo_with_snapshot(store, 20_000_000);
    let pack = largest_pack(&repo);
    let mut bytes = repo.read_object(&pack);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    repo.write_object(&pack, &bytes);

    let out = repo.run(&["restore", "latest"], b"");
    assert_fails(&out, 16, file_name(&pack));
    assert!(stderr(&out).contains("corrupt"));
    assert!(out.stdout.len() < data.len());
    assert!(
        data.starts_with(&out.stdout),
        "output must be a correct prefix"
    );
}

fn a_truncated_or_deleted_pack_is_reported(store: Store) {
    let (repo, _) = repo_with_snapshot(store, 20_000_000);
    let pack = largest_pack(&repo);
    let bytes = repo.read_object(&pack);
    repo.write_object(&pack, &bytes[..bytes.len() / 3]);
    assert_fails(&repo.run(&["restore", "latest"], b""), 16, file_name(&pack));
    repo.delete_object(&pack);
    assert_fails(&repo.run(&["restore", "latest"], b""), 16, "missing");
}

fn corrupt_snapshot_index_and_config_objects_are_named(store: Store) {
    let (repo, _) = repo_with_snapshot(store, 1_000_000);
    let snap = repo.objects("snapshots").remove(0).0;
    let mut bytes = repo.read_object(&snap);
    bytes[40] ^= 0x80;
    repo.write_object(&snap, &bytes);
    assert_fails(&repo.run(&["snapshots"], b""), 16, file_name(&snap));

    let (repo, _) = repo_with_snapshot(store, 1_000_000);
    let index = repo.objects("index").remove(0).0;
    let bytes = repo.read_object(&index);
    repo.write_object(&index, &bytes[..bytes.len() - 1]);
    assert_fails(&repo.run(&["restore", "latest"], b""), 16, "index/");

    // A damaged config is named, not blamed on the password.
    let mut bytes = repo.read_object("config");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    repo.write_object("config", &bytes);
    assert_fails(&repo.run(&["snapshots"], b""), 16, "config is corrupt");
}

#[test]
fn an_unwritable_target_exits_17_and_leaves_no_file() {
    let (repo, _) = repo_with_snapshot(Store::Local, 100_000);
    let target = repo.dir.path().join("no-such-dir").join("out.sql");
    let out = repo.run(
        &["restore", "latest", "--output", target.to_str().unwrap()],
        b"",
    );
    assert_fails(&out, 17, "out.sql");
    assert!(!target.exists());
}

fn a_reader_that_stops_early_ends_the_restore_quietly(store: Store) {
    let (repo, data) = repo_with_snapshot(store, 30_000_000);
    let mut child = repo
        .command(&["restore", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(&head[..], &data[..100]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// `backup --json | true`: the summary cannot be printed, but the snapshot
/// was committed: no panic, exit 0 (a closed pipe is the reader's choice).
/// The same for the listings a reader stops reading.
#[test]
fn a_closed_stdout_after_a_committed_backup_is_not_a_panic() {
    let repo = TestRepo::new();
    let mut cmd = repo.command(&["backup", "--stdin", "--json"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&dump_like(1_000_000, Change::None))
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(repo.objects("snapshots").len(), 1);
    for args in [
        &["snapshots"][..],
        &["snapshots", "--json"],
        &["check"],
        &["stats", "--json"],
        &["ls", "latest"],
        &["diff", "latest", "latest"],
        &["cat", "config"],
        &["completion", "zsh"],
    ] {
        let mut child = repo
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

#[test]
fn missing_password_and_unsupported_locations_are_usage_errors() {
    let repo = TestRepo::new();
    let mut cmd = repo.command(&["snapshots"]);
    cmd.env_remove("COFFER_PASSWORD_FILE");
    let out = coffer_e2e::run_with_input(cmd, b"");
    assert_fails(&out, 2, "COFFER_PASSWORD_FILE");
    let out = repo.run(&["snapshots", "--repo", "ftp://example/repo"], b"");
    assert_fails(&out, 2, "unsupported repository location");
    let out = repo.run(&["snapshots", "-o", "region=eu-west-1"], b"");
    assert_fails(&out, 2, "unknown local option");
}

on_every_store!(
    wrong_password_exits_12_and_the_right_one_still_works,
    a_missing_repository_exits_10,
    init_over_an_existing_repository_exits_13_and_changes_nothing,
    unknown_and_ambiguous_snapshot_ids,
    empty_stdin_exits_3_and_writes_no_snapshot,
    a_corrupt_pack_is_named_and_no_wrong_byte_is_output,
    a_truncated_or_deleted_pack_is_reported,
    corrupt_snapshot_index_and_config_objects_are_named,
    a_reader_that_stops_early_ends_the_restore_quietly
);
