//! The local metadata cache: copies of index and snapshot objects (as
//! stored, still encrypted) under `<dir>/<repository id>/`, so a repeat
//! command does not download them again. These objects are content-named and
//! never change, so a cached copy is valid as long as its bytes hash to its
//! name; a damaged or stale copy is simply fetched again. Best effort: a
//! cache that cannot be written is ignored. Copies of data blobs live
//! beside them ([`blob_copies`]).

mod blob_copies;

use std::path::PathBuf;

pub use blob_copies::{BlobCopies, DEFAULT_LIMIT as DEFAULT_BLOB_LIMIT};

use crate::backend::{object_path, Kind};
use crate::id::content_hash;

/// The names of [`Cache::scratch_dir`]s start so.
const SCRATCH_PREFIX: &str = "scratch-";

/// A cache directory for one repository.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache of repository `repo_id` under `root`.
    pub fn new(root: impl Into<PathBuf>, repo_id: &[u8; 32]) -> Self {
        Cache {
            dir: root.into().join(hex::encode(repo_id)),
        }
    }

    /// The default root: `$XDG_CACHE_HOME/coffer`, else `~/.cache/coffer`.
    pub fn default_root() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("coffer"))
    }

    /// The blob copies of this repository, kept to about `limit` bytes.
    pub fn blob_copies(&self, limit: u64) -> BlobCopies {
        BlobCopies::new(self.dir.join("blobs"), limit)
    }

    /// The folder new data packs spool to, created if needed (none when it
    /// cannot be). Its files are unnamed: it is always empty.
    pub fn spool_dir(&self) -> Option<PathBuf> {
        let dir = self.dir.join("spool");
        std::fs::create_dir_all(&dir).ok().map(|()| dir)
    }

    /// A new, empty directory of this command's own, removed when the
    /// result is dropped; `None` when it cannot be made. Those a killed
    /// command left behind are removed once a day old.
    pub fn scratch_dir(&self) -> Option<tempfile::TempDir> {
        let day = std::time::Duration::from_secs(24 * 3600);
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > day);
            if old
                && entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(SCRATCH_PREFIX)
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::fs::create_dir_all(&self.dir).ok()?;
        tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(&self.dir)
            .ok()
    }

    /// The directory of index tables ([`crate::index::Table`]), created if
    /// need be; `None` when it cannot be.
    pub fn index_tables(&self) -> Option<PathBuf> {
        let dir = self.dir.join("index-tables");
        std::fs::create_dir_all(&dir).ok().map(|()| dir)
    }

    /// Drops the tables of index files no longer in the repository.
    pub fn retain_index_tables(&self, names: &[String]) {
        retain_in(&self.dir.join("index-tables"), names);
    }

    fn path(&self, kind: Kind, name: &str) -> PathBuf {
        self.dir.join(object_path(kind, name))
    }

    /// A cached object whose bytes still hash to its name.
    pub fn get(&self, kind: Kind, name: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(kind, name)).ok()?;
        (hex::encode(content_hash(&bytes)) == name).then_some(bytes)
    }

    /// Stores a copy (atomically: a temporary file renamed into place).
    pub fn put(&self, kind: Kind, name: &str, bytes: &[u8]) {
        let path = self.path(kind, name);
        let Some(parent) = path.parent() else { return };
        let tmp = parent.join(format!(".{name}.tmp{}", std::process::id()));
        let _ = std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
    }

    /// Drops one cached object (deleted from the repository).
    pub fn remove(&self, kind: Kind, name: &str) {
        let _ = std::fs::remove_file(self.path(kind, name));
    }

    /// Drops cached objects of `kind` that are no longer in the repository.
    pub fn retain(&self, kind: Kind, names: &[String]) {
        retain_in(&self.dir.join(object_path(kind, "")), names);
    }
}

/// Removes the files of `dir` not named in `names` (temporary files being
/// written by another process included: that process then does without).
fn retain_in(dir: &std::path::Path, names: &[String]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let keep: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !keep.contains(name.as_str()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_verifies_and_forgets() {
        let dir = std::env::temp_dir().join(format!("coffer-cache-test-{}", std::process::id()));
        let cache = Cache::new(&dir, &[7; 32]);
        let bytes = b"sealed snapshot".to_vec();
        let name = hex::encode(content_hash(&bytes));
        assert_eq!(cache.get(Kind::Snapshot, &name), None);
        cache.put(Kind::Snapshot, &name, &bytes);
        assert_eq!(cache.get(Kind::Snapshot, &name), Some(bytes.clone()));
        // A damaged copy is not returned.
        std::fs::write(cache.path(Kind::Snapshot, &name), b"damaged").unwrap();
        assert_eq!(cache.get(Kind::Snapshot, &name), None);
        cache.put(Kind::Snapshot, &name, &bytes);
        cache.retain(Kind::Snapshot, &[]);
        assert_eq!(cache.get(Kind::Snapshot, &name), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
