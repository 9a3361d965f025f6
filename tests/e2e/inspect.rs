//! Looking inside without restoring, as a restic user would: `stats` says
//! what retention costs, `ls` lists a snapshot's streams, `diff` what
//! changed between two nights, `cat` shows objects decrypted.

use coffer_e2e::{dump_like, snapshot_id, Change, TestRepo};

fn json(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    repo.run_ok(args, b"").json()
}

#[test]
fn stats_ls_diff_and_cat_describe_two_nights() {
    let repo = TestRepo::new();
    let monday = dump_like(4_000_000, Change::None);
    let tuesday = dump_like(4_000_000, Change::Scattered);
    let first = repo.backup(&monday, &["--stdin-filename", "app.sql"]);
    let second = repo.backup(&tuesday, &["--stdin-filename", "app.sql"]);
    let (a, b) = (snapshot_id(&first), snapshot_id(&second));

    // The same night twice costs nothing more; two nights cost a full copy
    // and a delta day.
    let one = json(&repo, &["stats", &a, "--json"]);
    let both = json(&repo, &["stats", "--json"]);
    assert_eq!(one["snapshots_count"], 1);
    assert_eq!(one["total_size"], monday.len() as u64);
    assert_eq!(both["total_size"], (monday.len() + tuesday.len()) as u64);
    assert!(both["delta_chunks"].as_u64().unwrap() > 0, "{both}");
    let stored = |v: &serde_json::Value| v["stored_size"].as_u64().unwrap();
    assert!(stored(&both) < stored(&one) * 11 / 10, "{one} {both}");
    let raw = json(&repo, &["stats", "--mode", "raw-data", "--json"]);
    assert_eq!(
        raw["total_size"].as_u64().unwrap(),
        stored(&both) + both["base_stored_size"].as_u64().unwrap()
    );
    let text = String::from_utf8(repo.run_ok(&["stats"], b"").output.stdout).unwrap();
    assert!(
        text.contains("restore size: ") && text.contains("as deltas"),
        "{text}"
    );

    let streams = json(&repo, &["ls", &b, "--json"]);
    assert_eq!(streams[0]["name"], "app.sql");
    assert_eq!(streams[0]["size"], tuesday.len() as u64);

    // Every chunk changed, yet the new ones are stored in a few percent.
    let d = &json(&repo, &["diff", &a, &b, "--json"])[0];
    assert_eq!(d["name"], "app.sql");
    assert_eq!(d["size_b"], tuesday.len() as u64);
    assert_eq!(
        d["shared"].as_u64().unwrap() + d["added"].as_u64().unwrap(),
        tuesday.len() as u64
    );
    assert!(
        d["added_stored"].as_u64().unwrap() * 10 < stored(&one),
        "{d}"
    );
    let same = &json(&repo, &["diff", &b, &b, "--json"])[0];
    assert_eq!(
        (same["added"].as_u64(), same["removed"].as_u64()),
        (Some(0), Some(0))
    );

    let config = json(&repo, &["cat", "config"]);
    assert_eq!(config["version"], 2);
    assert_eq!(config["delta"], "auto");
    let snap = json(&repo, &["cat", "snapshot", &b[..10]]);
    assert_eq!(snap["id"], b.as_str());
    assert!(snap["streams"][0]["sketch"]["id"].is_string(), "{snap}");
    let index_name = repo.objects("index")[0]
        .0
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let index = json(&repo, &["cat", "index", &index_name[..8]]);
    assert!(!index["packs"].as_array().unwrap().is_empty(), "{index}");
    let out = repo.run(&["cat", "index", "zz"], b"");
    assert_eq!(out.output.status.code(), Some(14), "{}", out.stderr());
    let out = repo.run(&["cat", "snapshot"], b"");
    assert_eq!(out.output.status.code(), Some(2), "{}", out.stderr());
}
