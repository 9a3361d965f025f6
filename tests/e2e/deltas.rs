//! Delta blobs as a database team sees them: a day of scattered row changes
//! costs a few percent of a dump, every snapshot restores byte for byte,
//! forgetting the day the bases came from loses nothing, and damage to a
//! base is an error naming it, never wrong bytes.

use coffer_e2e::{dump_like, snapshot_id, Change, Store, TestRepo};

const DUMP: usize = 20_000_000;

fn added(summary: &serde_json::Value) -> u64 {
    summary["bytes_added"].as_u64().unwrap()
}

/// Sealed bytes of bases a backup read, from storage and local copies.
fn base_bytes(summary: &serde_json::Value) -> u64 {
    summary["base_bytes_read"].as_u64().unwrap() + summary["base_bytes_local"].as_u64().unwrap()
}

/// The local copies of data blobs in a test repository's cache.
fn blob_copies(repo: &TestRepo) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(repos) = std::fs::read_dir(repo.dir.path().join("cache")) else {
        return found;
    };
    for r in repos.flatten() {
        let Ok(folders) = std::fs::read_dir(r.path().join("blobs")) else {
            continue;
        };
        for f in folders.flatten() {
            found.extend(
                std::fs::read_dir(f.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    found
}

fn a_scattered_day_costs_a_few_percent_and_restores_exactly(store: Store) {
    let repo = TestRepo::new_on(store);
    let monday = dump_like(DUMP, Change::None);
    let tuesday = dump_like(DUMP, Change::Scattered);
    let first = repo.backup(&monday, &[]);
    let second = repo.backup(&tuesday, &[]);
    // Every chunk changed, yet the day costs a few percent of a copy.
    assert_eq!(second["new_chunks"], second["chunks"], "{second}");
    assert!(second["delta_chunks"].as_u64().unwrap() > 0, "{second}");
    assert!(
        added(&second) * 100 < added(&first) * 8,
        "the scattered day added {} of {}",
        added(&second),
        added(&first)
    );
    // The bases were read once, about one compressed copy: from storage,
    // or, on a remote store, from the copies the first backup kept.
    let bases = base_bytes(&second);
    assert!(bases > 0 && bases < added(&first) * 3 / 2, "{second}");
    assert_eq!(
        second["base_bytes_local"].as_u64().unwrap() > 0,
        store != Store::Local,
        "{second}"
    );
    assert!(repo.restore(&snapshot_id(&second)) == tuesday);
    assert!(repo.restore(&snapshot_id(&first)) == monday);
    repo.assert_check_passes(true);
}

fn deltas_off_stores_every_changed_chunk_whole(store: Store) {
    let repo = TestRepo::new_on(store);
    let first = repo.backup(&dump_like(DUMP, Change::None), &[]);
    let second = repo.backup(&dump_like(DUMP, Change::Scattered), &["--delta", "off"]);
    assert_eq!(second["delta_chunks"], 0);
    assert_eq!(base_bytes(&second), 0);
    assert!(added(&second) * 10 > added(&first) * 9, "{second}");
}

fn forgetting_the_base_day_and_pruning_keeps_the_bases(store: Store) {
    let repo = TestRepo::new_on(store);
    let days: Vec<Vec<u8>> = (0..3)
        .map(|d| dump_like(DUMP / 2, Change::Day(d)))
        .collect();
    let ids: Vec<String> = days
        .iter()
        .map(|d| snapshot_id(&repo.backup(d, &[])))
        .collect();
    // Keep only the newest: its deltas' bases are chunks of the forgotten
    // days, which prune must keep (and may repack).
    repo.run_ok(&["forget", &ids[0], &ids[1]], b"");
    let out = repo.run_ok(
        &[
            "prune",
            "--delete-delay",
            "0h",
            "--max-unused",
            "0",
            "--json",
        ],
        b"",
    );
    let report = out.json();
    assert!(repo.restore(&ids[2]) == days[2], "{report}");
    repo.assert_check_passes(true);
    // A fourth day still finds its bases.
    let day4 = dump_like(DUMP / 2, Change::Day(3));
    let s = repo.backup(&day4, &[]);
    assert!(s["delta_chunks"].as_u64().unwrap() > 0, "{s}");
    assert!(repo.restore(&snapshot_id(&s)) == day4);
}

fn a_month_of_days_restores_every_day_and_chains_stay_short(store: Store) {
    let repo = TestRepo::new_on(store);
    let mut kept = Vec::new();
    let mut whole_days = 0;
    for day in 0..12u64 {
        let data = dump_like(DUMP / 4, Change::Day(day));
        let s = repo.backup(&data, &[]);
        let (new, deltas) = (
            s["new_chunks"].as_u64().unwrap(),
            s["delta_chunks"].as_u64().unwrap(),
        );
        // A chain that reached its depth limit starts again with whole
        // chunks: on such a day most new chunks are stored whole.
        if day > 0 && deltas * 2 < new {
            whole_days += 1;
        }
        kept.push((snapshot_id(&s), data));
    }
    assert!(
        (1..=4).contains(&whole_days),
        "{whole_days} days stored mostly whole chunks"
    );
    for (id, data) in &kept {
        assert!(repo.restore(id) == *data, "snapshot {id}");
    }
    repo.assert_check_passes(true);
}

/// The pack holding a base is damaged: restore fails naming the delta and
/// the base (and writes nothing wrong), check reports it.
#[test]
fn a_damaged_base_is_an_error_naming_delta_and_base() {
    let repo = TestRepo::new();
    let first = repo.backup(&dump_like(DUMP / 2, Change::None), &[]);
    let packs_of_first = repo.objects("data");
    let second = repo.backup(&dump_like(DUMP / 2, Change::Scattered), &[]);
    assert!(second["delta_chunks"].as_u64().unwrap() > 0);
    // Damage every pack of the first day (bases and the first tree pack).
    for (key, _) in &packs_of_first {
        let mut bytes = repo.read_object(key);
        let at = bytes.len() / 2;
        bytes[at] ^= 0x55;
        repo.write_object(key, &bytes);
    }
    let out = repo.run(&["restore", &snapshot_id(&second)], b"");
    assert!(!out.status.success(), "{}", out.explain());
    let err = out.stderr();
    assert!(
        err.contains("a base of delta blob"),
        "the error names neither delta nor base: {err}"
    );
    let check = repo.run(&["check", "--read-data"], b"");
    assert_eq!(check.status.code(), Some(16), "{}", check.explain());
    let _ = first;
}

/// A format 1 repository (written before deltas existed) keeps working and
/// stays format 1: an older coffer can still read everything in it.
#[test]
fn a_format_1_repository_stays_format_1() {
    let repo = TestRepo::from_fixture("repo-v1");
    let first = repo.backup(&dump_like(DUMP / 4, Change::None), &[]);
    let second = repo.backup(&dump_like(DUMP / 4, Change::Scattered), &[]);
    assert_eq!(second["delta_chunks"], 0, "{second}");
    assert!(repo.restore(&snapshot_id(&first)) == dump_like(DUMP / 4, Change::None));
    // Objects keep their format 1 types: envelope 1, snapshot type 3,
    // index type 4.
    let config = repo.read_object("config");
    assert_eq!(config[4], 1);
    for (key, _) in repo.objects("snapshots") {
        assert_eq!(repo.read_object(&key)[5], 3, "{key}");
    }
    for (key, _) in repo.objects("index") {
        assert!(matches!(repo.read_object(&key)[5], 2 | 4), "{key}");
    }
    repo.assert_check_passes(true);
}

/// A new repository is format 2, marked so that a coffer from before
/// deltas (which checks the config's envelope version first) refuses it as
/// newer instead of misreading it.
#[test]
fn a_new_repository_is_marked_for_older_readers() {
    let repo = TestRepo::new();
    assert_eq!(repo.read_object("config")[4], 2);
    repo.backup(&dump_like(DUMP / 8, Change::None), &[]);
    for (key, _) in repo.objects("snapshots") {
        assert_eq!(repo.read_object(&key)[5], 7, "{key}");
    }
    for (key, _) in repo.objects("index") {
        assert_eq!(repo.read_object(&key)[5], 6, "{key}");
    }
}

/// Prune turns forward chains around: the newest day is stored whole and
/// older days as deltas against newer ones; everything restores, and a
/// second prune finds nothing left to do.
fn prune_stores_the_newest_day_whole_and_older_days_as_deltas(store: Store) {
    let repo = TestRepo::new_on(store);
    let days: Vec<Vec<u8>> = (0..4)
        .map(|d| dump_like(DUMP / 2, Change::Day(d)))
        .collect();
    let mut ids = Vec::new();
    let mut newest_deltas = 0;
    for d in &days {
        let s = repo.backup(d, &[]);
        newest_deltas = s["delta_chunks"].as_u64().unwrap();
        ids.push(snapshot_id(&s));
    }
    let before: u64 = repo.objects("data").iter().map(|(_, n)| n).sum();
    let r = repo
        .run_ok(&["prune", "--delete-delay", "0h", "--json"], b"")
        .json();
    // Every delta of the newest day is stored whole again (and any older
    // delta whose turned version does not pay); the three older days'
    // chunks become deltas against the next day's.
    assert!(
        r["chunks_made_whole"].as_u64().unwrap() >= newest_deltas,
        "{r}"
    );
    assert!(
        r["chunks_made_deltas"].as_u64().unwrap() > newest_deltas * 2,
        "{r}"
    );
    let after: u64 = repo.objects("data").iter().map(|(_, n)| n).sum();
    assert!(
        after < before * 11 / 10,
        "{after} bytes after, {before} before"
    );
    for (id, data) in ids.iter().zip(&days) {
        assert!(repo.restore(id) == *data, "snapshot {id}");
    }
    repo.assert_check_passes(true);
    let again = repo
        .run_ok(&["prune", "--delete-delay", "0h", "--json"], b"")
        .json();
    assert_eq!(again["chunks_made_whole"], 0, "{again}");
    assert_eq!(again["chunks_made_deltas"], 0, "{again}");
    // The next day's backup finds whole bases and still costs little.
    let next = dump_like(DUMP / 2, Change::Day(4));
    let s = repo.backup(&next, &[]);
    assert!(s["delta_chunks"].as_u64().unwrap() > 0, "{s}");
    assert!(repo.restore(&snapshot_id(&s)) == next);
}

#[test]
fn prune_no_rebase_leaves_chains_as_backups_wrote_them() {
    let repo = TestRepo::new();
    for d in 0..3 {
        repo.backup(&dump_like(DUMP / 4, Change::Day(d)), &[]);
    }
    let r = repo.run_ok(&["prune", "--no-rebase", "--json"], b"").json();
    assert_eq!(r["chunks_made_whole"], 0, "{r}");
    let dry = repo.run_ok(&["prune", "--dry-run", "--json"], b"").json();
    assert!(dry["chunks_made_whole"].as_u64().unwrap() > 0, "{dry}");
    // A dry run writes nothing.
    let still = repo.run_ok(&["prune", "--dry-run", "--json"], b"").json();
    assert_eq!(dry["chunks_made_whole"], still["chunks_made_whole"]);
}

/// A nightly job on a remote store whose cache survives (a volume) reads
/// yesterday's chunks from the copies yesterday's backup kept; a fresh pod
/// downloads them, several per request; damaged copies are fetched again.
fn bases_come_from_local_copies_or_are_downloaded_in_runs(store: Store) {
    let repo = TestRepo::new_on(store);
    let days: Vec<Vec<u8>> = (0..4).map(|d| dump_like(DUMP, Change::Day(d))).collect();
    let first = repo.backup(&days[0], &[]);
    if store == Store::Local {
        // A local repository is read as cheaply as a copy would be.
        let second = repo.backup(&days[1], &[]);
        assert!(blob_copies(&repo).is_empty());
        assert_eq!(second["base_bytes_local"], 0, "{second}");
        return;
    }
    assert!(!blob_copies(&repo).is_empty(), "{first}");

    // The cache survived: no base is downloaded.
    let second = repo.backup(&days[1], &[]);
    assert!(second["delta_chunks"].as_u64().unwrap() > 0, "{second}");
    assert_eq!(second["base_bytes_read"], 0, "{second}");
    assert!(second["base_bytes_local"].as_u64().unwrap() > 0, "{second}");

    // A fresh pod: the bases are downloaded, in runs of consecutive chunks,
    // not one request each.
    std::fs::remove_dir_all(repo.dir.path().join("cache")).unwrap();
    let third = repo.backup(&days[2], &[]);
    let deltas = third["delta_chunks"].as_u64().unwrap();
    assert!(deltas > 20, "{third}");
    assert!(third["base_bytes_read"].as_u64().unwrap() > 0, "{third}");
    // One request per base would be more GETs than deltas (each has one or
    // two bases, and bases that are deltas have their own), metadata aside.
    let gets = third["requests"]["get"].as_u64().unwrap();
    assert!(
        gets * 2 < deltas,
        "{gets} GETs for {deltas} deltas: {third}"
    );

    // Damaged copies are not used: the backup fetches the bases again.
    for copy in blob_copies(&repo) {
        std::fs::write(
            &copy,
            vec![0u8; std::fs::metadata(&copy).unwrap().len() as usize],
        )
        .unwrap();
    }
    let fourth = repo.backup(&days[3], &[]);
    assert!(fourth["base_bytes_read"].as_u64().unwrap() > 0, "{fourth}");
    for (day, s) in days.iter().zip([&first, &second, &third, &fourth]) {
        assert!(repo.restore(&snapshot_id(s)) == *day);
    }
    repo.assert_check_passes(true);

    // A prune that deletes packs drops their copies too.
    repo.run_ok(
        &["forget", &snapshot_id(&first), &snapshot_id(&second)],
        b"",
    );
    repo.run_ok(&["prune", "--delete-delay", "0h", "--max-unused", "0"], b"");
    let packs: Vec<String> = repo.objects("data").into_iter().map(|(k, _)| k).collect();
    for copy in blob_copies(&repo) {
        let name = copy.file_name().unwrap().to_string_lossy().into_owned();
        let pack = name.split('-').next().unwrap().to_string();
        assert!(
            packs.iter().any(|k| k.ends_with(&pack)),
            "a copy of deleted pack {pack}"
        );
    }
    assert!(repo.restore(&snapshot_id(&fourth)) == days[3]);
}

/// A dump taken on another host, or renamed, finds no previous version of
/// its own; `--parent` names the snapshot to take bases from.
fn a_named_parent_gives_bases_to_another_host_or_name(store: Store) {
    let repo = TestRepo::new_on(store);
    let monday = dump_like(DUMP, Change::None);
    let tuesday = dump_like(DUMP, Change::Scattered);
    let first = repo.backup(&monday, &["--host", "db-1", "--stdin-filename", "app.sql"]);
    let other = ["--host", "db-2", "--stdin-filename", "app-renamed.sql"];
    let alone = repo.backup(&tuesday, &other);
    assert_eq!(alone["delta_chunks"], 0, "{alone}");
    // A third host and name: only the named parent can give bases.
    let parent = snapshot_id(&first);
    let with_parent = [
        "--host",
        "db-3",
        "--stdin-filename",
        "app-3.sql",
        "--parent",
        &parent[..8],
    ];
    let wednesday = dump_like(DUMP, Change::Day(1));
    let second = repo.backup(&wednesday, &with_parent);
    assert!(second["delta_chunks"].as_u64().unwrap() > 0, "{second}");
    assert!(repo.restore(&snapshot_id(&second)) == wednesday);
    // An unknown parent is an error before anything is read.
    let bad = repo.run(&["backup", "--stdin", "--parent", "ffffffff"], &tuesday);
    assert_eq!(bad.output.status.code(), Some(14), "{}", bad.stderr());
}

on_every_store!(
    a_scattered_day_costs_a_few_percent_and_restores_exactly,
    a_named_parent_gives_bases_to_another_host_or_name,
    bases_come_from_local_copies_or_are_downloaded_in_runs,
    deltas_off_stores_every_changed_chunk_whole,
    forgetting_the_base_day_and_pruning_keeps_the_bases,
    a_month_of_days_restores_every_day_and_chains_stay_short,
    prune_stores_the_newest_day_whole_and_older_days_as_deltas
);
