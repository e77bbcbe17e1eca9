//! Request-head parsing (RFC 9112 §2-§6): bytes in, offsets out, or "need more", or a status.
//!
//! CONTRACT STUB: the parser helper replaces this file with the real implementation.

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
        unimplemented!()
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
    /// Bytes of the buffer the head occupies, including leading empty lines and the final
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
pub fn parse(
    _buf: &[u8],
    _limits: &Limits,
    _headers: &mut Vec<Header>,
) -> Result<Option<Head>, HttpError> {
    unimplemented!()
}

/// The value of the first header named `name` (ASCII case-insensitive).
pub fn header<'a>(buf: &'a [u8], headers: &[Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| h.value.get(buf))
}
