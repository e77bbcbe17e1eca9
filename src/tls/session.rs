//! One connection's TLS: the transport a connection reads and writes through instead of the
//! bare socket. Non-blocking throughout: every call does what the socket allows now and says
//! WouldBlock for the rest, so a handshake or a slow client never holds the loop.
//!
//! The ClientHello is read first on its own (rustls's `Acceptor`), so that the server config,
//! and with it the certificate, can be chosen by the name the client asks for (SNI), as
//! lighttpd chooses `ssl.pemfile` by `$HTTP["host"]` conditions. A first byte that starts an
//! HTTP request line instead of a TLS record is a plain-HTTP client on the TLS port: it gets a
//! 400 in plain text (`Error::PlainHttp`), as nginx answers it (lighttpd closes without a
//! word).
//!
//! Output is bounded: rustls holds at most [`OUT_LIMIT`] bytes of records not yet written, and
//! takes no more plaintext until the socket has taken some.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::server::{Acceptor, ServerConfig, ServerConnection};

use crate::config::ssl::SslConf;

/// The server config chosen for a handshake, and the `ssl.*` settings it was made from.
pub type Chosen = (Arc<ServerConfig>, std::rc::Rc<SslConf>);

/// The most TLS output (records) one connection holds before it stops taking plaintext: four
/// full records, enough to keep a fast socket busy between two turns of the loop.
pub const OUT_LIMIT: usize = 64 * 1024;

/// What the reading side learned besides plaintext.
#[derive(Debug)]
pub enum Error {
    /// The client sent a plain HTTP request to the TLS port.
    PlainHttp,
    /// The handshake or a record failed (the alert, if any, is queued for the client).
    Tls(rustls::Error),
    /// No server config for this connection (no certificate for the name asked for).
    NoConfig,
    Io(io::Error),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::PlainHttp => f.write_str("plain HTTP request on a TLS port"),
            Error::Tls(e) => write!(f, "TLS: {}", e),
            Error::NoConfig => f.write_str("TLS: no certificate for this connection"),
            Error::Io(e) => e.fmt(f),
        }
    }
}

enum State {
    /// Reading the ClientHello.
    Hello(Box<Acceptor>),
    /// After the ClientHello: the handshake, then application data.
    Open(Box<ServerConnection>),
    /// A plain-HTTP client: what is written goes to the socket as it is (the 400).
    Plain,
    /// The handshake failed before a connection existed: an alert may be left to write.
    Failed(Vec<u8>),
}

/// What the ClientHello asked for, for choosing the server config.
pub struct Hello<'a> {
    /// The server name (SNI), if any.
    pub sni: Option<&'a str>,
    /// The client offers ACME's "acme-tls/1" protocol (tls-alpn-01).
    pub acme: bool,
    /// The client offers ALPN protocols, none of them HTTP/1.x: the config must then not
    /// insist on ALPN (rustls would refuse the handshake; OpenSSL goes on without).
    pub no_http_alpn: bool,
}

/// A fatal handshake_failure alert (TLS 1.2 record framing, which TLS 1.3 clients accept
/// for alerts before the handshake), for a client we have no certificate for.
const HANDSHAKE_FAILURE: [u8; 7] = [21, 3, 3, 0, 2, 2, 40];

/// The readiness the connection keeps for its socket, updated here on WouldBlock.
pub struct Ready<'a> {
    pub readable: &'a mut bool,
    pub writable: &'a mut bool,
}

pub struct Session {
    state: State,
    /// The client's first byte has been seen (to tell TLS from plain HTTP).
    seen_first: bool,
    /// The handshake completed during the last read (the caller counts it as activity).
    just_opened: bool,
    /// The `ssl.*` settings the handshake used (its client-certificate checks).
    conf: Option<std::rc::Rc<SslConf>>,
}

impl Default for Session {
    fn default() -> Session {
        Session::new()
    }
}

/// Reads from the socket and remembers the first byte read.
struct Peek<'a> {
    sock: &'a TcpStream,
    first: Option<u8>,
}

impl Read for Peek<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.sock).read(buf)?;
        if n > 0 && self.first.is_none() {
            self.first = buf.first().copied();
        }
        Ok(n)
    }
}

impl Session {
    pub fn new() -> Session {
        Session {
            state: State::Hello(Box::default()),
            seen_first: false,
            just_opened: false,
            conf: None,
        }
    }

    /// Still in the handshake, with some of it received: not an idle connection.
    pub fn handshaking(&self) -> bool {
        match &self.state {
            State::Hello(_) => self.seen_first,
            State::Open(c) => c.is_handshaking(),
            State::Plain | State::Failed(_) => false,
        }
    }

    /// The handshake completed during the last `read` (once).
    pub fn take_opened(&mut self) -> bool {
        std::mem::take(&mut self.just_opened)
    }

    /// Records are waiting to be written to the socket.
    pub fn wants_write(&self) -> bool {
        match &self.state {
            State::Open(c) => c.wants_write(),
            State::Failed(alert) => !alert.is_empty(),
            _ => false,
        }
    }

    /// The established connection, for what was negotiated (SNI, version, client certificate).
    pub fn connection(&self) -> Option<&ServerConnection> {
        match &self.state {
            State::Open(c) => Some(c),
            _ => None,
        }
    }

    /// The `ssl.*` settings the handshake was made with.
    pub fn conf(&self) -> Option<&SslConf> {
        self.conf.as_deref()
    }

    /// Read plaintext into `buf`: Ok(0) when the client has closed (with or without a
    /// close_notify), WouldBlock when nothing is there yet (the handshake may have moved on).
    /// `choose` picks the server config once the ClientHello is in, from the SNI name and
    /// whether the client asks for ACME's "acme-tls/1" protocol. A connection that negotiated
    /// that protocol carries no HTTP: after the handshake it reads as closed.
    pub fn read(
        &mut self,
        sock: &TcpStream,
        buf: &mut [u8],
        ready: Ready<'_>,
        choose: &mut dyn FnMut(&Hello<'_>) -> Option<Chosen>,
    ) -> Result<usize, Error> {
        // Bounded: every pass either returns or takes bytes from the socket.
        loop {
            match &mut self.state {
                State::Hello(acceptor) => {
                    if !*ready.readable {
                        return Err(Error::Io(io::ErrorKind::WouldBlock.into()));
                    }
                    let mut rd = Peek { sock, first: None };
                    let n = match acceptor.read_tls(&mut rd) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            *ready.readable = false;
                            return Err(Error::Io(e));
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Error::Io(e)),
                    };
                    if n == 0 {
                        return Ok(0);
                    }
                    if !self.seen_first {
                        self.seen_first = true;
                        // A TLS handshake record starts with 22; a request line with a
                        // method's first letter.
                        if rd.first.is_some_and(|b| b.is_ascii_uppercase()) {
                            self.state = State::Plain;
                            return Err(Error::PlainHttp);
                        }
                    }
                    match acceptor.accept() {
                        Ok(None) => continue,
                        Ok(Some(accepted)) => {
                            let ch = accepted.client_hello();
                            let offered = |want: &dyn Fn(&[u8]) -> bool| {
                                ch.alpn().is_some_and(|mut a| a.any(want))
                            };
                            let hello = Hello {
                                sni: ch.server_name(),
                                acme: offered(&|p| p == super::certs::ACME_TLS_1),
                                no_http_alpn: ch.alpn().is_some()
                                    && !offered(&|p| p.starts_with(b"http/1.")),
                            };
                            let Some((config, conf)) = choose(&hello) else {
                                self.state = State::Failed(HANDSHAKE_FAILURE.to_vec());
                                let _ = self.flush(sock, ready.writable);
                                return Err(Error::NoConfig);
                            };
                            match accepted.into_connection(config) {
                                Ok(mut c) => {
                                    c.set_buffer_limit(Some(OUT_LIMIT));
                                    self.conf = Some(conf);
                                    self.state = State::Open(Box::new(c));
                                    // The server's first flight is ready: out with it now,
                                    // no event would come for it.
                                    self.flush(sock, ready.writable)?;
                                }
                                Err((e, alert)) => {
                                    return Err(self.refuse(sock, ready.writable, e, alert));
                                }
                            }
                        }
                        Err((e, alert)) => return Err(self.refuse(sock, ready.writable, e, alert)),
                    }
                }
                State::Open(c) => {
                    if c.alpn_protocol() == Some(super::certs::ACME_TLS_1) && !c.is_handshaking() {
                        // The challenge is the handshake: done.
                        return Ok(0);
                    }
                    // Plaintext already decrypted goes first.
                    match c.reader().read(buf) {
                        Ok(n) => return Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // The peer closed without a close_notify: for us, a close.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                        Err(e) => return Err(Error::Io(e)),
                    }
                    if !*ready.readable {
                        return Err(Error::Io(io::ErrorKind::WouldBlock.into()));
                    }
                    let was_handshaking = c.is_handshaking();
                    match c.read_tls(&mut &*sock) {
                        Ok(0) => return Ok(0),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            *ready.readable = false;
                            // Whatever is owed (a handshake flight, an alert) goes before
                            // waiting: the next event may be a long way off.
                            self.flush(sock, ready.writable)?;
                            return Err(Error::Io(e));
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Error::Io(e)),
                    }
                    if let Err(e) = c.process_new_packets() {
                        // rustls queued an alert: send it if the socket takes it now.
                        let _ = self.flush(sock, ready.writable);
                        return Err(Error::Tls(e));
                    }
                    if was_handshaking && !c.is_handshaking() {
                        self.just_opened = true;
                    }
                    // Handshake messages (and answers to a key update) go out at once.
                    self.flush(sock, ready.writable)?;
                }
                State::Plain | State::Failed(_) => return Ok(0),
            }
        }
    }

    /// The handshake failed before a connection existed: rustls's alert goes out if the
    /// socket takes it now, and the session stays failed.
    fn refuse(
        &mut self,
        sock: &TcpStream,
        writable: &mut bool,
        e: rustls::Error,
        mut alert: rustls::server::AcceptedAlert,
    ) -> Error {
        let mut out = Vec::new();
        let _ = alert.write_all(&mut out);
        self.state = State::Failed(out);
        let _ = self.flush(sock, writable);
        Error::Tls(e)
    }

    /// Take plaintext for the client, up to what the output bound allows, and write what the
    /// socket takes now. Ok(n): n bytes of `bufs` were taken (0 when the bound is reached and
    /// the socket is full: WouldBlock instead).
    pub fn send(
        &mut self,
        sock: &TcpStream,
        bufs: &[IoSlice<'_>],
        writable: &mut bool,
    ) -> io::Result<usize> {
        if let State::Plain = self.state {
            if !*writable {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return match (&*sock).write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *writable = false;
                    Err(e)
                }
                r => r,
            };
        }
        // Make room first: records already made leave before new ones are made.
        self.flush(sock, writable)?;
        let State::Open(c) = &mut self.state else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS session not established",
            ));
        };
        let n = c.writer().write_vectored(bufs)?;
        self.flush(sock, writable)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Write pending records. Ok(true) when nothing is left; Ok(false) when the socket is
    /// full (the writable flag is cleared).
    pub fn flush(&mut self, sock: &TcpStream, writable: &mut bool) -> io::Result<bool> {
        // Bounded: each pass writes something or stops.
        loop {
            if !self.wants_write() {
                return Ok(true);
            }
            if !*writable {
                return Ok(false);
            }
            let res = match &mut self.state {
                State::Open(c) => c.write_tls(&mut &*sock),
                State::Failed(alert) => match (&*sock).write(alert) {
                    Ok(n) => {
                        alert.drain(..n.min(alert.len()));
                        Ok(n)
                    }
                    e => e,
                },
                _ => return Ok(true),
            };
            match res {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *writable = false;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Queue a close_notify: the client learns the response ended on purpose.
    pub fn close_notify(&mut self) {
        if let State::Open(c) = &mut self.state {
            c.send_close_notify();
        }
    }
}
