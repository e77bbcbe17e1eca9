//! HTTP/1.1 message-syntax conformance (RFC 9112, RFC 9110) against the real binary, as a
//! table: one line per raw request, its expected status, and whether the connection must stay
//! open afterwards.
//!
//! Every request is followed on the same connection by a pipelined `GET /ok.txt`. That second
//! request is what exposes a desync: if the server misjudged where the first message ended
//! (a body it did not read, a body it read too far, a HEAD answered with a body), the
//! pipelined request is answered wrongly or not at all. When the connection must close, the
//! pipelined request must NOT be answered: a server that cannot trust its framing has to stop.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The request sent after every table line.
const PIPELINED: &[u8] = b"GET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n";
/// Its body, from the main docroot: any other body means the host or the framing leaked.
const OK_BODY: &str = "main-ok\n";
/// A file that exists only in the docroot selected for Host `a.example`, so which host won
/// shows in the status.
const ONLY_A: &str = "only-a\n";
const RANGE_LEN: usize = 10_000;

const OPEN: bool = true;
const CLOSE: bool = false;

/// One table line: name, raw request, acceptable final statuses, connection stays open.
type Case = (&'static str, Vec<u8>, &'static [u16], bool);

fn t(name: &'static str, raw: impl AsRef<[u8]>, status: &'static [u16], open: bool) -> Case {
    (name, raw.as_ref().to_vec(), status, open)
}

/// A server with two docroots: the main one, and another for `$HTTP["host"] == "a.example"`.
fn server() -> Server {
    builder()
        .file("ok.txt", OK_BODY)
        .file("range.bin", pattern(RANGE_LEN))
        .dir_file("other/ok.txt", "other-ok\n")
        .dir_file("other/only-a.txt", ONLY_A)
        .config("$HTTP[\"host\"] == \"a.example\" {\n  server.document-root = \"{dir}/other\"\n}")
        .start()
}

fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /ok.txt HTTP/1.1\r\nHost: x\r\n{headers}\r\n{body}").into_bytes()
}

fn chunked(body: &str) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

/// A GET for /ok.txt with a valid Host and one extra header line (raw, may be malformed).
fn with_field(line: &[u8]) -> Vec<u8> {
    let mut v = b"GET /ok.txt HTTP/1.1\r\nHost: x\r\n".to_vec();
    v.extend_from_slice(line);
    v.extend_from_slice(b"\r\n\r\n");
    v
}

// One line per case, as in parser test tables; rustfmt would spread each over five.
#[rustfmt::skip]
fn table() -> Vec<Case> {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    let big_field = with_field(format!("X-Big: {}", "b".repeat(9000)).as_bytes());
    let mut many_fields = String::from("GET /ok.txt HTTP/1.1\r\nHost: x\r\n");
    for i in 0..300 {
        many_fields.push_str(&format!("X-{i}: v\r\n"));
    }
    many_fields.push_str("\r\n");
    let huge_method = format!("{} /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", "A".repeat(100_000));

    vec![
        // ---- Host (RFC 9112 §3.2) and request-target forms (§3.2.1-4)
        t("1.1 without Host", "GET /ok.txt HTTP/1.1\r\n\r\n", &[400], CLOSE),
        t("two Host fields", "GET /ok.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", &[400], CLOSE),
        t("two identical Host fields", "GET /ok.txt HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("Host with a space", "GET /ok.txt HTTP/1.1\r\nHost: a b\r\n\r\n", &[400], CLOSE),
        t("Host with a slash", "GET /ok.txt HTTP/1.1\r\nHost: a/b\r\n\r\n", &[400], CLOSE),
        t("Host with userinfo", "GET /ok.txt HTTP/1.1\r\nHost: u@a\r\n\r\n", &[400], CLOSE),
        t("Host with a bad port", "GET /ok.txt HTTP/1.1\r\nHost: a:8x\r\n\r\n", &[400], CLOSE),
        t("Host unclosed IPv6", "GET /ok.txt HTTP/1.1\r\nHost: [::1\r\n\r\n", &[400], CLOSE),
        t("Host with a port", "GET /ok.txt HTTP/1.1\r\nHost: x:8080\r\n\r\n", &[200], OPEN),
        t("Host IPv6 literal", "GET /ok.txt HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", &[200], OPEN),
        t("1.0 without Host closes after", "GET /ok.txt HTTP/1.0\r\n\r\n", &[200], CLOSE),
        t("1.0 without Host, keep-alive", "GET /ok.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &[200], OPEN),
        t("Host selects the a.example docroot", "GET /only-a.txt HTTP/1.1\r\nHost: a.example\r\n\r\n", &[200], OPEN),
        t("Host is case-insensitive", "GET /only-a.txt HTTP/1.1\r\nHost: A.Example\r\n\r\n", &[200], OPEN),
        t("absolute-form accepted", "GET http://x/ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[200], OPEN),
        t("absolute-form host wins (a)", "GET http://a.example/only-a.txt HTTP/1.1\r\nHost: b.example\r\n\r\n", &[200], OPEN),
        t("absolute-form host wins (b)", "GET http://b.example/only-a.txt HTTP/1.1\r\nHost: a.example\r\n\r\n", &[404], OPEN),
        // lighttpd takes the target's authority as the Host; the a.example docroot answers.
        t("absolute-form without Host in 1.1", "GET http://a.example/only-a.txt HTTP/1.1\r\n\r\n", &[200], OPEN),
        t("GET *", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("authority-form on GET", "GET a.example:80 HTTP/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("origin-form without /", "GET ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &[200], OPEN),
        // ---- Limits
        t("request target over the limit", long_target, &[414], CLOSE),
        t("one field over the head limit", big_field, &[431], CLOSE),
        t("300 fields", many_fields, &[431], CLOSE),
        // ---- Field lines (RFC 9112 §5, RFC 9110 §5.5)
        t("space before colon", with_field(b"X-Foo : bar"), &[400], CLOSE),
        t("tab before colon", with_field(b"X-Foo\t: bar"), &[400], CLOSE),
        t("first field line starts with SP", "GET /ok.txt HTTP/1.1\r\n X-Foo: bar\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("first field line starts with HT", "GET /ok.txt HTTP/1.1\r\n\tX-Foo: bar\r\nHost: x\r\n\r\n", &[400], CLOSE),
        // obs-fold (§5.2): replaced with spaces, as lighttpd does, where it cannot frame or
        // route the message; refused where it could.
        t("obs-fold with SP", with_field(b"X-Foo: a\r\n b"), &[200], OPEN),
        t("obs-fold with HT", with_field(b"X-Foo: a\r\n\tb"), &[200], OPEN),
        t("obs-fold continuing Host", "GET /ok.txt HTTP/1.1\r\nHost:\r\n a.example\r\n\r\n", &[400], CLOSE),
        t("obs-fold continuing Content-Length", post("Content-Length: 1\r\n 0\r\n", "0123456789"), &[400], CLOSE),
        t("obs-fold continuing Transfer-Encoding", post("Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n"), &[400], CLOSE),
        t("obs-fold hiding a field line", with_field(b"X-Foo: a\r\n Transfer-Encoding: chunked"), &[400], CLOSE),
        t("bare CR in a value", with_field(b"X-Foo: a\rb"), &[400], CLOSE),
        t("NUL in a value", with_field(b"X-Foo: a\0b"), &[400], CLOSE),
        t("SOH in a value", with_field(b"X-Foo: a\x01b"), &[400], CLOSE),
        t("ESC in a value", with_field(b"X-Foo: a\x1bb"), &[400], CLOSE),
        t("DEL in a value", with_field(b"X-Foo: a\x7fb"), &[400], CLOSE),
        t("name with a paren", with_field(b"X(Foo): bar"), &[400], CLOSE),
        t("name with a space", with_field(b"X Foo: bar"), &[400], CLOSE),
        t("name with a non-ASCII byte", with_field(b"X-F\xc3\xb6: bar"), &[400], CLOSE),
        t("line without colon", with_field(b"XFoo bar"), &[400], CLOSE),
        t("empty field name", with_field(b": bar"), &[400], CLOSE),
        t("value without OWS", with_field(b"X-Foo:bar"), &[200], OPEN),
        t("value with HTAB and OWS", with_field(b"X-Foo: \ta\tb \t"), &[200], OPEN),
        t("value with obs-text", with_field(b"X-Foo: caf\xe9"), &[200], OPEN),
        t("empty value", with_field(b"X-Foo:"), &[200], OPEN),
        t("one leading CRLF ignored", "\r\nGET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[200], OPEN),
        t("one leading LF ignored", "\nGET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[200], OPEN),
        t("two leading CRLFs", "\r\n\r\nGET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        // ---- Request line and version (RFC 9112 §2.3, §3)
        t("lowercase http", "GET /ok.txt http/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("HTTP/1.10", "GET /ok.txt HTTP/1.10\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("HTTP/1", "GET /ok.txt HTTP/1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("HTTP/11", "GET /ok.txt HTTP/11\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("HTTP/1.2 served as 1.1", "GET /ok.txt HTTP/1.2\r\nHost: x\r\n\r\n", &[200], OPEN),
        t("HTTP/2.0", "GET /ok.txt HTTP/2.0\r\nHost: x\r\n\r\n", &[505], CLOSE),
        t("HTTP/3.0", "GET /ok.txt HTTP/3.0\r\nHost: x\r\n\r\n", &[505], CLOSE),
        t("HTTP/0.9 line", "GET /ok.txt\r\n\r\n", &[400, 505], CLOSE),
        t("trailing SP after version", "GET /ok.txt HTTP/1.1 \r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("double SP after method", "GET  /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("double SP before version", "GET /ok.txt  HTTP/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("HT as separator", "GET\t/ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[400], CLOSE),
        t("unknown method", "FOO /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[501], CLOSE),
        t("lowercase method", "get /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[501], CLOSE),
        t("100 KB method", huge_method, &[501, 414], CLOSE),
        // ---- Message framing (RFC 9112 §6, §7)
        t("CL and TE", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), &[400], CLOSE),
        t("TE and CL", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"), &[400], CLOSE),
        t("two different CLs", post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), &[400], CLOSE),
        t("CL list of different values", post("Content-Length: 5, 6\r\n", "hello!"), &[400], CLOSE),
        t("CL +5", post("Content-Length: +5\r\n", "hello"), &[400], CLOSE),
        t("CL -1", post("Content-Length: -1\r\n", "hello"), &[400], CLOSE),
        t("CL 0x5", post("Content-Length: 0x5\r\n", "hello"), &[400], CLOSE),
        t("CL 5 5", post("Content-Length: 5 5\r\n", "hello"), &[400], CLOSE),
        t("CL empty", post("Content-Length:\r\n", "hello"), &[400], CLOSE),
        t("CL 2^64", post("Content-Length: 18446744073709551616\r\n", "hello"), &[400], CLOSE),
        t("CL 10^26", post("Content-Length: 100000000000000000000000000\r\n", "hello"), &[400], CLOSE),
        t("CL 5 with body", post("Content-Length: 5\r\n", "hello"), &[200], OPEN),
        t("CL 0", post("Content-Length: 0\r\n", ""), &[200], OPEN),
        t("TE chunked not last", post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"), &[400, 501], CLOSE),
        t("TE chunked twice", post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"), &[400, 501], CLOSE),
        t("TE chunked in two fields", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), &[400, 501], CLOSE),
        t("TE unknown coding", post("Transfer-Encoding: foo\r\n", "0\r\n\r\n"), &[400, 501], CLOSE),
        t("TE gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), &[400, 501], CLOSE),
        t("TE CHUNKED", post("Transfer-Encoding: CHUNKED\r\n", "5\r\nhello\r\n0\r\n\r\n"), &[200], OPEN),
        t("chunked in HTTP/1.0", "POST /ok.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", &[400], CLOSE),
        t("chunked body", chunked("5\r\nhello\r\n0\r\n\r\n"), &[200], OPEN),
        t("chunk size upper-case hex", chunked("A\r\n0123456789\r\n0\r\n\r\n"), &[200], OPEN),
        t("chunk size leading zeros", chunked("0005\r\nhello\r\n0000\r\n\r\n"), &[200], OPEN),
        t("chunk size 0x5", chunked("0x5\r\nhello\r\n0\r\n\r\n"), &[400], CLOSE),
        t("chunk size -5", chunked("-5\r\nhello\r\n0\r\n\r\n"), &[400], CLOSE),
        t("chunk size trailing SP", chunked("5 \r\nhello\r\n0\r\n\r\n"), &[400], CLOSE),
        t("chunk size trailing HT", chunked("5\t\r\nhello\r\n0\r\n\r\n"), &[400], CLOSE),
        t("chunk size empty", chunked("\r\nhello\r\n0\r\n\r\n"), &[400], CLOSE),
        t("chunk size overflow", chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"), &[400], CLOSE),
        t("chunk extension ignored", chunked("5;foo=bar\r\nhello\r\n0;baz\r\n\r\n"), &[200], OPEN),
        t("quoted chunk extension ignored", chunked("5;a=\"b c\"\r\nhello\r\n0\r\n\r\n"), &[200], OPEN),
        t("trailers accepted", chunked("5\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"), &[200], OPEN),
        t("malformed trailer", chunked("5\r\nhello\r\n0\r\nno colon\r\n\r\n"), &[400], CLOSE),
        t("forbidden trailer", chunked("5\r\nhello\r\n0\r\nContent-Length: 0\r\n\r\n"), &[400], CLOSE),
        t("forbidden trailer, lower case", chunked("5\r\nhello\r\n0\r\nhost: x\r\n\r\n"), &[400], CLOSE),
        t("trailer listed in Trailer", post("Transfer-Encoding: chunked\r\nTrailer: X-A, test-trailer\r\n", "5\r\nhello\r\n0\r\nTest-Trailer: t\r\n\r\n"), &[200], OPEN),
        t("trailer not listed in Trailer", post("Transfer-Encoding: chunked\r\nTrailer: not-matching\r\n", "5\r\nhello\r\n0\r\nTest-Trailer: t\r\n\r\n"), &[400], CLOSE),
        t("trailer name of 65 bytes", chunked(&format!("5\r\nhello\r\n0\r\n{}: v\r\n\r\n", "n".repeat(65))), &[400], CLOSE),
        t("chunk line of 1023 bytes", chunked(&format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(1019))), &[200], OPEN),
        t("chunk line of 1024 bytes", chunked(&format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(1020))), &[400], CLOSE),
        t("no CRLF after chunk data", chunked("5\r\nhelloXX\r\n0\r\n\r\n"), &[400], CLOSE),
        t("bare LF after chunk size", chunked("5\nhello\r\n0\r\n\r\n"), &[400], CLOSE),
        t("bare LF after chunk data", chunked("5\r\nhello\n0\r\n\r\n"), &[400], CLOSE),
        t("bare LF after last chunk", chunked("5\r\nhello\r\n0\n\r\n"), &[400], CLOSE),
        // ---- Bodies
        t("POST without CL or TE", "POST /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[200], OPEN),
        t("Expect 100-continue, body sent", post("Content-Length: 5\r\nExpect: 100-continue\r\n", "hello"), &[200], OPEN),
        t("HEAD", "HEAD /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[200], OPEN),
        t("HEAD of a missing file", "HEAD /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[404], OPEN),
        // Range is defined for GET only and MUST be ignored on HEAD (RFC 9110 §14.2).
        t("HEAD ignores Range", "HEAD /ok.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=9999-\r\n\r\n", &[200], OPEN),
        t("HEAD parse error", "HEAD /ok.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", &[400], CLOSE),
        t("HEAD HTTP/2.0", "HEAD /ok.txt HTTP/2.0\r\nHost: x\r\n\r\n", &[505], CLOSE),
        // ---- Ranges
        t("range 0-0", "GET /ok.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n", &[206], OPEN),
        t("range unsatisfiable", "GET /ok.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=9999-\r\n\r\n", &[416], OPEN),
    ]
}

/// Run one line on `conn` (opening one if needed); leaves `conn` None when the connection
/// is used up (closed by design, or in an unknown state after a failure).
fn run_case(
    addr: std::net::SocketAddr,
    conn: &mut Option<Conn>,
    case: &Case,
) -> Result<(), String> {
    let (_, raw, want, open) = case;
    let res = run_case_on(
        conn.get_or_insert_with(|| Conn::connect(addr)),
        raw,
        want,
        *open,
    );
    if res.is_err() || !*open {
        *conn = None;
    }
    res
}

fn run_case_on(c: &mut Conn, raw: &[u8], want: &[u16], open: bool) -> Result<(), String> {
    let mut bytes = raw.to_vec();
    bytes.extend_from_slice(PIPELINED);
    // The server may answer and close before it has read everything (a huge method); the
    // response is what matters.
    let _ = c.try_send(&bytes);
    let head_req = raw.starts_with(b"HEAD ");
    // Interim responses (100 Continue) may come first; a bounded number of them.
    let mut r = None;
    for _ in 0..4 {
        let resp = c
            .try_read_response(head_req)
            .map_err(|e| format!("no response: {e}"))?;
        if (100..200).contains(&resp.status) {
            continue;
        }
        r = Some(resp);
        break;
    }
    let r = r.ok_or("only interim responses")?;
    if !want.contains(&r.status) {
        return Err(format!(
            "got {}, want {want:?}\n    {}",
            r.status,
            r.head.replace("\r\n", "\n    ")
        ));
    }
    if find(&r.body, b"HTTP/1.").is_some() {
        return Err(format!("a response inside the body of the {}", r.status));
    }
    if open {
        if r.has_close() {
            return Err(format!(
                "{} with Connection: close, want the connection kept",
                r.status
            ));
        }
        let p = c
            .try_read_response(false)
            .map_err(|e| format!("{} then the pipelined GET was not answered: {e}", r.status))?;
        if p.status != 200 || p.text() != OK_BODY {
            return Err(format!(
                "{} then the pipelined GET got {} {:?} (desync)",
                r.status,
                p.status,
                String::from_utf8_lossy(&p.body[..p.body.len().min(80)])
            ));
        }
    } else {
        let (closed, rest) = c.wait_closed(Duration::from_secs(5));
        if !rest.is_empty() {
            return Err(format!(
                "{} then more bytes (a body on HEAD, or the pipelined GET answered): {:?}",
                r.status,
                String::from_utf8_lossy(&rest[..rest.len().min(120)])
            ));
        }
        if !closed {
            return Err(format!("{} but the connection was left open", r.status));
        }
    }
    Ok(())
}

#[test]
fn request_table() {
    let s = server();
    let cases = table();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(BTreeMap::new());
    // A few workers, each reusing its connection for as long as the lines keep it open.
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let mut conn = None;
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    if let Err(e) = run_case(s.addr(), &mut conn, case) {
                        failures
                            .lock()
                            .unwrap()
                            .insert(i, format!("{}: {e}", case.0));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} lines failed:\n{}",
        failures.len(),
        cases.len(),
        failures.into_values().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn expect_100_continue_only_on_http11() {
    let s = server();
    // 1.1: the interim response arrives before the body is sent.
    let mut c = s.connect();
    c.send(
        b"POST /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 100, "{}", r.describe());
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(c.get("/ok.txt").text(), OK_BODY);

    // 1.0 clients do not know 100 (RFC 9110 §10.1.1): nothing may arrive before the body is
    // sent, and the first response is the final one.
    let mut c = s.connect();
    c.send(b"POST /ok.txt HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: keep-alive\r\n\r\n");
    c.set_read_timeout(Duration::from_millis(1000));
    match c.read_some(256) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) => {}
        Ok(b) => panic!(
            "sent to a 1.0 client before its body: {:?}",
            String::from_utf8_lossy(&b)
        ),
        Err(e) => panic!("1.0 Expect: {e}"),
    }
    c.set_read_timeout(IO_TIMEOUT);
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn huge_method_is_answered_before_it_is_all_sent() {
    let s = server();
    let mut c = s.connect();
    // 8 KB of a 100 KB method: a server that waits for the rest before judging has buffered
    // unboundedly (or would, for a longer one).
    c.send(&vec![b'A'; 8 * 1024]);
    let start = Instant::now();
    let r = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("no answer after 8 KB of method: {e}"));
    assert!(r.status == 501 || r.status == 414, "{}", r.describe());
    assert!(start.elapsed() < IO_TIMEOUT);
    // The rest may be refused; what matters is that the connection ends.
    let _ = c.try_send(&vec![b'A'; 92 * 1024]);
    let (closed, _) = c.wait_closed(Duration::from_secs(5));
    assert!(closed, "connection left open after {}", r.status);
}

#[test]
fn head_error_responses_carry_length_but_no_body() {
    let s = server();
    let get = s.get("/missing.txt");
    assert_eq!(get.status, 404);
    let mut c = s.connect();
    let mut raw = b"HEAD /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    raw.extend_from_slice(PIPELINED);
    c.send(&raw);
    let h = c.read_head_response();
    assert_eq!(h.status, 404, "{}", h.head);
    assert_eq!(
        h.header("Content-Length"),
        get.header("Content-Length"),
        "HEAD should announce the GET's length\nHEAD:\n{}\nGET:\n{}",
        h.head,
        get.head
    );
    // Straight after the head: the pipelined response, not a body.
    let p = c.read_response();
    assert_eq!(
        (p.status, p.text().as_str()),
        (200, OK_BODY),
        "{}",
        p.describe()
    );
}

fn range_req(spec: &str) -> Vec<u8> {
    req("GET", "/range.bin", &[&format!("Range: {spec}")])
}

#[test]
fn range_single_byte_and_unsatisfiable() {
    let s = server();
    let data = pattern(RANGE_LEN);
    let mut c = s.connect();
    let r = c.request(&range_req("bytes=0-0"));
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(r.body, &data[..1]);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 0-0/{RANGE_LEN}").as_str())
    );
    let r = c.request(&range_req(&format!("bytes={RANGE_LEN}-")));
    assert_eq!(r.status, 416, "{}", r.head);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes */{RANGE_LEN}").as_str())
    );
    assert_eq!(c.get("/ok.txt").text(), OK_BODY);
}

#[test]
fn overlapping_ranges_do_not_amplify() {
    let s = server();
    // Each spec names the whole file (or most of it) hundreds of times; served naively as
    // multipart that is hundreds of copies for one small request.
    let same: Vec<String> = (0..400).map(|_| format!("0-{}", RANGE_LEN - 1)).collect();
    let shifted: Vec<String> = (0..300).map(|i| format!("{i}-")).collect();
    let suffixes: Vec<String> = (0..400).map(|i| format!("-{}", RANGE_LEN - i)).collect();
    let mut problems = Vec::new();
    for (name, specs) in [("same", same), ("shifted", shifted), ("suffixes", suffixes)] {
        let spec = format!("bytes={}", specs.join(","));
        let mut c = s.connect();
        let r = c.request(&range_req(&spec));
        let limit = RANGE_LEN + 1024;
        if !(r.status == 200 || r.status == 206) || r.body.len() > limit {
            problems.push(format!(
                "{name} ({} ranges): {} with {} body bytes for a {RANGE_LEN}-byte file (limit {limit})",
                specs.len(),
                r.status,
                r.body.len()
            ));
        }
        let p = c.get("/ok.txt");
        if p.text() != OK_BODY {
            problems.push(format!(
                "{name}: pipelined request afterwards got {}",
                p.status
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
