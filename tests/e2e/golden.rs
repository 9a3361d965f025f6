//! A repository written by coffer 0.1.0 (format v1), committed under
//! `tests/fixtures/repo-v1`, must keep opening and restoring byte-identical.
//! If this test fails, the on-storage format changed: old repositories would
//! no longer open.

use std::path::Path;

use coffer_e2e::{Store, TestRepo};

/// BLAKE3 of the two streams stored in the fixture (see its README.md).
const DAY1_BLAKE3: &str = include_str!("../fixtures/repo-v1/day1.blake3");
const DAY2_BLAKE3: &str = include_str!("../fixtures/repo-v1/day2.blake3");

/// Every file below `root`, as (key relative to `root`, path).
fn files(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(root, &p, out);
        } else {
            out.push((
                p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                p,
            ));
        }
    }
}

fn the_v1_fixture_still_opens_and_restores_byte_identical(store: Store) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/repo-v1");
    let mut objects = Vec::new();
    files(&fixture.join("repo"), &fixture.join("repo"), &mut objects);
    let repo = TestRepo::uninitialised_on(store);
    for (key, path) in &objects {
        repo.write_object(key, &std::fs::read(path).unwrap());
    }
    std::fs::copy(fixture.join("password"), &repo.password_file).unwrap();

    let list = repo.run(&["snapshots", "--json"], b"");
    list.assert_ok();
    let snaps: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["streams"][0]["name"], "day1.sql");
    assert_eq!(snaps[1]["tags"], serde_json::json!(["nightly"]));

    for (snap, want) in snaps.iter().zip([DAY1_BLAKE3, DAY2_BLAKE3]) {
        let bytes = repo.restore(snap["id"].as_str().unwrap());
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            want.trim(),
            "on {store:?}"
        );
    }
}

on_every_store!(the_v1_fixture_still_opens_and_restores_byte_identical);
