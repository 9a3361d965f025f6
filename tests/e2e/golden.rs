//! A repository written by coffer 0.1.0 (format v1), committed under
//! `tests/fixtures/repo-v1`, must keep opening and restoring byte-identical.
//! If this test fails, the on-storage format changed: old repositories would
//! no longer open.

use std::path::Path;

use coffer_e2e::TestRepo;

/// BLAKE3 of the two streams stored in the fixture (see its README.md).
const DAY1_BLAKE3: &str = include_str!("../fixtures/repo-v1/day1.blake3");
const DAY2_BLAKE3: &str = include_str!("../fixtures/repo-v1/day2.blake3");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn the_v1_fixture_still_opens_and_restores_byte_identical() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/repo-v1");
    let repo = TestRepo::uninitialised();
    copy_dir(&fixture.join("repo"), &repo.repo);
    std::fs::copy(fixture.join("password"), &repo.password_file).unwrap();

    let list = repo.run(&["snapshots", "--json"], b"");
    assert!(list.status.success(), "{}", coffer_e2e::stderr(&list));
    let snaps: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["streams"][0]["name"], "day1.sql");
    assert_eq!(snaps[1]["tags"], serde_json::json!(["nightly"]));

    for (snap, want) in snaps.iter().zip([DAY1_BLAKE3, DAY2_BLAKE3]) {
        let bytes = repo.restore(snap["id"].as_str().unwrap());
        assert_eq!(blake3::hash(&bytes).to_hex().as_str(), want.trim());
    }
}
