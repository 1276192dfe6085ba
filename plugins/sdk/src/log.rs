//! The plugin's `tracing` events go to the host's `log` callback.
//!
//! A cdylib has its own copy of `tracing`, so stackctl's subscriber never sees the plugin's
//! events. The first `create` in a library installs, as the global default of the plugin's copy,
//! a subscriber whose one layer forwards each event (prefixed by its spans' names, followed by
//! its fields) to a host:
//! - the host of the instance whose call is running on this thread (set around every call into
//!   the plugin, and for the whole life of the threads of the instance's tokio runtime);
//! - otherwise (a thread the sink spawned itself) the most recently created live instance's
//!   host: the right one unless a library is loaded for two `[plugins.*]` sections at once.
//!
//! Events above the host's `max_log_level` are never formatted.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, PoisonError, RwLock};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::{LookupSpan, Registry};

use crate::host::{HostHandle, level_number};

/// Live instances' hosts, oldest first.
static HOSTS: RwLock<Vec<HostHandle>> = RwLock::new(Vec::new());
/// The most verbose level any live host wants (0: none).
static MAX_LEVEL: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The host of the instance this thread is working for, if known.
    static CURRENT: RefCell<Option<HostHandle>> = const { RefCell::new(None) };
}

/// Starts forwarding events to `host` (and installs the subscriber, once per library).
pub(crate) fn register(host: &HostHandle) {
    install(host);
    let mut hosts = HOSTS.write().unwrap_or_else(PoisonError::into_inner);
    hosts.push(host.clone());
    update_max_level(&hosts);
}

/// Stops forwarding events to `host`.
pub(crate) fn unregister(host: &HostHandle) {
    let mut hosts = HOSTS.write().unwrap_or_else(PoisonError::into_inner);
    hosts.retain(|h| !h.same(host));
    update_max_level(&hosts);
}

fn update_max_level(hosts: &[HostHandle]) {
    let max = hosts.iter().map(HostHandle::max_log_number).max();
    MAX_LEVEL.store(max.unwrap_or(0), Ordering::Relaxed);
}

fn install(host: &HostHandle) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = Registry::default().with(HostLayer);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            host.log(
                Level::WARN,
                module_path!(),
                "a global tracing subscriber was already set in this plugin: its tracing events \
                 are not forwarded to stackctl",
            );
        }
    });
}

/// Sends this thread's events to `host` until the guard drops (then to whatever was before).
pub(crate) fn enter(host: &HostHandle) -> Scope {
    let previous = CURRENT
        .try_with(|current| current.replace(Some(host.clone())))
        .ok()
        .flatten();
    Scope { previous }
}

/// Sends this thread's events to `host` for the rest of its life (a runtime worker thread).
#[cfg(feature = "runtime")]
pub(crate) fn set_thread_host(host: &HostHandle) {
    let _ = CURRENT.try_with(|current| current.replace(Some(host.clone())));
}

/// Restores the previous destination of this thread's events when dropped.
pub(crate) struct Scope {
    previous: Option<HostHandle>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}

/// Where an event on this thread goes.
fn destination() -> Option<HostHandle> {
    if let Ok(Some(host)) = CURRENT.try_with(|current| current.borrow().clone()) {
        return Some(host);
    }
    HOSTS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .last()
        .cloned()
}

/// The layer that forwards events.
struct HostLayer;

impl<S> Layer<S> for HostLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Hosts come and go with their own levels: ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        level_number(*metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(host) = destination() else {
            return;
        };
        let level = level_number(*event.metadata().level());
        if level > host.max_log_number() {
            return;
        }
        let mut line = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                line.push_str(span.name());
                line.push_str(": ");
            }
        }
        event.record(&mut LineWriter(&mut line));
        host.log_number(level, event.metadata().target(), &line);
    }
}

/// Writes an event's fields as `message key=value ...`.
struct LineWriter<'a>(&'a mut String);

impl LineWriter<'_> {
    fn separate(&mut self) {
        if !self.0.is_empty() && !self.0.ends_with(' ') {
            self.0.push(' ');
        }
    }
}

impl Visit for LineWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.separate();
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.separate();
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}
