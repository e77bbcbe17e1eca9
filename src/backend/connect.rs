//! Non-blocking connects to gateway hosts: a unix socket path or a TCP host and port. The
//! connect completes in the loop (`Job::pump` checks it once the socket is writable).

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::config::gateway::Addr;

/// Where to connect: a configured address, or a spawned process's socket.
pub enum Target {
    Addr(Addr),
    Sock(SockAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Sock(s) => match (s.as_pathname(), s.as_socket()) {
                (Some(p), _) => write!(f, "unix:{}", p.display()),
                (_, Some(a)) => write!(f, "{a}"),
                _ => f.write_str("?"),
            },
        }
    }
}

/// Start connecting to `t`.
pub fn connect_to(t: &Target) -> io::Result<(OwnedFd, bool)> {
    match t {
        Target::Addr(a) => connect(a),
        Target::Sock(sa) => connect_sockaddr(sa),
    }
}

/// Start connecting to `addr`. Returns the socket and whether the connect is still under
/// way (EINPROGRESS). A refused or unreachable host is an Err at once for unix sockets, and
/// on the first readiness for TCP.
pub fn connect(addr: &Addr) -> io::Result<(OwnedFd, bool)> {
    let sa = match addr {
        Addr::Unix(p) => SockAddr::unix(Path::new(p))?,
        Addr::Tcp(h, port) => SockAddr::from(resolve(h, *port)?),
    };
    connect_sockaddr(&sa)
}

fn connect_sockaddr(sa: &SockAddr) -> io::Result<(OwnedFd, bool)> {
    let domain = sa.domain();
    let sock = Socket::new(domain, Type::STREAM.cloexec(), None)?;
    sock.set_nonblocking(true)?;
    if domain != Domain::UNIX {
        // Requests and their heads are written whole; Nagle would only delay them.
        sock.set_nodelay(true)?;
    }
    match sock.connect(sa) {
        Ok(()) => Ok((sock.into(), false)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((sock.into(), true)),
        // A unix socket whose listener's backlog is full.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((sock.into(), true)),
        Err(e) => Err(e),
    }
}

/// An address literal, or a name looked up (blocking: config host names are expected to be
/// addresses or names the resolver answers from /etc/hosts).
fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (h, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))
}
