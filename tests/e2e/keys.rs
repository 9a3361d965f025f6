//! Several passwords open one repository; removed keys no longer do; the key
//! in use and the last key cannot be removed.

use coffer_e2e::{run_with_input, stderr, Store, TestRepo};

use crate::errors::assert_fails;

fn passwords_can_be_added_removed_and_changed(store: Store) {
    let repo = TestRepo::new_on(store);
    repo.backup(b"precious\n", &[]);
    let second = repo.dir.path().join("second");
    std::fs::write(&second, "second password\n").unwrap();
    let as_second = |args: &[&str]| {
        let mut cmd = repo.command(args);
        cmd.env("COFFER_PASSWORD_FILE", &second);
        run_with_input(cmd, b"")
    };

    // Add a second password: both open the repository.
    let out = repo.run(
        &[
            "key",
            "add",
            "--new-password-file",
            second.to_str().unwrap(),
        ],
        b"",
    );
    out.assert_ok();
    let out = as_second(&["restore", "latest"]);
    assert_eq!(out.stdout, b"precious\n", "{}", stderr(&out));
    let list = String::from_utf8(repo.run(&["key", "list"], b"").output.stdout).unwrap();
    assert_eq!(list.lines().count(), 3, "{list}");
    let current_line = list.lines().find(|l| l.starts_with('*')).unwrap();
    let first_id = current_line.split_whitespace().nth(1).unwrap().to_string();

    // The key in use cannot be removed; with the second password it can.
    assert_fails(
        &repo.run(&["key", "remove", &first_id], b""),
        2,
        "cannot be removed",
    );
    let out = as_second(&["key", "remove", &first_id]);
    out.assert_ok();
    assert_fails(&repo.run(&["snapshots"], b""), 12, "wrong password");
    // The last key cannot be removed either.
    let list = String::from_utf8(as_second(&["key", "list"]).output.stdout).unwrap();
    let only = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_fails(
        &as_second(&["key", "remove", &only]),
        2,
        "cannot be removed",
    );
    assert_fails(
        &as_second(&["key", "remove", "ffffffff"]),
        14,
        "no key matches",
    );

    // passwd: the new password works, the old one no longer does.
    let third = repo.dir.path().join("third");
    std::fs::write(&third, "third password\n").unwrap();
    let out = as_second(&[
        "key",
        "passwd",
        "--new-password-file",
        third.to_str().unwrap(),
    ]);
    out.assert_ok();
    assert_fails(&as_second(&["snapshots"]), 12, "wrong password");
    let mut cmd = repo.command(&["restore", "latest"]);
    cmd.env("COFFER_PASSWORD_FILE", &third);
    assert_eq!(run_with_input(cmd, b"").stdout, b"precious\n");
}

on_every_store!(passwords_can_be_added_removed_and_changed);

/// A password from a secret manager: `--password-command` runs it and takes
/// the first line it prints; a failing or silent command is a clear error.
#[test]
fn a_password_command_gives_the_password() {
    let repo = TestRepo::new();
    repo.backup(b"precious\n", &[]);
    let file = repo.password_file.to_string_lossy().into_owned();
    let run = |command: &str| {
        let mut cmd = repo.command(&["--password-command", command, "restore", "latest"]);
        cmd.env_remove("COFFER_PASSWORD_FILE");
        run_with_input(cmd, b"")
    };
    let out = run(&format!(
        "echo 'ignored?' >&2; cat '{file}'; echo second line"
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"precious\n");
    assert_fails(&run("exit 3"), 2, "the password command failed");
    assert_fails(&run("true"), 2, "printed no password");
    assert_fails(&run("echo not the password"), 12, "wrong password");
    // One source only.
    let out = run_with_input(
        repo.command(&["--password-command", "true", "snapshots"]),
        b"",
    );
    assert_fails(&out, 2, "cannot be used with");
}

/// In a pod or cron job there is often no USER: a key added there still
/// names its user, as the system knows the uid.
#[test]
fn key_list_names_the_user_without_a_user_variable() {
    let repo = TestRepo::new();
    let new = repo.dir.path().join("new-password");
    std::fs::write(&new, "another password\n").unwrap();
    let mut cmd = repo.command(&["key", "add", "--new-password-file", new.to_str().unwrap()]);
    cmd.env_remove("USER").env_remove("LOGNAME");
    assert!(run_with_input(cmd, b"").status.success());
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let expected = String::from_utf8(id.stdout).unwrap().trim().to_string();
    let expected = if expected.is_empty() {
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        format!("uid {}", String::from_utf8(uid.stdout).unwrap().trim())
    } else {
        expected
    };
    let list = repo.run_ok(&["key", "list"], b"");
    let text = String::from_utf8(list.output.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines()
            .nth(2)
            .unwrap()
            .contains(&format!(" {expected} ")),
        "{text}"
    );
}
