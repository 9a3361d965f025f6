//! `forget` keeps exactly the snapshots restic keeps for the same history
//! and policy. Generated timelines (hourly bursts, daily runs with jitter,
//! sparse years, across daylight-saving changes in America/New_York) are
//! given to both tools with `backup --time`; the decisions restic 0.14 made
//! are recorded in `tests/fixtures/forget-cases.json` and checked on every
//! run, and when restic is installed (CI installs it) fresh timelines are
//! compared live.

use std::process::Command;

use coffer_e2e::{run_with_input, stderr, TestRepo};
use jiff::civil::DateTime;
use jiff::ToSpan;
use serde_json::{json, Value};

use crate::errors::assert_fails;

const TZ: &str = "America/New_York";
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/forget-cases.json"
);

/// Policies compared, as `forget` arguments (identical for both tools).
const POLICIES: &[&[&str]] = &[
    &["--keep-last", "3"],
    &[
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "6",
    ],
    &["--keep-hourly", "5", "--keep-yearly", "2"],
    &["--keep-within", "10d"],
    &["--keep-within", "1m5d", "--keep-weekly", "3"],
    &[
        "--keep-within-daily",
        "14d",
        "--keep-within-weekly",
        "2m",
        "--keep-within-monthly",
        "1y",
    ],
    &["--keep-within-hourly", "1d12h", "--keep-daily", "3"],
    &["--keep-tag", "a", "--keep-last", "2"],
    &[
        "--keep-tag",
        "a,b",
        "--keep-tag",
        "c",
        "--keep-monthly",
        "2",
    ],
    &["--keep-daily", "30", "--keep-within", "2y"],
];

/// One snapshot of a timeline: local time (in [`TZ`]) and tags.
#[derive(Clone)]
struct Entry {
    time: String,
    tags: Vec<String>,
}

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A history of 25-40 snapshots in one of four styles. Local times avoid
/// 00:00-03:59 so no time falls in a daylight-saving gap or overlap.
fn timeline(seed: u64) -> Vec<Entry> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let style = seed % 4;
    let n = 25 + rng.below(16);
    let mut t: DateTime = "2022-12-20T09:00:00".parse().unwrap();
    t = t.checked_add((rng.below(300) as i64).days()).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let minutes: i64 = match style {
            0 => 20 + rng.below(300) as i64,
            1 => 24 * 60 - 180 + rng.below(360) as i64,
            2 => 24 * 60 * (1 + rng.below(25) as i64) + rng.below(600) as i64,
            _ => {
                [45, 24 * 60, 3 * 24 * 60, 17 * 24 * 60][rng.below(4) as usize]
                    + rng.below(90) as i64
            }
        };
        t = t.checked_add(minutes.minutes()).unwrap();
        if t.hour() < 4 {
            t = t.checked_add(4.hours()).unwrap();
        }
        let mut tags = vec![format!("s{i}")];
        for tag in ["a", "b", "c"] {
            if rng.below(4) == 0 {
                tags.push(tag.to_string());
            }
        }
        out.push(Entry {
            time: t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            tags,
        });
    }
    out
}

/// The `s<i>` tags of the snapshots kept, sorted by i.
fn kept_indices(forget_json: &Value) -> Vec<u64> {
    let mut kept: Vec<u64> = forget_json
        .as_array()
        .expect("forget --json is an array of groups")
        .iter()
        .flat_map(|g| g["keep"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| {
            s["tags"]
                .as_array()?
                .iter()
                .filter_map(|t| t.as_str()?.strip_prefix('s')?.parse().ok())
                .next()
        })
        .collect();
    kept.sort();
    kept
}

/// A coffer repository holding the timeline.
fn coffer_history(entries: &[Entry]) -> TestRepo {
    let repo = TestRepo::new();
    for e in entries {
        let mut cmd = repo.command(&[
            "backup",
            "--stdin",
            "--stdin-filename",
            "app.sql",
            "--host",
            "db1",
            "--time",
            &e.time,
            "--tag",
            &e.tags.join(","),
        ]);
        cmd.env("TZ", TZ);
        let out = run_with_input(cmd, b"same dump\n");
        out.assert_ok();
    }
    repo
}

fn coffer_kept(repo: &TestRepo, policy: &[&str]) -> Vec<u64> {
    let mut args = vec!["forget", "--dry-run", "--json"];
    args.extend_from_slice(policy);
    let mut cmd = repo.command(&args);
    cmd.env("TZ", TZ);
    let out = run_with_input(cmd, b"");
    assert!(out.status.success(), "{policy:?}: {}", stderr(&out));
    kept_indices(&serde_json::from_slice(&out.stdout).expect("forget --json"))
}

pub fn restic_available() -> bool {
    let found = Command::new("restic").arg("version").output().is_ok();
    assert!(
        found || std::env::var_os("COFFER_TEST_REQUIRE_RESTIC").is_none(),
        "COFFER_TEST_REQUIRE_RESTIC is set but restic is not installed"
    );
    found
}

/// restic's decisions for every policy on a timeline.
fn restic_kept(entries: &[Entry]) -> Vec<Vec<u64>> {
    let dir = tempfile::tempdir().unwrap();
    let restic = |args: &[&str], input: &[u8]| {
        let mut cmd = Command::new("restic");
        cmd.args(args)
            .env("RESTIC_REPOSITORY", dir.path().join("repo"))
            .env("RESTIC_PASSWORD", "x")
            .env("RESTIC_CACHE_DIR", dir.path().join("cache"))
            .env("TZ", TZ);
        let out = run_with_input(cmd, input);
        assert!(out.status.success(), "restic {args:?}: {}", stderr(&out));
        out.output.stdout
    };
    restic(&["init", "-q"], b"");
    for e in entries {
        let tags = e.tags.join(",");
        restic(
            &[
                "backup",
                "-q",
                "--stdin",
                "--stdin-filename",
                "app.sql",
                "--host",
                "db1",
                "--time",
                &e.time,
                "--tag",
                &tags,
            ],
            b"same dump\n",
        );
    }
    POLICIES
        .iter()
        .map(|policy| {
            let mut args = vec!["forget", "--dry-run", "--json"];
            args.extend_from_slice(policy);
            kept_indices(&serde_json::from_slice(&restic(&args, b"")).expect("restic json"))
        })
        .collect()
}

fn assert_same(seed: u64, entries: &[Entry], repo: &TestRepo, expected: &[Vec<u64>]) {
    for (policy, want) in POLICIES.iter().zip(expected) {
        let got = coffer_kept(repo, policy);
        assert_eq!(
            &got, want,
            "timeline seed {seed}, policy {policy:?}: coffer keeps {got:?}, restic keeps {want:?}; times: {:?}",
            entries.iter().map(|e| &e.time).collect::<Vec<_>>()
        );
    }
}

#[test]
fn forget_keeps_what_restic_kept_on_recorded_timelines() {
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("forget fixture")).unwrap();
    let cases = fixture["timelines"].as_array().unwrap();
    assert!(cases.len() >= 8);
    std::thread::scope(|s| {
        for case in cases {
            s.spawn(move || {
                let seed = case["seed"].as_u64().unwrap();
                let entries = timeline(seed);
                // The generator must still produce what restic was given.
                let times: Vec<&str> = case["times"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap())
                    .collect();
                assert_eq!(
                    times,
                    entries.iter().map(|e| e.time.as_str()).collect::<Vec<_>>()
                );
                let expected: Vec<Vec<u64>> = serde_json::from_value(case["kept"].clone()).unwrap();
                let repo = coffer_history(&entries);
                assert_same(seed, &entries, &repo, &expected);
            });
        }
    });
}

#[test]
fn forget_keeps_what_restic_keeps_live() {
    if !restic_available() {
        eprintln!("restic is not installed: live comparison skipped");
        return;
    }
    std::thread::scope(|s| {
        for seed in [101, 102, 103, 104] {
            s.spawn(move || {
                let entries = timeline(seed);
                let expected = restic_kept(&entries);
                let repo = coffer_history(&entries);
                assert_same(seed, &entries, &repo, &expected);
            });
        }
    });
}

/// Records restic's decisions for the fixture:
/// `cargo test --test e2e record_forget_cases -- --ignored`.
#[test]
#[ignore]
fn record_forget_cases() {
    assert!(restic_available());
    let timelines: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=12u64)
            .map(|seed| {
                s.spawn(move || {
                    let entries = timeline(seed);
                    json!({
                        "seed": seed,
                        "times": entries.iter().map(|e| e.time.clone()).collect::<Vec<_>>(),
                        "kept": restic_kept(&entries),
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let restic_version = String::from_utf8(
        Command::new("restic")
            .arg("version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let doc = json!({
        "about": "restic's forget decisions (indices of kept snapshots) per policy in POLICIES of tests/e2e/forget.rs",
        "restic": restic_version.trim(),
        "timezone": TZ,
        "timelines": timelines,
    });
    std::fs::write(FIXTURE, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}

#[test]
fn forget_removes_by_policy_and_by_id_and_says_why() {
    let repo = TestRepo::new();
    for day in 1..=5 {
        let time = format!("2024-03-0{day} 12:00:00");
        repo.backup(
            format!("day {day}\n").as_bytes(),
            &["--time", &time, "--host", "db1"],
        );
    }
    let out = repo.run(&["forget", "--keep-last", "2", "--keep-daily", "1"], b"");
    out.assert_ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("keep 2 snapshots"), "{text}");
    assert!(text.contains("last snapshot, daily snapshot"), "{text}");
    assert!(text.contains("remove 3 snapshots"), "{text}");
    let snaps: Value =
        serde_json::from_slice(&repo.run(&["snapshots", "--json"], b"").stdout).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    // The kept ones still restore.
    assert_eq!(repo.restore("latest"), b"day 5\n");
    // By id.
    let id = snaps[0]["short_id"].as_str().unwrap();
    let out = repo.run(&["forget", id], b"");
    out.assert_ok();
    assert_eq!(repo.restore("latest"), b"day 5\n");
    let left: Value =
        serde_json::from_slice(&repo.run(&["snapshots", "--json"], b"").stdout).unwrap();
    assert_eq!(left.as_array().unwrap().len(), 1);
}

#[test]
fn forget_refuses_bad_input_and_keeps_everything() {
    let repo = TestRepo::new();
    // An empty repository: nothing to do, said plainly.
    let out = repo.run(&["forget", "--keep-last", "1"], b"");
    assert!(out.status.success());
    assert!(stderr(&out).contains("no snapshots"), "{}", stderr(&out));

    repo.backup(b"one\n", &["--tag", "x"]);
    repo.backup(b"two\n", &[]);
    assert_fails(&repo.run(&["forget"], b""), 2, "no policy given");
    assert_fails(
        &repo.run(&["forget", "--keep-within", "3x"], b""),
        2,
        "unknown unit",
    );
    assert_fails(
        &repo.run(&["forget", "--keep-daily", "-2"], b""),
        2,
        "not a count",
    );
    assert_fails(
        &repo.run(&["forget", "--keep-daily", "2", "--bogus"], b""),
        2,
        "--bogus",
    );
    assert_fails(
        &repo.run(&["forget", "--group-by", "colour", "--keep-last", "1"], b""),
        2,
        "colour",
    );
    assert_fails(
        &repo.run(&["forget", "ffffffff"], b""),
        14,
        "no snapshot matches",
    );
    // Keeping only a tag no snapshot has would empty the group: refused.
    assert_fails(
        &repo.run(&["forget", "--keep-tag", "nope"], b""),
        2,
        "would remove all 2 snapshots",
    );
    let snaps: Value =
        serde_json::from_slice(&repo.run(&["snapshots", "--json"], b"").stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "nothing was removed");
    let out = repo.run(&["forget", "--keep-tag", "nope", "--force"], b"");
    out.assert_ok();
    let snaps: Value =
        serde_json::from_slice(&repo.run(&["snapshots", "--json"], b"").stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 0);
}
