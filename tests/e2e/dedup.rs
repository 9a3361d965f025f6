//! Deduplication as a user sees it: repeated and slightly edited dumps add
//! almost nothing, on every store.

use coffer_e2e::{dump_like, Change, Store, TestRepo};

fn a_second_backup_of_the_same_stream_adds_no_packs(store: Store) {
    let data = dump_like(30_000_000, Change::None);
    let repo = TestRepo::new_on(store);
    let first = repo.backup(&data, &[]);
    let packs_before = repo.objects("data");
    assert!(first["new_chunks"].as_u64().unwrap() > 50);

    let second = repo.backup(&data, &[]);
    assert_eq!(second["new_chunks"], 0);
    assert_eq!(second["packs_written"], 0);
    assert_eq!(repo.objects("data"), packs_before, "no new pack objects");
    assert_eq!(repo.objects("snapshots").len(), 2);
    assert!(repo.restore(second["snapshot_id"].as_str().unwrap()) == data);
}

fn a_few_bytes_inserted_in_the_middle_add_only_a_few_chunks(store: Store) {
    let data = dump_like(40_000_000, Change::None);
    let mut edited = data.clone();
    let middle = data.len() / 2;
    edited.splice(middle..middle, b"INSERTED ROW\n".iter().copied());
    let repo = TestRepo::new_on(store);
    let first = repo.backup(&data, &[]);
    let second = repo.backup(&edited, &[]);
    let total = second["chunks"].as_u64().unwrap();
    let new = second["new_chunks"].as_u64().unwrap();
    assert!(total > 100, "{total} chunks");
    assert!(new <= 3, "{new} of {total} chunks are new");
    let added = second["bytes_added"].as_u64().unwrap();
    assert!(
        added < first["bytes_added"].as_u64().unwrap() / 20,
        "added {added} bytes"
    );
    assert!(repo.restore("latest") == edited);
}

fn a_clustered_change_day_adds_a_small_fraction(store: Store) {
    let day1 = dump_like(50_000_000, Change::None);
    let day2 = dump_like(50_000_000, Change::Clustered);
    let repo = TestRepo::new_on(store);
    let a = repo.backup(&day1, &[]);
    let b = repo.backup(&day2, &[]);
    let (full, added) = (
        a["bytes_added"].as_u64().unwrap(),
        b["bytes_added"].as_u64().unwrap(),
    );
    // 2% of the rows changed in one block: well under a tenth of a full copy.
    assert!(added * 10 < full, "day 2 added {added} of {full}");
    assert!(repo.restore("latest") == day2);
}

on_every_store!(
    a_second_backup_of_the_same_stream_adds_no_packs,
    a_few_bytes_inserted_in_the_middle_add_only_a_few_chunks,
    a_clustered_change_day_adds_a_small_fraction
);
