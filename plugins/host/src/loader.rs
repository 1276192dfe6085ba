//! Finding a plugin's file, loading it, and refusing it cleanly when it does not speak our ABI.
//!
//! A loaded library is never unloaded: a Rust cdylib's thread-local destructors crash after
//! `dlclose` (rust #59629), so the handle is leaked on purpose and the table it returns is
//! `'static`.
#![allow(unsafe_code)] // dlopen/dlsym and the call of the entry point.

use std::path::{Path, PathBuf};

use stackctl_plugin_abi as abi;

/// Why a plugin could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No file of that name in any plugin directory.
    #[error("plugin {name}: no file {file} (looked in {searched})")]
    NotFound {
        /// The plugin's name in the configuration.
        name: String,
        /// The configured path.
        file: String,
        /// The directories searched.
        searched: String,
    },
    /// The dynamic loader refused it.
    #[error("plugin {name}: cannot load {path}: {source}")]
    Library {
        /// The plugin's name in the configuration.
        name: String,
        /// The file.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },
    /// It is not a stackctl sink, or speaks another ABI.
    #[error("plugin {name} ({path}): {reason}")]
    Incompatible {
        /// The plugin's name in the configuration.
        name: String,
        /// The file.
        path: PathBuf,
        /// What is wrong, with its ABI and ours.
        reason: String,
    },
}

/// A plugin library, loaded for good, its table checked.
#[derive(Debug, Clone, Copy)]
pub struct Library {
    /// Its table.
    pub(crate) table: &'static abi::Sink,
}

impl Library {
    /// The name the plugin gives itself.
    pub fn name(&self) -> String {
        str_of(self.table.name)
    }

    /// The plugin's own version.
    pub fn version(&self) -> String {
        str_of(self.table.version)
    }

    /// The sink ABI it was built for: (major, minor).
    pub fn abi(&self) -> (u16, u16) {
        (self.table.abi_major, self.table.abi_minor)
    }

    /// The path prefixes it declares.
    pub fn routes(&self) -> Vec<String> {
        routes(self.table)
    }

    /// Whether it wants the detector's results (ABI 1.1 `on_detections`, non-NULL).
    pub fn wants_detections(&self) -> bool {
        self.table.on_detections.is_some()
    }
}

/// Where a plugin file named `file` is looked for, in order.
pub fn search_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        dirs.push(dir);
    }
    dirs.push(PathBuf::from("/usr/lib/stackctl/plugins"));
    dirs.extend(extra.iter().cloned());
    dirs
}

/// Resolves a configured `path`: absolute (or with a directory) as is, a bare file name in the
/// plugin directories.
pub fn resolve(name: &str, file: &str, dirs: &[PathBuf]) -> Result<PathBuf, LoadError> {
    let path = Path::new(file);
    if path.components().count() > 1 {
        return if path.exists() {
            Ok(path.to_owned())
        } else {
            Err(LoadError::NotFound {
                name: name.into(),
                file: file.into(),
                searched: "its own path".into(),
            })
        };
    }
    dirs.iter()
        .map(|d| d.join(path))
        .find(|p| p.exists())
        .ok_or_else(|| LoadError::NotFound {
            name: name.into(),
            file: file.into(),
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Loads the library at `path` and checks its table.
pub fn load(name: &str, path: &Path) -> Result<Library, LoadError> {
    let incompatible = |reason: String| LoadError::Incompatible {
        name: name.into(),
        path: path.into(),
        reason,
    };
    // SAFETY: loading a library runs its initialisers; a plugin is trusted code the operator
    // named in the configuration, which is the contract of any plugin system.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|source| LoadError::Library {
        name: name.into(),
        path: path.into(),
        source,
    })?;
    // Never unloaded (see the module docs).
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // SAFETY: the symbol's type is the ABI's entry point type; a library exporting this name
    // with another type is not a stackctl sink and violates the header's contract.
    let entry = unsafe { lib.get::<abi::EntryFn>(abi::ENTRY_SYMBOL.as_bytes()) }.map_err(|e| {
        incompatible(format!(
            "not a stackctl sink: no {} symbol ({e})",
            abi::ENTRY_SYMBOL
        ))
    })?;
    // SAFETY: the entry point takes no arguments and returns a pointer to a static table.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(incompatible(format!(
            "{} returned no table",
            abi::ENTRY_SYMBOL
        )));
    }
    // Read the prefix every version shares before trusting the rest.
    // SAFETY: every ABI version's table starts with magic, major, minor and size (the header's
    // stability rule); the pointer is non-null and points into the library's static data.
    let (magic, major, minor, size) = unsafe {
        let prefix = table.cast::<u8>();
        (
            prefix.cast::<u32>().read_unaligned(),
            prefix.add(4).cast::<u16>().read_unaligned(),
            prefix.add(6).cast::<u16>().read_unaligned(),
            prefix.add(8).cast::<u32>().read_unaligned(),
        )
    };
    if magic != abi::MAGIC {
        return Err(incompatible(format!(
            "not a stackctl sink (magic {magic:#x}, expected {:#x})",
            abi::MAGIC
        )));
    }
    let ours = format!("{}.{}", abi::ABI_MAJOR, abi::ABI_MINOR);
    if major != abi::ABI_MAJOR {
        return Err(incompatible(format!(
            "built for sink ABI {major}.{minor}, this stackctl speaks {ours}"
        )));
    }
    if (size as usize) < abi::SINK_V1_0_SIZE {
        return Err(incompatible(format!(
            "its table is {size} bytes, smaller than ABI 1.0's {} (a damaged or foreign plugin)",
            abi::SINK_V1_0_SIZE
        )));
    }
    for (field, offset) in abi::SINK_FN_OFFSETS {
        // SAFETY: `offset` lies inside the first SINK_V1_0_SIZE bytes, which the plugin's
        // struct_size says it provides; read as a raw pointer so a null is not yet a `fn`.
        let slot = unsafe {
            table
                .cast::<u8>()
                .add(offset)
                .cast::<*const ()>()
                .read_unaligned()
        };
        if slot.is_null() {
            return Err(incompatible(format!(
                "its table has no `{field}` function (NULL)"
            )));
        }
    }
    // A 1.0 table ends before `on_detections`: copy the part the plugin has (at most our own
    // size; a later minor's extra fields are not ours to read) into a table of our layout whose
    // missing fields are zero, i.e. NULL optional functions.
    let have = (size as usize).min(std::mem::size_of::<abi::Sink>());
    // SAFETY: the plugin's table is at least `have` readable bytes (its struct_size, checked to
    // cover ABI 1.0 above); the copy is a `stackctl_sink` whose required function pointers were
    // checked non-null and whose optional ones are either the plugin's or zero (`None`).
    let copy = unsafe {
        let mut out = std::mem::MaybeUninit::<abi::Sink>::zeroed();
        std::ptr::copy_nonoverlapping(table.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), have);
        out.assume_init()
    };
    // Leaked like the library: one small table per loaded plugin, for the life of the process.
    let table: &'static abi::Sink = Box::leak(Box::new(copy));
    Ok(Library { table })
}

/// Reads a string from a plugin's table (lossily, since the plugin may be buggy).
pub(crate) fn str_of(s: abi::Str) -> String {
    if s.ptr.is_null() || s.len == 0 {
        return String::new();
    }
    // SAFETY: the header promises `len` readable bytes at `ptr` for strings in the static table.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// The routes a table declares.
pub(crate) fn routes(table: &abi::Sink) -> Vec<String> {
    if table.routes.is_null() {
        return Vec::new();
    }
    // SAFETY: `routes` points to `route_count` static `stackctl_str`s (header contract).
    let routes = unsafe { std::slice::from_raw_parts(table.routes, table.route_count) };
    routes
        .iter()
        .map(|r| str_of(*r))
        .filter(|r| r.starts_with('/'))
        .collect()
}
