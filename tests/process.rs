//! Running the `coffer` binary in tests: a finished command ([`Ran`]) that
//! explains itself when an assertion fails, a command paused at a failpoint
//! ([`Paused`]), signals, and feeding stdin from a thread.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};

/// A finished command: its output, and how it was invoked, so that a
/// failing assertion can show the command, its stdout and its stderr.
pub struct Ran {
    /// The command line (environment not included).
    pub command: String,
    /// What it printed and how it ended.
    pub output: Output,
}

impl std::ops::Deref for Ran {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.output
    }
}

impl Ran {
    /// The command, its exit status, stdout and stderr, for failure messages.
    pub fn explain(&self) -> String {
        format!(
            "command: {}\nstatus: {}\nstdout: {}\nstderr: {}",
            self.command,
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            stderr(&self.output)
        )
    }

    /// Asserts that the command succeeded.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.status.success(), "failed:\n{}", self.explain());
    }

    /// Asserts that the command succeeded; returns it.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.assert_ok();
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.explain()))
    }

    /// Stderr as text.
    pub fn stderr(&self) -> String {
        stderr(&self.output)
    }
}

/// A command stopped at a failpoint (see `COFFER_FAILPOINTS` in
/// coffer-core's `failpoint` module).
pub struct Paused {
    child: Child,
    dir: tempfile::TempDir,
    point: String,
    described: String,
}

impl Paused {
    /// Starts `cmd` (fed `input`) so that it stops at failpoint `point`.
    pub fn start(mut cmd: Command, point: &str, input: Vec<u8>) -> Self {
        let dir = tempfile::tempdir().expect("failpoint dir");
        cmd.env("COFFER_FAILPOINTS", format!("{point}=wait"))
            .env("COFFER_FAILPOINTS_DIR", dir.path());
        let described = describe(&cmd);
        Paused {
            child: spawn_with_input(cmd, input),
            dir,
            point: point.to_string(),
            described,
        }
    }

    /// Blocks until the command has reached its failpoint.
    #[track_caller]
    pub fn wait_reached(&mut self) {
        let marker = self.dir.path().join(format!("{}.reached", self.point));
        let started = std::time::Instant::now();
        while !marker.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} ended ({status}) before reaching {}",
                    self.described, self.point
                );
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "{} did not reach {} in two minutes",
                self.described,
                self.point
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Sends the command a signal (`TERM`, `INT`, ...), then waits for it
    /// to end without resuming it (a signal stops its wait).
    pub fn signal_and_wait(self, signal: &str) -> Ran {
        send_signal(self.child.id(), signal);
        let output = self.child.wait_with_output().expect("wait for coffer");
        Ran {
            command: self.described,
            output,
        }
    }

    /// Lets the command go on past its failpoint; returns how it ended.
    pub fn resume(self) -> Ran {
        std::fs::write(self.dir.path().join(format!("{}.resume", self.point)), b"")
            .expect("resume marker");
        let output = self.child.wait_with_output().expect("wait for coffer");
        Ran {
            command: self.described,
            output,
        }
    }
}

/// Sends `signal` (`TERM`, `INT`, ...) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{signal} {pid}");
}

fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&a.to_string_lossy());
    }
    line
}

/// Starts a command with stdout and stderr piped and `input` fed on stdin
/// from a separate thread (which ends quietly if the command stops reading).
pub fn spawn_with_input(mut cmd: Command, input: Vec<u8>) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coffer (was it built?)");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    child
}

/// Runs a command feeding `input` on stdin from a separate thread.
pub fn run_with_input(cmd: Command, input: &[u8]) -> Ran {
    let command = describe(&cmd);
    let output = spawn_with_input(cmd, input.to_vec())
        .wait_with_output()
        .expect("wait for coffer");
    Ran { command, output }
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
