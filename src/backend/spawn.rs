//! Starting the programs behind the backends (a CGI script with pipes for its stdin and
//! stdout; a FastCGI or SCGI server with its listening socket as fd 0), and reaping them one
//! pid at a time.
//!
//! `std::process::Command` is not used: it leaves every descriptor without close-on-exec to
//! the child and resets only SIGPIPE, so a signal lightd ignores stays ignored in a script. A
//! child started here gets exactly what lighttpd's `fdevent_fork_execve()` gives one: fds 0-2
//! as asked and no other descriptor of lightd's (close-on-exec or not: the listening sockets
//! must never reach a script), every signal at its default, an empty signal mask, only the
//! environment given, and the working directory given. A failed exec (or chdir) is reported
//! back through a close-on-exec pipe, so it is an `Err` here rather than a child that exits
//! 127 later.
//!
//! Reaping is `waitpid(pid, WNOHANG)` per pid, never `waitpid(-1)`: the supervisor's workers
//! are children of the same process, and reaping one of them here would hide its death from
//! the code that replaces it.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::env::EnvBuf;

/// A running CGI script: the parent's ends of its pipes (non-blocking, close-on-exec). The
/// caller reaps it ([`reap`]); dropping this only closes the pipes.
#[derive(Debug)]
pub struct CgiChild {
    pub pid: u32,
    /// Write the request body here; close it for end of input.
    pub stdin: OwnedFd,
    /// The script's output.
    pub stdout: OwnedFd,
}

/// Start a CGI script: `argv[0]` is executed (no PATH search, as lighttpd does) in `cwd`, with
/// exactly the environment `env` holds. Its stdin and stdout are pipes to us; its stderr is
/// `stderr` (the error log), or lightd's own stderr when None.
pub fn spawn_cgi(
    argv: &[&OsStr],
    cwd: &Path,
    env: &EnvBuf,
    stderr: Option<BorrowedFd<'_>>,
) -> io::Result<CgiChild> {
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    // O_NONBLOCK belongs to each end's own open file description: the child's ends stay
    // blocking, as a script expects.
    set_nonblocking(&in_w)?;
    set_nonblocking(&out_r)?;
    let pid = spawn(
        argv,
        Some(cwd),
        env,
        [Some(in_r.as_fd()), Some(out_w.as_fd()), stderr],
    )?;
    Ok(CgiChild {
        pid,
        stdin: in_w,
        stdout: out_r,
    })
}

/// Start `argv[0]` with `stdio[i]` as its fd i (None: lightd's own fd i), in `cwd` (None:
/// lightd's), with exactly the environment `env` holds; see the module doc for the rest.
/// Returns the pid once the exec has succeeded.
pub fn spawn(
    argv: &[&OsStr],
    cwd: Option<&Path>,
    env: &EnvBuf,
    stdio: [Option<BorrowedFd<'_>>; 3],
) -> io::Result<u32> {
    // Everything the child needs is prepared here: between fork and exec it may only make
    // async-signal-safe calls (no allocation), since a test harness, at least, has threads.
    let args = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid("an argument holds a NUL byte"))?;
    let prog = args.first().ok_or_else(|| invalid("no program to run"))?;
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.exec_entries().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let cwd_c = cwd
        .map(|p| CString::new(p.as_os_str().as_bytes()))
        .transpose()
        .map_err(|_| invalid("the directory's name holds a NUL byte"))?;

    // A descriptor to become fd i must not itself be one of 0-2, or an earlier dup2 could
    // overwrite it: such ones are copied above 2 first.
    let mut moved: Vec<OwnedFd> = Vec::new();
    let mut src: [RawFd; 3] = [-1; 3];
    for (slot, fd) in src.iter_mut().zip(stdio.iter()) {
        let Some(fd) = fd else { continue };
        let raw = fd.as_raw_fd();
        *slot = if raw < 3 {
            // SAFETY: duplicating a descriptor the caller lends us.
            let d = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
            if d < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: just created, owned here.
            moved.push(unsafe { OwnedFd::from_raw_fd(d) });
            d
        } else {
            raw
        };
    }

    let (report_r, report_w) = pipe()?;
    // Kernels before 5.11 cannot mark every descriptor close-on-exec in one call: then the
    // open ones are listed now and marked one by one in the child.
    let fallback = if close_range_works(report_r.as_raw_fd()) && !tests::force_fallback() {
        Vec::new()
    } else {
        open_fds()
    };
    let child = Child {
        prog: prog.as_ptr(),
        argv: argp.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        src,
        report: report_w.as_raw_fd(),
        fallback: &fallback,
        // SAFETY: reads a constant of the C library.
        sigmax: libc::SIGRTMAX(),
    };

    // Block every signal across the fork: in the child, until its dispositions are reset, a
    // signal would run lightd's handler, which writes to lightd's own signal pipe.
    // SAFETY: sigset_t is plain data, filled by sigfillset before use.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigset_t values.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the child only makes async-signal-safe calls before exec or _exit (Child::run).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child, with everything prepared above still alive (it is a copy).
        unsafe { child.run() }
    }
    let fork_err = io::Error::last_os_error();
    // SAFETY: restoring the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(report_w);
    drop(moved);
    if pid < 0 {
        return Err(fork_err);
    }

    // The report pipe closes at a successful exec; a failure writes a stage and errno.
    let mut report = [0u8; 5];
    let mut got = 0;
    while got < report.len() {
        let rest = report.get_mut(got..).unwrap_or(&mut []);
        // SAFETY: reading into a buffer we own, of the length given.
        let n = unsafe { libc::read(report_r.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    if got == 0 {
        return Ok(pid as u32);
    }
    // The child has failed and is exiting: reap it now, it is ours alone.
    let _ = wait_blocking(pid);
    let errno = i32::from_ne_bytes([report[1], report[2], report[3], report[4]]);
    let e = if got == report.len() && errno != 0 {
        io::Error::from_raw_os_error(errno)
    } else {
        io::Error::new(io::ErrorKind::Other, "the child failed before exec")
    };
    let what = match report[0] {
        b'c' => format!(
            "changing into {}",
            cwd.map_or_else(String::new, |p| p.display().to_string())
        ),
        b'd' => "setting up the descriptors of".to_string(),
        _ => "executing".to_string(),
    };
    Err(io::Error::new(
        e.kind(),
        format!("{} {}: {}", what, Path::new(prog_name(argv)).display(), e),
    ))
}

fn prog_name<'a>(argv: &[&'a OsStr]) -> &'a OsStr {
    argv.first().copied().unwrap_or_default()
}

/// What the forked child needs, all of it prepared by the parent.
struct Child<'a> {
    prog: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    src: [RawFd; 3],
    report: RawFd,
    fallback: &'a [RawFd],
    sigmax: libc::c_int,
}

impl Child<'_> {
    /// In the forked child: set up and exec, or report why not and exit. Only
    /// async-signal-safe calls, no allocation, nothing that can panic.
    unsafe fn run(&self) -> ! {
        // Every signal back to its default, while all are still blocked. exec would reset
        // caught ones by itself; ignored ones (SIGPIPE by Rust's runtime) it would keep.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=self.sigmax {
            if sig != libc::SIGKILL
                && sig != libc::SIGSTOP
                && libc::sigaction(sig, &dfl, std::ptr::null_mut()) != 0
            {
                // glibc refuses the signals it reserves for itself (32 and 33), which can
                // still be ignored: ask the kernel directly. All zeroes is SIG_DFL with no
                // flags in every architecture's layout; the size of the kernel's sigset_t is
                // 8 bytes, or 16 on MIPS.
                let kact = [0u64; 8];
                for size in [8usize, 16] {
                    let r = libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        kact.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        size,
                    );
                    if r == 0 {
                        break;
                    }
                }
            }
        }
        for (target, &fd) in (0..).zip(self.src.iter()) {
            // dup2 leaves the copy without close-on-exec, which is what passes it on.
            if fd >= 0 && libc::dup2(fd, target) < 0 {
                self.fail(b'd');
            }
        }
        if !self.cwd.is_null() && libc::chdir(self.cwd) != 0 {
            self.fail(b'c');
        }
        // Every descriptor above 2 closes at exec; the report pipe too, which is how the
        // parent learns that exec succeeded.
        if self.fallback.is_empty() {
            let r = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if r != 0 {
                self.fail(b'd');
            }
        } else {
            for &fd in self.fallback {
                if fd > 2 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(self.prog, self.argv, self.envp);
        self.fail(b'e')
    }

    unsafe fn fail(&self, stage: u8) -> ! {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let e = errno.to_ne_bytes();
        let msg = [stage, e[0], e[1], e[2], e[3]];
        libc::write(self.report, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// Whether close_range(CLOSE_RANGE_CLOEXEC) works here (Linux 5.11 and later), tried once on
/// a descriptor that is close-on-exec already.
fn close_range_works(probe: RawFd) -> bool {
    // 0: not tried yet, 1: works, 2: does not.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    // SAFETY: marks close-on-exec a descriptor that already is.
    let ok = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            probe as libc::c_uint,
            probe as libc::c_uint,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } == 0;
    STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
    ok
}

/// The descriptors open in this process above 2 (for kernels without close_range).
fn open_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        // Without /proc: every number up to the limit.
        // SAFETY: getrlimit fills the struct we pass.
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        let max = (lim.rlim_cur as u64).min(1 << 20) as RawFd;
        return (3..max).collect();
    };
    // Bounded by the descriptor limit, which the kernel enforces.
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| fd > 2)
        .collect()
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [RawFd; 2] = [-1; 2];
    // SAFETY: valid pointer to two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: flag changes on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
    /// Not a child of ours (any more): reaped elsewhere, or never ours.
    Lost,
}

impl Ended {
    fn from_status(status: libc::c_int) -> Ended {
        if libc::WIFEXITED(status) {
            Ended::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Ended::Signaled(libc::WTERMSIG(status))
        } else {
            Ended::Lost
        }
    }
}

/// A pid we may wait for or signal: never 0, 1 or negative, which would mean a process
/// group, init, or every process.
fn valid(pid: u32) -> Option<libc::pid_t> {
    libc::pid_t::try_from(pid).ok().filter(|&p| p > 1)
}

/// Whether child `pid` has ended, without blocking: None while it runs.
pub fn try_wait(pid: u32) -> Option<Ended> {
    let Some(p) = valid(pid) else {
        return Some(Ended::Lost);
    };
    // A few tries: EINTR cannot repeat for long with WNOHANG.
    for _ in 0..8 {
        let mut status = 0;
        // SAFETY: waiting, without blocking, for one pid.
        let r = unsafe { libc::waitpid(p, &mut status, libc::WNOHANG) };
        if r == 0 {
            return None;
        }
        if r == p {
            return Some(Ended::from_status(status));
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    Some(Ended::Lost)
}

fn wait_blocking(pid: libc::pid_t) -> Option<Ended> {
    for _ in 0..64 {
        let mut status = 0;
        // SAFETY: waiting for one child of ours that is exiting.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Some(Ended::from_status(status));
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
    None
}

/// Reap those of `pids` that have ended, without blocking: they are taken out of the list and
/// returned with how they ended. Allocates nothing when none has.
pub fn reap(pids: &mut Vec<u32>) -> Vec<(u32, Ended)> {
    let mut ended = Vec::new();
    pids.retain(|&pid| match try_wait(pid) {
        None => true,
        Some(how) => {
            ended.push((pid, how));
            false
        }
    });
    ended
}

/// Send `sig` to `pid`. False if it does not exist (any more) or may not be signalled.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    match valid(pid) {
        // SAFETY: signalling one process by its pid.
        Some(p) => (unsafe { libc::kill(p, sig) }) == 0,
        None => false,
    }
}

/// Send `sig` to each of `pids`, then reap those that have ended (see [`reap`]).
pub fn kill_and_reap(pids: &mut Vec<u32>, sig: libc::c_int) -> Vec<(u32, Ended)> {
    for &pid in pids.iter() {
        signal(pid, sig);
    }
    reap(pids)
}

/// Reap `pids`, waiting up to `limit` for them to end (shutdown, tests): polls every 10 ms.
/// Those still running are left in `pids`.
pub fn reap_within(pids: &mut Vec<u32>, limit: Duration) -> Vec<(u32, Ended)> {
    let until = Instant::now() + limit;
    let mut ended = reap(pids);
    while !pids.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        ended.extend(reap(pids));
    }
    ended
}

#[cfg(not(test))]
mod tests {
    pub(super) fn force_fallback() -> bool {
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::path::PathBuf;

    thread_local! {
        /// Take the path of kernels without close_range (set per test thread).
        static FORCE_FALLBACK: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn force_fallback() -> bool {
        FORCE_FALLBACK.with(|f| f.get())
    }

    /// A fresh directory under the target directory, removed when dropped.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::AtomicUsize;
            static N: AtomicUsize = AtomicUsize::new(0);
            let base = std::env::temp_dir();
            let p = base.join(format!(
                "lightd-{}-{}-{}",
                tag,
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Read a non-blocking descriptor to EOF, waiting at most 10 s in all.
    pub(crate) fn read_to_eof(fd: &OwnedFd) -> Vec<u8> {
        let until = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < until, "no EOF within 10 s");
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            unsafe { libc::poll(&mut p, 1, 100) };
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 {
                return out;
            }
            if n > 0 {
                out.extend_from_slice(&buf[..n as usize]);
            }
        }
    }

    fn os(args: &[&'static str]) -> Vec<&'static OsStr> {
        args.iter().map(|a| OsStr::new(*a)).collect()
    }

    fn run(args: &[&'static str], cwd: &Path, env: &EnvBuf) -> (Vec<u8>, Ended) {
        let c = spawn_cgi(&os(args), cwd, env, None).unwrap();
        drop(c.stdin);
        let out = read_to_eof(&c.stdout);
        let mut pids = vec![c.pid];
        let ended = reap_within(&mut pids, Duration::from_secs(10));
        assert_eq!(ended.len(), 1, "the child did not end");
        (out, ended[0].1)
    }

    #[test]
    fn cat_echoes_through_the_pipes() {
        let dir = TempDir::new("spawn-cat");
        let c = spawn_cgi(&os(&["/bin/cat"]), &dir.0, &EnvBuf::new(), None).unwrap();
        let mut w = std::fs::File::from(c.stdin);
        w.write_all(b"hello, backend\n").unwrap();
        drop(w);
        assert_eq!(read_to_eof(&c.stdout), b"hello, backend\n");
        let mut pids = vec![c.pid];
        let ended = reap_within(&mut pids, Duration::from_secs(10));
        assert_eq!(ended, vec![(c.pid, Ended::Exited(0))]);
    }

    #[test]
    fn parent_ends_are_nonblocking_and_close_on_exec() {
        let dir = TempDir::new("spawn-flags");
        let c = spawn_cgi(&os(&["/bin/cat"]), &dir.0, &EnvBuf::new(), None).unwrap();
        for fd in [&c.stdin, &c.stdout] {
            let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
            let fdfl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
            assert_ne!(fl & libc::O_NONBLOCK, 0);
            assert_ne!(fdfl & libc::FD_CLOEXEC, 0);
        }
        // Nothing to read yet: WouldBlock, not a hang.
        let mut r = std::fs::File::from(c.stdout.try_clone().unwrap());
        let e = r.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(c.stdin);
        read_to_eof(&c.stdout);
        reap_within(&mut vec![c.pid], Duration::from_secs(10));
    }

    #[test]
    fn the_child_gets_exactly_the_environment_given() {
        let dir = TempDir::new("spawn-env");
        let mut env = EnvBuf::new();
        env.push(b"GATEWAY_INTERFACE", b"CGI/1.1");
        env.push(b"X", b"two words");
        let (out, how) = run(&["/usr/bin/env"], &dir.0, &env);
        assert_eq!(how, Ended::Exited(0));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GATEWAY_INTERFACE=CGI/1.1\nX=two words\n"
        );
        // And nothing at all when none is given (no PATH, no HOME from lightd).
        let (out, _) = run(&["/usr/bin/env"], &dir.0, &EnvBuf::new());
        assert_eq!(out, b"");
    }

    #[test]
    fn the_child_runs_in_the_directory_given() {
        let dir = TempDir::new("spawn-cwd");
        let (out, _) = run(&["/bin/sh", "-c", "pwd -P"], &dir.0, &EnvBuf::new());
        let want = std::fs::canonicalize(&dir.0).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap().trim_end(),
            want.to_str().unwrap()
        );
    }

    #[test]
    fn stderr_goes_where_asked() {
        let dir = TempDir::new("spawn-stderr");
        let log = std::fs::File::create(dir.0.join("error.log")).unwrap();
        let c = spawn_cgi(
            &os(&["/bin/sh", "-c", "echo to-the-log >&2; echo to-stdout"]),
            &dir.0,
            &EnvBuf::new(),
            Some(log.as_fd()),
        )
        .unwrap();
        drop(c.stdin);
        assert_eq!(read_to_eof(&c.stdout), b"to-stdout\n");
        reap_within(&mut vec![c.pid], Duration::from_secs(10));
        let logged = std::fs::read_to_string(dir.0.join("error.log")).unwrap();
        assert_eq!(logged, "to-the-log\n");
    }

    #[test]
    fn exec_and_chdir_failures_are_errors() {
        let dir = TempDir::new("spawn-fail");
        let env = EnvBuf::new();
        let e = spawn_cgi(&os(&["/nonexistent/prog"]), &dir.0, &env, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{}", e);
        assert!(e.to_string().contains("/nonexistent/prog"), "{}", e);

        let e = spawn_cgi(&os(&["/bin/cat"]), &dir.0.join("missing"), &env, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{}", e);
        assert!(e.to_string().contains("changing into"), "{}", e);

        let script = dir.0.join("not-executable.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        let e = spawn_cgi(&[script.as_os_str()], &dir.0, &env, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{}", e);

        assert_eq!(
            spawn_cgi(&[], &dir.0, &env, None).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            spawn_cgi(&os(&["/bin/c\0at"]), &dir.0, &env, None)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }

    /// A listening socket as lightd might hold one: not close-on-exec (as one inherited
    /// from a supervisor can be).
    fn leaky_listener() -> OwnedFd {
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            let r = libc::bind(
                fd,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            assert_eq!(r, 0);
            assert_eq!(libc::listen(fd, 8), 0);
            assert_eq!(libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC, 0);
            OwnedFd::from_raw_fd(fd)
        }
    }

    #[test]
    fn no_descriptor_of_ours_reaches_the_child() {
        let dir = TempDir::new("spawn-fds");
        let leaky = leaky_listener();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        // The shell lists its own descriptors ($$, not ls's self): only 0, 1 and 2.
        let (out, how) = run(&["/bin/sh", "-c", "ls /proc/$$/fd"], &dir.0, &EnvBuf::new());
        assert_eq!(how, Ended::Exited(0));
        let mut fds: Vec<i32> = String::from_utf8(out)
            .unwrap()
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        fds.sort_unstable();
        assert_eq!(
            fds,
            vec![0, 1, 2],
            "listeners {} and {} and file {} must stay ours",
            leaky.as_raw_fd(),
            std_listener.as_raw_fd(),
            file.as_raw_fd()
        );
        // The fallback for kernels without close_range lists them all.
        let list = open_fds();
        assert!(list.contains(&leaky.as_raw_fd()));
        assert!(list.iter().all(|&fd| fd > 2));
    }

    #[test]
    fn no_descriptor_reaches_the_child_without_close_range() {
        FORCE_FALLBACK.with(|f| f.set(true));
        no_descriptor_of_ours_reaches_the_child();
        // The exec report pipe still works on that path.
        let dir = TempDir::new("spawn-fallback");
        let e = spawn_cgi(&os(&["/nonexistent"]), &dir.0, &EnvBuf::new(), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        FORCE_FALLBACK.with(|f| f.set(false));
    }

    fn status_field(status: &str, name: &str) -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{} missing", name));
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    }

    #[test]
    fn the_child_has_a_clean_signal_mask_and_default_dispositions() {
        let dir = TempDir::new("spawn-sig");
        // This thread blocks SIGUSR2 and SIGTERM, and Rust's runtime ignores SIGPIPE.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        }
        let ours = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let res = std::panic::catch_unwind(|| {
            run(&["/bin/cat", "/proc/self/status"], &dir.0, &EnvBuf::new())
        });
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        let (out, _) = res.unwrap();
        // The test means something only if the parent's state is not clean.
        let bit = |sig: i32| 1u64 << (sig - 1);
        assert_ne!(status_field(&ours, "SigBlk:") & bit(libc::SIGUSR2), 0);
        assert_ne!(status_field(&ours, "SigIgn:") & bit(libc::SIGPIPE), 0);
        let theirs = String::from_utf8(out).unwrap();
        // The standard signals (1 to 31). The real-time ones above are left out of the check:
        // under qemu-user (the cross builds' tests) the emulator keeps some of those for
        // itself, whatever the program asks.
        let standard = (1u64 << 31) - 1;
        assert_eq!(status_field(&theirs, "SigBlk:") & standard, 0, "{}", theirs);
        assert_eq!(status_field(&theirs, "SigIgn:") & standard, 0, "{}", theirs);
    }

    #[test]
    fn reaping_is_per_pid() {
        let dir = TempDir::new("spawn-reap");
        let env = EnvBuf::new();
        let a = spawn_cgi(&os(&["/bin/sh", "-c", "exit 3"]), &dir.0, &env, None).unwrap();
        let b = spawn_cgi(&os(&["/bin/sh", "-c", "exit 4"]), &dir.0, &env, None).unwrap();
        let mut only_a = vec![a.pid];
        let ended = reap_within(&mut only_a, Duration::from_secs(10));
        assert_eq!(ended, vec![(a.pid, Ended::Exited(3))]);
        assert!(only_a.is_empty());
        // b was left for whoever owns it, even though it has ended too.
        let mut only_b = vec![b.pid];
        let ended = reap_within(&mut only_b, Duration::from_secs(10));
        assert_eq!(ended, vec![(b.pid, Ended::Exited(4))]);
        // Reaped already: lost, not running forever.
        assert_eq!(try_wait(b.pid), Some(Ended::Lost));
    }

    #[test]
    fn kill_and_reap_ends_a_running_child() {
        let dir = TempDir::new("spawn-kill");
        let c = spawn_cgi(&os(&["/bin/sleep", "30"]), &dir.0, &EnvBuf::new(), None).unwrap();
        let mut pids = vec![c.pid];
        assert!(reap(&mut pids).is_empty(), "sleep ended early");
        assert_eq!(try_wait(c.pid), None);
        let mut ended = kill_and_reap(&mut pids, libc::SIGTERM);
        ended.extend(reap_within(&mut pids, Duration::from_secs(10)));
        assert_eq!(ended, vec![(c.pid, Ended::Signaled(libc::SIGTERM))]);
    }

    #[test]
    fn group_and_init_pids_are_never_signalled() {
        // kill(0, sig) would signal our own process group (the test runner).
        assert!(!signal(0, 0));
        assert!(!signal(1, 0));
        assert!(!signal(u32::MAX, 0));
        assert_eq!(try_wait(0), Some(Ended::Lost));
        assert!(signal(std::process::id(), 0));
    }
}
