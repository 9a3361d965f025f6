//! Snapshot metadata (when, where, which streams) and choosing snapshots:
//! the one [`Filter`] (hosts, tags, stream names) every command selects
//! with, and [`select`] by `latest` or id prefix. Loading and storing them
//! is the repository's job.

use bincode::{Decode, Encode};
use jiff::{tz::Offset, Timestamp, Zoned};

use crate::codec;
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};
use crate::object::ObjectType;
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
    /// Root of the stream's sketch tree (format 2; see
    /// [`crate::delta::sketch`]): what the next backup of this stream picks
    /// delta bases from. `None` in format 1 and for empty streams.
    pub sketch: Option<TreeEntry>,
}

/// A stream as type 3 snapshots store it: no sketch.
#[derive(Encode, Decode)]
struct StreamEntryV1 {
    name: String,
    root: BlobId,
    size: u64,
    chunks: u64,
    stored_size: u64,
    added_size: u64,
}

/// Payload of a type 3 snapshot: [`Snapshot`] with [`StreamEntryV1`]s.
#[derive(Encode, Decode)]
struct SnapshotV1 {
    time_unix_ns: i64,
    utc_offset_s: i32,
    host: String,
    user: String,
    tags: Vec<String>,
    program_version: String,
    streams: Vec<StreamEntryV1>,
}

impl Snapshot {
    /// The object type and payload to store: type 7 in a format 2
    /// repository, else type 3 (which has no sketches).
    pub fn encode(&self, format2: bool) -> (ObjectType, std::result::Result<Vec<u8>, String>) {
        if format2 {
            return (ObjectType::SnapshotV2, codec::encode(self));
        }
        let v1 = SnapshotV1 {
            time_unix_ns: self.time_unix_ns,
            utc_offset_s: self.utc_offset_s,
            host: self.host.clone(),
            user: self.user.clone(),
            tags: self.tags.clone(),
            program_version: self.program_version.clone(),
            streams: self
                .streams
                .iter()
                .map(|s| StreamEntryV1 {
                    name: s.name.clone(),
                    root: s.root,
                    size: s.size,
                    chunks: s.chunks,
                    stored_size: s.stored_size,
                    added_size: s.added_size,
                })
                .collect(),
        };
        (ObjectType::Snapshot, codec::encode(&v1))
    }

    /// Reads a payload of object type `otype` (3 or 7).
    pub fn decode(otype: ObjectType, bytes: &[u8]) -> std::result::Result<Self, String> {
        if otype == ObjectType::SnapshotV2 {
            return codec::decode(bytes);
        }
        let v1: SnapshotV1 = codec::decode(bytes)?;
        Ok(Snapshot {
            time_unix_ns: v1.time_unix_ns,
            utc_offset_s: v1.utc_offset_s,
            host: v1.host,
            user: v1.user,
            tags: v1.tags,
            program_version: v1.program_version,
            streams: v1
                .streams
                .into_iter()
                .map(|s| StreamEntry {
                    name: s.name,
                    root: s.root,
                    size: s.size,
                    chunks: s.chunks,
                    stored_size: s.stored_size,
                    added_size: s.added_size,
                    sketch: None,
                })
                .collect(),
        })
    }
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

    /// Sealed bytes of the new blobs all streams added to the repository.
    pub fn added_size(&self) -> u64 {
        self.streams.iter().map(|s| s.added_size).sum()
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

/// Which snapshots a command considers (`--host`, `--tag`, `--name`); an
/// empty list does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Any of these hosts.
    pub hosts: Vec<String>,
    /// Any of these tag lists, each carried whole (`--tag a,b --tag c`:
    /// both a and b, or c).
    pub tags: Vec<Vec<String>>,
    /// Holding a stream of any of these names.
    pub names: Vec<String>,
}

impl Filter {
    /// Parses repeated `--tag` values, each a comma-separated list.
    pub fn tag_lists(values: &[String]) -> Vec<Vec<String>> {
        values
            .iter()
            .map(|l| {
                l.split(',')
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect()
            })
            .filter(|l: &Vec<String>| !l.is_empty())
            .collect()
    }

    /// True when the snapshot passes every given criterion.
    pub fn matches(&self, s: &Snapshot) -> bool {
        let host_ok = self.hosts.is_empty() || self.hosts.contains(&s.host);
        let tag_ok = self.tags.is_empty()
            || self
                .tags
                .iter()
                .any(|list| list.iter().all(|t| s.tags.contains(t)));
        let name_ok =
            self.names.is_empty() || s.streams.iter().any(|st| self.names.contains(&st.name));
        host_ok && tag_ok && name_ok
    }

    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.tags.is_empty() && self.names.is_empty()
    }

    /// What the filter asks for, for messages ("host db-1, name x.sql").
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.hosts.is_empty() {
            parts.push(format!("host {}", self.hosts.join(" or ")));
        }
        if !self.tags.is_empty() {
            let lists: Vec<String> = self.tags.iter().map(|l| l.join(",")).collect();
            parts.push(format!("tags {}", lists.join(" or ")));
        }
        if !self.names.is_empty() {
            parts.push(format!("stream {}", self.names.join(" or ")));
        }
        parts.join(", ")
    }

    /// The matching snapshots, in the order given.
    pub fn apply<'a>(
        &self,
        snapshots: &'a [(SnapshotId, Snapshot)],
    ) -> Vec<&'a (SnapshotId, Snapshot)> {
        snapshots.iter().filter(|(_, s)| self.matches(s)).collect()
    }
}

/// The newest snapshot per stream name among those `filter` matches: for
/// each stream name a matching snapshot holds (and only the filter's names,
/// when it has some), the newest snapshot holding it.
pub fn newest_per_stream<'a>(
    snapshots: &'a [(SnapshotId, Snapshot)],
    filter: &Filter,
) -> std::collections::BTreeMap<String, &'a (SnapshotId, Snapshot)> {
    let mut newest = std::collections::BTreeMap::new();
    for entry in filter.apply(snapshots) {
        for stream in &entry.1.streams {
            if !filter.names.is_empty() && !filter.names.contains(&stream.name) {
                continue;
            }
            let slot = newest.entry(stream.name.clone()).or_insert(entry);
            if (slot.1.time_unix_ns, slot.0) <= (entry.1.time_unix_ns, entry.0) {
                *slot = entry;
            }
        }
    }
    newest
}

impl Snapshot {
    /// Whether `other` records the same backup: a copy made by `copy`
    /// keeps the time (to the nanosecond), the host and the streams' names
    /// and sizes, in order. Ids and trees differ between repositories (each
    /// names blobs with its own key), so they cannot tell.
    pub fn same_backup(&self, other: &Snapshot) -> bool {
        self.time_unix_ns == other.time_unix_ns
            && self.host == other.host
            && self.streams.len() == other.streams.len()
            && self
                .streams
                .iter()
                .zip(&other.streams)
                .all(|(a, b)| a.name == b.name && a.size == b.size)
    }
}

/// A change of a snapshot's tags (`coffer tag`).
#[derive(Debug, Clone, Default)]
pub struct TagChange {
    /// Replace the tags with these (then `add` and `remove` apply).
    pub set: Option<Vec<String>>,
    /// Tags to add (kept in order, not repeated).
    pub add: Vec<String>,
    /// Tags to remove.
    pub remove: Vec<String>,
}

impl TagChange {
    /// The tags `tags` become.
    pub fn apply(&self, tags: &[String]) -> Vec<String> {
        let mut out: Vec<String> = self.set.clone().unwrap_or_else(|| tags.to_vec());
        for t in &self.add {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out.retain(|t| !self.remove.contains(t));
        out
    }
}

/// Of `wanted` (snapshots of one repository), those `present` (another's)
/// holds no copy of, oldest first: what a `copy` still has to do.
pub fn not_copied<'a>(
    wanted: &[&'a (SnapshotId, Snapshot)],
    present: &[(SnapshotId, Snapshot)],
) -> Vec<&'a (SnapshotId, Snapshot)> {
    let mut todo: Vec<&(SnapshotId, Snapshot)> = wanted
        .iter()
        .copied()
        .filter(|(_, s)| !present.iter().any(|(_, p)| p.same_backup(s)))
        .collect();
    todo.sort_by_key(|(id, s)| (s.time_unix_ns, *id));
    todo
}

/// Picks one snapshot among those `filter` matches: `latest` (the newest,
/// by time) or a unique id prefix. With `latest` and a stream name, the
/// newest snapshot holding that stream; if none holds it, the newest one,
/// whose error then lists the streams it has.
pub fn find<'a>(
    snapshots: &'a [(SnapshotId, Snapshot)],
    filter: &Filter,
    query: &str,
    stream: Option<&str>,
) -> Result<&'a (SnapshotId, Snapshot)> {
    let candidates = filter.apply(snapshots);
    let holds = |s: &Snapshot, n: &str| s.streams.iter().any(|x| x.name == n);
    let candidates = match (stream, query) {
        (Some(n), "latest") if candidates.iter().any(|(_, s)| holds(s, n)) => candidates
            .into_iter()
            .filter(|(_, s)| holds(s, n))
            .collect(),
        _ => candidates,
    };
    select_among(&candidates, query)
}

/// The snapshots a command is given: each of `queries` (`latest` or a
/// unique id prefix; one named twice counts once), or, when there are none,
/// every snapshot `filter` selects.
pub fn chosen<'a>(
    snapshots: &'a [(SnapshotId, Snapshot)],
    filter: &Filter,
    queries: &[String],
) -> Result<Vec<&'a (SnapshotId, Snapshot)>> {
    if queries.is_empty() {
        return Ok(filter.apply(snapshots));
    }
    let mut out: Vec<&(SnapshotId, Snapshot)> = Vec::new();
    for query in queries {
        let found = select(snapshots, query)?;
        if !out.iter().any(|c| c.0 == found.0) {
            out.push(found);
        }
    }
    Ok(out)
}

/// Picks one snapshot: `latest` (newest by time) or a unique id prefix.
pub fn select<'a>(
    snapshots: &'a [(SnapshotId, Snapshot)],
    query: &str,
) -> Result<&'a (SnapshotId, Snapshot)> {
    select_among(&snapshots.iter().collect::<Vec<_>>(), query)
}

fn select_among<'a>(
    snapshots: &[&'a (SnapshotId, Snapshot)],
    query: &str,
) -> Result<&'a (SnapshotId, Snapshot)> {
    let not_found = || Error::SnapshotNotFound {
        query: query.to_string(),
    };
    if query == "latest" {
        return snapshots
            .iter()
            .copied()
            .max_by_key(|(id, s)| (s.time_unix_ns, *id))
            .ok_or_else(not_found);
    }
    let prefix = query.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let mut matches = snapshots
        .iter()
        .copied()
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

/// A snapshot of host "h" with no streams, at `t` (Unix ns) and `offset_s`,
/// for unit tests.
#[cfg(test)]
pub(crate) fn test_snapshot(t: i64, offset_s: i32) -> Snapshot {
    Snapshot {
        time_unix_ns: t,
        utc_offset_s: offset_s,
        host: "h".into(),
        user: "u".into(),
        tags: vec![],
        program_version: "0".into(),
        streams: vec![],
    }
}

/// [`test_snapshot`] at a time written as `2024-05-01T02:00:00+00:00[UTC]`.
#[cfg(test)]
pub(crate) fn test_snapshot_at(s: &str) -> Snapshot {
    let z: Zoned = s.parse().expect("a zoned time");
    test_snapshot(z.timestamp().as_nanosecond() as i64, z.offset().seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: i64) -> Snapshot {
        test_snapshot(t, 3600)
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
    fn a_copy_is_recognised_by_time_host_and_streams_and_not_copied_twice() {
        let id = |n: u8| SnapshotId::from_hex(&format!("{n:02x}{}", "0".repeat(62))).unwrap();
        let with = |t: i64, streams: &[(&str, u64)]| Snapshot {
            streams: streams
                .iter()
                .map(|(n, size)| StreamEntry {
                    size: *size,
                    ..stream(n)
                })
                .collect(),
            ..snap(t)
        };
        let source = [
            (id(1), with(30, &[("db.sql", 100)])),
            (id(2), with(10, &[("db.sql", 90), ("globals.sql", 5)])),
            (id(3), with(20, &[("db.sql", 95)])),
        ];
        // The target holds a copy of the first (another id, other trees).
        let copy = StreamEntry {
            root: BlobId([9; 32]),
            ..source[0].1.streams[0].clone()
        };
        let mut target = vec![(
            id(7),
            Snapshot {
                streams: vec![copy],
                ..source[0].1.clone()
            },
        )];
        let wanted: Vec<_> = source.iter().collect();
        let todo: Vec<SnapshotId> = not_copied(&wanted, &target).iter().map(|s| s.0).collect();
        // The rest, oldest first.
        assert_eq!(todo, [id(2), id(3)]);
        // Another host, another size or another order of streams is
        // another backup.
        target[0].1.host = "other".into();
        assert_eq!(not_copied(&wanted, &target).len(), 3);
        let swapped = with(10, &[("globals.sql", 5), ("db.sql", 90)]);
        assert!(!swapped.same_backup(&source[1].1));
        assert!(!with(20, &[("db.sql", 96)]).same_backup(&source[2].1));
        assert!(with(20, &[("db.sql", 95)]).same_backup(&source[2].1));
    }

    #[test]
    fn snapshots_are_chosen_by_query_each_once_or_by_filter() {
        let list = vec![made(1, 10, "a", &[], &["x"]), made(2, 20, "b", &[], &["x"])];
        let hex = |n: u8| SnapshotId([n; 32]).to_hex();
        let by_query = chosen(
            &list,
            &Filter::default(),
            &[hex(2), "latest".into(), hex(1)],
        )
        .unwrap();
        let ids: Vec<SnapshotId> = by_query.iter().map(|s| s.0).collect();
        assert_eq!(ids, [SnapshotId([2; 32]), SnapshotId([1; 32])]);
        let filter = Filter {
            hosts: vec!["a".into()],
            ..Filter::default()
        };
        assert_eq!(chosen(&list, &filter, &[]).unwrap().len(), 1);
        assert!(chosen(&list, &filter, &["ff".into()]).is_err());
    }

    #[test]
    fn tags_are_set_added_and_removed_in_order() {
        let tags = |l: &[&str]| l.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let change = TagChange {
            add: tags(&["weekly", "nightly"]),
            remove: tags(&["manual"]),
            ..TagChange::default()
        };
        assert_eq!(
            change.apply(&tags(&["nightly", "manual"])),
            tags(&["nightly", "weekly"])
        );
        let set = TagChange {
            set: Some(tags(&["keep", "audit"])),
            remove: tags(&["audit"]),
            ..TagChange::default()
        };
        assert_eq!(set.apply(&tags(&["nightly"])), tags(&["keep"]));
        assert_eq!(TagChange::default().apply(&tags(&["a"])), tags(&["a"]));
    }

    fn stream(name: &str) -> StreamEntry {
        StreamEntry {
            sketch: None,
            name: name.into(),
            root: BlobId([0; 32]),
            size: 1,
            chunks: 1,
            stored_size: 1,
            added_size: 1,
        }
    }

    fn made(n: u8, t: i64, host: &str, tags: &[&str], streams: &[&str]) -> (SnapshotId, Snapshot) {
        let mut s = snap(t);
        s.host = host.into();
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s.streams = streams.iter().map(|n| stream(n)).collect();
        (SnapshotId([n; 32]), s)
    }

    #[test]
    fn one_filter_selects_by_host_tags_and_names() {
        let list = vec![
            made(1, 1, "a", &["nightly", "pg"], &["x.sql"]),
            made(2, 2, "b", &["nightly"], &["x.sql", "y.sql"]),
            made(3, 3, "a", &[], &["y.sql"]),
        ];
        let ids =
            |f: &Filter| -> Vec<u8> { f.apply(&list).iter().map(|(id, _)| id.0[0]).collect() };
        assert_eq!(ids(&Filter::default()), [1, 2, 3]);
        let hosts = Filter {
            hosts: vec!["a".into()],
            ..Filter::default()
        };
        assert_eq!(ids(&hosts), [1, 3]);
        let tags = Filter {
            tags: Filter::tag_lists(&["nightly,pg".into()]),
            ..Filter::default()
        };
        assert_eq!(ids(&tags), [1]);
        let either = Filter {
            tags: Filter::tag_lists(&["pg".into(), "nightly".into()]),
            ..Filter::default()
        };
        assert_eq!(ids(&either), [1, 2]);
        let names = Filter {
            names: vec!["y.sql".into()],
            hosts: vec!["b".into()],
            ..Filter::default()
        };
        assert_eq!(ids(&names), [2]);
        assert_eq!(names.describe(), "host b, stream y.sql");
    }

    #[test]
    fn latest_holding_a_stream_and_newest_per_stream() {
        let list = vec![
            made(1, 1, "a", &[], &["x.sql"]),
            made(2, 2, "b", &[], &["x.sql"]),
            made(3, 3, "a", &[], &["y.sql"]),
        ];
        let any = Filter::default();
        let on_a = Filter {
            hosts: vec!["a".into()],
            ..Filter::default()
        };
        assert_eq!(
            find(&list, &any, "latest", Some("x.sql")).unwrap().0,
            SnapshotId([2; 32])
        );
        assert_eq!(
            find(&list, &on_a, "latest", Some("x.sql")).unwrap().0,
            SnapshotId([1; 32])
        );
        // No snapshot holds it: the newest, whose stream lookup then fails.
        assert_eq!(
            find(&list, &on_a, "latest", Some("z.sql")).unwrap().0,
            SnapshotId([3; 32])
        );
        assert!(matches!(
            find(
                &list,
                &Filter {
                    hosts: vec!["c".into()],
                    ..Filter::default()
                },
                "latest",
                None
            ),
            Err(Error::SnapshotNotFound { .. })
        ));
        let newest = newest_per_stream(&list, &on_a);
        let got: Vec<(&str, u8)> = newest
            .iter()
            .map(|(n, e)| (n.as_str(), e.0 .0[0]))
            .collect();
        assert_eq!(got, [("x.sql", 1), ("y.sql", 3)]);
        let only_x = Filter {
            names: vec!["x.sql".into()],
            ..Filter::default()
        };
        assert_eq!(newest_per_stream(&list, &only_x).len(), 1);
    }

    #[test]
    fn zoned_time_keeps_the_writer_offset() {
        let z = snap(0).zoned_time();
        assert_eq!(z.offset().seconds(), 3600);
        assert_eq!(z.hour(), 1);
    }
}
