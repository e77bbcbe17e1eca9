//! Response serialization: status lines, common headers and the small HTML error pages.
//!
//! Everything writes into a caller-owned `Vec<u8>` that is reused across requests, so building
//! a response does not allocate in the steady state.

use std::io::Write;

/// The reason phrase for the statuses lightd sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
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
pub fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
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

/// The body of an error page for `status`.
pub fn error_body(out: &mut Vec<u8>, status: u16) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><title>{s} {r}</title></head>\
         <body><h1>{s} {r}</h1></body></html>\n",
        s = status,
        r = reason(status)
    );
}

/// The length of [`error_body`] for `status`, so Content-Length can precede the body.
pub fn error_body_len(status: u16) -> usize {
    // Fixed parts plus two copies of "NNN Reason".
    let fixed =
        "<!DOCTYPE html>\n<html><head><title></title></head><body><h1></h1></body></html>\n".len();
    fixed + 2 * (4 + reason(status).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_len_matches_body() {
        for s in [400, 403, 404, 405, 413, 414, 416, 431, 500, 501, 505] {
            let mut v = Vec::new();
            error_body(&mut v, s);
            assert_eq!(v.len(), error_body_len(s), "status {s}");
        }
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
