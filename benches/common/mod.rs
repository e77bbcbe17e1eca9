//! Pieces the benchmarks share: where servers and wrk run, bounded child processes, wrk's
//! report, and the temporary directory they all work in.
//!
//! Each bench is its own crate and includes this file with `mod common;`, so a piece only one
//! of them uses would otherwise be reported as dead code in the other.
#![allow(dead_code)]

pub mod closed_loop;
pub mod gzip;
pub mod tls;

use std::fs;
use std::io::{self, Read};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// cargo builds benches with the `bench` profile, which inherits `release`: this is
/// target/release/lightd, checked and reported at start.
pub const BIN: &str = env!("CARGO_BIN_EXE_lightd");

/// How long a server may take to accept connections after it is spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one socket operation of ours may block before the measurement is abandoned.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process gets to exit after SIGTERM/SIGINT before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long wrk may overrun its own duration (it waits for in-flight responses).
pub const WRK_GRACE: Duration = Duration::from_secs(30);
/// Poll interval for conditions that have no event to wait on (log lines, /proc, exits).
pub const POLL: Duration = Duration::from_millis(20);
/// Identical keep-alive limits for every server. lighttpd stores the request count in 16
/// bits, and its default (1000) would make wrk reconnect mid-run.
pub const KEEP_ALIVE_REQUESTS: u32 = 65535;
pub const KEEP_ALIVE_IDLE_SECS: u32 = 60;
/// Captured stderr beyond this is dropped (but still drained, so the child never blocks).
pub const MAX_CAPTURE: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// wrk
// ---------------------------------------------------------------------------------------------

/// What one wrk run reported.
pub struct Load {
    pub requests: u64,
    pub req_per_s: f64,
    pub mib_per_s: f64,
    pub latency_ms: f64,
    /// The slowest response of the run: what a client stuck behind a reload waited.
    pub latency_max_ms: f64,
    /// The 99th percentile, when wrk ran with --latency (NaN otherwise).
    pub latency_p99_ms: f64,
    /// connect, read, write, timeout: wrk prints the line only when one is non-zero.
    pub socket_errors: [u64; 4],
    pub non_2xx_3xx: u64,
}

impl Load {
    pub fn errors_text(&self) -> String {
        let [c, r, w, t] = self.socket_errors;
        format!("{c}/{r}/{w}/{t}")
    }
}

/// Run wrk against `url` on the client CPU and parse its report.
pub fn run_wrk(
    wrk: &Path,
    place: &Placement,
    url: &str,
    conns: u32,
    secs: u64,
    close: bool,
) -> Result<Load, String> {
    let extra: &[&str] = if close {
        &["-H", "Connection: close"]
    } else {
        &[]
    };
    run_wrk_args(wrk, place, url, conns, secs, extra)
}

/// run_wrk with extra arguments for wrk (a header, a script).
pub fn run_wrk_args(
    wrk: &Path,
    place: &Placement,
    url: &str,
    conns: u32,
    secs: u64,
    extra: &[&str],
) -> Result<Load, String> {
    let mut cmd = command(wrk, place.client_cpu, place.taskset.as_deref());
    cmd.arg("-t1")
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .args(extra)
        .arg(url);
    let out = run_bounded(cmd, Duration::from_secs(secs) + WRK_GRACE)?;
    if !out.status.success() {
        return Err(format!(
            "wrk {}: {}{}",
            out.status,
            out.stderr.trim(),
            out.stdout.trim()
        ));
    }
    parse_wrk(&out.stdout).map_err(|e| format!("{e} in wrk's output:\n{}", out.stdout))
}

pub fn parse_wrk(text: &str) -> Result<Load, String> {
    let mut load = Load {
        requests: 0,
        req_per_s: f64::NAN,
        mib_per_s: f64::NAN,
        latency_ms: f64::NAN,
        latency_max_ms: f64::NAN,
        latency_p99_ms: f64::NAN,
        socket_errors: [0; 4],
        non_2xx_3xx: 0,
    };
    for line in text.lines() {
        let line = line.trim();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            load.req_per_s = v.trim().parse().map_err(|_| "bad Requests/sec")?;
        } else if let Some(v) = line.strip_prefix("Transfer/sec:") {
            load.mib_per_s = parse_bytes(v.trim()).ok_or("bad Transfer/sec")? / MIB;
        } else if fields.first() == Some(&"Latency") && fields.len() > 3 {
            // "Latency  avg  stdev  max  +/-stdev"
            load.latency_ms = parse_duration_ms(fields[1]).ok_or("bad Latency")?;
            load.latency_max_ms = parse_duration_ms(fields[3]).ok_or("bad Latency")?;
        } else if fields.first() == Some(&"99%") && fields.len() == 2 {
            // --latency's "Latency Distribution" block: "99%    1.51ms".
            load.latency_p99_ms = parse_duration_ms(fields[1]).ok_or("bad 99% latency")?;
        } else if line.contains(" requests in ") {
            load.requests = fields
                .first()
                .and_then(|n| n.parse().ok())
                .ok_or("bad request count")?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for (i, part) in v.split(',').take(4).enumerate() {
                load.socket_errors[i] = part
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .ok_or("bad Socket errors")?;
            }
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.non_2xx_3xx = v.trim().parse().map_err(|_| "bad Non-2xx count")?;
        }
    }
    if load.req_per_s.is_nan() || load.mib_per_s.is_nan() {
        return Err("no Requests/sec or Transfer/sec".to_string());
    }
    Ok(load)
}

pub const MIB: f64 = 1024.0 * 1024.0;

/// wrk's sizes: a number and a binary unit, "512.00B", "176.11MB".
pub fn parse_bytes(s: &str) -> Option<f64> {
    let s = s.strip_suffix('B')?;
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1024.0),
        'M' => (&s[..s.len() - 1], MIB),
        'G' => (&s[..s.len() - 1], MIB * 1024.0),
        'T' => (&s[..s.len() - 1], MIB * MIB),
        _ => (s, 1.0),
    };
    num.parse::<f64>().ok().map(|n| n * mult)
}

/// wrk's durations: "291.98us", "1.51ms", "2.00s", "1.00m", "1.00h".
pub fn parse_duration_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let n: f64 = s[..split].parse().ok()?;
    let ms = match &s[split..] {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    };
    Some(ms)
}

// ---------------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------------

/// A port nobody listens on right now: bind port 0, read the port, release it. Another process
/// could take it before the server binds; the server then fails to start and says so.
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A path as a double-quoted config string (lighttpd, nginx and YAML agree on `\"`, `\\`).
pub fn quoted(p: &Path) -> String {
    let s = p.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn write_config(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Processes: placement, bounded runs, stopping
// ---------------------------------------------------------------------------------------------

/// The fields of /proc/PID/stat after the parenthesised command name, which may itself hold
/// spaces and parentheses: index 0 is the state (field 3), 1 the parent, 11 and 12 utime and
/// stime. None when the process is gone.
pub fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Which CPU servers and wrk run on, and how they are pinned.
pub struct Placement {
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    pub taskset: Option<PathBuf>,
}

/// Choose where servers and clients run (servers on the first allowed CPU, wrk and this
/// process on the second, when there are two), pin this process, and print the benchmark's
/// title, the lightd binary and the placement.
pub fn setup(title: &str) -> Placement {
    let taskset = find_program("taskset");
    let cpus = allowed_cpus();
    let place = Placement {
        server_cpu: cpus.first().copied().filter(|_| cpus.len() >= 2),
        client_cpu: cpus.get(1).copied(),
        taskset,
    };
    // Our own clients and polling must not take the servers' CPU.
    if let Some(c) = place.client_cpu {
        pin_self(c);
    }
    println!("{title}");
    let bin = Path::new(BIN);
    let release = bin
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "release");
    println!(
        "  lightd binary:  {BIN} ({}, {})",
        if release {
            "release profile"
        } else {
            "NOT the release profile: figures are not representative"
        },
        file_size(bin)
    );
    match (place.server_cpu, place.client_cpu) {
        (Some(s), Some(c)) => println!(
            "  CPU placement:  servers on CPU {s}, wrk on CPU {c} ({})",
            if place.taskset.is_some() {
                "taskset"
            } else {
                "sched_setaffinity"
            }
        ),
        _ => println!("  CPU placement:  none (only {} CPU usable)", cpus.len()),
    }
    place
}

/// The `http { }` block both benches give nginx: set up like lightd (no access log, sendfile,
/// the same keep-alive limits), with every path nginx writes to under `prefix` so it runs as
/// root without touching /var.
pub fn nginx_http_block(prefix: &Path, port: u16, root: &Path) -> String {
    nginx_http_block_with(prefix, port, root, "")
}

/// nginx_http_block with `extra` directives in the `http { }` block (gzip).
pub fn nginx_http_block_with(prefix: &Path, port: u16, root: &Path, extra: &str) -> String {
    let p = prefix.display();
    format!(
        "http {{\n\
         \x20   access_log off;\n\
         \x20   sendfile on;\n\
         \x20   keepalive_timeout {KEEP_ALIVE_IDLE_SECS}s;\n\
         \x20   keepalive_requests {KEEP_ALIVE_REQUESTS};\n\
         \x20   types {{ application/octet-stream bin; text/html html; }}\n\
         \x20   default_type application/octet-stream;\n\
         {extra}\
         \x20   client_body_temp_path {p}/client_body;\n\
         \x20   proxy_temp_path {p}/proxy;\n\
         \x20   fastcgi_temp_path {p}/fastcgi;\n\
         \x20   uwsgi_temp_path {p}/uwsgi;\n\
         \x20   scgi_temp_path {p}/scgi;\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       root {root};\n\
         \x20   }}\n\
         }}\n",
        root = quoted(root),
    )
}

/// h2o's YAML config for both benches: one event-loop thread, no access log (h2o writes one
/// only when `access-log` is given), the same idle keep-alive limit as the others, and
/// `max-connections` at `conns`. h2o has no keep-alive request limit for HTTP/1, so
/// KEEP_ALIVE_REQUESTS has no counterpart here, and it reads files with pread (no sendfile).
/// `extra` is appended at the top level (a pid file, an error log).
pub fn h2o_config(port: u16, root: &Path, conns: usize, extra: &str) -> String {
    // Started as root, h2o switches to `nobody` unless told otherwise; lighttpd and nginx run as
    // root in these benches, so h2o does too. As anyone else it cannot switch, and must not try.
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user: root\n"
    } else {
        ""
    };
    // http1-request-timeout is also how long h2o keeps an idle keep-alive connection (default
    // 10 s, which would close the idle-memory measurement's connections on a slow machine).
    format!(
        "{user}\
         listen:\n\
         \x20 host: 127.0.0.1\n\
         \x20 port: {port}\n\
         num-threads: 1\n\
         max-connections: {conns}\n\
         http1-request-timeout: {KEEP_ALIVE_IDLE_SECS}\n\
         file.mime.addtypes:\n\
         \x20 application/octet-stream: .bin\n\
         {extra}\
         hosts:\n\
         \x20 default:\n\
         \x20   paths:\n\
         \x20     /:\n\
         \x20       file.dir: {root}\n",
        root = quoted(root),
    )
}

/// The CPUs this process may run on (cgroups and taskset can make it fewer than nproc).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain bits; sched_getaffinity writes at most `size` bytes into it
    // and CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Run this process (and the children it spawns unpinned) on `cpu`; best effort.
pub fn pin_self(cpu: usize) {
    // SAFETY: plain bits, only read by the kernel.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A command for `program` pinned to `cpu` (through taskset when installed, else
/// sched_setaffinity in the child), killed by the kernel if the bench dies first so an
/// interrupted run leaves no server holding a port and a CPU. The kernel sends that signal when
/// the *thread* that spawned the child ends, so spawn from a thread that outlives the child.
pub fn command(program: &Path, cpu: Option<usize>, taskset: Option<&Path>) -> Command {
    let mut cmd = match (cpu, taskset) {
        (Some(c), Some(ts)) => {
            let mut cmd = Command::new(ts);
            cmd.arg("-c").arg(c.to_string()).arg(program);
            cmd
        }
        _ => Command::new(program),
    };
    let affinity = if taskset.is_none() { cpu } else { None };
    // SAFETY: plain bits, filled before the fork so the child only makes syscalls.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if let Some(c) = affinity {
            libc::CPU_SET(c, &mut set);
        }
        set
    };
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe syscalls
    // on memory it owns (a copy of `set`).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if affinity.is_some()
                && libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Signal `child` (ours, not yet reaped, so its pid cannot have been reused), wait up to
/// `grace`, then SIGKILL. Returns whether it exited before the SIGKILL.
pub fn stop_child(child: &mut Child, signal: libc::c_int, grace: Duration) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return true;
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) touches no memory of ours.
        unsafe { libc::kill(pid, signal) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => thread::sleep(POLL),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` to completion, killing it at `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Finished, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let out = child
        .stdout
        .take()
        .map_or_else(Capture::empty, Capture::spawn);
    let err = child
        .stderr
        .take()
        .map_or_else(Capture::empty, Capture::spawn);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            Ok(None) => {
                stop_child(&mut child, libc::SIGTERM, STOP_TIMEOUT);
                return Err(format!("still running after {timeout:?}; stopped"));
            }
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
    };
    // The pipes close at exit unless a grandchild inherited them; do not wait for that.
    out.wait_closed(Duration::from_secs(2));
    err.wait_closed(Duration::from_secs(2));
    Ok(Finished {
        status,
        stdout: out.text(),
        stderr: err.text(),
    })
}

/// The first line a program prints for its version flag (on stdout or stderr).
pub fn version_of(prog: &Path, flag: &str) -> String {
    let mut cmd = command(prog, None, None);
    cmd.arg(flag);
    match run_bounded(cmd, Duration::from_secs(10)) {
        Ok(f) => {
            let text = if f.stdout.trim().is_empty() {
                f.stderr
            } else {
                f.stdout
            };
            let line = text.lines().next().unwrap_or("").trim();
            // Keep the name and version: "nginx version: nginx/1.22.1",
            // "lighttpd/1.4.69 (ssl) - a light...", "wrk 4.1.0 [epoll] Copyright...".
            let line = line.strip_prefix("nginx version: ").unwrap_or(line);
            line.split(" - ")
                .next()
                .unwrap_or(line)
                .split(" Copyright")
                .next()
                .unwrap_or(line)
                .to_string()
        }
        Err(e) => format!("version unknown: {e}"),
    }
}

pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    // Servers live in sbin, which a non-root PATH often lacks.
    let sbin = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(sbin)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

// ---------------------------------------------------------------------------------------------
// Small pieces
// ---------------------------------------------------------------------------------------------

/// Poll `cond` until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

pub fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{name}={v:?}: expected a positive whole number")),
        },
    }
}

pub fn file_size(p: &Path) -> String {
    match fs::metadata(p) {
        Ok(m) => format!("{} bytes = {:.2} MiB", m.len(), m.len() as f64 / MIB),
        Err(e) => format!("size unknown: {e}"),
    }
}

pub fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].replace('\n', "\n      ")
}

/// Date a file's modification (and access) time a minute back: lightd's small-file cache does
/// not take a file written in the last two seconds (it may be mid-rewrite), and a site's files
/// are not that new. (utimensat rather than File::set_modified, which is newer than lightd's
/// minimum Rust.)
pub fn backdate(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: NUL in the path", path.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let when = libc::timespec {
        tv_sec: now.saturating_sub(60) as libc::time_t,
        tv_nsec: 0,
    };
    let times = [when, when];
    // SAFETY: a NUL-terminated path and an array of two timespecs, both alive for the call.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) } != 0 {
        return Err(format!(
            "dating {}: {}",
            path.display(),
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Deterministic bytes with no short period, so no layer can shortcut repeated content.
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

/// The benchmark's directory (docroot, configs, logs), removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> Result<TempDir, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("lightd-bench-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        // Canonical, so configs name the real path even when /tmp is a symlink.
        let path = fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// What a child wrote to a pipe, drained by a thread so the child never blocks on a full
/// pipe and we can look at the text so far at any time.
pub struct Capture {
    inner: Arc<(Mutex<Vec<u8>>, AtomicBool)>,
}

impl Capture {
    pub fn empty() -> Capture {
        Capture {
            inner: Arc::new((Mutex::new(Vec::new()), AtomicBool::new(true))),
        }
    }

    pub fn spawn<R: Read + Send + 'static>(mut r: R) -> Capture {
        let inner = Arc::new((Mutex::new(Vec::new()), AtomicBool::new(false)));
        let shared = inner.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut buf = shared.0.lock().unwrap_or_else(|e| e.into_inner());
                        if buf.len() < MAX_CAPTURE {
                            buf.extend_from_slice(&chunk[..n]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            shared.1.store(true, Ordering::SeqCst);
        });
        Capture { inner }
    }

    pub fn text(&self) -> String {
        let buf = self.inner.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    pub fn wait_closed(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.inner.1.load(Ordering::SeqCst))
    }
}

/// The time every thread of `pid` has run, from schedstat. /proc/PID/schedstat is only the main
/// thread's: a server whose event loop runs in another thread would look idle.
pub fn run_time_ns(pid: u32) -> Result<u64, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = fs::read_dir(&dir).map_err(|e| format!("reading {dir}: {e}"))?;
    let mut total = 0;
    let mut read_any = false;
    for task in tasks.flatten() {
        let path = task.path().join("schedstat");
        // A thread that ended since the listing is gone, with its time.
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("no run time in {}", path.display()))?;
        read_any = true;
    }
    if read_any {
        Ok(total)
    } else {
        Err(format!("no readable schedstat under {dir}"))
    }
}

/// The tail of what a server said on stderr and in its error log, for failure messages.
pub fn server_diagnostics(stderr: &Capture, errorlog: Option<&Path>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let err = stderr.text();
    if !err.trim().is_empty() {
        let _ = write!(out, "\n    stderr: {}", tail(&err, 800));
    }
    if let Some(log) = errorlog.and_then(|p| fs::read_to_string(p).ok()) {
        if !log.trim().is_empty() {
            let _ = write!(out, "\n    error log: {}", tail(&log, 800));
        }
    }
    out
}

/// Some("exited") once process `pid` has exited: /proc answers without reaping it (a zombie
/// still has an entry, so its state says).
pub fn exited(pid: u32) -> Option<String> {
    let stat = proc_stat(pid)?;
    let state = stat.first()?;
    (state == "Z" || state == "X").then(|| "exited".to_string())
}
