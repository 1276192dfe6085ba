//! What to run, and the `Command` that runs it: its own session, death with `stackctl`, stdin
//! from /dev/null, stdout and stderr to pipes.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::{Pid, getppid, setsid};

/// One service's command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    /// The service's name, for logs.
    pub name: String,
    /// The program: a path, or a name looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments, without the program name.
    pub args: Vec<String>,
    /// Variables added to (or replacing those of) `stackctl`'s environment.
    /// `PYTHONUNBUFFERED=1` is added unless this sets `PYTHONUNBUFFERED`: a Python service
    /// writing to a pipe would otherwise hold its output in a 8 KiB buffer.
    pub env: Vec<(String, String)>,
    /// The working directory; `stackctl`'s if `None`.
    pub cwd: Option<PathBuf>,
    /// The level its standard error is logged at (standard output: always INFO).
    pub stderr_level: stackctl_config::OutputLevel,
}

impl ProcessSpec {
    /// The `Command` for this spec. Spawn it only on the reaper thread (see the module doc).
    #[allow(unsafe_code)]
    pub(super) fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !self.env.iter().any(|(key, _)| key == "PYTHONUNBUFFERED") {
            command.env("PYTHONUNBUFFERED", "1");
        }
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let parent = Pid::this();
        // SAFETY: the closure runs in the forked child of a multi-threaded process, where only
        // async-signal-safe functions may be called. `in_child` makes only the system calls
        // setsid, sigprocmask, prctl and getppid (plus sigemptyset on a local set); its errors
        // are `io::Error::from_raw_os_error` (via `From<Errno>`), which does not allocate. It
        // takes no lock and touches no memory shared with other threads. On error std writes the
        // errno to its status pipe and calls `_exit`.
        unsafe {
            command.pre_exec(move || in_child(parent));
        }
        command
    }
}

/// Runs in the child between fork and exec.
fn in_child(parent: Pid) -> io::Result<()> {
    // A new session and process group led by the child: `killpg(pid)` reaches all of it, and
    // the terminal's ^C (sent to the foreground group) reaches `stackctl` only, which stops the
    // services in order.
    setsid()?;
    // std keeps the forking thread's signal mask, and stackctl blocks SIGINT and SIGTERM in all
    // its threads (`signals.rs`) to wait for them with `sigwait`: left blocked, a service would
    // never see our SIGTERM and every stop would end in SIGKILL.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    // No child outlives a crashed `stackctl`: SIGKILL when the thread that forked us (the
    // reaper thread, which lives as long as the process) dies.
    prctl::set_pdeathsig(Signal::SIGKILL)?;
    // ... unless it died before the prctl: then we were already reparented.
    if getppid() != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use nix::sys::signal::pthread_sigmask;

    use super::*;

    fn env_of(spec: &ProcessSpec, key: &str) -> Option<String> {
        spec.command()
            .get_envs()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
    }

    #[test]
    fn pythonunbuffered_is_set_unless_the_spec_sets_it() {
        let mut spec = ProcessSpec {
            program: "python3".into(),
            ..ProcessSpec::default()
        };
        assert_eq!(env_of(&spec, "PYTHONUNBUFFERED").as_deref(), Some("1"));
        spec.env.push(("PYTHONUNBUFFERED".into(), "0".into()));
        assert_eq!(env_of(&spec, "PYTHONUNBUFFERED").as_deref(), Some("0"));
    }

    #[test]
    fn the_child_starts_with_no_signal_blocked() {
        // `signals.rs` blocks SIGINT and SIGTERM in every thread of stackctl, and std's
        // `Command` keeps the forking thread's mask: a service would never see our SIGTERM.
        let spec = ProcessSpec {
            program: "grep".into(),
            args: vec!["SigBlk".into(), "/proc/self/status".into()],
            ..ProcessSpec::default()
        };
        let mut command = spec.command();
        let out = std::thread::spawn(move || {
            let mut blocked = SigSet::empty();
            blocked.add(Signal::SIGTERM);
            blocked.add(Signal::SIGINT);
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).unwrap();
            let mut child = command.spawn().unwrap();
            let mut out = String::new();
            let mut stdout = child.stdout.take().unwrap();
            stdout.read_to_string(&mut out).unwrap();
            // Not waited for: that is the reaper's job, if one runs in this test binary.
            drop(child);
            out
        })
        .join()
        .unwrap();
        assert_eq!(out.trim_end(), "SigBlk:\t0000000000000000");
    }
}
