//! What is measured: `stackctl up` with camsim looping the input and a streaming sink (this
//! tree's, or another commit's `.so`), built on the end-to-end tests' [`Stack`] and [`Up`]; or
//! camsim and `str0m-sink`, the same stream served with str0m.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use stackctl_tests::plugins::{http_get, toml_path};
use stackctl_tests::up::{Stack, Up};
use stackctl_tests::{ShmName, bin, unique_shm};

use crate::input::Input;
use crate::procfs;

/// One thing under test.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Its name in the tables (`new`, `old (b0be5af)`, `str0m`).
    pub name: String,
    /// What it is.
    pub kind: Kind,
}

/// What a variant is.
#[derive(Debug, Clone)]
pub enum Kind {
    /// stackctl with this `libsink_webrtc.so`; `current` for this tree's (its config keys).
    Sink {
        /// The library.
        library: PathBuf,
        /// This tree's sink: it knows `max_pending`.
        current: bool,
    },
    /// camsim and this `str0m-sink` binary.
    Str0m(PathBuf),
}

/// How the sink is set up for a scenario.
#[derive(Debug, Clone, Copy)]
pub struct SinkSetup {
    /// `max_clients` (and, for this tree's sink, `max_pending`).
    pub max_clients: usize,
    /// `threads`, or the sink's default (one per 25 of `max_clients`).
    pub threads: Option<usize>,
    /// A WHIP publication to `http://127.0.0.1:PORT/cam/whip` (this tree's sink only).
    pub whip_port: Option<u16>,
}

impl SinkSetup {
    /// The board's: 10 viewers, the sink's own worker sizing.
    pub const BOARD: SinkSetup = SinkSetup {
        max_clients: 10,
        threads: None,
        whip_port: None,
    };
}

/// A variant running. Dropping it stops everything.
pub struct Running {
    /// The process measured (stackctl, or str0m-sink).
    pid: u32,
    port: u16,
    camsim: Option<u32>,
    stack: Option<(Stack, Up)>,
    str0m: Option<Vec<Child>>,
    log: Option<PathBuf>,
    _shm: ShmName,
    _dir: Option<tempfile::TempDir>,
}

impl Running {
    /// Starts `variant` on `input`, set up as `setup`, and waits for its first frames.
    pub fn start(variant: &Variant, input: &Input, setup: SinkSetup) -> anyhow::Result<Self> {
        let shm = unique_shm("loadbench");
        let camsim_args = [
            "--shm",
            shm.as_str(),
            "--input",
            &input.path.display().to_string(),
            "--fps",
            &input.shape.fps.to_string(),
            "--size",
            input.shape.size,
        ]
        .map(str::to_owned);
        let running = match &variant.kind {
            Kind::Sink { library, current } => {
                let mut keys = format!(
                    "max_clients = {}\nrtp_timestamp_origin = \"monotonic\"\n",
                    setup.max_clients
                );
                if *current {
                    keys.push_str(&format!("max_pending = {}\n", setup.max_clients));
                }
                if let Some(threads) = setup.threads {
                    keys.push_str(&format!("threads = {threads}\n"));
                }
                if let Some(port) = setup.whip_port {
                    if !*current {
                        bail!("only this tree's sink publishes over WHIP");
                    }
                    // Last: a table header ends the sink's own keys.
                    keys.push_str(&format!(
                        "\n[[plugins.streaming.publish]]\nurl = \"http://127.0.0.1:{port}/cam/whip\"\n"
                    ));
                }
                let stack = Stack::new(&format!(
                    "[source]\nshm = \"{shm}\"\n\n[services.camera]\ncommand = {camsim}\nargs = {args:?}\n\n\
                     [plugins.streaming]\npath = {library}\nbind = [\"127.0.0.1\"]\n{keys}",
                    shm = shm.as_str(),
                    camsim = toml_path(&bin("camsim")),
                    args = camsim_args,
                    library = toml_path(library),
                ));
                let port = stack
                    .http_port()
                    .context("the harness chose the HTTP port")?;
                let up = stack.up(&[], &[]);
                Self {
                    pid: up.pid(),
                    port,
                    camsim: None,
                    stack: Some((stack, up)),
                    str0m: None,
                    log: None,
                    _shm: shm,
                    _dir: None,
                }
            }
            Kind::Str0m(binary) => {
                let dir = tempfile::tempdir()?;
                let port = stackctl_tests::up::free_port();
                let spawn =
                    |program: &Path, args: &[String], log: &Path| -> anyhow::Result<Child> {
                        let file = File::create(log)?;
                        Command::new(program)
                            .args(args)
                            .env("RUST_LOG", "info")
                            .stdin(Stdio::null())
                            .stdout(file.try_clone()?)
                            .stderr(file)
                            .spawn()
                            .with_context(|| program.display().to_string())
                    };
                let log = dir.path().join("str0m-sink.log");
                let sink_args = [
                    "--shm",
                    shm.as_str(),
                    "--http",
                    &format!("127.0.0.1:{port}"),
                    "--udp",
                    "127.0.0.1:0",
                    "--max-viewers",
                    &setup.max_clients.to_string(),
                ]
                .map(str::to_owned);
                let sink = spawn(binary, &sink_args, &log)?;
                let camsim = spawn(&bin("camsim"), &camsim_args, &dir.path().join("camsim.log"))?;
                Self {
                    pid: sink.id(),
                    port,
                    camsim: Some(camsim.id()),
                    stack: None,
                    str0m: Some(vec![sink, camsim]),
                    log: Some(log),
                    _shm: shm,
                    _dir: Some(dir),
                }
            }
        };
        running.wait_streaming()
    }

    fn wait_streaming(mut self) -> anyhow::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let streaming = match &self.log {
                None => self
                    .metrics()
                    .and_then(|m| m.get("streaming_frames_read_total").copied())
                    .is_some_and(|n| n >= 5.0),
                Some(log) => std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .contains("first frame from the camera"),
            };
            if streaming {
                break;
            }
            if Instant::now() > deadline {
                bail!("no frames within 30 s:\n{}", self.problems().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.camsim.is_none() {
            self.camsim = procfs::children(self.pid).into_iter().next();
        }
        Ok(self)
    }

    /// The process measured.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// camsim's pid.
    pub fn camsim(&self) -> Option<u32> {
        self.camsim
    }

    /// The base URL of its WHEP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The sink's metrics (str0m-sink has none).
    pub fn metrics(&self) -> Option<HashMap<String, f64>> {
        self.stack.as_ref()?;
        let port = self.port;
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        // `http_get` panics on a dead server: a stack that died is a failed scenario anyway.
        let (code, text) = std::panic::catch_unwind(|| http_get(port, "/metrics")).ok()?;
        (code == 200).then(|| {
            stackctl_tests::plugins::unlabelled(&text)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect()
        })
    }

    /// Warnings and errors it logged so far, alike lines grouped and counted (camsim's own
    /// output excluded).
    pub fn problems(&mut self) -> Vec<String> {
        let text = match (&self.log, &mut self.stack) {
            (Some(log), _) => std::fs::read_to_string(log).unwrap_or_default(),
            (None, Some((_, up))) => up.log(),
            _ => String::new(),
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines().filter(|l| {
            (l.contains(" WARN ") || l.contains(" ERROR ")) && !l.contains("service=camera")
        }) {
            let body = line.split_once(' ').map_or(line, |x| x.1).trim();
            let key: String = body
                .split_whitespace()
                .filter(|w| !w.starts_with("viewer=") && !w.starts_with("id="))
                .collect::<Vec<_>>()
                .join(" ");
            *counts.entry(key).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(l, n)| format!("{n}x {l}"))
            .collect()
    }

    /// Stops it (stackctl: SIGTERM, and its log read to the end) and returns its warnings.
    pub fn stop(mut self) -> Vec<String> {
        if let Some((_, up)) = &mut self.stack {
            up.signal(15);
            up.wait_exit();
        }
        self.problems()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for mut child in self.str0m.take().into_iter().flatten() {
            stackctl_tests::up::kill(child.id(), 15);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
