//! Streams of every awkward size come back byte-identical, on every store.

use coffer_e2e::{dump_like, noise, Change, Store, TestRepo};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn empty_stream_round_trips_when_allowed(store: Store) {
    let repo = TestRepo::new_on(store);
    let s = repo.backup(b"", &["--allow-empty", "--stdin-filename", "empty.sql"]);
    assert_eq!(s["bytes_read"], 0);
    assert_eq!(repo.restore("latest"), b"");
}

fn tiny_and_boundary_sized_streams_round_trip(store: Store) {
    // Around the chunker's min (64 KiB), target (128 KiB) and max (1 MiB)
    // sizes and the reader's 2 MiB + 1 MiB block.
    let sizes = [
        1,
        100,
        64 * KIB - 1,
        64 * KIB,
        64 * KIB + 1,
        128 * KIB,
        MIB - 1,
        MIB,
        MIB + 1,
        3 * MIB - 1,
        3 * MIB,
        3 * MIB + 1,
    ];
    let repo = TestRepo::new_on(store);
    for (i, size) in sizes.into_iter().enumerate() {
        // Alternate incompressible and text-like content.
        let data = if i % 2 == 0 {
            noise(size, size as u64)
        } else {
            dump_like(size, Change::None)[..size].to_vec()
        };
        let s = repo.backup(&data, &[]);
        let id = s["snapshot_id"].as_str().unwrap();
        assert_eq!(s["bytes_read"], size as u64);
        assert!(
            repo.restore(&id[..12]) == data,
            "size {size} did not round-trip on {store:?}"
        );
    }
}

fn a_200_mb_dump_round_trips_to_stdout_and_to_a_file(store: Store) {
    let data = dump_like(200 * 1000 * 1000, Change::None);
    let repo = TestRepo::new_on(store);
    let s = repo.backup(&data, &["--stdin-filename", "big.sql", "--tag", "nightly"]);
    let stored = s["stored_size"].as_u64().unwrap();
    assert!(
        stored < data.len() as u64 / 2,
        "dump should compress: stored {stored}"
    );
    assert!(
        repo.restore("latest") == data,
        "stdout restore differs on {store:?}"
    );
    if store == Store::Local {
        let target = repo.dir.path().join("restored.sql");
        let out = repo.run(
            &["restore", "latest", "--output", target.to_str().unwrap()],
            b"",
        );
        out.assert_ok();
        assert!(
            std::fs::read(&target).unwrap() == data,
            "file restore differs"
        );
        assert!(!repo.dir.path().join("restored.sql.coffer-partial").exists());
    }
}

fn snapshots_lists_what_was_backed_up(store: Store) {
    let data = dump_like(3 * MIB, Change::None);
    let repo = TestRepo::new_on(store);
    repo.backup(
        &data,
        &[
            "--stdin-filename",
            "mydb.sql",
            "--tag",
            "nightly,pg",
            "--host",
            "db-1",
        ],
    );
    let table = repo.run(&["snapshots"], b"");
    let text = String::from_utf8(table.output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("Stored"),
        "{text}"
    );
    assert!(
        lines[2].contains("db-1")
            && lines[2].contains("mydb.sql")
            && lines[2].contains("nightly,pg")
    );
    assert!(lines[2].contains("3.0 MiB"), "{text}");
    assert_eq!(lines.last(), Some(&"1 snapshots"));

    let json = repo.run(&["snapshots", "--json"], b"");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let snap = &v[0];
    assert_eq!(snap["host"], "db-1");
    assert_eq!(snap["tags"], serde_json::json!(["nightly", "pg"]));
    assert_eq!(snap["streams"][0]["name"], "mydb.sql");
    assert_eq!(snap["size"], data.len() as u64);
    assert!(snap["stored_size"].as_u64().unwrap() < data.len() as u64);
    assert_eq!(snap["id"].as_str().unwrap().len(), 64);
}

on_every_store!(
    tiny_and_boundary_sized_streams_round_trip,
    a_200_mb_dump_round_trips_to_stdout_and_to_a_file,
    snapshots_lists_what_was_backed_up,
    empty_stream_round_trips_when_allowed
);

/// An empty stream's tree node and a chunk of nine zero bytes have the same
/// content, so the same keyed MAC; as blobs of different kinds they must
/// both be stored and restore, in either order.
#[test]
fn a_tree_node_and_a_data_chunk_with_the_same_bytes_both_restore() {
    for first_empty in [true, false] {
        let repo = TestRepo::new();
        let zeros = [0u8; 9];
        let mut ids = Vec::new();
        for empty in [first_empty, !first_empty] {
            let (input, extra): (&[u8], &[&str]) = if empty {
                (b"", &["--allow-empty"])
            } else {
                (&zeros, &[])
            };
            let s = repo.backup(input, extra);
            ids.push((
                s["snapshot_id"].as_str().unwrap().to_string(),
                input.to_vec(),
            ));
        }
        for (id, want) in ids {
            assert_eq!(repo.restore(&id), want, "empty stream first: {first_empty}");
        }
        repo.assert_check_passes(true);
    }
}
