//! Snapshot metadata (when, where, which streams) and choosing snapshots by
//! `latest` or id prefix. Loading and storing them is the repository's job.

use bincode::{Decode, Encode};
use jiff::{tz::Offset, Timestamp, Zoned};

use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};
use crate::tree::TreeEntry;

/// Payload of a `snapshots/<id>` object.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Snapshot {
    /// Unix time in nanoseconds.
    pub time_unix_ns: i64,
    /// The writer's UTC offset at that time, in seconds (for local-time display
    /// and retention buckets).
    pub utc_offset_s: i32,
    /// Host name.
    pub host: String,
    /// User name.
    pub user: String,
    /// Tags, in the order given.
    pub tags: Vec<String>,
    /// Version of the coffer that wrote it.
    pub program_version: String,
    /// The streams it holds (one for `backup --stdin`).
    pub streams: Vec<StreamEntry>,
}

/// One named stream in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct StreamEntry {
    /// Stream name (`--stdin-filename`).
    pub name: String,
    /// Root tree blob of the chunk list.
    pub root: BlobId,
    /// Stream length in bytes.
    pub size: u64,
    /// Number of data chunks.
    pub chunks: u64,
    /// Sum of the stored (compressed, sealed) sizes of its chunks.
    pub stored_size: u64,
    /// Sealed bytes of the new blobs (chunks and tree nodes) this stream
    /// added to the repository.
    pub added_size: u64,
}

impl StreamEntry {
    /// The root as a tree entry, for walking.
    pub fn root_entry(&self) -> TreeEntry {
        TreeEntry {
            id: self.root,
            size: self.size,
        }
    }
}

impl Snapshot {
    /// The snapshot time in its writer's offset.
    pub fn zoned_time(&self) -> Zoned {
        let ts =
            Timestamp::from_nanosecond(self.time_unix_ns as i128).unwrap_or(Timestamp::UNIX_EPOCH);
        let offset = Offset::from_seconds(self.utc_offset_s).unwrap_or(Offset::UTC);
        ts.to_zoned(offset.to_time_zone())
    }

    /// Total size of all streams.
    pub fn size(&self) -> u64 {
        self.streams.iter().map(|s| s.size).sum()
    }

    /// Total stored size of all streams.
    pub fn stored_size(&self) -> u64 {
        self.streams.iter().map(|s| s.stored_size).sum()
    }

    /// A stream by name, or the only stream when `name` is `None` (with
    /// several streams, `None` is an error listing them).
    pub fn stream(&self, id: &SnapshotId, name: Option<&str>) -> Result<&StreamEntry> {
        let found = match name {
            Some(n) => self.streams.iter().find(|s| s.name == n),
            None if self.streams.len() > 1 => {
                let names: Vec<&str> = self.streams.iter().map(|s| s.name.as_str()).collect();
                return Err(Error::InvalidArgument(format!(
                    "snapshot {} holds {} streams ({}): choose one with --stream NAME",
                    id.short(),
                    names.len(),
                    names.join(", ")
                )));
            }
            None => self.streams.first(),
        };
        found.ok_or_else(|| Error::StreamNotFound {
            snapshot: id.short(),
            name: name.unwrap_or("").to_string(),
        })
    }
}

/// Picks one snapshot: `latest` (newest by time) or a unique id prefix.
pub fn select<'a>(
    snapshots: &'a [(SnapshotId, Snapshot)],
    query: &str,
) -> Result<&'a (SnapshotId, Snapshot)> {
    let not_found = || Error::SnapshotNotFound {
        query: query.to_string(),
    };
    if query == "latest" {
        return snapshots
            .iter()
            .max_by_key(|(id, s)| (s.time_unix_ns, *id))
            .ok_or_else(not_found);
    }
    let prefix = query.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let mut matches = snapshots
        .iter()
        .filter(|(id, _)| id.to_hex().starts_with(&prefix));
    match (matches.next(), matches.count()) {
        (None, _) => Err(not_found()),
        (Some(one), 0) => Ok(one),
        (Some(_), more) => Err(Error::AmbiguousSnapshot {
            prefix: query.to_string(),
            count: more + 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: i64) -> Snapshot {
        Snapshot {
            time_unix_ns: t,
            utc_offset_s: 3600,
            host: "h".into(),
            user: "u".into(),
            tags: vec![],
            program_version: "0".into(),
            streams: vec![],
        }
    }

    #[test]
    fn selection_by_latest_and_prefix() {
        let list = vec![
            (
                SnapshotId::from_hex(&format!("ab{}", "0".repeat(62))).unwrap(),
                snap(5),
            ),
            (
                SnapshotId::from_hex(&format!("ac{}", "0".repeat(62))).unwrap(),
                snap(9),
            ),
            (
                SnapshotId::from_hex(&format!("ff{}", "0".repeat(62))).unwrap(),
                snap(1),
            ),
        ];
        assert_eq!(select(&list, "latest").unwrap().1.time_unix_ns, 9);
        assert_eq!(select(&list, "AB").unwrap().1.time_unix_ns, 5);
        assert!(matches!(
            select(&list, "a"),
            Err(Error::AmbiguousSnapshot { count: 2, .. })
        ));
        assert!(matches!(
            select(&list, "0"),
            Err(Error::SnapshotNotFound { .. })
        ));
        assert!(matches!(
            select(&list, "xyz"),
            Err(Error::SnapshotNotFound { .. })
        ));
        assert!(matches!(
            select(&[], "latest"),
            Err(Error::SnapshotNotFound { .. })
        ));
    }

    #[test]
    fn zoned_time_keeps_the_writer_offset() {
        let z = snap(0).zoned_time();
        assert_eq!(z.offset().seconds(), 3600);
        assert_eq!(z.hour(), 1);
    }
}
