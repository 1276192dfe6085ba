//! Random numbers for session ids, nonces, SSRCs, and RTP's initial sequence numbers and
//! timestamps (RFC 3550 §5.1 wants them random).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Fills `out` from the system's random source. Should that ever fail, the time and a
/// counter still make values unique (not unguessable), and a warning says so.
pub fn fill(out: &mut [u8]) {
    if getrandom::getrandom(out).is_ok() {
        return;
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    tracing::warn!("no system randomness: session ids and nonces are predictable");
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    for chunk in out.chunks_mut(8) {
        let v = (t ^ NEXT.fetch_add(1, Relaxed).rotate_left(40)).to_be_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// A random `u32`.
pub fn u32() -> u32 {
    let mut b = [0u8; 4];
    fill(&mut b);
    u32::from_be_bytes(b)
}

/// A random session id: 16 hex digits.
pub fn session_id() -> String {
    let mut b = [0u8; 8];
    fill(&mut b);
    b.iter().map(|x| format!("{x:02X}")).collect()
}
