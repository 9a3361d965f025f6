//! Index files as a set: listing them, reading them newest first, resolving
//! `supersedes` (one rule, [`NewestFirst`], applied by the one walk every
//! reader takes, `Repository::walk_newest_first`), building the
//! blob map from the live ones (their tables in the cache, or the whole map
//! in memory one file at a time: `check` reads every file and records each
//! problem, the others stop at the first), and planning and writing the
//! next file. Backup's next write ([`LiveFiles::next_file`]) and prune's
//! full rewrite ([`IndexParts`]) are planned here too.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::{blocking, Repository};
use crate::backend::{object_path, Kind};
use crate::codec;
use crate::error::{Error, Result};
use crate::id::IndexId;
use crate::index::{
    is_full_part, plan_index_write, split_index_file, BlobMap, Index, IndexFile, IndexFileV1,
    IndexFileV2, IndexPlan, IndexedPack, MarkedPack, Opened, Table, WriteError,
    MAX_INDEX_FILE_BLOBS,
};
use crate::object::{self, ObjectType};

/// The index as loaded for a writer: the blob map and what planning the
/// next index write needs of the live files it came from.
pub(crate) struct LiveIndex {
    pub index: BlobMap,
    pub live: LiveFiles,
}

/// The supersede rule of a walk over the index listing, newest first, in
/// one place for the three walks (files, tables, prune's map): a file that
/// a file already read supersedes is not read, and at the end a file read
/// early that one read later supersedes (clock skew between writers) is
/// not live either.
#[derive(Default)]
struct NewestFirst {
    /// Every file listed, live or superseded.
    listed: Vec<IndexId>,
    superseded: HashSet<IndexId>,
}

impl NewestFirst {
    /// The id of listed file `name`, recorded as listed; a name that is not
    /// an index id is damage.
    fn list(&mut self, name: &str) -> Result<IndexId> {
        let id = IndexId::from_hex(name).ok_or_else(|| {
            Error::corrupt(object_path(Kind::Index, name), "name is not an index id")
        })?;
        self.listed.push(id);
        Ok(id)
    }

    /// True when a file read so far supersedes `id`.
    fn superseded(&self, id: &IndexId) -> bool {
        self.superseded.contains(id)
    }

    /// Records the supersede list of a file read.
    fn read(&mut self, supersedes: &[IndexId]) {
        self.superseded.extend(supersedes.iter().copied());
    }
}

/// What a walk's visitor made of one index file.
enum Visit {
    /// Read: its supersede list, and the damage found in its content when
    /// the file could be read but not used (the walk records it).
    Read {
        supersedes: Vec<IndexId>,
        damage: Option<Error>,
    },
    /// Could not be read: passed over when the walk keeps going.
    Unreadable(Error),
    /// This walk cannot go on (a table cannot be written): it ends with
    /// nothing.
    GiveUp,
}

impl Visit {
    fn read(supersedes: Vec<IndexId>) -> Self {
        Visit::Read {
            supersedes,
            damage: None,
        }
    }
}

/// How a walk over the listing ended.
struct Walked {
    /// The supersede rule as the whole listing left it: every file listed,
    /// and which are superseded (files visited early that one read later
    /// supersedes included).
    order: NewestFirst,
    /// Damage passed over, when the walk keeps going.
    errors: Vec<Error>,
    /// Files a file read before supersedes, read (with
    /// `Walk::read_superseded`) only to check that they open.
    read_superseded: Vec<IndexId>,
    /// A visit gave up: what was visited is not the whole index.
    gave_up: bool,
}

/// What [`Repository::index_one_file_at_a_time`] built.
struct Built {
    index: Index,
    listed: Vec<IndexId>,
    /// Files added that a file read later supersedes, with their lists.
    stale: Vec<(IndexId, Vec<IndexId>)>,
    /// Files read (only to check them) that a file read before supersedes.
    read_superseded: Vec<IndexId>,
    /// Damage passed over (when asked to keep going).
    errors: Vec<Error>,
    /// The blob count of every file added, and (for a writer) the files
    /// small enough not to be parts of the full index.
    counts: Vec<(IndexId, u64)>,
    small: Vec<(IndexId, IndexFile)>,
}

/// The whole index in memory, as check (and prune without a cache) needs it.
pub(crate) struct MemoryIndex {
    pub index: Index,
    /// Listed files a live file supersedes, when the walk read them.
    pub superseded: Vec<IndexId>,
    /// Files that could not be read or added, when the walk kept going.
    pub errors: Vec<Error>,
    /// What planning the next index write needs (the small files' content
    /// only with [`Walk::for_writer`]).
    pub live: LiveFiles,
}

/// The index as `check` reads it: every file, damage recorded.
pub(crate) struct CheckedIndex {
    /// The live files' blob map.
    pub index: BlobMap,
    /// Listed files a live file supersedes.
    pub superseded: Vec<IndexId>,
    /// Files that could not be read or added.
    pub errors: Vec<Error>,
}

/// How to walk the index files.
#[derive(Debug, Clone, Copy)]
pub(super) struct Walk {
    /// Read superseded files too (`check` verifies every object); otherwise
    /// a file a newer one supersedes is never fetched.
    pub read_superseded: bool,
    /// The local cache may answer.
    pub cached: bool,
    /// Keep the content of the small live files, which a writer's next
    /// index file may fold in.
    pub for_writer: bool,
}

/// The file a full rewrite writes: `packs` and `marked` as given, superseding
/// every index file `listed` (live or already superseded), since it holds
/// everything indexed.
pub(super) fn superseding_everything(listed: &[IndexId], file: IndexFile) -> IndexFile {
    IndexFile {
        supersedes: listed.to_vec(),
        ..file
    }
}

/// An index written as it is made, for a rewrite too large to hold: parts
/// of at most [`MAX_INDEX_FILE_BLOBS`] blobs go out as they fill (a larger
/// pack alone is split as [`split_index_file`] splits it), and the
/// last, written by [`IndexParts::finish`], carries `supersedes` (the
/// order [`split_index_file`] gives a file split at once).
pub(super) struct IndexParts<'r> {
    repo: &'r Repository,
    file: IndexFile,
    blobs: u64,
    max_blobs: u64,
}

impl<'r> IndexParts<'r> {
    pub fn new(repo: &'r Repository) -> Self {
        IndexParts {
            repo,
            file: IndexFile::default(),
            blobs: 0,
            max_blobs: MAX_INDEX_FILE_BLOBS,
        }
    }

    /// Adds a pack's listing, marked since `marked` (Unix ns) if given;
    /// writes a part when one is full.
    pub async fn push(&mut self, pack: IndexedPack, marked: Option<i64>) -> Result<()> {
        let blobs = pack.blobs.len() as u64;
        if self.blobs > 0 && self.blobs + blobs > self.max_blobs {
            self.blobs = 0;
            let part = std::mem::take(&mut self.file);
            self.repo.write_index_split(part, self.max_blobs).await?;
        }
        self.blobs += blobs;
        match marked {
            None => self.file.packs.push(pack),
            Some(marked_unix_ns) => self.file.marked.push(MarkedPack {
                marked_unix_ns,
                pack,
            }),
        }
        Ok(())
    }

    /// Writes the last part, superseding `listed` (every index file listed,
    /// live or already superseded: the parts hold everything indexed).
    pub async fn finish(self, listed: Vec<IndexId>) -> Result<(IndexId, u64)> {
        let last = superseding_everything(&listed, self.file);
        self.repo.write_index_split(last, self.max_blobs).await
    }
}

impl Repository {
    /// Loads the blob map of the live index files (those no newer file
    /// supersedes): their tables in the cache when there is one, else the
    /// whole index in memory.
    pub async fn load_index(&self) -> Result<BlobMap> {
        Ok(self.load_live(false).await?.index)
    }

    /// The live index for a writer; the first unreadable file stops it.
    pub(crate) async fn load_live_index(&self) -> Result<LiveIndex> {
        self.load_live(true).await
    }

    /// The index as prune needs it, and every index file listed: the live
    /// files' tables when there is a cache (a few bytes a blob in memory,
    /// whatever the repository's size), else the whole index in memory.
    pub(crate) async fn load_prune_index(&self) -> Result<(BlobMap, Vec<IndexId>)> {
        let live = self.load_live(false).await?;
        Ok((live.index, live.live.listed))
    }

    /// The blob map of the live index files (their tables in the cache when
    /// there is one, else the whole map in memory) and what planning an
    /// index write needs of them; the small files' content only
    /// `for_writer`. The first unreadable file stops it.
    async fn load_live(&self, for_writer: bool) -> Result<LiveIndex> {
        if let Some(dir) = self.cache.as_ref().and_then(|c| c.index_tables()) {
            if let Some(live) = retry_missing(|| self.load_tables(&dir, for_writer)).await? {
                return Ok(live);
            }
        }
        let walk = Walk {
            read_superseded: false,
            cached: true,
            for_writer,
        };
        let loaded = self.memory_index_by(walk, false).await?;
        Ok(LiveIndex {
            index: loaded.index.into(),
            live: loaded.live,
        })
    }

    /// The whole index in memory; the first unreadable file stops it.
    #[cfg(test)]
    pub(crate) async fn load_memory_index(&self) -> Result<MemoryIndex> {
        let walk = Walk {
            read_superseded: false,
            cached: true,
            for_writer: false,
        };
        self.memory_index_by(walk, false).await
    }

    /// The whole index in memory, as `walk` says; with `keep_going` a file
    /// that cannot be read or added is recorded in the result's `errors`
    /// and left out instead of stopping the build.
    pub(super) async fn memory_index_by(
        &self,
        walk: Walk,
        keep_going: bool,
    ) -> Result<MemoryIndex> {
        let mut excluded: HashMap<IndexId, Vec<IndexId>> = HashMap::new();
        loop {
            let built =
                retry_missing(|| self.index_one_file_at_a_time(&excluded, walk, keep_going))
                    .await?;
            if built.stale.is_empty() {
                let small = small_of(&built.counts);
                let live = LiveFiles {
                    small: built
                        .small
                        .into_iter()
                        .filter(|(id, _)| small.contains(id))
                        .collect(),
                    counts: built.counts,
                    listed: built.listed,
                };
                return Ok(MemoryIndex {
                    index: built.index,
                    superseded: built.read_superseded,
                    errors: built.errors,
                    live,
                });
            }
            // A file added early turned out superseded by one read later
            // (clock skew between writers): build again without it, its
            // own supersede list still applied.
            excluded.extend(built.stale);
        }
    }

    /// Every index file, read from storage (never the cache) for `check`:
    /// the blob map of the live ones, tables built afresh in `scratch` (a
    /// directory of the command's own; `None`, or a table that cannot be
    /// written there: the map in memory, 48 bytes a blob), the superseded
    /// files (read too, to check that they open), and the files that could
    /// not be read or added, recorded instead of stopping.
    pub(super) async fn index_for_check(
        &self,
        scratch: Option<&std::path::Path>,
    ) -> Result<CheckedIndex> {
        if let Some(dir) = scratch {
            if let Some(checked) = self.tables_for_check(dir).await? {
                return Ok(checked);
            }
        }
        let walk = Walk {
            read_superseded: true,
            cached: false,
            for_writer: false,
        };
        let loaded = self.memory_index_by(walk, true).await?;
        Ok(CheckedIndex {
            index: loaded.index.into(),
            superseded: loaded.superseded,
            errors: loaded.errors,
        })
    }

    /// [`Repository::index_for_check`] with tables in `dir`; `None` when a
    /// table cannot be written. Each table file is unlinked once open (the
    /// table keeps its handle), so nothing outlives the command.
    async fn tables_for_check(&self, dir: &std::path::Path) -> Result<Option<CheckedIndex>> {
        let mut opened: Vec<(IndexId, PathBuf, Opened)> = Vec::new();
        let walk = Walk {
            read_superseded: true,
            cached: false,
            for_writer: false,
        };
        let walked = self
            .walk_newest_first(walk, true, async |id, name| {
                let file = match self.read_for_visit(name.clone(), false).await? {
                    Ok(file) => file,
                    Err(unreadable) => return Ok(unreadable),
                };
                let supersedes = file.supersedes.clone();
                let path = dir.join(&name);
                let key = self.key.clone();
                let built = {
                    let path = path.clone();
                    blocking(move || {
                        crate::index::write_table(&path, &key, id, file)?;
                        let table = Table::open(&path, &key, id).map_err(WriteError::Io);
                        let _ = std::fs::remove_file(&path);
                        table
                    })
                    .await
                };
                let damage = match built {
                    Ok(table) => {
                        opened.push((id, path, table));
                        None
                    }
                    Err(WriteError::Invalid(e)) => {
                        Some(Error::corrupt(object_path(Kind::Index, &name), e))
                    }
                    Err(WriteError::Io(_)) => return Ok(Visit::GiveUp),
                };
                Ok(Visit::Read { supersedes, damage })
            })
            .await?;
        if walked.gave_up {
            return Ok(None);
        }
        // Files read early that one read later supersedes (clock skew
        // between writers).
        let mut superseded = walked.read_superseded;
        let (live, stale): (Vec<_>, Vec<_>) = opened
            .into_iter()
            .partition(|(id, _, _)| !walked.order.superseded(id));
        superseded.extend(stale.into_iter().map(|(id, _, _)| id));
        let index = BlobMap::from_tables(live.into_iter().map(|(_, p, t)| (p, t)).collect())
            .map_err(|e| Error::corrupt(dir.display().to_string(), e))?;
        Ok(Some(CheckedIndex {
            index,
            superseded,
            errors: walked.errors,
        }))
    }

    /// The one walk over the index listing, newest first, for every reader
    /// of the index files (the map in memory, the cache's tables, check's
    /// own tables): a file that a file already read supersedes is not
    /// visited (with `walk.read_superseded` the walk reads it to check that
    /// it opens); `visit(id, name)` reads each live file and says what it
    /// found. With `keep_going`, damage (a
    /// name that is not an index id, a file that cannot be read or used)
    /// is recorded and passed over; otherwise the first stops the walk.
    async fn walk_newest_first(
        &self,
        walk: Walk,
        keep_going: bool,
        mut visit: impl AsyncFnMut(IndexId, String) -> Result<Visit>,
    ) -> Result<Walked> {
        let mut order = NewestFirst::default();
        let (mut errors, mut read_superseded) = (Vec::new(), Vec::new());
        let mut damage = |e: Error| {
            if keep_going {
                errors.push(e);
                Ok(())
            } else {
                Err(e)
            }
        };
        let mut gave_up = false;
        for name in self.index_names(walk.cached).await? {
            let id = match order.list(&name) {
                Ok(id) => id,
                Err(e) => {
                    damage(e)?;
                    continue;
                }
            };
            let visited = if !order.superseded(&id) {
                visit(id, name).await?
            } else if walk.read_superseded {
                match self.read_for_visit(name, walk.cached).await? {
                    Ok(file) => {
                        read_superseded.push(id);
                        Visit::read(file.supersedes)
                    }
                    Err(unreadable) => unreadable,
                }
            } else {
                continue;
            };
            match visited {
                Visit::Read {
                    supersedes,
                    damage: found,
                } => {
                    order.read(&supersedes);
                    if let Some(e) = found {
                        damage(e)?;
                    }
                }
                Visit::Unreadable(e) => damage(e)?,
                Visit::GiveUp => {
                    gave_up = true;
                    break;
                }
            }
        }
        Ok(Walked {
            order,
            errors,
            read_superseded,
            gave_up,
        })
    }

    /// Reads the index files newest first straight into one in-memory
    /// index, never holding more than one decoded file (the walk's rules:
    /// a file a file already read supersedes is skipped, or with
    /// `walk.read_superseded` read only to check that it opens). `excluded`
    /// are files to skip, with their supersede lists.
    async fn index_one_file_at_a_time(
        &self,
        excluded: &HashMap<IndexId, Vec<IndexId>>,
        walk: Walk,
        keep_going: bool,
    ) -> Result<Built> {
        let mut index = Index::default();
        let mut added: Vec<(IndexId, Vec<IndexId>)> = Vec::new();
        // Files the build before read and found superseded.
        let mut skipped = Vec::new();
        let (mut counts, mut small) = (Vec::new(), Vec::new());
        let walked = self
            .walk_newest_first(walk, keep_going, async |id, name| {
                if let Some(list) = excluded.get(&id) {
                    skipped.push(id);
                    return Ok(Visit::read(list.clone()));
                }
                let path = object_path(Kind::Index, &name);
                let file = match self.read_for_visit(name, walk.cached).await? {
                    Ok(file) => file,
                    Err(unreadable) => return Ok(unreadable),
                };
                let supersedes = file.supersedes.clone();
                let damage = index.add_file(&file).err().map(|e| Error::corrupt(path, e));
                added.push((id, supersedes.clone()));
                let blobs = file.blob_count();
                counts.push((id, blobs));
                // Files this small are never parts of the full index.
                if walk.for_writer && blobs < MAX_INDEX_FILE_BLOBS / 2 {
                    small.push((id, file));
                }
                Ok(Visit::Read { supersedes, damage })
            })
            .await?;
        index.finish();
        let mut read_superseded = walked.read_superseded;
        if walk.read_superseded {
            read_superseded.extend(skipped);
        }
        let stale: Vec<_> = added
            .into_iter()
            .filter(|(id, _)| walked.order.superseded(id))
            .collect();
        Ok(Built {
            index,
            listed: walked.order.listed,
            stale,
            read_superseded,
            errors: walked.errors,
            counts,
            small,
        })
    }

    /// A visit's read of index file `name`: the file, or (damaged or gone)
    /// the [`Visit::Unreadable`] a walk may pass over.
    async fn read_for_visit(
        &self,
        name: String,
        cached: bool,
    ) -> Result<std::result::Result<IndexFile, Visit>> {
        match self.read_index_file(name, cached).await {
            Ok(file) => Ok(Ok(file)),
            Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
                Ok(Err(Visit::Unreadable(e)))
            }
            Err(e) => Err(e),
        }
    }

    /// The index files listed, newest first. Stores that keep only seconds
    /// give ties; among them the larger file first, since a consolidation
    /// holds everything the files it supersedes held.
    async fn index_names(&self, cached: bool) -> Result<Vec<String>> {
        let mut names = self.backend.list_with_times(Kind::Index).await?;
        names.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(b.2.cmp(&a.2))
                .then_with(|| b.0.cmp(&a.0))
        });
        let names: Vec<String> = names.into_iter().map(|(n, _, _)| n).collect();
        if let Some(cache) = self.cache.as_ref().filter(|_| cached) {
            cache.retain(Kind::Index, &names);
            cache.retain_index_tables(&names);
        }
        Ok(names)
    }

    /// The live index files' tables, built for files that have none yet.
    /// `None` when a table cannot be written (the cache is full or read
    /// only): the caller loads the index into memory instead.
    async fn load_tables(
        &self,
        dir: &std::path::Path,
        for_writer: bool,
    ) -> Result<Option<LiveIndex>> {
        let mut opened: Vec<(IndexId, PathBuf, Opened)> = Vec::new();
        let walk = Walk {
            read_superseded: false,
            cached: true,
            for_writer,
        };
        let walked = self
            .walk_newest_first(walk, false, async |id, name| {
                let path = dir.join(&name);
                let Some(table) = self.open_or_build_table(id, name, path.clone()).await? else {
                    return Ok(Visit::GiveUp);
                };
                let supersedes = table.supersedes.clone();
                opened.push((id, path, table));
                Ok(Visit::read(supersedes))
            })
            .await?;
        if walked.gave_up {
            return Ok(None);
        }
        opened.retain(|(id, _, _)| !walked.order.superseded(id));
        let counts: Vec<(IndexId, u64)> = opened
            .iter()
            .map(|(id, _, t)| (*id, t.blob_count))
            .collect();
        let index = BlobMap::from_tables(opened.into_iter().map(|(_, p, t)| (p, t)).collect())
            .map_err(|e| Error::corrupt(dir.display().to_string(), e))?;
        let small = if for_writer {
            self.small_files(&counts).await?
        } else {
            Vec::new()
        };
        Ok(Some(LiveIndex {
            index,
            live: LiveFiles {
                counts,
                small,
                listed: walked.order.listed,
            },
        }))
    }

    /// Opens the table of index file `id`, first building it from the file
    /// when there is none or it does not open (damaged, or from an older
    /// build). `None` when it cannot be written.
    async fn open_or_build_table(
        &self,
        id: IndexId,
        name: String,
        path: PathBuf,
    ) -> Result<Option<Opened>> {
        let key = self.key.clone();
        let open = {
            let (key, path) = (key.clone(), path.clone());
            move || Table::open(&path, &key, id)
        };
        if let Ok(table) = blocking(open.clone()).await {
            return Ok(Some(table));
        }
        let file = self.read_index_file(name.clone(), true).await?;
        let built = {
            let path = path.clone();
            blocking(move || crate::index::write_table(&path, &key, id, file)).await
        };
        match built {
            Ok(()) => Ok(blocking(open).await.ok()),
            Err(WriteError::Invalid(e)) => Err(Error::corrupt(object_path(Kind::Index, &name), e)),
            Err(WriteError::Io(_)) => Ok(None),
        }
    }

    /// The content of the live files that are not parts of the full index
    /// (read again, from the cache: they are small).
    async fn small_files(&self, counts: &[(IndexId, u64)]) -> Result<Vec<(IndexId, IndexFile)>> {
        let mut small = Vec::new();
        for id in small_of(counts) {
            small.push((id, self.read_index_file(id.to_hex(), true).await?));
        }
        Ok(small)
    }

    /// Reads one index file (`cached`: the local cache may answer), of
    /// either version.
    pub(super) async fn read_index_file(&self, name: String, cached: bool) -> Result<IndexFile> {
        let (path, bytes) = self.read_named(Kind::Index, &name, cached).await?;
        let key = self.key.clone();
        blocking(move || {
            let bad = |e: String| Error::corrupt(path.clone(), e);
            let otype = match object::type_byte(&bytes) {
                Some(t) if t == ObjectType::Index as u8 => ObjectType::Index,
                Some(t) if t == ObjectType::IndexV3 as u8 => ObjectType::IndexV3,
                _ => ObjectType::IndexV2,
            };
            let plain = object::open(&key, otype, &bytes).map_err(bad)?;
            // A large file is in memory three times at most: sealed, plain
            // and decoded. Two is enough.
            drop(bytes);
            match otype {
                ObjectType::Index => {
                    let v1: IndexFileV1 = codec::decode(&plain).map_err(bad)?;
                    Ok(v1.into())
                }
                ObjectType::IndexV3 => codec::decode(&plain).map_err(bad),
                _ => {
                    let v2: IndexFileV2 = codec::decode(&plain).map_err(bad)?;
                    Ok(v2.into())
                }
            }
        })
        .await
    }

    /// Writes an index file (after its packs are stored), as several files
    /// when it holds more than [`MAX_INDEX_FILE_BLOBS`] blobs, the one that
    /// supersedes others last. Returns the last file's id and the bytes
    /// written.
    pub(crate) async fn write_index(&self, file: IndexFile) -> Result<(IndexId, u64)> {
        self.write_index_split(file, MAX_INDEX_FILE_BLOBS).await
    }

    async fn write_index_split(&self, file: IndexFile, max_blobs: u64) -> Result<(IndexId, u64)> {
        let mut written = (IndexId([0; 32]), 0);
        let format2 = self.config.has_deltas();
        for part in split_index_file(file, max_blobs) {
            let blobs = part.blob_count();
            let bad = |e: String| Error::Internal(format!("an index file of {blobs} blobs: {e}"));
            let (otype, payload) = if format2 {
                (ObjectType::IndexV3, codec::encode(&part).map_err(bad)?)
            } else {
                let v2 = IndexFileV2::try_from(part).map_err(bad)?;
                (ObjectType::IndexV2, codec::encode(&v2).map_err(bad)?)
            };
            let (hash, len) = self.write_named(Kind::Index, otype, &payload).await?;
            written = (IndexId(hash), written.1 + len);
        }
        Ok(written)
    }
}

/// Retries `load` when a file it lists is gone when read: a prune deletes
/// superseded index files right after writing the file that supersedes
/// them, and listing again resolves it.
async fn retry_missing<T, F: std::future::Future<Output = Result<T>>>(
    mut load: impl FnMut() -> F,
) -> Result<T> {
    let mut attempts = 0;
    loop {
        match load().await {
            Err(Error::Missing { .. }) if attempts < 3 => attempts += 1,
            other => return other,
        }
    }
}

/// The live files that are not parts of the full index, by their counts.
fn small_of(counts: &[(IndexId, u64)]) -> Vec<IndexId> {
    let Some(&(largest, _)) = counts.iter().max_by_key(|(id, n)| (*n, *id)) else {
        return Vec::new();
    };
    counts
        .iter()
        .filter(|(id, n)| !is_full_part(id, *n, &largest))
        .map(|(id, _)| *id)
        .collect()
}

/// The live index files as the index planner needs them: every file's blob
/// count, and the content of the small ones (the full files can be rebuilt
/// from the blob map, so they are not kept twice).
pub(crate) struct LiveFiles {
    counts: Vec<(IndexId, u64)>,
    small: Vec<(IndexId, IndexFile)>,
    listed: Vec<IndexId>,
}

impl LiveFiles {
    /// The index file a backup that stored `new_packs` writes, if any (see
    /// [`plan_index_write`]).
    pub fn next_file(
        self,
        index: &BlobMap,
        new_packs: Vec<IndexedPack>,
    ) -> Result<Option<IndexFile>> {
        let new_blobs = new_packs.iter().map(|p| p.blobs.len() as u64).sum();
        Ok(match plan_index_write(&self.counts, new_blobs) {
            IndexPlan::Nothing => None,
            IndexPlan::Delta { supersedes: folded } => {
                // Supersede lists are transitive: the new file also names
                // everything the folded files replaced.
                let mut supersedes = folded.clone();
                let (mut packs, mut marked) = (Vec::new(), Vec::new());
                for (_, f) in self.small.into_iter().filter(|(id, _)| folded.contains(id)) {
                    supersedes.extend(f.supersedes);
                    packs.extend(f.packs);
                    // Marks are carried, never dropped: only prune drops a
                    // mark, with the pack it deletes.
                    marked.extend(f.marked);
                }
                supersedes.sort();
                supersedes.dedup();
                packs.extend(new_packs);
                Some(IndexFile {
                    supersedes,
                    packs,
                    marked,
                })
            }
            IndexPlan::Full { .. } => {
                let mut file = index
                    .export()
                    .map_err(|e| Error::corrupt("the local index tables".to_string(), e))?;
                file.packs.extend(new_packs);
                Some(superseding_everything(&self.listed, file))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{BlobId, PackId};
    use crate::pack::BlobEntry;
    use crate::repository::memory_repo;

    /// `n` packs of 4 blobs each, numbered from `first`; the packs
    /// themselves are never stored: only the index is exercised.
    fn synthetic(first: u32, n: u32) -> IndexFile {
        let packs = (first..first + n)
            .map(|p| IndexedPack {
                bases: vec![],
                id: PackId(*blake3::hash(&p.to_le_bytes()).as_bytes()),
                salt: [0; 32],
                size: 1000,
                blobs: (0..4u32)
                    .map(|b| BlobEntry {
                        kind: 0,
                        encoding: 0,
                        id: BlobId(*blake3::hash(&(p * 4 + b).to_le_bytes()).as_bytes()),
                        offset: 37 + 100 * b,
                        length: 100,
                        raw_length: 100,
                    })
                    .collect(),
            })
            .collect();
        IndexFile {
            packs,
            ..IndexFile::default()
        }
    }

    /// A repository in a temporary folder with two index files: 10 packs,
    /// and a consolidation that keeps 9 of them and supersedes the first,
    /// stored with the older time when `skewed` (writers' clocks
    /// disagreed). Returns the superseded file's id too.
    async fn consolidated(skewed: bool) -> (tempfile::TempDir, Repository, IndexId) {
        let dir = tempfile::tempdir().unwrap();
        let backend =
            crate::backend::Backend::open(dir.path().to_str().unwrap(), true, &[]).unwrap();
        let repo = crate::repository::test_repo_on(backend).await;
        let (old, _) = repo
            .write_index_split(synthetic(0, 10), 1000)
            .await
            .unwrap();
        let mut newer = synthetic(1, 9);
        newer.supersedes = vec![old];
        let (new, _) = repo.write_index_split(newer, 1000).await.unwrap();
        let (early, late) = if skewed { (new, old) } else { (old, new) };
        let now = std::time::SystemTime::now();
        for (id, age) in [(early, 7200), (late, 3600)] {
            std::fs::File::options()
                .write(true)
                .open(dir.path().join("index").join(id.to_hex()))
                .unwrap()
                .set_modified(now - std::time::Duration::from_secs(age))
                .unwrap();
        }
        (dir, repo, old)
    }

    /// Writers' clocks disagree: a file that supersedes another was stored
    /// with an older time, so the index is read in the wrong order. The
    /// superseded file, added first, is left out of the index in the end
    /// (here, a pack a prune dropped from the newer file stays dropped).
    #[tokio::test]
    async fn a_file_superseded_by_one_read_after_it_is_left_out() {
        let (_dir, repo, _) = consolidated(true).await;
        let loaded = repo.load_memory_index().await.unwrap();
        assert_eq!(loaded.index.len(), 36, "9 packs of 4 blobs");
        assert!(loaded
            .index
            .pack_number(&synthetic(0, 1).packs[0].id)
            .is_none());
        assert_eq!(loaded.live.listed.len(), 2);
    }

    /// Check reads superseded files too (to see that they open) and names
    /// them, from tables or from the map in memory, whichever file the
    /// listing gives first.
    #[tokio::test]
    async fn check_names_the_superseded_files_it_reads_either_way() {
        for skewed in [false, true] {
            let (_dir, repo, old) = consolidated(skewed).await;
            let scratch = tempfile::tempdir().unwrap();
            for tables in [None, Some(scratch.path())] {
                let checked = repo.index_for_check(tables).await.unwrap();
                let how = format!("skewed {skewed}, tables {}", tables.is_some());
                assert_eq!(checked.superseded, vec![old], "{how}");
                assert!(checked.errors.is_empty(), "{how}");
                assert_eq!(checked.index.pack_count(), 9, "{how}");
                let dropped = &synthetic(0, 1).packs[0].id;
                assert!(checked.index.pack_number(dropped).is_none(), "{how}");
            }
        }
    }

    /// Prune's rewrite goes out part by part: no part over the limit (a
    /// larger pack alone is split), only the last superseding, and the
    /// parts together hold every pack.
    #[tokio::test]
    async fn an_index_written_part_by_part_holds_everything_in_bounded_parts() {
        let repo = memory_repo().await;
        let (old, _) = repo.write_index(synthetic(100, 3)).await.unwrap();
        let mut parts = IndexParts {
            max_blobs: 10,
            ..IndexParts::new(&repo)
        };
        let mut big = synthetic(0, 1).packs.remove(0);
        big.blobs = synthetic(50, 6)
            .packs
            .iter()
            .flat_map(|p| p.blobs.clone())
            .collect();
        for (i, pack) in synthetic(0, 25).packs.into_iter().enumerate() {
            parts.push(pack, (i == 3).then_some(7)).await.unwrap();
            if i == 10 {
                parts.push(big.clone(), None).await.unwrap();
            }
        }
        // Before the last part the old file is still live.
        let live = repo.load_live_index().await.unwrap().live;
        assert!(live.counts.iter().any(|(id, _)| *id == old));
        assert!(live.counts.iter().all(|(id, n)| *n <= 10 || *id == old));
        parts.finish(vec![old]).await.unwrap();
        let loaded = repo.load_memory_index().await.unwrap();
        assert_eq!(loaded.index.len(), 100 + 24, "25 packs of 4 and one of 24");
        let live = repo.load_live_index().await.unwrap().live;
        assert!(live.counts.iter().all(|(id, n)| *n <= 10 && *id != old));
        let marked = synthetic(3, 1).packs[0].id;
        let n = loaded.index.pack_number(&marked).unwrap();
        assert_eq!(loaded.index.pack(n).marked, Some(7));
    }

    #[tokio::test]
    async fn a_split_index_reads_back_whole_and_is_superseded_whole() {
        let repo = memory_repo().await;
        // 100 blobs in parts of at most 10, packs kept whole: two 4-blob
        // packs a part, 13 files.
        repo.write_index_split(synthetic(0, 25), 10).await.unwrap();
        let loaded = repo.load_memory_index().await.unwrap();
        assert_eq!(repo.load_live_index().await.unwrap().live.counts.len(), 13);
        assert_eq!(loaded.index.len(), 100);
        // A full rewrite with 20 more blobs supersedes all 13 parts.
        let mut file = loaded.index.export();
        file.packs.extend(synthetic(25, 5).packs);
        let file = superseding_everything(&loaded.live.listed, file);
        repo.write_index_split(file, 48).await.unwrap();
        let again = repo.load_memory_index().await.unwrap();
        assert_eq!(again.index.len(), 120);
        let live = repo.load_live_index().await.unwrap().live;
        assert_eq!(live.counts.len(), 3, "parts of 48, 48 and 24 blobs");
        assert_eq!(again.live.listed.len(), 16);
    }
}
