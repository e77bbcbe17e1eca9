//! Range requests (RFC 9110 §14): single, suffix, open, multipart, unsatisfiable, If-Range,
//! and turning them off; malformed range-specs, coalescing and the multipart layout as
//! lighttpd's request.t expects them.

mod common;

use common::*;

const LEN: usize = 100_000;

fn server(extra: &str) -> (Server, Vec<u8>) {
    let data = pattern(LEN);
    let s = builder().file("data.bin", &data).config(extra).start();
    (s, data)
}

fn range(s: &Server, spec: &str) -> Response {
    s.request(&req("GET", "/data.bin", &[&format!("Range: {spec}")]))
}

fn assert_single(r: &Response, data: &[u8], first: usize, last: usize) {
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes {first}-{last}/{}", data.len()).as_str()),
        "{}",
        r.head
    );
    assert_eq!(
        r.header("Content-Length"),
        Some((last - first + 1).to_string().as_str()),
        "{}",
        r.head
    );
    assert!(
        r.body == data[first..=last],
        "body is not bytes {first}-{last}"
    );
}

#[test]
fn single_range() {
    let (s, data) = server("");
    assert_single(&range(&s, "bytes=0-99"), &data, 0, 99);
    assert_single(&range(&s, "bytes=5000-5999"), &data, 5000, 5999);
}

#[test]
fn suffix_range() {
    let (s, data) = server("");
    assert_single(&range(&s, "bytes=-100"), &data, LEN - 100, LEN - 1);
}

#[test]
fn open_range() {
    let (s, data) = server("");
    assert_single(&range(&s, "bytes=99000-"), &data, 99_000, LEN - 1);
}

#[test]
fn range_past_the_end_is_clamped() {
    let (s, data) = server("");
    assert_single(
        &range(&s, &format!("bytes={}-{}", LEN - 10, LEN + 1000)),
        &data,
        LEN - 10,
        LEN - 1,
    );
}

#[test]
fn range_on_a_large_file() {
    let data = pattern(10 * 1024 * 1024);
    let s = builder().file("big.bin", &data).start();
    let r = s.request(&req("GET", "/big.bin", &["Range: bytes=5000000-5999999"]));
    assert_single(&r, &data, 5_000_000, 5_999_999);
}

/// Split a multipart/byteranges body into (Content-Range value, part body) pairs, strictly:
/// each part's length is taken from its Content-Range, then the delimiter must follow.
fn parse_multipart(r: &Response) -> Vec<(String, Vec<u8>)> {
    let ct = r
        .header("Content-Type")
        .unwrap_or_else(|| panic!("no Content-Type\n{}", r.head));
    assert!(
        ct.starts_with("multipart/byteranges"),
        "Content-Type {ct:?}"
    );
    let boundary = ct
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .unwrap_or_else(|| panic!("no boundary in {ct:?}"))
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}");
    let body = &r.body;
    // No preamble: the body starts with the first delimiter, as lighttpd's does.
    let mut pos = 0;
    let mut parts = Vec::new();
    for _ in 0..100 {
        assert!(
            body[pos..].starts_with(delim.as_bytes()),
            "expected delimiter at {pos}"
        );
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            assert_eq!(&body[pos..], b"--\r\n", "after the close delimiter");
            return parts;
        }
        assert!(
            body[pos..].starts_with(b"\r\n"),
            "expected CRLF after delimiter at {pos}"
        );
        pos += 2;
        let end = find(&body[pos..], b"\r\n\r\n").expect("part headers end") + pos;
        let headers = String::from_utf8_lossy(&body[pos..end]).into_owned();
        pos = end + 4;
        let cr = headers
            .split("\r\n")
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("Content-Range")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("part without Content-Range: {headers:?}"));
        let spec = cr.strip_prefix("bytes ").expect("bytes unit");
        let (range, _) = spec.split_once('/').expect("a/len");
        let (a, b) = range.split_once('-').expect("first-last");
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        let n = b - a + 1;
        parts.push((cr.clone(), body[pos..pos + n].to_vec()));
        pos += n;
        assert!(
            body[pos..].starts_with(b"\r\n"),
            "expected CRLF after part at {pos}"
        );
        pos += 2;
    }
    panic!("too many parts");
}

#[test]
fn several_ranges_give_multipart_byteranges() {
    let (s, data) = server("");
    let r = range(&s, "bytes=0-9,500-599,-20");
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str()),
        "{}",
        r.head
    );
    let parts = parse_multipart(&r);
    let want = [(0, 9), (500, 599), (LEN - 20, LEN - 1)];
    assert_eq!(
        parts.len(),
        want.len(),
        "parts: {:?}",
        parts.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    for ((cr, bytes), (a, b)) in parts.iter().zip(want) {
        assert_eq!(cr, &format!("bytes {a}-{b}/{LEN}"));
        assert!(bytes[..] == data[a..=b], "part {a}-{b} differs");
    }
}

#[test]
fn unsatisfiable_range_is_416() {
    let (s, _) = server("");
    let r = range(&s, &format!("bytes={LEN}-"));
    assert_eq!(r.status, 416, "{}", r.describe());
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes */{LEN}").as_str()),
        "{}",
        r.head
    );
}

#[test]
fn if_range_with_matching_etag_gives_206_else_200() {
    let (s, data) = server("");
    let etag = s.get("/data.bin").header("ETag").expect("ETag").to_string();
    let r = s.request(&req(
        "GET",
        "/data.bin",
        &["Range: bytes=10-19", &format!("If-Range: {etag}")],
    ));
    assert_single(&r, &data, 10, 19);
    let r = s.request(&req(
        "GET",
        "/data.bin",
        &["Range: bytes=10-19", "If-Range: \"stale-etag\""],
    ));
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.body == data, "a failed If-Range must give the whole file");
}

#[test]
fn range_requests_can_be_disabled() {
    let (s, data) = server("server.range-requests = \"disable\"");
    let r = range(&s, "bytes=0-99");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.body == data);
    assert!(r.header("Content-Range").is_none(), "{}", r.head);
}

/// A malformed or inverted range-spec is skipped; the good ones beside it are served.
#[test]
fn invalid_range_specs_are_skipped() {
    let (s, data) = server("");
    assert_single(&range(&s, "bytes=9-5,10-19"), &data, 10, 19);
    assert_single(&range(&s, "bytes=abc, 0-9 ,-2-3"), &data, 0, 9);
}

/// With no valid, satisfiable range-spec left the answer is 416 with lighttpd's page; a field
/// without the bytes unit is ignored.
#[test]
fn no_valid_range_spec_is_416_and_no_unit_is_200() {
    let s = builder().file("12345.txt", "12345\n").start();
    let get = |spec: &str| s.request(&req("GET", "/12345.txt", &[&format!("Range: {spec}")]));
    for spec in [
        "bytes=0--",
        "bytes=-2-3",
        "bytes=-0",
        "bytes=25-",
        "bytes=",
        "bytes=abc",
    ] {
        let r = get(spec);
        assert_eq!(r.status, 416, "{spec}: {}", r.describe());
        assert_eq!(r.header("Content-Range"), Some("bytes */6"), "{spec}");
        assert_eq!(
            r.text(),
            "<!DOCTYPE html>\n<html lang=\"en\">\n <head>\n  <meta charset=\"UTF-8\" />\n  \
             <title>416 Range Not Satisfiable</title>\n </head>\n <body>\n  \
             <h1>416 Range Not Satisfiable</h1>\n </body>\n</html>\n",
            "{spec}"
        );
    }
    for spec in ["0", "items=0-3", "bytes 0-3"] {
        let r = get(spec);
        assert_eq!((r.status, r.text().as_str()), (200, "12345\n"), "{spec}");
    }
}

/// Two Range lines: the first one decides, which answers lighttpd's two cases the way
/// lighttpd does (it joins the lines with ", ").
#[test]
fn two_range_fields() {
    let s = builder().file("12345.txt", "12345\n").start();
    let r = s.request(&req("GET", "/12345.txt", &["Range: 0", "Range: bytes=0-3"]));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "12345\n"),
        "{}",
        r.head
    );
    let r = s.request(&req("GET", "/12345.txt", &["Range: bytes=0-3", "Range: 0"]));
    assert_eq!((r.status, r.text().as_str()), (206, "1234"), "{}", r.head);
}

/// Ranges less than 80 bytes apart are sent as one part, the bytes between included.
#[test]
fn close_ranges_are_coalesced() {
    let s = builder()
        .file("12345.txt", "12345\n")
        .file("100.bin", pattern(1000))
        .start();
    let r = s.request(&req("GET", "/12345.txt", &["Range: bytes=0-1,3-4"]));
    assert_eq!((r.status, r.text().as_str()), (206, "12345"), "{}", r.head);
    assert_eq!(r.header("Content-Range"), Some("bytes 0-4/6"));
    let data = pattern(1000);
    let r = s.request(&req("GET", "/100.bin", &["Range: bytes=0-9,89-99"]));
    assert_single(&r, &data, 0, 99);
    let r = s.request(&req("GET", "/100.bin", &["Range: bytes=0-9,90-99"]));
    let parts = parse_multipart(&r);
    assert_eq!(parts.len(), 2, "{}", r.head);
}

/// The multipart/byteranges body is lighttpd's, byte for byte (request.t, "ranges not
/// merged"), with an exact Content-Length; HEAD gets no body.
#[test]
fn multipart_layout_is_lighttpds() {
    let mut text = vec![b'.'; 100];
    text[..2].copy_from_slice(b"12");
    text[97..99].copy_from_slice(b"hi");
    let s = builder().file("100.txt", &text).start();
    let r = s.request(&req("GET", "/100.txt", &["Range: bytes=0-1,97-98"]));
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(
        r.header("Content-Type"),
        Some("multipart/byteranges; boundary=fkj49sn38dcn3")
    );
    let want = "--fkj49sn38dcn3\r\n\
                Content-Type: text/plain;charset=utf-8\r\n\
                Content-Range: bytes 0-1/100\r\n\
                \r\n\
                12\r\n\
                --fkj49sn38dcn3\r\n\
                Content-Type: text/plain;charset=utf-8\r\n\
                Content-Range: bytes 97-98/100\r\n\
                \r\n\
                hi\r\n\
                --fkj49sn38dcn3--\r\n";
    assert_eq!(r.text(), want);
    assert_eq!(
        r.header("Content-Length"),
        Some(want.len().to_string().as_str())
    );
    // A large file (sent with sendfile, not from the cache) gets the same framing.
    let (s, data) = server("");
    let r = range(&s, "bytes=0-9,50000-50009");
    let parts = parse_multipart(&r);
    assert_eq!(parts.len(), 2);
    assert!(parts[1].1[..] == data[50000..50010]);
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    let mut c = s.connect();
    c.send(&req("HEAD", "/data.bin", &["Range: bytes=0-9,50000-50009"]));
    // Range applies to GET only (RFC 9110 §14.2): HEAD describes the whole file.
    let h = c.read_head_response();
    assert_eq!(h.status, 200, "{}", h.head);
    assert_eq!(
        h.header("Content-Length"),
        Some(LEN.to_string().as_str()),
        "{}",
        h.head
    );
    // The connection is still in step: a second request gets its own answer.
    let r = c.get("/data.bin");
    assert_eq!((r.status, r.body.len()), (200, LEN), "{}", r.head);
}
