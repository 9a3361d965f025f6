//! `coffer init`: create a repository with a first password key.

use anyhow::Result;
use coffer_core::chunker::ChunkerParams;
use coffer_core::{InitOptions, Repository};

use crate::cli::InitArgs;
use crate::password;

pub async fn run(session: &super::Session<'_>, a: InitArgs) -> Result<()> {
    let g = session.global;
    let location = session.location()?;
    let kdf = a.kdf.params();

    let opts = InitOptions {
        kdf,
        chunker: ChunkerParams::DEFAULT,
        pack_size: a.pack_size.saturating_mul(1024 * 1024),
        compression_level: a.compression,
        delta: a.delta,
    };
    let backend = session.backend(true)?;
    let password = password::read(
        g.password_file.as_deref(),
        g.password_command.as_deref(),
        true,
    )?;
    let repo = Repository::init(backend, &password, opts, &super::actor()).await?;
    session.say(format_args!(
        "created coffer repository {} at {location}",
        hex_short(&repo.config().id)
    ));
    Ok(())
}

fn hex_short(id: &[u8; 32]) -> String {
    id[..4].iter().map(|b| format!("{b:02x}")).collect()
}
