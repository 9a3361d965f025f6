//! Several named streams in one snapshot (`backup --stream NAME=COMMAND`):
//! producers run one after another (or several at once with `--parallel`),
//! each is restored by name, and one failing producer means no snapshot at
//! all.

use coffer_e2e::{dump_like, stderr, Change, TestRepo};
use serde_json::Value;

use crate::errors::assert_fails;

#[test]
fn several_streams_land_in_one_snapshot_and_restore_by_name() {
    let repo = TestRepo::new();
    let dir = repo.dir.path();
    let app = dump_like(3_000_000, Change::None);
    std::fs::write(dir.join("app.sql"), &app).unwrap();
    let globals = format!(
        "printf 'CREATE ROLE app;\\n'; touch {}/globals-done",
        dir.display()
    );
    // The second producer starts only after the first has finished.
    let app_cmd = format!(
        "test -e {d}/globals-done && cat {d}/app.sql",
        d = dir.display()
    );
    let out = repo.run(
        &[
            "backup",
            "--json",
            "--stream",
            &format!("globals.sql={globals}"),
            "--stream",
            &format!("app.sql={app_cmd}"),
            "--stream",
            &format!("copy.sql=cat {}/app.sql", dir.display()),
        ],
        b"",
    );
    out.assert_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = summary["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 3);
    // The third stream repeats the second: it deduplicates to (almost) nothing.
    assert!(
        streams[2]["added_size"].as_u64().unwrap() < 10_000,
        "{summary}"
    );
    assert_eq!(repo.objects("snapshots").len(), 1);

    let restore = |name: &str| {
        let out = repo.run(&["restore", "latest", "--stream", name], b"");
        out.assert_ok();
        out.output.stdout
    };
    assert_eq!(restore("globals.sql"), b"CREATE ROLE app;\n");
    assert!(restore("app.sql") == app);
    assert!(restore("copy.sql") == app);
    // Without --stream the choice is the user's, not a guess.
    assert_fails(
        &repo.run(&["restore", "latest"], b""),
        2,
        "holds 3 streams (globals.sql, app.sql, copy.sql)",
    );
    assert_fails(
        &repo.run(&["restore", "latest", "--stream", "nope"], b""),
        14,
        "no stream named",
    );
    let table = String::from_utf8(repo.run(&["snapshots"], b"").output.stdout).unwrap();
    assert!(table.contains("globals.sql,app.sql,copy.sql"), "{table}");
}

#[test]
fn one_failing_stream_means_no_snapshot() {
    let repo = TestRepo::new();
    repo.backup(b"earlier\n", &[]);
    let out = repo.run(
        &[
            "backup",
            "--stream",
            "ok.sql=echo fine",
            "--stream",
            "bad.sql=echo partial; exit 3",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("status 3"), "{}", stderr(&out));
    assert_eq!(repo.objects("snapshots").len(), 1);
    assert_eq!(repo.restore("latest"), b"earlier\n");
    assert_fails(
        &repo.run(&["backup", "--stream", "x"], b""),
        2,
        "NAME=COMMAND",
    );
    assert_fails(
        &repo.run(
            &["backup", "--stream", "a=echo 1", "--stream", "a=echo 2"],
            b"",
        ),
        2,
        "unique",
    );
}

#[test]
fn latest_means_the_newest_snapshot_of_the_host_and_stream_asked_for() {
    let repo = TestRepo::new();
    let backup = |host: &str, name: &str, data: &[u8], time: &str| {
        let out = repo.run(
            &[
                "backup",
                "--stdin",
                "--host",
                host,
                "--stdin-filename",
                name,
                "--time",
                time,
            ],
            data,
        );
        out.assert_ok();
    };
    backup("db-a", "app.sql", b"a1", "2026-01-01 01:00:00");
    backup("db-b", "app.sql", b"b1", "2026-01-01 02:00:00");
    backup("db-a", "billing.sql", b"a-billing", "2026-01-01 03:00:00");
    let restore = |args: &[&str]| {
        let mut all = vec!["restore", "latest"];
        all.extend_from_slice(args);
        let out = repo.run(&all, b"");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out.output.stdout
    };
    assert_eq!(restore(&[]), b"a-billing");
    assert_eq!(restore(&["--host", "db-b"]), b"b1");
    assert_eq!(restore(&["--stream", "app.sql"]), b"b1");
    assert_eq!(restore(&["--host", "db-a", "--stream", "app.sql"]), b"a1");
    let out = repo.run(&["restore", "latest", "--host", "db-c"], b"");
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
}

/// `--parallel N` runs producers at once: here the first waits for the
/// second to start, which only running them together allows (one after
/// another, the first gives up after 3 s and the backup fails). Streams
/// still restore by name, in the order given, and one failing producer
/// still means no snapshot.
#[test]
fn parallel_producers_run_at_once_and_still_commit_all_or_nothing() {
    let repo = TestRepo::new();
    let flag = repo.dir.path().join("second-started");
    let flag = flag.to_string_lossy();
    let waits = format!(
        "first.sql=i=0; while [ ! -e '{flag}' ]; do i=$((i+1)); [ $i -gt 60 ] && exit 7; sleep 0.05; done; seq 1 200000"
    );
    let starts = format!("second.sql=touch '{flag}'; seq 5 100000");
    let args = |parallel: &'static str| {
        vec![
            "backup".to_string(),
            "--stream".into(),
            waits.clone(),
            "--stream".into(),
            starts.clone(),
            "--parallel".into(),
            parallel.into(),
            "--json".into(),
        ]
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        repo.run(&a, b"")
    };
    // One at a time: the first producer waits in vain.
    let out = run(args("1"));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(repo.objects("snapshots").is_empty());
    let _ = std::fs::remove_file(&*flag);

    let out = run(args("2"));
    assert!(out.status.success(), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = coffer_e2e::stream_names(&s);
    assert_eq!(names, ["first.sql", "second.sql"]);
    let seq = |from: u32, to: u32| -> Vec<u8> {
        (from..=to)
            .map(|n| format!("{n}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let first = repo.run_ok(&["restore", "latest", "--stream", "first.sql"], b"");
    assert!(first.output.stdout == seq(1, 200_000));
    let second = repo.run_ok(&["restore", "latest", "--stream", "second.sql"], b"");
    assert!(second.output.stdout == seq(5, 100_000));

    let out = repo.run(
        &[
            "backup",
            "--parallel",
            "2",
            "--stream",
            "ok.sql=seq 1 100000",
            "--stream",
            "bad.sql=echo partial; exit 3",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(repo.objects("snapshots").len(), 1);
}
