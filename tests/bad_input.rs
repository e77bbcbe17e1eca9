//! Hostile and malformed requests: each gets the right status and a closed connection, and
//! no spelling of a path reaches files outside the document root.

mod common;

use common::*;
use std::io;
use std::time::Duration;

fn server(extra: &str) -> Server {
    builder()
        .file("index.html", "index")
        .file("sub/inner.txt", "inner")
        .config(extra)
        .start()
}

/// Send `raw` on a new connection; expect a response with `status`, then the connection
/// closed. Returns a description of what went wrong, if anything.
fn check_error(s: &Server, raw: &[u8], status: u16) -> Option<String> {
    let mut c = s.connect();
    // The server may answer and close before reading everything we send; that is fine, the
    // response is what matters.
    let _ = c.try_send(raw);
    let shown = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
    let r = match c.try_read_response(false) {
        Ok(r) => r,
        Err(e) => return Some(format!("{shown:?}: no response ({e}), want {status}")),
    };
    if r.status != status {
        return Some(format!(
            "{shown:?}: got {}, want {status}\n{}",
            r.status, r.head
        ));
    }
    let (closed, _) = c.wait_closed(Duration::from_secs(10));
    if !closed {
        return Some(format!("{shown:?}: connection left open after {status}"));
    }
    None
}

fn check_all(s: &Server, cases: &[(Vec<u8>, u16)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(raw, status)| check_error(s, raw, *status))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // And the server is still fine afterwards.
    assert_eq!(s.get("/index.html").status, 200);
}

#[test]
fn malformed_requests_are_400() {
    let s = server("");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n".to_vec(), 400),
        (b"GET /index.html HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        (b"GET /index.html HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), 400),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(), 400),
        (b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(), 400),
        (b"POST /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(), 400),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n".to_vec(), 400),
    ];
    check_all(&s, &cases);
}

#[test]
fn nul_in_path_is_400() {
    let s = server("");
    check_all(
        &s,
        &[
            (get("/index%00.html"), 400),
            (get("/sub%00/inner.txt"), 400),
        ],
    );
}

#[test]
fn long_request_line_is_414() {
    let s = server("");
    let long = format!("/{}", "a".repeat(16 * 1024));
    check_all(&s, &[(get(&long), 414)]);
}

#[test]
fn oversized_header_section_is_431() {
    let s = server("");
    let big = format!("X-Big: {}", "b".repeat(20 * 1024));
    let mut many = String::from("GET /index.html HTTP/1.1\r\nHost: x\r\n");
    for i in 0..1000 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    check_all(
        &s,
        &[
            (req("GET", "/index.html", &[&big]), 431),
            (many.into_bytes(), 431),
        ],
    );
}

#[test]
fn unsupported_transfer_coding_is_501() {
    let s = server("");
    check_all(
        &s,
        &[(
            b"POST /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            501,
        )],
    );
}

#[test]
fn http2_version_is_505() {
    let s = server("");
    check_all(
        &s,
        &[(b"GET /index.html HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 505)],
    );
}

#[test]
fn body_over_max_request_size_is_413() {
    let s = server("server.max-request-size = 1");
    let body = "z".repeat(4096);
    let by_length = format!(
        "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let chunked = format!(
        "POST /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    check_all(
        &s,
        &[(by_length.into_bytes(), 413), (chunked.into_bytes(), 413)],
    );
    // Within the limit is fine.
    let r = s.request(b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n\
        ....................................................................................................");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "index"),
        "{}",
        r.describe()
    );
}

#[test]
fn dot_dot_never_leaves_the_docroot() {
    let b = builder()
        .file("index.html", "index")
        .file("sub/inner.txt", "inner");
    // The secret sits right next to the docroot, one ".." away.
    let secret = "TOP-SECRET-7f3a9c";
    write_file(&b.dir().join("secret.txt"), secret);
    let s = b.start();
    let paths = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "//../secret.txt",
        "/./../secret.txt",
        "/sub/./../../secret.txt",
        "/%252e%252e/secret.txt",
        "/../docroot/../secret.txt",
        "http://localhost/../secret.txt",
    ];
    let mut leaks = Vec::new();
    for p in paths {
        let mut c = s.connect();
        let _ = c.try_send(&get(p));
        match c.try_read_response(false) {
            Ok(r) => {
                if r.text().contains(secret) || r.status == 200 {
                    leaks.push(format!("{p}: {}", r.describe()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
            Err(e) => leaks.push(format!("{p}: read error {e}")),
        }
    }
    assert!(
        leaks.is_empty(),
        "traversal reached outside the docroot:\n{}",
        leaks.join("\n")
    );
    // Dot segments that stay inside still work.
    let r = s.get("/sub/../sub/inner.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "inner"),
        "{}",
        r.describe()
    );
}

#[test]
fn max_request_field_size_limits_the_head() {
    let s = server("server.max-request-field-size = 1024");
    let big = format!("X-Big: {}", "b".repeat(2000));
    check_all(&s, &[(req("GET", "/index.html", &[&big]), 431)]);
    // The same head is fine under the default limit.
    let d = server("");
    let r = d.request(&req("GET", "/index.html", &[&big]));
    assert_eq!(r.status, 200, "{}", r.describe());
}
