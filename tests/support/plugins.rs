//! Sink plugins for the end-to-end tests: building them (Rust with cargo, C with the system
//! compiler), configuring camsim as the stack's camera, and reading what stackctl and the
//! plugins serve and write.
//!
//! Cargo gives a test no path to a sibling `cdylib`, so Rust plugins are built by the test
//! itself, once per test binary, with `cargo build -p PACKAGE --message-format=json...` into
//! `target/plugin-tests` (another target directory than the one the running `cargo test` may
//! hold locked); the library is the `.so` of the `cdylib` artifact cargo reports. C plugins are
//! built with `cc` into `target/plugin-tests/c`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::up::{EVENT_TIMEOUT, Stack};
use crate::{ShmName, bin};

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies in the workspace")
        .to_owned()
}

/// Where the tests build plugins: `target/plugin-tests`.
pub fn plugin_target_dir() -> PathBuf {
    workspace_root().join("target").join("plugin-tests")
}

/// Builds the Rust plugin `package` (a workspace member with a `cdylib`) and returns its
/// library. Built once per test binary; later calls return the same path.
///
/// # Panics
/// When the build fails (with cargo's messages) or reports no `cdylib`.
pub fn rust_plugin(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    // Held during the build: a concurrent test of this binary waits instead of building again.
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = built.get(package) {
        return path.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    let started = Instant::now();
    let out = Command::new(&cargo)
        .args([
            "build",
            "-p",
            package,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(plugin_target_dir())
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&cargo).display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo build -p {package} failed with {}:\n{stderr}",
        out.status
    );
    let lib_name = package.replace('-', "_");
    let library = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == lib_name.as_str())
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .unwrap_or_else(|| panic!("cargo build -p {package} reported no cdylib:\n{stderr}"));
    eprintln!(
        "built {package}: {} ({:.1} s)",
        library.display(),
        started.elapsed().as_secs_f64()
    );
    built.insert(package.to_owned(), library.clone());
    library
}

/// The C compiler: `$CC`, else `cc`, if it runs.
fn c_compiler() -> Option<String> {
    let cc = std::env::var("CC")
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cc".to_owned());
    let runs = Command::new(&cc)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    runs.then_some(cc)
}

/// Builds the C plugin `source` (relative to the workspace root) with the `-D` `defines` into
/// `target/plugin-tests/c/lib{name}.so`, once per test binary, and returns it; `None`, after
/// printing `SKIPPED: ...`, when there is no C compiler.
///
/// # Panics
/// When the compiler refuses the source.
pub fn c_plugin(name: &str, source: &str, defines: &[&str]) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = built.get(name) {
        return Some(path.clone());
    }
    let Some(cc) = c_compiler() else {
        eprintln!("SKIPPED: no C compiler (`cc` or $CC) to build the C plugin {source}");
        return None;
    };
    let root = workspace_root();
    let dir = plugin_target_dir().join("c");
    std::fs::create_dir_all(&dir).expect("create target/plugin-tests/c");
    let library = dir.join(format!("lib{name}.so"));
    // Another test binary may load or build the same file right now: build under a name of our
    // own, then rename it into place (a loaded library keeps its old inode).
    let partial = dir.join(format!("lib{name}.so.{}.partial", std::process::id()));
    let out = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-pedantic", "-O2"])
        .args(["-shared", "-fPIC", "-pthread"])
        .arg("-I")
        .arg(root.join("plugins/abi/include"))
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-o")
        .arg(&partial)
        .arg(root.join(source))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        out.status.success(),
        "{cc} refused {source} {defines:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &library).expect("move the built plugin into place");
    built.insert(name.to_owned(), library.clone());
    Some(library)
}

/// The test C plugin `tests/plugins/probe_sink.c` (see its header for its keys and its
/// output), built as `lib{name}.so` with `defines`.
pub fn probe_plugin(name: &str, defines: &[&str]) -> Option<PathBuf> {
    c_plugin(name, "tests/plugins/probe_sink.c", defines)
}

/// The example C sink `plugins/examples/c-meta/meta_sink.c`, built as `libsink_meta.so`.
pub fn meta_plugin() -> Option<PathBuf> {
    c_plugin("sink_meta", "plugins/examples/c-meta/meta_sink.c", &[])
}

/// A TOML string for `path`.
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// A configuration's `[source]` and `[services.camera]`: camsim publishing 320x240 at 30 fps
/// (an IDR every 30 frames) into `shm`, which stackctl reads for its plugins.
pub fn camera_config(shm: &ShmName) -> String {
    camera_config_with(shm, &[])
}

/// [`camera_config`] with more camsim arguments; `--size` and `--fps` among them replace the
/// defaults.
pub fn camera_config_with(shm: &ShmName, extra: &[&str]) -> String {
    let mut args: Vec<&str> = vec!["--shm", shm.as_str()];
    for (flag, value) in [("--size", "320x240"), ("--fps", "30")] {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend(extra);
    format!(
        "\n[source]\nshm = \"{name}\"\n\n[services.camera]\ncommand = {camsim}\nargs = {args:?}\n",
        name = shm.as_str(),
        camsim = toml_path(&bin("camsim")),
    )
}

/// A stack with the camera and two instances of the probe sink `probe`: `first` with the extra
/// keys `first_keys` (TOML lines), and `other` without any. Each writes to a file in `dir`; the
/// two paths are returned with the stack.
pub fn two_probes(
    shm: &ShmName,
    probe: &Path,
    dir: &Path,
    first: &str,
    first_keys: &str,
) -> (Stack, PathBuf, PathBuf) {
    let (first_out, other_out) = (dir.join(format!("{first}.txt")), dir.join("other.txt"));
    let stack = Stack::new(&format!(
        "{camera}\n[plugins.{first}]\npath = {probe}\noutput = {first_out}\n{first_keys}\n\n\
         [plugins.other]\npath = {probe}\noutput = {other_out}\n",
        camera = camera_config(shm),
        probe = toml_path(probe),
        first_out = toml_path(&first_out),
        other_out = toml_path(&other_out),
    ));
    (stack, first_out, other_out)
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub code: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON, with the status and the body.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.code,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text (lossily).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with an empty body to 127.0.0.1:`port` (`Connection: close`), the
/// target sent as it is, unnormalised, with the extra `headers`.
///
/// # Panics
/// When the server does not answer a well-formed response within [`EVENT_TIMEOUT`].
pub fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("set a read timeout");
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {target}: sending the request: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {target}: reading the answer: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {target}: no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        code,
        headers,
        body,
    }
}

/// `GET path` on 127.0.0.1:`port` over HTTP/1.1; returns the status code and the body.
///
/// # Panics
/// As [`request`].
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let answer = request(port, "GET", path, &[]);
    (answer.code, answer.text())
}

/// `POST path` with an empty body; returns the status code and the body.
///
/// # Panics
/// As [`request`].
pub fn http_post(port: u16, path: &str) -> (u16, String) {
    let answer = request(port, "POST", path, &[]);
    (answer.code, answer.text())
}

/// `GET path`, for a body that need not be text (a profile); returns the status code and the
/// body's bytes.
///
/// # Panics
/// As [`request`].
pub fn http_get_bytes(port: u16, path: &str) -> (u16, Vec<u8>) {
    let answer = request(port, "GET", path, &[]);
    (answer.code, answer.body)
}

/// `GET path`, which must answer 200 with JSON.
pub fn http_json(port: u16, path: &str) -> Value {
    let (code, body) = http_get(port, path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"))
}

/// One plugin's entry in a status.
pub fn plugin<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no plugin {name:?} in the status:\n{status:#}"))
}

/// A plugin's entry in the current status.
pub fn plugin_status(stack: &Stack, name: &str) -> Value {
    plugin(&stack.status(), name).clone()
}

/// A counter of a plugin's entry in the current status (`frames`, `dropped`).
pub fn plugin_counter(stack: &Stack, name: &str, counter: &str) -> u64 {
    let entry = plugin_status(stack, name);
    entry[counter]
        .as_u64()
        .unwrap_or_else(|| panic!("no {counter} in {entry:#}"))
}

/// Calls `check` until it returns `Ok`, pausing between calls, for at most `timeout`: for what
/// nothing announces (a line in a plugin's file, a counter). `Err` carries what was seen last,
/// for the failure message.
///
/// # Panics
/// When `check` has not succeeded within `timeout`.
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if start.elapsed() >= timeout => {
                panic!("{what}: not within {timeout:?}; last seen: {seen}")
            }
            Err(_) => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The complete (newline-terminated) lines of a file a plugin appends to; none while it does
/// not exist.
pub fn complete_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Waits until `path` has at least `n` complete lines for which `keep` is true, and returns
/// all its complete lines.
pub fn wait_lines(path: &Path, n: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
    poll(
        &format!("{n} lines in {}", path.display()),
        EVENT_TIMEOUT,
        || {
            let lines = complete_lines(path);
            let count = lines.iter().filter(|l| keep(l)).count();
            if count >= n {
                Ok(lines)
            } else {
                Err(format!("{count} of {} lines", lines.len()))
            }
        },
    )
}

/// One `F` line of the probe plugin: a frame as `on_frame` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFrame {
    /// The camera's frame number.
    pub number: u64,
    /// The source's index of the frame: consecutive while no frame is lost.
    pub sequence: u64,
    /// `frame->data`, as `%p` printed it.
    pub data: String,
    /// Its size.
    pub len: u64,
    /// Whether it is an IDR.
    pub idr: bool,
    /// When `on_frame` was entered (CLOCK_MONOTONIC, ns).
    pub received_ns: u64,
    /// The camera's capture time (CLOCK_MONOTONIC, ns).
    pub timestamp_ns: u64,
}

/// The `F` lines of a probe's output.
pub fn probe_frames(lines: &[String]) -> Vec<ProbeFrame> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("F "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let num = |i: usize| -> u64 {
                f.get(i)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("field {i} of probe line {l:?}"))
            };
            ProbeFrame {
                number: num(0),
                sequence: num(1),
                data: f.get(2).map(|s| (*s).to_owned()).unwrap_or_default(),
                len: num(3),
                idr: num(4) == 1,
                received_ns: num(5),
                timestamp_ns: num(6),
            }
        })
        .collect()
}

/// A `/metrics` scrape with the `plugin="NAME"` label the host puts first on every plugin
/// sample taken off again (`webrtc_x{plugin="streaming",reason="closed"} 1` becomes
/// `webrtc_x{reason="closed"} 1`), so a sink's tests can look its samples up as the sink writes
/// them. stackctl's own families (`stackctl_*`) keep theirs.
pub fn unlabelled(scrape: &str) -> String {
    scrape
        .lines()
        .map(|line| {
            let Some((name, rest)) = line.split_once("{plugin=\"") else {
                return line.to_owned();
            };
            if name.starts_with('#') || name.starts_with("stackctl_") {
                return line.to_owned();
            }
            // Plugin names are TOML keys: no quote in the ones tests use.
            let Some((_, after)) = rest.split_once('"') else {
                return line.to_owned();
            };
            match after.strip_prefix(',') {
                Some(labels) => format!("{name}{{{labels}"),
                None => format!("{name}{}", after.strip_prefix('}').unwrap_or(after)),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `promtool check metrics` on `scrape`, asserting that it parses (exit 0, or 3 for lint advice
/// alone; 1 would be a scrape it cannot parse): what it said, or `None` after saying so when
/// promtool is not installed (Debian's `prometheus` package).
pub fn promtool_check_metrics(scrape: &str) -> Option<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "SKIPPED: promtool check metrics: promtool is not installed ({e}; apt-get install prometheus)"
            );
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(scrape.as_bytes())
        .expect("write the scrape to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool check metrics refused the scrape ({}):\n{said}\n--- scrape:\n{scrape}",
        out.status
    );
    Some(said)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unlabelled_takes_the_plugin_label_off_plugin_samples_only() {
        let scrape = "# TYPE a counter\na{plugin=\"p\"} 1\nb{plugin=\"p\",x=\"y\"} 2\n\
                      stackctl_plugin_up{plugin=\"p\"} 1\nc 3";
        assert_eq!(
            super::unlabelled(scrape),
            "# TYPE a counter\na 1\nb{x=\"y\"} 2\nstackctl_plugin_up{plugin=\"p\"} 1\nc 3"
        );
    }
}
