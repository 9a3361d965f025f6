//! Reading blobs back: the one place where an index entry and pack bytes
//! become verified plaintext. Restore, check, prune's repack and backup's
//! base reads all open blobs here, and this module owns the rule that a blob
//! is "indexed as this kind with this length". Delta blobs are decoded here
//! and nowhere else: their bases are read (recursively, through a bounded
//! cache of plaintexts), the frame decoded against them, and the result's
//! keyed MAC checked like any blob's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use rayon::prelude::*;

use super::blocking;
use super::read_ahead::{Plan, ReadAhead};
use crate::backend::{object_path, Backend, Kind};
use crate::cache::BlobCopies;
use crate::compress::{self, Encoding};
use crate::crypto::{MasterKey, SubKey};
use crate::delta;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::{BlobLocation, BlobMap};
use crate::pack::{self, BlobEntry, BlobKind};
use crate::tree::{Step, TreeEntry, TreeNode, TreeWalker};

/// Largest coalesced read: a whole pack visit is one GET, consumed as a
/// stream, so the bound is only a guard.
const MAX_READ: u64 = 256 * 1024 * 1024;
/// Unneeded bytes a read may span to join two blobs of the same pack.
const MAX_GAP: u64 = 1024 * 1024;
/// Tree packs up to this size are read whole (one GET) on first use.
const WHOLE_TREE_PACK: u64 = 4 * 1024 * 1024;

/// Plaintexts of base blobs kept for reuse: consecutive deltas share
/// bases, and a chain's levels are read once.
const BASE_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Longest delta chain a reader follows: beyond [`crate::delta::MAX_DEPTH`],
/// which writers keep to, so a policy change stays readable, yet a cycle
/// planted in storage ends in an error.
pub(super) const MAX_CHAIN_READ: u32 = 64;

/// Bases read at once while decoding a batch of deltas.
const BASE_READS_AT_ONCE: usize = 8;

/// Runs codec work (decoding deltas, and prune's re-encoding) on a small
/// pool of its own: never on rayon's, whose workers may be waiting for these
/// very bases (a backup encodes deltas on rayon), and not on tokio's
/// blocking pool, whose many threads would each keep zstd contexts and
/// allocator arenas. Tasks on it never wait for anything.
pub(super) async fn on_decode_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads().clamp(1, 4))
            .thread_name(|i| format!("coffer-delta-{i}"))
            .build()
            .expect("delta decoding threads")
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("a delta decoding task panicked")
}

/// A blob opened as far as its own bytes allow.
pub(super) enum Opened {
    /// Verified plaintext.
    Plain(Vec<u8>),
    /// A delta whose AEAD tag checked: decoding needs its bases.
    Delta {
        /// The blob.
        entry: BlobEntry,
        /// Its bases, as its payload names them.
        bases: Vec<BlobId>,
        /// The whole payload (bases and frame).
        payload: Vec<u8>,
    },
}

impl Opened {
    /// The plaintext of a blob that cannot be a delta (a tree node).
    pub fn plain(self) -> std::result::Result<Vec<u8>, String> {
        match self {
            Opened::Plain(p) => Ok(p),
            Opened::Delta { entry, .. } => Err(format!(
                "blob {} is stored as a delta, which only data blobs may be",
                entry.id.short()
            )),
        }
    }
}

/// Opens one sealed blob found in `bytes`, a slice of its pack that starts
/// at pack offset `bytes_start`: the blob must lie inside the slice, then
/// its AEAD tag is checked, and for all but deltas its encoding, length and
/// keyed MAC ([`pack::open_blob`]). Every caller that has pack bytes in
/// hand opens blobs through this function.
pub(super) fn open_in(
    key: &MasterKey,
    subkey: &SubKey,
    entry: &BlobEntry,
    bytes: &[u8],
    bytes_start: u64,
) -> std::result::Result<Opened, String> {
    let r = entry.range();
    let sealed = r
        .start
        .checked_sub(bytes_start)
        .and_then(|at| bytes.get(at as usize..(at + entry.length as u64) as usize))
        .ok_or_else(|| {
            format!(
                "blob {} lies outside the bytes read (truncated pack?)",
                entry.id.short()
            )
        })?;
    if entry.encoding != Encoding::Delta as u8 {
        return pack::open_blob(key, subkey, entry, sealed).map(Opened::Plain);
    }
    if entry.kind != BlobKind::Data as u8 {
        return Err(format!("blob {} is a delta but not data", entry.id.short()));
    }
    let (_, payload) = pack::open_payload(subkey, entry, sealed)?;
    let (bases, _) =
        delta::parse(&payload).map_err(|e| format!("blob {}: {e}", entry.id.short()))?;
    Ok(Opened::Delta {
        entry: *entry,
        bases,
        payload,
    })
}

/// Decodes a delta's payload against its bases' plaintexts and checks the
/// result is the blob its entry names (length, keyed MAC).
pub(super) fn finish_delta(
    key: &MasterKey,
    entry: &BlobEntry,
    payload: &[u8],
    bases: &[&[u8]],
) -> std::result::Result<Vec<u8>, String> {
    let id = entry.id.short();
    let (_, frame) = delta::parse(payload).map_err(|e| format!("blob {id}: {e}"))?;
    let plain = delta::decode(frame, bases, entry.raw_length as usize)
        .map_err(|e| format!("delta blob {id}: {e}"))?;
    pack::verify_plain(key, entry, &plain)?;
    Ok(plain)
}

/// Names the delta that needed a base which failed to load.
fn as_base_of(e: Error, delta: &BlobId) -> Error {
    match e {
        Error::Missing { object } => Error::Missing {
            object: format!("{object} (a base of delta blob {delta})"),
        },
        Error::Corrupt { object, reason } => Error::Corrupt {
            object,
            reason: format!("{reason} (a base of delta blob {delta})"),
        },
        other => other,
    }
}

/// Base plaintexts by blob id, least recently used dropped first once they
/// exceed [`BASE_CACHE_BYTES`].
#[derive(Default)]
pub(super) struct BaseCache {
    inner: Mutex<CacheInner>,
}

/// A base being read: whoever needs it meanwhile waits for the one read.
type Loading = Arc<tokio::sync::OnceCell<Arc<Vec<u8>>>>;

#[derive(Default)]
struct CacheInner {
    entries: HashMap<BlobId, (Arc<Vec<u8>>, u64)>,
    loading: HashMap<BlobId, Loading>,
    bytes: usize,
    tick: u64,
    /// Sealed bytes of bases (and blobs read ahead with them) fetched from
    /// storage, and read from local copies.
    read: u64,
    local: u64,
}

impl BaseCache {
    /// The cached plaintext, or the cell that the one read of it fills.
    fn get(&self, id: &BlobId) -> std::result::Result<Arc<Vec<u8>>, Loading> {
        let mut c = self.inner.lock().expect("cache lock");
        c.tick += 1;
        let tick = c.tick;
        if let Some((p, t)) = c.entries.get_mut(id) {
            *t = tick;
            return Ok(p.clone());
        }
        Err(c.loading.entry(*id).or_default().clone())
    }

    fn put(&self, id: BlobId, plain: Arc<Vec<u8>>) {
        let mut c = self.inner.lock().expect("cache lock");
        c.loading.remove(&id);
        c.tick += 1;
        let tick = c.tick;
        c.bytes += plain.len();
        if let Some((old, _)) = c.entries.insert(id, (plain, tick)) {
            c.bytes -= old.len();
        }
        while c.bytes > BASE_CACHE_BYTES && c.entries.len() > 1 {
            let oldest = *c
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(id, _)| id)
                .expect("not empty");
            let (gone, _) = c.entries.remove(&oldest).expect("present");
            c.bytes -= gone.len();
        }
    }

    fn count(&self, fetched: u64, local: u64) {
        let mut c = self.inner.lock().expect("cache lock");
        c.read += fetched;
        c.local += local;
    }

    /// Sealed bytes fetched from storage for bases so far, and read from
    /// local copies.
    pub fn bytes_read(&self) -> (u64, u64) {
        let c = self.inner.lock().expect("cache lock");
        (c.read, c.local)
    }
}

/// Where the index places blob `id`, which a tree says is of `kind` and
/// (for data) `size` plaintext bytes. Not indexed as that kind is
/// [`Error::Missing`] (a blob of another kind with the same id is another
/// blob); indexed with another length is [`Error::Corrupt`]: following such
/// an entry would restore the wrong bytes.
pub(super) fn locate(
    index: &BlobMap,
    id: &BlobId,
    kind: BlobKind,
    size: Option<u64>,
) -> Result<BlobLocation> {
    let what = match kind {
        BlobKind::Data => "data blob",
        BlobKind::Tree => "tree blob",
        BlobKind::Sketch => "sketch blob",
    };
    let loc = index.get(kind, id).ok_or_else(|| match index.failure() {
        // The local table was damaged, not the repository: say so (the
        // table is gone, so running the command again builds it anew).
        Some(failure) => Error::corrupt(
            format!("{what} {id}"),
            format!("not found because {failure}; it has been removed, run the command again"),
        ),
        None => Error::Missing {
            object: format!("{what} {id}"),
        },
    })?;
    if size.is_some_and(|s| s != loc.entry.raw_length as u64) {
        return Err(Error::corrupt(
            format!("{what} {id}"),
            "index entry disagrees with the stream's tree about its length",
        ));
    }
    Ok(loc)
}

/// Consecutive blobs of one pack fetched with one ranged GET.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PackRead {
    /// Pack number in the index.
    pub pack: u32,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The blobs, in pack order.
    pub blobs: Vec<BlobEntry>,
}

impl PackRead {
    /// A read of one blob.
    pub fn of(loc: &BlobLocation) -> Self {
        let r = loc.entry.range();
        PackRead {
            pack: loc.pack,
            start: r.start,
            end: r.end,
            blobs: vec![loc.entry],
        }
    }

    /// Takes the blob into this read if it follows closely in the same pack.
    pub fn try_extend(&mut self, loc: &BlobLocation) -> bool {
        let r = loc.entry.range();
        let joins = loc.pack == self.pack
            && r.start >= self.end
            && r.start - self.end <= MAX_GAP
            && r.end - self.start <= MAX_READ;
        if joins {
            self.end = r.end;
            self.blobs.push(loc.entry);
        }
        joins
    }
}

/// Cuts a read's blobs out of its body as the pieces stream in; the bytes
/// between blobs are dropped as they arrive.
pub(super) struct Cutter {
    read: Arc<PackRead>,
    buf: bytes::BytesMut,
    /// Pack offset of `buf`'s first byte.
    buf_start: u64,
    /// Blobs cut so far.
    cut: usize,
}

impl Cutter {
    pub fn new(read: Arc<PackRead>) -> Self {
        let buf_start = read.start;
        Cutter {
            read,
            buf: bytes::BytesMut::new(),
            buf_start,
            cut: 0,
        }
    }

    /// Takes the next piece of the body; returns the blobs it completes,
    /// in order.
    pub fn feed(&mut self, piece: &[u8]) -> Vec<Bytes> {
        self.buf.extend_from_slice(piece);
        let mut done = Vec::new();
        while let Some(e) = self.read.blobs.get(self.cut) {
            let r = e.range();
            let skip = (r.start.saturating_sub(self.buf_start)).min(self.buf.len() as u64);
            let _ = self.buf.split_to(skip as usize);
            self.buf_start += skip;
            if self.buf_start < r.start || r.end > self.buf_start + self.buf.len() as u64 {
                break;
            }
            done.push(self.buf.split_to(e.length as usize).freeze());
            self.buf_start = r.end;
            self.cut += 1;
        }
        done
    }

    /// Checks that the body held every blob (`path` names the pack).
    pub fn finish(self, path: &str) -> Result<()> {
        if self.cut < self.read.blobs.len() {
            return Err(Error::corrupt(
                path,
                "truncated: the read ended before its last blob",
            ));
        }
        Ok(())
    }
}

/// Appends a blob to a list of coalesced reads.
pub(super) fn push_read(reads: &mut Vec<PackRead>, loc: &BlobLocation) {
    if !reads.last_mut().is_some_and(|r| r.try_extend(loc)) {
        reads.push(PackRead::of(loc));
    }
}

/// Fetches byte ranges of packs and opens the blobs in them.
#[derive(Clone)]
pub(super) struct BlobReader {
    backend: Backend,
    key: Arc<MasterKey>,
    index: Arc<BlobMap>,
    bases: Arc<BaseCache>,
    copies: Option<Arc<BlobCopies>>,
    ahead: Arc<Mutex<ReadAhead>>,
}

impl BlobReader {
    /// A reader of the blobs `index` places; bases are read through
    /// `copies` when given.
    pub fn new(
        backend: Backend,
        key: Arc<MasterKey>,
        index: Arc<BlobMap>,
        copies: Option<Arc<BlobCopies>>,
    ) -> Self {
        BlobReader {
            backend,
            key,
            index,
            bases: Arc::default(),
            copies,
            ahead: Arc::default(),
        }
    }

    /// Sealed bytes read to decode deltas' bases: fetched from storage
    /// (with what was read ahead), and read from local copies.
    pub fn base_bytes_read(&self) -> (u64, u64) {
        self.bases.bytes_read()
    }

    /// The plaintext of data blob `id`, decoding delta chains; kept in the
    /// base cache. For bases: blobs read in stream order go through
    /// [`BlobReader::finish`].
    pub fn base_plaintext(&self, id: BlobId) -> BoxFuture<'_, Result<Arc<Vec<u8>>>> {
        self.plaintext_at(id, 0).boxed()
    }

    async fn plaintext_at(&self, id: BlobId, depth: u32) -> Result<Arc<Vec<u8>>> {
        let cell = match self.bases.get(&id) {
            Ok(hit) => return Ok(hit),
            Err(cell) => cell,
        };
        let plain = cell.get_or_try_init(|| self.load_base(id, depth)).await?;
        Ok(plain.clone())
    }

    /// Reads and decodes one base for the cache.
    async fn load_base(&self, id: BlobId, depth: u32) -> Result<Arc<Vec<u8>>> {
        if depth > MAX_CHAIN_READ {
            return Err(Error::corrupt(
                format!("data blob {id}"),
                format!("a delta chain longer than {MAX_CHAIN_READ} (a cycle?)"),
            ));
        }
        let loc = self.locate(&id, BlobKind::Data, None)?;
        let opened = self.open_base(&loc).await?;
        let plain = self
            .finish_at(loc.pack, vec![opened], depth)
            .await?
            .pop()
            .expect("one blob");
        let plain = Arc::new(plain);
        self.bases.put(id, plain.clone());
        Ok(plain)
    }

    /// Opens a base as far as its own bytes allow: from its local copy when
    /// one is kept and opens (a damaged copy is dropped), else from storage,
    /// with the blobs read ahead with it kept as copies.
    async fn open_base(&self, loc: &BlobLocation) -> Result<Opened> {
        let Some(copies) = self.copies.clone() else {
            let read = PackRead::of(loc);
            let bytes = self.fetch(&read).await?;
            return self.open_one(loc, bytes, read.start).await;
        };
        let pack_id = self.index.pack(loc.pack).id;
        let (start, len) = (loc.entry.range().start, loc.entry.length);
        // A wait ends with the copy there, or (the read failed) with this
        // base fetched by its own read on the next round.
        loop {
            let c = copies.clone();
            if let Some(bytes) = blocking(move || c.get(&pack_id, start, len)).await {
                if let Ok(opened) = self.open_one(loc, Bytes::from(bytes), start).await {
                    self.bases.count(0, len as u64);
                    return Ok(opened);
                }
                copies.remove(&pack_id, start);
            }
            let plan = {
                let mut ahead = self.ahead.lock().expect("read-ahead lock");
                ahead.plan(&self.index, loc, |at| copies.has(&pack_id, at))
            };
            let (read, done) = match plan {
                Plan::Wait(mut rx) => {
                    let _ = rx.wait_for(|done| *done).await;
                    continue;
                }
                Plan::Fetch(read, done) => (read, done),
            };
            let bytes = self.fetch(&read).await?;
            let (kept, c) = (bytes.clone(), copies.clone());
            let read_start = read.start;
            blocking(move || {
                for b in &read.blobs {
                    let r = b.range();
                    let at = (r.start - read_start) as usize..(r.end - read_start) as usize;
                    if let Some(sealed) = kept.get(at) {
                        c.put(&pack_id, r.start, sealed);
                    }
                }
            })
            .await;
            let _ = done.send(true);
            return self.open_one(loc, bytes, read_start).await;
        }
    }

    /// Fetches the bytes of a base read from storage.
    async fn fetch(&self, read: &PackRead) -> Result<Bytes> {
        let path = self.pack_path(read.pack);
        let bytes = self.backend.get_range(&path, read.start..read.end).await?;
        self.bases.count(bytes.len() as u64, 0);
        Ok(bytes)
    }

    /// Opens one blob out of `bytes`, which start at pack offset `start`.
    async fn open_one(&self, loc: &BlobLocation, bytes: Bytes, start: u64) -> Result<Opened> {
        let (key, subkey, path) = (
            self.key.clone(),
            self.subkey(loc.pack),
            self.pack_path(loc.pack),
        );
        let entry = loc.entry;
        on_decode_pool(move || {
            open_in(&key, &subkey, &entry, &bytes, start)
                .map_err(|reason| Error::corrupt(path, reason))
        })
        .await
    }

    /// Fetches one coalesced read (one ranged GET) and returns its blobs'
    /// plaintexts, in order (not cached).
    pub async fn fetch_read(&self, read: PackRead) -> Result<Vec<Vec<u8>>> {
        let path = self.pack_path(read.pack);
        let bytes = self.backend.get_range(&path, read.start..read.end).await?;
        let this = self.clone();
        let pack = read.pack;
        let opened =
            blocking(move || this.open_many(read.pack, &read.blobs, &bytes, read.start)).await?;
        self.finish(pack, opened).await
    }

    /// Turns opened blobs of pack `pack` into plaintexts, reading and
    /// decoding the bases of deltas among them.
    pub async fn finish(&self, pack: u32, opened: Vec<Opened>) -> Result<Vec<Vec<u8>>> {
        self.finish_at(pack, opened, 0).await
    }

    async fn finish_at(&self, pack: u32, opened: Vec<Opened>, depth: u32) -> Result<Vec<Vec<u8>>> {
        // Every base the batch's deltas need, each once, read at once.
        let mut wanted: Vec<(BlobId, BlobId)> = Vec::new();
        for o in &opened {
            if let Opened::Delta { entry, bases, .. } = o {
                let loc = BlobLocation {
                    pack,
                    entry: *entry,
                };
                if self.index.bases(&loc).as_deref() != Some(&bases[..]) {
                    return Err(Error::corrupt(
                        self.pack_path(pack),
                        format!(
                            "delta blob {} names other bases than the index lists",
                            entry.id
                        ),
                    ));
                }
                for b in bases {
                    if !wanted.iter().any(|(w, _)| w == b) {
                        wanted.push((*b, entry.id));
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(opened
                .into_iter()
                .map(|o| match o {
                    Opened::Plain(p) => p,
                    Opened::Delta { .. } => unreachable!("no delta without bases"),
                })
                .collect());
        }
        let loaded: HashMap<BlobId, Arc<Vec<u8>>> = futures::stream::iter(wanted)
            .map(|(base, delta)| async move {
                let plain = Box::pin(self.plaintext_at(base, depth + 1))
                    .await
                    .map_err(|e| as_base_of(e, &delta))?;
                Ok::<_, Error>((base, plain))
            })
            .buffer_unordered(BASE_READS_AT_ONCE)
            .try_collect()
            .await?;
        let key = self.key.clone();
        let path = self.pack_path(pack);
        on_decode_pool(move || {
            opened
                .into_iter()
                .map(|o| match o {
                    Opened::Plain(p) => Ok(p),
                    Opened::Delta {
                        entry,
                        bases,
                        payload,
                    } => {
                        let refs: Vec<&[u8]> = bases.iter().map(|b| loaded[b].as_slice()).collect();
                        finish_delta(&key, &entry, &payload, &refs)
                            .map_err(|reason| Error::corrupt(&path, reason))
                    }
                })
                .collect()
        })
        .await
    }

    /// The local copies bases are read through, if this reader has them.
    pub fn copies(&self) -> Option<&Arc<BlobCopies>> {
        self.copies.as_ref()
    }

    /// The index it reads through.
    pub fn index(&self) -> &BlobMap {
        &self.index
    }

    /// The storage.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Repository path of a pack.
    pub fn pack_path(&self, pack: u32) -> String {
        object_path(Kind::Pack, &self.index.pack(pack).id.to_hex())
    }

    /// [`locate`] in this reader's index.
    pub fn locate(&self, id: &BlobId, kind: BlobKind, size: Option<u64>) -> Result<BlobLocation> {
        locate(&self.index, id, kind, size)
    }

    fn subkey(&self, pack: u32) -> SubKey {
        self.key.subkey(&self.index.pack(pack).salt)
    }

    /// Opens, in parallel and in order, `blobs` of pack number `pack` out of
    /// `bytes`, which start at pack offset `bytes_start` (CPU work; call on
    /// a blocking thread). Deltas come back for [`BlobReader::finish`].
    pub fn open_many(
        &self,
        pack: u32,
        blobs: &[BlobEntry],
        bytes: &[u8],
        bytes_start: u64,
    ) -> Result<Vec<Opened>> {
        let subkey = self.subkey(pack);
        blobs
            .par_iter()
            .map(|e| {
                open_in(&self.key, &subkey, e, bytes, bytes_start)
                    .map_err(|reason| Error::corrupt(self.pack_path(pack), reason))
            })
            .collect()
    }

    /// Opens a batch of blobs of one pack, each already cut to its sealed
    /// bytes (CPU work; call on a blocking thread). Deltas come back for
    /// [`BlobReader::finish`].
    pub fn open_cut(&self, pack: u32, batch: &[(BlobEntry, Bytes)]) -> Result<Vec<Opened>> {
        let subkey = self.subkey(pack);
        batch
            .par_iter()
            .map(|(e, sealed)| {
                open_in(&self.key, &subkey, e, sealed, e.offset as u64)
                    .map_err(|reason| Error::corrupt(self.pack_path(pack), reason))
            })
            .collect()
    }

    /// Fetches a whole pack and returns the given blobs of it as stored:
    /// encoding and payload, AEAD-checked, and for all but deltas decoded
    /// and verified (prune's repack copies payloads as they are).
    pub async fn read_payloads(
        &self,
        pack: u32,
        blobs: Vec<BlobEntry>,
    ) -> Result<Vec<(Encoding, Vec<u8>)>> {
        let bytes = self.backend.get(&self.pack_path(pack)).await?;
        let this = self.clone();
        blocking(move || {
            let subkey = this.subkey(pack);
            blobs
                .par_iter()
                .map(|e| {
                    let bad = |reason| Error::corrupt(this.pack_path(pack), reason);
                    let sealed = bytes.get(e.range().start as usize..e.range().end as usize);
                    let sealed = sealed.ok_or_else(|| {
                        bad(format!("blob {} lies outside the pack", e.id.short()))
                    })?;
                    let (encoding, payload) =
                        pack::open_payload(&subkey, e, sealed).map_err(bad)?;
                    if encoding != Encoding::Delta {
                        let plain =
                            compress::decompress(encoding, payload.clone(), e.raw_length as usize)
                                .map_err(bad)?;
                        pack::verify_plain(&this.key, e, &plain).map_err(bad)?;
                    }
                    Ok((encoding, payload))
                })
                .collect()
        })
        .await
    }

    /// The leaves of the tree under `root` (a stream's chunks, or a
    /// sketch's parts), in order; `what` names the tree in errors. Nodes
    /// come through [`BlobReader::load_nodes`], and the ones a whole tree
    /// pack brings along are kept for the walk.
    pub async fn tree_leaves(&self, root: TreeEntry, what: &str) -> Result<Vec<TreeEntry>> {
        let mut walker = TreeWalker::new(root);
        let mut whole = HashSet::new();
        let mut loaded: HashMap<BlobId, TreeNode> = HashMap::new();
        let mut leaves = Vec::new();
        loop {
            match walker.next_step() {
                Step::Need(id) => {
                    if !loaded.contains_key(&id) {
                        loaded.extend(self.load_nodes(&[id], &mut whole).await?);
                    }
                    let node = loaded.remove(&id).ok_or_else(|| Error::Missing {
                        object: format!("tree blob {id}"),
                    })?;
                    walker
                        .provide(node)
                        .map_err(|r| Error::corrupt(what.to_string(), r))?;
                }
                Step::Chunk(leaf) => leaves.push(leaf),
                Step::Done => return Ok(leaves),
            }
        }
    }

    /// Loads tree nodes, coalescing neighbours in the same pack.
    ///
    /// A small tree pack (the usual case: one per backup) is read whole the
    /// first time any of its nodes is needed, and all its nodes are kept, so
    /// walking a tree costs one GET per tree pack, not one per level.
    /// `whole` records the packs already read that way.
    pub async fn load_nodes(
        &self,
        ids: &[BlobId],
        whole: &mut HashSet<u32>,
    ) -> Result<HashMap<BlobId, TreeNode>> {
        let mut nodes = HashMap::new();
        let mut locs: Vec<BlobLocation> = ids
            .iter()
            .map(|id| self.locate(id, BlobKind::Tree, None))
            .collect::<Result<_>>()?;
        locs.sort_by_key(|l| (l.pack, l.entry.offset));
        locs.dedup_by_key(|l| l.entry.id);
        for pack in locs.iter().map(|l| l.pack).collect::<HashSet<u32>>() {
            if self.index.pack(pack).size <= WHOLE_TREE_PACK && whole.insert(pack) {
                nodes.extend(self.load_whole_tree_pack(pack).await?);
            }
        }
        locs.retain(|l| !nodes.contains_key(&l.entry.id));
        let mut reads = Vec::new();
        for loc in &locs {
            push_read(&mut reads, loc);
        }
        for read in reads {
            let path = self.pack_path(read.pack);
            let bytes = self.backend.get_range(&path, read.start..read.end).await?;
            let this = self.clone();
            let (plains, read) = blocking(move || {
                let plains = this.open_many(read.pack, &read.blobs, &bytes, read.start);
                (plains, read)
            })
            .await;
            for (opened, e) in plains?.into_iter().zip(&read.blobs) {
                let bad = |r: String| Error::corrupt(&path, r);
                let node = TreeNode::decode(&opened.plain().map_err(bad)?).map_err(bad)?;
                nodes.insert(e.id, node);
            }
        }
        Ok(nodes)
    }

    /// Reads a whole tree pack with one GET and opens every tree blob in it
    /// (the pack's own header lists them).
    async fn load_whole_tree_pack(&self, pack: u32) -> Result<HashMap<BlobId, TreeNode>> {
        let path = self.pack_path(pack);
        let bytes = self
            .backend
            .get_range(&path, 0..self.index.pack(pack).size)
            .await?;
        let key = self.key.clone();
        blocking(move || {
            let bad = |r: String| Error::corrupt(&path, r);
            let (salt, entries) = pack::read_header(&key, &bytes).map_err(bad)?;
            let subkey = key.subkey(&salt);
            entries
                .iter()
                .filter(|e| e.kind == BlobKind::Tree as u8)
                .map(|e| {
                    let plain = open_in(&key, &subkey, e, &bytes, 0)
                        .and_then(Opened::plain)
                        .map_err(bad)?;
                    Ok((e.id, TreeNode::decode(&plain).map_err(bad)?))
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress;
    use crate::pack::PackWriter;

    #[test]
    fn a_blob_outside_the_bytes_read_is_an_error_not_a_panic() {
        let key = MasterKey::generate();
        let mut w = PackWriter::new(&key, 1024);
        let (enc, payload) = compress::compress(b"hello hello", 3);
        w.add(crate::pack::EncodedBlob {
            kind: BlobKind::Data,
            id: key.blob_id(b"hello hello"),
            encoding: enc,
            payload: &payload,
            raw_len: 11,
            bases: &[],
        })
        .unwrap();
        let pack = w.finish().unwrap();
        let e = pack.blobs[0];
        let sub = key.subkey(&pack.salt);
        let bytes = pack.body.read_all().unwrap();
        assert_eq!(
            open_in(&key, &sub, &e, &bytes, 0)
                .and_then(Opened::plain)
                .unwrap(),
            b"hello hello"
        );
        let r = e.range();
        let exact = &bytes[r.start as usize..r.end as usize];
        assert!(open_in(&key, &sub, &e, exact, r.start).is_ok());
        // Cut short, or starting after the blob: refused.
        assert!(open_in(&key, &sub, &e, &exact[..exact.len() - 1], r.start).is_err());
        assert!(open_in(&key, &sub, &e, exact, r.start + 1).is_err());
    }

    #[test]
    fn located_blobs_must_have_the_kind_and_length_the_tree_says() {
        use crate::id::PackId;
        use crate::index::{IndexFile, IndexedPack};
        let entry = |id: u8, kind: u8| BlobEntry {
            kind,
            encoding: 0,
            id: BlobId([id; 32]),
            offset: 37,
            length: 20,
            raw_length: 4,
        };
        let mut index = crate::index::Index::default();
        index
            .add_file(&IndexFile {
                packs: vec![IndexedPack {
                    bases: vec![],
                    id: PackId([1; 32]),
                    salt: [0; 32],
                    size: 100,
                    blobs: vec![entry(1, 0), entry(2, 1)],
                }],
                ..IndexFile::default()
            })
            .unwrap();
        index.finish();
        let index = BlobMap::from(index);
        let data = BlobId([1; 32]);
        assert!(locate(&index, &data, BlobKind::Data, Some(4)).is_ok());
        assert!(matches!(
            locate(&index, &data, BlobKind::Data, Some(5)),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            locate(&index, &data, BlobKind::Tree, None),
            Err(Error::Missing { .. })
        ));
        assert!(locate(&index, &BlobId([2; 32]), BlobKind::Tree, None).is_ok());
        assert!(matches!(
            locate(&index, &BlobId([3; 32]), BlobKind::Data, Some(4)),
            Err(Error::Missing { .. })
        ));
    }
}
