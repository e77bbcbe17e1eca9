//! One client connection: a state machine driven by readiness until it can make no progress.
//!
//! Phases: `Head` (read and parse a request head) -> `Body` (read and discard a request body)
//! -> `Write` (send the response) -> back to `Head` for keep-alive, or `Linger` (half-close,
//! read and discard until the client closes) before the socket is dropped.
//!
//! The socket is registered once for read and write readiness, edge-triggered. The connection
//! remembers which directions are ready and clears a flag only on `WouldBlock`, so a direction
//! it stopped using (to apply back-pressure, or to be fair to others) is still known to be ready
//! when it comes back to it.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::net::TcpStream;

use crate::ctx::{Bufs, Ctx};
#[cfg(feature = "status")]
use crate::handlers::status_page::ConnState;
use crate::handlers::{self, Persist, Seg};
use crate::http::chunked::Declared;
use crate::http::request::{self, Head, Method, Version};
use crate::http::HttpError;
use crate::pipeline::{self, BodyState, ConnInfo, Exchange};

/// How long a closing connection waits, without hearing from the client, for it to close its
/// side.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// The most time a closing connection spends discarding what a client keeps sending.
const LINGER_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// After its first server.max-read-idle seconds, a request body must have averaged at least
/// this many bytes per second, so a client trickling a body cannot hold a slot indefinitely
/// while never going idle long enough to trip the idle deadline.
pub const MIN_BODY_RATE: u64 = 512;

/// How many requests one connection may serve per turn of the loop before others get a turn.
const REQUESTS_PER_TURN: u32 = 16;

/// Responses to pipelined requests are held back and sent together up to this many bytes
/// (`Bufs::batch`); a larger one goes out with what is held at once.
const BATCH_MAX: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
    /// A backend (CGI, FastCGI, SCGI, proxy) serves the request: its body goes to the
    /// backend, and the backend's response to the client, as they flow.
    #[cfg(feature = "backend")]
    Backend,
    Write,
    Linger,
}

/// What the server should do with the connection after driving it.
#[derive(Debug, PartialEq, Eq)]
pub enum Drive {
    /// Waiting for readiness or a timer.
    Wait,
    /// Still has work it can do now; drive it again after others had their turn.
    Yield,
    /// Finished: deregister and drop it.
    Close,
}

/// The interim response a client that sent `Expect: 100-continue` waits for.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

pub struct Conn {
    sock: TcpStream,
    /// The connection's slab key: its backend descriptors' tokens are derived from it.
    #[cfg_attr(not(feature = "backend"), allow(dead_code))]
    key: usize,
    /// Registered with the poll (lazily, when it first has to wait).
    pub registered: bool,
    /// The lingering close has just begun: give the client a turn to close before reading.
    linger_fresh: bool,
    peer: SocketAddr,
    /// Index of the listener it came from.
    listener: usize,
    phase: Phase,
    /// Buffers, taken from the server's pool while the connection has work and given back
    /// while it idles, so idle keep-alive connections hold no large buffers.
    bufs: Option<Box<Bufs>>,
    /// Bytes of `bufs.rbuf` holding data.
    rlen: usize,
    readable: bool,
    writable: bool,
    /// The peer's FIN was reported: the end of stream must be read, no new edge will come.
    read_closed: bool,
    /// New bytes arrived (or were left over) since the last parse attempt.
    parse_pending: bool,
    /// The request being served, from its parsed head until its response is out.
    ex: Option<Exchange>,
    requests: u32,
    last_io: Instant,
    /// When the first byte of the current request head arrived.
    head_start: Option<Instant>,
    linger_start: Option<Instant>,
    /// A 100 Continue is owed to the client, and how much of it is out.
    interim: Option<usize>,
    /// The peer's address as text, made once for conditions on $HTTP["remote-ip"].
    peer_ip: Option<Box<str>>,
    /// The state mod_status counts this connection in.
    #[cfg(feature = "status")]
    shown: ConnState,
    /// TLS on this connection (a listener with ssl.engine): every read and write goes
    /// through it.
    #[cfg(feature = "tls")]
    tls: Option<Box<crate::tls::session::Session>>,
    /// The close_notify is queued but not yet written: the half-close waits for it.
    #[cfg(feature = "tls")]
    shut_pending: bool,
}

impl Conn {
    pub fn new(
        sock: TcpStream,
        key: usize,
        peer: SocketAddr,
        listener: usize,
        now: Instant,
        tls: bool,
    ) -> Conn {
        let _ = tls;
        Conn {
            sock,
            key,
            registered: false,
            linger_fresh: false,
            peer,
            listener,
            phase: Phase::Head,
            bufs: None,
            rlen: 0,
            readable: true,
            writable: true,
            read_closed: false,
            parse_pending: false,
            ex: None,
            requests: 0,
            last_io: now,
            head_start: None,
            linger_start: None,
            interim: None,
            peer_ip: None,
            #[cfg(feature = "status")]
            shown: ConnState::ReadHead,
            #[cfg(feature = "tls")]
            tls: tls.then(Box::default),
            #[cfg(feature = "tls")]
            shut_pending: false,
        }
    }

    /// "https" on a TLS listener, else "http": for conditions, backends and redirects.
    fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// Nothing of TLS is in progress: no handshake half done, no records left to write.
    fn tls_quiet(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(t) = self.tls.as_ref() {
            return !t.handshaking() && !t.wants_write();
        }
        true
    }

    /// The state mod_status counts this connection in (a new one is in ReadHead).
    #[cfg(feature = "status")]
    pub fn shown_state(&self) -> ConnState {
        self.shown
    }

    /// Move this connection's count to the state its phase is in now. Called where the
    /// phase settles (after each drive), so it costs a comparison per wake-up.
    #[cfg(feature = "status")]
    fn show_state(&mut self, ctx: &mut Ctx, now: Option<ConnState>) {
        if !ctx.count_states {
            // No status page to show them on.
            return;
        }
        let now = now.unwrap_or(match self.phase {
            Phase::Head if self.requests > 0 && self.rlen == 0 && self.ex.is_none() => {
                ConnState::KeepAlive
            }
            Phase::Head => ConnState::ReadHead,
            Phase::Body => ConnState::ReadBody,
            #[cfg(feature = "backend")]
            Phase::Backend => ConnState::Write,
            Phase::Write => ConnState::Write,
            Phase::Linger => ConnState::Linger,
        });
        if now != self.shown {
            ctx.stats.conn_change(Some(self.shown), Some(now));
            self.shown = now;
        }
    }

    pub fn sock_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Record the readiness an event reported.
    pub fn ready(&mut self, readable: bool, writable: bool, read_closed: bool) {
        self.readable |= readable;
        self.writable |= writable;
        self.read_closed |= read_closed;
    }

    /// Idle: between requests with nothing buffered, so closing it loses nothing the client
    /// has sent us yet.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Head
            && self.rlen == 0
            && self.ex.is_none()
            && !self.batched()
            && self.tls_quiet()
    }

    /// Responses to pipelined requests are held back in `Bufs::batch`, not yet sent.
    /// With TLS, records already made from them but not yet written count too: until they
    /// are out, nothing more is read (a close read meanwhile would drop them).
    fn batched(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.as_ref().is_some_and(|t| t.wants_write()) {
            return true;
        }
        self.bufs.as_ref().is_some_and(|b| !b.batch.is_empty())
    }

    /// Since when this connection has held a slot without giving us a complete request head:
    /// a partial head, or nothing at all on a new connection. None for connections doing useful
    /// work or idling between requests. At the connection limit the oldest such connection is
    /// closed to make room, so slow clients cannot lock everyone else out.
    pub fn stalled_since(&self) -> Option<Instant> {
        if self.phase != Phase::Head || self.ex.is_some() || self.batched() {
            return None;
        }
        if self.rlen > 0 {
            self.head_start
        } else if self.requests == 0 {
            Some(self.last_io)
        } else {
            None
        }
    }

    /// When the current phase times out. `drain` is when a graceful stop began.
    pub fn deadline(&self, ctx: &Ctx) -> Instant {
        let cfg = &ctx.cfg;
        match self.phase {
            // Responses held back wait for the client to take them.
            Phase::Head if self.batched() => self.last_io + cfg.max_write_idle,
            Phase::Head if self.is_idle() => {
                let idle = if self.requests == 0 {
                    cfg.max_read_idle
                } else {
                    cfg.max_keep_alive_idle
                };
                let mut d = self.last_io + idle;
                if let Some(drain) = ctx.drain_started {
                    // During a drain an idle connection gets a short window for a request
                    // that may already be on its way, counted from the later of its last
                    // activity and the start of the drain.
                    d = d.min(self.last_io.max(drain) + crate::ctx::DRAIN_IDLE_WINDOW);
                }
                d
            }
            Phase::Head => {
                let d = self.last_io + cfg.max_read_idle;
                match self.head_start {
                    Some(s) => d.min(s + cfg.max_request_head_time),
                    None => d,
                }
            }
            Phase::Body => {
                let (start, seen) = self
                    .ex
                    .as_ref()
                    .map_or((self.last_io, 0), |ex| (ex.start, ex.body_seen));
                let rate = start
                    + cfg.max_read_idle
                    + std::time::Duration::from_secs(seen / MIN_BODY_RATE);
                (self.last_io + cfg.max_read_idle).min(rate)
            }
            #[cfg(feature = "backend")]
            Phase::Backend => {
                // A tunnel's own deadlines (idle, pings, a drain's end).
                #[cfg(any(feature = "proxy", feature = "wstunnel"))]
                if let Some(ex) = self.ex.as_ref() {
                    if let Some(d) = crate::pipeline::tunnel::deadline(ctx, ex, self.last_io) {
                        return d;
                    }
                }
                // Waiting on the client to take output (server.max-write-idle), or on the
                // backend (its read-timeout, else server.max-read-idle).
                let writing = self.bufs.as_ref().is_some_and(|b| !b.segs.is_empty());
                let idle = if writing {
                    cfg.max_write_idle
                } else {
                    self.ex
                        .as_ref()
                        .and_then(|ex| ex.backend.as_ref())
                        .and_then(|g| g.read_timeout())
                        .unwrap_or(cfg.max_read_idle)
                };
                let d = self.last_io + idle;
                // mod_proxy's connect-timeout.
                #[cfg(any(feature = "proxy", feature = "wstunnel"))]
                let d = self
                    .ex
                    .as_ref()
                    .and_then(crate::pipeline::proxy::deadline)
                    .map_or(d, |p| d.min(p));
                d
            }
            Phase::Write => match self.ex.as_ref().and_then(|ex| ex.hold_until) {
                Some(t) if t > self.last_io => t,
                _ => self.last_io + cfg.max_write_idle,
            },
            Phase::Linger => {
                (self.last_io + LINGER).min(self.linger_start.unwrap_or(self.last_io) + LINGER_MAX)
            }
        }
    }

    /// The deadline passed: an idle or lingering connection is closed gently, anything else
    /// at once.
    pub fn timeout(&mut self, ctx: &mut Ctx) -> Drive {
        match self.phase {
            Phase::Head if self.is_idle() => {
                // Look before closing. After the loop stalled (a stopped process, a slow
                // disk) every idle deadline has passed at once, and a connection's next
                // request may already be in its socket with its event not yet handled (one
                // poll returns at most so many events). Such a connection is not idle.
                let before = self.last_io;
                self.readable = true;
                let step = self.drive(ctx);
                if self.last_io != before || !self.is_idle() || step != Drive::Wait {
                    return step;
                }
                self.start_linger(ctx);
                self.drive(ctx)
            }
            Phase::Write
                if self
                    .ex
                    .as_ref()
                    .and_then(|ex| ex.hold_until)
                    .is_some_and(|t| ctx.now >= t) =>
            {
                // A held response may leave now.
                if let Some(ex) = self.ex.as_mut() {
                    ex.hold_until = None;
                }
                self.drive(ctx)
            }
            #[cfg(feature = "backend")]
            Phase::Backend => {
                #[cfg(any(feature = "proxy", feature = "wstunnel"))]
                if self
                    .ex
                    .as_ref()
                    .is_some_and(crate::pipeline::tunnel::is_open)
                {
                    return self.tunnel_timeout(ctx);
                }
                // The backend said nothing for too long (or the client took nothing): a
                // 504 if the head has not gone out, else the response cannot be finished.
                log::warn!("{}: backend timed out", self.peer);
                match self.backend_failed(ctx, 504) {
                    Step::Close => Drive::Close,
                    _ => self.drive(ctx),
                }
            }
            _ => {
                log::debug!("{}: timeout in {:?}", self.peer, self.phase);
                Drive::Close
            }
        }
    }

    /// Make all the progress possible now.
    pub fn drive(&mut self, ctx: &mut Ctx) -> Drive {
        let d = self.drive_steps(ctx);
        #[cfg(feature = "status")]
        self.show_state(ctx, None);
        d
    }

    fn drive_steps(&mut self, ctx: &mut Ctx) -> Drive {
        let mut served = 0u32;
        // TLS records left over from the last turn go first: a writable event may be all
        // that woke us.
        #[cfg(feature = "tls")]
        if let Some(t) = self.tls.as_mut() {
            if let Err(e) = t.flush(&self.sock, &mut self.writable) {
                self.io_error("write", e);
                return Drive::Close;
            }
        }
        loop {
            let step = match self.phase {
                Phase::Head => self.step_head(ctx, &mut served),
                Phase::Body => self.step_body(ctx),
                #[cfg(feature = "backend")]
                Phase::Backend => self.step_backend(ctx),
                Phase::Write => self.step_write(ctx),
                Phase::Linger => self.step_linger(ctx.now),
            };
            match step {
                Step::Again => {
                    if served >= REQUESTS_PER_TURN {
                        // Others' turn: what this one has held back goes out first.
                        if let Err(e) = self.flush_batch() {
                            self.io_error("write", e);
                            return Drive::Close;
                        }
                        return Drive::Yield;
                    }
                }
                Step::Wait => {
                    if self.is_idle() {
                        self.release(ctx);
                    }
                    return Drive::Wait;
                }
                Step::Yield => return Drive::Yield,
                Step::Close => return Drive::Close,
            }
        }
    }

    fn bufs(&mut self, ctx: &mut Ctx) -> &mut Bufs {
        self.bufs.get_or_insert_with(|| ctx.take_bufs())
    }

    /// The connection is being closed: its buffers go back to the pool for the next one
    /// (a Connection: close client would otherwise cost a fresh set, zeroed, per request).
    pub fn recycle(&mut self, ctx: &mut Ctx) {
        self.release(ctx);
    }

    fn release(&mut self, ctx: &mut Ctx) {
        if let Some(b) = self.bufs.take() {
            ctx.give_bufs(b);
        }
    }

    /// Read into the buffer after `self.rlen`.
    fn read_more(&mut self, ctx: &mut Ctx) -> io::Result<usize> {
        let rlen = self.rlen;
        let b = self.bufs.get_or_insert_with(|| ctx.take_bufs());
        let room = &mut b.rbuf[rlen..];
        if room.is_empty() {
            // Cannot happen while the buffer is larger than the head limit (the parser
            // answers 431 first); refuse rather than report a false end of stream.
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "read buffer full",
            ));
        }
        let want = room.len();
        #[cfg(feature = "tls")]
        if let Some(t) = self.tls.as_mut() {
            use crate::tls::session::{Error, Ready};
            let (listener, peer) = (self.listener, self.peer);
            let ready = Ready {
                readable: &mut self.readable,
                writable: &mut self.writable,
            };
            let r = t.read(&self.sock, room, ready, &mut |hello| {
                ctx.tls_config(listener, hello, peer)
            });
            if t.take_opened() {
                // A finished handshake is activity: the request is on its way.
                self.last_io = ctx.now;
            }
            return match r {
                Ok(n) => Ok(n),
                Err(Error::Io(e)) => Err(e),
                Err(Error::PlainHttp) => Err(io::Error::new(io::ErrorKind::InvalidData, PlainHttp)),
                Err(e @ Error::NoConfig) => {
                    log::warn!("{}: {}", self.peer, e);
                    Err(io::ErrorKind::ConnectionAborted.into())
                }
                Err(e) => {
                    log::debug!("{}: {}", self.peer, e);
                    Err(io::ErrorKind::ConnectionAborted.into())
                }
            };
        }
        loop {
            match (&self.sock).read(room) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(n) => {
                    // A short read emptied the socket: anything arriving later raises a new
                    // edge, so the read that would only say WouldBlock can be skipped. Not
                    // after a FIN, which raised its edge already and is seen only by reading.
                    if n > 0 && n < want && !self.read_closed {
                        self.readable = false;
                    }
                    return Ok(n);
                }
                r => return r,
            }
        }
    }

    fn step_head(&mut self, ctx: &mut Ctx, served: &mut u32) -> Step {
        if self.rlen > 0 && self.parse_pending {
            self.parse_pending = false;
            let limits = ctx.limits;
            let rlen = self.rlen;
            let bufs = self.bufs(ctx);
            let parsed = request::parse(&mut bufs.rbuf[..rlen], &limits, &mut bufs.headers);
            match parsed {
                Ok(Some(head)) => {
                    *served += 1;
                    self.begin_request(ctx, head);
                    return Step::Again;
                }
                Ok(None) => {}
                Err(e) => {
                    self.bad_request(ctx, e);
                    return Step::Again;
                }
            }
        }
        // No further request is complete: the responses held back for one leave now, and
        // until they have, nothing more is read (as while any response is being written).
        if let Err(e) = self.flush_batch() {
            return self.io_error("write", e);
        }
        if self.batched() {
            return Step::Wait;
        }
        if !self.readable {
            return Step::Wait;
        }
        match self.read_more(ctx) {
            Ok(0) => {
                // The client closed. Between requests that is the normal end; inside a head
                // there is nobody left to answer.
                Step::Close
            }
            Ok(n) => {
                if self.rlen == 0 {
                    self.head_start = Some(ctx.now);
                }
                self.rlen += n;
                self.last_io = ctx.now;
                self.parse_pending = true;
                Step::Again
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Step::Wait
            }
            Err(e) if e.get_ref().is_some_and(|i| i.is::<PlainHttp>()) => {
                // A plain-HTTP client on the TLS port: told so in plain text.
                self.bad_request(ctx, HttpError::new(400, "plain HTTP request on a TLS port"));
                Step::Again
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => Step::Close,
            Err(e) => self.io_error("read", e),
        }
    }

    fn io_error(&self, what: &str, e: io::Error) -> Step {
        io_error_at(self.peer, what, e)
    }

    /// A head was parsed: decide how to read its body, or answer at once.
    fn begin_request(&mut self, ctx: &mut Ctx, head: Head) {
        self.requests += 1;
        // At the connection limit, end keep-alive sooner so that waiting clients get a slot.
        let keep = head.keep_alive
            && ctx.drain_started.is_none()
            && !ctx.end_keep_alive
            && self.requests < ctx.cfg.max_keep_alive_requests.max(1)
            && ctx.cfg.max_keep_alive_requests > 0;
        let mut ex = Exchange::new(Some(head), ctx.now, handlers::persist(head.version, keep));
        ex.head_only = head.method == Method::Head;
        ex.client_closes = !head.keep_alive;
        ex.body = if head.chunked {
            BodyState::Chunked(Box::default())
        } else {
            match head.content_length {
                Some(n) if n > 0 => BodyState::Length(n),
                _ => BodyState::None,
            }
        };
        let limit = ctx.cfg.max_request_size;
        let declared = match ex.body {
            BodyState::Length(n) => Some(n),
            _ => None,
        };
        let has_body = !matches!(ex.body, BodyState::None);
        self.ex = Some(ex);
        if let Some(n) = declared.filter(|&n| limit > 0 && n > limit) {
            // Refuse before reading a byte of it; the body that follows cannot be skipped
            // safely, so the connection ends after the answer.
            log::debug!("{}: request body of {} bytes over the limit", self.peer, n);
            self.respond_error(ctx, 413);
            return;
        }
        if has_body {
            // RFC 9110 §10.1.1: the interim response tells a client that waits that it may
            // send the body. One that sent body bytes with its head is not waiting, and a
            // server may then omit it; lighttpd does, and so do we.
            let body_arrived = self.rlen > head.len;
            if head.expect_continue && head.version == Version::Http11 && !body_arrived {
                self.interim = Some(0);
            }
        }
        // The response is decided now, before the body is read: a backend that takes the
        // body must be chosen before its bytes arrive. Anything else waits in the queue
        // until the body is read (and discarded).
        self.respond(ctx);
        #[cfg(feature = "backend")]
        if let Some(ex) = self.ex.as_mut().filter(|ex| ex.backend.is_some()) {
            if let (BodyState::Chunked(dec), false) =
                (&mut ex.body, ctx.cfg.trailer_whitelist.is_empty())
            {
                dec.keep_trailers();
            }
            self.phase = Phase::Backend;
            return;
        }
        if has_body {
            self.phase = Phase::Body;
        }
    }

    /// Take the body bytes buffered after the head: into the backend's spool when a backend
    /// takes the body, else thrown away. Ok(true) when the body is complete; Err with the
    /// status to answer when it is malformed or too large.
    fn consume_body(&mut self, ctx: &mut Ctx) -> Result<bool, u16> {
        let Some(head) = self.ex.as_ref().and_then(|ex| ex.head) else {
            return Err(400);
        };
        let head_len = head.len;
        if self.rlen <= head_len {
            return Ok(self
                .ex
                .as_ref()
                .is_some_and(|ex| matches!(ex.body, BodyState::None)));
        }
        let limit = ctx.cfg.max_request_size;
        let rlen = self.rlen;
        let (Some(b), Some(ex)) = (self.bufs.as_ref(), self.ex.as_mut()) else {
            return Err(500);
        };
        // The head stays at the start of the buffer while its body is read.
        let (head_bytes, avail) = b.rbuf[..rlen].split_at(head_len);
        let headers = &b.headers[..head.header_count.min(b.headers.len())];
        #[cfg(feature = "backend")]
        let mut sink = ex.backend.as_mut().map(|g| g.body_sink());
        #[cfg(feature = "backend")]
        let mut spool_err: Option<io::Error> = None;
        #[allow(unused_mut)]
        let mut take = |d: &[u8]| {
            #[cfg(feature = "backend")]
            if let Some(s) = sink.as_mut() {
                if spool_err.is_none() {
                    if let Err(e) = s.push(d) {
                        spool_err = Some(e);
                    }
                }
            }
            let _ = d;
        };
        let fed = match &mut ex.body {
            BodyState::None => Ok((0, true)),
            BodyState::Length(n) => {
                let t = (*n).min(avail.len() as u64);
                take(&avail[..t as usize]);
                *n -= t;
                ex.body_seen += t;
                Ok((t as usize, *n == 0))
            }
            BodyState::Chunked(dec) => {
                let listed =
                    |name: &[u8]| request::field_lists(head_bytes, headers, "Trailer", name);
                let announced = request::header(head_bytes, headers, "Trailer").is_some();
                let declared: Declared = if announced { Some(&listed) } else { None };
                let mut seen = 0u64;
                let fed = dec.feed(avail, declared, &mut |d| {
                    seen += d.len() as u64;
                    take(d);
                });
                ex.body_seen += seen;
                fed
            }
        };
        #[cfg(feature = "backend")]
        if let Some(e) = spool_err {
            log::error!("{}: spooling the request body: {}", self.peer, e);
            // No descriptor for the spool file is load, not a fault: 503.
            return Err(match e.raw_os_error() {
                Some(libc::EMFILE) | Some(libc::ENFILE) => 503,
                _ => 500,
            });
        }
        let (used, done) = fed.map_err(|e| {
            log::debug!("{}: bad request body: {}", self.peer, e.reason);
            e.status
        })?;
        let seen = ex.body_seen;
        if done {
            // Whitelisted request trailers reach a backend's environment.
            #[cfg(feature = "backend")]
            if let (BodyState::Chunked(dec), Some(g)) = (&ex.body, ex.backend.as_mut()) {
                g.request_trailers(dec.trailers(), &ctx.cfg.trailer_whitelist);
            }
            ex.body = BodyState::None;
        }
        if let Some(b) = self.bufs.as_mut() {
            b.rbuf.copy_within(head_len + used..rlen, head_len);
        }
        self.rlen -= used;
        if limit > 0 && seen > limit {
            return Err(413);
        }
        Ok(done)
    }

    /// Read more of the request body into the buffer after the head.
    fn read_body(&mut self, ctx: &mut Ctx) -> Step {
        match self.read_more(ctx) {
            // The client went away in the middle of its body: nobody is left to answer.
            Ok(0) => Step::Close,
            Ok(n) => {
                self.rlen += n;
                self.last_io = ctx.now;
                Step::Again
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Step::Wait
            }
            Err(e) => self.io_error("read", e),
        }
    }

    /// Read the body of a request whose response is already queued, and throw it away.
    fn step_body(&mut self, ctx: &mut Ctx) -> Step {
        if let Err(e) = self.flush_batch().and_then(|()| self.flush_interim()) {
            return self.io_error("write", e);
        }
        match self.consume_body(ctx) {
            Err(status) => {
                self.respond_error(ctx, status);
                return Step::Again;
            }
            Ok(true) => {
                self.phase = Phase::Write;
                self.last_io = ctx.now;
                return Step::Again;
            }
            Ok(false) => {}
        }
        if !self.readable {
            return Step::Wait;
        }
        self.read_body(ctx)
    }

    /// Send the responses held back for pipelined requests, alone (what is queued for the
    /// current request waits for its turn). WouldBlock is not an error: they go on later.
    fn flush_batch(&mut self) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        let Some(b) = self.bufs.as_deref_mut() else {
            return Ok(());
        };
        // Bounded: each pass sends something or stops.
        while !b.batch.is_empty() && self.writable {
            #[cfg(feature = "tls")]
            let res = match self.tls.as_deref_mut() {
                Some(t) => send_mem_tls(t, &self.sock, &mut self.writable, b, true),
                None => send_mem(fd, b, true, 0),
            };
            #[cfg(not(feature = "tls"))]
            let res = send_mem(fd, b, true, 0);
            match res {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Write the 100 Continue owed, if any, after the responses held back before it.
    /// WouldBlock is not an error: it goes on later.
    fn flush_interim(&mut self) -> io::Result<()> {
        let Some(mut pos) = self.interim else {
            return Ok(());
        };
        self.flush_batch()?;
        if self.batched() {
            return Ok(());
        }
        while pos < CONTINUE.len() && self.writable {
            #[cfg(feature = "tls")]
            let res = match self.tls.as_deref_mut() {
                Some(t) => {
                    let rest = [IoSlice::new(&CONTINUE[pos..])];
                    t.send(&self.sock, &rest, &mut self.writable)
                }
                None => (&self.sock).write(&CONTINUE[pos..]),
            };
            #[cfg(not(feature = "tls"))]
            let res = (&self.sock).write(&CONTINUE[pos..]);
            match res {
                Ok(n) => pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) => return Err(e),
            }
        }
        self.interim = if pos < CONTINUE.len() {
            Some(pos)
        } else {
            None
        };
        Ok(())
    }

    /// Answer a request that could not be parsed or framed, then close.
    fn bad_request(&mut self, ctx: &mut Ctx, e: HttpError) {
        log::debug!("{}: bad request: {} ({})", self.peer, e.status, e.reason);
        if self.ex.is_none() {
            self.requests += 1;
            let mut ex = Exchange::new(None, ctx.now, Persist::Close);
            // HEAD never carries a body, not even on an error: when the head did not parse,
            // the method still shows at the start of the request line.
            if let Some(b) = self.bufs.as_ref() {
                let raw = &b.rbuf[..self.rlen];
                let start = raw.iter().position(|b| !matches!(b, b'\r' | b'\n'));
                ex.head_only = start.is_some_and(|i| raw[i..].starts_with(b"HEAD "));
            }
            self.ex = Some(ex);
        }
        self.respond_error(ctx, e.status);
    }

    /// An error response after which the connection closes. It replaces any response
    /// already queued (a body turned out too large or malformed while it was being read).
    fn respond_error(&mut self, ctx: &mut Ctx, status: u16) {
        let mut bufs = match self.bufs.take() {
            Some(b) => b,
            None => ctx.take_bufs(),
        };
        bufs.segs.clear();
        bufs.wbuf.clear();
        if self.interim == Some(0) {
            // Not begun: a client told the body is refused need not be invited to send it.
            self.interim = None;
        }
        let ex = self
            .ex
            .get_or_insert_with(|| Exchange::new(None, ctx.now, Persist::Close));
        ex.persist = Persist::Close;
        // Unread input may follow a request we refuse: always close gently.
        ex.client_closes = false;
        ex.body = BodyState::None;
        ex.file = None;
        ex.hold_until = None;
        #[cfg(feature = "deflate")]
        {
            ex.deflate = None;
        }
        #[cfg(feature = "backend")]
        if let Some(mut g) = ex.backend.take() {
            g.stop(ctx);
        }
        pipeline::respond_error(ctx, ex, &mut bufs, status);
        self.bufs = Some(bufs);
        self.phase = Phase::Write;
        self.last_io = ctx.now;
    }

    /// Run the pipeline for the parsed head: a response queued, or a backend chosen.
    fn respond(&mut self, ctx: &mut Ctx) {
        // A status page counts the connection asking for it as writing, as lighttpd's does.
        #[cfg(feature = "status")]
        self.show_state(ctx, Some(ConnState::Write));
        if !ctx.cfg.conds.is_empty() && self.peer_ip.is_none() {
            self.peer_ip = Some(self.peer.ip().to_string().into_boxed_str());
        }
        let mut bufs = match self.bufs.take() {
            Some(b) => b,
            None => ctx.take_bufs(),
        };
        let info = ConnInfo {
            peer: self.peer,
            peer_ip: self.peer_ip.as_deref().unwrap_or(""),
            local: ctx.listener_local(self.listener),
            requests: self.requests,
            scheme: self.scheme(),
            #[cfg(feature = "tls")]
            tls: self.tls.as_deref().and_then(|t| t.connection()),
            #[cfg(feature = "tls")]
            tls_conf: self.tls.as_deref().and_then(|t| t.conf()),
        };
        if let Some(ex) = self.ex.as_mut() {
            pipeline::respond(ctx, ex, &mut bufs, self.rlen, &info);
        }
        self.bufs = Some(bufs);
        self.phase = Phase::Write;
        self.last_io = ctx.now;
    }

    /// Send what is queued. Ok(true) once the queue is empty; Err(step) to stop driving.
    fn send_queued(&mut self, ctx: &mut Ctx) -> Result<bool, Step> {
        if let Err(e) = self.flush_interim() {
            return Err(self.io_error("write", e));
        }
        if self.interim.is_some() {
            return Ok(false);
        }
        let fd = self.sock.as_raw_fd();
        // The last bytes before a close (or a half-close) leave with MSG_MORE: the close then
        // sends them with the FIN in one segment instead of two, each of which costs the
        // sender its delivery.
        let last = match &self.ex {
            #[cfg(feature = "backend")]
            Some(ex) if ex.backend.is_some() => 0,
            // More of a body compressed slice by slice is still to come.
            #[cfg(feature = "deflate")]
            Some(ex) if ex.deflate.is_some() => 0,
            Some(ex) if self.phase == Phase::Write && ex.persist == Persist::Close => {
                libc::MSG_MORE
            }
            _ => 0,
        };
        let Some(b) = self.bufs.as_mut() else {
            return Err(Step::Close);
        };
        // Bounded: each pass sends something, or stops.
        loop {
            // What is held back goes first; a file segment only once nothing is before it.
            let file = match b.segs.front_mut() {
                None if b.batch.is_empty() => break,
                Some(Seg::File { offset, len }) if b.batch.is_empty() => Some((offset, len)),
                _ => None,
            };
            if !self.writable {
                return Ok(false);
            }
            #[cfg(feature = "tls")]
            if let Some(t) = self.tls.as_deref_mut() {
                let res = match file {
                    None => send_mem_tls(t, &self.sock, &mut self.writable, b, false),
                    Some((offset, len)) => {
                        let Some(file) = self.ex.as_ref().and_then(|ex| ex.file.as_ref()) else {
                            return Err(Step::Close);
                        };
                        match send_file_tls(t, &self.sock, &mut self.writable, file, offset, len) {
                            Ok(true) => {
                                b.segs.pop_front();
                                Ok(())
                            }
                            Ok(false) => Ok(()),
                            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                                log::warn!("{}: file shrank while being sent", self.peer);
                                return Err(Step::Close);
                            }
                            Err(e) => Err(e),
                        }
                    }
                };
                if let Some(stop) = sent(
                    res,
                    ctx.now,
                    &mut self.last_io,
                    &mut self.writable,
                    self.peer,
                ) {
                    return stop;
                }
                continue;
            }
            let res = match file {
                None => send_mem(fd, b, false, last),
                Some((offset, len)) => {
                    let Some(file) = self.ex.as_ref().and_then(|ex| ex.file.as_ref()) else {
                        return Err(Step::Close);
                    };
                    let mut off = *offset as libc::off_t;
                    let count = (*len).min(1 << 30) as usize;
                    // SAFETY: both descriptors are open for the duration of the call.
                    let n = unsafe { libc::sendfile(fd, file.as_raw_fd(), &mut off, count) };
                    if n > 0 {
                        *offset += n as u64;
                        *len -= n as u64;
                        if *len == 0 {
                            b.segs.pop_front();
                        }
                        Ok(())
                    } else if n == 0 {
                        // The file is shorter than when we announced its length: the
                        // response cannot be completed honestly, so cut the connection.
                        log::warn!("{}: file shrank while being sent", self.peer);
                        return Err(Step::Close);
                    } else {
                        Err(io::Error::last_os_error())
                    }
                }
            };
            if let Some(stop) = sent(
                res,
                ctx.now,
                &mut self.last_io,
                &mut self.writable,
                self.peer,
            ) {
                return stop;
            }
        }
        // Everything is taken; with TLS, the queue is empty only once its records are out.
        #[cfg(feature = "tls")]
        if let Some(t) = self.tls.as_deref_mut() {
            match t.flush(&self.sock, &mut self.writable) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => return Err(self.io_error("write", e)),
            }
        }
        Ok(true)
    }

    fn step_write(&mut self, ctx: &mut Ctx) -> Step {
        if let Some(t) = self.ex.as_ref().and_then(|ex| ex.hold_until) {
            if ctx.now < t {
                return Step::Wait;
            }
        }
        if self.hold_back() {
            return self.finish_response(ctx);
        }
        match self.send_queued(ctx) {
            #[cfg(feature = "deflate")]
            Ok(true) if self.ex.as_ref().is_some_and(|ex| ex.deflate.is_some()) => {
                self.step_deflate(ctx)
            }
            Ok(true) => self.finish_response(ctx),
            Ok(false) => Step::Wait,
            Err(step) => step,
        }
    }

    /// A body compressed as it is sent: the next slice, once the last one is out. One slice
    /// per turn, then the others get theirs.
    #[cfg(feature = "deflate")]
    fn step_deflate(&mut self, ctx: &mut Ctx) -> Step {
        let (Some(ex), Some(b)) = (self.ex.as_mut(), self.bufs.as_deref_mut()) else {
            return Step::Close;
        };
        match pipeline::deflate::produce(ex, b) {
            Ok(true) => {
                // The end is queued: what remains is an ordinary send.
                ex.deflate = None;
                Step::Again
            }
            Ok(false) => match self.send_queued(ctx) {
                Ok(true) => Step::Yield,
                Ok(false) => Step::Wait,
                Err(step) => step,
            },
            Err(e) => {
                // The head is out: the body cannot be finished honestly.
                log::warn!("{}: compressing the response: {}", self.peer, e);
                Step::Close
            }
        }
    }

    /// When another request follows this one in the buffer, hold a complete in-memory
    /// keep-alive response back, to leave with the next ones in one send (`Bufs::batch`).
    /// Returns whether it was: the response counts as written (logged) then.
    fn hold_back(&mut self) -> bool {
        let Some(ex) = self.ex.as_ref() else {
            return false;
        };
        let next = ex.head.is_some_and(|h| self.rlen > h.len);
        if !next || ex.persist == Persist::Close || self.interim.is_some() {
            return false;
        }
        #[cfg(feature = "backend")]
        if ex.backend.is_some() {
            return false;
        }
        // A body compressed slice by slice is not all queued yet.
        #[cfg(feature = "deflate")]
        if ex.deflate.is_some() {
            return false;
        }
        let Some(b) = self.bufs.as_deref_mut() else {
            return false;
        };
        let mut len = 0;
        for seg in &b.segs {
            match *seg {
                Seg::Head(s, e) | Seg::Mem(s, e) => len += e.saturating_sub(s),
                // A file ends the batch: it goes out with sendfile, after what is held.
                Seg::File { .. } => return false,
            }
        }
        if b.batch.len() + len > BATCH_MAX {
            return false;
        }
        let Bufs {
            batch,
            segs,
            hbuf,
            wbuf,
            ..
        } = b;
        for seg in segs.iter() {
            let bytes = match *seg {
                Seg::Head(s, e) => hbuf.get(s..e),
                Seg::Mem(s, e) => wbuf.get(s..e),
                Seg::File { .. } => None,
            };
            batch.extend_from_slice(bytes.unwrap_or_default());
        }
        segs.clear();
        true
    }

    /// Readiness for descriptor `which` of this connection's backend.
    #[cfg(feature = "backend")]
    pub fn backend_ready(&mut self, which: usize, readable: bool, writable: bool) {
        if let Some(job) = self
            .ex
            .as_mut()
            .and_then(|ex| ex.backend.as_mut())
            .and_then(|g| g.job.as_mut())
        {
            job.ready(which, readable, writable);
        }
    }

    /// The connection is going away: take its backend's descriptors out of the poll and
    /// stop it.
    #[cfg(feature = "backend")]
    pub fn stop_backend(&mut self, ctx: &mut Ctx) {
        if let Some(g) = self.ex.as_mut().and_then(|ex| ex.backend.as_mut()) {
            g.stop(ctx);
        }
    }

    /// A backend serves the request: pass the body on, the response back, both with
    /// back-pressure, until the response is queued in full.
    #[cfg(feature = "backend")]
    fn step_backend(&mut self, ctx: &mut Ctx) -> Step {
        use crate::pipeline::backend::{self, Turn};
        if let Err(e) = self.flush_batch().and_then(|()| self.flush_interim()) {
            return self.io_error("write", e);
        }
        let Some(head) = self.ex.as_ref().and_then(|ex| ex.head) else {
            return Step::Close;
        };
        // A request that became a tunnel (after a 101) relays bytes both ways instead.
        #[cfg(any(feature = "proxy", feature = "wstunnel"))]
        if self
            .ex
            .as_ref()
            .is_some_and(crate::pipeline::tunnel::is_open)
        {
            return self.step_tunnel(ctx, head.len);
        }
        let mut progress = false;
        // The client's body, into the spool or the running job.
        let body_left = self
            .ex
            .as_ref()
            .is_some_and(|ex| !matches!(ex.body, BodyState::None));
        if body_left {
            match self.consume_body(ctx) {
                Err(status) => return self.backend_failed(ctx, status),
                Ok(true) => {
                    if let Some(g) = self.ex.as_mut().and_then(|ex| ex.backend.as_mut()) {
                        g.body_complete();
                    }
                    progress = true;
                }
                Ok(false) => {
                    let wants = self
                        .ex
                        .as_ref()
                        .and_then(|ex| ex.backend.as_ref())
                        .is_some_and(|g| g.wants_body());
                    if wants && self.readable && self.interim.is_none() {
                        match self.read_body(ctx) {
                            Step::Again => return Step::Again,
                            Step::Wait => {}
                            other => return other,
                        }
                    }
                }
            }
        } else if self.read_closed && !self.ex.as_ref().is_some_and(|ex| ex.client_closes) {
            // The client went away while its request was being answered: stop the backend
            // (a CGI script is killed). lighttpd does the same unless tcp-fin-propagate.
            log::debug!("{}: client closed while a backend was answering", self.peer);
            return Step::Close;
        }
        let body_complete = self
            .ex
            .as_ref()
            .is_some_and(|ex| matches!(ex.body, BodyState::None));
        let key = self.key;
        let (Some(ex), Some(mut bufs)) = (self.ex.as_mut(), self.bufs.take()) else {
            return Step::Close;
        };
        if let Some(g) = ex.backend.as_mut() {
            if g.ready_to_start(body_complete) {
                if let Err(status) = backend::start(ctx, g, key, body_complete) {
                    self.bufs = Some(bufs);
                    return self.backend_failed(ctx, status);
                }
                progress = true;
            }
        }
        let turn = backend::turn(ctx, ex, &mut bufs, &head, self.rlen);
        let queued = !bufs.segs.is_empty();
        self.bufs = Some(bufs);
        match turn {
            Turn::Wait => {}
            Turn::Progress => progress = true,
            Turn::Restart => {
                // cgi.local-redir: the same request again, with the script's Location.
                self.stop_backend(ctx);
                if let Some(ex) = self.ex.as_mut() {
                    ex.backend = None;
                }
                if let Some(b) = self.bufs.as_mut() {
                    b.segs.clear();
                    b.wbuf.clear();
                }
                self.respond(ctx);
                if self.ex.as_ref().is_some_and(|ex| ex.backend.is_some()) {
                    self.phase = Phase::Backend;
                }
                return Step::Again;
            }
            Turn::Fail(status) => return self.backend_failed(ctx, status),
            Turn::Cut => {
                let _ = self.send_queued(ctx);
                return Step::Close;
            }
            Turn::Done => {
                self.stop_backend(ctx);
                if let Some(ex) = self.ex.as_mut() {
                    ex.backend = None;
                    if !matches!(ex.body, BodyState::None) {
                        // The backend answered before the client finished sending: the rest
                        // cannot be skipped safely.
                        ex.persist = Persist::Close;
                        ex.client_closes = false;
                        ex.body = BodyState::None;
                    }
                }
                self.phase = Phase::Write;
                return Step::Again;
            }
        }
        self.send_after_turn(ctx, queued, progress, Step::Again)
    }

    /// After a backend's or a tunnel's turn: send what is queued. `queued`: something was;
    /// `progress`: something moved. Then `again` (come back now) or wait.
    #[cfg(feature = "backend")]
    fn send_after_turn(
        &mut self,
        ctx: &mut Ctx,
        queued: bool,
        progress: bool,
        again: Step,
    ) -> Step {
        let mut progress = progress;
        match self.send_queued(ctx) {
            // The queue emptied: the backend, held back while it was full, may be read
            // again, and no event would say so (its data is already waiting).
            Ok(true) if queued => progress = true,
            Ok(_) => {}
            Err(step) => return step,
        }
        if progress {
            self.last_io = ctx.now;
            again
        } else {
            Step::Wait
        }
    }

    /// A tunnel (an Upgrade through mod_proxy, or mod_wstunnel): the client's bytes, read after
    /// the request head (which stays in the buffer for the access log), go to the tunnel, and
    /// what the tunnel queued goes to the client. Each way stops while the other side is
    /// behind (see `pipeline::tunnel`). Progress yields to other connections rather than
    /// looping: a tunnel between two fast peers would otherwise never give the loop back.
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    fn step_tunnel(&mut self, ctx: &mut Ctx, head_len: usize) -> Step {
        use crate::pipeline::tunnel::{self, Flow};
        // Out first: it makes room for more from the backend.
        if let Err(step) = self.send_queued(ctx) {
            return step;
        }
        let mut progress = false;
        // Bounded per turn; what is left is read on the next one.
        for _ in 0..16 {
            if !self.ex.as_mut().is_some_and(tunnel::wants_client) {
                break;
            }
            if self.rlen > head_len {
                let rlen = self.rlen;
                let (Some(ex), Some(b)) = (self.ex.as_mut(), self.bufs.as_deref_mut()) else {
                    return Step::Close;
                };
                let Bufs {
                    rbuf, wbuf, segs, ..
                } = b;
                let data = &mut rbuf[head_len..rlen];
                let used = tunnel::from_client(ex, data, wbuf, segs).min(rlen - head_len);
                rbuf.copy_within(head_len + used..rlen, head_len);
                self.rlen -= used;
                if used == 0 {
                    break;
                }
                progress = true;
                continue;
            }
            if !self.readable {
                break;
            }
            match self.read_more(ctx) {
                Ok(0) => {
                    if let Some(ex) = self.ex.as_mut() {
                        tunnel::client_eof(ex);
                    }
                    progress = true;
                    break;
                }
                Ok(n) => {
                    self.rlen += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) => return self.io_error("read", e),
            }
        }
        let (Some(ex), Some(b)) = (self.ex.as_mut(), self.bufs.as_deref_mut()) else {
            return Step::Close;
        };
        let flow = tunnel::turn(ex, b);
        let queued = !b.segs.is_empty();
        match flow {
            Flow::Wait => {}
            Flow::Progress => progress = true,
            Flow::End => {
                self.end_tunnel(ctx, head_len);
                return Step::Again;
            }
        }
        self.send_after_turn(ctx, queued, progress, Step::Yield)
    }

    /// The tunnel is over: what is queued for the client goes out, then the connection closes
    /// as after any response (logged, then a lingering close).
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    fn end_tunnel(&mut self, ctx: &mut Ctx, head_len: usize) {
        self.stop_backend(ctx);
        if let Some(ex) = self.ex.as_mut() {
            ex.backend = None;
            ex.persist = Persist::Close;
            ex.client_closes = false;
        }
        // Tunnel bytes the client sent are not a next request.
        self.rlen = self.rlen.min(head_len);
        self.phase = Phase::Write;
        self.last_io = ctx.now;
    }

    /// A tunnel's deadline: a ping due, or the end of it (idle, or a graceful stop's
    /// deadline; a WebSocket client gets a close frame 1001 first).
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    fn tunnel_timeout(&mut self, ctx: &mut Ctx) -> Drive {
        let head_len = self.ex.as_ref().and_then(|ex| ex.head).map_or(0, |h| h.len);
        let (Some(ex), Some(b)) = (self.ex.as_mut(), self.bufs.as_deref_mut()) else {
            return Drive::Close;
        };
        if crate::pipeline::tunnel::timeout(ctx, ex, b, self.last_io) {
            self.end_tunnel(ctx, head_len);
        }
        self.drive(ctx)
    }

    /// The backend could not answer: an error response if nothing went out yet, else cut.
    #[cfg(feature = "backend")]
    fn backend_failed(&mut self, ctx: &mut Ctx, status: u16) -> Step {
        let head_sent = self
            .ex
            .as_ref()
            .and_then(|ex| ex.backend.as_ref())
            .is_some_and(|g| g.head_sent());
        self.stop_backend(ctx);
        if head_sent {
            return Step::Close;
        }
        self.respond_error(ctx, status);
        Step::Again
    }

    /// The response is out: log it, then either wait for the next request or close.
    fn finish_response(&mut self, ctx: &mut Ctx) -> Step {
        // Borrowed, then dropped in place below: moving the Exchange out would copy it.
        let Some(ex) = self.ex.as_ref() else {
            return Step::Close;
        };
        let info = ConnInfo {
            peer: self.peer,
            peer_ip: self.peer_ip.as_deref().unwrap_or(""),
            local: ctx.listener_local(self.listener),
            requests: self.requests,
            scheme: self.scheme(),
            #[cfg(feature = "tls")]
            tls: self.tls.as_deref().and_then(|t| t.connection()),
            #[cfg(feature = "tls")]
            tls_conf: self.tls.as_deref().and_then(|t| t.conf()),
        };
        pipeline::done(ctx, ex, self.bufs.as_deref(), self.rlen, &info);
        let (head, persist, client_closes) = (ex.head, ex.persist, ex.client_closes);
        self.ex = None;
        self.interim = None;
        if let Some(b) = self.bufs.as_mut() {
            b.wbuf.clear();
            b.segs.clear();
        }
        let head_len = head.map_or(self.rlen, |h| h.len).min(self.rlen);
        if let Some(b) = self.bufs.as_mut() {
            b.rbuf.copy_within(head_len..self.rlen, 0);
        }
        self.rlen -= head_len;
        self.last_io = ctx.now;
        if persist == Persist::Close {
            if client_closes && self.rlen == 0 && !self.read_closed && self.scheme() == "http" {
                // The client asked to close, its request is read to the end and nothing
                // follows it: no data can arrive that would make the close a reset, so the
                // lingering half-close (a shutdown, a read and a wake-up) is not needed.
                return Step::Close;
            }
            self.start_linger(ctx);
            return Step::Again;
        }
        self.phase = Phase::Head;
        self.parse_pending = self.rlen > 0;
        self.head_start = if self.rlen > 0 { Some(ctx.now) } else { None };
        Step::Again
    }

    /// Half-close and wait for the client to close: closing with unread data would make the
    /// kernel send a reset that can destroy the response still in flight.
    fn start_linger(&mut self, ctx: &mut Ctx) {
        // TLS ends with a close_notify, so that the client can tell the end of the response
        // from a cut; the half-close follows once it is written.
        #[cfg(feature = "tls")]
        if let Some(t) = self.tls.as_deref_mut() {
            t.close_notify();
            self.shut_pending = !matches!(t.flush(&self.sock, &mut self.writable), Ok(true));
        }
        #[cfg(feature = "tls")]
        let shut = !self.shut_pending;
        #[cfg(not(feature = "tls"))]
        let shut = true;
        if shut {
            let _ = self.sock.shutdown(Shutdown::Write);
        }
        self.phase = Phase::Linger;
        self.linger_fresh = true;
        self.linger_start = Some(ctx.now);
        self.rlen = 0;
        self.ex = None;
        self.release(ctx);
    }

    fn step_linger(&mut self, now: Instant) -> Step {
        #[cfg(feature = "tls")]
        if self.shut_pending {
            let Some(t) = self.tls.as_deref_mut() else {
                return Step::Close;
            };
            match t.flush(&self.sock, &mut self.writable) {
                Ok(true) => {
                    self.shut_pending = false;
                    let _ = self.sock.shutdown(Shutdown::Write);
                }
                Ok(false) => return Step::Wait,
                Err(_) => return Step::Close,
            }
        }
        if std::mem::take(&mut self.linger_fresh) {
            // The client usually closes as soon as it has the response: reading at once
            // would mostly find nothing yet and cost a registration and a wake-up.
            return Step::Yield;
        }
        let mut scratch = [0u8; 4096];
        // Bounded per turn; LINGER_MAX ends a client that keeps sending.
        for _ in 0..64 {
            match (&self.sock).read(&mut scratch) {
                Ok(0) => return Step::Close,
                Ok(_) => self.last_io = now,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Step::Wait;
                }
                Err(_) => return Step::Close,
            }
        }
        // More may be queued and no new edge will say so: come back after the others.
        Step::Yield
    }
}

/// A socket error on `peer`'s connection, logged (a reset or a closed pipe is the client's
/// doing, so only at debug level): the connection is closed.
fn io_error_at(peer: SocketAddr, what: &str, e: io::Error) -> Step {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            log::debug!("{}: {}: {}", peer, what, e)
        }
        _ => log::warn!("{}: {}: {}", peer, what, e),
    }
    Step::Close
}

/// What one send of `send_queued` means for it: None to go on (it sent something, or was
/// interrupted), else what to return (the socket is full, or failed).
fn sent(
    res: io::Result<()>,
    now: Instant,
    last_io: &mut Instant,
    writable: &mut bool,
    peer: SocketAddr,
) -> Option<Result<bool, Step>> {
    match res {
        Ok(()) => *last_io = now,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            *writable = false;
            return Some(Ok(false));
        }
        Err(e) => return Some(Err(io_error_at(peer, "write", e))),
    }
    None
}

/// Send the responses held back (`Bufs::batch`) and the memory segments at the front of the
/// queue (the head, and body bytes in the write buffer) with one sendmsg, and drop what went
/// out. `batch_only`: the held-back responses alone. A file segment after them is announced
/// with MSG_MORE, so the kernel can put the head in the same packet as the file data; `flags`
/// are added (MSG_MORE when a close follows).
fn send_mem(
    fd: std::os::fd::RawFd,
    b: &mut Bufs,
    batch_only: bool,
    flags: libc::c_int,
) -> io::Result<()> {
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    let (n_iov, more) = gather(b, batch_only, &mut iov);
    // SAFETY: zeroed is a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with struct iovec on Unix (its documented layout).
    msg.msg_iov = iov.as_mut_ptr() as *mut libc::iovec;
    msg.msg_iovlen = n_iov as _;
    let flags = flags | libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: the iovecs describe live slices of buffers not touched during the call.
    let n = unsafe { libc::sendmsg(fd, &msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    consume(b, n as usize);
    Ok(())
}

/// The most slices one send takes.
const MAX_IOV: usize = 8;

/// The slices `send_mem` sends: the held-back responses, then the memory segments at the
/// front of the queue (none with `batch_only`). Returns how many, and whether more follows
/// them (a file segment, or segments past `MAX_IOV`).
fn gather<'a>(b: &'a Bufs, batch_only: bool, iov: &mut [IoSlice<'a>; MAX_IOV]) -> (usize, bool) {
    let mut n_iov = 0;
    let mut more = false;
    if !b.batch.is_empty() {
        iov[0] = IoSlice::new(&b.batch);
        n_iov = 1;
    }
    let segs = if batch_only { 0 } else { b.segs.len() };
    for seg in b.segs.iter().take(segs) {
        let slice = match *seg {
            Seg::Head(s, e) => b.hbuf.get(s..e),
            Seg::Mem(s, e) => b.wbuf.get(s..e),
            Seg::File { .. } => {
                more = true;
                break;
            }
        };
        if n_iov == MAX_IOV {
            more = true;
            break;
        }
        iov[n_iov] = IoSlice::new(slice.unwrap_or_default());
        n_iov += 1;
    }
    (n_iov, more)
}

/// Drop `sent` bytes from the front of what `gather` returned.
fn consume(b: &mut Bufs, mut sent: usize) {
    if !b.batch.is_empty() {
        let held = b.batch.len();
        let out = sent.min(held);
        b.batch.copy_within(out.., 0);
        b.batch.truncate(held - out);
        sent -= out;
    }
    // Consume what went out, segment by segment (bounded by the segments sent).
    while let Some(seg) = b.segs.front_mut() {
        let (start, end) = match seg {
            Seg::Head(s, e) | Seg::Mem(s, e) => (s, *e),
            Seg::File { .. } => break,
        };
        let len = end - *start;
        if sent >= len {
            sent -= len;
            b.segs.pop_front();
        } else {
            *start += sent;
            break;
        }
    }
}

/// The marker of a plain-HTTP request read on a TLS port (see `read_more`).
#[derive(Debug)]
struct PlainHttp;

impl std::fmt::Display for PlainHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("plain HTTP request on a TLS port")
    }
}

impl std::error::Error for PlainHttp {}

/// `send_mem` through TLS: the same slices, taken as plaintext by the session (up to its
/// output bound), which writes what the socket takes.
#[cfg(feature = "tls")]
fn send_mem_tls(
    t: &mut crate::tls::session::Session,
    sock: &TcpStream,
    writable: &mut bool,
    b: &mut Bufs,
    batch_only: bool,
) -> io::Result<()> {
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    let (n_iov, _) = gather(b, batch_only, &mut iov);
    let sent = t.send(sock, &iov[..n_iov], writable)?;
    consume(b, sent);
    Ok(())
}

/// A file's bytes through TLS, where sendfile cannot be used: read into a bounded buffer at
/// the offset and handed to the session. Ok(true) once the segment is all sent;
/// UnexpectedEof if the file ended early.
#[cfg(feature = "tls")]
fn send_file_tls(
    t: &mut crate::tls::session::Session,
    sock: &TcpStream,
    writable: &mut bool,
    file: &std::fs::File,
    offset: &mut u64,
    len: &mut u64,
) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    // One full TLS record's worth.
    let mut chunk = [0u8; 16 * 1024];
    let want = (*len).min(chunk.len() as u64) as usize;
    let n = loop {
        match file.read_at(&mut chunk[..want], *offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let sent = t.send(sock, &[IoSlice::new(&chunk[..n])], writable)?;
    *offset += sent as u64;
    *len -= sent as u64;
    Ok(*len == 0)
}

enum Step {
    Again,
    Wait,
    /// Still ready, but others should have a turn first.
    Yield,
    Close,
}
