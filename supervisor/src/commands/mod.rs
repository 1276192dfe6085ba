//! One module per subcommand.

pub mod shm_inspect;
pub mod shm_tap;
pub mod up;
