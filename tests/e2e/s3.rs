//! What only an object store can get wrong: credentials, buckets, endpoints,
//! options, many writers at once, and what each command costs in requests.
//! Runs against the S3-compatible test server (`.ci/s3-server.sh`).

use coffer_e2e::{
    dump_like, noise, run_with_input, spawn_with_input, stderr, store_available, Change, Store,
    TestRepo,
};

use crate::errors::assert_fails;

/// An initialised S3 repository, or `None` when no S3 server is configured
/// (CI always configures one and sets COFFER_TEST_REQUIRE_S3).
fn s3_repo() -> Option<TestRepo> {
    if !store_available(Store::S3) {
        eprintln!(
            "skipped: no S3 test server (start one with `eval \"$(.ci/s3-server.sh start)\"`)"
        );
        return None;
    }
    Some(TestRepo::new_on(Store::S3))
}

#[test]
fn wrong_credentials_exit_21_and_name_the_cause() {
    let Some(repo) = s3_repo() else { return };
    let mut cmd = repo.command(&["snapshots", "-o", "max_retries=1", "-o", "retry_timeout=2s"]);
    cmd.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    assert_fails(&run_with_input(cmd, b""), 21, "access denied");
}

#[test]
fn a_missing_bucket_exits_10_and_names_the_bucket() {
    let Some(repo) = s3_repo() else { return };
    let out = repo.run(
        &["snapshots", "--repo", "s3://no-such-bucket-here/repo"],
        b"",
    );
    assert_fails(&out, 10, "\"no-such-bucket-here\" does not exist");
    let out = repo.run(&["init", "--repo", "s3://no-such-bucket-here/repo"], b"");
    assert_fails(&out, 10, "does not exist");
}

#[test]
fn an_unreachable_endpoint_fails_fast_with_exit_18() {
    let Some(repo) = s3_repo() else { return };
    let started = std::time::Instant::now();
    let mut cmd = repo.command(&["snapshots", "-o", "max_retries=2", "-o", "retry_timeout=3s"]);
    // Nothing listens on port 9 of the loopback address.
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let out = run_with_input(cmd, b"");
    assert_fails(&out, 18, "storage error");
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_unknown_option_is_an_error_not_ignored() {
    let Some(repo) = s3_repo() else { return };
    assert_fails(
        &repo.run(&["snapshots", "-o", "endpiont=http://x"], b""),
        2,
        "unknown S3 option \"endpiont\"",
    );
    assert_fails(
        &repo.run(&["snapshots", "-o", "retry_timeout=soon"], b""),
        2,
        "not a duration",
    );
}

#[test]
fn eight_concurrent_backups_into_one_repository_all_succeed() {
    let Some(repo) = s3_repo() else { return };
    let streams: Vec<Vec<u8>> = (0..8u64)
        .map(|i| {
            // Half shared content, half unique: writers race on the same blobs.
            let mut s = dump_like(3_000_000, Change::None);
            s.extend_from_slice(&noise(1_000_000, i + 1));
            s
        })
        .collect();
    let children: Vec<_> = streams
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let name = format!("db{i}.sql");
            let backup = repo.command(&["backup", "--stdin", "--json", "--stdin-filename", &name]);
            spawn_with_input(backup, data.clone())
        })
        .collect();
    let mut ids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(v["snapshot_id"].as_str().unwrap().to_string());
    }
    assert_eq!(repo.objects("snapshots").len(), 8);
    for (id, data) in ids.iter().zip(&streams) {
        assert!(&repo.restore(id) == data, "snapshot {id} differs");
    }
}

#[test]
fn a_repeat_backup_reads_no_data_packs_and_reports_its_requests() {
    let Some(repo) = s3_repo() else { return };
    let data = dump_like(20_000_000, Change::None);
    let first = repo.backup(&data, &[]);
    let packs = first["packs_written"].as_u64().unwrap();
    assert!(
        first["requests"]["put"].as_u64().unwrap() >= packs + 2,
        "packs, index, snapshot"
    );

    let second = repo.backup(&data, &[]);
    let r = &second["requests"];
    assert_eq!(r["put"], 1, "only the snapshot is written: {r}");
    assert_eq!(r["delete"], 0);
    // config, one key file, one index file, the newest snapshot and the
    // previous version's sketch (its tree pack, one read of its parts):
    // nothing else is read.
    assert!(r["get"].as_u64().unwrap() <= 6, "{r}");
    assert!(
        r["bytes_down"].as_u64().unwrap() < 100_000,
        "read pack data: {r}"
    );

    let out = repo.run(&["-v", "snapshots"], b"");
    assert!(
        stderr(&out).contains("storage requests: 0 PUT"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn large_packs_go_up_in_parts_and_read_back_whole() {
    if !store_available(Store::S3) {
        return;
    }
    // A repository with 24 MiB packs, uploaded in 8 MiB parts above 10 MiB.
    let fresh = TestRepo::uninitialised_on(Store::S3);
    let out = fresh.run(&["init", "--pack-size", "24"], b"");
    out.assert_ok();
    let data = noise(60_000_000, 11);
    let summary = fresh.backup(&data, &["-o", "multipart_threshold=10M"]);
    let packs = summary["packs_written"].as_u64().unwrap();
    let puts = summary["requests"]["put"].as_u64().unwrap();
    // At least two full packs of 3 parts: start + 3 parts + complete each.
    let full = fresh
        .objects("data")
        .iter()
        .filter(|(_, size)| *size >= 10 << 20)
        .count() as u64;
    assert!(full >= 2, "{:?}", fresh.objects("data"));
    assert!(
        puts >= full * 5 + (packs - full),
        "{puts} PUTs for {packs} packs: {summary}"
    );
    assert_eq!(fresh.restore("latest"), data);
    let check = fresh.run(&["check", "--read-data"], b"");
    check.assert_ok();
    // Multipart uploads off: one PUT per pack.
    let small = fresh.backup(&noise(30_000_000, 12), &["-o", "multipart_threshold=off"]);
    let (packs, puts) = (
        small["packs_written"].as_u64().unwrap(),
        small["requests"]["put"].as_u64().unwrap(),
    );
    assert!(puts <= packs + 2, "{puts} PUTs for {packs} packs");
    let out = fresh.run(&["snapshots", "-o", "multipart_threshold=1M"], b"");
    assert_fails(&out, 2, "at least 5M");
    assert_eq!(fresh.restore("latest").len(), 30_000_000);
}

/// Default packs (16 MiB) spool to the cache directory and go up in two
/// parts read from the spool: the upload holds a part, not the pack, and
/// the spool is empty afterwards.
#[test]
fn default_packs_go_up_in_two_parts_from_the_spool() {
    let Some(repo) = s3_repo() else { return };
    let data = noise(40_000_000, 13);
    let summary = repo.backup(&data, &[]);
    let full = repo
        .objects("data")
        .iter()
        .filter(|(_, size)| *size >= 16 << 20)
        .count() as u64;
    let packs = summary["packs_written"].as_u64().unwrap();
    let puts = summary["requests"]["put"].as_u64().unwrap();
    // Each full pack: start + 2 parts + complete; the rest (the last data
    // pack, the tree pack, index, snapshot, lock) one PUT each, at most.
    assert_eq!(full, 2, "{:?}", repo.objects("data"));
    assert!(
        puts >= full * 4 && puts <= full * 4 + (packs - full) + 4,
        "{puts} PUTs for {packs} packs: {summary}"
    );
    assert_eq!(repo.restore("latest"), data);
    repo.assert_spool_empty();
}
