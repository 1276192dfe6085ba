//! What hostile use found in the recorder (issue 14), each reproduced against the real
//! `stackctl up` with the real camsim:
//! - item 10: `POST /start` on a full disk left a frameless MP4 (its 654-byte header) that no
//!   player opens; a file no frame made it into is removed;
//! - item 14: a hard link to `/etc/passwd` planted in the recording directory under a
//!   recorder-style name was listed and served; so was a file of another file system mounted
//!   over such a name. Only regular files with one link on the directory's own file system are.
//!
//! The full disk and the mount live in a private mount namespace (`unshare -m`, as root); those
//! tests print SKIPPED where that is not permitted.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{recording, request, wait_status};
use serde_json::Value;
use stackctl_tests::plugins::{camera_config_with, poll};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

/// `stackctl up` started by `sh -c SETUP` inside `unshare -m` (SETUP ends by exec'ing
/// `"$0" up --config "$CONFIG"`, with `$1`, `$2`... the `paths`); SIGTERM, then SIGKILL, when
/// dropped. Its log goes to a file.
struct Namespaced {
    child: Child,
    log: PathBuf,
}

impl Namespaced {
    fn start(stack: &Stack, setup: &str, paths: &[&Path]) -> Self {
        let log = stack.path().join("up.log");
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("{setup} && exec \"$0\" up --config \"$CONFIG\""))
            .arg(stackctl_tests::bin("stackctl"))
            .args(paths)
            .env("CONFIG", stack.config_file())
            .env("RUST_LOG", "info")
            .current_dir(stack.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start unshare");
        let ns = Self { child, log };
        let port = stack.http_port().expect("port");
        poll("the namespaced stack's HTTP server", EVENT_TIMEOUT, || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| format!("{e}; log:\n{}", ns.log()))
        });
        ns
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-15", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this machine lets us mount a tmpfs in a private mount namespace; SKIPPED when not.
fn can_unshare(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=64k tmpfs /mnt")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: {test}: `unshare -m` + `mount -t tmpfs` is not permitted here");
    }
    ok
}

/// The names `GET /recordings` lists.
fn listed(port: u16) -> Vec<String> {
    let answer = request(port, "GET", "/recordings", &[]);
    assert_eq!(answer.code, 200, "{}", answer.text());
    let v: Value = answer.json();
    v["recordings"]
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Issue 14, item 10: a 1 MiB tmpfs filled to its last page. `POST /start` creates the file and
/// the MP4 header fits, the first fragment does not: the recording stops with the error, and
/// no frameless file is left behind (before, a 654-byte MP4 that plays nowhere was).
#[test]
fn a_start_on_a_full_disk_leaves_no_frameless_file() {
    if !can_unshare("start on a full disk") {
        return;
    }
    let shm = unique_shm("rec-full-start");
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    let stack = Stack::new(&format!(
        "{}{}",
        camera_config_with(&shm, &[]),
        recording(&rec, "fragment_duration = 0.1")
    ));
    let port = stack.http_port().expect("port");
    // 1 MiB less one 4 KiB page: room for the header, not for a fragment of 320x240 video.
    let ns = Namespaced::start(
        &stack,
        "mount -t tmpfs -o size=1m tmpfs \"$1\" && { head -c 1044480 /dev/zero > \"$1/fill\"; true; }",
        &[&rec],
    );
    let start = request(port, "POST", "/start", &[]);
    assert_eq!(start.code, 200, "{}", start.text());
    let st = wait_status(port, "the disk-full error", |s| !s["error"].is_null());
    assert_eq!(listed(port), Vec::<String>::new(), "{st}\n{}", ns.log());
    let error = st["error"].as_str().unwrap();
    assert!(
        error.contains("No space left on device") && error.contains("removed if no frame"),
        "{error}\n{}",
        ns.log()
    );
    assert_eq!(st["recording"], false, "{st}");
    let gone = request(
        port,
        "GET",
        &format!("/recordings/{}", st["filename"].as_str().unwrap()),
        &[],
    );
    assert_eq!(gone.code, 404, "{}", gone.text());
}

/// Issue 14, item 14: a hard link to `/etc/passwd` (or, where the system refuses that, to a
/// secret file elsewhere on the same file system) under a recorder-style name is neither
/// listed nor served; the recorder's own recording is.
#[test]
fn a_hard_link_planted_in_the_directory_is_neither_listed_nor_served() {
    let shm = unique_shm("rec-hardlink");
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    let stack = Stack::new(&format!(
        "{}{}",
        camera_config_with(&shm, &[]),
        recording(&rec, "fragment_duration = 0.1")
    ));
    let port = stack.http_port().expect("port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);
    assert_eq!(request(port, "POST", "/start", &[]).code, 200);
    wait_status(port, "frames recorded", |s| {
        s["frame_count"].as_u64() > Some(10)
    });
    let own = request(port, "POST", "/stop", &[]).json()["status"]["filename"]
        .as_str()
        .unwrap()
        .to_owned();

    let planted = rec.join("recording_20200101_000000.h264");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"TOP-SECRET\n").expect("write");
    let (target, marker): (&Path, &str) = match std::fs::hard_link("/etc/passwd", &planted) {
        Ok(()) => (Path::new("/etc/passwd"), "root:"),
        Err(e) => {
            eprintln!("no hard link to /etc/passwd here ({e}): linking a secret file instead");
            std::fs::hard_link(&secret, &planted).expect("hard link");
            (&secret, "TOP-SECRET")
        }
    };
    assert!(std::fs::read_to_string(&planted).unwrap().contains(marker));

    assert_eq!(
        listed(port),
        std::slice::from_ref(&own),
        "only the recorder's own file"
    );
    let answer = request(
        port,
        "GET",
        "/recordings/recording_20200101_000000.h264",
        &[],
    );
    assert_eq!(
        answer.code,
        404,
        "{} served: {}",
        target.display(),
        answer.text()
    );
    assert!(!answer.text().contains(marker), "{}", answer.text());
    let mine = request(
        port,
        "GET",
        &format!("/recordings/{own}"),
        &[("Range", "bytes=0-99")],
    );
    assert_eq!(mine.code, 206, "{}", mine.text());
    up.terminate();
}

/// Issue 14, item 14: a file of another file system mounted over a recorder-style name (inside
/// stackctl's mount namespace) is neither listed nor served.
#[test]
fn a_file_mounted_over_a_recorder_name_is_neither_listed_nor_served() {
    if !can_unshare("a mounted file") {
        return;
    }
    let shm = unique_shm("rec-mounted");
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    let other = dir.path().join("other");
    for d in [&rec, &other] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let stack = Stack::new(&format!(
        "{}{}",
        camera_config_with(&shm, &[]),
        recording(&rec, "")
    ));
    let port = stack.http_port().expect("port");
    let name = "recording_20200101_000001.h264";
    let ns = Namespaced::start(
        &stack,
        &format!(
            "mount -t tmpfs -o size=64k tmpfs \"$1\" && echo SECRET-ELSEWHERE > \"$1/secret\" \
             && : > \"$2/{name}\" && mount --bind \"$1/secret\" \"$2/{name}\""
        ),
        &[&other, &rec],
    );
    assert_eq!(listed(port), Vec::<String>::new(), "{}", ns.log());
    let answer = request(port, "GET", &format!("/recordings/{name}"), &[]);
    assert_eq!(answer.code, 404, "{}", answer.text());
    assert!(!answer.text().contains("SECRET"), "{}", answer.text());
}
