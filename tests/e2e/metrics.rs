//! Prometheus metrics of backup runs: the textfile (checked by a real
//! Pushgateway's parser too) and pushes to a real Pushgateway
//! (`.ci/pushgateway.sh`; CI sets COFFER_TEST_REQUIRE_PUSHGATEWAY). A failed
//! run must say so without erasing the last success.

use std::process::Command;

use coffer_e2e::{stderr, Ran, TestRepo};

/// The value of the sample `name{...}` whose labels include every
/// comma-separated `key="value"` of `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            let (head, _) = l.rsplit_once(' ').unwrap_or_default();
            let inner = head.split_once('{').map(|x| x.1).unwrap_or_default();
            let have: Vec<&str> = inner.trim_end_matches('}').split(',').collect();
            labels.split(',').all(|want| have.contains(&want))
        })
        .find_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn pushgateway() -> Option<String> {
    let url = std::env::var("COFFER_TEST_PUSHGATEWAY").ok();
    assert!(
        url.is_some() || std::env::var_os("COFFER_TEST_REQUIRE_PUSHGATEWAY").is_none(),
        "COFFER_TEST_REQUIRE_PUSHGATEWAY is set but no Pushgateway is configured"
    );
    url
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "-f"])
        .args(args)
        .output()
        .expect("run curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out),
    )
}

/// `coffer backup` of stream app.sql on host db-1 with `--metrics-file`.
fn backup_with_metrics(repo: &TestRepo, file: &str, source: &[&str], input: &[u8]) -> Ran {
    let mut args = vec![
        "backup",
        "--stdin-filename",
        "app.sql",
        "--host",
        "db-1",
        "--metrics-file",
        file,
    ];
    args.extend_from_slice(source);
    repo.run(&args, input)
}

#[test]
fn the_metrics_file_records_a_success_and_then_a_failure_without_losing_it() {
    let repo = TestRepo::new();
    let file = repo.dir.path().join("coffer.prom");
    let file_arg = file.to_str().unwrap();
    let data = coffer_e2e::noise(2_000_000, 3);
    for _ in 0..2 {
        let out = backup_with_metrics(&repo, file_arg, &["--stdin"], &data);
        out.assert_ok();
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let labels = r#"host="db-1",stream="app.sql""#;
    assert_eq!(sample(&text, "coffer_backup_success", labels), Some(1.0));
    assert_eq!(
        sample(&text, "coffer_backup_read_bytes", labels),
        Some(2_000_000.0)
    );
    assert_eq!(sample(&text, "coffer_snapshots", labels), Some(2.0));
    // The second run found everything stored: it added only its tree.
    let added = sample(&text, "coffer_backup_added_bytes", labels).unwrap();
    assert!(added < 10_000.0, "{added}");
    let success_at = sample(
        &text,
        "coffer_backup_last_success_timestamp_seconds",
        labels,
    )
    .unwrap();
    assert!((now() - success_at).abs() < 120.0, "{success_at}");

    // A failing producer: outcome and exit code change, the success stays.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let failing = [
        "--stdin-from-command",
        "--",
        "sh",
        "-c",
        "echo partial; exit 1",
    ];
    let out = backup_with_metrics(&repo, file_arg, &failing, b"");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(sample(&text, "coffer_backup_success", labels), Some(0.0));
    assert_eq!(
        sample(&text, "coffer_backup_last_exit_code", labels),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "coffer_backup_last_success_timestamp_seconds",
            labels
        ),
        Some(success_at)
    );
    let run_at = sample(&text, "coffer_backup_last_run_timestamp_seconds", labels).unwrap();
    assert!(run_at > success_at);
    assert_eq!(sample(&text, "coffer_snapshots", labels), Some(2.0));

    // A wrong repository password is a failure too (exit 12), recorded.
    std::fs::write(&repo.password_file, "wrong\n").unwrap();
    let out = backup_with_metrics(&repo, file_arg, &["--stdin"], b"x");
    assert_eq!(out.status.code(), Some(12));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        sample(&text, "coffer_backup_last_exit_code", labels),
        Some(12.0)
    );

    // The file parses: a real Pushgateway accepts it as pushed text.
    if let Some(gw) = pushgateway() {
        let body = format!("@{}", file.display());
        let (ok, said) = curl(&[
            "-X",
            "PUT",
            "--data-binary",
            &body,
            &format!(
                "{gw}/metrics/job/coffer_textfile_check/run/{}",
                std::process::id()
            ),
        ]);
        assert!(ok, "the Pushgateway rejected the textfile: {said}\n{text}");
    }
}

#[test]
fn backups_push_to_a_pushgateway_and_a_failure_keeps_the_last_success() {
    let Some(gw) = pushgateway() else { return };
    let repo = TestRepo::new();
    let host = format!("host-{}", std::process::id());
    let streams = ["globals.sql=echo roles", "app.sql=seq 1 100000"];
    let mut args = vec!["backup", "--host", &host, "--pushgateway", &gw];
    for s in &streams {
        args.extend(["--stream", s]);
    }
    let out = repo.run(&args, b"");
    out.assert_ok();
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let (ok, text) = curl(&[&format!("{gw}/metrics")]);
    assert!(ok, "{text}");
    let labels = |stream: &str| {
        format!(r#"host="{host}",job="coffer",stream="{stream}",streams="globals.sql,app.sql""#)
    };
    assert_eq!(
        sample(&text, "coffer_backup_success", &labels("app.sql")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "coffer_backup_read_bytes", &labels("globals.sql")),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, "coffer_snapshots", &labels("app.sql")),
        Some(1.0)
    );
    let success_at = sample(
        &text,
        "coffer_backup_last_success_timestamp_seconds",
        &labels("app.sql"),
    )
    .unwrap();

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let failing = ["globals.sql=echo roles", "app.sql=seq 1 10; exit 2"];
    let mut args = vec!["backup", "--host", &host, "--pushgateway", &gw];
    for s in &failing {
        args.extend(["--stream", s]);
    }
    let out = repo.run(&args, b"");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let (_, text) = curl(&[&format!("{gw}/metrics")]);
    assert_eq!(
        sample(&text, "coffer_backup_success", &labels("app.sql")),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "coffer_backup_last_exit_code", &labels("app.sql")),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "coffer_backup_last_success_timestamp_seconds",
            &labels("app.sql")
        ),
        Some(success_at)
    );
}

#[test]
fn an_unreachable_pushgateway_is_a_warning_not_a_failed_backup() {
    let repo = TestRepo::new();
    let out = repo.run(
        &["backup", "--stdin", "--pushgateway", "http://127.0.0.1:9/"],
        b"data",
    );
    out.assert_ok();
    let err = stderr(&out);
    assert!(
        err.contains("coffer: warning: cannot push metrics to http://127.0.0.1:9/"),
        "{err}"
    );
    assert_eq!(repo.objects("snapshots").len(), 1);
}

/// The Grafana dashboard in `deploy/grafana/` queries only metrics (and
/// labels) a real backup writes: a renamed metric breaks this test, not the
/// dashboard in production.
#[test]
fn the_grafana_dashboard_queries_only_metrics_coffer_writes() {
    let repo = TestRepo::new();
    let file = repo.dir.path().join("coffer.prom");
    backup_with_metrics(&repo, file.to_str().unwrap(), &["--stdin"], b"x\n").assert_ok();
    let written = std::fs::read_to_string(&file).unwrap();
    let families: std::collections::BTreeSet<&str> = written
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/grafana/coffer-backups.json"
        ))
        .unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    collect_queries(&dashboard, &mut queries);
    let mut used = std::collections::BTreeSet::new();
    for q in &queries {
        for (at, _) in q.match_indices("coffer_") {
            let name: String = q[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            used.insert(name);
        }
        // Its labels are the ones coffer writes.
        for label in ["host", "stream"] {
            if q.contains(&format!("{label},")) || q.contains(&format!("{label})")) {
                assert!(written.contains(&format!("{label}=\"")), "{label} in {q}");
            }
        }
    }
    assert!(used.len() >= 6, "{used:?}");
    for name in &used {
        assert!(
            families.contains(name.as_str()),
            "the dashboard queries {name}, coffer writes {families:?}"
        );
    }
    // Rows per stream: the table is keyed by host and stream.
    assert!(queries.iter().any(|q| q.contains("by (host, stream)")));
}

/// Every `expr` and `query` string in a dashboard.
fn collect_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_queries(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_queries(x, out)),
        _ => {}
    }
}
