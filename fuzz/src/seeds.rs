//! Writes the seed corpora (`fuzz/seeds/<target>/`) from the golden
//! fixtures: each stored object of the format 1 fixture as is (mode 0, its
//! key is the targets' key) and its plaintext (mode 1), and the plaintexts
//! of the format 2 fixture's config, index files and snapshots.

use std::path::Path;

use coffer_core::object::{self, ObjectType};
use coffer_core::{codec, pack};
use coffer_fuzz::{fixture, key};

fn write(target: &str, name: &str, mode: u8, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    let mut seed = vec![mode];
    seed.extend_from_slice(bytes);
    std::fs::write(dir.join(format!("{name}-{mode}")), seed).expect("seed");
}

fn files(folder: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![fixture().join("repo").join(folder)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).expect("folder").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let name = e.file_name().to_string_lossy()[..16].to_string();
                out.push((name, std::fs::read(e.path()).expect("file")));
            }
        }
    }
    out
}

fn main() {
    let key = key();
    let config = std::fs::read(fixture().join("repo/config")).expect("config");
    write("config", "config", 0, &config);
    write("object", "config", 0, &config);
    let plain = object::open(key, ObjectType::Config, &config).expect("config opens");
    write("config", "config", 1, &plain);
    for (name, bytes) in files("keys") {
        write("key_file", &name, 0, &bytes);
    }
    for (folder, target, kind) in [
        ("index", "index_file", ObjectType::Index),
        ("snapshots", "snapshot", ObjectType::Snapshot),
    ] {
        for (name, bytes) in files(folder) {
            write(target, &name, 0, &bytes);
            write("object", &name, 0, &bytes);
            let plain = object::open(key, kind, &bytes).expect("opens");
            write(target, &name, 1, &plain);
        }
    }
    for (name, bytes) in files("data") {
        let (_, entries) = pack::read_header(key, &bytes).expect("pack header");
        write(
            "pack_header",
            &name,
            1,
            &codec::encode(&entries).expect("encodes"),
        );
        // Whole packs are large: only tree packs (small) go in as they are.
        if bytes.len() < 64 * 1024 {
            write("pack_header", &name, 0, &bytes);
            for e in entries {
                let r = e.range();
                let sealed = &bytes[r.start as usize..r.end as usize];
                let subkey = key.subkey(&pack::read_salt(&bytes).expect("salt"));
                let node = pack::open_blob(key, &subkey, &e, sealed).expect("opens");
                write("tree_node", &e.id.short(), 0, &node);
            }
        }
    }
    write(
        "sealed_blob",
        "hello",
        1,
        b"\x00\x01\x0b\x00\x00\x00hello hello",
    );
    format_2_seeds();
}

/// Plaintext seeds from the format 2 fixture (another key: its stored
/// objects would not authenticate under the targets' key).
fn format_2_seeds() {
    let folder = fixture().join("../repo-v2");
    let key = coffer_fuzz::unlock(&folder);
    let read = |path: std::path::PathBuf| std::fs::read(path).expect("fixture file");
    let config = read(folder.join("repo/config"));
    let plain = object::open(&key, ObjectType::Config, &config).expect("config opens");
    write("config", "config-v2", 1, &plain);
    for (sub, target, kind) in [
        ("index", "index_file", ObjectType::IndexV3),
        ("snapshots", "snapshot", ObjectType::SnapshotV2),
    ] {
        for e in std::fs::read_dir(folder.join("repo").join(sub)).expect("folder").flatten() {
            let name = e.file_name().to_string_lossy()[..16].to_string();
            let plain = object::open(&key, kind, &read(e.path())).expect("opens");
            write(target, &format!("{name}-v2"), 1, &plain);
        }
    }
}
