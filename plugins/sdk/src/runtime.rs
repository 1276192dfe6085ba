//! The plugin's own tokio runtime, created on first use by [`Context::runtime`].
//!
//! A cdylib cannot use stackctl's runtime: its copy of tokio has its own statics and sees no
//! runtime on any thread. Each instance gets a multi-thread runtime (threads named after the
//! sink, their `tracing` events forwarded to the instance's host), shut down at `destroy` after
//! the sink is dropped, waiting at most [`SHUTDOWN_GRACE`] for its tasks.
//!
//! [`Context::runtime`]: crate::Context::runtime

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::Error;
use crate::host::HostHandle;
use crate::log;

/// How long `destroy` waits for the runtime's tasks and blocking threads.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

enum State {
    Idle,
    Running(Runtime),
    Closed,
}

/// An instance's runtime: none until asked for, gone after `destroy`.
pub(crate) struct RuntimeSlot {
    name: &'static str,
    host: HostHandle,
    state: Mutex<State>,
}

impl RuntimeSlot {
    pub(crate) fn new(name: &'static str, host: HostHandle) -> Self {
        Self {
            name,
            host,
            state: Mutex::new(State::Idle),
        }
    }

    /// A handle on the runtime, started now (with `workers` worker threads, or one per core)
    /// if it was not yet.
    pub(crate) fn handle(&self, workers: Option<usize>) -> Result<Handle, Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &*state {
            State::Running(runtime) => Ok(runtime.handle().clone()),
            State::Closed => Err(Error::failed(
                "the plugin's runtime is shut down: the instance is being destroyed",
            )),
            State::Idle => {
                let host = self.host.clone();
                let mut builder = Builder::new_multi_thread();
                if let Some(workers) = workers {
                    builder.worker_threads(workers);
                }
                let runtime = builder
                    .enable_all()
                    .thread_name(format!("{}-rt", self.name))
                    .on_thread_start(move || log::set_thread_host(&host))
                    .build()
                    .map_err(|e| Error::failed(format!("cannot start a tokio runtime: {e}")))?;
                let handle = runtime.handle().clone();
                *state = State::Running(runtime);
                Ok(handle)
            }
        }
    }

    /// Shuts the runtime down (if it ever started); later [`handle`](Self::handle)s fail.
    pub(crate) fn shut_down(&self) {
        let state = std::mem::replace(
            &mut *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            State::Closed,
        );
        if let State::Running(runtime) = state {
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
        }
    }
}
