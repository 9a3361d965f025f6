//! A full disk: the backup fails with its own exit code and one line, and
//! everything stored before stays readable.

use std::path::PathBuf;
use std::process::Command;

use coffer_e2e::{dump_like, noise, stderr, Change, TestRepo};

/// Unmounts the small file system when the test ends, before the temporary
/// directory is removed.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a tmpfs of `size` on `dir` (unmounted when dropped). `None` when
/// mounting is not possible here (it needs root) and CI does not require it.
fn small_tmpfs(dir: &std::path::Path, size: &str) -> Option<Mounted> {
    std::fs::create_dir_all(dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // CI runs as root and sets this, so there the test always runs.
        assert!(
            std::env::var_os("COFFER_TEST_REQUIRE_MOUNT").is_none(),
            "cannot mount a tmpfs"
        );
        eprintln!("skipped: mounting a {size} tmpfs needs root");
        return None;
    }
    Some(Mounted(dir.to_path_buf()))
}

#[test]
fn a_full_disk_exits_19_and_keeps_earlier_snapshots() {
    let repo = TestRepo::uninitialised();
    let Some(_unmount) = small_tmpfs(&repo.repo, "6m") else {
        return;
    };
    assert!(repo
        .run(&["init", "--pack-size", "1"], b"")
        .status
        .success());
    let small = dump_like(2_000_000, Change::None);
    let first = repo.backup(&small, &[]);

    let out = repo.run(&["backup", "--stdin"], &noise(20_000_000, 1));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(19), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("storage is full"), "{err}");

    assert_eq!(repo.objects("snapshots").len(), 1);
    assert!(repo.restore(first["snapshot_id"].as_str().unwrap()) == small);
}

/// New packs spool to the cache directory while they fill: when its disk
/// is full the backup stops with exit 19 and one line naming the spool,
/// commits nothing, leaves nothing in the cache's spool folder, and the
/// next backup, with room again, stores everything.
#[test]
fn a_full_cache_disk_exits_19_and_commits_nothing() {
    let repo = TestRepo::new();
    let cache = repo.dir.path().join("cache");
    let Some(unmount) = small_tmpfs(&cache, "3m") else {
        return;
    };
    let small = dump_like(1_000_000, Change::None);
    let first = repo.backup(&small, &[]);

    let big = noise(20_000_000, 3);
    let out = repo.run(&["backup", "--stdin"], &big);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(19), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("spool file"), "{err}");
    assert_eq!(repo.objects("snapshots").len(), 1);
    assert_eq!(repo.restore(first["snapshot_id"].as_str().unwrap()), small);
    repo.assert_spool_empty();

    drop(unmount);
    let second = repo.backup(&big, &[]);
    assert_eq!(repo.restore(second["snapshot_id"].as_str().unwrap()), big);
    repo.assert_check_passes(true);
}

/// `check` builds index tables of its own in the cache directory: when that
/// disk is full it checks from the index in memory instead, finds what it
/// finds with room, and leaves nothing of its own in the cache.
#[test]
fn a_full_cache_disk_does_not_stop_check() {
    let repo = TestRepo::new();
    let cache = repo.dir.path().join("cache");
    let Some(_unmount) = small_tmpfs(&cache, "3m") else {
        return;
    };
    repo.backup(&dump_like(1_000_000, Change::None), &[]);
    repo.backup(&noise(600_000, 4), &[]);
    // Fill the cache's disk to the last byte.
    let filler = cache.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
    }
    let cache_entries = || {
        let mut names: Vec<String> = walk(&cache);
        names.sort();
        names
    };
    let before = cache_entries();

    let out = repo.run(&["check"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", out.explain());
    assert!(
        out.explain().contains("no errors were found"),
        "{}",
        out.explain()
    );
    let (pack, _) = repo.objects("data").into_iter().next().unwrap();
    repo.delete_object(&pack);
    let out = repo.run(&["check"], b"");
    assert_eq!(out.status.code(), Some(16), "{}", out.explain());
    assert!(
        out.explain().contains(&format!("error: {pack}")),
        "{}",
        out.explain()
    );
    assert_eq!(cache_entries(), before, "check left files in the cache");
}

/// Every file and folder under `dir`, relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        out.push(path.strip_prefix(dir).unwrap().display().to_string());
        if path.is_dir() {
            out.extend(
                walk(&path)
                    .into_iter()
                    .map(|p| format!("{}/{p}", e.file_name().to_string_lossy())),
            );
        }
    }
    out
}

/// A restore drill onto a disk that fills up must fail: through a shell
/// redirect of stdout and with `--output`, exit 17 with one line, and
/// `--output` leaves neither the file nor its partial copy.
#[test]
fn a_restore_onto_a_full_disk_exits_17() {
    let repo = TestRepo::new();
    let data = dump_like(12_000_000, Change::None);
    repo.backup(&data, &[]);
    let small = repo.dir.path().join("small");
    let Some(_unmount) = small_tmpfs(&small, "4m") else {
        return;
    };

    let redirected = std::fs::File::create(small.join("stdout.sql")).unwrap();
    let mut cmd = repo.command(&["restore", "latest"]);
    cmd.stdout(redirected);
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(17),
        "stdout onto a full disk: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    std::fs::remove_file(small.join("stdout.sql")).unwrap();

    let target = small.join("out.sql");
    let out = repo.run(
        &["restore", "latest", "--output", target.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(17), "{}", out.explain());
    assert_eq!(out.stderr().lines().count(), 1, "{}", out.explain());
    assert!(
        out.stderr().contains("No space left on device"),
        "{}",
        out.explain()
    );
    let left: Vec<_> = std::fs::read_dir(&small).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
