//! Live counters of a running backup. The pipeline's threads add to them as
//! they go; a front end reads them on its own timer to draw progress. Nothing
//! here prints or blocks: the counters are relaxed atomics, cheap enough to
//! bump once per chunk.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Counters shared between a backup and whoever watches it.
#[derive(Debug, Default)]
pub struct BackupProgress {
    bytes_read: AtomicU64,
    new_bytes: AtomicU64,
    bytes_uploaded: AtomicU64,
    streams_done: AtomicUsize,
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Input bytes chunked so far, over all streams.
    pub bytes_read: u64,
    /// Of those, bytes in chunks the repository did not have yet.
    pub new_bytes: u64,
    /// Pack bytes stored so far (sealed, after compression).
    pub bytes_uploaded: u64,
    /// Streams read to their end; the one being read has this index.
    pub streams_done: usize,
}

impl BackupProgress {
    /// Fresh counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current values.
    pub fn get(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            new_bytes: self.new_bytes.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
            streams_done: self.streams_done.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn chunk(&self, len: u64, new: bool) {
        self.bytes_read.fetch_add(len, Ordering::Relaxed);
        if new {
            self.new_bytes.fetch_add(len, Ordering::Relaxed);
        }
    }

    pub(crate) fn uploaded(&self, len: u64) {
        self.bytes_uploaded.fetch_add(len, Ordering::Relaxed);
    }

    pub(crate) fn stream_done(&self) {
        self.streams_done.fetch_add(1, Ordering::Relaxed);
    }
}

impl ProgressSnapshot {
    /// Share of the bytes read that were already stored (0 to 1).
    pub fn dedup_ratio(&self) -> f64 {
        if self.bytes_read == 0 {
            0.0
        } else {
            1.0 - self.new_bytes as f64 / self.bytes_read as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_dedup_is_the_known_share() {
        let p = BackupProgress::new();
        assert_eq!(p.get().dedup_ratio(), 0.0);
        p.chunk(300, false);
        p.chunk(100, true);
        p.uploaded(60);
        p.stream_done();
        let s = p.get();
        assert_eq!(
            s,
            ProgressSnapshot {
                bytes_read: 400,
                new_bytes: 100,
                bytes_uploaded: 60,
                streams_done: 1
            }
        );
        assert!((s.dedup_ratio() - 0.75).abs() < 1e-9);
    }
}
