//! The host side of stackctl's sink plugins: everything between the supervisor and a shared
//! library that speaks the sink ABI (`plugins/abi/include/stackctl_sink.h`).
//!
//! - [`loader`] finds a plugin's file, loads it for good and checks its table (magic, ABI major,
//!   size, no NULL function), refusing a mismatch with a message naming the plugin, its ABI and
//!   ours.
//! - [`Plugin`] is one running instance: created with its own configuration, fed by its own
//!   delivery thread from its own bus subscription (starting at an IDR, so a slow plugin loses
//!   only its own frames, whole GOPs at a time), asked for metrics, handed HTTP requests
//!   ([`Plugin::http`], answered through a host callback, then or later), stopped.
//! - [`PluginHost`] is every configured plugin: started from the `[plugins.NAME]` sections that
//!   `stackctl_config` read, found by route, listed with their state.
//! - [`check`] creates and destroys an instance without starting it (`stackctl check`).
//! - [`exposition`] checks plugins' metrics before they reach `/metrics`, and labels them.
//! - `http::framing` makes a plugin's HTTP answer safe to write (the host owns framing);
//!   `http::stream` carries a streamed answer (ABI 1.2): a bounded buffer, back-pressure and
//!   the write time-out.
//! - `callbacks` is what a plugin may call: the `stackctl_host` table (logs, HTTP answers,
//!   frame retain and release) and the frame view it sees.
//!
//! A plugin that fails to load is refused; the rest of the stack starts anyway unless it is
//! `required`. A plugin that fails later (a caught panic, an error from `on_frame`) is detached
//! and marked failed; it is never unloaded (a Rust cdylib's thread-local destructors crash after
//! `dlclose`).
//!
//! `unsafe` lives in [`loader`] (dlopen, the entry point, reading the table), `callbacks` (the
//! `extern "C"` functions plugins call) and `plugin` (calls through the table), each block
//! with its `SAFETY` argument.

mod callbacks;
pub mod check;
pub mod config;
pub mod exposition;
mod host;
mod http;
pub mod loader;
mod once;
mod plugin;

pub use host::{PluginHost, PluginStatus, Routed, StartFailed};
pub use http::framing::Refusal;
pub use http::stream::{StreamError, StreamOptions};
pub use http::{HttpError, PLUGIN_TIMEOUT, PluginBody};
pub use plugin::{Plugin, StartError};
