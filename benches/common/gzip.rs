//! Checking that a server really sends a file gzip-encoded (wrk cannot tell), and the
//! compressible text the compression benchmark serves.
//!
//! No inflater here: a gzip member ends with the CRC-32 and the length of what it encodes, so
//! a body that starts with gzip's magic and ends with the original file's CRC-32 and size is
//! that file, compressed, unless a server forged both.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// The largest response head or body the check reads.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// The most chunks a chunked body may have: a bound on the loop, far above what 100 KB makes.
const MAX_CHUNKS: usize = 100_000;

/// What a server answered to a GET with `Accept-Encoding: gzip`.
pub enum Verdict {
    /// gzip-encoded and the trailer matches the original: a description ("23 456 bytes").
    Gzip(String),
    /// Sent as it is (no or another Content-Encoding): why, for the report.
    Plain(String),
}

impl Verdict {
    pub fn is_gzip(&self) -> bool {
        matches!(self, Verdict::Gzip(_))
    }

    pub fn text(&self) -> &str {
        match self {
            Verdict::Gzip(s) | Verdict::Plain(s) => s,
        }
    }
}

/// GET `path` with `Accept-Encoding: gzip` on `conn` (kept alive), and check the answer
/// against `original`. Err when the exchange fails or a gzip body is not `original`.
pub fn check(conn: &mut TcpStream, path: &str, original: &[u8]) -> Result<Verdict, String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n");
    conn.write_all(req.as_bytes())
        .map_err(|e| format!("sending request: {e}"))?;
    let mut reader = Reader {
        conn,
        buf: Vec::new(),
        pos: 0,
    };
    let head = reader.head()?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("bad status line")?;
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let mut length = None;
    let mut chunked = false;
    let mut encoding = String::new();
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("content-encoding") {
            encoding = v.to_ascii_lowercase();
        }
    }
    let body = match (chunked, length) {
        (true, _) => reader.chunked()?,
        (false, Some(n)) => reader.exact(n)?,
        (false, None) => return Err("neither Content-Length nor chunked".to_string()),
    };
    if encoding.is_empty() {
        return Ok(Verdict::Plain(format!(
            "no Content-Encoding, {} bytes",
            body.len()
        )));
    }
    if encoding != "gzip" {
        return Ok(Verdict::Plain(format!("Content-Encoding: {encoding}")));
    }
    verify(&body, original)?;
    Ok(Verdict::Gzip(format!(
        "gzip, {} bytes for {} ({:.1}x){}",
        body.len(),
        original.len(),
        original.len() as f64 / body.len().max(1) as f64,
        if chunked { ", chunked" } else { "" }
    )))
}

/// Whether `body` is one gzip member encoding `original`: magic, method, and the trailer's
/// CRC-32 and size.
fn verify(body: &[u8], original: &[u8]) -> Result<(), String> {
    if body.len() < 18 || body[..3] != [0x1f, 0x8b, 8] {
        return Err("Content-Encoding: gzip, but the body is not gzip".to_string());
    }
    let tail = &body[body.len() - 8..];
    let crc = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let size = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]);
    if size != original.len() as u32 || crc != crc32(original) {
        return Err(format!(
            "gzip trailer says {size} bytes with CRC {crc:08x}; the file has {} with {:08x}",
            original.len(),
            crc32(original)
        ));
    }
    Ok(())
}

/// CRC-32 as gzip defines it (reflected, polynomial 0xEDB88320), bit by bit: it runs once per
/// check, on 100 KB.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Buffered reads of one response, bounded by MAX_RESPONSE.
struct Reader<'a> {
    conn: &'a mut TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Reader<'_> {
    /// Read more into the buffer; Err at EOF or past the bound.
    fn fill(&mut self) -> Result<(), String> {
        if self.buf.len() >= MAX_RESPONSE {
            return Err(format!("response longer than {MAX_RESPONSE} bytes"));
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.conn.read(&mut chunk) {
                Ok(0) => return Err("connection closed mid-response".to_string()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading response: {e}")),
            }
        }
    }

    fn head(&mut self) -> Result<String, String> {
        loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                self.pos = p + 4;
                return Ok(String::from_utf8_lossy(&self.buf[..p]).into_owned());
            }
            self.fill()?;
        }
    }

    fn exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        if n > MAX_RESPONSE {
            return Err(format!("body of {n} bytes, more than {MAX_RESPONSE}"));
        }
        while self.buf.len() - self.pos < n {
            self.fill()?;
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(p) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + p]).into_owned();
                self.pos += p + 2;
                return Ok(line);
            }
            self.fill()?;
        }
    }

    fn chunked(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        for _ in 0..MAX_CHUNKS {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                // Trailer fields, then the empty line.
                for _ in 0..MAX_CHUNKS {
                    if self.line()?.is_empty() {
                        return Ok(body);
                    }
                }
                return Err("endless trailer".to_string());
            }
            if body.len() + size > MAX_RESPONSE {
                return Err(format!("chunked body longer than {MAX_RESPONSE} bytes"));
            }
            body.extend_from_slice(&self.exact(size)?);
            if !self.line()?.is_empty() {
                return Err("no CRLF after a chunk".to_string());
            }
        }
        Err(format!("more than {MAX_CHUNKS} chunks"))
    }
}

/// `len` bytes of an HTML page with inline script: markup and identifiers repeat as they do
/// in real pages, so it compresses about as well as one (some 4 to 6 times), while the
/// pseudo-random choices keep it from being one short period.
pub fn page_text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "function",
        "return",
        "document",
        "window",
        "element",
        "addEventListener",
        "click",
        "value",
        "length",
        "options",
        "callback",
        "response",
        "result",
        "index",
        "items",
        "querySelector",
        "innerHTML",
        "className",
        "style",
        "display",
        "hidden",
        "button",
        "header",
        "content",
        "render",
        "update",
        "state",
        "props",
        "config",
        "request",
        "error",
        "data",
    ];
    let mut x: u32 = 0x2545_f491;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize % n
    };
    let mut out = String::with_capacity(len + 256);
    out.push_str("<!DOCTYPE html>\n<html><head><title>bench</title></head><body>\n");
    while out.len() < len {
        let (a, b, c) = (WORDS[next(32)], WORDS[next(32)], WORDS[next(32)]);
        match next(4) {
            0 => out.push_str(&format!(
                "<div class=\"{a} {b}\" id=\"{c}-{}\"><span>{a} {c}</span></div>\n",
                next(1000)
            )),
            1 => out.push_str(&format!(
                "  var {a}{} = {b}.{c}({}, \"{a}\");\n",
                next(100),
                next(10000)
            )),
            2 => out.push_str(&format!(
                "  function {a}_{b}({c}, cb) {{ if (!{c}) {{ return cb(null); }} return {c}.{a}; }}\n"
            )),
            _ => out.push_str(&format!(
                "<p>The {a} of the {b} is {}; see <a href=\"/{c}/{}.html\">{c}</a>.</p>\n",
                next(500),
                next(100)
            )),
        }
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(len);
    bytes
}
