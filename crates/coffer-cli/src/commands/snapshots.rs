//! `coffer snapshots`: the table, or JSON for machines.

use anyhow::Result;
use serde_json::json;

use crate::cli::SnapshotsArgs;
use crate::format;

pub async fn run(session: &super::Session<'_>, a: SnapshotsArgs) -> Result<()> {
    let repo = session.open().await?;
    let snaps = repo.list_snapshots().await?;
    if a.json {
        let list: Vec<_> = snaps
            .iter()
            .map(|(id, s)| {
                json!({
                    "id": id.to_hex(),
                    "short_id": id.short(),
                    "time": s.zoned_time().timestamp().to_string(),
                    "time_local": s.zoned_time().to_string(),
                    "host": s.host,
                    "user": s.user,
                    "tags": s.tags,
                    "program_version": s.program_version,
                    "size": s.size(),
                    "stored_size": s.stored_size(),
                    "streams": s.streams.iter().map(|st| json!({
                        "name": st.name,
                        "size": st.size,
                        "stored_size": st.stored_size,
                        "added_size": st.added_size,
                        "chunks": st.chunks,
                        "root": st.root.to_hex(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", format::snapshot_table(&snaps));
    }
    Ok(())
}
