//! Repositories written by earlier coffers, committed under
//! `tests/fixtures/` (format 1 by coffer 0.1.0, format 2 by the first coffer
//! with delta blobs), must keep opening and restoring byte-identical. If
//! this test fails, the on-storage format changed: old repositories would no
//! longer open.

use coffer_e2e::{Store, TestRepo};

/// BLAKE3 of the two streams stored in the fixture (see its README.md).
const DAY1_BLAKE3: &str = include_str!("../fixtures/repo-v1/day1.blake3");
const DAY2_BLAKE3: &str = include_str!("../fixtures/repo-v1/day2.blake3");

fn the_v1_fixture_still_opens_and_restores_byte_identical(store: Store) {
    let repo = TestRepo::from_fixture_on(store, "repo-v1");
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

/// BLAKE3 of the four days stored in the format 2 fixture.
const V2_DAYS: [&str; 4] = [
    include_str!("../fixtures/repo-v2/day0.blake3"),
    include_str!("../fixtures/repo-v2/day1.blake3"),
    include_str!("../fixtures/repo-v2/day2.blake3"),
    include_str!("../fixtures/repo-v2/day3.blake3"),
];

fn the_v2_fixture_still_opens_and_restores_byte_identical(store: Store) {
    let repo = TestRepo::from_fixture_on(store, "repo-v2");
    let list = repo.run(&["snapshots", "--json"], b"");
    list.assert_ok();
    let snaps: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 4);
    for (snap, want) in snaps.iter().zip(V2_DAYS) {
        let bytes = repo.restore(snap["id"].as_str().unwrap());
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            want.trim(),
            "on {store:?}"
        );
    }
    repo.assert_check_passes(true);
}

on_every_store!(
    the_v1_fixture_still_opens_and_restores_byte_identical,
    the_v2_fixture_still_opens_and_restores_byte_identical
);
