//! `stackctl shm`: look at the camera's shared memory from the outside.

pub mod inspect;
pub mod tap;
