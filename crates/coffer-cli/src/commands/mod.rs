//! One function per subcommand; this module holds what they share: opening
//! the repository and naming who acts.

mod backup;
mod init;
mod restore;
mod snapshots;

use anyhow::Result;
use coffer_core::backend::Backend;
use coffer_core::{Actor, Repository};

use crate::cli::{Cli, Command, Global};
use crate::exit::UsageError;
use crate::password;

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => init::run(&cli.global, a).await,
        Command::Backup(a) => backup::run(&cli.global, a).await,
        Command::Snapshots(a) => snapshots::run(&cli.global, a).await,
        Command::Restore(a) => restore::run(&cli.global, a).await,
    }
}

fn location(g: &Global) -> Result<&str> {
    g.repo.as_deref().ok_or_else(|| {
        UsageError("no repository given: set COFFER_REPOSITORY or pass --repo".into()).into()
    })
}

/// Opens and unlocks the repository named by the global settings.
async fn open(g: &Global) -> Result<Repository> {
    let backend = Backend::from_location(location(g)?, false)?;
    let password = password::read(g.password_file.as_deref(), false)?;
    Ok(Repository::open(backend, &password).await?)
}

/// This machine and user.
fn actor() -> Actor {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    Actor { host, user }
}
