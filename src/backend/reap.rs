//! Children whose job is over: a CGI script that finished (waiting to be reaped) or whose
//! client went away (stopped with SIGTERM, then SIGKILL if it lingers). The loop calls
//! [`reap`] on SIGCHLD and on its tick, so no zombie stays.
//!
//! Each pid is waited for by itself (`waitpid(pid, WNOHANG)`), never with `waitpid(-1)`: that
//! would also collect the worker processes and generations the server tracks on its own.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// A child stopped with SIGTERM gets this long before SIGKILL.
const KILL_AFTER: Duration = Duration::from_secs(5);

struct Gone {
    pid: libc::pid_t,
    /// When SIGTERM was sent, if it was.
    termed: Option<Instant>,
    killed: bool,
}

thread_local! {
    // One thread runs the loop and every job: a list per thread is the list.
    static GONE: RefCell<Vec<Gone>> = const { RefCell::new(Vec::new()) };
}

/// A job let go of its child: stop it (unless `finished`, when it closed its output and is
/// exiting by itself) and reap it later.
pub fn release(pid: libc::pid_t, finished: bool) {
    let termed = if finished {
        None
    } else {
        // SAFETY: plain syscall; the pid is our unreaped child, so it cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        Some(Instant::now())
    };
    GONE.with(|g| {
        g.borrow_mut().push(Gone {
            pid,
            termed,
            killed: false,
        })
    });
    // It may be gone already: collect it now rather than at the next tick.
    reap(Instant::now());
}

/// The job ended early: stop its child.
pub fn abandon(pid: libc::pid_t) {
    release(pid, false)
}

/// Collect the children that ended, and SIGKILL those that outstayed their SIGTERM.
pub fn reap(now: Instant) {
    GONE.with(|g| {
        g.borrow_mut().retain_mut(|c| {
            let mut status = 0;
            // SAFETY: valid pointer; WNOHANG never blocks.
            let r = unsafe { libc::waitpid(c.pid, &mut status, libc::WNOHANG) };
            if r == c.pid
                || (r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
            {
                return false;
            }
            if !c.killed
                && c.termed
                    .is_some_and(|t| now.duration_since(t) >= KILL_AFTER)
            {
                // SAFETY: still our unreaped child.
                unsafe { libc::kill(c.pid, libc::SIGKILL) };
                c.killed = true;
            }
            true
        })
    });
}

/// Children not reaped yet (the loop keeps ticking while there are any).
pub fn pending() -> usize {
    GONE.with(|g| g.borrow().len())
}
