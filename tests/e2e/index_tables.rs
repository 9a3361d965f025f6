//! The local index tables a user never sees: one per live index file in the
//! cache, built once and dropped with its file, and a damaged one built
//! again, on every store.

use std::path::PathBuf;

use coffer_e2e::{dump_like, noise, Change, Store, TestRepo};

/// The cache's table files, by name.
fn tables(repo: &TestRepo) -> Vec<(String, std::time::SystemTime)> {
    let cache = repo.dir.path().join("cache");
    let Some(dir) = std::fs::read_dir(&cache).ok().and_then(|mut d| d.next()) else {
        return Vec::new();
    };
    let dir = dir.unwrap().path().join("index-tables");
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().modified().unwrap(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn table_path(repo: &TestRepo, name: &str) -> PathBuf {
    let cache = repo.dir.path().join("cache");
    let dir = std::fs::read_dir(cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    dir.join("index-tables").join(name)
}

/// Flips one byte in the table's first slot block.
fn damage_a_block(path: &PathBuf) {
    let mut bytes = std::fs::read(path).unwrap();
    let header = u32::from_le_bytes(bytes[37..41].try_into().unwrap()) as usize;
    bytes[41 + header + 100] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn names(of: &[(String, std::time::SystemTime)]) -> Vec<String> {
    of.iter().map(|(n, _)| n.clone()).collect()
}

fn index_names(repo: &TestRepo) -> Vec<String> {
    let mut n: Vec<String> = repo
        .objects("index")
        .into_iter()
        .map(|(k, _)| k.trim_start_matches("index/").to_string())
        .collect();
    n.sort();
    n
}

fn each_index_file_gets_one_table_built_once_and_dropped_with_it(store: Store) {
    let repo = TestRepo::new_on(store);
    let big = dump_like(30_000_000, Change::None);
    repo.backup(&big, &[]);
    // A backup looks blobs up in the tables it found; the first command
    // after it builds the table of the index file it wrote.
    assert!(tables(&repo).is_empty());
    assert!(repo.restore("latest") == big);
    let first = tables(&repo);
    assert_eq!(names(&first), index_names(&repo));
    // A small day adds a delta index file and its table; the first table
    // is not built again.
    let small = noise(2_000_000, 7);
    repo.backup(&small, &["--stdin-filename", "small"]);
    assert!(repo.restore("latest") == small);
    let second = tables(&repo);
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(second.contains(&first[0]), "the first table was rebuilt");
    // Both restore without a cache too.
    let out = repo.run_ok(
        &["--no-cache", "restore", "latest", "--stream", "stdin"],
        b"",
    );
    assert!(out.output.stdout == big);
    // Forget the big dump's snapshot and prune: its index is rewritten, and
    // the tables follow the live files.
    repo.run_ok(&["forget", "--keep-last", "1"], b"");
    repo.run_ok(&["prune", "--delete-delay", "0h"], b"");
    assert!(repo.restore("latest") == small);
    assert_eq!(names(&tables(&repo)), index_names(&repo));
    repo.assert_check_passes(true);
}

fn a_damaged_table_is_built_again(store: Store) {
    let repo = TestRepo::new_on(store);
    let data = dump_like(20_000_000, Change::None);
    repo.backup(&data, &[]);
    assert!(repo.restore("latest") == data);
    let name = names(&tables(&repo)).remove(0);
    let path = table_path(&repo, &name);

    // A damaged table is refused when opened and built again from the
    // index file: the backup deduplicates as before.
    damage_a_block(&path);
    let damaged = std::fs::read(&path).unwrap();
    let again = repo.backup(&data, &[]);
    assert_eq!(again["new_chunks"], 0, "{again}");
    assert!(std::fs::read(&path).unwrap() != damaged);
    assert!(repo.restore("latest") == data);

    // A table cut short does not even open: it is built again at once.
    let path = table_path(&repo, &names(&tables(&repo)).remove(0));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    assert!(repo.restore("latest") == data);
    assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len());
}

on_every_store!(
    each_index_file_gets_one_table_built_once_and_dropped_with_it,
    a_damaged_table_is_built_again
);
