//! `coffer prune` (and `forget --prune`): reclaim unused space, in two
//! phases so that concurrent backups stay safe.

use anyhow::Result;
use coffer_core::{MaxUnused, PruneOptions, PruneReport, Repository};
use serde_json::json;

use crate::cli::{PruneArgs, PruneCommandArgs};
use crate::exit::CliFailure;
use crate::format::bytes;

pub async fn run(session: &super::Session<'_>, a: PruneCommandArgs) -> Result<()> {
    let repo = session.open().await?;
    prune(session, &repo, &a.prune, a.dry_run, a.json).await
}

/// Prunes an open repository and prints the report.
pub async fn prune(
    _session: &super::Session<'_>,
    repo: &Repository,
    a: &PruneArgs,
    dry_run: bool,
    as_json: bool,
) -> Result<()> {
    let max_unused: MaxUnused = a
        .max_unused
        .parse()
        .map_err(|e: String| CliFailure::usage(format!("--max-unused: {e}")))?;
    let d = a.delete_delay;
    let hours =
        d.years as u64 * 365 * 24 + d.months as u64 * 30 * 24 + d.days as u64 * 24 + d.hours as u64;
    let opts = PruneOptions {
        max_unused,
        delete_delay: std::time::Duration::from_secs(hours * 3600),
        dry_run,
        host: super::actor().host,
    };
    let r = repo.prune(opts).await?;
    if as_json {
        let mut v = report_json(&r, dry_run);
        v["requests"] = serde_json::to_value(repo.backend().requests())?;
        println!("{v}");
    } else {
        eprint!("{}", report_text(&r, dry_run));
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
    if r.packs_unmarked > 0 {
        out.push_str(&format!(
            "{} marked packs are needed again by new snapshots and {}\n",
            r.packs_unmarked,
            verb("unmarked")
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
    if r.unindexed_young > 0 {
        out.push_str(&format!(
            "{} unindexed packs are younger than the delete delay (a backup may be writing them) and stay\n",
            r.unindexed_young
        ));
    }
    if r.packs_missing > 0 {
        out.push_str(&format!(
            "warning: {} indexed packs are missing from storage; run `coffer check`\n",
            r.packs_missing
        ));
    }
    out.push_str(&format!(
        "unused space left in kept packs: {} of {}\n",
        bytes(r.unused_bytes_left),
        bytes(r.kept_bytes)
    ));
    out
}

fn report_json(r: &PruneReport, dry_run: bool) -> serde_json::Value {
    json!({
        "dry_run": dry_run,
        "snapshots": r.snapshots,
        "used_blobs": r.used_blobs,
        "packs_before": r.packs_before,
        "packs_marked": r.packs_marked,
        "bytes_marked": r.bytes_marked,
        "packs_unmarked": r.packs_unmarked,
        "packs_waiting": r.packs_waiting,
        "packs_deleted": r.packs_deleted,
        "bytes_deleted": r.bytes_deleted,
        "unindexed_deleted": r.unindexed_deleted,
        "unindexed_young": r.unindexed_young,
        "packs_repacked": r.packs_repacked,
        "packs_written": r.packs_written,
        "packs_missing": r.packs_missing,
        "unused_bytes_left": r.unused_bytes_left,
        "kept_bytes": r.kept_bytes,
        "index_files_deleted": r.index_files_deleted,
    })
}
