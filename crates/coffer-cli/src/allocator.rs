//! The allocator's settings, set by the program itself so that a pod's
//! memory limit holds without asking users to export variables.
//!
//! Arenas: glibc gives each thread that allocates while another holds the
//! lock an arena of its own, up to eight per core, and a freed buffer stays
//! in its arena. coffer's threads (rayon's, the delta decoders, tokio's)
//! pass chunk-sized buffers between them, so each arena ends up holding
//! some: measured in `docs/performance.md`, two arenas instead of the
//! default take a delta backup from 94-100 to 76-80 MiB (four: 88-93 MiB),
//! for about 5% of its speed, within the noise of the machine.
//!
//! Large buffers: glibc serves a request above its mmap threshold with a
//! mapping of its own, returned to the system when freed, but by default
//! raises that threshold to the size of each such buffer freed (up to
//! 32 MiB). After the first index file, the decoded index files and maps
//! of several megabytes that building index tables allocates one after
//! another then come from the arenas, which keep them: a first backup from
//! an empty cache at 10 M blobs peaked at 73-81 MiB with a heap of 43 MB.
//! A fixed threshold of 4 MiB keeps chunks and read blocks (up to 2 MiB) in
//! the arenas, where they are fast, and maps everything larger: the same
//! backup peaks at 54 MiB, in 1.18x its time (each large buffer is a fresh
//! mapping); backups and restores of the day take the same time as before
//! (`docs/performance.md`; 256 KiB or 1 MiB made backups 1.3-1.7x slower).
//!
//! The only `unsafe` code in coffer is here; the library forbids it.

/// Malloc arenas glibc may use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Buffers of this many bytes or more get a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;

/// Limits glibc to [`ARENAS`] malloc arenas and fixes its mmap threshold
/// at [`MMAP_THRESHOLD`], unless `MALLOC_ARENA_MAX` or
/// `MALLOC_MMAP_THRESHOLD_` ask for something else. Call first thing in
/// `main`, before any thread starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, option, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENAS),
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        ),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only changes a malloc tunable; no thread
            // exists yet that could be allocating meanwhile (and glibc
            // locks anyway).
            #[allow(unsafe_code)]
            unsafe {
                libc::mallopt(option, value);
            }
        }
    }
}
