//! SIGINT/SIGTERM as a flag, without an async-signal-unsafe handler: the signals are blocked in
//! every thread and one thread waits for them with `sigwait`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Blocks SIGINT and SIGTERM in the calling thread (call before spawning any other thread, so
/// they inherit the mask) and starts a thread that sets the returned flag and unparks `wake`
/// when one arrives.
pub fn stop_on_signal(wake: Thread) -> anyhow::Result<Arc<AtomicBool>> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if set.wait().is_ok() {
                raised.store(true, Ordering::SeqCst);
                wake.unpark();
            }
        })?;
    Ok(flag)
}
