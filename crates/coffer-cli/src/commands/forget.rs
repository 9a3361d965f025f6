//! `coffer forget`: remove snapshots by id, or by a retention policy applied
//! per group, saying for every snapshot whether it is kept and why.

use std::collections::BTreeMap;

use anyhow::Result;
use coffer_core::id::SnapshotId;
use coffer_core::policy::{self, Decision, GroupKey, KeepPolicy};
use coffer_core::snapshot::{self, Filter, Snapshot};
use serde_json::json;

use crate::cli::ForgetArgs;
use crate::exit::CliFailure;
use crate::format;
use crate::stdout::{out, outln};

pub async fn run(session: &super::Session<'_>, a: ForgetArgs) -> Result<()> {
    let policy = policy_from(&a);
    if a.ids.is_empty() && policy.is_empty() {
        return Err(CliFailure::usage(
            "no snapshots and no policy given: pass snapshot ids or at least one --keep-* option \
             (an empty policy never means \"remove everything\")"
                .into(),
        )
        .into());
    }
    let repo = session.open().await?;
    let snaps = repo.list_snapshots().await?;
    if snaps.is_empty() {
        if a.json {
            outln!("[]")?;
        }
        session.say(format_args!(
            "the repository has no snapshots: nothing to forget"
        ));
        return Ok(());
    }
    let remove: Vec<SnapshotId> = if a.ids.is_empty() {
        let filter = a.select.filter();
        let groups = policy::decide(&snaps, &filter, a.group_by, &policy);
        if groups.is_empty() {
            session.say(format_args!(
                "no snapshot matches {}: nothing to forget",
                filter.describe()
            ));
        }
        if let Some((key, decisions)) = policy::emptied_group(&groups).filter(|_| !a.force) {
            return Err(CliFailure::usage(format!(
                "the policy would remove all {} snapshots of {} (newest {}); nothing was removed. \
                 Pass --force if that is intended",
                decisions.len(),
                describe_group(key),
                snaps[decisions[0].index].0.short()
            ))
            .into());
        }
        if a.json {
            outln!("{}", serde_json::to_string(&groups_json(&snaps, &groups))?)?;
        } else {
            outln!("Applying policy: {}", policy.describe())?;
            for (key, decisions) in &groups {
                out!("{}", group_report(&snaps, key, decisions))?;
            }
        }
        groups
            .values()
            .flatten()
            .filter(|d| !d.keep)
            .map(|d| snaps[d.index].0)
            .collect()
    } else {
        let mut ids = Vec::new();
        for query in &a.ids {
            let (id, _) = snapshot::select(&snaps, query)?;
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        ids
    };
    if a.dry_run {
        session.say(format_args!(
            "dry run: would remove {} snapshot(s): {}",
            remove.len(),
            short_ids(&remove)
        ));
        return Ok(());
    }
    repo.forget(&remove).await?;
    if !remove.is_empty() {
        session.say(format_args!(
            "removed {} snapshot(s): {}",
            remove.len(),
            short_ids(&remove)
        ));
    }
    if a.prune && !remove.is_empty() {
        super::prune::prune(session, &repo, &a.prune_args, false, a.json).await?;
    }
    Ok(())
}

fn policy_from(a: &ForgetArgs) -> KeepPolicy {
    KeepPolicy {
        last: a.keep_last.unwrap_or(0),
        hourly: a.keep_hourly.unwrap_or(0),
        daily: a.keep_daily.unwrap_or(0),
        weekly: a.keep_weekly.unwrap_or(0),
        monthly: a.keep_monthly.unwrap_or(0),
        yearly: a.keep_yearly.unwrap_or(0),
        within: a.keep_within.unwrap_or_default(),
        within_hourly: a.keep_within_hourly.unwrap_or_default(),
        within_daily: a.keep_within_daily.unwrap_or_default(),
        within_weekly: a.keep_within_weekly.unwrap_or_default(),
        within_monthly: a.keep_within_monthly.unwrap_or_default(),
        within_yearly: a.keep_within_yearly.unwrap_or_default(),
        tags: Filter::tag_lists(&a.keep_tag),
    }
}

fn describe_group(key: &GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &key.host {
        parts.push(format!("host {h:?}"));
    }
    if let Some(t) = &key.tags {
        parts.push(format!("tags [{}]", t.join(",")));
    }
    if let Some(n) = &key.names {
        parts.push(format!("name [{}]", n.join(",")));
    }
    if parts.is_empty() {
        "the repository".into()
    } else {
        format!("group {}", parts.join(", "))
    }
}

fn group_report(
    snaps: &[(SnapshotId, Snapshot)],
    key: &GroupKey,
    decisions: &[Decision],
) -> String {
    let mut out = format!("\nsnapshots of {}:\n", describe_group(key));
    let kept: Vec<&Decision> = decisions.iter().filter(|d| d.keep).collect();
    let removed: Vec<&Decision> = decisions.iter().filter(|d| !d.keep).collect();
    let row = |d: &Decision, with_reasons: bool| {
        let (id, s) = &snaps[d.index];
        let mut r = vec![
            id.short(),
            format::local_time(s),
            s.host.clone(),
            s.tags.join(","),
        ];
        if with_reasons {
            r.push(d.reasons.join(", "));
        }
        r
    };
    out.push_str(&format!("keep {} snapshots:\n", kept.len()));
    out.push_str(&format::table(
        &["ID", "Time", "Host", "Tags", "Reasons"],
        kept.iter().map(|d| row(d, true)),
    ));
    if !removed.is_empty() {
        out.push_str(&format!("remove {} snapshots:\n", removed.len()));
        out.push_str(&format::table(
            &["ID", "Time", "Host", "Tags"],
            removed.iter().map(|d| row(d, false)),
        ));
    }
    out
}

/// restic's `forget --json` shape: one object per group with `tags`,
/// `host`, `paths` (here: stream names), `keep`, `remove`, `reasons`.
fn groups_json(
    snaps: &[(SnapshotId, Snapshot)],
    groups: &BTreeMap<GroupKey, Vec<Decision>>,
) -> serde_json::Value {
    let snap = |d: &Decision| format::snapshot_json(&snaps[d.index].0, &snaps[d.index].1);
    groups
        .iter()
        .map(|(key, decisions)| {
            let keep: Vec<_> = decisions.iter().filter(|d| d.keep).map(snap).collect();
            let remove: Vec<_> = decisions.iter().filter(|d| !d.keep).map(snap).collect();
            let reasons: Vec<_> = decisions
                .iter()
                .filter(|d| d.keep)
                .map(|d| json!({"snapshot": snap(d), "matches": d.reasons, "counters": d.counters}))
                .collect();
            json!({
                "tags": key.tags,
                "host": key.host.clone().unwrap_or_default(),
                "paths": key.names,
                "keep": keep,
                "remove": if remove.is_empty() { serde_json::Value::Null } else { remove.into() },
                "reasons": reasons,
            })
        })
        .collect()
}

fn short_ids(ids: &[SnapshotId]) -> String {
    ids.iter()
        .map(SnapshotId::short)
        .collect::<Vec<_>>()
        .join(" ")
}
