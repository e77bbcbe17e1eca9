//! Server CPU per request through a backend, for lightd beside lighttpd and nginx:
//! `cargo bench --bench backends`.
//!
//! Two workloads, each with 50 keep-alive wrk connections:
//! - **FastCGI hello-world**: `GET /hello.fcgi` forwarded to lighttpd's test responder
//!   (`fcgi-responder.c` from the lighttpd suite, built here with `cc -O1`), a few processes
//!   sharing one unix listening socket handed to them as fd 0. It answers "test123" and closes
//!   the connection after each request, so every server connects once per request.
//! - **Proxied 1 KiB**: `GET /1k` proxied to a second lightd serving a static 1 KiB file over
//!   HTTP/1.1. nginx keeps an upstream keep-alive pool (`proxy_http_version 1.1`, `keepalive`);
//!   lighttpd's mod_proxy, as Debian ships it, sends `Connection: close` and connects per
//!   request; lightd keeps its own small idle pool.
//!
//! The front servers run on the first allowed CPU, `wrk -t1` on the second, as in
//! `benches/static.rs`. The backends (the responders, the upstream lightd) run on a third CPU
//! when there is one, else beside wrk: never beside the server, whose CPU is what is measured.
//! "Server CPU per request" is the server process's run time (/proc/PID/task/*/schedstat,
//! every thread) over the requests wrk completed; the backends' CPU is not in it. Each server
//! runs every workload in each of N rounds (in a rotating order, so drift in the machine's load
//! falls on all of them), and the tables show the median round.
//!
//! Environment: LIGHTD_BENCH_SECS (seconds per wrk run, default 5), LIGHTD_BENCH_ROUNDS
//! (default 3), LIGHTD_BENCH_FCGI_PROCS (responder processes, default 4).
//!
//! Every wait has a deadline; every process is ours and stopped by pid; the temp dir (configs,
//! sockets, the responder's binary) is removed at the end. A server or tool that is not
//! installed is skipped with a note. lightd failing a check, a wrk error or a non-2xx/3xx
//! response from lightd makes the run exit non-zero after printing everything it measured.

mod common;

use common::{
    command, env_number, exited, find_program, free_port, pattern, proc_stat, quoted, run_bounded,
    run_time_ns, run_wrk, server_diagnostics, setup, stop_child, tail, version_of, write_config,
    Capture, Load, Placement, TempDir, BIN, IO_TIMEOUT, KEEP_ALIVE_IDLE_SECS, KEEP_ALIVE_REQUESTS,
    POLL, START_TIMEOUT, STOP_TIMEOUT,
};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Connections wrk keeps open in both workloads.
const CONNS: u32 = 50;
/// The largest response (head and body) the check client accepts.
const MAX_RESPONSE: usize = 256 * 1024;
/// The 1 KiB file the upstream serves.
const UPSTREAM_FILE: &str = "1k";
const UPSTREAM_SIZE: usize = 1024;
/// What fcgi-responder.c answers to a request with no query string it knows.
const FCGI_BODY: &[u8] = b"test123";
/// Where the responder's source is, relative to the shared directory beside the checkout.
const RESPONDER_SRC: &str = "lighttpd-tests/tests/fcgi-responder.c";
/// Connection limits for every server: far above CONNS, identical everywhere.
const MAX_CONNS: usize = 1024;
const MAX_FDS: usize = 4096;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    FastCgi,
    Proxy,
}

struct Workload {
    kind: Kind,
    title: &'static str,
    path: &'static str,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        kind: Kind::FastCgi,
        title: "FastCGI hello-world",
        path: "/hello.fcgi",
    },
    Workload {
        kind: Kind::Proxy,
        title: "proxied 1 KiB",
        path: "/1k",
    },
];

/// The front servers, in column order.
const SERVERS: [&str; 3] = ["lightd", "lighttpd", "nginx"];

/// What one wrk run cost one server.
struct Round {
    load: Load,
    us_per_req: f64,
    /// The kernel's share of `us_per_req`, from utime and stime (sampled in clock ticks, so
    /// only the split is taken from them).
    kernel_us_per_req: Option<f64>,
    server_busy_pct: f64,
    /// The server CPU's busy time not spent by the server (other processes, interrupts), as a
    /// share of the run: how disturbed the measurement was.
    others_busy_pct: Option<f64>,
    /// TCP connections accepted machine-wide per request (PassiveOpens of /proc/net/snmp):
    /// for the proxy, how often the server opened a new upstream connection (about 1 when it
    /// connects per request, near 0 when it reuses them), plus wrk's 50 and whatever else the
    /// machine did meanwhile.
    passive_opens_per_req: Option<f64>,
}

/// One server's figures for one workload: its rounds, or why it was not measured.
type Cell = Result<Vec<Round>, String>;

/// The whole run. Ok(false) when lightd failed a check; Err only when nothing can be measured.
fn run() -> Result<bool, String> {
    let secs = env_number("LIGHTD_BENCH_SECS", 5)?;
    let rounds = env_number("LIGHTD_BENCH_ROUNDS", 3)? as usize;
    let nprocs = env_number("LIGHTD_BENCH_FCGI_PROCS", 4)? as usize;
    let mut problems: Vec<String> = Vec::new();

    let wrk = find_program("wrk");
    let place = setup("lightd backends benchmark (FastCGI and proxy)");
    let cpus = common::allowed_cpus();
    // A third CPU, when there is one, keeps the backends off wrk's; the server's CPU is never
    // shared with them, or their work would disturb what is measured.
    let backend_cpu = cpus.get(2).copied().or(place.client_cpu);
    match backend_cpu {
        Some(c) if Some(c) == place.client_cpu => println!(
            "  backends:       on CPU {c}, with wrk (no third CPU); the server's CPU is its own"
        ),
        Some(c) => println!("  backends:       on CPU {c}, their own"),
        None => println!("  backends:       unpinned"),
    }
    println!("  machine load:   {} (/proc/loadavg, at start)", loadavg());
    let Some(wrk) = wrk else {
        println!("  load generator: wrk not found: apt-get install wrk (nothing measured)");
        return Ok(true);
    };
    println!(
        "  load generator: {} ({}), -t1 -c{CONNS}, {secs} s per run (LIGHTD_BENCH_SECS), \
         {rounds} rounds (LIGHTD_BENCH_ROUNDS)",
        wrk.display(),
        version_of(&wrk, "-v")
    );

    let dir = TempDir::new()?;
    let docroot = dir.path.join("www");
    let up_root = dir.path.join("upstream");
    for d in [&docroot, &up_root] {
        fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let body_1k = pattern(UPSTREAM_SIZE);
    let up_file = up_root.join(UPSTREAM_FILE);
    fs::write(&up_file, &body_1k).map_err(|e| format!("writing {}: {e}", up_file.display()))?;
    common::backdate(&up_file)?;

    // The backends, shared by every server.
    let mut responders = match build_responder(&dir.path) {
        Ok(prog) => {
            let sock = dir.path.join("fcgi.sock");
            match Responders::start(prog, &sock, nprocs, backend_cpu, place.taskset.clone()) {
                Ok(r) => {
                    println!(
                        "  FastCGI app:    fcgi-responder.c (cc -O1), {nprocs} processes on \
                         unix:{} (LIGHTD_BENCH_FCGI_PROCS)",
                        sock.display()
                    );
                    Ok(r)
                }
                Err(e) => Err(format!("responders did not start: {e}")),
            }
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &responders {
        println!("  FastCGI app:    not available, FastCGI not measured: {e}");
    }
    let up_place = Placement {
        server_cpu: backend_cpu,
        client_cpu: place.client_cpu,
        taskset: place.taskset.clone(),
    };
    let upstream = start_lightd("upstream", &dir.path, &up_root, &up_place, "")
        .and_then(|s| {
            let want = Expect {
                body: &body_1k,
                what: "the 1 KiB file",
            };
            check_serves(&s, &format!("/{UPSTREAM_FILE}"), &want).map(|()| s)
        })
        .map(|s| {
            println!(
                "  upstream:       lightd on 127.0.0.1:{}, static /{UPSTREAM_FILE} (1 KiB)",
                s.port
            );
            s
        });
    if let Err(e) = &upstream {
        println!("  upstream:       not available, proxy not measured: {e}");
        problems.push(format!("the upstream lightd: {e}"));
    }

    let mut installed: Vec<(&'static str, PathBuf)> = Vec::new();
    for name in SERVERS {
        let prog = if name == "lightd" {
            Some(PathBuf::from(BIN))
        } else {
            find_program(name)
        };
        match prog {
            Some(p) => {
                if name != "lightd" {
                    println!(
                        "  {:<15} {} ({})",
                        format!("{name}:"),
                        p.display(),
                        version_of(&p, "-v")
                    );
                }
                installed.push((name, p));
            }
            None => println!(
                "  {:<15} not installed, not compared (apt-get install {name})",
                format!("{name}:")
            ),
        }
    }
    let names: Vec<&'static str> = installed.iter().map(|(n, _)| *n).collect();

    // cells[w][s]: workload w on server s.
    let mut cells: Vec<Vec<Cell>> = Vec::new();
    for w in &WORKLOADS {
        let gateway = match (w.kind, &responders, &upstream) {
            (Kind::FastCgi, Ok(r), _) => Ok(Gateway::FastCgi(r.sock.clone())),
            (Kind::Proxy, _, Ok(u)) => Ok(Gateway::Proxy(u.port)),
            (Kind::FastCgi, Err(e), _) | (Kind::Proxy, _, Err(e)) => Err(e.clone()),
        };
        let expect = Expect {
            body: if w.kind == Kind::FastCgi {
                FCGI_BODY
            } else {
                &body_1k
            },
            what: if w.kind == Kind::FastCgi {
                "\"test123\""
            } else {
                "the upstream's 1 KiB file"
            },
        };
        let mut servers: Vec<Result<Server, String>> = Vec::new();
        for (name, prog) in &installed {
            let started = match &gateway {
                Err(e) => Err(format!("no backend: {e}")),
                Ok(g) => start_front(name, prog, &dir.path, &docroot, &place, g),
            };
            let checked = started.and_then(|s| match check_serves(&s, w.path, &expect) {
                Ok(()) => Ok(s),
                Err(e) => Err(format!(
                    "does not answer {} correctly: {e}{}",
                    w.path,
                    s.diagnostics()
                )),
            });
            if let Err(e) = &checked {
                println!("  {}: {name} not measured: {e}", w.title);
                if *name == "lightd" && !not_wired(w.kind) {
                    problems.push(format!("{}: {e}", w.title));
                }
            }
            servers.push(checked);
        }
        let mut runs: Vec<Cell> = servers
            .iter()
            .map(|s| match s {
                Ok(_) => Ok(Vec::new()),
                Err(e) => Err(e.clone()),
            })
            .collect();
        for r in 0..rounds {
            // A rotating order: no server always runs first after a pause, or last.
            for k in 0..servers.len() {
                let i = (r + k) % servers.len();
                let (Ok(s), Some(Ok(out))) = (&servers[i], runs.get_mut(i)) else {
                    continue;
                };
                if w.kind == Kind::FastCgi {
                    if let Ok(resp) = responders.as_mut() {
                        if let Err(e) = resp.respawn_dead() {
                            println!("  responders: {e}");
                        }
                    }
                }
                eprintln!(
                    "bench: {} round {} of {rounds} on {}",
                    w.title,
                    r + 1,
                    s.name
                );
                match measure(&wrk, &place, s, w.path, secs) {
                    Ok(round) => {
                        if s.name == "lightd"
                            && (round.load.socket_errors.iter().sum::<u64>() > 0
                                || round.load.non_2xx_3xx > 0)
                        {
                            problems.push(format!(
                                "{}: lightd had socket errors {} and {} non-2xx/3xx responses",
                                w.title,
                                round.load.errors_text(),
                                round.load.non_2xx_3xx
                            ));
                        }
                        out.push(round);
                    }
                    Err(e) => {
                        if s.name == "lightd" {
                            problems.push(format!("{}: wrk on lightd: {e}", w.title));
                        }
                        runs[i] = Err(format!("wrk failed: {e}"));
                    }
                }
            }
        }
        for (s, run) in servers.iter().zip(&runs) {
            let Ok(s) = s else {
                continue;
            };
            // Failed requests are the servers' to explain: show what they logged.
            let failed = run.as_ref().is_ok_and(|r| {
                r.iter()
                    .any(|r| r.load.socket_errors.iter().sum::<u64>() > 0 || r.load.non_2xx_3xx > 0)
            });
            if failed {
                println!(
                    "  {}: {} had failed requests; its log:{}",
                    w.title,
                    s.name,
                    s.diagnostics()
                );
                if w.kind == Kind::FastCgi {
                    println!(
                        "    (fcgi-responder.c drops a connection whose request has not arrived \
                         25 ms after its accept: a server preempted between its connect and its \
                         write, on a busy machine, meets that whichever server it is)"
                    );
                }
            }
            if let Some(why) = s.exited() {
                println!(
                    "  {}: {} exited during the run ({why}){}",
                    w.title,
                    s.name,
                    s.diagnostics()
                );
                if s.name == "lightd" {
                    problems.push(format!("{}: lightd exited during the run", w.title));
                }
            }
        }
        cells.push(runs);
        // The servers stop here (drop), before the next workload starts its own.
    }
    let respawned = responders.as_ref().map_or(0, |r| r.respawned);

    println!();
    println!(
        "  machine load:   {} (/proc/loadavg, at the end)",
        loadavg()
    );
    if respawned > 0 {
        println!("  responders:     {respawned} died during the run and were restarted");
    }
    print_tables(&names, &cells, secs, rounds);

    drop(responders);
    drop(upstream);
    println!();
    if problems.is_empty() {
        println!("lightd: every check passed; 0 socket errors, 0 non-2xx/3xx responses");
        Ok(true)
    } else {
        println!("lightd FAILED:");
        for p in &problems {
            println!("  - {p}");
        }
        Ok(false)
    }
}

/// Whether this lightd refuses `kind`'s module because the request path does not run it yet
/// (config::gateway::WIRED): then the row says so instead of failing the run.
/// A build without the module's cargo feature refuses it too.
fn not_wired(kind: Kind) -> bool {
    let (module, built) = match kind {
        Kind::FastCgi => ("mod_fastcgi", cfg!(feature = "fastcgi")),
        Kind::Proxy => ("mod_proxy", cfg!(feature = "proxy")),
    };
    !built || !wired(module)
}

#[cfg(feature = "backend")]
fn wired(module: &str) -> bool {
    lightd::config::gateway::WIRED.contains(&module)
}

#[cfg(not(feature = "backend"))]
fn wired(_module: &str) -> bool {
    false
}

/// One wrk run against `server`, with its CPU read before and after.
fn measure(
    wrk: &Path,
    place: &Placement,
    server: &Server,
    path: &str,
    secs: u64,
) -> Result<Round, String> {
    let url = format!("http://127.0.0.1:{}{path}", server.port);
    let pid = server.pid();
    let cpu = place.server_cpu;
    let before = Sample::take(pid, cpu)?;
    let load = run_wrk(wrk, place, &url, CONNS, secs, false)?;
    let after = Sample::take(pid, cpu)?;
    if load.requests == 0 {
        return Err("wrk completed no request".to_string());
    }
    let wall_s = after.at.duration_since(before.at).as_secs_f64();
    let server_s = after.server_ns.saturating_sub(before.server_ns) as f64 / 1e9;
    let reqs = load.requests as f64;
    let others_busy_pct = match (before.cpu_busy_s, after.cpu_busy_s) {
        (Some(b), Some(a)) if wall_s > 0.0 => {
            Some((100.0 * ((a - b) - server_s) / wall_s).max(0.0))
        }
        _ => None,
    };
    let kernel_us_per_req = match (before.ticks, after.ticks) {
        (Some((bu, bs)), Some((au, a_s))) => {
            let (u, k) = (au.saturating_sub(bu) as f64, a_s.saturating_sub(bs) as f64);
            (u + k > 0.0).then(|| server_s * 1e6 / reqs * k / (u + k))
        }
        _ => None,
    };
    let passive_opens_per_req = match (before.passive_opens, after.passive_opens) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / reqs),
        _ => None,
    };
    Ok(Round {
        us_per_req: server_s * 1e6 / reqs,
        kernel_us_per_req,
        server_busy_pct: if wall_s > 0.0 {
            100.0 * server_s / wall_s
        } else {
            f64::NAN
        },
        others_busy_pct,
        passive_opens_per_req,
        load,
    })
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// What is read before and after a wrk run.
struct Sample {
    at: Instant,
    /// The server's run time, summed over its threads, in nanoseconds (exact).
    server_ns: u64,
    /// The server's utime and stime from /proc/PID/stat, in clock ticks.
    ticks: Option<(u64, u64)>,
    /// Busy time of the server's CPU from /proc/stat, in seconds (sampled in clock ticks).
    cpu_busy_s: Option<f64>,
    /// Machine-wide TCP passive opens.
    passive_opens: Option<u64>,
}

impl Sample {
    fn take(pid: u32, cpu: Option<usize>) -> Result<Sample, String> {
        Ok(Sample {
            at: Instant::now(),
            server_ns: run_time_ns(pid)?,
            ticks: proc_stat(pid).and_then(|f| {
                let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
                Some((tick(11)?, tick(12)?))
            }),
            cpu_busy_s: cpu.and_then(cpu_busy_s),
            passive_opens: passive_opens(),
        })
    }
}

/// The busy time of CPU `cpu` since boot (user, nice, system, irq, softirq, steal), seconds.
fn cpu_busy_s(cpu: usize) -> Option<f64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let label = format!("cpu{cpu}");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    // SAFETY: sysconf reads no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| busy as f64 / hz as f64)
}

/// TCP PassiveOpens from /proc/net/snmp: a header line and a value line, both "Tcp:".
fn passive_opens() -> Option<u64> {
    let text = fs::read_to_string("/proc/net/snmp").ok()?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let names = tcp.next()?;
    let values = tcp.next()?;
    let at = names.split_whitespace().position(|n| n == "PassiveOpens")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |e| format!("unknown: {e}"),
        |t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

// ---------------------------------------------------------------------------------------------
// The backends
// ---------------------------------------------------------------------------------------------

/// Compile lighttpd's FastCGI test responder into `dir`.
fn build_responder(dir: &Path) -> Result<PathBuf, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        Path::new("/work/shared").join(RESPONDER_SRC),
        manifest.join("../shared").join(RESPONDER_SRC),
    ];
    let src = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
        format!("{RESPONDER_SRC} not found (looked in /work/shared and ../shared)")
    })?;
    let cc = find_program("cc").ok_or("no C compiler (cc) to build the FastCGI responder")?;
    let out = dir.join("fcgi-responder");
    let mut cmd = Command::new(cc);
    cmd.arg("-O1").arg("-o").arg(&out).arg(src);
    let done = run_bounded(cmd, Duration::from_secs(120))?;
    if !done.status.success() {
        return Err(format!(
            "cc -O1 {} failed: {}",
            src.display(),
            tail(&done.stderr, 600)
        ));
    }
    Ok(out)
}

/// The FastCGI responder's processes, all accepting on one unix socket they get as fd 0
/// (FCGI_LISTENSOCK_FILENO); stopped by pid on drop.
struct Responders {
    prog: PathBuf,
    sock: PathBuf,
    listener: UnixListener,
    cpu: Option<usize>,
    taskset: Option<PathBuf>,
    procs: Vec<Child>,
    /// Processes found dead and replaced between runs.
    respawned: u32,
}

impl Responders {
    fn start(
        prog: PathBuf,
        sock: &Path,
        n: usize,
        cpu: Option<usize>,
        taskset: Option<PathBuf>,
    ) -> Result<Responders, String> {
        let listener =
            UnixListener::bind(sock).map_err(|e| format!("binding {}: {e}", sock.display()))?;
        let mut r = Responders {
            prog,
            sock: sock.to_path_buf(),
            listener,
            cpu,
            taskset,
            procs: Vec::with_capacity(n),
            respawned: 0,
        };
        for _ in 0..n {
            let child = r.spawn_one()?;
            r.procs.push(child);
        }
        Ok(r)
    }

    fn spawn_one(&self) -> Result<Child, String> {
        let fd: OwnedFd = self
            .listener
            .try_clone()
            .map_err(|e| format!("duplicating the listening socket: {e}"))?
            .into();
        let mut cmd = command(&self.prog, self.cpu, self.taskset.as_deref());
        // SAFETY: signal(2) between fork and exec, on no memory of ours. The responder writes
        // with stdio and does not handle SIGPIPE: a server that drops a backend connection
        // (a client gone at the end of a wrk run) would kill it. Ignored, the write fails
        // and the responder takes the next connection (the disposition survives exec).
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                Ok(())
            });
        }
        cmd.stdin(Stdio::from(fd))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn()
            .map_err(|e| format!("spawning {}: {e}", self.prog.display()))
    }

    /// Replace processes that have exited, so every server meets the same number.
    fn respawn_dead(&mut self) -> Result<(), String> {
        for i in 0..self.procs.len() {
            let dead = !matches!(self.procs[i].try_wait(), Ok(None));
            if dead {
                let child = self.spawn_one()?;
                let mut old = std::mem::replace(&mut self.procs[i], child);
                let _ = old.wait();
                self.respawned += 1;
            }
        }
        Ok(())
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        for c in &mut self.procs {
            stop_child(c, libc::SIGTERM, STOP_TIMEOUT);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// Where the front servers send the workload's requests.
enum Gateway {
    /// The responders' unix socket.
    FastCgi(PathBuf),
    /// The upstream lightd's port on 127.0.0.1.
    Proxy(u16),
}

/// One running server, stopped (by pid) and reaped on drop.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    stderr: Capture,
    errorlog: Option<PathBuf>,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Some(why) once the process has exited (a zombie, not yet reaped).
    fn exited(&self) -> Option<String> {
        exited(self.pid())
    }

    fn diagnostics(&self) -> String {
        server_diagnostics(&self.stderr, self.errorlog.as_deref())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM, STOP_TIMEOUT);
    }
}

fn start_front(
    name: &'static str,
    prog: &Path,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    g: &Gateway,
) -> Result<Server, String> {
    match name {
        "lightd" => start_lightd("lightd", dir, docroot, place, &lighttpd_gateway(g)),
        "lighttpd" => start_lighttpd(prog, dir, docroot, place, g),
        _ => start_nginx(prog, dir, docroot, place, g),
    }
}

/// The gateway's lines in lighttpd's config language, which lightd shares: the same module
/// keys for both.
fn lighttpd_gateway(g: &Gateway) -> String {
    match g {
        Gateway::FastCgi(sock) => format!(
            "server.modules = ( \"mod_fastcgi\" )\n\
             fastcgi.server = ( \"/hello.fcgi\" => (( \"socket\" => {}, \
             \"check-local\" => \"disable\" )) )\n",
            quoted(sock)
        ),
        Gateway::Proxy(port) => format!(
            "server.modules = ( \"mod_proxy\" )\n\
             proxy.server = ( \"/{UPSTREAM_FILE}\" => (( \"host\" => \"127.0.0.1\", \
             \"port\" => {port} )) )\n"
        ),
    }
}

/// A lightd with one process and no access log; `extra` config lines appended.
fn start_lightd(
    name: &'static str,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    extra: &str,
) -> Result<Server, String> {
    let cfg = dir.join(format!("{name}.conf"));
    let text = format!(
        "server.document-root = {root}\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = 0\n\
         server.max-fds = {MAX_FDS}\n\
         server.max-connections = {MAX_CONNS}\n\
         server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
         server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
         server.max-worker = 0\n\
         {extra}",
        root = quoted(docroot),
    );
    write_config(&cfg, &text)?;
    let mut cmd = command(Path::new(BIN), place.server_cpu, place.taskset.as_deref());
    // lightd announces its port at info level; a RUST_LOG of ours could hide the line.
    cmd.arg("-D")
        .arg("-f")
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn_server(name, cmd, None, None)
}

fn start_lighttpd(
    prog: &Path,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    g: &Gateway,
) -> Result<Server, String> {
    let port = free_port()?;
    let cfg = dir.join("lighttpd.conf");
    let errorlog = dir.join("lighttpd-error.log");
    // mod_fastcgi and mod_proxy are built into Debian's lighttpd; server.modules enables them.
    // Without mod_accesslog there is no access log.
    let text = format!(
        "server.document-root = {root}\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = {port}\n\
         server.errorlog = {log}\n\
         server.max-fds = {MAX_FDS}\n\
         server.max-connections = {MAX_CONNS}\n\
         server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
         server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
         {gateway}",
        root = quoted(docroot),
        log = quoted(&errorlog),
        gateway = lighttpd_gateway(g),
    );
    write_config(&cfg, &text)?;
    let mut cmd = command(prog, place.server_cpu, place.taskset.as_deref());
    cmd.arg("-D")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn_server("lighttpd", cmd, Some(port), Some(errorlog))
}

/// nginx's FastCGI parameters as Debian's /etc/nginx/fastcgi_params sets them, written out so
/// the config depends on nothing under /etc. QUERY_STRING matters: without it the responder
/// answers 500.
const NGINX_FASTCGI_PARAMS: [(&str, &str); 18] = [
    ("QUERY_STRING", "$query_string"),
    ("REQUEST_METHOD", "$request_method"),
    ("CONTENT_TYPE", "$content_type"),
    ("CONTENT_LENGTH", "$content_length"),
    ("SCRIPT_NAME", "$fastcgi_script_name"),
    ("REQUEST_URI", "$request_uri"),
    ("DOCUMENT_URI", "$document_uri"),
    ("DOCUMENT_ROOT", "$document_root"),
    ("SERVER_PROTOCOL", "$server_protocol"),
    ("REQUEST_SCHEME", "$scheme"),
    ("GATEWAY_INTERFACE", "CGI/1.1"),
    ("SERVER_SOFTWARE", "nginx/$nginx_version"),
    ("REMOTE_ADDR", "$remote_addr"),
    ("REMOTE_PORT", "$remote_port"),
    ("SERVER_ADDR", "$server_addr"),
    ("SERVER_PORT", "$server_port"),
    ("SERVER_NAME", "$server_name"),
    ("SCRIPT_FILENAME", "$document_root$fastcgi_script_name"),
];

/// Idle upstream connections nginx keeps (`keepalive`). More than the clients, so nginx never
/// closes an upstream connection for want of room in its pool: with 32 (its documentation's
/// example) a trial run opened a new one for 1 request in 5.
const NGINX_KEEPALIVE: u32 = 64;

fn start_nginx(
    prog: &Path,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    g: &Gateway,
) -> Result<Server, String> {
    let port = free_port()?;
    let prefix = dir.join("nginx");
    fs::create_dir_all(&prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    let cfg = prefix.join("nginx.conf");
    let p = prefix.display();
    let (upstream, location) = match g {
        Gateway::FastCgi(sock) => {
            let mut loc = format!(
                "        location = /hello.fcgi {{\n\
                 \x20           fastcgi_pass unix:{};\n",
                sock.display()
            );
            for (k, v) in NGINX_FASTCGI_PARAMS {
                let _ = writeln!(loc, "            fastcgi_param {k} \"{v}\";");
            }
            loc.push_str("        }\n");
            (String::new(), loc)
        }
        Gateway::Proxy(up) => (
            format!(
                "    upstream up {{\n\
                 \x20       server 127.0.0.1:{up};\n\
                 \x20       keepalive {NGINX_KEEPALIVE};\n\
                 \x20   }}\n"
            ),
            format!(
                "        location = /{UPSTREAM_FILE} {{\n\
                 \x20           proxy_pass http://up;\n\
                 \x20           proxy_http_version 1.1;\n\
                 \x20           proxy_set_header Connection \"\";\n\
                 \x20       }}\n"
            ),
        ),
    };
    // One process doing everything (like lightd and lighttpd), so its CPU is the worker's.
    // Every path nginx writes to is in the temp dir, so it runs as root without touching /var.
    let text = format!(
        "worker_processes 1;\n\
         daemon off;\n\
         master_process off;\n\
         error_log stderr;\n\
         pid {p}/nginx.pid;\n\
         worker_rlimit_nofile {MAX_FDS};\n\
         events {{ worker_connections {MAX_CONNS}; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   keepalive_timeout {KEEP_ALIVE_IDLE_SECS}s;\n\
         \x20   keepalive_requests {KEEP_ALIVE_REQUESTS};\n\
         \x20   default_type application/octet-stream;\n\
         \x20   client_body_temp_path {p}/client_body;\n\
         \x20   proxy_temp_path {p}/proxy;\n\
         \x20   fastcgi_temp_path {p}/fastcgi;\n\
         \x20   uwsgi_temp_path {p}/uwsgi;\n\
         \x20   scgi_temp_path {p}/scgi;\n\
         {upstream}\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       root {root};\n\
         {location}\
         \x20   }}\n\
         }}\n",
        root = quoted(docroot),
    );
    write_config(&cfg, &text)?;
    let mut cmd = command(prog, place.server_cpu, place.taskset.as_deref());
    // -e: the error log nginx opens before it has read the config (else /var/log/nginx).
    cmd.arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg("stderr")
        .arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn_server("nginx", cmd, Some(port), None)
}

/// Spawn a server and wait until it accepts connections. `port` None: learn it from lightd's
/// `listening on ADDR` line.
fn spawn_server(
    name: &'static str,
    mut cmd: Command,
    port: Option<u16>,
    errorlog: Option<PathBuf>,
) -> Result<Server, String> {
    let mut child = cmd.spawn().map_err(|e| format!("spawning {name}: {e}"))?;
    let stderr = match child.stderr.take() {
        Some(e) => Capture::spawn(e),
        None => Capture::empty(),
    };
    let mut server = Server {
        name,
        child,
        port: port.unwrap_or(0),
        stderr,
        errorlog,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if server.port == 0 {
            if let Some(p) = listening_port(&server.stderr.text()) {
                server.port = p;
            }
        }
        if server.port != 0
            && TcpStream::connect_timeout(&server.addr(), Duration::from_millis(500)).is_ok()
        {
            return Ok(server);
        }
        if let Ok(Some(st)) = server.child.try_wait() {
            return Err(format!("exited ({st}){}", server.diagnostics()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not accepting connections within {START_TIMEOUT:?}{}",
                server.diagnostics()
            ));
        }
        thread::sleep(POLL);
    }
}

/// The port of the first `listening on 127.0.0.1:PORT` in lightd's log.
fn listening_port(log: &str) -> Option<u16> {
    const NEEDLE: &str = "listening on ";
    let at = log.find(NEEDLE)? + NEEDLE.len();
    let word = log.get(at..)?.split_whitespace().next()?;
    let addr: SocketAddr = word.trim_end_matches(['.', ',']).parse().ok()?;
    Some(addr.port())
}

// ---------------------------------------------------------------------------------------------
// The check: two requests on one keep-alive connection, status and body compared
// ---------------------------------------------------------------------------------------------

struct Expect<'a> {
    body: &'a [u8],
    what: &'a str,
}

/// GET `path` twice on one keep-alive connection: the server answers 200 with the expected
/// body, framed by Content-Length or chunked, and keeps the connection (wrk's clients do).
fn check_serves(server: &Server, path: &str, want: &Expect) -> Result<(), String> {
    let conn = TcpStream::connect_timeout(&server.addr(), IO_TIMEOUT)
        .map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| format!("socket options: {e}"))?;
    let mut c = Client {
        conn,
        buf: Vec::new(),
        pos: 0,
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    for n in 1..=2 {
        c.conn
            .write_all(req.as_bytes())
            .map_err(|e| format!("request {n}: sending: {e}"))?;
        let (status, body) = c.response().map_err(|e| format!("request {n}: {e}"))?;
        if status != 200 || body != want.body {
            return Err(format!(
                "request {n}: status {status} with {} body bytes ({:?}), expected 200 with {}",
                body.len(),
                tail(&String::from_utf8_lossy(&body), 80),
                want.what
            ));
        }
    }
    Ok(())
}

/// A minimal HTTP/1.1 response reader over one connection; everything it holds is bounded by
/// MAX_RESPONSE.
struct Client {
    conn: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Client {
    /// Read more bytes into the buffer; an error at end of stream or past MAX_RESPONSE.
    fn fill(&mut self) -> Result<(), String> {
        if self.buf.len() >= MAX_RESPONSE {
            return Err(format!("response longer than {MAX_RESPONSE} bytes"));
        }
        let mut chunk = [0u8; 8192];
        loop {
            match self.conn.read(&mut chunk) {
                Ok(0) => return Err("connection closed mid-response".to_string()),
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }

    /// The next line (without CRLF) from `pos`, reading as needed.
    fn line(&mut self) -> Result<String, String> {
        loop {
            let rest = self.buf.get(self.pos..).unwrap_or_default();
            if let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(rest.get(..at).unwrap_or_default()).into_owned();
                self.pos += at + 2;
                return Ok(line);
            }
            self.fill()?;
        }
    }

    /// Exactly `n` bytes from `pos`, reading as needed.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, String> {
        if n > MAX_RESPONSE {
            return Err(format!("a body part of {n} bytes"));
        }
        while self.buf.len() - self.pos < n {
            self.fill()?;
        }
        let out = self
            .buf
            .get(self.pos..self.pos + n)
            .map(<[u8]>::to_vec)
            .ok_or("buffer shorter than read")?;
        self.pos += n;
        Ok(out)
    }

    /// One response: its status and decoded body. What follows it stays buffered.
    fn response(&mut self) -> Result<(u16, Vec<u8>), String> {
        let status_line = self.line()?;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|l| l.get(..3))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line {:?}", tail(&status_line, 100)))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut closes = false;
        // Each line read consumes buffer, which is bounded: so is this loop.
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                return Err(format!("bad header line {:?}", tail(&l, 100)));
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                length = Some(v.parse().map_err(|_| format!("Content-Length {v:?}"))?);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                closes = v.eq_ignore_ascii_case("close");
            }
        }
        if closes {
            return Err("the server closes the connection (Connection: close)".to_string());
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let size_line = self.line()?;
                let hex = size_line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad chunk size {:?}", tail(&size_line, 40)))?;
                if size == 0 {
                    // Trailer fields, if any, up to the empty line.
                    while !self.line()?.is_empty() {}
                    break body;
                }
                if body.len() + size > MAX_RESPONSE {
                    return Err(format!("chunked body longer than {MAX_RESPONSE} bytes"));
                }
                body.extend(self.take(size)?);
                if !self.line()?.is_empty() {
                    return Err("no CRLF after a chunk".to_string());
                }
            }
        } else {
            let n = length.ok_or("neither Content-Length nor chunked on a keep-alive response")?;
            self.take(n)?
        };
        // Drop what was consumed, so the buffer's bound applies per response.
        self.buf.drain(..self.pos);
        self.pos = 0;
        Ok((status, body))
    }
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// The median of a non-empty list (NaN-free figures); None when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

/// A column-aligned table: the first column left-aligned, the others right.
fn print_table(title: &str, rows: &[Vec<String>]) {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    println!("== {title} ==");
    for row in rows {
        let mut line = String::new();
        for (c, w) in widths.iter().enumerate() {
            let cell = row.get(c).map_or("", String::as_str);
            if c == 0 {
                let _ = write!(line, "{cell:<w$}");
            } else {
                let _ = write!(line, "  {cell:>w$}");
            }
        }
        println!("{}", line.trim_end());
    }
}

/// A header row: servers, then lightd/each peer, then lightd/best peer when there are two
/// peers or more.
fn header(first: &str, names: &[&str]) -> Vec<String> {
    let mut h = vec![first.to_string()];
    h.extend(names.iter().map(|n| n.to_string()));
    if names.first() == Some(&"lightd") {
        h.extend(names.iter().skip(1).map(|n| format!("lightd/{n}")));
        if names.len() > 2 {
            h.push("lightd/best peer".to_string());
        }
    }
    h
}

/// A row of one figure per server, with lightd's ratios to each peer and to the best peer
/// (`lower_better`: the lowest figure is the best).
fn figure_row(
    label: &str,
    names: &[&str],
    vals: &[Option<f64>],
    decimals: usize,
    lower_better: bool,
) -> Vec<String> {
    let mut row = vec![label.to_string()];
    row.extend(vals.iter().map(|v| match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".to_string(),
    }));
    if names.first() == Some(&"lightd") {
        let lightd = vals.first().copied().flatten();
        let ratio = |o: Option<f64>| match (lightd, o) {
            (Some(l), Some(o)) if o > 0.0 => format!("{:.2}", l / o),
            _ => "-".to_string(),
        };
        let peers: Vec<f64> = vals.iter().skip(1).filter_map(|v| *v).collect();
        row.extend(vals.iter().skip(1).map(|v| ratio(*v)));
        if names.len() > 2 {
            let best = if lower_better {
                peers.into_iter().reduce(f64::min)
            } else {
                peers.into_iter().reduce(f64::max)
            };
            row.push(ratio(best));
        }
    }
    row
}

fn print_tables(names: &[&str], cells: &[Vec<Cell>], secs: u64, rounds: usize) {
    let med = |w: usize, f: fn(&Round) -> f64| -> Vec<Option<f64>> {
        cells
            .get(w)
            .map(|row| {
                row.iter()
                    .map(|c| {
                        c.as_ref()
                            .ok()
                            .and_then(|r| median(r.iter().map(f).collect()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    println!();
    println!(
        "Server CPU per request: the server process's run time over wrk's completed requests, \
         median of {rounds} rounds."
    );
    println!("Ratios are lightd/other: below 1 means lightd spends less CPU per request.");
    let mut rows = vec![header("server CPU per request (us)", names)];
    for (w, wl) in WORKLOADS.iter().enumerate() {
        rows.push(figure_row(
            wl.title,
            names,
            &med(w, |r| r.us_per_req),
            2,
            true,
        ));
    }
    print_table(
        &format!("Backends: wrk -t1 -c{CONNS} -d{secs}s keep-alive, server on its own CPU"),
        &rows,
    );
    println!();
    let mut rows = vec![header("requests/s (for information)", names)];
    for (w, wl) in WORKLOADS.iter().enumerate() {
        rows.push(figure_row(
            wl.title,
            names,
            &med(w, |r| r.load.req_per_s),
            0,
            false,
        ));
    }
    print_table(
        "Throughput, median round (wrk and the backends share a CPU: req/s measures them too)",
        &rows,
    );

    // Per workload: every round, so the spread is visible, and how busy things were.
    for (w, wl) in WORKLOADS.iter().enumerate() {
        let Some(row) = cells.get(w) else {
            continue;
        };
        println!();
        let mut rows = vec![{
            let mut h = vec![String::new()];
            h.extend(names.iter().map(|n| n.to_string()));
            h
        }];
        let list = |f: &dyn Fn(&Round) -> String| -> Vec<String> {
            row.iter()
                .map(|c| match c {
                    Ok(r) if !r.is_empty() => r.iter().map(f).collect::<Vec<_>>().join(" "),
                    Ok(_) => "-".to_string(),
                    Err(_) => "not measured".to_string(),
                })
                .collect()
        };
        let mut add = |label: &str, cells: Vec<String>| {
            let mut r = vec![label.to_string()];
            r.extend(cells);
            rows.push(r);
        };
        add(
            "server CPU per request, each round (us)",
            list(&|r| format!("{:.2}", r.us_per_req)),
        );
        add(
            "  of which kernel + user (us)",
            list(&|r| match r.kernel_us_per_req {
                Some(k) => format!("{:.0}+{:.0}", k, r.us_per_req - k),
                None => "?".to_string(),
            }),
        );
        add(
            "requests/s, each round",
            list(&|r| format!("{:.0}", r.load.req_per_s)),
        );
        add(
            "server CPU busy (%)",
            list(&|r| format!("{:.0}", r.server_busy_pct)),
        );
        add(
            "server's CPU busy with other work (%)",
            list(&|r| r.others_busy_pct.map_or("?".into(), |v| format!("{v:.0}"))),
        );
        if wl.kind == Kind::Proxy {
            add(
                "TCP accepts per request, machine-wide",
                list(&|r| {
                    r.passive_opens_per_req
                        .map_or("?".into(), |v| format!("{v:.3}"))
                }),
            );
        }
        add(
            "latency, mean (ms)",
            list(&|r| format!("{:.2}", r.load.latency_ms)),
        );
        add(
            "socket errors c/r/w/t; non-2xx/3xx",
            list(&|r| format!("{};{}", r.load.errors_text(), r.load.non_2xx_3xx)),
        );
        print_table(&format!("{} (GET {}), per round", wl.title, wl.path), &rows);
        if wl.kind == Kind::Proxy {
            println!(
                "  TCP accepts: /proc/net/snmp PassiveOpens over wrk's requests, about 1 for a \
                 server that connects upstream per request"
            );
            println!(
                "  (lighttpd's mod_proxy sends Connection: close upstream; nginx keeps \
                 `keepalive {NGINX_KEEPALIVE}` idle upstream connections; lightd its own pool)."
            );
        }
        for (c, n) in row.iter().zip(names) {
            if let Err(e) = c {
                println!("  {n}: {e}");
            }
        }
    }
}
