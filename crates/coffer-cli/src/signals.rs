//! SIGINT (Ctrl-C) and SIGTERM (Kubernetes stopping a pod): the command is
//! asked to stop at its next safe point (see `coffer_core::interrupt`),
//! producers are stopped, and coffer exits 130 or 143 with one line. A
//! command that cannot reach a safe point in time (a read blocked on a
//! silent stdin) is abandoned: nothing commits without passing one.

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

/// How long a stopped command may take to reach a safe point.
const GRACE: Duration = Duration::from_secs(10);

/// A signal that stopped the command: its name and number.
pub struct Stopped {
    pub name: &'static str,
    pub number: u8,
}

/// Runs `command`; on SIGINT or SIGTERM, interrupts it and returns what it
/// ended with (an `Interrupted` error when it stopped in time), with the
/// signal.
pub async fn run_stoppable<T>(
    command: impl Future<Output = anyhow::Result<T>>,
) -> (anyhow::Result<T>, Option<Stopped>) {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // No handlers (should not happen on Unix): the default actions stay.
        return (command.await, None);
    };
    // The signals are awaited on a task of their own, so that a command
    // busy on this thread (a blocking step) never delays their handling:
    // the interrupt flag is set from there.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let listener = tokio::spawn(async move {
        let stopped = tokio::select! {
            _ = int.recv() => Stopped { name: "SIGINT", number: 2 },
            _ = term.recv() => Stopped { name: "SIGTERM", number: 15 },
        };
        // Stopping producers waits for them a little: off the async threads.
        let _ = tokio::task::spawn_blocking(coffer_core::interrupt::request).await;
        let _ = tx.send(stopped);
    });
    tokio::pin!(command);
    let mut rx = rx;
    let result = tokio::select! {
        result = &mut command => {
            // Stopped by the flag before the listener said which signal:
            // it is about to.
            if coffer_core::interrupt::requested() {
                return (result, (&mut rx).await.ok());
            }
            listener.abort();
            return (result, None);
        }
        stopped = &mut rx => stopped,
    };
    let Ok(stopped) = result else {
        return (command.await, None);
    };
    let result = match tokio::time::timeout(GRACE, &mut command).await {
        Ok(result) => result,
        Err(_) => Err(coffer_core::Error::Interrupted.into()),
    };
    (result, Some(stopped))
}
