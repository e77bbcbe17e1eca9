//! Process set-up around the loop: descriptor limits, daemonizing with a readiness pipe, the
//! pid file, and dropping privileges after binding.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};

/// Raise (or lower) RLIMIT_NOFILE to server.max-fds.
pub fn set_max_fds(n: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: n as libc::rlim_t,
        rlim_max: n as libc::rlim_t,
    };
    // SAFETY: plain system call with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        // Without privilege only the soft limit can move, up to the hard one.
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
        let soft = libc::rlimit {
            rlim_cur: (n as libc::rlim_t).min(cur.rlim_max),
            rlim_max: cur.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The child's end of the daemon readiness pipe.
pub struct Ready(Option<File>);

impl Ready {
    /// Nothing to tell: running in the foreground.
    pub fn foreground() -> Ready {
        Ready(None)
    }

    /// Tell the waiting parent that start-up succeeded, then detach from the terminal.
    pub fn done(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"OK");
            // The parent is gone now; stdio must not hold its terminal.
            redirect_stdio_to_null();
        }
    }
}

fn redirect_stdio_to_null() {
    let path = CString::new("/dev/null").unwrap_or_default();
    // SAFETY: open/dup2/close on descriptors this process owns.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}

/// Fork into the background. The parent waits until the child reports readiness and then
/// exits 0; if the child fails first, the parent exits non-zero (the child has already printed
/// its error on the shared stderr). Returns in the child only.
pub fn daemonize() -> io::Result<Ready> {
    let mut fds: [RawFd; 2] = [0; 2];
    // SAFETY: valid pointer to two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the pipe descriptors were just created and are owned here.
    let (rd, wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: single-threaded at this point (before the loop starts), so fork is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        drop(wr);
        std::process::exit(wait_for_child(rd, pid));
    }
    drop(rd);
    // SAFETY: plain system call.
    unsafe { libc::setsid() };
    Ok(Ready(Some(wr)))
}

fn wait_for_child(mut rd: File, pid: libc::pid_t) -> i32 {
    let mut buf = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match rd.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if got == 2 && &buf == b"OK" {
        return 0;
    }
    // The child closed the pipe without success: it has exited or is about to.
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0 {
        libc::WEXITSTATUS(status)
    } else {
        eprintln!("lightd: the server process exited during start-up");
        1
    }
}

/// The pid file, written atomically and removed at exit only if it still names us.
pub struct PidFile {
    path: PathBuf,
}

/// A pid file written under a temporary name, not yet renamed into place. Writing it early
/// (while still privileged, before telling an old generation we are ready) means the only step
/// left after that is a rename in the same directory.
pub struct PendingPidFile {
    path: PathBuf,
    tmp: Option<PathBuf>,
}

/// Remove `<path>.<pid>.tmp` files left by generations that were killed before they could
/// rename them into place (the pid file and the control socket are written that way), where
/// `pid` no longer exists. A live pid's file is left alone: it may be a generation starting.
pub fn remove_stale_tmp(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    // Bounded: a directory such as /run may be large, but only these names are looked at.
    for ent in entries.flatten().take(100_000) {
        let file = ent.file_name();
        let file = file.to_string_lossy();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
            .filter(|&pid| pid > 0)
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let stale = ent.path();
            match std::fs::remove_file(&stale) {
                Ok(()) => log::info!(
                    "removed {}, left by pid {} which no longer runs",
                    stale.display(),
                    pid
                ),
                Err(e) => log::warn!("removing stale {}: {}", stale.display(), e),
            }
        }
    }
}

impl PidFile {
    /// Whether the file at `path` holds this process's pid.
    pub fn names_us(path: &Path) -> bool {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(std::process::id())
    }

    pub fn prepare(path: &Path) -> io::Result<PendingPidFile> {
        use std::os::unix::fs::OpenOptionsExt;
        remove_stale_tmp(path);
        let pid = std::process::id();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", pid));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let res = (|| {
            // create_new and O_NOFOLLOW: never write through a planted file or symlink.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            writeln!(f, "{}", pid)?;
            f.sync_all()
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(io::Error::new(
                e.kind(),
                format!("pid file {}: {}", path.display(), e),
            ));
        }
        Ok(PendingPidFile {
            path: path.to_path_buf(),
            tmp: Some(tmp),
        })
    }
}

impl PendingPidFile {
    /// A pid file that already names this process (an in-place reload): nothing to write.
    pub fn adopt(path: &Path) -> PendingPidFile {
        PendingPidFile {
            path: path.to_path_buf(),
            tmp: None,
        }
    }

    /// Put the pid file in place.
    pub fn commit(mut self) -> io::Result<PidFile> {
        if let Some(tmp) = self.tmp.take() {
            if let Err(e) = std::fs::rename(&tmp, &self.path) {
                let _ = std::fs::remove_file(&tmp);
                return Err(io::Error::new(
                    e.kind(),
                    format!("pid file {}: {}", self.path.display(), e),
                ));
            }
        }
        Ok(PidFile {
            path: self.path.clone(),
        })
    }
}

impl Drop for PendingPidFile {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if PidFile::names_us(&self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The user and group to switch to (server.username / server.groupname), looked up early so a
/// typo fails before anything irreversible, and applied after binding and writing the pid file.
pub struct Creds {
    user: Option<CString>,
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
}

impl Creds {
    pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Creds, String> {
        let mut c = Creds {
            user: None,
            uid: None,
            gid: None,
        };
        if let Some(u) = user {
            let name = CString::new(u).map_err(|_| format!("server.username {:?}: invalid", u))?;
            // SAFETY: getpwnam returns a pointer into static storage or null; read at once.
            let pw = unsafe { libc::getpwnam(name.as_ptr()) };
            if pw.is_null() {
                return Err(format!("server.username {:?}: no such user", u));
            }
            // SAFETY: non-null pointer from getpwnam.
            unsafe {
                c.uid = Some((*pw).pw_uid);
                c.gid = Some((*pw).pw_gid);
            }
            c.user = Some(name);
        }
        if let Some(g) = group {
            let name = CString::new(g).map_err(|_| format!("server.groupname {:?}: invalid", g))?;
            // SAFETY: as for getpwnam.
            let gr = unsafe { libc::getgrnam(name.as_ptr()) };
            if gr.is_null() {
                return Err(format!("server.groupname {:?}: no such group", g));
            }
            // SAFETY: non-null pointer from getgrnam.
            c.gid = Some(unsafe { (*gr).gr_gid });
        }
        Ok(c)
    }

    /// Switch. Only root can; anyone else keeps running as themselves, with a warning if a
    /// switch was asked for.
    pub fn apply(&self) -> Result<(), String> {
        if self.uid.is_none() && self.gid.is_none() {
            return Ok(());
        }
        // SAFETY: plain system call.
        let euid = unsafe { libc::geteuid() };
        // Already that user: an in-place reload of a process that switched at its start.
        if euid != 0 && self.uid == Some(euid) {
            return Ok(());
        }
        if euid != 0 {
            log::warn!("server.username/server.groupname ignored: not running as root");
            return Ok(());
        }
        if let Some(gid) = self.gid {
            // SAFETY: plain system calls with valid arguments.
            let rc = unsafe {
                match &self.user {
                    Some(c) => libc::initgroups(c.as_ptr(), gid),
                    None => libc::setgroups(0, std::ptr::null()),
                }
            };
            if rc != 0 {
                return Err(format!("setting groups: {}", io::Error::last_os_error()));
            }
            // SAFETY: plain system call.
            if unsafe { libc::setgid(gid) } != 0 {
                return Err(format!("setgid({}): {}", gid, io::Error::last_os_error()));
            }
        }
        if let Some(uid) = self.uid {
            // SAFETY: plain system call.
            if unsafe { libc::setuid(uid) } != 0 {
                return Err(format!("setuid({}): {}", uid, io::Error::last_os_error()));
            }
        }
        Ok(())
    }
}

/// Give back the pages of our own binary that serving does not use. The kernel maps file
/// pages in around each fault (64 KiB at a time), so by the end of start-up nearly all of the
/// binary is resident, the config parser and the modules this config never calls included:
/// with every module built in, that alone is over a megabyte. Called once everything is set
/// up, just before the loop: the binary's read-only pages (still in the page cache) are
/// unmapped from this process, and the loop faults back in only what it runs. Idle RSS of the
/// static musl build goes from about 1.1 MB to 0.3 MB (0.5 MB after the first requests).
/// Best effort: before Linux 5.4 (no MADV_PAGEOUT) nothing changes.
pub fn trim_binary_residency() {
    // Our own mappings are few (text, read-only data, data); the listing is small, read in
    // one go, and only its first lines are looked at.
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let exe = exe.to_string_lossy();
    for line in maps.lines().take(4096) {
        // "start-end perms offset dev inode path"
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = fields.nth(3).unwrap_or("");
        // Only file pages of the binary that are never written (text, read-only data):
        // clean pages, which can be dropped and read back from the page cache.
        if path != exe || perms.contains('w') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        if end <= start {
            continue;
        }
        // SAFETY: advice on a range this process has mapped read-only from its own binary;
        // the pages are clean, so dropping them changes no contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
        }
    }
}
