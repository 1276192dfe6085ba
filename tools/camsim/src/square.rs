//! The orange square of the test pattern: the "cat" that `detector-sim` finds. Shared by both
//! binaries (`detector-sim` includes this file with `#[path]`: the crate has no library).

/// Its colour in BT.601 limited range (Y, U, V). Only the square has this chroma: the nearest
/// colour bar (yellow, U 44, V 142) is 51 away in V.
pub const COLOUR: (u8, u8, u8) = (146, 53, 193);
