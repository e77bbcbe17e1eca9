//! Static-file figures for lightd beside lighttpd, nginx and h2o: `cargo bench --bench static`.
//!
//! Throughput and latency come from wrk (Debian's `wrk` package) with server and client pinned
//! to different CPUs, so the figures compare servers rather than where the scheduler happened
//! to put them. Memory comes from /proc, syscalls per request from `strace -c`.
//!
//! Environment: LIGHTD_BENCH_SECS (seconds per wrk run, default 5) and LIGHTD_BENCH_IDLE (idle
//! keep-alive connections for the memory figure, default 1000).
//!
//! Every wait has a deadline and every child process is ours, stopped by pid, so a server that
//! hangs costs bounded time and nothing is left running. A comparison server that cannot start
//! is reported and skipped; lightd failing to serve, or any wrk socket error or non-2xx/3xx
//! response from lightd, makes the run exit non-zero after printing everything it measured.

mod common;

use common::{
    backdate, command, env_number, exited, file_size, find_program, free_port, h2o_config,
    nginx_http_block, pattern, proc_stat, quoted, run_bounded, run_time_ns, run_wrk, run_wrk_args,
    server_diagnostics, setup, stop_child, tail, version_of, wait_until, write_config, Capture,
    Load, Placement, TempDir, BIN, IO_TIMEOUT, KEEP_ALIVE_IDLE_SECS, KEEP_ALIVE_REQUESTS, POLL,
    START_TIMEOUT, STOP_TIMEOUT,
};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Keep-alive requests sent under strace; enough that connection set-up is noise.
const STRACE_REQUESTS: u32 = 2000;
/// The largest response head our small client accepts.
const MAX_HEAD: usize = 64 * 1024;

const FILES: [(&str, usize); 3] = [
    ("1k.bin", 1024),
    ("100k.bin", 100 * 1024),
    ("10m.bin", 10 * 1024 * 1024),
];

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

/// The whole run. Ok(false) when lightd itself failed a check; Err only for set-up failures
/// that leave nothing to measure (no temp dir, bad environment variables).
fn run() -> Result<bool, String> {
    let secs = env_number("LIGHTD_BENCH_SECS", 5)?;
    let mut idle_n = env_number("LIGHTD_BENCH_IDLE", 1000)? as usize;
    let mut problems: Vec<String> = Vec::new();

    // A server's helper processes (h2o's crash handler) outlive it by a moment and would be
    // orphaned to pid 1, which in a container often reaps nobody: take them, so that Server's
    // drop can reap them. Best effort; without it they are only left as zombies.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    // Our own connections for the idle-memory figure each need a descriptor.
    let nofile = raise_nofile((idle_n + 64) as libc::rlim_t);
    if (nofile as usize) < idle_n + 64 {
        let capped = (nofile as usize).saturating_sub(64).max(1);
        println!(
            "note: RLIMIT_NOFILE is {nofile}; idle connections reduced from {idle_n} to {capped}"
        );
        idle_n = capped;
    }

    let wrk = find_program("wrk");
    let strace = find_program("strace");
    let place = setup("lightd static-file benchmark");
    match &wrk {
        Some(w) => println!(
            "  load generator: {} ({}), {secs} s per run (LIGHTD_BENCH_SECS)",
            w.display(),
            version_of(w, "-v")
        ),
        None => println!("  load generator: wrk not found: apt-get install wrk"),
    }

    let dir = TempDir::new()?;
    let docroot = dir.path.join("www");
    fs::create_dir_all(&docroot).map_err(|e| format!("creating {}: {e}", docroot.display()))?;
    for (name, size) in FILES {
        let path = docroot.join(name);
        fs::write(&path, pattern(size)).map_err(|e| format!("writing {}: {e}", path.display()))?;
        backdate(&path)?;
    }
    println!(
        "  docroot:        {} (1 KiB, 100 KiB and 10 MiB files)",
        docroot.display()
    );
    let limits = Limits::for_idle(idle_n);

    // Start every server up front so all measurements of one kind happen back to back.
    let mut servers: Vec<Server> = Vec::new();
    match start_lightd(
        Path::new(BIN),
        "lightd",
        &dir.path,
        &docroot,
        &place,
        &limits,
        0,
    ) {
        Ok(s) => servers.push(s),
        Err(e) => {
            println!("  lightd:         FAILED to start: {e}");
            problems.push(format!("lightd did not start: {e}"));
        }
    }
    // The same binary with the modules a typical config loads: what they cost per request,
    // measured in the same run as plain lightd.
    let log = dir.path.join("lightd-mods-access.log");
    let mods = format!(
        "server.modules = ( \"mod_access\", \"mod_setenv\", \"mod_accesslog\" )\n\
         url.access-deny = ( \"~\", \".inc\" )\n\
         setenv.add-response-header = ( \"X-Frame-Options\" => \"DENY\" )\n\
         accesslog.filename = {}\n",
        quoted(&log)
    );
    match start_lightd_with(
        Path::new(BIN),
        "lightd-mods",
        &dir.path,
        &docroot,
        &place,
        &limits,
        0,
        &mods,
    ) {
        Ok(s) => {
            println!("  lightd-mods:    the same, with mod_access, mod_setenv and mod_accesslog");
            servers.push(s);
        }
        Err(e) => {
            println!("  lightd-mods:    FAILED to start: {e}");
            problems.push(format!("lightd-mods did not start: {e}"));
        }
    }
    // The static musl build: the one for small boxes, measured beside the default build.
    match musl_build() {
        Ok(bin) => {
            match start_lightd(&bin, "lightd-musl", &dir.path, &docroot, &place, &limits, 0) {
                Ok(s) => {
                    println!(
                        "  lightd-musl:    {} (static, binary {})",
                        bin.display(),
                        file_size(&bin)
                    );
                    servers.push(s);
                }
                Err(e) => {
                    println!("  lightd-musl:    FAILED to start: {e}");
                    problems.push(format!("lightd-musl did not start: {e}"));
                }
            }
        }
        Err(why) => println!("  lightd-musl:    not measured: {why}"),
    }
    let others: [(&str, StartFn); 3] = [
        ("lighttpd", start_lighttpd),
        ("nginx", start_nginx),
        ("h2o", start_h2o),
    ];
    for (name, start) in others {
        let Some(prog) = find_program(name) else {
            println!("  {:<15} not installed, not compared", format!("{name}:"));
            continue;
        };
        let version = version_of(&prog, "-v");
        match start(&prog, &dir.path, &docroot, &place, &limits) {
            Ok(s) => {
                println!(
                    "  {:<15} {} ({version}, binary {})",
                    format!("{name}:"),
                    prog.display(),
                    file_size(&prog)
                );
                servers.push(s);
            }
            Err(e) => println!(
                "  {:<15} not compared: failed to start: {e}",
                format!("{name}:")
            ),
        }
    }

    let mut scratch = vec![0u8; MAX_HEAD];
    let mut i = 0;
    while i < servers.len() {
        match check_serves(&servers[i], &mut scratch) {
            Ok(()) => i += 1,
            Err(e) => {
                let s = servers.remove(i);
                println!(
                    "  {}: does not serve the test files, not measured: {e}{}",
                    s.name,
                    s.diagnostics()
                );
                if s.name.starts_with("lightd") {
                    problems.push(format!("lightd does not serve the test files: {e}"));
                }
            }
        }
    }
    let fresh_rss: Vec<Option<u64>> = servers.iter().map(|s| s.fresh_rss_kib).collect();
    let cols = Columns::new(&servers);
    println!();
    if servers.is_empty() {
        println!("no server is running; nothing to measure");
        return Ok(problems.is_empty());
    }
    println!("Ratios are lightd/other: above 1 means lightd's figure is higher (better for req/s");
    println!("and MiB/s; worse for latency, memory, syscalls and CPU per request).");
    if cols.best_peer() {
        println!("lightd/best peer divides by the best figure of the other projects' servers on");
        println!("that row (highest req/s, lowest latency, memory, syscalls, CPU per request).");
    }
    println!("When wrk is about 100% busy and the server is not, wrk is the limit: req/s then");
    println!("understates the difference, and CPU per request is the server's own cost.");

    // Syscalls per request: before the idle connections and wrk, so nothing else is in flight.
    println!();
    match &strace {
        None => println!("strace not installed: syscalls per request not measured"),
        Some(st) => {
            let mut counts: Vec<Option<SyscallCount>> = Vec::new();
            for s in &servers {
                eprintln!("bench: counting {}'s syscalls with strace", s.name);
                match count_syscalls(st, place.client_cpu, s, &dir.path, &mut scratch) {
                    Ok(c) => counts.push(Some(c)),
                    Err(e) => {
                        println!("{}: syscalls not counted: {e}", s.name);
                        counts.push(None);
                    }
                }
            }
            print_syscalls(&cols, &counts);
        }
    }

    // Memory: idle, and with N idle keep-alive connections.
    println!();
    let mut mem: Vec<Option<IdleMem>> = Vec::new();
    for s in &servers {
        eprintln!(
            "bench: opening {idle_n} keep-alive connections to {}",
            s.name
        );
        match idle_memory(s, idle_n, &mut scratch) {
            Ok(m) => mem.push(Some(m)),
            Err(e) => {
                println!("{}: idle-connection memory not measured: {e}", s.name);
                if s.name.starts_with("lightd") {
                    problems.push(format!("lightd with {idle_n} idle connections: {e}"));
                }
                mem.push(None);
            }
        }
    }
    print_memory(&cols, idle_n, &fresh_rss, &mem);
    print_helpers(&servers);

    // Throughput.
    match &wrk {
        None => {
            println!();
            println!("wrk not found: apt-get install wrk (throughput not measured)");
        }
        Some(wrk) => {
            for w in WORKLOADS {
                let script = match pipeline_script(&dir.path, &w) {
                    Ok(s) => s,
                    Err(e) => {
                        println!("{}: not measured: {e}", w.title);
                        continue;
                    }
                };
                let mut loads: Vec<Result<Load, String>> = Vec::new();
                let mut cpu: Vec<Option<CpuUse>> = Vec::new();
                for s in &servers {
                    eprintln!("bench: wrk {} on {}", w.title, s.name);
                    let url = format!("http://127.0.0.1:{}/{}", s.port, w.file);
                    let before = CpuSample::take(s.pid());
                    let load = match &script {
                        Some(sc) => run_wrk_args(wrk, &place, &url, w.conns, secs, &["-s", sc]),
                        None => run_wrk(wrk, &place, &url, w.conns, secs, w.close),
                    };
                    cpu.push(match (&before, &load) {
                        (Ok(b), Ok(l)) => CpuSample::take(s.pid()).ok().map(|a| b.until(&a, l)),
                        _ => None,
                    });
                    if s.name.starts_with("lightd") {
                        match &load {
                            Ok(l)
                                if l.socket_errors.iter().sum::<u64>() > 0 || l.non_2xx_3xx > 0 =>
                            {
                                problems.push(format!(
                                    "{}: {} had socket errors {} and {} non-2xx/3xx responses",
                                    w.title,
                                    s.name,
                                    l.errors_text(),
                                    l.non_2xx_3xx
                                ))
                            }
                            Ok(_) => {}
                            Err(e) => {
                                problems.push(format!("{}: wrk on {} failed: {e}", w.title, s.name))
                            }
                        }
                    }
                    loads.push(load);
                }
                println!();
                print_load(&cols, &w, secs, &loads, &cpu, &servers);
            }
            if let Err(e) = scaling(wrk, &dir.path, &docroot, &limits, secs) {
                println!("worker scaling not measured: {e}");
                problems.push(format!("worker scaling: {e}"));
            }
        }
    }

    // Peak memory over the whole run, loads included.
    println!();
    let mut t = Table::new("After all measurements".to_string(), &cols);
    let peak: Vec<Option<f64>> = servers
        .iter()
        .map(|s| proc_status_kib(s.pid(), "VmHWM").ok().map(|k| k as f64))
        .collect();
    let idle_after: Vec<Option<f64>> = servers
        .iter()
        .map(|s| proc_status_kib(s.pid(), "VmRSS").ok().map(|k| k as f64))
        .collect();
    t.metric("peak RSS, VmHWM (KiB)", &peak, 0, Better::Lower);
    t.metric("RSS at the end, idle (KiB)", &idle_after, 0, Better::Lower);
    t.print();

    for s in &servers {
        if let Some(why) = s.exit_status() {
            println!(
                "{} exited during the run ({why}){}",
                s.name,
                s.diagnostics()
            );
            if s.name.starts_with("lightd") {
                problems.push(format!("lightd exited during the run ({why})"));
            }
        }
    }
    drop(servers);

    println!();
    if problems.is_empty() {
        if wrk.is_some() {
            println!("lightd: served every request; 0 socket errors, 0 non-2xx/3xx responses");
        } else {
            println!("lightd: served every request it was sent (no wrk: no load run)");
        }
        Ok(true)
    } else {
        println!("lightd FAILED:");
        for p in &problems {
            println!("  - {p}");
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads and wrk
// ---------------------------------------------------------------------------------------------

struct Workload {
    title: &'static str,
    file: &'static str,
    conns: u32,
    close: bool,
    /// Requests wrk writes at once on each connection (1: none pipelined).
    pipeline: u32,
}

const WORKLOADS: [Workload; 5] = [
    Workload {
        title: "1 KiB file, keep-alive, 50 connections",
        file: "1k.bin",
        conns: 50,
        close: false,
        pipeline: 1,
    },
    Workload {
        title: "1 KiB file, Connection: close, 50 connections",
        file: "1k.bin",
        conns: 50,
        close: true,
        pipeline: 1,
    },
    Workload {
        title: "100 KiB file, keep-alive, 50 connections",
        file: "100k.bin",
        conns: 50,
        close: false,
        pipeline: 1,
    },
    Workload {
        title: "10 MiB file, keep-alive, 10 connections",
        file: "10m.bin",
        conns: 10,
        close: false,
        pipeline: 1,
    },
    // wrk costs about as much CPU per request as a server does, so on one core it is the
    // limit of the workloads above. Eight requests per write make the client's share small
    // enough that the server's CPU becomes the limit: what one core of each server can do.
    Workload {
        title: "1 KiB file, keep-alive, 8 requests pipelined, 50 connections",
        file: "1k.bin",
        conns: 50,
        close: false,
        pipeline: 8,
    },
];

/// For a pipelined workload, a wrk script that sends `w.pipeline` requests in one write; wrk
/// counts each response.
fn pipeline_script(dir: &Path, w: &Workload) -> Result<Option<String>, String> {
    if w.pipeline <= 1 {
        return Ok(None);
    }
    let path = dir.join(format!("pipeline-{}.lua", w.pipeline));
    let text = format!(
        "init = function(args)\n\
         \x20 local r = {{}}\n\
         \x20 for i = 1, {n} do r[i] = wrk.format(nil, \"/{file}\") end\n\
         \x20 req = table.concat(r)\n\
         end\n\
         request = function() return req end\n",
        n = w.pipeline,
        file = w.file
    );
    write_config(&path, &text)?;
    Ok(Some(path.to_string_lossy().into_owned()))
}

fn print_load(
    cols: &Columns,
    w: &Workload,
    secs: u64,
    loads: &[Result<Load, String>],
    cpu: &[Option<CpuUse>],
    servers: &[Server],
) {
    let close = if w.close {
        " -H \"Connection: close\"".to_string()
    } else if w.pipeline > 1 {
        format!(" -s pipeline-{}.lua", w.pipeline)
    } else {
        String::new()
    };
    let mut t = Table::new(
        format!(
            "{} (wrk -t1 -c{} -d{secs}s{close} /{})",
            w.title, w.conns, w.file
        ),
        cols,
    );
    let get = |f: fn(&Load) -> f64| -> Vec<Option<f64>> {
        loads.iter().map(|l| l.as_ref().ok().map(f)).collect()
    };
    t.metric(
        "throughput (req/s)",
        &get(|l| l.req_per_s),
        0,
        Better::Higher,
    );
    t.metric("transfer (MiB/s)", &get(|l| l.mib_per_s), 1, Better::Higher);
    t.metric(
        "latency, mean (ms)",
        &get(|l| l.latency_ms),
        3,
        Better::Lower,
    );
    t.metric(
        "requests completed (count)",
        &get(|l| l.requests as f64),
        0,
        Better::Higher,
    );
    let use_of = |f: fn(&CpuUse) -> f64| -> Vec<Option<f64>> {
        cpu.iter().map(|c| c.as_ref().map(f)).collect()
    };
    t.metric(
        "server CPU busy (%)",
        &use_of(|c| c.server_busy_pct),
        0,
        Better::Neither,
    );
    t.metric(
        "server CPU per request (us)",
        &use_of(|c| c.us_per_req),
        2,
        Better::Lower,
    );
    t.metric(
        "  of which in the kernel (us)",
        &use_of(|c| c.kernel_us_per_req),
        2,
        Better::Lower,
    );
    t.metric(
        "  of which in the server (us)",
        &use_of(|c| c.user_us_per_req),
        2,
        Better::Lower,
    );
    t.metric(
        "wrk CPU busy (%)",
        &use_of(|c| c.wrk_busy_pct),
        0,
        Better::Neither,
    );
    t.text(
        "socket errors conn/read/write/timeout",
        loads
            .iter()
            .map(|l| match l {
                Ok(l) => l.errors_text(),
                Err(_) => "failed".to_string(),
            })
            .collect(),
    );
    t.text(
        "non-2xx/3xx responses (count)",
        loads
            .iter()
            .map(|l| match l {
                Ok(l) => l.non_2xx_3xx.to_string(),
                Err(_) => "failed".to_string(),
            })
            .collect(),
    );
    t.print();
    for (l, s) in loads.iter().zip(servers) {
        if let Err(e) = l {
            println!("  {}: {e}", s.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory and syscalls
// ---------------------------------------------------------------------------------------------

struct IdleMem {
    before_kib: u64,
    with_kib: u64,
}

/// Open `n` keep-alive connections, each with one answered request so the server has really
/// set it up, then read the server's RSS while they sit idle.
fn idle_memory(server: &Server, n: usize, scratch: &mut [u8]) -> Result<IdleMem, String> {
    let pid = server.pid();
    let before_kib = proc_status_kib(pid, "VmRSS")?;
    let fds_before = open_fds(pid)?;
    let req = request("1k.bin");
    let mut conns = Vec::with_capacity(n);
    let mut result = Ok(());
    for i in 0..n {
        let step = connect(server.addr()).and_then(|mut s| {
            let r = exchange(&mut s, &req, scratch)?;
            if r.status != 200 {
                return Err(format!("status {}", r.status));
            }
            conns.push(s);
            Ok(())
        });
        if let Err(e) = step {
            result = Err(format!("connection {} of {n}: {e}", i + 1));
            break;
        }
    }
    let with_kib = match result {
        Ok(()) => {
            // The server finishes its per-request bookkeeping (buffer release on keep-alive
            // reset) just after the last response leaves; let it settle before sampling.
            thread::sleep(Duration::from_millis(200));
            proc_status_kib(pid, "VmRSS")
        }
        Err(e) => Err(e),
    };
    drop(conns);
    // Let the server see the closes, so later measurements start from the same state.
    wait_until(STOP_TIMEOUT, || {
        open_fds(pid).map_or(true, |f| f <= fds_before)
    });
    Ok(IdleMem {
        before_kib,
        with_kib: with_kib?,
    })
}

fn print_memory(cols: &Columns, n: usize, fresh: &[Option<u64>], mem: &[Option<IdleMem>]) {
    let mut t = Table::new(
        format!("Memory (VmRSS from /proc/PID/status), {n} idle keep-alive connections"),
        cols,
    );
    let f = |v: &Option<u64>| v.map(|k| k as f64);
    t.metric(
        "RSS idle, before any request (KiB)",
        &fresh.iter().map(f).collect::<Vec<_>>(),
        0,
        Better::Lower,
    );
    t.metric(
        "RSS idle, warmed up (KiB)",
        &mem.iter()
            .map(|m| m.as_ref().map(|m| m.before_kib as f64))
            .collect::<Vec<_>>(),
        0,
        Better::Lower,
    );
    t.metric(
        &format!("RSS with {n} idle connections (KiB)"),
        &mem.iter()
            .map(|m| m.as_ref().map(|m| m.with_kib as f64))
            .collect::<Vec<_>>(),
        0,
        Better::Lower,
    );
    t.metric(
        "per idle connection (KiB)",
        &mem.iter()
            .map(|m| {
                m.as_ref()
                    .map(|m| (m.with_kib as f64 - m.before_kib as f64) / n as f64)
            })
            .collect::<Vec<_>>(),
        2,
        Better::Lower,
    );
    t.print();
}

/// The RSS rows are each server's own process. A server that keeps helper processes (h2o's
/// crash handler, lightd's workers when configured) holds that memory too: say how much.
fn print_helpers(servers: &[Server]) {
    for s in servers {
        for child in children_of(s.pid()) {
            let rss = proc_status_kib(child, "VmRSS")
                .map_or_else(|e| format!("RSS unknown: {e}"), |k| format!("{k} KiB RSS"));
            let cmdline = fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            println!(
                "  {} also runs pid {child} ({}): {rss}, not in the rows above",
                s.name,
                tail(&cmdline, 120)
            );
        }
    }
}

struct SyscallCount {
    total: u64,
    by_name: Vec<(String, u64)>,
}

/// `strace -c -f -p PID` around STRACE_REQUESTS requests on one keep-alive connection.
fn count_syscalls(
    strace: &Path,
    client_cpu: Option<usize>,
    server: &Server,
    dir: &Path,
    scratch: &mut [u8],
) -> Result<SyscallCount, String> {
    let pid = server.pid();
    let out = dir.join(format!("strace-{}.txt", server.name));
    let req = request("1k.bin");
    let mut conn = connect(server.addr())?;
    // The accept and the first request's one-off work stay outside the count.
    exchange(&mut conn, &req, scratch)?;

    let mut cmd = command(strace, client_cpu, None);
    cmd.arg("-c")
        .arg("-f")
        .arg("-o")
        .arg(&out)
        .arg("-p")
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut tracer = Tracer {
        child: cmd
            .spawn()
            .map_err(|e| format!("running {}: {e}", strace.display()))?,
    };
    let err = tracer.child.stderr.take().map(Capture::spawn);
    let err_text = || err.as_ref().map(Capture::text).unwrap_or_default();
    let attached = wait_until(START_TIMEOUT, || {
        traced(pid) || matches!(tracer.child.try_wait(), Ok(Some(_)) | Err(_))
    });
    if !attached || !traced(pid) {
        return Err(format!("strace did not attach: {}", err_text().trim()));
    }
    let mut idle_waits = true;
    for i in 0..STRACE_REQUESTS {
        // strace makes every server syscall slow, so a request sent the moment the previous
        // response arrives is already queued when the server makes its next read: that would
        // count a back-to-back pipeline, not a keep-alive request arriving at an idle server.
        // Wait until the server sleeps in the kernel (its event wait) before each request.
        // A server that never sleeps would make that a 200 ms pause per request: give up
        // waiting after the first miss.
        if idle_waits && !wait_sleeping(pid, Duration::from_millis(200)) {
            idle_waits = false;
        }
        let r = exchange(&mut conn, &req, scratch)
            .map_err(|e| format!("request {} under strace: {e}", i + 1))?;
        if r.status != 200 {
            return Err(format!(
                "request {} under strace: status {}",
                i + 1,
                r.status
            ));
        }
    }
    // SIGINT makes strace detach and write its summary.
    if !stop_child(&mut tracer.child, libc::SIGINT, STOP_TIMEOUT) {
        return Err("strace did not exit on SIGINT".to_string());
    }
    let text = fs::read_to_string(&out).map_err(|e| format!("reading {}: {e}", out.display()))?;
    parse_strace(&text).map_err(|e| format!("{e}; strace said: {}", err_text().trim()))
}

/// Detaches strace (SIGINT) if a measurement ends early.
struct Tracer {
    child: Child,
}

impl Drop for Tracer {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGINT, STOP_TIMEOUT);
    }
}

/// The rows of strace's -c table: "% time seconds usecs/call calls [errors] syscall".
fn parse_strace(text: &str) -> Result<SyscallCount, String> {
    let mut total = None;
    let mut by_name = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Headers and rules do not start with a number.
        if f.len() < 5 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let Ok(calls) = f[3].parse::<u64>() else {
            continue;
        };
        let name = f[f.len() - 1];
        if name == "total" {
            total = Some(calls);
        } else {
            by_name.push((name.to_string(), calls));
        }
    }
    let total = total.ok_or("no total line in strace's summary")?;
    Ok(SyscallCount { total, by_name })
}

fn print_syscalls(cols: &Columns, counts: &[Option<SyscallCount>]) {
    let per = f64::from(STRACE_REQUESTS);
    let mut t = Table::new(
        format!(
            "Syscalls per keep-alive 1 KiB request \
             (strace -c -f, {STRACE_REQUESTS} requests on one connection)"
        ),
        cols,
    );
    t.metric(
        "total (syscalls/request)",
        &counts
            .iter()
            .map(|c| c.as_ref().map(|c| c.total as f64 / per))
            .collect::<Vec<_>>(),
        2,
        Better::Lower,
    );
    // Every syscall some server makes at least once per hundred requests, the most used
    // (summed over the servers) first.
    let mut names: Vec<(String, u64, u64)> = Vec::new();
    for c in counts.iter().flatten() {
        for (name, n) in &c.by_name {
            match names.iter_mut().find(|(m, _, _)| m == name) {
                Some(e) => {
                    e.1 += n;
                    e.2 = e.2.max(*n);
                }
                None => names.push((name.clone(), *n, *n)),
            }
        }
    }
    names.retain(|(_, _, most)| *most as f64 / per >= 0.01);
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (name, _, _) in &names {
        let vals: Vec<Option<f64>> = counts
            .iter()
            .map(|c| {
                c.as_ref().map(|c| {
                    c.by_name
                        .iter()
                        .find(|(m, _)| m == name)
                        .map_or(0.0, |(_, n)| *n as f64 / per)
                })
            })
            .collect();
        t.metric(
            &format!("  {name} (calls/request)"),
            &vals,
            2,
            Better::Lower,
        );
    }
    t.print();
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// One running server, stopped (by pid) and reaped on drop.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    stderr: Capture,
    /// The server's error log file, for diagnostics when it does not write to stderr.
    errorlog: Option<PathBuf>,
    /// VmRSS as soon as it accepted connections, before any request: what it costs idle.
    fresh_rss_kib: Option<u64>,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Some(status) once the process has exited.
    fn exit_status(&self) -> Option<String> {
        exited(self.pid())
    }

    /// The tail of what the server said, for failure messages.
    fn diagnostics(&self) -> String {
        server_diagnostics(&self.stderr, self.errorlog.as_deref())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let helpers = children_of(self.pid());
        stop_child(&mut self.child, libc::SIGTERM, STOP_TIMEOUT);
        // Helpers exit once the server has (h2o's on EOF from it) and, orphaned, become ours.
        // Until we reap them nobody else can, so their pids cannot have been reused.
        for h in helpers {
            reap_adopted(h, STOP_TIMEOUT);
        }
    }
}

/// Reap `pid`, adopted as subreaper, once it exits; give up at `timeout` or when it is not our
/// child (the subreaper flag was refused). A helper still running then is not ours to stop.
fn reap_adopted(pid: u32, timeout: Duration) {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return;
    };
    wait_until(timeout, || {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`.
        let r = unsafe { libc::waitpid(p, &mut status, libc::WNOHANG) };
        r == p || r == -1
    });
}

/// Connection limits for every server, sized for the idle-connection measurement.
struct Limits {
    conns: usize,
    fds: usize,
}

impl Limits {
    fn for_idle(idle: usize) -> Limits {
        let conns = idle + 512;
        // lighttpd wants max-fds comfortably above max-connections (a connection can hold a
        // file as well as a socket).
        Limits {
            conns,
            fds: conns * 3,
        }
    }
}

type StartFn = fn(&Path, &Path, &Path, &Placement, &Limits) -> Result<Server, String>;

/// Build the static musl lightd (release profile) and return its path; Err says why not.
/// Skipped with LIGHTD_BENCH_MUSL=0, or when the target's standard library is not installed.
fn musl_build() -> Result<PathBuf, String> {
    if std::env::var("LIGHTD_BENCH_MUSL").is_ok_and(|v| v == "0") {
        return Err("LIGHTD_BENCH_MUSL=0".to_string());
    }
    let triple = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .arg("--print")
        .arg("sysroot")
        .output()
        .map_err(|e| format!("running rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib").join(&triple).is_dir() {
        return Err(format!(
            "the {triple} target is not installed (rustup target add {triple})"
        ));
    }
    // BIN is <target-dir>/release/lightd; the musl build goes beside it.
    let target_dir = Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory above the lightd binary")?;
    eprintln!("bench: building the static musl lightd ({triple})");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("build")
        .arg("--release")
        .arg("--bin")
        .arg("lightd")
        .arg("--target")
        .arg(&triple)
        .arg("--target-dir")
        .arg(target_dir);
    let out = run_bounded(cmd, Duration::from_secs(900))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --target {triple} failed: {}",
            tail(&out.stderr, 800)
        ));
    }
    Ok(target_dir.join(&triple).join("release").join("lightd"))
}

fn start_lightd(
    bin: &Path,
    name: &'static str,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    limits: &Limits,
    workers: u32,
) -> Result<Server, String> {
    start_lightd_with(bin, name, dir, docroot, place, limits, workers, "")
}

/// `start_lightd` with `extra` config lines appended.
#[allow(clippy::too_many_arguments)]
fn start_lightd_with(
    bin: &Path,
    name: &'static str,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    limits: &Limits,
    workers: u32,
    extra: &str,
) -> Result<Server, String> {
    let cfg = dir.join(format!("{name}-{workers}.conf"));
    let text = format!(
        "# lightd benchmark config: no access log, identical limits to the other servers.\n\
         server.document-root = {root}\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = 0\n\
         server.max-fds = {fds}\n\
         server.max-connections = {conns}\n\
         server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
         server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
         mimetype.assign = ( \".bin\" => \"application/octet-stream\" )\n\
         server.max-worker = {workers}\n\
         {extra}",
        root = quoted(docroot),
        fds = limits.fds,
        conns = limits.conns,
    );
    write_config(&cfg, &text)?;
    let mut cmd = command(bin, place.server_cpu, place.taskset.as_deref());
    // lightd announces its port at info level; a RUST_LOG of ours could hide the line.
    cmd.arg("-D")
        .arg("-f")
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn_server(name, cmd, None, None)
}

/// server.max-worker: the 1 KB keep-alive workload against one worker and two, with nothing
/// pinned so that both cores are available to the server (wrk shares them on a 2-core
/// machine, which caps the gain).
fn scaling(
    wrk: &Path,
    dir: &Path,
    docroot: &Path,
    limits: &Limits,
    secs: u64,
) -> Result<(), String> {
    let free = Placement {
        server_cpu: None,
        client_cpu: None,
        taskset: None,
    };
    let mut rates = Vec::new();
    for workers in [1u32, 2] {
        eprintln!("bench: wrk on lightd with server.max-worker = {workers}");
        let server = start_lightd(
            Path::new(BIN),
            "lightd",
            dir,
            docroot,
            &free,
            limits,
            workers,
        )?;
        let url = format!("http://127.0.0.1:{}/1k.bin", server.port);
        let load = run_wrk(wrk, &free, &url, 50, secs, false)?;
        if load.socket_errors.iter().sum::<u64>() > 0 || load.non_2xx_3xx > 0 {
            return Err(format!(
                "{workers} worker(s): socket errors {}, {} non-2xx/3xx",
                load.errors_text(),
                load.non_2xx_3xx
            ));
        }
        rates.push(load.req_per_s);
    }
    println!();
    println!("== server.max-worker scaling: 1 KiB file, keep-alive, 50 connections, unpinned ==");
    println!("workers  throughput (req/s)  vs 1 worker");
    for (i, r) in rates.iter().enumerate() {
        println!("{:>7}  {:>18.0}  {:>11.2}", i + 1, r, r / rates[0]);
    }
    Ok(())
}

fn start_lighttpd(
    prog: &Path,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    limits: &Limits,
) -> Result<Server, String> {
    let port = free_port()?;
    let cfg = dir.join("lighttpd.conf");
    let errorlog = dir.join("lighttpd-error.log");
    // No server.modules: lighttpd then loads only indexfile, dirlisting and staticfile, and
    // without mod_accesslog there is no access log.
    let text = format!(
        "server.document-root = {root}\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = {port}\n\
         server.errorlog = {log}\n\
         server.max-fds = {fds}\n\
         server.max-connections = {conns}\n\
         server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
         server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
         mimetype.assign = ( \".bin\" => \"application/octet-stream\" )\n",
        root = quoted(docroot),
        log = quoted(&errorlog),
        fds = limits.fds,
        conns = limits.conns,
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

fn start_nginx(
    prog: &Path,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    limits: &Limits,
) -> Result<Server, String> {
    let port = free_port()?;
    let prefix = dir.join("nginx");
    fs::create_dir_all(&prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    let cfg = prefix.join("nginx.conf");
    let p = prefix.display();
    // One process doing everything (like lightd and lighttpd); every path nginx would write
    // to is in the temp dir, so it runs as root without touching /var. sendfile is on because
    // the other two use it by default.
    let text = format!(
        "worker_processes 1;\n\
         daemon off;\n\
         master_process off;\n\
         error_log stderr;\n\
         pid {p}/nginx.pid;\n\
         worker_rlimit_nofile {fds};\n\
         events {{ worker_connections {conns}; }}\n\
         {http}",
        fds = limits.fds,
        conns = limits.conns,
        http = nginx_http_block(&prefix, port, docroot),
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

fn start_h2o(
    prog: &Path,
    dir: &Path,
    docroot: &Path,
    place: &Placement,
    limits: &Limits,
) -> Result<Server, String> {
    let port = free_port()?;
    let cfg = dir.join("h2o.conf");
    write_config(&cfg, &h2o_config(port, docroot, limits.conns, ""))?;
    let mut cmd = command(prog, place.server_cpu, place.taskset.as_deref());
    // Worker mode (h2o's default) serves from this very process, in the foreground, logging
    // errors to stderr; -m master would put a Perl supervisor between us and the server. h2o
    // raises its own RLIMIT_NOFILE to the hard limit, so limits.fds needs no counterpart.
    cmd.arg("-m")
        .arg("worker")
        .arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn_server("h2o", cmd, Some(port), None)
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
        fresh_rss_kib: None,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while server.port == 0 {
        if let Some(p) = listening_port(&server.stderr.text()) {
            server.port = p;
            break;
        }
        if let Ok(Some(st)) = server.child.try_wait() {
            return Err(format!("exited ({st}){}", server.diagnostics()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no \"listening on\" line within {START_TIMEOUT:?}{}",
                server.diagnostics()
            ));
        }
        thread::sleep(POLL);
    }
    loop {
        if TcpStream::connect_timeout(&server.addr(), Duration::from_millis(500)).is_ok() {
            server.fresh_rss_kib = proc_status_kib(server.pid(), "VmRSS").ok();
            return Ok(server);
        }
        if let Ok(Some(st)) = server.child.try_wait() {
            return Err(format!("exited ({st}){}", server.diagnostics()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "port {} not accepting within {START_TIMEOUT:?}{}",
                server.port,
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
    let word = log[at..].split_whitespace().next()?;
    let addr: SocketAddr = word.trim_end_matches(['.', ',']).parse().ok()?;
    Some(addr.port())
}

/// GET every test file on one keep-alive connection: the server works, and keeps connections.
fn check_serves(server: &Server, scratch: &mut [u8]) -> Result<(), String> {
    let mut conn = connect(server.addr())?;
    for (name, size) in FILES {
        let r =
            exchange(&mut conn, &request(name), scratch).map_err(|e| format!("/{name}: {e}"))?;
        if r.status != 200 || r.body_len != size as u64 {
            return Err(format!(
                "/{name}: status {} with {} body bytes, expected 200 with {size}",
                r.status, r.body_len
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: enough for keep-alive GETs of static files
// ---------------------------------------------------------------------------------------------

struct Response {
    status: u16,
    body_len: u64,
}

fn request(file: &str) -> Vec<u8> {
    format!("GET /{file} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| s.set_nodelay(true))
        .map_err(|e| format!("socket options: {e}"))?;
    Ok(s)
}

/// Send one request and read exactly one response with a Content-Length body (static files
/// always have one), so the connection is ready for the next request.
fn exchange(conn: &mut TcpStream, req: &[u8], scratch: &mut [u8]) -> Result<Response, String> {
    conn.write_all(req)
        .map_err(|e| format!("sending request: {e}"))?;
    let mut filled = 0;
    let head_len = loop {
        if let Some(p) = find(&scratch[..filled], b"\r\n\r\n") {
            break p + 4;
        }
        if filled == scratch.len() {
            return Err(format!("response head longer than {} bytes", scratch.len()));
        }
        filled += read_some(conn, &mut scratch[filled..])?;
    };
    let head = String::from_utf8_lossy(&scratch[..head_len]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| {
            l.strip_prefix("HTTP/1.1 ")
                .or_else(|| l.strip_prefix("HTTP/1.0 "))
        })
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line in {:?}", tail(&head, 200)))?;
    let body_len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("status {status} without a Content-Length"))?;
    let mut have = (filled - head_len) as u64;
    while have < body_len {
        // Never read past this body: a byte more would belong to no request of ours.
        let want = scratch.len().min((body_len - have) as usize);
        have += read_some(conn, &mut scratch[..want])? as u64;
    }
    if have != body_len {
        return Err(format!(
            "{have} bytes after the head, Content-Length says {body_len}"
        ));
    }
    Ok(Response { status, body_len })
}

fn read_some(conn: &mut TcpStream, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        match conn.read(buf) {
            Ok(0) => return Err("connection closed mid-response".to_string()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading response: {e}")),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Raise our RLIMIT_NOFILE soft limit to `want` (and the hard limit when privileged); returns
/// the soft limit in force afterwards.
fn raise_nofile(want: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max.max(want),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return want;
        }
        // Unprivileged: the hard limit is as far as we can go.
        let capped = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &capped) == 0 {
            return lim.rlim_max;
        }
        lim.rlim_cur
    }
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// The CPU a server's processes (the process and its children: lightd's workers, h2o's helper)
/// with all their threads, and this process's waited-for children (wrk) have used, read before
/// and after a wrk run.
struct CpuSample {
    at: Instant,
    /// Time on a CPU from /proc/PID/task/TID/schedstat, summed over threads: exact, in
    /// nanoseconds.
    server_ns: u64,
    /// utime and stime from /proc/PID/stat, in clock ticks: sampled, used only for the split
    /// between the server's own code and the kernel.
    user_ticks: u64,
    sys_ticks: u64,
    /// getrusage(RUSAGE_CHILDREN): wrk, once it has been waited for.
    children_us: u64,
}

/// What a server cost during one wrk run.
struct CpuUse {
    server_busy_pct: f64,
    us_per_req: f64,
    kernel_us_per_req: f64,
    user_us_per_req: f64,
    wrk_busy_pct: f64,
}

impl CpuSample {
    fn take(pid: u32) -> Result<CpuSample, String> {
        let mut pids = vec![pid];
        pids.extend(children_of(pid));
        let mut sample = CpuSample {
            at: Instant::now(),
            server_ns: 0,
            user_ticks: 0,
            sys_ticks: 0,
            children_us: children_cpu_us(),
        };
        for p in pids {
            sample.server_ns += run_time_ns(p)?;
            let fields = proc_stat(p).unwrap_or_default();
            let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
            match (tick(11), tick(12)) {
                (Some(u), Some(s)) => {
                    sample.user_ticks += u;
                    sample.sys_ticks += s;
                }
                _ => return Err(format!("no utime/stime in /proc/{p}/stat")),
            }
        }
        Ok(sample)
    }

    /// The cost per request of `load`, run between `self` and `after`.
    fn until(&self, after: &CpuSample, load: &Load) -> CpuUse {
        let wall_us = after.at.duration_since(self.at).as_secs_f64() * 1e6;
        let server_us = after.server_ns.saturating_sub(self.server_ns) as f64 / 1e3;
        let user = after.user_ticks.saturating_sub(self.user_ticks) as f64;
        let sys = after.sys_ticks.saturating_sub(self.sys_ticks) as f64;
        let kernel_share = if user + sys > 0.0 {
            sys / (user + sys)
        } else {
            f64::NAN
        };
        let per_req = server_us / load.requests.max(1) as f64;
        CpuUse {
            server_busy_pct: 100.0 * server_us / wall_us,
            us_per_req: per_req,
            kernel_us_per_req: per_req * kernel_share,
            user_us_per_req: per_req * (1.0 - kernel_share),
            wrk_busy_pct: 100.0 * after.children_us.saturating_sub(self.children_us) as f64
                / wall_us,
        }
    }
}

/// The processes `pid`'s main thread has started and not yet lost (none when unreadable).
fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// User plus system CPU of every child this process has waited for, in microseconds.
fn children_cpu_us() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// A "Key:   N kB" line of /proc/PID/status, in KiB.
fn proc_status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {key} in {path}"))
}

fn open_fds(pid: u32) -> Result<usize, String> {
    let path = format!("/proc/{pid}/fd");
    fs::read_dir(&path)
        .map(|d| d.count())
        .map_err(|e| format!("reading {path}: {e}"))
}

/// Whether `pid` is asleep in a syscall ("S"); a static-file server only sleeps in its event
/// wait (a ptrace stop shows as "t", running as "R").
fn sleeping(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|stat| stat.first().is_some_and(|s| s == "S"))
}

/// Wait until `pid` sleeps in the kernel, polling finely: this runs once per request, so the
/// usual 20 ms poll interval would dominate the measurement's duration.
fn wait_sleeping(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if sleeping(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_micros(50));
    }
}

/// Whether every thread of `pid` has a tracer (strace -f attaches thread by thread).
fn traced(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let tracer = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if tracer == 0 {
            return false;
        }
        any = true;
    }
    any
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// The servers being compared, in column order, and which one is lightd.
struct Columns {
    names: Vec<&'static str>,
    lightd: Option<usize>,
    /// The other projects' servers (not the musl build of lightd): the "best peer" candidates.
    peers: Vec<usize>,
}

impl Columns {
    fn new(servers: &[Server]) -> Columns {
        let names: Vec<&'static str> = servers.iter().map(|s| s.name).collect();
        let lightd = names.iter().position(|n| *n == "lightd");
        let peers = (0..names.len())
            .filter(|&i| !names[i].starts_with("lightd"))
            .collect();
        Columns {
            names,
            lightd,
            peers,
        }
    }

    /// The servers lightd is compared with: one ratio column each.
    fn others(&self) -> Vec<usize> {
        match self.lightd {
            Some(l) => (0..self.names.len()).filter(|&i| i != l).collect(),
            None => Vec::new(),
        }
    }

    /// Whether tables end with lightd / the best peer; with one peer it would repeat that
    /// peer's column.
    fn best_peer(&self) -> bool {
        self.lightd.is_some() && self.peers.len() >= 2
    }
}

/// Which way a row's figure is better, to pick the best peer for the last column.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
    /// Neither (how busy a CPU was): no best peer.
    Neither,
}

/// `l / other` to two decimals, or "-" when either is missing or `other` rounds to zero at
/// `decimals` (a ratio to that would be noise, not a comparison).
fn ratio_cell(l: Option<f64>, other: Option<f64>, decimals: usize) -> String {
    match (l, other) {
        (Some(l), Some(o)) if o >= 0.5 / 10f64.powi(decimals as i32) && (l / o).is_finite() => {
            format!("{:.2}", l / o)
        }
        _ => "-".to_string(),
    }
}

struct Table<'a> {
    title: String,
    cols: &'a Columns,
    rows: Vec<Vec<String>>,
}

impl<'a> Table<'a> {
    fn new(title: String, cols: &'a Columns) -> Table<'a> {
        Table {
            title,
            cols,
            rows: Vec::new(),
        }
    }

    /// A numeric row: one value per server, then lightd/other for each other server, then
    /// lightd/best peer.
    fn metric(&mut self, label: &str, vals: &[Option<f64>], decimals: usize, better: Better) {
        let val = |i: usize| vals.get(i).copied().flatten().filter(|v| v.is_finite());
        let mut row = vec![label.to_string()];
        row.extend((0..vals.len()).map(|i| match val(i) {
            Some(v) => format!("{v:.decimals$}"),
            None => "-".to_string(),
        }));
        let lightd = self.cols.lightd.and_then(val);
        for o in self.cols.others() {
            row.push(ratio_cell(lightd, val(o), decimals));
        }
        if self.cols.best_peer() {
            let peers = self.cols.peers.iter().filter_map(|&p| val(p));
            let best = match better {
                Better::Higher => peers.reduce(f64::max),
                Better::Lower => peers.reduce(f64::min),
                Better::Neither => None,
            };
            row.push(ratio_cell(lightd, best, decimals));
        }
        self.rows.push(row);
    }

    /// A row of text with no ratios (error counts).
    fn text(&mut self, label: &str, cells: Vec<String>) {
        let mut row = vec![label.to_string()];
        row.extend(cells);
        let ratios = self.cols.others().len() + usize::from(self.cols.best_peer());
        row.extend((0..ratios).map(|_| "-".to_string()));
        self.rows.push(row);
    }

    fn print(&self) {
        let mut header = vec![String::new()];
        header.extend(self.cols.names.iter().map(|n| n.to_string()));
        if let Some(l) = self.cols.lightd {
            for o in self.cols.others() {
                header.push(format!("{}/{}", self.cols.names[l], self.cols.names[o]));
            }
            if self.cols.best_peer() {
                header.push(format!("{}/best peer", self.cols.names[l]));
            }
        }
        let all: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let ncols = header.len();
        let widths: Vec<usize> = (0..ncols)
            .map(|c| {
                all.iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        println!("== {} ==", self.title);
        for row in all {
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
}
