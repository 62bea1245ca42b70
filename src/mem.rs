//! Pure helper, no thread: give the heap's free pages back to the system.

/// After a burst (a full-table load, a new VRP set) the freed buffers stay in glibc's
/// per-thread arenas and the process goes on holding its peak; `malloc_trim` returns the free
/// pages (glibc only; elsewhere nothing to do).
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
