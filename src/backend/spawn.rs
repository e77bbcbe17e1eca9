//! Placeholder CGI spawner (replaced by the full one).

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};

pub struct CgiChild {
    pub pid: libc::pid_t,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
}

pub fn spawn_cgi(
    argv: &[OsString],
    cwd: &Path,
    env: &[(Vec<u8>, Vec<u8>)],
    has_body: bool,
) -> io::Result<CgiChild> {
    use std::os::unix::ffi::OsStrExt;
    let (prog, args) = argv.split_first().ok_or(io::ErrorKind::InvalidInput)?;
    let mut c = Command::new(prog);
    c.args(args).current_dir(cwd).env_clear();
    for (k, v) in env {
        c.env(
            std::ffi::OsStr::from_bytes(k),
            std::ffi::OsStr::from_bytes(v),
        );
    }
    c.stdin(if has_body {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped());
    let mut child = c.spawn()?;
    let stdin = child.stdin.take().map(OwnedFd::from);
    let stdout = OwnedFd::from(child.stdout.take().ok_or(io::ErrorKind::Other)?);
    for fd in stdin.iter().chain(std::iter::once(&stdout)) {
        use std::os::fd::AsRawFd;
        // SAFETY: plain fcntl on an open descriptor.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    Ok(CgiChild {
        pid: child.id() as libc::pid_t,
        stdin,
        stdout,
    })
}
