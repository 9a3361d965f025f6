//! Exit codes and one-line error messages. The table here is the one the
//! README documents; tests assert on it.

use coffer_core::Error;

/// Success, also for a restore whose reader closed the pipe early.
pub const SUCCESS: u8 = 0;
/// Any failure without a more specific code.
pub const FAILURE: u8 = 1;
/// Bad arguments (also clap's own code).
pub const USAGE: u8 = 2;
/// The input was empty or could not be read: nothing was backed up.
pub const INPUT: u8 = 3;
/// The producer command failed, was killed or could not start: nothing was
/// backed up.
pub const PRODUCER: u8 = 4;
/// No repository at the location.
pub const NO_REPOSITORY: u8 = 10;
/// Wrong password.
pub const WRONG_PASSWORD: u8 = 12;
/// `init` found a repository already there.
pub const REPOSITORY_EXISTS: u8 = 13;
/// No snapshot (or stream) matches.
pub const NOT_FOUND: u8 = 14;
/// An id prefix matches several snapshots.
pub const AMBIGUOUS: u8 = 15;
/// A stored object is corrupt, truncated or missing.
pub const INTEGRITY: u8 = 16;
/// The restore target cannot be written.
pub const OUTPUT: u8 = 17;
/// The storage failed (permissions, I/O, unreachable).
pub const STORAGE: u8 = 18;
/// The storage is full.
pub const STORAGE_FULL: u8 = 19;
/// The repository was written by a newer coffer.
pub const UNSUPPORTED: u8 = 20;
/// The storage refused the credentials or the operation.
pub const ACCESS_DENIED: u8 = 21;
/// Another prune holds the repository, or a concurrent prune removed data a
/// long backup relied on (nothing was committed; run it again).
pub const CONFLICT: u8 = 22;

/// `status`: a stream's newest snapshot is older than `--max-age`, or
/// missing.
pub const STALE: u8 = 23;
/// Stopped by SIGINT (130) or SIGTERM (143): 128 + the signal's number, as
/// shells report it. (`main` picks the number; this is SIGINT's.)
pub const INTERRUPTED: u8 = 130;

/// A failure the front end finds itself (a bad value after parsing, stale
/// backups), with the exit code it means.
#[derive(Debug)]
pub struct CliFailure {
    pub code: u8,
    pub message: String,
}

impl CliFailure {
    /// A usage problem found after parsing (missing password, bad value).
    pub fn usage(message: String) -> Self {
        CliFailure {
            code: USAGE,
            message,
        }
    }

    /// `status` found a stream without a recent enough snapshot.
    pub fn stale(message: String) -> Self {
        CliFailure {
            code: STALE,
            message,
        }
    }
}

impl std::fmt::Display for CliFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliFailure {}

/// The exit code for an error chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<CliFailure>() {
            return f.code;
        }
        if let Some(e) = cause.downcast_ref::<Error>() {
            return match e {
                e if e.is_broken_pipe() => SUCCESS,
                Error::RepositoryNotFound { .. } | Error::ContainerNotFound { .. } => NO_REPOSITORY,
                Error::AccessDenied { .. } => ACCESS_DENIED,
                Error::Locked(_) | Error::ConcurrentPrune(_) => CONFLICT,
                Error::RepositoryExists { .. } => REPOSITORY_EXISTS,
                Error::WrongPassword => WRONG_PASSWORD,
                Error::SnapshotNotFound { .. }
                | Error::StreamNotFound { .. }
                | Error::KeyNotFound(_)
                | Error::IndexNotFound { .. } => NOT_FOUND,
                Error::AmbiguousSnapshot { .. } => AMBIGUOUS,
                Error::EmptyInput | Error::Input(_) => INPUT,
                Error::Producer(_) => PRODUCER,
                Error::Corrupt { .. } | Error::Missing { .. } => INTEGRITY,
                Error::UnsupportedVersion { .. } => UNSUPPORTED,
                Error::StorageFull { .. } => STORAGE_FULL,
                Error::Spool(io)
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::StorageFull
                            | std::io::ErrorKind::QuotaExceeded
                            | std::io::ErrorKind::FileTooLarge
                    ) =>
                {
                    STORAGE_FULL
                }
                Error::Backend { .. } => STORAGE,
                Error::Output(_) => OUTPUT,
                Error::UnsupportedLocation(_) | Error::InvalidArgument(_) => USAGE,
                Error::Interrupted => INTERRUPTED,
                _ => FAILURE,
            };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return SUCCESS;
            }
        }
    }
    FAILURE
}

/// One line: the context chain down to the first engine error, whose own
/// message already carries the detail that matters.
pub fn message(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<Error>().is_some() {
            break;
        }
    }
    parts.join(": ").replace('\n', " ")
}
