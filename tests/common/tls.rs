//! TLS for the integration tests: a throw-away PKI made with the openssl CLI at test time, and
//! clients that are not ours (curl, `openssl s_client`, python's ssl module), so what is tested
//! is lightd's TLS as the rest of the world speaks it, not a client built from the same crates.
//!
//! Every client runs as a child process with a deadline: it is killed (by pid, ours) when it
//! overruns, and what it printed so far is kept for the failure message.
//!
//! `LIGHTD_TLS_TESTS_AGAINST=lighttpd` makes `TlsServer` run Debian's lighttpd (with
//! mod_openssl) on the same config instead of lightd: that is how the tests' own logic is
//! checked against the reference. Where lighttpd 1.4.69 is known to differ from what lightd
//! promises, the tests branch on `against()` and say why.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{builder, wait_child, Builder, Capture, Server, TempDir, POLL, START_TIMEOUT};

/// How long one client process (curl, s_client, python) may run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Days the CA and the ordinary certificates are valid (well past the 7-day warning).
const VALID_DAYS: i64 = 30;

// ---------------------------------------------------------------------------------------------
// Test PKI
// ---------------------------------------------------------------------------------------------

/// The key type of a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    EcP256,
    Rsa2048,
}

/// A certificate and its key, as separate PEM files and as one file (certificate, then key:
/// what `ssl.pemfile` takes when `ssl.privkey` is unset).
#[derive(Clone, Debug)]
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub both: PathBuf,
    /// The subject as given to openssl, e.g. "/CN=localhost/O=gen a".
    pub subject: String,
}

/// What to issue: the subject, the subjectAltName entries ("DNS:a.test", "IP:127.0.0.1"),
/// the key type, the validity in days (-1: notAfter is a day before now, i.e. expired), and
/// whether it is a client certificate (extendedKeyUsage clientAuth) or a server one.
pub struct Spec<'a> {
    pub subject: &'a str,
    pub sans: &'a [&'a str],
    pub key: KeyType,
    pub days: i64,
    pub client: bool,
}

/// A CA and the certificates the TLS tests use, all made in a temporary directory:
/// - `localhost` (ECDSA P-256) and `localhost_rsa` (RSA-2048), for "localhost" and 127.0.0.1;
/// - `a_test` and `b_test` (ECDSA) for SNI;
/// - `client`, a client certificate signed by the CA (CN "test client", O "lightd tests");
/// - `expired` (notAfter in the past) and `soon` (expires in 3 days), both for localhost.
pub struct Pki {
    pub ca: PathBuf,
    ca_key: PathBuf,
    pub localhost: Cert,
    pub localhost_rsa: Cert,
    pub a_test: Cert,
    pub b_test: Cert,
    pub client: Cert,
    pub expired: Cert,
    pub soon: Cert,
    serial: std::cell::Cell<u32>,
    // Last: the files outlive every use of the paths above.
    dir: TempDir,
}

/// Run `openssl ARGS` in `dir` to completion; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = run_bounded(
        Command::new("openssl").args(args).current_dir(dir),
        &[],
        CLIENT_TIMEOUT,
    );
    assert!(
        out.status.is_some_and(|s| s.success()),
        "openssl {args:?} failed: {}",
        out.describe()
    );
}

impl Pki {
    pub fn new() -> Pki {
        let dir = TempDir::new("pki");
        let d = dir.path().to_path_buf();
        openssl(
            &d,
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=lightd test CA",
                "-days",
                &VALID_DAYS.to_string(),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        let ca = d.join("ca.pem");
        let ca_key = d.join("ca.key");
        let mut pki = Pki {
            ca: ca.clone(),
            ca_key,
            localhost: placeholder(),
            localhost_rsa: placeholder(),
            a_test: placeholder(),
            b_test: placeholder(),
            client: placeholder(),
            expired: placeholder(),
            soon: placeholder(),
            serial: std::cell::Cell::new(1),
            dir,
        };
        let local = ["DNS:localhost", "IP:127.0.0.1"];
        let server = |subject, sans, key, days| Spec {
            subject,
            sans,
            key,
            days,
            client: false,
        };
        pki.localhost = pki.issue(
            "localhost",
            &server("/CN=localhost", &local, KeyType::EcP256, VALID_DAYS),
        );
        pki.localhost_rsa = pki.issue(
            "localhost-rsa",
            &server("/CN=localhost/O=rsa", &local, KeyType::Rsa2048, VALID_DAYS),
        );
        pki.a_test = pki.issue(
            "a.test",
            &server("/CN=a.test", &["DNS:a.test"], KeyType::EcP256, VALID_DAYS),
        );
        pki.b_test = pki.issue(
            "b.test",
            &server("/CN=b.test", &["DNS:b.test"], KeyType::EcP256, VALID_DAYS),
        );
        pki.client = pki.issue(
            "client",
            &Spec {
                subject: "/CN=test client/O=lightd tests",
                sans: &[],
                key: KeyType::EcP256,
                days: VALID_DAYS,
                client: true,
            },
        );
        pki.expired = pki.issue(
            "expired",
            &server("/CN=localhost/O=expired", &local, KeyType::EcP256, -1),
        );
        pki.soon = pki.issue(
            "soon",
            &server("/CN=localhost/O=soon", &local, KeyType::EcP256, 3),
        );
        pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Issue a certificate signed by the CA as `name.pem` / `name.key` / `name.both.pem`.
    pub fn issue(&self, name: &str, spec: &Spec) -> Cert {
        let d = self.dir.path();
        let key = d.join(format!("{name}.key"));
        let cert = d.join(format!("{name}.pem"));
        let csr = d.join(format!("{name}.csr"));
        let ext = d.join(format!("{name}.ext"));
        let (alg, opt) = match spec.key {
            KeyType::EcP256 => ("ec", "ec_paramgen_curve:P-256"),
            KeyType::Rsa2048 => ("rsa", "rsa_keygen_bits:2048"),
        };
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                alg,
                "-pkeyopt",
                opt,
                "-nodes",
                "-keyout",
                s(&key),
                "-out",
                s(&csr),
                "-subj",
                spec.subject,
            ],
        );
        let mut text = String::from("basicConstraints=CA:FALSE\n");
        if spec.client {
            text.push_str("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n");
        } else {
            text.push_str("extendedKeyUsage=serverAuth\n");
        }
        if !spec.sans.is_empty() {
            text.push_str(&format!("subjectAltName={}\n", spec.sans.join(",")));
        }
        fs::write(&ext, text).expect("write extensions file");
        // A serial of our own: -CAcreateserial would race nothing here, but explicit is clearer.
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                s(&csr),
                "-CA",
                s(&self.ca),
                "-CAkey",
                s(&self.ca_key),
                "-set_serial",
                &serial.to_string(),
                // -1 (the least openssl 3.0 takes): notAfter a day before notBefore = now.
                "-days",
                &spec.days.to_string(),
                "-extfile",
                s(&ext),
                "-out",
                s(&cert),
            ],
        );
        let both = d.join(format!("{name}.both.pem"));
        let mut joined = fs::read(&cert).expect("read certificate");
        joined.extend(fs::read(&key).expect("read key"));
        fs::write(&both, joined).expect("write certificate and key");
        Cert {
            cert,
            key,
            both,
            subject: spec.subject.to_string(),
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

fn placeholder() -> Cert {
    Cert {
        cert: PathBuf::new(),
        key: PathBuf::new(),
        both: PathBuf::new(),
        subject: String::new(),
    }
}

/// A path as a &str (test paths are ASCII temp dirs).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

// ---------------------------------------------------------------------------------------------
// Running a client with a deadline
// ---------------------------------------------------------------------------------------------

/// What a client process did: its exit status (None: killed at the deadline) and output.
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn describe(&self) -> String {
        let out = self.stdout_text();
        let out: String = out.chars().take(4000).collect();
        format!(
            "status: {}\n--- stdout ---\n{out}\n--- stderr ---\n{}",
            match self.status {
                Some(s) => format!("{s}"),
                None => "killed at the deadline".to_string(),
            },
            self.stderr
        )
    }
}

/// Run `cmd` with `input` on its stdin (then closed), collecting its output; killed at
/// `timeout`.
pub fn run_bounded(cmd: &mut Command, input: &[u8], timeout: Duration) -> Ran {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = Capture::spawn(child.stdout.take().expect("piped stdout"));
    let err = Capture::spawn(child.stderr.take().expect("piped stderr"));
    if let Some(mut stdin) = child.stdin.take() {
        // From a thread: a client that does not read its input must not block the test.
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let status = wait_child(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    out.wait_closed(Duration::from_secs(2));
    err.wait_closed(Duration::from_secs(2));
    Ran {
        status,
        stdout: out.bytes(),
        stderr: err.text(),
    }
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

/// What curl reported for one transfer (from `-w`), and the body it saved.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub code: u16,
    pub http_version: String,
    /// New connections curl made for this transfer (0: it reused one).
    pub num_connects: u32,
    pub ssl_verify_result: i64,
    pub body: Vec<u8>,
}

/// The marker curl's `-w` output starts each transfer's line with (not "@", which makes
/// curl read the format from a file), so that a body written to
/// stdout by mistake cannot be taken for it.
const W_MARK: &str = "curl-w:";

/// `curl` to `https://HOST:PORT/PATH` for each of `paths` in one invocation (so one
/// keep-alive connection, as curl reuses it), with `HOST` resolved to `addr`, the test CA
/// trusted, HTTP/1.1 only. `extra` are more curl arguments (--cert, --data-binary, ...).
/// Ok: one `Fetch` per path; Err: curl failed (its exit code and stderr).
pub fn curl(
    ca: &Path,
    addr: SocketAddr,
    host: &str,
    paths: &[&str],
    extra: &[&str],
) -> Result<Vec<Fetch>, String> {
    let out_dir = TempDir::new("curl");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http1.1", "--max-time", "25", "--cacert", s(ca)])
        .arg("--resolve")
        .arg(format!("{host}:{}:{}", addr.port(), addr.ip()))
        .args(extra);
    for (i, p) in paths.iter().enumerate() {
        let url = format!("https://{host}:{}{p}", addr.port());
        cmd.arg("-o")
            .arg(out_dir.path().join(i.to_string()))
            .arg("-w")
            .arg(format!(
                "{W_MARK} %{{http_code}} %{{http_version}} %{{num_connects}} %{{ssl_verify_result}}\\n"
            ))
            .arg(url);
    }
    let ran = run_bounded(&mut cmd, &[], CLIENT_TIMEOUT);
    if !ran.ok() {
        return Err(ran.describe());
    }
    let text = ran.stdout_text();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(W_MARK)).collect();
    if lines.len() != paths.len() {
        return Err(format!(
            "{} transfer reports for {} URLs\n{}",
            lines.len(),
            paths.len(),
            ran.describe()
        ));
    }
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |j: usize| f.get(j).and_then(|v| v.parse::<i64>().ok());
        let (Some(code), Some(conns), Some(verify)) = (num(1), num(3), num(4)) else {
            return Err(format!("unreadable curl -w line {line:?}"));
        };
        out.push(Fetch {
            code: code as u16,
            http_version: f.get(2).unwrap_or(&"").to_string(),
            num_connects: conns as u32,
            ssl_verify_result: verify,
            body: fs::read(out_dir.path().join(i.to_string())).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// One GET with curl; panics (with curl's output) unless it ran.
pub fn curl_get(ca: &Path, addr: SocketAddr, host: &str, path: &str) -> Fetch {
    let mut v = curl(ca, addr, host, &[path], &[]).unwrap_or_else(|e| panic!("curl: {e}"));
    v.remove(0)
}

// ---------------------------------------------------------------------------------------------
// openssl s_client
// ---------------------------------------------------------------------------------------------

/// `openssl s_client -connect ADDR ARGS` with `-ign_eof`: it sends `input`, and when its stdin
/// is at EOF keeps reading until the server closes (so send a request with `Connection:
/// close`, or nothing and let the server time out). Killed at `timeout`. stdout holds the
/// session report and the server's bytes; stderr the verification and errors.
pub fn s_client(addr: SocketAddr, args: &[&str], input: &[u8], timeout: Duration) -> Ran {
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-ign_eof")
        .args(args);
    run_bounded(&mut cmd, input, timeout)
}

/// `GET path` with `Connection: close` for `host`, as raw bytes.
pub fn get_close(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// An interactive `openssl s_client` (no -ign_eof, so its connected commands such as "R"
/// work): write to it and watch its output as the test goes.
pub struct Interactive {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    pub out: Arc<Capture>,
    pub err: Arc<Capture>,
}

impl Interactive {
    pub fn start(addr: SocketAddr, args: &[&str]) -> Interactive {
        let mut child = Command::new("openssl")
            .arg("s_client")
            .arg("-connect")
            .arg(addr.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl s_client");
        let out = Capture::spawn(child.stdout.take().expect("piped stdout"));
        let err = Capture::spawn(child.stderr.take().expect("piped stderr"));
        Interactive {
            stdin: child.stdin.take(),
            child,
            out,
            err,
        }
    }

    pub fn send(&mut self, data: &[u8]) -> bool {
        match &mut self.stdin {
            Some(i) => i.write_all(data).and_then(|_| i.flush()).is_ok(),
            None => false,
        }
    }

    /// Close its stdin and wait (bounded) for it to exit; killed at the deadline.
    pub fn finish(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.stdin = None;
        let st = wait_child(&mut self.child, timeout);
        if st.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.out.wait_closed(Duration::from_secs(2));
        self.err.wait_closed(Duration::from_secs(2));
        st
    }

    pub fn text(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.out.text(),
            self.err.text()
        )
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Whether a TLS handshake with `addr` completes (any certificate accepted): how a test tells
/// the TLS listener from the plain one when both were given port 0.
pub fn speaks_tls(addr: SocketAddr) -> bool {
    let r = s_client(addr, &[], b"", Duration::from_secs(10));
    let text = r.stdout_text();
    // s_client reports "New, TLSv1.3, Cipher is ..." once a handshake completed, and
    // "New, (NONE), Cipher is (NONE)" when none did.
    text.contains("New, TLSv1.")
}

/// The subject line s_client printed for the server's certificate ("subject=CN = a.test").
pub fn peer_subject(s_client_stdout: &str) -> Option<String> {
    s_client_stdout
        .lines()
        .find(|l| l.starts_with("subject="))
        .map(|l| l["subject=".len()..].trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// python's ssl module
// ---------------------------------------------------------------------------------------------

/// Run a python3 program with `args` (sys.argv[1..]); bounded.
pub fn python(program: &str, args: &[&str], timeout: Duration) -> Ran {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(program).args(args);
    run_bounded(&mut cmd, &[], timeout)
}

// ---------------------------------------------------------------------------------------------
// The server under test: lightd, or lighttpd for checking the tests themselves
// ---------------------------------------------------------------------------------------------

/// Which server the TLS tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Against {
    Lightd,
    /// Debian's lighttpd with mod_openssl (`LIGHTD_TLS_TESTS_AGAINST=lighttpd`).
    Lighttpd,
}

pub const LIGHTTPD: &str = "/usr/sbin/lighttpd";

pub fn against() -> Against {
    match std::env::var("LIGHTD_TLS_TESTS_AGAINST") {
        Ok(v) if v == "lighttpd" => Against::Lighttpd,
        _ => Against::Lightd,
    }
}

/// A port nobody listens on right now, for lighttpd, which cannot be given port 0 and
/// report what it got. (A small race with other processes; only for the reference runs.)
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A running server with a plain listener and a TLS one.
pub struct TlsServer {
    lightd: Option<Server>,
    lighttpd: Option<(Child, Arc<Capture>, Builder)>,
    plain: SocketAddr,
    tls: SocketAddr,
}

/// The config text for `TlsServer::start`: `{port}` becomes the plain port and `{tls}` the
/// TLS socket ("127.0.0.1:0" for lightd, which logs what it got; a free port for lighttpd);
/// `{dir}` and `{docroot}` as in `Builder`.
impl TlsServer {
    /// Start the server on `config` in `b`'s directory; both listeners up.
    pub fn start(b: Builder, config: &str) -> TlsServer {
        match against() {
            Against::Lightd => {
                let text = config
                    .replace("{port}", "0")
                    .replace("{tls}", "127.0.0.1:0");
                let server = b.raw_config(&text).listeners(2).start();
                let addrs = server.addrs().to_vec();
                assert_eq!(addrs.len(), 2, "listeners: {addrs:?}");
                // Which one is which: only one completes a TLS handshake.
                let tls: Vec<SocketAddr> =
                    addrs.iter().copied().filter(|a| speaks_tls(*a)).collect();
                assert_eq!(
                    tls.len(),
                    1,
                    "listeners {addrs:?}: those completing a TLS handshake: {tls:?}\n{}",
                    server.log_text()
                );
                let plain = addrs
                    .iter()
                    .copied()
                    .find(|a| *a != tls[0])
                    .expect("two listeners");
                TlsServer {
                    lightd: Some(server),
                    lighttpd: None,
                    plain,
                    tls: tls[0],
                }
            }
            Against::Lighttpd => {
                let (p, t) = (free_port(), free_port());
                let text = config
                    .replace("{port}", &p.to_string())
                    .replace("{tls}", &format!("127.0.0.1:{t}"));
                let b = b.raw_config(&text);
                let cfg = b.write_config();
                let mut child = Command::new(LIGHTTPD)
                    .arg("-D")
                    .arg("-f")
                    .arg(&cfg)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn lighttpd");
                let err = Capture::spawn(child.stderr.take().expect("piped stderr"));
                let plain: SocketAddr = format!("127.0.0.1:{p}").parse().expect("addr");
                let tls: SocketAddr = format!("127.0.0.1:{t}").parse().expect("addr");
                let deadline = Instant::now() + START_TIMEOUT;
                while TcpStream::connect(plain).is_err() || TcpStream::connect(tls).is_err() {
                    if let Ok(Some(st)) = child.try_wait() {
                        panic!("lighttpd exited ({st}) before listening\n{}", err.text());
                    }
                    assert!(
                        Instant::now() < deadline,
                        "lighttpd not listening\n{}",
                        err.text()
                    );
                    thread::sleep(POLL);
                }
                TlsServer {
                    lightd: None,
                    lighttpd: Some((child, err, b)),
                    plain,
                    tls,
                }
            }
        }
    }

    pub fn tls(&self) -> SocketAddr {
        self.tls
    }

    pub fn plain(&self) -> SocketAddr {
        self.plain
    }

    /// What the server logged so far (lightd: stderr and error log; lighttpd: stderr).
    pub fn log_text(&self) -> String {
        match (&self.lightd, &self.lighttpd) {
            (Some(s), _) => s.log_text(),
            (_, Some((_, err, _))) => err.text(),
            _ => String::new(),
        }
    }

    /// Whether the server process still runs.
    pub fn is_running(&mut self) -> bool {
        match (&mut self.lightd, &mut self.lighttpd) {
            (Some(s), _) => s.is_running(),
            (_, Some((c, _, _))) => matches!(c.try_wait(), Ok(None)),
            _ => false,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some((child, err, _)) = &mut self.lighttpd {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
            if thread::panicking() {
                eprintln!("--- lighttpd stderr ---\n{}", err.text());
            }
        }
    }
}

/// A builder for a TLS test: the temp dir and docroot (see `Builder`).
pub fn tls_builder() -> Builder {
    builder()
}

/// Read a stream to EOF (or error/timeout); what arrived and whether it ended in a clean EOF.
pub fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + timeout;
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            // A reset closes it too.
            Err(_) => return (got, true),
        }
        if Instant::now() >= deadline || got.len() > 1 << 20 {
            return (got, false);
        }
    }
}
