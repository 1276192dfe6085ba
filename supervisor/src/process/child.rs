//! A running (or finished) child: its exit, its signals, and stopping its whole group.

use std::io;
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};

use super::exit::{Exit, ExitClass, classify};
use super::output;
use super::reaper::Spawned;
use super::ring::LogRing;
use stackctl_config::OutputLevel;

/// How long [`Child::stop`] waits for the leader after SIGKILL (only a process in
/// uninterruptible sleep, e.g. stuck on a dead NFS mount or a driver, takes long).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How long [`Child::stop`] keeps SIGKILLing stragglers before reporting a non-empty group.
const STRAGGLER_WAIT: Duration = Duration::from_secs(1);

/// A child process spawned by [`Reaper::spawn`](super::Reaper::spawn): the leader of its own
/// session and process group.
///
/// Dropping it neither waits nor kills: the process runs on (stop it first), the reaper still
/// reaps it, and its output readers end on their own (see [`output`]).
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    exit: watch::Receiver<Option<Exit>>,
    /// The output readers (awaited only by tests; they end on their own).
    #[cfg_attr(not(test), allow(dead_code))]
    readers: Vec<JoinHandle<()>>,
    stop_requested: Option<Signal>,
    group_gone: bool,
}

/// What [`Child::stop`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopReport {
    /// How the leader ended; `None` if it survived even SIGKILL for 5 s (uninterruptible sleep:
    /// [`Child::wait`] will still see it end).
    pub exit: Option<Exit>,
    /// `exit` classified against our stop request.
    pub class: Option<ExitClass>,
    /// Whether SIGKILL was needed, for the leader or for stragglers left in its group.
    pub killed: bool,
    /// Whether the group ended empty (every member dead and reaped). `false` means some member
    /// survived SIGKILL for a second; members that left the group with `setsid` are not seen.
    pub group_empty: bool,
}

impl Child {
    /// Wraps a just-forked child and starts its output readers; kills it if they cannot start.
    pub(super) fn start(
        name: &str,
        stderr_level: OutputLevel,
        spawned: Spawned,
        logs: Arc<LogRing>,
    ) -> io::Result<Child> {
        let Spawned {
            pid,
            stdout,
            stderr,
            exit,
        } = spawned;
        let name: Arc<str> = name.into();
        let readers = match output::start(&name, stderr_level, stdout, stderr, &logs, &exit) {
            Ok(readers) => readers,
            Err(err) => {
                let _ = killpg(pid, Signal::SIGKILL);
                return Err(err);
            }
        };
        Ok(Child {
            pid,
            exit,
            readers,
            stop_requested: None,
            group_gone: false,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// Its exit, if the reaper has seen it.
    pub fn try_exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Waits until it has exited. Cancel-safe, and may be called any number of times.
    ///
    /// Returns as soon as the reaper reaps it, whatever its descendants do with its pipes.
    pub async fn wait(&self) -> Exit {
        let mut exit = self.exit.clone();
        let seen = exit
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|seen| *seen);
        match seen {
            Some(exit) => exit,
            // The reaper never drops a waiter before delivering its exit.
            None => std::future::pending().await,
        }
    }

    /// The signal of our stop request, if [`stop`](Self::stop) was called before it exited;
    /// what [`classify`] needs.
    #[cfg(test)]
    pub fn stop_requested(&self) -> Option<Signal> {
        self.stop_requested
    }

    /// Sends `sig` to its whole process group. Fails with ESRCH once the group is empty.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        if self.group_gone {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(killpg(self.pid, sig)?)
    }

    /// Stops the whole process group: sends `sig` to it, waits up to `timeout` for the leader
    /// to exit, then SIGKILLs the group and waits again. Members left behind by the leader get
    /// what remains of `timeout` to go, then SIGKILL too; the report says whether the group
    /// ended empty.
    ///
    /// Works on a child that already exited too (its stragglers are stopped). Descendants that
    /// moved to their own session or group are out of reach: only a cgroup could follow them.
    pub async fn stop(&mut self, sig: Signal, timeout: Duration) -> StopReport {
        let deadline = Instant::now() + timeout;
        if self.try_exit().is_none() {
            self.stop_requested = Some(sig);
        }
        let mut killed = false;
        if !self.group_gone {
            let _ = killpg(self.pid, sig);
        }
        let mut exit = tokio::time::timeout_at(deadline, self.wait()).await.ok();
        if exit.is_none() {
            killed = true;
            let _ = killpg(self.pid, Signal::SIGKILL);
            exit = tokio::time::timeout(KILL_WAIT, self.wait()).await.ok();
        }
        let mut group_empty = self.group_gone || self.group_empties_by(deadline, false).await;
        if !group_empty {
            killed = true;
            let until = Instant::now() + STRAGGLER_WAIT;
            group_empty = self.group_empties_by(until, true).await;
        }
        self.group_gone = group_empty;
        StopReport {
            exit,
            class: exit.map(|exit| classify(exit, self.stop_requested)),
            killed,
            group_empty,
        }
    }

    /// Waits until the output readers have ended: at EOF, or shortly after the exit (see
    /// [`output`]). Cancel-safe.
    #[cfg(test)]
    pub async fn drained(&mut self) {
        while let Some(reader) = self.readers.last_mut() {
            let _ = reader.await;
            self.readers.pop();
        }
    }

    /// Polls (bounded by `until`) until no process is left in the group, SIGKILLing it on every
    /// round if `kill`. Zombies count as members, so empty also means reaped.
    async fn group_empties_by(&self, until: Instant, kill_each_round: bool) -> bool {
        let group = Pid::from_raw(-self.pid.as_raw());
        let mut pause = Duration::from_millis(1);
        loop {
            if kill_each_round {
                let _ = killpg(self.pid, Signal::SIGKILL);
            }
            if kill(group, None) == Err(Errno::ESRCH) {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
