//! The `extern "C"` side: the functions of the `stackctl_sink` table, generic over the sink,
//! and the `const` builders [`export_sink!`](crate::export_sink) uses for the static table.
//!
//! Every function catches panics (`panic::catch`), directs the plugin's `tracing` events to the
//! calling instance's host (`log::enter`), and checks pointers before it trusts them.
#![allow(unsafe_code)] // Raw pointers from the host, `Box::into_raw`/`from_raw` of instances.

use std::ffi::c_void;
use std::mem::size_of;

use stackctl_plugin_abi as abi;
use tracing::Level;

use crate::detections::Detections;
use crate::frame::Frame;
use crate::host::HostHandle;
use crate::http::{Request, Responder, answer_error};
use crate::instance::Instance;
use crate::versioned::{FRAME_V1_0, REQUEST_V1_0, covers};
use crate::{Error, Sink, buf, log, panic, parse_config};

/// The static `stackctl_sink` table of sink `T`, its routes at `routes`.
pub const fn table<T: Sink>(routes: &'static [abi::Str]) -> abi::Sink {
    abi::Sink {
        magic: abi::MAGIC,
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        struct_size: size_of::<abi::Sink>() as u32,
        reserved: 0,
        name: abi::Str::new(T::NAME),
        version: abi::Str::new(T::VERSION),
        routes: if routes.is_empty() {
            std::ptr::null()
        } else {
            routes.as_ptr()
        },
        route_count: routes.len(),
        create: create::<T>,
        start: start::<T>,
        on_frame: on_frame::<T>,
        on_http: on_http::<T>,
        metrics: metrics::<T>,
        stop: stop::<T>,
        destroy: destroy::<T>,
        free_buf,
        on_detections: if T::WANTS_DETECTIONS {
            Some(on_detections::<T>)
        } else {
            None
        },
        on_http_writable: Some(on_http_writable::<T>),
    }
}

/// `T::ROUTES` as `stackctl_str`s; `N` must be their number. Checks, at compile time, that the
/// name is not empty and every route starts with `/`.
pub const fn routes<T: Sink, const N: usize>() -> [abi::Str; N] {
    assert!(!T::NAME.is_empty(), "Sink::NAME must not be empty");
    assert!(
        N == T::ROUTES.len(),
        "routes::<T, N>: N must be T::ROUTES.len()"
    );
    let mut out = [abi::Str::EMPTY; N];
    let mut i = 0;
    while i < N {
        let route = T::ROUTES[i].as_bytes();
        assert!(
            !route.is_empty() && route[0] == b'/',
            "every entry of Sink::ROUTES must start with '/'"
        );
        out[i] = abi::Str::new(T::ROUTES[i]);
        i += 1;
    }
    out
}

/// The instance behind the host's pointer.
///
/// # Safety
/// `instance` is null or was returned by this library's `create::<T>` and not destroyed.
unsafe fn instance<'a, T: Sink>(instance: *mut c_void) -> Option<&'a Instance<T>> {
    // The header calls an instance from several threads at once, and frees it on another.
    fn shareable<X: Send + Sync>() {}
    shareable::<Instance<T>>();
    // SAFETY: the caller's promise; sharing it between threads is sound (checked just above).
    unsafe { instance.cast::<Instance<T>>().as_ref() }
}

/// [control] `create`: checks the host, parses and checks the configuration ([`Sink::check`]);
/// the sink starts in `start`.
unsafe extern "C" fn create<T: Sink>(
    host: *const abi::Host,
    config_toml: abi::Str,
    instance: *mut *mut c_void,
    error: *mut abi::Buf,
) -> abi::Status {
    panic::install_hook();
    if instance.is_null() {
        // SAFETY: `error` is null or writable (the header's out-parameter).
        unsafe { buf::set_error(error, "the host passed a NULL instance out-parameter") };
        return abi::STATUS_ERR_FAILED;
    }
    let mut registered: Option<HostHandle> = None;
    let outcome = panic::catch(|| -> Result<Box<Instance<T>>, Error> {
        // SAFETY: the header: `host` is valid until destroy (or until a failed create returns).
        let host = unsafe { HostHandle::from_raw(host) }?;
        log::register(&host);
        registered = Some(host.clone());
        let _scope = log::enter(&host);
        // SAFETY: `config_toml` is borrowed for this call.
        let text = unsafe { buf::bytes(config_toml.ptr, config_toml.len) };
        let text = std::str::from_utf8(text)
            .map_err(|e| Error::config("", format!("the section is not UTF-8: {e}")))?;
        let config = parse_config::<T::Config>(text)?;
        T::check(&config)?;
        Ok(Box::new(Instance::<T>::new(host, config)))
    });
    let failure = match outcome {
        Ok(Ok(boxed)) => {
            // SAFETY: checked non-null; the host reads it back after we return.
            unsafe { instance.write(Box::into_raw(boxed).cast()) };
            return abi::STATUS_OK;
        }
        Ok(Err(e)) => (e.status(), e.to_string()),
        Err(p) => (abi::STATUS_ERR_PANIC, format!("panicked in create: {p}")),
    };
    // No destroy follows a failed create: forget the host now.
    if let Some(host) = registered {
        log::unregister(&host);
        host.close();
    }
    // SAFETY: `error` is null or writable.
    unsafe { buf::set_error(error, &failure.1) };
    failure.0
}

/// [control] `start`: builds the sink from its configuration.
unsafe extern "C" fn start<T: Sink>(instance: *mut c_void, error: *mut abi::Buf) -> abi::Status {
    // SAFETY: the host passes what create returned.
    let Some(inst) = (unsafe { self::instance::<T>(instance) }) else {
        // SAFETY: `error` is null or writable.
        unsafe { buf::set_error(error, "the host passed a NULL instance") };
        return abi::STATUS_ERR_FAILED;
    };
    let _scope = log::enter(inst.host());
    let (status, message) = match panic::catch(|| inst.start()) {
        Ok(Ok(())) => return abi::STATUS_OK,
        Ok(Err(e)) => (e.status(), e.to_string()),
        Err(p) => {
            inst.poison("start", &p);
            (abi::STATUS_ERR_PANIC, format!("panicked in start: {p}"))
        }
    };
    // SAFETY: `error` is null or writable.
    unsafe { buf::set_error(error, &message) };
    status
}

/// [delivery] `on_frame`. Non-OK detaches the plugin: `STACKCTL_ERR_PANIC` after a caught
/// panic, `STACKCTL_ERR_FAILED` when poisoned before or when the host's frame is unusable.
unsafe extern "C" fn on_frame<T: Sink>(
    instance: *mut c_void,
    frame: *const abi::Frame,
) -> abi::Status {
    // SAFETY: the host passes what create returned.
    let Some(inst) = (unsafe { self::instance::<T>(instance) }) else {
        return abi::STATUS_ERR_FAILED;
    };
    if inst.is_poisoned() {
        return abi::STATUS_ERR_FAILED;
    }
    let Some(sink) = inst.running() else {
        return abi::STATUS_OK; // not started, or stopped: nothing to do
    };
    // SAFETY: the frame is valid until on_frame returns.
    let Some(raw) = (unsafe { frame.as_ref() }) else {
        inst.complain_once("the host passed a NULL stackctl_frame");
        return abi::STATUS_ERR_FAILED;
    };
    if !covers(raw.struct_size, FRAME_V1_0) {
        inst.complain_once("the host passed a stackctl_frame shorter than ABI 1.0");
        return abi::STATUS_ERR_FAILED;
    }
    let _scope = log::enter(inst.host());
    // SAFETY: the running on_frame's frame, on the delivery thread, of a 1.0 size.
    let frame = unsafe { Frame::new(raw, inst.host()) };
    match panic::catch(|| sink.on_frame(&frame)) {
        Ok(()) => abi::STATUS_OK,
        Err(p) => {
            inst.poison("on_frame", &p);
            abi::STATUS_ERR_PANIC
        }
    }
}

/// [delivery] `on_detections` (ABI 1.1; in the table only when `T::WANTS_DETECTIONS`).
/// `STACKCTL_ERR_PANIC` after a caught panic, `STACKCTL_ERR_FAILED` when poisoned before; a
/// result of the wrong shape is skipped (logged once), not a reason to detach.
unsafe extern "C" fn on_detections<T: Sink>(
    instance: *mut c_void,
    detections: *const abi::Detections,
) -> abi::Status {
    // SAFETY: the host passes what create returned.
    let Some(inst) = (unsafe { self::instance::<T>(instance) }) else {
        return abi::STATUS_ERR_FAILED;
    };
    if inst.is_poisoned() {
        return abi::STATUS_ERR_FAILED;
    }
    let Some(sink) = inst.running() else {
        return abi::STATUS_OK;
    };
    // SAFETY: the result is valid until on_detections returns.
    let Some(raw) = (unsafe { detections.as_ref() }) else {
        inst.complain_once("the host passed a NULL stackctl_detections");
        return abi::STATUS_OK;
    };
    // SAFETY: the running on_detections's result; `new` checks its size and count first.
    let detections = match unsafe { Detections::new(raw) } {
        Ok(d) => d,
        Err(why) => {
            inst.complain_once(&why.to_string());
            return abi::STATUS_OK;
        }
    };
    let _scope = log::enter(inst.host());
    match panic::catch(|| sink.on_detections(&detections)) {
        Ok(()) => abi::STATUS_OK,
        Err(p) => {
            inst.poison("on_detections", &p);
            abi::STATUS_ERR_PANIC
        }
    }
}

/// [any-thread] `on_http`. OK when the request is (or will be) answered; after a caught panic
/// `STACKCTL_ERR_PANIC` (the dropped `Responder` has answered 500 already); `STACKCTL_ERR_FAILED`
/// when the host's request is unusable (the host answers).
unsafe extern "C" fn on_http<T: Sink>(
    instance: *mut c_void,
    request: *const abi::HttpRequest,
) -> abi::Status {
    // SAFETY: the host passes what create returned.
    let Some(inst) = (unsafe { self::instance::<T>(instance) }) else {
        return abi::STATUS_ERR_FAILED;
    };
    // SAFETY: the request is valid until on_http returns.
    let Some(raw) = (unsafe { request.as_ref() }) else {
        inst.complain_once("the host passed a NULL stackctl_http_request");
        return abi::STATUS_ERR_FAILED;
    };
    if !covers(raw.struct_size, REQUEST_V1_0) {
        inst.complain_once("the host passed a stackctl_http_request shorter than ABI 1.0");
        return abi::STATUS_ERR_FAILED;
    }
    let _scope = log::enter(inst.host());
    let outcome = panic::catch(|| match inst.running() {
        Some(sink) => {
            // SAFETY: the running on_http's request, of a 1.0 size.
            let request = unsafe { Request::copy_from(raw) };
            sink.on_http(request, Responder::new(inst.host().clone(), raw.id));
        }
        None => {
            let why = if inst.is_poisoned() {
                "the sink failed (it panicked)"
            } else {
                "the sink is not running"
            };
            answer_error(inst.host(), raw.id, 503, why);
        }
    });
    match outcome {
        Ok(()) => abi::STATUS_OK,
        Err(p) => {
            inst.poison("on_http", &p);
            abi::STATUS_ERR_PANIC
        }
    }
}

/// [any-thread] `on_http_writable` (ABI 1.2): wakes the [`ResponseStream`](crate::ResponseStream)
/// of request `id`, whichever thread waits on it.
unsafe extern "C" fn on_http_writable<T: Sink>(instance: *mut c_void, id: u64) {
    // SAFETY: the host passes what create returned.
    let Some(inst) = (unsafe { self::instance::<T>(instance) }) else {
        return;
    };
    let _ = panic::catch(|| inst.host().writable(id));
}

/// [any-thread] `metrics`.
unsafe extern "C" fn metrics<T: Sink>(instance: *mut c_void, out: *mut abi::Buf) -> abi::Status {
    if out.is_null() {
        return abi::STATUS_ERR_FAILED;
    }
    // SAFETY: non-null out-parameter, writable (the header). Empty until we have text.
    unsafe { out.write(abi::Buf::EMPTY) };
    // SAFETY: the host passes what create returned.
    let Some(inst) = (unsafe { self::instance::<T>(instance) }) else {
        return abi::STATUS_ERR_FAILED;
    };
    if inst.is_poisoned() {
        return abi::STATUS_ERR_FAILED;
    }
    let Some(sink) = inst.healthy() else {
        return abi::STATUS_OK; // not started: no metrics yet
    };
    let _scope = log::enter(inst.host());
    match panic::catch(|| sink.metrics()) {
        Ok(text) => {
            // SAFETY: as above; the host frees it with free_buf.
            unsafe { out.write(buf::into_buf(text.into_bytes())) };
            abi::STATUS_OK
        }
        Err(p) => {
            inst.poison("metrics", &p);
            abi::STATUS_ERR_PANIC
        }
    }
}

/// [control] `stop`.
unsafe extern "C" fn stop<T: Sink>(instance: *mut c_void) {
    // SAFETY: the host passes what create returned.
    let Some(inst) = (unsafe { self::instance::<T>(instance) }) else {
        return;
    };
    let _scope = log::enter(inst.host());
    if let Err(p) = panic::catch(|| inst.stop()) {
        inst.poison("stop", &p);
    }
}

/// [control] `destroy`: stops if needed, drops the sink, shuts its runtime down, and forgets
/// the host (later calls through a leftover `Responder` or `RetainedFrame` do nothing).
unsafe extern "C" fn destroy<T: Sink>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in create; the host destroys it once, with no other call
    // running on it.
    let inst = unsafe { Box::from_raw(instance.cast::<Instance<T>>()) };
    let host = inst.host().clone();
    {
        let _scope = log::enter(&host);
        let panics = panic::catch(move || inst.teardown()).unwrap_or_else(|p| vec![("destroy", p)]);
        for (step, p) in panics {
            host.log(
                Level::ERROR,
                T::NAME,
                &format!("the sink panicked in {step} during destroy: {p}"),
            );
        }
    }
    log::unregister(&host);
    host.close();
}

/// [any-thread] `free_buf`: takes back a buffer this library handed out.
unsafe extern "C" fn free_buf(b: abi::Buf) {
    // SAFETY: the header: only buffers this plugin allocated come back, once each.
    let _ = panic::catch(|| unsafe { buf::free(b) });
}
