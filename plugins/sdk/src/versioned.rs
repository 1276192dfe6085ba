//! Reading structs that the host may have grown: every host-provided struct that can grow starts
//! with its `struct_size`, and a field is read only when that size covers it.
//!
//! The pattern, for a field `new_field: T` appended to `stackctl_host` in some ABI 1.x:
//!
//! ```ignore
//! let value = if covers(host.struct_size, offset_of!(abi::Host, new_field) + size_of::<T>()) {
//!     Some(host.new_field)   // the host knows the field
//! } else {
//!     None                   // an older host: behave as 1.0 did
//! };
//! ```
//!
//! The constants below are where each struct ended in ABI 1.0: the SDK refuses a host whose
//! structs are shorter (it would be broken, not old), and reads nothing beyond them yet.

use std::mem::{offset_of, size_of};

use stackctl_plugin_abi as abi;

/// End of `stackctl_host`'s last 1.0 field (`frame_release`, a function pointer).
pub(crate) const HOST_V1_0: usize = offset_of!(abi::Host, frame_release) + size_of::<usize>();
/// End of `stackctl_host`'s last 1.1 field (`fail_reason`, a function pointer).
pub(crate) const HOST_V1_1: usize = offset_of!(abi::Host, fail_reason) + size_of::<usize>();
/// End of `stackctl_host`'s last 1.2 field (`http_respond_abort`, a function pointer).
pub(crate) const HOST_V1_2: usize = abi::HOST_V1_2_SIZE;
/// End of `stackctl_frame`'s last 1.0 field (`pps_len`).
pub(crate) const FRAME_V1_0: usize = offset_of!(abi::Frame, pps_len) + size_of::<usize>();
/// End of `stackctl_http_request`'s last 1.0 field (`body_len`).
pub(crate) const REQUEST_V1_0: usize = offset_of!(abi::HttpRequest, body_len) + size_of::<usize>();

/// Whether a struct that the other side says is `struct_size` bytes long holds every byte before
/// `end` (the end of the field to read).
pub(crate) const fn covers(struct_size: u32, end: usize) -> bool {
    struct_size as usize >= end
}

// The 1.0 ends lie inside the structs this crate was built with.
const _: () = assert!(HOST_V1_0 <= size_of::<abi::Host>());
const _: () = assert!(HOST_V1_1 <= size_of::<abi::Host>());
const _: () = assert!(HOST_V1_2 <= size_of::<abi::Host>());
const _: () = assert!(FRAME_V1_0 <= size_of::<abi::Frame>());
const _: () = assert!(REQUEST_V1_0 <= size_of::<abi::HttpRequest>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_abi_1_0_the_last_field_ends_each_struct() {
        if abi::ABI_MINOR == 2 {
            assert_eq!(HOST_V1_2, size_of::<abi::Host>());
        }
        if abi::ABI_MINOR == 0 {
            assert_eq!(HOST_V1_0, size_of::<abi::Host>());
            assert_eq!(FRAME_V1_0, size_of::<abi::Frame>());
            assert_eq!(REQUEST_V1_0, size_of::<abi::HttpRequest>());
        }
        assert!(covers(u32::MAX, FRAME_V1_0));
        assert!(!covers(8, FRAME_V1_0));
    }
}
