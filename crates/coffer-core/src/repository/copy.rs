//! Copying a snapshot into another repository: each stream is restored from
//! this repository (every blob verified, deltas decoded by the one blob
//! reader) and backed up into the target through a bounded pipe, as one
//! snapshot with the same time, host, user, tags and stream names. So the
//! copy is sealed with the target's keys, named by its blob keys,
//! deduplicated against what it holds and stored as deltas against its own
//! previous version of each stream; and it commits like any backup (data,
//! index, then snapshot), so a copy killed at any point leaves the target
//! as it was, bar unreferenced packs its next prune removes.

use std::io::Read;

use super::pipe::pipe;
use super::{BackupOptions, BackupSummary, OpenStream, Repository};
use crate::error::Result;
use crate::snapshot::Snapshot;

impl Repository {
    /// Copies snapshot `snap` of this repository into `target` (see the
    /// module header). The target's compression level and delta mode apply.
    pub async fn copy_snapshot(
        &self,
        snap: &Snapshot,
        target: &Repository,
    ) -> Result<BackupSummary> {
        let mut writers = Vec::new();
        let mut sources: Vec<(String, OpenStream)> = Vec::new();
        for stream in &snap.streams {
            let (w, finish, r) = pipe();
            writers.push((stream.clone(), w, finish));
            let open: OpenStream = Box::new(move || Ok(Box::new(r) as Box<dyn Read + Send>));
            sources.push((stream.name.clone(), open));
        }
        let offset =
            jiff::tz::Offset::from_seconds(snap.utc_offset_s).unwrap_or(jiff::tz::Offset::UTC);
        let time = jiff::Timestamp::from_nanosecond(snap.time_unix_ns as i128)
            .map_err(|e| crate::Error::InvalidArgument(format!("snapshot time: {e}")))?
            .to_zoned(jiff::tz::TimeZone::fixed(offset));
        let opts = BackupOptions {
            name: snap
                .streams
                .first()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            tags: snap.tags.clone(),
            host: snap.host.clone(),
            user: snap.user.clone(),
            time: Some(time),
            allow_empty: true,
            ..BackupOptions::default()
        };
        // Streams are restored one after another, in the order the backup
        // reads them, against one load of this repository's index.
        let restorer = self.restorer().await?;
        let restore_all = async {
            for (stream, w, finish) in writers {
                match restorer.restore(&stream, w).await {
                    Ok(_) => finish.end(),
                    Err(e) => {
                        finish.fail(e.to_string());
                        return Err(e);
                    }
                }
            }
            Ok(())
        };
        let (restored, copied) = tokio::join!(restore_all, target.backup_streams(sources, opts));
        match (restored, copied) {
            // The backup read every stream to its end, which only a
            // finished restore gives.
            (_, Ok(summary)) => Ok(summary),
            // The source failed: that is the cause (the backup only saw
            // its stream end in an error).
            (Err(e), Err(_)) if !e.is_broken_pipe() => Err(e),
            // The target failed, and the restore stopped writing into it.
            (_, Err(e)) => Err(e),
        }
    }
}
