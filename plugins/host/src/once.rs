//! Warnings given once per plugin and kind: a plugin that gets something wrong on every request
//! or every scrape is said so once, not thousands of times.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

/// True the first time `plugin` and `kind` are seen together in this process (the caller then
/// logs), false after.
pub(crate) fn first_time(plugin: &str, kind: &'static str) -> bool {
    static SEEN: OnceLock<Mutex<HashSet<(String, &'static str)>>> = OnceLock::new();
    SEEN.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert((plugin.to_owned(), kind))
}

#[cfg(test)]
mod tests {
    #[test]
    fn once_per_plugin_and_kind() {
        assert!(super::first_time("once-a", "framing"));
        assert!(!super::first_time("once-a", "framing"));
        assert!(super::first_time("once-a", "metrics"));
        assert!(super::first_time("once-b", "framing"));
    }
}
