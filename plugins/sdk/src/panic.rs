//! Panics stop at the boundary: [`catch`] runs plugin code and turns a panic into a message
//! ("what at where") that the export functions report as `STACKCTL_ERR_PANIC` or log.
//!
//! A panic hook, installed once per library, records where each panic happened on its thread and
//! then runs the previous hook (the default one prints to stderr, as in any Rust program). Each
//! cdylib has its own panic hook: this one sees only the plugin's panics.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Where the latest panic on this thread happened.
    static LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

/// Installs the location-recording hook (once; later calls do nothing).
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info.location().map(ToString::to_string);
            let _ = LOCATION.try_with(|cell| cell.set(location));
            previous(info);
        }));
    });
}

/// Runs `f`; a panic comes back as its message instead of unwinding further.
///
/// The closure is treated as unwind-safe: after a panic the caller poisons the instance, so no
/// state the panic may have broken is used again.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(describe)
}

/// The panic's message, with its location when the hook saw it.
fn describe(payload: Box<dyn Any + Send>) -> String {
    let message = match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(payload) => {
                // Another type may run arbitrary code (even panic) when dropped: leak it.
                std::mem::forget(payload);
                "a panic with a non-string payload".to_owned()
            }
        },
    };
    match LOCATION.try_with(Cell::take).ok().flatten() {
        Some(location) => format!("{message} (at {location})"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_with_its_location() {
        install_hook();
        let caught = catch(|| -> u32 { panic!("boom {}", 7) });
        let message = caught.expect_err("it panicked");
        assert!(message.starts_with("boom 7 (at "), "{message}");
        assert!(message.contains("panic.rs"), "{message}");
        assert_eq!(catch(|| 5), Ok(5));
        let custom = catch(|| std::panic::panic_any(42_u8)).expect_err("it panicked");
        assert!(custom.starts_with("a panic with a non-string payload"));
    }
}
