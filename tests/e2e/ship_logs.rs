//! stackctl's log as systemd and log shippers see it: text with timestamps by default, no
//! timestamps (and `<N>` priorities) when standard error is the journal, one JSON object per
//! line with `--log-format json` or `log.format = "json"`; the services' output follows the same
//! rules, and the level comes from `log.level` unless `RUST_LOG` says otherwise.
//!
//! Each test runs the real `stackctl up` with one tiny service that writes a line to stdout and
//! one to stderr, with stackctl's own stdout and stderr on one pipe (as systemd connects both
//! to the journal), and looks at every line that came out.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::PipeWriter;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use serde_json::Value;
use stackctl_tests::bin;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack, free_port, kill, line_reader};

/// What the service writes.
const OUT_LINE: &str = "hello from the service";
const ERR_LINE: &str = "complaint from the service";

/// A stack of one service `svc` writing [`OUT_LINE`] and [`ERR_LINE`], then waiting; `extra`
/// is appended to the configuration (a `[log]` section, say).
fn stack(extra: &str) -> Stack {
    Stack::new(&format!(
        r#"
[services.svc]
command = "sh"
args = ["-c", "echo '{OUT_LINE}'; echo '{ERR_LINE}' >&2; exec sleep 1000"]
{extra}
"#
    ))
}

/// What `JOURNAL_STREAM` holds for the run.
#[derive(Debug, Clone, Copy)]
enum Journal {
    /// Unset (removed, in case the tests themselves run under systemd).
    Unset,
    /// The device and inode of the pipe stackctl writes to, as systemd sets it.
    Connected,
    /// Set, but naming another file: inherited by a process whose output was redirected.
    Stale,
}

/// A running `stackctl up` whose stdout and stderr are one pipe read line by line.
struct Run {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Run {
    fn start(stack: &Stack, args: &[&str], env: &[(&str, &str)], journal: Journal) -> Self {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let mut cmd = Command::new(bin("stackctl"));
        cmd.arg("up")
            .arg("--config")
            .arg(stack.config_file())
            .args(args)
            .current_dir(stack.path())
            .env_remove("JOURNAL_STREAM")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        match journal {
            Journal::Unset => {}
            Journal::Connected => {
                cmd.env("JOURNAL_STREAM", dev_ino(&writer));
            }
            Journal::Stale => {
                let other = std::fs::metadata(stack.config_file()).expect("stat");
                cmd.env("JOURNAL_STREAM", format!("{}:{}", other.dev(), other.ino()));
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(writer.try_clone().expect("dup pipe"))
            .stderr(writer);
        let child = cmd.spawn().expect("start stackctl up");
        // The command held the last copies of the writing end: dropped, so the pipe ends when
        // stackctl does.
        drop(cmd);
        let lines = line_reader(reader);
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until a line containing each of `needles` has been seen (each in any line).
    fn wait_for(&mut self, needles: &[&str]) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while !needles
            .iter()
            .all(|n| self.seen.iter().any(|line| line.contains(n)))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no lines with {needles:?}; log:\n{}", self.seen.join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "stackctl up ended before lines with {needles:?}; log:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, then every line up to the end of the pipe, and the exit code.
    fn stop(self) -> (Vec<String>, Option<i32>) {
        kill(self.child.id(), 15);
        self.finish()
    }

    /// Every line up to the end of the pipe (stackctl's exit), and the exit code.
    fn finish(mut self) -> (Vec<String>, Option<i32>) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("stackctl up did not end; log:\n{}", self.seen.join("\n"))
                }
            }
        }
        let code = self.child.wait().expect("wait").code();
        (std::mem::take(&mut self.seen), code)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `DEVICE:INODE` of a pipe, the way systemd writes `JOURNAL_STREAM`.
fn dev_ino(writer: &PipeWriter) -> String {
    let fd = std::os::fd::OwnedFd::from(writer.try_clone().expect("dup pipe"));
    let meta = std::fs::File::from(fd).metadata().expect("fstat pipe");
    format!("{}:{}", meta.dev(), meta.ino())
}

/// Runs the stack until the service's two lines and `stack ready` were logged, then stops it
/// and returns every line; asserts a clean exit.
fn run_to_ready(
    stack: &Stack,
    args: &[&str],
    env: &[(&str, &str)],
    journal: Journal,
) -> Vec<String> {
    let mut run = Run::start(stack, args, env, journal);
    run.wait_for(&[OUT_LINE, ERR_LINE, "stack ready"]);
    let (lines, code) = run.stop();
    assert_eq!(
        code,
        Some(0),
        "exit after SIGTERM; log:\n{}",
        lines.join("\n")
    );
    lines
}

/// True when `line` begins with an RFC 3339 timestamp (`2026-01-02T03:04:05`).
fn starts_with_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        r.into_iter()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
}

/// The one line containing `text`.
fn line_with<'a>(lines: &'a [String], text: &str) -> &'a str {
    let found: Vec<_> = lines.iter().filter(|l| l.contains(text)).collect();
    assert_eq!(found.len(), 1, "lines with {text:?}:\n{}", lines.join("\n"));
    found[0]
}

/// Parses every line as a JSON object with a string `level`, `message` and `timestamp`.
fn parse_all(lines: &[String]) -> Vec<Value> {
    assert!(!lines.is_empty(), "no output");
    lines
        .iter()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\nall:\n{}", lines.join("\n")));
            for field in ["level", "message", "timestamp"] {
                assert!(value[field].is_string(), "no string {field:?} in {line}");
            }
            value
        })
        .collect()
}

/// The JSON object whose message is `message`.
fn object_with<'a>(objects: &'a [Value], message: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["message"] == message)
        .unwrap_or_else(|| panic!("no object with message {message:?} in {objects:#?}"))
}

/// The service's output lines in JSON: each an object with the service's name, its stream and
/// the level stackctl gives that stream.
fn assert_service_objects(objects: &[Value]) {
    let out = object_with(objects, OUT_LINE);
    assert_eq!(out["service"], "svc", "{out}");
    assert_eq!(out["stream"], "stdout", "{out}");
    assert_eq!(out["level"], "INFO", "{out}");
    let err = object_with(objects, ERR_LINE);
    assert_eq!(err["service"], "svc", "{err}");
    assert_eq!(err["stream"], "stderr", "{err}");
    // Programs write progress to stderr as often as errors: INFO unless `stderr_level` says.
    assert_eq!(err["level"], "INFO", "{err}");
    let started = object_with(objects, "started");
    assert_eq!(started["service"], "svc", "{started}");
    assert!(started["pid"].is_u64(), "{started}");
}

#[test]
fn text_by_default_every_line_starts_with_a_timestamp() {
    let stack = stack("");
    let lines = run_to_ready(&stack, &[], &[], Journal::Unset);
    for line in &lines {
        assert!(starts_with_timestamp(line), "no timestamp: {line:?}");
        assert!(!line.starts_with('{') && !line.starts_with('<'), "{line:?}");
    }
    // The service's output is prefixed with its name like any of stackctl's own lines.
    assert!(line_with(&lines, OUT_LINE).contains("service=svc"));
    assert!(line_with(&lines, ERR_LINE).contains("INFO"));
}

#[test]
fn under_the_journal_text_lines_carry_a_priority_and_no_timestamp() {
    let stack = stack("");
    let lines = run_to_ready(&stack, &[], &[], Journal::Connected);
    for line in &lines {
        assert!(!starts_with_timestamp(line), "a timestamp: {line:?}");
        // `<N>LEVEL `: journald reads the priority and strips it; the level word stays.
        let ok = [
            ("<3>", "ERROR "),
            ("<4>", "WARN "),
            ("<6>", "INFO "),
            ("<7>", "DEBUG "),
        ]
        .iter()
        .any(|(prio, level)| line.starts_with(&format!("{prio}{level}")));
        assert!(ok, "not `<N>LEVEL `: {line:?}");
        let after_level = line.split_once(' ').map_or("", |(_, rest)| rest);
        assert!(!starts_with_timestamp(after_level), "a timestamp: {line:?}");
    }
    let out = line_with(&lines, OUT_LINE);
    assert!(
        out.starts_with("<6>INFO ") && out.contains("service=svc"),
        "{out}"
    );
    let err = line_with(&lines, ERR_LINE);
    assert!(
        err.starts_with("<6>INFO ") && err.contains("service=svc"),
        "{err}"
    );
}

/// `stderr_level` sets the level (and so the journal priority) of a service's stderr lines;
/// its stdout stays INFO.
#[test]
fn stderr_level_sets_the_level_of_a_services_stderr() {
    let stack = stack("stderr_level = \"error\"");
    let lines = run_to_ready(&stack, &[], &[], Journal::Connected);
    let err = line_with(&lines, ERR_LINE);
    assert!(
        err.starts_with("<3>ERROR ") && err.contains("stream=\"stderr\""),
        "{err}"
    );
    assert!(line_with(&lines, OUT_LINE).starts_with("<6>INFO "));
}

#[test]
fn a_journal_stream_that_is_not_stderr_any_more_is_ignored() {
    // A variable inherited from a service by a shell whose output now goes elsewhere.
    let stack = stack("");
    let lines = run_to_ready(&stack, &[], &[], Journal::Stale);
    for line in &lines {
        assert!(starts_with_timestamp(line), "no timestamp: {line:?}");
    }
}

#[test]
fn log_format_json_flag_gives_one_object_per_line() {
    let stack = stack("");
    let lines = run_to_ready(&stack, &["--log-format", "json"], &[], Journal::Unset);
    assert_service_objects(&parse_all(&lines));
}

#[test]
fn log_format_json_in_the_file_gives_one_object_per_line_even_under_the_journal() {
    let stack = stack("[log]\nformat = \"json\"\n");
    // Under the journal too: a JSON line never gets a prefix or loses its timestamp.
    let lines = run_to_ready(&stack, &[], &[], Journal::Connected);
    assert_service_objects(&parse_all(&lines));
}

#[test]
fn the_flag_beats_the_file() {
    let stack = stack("[log]\nformat = \"json\"\n");
    let lines = run_to_ready(&stack, &["--log-format", "text"], &[], Journal::Unset);
    for line in &lines {
        assert!(starts_with_timestamp(line), "not text: {line:?}");
    }
}

#[test]
fn a_fatal_error_after_logging_started_is_a_json_line_too() {
    // The HTTP port is taken: `up` has its log set up by then, and fails.
    let taken = std::net::TcpListener::bind(("127.0.0.1", free_port())).expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let stack = stack(&format!("[http]\nhost = \"127.0.0.1\"\nport = {port}\n"));
    let run = Run::start(&stack, &["--log-format", "json"], &[], Journal::Unset);
    let (lines, code) = run.finish();
    assert_eq!(code, Some(1), "{}", lines.join("\n"));
    let objects = parse_all(&lines);
    let last = objects.last().expect("a line");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("already in use")),
        "{last}"
    );
}

#[test]
fn level_comes_from_the_file_and_rust_log_wins() {
    // `stderr_level = "warn"`: the service's stderr passes the filter, its stdout (INFO) not.
    let stack = stack("stderr_level = \"warn\"\n[log]\nlevel = \"warn\"\n");
    let mut run = Run::start(&stack, &[], &[], Journal::Unset);
    run.wait_for(&[ERR_LINE]);
    let (lines, code) = run.stop();
    assert_eq!(code, Some(0));
    assert!(
        lines.iter().all(|l| !l.contains(" INFO ")),
        "INFO lines at log.level = warn:\n{}",
        lines.join("\n")
    );
    assert!(!lines.iter().any(|l| l.contains(OUT_LINE)));

    let lines = run_to_ready(&stack, &[], &[("RUST_LOG", "info")], Journal::Unset);
    assert!(line_with(&lines, OUT_LINE).contains(" INFO "));
}
