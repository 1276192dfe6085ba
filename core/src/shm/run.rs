//! Running a source on its own thread, publishing into a [`Bus`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::ShmError;
use super::source::{ShmSource, SourceConfig, SourceStats};
use crate::bus::Bus;

/// A source thread. Stop it with [`SourceHandle::stop`]; dropping it stops it too.
#[derive(Debug)]
pub struct SourceHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), ShmError>>>,
    stats: Arc<SourceStats>,
}

impl SourceHandle {
    /// Starts a thread that waits up to `open_timeout` for the segment (forever with `None`),
    /// then publishes every frame into `bus` until stopped. The thread closes the bus when it
    /// ends, so subscribers see the end of the stream.
    pub fn spawn(
        cfg: SourceConfig,
        bus: Bus,
        open_timeout: Option<Duration>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut source = ShmSource::new(cfg);
        let stats = source.stats();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("shm-reader".into())
            .spawn(move || {
                let result = run(&mut source, &bus, open_timeout, &flag);
                bus.close();
                result
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// The source's counters.
    pub fn stats(&self) -> &Arc<SourceStats> {
        &self.stats
    }

    /// True once the thread has ended (stopped, or failed: see [`SourceHandle::stop`]).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the thread and returns how it ended.
    pub fn stop(mut self) -> Result<(), ShmError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ShmError> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        thread.thread().unpark();
        thread.join().unwrap_or_else(|_| {
            tracing::error!("the shared-memory source thread panicked");
            Ok(())
        })
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        // Errors were either returned by stop() already or are of no interest to a dropper.
        let _ = self.shutdown();
    }
}

fn run(
    source: &mut ShmSource,
    bus: &Bus,
    open_timeout: Option<Duration>,
    stop: &AtomicBool,
) -> Result<(), ShmError> {
    source.wait_for_segment(open_timeout, stop)?;
    while let Some(frame) = source.next_frame(stop)? {
        bus.publish(frame);
    }
    Ok(())
}
