//! What a newcomer (often a restic user) meets first: messages that say
//! what is wrong, help that reads clearly, and output that never panics.

use std::process::{Command, Stdio};

use coffer_e2e::TestRepo;

use crate::errors::assert_fails;
use crate::forget::restic_available;

#[test]
fn a_restic_repository_is_named_not_called_corrupt() {
    if !restic_available() {
        eprintln!("restic is not installed: skipped");
        return;
    }
    let repo = TestRepo::uninitialised();
    let made = Command::new("restic")
        .args(["init", "-q", "--repo"])
        .arg(&repo.repo)
        .env("RESTIC_PASSWORD", "x")
        .env("RESTIC_CACHE_DIR", repo.dir.path().join("restic-cache"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert_fails(&repo.run(&["snapshots"], b""), 2, "a restic repository");
}

#[test]
fn a_file_where_the_repository_should_be_is_named() {
    let repo = TestRepo::uninitialised();
    std::fs::write(&repo.repo, b"not a folder").unwrap();
    assert_fails(
        &repo.run(&["init"], b""),
        2,
        "a file, not a repository directory",
    );
    assert_fails(
        &repo.run(&["snapshots"], b""),
        2,
        "a file, not a repository directory",
    );
}

#[test]
fn key_add_without_a_new_password_names_the_right_variable() {
    let repo = TestRepo::new();
    assert_fails(
        &repo.run(&["key", "add"], b""),
        2,
        "COFFER_NEW_PASSWORD_FILE",
    );
}

#[test]
fn help_puts_global_options_apart_and_hides_test_switches() {
    let repo = TestRepo::uninitialised();
    let help = repo.run_ok(&["init", "--help"], b"");
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(text.contains("Global options:"), "{text}");
    assert!(!text.contains("insecure"), "{text}");
}

/// Every command's output into a full disk: exit 17, one line, no panic.
#[test]
fn output_into_a_full_disk_is_exit_17_for_every_command() {
    let repo = TestRepo::new();
    repo.backup(b"a dump\n", &["--stdin-filename", "db.sql"]);
    for args in [
        &["snapshots"][..],
        &["snapshots", "--json"],
        &["status", "--json"],
        &["key", "list"],
        &["check"],
        &["prune", "--json", "--dry-run"],
        &["forget", "--keep-last", "1", "--dry-run", "--json"],
        &["restore", "latest"],
        &["stats"],
        &["stats", "--json"],
        &["ls", "latest"],
        &["diff", "latest", "latest", "--json"],
        &["cat", "config"],
        &["cat", "snapshot", "latest"],
        &["version"],
        &["completion", "bash"],
    ] {
        let full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = repo
            .command(args)
            .stdin(Stdio::null())
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(17), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
    }
}

/// Completion scripts and man pages come from the same definitions as the
/// parser, so they know every command and flag.
#[test]
fn completions_and_man_pages_know_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(coffer_e2e::coffer_bin())
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["copy", "prune", "parent", "cache-limit"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let out = std::process::Command::new(coffer_e2e::coffer_bin())
        .args(["man", &dir.path().to_string_lossy()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", coffer_e2e::stderr(&out));
    let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert!(page("coffer.1").starts_with(".ie") && page("coffer.1").contains(".TH coffer 1"));
    assert!(page("coffer-backup.1").contains("parent"));
    assert!(page("coffer-copy.1").contains("to\\-password\\-file"));
    let out = std::process::Command::new(coffer_e2e::coffer_bin())
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
