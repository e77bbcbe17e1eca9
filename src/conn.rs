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

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Instant;

use mio::net::TcpStream;

use crate::config::{CondField, CondInput, ReqConf};
use crate::ctx::{Bufs, Ctx};
use crate::handlers::{self, Persist, Reply, Request, Seg};
use crate::http::chunked::{ChunkedDecoder, Declared};
use crate::http::request::{self, Head, Header, Method, Version};
use crate::http::{path, HttpError};
use crate::log::Piece;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
    Write,
    Linger,
}

enum BodyState {
    None,
    Length(u64),
    /// Boxed: the decoder holds a trailer name buffer, and every connection (idle ones too)
    /// would otherwise carry its size; chunked bodies are rare enough to allocate for.
    Chunked(Box<ChunkedDecoder>),
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

pub struct Conn {
    sock: TcpStream,
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
    head: Option<Head>,
    body: BodyState,
    body_seen: u64,
    requests: u32,
    /// The persistence announced in the response being written.
    persist: Persist,
    /// The client itself asked for the connection to end after this response (Connection:
    /// close, or HTTP/1.0 without keep-alive), so it sends nothing more (RFC 9112 §9.6).
    client_closes: bool,
    last_io: Instant,
    /// When the first byte of the current request head arrived.
    head_start: Option<Instant>,
    linger_start: Option<Instant>,
    req_start: Instant,
    wpos: usize,
    file: Option<std::fs::File>,
    conf: Option<Rc<ReqConf>>,
    status: u16,
    body_len: u64,
    head_only: bool,
    peer_ip: Option<Box<str>>,
}

impl Conn {
    pub fn new(sock: TcpStream, peer: SocketAddr, listener: usize, now: Instant) -> Conn {
        Conn {
            sock,
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
            head: None,
            body: BodyState::None,
            body_seen: 0,
            requests: 0,
            persist: Persist::KeepAlive11,
            client_closes: false,
            last_io: now,
            head_start: None,
            linger_start: None,
            req_start: now,
            wpos: 0,
            file: None,
            conf: None,
            status: 0,
            body_len: 0,
            head_only: false,
            peer_ip: None,
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
        self.phase == Phase::Head && self.rlen == 0 && self.head.is_none()
    }

    /// Since when this connection has held a slot without giving us a complete request head:
    /// a partial head, or nothing at all on a new connection. None for connections doing useful
    /// work or idling between requests. At the connection limit the oldest such connection is
    /// closed to make room, so slow clients cannot lock everyone else out.
    pub fn stalled_since(&self) -> Option<Instant> {
        if self.phase != Phase::Head || self.head.is_some() {
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
                let rate = self.req_start
                    + cfg.max_read_idle
                    + std::time::Duration::from_secs(self.body_seen / MIN_BODY_RATE);
                (self.last_io + cfg.max_read_idle).min(rate)
            }
            Phase::Write => self.last_io + cfg.max_write_idle,
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
            _ => {
                log::debug!("{}: timeout in {:?}", self.peer, self.phase);
                Drive::Close
            }
        }
    }

    /// Make all the progress possible now.
    pub fn drive(&mut self, ctx: &mut Ctx) -> Drive {
        let mut served = 0u32;
        loop {
            let step = match self.phase {
                Phase::Head => self.step_head(ctx, &mut served),
                Phase::Body => self.step_body(ctx),
                Phase::Write => self.step_write(ctx),
                Phase::Linger => self.step_linger(ctx.now),
            };
            match step {
                Step::Again => {
                    if served >= REQUESTS_PER_TURN {
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
            let parsed = request::parse(&bufs.rbuf[..rlen], &limits, &mut bufs.headers);
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
            Err(e) => self.io_error("read", e),
        }
    }

    fn io_error(&self, what: &str, e: io::Error) -> Step {
        match e.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                log::debug!("{}: {}: {}", self.peer, what, e)
            }
            _ => log::warn!("{}: {}: {}", self.peer, what, e),
        }
        Step::Close
    }

    /// A head was parsed: decide how to read its body, or answer at once.
    fn begin_request(&mut self, ctx: &mut Ctx, head: Head) {
        self.requests += 1;
        self.req_start = ctx.now;
        self.head_only = head.method == Method::Head;
        // At the connection limit, end keep-alive sooner so that waiting clients get a slot.
        let keep = head.keep_alive
            && ctx.drain_started.is_none()
            && !ctx.end_keep_alive
            && self.requests < ctx.cfg.max_keep_alive_requests.max(1)
            && ctx.cfg.max_keep_alive_requests > 0;
        self.persist = handlers::persist(head.version, keep);
        self.client_closes = !head.keep_alive;
        self.body_seen = 0;
        self.body = if head.chunked {
            BodyState::Chunked(Box::default())
        } else {
            match head.content_length {
                Some(n) if n > 0 => BodyState::Length(n),
                _ => BodyState::None,
            }
        };
        let limit = ctx.cfg.max_request_size;
        let expect = head.expect_continue;
        self.head = Some(head);
        match self.body {
            BodyState::None => self.respond(ctx),
            BodyState::Length(n) if limit > 0 && n > limit => {
                // Refuse before reading a byte of it; the body that follows cannot be
                // skipped safely, so the connection ends after the answer.
                self.respond_error(ctx, 413);
            }
            _ => {
                // RFC 9110 §10.1.1: the interim response tells a client that waits that it
                // may send the body. One that sent body bytes with its head is not waiting,
                // and a server may then omit it; lighttpd does, and so do we.
                let body_arrived = self.rlen > head.len;
                if expect && head.version == Version::Http11 && !body_arrived {
                    let bufs = self.bufs(ctx);
                    bufs.wbuf
                        .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                self.phase = Phase::Body;
            }
        }
    }

    fn step_body(&mut self, ctx: &mut Ctx) -> Step {
        // An interim 100 Continue may be waiting to go out.
        if self.wpos < self.bufs.as_ref().map_or(0, |b| b.wbuf.len()) && self.writable {
            match self.flush_interim() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) => return self.io_error("write", e),
            }
        }
        let Some(head_len) = self.head.map(|h| h.len) else {
            return Step::Close;
        };
        // Consume whatever body bytes are buffered after the head.
        if self.rlen > head_len {
            let limit = ctx.cfg.max_request_size;
            let rlen = self.rlen;
            let header_count = self.head.map_or(0, |h| h.header_count);
            let Some(b) = self.bufs.as_ref() else {
                return Step::Close;
            };
            // The head stays at the start of the buffer while its body is read.
            let (head_bytes, avail) = b.rbuf[..rlen].split_at(head_len);
            let headers = &b.headers[..header_count.min(b.headers.len())];
            let fed = match &mut self.body {
                BodyState::None => Ok((0, true)),
                BodyState::Length(n) => {
                    let take = (*n).min(avail.len() as u64);
                    *n -= take;
                    self.body_seen += take;
                    Ok((take as usize, *n == 0))
                }
                BodyState::Chunked(dec) => {
                    let listed =
                        |name: &[u8]| request::field_lists(head_bytes, headers, "Trailer", name);
                    let announced = request::header(head_bytes, headers, "Trailer").is_some();
                    let declared: Declared = if announced { Some(&listed) } else { None };
                    let mut seen = 0u64;
                    let fed = dec.feed(avail, declared, &mut |d| seen += d.len() as u64);
                    self.body_seen += seen;
                    fed
                }
            };
            let (used, done) = match fed {
                Ok(fed) => fed,
                Err(e) => {
                    self.bad_request(ctx, e);
                    return Step::Again;
                }
            };
            if let Some(b) = self.bufs.as_mut() {
                b.rbuf.copy_within(head_len + used..rlen, head_len);
            }
            self.rlen -= used;
            if limit > 0 && self.body_seen > limit {
                self.respond_error(ctx, 413);
                return Step::Again;
            }
            if done {
                self.body = BodyState::None;
                self.respond(ctx);
                return Step::Again;
            }
        }
        if !self.readable {
            return Step::Wait;
        }
        match self.read_more(ctx) {
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

    /// Write the interim response queued before the body (100 Continue).
    fn flush_interim(&mut self) -> io::Result<()> {
        let Some(b) = self.bufs.as_mut() else {
            return Ok(());
        };
        while self.wpos < b.wbuf.len() {
            match (&self.sock).write(&b.wbuf[self.wpos..]) {
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        b.wbuf.clear();
        self.wpos = 0;
        Ok(())
    }

    /// Answer a request that could not be parsed or framed, then close.
    fn bad_request(&mut self, ctx: &mut Ctx, e: HttpError) {
        log::debug!("{}: bad request: {} ({})", self.peer, e.status, e.reason);
        if self.head.is_none() {
            self.requests += 1;
            self.req_start = ctx.now;
        }
        self.respond_error(ctx, e.status);
    }

    /// An error response after which the connection closes.
    fn respond_error(&mut self, ctx: &mut Ctx, status: u16) {
        self.persist = Persist::Close;
        // Unread input may follow a request we refuse: always close gently.
        self.client_closes = false;
        self.body = BodyState::None;
        let conf = Rc::clone(&ctx.base);
        let date = ctx.date;
        let rlen = self.rlen;
        let bufs = self.bufs.get_or_insert_with(|| ctx.take_bufs());
        queue_interim_rest(bufs, &mut self.wpos);
        // HEAD never carries a body, not even on an error: when the head did not parse, the
        // method still shows at the start of the request line.
        let head_only = match self.head {
            Some(_) => self.head_only,
            None => {
                let raw = &bufs.rbuf[..rlen];
                let start = raw.iter().position(|b| !matches!(b, b'\r' | b'\n'));
                start.is_some_and(|i| raw[i..].starts_with(b"HEAD "))
            }
        };
        let mut reply = Reply {
            wbuf: &mut bufs.wbuf,
            segs: &mut bufs.segs,
            file: &mut None,
            fs_path: &mut bufs.fs_path,
            ranges: &mut bufs.ranges,
            scratch: &mut bufs.scratch,
            cache: &mut ctx.cache,
            now: ctx.now_secs,
            date: &date,
            persist: Persist::Close,
            head_only,
            status: 0,
            body_len: 0,
        };
        reply.error(status, &conf.server_tag);
        self.status = reply.status;
        self.body_len = reply.body_len;
        self.conf = Some(conf);
        self.phase = Phase::Write;
        self.last_io = ctx.now;
    }

    /// Build the response for the parsed head (body, if any, fully read).
    fn respond(&mut self, ctx: &mut Ctx) {
        let Some(head) = self.head else { return };
        let rlen = self.rlen;
        if !ctx.cfg.conds.is_empty() && self.peer_ip.is_none() {
            self.peer_ip = Some(self.peer.ip().to_string().into_boxed_str());
        }
        let local = ctx.listener_local(self.listener);
        let date = ctx.date;
        let mut bufs = match self.bufs.take() {
            Some(b) => b,
            None => ctx.take_bufs(),
        };
        let b = &mut *bufs;
        queue_interim_rest(b, &mut self.wpos);

        // Normalise the path first: conditions on $HTTP["url"] see the normalised path.
        let raw_path = head.path.get(&b.rbuf[..rlen]);
        let path_result = if head.method == Method::Options && raw_path == b"*" {
            b.path.clear();
            b.path.push('*');
            Ok(())
        } else {
            path::normalize(raw_path, &mut b.path)
        };

        let conf = if ctx.cfg.conds.is_empty() {
            Rc::clone(&ctx.base)
        } else {
            let view = View {
                buf: &b.rbuf[..rlen],
                head: &head,
                headers: &b.headers[..head.header_count],
                path: &b.path,
                ip: self.peer_ip.as_deref().unwrap_or(""),
                peer: self.peer.ip(),
                local,
            };
            let set = ctx.cfg.matches(&view);
            ctx.conf_for(&set)
        };

        let mut reply = Reply {
            wbuf: &mut b.wbuf,
            segs: &mut b.segs,
            file: &mut self.file,
            fs_path: &mut b.fs_path,
            ranges: &mut b.ranges,
            scratch: &mut b.scratch,
            cache: &mut ctx.cache,
            now: ctx.now_secs,
            date: &date,
            persist: self.persist,
            head_only: self.head_only,
            status: 0,
            body_len: 0,
        };
        match path_result {
            Err(e) => {
                reply.persist = Persist::Close;
                self.persist = Persist::Close;
                reply.error(e.status, &conf.server_tag);
            }
            Ok(()) => {
                let req = Request {
                    buf: &b.rbuf[..rlen],
                    head: &head,
                    headers: &b.headers[..head.header_count],
                    path: &b.path,
                    conf: &conf,
                };
                handlers::handle(&req, &mut reply);
            }
        }
        self.status = reply.status;
        self.body_len = reply.body_len;
        self.conf = Some(conf);
        self.bufs = Some(bufs);
        self.phase = Phase::Write;
        self.last_io = ctx.now;
    }

    fn step_write(&mut self, ctx: &mut Ctx) -> Step {
        if !self.writable {
            return Step::Wait;
        }
        let fd = self.sock.as_raw_fd();
        let Some(b) = self.bufs.as_mut() else {
            return Step::Close;
        };
        loop {
            let more = b.segs.len() > 1;
            let Some(seg) = b.segs.front_mut() else { break };
            let res = match seg {
                Seg::Mem(start, end) => {
                    let slice = &b.wbuf[*start..*end];
                    // MSG_MORE lets the kernel put the head in the same packet as the
                    // sendfile data that follows it.
                    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
                    // SAFETY: the pointer and length describe a live slice.
                    let n = unsafe { libc::send(fd, slice.as_ptr().cast(), slice.len(), flags) };
                    if n >= 0 {
                        *start += n as usize;
                        Ok(*start == *end)
                    } else {
                        Err(io::Error::last_os_error())
                    }
                }
                Seg::File { offset, len } => {
                    let Some(file) = self.file.as_ref() else {
                        return Step::Close;
                    };
                    let mut off = *offset as libc::off_t;
                    let count = (*len).min(1 << 30) as usize;
                    // SAFETY: both descriptors are open for the duration of the call.
                    let n = unsafe { libc::sendfile(fd, file.as_raw_fd(), &mut off, count) };
                    if n > 0 {
                        *offset += n as u64;
                        *len -= n as u64;
                        Ok(*len == 0)
                    } else if n == 0 {
                        // The file is shorter than when we announced its length: the
                        // response cannot be completed honestly, so cut the connection.
                        log::warn!("{}: file shrank while being sent", self.peer);
                        return Step::Close;
                    } else {
                        Err(io::Error::last_os_error())
                    }
                }
            };
            match res {
                Ok(true) => {
                    b.segs.pop_front();
                    self.last_io = ctx.now;
                }
                Ok(false) => self.last_io = ctx.now,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Step::Wait;
                }
                Err(e) => return self.io_error("write", e),
            }
        }
        self.finish_response(ctx)
    }

    /// The response is out: log it, then either wait for the next request or close.
    fn finish_response(&mut self, ctx: &mut Ctx) -> Step {
        self.log_access(ctx);
        self.file = None;
        self.wpos = 0;
        if let Some(b) = self.bufs.as_mut() {
            b.wbuf.clear();
            b.segs.clear();
        }
        let head_len = self.head.take().map_or(self.rlen, |h| h.len).min(self.rlen);
        if let Some(b) = self.bufs.as_mut() {
            b.rbuf.copy_within(head_len..self.rlen, 0);
        }
        self.rlen -= head_len;
        self.conf = None;
        self.last_io = ctx.now;
        if self.persist == Persist::Close {
            if self.client_closes && self.rlen == 0 && !self.read_closed {
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
        self.head_only = false;
        Step::Again
    }

    /// Half-close and wait for the client to close: closing with unread data would make the
    /// kernel send a reset that can destroy the response still in flight.
    fn start_linger(&mut self, ctx: &mut Ctx) {
        let _ = self.sock.shutdown(Shutdown::Write);
        self.phase = Phase::Linger;
        self.linger_fresh = true;
        self.linger_start = Some(ctx.now);
        self.rlen = 0;
        self.head = None;
        self.release(ctx);
    }

    fn step_linger(&mut self, now: Instant) -> Step {
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

    fn log_access(&mut self, ctx: &mut Ctx) {
        let Some(conf) = self.conf.as_ref() else {
            return;
        };
        let Some(name) = conf.accesslog_filename.as_deref() else {
            return;
        };
        let elapsed = ctx.now.saturating_duration_since(self.req_start);
        let local_port = ctx.listener_local(self.listener).port();
        let Some(log) = ctx.accesslog(name, &conf.accesslog_format) else {
            return;
        };
        let empty: [u8; 0] = [];
        let (buf, headers): (&[u8], &[Header]) = match self.bufs.as_ref() {
            Some(b) => (&b.rbuf[..self.rlen], &b.headers),
            None => (&empty, &[]),
        };
        let head = self.head.as_ref();
        let headers = head.map_or(&[][..], |h| &headers[..h.header_count]);
        let pieces = std::mem::take(&mut log.pieces);
        let out = log.buf();
        for p in &pieces {
            match p {
                Piece::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Piece::RemoteHost => {
                    let _ = write!(out, "{}", self.peer.ip());
                }
                Piece::Dash => out.push(b'-'),
                Piece::Time => {
                    crate::log::clf_time(crate::log::now_secs(), out);
                }
                Piece::RequestLine => match head {
                    Some(h) => {
                        out.extend_from_slice(h.method.as_str().as_bytes());
                        out.push(b' ');
                        escape_into(out, h.target.get(buf));
                        out.extend_from_slice(match h.version {
                            Version::Http10 => b" HTTP/1.0",
                            Version::Http11 => b" HTTP/1.1",
                        });
                    }
                    None => out.push(b'-'),
                },
                Piece::Status => {
                    let _ = write!(out, "{}", self.status);
                }
                Piece::BytesClf if self.body_len == 0 => out.push(b'-'),
                Piece::BytesClf | Piece::BytesOut => {
                    let _ = write!(out, "{}", self.body_len);
                }
                Piece::Header(name) => match request::header(buf, headers, name) {
                    Some(v) if head.is_some() => escape_into(out, v),
                    _ => out.push(b'-'),
                },
                Piece::Host => match head.and_then(|h| h.host) {
                    Some(s) => escape_into(out, s.get(buf)),
                    None => out.push(b'-'),
                },
                Piece::Path => match head {
                    Some(h) => escape_into(out, h.path.get(buf)),
                    None => out.push(b'-'),
                },
                Piece::Query => {
                    if let Some(q) = head.and_then(|h| h.query) {
                        out.push(b'?');
                        escape_into(out, q.get(buf));
                    }
                }
                Piece::Method => match head {
                    Some(h) => out.extend_from_slice(h.method.as_str().as_bytes()),
                    None => out.push(b'-'),
                },
                Piece::Protocol => out.extend_from_slice(match head.map(|h| h.version) {
                    Some(Version::Http10) => b"HTTP/1.0",
                    _ => b"HTTP/1.1",
                }),
                Piece::DurationSecs => {
                    let _ = write!(out, "{}", elapsed.as_secs());
                }
                Piece::DurationMicros => {
                    let _ = write!(out, "{}", elapsed.as_micros());
                }
                Piece::LocalPort => {
                    let _ = write!(out, "{}", local_port);
                }
            }
        }
        out.push(b'\n');
        log.pieces = pieces;
        log.line_done();
    }
}

/// A 100 Continue that went out only in part must finish before the final response: queue the
/// rest of it as the first segment.
fn queue_interim_rest(b: &mut Bufs, wpos: &mut usize) {
    if *wpos < b.wbuf.len() {
        b.segs.push_back(Seg::Mem(*wpos, b.wbuf.len()));
    }
    *wpos = 0;
}

/// Copy client bytes into a log line with quotes, backslashes and non-printables escaped, so
/// a client cannot forge log lines.
fn escape_into(out: &mut Vec<u8>, v: &[u8]) {
    for &c in v {
        match c {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(c);
            }
            0x20..=0x7e => out.push(c),
            _ => {
                let _ = write!(out, "\\x{:02x}", c);
            }
        }
    }
}

enum Step {
    Again,
    Wait,
    /// Still ready, but others should have a turn first.
    Yield,
    Close,
}

/// The request as conditions see it.
struct View<'a> {
    buf: &'a [u8],
    head: &'a Head,
    headers: &'a [Header],
    path: &'a str,
    ip: &'a str,
    peer: IpAddr,
    local: SocketAddr,
}

impl CondInput for View<'_> {
    fn field(&self, field: &CondField) -> Option<&str> {
        let hdr = |name: &str| request::header(self.buf, self.headers, name);
        let bytes: Option<&[u8]> = match field {
            CondField::Host => self.head.host.map(|s| s.get(self.buf)),
            CondField::Url => Some(self.path.as_bytes()),
            CondField::RemoteIp => Some(self.ip.as_bytes()),
            CondField::QueryString => self.head.query.map(|s| s.get(self.buf)),
            CondField::RequestMethod => Some(self.head.method.as_str().as_bytes()),
            CondField::Scheme => Some(b"http"),
            CondField::UserAgent => hdr("User-Agent"),
            CondField::Referer => hdr("Referer"),
            CondField::Cookie => hdr("Cookie"),
            CondField::RequestHeader(name) => hdr(name),
            CondField::ServerSocket => None,
        };
        bytes.and_then(|b| std::str::from_utf8(b).ok())
    }

    fn remote_ip(&self) -> IpAddr {
        self.peer
    }

    fn server_socket(&self) -> SocketAddr {
        self.local
    }
}
