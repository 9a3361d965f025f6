//! `coffer snapshots`: the table, or JSON for machines.

use anyhow::Result;

use crate::cli::SnapshotsArgs;
use crate::format;
use crate::stdout::{out, outln};

pub async fn run(session: &super::Session<'_>, a: SnapshotsArgs) -> Result<()> {
    let repo = session.open().await?;
    let snaps = repo.list_snapshots().await?;
    if a.json {
        let list: Vec<_> = snaps
            .iter()
            .map(|(id, s)| format::snapshot_json(id, s))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        out!("{}", format::snapshot_table(&snaps))?;
    }
    Ok(())
}
