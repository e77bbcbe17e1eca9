//! Listening sockets: created by `bind()` here, or adopted from a file descriptor that came
//! from somewhere else (an inherited socket, or one handed over by a running instance).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// The kernel accept queue length we ask for (the kernel caps it at net.core.somaxconn).
const BACKLOG: i32 = 1024;

/// One listening socket and the configured address it serves.
pub struct Listener {
    pub sock: mio::net::TcpListener,
    /// The address as configured (port 0 stays 0), for matching `$SERVER["socket"]`.
    pub configured: SocketAddr,
    /// The address actually bound (the real port when configured with port 0).
    pub local: SocketAddr,
}

impl Listener {
    /// Bind a fresh socket for `addr`.
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // Lets a restarted server bind while old connections sit in TIME_WAIT.
        sock.set_reuse_address(true)?;
        if addr.is_ipv6() {
            // Debian's default config listens on 0.0.0.0:80 and [::]:80 at once; that only
            // works when the IPv6 socket does not also claim the IPv4 addresses.
            sock.set_only_v6(true)?;
        }
        sock.bind(&addr.into())?;
        sock.listen(BACKLOG)?;
        Self::adopt(sock, addr)
    }

    /// Take ownership of an already listening socket (inherited or handed over).
    ///
    /// # Safety
    /// `fd` must be an open listening TCP socket that nothing else owns.
    pub unsafe fn from_raw_fd(fd: RawFd, configured: SocketAddr) -> io::Result<Listener> {
        Self::adopt(Socket::from_raw_fd(fd), configured)
    }

    fn adopt(sock: Socket, configured: SocketAddr) -> io::Result<Listener> {
        sock.set_nonblocking(true)?;
        let local = sock
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an inet socket"))?;
        // SAFETY: the descriptor comes straight out of a Socket we own.
        let std_listener = unsafe { std::net::TcpListener::from_raw_fd(sock.into_raw_fd()) };
        Ok(Listener {
            sock: mio::net::TcpListener::from_std(std_listener),
            configured,
            local,
        })
    }
}
