//! The reaper thread: forks every child, reaps every child and orphan, and hands each managed
//! child's exit to its [`Child`] handle.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, mpsc as std_mpsc};
use std::time::Duration;

use nix::sys::prctl;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

use super::child::Child;
use super::exit::Exit;
use super::ring::LogRing;
use super::spawn::ProcessSpec;

/// The reaper of the process, once started.
static REAPER: Mutex<Option<Arc<Reaper>>> = Mutex::new(None);

/// The one owner of every `fork` and every `wait` of the process (see the module doc for why
/// there is one and why it has its own thread).
#[derive(Debug)]
pub struct Reaper {
    requests: mpsc::UnboundedSender<Request>,
}

/// A fork request to the reaper thread.
struct Request {
    command: Command,
    reply: oneshot::Sender<io::Result<Spawned>>,
}

/// A child just forked, registered with the reaper.
pub(super) struct Spawned {
    /// Its pid, also its process group and session id.
    pub(super) pid: Pid,
    /// The read end of its stdout.
    pub(super) stdout: OwnedFd,
    /// The read end of its stderr.
    pub(super) stderr: OwnedFd,
    /// `Some` once it has been reaped.
    pub(super) exit: watch::Receiver<Option<Exit>>,
}

impl Reaper {
    /// The reaper of this process, started on first call: makes the process a child subreaper
    /// and starts the `reaper` thread. Later calls (from any thread or runtime) return the same.
    ///
    /// Nothing else in the process may wait for a child once this is called.
    pub fn start() -> io::Result<Arc<Reaper>> {
        let mut slot = REAPER.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reaper) = &*slot {
            return Ok(Arc::clone(reaper));
        }
        prctl::set_child_subreaper(true)?;
        let (requests, received) = mpsc::unbounded_channel();
        let (ready, started) = std_mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || run(received, ready))?;
        started
            .recv()
            .map_err(|_| io::Error::other("the reaper thread died while starting"))??;
        let reaper = Arc::new(Reaper { requests });
        *slot = Some(Arc::clone(&reaper));
        Ok(reaper)
    }

    /// Starts `spec` (see [`ProcessSpec`]) with its output going to `logs`.
    ///
    /// Returns once the program is running (`exec` succeeded), or the error of `fork`, `exec`
    /// or the child's setup (a missing program is `NotFound`). Must be called within a tokio
    /// runtime with IO enabled: the output readers run on it. Cancel-safe: if this future is
    /// dropped after the fork, the reaper kills the child nobody will own.
    pub async fn spawn(&self, spec: &ProcessSpec, logs: Arc<LogRing>) -> io::Result<Child> {
        let (reply, replied) = oneshot::channel();
        let request = Request {
            command: spec.command(),
            reply,
        };
        self.requests.send(request).map_err(|_| reaper_gone())?;
        let spawned = replied.await.map_err(|_| reaper_gone())??;
        Child::start(&spec.name, spec.stderr_level, spawned, logs)
    }
}

fn reaper_gone() -> io::Error {
    io::Error::other("the reaper thread is gone")
}

/// The reaper thread. It never returns once started: its death would SIGKILL every child
/// (their parent-death signal is tied to the thread that forked them).
fn run(
    mut requests: mpsc::UnboundedReceiver<Request>,
    ready: std_mpsc::SyncSender<io::Result<()>>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    runtime.block_on(async move {
        let mut sigchld = match signal(SignalKind::child()) {
            Ok(sigchld) => sigchld,
            Err(err) => {
                let _ = ready.send(Err(err));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let mut waiters = HashMap::new();
        loop {
            // SIGCHLDs coalesce, so every wake-up reaps until nothing is left. A child forked
            // below is registered before this runs again, so its exit always finds its waiter.
            reap(&mut waiters);
            tokio::select! {
                biased;
                Some(()) = sigchld.recv() => {}
                Some(request) = requests.recv() => fork(request, &mut waiters),
                // Cannot happen (the runtime outlives the signal stream, and `REAPER` holds a
                // sender forever); poll rather than end the thread.
                else => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
}

type Waiters = HashMap<libc::pid_t, watch::Sender<Option<Exit>>>;

/// Forks `request.command` and registers the child.
fn fork(request: Request, waiters: &mut Waiters) {
    let Request { mut command, reply } = request;
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let _ = reply.send(Err(err));
            return;
        }
    };
    let pid = Pid::from_raw(child.id() as libc::pid_t);
    let (delivered, exit) = watch::channel(None);
    waiters.insert(pid.as_raw(), delivered);
    tracing::debug!(pid = pid.as_raw(), program = ?command.get_program(), "spawned");
    let pipes = (child.stdout.take(), child.stderr.take());
    // Dropping std's handle neither waits nor kills.
    drop(child);
    let (Some(stdout), Some(stderr)) = pipes else {
        // Cannot happen: both are piped.
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = reply.send(Err(io::Error::other("the child's pipes are missing")));
        return;
    };
    let spawned = Spawned {
        pid,
        stdout: stdout.into(),
        stderr: stderr.into(),
        exit,
    };
    if reply.send(Ok(spawned)).is_err() {
        tracing::debug!(
            pid = pid.as_raw(),
            "the spawn was cancelled: killing the child"
        );
        let _ = killpg(pid, Signal::SIGKILL);
    }
}

/// Reaps every child that has exited: managed children's exits go to their waiters, orphans
/// (grandchildren reparented to us) are only logged.
#[allow(unsafe_code)]
fn reap(waiters: &mut Waiters) {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a live, writable `c_int` for the duration of the call, and waitpid
        // writes nothing else. (libc rather than nix: nix turns a death by a real-time signal
        // into an error *after* reaping the child, and its status would be lost.)
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == 0 {
            return; // children left, none exited
        }
        if pid < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return; // ECHILD: no children at all
        }
        let Some(exit) = Exit::from_wait_status(status) else {
            continue;
        };
        match waiters.remove(&pid) {
            Some(waiter) => {
                tracing::debug!(pid, "child {exit}");
                waiter.send_replace(Some(exit));
            }
            None => tracing::debug!(pid, "reaped orphan: {exit}"),
        }
    }
}
