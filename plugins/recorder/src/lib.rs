//! `sink-recorder`: stackctl's recording sink (work in progress).
