//! What `stackctl check` asks of a plugin: that it accept its configuration. The library is
//! loaded, an instance created with the section's keys and destroyed at once; it is never
//! started, so it opens no port and writes no file a running stack may hold.
#![allow(unsafe_code)] // `create` and `destroy` through the plugin's table.

use crate::loader::Library;
use crate::plugin::{StartError, create};

/// Creates an instance of `lib` named `name` with its `config` (TOML text), then destroys it:
/// `Err` with the plugin's own message when `create` refuses.
pub fn create_and_destroy(name: &str, lib: Library, config: &str) -> Result<(), StartError> {
    let created = create(name, lib.table, config)?;
    // SAFETY: a live instance of this table, created above with the host table and context
    // `created` still holds, never started, destroyed once.
    unsafe { (lib.table.destroy)(created.instance) };
    Ok(())
}
