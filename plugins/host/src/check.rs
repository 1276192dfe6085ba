//! What `stackctl check` asks of a plugin: that it accept its configuration. The library is
//! loaded, an instance created with the section's keys and destroyed at once; it is never
//! started, so it opens no port and writes no file a running stack may hold.
#![allow(unsafe_code)] // `create` and `destroy` through the plugin's table.

use std::sync::Arc;

use stackctl_plugin_abi as abi;

use crate::callbacks::{HostCtx, table};
use crate::loader::Library;
use crate::plugin::{StartError, or_status, take_buf};

/// Creates an instance of `lib` named `name` with its `config` (TOML text), then destroys it:
/// `Err` with the plugin's own message when `create` refuses.
pub fn create_and_destroy(name: &str, lib: Library, config: &str) -> Result<(), StartError> {
    let t = lib.table;
    let ctx = Arc::new(HostCtx::new(name));
    let host = Box::new(table(&ctx));
    let mut instance = std::ptr::null_mut();
    let mut error = abi::Buf::EMPTY;
    // SAFETY: `host` and `ctx` outlive the instance (destroyed below, before they drop);
    // `config` lives for the call; the out-pointers are valid.
    let status = unsafe { (t.create)(&*host, abi::Str::new(config), &mut instance, &mut error) };
    let message = take_buf(t, error);
    if status == abi::STATUS_OK && !instance.is_null() {
        // SAFETY: a live instance of this table, created above, never started, destroyed once.
        unsafe { (t.destroy)(instance) };
        return Ok(());
    }
    let (name, message) = (name.to_owned(), or_status(&message, status));
    Err(if status == abi::STATUS_ERR_CONFIG {
        StartError::Config { name, message }
    } else {
        StartError::Create { name, message }
    })
}
