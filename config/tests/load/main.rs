//! `stackctl_config::load` through its public API: layers, interpolation, errors, provenance.
#![allow(missing_docs)]
// Helpers outside `#[test]` functions panic on purpose, as tests do.
#![allow(clippy::unwrap_used)]

mod alias;
mod errors;
mod explain;
mod interpolation;
mod plugins;
mod precedence;
mod robustness;

use std::path::PathBuf;

use stackctl_config::{Loaded, Sources, load};
use tempfile::TempDir;

/// The legacy script's services as a configuration file.
pub const LEGACY: &str = include_str!("../fixtures/legacy.toml");

/// Adds something to sources (a layer, in the precedence tables).
pub type Edit<'a> = &'a dyn Fn(&mut Sources);

/// Sources with no file search, no environment, no flags, for a non-root user.
pub fn sources() -> Sources {
    let mut s = Sources::new(1000);
    s.search.clear();
    s
}

/// A configuration file in a temporary directory (kept alive by the returned guard).
pub struct File {
    _dir: TempDir,
    pub path: PathBuf,
}

impl File {
    /// `from PATH line N`: the origin of the value on the first line of `text` (this file's
    /// contents) that contains `needle`.
    pub fn origin_at(&self, text: &str, needle: &str) -> String {
        format!(
            "from {} line {}",
            self.path.display(),
            line_of(text, needle)
        )
    }
}

pub fn file(text: &str) -> File {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stackctl.toml");
    std::fs::write(&path, text).unwrap();
    File { _dir: dir, path }
}

/// Sources reading `file`.
pub fn sources_with(file: &File) -> Sources {
    let mut s = sources();
    s.file = Some(file.path.clone());
    s
}

pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn ok(sources: &Sources) -> Loaded {
    match load(sources) {
        Ok(loaded) => loaded,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

/// The error lines.
pub fn errors(sources: &Sources) -> Vec<String> {
    match load(sources) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

/// The 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}
