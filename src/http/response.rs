//! Response serialization: status lines, header lists, the head written once, and the small
//! HTML error pages.
//!
//! Everything writes into a caller-owned `Vec<u8>` that is reused across requests, so building
//! a response does not allocate in the steady state.
//!
//! A response's own headers are kept as a header list: "Name: value\r\n" lines in one buffer,
//! which handlers append to and response-start modules edit (set, remove) before [`write_head`]
//! puts the status line, Date, Server, the list, Content-Length and Connection on the wire.

/// How the connection ends after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    Close,
    /// HTTP/1.0 keep-alive must be announced.
    KeepAlive10,
    /// HTTP/1.1 persists by default: nothing to announce.
    KeepAlive11,
}

/// The reason phrase for the statuses lightd sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Whether a response with this status carries no body by definition (RFC 9110 §6.4.1).
pub fn bodiless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// The methods a static resource allows, for `Allow` on OPTIONS and 405.
pub const ALLOW: &str = "GET, HEAD, POST, OPTIONS";

/// Write the status line.
pub fn status_line(out: &mut Vec<u8>, status: u16) {
    // Built by hand rather than with write!: this runs for every response, and the
    // formatting machinery costs more than the rest of a cached small-file response.
    if status == 200 {
        return out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Append `v` in decimal.
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Write one header line.
#[inline]
pub fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    // One capacity check for the line rather than one per piece: this runs several times for
    // every response.
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Write a header whose value is a number.
pub fn header_u64(out: &mut Vec<u8>, name: &str, value: u64) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    push_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// The lines of a header list with their byte ranges: (line start, name, value, line end).
/// Lines end in CRLF and values hold no line breaks, so the next '\n' ends a line.
fn lines(list: &[u8]) -> impl Iterator<Item = (usize, &[u8], &[u8], usize)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = list.get(pos..)?;
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let line = rest.get(..nl)?.strip_suffix(b"\r").unwrap_or(&rest[..nl]);
        let start = pos;
        pos += nl + 1;
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let value = line.get(colon + 1..).unwrap_or_default();
        let value = value.strip_prefix(b" ").unwrap_or(value);
        Some((start, &line[..colon], value, pos))
    })
}

/// The value of the first `name` field in a header list (names compare case-insensitively).
pub fn find<'a>(list: &'a [u8], name: &str) -> Option<&'a [u8]> {
    lines(list)
        .find(|(_, n, _, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, _, v, _)| v)
}

/// Remove every `name` field from a header list.
pub fn remove(list: &mut Vec<u8>, name: &str) {
    // Bounded by the number of matching lines, each removal shrinking the list.
    loop {
        let found = lines(list)
            .find(|(_, n, _, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(s, _, _, e)| (s, e));
        let Some((start, end)) = found else { break };
        list.drain(start..end);
    }
}

/// Replace every `name` field with one carrying `value`.
pub fn set(list: &mut Vec<u8>, name: &str, value: &[u8]) {
    remove(list, name);
    header(list, name, value);
}

/// Write a response head: the status line, Date, Server (`server_tag`, unless empty), the
/// header list, Content-Length when known, Connection when it must be said, and the blank
/// line. A caller whose list may carry its own Server field passes an empty tag then.
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    date: &[u8],
    server_tag: &str,
    list: &[u8],
    content_length: Option<u64>,
    persist: Persist,
) {
    status_line(out, status);
    header(out, "Date", date);
    if !server_tag.is_empty() {
        header(out, "Server", server_tag.as_bytes());
    }
    out.extend_from_slice(list);
    if let Some(len) = content_length {
        header_u64(out, "Content-Length", len);
    }
    match persist {
        Persist::Close => header(out, "Connection", b"close"),
        Persist::KeepAlive10 => header(out, "Connection", b"keep-alive"),
        Persist::KeepAlive11 => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// The error page around "NNN Reason", in two pieces: lighttpd's page, byte for byte, so
/// clients and tests that compare error bodies see the same text from both servers.
const ERROR_PAGE_HEAD: &str = "<!DOCTYPE html>\n\
    <html lang=\"en\">\n \
    <head>\n  \
    <meta charset=\"UTF-8\" />\n  \
    <title>";
const ERROR_PAGE_MID: &str = "</title>\n \
    </head>\n \
    <body>\n  \
    <h1>";
const ERROR_PAGE_TAIL: &str = "</h1>\n \
    </body>\n\
    </html>\n";

/// The body of an error page for `status`.
pub fn error_body(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(ERROR_PAGE_HEAD.as_bytes());
    status_text(out, status);
    out.extend_from_slice(ERROR_PAGE_MID.as_bytes());
    status_text(out, status);
    out.extend_from_slice(ERROR_PAGE_TAIL.as_bytes());
}

/// "NNN Reason", as the page shows it twice.
fn status_text(out: &mut Vec<u8>, status: u16) {
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
}

/// The length of [`error_body`] for `status`, so Content-Length can precede the body.
pub fn error_body_len(status: u16) -> usize {
    let digits = match status {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    };
    let text = digits + 1 + reason(status).len();
    ERROR_PAGE_HEAD.len() + ERROR_PAGE_MID.len() + ERROR_PAGE_TAIL.len() + 2 * text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_len_matches_body() {
        for s in [
            100,
            200,
            301,
            400,
            403,
            404,
            405,
            413,
            414,
            416,
            431,
            500,
            501,
            505,
            0,
            7,
            42,
            999,
            1000,
            u16::MAX,
        ] {
            let mut v = Vec::new();
            error_body(&mut v, s);
            assert_eq!(v.len(), error_body_len(s), "status {s}");
        }
    }

    /// lighttpd's page (src/response.c), exactly.
    #[test]
    fn error_body_is_lighttpds_page() {
        let mut v = Vec::new();
        error_body(&mut v, 416);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "<!DOCTYPE html>\n\
             <html lang=\"en\">\n \
             <head>\n  \
             <meta charset=\"UTF-8\" />\n  \
             <title>416 Range Not Satisfiable</title>\n \
             </head>\n \
             <body>\n  \
             <h1>416 Range Not Satisfiable</h1>\n \
             </body>\n\
             </html>\n"
        );
        // The same layout written out without line continuations, to catch a slip in them.
        let want = concat!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n <head>\n  <meta charset=\"UTF-8\" />\n",
            "  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n",
            " </body>\n</html>\n"
        );
        v.clear();
        error_body(&mut v, 404);
        assert_eq!(String::from_utf8_lossy(&v), want);
    }

    #[test]
    fn status_line_format() {
        let mut v = Vec::new();
        status_line(&mut v, 404);
        assert_eq!(v, b"HTTP/1.1 404 Not Found\r\n");
        v.clear();
        status_line(&mut v, 200);
        assert_eq!(v, b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn header_list_edits() {
        let mut h = Vec::new();
        header(&mut h, "ETag", b"\"x\"");
        header(&mut h, "X-A", b"1");
        header(&mut h, "x-a", b"2");
        assert_eq!(find(&h, "etag"), Some(&b"\"x\""[..]));
        assert_eq!(find(&h, "X-A"), Some(&b"1"[..]));
        set(&mut h, "X-a", b"3");
        assert_eq!(h, b"ETag: \"x\"\r\nX-a: 3\r\n");
        remove(&mut h, "etag");
        assert_eq!(h, b"X-a: 3\r\n");
        assert_eq!(find(&h, "Missing"), None);
        let mut out = Vec::new();
        write_head(&mut out, 404, b"D", "t", &h, Some(5), Persist::Close);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nDate: D\r\nServer: t\r\nX-a: 3\r\n\
              Content-Length: 5\r\nConnection: close\r\n\r\n"
        );
        // No tag, no Server field (the caller's list may have its own).
        header(&mut h, "Server", b"mine");
        out.clear();
        write_head(&mut out, 200, b"D", "", &h, None, Persist::KeepAlive11);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nDate: D\r\nX-a: 3\r\nServer: mine\r\n\r\n"
        );
        // A bare LF ends a line too.
        assert_eq!(find(b"A: 1\nB: 2\r\n", "b"), Some(&b"2"[..]));
    }

    #[test]
    fn numbers_in_decimal() {
        for n in [0, 7, 10, 99, 1024, 1234567890, u64::MAX] {
            let mut v = b"x".to_vec();
            push_u64(&mut v, n);
            assert_eq!(v, format!("x{n}").as_bytes());
        }
        let mut v = Vec::new();
        header_u64(&mut v, "Content-Length", 10485760);
        assert_eq!(v, b"Content-Length: 10485760\r\n");
    }
}
