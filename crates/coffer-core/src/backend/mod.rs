//! Storage access over `object_store`: which path each object kind lives
//! under, write-once puts, whole and ranged reads, listing, and turning store
//! errors into [`Error`]s that name the object. Moves bytes only. The store
//! behind it is chosen by the location ([`location`]) and every request is
//! counted ([`counting`]). (Over 600 lines: the listing rules that keep
//! planted files out and a local repository's staging files live here too,
//! next to the reads and writes they guard.)

pub mod counting;
pub mod location;

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload,
};

use crate::error::{Error, Result};
use crate::pack::PackBody;
use counting::{CountingStore, RequestCounts, RequestStats};
use location::Location;

/// The object kinds and their folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `keys/<id>`
    Key,
    /// `data/<2 hex>/<id>`
    Pack,
    /// `index/<id>`
    Index,
    /// `snapshots/<id>`
    Snapshot,
    /// `locks/<id>`
    Lock,
}

impl Kind {
    /// Every kind, for walking a repository's folders.
    pub const ALL: [Kind; 5] = [
        Kind::Key,
        Kind::Pack,
        Kind::Index,
        Kind::Snapshot,
        Kind::Lock,
    ];

    /// The repository folder holding objects of this kind.
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Key => "keys",
            Kind::Pack => "data",
            Kind::Index => "index",
            Kind::Snapshot => "snapshots",
            Kind::Lock => "locks",
        }
    }
}

/// Whether a write-once put created the object or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// We wrote it.
    Created,
    /// An object with that name existed; content-named objects are then
    /// identical, so this is success.
    Existed,
}

/// A repository's storage.
#[derive(Clone)]
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    location: String,
    container: Option<String>,
    stats: Arc<RequestStats>,
    /// Remote stores upload objects this large in parts.
    multipart_threshold: Option<usize>,
    /// The folder of a local repository (for its staging files).
    local_root: Option<std::path::PathBuf>,
}

/// A folder's listing: coffer's objects, and what else lies there.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Objects: name, last modified (Unix ms), size.
    pub objects: Vec<(String, i64, u64)>,
    /// Paths of everything else, sorted.
    pub strays: Vec<String>,
}

/// A staging file a local write left behind when it was interrupted
/// (`data/<xx>/<id>#<n>`, written, then renamed into place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingFile {
    /// Its path inside the repository.
    pub path: String,
    /// Last modified (Unix ms).
    pub modified_ms: i64,
    /// Size in bytes.
    pub size: u64,
}

/// Largest part of a multipart upload: S3 wants parts of at least 5 MiB
/// (but the last) and at most 10,000 of them. An object is cut into equal
/// parts of at most this size: a default pack (a little over 16 MiB) in
/// two, the largest pack (1 GiB) in 103.
const MAX_PART: u64 = 10 << 20;
/// Parts of one object in memory uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;
/// A local repository writes objects this large in parts too, so a spooled
/// pack is never read whole into memory.
const LOCAL_PARTS_FROM: usize = 8 << 20;

/// Reads `range` of a spooled pack off the async threads.
async fn blocking_read(body: &Arc<PackBody>, range: Range<u64>) -> Result<Bytes> {
    let body = body.clone();
    tokio::task::spawn_blocking(move || body.read_range(range))
        .await
        .map_err(|e| Error::Internal(format!("a spool read panicked: {e}")))?
        .map_err(Error::Spool)
}

/// Length of each part (the last may be shorter) of an object of `len`
/// bytes.
fn part_len(len: u64) -> u64 {
    len.div_ceil(len.div_ceil(MAX_PART).max(1)).max(1)
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend({})", self.location)
    }
}

/// Repository path of the config object.
pub const CONFIG_PATH: &str = "config";

/// Repository path of an object (as shown in messages).
pub fn object_path(kind: Kind, hex: &str) -> String {
    match kind {
        Kind::Pack => format!("data/{}/{hex}", hex.get(..2).unwrap_or(hex)),
        _ => format!("{}/{hex}", kind.folder()),
    }
}

/// True for a name coffer writes: 64 lowercase hex digits (a content hash).
pub fn is_object_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn names_missing_container(e: &object_store::Error) -> bool {
    mentions_any(
        e,
        &[
            "NoSuchBucket",
            "ContainerNotFound",
            "The specified bucket does not exist",
        ],
    )
}

/// Whether a generic error is a refusal: object_store reports a denied
/// delete inside an Azure batch as a generic error carrying the 403.
fn names_refusal(e: &object_store::Error) -> bool {
    mentions_any(
        e,
        &[
            "(code: 403)",
            "AuthorizationPermissionMismatch",
            "not authorized to perform this operation",
        ],
    )
}

/// Whether an error's text carries one of the providers' codes or phrases.
fn mentions_any(e: &object_store::Error, needles: &[&str]) -> bool {
    let text = e.to_string();
    needles.iter().any(|n| text.contains(n))
}

/// A local file's byte range as 1 MiB pieces, each read on a blocking thread.
fn local_pieces(
    file: std::fs::File,
    range: Range<u64>,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    const PIECE: u64 = 1024 * 1024;
    let state = (Some(file), range.start, range.end);
    futures::stream::try_unfold(state, |(file, pos, end)| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        if pos >= end {
            return Ok(None);
        }
        let len = (end - pos).min(PIECE) as usize;
        let (file, piece) = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut buf = vec![0u8; len];
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut buf)?;
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .expect("blocking read task")
        .map_err(|e| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        })?;
        Ok(Some((
            Bytes::from(piece),
            (Some(file), pos + len as u64, end),
        )))
    })
    .boxed()
}

impl Backend {
    /// Wraps any object store; `location` is used in messages.
    pub fn new(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Self {
        let stats = Arc::new(RequestStats::default());
        Backend {
            store: Arc::new(CountingStore::new(store, stats.clone())),
            location: location.into(),
            container: None,
            stats,
            multipart_threshold: None,
            local_root: None,
        }
    }

    /// Uploads objects of at least `threshold` bytes in parts (`None`:
    /// never), as remote locations do by default.
    pub fn with_multipart_threshold(mut self, threshold: Option<u64>) -> Self {
        self.multipart_threshold = threshold.map(|t| t as usize);
        self
    }

    /// Opens a repository location (see [`location`]) with `-o` options.
    /// With `create`, a missing local directory is created (for `init`).
    pub fn open(location: &str, create: bool, options: &[(String, String)]) -> Result<Self> {
        let parsed = Location::parse(location)?;
        let opened = location::open_store(&parsed, location, create, options)?;
        let stats = Arc::new(RequestStats::default());
        let multipart_threshold = match parsed {
            Location::Local(_) => Some(LOCAL_PARTS_FROM as u64),
            _ => opened.multipart_threshold,
        };
        Ok(Backend {
            store: Arc::new(CountingStore::new(opened.store, stats.clone())),
            location: location.to_string(),
            container: parsed.container().map(str::to_string),
            stats,
            multipart_threshold: multipart_threshold.map(|t| t as usize),
            local_root: match parsed {
                Location::Local(dir) => Some(dir.into()),
                _ => None,
            },
        })
    }

    /// Staging files of interrupted local writes under `data/` (none on
    /// other stores, whose uploads are atomic or aborted). Only regular
    /// files named `<64 hex>#<digits>` in a `data/<xx>` folder of the right
    /// name count; links are never followed.
    pub fn list_staging(&self) -> Result<Vec<StagingFile>> {
        let Some(root) = &self.local_root else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        let Ok(folders) = std::fs::read_dir(root.join("data")) else {
            return Ok(found);
        };
        for folder in folders.flatten() {
            let prefix = folder.file_name().to_string_lossy().into_owned();
            if !folder.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(folder.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                let Some((id, n)) = name.split_once('#') else {
                    continue;
                };
                let staged = is_object_name(id)
                    && id.starts_with(&prefix)
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit());
                let Ok(meta) = file.metadata() else { continue };
                if staged && meta.file_type().is_file() {
                    let modified_ms = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_millis() as i64);
                    found.push(StagingFile {
                        path: format!("data/{prefix}/{name}"),
                        modified_ms,
                        size: meta.len(),
                    });
                }
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// Deletes a staging file [`Backend::list_staging`] found.
    pub fn delete_staging(&self, file: &StagingFile) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        match std::fs::remove_file(root.join(&file.path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Backend {
                op: "delete",
                path: file.path.clone(),
                source: object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                },
            }),
        }
    }

    /// Requests made so far through this backend and its clones.
    pub fn requests(&self) -> RequestCounts {
        self.stats.snapshot()
    }

    /// Distinguishes "no repository here" from "the bucket does not exist":
    /// listing the root of a missing bucket fails with not-found.
    pub async fn check_container(&self) -> Result<()> {
        match self.store.list_with_delimiter(None).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.map_err("list", "/", e)),
        }
    }

    fn map_err(&self, op: &'static str, path: &str, e: object_store::Error) -> Error {
        match e {
            // A write or a root listing that finds nothing means the bucket
            // itself is missing; a read of a missing object is just that.
            object_store::Error::NotFound { .. }
                if matches!(op, "put" | "list") && self.container.is_some() =>
            {
                Error::ContainerNotFound {
                    container: self.container.clone().unwrap_or_default(),
                    location: self.location.clone(),
                }
            }
            object_store::Error::NotFound { .. } => Error::Missing {
                object: path.to_string(),
            },
            // object_store reports a listing of a missing bucket as a generic
            // 404; the providers' error codes say what it is.
            e if self.container.is_some() && names_missing_container(&e) => {
                Error::ContainerNotFound {
                    container: self.container.clone().unwrap_or_default(),
                    location: self.location.clone(),
                }
            }
            object_store::Error::PermissionDenied { source, .. }
            | object_store::Error::Unauthenticated { source, .. } => Error::AccessDenied {
                op,
                location: self.location.clone(),
                path: path.to_string(),
                detail: source.to_string(),
            },
            e if names_refusal(&e) => Error::AccessDenied {
                op,
                location: self.location.clone(),
                path: path.to_string(),
                detail: e.to_string(),
            },
            e if is_storage_full(&e) => Error::StorageFull {
                path: path.to_string(),
            },
            source => Error::Backend {
                op,
                path: path.to_string(),
                source,
            },
        }
    }

    /// Whether it is a directory on this machine.
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// The location as given.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes an object that must not exist yet (`PutMode::Create`).
    pub async fn put_new(&self, path: &str, bytes: Bytes) -> Result<Put> {
        if self.multipart_threshold.is_some_and(|t| bytes.len() >= t) {
            let len = bytes.len() as u64;
            let part = |r: Range<u64>| {
                let slice = bytes.slice(r.start as usize..r.end as usize);
                async move { Ok(slice) }
            };
            return self
                .put_new_in_parts(path, len, PARTS_IN_FLIGHT, part)
                .await;
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&Path::from(path), PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(_) => Ok(Put::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::Existed),
            Err(e) => Err(self.map_err("put", path, e)),
        }
    }

    /// Writes a pack that must not exist yet, from memory or from its
    /// spool file. A spooled pack at or above the multipart threshold goes
    /// up in parts read from the file one at a time, so one part of it is
    /// in memory at once; below it (or with multipart uploads off) it is
    /// read whole and put in one request.
    pub async fn put_new_pack(&self, path: &str, body: PackBody) -> Result<Put> {
        let len = body.len();
        if let PackBody::Memory(bytes) = body {
            return self.put_new(path, bytes).await;
        }
        let body = Arc::new(body);
        if self.multipart_threshold.is_none_or(|t| len < t as u64) {
            let whole = blocking_read(&body, 0..len).await?;
            return self.put_new(path, whole).await;
        }
        self.put_new_in_parts(path, len, 1, |range| blocking_read(&body, range))
            .await
    }

    /// [`Backend::put_new`] for a large object, in parts of at most
    /// [`MAX_PART`] that `part` returns by byte range, `at_once` uploaded
    /// at a time; a failed upload is aborted so no parts linger (and cost)
    /// in the bucket. object_store has no create-only multipart upload, so
    /// an existing object is looked for first: only packs are this large,
    /// and a pack's name is the hash of its bytes, so two writers racing on
    /// one name write the same bytes.
    async fn put_new_in_parts<F, Fut>(
        &self,
        path: &str,
        len: u64,
        at_once: usize,
        part: F,
    ) -> Result<Put>
    where
        F: Fn(Range<u64>) -> Fut,
        Fut: std::future::Future<Output = Result<Bytes>>,
    {
        if self.exists(path).await? {
            return Ok(Put::Existed);
        }
        let location = Path::from(path);
        let mut upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(|e| self.map_err("put", path, e))?;
        let sent = async {
            let step = part_len(len);
            let mut in_flight: futures::stream::FuturesUnordered<object_store::UploadPart> =
                futures::stream::FuturesUnordered::new();
            for at in (0..len).step_by(step as usize) {
                while in_flight.len() >= at_once.max(1) {
                    if let Some(done) = in_flight.next().await {
                        done.map_err(|e| self.map_err("put", path, e))?;
                    }
                }
                if at > 0 {
                    crate::failpoint::reach("upload-between-parts");
                }
                let bytes = part(at..(at + step).min(len)).await?;
                in_flight.push(upload.put_part(PutPayload::from_bytes(bytes)));
            }
            while let Some(done) = in_flight.next().await {
                done.map_err(|e| self.map_err("put", path, e))?;
            }
            upload
                .complete()
                .await
                .map_err(|e| self.map_err("put", path, e))
        }
        .await;
        match sent {
            Ok(_) => Ok(Put::Created),
            Err(e) => {
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// Deletes an object (only `key remove`, `forget` and `prune` do
    /// this). An object already gone is not an error: deletions are retried
    /// after crashes.
    pub async fn delete(&self, path: &str) -> Result<()> {
        match self.store.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map_err("delete", path, e)),
        }
    }

    /// True when the object exists (one HEAD).
    pub async fn exists(&self, path: &str) -> Result<bool> {
        match self.store.head(&Path::from(path)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.map_err("head", path, e)),
        }
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        let r = self
            .store
            .get(&Path::from(path))
            .await
            .map_err(|e| self.map_err("get", path, e))?;
        r.bytes().await.map_err(|e| self.map_err("get", path, e))
    }

    /// Reads a whole object, `None` when it does not exist.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Bytes>> {
        match self.get(path).await {
            Ok(b) => Ok(Some(b)),
            Err(Error::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A failed ranged read: past the end of the object means it is
    /// truncated (corrupt); anything else is a storage error.
    /// Maps a failed ranged GET. object_store has no typed error for a
    /// range past the end (its local store hides it, remote stores answer
    /// HTTP 416 as text), so the object's size is asked instead: a range
    /// beyond it means the object is truncated, anything else is the
    /// storage's failure.
    async fn range_failure(&self, path: &str, range: &Range<u64>, e: object_store::Error) -> Error {
        if let object_store::Error::NotFound { .. } = e {
            return Error::Missing {
                object: path.to_string(),
            };
        }
        match self.store.head(&Path::from(path)).await {
            Ok(meta) if meta.size < range.end => Error::corrupt(
                path,
                format!(
                    "truncated: cannot read bytes {}..{} of {} bytes",
                    range.start, range.end, meta.size
                ),
            ),
            Err(object_store::Error::NotFound { .. }) => Error::Missing {
                object: path.to_string(),
            },
            _ => self.map_err("get", path, e),
        }
    }

    /// Reads a byte range; a short answer is reported as corruption.
    pub async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        let want = range.end - range.start;
        let b = match self.store.get_range(&Path::from(path), range.clone()).await {
            Ok(b) => b,
            Err(e) => return Err(self.range_failure(path, &range, e).await),
        };
        if b.len() as u64 != want {
            return Err(Error::corrupt(
                path,
                format!("truncated: read {} of {want} bytes", b.len()),
            ));
        }
        Ok(b)
    }

    /// Starts one ranged GET and returns its body as a stream of pieces, to
    /// be consumed as it arrives. A body that ends early is reported as a
    /// truncated object.
    pub async fn get_range_stream(
        &self,
        path: &str,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..Default::default()
        };
        let result = match self.store.get_opts(&Path::from(path), opts).await {
            Ok(r) => r,
            Err(e) => return Err(self.range_failure(path, &range, e).await),
        };
        if result.range != range {
            return Err(Error::corrupt(
                path,
                format!(
                    "truncated: asked for bytes {}..{}, got {}..{}",
                    range.start, range.end, result.range.start, result.range.end
                ),
            ));
        }
        let pieces: BoxStream<'static, object_store::Result<Bytes>> = match result.payload {
            // object_store reads local files 8 KiB per blocking task; read
            // 1 MiB at a time instead.
            GetResultPayload::File(file, _) => local_pieces(file, range.clone()),
            GetResultPayload::Stream(s) => s,
        };
        let this = self.clone();
        let path = path.to_string();
        Ok(pieces
            .map(move |p| p.map_err(|e| this.map_err("get", &path, e)))
            .boxed())
    }

    /// Everything the store lists under a kind's folder.
    async fn list_folder(&self, kind: Kind) -> Result<Vec<object_store::ObjectMeta>> {
        self.store
            .list(Some(&Path::from(kind.folder())))
            .try_collect()
            .await
            .map_err(|e| self.map_err("list", kind.folder(), e))
    }

    /// Names (last path segment) of all objects of a kind.
    pub async fn list(&self, kind: Kind) -> Result<Vec<String>> {
        Ok(self
            .list_with_times(kind)
            .await?
            .into_iter()
            .map(|(name, _, _)| name)
            .collect())
    }

    /// Names of all objects of a kind with their last-modified time (Unix
    /// milliseconds, as precise as the store keeps it: some keep seconds)
    /// and size.
    pub async fn list_with_times(&self, kind: Kind) -> Result<Vec<(String, i64, u64)>> {
        Ok(self.listing(kind).await?.objects)
    }

    /// One listing of a kind's folder, split into the objects coffer wrote
    /// (name, last modified in Unix ms, size) and everything else (paths).
    /// Only what coffer itself writes, exactly where it writes it, is an
    /// object: a stray file, a staging file of an interrupted local write,
    /// or anything reached through a link elsewhere is never read as one,
    /// nor deleted.
    pub async fn listing(&self, kind: Kind) -> Result<Listing> {
        let metas = self.list_folder(kind).await?;
        let mut listing = Listing::default();
        for m in metas {
            let path = m.location.to_string();
            let name = path.rsplit('/').next().unwrap_or_default();
            if is_object_name(name) && path == object_path(kind, name) {
                let modified = m.last_modified.timestamp_millis();
                listing.objects.push((name.to_string(), modified, m.size));
            } else {
                listing.strays.push(path);
            }
        }
        listing.strays.sort();
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_objects_go_up_in_counted_parts_and_are_created_once() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let backend = Backend::new(store, "memory://").with_multipart_threshold(Some(5 << 20));
        let bytes: Bytes = (0..20 * 1024 * 1024u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        assert_eq!(
            backend.put_new("data/ab/x", bytes.clone()).await.unwrap(),
            Put::Created
        );
        assert_eq!(backend.get("data/ab/x").await.unwrap(), bytes);
        let r = backend.requests();
        // HEAD, then start + 2 equal parts of 10 MiB + complete.
        assert_eq!((r.head, r.put, r.bytes_up), (1, 4, bytes.len() as u64));
        assert_eq!(
            backend.put_new("data/ab/x", bytes.clone()).await.unwrap(),
            Put::Existed
        );
        // Small objects still go in one create-only PUT.
        let small = Bytes::from_static(b"small");
        assert_eq!(
            backend.put_new("index/y", small.clone()).await.unwrap(),
            Put::Created
        );
        assert_eq!(
            backend.put_new("index/y", small).await.unwrap(),
            Put::Existed
        );
    }

    #[tokio::test]
    async fn a_spooled_pack_goes_up_from_its_file() {
        use std::io::Write;
        let bytes: Vec<u8> = (0..21 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
        let spooled = || {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&bytes).unwrap();
            PackBody::Spooled {
                file,
                len: bytes.len() as u64,
            }
        };
        for (threshold, puts) in [(Some(8 << 20), 5), (None, 1)] {
            let store = Arc::new(object_store::memory::InMemory::new());
            let backend = Backend::new(store, "memory://").with_multipart_threshold(threshold);
            let put = backend.put_new_pack("data/ab/x", spooled()).await;
            assert_eq!(put.unwrap(), Put::Created);
            assert_eq!(backend.get("data/ab/x").await.unwrap(), bytes);
            // In parts: start, 3 parts of 7 MiB, complete. Multipart
            // uploads off: one PUT of the whole file.
            assert_eq!(backend.requests().put, puts, "threshold {threshold:?}");
            let again = backend.put_new_pack("data/ab/x", spooled()).await;
            assert_eq!(again.unwrap(), Put::Existed);
        }
    }
}
