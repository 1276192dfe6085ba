//! `sink-webrtc`: stackctl's streaming sink (work in progress).
