//! Static-file figures for lightd beside lighttpd, nginx and h2o: `cargo bench --bench static`.
//!
//! The headline is issue 13's table: server CPU per request, in microseconds, for five static
//! workloads and two gzip ones, with lightd / the best peer. It is the server's time on a CPU
//! from /proc/PID/task/*/schedstat over the requests wrk completed, with the server pinned to
//! one CPU and `wrk -t1` to the other, the median of several rounds. That figure holds when wrk
//! is the limit, which on two cores it often is, where requests per second would hide the
//! server's cost. The table is printed last, in Markdown, with a second one on how the cost
//! grows with 1 to 10,000 concurrent connections (CPU per request and wrk's p99 latency).
//! Before them come the details: throughput, latency and the CPU split per workload, memory
//! from /proc, syscalls per request from `strace -c`.
//!
//! Environment:
//! - LIGHTD_BENCH_SECS: seconds per wrk run (default 3).
//! - LIGHTD_BENCH_ROUNDS: rounds of every workload, interleaved, median reported (default 3).
//! - LIGHTD_BENCH_VARIANT_ROUNDS: rounds that also measure lightd-mods and lightd-musl
//!   (default 1: the budget of a default run is about 6 minutes).
//! - LIGHTD_BENCH_GZIP_LEVEL: the gzip level every server is set to (default 1, nginx's and
//!   h2o's own default; lighttpd's is zlib's 6).
//! - LIGHTD_BENCH_SCALING=0 skips the connection-scaling table; LIGHTD_BENCH_SCALING_ROUNDS
//!   (default 1) sets its rounds.
//! - LIGHTD_BENCH_IDLE: idle keep-alive connections for the memory figure (default 1000).
//! - LIGHTD_BENCH_MUSL=0: no static musl build.
//! - LIGHTD_BENCH_ONLY=tls: only the TLS table (`cargo bench --features tls --bench static`).
//!
//! After the headline, a TLS table (benches/common/tls.rs): 1 KB keep-alive, handshakes and a
//! 10 MB download over HTTPS for lightd, lighttpd (mod_openssl) and nginx; "n/a" for a
//! server that does not start with TLS.
//!
//! Every wait has a deadline and every child process is ours, stopped by pid, so a server that
//! hangs costs bounded time and nothing is left running. A comparison server that cannot start
//! is reported and skipped; lightd failing to serve, or any wrk socket error or non-2xx/3xx
//! response from lightd, makes the run exit non-zero after printing everything it measured.

mod common;

use common::closed_loop;
use common::gzip::{self, Verdict};
use common::{
    backdate, command, env_number, exited, file_size, find_program, free_port, h2o_config,
    nginx_http_block_with, pattern, proc_stat, quoted, run_bounded, run_time_ns, run_wrk,
    run_wrk_args, server_diagnostics, setup, stop_child, tail, version_of, wait_until,
    write_config, Capture, Load, Placement, TempDir, BIN, IO_TIMEOUT, KEEP_ALIVE_IDLE_SECS,
    KEEP_ALIVE_REQUESTS, POLL, START_TIMEOUT, STOP_TIMEOUT,
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
/// The compressible page of the gzip workloads (text/html for every server).
const TEXT_FILE: (&str, usize) = ("100k.html", 100 * 1024);

/// The projects of the headline table, in its column order; lightd first.
const PROJECTS: [&str; 4] = ["lightd", "lighttpd", "nginx", "h2o"];
/// Concurrent keep-alive connections of the scaling table.
const SCALE_CONNS: [u32; 4] = [1, 100, 1000, 10_000];

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

/// The run's settings, from the environment.
struct Settings {
    secs: u64,
    rounds: usize,
    variant_rounds: usize,
    gzip_level: u64,
    scaling: bool,
    scaling_rounds: usize,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let rounds = env_number("LIGHTD_BENCH_ROUNDS", 3)? as usize;
        let gzip_level = env_number("LIGHTD_BENCH_GZIP_LEVEL", 1)?;
        if gzip_level > 9 {
            return Err(format!(
                "LIGHTD_BENCH_GZIP_LEVEL={gzip_level}: gzip levels are 1 to 9"
            ));
        }
        Ok(Settings {
            secs: env_number("LIGHTD_BENCH_SECS", 3)?,
            rounds,
            variant_rounds: (env_number("LIGHTD_BENCH_VARIANT_ROUNDS", 1)? as usize).min(rounds),
            gzip_level,
            scaling: std::env::var("LIGHTD_BENCH_SCALING").map_or(true, |v| v.trim() != "0"),
            scaling_rounds: env_number("LIGHTD_BENCH_SCALING_ROUNDS", 1)? as usize,
        })
    }
}

/// The whole run. Ok(false) when lightd itself failed a check; Err only for set-up failures
/// that leave nothing to measure (no temp dir, bad environment variables).
fn run() -> Result<bool, String> {
    let set = Settings::from_env()?;
    let secs = set.secs;
    let mut idle_n = env_number("LIGHTD_BENCH_IDLE", 1000)? as usize;
    let mut problems: Vec<String> = Vec::new();

    // A server's helper processes (h2o's crash handler) outlive it by a moment and would be
    // orphaned to pid 1, which in a container often reaps nobody: take them, so that Server's
    // drop can reap them. Best effort; without it they are only left as zombies.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    // Our own connections for the idle-memory figure each need a descriptor, and so do wrk's
    // (a child: it inherits our limit) for the scaling table.
    let scale_max = if set.scaling {
        SCALE_CONNS.iter().max().copied().unwrap_or(0) as usize
    } else {
        0
    };
    let nofile = raise_nofile((idle_n + 64).max(scale_max + 1024) as libc::rlim_t) as usize;
    if nofile < idle_n + 64 {
        let capped = nofile.saturating_sub(64).max(1);
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
            "  load generator: {} ({}), {} round(s) of {secs} s per workload \
             (LIGHTD_BENCH_ROUNDS, LIGHTD_BENCH_SECS)",
            w.display(),
            version_of(w, "-v"),
            set.rounds
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
    let text = gzip::page_text(TEXT_FILE.1);
    let text_path = docroot.join(TEXT_FILE.0);
    fs::write(&text_path, &text).map_err(|e| format!("writing {}: {e}", text_path.display()))?;
    backdate(&text_path)?;
    println!(
        "  docroot:        {} (1 KiB, 100 KiB and 10 MiB files; a 100 KiB HTML page for gzip)",
        docroot.display()
    );
    // LIGHTD_BENCH_ONLY=tls: the TLS table alone (build lightd with `--features tls`).
    if std::env::var("LIGHTD_BENCH_ONLY").is_ok_and(|v| v.trim() == "tls") {
        match &wrk {
            Some(wrk) => common::tls::section(wrk, &place, &dir.path, &docroot, secs, set.rounds),
            None => println!("wrk not found: apt-get install wrk (TLS not measured)"),
        }
        return Ok(true);
    }
    let limits = Limits::for_conns(idle_n + 512);
    let main_spec = Spec {
        dir: &dir.path,
        docroot: &docroot,
        place: &place,
        limits: &limits,
        tag: "main",
        gzip: None,
    };

    // Start every server up front so all measurements of one kind happen back to back.
    let mut servers: Vec<Server> = Vec::new();
    match start_lightd(Path::new(BIN), "lightd", &main_spec, 0, "") {
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
    match start_lightd(Path::new(BIN), "lightd-mods", &main_spec, 0, &mods) {
        Ok(mut s) => {
            println!("  lightd-mods:    the same, with mod_access, mod_setenv and mod_accesslog");
            s.variant = true;
            servers.push(s);
        }
        Err(e) => {
            println!("  lightd-mods:    FAILED to start: {e}");
            problems.push(format!("lightd-mods did not start: {e}"));
        }
    }
    // The static musl build: the one for small boxes, measured beside the default build.
    match musl_build() {
        Ok(bin) => match start_lightd(&bin, "lightd-musl", &main_spec, 0, "") {
            Ok(mut s) => {
                println!(
                    "  lightd-musl:    {} (static, binary {})",
                    bin.display(),
                    file_size(&bin)
                );
                s.variant = true;
                servers.push(s);
            }
            Err(e) => {
                println!("  lightd-musl:    FAILED to start: {e}");
                problems.push(format!("lightd-musl did not start: {e}"));
            }
        },
        Err(why) => println!("  lightd-musl:    not measured: {why}"),
    }
    // Versions of the peers, for the headline's note.
    let mut versions: Vec<String> = Vec::new();
    for name in &PROJECTS[1..] {
        let Some(prog) = find_program(name) else {
            println!("  {:<15} not installed, not compared", format!("{name}:"));
            continue;
        };
        let version = version_of(&prog, "-v");
        match start_project(name, &main_spec) {
            Some(Ok(s)) => {
                println!(
                    "  {:<15} {} ({version}, binary {})",
                    format!("{name}:"),
                    prog.display(),
                    file_size(&prog)
                );
                versions.push(version);
                servers.push(s);
            }
            Some(Err(e)) => println!(
                "  {:<15} not compared: failed to start: {e}",
                format!("{name}:")
            ),
            None => {}
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

    // The gzip workloads' servers: every project with on-the-fly gzip, and lightd and lighttpd
    // with deflate.cache-dir (a static file compressed once). Each is checked with our own
    // client first: wrk counts a response without looking at its encoding.
    println!();
    println!(
        "gzip servers (level {}, LIGHTD_BENCH_GZIP_LEVEL), checked with our own client:",
        set.gzip_level
    );
    let gz_conf = Gzip {
        level: set.gzip_level,
        cache: false,
    };
    let gzc_conf = Gzip {
        level: set.gzip_level,
        cache: true,
    };
    let mut gz = start_group(
        &PROJECTS,
        &Spec {
            tag: "gzip",
            gzip: Some(&gz_conf),
            ..main_spec
        },
        &mut problems,
    );
    let mut gzc = start_group(
        &PROJECTS[..2],
        &Spec {
            tag: "gzcache",
            gzip: Some(&gzc_conf),
            ..main_spec
        },
        &mut problems,
    );
    for group in [&mut gz, &mut gzc] {
        check_gzip(group, &text, &mut problems);
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

    // Throughput and CPU per request: every workload in every round, rounds interleaved so
    // that a burst of someone else's load on the machine spreads over servers rather than
    // landing on one.
    let mut headline: Option<Vec<Vec<Series>>> = None;
    let mut conn_scale: Option<Result<ConnScaling, String>> = None;
    match &wrk {
        None => {
            println!();
            println!("wrk not found: apt-get install wrk (throughput not measured)");
        }
        Some(wrk) => {
            let group_of = |g: Group| -> &Vec<Server> {
                match g {
                    Group::Plain => &servers,
                    Group::Gzip => &gz,
                    Group::GzipCache => &gzc,
                }
            };
            let mut scripts: Vec<Option<String>> = Vec::new();
            for w in &WORKLOADS {
                scripts.push(match pipeline_script(&dir.path, w) {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push(format!("{}: no wrk script: {e}", w.title));
                        None
                    }
                });
            }
            let mut results: Vec<Vec<Series>> = WORKLOADS
                .iter()
                .map(|w| {
                    (0..group_of(w.group).len())
                        .map(|_| Series::default())
                        .collect()
                })
                .collect();
            for round in 0..set.rounds {
                for (wi, w) in WORKLOADS.iter().enumerate() {
                    if w.pipeline > 1 && scripts[wi].is_none() {
                        continue;
                    }
                    for (si, s) in group_of(w.group).iter().enumerate() {
                        if s.variant && round >= set.variant_rounds {
                            continue;
                        }
                        eprintln!(
                            "bench: round {}/{}: wrk {} on {}",
                            round + 1,
                            set.rounds,
                            w.title,
                            s.name
                        );
                        let extra = wrk_args(w, scripts[wi].as_deref());
                        let run = measure(wrk, &place, s, w.file, w.conns, secs, &extra, false);
                        if s.name == "lightd" || s.name.starts_with("lightd-") {
                            if let Some(p) = lightd_problem(&run) {
                                problems.push(format!(
                                    "{}, round {}: {}: {p}",
                                    w.title,
                                    round + 1,
                                    s.name
                                ));
                            }
                        }
                        results[wi][si].runs.push(run);
                    }
                }
            }
            for (wi, w) in WORKLOADS.iter().enumerate() {
                let group = group_of(w.group);
                println!();
                print_load(
                    &Columns::new(group),
                    w,
                    &set,
                    scripts[wi].is_some(),
                    &results[wi],
                    group,
                );
            }
            headline = Some(results);
            if let Err(e) = scaling(wrk, &main_spec, secs) {
                println!("worker scaling not measured: {e}");
                problems.push(format!("worker scaling: {e}"));
            }
        }
    }
    if set.scaling {
        conn_scale = Some(conn_scaling(&main_spec, &set, nofile, &mut problems));
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

    for s in servers.iter().chain(&gz).chain(&gzc) {
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

    // The headline, last and in Markdown, so that it can be pasted into the README as it is.
    if let Some(results) = &headline {
        println!();
        println!("==================================================================");
        println!("HEADLINE: server CPU per request (README table, Markdown)");
        println!("==================================================================");
        println!();
        print_headline(&set, &place, &versions, results, &[&servers, &gz, &gzc]);
    }
    // The TLS rows (their own table): lightd, lighttpd and nginx over HTTPS.
    if let Some(wrk) = &wrk {
        common::tls::section(wrk, &place, &dir.path, &docroot, secs, set.rounds);
    }
    match &conn_scale {
        Some(Ok(cs)) => {
            println!();
            print_conn_scaling(&set, cs);
        }
        Some(Err(e)) => {
            println!();
            println!("connection scaling not measured: {e}");
        }
        None if set.scaling => {}
        None => {
            println!();
            println!("connection scaling skipped (LIGHTD_BENCH_SCALING=0)");
        }
    }
    drop(servers);
    drop(gz);
    drop(gzc);

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

/// Start one server of each of `projects` that is installed, as `spec` says; failures are
/// reported (and are problems for lightd), absent peers skipped.
fn start_group(projects: &[&str], spec: &Spec, problems: &mut Vec<String>) -> Vec<Server> {
    let mut group = Vec::new();
    for name in projects {
        match start_project(name, spec) {
            Some(Ok(s)) => group.push(s),
            Some(Err(e)) => {
                println!("  {name} ({}): failed to start: {e}", spec.tag);
                if *name == "lightd" {
                    problems.push(format!("lightd ({}) did not start: {e}", spec.tag));
                }
            }
            None => {}
        }
    }
    group
}

/// Start `name` (lightd or a peer) as `spec` says; None when the peer is not installed.
fn start_project(name: &str, spec: &Spec) -> Option<Result<Server, String>> {
    if name == "lightd" {
        return Some(start_lightd(Path::new(BIN), "lightd", spec, 0, ""));
    }
    let prog = find_program(name)?;
    Some(match name {
        "lighttpd" => start_lighttpd(&prog, spec),
        "nginx" => start_nginx(&prog, spec),
        "h2o" => start_h2o(&prog, spec),
        _ => Err(format!("{name}: not a server this bench knows")),
    })
}

/// Ask every server of `group` for the page with `Accept-Encoding: gzip`, twice (the second
/// answer is the one a cache-dir serves), and record whether it really is gzip of `text`. A
/// server that fails the exchange, or sends gzip that is not the page, is dropped.
fn check_gzip(group: &mut Vec<Server>, text: &[u8], problems: &mut Vec<String>) {
    let path = format!("/{}", TEXT_FILE.0);
    let mut i = 0;
    while i < group.len() {
        let s = &mut group[i];
        let checked = connect(s.addr()).and_then(|mut conn| {
            let first = gzip::check(&mut conn, &path, text)?;
            let second = gzip::check(&mut conn, &path, text)?;
            Ok(if first.is_gzip() { second } else { first })
        });
        match checked {
            Ok(v) => {
                let cache = s
                    .cache_dir
                    .as_deref()
                    .map(|d| format!("; deflate.cache-dir holds {} file(s)", count_files(d)))
                    .unwrap_or_default();
                println!(
                    "  {:<9} {:<8} {}{}{cache}",
                    s.name,
                    s.tag,
                    if v.is_gzip() { "" } else { "NO GZIP: " },
                    v.text()
                );
                s.gzip = Some(v);
                i += 1;
            }
            Err(e) => {
                let s = group.remove(i);
                println!(
                    "  {:<9} {:<8} FAILED, not measured: {e}{}",
                    s.name,
                    s.tag,
                    s.diagnostics()
                );
                if s.name == "lightd" {
                    problems.push(format!("lightd ({}): the gzip check failed: {e}", s.tag));
                }
            }
        }
    }
}

/// Regular files under `dir`, at most 8 levels down and 10,000 entries looked at.
fn count_files(dir: &Path) -> usize {
    let mut stack = vec![(dir.to_path_buf(), 0)];
    let (mut files, mut seen) = (0, 0);
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > 10_000 {
                return files;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 8 => stack.push((e.path(), depth + 1)),
                Ok(t) if t.is_file() => files += 1,
                _ => {}
            }
        }
    }
    files
}

// ---------------------------------------------------------------------------------------------
// Workloads and wrk
// ---------------------------------------------------------------------------------------------

/// Which servers a workload runs against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    /// Plain static serving: lightd, its variants, and the peers.
    Plain,
    /// On-the-fly gzip, requested with `Accept-Encoding: gzip`.
    Gzip,
    /// gzip with deflate.cache-dir (lightd and lighttpd only).
    GzipCache,
}

struct Workload {
    /// The row of the headline table, worded as in issue 13.
    label: &'static str,
    title: &'static str,
    file: &'static str,
    conns: u32,
    close: bool,
    /// Requests wrk writes at once on each connection (1: none pipelined).
    pipeline: u32,
    group: Group,
}

const WORKLOADS: [Workload; 7] = [
    Workload {
        label: "1 KB keep-alive, 50 conns",
        title: "1 KiB file, keep-alive, 50 connections",
        file: "1k.bin",
        conns: 50,
        close: false,
        pipeline: 1,
        group: Group::Plain,
    },
    Workload {
        label: "1 KB `Connection: close`",
        title: "1 KiB file, Connection: close, 50 connections",
        file: "1k.bin",
        conns: 50,
        close: true,
        pipeline: 1,
        group: Group::Plain,
    },
    // wrk costs about as much CPU per request as a server does, so on one core it is the
    // limit of the workloads above. Eight requests per write make the client's share small
    // enough that the server's CPU becomes the limit: what one core of each server can do.
    Workload {
        label: "1 KB, 8 pipelined",
        title: "1 KiB file, keep-alive, 8 requests pipelined, 50 connections",
        file: "1k.bin",
        conns: 50,
        close: false,
        pipeline: 8,
        group: Group::Plain,
    },
    Workload {
        label: "100 KB keep-alive",
        title: "100 KiB file, keep-alive, 50 connections",
        file: "100k.bin",
        conns: 50,
        close: false,
        pipeline: 1,
        group: Group::Plain,
    },
    Workload {
        label: "10 MB keep-alive, 10 conns",
        title: "10 MiB file, keep-alive, 10 connections",
        file: "10m.bin",
        conns: 10,
        close: false,
        pipeline: 1,
        group: Group::Plain,
    },
    Workload {
        label: "100 KB text, gzip",
        title: "100 KiB HTML page, Accept-Encoding: gzip, keep-alive, 50 connections",
        file: TEXT_FILE.0,
        conns: 50,
        close: false,
        pipeline: 1,
        group: Group::Gzip,
    },
    Workload {
        label: "100 KB text, gzip, deflate.cache-dir",
        title: "100 KiB HTML page, gzip with deflate.cache-dir, keep-alive, 50 connections",
        file: TEXT_FILE.0,
        conns: 50,
        close: false,
        pipeline: 1,
        group: Group::GzipCache,
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

/// wrk's arguments beyond -t -c -d and the URL for `w`.
fn wrk_args<'a>(w: &Workload, script: Option<&'a str>) -> Vec<&'a str> {
    let mut extra = Vec::new();
    if w.close {
        extra.extend(["-H", "Connection: close"]);
    }
    if w.group != Group::Plain {
        extra.extend(["-H", "Accept-Encoding: gzip"]);
    }
    if let Some(sc) = script {
        extra.extend(["-s", sc]);
    }
    extra
}

/// The command line of `w`, for table titles.
fn wrk_line(w: &Workload, secs: u64, script: bool) -> String {
    let mut line = format!("wrk -t1 -c{} -d{secs}s", w.conns);
    if w.close {
        line.push_str(" -H \"Connection: close\"");
    }
    if w.group != Group::Plain {
        line.push_str(" -H \"Accept-Encoding: gzip\"");
    }
    if script {
        let _ = write!(line, " -s pipeline-{}.lua", w.pipeline);
    }
    let _ = write!(line, " /{}", w.file);
    line
}

/// One wrk run on one server, and what the server spent on it.
struct Run {
    load: Load,
    cpu: Option<CpuUse>,
    /// Closed-loop runs: connections opened and held by the server at the window's start.
    conns: Option<(usize, usize)>,
}

impl Run {
    fn us_per_req(&self) -> Option<f64> {
        self.cpu
            .as_ref()
            .map(|c| c.us_per_req)
            .filter(|v| v.is_finite())
    }
}

/// Every round of one workload on one server.
#[derive(Default)]
struct Series {
    runs: Vec<Result<Run, String>>,
}

impl Series {
    /// The run with the median CPU per request (the lower of the middle two for an even
    /// count): one real run, so that its other figures go with it.
    fn median(&self) -> Option<&Run> {
        let mut ok: Vec<(&Run, f64)> = self
            .runs
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter_map(|r| r.us_per_req().map(|v| (r, v)))
            .collect();
        ok.sort_by(|a, b| a.1.total_cmp(&b.1));
        ok.get(ok.len().saturating_sub(1) / 2).map(|(r, _)| *r)
    }

    fn first_error(&self) -> Option<&str> {
        self.runs
            .iter()
            .find_map(|r| r.as_ref().err().map(String::as_str))
    }

    /// Every round's CPU per request, "6.51 6.60 7.02", for judging the noise.
    fn rounds_text(&self) -> String {
        let cells: Vec<String> = self
            .runs
            .iter()
            .map(|r| match r.as_ref().ok().and_then(Run::us_per_req) {
                Some(v) => fmt_us(v),
                None => "failed".to_string(),
            })
            .collect();
        if cells.is_empty() {
            "-".to_string()
        } else {
            cells.join(" ")
        }
    }
}

/// Run wrk against `file` on `s` and take the server's CPU before and after. `settle`: before
/// the second sample, wait (up to STOP_TIMEOUT) until the server has closed wrk's connections,
/// so that their teardown is inside the figure as their set-up is.
#[allow(clippy::too_many_arguments)]
fn measure(
    wrk: &Path,
    place: &Placement,
    s: &Server,
    file: &str,
    conns: u32,
    secs: u64,
    extra: &[&str],
    settle: bool,
) -> Result<Run, String> {
    let url = format!("http://127.0.0.1:{}/{file}", s.port);
    let fds_before = open_fds(s.pid()).ok();
    let before = CpuSample::take(s.pid());
    let load = run_wrk_args(wrk, place, &url, conns, secs, extra)?;
    if load.requests == 0 {
        return Err(format!("wrk completed no request in {secs} s"));
    }
    if let (true, Some(n)) = (settle, fds_before) {
        // A few descriptors of slack: a server may keep a file open a moment longer.
        wait_until(STOP_TIMEOUT, || {
            open_fds(s.pid()).map_or(true, |f| f <= n + 8)
        });
    }
    let cpu = match before {
        Ok(b) => CpuSample::take(s.pid())
            .ok()
            .map(|a| b.until(&a, load.requests)),
        Err(_) => None,
    };
    Ok(Run {
        load,
        cpu,
        conns: None,
    })
}

/// What is wrong with a run of lightd's, if anything.
fn lightd_problem(run: &Result<Run, String>) -> Option<String> {
    match run {
        Ok(r) if r.load.socket_errors.iter().sum::<u64>() > 0 || r.load.non_2xx_3xx > 0 => {
            Some(format!(
                "socket errors {} and {} non-2xx/3xx responses",
                r.load.errors_text(),
                r.load.non_2xx_3xx
            ))
        }
        Ok(_) => None,
        Err(e) => Some(format!("wrk failed: {e}")),
    }
}

fn print_load(
    cols: &Columns,
    w: &Workload,
    set: &Settings,
    script: bool,
    series: &[Series],
    servers: &[Server],
) {
    let variants = servers.iter().any(|s| s.variant) && set.variant_rounds < set.rounds;
    let mut t = Table::new(
        format!(
            "{} ({}), median of {} rounds by CPU per request{}",
            w.title,
            wrk_line(w, set.secs, script),
            set.rounds,
            if variants {
                format!(" ({} for lightd-mods and lightd-musl)", set.variant_rounds)
            } else {
                String::new()
            }
        ),
        cols,
    );
    let median: Vec<Option<&Run>> = series.iter().map(Series::median).collect();
    let get = |f: fn(&Load) -> f64| -> Vec<Option<f64>> {
        median.iter().map(|r| r.map(|r| f(&r.load))).collect()
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
        median
            .iter()
            .map(|r| r.and_then(|r| r.cpu.as_ref()).map(f))
            .collect()
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
    t.text(
        "  each round (us)",
        series.iter().map(Series::rounds_text).collect(),
    );
    t.metric(
        "wrk CPU busy (%)",
        &use_of(|c| c.wrk_busy_pct),
        0,
        Better::Neither,
    );
    t.text(
        "socket errors conn/read/write/timeout",
        median
            .iter()
            .map(|r| r.map_or_else(|| "failed".to_string(), |r| r.load.errors_text()))
            .collect(),
    );
    t.text(
        "non-2xx/3xx responses (count)",
        median
            .iter()
            .map(|r| r.map_or_else(|| "failed".to_string(), |r| r.load.non_2xx_3xx.to_string()))
            .collect(),
    );
    if w.group != Group::Plain {
        t.text(
            "response (checked once)",
            servers
                .iter()
                .map(|s| match &s.gzip {
                    Some(v) if v.is_gzip() => "gzip".to_string(),
                    Some(_) => "no gzip".to_string(),
                    None => "-".to_string(),
                })
                .collect(),
        );
    }
    t.print();
    for (ser, s) in series.iter().zip(servers) {
        if let Some(e) = ser.first_error() {
            println!("  {}: {e}", s.name);
        }
    }
}

/// CPU per request as the headline prints it: two decimals, none from 100 µs up.
fn fmt_us(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A cell of a headline table: a figure, or why there is none.
enum Cell {
    Value(f64),
    Text(String),
}

/// One Markdown row: the label, lightd's figure with its unit, the peers' (in bold when lower
/// than lightd's), and lightd / the lowest peer (in bold above 1, where lightd loses).
fn markdown_row(label: &str, cells: &[Cell], unit: &str, extra: &[String]) -> String {
    let lightd = match cells.first() {
        Some(Cell::Value(v)) => Some(*v),
        _ => None,
    };
    let mut row = format!("| {label} |");
    for (i, c) in cells.iter().enumerate() {
        let text = match c {
            Cell::Value(v) if i == 0 => format!("{}{unit}", fmt_us(*v)),
            Cell::Value(v) if lightd.is_some_and(|l| *v < l) => format!("**{}**", fmt_us(*v)),
            Cell::Value(v) => fmt_us(*v),
            Cell::Text(t) => t.clone(),
        };
        let _ = write!(row, " {text}");
        if let Some(x) = extra.get(i).filter(|x| !x.is_empty()) {
            let _ = write!(row, ", {x}");
        }
        row.push_str(" |");
    }
    let best = cells
        .iter()
        .skip(1)
        .filter_map(|c| match c {
            Cell::Value(v) => Some(*v),
            Cell::Text(_) => None,
        })
        .reduce(f64::min);
    let ratio = match (lightd, best) {
        (Some(l), Some(b)) if b > 0.0 => {
            let r = l / b;
            if r > 1.0 {
                format!("**{r:.2}**")
            } else {
                format!("{r:.2}")
            }
        }
        _ => "-".to_string(),
    };
    let _ = write!(row, " {ratio} |");
    row
}

fn markdown_header(first: &str) -> String {
    let mut head = format!("| {first} |");
    for p in PROJECTS {
        let _ = write!(head, " {p} |");
    }
    let _ = write!(
        head,
        " {} / best peer |\n|---|{}---|",
        PROJECTS[0],
        "---|".repeat(PROJECTS.len())
    );
    head
}

/// Issue 13's table: one row per workload, server CPU per request (median round) for each
/// project, and lightd / the best peer.
fn print_headline(
    set: &Settings,
    place: &Placement,
    versions: &[String],
    results: &[Vec<Series>],
    groups: &[&Vec<Server>; 3],
) {
    println!("{}", markdown_header("workload"));
    for (w, series) in WORKLOADS.iter().zip(results) {
        let group = match w.group {
            Group::Plain => groups[0],
            Group::Gzip => groups[1],
            Group::GzipCache => groups[2],
        };
        let cells: Vec<Cell> = PROJECTS
            .iter()
            .map(|p| {
                let Some(i) = group.iter().position(|s| s.name == *p) else {
                    return Cell::Text("-".to_string());
                };
                if group[i].gzip.as_ref().is_some_and(|v| !v.is_gzip()) {
                    return Cell::Text("no gzip".to_string());
                }
                match series
                    .get(i)
                    .and_then(Series::median)
                    .and_then(Run::us_per_req)
                {
                    Some(v) => Cell::Value(v),
                    None => Cell::Text("failed".to_string()),
                }
            })
            .collect();
        println!("{}", markdown_row(w.label, &cells, " µs", &[]));
    }
    println!();
    let placement = match (place.server_cpu, place.client_cpu) {
        (Some(s), Some(c)) => format!("server pinned to CPU {s}, `wrk -t1` on CPU {c}"),
        _ => "nothing pinned (one usable CPU)".to_string(),
    };
    println!(
        "Server CPU per request (µs) from /proc/PID/task/*/schedstat over the requests wrk \
         completed; {placement}; median of {} rounds of {} s each.",
        set.rounds, set.secs
    );
    println!(
        "Peers: {} (lighttpd 1 process, nginx 1 worker, h2o 1 thread); \"-\": not installed \
         or not started.",
        if versions.is_empty() {
            "none".to_string()
        } else {
            versions.join(", ")
        }
    );
    println!(
        "gzip rows: level {} everywhere, `Accept-Encoding: gzip`; each server's answer was \
         checked once before timing (\"no gzip\": sent uncompressed). deflate.cache-dir: lightd \
         and lighttpd only. Bold: a peer below lightd, and a ratio above 1.",
        set.gzip_level
    );
}

// ---------------------------------------------------------------------------------------------
// Connection scaling
// ---------------------------------------------------------------------------------------------

/// The 1 KB keep-alive workload at each of SCALE_CONNS, on one fresh instance per project.
struct ConnScaling {
    levels: Vec<u32>,
    /// Levels left out, and why (RLIMIT_NOFILE).
    skipped: Vec<String>,
    /// The projects that started, in PROJECTS order.
    names: Vec<&'static str>,
    /// results[level][server]
    results: Vec<Vec<Series>>,
}

/// Start lightd and each peer with limits for the largest level, then run the closed-loop
/// client at every level, rounds interleaved, server on one CPU and the client on the other.
fn conn_scaling(
    base: &Spec,
    set: &Settings,
    nofile: usize,
    problems: &mut Vec<String>,
) -> Result<ConnScaling, String> {
    let mut levels = Vec::new();
    let mut skipped = Vec::new();
    for n in SCALE_CONNS {
        // The client needs a descriptor per connection and a few of its own.
        if n as usize + 64 <= nofile {
            levels.push(n);
        } else {
            skipped.push(format!("{n} connections (RLIMIT_NOFILE is {nofile})"));
        }
    }
    let most = levels.iter().max().copied().unwrap_or(1) as usize;
    let limits = Limits::for_conns(most + 512);
    let spec = Spec {
        limits: &limits,
        tag: "scale",
        ..*base
    };
    println!();
    println!(
        "Connection scaling: one instance per server with {} connections allowed",
        limits.conns
    );
    let group = start_group(&PROJECTS, &spec, problems);
    let mut scratch = vec![0u8; MAX_HEAD];
    for s in &group {
        check_serves(s, &mut scratch).map_err(|e| format!("{} ({}): {e}", s.name, s.tag))?;
    }
    let req = request("1k.bin");
    let mut results: Vec<Vec<Series>> = levels
        .iter()
        .map(|_| group.iter().map(|_| Series::default()).collect())
        .collect();
    for round in 0..set.scaling_rounds {
        for (li, &n) in levels.iter().enumerate() {
            for (si, s) in group.iter().enumerate() {
                eprintln!(
                    "bench: scaling round {}/{}: {n} connection(s) to {}",
                    round + 1,
                    set.scaling_rounds,
                    s.name
                );
                let run = closed_loop_run(s, &req, n, set.secs);
                if s.name == "lightd" {
                    if let Some(p) = lightd_problem(&run) {
                        problems.push(format!("scaling, {n} connections: {p}"));
                    }
                }
                results[li][si].runs.push(run);
            }
        }
    }
    // The details, like the other workloads' tables.
    let cols = Columns::new(&group);
    for (li, &n) in levels.iter().enumerate() {
        let mut t = Table::new(
            format!(
                "1 KiB file, keep-alive, {n} connection(s), our closed-loop client for {} s, \
                 median of {} round(s)",
                set.secs, set.scaling_rounds
            ),
            &cols,
        );
        let median: Vec<Option<&Run>> = results[li].iter().map(Series::median).collect();
        t.metric(
            "throughput (req/s)",
            &median
                .iter()
                .map(|r| r.map(|r| r.load.req_per_s))
                .collect::<Vec<_>>(),
            0,
            Better::Higher,
        );
        t.metric(
            "server CPU per request (us)",
            &median
                .iter()
                .map(|r| r.and_then(Run::us_per_req))
                .collect::<Vec<_>>(),
            2,
            Better::Lower,
        );
        t.metric(
            "latency, p99 (ms)",
            &median
                .iter()
                .map(|r| r.map(|r| r.load.latency_p99_ms))
                .collect::<Vec<_>>(),
            3,
            Better::Lower,
        );
        t.text(
            "connections lost or bad answers",
            median
                .iter()
                .map(|r| {
                    r.map_or_else(
                        || "failed".to_string(),
                        |r| r.load.socket_errors.iter().sum::<u64>().to_string(),
                    )
                })
                .collect(),
        );
        t.text(
            "connections opened / held by the server",
            median
                .iter()
                .map(|r| match r.and_then(|r| r.conns) {
                    Some((o, h)) => format!("{o}/{h}"),
                    None => "-".to_string(),
                })
                .collect(),
        );
        println!();
        t.print();
        for (ser, s) in results[li].iter().zip(&group) {
            if let Some(e) = ser.first_error() {
                println!("  {}: {e}", s.name);
            }
        }
    }
    Ok(ConnScaling {
        levels,
        skipped,
        names: group.iter().map(|s| s.name).collect(),
        results,
    })
}

/// One timed window of `closed_loop` with `n` connections to `s`, as a Run: the server's CPU
/// sampled when all connections are up and when the window closes. Afterwards, wait (bounded)
/// until the server has closed them, so the next run starts from the same state.
fn closed_loop_run(s: &Server, req: &[u8], n: u32, secs: u64) -> Result<Run, String> {
    let fds_before = open_fds(s.pid())?;
    let result = closed_loop::run(
        s.addr(),
        req,
        n as usize,
        Duration::from_secs(secs),
        || open_fds(s.pid()).ok().map(|f| f.saturating_sub(fds_before)),
        || CpuSample::take(s.pid()),
        |before| before.map(|b| (CpuSample::take(s.pid()), b)),
    );
    // The connections are closed by now (dropped inside run).
    wait_until(STOP_TIMEOUT, || {
        open_fds(s.pid()).map_or(true, |f| f <= fds_before + 8)
    });
    let (out, samples) = result?;
    if out.requests == 0 {
        return Err(format!(
            "no response completed in the {:.1} s window",
            out.window.as_secs_f64()
        ));
    }
    let cpu = match samples {
        Ok((Ok(after), before)) => Some(before.until(&after, out.requests)),
        _ => None,
    };
    let secs = out.window.as_secs_f64();
    Ok(Run {
        load: Load {
            requests: out.requests,
            req_per_s: if secs > 0.0 {
                out.requests as f64 / secs
            } else {
                f64::NAN
            },
            mib_per_s: f64::NAN,
            latency_ms: f64::NAN,
            latency_max_ms: f64::NAN,
            latency_p99_ms: out.p99_ms,
            // Lost connections and bad answers, where wrk would count read errors.
            socket_errors: [0, out.errors, 0, 0],
            non_2xx_3xx: 0,
        },
        cpu,
        conns: Some((out.opened, out.held)),
    })
}

/// The scaling table in Markdown: per level, each project's CPU per request and p99 latency,
/// and lightd / the best peer on CPU per request.
fn print_conn_scaling(set: &Settings, cs: &ConnScaling) {
    println!("==================================================================");
    println!("SCALING: 1 KB keep-alive, CPU per request and p99 latency by connections");
    println!("==================================================================");
    println!();
    println!("{}", markdown_header("connections"));
    for (li, &n) in cs.levels.iter().enumerate() {
        let mut cells = Vec::new();
        let mut p99 = Vec::new();
        for p in PROJECTS {
            let run = cs
                .names
                .iter()
                .position(|s| *s == p)
                .and_then(|i| cs.results.get(li)?.get(i));
            match run {
                None => {
                    cells.push(Cell::Text("-".to_string()));
                    p99.push(String::new());
                }
                Some(ser) => match ser.median() {
                    Some(r) => {
                        cells.push(
                            r.us_per_req()
                                .map_or_else(|| Cell::Text("failed".to_string()), Cell::Value),
                        );
                        let errs = r.load.socket_errors.iter().sum::<u64>();
                        let mut note = format!("p99 {:.2} ms", r.load.latency_p99_ms);
                        if errs > 0 {
                            let _ = write!(note, " ({errs} connections lost or bad answers)");
                        }
                        if let Some((_, held)) = r.conns.filter(|c| c.1 < n as usize) {
                            let _ = write!(note, " (accepted only {held})");
                        }
                        p99.push(note);
                    }
                    None => {
                        cells.push(Cell::Text("failed".to_string()));
                        p99.push(String::new());
                    }
                },
            }
        }
        let label = if n == 1 {
            "1".to_string()
        } else {
            // 10000 as "10,000".
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        println!("{}", markdown_row(&label, &cells, " µs", &p99));
    }
    println!();
    println!(
        "Server CPU per request (µs) and p99 latency with N keep-alive connections, each with \
         one request in flight (closed loop), from the bench's own client on the wrk CPU: \
         connections opened first (128 at a time), then a timed window; accepts and closes \
         are outside it. wrk opens all its connections inside the run, and at 10,000 the \
         burst overflows the listen backlogs (dropped SYNs, retried 1 and 3 s later), which \
         measured the backlog, not the server. Median of {} round(s) of {} s \
         (LIGHTD_BENCH_SCALING_ROUNDS). The ratio is lightd / best peer on CPU per request.",
        set.scaling_rounds, set.secs
    );
    for s in &cs.skipped {
        println!("Not measured: {s}.");
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
    /// Which instance of that server this is ("main", "gzip", ...): names its files.
    tag: &'static str,
    /// lightd-mods and lightd-musl: measured in LIGHTD_BENCH_VARIANT_ROUNDS rounds only.
    variant: bool,
    /// For the gzip workloads, what the check before timing found.
    gzip: Option<Verdict>,
    /// Its deflate.cache-dir, when it has one.
    cache_dir: Option<PathBuf>,
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

/// Connection limits for every server: the same for all of one measurement.
struct Limits {
    conns: usize,
    fds: usize,
}

impl Limits {
    fn for_conns(conns: usize) -> Limits {
        // lighttpd wants max-fds comfortably above max-connections (a connection can hold a
        // file as well as a socket).
        Limits {
            conns,
            fds: conns * 3,
        }
    }
}

/// Where and how to start one server instance.
#[derive(Clone, Copy)]
struct Spec<'a> {
    dir: &'a Path,
    docroot: &'a Path,
    place: &'a Placement,
    limits: &'a Limits,
    /// Names this instance's files apart from other instances of the same server.
    tag: &'static str,
    gzip: Option<&'a Gzip>,
}

/// On-the-fly gzip, set up alike in every server that has it.
struct Gzip {
    level: u64,
    /// lighttpd's deflate.cache-dir: a static file is compressed once, then served from there.
    cache: bool,
}

impl Spec<'_> {
    /// The instance's own directory for deflate.cache-dir, created; None without a cache.
    fn cache_dir(&self, name: &str) -> Result<Option<PathBuf>, String> {
        if !self.gzip.is_some_and(|g| g.cache) {
            return Ok(None);
        }
        let d = self.dir.join(format!("{name}-{}-deflate-cache", self.tag));
        fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        Ok(Some(d))
    }

    /// mod_deflate's keys, as lightd and lighttpd both read them.
    fn deflate_config(&self, cache_dir: Option<&Path>) -> String {
        let Some(g) = self.gzip else {
            return String::new();
        };
        let mut text = format!(
            "server.modules = ( \"mod_deflate\" )\n\
             deflate.mimetypes = ( \"text/\" )\n\
             deflate.allowed-encodings = ( \"gzip\" )\n\
             deflate.compression-level = {}\n",
            g.level
        );
        if let Some(d) = cache_dir {
            let _ = writeln!(text, "deflate.cache-dir = {}", quoted(d));
        }
        text
    }
}

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

/// Start lightd from `bin` as `spec` says, with `extra` config lines appended.
fn start_lightd(
    bin: &Path,
    name: &'static str,
    spec: &Spec,
    workers: u32,
    extra: &str,
) -> Result<Server, String> {
    let cfg = spec.dir.join(format!("{name}-{}-{workers}.conf", spec.tag));
    let cache_dir = spec.cache_dir(name)?;
    let text = format!(
        "# lightd benchmark config: no access log, identical limits to the other servers.\n\
         server.document-root = {root}\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = 0\n\
         server.max-fds = {fds}\n\
         server.max-connections = {conns}\n\
         server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
         server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
         mimetype.assign = ( \".bin\" => \"application/octet-stream\", \".html\" => \"text/html\" )\n\
         server.max-worker = {workers}\n\
         {deflate}\
         {extra}",
        root = quoted(spec.docroot),
        fds = spec.limits.fds,
        conns = spec.limits.conns,
        deflate = spec.deflate_config(cache_dir.as_deref()),
    );
    write_config(&cfg, &text)?;
    let mut cmd = command(bin, spec.place.server_cpu, spec.place.taskset.as_deref());
    // lightd announces its port at info level; a RUST_LOG of ours could hide the line.
    cmd.arg("-D")
        .arg("-f")
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = spawn_server(name, cmd, None, None)?;
    server.tag = spec.tag;
    server.cache_dir = cache_dir;
    Ok(server)
}

/// server.max-worker: the 1 KB keep-alive workload against one worker and two, with nothing
/// pinned so that both cores are available to the server (wrk shares them on a 2-core
/// machine, which caps the gain).
fn scaling(wrk: &Path, base: &Spec, secs: u64) -> Result<(), String> {
    let free = Placement {
        server_cpu: None,
        client_cpu: None,
        taskset: None,
    };
    let spec = Spec {
        place: &free,
        tag: "workers",
        ..*base
    };
    let mut rates = Vec::new();
    for workers in [1u32, 2] {
        eprintln!("bench: wrk on lightd with server.max-worker = {workers}");
        let server = start_lightd(Path::new(BIN), "lightd", &spec, workers, "")?;
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

fn start_lighttpd(prog: &Path, spec: &Spec) -> Result<Server, String> {
    let port = free_port()?;
    let cfg = spec.dir.join(format!("lighttpd-{}.conf", spec.tag));
    let errorlog = spec.dir.join(format!("lighttpd-{}-error.log", spec.tag));
    let cache_dir = spec.cache_dir("lighttpd")?;
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
         mimetype.assign = ( \".bin\" => \"application/octet-stream\", \".html\" => \"text/html\" )\n\
         {deflate}",
        root = quoted(spec.docroot),
        log = quoted(&errorlog),
        fds = spec.limits.fds,
        conns = spec.limits.conns,
        deflate = spec.deflate_config(cache_dir.as_deref()),
    );
    write_config(&cfg, &text)?;
    let mut cmd = command(prog, spec.place.server_cpu, spec.place.taskset.as_deref());
    cmd.arg("-D")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = spawn_server("lighttpd", cmd, Some(port), Some(errorlog))?;
    server.tag = spec.tag;
    server.cache_dir = cache_dir;
    Ok(server)
}

fn start_nginx(prog: &Path, spec: &Spec) -> Result<Server, String> {
    let port = free_port()?;
    let prefix = spec.dir.join(format!("nginx-{}", spec.tag));
    fs::create_dir_all(&prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    let cfg = prefix.join("nginx.conf");
    let p = prefix.display();
    // text/html is always among gzip_types; the rest is what a site would list.
    let gzip = spec.gzip.map_or_else(String::new, |g| {
        format!(
            "    gzip on;\n    gzip_comp_level {};\n    \
             gzip_types text/plain text/css application/javascript;\n",
            g.level
        )
    });
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
        fds = spec.limits.fds,
        conns = spec.limits.conns,
        http = nginx_http_block_with(&prefix, port, spec.docroot, &gzip),
    );
    write_config(&cfg, &text)?;
    let mut cmd = command(prog, spec.place.server_cpu, spec.place.taskset.as_deref());
    // -e: the error log nginx opens before it has read the config (else /var/log/nginx).
    cmd.arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg("stderr")
        .arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = spawn_server("nginx", cmd, Some(port), None)?;
    server.tag = spec.tag;
    Ok(server)
}

fn start_h2o(prog: &Path, spec: &Spec) -> Result<Server, String> {
    let port = free_port()?;
    let cfg = spec.dir.join(format!("h2o-{}.conf", spec.tag));
    // `compress: ON` with the gzip level spelled out (ON alone means level 1).
    let gzip = spec
        .gzip
        .map_or_else(String::new, |g| format!("compress:\n  gzip: {}\n", g.level));
    write_config(
        &cfg,
        &h2o_config(port, spec.docroot, spec.limits.conns, &gzip),
    )?;
    let mut cmd = command(prog, spec.place.server_cpu, spec.place.taskset.as_deref());
    // Worker mode (h2o's default) serves from this very process, in the foreground, logging
    // errors to stderr; -m master would put a Perl supervisor between us and the server. h2o
    // raises its own RLIMIT_NOFILE to the hard limit, so limits.fds needs no counterpart.
    cmd.arg("-m")
        .arg("worker")
        .arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = spawn_server("h2o", cmd, Some(port), None)?;
    server.tag = spec.tag;
    Ok(server)
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
        tag: "",
        variant: false,
        gzip: None,
        cache_dir: None,
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

    /// The cost per request of `requests` completed between `self` and `after`.
    fn until(&self, after: &CpuSample, requests: u64) -> CpuUse {
        let wall_us = after.at.duration_since(self.at).as_secs_f64() * 1e6;
        let server_us = after.server_ns.saturating_sub(self.server_ns) as f64 / 1e3;
        let user = after.user_ticks.saturating_sub(self.user_ticks) as f64;
        let sys = after.sys_ticks.saturating_sub(self.sys_ticks) as f64;
        let kernel_share = if user + sys > 0.0 {
            sys / (user + sys)
        } else {
            f64::NAN
        };
        // No request completed: no figure (a division by one would look like a real cost).
        let per_req = if requests == 0 {
            f64::NAN
        } else {
            server_us / requests as f64
        };
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
