//! Giving freed heap memory back to the system.
//!
//! Idle connections give their buffers back (see [`crate::protocol::WsConn::release_buffers`]),
//! but glibc's allocator keeps freed chunks for reuse unless they gather at the top of a
//! heap: a thousand idle connections each freeing a small buffer after a ping round leave
//! a megabyte resident, scattered between live allocations over the allocator's arenas.
//! The housekeeping of both sides calls [`trim`] every few seconds, which returns the
//! whole free pages among them.

/// Returns the free pages of every heap arena to the system (glibc; elsewhere it does
/// nothing).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reorganizes the allocator's own free memory, under its
    // own locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_leaves_live_memory_alone() {
        let live: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 1024]).collect();
        let freed: Vec<Vec<u8>> = (0..100).map(|_| vec![0u8; 1024]).collect();
        drop(freed);
        super::trim();
        assert!(live
            .iter()
            .enumerate()
            .all(|(i, v)| v.iter().all(|b| *b == i as u8)));
    }
}
