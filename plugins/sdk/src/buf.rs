//! Memory that crosses the boundary: plugin-owned buffers handed to the host (and taken back by
//! `free_buf`), and borrowed byte ranges read from the host's structs.
#![allow(unsafe_code)] // Splits a `Vec` into raw parts and rebuilds it; reads host pointers.

use std::mem::ManuallyDrop;

use stackctl_plugin_abi as abi;

/// Hands `bytes` to the host as a plugin-owned buffer; only [`free`] may release it.
pub(crate) fn into_buf(bytes: Vec<u8>) -> abi::Buf {
    if bytes.capacity() == 0 {
        return abi::Buf::EMPTY;
    }
    let mut bytes = ManuallyDrop::new(bytes);
    abi::Buf {
        ptr: bytes.as_mut_ptr(),
        len: bytes.len(),
        cap: bytes.capacity(),
    }
}

/// Frees a buffer made by [`into_buf`]. A null buffer is nothing to free.
///
/// # Safety
/// `buf` was returned by [`into_buf`] (in this library) and has not been freed yet.
pub(crate) unsafe fn free(buf: abi::Buf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: the caller promises these are the unchanged parts of a `Vec<u8>` that `into_buf`
    // leaked with `ManuallyDrop`, so rebuilding it gives the allocation back to its allocator.
    drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
}

/// Borrows `len` bytes at `ptr`; a null pointer (or zero length) is the empty slice.
///
/// # Safety
/// Unless null, `ptr` points to `len` initialized bytes that stay valid and unchanged for `'a`.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: non-null, and the caller promises `len` readable bytes living for `'a`.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// Reads a `stackctl_str` as text, replacing invalid UTF-8 (the host promises UTF-8).
///
/// # Safety
/// As for [`bytes`], with `s.ptr` and `s.len`.
pub(crate) unsafe fn string(s: abi::Str) -> String {
    // SAFETY: forwarded from the caller.
    String::from_utf8_lossy(unsafe { bytes(s.ptr, s.len) }).into_owned()
}

/// Fills the `error` out-parameter of a call with `message`, when the host passed one.
///
/// # Safety
/// `error` is null or valid for writing one `stackctl_buf`.
pub(crate) unsafe fn set_error(error: *mut abi::Buf, message: &str) {
    if error.is_null() {
        return;
    }
    // SAFETY: non-null, and the caller promises it is writable.
    unsafe { error.write(into_buf(message.as_bytes().to_vec())) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_round_trips_and_an_empty_one_is_null() {
        let buf = into_buf(b"hello".to_vec());
        // SAFETY: `into_buf` just made it.
        assert_eq!(unsafe { bytes(buf.ptr, buf.len) }, b"hello");
        // SAFETY: made by `into_buf`, freed once.
        unsafe { free(buf) };
        assert!(into_buf(Vec::new()).ptr.is_null());
        // SAFETY: null pointers are the documented empty case.
        unsafe { free(abi::Buf::EMPTY) };
        // SAFETY: as above.
        assert!(unsafe { bytes(std::ptr::null(), 5) }.is_empty());
    }
}
