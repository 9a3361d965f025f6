//! The public error type of `coffer-core`: one enum whose variants say what
//! went wrong and which object, path or snapshot it concerns. Turning these
//! into messages and exit codes is the CLI's job.

use std::io;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// There is no repository (no `config` object) at the location.
    #[error("no repository at {location} (run `coffer init` first)")]
    RepositoryNotFound {
        /// The repository location as the user gave it.
        location: String,
    },
    /// The bucket or container named by the location does not exist.
    #[error("bucket {container:?} does not exist ({location}); coffer does not create buckets")]
    ContainerNotFound {
        /// Bucket or container name.
        container: String,
        /// The repository location as the user gave it.
        location: String,
    },
    /// The store refused the credentials or the operation.
    #[error(
        "access denied during {op} of {path} in {location}: check {} ({detail})",
        credential_hint(location)
    )]
    AccessDenied {
        /// The operation.
        op: &'static str,
        /// The repository location.
        location: String,
        /// The object or prefix.
        path: String,
        /// What the store said.
        detail: String,
    },
    /// `init` found an existing repository.
    #[error("a repository already exists at {location}")]
    RepositoryExists {
        /// The repository location as the user gave it.
        location: String,
    },
    /// No key file could be opened with the given password.
    #[error("wrong password: no key in the repository opens with it")]
    WrongPassword,
    /// No snapshot matches the query.
    #[error("no snapshot matches {query:?}")]
    SnapshotNotFound {
        /// What the user asked for (`latest`, an id prefix...).
        query: String,
    },
    /// An id prefix matches more than one snapshot.
    #[error("snapshot id prefix {prefix:?} is ambiguous: it matches {count} snapshots")]
    AmbiguousSnapshot {
        /// The prefix given.
        prefix: String,
        /// How many snapshots it matches.
        count: usize,
    },
    /// No key file matches, or a key id prefix matches several.
    #[error("{0}")]
    KeyNotFound(String),
    /// No index file's id starts with the prefix given.
    #[error("no index file {prefix}... in the repository")]
    IndexNotFound {
        /// The prefix asked for.
        prefix: String,
    },
    /// The snapshot has no stream of that name.
    #[error("snapshot {snapshot} has no stream named {name:?}")]
    StreamNotFound {
        /// Short id of the snapshot.
        snapshot: String,
        /// The stream name asked for.
        name: String,
    },
    /// The input stream was empty and empty streams were not allowed.
    #[error("the input stream is empty: nothing was backed up")]
    EmptyInput,
    /// A stored object failed an integrity check (hash, AEAD tag, length,
    /// structure). Nothing derived from it was output.
    #[error("{object} is corrupt: {reason}")]
    Corrupt {
        /// The object concerned, as a repository path (`data/ab/ab12...`).
        object: String,
        /// What check failed.
        reason: String,
    },
    /// An object the index or a snapshot refers to does not exist.
    #[error("{object} is missing from the repository")]
    Missing {
        /// The object concerned, as a repository path or blob id.
        object: String,
    },
    /// An object was written by a newer format version than this program reads.
    #[error("{object} has format version {version}, this coffer reads up to version {supported}")]
    UnsupportedVersion {
        /// The object concerned.
        object: String,
        /// Its version.
        version: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// The storage ran out of space.
    #[error("storage is full while writing {path}")]
    StorageFull {
        /// Object being written.
        path: String,
    },
    /// A pack's local spool file (in the cache directory) could not be
    /// written or read back.
    #[error(
        "the spool file of a new pack (in the cache directory) failed: {0}; nothing was committed"
    )]
    Spool(#[source] io::Error),
    /// Any other storage failure.
    #[error("storage error during {op} of {path}: {source}")]
    Backend {
        /// The operation (`get`, `put`, `list`...).
        op: &'static str,
        /// The object or prefix.
        path: String,
        /// The underlying object_store error.
        #[source]
        source: object_store::Error,
    },
    /// Reading the input stream failed.
    #[error("reading the input failed: {0}")]
    Input(#[source] io::Error),
    /// The producer command failed or could not start: no snapshot.
    #[error("{0}")]
    Producer(#[source] crate::producer::ProducerError),
    /// Writing the restored stream failed.
    #[error("writing the output failed: {0}")]
    Output(#[source] io::Error),
    /// The repository location is not understood.
    #[error("unsupported repository location {0}")]
    UnsupportedLocation(String),
    /// A concurrent `prune` removed (or marked for removal) data this
    /// command relies on; nothing was committed. Run it again.
    #[error("{0}; nothing was committed, run the backup again")]
    ConcurrentPrune(String),
    /// Another `prune` holds the repository's prune lock.
    #[error("{0}")]
    Locked(String),
    /// A pipeline stage stopped unexpectedly (a bug, or the cause is reported
    /// by another stage).
    #[error("internal error: {0}")]
    Internal(String),
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The command was asked to stop ([`crate::interrupt::request`]) and
    /// stopped at a safe point; nothing was committed after it.
    #[error("interrupted")]
    Interrupted,
}

/// Where to look when a store refuses access, by the location's scheme.
fn credential_hint(location: &str) -> &'static str {
    let scheme = location.split_once("://").map_or("", |(s, _)| s);
    match scheme {
        "s3" | "s3a" => {
            "the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) and the bucket policy"
        }
        "gs" => {
            "the credentials (GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS) \
             and the bucket's IAM roles"
        }
        "az" | "azure" | "abfs" | "abfss" => {
            "the credentials (AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or \
             a SAS token, ...) and the container's permissions"
        }
        _ => "the permissions of the repository's files and folders",
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a [`Error::Corrupt`].
    pub fn corrupt(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            object: object.into(),
            reason: reason.into(),
        }
    }

    /// True when the output stream was closed by the reader (`| head`), which
    /// callers treat as a normal end rather than a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_points_at_the_store_in_use() {
        let denied = |location: &str| {
            Error::AccessDenied {
                op: "put",
                location: location.into(),
                path: "config".into(),
                detail: "403".into(),
            }
            .to_string()
        };
        assert!(denied("s3://b/p").contains("AWS_ACCESS_KEY_ID"));
        assert!(denied("gs://b/p").contains("GOOGLE_APPLICATION_CREDENTIALS"));
        assert!(denied("az://c/p").contains("AZURE_STORAGE_ACCOUNT_KEY"));
        assert!(!denied("az://c/p").contains("AWS_"));
        assert!(denied("/srv/repo").contains("permissions of the repository's files"));
    }
}
