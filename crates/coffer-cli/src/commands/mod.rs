//! One function per subcommand; this module holds what they share: opening
//! the repository and naming who acts.

mod backup;
mod check;
mod copy;
mod forget;
mod init;
mod inspect;
mod key;
mod prune;
mod restore;
mod snapshots;
mod status;

use anyhow::Result;
use coffer_core::backend::counting::RequestCounts;
use coffer_core::backend::Backend;
use coffer_core::cache::Cache;
use coffer_core::{Actor, Repository};

use crate::cli::{Cli, Command, Global};

use crate::exit::CliFailure;
use crate::{format, password};

/// What a command shares: the global settings and, once opened, the storage
/// (kept to report the requests made).
pub struct Session<'a> {
    pub global: &'a Global,
    backend: std::sync::Mutex<Option<Backend>>,
}

impl Session<'_> {
    /// The repository location.
    fn location(&self) -> Result<&str> {
        self.global.repo.as_deref().ok_or_else(|| {
            CliFailure::usage("no repository given: set COFFER_REPOSITORY or pass --repo".into())
                .into()
        })
    }

    /// Opens the storage (creating a local directory when `create`).
    fn backend(&self, create: bool) -> Result<Backend> {
        let backend = Backend::open(self.location()?, create, &self.global.options)?;
        *self.backend.lock().expect("session lock") = Some(backend.clone());
        Ok(backend)
    }

    /// Opens and unlocks the repository.
    async fn open(&self) -> Result<Repository> {
        let backend = self.backend(false)?;
        let g = self.global;
        let password = password::read(
            g.password_file.as_deref(),
            g.password_command.as_deref(),
            false,
        )?;
        self.unlock(backend, &password).await
    }

    /// Opens and unlocks the repository a `copy` writes into, with the
    /// same cache settings as the source.
    async fn open_target(&self, a: &crate::cli::CopyArgs) -> Result<Repository> {
        let backend = Backend::open(&a.to, false, &a.to_options)?;
        let password = password::read_target(
            a.to_password_file.as_deref(),
            a.to_password_command.as_deref(),
        )?;
        self.unlock(backend, &password).await
    }

    /// Unlocks the repository on `backend`, using the local cache unless
    /// told not to.
    async fn unlock(&self, backend: Backend, password: &[u8]) -> Result<Repository> {
        let mut repo = Repository::open(backend, password).await?;
        if !self.global.no_cache {
            if let Some(root) = self.global.cache_dir.clone().or_else(Cache::default_root) {
                repo.use_cache(root, self.global.cache_limit);
            }
        }
        Ok(repo)
    }

    /// An informational line on stderr, unless `--quiet`.
    pub fn say(&self, line: impl std::fmt::Display) {
        if !self.global.quiet {
            eprintln!("{line}");
        }
    }

    /// Requests made so far, if storage was opened.
    pub fn requests(&self) -> Option<RequestCounts> {
        self.backend
            .lock()
            .expect("session lock")
            .as_ref()
            .map(Backend::requests)
    }
}

/// Runs the parsed command; with `-v`, reports the storage requests made,
/// whether the command succeeded or not.
pub async fn run(cli: Cli) -> Result<()> {
    let session = Session {
        global: &cli.global,
        backend: std::sync::Mutex::new(None),
    };
    let result = match cli.command {
        Command::Init(a) => init::run(&session, a).await,
        Command::Backup(a) => backup::run(&session, a).await,
        Command::Snapshots(a) => snapshots::run(&session, a).await,
        Command::Version => version(),
        Command::Completion { shell } => completion(shell),
        Command::Man { dir } => man_pages(&dir),
        Command::Unlock(a) => unlock(&session, a).await,
        Command::Restore(a) => restore::run(&session, a).await,
        Command::Copy(a) => copy::run(&session, a).await,
        Command::Tag(a) => tag(&session, a).await,
        Command::Stats(a) => inspect::stats(&session, a).await,
        Command::Ls(a) => inspect::ls(&session, a).await,
        Command::Diff(a) => inspect::diff(&session, a).await,
        Command::Cat(a) => inspect::cat(&session, a).await,
        Command::Forget(a) => forget::run(&session, a).await,
        Command::Prune(a) => prune::run(&session, a).await,
        Command::Status(a) => status::run(&session, a).await,
        Command::Check(a) => check::run(&session, a).await,
        Command::Key(a) => key::run(&session, a).await,
    };
    if cli.global.verbose > 0 {
        if let Some(r) = session.requests() {
            eprintln!("{}", format::requests(&r));
        }
    }
    result
}

/// `coffer version`: the program and what it writes.
fn version() -> Result<()> {
    crate::stdout::outln!(
        "coffer {} (repository format {}, object envelope {}, pack {}, key file {})",
        env!("CARGO_PKG_VERSION"),
        coffer_core::config::REPO_VERSION,
        coffer_core::object::OBJECT_VERSION,
        coffer_core::pack::PACK_VERSION,
        coffer_core::keys::KEY_VERSION
    )?;
    Ok(())
}

/// `coffer tag`: rewrites the named snapshots with their new tags.
async fn tag(session: &Session<'_>, a: crate::cli::TagArgs) -> Result<()> {
    let repo = session.open().await?;
    let all = repo.list_snapshots().await?;
    let chosen = coffer_core::snapshot::chosen(&all, &Default::default(), &a.snapshots)?;
    let nonempty = |l: &[String]| {
        l.iter()
            .filter(|t| !t.is_empty())
            .cloned()
            .collect::<Vec<_>>()
    };
    let change = coffer_core::snapshot::TagChange {
        set: (!a.set.is_empty()).then(|| nonempty(&a.set)),
        add: nonempty(&a.add),
        remove: nonempty(&a.remove),
    };
    for (id, snap) in chosen {
        match repo.retag(id, snap, &change).await? {
            Some(new) => session.say(format_args!(
                "snapshot {} is now {} (tags: {})",
                id.short(),
                new.short(),
                change.apply(&snap.tags).join(",")
            )),
            None => session.say(format_args!("snapshot {}: tags unchanged", id.short())),
        }
    }
    Ok(())
}

/// `coffer completion SHELL`: a completion script from the same clap
/// definitions the parser uses.
fn completion(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut <Cli as clap::CommandFactory>::command(),
        "coffer",
        &mut script,
    );
    crate::stdout::out!("{}", String::from_utf8_lossy(&script))?;
    Ok(())
}

/// `coffer man DIR`: man pages from the same clap definitions.
fn man_pages(dir: &std::path::Path) -> Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let top = <Cli as clap::CommandFactory>::command();
    let mut pages = vec![("coffer".to_string(), top.clone())];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("coffer-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, cmd) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// `coffer unlock`: removes the locks of prunes that are gone.
async fn unlock(session: &Session<'_>, a: crate::cli::UnlockArgs) -> Result<()> {
    let repo = session.open().await?;
    let r = repo.unlock(a.remove_all, &actor().host).await?;
    session.say(format_args!("removed {} lock(s)", r.removed));
    for holder in &r.held {
        eprintln!(
            "coffer: kept a lock that may be held ({holder}); it expires 30 minutes after its \
             last refresh, or pass --remove-all if that prune is dead"
        );
    }
    Ok(())
}

/// This machine and user.
fn actor() -> Actor {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // A pod or cron job often has no USER: name the uid, from
            // /etc/passwd when it is listed there.
            let uid = rustix::process::getuid().as_raw();
            std::fs::read_to_string("/etc/passwd")
                .ok()
                .and_then(|p| user_of_uid(&p, uid))
                .unwrap_or_else(|| format!("uid {uid}"))
        });
    Actor { host, user }
}

/// The name `/etc/passwd` (its text) gives user id `uid`.
fn user_of_uid(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_user_is_named_from_passwd_by_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\ncoffer:x:10001:10001::/home/coffer:/bin/sh\n";
        assert_eq!(super::user_of_uid(passwd, 10001).as_deref(), Some("coffer"));
        assert_eq!(super::user_of_uid(passwd, 0).as_deref(), Some("root"));
        assert_eq!(super::user_of_uid(passwd, 5), None);
    }
}
