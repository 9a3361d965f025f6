//! The ransomware-resistant setup, enforced by a real server: a credential
//! that may read, create and list but neither overwrite nor delete (an
//! Azure SAS token with permissions `rcl`, on Azurite) is enough for every
//! backup, restore and check; forget and prune are refused by the server, and
//! nothing stored is lost. Needs `.ci/azurite.sh` (CI sets
//! COFFER_TEST_REQUIRE_AZURE).

use std::process::Command;

use coffer_e2e::{noise, run_with_input, stderr, store_available, Store, TestRepo};

use crate::errors::assert_fails;

/// `coffer ARGS` authenticated by the create-only SAS token instead of the
/// emulator's account key.
fn create_only(repo: &TestRepo, args: &[&str]) -> Command {
    let sas = std::env::var("COFFER_TEST_AZURE_CREATE_ONLY_SAS").expect("SAS from .ci/azurite.sh");
    let endpoint = std::env::var("COFFER_TEST_AZURE_ENDPOINT").expect("endpoint");
    let mut c = repo.command(args);
    c.args([
        "-o",
        &format!("endpoint={endpoint}"),
        "-o",
        "allow_http=true",
    ])
    .env_remove("AZURE_STORAGE_USE_EMULATOR")
    .env("AZURE_STORAGE_SAS_KEY", sas);
    c
}

#[test]
fn a_credential_that_cannot_delete_or_overwrite_backs_up_but_cannot_forget() {
    if !store_available(Store::Azure) {
        return;
    }
    let repo = TestRepo::new_on(Store::Azure); // created with full rights
    let (a, b) = (noise(6_000_000, 21), noise(4_000_000, 22));
    let mut ids = Vec::new();
    for data in [&a, &b, &a] {
        let out = run_with_input(create_only(&repo, &["backup", "--stdin", "--json"]), data);
        out.assert_ok();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["requests"]["delete"], 0);
        ids.push(v["snapshot_id"].as_str().unwrap().to_string());
    }
    for (id, data) in ids.iter().zip([&a, &b, &a]) {
        let out = run_with_input(create_only(&repo, &["restore", id]), b"");
        out.assert_ok();
        assert!(&out.stdout == data, "snapshot {id} differs");
    }
    let out = run_with_input(create_only(&repo, &["check", "--read-data"]), b"");
    out.assert_ok();

    // Deleting is the server's to refuse: one line, exit 21, nothing lost.
    let out = run_with_input(
        create_only(&repo, &["forget", "--keep-last", "1", "-q"]),
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(21), "{err}");
    assert!(
        err.lines()
            .last()
            .unwrap_or_default()
            .contains("access denied"),
        "{err}"
    );
    let out = run_with_input(create_only(&repo, &["prune", "--delete-delay", "0h"]), b"");
    assert_fails(&out, 21, "access denied");
    assert_eq!(repo.objects("snapshots").len(), 3);
    let out = repo.run(&["check", "--read-data"], b"");
    out.assert_ok();
    assert_eq!(repo.restore(&ids[1]), b);
}
