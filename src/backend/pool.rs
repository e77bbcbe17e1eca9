//! A FastCGI or SCGI host's own processes (`bin-path`), as lighttpd's gw_backend.c runs them:
//! one listening socket per process, bound here and handed to it as fd 0
//! (FCGI_LISTENSOCK_FILENO); `min-procs` started at once and more, up to `max-procs`, while
//! every one is busier than `max-load-per-proc`; a process that dies restarted; all of them
//! stopped with `kill-signal` at the end. (The config has already made mod_scgi's command
//! line with arguments a `/bin/sh -c exec ...`, as lighttpd does.)
//!
//! Names. lighttpd calls process n's socket `<socket>-<n>`. Here a generation tag goes in
//! between, `<socket>-<tag>-<n>` ([`generation_tag`]: our pid and the start time), because a
//! reload starts the new generation's pool while the old one still serves its requests in
//! flight: with lighttpd's names, the new generation would find the old pool's sockets
//! accepting and use them (that is what lighttpd does with a socket that answers), and lose
//! them when the old generation stops its pool. A fixed name taken over by rename() would not
//! do either: the old generation's requests would then reach the new pool, and the old
//! generation's clean-up would have to tell its file from the new one. With a tag per
//! generation, each generation only ever sees its own sockets, and stopping a pool cannot
//! touch another's. Sockets left by a generation that was killed (its pid gone) are removed
//! when the next pool of the same host starts.
//!
//! TCP hosts keep lighttpd's rule, port + n for process n, and its behaviour when something
//! already accepts there: that is used rather than spawned. When such a process later refuses
//! (an old generation stopped its pool), the pool binds the port itself and spawns, and the
//! request that saw the refusal can try again at once ([`Retry::Now`]).

use std::ffi::{OsStr, OsString};
use std::io;
use std::net::ToSocketAddrs;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket, Type};

use super::env::EnvBuf;
use super::spawn::{self, Ended};
use crate::config::gateway::{Addr, GwHost};

/// How long to wait for a TCP host to answer the is-something-there probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A process that dies is restarted after this long, doubling while it keeps dying young,
/// up to the maximum. lighttpd waits about a second each time; the doubling keeps a
/// crash-looping program from costing a fork a second forever.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(32);
/// A process that lived this long died of something other than its start: it is restarted at
/// once, and its backoff starts over.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// A process told to stop and still there gets `kill-signal` again, then SIGTERM, then
/// SIGKILL, after these times (lighttpd's escalation in gw_restart_dead_proc).
const KILL_STEPS: [(Duration, Option<libc::c_int>); 3] = [
    (Duration::from_secs(4), None),
    (Duration::from_secs(8), Some(libc::SIGTERM)),
    (Duration::from_secs(16), Some(libc::SIGKILL)),
];
/// The longest unix socket path (sun_path less its NUL).
const SUN_PATH_MAX: usize = 107;

/// A tag that tells this generation's sockets from any other's: our pid and the monotonic
/// clock in milliseconds. The pid alone would not do: an in-place reload keeps it.
pub fn generation_tag() -> String {
    // SAFETY: clock_gettime fills the struct we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let ms = (ts.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec as u64 / 1_000_000);
    format!("{}.{}", std::process::id(), ms)
}

/// Where a process of the pool stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Taking requests.
    Running,
    /// Skipped until then: connecting to it failed (lighttpd's "overloaded" state, for
    /// `disable-time`).
    Disabled(Instant),
    /// It ended; restarted from then on, once no request is bound to it.
    Dead(Instant),
    /// Told to stop (the pool is stopping, or it was idle); not reaped yet.
    Killed,
    /// A slot beyond what runs now (min-procs < max-procs).
    Unused,
}

/// What a request whose connection failed should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The process was restarted, or replaced by one of ours: connect to it again now.
    Now,
    /// It is disabled for a while: take another process, or answer 503.
    Elsewhere,
}

#[derive(Debug)]
struct Proc {
    addr: SockAddr,
    /// The socket file we bound, and its identity, so that only ours is ever removed.
    path: Option<PathBuf>,
    inode: Option<(u64, u64)>,
    /// Our child serving this slot; None when not running or when the slot uses something
    /// that was already accepting there.
    pid: Option<u32>,
    /// We spawned it (else it was found accepting, and is not ours to stop).
    local: bool,
    state: State,
    load: u32,
    last_used: Instant,
    started: Instant,
    backoff: Duration,
    killed_at: Option<Instant>,
    kill_step: usize,
}

/// One host's spawned processes. See the module doc.
#[derive(Debug)]
pub struct Pool {
    host: Rc<GwHost>,
    argv: Vec<OsString>,
    cwd: PathBuf,
    env: EnvBuf,
    min: usize,
    procs: Vec<Proc>,
    stopping: bool,
}

impl Pool {
    /// Start `host`'s min-procs processes. `tag` tells this generation's unix sockets from
    /// others' ([`generation_tag`]). Fails, stopping whatever it started, if any of them
    /// cannot start: lighttpd refuses to start then too.
    pub fn start(host: Rc<GwHost>, tag: &str, now: Instant) -> io::Result<Pool> {
        let bin = host
            .bin_path
            .as_ref()
            .filter(|b| b.first().is_some_and(|p| !p.is_empty()))
            .ok_or_else(|| invalid("the host has no bin-path to spawn".into()))?;
        if tag.is_empty()
            || tag.len() > 40
            || !tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.')
        {
            return Err(invalid(format!("unusable generation tag {:?}", tag)));
        }
        let max = (host.max_procs as usize).max(1);
        let min = (host.min_procs as usize).min(max);
        // The process runs in its program's directory, as lighttpd runs it (for a command
        // run through /bin/sh, that is /bin).
        let prog = absolute(Path::new(bin.first().map_or("", |s| s.as_str())))?;
        let cwd = prog
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        let argv: Vec<OsString> = std::iter::once(prog.into_os_string())
            .chain(bin.iter().skip(1).map(OsString::from))
            .collect();

        let mut procs = Vec::with_capacity(max);
        match &host.addr {
            Addr::Unix(base) => {
                remove_stale(base);
                for n in 0..max {
                    let mut p = base.as_os_str().to_owned();
                    p.push(format!("-{}-{}", tag, n));
                    let path = PathBuf::from(p);
                    if path.as_os_str().len() > SUN_PATH_MAX {
                        return Err(invalid(format!(
                            "socket path {} is too long (a unix socket's is at most {} bytes)",
                            path.display(),
                            SUN_PATH_MAX
                        )));
                    }
                    procs.push(Proc::new(SockAddr::unix(&path)?, Some(path), now));
                }
            }
            Addr::Tcp(h, port) => {
                // Resolved once, as lighttpd does (its lookup would block the loop).
                let ip = (h.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("resolving {}:{}: {}", h, port, e))
                    })?
                    .next()
                    .ok_or_else(|| invalid(format!("{}: no address", h)))?
                    .ip();
                for n in 0..max {
                    let p = u16::try_from(n)
                        .ok()
                        .and_then(|n| port.checked_add(n))
                        .ok_or_else(|| {
                            invalid(format!("port {} + {} processes is past 65535", port, max))
                        })?;
                    let sa = std::net::SocketAddr::new(ip, p);
                    procs.push(Proc::new(SockAddr::from(sa), None, now));
                }
            }
        }
        let mut pool = Pool {
            env: child_env(&host),
            host,
            argv,
            cwd,
            min,
            procs,
            stopping: false,
        };
        for i in 0..min {
            if let Err(e) = pool.spawn_proc(i, now) {
                pool.stop(now);
                return Err(e);
            }
        }
        Ok(pool)
    }

    /// How many slots (max-procs); process indexes run from 0 to this.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Where to connect for process `i`, if it takes requests now.
    pub fn addr(&self, i: usize) -> Option<&SockAddr> {
        self.procs
            .get(i)
            .filter(|p| p.state == State::Running)
            .map(|p| &p.addr)
    }

    pub fn state(&self, i: usize) -> Option<State> {
        self.procs.get(i).map(|p| p.state)
    }

    /// The pid serving slot `i`, when it is our child.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs.get(i).and_then(|p| p.pid)
    }

    /// Our children, for matching a SIGCHLD-driven reap.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.procs.iter().filter_map(|p| p.pid)
    }

    /// The requests bound to process `i` now.
    pub fn load(&self, i: usize) -> u32 {
        self.procs.get(i).map_or(0, |p| p.load)
    }

    /// A request is bound to process `i`.
    pub fn acquire(&mut self, i: usize, now: Instant) {
        if let Some(p) = self.procs.get_mut(i) {
            p.load = p.load.saturating_add(1);
            p.last_used = now;
        }
    }

    /// A request bound to process `i` is done with it.
    pub fn release(&mut self, i: usize, now: Instant) {
        if let Some(p) = self.procs.get_mut(i) {
            p.load = p.load.saturating_sub(1);
            p.last_used = now;
        }
    }

    /// Whether stop() was called and every child of ours has been reaped.
    pub fn is_stopped(&self) -> bool {
        self.stopping && self.procs.iter().all(|p| p.pid.is_none())
    }

    /// With min-procs 0 nothing runs until a request wants it (lighttpd spawns on demand
    /// then): start one process if none takes requests. True if one does now.
    pub fn ensure_running(&mut self, now: Instant) -> bool {
        if self.procs.iter().any(|p| p.state == State::Running) {
            return true;
        }
        if self.stopping {
            return false;
        }
        let slot = self.procs.iter().position(|p| match p.state {
            State::Unused => true,
            State::Dead(at) => at <= now && p.load == 0,
            _ => false,
        });
        match slot {
            Some(i) => match self.spawn_proc(i, now) {
                Ok(()) => true,
                Err(e) => {
                    self.proc_failed(i, &e, now);
                    false
                }
            },
            None => false,
        }
    }

    /// Connecting to process `i` failed with `err`. lighttpd disables it for `disable-time`;
    /// but if it is our child and has died, or it was something else's and now refuses, it is
    /// (re)started here at once, and the caller may connect again.
    pub fn connect_failed(&mut self, i: usize, err: &io::Error, now: Instant) -> Retry {
        if self.stopping {
            return Retry::Elsewhere;
        }
        let Some(p) = self.procs.get_mut(i) else {
            return Retry::Elsewhere;
        };
        if p.state != State::Running {
            // Another request saw it fail first.
            return Retry::Elsewhere;
        }
        let gone = matches!(
            err.raw_os_error(),
            Some(libc::ECONNREFUSED) | Some(libc::ENOENT)
        );
        if p.local {
            if let Some(pid) = p.pid {
                if let Some(how) = spawn::try_wait(pid) {
                    self.proc_ended(i, how, now);
                }
            }
        } else if gone {
            // Whatever was accepting there has stopped: the slot is ours to fill now.
            if let Some(p) = self.procs.get_mut(i) {
                p.state = State::Dead(now);
            }
        }
        let restart = match self.procs.get(i) {
            Some(p) => matches!(p.state, State::Dead(at) if at <= now),
            None => false,
        };
        if restart {
            match self.spawn_proc(i, now) {
                Ok(()) => return Retry::Now,
                Err(e) => self.proc_failed(i, &e, now),
            }
        }
        let disable = self.host.disable_time.max(Duration::from_secs(1));
        if let Some(p) = self.procs.get_mut(i) {
            if p.state == State::Running {
                log::error!(
                    "connecting to {}: {}; disabled for {}s",
                    name(&p.addr),
                    err,
                    disable.as_secs()
                );
                p.state = State::Disabled(now + disable);
            }
        }
        Retry::Elsewhere
    }

    /// The pool's periodic work: reap children that ended, restart dead ones, re-enable
    /// disabled ones, grow and shrink between min-procs and max-procs, and press stopping
    /// ones harder. Call it about once a second, and when SIGCHLD arrives.
    pub fn tick(&mut self, now: Instant) {
        for i in 0..self.procs.len() {
            let Some(p) = self.procs.get(i) else { break };
            if let Some(pid) = p.pid {
                if let Some(how) = spawn::try_wait(pid) {
                    self.proc_ended(i, how, now);
                }
            }
            let Some(p) = self.procs.get_mut(i) else {
                break;
            };
            match p.state {
                State::Disabled(until) if until <= now => {
                    log::info!("{} re-enabled", name(&p.addr));
                    p.state = State::Running;
                }
                State::Dead(at) if at <= now && p.load == 0 && !self.stopping => {
                    if let Err(e) = self.spawn_proc(i, now) {
                        self.proc_failed(i, &e, now);
                    }
                }
                State::Killed => p.press(self.host.kill_signal, now),
                _ => {}
            }
        }
        if !self.stopping && self.min < self.procs.len() {
            self.adapt(now);
        }
    }

    /// lighttpd's adaptive spawning: one more process while every running one is busier
    /// than max-load-per-proc; one fewer (beyond min-procs) after idle-timeout without
    /// requests.
    fn adapt(&mut self, now: Instant) {
        let active = self
            .procs
            .iter()
            .filter(|p| !matches!(p.state, State::Unused | State::Killed))
            .count();
        let limit = self.host.max_load_per_proc;
        let mut running = self.procs.iter().filter(|p| p.state == State::Running);
        let busy = running.clone().next().is_some() && running.all(|p| p.load > limit);
        if busy && active < self.procs.len() {
            if let Some(i) = self.procs.iter().position(|p| p.state == State::Unused) {
                log::info!("all processes busy: starting another");
                if let Err(e) = self.spawn_proc(i, now) {
                    self.proc_failed(i, &e, now);
                }
            }
            return;
        }
        if active > self.min {
            let idle = self.procs.iter_mut().find(|p| {
                p.state == State::Running
                    && p.local
                    && p.load == 0
                    && p.pid.is_some()
                    && now.saturating_duration_since(p.last_used) > self.host.idle_timeout
            });
            if let Some(p) = idle {
                log::info!("{} idle: stopping it", name(&p.addr));
                p.kill(self.host.kill_signal, now);
            }
        }
    }

    /// Stop every process with kill-signal and remove our socket files. Keep calling tick()
    /// until is_stopped(), which reaps them (and escalates to SIGKILL within 16 s).
    pub fn stop(&mut self, now: Instant) {
        self.stopping = true;
        let sig = self.host.kill_signal;
        for p in &mut self.procs {
            if p.pid.is_some() {
                p.kill(sig, now);
            } else {
                p.state = State::Unused;
            }
            if p.local {
                p.remove_socket();
            }
        }
    }

    /// Bind slot `i`'s socket and start its process (or use what already accepts there).
    fn spawn_proc(&mut self, i: usize, now: Instant) -> io::Result<()> {
        let backlog = self.host.listen_backlog.clamp(1, i32::MAX as u32) as i32;
        let Some(p) = self.procs.get_mut(i) else {
            return Err(invalid(format!("no process slot {}", i)));
        };
        match probe(&p.addr) {
            Ok(()) => {
                log::info!(
                    "{} already accepts connections: using it rather than starting {}",
                    name(&p.addr),
                    Path::new(self.argv.first().map_or(OsStr::new(""), |a| a)).display()
                );
                p.pid = None;
                p.local = false;
                p.state = State::Running;
                p.started = now;
                p.last_used = now;
                return Ok(());
            }
            Err(e) => {
                // A stale socket file (a refusal, not "no such file") is removed, as
                // lighttpd does; only a socket, never a file someone put there.
                if e.raw_os_error() != Some(libc::ENOENT) {
                    if let Some(path) = &p.path {
                        let is_socket = std::fs::symlink_metadata(path)
                            .map(|m| m.file_type().is_socket())
                            .unwrap_or(false);
                        if is_socket {
                            let _ = std::fs::remove_file(path);
                        }
                    }
                }
            }
        }
        let sock = bind(&p.addr, backlog)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {}", name(&p.addr), e)))?;
        p.inode = p
            .path
            .as_ref()
            .and_then(|path| std::fs::symlink_metadata(path).ok())
            .map(|m| (m.dev(), m.ino()));
        p.local = true;
        let argv: Vec<&OsStr> = self.argv.iter().map(|a| a.as_os_str()).collect();
        let res = spawn::spawn(
            &argv,
            Some(&self.cwd),
            &self.env,
            [Some(sock.as_fd()), None, None],
        );
        drop(sock);
        let pid = match res {
            Ok(pid) => pid,
            Err(e) => {
                p.remove_socket();
                return Err(e);
            }
        };
        log::info!(
            "started {} (pid {}) on {}",
            name_of(&argv),
            pid,
            name(&p.addr)
        );
        p.pid = Some(pid);
        p.state = State::Running;
        p.started = now;
        p.last_used = now;
        p.killed_at = None;
        p.kill_step = 0;
        Ok(())
    }

    /// Slot `i`'s child ended as `how`.
    fn proc_ended(&mut self, i: usize, how: Ended, now: Instant) {
        let kill_signal = self.host.kill_signal;
        let Some(p) = self.procs.get_mut(i) else {
            return;
        };
        p.pid = None;
        if p.state == State::Killed {
            p.state = State::Unused;
            p.killed_at = None;
            return;
        }
        // What lighttpd logs (gw_proc_waitpid_log): an exit, or a signal we did not send.
        match how {
            Ended::Exited(code) => {
                log::error!("child exited: {} {}", code, name(&p.addr))
            }
            Ended::Signaled(sig)
                if sig != libc::SIGTERM && sig != libc::SIGINT && sig != kill_signal =>
            {
                log::error!("child signalled: {} {}", sig, name(&p.addr))
            }
            _ => {}
        }
        if self.stopping {
            p.state = State::Unused;
            return;
        }
        let lived = now.saturating_duration_since(p.started);
        let at = if lived >= STABLE_AFTER {
            p.backoff = BACKOFF_MIN;
            now
        } else {
            let at = now + p.backoff;
            p.backoff = (p.backoff * 2).min(BACKOFF_MAX);
            at
        };
        p.state = State::Dead(at);
    }

    /// Starting slot `i` failed: try again later, less and less often.
    fn proc_failed(&mut self, i: usize, e: &io::Error, now: Instant) {
        if let Some(p) = self.procs.get_mut(i) {
            log::error!(
                "starting a backend on {}: {}; retrying in {}s",
                name(&p.addr),
                e,
                p.backoff.as_secs()
            );
            p.pid = None;
            p.state = State::Dead(now + p.backoff);
            p.backoff = (p.backoff * 2).min(BACKOFF_MAX);
        }
    }
}

impl Drop for Pool {
    /// A pool dropped without stop() still stops its processes and removes its sockets;
    /// their reaping is left to the process's end.
    fn drop(&mut self) {
        if !self.stopping {
            self.stop(Instant::now());
        }
    }
}

impl Proc {
    fn new(addr: SockAddr, path: Option<PathBuf>, now: Instant) -> Proc {
        Proc {
            addr,
            path,
            inode: None,
            pid: None,
            local: false,
            state: State::Unused,
            load: 0,
            last_used: now,
            started: now,
            backoff: BACKOFF_MIN,
            killed_at: None,
            kill_step: 0,
        }
    }

    fn kill(&mut self, sig: libc::c_int, now: Instant) {
        if let Some(pid) = self.pid {
            spawn::signal(pid, sig);
            self.state = State::Killed;
            self.killed_at = Some(now);
            self.kill_step = 0;
        }
    }

    /// A process that was told to stop and has not: tell it again, harder.
    fn press(&mut self, kill_signal: libc::c_int, now: Instant) {
        let (Some(pid), Some(at)) = (self.pid, self.killed_at) else {
            return;
        };
        let waited = now.saturating_duration_since(at);
        while let Some(&(after, sig)) = KILL_STEPS.get(self.kill_step) {
            if waited < after {
                break;
            }
            spawn::signal(pid, sig.unwrap_or(kill_signal));
            self.kill_step += 1;
        }
    }

    /// Remove the socket file we bound, if it is still the one we bound.
    fn remove_socket(&mut self) {
        let (Some(path), Some(id)) = (&self.path, self.inode.take()) else {
            return;
        };
        let same = std::fs::symlink_metadata(path)
            .map(|m| (m.dev(), m.ino()) == id)
            .unwrap_or(false);
        if same {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The environment of a spawned process, as lighttpd makes it: lightd's own, or only the
/// variables bin-copy-environment names when it names any; then bin-environment's (which
/// win); then PHP_FCGI_CHILDREN=1 unless set, so that PHP does not fork children of its own
/// behind each socket.
fn child_env(host: &GwHost) -> EnvBuf {
    fn set(pairs: &mut Vec<(OsString, OsString)>, k: OsString, v: OsString) {
        match pairs.iter_mut().find(|(n, _)| *n == k) {
            Some(p) => p.1 = v,
            None => pairs.push((k, v)),
        }
    }
    let mut pairs: Vec<(OsString, OsString)> = Vec::new();
    if host.bin_copy_env.is_empty() {
        for (k, v) in std::env::vars_os() {
            set(&mut pairs, k, v);
        }
    } else {
        for k in &host.bin_copy_env {
            if let Some(v) = std::env::var_os(k) {
                set(&mut pairs, k.into(), v);
            }
        }
    }
    for (k, v) in &host.bin_env {
        set(&mut pairs, k.into(), v.into());
    }
    if !pairs.iter().any(|(k, _)| k == "PHP_FCGI_CHILDREN") {
        set(&mut pairs, "PHP_FCGI_CHILDREN".into(), "1".into());
    }
    let mut env = EnvBuf::new();
    for (k, v) in &pairs {
        env.push(k.as_bytes(), v.as_bytes());
    }
    env
}

/// Whether something accepts connections at `addr` now.
fn probe(addr: &SockAddr) -> io::Result<()> {
    let s = Socket::new(addr.domain(), Type::STREAM, None)?;
    match s.connect_timeout(addr, PROBE_TIMEOUT) {
        // A port in the ephemeral range can connect to itself when nothing listens there
        // (TCP simultaneous open): that is no server.
        Ok(()) if !addr.is_unix() && s.local_addr().ok().as_ref() == Some(addr) => {
            Err(io::Error::from_raw_os_error(libc::ECONNREFUSED))
        }
        Ok(()) => Ok(()),
        // A unix socket whose queue is full: a live process, busy.
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && addr.is_unix() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A listening socket at `addr` (blocking, for the child; close-on-exec until it is dup'ed
/// onto the child's fd 0).
fn bind(addr: &SockAddr, backlog: i32) -> io::Result<Socket> {
    let s = Socket::new(addr.domain(), Type::STREAM, None)?;
    if !addr.is_unix() {
        s.set_reuse_address(true)?;
    }
    s.bind(addr)?;
    s.listen(backlog)?;
    Ok(s)
}

/// How lighttpd names a backend in its messages: "unix:/path" or "tcp:host:port".
fn name(addr: &SockAddr) -> String {
    match (addr.as_pathname(), addr.as_socket()) {
        (Some(p), _) => format!("unix:{}", p.display()),
        (None, Some(sa)) => format!("tcp:{}", sa),
        _ => "?".into(),
    }
}

fn name_of(argv: &[&OsStr]) -> String {
    let v: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
    v.join(" ")
}

/// `p` made absolute against our working directory: the child runs in the program's own
/// directory, where a relative path would no longer lead to it.
fn absolute(p: &Path) -> io::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(p))
}

/// Remove the sockets of `base`'s pools whose generation's process no longer exists
/// (`<base>-<pid>.<ms>-<n>`): a generation killed before it could clean up.
fn remove_stale(base: &Path) {
    let (Some(dir), Some(file)) = (base.parent(), base.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut prefix = file.as_bytes().to_vec();
    prefix.push(b'-');
    // Bounded: a directory such as /run may be large, but only these names are looked at.
    for ent in entries.flatten().take(100_000) {
        let name = ent.file_name();
        let Some(rest) = name.as_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let Some(pid) = stale_pid(rest) else { continue };
        let is_socket = ent.file_type().map(|t| t.is_socket()).unwrap_or(false);
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if is_socket && gone {
            let path = ent.path();
            match std::fs::remove_file(&path) {
                Ok(()) => log::info!(
                    "removed {}, left by pid {} which no longer runs",
                    path.display(),
                    pid
                ),
                Err(e) => log::warn!("removing stale {}: {}", path.display(), e),
            }
        }
    }
}

/// The pid in `<pid>.<ms>-<n>`, if that is what `rest` is.
fn stale_pid(rest: &[u8]) -> Option<libc::pid_t> {
    let s = std::str::from_utf8(rest).ok()?;
    let (tag, n) = s.rsplit_once('-')?;
    let (pid, ms) = tag.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    if !digits(n) || !digits(ms) || !digits(pid) {
        return None;
    }
    pid.parse::<libc::pid_t>().ok().filter(|&p| p > 1)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::spawn::tests::TempDir;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    fn host(addr: Addr, bin: &[&str]) -> GwHost {
        let mut h = GwHost::new("", addr);
        h.bin_path = Some(bin.iter().map(|s| s.to_string()).collect());
        (h.min_procs, h.max_procs, h.listen_backlog) = (2, 2, 16);
        h.connect_timeout = Duration::ZERO;
        h
    }

    /// A responder on fd 0 that answers every connection with its pid and its view of one
    /// environment variable, then closes it.
    fn responder(dir: &Path) -> String {
        let script = dir.join("responder.pl");
        std::fs::write(
            &script,
            "#!/usr/bin/perl\n\
             open(my $l, '+<&=', 0) or die \"fd 0: $!\";\n\
             while (accept(my $c, $l)) {\n\
             \x20   my $v = $ENV{$ARGV[0] // 'PHP_FCGI_CHILDREN'} // '-';\n\
             \x20   syswrite($c, \"$$ $v\\n\"); close($c);\n\
             }\n",
        )
        .unwrap();
        let mut perm = std::fs::metadata(&script).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&script, perm).unwrap();
        script.to_str().unwrap().to_string()
    }

    fn ask_unix(addr: &SockAddr) -> String {
        let mut s = UnixStream::connect(addr.as_pathname().unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn ask_tcp(addr: &SockAddr) -> String {
        let mut s = std::net::TcpStream::connect(addr.as_socket().unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// tick() until `done`, for at most 10 s (simulated time moves on with the real one).
    fn tick_until(pool: &mut Pool, start: Instant, mut done: impl FnMut(&Pool) -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        let mut now = start;
        while !done(pool) {
            assert!(Instant::now() < until, "condition not met within 10 s");
            std::thread::sleep(Duration::from_millis(10));
            now += Duration::from_millis(10);
            pool.tick(now.max(Instant::now()));
        }
    }

    #[test]
    fn unix_pool_spawns_serves_restarts_and_stops() {
        let dir = TempDir::new("pool-unix");
        let base = dir.0.join("app.sock");
        let mut h = host(Addr::Unix(base.clone()), &[&responder(&dir.0)]);
        h.bin_env = vec![("PHP_FCGI_CHILDREN".into(), "4".into())];
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "7.1", now).unwrap();
        assert_eq!(pool.len(), 2);
        let mut pids = Vec::new();
        for i in 0..2 {
            let addr = pool.addr(i).unwrap().clone();
            assert_eq!(
                addr.as_pathname().unwrap(),
                dir.0.join(format!("app.sock-7.1-{}", i))
            );
            let pid = pool.pid(i).unwrap();
            // The process behind socket i is the one we started, with bin-environment.
            assert_eq!(ask_unix(&addr), format!("{} 4\n", pid));
            pids.push(pid);
        }

        // Killed from outside: reaped and restarted (not before its backoff).
        assert!(spawn::signal(pids[0], libc::SIGKILL));
        tick_until(&mut pool, now, |p| p.pid(0).is_none());
        assert!(matches!(pool.state(0), Some(State::Dead(_))));
        assert!(pool.addr(0).is_none());
        let later = Instant::now() + BACKOFF_MIN;
        refusal(&pool.procs[0].addr.clone());
        pool.tick(later);
        let new = pool.pid(0).expect("restarted");
        assert_ne!(new, pids[0]);
        assert_eq!(ask_unix(pool.addr(0).unwrap()), format!("{} 4\n", new));

        pool.stop(later);
        // The socket files go at once; the processes when reaped.
        assert!(!dir.0.join("app.sock-7.1-0").exists());
        assert!(!dir.0.join("app.sock-7.1-1").exists());
        tick_until(&mut pool, later, |p| p.is_stopped());
        assert!(pool.addr(0).is_none());
        assert!(!spawn::signal(new, 0), "pid {} still there", new);
    }

    #[test]
    fn two_generations_never_share_a_socket() {
        let dir = TempDir::new("pool-gens");
        let base = dir.0.join("gen.sock");
        let mut h = host(Addr::Unix(base), &[&responder(&dir.0)]);
        h.min_procs = 1;
        h.max_procs = 1;
        let h = Rc::new(h);
        let now = Instant::now();
        let mut old = Pool::start(h.clone(), &generation_tag(), now).unwrap();
        std::thread::sleep(Duration::from_millis(3));
        let mut new = Pool::start(h, &generation_tag(), now).unwrap();
        let (a, b) = (old.addr(0).unwrap().clone(), new.addr(0).unwrap().clone());
        assert_ne!(a.as_pathname(), b.as_pathname());
        // Each socket leads to its own generation's process.
        assert!(ask_unix(&a).starts_with(&old.pid(0).unwrap().to_string()));
        assert!(ask_unix(&b).starts_with(&new.pid(0).unwrap().to_string()));
        // The old generation stops its pool: the new one's is untouched.
        old.stop(now);
        tick_until(&mut old, now, |p| p.is_stopped());
        assert!(!a.as_pathname().unwrap().exists());
        assert!(ask_unix(&b).starts_with(&new.pid(0).unwrap().to_string()));
        new.stop(now);
        tick_until(&mut new, now, |p| p.is_stopped());
    }

    #[test]
    fn sockets_of_a_dead_generation_are_removed_and_live_ones_kept() {
        let dir = TempDir::new("pool-stale");
        let base = dir.0.join("s.sock");
        // A pid that no longer exists: a child we started and reaped.
        let c = spawn::spawn(&[OsStr::new("/bin/true")], None, &EnvBuf::new(), [None; 3]).unwrap();
        spawn::reap_within(&mut vec![c], Duration::from_secs(10));
        let stale = dir.0.join(format!("s.sock-{}.5-0", c));
        let live = dir.0.join(format!("s.sock-{}.5-0", std::process::id()));
        let _l1 = std::os::unix::net::UnixListener::bind(&stale).unwrap();
        let _l2 = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let other = dir.0.join(format!("s.sock-{}.5-x", c));
        std::fs::write(&other, b"not ours").unwrap();
        remove_stale(&base);
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(other.exists());
    }

    #[test]
    fn environment_is_lightds_or_only_what_is_copied() {
        let dir = TempDir::new("pool-env");
        let r = responder(&dir.0);
        // Neither set: all of ours (PATH is surely there) and PHP_FCGI_CHILDREN=1.
        let mut h = host(Addr::Unix(dir.0.join("e.sock")), &[&r, "PATH"]);
        h.min_procs = 1;
        h.max_procs = 1;
        let env = child_env(&h);
        assert_eq!(env.get(b"PHP_FCGI_CHILDREN"), Some(&b"1"[..]));
        let path = std::env::var_os("PATH").unwrap();
        assert_eq!(env.get(b"PATH"), Some(path.as_bytes()));
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h.clone()), "1.1", now).unwrap();
        let got = ask_unix(pool.addr(0).unwrap());
        assert_eq!(
            got,
            format!("{} {}\n", pool.pid(0).unwrap(), path.to_str().unwrap())
        );
        pool.stop(now);
        tick_until(&mut pool, now, |p| p.is_stopped());

        // Only what bin-copy-environment names (and is set), plus bin-environment.
        h.bin_copy_env = vec!["PATH".into(), "LIGHTD_SURELY_UNSET_VAR".into()];
        h.bin_env = vec![("A".into(), "b".into())];
        let env = child_env(&h);
        let names: Vec<&[u8]> = env.iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![&b"PATH"[..], b"A", b"PHP_FCGI_CHILDREN"]);
    }

    /// Two consecutive free ports on 127.0.0.1 (bound, so that they stay free until used).
    fn two_ports() -> (u16, std::net::TcpListener, std::net::TcpListener) {
        for _ in 0..100 {
            let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let p = a.local_addr().unwrap().port();
            if p == u16::MAX {
                continue;
            }
            if let Ok(b) = std::net::TcpListener::bind(("127.0.0.1", p + 1)) {
                return (p, a, b);
            }
        }
        panic!("no two consecutive free ports");
    }

    #[test]
    fn tcp_pool_uses_port_plus_n_and_adopts_what_accepts() {
        let dir = TempDir::new("pool-tcp");
        let (port, keep, free) = two_ports();
        // Port+1 is free for us; `port` is held by something that accepts.
        drop(free);
        let h = host(Addr::Tcp("127.0.0.1".into(), port), &[&responder(&dir.0)]);
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "2.2", now).unwrap();
        assert_eq!(
            pool.pid(0),
            None,
            "port {} accepts: used, not spawned",
            port
        );
        assert_eq!(pool.state(0), Some(State::Running));
        assert_eq!(
            pool.addr(0).unwrap().as_socket().unwrap(),
            std::net::SocketAddr::from(([127, 0, 0, 1], port))
        );
        let pid1 = pool.pid(1).expect("port+1 spawned");
        let addr1 = pool.addr(1).unwrap().clone();
        assert_eq!(addr1.as_socket().unwrap().port(), port + 1);
        assert_eq!(ask_tcp(&addr1), format!("{} 1\n", pid1));

        // What accepted on `port` goes away (an old generation stopping its pool): the next
        // refusal makes the pool take the port over, and the request can retry at once.
        drop(keep);
        let addr0 = pool.addr(0).unwrap().clone();
        let refused = refusal(&addr0);
        assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
        assert_eq!(pool.connect_failed(0, &refused, now), Retry::Now);
        let pid0 = pool.pid(0).expect("spawned on the freed port");
        assert_eq!(ask_tcp(pool.addr(0).unwrap()), format!("{} 1\n", pid0));

        pool.stop(now);
        tick_until(&mut pool, now, |p| p.is_stopped());
        // Nothing listens any more.
        refusal(&addr0);
        refusal(&addr1);
    }

    #[test]
    fn a_refusing_live_process_is_disabled_then_reenabled() {
        let dir = TempDir::new("pool-disable");
        let mut h = host(Addr::Unix(dir.0.join("d.sock")), &[&responder(&dir.0)]);
        h.min_procs = 1;
        h.max_procs = 1;
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "3.3", now).unwrap();
        let pid = pool.pid(0).unwrap();
        let e = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(pool.connect_failed(0, &e, now), Retry::Elsewhere);
        assert_eq!(
            pool.state(0),
            Some(State::Disabled(now + Duration::from_secs(1)))
        );
        assert!(pool.addr(0).is_none());
        pool.tick(now + Duration::from_millis(500));
        assert!(pool.addr(0).is_none());
        pool.tick(now + Duration::from_secs(1));
        assert_eq!(pool.state(0), Some(State::Running));
        assert_eq!(pool.pid(0), Some(pid));
        pool.stop(now);
        tick_until(&mut pool, now, |p| p.is_stopped());
    }

    #[test]
    fn a_dead_process_found_by_a_refusal_is_restarted_at_once() {
        let dir = TempDir::new("pool-refused");
        let mut h = host(Addr::Unix(dir.0.join("r.sock")), &[&responder(&dir.0)]);
        h.min_procs = 1;
        h.max_procs = 1;
        let start = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "4.4", start).unwrap();
        let pid = pool.pid(0).unwrap();
        spawn::signal(pid, libc::SIGKILL);
        // Wait until it is really gone (a zombie), without tick() reaping it.
        let until = Instant::now() + Duration::from_secs(10);
        while ask_state(pid) != 'Z' {
            assert!(Instant::now() < until);
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = refusal(&pool.procs[0].addr.clone());
        assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
        // It had served a long time: no backoff.
        let now = start + STABLE_AFTER;
        assert_eq!(pool.connect_failed(0, &e, now), Retry::Now);
        let new = pool.pid(0).unwrap();
        assert_ne!(new, pid);
        assert_eq!(ask_unix(pool.addr(0).unwrap()), format!("{} 1\n", new));
        pool.stop(now);
        tick_until(&mut pool, now, |p| p.is_stopped());
    }

    /// Wait (10 s at most) until `addr` refuses connections. Not at once: in a test binary,
    /// a child another test thread has just forked holds a copy of every descriptor until
    /// its exec, a closed listener's included. (lightd is single-threaded and waits for
    /// its child's exec, so it never sees this.)
    fn refusal(addr: &SockAddr) -> io::Error {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Err(e) = probe(addr) {
                return e;
            }
            assert!(Instant::now() < until, "{} still accepts", name(addr));
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn ask_state(pid: u32) -> char {
        std::fs::read_to_string(format!("/proc/{}/stat", pid))
            .ok()
            .and_then(|s| s.rsplit(") ").next().and_then(|r| r.chars().next()))
            .unwrap_or('?')
    }

    #[test]
    fn a_program_that_keeps_dying_is_restarted_less_and_less_often() {
        let dir = TempDir::new("pool-crash");
        let mut h = host(
            Addr::Unix(dir.0.join("c.sock")),
            &["/bin/sh", "-c", "exit 1"],
        );
        h.min_procs = 1;
        h.max_procs = 1;
        // SCGI runs a command with arguments through the shell; FastCGI does not.
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "5.5", now).unwrap();
        let addr = pool.procs[0].addr.clone();
        let mut t = now;
        let mut gaps = Vec::new();
        for _ in 0..4 {
            let first = pool.pid(0).unwrap();
            // tick() until it has been reaped, remembering when that was.
            let until = Instant::now() + Duration::from_secs(10);
            while pool.pid(0).is_some() {
                assert!(Instant::now() < until, "not reaped within 10 s");
                std::thread::sleep(Duration::from_millis(10));
                t += Duration::from_millis(10);
                pool.tick(t);
            }
            let Some(State::Dead(at)) = pool.state(0) else {
                panic!("not dead: {:?}", pool.state(0));
            };
            gaps.push(at - t);
            // Not before its time.
            pool.tick(at - Duration::from_millis(1));
            assert_eq!(pool.pid(0), None);
            refusal(&addr);
            pool.tick(at);
            assert_ne!(pool.pid(0), Some(first));
            assert!(pool.pid(0).is_some());
            t = at;
        }
        let want: Vec<Duration> = (0..4).map(|k| BACKOFF_MIN * (1 << k)).collect();
        assert_eq!(gaps, want);
        pool.stop(t);
        tick_until(&mut pool, t, |p| p.is_stopped());
    }

    #[test]
    fn exec_failure_fails_the_start_and_leaves_nothing() {
        let dir = TempDir::new("pool-fail");
        let h = host(Addr::Unix(dir.0.join("f.sock")), &["/nonexistent/app"]);
        let e = Pool::start(Rc::new(h), "6.6", Instant::now()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{}", e);
        assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);

        let long = dir.0.join("x".repeat(120));
        let h = host(Addr::Unix(long), &["/bin/cat"]);
        let e = Pool::start(Rc::new(h), "6.6", Instant::now()).unwrap_err();
        assert!(e.to_string().contains("too long"), "{}", e);

        let h = host(Addr::Unix(dir.0.join("t.sock")), &["/bin/cat"]);
        assert!(Pool::start(Rc::new(h), "a/b", Instant::now()).is_err());
    }

    #[test]
    fn a_command_line_through_the_shell_as_the_config_makes_scgis() {
        let dir = TempDir::new("pool-scgi");
        let r = responder(&dir.0);
        let cmd = format!("pwd > {}/cwd; exec {} SHLVL_PROBE", dir.0.display(), r);
        let mut h = host(Addr::Unix(dir.0.join("g.sock")), &["/bin/sh", "-c", &cmd]);
        h.min_procs = 1;
        h.max_procs = 1;
        h.bin_env = vec![("SHLVL_PROBE".into(), "via-sh".into())];
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "8.8", now).unwrap();
        // exec: the shell becomes the responder, so the pid is the one we started.
        let pid = pool.pid(0).unwrap();
        assert_eq!(ask_unix(pool.addr(0).unwrap()), format!("{} via-sh\n", pid));
        // It ran where lighttpd runs it: the directory of the program executed, /bin/sh's.
        let cwd = std::fs::read_to_string(dir.0.join("cwd")).unwrap();
        let bin = std::fs::canonicalize("/bin").unwrap();
        assert_eq!(
            std::fs::canonicalize(cwd.trim_end()).unwrap(),
            bin,
            "{}",
            cwd
        );
        pool.stop(now);
        tick_until(&mut pool, now, |p| p.is_stopped());
    }

    #[test]
    fn adaptive_spawning_between_min_and_max() {
        let dir = TempDir::new("pool-adapt");
        let mut h = host(Addr::Unix(dir.0.join("a.sock")), &[&responder(&dir.0)]);
        h.min_procs = 1;
        h.max_procs = 2;
        h.max_load_per_proc = 1;
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "9.9", now).unwrap();
        assert_eq!(pool.state(1), Some(State::Unused));
        pool.acquire(0, now);
        pool.tick(now);
        assert_eq!(pool.state(1), Some(State::Unused), "load 1 is not over 1");
        pool.acquire(0, now);
        pool.tick(now);
        assert_eq!(
            pool.state(1),
            Some(State::Running),
            "busy: a second process"
        );
        let second = pool.pid(1).unwrap();
        pool.release(0, now);
        pool.release(0, now);
        // Idle for over a minute: back down to min-procs.
        let later = now + Duration::from_secs(61);
        pool.tick(later);
        let killed: Vec<_> = (0..2)
            .filter(|&i| pool.state(i) == Some(State::Killed))
            .collect();
        assert_eq!(killed.len(), 1);
        tick_until(&mut pool, later, |p| {
            p.state(killed[0]) == Some(State::Unused)
        });
        assert!(pool.pid(killed[0]).is_none());
        let _ = second;
        pool.stop(later);
        tick_until(&mut pool, later, |p| p.is_stopped());
    }

    #[test]
    fn min_procs_zero_spawns_on_demand() {
        let dir = TempDir::new("pool-demand");
        let mut h = host(Addr::Unix(dir.0.join("z.sock")), &[&responder(&dir.0)]);
        h.min_procs = 0;
        h.max_procs = 1;
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "10.1", now).unwrap();
        assert!(pool.pid(0).is_none());
        assert!(pool.addr(0).is_none());
        assert!(pool.ensure_running(now));
        let pid = pool.pid(0).unwrap();
        assert_eq!(ask_unix(pool.addr(0).unwrap()), format!("{} 1\n", pid));
        pool.stop(now);
        tick_until(&mut pool, now, |p| p.is_stopped());
        assert!(!pool.ensure_running(now));
    }

    #[test]
    fn a_stubborn_process_gets_sigkill_in_the_end() {
        let dir = TempDir::new("pool-stubborn");
        // Ignores SIGTERM (the kill-signal) and SIGINT.
        let mut h = host(
            Addr::Unix(dir.0.join("k.sock")),
            &[
                "/bin/sh",
                "-c",
                "trap '' TERM INT; while :; do sleep 1; done",
            ],
        );
        h.min_procs = 1;
        h.max_procs = 1;
        let now = Instant::now();
        let mut pool = Pool::start(Rc::new(h), "11.1", now).unwrap();
        std::thread::sleep(Duration::from_millis(100)); // let the shell set its trap
        pool.stop(now);
        pool.tick(now + Duration::from_secs(9));
        assert!(!pool.is_stopped(), "SIGTERM should not have stopped it");
        pool.tick(now + Duration::from_secs(16));
        tick_until(&mut pool, now + Duration::from_secs(16), |p| p.is_stopped());
    }
}
