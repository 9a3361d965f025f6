//! Local copies of data blobs, as stored: the exact bytes of a blob's range
//! in its pack, still sealed, under `<cache>/<repository id>/blobs/<xx>/`
//! named `<pack id>-<offset>`. Delta bases are read through them, so a base
//! is downloaded at most once however often it is needed, and a nightly job
//! whose cache survives (a volume) finds yesterday's chunks here: backups and
//! prune's re-basing keep a copy of the data blobs they store.
//!
//! A copy is named by where it lies in a write-once pack, so it can never go
//! stale; whoever reads one opens it like pack bytes (AEAD tag, keyed MAC),
//! and a damaged copy is dropped and fetched again. Only sealed bytes are
//! written: plaintext never reaches the disk. The folder is kept under a
//! size limit, least recently used copies removed first. Best effort: a
//! cache that cannot be written is ignored.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::id::PackId;

/// Default size limit of the blob copies of one repository.
pub const DEFAULT_LIMIT: u64 = 1 << 30;

/// The blob copies of one repository.
#[derive(Debug)]
pub struct BlobCopies {
    dir: PathBuf,
    limit: u64,
    /// Bytes written since the folder was last trimmed.
    written: AtomicU64,
}

impl BlobCopies {
    /// Copies under `dir`, kept to about `limit` bytes.
    pub fn new(dir: PathBuf, limit: u64) -> Self {
        BlobCopies {
            dir,
            limit,
            written: AtomicU64::new(0),
        }
    }

    fn path(&self, pack: &PackId, offset: u64) -> PathBuf {
        let name = pack.to_hex();
        self.dir.join(&name[..2]).join(format!("{name}-{offset}"))
    }

    /// The copy of the `len` bytes at `offset` in `pack`, if one of that
    /// length is kept; marks it recently used.
    pub fn get(&self, pack: &PackId, offset: u64, len: u32) -> Option<Vec<u8>> {
        let path = self.path(pack, offset);
        let bytes = std::fs::read(&path).ok()?;
        if bytes.len() != len as usize {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        Some(bytes)
    }

    /// Whether a copy of the blob at `offset` in `pack` is kept.
    pub fn has(&self, pack: &PackId, offset: u64) -> bool {
        self.path(pack, offset).is_file()
    }

    /// Keeps a copy (written to a temporary file, then renamed, so a reader
    /// never sees half of one).
    pub fn put(&self, pack: &PackId, offset: u64, bytes: &[u8]) {
        if self.limit == 0 {
            return;
        }
        let path = self.path(pack, offset);
        let Some(parent) = path.parent() else { return };
        let tmp = parent.join(format!(
            ".{}-{offset}.tmp{}",
            pack.to_hex(),
            std::process::id()
        ));
        let stored = std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if stored.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        // Trim as copies come, not only at the end: one backup may write
        // more than the limit.
        let written = self
            .written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if written + bytes.len() as u64 > self.limit / 8 {
            self.trim();
        }
    }

    /// Drops a copy that did not open.
    pub fn remove(&self, pack: &PackId, offset: u64) {
        let _ = std::fs::remove_file(self.path(pack, offset));
    }

    /// Drops every copy of blobs of pack `name` (hex), deleted from the
    /// repository: they can never be read again.
    pub fn remove_pack(&self, name: &str) {
        let Some(folder) = name.get(..2).map(|p| self.dir.join(p)) else {
            return;
        };
        let Ok(files) = std::fs::read_dir(folder) else {
            return;
        };
        let prefix = format!("{name}-");
        for f in files.flatten() {
            if f.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(f.path());
            }
        }
    }

    /// Removes the least recently used copies until the rest fit the limit.
    pub fn trim(&self) {
        self.written.store(0, Ordering::Relaxed);
        let mut copies = list(&self.dir);
        let mut total: u64 = copies.iter().map(|c| c.1).sum();
        if total <= self.limit {
            return;
        }
        copies.sort_by_key(|c| c.2);
        for (path, len, _) in copies {
            if total <= self.limit {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Every copy under `dir`: path, length, last use. Temporary files of
/// writers that died count too, so they age out like copies.
fn list(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let Ok(folders) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for folder in folders.flatten() {
        let Ok(files) = std::fs::read_dir(folder.path()) else {
            continue;
        };
        for f in files.flatten() {
            let Ok(meta) = f.metadata() else { continue };
            if meta.is_file() {
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                found.push((f.path(), meta.len(), used));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn copies(limit: u64) -> (tempfile::TempDir, BlobCopies) {
        let dir = tempfile::tempdir().unwrap();
        let c = BlobCopies::new(dir.path().join("blobs"), limit);
        (dir, c)
    }

    #[test]
    fn a_copy_is_found_by_pack_offset_and_length() {
        let (_dir, c) = copies(1 << 20);
        let pack = PackId([3; 32]);
        assert_eq!(c.get(&pack, 100, 5), None);
        c.put(&pack, 100, b"hello");
        assert!(c.has(&pack, 100));
        assert_eq!(c.get(&pack, 100, 5), Some(b"hello".to_vec()));
        assert_eq!(c.get(&pack, 101, 5), None);
        assert_eq!(c.get(&PackId([4; 32]), 100, 5), None);
        // Another length: not this blob's copy; dropped.
        assert_eq!(c.get(&pack, 100, 6), None);
        assert!(!c.has(&pack, 100));
    }

    #[test]
    fn the_least_recently_used_copies_go_first_once_over_the_limit() {
        let (_dir, c) = copies(3000);
        let pack = PackId([9; 32]);
        let old = SystemTime::now() - Duration::from_secs(3600);
        for n in 0..3 {
            c.put(&pack, n, &[n as u8; 1000]);
            let f = std::fs::File::options()
                .write(true)
                .open(c.path(&pack, n))
                .unwrap();
            f.set_modified(old + Duration::from_secs(n)).unwrap();
        }
        // Copy 0 is used again, so copy 1 is now the least recently used.
        assert!(c.get(&pack, 0, 1000).is_some());
        c.put(&pack, 3, &[3; 1000]);
        c.trim();
        let kept: Vec<u64> = (0..4).filter(|n| c.has(&pack, *n)).collect();
        assert_eq!(kept, [0, 2, 3]);
    }

    #[test]
    fn a_deleted_pack_takes_its_copies_along() {
        let (_dir, c) = copies(1 << 20);
        // Same first byte: the same folder.
        let mut other = [5; 32];
        other[31] = 6;
        let (gone, kept) = (PackId([5; 32]), PackId(other));
        for at in [37, 500] {
            c.put(&gone, at, b"sealed");
            c.put(&kept, at, b"sealed");
        }
        c.remove_pack(&gone.to_hex());
        assert!(!c.has(&gone, 37) && !c.has(&gone, 500));
        assert!(c.has(&kept, 37) && c.has(&kept, 500));
    }

    #[test]
    fn a_limit_of_zero_keeps_nothing() {
        let (_dir, c) = copies(0);
        c.put(&PackId([1; 32]), 0, b"x");
        assert!(!c.has(&PackId([1; 32]), 0));
    }
}
