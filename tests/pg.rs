//! The PostgreSQL side of the end-to-end tests: a client for the throwaway
//! server that `.ci/pg-server.sh` starts (found through `PG*` variables and
//! `COFFER_TEST_PG_BINDIR`), databases with realistic data, and the two ways
//! of proving that a restored database equals its original: a schema-and-data
//! dump compared byte for byte, and per-table row counts and checksums.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The PostgreSQL client tools of the test server's version.
#[derive(Debug, Clone)]
pub struct Pg {
    bindir: PathBuf,
}

/// One table's row count and a checksum over all of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    /// Schema-qualified table name.
    pub table: String,
    /// `count(*)`.
    pub rows: u64,
    /// md5 of every row's text form, in a fixed order.
    pub md5: String,
}

impl Pg {
    /// The test server, when `.ci/pg-server.sh start` has set the
    /// environment. With `COFFER_TEST_REQUIRE_PG` (CI) a missing server is a
    /// failure rather than a skipped test.
    pub fn from_env() -> Option<Pg> {
        match std::env::var_os("COFFER_TEST_PG_BINDIR") {
            Some(dir) if std::env::var_os("PGHOST").is_some() => Some(Pg { bindir: dir.into() }),
            _ => {
                assert!(
                    std::env::var_os("COFFER_TEST_REQUIRE_PG").is_none(),
                    "COFFER_TEST_REQUIRE_PG is set but no PostgreSQL test server is configured \
                     (eval \"$(.ci/pg-server.sh start)\")"
                );
                None
            }
        }
    }

    /// Full path of a client tool (`pg_dump`, `psql`, ...).
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// A command for a client tool.
    pub fn command(&self, name: &str) -> Command {
        Command::new(self.tool(name))
    }

    /// A database name no other test (or test run) uses.
    pub fn unique_name(prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Runs SQL in `db` (stopping at the first error); returns the
    /// unaligned, tuples-only output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        ok(&out, "psql");
        String::from_utf8(out.stdout).expect("psql output is UTF-8")
    }

    /// Creates an empty database.
    pub fn create_db(&self, db: &str) {
        self.sql("postgres", &format!("CREATE DATABASE {db}"));
    }

    /// Drops a database if it exists.
    pub fn drop_db(&self, db: &str) {
        self.sql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    }

    /// Creates `db` with pgbench's tables at `scale` (100,000 accounts per
    /// unit), their blank `filler` columns filled so the dump compresses like
    /// real data, and a table of varied column types with awkward values.
    pub fn create_realistic_db(&self, db: &str, scale: u32) {
        self.create_db(db);
        let out = self
            .command("pgbench")
            .args(["-i", "-q", "-s", &scale.to_string(), db])
            .output()
            .expect("run pgbench");
        ok(&out, "pgbench -i");
        self.sql(db, REALISTIC_SQL);
    }

    /// A plain-format dump of `db`, without the random `\restrict` token
    /// lines that pg_dump writes since 15.14 (two dumps of one database would
    /// otherwise never be equal).
    pub fn dump(&self, db: &str) -> String {
        let out = self
            .command("pg_dump")
            .args(["--format=plain", "--no-owner", db])
            .output()
            .expect("run pg_dump");
        ok(&out, "pg_dump");
        String::from_utf8(out.stdout)
            .expect("dump is UTF-8")
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Row count and checksum of every table in the public schema, by name.
    pub fn table_sums(&self, db: &str) -> Vec<TableSum> {
        let tables = self.sql(
            db,
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) \
             FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        );
        tables
            .lines()
            .map(|t| {
                let row = self.sql(
                    db,
                    &format!(
                        "SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, E'\\n' \
                         ORDER BY r::text)), '-') FROM {t} r"
                    ),
                );
                let (rows, md5) = row.trim().split_once(' ').expect("count and md5");
                TableSum {
                    table: t.to_string(),
                    rows: rows.parse().expect("row count"),
                    md5: md5.to_string(),
                }
            })
            .collect()
    }

    /// Runs `producer` (e.g. `coffer restore ...`) and pipes its stdout into
    /// `consumer` (e.g. `psql` or `pg_restore`); returns both outputs.
    pub fn pipe(mut producer: Command, mut consumer: Command) -> (Output, Output) {
        let mut p = producer
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the producer");
        let c = consumer
            .stdin(p.stdout.take().expect("producer stdout"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the consumer");
        let c_out = c.wait_with_output().expect("wait for the consumer");
        let p_out = p.wait_with_output().expect("wait for the producer");
        (p_out, c_out)
    }
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Real-looking data on top of `pgbench -i`: filled `filler` columns (as in
/// docs/performance.md's workload), and a table that exercises the types and
/// values a dump must carry exactly: NULLs, tabs, newlines, backslashes,
/// non-ASCII text, numerics, floats, time zones, JSON, binary, arrays, UUIDs,
/// intervals, network addresses; plus a view, a function, a sequence and an
/// index, which live only in the schema part of the dump.
const REALISTIC_SQL: &str = r#"
UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text);
UPDATE pgbench_branches SET filler = 'branch ' || bid;
CREATE TABLE varied (
    id bigint PRIMARY KEY,
    label text,
    amount numeric(20, 6),
    ratio float8,
    at timestamptz,
    day date,
    doc jsonb,
    raw bytea,
    nums int[],
    uid uuid,
    flag boolean,
    span interval,
    addr inet
);
INSERT INTO varied
SELECT g,
       'row ' || g || E'\ttab\nnewline ''quote'' back\\slash ünïcødé ✓ 日本',
       g * 1.000001,
       g / 7.0::float8,
       '2026-01-01 00:00:00+00'::timestamptz + g * interval '37 minutes',
       '2000-02-29'::date + g,
       jsonb_build_object('k', g, 'list', jsonb_build_array(g, g * 2, 'x'), 'nested', jsonb_build_object('ok', g % 2 = 0)),
       decode(md5(g::text) || md5((g + 1)::text), 'hex'),
       ARRAY[g, g + 1, -g]::int[],
       md5(g::text)::uuid,
       g % 3 = 0,
       g * interval '1 second 250 milliseconds',
       ('10.' || (g % 256) || '.' || (g / 256 % 256) || '.1')::inet
FROM generate_series(1, 5000) g;
UPDATE varied SET label = NULL, doc = NULL, raw = NULL WHERE id % 97 = 0;
CREATE INDEX varied_day ON varied (day);
CREATE SEQUENCE invoice_no START 1000;
SELECT setval('invoice_no', 4242);
CREATE VIEW rich_accounts AS SELECT aid, abalance FROM pgbench_accounts WHERE abalance > 0;
CREATE FUNCTION double_it(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
ANALYZE;
"#;
