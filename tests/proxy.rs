//! mod_proxy and mod_wstunnel against the real binary: a small HTTP/1.1 upstream written here
//! records every request it gets, so the tests assert on exactly what lightd sent (fields
//! removed and added, mapped paths, body bytes) and on which upstream connection it came
//! (keep-alive). Also the failures (503, 504, a cut), 100 MB each way in bounded memory,
//! Upgrade tunnels, a WebSocket echo through mod_wstunnel with a client written here, and a
//! graceful stop with a tunnel open.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------------------------------------
// The upstream
// ---------------------------------------------------------------------------------------------

/// One request as the upstream received it.
#[derive(Clone, Debug)]
struct Seen {
    /// Which upstream connection (numbered from 1 in accept order) carried it.
    conn: usize,
    /// The head as sent, without its blank line.
    head: String,
    body_len: u64,
    body_sum: u64,
    /// The body, when short.
    body: Vec<u8>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or("")
    }
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    /// Upstream connections the upstream closed after answering (`/close-after`).
    closed: usize,
}

/// An HTTP/1.1 server on an ephemeral port, one thread per connection, keep-alive unless told
/// otherwise. Its answers depend on the path (see `answer`).
struct Upstream {
    addr: SocketAddr,
    log: Arc<(Mutex<Log>, Condvar)>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let log: Arc<(Mutex<Log>, Condvar)> = Arc::default();
        let l2 = Arc::clone(&log);
        let next = Arc::new(AtomicUsize::new(1));
        thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { return };
                let id = next.fetch_add(1, Ordering::SeqCst);
                let log = Arc::clone(&l2);
                thread::spawn(move || serve(s, id, log));
            }
        });
        Upstream { addr, log }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.0.lock().unwrap().seen.clone()
    }

    fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }

    fn connections(&self) -> usize {
        let mut c: Vec<usize> = self.seen().iter().map(|s| s.conn).collect();
        c.sort();
        c.dedup();
        c.len()
    }

    /// Wait until the upstream has closed `n` connections itself.
    fn wait_closed(&self, n: usize) {
        let (m, cv) = &*self.log;
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut g = m.lock().unwrap();
        while g.closed < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the upstream did not close its connection");
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    fn config(&self, extra: &str) -> String {
        format!(
            "server.modules = ( \"mod_proxy\" )\n\
             proxy.server = ( \"\" => ( \"up\" => ( \"host\" => \"127.0.0.1\", \"port\" => {} ) ) )\n{extra}",
            self.addr.port()
        )
    }
}

fn fnv(sum: u64, data: &[u8]) -> u64 {
    data.iter().fold(sum, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

const FNV_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// Read a head (up to and without its blank line); None at a clean end of stream.
fn read_head(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some(head.trim_end_matches("\r\n").to_string());
        }
        head.push_str(&line);
    }
}

fn serve(s: TcpStream, id: usize, log: Arc<(Mutex<Log>, Condvar)>) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::with_capacity(65536, s);
    // Bounded by the client: each turn is one request.
    while let Some(head) = read_head(&mut r) {
        let mut seen = Seen {
            conn: id,
            head,
            body_len: 0,
            body_sum: FNV_INIT,
            body: Vec::new(),
        };
        let take = |d: &[u8], seen: &mut Seen| {
            seen.body_len += d.len() as u64;
            seen.body_sum = fnv(seen.body_sum, d);
            if seen.body.len() < 1 << 20 {
                seen.body.extend_from_slice(d);
            }
        };
        if let Some(n) = seen
            .field("Content-Length")
            .and_then(|v| v.parse::<u64>().ok())
        {
            let mut left = n;
            let mut buf = vec![0u8; 65536];
            while left > 0 {
                let want = buf.len().min(left as usize);
                let got = match r.read(&mut buf[..want]) {
                    Ok(0) | Err(_) => return,
                    Ok(g) => g,
                };
                take(&buf[..got], &mut seen);
                left -= got as u64;
            }
        } else if seen
            .field("Transfer-Encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                if r.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 {
                    let mut end = String::new();
                    let _ = r.read_line(&mut end);
                    break;
                }
                let mut d = vec![0u8; n + 2];
                if r.read_exact(&mut d).is_err() {
                    return;
                }
                take(&d[..n], &mut seen);
            }
        }
        log.0.lock().unwrap().seen.push(seen.clone());
        log.1.notify_all();
        match answer(&seen, &mut w, &mut r) {
            Next::KeepAlive => {}
            Next::Close => return,
            Next::Closed => {
                let _ = w.shutdown(Shutdown::Both);
                log.0.lock().unwrap().closed += 1;
                log.1.notify_all();
                return;
            }
        }
    }
}

enum Next {
    KeepAlive,
    Close,
    /// Closed by the upstream after a complete keep-alive response (counted).
    Closed,
}

/// The upstream's answers, by path:
/// - `/head`: the request head it received, as the body;
/// - `/sum`: "len=N sum=X" of the request body;
/// - `/big?N`: N bytes of `pattern`, with a length;
/// - `/chunked`: a chunked body;
/// - `/redirect`: 302 to its own idea of the URL, with a cookie for its path and host;
/// - `/slow`: nothing, ever;
/// - `/die`: a head promising 100000 bytes, 1000 of them, then the end;
/// - `/close-after`: a normal answer, then the upstream closes the kept connection;
/// - `/upgrade`: 101, then every byte echoed;
/// - anything else: "ok PATH".
fn answer(seen: &Seen, w: &mut TcpStream, r: &mut BufReader<TcpStream>) -> Next {
    let target = seen.line().split(' ').nth(1).unwrap_or("/").to_string();
    let (full, query) = target.split_once('?').unwrap_or((&target, ""));
    // By the last segment, so that mapped prefixes reach the same answers.
    let path = &full[full.rfind('/').unwrap_or(0)..];
    let head_req = seen.line().starts_with("HEAD ");
    let close = seen
        .field("Connection")
        .is_some_and(|c| c.to_ascii_lowercase().contains("close"))
        || seen.line().ends_with("HTTP/1.0");
    let reply = |w: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nServer: upstream\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        if !head_req {
            out.extend_from_slice(body);
        }
        w.write_all(&out).is_ok()
    };
    let done = |ok: bool| {
        if ok && !close {
            Next::KeepAlive
        } else {
            Next::Close
        }
    };
    match path {
        "/head" => done(reply(w, "200 OK", "", seen.head.as_bytes())),
        "/sum" => {
            let b = format!("len={} sum={:x}", seen.body_len, seen.body_sum);
            done(reply(w, "200 OK", "", b.as_bytes()))
        }
        "/big" => {
            let n: usize = query.parse().unwrap_or(0);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
            if w.write_all(head.as_bytes()).is_err() {
                return Next::Close;
            }
            let data = pattern(n);
            for c in data.chunks(65536) {
                if w.write_all(c).is_err() {
                    return Next::Close;
                }
            }
            done(true)
        }
        "/chunked" => {
            let out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n";
            done(w.write_all(out).is_ok())
        }
        "/redirect" => done(reply(
            w,
            "302 Found",
            "Location: http://backend.internal/inner/there?q=1\r\n\
             Set-Cookie: id=7; Path=/inner/; Domain=backend.internal\r\n",
            b"",
        )),
        "/slow" => {
            thread::sleep(Duration::from_secs(30));
            Next::Close
        }
        "/die" => {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
            out.extend_from_slice(&[b'x'; 1000]);
            let _ = w.write_all(&out);
            Next::Close
        }
        "/close-after" => {
            reply(w, "200 OK", "", b"bye");
            Next::Closed
        }
        "/upgrade" => {
            let out = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\
                        Connection: Upgrade\r\nX-Tunnel: yes\r\n\r\n";
            if w.write_all(out).is_err() {
                return Next::Close;
            }
            // Echo until the client is done; what it sent before the 101 may be buffered.
            let mut buf = [0u8; 16384];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = w.shutdown(Shutdown::Write);
            Next::Close
        }
        _ => done(reply(w, "200 OK", "", format!("ok {full}").as_bytes())),
    }
}

/// A plain TCP echo server (mod_wstunnel's backend): every byte comes back.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut buf = [0u8; 16384];
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// What lightd sends upstream
// ---------------------------------------------------------------------------------------------

#[test]
fn the_request_sent_upstream_is_rewritten_as_lighttpd_does() {
    let up = Upstream::start();
    let s = builder()
        .config(&up.config(
            "proxy.header = ( \"map-urlpath\" => ( \"/app/\" => \"/\" ) )\n\
             proxy.forwarded = ( \"for\" => 1, \"proto\" => 1, \"host\" => 1 )",
        ))
        .start();
    let r = s.request(
        b"GET /app/head?x=%3a HTTP/1.1\r\nHost: www.example.org\r\n\
          Connection: keep-alive, X-Secret\r\nKeep-Alive: timeout=3\r\nX-Secret: 1\r\n\
          Proxy: http://evil/\r\nTE: gzip\r\nX-Forwarded-For: 192.0.2.1\r\n\
          X-Kept: yes\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let seen = up.last();
    assert_eq!(seen.line(), "GET /head?x=%3A HTTP/1.1", "{}", seen.head);
    assert_eq!(seen.field("Host"), Some("www.example.org"));
    assert_eq!(seen.field("X-Kept"), Some("yes"));
    for gone in [
        "Connection",
        "Keep-Alive",
        "X-Secret",
        "Proxy",
        "TE",
        "Upgrade",
    ] {
        assert_eq!(
            seen.field(gone),
            None,
            "{gone} went upstream:\n{}",
            seen.head
        );
    }
    assert_eq!(seen.field("X-Forwarded-For"), Some("192.0.2.1, 127.0.0.1"));
    assert_eq!(seen.field("X-Forwarded-Proto"), Some("http"));
    assert_eq!(seen.field("X-Host"), Some("www.example.org"));
    assert_eq!(seen.field("X-Forwarded-Host"), Some("www.example.org"));
    assert_eq!(
        seen.field("Forwarded"),
        Some("for=\"192.0.2.1\", for=127.0.0.1;proto=http;host=\"www.example.org\"")
    );
    // The upstream's Server replaces lightd's tag (lighttpd's "drop Server" test).
    assert_eq!(r.header("Server"), Some("upstream"));
    assert_eq!(r.text(), seen.head);
}

#[test]
fn hosts_and_urls_are_mapped_both_ways() {
    let up = Upstream::start();
    let s = builder()
        .config(&up.config(
            "proxy.header = ( \"map-urlpath\" => ( \"/outer/\" => \"/inner/\" ),\n\
             \"map-host-request\" => ( \"-\" => \"backend.internal\" ),\n\
             \"map-host-response\" => ( \"-\" => \"-\" ) )",
        ))
        .start();
    let r = s.request(b"GET /outer/redirect HTTP/1.1\r\nHost: www.example.org\r\n\r\n");
    // The upstream was asked for its own path and host...
    let seen = up.last();
    assert_eq!(seen.line(), "GET /inner/redirect HTTP/1.1");
    assert_eq!(seen.field("Host"), Some("backend.internal"));
    assert_eq!(seen.field("X-Host"), Some("www.example.org"));
    // ...and its answer comes back in the client's terms.
    assert_eq!(r.status, 302, "{}", r.describe());
    assert_eq!(
        r.header("Location"),
        Some("http://www.example.org/outer/there?q=1")
    );
    assert_eq!(
        r.header("Set-Cookie"),
        Some("id=7; Path=/outer/; Domain=www.example.org")
    );
}

#[test]
fn replace_http_host_and_force_http10() {
    let up = Upstream::start();
    let s = builder()
        .config(&up.config(
            "proxy.replace-http-host = 1\nproxy.header = ( \"force-http10\" => \"enable\" )",
        ))
        .start();
    let r = s.request(b"GET /head HTTP/1.1\r\nHost: www.example.org\r\nTE: trailers\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    let seen = up.last();
    assert_eq!(seen.line(), "GET /head HTTP/1.0");
    assert_eq!(seen.field("Host"), Some("up"));
    assert_eq!(seen.field("Connection"), Some("close"));
    assert_eq!(seen.field("TE"), None);
}

#[test]
fn bodies_go_up_exactly_and_responses_come_back_framed() {
    let up = Upstream::start();
    let s = builder().config(&up.config("")).start();
    let mut c = s.connect();
    let body = pattern(300_000);
    let mut req = format!(
        "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    let seen = up.last();
    assert_eq!(seen.body_len, body.len() as u64);
    assert_eq!(seen.body_sum, fnv(FNV_INIT, &body));
    assert_eq!(seen.field("Content-Length"), Some("300000"));
    // A chunked upload is spooled and goes up with its length.
    let mut req = b"PUT /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body[..10_000].chunks(999) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    let seen = up.last();
    assert_eq!(seen.field("Content-Length"), Some("10000"), "{}", seen.head);
    assert_eq!(seen.field("Transfer-Encoding"), None);
    assert_eq!(seen.body, body[..10_000]);
    // A POST without a body says so (lighttpd adds Content-Length: 0).
    c.send(b"POST /head HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response();
    assert!(r.text().contains("Content-Length: 0"), "{}", r.describe());
    // A chunked response is decoded and framed again for the client.
    let r = c.request(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.text(), "hello chunked world", "{}", r.describe());
    // HEAD: the upstream's length, no body, and the connection goes on.
    c.send(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("5"), "{}", r.describe());
    let r = c.request(b"GET /after-head HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.text(), "ok /after-head");
}

#[test]
fn a_chunked_upload_is_spooled_even_where_bodies_stream() {
    let up = Upstream::start();
    let s = builder()
        .config(&up.config("server.stream-request-body = 1"))
        .start();
    let mut c = s.connect();
    c.send(b"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    // The rest comes later: nothing may go upstream with a length not yet known.
    thread::sleep(Duration::from_millis(300));
    c.send(b"6\r\n world\r\n0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    let seen = up.last();
    assert_eq!(seen.field("Content-Length"), Some("11"), "{}", seen.head);
    assert_eq!(seen.body, b"hello world");
}

// ---------------------------------------------------------------------------------------------
// Keep-alive to the upstream
// ---------------------------------------------------------------------------------------------

#[test]
fn upstream_connections_are_kept_and_reused() {
    let up = Upstream::start();
    let s = builder().config(&up.config("")).start();
    // On one client connection, and on several.
    let mut c = s.connect();
    for i in 0..5 {
        let r = c.request(format!("GET /k{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(r.text(), format!("ok /k{i}"));
    }
    for i in 0..5 {
        let r = s.request(
            format!("GET /n{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.text(), format!("ok /n{i}"));
    }
    let seen = up.seen();
    assert_eq!(seen.len(), 10);
    assert_eq!(
        up.connections(),
        1,
        "{:?}",
        seen.iter().map(|s| s.conn).collect::<Vec<_>>()
    );
    // The client's Connection: close is not the upstream's business.
    assert!(seen.iter().all(|s| s.field("Connection").is_none()));
}

#[test]
fn an_idle_connection_the_upstream_closed_is_never_used() {
    let up = Upstream::start();
    let s = builder().config(&up.config("")).start();
    for round in 1..=3 {
        let r = s.request(b"GET /close-after HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.text(), "bye", "{}", r.describe());
        // The upstream closes the kept connection; the next request needs a new one.
        up.wait_closed(round);
        let r = s.request(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200, "round {round}: {}", r.describe());
        assert_eq!(r.text(), "ok /next");
    }
    // Each /next needed a new connection, which the following /close-after reused.
    let conns: Vec<usize> = up.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [1, 2, 2, 3, 3, 4]);
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

#[test]
fn an_upstream_that_is_down_is_503() {
    let s = builder()
        .config(&format!(
            "server.modules = ( \"mod_proxy\" )\n\
             proxy.server = ( \"\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {} ) ) )",
            dead_port()
        ))
        .start();
    let r = s.get("/x");
    assert_eq!(r.status, 503, "{}", r.describe());
    // Again at once (the host is skipped for its disable-time): still a clean 503.
    let r = s.get("/y");
    assert_eq!(r.status, 503, "{}", r.describe());
}

#[test]
fn an_upstream_that_says_nothing_is_504() {
    let up = Upstream::start();
    let s = builder()
        .config(&format!(
            "server.modules = ( \"mod_proxy\" )\n\
             proxy.server = ( \"\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {}, \
             \"read-timeout\" => 1 ) ) )",
            up.addr.port()
        ))
        .start();
    let t = Instant::now();
    let r = s.get("/slow");
    assert_eq!(r.status, 504, "{}", r.describe());
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    // Other requests go on meanwhile and after.
    assert_eq!(s.get("/fine").text(), "ok /fine");
}

#[test]
fn an_upstream_that_dies_mid_body_cuts_the_client() {
    let up = Upstream::start();
    let s = builder().config(&up.config("")).start();
    let mut c = s.connect();
    c.send(b"GET /die HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: 100000\r\n"), "{text}");
    let head_end = text.find("\r\n\r\n").unwrap() + 4;
    assert!(got.len() - head_end < 100_000, "the client was not cut");
}

// ---------------------------------------------------------------------------------------------
// Large bodies in bounded memory
// ---------------------------------------------------------------------------------------------

/// The peak resident size of a process, in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_hundred_megabytes_each_way_stream_in_bounded_memory() {
    const SIZE: usize = 100 << 20;
    let up = Upstream::start();
    let s = builder().config(&up.config("")).start();
    assert_eq!(s.get("/warm").status, 200);
    let before = peak_rss_kib(s.pid());
    // Up: written as fast as lightd takes it.
    let mut c = s.connect();
    c.send(format!("POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n").as_bytes());
    let block = pattern(1 << 20);
    let mut sum = FNV_INIT;
    for _ in 0..100 {
        c.send(&block);
        sum = fnv(sum, &block);
    }
    let r = c.read_response();
    assert_eq!(r.text(), format!("len={SIZE} sum={sum:x}"));
    // Down: read in pieces and compared as it comes.
    c.send(format!("GET /big?{SIZE} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let mut stream = BufReader::new(c.stream.try_clone().unwrap());
    let head = {
        let mut h = String::new();
        loop {
            let mut l = String::new();
            assert!(stream.read_line(&mut l).unwrap() > 0);
            if l == "\r\n" {
                break h;
            }
            h.push_str(&l);
        }
    };
    assert!(head.contains(&format!("Content-Length: {SIZE}")), "{head}");
    let want = pattern(SIZE);
    let mut at = 0;
    let mut buf = vec![0u8; 1 << 16];
    while at < SIZE {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("after {at} bytes: {e}"));
        assert!(n > 0, "EOF after {at} bytes");
        assert!(buf[..n] == want[at..at + n], "wrong bytes at {at}");
        at += n;
    }
    let grew = peak_rss_kib(s.pid()).saturating_sub(before);
    assert!(grew < 8 * 1024, "lightd's peak RSS grew by {grew} KiB");
}

// ---------------------------------------------------------------------------------------------
// Tunnels
// ---------------------------------------------------------------------------------------------

/// Read a response head (status line and fields) from a raw stream, byte by byte so that
/// nothing after it is consumed.
fn raw_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "EOF in head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).unwrap();
    v
}

#[test]
fn upgrade_through_mod_proxy_is_a_two_way_tunnel() {
    let up = Upstream::start();
    let s = builder()
        .config(&up.config("proxy.header = ( \"upgrade\" => \"enable\" )"))
        .start();
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // Bytes right behind the request: they belong to the tunnel.
    c.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly",
    )
    .unwrap();
    let head = raw_head(&mut c);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nUpgrade: echo\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: upgrade\r\n"), "{head}");
    assert!(head.contains("\r\nX-Tunnel: yes\r\n"), "{head}");
    let seen = up.last();
    assert_eq!(seen.field("Upgrade"), Some("echo"));
    assert_eq!(seen.field("Connection"), Some("upgrade"));
    assert_eq!(read_exactly(&mut c, 5), b"early");
    for i in 0..20 {
        let msg = format!("round {i}");
        c.write_all(msg.as_bytes()).unwrap();
        assert_eq!(read_exactly(&mut c, msg.len()), msg.as_bytes());
    }
    // Larger than both ways' buffers: back-pressure, not loss.
    let big = pattern(3 << 20);
    let mut w = c.try_clone().unwrap();
    let b2 = big.clone();
    let writer = thread::spawn(move || w.write_all(&b2).unwrap());
    assert!(read_exactly(&mut c, big.len()) == big, "the echo differs");
    writer.join().unwrap();
    // The client's end goes to the upstream, whose end ends the tunnel.
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // Without "upgrade" the Upgrade field does not go upstream.
    let up2 = Upstream::start();
    let s2 = builder().config(&up2.config("")).start();
    let r =
        s2.request(b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(up2.last().field("Upgrade"), None);
}

const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's example answer for WS_KEY.
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A client frame: masked, as RFC 6455 requires of clients.
fn ws_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Read one server frame: (fin, opcode, payload). Server frames are never masked.
fn ws_read(s: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let h = read_exactly(s, 2);
    assert_eq!(h[1] & 0x80, 0, "a server frame was masked");
    let len = match h[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes(read_exactly(s, 2).try_into().unwrap())),
        127 => u64::from_be_bytes(read_exactly(s, 8).try_into().unwrap()),
        n => u64::from(n),
    };
    (h[0] & 0x80 != 0, h[0] & 0x0f, read_exactly(s, len as usize))
}

/// Read data frames until `n` payload bytes came; returns them and the frames' opcode.
fn ws_read_data(s: &mut TcpStream, n: usize) -> (u8, Vec<u8>) {
    let mut got = Vec::new();
    let mut op = 0;
    while got.len() < n {
        let (_, o, p) = ws_read(s);
        assert!(o == 1 || o == 2, "opcode {o} while waiting for data");
        op = o;
        got.extend_from_slice(&p);
    }
    (op, got)
}

fn ws_open(addr: SocketAddr, path: &str, extra: &str) -> (TcpStream, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let head = raw_head(&mut c);
    (c, head)
}

fn wstunnel_config(backend: SocketAddr, extra: &str) -> String {
    format!(
        "server.modules = ( \"mod_wstunnel\" )\n\
         wstunnel.server = ( \"/ws\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {} ) ) )\n{extra}",
        backend.port()
    )
}

#[test]
fn websocket_echo_through_mod_wstunnel() {
    let echo = echo_server();
    let s = builder()
        .config(&wstunnel_config(
            echo,
            "wstunnel.origins = ( \"example.org\" )",
        ))
        .start();
    let (mut c, head) = ws_open(s.addr(), "/ws", "Origin: http://www.example.org\r\n");
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nUpgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: upgrade\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nSec-WebSocket-Accept: {WS_ACCEPT}\r\n")),
        "{head}"
    );
    // Text in, the same text back as a text frame (the default frame type).
    c.write_all(&ws_frame(1, true, b"hello")).unwrap();
    assert_eq!(ws_read_data(&mut c, 5), (1, b"hello".to_vec()));
    // A fragmented message: its payload reaches the backend as one stream.
    c.write_all(&ws_frame(1, false, b"frag")).unwrap();
    c.write_all(&ws_frame(0, true, b"mented")).unwrap();
    assert_eq!(ws_read_data(&mut c, 10).1, b"fragmented");
    // A ping is answered with its payload.
    c.write_all(&ws_frame(9, true, b"are you there")).unwrap();
    assert_eq!(ws_read(&mut c), (true, 10, b"are you there".to_vec()));
    // A large binary message, written while the echo is read back.
    let big = pattern(2 << 20);
    let frame = ws_frame(2, true, &big);
    let mut w = c.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&frame).unwrap());
    let (_, got) = ws_read_data(&mut c, big.len());
    assert!(got == big, "the echo differs");
    writer.join().unwrap();
    // Close: answered with a normal closure, then the connection ends.
    let mut close = vec![0x03, 0xe8];
    close.extend_from_slice(b"done");
    c.write_all(&ws_frame(8, true, &close)).unwrap();
    let (_, op, payload) = ws_read(&mut c);
    assert_eq!((op, &payload[..2]), (8, &[0x03, 0xe8][..]));
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn wstunnel_checks_the_handshake_and_pings() {
    let echo = echo_server();
    let s = builder()
        .config(&wstunnel_config(
            echo,
            "wstunnel.origins = ( \"example.org\" )\nwstunnel.ping-interval = 1\n\
             wstunnel.frame-type = \"binary\"",
        ))
        .start();
    let (_, head) = ws_open(s.addr(), "/ws", "Origin: http://evil.test\r\n");
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let (_, head) = ws_open(s.addr(), "/ws", "");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    // lighttpd's match: the origin as sent ends in an allowed name, after a '.'.
    let (_, head) = ws_open(s.addr(), "/ws", "Origin: https://example.org\r\n");
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let (mut c, head) = ws_open(s.addr(), "/ws", "Origin: https://www.example.org\r\n");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // Binary frames by config.
    c.write_all(&ws_frame(1, true, b"abc")).unwrap();
    assert_eq!(ws_read_data(&mut c, 3), (2, b"abc".to_vec()));
    // Pings come every second while nothing else happens.
    let t = Instant::now();
    let (_, op, payload) = ws_read(&mut c);
    assert_eq!((op, payload.as_slice()), (9, &b"ping"[..]));
    assert!(t.elapsed() < Duration::from_secs(4));
    // Not a WebSocket request: not mod_wstunnel's (the static handler answers).
    let r = s.get("/ws");
    assert_eq!(r.status, 404, "{}", r.describe());
    // The backend down: 503, no 101.
    let s2 = builder()
        .config(&wstunnel_config(
            SocketAddr::from(([127, 0, 0, 1], dead_port())),
            "",
        ))
        .start();
    let (_, head) = ws_open(s2.addr(), "/ws", "");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
}

#[test]
fn a_graceful_stop_keeps_tunnels_until_its_deadline_then_closes_them() {
    let echo = echo_server();
    let mut s = builder()
        .config(&wstunnel_config(
            echo,
            "server.graceful-shutdown-timeout = 3",
        ))
        .start();
    let (mut c, head) = ws_open(s.addr(), "/ws", "");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    c.write_all(&ws_frame(1, true, b"before")).unwrap();
    assert_eq!(ws_read_data(&mut c, 6).1, b"before");
    let stop = Instant::now();
    s.signal(libc::SIGINT);
    // New connections are refused at once; the tunnel goes on.
    assert!(s.wait_refused(Duration::from_secs(5)));
    for i in 0..3 {
        let msg = format!("during {i}");
        c.write_all(&ws_frame(1, true, msg.as_bytes())).unwrap();
        assert_eq!(ws_read_data(&mut c, msg.len()).1, msg.as_bytes());
        thread::sleep(Duration::from_millis(300));
    }
    // At the deadline: a close frame saying the server goes away, then the end.
    let (_, op, payload) = ws_read(&mut c);
    let waited = stop.elapsed();
    assert_eq!(op, 8, "{payload:?}");
    assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    assert!(
        waited >= Duration::from_millis(2500),
        "closed after {waited:?}"
    );
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(s
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|st| st.success()));
}
