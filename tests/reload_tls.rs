//! Certificate renewal under TLS load: 20 SIGUSR1 reloads, each after the certificate file on
//! disk was swapped (two certificates for localhost, told apart by their O), while keep-alive
//! TLS clients loop requests, another client makes a new handshake per request, and a 20 MB
//! download streams. Every request and every handshake must succeed, each download must be
//! byte-exact, and after each reload new connections must get the new certificate.
//!
//! The clients are python3 processes using its ssl module (OpenSSL), one per load, reporting
//! one line per event on stdout; they stop when the stop file appears (or after a bound).

mod common;
mod reload_util;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::tls::{get_close, peer_subject, s, s_client, KeyType, Pki, Spec, CLIENT_TIMEOUT};
use reload_util::*;

const RELOADS: usize = 20;

/// The load clients. argv: mode, port, CA file, docroot, stop file.
/// Output lines: "ok" (a request answered right), "hs O" (a handshake, and the certificate's
/// O), "dl-start", "dl-ok", "fail WHY".
const CLIENT: &str = r#"
import hashlib, os, select, socket, ssl, sys, time
mode, port, ca, root, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
small = open(os.path.join(root, "small.txt"), "rb").read()
big_sum = hashlib.sha256(open(os.path.join(root, "big.bin"), "rb").read()).hexdigest()
deadline = time.time() + 900
def say(s):
    sys.stdout.write(s + "\n"); sys.stdout.flush()
def connect(rcvbuf=None):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", port))
    c = ctx.wrap_socket(raw, server_hostname="localhost")
    o = dict(x[0] for x in c.getpeercert()["subject"]).get("organizationName", "")
    say("hs " + o.replace(" ", "_"))
    return c, raw
def response(c, buf):
    # One response framed by Content-Length: (head, body, rest of buf).
    while b"\r\n\r\n" not in buf:
        b = c.recv(65536)
        if not b:
            raise Exception("EOF before the head (%d bytes)" % len(buf))
        buf += b
    head, _, buf = buf.partition(b"\r\n\r\n")
    h = head.decode("latin-1")
    if not h.startswith("HTTP/1.1 200 "):
        raise Exception("status " + h.split("\r\n")[0])
    n = int([l.split(":", 1)[1] for l in h.split("\r\n") if l.lower().startswith("content-length:")][0])
    while len(buf) < n:
        b = c.recv(65536)
        if not b:
            raise Exception("EOF after %d of %d body bytes" % (len(buf), n))
        buf += b
    return h, buf[:n], buf[n:]
def closed_while_idle(c):
    # The server closed an idle keep-alive connection (close_notify or FIN): not a failure.
    return bool(select.select([c], [], [], 0)[0])
c = raw = None
while not os.path.exists(stop) and time.time() < deadline:
    try:
        if mode == "keepalive":
            if c is not None and closed_while_idle(c):
                c.close(); c = None
            if c is None:
                c, raw = connect()
            c.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            h, body, rest = response(c, b"")
            if body != small or rest:
                raise Exception("wrong body")
            say("ok")
            if "connection: close" in h.lower():
                c.close(); c = None
            time.sleep(0.005)
        elif mode == "handshake":
            c, raw = connect()
            c.sendall(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            h, body, rest = response(c, b"")
            if body != small:
                raise Exception("wrong body")
            c.close(); c = None
            say("ok")
            time.sleep(0.01)
        else:
            c, raw = connect(rcvbuf=64 * 1024)
            c.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            say("dl-start")
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                b = c.recv(65536)
                if not b:
                    raise Exception("EOF before the download's head")
                buf += b
            head, _, body = buf.partition(b"\r\n\r\n")
            h = hashlib.sha256(body); got = len(body)
            # Slowly (about 4 s for 20 MB), so that reloads happen while it is in flight.
            while True:
                b = c.recv(262144)
                if not b:
                    break
                h.update(b); got += len(b)
                # A read returns at most one 16 KB record: about 1300 of them.
                time.sleep(0.003)
            c.close(); c = None
            if h.hexdigest() != big_sum:
                raise Exception("download of %d bytes differs from big.bin" % got)
            say("dl-ok")
    except Exception as e:
        say("fail %s: %r" % (mode, e))
        c = None
        time.sleep(0.1)
say("done")
"#;

/// What the clients reported.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    handshakes: AtomicU64,
    downloads: AtomicU64,
    download_in_flight: AtomicBool,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
    subjects: Mutex<Vec<String>>,
}

impl Tally {
    fn line(&self, l: &str) {
        let (what, rest) = l.split_once(' ').unwrap_or((l, ""));
        match what {
            "ok" => {
                self.ok.fetch_add(1, Ordering::SeqCst);
            }
            "hs" => {
                self.handshakes.fetch_add(1, Ordering::SeqCst);
                let mut s = self.subjects.lock().unwrap();
                if !s.iter().any(|x| x == rest) {
                    s.push(rest.to_string());
                }
            }
            "dl-start" => self.download_in_flight.store(true, Ordering::SeqCst),
            "dl-ok" => {
                self.download_in_flight.store(false, Ordering::SeqCst);
                self.downloads.fetch_add(1, Ordering::SeqCst);
            }
            "done" => {}
            _ => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                let mut f = self.failures.lock().unwrap();
                if f.len() < 20 {
                    f.push(l.to_string());
                }
            }
        }
    }
}

/// The client processes; killed (by pid, ours) if the test ends before they do.
struct Clients(Vec<Child>);

impl Drop for Clients {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn spawn_client(
    mode: &str,
    port: u16,
    ca: &Path,
    root: &Path,
    stop: &Path,
    tally: &Arc<Tally>,
) -> (Child, thread::JoinHandle<()>) {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .args([mode, &port.to_string(), s(ca), s(root), s(stop)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python3");
    let out = child.stdout.take().expect("piped stdout");
    let tally = Arc::clone(tally);
    let reader = thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            tally.line(&line);
        }
    });
    (child, reader)
}

fn wait_more(tally: &Tally, counter: impl Fn(&Tally) -> u64, more_than: u64) -> bool {
    wait_until(Duration::from_secs(30), || counter(tally) > more_than)
}

/// Replace the certificate file in one step (rename), as a renewal hook would.
fn install(cert: &Path, at: &Path) {
    let tmp = at.with_extension("new");
    fs::copy(cert, &tmp).expect("copy certificate");
    fs::rename(&tmp, at).expect("rename certificate into place");
}

/// The O of the certificate a new connection gets.
fn served_org(site: &Site, pki: &Pki) -> String {
    let r = s_client(
        site.addr(),
        &["-CAfile", s(&pki.ca), "-servername", "localhost"],
        &get_close("localhost", "/small.txt"),
        CLIENT_TIMEOUT,
    );
    peer_subject(&r.stdout_text()).unwrap_or_else(|| format!("no subject: {}", r.describe()))
}

#[test]
fn twenty_reloads_with_certificate_swaps_under_tls_load_lose_nothing() {
    if common::skip_without_direct_exec() {
        return;
    }
    let pki = Pki::new();
    let local = ["DNS:localhost", "IP:127.0.0.1"];
    let certs = ["gen a", "gen b"].map(|o| {
        pki.issue(
            &o.replace(' ', "-"),
            &Spec {
                subject: &format!("/CN=localhost/O={o}"),
                sans: &local,
                key: KeyType::EcP256,
                days: 30,
                client: false,
            },
        )
    });
    let mut site = Site::new("reload-tls", GRACE, "");
    let pem = site.dir().join("server.pem");
    install(&certs[0].both, &pem);
    // lighttpd's global ssl.engine: the main listener (server.port) speaks TLS.
    site.set_extra(&format!(
        "server.modules += ( \"mod_openssl\" )\nssl.engine = \"enable\"\nssl.pemfile = \"{}\"",
        s(&pem)
    ));
    site.under_systemd();
    site.start_first();
    assert_eq!(served_org(&site, &pki), "CN = localhost, O = gen a");

    let stop = site.dir().join("stop-load");
    let root = site.dir().join("docroot");
    let tally = Arc::new(Tally::default());
    let mut children = Clients(Vec::new());
    let mut readers = Vec::new();
    for mode in [
        "keepalive",
        "keepalive",
        "keepalive",
        "handshake",
        "download",
    ] {
        let (c, r) = spawn_client(mode, site.addr().port(), &pki.ca, &root, &stop, &tally);
        children.0.push(c);
        readers.push(r);
    }
    assert!(
        wait_more(&tally, |t| t.ok.load(Ordering::SeqCst), 20),
        "the TLS load gets no answers: failures {:?}\n{}",
        tally.failures.lock().unwrap(),
        site.dump()
    );

    let mut pid = site.current_pid();
    let mut with_download = 0;
    for i in 0..RELOADS {
        let next = &certs[(i + 1) % 2];
        install(&next.both, &pem);
        if tally.download_in_flight.load(Ordering::SeqCst) {
            with_download += 1;
        }
        let (ok, hs) = (
            tally.ok.load(Ordering::SeqCst),
            tally.handshakes.load(Ordering::SeqCst),
        );
        send_signal(pid, libc::SIGUSR1);
        let new = site.finish_reload(pid);
        let org = next.subject.strip_prefix("/CN=localhost/O=").unwrap_or("?");
        let want = format!("CN = localhost, O = {org}");
        assert_eq!(
            served_org(&site, &pki),
            want,
            "reload {i} ({pid} -> {new}): a new connection's certificate\n{}",
            site.dump()
        );
        assert!(
            wait_more(&tally, |t| t.ok.load(Ordering::SeqCst), ok + 10)
                && wait_more(&tally, |t| t.handshakes.load(Ordering::SeqCst), hs + 2),
            "reload {i}: the load stalled\n{}",
            site.dump()
        );
        pid = new;
    }

    // Let the download in progress finish, then stop the clients.
    let downloads = tally.downloads.load(Ordering::SeqCst);
    if tally.download_in_flight.load(Ordering::SeqCst) {
        wait_more(&tally, |t| t.downloads.load(Ordering::SeqCst), downloads);
    }
    fs::write(&stop, "").expect("write the stop file");
    for c in &mut children.0 {
        let exited = common::wait_child(c, Duration::from_secs(60));
        assert!(exited.is_some(), "a load client did not stop");
    }
    for r in readers {
        let _ = r.join();
    }
    let (ok, hs, dl, failed) = (
        tally.ok.load(Ordering::SeqCst),
        tally.handshakes.load(Ordering::SeqCst),
        tally.downloads.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
    );
    eprintln!(
        "{RELOADS} reloads: {ok} requests, {hs} handshakes, {dl} downloads of 20 MB, \
         {with_download} reloads with a download in flight, {failed} failures"
    );
    assert_eq!(
        failed,
        0,
        "failures: {:#?}\n{}",
        tally.failures.lock().unwrap(),
        site.dump()
    );
    assert!(dl >= 1, "no download completed");
    assert!(
        with_download >= 1,
        "no reload happened with a download in flight"
    );
    // Both certificates were seen by the clients themselves, not only by the checks.
    let subjects = tally.subjects.lock().unwrap().clone();
    assert!(
        subjects.contains(&"gen_a".to_string()) && subjects.contains(&"gen_b".to_string()),
        "certificates the clients saw: {subjects:?}"
    );
    site.stop(pid, true);
}
