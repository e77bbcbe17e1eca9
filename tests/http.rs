//! HTTP/1.1 semantics: methods, headers on every response, keep-alive, pipelining, request
//! bodies, 100-continue, conditional requests and error bodies.

mod common;

use common::*;
use std::time::Duration;

const INDEX: &str = "<html><body>hello lightd</body></html>\n";

fn server() -> Server {
    builder()
        .file("index.html", INDEX)
        .file("a.txt", "file a\n")
        .file("b.txt", "file b, a little longer\n")
        .file("c.txt", "file c\n")
        .config("server.tag = \"lightd-test\"")
        .start()
}

/// An HTTP-date: "Sun, 06 Nov 1994 08:49:37 GMT".
fn is_http_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 29 && &b[3..5] == b", " && v.ends_with(" GMT") && b[19] == b':' && b[22] == b':'
}

#[test]
fn get_has_the_standard_headers() {
    let s = server();
    let r = s.get("/index.html");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.version == "HTTP/1.1", "{}", r.describe());
    assert_eq!(r.text(), INDEX);
    assert_eq!(
        r.header("Content-Length"),
        Some(INDEX.len().to_string().as_str())
    );
    assert!(
        r.header("Content-Type")
            .is_some_and(|v| v.starts_with("text/html")),
        "{}",
        r.describe()
    );
    assert_eq!(r.header("Server"), Some("lightd-test"));
    assert!(
        r.header("Date").is_some_and(is_http_date),
        "{}",
        r.describe()
    );
    assert!(
        r.header("Last-Modified").is_some_and(is_http_date),
        "{}",
        r.describe()
    );
    assert!(
        r.header("ETag").is_some_and(|v| v.contains('"')),
        "{}",
        r.describe()
    );
}

#[test]
fn error_responses_have_the_standard_headers_and_html_body() {
    let s = server();
    let r = s.get("/no-such-file.html");
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.header("Server"), Some("lightd-test"));
    assert!(
        r.header("Date").is_some_and(is_http_date),
        "{}",
        r.describe()
    );
    assert!(
        r.header("Content-Type")
            .is_some_and(|v| v.starts_with("text/html")),
        "{}",
        r.describe()
    );
    // lighttpd's page, byte for byte.
    assert_eq!(
        r.text(),
        "<!DOCTYPE html>\n<html lang=\"en\">\n <head>\n  <meta charset=\"UTF-8\" />\n  \
         <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n \
         </body>\n</html>\n",
        "{}",
        r.describe()
    );
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
}

#[test]
fn head_has_get_headers_and_no_body() {
    let s = server();
    let mut c = s.connect();
    let g = c.get("/index.html");
    c.send(&req("HEAD", "/index.html", &[]));
    let h = c.read_head_response();
    assert_eq!(h.status, 200, "{}", h.describe());
    for name in [
        "Content-Length",
        "Content-Type",
        "ETag",
        "Last-Modified",
        "Server",
    ] {
        assert_eq!(
            h.header(name),
            g.header(name),
            "{name} differs\nGET: {}\nHEAD: {}",
            g.head,
            h.head
        );
    }
    // HEAD of a missing file: error headers, still no body.
    c.send(&req("HEAD", "/missing.html", &[]));
    let h404 = c.read_head_response();
    assert_eq!(h404.status, 404, "{}", h404.describe());
    // Had either HEAD response carried a body, this response would not parse.
    let after = c.get("/a.txt");
    assert_eq!(after.status, 200, "{}", after.describe());
    assert_eq!(after.text(), "file a\n");
}

#[test]
fn options_star_and_path() {
    let s = server();
    let r = s.request(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    let allow = r
        .header("Allow")
        .unwrap_or_else(|| panic!("no Allow\n{}", r.describe()));
    for m in ["GET", "HEAD", "OPTIONS"] {
        assert!(allow.contains(m), "Allow {allow:?} lacks {m}");
    }
    let r = s.request(&req("OPTIONS", "/index.html", &[]));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.header("Allow").is_some_and(|a| a.contains("GET")),
        "{}",
        r.describe()
    );
}

#[test]
fn post_to_a_static_file_is_answered_like_get() {
    let s = server();
    let mut c = s.connect();
    let body = "x".repeat(300);
    c.send(
        format!(
            "POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "file a\n");
    // The body was consumed, not taken for the next request.
    let r = c.get("/b.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file b, a little longer\n"),
        "{}",
        r.describe()
    );
}

#[test]
fn known_unsupported_methods_get_405_with_allow() {
    let s = server();
    for m in ["PUT", "DELETE", "PATCH"] {
        let extra: &[&str] = if m == "DELETE" {
            &[]
        } else {
            &["Content-Length: 0"]
        };
        let r = s.request(&req(m, "/a.txt", extra));
        assert_eq!(r.status, 405, "{m}\n{}", r.describe());
        let allow = r
            .header("Allow")
            .unwrap_or_else(|| panic!("{m}: no Allow\n{}", r.describe()));
        assert!(allow.contains("GET"), "{m}: Allow {allow:?}");
        assert!(
            !allow.contains(m),
            "{m}: Allow {allow:?} lists the refused method"
        );
    }
}

#[test]
fn unknown_method_gets_501() {
    let s = server();
    let r = s.request(&req("BREW", "/a.txt", &[]));
    assert_eq!(r.status, 501, "{}", r.describe());
}

#[test]
fn http11_keeps_alive_by_default() {
    let s = server();
    let mut c = s.connect();
    for (path, want) in [
        ("/a.txt", "file a\n"),
        ("/b.txt", "file b, a little longer\n"),
        ("/a.txt", "file a\n"),
    ] {
        let r = c.get(path);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, want),
            "{}",
            r.describe()
        );
        assert!(!r.has_close(), "{}", r.describe());
    }
}

#[test]
fn http11_connection_close_is_honoured() {
    let s = server();
    let mut c = s.connect();
    let r = c.request(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.has_close(), "{}", r.describe());
    let rest = c
        .read_to_eof()
        .expect("clean close after Connection: close");
    assert!(rest.is_empty());
}

/// A client that asks for close usually sends nothing more, and lightd then closes without
/// the lingering half-close. One that sends more anyway (here 256 KiB of pipelined requests
/// behind the close) must still get a clean end: closing with those bytes unread would make
/// the kernel answer with a reset instead of a FIN.
#[test]
fn data_after_connection_close_gets_a_clean_close_not_a_reset() {
    let s = server();
    let mut c = s.connect();
    let mut burst = b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec();
    while burst.len() < 256 * 1024 {
        burst.extend_from_slice(b"GET /b.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    }
    if let Err(e) = c.try_send(&burst) {
        panic!("sending the burst: {e} (the server reset the connection)");
    }
    let r = c.read_response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file a\n"),
        "{}",
        r.describe()
    );
    assert!(r.has_close(), "{}", r.describe());
    match c.read_to_eof() {
        Ok(rest) => assert!(
            rest.is_empty(),
            "{} bytes after the response: the pipelined requests were answered",
            rest.len()
        ),
        Err(e) => panic!("no clean close after the response: {e}"),
    }
}

#[test]
fn http10_closes_unless_keep_alive_is_asked() {
    let s = server();
    let mut c = s.connect();
    let r = c.request(b"GET /a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file a\n"),
        "{}",
        r.describe()
    );
    let rest = c
        .read_to_eof()
        .expect("HTTP/1.0 without keep-alive should be closed");
    assert!(rest.is_empty());

    let mut c = s.connect();
    let r = c.request(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(!r.has_close(), "{}", r.describe());
    let r = c.request(b"GET /b.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file b, a little longer\n"),
        "{}",
        r.describe()
    );
}

/// Between keep-alive requests one extra empty line is ignored; two get 400 (lighttpd's
/// request.t, "Implicit HTTP/1.1 Keep-Alive w/ extra blank" and "w/ excess blank").
#[test]
fn empty_lines_between_keep_alive_requests() {
    let s = server();
    let first = "GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let second = "GET /c.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (extra, want) in [("\r\n", 200), ("\r\n\r\n", 400), ("\n", 200), ("\n\n", 400)] {
        let mut c = s.connect();
        c.send(format!("{first}{extra}{second}").as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 200, "{extra:?}: {}", r.describe());
        let r = c.read_response();
        assert_eq!(r.status, want, "{extra:?}: {}", r.describe());
        if want == 200 {
            assert_eq!(r.text(), "file c\n");
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = server();
    let mut c = s.connect();
    let expected: [(&str, u16, Option<&str>); 6] = [
        ("/a.txt", 200, Some("file a\n")),
        ("/b.txt", 200, Some("file b, a little longer\n")),
        ("/missing", 404, None),
        ("/c.txt", 200, Some("file c\n")),
        ("/index.html", 200, Some(INDEX)),
        ("/a.txt", 200, Some("file a\n")),
    ];
    let mut all = Vec::new();
    for (p, _, _) in &expected {
        all.extend(get(p));
    }
    // One write, so the server sees them all at once.
    c.send(&all);
    for (p, status, body) in expected {
        let r = c.read_response();
        assert_eq!(r.status, status, "{p}\n{}", r.describe());
        if let Some(body) = body {
            assert_eq!(r.text(), body, "{p}");
        }
    }
}

#[test]
fn chunked_request_body_with_trailers() {
    let s = server();
    let mut c = s.connect();
    c.send(
        b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file a\n"),
        "{}",
        r.describe()
    );
    let r = c.get("/c.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file c\n"),
        "{}",
        r.describe()
    );
}

#[test]
fn expect_100_continue() {
    let s = server();
    let mut c = s.connect();
    c.send(b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
    // The interim response must come before we send the body.
    let interim = c.read_response();
    assert_eq!(interim.status, 100, "{}", interim.describe());
    assert!(interim.head.starts_with("HTTP/1.1 100"), "{}", interim.head);
    c.send(b"0123456789");
    let r = c.read_response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file a\n"),
        "{}",
        r.describe()
    );
    let r = c.get("/b.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
}

/// A client that sent its body with the head is not waiting for 100 Continue: the final
/// response comes alone (RFC 9110 §10.1.1 lets the server omit the interim one; lighttpd's
/// request.t "Continue, Expect" wants it omitted).
#[test]
fn expect_100_continue_with_the_body_already_sent() {
    let s = server();
    let mut c = s.connect();
    c.send(
        b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\
          Expect: 100-continue\r\n\r\n123\n",
    );
    let r = c.read_response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file a\n"),
        "{}",
        r.describe()
    );
    // Nothing else was queued: the next answer on the connection is the next request's.
    let r = c.get("/b.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "file b, a little longer\n");
}

/// HTTP/1.0 clients do not know 100 Continue: Expect is ignored (RFC 9110 §10.1.1).
#[test]
fn expect_100_continue_ignored_for_http10() {
    let s = server();
    let mut c = s.connect();
    c.send(b"POST /a.txt HTTP/1.0\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    // The server waits for the body without an interim answer; once it is sent, the final
    // response is the first thing to arrive.
    c.send(b"abcd");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "file a\n");
}

#[test]
fn conditional_get_gives_304() {
    let s = server();
    let r = s.get("/index.html");
    let etag = r.header("ETag").expect("ETag").to_string();
    let lm = r
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();

    let mut c = s.connect();
    let r = c.request(&req(
        "GET",
        "/index.html",
        &[&format!("If-None-Match: {etag}")],
    ));
    assert_eq!(r.status, 304, "{}", r.describe());
    assert_eq!(r.header("ETag"), Some(etag.as_str()), "{}", r.describe());
    // A 304 has no body: the next response on the connection parses cleanly.
    let r = c.request(&req(
        "GET",
        "/index.html",
        &[&format!("If-Modified-Since: {lm}")],
    ));
    assert_eq!(r.status, 304, "{}", r.describe());
    let r = c.request(&req(
        "GET",
        "/index.html",
        &["If-None-Match: \"some-other-etag\""],
    ));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, INDEX),
        "{}",
        r.describe()
    );
    let r = c.request(&req(
        "GET",
        "/index.html",
        &["If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT"],
    ));
    assert_eq!(r.status, 200, "{}", r.describe());
    // If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.2.2).
    let r = c.request(&req(
        "GET",
        "/index.html",
        &[
            "If-None-Match: \"some-other-etag\"",
            &format!("If-Modified-Since: {lm}"),
        ],
    ));
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn etag_changes_when_the_file_changes() {
    let s = server();
    let before = s.get("/c.txt");
    write_file(
        &s.docroot().join("c.txt"),
        "file c, rewritten with another length\n",
    );
    // Small files are cached and revalidated once per second (as lighttpd's stat cache
    // does), so the change must show within about a second, not necessarily at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let after = loop {
        let r = s.get("/c.txt");
        if r.text() == "file c, rewritten with another length\n" {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rewritten file was still not served after 5 s: {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(before.header("ETag"), after.header("ETag"));
}

#[test]
fn max_keep_alive_requests_closes_after_the_last() {
    let s = builder()
        .file("a.txt", "a")
        .config("server.max-keep-alive-requests = 2")
        .start();
    let mut c = s.connect();
    let r = c.get("/a.txt");
    assert!(!r.has_close(), "{}", r.describe());
    let r = c.get("/a.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.has_close(),
        "the 2nd of 2 allowed requests should say close\n{}",
        r.describe()
    );
    let (closed, _) = c.wait_closed(Duration::from_secs(10));
    assert!(closed);
}

#[test]
fn absolute_form_target() {
    let s = server();
    let r = s.request(b"GET http://localhost/a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "file a\n"),
        "{}",
        r.describe()
    );
}
