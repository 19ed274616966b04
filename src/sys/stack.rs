//! Giving back the stack pages an idle connection thread no longer uses.
//!
//! Every WebSocket of the client has a thread, and a thousand idle connections are a
//! thousand stacks. A stack's memory is the deepest its thread ever went: the dial, a
//! TLS handshake or a request through ureq touch pages that then stay resident while the
//! thread waits, shallow, in `poll`. Pages below the stack pointer hold nothing live, so
//! a thread that settles into a long wait tells the kernel to drop them
//! (`MADV_DONTNEED`): they come back zeroed, at a page fault each, when the thread goes
//! deep again.

/// Stack kept below this function's frame: room for the `madvise` call it makes (a
/// system call wrapper, a few words deep), and for the shallow calls of the idle wait
/// that follows. The page holding that room is kept whole.
const MARGIN: usize = 512;

/// Drops the pages of the calling thread's stack below the caller's frame (Linux with
/// glibc; elsewhere it does nothing).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[inline(never)]
pub fn trim() {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let Some(bottom) = stack_bottom() else {
        return;
    };
    // SAFETY: `sysconf` has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let start = bottom.next_multiple_of(page);
    let end = sp.saturating_sub(MARGIN) / page * page;
    if end <= start {
        return;
    }
    // SAFETY: [start, end) lies within this thread's own stack (above its lowest
    // address, below the current frame minus a margin), where no live data is: frames
    // below the stack pointer are dead. MADV_DONTNEED on private anonymous memory only
    // makes those pages read back as zeros. A failure changes nothing.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// The lowest usable address of the calling thread's stack.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn stack_bottom() -> Option<usize> {
    // SAFETY: the attribute object is initialized by `pthread_getattr_np` before it is
    // read, and destroyed once; the out-pointers point to locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size = 0usize;
        let found = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        found.then_some(addr as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goes `depth` KiB deep into the stack, touching every page on the way.
    #[inline(never)]
    fn go_deep(depth: usize) -> u64 {
        let mut page = [0u8; 1024];
        page[0] = depth as u8;
        let below = if depth > 0 { go_deep(depth - 1) } else { 0 };
        std::hint::black_box(&mut page);
        below + u64::from(page[0])
    }

    #[test]
    fn a_thread_keeps_working_after_its_stack_is_trimmed() {
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let first = go_deep(100);
                trim();
                let again = go_deep(100);
                trim();
                trim();
                (first, again)
            })
            .unwrap();
        let (first, again) = worker.join().unwrap();
        assert_eq!(first, again);
        assert_eq!(first, (0..=100u64).map(|d| d % 256).sum::<u64>());
    }
}
