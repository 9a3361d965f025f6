//! `coffer status`: is the newest backup of each stream recent enough? One
//! line per stream, and a distinct exit code for monitoring when one is too
//! old or missing.

use std::collections::BTreeMap;

use anyhow::Result;
use coffer_core::id::SnapshotId;
use coffer_core::snapshot::{self, Filter, Snapshot};
use serde_json::json;

use crate::cli::StatusArgs;
use crate::exit::CliFailure;
use crate::format;
use crate::stdout::outln;

pub async fn run(session: &super::Session<'_>, a: StatusArgs) -> Result<()> {
    let repo = session.open().await?;
    let snaps = repo.list_snapshots().await?;
    let now = jiff::Zoned::now();
    let cutoff = a.max_age.map(|d| d.before(&now));

    // Newest snapshot per stream name (of the chosen hosts); a name asked
    // for with no snapshot at all is reported missing.
    let filter = Filter {
        hosts: a.host.clone(),
        names: a.name.clone(),
        ..Filter::default()
    };
    let found = snapshot::newest_per_stream(&snaps, &filter);
    let mut newest: BTreeMap<String, Option<&(SnapshotId, Snapshot)>> =
        a.name.iter().map(|n| (n.clone(), None)).collect();
    newest.extend(found.into_iter().map(|(n, e)| (n, Some(e))));

    let mut stale = Vec::new();
    let mut rows = Vec::new();
    for (name, found) in &newest {
        let fresh = match (found, cutoff) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some((_, s)), Some(c)) => s.zoned_time().timestamp() > c,
        };
        if !fresh {
            stale.push(name.clone());
        }
        let age_s = found.map(|(_, s)| {
            (now.timestamp().as_second() - s.zoned_time().timestamp().as_second()).max(0)
        });
        rows.push((name, found, age_s, fresh));
    }

    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(name, found, age_s, fresh)| {
                json!({
                    "name": name,
                    "fresh": fresh,
                    "age_seconds": age_s,
                    "newest": found.map(|(id, s)| format::snapshot_json(id, s)),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string(&v)?)?;
    } else {
        for (name, found, age_s, fresh) in &rows {
            let verdict = if *fresh { "ok" } else { "STALE" };
            match found {
                Some((id, s)) => outln!(
                    "{name}: {verdict}: newest snapshot {} at {} ({} ago, {})",
                    id.short(),
                    format::local_time(s),
                    format::age(age_s.unwrap_or(0) as u64),
                    format::bytes(
                        s.streams
                            .iter()
                            .find(|x| &x.name == *name)
                            .map_or(0, |x| x.size)
                    ),
                )?,
                None => outln!("{name}: STALE: no snapshot")?,
            }
        }
    }
    if newest.is_empty() {
        return Err(CliFailure::stale("the repository has no snapshots".into()).into());
    }
    if !stale.is_empty() {
        let limit = a.max_age.map(|d| format!(" than {d}")).unwrap_or_default();
        return Err(CliFailure::stale(format!(
            "{} stream(s) have no snapshot newer{limit}: {}",
            stale.len(),
            stale.join(", ")
        ))
        .into());
    }
    Ok(())
}
