//! Real PostgreSQL: databases dumped by `pg_dump` through
//! `coffer backup --stdin-from-command` or `--stream`, restored with
//! `coffer restore | psql` or `| pg_restore` into fresh databases that must
//! equal their originals; failing and killed dumps must leave no snapshot.
//! Needs the server from `.ci/pg-server.sh` (CI sets COFFER_TEST_REQUIRE_PG).

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use coffer_e2e::pg::Pg;
use coffer_e2e::{stderr, Store, TestRepo};

/// Accounts in the shared source database: 300,000 rows, a ~40 MB dump.
const SCALE: u32 = 3;

/// One realistic database shared by the tests that only read it.
fn source() -> Option<&'static (Pg, String)> {
    static SOURCE: OnceLock<Option<(Pg, String)>> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let pg = Pg::from_env()?;
            let db = Pg::unique_name("coffer_src");
            pg.create_realistic_db(&db, SCALE);
            Some((pg, db))
        })
        .as_ref()
}

fn backup_from(repo: &TestRepo, name: &str, producer: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        name,
        "--json",
        "--",
    ];
    args.extend_from_slice(producer);
    let out = repo.run(&args, b"");
    assert!(out.status.success(), "backup failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("backup --json")
}

/// Restores `args` (e.g. `["latest"]`) into `consumer`, asserting both ends
/// succeed.
fn restore_into(repo: &TestRepo, args: &[&str], consumer: Command) {
    let mut restore = vec!["restore"];
    restore.extend_from_slice(args);
    let (p, c) = Pg::pipe(repo.command(&restore), consumer);
    assert!(p.status.success(), "restore failed: {}", stderr(&p));
    assert!(
        c.status.success(),
        "loading the dump failed: {}",
        stderr(&c)
    );
}

fn psql_into(pg: &Pg, db: &str) -> Command {
    let mut c = pg.command("psql");
    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db]);
    c
}

/// The restored database equals the original: the same schema-and-data dump,
/// line for line, and the same row counts and checksums per table.
fn assert_same_database(pg: &Pg, original: &str, restored: &str, min_tables: usize) {
    let (a, b) = (pg.dump(original), pg.dump(restored));
    if a != b {
        let line = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(b.lines().count()));
        panic!(
            "dump of {restored} differs from {original} at line {}: {:?} vs {:?}",
            line + 1,
            a.lines().nth(line),
            b.lines().nth(line)
        );
    }
    let sums = pg.table_sums(original);
    assert!(sums.len() >= min_tables, "tables: {sums:?}");
    assert_eq!(pg.table_sums(restored), sums);
}

fn snapshot_count(repo: &TestRepo) -> usize {
    repo.objects("snapshots").len()
}

fn a_plain_pg_dump_restores_through_psql_into_an_equal_database(store: Store) {
    let Some((pg, src)) = source() else { return };
    let pg_dump = pg.tool("pg_dump");
    let repo = TestRepo::new_on(store);
    let summary = backup_from(
        &repo,
        "app.sql",
        &[pg_dump.to_str().unwrap(), "--format=plain", src],
    );
    let read = summary["bytes_read"].as_u64().unwrap();
    assert!(read > 20_000_000, "dump of {read} bytes is too small");
    let dst = Pg::unique_name("coffer_plain");
    pg.create_db(&dst);
    restore_into(&repo, &["latest"], psql_into(pg, &dst));
    assert_same_database(pg, src, &dst, 5);
    let accounts = pg.sql(&dst, "SELECT count(*) FROM pgbench_accounts");
    assert_eq!(accounts.trim(), (SCALE * 100_000).to_string());
    pg.drop_db(&dst);
}

#[test]
fn a_custom_format_dump_without_compression_restores_through_pg_restore_and_deduplicates() {
    let Some((pg, _)) = source() else { return };
    // Its own database: this test changes it.
    let db = Pg::unique_name("coffer_fc");
    pg.create_realistic_db(&db, 1);
    let repo = TestRepo::new();
    let pg_dump = pg.tool("pg_dump");
    let dump = [pg_dump.to_str().unwrap(), "-Fc", "-Z0", db.as_str()];
    let day1 = backup_from(&repo, "app.dump", &dump);

    let dst = Pg::unique_name("coffer_fc_restored");
    pg.create_db(&dst);
    let mut pg_restore = pg.command("pg_restore");
    pg_restore.args(["--exit-on-error", "-d", &dst]); // the archive on stdin
    restore_into(&repo, &["latest"], pg_restore);
    assert_same_database(pg, &db, &dst, 5);
    pg.drop_db(&dst);

    // A day of clustered change (2% of accounts in one block, plus history):
    // an uncompressed archive shares almost everything with yesterday's.
    pg.sql(
        &db,
        "UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid <= 2000; \
         INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
         SELECT 1 + g % 10, 1, g, g % 500, now() FROM generate_series(1, 1000) g",
    );
    let day2 = backup_from(&repo, "app.dump", &dump);
    let read = day2["bytes_read"].as_u64().unwrap();
    let added = day2["bytes_added"].as_u64().unwrap();
    let first = day1["bytes_added"].as_u64().unwrap();
    eprintln!(
        "-Fc -Z0: day 1 read {} added {first}; day 2 read {read} added {added}",
        day1["bytes_read"]
    );
    assert!(
        added * 5 < first,
        "day 2 added {added} bytes for a {read}-byte dump; day 1 added {first}"
    );
    pg.drop_db(&db);
}

/// A large database is dumped in parallel into a folder (`pg_dump -Fd -j`):
/// `backup --files` takes the folder as one snapshot, `restore --target`
/// writes it back, and `pg_restore -j` loads it into an equal database.
#[test]
fn a_directory_dump_made_in_parallel_restores_through_pg_restore_in_parallel() {
    let Some((pg, src)) = source() else { return };
    let repo = TestRepo::new();
    let dump_dir = repo.dir.path().join("dump");
    let out = pg
        .command("pg_dump")
        .args(["-Fd", "-j", "2", "-Z0", "-f"])
        .arg(&dump_dir)
        .arg(src)
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_dump: {}", stderr(&out));
    let files = std::fs::read_dir(&dump_dir).unwrap().count();
    let summary = repo
        .run_ok(
            &[
                "backup",
                "--files",
                &dump_dir.to_string_lossy(),
                "--parallel",
                "2",
                "--json",
            ],
            b"",
        )
        .json();
    assert_eq!(
        summary["streams"].as_array().unwrap().len(),
        files,
        "{summary}"
    );

    let restored_dir = repo.dir.path().join("restored");
    repo.run_ok(
        &[
            "restore",
            "latest",
            "--target",
            &restored_dir.to_string_lossy(),
        ],
        b"",
    );
    let dst = Pg::unique_name("coffer_fd_restored");
    pg.create_db(&dst);
    let out = pg
        .command("pg_restore")
        .args(["--exit-on-error", "-j", "2", "-d", &dst])
        .arg(&restored_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_restore: {}", stderr(&out));
    assert_same_database(pg, src, &dst, 4);
    pg.drop_db(&dst);
}

#[test]
fn globals_and_several_databases_go_into_one_snapshot_and_restore_by_name() {
    let Some((pg, src)) = source() else { return };
    let other = Pg::unique_name("coffer_other");
    let role = Pg::unique_name("coffer_role");
    pg.create_db(&other);
    pg.sql(
        &other,
        &format!(
            "CREATE ROLE {role} LOGIN; CREATE TABLE notes (id int PRIMARY KEY, body text); \
             INSERT INTO notes SELECT g, repeat('note ' || g, 20) FROM generate_series(1, 2000) g; \
             GRANT SELECT ON notes TO {role}"
        ),
    );
    let bin = |t: &str| pg.tool(t).to_string_lossy().into_owned();
    let repo = TestRepo::new();
    let streams = [
        format!("globals.sql={} --globals-only", bin("pg_dumpall")),
        format!("{src}.sql={} {src}", bin("pg_dump")),
        format!("{other}.sql={} {other}", bin("pg_dump")),
    ];
    let mut args = vec!["backup", "--json"];
    for s in &streams {
        args.extend(["--stream", s.as_str()]);
    }
    let out = repo.run(&args, b"");
    out.assert_ok();
    assert_eq!(snapshot_count(&repo), 1);

    let globals = repo.run(&["restore", "latest", "--stream", "globals.sql"], b"");
    globals.assert_ok();
    let globals = String::from_utf8(globals.output.stdout).unwrap();
    assert!(
        globals.contains(&format!("CREATE ROLE {role};")),
        "{globals}"
    );

    // The role must exist before the GRANT in the database's dump replays;
    // it still does here, as in a restore onto a server with globals loaded.
    let dst = Pg::unique_name("coffer_other_restored");
    pg.create_db(&dst);
    let stream = format!("{other}.sql");
    restore_into(&repo, &["latest", "--stream", &stream], psql_into(pg, &dst));
    assert_same_database(pg, &other, &dst, 1);
    let src_stream = repo.run(
        &["restore", "latest", "--stream", &format!("{src}.sql")],
        b"",
    );
    src_stream.assert_ok();
    assert!(String::from_utf8_lossy(&src_stream.stdout).contains("CREATE TABLE public.varied"));
    pg.drop_db(&dst);
    pg.drop_db(&other);
    pg.sql("postgres", &format!("DROP ROLE {role}"));
}

#[test]
fn a_dump_of_a_missing_database_fails_the_backup_and_leaves_no_snapshot() {
    let Some((pg, _)) = source() else { return };
    let repo = TestRepo::new();
    let pg_dump = pg.tool("pg_dump");
    let out = repo.run(
        &[
            "backup",
            "--stdin-from-command",
            "--",
            pg_dump.to_str().unwrap(),
            "no_such_database",
        ],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    // pg_dump's own message passes through; coffer's line comes last.
    assert!(
        err.contains("database \"no_such_database\" does not exist"),
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("exited with status 1: nothing was backed up"),
        "{last}"
    );
    assert_eq!(snapshot_count(&repo), 0);
}

/// Bytes a process has written so far (`wchar` in /proc/PID/io).
fn bytes_written(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

/// The child of `parent` whose command name is `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().find_map(|c| {
        let pid: u32 = c.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == name).then_some(pid)
    })
}

#[test]
fn a_pg_dump_killed_midway_leaves_no_snapshot_and_the_repository_usable() {
    let Some((pg, src)) = source() else { return };
    let repo = TestRepo::uninitialised();
    let init = repo.run(&["init", "--pack-size", "1"], b"");
    init.assert_ok();
    let pg_dump = pg.tool("pg_dump");
    let mut backup = repo.command(&[
        "backup",
        "--stdin-from-command",
        "--",
        pg_dump.to_str().unwrap(),
        src,
    ]);
    let child = backup
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coffer backup");
    // Kill pg_dump once it has written 5 MB of a ~40 MB dump and coffer has
    // stored a pack of it: the dump is surely unfinished.
    let deadline = Instant::now() + Duration::from_secs(60);
    let dumper = loop {
        assert!(
            Instant::now() < deadline,
            "no moment found with pg_dump running and a pack stored"
        );
        if let Some(pid) = child_named(child.id(), "pg_dump") {
            if bytes_written(pid).unwrap_or(0) > 5_000_000 && !repo.objects("data").is_empty() {
                break pid;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let killed = Command::new("kill")
        .args(["-9", &dumper.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("was killed by signal 9"), "{err}");
    assert_eq!(snapshot_count(&repo), 0);
    let check = repo.run(&["check"], b"");
    check.assert_ok();
    // The next night's dump works as usual.
    backup_from(&repo, "app.sql", &[pg_dump.to_str().unwrap(), src]);
    assert_eq!(snapshot_count(&repo), 1);
}

on_every_store!(a_plain_pg_dump_restores_through_psql_into_an_equal_database);
