//! `coffer check` finds every problem, names each object, and fails only on
//! real damage.

use coffer_e2e::{dump_like, noise, stderr, Change, Store, TestRepo};

fn check(repo: &TestRepo, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = repo.run(&all, b"");
    (
        out.status.code(),
        String::from_utf8(out.stdout.clone()).unwrap() + &stderr(&out),
    )
}

fn two_backups(store: coffer_e2e::Store) -> TestRepo {
    let repo = TestRepo::uninitialised_on(store);
    assert!(repo
        .run(&["init", "--pack-size", "1"], b"")
        .status
        .success());
    repo.backup(&dump_like(3_000_000, Change::None), &[]);
    let mut day2 = dump_like(3_000_000, Change::Clustered);
    day2.extend_from_slice(&noise(2_000_000, 9));
    repo.backup(&day2, &[]);
    repo
}

fn a_healthy_repository_passes_and_leftovers_are_only_notes(store: Store) {
    let repo = two_backups(store);
    let (code, out) = check(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("checked 2 snapshots") && out.contains("no errors were found"),
        "{out}"
    );
    // A pack no index names, as a killed backup leaves behind.
    let stray = format!("data/ee/{}", "e".repeat(64));
    repo.write_object(&stray, b"partial pack");
    let (code, out) = check(&repo, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("note: data/: 1 packs and 0 unfinished uploads (12 bytes) are in no index"),
        "{out}"
    );
}

fn every_problem_is_reported_in_one_run(store: Store) {
    let repo = two_backups(store);
    let packs = repo.objects("data");
    let largest = packs.iter().max_by_key(|(_, n)| *n).unwrap().0.clone();
    let smallest_data = packs
        .iter()
        .filter(|(k, _)| *k != largest)
        .max_by_key(|(_, n)| *n)
        .unwrap()
        .0
        .clone();
    // A flipped byte: only reading the data finds it.
    let mut bytes = repo.read_object(&largest);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    repo.write_object(&largest, &bytes);
    let (code, out) = check(&repo, &[]);
    assert_eq!(code, Some(0), "structure is intact: {out}");
    let (code, out) = check(&repo, &["--read-data"]);
    assert_eq!(code, Some(16), "{out}");
    assert!(out.contains(&format!("error: {largest}: ")), "{out}");

    // Two more kinds of damage: a missing pack and a damaged snapshot.
    repo.delete_object(&smallest_data);
    let snap = repo.objects("snapshots")[0].0.clone();
    let mut s = repo.read_object(&snap);
    s[45] ^= 0x01;
    repo.write_object(&snap, &s);
    let (code, out) = check(&repo, &["--read-data"]);
    assert_eq!(code, Some(16), "{out}");
    for object in [&largest, &smallest_data, &snap] {
        assert!(
            out.contains(&format!("error: {object}")),
            "{object} not reported: {out}"
        );
    }
    assert!(
        out.contains("checked 1 snapshots"),
        "the other snapshot is still checked: {out}"
    );
}

#[test]
fn a_malformed_subset_is_a_usage_error() {
    let repo = TestRepo::new();
    let (code, out) = check(&repo, &["--read-data-subset", "150%"]);
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = check(&repo, &["--read-data-subset", "1/3"]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_subset_given_as_a_size_reads_packs_until_it_is_reached() {
    let repo = TestRepo::new();
    // Three backups of new data: three data packs (and three tree packs).
    for seed in 0..3 {
        repo.backup(&coffer_e2e::noise(300_000, seed), &[]);
    }
    // Any one pack holds more than a byte: exactly one is read.
    let (code, out) = check(&repo, &["--read-data-subset", "1"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("; read 1 packs"), "{out}");
    let (code, out) = check(&repo, &["--read-data-subset", "1G"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("; read 6 packs"), "{out}");
}

on_every_store!(
    a_healthy_repository_passes_and_leftovers_are_only_notes,
    every_problem_is_reported_in_one_run
);
