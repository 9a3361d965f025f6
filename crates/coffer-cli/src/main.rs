//! `coffer`, the command-line front end of coffer-core: parses arguments,
//! runs one command on a tokio runtime, prints, and maps every failure to one
//! line on stderr and a documented exit code (see `exit.rs` and README).

mod allocator;
mod cli;
mod commands;
mod exit;
mod files;
mod format;
mod metrics;
mod password;
mod progress;
mod signals;
mod stdout;

use std::process::ExitCode;

use clap::Parser;

/// A clap error as one line, like every other failure: its message and the
/// lines that continue it (the arguments missing, say), without the usage
/// block and hint that follow a blank line.
fn one_line(clap_text: &str) -> String {
    clap_text
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}

fn main() -> ExitCode {
    allocator::tune();
    // Everything coffer creates is the user's alone: repository folders
    // 0700 and objects 0600 (key files, sealed as they are, included), and
    // restored dumps 0600. Files meant for others (metrics) set their mode.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    warn_about_test_hooks();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("coffer: {} (see coffer --help)", one_line(&e.to_string()));
            return ExitCode::from(exit::USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coffer: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let (result, stopped) = runtime.block_on(signals::run_stoppable(commands::run(args)));
    // Do not wait for a reader thread still blocked on a silent producer.
    runtime.shutdown_background();
    match (result, stopped) {
        (Ok(()), _) => ExitCode::SUCCESS,
        // Stopped by a signal at a safe point: nothing further was
        // committed. One line, and the shell's code for that signal.
        (Err(_), Some(signal)) => {
            eprintln!(
                "coffer: stopped by {}: nothing was committed after it (uploaded data \
                 no snapshot uses is reclaimed by `coffer prune`)",
                signal.name
            );
            ExitCode::from(128 + signal.number)
        }
        (Err(err), None) => {
            let code = exit::code_for(&err);
            if code != exit::SUCCESS {
                eprintln!("coffer: {}", exit::message(&err));
            }
            ExitCode::from(code)
        }
    }
}

/// Test hooks change what coffer does (kill itself, wait, skew prune's
/// clock, derive keys weakly): a release build says so loudly when one is
/// set. (Debug builds, which the tests run, stay quiet.)
fn warn_about_test_hooks() {
    if cfg!(debug_assertions) {
        return;
    }
    for var in [
        "COFFER_FAILPOINTS",
        "COFFER_FAILPOINTS_DIR",
        "COFFER_TEST_CLOCK_SKEW_SECS",
        "COFFER_INSECURE_FAST_KDF",
        "COFFER_RECHECK_AFTER_SECS",
        "COFFER_DELETE_DELAY_SECS",
    ] {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            eprintln!("coffer: WARNING: {var} is set: a test-only setting is in effect");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_clap_error_keeps_what_it_names_on_one_line() {
        let text = "error: the following required arguments were not provided:\n  <SNAPSHOT>\n\nUsage: coffer restore <SNAPSHOT>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(text),
            "the following required arguments were not provided: <SNAPSHOT>"
        );
        assert_eq!(
            super::one_line("error: unexpected argument '--x' found\n\n  tip: ...\n"),
            "unexpected argument '--x' found"
        );
    }
}
