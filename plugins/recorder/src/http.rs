//! The HTTP routes: the legacy control API and the recordings' listing and download.
//!
//! | route | |
//! | --- | --- |
//! | `POST /start`, `POST /api/recording/start` | `{"success":true,"status":{...}}`; 409 when recording |
//! | `POST /stop`, `POST /api/recording/stop` | the same; 409 when idle |
//! | `GET /status`, `GET /api/recording/status` | the bare status object, as the legacy server |
//! | `GET /recordings` | `{"dir":..., "recordings":[{name,size,start_time,duration,format,recording}]}` |
//! | `GET /recordings/<name>` | the file, streamed from disk (`Range` supported), at most `max_downloads` at once |
//!
//! Downloads stream ([`Served::File`]: the recorder's `downloads` module sends it in chunks, with
//! the host's back-pressure), whatever the file's size. Only a host without streamed answers
//! (ABI 1.1) gets the old whole answers, capped at `max_response_bytes` ([`Download::into_answer`]).
//!
//! A download name must be a recorder file name exactly (`names.rs`), which excludes `/`, `.`
//! components, `%`, NUL and anything else; the file is opened with `O_NOFOLLOW` and must be a
//! regular file with one link on the directory's own file system, so neither a symlink nor a
//! hard link (nor a mount) planted in the directory under a recorder-style name is served.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde_json::{Value, json};

use crate::names::RecordingName;
use crate::retention;
use crate::status::Shared;
use crate::worker::{ControlError, Reply};

/// An answer: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: value.to_string().into_bytes(),
        }
    }

    /// `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "success": false, "error": message }))
    }

    fn method_not_allowed(allow: &'static str) -> Self {
        let mut a = Self::error(405, &format!("method not allowed: use {allow}"));
        a.headers.push(("allow", allow.to_owned()));
        a
    }
}

/// What a route answers: a whole answer, or a file to stream.
#[derive(Debug)]
pub enum Served {
    /// A whole answer.
    Answer(Answer),
    /// A recording (or a part of it) to send from disk.
    File(Download),
}

impl From<Answer> for Served {
    fn from(answer: Answer) -> Self {
        Self::Answer(answer)
    }
}

impl Served {
    /// The answer, reading a file whole (tests; hosts without streamed answers go through
    /// [`Download::into_answer`] instead).
    pub fn read_whole(self) -> Answer {
        match self {
            Self::Answer(a) => a,
            Self::File(d) => d.into_answer(u64::MAX),
        }
    }
}

/// A recording, opened and checked, and the part of it to send.
#[derive(Debug)]
pub struct Download {
    /// The open file (`O_NOFOLLOW`, one link, the directory's file system).
    pub file: File,
    /// 200 (whole) or 206 (a range).
    pub status: u16,
    /// First byte to send.
    pub start: u64,
    /// Bytes to send.
    pub len: u64,
    /// The file's size.
    pub size: u64,
    /// Headers (type, ranges, disposition; `content-range` for a 206).
    pub headers: Vec<(&'static str, String)>,
}

impl Download {
    /// The whole answer, for a host that does not stream: at most `cap` bytes, read now. A
    /// range is cut to `cap` (the client asks on); a whole file over `cap` is refused with 416
    /// and a hint to ask in ranges.
    pub fn into_answer(mut self, cap: u64) -> Answer {
        let name = self
            .headers
            .iter()
            .find(|(n, _)| *n == "content-disposition")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if self.status == 200 && self.len > cap {
            let size = self.size;
            let mut a = Answer::error(
                416,
                &format!(
                    "{name} is {size} bytes, more than one answer carries ({cap} bytes): \
                     download it in ranges, e.g. Range: bytes=0-{}",
                    cap - 1
                ),
            );
            a.headers.push(("content-range", format!("bytes */{size}")));
            a.headers.push(("accept-ranges", "bytes".to_owned()));
            return a;
        }
        if self.status == 206 && self.len > cap {
            self.len = cap;
            let end = self.start + cap - 1;
            for (n, v) in &mut self.headers {
                if *n == "content-range" {
                    *v = format!("bytes {}-{end}/{}", self.start, self.size);
                }
            }
        }
        let mut body = vec![0u8; usize::try_from(self.len).unwrap_or(0)];
        if let Err(e) = self.file.read_exact_at(&mut body, self.start) {
            return Answer::error(500, &format!("reading the recording: {e}"));
        }
        Answer {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

/// The recorder as the routes see it.
pub trait Control {
    /// Starts recording.
    fn start(&self) -> Reply;
    /// Stops recording.
    fn stop(&self) -> Reply;
    /// The shared status.
    fn shared(&self) -> &Shared;
    /// The recording directory.
    fn dir(&self) -> &Path;
}

/// Answers one request.
pub fn handle(ctl: &impl Control, method: &str, path: &str, range: Option<&str>) -> Served {
    let route = path
        .strip_prefix("/api/recording")
        .filter(|r| r.starts_with('/'))
        .unwrap_or(path);
    match route {
        "/start" | "/stop" => {
            if method != "POST" {
                return Answer::method_not_allowed("POST").into();
            }
            let reply = if route == "/start" {
                ctl.start()
            } else {
                ctl.stop()
            };
            control_answer(route, reply).into()
        }
        "/status" => {
            if method != "GET" {
                return Answer::method_not_allowed("GET").into();
            }
            Answer::json(200, &json!(ctl.shared().snapshot())).into()
        }
        "/recordings" | "/recordings/" if path == route => {
            if method != "GET" {
                return Answer::method_not_allowed("GET").into();
            }
            list(ctl).into()
        }
        _ => match path.strip_prefix("/recordings/") {
            Some(name) => {
                if method != "GET" {
                    return Answer::method_not_allowed("GET").into();
                }
                download(ctl, name, range)
            }
            None => Answer::error(404, &format!("no route {path}")).into(),
        },
    }
}

fn control_answer(route: &str, reply: Reply) -> Answer {
    match reply {
        Ok(status) => Answer::json(200, &json!({ "success": true, "status": status })),
        // The legacy server answered these two with 500; a conflict is what they are.
        Err(e @ (ControlError::AlreadyRecording | ControlError::NotRecording)) => {
            Answer::error(409, &e.to_string())
        }
        Err(ControlError::Failed(message)) => {
            let verb = if route == "/start" { "start" } else { "stop" };
            Answer::error(500, &format!("Failed to {verb} recording: {message}"))
        }
    }
}

fn list(ctl: &impl Control) -> Answer {
    let status = ctl.shared().snapshot();
    let entries = match retention::list(ctl.dir()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Answer::error(500, &format!("cannot list {}: {e}", ctl.dir().display()));
        }
    };
    let recordings: Vec<Value> = entries
        .iter()
        .rev() // newest first
        .map(|e| {
            let name = e.name.file_name();
            let recording = status.recording && status.filename == name;
            json!({
                "name": name,
                "size": e.size,
                "start_time": e.name.start_rfc3339(),
                "duration": ctl.shared().duration_of(&name),
                "format": e.name.format,
                "recording": recording,
            })
        })
        .collect();
    Answer::json(
        200,
        &json!({ "dir": ctl.dir().display().to_string(), "recordings": recordings }),
    )
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable `Range` (absent or not `bytes=`, or malformed: ignored, as RFC 9110 allows).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A syntactically valid range outside the file: 416.
    Unsatisfiable,
}

/// Parses a `Range` header (`bytes=a-b`, `bytes=a-`, `bytes=-n`; of several ranges, the first
/// is served).
pub fn parse_range(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    let first = spec.split(',').next().unwrap_or("").trim();
    let Some((a, b)) = first.split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), num(a), num(b)) {
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(size.saturating_sub(n), size - 1)
            }
        }
        (false, Some(start), end) if b.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|e| e < start) {
                return RangeAsk::Whole;
            }
            if start >= size {
                return RangeAsk::Unsatisfiable;
            }
            RangeAsk::Part(start, end.unwrap_or(u64::MAX).min(size - 1))
        }
        _ => RangeAsk::Whole,
    }
}

/// Opens a recording for reading: own name only, no symlink, and one of the recorder's own
/// files ([`retention::is_own_file`], checked on the opened descriptor, so the name cannot be
/// swapped between the check and the read).
fn open_recording(dir: &Path, name: &str) -> Result<(File, u64, RecordingName), Answer> {
    let not_found = || Answer::error(404, "no such recording");
    let Some(parsed) = RecordingName::parse(name) else {
        return Err(not_found());
    };
    let dir_dev = std::fs::metadata(dir).map_err(|_| not_found())?.dev();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(dir.join(parsed.file_name()))
        .map_err(|_| not_found())?;
    let meta = file.metadata().map_err(|_| not_found())?;
    if !retention::is_own_file(&meta, dir_dev) {
        return Err(not_found());
    }
    Ok((file, meta.len(), parsed))
}

/// Opens recording `name` and works out the part `range` asks for.
pub(crate) fn download(ctl: &impl Control, name: &str, range: Option<&str>) -> Served {
    let (file, size, parsed) = match open_recording(ctl.dir(), name) {
        Ok(opened) => opened,
        Err(answer) => return answer.into(),
    };
    let (status, start, end) = match parse_range(range, size) {
        RangeAsk::Unsatisfiable => {
            let mut a = Answer::error(
                416,
                &format!("the range is outside the file ({size} bytes)"),
            );
            a.headers.push(("content-range", format!("bytes */{size}")));
            a.headers.push(("accept-ranges", "bytes".to_owned()));
            return a.into();
        }
        RangeAsk::Part(start, end) => (206, start, end),
        RangeAsk::Whole => (200, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let mut headers = vec![
        ("content-type", parsed.format.content_type().to_owned()),
        ("accept-ranges", "bytes".to_owned()),
        (
            "content-disposition",
            format!("inline; filename=\"{}\"", parsed.file_name()),
        ),
    ];
    if status == 206 {
        headers.push(("content-range", format!("bytes {start}-{end}/{size}")));
    }
    Served::File(Download {
        file,
        status,
        start,
        len,
        size,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::config::{Format, Mode};
    use crate::status::Status;

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        use RangeAsk::*;
        let p = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(p("bytes=0-99"), Part(0, 99));
        assert_eq!(p("bytes=900-"), Part(900, 999));
        assert_eq!(p("bytes=900-5000"), Part(900, 999));
        assert_eq!(p("bytes=-100"), Part(900, 999));
        assert_eq!(p("bytes=-5000"), Part(0, 999));
        assert_eq!(p("bytes=0-0,5-9"), Part(0, 0));
        assert_eq!(p("bytes=1000-"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=5-2"), Whole);
        assert_eq!(p("bytes=x-2"), Whole);
        assert_eq!(p("items=0-1"), Whole);
        assert_eq!(p("bytes=+1-2"), Whole);
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }

    struct Fake {
        shared: Shared,
        dir: PathBuf,
        recording: Mutex<bool>,
    }

    impl Control for Fake {
        fn start(&self) -> Reply {
            let mut r = self.recording.lock().expect("lock");
            if *r {
                return Err(ControlError::AlreadyRecording);
            }
            *r = true;
            Ok(Status::new(Format::Mp4, Mode::Manual))
        }
        fn stop(&self) -> Reply {
            let mut r = self.recording.lock().expect("lock");
            if !*r {
                return Err(ControlError::NotRecording);
            }
            *r = false;
            Ok(Status::new(Format::Mp4, Mode::Manual))
        }
        fn shared(&self) -> &Shared {
            &self.shared
        }
        fn dir(&self) -> &Path {
            &self.dir
        }
    }

    fn fake(dir: &Path) -> Fake {
        Fake {
            shared: Shared::new(Format::Mp4, Mode::Manual),
            dir: dir.to_owned(),
            recording: Mutex::new(false),
        }
    }

    /// The answer, a file read whole.
    fn answer(f: &Fake, method: &str, path: &str, range: Option<&str>) -> Answer {
        handle(f, method, path, range).read_whole()
    }

    /// The answer a host without streamed answers gets: at most `cap` bytes.
    fn capped(f: &Fake, path: &str, range: Option<&str>, cap: u64) -> Answer {
        match handle(f, "GET", path, range) {
            Served::File(d) => d.into_answer(cap),
            Served::Answer(a) => a,
        }
    }

    fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
        a.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn control_routes_answer_409_and_405() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = fake(dir.path());
        assert_eq!(answer(&f, "POST", "/start", None).status, 200);
        assert_eq!(answer(&f, "POST", "/api/recording/start", None).status, 409);
        assert_eq!(answer(&f, "POST", "/api/recording/stop", None).status, 200);
        let again = answer(&f, "POST", "/stop", None);
        assert_eq!(again.status, 409);
        assert!(String::from_utf8_lossy(&again.body).contains("\"error\":\"not recording\""));
        let wrong = answer(&f, "GET", "/start", None);
        assert_eq!((wrong.status, header(&wrong, "allow")), (405, Some("POST")));
        assert_eq!(answer(&f, "POST", "/status", None).status, 405);
        assert_eq!(answer(&f, "GET", "/api/recording/status", None).status, 200);
        assert_eq!(answer(&f, "GET", "/api/recording", None).status, 404);
        assert_eq!(answer(&f, "GET", "/start/x", None).status, 404);
    }

    #[test]
    fn downloads_serve_ranges_and_refuse_foreign_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = fake(dir.path());
        let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        std::fs::write(dir.path().join("recording_20250101_000000.mp4"), &data).expect("write");
        std::fs::write(
            dir.path().join("recording_20250101_000001.h264"),
            &data[..50],
        )
        .expect("write");
        std::os::unix::fs::symlink(
            dir.path().join("recording_20250101_000000.mp4"),
            dir.path().join("recording_20250101_000002.mp4"),
        )
        .expect("symlink");
        // A file elsewhere (on the same file system), hard-linked in under a recorder name.
        let outside = tempfile::tempdir().expect("tempdir");
        let secret = outside.path().join("secret");
        std::fs::write(&secret, b"TOP-SECRET").expect("write");
        std::fs::hard_link(&secret, dir.path().join("recording_20250101_000003.h264"))
            .expect("hard link");
        let get = |path: &str, range: Option<&str>| answer(&f, "GET", path, range);
        let old = |path: &str, range: Option<&str>| capped(&f, path, range, 100);

        let small = get("/recordings/recording_20250101_000001.h264", None);
        assert_eq!(small.status, 200);
        assert_eq!(small.body, &data[..50]);
        assert_eq!(header(&small, "content-type"), Some("video/h264"));
        assert_eq!(header(&small, "accept-ranges"), Some("bytes"));

        let big = get("/recordings/recording_20250101_000000.mp4", None);
        assert_eq!((big.status, &big.body[..]), (200, &data[..]), "no size cap");
        // A host that does not stream: whole answers of at most the cap.
        let big = old("/recordings/recording_20250101_000000.mp4", None);
        assert_eq!(big.status, 416, "a file over the cap needs ranges");
        assert_eq!(header(&big, "content-range"), Some("bytes */250"));
        let open = old(
            "/recordings/recording_20250101_000000.mp4",
            Some("bytes=0-"),
        );
        assert_eq!((open.status, open.body.len()), (206, 100));
        assert_eq!(header(&open, "content-range"), Some("bytes 0-99/250"));

        let part = get(
            "/recordings/recording_20250101_000000.mp4",
            Some("bytes=10-19"),
        );
        assert_eq!(part.status, 206);
        assert_eq!(part.body, &data[10..20]);
        assert_eq!(header(&part, "content-range"), Some("bytes 10-19/250"));
        assert_eq!(header(&part, "content-type"), Some("video/mp4"));
        let open = get(
            "/recordings/recording_20250101_000000.mp4",
            Some("bytes=0-"),
        );
        assert_eq!((open.status, &open.body[..]), (206, &data[..]));
        assert_eq!(header(&open, "content-range"), Some("bytes 0-249/250"));
        let tail = get(
            "/recordings/recording_20250101_000000.mp4",
            Some("bytes=-7"),
        );
        assert_eq!(tail.body, &data[243..]);
        let out = get(
            "/recordings/recording_20250101_000000.mp4",
            Some("bytes=250-"),
        );
        assert_eq!(out.status, 416);

        for bad in [
            "/recordings/../etc/passwd",
            "/recordings/%2e%2e%2fetc%2fpasswd",
            "/recordings/..%2f..%2fetc%2fpasswd",
            "/recordings//etc/passwd",
            "/recordings/recording_20250101_000000.mp4/",
            "/recordings/recording_20250101_000000.mp4%00",
            "/recordings/recording_20250101_000002.mp4",
            "/recordings/recording_20250101_000003.h264",
            "/recordings/recording_20250101_000009.mp4",
            "/recordings/.",
        ] {
            let a = get(bad, None);
            assert!(a.status == 404 || a.status == 400, "{bad}: {}", a.status);
            assert!(
                a.body.len() < 200 && !a.body.starts_with(&data[..10]),
                "{bad}"
            );
        }

        let list = get("/recordings", None);
        let v: Value = serde_json::from_slice(&list.body).expect("json");
        let names: Vec<&str> = v["recordings"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "recording_20250101_000001.h264",
                "recording_20250101_000000.mp4"
            ]
        );
        assert_eq!(v["recordings"][1]["size"], 250);
        assert_eq!(v["recordings"][1]["format"], "mp4");
        assert_eq!(v["recordings"][1]["recording"], false);
        assert!(v["recordings"][1]["duration"].is_null());
    }
}
