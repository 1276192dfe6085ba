//! Exposes the target triple to `tests/layout.rs`, which compiles `include/stackctl_sink.h` with
//! the C compiler the cc crate picks for this target.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=STACKCTL_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
