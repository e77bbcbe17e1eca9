//! The TLS rows: server CPU per request over HTTPS for lightd, lighttpd (mod_openssl) and
//! nginx (ssl) in the same run, with the same certificate (ECDSA P-256, made here with the
//! openssl CLI) and TLS 1.3 only. Three workloads, each with wrk over https:
//! - 1 KB keep-alive (record protection and the request path);
//! - handshakes: `Connection: close`, so every request is a new connection and a full
//!   handshake (wrk does not resume sessions): server CPU per handshake;
//! - a 10 MB download (bulk encryption; no sendfile).
//!
//! A server that does not start with TLS (lightd before it has TLS) gets "n/a" cells and is
//! not counted as a failure of the run.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    command, find_program, free_port, quoted, run_bounded, run_time_ns, run_wrk_args, stop_child,
    write_config, Placement, BIN, KEEP_ALIVE_IDLE_SECS, KEEP_ALIVE_REQUESTS, POLL, START_TIMEOUT,
    STOP_TIMEOUT,
};

/// (row label, file, connections, extra wrk arguments).
const WORKLOADS: [(&str, &str, u32, &[&str]); 3] = [
    ("TLS 1 KB keep-alive", "1k.bin", 50, &[]),
    (
        "TLS handshake (new connection per request)",
        "1k.bin",
        10,
        &["-H", "Connection: close"],
    ),
    ("TLS 10 MB download", "10m.bin", 4, &[]),
];

const PROJECTS: [&str; 3] = ["lightd", "lighttpd", "nginx"];

struct TlsServer {
    child: Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM, STOP_TIMEOUT);
    }
}

/// Make the CA-less certificate the servers share: self-signed ECDSA P-256 for localhost.
fn make_cert(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=localhost", "-addext"])
        .arg("subjectAltName=DNS:localhost,IP:127.0.0.1")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = run_bounded(cmd, Duration::from_secs(30))?;
    if !out.status.success() {
        return Err(format!("openssl req: {}", out.stderr.trim()));
    }
    Ok((cert, key))
}

fn start(
    name: &str,
    place: &Placement,
    dir: &Path,
    root: &Path,
    cert: &Path,
    key: &Path,
) -> Result<TlsServer, String> {
    let port = free_port()?;
    let (prog, args): (PathBuf, Vec<String>) = match name {
        "lightd" | "lighttpd" => {
            let cfg = dir.join(format!("{name}-tls.conf"));
            let modules = if name == "lighttpd" {
                "server.modules = ( \"mod_openssl\" )\n"
            } else {
                "server.modules += ( \"mod_openssl\" )\n"
            };
            write_config(
                &cfg,
                &format!(
                    "server.document-root = {root}\nserver.bind = \"127.0.0.1\"\n\
                     server.port = {port}\n{modules}\
                     server.max-keep-alive-requests = {KEEP_ALIVE_REQUESTS}\n\
                     server.max-keep-alive-idle = {KEEP_ALIVE_IDLE_SECS}\n\
                     mimetype.assign = ( \".bin\" => \"application/octet-stream\" )\n\
                     ssl.engine = \"enable\"\nssl.pemfile = {cert}\nssl.privkey = {key}\n\
                     ssl.openssl.ssl-conf-cmd = ( \"MinProtocol\" => \"TLSv1.3\" )\n",
                    root = quoted(root),
                    cert = quoted(cert),
                    key = quoted(key),
                ),
            )?;
            let prog = if name == "lightd" {
                PathBuf::from(BIN)
            } else {
                find_program("lighttpd").ok_or("not installed")?
            };
            (
                prog,
                vec!["-D".into(), "-f".into(), cfg.display().to_string()],
            )
        }
        _ => {
            let prog = find_program("nginx").ok_or("not installed")?;
            let prefix = dir.join("nginx-tls");
            fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
            let p = prefix.display();
            let cfg = prefix.join("nginx.conf");
            write_config(
                &cfg,
                &format!(
                    "worker_processes 1;\ndaemon off;\nmaster_process off;\nerror_log stderr;\n\
                     pid {p}/nginx.pid;\nevents {{ worker_connections 1024; }}\n\
                     http {{\n access_log off;\n client_body_temp_path {p}/body;\n\
                     proxy_temp_path {p}/proxy;\n fastcgi_temp_path {p}/fastcgi;\n\
                     uwsgi_temp_path {p}/uwsgi;\n scgi_temp_path {p}/scgi;\n\
                     default_type application/octet-stream;\n\
                     keepalive_requests {KEEP_ALIVE_REQUESTS};\n\
                     keepalive_timeout {KEEP_ALIVE_IDLE_SECS};\n\
                     server {{\n  listen 127.0.0.1:{port} ssl;\n  root {root};\n\
                     ssl_certificate {cert};\n  ssl_certificate_key {key};\n\
                     ssl_protocols TLSv1.3;\n }}\n}}\n",
                    root = quoted(root),
                    cert = quoted(cert),
                    key = quoted(key),
                ),
            )?;
            (
                prog,
                vec![
                    "-p".into(),
                    p.to_string(),
                    "-e".into(),
                    "stderr".into(),
                    "-c".into(),
                    cfg.display().to_string(),
                ],
            )
        }
    };
    let mut cmd = command(&prog, place.server_cpu, place.taskset.as_deref());
    cmd.args(&args).stdout(Stdio::null()).stderr(Stdio::null());
    let child = cmd.spawn().map_err(|e| format!("spawn {name}: {e}"))?;
    let mut server = TlsServer { child, port };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(st)) = server.child.try_wait() {
            return Err(format!("exited ({st})"));
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        if Instant::now() >= deadline {
            return Err("not listening".into());
        }
        std::thread::sleep(POLL);
    }
}

/// The pid whose CPU is counted: the server itself (taskset execs it in place).
fn pid_of(s: &TlsServer) -> u32 {
    s.child.id()
}

/// Run the TLS workloads on each server, `rounds` times each (median), and print the table.
/// `root` holds 1k.bin and 10m.bin. Problems are printed, never fatal.
pub fn section(wrk: &Path, place: &Placement, dir: &Path, root: &Path, secs: u64, rounds: usize) {
    println!();
    println!("==================================================================");
    println!("HEADLINE: TLS, server CPU per request (µs), TLS 1.3, ECDSA P-256");
    println!("==================================================================");
    let (cert, key) = match make_cert(dir) {
        Ok(k) => k,
        Err(e) => {
            println!("TLS rows not measured: {e}");
            return;
        }
    };
    let mut servers: Vec<(&str, Result<TlsServer, String>)> = PROJECTS
        .iter()
        .map(|n| (*n, start(n, place, dir, root, &cert, &key)))
        .collect();
    // cells[workload][server]: median µs per request, or why not.
    let mut cells: Vec<Vec<Result<f64, String>>> = Vec::new();
    for (label, file, conns, extra) in WORKLOADS {
        let mut row = Vec::new();
        for (name, s) in &mut servers {
            let Ok(s) = s else {
                row.push(Err("n/a".to_string()));
                continue;
            };
            let url = format!("https://127.0.0.1:{}/{file}", s.port);
            let mut samples = Vec::new();
            let mut err = None;
            for _ in 0..rounds.max(1) {
                let pid = pid_of(s);
                let before = run_time_ns(pid);
                let load = run_wrk_args(wrk, place, &url, conns, secs, extra);
                let after = run_time_ns(pid);
                match (before, load, after) {
                    (Ok(b), Ok(l), Ok(a)) if l.requests > 0 && l.non_2xx_3xx == 0 => {
                        samples.push((a.saturating_sub(b)) as f64 / 1e3 / l.requests as f64);
                        if l.socket_errors.iter().any(|&e| e > 0) {
                            err = Some(format!("socket errors {}", l.errors_text()));
                        }
                    }
                    (Ok(_), Ok(l), Ok(_)) => {
                        err = Some(format!("{} requests, bad answers", l.requests))
                    }
                    (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => err = Some(e),
                }
            }
            samples.sort_by(f64::total_cmp);
            match (samples.get(samples.len() / 2), err) {
                (Some(m), None) => row.push(Ok(*m)),
                (_, Some(e)) => {
                    println!("  {name}, {label}: {e}");
                    row.push(Err("err".into()));
                }
                (None, None) => row.push(Err("n/a".into())),
            }
        }
        cells.push(row);
    }
    for (name, s) in &servers {
        if let Err(e) = s {
            println!("  {name} with TLS: did not start ({e}): n/a");
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | {} | lightd / best peer |",
        PROJECTS.join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|", "---:|".repeat(PROJECTS.len()));
    for ((label, ..), row) in WORKLOADS.iter().zip(&cells) {
        let text: Vec<String> = row
            .iter()
            .map(|c| match c {
                Ok(v) => format!("{v:.1}"),
                Err(e) => e.clone(),
            })
            .collect();
        let best_peer = row[1..]
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .copied()
            .reduce(f64::min);
        let ratio = match (&row[0], best_peer) {
            (Ok(l), Some(p)) if p > 0.0 => format!("{:.2}", l / p),
            _ => "n/a".to_string(),
        };
        let _ = writeln!(out, "| {label} | {} | {ratio} |", text.join(" | "));
    }
    println!();
    print!("{out}");
    println!();
    println!(
        "Server CPU from /proc/PID/task/*/schedstat over the requests wrk completed \
         (wrk -t1, median of {rounds}, {secs} s each); lighttpd 1 process, nginx 1 worker."
    );
    servers.clear();
}
