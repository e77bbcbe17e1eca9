//! The contracts of lightd's pure parsers, checked on arbitrary bytes: shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/`) and the stable replay test (`tests/fuzz_replay.rs`), so what
//! CI replays is exactly what the fuzzer hunts for.
//!
//! Every `check_*` function panics, with the input in the message, when a documented property
//! fails. Besides the properties each module states, three parsers are compared with small
//! reference models written here from the grammar (chunked framing, path normalisation, Range),
//! so a wrong answer is caught and not only a crash. The models favour being obviously right
//! over being fast: whole-input, no state machines.
//!
//! `seed` picks the split patterns: the fuzz targets pass 0 (the patterns then follow from the
//! input's hash, so the fuzzer still steers them), the replay test several values.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use lightd::http::chunked::{ChunkedDecoder, Declared};
use lightd::http::path::normalize;
use lightd::http::range::{self, RangeOutcome, COALESCE_WITHIN, MAX_RANGES};
use lightd::http::request::{self, Head, Header, Limits, Method, Span, Version};
use lightd::http::HttpError;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// xorshift64*: deterministic, dependency-free, and good enough to scatter split points.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // xorshift must not start at 0; mixing in a constant also spreads small seeds apart.
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// FNV-1a: derives per-input choices (limits, split points) from the bytes themselves.
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The input as printable text for a failure message, cut short so a message stays readable.
pub fn show(data: &[u8]) -> String {
    const MAX: usize = 400;
    let cut = &data[..data.len().min(MAX)];
    let more = if data.len() > MAX { "..." } else { "" };
    format!("\"{}\"{more} ({} bytes)", cut.escape_ascii(), data.len())
}

/// Strip the optional whitespace (SP, HTAB) of RFC 9110 §5.6.3 from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Sorted, distinct cut points in `0..len`: `count` random ones plus the last few
/// positions, where a head or body most often ends.
fn cut_points(len: usize, rng: &mut Rng, count: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..count).map(|_| rng.below(len)).collect();
    cuts.extend((1..4).filter_map(|back| len.checked_sub(back)));
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

// ---------------------------------------------------------------------------------------------
// Request heads.

/// The limits the server builds from the default server.max-request-field-size (8192): see
/// `Server::new` in src/server.rs.
pub const DEFAULT_LIMITS: Limits = Limits {
    max_head: 8192,
    max_request_line: 8191,
    max_headers: 128,
};

/// Inputs up to this long have every prefix checked; longer ones a sample of prefixes.
const EXHAUSTIVE_PREFIXES: usize = 256;

/// Small limits chosen by the input, so the fuzzer reaches every limit boundary.
fn tight_limits(h: u64) -> Limits {
    Limits {
        max_head: (h % 300) as usize,
        max_request_line: ((h >> 16) % 200) as usize,
        max_headers: ((h >> 32) % 8) as usize,
    }
}

type HeadKey = (
    usize,
    Method,
    Span,
    Span,
    Option<Span>,
    Version,
    Option<Span>,
    Option<u64>,
    bool,
    bool,
    bool,
    usize,
);

/// One parse result in comparable form (Head and Header do not implement PartialEq).
#[derive(Debug, PartialEq, Eq)]
enum HeadOutcome {
    Partial,
    Fail(HttpError),
    Done(HeadKey, Vec<(Span, Span)>),
}

fn head_key(h: &Head) -> HeadKey {
    (
        h.len,
        h.method,
        h.target,
        h.path,
        h.query,
        h.version,
        h.host,
        h.content_length,
        h.chunked,
        h.keep_alive,
        h.expect_continue,
        h.header_count,
    )
}

/// Parse `buf` with a caller-owned header vector (reused, as the connection reuses its own),
/// and check what must hold after any call whatever it returned.
///
/// The parser writes spaces over an obs-fold it accepts, so it gets a copy, and a head is
/// judged by the bytes as the parser left them (a fold not rewritten would show as a control
/// byte in a field value).
fn parse_head(input: &[u8], limits: &Limits, headers: &mut Vec<Header>) -> HeadOutcome {
    let mut copy = input.to_vec();
    let res = request::parse(&mut copy, limits, headers);
    let buf = &copy[..];
    assert!(
        headers.len() <= limits.max_headers && headers.capacity() <= limits.max_headers,
        "header vector grew to len {} capacity {} past max_headers {} on {}",
        headers.len(),
        headers.capacity(),
        limits.max_headers,
        show(buf)
    );
    match res {
        Ok(None) => {
            assert!(
                buf.len() < limits.max_head,
                "Ok(None) with {} bytes buffered, max_head {}: a full buffer would wait \
                 forever on {}",
                buf.len(),
                limits.max_head,
                show(buf)
            );
            HeadOutcome::Partial
        }
        Err(e) => {
            assert!(
                matches!(e.status, 400 | 414 | 417 | 431 | 501 | 505),
                "unexpected status {e:?} for {}",
                show(buf)
            );
            HeadOutcome::Fail(e)
        }
        Ok(Some(h)) => {
            judge_head(buf, limits, &h, headers);
            let spans = headers.iter().map(|f| (f.name, f.value)).collect();
            HeadOutcome::Done(head_key(&h), spans)
        }
    }
}

fn span_ok(s: Span, end: usize) -> bool {
    s.start <= s.end && s.end as usize <= end
}

/// The values of every field named `name` (ASCII case-insensitive), in order.
fn field_values<'a>(
    head: &'a [u8],
    headers: &'a [Header],
    name: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |f| f.name.get(head).eq_ignore_ascii_case(name))
        .map(move |f| f.value.get(head))
}

/// The elements of a comma-separated list value, trimmed.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// What a successful parse promises about the head it returns.
pub fn judge_head(buf: &[u8], limits: &Limits, h: &Head, headers: &[Header]) {
    let ctx = || format!("{h:?} from {}", show(buf));
    assert!(
        h.len >= 1 && h.len <= buf.len() && h.len <= limits.max_head,
        "bad len: {}",
        ctx()
    );
    let head = &buf[..h.len];
    // The head ends with its blank line: LF LF or LF CR LF.
    assert!(
        head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
        "head does not end with a blank line: {}",
        ctx()
    );
    assert_eq!(h.header_count, headers.len(), "header_count: {}", ctx());
    assert!(h.header_count <= limits.max_headers, "{}", ctx());
    for s in [Some(h.target), Some(h.path), h.query, h.host]
        .into_iter()
        .flatten()
    {
        assert!(span_ok(s, h.len), "span {s:?} outside the head: {}", ctx());
    }

    // The request line: [one empty line] method SP target SP HTTP/d.d, within the line limit.
    let method = h.method.as_str().as_bytes();
    let (t0, t1) = (h.target.start as usize, h.target.end as usize);
    assert!(t0 > method.len() && t1 > t0, "{}", ctx());
    let m0 = t0 - method.len() - 1;
    assert_eq!(&head[m0..t0], [method, b" "].concat(), "{}", ctx());
    assert!(
        matches!(&head[..m0], b"" | b"\n" | b"\r\n"),
        "something other than at most one empty line before the method: {}",
        ctx()
    );
    // Visible ASCII other than '#', or a raw byte 0x80-0xFF (judged later, as the path is
    // normalised): never a control byte, space or DEL.
    let target = &head[t0..t1];
    assert!(
        target
            .iter()
            .all(|&b| ((0x21..=0x7e).contains(&b) && b != b'#') || b >= 0x80),
        "target holds a control byte, space, DEL or '#': {}",
        ctx()
    );
    let version = head.get(t1..t1 + 9).unwrap_or_default();
    assert!(
        version.len() == 9 && version.starts_with(b" HTTP/1.") && version[8].is_ascii_digit(),
        "version: {}",
        ctx()
    );
    let want_version = if version[8] == b'0' {
        Version::Http10
    } else {
        Version::Http11
    };
    assert_eq!(h.version, want_version, "{}", ctx());
    let line_len = t1 + 9 - m0;
    assert!(
        line_len <= limits.max_request_line,
        "request line of {line_len} bytes passed max_request_line {}: {}",
        limits.max_request_line,
        ctx()
    );

    // Path and query lie in the target, split at the first '?'.
    let (p0, p1) = (h.path.start as usize, h.path.end as usize);
    assert!(t0 <= p0 && p1 <= t1, "path outside target: {}", ctx());
    let path = &head[p0..p1];
    assert!(!path.contains(&b'?'), "'?' in path: {}", ctx());
    match h.query {
        Some(q) => {
            let q0 = q.start as usize;
            assert!(q0 == p1 + 1 && head[p1] == b'?', "query: {}", ctx());
            assert_eq!(q.end as usize, t1, "query ends before target: {}", ctx());
        }
        None => assert_eq!(p1, t1, "path ends before target: {}", ctx()),
    }
    match h.method {
        Method::Connect => assert!(path.is_empty(), "CONNECT with a path: {}", ctx()),
        _ => assert!(
            path.is_empty() || path == b"*" || path[0] == b'/',
            "path is neither empty, '*' nor absolute: {}",
            ctx()
        ),
    }
    if path == b"*" {
        assert_eq!(
            h.method,
            Method::Options,
            "'*' for a method other than OPTIONS"
        );
    }
    if let Some(host) = h.host {
        let host = host.get(head);
        assert!(
            host.iter().all(|&b| (0x21..=0x7e).contains(&b)),
            "host with whitespace or a control byte: {}",
            ctx()
        );
    }

    // Fields: in order, after the request line, well-formed, values trimmed.
    let mut prev_end = t1 + 9;
    let field = |name| field_values(head, headers, name);
    for f in headers {
        assert!(
            span_ok(f.name, h.len) && span_ok(f.value, h.len),
            "field span outside the head: {}",
            ctx()
        );
        let (n0, n1) = (f.name.start as usize, f.name.end as usize);
        assert!(n0 > prev_end && n1 > n0, "field out of order: {}", ctx());
        assert!(
            head[n0..n1].iter().all(|&b| request::is_tchar(b)) && head[n1] == b':',
            "field name is not a token followed by ':': {}",
            ctx()
        );
        let value = f.value.get(head);
        assert!(f.value.start as usize > n1, "{}", ctx());
        assert!(
            value.iter().all(|&b| request::is_field_value_char(b)),
            "control byte in a field value: {}",
            ctx()
        );
        let ws = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        assert!(
            !ws(value.first()) && !ws(value.last()),
            "field value not trimmed: {}",
            ctx()
        );
        prev_end = f.value.end as usize;
    }

    // Framing and connection fields, recomputed from the fields themselves.
    let v11 = h.version == Version::Http11;
    assert!(field(b"host").count() <= 1, "two Host fields: {}", ctx());
    if v11 {
        assert!(h.host.is_some(), "HTTP/1.1 without a host: {}", ctx());
    }
    let has_te = field(b"transfer-encoding").next().is_some();
    let has_cl = field(b"content-length").next().is_some();
    assert_eq!(
        h.chunked,
        has_te,
        "chunked without TE or TE unused: {}",
        ctx()
    );
    assert_eq!(h.content_length.is_some(), has_cl, "{}", ctx());
    assert!(
        !(has_te && has_cl),
        "both Transfer-Encoding and Content-Length accepted: {}",
        ctx()
    );
    if h.chunked {
        assert!(v11, "chunked in HTTP/1.0: {}", ctx());
    }
    let tokens = |name| field_values(head, headers, name).flat_map(list);
    let close = tokens(b"connection").any(|t| t.eq_ignore_ascii_case(b"close"));
    let ka = tokens(b"connection").any(|t| t.eq_ignore_ascii_case(b"keep-alive"));
    assert_eq!(h.keep_alive, !close && (v11 || ka), "keep_alive: {}", ctx());
    let continue_ = tokens(b"expect").any(|t| t.eq_ignore_ascii_case(b"100-continue"));
    assert_eq!(h.expect_continue, continue_ && v11, "expect: {}", ctx());
}

/// Request heads: the per-call properties above, plus "a request split into any pieces parses
/// exactly as it does whole": fed as growing prefixes (as the connection does), every prefix
/// is "need more" or the whole answer. Checked with the default limits and with small limits
/// the input picks.
pub fn check_request_head(data: &[u8], seed: u64) {
    let h = hash(data);
    for limits in [DEFAULT_LIMITS, tight_limits(h)] {
        let mut headers = Vec::new();
        let whole = parse_head(data, &limits, &mut headers);

        if let HeadOutcome::Done(key, _) = &whole {
            // The head is judged by its own bytes: cut right after it, or followed by
            // anything (a body, the next pipelined request), it parses the same.
            let len = key.0;
            let cut = parse_head(&data[..len], &limits, &mut headers);
            assert_eq!(cut, whole, "head cut at its end: {}", show(data));
            let mut more = data[..len].to_vec();
            more.extend_from_slice(b"\r\n\0\xffGET / HTTP/1.1\r\n");
            let followed = parse_head(&more, &limits, &mut headers);
            assert_eq!(
                followed,
                whole,
                "head followed by other bytes: {}",
                show(data)
            );
        }

        let mut rng = Rng::new(seed ^ h);
        let prefixes: Vec<usize> = if data.len() <= EXHAUSTIVE_PREFIXES {
            (0..data.len()).collect()
        } else {
            cut_points(data.len(), &mut rng, 48)
        };
        for k in prefixes {
            let part = parse_head(&data[..k], &limits, &mut headers);
            assert!(
                part == HeadOutcome::Partial || part == whole,
                "prefix of {k} bytes gives {part:?}, the whole input {whole:?}; limits \
                 {limits:?}; input {}",
                show(data)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies.

/// What feeding a body in pieces gives: (consumed, done) or the status, and the payload.
pub type ChunkedRun = (Result<(usize, bool), u16>, Vec<u8>);

/// The trailer names a request announces in its Trailer field, for the runs that have one.
const DECLARED_TRAILERS: &[&[u8]] = &[b"x-t", b"y", b"test-trailer"];

/// Whether `name` is one of [`DECLARED_TRAILERS`], as the connection compares them.
fn declared_lists(name: &[u8]) -> bool {
    DECLARED_TRAILERS
        .iter()
        .any(|d| d.eq_ignore_ascii_case(name))
}

/// Feed `pieces` in order as the connection does: stop at the first error or when done. Checks
/// the per-call contract on the way. `announced` says whether the request has a Trailer field
/// (listing [`DECLARED_TRAILERS`]).
fn run_chunked(pieces: &[&[u8]], data: &[u8], announced: bool) -> ChunkedRun {
    let listed = declared_lists;
    let declared: Declared = if announced { Some(&listed) } else { None };
    let mut d = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut consumed = 0;
    let mut sink = |b: &[u8]| {
        assert!(!b.is_empty(), "empty payload slice for {}", show(data));
        payload.extend_from_slice(b);
    };
    for piece in pieces {
        match d.feed(piece, declared, &mut sink) {
            Err(e) => {
                assert_eq!(e.status, 400, "status for {}", show(data));
                // Sticky: the same error for whatever comes next.
                let again = d.feed(b"0\r\n\r\n", declared, &mut sink);
                assert_eq!(again, Err(e), "{}", show(data));
                assert!(!d.is_done());
                return (Err(e.status), payload);
            }
            Ok((n, true)) => {
                assert!(n <= piece.len(), "consumed past the input: {}", show(data));
                assert!(d.is_done());
                // Done consumes nothing more: pipelined bytes are left alone.
                assert_eq!(d.feed(b"0\r\n\r\n", declared, &mut sink), Ok((0, true)));
                return (Ok((consumed + n, true)), payload);
            }
            Ok((n, false)) => {
                assert_eq!(
                    n,
                    piece.len(),
                    "an unfinished body must consume all input: {}",
                    show(data)
                );
                assert!(!d.is_done());
                consumed += n;
            }
        }
    }
    (Ok((consumed, false)), payload)
}

/// Field names refused as trailers (RFC 9110 §6.5.1, lighttpd's list), lower case.
const REF_FORBIDDEN_TRAILERS: &[&str] = &[
    "authorization",
    "age",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-range",
    "content-type",
    "date",
    "expect",
    "expires",
    "forwarded",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "location",
    "pragma",
    "range",
    "set-cookie",
    "te",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "www-authenticate",
    "proxy-connection",
    "max-forwards",
    "trailer",
];

/// The chunked grammar of RFC 9112 §7.1 as lightd reads it (strict CRLF, BWS only before ';',
/// extension bytes field-vchar, at most 16 size digits, size line under 1024 bytes with its
/// CRLF, trailer section up to 8192 bytes with its final CRLF, trailer names up to 64 bytes,
/// none of them forbidden and, with `announced`, each one of [`DECLARED_TRAILERS`]), decoded
/// from the whole input at once. An error is `Err(400)`; running out of input where more
/// could follow is "not done".
fn reference_chunked(data: &[u8], announced: bool) -> ChunkedRun {
    const MAX_LINE: usize = 1021;
    const MAX_TRAILERS: usize = 8192;
    const MAX_NAME: usize = 64;
    let mut payload = Vec::new();
    let mut i = 0;
    let incomplete = |payload: Vec<u8>| (Ok((data.len(), false)), payload);
    // Each pass of the loop consumes one chunk, so it runs at most data.len() times.
    loop {
        // chunk-size [ext] CRLF.
        let line = i;
        let mut size: u64 = 0;
        let mut digits = 0;
        while let Some(d) = data.get(i).and_then(|&b| (b as char).to_digit(16)) {
            digits += 1;
            if digits > 16 {
                return (Err(400), payload);
            }
            size = size << 4 | u64::from(d);
            i += 1;
        }
        if i == data.len() {
            return incomplete(payload);
        }
        if digits == 0 {
            return (Err(400), payload);
        }
        let ws = data[i..]
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        i += ws;
        // The bytes before CR; what they may be depends on whether an extension started.
        let ext_start = i;
        let cr = data[i..].iter().position(|&b| b == b'\r').map(|n| i + n);
        let line_end = cr.unwrap_or(data.len());
        let rest = &data[ext_start..line_end];
        let ok_rest = if rest.is_empty() {
            ws == 0
        } else {
            rest[0] == b';' && rest.iter().all(|&b| request::is_field_value_char(b))
        };
        // Where the first bad byte is (if any) decides error vs "need more"; the line limit
        // counts every byte before the CR.
        let bad_at = if ok_rest {
            None
        } else if rest.is_empty() {
            Some(line_end) // whitespace then CR
        } else if rest[0] != b';' {
            Some(ext_start)
        } else {
            rest.iter()
                .position(|&b| !request::is_field_value_char(b))
                .map(|n| ext_start + n)
        };
        let too_long_at = (line_end - line > MAX_LINE).then_some(line + MAX_LINE);
        // An offending byte that has not arrived yet means "need more", not an error.
        if let Some(at) = bad_at.into_iter().chain(too_long_at).min() {
            if at < data.len() {
                return (Err(400), payload);
            }
        }
        let Some(cr) = cr else {
            return incomplete(payload);
        };
        match data.get(cr + 1) {
            None => return incomplete(payload),
            Some(b'\n') => i = cr + 2,
            Some(_) => return (Err(400), payload),
        }
        if size == 0 {
            break;
        }
        // chunk-data CRLF.
        let avail = (data.len() - i) as u64;
        let n = size.min(avail) as usize;
        payload.extend_from_slice(&data[i..i + n]);
        i += n;
        if (n as u64) < size {
            return incomplete(payload);
        }
        for want in [b'\r', b'\n'] {
            match data.get(i) {
                None => return incomplete(payload),
                Some(&b) if b == want => i += 1,
                Some(_) => return (Err(400), payload),
            }
        }
    }
    // trailer-section CRLF, bounded as a whole.
    let section = i;
    let limit = section + MAX_TRAILERS;
    // Each pass consumes one trailer line, bounded by the input.
    loop {
        // A byte past the bound is an error once it arrives; until then, "need more".
        let at = |j: usize| match data.get(j) {
            Some(_) if j >= limit => Err(()),
            b => Ok(b),
        };
        let Ok(first) = at(i) else {
            return (Err(400), payload);
        };
        match first {
            None => return incomplete(payload),
            Some(b'\r') => {
                return match at(i + 1) {
                    Err(()) => (Err(400), payload),
                    Ok(None) => incomplete(payload),
                    Ok(Some(b'\n')) => (Ok((i + 2, true)), payload),
                    Ok(Some(_)) => (Err(400), payload),
                };
            }
            Some(&b) if request::is_tchar(b) => {}
            Some(_) => return (Err(400), payload),
        }
        // name ':' value CR LF
        let mut j = i;
        let mut in_value = false;
        loop {
            let b = match at(j) {
                Err(()) => return (Err(400), payload),
                Ok(None) => return incomplete(payload),
                Ok(Some(&b)) => b,
            };
            if !in_value {
                if b == b':' {
                    in_value = true;
                    let name = String::from_utf8_lossy(&data[i..j]).to_ascii_lowercase();
                    let forbidden = REF_FORBIDDEN_TRAILERS.contains(&name.as_str());
                    let undeclared = announced && !declared_lists(name.as_bytes());
                    if forbidden || undeclared {
                        return (Err(400), payload);
                    }
                } else if !request::is_tchar(b) || j - i >= MAX_NAME {
                    return (Err(400), payload);
                }
            } else if b == b'\r' {
                break;
            } else if !request::is_field_value_char(b) {
                return (Err(400), payload);
            }
            j += 1;
        }
        match at(j + 1) {
            Err(()) => return (Err(400), payload),
            Ok(None) => return incomplete(payload),
            Ok(Some(b'\n')) => i = j + 2,
            Ok(Some(_)) => return (Err(400), payload),
        }
    }
}

/// What decoding `data` whole must give (for a request without a Trailer field): the
/// reference grammar's answer, with consumed bytes and payload bounded by the input.
pub fn judge_chunked(data: &[u8], whole: &ChunkedRun) {
    judge_chunked_announced(data, whole, false);
}

/// [`judge_chunked`], for a request with or without a Trailer field.
fn judge_chunked_announced(data: &[u8], whole: &ChunkedRun, announced: bool) {
    let reference = reference_chunked(data, announced);
    assert_eq!(
        whole,
        &reference,
        "decoder (left) and reference grammar (right) disagree on {}",
        show(data)
    );
    if let Ok((consumed, done)) = whole.0 {
        assert!(consumed <= data.len());
        assert!(whole.1.len() <= consumed, "more payload than input");
        if done {
            assert!(
                whole.1.len() + 5 <= consumed,
                "a body has at least 5 framing bytes"
            );
        }
    }
}

/// Chunked bodies: the same payload and outcome whole, byte by byte, and in random pieces;
/// agreement with the reference grammar; consumed bytes and payload bounded by the input. All
/// of it for a request without a Trailer field and for one with.
pub fn check_chunked(data: &[u8], seed: u64) {
    // The decoder's memory is its fixed-size struct: no buffering whatever the input (a
    // trailer name is held in it, up to 64 bytes).
    assert!(std::mem::size_of::<ChunkedDecoder>() <= 128);
    for announced in [false, true] {
        let whole = run_chunked(&[data], data, announced);
        judge_chunked_announced(data, &whole, announced);

        let same = |pieces: &[&[u8]]| {
            let got = run_chunked(pieces, data, announced);
            assert_eq!(
                got,
                whole,
                "fed in pieces {pieces:?} (left) vs whole (right), Trailer field {announced}: {}",
                show(data)
            );
        };
        if data.len() <= 4096 {
            let bytes: Vec<&[u8]> = data.chunks(1).collect();
            same(&bytes);
        }
        let mut rng = Rng::new(seed ^ hash(data));
        for round in 0..4 {
            let cuts = cut_points(data.len(), &mut rng, 1 + round * 4);
            let mut pieces = Vec::with_capacity(cuts.len() + 1);
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                pieces.push(&data[at..c]);
                at = c;
            }
            same(&pieces);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths.

/// Decode once, refuse NUL, controls and non-UTF-8, then remove dot segments with a stack:
/// the module's policy, computed a different way from the one-pass code.
fn reference_path(raw: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            bytes.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let decoded = String::from_utf8(bytes).ok()?;
    let mut stack: Vec<&str> = Vec::new();
    let mut dir = true;
    for seg in decoded.split('/') {
        dir = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            name => stack.push(name),
        }
    }
    let mut out = format!("/{}", stack.join("/"));
    if dir && !stack.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Paths: the output never escapes the root (starts with '/', no "." or ".." segment, no
/// empty segment, no NUL or control byte), matches the reference, is no longer than the input
/// plus the leading '/', and normalising it again (with '%' re-escaped, since decoding happens
/// exactly once) changes nothing. On error the output buffer is left empty.
pub fn check_path(raw: &[u8]) {
    let mut out = String::from("stale contents");
    let res = normalize(raw, &mut out);
    judge_path(raw, res, &out);
}

/// What `normalize(raw)` returning `res` with `out` must satisfy.
pub fn judge_path(raw: &[u8], res: Result<(), HttpError>, out: &str) {
    let reference = reference_path(raw);
    match (&res, &reference) {
        (Ok(()), Some(want)) => assert_eq!(out, want, "normalize vs reference: {}", show(raw)),
        (Err(e), None) => {
            assert_eq!(e.status, 400, "{}", show(raw));
            assert!(out.is_empty(), "output not cleared on error: {}", show(raw));
            return;
        }
        _ => panic!(
            "normalize gives {res:?} {out:?}, the reference {reference:?}: {}",
            show(raw)
        ),
    }
    let ctx = || format!("output {out:?} for {}", show(raw));
    assert!(out.starts_with('/'), "{}", ctx());
    assert!(
        out.len() <= raw.len() + 1,
        "output longer than input: {}",
        ctx()
    );
    assert!(
        !out.bytes().any(|b| b < 0x20 || b == 0x7f),
        "NUL or control byte: {}",
        ctx()
    );
    let body = out.strip_prefix('/').unwrap_or_default();
    let body = body.strip_suffix('/').unwrap_or(body);
    assert!(
        out == "/" || body.split('/').all(|s| !matches!(s, "" | "." | "..")),
        "empty, '.' or '..' segment: {}",
        ctx()
    );

    let mut again = String::new();
    let reencoded = out.replace('%', "%25");
    assert!(
        normalize(reencoded.as_bytes(), &mut again).is_ok(),
        "{}",
        ctx()
    );
    assert_eq!(again, out, "not idempotent: {}", ctx());
    if !out.contains('%') {
        assert!(normalize(out.as_bytes(), &mut again).is_ok(), "{}", ctx());
        assert_eq!(again, out, "not idempotent: {}", ctx());
    }
}

// ---------------------------------------------------------------------------------------------
// Ranges.

/// One range-spec: `first-[last]` (last None = to the end) or `-suffix`.
enum RefSpec {
    Int(u64, Option<u64>),
    Suffix(u64),
}

/// Digits to u64, saturating (the module's documented choice for huge numbers).
fn ref_number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The valid specs of a Range value, or None when the field is ignored (no `bytes=` unit, or
/// more than MAX_RANGES non-empty elements). Elements that are not a valid range-spec of RFC
/// 9110 §14.1.1 (malformed, or last < first) are left out, as lighttpd leaves them out.
fn reference_specs(value: &[u8]) -> Option<Vec<RefSpec>> {
    let eq = value.iter().position(|&b| b == b'=')?;
    if !value[..eq].eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let elements: Vec<&[u8]> = value[eq + 1..]
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
        .collect();
    if elements.len() > MAX_RANGES {
        return None;
    }
    Some(elements.into_iter().filter_map(reference_spec).collect())
}

/// One non-empty element: exactly one '-', digits on either side, at least one side
/// non-empty, and last >= first.
fn reference_spec(e: &[u8]) -> Option<RefSpec> {
    let dash = e.iter().position(|&b| b == b'-')?;
    let (first, last) = (&e[..dash], &e[dash + 1..]);
    Some(match (first.is_empty(), last.is_empty()) {
        (true, _) => RefSpec::Suffix(ref_number(last)?),
        (false, true) => RefSpec::Int(ref_number(first)?, None),
        (false, false) => {
            let (f, l) = (ref_number(first)?, ref_number(last)?);
            // The order is judged on the exact numbers (digit count, then digits without
            // leading zeros): two numbers past u64 saturate to the same value.
            let exact = |s: &[u8]| {
                let t = &s[s.iter().take_while(|&&c| c == b'0').count()..];
                (t.len(), t.to_vec())
            };
            if exact(last) < exact(first) {
                return None;
            }
            RefSpec::Int(f, Some(l))
        }
    })
}

/// The byte range a spec selects in `len` bytes, if any.
fn reference_resolve(spec: &RefSpec, len: u64) -> Option<(u64, u64)> {
    if !spec_satisfiable(spec, len) {
        return None;
    }
    Some(match *spec {
        RefSpec::Int(f, l) => (f, l.map_or(len - 1, |l| l.min(len - 1))),
        RefSpec::Suffix(n) => (len.saturating_sub(n), len - 1),
    })
}

/// The ranges to send: every selected range, merged with any other that overlaps it or
/// starts at most COALESCE_WITHIN bytes from it (in either order), until no two can merge;
/// then sorted. Quadratic and order-free, unlike the module's sort-and-sweep.
fn reference_ranges(specs: &[RefSpec], len: u64) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = specs
        .iter()
        .filter_map(|s| reference_resolve(s, len))
        .collect();
    let near = |a: (u64, u64), b: (u64, u64)| {
        let (lo, hi) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        hi.0 <= lo.1.saturating_add(COALESCE_WITHIN)
    };
    // Each merge removes one range, so this runs at most v.len() times.
    'merge: loop {
        for i in 0..v.len() {
            for j in i + 1..v.len() {
                if near(v[i], v[j]) {
                    v[i] = (v[i].0.min(v[j].0), v[i].1.max(v[j].1));
                    v.swap_remove(j);
                    continue 'merge;
                }
            }
        }
        break;
    }
    v.sort_unstable();
    v
}

/// Whether `spec` selects byte `p` of a `len`-byte representation (`p < len`).
fn spec_covers(spec: &RefSpec, len: u64, p: u64) -> bool {
    match *spec {
        RefSpec::Int(f, l) => f <= p && l.map_or(true, |l| p <= l),
        RefSpec::Suffix(n) => n > 0 && p >= len.saturating_sub(n),
    }
}

fn spec_satisfiable(spec: &RefSpec, len: u64) -> bool {
    len > 0
        && match *spec {
            RefSpec::Int(f, _) => f < len,
            RefSpec::Suffix(n) => n > 0,
        }
}

/// Ranges: for several representation lengths, the answer passes [`judge_range`], and listing
/// the specs in reverse order changes nothing.
pub fn check_range(value: &[u8]) {
    let h = hash(value);
    let reversed: Vec<u8> = match value.iter().position(|&b| b == b'=') {
        Some(eq) => {
            let mut v = value[..=eq].to_vec();
            let parts: Vec<&[u8]> = value[eq + 1..].split(|&b| b == b',').rev().collect();
            v.extend_from_slice(&parts.join(&b","[..]));
            v
        }
        None => value.to_vec(),
    };
    let mut out = vec![(7, 7)];
    let mut out_rev = Vec::new();
    for len in [
        0,
        1,
        2,
        7,
        100,
        1000,
        1 << 40,
        u64::MAX - 1,
        u64::MAX,
        h % 200,
    ] {
        let outcome = range::parse(value, len, &mut out);
        judge_range(value, len, outcome, &out);
        let rev = range::parse(&reversed, len, &mut out_rev);
        assert_eq!(
            (rev, &out_rev),
            (outcome, &out),
            "reversed order (left) vs as sent (right) for len {len}: {}",
            show(value)
        );
    }
}

/// What `range::parse(value, len)` returning `outcome` and `out` must satisfy: the outcome of
/// the reference; `out` empty unless the outcome is Ranges, else sorted, coalesced (every gap
/// at least COALESCE_WITHIN bytes), within `[0, len)`, at most MAX_RANGES long, covering every
/// byte the specs select, and exactly the reference's ranges.
pub fn judge_range(value: &[u8], len: u64, outcome: RangeOutcome, out: &[(u64, u64)]) {
    let ctx = || format!("{outcome:?} {out:?} for len {len}, {}", show(value));
    let specs = reference_specs(value);
    let want = match &specs {
        None => RangeOutcome::Ignore,
        Some(s) if s.iter().any(|s| spec_satisfiable(s, len)) => RangeOutcome::Ranges,
        Some(_) => RangeOutcome::Unsatisfiable,
    };
    assert_eq!(outcome, want, "vs reference: {}", ctx());
    if outcome != RangeOutcome::Ranges {
        assert!(out.is_empty(), "output left behind: {}", ctx());
        return;
    }
    assert!(!out.is_empty() && out.len() <= MAX_RANGES, "{}", ctx());
    for (i, &(first, last)) in out.iter().enumerate() {
        assert!(first <= last && last < len, "outside [0, len): {}", ctx());
        if i > 0 {
            let prev = out[i - 1].1;
            assert!(
                first > prev.saturating_add(COALESCE_WITHIN),
                "not sorted and coalesced: {}",
                ctx()
            );
        }
    }
    let specs = specs.as_deref().unwrap_or_default();
    assert_eq!(
        out,
        reference_ranges(specs, len).as_slice(),
        "vs reference ranges (right): {}",
        ctx()
    );
    // Coverage, checked on its own terms as well: every selected byte is sent. Every byte for
    // small lengths, otherwise the edges of every spec (coverage can only change there).
    let points: Vec<u64> = if len <= 256 {
        (0..len).collect()
    } else {
        let mut p = vec![0, len - 1];
        for s in specs {
            match *s {
                RefSpec::Int(f, l) => {
                    p.extend([f, f.saturating_sub(1)]);
                    p.extend(l.into_iter().flat_map(|l| [l, l.saturating_add(1)]));
                }
                RefSpec::Suffix(n) => {
                    let start = len.saturating_sub(n);
                    p.extend([start, start.saturating_sub(1)]);
                }
            }
        }
        p.retain(|&p| p < len);
        p
    };
    for p in points {
        if specs.iter().any(|s| spec_covers(s, len, p)) {
            let sent = out.iter().any(|&(f, l)| f <= p && p <= l);
            assert!(sent, "byte {p} selected but not sent: {}", ctx());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration.

/// Where configs are written while being checked: one directory per process.
fn temp_config_dir() -> PathBuf {
    std::env::temp_dir().join(format!("lightd-fuzz-config-{}", std::process::id()))
}

/// Remove the (by then empty) directory the config checks wrote into.
pub fn remove_temp_config_dir() {
    let _ = std::fs::remove_dir(temp_config_dir());
}

/// A fresh file name for each config written, so parallel test threads never share one.
fn temp_config_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = temp_config_dir();
    // A failure here shows up as a read error on load, which names the path.
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{}.conf", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Load `text` from a temporary file (there is no public parse-from-string entry point).
fn load_text(text: &[u8]) -> (PathBuf, Result<lightd::config::Config, String>) {
    let path = temp_config_path();
    let res = match std::fs::write(&path, text) {
        Ok(()) => lightd::config::load(&path).map_err(|e| e.to_string()),
        Err(e) => panic!("cannot write {}: {e}", path.display()),
    };
    let _ = std::fs::remove_file(&path);
    (path, res)
}

/// Whether a config could reach outside its own text: `include` reads other files (or
/// devices: `include "/dev/zero"` never ends) and `include_shell` runs a command. Neither may
/// be fed arbitrary input. Conservative: any "include" outside a comment counts, even inside
/// a string. Comments are found the way the config lexer finds them (a '#' outside a string,
/// where strings know only the escapes \" and \\), so commented-out text does not count.
pub fn config_reaches_outside(data: &[u8]) -> bool {
    let mut code = Vec::with_capacity(data.len());
    let mut i = 0;
    let mut in_string = false;
    while i < data.len() {
        let b = data[i];
        if in_string {
            match (b, data.get(i + 1)) {
                (b'\\', Some(b'"' | b'\\')) => {
                    code.extend_from_slice(&data[i..i + 2]);
                    i += 2;
                    continue;
                }
                (b'"', _) => in_string = false,
                _ => {}
            }
        } else if b == b'#' {
            // To the end of the line; the newline itself is kept as code.
            i += data[i..]
                .iter()
                .position(|&c| c == b'\n')
                .unwrap_or(data.len() - i);
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        code.push(b);
        i += 1;
    }
    code.windows(7).any(|w| w.eq_ignore_ascii_case(b"include"))
}

/// Configs: loading never panics; an error names the file; and a config that loads prints
/// (`-p`) as text that loads again and prints the same (the display module's promise that
/// the output can be fed back to `lightd -f`).
pub fn check_config(data: &[u8]) {
    if config_reaches_outside(data) {
        return;
    }
    let (path, res) = load_text(data);
    let cfg = match res {
        Ok(cfg) => cfg,
        Err(msg) => {
            assert!(
                msg.contains(&path.display().to_string()),
                "error does not name the file: {msg:?} for {}",
                show(data)
            );
            return;
        }
    };
    // A config lightd refuses (fail closed) is never printed by -p; its error names the file.
    if let Err(e) = cfg.refusal() {
        let msg = e.to_string();
        assert!(
            msg.contains(&path.display().to_string()),
            "refusal does not name the file: {msg:?} for {}",
            show(data)
        );
        return;
    }
    let printed = cfg.to_string();
    // The first line of -p names the file it came from; the rest must reproduce, except the
    // ignored keys, which are printed as comments (and blank lines around them).
    let body = |s: &str| {
        s.lines()
            .skip(1)
            .filter(|l| !l.is_empty() && !l.trim_start().starts_with("# ignored"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (_, again) = load_text(printed.as_bytes());
    match again {
        Ok(again) => assert_eq!(
            body(&again.to_string()),
            body(&printed),
            "printed config prints differently when loaded again; input {}",
            show(data)
        ),
        Err(e) => panic!(
            "printed config does not load: {e}\n--- printed:\n{printed}\n--- from input {}",
            show(data)
        ),
    }
}
