//! The allocator's settings, set by the program itself so that a pod's
//! memory limit holds without asking users to export variables.
//!
//! glibc gives each thread that allocates while another holds the lock an
//! arena of its own, up to eight per core, and a freed buffer stays in its
//! arena. coffer's threads (rayon's, the delta decoders, tokio's) pass
//! chunk-sized buffers between them, so each arena ends up holding some:
//! measured in `docs/performance.md`, two arenas instead of the default
//! take a delta backup from 94-100 to 76-80 MiB (four: 88-93 MiB), for
//! about 5% of its speed, within the noise of the machine. The only
//! `unsafe` code in coffer is here; the library forbids it.

/// Malloc arenas glibc may use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Limits glibc to [`ARENAS`] malloc arenas, unless `MALLOC_ARENA_MAX` asks
/// for something else. Call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc tunable; no thread exists
        // yet that could be allocating meanwhile (and glibc locks anyway).
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}
