//! Where the repository password comes from: `--password-file` /
//! `COFFER_PASSWORD_FILE` (first line), `COFFER_PASSWORD`, or a prompt when
//! stdin is a terminal.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};
use zeroize::Zeroizing;

/// A password, wiped from memory when dropped.
pub type Password = Zeroizing<Vec<u8>>;

use crate::exit::CliFailure;

/// Reads the password; `confirm` asks twice at a prompt (for `init`).
pub fn read(file: Option<&Path>, confirm: bool) -> Result<Password> {
    read_from(file, "COFFER_PASSWORD", "repository password: ", confirm)
}

/// Reads the password of the repository `copy` writes into.
pub fn read_target(file: Option<&Path>) -> Result<Password> {
    read_from(
        file,
        "COFFER_TO_PASSWORD",
        "target repository password: ",
        false,
    )
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
        let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(
                CliFailure::usage(format!("password file {} is empty", path.display())).into(),
            );
        }
        return Ok(Zeroizing::new(line.to_vec()));
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
