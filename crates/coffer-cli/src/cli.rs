//! Command-line arguments. Every global setting also reads the environment
//! variable users of restic-like tools expect (`COFFER_*`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Storage option KEY=VALUE (repeatable): S3/GCS/Azure settings such as
    /// endpoint, region, allow_http, or retry_timeout, max_retries, timeout
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE", value_parser = parse_option)]
    pub options: Vec<(String, String)>,
    /// Keep copies of index and snapshot objects here [default:
    /// $XDG_CACHE_HOME/coffer or ~/.cache/coffer]
    #[arg(long, env = "COFFER_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not use the local metadata cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Also print the storage requests made (PUT/GET/HEAD/LIST/DELETE, bytes) on stderr
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
}

fn parse_option(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_ascii_lowercase(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
    /// Back up a stream as a new snapshot
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// Write a snapshot's stream to stdout or a file
    Restore(RestoreArgs),
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
    /// Download and verify a subset of the packs: "10%" (random) or "n/t"
    /// (bucket n of t, by pack id; 1/7..7/7 over a week read everything)
    #[arg(long, value_name = "SUBSET", value_parser = parse_subset)]
    pub read_data_subset: Option<coffer_core::ReadData>,
}

fn parse_subset(s: &str) -> Result<coffer_core::ReadData, String> {
    coffer_core::ReadData::parse_subset(s)
        .ok_or_else(|| format!("{s:?} is neither a percentage (10%) nor n/t (2/7)"))
}

/// How a new password key is derived.
#[derive(Debug, Args)]
pub struct KdfArgs {
    /// Argon2id memory for the password key, in MiB
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub kdf_memory: u32,
    /// Argon2id passes
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub kdf_iterations: u32,
    /// Use a deliberately weak, instant key derivation (tests only)
    #[arg(long, env = "COFFER_INSECURE_FAST_KDF", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
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
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub pack_size: u32,
    /// Default zstd level for new data (1-22)
    #[arg(long, default_value_t = 3, value_name = "LEVEL")]
    pub compression: i32,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["stdin", "stdin_from_command"])))]
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
    /// Name recorded for the stream
    #[arg(long, default_value = "stdin", value_name = "NAME")]
    pub stdin_filename: String,
    /// Tag the snapshot (repeatable, or comma-separated)
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Host name recorded in the snapshot (default: this machine's)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// zstd level for this backup (default: the repository's)
    #[arg(long, value_name = "LEVEL")]
    pub compression: Option<i32>,
    /// Store an empty stream instead of failing
    #[arg(long)]
    pub allow_empty: bool,
    /// Packs uploaded in parallel
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub connections: usize,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Print JSON instead of a table
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
    /// Which stream of the snapshot (default: the first)
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,
}
