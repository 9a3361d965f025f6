//! Looking inside without restoring: `stats`, `ls`, `diff` and `cat`.

use anyhow::Result;
use coffer_core::index::IndexedPack;
use coffer_core::snapshot::{self, Snapshot};
use serde_json::{json, Value};

use crate::cli::{CatArgs, CatWhat, DiffArgs, LsArgs, StatsArgs, StatsMode};
use crate::format;
use crate::stdout::{out, outln};

/// `coffer stats`: what the chosen snapshots hold and cost.
pub async fn stats(session: &super::Session<'_>, a: StatsArgs) -> Result<()> {
    let repo = session.open().await?;
    let all = repo.list_snapshots().await?;
    let chosen = snapshot::chosen(&all, &a.select.filter(), &a.snapshots)?;
    let snaps: Vec<&Snapshot> = chosen.iter().map(|(_, s)| s).collect();
    let s = repo.stats(&snaps).await?;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let stored_with_bases = s.stored_size + s.base_stored_size;
    if a.json {
        let total = match a.mode {
            StatsMode::RestoreSize => s.restore_size,
            StatsMode::RawData => stored_with_bases,
        };
        outln!(
            "{}",
            json!({
                // restic's keys
                "total_size": total,
                "snapshots_count": s.snapshots,
                "total_file_count": s.streams,
                "total_blob_count": s.chunks,
                "total_uncompressed_size": s.raw_size,
                "compression_ratio": ratio(s.raw_size, s.stored_size),
                // coffer's
                "restore_size": s.restore_size,
                "raw_size": s.raw_size,
                "stored_size": s.stored_size,
                "delta_chunks": s.delta_chunks,
                "base_chunks": s.base_chunks,
                "base_stored_size": s.base_stored_size,
                "dedup_ratio": ratio(s.restore_size, s.raw_size),
                "space_saving_ratio": ratio(s.restore_size, stored_with_bases),
            })
        )?;
        return Ok(());
    }
    out!(
        "snapshots: {} ({} streams)\n\
         restore size: {} (what restoring them all writes)\n\
         distinct chunks: {}, {} of data ({:.1}x deduplication)\n\
         stored: {} ({:.1}x smaller{})\n\
         {}\
         all in all: {} stored for {} of dumps ({:.1}x)\n",
        s.snapshots,
        s.streams,
        format::bytes(s.restore_size),
        s.chunks,
        format::bytes(s.raw_size),
        ratio(s.restore_size, s.raw_size),
        format::bytes(s.stored_size),
        ratio(s.raw_size, s.stored_size),
        match s.delta_chunks {
            0 => String::new(),
            n => format!(", {n} of the chunks as deltas"),
        },
        match s.base_chunks {
            0 => String::new(),
            n => format!(
                "bases kept for those deltas: {n} chunks, {}\n",
                format::bytes(s.base_stored_size)
            ),
        },
        format::bytes(stored_with_bases),
        format::bytes(s.restore_size),
        ratio(s.restore_size, stored_with_bases),
    )?;
    Ok(())
}

/// `coffer ls SNAPSHOT`: its streams.
pub async fn ls(session: &super::Session<'_>, a: LsArgs) -> Result<()> {
    let repo = session.open().await?;
    let all = repo.list_snapshots().await?;
    let (id, snap) = snapshot::select(&all, &a.snapshot)?;
    if a.json {
        outln!("{}", format::snapshot_json(id, snap)["streams"])?;
        return Ok(());
    }
    let mut text = String::new();
    for s in &snap.streams {
        text += &format!(
            "{}  {} ({} stored, {} added by this snapshot, {} chunks)\n",
            s.name,
            format::bytes(s.size),
            format::bytes(s.stored_size),
            format::bytes(s.added_size),
            s.chunks
        );
    }
    out!("{text}")?;
    Ok(())
}

/// `coffer diff A B`: per stream, bytes shared, added and removed.
pub async fn diff(session: &super::Session<'_>, a: DiffArgs) -> Result<()> {
    let repo = session.open().await?;
    let all = repo.list_snapshots().await?;
    let (_, first) = snapshot::select(&all, &a.a)?;
    let (_, second) = snapshot::select(&all, &a.b)?;
    let rows = repo.diff(first, second).await?;
    if a.json {
        let list: Vec<Value> = rows
            .iter()
            .map(|(name, d)| {
                json!({
                    "name": name,
                    "size_a": d.size_a,
                    "size_b": d.size_b,
                    "shared": d.shared,
                    "added": d.added,
                    "added_stored": d.added_stored,
                    "removed": d.removed,
                })
            })
            .collect();
        outln!("{}", Value::Array(list))?;
        return Ok(());
    }
    let mut text = String::new();
    for (name, d) in rows {
        text += &format!(
            "{name}: {} -> {}; {} in unchanged chunks, {} in new ones (stored in {}), \
             {} in chunks gone\n",
            format::bytes(d.size_a),
            format::bytes(d.size_b),
            format::bytes(d.shared),
            format::bytes(d.added),
            format::bytes(d.added_stored),
            format::bytes(d.removed),
        );
    }
    out!("{text}")?;
    Ok(())
}

/// `coffer cat`: a repository object, decrypted, as JSON.
pub async fn cat(session: &super::Session<'_>, a: CatArgs) -> Result<()> {
    let repo = session.open().await?;
    let v = match a.what {
        CatWhat::Config => {
            let c = repo.config();
            json!({
                "version": c.version,
                "id": hex::encode(c.id),
                "chunker": {
                    "min_size": c.chunker.min_size,
                    "avg_size": c.chunker.avg_size,
                    "max_size": c.chunker.max_size,
                },
                "pack_size": c.pack_size,
                "compression_level": c.compression_level,
                "delta": c.delta.to_string(),
            })
        }
        CatWhat::Snapshot => {
            let all = repo.list_snapshots().await?;
            let (id, snap) = snapshot::select(&all, a.id.as_deref().unwrap_or_default())?;
            let mut v = format::snapshot_json(id, snap);
            for (json, s) in v["streams"]
                .as_array_mut()
                .into_iter()
                .flatten()
                .zip(&snap.streams)
            {
                json["sketch"] = s
                    .sketch
                    .map(|t| json!({"id": t.id.to_hex(), "size": t.size}))
                    .unwrap_or(Value::Null);
            }
            v
        }
        CatWhat::Index => {
            let (name, file) = repo.index_file(a.id.as_deref().unwrap_or_default()).await?;
            json!({
                "id": name,
                "supersedes": file.supersedes.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
                "packs": file.packs.iter().map(pack_json).collect::<Vec<_>>(),
                "marked": file.marked.iter().map(|m| json!({
                    "marked_unix_ns": m.marked_unix_ns,
                    "pack": pack_json(&m.pack),
                })).collect::<Vec<_>>(),
            })
        }
    };
    outln!("{}", serde_json::to_string_pretty(&v)?)?;
    Ok(())
}

fn pack_json(p: &IndexedPack) -> Value {
    json!({
        "id": p.id.to_hex(),
        "size": p.size,
        "blobs": p.blobs.iter().map(|b| json!({
            "id": b.id.to_hex(),
            "kind": b.kind,
            "encoding": b.encoding,
            "offset": b.offset,
            "length": b.length,
            "raw_length": b.raw_length,
        })).collect::<Vec<_>>(),
        "delta_bases": p.bases.iter().map(|d| json!({
            "id": d.id.to_hex(),
            "bases": d.bases.iter().map(|b| b.to_hex()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
