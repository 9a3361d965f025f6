//! From a repository location and `-o key=value` options to an object store:
//! a path or `file://` (local directory), `s3://bucket/prefix`,
//! `gs://bucket/prefix`, `az://container/prefix`, `memory://`. Credentials
//! and settings come from the environment the way each provider's own tools
//! read them (`AWS_*`, `GOOGLE_*`, `AZURE_*`), then from options. Unknown
//! option keys are errors: object_store itself would silently ignore a typo.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use crate::backend::Kind;
use crate::error::{Error, Result};

/// Where a repository lives, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(String),
    /// An in-process store (tests).
    Memory,
    /// A bucket of an S3-compatible service, with a key prefix.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: String,
        /// The service's URL when the location names it (restic's
        /// `s3:https://host/bucket`); otherwise the environment's or AWS.
        endpoint: Option<String>,
    },
    /// A Google Cloud Storage bucket, with a key prefix.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: String,
    },
    /// An Azure Blob Storage container, with a key prefix.
    Azure {
        /// Container name.
        container: String,
        /// Key prefix inside the container (may be empty).
        prefix: String,
    },
}

impl Location {
    /// Parses a location as users write it.
    pub fn parse(location: &str) -> Result<Self> {
        let bad = |why: &str| Error::UnsupportedLocation(format!("{location:?} ({why})"));
        if location.is_empty() {
            return Err(bad("empty"));
        }
        // `s3:https://...` is restic's form, not a URL with scheme "s3:https".
        let Some((scheme, rest)) = location
            .split_once("://")
            .filter(|(scheme, _)| !scheme.contains(':'))
        else {
            return Self::parse_restic_form(location);
        };
        let bucket_and_prefix = || -> Result<(String, String)> {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket or container"));
            }
            Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
        };
        match scheme {
            "file" if !rest.is_empty() => Ok(Location::Local(rest.to_string())),
            "memory" => Ok(Location::Memory),
            "s3" => bucket_and_prefix().map(|(bucket, prefix)| Location::S3 {
                bucket,
                prefix,
                endpoint: None,
            }),
            "gs" => bucket_and_prefix().map(|(bucket, prefix)| Location::Gcs { bucket, prefix }),
            "az" | "azure" => {
                bucket_and_prefix().map(|(container, prefix)| Location::Azure { container, prefix })
            }
            other => Err(bad(&format!("unknown scheme {other}://"))),
        }
    }

    /// A location without `://`: a path, or one of restic's forms
    /// (`local:/path`, `s3:https://host/bucket/prefix`, `s3:host/bucket`,
    /// `gs:bucket:/prefix`, `azure:container:/prefix`). Any other `word:`
    /// prefix is refused rather than taken as a relative path, so that a
    /// mistyped remote location never silently becomes a local folder (in a
    /// pod, one that vanishes with it).
    fn parse_restic_form(location: &str) -> Result<Self> {
        let bad = |why: &str| Error::UnsupportedLocation(format!("{location:?} ({why})"));
        let word = location.split_once(':').filter(|(w, _)| {
            w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        });
        let Some((word, rest)) = word else {
            return Ok(Location::Local(location.to_string()));
        };
        let bucket_colon_prefix = || -> Result<(String, String)> {
            let (bucket, prefix) = rest.split_once(':').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.contains('/') {
                return Err(bad("write it BUCKET:/PREFIX"));
            }
            Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
        };
        match word {
            "local" if !rest.is_empty() => Ok(Location::Local(rest.to_string())),
            "s3" => {
                let (endpoint, path) = match rest.split_once("://") {
                    Some((scheme @ ("http" | "https"), after)) => {
                        let (host, path) = after.split_once('/').unwrap_or((after, ""));
                        (Some(format!("{scheme}://{host}")), path)
                    }
                    Some(_) => return Err(bad("the endpoint must be http:// or https://")),
                    None => {
                        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                        // restic's plain form names AWS itself by its host.
                        let aws = host == "s3.amazonaws.com";
                        ((!aws).then(|| format!("https://{host}")), path)
                    }
                };
                let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
                if bucket.is_empty() {
                    return Err(bad("no bucket: write s3:https://HOST/BUCKET/PREFIX"));
                }
                Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.trim_matches('/').to_string(),
                    endpoint,
                })
            }
            "gs" => bucket_colon_prefix().map(|(bucket, prefix)| Location::Gcs { bucket, prefix }),
            "azure" => bucket_colon_prefix()
                .map(|(container, prefix)| Location::Azure { container, prefix }),
            "sftp" | "rest" | "b2" | "swift" | "rclone" => Err(bad(&format!(
                "coffer has no {word}: backend; use a local path, s3://, gs:// or az://"
            ))),
            _ => Err(bad(&format!(
                "unknown location type {word}:; a local path containing ':' is written ./{location}"
            ))),
        }
    }

    /// The bucket or container, for messages.
    pub fn container(&self) -> Option<&str> {
        match self {
            Location::S3 { bucket, .. } | Location::Gcs { bucket, .. } => Some(bucket),
            Location::Azure { container, .. } => Some(container),
            _ => None,
        }
    }
}

/// Settings that apply to every remote store: retries and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkOptions {
    /// Most retries of one request.
    pub max_retries: usize,
    /// Longest time spent retrying one request.
    pub retry_timeout: Duration,
    /// Objects at least this large are uploaded in parts (`None`: never).
    pub multipart_threshold: Option<u64>,
}

/// Default [`NetworkOptions::multipart_threshold`]: packs of the default
/// 16 MiB go up in two parts, each retried alone, read one at a time from
/// the pack's spool file (so an upload holds one part in memory, not the
/// pack).
pub const MULTIPART_THRESHOLD: u64 = 8 << 20;

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            multipart_threshold: Some(MULTIPART_THRESHOLD),
        }
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h` or a number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// Splits the network settings (coffer's own keys) from provider keys.
fn network_options(
    options: &[(String, String)],
) -> Result<(NetworkOptions, Vec<(String, String)>)> {
    let mut net = NetworkOptions::default();
    let mut rest = Vec::new();
    for (k, v) in options {
        let dur = || {
            parse_duration(v).ok_or_else(|| {
                invalid(format!(
                    "option {k}: {v:?} is not a duration (e.g. 30s, 2m)"
                ))
            })
        };
        match k.as_str() {
            "retry_timeout" => net.retry_timeout = dur()?,
            "multipart_threshold" => {
                net.multipart_threshold = match v.as_str() {
                    "off" => None,
                    size => Some(
                        crate::units::parse_size(size)
                            .filter(|&n| n >= 5 << 20)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "option multipart_threshold: {v:?} is neither a size of \
                                     at least 5M (S3's smallest part) nor \"off\""
                                ))
                            })?,
                    ),
                }
            }
            "max_retries" => {
                net.max_retries = v
                    .parse()
                    .map_err(|_| invalid(format!("option max_retries: {v:?} is not a number")))?
            }
            _ => rest.push((k.clone(), v.clone())),
        }
    }
    Ok((net, rest))
}

fn retry(net: &NetworkOptions) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: net.max_retries,
        retry_timeout: net.retry_timeout,
    }
}

/// Client settings coffer sets before the environment and `-o` options
/// (which may override them): a stalled connection fails instead of hanging.
const CLIENT_DEFAULTS: [(&str, &str); 2] = [("connect_timeout", "10s"), ("timeout", "300s")];

/// Provider keys in the order they apply: coffer's defaults, then `-o`.
fn provider_keys(provider: &[(String, String)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = CLIENT_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.extend_from_slice(provider);
    all
}

/// Applies coffer's client defaults, then the `-o` keys, to a provider's
/// builder; a key the provider does not know is an error.
fn configure<B, K: std::str::FromStr>(
    mut builder: B,
    provider: &[(String, String)],
    name: &str,
    set: impl Fn(B, K, &str) -> B,
) -> Result<B> {
    for (k, v) in &provider_keys(provider) {
        let key: K = k.parse().map_err(|_| unknown(k, name))?;
        builder = set(builder, key, v);
    }
    Ok(builder)
}

fn unknown(key: &str, provider: &str) -> Error {
    invalid(format!(
        "unknown {provider} option {key:?} (see `coffer --help` for the accepted keys)"
    ))
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// A store built for a location, with how large objects go to it.
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// Objects at least this large are uploaded in parts; `None` for local
    /// directories (a whole file is written and renamed) and memory.
    pub multipart_threshold: Option<u64>,
}

/// Refuses a local repository whose folders (`data`, `data/<xx>`, `index`,
/// ...) are symbolic links: listings follow links, and a prune deleting
/// "leftovers" through a link planted by whoever can write the repository
/// would delete files elsewhere on the host. (The repository's own path
/// may be a link; only what is inside it is checked.)
fn refuse_linked_folders(root: &std::path::Path, raw: &str) -> Result<()> {
    let linked = |p: &std::path::Path| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
    };
    let mut folders: Vec<std::path::PathBuf> =
        Kind::ALL.iter().map(|k| root.join(k.folder())).collect();
    if let Ok(entries) = std::fs::read_dir(root.join("data")) {
        folders.extend(entries.flatten().map(|e| e.path()));
    }
    match folders.into_iter().find(|f| linked(f)) {
        None => Ok(()),
        Some(f) => Err(Error::UnsupportedLocation(format!(
            "{raw}: {} is a symbolic link; coffer does not follow links inside a repository",
            f.display()
        ))),
    }
}

/// Builds the store for a location. `create` makes a missing local directory
/// (for `init`); remote buckets are never created by coffer.
pub fn open_store(
    location: &Location,
    raw: &str,
    create: bool,
    options: &[(String, String)],
) -> Result<OpenedStore> {
    let (net, provider) = network_options(options)?;
    let local = |store: Arc<dyn ObjectStore>| OpenedStore {
        store,
        multipart_threshold: None,
    };
    let remote = |store: Arc<dyn ObjectStore>, prefix: &str| OpenedStore {
        store: with_prefix(store, prefix),
        multipart_threshold: net.multipart_threshold,
    };
    let build_err =
        |e: object_store::Error| invalid(format!("cannot configure storage for {raw}: {e}"));
    macro_rules! build_remote {
        ($builder:ident, $key:ty, $label:literal, $with_name:ident, $name:expr) => {{
            let b = configure($builder::from_env(), &provider, $label, |b, k: $key, v| {
                b.with_config(k, v)
            })?;
            let store = b
                .$with_name($name)
                .with_retry(retry(&net))
                .build()
                .map_err(build_err)?;
            Arc::new(store) as Arc<dyn ObjectStore>
        }};
    }
    match location {
        Location::Memory => {
            if let Some((k, _)) = provider.first() {
                return Err(unknown(k, "memory"));
            }
            Ok(local(Arc::new(InMemory::new())))
        }
        Location::Local(dir) => {
            if let Some((k, _)) = provider.first() {
                return Err(unknown(k, "local"));
            }
            let not_found = || Error::RepositoryNotFound {
                location: raw.to_string(),
            };
            if std::path::Path::new(dir).is_file() {
                return Err(Error::UnsupportedLocation(format!(
                    "{raw} (a file, not a repository directory)"
                )));
            }
            if create {
                std::fs::create_dir_all(dir).map_err(|e| Error::Backend {
                    op: "create directory",
                    path: dir.to_string(),
                    source: object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: Box::new(e),
                    },
                })?;
            } else if !std::path::Path::new(dir).is_dir() {
                return Err(not_found());
            }
            refuse_linked_folders(std::path::Path::new(dir), raw)?;
            // fsync: an object reported stored survives power loss, not only a crash.
            let fs = LocalFileSystem::new_with_prefix(dir)
                .map_err(|_| not_found())?
                .with_fsync(true);
            Ok(local(Arc::new(fs)))
        }
        // The three providers' builders share no trait: one macro spells
        // their common steps (settings, name, retries, build) once.
        Location::S3 {
            bucket,
            prefix,
            endpoint,
        } => {
            let mut builder = configure(
                AmazonS3Builder::from_env(),
                &provider,
                "S3",
                |b, k: AmazonS3ConfigKey, v| b.with_config(k, v),
            )?;
            // The location's own endpoint wins over the environment's.
            if let Some(url) = endpoint {
                builder = builder
                    .with_endpoint(url)
                    .with_allow_http(url.starts_with("http://"));
            }
            let store = builder
                .with_bucket_name(bucket)
                .with_retry(retry(&net))
                .build()
                .map_err(build_err)?;
            Ok(remote(Arc::new(store), prefix))
        }
        Location::Gcs { bucket, prefix } => Ok(remote(
            build_remote!(
                GoogleCloudStorageBuilder,
                GoogleConfigKey,
                "GCS",
                with_bucket_name,
                bucket
            ),
            prefix,
        )),
        Location::Azure { container, prefix } => Ok(remote(
            build_remote!(
                MicrosoftAzureBuilder,
                AzureConfigKey,
                "Azure",
                with_container_name,
                container
            ),
            prefix,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("/srv/repo").unwrap(),
            Location::Local("/srv/repo".into())
        );
        assert_eq!(
            Location::parse("file:///srv/repo").unwrap(),
            Location::Local("/srv/repo".into())
        );
        assert_eq!(
            Location::parse("s3://bkt/a/b/").unwrap(),
            Location::S3 {
                bucket: "bkt".into(),
                prefix: "a/b".into(),
                endpoint: None,
            }
        );
        assert_eq!(
            Location::parse("gs://bkt").unwrap(),
            Location::Gcs {
                bucket: "bkt".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Location::parse("az://c/p").unwrap(),
            Location::Azure {
                container: "c".into(),
                prefix: "p".into()
            }
        );
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("ftp://x/y").is_err());
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn restics_location_forms_map_and_other_prefixes_are_refused() {
        let s3 = |bucket: &str, prefix: &str, endpoint: Option<&str>| Location::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: endpoint.map(String::from),
        };
        let parse = |s: &str| Location::parse(s).unwrap();
        assert_eq!(
            parse("local:/srv/repo"),
            Location::Local("/srv/repo".into())
        );
        assert_eq!(
            parse("s3:https://minio.lan:9000/bkt/a/b"),
            s3("bkt", "a/b", Some("https://minio.lan:9000"))
        );
        assert_eq!(
            parse("s3:http://127.0.0.1:18333/bkt"),
            s3("bkt", "", Some("http://127.0.0.1:18333"))
        );
        assert_eq!(parse("s3:s3.amazonaws.com/bkt/p"), s3("bkt", "p", None));
        assert_eq!(
            parse("s3:storage.example/bkt"),
            s3("bkt", "", Some("https://storage.example"))
        );
        assert_eq!(
            parse("gs:bkt:/a/b"),
            Location::Gcs {
                bucket: "bkt".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            parse("azure:ctr:/p"),
            Location::Azure {
                container: "ctr".into(),
                prefix: "p".into()
            }
        );
        // Paths stay paths, colons and all, when they do not start with a word.
        assert_eq!(parse("./a:b"), Location::Local("./a:b".into()));
        assert_eq!(parse("/mnt/x:y"), Location::Local("/mnt/x:y".into()));
        assert_eq!(parse("backups"), Location::Local("backups".into()));
        for refused in [
            "sftp:host:/x",
            "rest:http://h/",
            "b2:bucket:/p",
            "swift:c:/p",
            "rclone:remote:p",
            "foo:bar",
            "s3:ftp://h/b",
            "s3:",
            "gs:bkt/p",
            "local:",
        ] {
            assert!(
                matches!(Location::parse(refused), Err(Error::UnsupportedLocation(_))),
                "{refused} accepted"
            );
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("3x"), None);
    }

    #[test]
    fn unknown_option_keys_are_rejected() {
        let s3 = Location::parse("s3://bucket/p").unwrap();
        let opts = |k: &str| vec![(k.to_string(), "x".to_string())];
        assert!(open_store(&s3, "s3://bucket/p", false, &opts("endpointt")).is_err());
        assert!(open_store(
            &s3,
            "s3://bucket/p",
            false,
            &[
                ("endpoint".into(), "http://127.0.0.1:1".into()),
                ("allow_http".into(), "true".into())
            ]
        )
        .is_ok());
        assert!(open_store(&Location::Memory, "memory://", false, &opts("region")).is_err());
        assert!(
            open_store(&s3, "s3://bucket/p", false, &opts("retry_timeout")).is_err(),
            "x is not a duration"
        );
    }
}
