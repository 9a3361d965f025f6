//! `backup --stdin-from-command`: the producer's exit status decides whether
//! a snapshot is written.

use coffer_e2e::{stderr, TestRepo};

use crate::errors::assert_fails;

#[test]
fn a_successful_producer_is_backed_up_and_its_stderr_passes_through() {
    let repo = TestRepo::new();
    let script = "echo 'pg_dump: warning' >&2; seq 1 200000";
    let out = repo.run(
        &[
            "backup",
            "--stdin-from-command",
            "--stdin-filename",
            "n.txt",
            "--",
            "sh",
            "-c",
            script,
        ],
        b"",
    );
    out.assert_ok();
    assert!(
        stderr(&out).starts_with("pg_dump: warning\n"),
        "{}",
        stderr(&out)
    );
    let expected: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert_eq!(repo.restore("latest"), expected.into_bytes());
}

#[test]
fn a_failing_or_killed_producer_leaves_no_snapshot() {
    let repo = TestRepo::uninitialised();
    assert!(repo
        .run(&["init", "--pack-size", "1"], b"")
        .status
        .success());
    // Several MiB of output (packs get uploaded), then failure.
    let fails = "head -c 6000000 /dev/urandom; exit 3";
    let out = repo.run(
        &["backup", "--stdin-from-command", "--", "sh", "-c", fails],
        b"",
    );
    assert_fails(&out, 4, "exited with status 3: nothing was backed up");
    let killed = "head -c 3000000 /dev/zero; kill -9 $$";
    let out = repo.run(
        &["backup", "--stdin-from-command", "--", "sh", "-c", killed],
        b"",
    );
    assert_fails(&out, 4, "was killed by signal 9");
    let out = repo.run(
        &["backup", "--stdin-from-command", "--", "/no/such/pg_dump"],
        b"",
    );
    assert_fails(&out, 4, "cannot start the producer `/no/such/pg_dump`");
    assert!(repo.objects("snapshots").is_empty());
    assert!(
        !repo.objects("data").is_empty(),
        "packs were uploaded before the failure"
    );
    // The next backup works.
    let s = repo.backup(b"fine\n", &[]);
    assert_eq!(repo.restore(s["snapshot_id"].as_str().unwrap()), b"fine\n");
}

#[test]
fn exactly_one_input_must_be_chosen() {
    let repo = TestRepo::new();
    let out = repo.run(&["backup"], b"x");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = repo.run(
        &["backup", "--stdin", "--stdin-from-command", "--", "true"],
        b"x",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = repo.run(&["backup", "--stdin-from-command"], b"x");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The repository password is coffer's: a producer (or a `--stream` shell
/// command) never sees `COFFER_PASSWORD`.
#[test]
fn producers_do_not_inherit_the_repository_password() {
    let repo = TestRepo::new();
    let mut cmd = repo.command(&[
        "backup",
        "--stdin-from-command",
        "--",
        "sh",
        "-c",
        "echo ${COFFER_PASSWORD:-not set}",
    ]);
    cmd.env("COFFER_PASSWORD", "correct horse")
        .env_remove("COFFER_PASSWORD_FILE");
    coffer_e2e::run_with_input(cmd, b"").ok();
    assert_eq!(repo.restore("latest"), b"not set\n");
}
