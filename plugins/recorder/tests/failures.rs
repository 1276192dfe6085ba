//! The recorder when things go wrong, in the real `stackctl up` with the real camsim: a full
//! disk (a 1 MiB tmpfs in a private mount namespace), a read-only directory, a directory that
//! cannot be created, path-traversal attempts on downloads, and retention that deletes exactly
//! the recorder's own old files.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{
    Recording, decodes_cleanly, have_ffmpeg, metric, probe, request, status, wait_status,
};
use stackctl_tests::plugins::{plugin_status, poll};
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

/// `stackctl up` run inside `unshare -m` after mounting a tmpfs (with `options`) on `dir`;
/// its log goes to a file. SIGTERM, then SIGKILL, when dropped.
struct Namespaced {
    child: Option<Child>,
    log: PathBuf,
}

impl Namespaced {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-15", &child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
            while std::time::Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether this machine lets us mount a tmpfs in a private mount namespace; prints SKIPPED
/// when not.
fn can_unshare(test: &str) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1m tmpfs \"$1\"")
        .args(["sh", dir.path().to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: {test}: `unshare -m` + `mount -t tmpfs` is not permitted here");
    }
    ok
}

fn up_in_namespace(stack: &Stack, dir: &Path, mount_options: &str) -> Namespaced {
    let log = stack.path().join("up.log");
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o \"$1\" tmpfs \"$2\" && exec \"$3\" up --config \"$4\"")
        .arg("sh")
        .arg(mount_options)
        .arg(dir)
        .arg(stackctl_tests::bin("stackctl"))
        .arg(stack.config_file())
        .current_dir(stack.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start unshare");
    Namespaced {
        child: Some(child),
        log,
    }
}

/// Waits until `/status` answers (the namespaced stack is up).
fn wait_http(port: u16, ns: &Namespaced) {
    poll(
        "the stack's HTTP server",
        EVENT_TIMEOUT,
        || match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{e}; log:\n{}", ns.log())),
        },
    );
}

/// The file system fills up mid-recording: the recording stops with the error in `/status`,
/// the metrics count it, one error line is logged, stackctl still serves `/health` with frames
/// flowing, and the file written so far (fetched over HTTP: it lives in the namespace) plays
/// cleanly to its last complete fragment.
#[test]
fn a_full_disk_stops_the_recording_visibly_and_keeps_what_was_written() {
    if !have_ffmpeg("disk full") || !can_unshare("disk full") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    let keys = "mode = \"continuous\"\nfragment_duration = 0.1";
    let recording = Recording::new("rec-full", &["--fps", "30"], &rec, keys);
    let (stack, port) = (&recording.stack, recording.port);
    let ns = up_in_namespace(stack, &rec, "size=1m");
    wait_http(port, &ns);
    let st = wait_status(port, "the disk-full error", |s| !s["error"].is_null());
    eprintln!("status: {st}");
    let error = st["error"].as_str().unwrap();
    assert!(
        error.contains("No space left on device") && error.contains("disk full"),
        "{error}"
    );
    assert_eq!(st["recording"], false, "{st}");
    assert!(metric(port, "recorder_errors_total") >= 1.0);
    assert_eq!(metric(port, "streaming_recording_active"), 0.0);
    let health = request(port, "GET", "/health", &[]);
    assert_eq!(health.code, 200, "{}", health.text());
    assert_eq!(health.json()["recording"], false);
    assert_eq!(
        plugin_status(stack, "recording")["state"],
        "running",
        "the plugin carries on"
    );
    let log = ns.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("recording stopped: cannot write"))
        .collect();
    assert_eq!(lines.len(), 1, "one clear error line:\n{log}");

    // The file, as far as it got: fetch it over HTTP and play it.
    let name = st["filename"].as_str().unwrap();
    let answer = request(port, "GET", &format!("/recordings/{name}"), &[]);
    assert_eq!(answer.code, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("video/mp4"));
    assert_eq!(
        answer.body.len() as u64,
        st["bytes_written"].as_u64().unwrap()
    );
    let copy = dir.path().join(name);
    std::fs::write(&copy, &answer.body).expect("save");
    let p = probe(&copy);
    eprintln!("after ENOSPC: {} bytes, {p:?}", answer.body.len());
    assert!(p.frames > 0 && p.first_key, "{p:?}");
    decodes_cleanly(&copy);
}

/// A read-only file system: continuous recording cannot start; the error shows, a manual
/// start answers 500 with it, and the stack runs on.
#[test]
fn a_read_only_directory_is_reported_and_the_stack_runs_on() {
    if !can_unshare("read-only dir") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    let recording = Recording::new("rec-ro", &[], &rec, "mode = \"continuous\"");
    let port = recording.port;
    let ns = up_in_namespace(&recording.stack, &rec, "ro,size=1m");
    wait_http(port, &ns);
    let st = wait_status(port, "the read-only error", |s| !s["error"].is_null());
    eprintln!("status: {st}");
    assert!(
        st["error"]
            .as_str()
            .unwrap()
            .contains("Read-only file system"),
        "{st}"
    );
    assert_eq!(st["recording"], false);
    assert!(metric(port, "recorder_errors_total") >= 1.0);
    let start = request(port, "POST", "/start", &[]);
    assert_eq!(start.code, 500, "{}", start.text());
    assert!(
        start.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("Failed to start recording: cannot create"),
        "{}",
        start.text()
    );
    poll("/health ok", EVENT_TIMEOUT, || {
        let h = request(port, "GET", "/health", &[]);
        if h.code == 200 { Ok(()) } else { Err(h.text()) }
    });
}

/// `dir` below a regular file cannot be created: start answers 500 naming the problem, the
/// status and metrics show it, the stack carries on.
#[test]
fn a_directory_that_cannot_be_created_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"not a directory").expect("write");
    let stack = Recording::new("rec-nodir", &[], &file.join("rec"), "");
    let port = stack.port;
    let mut up = stack.up();
    let start = request(port, "POST", "/api/recording/start", &[]);
    assert_eq!(start.code, 500, "{}", start.text());
    let message = start.json()["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("cannot create the recording directory"),
        "{message}"
    );
    let st = status(port);
    assert_eq!(st["recording"], false);
    assert!(
        st["error"].as_str().unwrap().contains("Not a directory"),
        "{st}"
    );
    assert_eq!(metric(port, "recorder_errors_total"), 1.0);
    up.first_line(&["recording stopped: cannot create the recording directory"]);
    assert_eq!(request(port, "GET", "/health", &[]).code, 200);
    up.terminate();
}

/// Downloads: ranges, no size cap (`max_response_bytes` only caps hosts that cannot stream),
/// and every way of naming a file outside the directory is refused without reading it.
#[test]
fn downloads_serve_ranges_and_refuse_names_outside_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"TOP-SECRET").expect("write");
    let keys = "max_response_bytes = \"64KiB\"\nfragment_duration = 0.1";
    let stack = Recording::new("rec-dl", &[], &rec, keys);
    let port = stack.port;
    let mut up = stack.up();
    assert_eq!(request(port, "POST", "/start", &[]).code, 200);
    wait_status(port, "more than 100 kB", |s| {
        s["bytes_written"].as_u64() > Some(100_000)
    });
    let st = request(port, "POST", "/stop", &[]).json()["status"].clone();
    let name = st["filename"].as_str().unwrap().to_owned();
    let file = std::fs::read(rec.join(&name)).expect("the recording");
    let size = file.len();
    std::os::unix::fs::symlink(&secret, rec.join("recording_20200101_000000.mp4"))
        .expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", rec.join("recording_20200101_000001.h264"))
        .expect("symlink");

    let get = |target: &str, range: Option<&str>| {
        let headers: Vec<(&str, &str)> = range.map(|r| ("Range", r)).into_iter().collect();
        request(port, "GET", target, &headers)
    };
    let url = format!("/recordings/{name}");
    let whole = get(&url, None);
    assert_eq!(whole.code, 200, "over the 64 KiB cap, streamed");
    assert!(whole.body == file, "{} of {size} bytes", whole.body.len());
    let part = get(&url, Some("bytes=0-99"));
    assert_eq!(part.code, 206);
    assert_eq!(part.body, &file[..100]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-99/{size}").as_str())
    );
    assert_eq!(part.header("accept-ranges"), Some("bytes"));
    assert_eq!(part.header("content-type"), Some("video/mp4"));
    let open = get(&url, Some("bytes=100-"));
    assert_eq!(open.code, 206);
    assert!(
        open.body == file[100..],
        "the rest of the file, whatever its size"
    );
    let tail = get(&url, Some("bytes=-10"));
    assert_eq!(tail.body, &file[size - 10..]);
    let beyond = get(&url, Some(&format!("bytes={size}-")));
    assert_eq!(beyond.code, 416);
    // Downloading the whole file in ranges gives the file.
    let mut copy = Vec::new();
    while copy.len() < size {
        let end = (copy.len() + 65_535).min(size - 1);
        let a = get(&url, Some(&format!("bytes={}-{end}", copy.len())));
        assert_eq!(a.code, 206);
        copy.extend_from_slice(&a.body);
    }
    assert_eq!(copy, file);
    assert_eq!(request(port, "POST", &url, &[]).code, 405);

    for target in [
        "/recordings/../../../../etc/passwd",
        "/recordings/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/recordings/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/recordings/%2e%2e/secret.txt",
        "/recordings/..",
        "/recordings/.",
        "/recordings//etc/passwd",
        "/recordings/%2Fetc%2Fpasswd",
        "/recordings/recording_20200101_000000.mp4",
        "/recordings/recording_20200101_000001.h264",
        "/recordings/recording_20200101_000000.mp4%00",
        "/recordings/recording_20200101_000000.mp4/../../secret.txt",
        "/recordings/secret.txt",
    ] {
        let a = get(target, None);
        let text = a.text();
        eprintln!("GET {target}: {} {text}", a.code);
        assert!(
            a.code == 404 || a.code == 400,
            "{target}: {} {text}",
            a.code
        );
        assert!(
            !text.contains("TOP-SECRET") && !text.contains("root:"),
            "{target} leaked: {text}"
        );
    }
    // The listing shows only the recorder's own regular files.
    let listing = request(port, "GET", "/recordings", &[]).json();
    let names: Vec<&str> = listing["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [name.as_str()], "{listing}");
    assert_eq!(listing["recordings"][0]["size"], size);
    assert!(listing["recordings"][0]["duration"].as_f64() > Some(0.0));
    assert_eq!(listing["recordings"][0]["recording"], false);
    up.terminate();
}

fn touch(path: &Path, len: usize, age: Duration) {
    std::fs::write(path, vec![0u8; len]).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(SystemTime::now() - age).expect("mtime");
}

/// Retention at start: old recordings by age, then the oldest by total size; every deletion
/// logged with name, size and reason; foreign files, directories and symlinks untouched.
#[test]
fn retention_deletes_the_oldest_own_recordings_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    let outside = dir.path().join("outside.mp4");
    let day = Duration::from_secs(86_400);
    let old = [
        "recording_20200101_000000.mp4",
        "recording_20200101_000001.h264",
        "recording_20200102_000000_1.mp4",
    ];
    for name in old {
        touch(&rec.join(name), 1000, 10 * day);
    }
    let recent = [
        "recording_20210101_000000.mp4",
        "recording_20210101_000001.mp4",
        "recording_20210101_000002.mp4",
        "recording_20210101_000003.h264",
    ];
    for name in recent {
        touch(&rec.join(name), 100_000, Duration::from_secs(60));
    }
    let foreign = [
        "notes.txt",
        "recording_20200101_000002.mp4.bak",
        "recording_bad.mp4",
        "Recording_20200101_000000.mp4",
    ];
    for name in foreign {
        touch(&rec.join(name), 1000, 10 * day);
    }
    std::fs::create_dir(rec.join("recording_20200101_000003.mp4")).expect("mkdir");
    touch(&outside, 1000, 10 * day);
    std::os::unix::fs::symlink(&outside, rec.join("recording_20200101_000004.mp4"))
        .expect("symlink");

    let keys = "max_age = \"1day\"\nmax_total_bytes = 250000";
    let stack = Recording::new("rec-ret", &[], &rec, keys);
    let port = stack.port;
    let mut up = stack.up();
    let mut lines = Vec::new();
    for name in old.iter().chain(&recent[..2]) {
        lines.push(up.first_line(&["retention: deleted recording", name]));
    }
    for line in &lines {
        eprintln!("{line}");
    }
    assert!(
        lines[0].contains("max_age") && lines[0].contains("1000"),
        "{}",
        lines[0]
    );
    assert!(
        lines[3].contains("max_total_bytes") && lines[3].contains("100000"),
        "{}",
        lines[3]
    );
    for name in old.iter().chain(&recent[..2]) {
        assert!(!rec.join(name).exists(), "{name} should be deleted");
    }
    for name in recent[2..].iter().chain(&foreign) {
        assert!(rec.join(name).exists(), "{name} should be kept");
    }
    assert!(rec.join("recording_20200101_000003.mp4").is_dir());
    assert!(
        rec.join("recording_20200101_000004.mp4")
            .symlink_metadata()
            .is_ok()
    );
    assert!(outside.exists(), "a symlink's target is never touched");
    assert_eq!(metric(port, "recorder_deletions_total"), 5.0);
    let deletions = up
        .lines()
        .iter()
        .filter(|l| l.contains("retention: deleted recording"))
        .count();
    assert_eq!(deletions, 5, "{}", up.log());
    up.terminate();
}
