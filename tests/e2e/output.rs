//! What `backup` prints: a live progress line only on a terminal, one summary
//! line otherwise, nothing but errors with `-q`.

use std::process::Command;

use coffer_e2e::{coffer_bin, stderr, TestRepo};

#[test]
fn a_log_gets_one_summary_line_and_quiet_gets_nothing() {
    let repo = TestRepo::new();
    let data = coffer_e2e::noise(3_000_000, 7);
    let out = repo.run(&["backup", "--stdin", "--stdin-filename", "db.sql"], &data);
    out.assert_ok();
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    for part in [
        "saved: 2.9 MiB read in ",
        "2.9 MiB new, ",
        " added to the repository (",
        " uploaded); stored size ",
        " after compression",
    ] {
        assert!(err.contains(part), "{part:?} not in {err:?}");
    }

    let out = repo.run(&["backup", "--stdin", "-q"], &data);
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");
    let file = repo.dir.path().join("restored.sql");
    let out = repo.run(
        &[
            "restore",
            "latest",
            "-q",
            "--output",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");
    assert_eq!(std::fs::read(&file).unwrap(), data);

    // -v adds the stream's line and the requests made.
    let out = repo.run(&["backup", "--stdin", "-v"], &data);
    let err = stderr(&out);
    assert!(err.contains("  stream stdin: 2.9 MiB read, "), "{err}");
    assert!(err.contains("storage requests: "), "{err}");
    let out = repo.run(&["backup", "--stdin", "-v", "-q"], &data);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Single-quotes a word for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn a_terminal_gets_a_live_progress_line() {
    let repo = TestRepo::new();
    // A producer that pauses, so the display ticks while bytes are known:
    // more than one read block (3 MiB) comes first, so some are chunked
    // and counted during the pause, however slowly the machine runs.
    let producer = "head -c 7000000 /dev/urandom; sleep 1.5; head -c 1000 /dev/urandom";
    let coffer = [
        coffer_bin().to_string_lossy().into_owned(),
        "backup".into(),
        "--stdin-from-command".into(),
        "--stdin-filename".into(),
        "app.sql".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        producer.into(),
    ]
    .map(|w| quote(&w))
    .join(" ");
    // `script` runs the command on a pseudo-terminal and copies what it drew.
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &coffer, "/dev/null"]);
    for (k, v) in repo.command(&[]).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().expect("run script(1)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    // Bytes count once chunked, so the line shows some, not yet all of them.
    assert!(
        screen.contains("app.sql: ") && screen.contains(" MiB read, "),
        "no progress line with bytes read in {screen:?}"
    );
    assert!(screen.contains("% already stored, "), "{screen:?}");
    assert!(screen.contains("saved: "), "{screen:?}");
}

#[test]
fn restoring_to_a_pipe_or_device_writes_into_it_and_leaves_it_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let repo = TestRepo::new();
    let data = coffer_e2e::noise(3_000_000, 5);
    repo.backup(&data, &[]);
    let fifo = repo.dir.path().join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reading = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read(reading).unwrap());
    let out = repo.run(
        &["restore", "latest", "--output", fifo.to_str().unwrap()],
        b"",
    );
    out.assert_ok();
    assert_eq!(reader.join().unwrap(), data);
    // Still a pipe: not renamed over by a regular file.
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let out = repo.run(&["restore", "latest", "--output", "/dev/null"], b"");
    out.assert_ok();
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}
