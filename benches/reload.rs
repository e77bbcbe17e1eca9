//! What clients see while a server reloads under load: `cargo bench --bench reload`.
//!
//! Each run starts a fresh server, runs wrk (`-t1 -c32`, a 1 KiB file, pinned to its own CPU)
//! for N+2 seconds and reloads the server at 1 s, 2 s, ... N s, each reload starting once the
//! previous one has finished. Two load shapes: 32 keep-alive connections (what an in-flight
//! request on an old generation meets) and `Connection: close` (a connection per request: what a
//! closed or not yet open listening socket meets). For every server, method and shape it prints
//! the requests served, the failed ones (wrk's socket errors connect/read/write/timeout, plus
//! responses other than 2xx/3xx) and the slowest response wrk saw.
//!
//! Methods: lightd SIGUSR1, takeover (a second `lightd -f`) and `rc/lightd reload`; lighttpd
//! SIGINT followed by a new lighttpd, and SIGUSR1 (with and without
//! server.graceful-restart-bg); nginx HUP and the binary upgrade (USR2, WINCH, QUIT); h2o HUP
//! (its master mode). A baseline run without reloads shows what the figures look like when
//! nothing happens.
//!
//! Environment: LIGHTD_RELOAD_N (reloads per run, default 5) and LIGHTD_RELOAD_SERVERS (a
//! comma-separated subset of lightd,lighttpd,nginx,h2o; default all that are installed).
//!
//! Servers that daemonize or re-execute themselves leave the process tree we spawned, so this
//! process makes itself a child subreaper: every generation, however it was started, ends up our
//! child. Generations are tracked by pid (from spawn, the pid file, or /proc), stopped by pid
//! after checking the pid still runs the server's binary, and reaped by us. Every wait has a
//! deadline. The exit status is 0 whatever the figures (1 only for a bad environment variable or
//! no temporary directory); lightd's failed requests are printed last, on a line of their own.

mod common;

use common::{
    command, env_number, find_program, free_port, h2o_config, nginx_http_block, pattern, proc_stat,
    quoted, run_bounded, run_wrk, setup, tail, version_of, wait_until, write_config, Capture, Load,
    Placement, TempDir, BIN, IO_TIMEOUT, KEEP_ALIVE_IDLE_SECS, KEEP_ALIVE_REQUESTS, START_TIMEOUT,
    STOP_TIMEOUT,
};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// What an h2o worker logs once it serves; in master mode, the sign that a HUP has taken.
const H2O_READY: &str = "is ready to serve requests";
/// The contract gives a new lightd generation 30 s to report READY; a little more, so a slow
/// reload is reported as slow rather than as a timeout of ours.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(35);
/// How long old generations get, once the load has stopped, to finish draining by themselves
/// before they count as left behind.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// Connections wrk keeps open, as the brief for this benchmark asks.
const CONNS: u32 = 32;
const FILE: &str = "1k.bin";
/// The init script under test, from this checkout.
const RC_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rc/lightd");

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let n = u32::try_from(env_number("LIGHTD_RELOAD_N", 5)?)
        .map_err(|_| "LIGHTD_RELOAD_N: too large".to_string())?;
    let only = std::env::var("LIGHTD_RELOAD_SERVERS").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .map_or(true, |list| list.split(',').any(|s| s.trim() == name))
    };

    // Orphaned generations (daemonized, re-executed, or outliving their parent) must come to us
    // so that we can see them exit and reap them: in a container, pid 1 often reaps nobody.
    // SAFETY: prctl with integer arguments only.
    let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;

    let place = setup("lightd reload benchmark");
    if !subreaper {
        println!("  note: PR_SET_CHILD_SUBREAPER failed; daemonized generations are watched through /proc only");
    }
    let Some(wrk) = find_program("wrk") else {
        println!("  wrk not found: apt-get install wrk. Nothing measured.");
        println!();
        println!("lightd: not measured (no wrk)");
        return Ok(());
    };
    let secs = u64::from(n) + 2;
    println!(
        "  load:           {} ({}): -t1 -c{CONNS} -d{secs}s on /{FILE}, keep-alive and \"Connection: close\"",
        wrk.display(),
        version_of(&wrk, "-v")
    );
    println!("  reloads:        {n} per run (LIGHTD_RELOAD_N), at 1 s, 2 s, ... after wrk starts");
    // Two CPUs shared with anything else (builds, tests, fuzzers) make every figure noisier.
    println!("  load average:   {} at the start", loadavg());

    let dir = TempDir::new()?;
    let docroot = dir.path.join("www");
    fs::create_dir_all(&docroot).map_err(|e| format!("creating {}: {e}", docroot.display()))?;
    let file = docroot.join(FILE);
    fs::write(&file, pattern(1024)).map_err(|e| format!("writing {}: {e}", file.display()))?;
    common::backdate(&file)?;
    let env = Env {
        place,
        wrk,
        dir: dir.path.clone(),
        docroot,
        n,
        secs,
        runs: std::cell::Cell::new(0),
    };

    let mut rows: Vec<Row> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for kind in [Kind::Lightd, Kind::Lighttpd, Kind::Nginx, Kind::H2o] {
        if !wanted(kind.name()) {
            skipped.push(format!("{}: not in LIGHTD_RELOAD_SERVERS", kind.name()));
            continue;
        }
        let prog = match kind {
            Kind::Lightd => PathBuf::from(BIN),
            Kind::Lighttpd | Kind::Nginx | Kind::H2o => match find_program(kind.name()) {
                Some(p) => p,
                None => {
                    skipped.push(format!("{}: not installed, not compared", kind.name()));
                    continue;
                }
            },
        };
        let exe = fs::canonicalize(&prog).unwrap_or_else(|_| prog.clone());
        if kind != Kind::Lightd {
            println!(
                "  {:<15} {} ({})",
                format!("{}:", kind.name()),
                prog.display(),
                version_of(&prog, "-v")
            );
        }
        for &method in kind.methods() {
            for shape in [Shape::KeepAlive, Shape::Close] {
                eprintln!(
                    "bench: {} / {} / {}",
                    kind.name(),
                    method.label(),
                    shape.label()
                );
                rows.push(measure(&env, kind, &prog, &exe, method, shape));
            }
        }
    }

    println!();
    println!(
        "Methods (\"slowest reload\": the longest a trigger took to a new generation serving):"
    );
    let w = LEGEND.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    for (method, what) in LEGEND {
        println!("  {method:<w$}  {what}");
    }
    println!();
    print_table(&rows, n, secs);
    println!(
        "failed: wrk's socket errors plus responses other than 2xx/3xx. wrk counts a refused \
         connection (nothing listening) as a write error, since its non-blocking connect fails \
         at the first write; a timeout is a request still unanswered after 2 s."
    );
    println!(
        "max latency: wrk's slowest response; reload times are polled every {} ms.",
        common::POLL.as_millis()
    );
    println!("load average: {} at the end", loadavg());
    println!();
    for s in &skipped {
        println!("{s}");
    }
    let mut any_note = false;
    for r in &rows {
        for note in &r.notes {
            if !any_note {
                println!("Notes:");
                any_note = true;
            }
            println!(
                "  {} / {} / {}: {}",
                r.kind.name(),
                r.method.label(),
                r.shape.label(),
                note
            );
        }
    }
    if any_note {
        println!();
    }
    print_lightd_summary(&rows);
    Ok(())
}

/// What every run needs.
struct Env {
    place: Placement,
    wrk: PathBuf,
    dir: PathBuf,
    docroot: PathBuf,
    n: u32,
    secs: u64,
    /// Runs so far: each gets its own directory (configs, pid files, logs).
    runs: std::cell::Cell<u32>,
}

impl Env {
    fn run_dir(&self, kind: Kind) -> Result<PathBuf, String> {
        let k = self.runs.get() + 1;
        self.runs.set(k);
        let d = self.dir.join(format!("run{k:02}-{}", kind.name()));
        fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        Ok(d)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lightd,
    Lighttpd,
    Nginx,
    H2o,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lightd => "lightd",
            Kind::Lighttpd => "lighttpd",
            Kind::Nginx => "nginx",
            Kind::H2o => "h2o",
        }
    }

    fn methods(self) -> &'static [Method] {
        match self {
            Kind::Lightd => &[Method::None, Method::Usr1, Method::Takeover, Method::Rc],
            Kind::Lighttpd => &[
                Method::None,
                Method::IntStart,
                Method::LighttpdUsr1,
                Method::LighttpdUsr1Bg,
            ],
            Kind::Nginx => &[Method::None, Method::Hup, Method::Upgrade],
            Kind::H2o => &[Method::None, Method::H2oHup],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    None,
    Usr1,
    Takeover,
    Rc,
    IntStart,
    LighttpdUsr1,
    LighttpdUsr1Bg,
    Hup,
    Upgrade,
    H2oHup,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::None => "none (baseline)",
            Method::Usr1 | Method::LighttpdUsr1 => "SIGUSR1",
            Method::Takeover => "takeover",
            Method::Rc => "rc script",
            Method::IntStart => "SIGINT + start",
            Method::LighttpdUsr1Bg => "SIGUSR1 restart-bg",
            Method::Hup | Method::H2oHup => "HUP",
            Method::Upgrade => "USR2+WINCH+QUIT",
        }
    }
}

/// What each method does, and when its reload counts as done.
const LEGEND: [(&str, &str); 10] = [
    (
        "none (baseline)",
        "no reload: the same run with nothing happening",
    ),
    (
        "lightd SIGUSR1",
        "kill -USR1 <pid in the pid file> (in place: the pid stays); done when its log says \
         \"reload: this image is ready\"",
    ),
    (
        "lightd takeover",
        "lightd -f cfg (no -D) while the old one runs; done when it exits 0",
    ),
    (
        "lightd rc script",
        "sh rc/lightd reload with DAEMON, CONF, PIDFILE, LIGHTD_DEFAULTS=/nonexistent; done when \
         it exits 0",
    ),
    (
        "lighttpd SIGINT + start",
        "SIGINT the old one, start lighttpd -D at once (again if it exits) until one logs \
         \"server started\"",
    ),
    (
        "lighttpd SIGUSR1",
        "lighttpd's graceful restart; done when its log says \"server started\" again",
    ),
    (
        "lighttpd SIGUSR1 restart-bg",
        "the same, with server.feature-flags += server.graceful-restart-bg",
    ),
    (
        "nginx HUP",
        "master_process on, daemon off; done when the master has a new worker",
    ),
    (
        "nginx USR2+WINCH+QUIT",
        "binary upgrade, daemon on (nginx ignores USR2 while its parent is the process that \
         started it); done when the new master has a worker, then WINCH and QUIT the old one",
    ),
    (
        "h2o HUP",
        "h2o -m master (Server::Starter's start_server keeps the socket); done when the new worker \
         logs \"ready to serve requests\"; start_server TERMs the old worker 1 s after starting it",
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    KeepAlive,
    Close,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::KeepAlive => "keep-alive",
            Shape::Close => "Connection: close",
        }
    }
}

/// One line of the table.
struct Row {
    kind: Kind,
    method: Method,
    shape: Shape,
    load: Result<Load, String>,
    reloads_done: u32,
    reloads_tried: u32,
    slowest_reload: Option<Duration>,
    notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// One run: start, load, reloads, stop
// ---------------------------------------------------------------------------------------------

fn measure(env: &Env, kind: Kind, prog: &Path, exe: &Path, method: Method, shape: Shape) -> Row {
    let mut row = Row {
        kind,
        method,
        shape,
        load: Err("not run".to_string()),
        reloads_done: 0,
        reloads_tried: 0,
        slowest_reload: None,
        notes: Vec::new(),
    };
    let mut inst = match start(env, kind, prog, exe, method) {
        Ok(i) => i,
        Err(e) => {
            row.load = Err(format!("did not start: {e}"));
            return row;
        }
    };
    if let Err(e) = get_ok(inst.port) {
        row.load = Err(format!("does not serve /{FILE}: {e}{}", inst.diagnostics()));
        row.notes.extend(inst.shutdown());
        return row;
    }

    let url = format!("http://127.0.0.1:{}/{FILE}", inst.port);
    let close = shape == Shape::Close;
    let mut errors: Vec<String> = Vec::new();
    let load = thread::scope(|s| {
        // The thread lives until wrk has exited, which the kernel's parent-death signal on wrk
        // (tied to the spawning thread) requires.
        let (prog, place, url, secs) = (&env.wrk, &env.place, &url, env.secs);
        let wrk = s.spawn(move || run_wrk(prog, place, url, CONNS, secs, close));
        let t0 = Instant::now();
        if method != Method::None {
            for i in 0..env.n {
                let at = t0 + Duration::from_secs(u64::from(i) + 1);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                row.reloads_tried += 1;
                let t = Instant::now();
                match reload(&mut inst, method, &env.place) {
                    Ok(took) => {
                        row.reloads_done += 1;
                        row.slowest_reload = row.slowest_reload.max(Some(took));
                    }
                    Err(e) => {
                        errors.push(format!("reload {}: {e}", i + 1));
                        // Later reloads would have nothing to reload, or only repeat the wait.
                        if !inst.running() {
                            errors.push("no generation is running; reloads stopped".to_string());
                            break;
                        }
                        if t.elapsed() >= RELOAD_TIMEOUT {
                            errors.push("reloads stopped after a timeout".to_string());
                            break;
                        }
                    }
                }
            }
            if t0.elapsed() > Duration::from_secs(env.secs) {
                errors.push(format!(
                    "the reloads outlasted the {}-second load run",
                    env.secs
                ));
            }
        }
        wrk.join()
            .unwrap_or_else(|_| Err("the wrk thread panicked".to_string()))
    });
    row.load = load;
    // What lighttpd's SIGUSR1 does is part of the answer, not only what wrk saw.
    if matches!(method, Method::LighttpdUsr1 | Method::LighttpdUsr1Bg) && row.reloads_done > 0 {
        if let Some(p) = inst.current.filter(|&p| !reap(p)) {
            row.notes.push(format!(
                "pid {p} served before and after every SIGUSR1: lighttpd restarts inside the \
                 same process"
            ));
        }
        let bg = count_lines(&inst.errorlog, "continuing to handle");
        if bg > 0 {
            row.notes.push(format!(
                "{bg} restart(s) left the connections in progress to a forked child \
                 (\"pid N continuing to handle N connection(s) in progress\")"
            ));
        }
    }
    if !inst.bind_attempts.is_empty() {
        let list: Vec<String> = inst.bind_attempts.iter().map(u32::to_string).collect();
        row.notes.push(format!(
            "lighttpd processes started per reload until one bound the port: {}",
            list.join(", ")
        ));
    }
    if !errors.is_empty() {
        errors.push(format!("tail of the server's logs:{}", inst.diagnostics()));
    }
    row.notes.extend(errors);
    row.notes.extend(inst.shutdown());
    row
}

/// A running server: the generation in charge and the ones that should be on their way out.
struct Instance {
    port: u16,
    cfg: PathBuf,
    /// lightd's server.pid-file, nginx's pid file.
    pidfile: Option<PathBuf>,
    errorlog: PathBuf,
    /// The server's binary, canonical: a pid is only signalled while it runs this.
    exe: PathBuf,
    /// What the generations we signal and stop (`current`, `old`) run: `exe`, except for h2o's
    /// master, which is its Perl start_server.
    master_exe: PathBuf,
    prog: PathBuf,
    current: Option<u32>,
    old: Vec<u32>,
    /// stderr of the processes we spawned (later generations inherit it, or write to the log).
    stderr: Vec<Capture>,
    /// lighttpd's "SIGINT + start": how many lighttpd it took, per reload, to bind the port.
    bind_attempts: Vec<u32>,
}

impl Instance {
    fn running(&self) -> bool {
        self.current.is_some_and(|p| !reap(p))
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        for c in &self.stderr {
            let t = c.text();
            if !t.trim().is_empty() {
                let _ = write!(out, "\n      stderr: {}", tail(&t, 600));
            }
        }
        if let Ok(log) = fs::read_to_string(&self.errorlog) {
            if !log.trim().is_empty() {
                let _ = write!(out, "\n      error log: {}", tail(&log, 600));
            }
        }
        out
    }

    fn pid_from_file(&self) -> Option<u32> {
        read_pid(self.pidfile.as_deref()?)
    }

    /// Stop every generation, let old ones finish first, and say what was not as it should be.
    /// Idempotent, so Drop can call it again.
    fn shutdown(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        let exe = self.exe.clone();
        // Old generations should be gone by now: the load has stopped, so draining is quick.
        if !wait_until(DRAIN_WAIT, || self.old.iter().all(|&p| reap(p))) {
            let left: Vec<String> = self
                .old
                .iter()
                .filter(|&&p| !reap(p))
                .map(u32::to_string)
                .collect();
            notes.push(format!(
                "old generation(s) still running {}s after the load ended: pid {}",
                DRAIN_WAIT.as_secs(),
                left.join(", ")
            ));
        }
        let mut pids: Vec<u32> = self.current.take().into_iter().collect();
        pids.append(&mut self.old);
        for p in pids {
            if let Some(n) = stop_pid(p, &self.master_exe) {
                notes.push(n);
            }
        }
        // Whatever else runs our binary and is our child: a generation that never made it into
        // the pid file, workers or background drainers whose parent we just stopped.
        for _ in 0..3 {
            let strays: Vec<u32> = children_of(std::process::id())
                .into_iter()
                .filter(|&p| is_server(p, &exe))
                .collect();
            if strays.is_empty() {
                break;
            }
            for p in strays {
                notes.push(format!("stopped stray process {p} ({})", comm(p)));
                if let Some(n) = stop_pid(p, &exe) {
                    notes.push(n);
                }
            }
        }
        reap_zombies(&exe);
        // h2o's masters, and its workers' crash handlers (Perl too), orphaned to us as they
        // exit. Nothing else of ours runs Perl.
        if self.master_exe != exe {
            reap_zombies(&self.master_exe);
        }
        notes
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// Starting the servers
// ---------------------------------------------------------------------------------------------

fn start(
    env: &Env,
    kind: Kind,
    prog: &Path,
    exe: &Path,
    method: Method,
) -> Result<Instance, String> {
    let dir = env.run_dir(kind)?;
    let port = free_port()?;
    let mut inst = Instance {
        port,
        cfg: dir.join(format!("{}.conf", kind.name())),
        pidfile: None,
        errorlog: dir.join("error.log"),
        exe: exe.to_path_buf(),
        master_exe: exe.to_path_buf(),
        prog: prog.to_path_buf(),
        current: None,
        old: Vec::new(),
        stderr: Vec::new(),
        bind_attempts: Vec::new(),
    };
    let root = quoted(&env.docroot);
    let log = quoted(&inst.errorlog);
    match kind {
        Kind::Lightd => {
            let pidfile = dir.join("lightd.pid");
            write_config(
                &inst.cfg,
                &format!(
                    "server.document-root = {root}\n\
                     server.bind = \"127.0.0.1\"\n\
                     server.port = {port}\n\
                     server.pid-file = {pid}\n\
                     server.errorlog = {log}\n\
                     server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
                     server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
                     mimetype.assign = ( \".bin\" => \"application/octet-stream\" )\n",
                    pid = quoted(&pidfile),
                ),
            )?;
            inst.pidfile = Some(pidfile);
            let mut cmd = server_command(prog, &env.place);
            cmd.arg("-D").arg("-f").arg(&inst.cfg);
            let pid = spawn_generation(&mut inst, cmd)?;
            wait_serving(&inst, pid)?;
            // Reloads find the running generation through the pid file, as an admin would.
            if !wait_until(START_TIMEOUT, || inst.pid_from_file() == Some(pid)) {
                return Err(format!(
                    "serving, but the pid file does not name pid {pid}{}",
                    inst.diagnostics()
                ));
            }
        }
        Kind::Lighttpd => {
            // mod_indexfile, mod_dirlisting and mod_staticfile only; no access log.
            let bg = if method == Method::LighttpdUsr1Bg {
                "server.feature-flags = ( \"server.graceful-restart-bg\" => \"enable\" )\n"
            } else {
                ""
            };
            write_config(
                &inst.cfg,
                &format!(
                    "server.document-root = {root}\n\
                     server.bind = \"127.0.0.1\"\n\
                     server.port = {port}\n\
                     server.errorlog = {log}\n\
                     server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
                     server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
                     mimetype.assign = ( \".bin\" => \"application/octet-stream\" )\n\
                     {bg}"
                ),
            )?;
            let mut cmd = server_command(prog, &env.place);
            cmd.arg("-D").arg("-f").arg(&inst.cfg);
            let pid = spawn_generation(&mut inst, cmd)?;
            wait_serving(&inst, pid)?;
        }
        Kind::Nginx => {
            let prefix = dir.join("nginx");
            fs::create_dir_all(&prefix)
                .map_err(|e| format!("creating {}: {e}", prefix.display()))?;
            let pidfile = prefix.join("nginx.pid");
            // The binary upgrade needs a master whose parent is not the process that started
            // it (nginx takes that for "a new binary whose old master still runs" and ignores
            // USR2): daemon on. HUP is measured the way a supervisor runs nginx: daemon off.
            let daemon = if method == Method::Upgrade {
                "on"
            } else {
                "off"
            };
            write_config(
                &inst.cfg,
                &format!(
                    "worker_processes 1;\n\
                     master_process on;\n\
                     daemon {daemon};\n\
                     error_log {log} notice;\n\
                     pid {pid};\n\
                     events {{ worker_connections 1024; }}\n\
                     {http}",
                    pid = quoted(&pidfile),
                    http = nginx_http_block(&prefix, port, &env.docroot),
                ),
            )?;
            inst.pidfile = Some(pidfile);
            let mut cmd = server_command(prog, &env.place);
            // -e: the log nginx opens before it has read the config.
            cmd.arg("-p")
                .arg(&prefix)
                .arg("-e")
                .arg(&inst.errorlog)
                .arg("-c")
                .arg(&inst.cfg);
            let master = if method == Method::Upgrade {
                let out = run_bounded(cmd, START_TIMEOUT)?;
                if !out.status.success() {
                    return Err(format!(
                        "nginx exited {}: {}{}",
                        out.status,
                        out.stderr.trim(),
                        inst.diagnostics()
                    ));
                }
                let found = wait_until(START_TIMEOUT, || {
                    inst.pid_from_file().is_some_and(|p| is_server(p, exe))
                });
                match inst.pid_from_file() {
                    Some(p) if found => {
                        born(p);
                        inst.current = Some(p);
                        p
                    }
                    _ => {
                        return Err(format!(
                            "no nginx master in the pid file{}",
                            inst.diagnostics()
                        ))
                    }
                }
            } else {
                spawn_generation(&mut inst, cmd)?
            };
            wait_serving(&inst, master)?;
            if !wait_until(START_TIMEOUT, || !workers(master, exe).is_empty()) {
                return Err(format!(
                    "master {master} has no worker{}",
                    inst.diagnostics()
                ));
            }
        }
        Kind::H2o => {
            // Graceful restart needs -m master: h2o execs its start_server, a Perl script
            // (Server::Starter) that holds the listening socket and runs h2o workers, so the pid
            // we spawn ends up running perl. Every h2o run uses it, the baseline included.
            let perl = find_program("perl")
                .ok_or("perl not found (h2o's master mode is a Perl script)")?;
            inst.master_exe = fs::canonicalize(&perl).unwrap_or(perl);
            let extra = format!("error-log: {log}\n");
            write_config(&inst.cfg, &h2o_config(port, &env.docroot, 1024, &extra))?;
            let mut cmd = server_command(prog, &env.place);
            // start_server runs ${H2O_PERL:-perl}: the perl found above.
            cmd.env_remove("H2O_PERL")
                .arg("-m")
                .arg("master")
                .arg("-c")
                .arg(&inst.cfg);
            let master = spawn_generation(&mut inst, cmd)?;
            // start_server listens before any worker runs, so an accepted connection proves
            // nothing yet: wait for the worker's own line.
            let ready = wait_until(START_TIMEOUT, || {
                count_lines(&inst.errorlog, H2O_READY) > 0 || reap(master)
            });
            if !ready || reap(master) {
                return Err(format!(
                    "no h2o worker ready within {START_TIMEOUT:?}{}",
                    inst.diagnostics()
                ));
            }
            if !is_server(master, &inst.master_exe) {
                return Err(format!(
                    "pid {master} does not run {}{}",
                    inst.master_exe.display(),
                    inst.diagnostics()
                ));
            }
            wait_serving(&inst, master)?;
        }
    }
    Ok(inst)
}

/// A server command on the server CPU, with nothing inherited that would change how it starts:
/// no socket activation or readiness protocol of whoever runs the bench, no RUST_LOG.
fn server_command(prog: &Path, place: &Placement) -> Command {
    let mut cmd = command(prog, place.server_cpu, place.taskset.as_deref());
    for var in [
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "NOTIFY_SOCKET",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

/// Spawn a generation that stays our child; it becomes the one in charge.
fn spawn_generation(inst: &mut Instance, mut cmd: Command) -> Result<u32, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", inst.prog.display()))?;
    if let Some(e) = child.stderr.take() {
        inst.stderr.push(Capture::spawn(e));
    }
    let pid = child.id();
    born(pid);
    // From here on the pid is managed with waitpid like every other generation (some of which
    // we never spawned); std's Child neither kills nor reaps on drop.
    drop(child);
    if let Some(old) = inst.current.replace(pid) {
        inst.old.push(old);
    }
    Ok(pid)
}

fn wait_serving(inst: &Instance, pid: u32) -> Result<(), String> {
    let ok = wait_until(START_TIMEOUT, || accepts(inst.port) || reap(pid));
    if reap(pid) {
        return Err(format!(
            "pid {pid} exited during start-up{}",
            inst.diagnostics()
        ));
    }
    if !ok {
        return Err(format!(
            "port {} not accepting within {START_TIMEOUT:?}{}",
            inst.port,
            inst.diagnostics()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reloads
// ---------------------------------------------------------------------------------------------

/// Trigger one reload and wait until the new generation serves; how long that took.
fn reload(inst: &mut Instance, method: Method, place: &Placement) -> Result<Duration, String> {
    let old = inst.current.ok_or("no generation running")?;
    let t = Instant::now();
    match method {
        Method::None => Ok(Duration::ZERO),
        Method::Usr1 => {
            // In place: the pid stays, and its log says when the new image serves.
            signal_until_logged(inst, old, libc::SIGUSR1, &inst.exe, LIGHTD_READY)?;
            Ok(t.elapsed())
        }
        Method::Takeover => {
            let mut cmd = server_command(&inst.prog, place);
            cmd.arg("-f").arg(&inst.cfg);
            finish_command(cmd, "lightd -f")?;
            let next = successor_now(inst, old)?;
            inst.old.push(old);
            inst.current = Some(next);
            Ok(t.elapsed())
        }
        Method::Rc => {
            let pidfile = inst.pidfile.clone().ok_or("no pid file")?;
            // sh on the server CPU, so the lightd it starts lands there too.
            let mut cmd = server_command(Path::new("sh"), place);
            cmd.arg(RC_SCRIPT)
                .arg("reload")
                .env("DAEMON", BIN)
                .env("CONF", &inst.cfg)
                .env("PIDFILE", &pidfile)
                .env("LIGHTD_DEFAULTS", "/nonexistent");
            finish_command(cmd, "rc/lightd reload")?;
            let next = successor_now(inst, old)?;
            inst.old.push(old);
            inst.current = Some(next);
            Ok(t.elapsed())
        }
        Method::IntStart => lighttpd_restart(inst, old, place, t),
        Method::LighttpdUsr1 | Method::LighttpdUsr1Bg => {
            signal_until_logged(inst, old, libc::SIGUSR1, &inst.exe, "server started")?;
            Ok(t.elapsed())
        }
        Method::Hup => {
            let before = workers(old, &inst.exe);
            signal(old, libc::SIGHUP, &inst.exe)?;
            let done = wait_until(RELOAD_TIMEOUT, || {
                workers(old, &inst.exe).iter().any(|w| !before.contains(w)) || reap(old)
            });
            if reap(old) {
                return Err(format!("master {old} exited on HUP"));
            }
            if !done {
                return Err(format!("no new worker within {RELOAD_TIMEOUT:?} of HUP"));
            }
            Ok(t.elapsed())
        }
        Method::Upgrade => nginx_upgrade(inst, old, t),
        Method::H2oHup => {
            signal_until_logged(inst, old, libc::SIGHUP, &inst.master_exe, H2O_READY)?;
            Ok(t.elapsed())
        }
    }
}

/// Send `sig` to `pid` (running `exe`) and wait until the error log has one more line with
/// `needle`: for servers that reload without changing their pid.
fn signal_until_logged(
    inst: &Instance,
    pid: u32,
    sig: libc::c_int,
    exe: &Path,
    needle: &str,
) -> Result<(), String> {
    let before = count_lines(&inst.errorlog, needle);
    signal(pid, sig, exe)?;
    let done = wait_until(RELOAD_TIMEOUT, || {
        count_lines(&inst.errorlog, needle) > before || reap(pid)
    });
    if reap(pid) {
        return Err(format!("pid {pid} exited instead of reloading"));
    }
    if !done {
        return Err(format!(
            "no \"{needle}\" within {RELOAD_TIMEOUT:?} of the signal"
        ));
    }
    Ok(())
}

/// Run a reload command to completion; it must succeed.
fn finish_command(cmd: Command, what: &str) -> Result<(), String> {
    let out = run_bounded(cmd, RELOAD_TIMEOUT)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} exited {}: {}",
            out.status,
            tail(&format!("{}{}", out.stdout, out.stderr), 400)
        ))
    }
}

/// After a command that returns once the new generation serves: the pid file must name it.
fn successor_now(inst: &Instance, old: u32) -> Result<u32, String> {
    match inst.pid_from_file() {
        Some(p) if p != old && is_server(p, &inst.exe) => {
            born(p);
            Ok(p)
        }
        Some(p) if p == old => Err(format!("succeeded, but the pid file still names pid {old}")),
        Some(p) => Err(format!(
            "the pid file names pid {p}, which is not running lightd"
        )),
        None => Err("succeeded, but the pid file is missing or unreadable".to_string()),
    }
}

/// lighttpd's classic restart: SIGINT (graceful stop) to the old one, and start new ones until
/// one binds the port (it cannot while the old one still has its listening socket).
///
/// A new lighttpd that cannot bind exits at once; one that could logs "server started" when its
/// socket listens. (Looking for the listener in /proc/net/tcp instead is no good here: after a
/// `Connection: close` run the table holds tens of thousands of TIME_WAIT entries and takes
/// seconds to read.)
fn lighttpd_restart(
    inst: &mut Instance,
    old: u32,
    place: &Placement,
    t: Instant,
) -> Result<Duration, String> {
    let before = count_lines(&inst.errorlog, "server started");
    signal(old, libc::SIGINT, &inst.exe)?;
    inst.old.push(old);
    inst.current = None;
    let mut attempts = 0;
    while t.elapsed() < RELOAD_TIMEOUT {
        attempts += 1;
        let mut cmd = server_command(&inst.prog, place);
        cmd.arg("-D").arg("-f").arg(&inst.cfg);
        let pid = spawn_generation(inst, cmd)?;
        // Failed attempts pile up; the last few say enough.
        if inst.stderr.len() > 3 {
            inst.stderr.remove(0);
        }
        let log = inst.errorlog.clone();
        let left = RELOAD_TIMEOUT.saturating_sub(t.elapsed());
        wait_until(left, || {
            count_lines(&log, "server started") > before || reap(pid)
        });
        if !reap(pid) && count_lines(&log, "server started") > before {
            inst.bind_attempts.push(attempts);
            return Ok(t.elapsed());
        }
        inst.current = None;
        // Not a busy loop of forks on the CPU the old one is draining on.
        thread::sleep(Duration::from_millis(5));
    }
    Err(format!(
        "no new lighttpd started on port {} in {attempts} attempts over {RELOAD_TIMEOUT:?}",
        inst.port
    ))
}

/// nginx's binary upgrade with the same binary: USR2 starts a new master (which inherits the
/// listening sockets), WINCH retires the old workers gracefully, QUIT the old master.
fn nginx_upgrade(inst: &mut Instance, old: u32, t: Instant) -> Result<Duration, String> {
    let exe = inst.exe.clone();
    signal(old, libc::SIGUSR2, &exe)?;
    let ready = wait_until(RELOAD_TIMEOUT, || {
        inst.pid_from_file()
            .is_some_and(|p| p != old && is_server(p, &exe) && !workers(p, &exe).is_empty())
            || reap(old)
    });
    let new = match inst.pid_from_file() {
        Some(p) if ready && p != old && is_server(p, &exe) => {
            born(p);
            p
        }
        _ => {
            return Err(format!(
                "no new master with a worker within {RELOAD_TIMEOUT:?} of USR2"
            ))
        }
    };
    let took = t.elapsed();
    inst.current = Some(new);
    inst.old.push(old);
    signal(old, libc::SIGWINCH, &exe)?;
    // The new master is the old one's child too, and runs the same binary.
    if !wait_until(RELOAD_TIMEOUT, || {
        workers(old, &exe).iter().all(|&w| w == new)
    }) {
        return Err(format!("the old master {old} kept its workers after WINCH"));
    }
    signal(old, libc::SIGQUIT, &exe)?;
    if !wait_until(RELOAD_TIMEOUT, || reap(old)) {
        return Err(format!("the old master {old} did not exit on QUIT"));
    }
    Ok(took)
}

// ---------------------------------------------------------------------------------------------
// Processes, by pid
// ---------------------------------------------------------------------------------------------

/// Send `sig` to `pid` if it still runs the server's binary (never to a recycled pid).
fn signal(pid: u32, sig: libc::c_int, exe: &Path) -> Result<(), String> {
    if reap(pid) || !is_server(pid, exe) {
        return Err(format!("pid {pid} is no longer running {}", exe.display()));
    }
    let p = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    // SAFETY: kill(2) touches no memory of ours.
    if unsafe { libc::kill(p, sig) } != 0 {
        return Err(format!(
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Whether `pid` has exited, reaping it when it is our child (ours by spawn or, as subreaper,
/// by adoption). For a process that is not our child, /proc decides (a zombie counts as gone).
fn reap(pid: u32) -> bool {
    let mut gone = GONE.lock().unwrap_or_else(|e| e.into_inner());
    // Once gone, never waited for again: the pid may since belong to a child that std's
    // Command is waiting for (wrk, a reload command), which a waitpid of ours would rob.
    if gone.contains(&pid) {
        return true;
    }
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return true;
    };
    let mut status = 0;
    // SAFETY: waitpid writes only `status`.
    let r = unsafe { libc::waitpid(p, &mut status, libc::WNOHANG) };
    let exited = r == p || (r != 0 && !running(pid));
    if exited {
        gone.insert(pid);
    }
    exited
}

/// Pids seen to exit (and reaped, if ours).
static GONE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// `pid` names a new live generation: if an earlier one had the same pid, that one is history.
fn born(pid: u32) {
    GONE.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
}

/// /proc/PID/stat's state and parent.
fn stat_of(pid: u32) -> Option<(char, u32)> {
    let stat = proc_stat(pid)?;
    let state = stat.first()?.chars().next()?;
    let ppid = stat.get(1)?.parse().ok()?;
    Some((state, ppid))
}

fn running(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether `pid` runs `exe` (also once the file was replaced on disk by a rebuild).
fn is_server(pid: u32, exe: &Path) -> bool {
    let Ok(link) = fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let mut deleted = exe.as_os_str().to_owned();
    deleted.push(" (deleted)");
    link == exe || link.as_os_str() == deleted
}

/// Live children of `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            stat_of(p).is_some_and(|(state, ppid)| ppid == parent && state != 'Z' && state != 'X')
        })
        .collect()
}

/// An nginx master's workers.
fn workers(master: u32, exe: &Path) -> Vec<u32> {
    children_of(master)
        .into_iter()
        .filter(|&p| is_server(p, exe))
        .collect()
}

/// SIGTERM, then SIGKILL after STOP_TIMEOUT; reaped. A note when it needed the SIGKILL.
fn stop_pid(pid: u32, exe: &Path) -> Option<String> {
    if reap(pid) {
        return None;
    }
    if signal(pid, libc::SIGTERM, exe).is_err() {
        return None;
    }
    if wait_until(STOP_TIMEOUT, || reap(pid)) {
        return None;
    }
    let _ = signal(pid, libc::SIGKILL, exe);
    wait_until(STOP_TIMEOUT, || reap(pid));
    Some(format!(
        "pid {pid} ignored SIGTERM for {STOP_TIMEOUT:?}; killed"
    ))
}

/// Reap our zombie children that ran the server (adopted generations that exited while nobody
/// was looking). Only the server's name is matched, and every process of ours that is not a
/// generation (wrk, the reload commands) has been reaped by the time this runs.
fn reap_zombies(exe: &Path) {
    let Some(name) = exe.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    // The kernel truncates comm to 15 bytes.
    let name: String = name.chars().take(15).collect();
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        if stat_of(pid).is_some_and(|(state, ppid)| ppid == me && state == 'Z') && comm(pid) == name
        {
            reap(pid);
        }
    }
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// What lightd logs when an in-place reload's new image serves.
const LIGHTD_READY: &str = "reload: this image is ready";

fn count_lines(path: &Path, needle: &str) -> usize {
    fs::read_to_string(path)
        .map(|t| t.lines().filter(|l| l.contains(needle)).count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Our own client: is the server up, does it serve
// ---------------------------------------------------------------------------------------------

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&addr(port), Duration::from_millis(200)).is_ok()
}

/// One GET with `Connection: close`: status 200 with the whole file.
fn get_ok(port: u16) -> Result<(), String> {
    let mut s =
        TcpStream::connect_timeout(&addr(port), IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| format!("socket options: {e}"))?;
    s.write_all(
        format!("GET /{FILE} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("sending: {e}"))?;
    // A 1 KiB file and its head: anything much longer is not the response we asked for.
    let mut buf = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| format!("reading: {e}"))?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete response head")?;
    let status_line = String::from_utf8_lossy(&buf[..head_end]);
    let status_line = status_line.lines().next().unwrap_or("");
    let body = buf.len() - head_end - 4;
    if !status_line.starts_with("HTTP/1.1 200") && !status_line.starts_with("HTTP/1.0 200") {
        return Err(format!("status line {status_line:?}"));
    }
    if body != 1024 {
        return Err(format!("{body} body bytes, expected 1024"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

fn print_table(rows: &[Row], n: u32, secs: u64) {
    println!(
        "== Reloads under load: wrk -t1 -c{CONNS} -d{secs}s /{FILE}, {n} reloads 1 s apart =="
    );
    let header = [
        "server",
        "method",
        "load",
        "requests",
        "failed",
        "conn/read/write/timeout",
        "non-2xx/3xx",
        "max latency (ms)",
        "reloads",
        "slowest reload (ms)",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let mut line = vec![
            r.kind.name().to_string(),
            r.method.label().to_string(),
            r.shape.label().to_string(),
        ];
        match &r.load {
            Ok(l) => {
                line.push(l.requests.to_string());
                line.push(failed(l).to_string());
                line.push(l.errors_text());
                line.push(l.non_2xx_3xx.to_string());
                line.push(format!("{:.2}", l.latency_max_ms));
            }
            Err(_) => line.extend(["-", "-", "-", "-", "-"].map(String::from)),
        }
        if r.method == Method::None {
            line.push("-".to_string());
            line.push("-".to_string());
        } else {
            line.push(format!("{}/{}", r.reloads_done, r.reloads_tried));
            line.push(r.slowest_reload.map_or("-".to_string(), |d| {
                format!("{:.0}", d.as_secs_f64() * 1000.0)
            }));
        }
        table.push(line);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let mut out = String::new();
        for (c, w) in widths.iter().enumerate() {
            let cell = row.get(c).map_or("", String::as_str);
            // Names on the left, figures on the right.
            if c < 3 {
                let _ = write!(out, "{cell:<w$}  ");
            } else {
                let _ = write!(out, "{cell:>w$}  ");
            }
        }
        println!("{}", out.trim_end());
    }
    for r in rows {
        if let Err(e) = &r.load {
            println!(
                "  {} / {} / {}: not measured: {e}",
                r.kind.name(),
                r.method.label(),
                r.shape.label()
            );
        }
    }
}

fn failed(l: &Load) -> u64 {
    l.socket_errors.iter().sum::<u64>() + l.non_2xx_3xx
}

/// The figure this benchmark exists for, on a line of its own.
fn print_lightd_summary(rows: &[Row]) {
    let lightd: Vec<&Row> = rows.iter().filter(|r| r.kind == Kind::Lightd).collect();
    if lightd.is_empty() {
        println!("lightd: not measured");
        return;
    }
    let mut total = 0;
    let mut parts = Vec::new();
    for &m in Kind::Lightd.methods() {
        let mut sum = 0;
        let mut missing = 0;
        for r in lightd.iter().filter(|r| r.method == m) {
            match &r.load {
                Ok(l) => sum += failed(l),
                Err(_) => missing += 1,
            }
        }
        total += sum;
        if missing > 0 {
            parts.push(format!(
                "{} {sum} ({missing} run(s) not measured)",
                m.label()
            ));
        } else {
            parts.push(format!("{} {sum}", m.label()));
        }
    }
    println!("lightd: {total} failed requests ({})", parts.join(", "));
    let incomplete: u32 = lightd
        .iter()
        .map(|r| r.reloads_tried - r.reloads_done)
        .sum();
    let not_run = lightd.iter().filter(|r| r.load.is_err()).count();
    if incomplete > 0 || not_run > 0 {
        println!(
            "lightd: {incomplete} reload(s) did not complete, {not_run} run(s) not measured (see the notes)"
        );
    }
}
