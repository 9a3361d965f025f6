//! Command-line arguments. Every global setting also reads the environment
//! variable users of restic-like tools expect (`COFFER_*`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use coffer_core::policy::{Duration, GroupBy};

/// Encrypted, deduplicating backups of database dump streams.
#[derive(Debug, Parser)]
#[command(name = "coffer", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Repository location: a directory, file://PATH, s3://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX, az://CONTAINER/PREFIX, or memory:// (tests)
    #[arg(
        short = 'r',
        long = "repo",
        env = "COFFER_REPOSITORY",
        global = true,
        value_name = "URL"
    )]
    pub repo: Option<String>,
    /// File whose first line is the repository password
    #[arg(long, env = "COFFER_PASSWORD_FILE", global = true, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Command whose first line of output is the repository password (run
    /// with sh -c; e.g. a secret manager's CLI)
    #[arg(
        long,
        env = "COFFER_PASSWORD_COMMAND",
        global = true,
        value_name = "COMMAND",
        conflicts_with = "password_file"
    )]
    pub password_command: Option<String>,
    /// Storage option KEY=VALUE (repeatable): S3/GCS/Azure settings such as
    /// endpoint, region, allow_http, or retry_timeout, max_retries, timeout
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE", value_parser = parse_option)]
    pub options: Vec<(String, String)>,
    /// Keep copies of index and snapshot objects here [default:
    /// $XDG_CACHE_HOME/coffer or ~/.cache/coffer]
    #[arg(long, env = "COFFER_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not use the local cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Most bytes of data blob copies kept in the cache for a repository on
    /// a remote store (delta bases are read from them; 0 keeps none)
    #[arg(long, env = "COFFER_CACHE_LIMIT", global = true, value_name = "SIZE", default_value = "1G", value_parser = parse_cache_limit)]
    pub cache_limit: u64,
    /// Also print the storage requests made (PUT/GET/HEAD/LIST/DELETE, bytes)
    /// and per-stream details on stderr; -vv also what each restore read
    /// and each backup wrote
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing on stderr but errors (no progress, no summary line)
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// A backup running longer than this many seconds re-reads the index
    /// before committing; a prune's non-zero delay must be at least twice
    /// it (tests only; default 1800)
    #[arg(
        long,
        global = true,
        hide = true,
        env = "COFFER_RECHECK_AFTER_SECS",
        default_value_t = coffer_core::repository::RECHECK_AFTER.as_secs()
    )]
    pub recheck_after_secs: u64,
}

fn parse_option(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_ascii_lowercase(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn parse_cache_limit(s: &str) -> Result<u64, String> {
    coffer_core::units::parse_size(s).ok_or_else(|| format!("{s:?} is not a size like 500M or 2G"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
    /// Back up a stream as a new snapshot
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// Print coffer's version and the format versions it writes
    Version,
    /// Print a shell completion script: bash, zsh, fish, elvish or
    /// powershell (e.g. `coffer completion bash > /etc/bash_completion.d/coffer`)
    Completion {
        /// The shell
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write man pages (coffer.1, and coffer-COMMAND.1 for each command)
    /// into a folder
    Man {
        /// The folder (created if missing)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Remove prune locks whose holder is gone (--remove-all: every lock)
    Unlock(UnlockArgs),
    /// Write a snapshot's stream to stdout or a file
    Restore(RestoreArgs),
    /// Copy snapshots into another repository (a second copy of every
    /// backup); snapshots it already has are skipped
    Copy(CopyArgs),
    /// Change snapshots' tags (each snapshot object is rewritten: the new
    /// one is written before the old one is removed)
    Tag(TagArgs),
    /// What snapshots hold and cost: sizes, deduplication and compression
    Stats(StatsArgs),
    /// List a snapshot's streams with their sizes
    Ls(LsArgs),
    /// What changed between two snapshots, stream by stream
    Diff(DiffArgs),
    /// Print a repository object decrypted, as JSON (for debugging)
    Cat(CatArgs),
    /// Remove snapshots by retention policy or by id (data stays until prune)
    Forget(ForgetArgs),
    /// Reclaim the space of data no snapshot uses (two-phase: safe while
    /// backups run)
    Prune(PruneCommandArgs),
    /// Say whether each stream's newest snapshot is recent enough (for
    /// monitoring: exit 23 when one is too old or missing)
    Status(StatusArgs),
    /// Verify the repository; report every problem found
    Check(CheckArgs),
    /// Manage the passwords (key files) that open the repository
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the key files
    List,
    /// Add a password
    Add(NewKeyArgs),
    /// Remove a key file (not the one in use, not the last)
    Remove {
        /// Key id or unique prefix
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Change the password in use (adds the new key, then removes the old)
    Passwd(NewKeyArgs),
}

#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// File whose first line is the new password
    #[arg(long, env = "COFFER_NEW_PASSWORD_FILE", value_name = "PATH")]
    pub new_password_file: Option<PathBuf>,
    #[command(flatten)]
    pub kdf: KdfArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also download every pack and verify every blob in it
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Download and verify a subset of the packs: "10%" (random), "n/t"
    /// (bucket n of t, by pack id; 1/7..7/7 over a week read everything)
    /// or a size, "500M" (random packs holding about that much)
    #[arg(long, value_name = "SUBSET", value_parser = parse_subset)]
    pub read_data_subset: Option<coffer_core::ReadData>,
}

fn parse_subset(s: &str) -> Result<coffer_core::ReadData, String> {
    coffer_core::ReadData::parse_subset(s)
        .ok_or_else(|| format!("{s:?} is neither a percentage (10%), n/t (2/7) nor a size (500M)"))
}

/// How a new password key is derived.
#[derive(Debug, Args)]
pub struct KdfArgs {
    /// Argon2id memory for the password key, in MiB
    #[arg(long, default_value_t = coffer_core::crypto::KdfParams::DEFAULT.memory_kib / 1024, value_name = "MIB")]
    pub kdf_memory: u32,
    /// Argon2id passes
    #[arg(long, default_value_t = coffer_core::crypto::KdfParams::DEFAULT.iterations, value_name = "N")]
    pub kdf_iterations: u32,
    /// Use a deliberately weak, instant key derivation (tests only)
    #[arg(long, hide = true, env = "COFFER_INSECURE_FAST_KDF", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub insecure_fast_kdf: bool,
}

impl KdfArgs {
    /// The Argon2id parameters these flags ask for.
    pub fn params(&self) -> coffer_core::crypto::KdfParams {
        use coffer_core::crypto::KdfParams;
        if self.insecure_fast_kdf {
            KdfParams::INSECURE_FAST
        } else {
            KdfParams {
                memory_kib: self.kdf_memory.saturating_mul(1024),
                iterations: self.kdf_iterations,
                parallelism: KdfParams::DEFAULT.parallelism,
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Target pack size in MiB
    #[arg(long, default_value_t = coffer_core::config::DEFAULT_PACK_SIZE >> 20, value_name = "MIB")]
    pub pack_size: u32,
    /// Default zstd level for new data (1-22)
    #[arg(long, default_value_t = coffer_core::compress::DEFAULT_LEVEL, value_name = "LEVEL")]
    pub compression: i32,
    /// Default for backups: store a changed chunk as a delta against the
    /// previous version of the same stream (auto) or never (off)
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub delta: coffer_core::delta::DeltaMode,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["stdin", "stdin_from_command", "streams", "files"])))]
pub struct BackupArgs {
    /// Read the stream from standard input
    #[arg(long)]
    pub stdin: bool,
    /// Run the command given after `--` and back up its standard output; the
    /// snapshot is written only if it exits with status 0
    #[arg(long, requires = "command")]
    pub stdin_from_command: bool,
    /// The producer command, after `--` (e.g. `-- pg_dump --format=plain app`)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// A named stream from a shell command (repeatable; run one after
    /// another, one snapshot holds them all), e.g. --stream
    /// globals.sql='pg_dumpall --globals-only' --stream app.sql='pg_dump app'
    #[arg(long = "stream", value_name = "NAME=COMMAND", value_parser = parse_stream, conflicts_with_all = ["stdin", "stdin_from_command", "stdin_filename"])]
    pub streams: Vec<(String, String)>,
    /// Back up every regular file under this folder (a `pg_dump -Fd` or
    /// mydumper dump), each as a stream named by its relative path, in one
    /// snapshot
    #[arg(long, value_name = "DIR", conflicts_with_all = ["stdin", "stdin_from_command", "stdin_filename", "streams"])]
    pub files: Option<PathBuf>,
    /// With several --stream producers or --files: read this many at once
    /// (each adds a few MiB of read buffers)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Name recorded for the stream [default: stdin]
    #[arg(long, value_name = "NAME")]
    pub stdin_filename: Option<String>,
    /// Tag the snapshot (repeatable, or comma-separated)
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Host name recorded in the snapshot (default: this machine's)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Snapshot time instead of now: "2024-05-01 02:00:00" (local time) or
    /// RFC 3339 with an offset ("2024-05-01T02:00:00+02:00")
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub time: Option<jiff::Zoned>,
    /// zstd level for this backup (default: the repository's)
    #[arg(long, value_name = "LEVEL")]
    pub compression: Option<i32>,
    /// Store changed chunks as deltas against the previous snapshot of the
    /// same stream and host (auto) or never (off) [default: the
    /// repository's, auto for repositories created by this version]
    #[arg(long, value_name = "MODE")]
    pub delta: Option<coffer_core::delta::DeltaMode>,
    /// Take delta bases from this snapshot (ID prefix or "latest"): its
    /// stream of the same name, or its only stream [default: the previous
    /// snapshot of the same stream and host]
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Store an empty stream instead of failing
    #[arg(long)]
    pub allow_empty: bool,
    /// Packs uploaded in parallel
    #[arg(long, default_value_t = coffer_core::repository::DEFAULT_UPLOAD_CONCURRENCY, value_name = "N")]
    pub connections: usize,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Write Prometheus metrics of this run (success or failure) to this
    /// file, in node-exporter's textfile format
    #[arg(long, env = "COFFER_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Push Prometheus metrics of this run to this Pushgateway
    /// (e.g. http://pushgateway:9091)
    #[arg(long, env = "COFFER_PUSHGATEWAY_URL", value_name = "URL")]
    pub pushgateway: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove every lock, also ones that look held: only when you know the
    /// prune that wrote it is dead
    #[arg(long)]
    pub remove_all: bool,
}

/// Which snapshots a command considers (`forget`, `snapshots`).
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Only consider snapshots of this host (repeatable)
    #[arg(long, value_name = "HOST")]
    pub host: Vec<String>,
    /// Only consider snapshots carrying all of these tags (TAG[,TAG...]; repeatable: any list)
    #[arg(long, value_name = "TAGS")]
    pub tag: Vec<String>,
    /// Only consider snapshots holding a stream of this name (repeatable;
    /// restic's --path)
    #[arg(long, alias = "path", value_name = "NAME")]
    pub name: Vec<String>,
}

impl SelectArgs {
    /// The core's snapshot filter for these flags.
    pub fn filter(&self) -> coffer_core::snapshot::Filter {
        coffer_core::snapshot::Filter {
            hosts: self.host.clone(),
            tags: coffer_core::snapshot::Filter::tag_lists(&self.tag),
            names: self.name.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only the newest N snapshots of each group (see --group-by)
    #[arg(long, value_name = "N")]
    pub latest: Option<usize>,
    /// Groups for --latest: host, tags, name ('' for one group)
    #[arg(short = 'g', long, default_value = "host,name", value_name = "FIELDS")]
    pub group_by: GroupBy,
    /// Fewer columns: id, time, host, name
    #[arg(short = 'c', long)]
    pub compact: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Snapshots to count (ID prefixes or "latest") [default: every
    /// snapshot the filters select]
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// What `total_size` counts in --json: restore-size (bytes a restore
    /// writes) or raw-data (bytes stored, each chunk once), as restic's
    #[arg(long, value_enum, default_value = "restore-size")]
    pub mode: StatsMode,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `stats --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsMode {
    /// Bytes a restore of the streams writes.
    RestoreSize,
    /// Bytes stored for them, each chunk once.
    RawData,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot id (or unique prefix), or "latest"
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier snapshot (ID prefix or "latest")
    #[arg(value_name = "A")]
    pub a: String,
    /// The later snapshot (ID prefix or "latest")
    #[arg(value_name = "B")]
    pub b: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// config, snapshot or index
    #[arg(value_enum, value_name = "WHAT")]
    pub what: CatWhat,
    /// The snapshot or index file (ID prefix; "latest" for a snapshot)
    #[arg(value_name = "ID", required_if_eq_any([("what", "snapshot"), ("what", "index")]))]
    pub id: Option<String>,
}

/// `cat WHAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CatWhat {
    /// The repository configuration.
    Config,
    /// A snapshot.
    Snapshot,
    /// An index file.
    Index,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["add", "remove", "set"])))]
pub struct TagArgs {
    /// Snapshots to change (ID prefixes or "latest")
    #[arg(value_name = "SNAPSHOT", required = true)]
    pub snapshots: Vec<String>,
    /// Add this tag (repeatable, or TAG,TAG)
    #[arg(long, value_name = "TAG", value_delimiter = ',')]
    pub add: Vec<String>,
    /// Remove this tag (repeatable, or TAG,TAG)
    #[arg(long, value_name = "TAG", value_delimiter = ',')]
    pub remove: Vec<String>,
    /// Replace all tags with these (repeatable, or TAG,TAG; "" for none)
    #[arg(long, value_name = "TAG", value_delimiter = ',')]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The repository to copy into (any location --repo takes)
    #[arg(long, env = "COFFER_TO_REPOSITORY", value_name = "LOCATION")]
    pub to: String,
    /// File whose first line is the target repository's password
    /// [or COFFER_TO_PASSWORD]
    #[arg(long, env = "COFFER_TO_PASSWORD_FILE", value_name = "PATH")]
    pub to_password_file: Option<PathBuf>,
    /// Command whose first line of output is the target's password
    #[arg(
        long,
        env = "COFFER_TO_PASSWORD_COMMAND",
        value_name = "COMMAND",
        conflicts_with = "to_password_file"
    )]
    pub to_password_command: Option<String>,
    /// Storage option KEY=VALUE for the target (repeatable; -o applies to
    /// the source only)
    #[arg(long = "to-option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub to_options: Vec<(String, String)>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Snapshots to copy (ID prefixes or "latest") [default: every snapshot
    /// the filters select]
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Say what would be copied, copy nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot id (or unique prefix), or "latest"
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: String,
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write every stream (or the one --stream names) as a file under this
    /// folder, at the path its name gives (a directory dump backed up with
    /// `backup --files`)
    #[arg(long, value_name = "DIR", conflicts_with = "output")]
    pub target: Option<PathBuf>,
    /// With --target: replace files that exist [default: refuse]
    #[arg(long, requires = "target")]
    pub overwrite: bool,
    /// Which stream of the snapshot (needed when it has several); with
    /// "latest", the newest snapshot that has this stream
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,
    /// Only snapshots of this host (with "latest": its newest)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

/// `--time`: local "YYYY-MM-DD HH:MM[:SS]" (as restic takes it), or a
/// timestamp with an offset, which is kept as the snapshot's offset.
fn parse_time(s: &str) -> Result<jiff::Zoned, String> {
    use jiff::fmt::temporal::Pieces;
    let bad = |e: &dyn std::fmt::Display| {
        format!("{s:?} is not a time like \"2024-05-01 02:00:00\" or \"2024-05-01T02:00:00+02:00\" ({e})")
    };
    let pieces = Pieces::parse(s).map_err(|e| bad(&e))?;
    let time = pieces.time().unwrap_or(jiff::civil::Time::midnight());
    let datetime = pieces.date().to_datetime(time);
    let zone = match pieces.offset() {
        Some(jiff::fmt::temporal::PiecesOffset::Zulu) => jiff::tz::TimeZone::UTC,
        Some(jiff::fmt::temporal::PiecesOffset::Numeric(n)) => {
            jiff::tz::TimeZone::fixed(n.offset())
        }
        _ => jiff::tz::TimeZone::system(),
    };
    datetime.to_zoned(zone).map_err(|e| bad(&e))
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshots to remove (ids or unique prefixes); instead of a policy
    #[arg(value_name = "SNAPSHOT", conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within", "keep_within_hourly", "keep_within_daily", "keep_within_weekly", "keep_within_monthly", "keep_within_yearly", "keep_tag"])]
    pub ids: Vec<String>,
    /// Keep the newest N snapshots (-1: all)
    #[arg(short = 'l', long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub keep_last: Option<i32>,
    /// Keep the newest snapshot of each of the last N hours that have one (-1: all)
    #[arg(short = 'H', long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub keep_hourly: Option<i32>,
    /// Keep the newest snapshot of each of the last N days that have one (-1: all)
    #[arg(short = 'd', long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub keep_daily: Option<i32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one (-1: all)
    #[arg(short = 'w', long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub keep_weekly: Option<i32>,
    /// Keep the newest snapshot of each of the last N months that have one (-1: all)
    #[arg(short = 'm', long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub keep_monthly: Option<i32>,
    /// Keep the newest snapshot of each of the last N years that have one (-1: all)
    #[arg(short = 'y', long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub keep_yearly: Option<i32>,
    /// Keep every snapshot newer than the newest one minus DURATION (e.g. 1y5m7d2h)
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<Duration>,
    /// Keep hourly snapshots within DURATION of the newest
    #[arg(long, value_name = "DURATION")]
    pub keep_within_hourly: Option<Duration>,
    /// Keep daily snapshots within DURATION of the newest
    #[arg(long, value_name = "DURATION")]
    pub keep_within_daily: Option<Duration>,
    /// Keep weekly snapshots within DURATION of the newest
    #[arg(long, value_name = "DURATION")]
    pub keep_within_weekly: Option<Duration>,
    /// Keep monthly snapshots within DURATION of the newest
    #[arg(long, value_name = "DURATION")]
    pub keep_within_monthly: Option<Duration>,
    /// Keep yearly snapshots within DURATION of the newest
    #[arg(long, value_name = "DURATION")]
    pub keep_within_yearly: Option<Duration>,
    /// Keep snapshots carrying all of these tags (TAG[,TAG...]; repeatable: any list)
    #[arg(long, value_name = "TAGS")]
    pub keep_tag: Vec<String>,
    /// Apply the policy per group of snapshots sharing these fields: host,
    /// tags, name ('' for one group)
    #[arg(short = 'g', long, default_value = "host,name", value_name = "FIELDS")]
    pub group_by: GroupBy,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Say what would be removed, remove nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Print the decisions as JSON (the shape of restic's `forget --json`)
    #[arg(long)]
    pub json: bool,
    /// Allow a policy to remove every snapshot of a group
    #[arg(long)]
    pub force: bool,
    /// Run `prune` afterwards when snapshots were removed
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub prune_args: PruneArgs,
}

fn parse_stream(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, cmd)) if !name.trim().is_empty() && !cmd.trim().is_empty() => {
            Ok((name.trim().to_string(), cmd.to_string()))
        }
        _ => Err(format!("{s:?} is not NAME=COMMAND")),
    }
}

fn parse_count(s: &str) -> Result<i32, String> {
    match s.parse::<i32>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(format!("{s:?} is not a count (a number, or -1 for all)")),
    }
}

/// Settings shared by `prune` and `forget --prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Unused space tolerated in kept packs before they are repacked: a
    /// percentage of the repository ("5%"), a size ("200M"), or "unlimited"
    #[arg(long, default_value_t = coffer_core::DEFAULT_MAX_UNUSED, value_name = "LIMIT")]
    pub max_unused: coffer_core::MaxUnused,
    /// How long packs wait between being marked unused and being deleted, so
    /// a backup running meanwhile can still use them (e.g. 1d, 12h; 0h only
    /// when no backup can be running)
    #[arg(long, default_value_t = coffer_core::DEFAULT_DELETE_DELAY, value_name = "DURATION")]
    pub delete_delay: Duration,
    /// The delete delay in seconds, overriding --delete-delay (tests only)
    #[arg(long, hide = true, env = "COFFER_DELETE_DELAY_SECS")]
    pub delete_delay_secs: Option<u64>,
    /// Leave delta chains as backups wrote them (by default prune stores
    /// each stream's newest version whole and older versions as deltas
    /// against newer ones)
    #[arg(long)]
    pub no_rebase: bool,
}

#[derive(Debug, Args)]
pub struct PruneCommandArgs {
    #[command(flatten)]
    pub prune: PruneArgs,
    /// Say what would be deleted and repacked, change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Oldest acceptable age of each stream's newest snapshot (e.g. 26h, 8d)
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<Duration>,
    /// Streams that must exist (repeatable; default: every stream seen)
    #[arg(long, value_name = "NAME")]
    pub name: Vec<String>,
    /// Only snapshots of this host (repeatable)
    #[arg(long, value_name = "HOST")]
    pub host: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
