//! Kubernetes stops a pod with SIGTERM (then SIGKILL); an operator presses
//! Ctrl-C. Each command stops at a safe point: one line, exit 143 or 130,
//! nothing committed after the signal, no partial file, no lock left, the
//! producer stopped; and the next run works.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use coffer_e2e::{noise, send_signal, TestRepo};

/// Waits until the repository holds a data pack (the backup is uploading).
fn wait_for_a_pack(repo: &TestRepo) {
    let started = Instant::now();
    while repo.objects("data").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no pack uploaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn sigterm_stops_a_backup_and_its_producer_and_commits_nothing() {
    let repo = TestRepo::new();
    let pidfile = repo.dir.path().join("producer.pid");
    let script = format!("echo $$ > {}; exec cat /dev/urandom", pidfile.display());
    let child = repo
        .command(&["backup", "--stdin-from-command", "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_a_pack(&repo);
    send_signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert!(repo.objects("snapshots").is_empty());
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(!alive(&pid), "the producer {pid} still runs");

    // The next backup works; prune reclaims what the stopped one uploaded.
    repo.backup(b"the next night\n", &[]);
    let r = repo
        .run_ok(&["prune", "--json", "--delete-delay", "0h"], b"")
        .json();
    assert!(r["unindexed_deleted"].as_u64().unwrap() >= 1, "{r}");
    let check = repo.run_ok(&["check"], b"");
    assert!(
        !String::from_utf8_lossy(&check.stdout).contains("in no index"),
        "{}",
        check.explain()
    );
}

#[test]
fn ctrl_c_stops_a_backup_from_stdin() {
    let repo = TestRepo::new();
    let mut child = repo
        .command(&["backup", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Keep feeding until coffer stops reading.
    let feeder = std::thread::spawn(move || {
        let mut seed = 44;
        while stdin.write_all(&noise(1 << 20, seed)).is_ok() {
            seed += 1;
        }
    });
    wait_for_a_pack(&repo);
    send_signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(repo.objects("snapshots").is_empty());
    feeder.join().unwrap();
    repo.backup(b"again\n", &[]);
}

#[test]
fn sigterm_during_a_restore_to_a_file_leaves_no_file() {
    let repo = TestRepo::new();
    repo.backup(&noise(3_000_000, 45), &[]);
    let target = repo.dir.path().join("restored.sql");
    let mut restoring = repo.spawn_paused(
        &["restore", "latest", "--output", target.to_str().unwrap()],
        "restore-fetching",
        Vec::new(),
    );
    restoring.wait_reached();
    let out = restoring.signal_and_wait("TERM");
    assert_eq!(out.status.code(), Some(143), "{}", out.explain());
    assert_eq!(out.stderr().lines().count(), 1, "{}", out.explain());
    assert!(!target.exists());
    assert!(!repo.dir.path().join("restored.sql.coffer-partial").exists());
}

#[test]
fn sigterm_during_a_prune_releases_its_lock() {
    let repo = TestRepo::new();
    let first = repo.backup(&noise(1_000_000, 46), &[]);
    repo.backup(&noise(1_000_000, 47), &[]);
    repo.run_ok(&["forget", first["snapshot_id"].as_str().unwrap()], b"");
    let mut pruning = repo.spawn_paused(&["prune"], "prune-before-index", Vec::new());
    pruning.wait_reached();
    assert_eq!(repo.objects("locks").len(), 1);
    let out = pruning.signal_and_wait("TERM");
    assert_eq!(out.status.code(), Some(143), "{}", out.explain());
    assert!(repo.objects("locks").is_empty(), "the lock was left");
    // Nothing changed; the next prune does the work.
    let r = repo.run_ok(&["prune", "--json"], b"").json();
    assert!(r["packs_marked"].as_u64().unwrap() >= 1, "{r}");
    repo.assert_check_passes(false);
}
