//! Repository locations as restic users write them map to the same stores,
//! and a location coffer does not know is refused: it never silently
//! becomes a folder on the local disk (in a pod, one that vanishes with it).

use coffer_e2e::{store_available, Store, TestRepo};

#[test]
fn unknown_location_types_are_refused_and_create_nothing() {
    let repo = TestRepo::uninitialised();
    for location in ["sftp:host:/srv/x", "rest:http://h:8000/", "foo:bar"] {
        let mut cmd = repo.command(&["-r", location, "init"]);
        cmd.current_dir(repo.dir.path());
        let out = coffer_e2e::run_with_input(cmd, b"");
        assert_eq!(out.status.code(), Some(2), "{}", out.explain());
        assert_eq!(out.stderr().lines().count(), 1, "{}", out.explain());
        assert!(
            out.stderr().contains("unsupported repository location"),
            "{}",
            out.explain()
        );
    }
    let created: Vec<_> = std::fs::read_dir(repo.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "password")
        .collect();
    assert!(created.is_empty(), "created {created:?}");
}

#[test]
fn restic_style_local_and_s3_locations_work() {
    let repo = TestRepo::uninitialised();
    let local = format!("local:{}", repo.repo.display());
    repo.run_ok(&["-r", &local, "init"], b"");
    repo.run_ok(&["-r", &local, "backup", "--stdin"], b"restic style\n");
    assert_eq!(
        repo.run_ok(&["-r", &local, "restore", "latest"], b"")
            .output
            .stdout,
        b"restic style\n"
    );
    assert!(repo.repo.join("config").exists());

    if !store_available(Store::S3) {
        return;
    }
    // The endpoint comes from the location itself, not the environment.
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the S3 test server's URL");
    let bucket = std::env::var("COFFER_TEST_S3_BUCKET").unwrap();
    let name = repo
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let s3 = format!(
        "s3:{endpoint}/{bucket}/restic-form/{}",
        name.trim_start_matches('.')
    );
    let run = |args: &[&str], input: &[u8]| {
        let mut full = vec!["-r", s3.as_str()];
        full.extend_from_slice(args);
        let mut cmd = repo.command(&full);
        cmd.env_remove("AWS_ENDPOINT_URL");
        coffer_e2e::run_with_input(cmd, input).ok()
    };
    run(&["init"], b"");
    run(&["backup", "--stdin"], b"on s3\n");
    assert_eq!(run(&["restore", "latest"], b"").output.stdout, b"on s3\n");
}
