//! Support for the end-to-end tests and benchmarks: a generator of
//! pg_dump-like streams and a harness that runs the real `coffer` binary
//! against a throwaway repository.

pub mod pg;
mod process;

pub use process::{run_with_input, send_signal, spawn_with_input, stderr, Paused, Ran};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

/// Which rows of a generated dump differ from day one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The original dump.
    None,
    /// Every 50th row updated (2% scattered).
    Scattered,
    /// 2% of rows updated as one contiguous block in the middle.
    Clustered,
    /// Day `n` of a database where each day another 2% of rows, at
    /// scattered places, took a new balance (today's dump differs from
    /// yesterday's in about 4% of its rows).
    Day(u64),
}

/// A plain-format `pg_dump` of a pgbench-like `accounts` table of about
/// `target_bytes`, with realistic values: `aid`, `bid`, `abalance` and a
/// `char(84)` filler holding a 32-hex-digit hash (padded with spaces, as
/// PostgreSQL prints it). Compresses about 4.3x with zstd -3, like the dumps
/// in the field. Deterministic for a given size and change.
pub fn dump_like(target_bytes: usize, change: Change) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_bytes + 200);
    write_dump(&mut out, target_bytes, change).expect("writing to a Vec");
    out
}

/// Streams [`dump_like`]'s output to `out` without holding it in memory.
pub fn write_dump(
    out: &mut impl Write,
    target_bytes: usize,
    change: Change,
) -> std::io::Result<()> {
    const HEAD: &[u8] = b"--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\n\
          COPY public.pgbench_accounts (aid, bid, abalance, filler) FROM stdin;\n";
    const TAIL: &[u8] = b"\\.\n\n--\n-- PostgreSQL database dump complete\n--\n";
    out.write_all(HEAD)?;
    let rows_estimate = (target_bytes / 112 + 1) as u64;
    let clustered = rows_estimate / 2..rows_estimate / 2 + rows_estimate / 50;
    let mut written = HEAD.len();
    let mut line = Vec::with_capacity(160);
    let mut aid: u64 = 1;
    while written < target_bytes {
        let changed = match change {
            Change::None => false,
            Change::Scattered => aid % 50 == 7,
            Change::Clustered => clustered.contains(&aid),
            Change::Day(d) => mix(aid ^ d.wrapping_mul(0x9e37_79b9)).is_multiple_of(50),
        };
        let (h1, h2) = (mix(aid), mix(aid ^ 0x5151_5151));
        let balance: i64 = match change {
            _ if !changed => 0,
            Change::Day(d) => (mix(h2 ^ d) % 20_000) as i64 - 10_000,
            _ => (h2 % 20_000) as i64 - 10_000,
        };
        line.clear();
        write!(
            line,
            "{aid}\t{}\t{balance}\t{h1:016x}{h2:016x}",
            (aid - 1) / 100_000 + 1
        )?;
        line.extend_from_slice(&[b' '; 52]);
        line.push(b'\n');
        out.write_all(&line)?;
        written += line.len();
        aid += 1;
    }
    out.write_all(TAIL)
}

/// `n` incompressible, deterministic bytes.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    let mut i = seed.wrapping_mul(1 << 32);
    while out.len() < n {
        out.extend_from_slice(&mix(i).to_le_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

/// splitmix64: a cheap, well-mixed stand-in for `md5(aid)`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Path of the `coffer` binary: `COFFER_BIN` if set, else the one cargo
/// built for these tests (`CARGO_BIN_EXE_coffer`, set while the end-to-end
/// tests run), else the one beside the running executable (benchmarks).
pub fn coffer_bin() -> PathBuf {
    if let Some(p) =
        std::env::var_os("COFFER_BIN").or_else(|| std::env::var_os("CARGO_BIN_EXE_coffer"))
    {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/coffer
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("coffer")
}

/// Where a test repository lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// A local directory.
    Local,
    /// A bucket on the S3-compatible test server (`.ci/s3-server.sh`).
    S3,
    /// A container on the Azure Blob Storage emulator (`.ci/azurite.sh`).
    Azure,
}

/// Whether tests can run on `store`: always on the local directory; on S3
/// and Azure when their test servers' environment is set. A test server
/// that is missing says so on stderr, and fails the test when
/// `COFFER_TEST_REQUIRE_S3` / `COFFER_TEST_REQUIRE_AZURE` is set (CI).
pub fn store_available(store: Store) -> bool {
    let (configured, required, start) = match store {
        Store::Local => return true,
        Store::S3 => (
            "COFFER_TEST_S3_BUCKET",
            "COFFER_TEST_REQUIRE_S3",
            ".ci/s3-server.sh",
        ),
        Store::Azure => (
            "COFFER_TEST_AZURE_CONTAINER",
            "COFFER_TEST_REQUIRE_AZURE",
            ".ci/azurite.sh",
        ),
    };
    if std::env::var_os(configured).is_some() {
        return true;
    }
    assert!(
        std::env::var_os(required).is_none(),
        "{required} is set but {configured} is not: no test server"
    );
    eprintln!("skipped on {store:?}: no test server ({configured} unset; start one with `eval \"$({start} start)\"`)");
    false
}

/// An object store client on the Azure emulator's test container, under
/// `prefix`.
pub fn azure_client(prefix: &str) -> Arc<dyn ObjectStore> {
    let container =
        std::env::var("COFFER_TEST_AZURE_CONTAINER").expect("COFFER_TEST_AZURE_CONTAINER");
    let store = object_store::azure::MicrosoftAzureBuilder::from_env()
        .with_container_name(container)
        .build()
        .expect("Azure client for the test container");
    Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
}

/// An object store client on the S3 test bucket, under `prefix`.
pub fn s3_client(prefix: &str) -> Arc<dyn ObjectStore> {
    let bucket = std::env::var("COFFER_TEST_S3_BUCKET").expect("COFFER_TEST_S3_BUCKET");
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .expect("S3 client for the test bucket");
    Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A throwaway repository with a password file, driven through the binary.
pub struct TestRepo {
    /// Temporary directory holding the password file (and a local repository).
    pub dir: tempfile::TempDir,
    /// Where the repository is.
    pub store: Store,
    /// `COFFER_REPOSITORY` for this repository.
    pub location: String,
    /// Local repository path (meaningful for [`Store::Local`]).
    pub repo: PathBuf,
    /// Password file path.
    pub password_file: PathBuf,
    /// Client on the remote store, for looking at objects directly.
    remote: Option<Arc<dyn ObjectStore>>,
}

impl TestRepo {
    /// A local location with a password file but no repository yet.
    pub fn uninitialised() -> Self {
        Self::uninitialised_on(Store::Local)
    }

    /// A location on `store` with a password file but no repository yet.
    pub fn uninitialised_on(store: Store) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, "correct horse\n").expect("write password");
        let repo = dir.path().join("repo");
        // A fresh prefix per test: tests share one bucket or container.
        let name = dir
            .path()
            .file_name()
            .expect("tempdir name")
            .to_string_lossy()
            .into_owned();
        let prefix = format!("t/{}", name.trim_start_matches('.'));
        let (location, remote) = match store {
            Store::Local => (repo.to_string_lossy().into_owned(), None),
            Store::S3 => {
                let bucket = std::env::var("COFFER_TEST_S3_BUCKET").expect("COFFER_TEST_S3_BUCKET");
                (format!("s3://{bucket}/{prefix}"), Some(s3_client(&prefix)))
            }
            Store::Azure => {
                let container = std::env::var("COFFER_TEST_AZURE_CONTAINER")
                    .expect("COFFER_TEST_AZURE_CONTAINER");
                (
                    format!("az://{container}/{prefix}"),
                    Some(azure_client(&prefix)),
                )
            }
        };
        TestRepo {
            dir,
            store,
            location,
            repo,
            password_file,
            remote,
        }
    }

    /// A copy of the repository committed under `tests/fixtures/<name>/repo`
    /// (with its password), on `store`.
    pub fn from_fixture_on(store: Store, name: &str) -> Self {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        let root = fixture.join("repo");
        let mut pending = vec![root.clone()];
        let repo = Self::uninitialised_on(store);
        while let Some(dir) = pending.pop() {
            for e in std::fs::read_dir(&dir).expect("fixture folder").flatten() {
                let path = e.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let key = path.strip_prefix(&root).expect("below root");
                    let bytes = std::fs::read(&path).expect("fixture file");
                    repo.write_object(&key.to_string_lossy(), &bytes);
                }
            }
        }
        std::fs::copy(fixture.join("password"), &repo.password_file).expect("fixture password");
        repo
    }

    /// A local copy of a committed fixture repository.
    pub fn from_fixture(name: &str) -> Self {
        Self::from_fixture_on(Store::Local, name)
    }

    /// A fresh local repository (`coffer init` with the fast test KDF).
    pub fn new() -> Self {
        Self::new_on(Store::Local)
    }

    /// A fresh repository on `store`.
    pub fn new_on(store: Store) -> Self {
        let r = Self::uninitialised_on(store);
        let out = r.run(&["init"], b"");
        assert!(out.status.success(), "init failed: {}", stderr(&out));
        r
    }

    /// A `coffer` command set up for this repository.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(coffer_bin());
        c.args(args)
            .env("COFFER_REPOSITORY", &self.location)
            .env("COFFER_PASSWORD_FILE", &self.password_file)
            .env("COFFER_INSECURE_FAST_KDF", "1")
            .env("COFFER_CACHE_DIR", self.dir.path().join("cache"))
            .env_remove("COFFER_PASSWORD");
        c
    }

    /// Runs `coffer args...` with `input` on stdin.
    pub fn run(&self, args: &[&str], input: &[u8]) -> Ran {
        run_with_input(self.command(args), input)
    }

    /// Runs `coffer args...` and asserts that it succeeded.
    pub fn run_ok(&self, args: &[&str], input: &[u8]) -> Ran {
        self.run(args, input).ok()
    }

    /// `check` (structure, or with `--read-data`) passes.
    pub fn assert_check_passes(&self, read_data: bool) {
        let args: &[&str] = if read_data {
            &["check", "--read-data"]
        } else {
            &["check"]
        };
        self.run_ok(args, b"");
    }

    /// The cache's spool folders (where new packs are written before they
    /// go up) exist and hold nothing: spool files are unnamed.
    #[track_caller]
    pub fn assert_spool_empty(&self) {
        let cache = self.dir.path().join("cache");
        let spools: Vec<PathBuf> = std::fs::read_dir(&cache)
            .expect("cache folder")
            .flatten()
            .map(|e| e.path().join("spool"))
            .filter(|p| p.is_dir())
            .collect();
        assert!(!spools.is_empty(), "no spool folder under {cache:?}");
        for spool in spools {
            let left = std::fs::read_dir(&spool).expect("spool folder").count();
            assert_eq!(left, 0, "files left in {spool:?}");
        }
    }

    /// Runs `coffer args...` (fed `input`) dying at failpoint `point` as
    /// if killed, and asserts that it died there.
    #[track_caller]
    pub fn run_killed_at(&self, args: &[&str], point: &str, input: &[u8]) -> Ran {
        let mut cmd = self.command(args);
        cmd.env("COFFER_FAILPOINTS", format!("{point}=kill"));
        let ran = run_with_input(cmd, input);
        assert!(
            std::os::unix::process::ExitStatusExt::signal(&ran.status).is_some(),
            "not killed at {point}:\n{}",
            ran.explain()
        );
        ran
    }

    /// Starts `coffer args...` (fed `input`) that stops at failpoint
    /// `point` until [`Paused::resume`].
    pub fn spawn_paused(&self, args: &[&str], point: &str, input: Vec<u8>) -> Paused {
        self.spawn_paused_with(self.command(args), point, input)
    }

    /// `backup --stdin --json` of `input`, stopped after its packs are
    /// uploaded and before its index is written (it has loaded the index
    /// and chosen what to reuse): the interleavings prune must survive.
    pub fn spawn_paused_backup(&self, input: Vec<u8>) -> Paused {
        self.spawn_paused(
            &["backup", "--stdin", "--json"],
            "backup-before-index",
            input,
        )
    }

    /// [`TestRepo::spawn_paused`] for a command set up by the caller (extra
    /// environment, say).
    pub fn spawn_paused_with(&self, cmd: Command, point: &str, input: Vec<u8>) -> Paused {
        Paused::start(cmd, point, input)
    }

    /// Backs up `input`; returns the parsed `--json` summary.
    pub fn backup(&self, input: &[u8], extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["backup", "--stdin", "--json"];
        args.extend_from_slice(extra);
        self.run_ok(&args, input).json()
    }

    /// Restores a snapshot to bytes (asserting success).
    pub fn restore(&self, snapshot: &str) -> Vec<u8> {
        self.run_ok(&["restore", snapshot], b"").output.stdout
    }

    /// Objects under a repository folder (`data`, `index`, ...): their keys
    /// relative to the repository root and sizes, sorted.
    pub fn objects(&self, folder: &str) -> Vec<(String, u64)> {
        let mut out = match &self.remote {
            None => {
                let mut files = Vec::new();
                collect(&self.repo.join(folder), &mut files);
                files
                    .into_iter()
                    .filter(|p| !p.to_string_lossy().contains('#'))
                    .map(|p| {
                        let key = p
                            .strip_prefix(&self.repo)
                            .expect("inside repo")
                            .to_string_lossy()
                            .into_owned();
                        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                        (key, size)
                    })
                    .collect()
            }
            Some(remote) => block_on(async {
                use futures::TryStreamExt;
                let metas: Vec<_> = remote
                    .list(Some(&ObjectPath::from(folder)))
                    .try_collect()
                    .await
                    .expect("list");
                metas
                    .into_iter()
                    .map(|m| (m.location.to_string(), m.size))
                    .collect::<Vec<_>>()
            }),
        };
        out.sort();
        out
    }

    /// Reads a stored object.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        match &self.remote {
            None => std::fs::read(self.repo.join(key)).expect("read object"),
            Some(remote) => block_on(async {
                let r = remote
                    .get(&ObjectPath::from(key))
                    .await
                    .expect("get object");
                r.bytes().await.expect("object bytes").to_vec()
            }),
        }
    }

    /// Overwrites (or creates) a stored object, as damage would.
    pub fn write_object(&self, key: &str, bytes: &[u8]) {
        match &self.remote {
            None => {
                let path = self.repo.join(key);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, bytes).expect("write object");
            }
            Some(remote) => block_on(async {
                let payload = object_store::PutPayload::from(bytes::Bytes::copy_from_slice(bytes));
                remote
                    .put(&ObjectPath::from(key), payload)
                    .await
                    .expect("put object");
            }),
        }
    }

    /// Deletes a stored object.
    pub fn delete_object(&self, key: &str) {
        match &self.remote {
            None => std::fs::remove_file(self.repo.join(key)).expect("delete object"),
            Some(remote) => block_on(async {
                remote
                    .delete(&ObjectPath::from(key))
                    .await
                    .expect("delete object")
            }),
        }
    }
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Sets a file's modification time (`touch -d`, e.g. "2 days ago"), to
/// make it look old to a prune.
pub fn age_file(path: &Path, ago: &str) {
    let aged = Command::new("touch")
        .args(["-d", ago])
        .arg(path)
        .status()
        .expect("run touch");
    assert!(aged.success(), "touch -d {ago:?} {}", path.display());
}

/// The stream names of a `backup --json` summary or a snapshot's JSON, in
/// order.
pub fn stream_names(summary: &serde_json::Value) -> Vec<String> {
    summary["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("no streams in {summary}"))
        .iter()
        .map(|x| x["name"].as_str().expect("a stream name").to_string())
        .collect()
}

/// The snapshot id in a `backup --json` summary.
pub fn snapshot_id(summary: &serde_json::Value) -> String {
    summary["snapshot_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no snapshot_id in {summary}"))
        .to_string()
}
