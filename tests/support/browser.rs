//! Headless Chromium driven over the DevTools protocol (CDP), for tests of pages stackctl
//! serves: open a page, run JavaScript in it, read what it exposes.
//!
//! Chromium is started in a process group of its own with a throwaway profile, and the whole
//! group is killed when the [`Browser`] is dropped: its renderer, GPU and zygote processes go
//! with it even when a test panics. One websocket, to the browser endpoint Chromium prints on
//! standard error, carries everything: the page is a target created and attached to over it
//! (flattened sessions), so no HTTP client is needed for the `/json` endpoints.
//!
//! Without Chromium, [`Browser::launch`] prints `SKIPPED: ...` and returns `None`, so the tests
//! pass on a machine without it; CI installs it (`apt-get install chromium`).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long Chromium may take to start and print its DevTools address (a hang guard: a cold
/// start on a loaded two-core machine takes a few seconds).
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one DevTools command may go unanswered (a hang guard; [`Browser::wait_for`] adds
/// its own timeout to it).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The flags Chromium runs with, besides `--user-data-dir`. Why each one:
/// - `--headless=new`: no display here; the "new" headless mode is the real browser (the old
///   one is a separate binary now).
/// - `--no-sandbox`: Chromium refuses to start as root (CI containers) with its sandbox on.
/// - `--disable-gpu`, `--disable-dev-shm-usage`: no GPU, and a container's `/dev/shm` may be
///   64 MiB, too small for Chromium's shared memory (it uses the temporary directory instead).
/// - `--mute-audio`, `--autoplay-policy=no-user-gesture-required`: a page may play media without
///   a click (the viewer's `<video>` is muted anyway, which already allows autoplay).
/// - `--remote-debugging-port=0`: DevTools on a free port, printed on standard error.
/// - `--no-first-run`, `--no-default-browser-check`: no first-run dialogs or probes.
/// - `--use-fake-ui-for-media-stream`: permission prompts answered yes, should a page ask.
/// - `--allow-loopback-in-peer-connection`: WebRTC leaves the loopback interface out of its ICE
///   candidates unless told otherwise, and the tests' servers listen on 127.0.0.1 only. It takes
///   effect only for a page allowed to enumerate interfaces, which [`Browser::launch`] grants.
/// - `--disable-features=WebRtcHideLocalIpsWithMdns`: should that grant not apply, a page's host
///   candidates are at least real addresses, not random `*.local` mDNS names that nothing here
///   resolves.
pub const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
];

/// The Chromium to run: `$CHROMIUM` when set, else `chromium` or `chromium-browser` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A headless Chromium with one page, killed (with every process it started) when dropped.
pub struct Browser {
    child: Child,
    /// Dropped after the kill, so Chromium no longer writes into it while it is removed.
    _profile: tempfile::TempDir,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// The flattened CDP session of the page target: commands for the page carry it.
    session: String,
    stderr: Arc<Mutex<Vec<String>>>,
    console: Vec<String>,
    requests: Vec<String>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts headless Chromium with [`FLAGS`] and a blank page to [`Browser::open`] pages in.
    ///
    /// Returns `None`, after printing `SKIPPED: ...` to standard error, when there is no
    /// Chromium.
    ///
    /// # Panics
    /// When Chromium is there but does not start, or its DevTools do not answer, with its
    /// standard error.
    pub fn launch() -> Option<Self> {
        let Some(exe) = find_chromium() else {
            eprintln!(
                "\n***\n*** SKIPPED: chromium not found (apt-get install chromium, or set $CHROMIUM)\n***\n"
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("profile directory");
        let mut child = Command::new(&exe)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, whose id is its pid: Drop kills the group, so the renderers and
            // helpers Chromium forks die with it.
            .process_group(0)
            // Chromium's crash handler keeps its database under $XDG_CONFIG_HOME, not the
            // profile, and caches go to $XDG_CACHE_HOME: both into the throwaway directory.
            .env("XDG_CONFIG_HOME", profile.path())
            .env("XDG_CACHE_HOME", profile.path())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));

        // Chromium logs on standard error all its life: the pipe is read to the end by a thread
        // (a full pipe would block Chromium), the lines kept for failure messages, and sent here
        // until the DevTools address shows.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        let pipe = child.stderr.take().expect("stderr piped");
        let kept = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                kept.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        let ws_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        break url.trim().to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    kill_group(&mut child);
                    panic!(
                        "{} printed no DevTools address within {LAUNCH_TIMEOUT:?}:\n{}",
                        exe.display(),
                        tail(&stderr)
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait for chromium");
                    panic!(
                        "{} exited ({status}) before printing its DevTools address:\n{}",
                        exe.display(),
                        tail(&stderr)
                    );
                }
            }
        };

        let ws = connect(&ws_url).unwrap_or_else(|e| {
            kill_group(&mut child);
            panic!(
                "cannot connect to DevTools at {ws_url}: {e}\n{}",
                tail(&stderr)
            )
        });
        let mut browser = Self {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            session: String::new(),
            stderr,
            console: Vec::new(),
            requests: Vec::new(),
        };
        let target = browser.command(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = browser.command(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        // Events: console messages and exceptions (Runtime), every request (Network), for
        // failure messages and for tests of what a page loads.
        // Chromium lets WebRTC enumerate the network interfaces (loopback included, with
        // `--allow-loopback-in-peer-connection`) only for pages that may use the camera or the
        // microphone; any other page gets the default route's address alone. Granted for every
        // origin (no `origin`), so a page on 127.0.0.1 can reach a server that listens there.
        browser.command(
            None,
            "Browser.grantPermissions",
            json!({"permissions": ["videoCapture", "audioCapture"]}),
        );
        for domain in ["Runtime.enable", "Network.enable", "Page.enable"] {
            browser.page_command(domain, json!({}));
        }
        Some(browser)
    }

    /// Navigates the page to `url` and waits for it to load (`document.readyState` complete).
    ///
    /// # Panics
    /// When the navigation fails (e.g. connection refused) or the page does not load within
    /// [`COMMAND_TIMEOUT`].
    pub fn open(&mut self, url: &str) {
        let nav = self.page_command("Page.navigate", json!({"url": url}));
        if let Some(error) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            panic!("opening {url}: {error}");
        }
        self.wait_for(
            &format!("{url} loaded"),
            "document.readyState === 'complete'",
            COMMAND_TIMEOUT,
        );
    }

    /// The value of the JavaScript expression `js` in the page; a promise is awaited.
    ///
    /// `undefined`, functions and the like come back as `null`.
    ///
    /// # Panics
    /// When `js` throws or its promise rejects (with the exception and the page's console).
    pub fn evaluate(&mut self, js: &str) -> Value {
        self.try_evaluate(js).unwrap_or_else(|e| {
            panic!(
                "evaluating {js:?}: {e}\npage console:\n{}",
                self.console.join("\n")
            )
        })
    }

    /// [`Browser::evaluate`], with what `js` threw as the error.
    pub fn try_evaluate(&mut self, js: &str) -> Result<Value, String> {
        self.evaluate_within(js, COMMAND_TIMEOUT)
    }

    /// Waits until the JavaScript expression `js` is truthy in the page, and returns its value.
    ///
    /// The expression is checked in the page every 50 ms (an exception counts as false), so
    /// one command waits however long it takes.
    ///
    /// # Panics
    /// When it is not truthy within `timeout`, with its last value (or exception) and the
    /// page's console.
    pub fn wait_for(&mut self, what: &str, js: &str, timeout: Duration) -> Value {
        let script = format!(
            r#"new Promise((resolve) => {{
  const deadline = Date.now() + {ms};
  const check = () => {{
    let value, error = null;
    try {{ value = ({js}); }} catch (e) {{ error = String(e); }}
    if (value) resolve({{ok: true, value}});
    else if (Date.now() >= deadline) resolve({{ok: false, value: value === undefined ? null : value, error}});
    else setTimeout(check, 50);
  }};
  check();
}})"#,
            ms = timeout.as_millis()
        );
        let reply = self
            .evaluate_within(&script, timeout + COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("{what}: the waiting script threw {e}"));
        if reply["ok"] == true {
            return reply["value"].clone();
        }
        panic!(
            "{what}: `{js}` not true within {timeout:?}; last value {}, exception {}\npage console:\n{}",
            reply["value"],
            reply["error"],
            self.console.join("\n")
        );
    }

    /// Any other DevTools command for the page (e.g. `Page.captureScreenshot`), and its result.
    ///
    /// # Panics
    /// When Chromium answers with an error or not at all.
    pub fn cdp(&mut self, method: &str, params: Value) -> Value {
        self.page_command(method, params)
    }

    /// A screenshot of the page's viewport: its width, height and RGB pixels, row by row
    /// (CSS pixels at the browser's scale factor, 1 in headless Chromium).
    ///
    /// # Panics
    /// When Chromium answers with no image or one this decoder does not read.
    pub fn screenshot(&mut self) -> Screenshot {
        use base64::Engine as _;
        let reply = self.cdp("Page.captureScreenshot", json!({"format": "png"}));
        let data = reply["data"].as_str().expect("a screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG");
        decode_png(&png).unwrap_or_else(|e| panic!("the screenshot: {e}"))
    }

    /// The page's console messages and uncaught exceptions so far, one a line (`level: text`).
    pub fn console(&self) -> &[String] {
        &self.console
    }

    /// Every request the page made so far, as `METHOD URL`, in order (navigations included).
    pub fn requests(&self) -> &[String] {
        &self.requests
    }

    /// The last lines Chromium wrote to standard error.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }

    /// The value of `js` in the page (a promise awaited), or what it threw; Chromium has
    /// `timeout` to answer.
    ///
    /// # Panics
    /// When Chromium does not answer in time.
    fn evaluate_within(&mut self, js: &str, timeout: Duration) -> Result<Value, String> {
        let params = json!({"expression": js, "returnByValue": true, "awaitPromise": true});
        let session = self.session.clone();
        let reply = self
            .command_within(Some(&session), "Runtime.evaluate", params, timeout)
            .unwrap_or_else(|e| panic!("{e}\nchromium:\n{}", self.stderr_tail()));
        if let Some(details) = reply.get("exceptionDetails") {
            let what = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("an exception");
            return Err(what.to_owned());
        }
        Ok(reply["result"]["value"].clone())
    }

    fn page_command(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.command(Some(&session), method, params)
    }

    fn command(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.command_within(session, method, params, COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}\nchromium:\n{}", self.stderr_tail()))
    }

    /// Sends one CDP command and reads messages until its reply, recording the events that come
    /// before it.
    fn command_within(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .map_err(|e| format!("sending {method}: {e}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no reply to {method} within {timeout:?}"));
            }
            self.ws
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| format!("socket timeout: {e}"))?;
            let frame = match self.ws.read() {
                Ok(frame) => frame,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("reading the reply to {method}: {e}")),
            };
            let Ok(text) = frame.to_text() else { continue };
            let Ok(reply) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if reply["id"] == id {
                if let Some(error) = reply.get("error") {
                    return Err(format!("{method} failed: {error}"));
                }
                return Ok(reply["result"].clone());
            }
            self.record_event(&reply);
        }
    }

    fn record_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .map(|args| args.iter().map(remote_text).collect())
                    .unwrap_or_default();
                let level = params["type"].as_str().unwrap_or("log");
                self.console.push(format!("{level}: {}", args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("?");
                self.console.push(format!("exception: {text}"));
            }
            Some("Network.requestWillBeSent") => {
                let request = &params["request"];
                if let (Some(method), Some(url)) =
                    (request["method"].as_str(), request["url"].as_str())
                {
                    self.requests.push(format!("{method} {url}"));
                }
            }
            _ => {}
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// SIGKILL to the process group led by `child`, then reaps it.
fn kill_group(child: &mut Child) {
    // kill(1) with a negative id signals the group; `--` so it is not read as an option.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A console argument as text: its value, else its description (objects, errors).
fn remote_text(arg: &Value) -> String {
    match &arg["value"] {
        Value::String(s) => s.clone(),
        Value::Null => arg["description"]
            .as_str()
            .or_else(|| arg["type"].as_str())
            .unwrap_or("?")
            .to_owned(),
        other => other.to_string(),
    }
}

fn tail(lines: &Mutex<Vec<String>>) -> String {
    let lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
    let start = lines.len().saturating_sub(40);
    lines[start..].join("\n")
}

/// A websocket to `url` (`ws://host:port/path`), without TLS.
fn connect(url: &str) -> Result<WebSocket<TcpStream>, String> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let stream = TcpStream::connect(authority).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(COMMAND_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client(url, stream).map_err(|e| e.to_string())?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_javascript_in_a_data_url_page() {
        let Some(mut browser) = Browser::launch() else {
            return;
        };
        browser.open("data:text/html,<title>t</title><p id=p>hello</p><script>console.log('hi', 42)</script>");
        assert_eq!(browser.evaluate("1 + 1"), json!(2));
        assert_eq!(
            browser.evaluate("document.getElementById('p').textContent"),
            json!("hello")
        );
        // Promises are awaited, objects come back by value, undefined as null.
        assert_eq!(
            browser.evaluate("Promise.resolve({a: [1, 'x']})"),
            json!({"a": [1, "x"]})
        );
        assert_eq!(browser.evaluate("undefined"), Value::Null);
        let err = browser
            .try_evaluate("null.x")
            .expect_err("a TypeError is an error");
        assert!(err.contains("TypeError"), "{err}");
        assert!(
            browser.console().iter().any(|l| l == "log: hi 42"),
            "{:?}",
            browser.console()
        );
    }

    #[test]
    fn wait_for_returns_once_true_and_fails_with_the_last_value() {
        let Some(mut browser) = Browser::launch() else {
            return;
        };
        browser.open("data:text/html,<script>window.n = 0; setInterval(() => n++, 20)</script>");
        let n = browser.wait_for("n grows", "n >= 5 && n", Duration::from_secs(10));
        assert!(n.as_u64() >= Some(5), "{n}");
        // A falsy last value and a last exception are both shown when the time is up.
        let message = panic_message(|| {
            browser.wait_for(
                "never",
                "n < 0 ? 'negative' : ''",
                Duration::from_millis(200),
            );
        });
        assert!(message.contains("last value \"\""), "{message}");
        let message = panic_message(|| {
            browser.wait_for("never", "no_such_name", Duration::from_millis(200));
        });
        assert!(message.contains("ReferenceError"), "{message}");
    }

    fn panic_message(f: impl FnOnce()) -> String {
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let payload = failed.expect_err("a false condition times out");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    }

    /// The flags and the permission grant at work: without them a page's peer connection
    /// offers only the default route's address (or an mDNS name), and a server listening on
    /// 127.0.0.1 only could not be reached.
    #[test]
    fn a_peer_connection_offers_a_loopback_candidate() {
        let Some(mut browser) = Browser::launch() else {
            return;
        };
        browser.open("data:text/html,<title>ice</title>");
        let candidates = browser.evaluate(
            r#"(async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    const check = () => pc.iceGatheringState === 'complete' && done();
    pc.onicegatheringstatechange = check;
    check();
  });
  return pc.localDescription.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate'));
})()"#,
        );
        let candidates: Vec<&str> = candidates
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            candidates.iter().any(|c| c.contains(" udp ")
                && c.contains(" 127.0.0.1 ")
                && c.contains("typ host")),
            "no UDP host candidate on 127.0.0.1: {candidates:#?}"
        );
    }

    /// The processes Chromium started: those of its process group, and any that left it (its
    /// crash handlers start sessions of their own) but name the profile directory.
    fn chromium_processes(group: u32, profile: &Path) -> Vec<u32> {
        let profile = profile.to_string_lossy().into_owned();
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                // After the parenthesised name: state, ppid, pgrp.
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                let fields: Vec<&str> = stat
                    .rsplit_once(") ")
                    .map(|(_, rest)| rest.split(' ').collect())
                    .unwrap_or_default();
                if fields.first() == Some(&"Z") {
                    // Killed, waiting for init (or a subreaper) to reap it: gone for us.
                    return false;
                }
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                fields.get(2) == Some(&group.to_string().as_str())
                    || String::from_utf8_lossy(&cmdline).contains(&profile)
            })
            .collect()
    }

    #[test]
    fn dropping_the_browser_kills_all_its_processes() {
        let Some(browser) = Browser::launch() else {
            return;
        };
        let group = browser.child.id();
        let profile = browser._profile.path().to_owned();
        let before = chromium_processes(group, &profile);
        assert!(
            before.len() > 3,
            "chromium runs a browser, zygotes, renderers...: only {before:?}"
        );
        drop(browser);
        crate::plugins::poll("chromium's processes gone", Duration::from_secs(10), || {
            let left = chromium_processes(group, &profile);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?} of {before:?}"))
            }
        });
        assert!(!profile.exists(), "the profile directory is left behind");
    }
}

/// A decoded screenshot: RGB, 3 bytes a pixel, row by row.
#[derive(Debug, Clone)]
pub struct Screenshot {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixels.
    pub rgb: Vec<u8>,
}

impl Screenshot {
    /// The pixel at `(x, y)`.
    pub fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The smallest rectangle `(left, top, right, bottom)`, inclusive, holding every pixel of
    /// `area` (same form) for which `matches` is true; `None` when none does.
    pub fn bounds(
        &self,
        area: (usize, usize, usize, usize),
        matches: impl Fn([u8; 3]) -> bool,
    ) -> Option<(usize, usize, usize, usize)> {
        let mut found: Option<(usize, usize, usize, usize)> = None;
        for y in area.1..=area.3.min(self.height - 1) {
            for x in area.0..=area.2.min(self.width - 1) {
                if matches(self.at(x, y)) {
                    let b = found.get_or_insert((x, y, x, y));
                    *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
                }
            }
        }
        found
    }

    /// How many pixels of `area` match.
    pub fn count(
        &self,
        area: (usize, usize, usize, usize),
        matches: impl Fn([u8; 3]) -> bool,
    ) -> usize {
        let mut n = 0;
        for y in area.1..=area.3.min(self.height - 1) {
            for x in area.0..=area.2.min(self.width - 1) {
                n += usize::from(matches(self.at(x, y)));
            }
        }
        n
    }
}

/// Decodes what Chromium's screenshots are: an 8-bit RGB or RGBA PNG, not interlaced.
fn decode_png(png: &[u8]) -> Result<Screenshot, String> {
    let body = png.strip_prefix(b"\x89PNG\r\n\x1a\n").ok_or("not a PNG")?;
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    let mut rest = body;
    while rest.len() >= 12 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = &rest[4..8];
        let data = rest.get(8..8 + len).ok_or("a truncated chunk")?;
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
                height = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
                let (depth, colour, interlace) = (data[8], data[9], data[12]);
                channels = match (depth, colour, interlace) {
                    (8, 2, 0) => 3,
                    (8, 6, 0) => 4,
                    other => {
                        return Err(format!(
                            "unsupported PNG (depth, colour, interlace) {other:?}"
                        ));
                    }
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        rest = &rest[12 + len..];
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat)
        .map_err(|e| format!("inflate: {e:?}"))?;
    let stride = width * channels;
    if raw.len() != height * (stride + 1) {
        return Err(format!(
            "{} bytes of pixels for {width}x{height}",
            raw.len()
        ));
    }
    let mut pixels = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for i in 0..stride {
            let a = if i >= channels {
                pixels[y * stride + i - channels]
            } else {
                0
            };
            let b = if y > 0 {
                pixels[(y - 1) * stride + i]
            } else {
                0
            };
            let c = if y > 0 && i >= channels {
                pixels[(y - 1) * stride + i - channels]
            } else {
                0
            };
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => return Err(format!("PNG filter {f}")),
            };
            pixels[y * stride + i] = line[i].wrapping_add(predictor);
        }
    }
    let rgb = pixels
        .chunks_exact(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Ok(Screenshot { width, height, rgb })
}
