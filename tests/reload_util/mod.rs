//! Machinery for the reload tests: a site whose `lightd` generations are tracked by pid (and
//! killed on drop), a load generator that checks every byte it is served while reloads happen,
//! and a receiver for sd_notify datagrams that records who sent each one.
//!
//! Everything waits on a condition with a deadline (a pid file changed, a pid disappeared, a log
//! line or a datagram arrived); the only sleeps are poll intervals and the download's pacing.

// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::{lightd_exec_at, pattern, pid_alive, TempDir, BIN};

/// Poll interval for conditions that have no event to wait on (files, /proc).
pub const POLL: Duration = Duration::from_millis(20);
/// server.graceful-shutdown-timeout for sites under load: far longer than a paced download of
/// the big file takes, so a generation that drains honestly never cuts one short.
pub const GRACE: u64 = 15;
/// Slack on top of a deadline the server enforces, for a loaded 2-core machine.
pub const MARGIN: Duration = Duration::from_secs(10);
/// How long a new generation may take to become ready (the server gives up after 30 s).
pub const READY_TIMEOUT: Duration = Duration::from_secs(40);
/// How long an rc script or a launcher may run before the test calls it hung.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Socket timeout for the load: a response slower than this counts as an error.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// The init script under test.
pub const RC_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rc/lightd");

// ---------------------------------------------------------------------------------------------
// The files served
// ---------------------------------------------------------------------------------------------

pub const SMALL: &str = "/small.txt";
/// Fits the server's in-buffer path (bodies up to 16 KB).
pub const MID: &str = "/mid.bin";
/// Goes out with sendfile.
pub const LARGE: &str = "/large.bin";
/// The slow download: long enough to span a reload.
pub const BIG: &str = "/big.bin";
pub const BIG_LEN: usize = 20 << 20;

pub struct Content {
    small: Vec<u8>,
    big: Vec<u8>,
}

/// The docroot's files, generated once per test binary (20 MB of pattern is not free in a
/// debug build).
pub fn content() -> &'static Content {
    static C: OnceLock<Content> = OnceLock::new();
    C.get_or_init(|| Content {
        small: b"lightd reload test: a small text file, sent in the same write as its head.\n"
            .repeat(2),
        big: pattern(BIG_LEN),
    })
}

impl Content {
    /// The exact bytes the server must send for `path`. The medium and large files are
    /// distinct slices of the big one, so a mix-up between files shows as wrong bytes.
    pub fn body(&self, path: &str) -> &[u8] {
        match path {
            SMALL => &self.small,
            MID => &self.big[1_000..11_000],
            LARGE => &self.big[5_000_000..5_300_000],
            BIG => &self.big,
            other => panic!("no such test file {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes and /proc
// ---------------------------------------------------------------------------------------------

/// Live processes (not zombies) whose command line has `arg` as one argument. Each site's
/// config path is unique, so this finds every generation a site started, whoever forked it.
pub fn procs_with_arg(arg: &Path) -> Vec<i32> {
    let want = arg.as_os_str().as_bytes();
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !cmdline_has(pid, want) || !pid_alive(pid) {
            continue;
        }
        out.push(pid);
    }
    out.sort_unstable();
    out
}

/// Live `lightd` processes (not zombies) whose parent is `parent`: the generation a SIGUSR1
/// started, found before it has loaded its config (so before it could be in a pid file or a
/// log). A shell it runs for include_shell is its child, not `parent`'s, and is not lightd.
pub fn lightd_children(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if parent_pid(pid) == Some(parent) && is_lightd(pid) && pid_alive(pid) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// The parent pid, from /proc/PID/stat.
pub fn parent_pid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID ...": the command name may hold spaces and parentheses, so count
    // from the last ')'.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether `pid` runs the lightd under test: its executable, or failing that (the binary was
/// rebuilt meanwhile, or is a copy) its program's name. Under qemu-user, started by
/// binfmt_misc or as the tests' wrapper, the executable and argv[0] are the emulator's and the
/// program is argv[1], the path that was exec'd (for a generation lightd started, the absolute
/// path it found for itself).
fn is_lightd(pid: i32) -> bool {
    use std::ffi::OsStr;
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
    let bin = fs::canonicalize(BIN).ok();
    if exe.is_some() && exe == bin {
        return true;
    }
    let emulated = exe
        .as_deref()
        .and_then(Path::file_name)
        .and_then(OsStr::to_str)
        .is_some_and(|n| n.starts_with("qemu-"));
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let Some(prog) = argv.get(usize::from(emulated)) else {
        return false;
    };
    let prog = Path::new(OsStr::from_bytes(prog));
    (emulated && prog.is_absolute() && fs::canonicalize(prog).ok() == bin)
        || prog.file_name() == Some(OsStr::new("lightd"))
}

fn cmdline_has(pid: i32, arg: &[u8]) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|a| a == arg))
        .unwrap_or(false)
}

/// Inodes of the sockets a process holds open.
pub fn socket_inodes(pid: i32) -> Vec<u64> {
    let mut out = Vec::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Some(ino) = fs::read_link(e.path())
                .ok()
                .and_then(|l| socket_inode(&l.to_string_lossy()))
            {
                out.push(ino);
            }
        }
    }
    out
}

/// The inode of one of this process's own descriptors, if it is a socket.
pub fn own_fd_inode(fd: RawFd) -> Option<u64> {
    let l = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    socket_inode(&l.to_string_lossy())
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Inodes of the TCP sockets listening on 127.0.0.1:`port`, from /proc/net/tcp. More than one
/// means someone bound a second, overlapping socket instead of passing the first one on.
pub fn listen_inodes(port: u16) -> Vec<u64> {
    let want_local = format!("0100007F:{port:04X}");
    let text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() > 9 && f[1] == want_local && f[3] == "0A" {
                f[9].parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// CLOCK_MONOTONIC in microseconds: what sd_notify's MONOTONIC_USEC is measured on.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// `(pid, address)` for every `lightd[PID] ...: listening on ADDR` line.
pub fn listening_lines(text: &str) -> Vec<(i32, SocketAddr)> {
    const NEEDLE: &str = "listening on ";
    text.lines()
        .filter_map(|l| {
            let pid = line_pid(l)?;
            let rest = &l[l.find(NEEDLE)? + NEEDLE.len()..];
            let tok = rest.split_whitespace().next()?;
            let tok = tok.trim_end_matches(|c: char| !c.is_ascii_digit());
            Some((pid, tok.parse().ok()?))
        })
        .collect()
}

/// The pid in a log line's `lightd[PID]` tag.
pub fn line_pid(line: &str) -> Option<i32> {
    let i = line.find("lightd[")? + "lightd[".len();
    let j = i + line[i..].find(']')?;
    line[i..j].parse().ok()
}

/// The shells to run the rc script with: dash and busybox sh, those that are installed.
pub fn shells() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Some(dash) = in_path("dash") {
        out.push(vec![dash]);
    }
    if let Some(bb) = in_path("busybox") {
        let works = Command::new(&bb)
            .args(["sh", "-c", "exit 0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            out.push(vec![bb, "sh".to_string()]);
        }
    }
    out
}

fn in_path(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

pub fn send_signal(pid: i32, sig: libc::c_int) {
    assert!(pid > 1, "refusing to signal pid {pid}");
    // SAFETY: plain FFI; the pid is a generation this test started (read from its pid file).
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

/// Wait until `pred` holds; false at the deadline.
pub fn wait_until(timeout: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// A site and its generations
// ---------------------------------------------------------------------------------------------

/// A command that ran to completion; stdout and stderr together, in order.
pub struct Outcome {
    pub status: ExitStatus,
    pub text: String,
}

impl Outcome {
    /// The command succeeded; otherwise fail, naming it `what`, with its status and output.
    pub fn assert_ok(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what}: {:?}\n{}",
            self.status,
            self.text
        );
    }
}

/// A temporary directory with a config, a docroot, a pid file and an error log, and every
/// `lightd` process started for it. Dropping it kills those that are left, by pid, after
/// checking that each pid still runs with this site's config; if the test is failing, the logs
/// are printed first.
pub struct Site {
    port: u16,
    grace: u64,
    extra: String,
    children: Vec<Child>,
    /// Every generation seen, in order.
    gens: Vec<i32>,
    /// The listening socket every generation must share (from /proc/net/tcp).
    listener: Option<u64>,
    ncmd: usize,
    /// Set by `under_systemd`: every lightd started gets NOTIFY_SOCKET, as systemd gives it.
    notify: Option<Notify>,
    // Last, so the directory outlives the processes (fields drop after Drop::drop).
    dir: TempDir,
}

impl Site {
    /// A site on port 0 (the real port is learnt from the first generation's log) with
    /// server.graceful-shutdown-timeout = `grace` and `extra` config lines.
    pub fn new(tag: &str, grace: u64, extra: &str) -> Site {
        let dir = TempDir::new(tag);
        let c = content();
        let docroot = dir.path().join("docroot");
        fs::create_dir_all(&docroot).unwrap();
        for f in [SMALL, MID, LARGE, BIG] {
            fs::write(docroot.join(&f[1..]), c.body(f)).unwrap();
        }
        let site = Site {
            port: 0,
            grace,
            extra: extra.to_string(),
            children: Vec::new(),
            gens: Vec::new(),
            listener: None,
            ncmd: 0,
            notify: None,
            dir,
        };
        site.write_config();
        site
    }

    /// Run every lightd of this site as systemd would (Type=notify): with NOTIFY_SOCKET set,
    /// SIGUSR1 starts a new generation as a child that becomes the main pid, instead of
    /// reloading in place.
    pub fn under_systemd(&mut self) {
        self.notify = Some(Notify::bind(&self.dir().join("notify.sock")));
    }

    /// The NOTIFY_SOCKET of a site `under_systemd`.
    pub fn notify_socket(&self) -> Option<PathBuf> {
        self.notify.as_ref().map(|n| n.path.clone())
    }

    /// Replace the extra config lines (written at once).
    pub fn set_extra(&mut self, extra: &str) {
        self.extra = extra.to_string();
        self.write_config();
    }

    /// Configure a known port before the first start (the socket-activation test).
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
        self.write_config();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn conf(&self) -> PathBuf {
        self.dir().join("lightd.conf")
    }
    pub fn conf_str(&self) -> String {
        self.conf().display().to_string()
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir().join("lightd.pid")
    }
    pub fn errorlog(&self) -> PathBuf {
        self.dir().join("error.log")
    }
    /// Where a generation listens for a takeover: beside the pid file.
    pub fn control_socket(&self) -> PathBuf {
        self.dir().join("lightd.pid.sock")
    }
    /// Where foreground generations (and their re-executed children) write stdout and stderr.
    pub fn stderr_file(&self) -> PathBuf {
        self.dir().join("stderr.log")
    }
    pub fn addr(&self) -> SocketAddr {
        assert!(self.port != 0, "the port is not known yet");
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn config_text(&self) -> String {
        let d = self.dir().display();
        format!(
            "server.document-root = \"{d}/docroot\"\n\
             server.bind = \"127.0.0.1\"\n\
             server.port = {}\n\
             server.pid-file = \"{d}/lightd.pid\"\n\
             server.errorlog = \"{d}/error.log\"\n\
             server.graceful-shutdown-timeout = {}\n\
             # Often enough that the load's keep-alive clients see `Connection: close` and \n\
             # reconnect between reloads as well as during them.\n\
             server.max-keep-alive-requests = 50\n\
             {}\n",
            self.port, self.grace, self.extra
        )
    }

    /// (Re)write the config with the current port.
    pub fn write_config(&self) {
        fs::write(self.conf(), self.config_text()).unwrap();
    }

    /// Write a config with a syntax error; returns the `lightd.conf:LINE` the error names.
    pub fn write_broken_config(&self) -> String {
        let mut text = self.config_text();
        let line = text.lines().count() + 1;
        text.push_str("server.max-connections = = 16\n");
        fs::write(self.conf(), text).unwrap();
        format!("lightd.conf:{line}")
    }

    pub fn errorlog_text(&self) -> String {
        fs::read_to_string(self.errorlog()).unwrap_or_default()
    }

    /// The error log and the foreground generations' stderr.
    pub fn log(&self) -> String {
        format!(
            "{}{}",
            self.errorlog_text(),
            fs::read_to_string(self.stderr_file()).unwrap_or_default()
        )
    }

    pub fn read_pid(&self) -> Option<i32> {
        fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The generation in charge, as its pid file says.
    pub fn current_pid(&self) -> i32 {
        self.read_pid()
            .unwrap_or_else(|| panic!("no pid in {}", self.pid_file().display()))
    }

    pub fn generations(&self) -> &[i32] {
        &self.gens
    }

    /// Remember a generation, so it is checked and cleaned up.
    pub fn track(&mut self, pid: i32) {
        if !self.gens.contains(&pid) {
            self.gens.push(pid);
        }
    }

    /// `lightd ARGS` with a clean environment, stdin closed and output appended to
    /// stderr.log. The generations SIGUSR1 starts inherit that file.
    pub fn lightd(&self, args: &[&str]) -> Command {
        let mut cmd = self.lightd_same_env(args);
        clean_env(&mut cmd);
        if let Some(p) = self.notify_socket() {
            cmd.env("NOTIFY_SOCKET", p);
        }
        cmd
    }

    /// As `lightd`, but leaving the environment alone: std applies environment changes made
    /// with Command after pre_exec hooks run, which would undo the hook's setenv. The hook
    /// then removes `SCRUBBED_ENV` itself.
    pub fn lightd_same_env(&self, args: &[&str]) -> Command {
        self.lightd_bin(Path::new(BIN), args)
    }

    /// As `lightd_same_env`, running the binary at `bin` (a copy the test may replace).
    pub fn lightd_bin(&self, bin: &Path, args: &[&str]) -> Command {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_file())
            .unwrap();
        let mut cmd = lightd_exec_at(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        cmd
    }

    /// `SHELL rc/lightd ACTION`, pointed at this site through the environment.
    pub fn rc(&self, shell: &[String], action: &str) -> Command {
        let mut cmd = Command::new(&shell[0]);
        cmd.args(&shell[1..])
            .arg(RC_SCRIPT)
            .arg(action)
            .env("DAEMON", BIN)
            .env("CONF", self.conf())
            .env("PIDFILE", self.pid_file())
            .env("LIGHTD_DEFAULTS", "/nonexistent")
            .env_remove("OPTS")
            .stdin(Stdio::null());
        clean_env(&mut cmd);
        cmd
    }

    /// Spawn a long-running command (a foreground generation); returns its pid.
    pub fn spawn(&mut self, mut cmd: Command) -> i32 {
        let child = cmd.spawn().expect("spawn lightd");
        let pid = child.id() as i32;
        self.children.push(child);
        self.track(pid);
        pid
    }

    /// Start the first generation in the foreground (`-D`) on port 0, learn its port and
    /// write it into the config. Returns its pid.
    pub fn start_first(&mut self) -> i32 {
        let cmd = self.lightd(&["-D", "-f", &self.conf_str()]);
        let pid = self.spawn(cmd);
        self.learn_port(pid);
        pid
    }

    /// Start the first generation as a daemon (`lightd -f`, no -D), which returns once it
    /// serves; learn its pid from the pid file and its port from its log. Returns its pid.
    pub fn start_daemon(&mut self) -> i32 {
        self.run(self.lightd(&["-f", &self.conf_str()]))
            .assert_ok("lightd -f");
        let pid = self.current_pid();
        self.track(pid);
        self.learn_port(pid);
        pid
    }

    /// Run a command to completion (killed and reported at the deadline).
    pub fn run(&mut self, cmd: Command) -> Outcome {
        let what = format!("{cmd:?}");
        self.run_within(cmd, CMD_TIMEOUT).unwrap_or_else(|out| {
            panic!(
                "{what} did not finish within {CMD_TIMEOUT:?}; output:\n{}",
                out.text
            )
        })
    }

    /// `run` with a deadline of its own, for a command that must give up quickly: Err with
    /// its output so far if it still ran at the deadline (it is killed then).
    pub fn run_within(&mut self, mut cmd: Command, timeout: Duration) -> Result<Outcome, Outcome> {
        self.ncmd += 1;
        let path = self.dir().join(format!("cmd{}.out", self.ncmd));
        let f = File::create(&path).unwrap();
        cmd.stdout(f.try_clone().unwrap()).stderr(f);
        let mut child = cmd.spawn().expect("spawn command");
        let deadline = Instant::now() + timeout;
        let (status, finished) = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break (st, true);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                break (child.wait().expect("wait for a killed command"), false);
            }
            thread::sleep(POLL);
        };
        let out = Outcome {
            status,
            text: fs::read_to_string(&path).unwrap_or_default(),
        };
        if finished {
            Ok(out)
        } else {
            Err(out)
        }
    }

    /// Wait for `pid` to log `listening on`; its address. Panics if `pid` dies first.
    pub fn wait_listening(&self, pid: i32, timeout: Duration) -> SocketAddr {
        let mut found = None;
        let ok = wait_until(timeout, || {
            found = listening_lines(&self.log())
                .into_iter()
                .find(|(p, _)| *p == pid)
                .map(|(_, a)| a);
            found.is_some() || !pid_alive(pid)
        });
        match found {
            Some(a) => a,
            None => panic!(
                "pid {pid} {} without logging `listening on`\n{}",
                if ok { "exited" } else { "ran too long" },
                self.dump()
            ),
        }
    }

    /// Learn the port from generation `pid`'s log, write it into the config (a reload with
    /// port 0 could not match the running socket) and note the listening socket.
    pub fn learn_port(&mut self, pid: i32) {
        let addr = self.wait_listening(pid, READY_TIMEOUT);
        assert_eq!(
            addr.ip(),
            Ipv4Addr::LOCALHOST,
            "listening on {addr}, not loopback"
        );
        if self.port != 0 {
            assert_eq!(addr.port(), self.port, "listening on the wrong port");
        }
        self.port = addr.port();
        self.write_config();
        let socks = listen_inodes(self.port);
        assert_eq!(
            socks.len(),
            1,
            "listening sockets on port {}: {socks:?}",
            self.port
        );
        self.listener = Some(socks[0]);
        self.check_listener(pid);
    }

    /// Exactly one socket listens on the port, the one the first generation had, and `pid`
    /// holds it: it was passed on, not bound again beside the old one.
    pub fn check_listener(&self, pid: i32) {
        let want = self.listener.expect("listener not learnt yet");
        let socks = listen_inodes(self.port);
        assert_eq!(
            socks,
            vec![want],
            "sockets listening on port {} (inodes) should be only the original one",
            self.port
        );
        assert!(
            socket_inodes(pid).contains(&want),
            "pid {pid} does not hold the listening socket (inode {want})\n{}",
            self.dump()
        );
    }

    /// Wait until the pid file names a live process other than `old`; track and return it.
    pub fn wait_new_generation(&mut self, old: i32, timeout: Duration) -> i32 {
        let mut new = None;
        let ok = wait_until(timeout, || {
            new = self.read_pid().filter(|p| *p != old && pid_alive(*p));
            new.is_some()
        });
        assert!(
            ok,
            "no new generation within {timeout:?}: pid file says {:?}, old pid {old} {}\n{}",
            self.read_pid(),
            if pid_alive(old) { "running" } else { "gone" },
            self.dump()
        );
        let new = new.unwrap();
        self.track(new);
        new
    }

    /// Wait until `pid` is gone; how long that took, or None at the deadline.
    pub fn wait_gone(&mut self, pid: i32, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        wait_until(timeout, || {
            self.reap();
            !pid_alive(pid)
        })
        .then(|| start.elapsed())
    }

    /// Reap our own children that exited, so they do not linger as zombies.
    fn reap(&mut self) {
        for c in &mut self.children {
            let _ = c.try_wait();
        }
    }

    /// After a reload was triggered on `old`: the new generation is in the pid file and logs
    /// that it listens on the same address, the old one exits within the drain deadline, the
    /// pid file still names the new one afterwards, and the listening socket is the same one.
    pub fn finish_reload(&mut self, old: i32) -> i32 {
        let new = self.wait_new_generation(old, READY_TIMEOUT);
        let addr = self.wait_listening(new, READY_TIMEOUT);
        assert_eq!(addr, self.addr(), "generation {new} listens elsewhere");
        let limit = Duration::from_secs(self.grace) + MARGIN;
        assert!(
            self.wait_gone(old, limit).is_some(),
            "old generation {old} still running {limit:?} after generation {new} took over\n{}",
            self.dump()
        );
        assert_eq!(
            self.read_pid(),
            Some(new),
            "pid file after generation {old} exited"
        );
        self.check_listener(new);
        new
    }

    /// Right after a command that promises to return only once the new generation serves:
    /// without waiting, some generation other than those known before (and other than `old`)
    /// has logged `listening on` or is in the pid file holding the listening socket.
    pub fn assert_new_generation_serving(&mut self, old: i32) {
        let known = self.gens.clone();
        let logged = listening_lines(&self.log())
            .into_iter()
            .map(|(p, _)| p)
            .find(|p| *p != old && !known.contains(p));
        let in_pid_file = self.read_pid().filter(|p| {
            *p != old
                && pid_alive(*p)
                && self
                    .listener
                    .is_some_and(|l| socket_inodes(*p).contains(&l))
        });
        let new = logged.or(in_pid_file);
        assert!(
            new.is_some(),
            "the command returned, but no new generation serves yet (pid file: {:?})\n{}",
            self.read_pid(),
            self.dump()
        );
        self.track(new.unwrap());
    }

    /// Fetch every small file from the current server on fresh connections, byte-exact.
    pub fn check_serves(&self) {
        for path in [SMALL, MID, LARGE] {
            let mut c = Client::connect(self.addr())
                .unwrap_or_else(|f| panic!("final check, connect: {}", f.msg));
            if let Err(f) = c.exchange(&get_request(path, false), content().body(path)) {
                panic!("final check, GET {path}: {:?}: {}", f.fault, f.msg);
            }
        }
    }

    /// Graceful stop of the last generation: SIGINT, gone within the drain deadline, pid file
    /// removed, and (`refused`) the port closed.
    pub fn stop(&mut self, pid: i32, refused: bool) {
        send_signal(pid, libc::SIGINT);
        let limit = Duration::from_secs(self.grace) + MARGIN;
        assert!(
            self.wait_gone(pid, limit).is_some(),
            "generation {pid} still running {limit:?} after SIGINT\n{}",
            self.dump()
        );
        assert!(
            !self.pid_file().exists(),
            "pid file left behind by the last generation"
        );
        if refused {
            let r = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(5));
            assert!(
                r.as_ref()
                    .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused),
                "port still open after the last generation stopped: {r:?}"
            );
        }
    }

    /// The logs, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- error log and stderr ({}) ---\n{}",
            self.dir().display(),
            self.log()
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let conf = self.conf();
        let conf_bytes = conf.as_os_str().as_bytes().to_vec();
        let mut pids: BTreeSet<i32> = self.gens.iter().copied().collect();
        pids.extend(self.read_pid());
        // A generation that never reached the pid file (a hung or failed child).
        pids.extend(procs_with_arg(&conf));
        for pid in pids {
            // Only a pid that still runs with this site's config is one of ours.
            if pid > 1 && pid_alive(pid) && cmdline_has(pid, &conf_bytes) {
                // SAFETY: plain FFI on a pid this test started, checked just above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("{}\ngenerations: {:?}", self.dump(), self.gens);
        }
    }
}

/// What would make lightd behave unlike a test intends: a logging override, and systemd
/// variables from whatever runs the tests.
pub const SCRUBBED_ENV: [&str; 5] = [
    "RUST_LOG",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

fn clean_env(cmd: &mut Command) {
    for k in SCRUBBED_ENV {
        cmd.env_remove(k);
    }
}

// ---------------------------------------------------------------------------------------------
// An HTTP client that classifies what went wrong
// ---------------------------------------------------------------------------------------------

/// What can go wrong with one request. Any of these fails a reload test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connect was refused: no socket was listening.
    Refused,
    Connect,
    /// A reset (or broken pipe) on a connection with a request outstanding.
    Reset,
    /// EOF after a request was sent, before any byte of the response.
    NoResponse,
    /// EOF in the middle of a response.
    Truncated,
    WrongBytes,
    BadStatus,
    Timeout,
    /// Anything else that is not HTTP as it should be.
    Protocol,
}

const FAULTS: usize = 9;

#[derive(Debug)]
pub struct Failure {
    pub fault: Fault,
    pub msg: String,
}

fn fail(fault: Fault, msg: impl Into<String>) -> Failure {
    Failure {
        fault,
        msg: msg.into(),
    }
}

fn io_fault(e: &io::Error, got: usize) -> Fault {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Fault::Reset,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Fault::Timeout,
        _ if got == 0 => Fault::NoResponse,
        _ => Fault::Truncated,
    }
}

pub fn get_request(path: &str, close: bool) -> Vec<u8> {
    let conn = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: reload-test\r\n{conn}\r\n")
        .into_bytes()
}

/// A POST to a static file: request `i` picks a body size and Content-Length or chunked
/// framing (with a trailer now and then). The server discards the body and sends the file.
pub fn post_request(path: &str, i: usize) -> Vec<u8> {
    let size = [1, 100, 4096, 65_543][(i / 2) % 4];
    let start = (i * 7) % 1000;
    let body = &content().big[start..start + size];
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n").into_bytes();
    if i % 2 == 0 {
        r.extend_from_slice(format!("Content-Length: {size}\r\n\r\n").as_bytes());
        r.extend_from_slice(body);
    } else {
        r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for chunk in body.chunks(1000) {
            r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            r.extend_from_slice(chunk);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n");
        if i % 4 == 3 {
            r.extend_from_slice(b"X-Reload-Test: trailer\r\n");
        }
        r.extend_from_slice(b"\r\n");
    }
    r
}

struct Head {
    status: u16,
    len: Option<usize>,
    close: bool,
    text: String,
}

pub struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    /// When the connection was made or last finished a response: how long it sat idle.
    last: Instant,
    /// Response bytes received for the request in progress.
    got: usize,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Result<Client, Failure> {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| {
            let f = if e.kind() == io::ErrorKind::ConnectionRefused {
                Fault::Refused
            } else {
                Fault::Connect
            };
            fail(f, format!("connect {addr}: {e}"))
        })?;
        Ok(Client::from_stream(s))
    }

    pub fn from_stream(s: TcpStream) -> Client {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = s.set_nodelay(true);
        Client {
            s,
            buf: Vec::new(),
            last: Instant::now(),
            got: 0,
        }
    }

    /// Whether the server has closed this connection while it was idle (nothing sent on it
    /// since the last response): a non-blocking peek sees EOF or a reset.
    fn closed_while_idle(&self) -> Result<bool, Failure> {
        let mut b = [0u8; 1];
        // SAFETY: recv into a valid one-byte buffer on a socket we own.
        let n = unsafe {
            libc::recv(
                self.s.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => Ok(true),
            n if n > 0 => Err(fail(
                Fault::Protocol,
                "bytes arrived on an idle keep-alive connection",
            )),
            _ => {
                let e = io::Error::last_os_error();
                Ok(e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted)
            }
        }
    }

    /// Read more response bytes; EOF is a failure here.
    fn fill(&mut self) -> Result<(), Failure> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) if self.got == 0 => {
                    return Err(fail(Fault::NoResponse, "EOF before any byte of a response"))
                }
                Ok(0) => {
                    return Err(fail(
                        Fault::Truncated,
                        format!("EOF after {} response bytes", self.got),
                    ))
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.got += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(fail(
                        io_fault(&e, self.got),
                        format!("reading after {} response bytes: {e}", self.got),
                    ))
                }
            }
        }
    }

    fn send(&mut self, req: &[u8]) -> Result<(), Failure> {
        self.got = 0;
        self.s
            .write_all(req)
            .map_err(|e| fail(io_fault(&e, 0), format!("sending a request: {e}")))
    }

    fn read_head(&mut self) -> Result<Head, Failure> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 << 10 {
                return Err(fail(Fault::Protocol, "response head over 64 KB"));
            }
            self.fill()?;
        };
        let text = String::from_utf8_lossy(&self.buf[..end - 4]).into_owned();
        self.buf.drain(..end);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .filter(|l| l.starts_with("HTTP/1."))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail(Fault::Protocol, format!("bad status line in {text:?}")))?;
        let mut len = None;
        let mut close = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                return Err(fail(Fault::Protocol, format!("bad header line {l:?}")));
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = Some(
                    v.parse()
                        .map_err(|_| fail(Fault::Protocol, format!("bad Content-Length {v:?}")))?,
                );
            } else if k.eq_ignore_ascii_case("connection") {
                close |= v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
            }
        }
        Ok(Head {
            status,
            len,
            close,
            text,
        })
    }

    fn check_head(head: &Head, want_len: usize) -> Result<(), Failure> {
        if head.status != 200 {
            return Err(fail(
                Fault::BadStatus,
                format!("status {}: {:?}", head.status, head.text),
            ));
        }
        match head.len {
            Some(n) if n == want_len => Ok(()),
            Some(n) => Err(fail(
                Fault::WrongBytes,
                format!("Content-Length {n}, the file has {want_len}"),
            )),
            None => Err(fail(
                Fault::Protocol,
                format!("no Content-Length: {:?}", head.text),
            )),
        }
    }

    /// Send one request and check its response against `expect`, byte for byte. Ok(true) when
    /// the server said it will close the connection.
    pub fn exchange(&mut self, req: &[u8], expect: &[u8]) -> Result<bool, Failure> {
        self.send(req)?;
        let head = self.read_head()?;
        Self::check_head(&head, expect.len())?;
        while self.buf.len() < expect.len() {
            self.fill()?;
        }
        if self.buf[..expect.len()] != *expect {
            let at = self
                .buf
                .iter()
                .zip(expect)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(fail(
                Fault::WrongBytes,
                format!("body differs from the file at byte {at}"),
            ));
        }
        self.buf.drain(..expect.len());
        if !self.buf.is_empty() {
            return Err(fail(
                Fault::Protocol,
                format!("{} unexpected bytes after a response", self.buf.len()),
            ));
        }
        self.last = Instant::now();
        Ok(head.close)
    }

    /// After a `Connection: close` exchange: the server must close cleanly (FIN, no reset,
    /// nothing more).
    pub fn expect_clean_close(&mut self) -> Result<(), Failure> {
        let mut b = [0u8; 512];
        match self.s.read(&mut b) {
            Ok(0) => Ok(()),
            Ok(n) => Err(fail(
                Fault::Protocol,
                format!("{n} bytes after a Connection: close response"),
            )),
            Err(e) => Err(fail(
                io_fault(&e, 1),
                format!("after a complete Connection: close response: {e}"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    KeepAlive = 0,
    Close = 1,
    Post = 2,
    Download = 3,
}

const KIND_NAMES: [&str; 4] = [
    "keep-alive GET",
    "Connection: close GET",
    "POST",
    "download",
];

/// How many clients of each kind.
#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    pub keep_alive: usize,
    pub close: usize,
    pub post: usize,
    pub download: bool,
}

impl LoadSpec {
    pub fn full() -> LoadSpec {
        LoadSpec {
            keep_alive: 3,
            close: 2,
            post: 2,
            download: true,
        }
    }

    /// For a site whose drain deadline is too short for the slow download.
    pub fn no_download() -> LoadSpec {
        LoadSpec {
            download: false,
            ..LoadSpec::full()
        }
    }
}

/// A request on a connection idle this long may race the server's idle close (a draining
/// server gives idle keep-alive connections 1 s): then EOF without a response is the HTTP
/// race every client must retry, not a lost request. Back-to-back clients only get here when
/// the machine starves them.
const STALE: Duration = Duration::from_millis(500);

/// Download pace: about a second per big file, so one is in flight across most reloads.
const DOWNLOAD_BYTES_PER_SEC: f64 = 20e6;

#[derive(Default)]
struct Stats {
    done: [AtomicU64; 4],
    /// Connections the server closed while idle, before the client sent on them.
    idle_closed: AtomicU64,
    /// `Connection: close` responses, after which the client reconnected.
    close_honoured: AtomicU64,
    /// Requests that raced an idle close after the client itself had stalled.
    stale: AtomicU64,
    /// Downloads are numbered from 1; the one whose head has arrived and whose body has not
    /// finished (0: none), and the last one that completed byte-exact.
    download_in_flight: AtomicU64,
    download_last_ok: AtomicU64,
    faults: Mutex<([u64; FAULTS], Vec<String>)>,
}

impl Stats {
    fn fault(&self, who: &str, f: Failure) {
        let mut g = self.faults.lock().unwrap();
        g.0[f.fault as usize] += 1;
        if g.1.len() < 12 {
            g.1.push(format!("{who}: {:?}: {}", f.fault, f.msg));
        }
    }
}

/// Tells the client threads when to stop: when asked, or at a hard cap should a test never
/// ask (every loop in here is bounded in time).
struct Ctl {
    stop: AtomicBool,
    until: Instant,
}

/// Far beyond any test's length.
const LOAD_CAP: Duration = Duration::from_secs(300);

impl Ctl {
    fn going(&self) -> bool {
        !self.stop.load(Ordering::SeqCst) && Instant::now() < self.until
    }
}

/// Clients on threads, running until `stop`; every response is checked byte for byte.
pub struct Load {
    spec: LoadSpec,
    stop: Arc<Ctl>,
    stats: Arc<Stats>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

/// What the load saw, for assertions and failure messages.
#[derive(Debug)]
pub struct Report {
    pub done: [u64; 4],
    pub faults: [u64; FAULTS],
    pub first_faults: Vec<String>,
    pub idle_closed: u64,
    pub close_honoured: u64,
    pub stale: u64,
    pub secs: f64,
}

impl Load {
    pub fn start(addr: SocketAddr, spec: LoadSpec) -> Load {
        let stop = Arc::new(Ctl {
            stop: AtomicBool::new(false),
            until: Instant::now() + LOAD_CAP,
        });
        let stats = Arc::new(Stats::default());
        let mut threads = Vec::new();
        let mut add = |name: String, f: Box<dyn FnOnce() + Send>| {
            threads.push(thread::Builder::new().name(name).spawn(f).unwrap());
        };
        for i in 0..spec.keep_alive {
            let (st, s) = (stop.clone(), stats.clone());
            add(
                format!("keep-alive #{i}"),
                Box::new(move || keep_alive_client(addr, &st, &s, i, Kind::KeepAlive)),
            );
        }
        for i in 0..spec.post {
            let (st, s) = (stop.clone(), stats.clone());
            add(
                format!("post #{i}"),
                Box::new(move || keep_alive_client(addr, &st, &s, i, Kind::Post)),
            );
        }
        for i in 0..spec.close {
            let (st, s) = (stop.clone(), stats.clone());
            add(
                format!("close #{i}"),
                Box::new(move || close_client(addr, &st, &s, i)),
            );
        }
        if spec.download {
            let (st, s) = (stop.clone(), stats.clone());
            add(
                "download".into(),
                Box::new(move || download_client(addr, &st, &s)),
            );
        }
        Load {
            spec,
            stop,
            stats,
            threads,
            started: Instant::now(),
        }
    }

    pub fn count(&self, k: Kind) -> u64 {
        self.stats.done[k as usize].load(Ordering::SeqCst)
    }

    /// Requests completed so far, all kinds.
    pub fn completed(&self) -> u64 {
        self.stats
            .done
            .iter()
            .map(|d| d.load(Ordering::SeqCst))
            .sum()
    }

    /// Wait until `n` more requests complete; panics with the report at the deadline.
    pub fn wait_progress(&self, n: u64, what: &str) {
        let from = self.completed();
        assert!(
            wait_until(Duration::from_secs(30), || self.completed() >= from + n),
            "{what}: fewer than {n} requests completed in 30 s\n{}",
            self.summary()
        );
    }

    /// Wait until a download of the big file is under way (its head has arrived); its number.
    /// None without a download client.
    pub fn download_in_flight(&self) -> Option<u64> {
        if !self.spec.download {
            return None;
        }
        let mut seq = 0;
        let ok = wait_until(Duration::from_secs(30), || {
            seq = self.stats.download_in_flight.load(Ordering::SeqCst);
            seq != 0
        });
        assert!(ok, "no download got under way\n{}", self.summary());
        Some(seq)
    }

    /// Wait until download `seq` has completed byte-exact; panics if it failed or took too
    /// long.
    pub fn wait_download_ok(&self, seq: u64, what: &str) {
        let failed = || self.stats.faults.lock().unwrap().0.iter().sum::<u64>() > 0;
        let ok = wait_until(Duration::from_secs(60), || {
            self.stats.download_last_ok.load(Ordering::SeqCst) >= seq || failed()
        });
        assert!(
            ok && !failed(),
            "{what}: download #{seq} did not complete byte-exact\n{}",
            self.summary()
        );
    }

    /// Wait until every kind of client has completed a request (the download too, when
    /// `download`): the load is really running.
    pub fn warm_up(&self, download: bool) {
        let spec = self.spec;
        let wanted = [
            spec.keep_alive > 0,
            spec.close > 0,
            spec.post > 0,
            download && spec.download,
        ];
        let ok = wait_until(Duration::from_secs(60), || {
            (0..4).all(|k| !wanted[k] || self.stats.done[k].load(Ordering::SeqCst) > 0)
        });
        assert!(ok, "the load did not get going\n{}", self.summary());
    }

    fn report(&self) -> Report {
        let g = self.stats.faults.lock().unwrap();
        Report {
            done: std::array::from_fn(|k| self.stats.done[k].load(Ordering::SeqCst)),
            faults: g.0,
            first_faults: g.1.clone(),
            idle_closed: self.stats.idle_closed.load(Ordering::SeqCst),
            close_honoured: self.stats.close_honoured.load(Ordering::SeqCst),
            stale: self.stats.stale.load(Ordering::SeqCst),
            secs: self.started.elapsed().as_secs_f64(),
        }
    }

    pub fn summary(&self) -> String {
        self.report().summary()
    }

    /// Stop the clients (a download in progress is abandoned, not counted) and report.
    /// The end of a load run: a download of the big file completed (when the spec has them),
    /// the load is stopped, its summary printed under `what`, and not one request failed.
    pub fn finish(self, spec: LoadSpec, what: &str) -> Report {
        if spec.download {
            assert!(
                wait_until(Duration::from_secs(60), || self.count(Kind::Download) > 0),
                "no download of the big file completed\n{}",
                self.summary()
            );
        }
        let report = self.stop();
        eprintln!("{what}: {}", report.summary());
        report.assert_clean(spec);
        report
    }

    pub fn stop(mut self) -> Report {
        self.halt();
        self.report()
    }

    fn halt(&mut self) {
        self.stop.stop.store(true, Ordering::SeqCst);
        // Each thread checks the flag between requests and during a download, so this is
        // bounded by the socket timeout.
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Report {
    pub fn total_faults(&self) -> u64 {
        self.faults.iter().sum()
    }

    pub fn summary(&self) -> String {
        let mut s = format!("load over {:.1} s: completed", self.secs);
        for (k, name) in KIND_NAMES.iter().enumerate() {
            s.push_str(&format!(" {} {name},", self.done[k]));
        }
        s.push_str(&format!(
            " {} Connection: close honoured, {} idle closes, {} stale races\nerrors:",
            self.close_honoured, self.idle_closed, self.stale
        ));
        let names = [
            "refused",
            "connect",
            "reset",
            "no response",
            "truncated",
            "wrong bytes",
            "bad status",
            "timeout",
            "protocol",
        ];
        for (n, name) in self.faults.iter().zip(names) {
            if *n > 0 {
                s.push_str(&format!(" {n} {name},"));
            }
        }
        if self.total_faults() == 0 {
            s.push_str(" none");
        }
        for m in &self.first_faults {
            s.push_str(&format!("\n  {m}"));
        }
        s
    }

    /// No request failed in any way, and every kind of client got through.
    pub fn assert_clean(&self, spec: LoadSpec) {
        assert_eq!(self.total_faults(), 0, "{}", self.summary());
        let wanted = [
            spec.keep_alive > 0,
            spec.close > 0,
            spec.post > 0,
            spec.download,
        ];
        for k in 0..4 {
            assert!(
                !wanted[k] || self.done[k] > 0,
                "no {} completed\n{}",
                KIND_NAMES[k],
                self.summary()
            );
        }
    }
}

/// Back-to-back requests on one keep-alive connection (GETs, or POSTs with bodies), across
/// the small, medium and large files. Reconnects after `Connection: close`, and when the
/// server closed the connection before anything was sent on it; a request sent and not
/// answered is an error.
fn keep_alive_client(addr: SocketAddr, stop: &Ctl, stats: &Stats, id: usize, kind: Kind) {
    let who = format!("{} #{id}", KIND_NAMES[kind as usize]);
    let files = if kind == Kind::Post {
        // Small responses only: the body is written in full before the response is read.
        &[SMALL, MID][..]
    } else {
        &[SMALL, MID, LARGE][..]
    };
    let mut conn: Option<Client> = None;
    let mut i = id * 7;
    while stop.going() {
        i += 1;
        if let Some(c) = &conn {
            match c.closed_while_idle() {
                Ok(false) => {}
                Ok(true) => {
                    stats.idle_closed.fetch_add(1, Ordering::SeqCst);
                    conn = None;
                }
                Err(f) => {
                    stats.fault(&who, f);
                    conn = None;
                }
            }
        }
        let c = match &mut conn {
            Some(c) => c,
            None => match Client::connect(addr) {
                Ok(c) => conn.insert(c),
                Err(f) => {
                    stats.fault(&who, f);
                    // Errors already fail the test; do not spin on a dead port.
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let path = files[i % files.len()];
        let req = if kind == Kind::Post {
            post_request(path, i)
        } else {
            get_request(path, false)
        };
        let idle = c.last.elapsed();
        match c.exchange(&req, content().body(path)) {
            Ok(close) => {
                stats.done[kind as usize].fetch_add(1, Ordering::SeqCst);
                if close {
                    stats.close_honoured.fetch_add(1, Ordering::SeqCst);
                    conn = None;
                }
            }
            Err(f)
                if idle > STALE
                    && c.got == 0
                    && matches!(f.fault, Fault::NoResponse | Fault::Reset) =>
            {
                stats.stale.fetch_add(1, Ordering::SeqCst);
                conn = None;
            }
            Err(f) => {
                stats.fault(&who, f);
                conn = None;
            }
        }
    }
}

/// One `Connection: close` GET per connection; the server must answer, then close cleanly.
fn close_client(addr: SocketAddr, stop: &Ctl, stats: &Stats, id: usize) {
    let who = format!("close #{id}");
    let files = [SMALL, MID, LARGE];
    let mut i = id;
    while stop.going() {
        i += 1;
        let path = files[i % files.len()];
        let res = Client::connect(addr).and_then(|mut c| {
            c.exchange(&get_request(path, true), content().body(path))?;
            c.expect_clean_close()
        });
        match res {
            Ok(()) => {
                stats.done[Kind::Close as usize].fetch_add(1, Ordering::SeqCst);
            }
            Err(f) => {
                stats.fault(&who, f);
                thread::sleep(Duration::from_millis(50));
            }
        }
        // A short pause between connections keeps the TIME_WAIT population of a long run
        // modest; it is pacing, not synchronisation.
        thread::sleep(Duration::from_millis(2));
    }
}

/// The big file, downloaded again and again at a modest pace, each byte checked.
fn download_client(addr: SocketAddr, stop: &Ctl, stats: &Stats) {
    let who = "download";
    let mut seq = 0;
    while stop.going() {
        seq += 1;
        let res = Client::connect(addr).and_then(|mut c| download(&mut c, stop, stats, seq));
        stats.download_in_flight.store(0, Ordering::SeqCst);
        match res {
            Ok(true) => {
                stats.done[Kind::Download as usize].fetch_add(1, Ordering::SeqCst);
                stats.download_last_ok.store(seq, Ordering::SeqCst);
            }
            Ok(false) => {}
            Err(f) => {
                stats.fault(who, f);
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// One paced download of the big file; Ok(false) if abandoned because the load stopped.
fn download(c: &mut Client, stop: &Ctl, stats: &Stats, seq: u64) -> Result<bool, Failure> {
    let want = content().body(BIG);
    c.send(&get_request(BIG, false))?;
    let head = c.read_head()?;
    Client::check_head(&head, want.len())?;
    stats.download_in_flight.store(seq, Ordering::SeqCst);
    let start = Instant::now();
    let mut off = 0;
    let mut chunk = vec![0u8; 256 << 10];
    loop {
        // Bytes that came with the head are consumed first.
        let n = if !c.buf.is_empty() {
            let n = c.buf.len().min(want.len() - off);
            chunk[..n].copy_from_slice(&c.buf[..n]);
            c.buf.drain(..n);
            n
        } else if off < want.len() {
            match c.s.read(&mut chunk) {
                Ok(0) => {
                    return Err(fail(
                        Fault::Truncated,
                        format!("download: EOF after {off} of {} body bytes", want.len()),
                    ))
                }
                Ok(n) => n.min(want.len() - off),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(fail(
                        io_fault(&e, 1),
                        format!("download: after {off} body bytes: {e}"),
                    ))
                }
            }
        } else {
            break;
        };
        if chunk[..n] != want[off..off + n] {
            let at = chunk[..n]
                .iter()
                .zip(&want[off..])
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(fail(
                Fault::WrongBytes,
                format!("download: wrong byte at offset {}", off + at),
            ));
        }
        off += n;
        if !stop.going() {
            return Ok(false);
        }
        // Pacing, so the download spans reloads instead of finishing between them.
        let due = Duration::from_secs_f64(off as f64 / DOWNLOAD_BYTES_PER_SEC);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            thread::sleep(ahead);
        }
    }
    if !c.buf.is_empty() {
        return Err(fail(Fault::Protocol, "bytes after the download's body"));
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// sd_notify
// ---------------------------------------------------------------------------------------------

/// One datagram received on the notify socket.
#[derive(Clone, Debug)]
pub struct Note {
    /// The sender's pid, from SCM_CREDENTIALS (the kernel's word, not the sender's).
    pub pid: i32,
    pub text: String,
    /// CLOCK_MONOTONIC (µs) when the test received it.
    pub at_us: u64,
}

impl Note {
    /// The value of `KEY=` in this datagram.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    pub fn has(&self, key: &str, value: &str) -> bool {
        self.field(key) == Some(value)
    }
}

type Notes = Arc<(Mutex<Vec<Note>>, Condvar)>;

/// A Unix datagram socket standing in for systemd's notify socket.
pub struct Notify {
    path: PathBuf,
    syncs: u64,
    notes: Notes,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Notify {
    pub fn bind(path: &Path) -> Notify {
        let sock = UnixDatagram::bind(path)
            .unwrap_or_else(|e| panic!("bind notify socket {}: {e}", path.display()));
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a valid int on a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_PASSCRED: {}", io::Error::last_os_error());
        // Lets the receiving thread look at the stop flag now and then.
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let notes: Notes = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, st) = (notes.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                if let Ok((pid, text)) = recv_with_pid(sock.as_raw_fd()) {
                    let note = Note {
                        pid,
                        text,
                        at_us: monotonic_us(),
                    };
                    n.0.lock().unwrap().push(note);
                    n.1.notify_all();
                }
            }
        });
        Notify {
            path: path.to_path_buf(),
            syncs: 0,
            notes,
            stop,
            thread: Some(thread),
        }
    }

    /// Send a marker datagram from the test and wait until it is received: a datagram
    /// socket's queue is FIFO, so everything sent before (by a process that has since exited,
    /// say) has been received too.
    pub fn sync(&mut self) {
        self.syncs += 1;
        let marker = format!("X_TEST_SYNC={}", self.syncs);
        let tx = UnixDatagram::unbound().unwrap();
        tx.send_to(marker.as_bytes(), &self.path)
            .unwrap_or_else(|e| panic!("send to {}: {e}", self.path.display()));
        let got = self.wait(Duration::from_secs(10), |ns| {
            ns.iter().any(|n| n.text == marker)
        });
        assert!(got, "the notify receiver did not see its own marker");
    }

    pub fn notes(&self) -> Vec<Note> {
        self.notes.0.lock().unwrap().clone()
    }

    /// Wait until `pred` holds for the datagrams so far; false at the deadline.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&[Note]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.notes.0.lock().unwrap();
        loop {
            if pred(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self.notes.1.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Receive one datagram and the sender's pid from its SCM_CREDENTIALS.
fn recv_with_pid(fd: RawFd) -> io::Result<(i32, String)> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut ctrl = [0u64; 32];
    // SAFETY: an all-zero msghdr is a valid empty header; the pointers set below outlive the
    // recvmsg call, and the cmsg walk stays within msg_controllen as the macros guarantee.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&ctrl) as _;
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut pid = 0;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred: libc::ucred =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::ucred);
                pid = cred.pid;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((
            pid,
            String::from_utf8_lossy(&data[..n as usize]).into_owned(),
        ))
    }
}
