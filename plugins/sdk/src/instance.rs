//! One instance's life: created (configuration parsed), started (the sink exists), stopped,
//! destroyed; poisoned by a panic at any point.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing::Level;

use crate::host::HostHandle;
use crate::{Context, Error, Sink, panic};

/// What the host's `void *instance` points to.
pub(crate) struct Instance<T: Sink> {
    ctx: Context,
    /// The configuration, from `create` until `start` takes it.
    config: Mutex<Option<T::Config>>,
    sink: OnceLock<T>,
    stopped: AtomicBool,
    poisoned: AtomicBool,
    /// A misbehaving host was reported once already.
    complained: AtomicBool,
}

impl<T: Sink> Instance<T> {
    pub(crate) fn new(host: HostHandle, config: T::Config) -> Self {
        Self {
            ctx: Context::new(host, T::NAME),
            config: Mutex::new(Some(config)),
            sink: OnceLock::new(),
            stopped: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            complained: AtomicBool::new(false),
        }
    }

    pub(crate) fn host(&self) -> &HostHandle {
        self.ctx.host()
    }

    /// Builds the sink from the configuration.
    pub(crate) fn start(&self) -> Result<(), Error> {
        let config = self
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| Error::failed("start was called twice"))?;
        let sink = T::start(config, self.ctx.clone())?;
        self.sink
            .set(sink)
            .map_err(|_| Error::failed("start was called twice"))
    }

    /// The sink, while it takes frames and requests: started, not stopped, not poisoned.
    pub(crate) fn running(&self) -> Option<&T> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        self.healthy()
    }

    /// The sink, when started and not poisoned (metrics are still read after `stop`).
    pub(crate) fn healthy(&self) -> Option<&T> {
        if self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        self.sink.get()
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Records that `call` panicked: logs it, and keeps frames and requests away from now on.
    pub(crate) fn poison(&self, call: &str, panic: &str) {
        self.poisoned.store(true, Ordering::Release);
        self.host()
            .fail_reason(&format!("panicked in {call}: {panic}"));
        self.host().log(
            Level::ERROR,
            T::NAME,
            &format!(
                "the sink panicked in {call}: {panic}; it takes no more frames or requests \
                 until stackctl restarts"
            ),
        );
    }

    /// Logs a host misbehaviour, the first time only.
    pub(crate) fn complain_once(&self, message: &str) {
        if !self.complained.swap(true, Ordering::Relaxed) {
            self.host().log(Level::ERROR, T::NAME, message);
        }
    }

    /// Stops the sink, once (also when poisoned, so it can release threads and files).
    pub(crate) fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(sink) = self.sink.get() {
            sink.stop();
        }
    }

    /// Stops (if the host did not), drops the sink, shuts the runtime down. Returns the panics
    /// caught on the way, as `(step, message)`.
    pub(crate) fn teardown(mut self: Box<Self>) -> Vec<(&'static str, String)> {
        let mut panics = Vec::new();
        if let Err(p) = panic::catch(|| self.stop()) {
            panics.push(("stop", p));
        }
        let sink = self.sink.take();
        if let Err(p) = panic::catch(move || drop(sink)) {
            panics.push(("drop", p));
        }
        let ctx = self.ctx.clone();
        if let Err(p) = panic::catch(move || {
            ctx.shut_down();
            drop(self);
        }) {
            panics.push(("runtime shutdown", p));
        }
        panics
    }
}
