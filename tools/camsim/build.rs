//! Says loudly when OpenH264 will be built without its assembly: on x86 it then encodes about
//! three times slower (1080p at ~22 frames/s instead of ~65 on one core), and camsim falls back
//! to a pre-encoded loop at the demo's size (`--encode auto`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OPENH264_NO_ASM");
    println!("cargo:rerun-if-env-changed=PATH");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" && arch != "x86" {
        return;
    }
    let why = if std::env::var_os("OPENH264_NO_ASM").is_some() {
        Some("OPENH264_NO_ASM is set")
    } else if Command::new("nasm").arg("-v").output().is_err() {
        Some("nasm is not installed")
    } else {
        None
    };
    if let Some(why) = why {
        println!(
            "cargo:warning={why}: OpenH264 is built without its x86 assembly and encodes about \
             3x slower; camsim then replays a pre-encoded loop at large sizes. Install nasm \
             (apt-get install nasm) and rebuild openh264-sys2 (cargo clean -p openh264-sys2)."
        );
    }
}
