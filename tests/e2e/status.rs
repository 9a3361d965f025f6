//! `coffer status --max-age`: one line per stream, exit 23 when a stream's
//! newest snapshot is too old or missing (what a monitoring probe needs).

use coffer_e2e::{run_with_input, stderr, TestRepo};
use serde_json::Value;

use crate::errors::assert_fails;

#[test]
fn status_flags_stale_and_missing_streams() {
    let repo = TestRepo::new();
    assert_fails(
        &repo.run(&["status", "--max-age", "26h"], b""),
        23,
        "no snapshots",
    );

    let three_days_ago = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(72))
        .unwrap()
        .to_string();
    let mut cmd = repo.command(&[
        "backup",
        "--stdin",
        "--stdin-filename",
        "app.sql",
        "--time",
        &three_days_ago,
    ]);
    cmd.env("TZ", "UTC");
    assert!(run_with_input(cmd, b"old dump\n").status.success());
    repo.backup(b"roles\n", &["--stdin-filename", "globals.sql"]);

    let out = repo.run(&["status", "--max-age", "26h"], b"");
    assert_eq!(out.status.code(), Some(23), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("app.sql: STALE: newest snapshot"), "{text}");
    assert!(text.contains("(3d0h ago"), "{text}");
    assert!(text.contains("globals.sql: ok"), "{text}");
    assert!(stderr(&out).contains("1 stream(s) have no snapshot newer than 26h: app.sql"));

    let out = repo.run(&["status", "--max-age", "4d"], b"");
    out.assert_ok();
    assert_fails(
        &repo.run(&["status", "--max-age", "4d", "--name", "other.sql"], b""),
        23,
        "other.sql",
    );
    let out = repo.run(
        &[
            "status",
            "--json",
            "--max-age",
            "26h",
            "--name",
            "globals.sql",
        ],
        b"",
    );
    out.assert_ok();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["name"], "globals.sql");
    assert_eq!(v[0]["fresh"], true);
    assert!(v[0]["age_seconds"].as_i64().unwrap() < 600);
    assert_fails(&repo.run(&["status", "--max-age", "26"], b""), 2, "no unit");
}
