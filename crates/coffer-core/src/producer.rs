//! A producer command (e.g. `pg_dump`) as the input of a backup: its stdout
//! is the stream, its stderr passes through, and its exit status decides
//! whether the stream is complete. A producer that fails or is killed turns
//! the end of its output into a read error, so the backup fails before a
//! snapshot is written, however much was already uploaded.

use std::collections::HashSet;
use std::io::{self, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process ids of the producers running now. (They stay in coffer's process
/// group, so that one reading a password from the terminal still can; a
/// terminal's Ctrl-C reaches them directly.)
static RUNNING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn running(f: impl FnOnce(&mut HashSet<i32>)) {
    let mut guard = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashSet::new));
}

/// Stops every running producer: SIGTERM, then, for any still there after
/// a grace period, SIGKILL. Their readers then see the end of the output
/// and reap them.
pub fn stop_all() {
    let signal = |sig| {
        running(|groups| {
            for &pid in groups.iter() {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, sig);
                }
            }
        })
    };
    signal(rustix::process::Signal::TERM);
    let started = Instant::now();
    let mut left = true;
    while left && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        running(|groups| left = !groups.is_empty());
    }
    if left {
        signal(rustix::process::Signal::KILL);
    }
}

/// Why a producer's stream is not a complete backup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// The command could not be started.
    #[error("cannot start the producer `{command}`: {reason}")]
    Spawn {
        /// The command line.
        command: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The command ended unsuccessfully.
    #[error("the producer `{command}` {status}: nothing was backed up")]
    Failed {
        /// The command line.
        command: String,
        /// "exited with status 1", "was killed by signal 9".
        status: String,
    },
}

/// A running producer; read it like stdin.
pub struct Producer {
    command: String,
    child: Child,
    stdout: ChildStdout,
    done: bool,
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => format!("ended with {status}"),
    }
}

impl Producer {
    /// Starts `argv[0]` with the remaining arguments; stdin is closed and
    /// stderr is inherited.
    pub fn spawn(argv: &[String]) -> Result<Self, ProducerError> {
        let command = argv.join(" ");
        let Some((program, args)) = argv.split_first() else {
            return Err(ProducerError::Spawn {
                command,
                reason: "no command given".into(),
            });
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // The repository password is coffer's, not the producer's.
            .env_remove("COFFER_PASSWORD")
            .spawn()
            .map_err(|e| ProducerError::Spawn {
                command: command.clone(),
                reason: e.to_string(),
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        running(|groups| {
            groups.insert(child.id() as i32);
        });
        Ok(Producer {
            command,
            child,
            stdout,
            done: false,
        })
    }
}

impl Read for Producer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            // End of output: only a successful exit makes it the end of the stream.
            self.done = true;
            let status = self.child.wait();
            running(|groups| {
                groups.remove(&(self.child.id() as i32));
            });
            let status = status?;
            if !status.success() {
                let err = ProducerError::Failed {
                    command: self.command.clone(),
                    status: describe(status),
                };
                return Err(io::Error::other(err));
            }
        }
        Ok(n)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // A backup that stopped early (storage error) must not leave the
        // producer blocked on a full pipe.
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
            running(|groups| {
                groups.remove(&(self.child.id() as i32));
            });
        }
    }
}

/// The producer failure inside an input error, if that is what it is.
pub fn producer_error(e: &io::Error) -> Option<&ProducerError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ProducerError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn a_successful_producer_reads_to_the_end() {
        let mut out = Vec::new();
        Producer::spawn(&sh("printf hello"))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn failure_and_signals_become_read_errors() {
        let mut out = Vec::new();
        let err = Producer::spawn(&sh("printf partial; exit 3"))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(out, b"partial");
        let p = producer_error(&err).unwrap();
        assert!(p.to_string().contains("exited with status 3"), "{p}");
        let err = Producer::spawn(&sh("kill -9 $$"))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(producer_error(&err)
            .unwrap()
            .to_string()
            .contains("killed by signal 9"));
        assert!(matches!(
            Producer::spawn(&["/no/such/program".into()]),
            Err(ProducerError::Spawn { .. })
        ));
    }
}
