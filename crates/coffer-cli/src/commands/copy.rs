//! `coffer copy`: the snapshots of this repository that another one lacks,
//! copied into it oldest first (a second copy of every backup, the 3-2-1
//! rule). Each copy commits on its own, so an interrupted run is completed
//! by the next one.

use anyhow::Result;
use coffer_core::snapshot;
use serde_json::json;

use crate::cli::CopyArgs;
use crate::format;
use crate::stdout::outln;

pub async fn run(session: &super::Session<'_>, a: CopyArgs) -> Result<()> {
    let source = session.open().await?;
    let target = session.open_target(&a).await?;
    if source.config().id == target.config().id {
        return Err(crate::exit::CliFailure::usage(
            "--to names the repository being copied from".into(),
        )
        .into());
    }
    let all = source.list_snapshots().await?;
    let wanted = snapshot::chosen(&all, &a.select.filter(), &a.snapshots)?;
    let present = target.list_snapshots().await?;
    let todo = snapshot::not_copied(&wanted, &present);
    let already = wanted.len() - todo.len();
    let mut copied = Vec::new();
    for (id, snap) in &todo {
        if a.dry_run {
            session.say(format_args!("would copy snapshot {}", id.short()));
            continue;
        }
        let s = source.copy_snapshot(snap, &target).await?;
        session.say(format_args!(
            "snapshot {} copied as {}: {} read, {} added to the target{}",
            id.short(),
            s.snapshot_id.short(),
            format::bytes(snap.size()),
            format::bytes(s.snapshot.added_size()),
            match s.delta_chunks {
                0 => String::new(),
                n => format!(" ({n} chunks as deltas)"),
            },
        ));
        copied.push(json!({
            "source_id": id.to_hex(),
            "id": s.snapshot_id.to_hex(),
            "bytes_read": snap.size(),
            "bytes_added": s.snapshot.added_size(),
            "delta_chunks": s.delta_chunks,
        }));
    }
    session.say(format_args!(
        "{} {} copied, {} already in the target",
        if a.dry_run { todo.len() } else { copied.len() },
        if a.dry_run { "to be" } else { "snapshots" },
        already
    ));
    if a.json {
        outln!(
            "{}",
            json!({
                "copied": copied,
                "to_copy": todo.len(),
                "already_copied": already,
                "dry_run": a.dry_run,
            })
        )?;
    }
    Ok(())
}
