//! The allocator's settings, set by the program itself so that a pod's
//! memory limit holds without asking users to export variables.
//!
//! glibc gives each thread that allocates while another holds the lock an
//! arena of its own, up to eight per core, and a freed buffer stays in its
//! arena. coffer's threads (rayon's, the delta decoders, tokio's) pass
//! chunk-sized buffers between them, so each arena ends up holding some:
//! measured in `docs/performance.md`, two arenas instead of the default
//! take a delta backup from 99 to 78 MiB at the same speed. The only
//! `unsafe` code in coffer is here; the library forbids it.

/// Limits glibc to two malloc arenas, unless `MALLOC_ARENA_MAX` asks for
/// something else. Call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc tunable; no thread exists
        // yet that could be allocating meanwhile (and glibc locks anyway).
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
