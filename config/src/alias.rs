//! Old names of keys. A value set under an old name, in any layer, is merged under the new
//! name with its own origin, so the layers keep their precedence and `config --explain` says
//! where the value came from. Within one layer the new name wins over the old.

use crate::tree::{KeyPath, split_key};

/// `(old name, new name)`.
pub const ALIASES: &[(&str, &str)] = &[
    // The Go server's pprof port: profiling is a section of its own now.
    ("legacy.pprof_port", "profiling.port"),
];

/// The new name of `path`, when `path` is an old name.
pub(crate) fn target(path: &[String]) -> Option<KeyPath> {
    ALIASES
        .iter()
        .find(|(old, _)| split_key(old) == path)
        .map(|(_, new)| split_key(new))
}

/// Whether an old name lies under `path` (a table merged there must be merged key by key, so
/// that the old name is seen).
pub(crate) fn is_parent(path: &[String]) -> bool {
    ALIASES
        .iter()
        .any(|(old, _)| split_key(old).starts_with(path) && split_key(old).len() > path.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_names_map_to_new_ones() {
        let p = |s: &str| split_key(s);
        assert_eq!(target(&p("legacy.pprof_port")), Some(p("profiling.port")));
        assert_eq!(target(&p("profiling.port")), None);
        assert_eq!(target(&p("legacy")), None);
        assert!(is_parent(&p("legacy")));
        assert!(!is_parent(&p("legacy.pprof_port")));
        assert!(!is_parent(&p("profiling")));
    }
}
