//! `coffer check`: prints every problem, one line each, and fails (exit 16)
//! when any was found.

use anyhow::Result;
use coffer_core::{CheckOptions, Error, ReadData};

use crate::cli::CheckArgs;

pub async fn run(session: &super::Session<'_>, a: CheckArgs) -> Result<()> {
    let repo = session.open().await?;
    let read_data = match (a.read_data, a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(subset)) => subset,
        (false, None) => ReadData::None,
    };
    let report = repo.check(CheckOptions { read_data }).await?;
    for p in &report.notes {
        println!("note: {}: {}", p.object, p.message);
    }
    for p in &report.errors {
        if p.object.is_empty() {
            println!("error: {}", p.message);
        } else {
            println!("error: {}: {}", p.object, p.message);
        }
    }
    println!(
        "checked {} snapshots and {} packs; read {} packs ({} blobs)",
        report.snapshots, report.packs, report.packs_read, report.blobs_read
    );
    if report.errors.is_empty() {
        println!("no errors were found");
        Ok(())
    } else {
        let first = &report.errors[0];
        Err(Error::Corrupt {
            object: format!(
                "the repository ({} problems; first: {})",
                report.errors.len(),
                first.object
            ),
            reason: first.message.clone(),
        }
        .into())
    }
}
