//! One running plugin: created and started with its configuration, fed by its own delivery
//! thread from its own bus subscription, and detached (marked failed, never unloaded) when it
//! reports a failure or a caught panic.
#![allow(unsafe_code)] // Calls through the plugin's table.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use stackctl_core::bus::{
    Bus, BusItem, RecvError, StartAt, SubscribeOptions, SubscriberStats, Subscription,
};
use stackctl_core::detections::Detections;
use stackctl_plugin_abi as abi;

use crate::callbacks::{FrameView, HostCtx, table, truncate};
use crate::config::FlatConfig;
use crate::host::PluginStatus;
use crate::loader::{Library, LoadError, routes, str_of};

/// How long `stop` waits for a plugin stuck in `on_frame` before leaving it behind.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The instance pointer a plugin returned; only ever passed back to the plugin.
#[derive(Debug, Clone, Copy)]
struct Instance(*mut c_void);
// SAFETY: the header defines which calls may happen on which thread; the host only passes the
// pointer back to the plugin under those rules and never dereferences it.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

/// The host table handed to the plugin and the section it points to; boxed so their addresses
/// never change.
#[derive(Debug)]
pub(crate) struct HostTable {
    _table: Box<abi::Host>,
    _config: Box<FlatConfig>,
}
// SAFETY: the table is never written after creation; its only pointer, `host_ctx`, points to an
// `Arc<HostCtx>` owned by the same `Plugin`, whose state is behind locks and atomics, and every
// callback is [any-thread] by the header's contract.
unsafe impl Send for HostTable {}
// SAFETY: as above.
unsafe impl Sync for HostTable {}

/// Why a plugin could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its file could not be found or loaded, or it does not speak our ABI.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// `create` refused the plugin's configuration (`STACKCTL_ERR_CONFIG`).
    #[error("plugin {name}: configuration refused: {message}")]
    Config {
        /// The plugin's name in the configuration.
        name: String,
        /// What the plugin said (or its status).
        message: String,
    },
    /// `create` failed otherwise.
    #[error("plugin {name}: creation refused: {message}")]
    Create {
        /// The plugin's name in the configuration.
        name: String,
        /// What the plugin said (or its status).
        message: String,
    },
    /// `start` failed.
    #[error("plugin {name}: start failed: {message}")]
    Start {
        /// The plugin's name in the configuration.
        name: String,
        /// What the plugin said (or its status).
        message: String,
    },
    /// It declares a route another plugin already serves.
    #[error("plugin {name}: route {route} is already served by plugin {other}")]
    RouteConflict {
        /// The plugin's name in the configuration.
        name: String,
        /// The route, as declared.
        route: String,
        /// The plugin that serves it.
        other: String,
    },
    /// Its delivery thread could not be spawned.
    #[error("plugin {name}: {error}")]
    Thread {
        /// The plugin's name in the configuration.
        name: String,
        /// Why.
        error: std::io::Error,
    },
}

/// What the host knows about a running plugin.
#[derive(Debug)]
pub struct Plugin {
    name: String,
    version: String,
    /// The ABI it was built for.
    abi: (u16, u16),
    /// Path prefixes it serves: the ones it declares, behind `route_prefix`.
    routes: Vec<String>,
    /// The section's `route_prefix`, put in front of its routes.
    route_prefix: Option<String>,
    table: &'static abi::Sink,
    instance: Instance,
    /// The host table (the plugin keeps a pointer to it).
    _host: HostTable,
    /// The callbacks' context.
    pub(crate) ctx: Arc<HostCtx>,
    failed: Mutex<Option<String>>,
    stopping: Arc<AtomicBool>,
    /// False once destroyed. [any-thread] calls hold it for reading, so `destroy` (writing)
    /// never frees the instance under a running `metrics` or `on_http`.
    alive: RwLock<bool>,
    /// The delivery thread, and a channel that disconnects when it ends (however it ends).
    delivery: Mutex<Option<(JoinHandle<()>, mpsc::Receiver<()>)>>,
    /// Frames handed to `on_frame`.
    delivered: AtomicU64,
    /// Results handed to `on_detections`.
    detections: AtomicU64,
    /// Its bus subscription's counters (frames dropped when it was too slow, gaps).
    queue: Mutex<Option<Arc<SubscriberStats>>>,
}

/// `routes` as served behind `route_prefix`: `/clips` + `/events` → `/clips/events` (a declared `/`
/// becomes the prefix itself).
pub fn prefixed(prefix: Option<&str>, routes: Vec<String>) -> Vec<String> {
    match prefix {
        None => routes,
        Some(m) => routes
            .into_iter()
            .map(|r| match r.as_str() {
                "/" => m.to_owned(),
                _ => format!("{m}{r}"),
            })
            .collect(),
    }
}

/// Plugin-owned buffer → text, then given back to the plugin.
pub(crate) fn take_buf(table: &abi::Sink, buf: abi::Buf) -> String {
    let text = if buf.ptr.is_null() || buf.len == 0 {
        String::new()
    } else {
        // SAFETY: the plugin filled `buf` with `len` readable bytes it owns until free_buf.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) })
            .into_owned()
    };
    if !buf.ptr.is_null() {
        // SAFETY: the buffer came from this plugin and goes back to its own free function once.
        unsafe { (table.free_buf)(buf) };
    }
    text
}

/// An instance `create` accepted, with what must outlive it.
pub(crate) struct Created {
    /// The plugin's instance.
    pub(crate) instance: *mut c_void,
    /// The host table and the section as data it was given.
    pub(crate) host: HostTable,
    /// The context behind the table's callbacks.
    pub(crate) ctx: Arc<HostCtx>,
}

/// Calls the plugin's `create` with its section (the TOML `config`, and the same pre-parsed):
/// `Err` with the plugin's own message, the key's value added, when it refuses.
pub(crate) fn create(
    name: &str,
    t: &'static abi::Sink,
    config: &str,
) -> Result<Created, StartError> {
    let flat = Box::new(FlatConfig::parse(config).map_err(|e| StartError::Config {
        name: name.to_owned(),
        message: e.to_string(),
    })?);
    let ctx = Arc::new(HostCtx::new(name));
    let host = Box::new(table(&ctx, &flat));
    let mut instance = std::ptr::null_mut();
    let mut error = abi::Buf::EMPTY;
    // SAFETY: `host`, `flat` and `ctx` are returned with the instance, and whoever holds it
    // keeps them for as long as the instance lives; `config` lives for the call; the
    // out-pointers are valid.
    let status = unsafe { (t.create)(&*host, abi::Str::new(config), &mut instance, &mut error) };
    let message = take_buf(t, error);
    if status != abi::STATUS_OK || instance.is_null() {
        let (name, message) = (name.to_owned(), or_status(&message, status));
        return Err(if status == abi::STATUS_ERR_CONFIG {
            let message = with_value(&name, &message, &flat);
            StartError::Config { name, message }
        } else {
            StartError::Create { name, message }
        });
    }
    Ok(Created {
        instance,
        host: HostTable {
            _table: host,
            _config: flat,
        },
        ctx,
    })
}

impl Plugin {
    /// Creates and starts an instance of `lib` with its `config` (TOML text). Frames come once
    /// [`Plugin::attach`] is called.
    pub fn start(name: &str, lib: Library, config: &str) -> Result<Arc<Self>, StartError> {
        Self::start_with_prefix(name, lib, config, None)
    }

    /// [`Plugin::start`], serving its routes behind `route_prefix` (e.g. `/clips`: a declared
    /// `/events` is served at `/clips/events` and reaches the plugin as `/events`).
    pub fn start_with_prefix(
        name: &str,
        lib: Library,
        config: &str,
        prefix: Option<&str>,
    ) -> Result<Arc<Self>, StartError> {
        let t = lib.table;
        let Created {
            instance,
            host,
            ctx,
        } = create(name, t, config)?;
        let plugin = Arc::new(Self {
            name: name.to_owned(),
            version: str_of(t.version),
            abi: (t.abi_major, t.abi_minor),
            routes: prefixed(prefix, routes(t)),
            route_prefix: prefix.map(str::to_owned),
            table: t,
            instance: Instance(instance),
            _host: host,
            ctx,
            failed: Mutex::new(None),
            stopping: Arc::new(AtomicBool::new(false)),
            alive: RwLock::new(true),
            delivery: Mutex::new(None),
            delivered: AtomicU64::new(0),
            detections: AtomicU64::new(0),
            queue: Mutex::new(None),
        });
        let mut error = abi::Buf::EMPTY;
        // SAFETY: a live instance of this table, on the control thread.
        let status = unsafe { (t.start)(plugin.instance.0, &mut error) };
        let message = take_buf(t, error);
        if status != abi::STATUS_OK {
            plugin.destroy();
            return Err(StartError::Start {
                name: name.to_owned(),
                message: or_status(&message, status),
            });
        }
        Ok(plugin)
    }

    /// Starts the delivery thread: a bus subscription of `capacity` frames starting at the next
    /// IDR, handed to `on_frame` one by one. A plugin with `on_detections` (ABI 1.1) gets the
    /// detector's results on the same queue, in timestamp order with the frames (the bus's item
    /// subscription orders them).
    pub fn attach(self: &Arc<Self>, bus: &Bus, capacity: usize) -> Result<(), StartError> {
        let opts = SubscribeOptions::new(&self.name)
            .capacity(capacity)
            .start(StartAt::NextIdr);
        let sub = if self.table.on_detections.is_some() {
            Feed::Items(bus.subscribe_items(opts))
        } else {
            Feed::Frames(bus.subscribe(opts))
        };
        *self.queue.lock().unwrap_or_else(PoisonError::into_inner) = Some(sub.stats().clone());
        let plugin = self.clone();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("plugin-{}", self.name))
            .spawn(move || {
                // Dropped when the thread ends, even by a panic: what `stop` waits for.
                let _ended = ended_tx;
                while !plugin.stopping.load(Ordering::Relaxed) && !plugin.is_failed() {
                    match sub.recv_timeout(Duration::from_millis(100)) {
                        Ok(BusItem::Frame(frame)) => plugin.deliver(frame),
                        Ok(BusItem::Detections(d)) => plugin.deliver_detections(&d),
                        Err(RecvError::Empty) => continue,
                        Err(RecvError::Closed) => break,
                    }
                }
                // A failed plugin is stopped as soon as it is detached, not at shutdown: its
                // files and threads should not outlive its usefulness.
                if plugin.is_failed() {
                    plugin.shut();
                }
            })
            .map_err(|error| StartError::Thread {
                name: self.name.clone(),
                error,
            })?;
        *self.delivery.lock().unwrap_or_else(PoisonError::into_inner) = Some((thread, ended));
        Ok(())
    }

    /// Its name in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its own version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The path prefixes it serves (behind its route prefix, if it has one).
    pub fn routes(&self) -> &[String] {
        &self.routes
    }

    /// The prefix in front of its routes, if its section sets `route_prefix`.
    pub fn route_prefix(&self) -> Option<&str> {
        self.route_prefix.as_deref()
    }

    /// `path`, a path one of its [`Plugin::routes`] matched, as the plugin sees it: without
    /// the prefix (`/clips/events` → `/events`; the prefix alone → `/`).
    pub fn local_path<'a>(&self, path: &'a str) -> &'a str {
        match self
            .route_prefix
            .as_deref()
            .and_then(|m| path.strip_prefix(m))
        {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        }
    }

    /// The name its library gives itself: instances of one library share metric families.
    pub fn library(&self) -> String {
        str_of(self.table.name)
    }

    /// True once it is being stopped (the stack stops): it answers no more requests.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Its state, for `stackctl status` and `/api/status`.
    pub fn status(&self) -> PluginStatus {
        let dropped = self
            .queue
            .lock()
            .ok()
            .and_then(|q| q.as_ref().map(|s| s.snapshot().dropped))
            .unwrap_or(0);
        let failure = self.failure();
        PluginStatus {
            name: self.name.clone(),
            state: if failure.is_some() {
                "failed"
            } else {
                "running"
            }
            .to_owned(),
            detail: failure,
            version: Some(self.version.clone()),
            abi: Some(format!("{}.{}", self.abi.0, self.abi.1)),
            routes: self.routes.clone(),
            frames: self.delivered.load(Ordering::Relaxed),
            dropped,
            detections: self.detections.load(Ordering::Relaxed),
        }
    }

    /// Hands one frame to the plugin, on the calling thread (the delivery thread's loop; also
    /// what the ABI benchmark measures). A non-OK answer detaches the plugin.
    pub fn deliver(&self, frame: Arc<stackctl_core::Frame>) {
        let view = FrameView::new(frame);
        // SAFETY: a live, started instance, called from one thread at a time (the delivery
        // thread, or a benchmark that never attached); `view` (and so the frame it points
        // into) outlives the call, and longer if the plugin retains it.
        let status = unsafe { (self.table.on_frame)(self.instance.0, &view.c) };
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if status != abi::STATUS_OK {
            self.fail(format!("on_frame returned {}", status_name(status)));
        }
    }

    /// Hands one result of the detector to the plugin's `on_detections`, on the calling thread
    /// (the delivery thread). Items outside the header's limits are left out. Does nothing for
    /// a plugin without `on_detections`; a non-OK answer detaches it.
    pub fn deliver_detections(&self, detections: &Detections) {
        let Some(on_detections) = self.table.on_detections else {
            return;
        };
        let items: Vec<abi::Detection> = detections
            .items
            .iter()
            .filter(|d| {
                !d.class.is_empty()
                    && d.class.len() <= abi::CLASS_NAME_MAX
                    && (0.0..=1.0).contains(&d.confidence)
                    && d.x >= 0
                    && d.y >= 0
                    && d.w > 0
                    && d.h > 0
            })
            .take(abi::DETECTIONS_MAX)
            .map(|d| abi::Detection {
                class_name: abi::Str::new(&d.class),
                confidence: d.confidence,
                x: d.x,
                y: d.y,
                w: d.w,
                h: d.h,
            })
            .collect();
        let c = abi::Detections {
            struct_size: std::mem::size_of::<abi::Detections>() as u32,
            frame_number: detections.frame_number,
            timestamp_ns: detections.timestamp_ns,
            items: if items.is_empty() {
                std::ptr::null()
            } else {
                items.as_ptr()
            },
            // At most DETECTIONS_MAX (64): fits.
            count: items.len() as u32,
        };
        // SAFETY: a live, started instance, called on the delivery thread (never concurrently
        // with on_frame); `c`, `items` and the class names they borrow from `detections`
        // outlive the call.
        let status = unsafe { on_detections(self.instance.0, &c) };
        self.detections.fetch_add(1, Ordering::Relaxed);
        if status != abi::STATUS_OK {
            self.fail(format!("on_detections returned {}", status_name(status)));
        }
    }

    /// Marks it failed: it gets no more frames or requests. The reason the plugin gave
    /// (`fail_reason`, ABI 1.1), if any, is added to `why`.
    pub fn fail(&self, why: String) {
        let why = match self.ctx.take_fail_reason() {
            Some(reason) if !reason.is_empty() => format!("{why}: {reason}"),
            _ => why,
        };
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_none() {
            tracing::error!(plugin = %self.name, "plugin failed and is detached: {why}");
            *failed = Some(why);
        }
    }

    /// Why it failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True once it failed.
    pub fn is_failed(&self) -> bool {
        self.failure().is_some()
    }

    /// Its metrics text, or nothing (failed, or it has none).
    pub fn metrics(&self) -> String {
        let alive = self.alive.read().unwrap_or_else(PoisonError::into_inner);
        if !*alive || self.is_failed() {
            return String::new();
        }
        let mut out = abi::Buf::EMPTY;
        // SAFETY: a live instance; `metrics` is [any-thread]; `out` is a valid out-pointer.
        let status = unsafe { (self.table.metrics)(self.instance.0, &mut out) };
        let text = take_buf(self.table, out);
        if status != abi::STATUS_OK {
            self.fail(format!("metrics returned {}", status_name(status)));
            return String::new();
        }
        text
    }

    /// Hands an HTTP request to the plugin. `false` if it refused (it is then detached).
    pub(crate) fn on_http(&self, request: &abi::HttpRequest) -> bool {
        let alive = self.alive.read().unwrap_or_else(PoisonError::into_inner);
        if !*alive || self.is_failed() {
            return false;
        }
        // SAFETY: a live instance; `on_http` is [any-thread]; the request and everything it
        // points to live for the call.
        let status = unsafe { (self.table.on_http)(self.instance.0, request) };
        if status != abi::STATUS_OK {
            self.fail(format!("on_http returned {}", status_name(status)));
            return false;
        }
        true
    }

    /// Tells the plugin that streamed answer `id` has room again, or was closed (ABI 1.2
    /// `on_http_writable`; nothing for a plugin without it, which polls).
    pub(crate) fn on_http_writable(&self, id: u64) {
        let Some(on_http_writable) = self.table.on_http_writable else {
            return;
        };
        let alive = self.alive.read().unwrap_or_else(PoisonError::into_inner);
        if !*alive || self.is_failed() || self.is_stopping() {
            return;
        }
        // SAFETY: a live instance (the read lock keeps `destroy` out); the callback is
        // [any-thread].
        unsafe { on_http_writable(self.instance.0, id) };
    }

    /// Streamed answers under way.
    pub fn open_streams(&self) -> usize {
        self.ctx.open_streams()
    }

    /// Stops delivery, then the plugin, then frees it. A plugin stuck in `on_frame` for longer
    /// than [`STOP_WAIT`] is left behind (stopping or freeing it under its feet would be worse).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let thread = self
            .delivery
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((thread, ended)) = thread {
            if ended.recv_timeout(STOP_WAIT) == Err(mpsc::RecvTimeoutError::Timeout) {
                tracing::warn!(plugin = %self.name, "stuck in on_frame; left running without being stopped");
                return;
            }
            let _ = thread.join();
        }
        self.shut();
    }

    /// Calls the plugin's `stop` then `destroy`, once. Only when no `on_frame` can run: from
    /// the delivery thread as it ends, or after it has ended. The write lock waits out any
    /// [any-thread] call in flight and serialises the two callers.
    fn shut(&self) {
        let mut alive = self.alive.write().unwrap_or_else(PoisonError::into_inner);
        if *alive {
            // SAFETY: no on_frame runs (see above) and the write lock excludes [any-thread]
            // calls, so nothing else runs in the instance.
            unsafe { (self.table.stop)(self.instance.0) };
            // SAFETY: as above; `alive` turns false so the instance is never called again.
            unsafe { (self.table.destroy)(self.instance.0) };
            *alive = false;
            tracing::info!(plugin = %self.name, "plugin stopped");
        }
    }

    fn destroy(&self) {
        let mut alive = self.alive.write().unwrap_or_else(PoisonError::into_inner);
        if *alive {
            // SAFETY: only after a failed start: nothing else has the instance yet.
            unsafe { (self.table.destroy)(self.instance.0) };
            *alive = false;
        }
    }
}

/// A plugin's bus subscription: frames only, or frames and results (a plugin with
/// `on_detections`). Both yield [`BusItem`]s so one loop delivers both.
enum Feed {
    Frames(Subscription),
    Items(Subscription<BusItem>),
}

impl Feed {
    fn recv_timeout(&self, timeout: Duration) -> Result<BusItem, RecvError> {
        match self {
            Self::Frames(sub) => sub.recv_timeout(timeout).map(BusItem::Frame),
            Self::Items(sub) => sub.recv_timeout(timeout),
        }
    }

    fn stats(&self) -> &Arc<SubscriberStats> {
        match self {
            Self::Frames(sub) => sub.stats(),
            Self::Items(sub) => sub.stats(),
        }
    }
}

/// A plugin's message: its first line, at most `MESSAGE_MAX` bytes, or the status's name.
pub(crate) fn or_status(message: &str, status: abi::Status) -> String {
    let line = message.lines().next().unwrap_or_default().trim_end();
    if line.is_empty() {
        status_name(status).to_owned()
    } else {
        truncate(line.to_owned(), abi::MESSAGE_MAX)
    }
}

/// A configuration error `KEY: what is wrong` (the header's format), with the key's full name
/// and value added when the section has that key.
fn with_value(name: &str, message: &str, config: &FlatConfig) -> String {
    let value = message
        .split_once(": ")
        .and_then(|(key, _)| config.get(key).map(|v| (key, v)));
    match value {
        Some((key, value)) => format!("{message} (plugins.{name}.{key} = {value})"),
        None => message.to_owned(),
    }
}

fn status_name(status: abi::Status) -> &'static str {
    match status {
        abi::STATUS_OK => "OK",
        abi::STATUS_ERR_CONFIG => "a configuration error",
        abi::STATUS_ERR_PANIC => "a panic (caught in the plugin)",
        _ => "a failure",
    }
}
