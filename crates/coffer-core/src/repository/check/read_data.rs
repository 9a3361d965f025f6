//! `check --read-data`: downloads the chosen packs, two at a time, and
//! opens every blob in them against the index's listing of the pack. The
//! listings come from one pass over the index ([`BlobMap::scan_listings_of`]),
//! a table (or a batch of packs) at a time, never for every pack at once.

use std::collections::HashMap;

use futures::StreamExt;

use super::{CheckReport, Problem};
use crate::backend::{object_path, Kind};
use crate::error::{Error, Result};
use crate::id::{content_hash, BlobId, PackId};
use crate::index::{BlobLocation, IndexedPack, Kept, ScanError};
use crate::pack;
use crate::repository::blobs::{open_in, BlobReader, Opened};
use crate::repository::{blocking, Repository};

/// Downloads packs `selected` (canonical numbers) and opens every blob in
/// them, two packs at a time, adding what it finds to `report`. `kept` is
/// what the index's pass over the blobs it keeps returned.
pub(super) async fn read_packs(
    repo: &Repository,
    reader: &BlobReader,
    kept: Kept,
    selected: Vec<u32>,
    report: &mut CheckReport,
) -> Result<()> {
    if selected.is_empty() {
        return Ok(());
    }
    // The listings are made on a blocking thread as the reads take them.
    let (tx, rx) = tokio::sync::mpsc::channel::<IndexedPack>(2);
    let scanner = reader.clone();
    let listings = tokio::task::spawn_blocking(move || {
        scanner
            .index()
            .scan_listings_of(&kept, &selected, |(_, pack)| {
                tx.blocking_send(pack)
                    .map_err(|_| ScanError("check stopped reading".into()))
            })
    });
    let listed = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|p| (p, rx)) });
    let results = listed
        .map(|pack| read_pack(repo, reader, pack))
        .buffer_unordered(2);
    let mut results = std::pin::pin!(results);
    while let Some(r) = results.next().await {
        let (blobs, problems) = r?;
        report.packs_read += 1;
        report.blobs_read += blobs;
        report.errors.extend(problems);
    }
    listings
        .await
        .expect("listing scan panicked")
        .map_err(|e| super::table_error(e.0))
}

/// Downloads one pack and opens every blob it holds; returns the number of
/// blobs opened and the problems found.
/// Deltas are decoded against their bases, read through `reader`.
async fn read_pack(
    repo: &Repository,
    reader: &BlobReader,
    expected: IndexedPack,
) -> Result<(u64, Vec<Problem>)> {
    let path = object_path(Kind::Pack, &expected.id.to_hex());
    let bytes = match repo.backend.get(&path).await {
        Ok(b) => b,
        Err(Error::Missing { object }) => {
            return Ok((
                0,
                vec![Problem {
                    object,
                    message: "disappeared during the check".into(),
                }],
            ))
        }
        Err(e) => return Err(e),
    };
    let key = repo.key.clone();
    let number = reader.index().pack_number(&expected.id);
    let (opened, mut deltas, mut problems) = blocking({
        let path = path.clone();
        move || {
            let mut problems = Vec::new();
            let mut err = |message: String| {
                problems.push(Problem {
                    object: path.clone(),
                    message,
                })
            };
            if PackId(content_hash(&bytes)) != expected.id {
                err("content does not match its name (damaged in storage)".into());
            }
            let (salt, header) = match pack::read_header(&key, &bytes) {
                Ok(h) => h,
                Err(reason) => {
                    err(format!("header: {reason}"));
                    return (0, Vec::new(), problems);
                }
            };
            if salt != expected.salt {
                err("the index records another salt for this pack".into());
            }
            let in_header: HashMap<BlobId, &pack::BlobEntry> =
                header.iter().map(|e| (e.id, e)).collect();
            for e in &expected.blobs {
                if in_header.get(&e.id).map(|h| **h) != Some(*e) {
                    err(format!(
                        "blob {} is indexed here but not in the pack's header",
                        e.id.short()
                    ));
                }
            }
            let subkey = key.subkey(&salt);
            let mut opened = 0;
            let mut deltas = Vec::new();
            for e in &header {
                match open_in(&key, &subkey, e, &bytes, 0) {
                    Ok(Opened::Plain(_)) => opened += 1,
                    Ok(delta) => deltas.push((e.id, delta)),
                    Err(reason) => err(reason),
                }
            }
            (opened, deltas, problems)
        }
    })
    .await;
    // Deltas decode against their bases (read through the index, with the
    // reader's cache), one at a time: a failure names the delta and base.
    // A delta copy the index does not list in this pack (a duplicate, or
    // one re-basing replaced) is no reader's concern: its bases may be
    // gone, so its AEAD check (done above) is all that applies.
    let mut opened = opened;
    if let Some(number) = number {
        for (_, delta) in deltas.drain(..) {
            let listed = match &delta {
                Opened::Delta { entry, .. } => reader
                    .index()
                    .bases(&BlobLocation {
                        pack: number,
                        entry: *entry,
                    })
                    .is_some(),
                Opened::Plain(_) => true,
            };
            if !listed {
                opened += 1;
                continue;
            }
            match reader.finish(number, vec![delta]).await {
                Ok(_) => opened += 1,
                Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
                    problems.push(Problem {
                        object: path.clone(),
                        message: e.to_string(),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }
    for (id, _) in deltas {
        problems.push(Problem {
            object: path.clone(),
            message: format!(
                "delta blob {} is in a pack the index does not list",
                id.short()
            ),
        });
    }
    Ok((opened, problems))
}
