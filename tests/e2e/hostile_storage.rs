//! Whoever can write the repository (a shared NFS export, a bucket with a
//! leaked key) must not reach the host through it: no file outside the
//! repository is touched through planted links, planted key files cannot
//! hang or exhaust `open`, stray files are ignored, and what coffer creates
//! is readable by its user alone.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use coffer_e2e::{noise, TestRepo};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// A file outside the repository that a planted link points at.
fn bystander(repo: &TestRepo, name: &str) -> std::path::PathBuf {
    let outside = repo.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let file = outside.join(name);
    std::fs::write(&file, b"host data").unwrap();
    file
}

#[test]
fn a_planted_link_to_a_host_folder_is_refused_and_nothing_outside_is_deleted() {
    let repo = TestRepo::new();
    repo.backup(&noise(1_000_000, 41), &[]);
    // A host file with a pack-like name, behind a link that poses as a
    // pack folder: a prune deleting "old leftovers" would delete it.
    // A prefix no pack took (one of the backup's own packs may start
    // with any two hex digits).
    let prefix = (0..=255u8)
        .map(|b| format!("{b:02x}"))
        .find(|p| !repo.repo.join("data").join(p).exists())
        .unwrap();
    let name = format!("{prefix}{}", "0".repeat(62));
    let victim = bystander(&repo, &name);
    symlink(
        victim.parent().unwrap(),
        repo.repo.join("data").join(&prefix),
    )
    .unwrap();
    let out = repo.run(&["prune", "--delete-delay", "0h"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", out.explain());
    assert!(out.stderr().contains("symbolic link"), "{}", out.explain());
    assert_eq!(std::fs::read(&victim).unwrap(), b"host data");
}

#[test]
fn planted_files_in_object_folders_are_never_read_or_deleted_as_objects() {
    let repo = TestRepo::new();
    let data = noise(1_000_000, 42);
    let snap = repo.backup(&data, &[]);
    // A link with a lock's name to a host file, and stray files (one with a
    // name that is not ASCII) in every folder.
    let victim = bystander(&repo, "important");
    // Old, so a prune takes the "lock" for a dead prune's and deletes it.
    coffer_e2e::age_file(&victim, "2 hours ago");
    std::fs::create_dir_all(repo.repo.join("locks")).unwrap();
    symlink(&victim, repo.repo.join(format!("locks/{}", "1".repeat(64)))).unwrap();
    for folder in ["index", "snapshots", "keys", "locks", "data"] {
        std::fs::write(repo.repo.join(folder).join("README"), b"notes").unwrap();
        std::fs::write(repo.repo.join(folder).join("données"), b"x").unwrap();
    }
    repo.run_ok(&["snapshots"], b"");
    repo.run_ok(&["prune", "--delete-delay", "0h"], b"");
    let out = repo.run_ok(&["check", "--read-data"], b"");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("note: index/: 2 files that are not coffer objects are ignored"),
        "{}",
        out.explain()
    );
    assert!(repo.restore(snap["snapshot_id"].as_str().unwrap()) == data);
    assert_eq!(std::fs::read(&victim).unwrap(), b"host data");
    for folder in ["index", "snapshots", "keys", "locks", "data"] {
        assert!(repo.repo.join(folder).join("README").exists(), "{folder}");
    }
}

/// Rewrites a key file's Argon2 passes (and renames it by its new hash, as
/// a planter who knows the format would).
fn plant_key_with_passes(repo: &TestRepo, passes: u32) -> String {
    let (key, _) = repo.objects("keys").remove(0);
    let mut bytes = repo.read_object(&key);
    let string_at = |at: usize, b: &[u8]| {
        at + 8 + u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize
    };
    // "CFKY" version | created i64 | host String | user String | memory u32 | passes u32
    let after_user = string_at(string_at(5 + 8, &bytes), &bytes);
    bytes[after_user + 4..after_user + 8].copy_from_slice(&passes.to_le_bytes());
    let name = blake3::hash(&bytes).to_hex().to_string();
    repo.write_object(&format!("keys/{name}"), &bytes);
    name
}

#[test]
fn planted_key_files_cannot_hang_or_exhaust_open() {
    let repo = TestRepo::new();
    // Four billion passes: no check would finish before the heat death.
    plant_key_with_passes(&repo, u32::MAX);
    // A key file under another file's name, and an oversized one.
    let (key, _) = repo.objects("keys").remove(0);
    let bytes = repo.read_object(&key);
    repo.write_object(&format!("keys/{}", "e".repeat(64)), &bytes);
    repo.write_object(&format!("keys/{}", "f".repeat(64)), &vec![7u8; 1 << 20]);
    repo.run_ok(&["snapshots"], b"");
    let wrong = repo.dir.path().join("wrong");
    std::fs::write(&wrong, "not it\n").unwrap();
    let out = repo.run(
        &["snapshots", "--password-file", wrong.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(12), "{}", out.explain());
}

#[test]
fn what_coffer_creates_is_its_users_alone() {
    let repo = TestRepo::new();
    let data = noise(500_000, 43);
    repo.backup(&data, &[]);
    for folder in ["", "data", "index", "snapshots", "keys", "locks"] {
        let path = repo.repo.join(folder);
        if path.exists() {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
        }
    }
    for folder in ["keys", "index", "snapshots"] {
        for (key, _) in repo.objects(folder) {
            assert_eq!(mode(&repo.repo.join(&key)), 0o600, "{key}");
        }
    }
    assert_eq!(mode(&repo.repo.join("config")), 0o600);
    // A restored dump is 0600, and a link planted where the partial file
    // goes is replaced, not written through.
    let target = repo.dir.path().join("out.sql");
    let victim = bystander(&repo, "victim");
    symlink(&victim, repo.dir.path().join("out.sql.coffer-partial")).unwrap();
    repo.run_ok(
        &["restore", "latest", "--output", target.to_str().unwrap()],
        b"",
    );
    assert_eq!(mode(&target), 0o600);
    assert!(std::fs::read(&target).unwrap() == data);
    assert_eq!(std::fs::read(&victim).unwrap(), b"host data");
}
