//! `coffer snapshots`: the table, or JSON for machines; filtered by host,
//! tag and stream name, optionally only the newest of each group.

use anyhow::Result;
use coffer_core::policy;

use crate::cli::SnapshotsArgs;
use crate::format;
use crate::stdout::{out, outln};

pub async fn run(session: &super::Session<'_>, a: SnapshotsArgs) -> Result<()> {
    let repo = session.open().await?;
    let all = repo.list_snapshots().await?;
    let chosen = policy::newest_of_groups(&all, &a.select.filter(), a.group_by, a.latest);
    let snaps: Vec<_> = chosen.into_iter().map(|i| all[i].clone()).collect();
    if a.json {
        let list: Vec<_> = snaps
            .iter()
            .map(|(id, s)| format::snapshot_json(id, s))
            .collect();
        outln!("{}", serde_json::to_string(&list)?)?;
    } else if a.compact {
        out!("{}", format::snapshot_table_compact(&snaps))?;
    } else {
        out!("{}", format::snapshot_table(&snaps))?;
    }
    Ok(())
}
