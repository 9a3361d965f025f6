//! Requests cost money on object storage: a daily backup's request count
//! must not grow with the repository's history.

use coffer_e2e::{dump_like, noise, Change, Store, TestRepo};

fn requests(summary: &serde_json::Value, kind: &str) -> u64 {
    summary["requests"][kind].as_u64().unwrap()
}

fn a_next_day_backup_after_100_snapshots_makes_few_requests(store: Store) {
    let base = dump_like(2_000_000, Change::None);
    let repo = TestRepo::new_on(store);
    let mut worst_reads = 0;
    for day in 0..100u64 {
        // The same dump plus a little new data each day.
        let mut stream = base.clone();
        stream.extend_from_slice(&noise(20_000, day + 1));
        // Deltas off: this is about index files (deltas' reads are
        // counted in deltas.rs).
        let s = repo.backup(&stream, &["--delta", "off"]);
        worst_reads = worst_reads.max(requests(&s, "get"));
    }
    // Index files are consolidated: a backup never reads more than a
    // few, however many backups came before.
    assert!(worst_reads <= 5, "a backup made {worst_reads} GETs");
    assert_eq!(repo.objects("snapshots").len(), 100);

    // A fresh pod: no local cache, deltas on.
    let mut stream = base.clone();
    stream.extend_from_slice(&noise(20_000, 1000));
    let s = repo.backup(&stream, &["--no-cache"]);
    let packs = s["packs_written"].as_u64().unwrap();
    let total: u64 = ["put", "get", "head", "list", "delete"]
        .iter()
        .map(|k| requests(&s, k))
        .sum();
    // As before deltas, plus listing snapshots and reading the newest to
    // find the previous version of the stream (which has no sketch): it and
    // up to 4 more stored in the same 2 seconds (stores keep seconds, and
    // these backups were seconds apart).
    assert_eq!(s["delta_chunks"], 0, "{s}");
    assert!(
        total <= 8 + 6 + packs,
        "{total} requests for {packs} new packs on {store:?}: {}",
        s["requests"]
    );
    assert!(requests(&s, "list") <= 3, "{}", s["requests"]);
    // Config, key file, index files and the newest snapshot only: no
    // pack is downloaded.
    let metadata: u64 = ["index", "keys"]
        .iter()
        .flat_map(|f| repo.objects(f))
        .map(|(_, n)| n)
        .sum();
    assert!(
        requests(&s, "bytes_down") < metadata + 10_000,
        "{} vs {metadata}",
        s["requests"]
    );
    assert!(repo.restore("latest") == stream);
}

/// The number before `word` in the `-v` requests line.
/// The ranged reads of data packs `-vv restore` reports.
fn ranged_reads(stderr: &str) -> u64 {
    stderr
        .split(" ranged reads")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no read count: {stderr}"))
}

fn count_in_verbose(stderr: &str, word: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("storage requests:"))
        .expect("a -v requests line");
    let before = &line[..line.find(word).expect("kind in line")];
    before
        .trim_end()
        .rsplit([' ', ','])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn a_restore_makes_one_get_per_pack_it_touches(store: Store) {
    let data = dump_like(40_000_000, Change::None);
    let repo = TestRepo::uninitialised_on(store);
    assert!(repo
        .run(&["init", "--pack-size", "2"], b"")
        .status
        .success());
    repo.backup(&data, &[]);
    let packs = repo.objects("data").len() as u64;
    assert!(packs >= 4, "{packs} packs");
    let out = repo.run(&["-v", "restore", "latest"], b"");
    assert!(out.stdout == data);
    let err = coffer_e2e::stderr(&out);
    // Besides the packs: config, key file, index file, snapshot.
    let gets = count_in_verbose(&err, "GET");
    assert!(
        gets <= packs + 4,
        "{gets} GETs for {packs} packs on {store:?}: {err}"
    );
    assert_eq!(count_in_verbose(&err, "PUT"), 0);
}

fn the_metadata_cache_saves_downloads_and_survives_damage(store: Store) {
    let repo = TestRepo::new_on(store);
    for day in 0..5u64 {
        repo.backup(&noise(50_000, day), &[]);
    }
    let gets = |args: &[&str]| {
        let out = repo.run(args, b"");
        out.assert_ok();
        count_in_verbose(&coffer_e2e::stderr(&out), "GET")
    };
    // config + key file + 5 snapshots without the cache; config + key with it.
    assert_eq!(gets(&["-v", "--no-cache", "snapshots"]), 7);
    gets(&["-v", "snapshots"]);
    assert_eq!(gets(&["-v", "snapshots"]), 2);
    // A damaged cached copy is fetched again, not trusted.
    let cached = repo.dir.path().join("cache");
    let snap = std::fs::read_dir(&cached)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("snapshots");
    let one = std::fs::read_dir(&snap)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&one, b"garbage").unwrap();
    assert_eq!(gets(&["-v", "snapshots"]), 3);
    assert_eq!(gets(&["-v", "snapshots"]), 2);
}

/// Days of changes leave the newest dump's chunks spread over many packs,
/// the stream returning to each again and again. A restore plans its reads
/// over a window of the stream (4 MiB of stored bytes, more than this
/// whole dump) and reads each pack range the window needs once, not once
/// per return (it made 145 GETs for 11 packs on such a repository).
fn a_restore_of_chunks_spread_over_many_packs_reads_each_pack_once(store: Store) {
    let repo = TestRepo::new_on(store);
    // About 2 MB stored: one window. Each day's pack stays under 1 MiB,
    // so no pack holds a stretch of unneeded blobs longer than a read may
    // span (those are rightly read apart).
    let mut stream = dump_like(6_000_000, Change::None);
    repo.backup(&stream, &["--delta", "off"]);
    for day in 2..=6u64 {
        for k in 0..5 {
            let at = (k * 20 + day as usize) * 55_000;
            stream.splice(at..at + 30_000, noise(30_000, day * 100 + k as u64));
        }
        repo.backup(&stream, &["--delta", "off"]);
    }
    let out = repo.run(&["-vv", "restore", "latest"], b"");
    assert!(out.stdout == stream);
    let err = coffer_e2e::stderr(&out);
    // Six data packs, each read once (the stream returns to them about
    // 25 times).
    let data_packs = 6;
    let reads = ranged_reads(&err);
    assert!(reads <= data_packs, "{reads} reads: {err}");
    // Besides them: config, key file, snapshot, tree packs, and each index
    // file at most once (which are read depends on how the backups' index
    // writes fell within the store's one-second times: a loaded machine
    // once made one more).
    let packs = repo.objects("data").len() as u64;
    let index_files = repo.objects("index").len() as u64;
    let gets = count_in_verbose(&err, "GET");
    assert!(
        gets <= packs + 3 + index_files,
        "{gets} GETs for {packs} packs and {index_files} index files on {store:?}: {err}"
    );
}

/// A fresh pod restores an old day of a delta repository from object
/// storage: its chunks are deltas of deltas, down to the last whole
/// version, each day's in a pack of its own. The bases are fetched a pack
/// range at a time before the chunks are decoded, not a few at a time as
/// decoding asks for them (the previous binary made 34-39 GETs here).
fn an_old_delta_day_restores_with_one_read_per_pack(store: Store) {
    let repo = TestRepo::new_on(store);
    let mut days = Vec::new();
    for day in 0..5u64 {
        let dump = dump_like(3_000_000, Change::Day(day));
        let s = repo.backup(&dump, &[]);
        if day > 0 {
            assert!(s["delta_chunks"].as_u64().unwrap() > 0, "{s}");
        }
        days.push((coffer_e2e::snapshot_id(&s), dump));
    }
    let (id, dump) = &days[4];
    let fresh = tempfile::tempdir().unwrap();
    let mut cmd = repo.command(&["-vv", "restore", id]);
    cmd.env("COFFER_CACHE_DIR", fresh.path());
    let out = coffer_e2e::run_with_input(cmd, b"");
    assert!(out.stdout == *dump, "{}", out.explain());
    let err = coffer_e2e::stderr(&out);
    // One read of each day's data pack (days 4 back to 0)...
    let reads = ranged_reads(&err);
    assert!(reads <= 5, "{reads} reads: {err}");
    // ... and, besides them, config, key file, index files, snapshot and
    // at most a tree pack a day.
    let metadata = 2 + repo.objects("index").len() as u64 + 1 + 5;
    let gets = count_in_verbose(&err, "GET");
    assert!(gets <= metadata + 5, "{gets} GETs on {store:?}: {err}");
}

#[test]
fn an_old_delta_day_restores_with_one_read_per_pack_from_s3() {
    if coffer_e2e::store_available(Store::S3) {
        an_old_delta_day_restores_with_one_read_per_pack(Store::S3)
    }
}

#[test]
fn an_old_delta_day_restores_with_one_read_per_pack_from_azure() {
    if coffer_e2e::store_available(Store::Azure) {
        an_old_delta_day_restores_with_one_read_per_pack(Store::Azure)
    }
}

on_every_store!(
    a_next_day_backup_after_100_snapshots_makes_few_requests,
    a_restore_makes_one_get_per_pack_it_touches,
    a_restore_of_chunks_spread_over_many_packs_reads_each_pack_once,
    the_metadata_cache_saves_downloads_and_survives_damage
);

/// `-v` may be repeated, as restic's: `-vv` also says what a restore read.
#[test]
fn verbose_may_be_repeated_and_then_says_more() {
    let repo = TestRepo::new();
    repo.backup(b"a line\n", &[]);
    let one = repo.run_ok(&["-v", "restore", "latest"], b"").stderr();
    assert!(one.contains("storage requests:"), "{one}");
    assert!(!one.contains("ranged reads"), "{one}");
    let two = repo.run_ok(&["-vv", "restore", "latest"], b"").stderr();
    assert!(
        two.contains("storage requests:") && two.contains("1 ranged reads"),
        "{two}"
    );
}
