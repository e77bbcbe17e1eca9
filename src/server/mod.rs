//! The event loop: one `mio::Poll` owning the listeners, the signal pipe and a slab of
//! connections; accepting, dispatching readiness, timers and the graceful stop.
//!
//! Tokens: connections use their slab key; reserved tokens count down from `usize::MAX`
//! (signals, then one per listener). Descriptors that handlers will wait on (CGI pipes, proxy
//! sockets) get their own reserved range and are routed to the owning connection.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::config::Config;
use crate::conn::{Conn, Drive};
use crate::ctx::Ctx;
use crate::handover::{self, Child, ControlSocket};
use crate::listener::Listener;

mod reload;
mod workers;

pub use reload::Reexec;
use reload::Reload;

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

/// How often deadlines are checked while there are connections.
const TICK: Duration = Duration::from_millis(250);

/// After EMFILE/ENFILE on accept, wait this long (or for a connection to close) before trying
/// again, instead of spinning on a listener that stays ready.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A connection must have stalled this long before it is evicted to make room at the limit.
const EVICT_AFTER: Duration = Duration::from_secs(1);

/// Connections accepted from one listener per turn, so a flood cannot starve existing ones.
const ACCEPTS_PER_TURN: usize = 256;

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
            // A CGI child ended: reap it (backend::reap).
            #[cfg(feature = "backend")]
            libc::SIGCHLD,
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
        // Each connection may hold a socket and an open file; keep some descriptors for the
        // listeners, logs, the poll and signal descriptors, the control socket and the large
        // files the file cache keeps open (a sixteenth of them, up to its maximum).
        let fds = cfg.max_fds.unwrap_or_else(nofile_limit) as usize;
        let cached_fds = (fds / 16).min(crate::handlers::cache::MAX_FDS);
        let reserve = 16 + 2 * ls.len() + cached_fds;
        let max_conns = cfg
            .max_connections
            .max(1)
            .min((fds.saturating_sub(reserve) / 2).max(1));
        let now = Instant::now();
        let listener_addrs = ls.iter().flatten().map(|l| l.local).collect();
        #[cfg(feature = "backend")]
        let mut ctx = Ctx::new(cfg, listener_addrs, poll.registry().try_clone()?)?;
        #[cfg(not(feature = "backend"))]
        let mut ctx = Ctx::new(cfg, listener_addrs)?;
        ctx.cache.set_max_fds(cached_fds);
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

    /// The certificates loaded at start (before privileges were dropped): the listeners
    /// whose config enables `ssl.engine` speak TLS with them.
    #[cfg(feature = "tls")]
    pub fn set_tls(&mut self, store: crate::tls::certs::Store) {
        let addrs: Vec<std::net::SocketAddr> = self
            .listeners
            .iter()
            .map(|l| l.as_ref().map(|l| l.local))
            .map(|a| a.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()))
            .collect();
        self.ctx.tls = crate::tls::Tls::new(&self.ctx.cfg, store, &addrs);
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
        // The FastCGI/SCGI processes this generation spawns, before any worker is forked (the
        // workers use them), after privileges were dropped (they run as the server's user,
        // as lighttpd's do).
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        self.ctx.start_pools();
        let exit = self.run_loop();
        // This generation's requests are done (or cut at the deadline): its pools go too.
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        self.ctx.stop_pools(self.role == Role::Worker);
        exit
    }

    fn run_loop(&mut self) -> io::Result<Exit> {
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
                    #[cfg(feature = "backend")]
                    t if crate::backend::job::owner(t).is_some() => {
                        if let Some((k, which)) = crate::backend::job::owner(t) {
                            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                            let writable =
                                ev.is_writable() || ev.is_write_closed() || ev.is_error();
                            if let Some(c) = self.conns.get_mut(k) {
                                c.backend_ready(which, readable, writable);
                                self.drive(k);
                            }
                        }
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
                // Children that ended (a coalesced SIGCHLD is caught here), and the pools'
                // restarts.
                #[cfg(feature = "backend")]
                crate::backend::reap::reap(self.ctx.now);
                #[cfg(any(feature = "fastcgi", feature = "scgi"))]
                self.ctx.tick_pools();
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
            || self.backend_children()
        {
            return Some(idle.map_or(TICK, |d| d.min(TICK)));
        }
        // Nothing else to time out: sleep until something happens.
        idle
    }

    /// Children of backends to reap or to watch: the loop keeps its tick for them.
    fn backend_children(&self) -> bool {
        #[cfg(feature = "backend")]
        if crate::backend::reap::pending() > 0 {
            return true;
        }
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        if self.ctx.pools.iter().any(Option::is_some) {
            return true;
        }
        false
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
        let mut gone = self.conns.try_remove(k);
        #[cfg(feature = "backend")]
        if let Some(c) = gone.as_mut() {
            c.stop_backend(&mut self.ctx);
        }
        #[cfg(feature = "status")]
        if let Some(c) = &gone {
            self.ctx.stats.conn_change(Some(c.shown_state()), None);
        }
        if let Some(c) = gone.as_mut() {
            c.recycle(&mut self.ctx);
        }
        drop(gone);
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
                        let entry = self.conns.vacant_entry();
                        let key = entry.key();
                        #[cfg(feature = "tls")]
                        let tls = self.ctx.tls.on(i);
                        #[cfg(not(feature = "tls"))]
                        let tls = false;
                        entry.insert(Conn::new(sock, key, peer, i, self.ctx.now, tls));
                        #[cfg(feature = "status")]
                        self.ctx.stats.conn_change(
                            None,
                            Some(crate::handlers::status_page::ConnState::ReadHead),
                        );
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
                #[cfg(feature = "backend")]
                libc::SIGCHLD => {
                    crate::backend::reap::reap(self.ctx.now);
                    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
                    self.ctx.tick_pools();
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
