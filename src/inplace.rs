//! Reloading in place, for supervisors that track one pid (OpenWrt's procd, runit, s6,
//! daemontools, a container's PID 1): on SIGUSR1 the process they know forks a copy that keeps
//! the connections it has, then re-executes its own binary with the listening sockets. Its pid
//! never changes, so the supervisor sees no exit and starts nothing beside it.
//!
//! The image after the exec serves like any start, and the copies of the old generation are
//! its children: it tells the serving one to drain (SIGINT) once it is ready, and reaps them.
//! If it cannot start (a broken config, a port it cannot bind), it does not exit: it waits
//! here, as the pid the supervisor knows, while the old generation keeps serving, and tries
//! again on the next SIGUSR1.
//!
//! What each failure costs:
//! - a config or start-up error: nothing; the old generation serves on.
//! - the new image dies before it is ready (a crash, SIGKILL): the supervisor sees the pid
//!   exit, as for any crash. The old generation learns it (its parent-death signal), stops
//!   accepting and closes its listening sockets so that the supervisor's fresh start can bind
//!   them, and finishes the requests it has.
//! - the old generation dies: its connections are cut; the new image carries on.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;

use crate::handover::{self, Handed};

/// The environment variables carrying the state across the exec: `PID;FD,FD;S123,D456`, the
/// path executed (so that a binary replaced since is found by its name, not as
/// "/proc/self/exe (deleted)"), and the error log of the image before.
const ENV: &str = "LIGHTD_INPLACE";
const ENV_EXE: &str = "LIGHTD_INPLACE_EXE";
const ENV_LOG: &str = "LIGHTD_INPLACE_LOG";

/// The signals whose arrival during an exec must wait for the new image's handlers: by
/// default they would end the process the supervisor tracks.
const HELD: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1];

/// How long a stopping waiter gives the old generation after SIGTERM before SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A process of an older generation, a child of this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldGen {
    pub pid: u32,
    /// Still accepting: the old generation this image takes over from. The others drain.
    pub serving: bool,
}

/// What a re-executed image got from the image before it.
pub struct InPlace {
    /// Copies of the listening sockets, kept until this image is ready, so that if it fails
    /// the next attempt still has them.
    keep: Vec<OwnedFd>,
    children: Vec<OldGen>,
    /// The error log of the image before, where a failure to start is reported when the new
    /// config names none or cannot be read.
    errorlog: Option<PathBuf>,
    /// What the next attempt executes.
    exe: PathBuf,
    args: Vec<OsString>,
}

fn parse_children(s: &str) -> Vec<OldGen> {
    s.split(',')
        .filter_map(|c| {
            let serving = match c.as_bytes().first() {
                Some(b'S') => true,
                Some(b'D') => false,
                _ => return None,
            };
            let pid = c[1..].parse::<u32>().ok().filter(|&p| p > 1)?;
            Some(OldGen { pid, serving })
        })
        .collect()
}

/// The in-place state handed to this very process, with the listening sockets to start on.
/// The variable is removed so that nothing we start later mistakes it for its own.
pub fn take() -> Option<(InPlace, Vec<Handed>)> {
    let v = std::env::var(ENV).ok();
    let exe = std::env::var_os(ENV_EXE).map(PathBuf::from);
    let errorlog = std::env::var_os(ENV_LOG)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    for k in [ENV, ENV_EXE, ENV_LOG] {
        std::env::remove_var(k);
    }
    let v = v?;
    let mut parts = v.splitn(3, ';');
    let pid = parts.next()?.parse::<u32>().ok()?;
    if pid != std::process::id() {
        return None;
    }
    let fds = parts.next()?;
    let children = parse_children(parts.next()?);
    let exe = exe.or_else(|| std::env::current_exe().ok())?;
    let mut keep = Vec::new();
    let mut handed = Vec::new();
    for fd in fds.split(',').filter_map(|f| f.parse::<RawFd>().ok()) {
        if fd < 3 || keep.len() >= handover::MAX_FDS {
            continue;
        }
        handover::set_cloexec(fd);
        let Some(addr) = handover::sockaddr_of(fd) else {
            log::warn!(
                "in-place reload: descriptor {} is not a listening socket",
                fd
            );
            continue;
        };
        // SAFETY: the image before us left this descriptor open for us.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        match owned.try_clone() {
            Ok(copy) => handed.push(Handed { fd: copy, addr }),
            Err(e) => log::warn!("in-place reload: duplicating descriptor {}: {}", fd, e),
        }
        keep.push(owned);
    }
    Some((
        InPlace {
            keep,
            children,
            errorlog,
            exe,
            args: std::env::args_os().skip(1).collect(),
        },
        handed,
    ))
}

impl InPlace {
    /// The state of an image whose exec of `exe` failed: it waits as a failed new image
    /// would.
    pub fn new(
        keep: Vec<OwnedFd>,
        children: Vec<OldGen>,
        exe: PathBuf,
        args: Vec<OsString>,
    ) -> InPlace {
        InPlace {
            keep,
            children,
            errorlog: None,
            exe,
            args,
        }
    }

    /// The binary this image was executed from, by the name it was executed with.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Where the image before logged, for reporting a failed start.
    pub fn errorlog(&self) -> Option<&Path> {
        self.errorlog.as_deref()
    }

    /// This image serves now: the old generation drains. Returns every old generation's pid,
    /// for the server to reap.
    pub fn ready(self) -> Vec<u32> {
        let serving: Vec<String> = self
            .children
            .iter()
            .filter(|c| c.serving)
            .map(|c| c.pid.to_string())
            .collect();
        log::info!(
            "reload: this image is ready; the old generation (pid {}) drains",
            serving.join(", ")
        );
        for c in self.children.iter().filter(|c| c.serving) {
            // SAFETY: a child of ours that we have not reaped, so the pid is still ours.
            unsafe { libc::kill(c.pid as libc::pid_t, libc::SIGINT) };
        }
        self.children.iter().map(|c| c.pid).collect()
    }
}

fn held_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in HELD {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Hold the stop, reload and log signals until the next image has its handlers. The mask and
/// pending signals survive exec; the handlers do not.
pub fn hold_signals() {
    let set = held_set();
    // SAFETY: valid pointers; one thread.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Deliver the signals held across an exec, now that handlers are installed. With `fold`, a
/// SIGUSR1 that arrived during the reload is folded into it rather than starting another;
/// returns true if there was one.
pub fn release_signals(fold: bool) -> bool {
    let set = held_set();
    let mut folded = false;
    if fold {
        // SAFETY: sigset_t is plain data, filled by sigpending.
        let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers.
        let usr1 = unsafe {
            libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, libc::SIGUSR1) == 1
        };
        if usr1 {
            // SAFETY: as above; a zero timeout takes the pending signal without waiting.
            unsafe {
                let mut one: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut one);
                libc::sigaddset(&mut one, libc::SIGUSR1);
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                folded = libc::sigtimedwait(&one, std::ptr::null_mut(), &zero) == libc::SIGUSR1;
            }
        }
    }
    // SAFETY: valid pointers; one thread.
    unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    folded
}

/// Replace this process's image with `exe`, passing it the listening sockets `fds` (left
/// where they are) and the old generations. Call with the signals held. Returns only on
/// failure, with the descriptors as they were.
pub fn exec(exe: &Path, args: &[OsString], fds: &[RawFd], children: &[OldGen]) -> io::Error {
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let built = (|| -> io::Result<(CString, Vec<CString>, CString, CString)> {
        let path = cstr(exe.as_os_str().as_bytes())?;
        let mut argv = vec![path.clone()];
        for a in args {
            argv.push(cstr(a.as_bytes())?);
        }
        let fd_list: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
        let kids: Vec<String> = children
            .iter()
            .map(|c| format!("{}{}", if c.serving { 'S' } else { 'D' }, c.pid))
            .collect();
        let log = crate::log::errorlog_path()
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_default();
        let value = format!(
            "{};{};{}",
            std::process::id(),
            fd_list.join(","),
            kids.join(",")
        );
        Ok((path, argv, cstr(value.as_bytes())?, cstr(&log)?))
    })();
    let (path, argv, value, log) = match built {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    for &fd in fds {
        // SAFETY: fcntl on descriptors we own; clearing close-on-exec only for the exec.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
        }
    }
    let vars = [(ENV, &value), (ENV_EXE, &path), (ENV_LOG, &log)]
        .map(|(k, v)| (CString::new(k).unwrap_or_default(), v));
    // SAFETY: one thread, so changing the environment races with nothing; execv receives
    // NUL-terminated strings and a null-terminated vector that outlive the call.
    let err = unsafe {
        for (k, v) in &vars {
            libc::setenv(k.as_ptr(), v.as_ptr(), 1);
        }
        libc::execv(path.as_ptr(), ptrs.as_ptr());
        let err = io::Error::last_os_error();
        for (k, _) in &vars {
            libc::unsetenv(k.as_ptr());
        }
        err
    };
    for &fd in fds {
        handover::set_cloexec(fd);
    }
    err
}

/// A failed in-place start, or an exec that failed: stay alive as the pid the supervisor
/// knows while the old generation serves. SIGUSR1 tries the reload again; SIGINT, SIGTERM and
/// SIGHUP are passed on. Returns the exit code once no old generation serves any more (after
/// a stop, or if it died: then the supervisor should start lightd afresh).
pub fn wait(mut ip: InPlace) -> i32 {
    match wait_loop(&mut ip) {
        Ok(code) => code,
        Err(e) => {
            // Without a loop we cannot pass signals on; leave the old generation in charge
            // of itself (it drains when we are gone) and let the supervisor start afresh.
            log::error!("in-place reload: waiting for the old generation: {}", e);
            1
        }
    }
}

fn reap(children: &mut Vec<OldGen>) -> Option<bool> {
    let mut serving_ended_cleanly = None;
    children.retain(|c| {
        let mut status = 0;
        // SAFETY: waiting without blocking for a child of ours.
        let r = unsafe { libc::waitpid(c.pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if r == 0 {
            return true;
        }
        if c.serving {
            let clean = r > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            serving_ended_cleanly = Some(clean);
        }
        false
    });
    serving_ended_cleanly
}

fn signal_all(children: &[OldGen], sig: libc::c_int, only_serving: bool) {
    for c in children.iter().filter(|c| c.serving || !only_serving) {
        // SAFETY: children of ours, not yet reaped.
        unsafe { libc::kill(c.pid as libc::pid_t, sig) };
    }
}

fn wait_loop(ip: &mut InPlace) -> io::Result<i32> {
    const SIGNALS: Token = Token(0);
    let mut poll = Poll::new()?;
    let mut signals = Signals::new([
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGCHLD,
    ])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;
    release_signals(true);
    let mut events = Events::with_capacity(8);
    // When stopping: Some(deadline after which the old generation is killed).
    let mut stopping: Option<Option<Instant>> = None;
    let mut last_code = 0;
    loop {
        if let Some(clean) = reap(&mut ip.children) {
            last_code = if clean { 0 } else { 1 };
        }
        if !ip.children.iter().any(|c| c.serving) {
            if stopping.is_none() {
                log::error!(
                    "in-place reload: the old generation ended and no new one serves; exiting \
                     so that the supervisor starts lightd afresh"
                );
                return Ok(1);
            }
            if ip.children.is_empty() {
                return Ok(last_code);
            }
        }
        if let Some(Some(deadline)) = stopping {
            if Instant::now() >= deadline {
                signal_all(&ip.children, libc::SIGKILL, false);
                stopping = Some(None);
            }
        }
        // SIGCHLD wakes us; the second is a safety net for one that was coalesced.
        match poll.poll(&mut events, Some(Duration::from_secs(1))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let sigs: Vec<i32> = signals.pending().collect();
        for sig in sigs {
            match sig {
                libc::SIGINT if stopping.is_none() => {
                    log::info!("SIGINT: the old generation drains, then this process exits");
                    // Our copies would keep the port open with nobody accepting.
                    ip.keep.clear();
                    signal_all(&ip.children, libc::SIGINT, true);
                    stopping = Some(None);
                }
                libc::SIGINT | libc::SIGTERM => {
                    ip.keep.clear();
                    signal_all(&ip.children, libc::SIGTERM, false);
                    stopping = Some(Some(Instant::now() + STOP_WAIT));
                }
                libc::SIGHUP => signal_all(&ip.children, libc::SIGHUP, false),
                libc::SIGUSR1 if stopping.is_none() => {
                    log::info!("SIGUSR1: trying the reload again");
                    let fds: Vec<RawFd> = ip.keep.iter().map(|f| f.as_raw_fd()).collect();
                    hold_signals();
                    let e = exec(&ip.exe, &ip.args, &fds, &ip.children);
                    release_signals(false);
                    log::error!("reload failed: executing {}: {}", ip.exe.display(), e);
                }
                _ => {}
            }
        }
    }
}
