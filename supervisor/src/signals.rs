//! SIGINT/SIGTERM as a flag, without an async-signal-unsafe handler: the signals are blocked in
//! every thread and one thread waits for them with `sigwait`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;

use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, sigaction,
};

/// Signals whose default action (terminate) must not end `stackctl up`: a stray `kill -HUP`
/// (a closed terminal, a logrotate habit) or `kill -USR1`. The service driver handles them once
/// it runs (SIGHUP logged and ignored, SIGUSR1 logs the status).
const SURVIVED: [Signal; 2] = [Signal::SIGHUP, Signal::SIGUSR1];

extern "C" fn survive(_: nix::libc::c_int) {}

/// Installs a handler that does nothing for SIGHUP and SIGUSR1, so they cannot kill `up` in its
/// first moments, before the service driver installs its own (loading the configuration and
/// the plugins, binding the ports can take seconds). A handler rather than `SIG_IGN`: an
/// ignored signal stays ignored in every child across `exec`, a handled one returns to its
/// default there, so services still get SIGHUP's default. The driver's handlers replace it.
#[allow(unsafe_code)]
pub fn survive_hangup() -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(survive),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in SURVIVED {
        // SAFETY: the handler does nothing, so it is async-signal-safe; no other handler for
        // these signals exists yet (this runs first thing in `up`, before any thread).
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

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
