//! Exposes the target triple to the layout test, which compiles the board's C header with the
//! same compiler the cc crate would pick for this target.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=STACKCTL_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
