//! Grouping snapshots before a retention policy applies (`--group-by`), the
//! policy applied per group, and the rule that a policy may not remove every
//! snapshot of a group unless forced.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::{Decision, KeepPolicy};
use crate::id::SnapshotId;
use crate::snapshot::{Filter, Snapshot};

/// Which snapshot fields split snapshots into groups before a policy is
/// applied (`--group-by host,tags,name`; the default is host and name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the (sorted) tag set.
    pub tags: bool,
    /// Group by the (sorted) stream names.
    pub names: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            tags: false,
            names: true,
        }
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut g = GroupBy {
            host: false,
            tags: false,
            names: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "tags" => g.tags = true,
                "name" | "names" | "paths" => g.names = true,
                other => {
                    return Err(format!(
                        "unknown group-by field {other:?} (use host, tags, name, or '' for none)"
                    ))
                }
            }
        }
        Ok(g)
    }
}

/// The values a group shares; a field not grouped by is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// Host, when grouping by host.
    pub host: Option<String>,
    /// Sorted tags, when grouping by tags.
    pub tags: Option<Vec<String>>,
    /// Sorted stream names, when grouping by name.
    pub names: Option<Vec<String>>,
}

impl GroupBy {
    /// The group a snapshot falls in.
    pub fn key(&self, snap: &Snapshot) -> GroupKey {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        GroupKey {
            host: self.host.then(|| snap.host.clone()),
            tags: self.tags.then(|| sorted(snap.tags.clone())),
            names: self
                .names
                .then(|| sorted(snap.streams.iter().map(|s| s.name.clone()).collect())),
        }
    }
}

/// Groups the snapshots `filter` selects by `by` and applies `policy` to
/// every group. Each decision's `index` is a position in `snapshots`.
pub fn decide(
    snapshots: &[(SnapshotId, Snapshot)],
    filter: &Filter,
    by: GroupBy,
    policy: &KeepPolicy,
) -> BTreeMap<GroupKey, Vec<Decision>> {
    group_members(snapshots, filter, by)
        .into_iter()
        .map(|(key, indices)| {
            let group: Vec<&Snapshot> = indices.iter().map(|&i| &snapshots[i].1).collect();
            let decisions = policy
                .apply(&group)
                .into_iter()
                .map(|d| Decision {
                    index: indices[d.index],
                    ..d
                })
                .collect();
            (key, decisions)
        })
        .collect()
}

/// The positions in `snapshots` of those `filter` selects, by group.
fn group_members(
    snapshots: &[(SnapshotId, Snapshot)],
    filter: &Filter,
    by: GroupBy,
) -> BTreeMap<GroupKey, Vec<usize>> {
    let mut members: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, (_, s)) in snapshots.iter().enumerate() {
        if filter.matches(s) {
            members.entry(by.key(s)).or_default().push(i);
        }
    }
    members
}

/// The snapshots `filter` selects, as positions in `snapshots` (oldest
/// first, as given); with `latest`, only the newest `latest` of each group
/// (`snapshots --latest`).
pub fn newest_of_groups(
    snapshots: &[(SnapshotId, Snapshot)],
    filter: &Filter,
    by: GroupBy,
    latest: Option<usize>,
) -> Vec<usize> {
    let Some(n) = latest else {
        return (0..snapshots.len())
            .filter(|&i| filter.matches(&snapshots[i].1))
            .collect();
    };
    let mut kept: Vec<usize> = group_members(snapshots, filter, by)
        .into_values()
        .flat_map(|mut members| {
            members.sort_by_key(|&i| (snapshots[i].1.time_unix_ns, snapshots[i].0));
            let skip = members.len().saturating_sub(n);
            members.into_iter().skip(skip)
        })
        .collect();
    kept.sort_unstable();
    kept
}

/// The first group whose every snapshot the decisions remove: `forget`
/// refuses to empty a group unless forced, since a policy that keeps
/// nothing is almost always a mistake.
pub fn emptied_group(
    groups: &BTreeMap<GroupKey, Vec<Decision>>,
) -> Option<(&GroupKey, &[Decision])> {
    groups
        .iter()
        .find(|(_, d)| !d.is_empty() && d.iter().all(|d| !d.keep))
        .map(|(k, d)| (k, d.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::snapshot::test_snapshot_at as at;

    #[test]
    fn the_newest_of_each_group_are_listed_in_order() {
        let mut snaps: Vec<(SnapshotId, Snapshot)> = Vec::new();
        for (n, host) in [(1u8, "a"), (2, "b"), (3, "a"), (4, "a"), (5, "b")] {
            let mut s = at(&format!("2024-05-0{n}T02:00:00+00:00[UTC]"));
            s.host = host.into();
            snaps.push((SnapshotId([n; 32]), s));
        }
        let all = Filter::default();
        assert_eq!(
            newest_of_groups(&snaps, &all, GroupBy::default(), None),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(
            newest_of_groups(&snaps, &all, GroupBy::default(), Some(1)),
            [3, 4]
        );
        assert_eq!(
            newest_of_groups(&snaps, &all, GroupBy::default(), Some(2)),
            [1, 2, 3, 4]
        );
        let only_b = Filter {
            hosts: vec!["b".into()],
            ..Filter::default()
        };
        assert_eq!(
            newest_of_groups(&snaps, &only_b, GroupBy::default(), Some(1)),
            [4]
        );
        let one_group = "".parse::<GroupBy>().unwrap();
        assert_eq!(newest_of_groups(&snaps, &all, one_group, Some(2)), [3, 4]);
    }

    #[test]
    fn groups_are_decided_apart_and_an_emptied_group_is_found() {
        let mut snaps: Vec<(SnapshotId, Snapshot)> = Vec::new();
        for (n, host) in [(1u8, "a"), (2, "b"), (3, "a"), (4, "c")] {
            let mut s = at(&format!("2024-05-0{n}T02:00:00+00:00[UTC]"));
            s.host = host.into();
            snaps.push((SnapshotId([n; 32]), s));
        }
        let last_one = KeepPolicy {
            last: 1,
            ..KeepPolicy::default()
        };
        let not_c = Filter {
            hosts: vec!["a".into(), "b".into()],
            ..Filter::default()
        };
        let groups = decide(&snaps, &not_c, GroupBy::default(), &last_one);
        type Verdicts = Vec<(usize, bool)>;
        let verdicts: Vec<(Option<String>, Verdicts)> = groups
            .iter()
            .map(|(k, d)| {
                (
                    k.host.clone(),
                    d.iter().map(|d| (d.index, d.keep)).collect(),
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                (Some("a".into()), vec![(2, true), (0, false)]),
                (Some("b".into()), vec![(1, true)]),
            ]
        );
        assert!(emptied_group(&groups).is_none());
        // A tag rule no snapshot matches keeps nothing: every group emptied.
        let no_match = KeepPolicy {
            tags: vec![vec!["never".into()]],
            ..KeepPolicy::default()
        };
        let groups = decide(&snaps, &Filter::default(), GroupBy::default(), &no_match);
        let (key, decisions) = emptied_group(&groups).expect("an emptied group");
        assert_eq!((key.host.as_deref(), decisions.len()), (Some("a"), 2));
    }

    #[test]
    fn group_by_parses() {
        assert_eq!(
            "".parse::<GroupBy>().unwrap(),
            GroupBy {
                host: false,
                tags: false,
                names: false
            }
        );
        assert_eq!("host,name".parse::<GroupBy>().unwrap(), GroupBy::default());
        assert!("hosts".parse::<GroupBy>().is_err());
    }
}
