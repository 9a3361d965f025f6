//! `coffer prune` (and `forget --prune`): reclaim unused space, in two
//! phases so that concurrent backups stay safe.

use anyhow::Result;
use coffer_core::{PruneOptions, PruneReport, Repository};

use crate::cli::{PruneArgs, PruneCommandArgs};
use crate::format::bytes;
use crate::stdout::outln;

pub async fn run(session: &super::Session<'_>, a: PruneCommandArgs) -> Result<()> {
    let repo = session.open().await?;
    prune(session, &repo, &a.prune, a.dry_run, a.json).await
}

/// Prunes an open repository and prints the report.
pub async fn prune(
    session: &super::Session<'_>,
    repo: &Repository,
    a: &PruneArgs,
    dry_run: bool,
    as_json: bool,
) -> Result<()> {
    let d = a.delete_delay;
    let hours =
        d.years as u64 * 365 * 24 + d.months as u64 * 30 * 24 + d.days as u64 * 24 + d.hours as u64;
    let opts = PruneOptions {
        max_unused: a.max_unused,
        delete_delay: std::time::Duration::from_secs(a.delete_delay_secs.unwrap_or(hours * 3600)),
        dry_run,
        recheck_after: std::time::Duration::from_secs(session.global.recheck_after_secs),
        host: super::actor().host,
        rebase: !a.no_rebase,
    };
    let r = repo.prune(opts).await?;
    if as_json {
        let mut v = serde_json::to_value(&r)?;
        v["dry_run"] = dry_run.into();
        v["requests"] = serde_json::to_value(repo.backend().requests())?;
        outln!("{v}")?;
    } else {
        // The report is information; a warning in it is printed even with -q.
        let text = report_text(&r, dry_run);
        for line in text.lines() {
            if line.starts_with("warning:") {
                eprintln!("coffer: {line}");
            } else {
                session.say(line);
            }
        }
    }
    Ok(())
}

fn report_text(r: &PruneReport, dry_run: bool) -> String {
    let verb = |done: &str| {
        if dry_run {
            format!("would be {done}")
        } else {
            done.to_string()
        }
    };
    let mut out = format!(
        "{} snapshots use {} blobs; {} packs indexed\n",
        r.snapshots, r.used_blobs, r.packs_before
    );
    out.push_str(&format!(
        "{} packs {} ({}; deleted after the delete delay), {} of them repacked into {} new packs\n",
        r.packs_marked,
        verb("marked unused"),
        bytes(r.bytes_marked),
        r.packs_repacked,
        r.packs_written
    ));
    if r.packs_rescued > 0 {
        out.push_str(&format!(
            "{} marked packs are needed again by new snapshots: their used blobs {} into new packs\n",
            r.packs_rescued,
            verb("copied")
        ));
    }
    if r.chunks_made_whole + r.chunks_made_deltas > 0 {
        out.push_str(&format!(
            "re-basing: {} chunks {} whole, {} {} as deltas against newer versions ({} written)\n",
            r.chunks_made_whole,
            verb("stored"),
            r.chunks_made_deltas,
            if dry_run { "to be tried" } else { "stored" },
            bytes(r.bytes_rebased)
        ));
    }
    out.push_str(&format!(
        "{} packs {} ({}), {} of them left by interrupted backups; {} marked packs wait for the delay\n",
        r.packs_deleted,
        verb("deleted"),
        bytes(r.bytes_deleted),
        r.unindexed_deleted,
        r.packs_waiting
    ));
    if let (Some(at), false) = (r.freed_after_unix_ns, dry_run) {
        let when = jiff::Timestamp::from_nanosecond(at as i128)
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|_| "later".into());
        out.push_str(&format!(
            "{} in marked packs is freed by a prune run after {when} (the delete delay keeps it \
             for backups that may still use it)\n",
            bytes(r.bytes_waiting)
        ));
    }
    if r.unindexed_young > 0 {
        out.push_str(&format!(
            "{} unindexed packs are younger than the delete delay (a backup may be writing them) and stay\n",
            r.unindexed_young
        ));
    }
    if r.packs_missing > 0 {
        out.push_str(&format!(
            "warning: {} indexed packs are missing from storage and {} from the index; run `coffer check`\n",
            r.packs_missing,
            verb("dropped")
        ));
    }
    out.push_str(&format!(
        "unused space left in kept packs: {} of {}\n",
        bytes(r.unused_bytes_left),
        bytes(r.kept_bytes)
    ));
    out
}
