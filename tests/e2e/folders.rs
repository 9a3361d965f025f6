//! Directory dumps: `backup --files DIR` stores every file under a folder as
//! a stream named by its relative path, in one snapshot; `restore --target`
//! writes them back, refusing to overwrite (unless asked) and never writing
//! outside the target, whatever a snapshot's stream names say.

use coffer_e2e::{noise, TestRepo};

fn write(dir: &std::path::Path, files: &[(&str, &[u8])]) {
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

#[test]
fn a_folder_is_backed_up_as_one_snapshot_and_restored_file_for_file() {
    let repo = TestRepo::new();
    let src = repo.dir.path().join("dump");
    let big = noise(1_500_000, 4);
    let files: [(&str, &[u8]); 4] = [
        ("toc.dat", b"table of contents"),
        ("3001.dat", &big),
        ("3002.dat", b""),
        ("schema/extra.sql", b"CREATE TABLE t ();\n"),
    ];
    write(&src, &files);
    let s = repo
        .run_ok(
            &["backup", "--files", &src.to_string_lossy(), "--json"],
            b"",
        )
        .json();
    let names = coffer_e2e::stream_names(&s);
    assert_eq!(
        names,
        ["3001.dat", "3002.dat", "schema/extra.sql", "toc.dat"]
    );

    let out = repo.dir.path().join("out");
    repo.run_ok(
        &["restore", "latest", "--target", &out.to_string_lossy()],
        b"",
    );
    for (name, data) in &files {
        assert!(std::fs::read(out.join(name)).unwrap() == *data, "{name}");
    }
    // Existing files are not overwritten unless asked, and nothing is
    // written before that is known.
    std::fs::write(out.join("toc.dat"), b"mine").unwrap();
    std::fs::remove_file(out.join("3001.dat")).unwrap();
    let refused = repo.run(
        &["restore", "latest", "--target", &out.to_string_lossy()],
        b"",
    );
    assert_eq!(
        refused.output.status.code(),
        Some(2),
        "{}",
        refused.stderr()
    );
    assert!(
        refused.stderr().contains("--overwrite"),
        "{}",
        refused.stderr()
    );
    assert!(!out.join("3001.dat").exists());
    repo.run_ok(
        &[
            "restore",
            "latest",
            "--target",
            &out.to_string_lossy(),
            "--overwrite",
        ],
        b"",
    );
    assert_eq!(
        std::fs::read(out.join("toc.dat")).unwrap(),
        b"table of contents"
    );
    // One stream of the folder.
    let one = repo.dir.path().join("one");
    repo.run_ok(
        &[
            "restore",
            "latest",
            "--target",
            &one.to_string_lossy(),
            "--stream",
            "schema/extra.sql",
        ],
        b"",
    );
    assert!(one.join("schema/extra.sql").exists() && !one.join("toc.dat").exists());
}

#[test]
fn stream_names_never_lead_a_restore_outside_its_target() {
    let repo = TestRepo::new();
    // A name a folder restore must not follow (made here with --stream).
    repo.run_ok(
        &[
            "backup",
            "--stream",
            "../escaped.sql=echo hi",
            "--stream",
            "ok.sql=echo ok",
        ],
        b"",
    );
    let target = repo.dir.path().join("target");
    let out = repo.run(
        &["restore", "latest", "--target", &target.to_string_lossy()],
        b"",
    );
    assert_eq!(out.output.status.code(), Some(2), "{}", out.stderr());
    assert!(out.stderr().contains("../escaped.sql"), "{}", out.stderr());
    assert!(!repo.dir.path().join("escaped.sql").exists());
    assert!(
        !target.join("ok.sql").exists(),
        "nothing is written before every name is checked"
    );
    // A link inside the target is not written through.
    std::fs::create_dir_all(&target).unwrap();
    let elsewhere = repo.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, target.join("sub")).unwrap();
    let src = repo.dir.path().join("src");
    write(&src, &[("sub/file", b"x")]);
    repo.run_ok(&["backup", "--files", &src.to_string_lossy()], b"");
    let out = repo.run(
        &["restore", "latest", "--target", &target.to_string_lossy()],
        b"",
    );
    assert_eq!(out.output.status.code(), Some(2), "{}", out.stderr());
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
    // An empty folder is refused up front.
    let empty = repo.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = repo.run(&["backup", "--files", &empty.to_string_lossy()], b"");
    assert_eq!(out.output.status.code(), Some(2), "{}", out.stderr());
}
