//! `coffer key list | add | remove | passwd`.

use anyhow::Result;

use crate::cli::KeyCommand;
use crate::password;
use crate::stdout::outln;

pub async fn run(session: &super::Session<'_>, cmd: KeyCommand) -> Result<()> {
    let mut repo = session.open().await?;
    match cmd {
        KeyCommand::List => {
            outln!(
                "{:<2} {:<8}  {:<12}  {:<16}  {:<19}  KDF",
                "",
                "ID",
                "User",
                "Host",
                "Created"
            )?;
            for k in repo.list_keys().await? {
                let created = jiff::Timestamp::from_nanosecond(k.created_unix_ns as i128)
                    .map(|t| {
                        t.to_zoned(jiff::tz::TimeZone::system())
                            .strftime("%Y-%m-%d %H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_default();
                outln!(
                    "{:<2} {:<8}  {:<12}  {:<16}  {:<19}  argon2id m={}MiB t={} p={}",
                    if k.current { "*" } else { "" },
                    k.id.short(),
                    k.user,
                    k.host,
                    created,
                    k.kdf.memory_kib / 1024,
                    k.kdf.iterations,
                    k.kdf.parallelism
                )?;
            }
        }
        KeyCommand::Add(a) => {
            let pw = password::read_new(a.new_password_file.as_deref())?;
            let id = repo.add_key(&pw, a.kdf.params(), &super::actor()).await?;
            session.say(format_args!("added key {}", id.short()));
        }
        KeyCommand::Remove { id } => {
            let id = repo.find_key(&id).await?;
            repo.remove_key(id).await?;
            session.say(format_args!("removed key {}", id.short()));
        }
        KeyCommand::Passwd(a) => {
            let pw = password::read_new(a.new_password_file.as_deref())?;
            let id = repo
                .change_password(&pw, a.kdf.params(), &super::actor())
                .await?;
            session.say(format_args!(
                "password changed: key {} replaces the old one",
                id.short()
            ));
        }
    }
    Ok(())
}
