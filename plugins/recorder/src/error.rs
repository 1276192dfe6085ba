//! The recorder's errors: one clear message each, shown in `/status` and logged once.

use std::io;
use std::path::PathBuf;

/// Why recording stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The directory is missing and cannot be created (or is not a directory).
    #[error("cannot create the recording directory {}: {source}", dir.display())]
    CreateDir {
        /// The configured directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A new recording file cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Writing (or syncing) a recording failed; the file keeps what was written before.
    #[error("cannot write {}: {source}{}", path.display(), hint(source))]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Every collision suffix of a name is taken.
    #[error("no free file name for a recording in {}", dir.display())]
    NoName {
        /// The directory.
        dir: PathBuf,
    },
}

/// A word on the common cases.
fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => {
            " (disk full; recording stopped, the file is kept up to its last complete fragment, or \
             removed if no frame made it)"
        }
        Some(libc::EDQUOT) => " (quota exceeded; recording stopped)",
        Some(libc::EROFS) => " (read-only file system; recording stopped)",
        _ => "",
    }
}
