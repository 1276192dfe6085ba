//! `--dump`: every published access unit, byte for byte, in order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A buffered Annex-B file that ends up equal to the concatenation of the published units.
#[derive(Debug)]
pub struct Dump {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Dump {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create --dump {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, file),
        })
    }

    /// Appends one access unit.
    pub fn write(&mut self, au: &[u8]) -> Result<()> {
        self.out
            .write_all(au)
            .with_context(|| format!("cannot write --dump {}", self.path.display()))
    }

    /// Flushes everything to the file; call before exiting (a drop would swallow errors).
    pub fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write --dump {}", self.path.display()))
    }
}
