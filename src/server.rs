//! The event loop: one `mio::Poll` owning the listeners, the signal pipe and a slab of
//! connections; accepting, dispatching readiness, timers and the graceful stop.
//!
//! Tokens: connections use their slab key; reserved tokens count down from `usize::MAX`
//! (signals, then one per listener). Descriptors that handlers will wait on (CGI pipes, proxy
//! sockets) get their own reserved range and are routed to the owning connection.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::config::{CondChain, Config, MatchSet, ReqConf, ReqSetting};
use crate::conn::{Conn, Drive};
use crate::handlers::Seg;
use crate::handover::{self, Child, ControlSocket};
use crate::http::request::{Header, Limits};
use crate::listener::Listener;
use crate::log::AccessLog;

const SIGNAL_TOKEN: Token = Token(usize::MAX);
const CONTROL_TOKEN: Token = Token(usize::MAX - 1);
const CONTROL_CONN_TOKEN: Token = Token(usize::MAX - 2);
const CHILD_TOKEN: Token = Token(usize::MAX - 3);
/// Listener `i` has token `LISTENER_BASE - i`.
const LISTENER_BASE: usize = usize::MAX - 16;

/// How long a new generation has to say it is ready before the reload is abandoned.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes of a control-socket conversation we buffer; the messages are one line each.
const CONTROL_MSG_MAX: usize = 256;

/// During a graceful stop, how long an idle keep-alive connection stays open for a request its
/// client may already have sent.
pub const DRAIN_IDLE_WINDOW: Duration = Duration::from_millis(1000);

/// How often deadlines are checked while there are connections.
const TICK: Duration = Duration::from_millis(250);

/// After EMFILE/ENFILE on accept, wait this long (or for a connection to close) before trying
/// again, instead of spinning on a listener that stays ready.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A connection must have stalled this long before it is evicted to make room at the limit.
const EVICT_AFTER: Duration = Duration::from_secs(1);

/// Connections accepted from one listener per turn, so a flood cannot starve existing ones.
const ACCEPTS_PER_TURN: usize = 256;

/// Most request heads may have this many fields.
const MAX_HEADERS: usize = 128;

/// Idle buffer sets kept for reuse; beyond this they are freed.
const POOL_MAX: usize = 128;

/// The cached per-request settings for distinct sets of matching conditions.
const CONF_CACHE_MAX: usize = 64;

/// The buffers a busy connection uses. Pooled: idle connections give them back.
pub struct Bufs {
    pub rbuf: Box<[u8]>,
    pub wbuf: Vec<u8>,
    pub segs: VecDeque<Seg>,
    pub headers: Vec<Header>,
    pub path: String,
    pub fs_path: PathBuf,
    pub ranges: Vec<(u64, u64)>,
    pub scratch: String,
}

/// Everything connections share: read-only config plus caches, pools and logs.
pub struct Ctx {
    pub cfg: Config,
    pub base: Rc<ReqConf>,
    conf_cache: Vec<(MatchSet, Rc<ReqConf>)>,
    // Boxed so that a connection's `Option<Box<Bufs>>` is one pointer and moving a set in
    // and out of the pool copies a pointer, not the struct.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Bufs>>,
    rbuf_size: usize,
    /// Now, as of the latest wake-up.
    pub now: Instant,
    /// The Date header value, formatted once per second.
    pub date: [u8; 29],
    date_secs: u64,
    pub drain_started: Option<Instant>,
    /// At the connection limit with clients waiting to be accepted: responses end keep-alive
    /// (`Connection: close`), as nginx does, so that a busy keep-alive client does not hold
    /// its slot for up to server.max-keep-alive-requests requests while others wait.
    pub end_keep_alive: bool,
    pub limits: Limits,
    pub cache: crate::handlers::cache::FileCache,
    /// The current second (wall clock), as the Date header shows it.
    pub now_secs: u64,
    accesslogs: Vec<AccessLog>,
    /// The bound address per listener index.
    listener_addrs: Vec<SocketAddr>,
}

impl Ctx {
    pub fn take_bufs(&mut self) -> Box<Bufs> {
        self.pool.pop().unwrap_or_else(|| {
            Box::new(Bufs {
                rbuf: vec![0u8; self.rbuf_size].into_boxed_slice(),
                wbuf: Vec::with_capacity(20 * 1024),
                segs: VecDeque::with_capacity(4),
                headers: Vec::with_capacity(32),
                path: String::with_capacity(256),
                fs_path: PathBuf::with_capacity(512),
                ranges: Vec::new(),
                scratch: String::new(),
            })
        })
    }

    pub fn give_bufs(&mut self, mut b: Box<Bufs>) {
        if self.pool.len() >= POOL_MAX {
            return;
        }
        b.wbuf.clear();
        b.segs.clear();
        // A directory listing or a multipart reply may have grown these; don't keep that.
        b.wbuf.shrink_to(64 * 1024);
        b.scratch.clear();
        b.scratch.shrink_to(4096);
        b.ranges.clear();
        b.ranges.shrink_to(8);
        self.pool.push(b);
    }

    /// The settings for a request that took the conditional branches in `set`.
    pub fn conf_for(&mut self, set: &MatchSet) -> Rc<ReqConf> {
        if set.is_empty() {
            return Rc::clone(&self.base);
        }
        if let Some((_, c)) = self.conf_cache.iter().find(|(s, _)| s == set) {
            return Rc::clone(c);
        }
        let merged = Rc::new(self.cfg.merged(set));
        if self.conf_cache.len() < CONF_CACHE_MAX {
            self.conf_cache.push((*set, Rc::clone(&merged)));
        }
        merged
    }

    pub fn accesslog(&mut self, path: &str, format: &str) -> Option<&mut AccessLog> {
        self.accesslogs
            .iter_mut()
            .find(|l| l.path.as_os_str() == path && l.format == format)
    }

    /// The address listener `i` is actually bound to.
    pub fn listener_local(&self, i: usize) -> SocketAddr {
        self.listener_addrs[i]
    }

    fn refresh_clock(&mut self) {
        self.now = Instant::now();
        let secs = crate::log::now_secs();
        self.now_secs = secs;
        if secs != self.date_secs {
            self.date_secs = secs;
            crate::http::date::format(secs, &mut self.date);
        }
    }
}

/// Every (accesslog.filename, accesslog.format) pair the config can select.
fn accesslog_specs(cfg: &Config) -> Vec<(String, String)> {
    fn walk(
        chains: &[CondChain],
        file: &Option<String>,
        fmt: &str,
        out: &mut Vec<(String, String)>,
    ) {
        for chain in chains {
            for br in &chain.branches {
                let mut f = file.clone();
                let mut m = fmt.to_string();
                for s in &br.settings {
                    match s {
                        ReqSetting::AccesslogFilename(v) => f = v.clone(),
                        ReqSetting::AccesslogFormat(v) => m = v.clone(),
                        _ => {}
                    }
                }
                if let Some(f) = &f {
                    out.push((f.clone(), m.clone()));
                }
                walk(&br.children, &f, &m, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(f) = &cfg.base.accesslog_filename {
        out.push((f.clone(), cfg.base.accesslog_format.clone()));
    }
    walk(
        &cfg.conds,
        &cfg.base.accesslog_filename,
        &cfg.base.accesslog_format,
        &mut out,
    );
    out.sort();
    out.dedup();
    out
}

/// What SIGUSR1 re-executes: the binary path and arguments this process was started with.
pub struct Reexec {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
}

/// A reload under way: a new generation has our listeners and we wait for it to be ready.
enum Reload {
    /// Started by SIGUSR1; reports on a pipe.
    Child {
        child: Child,
        buf: Vec<u8>,
        deadline: Instant,
    },
    /// Started from outside; talks on the control socket.
    Takeover {
        conn: UnixStream,
        buf: Vec<u8>,
        sent: bool,
        deadline: Instant,
    },
}

/// What this process does (server.max-worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One process accepts and serves.
    Single,
    /// Holds the listeners, the control socket and the pid file; runs workers, restarts those
    /// that crash, forwards signals, and reloads. Never accepts.
    Supervisor { workers: usize },
    /// Accepts and serves; reloads are its supervisor's business.
    Worker,
}

/// How long a stopping supervisor waits for its workers after telling them to stop at once.
const WORKER_STOP_WAIT: Duration = Duration::from_secs(5);

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Graceful stop completed (or its deadline passed).
    Drained,
    /// SIGTERM or a second SIGINT.
    Immediate,
    /// A new generation took over and this one drained.
    HandedOver,
}

pub struct Server {
    poll: Poll,
    listeners: Vec<Option<Listener>>,
    conns: Slab<Conn>,
    ctx: Ctx,
    signals: Signals,
    /// Connections that yielded with work left.
    pending: Vec<usize>,
    pending_spare: Vec<usize>,
    /// A listener may hold connections we have not accepted (edge-triggered: no new event
    /// will say so).
    accept_pending: bool,
    accept_retry_at: Option<Instant>,
    /// An accept error was logged and nothing has been accepted since: log it once, not on
    /// every retry.
    accept_error_logged: bool,
    /// The listener the next accept turn starts with.
    accept_from: usize,
    last_evict_scan: Option<Instant>,
    max_conns: usize,
    last_scan: Instant,
    drain_deadline: Option<Instant>,
    /// The drain was started by a completed reload.
    handed_over: bool,
    scratch_keys: Vec<usize>,
    control: Option<ControlSocket>,
    reload: Option<Reload>,
    reexec: Reexec,
    /// Failed generations not yet reaped.
    zombies: Vec<u32>,
    role: Role,
    /// Live worker processes (supervisor only).
    workers: Vec<u32>,
    /// When a stopping supervisor gives up waiting for its workers.
    workers_deadline: Option<Instant>,
    /// The error log is counting suppressed messages: wake up to report them.
    log_pending: bool,
    /// A listener reported a new connection that has not been accepted yet.
    queued: bool,
    /// `-i SECS`: stop gracefully after this long without any event.
    idle_limit: Option<Duration>,
    /// The last time the poll reported anything.
    last_active: Instant,
    /// Older generations left by in-place reloads, our children, draining; reaped here.
    old_gens: Vec<u32>,
    /// This process is the old generation of an in-place reload: a copy forked by the
    /// process its supervisor tracks, finishing what it had.
    old_generation: bool,
}

impl Server {
    /// Build the loop around listeners that are already bound.
    pub fn new(
        cfg: Config,
        listeners: Vec<Listener>,
        control: Option<ControlSocket>,
        reexec: Reexec,
    ) -> io::Result<Server> {
        // Fail closed even if a caller forgot to ask: never serve a config that relies on
        // something lightd does not implement.
        if let Err(e) = cfg.refusal() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string()));
        }
        let poll = Poll::new()?;
        // SIGUSR2 is the parent-death signal of an in-place reload's old generation; handled
        // everywhere so that a stray one never ends a server.
        let mut signals = Signals::new([
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ])?;
        if let Some(c) = &control {
            poll.registry().register(
                &mut SourceFd(&c.listener.as_raw_fd()),
                CONTROL_TOKEN,
                Interest::READABLE,
            )?;
        }
        poll.registry()
            .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
        let mut ls = Vec::with_capacity(listeners.len());
        for (i, mut l) in listeners.into_iter().enumerate() {
            poll.registry()
                .register(&mut l.sock, Token(LISTENER_BASE - i), Interest::READABLE)?;
            ls.push(Some(l));
        }
        let mut accesslogs = Vec::new();
        for (path, fmt) in accesslog_specs(&cfg) {
            accesslogs.push(AccessLog::open(std::path::Path::new(&path), &fmt)?);
        }
        let max_head = cfg.max_request_field_size.max(512);
        let limits = Limits {
            max_head,
            // A request line that alone fills the head limit is a URI problem (414), not a
            // header problem (431).
            max_request_line: max_head - 1,
            max_headers: MAX_HEADERS,
        };
        // Each connection may hold a socket and an open file; keep some descriptors for the
        // listeners, logs, the poll and signal descriptors, and the control socket.
        let fds = cfg.max_fds.unwrap_or_else(nofile_limit) as usize;
        let reserve = 16 + 2 * ls.len();
        let max_conns = cfg
            .max_connections
            .max(1)
            .min((fds.saturating_sub(reserve) / 2).max(1));
        let now = Instant::now();
        let listener_addrs = ls.iter().flatten().map(|l| l.local).collect();
        let base = Rc::new(cfg.base.clone());
        let mut ctx = Ctx {
            cfg,
            base,
            conf_cache: Vec::new(),
            pool: Vec::new(),
            rbuf_size: max_head + 4096,
            now,
            date: [b' '; 29],
            date_secs: 0,
            drain_started: None,
            end_keep_alive: false,
            limits,
            cache: Default::default(),
            now_secs: 0,
            accesslogs,
            listener_addrs,
        };
        ctx.refresh_clock();
        Ok(Server {
            poll,
            listeners: ls,
            conns: Slab::new(),
            ctx,
            signals,
            pending: Vec::new(),
            pending_spare: Vec::new(),
            accept_pending: true,
            accept_retry_at: None,
            accept_error_logged: false,
            accept_from: 0,
            last_evict_scan: None,
            max_conns,
            last_scan: now,
            drain_deadline: None,
            handed_over: false,
            scratch_keys: Vec::new(),
            control,
            reload: None,
            reexec,
            zombies: Vec::new(),
            role: Role::Single,
            workers: Vec::new(),
            workers_deadline: None,
            log_pending: false,
            queued: false,
            idle_limit: None,
            last_active: now,
            old_gens: Vec::new(),
            old_generation: false,
        })
    }

    /// Become a supervisor of `workers` worker processes: stop accepting here (the workers
    /// accept on the same sockets). The workers start when the loop runs, after privileges
    /// have been dropped.
    pub fn make_supervisor(&mut self, workers: usize) {
        for l in self.listeners.iter_mut().flatten() {
            let _ = self.poll.registry().deregister(&mut l.sock);
        }
        self.accept_pending = false;
        // The supervisor never serves, so it needs no access logs; closing them here also
        // keeps forked workers from inheriting descriptors that SIGHUP would never reopen.
        self.ctx.accesslogs.clear();
        self.role = Role::Supervisor { workers };
    }

    /// Older generations of an in-place reload, now draining: reap them, and pass stop and
    /// log signals on.
    pub fn adopt_old_generations(&mut self, pids: Vec<u32>) {
        self.old_gens = pids;
    }

    /// `-i SECS`: begin a graceful stop once nothing has happened for `limit`, as lighttpd's
    /// `-i` does. Activity is any event on any descriptor.
    pub fn set_idle_limit(&mut self, limit: Duration) {
        self.idle_limit = Some(limit);
    }

    /// Make the control socket reachable at its path (once this process is in charge).
    pub fn publish_control(&mut self) -> io::Result<()> {
        match self.control.as_mut() {
            Some(c) => c.publish(),
            None => Ok(()),
        }
    }

    /// The addresses being listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().flatten().map(|l| l.local).collect()
    }

    /// Run until stopped.
    pub fn run(&mut self) -> io::Result<Exit> {
        let mut events = Events::with_capacity(1024);
        self.spawn_workers();
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.ctx.refresh_clock();
            if !events.is_empty() {
                self.last_active = self.ctx.now;
            } else if self.idle_expired() {
                log::info!(
                    "idle timeout {} s exceeded, initiating graceful shutdown",
                    self.idle_limit.map_or(0, |d| d.as_secs())
                );
                self.begin_drain();
            }

            for ev in events.iter() {
                match ev.token() {
                    SIGNAL_TOKEN => {
                        if let Some(exit) = self.on_signals() {
                            self.close_all();
                            return Ok(exit);
                        }
                    }
                    CONTROL_TOKEN => self.on_control_accept(),
                    CONTROL_CONN_TOKEN | CHILD_TOKEN => self.on_reload_progress(),
                    Token(t) if t > LISTENER_BASE - self.listeners.len() && t <= LISTENER_BASE => {
                        self.accept_pending = true;
                        // A new connection is queued: if we are full, someone is waiting.
                        self.queued = true;
                        self.update_pressure();
                    }
                    Token(k) => {
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                        // An event for a connection already closed this turn is stale.
                        if let Some(c) = self.conns.get_mut(k) {
                            c.ready(readable, writable, ev.is_read_closed() || ev.is_error());
                            self.drive(k);
                        }
                    }
                }
            }

            if self.accept_pending && self.accept_retry_at.map_or(true, |t| self.ctx.now >= t) {
                self.accept();
            }

            // Swap with a spare vector so the pending list keeps its allocation.
            let mut pending = std::mem::take(&mut self.pending_spare);
            std::mem::swap(&mut pending, &mut self.pending);
            for &k in &pending {
                if self.conns.contains(k) {
                    self.drive(k);
                }
            }
            pending.clear();
            self.pending_spare = pending;

            if self.ctx.now.duration_since(self.last_scan) >= TICK
                || self.ctx.drain_started.is_some()
            {
                self.scan_timeouts();
                self.check_reload();
                self.log_pending = crate::log::flush_suppressed();
            }

            for l in &mut self.ctx.accesslogs {
                l.flush();
            }

            if self.ctx.drain_started.is_some() {
                if self.conns.is_empty() && self.workers.is_empty() && self.old_gens.is_empty() {
                    return Ok(self.drained());
                }
                if self.role != Role::Single {
                    // A supervisor has no connections; it waits for its workers, which keep
                    // their own drain deadline, and stops stragglers after it.
                    if self.workers_deadline.is_some_and(|d| self.ctx.now >= d) {
                        log::warn!(
                            "{} worker(s) did not stop; killing them",
                            self.workers.len()
                        );
                        self.signal_workers(libc::SIGKILL);
                        self.reap_workers_blocking(Duration::from_secs(1));
                        return Ok(self.drained());
                    }
                    continue;
                }
                if self.drain_deadline.is_some_and(|d| self.ctx.now >= d) {
                    log::warn!(
                        "graceful shutdown timeout: closing {} remaining connection(s)",
                        self.conns.len()
                    );
                    self.close_all();
                    return Ok(self.drained());
                }
            }
        }
    }

    fn drained(&self) -> Exit {
        if self.handed_over {
            Exit::HandedOver
        } else {
            Exit::Drained
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.pending.is_empty()
            || (self.accept_pending && self.can_accept() && self.accept_retry_at.is_none())
        {
            return Some(Duration::ZERO);
        }
        if let Some(t) = self.accept_retry_at {
            return Some(t.saturating_duration_since(Instant::now()).min(TICK));
        }
        // -i: wake up when the idle limit would pass, even with nothing else to do.
        let idle = match (self.idle_limit, self.ctx.drain_started) {
            (Some(l), None) => {
                Some((self.last_active + l).saturating_duration_since(Instant::now()))
            }
            _ => None,
        };
        if !self.conns.is_empty()
            || self.ctx.drain_started.is_some()
            || self.reload.is_some()
            || !self.zombies.is_empty()
            || !self.workers.is_empty()
            || !self.old_gens.is_empty()
            || self.log_pending
        {
            return Some(idle.map_or(TICK, |d| d.min(TICK)));
        }
        // Nothing else to time out: sleep until something happens.
        idle
    }

    fn idle_expired(&self) -> bool {
        self.ctx.drain_started.is_none()
            && self
                .idle_limit
                .is_some_and(|l| self.ctx.now.duration_since(self.last_active) >= l)
    }

    fn can_accept(&self) -> bool {
        self.ctx.drain_started.is_none() && self.conns.len() < self.max_conns
    }

    fn drive(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let step = c.drive(&mut self.ctx);
        self.after_drive(k, step);
    }

    fn after_drive(&mut self, k: usize, step: Drive) {
        match step {
            Drive::Wait => self.register(k),
            Drive::Yield => self.pending.push(k),
            Drive::Close => self.close(k),
        }
    }

    /// Register a connection for readiness the first time it has to wait. A connection whose
    /// whole exchange completes at once (request already there, response fits the socket
    /// buffer, client closes promptly) never costs an epoll_ctl.
    fn register(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.registered {
            return;
        }
        match self.poll.registry().register(
            c.sock_mut(),
            Token(k),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            Ok(()) => c.registered = true,
            Err(e) => {
                log::warn!("registering a connection: {}", e);
                self.close(k);
            }
        }
    }

    fn close(&mut self, k: usize) {
        // No deregister: closing the socket takes it out of the epoll set, and sparing the
        // epoll_ctl matters when every request comes on a new connection. (A child between
        // fork and exec may hold the descriptor a moment longer; an event that reaches the
        // reused slot then is only a spurious wake-up, which every state handles.)
        drop(self.conns.try_remove(k));
        self.update_pressure();
        // A slot is free: connections left waiting in a listener's queue can come in now.
        if self.ctx.drain_started.is_none() {
            self.accept_pending = true;
            self.accept_retry_at = None;
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(k);
        }
    }

    fn accept(&mut self) {
        if matches!(self.role, Role::Supervisor { .. }) {
            self.accept_pending = false;
            return;
        }
        let n = self.listeners.len();
        // Start where the last turn stopped, so a flood on one listener cannot starve others.
        let from = self.accept_from;
        for i in (0..n).map(|j| (from + j) % n) {
            let mut accepted = 0;
            loop {
                if !self.can_accept() && !self.evict_stalled() {
                    // Stay pending: close() sets it again when a slot frees.
                    return;
                }
                let Some(l) = self.listeners[i].as_mut() else {
                    break;
                };
                match l.sock.accept() {
                    Ok((sock, peer)) => {
                        // TCP_NODELAY comes from the listening socket (Linux copies it to
                        // accepted sockets), saving a setsockopt per connection.
                        let key = self.conns.insert(Conn::new(sock, peer, i, self.ctx.now));
                        self.accept_error_logged = false;
                        // The request is often there already: serve it before registering.
                        self.drive(key);
                        accepted += 1;
                        if accepted >= ACCEPTS_PER_TURN {
                            // Come back next turn; the listener is still ready.
                            self.accept_pending = true;
                            self.accept_from = (i + 1) % self.listeners.len();
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => match e.raw_os_error() {
                        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS)
                        | Some(libc::ENOMEM) => {
                            if !self.accept_error_logged {
                                log::warn!("accept: {} (retrying when a connection closes)", e);
                                self.accept_error_logged = true;
                            }
                            self.accept_retry_at = Some(self.ctx.now + ACCEPT_BACKOFF);
                            return;
                        }
                        // The client gave up while queued, or similar: next one.
                        _ => log::debug!("accept: {}", e),
                    },
                }
            }
        }
        self.accept_pending = false;
        self.accept_retry_at = None;
        // Every queue is empty: nobody is waiting.
        self.queued = false;
        self.update_pressure();
    }

    fn update_pressure(&mut self) {
        self.ctx.end_keep_alive = self.queued && self.conns.len() >= self.max_conns;
    }

    /// At the connection limit: close the connection that has stalled longest without sending
    /// a complete request head, if any has for at least EVICT_AFTER. Returns whether a slot
    /// was freed.
    fn evict_stalled(&mut self) -> bool {
        // The scan is O(connections): at a busy limit, run it at most once per tick.
        if self.ctx.drain_started.is_some()
            || self
                .last_evict_scan
                .is_some_and(|t| self.ctx.now.duration_since(t) < TICK)
        {
            return false;
        }
        self.last_evict_scan = Some(self.ctx.now);
        let limit = self.ctx.now.checked_sub(EVICT_AFTER);
        let victim = self
            .conns
            .iter()
            .filter_map(|(k, c)| c.stalled_since().map(|t| (t, k)))
            .filter(|(t, _)| limit.is_some_and(|l| *t <= l))
            .min();
        match victim {
            Some((_, k)) => {
                log::debug!("connection limit reached: closing a stalled connection");
                self.close(k);
                // Another stalled one may be closed at once for the next newcomer.
                self.last_evict_scan = None;
                true
            }
            None => false,
        }
    }

    /// Returns Some when the loop must end at once.
    fn on_signals(&mut self) -> Option<Exit> {
        let mut sigs: Vec<i32> = self.signals.pending().collect();
        // A reload last: a stop that came with it wins, and an in-place reload never returns
        // here with signals left unhandled.
        sigs.sort_by_key(|&s| s == libc::SIGUSR1);
        for sig in sigs {
            match sig {
                libc::SIGINT if self.ctx.drain_started.is_none() => {
                    if self.role != Role::Worker {
                        handover::notify("STOPPING=1");
                    }
                    self.begin_drain();
                }
                // Workers leave reloads to their supervisor, which gets the signal too when
                // it is sent to the process group.
                libc::SIGUSR1 if self.role == Role::Worker => {}
                libc::SIGUSR1 if self.old_generation => {
                    log::info!("SIGUSR1 ignored: this is an old generation, draining");
                }
                libc::SIGUSR1 => self.start_reexec(),
                libc::SIGUSR2 if self.old_generation && self.ctx.drain_started.is_none() => {
                    log::warn!(
                        "in-place reload: the new image ended before it was ready; this old \
                         generation stops accepting so that a fresh start can listen"
                    );
                    self.begin_drain();
                }
                libc::SIGUSR2 if self.role == Role::Worker && self.ctx.drain_started.is_none() => {
                    log::warn!("worker: the supervisor is gone; draining");
                    self.begin_drain();
                }
                libc::SIGUSR2 => {}
                libc::SIGINT => {
                    log::info!("second SIGINT: stopping now");
                    self.abandon_reload("this instance is stopping");
                    self.stop_workers_now();
                    self.signal_old_gens(libc::SIGTERM);
                    return Some(Exit::Immediate);
                }
                libc::SIGTERM => {
                    log::info!("SIGTERM: stopping now");
                    if self.role != Role::Worker {
                        handover::notify("STOPPING=1");
                    }
                    // A generation still starting would outlive us and keep serving after a
                    // stop: end it too.
                    self.abandon_reload("this instance is stopping");
                    self.stop_workers_now();
                    self.signal_old_gens(libc::SIGTERM);
                    return Some(Exit::Immediate);
                }
                libc::SIGHUP => {
                    self.signal_workers(libc::SIGHUP);
                    self.signal_old_gens(libc::SIGHUP);
                    crate::log::reopen_errorlog();
                    for l in &mut self.ctx.accesslogs {
                        l.reopen();
                    }
                    log::info!("SIGHUP: logs reopened");
                }
                _ => {}
            }
        }
        None
    }

    /// SIGINT: stop listening at once, let requests in flight finish, answer keep-alive
    /// clients with `Connection: close`, and give idle ones a short window.
    pub fn begin_drain(&mut self) {
        log::info!(
            "graceful shutdown: {} connection(s) to finish",
            self.conns.len()
        );
        for l in self.listeners.iter_mut() {
            if let Some(mut l) = l.take() {
                let _ = self.poll.registry().deregister(&mut l.sock);
            }
        }
        self.ctx.drain_started = Some(self.ctx.now);
        // Workers drain the same way; the supervisor waits for them, a little past their
        // own deadline.
        self.signal_workers(libc::SIGINT);
        if !self.workers.is_empty() {
            let t = self.ctx.cfg.graceful_shutdown_timeout;
            if !t.is_zero() {
                self.workers_deadline = Some(self.ctx.now + t + WORKER_STOP_WAIT);
            }
        }
        // Nobody can take over from a stopping instance. Dropping the socket removes its file
        // only if it is still ours (a new generation may have replaced it).
        if let Some(mut c) = self.control.take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.listener.as_raw_fd()));
            if self.handed_over {
                c.disarm();
            }
        }
        self.abandon_reload("this instance is stopping");
        let t = self.ctx.cfg.graceful_shutdown_timeout;
        if !t.is_zero() {
            self.drain_deadline = Some(self.ctx.now + t);
        }
        self.accept_pending = false;
    }

    fn scan_timeouts(&mut self) {
        self.last_scan = self.ctx.now;
        let now = self.ctx.now;
        let mut expired = std::mem::take(&mut self.scratch_keys);
        expired.clear();
        for (k, c) in self.conns.iter() {
            if c.deadline(&self.ctx) <= now {
                expired.push(k);
            }
        }
        for &k in &expired {
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            let step = c.timeout(&mut self.ctx);
            self.after_drive(k, step);
        }
        self.scratch_keys = expired;
    }

    /// SIGUSR1: re-execute our binary with the listeners. Under systemd (NOTIFY_SOCKET) as a
    /// child that becomes the main pid once ready, and we drain; otherwise in place, so the pid
    /// a supervisor or pid file knows stays in charge.
    fn start_reexec(&mut self) {
        if self.ctx.drain_started.is_some() {
            log::info!("SIGUSR1 ignored: this instance is already stopping");
            return;
        }
        if self.reload.is_some() {
            log::info!("SIGUSR1: a reload is already under way; coalesced into it");
            return;
        }
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            self.reload_in_place();
            return;
        }
        let fds: Vec<_> = self
            .listeners
            .iter()
            .flatten()
            .map(|l| l.raw_fd())
            .collect();
        handover::notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            handover::monotonic_usec()
        ));
        let child = match handover::spawn_generation(&self.reexec.exe, &self.reexec.args, &fds) {
            Ok(c) => c,
            Err(e) => {
                log::error!(
                    "reload failed: starting {}: {}; still serving",
                    self.reexec.exe.display(),
                    e
                );
                handover::notify("READY=1");
                return;
            }
        };
        let fd = child.ready.as_raw_fd();
        // SAFETY: fcntl on the pipe we own; non-blocking so the loop never waits on it.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), CHILD_TOKEN, Interest::READABLE)
        {
            log::error!("reload failed: watching the new generation: {}", e);
            self.kill_child(child.pid);
            return;
        }
        log::info!(
            "SIGUSR1: started new generation (pid {}) with {} listening socket(s)",
            child.pid,
            fds.len()
        );
        self.reload = Some(Reload::Child {
            child,
            buf: Vec::new(),
            deadline: self.ctx.now + RELOAD_TIMEOUT,
        });
    }

    /// SIGUSR1 without systemd: fork the old generation off to finish its connections (a
    /// supervisor's workers already are that), and re-execute this process in place with the
    /// listeners. Returns only in the forked old generation, or if nothing was started.
    fn reload_in_place(&mut self) {
        let exe = self.reexec.exe.clone();
        let Ok(path) =
            std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(exe.as_os_str()))
        else {
            log::error!(
                "reload failed: {}: not a valid path; still serving",
                exe.display()
            );
            return;
        };
        // SAFETY: a NUL-terminated path. Checked first because after the fork there is no
        // going back to serving here.
        if unsafe { libc::access(path.as_ptr(), libc::X_OK) } != 0 {
            log::error!(
                "reload failed: {}: {}; still serving",
                exe.display(),
                io::Error::last_os_error()
            );
            return;
        }
        let fds: Vec<RawFd> = self
            .listeners
            .iter()
            .flatten()
            .map(|l| l.raw_fd())
            .collect();
        let mut children: Vec<crate::inplace::OldGen> = self
            .old_gens
            .iter()
            .map(|&pid| crate::inplace::OldGen {
                pid,
                serving: false,
            })
            .collect();
        for l in &mut self.ctx.accesslogs {
            l.flush();
        }
        crate::inplace::hold_signals();
        if self.role == Role::Single {
            // SAFETY: getpid has no preconditions.
            let me = unsafe { libc::getpid() };
            // SAFETY: lightd is single-threaded, so the child is a consistent copy.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                crate::inplace::release_signals(false);
                log::error!(
                    "reload failed: forking the old generation: {}; still serving",
                    io::Error::last_os_error()
                );
                return;
            }
            if pid == 0 {
                self.become_old_generation(me);
                return;
            }
            children.push(crate::inplace::OldGen {
                pid: pid as u32,
                serving: true,
            });
        } else {
            // The workers serve until the new image has its own.
            children.extend(
                self.workers
                    .iter()
                    .map(|&pid| crate::inplace::OldGen { pid, serving: true }),
            );
        }
        log::info!(
            "SIGUSR1: reloading in place with {} listening socket(s); the old generation \
             serves until this process is ready",
            fds.len()
        );
        let e = crate::inplace::exec(&exe, &self.reexec.args, &fds, &children);
        log::error!("reload failed: executing {}: {}", exe.display(), e);
        // The old generation has the connections now, so this image cannot serve again: it
        // waits as a failed new image would.
        let mut keep = Vec::new();
        for &fd in &fds {
            // SAFETY: duplicating a descriptor that is open in this process.
            let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if d >= 0 {
                // SAFETY: a fresh descriptor owned by nothing else.
                keep.push(unsafe { OwnedFd::from_raw_fd(d) });
            }
        }
        let ip = crate::inplace::InPlace::new(keep, children, exe, self.reexec.args.clone());
        let code = crate::inplace::wait(ip);
        std::process::exit(code)
    }

    /// In the child forked by an in-place reload: finish what we have, accepting until the new
    /// image is ready (SIGINT) or has died (SIGUSR2, the parent-death signal).
    fn become_old_generation(&mut self, parent: libc::pid_t) {
        // SAFETY: plain system calls.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2) };
        crate::inplace::release_signals(false);
        self.old_generation = true;
        // The pid file and control socket stay with the process the supervisor knows.
        self.handed_over = true;
        if let Some(mut c) = self.control.take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.listener.as_raw_fd()));
            c.disarm();
        }
        // Their parent is the other process.
        self.old_gens.clear();
        self.zombies.clear();
        // SAFETY: plain system call.
        if unsafe { libc::getppid() } != parent {
            log::warn!("in-place reload: the new image is already gone; draining");
            self.begin_drain();
        }
    }

    fn signal_old_gens(&self, sig: libc::c_int) {
        for &pid in &self.old_gens {
            // SAFETY: our children, not yet reaped, so the pids are ours.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }

    /// A process connected to the control socket: a new generation asking for the listeners.
    fn on_control_accept(&mut self) {
        // Edge-triggered: accept until WouldBlock, or a queued caller would wait for its
        // timeout. Bounded all the same; one takeover at a time, extra callers are refused.
        for _ in 0..4096 {
            let Some(c) = self.control.as_ref() else {
                return;
            };
            let conn = match c.listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("control socket accept: {}", e);
                    return;
                }
            };
            // SAFETY: plain system call.
            let me = unsafe { libc::geteuid() };
            let uid = handover::peer_uid(&conn);
            if uid != Some(0) && uid != Some(me) {
                log::warn!("control socket: refused a takeover from uid {:?}", uid);
                continue;
            }
            if self.reload.is_some() || self.ctx.drain_started.is_some() {
                log::info!("control socket: refused a takeover: a reload is already under way");
                continue;
            }
            if conn.set_nonblocking(true).is_err() {
                continue;
            }
            if let Err(e) = self.poll.registry().register(
                &mut SourceFd(&conn.as_raw_fd()),
                CONTROL_CONN_TOKEN,
                Interest::READABLE,
            ) {
                log::warn!("control socket: {}", e);
                continue;
            }
            self.reload = Some(Reload::Takeover {
                conn,
                buf: Vec::new(),
                sent: false,
                deadline: self.ctx.now + RELOAD_TIMEOUT,
            });
            self.on_reload_progress();
        }
    }

    /// Read what the new generation said (pipe or control connection) and act on it.
    fn on_reload_progress(&mut self) {
        let mut eof = false;
        let mut chunk = [0u8; 128];
        {
            let (src, buf): (&mut dyn Read, &mut Vec<u8>) = match self.reload.as_mut() {
                Some(Reload::Child { child, buf, .. }) => (&mut child.ready, buf),
                Some(Reload::Takeover { conn, buf, .. }) => (conn, buf),
                None => return,
            };
            loop {
                match src.read(&mut chunk) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if buf.len() > CONTROL_MSG_MAX {
                            eof = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        eof = true;
                        break;
                    }
                }
            }
        }

        // Act on each complete line.
        loop {
            let line = match self.reload.as_mut() {
                Some(Reload::Child { buf, .. }) | Some(Reload::Takeover { buf, .. }) => {
                    match buf.iter().position(|b| *b == b'\n') {
                        Some(i) => {
                            let line: Vec<u8> = buf.drain(..=i).collect();
                            String::from_utf8_lossy(&line).trim().to_string()
                        }
                        None => break,
                    }
                }
                None => return,
            };
            if self.on_reload_line(&line) {
                return;
            }
        }
        if eof {
            let why = match &self.reload {
                Some(Reload::Child { child, .. }) => {
                    format!(
                        "the new generation (pid {}) exited before it was ready",
                        child.pid
                    )
                }
                _ => "the new generation disconnected before it was ready".to_string(),
            };
            self.abandon_reload(&why);
        }
    }

    /// Returns true when the reload is over (either way).
    fn on_reload_line(&mut self, line: &str) -> bool {
        let kind_child = matches!(self.reload, Some(Reload::Child { .. }));
        if kind_child {
            if line == "READY" {
                let pid = match &self.reload {
                    Some(Reload::Child { child, .. }) => child.pid,
                    _ => 0,
                };
                self.complete_reload(pid);
                return true;
            }
            if let Some(msg) = line.strip_prefix("ERROR ") {
                let why = format!("the new generation failed: {}", msg);
                self.abandon_reload(&why);
                return true;
            }
            return false;
        }
        // The control-socket conversation.
        if line == "TAKEOVER 1" {
            let fds: Vec<_> = self
                .listeners
                .iter()
                .flatten()
                .map(|l| (l.raw_fd(), l.local))
                .collect();
            let res = match &self.reload {
                Some(Reload::Takeover { conn, .. }) => handover::send_listeners(conn, &fds),
                _ => return true,
            };
            if let Err(e) = res {
                self.abandon_reload(&format!("sending the listening sockets: {}", e));
                return true;
            }
            if let Some(Reload::Takeover { sent, .. }) = self.reload.as_mut() {
                *sent = true;
            }
            handover::notify(&format!(
                "RELOADING=1\nMONOTONIC_USEC={}",
                handover::monotonic_usec()
            ));
            log::info!(
                "control socket: handed {} listening socket(s) to a new generation",
                fds.len()
            );
            return false;
        }
        if let Some(pid) = line.strip_prefix("READY ") {
            let sent = matches!(self.reload, Some(Reload::Takeover { sent: true, .. }));
            if let (true, Ok(pid)) = (sent, pid.parse::<u32>()) {
                if let Some(Reload::Takeover { conn, .. }) = self.reload.as_mut() {
                    // The acknowledgement lets the new generation know we heard it.
                    let _ = conn.write_all(b"OK\n");
                }
                self.complete_reload(pid);
                return true;
            }
        }
        self.abandon_reload(&format!(
            "unexpected message on the control socket: {:?}",
            line
        ));
        true
    }

    /// The new generation serves: hand systemd the new main pid and drain like SIGINT.
    fn complete_reload(&mut self, pid: u32) {
        self.drop_reload_source();
        log::info!("reload: new generation (pid {}) is ready; draining", pid);
        // From the current main pid this is accepted even with NotifyAccess=main. No
        // STOPPING=1 here: the service is not stopping, only this process is.
        handover::notify(&format!("MAINPID={}\nREADY=1", pid));
        self.handed_over = true;
        self.begin_drain();
    }

    /// The reload did not happen: keep serving, say why, clean up the attempt.
    fn abandon_reload(&mut self, why: &str) {
        let Some(child) = self.drop_reload_source() else {
            return;
        };
        if let Some(pid) = child {
            self.kill_child(pid);
        }
        if self.ctx.drain_started.is_none() {
            log::error!("reload failed: {}; still serving", why);
            handover::notify("READY=1");
        }
    }

    /// End the reload's conversation. None if there was no reload; otherwise the pid of the
    /// child generation, if we started one.
    fn drop_reload_source(&mut self) -> Option<Option<u32>> {
        let (fd, pid) = match self.reload.as_ref()? {
            Reload::Child { child, .. } => (child.ready.as_raw_fd(), Some(child.pid)),
            Reload::Takeover { conn, .. } => (conn.as_raw_fd(), None),
        };
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        self.reload = None;
        Some(pid)
    }

    /// End a generation we started that will not take over, and remember to reap it.
    fn kill_child(&mut self, pid: u32) {
        // SAFETY: signalling a child we started and have not reaped, so the pid is ours.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        self.zombies.push(pid);
    }

    /// Reload deadline, and reaping of failed generations.
    fn check_reload(&mut self) {
        let late = match &self.reload {
            Some(Reload::Child { deadline, .. }) | Some(Reload::Takeover { deadline, .. }) => {
                self.ctx.now >= *deadline
            }
            None => false,
        };
        if late {
            self.abandon_reload(&format!(
                "the new generation was not ready within {} s",
                RELOAD_TIMEOUT.as_secs()
            ));
        }
        self.check_workers();
        self.old_gens.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waiting without blocking for a child of ours.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            r == 0
        });
        self.zombies.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waiting without blocking for a child of ours.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            r == 0
        });
    }
}

impl Server {
    /// Start workers up to the configured number (supervisor only).
    fn spawn_workers(&mut self) {
        let Role::Supervisor { workers } = self.role else {
            return;
        };
        while self.workers.len() < workers && self.ctx.drain_started.is_none() {
            match self.spawn_worker() {
                Some(pid) => self.workers.push(pid),
                None => break,
            }
        }
    }

    /// Fork one worker: it builds its own loop on the same listening sockets and never returns
    /// here.
    fn spawn_worker(&mut self) -> Option<u32> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: lightd is single-threaded, so the child is a consistent copy.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            log::error!("starting a worker: {}", io::Error::last_os_error());
            return None;
        }
        if pid > 0 {
            log::info!("started worker pid {}", pid);
            return Some(pid as u32);
        }
        // The worker must not outlive the supervisor: when it dies, the worker stops accepting
        // and finishes what it has (SIGUSR2), so that the supervisor's restart can bind.
        // SAFETY: plain system calls.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
        }
        // The worker owns its copies of the listening sockets outright, so that its drain
        // closes every one of them. The control socket is the supervisor's: a copy held here
        // would keep it answering no one after the supervisor died.
        let listeners: Vec<Listener> = self.listeners.iter_mut().filter_map(Option::take).collect();
        if let Some(mut c) = self.control.take() {
            c.disarm();
        }
        let code = match worker_main(self.ctx.cfg.clone(), listeners) {
            Ok(()) => 0,
            Err(e) => {
                log::error!("worker: {}", e);
                1
            }
        };
        // Skip every destructor of the supervisor's state copied into this process (the pid
        // file and control socket belong to the supervisor).
        std::process::exit(code)
    }

    fn signal_workers(&self, sig: libc::c_int) {
        for &pid in &self.workers {
            // SAFETY: signalling our own children, not yet reaped, so the pids are ours.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }

    /// Tell workers to stop at once and wait for them, bounded.
    fn stop_workers_now(&mut self) {
        if self.workers.is_empty() {
            return;
        }
        self.signal_workers(libc::SIGTERM);
        self.reap_workers_blocking(WORKER_STOP_WAIT);
        if !self.workers.is_empty() {
            self.signal_workers(libc::SIGKILL);
            self.reap_workers_blocking(Duration::from_secs(1));
        }
    }

    fn reap_workers_blocking(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        while !self.workers.is_empty() && Instant::now() < until {
            self.reap_workers();
            if !self.workers.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Reap exited workers; returns how many ended.
    fn reap_workers(&mut self) -> usize {
        let before = self.workers.len();
        self.workers.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waiting without blocking for a child of ours.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            if r == 0 {
                return true;
            }
            if libc::WIFSIGNALED(status)
                || (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0)
            {
                log::warn!("worker pid {} ended abnormally (status {:#x})", pid, status);
            }
            false
        });
        before - self.workers.len()
    }

    /// Reap workers, and replace those that ended while we are not stopping.
    fn check_workers(&mut self) {
        if self.workers.is_empty() && !matches!(self.role, Role::Supervisor { .. }) {
            return;
        }
        let ended = self.reap_workers();
        if ended > 0 && self.ctx.drain_started.is_none() {
            log::warn!("{} worker(s) ended; starting replacements", ended);
            self.spawn_workers();
        }
    }

    /// Mark this process as a worker (set in the forked child).
    fn become_worker(&mut self) {
        self.role = Role::Worker;
    }
}

/// A worker's life: its own loop on copies of the supervisor's listening sockets.
fn worker_main(cfg: Config, listeners: Vec<Listener>) -> io::Result<()> {
    let reexec = Reexec {
        exe: PathBuf::new(),
        args: Vec::new(),
    };
    let mut server = Server::new(cfg, listeners, None, reexec)?;
    server.become_worker();
    server.run().map(|_| ())
}

/// The soft RLIMIT_NOFILE in force.
fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    // rlim_t is 32 bits on some embedded targets.
    #[allow(clippy::unnecessary_cast)]
    let cur = lim.rlim_cur as u64;
    cur
}
