//! `clean_shm`: removing stale shared-memory segments before a service starts, so a segment left
//! by an earlier run never passes for a live one (a readiness probe would see it at once).

use std::io;
use std::path::Path;

/// Where Linux keeps POSIX shared memory.
const SHM_DIR: &str = "/dev/shm";

/// Removes every segment whose name (`/name`) matches one of `patterns` (`*` and `?` wildcards),
/// and returns the names removed.
pub fn clean(patterns: &[String]) -> io::Result<Vec<String>> {
    clean_in(Path::new(SHM_DIR), patterns)
}

fn clean_in(dir: &Path, patterns: &[String]) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    if patterns.is_empty() {
        return Ok(removed);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = format!("/{}", entry.file_name().to_string_lossy());
        if patterns
            .iter()
            .any(|p| glob(p.trim_start_matches('/'), &name[1..]))
        {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed.push(name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// Shell-style matching of `*` (any run) and `?` (any one character).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("pet_camera_*", "pet_camera_stream"));
        assert!(glob("pet_camera_*", "pet_camera_"));
        assert!(!glob("pet_camera_*", "pet_cam"));
        assert!(glob("a?c*", "abcdef"));
        assert!(glob("*stream", "pet_camera_stream"));
        assert!(!glob("*stream", "pet_camera_stream_day"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    #[test]
    fn removes_only_matching_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["pet_camera_stream", "pet_camera_active_frame", "other"] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let removed = clean_in(dir.path(), &["/pet_camera_*".to_owned()]).expect("clean");
        assert_eq!(removed, ["/pet_camera_active_frame", "/pet_camera_stream"]);
        assert!(dir.path().join("other").exists());
    }
}
