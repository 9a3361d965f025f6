//! `coffer snapshots` as a restic user uses it: filtered by host, tag and
//! stream name (restic's `--path`), the newest per group, compact; and
//! `coffer version`.

use coffer_e2e::TestRepo;

fn listed(repo: &TestRepo, args: &[&str]) -> Vec<String> {
    let mut full = vec!["snapshots", "--json"];
    full.extend_from_slice(args);
    let v = repo.run_ok(&full, b"").json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["streams"][0]["name"].as_str().unwrap().to_string()
                + "@"
                + s["host"].as_str().unwrap()
        })
        .collect()
}

#[test]
fn snapshots_filter_by_host_tag_and_name_and_show_the_newest_per_group() {
    let repo = TestRepo::new();
    for (day, host, name, tag) in [
        (1, "db1", "app.sql", "nightly"),
        (2, "db2", "app.sql", "nightly"),
        (3, "db1", "app.sql", "manual"),
        (4, "db1", "users.sql", "nightly"),
    ] {
        let time = format!("2026-11-0{day} 02:00:00");
        let args = [
            "--host",
            host,
            "--stdin-filename",
            name,
            "--tag",
            tag,
            "--time",
            &time,
        ];
        repo.backup(format!("day {day}\n").as_bytes(), &args);
    }
    assert_eq!(listed(&repo, &[]).len(), 4);
    assert_eq!(listed(&repo, &["--host", "db2"]), ["app.sql@db2"]);
    assert_eq!(listed(&repo, &["--tag", "manual"]), ["app.sql@db1"]);
    assert_eq!(listed(&repo, &["--name", "users.sql"]), ["users.sql@db1"]);
    assert_eq!(listed(&repo, &["--path", "users.sql"]), ["users.sql@db1"]);
    // Newest of each host and name: db1/app (day 3), db2/app, db1/users.
    assert_eq!(
        listed(&repo, &["--latest", "1"]),
        ["app.sql@db2", "app.sql@db1", "users.sql@db1"]
    );
    let out = repo.run_ok(&["snapshots", "--compact", "--host", "db1"], b"");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(!table.contains("Stored"), "{table}");
    assert!(table.contains("3 snapshots"), "{table}");
}

#[test]
fn version_names_the_formats_it_writes() {
    let repo = TestRepo::uninitialised();
    let out = repo.run_ok(&["version"], b"");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.starts_with("coffer 0."), "{text}");
    assert!(text.contains("repository format 2"), "{text}");
}

/// `tag` rewrites a snapshot with new tags: listed and restorable under its
/// new id, the old one gone; killed between the two writes, both remain.
#[test]
fn tags_are_changed_by_rewriting_the_snapshot() {
    let repo = TestRepo::new();
    let first = repo.backup(b"monday\n", &["--tag", "nightly,manual"]);
    let old = coffer_e2e::snapshot_id(&first);
    let listed = |repo: &TestRepo| -> Vec<serde_json::Value> {
        repo.run_ok(&["snapshots", "--json"], b"")
            .json()
            .as_array()
            .unwrap()
            .clone()
    };
    let out = repo.run_ok(
        &["tag", &old[..8], "--add", "keep", "--remove", "manual"],
        b"",
    );
    assert!(out.stderr().contains("is now"), "{}", out.stderr());
    let now = listed(&repo);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0]["tags"], serde_json::json!(["nightly", "keep"]));
    assert_ne!(now[0]["id"], old.as_str());
    assert_eq!(repo.restore("latest"), b"monday\n");
    // The same change again changes nothing.
    let out = repo.run_ok(&["tag", "latest", "--add", "keep"], b"");
    assert!(out.stderr().contains("unchanged"), "{}", out.stderr());
    // Nothing to do is a usage error.
    let out = repo.run(&["tag", "latest"], b"");
    assert_eq!(out.output.status.code(), Some(2), "{}", out.stderr());
    // Killed after writing the new object: both are there, nothing lost.
    repo.run_killed_at(&["tag", "latest", "--set", "audit"], "tag-wrote-new", b"");
    let both = listed(&repo);
    assert_eq!(both.len(), 2, "{both:?}");
    let tags: Vec<&serde_json::Value> = both.iter().map(|s| &s["tags"]).collect();
    assert!(tags.contains(&&serde_json::json!(["audit"])), "{tags:?}");
}
