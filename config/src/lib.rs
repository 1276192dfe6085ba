//! stackctl configuration (being written).
