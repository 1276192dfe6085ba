//! Retention: which recordings to delete, oldest first, and deleting them.
//!
//! Only regular files whose name is the recorder's own (`recording_YYYYMMDD_HHMMSS[_N].ext`)
//! in its own directory, with one link and on the directory's file system, are ever considered, and never the file being written. Rules, each
//! optional: `max_age` (by last modification: a recording is kept that long after it ended),
//! `max_total_bytes` (all recordings together, the current one included, though it is never
//! deleted), `min_free_bytes` (free space of the file system, from `statvfs`). The order is the
//! time in the name, then the collision suffix.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::names::{Kind, RecordingName};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Delete recordings last modified longer ago than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest while the total exceeds this.
    pub max_total_bytes: Option<u64>,
    /// Delete the oldest while the disk has less free space than this.
    pub min_free_bytes: Option<u64>,
}

impl Policy {
    /// Whether any rule is set.
    pub fn is_active(&self) -> bool {
        self.max_age.is_some() || self.max_total_bytes.is_some() || self.min_free_bytes.is_some()
    }
}

/// A recording on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its parsed name.
    pub name: RecordingName,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub modified: SystemTime,
}

/// Why a recording is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Older than `max_age`.
    MaxAge,
    /// The recordings exceed `max_total_bytes`.
    MaxTotalBytes,
    /// The disk has less than `min_free_bytes` free.
    MinFreeBytes,
}

impl Reason {
    /// The config key behind it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxAge => "max_age",
            Self::MaxTotalBytes => "max_total_bytes",
            Self::MinFreeBytes => "min_free_bytes",
        }
    }
}

/// Whether a file the directory `dir_dev` lists (with this metadata, not following a symlink)
/// can be one the recorder wrote: a regular file, with one link, on the directory's own file
/// system. A recorder-style name is not enough: a symlink, a hard link to a file elsewhere (say
/// `/etc/passwd`) or a file mounted over the name would otherwise be listed, served and
/// deleted as a recording.
pub fn is_own_file(meta: &Metadata, dir_dev: u64) -> bool {
    meta.file_type().is_file() && meta.nlink() == 1 && meta.dev() == dir_dev
}

/// The recordings (`recording_...`) in `dir` (own names, own files: [`is_own_file`]),
/// oldest first.
pub fn list(dir: &Path) -> std::io::Result<Vec<Entry>> {
    list_kind(dir, Some(Kind::Recording))
}

/// The recorder's media files in `dir` of `kind` (all kinds: `None`), oldest first.
pub fn list_kind(dir: &Path, kind: Option<Kind>) -> std::io::Result<Vec<Entry>> {
    let dir_dev = std::fs::metadata(dir)?.dev();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Some(name) = entry.file_name().to_str().and_then(RecordingName::parse) else {
            continue;
        };
        if kind.is_some_and(|k| k != name.kind) {
            continue;
        }
        // `DirEntry::metadata` does not follow symlinks: a link is not a regular file.
        let Ok(meta) = entry.metadata() else { continue };
        if !is_own_file(&meta, dir_dev) {
            continue;
        }
        out.push(Entry {
            name,
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    out.sort_by(|a, b| a.name.chronological(&b.name));
    Ok(out)
}

/// What to delete among `entries` (oldest first, the current file excluded), given the
/// current file's size, the time `now` and the disk's free bytes.
pub fn plan(
    entries: &[Entry],
    current_size: u64,
    now: SystemTime,
    free_bytes: Option<u64>,
    policy: &Policy,
) -> Vec<(Entry, Reason)> {
    let mut total: u64 = entries.iter().map(|e| e.size).sum::<u64>() + current_size;
    let mut free = free_bytes;
    let mut out = Vec::new();
    for e in entries {
        let too_old = policy
            .max_age
            .is_some_and(|max| now.duration_since(e.modified).is_ok_and(|age| age > max));
        let too_big = policy.max_total_bytes.is_some_and(|max| total > max);
        let too_full = match (policy.min_free_bytes, free) {
            (Some(min), Some(free)) => free < min,
            _ => false,
        };
        let reason = if too_old {
            Reason::MaxAge
        } else if too_big {
            Reason::MaxTotalBytes
        } else if too_full {
            Reason::MinFreeBytes
        } else if policy.max_age.is_some() {
            // Oldest first: a younger file further on may still be too old by mtime (a file
            // touched out of order), so keep looking only for age.
            continue;
        } else {
            break;
        };
        total -= e.size;
        free = free.map(|f| f + e.size);
        out.push((e.clone(), reason));
    }
    out
}

/// Bytes free for an unprivileged writer on the file system of `dir`.
#[allow(clippy::useless_conversion)] // The statvfs fields are u32 or u64 depending on the target.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
}

/// A deletion done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// File name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Why.
    pub reason: Reason,
}

/// Applies `policy` to `dir`, sparing `current`; logs every deletion. Failures to list or
/// delete are logged and skipped: retention never stops recording.
pub fn apply(dir: &Path, current: Option<&str>, policy: &Policy) -> Vec<Deleted> {
    if !policy.is_active() {
        return Vec::new();
    }
    let entries = match list_kind(dir, None) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "retention: cannot list");
            return Vec::new();
        }
    };
    let (current_entries, others): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| Some(e.name.file_name().as_str()) == current);
    let current_size = current_entries.iter().map(|e| e.size).sum();
    let free = policy.min_free_bytes.and_then(|_| free_bytes(dir));
    let mut done = Vec::new();
    for (entry, reason) in plan(&others, current_size, SystemTime::now(), free, policy) {
        let name = entry.name.file_name();
        match std::fs::remove_file(dir.join(&name)) {
            Ok(()) => {
                if entry.name.kind == Kind::Event {
                    remove_companions(dir, &entry.name);
                }
                tracing::info!(file = %name, size = entry.size, reason = reason.as_str(), "retention: deleted recording");
                done.push(Deleted {
                    name,
                    size: entry.size,
                    reason,
                });
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "retention: cannot delete recording");
            }
        }
    }
    done
}

/// Extensions of the files that go with an event clip: its sidecar and its thumbnail.
pub const COMPANIONS: [&str; 2] = ["json", "jpg"];

/// Deletes an event clip's sidecar and thumbnail (own regular files only: a symlink or hard
/// link planted under such a name is left alone).
pub fn remove_companions(dir: &Path, clip: &RecordingName) {
    let Ok(dir_dev) = std::fs::metadata(dir).map(|m| m.dev()) else {
        return;
    };
    for ext in COMPANIONS {
        let path = dir.join(format!("{}.{ext}", clip.stem()));
        if std::fs::symlink_metadata(&path).is_ok_and(|m| is_own_file(&m, dir_dev)) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn entry(stamp: &str, size: u64, age: Duration, now: SystemTime) -> Entry {
        Entry {
            name: RecordingName::parse(&format!("recording_{stamp}.mp4")).expect("name"),
            size,
            modified: now - age,
        }
    }

    #[test]
    fn age_size_and_free_space_delete_the_oldest_first() {
        let now = SystemTime::now();
        let entries = [
            entry("20250101_000000", 100, 5 * HOUR, now),
            entry("20250101_010000", 100, 4 * HOUR, now),
            entry("20250101_020000", 100, 3 * HOUR, now),
            entry("20250101_030000", 100, 2 * HOUR, now),
        ];
        let names = |plan: Vec<(Entry, Reason)>| -> Vec<(String, Reason)> {
            plan.into_iter().map(|(e, r)| (e.name.stamp, r)).collect()
        };
        let by_age = Policy {
            max_age: Some(Duration::from_secs(3 * 3600 + 1800)),
            ..Policy::default()
        };
        assert_eq!(
            names(plan(&entries, 0, now, None, &by_age)),
            [
                ("20250101_000000".to_owned(), Reason::MaxAge),
                ("20250101_010000".to_owned(), Reason::MaxAge)
            ]
        );
        // 400 + 50 (current) > 260: delete the oldest until at most 260 remain: 2 files.
        let by_size = Policy {
            max_total_bytes: Some(260),
            ..Policy::default()
        };
        assert_eq!(plan(&entries, 50, now, None, &by_size).len(), 2);
        let by_free = Policy {
            min_free_bytes: Some(1000),
            ..Policy::default()
        };
        let p = names(plan(&entries, 0, now, Some(850), &by_free));
        assert_eq!(
            p,
            [
                ("20250101_000000".to_owned(), Reason::MinFreeBytes),
                ("20250101_010000".to_owned(), Reason::MinFreeBytes)
            ]
        );
        assert!(plan(&entries, 0, now, Some(5000), &by_free).is_empty());
    }

    #[test]
    fn only_own_regular_files_are_listed_and_deleted_and_never_the_current_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let old = SystemTime::now() - 48 * HOUR;
        for name in [
            "recording_20200101_000000.mp4",
            "recording_20200101_000001.h264",
            "recording_20200101_000002.mp4",
            "notes.txt",
            "recording_20200101_000003.mp4.bak",
        ] {
            let f = std::fs::File::create(d.join(name)).expect("create");
            f.set_modified(old).expect("mtime");
        }
        std::fs::create_dir(d.join("recording_20200101_000004.mp4")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/hostname", d.join("recording_20200101_000005.mp4"))
            .expect("symlink");
        let listed: Vec<String> = list(d)
            .expect("list")
            .iter()
            .map(|e| e.name.file_name())
            .collect();
        assert_eq!(
            listed,
            [
                "recording_20200101_000000.mp4",
                "recording_20200101_000001.h264",
                "recording_20200101_000002.mp4"
            ]
        );
        let policy = Policy {
            max_age: Some(HOUR),
            ..Policy::default()
        };
        let deleted = apply(d, Some("recording_20200101_000002.mp4"), &policy);
        assert_eq!(deleted.len(), 2);
        for kept in [
            "recording_20200101_000002.mp4",
            "notes.txt",
            "recording_20200101_000003.mp4.bak",
            "recording_20200101_000004.mp4",
            "recording_20200101_000005.mp4",
        ] {
            assert!(
                d.join(kept).symlink_metadata().is_ok(),
                "{kept} was deleted"
            );
        }
        assert!(std::path::Path::new("/etc/hostname").exists());
    }

    #[test]
    fn an_event_clip_goes_with_its_sidecar_and_thumbnail_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for (name, size) in [
            ("event_20200101_000000.mp4", 100),
            ("event_20200101_000000.json", 10),
            ("event_20200101_000000.jpg", 10),
            ("event_20200101_000100.mp4", 100),
            ("event_20200101_000100.json", 10),
            ("recording_20200101_000200.mp4", 100),
        ] {
            std::fs::write(d.join(name), vec![0u8; size]).expect("write");
        }
        assert_eq!(list(d).expect("list").len(), 1, "recordings only");
        assert_eq!(list_kind(d, Some(Kind::Event)).expect("list").len(), 2);
        let policy = Policy {
            max_total_bytes: Some(250),
            ..Policy::default()
        };
        let deleted = apply(d, None, &policy);
        let names: Vec<&str> = deleted.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["event_20200101_000000.mp4"]);
        for gone in [
            "event_20200101_000000.mp4",
            "event_20200101_000000.json",
            "event_20200101_000000.jpg",
        ] {
            assert!(!d.join(gone).exists(), "{gone} kept");
        }
        for kept in ["event_20200101_000100.mp4", "event_20200101_000100.json"] {
            assert!(d.join(kept).exists(), "{kept} deleted");
        }
    }

    #[test]
    fn free_space_is_known() {
        assert!(free_bytes(Path::new("/")).is_some());
        assert!(free_bytes(Path::new("/nonexistent/x")).is_none());
    }
}
