//! The prune lock: at most one `prune` works on a repository at a time.
//! Backups never lock (they only create objects, see "Prune" in
//! docs/format.md), so a bucket policy may deny them deletion.
//!
//! A lock is a sealed object `locks/<hash>` holding when it was last
//! refreshed. A prune writes its lock, then lists the others: any lock
//! refreshed within [`LOCK_STALE`] means another prune is running, so it
//! removes its own and stops. Two prunes starting together both see each
//! other and both stop; neither proceeds alone on a stale view. A running
//! prune writes a fresh lock every [`LOCK_REFRESH`] and removes the previous
//! one, so a killed prune's lock expires by itself (at once when it was
//! written on this host by a process that is gone).

use std::sync::Arc;
use std::time::Duration;

use bincode::{Decode, Encode};

use super::Repository;
use crate::backend::{object_path, Backend, Kind};
use crate::codec;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::object::ObjectType;

/// A lock not refreshed for this long belongs to a dead process.
pub const LOCK_STALE: Duration = Duration::from_secs(30 * 60);
/// How often a running prune refreshes its lock.
pub const LOCK_REFRESH: Duration = Duration::from_secs(5 * 60);

/// Payload of a `locks/<id>` object.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LockInfo {
    /// When it was written (Unix ns, the holder's clock).
    pub time_unix_ns: i64,
    /// Holder's host name.
    pub host: String,
    /// Holder's process id.
    pub pid: u32,
}

/// A held prune lock; [`PruneLock::release`] removes it.
pub(crate) struct PruneLock {
    backend: Backend,
    current: Arc<std::sync::Mutex<String>>,
    refresher: tokio::task::JoinHandle<()>,
}

async fn write_lock(backend: &Backend, key: &MasterKey, host: &str) -> Result<String> {
    let info = LockInfo {
        time_unix_ns: super::now_unix_ns(),
        host: host.to_string(),
        pid: std::process::id(),
    };
    let payload = codec::encode(&info);
    let (hash, _) =
        super::write_sealed(backend, key, Kind::Lock, ObjectType::Lock, &payload).await?;
    Ok(hex::encode(hash))
}

impl Repository {
    /// Takes the prune lock or fails with [`Error::Locked`] naming the
    /// holder.
    pub(crate) async fn lock_for_prune(&self, host: &str) -> Result<PruneLock> {
        let mine = write_lock(&self.backend, &self.key, host).await?;
        for name in self.backend.list(Kind::Lock).await? {
            if name == mine {
                continue;
            }
            let path = object_path(Kind::Lock, &name);
            let info = match self
                .read_sealed(Kind::Lock, ObjectType::Lock, name, false)
                .await
            {
                Ok(plain) => codec::decode::<LockInfo>(&plain).ok(),
                Err(Error::Missing { .. }) => continue,
                Err(Error::Corrupt { .. }) => None,
                Err(e) => return Err(e),
            };
            match info {
                Some(info) if lock_age(&info) < LOCK_STALE && !holder_is_dead(&info, host) => {
                    let _ = self.backend.delete(&object_path(Kind::Lock, &mine)).await;
                    return Err(Error::Locked(format!(
                        "another prune holds the repository (host {:?}, pid {}, lock refreshed {}s ago; \
                         a lock not refreshed for {} minutes expires by itself)",
                        info.host,
                        info.pid,
                        lock_age(&info).as_secs(),
                        LOCK_STALE.as_secs() / 60
                    )));
                }
                // Stale, or unreadable (a lock is written whole, so that is
                // damage): a dead holder's leftover.
                _ => self.backend.delete(&path).await?,
            }
        }
        let current = Arc::new(std::sync::Mutex::new(mine));
        let (backend, key, slot, host) = (
            self.backend.clone(),
            self.key.clone(),
            current.clone(),
            host.to_string(),
        );
        let refresher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_REFRESH).await;
                if let Ok(fresh) = write_lock(&backend, &key, &host).await {
                    let old = std::mem::replace(&mut *slot.lock().expect("lock slot"), fresh);
                    let _ = backend.delete(&object_path(Kind::Lock, &old)).await;
                }
            }
        });
        Ok(PruneLock {
            backend: self.backend.clone(),
            current,
            refresher,
        })
    }
}

/// A lock written on this host by a process that no longer exists is stale
/// at once (a prune killed here need not block the next one for 30
/// minutes). Other hosts' locks can only expire.
fn holder_is_dead(info: &LockInfo, host: &str) -> bool {
    info.host == host
        && cfg!(target_os = "linux")
        && !std::path::Path::new(&format!("/proc/{}", info.pid)).exists()
}

fn lock_age(info: &LockInfo) -> Duration {
    Duration::from_nanos((super::now_unix_ns() - info.time_unix_ns).max(0) as u64)
}

impl PruneLock {
    /// Stops refreshing and removes the lock.
    pub(crate) async fn release(self) -> Result<()> {
        self.refresher.abort();
        let name = self.current.lock().expect("lock slot").clone();
        self.backend.delete(&object_path(Kind::Lock, &name)).await
    }
}
