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
//! one, so a killed prune's lock expires by itself. Ages are measured on
//! the storage's clock (the last-modified times the store gives), never by
//! comparing host clocks; a host name and process id say who holds a lock
//! but never make it stale, since every pod may be "PID 1" of some host.

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

/// Payload of a `locks/<id>` object (version 2: with [`LockInfo::process`]).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LockInfo {
    /// When it was written (Unix ns, the holder's clock; informative only).
    pub time_unix_ns: i64,
    /// Holder's host name.
    pub host: String,
    /// Holder's process id.
    pub pid: u32,
    /// Who exactly: `<boot id>/<pid namespace>/<start time in ticks>` on
    /// Linux, empty elsewhere. Only a lock whose boot id and pid namespace
    /// are this process's own can be known dead at once.
    pub process: String,
}

/// Payload of a lock written before [`LockInfo::process`] existed.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LockInfoV1 {
    /// As [`LockInfo::time_unix_ns`].
    pub time_unix_ns: i64,
    /// As [`LockInfo::host`].
    pub host: String,
    /// As [`LockInfo::pid`].
    pub pid: u32,
}

/// `<boot id>/<pid namespace>/<start time>` of process `pid` as this
/// process sees it, if the system says (Linux).
fn process_identity(pid: &str) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (start time), counted after the command name's ")".
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{}/{}/{start}", boot.trim(), ns.display()))
}

/// True when the lock's holder ran in this boot and pid namespace and that
/// process is gone (its pid unused, or reused by a later process).
fn holder_is_dead(info: &LockInfo) -> bool {
    let Some((boot_ns, _)) = info.process.rsplit_once('/') else {
        return false;
    };
    let Some(me) = process_identity("self") else {
        return false;
    };
    let same_place = me.rsplit_once('/').is_some_and(|(mine, _)| mine == boot_ns);
    same_place && process_identity(&info.pid.to_string()).as_deref() != Some(info.process.as_str())
}

/// The storage's clock, as seen from here: the last-modified time the store
/// gave an object this process just wrote, advanced by this host's monotonic
/// clock since. Every age prune computes (marks, leftovers, other locks) is
/// measured on it, so skewed host clocks cannot shorten a delay. It runs a
/// little behind the store (by one request's latency), which only makes
/// ages look younger.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StorageClock {
    base_unix_ns: i64,
    at: std::time::Instant,
}

impl StorageClock {
    /// A clock that read `unix_ns` at `at`.
    pub fn new(unix_ns: i64, at: std::time::Instant) -> Self {
        StorageClock {
            base_unix_ns: unix_ns,
            at,
        }
    }

    /// This host's clock (for a dry run, which writes nothing to read the
    /// storage's time from).
    pub fn local() -> Self {
        StorageClock::new(super::now_unix_ns(), std::time::Instant::now())
    }

    /// The time now, Unix nanoseconds.
    pub fn now(&self) -> i64 {
        let elapsed = i64::try_from(self.at.elapsed().as_nanos()).unwrap_or(i64::MAX);
        self.base_unix_ns
            .saturating_add(elapsed)
            .saturating_add(crate::failpoint::clock_skew_ns())
    }
}

/// A held prune lock; [`PruneLock::release`] removes it.
pub(crate) struct PruneLock {
    backend: Backend,
    current: Arc<std::sync::Mutex<String>>,
    /// Set by the refresher when a refresh failed: the lock may have expired.
    lost: Arc<std::sync::atomic::AtomicBool>,
    refresher: tokio::task::JoinHandle<()>,
    /// The storage's clock, read when the lock was written.
    pub clock: StorageClock,
}

async fn write_lock(backend: &Backend, key: &MasterKey, host: &str) -> Result<String> {
    let info = LockInfo {
        time_unix_ns: super::now_unix_ns(),
        host: host.to_string(),
        pid: std::process::id(),
        process: process_identity("self").unwrap_or_default(),
    };
    let payload = codec::encode(&info).map_err(Error::Internal)?;
    let (hash, _) =
        super::write_sealed(backend, key, Kind::Lock, ObjectType::Lock, &payload).await?;
    Ok(hex::encode(hash))
}

impl Repository {
    /// Takes the prune lock or fails with [`Error::Locked`] naming the
    /// holder.
    pub(crate) async fn lock_for_prune(&self, host: &str) -> Result<PruneLock> {
        let mine = write_lock(&self.backend, &self.key, host).await?;
        let listed_at = std::time::Instant::now();
        let locks = self.backend.list_with_times(Kind::Lock).await?;
        let (clock, others) = self.other_locks(&mine, listed_at, locks).await?;
        for other in others {
            match other.state {
                LockState::Gone => {}
                LockState::Stale | LockState::DeadHolder => {
                    self.backend
                        .delete(&object_path(Kind::Lock, &other.name))
                        .await?
                }
                LockState::Held(holder) => {
                    let _ = self.backend.delete(&object_path(Kind::Lock, &mine)).await;
                    return Err(Error::Locked(format!(
                        "another prune holds the repository ({holder}, lock refreshed {}s ago; \
                         a lock not refreshed for {} minutes expires by itself, or run \
                         `coffer unlock` if you know it is dead)",
                        other.age.as_secs(),
                        LOCK_STALE.as_secs() / 60
                    )));
                }
            }
        }
        let current = Arc::new(std::sync::Mutex::new(mine));
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (backend, key, slot, host, failed) = (
            self.backend.clone(),
            self.key.clone(),
            current.clone(),
            host.to_string(),
            lost.clone(),
        );
        let refresher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_REFRESH).await;
                match write_lock(&backend, &key, &host).await {
                    Ok(fresh) => {
                        let old = std::mem::replace(&mut *slot.lock().expect("lock slot"), fresh);
                        let _ = backend.delete(&object_path(Kind::Lock, &old)).await;
                    }
                    // Remembered: the prune stops before deleting anything.
                    Err(_) => failed.store(true, std::sync::atomic::Ordering::SeqCst),
                }
            }
        });
        Ok(PruneLock {
            backend: self.backend.clone(),
            current,
            lost,
            refresher,
            clock,
        })
    }
}

/// What another lock is, seen from a lock just written.
enum LockState {
    /// Deleted meanwhile.
    Gone,
    /// Not refreshed for [`LOCK_STALE`] on the storage's clock.
    Stale,
    /// Written by a process of this boot and pid namespace that is gone.
    DeadHolder,
    /// Held, by the holder described (or a lock this version cannot read).
    Held(String),
}

struct OtherLock {
    name: String,
    age: Duration,
    state: LockState,
}

/// What `coffer unlock` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnlockReport {
    /// Locks removed.
    pub removed: usize,
    /// Locks kept because their holder may still run (who holds each).
    pub held: Vec<String>,
}

impl Repository {
    /// Classifies every lock but `mine` (just written; its storage timestamp
    /// sets the clock ages are measured on).
    async fn other_locks(
        &self,
        mine: &str,
        listed_at: std::time::Instant,
        locks: Vec<(String, i64, u64)>,
    ) -> Result<(StorageClock, Vec<OtherLock>)> {
        let Some(&(_, mine_ms, _)) = locks.iter().find(|(n, _, _)| n == mine) else {
            return Err(Error::Missing {
                object: object_path(Kind::Lock, mine),
            });
        };
        // The store stamped our lock when it was stored, before the listing.
        let clock = StorageClock::new(mine_ms.saturating_mul(1_000_000), listed_at);
        let mut others = Vec::new();
        for (name, written_ms, _) in locks {
            if name == mine {
                continue;
            }
            // Its age on the storage's clock: both times are the store's.
            let age = Duration::from_millis(mine_ms.saturating_sub(written_ms).max(0) as u64);
            let state = if age >= LOCK_STALE {
                LockState::Stale
            } else {
                // A young lock holds the repository even when this version
                // cannot read it (a newer coffer's, or damaged): only its
                // age on the storage's clock lets it expire.
                match self
                    .read_sealed(Kind::Lock, &[ObjectType::Lock], name.clone(), false)
                    .await
                {
                    Ok((_, plain)) => match codec::decode::<LockInfo>(&plain) {
                        // Killed in this very place (a crashed run in the
                        // same pod): no need to wait 30 minutes.
                        Ok(info) if holder_is_dead(&info) => LockState::DeadHolder,
                        Ok(i) => LockState::Held(format!("host {:?}, pid {}", i.host, i.pid)),
                        Err(_) => LockState::Held(match codec::decode::<LockInfoV1>(&plain) {
                            Ok(i) => format!("host {:?}, pid {}", i.host, i.pid),
                            Err(_) => "a lock this version cannot read".into(),
                        }),
                    },
                    Err(Error::Missing { .. }) => LockState::Gone,
                    Err(Error::Corrupt { .. }) => LockState::Held("an unreadable lock".into()),
                    Err(e) => return Err(e),
                }
            };
            others.push(OtherLock { name, age, state });
        }
        Ok((clock, others))
    }

    /// Removes prune locks whose holder is gone (not refreshed for
    /// [`LOCK_STALE`], or a dead process of this place), or, with
    /// `remove_all`, every lock: for an operator who knows the holder is
    /// dead. (A short-lived lock of its own is written to read the
    /// storage's clock.)
    pub async fn unlock(&self, remove_all: bool, host: &str) -> Result<UnlockReport> {
        let mine = write_lock(&self.backend, &self.key, host).await?;
        let listed_at = std::time::Instant::now();
        let locks = self.backend.list_with_times(Kind::Lock).await?;
        let result = self.other_locks(&mine, listed_at, locks).await;
        let mut report = UnlockReport::default();
        if let Ok((_, others)) = &result {
            for other in others {
                match &other.state {
                    LockState::Gone => {}
                    LockState::Held(holder) if !remove_all => report.held.push(holder.clone()),
                    _ => {
                        self.backend
                            .delete(&object_path(Kind::Lock, &other.name))
                            .await?;
                        report.removed += 1;
                    }
                }
            }
        }
        self.backend.delete(&object_path(Kind::Lock, &mine)).await?;
        result.map(|_| report)
    }
}

impl PruneLock {
    /// Fails unless the lock is still held: every refresh succeeded and the
    /// current lock object is still there (another prune deletes a lock it
    /// finds stale). Checked before deleting anything.
    pub(crate) async fn check_held(&self) -> Result<()> {
        let name = self.current.lock().expect("lock slot").clone();
        let refreshed = !self.lost.load(std::sync::atomic::Ordering::SeqCst);
        if refreshed && self.backend.exists(&object_path(Kind::Lock, &name)).await? {
            return Ok(());
        }
        Err(Error::Locked(
            "this prune lost its lock (a refresh failed or the lock was removed as stale); \
             it stopped before deleting anything, run it again"
                .into(),
        ))
    }

    /// Stops refreshing and removes the lock.
    pub(crate) async fn release(self) -> Result<()> {
        self.refresher.abort();
        let name = self.current.lock().expect("lock slot").clone();
        self.backend.delete(&object_path(Kind::Lock, &name)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gone_process_of_this_boot_and_namespace_is_dead() {
        let Some(me) = process_identity("self") else {
            return; // not Linux: nothing is ever known dead
        };
        let info = |pid: u32, process: &str| LockInfo {
            time_unix_ns: 0,
            host: "h".into(),
            pid,
            process: process.into(),
        };
        // This very process is alive.
        assert!(!holder_is_dead(&info(std::process::id(), &me)));
        // Same boot and namespace, but that process (pid reused, or gone)
        // started at another time: dead.
        let (place, _) = me.rsplit_once('/').unwrap();
        assert!(holder_is_dead(&info(
            std::process::id(),
            &format!("{place}/1")
        )));
        assert!(holder_is_dead(&info(u32::MAX - 1, &format!("{place}/1"))));
        // Another pod's namespace or another boot: never known dead, even
        // as "PID 1" with no such process here.
        assert!(!holder_is_dead(&info(1, "other-boot/pid:[1]/5")));
        assert!(!holder_is_dead(&info(u32::MAX - 1, "")));
    }
}
