//! One request handed to a backend: the descriptors it talks over (a CGI child's pipes, or a
//! socket to a FastCGI, SCGI or HTTP server), the request bytes still to send, and the
//! response bytes read back. The connection drives it from the loop; it never blocks.
//!
//! Each descriptor is registered with the loop under a token derived from the owning
//! connection's slab key ([`token`]), so readiness is routed to that connection and a
//! descriptor can never outlive its owner's claim on the token: a stale event after the slot
//! is reused is only a spurious wake-up.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::spool::Spool;

/// Backend tokens have this bit set; below it, bit 0 says which of a job's two descriptors
/// (0: the write side or the socket, 1: a CGI child's stdout) and the rest is the connection's
/// slab key. Reserved tokens count down from `usize::MAX` and connection keys are small, so
/// the three ranges never meet.
pub const TOKEN_BIT: usize = 1 << (usize::BITS - 2);

/// The token of descriptor `which` (0 or 1) of connection `key`'s job.
pub fn token(key: usize, which: usize) -> Token {
    Token(TOKEN_BIT | (key << 1) | (which & 1))
}

/// The connection and descriptor a backend token belongs to, if it is one.
pub fn owner(t: Token) -> Option<(usize, usize)> {
    let t = t.0;
    if t & TOKEN_BIT == 0 || t >= usize::MAX - 4096 {
        return None;
    }
    let rest = t & !TOKEN_BIT;
    Some((rest >> 1, rest & 1))
}

/// At most this many response bytes are read per call, so one busy backend cannot keep the
/// loop from others.
const READ_CHUNK: usize = 16 * 1024;

/// How request bytes are framed on the way to the backend.
pub enum Wire {
    /// As they are: a CGI child's stdin, SCGI and HTTP (after their heads, queued first).
    Raw,
    /// FastCGI: the body goes in STDIN records and the response comes in STDOUT records.
    #[cfg(feature = "fastcgi")]
    Fcgi(super::fcgi::Fcgi),
}

/// What one read turn produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// Nothing now; readiness will say when.
    Wait,
    /// Response bytes were appended.
    Data,
    /// The backend finished its response (end of stream, or FastCGI's END_REQUEST).
    End,
}

pub struct Job {
    pub wire: Wire,
    /// The write side: a CGI child's stdin, or the socket (both directions).
    wfd: Option<OwnedFd>,
    /// A CGI child's stdout; None when `wfd` is a socket.
    rfd: Option<OwnedFd>,
    /// `wfd` is a socket, read and written.
    sock: bool,
    /// A CGI child, stopped when the job ends before it does (see `Drop`).
    pub pid: Option<libc::pid_t>,
    /// Protocol bytes queued for the backend (a head, FastCGI records), from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The request body not yet framed for the backend.
    pub body: Spool,
    /// The whole request body is in `body` (or was sent).
    pub body_complete: bool,
    /// The end of the body was framed (FastCGI's empty STDIN) or signalled (stdin closed).
    body_end_sent: bool,
    w_ready: bool,
    r_ready: bool,
    /// A non-blocking connect is under way.
    pub connecting: bool,
    pub registered: bool,
    /// Response bytes the protocol layer has decoded but the caller has not taken yet.
    pub started: Instant,
    /// When the backend last sent something (its read timeout runs from here).
    pub last_read: Instant,
    /// The backend stopped reading its input (EPIPE): the rest of the body is dropped, as
    /// lighttpd does for a CGI script that does not read its stdin.
    input_closed: bool,
    ended: bool,
}

impl Job {
    /// A job over a CGI child's pipes (`stdin` None: the request has no body, the child's
    /// stdin was closed at once).
    pub fn pipes(
        pid: libc::pid_t,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        body: Spool,
        now: Instant,
    ) -> Job {
        let mut j = Job::new(Wire::Raw, body, now);
        j.pid = Some(pid);
        j.body_end_sent = stdin.is_none();
        j.wfd = stdin;
        j.rfd = Some(stdout);
        j
    }

    /// A job over a connected (or connecting) socket, with `head` queued first.
    pub fn socket(
        wire: Wire,
        sock: OwnedFd,
        connecting: bool,
        head: Vec<u8>,
        body: Spool,
        now: Instant,
    ) -> Job {
        let mut j = Job::new(wire, body, now);
        j.wfd = Some(sock);
        j.sock = true;
        j.connecting = connecting;
        j.out = head;
        j
    }

    fn new(wire: Wire, body: Spool, now: Instant) -> Job {
        Job {
            wire,
            wfd: None,
            rfd: None,
            sock: false,
            pid: None,
            out: Vec::new(),
            out_pos: 0,
            body,
            body_complete: false,
            body_end_sent: false,
            w_ready: true,
            r_ready: true,
            connecting: false,
            registered: false,
            started: now,
            last_read: now,
            input_closed: false,
            ended: false,
        }
    }

    /// Register the descriptors under connection `key`'s tokens (once).
    pub fn register(&mut self, reg: &Registry, key: usize) -> io::Result<()> {
        if self.registered {
            return Ok(());
        }
        if let Some(fd) = &self.wfd {
            let interest = if self.sock {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::WRITABLE
            };
            reg.register(&mut SourceFd(&fd.as_raw_fd()), token(key, 0), interest)?;
        }
        if let Some(fd) = &self.rfd {
            reg.register(
                &mut SourceFd(&fd.as_raw_fd()),
                token(key, 1),
                Interest::READABLE,
            )?;
        }
        self.registered = true;
        Ok(())
    }

    /// Take the descriptors out of the poll before they close (a CGI child forked meanwhile
    /// may hold a copy until its exec, and epoll follows the open file, not the descriptor).
    pub fn deregister(&mut self, reg: &Registry) {
        if !self.registered {
            return;
        }
        for fd in self.wfd.iter().chain(self.rfd.iter()) {
            let _ = reg.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        self.registered = false;
    }

    /// Record the readiness an event reported for descriptor `which`.
    pub fn ready(&mut self, which: usize, readable: bool, writable: bool) {
        if which == 1 || self.sock {
            self.r_ready |= readable;
        }
        if which == 0 {
            self.w_ready |= writable;
            // A CGI stdin pipe reports the reader's end as an error or hang-up: writing will
            // say EPIPE, so let it try.
            if !self.sock && readable {
                self.w_ready = true;
            }
        }
    }

    /// Queue protocol bytes (a FastCGI record, an SCGI or HTTP head) for the backend.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The request body still waiting for the backend, and the framing not yet sent.
    pub fn pending_input(&self) -> u64 {
        self.body.len() + (self.out.len() - self.out_pos) as u64
    }

    /// Whether the backend has everything: head, body and the body's end.
    pub fn input_done(&self) -> bool {
        self.input_closed
            || (self.body_end_sent && self.out_pos >= self.out.len() && self.body.is_empty())
    }

    /// Send what can be sent now. Ok(true) if any byte moved or the connect completed.
    pub fn pump(&mut self) -> io::Result<bool> {
        let mut moved = false;
        if self.connecting {
            if !self.w_ready {
                return Ok(false);
            }
            let Some(fd) = self.wfd.as_ref() else {
                return Ok(false);
            };
            match socket_error(fd.as_raw_fd()) {
                Ok(()) => {
                    self.connecting = false;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.w_ready = false;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        // Bounded: each turn sends a frame's worth or stops.
        for _ in 0..64 {
            if self.input_closed || self.wfd.is_none() {
                return Ok(moved);
            }
            if self.out_pos >= self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                if !self.frame_more()? {
                    break;
                }
            }
            // What is framed already goes in the same write: a FastCGI request without a
            // body is its head and the empty STDIN record, one send (lighttpd's one writev);
            // sent apart, the second often finds the application gone, having answered.
            while self.out.len() - self.out_pos < 16 * 1024 && self.frame_more()? {}
            if !self.w_ready {
                return Ok(moved);
            }
            let Some(fd) = self.wfd.as_ref() else {
                return Ok(moved);
            };
            match write_fd(fd.as_raw_fd(), &self.out[self.out_pos..], self.sock) {
                Ok(n) => {
                    self.out_pos += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.w_ready = false;
                    return Ok(moved);
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe && !self.sock => {
                    // The script exited or closed its stdin without reading the body.
                    self.input_closed = true;
                    self.wfd = None;
                    return Ok(true);
                }
                Err(e)
                    if self.sock
                        && matches!(
                            e.kind(),
                            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                        ) =>
                {
                    // The backend answered and closed without reading all of the request
                    // (a FastCGI application that skips the end of STDIN does): its answer is
                    // still to be read. If none comes, reading says so.
                    self.input_closed = true;
                    return Ok(true);
                }
                Err(e) => return Err(e),
            }
        }
        if self.out_pos >= self.out.len()
            && self.body.is_empty()
            && self.body_complete
            && self.body_end_sent
            && !self.sock
            && self.wfd.is_some()
        {
            // Everything went into the pipe: closing it is the script's end of input.
            self.wfd = None;
            moved = true;
        }
        Ok(moved)
    }

    /// Move the next piece of body into `out`, framed. Ok(false) when there is nothing to
    /// frame now.
    fn frame_more(&mut self) -> io::Result<bool> {
        if !self.body.is_empty() {
            let data = self.body.front()?;
            let n = data.len();
            match &mut self.wire {
                Wire::Raw => self.out.extend_from_slice(data),
                #[cfg(feature = "fastcgi")]
                Wire::Fcgi(f) => f.stdin(&mut self.out, data),
            }
            self.body.consume(n);
            return Ok(n > 0);
        }
        if self.body_complete && !self.body_end_sent {
            self.body_end_sent = true;
            match &mut self.wire {
                Wire::Raw => {}
                #[cfg(feature = "fastcgi")]
                Wire::Fcgi(f) => {
                    f.stdin(&mut self.out, &[]);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Read response bytes into `resp` (at most one chunk). Errors are the backend's.
    pub fn read(&mut self, resp: &mut Vec<u8>) -> io::Result<Got> {
        if self.ended {
            return Ok(Got::End);
        }
        if self.connecting || !self.r_ready {
            return Ok(Got::Wait);
        }
        let fd = match (&self.rfd, &self.wfd) {
            (Some(r), _) => r.as_raw_fd(),
            (None, Some(w)) if self.sock => w.as_raw_fd(),
            _ => return Ok(Got::End),
        };
        match &mut self.wire {
            Wire::Raw => {
                let n = match read_append(fd, resp, READ_CHUNK) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.r_ready = false;
                        return Ok(Got::Wait);
                    }
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    self.ended = true;
                    return Ok(Got::End);
                }
                Ok(Got::Data)
            }
            #[cfg(feature = "fastcgi")]
            Wire::Fcgi(f) => {
                let got = f.read(fd, resp, READ_CHUNK);
                match got {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.r_ready = false;
                        Ok(Got::Wait)
                    }
                    Ok(Got::End) => {
                        self.ended = true;
                        Ok(Got::End)
                    }
                    other => other,
                }
            }
        }
    }

    /// The backend's socket, out of the poll, to keep for the next request (an HTTP
    /// upstream's keep-alive): only once the whole request went out and the connect is done.
    pub fn take_socket(&mut self, reg: &Registry) -> Option<OwnedFd> {
        // Everything went out; not merely "input closed", which a write error also says.
        let sent = self.body_end_sent && self.out_pos >= self.out.len() && self.body.is_empty();
        if !self.sock || self.connecting || self.ended || self.input_closed || !sent {
            return None;
        }
        let fd = self.wfd.take()?;
        if self.registered {
            let _ = reg.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        Some(fd)
    }

    /// Pass the client's end of stream on: no more bytes go to the backend socket, which
    /// may still answer (a tunnel's half-close).
    pub fn shutdown_write(&mut self) {
        if let (true, Some(fd)) = (self.sock, self.wfd.as_ref()) {
            // SAFETY: an open socket.
            unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) };
        }
    }

    /// Whether no byte of the request body has left the spool yet (the request could be
    /// sent again on another connection).
    pub fn body_untouched(&self) -> bool {
        self.body.total() == self.body.len()
    }

    /// The request body, for sending again on another connection (see `body_untouched`).
    pub fn take_body(&mut self) -> Spool {
        std::mem::replace(&mut self.body, Spool::new(0, std::rc::Rc::from(Vec::new())))
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            super::reap::release(pid, self.ended);
        }
    }
}

/// The pending error of a socket whose non-blocking connect was under way: Ok once connected,
/// WouldBlock while still connecting.
fn socket_error(fd: RawFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid pointers to a c_int and its size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    // Connected only if the peer is known; a connect still in progress has no peer yet.
    // SAFETY: zeroed sockaddr_storage is valid; the pointers are to it and its size.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut sl = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let r = unsafe {
        libc::getpeername(
            fd,
            &mut ss as *mut libc::sockaddr_storage as *mut libc::sockaddr,
            &mut sl,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        return Err(e);
    }
    Ok(())
}

/// write(2), or send(2) without SIGPIPE on a socket; retries EINTR.
pub fn write_fd(fd: RawFd, data: &[u8], sock: bool) -> io::Result<usize> {
    loop {
        // SAFETY: the slice is valid for its length; fd is open.
        let n = unsafe {
            if sock {
                libc::send(
                    fd,
                    data.as_ptr() as *const libc::c_void,
                    data.len(),
                    libc::MSG_NOSIGNAL,
                )
            } else {
                libc::write(fd, data.as_ptr() as *const libc::c_void, data.len())
            }
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Read up to `max` bytes onto the end of `buf`; retries EINTR. Ok(0) is end of stream.
pub fn read_append(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let len = buf.len();
    loop {
        let room = buf.capacity() - len;
        // SAFETY: the spare capacity is valid for `room` bytes; read writes at most that.
        let n = unsafe {
            libc::read(
                fd,
                buf.as_mut_ptr().add(len) as *mut libc::c_void,
                room.min(max),
            )
        };
        if n >= 0 {
            // SAFETY: read initialised n bytes after len.
            unsafe { buf.set_len(len + n as usize) };
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
