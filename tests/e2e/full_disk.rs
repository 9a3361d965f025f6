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

#[test]
fn a_full_disk_exits_19_and_keeps_earlier_snapshots() {
    let repo = TestRepo::uninitialised();
    std::fs::create_dir_all(&repo.repo).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&repo.repo)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // CI runs as root and sets this, so there the test always runs.
        assert!(
            std::env::var_os("COFFER_TEST_REQUIRE_MOUNT").is_none(),
            "cannot mount a tmpfs"
        );
        eprintln!("skipped: mounting a 6 MiB tmpfs needs root");
        return;
    }
    let _unmount = Mounted(repo.repo.clone());
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
