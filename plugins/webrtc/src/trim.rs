//! Giving the memory of departed viewers back to the system.
//!
//! A connection allocates on its worker thread, and glibc keeps what a thread frees in that
//! thread's arena for reuse: after viewers come and go, the process would keep the footprint
//! of its busiest moment. A second after viewers are removed (once for a burst of removals),
//! the worker calls [`trim`], which asks glibc to return every arena's free pages.

/// Returns the free memory of every malloc arena to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // A libc call.
pub fn trim() {
    // SAFETY: malloc_trim takes no pointer and only touches the allocator's own state, under
    // its locks; it is safe to call from any thread at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Other C libraries keep no per-thread arenas to trim.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn rss_anon_kb() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Memory freed in the middle of a thread's arena (which free() alone never returns) goes
    /// back to the system.
    #[test]
    fn freed_holes_in_an_arena_go_back_to_the_system() {
        std::thread::spawn(|| {
            // 64 kB blocks stay in the arena (below the mmap threshold); freeing every other
            // one leaves holes that no automatic trim of the arena's top can return.
            let mut blocks: Vec<Option<Vec<u8>>> =
                (0..400).map(|i| Some(vec![i as u8; 64 << 10])).collect();
            for block in blocks.iter_mut().step_by(2) {
                *block = None;
            }
            let before = rss_anon_kb().unwrap();
            trim();
            let after = rss_anon_kb().unwrap();
            // 12.5 MiB of holes; allow for other tests' threads.
            assert!(
                before.saturating_sub(after) > 8 << 10,
                "RssAnon {before} kB -> {after} kB"
            );
            drop(blocks);
        })
        .join()
        .unwrap();
    }
}
