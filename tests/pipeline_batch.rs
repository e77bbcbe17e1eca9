//! Pipelined requests whose responses the server holds back to send together: the bytes on
//! the wire are those of the same requests sent one at a time, in order, each response is
//! logged, and nothing held back waits for a request that is not complete yet.

mod common;

use common::*;
use std::io::Read;
use std::time::Duration;

/// Files on both sides of the batching bounds: small cached ones, one of 12 KiB (cached, so
/// two of them pass the batch's size bound) and one sent with sendfile.
fn server() -> (Server, std::path::PathBuf) {
    let b = builder()
        .file("a.txt", "file a\n")
        .file("mid.bin", pattern(12 * 1024))
        .file("big.bin", pattern(100 * 1024))
        .config(
            "server.modules = ( \"mod_accesslog\" )\n\
             accesslog.filename = \"{dir}/access.log\"\n\
             accesslog.format = \"%r %s %b\"",
        );
    let log = b.dir().join("access.log");
    (b.start(), log)
}

/// The response bytes with the Date field's value blanked (a second may pass between runs).
fn without_dates(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\r\nDate: ") {
        let start = i + "\r\nDate: ".len();
        out.push_str(&rest[..start]);
        out.push_str("<date>");
        rest = &rest[start..];
        let end = rest.find("\r\n").unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Read until the server closes, within the test's time bound.
fn read_to_close(c: &mut Conn) -> Vec<u8> {
    c.set_read_timeout(Duration::from_secs(20));
    let mut all = Vec::new();
    c.stream
        .read_to_end(&mut all)
        .unwrap_or_else(|e| panic!("reading to the close: {e}; got {} bytes", all.len()));
    all
}

#[test]
fn pipelined_responses_are_the_bytes_of_sequential_ones() {
    let (s, log) = server();
    let reqs: Vec<(Vec<u8>, bool)> = vec![
        (get("/a.txt"), false),
        (get("/missing"), false),
        (req("HEAD", "/a.txt", &[]), true),
        (get("/mid.bin"), false),
        (get("/mid.bin"), false),
        (req("GET", "/a.txt", &["Range: bytes=1-3"]), false),
        (get("/big.bin"), false),
        (get("/a.txt"), false),
        (get("/mid.bin"), false),
        (req("GET", "/a.txt", &["Connection: close"]), false),
    ];
    // One at a time on one connection, each response read before the next request goes.
    let mut one_by_one = Vec::new();
    let mut c = s.connect();
    for (r, head) in &reqs {
        c.send(r);
        let resp = c.try_read_response(*head).expect("a response");
        assert!(!resp.chunked, "{}", resp.describe());
        one_by_one.extend_from_slice(resp.head.as_bytes());
        one_by_one.extend_from_slice(b"\r\n\r\n");
        one_by_one.extend_from_slice(&resp.body);
    }
    // All in one write.
    let mut c = s.connect();
    let all: Vec<u8> = reqs.iter().flat_map(|(r, _)| r.clone()).collect();
    c.send(&all);
    let pipelined = read_to_close(&mut c);
    assert_eq!(
        pipelined.len(),
        one_by_one.len(),
        "pipelined:\n{}",
        String::from_utf8_lossy(&pipelined[..pipelined.len().min(4096)])
    );
    assert!(
        without_dates(&pipelined) == without_dates(&one_by_one),
        "the pipelined responses differ from the sequential ones"
    );
    // Each response is logged, in order, as in the sequential run: its lines, then the same
    // again.
    let n = reqs.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = t.lines().map(str::to_string).collect();
        if lines.len() >= 2 * n || std::time::Instant::now() >= deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(lines.len(), 2 * n, "{lines:#?}");
    assert_eq!(lines[..n], lines[n..]);
    for ((r, _), line) in reqs.iter().zip(&lines) {
        let text = String::from_utf8_lossy(r);
        let request_line = text.split("\r\n").next().unwrap_or_default();
        assert!(line.starts_with(request_line), "{line} for {request_line}");
    }
    assert!(lines[1].contains(" 404 "), "{}", lines[1]);
    assert!(lines[6].ends_with(" 200 102400"), "{}", lines[6]);
}

#[test]
fn held_back_responses_do_not_wait_for_an_incomplete_request() {
    let (s, _log) = server();
    let mut c = s.connect();
    let mut first = Vec::new();
    for _ in 0..3 {
        first.extend(get("/a.txt"));
    }
    first.extend_from_slice(b"GET /a.txt HTTP/1.1\r\nHo");
    c.send(&first);
    c.set_read_timeout(Duration::from_secs(10));
    for i in 0..3 {
        let r = c.try_read_response(false).unwrap_or_else(|e| {
            panic!("response {i} did not come before the rest of the next request: {e}")
        });
        assert_eq!((r.status, r.text().as_str()), (200, "file a\n"));
    }
    c.send(b"st: localhost\r\n\r\n");
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "file a\n"));
}

#[test]
fn a_held_back_response_goes_before_a_100_continue() {
    let (s, _log) = server();
    let mut c = s.connect();
    let mut both = get("/a.txt");
    both.extend(req(
        "POST",
        "/a.txt",
        &["Expect: 100-continue", "Content-Length: 4"],
    ));
    c.send(&both);
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "file a\n"));
    let r = c.try_read_response(true).expect("the interim response");
    assert_eq!(r.status, 100, "{}", r.describe());
    c.send(b"abcd");
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "file a\n"));
}

#[test]
fn a_long_pipeline_is_answered_in_full_and_in_order() {
    let (s, _log) = server();
    let mut c = s.connect();
    let n = 300;
    let mut all = Vec::new();
    for i in 0..n {
        let path = if i % 3 == 0 { "/missing" } else { "/a.txt" };
        all.extend(get(&format!("{path}?{i}")));
    }
    all.extend(req("GET", "/a.txt", &["Connection: close"]));
    // Written from another thread: the server stops reading while its answers are not taken.
    let mut w = c.stream.try_clone().expect("clone");
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut w, &all));
    for i in 0..n {
        let r = c.read_response();
        let want = if i % 3 == 0 { 404 } else { 200 };
        assert_eq!(r.status, want, "response {i}: {}", r.describe());
    }
    let r = c.read_response();
    assert!(r.has_close(), "{}", r.describe());
    writer.join().expect("writer").expect("write");
}
