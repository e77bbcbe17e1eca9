//! Request-head parsing (RFC 9112 §2-§6): bytes in, offsets out, or "need more", or a status.
//!
//! The parser keeps no state between calls: the connection simply calls [`parse`] again when
//! more bytes arrive. That is safe because the scan runs strictly left to right and every
//! decision depends only on bytes already looked at (plus, for a CR, the single byte after
//! it). A prefix of a request therefore either runs out of bytes ("need more") or stops at
//! exactly the point, with exactly the error, that the whole request would. The limits are
//! checked the same way, as positions in the scan, so the answer never depends on how the
//! bytes were split across reads. Re-scanning a partial head costs at most `max_head` bytes
//! per read, which is cheaper than keeping resumable state for every field.
//!
//! Where RFC 9110/9112 leave a choice, the parser takes the one that leaves no room for two
//! parties to read a message differently (request smuggling): reject rather than repair.
//! One repair is made, because lighttpd makes it and clients rely on it: obsolete line
//! folding (RFC 9112 §5.2) inside a field value that neither frames nor routes the message
//! is replaced with spaces, in place, so the buffer is the only thing the parser writes (see
//! [`parse`]).

use std::net::Ipv6Addr;

use super::HttpError;

/// A byte range `start..end` into the connection's read buffer. Offsets, not borrows, so a
/// parsed head can be kept across events while the buffer stays owned by the connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    Put,
    Delete,
    Patch,
    Trace,
    Connect,
    // WebDAV and other registered methods lightd knows but does not serve: 405.
    Propfind,
    Proppatch,
    Mkcol,
    Copy,
    Move,
    Lock,
    Unlock,
}

impl Method {
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
            Method::Propfind => "PROPFIND",
            Method::Proppatch => "PROPPATCH",
            Method::Mkcol => "MKCOL",
            Method::Copy => "COPY",
            Method::Move => "MOVE",
            Method::Lock => "LOCK",
            Method::Unlock => "UNLOCK",
        }
    }

    /// The method named exactly `name`. Method names are case-sensitive (RFC 9110 §9.1), so
    /// `get` is not GET.
    pub fn from_bytes(name: &[u8]) -> Option<Method> {
        Some(match name {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"OPTIONS" => Method::Options,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            b"PROPFIND" => Method::Propfind,
            b"PROPPATCH" => Method::Proppatch,
            b"MKCOL" => Method::Mkcol,
            b"COPY" => Method::Copy,
            b"MOVE" => Method::Move,
            b"LOCK" => Method::Lock,
            b"UNLOCK" => Method::Unlock,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Header {
    pub name: Span,
    /// Without leading and trailing whitespace.
    pub value: Span,
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest head (request line + fields + blank line), in bytes: beyond it, 431.
    pub max_head: usize,
    /// The longest request line: beyond it, 414.
    pub max_request_line: usize,
    /// The most header fields: beyond it, 431.
    pub max_headers: usize,
}

/// A parsed request head. All text is reached through spans into the buffer it came from.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// Bytes of the buffer the head occupies, including a leading empty line and the final
    /// blank line: the body (or the next pipelined request) starts here.
    pub len: usize,
    pub method: Method,
    /// The raw request-target as sent (origin-form, absolute-form or "*").
    pub target: Span,
    /// The path part of the target (absolute-form reduced to its path), still percent-encoded.
    pub path: Span,
    /// The query after '?', without the '?'; None when there is no '?'.
    pub query: Option<Span>,
    pub version: Version,
    /// The Host (or the authority of an absolute-form target, which wins).
    pub host: Option<Span>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// Whether the connection may persist after this request, from the version and the
    /// Connection field.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// How many entries of the caller's header vector belong to this head.
    pub header_count: usize,
}

/// Parse a request head from the start of `buf`.
///
/// Ok(None) means the head is not complete yet and the limits are not exceeded: read more.
/// `headers` is cleared and filled; the caller reuses it across requests so parsing does not
/// allocate in the steady state.
///
/// Once `buf.len() >= limits.max_head` the answer is never Ok(None), so a caller whose read
/// buffer holds `max_head` bytes cannot wait forever on a full buffer.
///
/// Spans are `u32`; `max_head` is clamped to `u32::MAX` so every offset fits.
///
/// The one write: an obs-fold the parser accepts (see [`field_line`]) has its CR and LF
/// replaced with SP in `buf`, so every later reader of a field value sees one line, as
/// lighttpd's do. The rewrite is made only once the fold is known to be accepted, and a
/// rewritten fold reads as the spaces it became, so calling again on the same or a longer
/// buffer still gives the same answer.
///
/// For an authority-form target (CONNECT) `path` is an empty span at the end of the target;
/// for `*` (OPTIONS) `path` is the `*`.
pub fn parse(
    buf: &mut [u8],
    limits: &Limits,
    headers: &mut Vec<Header>,
) -> Result<Option<Head>, HttpError> {
    headers.clear();
    let mut scan = Scan {
        buf,
        pos: 0,
        max_head: limits.max_head.min(u32::MAX as usize),
    };
    match parse_head(&mut scan, limits, headers) {
        Ok(head) => Ok(Some(head)),
        Err(Stop::Partial) => Ok(None),
        Err(Stop::Fail(e)) => Err(e),
    }
}

/// The value of the first header named `name` (ASCII case-insensitive).
pub fn header<'a>(buf: &'a [u8], headers: &[Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| h.value.get(buf))
}

/// Whether any field named `name` lists `token` among its comma-separated elements (ASCII
/// case-insensitive both), as `Trailer: a, b` lists `b`.
pub fn field_lists(buf: &[u8], headers: &[Header], name: &str, token: &[u8]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .flat_map(|h| list(h.value.get(buf)))
        .any(|t| t.eq_ignore_ascii_case(token))
}

// ---------------------------------------------------------------------------------------------
// Character classes (RFC 9110 §5.6.2 tchar, §5.5 field-vchar).

const SP: u8 = b' ';
const HT: u8 = b'\t';
const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// Longer method names get 501 at once: no known method is near this long, and waiting for
/// the rest of an absurd name would only buffer attacker bytes.
const MAX_METHOD_LEN: usize = 32;

type Class = [bool; 256];

/// Build a 256-entry lookup table from a `const fn(u8) -> bool` at compile time (const fns
/// cannot call through function pointers, hence a macro).
macro_rules! class {
    ($f:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        t
    }};
}

const fn tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z')
}

/// Field values: VCHAR, obs-text, SP, HTAB. CR is handled by the line-ending code; every
/// other control byte (NUL above all) is rejected rather than passed to handlers.
const fn value_char(b: u8) -> bool {
    b == SP || b == HT || (b >= 0x21 && b != 0x7f)
}

/// The request-target: visible ASCII, and bytes 0x80-0xFF. '#' never belongs in a request
/// (fragments are client-side). Raw non-ASCII bytes should have been percent-encoded (RFC
/// 3986 §2), but clients do send them (UTF-8 file names typed into a tool) and lighttpd and
/// nginx accept them; RFC 9112 §3.2 leaves the choice to the server. They are judged later
/// exactly as percent-decoded bytes are: path normalisation requires valid UTF-8, and a
/// redirect encodes them again. Control bytes, space and DEL stay refused: they would let two
/// parsers disagree on where the target ends.
const fn target_char(b: u8) -> bool {
    (b >= 0x21 && b <= 0x7e && b != b'#') || b >= 0x80
}

const TCHAR: Class = class!(tchar);
const VALUE: Class = class!(value_char);
const TARGET: Class = class!(target_char);

/// A token character (RFC 9110 §5.6.2): what method and field names are made of.
pub fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// A byte allowed inside a field value: VCHAR, obs-text, SP or HTAB (RFC 9110 §5.5).
pub fn is_field_value_char(b: u8) -> bool {
    VALUE[b as usize]
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Without optional whitespace (spaces and tabs) at either end (RFC 9110 §5.6.3).
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [SP | HT, rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., SP | HT] = s {
        s = rest;
    }
    s
}

/// The elements of a comma-separated list field (RFC 9110 §5.6.1), trimmed, empty ones kept
/// so each caller decides whether an empty element is harmless.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

// ---------------------------------------------------------------------------------------------
// Errors.

const fn bad(reason: &'static str) -> HttpError {
    HttpError::new(400, reason)
}

const HEAD_TOO_BIG: HttpError = HttpError::new(431, "request head too large");
const TOO_MANY_FIELDS: HttpError = HttpError::new(431, "too many header fields");
const LINE_TOO_LONG: HttpError = HttpError::new(414, "request line too long");
const BARE_CR: HttpError = bad("CR not followed by LF");

/// Why a scan stopped: out of bytes (and within limits), or a definite answer.
enum Stop {
    Partial,
    Fail(HttpError),
}

impl From<HttpError> for Stop {
    fn from(e: HttpError) -> Self {
        Stop::Fail(e)
    }
}

// ---------------------------------------------------------------------------------------------
// The cursor.

struct Scan<'a> {
    buf: &'a mut [u8],
    pos: usize,
    max_head: usize,
}

impl Scan<'_> {
    /// The byte at the cursor. Reaching `max_head` is an error whether or not the byte has
    /// arrived: the head could only end beyond the limit, and answering without it keeps a
    /// full buffer of exactly `max_head` bytes from waiting forever.
    fn peek(&self) -> Result<u8, Stop> {
        if self.pos >= self.max_head {
            return Err(HEAD_TOO_BIG.into());
        }
        self.buf.get(self.pos).copied().ok_or(Stop::Partial)
    }

    /// Advance over bytes of `class`, returning the first byte outside it (not consumed).
    fn skip(&mut self, class: &Class) -> Result<u8, Stop> {
        let end = self.buf.len().min(self.max_head);
        let rest = self.buf.get(self.pos..end).unwrap_or_default();
        match rest.iter().position(|&b| !class[b as usize]) {
            Some(n) => {
                self.pos += n;
                Ok(rest[n])
            }
            None => {
                self.pos += rest.len();
                self.peek()
            }
        }
    }

    /// Consume a line ending that starts with `b` (CR or LF) at the cursor. A bare LF ends a
    /// line (RFC 9112 §2.2 allows it); a CR must be followed by LF, because a bare CR is read
    /// as a line break by some intermediaries and as data by others.
    fn eol(&mut self, b: u8) -> Result<(), Stop> {
        if b == CR {
            self.pos += 1;
            if self.peek()? != LF {
                return Err(BARE_CR.into());
            }
        }
        self.pos += 1;
        Ok(())
    }

    /// The byte at the cursor, as part of the request line that began at `start`.
    fn line_byte(&self, start: usize, max_line: usize) -> Result<u8, Stop> {
        let b = self.peek()?;
        if self.pos - start >= max_line && b != CR && b != LF {
            return Err(LINE_TOO_LONG.into());
        }
        Ok(b)
    }

    /// Spans are u32: sound because `pos` never exceeds `max_head`, itself at most u32::MAX.
    fn span(&self, start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The request line (RFC 9112 §3).

struct RequestLine {
    method: Method,
    target: Span,
    path: Span,
    query: Option<Span>,
    version: Version,
    /// The authority of an absolute-form target.
    authority: Option<Span>,
}

fn parse_head(s: &mut Scan, limits: &Limits, headers: &mut Vec<Header>) -> Result<Head, Stop> {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line
    // (some clients send an extra CRLF after a POST body). One is ignored and a second one
    // refused, as lighttpd does: a run of empty lines is no client's request.
    let b = s.peek()?;
    if b == CR || b == LF {
        s.eol(b)?;
        if let CR | LF = s.peek()? {
            return Err(bad("more than one empty line before the request line").into());
        }
    }
    let line = request_line(s, limits.max_request_line)?;
    let mut fields = Fields::new(line.version);

    loop {
        let b = s.peek()?;
        if b == CR || b == LF {
            s.eol(b)?;
            break;
        }
        if b == SP || b == HT {
            // Whitespace before the first field (§2.2) is a way to make two parsers disagree
            // on where a field starts: reject. (An obs-fold after a field is handled, and
            // consumed, by field_line.)
            return Err(bad("field line starts with whitespace").into());
        }
        if headers.len() >= limits.max_headers {
            return Err(TOO_MANY_FIELDS.into());
        }
        let h = field_line(s)?;
        push_bounded(headers, h, limits.max_headers);
        fields.interpret(&*s.buf, &h)?;
    }

    fields.finish(s.pos, line, headers.len())
}

fn request_line(s: &mut Scan, max_line: usize) -> Result<RequestLine, Stop> {
    let start = s.pos;

    loop {
        let b = s.line_byte(start, max_line)?;
        if b == SP {
            break;
        }
        if !is_tchar(b) {
            return Err(bad("invalid method").into());
        }
        if s.pos - start >= MAX_METHOD_LEN {
            return Err(HttpError::new(501, "method not implemented").into());
        }
        s.pos += 1;
    }
    if s.pos == start {
        return Err(bad("empty method").into());
    }
    let method = Method::from_bytes(&s.buf[start..s.pos])
        .ok_or(HttpError::new(501, "method not implemented"))?;
    s.pos += 1;

    let t0 = s.pos;
    loop {
        let b = s.line_byte(start, max_line)?;
        if b == SP {
            break;
        }
        if !TARGET[b as usize] {
            // Includes CR/LF: a request line without a version is HTTP/0.9, unsupported.
            return Err(bad("invalid request-target").into());
        }
        s.pos += 1;
    }
    let t1 = s.pos;
    if t0 == t1 {
        return Err(bad("empty request-target").into());
    }
    s.pos += 1;
    let form = target_form(s, method, t0, t1)?;

    for &want in b"HTTP/" {
        if s.line_byte(start, max_line)? != want {
            return Err(bad("invalid HTTP version").into());
        }
        s.pos += 1;
    }
    let mut digits = [0u8; 2];
    for (i, d) in digits.iter_mut().enumerate() {
        if i == 1 {
            if s.line_byte(start, max_line)? != b'.' {
                return Err(bad("invalid HTTP version").into());
            }
            s.pos += 1;
        }
        let b = s.line_byte(start, max_line)?;
        if !b.is_ascii_digit() {
            return Err(bad("invalid HTTP version").into());
        }
        *d = b - b'0';
        s.pos += 1;
    }
    let b = s.line_byte(start, max_line)?;
    if b != CR && b != LF {
        return Err(bad("invalid HTTP version").into());
    }
    s.eol(b)?;

    // RFC 9110 §2.5: a 1.x minor version we do not know is answered as the highest 1.x we
    // do; another major version is 505.
    let version = match digits {
        [1, 0] => Version::Http10,
        [1, _] => Version::Http11,
        [0, _] => return Err(bad("invalid HTTP version").into()),
        _ => return Err(HttpError::new(505, "HTTP version not supported").into()),
    };

    Ok(RequestLine {
        method,
        target: s.span(t0, t1),
        path: form.path,
        query: form.query,
        version,
        authority: form.authority,
    })
}

struct TargetForm {
    path: Span,
    query: Option<Span>,
    authority: Option<Span>,
}

/// Classify the request-target `buf[t0..t1]` (RFC 9112 §3.2) and split it.
fn target_form(s: &Scan, method: Method, t0: usize, t1: usize) -> Result<TargetForm, HttpError> {
    let t = &s.buf[t0..t1];
    // Path and query of `buf[from..t1]`, split at the first '?'.
    let split = |from: usize| {
        let q = s.buf[from..t1].iter().position(|&b| b == b'?');
        match q {
            Some(q) => (s.span(from, from + q), Some(s.span(from + q + 1, t1))),
            None => (s.span(from, t1), None),
        }
    };

    if method == Method::Connect {
        // CONNECT takes authority-form only, and its port is required (RFC 9110 §9.3.6).
        return match host_port(t) {
            Some((host, Some(port))) if !host.is_empty() && !port.is_empty() => Ok(TargetForm {
                path: s.span(t1, t1),
                query: None,
                authority: None,
            }),
            _ => Err(bad("CONNECT needs host:port")),
        };
    }
    if t[0] == b'/' {
        let (path, query) = split(t0);
        return Ok(TargetForm {
            path,
            query,
            authority: None,
        });
    }
    if t == b"*" {
        if method != Method::Options {
            return Err(bad("asterisk-form is only for OPTIONS"));
        }
        return Ok(TargetForm {
            path: s.span(t0, t1),
            query: None,
            authority: None,
        });
    }
    let scheme = if starts_with_ci(t, b"http://") {
        7
    } else if starts_with_ci(t, b"https://") {
        8
    } else {
        return Err(bad("invalid request-target"));
    };
    let a0 = t0 + scheme;
    let a1 = s.buf[a0..t1]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .map_or(t1, |n| a0 + n);
    // An http(s) URI with an empty host MUST be rejected (RFC 9110 §4.2.1); userinfo is
    // rejected too, since '@' is outside the host grammar (RFC 9110 §4.2.4).
    match host_port(&s.buf[a0..a1]) {
        Some((host, _)) if !host.is_empty() => {}
        _ => return Err(bad("invalid authority in request-target")),
    }
    let (path, query) = split(a1);
    Ok(TargetForm {
        path,
        query,
        authority: Some(s.span(a0, a1)),
    })
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Split `uri-host [":" port]` (RFC 3986 §3.2.2-3), returning None when it is not one.
/// The host is a reg-name (which covers IPv4) or a bracketed IPv6 literal; the port is
/// `*DIGIT`. An empty input is an empty host without a port.
fn host_port(v: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (host, rest) = if v.first() == Some(&b'[') {
        let close = v.iter().position(|&b| b == b']')?;
        let inner = std::str::from_utf8(&v[1..close]).ok()?;
        inner.parse::<Ipv6Addr>().ok()?;
        v.split_at(close + 1)
    } else {
        let end = v.iter().position(|&b| b == b':').unwrap_or(v.len());
        let (host, rest) = v.split_at(end);
        if !reg_name(host) {
            return None;
        }
        (host, rest)
    };
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => Some((host, Some(port))),
        _ => None,
    }
}

/// The bytes a reg-name may hold besides percent-escapes: unreserved and sub-delims.
const REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~')
            || matches!(
                c,
                b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            );
        b += 1;
    }
    t
};

fn reg_name(s: &[u8]) -> bool {
    let mut i = 0;
    // A table rather than a match: the Host header is checked on every request.
    while let Some(&b) = s.get(i) {
        if REG_NAME[b as usize] {
            i += 1;
        } else if b == b'%'
            && s.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            i += 3;
        } else {
            return false;
        }
    }
    true
}

/// A Host field value: empty (RFC 9112 §3.2, for targets without an authority), or a host
/// with an optional port. A port without a host is not accepted.
fn valid_host_field(v: &[u8]) -> bool {
    match host_port(v) {
        Some((host, port)) => !host.is_empty() || port.is_none(),
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Field lines (RFC 9112 §5).

/// Fields an obs-fold may not continue: those that frame the message, decide whether the
/// connection persists, or route it. A front end that reads a fold differently (drops it,
/// or takes the continuation for a field of its own) would then disagree with us on where
/// the body ends or which site is asked; a 400 leaves no such room.
/// (One string, not a slice of them: each element would cost a pointer and a relocation.)
const NO_FOLD: &str = "host content-length transfer-encoding connection expect upgrade te trailer";

/// One `name ":" OWS value OWS` line, the cursor at its first byte (already known not to be
/// whitespace or a line ending), with any obs-fold continuation lines (RFC 9112 §5.2).
///
/// lighttpd unfolds every fold; lightd unfolds the ones that cannot change how the message
/// is framed or routed, and answers 400 for the rest: a fold of a [`NO_FOLD`] field, and a
/// continuation line that, its leading whitespace removed, reads as a field line of its own
/// (`name:`), the shape a smuggled field would take past a front end that trims
/// whitespace. What lighttpd's suite sends (Authorization values continued over several
/// lines) passes both rules.
fn field_line(s: &mut Scan) -> Result<Header, Stop> {
    let n0 = s.pos;
    let b = s.skip(&TCHAR)?;
    if b != b':' {
        // Whitespace before the colon is a MUST-reject (§5.1); so is a line with no colon.
        return Err(bad("invalid field name").into());
    }
    if s.pos == n0 {
        return Err(bad("empty field name").into());
    }
    let name = s.span(n0, s.pos);
    s.pos += 1;

    while let SP | HT = s.peek()? {
        s.pos += 1;
    }
    let v0 = s.pos;
    // Each pass reads one physical line of the value; every pass but the last consumes a
    // fold, and each advances the cursor, which `max_head` bounds.
    loop {
        let b = s.skip(&VALUE)?;
        if b != CR && b != LF {
            return Err(bad("invalid byte in field value").into());
        }
        let line_end = s.pos;
        s.eol(b)?;
        let fold_end = s.pos;
        if !matches!(s.peek()?, SP | HT) {
            // The value ends after its last visible byte; only the trailing whitespace is
            // looked at again, so this stays a single pass in practice. It starts at its
            // first visible byte, which is past `v0` only when a fold came first.
            let value = &s.buf[v0..line_end];
            let v1 = value
                .iter()
                .rposition(|&c| c != SP && c != HT)
                .map_or(v0, |n| v0 + n + 1);
            let lead = value.iter().take_while(|&&c| c == SP || c == HT).count();
            return Ok(Header {
                name,
                value: s.span((v0 + lead).min(v1), v1),
            });
        }
        unfold(s, name, line_end..fold_end)?;
    }
}

/// The obs-fold whose line break is `brk`, the cursor on the continuation line's first
/// byte (SP or HT): refused, or accepted and rewritten to spaces, the cursor then past the
/// bytes looked at (whitespace and a token, all of them value bytes). Rare, so kept out of
/// the field loop.
#[cold]
#[inline(never)]
fn unfold(s: &mut Scan, name: Span, brk: std::ops::Range<usize>) -> Result<(), Stop> {
    let n = name.get(s.buf);
    if NO_FOLD
        .split(' ')
        .any(|f| n.eq_ignore_ascii_case(f.as_bytes()))
    {
        return Err(bad("obs-fold in a framing or routing field").into());
    }
    // Decide on the continuation before rewriting anything: its whitespace, then a token;
    // a ':' right after the token makes it look like a field line.
    while let SP | HT = s.peek()? {
        s.pos += 1;
    }
    let t0 = s.pos;
    if s.skip(&TCHAR)? == b':' && s.pos > t0 {
        return Err(bad("obs-fold continuation reads as a field line").into());
    }
    // Accepted: the line break becomes spaces (§5.2).
    if let Some(b) = s.buf.get_mut(brk) {
        b.fill(SP);
    }
    Ok(())
}

/// Push without ever letting the vector's capacity pass `max`: the default doubling could
/// otherwise allocate past the limit, and after the first few requests no push allocates.
fn push_bounded(headers: &mut Vec<Header>, h: Header, max: usize) {
    if headers.len() == headers.capacity() {
        // The caller checked len < max, so `want` is always more than len.
        let want = (headers.capacity() * 2).max(8).min(max);
        headers.reserve_exact(want.saturating_sub(headers.len()).max(1));
    }
    headers.push(h);
}

/// What the framing- and connection-relevant fields have said so far.
struct Fields {
    version: Version,
    host: Option<Span>,
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Fields {
    fn new(version: Version) -> Self {
        Fields {
            version,
            host: None,
            content_length: None,
            transfer_encoding: false,
            chunked: false,
            close: false,
            keep_alive: false,
            expect_continue: false,
        }
    }

    /// Act on one field as soon as it is complete, so a bad one is reported at its position.
    fn interpret(&mut self, buf: &[u8], h: &Header) -> Result<(), HttpError> {
        let name = h.name.get(buf);
        let value = h.value.get(buf);
        if name.eq_ignore_ascii_case(b"host") {
            // Two Hosts, or one that is not a host, could route differently at each hop
            // (RFC 9110 §7.2, RFC 9112 §3.2: 400).
            if self.host.is_some() {
                return Err(bad("duplicate Host"));
            }
            if !valid_host_field(value) {
                return Err(bad("invalid Host"));
            }
            self.host = Some(h.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            self.content_length(value)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding(value)?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for opt in list(value) {
                if opt.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            for exp in list(value) {
                if exp.eq_ignore_ascii_case(b"100-continue") {
                    self.expect_continue = true;
                } else if !exp.is_empty() {
                    return Err(HttpError::new(417, "unsupported expectation"));
                }
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.3: a list of identical values may be taken as that value; anything else
    /// makes the framing ambiguous and is a 400.
    fn content_length(&mut self, value: &[u8]) -> Result<(), HttpError> {
        const INVALID: HttpError = bad("invalid Content-Length");
        for item in list(value) {
            if item.is_empty() {
                return Err(INVALID);
            }
            let mut n: u64 = 0;
            for &b in item {
                if !b.is_ascii_digit() {
                    return Err(INVALID);
                }
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')))
                    .ok_or(INVALID)?;
            }
            match self.content_length {
                Some(prev) if prev != n => return Err(bad("conflicting Content-Length")),
                _ => self.content_length = Some(n),
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.1: chunked must be the final coding and may be applied only once. We
    /// decode no other coding, so any other one is 501 rather than a body we cannot frame.
    fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), HttpError> {
        if self.version == Version::Http10 {
            // §6.1: a 1.0 recipient may not understand it, so the framing is suspect.
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        self.transfer_encoding = true;
        for coding in list(value) {
            if coding.is_empty() {
                // RFC 9110 §5.6.1: empty list elements are ignored.
                continue;
            }
            if self.chunked {
                return Err(bad("chunked is not the final transfer coding"));
            }
            let (name, params) = match coding.iter().position(|&b| b == b';') {
                Some(i) => (trim_ows(&coding[..i]), true),
                None => (coding, false),
            };
            if !is_token(name) {
                return Err(bad("invalid transfer coding"));
            }
            if !name.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::new(501, "transfer coding not implemented"));
            }
            if params {
                return Err(bad("chunked takes no parameters"));
            }
            self.chunked = true;
        }
        Ok(())
    }

    fn finish(self, len: usize, line: RequestLine, header_count: usize) -> Result<Head, Stop> {
        // RFC 9112 §3.2 asks for Host in every HTTP/1.1 request, but an absolute-form target
        // carries the authority itself and §3.2.2 makes it win over any Host field; lighttpd
        // takes it as the Host, so a 1.1 request with one needs no field (request.t).
        if self.version == Version::Http11 && self.host.is_none() && line.authority.is_none() {
            return Err(bad("missing Host").into());
        }
        if self.transfer_encoding && !self.chunked {
            return Err(bad("empty Transfer-Encoding").into());
        }
        if self.transfer_encoding && self.content_length.is_some() {
            // §6.1 allows processing TE and dropping CL, but the pair is the classic request
            // smuggling pattern; refusing it is the safe reading.
            return Err(bad("both Transfer-Encoding and Content-Length").into());
        }
        let keep_alive = !self.close
            && match self.version {
                Version::Http11 => true,
                Version::Http10 => self.keep_alive,
            };
        Ok(Head {
            len,
            method: line.method,
            target: line.target,
            path: line.path,
            query: line.query,
            version: self.version,
            host: line.authority.or(self.host),
            content_length: self.content_length,
            chunked: self.chunked,
            keep_alive,
            // RFC 9110 §10.1.1: a 100-continue from an HTTP/1.0 client MUST be ignored.
            expect_continue: self.expect_continue && self.version == Version::Http11,
            header_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 8192,
        max_request_line: 4096,
        max_headers: 32,
    };

    fn opt_span(buf: &[u8], s: Option<Span>) -> String {
        s.map_or("-".into(), |s| {
            String::from_utf8_lossy(s.get(buf)).into_owned()
        })
    }

    /// The parse result as one comparable string: "partial", the status, or key=value pairs.
    /// Parsed from a copy (the parser unfolds obs-fold in place); spans read the copy.
    fn outcome(input: &[u8], limits: &Limits) -> String {
        let mut copy = input.to_vec();
        let mut headers = Vec::new();
        let parsed = parse(&mut copy, limits, &mut headers);
        let buf = &copy[..];
        match parsed {
            Ok(None) => "partial".into(),
            Err(e) => e.status.to_string(),
            Ok(Some(h)) => {
                assert_eq!(h.header_count, headers.len());
                format!(
                    "ok m={} t={} p={} q={} v={} host={} cl={} ch={} ka={} ex={} n={} len={}",
                    h.method.as_str(),
                    opt_span(buf, Some(h.target)),
                    opt_span(buf, Some(h.path)),
                    opt_span(buf, h.query),
                    if h.version == Version::Http10 {
                        "1.0"
                    } else {
                        "1.1"
                    },
                    opt_span(buf, h.host),
                    h.content_length.map_or("-".into(), |n| n.to_string()),
                    h.chunked as u8,
                    h.keep_alive as u8,
                    h.expect_continue as u8,
                    h.header_count,
                    h.len,
                )
            }
        }
    }

    /// `expect` is a status, "partial", or "ok" followed by the key=value pairs that matter
    /// (`len=all` meaning the whole input).
    fn check(input: &[u8], limits: &Limits, expect: &str) {
        let got = outcome(input, limits);
        let shown = String::from_utf8_lossy(input);
        let mut want = expect.split(' ');
        let kind = want.next().unwrap_or_default();
        if kind != "ok" {
            assert_eq!(got, expect, "input {shown:?}");
            return;
        }
        assert!(
            got.starts_with("ok "),
            "input {shown:?}: got {got}, want {expect}"
        );
        for kv in want {
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
            assert_eq!(found, kv, "input {shown:?}: got {got}");
        }
    }

    /// Every prefix must be "partial" or exactly the whole answer.
    fn check_splits(input: &[u8], limits: &Limits) {
        let whole = outcome(input, limits);
        for k in 0..input.len() {
            let part = outcome(&input[..k], limits);
            assert!(
                part == "partial" || part == whole,
                "input {:?} split at {k}: prefix gives {part}, whole gives {whole}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[rustfmt::skip]
    const CASES: &[(&str, &str)] = &[
        // Basics and forms.
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=GET t=/ p=/ q=- v=1.1 host=a cl=- ch=0 ka=1 ex=0 n=1 len=all"),
        ("GET /a/b?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n", "ok p=/a/b q=x=1&y t=/a/b?x=1&y"),
        ("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", "ok p=/a q="),
        ("GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n", "ok p=/a q=b?c"),
        ("GET /%7Ea HTTP/1.1\r\nHost: a\r\n\r\n", "ok p=/%7Ea"),
        ("GET / HTTP/1.1\nHost: a\n\n", "ok len=all"),
        ("GET / HTTP/1.1\r\nHost: a\n\r\n", "ok len=all"),
        // One empty line before the request line is ignored, a second one is refused.
        ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=GET len=all"),
        ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=GET len=all"),
        ("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("\r\n\r", "400"),
        ("\r\n\n", "400"),
        ("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("\r\n \r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\nhello", "ok len=27"),
        ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=OPTIONS t=* p=* q=-"),
        ("OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=OPTIONS p=/"),
        ("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET http://example.com/a?b HTTP/1.1\r\nHost: other\r\n\r\n", "ok host=example.com p=/a q=b t=http://example.com/a?b"),
        ("GET HTTPS://ex.com:8443/x HTTP/1.1\r\nHost: ex.com\r\n\r\n", "ok host=ex.com:8443 p=/x q=-"),
        ("GET Http://ex.com HTTP/1.1\r\nHost: ex.com\r\n\r\n", "ok host=ex.com p= q=-"),
        ("GET http://ex.com?q HTTP/1.1\r\nHost: ex.com\r\n\r\n", "ok host=ex.com p= q=q"),
        ("GET http://[::1]:80/ HTTP/1.1\r\nHost: x\r\n\r\n", "ok host=[::1]:80 p=/"),
        ("GET http://ex.com/ HTTP/1.0\r\n\r\n", "ok host=ex.com v=1.0"),
        ("GET http://ex.com/ HTTP/1.1\r\n\r\n", "ok host=ex.com v=1.1"),
        ("GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", "400"),
        ("GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET http://:80/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET http://user@ex.com/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET http://ex.com:8x/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET ftp://ex.com/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET http:/ex.com/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET a HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET ex.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("CONNECT ex.com:443 HTTP/1.1\r\nHost: ex.com:443\r\n\r\n", "ok m=CONNECT t=ex.com:443 p= q=- host=ex.com:443"),
        ("CONNECT [::1]:443 HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=CONNECT t=[::1]:443"),
        ("CONNECT ex.com HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("CONNECT ex.com: HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("CONNECT http://ex.com/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        // Methods.
        ("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=HEAD"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "ok m=POST cl=0"),
        ("PUT / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=PUT"),
        ("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=DELETE"),
        ("PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=PATCH"),
        ("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=TRACE"),
        ("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=PROPFIND"),
        ("PROPPATCH / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=PROPPATCH"),
        ("MKCOL / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=MKCOL"),
        ("COPY / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=COPY"),
        ("MOVE / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=MOVE"),
        ("LOCK / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=LOCK"),
        ("UNLOCK / HTTP/1.1\r\nHost: a\r\n\r\n", "ok m=UNLOCK"),
        ("get / HTTP/1.1\r\nHost: a\r\n\r\n", "501"),
        ("Get / HTTP/1.1\r\nHost: a\r\n\r\n", "501"),
        ("FOO / HTTP/1.1\r\nHost: a\r\n\r\n", "501"),
        ("FOO /a b c", "501"),
        ("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", "501"),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: a\r\n\r\n", "501"),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "501"),
        ("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET\0 / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        (" GET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("\tGET / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        // Spacing in the request line.
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1\t\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1\rHost: a\r\n\r\n", "400"),
        ("GET /\r\n\r\n", "400"),
        ("GET / \r\n\r\n", "400"),
        ("GET\r\n\r\n", "400"),
        // The target's bytes.
        ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        // Raw non-ASCII bytes are accepted here; the path's UTF-8 is judged on normalising.
        ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", "ok p=/caf\u{e9}"),
        ("GET /~test%20\u{e4}_?foo HTTP/1.0\r\n\r\n", "ok p=/~test%20\u{e4}_ q=foo"),
        ("GET /a?\u{e4}=\u{f6} HTTP/1.1\r\nHost: a\r\n\r\n", "ok p=/a q=\u{e4}=\u{f6}"),
        ("GET http://ex.com/\u{e4} HTTP/1.1\r\nHost: a\r\n\r\n", "ok host=ex.com p=/\u{e4}"),
        ("GET http://\u{e4}.com/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ("CONNECT \u{e4}.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        // Versions.
        ("GET / HTTP/1.0\r\n\r\n", "ok v=1.0 host=- ka=0 n=0"),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", "ok v=1.1"),
        ("GET / HTTP/1.9\r\nHost: a\r\n\r\n", "ok v=1.1"),
        ("GET / HTTP/1.2\r\n\r\n", "400"),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"),
        ("GET / HTTP/3.0\r\nHost: a\r\n\r\n", "505"),
        ("GET / HTTP/9.9\r\nHost: a\r\n\r\n", "505"),
        ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/10.0\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/2\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/11\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/ 1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTPS/1.1\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.a\r\nHost: a\r\n\r\n", "400"),
        // Field syntax.
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A:b\r\n\r\n", "ok n=2"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n\r\n", "ok n=2"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: \u{80}\u{ff} \r\n\r\n", "ok n=2"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX!#$%&'*+-.^_`|~09az: v\r\n\r\n", "ok n=2"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", "400"),
        // obs-fold (RFC 9112 §5.2): unfolded into the value, except where it could frame or
        // route the message, or where the continuation reads as a field of its own.
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", "ok n=2 len=all"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", "ok n=2 len=all"),
        ("GET / HTTP/1.1\nHost: a\nX-A: b\n c\n \t\nX-B: d\n\n", "ok n=3 len=all"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c: d\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tTransfer-Encoding:chunked\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n :c\r\n\r\n", "ok n=2"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n\t b \r\n\r\n", "ok n=2"),
        ("GET / HTTP/1.1\r\nHost:\r\n a\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n 0\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive,\r\n close\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\0\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A\r: b\r\n\r\n", "400"),
        // Host.
        ("GET / HTTP/1.1\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", "400"),
        ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost:\r\n\r\n", "ok host="),
        ("GET / HTTP/1.1\r\nhost: Ex-1.com \r\n\r\n", "ok host=Ex-1.com"),
        ("GET / HTTP/1.1\r\nHost: a:80\r\n\r\n", "ok host=a:80"),
        ("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", "ok host=a:"),
        ("GET / HTTP/1.1\r\nHost: 1.2.3.4:8080\r\n\r\n", "ok host=1.2.3.4:8080"),
        ("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", "ok host=[::1]"),
        ("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n", "ok host=[2001:db8::1]:8080"),
        ("GET / HTTP/1.1\r\nHost: a%20b\r\n\r\n", "ok host=a%20b"),
        ("GET / HTTP/1.1\r\nHost: a_b~c!$&'()*+,;=d\r\n\r\n", "ok host=a_b~c!$&'()*+,;=d"),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [1.2.3.4]\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\u{e9}\r\n\r\n", "400"),
        // Content-Length.
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "ok cl=5 ch=0"),
        ("POST / HTTP/1.1\r\nHost: a\r\ncontent-length:007\r\n\r\n", "ok cl=7"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", "ok cl=5"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "ok cl=5"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", "ok cl=18446744073709551615"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,5\r\n\r\n", "400"),
        // Transfer-Encoding.
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "ok ch=1 cl=-"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", "ok ch=1"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", "ok ch=1"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", "ok ch=1"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", "501"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "501"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate\r\n\r\n", "501"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: compress\r\n\r\n", "501"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", "501"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n", "501"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;a=b\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chu nked\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
        // Connection.
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "ok ka=0"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", "ok ka=0"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", "ok ka=0"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", "ok ka=0"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", "ok ka=1"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", "ok ka=1"),
        ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "ok v=1.0 ka=1"),
        ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "ok v=1.0 ka=1"),
        ("GET / HTTP/1.0\r\nConnection: te, keep-alive\r\n\r\n", "ok v=1.0 ka=1"),
        ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", "ok v=1.0 ka=0"),
        ("GET / HTTP/1.0\r\nConnection: foo\r\n\r\n", "ok v=1.0 ka=0"),
        // Expect.
        ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", "ok ex=1 cl=3"),
        ("POST / HTTP/1.1\r\nHost: a\r\nexpect: 100-Continue\r\n\r\n", "ok ex=1"),
        ("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", "ok ex=0"),
        ("POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", "ok ex=0"),
        ("POST / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n", "417"),
        ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n", "417"),
        ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue;a=b\r\n\r\n", "417"),
        ("POST / HTTP/1.0\r\nExpect: foo\r\n\r\n", "417"),
        // The first error in byte order wins.
        ("GET / HTTP/1.1\r\nExpect: foo\r\nX A: b\r\n\r\n", "417"),
        ("GET / HTTP/1.1\r\nX A: b\r\nExpect: foo\r\n\r\n", "400"),
        // Incomplete.
        ("", "partial"),
        ("\r\n", "partial"),
        ("\r", "partial"),
        ("\n", "partial"),
        ("GET", "partial"),
        ("GET / HTTP/1.1\r", "partial"),
        ("GET / HTTP/1.1\r\nHost: a\r\n", "partial"),
        ("GET / HTTP/1.1\r\nHost: a\r\n\r", "partial"),
    ];

    #[test]
    fn table() {
        for (input, expect) in CASES {
            check(input.as_bytes(), &LIMITS, expect);
        }
    }

    #[test]
    fn every_split_point_agrees_with_whole() {
        for (input, _) in CASES {
            check_splits(input.as_bytes(), &LIMITS);
        }
        for (limits, input, _) in limit_cases() {
            check_splits(&input, &limits);
        }
    }

    #[test]
    fn raw_bytes() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff\xfe\r\n\r\n",
                "ok n=2",
            ),
            // Any byte 0x80-0xFF in the target, valid UTF-8 or not (normalisation decides).
            (b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", "ok p=/\u{fffd}"),
            (b"GET /\x80\xc0\xae?\xfe HTTP/1.1\r\nHost: a\r\n\r\n", "ok"),
            (b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
            (b"GET /a\x1f HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
            (b"GET http://\xff/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX\xff: b\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n", "400"),
            (b"G\xffT / HTTP/1.1\r\nHost: a\r\n\r\n", "400"),
        ];
        for (input, expect) in cases {
            check(input, &LIMITS, expect);
            check_splits(input, &LIMITS);
        }
    }

    /// An accepted fold is rewritten to spaces in the buffer, so the value reads as one line
    /// (its line breaks each become as many spaces); parsing the rewritten buffer again gives
    /// the same head.
    #[test]
    fn obs_fold_is_unfolded_in_place() {
        let mut req = b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Digest a=1,\r\n\tb=2 \r\n  c=3  \r\nX: y\r\n\r\nBODY".to_vec();
        let len = req.len() - 4;
        let mut headers = Vec::new();
        let first = parse(&mut req, &LIMITS, &mut headers);
        assert!(
            matches!(first, Ok(Some(h)) if h.len == len && h.header_count == 3),
            "{first:?}"
        );
        let want: &[u8] = b"Digest a=1,  \tb=2     c=3";
        assert_eq!(header(&req, &headers, "authorization"), Some(want));
        assert_eq!(header(&req, &headers, "x"), Some(&b"y"[..]));
        assert!(req.ends_with(b"  c=3  \r\nX: y\r\n\r\nBODY"));
        let again = parse(&mut req, &LIMITS, &mut headers);
        assert_eq!(format!("{again:?}"), format!("{first:?}"));
        assert_eq!(header(&req, &headers, "authorization"), Some(want));
        // A fold refused leaves nothing half-rewritten that matters: the answer is a 400.
        let mut refused =
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n Content-Length: 5\r\n\r\n".to_vec();
        assert_eq!(
            parse(&mut refused, &LIMITS, &mut headers).map(|h| h.is_some()),
            Err(bad("obs-fold continuation reads as a field line"))
        );
    }

    #[test]
    fn field_values_are_trimmed() {
        let cases: &[(&str, &str)] = &[
            ("X: a", "a"),
            ("X:a", "a"),
            ("X: \t a b \t ", "a b"),
            ("X: a\tb", "a\tb"),
            ("X:", ""),
            ("X: \t ", ""),
            ("X: \"q\" ", "\"q\""),
            ("X:\r\n\t b \r\n ", "b"),
            ("X: \r\n ", ""),
        ];
        for (line, want) in cases {
            let mut req = format!("GET / HTTP/1.1\r\nHost: a\r\n{line}\r\n\r\n").into_bytes();
            let mut headers = Vec::new();
            let head = parse(&mut req, &LIMITS, &mut headers);
            assert!(matches!(head, Ok(Some(_))), "{line:?}");
            let got = header(&req, &headers, "x");
            assert_eq!(got, Some(want.as_bytes()), "{line:?}");
            let name = headers[1].name.get(&req);
            assert_eq!(name, b"X");
        }
    }

    /// Small limits so the boundaries are easy to hit: (limits, input, expected).
    fn limit_cases() -> Vec<(Limits, Vec<u8>, String)> {
        let small = Limits {
            max_head: 64,
            max_request_line: 32,
            max_headers: 3,
        };
        // "GET " + target + " HTTP/1.1" is 13 bytes plus the target.
        let line = |n: usize| format!("GET /{} HTTP/1.1", "a".repeat(n - 14));
        let mut v: Vec<(Limits, String, &str)> = vec![
            (
                small,
                format!("{}\r\nHost: a\r\n\r\n", line(32)),
                "ok len=all",
            ),
            (small, format!("{}\nHost: a\n\n", line(32)), "ok len=all"),
            (small, format!("{}\r\nHost: a\r\n\r\n", line(33)), "414"),
            (small, format!("GET /{}", "a".repeat(40)), "414"),
            (small, format!("GET /{}", "a".repeat(27)), "partial"),
            (small, format!("GET /{}", "a".repeat(28)), "414"),
            (
                small,
                "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n".into(),
                "ok n=3",
            ),
            (
                small,
                "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".into(),
                "431",
            ),
            (
                small,
                "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC".into(),
                "431",
            ),
            (
                small,
                "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n".into(),
                "partial",
            ),
            // Head of exactly 64 bytes, then one more.
            (
                small,
                format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(32)),
                "ok len=64",
            ),
            (
                small,
                format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(33)),
                "431",
            ),
            // A full buffer of max_head bytes gets an answer, not "need more".
            (
                small,
                format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(64 - 28)),
                "431",
            ),
            // Empty lines: the second is refused before any limit is reached.
            (small, "\r\n".repeat(40), "400"),
            // The one ignored empty line counts towards the head limit.
            (
                small,
                format!(
                    "\r\nGET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
                    "v".repeat(30)
                ),
                "ok len=64",
            ),
            (
                small,
                format!(
                    "\r\nGET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
                    "v".repeat(31)
                ),
                "431",
            ),
            // The method limit applies before the line limit when it is shorter.
            (
                Limits {
                    max_request_line: 100,
                    ..small
                },
                "A".repeat(40),
                "501",
            ),
            (
                Limits {
                    max_headers: 0,
                    ..small
                },
                "GET / HTTP/1.0\r\n\r\n".into(),
                "ok n=0",
            ),
            (
                Limits {
                    max_headers: 0,
                    ..small
                },
                "GET / HTTP/1.0\r\nA: b\r\n\r\n".into(),
                "431",
            ),
        ];
        // Big but allowed heads under the default limits.
        let many: String = (0..31).map(|i| format!("X-{i}: {i}\r\n")).collect();
        v.push((
            LIMITS,
            format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n"),
            "ok n=32 len=all",
        ));
        v.push((
            LIMITS,
            format!("GET / HTTP/1.1\r\nHost: a\r\n{many}Y: z\r\n\r\n"),
            "431",
        ));
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "p".repeat(4000),
            "v".repeat(4000)
        );
        v.push((LIMITS, long, "ok len=all"));
        let too_long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "p".repeat(4096));
        v.push((LIMITS, too_long, "414"));
        let too_big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(8192)
        );
        v.push((LIMITS, too_big, "431"));
        v.into_iter()
            .map(|(l, s, e)| (l, s.into_bytes(), e.to_string()))
            .collect()
    }

    #[test]
    fn limits() {
        for (limits, input, expect) in limit_cases() {
            check(&input, &limits, &expect);
        }
    }

    #[test]
    fn pipelined_heads_have_exact_lengths() {
        let first = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
        let second = "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n";
        let third = "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let mut all = format!("{first}{second}hi{third}GET /d").into_bytes();
        let buf = &mut all[..];
        let mut headers = Vec::new();
        let mut at = 0;
        for (want_len, want_path, body) in [
            (first.len(), "/a", 0),
            (second.len(), "/b", 2),
            (third.len(), "/c", 0),
        ] {
            let head = parse(&mut buf[at..], &LIMITS, &mut headers);
            let Ok(Some(head)) = head else {
                panic!("{head:?} at {at}")
            };
            assert_eq!(head.len, want_len);
            assert_eq!(head.path.get(&buf[at..]), want_path.as_bytes());
            assert!(head.keep_alive);
            at += head.len + body;
        }
        assert!(matches!(
            parse(&mut buf[at..], &LIMITS, &mut headers),
            Ok(None)
        ));
    }

    #[test]
    fn header_vector_is_reused_and_bounded() {
        let limits = Limits {
            max_headers: 10,
            ..LIMITS
        };
        let fields: String = (0..9).map(|i| format!("X-{i}: {i}\r\n")).collect();
        let mut req = format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").into_bytes();
        let mut small = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        let mut headers = Vec::new();
        for _ in 0..3 {
            let head = parse(&mut req, &limits, &mut headers);
            assert!(matches!(head, Ok(Some(h)) if h.header_count == 10));
            assert!(headers.capacity() <= 10, "capacity {}", headers.capacity());
        }
        let ptr = headers.as_ptr();
        let cap = headers.capacity();
        for _ in 0..3 {
            let _ = parse(&mut req, &limits, &mut headers);
            let _ = parse(&mut small, &limits, &mut headers);
            assert_eq!(headers.len(), 1);
        }
        assert_eq!((headers.as_ptr(), headers.capacity()), (ptr, cap));
        // Over the limit: the vector still stops at max_headers.
        let mut over = format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}Y: 1\r\n\r\n").into_bytes();
        let mut fresh = Vec::new();
        assert_eq!(
            parse(&mut over, &limits, &mut fresh).map(|h| h.is_some()),
            Err(TOO_MANY_FIELDS)
        );
        assert!(fresh.capacity() <= 10);
    }

    #[test]
    fn methods_round_trip() {
        let all = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Options,
            Method::Put,
            Method::Delete,
            Method::Patch,
            Method::Trace,
            Method::Connect,
            Method::Propfind,
            Method::Proppatch,
            Method::Mkcol,
            Method::Copy,
            Method::Move,
            Method::Lock,
            Method::Unlock,
        ];
        for m in all {
            assert_eq!(Method::from_bytes(m.as_str().as_bytes()), Some(m));
        }
        assert_eq!(Method::from_bytes(b"get"), None);
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let req = &mut b"GET / HTTP/1.1\r\nHost: a\r\nX-Thing: 1\r\nx-thing: 2\r\n\r\n".to_vec();
        let mut headers = Vec::new();
        assert!(matches!(parse(req, &LIMITS, &mut headers), Ok(Some(_))));
        assert_eq!(header(req, &headers, "X-THING"), Some(&b"1"[..]));
        assert_eq!(header(req, &headers, "missing"), None);
    }
}
