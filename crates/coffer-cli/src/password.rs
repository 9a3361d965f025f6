//! Where the repository password comes from: `--password-file` /
//! `COFFER_PASSWORD_FILE` (first line), `--password-command` /
//! `COFFER_PASSWORD_COMMAND` (first line of its output, e.g. from a secret
//! manager), `COFFER_PASSWORD`, or a prompt when stdin is a terminal.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};
use zeroize::Zeroizing;

/// A password, wiped from memory when dropped.
pub type Password = Zeroizing<Vec<u8>>;

use crate::exit::CliFailure;

/// Reads the password from a file or a command, else the environment or a
/// prompt; `confirm` asks twice at a prompt (for `init`).
pub fn read(file: Option<&Path>, command: Option<&str>, confirm: bool) -> Result<Password> {
    if let Some(cmd) = command {
        return from_command(cmd);
    }
    read_from(file, "COFFER_PASSWORD", "repository password: ", confirm)
}

/// Reads the password of the repository `copy` writes into.
pub fn read_target(file: Option<&Path>, command: Option<&str>) -> Result<Password> {
    if let Some(cmd) = command {
        return from_command(cmd);
    }
    read_from(
        file,
        "COFFER_TO_PASSWORD",
        "target repository password: ",
        false,
    )
}

/// The first line a password command prints (run with `sh -c`; its stdin
/// and stderr are coffer's, so it may prompt).
fn from_command(cmd: &str) -> Result<Password> {
    let out = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| CliFailure::usage(format!("cannot run the password command: {e}")))?;
    let text = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(CliFailure::usage(format!(
            "the password command failed ({}): {cmd}",
            out.status
        ))
        .into());
    }
    first_line(&text).ok_or_else(|| {
        CliFailure::usage(format!("the password command printed no password: {cmd}")).into()
    })
}

/// The first line of `text`, without its line ending; `None` when empty.
fn first_line(text: &[u8]) -> Option<Password> {
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.is_empty()).then(|| Zeroizing::new(line.to_vec()))
}

/// Reads a new password for `key add` / `key passwd`.
pub fn read_new(file: Option<&Path>) -> Result<Password> {
    read_from(file, "COFFER_NEW_PASSWORD", "new password: ", true)
}

fn read_from(file: Option<&Path>, env: &str, prompt: &str, confirm: bool) -> Result<Password> {
    if let Some(path) = file {
        let text = Zeroizing::new(
            std::fs::read(path)
                .with_context(|| format!("cannot read password file {}", path.display()))?,
        );
        return first_line(&text).ok_or_else(|| {
            CliFailure::usage(format!("password file {} is empty", path.display())).into()
        });
    }
    if let Some(pw) = std::env::var_os(env) {
        if !pw.is_empty() {
            return Ok(Zeroizing::new(pw.into_encoded_bytes()));
        }
    }
    if !std::io::stdin().is_terminal() {
        let how = if env == "COFFER_NEW_PASSWORD" {
            "no new password given: set COFFER_NEW_PASSWORD_FILE (or --new-password-file, or \
             COFFER_NEW_PASSWORD)"
        } else {
            "no password given: set COFFER_PASSWORD_FILE (or --password-file, or COFFER_PASSWORD)"
        };
        return Err(CliFailure::usage(how.into()).into());
    }
    let pw = Zeroizing::new(rpassword::prompt_password(prompt)?);
    if confirm && *Zeroizing::new(rpassword::prompt_password("repeat password: ")?) != *pw {
        return Err(CliFailure::usage("the passwords do not match".into()).into());
    }
    if pw.is_empty() {
        return Err(CliFailure::usage("an empty password is not allowed".into()).into());
    }
    Ok(Zeroizing::new(pw.as_bytes().to_vec()))
}
