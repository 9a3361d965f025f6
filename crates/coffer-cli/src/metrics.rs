//! Prometheus metrics of a backup run, for alerting on stale or failing
//! backups: written as a node-exporter textfile (`--metrics-file`) and/or
//! pushed to a Pushgateway (`--pushgateway`). Everything is a gauge labelled
//! by stream; a failed run updates only the outcome metrics, so the last
//! success time survives it (merged from the old file; for the Pushgateway,
//! POST replaces only the metric names it sends).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Every metric family written, in output order, with its help text.
const FAMILIES: &[(&str, &str)] = &[
    (
        "coffer_backup_success",
        "1 if the last backup of the stream succeeded, 0 if it failed.",
    ),
    (
        "coffer_backup_last_run_timestamp_seconds",
        "When the last backup of the stream ended, successful or not.",
    ),
    (
        "coffer_backup_last_exit_code",
        "Exit code of the last backup run (0 on success; see the README's table).",
    ),
    (
        "coffer_backup_last_success_timestamp_seconds",
        "When the last successful backup of the stream ended.",
    ),
    (
        "coffer_backup_duration_seconds",
        "Wall time of the last successful backup run.",
    ),
    (
        "coffer_backup_read_bytes",
        "Bytes of the stream read by the last successful backup.",
    ),
    (
        "coffer_backup_added_bytes",
        "Bytes the last successful backup added to the repository for the stream (after deduplication and compression).",
    ),
    (
        "coffer_backup_stored_bytes",
        "Size of the stream's last snapshot after compression, deduplicated data included.",
    ),
    (
        "coffer_snapshots",
        "Snapshots holding the stream for this host in the repository after the last successful backup.",
    ),
];

/// One value of one metric for one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub stream: String,
    pub value: f64,
}

/// What one stream's successful backup measured.
#[derive(Debug, Clone)]
pub struct StreamResult {
    pub name: String,
    pub read: u64,
    pub added: u64,
    pub stored: u64,
    pub snapshots: usize,
}

/// The samples of a successful run ending at `now` (Unix seconds).
pub fn succeeded(streams: &[StreamResult], duration: f64, now: f64) -> Vec<Sample> {
    let mut out = Vec::new();
    for s in streams {
        let mut add = |name, value: f64| {
            out.push(Sample {
                name,
                stream: s.name.clone(),
                value,
            })
        };
        add("coffer_backup_success", 1.0);
        add("coffer_backup_last_run_timestamp_seconds", now);
        add("coffer_backup_last_exit_code", 0.0);
        add("coffer_backup_last_success_timestamp_seconds", now);
        add("coffer_backup_duration_seconds", duration);
        add("coffer_backup_read_bytes", s.read as f64);
        add("coffer_backup_added_bytes", s.added as f64);
        add("coffer_backup_stored_bytes", s.stored as f64);
        add("coffer_snapshots", s.snapshots as f64);
    }
    out
}

/// The samples of a failed run: outcome, time and exit code only.
pub fn failed(streams: &[String], exit_code: u8, now: f64) -> Vec<Sample> {
    let mut out = Vec::new();
    for s in streams {
        for (name, value) in [
            ("coffer_backup_success", 0.0),
            ("coffer_backup_last_run_timestamp_seconds", now),
            ("coffer_backup_last_exit_code", exit_code as f64),
        ] {
            out.push(Sample {
                name,
                stream: s.clone(),
                value,
            });
        }
    }
    out
}

/// A label value in the exposition format's escaping.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The sample line's key: name and labels, everything before the value.
fn key(s: &Sample, host: Option<&str>) -> String {
    match host {
        Some(h) => format!(
            "{}{{host=\"{}\",stream=\"{}\"}}",
            s.name,
            escape(h),
            escape(&s.stream)
        ),
        None => format!("{}{{stream=\"{}\"}}", s.name, escape(&s.stream)),
    }
}

/// Formats a value the way Prometheus parses it.
fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Sample lines (key -> line) grouped into families with HELP and TYPE.
fn render_lines(lines: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (family, help) in FAMILIES {
        let mut members = lines
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(family))
            .peekable();
        if members.peek().is_none() {
            continue;
        }
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} gauge");
        for (_, line) in members {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn lines_of(samples: &[Sample], host: Option<&str>) -> BTreeMap<String, String> {
    samples
        .iter()
        .map(|s| {
            let k = key(s, host);
            let line = format!("{k} {}", value(s.value));
            (k, line)
        })
        .collect()
}

/// The text a Pushgateway receives (the host is in its grouping key).
pub fn render_for_push(samples: &[Sample]) -> String {
    render_lines(&lines_of(samples, None))
}

/// Merges `samples` into the textfile at `path` (keeping the samples of other
/// streams and the ones this run does not update) and replaces it atomically,
/// as node-exporter's textfile collector requires.
pub fn write_file(path: &Path, host: &str, samples: &[Sample]) -> std::io::Result<()> {
    let mut lines: BTreeMap<String, String> = match std::fs::read_to_string(path) {
        Ok(old) => old
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                l.rsplit_once(' ')
                    .map(|(k, _)| (k.to_string(), l.to_string()))
            })
            .filter(|(k, _)| FAMILIES.iter().any(|(f, _)| k.split('{').next() == Some(f)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e),
    };
    lines.extend(lines_of(samples, Some(host)));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, render_lines(&lines))?;
    // node-exporter usually runs as another user: readable by all (coffer's
    // umask would make it 0600). Metrics hold no secret.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// base64url as the Pushgateway takes it in `label@base64/value` path parts.
fn base64url(s: &str) -> String {
    use base64::Engine;
    if s.is_empty() {
        return "=".into(); // the Pushgateway's spelling of an empty value
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// The Pushgateway group of a backup job: job `coffer`, the snapshot host,
/// and the job's stream names (so two CronJobs of one host don't replace
/// each other's metrics).
pub fn push_url(base: &str, host: &str, streams: &[String]) -> String {
    format!(
        "{}/metrics/job/coffer/host@base64/{}/streams@base64/{}",
        base.trim_end_matches('/'),
        base64url(host),
        base64url(&streams.join(","))
    )
}

/// POSTs the samples to the Pushgateway (replacing only these metric names
/// in the group). Bounded: a monitoring outage must not hang a backup.
pub async fn push(
    base: &str,
    host: &str,
    streams: &[String],
    samples: &[Sample],
) -> Result<(), String> {
    let url = push_url(base, host, streams);
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .post(&url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(render_for_push(samples))
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let body = response.text().await.unwrap_or_default();
        Err(format!("HTTP {status}: {}", body.trim()))
    }
}

/// Now, in Unix seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(read: u64) -> Vec<StreamResult> {
        vec![StreamResult {
            name: "app \"main\".sql".into(),
            read,
            added: 10,
            stored: 20,
            snapshots: 3,
        }]
    }

    #[test]
    fn a_file_keeps_the_last_success_through_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coffer.prom");
        write_file(&path, "db-1", &succeeded(&one(1234), 2.5, 1_700_000_000.0)).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.contains("# TYPE coffer_backup_success gauge\n"));
        assert!(first.contains(
            "coffer_backup_read_bytes{host=\"db-1\",stream=\"app \\\"main\\\".sql\"} 1234\n"
        ));
        assert!(first.contains(
            "coffer_backup_duration_seconds{host=\"db-1\",stream=\"app \\\"main\\\".sql\"} 2.5\n"
        ));

        write_file(
            &path,
            "db-1",
            &failed(&["app \"main\".sql".into()], 4, 1_700_086_400.0),
        )
        .unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        let get = |name: &str| {
            after
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{")))
                .and_then(|l| l.rsplit_once(' '))
                .map(|(_, v)| v.to_string())
        };
        assert_eq!(get("coffer_backup_success").as_deref(), Some("0"));
        assert_eq!(get("coffer_backup_last_exit_code").as_deref(), Some("4"));
        assert_eq!(
            get("coffer_backup_last_run_timestamp_seconds").as_deref(),
            Some("1700086400")
        );
        assert_eq!(
            get("coffer_backup_last_success_timestamp_seconds").as_deref(),
            Some("1700000000")
        );
        assert_eq!(get("coffer_backup_read_bytes").as_deref(), Some("1234"));
        // One HELP per family, no stray temporary file.
        assert_eq!(after.matches("# HELP coffer_backup_success ").count(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn group_paths_are_base64url() {
        assert_eq!(base64url("a/b?"), "YS9iPw");
        assert_eq!(base64url("ab"), "YWI");
        assert_eq!(base64url(""), "=");
        assert_eq!(
            push_url("http://pg:9091/", "db", &["x.sql".into(), "y.sql".into()]),
            "http://pg:9091/metrics/job/coffer/host@base64/ZGI/streams@base64/eC5zcWwseS5zcWw"
        );
    }
}
