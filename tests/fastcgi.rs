//! mod_fastcgi and mod_scgi against the real binary: a FastCGI application written here (so a
//! test decides exactly what the backend does), lighttpd's own SCGI test responder, and
//! Debian's php-cgi where it is installed. Covers bodies both ways, 100 MB uploads, and the
//! failures: a backend that is down (503), silent (504) or dies mid-response (cut), and a
//! slow one that must not slow the others.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A FastCGI application on 127.0.0.1: one thread per connection. What it answers depends on
/// QUERY_STRING:
/// - "sum": the request body's length and byte sum;
/// - "die": a head announcing 100000 bytes, 10 of them, then the connection closes;
/// - "hang": nothing for 30 s;
/// - "slow": "slow" after 1.5 s;
/// - "sendfile": an X-Sendfile naming the document root's index.html ("sendfile-etc":
///   /etc/passwd);
/// - otherwise "hello <QUERY_STRING>", with the SCRIPT_NAME and PATH_INFO it got.
struct App {
    port: u16,
    requests: Arc<AtomicU64>,
}

impl App {
    fn start() -> App {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicU64::new(0));
        let n = Arc::clone(&requests);
        thread::spawn(move || {
            for s in l.incoming().flatten() {
                let n = Arc::clone(&n);
                thread::spawn(move || {
                    let _ = serve(s, &n);
                });
            }
        });
        App { port, requests }
    }
}

fn read_record(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h)?;
    let len = u16::from_be_bytes([h[4], h[5]]) as usize;
    let mut body = vec![0u8; len + h[6] as usize];
    s.read_exact(&mut body)?;
    body.truncate(len);
    Ok((h[1], body))
}

fn record(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut r = vec![1, kind, 0, 1];
    r.extend_from_slice(&(data.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0]);
    r.extend_from_slice(data);
    r
}

fn stdout(s: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    for part in data.chunks(65535) {
        s.write_all(&record(6, part))?;
    }
    Ok(())
}

fn end(s: &mut TcpStream) -> std::io::Result<()> {
    s.write_all(&record(6, b""))?;
    s.write_all(&record(3, &[0, 0, 0, 0, 0, 0, 0, 0]))
}

/// The name-value pairs of a PARAMS stream.
fn params(mut p: &[u8]) -> Vec<(String, String)> {
    fn len(p: &mut &[u8]) -> Option<usize> {
        let b = *p.first()?;
        if b < 0x80 {
            *p = &p[1..];
            Some(b as usize)
        } else {
            let v = u32::from_be_bytes(p.get(..4)?.try_into().ok()?) & 0x7fff_ffff;
            *p = &p[4..];
            Some(v as usize)
        }
    }
    let mut out = Vec::new();
    while !p.is_empty() {
        let (Some(n), Some(v)) = (len(&mut p), len(&mut p)) else {
            break;
        };
        let name = String::from_utf8_lossy(&p[..n]).into_owned();
        let value = String::from_utf8_lossy(&p[n..n + v]).into_owned();
        p = &p[n + v..];
        out.push((name, value));
    }
    out
}

fn serve(mut s: TcpStream, n: &AtomicU64) -> std::io::Result<()> {
    let mut pstream = Vec::new();
    let (mut len, mut sum) = (0u64, 0u64);
    loop {
        let (kind, body) = read_record(&mut s)?;
        match kind {
            4 => pstream.extend_from_slice(&body),
            5 if body.is_empty() => break,
            5 => {
                len += body.len() as u64;
                sum += body.iter().map(|&b| b as u64).sum::<u64>();
            }
            _ => {}
        }
    }
    n.fetch_add(1, Ordering::SeqCst);
    let env = params(&pstream);
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let q = get("QUERY_STRING");
    match q.as_str() {
        "sum" => stdout(
            &mut s,
            format!("Content-Type: text/plain\r\n\r\n{len} {sum}").as_bytes(),
        )?,
        "die" => {
            stdout(&mut s, b"Content-Length: 100000\r\n\r\n0123456789")?;
            return Ok(());
        }
        "hang" => {
            thread::sleep(Duration::from_secs(30));
            return Ok(());
        }
        "sendfile" => stdout(
            &mut s,
            format!(
                "X-Sendfile: {}/index.html\r\n\r\nignored",
                get("DOCUMENT_ROOT")
            )
            .as_bytes(),
        )?,
        "sendfile-etc" => stdout(&mut s, b"X-Sendfile: /etc/passwd\r\n\r\n")?,
        "slow" => {
            thread::sleep(Duration::from_millis(1500));
            stdout(&mut s, b"Content-Type: text/plain\r\n\r\nslow")?;
        }
        _ => stdout(
            &mut s,
            format!(
                "Content-Type: text/plain\r\n\r\nhello {q} [{}] [{}] [{}]",
                get("SCRIPT_NAME"),
                get("PATH_INFO"),
                get("CONTENT_LENGTH")
            )
            .as_bytes(),
        )?,
    }
    end(&mut s)
}

fn site(app: &App, extra: &str) -> Server {
    builder()
        .file("index.html", "home")
        .config("server.modules = ( \"mod_fastcgi\" )")
        .config(&format!(
            "fastcgi.server = ( \"/app\" => (( \"host\" => \"127.0.0.1\", \"port\" => {}, \
             \"check-local\" => \"disable\" )) )",
            app.port
        ))
        .config(extra)
        .start()
}

#[test]
fn requests_and_bodies_through_fastcgi() {
    let app = App::start();
    let s = site(&app, "");
    let r = s.get("/app/more/path?x=1");
    assert_eq!(r.status, 200, "{}", r.describe());
    // "/app" is a prefix: SCRIPT_NAME is the prefix, the rest is PATH_INFO.
    assert_eq!(r.text(), "hello x=1 [/app] [/more/path] [0]");
    assert_eq!(r.header("Content-Length"), Some("33"));
    // Bodies in, with a length and chunked, on one keep-alive connection.
    let mut c = s.connect();
    let body = pattern(200_000);
    let mut req = format!(
        "POST /app?sum HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    let r = c.read_response();
    let want_sum: u64 = body.iter().map(|&b| b as u64).sum();
    assert_eq!(r.text(), format!("{} {want_sum}", body.len()));
    let mut req =
        b"POST /app?sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(10_000) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.text(), format!("{} {want_sum}", body.len()));
}

#[test]
fn x_sendfile_from_a_fastcgi_host_within_its_docroot() {
    let app = App::start();
    let b = builder().file("index.html", "home");
    let root = b.docroot();
    let s = b
        .config("server.modules = ( \"mod_fastcgi\" )")
        .config(&format!(
            "fastcgi.server = ( \"/app\" => (( \"host\" => \"127.0.0.1\", \"port\" => {}, \
             \"check-local\" => \"disable\", \"x-sendfile\" => \"enable\", \
             \"x-sendfile-docroot\" => ( \"{}\" ) )) )",
            app.port,
            root.display()
        ))
        .start();
    let r = s.get("/app?sendfile");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "home");
    assert_eq!(r.header("Content-Length"), Some("4"));
    // Outside x-sendfile-docroot: refused, and nothing of the file leaks.
    let r = s.get("/app?sendfile-etc");
    assert_eq!(r.status, 502, "{}", r.describe());
    assert!(!r.text().contains("root:"));
    // Without x-sendfile the field is only a field: the body is the application's.
    let plain = site(&app, "");
    let r = plain.get("/app?sendfile");
    assert_eq!(r.text(), "ignored");
}

#[test]
fn requests_are_balanced_over_the_hosts_of_an_entry() {
    let (a, b) = (App::start(), App::start());
    let s = builder()
        .config("server.modules = ( \"mod_fastcgi\" )\nfastcgi.balance = \"round-robin\"")
        .config(&format!(
            "fastcgi.server = ( \"/app\" => ( \"a\" => ( \"host\" => \"127.0.0.1\", \"port\" => {}, \
             \"check-local\" => \"disable\" ), \"b\" => ( \"host\" => \"127.0.0.1\", \
             \"port\" => {}, \"check-local\" => \"disable\" ) ) )",
            a.port, b.port
        ))
        .start();
    for i in 0..10 {
        assert_eq!(s.get(&format!("/app?{i}")).status, 200);
    }
    let (na, nb) = (
        a.requests.load(Ordering::SeqCst),
        b.requests.load(Ordering::SeqCst),
    );
    assert_eq!(na + nb, 10);
    assert_eq!((na, nb), (5, 5), "round-robin over two hosts");
}

#[test]
fn a_100_mb_upload_through_fastcgi() {
    let app = App::start();
    let s = site(&app, "server.max-request-size = 0");
    let chunk = pattern(1 << 20);
    let mut c = s.connect();
    c.send(b"POST /app?sum HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n");
    for _ in 0..100 {
        c.send(&chunk);
    }
    c.set_read_timeout(Duration::from_secs(120));
    let r = c.read_response();
    let sum: u64 = chunk.iter().map(|&b| b as u64).sum::<u64>() * 100;
    assert_eq!(r.text(), format!("104857600 {sum}"));
}

#[test]
fn failures_get_503_504_or_a_cut() {
    let app = App::start();
    // Nothing listens on a port the OS just gave back.
    let dead = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let s = site(
        &app,
        &format!(
            "$HTTP[\"url\"] =^ \"/down\" {{\n fastcgi.server = ( \"/down\" => (( \"host\" => \
             \"127.0.0.1\", \"port\" => {dead}, \"check-local\" => \"disable\" )) )\n}}\n\
             server.max-read-idle = 2"
        ),
    );
    let r = s.get("/down/x");
    assert_eq!(r.status, 503, "{}", r.describe());
    let t = Instant::now();
    let r = s.get("/app?hang");
    assert_eq!(r.status, 504, "{}", r.describe());
    assert!(t.elapsed() < Duration::from_secs(15));
    // Dies after its head: the client must see a cut, never a short body that looks whole.
    let mut c = s.connect();
    c.send(b"GET /app?die HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.try_read_response(false);
    assert!(r.is_err(), "{:?}", r.map(|r| r.describe()));
    // And the server is fine.
    assert_eq!(s.get("/app?ok").status, 200);
}

#[test]
fn a_slow_backend_does_not_slow_the_others() {
    let app = App::start();
    let s = site(&app, "");
    let addr = s.addr();
    let slow: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                c.get("/app?slow").text()
            })
        })
        .collect();
    // While four requests wait 1.5 s on the backend, quick ones are answered at once.
    thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    for i in 0..20 {
        let r = s.get(&format!("/index.html?{i}"));
        assert_eq!(r.text(), "home");
    }
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "quick requests took {:?} beside slow ones",
        t.elapsed()
    );
    for h in slow {
        assert_eq!(h.join().unwrap(), "slow");
    }
    assert!(app.requests.load(Ordering::SeqCst) >= 4);
}

#[test]
fn scgi_with_lighttpds_responder() {
    let Some((dir, bin)) = suite_responder("scgi-responder") else {
        return;
    };
    let sock = dir.path().join("scgi.sock");
    let s = builder()
        .config("server.modules = ( \"mod_scgi\" )")
        .config(&format!(
            "scgi.server = ( \".scgi\" => (( \"socket\" => \"{}\", \"bin-path\" => \"{}\", \
             \"max-procs\" => 1, \"check-local\" => \"disable\" )) )",
            sock.display(),
            bin.display()
        ))
        .start();
    let r = s.get("/x.scgi?env=SCRIPT_NAME");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "/x.scgi");
    let r = s.get("/x.scgi?crlf");
    assert_eq!(r.status, 200, "{}", r.describe());
    // The pool is lightd's: a stop ends its process and removes its socket.
    let running = || {
        std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten().any(|e| {
                    std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                        c.split(|&b| b == 0)
                            .next()
                            .is_some_and(|a| a == bin.as_os_str().as_encoded_bytes())
                    }) && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|st| {
                        !st.rsplit_once(')')
                            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                    })
                })
            })
            .unwrap_or(false)
    };
    assert!(running(), "the SCGI responder does not run");
    let mut s = s;
    s.signal(libc::SIGINT);
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    let t = Instant::now();
    while running() && t.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(), "the SCGI responder outlived lightd");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("scgi.sock"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "sockets left: {}", left.len());
}

#[test]
fn php_cgi_serves_a_php_app() {
    let Some(php) = ["/usr/bin/php-cgi", "/usr/local/bin/php-cgi"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("skipped: php-cgi is not installed");
        return;
    };
    let b = builder();
    let sock = b.dir().join("php.sock");
    let s = b
        .file(
            "app/index.php",
            "<?php header('X-App: php'); echo 'method=', $_SERVER['REQUEST_METHOD'], \
             ' name=', htmlspecialchars($_POST['name'] ?? $_GET['name'] ?? ''), \
             ' script=', $_SERVER['SCRIPT_NAME'], ' info=', $_SERVER['PATH_INFO'] ?? '';",
        )
        .config("server.modules = ( \"mod_fastcgi\" )\nindex-file.names = ( \"index.php\" )")
        .config(&format!(
            "fastcgi.server = ( \".php\" => (( \"socket\" => \"{}\", \"bin-path\" => \"{php}\", \
             \"max-procs\" => 1, \"bin-environment\" => ( \"PHP_FCGI_MAX_REQUESTS\" => \"100\" ) )) )",
            sock.display()
        ))
        .start();
    let r = s.get("/app/index.php?name=a%3Cb");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("X-App"), Some("php"));
    assert_eq!(
        r.text(),
        "method=GET name=a&lt;b script=/app/index.php info="
    );
    let r = s.request(
        b"POST /app/index.php/extra HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nname=form",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.text(),
        "method=POST name=form script=/app/index.php info=/extra"
    );
    // The index file of a directory goes to PHP too.
    let r = s.get("/app/?name=idx");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("name=idx"), "{}", r.describe());
    // A stop ends lightd's php-cgi (and the children it started) with it.
    let pid = s.pid();
    let php_children = || children_named(pid, "php-cgi");
    let ours = php_children();
    assert!(!ours.is_empty(), "no php-cgi child of lightd");
    let mut s = s;
    s.signal(libc::SIGINT);
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    let t = Instant::now();
    while ours.iter().any(|&p| pid_alive(p)) && t.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !ours.iter().any(|&p| pid_alive(p)),
        "php-cgi outlived lightd: {ours:?}"
    );
}

/// The live processes named `comm` whose parent is `parent`, and their children.
fn children_named(parent: i32, comm: &str) -> Vec<i32> {
    let stat = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let mut found = Vec::new();
    let mut parents = vec![parent];
    // Two levels: php-cgi's master, and the children it forks.
    for _ in 0..2 {
        let mut next = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Some(st) = stat(pid) else { continue };
            let Some((head, rest)) = st.rsplit_once(')') else {
                continue;
            };
            let name = head.split_once('(').map_or("", |(_, n)| n);
            let mut f = rest.split_whitespace();
            let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<i32>().ok()));
            if name == comm && state != Some("Z") && ppid.is_some_and(|p| parents.contains(&p)) {
                next.push(pid);
            }
        }
        found.extend(&next);
        parents = next;
    }
    found
}
