//! Running a detection source on its own thread, publishing into a [`Bus`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::source::{DetectionConfig, DetectionSource, DetectionStats};
use crate::bus::Bus;

/// How long one wait for a result lasts before the thread lets the bus release results held
/// for frames that never came.
const TICK: Duration = Duration::from_millis(50);

/// A detection source thread. Stop it with [`DetectionHandle::stop`]; dropping it stops it too.
#[derive(Debug)]
pub struct DetectionHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<DetectionStats>,
}

impl DetectionHandle {
    /// Starts a thread (`detections`) that waits for the segment, however long, and publishes
    /// every result into `bus` until stopped. It does not close the bus: frames go on without
    /// detections.
    pub fn spawn(cfg: DetectionConfig, bus: Bus) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut source = DetectionSource::new(cfg);
        let stats = source.stats();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("detections".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if let Some(result) = source.poll(&flag, TICK) {
                        bus.publish_detections(result);
                    }
                    bus.release_detections();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// The source's counters.
    pub fn stats(&self) -> &Arc<DetectionStats> {
        &self.stats
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                tracing::error!("the detection source thread panicked");
            }
        }
    }
}

impl Drop for DetectionHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
