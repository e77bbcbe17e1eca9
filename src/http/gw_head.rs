//! The response head a backend sends: one parser for CGI scripts, FastCGI and SCGI
//! applications (RFC 3875 §6 "CGI response") and proxied HTTP upstreams (RFC 9112 status line
//! and fields). Bytes in, offsets out, or "need more", or an error that becomes a 502.
//!
//! Like the request parser it keeps no state between calls: the caller calls [`parse`] again
//! when more bytes arrive. The scan looks at whole lines only, left to right, so a prefix of a
//! head either ends with an incomplete line ("need more") or stops with exactly the answer the
//! whole head gives; how the bytes were split across reads never changes the outcome. The
//! field list is only allocated once the head is complete, with exactly the room it needs.
//!
//! What is accepted follows lighttpd's `http_response_parse_headers()`: a CGI head may end its
//! lines with LF or CRLF and may start with an NPH status line ("HTTP/1.1 200 OK"); `Status:`
//! sets the status; `Location:` without a status means 302; a mod_cgi script that prints no
//! head at all (its first line has no colon) is sending a body. Where lighttpd repairs or
//! skips a bad line (obs-fold, a name that is not a token, a value with control bytes) this
//! parser refuses the head instead: a backend that sends such bytes is broken, and passing a
//! guess at its meaning on to the client is how response splitting starts.

use std::fmt;

use super::request::{is_field_value_char, is_tchar, trim_ows, Header, Span, Version};
use super::HttpError;

/// The most fields a head may have. A field costs 16 bytes in the list, so the largest list is
/// 16 KiB, and only for a head that really has that many lines.
pub const MAX_FIELDS: usize = 1024;

/// Which kind of backend the head comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A CGI script (mod_cgi): CGI fields, or an NPH status line, with LF or CRLF line ends.
    /// Output whose first line has no colon is not a head but the body (lighttpd serves it
    /// with 200).
    Cgi,
    /// A FastCGI or SCGI application: the same head as CGI, but output without one is an
    /// error, as in lighttpd.
    Gateway,
    /// An HTTP upstream (mod_proxy): a status line is required and every line ends in CRLF.
    Http,
}

/// Where the status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFrom {
    /// A status line: "HTTP/1.1 200 OK" from an upstream or an NPH script.
    Line,
    /// A CGI `Status:` field.
    Field,
    /// No status, but a `Location:` field: 302 (RFC 3875 §6.2.3/§6.2.4). Together with a
    /// single field this is what mod_cgi's local redirect looks for.
    Location,
    /// A CGI head with neither: the caller answers 200.
    Missing,
    /// mod_cgi output without a head: all of it is body, served with 200.
    Headerless,
}

/// A parsed response head. Text is reached through spans into the buffer it was parsed from.
#[derive(Debug, Clone)]
pub struct GwHead {
    /// Bytes of the buffer the head occupies, with its blank line: the body starts here.
    pub len: usize,
    /// The status, None only when a CGI head gave none ([`StatusFrom::Missing`]). 1xx other
    /// than 101 is an interim response: see [`GwHead::interim`].
    pub status: Option<u16>,
    pub status_from: StatusFrom,
    /// The version of a status line (NPH or HTTP upstream); None for a CGI head.
    pub version: Option<Version>,
    /// Every field line in order, names as sent, values without surrounding whitespace.
    /// Nothing is removed: the caller drops `Status`, hop-by-hop fields and the framing
    /// fields it replaces.
    pub fields: Vec<Header>,
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`: the body is chunked (never together with a length).
    pub chunked: bool,
    /// The tokens of `Connection` that matter: "close", "keep-alive", "upgrade".
    pub conn_close: bool,
    pub conn_keep_alive: bool,
    pub conn_upgrade: bool,
    /// The first `Location` field's value.
    pub location: Option<Span>,
}

impl GwHead {
    /// An interim response (1xx other than 101 Switching Protocols): the caller forwards or
    /// drops it, and parses the final head from `buf[len..]`.
    pub fn interim(&self) -> bool {
        matches!(self.status, Some(s) if (100..200).contains(&s) && s != 101)
    }

    /// Whether an HTTP upstream's connection may carry another request after this response,
    /// as far as the version and `Connection` say (the caller also needs a delimited body).
    pub fn reusable(&self) -> bool {
        !self.conn_close
            && match self.version {
                Some(Version::Http11) => true,
                // RFC 9112 §6.1: chunked in an HTTP/1.0 message is faulty framing; close
                // after it.
                Some(Version::Http10) => self.conn_keep_alive && !self.chunked,
                None => false,
            }
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn field<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        super::request::header(buf, &self.fields, name)
    }
}

/// Why a head was refused. Every such head is answered with 502 Bad Gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GwHeadError {
    /// What is wrong, for the error log. Never contains backend bytes.
    pub reason: &'static str,
    /// Where: the offset of the line at fault (or of the limit that was passed).
    pub at: usize,
}

impl GwHeadError {
    pub fn status(&self) -> u16 {
        502
    }
}

impl fmt::Display for GwHeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid response head from backend: {} (at byte {})",
            self.reason, self.at
        )
    }
}

impl From<GwHeadError> for HttpError {
    fn from(e: GwHeadError) -> Self {
        HttpError::new(502, e.reason)
    }
}

/// Parse a backend's response head from the start of `buf`.
///
/// Ok(None): the head is incomplete and within `max_len`; read more. Once `buf.len() >=
/// max_len` the answer is never Ok(None), so a caller whose buffer holds `max_len` bytes never
/// waits forever. `max_len` counts the whole head with its blank line, and is clamped to
/// `u32::MAX` so that every span fits.
pub fn parse(buf: &[u8], mode: Mode, max_len: usize) -> Result<Option<GwHead>, GwHeadError> {
    let limit = max_len.min(u32::MAX as usize);
    let window = buf.get(..limit).unwrap_or(buf);
    // The first pass validates and counts; only a complete head is scanned again to collect
    // its fields, so a head that arrives in many reads allocates once.
    let mut count = 0;
    let head = match scan(window, mode, &mut |_| count += 1)? {
        Some(head) => head,
        None if buf.len() >= limit => return Err(err("response head too large", limit)),
        None => return Ok(None),
    };
    let mut fields = Vec::with_capacity(count);
    scan(window, mode, &mut |h| fields.push(h))?;
    Ok(Some(GwHead { fields, ..head }))
}

// ---------------------------------------------------------------------------------------------

const CR: u8 = b'\r';
const LF: u8 = b'\n';

const fn err(reason: &'static str, at: usize) -> GwHeadError {
    GwHeadError { reason, at }
}

/// One pass over the lines of `buf`, handing each field to `field`. Ok(None): no end yet.
/// The returned head has an empty field list.
fn scan(
    buf: &[u8],
    mode: Mode,
    field: &mut dyn FnMut(Header),
) -> Result<Option<GwHead>, GwHeadError> {
    let mut st = State::new();
    let mut pos = 0;
    let mut first = true;
    // Each turn consumes one whole line, so the loop runs at most buf.len() times.
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == LF) else {
            return Ok(None);
        };
        let next = pos + nl + 1;
        let (line, crlf) = match rest[..nl].strip_suffix(&[CR]) {
            Some(l) => (l, true),
            None => (&rest[..nl], false),
        };
        if !crlf && mode == Mode::Http {
            // lighttpd's default (header-strict) demands CRLF from an HTTP backend; a bare
            // LF is where two parsers can disagree about where the head ends.
            return Err(err("line not ended by CRLF", pos));
        }
        if line.contains(&CR) {
            return Err(err("CR not followed by LF", pos));
        }

        if first {
            first = false;
            if line.starts_with(b"HTTP/") {
                st.status_line(line, mode, pos)?;
                pos = next;
                continue;
            }
            if mode == Mode::Http {
                return Err(err("no status line", pos));
            }
            if !line.is_empty() && !line.contains(&b':') {
                if mode == Mode::Cgi {
                    return Ok(Some(st.finish(0, StatusFrom::Headerless)));
                }
                return Err(err("output does not start with a header field", pos));
            }
        }
        if line.is_empty() {
            return st.end(next, pos).map(Some);
        }
        if let [b' ' | b'\t', ..] = line {
            return Err(err("folded or indented field line", pos));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(err("field line without a colon", pos));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(err("invalid field name", pos));
        }
        let raw = &line[colon + 1..];
        if !raw.iter().all(|&b| is_field_value_char(b)) {
            return Err(err("invalid byte in field value", pos));
        }
        let value = trim_ows(raw);
        // Offsets of the trimmed value: how much whitespace trim_ows took from the front.
        let v0 = pos + colon + 1 + raw.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let h = Header {
            name: span(pos, pos + colon),
            value: span(v0, v0 + value.len()),
        };
        st.count += 1;
        if st.count > MAX_FIELDS {
            return Err(err("too many fields", pos));
        }
        st.interpret(name, value, h.value, mode, pos)?;
        field(h);
        pos = next;
    }
}

/// Spans are u32: sound because the scan never passes the limit, itself at most u32::MAX.
fn span(start: usize, end: usize) -> Span {
    Span {
        start: start as u32,
        end: end as u32,
    }
}

/// What the lines have said so far.
struct State {
    status: Option<u16>,
    status_from: StatusFrom,
    version: Option<Version>,
    count: usize,
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    location: Option<Span>,
}

impl State {
    fn new() -> Self {
        State {
            status: None,
            status_from: StatusFrom::Missing,
            version: None,
            count: 0,
            content_length: None,
            transfer_encoding: false,
            chunked: false,
            close: false,
            keep_alive: false,
            upgrade: false,
            location: None,
        }
    }

    /// "HTTP/1.1 200 OK". An HTTP upstream must speak 1.0 or 1.1; an NPH script may also say
    /// 2.0 or 3.0, as lighttpd lets it (its status is all that is taken from the line).
    fn status_line(&mut self, line: &[u8], mode: Mode, at: usize) -> Result<(), GwHeadError> {
        const BAD: &str = "invalid status line";
        let (major, minor, rest) = match line {
            [b'H', b'T', b'T', b'P', b'/', major, b'.', minor, b' ', rest @ ..] => {
                (*major, *minor, rest)
            }
            _ => return Err(err(BAD, at)),
        };
        let version_ok = match mode {
            Mode::Http => major == b'1' && matches!(minor, b'0' | b'1'),
            Mode::Cgi | Mode::Gateway => major.is_ascii_digit() && matches!(minor, b'0' | b'1'),
        };
        if !version_ok {
            return Err(err("unsupported HTTP version in status line", at));
        }
        let code = status_code(rest).ok_or(err(BAD, at))?;
        if !rest.iter().all(|&b| is_field_value_char(b)) {
            return Err(err("invalid byte in reason phrase", at));
        }
        self.status = Some(code);
        self.status_from = StatusFrom::Line;
        self.version = Some(if (major, minor) == (b'1', b'0') {
            Version::Http10
        } else {
            Version::Http11
        });
        Ok(())
    }

    /// Act on one field as soon as it is read, so a bad one is reported at its line.
    fn interpret(
        &mut self,
        name: &[u8],
        value: &[u8],
        vspan: Span,
        mode: Mode,
        at: usize,
    ) -> Result<(), GwHeadError> {
        if name.eq_ignore_ascii_case(b"status") && mode != Mode::Http {
            let code = status_code(value).ok_or(err("invalid Status field", at))?;
            // As lighttpd: a Status overrides nothing but an absent status or 200 (so an NPH
            // "200" line or an earlier "Status: 200" may still be refined).
            if matches!(self.status, None | Some(200)) {
                self.status = Some(code);
                self.status_from = if self.status_from == StatusFrom::Line {
                    StatusFrom::Line
                } else {
                    StatusFrom::Field
                };
            }
        } else if name.eq_ignore_ascii_case(b"location") {
            if self.location.is_none() {
                self.location = Some(vspan);
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            self.content_length(value, at)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding(value, at)?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for opt in value.split(|&b| b == b',').map(trim_ows) {
                if opt.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else if opt.eq_ignore_ascii_case(b"upgrade") {
                    self.upgrade = true;
                }
            }
        }
        Ok(())
    }

    /// A list of identical lengths is that length (RFC 9112 §6.3); anything else leaves the
    /// body's end in doubt.
    fn content_length(&mut self, value: &[u8], at: usize) -> Result<(), GwHeadError> {
        const INVALID: &str = "invalid Content-Length";
        for item in value.split(|&b| b == b',').map(trim_ows) {
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                // 19 digits always fit in u64; no real body is longer.
                return Err(err(INVALID, at));
            }
            let n = item.iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
            match self.content_length {
                Some(prev) if prev != n => return Err(err("conflicting Content-Length", at)),
                _ => self.content_length = Some(n),
            }
        }
        Ok(())
    }

    /// Only "chunked" is decoded; lighttpd refuses every other coding with 502 as well.
    fn transfer_encoding(&mut self, value: &[u8], at: usize) -> Result<(), GwHeadError> {
        self.transfer_encoding = true;
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                continue;
            }
            if self.chunked {
                return Err(err("chunked is not the final transfer coding", at));
            }
            if !coding.eq_ignore_ascii_case(b"chunked") {
                return Err(err("unsupported transfer coding", at));
            }
            self.chunked = true;
        }
        Ok(())
    }

    /// The blank line at `at` ends the head; the body starts at `len`.
    fn end(self, len: usize, at: usize) -> Result<GwHead, GwHeadError> {
        if self.transfer_encoding && !self.chunked {
            return Err(err("empty Transfer-Encoding", at));
        }
        if self.chunked && self.content_length.is_some() {
            // RFC 9112 §6.3: "ought to be handled as an error"; it is the shape of response
            // splitting on a reused upstream connection.
            return Err(err("both Transfer-Encoding and Content-Length", at));
        }
        let from = self.status_from;
        Ok(self.finish(len, from))
    }

    fn finish(mut self, len: usize, mut from: StatusFrom) -> GwHead {
        if from == StatusFrom::Headerless {
            self.status = Some(200);
        } else if self.status.is_none() && self.location.is_some() {
            // RFC 3875 §6.2.3-4 as lighttpd reads it: Location without Status is 302.
            self.status = Some(302);
            from = StatusFrom::Location;
        }
        GwHead {
            len,
            status: self.status,
            status_from: from,
            version: self.version,
            fields: Vec::new(),
            content_length: self.content_length,
            chunked: self.chunked,
            conn_close: self.close,
            conn_keep_alive: self.keep_alive,
            conn_upgrade: self.upgrade,
            location: self.location,
        }
    }
}

/// A status code: three digits, 100 to 599 (RFC 9110 §15), then the end or whitespace and a
/// reason phrase.
fn status_code(s: &[u8]) -> Option<u16> {
    let (digits, rest) = match s {
        [a, b, c, rest @ ..] => ([*a, *b, *c], rest),
        _ => return None,
    };
    if !digits.iter().all(u8::is_ascii_digit) || !matches!(rest, [] | [b' ' | b'\t', ..]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    (100..=599).contains(&code).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 4096;

    /// Spaces shown as '_', so that the outcome splits on spaces into its parts.
    fn text(buf: &[u8], s: Span) -> String {
        String::from_utf8_lossy(s.get(buf)).replace(' ', "_")
    }

    /// The outcome as one comparable string.
    fn outcome(buf: &[u8], mode: Mode, max: usize) -> String {
        match parse(buf, mode, max) {
            Ok(None) => "partial".into(),
            Err(e) => format!("err {}", e.reason),
            Ok(Some(h)) => {
                assert!(h.len <= buf.len() && h.len <= max);
                let fields: Vec<String> = h
                    .fields
                    .iter()
                    .map(|f| format!("{}={}", text(buf, f.name), text(buf, f.value)))
                    .collect();
                format!(
                    "ok len={} st={} from={:?} v={} cl={} ch={} close={} ka={} up={} loc={} f={}",
                    h.len,
                    h.status.map_or("-".into(), |s| s.to_string()),
                    h.status_from,
                    match h.version {
                        None => "-",
                        Some(Version::Http10) => "1.0",
                        Some(Version::Http11) => "1.1",
                    },
                    h.content_length.map_or("-".into(), |n| n.to_string()),
                    h.chunked as u8,
                    h.conn_close as u8,
                    h.conn_keep_alive as u8,
                    h.conn_upgrade as u8,
                    h.location.map_or("-".into(), |s| text(buf, s)),
                    fields.join("|"),
                )
            }
        }
    }

    /// `want` is "partial", "err <reason>", or "ok" and the key=value pairs that matter
    /// (`len=all`: the whole input).
    fn check(mode: Mode, input: &[u8], want: &str) {
        let got = outcome(input, mode, MAX);
        let shown = String::from_utf8_lossy(input);
        if !want.starts_with("ok") {
            assert_eq!(got, want, "{mode:?} {shown:?}");
            return;
        }
        assert!(got.starts_with("ok "), "{mode:?} {shown:?}: got {got}");
        for kv in want.split(' ').skip(1) {
            let kv = if kv == "len=all" {
                format!("len={}", input.len())
            } else {
                kv.to_string()
            };
            let key = kv.split('=').next().unwrap_or_default();
            let found = got
                .split(' ')
                .find(|g| g.split('=').next() == Some(key))
                .unwrap_or("?");
            assert_eq!(found, kv, "{mode:?} {shown:?}: got {got}");
        }
    }

    /// Every prefix must be "partial" or exactly the whole input's answer.
    fn check_splits(mode: Mode, input: &[u8], max: usize) {
        let whole = outcome(input, mode, max);
        for k in 0..input.len() {
            let part = outcome(&input[..k], mode, max);
            assert!(
                part == "partial" || part == whole,
                "{mode:?} {:?} cut at {k}: prefix gives {part}, whole gives {whole}",
                String::from_utf8_lossy(input)
            );
        }
    }

    use Mode::{Cgi, Gateway, Http};

    #[rustfmt::skip]
    const CASES: &[(Mode, &str, &str)] = &[
        // CGI heads: LF or CRLF, Status, Location.
        (Cgi, "Content-Type: text/html\n\nbody", "ok len=25 st=- from=Missing v=- f=Content-Type=text/html"),
        (Cgi, "Content-Type: text/html\r\n\r\n", "ok len=all st=- from=Missing"),
        (Cgi, "A: 1\r\nB: 2\n\r\n", "ok len=all f=A=1|B=2"),
        (Cgi, "A: 1\n\r\nrest", "ok len=7"),
        (Cgi, "A: 1\r\n\n", "ok len=all"),
        (Cgi, "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", "ok st=404 from=Field f=Status=404_Not_Found|Content-Type=text/plain"),
        (Cgi, "Status: 404\n\n", "ok st=404 from=Field"),
        (Cgi, "Status: 404\tgone\n\n", "ok st=404"),
        (Cgi, "status:201 Created\n\n", "ok st=201 from=Field"),
        (Cgi, "Status: 200\nStatus: 500\n\n", "ok st=500 from=Field"),
        (Cgi, "Status: 500\nStatus: 200\n\n", "ok st=500 from=Field"),
        (Cgi, "Status: 20\n\n", "err invalid Status field"),
        (Cgi, "Status: 2000\n\n", "err invalid Status field"),
        (Cgi, "Status: 099\n\n", "err invalid Status field"),
        (Cgi, "Status: 600\n\n", "err invalid Status field"),
        (Cgi, "Status: abc\n\n", "err invalid Status field"),
        (Cgi, "Status:\n\n", "err invalid Status field"),
        (Cgi, "Status: 20x\n\n", "err invalid Status field"),
        (Cgi, "Location: /other\n\n", "ok st=302 from=Location loc=/other"),
        (Cgi, "Location: http://x/\r\nStatus: 301\r\n\r\n", "ok st=301 from=Field loc=http://x/"),
        (Cgi, "Status: 303\r\nLocation: /a\r\nLocation: /b\r\n\r\n", "ok st=303 loc=/a"),
        (Cgi, "Status: 103\r\nLink: </s.css>\r\n\r\n", "ok st=103"),
        // A leading empty line: an empty head, the rest is body.
        (Cgi, "\nbody", "ok len=1 st=- from=Missing f="),
        (Cgi, "\r\nbody", "ok len=2 st=- f="),
        (Gateway, "\r\n", "ok len=2 st=- f="),
        // mod_cgi output without a head is body; from FastCGI/SCGI it is an error.
        (Cgi, "hello world\nmore", "ok len=0 st=200 from=Headerless f="),
        (Cgi, "<html>\n", "ok len=0 st=200 from=Headerless"),
        (Cgi, "hello", "partial"),
        (Gateway, "hello world\n", "err output does not start with a header field"),
        (Gateway, "X: 1\nhello\n\n", "err field line without a colon"),
        (Cgi, "X: 1\nhello\n\n", "err field line without a colon"),
        // NPH.
        (Cgi, "HTTP/1.1 200 OK\r\nA: b\r\n\r\n", "ok st=200 from=Line v=1.1 f=A=b"),
        (Cgi, "HTTP/1.0 404 Not Found\n\n", "ok st=404 from=Line v=1.0"),
        (Cgi, "HTTP/1.1 200 OK\nStatus: 500\n\n", "ok st=500 from=Line"),
        (Cgi, "HTTP/1.1 404 No\nStatus: 500\n\n", "ok st=404 from=Line"),
        (Cgi, "HTTP/2.0 201 Created\n\n", "ok st=201 v=1.1"),
        (Gateway, "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", "ok st=302 from=Line loc=/x"),
        (Cgi, "HTTP/1.2 200 OK\n\n", "err unsupported HTTP version in status line"),
        (Cgi, "HTTP/x.1 200 OK\n\n", "err unsupported HTTP version in status line"),
        (Cgi, "HTTP/1.1 20 OK\n\n", "err invalid status line"),
        (Cgi, "HTTP/1.1\n\n", "err invalid status line"),
        (Cgi, "HTTP/ 200\n\n", "err invalid status line"),
        // HTTP upstreams.
        (Http, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "ok len=38 st=200 from=Line v=1.1 cl=5 ch=0"),
        (Http, "HTTP/1.1 200\r\n\r\n", "ok st=200 f="),
        (Http, "HTTP/1.1 200 \r\n\r\n", "ok st=200"),
        (Http, "HTTP/1.0 204 No Content\r\n\r\n", "ok st=204 v=1.0"),
        (Http, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", "ok len=25 st=100"),
        (Http, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "ok st=101 up=1"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "ok ch=1 cl=-"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n", "ok ch=1"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: , chunked\r\n\r\n", "ok ch=1"),
        (Http, "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n\r\n", "ok close=1 ka=1 up=0"),
        (Http, "HTTP/1.1 200 OK\r\nStatus: 500\r\n\r\n", "ok st=200 f=Status=500"),
        (Http, "HTTP/1.1 302 Found\r\nLocation: http://a/b \r\n\r\n", "ok st=302 loc=http://a/b"),
        (Http, "HTTP/1.1 999 Odd\r\n\r\n", "err invalid status line"),
        (Http, "HTTP/2.0 200 OK\r\n\r\n", "err unsupported HTTP version in status line"),
        (Http, "HTTP/1.1 200 OK\n\n", "err line not ended by CRLF"),
        (Http, "HTTP/1.1 200 OK\r\nA: b\n\r\n", "err line not ended by CRLF"),
        (Http, "HTTP/1.1 200 OK\r\n\n", "err line not ended by CRLF"),
        (Http, "Content-Type: text/html\r\n\r\n", "err no status line"),
        (Http, "\r\n", "err no status line"),
        (Http, "http/1.1 200 OK\r\n\r\n", "err no status line"),
        (Http, " HTTP/1.1 200 OK\r\n\r\n", "err no status line"),
        // Values are trimmed; names and values are checked.
        (Cgi, "X:  a b \t\n\n", "ok f=X=a_b"),
        (Cgi, "X:\n\n", "ok f=X="),
        (Cgi, "X: \t \n\n", "ok f=X="),
        (Cgi, "X: caf\u{e9}\n\n", "ok"),
        (Cgi, "X : a\n\n", "err invalid field name"),
        (Cgi, ": a\n\n", "err invalid field name"),
        (Cgi, "X(: a\n\n", "err invalid field name"),
        (Cgi, "A: 1\n folded\n\n", "err folded or indented field line"),
        (Cgi, "A: 1\n\tfolded\n\n", "err folded or indented field line"),
        (Cgi, " A: 1\n\n", "err folded or indented field line"),
        (Cgi, "A: 1\rB: 2\n\n", "err CR not followed by LF"),
        (Cgi, "A: 1\n\r\r\n", "err CR not followed by LF"),
        (Cgi, "A: x\0y\n\n", "err invalid byte in field value"),
        (Cgi, "A: x\x7fy\n\n", "err invalid byte in field value"),
        (Cgi, "A: x\x01\n\n", "err invalid byte in field value"),
        (Http, "HTTP/1.1 200 O\x01K\r\n\r\n", "err invalid byte in reason phrase"),
        // Framing fields.
        (Cgi, "Content-Length: 42\n\n", "ok cl=42"),
        (Cgi, "Content-Length: 42, 42\nContent-Length: 42\n\n", "ok cl=42"),
        (Cgi, "Content-Length: 0\n\n", "ok cl=0"),
        (Cgi, "Content-Length: 9999999999999999999\n\n", "ok cl=9999999999999999999"),
        (Cgi, "Content-Length: 99999999999999999999\n\n", "err invalid Content-Length"),
        (Cgi, "Content-Length: 42\nContent-Length: 43\n\n", "err conflicting Content-Length"),
        (Cgi, "Content-Length: 42, 43\n\n", "err conflicting Content-Length"),
        (Cgi, "Content-Length: +42\n\n", "err invalid Content-Length"),
        (Cgi, "Content-Length: -1\n\n", "err invalid Content-Length"),
        (Cgi, "Content-Length: 4 2\n\n", "err invalid Content-Length"),
        (Cgi, "Content-Length:\n\n", "err invalid Content-Length"),
        (Cgi, "Content-Length: 1,\n\n", "err invalid Content-Length"),
        (Http, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "err both Transfer-Encoding and Content-Length"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "err unsupported transfer coding"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "err chunked is not the final transfer coding"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "err chunked is not the final transfer coding"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", "err empty Transfer-Encoding"),
        (Http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", "err unsupported transfer coding"),
        // Incomplete heads.
        (Cgi, "", "partial"),
        (Cgi, "A: 1\n", "partial"),
        (Cgi, "A: 1\r\n\r", "partial"),
        (Http, "HTTP/1.1 200 OK\r\n", "partial"),
        (Http, "HTTP/1.1 200 OK", "partial"),
    ];

    #[test]
    fn table() {
        for &(mode, input, want) in CASES {
            check(mode, input.as_bytes(), want);
        }
    }

    #[test]
    fn table_at_every_split_point() {
        for &(mode, input, _) in CASES {
            check_splits(mode, input.as_bytes(), MAX);
        }
    }

    #[test]
    fn interim_and_reuse() {
        let head = |s: &str| parse(s.as_bytes(), Http, MAX).ok().flatten();
        let h100 = head("HTTP/1.1 100 Continue\r\n\r\n");
        assert!(h100.as_ref().is_some_and(GwHead::interim));
        let h101 = head("HTTP/1.1 101 Switching Protocols\r\n\r\n");
        assert!(h101.is_some_and(|h| !h.interim()));
        let h200 = head("HTTP/1.1 200 OK\r\n\r\n");
        assert!(h200.is_some_and(|h| !h.interim() && h.reusable()));
        for (s, reusable) in [
            ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false),
            ("HTTP/1.0 200 OK\r\n\r\n", false),
            ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", true),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
            ),
        ] {
            assert_eq!(head(s).map(|h| h.reusable()), Some(reusable), "{s:?}");
        }
        // A CGI head has no version: it says nothing about an upstream connection.
        let cgi = parse(b"A: b\n\n", Cgi, MAX).ok().flatten();
        assert!(cgi.is_some_and(|h| !h.reusable()));
    }

    #[test]
    fn interim_then_final_head_parse_in_turn() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: <a>\r\n\r\n\
                    HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let mut at = 0;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let Ok(Some(h)) = parse(&buf[at..], Http, MAX) else {
                panic!("no head at {at}")
            };
            seen.push(h.status);
            at += h.len;
            if !h.interim() {
                break;
            }
        }
        assert_eq!(seen, [Some(100), Some(103), Some(200)]);
        assert_eq!(&buf[at..], b"hi");
    }

    #[test]
    fn field_lookup_and_spans() {
        let buf = b"HTTP/1.1 200 OK\r\nX-One:   1  \r\nx-two: two words\r\n\r\n";
        let Ok(Some(h)) = parse(buf, Http, MAX) else {
            panic!()
        };
        assert_eq!(h.field(buf, "X-ONE"), Some(&b"1"[..]));
        assert_eq!(h.field(buf, "X-Two"), Some(&b"two words"[..]));
        assert_eq!(h.field(buf, "missing"), None);
    }

    #[test]
    fn limits() {
        // The head's length with its blank line is what max_len bounds.
        let head = b"A: 1\r\nB: 2\r\n\r\n";
        let n = head.len();
        assert!(matches!(parse(head, Cgi, n), Ok(Some(h)) if h.len == n));
        let e = parse(head, Cgi, n - 1).map(|_| ());
        assert_eq!(e, Err(err("response head too large", n - 1)));
        check_splits(Cgi, head, n - 1);
        check_splits(Cgi, head, n);
        // A full buffer without an end is an answer, never "need more".
        let long = vec![b'a'; 100];
        assert!(parse(&long, Gateway, 100).is_err());
        assert!(matches!(parse(&long[..99], Gateway, 100), Ok(None)));
        let mut x = b"X: ".to_vec();
        x.extend(vec![b'v'; 200]);
        assert!(parse(&x, Cgi, 100).is_err());
        // Bytes after a complete head do not count against the limit.
        let mut body = head.to_vec();
        body.extend(vec![b'b'; 1000]);
        assert!(matches!(parse(&body, Cgi, n), Ok(Some(h)) if h.len == n));

        let many: String = (0..MAX_FIELDS).map(|i| format!("X{i}: {i}\r\n")).collect();
        let ok = format!("{many}\r\n");
        let big = 1 << 20;
        assert!(
            matches!(parse(ok.as_bytes(), Cgi, big), Ok(Some(h)) if h.fields.len() == MAX_FIELDS)
        );
        let over = format!("{many}Y: 1\r\n\r\n");
        assert!(
            matches!(parse(over.as_bytes(), Cgi, big), Err(e) if e.reason == "too many fields")
        );
    }

    #[test]
    fn errors_say_where_and_map_to_502() {
        let e = parse(b"A: 1\nB: 2\nC\0: 3\n\n", Cgi, MAX).map(|_| ());
        assert_eq!(e, Err(err("invalid field name", 10)));
        let e = e.unwrap_err();
        assert_eq!(e.status(), 502);
        assert_eq!(
            HttpError::from(e),
            HttpError::new(502, "invalid field name")
        );
        let shown = e.to_string();
        assert!(
            shown.contains("invalid field name") && shown.contains("10"),
            "{shown}"
        );
    }

    /// A small deterministic generator, so hostile inputs are the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn hostile_input_never_panics_and_splits_agree() {
        // Inputs built from the bytes that matter to the grammar, in every mode and with small
        // limits, so that every branch is reached in odd orders.
        const ALPHABET: &[u8] =
            b"HTTP/1.0 2:\r\n\r\n \tStatusLocation:chunkedContent-Length9\0\x7f\xff,";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let len = (rng.next() % 48) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize])
                .collect();
            let max = 8 + (rng.next() % 48) as usize;
            for mode in [Cgi, Gateway, Http] {
                check_splits(mode, &input, max);
                if let Ok(Some(h)) = parse(&input, mode, max) {
                    for f in &h.fields {
                        assert!(f.name.end as usize <= h.len && f.value.end as usize <= h.len);
                    }
                }
            }
        }
    }

    #[test]
    fn realistic_heads_at_every_split_point() {
        let php = "X-Powered-By: PHP/8.2.7\r\nSet-Cookie: a=1; path=/\r\nSet-Cookie: b=2\r\n\
                   Content-type: text/html; charset=UTF-8\r\n\r\n<!DOCTYPE html>";
        check(Gateway, php.as_bytes(), "ok st=- from=Missing");
        check_splits(Gateway, php.as_bytes(), MAX);
        let nginx = "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\n\
                     Content-Type: application/json\r\nContent-Length: 2\r\n\
                     Connection: keep-alive\r\n\r\n{}";
        check(Http, nginx.as_bytes(), "ok st=200 cl=2 ka=1");
        check_splits(Http, nginx.as_bytes(), MAX);
    }
}
