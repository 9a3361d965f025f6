//! `coffer restore`: a snapshot's stream to stdout (default) or a file, or
//! all its streams into a folder (`--target`). A file is written under a
//! temporary name and renamed when complete, so a failed restore never
//! leaves a plausible-looking partial file.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use coffer_core::repository::Restorer;
use coffer_core::snapshot::{self, Filter, StreamEntry};
use coffer_core::{Error, Repository};

use crate::exit::CliFailure;

use crate::cli::RestoreArgs;

pub async fn run(session: &super::Session<'_>, a: RestoreArgs) -> Result<()> {
    let repo = session.open().await?;
    let snaps = repo.list_snapshots().await?;
    // `latest` means the newest snapshot of this host that holds the stream
    // asked for: one repository often keeps several databases' backups.
    let filter = Filter {
        hosts: a.host.iter().cloned().collect(),
        ..Filter::default()
    };
    let (id, snap) = match snapshot::find(&snaps, &filter, &a.snapshot, a.stream.as_deref()) {
        Err(e) if !filter.is_empty() => {
            return Err(anyhow::Error::from(e).context(format!("looking for {}", filter.describe())))
        }
        found => found?,
    };
    if let Some(target) = &a.target {
        let streams = match &a.stream {
            Some(_) => vec![snap.stream(id, a.stream.as_deref())?.clone()],
            None => snap.streams.clone(),
        };
        return restore_folder(session, &repo, id, &streams, target, a.overwrite).await;
    }
    let stream = snap.stream(id, a.stream.as_deref())?.clone();
    match a.output {
        None => {
            // An unbuffered handle on fd 1: blobs are large, Stdout's line
            // buffering would only copy them.
            let fd = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(Error::Output)?;
            let out = File::from(fd);
            // Redirected to a file (`> dump.sql`): a write error the disk
            // reports late (on flush to storage) must fail the restore too.
            let file = out
                .metadata()
                .is_ok_and(|m| m.is_file())
                .then(|| out.try_clone())
                .transpose()
                .map_err(Error::Output)?;
            let r = repo.restore(&stream, out).await?;
            say_read(session, &r);
            if let Some(file) = file {
                file.sync_all().map_err(Error::Output)?;
            }
        }
        // A device or pipe (/dev/null, a FIFO) is written in place: renaming
        // a file over it would replace it.
        Some(path) if path.metadata().is_ok_and(|m| !m.is_file()) => {
            let target = File::options()
                .write(true)
                .open(&path)
                .map_err(Error::Output)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let r = repo.restore(&stream, target).await?;
            say_read(session, &r);
        }
        Some(path) => {
            let r = restore_to_file(&repo.restorer().await?, &stream, &path).await?;
            say_read(session, &r);
            session.say(format_args!(
                "restored {} ({} bytes) to {}",
                id.short(),
                stream.size,
                path.display()
            ));
        }
    }
    Ok(())
}

/// With -vv: what a restore read.
fn say_read(session: &super::Session<'_>, r: &coffer_core::repository::RestoreSummary) {
    if session.global.verbose >= 2 {
        session.say(format_args!(
            "restored {} bytes from {} blobs in {} ranged reads of data packs, {:.2}s",
            r.bytes,
            r.blobs,
            r.data_reads,
            r.duration.as_secs_f64()
        ));
    }
}

/// Restores `stream` into the file `path`: written under a partial name,
/// synced, then renamed into place.
async fn restore_to_file(
    restorer: &Restorer,
    stream: &StreamEntry,
    path: &Path,
) -> Result<coffer_core::repository::RestoreSummary> {
    let partial = partial_name(path);
    let file = create_partial(&partial)
        .map_err(Error::Output)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let summary = match restorer.restore(stream, file).await {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(Error::Output)?;
    std::fs::rename(&partial, path)
        .map_err(Error::Output)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    Ok(summary)
}

/// `restore --target DIR`: each stream as the file its name gives under
/// `target`. Every name is checked, and (without `overwrite`) every file
/// found absent, before anything is written; folders are created, never
/// followed through a link.
async fn restore_folder(
    session: &super::Session<'_>,
    repo: &Repository,
    id: &coffer_core::id::SnapshotId,
    streams: &[StreamEntry],
    target: &Path,
    overwrite: bool,
) -> Result<()> {
    let mut plan = Vec::new();
    for s in streams {
        let path = crate::files::target_path(target, &s.name).ok_or_else(|| {
            CliFailure::usage(format!(
                "stream {:?} of snapshot {} is not a plain relative path; restore it with \
                 --stream and --output",
                s.name,
                id.short()
            ))
        })?;
        if !overwrite && std::fs::symlink_metadata(&path).is_ok() {
            return Err(CliFailure::usage(format!(
                "{} exists; pass --overwrite to replace it",
                path.display()
            ))
            .into());
        }
        plan.push((s, path));
    }
    let restorer = repo.restorer().await?;
    let mut bytes = 0;
    for (s, path) in &plan {
        let parent = path.parent().expect("a file under the target");
        make_folders(target, parent)?;
        let r = restore_to_file(&restorer, s, path).await?;
        say_read(session, &r);
        bytes += s.size;
    }
    session.say(format_args!(
        "restored {} streams of {} ({} bytes) under {}",
        plan.len(),
        id.short(),
        bytes,
        target.display()
    ));
    Ok(())
}

/// Creates `folder` (under `target`, itself created if missing) one level
/// at a time, refusing to pass through a link.
fn make_folders(target: &Path, folder: &Path) -> Result<()> {
    let mut at = PathBuf::new();
    let below = folder.strip_prefix(target).expect("under the target");
    for part in std::iter::once(target.as_os_str()).chain(below.iter()) {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(CliFailure::usage(format!(
                    "{} is not a folder (a link or a file); not writing through it",
                    at.display()
                ))
                .into())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at)
                    .map_err(Error::Output)
                    .with_context(|| format!("cannot create {}", at.display()))?;
            }
            Err(e) => {
                return Err(anyhow::Error::from(Error::Output(e))
                    .context(format!("cannot read {}", at.display())))
            }
        }
    }
    Ok(())
}

/// Creates the partial file afresh, 0600, never through a link: a leftover
/// of a killed restore (or anything planted under that name, a symlink to
/// another file say) is removed, not written through.
fn create_partial(partial: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::symlink_metadata(partial) {
        Ok(m) if m.is_dir() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a directory has the partial file's name",
            ))
        }
        Ok(_) => std::fs::remove_file(partial)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // create_new is O_CREAT | O_EXCL: it fails rather than follow a link
    // planted between the removal and here.
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(partial)
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".coffer-partial");
    path.with_file_name(name)
}
