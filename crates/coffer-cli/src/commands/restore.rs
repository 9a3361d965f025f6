//! `coffer restore`: a snapshot's stream to stdout (default) or a file. A file
//! target is written under a temporary name and renamed when complete, so a
//! failed restore never leaves a plausible-looking partial file.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use coffer_core::snapshot::{self, Filter};
use coffer_core::Error;

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
            repo.restore(&stream, out).await?;
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
            repo.restore(&stream, target).await?;
        }
        Some(path) => {
            let partial = partial_name(&path);
            let file = create_partial(&partial)
                .map_err(Error::Output)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            let done = repo.restore(&stream, file).await;
            if let Err(e) = done {
                let _ = std::fs::remove_file(&partial);
                return Err(e.into());
            }
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(Error::Output)?;
            std::fs::rename(&partial, &path)
                .map_err(Error::Output)
                .with_context(|| {
                    format!("cannot rename {} to {}", partial.display(), path.display())
                })?;
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
