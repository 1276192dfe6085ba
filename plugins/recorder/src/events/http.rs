//! Events mode's routes:
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /events` | `{"events":[sidecar + size, video, thumbnail, recording], "next_cursor"}`, newest first; `?class=`, `?since=`, `?until=`, `?limit=`, `?cursor=` |
//! | `GET /events/<id>` | the clip's sidecar |
//! | `GET /events/<id>.mp4` (or `.h264`) | the clip, streamed as `/recordings/<name>` streams recordings (ranges) |
//! | `GET /events/<id>.jpg` | its thumbnail |
//!
//! Only the recorder's own files are reachable: an id must be an event clip's name exactly
//! (`names.rs`), and files are opened with `O_NOFOLLOW` and checked to be regular files with
//! one link on the directory's file system, as recordings are.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::http::{Answer, Control, Served};
use crate::names::{Kind, RecordingName};
use crate::retention;

/// Clips per page by default.
pub const DEFAULT_LIMIT: usize = 50;
/// Most clips per page.
pub const MAX_LIMIT: usize = 500;
/// Largest sidecar or thumbnail read (they are a few KiB).
pub const MAX_COMPANION_BYTES: u64 = 4 << 20;

/// Answers a request under `/events` (`query` without the `?`); `prefix` is the `route_prefix` the
/// host serves the recorder behind ("" for none), put in front of the links it lists.
pub fn handle(
    ctl: &impl Control,
    method: &str,
    path: &str,
    query: &str,
    range: Option<&str>,
    prefix: &str,
) -> Served {
    if method != "GET" {
        let mut a = Answer::error(405, "method not allowed: use GET");
        a.headers.push(("allow", "GET".to_owned()));
        return a.into();
    }
    match path {
        "/events" | "/events/" => list(ctl, query, prefix).into(),
        _ => match path.strip_prefix("/events/") {
            Some(rest) => item(ctl, rest, range),
            None => Answer::error(404, &format!("no route {path}")).into(),
        },
    }
}

fn item(ctl: &impl Control, rest: &str, range: Option<&str>) -> Served {
    let not_found = || Served::Answer(Answer::error(404, "no such event"));
    let (id, ext) = match rest.rsplit_once('.') {
        Some((id, ext)) => (id, Some(ext)),
        None => (rest, None),
    };
    // The id must name an event clip exactly; its file decides the format.
    let Some(clip) = [crate::config::Format::Mp4, crate::config::Format::H264]
        .into_iter()
        .filter_map(|f| RecordingName::parse(&format!("{id}.{}", f.extension())))
        .filter(|n| n.kind == Kind::Event)
        .find(|n| own_file(ctl.dir(), &n.file_name()).is_some())
    else {
        return not_found();
    };
    match ext {
        None => match read_companion(ctl.dir(), &format!("{id}.json")) {
            Some(bytes) => Served::Answer(Answer {
                status: 200,
                headers: vec![("content-type", "application/json".to_owned())],
                body: bytes,
            }),
            None => not_found(),
        },
        Some("jpg") => match read_companion(ctl.dir(), &format!("{id}.jpg")) {
            Some(bytes) => Served::Answer(Answer {
                status: 200,
                headers: vec![("content-type", "image/jpeg".to_owned())],
                body: bytes,
            }),
            None => not_found(),
        },
        Some(e) if e == clip.format.extension() => {
            crate::http::download(ctl, &clip.file_name(), range)
        }
        Some(_) => not_found(),
    }
}

/// The size of `dir/name` if it is one of the recorder's own files.
fn own_file(dir: &Path, name: &str) -> Option<u64> {
    let dir_dev = std::fs::metadata(dir).ok()?.dev();
    let meta = std::fs::symlink_metadata(dir.join(name)).ok()?;
    retention::is_own_file(&meta, dir_dev).then_some(meta.len())
}

/// Reads a sidecar or thumbnail: no symlink, own file, bounded.
fn read_companion(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let dir_dev = std::fs::metadata(dir).ok()?.dev();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(dir.join(name))
        .ok()?;
    let meta = file.metadata().ok()?;
    if !retention::is_own_file(&meta, dir_dev) || meta.len() > MAX_COMPANION_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_COMPANION_BYTES).read_to_end(&mut out).ok()?;
    Some(out)
}

/// The listing's filters, from the query string.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// Only clips with this class.
    pub class: Option<String>,
    /// Only clips started at or after this.
    pub since: Option<Timestamp>,
    /// Only clips started before this.
    pub until: Option<Timestamp>,
    /// Page size.
    pub limit: usize,
    /// Only clips older than this id (the previous page's `next_cursor`).
    pub cursor: Option<RecordingName>,
}

/// Parses `class=cat&since=...&until=...&limit=20&cursor=event_...`; the error names the
/// parameter.
pub fn parse_query(query: &str) -> Result<Query, String> {
    let mut q = Query {
        limit: DEFAULT_LIMIT,
        ..Query::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(raw).ok_or_else(|| format!("{key}: bad percent-encoding"))?;
        match key {
            "class" => q.class = Some(value),
            "since" => q.since = Some(parse_time(&value).map_err(|e| format!("since: {e}"))?),
            "until" => q.until = Some(parse_time(&value).map_err(|e| format!("until: {e}"))?),
            "limit" => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("limit: {value:?} is not a number from 1 to {MAX_LIMIT}")
                    })?;
            }
            "cursor" => {
                q.cursor = Some(
                    RecordingName::parse(&format!("{value}.mp4"))
                        .filter(|n| n.kind == Kind::Event)
                        .ok_or_else(|| format!("cursor: {value:?} is not an event id"))?,
                );
            }
            _ => {}
        }
    }
    Ok(q)
}

/// RFC 3339 (`2026-01-02T03:04:05+01:00`, `...Z`) or Unix seconds.
fn parse_time(text: &str) -> Result<Timestamp, String> {
    // A `+` in a query is a space unless percent-encoded: take it back.
    let text = text.trim().replace(' ', "+");
    if let Ok(secs) = text.parse::<i64>() {
        return Timestamp::from_second(secs).map_err(|e| e.to_string());
    }
    text.parse::<Timestamp>()
        .map_err(|_| format!("{text:?} is neither RFC 3339 nor Unix seconds"))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The start time a clip's name says.
fn start_of(name: &RecordingName) -> Option<Timestamp> {
    let civil = DateTime::strptime("%Y%m%d_%H%M%S", &name.stamp).ok()?;
    Some(civil.to_zoned(TimeZone::system()).ok()?.timestamp())
}

fn list(ctl: &impl Control, query: &str, prefix: &str) -> Answer {
    let q = match parse_query(query) {
        Ok(q) => q,
        Err(e) => return Answer::error(400, &e),
    };
    let entries = match retention::list_kind(ctl.dir(), Some(Kind::Event)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Answer::error(500, &format!("cannot list {}: {e}", ctl.dir().display())),
    };
    let status = ctl.shared().snapshot();
    let mut out = Vec::new();
    let mut next_cursor = None;
    for e in entries.iter().rev() {
        if q.cursor
            .as_ref()
            .is_some_and(|c| e.name.chronological(c) != std::cmp::Ordering::Less)
        {
            continue;
        }
        let start = start_of(&e.name);
        if q.since.is_some_and(|s| start.is_none_or(|t| t < s))
            || q.until.is_some_and(|u| start.is_none_or(|t| t >= u))
        {
            continue;
        }
        let id = e.name.stem();
        let mut v: Value = read_companion(ctl.dir(), &format!("{id}.json"))
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({ "id": id, "file": e.name.file_name(), "complete": false }));
        if let Some(class) = &q.class {
            let has = v["classes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c.as_str() == Some(class)));
            if !has {
                continue;
            }
        }
        if out.len() == q.limit {
            next_cursor = out
                .last()
                .and_then(|l: &Value| l["id"].as_str().map(str::to_owned));
            break;
        }
        let file = e.name.file_name();
        v["id"] = json!(id);
        v["size"] = json!(e.size);
        v["recording"] = json!(status.recording && status.filename == file);
        v["video"] = json!(format!(
            "{prefix}/events/{id}.{}",
            e.name.format.extension()
        ));
        v["thumbnail_url"] = if own_file(ctl.dir(), &format!("{id}.jpg")).is_some() {
            json!(format!("{prefix}/events/{id}.jpg"))
        } else {
            Value::Null
        };
        out.push(v);
    }
    Answer::json(200, &json!({ "events": out, "next_cursor": next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_errors_name_the_parameter() {
        let q = parse_query("class=cat&since=2026-01-02T03%3A04%3A05%2B01%3A00&limit=5&cursor=event_20260102_030405_2")
            .expect("valid");
        assert_eq!(q.class.as_deref(), Some("cat"));
        assert_eq!(q.since, Some("2026-01-02T02:04:05Z".parse().expect("ts")));
        assert_eq!(q.limit, 5);
        assert_eq!(q.cursor.expect("cursor").suffix, 2);
        // An unencoded `+` (a space once decoded) is the offset's sign.
        let q = parse_query("until=2026-01-02T03:04:05+01:00").expect("valid");
        assert_eq!(q.until, Some("2026-01-02T02:04:05Z".parse().expect("ts")));
        assert_eq!(
            parse_query("since=0").expect("unix").since,
            Some(Timestamp::UNIX_EPOCH)
        );
        assert_eq!(parse_query("").expect("empty").limit, DEFAULT_LIMIT);
        for (bad, key) in [
            ("limit=0", "limit: "),
            ("limit=9999", "limit: "),
            ("since=yesterday", "since: "),
            ("until=%zz", "until: "),
            ("cursor=../etc", "cursor: "),
            ("cursor=recording_20260102_030405", "cursor: "),
        ] {
            let e = parse_query(bad).expect_err(bad);
            assert!(e.starts_with(key), "{bad}: {e}");
        }
    }
}
