//! Argument parsers shared by `camsim` and `detector-sim` (the second includes this file with
//! `#[path]`: the crate has no library).

use std::time::Duration;

/// A shared-memory segment name: a leading slash is added if missing; no further slash, no
/// NUL, at most 250 bytes.
pub fn shm_name(text: &str) -> Result<String, String> {
    let bare = text.strip_prefix('/').unwrap_or(text);
    if bare.is_empty() || bare.contains('/') || bare.contains('\0') {
        return Err(
            "a segment name is a slash and a name without further slashes, e.g. \
             /pet_camera_stream"
                .to_owned(),
        );
    }
    if bare.len() > 250 {
        return Err("segment names are limited to 250 bytes".to_owned());
    }
    Ok(format!("/{bare}"))
}

/// A number of seconds, decimals allowed, between 0.01 and 1,000,000.
pub fn secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.01..=1e6).contains(&secs) {
        return Err("expected a number of seconds between 0.01 and 1000000".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}
