//! Cooperative interruption. A front end that receives SIGINT or SIGTERM
//! calls [`request`]; the pipelines check [`check`] at safe points (between
//! read blocks, before each commit step, between a prune's phases and
//! deletions) and stop with [`Error::Interrupted`], so a stopped backup
//! commits nothing, a stopped restore reports failure, and a stopped prune
//! releases its lock. Producer commands are stopped too ([`request`] kills
//! them), since a reader blocked on their pipe sees no flag.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks every running pipeline of this process to stop, and stops the
/// producer commands.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    crate::producer::stop_all();
}

/// True once [`request`] was called.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err(Error::Interrupted)` once [`request`] was called.
pub fn check() -> Result<()> {
    if requested() {
        return Err(Error::Interrupted);
    }
    Ok(())
}
