//! How a child ended, and what that means for the supervisor.

use std::fmt;

use nix::sys::signal::Signal;

/// How a child process ended, as reported by `waitpid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// It called `exit` with this code (0..=255).
    Code(i32),
    /// It was killed by this signal number (a raw number: real-time signals have no [`Signal`]).
    Signal(i32),
}

impl Exit {
    /// Decodes a raw `waitpid` status; `None` for stop/continue reports (never requested).
    pub(super) fn from_wait_status(status: libc::c_int) -> Option<Exit> {
        if libc::WIFEXITED(status) {
            Some(Exit::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Exit::Signal(libc::WTERMSIG(status)))
        } else {
            None
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(sig) => match Signal::try_from(sig) {
                Ok(sig) => write!(f, "killed by {sig}"),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
        }
    }
}

/// What an [`Exit`] means for the restart policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitClass {
    /// Exit code 0 without a stop request: the service finished its work.
    Success,
    /// Anything else nobody asked for: a non-zero code, or death by any signal (a crash is not
    /// a success just because the process did not choose its exit code, Horust #121).
    Failure,
    /// The service ended cleanly because we asked it to stop.
    Stopped,
}

/// Classifies `exit`, given the signal of our stop request if we made one before it exited.
///
/// After a stop request with signal `N`, a clean stop is: exit code 0, death by `N` or by
/// SIGKILL (our escalation), or exit code `128 + N` / `128 + 9` (a shell or a wrapper such as
/// `uv run` reports its child's death that way: `sh` scripts exit 143 after SIGTERM,
/// process-compose #506). Any other ending after a stop request is still a failure: a service
/// that crashes or exits 1 while shutting down has a bug worth seeing.
pub fn classify(exit: Exit, stop: Option<Signal>) -> ExitClass {
    let Some(stop) = stop else {
        return match exit {
            Exit::Code(0) => ExitClass::Success,
            _ => ExitClass::Failure,
        };
    };
    let ours = |sig: i32| sig == stop as i32 || sig == Signal::SIGKILL as i32;
    match exit {
        Exit::Code(0) => ExitClass::Stopped,
        Exit::Code(code) if code > 128 && ours(code - 128) => ExitClass::Stopped,
        Exit::Signal(sig) if ours(sig) => ExitClass::Stopped,
        _ => ExitClass::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExitClass::{Failure, Stopped, Success};
    use nix::sys::signal::Signal::{SIGINT, SIGKILL, SIGSEGV, SIGTERM};

    #[test]
    fn classification_table() {
        let table: &[(Exit, Option<Signal>, ExitClass)] = &[
            // Nobody asked it to stop.
            (Exit::Code(0), None, Success),
            (Exit::Code(3), None, Failure),
            (Exit::Code(143), None, Failure),
            (Exit::Signal(SIGTERM as i32), None, Failure),
            (Exit::Signal(SIGKILL as i32), None, Failure),
            (Exit::Signal(SIGSEGV as i32), None, Failure),
            (Exit::Signal(34), None, Failure),
            // We asked it to stop with SIGTERM.
            (Exit::Code(0), Some(SIGTERM), Stopped),
            (Exit::Signal(SIGTERM as i32), Some(SIGTERM), Stopped),
            (Exit::Signal(SIGKILL as i32), Some(SIGTERM), Stopped),
            (Exit::Code(143), Some(SIGTERM), Stopped),
            (Exit::Code(137), Some(SIGTERM), Stopped),
            (Exit::Code(130), Some(SIGTERM), Failure),
            (Exit::Code(1), Some(SIGTERM), Failure),
            (Exit::Code(128), Some(SIGTERM), Failure),
            (Exit::Signal(SIGSEGV as i32), Some(SIGTERM), Failure),
            (Exit::Signal(SIGINT as i32), Some(SIGTERM), Failure),
            // We asked it to stop with SIGINT.
            (Exit::Code(130), Some(SIGINT), Stopped),
            (Exit::Signal(SIGINT as i32), Some(SIGINT), Stopped),
            (Exit::Code(143), Some(SIGINT), Failure),
        ];
        for &(exit, stop, want) in table {
            assert_eq!(classify(exit, stop), want, "{exit:?} after stop {stop:?}");
        }
    }

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(Exit::from_wait_status(3 << 8), Some(Exit::Code(3)));
        assert_eq!(Exit::from_wait_status(9), Some(Exit::Signal(9)));
        assert_eq!(Exit::from_wait_status(11 | 0x80), Some(Exit::Signal(11)));
        assert_eq!(Exit::from_wait_status(0x137f), None); // stopped by SIGSTOP
    }

    #[test]
    fn displays_signal_names() {
        assert_eq!(Exit::Code(3).to_string(), "exited with code 3");
        assert_eq!(Exit::Signal(11).to_string(), "killed by SIGSEGV");
        assert_eq!(Exit::Signal(34).to_string(), "killed by signal 34");
    }
}
