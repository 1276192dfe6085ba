//! The process layer: every child process of `stackctl` is spawned, waited for, stopped and read
//! here, and nowhere else.
//!
//! # One owner of every wait
//!
//! `stackctl` is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a service that double-forks
//! leaves its grandchildren to us when the middle process exits, and we must reap them or they
//! stay zombies. Reaping them takes a `waitpid(-1)` loop, and that loop takes *any* child's
//! status, so it must be the only wait in the process: `tokio::process`, `std::process::Child::
//! wait`, `Command::status`/`output` and anything else that waits for a pid would find it gone
//! (ECHILD). Every child therefore goes through [`Reaper::spawn`], including one-shot commands
//! such as exec probes.
//!
//! # The reaper thread
//!
//! [`Reaper::start`] returns the one reaper of the process. It runs on its own thread with its
//! own current-thread tokio runtime, not on the caller's runtime: a task on the caller's runtime
//! would die with it (every `#[tokio::test]` has its own runtime), and the reaper must outlive
//! all of them. Statuses cross runtimes through `tokio::sync::watch`, which needs no runtime.
//!
//! The reaper thread also does the forking. That settles three races at once:
//! - a child that exits at once cannot be lost: it is registered in the same loop iteration that
//!   forked it, before the loop looks at SIGCHLD again;
//! - when `exec` fails, std reaps the failed child with `waitpid(pid)`, which must not race with
//!   our `waitpid(-1)` (std panics if it finds the child gone);
//! - `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. A
//!   child forked on a short-lived thread (tokio's blocking pool retires idle threads after 10 s)
//!   would be SIGKILLed for no reason; the reaper thread lives as long as the process.
//!
//! # Output
//!
//! stdout and stderr are pipes read by two tasks on the caller's runtime ([`output`]). Lines go
//! to `tracing`, to the service's [`LogRing`] (owned by the caller so it survives restarts) and
//! to its followers. **Exit is detected by wait, never by EOF**: a grandchild may hold the pipe
//! open forever. The readers stop on their own at EOF or shortly after the exit (a drain of
//! [`output::DRAIN`] to pick up the last lines).
//!
//! # Stopping
//!
//! Each child leads its own session and process group, and [`Child::stop`] signals the whole
//! group, escalates to SIGKILL after the timeout, and checks that the group ended empty.
//! A descendant that calls `setsid()` or `setpgid()` itself leaves the group and escapes this
//! (only a cgroup can follow it); daemons that "daemonize" do exactly that, so services must run
//! in the foreground.

// The supervisor (`stackctl up`) uses this layer, but not all of it yet: `signal`, `drained`,
// the pgid and start times are for `stackctl` control and the status display to come.

mod child;
mod exit;
pub mod output;
mod reaper;
mod ring;
mod spawn;

#[cfg(test)]
mod tests;

// The API's types, re-exported even where callers only use them without naming them.
#[allow(unused_imports)]
pub use child::{Child, StopReport};
pub use exit::{Exit, ExitClass, classify};
pub use reaper::Reaper;
#[allow(unused_imports)]
pub use ring::{LogLine, LogRing, Stream};
pub use spawn::ProcessSpec;
