//! `coffer backup --stdin` or `--stdin-from-command -- CMD...`: one stream
//! in, one snapshot out.

use anyhow::Result;
use coffer_core::producer::Producer;
use coffer_core::{BackupOptions, Error};
use serde_json::json;

use crate::cli::BackupArgs;
use crate::format;

pub async fn run(session: &super::Session<'_>, a: BackupArgs) -> Result<()> {
    let repo = session.open().await?;
    let actor = super::actor();
    let opts = BackupOptions {
        name: a.stdin_filename,
        tags: a.tags.into_iter().filter(|t| !t.is_empty()).collect(),
        host: a.host.unwrap_or(actor.host),
        user: actor.user,
        time: a.time,
        compression_level: a.compression,
        allow_empty: a.allow_empty,
        upload_concurrency: a.connections,
        recheck_after: std::time::Duration::from_secs(a.recheck_after_secs),
    };
    let s = if a.stdin_from_command {
        let producer = Producer::spawn(&a.command).map_err(Error::Producer)?;
        repo.backup(producer, opts).await?
    } else {
        repo.backup(std::io::stdin(), opts).await?
    };
    let stream = &s.snapshot.streams[0];
    let secs = s.duration.as_secs_f64();
    if a.json {
        let v = json!({
            "snapshot_id": s.snapshot_id.to_hex(),
            "short_id": s.snapshot_id.short(),
            "name": stream.name,
            "bytes_read": stream.size,
            "chunks": stream.chunks,
            "new_chunks": s.new_chunks,
            "new_bytes": s.new_bytes,
            "stored_size": stream.stored_size,
            "bytes_added": s.bytes_uploaded,
            "packs_written": s.packs_written,
            "duration_seconds": secs,
            "requests": repo.backend().requests(),
        });
        println!("{v}");
    }
    eprintln!(
        "snapshot {} saved: {} read, {} new, {} added to the repository, {:.1}s ({}/s)",
        s.snapshot_id.short(),
        format::bytes(stream.size),
        format::bytes(s.new_bytes),
        format::bytes(s.bytes_uploaded),
        secs,
        format::bytes((stream.size as f64 / secs.max(1e-9)) as u64),
    );
    Ok(())
}
