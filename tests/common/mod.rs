//! Integration-test harness: runs the real `lightd` binary on a temporary config and docroot
//! and speaks raw HTTP/1.1 to it over TCP.
//!
//! Everything here waits on conditions with a deadline (a log line appeared, a process exited,
//! bytes arrived) rather than sleeping, so the suite stays reliable on a loaded machine.

// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

pub mod tls;

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a socket read or write may block before the test fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to log that it listens. Generous: CI machines are slow.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a command-line invocation (-t, -v, a daemon launcher) may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// Poll interval for conditions that have no event to wait on (files, process exit).
pub const POLL: Duration = Duration::from_millis(20);

pub const BIN: &str = env!("CARGO_BIN_EXE_lightd");

/// The variable that names an emulator to run `BIN` through (`qemu-aarch64-static`, say), for
/// a test run against a binary built for another architecture on a machine whose kernel has
/// no binfmt_misc handler for it. Unset or empty: the binary runs directly.
pub const WRAPPER_VAR: &str = "LIGHTD_TEST_WRAPPER";

/// The emulator named by `WRAPPER_VAR`, if any.
pub fn wrapper() -> Option<std::ffi::OsString> {
    std::env::var_os(WRAPPER_VAR).filter(|w| !w.is_empty())
}

/// A command that runs the lightd under test: `BIN`, or the wrapper with `BIN` as its first
/// argument. Arguments added next go to lightd either way.
pub fn lightd_exec() -> Command {
    lightd_exec_at(Path::new(BIN))
}

/// `lightd_exec` for a copy of the binary at `bin`.
pub fn lightd_exec_at(bin: &Path) -> Command {
    match wrapper() {
        Some(w) => {
            let mut cmd = Command::new(w);
            cmd.arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

/// Why the kernel here cannot start `BIN` itself, if it cannot: it is built for another
/// architecture, runs only through the wrapper, and no binfmt_misc handler is registered for
/// it. Then whatever execs lightd without the harness in between fails with ENOEXEC: lightd
/// re-executing itself on SIGUSR1, the rc script, an installed copy. Checked once, by trying.
pub fn direct_exec_unavailable() -> Option<&'static str> {
    static WHY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    WHY.get_or_init(|| {
        // Natively there is nothing to find out: a binary that will not start is a failure
        // for the test to report, not a reason to skip it.
        let w = wrapper()?;
        match Command::new(BIN)
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => Some(format!(
                "the kernel cannot execute {BIN} ({e}); {WRAPPER_VAR}={} runs it for the \
                 harness, but not when lightd or a script execs it (register a binfmt_misc \
                 handler to run these tests)",
                w.to_string_lossy()
            )),
            _ => None,
        }
    })
    .as_deref()
}

/// For a test (or the rest of one) that needs the kernel to start lightd itself (see
/// `direct_exec_unavailable`): true, after saying why, when it cannot here, so the test
/// returns early.
pub fn skip_without_direct_exec() -> bool {
    let Some(why) = direct_exec_unavailable() else {
        return false;
    };
    let name = thread::current().name().unwrap_or("this test").to_string();
    // Straight to the stderr descriptor: libtest captures eprintln! of a passing test, and a
    // skip must be seen in CI's output.
    let _ = writeln!(io::stderr(), "{name}: skipped from here: {why}");
    true
}

// ---------------------------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------------------------

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "lightd-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        // Canonical, so that follow-symlink = "disable" is not tripped by a symlinked /tmp
        // and so paths printed by the server compare equal to ours.
        let path = fs::canonicalize(&path).expect("canonicalize temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Write `data` to `path`, creating parent directories.
pub fn write_file(path: &Path, data: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Date a file's modification (and access) time `secs` seconds back. The small-file cache
/// does not take a file written in the last two seconds, and a test that wants it cached says
/// so with this. (utimensat rather than File::set_modified, which is newer than lightd's
/// minimum Rust.)
pub fn backdate(path: &Path, secs: u64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in the path");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let when = libc::timespec {
        // `as _` takes the field's type: naming libc::time_t is deprecated on musl targets
        // (the libc crate means to make it 64-bit there), a warning in every cross build.
        tv_sec: now.saturating_sub(secs) as _,
        tv_nsec: 0,
    };
    let times = [when, when];
    // SAFETY: a NUL-terminated path and an array of two timespecs, both alive for the call.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(
        rc,
        0,
        "utimensat {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
}

/// A process's resident set in KiB (0 when it cannot be read).
pub fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// `len` bytes of a deterministic pattern with no short period, so that a misplaced or
/// repeated block of a large file is detected by a byte comparison.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Output capture
// ---------------------------------------------------------------------------------------------

/// The text a child wrote to one of its pipes, collected by a background thread so the child
/// never blocks on a full pipe and the test can wait for a line with a deadline.
pub struct Capture {
    state: Mutex<(Vec<u8>, bool)>,
    cond: Condvar,
}

impl Capture {
    pub fn spawn<R: Read + Send + 'static>(mut r: R) -> Arc<Capture> {
        let cap = Arc::new(Capture {
            state: Mutex::new((Vec::new(), false)),
            cond: Condvar::new(),
        });
        let c = cap.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut st = c.state.lock().unwrap();
                        st.0.extend_from_slice(&chunk[..n]);
                        c.cond.notify_all();
                    }
                }
            }
            c.state.lock().unwrap().1 = true;
            c.cond.notify_all();
        });
        cap
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.state.lock().unwrap().0).into_owned()
    }

    /// The bytes so far, as written (for binary output).
    pub fn bytes(&self) -> Vec<u8> {
        self.state.lock().unwrap().0.clone()
    }

    /// Whether the writer closed its end (the process and any children holding it are gone).
    pub fn closed(&self) -> bool {
        self.state.lock().unwrap().1
    }

    /// Wait until `pred` holds for the text so far; false at the deadline or when the pipe
    /// closed without it holding.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().unwrap();
        loop {
            if pred(&String::from_utf8_lossy(&st.0)) {
                return true;
            }
            let now = Instant::now();
            if st.1 || now >= deadline {
                return false;
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Wait until the pipe is closed (the writer exited); false at the deadline.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().unwrap();
        while !st.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap().0;
        }
        true
    }
}

/// Every address named by a `listening on ADDR` log line, in order.
pub fn listen_addrs(text: &str) -> Vec<SocketAddr> {
    const NEEDLE: &str = "listening on ";
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(i) = rest.find(NEEDLE) {
            rest = &rest[i + NEEDLE.len()..];
            let token: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ',' && *c != ')' && *c != '"')
                .collect();
            // Tolerate punctuation ending a sentence ("listening on 127.0.0.1:80.").
            let token = token.trim_end_matches(|c: char| !c.is_ascii_digit());
            if let Ok(addr) = token.parse() {
                out.push(addr);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// The result of a command-line invocation that ran to completion.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Poll a child until it exits or the deadline passes.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// A `lightd` command with a clean environment for logging, stdin closed, output piped.
pub fn lightd_command(args: &[&str]) -> Command {
    let mut cmd = lightd_exec();
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Run a command to completion (killing it at the deadline) and collect its output.
pub fn run_command(mut cmd: Command) -> Output {
    let mut child = cmd.spawn().expect("spawn lightd");
    let out = Capture::spawn(child.stdout.take().unwrap());
    let err = Capture::spawn(child.stderr.take().unwrap());
    let status = match wait_child(&mut child, CMD_TIMEOUT) {
        Some(st) => st,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "lightd did not exit within {CMD_TIMEOUT:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.text(),
                err.text()
            );
        }
    };
    // The pipes close when the process exits, unless it left a child holding them (a daemon
    // is expected to detach them); give them a moment either way.
    out.wait_closed(Duration::from_secs(2));
    err.wait_closed(Duration::from_secs(2));
    Output {
        status,
        stdout: out.text(),
        stderr: err.text(),
    }
}

/// Run `lightd ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    run_command(lightd_command(args))
}

/// Whether a process exists and is not a zombie (a reparented daemon may linger as a zombie
/// when PID 1 does not reap).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name, which may contain spaces.
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].trim_start().chars().next());
            state != Some('Z')
        }
        Err(_) => false,
    }
}

pub fn send_signal(pid: i32, sig: libc::c_int) {
    assert!(pid > 1, "refusing to signal pid {pid}");
    // SAFETY: plain FFI call; the pid is one this test started.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

// ---------------------------------------------------------------------------------------------
// Server builder
// ---------------------------------------------------------------------------------------------

/// The config every test starts from unless it asks for a raw one: the docroot and an
/// ephemeral port on loopback.
const BASE_CONFIG: &str = "\
server.document-root = \"{docroot}\"
server.bind = \"127.0.0.1\"
server.port = 0
";

/// Builds a temporary directory holding `lightd.conf`, `docroot/` and whatever a test adds.
/// In config text, `{dir}` and `{docroot}` are replaced by those absolute paths.
pub struct Builder {
    dir: TempDir,
    extra: String,
    raw: Option<String>,
    listeners: usize,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    errorlog: Option<PathBuf>,
}

pub fn builder() -> Builder {
    let dir = TempDir::new("srv");
    fs::create_dir_all(dir.path().join("docroot")).unwrap();
    Builder {
        dir,
        extra: String::new(),
        raw: None,
        listeners: 1,
        env: Vec::new(),
        cwd: None,
        errorlog: None,
    }
}

impl Builder {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn docroot(&self) -> PathBuf {
        self.dir.path().join("docroot")
    }

    /// Add a file under the docroot.
    pub fn file(self, rel: &str, data: impl AsRef<[u8]>) -> Self {
        write_file(&self.docroot().join(rel), data);
        self
    }

    /// Add a file anywhere under the temporary directory.
    pub fn dir_file(self, rel: &str, data: impl AsRef<[u8]>) -> Self {
        write_file(&self.dir().join(rel), data);
        self
    }

    /// Append config text after the base config.
    pub fn config(mut self, text: &str) -> Self {
        self.extra.push_str(text);
        self.extra.push('\n');
        self
    }

    /// Use exactly this config text (placeholders still expanded), without the base config.
    pub fn raw_config(mut self, text: &str) -> Self {
        self.raw = Some(text.to_string());
        self
    }

    /// How many `listening on` lines to wait for at start.
    pub fn listeners(mut self, n: usize) -> Self {
        self.listeners = n;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Log to `{dir}/error.log` instead of stderr; the harness then looks for the listening
    /// line there.
    pub fn errorlog(mut self) -> Self {
        let path = self.dir().join("error.log");
        self.extra
            .push_str(&format!("server.errorlog = \"{}\"\n", path.display()));
        self.errorlog = Some(path);
        self
    }

    pub fn expand(&self, text: &str) -> String {
        text.replace("{docroot}", &self.docroot().display().to_string())
            .replace("{dir}", &self.dir().display().to_string())
    }

    pub fn config_text(&self) -> String {
        match &self.raw {
            Some(raw) => self.expand(raw),
            None => self.expand(&format!("{BASE_CONFIG}{}", self.extra)),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("lightd.conf")
    }

    /// Write the config file and return its path.
    pub fn write_config(&self) -> PathBuf {
        let path = self.config_path();
        write_file(&path, self.config_text());
        path
    }

    /// A `lightd` command with this builder's environment and working directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = lightd_command(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        cmd
    }

    /// Run `lightd ARGS -f CONFIG` to completion (for -t, -tt, -p).
    pub fn run(&self, args: &[&str]) -> Output {
        let cfg = self.write_config();
        let cfg = cfg.to_str().unwrap();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", cfg]);
        run_command(self.command(&all))
    }

    /// Spawn `lightd ARGS -f CONFIG` and return at once, without waiting for anything.
    pub fn spawn(self, args: &[&str]) -> Server {
        self.spawn_with(args, |_| {})
    }

    /// Like `spawn`, letting the test adjust the command first (a `pre_exec` hook that lowers
    /// a resource limit, say) before the process exists.
    pub fn spawn_with(self, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Server {
        let cfg = self.write_config();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", cfg.to_str().unwrap()]);
        let mut cmd = self.command(&all);
        tweak(&mut cmd);
        self.launch(cmd)
    }

    /// Start `lightd -D -f CONFIG` the way lighttpd's test harness starts a server (and the
    /// way systemd passes sockets): the listening sockets `fds` at descriptors 3, 4, ...,
    /// LISTEN_FDS set to how many, and LISTEN_PID to the server's own pid. A shell sets
    /// LISTEN_PID to its `$$` and execs lightd in its place, as the harness's perl does (through
    /// the wrapper, if one is set: an emulator keeps the pid it is exec'd with).
    pub fn spawn_activated(self, fds: &[RawFd]) -> Server {
        let cfg = self.write_config();
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            "LISTEN_PID=$$ exec ${LIGHTD_TEST_WRAPPER:+\"$LIGHTD_TEST_WRAPPER\"} \"$0\" -D -f \"$1\"",
        ])
            .arg(BIN)
            .arg(&cfg)
            .env("LISTEN_FDS", fds.len().to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let fds = fds.to_vec();
        // SAFETY: only descriptor calls on the forked child, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                // Move every socket out of the way first, so placing one at 3 + i cannot
                // overwrite another that happens to sit there.
                let mut high = Vec::with_capacity(fds.len());
                for &fd in &fds {
                    let d = libc::fcntl(fd, libc::F_DUPFD, 100);
                    if d < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    high.push(d);
                }
                for (i, &d) in high.iter().enumerate() {
                    // dup2 leaves the new descriptor without FD_CLOEXEC: it survives exec.
                    if libc::dup2(d, 3 + i as RawFd) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    libc::close(d);
                }
                Ok(())
            });
        }
        self.launch(cmd)
    }

    fn launch(self, mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("spawn lightd");
        let stdout = Capture::spawn(child.stdout.take().unwrap());
        let stderr = Capture::spawn(child.stderr.take().unwrap());
        Server {
            child: Some(child),
            daemon_pid: None,
            stdout,
            stderr,
            errorlog: self.errorlog.clone(),
            addrs: Vec::new(),
            want_listeners: self.listeners,
            exited: None,
            dir: self.dir,
        }
    }

    /// Start `lightd -D -f CONFIG` and wait until every listener is up.
    pub fn start(self) -> Server {
        let mut server = self.spawn(&["-D"]);
        server.wait_listening();
        server
    }

    /// `start`, with the command adjusted first as in `spawn_with`.
    pub fn start_with(self, tweak: impl FnOnce(&mut Command)) -> Server {
        let mut server = self.spawn_with(&["-D"], tweak);
        server.wait_listening();
        server
    }
}

// ---------------------------------------------------------------------------------------------
// A running server
// ---------------------------------------------------------------------------------------------

/// A running `lightd`. Dropping it kills the process (by pid, only ours) and removes the
/// temporary directory; if the test is failing, the server's stderr is printed first.
pub struct Server {
    /// The foreground server, or the launcher of a daemon.
    child: Option<Child>,
    /// The daemon's pid, once read from its pid file.
    daemon_pid: Option<i32>,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    errorlog: Option<PathBuf>,
    addrs: Vec<SocketAddr>,
    want_listeners: usize,
    exited: Option<ExitStatus>,
    // Declared last so the directory outlives the process (fields drop after Drop::drop).
    dir: TempDir,
}

impl Server {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn docroot(&self) -> PathBuf {
        self.dir.path().join("docroot")
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr_capture(&self) -> &Capture {
        &self.stderr
    }

    /// The error log file's contents, if one is configured and exists.
    pub fn errorlog_text(&self) -> String {
        self.errorlog
            .as_ref()
            .and_then(|p| fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Everything the server logged so far: stderr and the error log file.
    pub fn log_text(&self) -> String {
        format!("{}{}", self.stderr(), self.errorlog_text())
    }

    /// Wait until the log mentions `needle`; false at the deadline.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_text().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            if self.errorlog.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                return self.stderr.wait_for(left, |t| t.contains(needle));
            }
            thread::sleep(POLL);
        }
    }

    /// Wait for the configured number of `listening on` lines; panics (showing the logs) if
    /// the server exits or the deadline passes first.
    pub fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let addrs = listen_addrs(&self.log_text());
            if addrs.len() >= self.want_listeners {
                self.addrs = addrs;
                return;
            }
            if let Some(st) = self.try_exit_status() {
                // A daemon launcher exits by design; keep waiting on the log in that case.
                if self.daemon_pid.is_none() || !pid_alive(self.daemon_pid.unwrap_or(0)) {
                    panic!(
                        "lightd exited ({st:?}) before listening\n--- stderr ---\n{}\n--- error log ---\n{}",
                        self.stderr(),
                        self.errorlog_text()
                    );
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "lightd did not log {} `listening on` line(s) within {START_TIMEOUT:?}\n--- stderr ---\n{}\n--- error log ---\n{}",
                    self.want_listeners,
                    self.stderr(),
                    self.errorlog_text()
                );
            }
            if self.errorlog.is_none() && self.child.is_some() && self.daemon_pid.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                let n = self.want_listeners;
                self.stderr
                    .wait_for(left.min(Duration::from_millis(200)), |t| {
                        listen_addrs(t).len() >= n
                    });
            } else {
                thread::sleep(POLL);
            }
        }
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The server's pid: the daemon once adopted, else the child we started.
    pub fn pid(&self) -> i32 {
        if let Some(pid) = self.daemon_pid {
            return pid;
        }
        self.child.as_ref().expect("no process").id() as i32
    }

    /// The pid of the process we spawned (a daemon's launcher in daemon mode).
    pub fn child_pid(&self) -> i32 {
        self.child.as_ref().expect("no process").id() as i32
    }

    /// Take the daemon's pid from its pid file, so it is signalled and cleaned up.
    pub fn adopt_daemon(&mut self, pid_file: &Path) -> i32 {
        let text = fs::read_to_string(pid_file)
            .unwrap_or_else(|e| panic!("read pid file {}: {e}", pid_file.display()));
        let pid: i32 = text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("pid file holds {text:?}: {e}"));
        assert!(pid > 1, "pid file holds {pid}");
        self.daemon_pid = Some(pid);
        pid
    }

    pub fn signal(&self, sig: libc::c_int) {
        send_signal(self.pid(), sig);
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            if let Some(child) = &mut self.child {
                if let Ok(Some(st)) = child.try_wait() {
                    self.exited = Some(st);
                }
            }
        }
        self.exited
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.daemon_pid {
            Some(pid) => pid_alive(pid),
            None => self.try_exit_status().is_none(),
        }
    }

    /// Wait for the spawned process (the foreground server or the daemon launcher) to exit.
    /// Its output is complete on return: the reader threads may lag behind the exit, so wait
    /// (briefly) for the pipes to close too.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_exit_status() {
                self.stderr.wait_closed(Duration::from_secs(2));
                self.stdout.wait_closed(Duration::from_secs(2));
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// Wait until the server process (daemon or foreground) is gone; false at the deadline.
    pub fn wait_gone(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// A new connection to the first listener.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr())
    }

    /// GET `path` with Host: localhost on a new connection.
    pub fn get(&self, path: &str) -> Response {
        self.request(&get(path))
    }

    /// Send raw request bytes on a new connection and read one response.
    pub fn request(&self, raw: &[u8]) -> Response {
        let mut c = self.connect();
        c.send(raw);
        c.read_response()
    }

    /// Wait until connecting to the first listener is refused (the listener was closed).
    pub fn wait_refused(&self, timeout: Duration) -> bool {
        wait_refused(self.addr(), timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid {
            if pid_alive(pid) {
                // SAFETY: FFI; the pid came from the pid file of a daemon this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Some(child) = &mut self.child {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- lightd stderr ({}) ---\n{}\n--- lightd stdout ---\n{}",
                self.dir.path().display(),
                self.stderr.text(),
                self.stdout.text()
            );
            if self.errorlog.is_some() {
                eprintln!("--- lightd error log ---\n{}", self.errorlog_text());
            }
        }
    }
}

/// Poll until a connect to `addr` is refused; false at the deadline.
pub fn wait_refused(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return true,
            _ => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

/// `GET path HTTP/1.1` with Host: localhost.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// A request with a method, a path and extra header lines (each without CRLF).
pub fn req(method: &str, path: &str, headers: &[&str]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status line and header lines as received, for messages.
    pub head: String,
    /// The body came chunked (backends' responses without a length); `body` is decoded.
    pub chunked: bool,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the Connection field carries the `close` option.
    pub fn has_close(&self) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    /// The head, and the body if it is short text, for assertion messages.
    pub fn describe(&self) -> String {
        if self.body.len() <= 2048 {
            format!("{}\n\n{}", self.head, self.text())
        } else {
            format!("{}\n\n<{} bytes of body>", self.head, self.body.len())
        }
    }
}

/// A client connection with a read buffer, so pipelined responses parse correctly.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Conn::from_stream(stream)
    }

    /// A connection whose receive buffer is kept small, so a large download stays in flight
    /// (blocked in the server) until the test reads it, instead of fitting in kernel buffers.
    pub fn connect_small_rcvbuf(addr: SocketAddr) -> Conn {
        Conn::from_stream(connect_small_rcvbuf(addr, 16 * 1024))
    }

    pub fn from_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Write all of `data`; panics on error.
    pub fn send(&mut self, data: &[u8]) {
        self.stream
            .write_all(data)
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Write all of `data`, returning the error (for servers that may close first).
    pub fn try_send(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)
    }

    /// Send a request and read its response.
    pub fn request(&mut self, raw: &[u8]) -> Response {
        self.send(raw);
        self.read_response()
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request(&get(path))
    }

    /// Read one response (a GET-like one: the body is framed by Content-Length or EOF).
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false)
            .unwrap_or_else(|e| panic!("reading response: {e}"))
    }

    /// Read one response to a HEAD request (never a body).
    pub fn read_head_response(&mut self) -> Response {
        self.try_read_response(true)
            .unwrap_or_else(|e| panic!("reading HEAD response: {e}"))
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Read into the connection's buffer until it holds at least `n` bytes (a slow start to
    /// a download); the bytes stay there for `read_response`. Fails on EOF or timeout.
    pub fn fill_to(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF after {} bytes", self.buf.len()),
                ));
            }
        }
        Ok(())
    }

    /// Bytes received but not yet consumed by `read_response`.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Read up to `n` more bytes into the buffer (at least one unless EOF).
    pub fn read_some(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut chunk = vec![0u8; n];
        let got = self.stream.read(&mut chunk)?;
        chunk.truncate(got);
        Ok(chunk)
    }

    /// Read one response; `head_request` says the request was HEAD, so no body follows.
    pub fn try_read_response(&mut self, head_request: bool) -> io::Result<Response> {
        // Bound the head: a server that never ends it must not grow the buffer forever.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 1 << 20 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response head over 1 MB",
                ));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "EOF before a complete response head; got {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end - 4]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
        if !version.starts_with("HTTP/1.") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            ));
        }
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line.split_once(':').ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad header line {line:?}"),
                )
            })?;
            headers.push((k.to_string(), v.trim().to_string()));
        }
        self.buf.drain(..head_end);
        let mut resp = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            head,
            chunked: false,
        };
        let bodiless =
            head_request || (100..200).contains(&status) || status == 204 || status == 304;
        if bodiless {
            return Ok(resp);
        }
        if resp
            .header("Transfer-Encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            if resp.header("Content-Length").is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "both Content-Length and chunked",
                ));
            }
            resp.chunked = true;
            resp.body = self.read_chunked()?;
            return Ok(resp);
        }
        match resp.header("Content-Length") {
            Some(v) => {
                let len: usize = v.parse().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad Content-Length {v:?}"),
                    )
                })?;
                while self.buf.len() < len {
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "EOF after {} of {len} body bytes (truncated response)",
                                self.buf.len()
                            ),
                        ));
                    }
                }
                resp.body = self.buf.drain(..len).collect();
            }
            None => {
                // Framed by EOF; bounded by the socket timeout per read.
                while self.fill()? != 0 {}
                resp.body = std::mem::take(&mut self.buf);
            }
        }
        Ok(resp)
    }

    /// A chunked body (RFC 9112 §7.1), decoded; the trailer section is read and dropped.
    /// Bounded: at most 1 GiB of body.
    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if self.fill()? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("EOF inside a chunked body after {} bytes", body.len()),
                    ));
                }
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailer fields, then the empty line.
                loop {
                    let end = loop {
                        if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                            break i;
                        }
                        if self.fill()? == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "EOF inside the chunked trailer",
                            ));
                        }
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        return Ok(body);
                    }
                }
            }
            if body.len() + size > 1 << 30 {
                return Err(bad("chunked body over 1 GiB".into()));
            }
            while self.buf.len() < size + 2 {
                if self.fill()? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("EOF inside a chunk after {} bytes", body.len()),
                    ));
                }
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(bad("chunk not followed by CRLF".into()));
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }

    /// Read until EOF and return the bytes that came before it. An error (reset, timeout)
    /// is returned as such so tests can tell a clean close from a reset.
    pub fn read_to_eof(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if self.fill()? == 0 {
                return Ok(std::mem::take(&mut self.buf));
            }
            if self.buf.len() > 64 << 20 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "over 64 MB before EOF",
                ));
            }
        }
    }

    /// Whether the server closed the connection within `timeout` (EOF or reset); any bytes
    /// that came first are returned too.
    pub fn wait_closed(&mut self, timeout: Duration) -> (bool, Vec<u8>) {
        let deadline = Instant::now() + timeout;
        self.set_read_timeout(Duration::from_millis(200));
        let closed = loop {
            match self.fill() {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut => {}
                Err(_) => break true,
            }
            if Instant::now() >= deadline {
                break false;
            }
        };
        self.set_read_timeout(IO_TIMEOUT);
        (closed, std::mem::take(&mut self.buf))
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// The first index of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Connect to an IPv4 address with SO_RCVBUF set before connecting: Linux fixes the window
/// scale at the handshake and otherwise auto-tunes the buffer to many megabytes.
pub fn connect_small_rcvbuf(addr: SocketAddr, rcvbuf: i32) -> TcpStream {
    use std::os::unix::io::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("connect_small_rcvbuf supports IPv4 only");
    };
    // SAFETY: plain socket FFI on a descriptor we own; it is handed to TcpStream only after a
    // successful connect and closed on every error path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        let size: libc::c_int = rcvbuf;
        let rc = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        if rc != 0 {
            let e = io::Error::last_os_error();
            libc::close(fd);
            panic!("setsockopt SO_RCVBUF: {e}");
        }
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            &sin as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if rc != 0 {
            let e = io::Error::last_os_error();
            libc::close(fd);
            panic!("connect {addr}: {e}");
        }
        TcpStream::from_raw_fd(fd)
    }
}

/// Resident memory of a process in kB, from /proc.
pub fn rss_kb(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How many descriptors a process has open, from /proc: how tests see connections (and the
/// files being sent on them) held or released inside the server.
pub fn open_fds(pid: i32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// CPU time a process has used so far (user plus system), from /proc/PID/stat.
pub fn cpu_time(pid: i32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // utime and stime are fields 14 and 15; counting starts after the parenthesised command
    // name (which may contain spaces), where field 3 (the state) begins.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(Duration::from_millis((utime + stime) * 1000 / hz))
}

/// Read `path` line by line until one satisfies `pred`; None at the deadline.
pub fn wait_file_line(
    path: &Path,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(f) = fs::File::open(path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if pred(&line) {
                    return Some(line);
                }
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Wait until `path` exists; false at the deadline.
pub fn wait_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if path.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// lighttpd's test responder `name` ("fcgi-responder" or "scgi-responder"), built with cc from
/// the suite's source (../shared/lighttpd-tests) into a temporary directory, or None (with a
/// note) where the source or a C compiler is missing. CI has both.
#[allow(dead_code)]
pub fn suite_responder(name: &str) -> Option<(TempDir, PathBuf)> {
    let dir = TempDir::new(name);
    let bin = dir.path().join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/lighttpd-tests/tests")
        .join(format!("{name}.c"));
    let built = src.exists()
        && Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success());
    if !built {
        eprintln!(
            "skipped: lighttpd's {name} could not be built from {}",
            src.display()
        );
        return None;
    }
    Some((dir, bin))
}
