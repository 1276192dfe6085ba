//! stackctl as a library: the plugin host, so that its benchmarks measure the real code. The
//! program itself is `src/main.rs`.

pub mod plugins;
