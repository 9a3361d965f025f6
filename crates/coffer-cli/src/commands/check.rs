//! `coffer check`: prints every problem, one line each, and fails (exit 16)
//! when any was found.

use anyhow::Result;
use coffer_core::{CheckOptions, Error, ReadData};

use crate::cli::CheckArgs;
use crate::stdout::out;

pub async fn run(session: &super::Session<'_>, a: CheckArgs) -> Result<()> {
    let repo = session.open().await?;
    let read_data = match (a.read_data, a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(subset)) => subset,
        (false, None) => ReadData::None,
    };
    let report = repo.check(CheckOptions { read_data }).await?;
    let mut text = String::new();
    for p in &report.notes {
        text += &format!("note: {}: {}\n", p.object, p.message);
    }
    for p in &report.errors {
        if p.object.is_empty() {
            text += &format!("error: {}\n", p.message);
        } else {
            text += &format!("error: {}: {}\n", p.object, p.message);
        }
    }
    text += &format!(
        "checked {} snapshots and {} packs; read {} packs ({} blobs)\n",
        report.snapshots, report.packs, report.packs_read, report.blobs_read
    );
    if report.errors.is_empty() {
        text += "no errors were found\n";
    }
    // Damage is exit 16 even when the listing could not be printed.
    let printed = out!("{text}");
    if report.errors.is_empty() {
        printed?;
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
