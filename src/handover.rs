//! Handing the listening sockets from one generation of lightd to the next, so that a reload
//! never closes the only socket of a port and its kernel accept queue survives the swap.
//!
//! Three ways in (see `acquire` in lib.rs for the order): sockets inherited as `LISTEN_FDS`
//! (systemd socket activation, or our own re-exec on SIGUSR1), sockets taken over from a running
//! instance through its control socket (SCM_RIGHTS), and a fresh bind. Plus the sd_notify
//! messages that tell systemd which process is in charge.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most listening sockets one handover carries.
pub const MAX_FDS: usize = 64;

/// First inherited descriptor, as in sd_listen_fds(3).
const LISTEN_FDS_START: RawFd = 3;

/// The environment variable naming the readiness pipe of a re-executed generation.
pub const READY_FD_ENV: &str = "LIGHTD_READY_FD";

/// How long the client side of a takeover waits for the running instance to answer.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// A listening socket handed in from outside, with its address.
pub struct Handed {
    pub fd: OwnedFd,
    pub addr: SocketAddr,
}

pub(crate) fn sockaddr_of(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: borrowing the descriptor only for the duration of the call.
    let sock = mem::ManuallyDrop::new(unsafe { socket2::Socket::from_raw_fd(fd) });
    let listening = sock.is_listener().unwrap_or(false);
    let stream = sock.r#type().ok() == Some(socket2::Type::STREAM);
    if !(listening && stream) {
        return None;
    }
    sock.local_addr().ok().and_then(|a| a.as_socket())
}

pub(crate) fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Sockets passed as LISTEN_FDS for this very process. The variables are removed so that
/// processes we start later do not mistake them for their own.
pub fn take_inherited() -> Vec<Handed> {
    // "parent:PID" is lighttpd's extension for a server started under strace or gdb: the
    // sockets are for the child of PID.
    let pid_ok = std::env::var("LISTEN_PID").ok().is_some_and(|p| {
        let p = p.trim();
        match p.strip_prefix("parent:") {
            // SAFETY: getppid has no preconditions.
            Some(pp) => pp.parse::<i64>().ok() == Some(i64::from(unsafe { libc::getppid() })),
            None => p.parse::<u32>().ok() == Some(std::process::id()),
        }
    });
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if !pid_ok || n == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..n.min(MAX_FDS) {
        let fd = LISTEN_FDS_START + i as RawFd;
        set_cloexec(fd);
        match sockaddr_of(fd) {
            Some(addr) => out.push(Handed {
                // SAFETY: LISTEN_FDS hands these descriptors to this process.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                addr,
            }),
            None => log::warn!("inherited descriptor {} is not a listening TCP socket", fd),
        }
    }
    out
}

/// Send `data` with `fds` attached (SCM_RIGHTS).
fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let fds = &fds[..fds.len().min(MAX_FDS)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut cbuf = [0u64; (MAX_FDS * 4 + 64) / 8];
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call, and the
    // control buffer is large enough for CMSG_SPACE(fds.len() * 4).
    unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let payload = mem::size_of_val(fds) as u32;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            // `as _`: msg_controllen and cmsg_len are size_t on glibc but socklen_t on musl.
            msg.msg_controllen = libc::CMSG_SPACE(payload) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                fds.len(),
            );
        }
        let n = libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if (n as usize) < data.len() {
            // The message is small; a partial send means the peer is not reading.
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
        }
    }
    Ok(())
}

/// Receive into `buf`, collecting any descriptors that arrive (close-on-exec).
fn recv_with_fds(sock: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; (MAX_FDS * 4 + 64) / 8];
    // SAFETY: as in send_with_fds; the kernel writes at most msg_controllen bytes of control
    // data, and we read only the descriptors it reports.
    unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..len / mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok(n as usize)
    }
}

/// The client side of a takeover: the listeners received, and the connection on which to say
/// READY once this process serves.
pub struct Takeover {
    stream: UnixStream,
    pub from_pid: u32,
    pub listeners: Vec<Handed>,
}

/// Ask the instance behind the control socket at `path` for its listening sockets.
/// Ok(None) when nothing is running there.
pub fn takeover(path: &Path) -> io::Result<Option<Takeover>> {
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    // Only root or our own user may hand us sockets: a control socket in a directory others
    // can write must not let them inject listeners.
    // SAFETY: plain system call.
    let me = unsafe { libc::geteuid() };
    let uid = peer_uid(&stream);
    if uid != Some(0) && uid != Some(me) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the control socket belongs to uid {:?}, not root or us",
                uid
            ),
        ));
    }
    stream.set_read_timeout(Some(TAKEOVER_TIMEOUT))?;
    stream.set_write_timeout(Some(TAKEOVER_TIMEOUT))?;
    (&stream).write_all(b"TAKEOVER 1\n")?;

    // Reply: "LISTENERS <pid> <n>\n" then n addresses, one per line, then "END\n"; the
    // descriptors ride on the first bytes.
    let mut text = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.ends_with(b"END\n") {
        if text.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "reply too long"));
        }
        let n = recv_with_fds(&stream, &mut buf, &mut fds)?;
        if n == 0 {
            // The running instance refused (it is draining or another reload is under way).
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the running instance refused the takeover",
            ));
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed takeover reply");
    let header: Vec<&str> = lines.next().ok_or_else(bad)?.split(' ').collect();
    let (from_pid, count) = match header.as_slice() {
        ["LISTENERS", pid, n] => (
            pid.parse::<u32>().map_err(|_| bad())?,
            n.parse::<usize>().map_err(|_| bad())?,
        ),
        _ => return Err(bad()),
    };
    if count != fds.len() {
        return Err(bad());
    }
    let mut listeners = Vec::with_capacity(count);
    for fd in fds {
        // The kernel's own answer beats the text: match on getsockname().
        match sockaddr_of(fd.as_raw_fd()) {
            Some(addr) => listeners.push(Handed { fd, addr }),
            None => return Err(bad()),
        }
    }
    Ok(Some(Takeover {
        stream,
        from_pid,
        listeners,
    }))
}

impl Takeover {
    /// Tell the old instance that this process is serving, and wait for it to acknowledge:
    /// without the acknowledgement it may have given up on us and kept serving, and two
    /// generations would then share the port for good.
    pub fn ready(mut self) -> io::Result<()> {
        writeln!(self.stream, "READY {}", std::process::id())?;
        let mut ack = [0u8; 3];
        self.stream.read_exact(&mut ack)?;
        if &ack != b"OK\n" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the running instance did not acknowledge",
            ));
        }
        Ok(())
    }
}

/// The server side: the control socket a new generation connects to.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
    /// Where the socket was bound first; renamed to `path` by [`ControlSocket::publish`].
    tmp: Option<PathBuf>,
    /// (device, inode) of the socket file, to remove it at exit only if it is still ours.
    id: (u64, u64),
    /// After a handover the path belongs to the new generation.
    disarmed: bool,
}

impl ControlSocket {
    /// Bind at a private temporary name next to `path`, owner-only. Nobody can reach it until
    /// [`ControlSocket::publish`], so a generation that fails before being ready never hides
    /// the running instance's socket.
    pub fn bind(path: &Path) -> io::Result<ControlSocket> {
        crate::process::remove_stale_tmp(path);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        // SAFETY: umask is process-wide but we are single-threaded at start-up; the socket
        // file is created owner-only so only root or our own user can take our listeners.
        let old = unsafe { libc::umask(0o177) };
        let res = UnixListener::bind(&tmp);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener = res.map_err(|e| annotate(e, &tmp))?;
        listener.set_nonblocking(true)?;
        let meta = std::fs::metadata(&tmp)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
            tmp: Some(tmp),
            id: (meta.dev(), meta.ino()),
            disarmed: false,
        })
    }

    /// Make the socket reachable at its real path, replacing the previous generation's.
    pub fn publish(&mut self) -> io::Result<()> {
        if let Some(tmp) = self.tmp.take() {
            std::fs::rename(&tmp, &self.path).map_err(|e| annotate(e, &self.path))?;
        }
        Ok(())
    }

    /// Never remove the socket file: a new generation owns the path now, and checking the
    /// inode before unlinking would race with its rename.
    pub fn disarm(&mut self) {
        self.disarmed = true;
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if self.disarmed {
            return;
        }
        let p = self.tmp.as_deref().unwrap_or(&self.path);
        if let Ok(m) = std::fs::metadata(p) {
            if (m.dev(), m.ino()) == self.id {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {}", path.display(), e))
}

/// The uid of the process at the other end of a Unix socket.
pub fn peer_uid(sock: &impl AsRawFd) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

/// Answer a takeover request on `conn`: our pid, the listeners' addresses and descriptors.
pub fn send_listeners(conn: &UnixStream, fds: &[(RawFd, SocketAddr)]) -> io::Result<()> {
    let mut text = format!("LISTENERS {} {}\n", std::process::id(), fds.len());
    for (_, a) in fds {
        text.push_str(&a.to_string());
        text.push('\n');
    }
    text.push_str("END\n");
    let raw: Vec<RawFd> = fds.iter().map(|(fd, _)| *fd).collect();
    send_with_fds(conn, text.as_bytes(), &raw)
}

/// A re-executed generation started on SIGUSR1.
pub struct Child {
    pub pid: u32,
    /// Read end of its readiness pipe: "READY\n", or "ERROR <reason>\n", or EOF if it died.
    pub ready: std::fs::File,
}

/// Start `exe` with `args`, the listening sockets as LISTEN_FDS and a readiness pipe.
pub fn spawn_generation(exe: &Path, args: &[OsString], fds: &[RawFd]) -> io::Result<Child> {
    let mut p: [RawFd; 2] = [0; 2];
    // SAFETY: valid pointer to two ints.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors owned here.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    let sources: Vec<RawFd> = fds.iter().copied().chain([wr.as_raw_fd()]).collect();
    let n = fds.len();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args);
    // SAFETY: the closure runs in the forked child before exec. lightd is single-threaded,
    // so the allocator and environment are in a consistent state there.
    unsafe {
        cmd.pre_exec(move || {
            // Move every source out of the target range first, so placing one cannot
            // clobber another that happens to sit on its target number.
            let mut high = Vec::with_capacity(sources.len());
            for &fd in &sources {
                let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                if h < 0 {
                    return Err(io::Error::last_os_error());
                }
                high.push(h);
            }
            for (i, &h) in high.iter().enumerate() {
                // dup2 clears close-on-exec on the new descriptor.
                if libc::dup2(h, LISTEN_FDS_START + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let set = |k: &str, v: &str| -> io::Result<()> {
                let k = std::ffi::CString::new(k)?;
                let v = std::ffi::CString::new(v)?;
                if libc::setenv(k.as_ptr(), v.as_ptr(), 1) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            };
            // Set here rather than with Command::env: LISTEN_PID must be the child's pid.
            set("LISTEN_FDS", &n.to_string())?;
            set("LISTEN_PID", &libc::getpid().to_string())?;
            set("LISTEN_FDNAMES", &vec!["lightd"; n].join(":"))?;
            set(READY_FD_ENV, &(LISTEN_FDS_START + n as RawFd).to_string())?;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(wr);
    Ok(Child {
        pid: child.id(),
        ready: std::fs::File::from(rd),
    })
}

/// The readiness pipe given to this process by the generation that started it, if any.
pub fn take_ready_fd() -> Option<std::fs::File> {
    let fd = std::env::var(READY_FD_ENV).ok()?.parse::<RawFd>().ok()?;
    std::env::remove_var(READY_FD_ENV);
    if fd < LISTEN_FDS_START {
        return None;
    }
    set_cloexec(fd);
    // SAFETY: the parent generation placed the pipe's write end at this descriptor for us.
    Some(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Send an sd_notify message if systemd (or a test) gave us NOTIFY_SOCKET.
pub fn notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = notify_to(&path, msg) {
        log::warn!("sd_notify {:?}: {}", msg.replace('\n', " "), e);
    }
}

fn notify_to(path: &OsStr, msg: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket: "@" stands for the leading NUL.
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(msg.as_bytes(), &addr)?;
    } else {
        sock.send_to(msg.as_bytes(), Path::new(path))?;
    }
    Ok(())
}

/// CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
