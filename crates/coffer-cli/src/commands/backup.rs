//! `coffer backup --stdin`, `--stdin-from-command -- CMD...`, or several
//! `--stream NAME=COMMAND`: streams in, one snapshot out.

use anyhow::{Context, Result};
use coffer_core::producer::Producer;
use coffer_core::progress::BackupProgress;
use coffer_core::repository::OpenStream;
use coffer_core::snapshot::{self, Filter};
use coffer_core::{BackupOptions, Error};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::BackupArgs;
use crate::stdout::outln;
use crate::{format, metrics, progress};

/// Runs the backup, then reports its outcome as metrics when asked to (a
/// failure too: that is what alerts are for).
pub async fn run(session: &super::Session<'_>, mut a: BackupArgs) -> Result<()> {
    let started = Instant::now();
    let actor = super::actor();
    let host = a.host.take().unwrap_or(actor.host);
    let files = a.files.as_deref().map(crate::files::walk).transpose()?;
    let names: Vec<String> = if let Some(files) = &files {
        files.iter().map(|(n, _)| n.clone()).collect()
    } else if a.streams.is_empty() {
        vec![a.stdin_filename.clone().unwrap_or_else(|| "stdin".into())]
    } else {
        a.streams.iter().map(|(n, _)| n.clone()).collect()
    };
    let (metrics_file, pushgateway) = (a.metrics_file.take(), a.pushgateway.take());
    let want_metrics = metrics_file.is_some() || pushgateway.is_some();
    let who = (host.clone(), actor.user);
    let result = backup(session, a, who, &names, files, want_metrics).await;
    if !want_metrics {
        return result.map(|_| ());
    }
    let now = metrics::now();
    let samples = match &result {
        Ok(streams) => metrics::succeeded(streams, started.elapsed().as_secs_f64(), now),
        Err(e) => metrics::failed(&names, crate::exit::code_for(e), now),
    };
    if let Some(path) = metrics_file {
        if let Err(e) = metrics::write_file(&path, &host, &samples) {
            eprintln!(
                "coffer: warning: cannot write metrics to {}: {e}",
                path.display()
            );
        }
    }
    if let Some(url) = pushgateway {
        if let Err(e) = metrics::push(&url, &host, &names, &samples).await {
            eprintln!("coffer: warning: cannot push metrics to {url}: {e}");
        }
    }
    result.map(|_| ())
}

/// The backup itself; returns what metrics report per stream.
async fn backup(
    session: &super::Session<'_>,
    a: BackupArgs,
    (host, user): (String, String),
    names: &[String],
    files: Option<Vec<(String, std::path::PathBuf)>>,
    want_metrics: bool,
) -> Result<Vec<metrics::StreamResult>> {
    let repo = session.open().await?;
    let parent = match &a.parent {
        Some(query) => {
            let snaps = repo.list_snapshots().await?;
            Some(snapshot::select(&snaps, query)?.0)
        }
        None => None,
    };
    let progress = Arc::new(BackupProgress::new());
    let opts = BackupOptions {
        name: names[0].clone(),
        tags: a.tags.into_iter().filter(|t| !t.is_empty()).collect(),
        host,
        user,
        time: a.time,
        compression_level: a.compression,
        allow_empty: a.allow_empty,
        upload_concurrency: a.connections,
        recheck_after: std::time::Duration::from_secs(session.global.recheck_after_secs),
        progress: Some(progress.clone()),
        delta: a.delta,
        parent,
        parallel: a.parallel.into(),
    };
    let display = progress::start(progress, names.to_vec(), !session.global.quiet);
    let s = if let Some(files) = files {
        let sources: Vec<(String, OpenStream)> = files
            .into_iter()
            .map(|(name, path)| {
                let open: OpenStream = Box::new(move || {
                    let f = std::fs::File::open(&path).map_err(|e| {
                        Error::Input(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", path.display()),
                        ))
                    })?;
                    Ok(Box::new(f) as Box<dyn std::io::Read + Send>)
                });
                (name, open)
            })
            .collect();
        // A dump folder may hold empty files (an empty table's data).
        let opts = BackupOptions {
            allow_empty: true,
            ..opts
        };
        repo.backup_streams(sources, opts).await?
    } else if !a.streams.is_empty() {
        let sources: Vec<(String, OpenStream)> = a
            .streams
            .into_iter()
            .map(|(name, command)| {
                let open: OpenStream = Box::new(move || {
                    let argv = ["sh".to_string(), "-c".to_string(), command];
                    let p = Producer::spawn(&argv).map_err(Error::Producer)?;
                    Ok(Box::new(p) as Box<dyn std::io::Read + Send>)
                });
                (name, open)
            })
            .collect();
        repo.backup_streams(sources, opts).await?
    } else if a.stdin_from_command {
        let producer = Producer::spawn(&a.command).map_err(Error::Producer)?;
        repo.backup(producer, opts).await?
    } else {
        repo.backup(std::io::stdin(), opts).await?
    };
    drop(display);
    let size: u64 = s.snapshot.size();
    let secs = s.duration.as_secs_f64();
    if a.json {
        let first = &s.snapshot.streams[0];
        let v = json!({
            // restic's summary fields that apply (a stream counts as a file)
            "message_type": "summary",
            "data_blobs": s.new_chunks,
            "data_added": s.snapshot.added_size(),
            "total_files_processed": s.snapshot.streams.len(),
            "total_bytes_processed": size,
            "total_duration": secs,
            "snapshot_id": s.snapshot_id.to_hex(),
            "short_id": s.snapshot_id.short(),
            "name": first.name,
            "bytes_read": size,
            "chunks": s.snapshot.streams.iter().map(|x| x.chunks).sum::<u64>(),
            "new_chunks": s.new_chunks,
            "new_bytes": s.new_bytes,
            "delta_chunks": s.delta_chunks,
            "base_bytes_read": s.base_bytes_read,
            "base_bytes_local": s.base_bytes_local,
            "stored_size": s.snapshot.stored_size(),
            "bytes_added": s.snapshot.added_size(),
            "bytes_uploaded": s.bytes_uploaded,
            "packs_written": s.packs_written,
            "duration_seconds": secs,
            "streams": s.snapshot.streams.iter().map(|x| json!({
                "name": x.name,
                "bytes_read": x.size,
                "chunks": x.chunks,
                "stored_size": x.stored_size,
                "added_size": x.added_size,
            })).collect::<Vec<_>>(),
            "requests": repo.backend().requests(),
        });
        outln!("{v}").with_context(|| {
            format!(
                "snapshot {} was saved, but printing its summary failed",
                s.snapshot_id.short()
            )
        })?;
    }
    if session.global.verbose >= 2 {
        session.say(format_args!(
            "  {} packs written, {} uploaded in all, {} of deltas' bases read",
            s.packs_written,
            format::bytes(s.bytes_uploaded),
            format::bytes(s.base_bytes_read + s.base_bytes_local),
        ));
    }
    if s.snapshot.streams.len() > 1 || session.global.verbose > 0 {
        for x in &s.snapshot.streams {
            session.say(format_args!(
                "  stream {}: {} read, {} added, {} stored after compression",
                x.name,
                format::bytes(x.size),
                format::bytes(x.added_size),
                format::bytes(x.stored_size),
            ));
        }
    }
    if s.delta_chunks > 0 {
        let local = match s.base_bytes_local {
            0 => String::new(),
            n => format!(", {} from local copies", format::bytes(n)),
        };
        session.say(format_args!(
            "  {} new chunks stored as deltas against the previous version \
             ({} of bases read from the repository{local})",
            s.delta_chunks,
            format::bytes(s.base_bytes_read),
        ));
    }
    session.say(format_args!(
        "snapshot {} saved: {} read in {:.1}s ({}/s), {} new, {} added to the repository \
         ({} uploaded); stored size {} after compression",
        s.snapshot_id.short(),
        format::bytes(size),
        secs,
        format::bytes((size as f64 / secs.max(1e-9)) as u64),
        format::bytes(s.new_bytes),
        format::bytes(s.snapshot.added_size()),
        format::bytes(s.bytes_uploaded),
        format::bytes(s.snapshot.stored_size()),
    ));
    if !want_metrics {
        return Ok(Vec::new());
    }
    // Snapshots of each stream for this host, this one included (cached
    // snapshot objects are not downloaded again).
    let all = repo.list_snapshots().await?;
    Ok(s.snapshot
        .streams
        .iter()
        .map(|x| metrics::StreamResult {
            name: x.name.clone(),
            read: x.size,
            added: x.added_size,
            stored: x.stored_size,
            snapshots: Filter {
                hosts: vec![s.snapshot.host.clone()],
                names: vec![x.name.clone()],
                ..Filter::default()
            }
            .apply(&all)
            .len(),
        })
        .collect())
}
