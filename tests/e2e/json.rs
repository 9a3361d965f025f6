//! Every `--json` output has the shape `docs/json.md` documents: this test
//! reads the tables of that file and checks each listed key in the real
//! output of each command, and that the output is one line, as restic
//! prints it. A key documented but not printed, or a command whose output
//! spans lines, fails here.

use std::collections::BTreeMap;

use coffer_e2e::{dump_like, snapshot_id, Change, TestRepo};
use serde_json::Value;

/// The documented key paths, by section heading.
fn documented() -> BTreeMap<String, Vec<String>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/json.md"))
        .expect("docs/json.md");
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            current = h.trim().to_string();
        } else if let Some(rest) = line.strip_prefix("| `") {
            let key = rest.split('`').next().unwrap().to_string();
            sections.entry(current.clone()).or_default().push(key);
        }
    }
    sections
}

/// Splits `streams[].name` into `streams`, `[]`, `name`.
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let key = part.trim_end_matches("[]");
        if !key.is_empty() {
            out.push(key);
        }
        out.extend(std::iter::repeat_n("[]", (part.len() - key.len()) / 2));
    }
    out
}

/// Whether `v` has the key path (every element of an array stepped into).
fn has(v: &Value, segs: &[&str]) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    if *first == "[]" {
        let items = v.as_array().ok_or_else(|| format!("not an array: {v}"))?;
        if items.is_empty() {
            return Err("an empty array: nothing to check".into());
        }
        return items.iter().try_for_each(|item| has(item, rest));
    }
    let inner = v
        .as_object()
        .and_then(|o| o.get(*first))
        .ok_or_else(|| format!("no key {first:?} in {v}"))?;
    if inner.is_null() && !rest.is_empty() {
        return Err(format!("{first:?} is null"));
    }
    has(inner, rest)
}

fn check(section: &str, v: &Value, docs: &BTreeMap<String, Vec<String>>) {
    let keys = docs
        .get(section)
        .unwrap_or_else(|| panic!("no section {section:?} in docs/json.md"));
    for key in keys {
        if let Err(e) = has(v, &segments(key)) {
            panic!("{section}: `{key}` as documented: {e}");
        }
    }
}

/// Runs a command and parses its stdout, which must be one line.
fn one_line(repo: &TestRepo, args: &[&str], input: &[u8]) -> Value {
    let out = repo.run_ok(args, input);
    let text = String::from_utf8(out.output.stdout.clone()).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "{args:?} printed {text:?}");
    assert!(text.ends_with('\n'));
    out.json()
}

#[test]
fn every_json_output_has_the_documented_keys_on_one_line() {
    let docs = documented();
    let snapshot = "A snapshot";
    let repo = TestRepo::new();
    let day0 = dump_like(2_000_000, Change::None);
    let day1 = dump_like(2_000_000, Change::Scattered);
    let tags = ["--tag", "nightly", "--stdin-filename", "app.sql"];
    let first = one_line(
        &repo,
        &[&["backup", "--stdin", "--json"][..], &tags].concat(),
        &day0,
    );
    check("`backup --json`", &first, &docs);
    let second = one_line(
        &repo,
        &[&["backup", "--stdin", "--json"][..], &tags].concat(),
        &day1,
    );
    let (a, b) = (snapshot_id(&first), snapshot_id(&second));

    let list = one_line(&repo, &["snapshots", "--json"], b"");
    check("`snapshots --json`", &list, &docs);
    for s in list.as_array().unwrap() {
        check(snapshot, s, &docs);
    }
    let status = one_line(&repo, &["status", "--json"], b"");
    check("`status --json`", &status, &docs);
    check(snapshot, &status[0]["newest"], &docs);
    check(
        "`stats --json`",
        &one_line(&repo, &["stats", "--json"], b""),
        &docs,
    );
    check(
        "`ls SNAPSHOT --json`",
        &one_line(&repo, &["ls", &b, "--json"], b""),
        &docs,
    );
    check(
        "`diff A B --json`",
        &one_line(&repo, &["diff", &a, &b, "--json"], b""),
        &docs,
    );

    let target = TestRepo::new();
    let args = crate::copy::copy_args(&target);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let copy = one_line(&repo, &args, b"");
    check("`copy --json`", &copy, &docs);

    let forget = one_line(&repo, &["forget", "--keep-last", "1", "--json"], b"");
    check("`forget --json`", &forget, &docs);
    for kept in forget[0]["keep"].as_array().unwrap() {
        check(snapshot, kept, &docs);
    }
    check(
        "`prune --json`",
        &one_line(&repo, &["prune", "--json"], b""),
        &docs,
    );
}

#[test]
fn key_paths_are_read_as_documented() {
    assert_eq!(segments("streams[].name"), ["streams", "[]", "name"]);
    assert_eq!(
        segments("[].reasons[].snapshot"),
        ["[]", "reasons", "[]", "snapshot"]
    );
    assert_eq!(segments("requests.get"), ["requests", "get"]);
    let v: Value = serde_json::json!([{"a": [{"b": 1}], "n": null}]);
    assert!(has(&v, &segments("[].a[].b")).is_ok());
    assert!(has(&v, &segments("[].n")).is_ok());
    assert!(has(&v, &segments("[].n.x")).is_err());
    assert!(has(&v, &segments("[].c")).is_err());
    assert!(has(&serde_json::json!([]), &segments("[].a")).is_err());
}
