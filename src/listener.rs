//! Listening sockets: created by `bind()` here, or adopted from a file descriptor that came
//! from somewhere else (an inherited socket, or one handed over by a running instance).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// The kernel accept queue length we ask for (the kernel caps it at net.core.somaxconn).
const BACKLOG: i32 = 1024;

/// One listening socket.
pub struct Listener {
    pub sock: mio::net::TcpListener,
    /// The address actually bound (the real port when configured with port 0).
    pub local: SocketAddr,
}

impl Listener {
    /// Bind a fresh socket for `addr`: the last resort, when no running instance handed its
    /// sockets over. Without SO_REUSEPORT: a port another process listens on, even another
    /// lightd, is "address in use", never silently shared. A reload passes the socket itself
    /// on instead of binding beside it.
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        let sock = new_socket(addr)?;
        sock.bind(&addr.into()).map_err(|e| {
            if e.raw_os_error() == Some(libc::EADDRINUSE) {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{e}: another process listens there (a running lightd hands its \
                         sockets over only through its control socket or SIGUSR1)"
                    ),
                )
            } else {
                e
            }
        })?;
        sock.listen(BACKLOG)?;
        Self::adopt(sock)
    }

    /// Take ownership of an already listening socket (inherited or handed over).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Listener> {
        Self::adopt(Socket::from(fd))
    }

    /// The descriptor, to hand over to a new generation.
    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn adopt(sock: Socket) -> io::Result<Listener> {
        sock.set_nonblocking(true)?;
        // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt
        // here instead of one per connection. Responses leave in one write anyway; this keeps
        // the kernel from holding back a small last segment.
        sock.set_nodelay(true)?;
        defer_accept(&sock);
        let local = sock
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an inet socket"))?;
        // SAFETY: the descriptor comes straight out of a Socket we own.
        let std_listener = unsafe { std::net::TcpListener::from_raw_fd(sock.into_raw_fd()) };
        Ok(Listener {
            sock: mio::net::TcpListener::from_std(std_listener),
            local,
        })
    }
}

/// TCP_DEFER_ACCEPT, as h2o sets it: the kernel hands over a connection once its first data
/// (the request) has arrived, so that serving it takes an accept, a read and a write: without
/// it, about half the reads right after accept find nothing yet and cost a registration and
/// a wake-up. A client that connects and says nothing is handed over all the same, after a
/// second (one SYN-ACK retransmission). Best effort: without it everything still works.
fn defer_accept(sock: &Socket) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads an int from a valid pointer of the size given.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            log::debug!("TCP_DEFER_ACCEPT: {}", io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = sock;
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted server bind while old connections sit in TIME_WAIT. (On Linux this
    // never lets two sockets listen on one port; only SO_REUSEPORT would.)
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // Debian's default config listens on 0.0.0.0:80 and [::]:80 at once; that only
        // works when the IPv6 socket does not also claim the IPv4 addresses.
        sock.set_only_v6(true)?;
    }
    Ok(sock)
}
