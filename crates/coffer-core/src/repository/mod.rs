//! Orchestration: creating and unlocking a repository, reading and writing
//! its sealed metadata objects and snapshots; the submodules carry out each
//! command. This is where the write-ordering rule lives: data packs, then
//! the index file that names them, then the snapshot; a reader never sees a
//! snapshot whose data is missing.
//!
//! Submodules, one mechanism each:
//! * `index_files`: listing, reading and resolving index files, the live
//!   index, planning the next index write;
//! * `blobs`: opening blobs from pack bytes with every check, where the
//!   index places them (`blobs::BlobReader`);
//! * `pack_sink`: filling data and tree packs, shipping full ones;
//! * `backup`, `restore`, `check`, `prune`, `copy`: the commands' pipelines
//!   (prune's decisions are a pure plan in `prune::plan`);
//! * `lock`: the prune lock; `passwords`: key files of a repository.

mod backup;
mod base_prefetch;
mod blobs;
mod check;
mod copy;
mod index_files;
mod inspect;
mod lock;
mod pack_sink;
mod passwords;
mod pipe;
mod prune;
mod read_ahead;
mod restore;
mod simulate;
mod sketches;
mod used_keys;

pub use backup::{
    BackupOptions, BackupSummary, OpenStream, DEFAULT_UPLOAD_CONCURRENCY, RECHECK_AFTER,
};
pub use check::{CheckOptions, CheckReport, Problem, ReadData};
pub use inspect::{Stats, StreamDiff};
pub use lock::{UnlockReport, LOCK_REFRESH, LOCK_STALE};
pub use passwords::KeyInfo;
pub use prune::{MaxUnused, PruneOptions, PruneReport, DEFAULT_DELETE_DELAY, DEFAULT_MAX_UNUSED};
pub use restore::{RestoreSummary, Restorer};
pub use simulate::{Simulated, BLOBS_PER_PACK};

pub(crate) use index_files::LiveIndex;

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::backend::{object_path, Backend, Kind, Put, CONFIG_PATH};
use crate::cache::{BlobCopies, Cache};
use crate::chunker::ChunkerParams;
use crate::index::BlobMap;
use blobs::BlobReader;

use crate::config::{RepoConfig, REPO_VERSION};
use crate::crypto::{KdfParams, MasterKey};
use crate::delta::DeltaMode;
use crate::error::{Error, Result};
use crate::id::{content_hash, KeyId, SnapshotId};
use crate::index::IndexedPack;
use crate::keys;
use crate::object::{self, ObjectType};
use crate::pack::{BlobKind, FinishedPack};
use crate::snapshot::Snapshot;

/// Key files looked at when opening (the oldest).
const MAX_KEY_FILES: usize = 256;
/// Key files whose password derivation is tried when opening.
const MAX_KEYS_TRIED: usize = 32;
/// A key file is a few hundred bytes; anything much larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Parallel GETs when loading many small metadata objects.
const METADATA_CONCURRENCY: usize = 8;

/// Settings for a new repository.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Argon2id costs of the first key.
    pub kdf: KdfParams,
    /// Chunk sizes.
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Default zstd level.
    pub compression_level: i32,
    /// Default delta mode of backups.
    pub delta: DeltaMode,
}

impl Default for InitOptions {
    fn default() -> Self {
        let c = RepoConfig::default();
        InitOptions {
            kdf: KdfParams::DEFAULT,
            chunker: c.chunker,
            pack_size: c.pack_size,
            compression_level: c.compression_level,
            delta: c.delta,
        }
    }
}

/// Who is acting: recorded in key files and snapshots.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Host name.
    pub host: String,
    /// User name.
    pub user: String,
}

/// An unlocked repository.
pub struct Repository {
    backend: Backend,
    key: Arc<MasterKey>,
    config: RepoConfig,
    key_id: KeyId,
    cache: Option<Cache>,
    /// Local copies of data blobs (remote stores only; see [`BlobCopies`]).
    blob_copies: Option<Arc<BlobCopies>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.backend.location())
    }
}

fn now_unix_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// Seals a metadata object and writes it under the hash of its bytes;
/// returns the hash and length. (A free function so that tasks holding only
/// the storage and key, like the prune lock's refresher, can use it.)
async fn write_sealed(
    backend: &Backend,
    key: &MasterKey,
    kind: Kind,
    otype: ObjectType,
    payload: &[u8],
) -> Result<([u8; 32], u64)> {
    let sealed = object::seal(key, otype, payload);
    let hash = content_hash(&sealed);
    let len = sealed.len() as u64;
    backend
        .put_new(&object_path(kind, &hex::encode(hash)), sealed.into())
        .await?;
    Ok((hash, len))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

impl Repository {
    /// Creates a repository: a first key file, then the `config` object. A
    /// crash between the two leaves no config, i.e. no repository; `init`
    /// can simply be run again.
    pub async fn init(
        backend: Backend,
        password: &[u8],
        opts: InitOptions,
        actor: &Actor,
    ) -> Result<Self> {
        if backend.get_opt(CONFIG_PATH).await?.is_some() {
            return Err(Error::RepositoryExists {
                location: backend.location().to_string(),
            });
        }
        let config = RepoConfig::new(
            opts.chunker,
            opts.pack_size,
            opts.compression_level,
            opts.delta,
        );
        config.validate().map_err(Error::InvalidArgument)?;
        let key = MasterKey::generate();
        let (key_id, key_bytes) = {
            let (key, password, actor) = (key.clone(), password.to_vec(), actor.clone());
            blocking(move || {
                keys::create(
                    &key,
                    &password,
                    opts.kdf,
                    &actor.host,
                    &actor.user,
                    now_unix_ns(),
                )
            })
            .await
            .map_err(Error::InvalidArgument)?
        };
        backend
            .put_new(&object_path(Kind::Key, &key_id.to_hex()), key_bytes.into())
            .await?;
        let payload = config
            .encode()
            .map_err(|e| Error::corrupt(CONFIG_PATH, e))?;
        let sealed = object::seal_envelope(
            &key,
            ObjectType::Config,
            &payload,
            object::CONFIG_V2_ENVELOPE,
        );
        if backend.put_new(CONFIG_PATH, sealed.into()).await? == Put::Existed {
            return Err(Error::RepositoryExists {
                location: backend.location().to_string(),
            });
        }
        Ok(Repository {
            backend,
            key: Arc::new(key),
            config,
            key_id,
            cache: None,
            blob_copies: None,
        })
    }

    /// Opens a repository with a password: tries every key file, then
    /// decrypts `config` with the master key found.
    pub async fn open(backend: Backend, password: &[u8]) -> Result<Self> {
        let Some(config_bytes) = backend.get_opt(CONFIG_PATH).await? else {
            backend.check_container().await?;
            return Err(Error::RepositoryNotFound {
                location: backend.location().to_string(),
            });
        };
        let mut listed = backend.list_with_times(Kind::Key).await?;
        if !config_bytes.starts_with(object::OBJECT_MAGIC) {
            return Err(Self::foreign_repository(&backend, &listed).await);
        }
        if listed.is_empty() {
            return Err(Error::corrupt("keys/", "the repository has no key files"));
        }
        // Oldest first: the keys a repository was made with come before any
        // added (or planted) later; and only so many are looked at.
        listed.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        if config_bytes.len() > 4
            && &config_bytes[..4] == object::OBJECT_MAGIC
            && config_bytes[4] > object::CONFIG_V2_ENVELOPE
        {
            return Err(Error::UnsupportedVersion {
                object: CONFIG_PATH.into(),
                version: config_bytes[4] as u32,
                supported: object::CONFIG_V2_ENVELOPE as u32,
            });
        }
        // Precedence of failures: a config that the unlocked master key
        // cannot open, then a wrong password, then damaged key files.
        let mut last_corrupt = None;
        let mut config_unopened = None;
        let mut candidates = Vec::new();
        for (name, _, size) in listed.into_iter().take(MAX_KEY_FILES) {
            let path = object_path(Kind::Key, &name);
            if size > MAX_KEY_FILE_BYTES {
                last_corrupt = Some(Error::corrupt(path, "larger than any key file"));
                continue;
            }
            let bytes = backend.get(&path).await?;
            let parsed = if hex::encode(content_hash(&bytes)) != name {
                Err("content does not match its name".to_string())
            } else {
                keys::parse(&bytes).and_then(|b| b.kdf.check().map(|()| b))
            };
            match parsed {
                Ok(body) => candidates.push((name, path, body)),
                Err(reason) => last_corrupt = Some(Error::corrupt(path, reason)),
            }
        }
        let parsed_any = !candidates.is_empty();
        // The cheapest derivations first, and a bounded number of them: a
        // pile of expensive planted key files cannot hold `open` for long.
        candidates.sort_by_key(|(_, _, body)| body.kdf.work());
        for (name, path, body) in candidates.into_iter().take(MAX_KEYS_TRIED) {
            let pw = password.to_vec();
            let unlocked = blocking(move || keys::unlock(&body, &pw)).await;
            let key = match unlocked {
                Ok(Some(k)) => k,
                Ok(None) => continue,
                Err(reason) => {
                    last_corrupt = Some(Error::corrupt(path, reason));
                    continue;
                }
            };
            // A key left behind by an interrupted `init` unlocks a master key
            // that does not open this config: skip it.
            let plain = match object::open(&key, ObjectType::Config, &config_bytes) {
                Ok(plain) => plain,
                Err(reason) => {
                    config_unopened = Some(reason);
                    continue;
                }
            };
            let config = match RepoConfig::decode(&plain) {
                Ok(c) => c,
                Err(Ok(version)) => {
                    return Err(Error::UnsupportedVersion {
                        object: CONFIG_PATH.into(),
                        version,
                        supported: REPO_VERSION,
                    })
                }
                Err(Err(e)) => return Err(Error::corrupt(CONFIG_PATH, e)),
            };
            config
                .validate()
                .map_err(|e| Error::corrupt(CONFIG_PATH, e))?;
            let key_id = KeyId::from_hex(&name)
                .ok_or_else(|| Error::Internal(format!("listed key name {name} is not an id")))?;
            return Ok(Repository {
                backend,
                key: Arc::new(key),
                config,
                key_id,
                cache: None,
                blob_copies: None,
            });
        }
        if let Some(reason) = config_unopened {
            return Err(Error::corrupt(
                CONFIG_PATH,
                format!("it does not open with the key this password unlocks: {reason}"),
            ));
        }
        Err(match last_corrupt {
            Some(e) if !parsed_any => e,
            _ => Error::WrongPassword,
        })
    }

    /// The error for a `config` that is not coffer's: restic's repositories
    /// share the layout (their key files are JSON), others are damage.
    async fn foreign_repository(backend: &Backend, keys: &[(String, i64, u64)]) -> Error {
        let mut restic = false;
        if let Some((name, _, _)) = keys.first() {
            if let Ok(bytes) = backend.get(&object_path(Kind::Key, name)).await {
                restic = bytes.starts_with(b"{") && bytes.windows(6).any(|w| w == b"scrypt");
            }
        }
        if restic {
            return Error::UnsupportedLocation(format!(
                "{} (a restic repository: coffer opens only its own; use restic there)",
                backend.location()
            ));
        }
        Error::corrupt(CONFIG_PATH, "not a coffer config object (bad magic bytes)")
    }

    /// Keeps copies of index and snapshot objects under `root` (see
    /// [`Cache`]), so later commands do not download them again; and, for
    /// a repository on a remote store, up to `blob_limit` bytes of copies of
    /// data blobs, which delta bases are read from (see [`BlobCopies`]; 0
    /// keeps none). A local repository's blobs are not copied: reading them
    /// costs what reading a copy would.
    pub fn use_cache(&mut self, root: impl Into<std::path::PathBuf>, blob_limit: u64) {
        let cache = Cache::new(root, &self.config.id);
        self.blob_copies = (blob_limit > 0 && !self.backend.is_local())
            .then(|| Arc::new(cache.blob_copies(blob_limit)));
        self.cache = Some(cache);
    }

    /// The repository configuration.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The storage.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Id of the key file that opened the repository.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Stores a finished pack under its id; returns its index entry. In a
    /// repository with deltas, keeps local copies of its data blobs once it
    /// is stored: they are the next backup's bases.
    async fn store_pack(&self, pack: FinishedPack) -> Result<IndexedPack> {
        let FinishedPack {
            id,
            salt,
            body,
            blobs,
            bases,
        } = pack;
        let size = body.len();
        let copies = self
            .blob_copies
            .clone()
            .filter(|_| self.config.has_deltas() && self.config.delta == DeltaMode::Auto);
        // The body is still needed for the copies after the upload.
        let kept = match copies {
            Some(_) => Some(body.try_clone().map_err(Error::Spool)?),
            None => None,
        };
        self.backend
            .put_new_pack(&object_path(Kind::Pack, &id.to_hex()), body)
            .await?;
        let indexed = IndexedPack {
            id,
            salt,
            size,
            blobs,
            bases,
        };
        Ok(match (copies, kept) {
            (Some(copies), Some(body)) => {
                blocking(move || {
                    let data = BlobKind::Data as u8;
                    for b in indexed.blobs.iter().filter(|b| b.kind == data) {
                        // A copy is an optimisation: one that cannot be read
                        // back is skipped, as a full cache would skip it.
                        if let Ok(sealed) = body.read_range(b.range()) {
                            copies.put(&indexed.id, b.range().start, &sealed);
                        }
                    }
                    indexed
                })
                .await
            }
            _ => indexed,
        })
    }

    /// Where new data packs spool while they are written and uploaded: a
    /// folder of the cache directory (none without a cache: in memory).
    fn spool_dir(&self) -> Option<std::path::PathBuf> {
        self.cache.as_ref().and_then(Cache::spool_dir)
    }

    /// The blob reader over `index`, reading bases through the local blob
    /// copies when there are any.
    fn blob_reader(&self, index: Arc<BlobMap>) -> BlobReader {
        BlobReader::new(
            self.backend.clone(),
            self.key.clone(),
            index,
            self.blob_copies.clone(),
        )
    }

    /// Reads a content-named object and checks its bytes hash to its name.
    async fn read_named(&self, kind: Kind, name: &str, cached: bool) -> Result<(String, Bytes)> {
        let path = object_path(kind, name);
        let cacheable = cached && matches!(kind, Kind::Index | Kind::Snapshot);
        if let Some(hit) = self
            .cache
            .as_ref()
            .filter(|_| cacheable)
            .and_then(|c| c.get(kind, name))
        {
            return Ok((path, Bytes::from(hit)));
        }
        let bytes = self.backend.get(&path).await?;
        if hex::encode(content_hash(&bytes)) != name {
            return Err(Error::corrupt(
                path,
                "content does not match its name (damaged in storage)",
            ));
        }
        if let Some(cache) = self.cache.as_ref().filter(|_| cacheable) {
            cache.put(kind, name, &bytes);
        }
        Ok((path, bytes))
    }

    /// Seals a metadata object and writes it under the hash of its bytes.
    async fn write_named(
        &self,
        kind: Kind,
        otype: ObjectType,
        payload: &[u8],
    ) -> Result<([u8; 32], u64)> {
        write_sealed(&self.backend, &self.key, kind, otype, payload).await
    }

    /// Reads a content-named object of one of the `types` (the first when
    /// its type byte names none of them); returns the type and payload.
    async fn read_sealed(
        &self,
        kind: Kind,
        types: &'static [ObjectType],
        name: String,
        cached: bool,
    ) -> Result<(ObjectType, Vec<u8>)> {
        let (path, bytes) = self.read_named(kind, &name, cached).await?;
        let key = self.key.clone();
        blocking(move || {
            let found = object::type_byte(&bytes);
            let otype = *types
                .iter()
                .find(|t| Some(**t as u8) == found)
                .unwrap_or(&types[0]);
            object::open(&key, otype, &bytes)
                .map(|plain| (otype, plain))
                .map_err(|e| Error::corrupt(path, e))
        })
        .await
    }

    /// Writes a snapshot (after its index is stored).
    pub(crate) async fn write_snapshot(&self, snap: &Snapshot) -> Result<(SnapshotId, u64)> {
        let (otype, payload) = snap.encode(self.config.has_deltas());
        let payload = payload.map_err(|e| {
            Error::InvalidArgument(format!("the snapshot is too large to store: {e}"))
        })?;
        let (hash, len) = self.write_named(Kind::Snapshot, otype, &payload).await?;
        Ok((SnapshotId(hash), len))
    }

    /// Reads and decodes one snapshot object.
    pub(crate) async fn read_snapshot(
        &self,
        name: String,
        cached: bool,
    ) -> Result<(SnapshotId, Snapshot)> {
        let path = object_path(Kind::Snapshot, &name);
        let id = SnapshotId::from_hex(&name)
            .ok_or_else(|| Error::corrupt(path.clone(), "name is not a snapshot id"))?;
        let (otype, plain) = self
            .read_sealed(
                Kind::Snapshot,
                &[ObjectType::SnapshotV2, ObjectType::Snapshot],
                name,
                cached,
            )
            .await?;
        let snap = Snapshot::decode(otype, &plain).map_err(|e| Error::corrupt(path, e))?;
        Ok((id, snap))
    }

    /// All snapshots, oldest first.
    pub async fn list_snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let names = self.backend.list(Kind::Snapshot).await?;
        if let Some(cache) = &self.cache {
            cache.retain(Kind::Snapshot, &names);
        }
        let mut snaps: Vec<(SnapshotId, Snapshot)> = futures::stream::iter(names)
            .map(|name| self.read_snapshot(name, true))
            .buffer_unordered(METADATA_CONCURRENCY)
            .try_collect()
            .await?;
        snaps.sort_by_key(|(id, s)| (s.time_unix_ns, *id));
        Ok(snaps)
    }
}

impl Repository {
    /// Rewrites snapshot `id` (whose contents are `snap`) with the tags
    /// `change` gives it: the new snapshot object is written first, then
    /// the old one deleted, so a crash in between leaves both, never
    /// neither. Returns the new id, or `None` when the tags stay the same.
    pub async fn retag(
        &self,
        id: &SnapshotId,
        snap: &Snapshot,
        change: &crate::snapshot::TagChange,
    ) -> Result<Option<SnapshotId>> {
        let tags = change.apply(&snap.tags);
        if tags == snap.tags {
            return Ok(None);
        }
        let new = Snapshot {
            tags,
            ..snap.clone()
        };
        let (new_id, _) = self.write_snapshot(&new).await?;
        crate::failpoint::reach("tag-wrote-new");
        if new_id != *id {
            self.forget(std::slice::from_ref(id)).await?;
        }
        Ok(Some(new_id))
    }

    /// Deletes snapshot objects (the data they alone referenced stays until
    /// `prune`). Each deletion is independent: a crash part-way leaves the
    /// remaining snapshots intact, and running `forget` again finishes.
    pub async fn forget(&self, ids: &[SnapshotId]) -> Result<()> {
        for id in ids {
            self.backend
                .delete(&object_path(Kind::Snapshot, &id.to_hex()))
                .await?;
            if let Some(cache) = &self.cache {
                cache.remove(Kind::Snapshot, &id.to_hex());
            }
            crate::failpoint::reach("forget-deleted-one");
        }
        Ok(())
    }
}

/// A fresh repository in memory, for unit tests.
#[cfg(test)]
pub(crate) async fn memory_repo() -> Repository {
    let store = Arc::new(object_store::memory::InMemory::new());
    test_repo_on(Backend::new(store, "memory://")).await
}

/// A fresh repository on `backend` (fast key, password "pw"), for unit tests.
#[cfg(test)]
pub(crate) async fn test_repo_on(backend: Backend) -> Repository {
    let opts = InitOptions {
        kdf: KdfParams::INSECURE_FAST,
        ..InitOptions::default()
    };
    let actor = Actor {
        host: "h".into(),
        user: "u".into(),
    };
    Repository::init(backend, b"pw", opts, &actor)
        .await
        .expect("a repository for a test")
}
